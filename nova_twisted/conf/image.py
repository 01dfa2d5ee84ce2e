"""[image]: the built-in image store and API, and the Glance v2 client."""

from nova_twisted.conf.types import IntOpt, StrOpt

SECTION = "image"
OPTS = [
    StrOpt(
        "data_dir",
        default="$state_path/images",
        help="Directory where the built-in image store keeps image files (one file per image).",
    ),
    IntOpt(
        "chunk_size",
        default=1024 * 1024,
        min=4096,
        max=64 * 1024 * 1024,
        help="Bytes read or written at a time when image data is streamed to or from disk.",
    ),
    IntOpt(
        "image_size_cap",
        default=1099511627776,
        min=1,
        help="Largest image, in bytes, the built-in store accepts; a larger upload fails with 413.",
    ),
    IntOpt(
        "image_property_quota",
        default=128,
        min=0,
        help="Most extra properties one image may have.",
    ),
    IntOpt("image_tag_quota", default=128, min=0, help="Most tags one image may have."),
    IntOpt("image_member_quota", default=128, min=0, help="Most projects one image may be shared with."),
    IntOpt(
        "limit_param_default",
        default=25,
        min=1,
        help="Images one page of `GET /v2/images` shows when the request gives no limit.",
    ),
    IntOpt(
        "api_limit_max",
        default=1000,
        min=1,
        help="Most images one page of `GET /v2/images` shows, whatever limit the request asks for.",
    ),
    StrOpt(
        "endpoint",
        default="http://127.0.0.1:9292",
        help="Base URL of the Glance v2 endpoint the image client talks to (ours or any Glance), without /v2.",
    ),
    IntOpt(
        "timeout",
        default=60,
        min=1,
        help="Seconds the image client waits to connect, and for an answer to a request that carries no image data.",
    ),
    StrOpt(
        "auth_url",
        default="",
        help="Identity v3 endpoint (e.g. http://127.0.0.1:5000/v3) where the image client gets a token "
        "of its own when a request carries no user token. Empty: every request must carry the user's token.",
    ),
    StrOpt("username", default="", help="Service user the image client authenticates as (with auth_url)."),
    StrOpt("password", default="", help="Password of the service user.", secret=True),
    StrOpt("project_name", default="service", help="Project the service user's token is scoped to."),
    StrOpt("user_domain_name", default="Default", help="Domain of the service user."),
    StrOpt("project_domain_name", default="Default", help="Domain of the service user's project."),
]
