"""[database]: where the one schema lives, and how to reach it."""

from nova_twisted.conf.types import BoolOpt, FloatOpt, IntOpt, StrOpt

SECTION = "database"
OPTS = [
    StrOpt(
        "connection",
        default="sqlite:///$state_path/nova.sqlite",
        help="SQLAlchemy URL of the database: sqlite:///path (the embedded "
        "default) or mysql+pymysql://user:password@host/nova.",
        secret=True,
    ),
    BoolOpt(
        "create_database",
        default=True,
        help="Let `nova-manage db sync` create the MySQL database when it is missing.",
    ),
    IntOpt("max_pool_size", default=8, min=1, help="Database connections (and threads) per process."),
    IntOpt(
        "max_retries",
        default=5,
        min=0,
        help="Times a transaction is retried after a transient error (deadlock, lock wait timeout, lost connection).",
    ),
    FloatOpt("retry_interval", default=0.2, min=0, help="Seconds before the first retry; doubles each time."),
    IntOpt(
        "connect_timeout",
        default=5,
        min=1,
        help="Seconds to wait for a connection to the database server before giving up.",
    ),
]
