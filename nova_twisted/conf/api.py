"""[api]: the HTTP front ends of nova-api (compute, image; identity has [identity])."""

from nova_twisted.conf.types import FloatOpt, IntOpt, PortOpt, StrOpt

SECTION = "api"
OPTS = [
    StrOpt("compute_listen", default="0.0.0.0", help="Address the OpenStack Compute API listens on."),
    PortOpt("compute_port", default=8774, help="TCP port of the OpenStack Compute API."),
    StrOpt("image_listen", default="0.0.0.0", help="Address the image API (Glance v2 compatible) listens on."),
    PortOpt("image_port", default=9292, help="TCP port of the image API."),
    StrOpt(
        "policy_file",
        default="",
        help="YAML file of policy rules overriding the built-in defaults (see etc/policy.yaml); "
        "empty: the defaults only.",
    ),
    IntOpt("max_limit", default=1000, min=1, help="Most items one page of a list answer holds."),
    FloatOpt(
        "token_cache_seconds",
        default=5.0,
        min=0,
        help="Seconds a validated token is trusted before it is checked again (revocation through "
        "this process's identity API takes effect at once).",
    ),
]
