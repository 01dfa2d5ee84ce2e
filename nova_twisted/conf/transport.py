"""[transport]: the message bus every service talks through."""

from nova_twisted.conf.types import BoolOpt, FloatOpt, IntOpt, ListOpt, StrOpt

SECTION = "transport"
OPTS = [
    ListOpt(
        "url",
        default=["memory://"],
        help="Message bus URL(s): memory:// (one process only, the embedded "
        "default) or amqp://user:password@host:port/vhost (amqps:// for TLS); "
        "several amqp URLs (comma separated) name the nodes of a RabbitMQ "
        "cluster, tried in turn when connecting and reconnecting.",
        secret=True,
    ),
    IntOpt(
        "rpc_response_timeout",
        default=60,
        min=1,
        help="Seconds a call waits for its reply before it fails with MessagingTimeout.",
    ),
    StrOpt(
        "exchange",
        default="nova",
        help="Name of the topic exchange service queues are bound to (AMQP only).",
    ),
    IntOpt(
        "heartbeat",
        default=30,
        min=0,
        help="AMQP heartbeat interval in seconds: a connection that stays silent "
        "for three intervals is dropped and re-established. 0 turns heartbeats off.",
    ),
    IntOpt(
        "prefetch",
        default=64,
        min=0,
        help="Messages a server takes from each of its queues before it has "
        "acknowledged earlier ones (AMQP basic.qos). 0 means no limit.",
    ),
    FloatOpt(
        "connect_timeout",
        default=5.0,
        min=0.1,
        help="Seconds one attempt to connect to (and log in to) a broker may take.",
    ),
    FloatOpt(
        "reconnect_delay",
        default=0.5,
        min=0.01,
        help="Seconds before the first reconnection attempt after the broker "
        "connection was lost; the delay doubles after each failed attempt.",
    ),
    FloatOpt(
        "reconnect_max_delay",
        default=15.0,
        min=0.01,
        help="Upper bound, in seconds, of the delay between reconnection attempts.",
    ),
    IntOpt(
        "max_queued_messages",
        default=10000,
        min=0,
        help="Casts and calls held in memory while the broker is unreachable; "
        "once that many wait, further sends fail at once with MessagingError.",
    ),
    FloatOpt(
        "queued_message_timeout",
        default=60.0,
        min=0,
        help="Seconds a cast or fanout made while the broker is unreachable "
        "waits for the connection to come back before it fails with MessagingError.",
    ),
    BoolOpt(
        "retry_calls_on_reconnect",
        default=True,
        help="When the broker connection drops while calls wait for replies, "
        "send those calls again once reconnected (handlers are idempotent); "
        "when false such calls fail at once with MessagingError.",
    ),
    StrOpt(
        "ssl_ca_file",
        default="",
        help="CA certificate(s) (PEM) that sign the broker's certificate, for "
        "amqps:// URLs. Empty means the system's trusted CAs.",
    ),
    StrOpt("ssl_cert_file", default="", help="Client certificate (PEM) presented to the broker, for amqps:// URLs."),
    StrOpt("ssl_key_file", default="", help="Private key (PEM) of ssl_cert_file."),
]
