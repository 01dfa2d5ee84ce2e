"""[DEFAULT]: options every service shares."""

from nova_twisted.conf.types import BoolOpt, FloatOpt, IntOpt, StrOpt

SECTION = "DEFAULT"
OPTS = [
    StrOpt(
        "host",
        default="",
        help="Name of this host as services and instances know it. "
        "Empty means the machine's host name. `--host` overrides it.",
        sample_default="<machine host name>",
    ),
    StrOpt(
        "state_path",
        default="state",
        help="Directory for the service's state: the SQLite database, image "
        "files, instance files. A relative path is taken from the directory "
        "the service starts in. Other options may refer to it as $state_path.",
        interpolate=False,
    ),
    StrOpt("my_ip", default="127.0.0.1", help="IP address of this host, as other hosts reach it."),
    BoolOpt("debug", default=False, help="Log debug events too. `--debug` sets it."),
    StrOpt("log_file", default="", help="Write the log to this file instead of standard error."),
    IntOpt(
        "report_interval",
        default=10,
        min=1,
        help="Seconds between two heartbeats of a service into the services table.",
    ),
    IntOpt(
        "service_down_time",
        default=60,
        min=1,
        help="A service whose last heartbeat is older than this many seconds is shown down.",
    ),
    FloatOpt(
        "periodic_fuzzy_delay",
        default=5.0,
        min=0,
        help="Periodic tasks start after a random delay of up to this many "
        "seconds, so that many services do not run them in step.",
    ),
    IntOpt(
        "graceful_shutdown_timeout",
        default=60,
        min=0,
        help="On SIGTERM a service stops taking new work and waits at most this "
        "many seconds for the work in flight before it exits.",
    ),
]
