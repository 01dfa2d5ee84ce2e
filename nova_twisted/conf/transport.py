"""[transport]: the message bus every service talks through."""

from nova_twisted.conf.types import IntOpt, ListOpt

SECTION = "transport"
OPTS = [
    ListOpt(
        "url",
        default=["memory://"],
        help="Message bus URL(s): memory:// (one process only, the embedded "
        "default) or amqp://user:password@host:port/vhost; several amqp URLs "
        "(comma separated) name the nodes of a RabbitMQ cluster.",
        secret=True,
    ),
    IntOpt(
        "rpc_response_timeout",
        default=60,
        min=1,
        help="Seconds a call waits for its reply before it fails with MessagingTimeout.",
    ),
]
