"""[identity]: the built-in identity service (:5000/v3) and how every API checks tokens."""

from nova_twisted.conf.types import IntOpt, PortOpt, StrOpt

SECTION = "identity"
OPTS = [
    StrOpt(
        "bind_host",
        default="0.0.0.0",
        help="Address the identity API (Keystone v3 compatible) listens on.",
    ),
    PortOpt("bind_port", default=5000, help="TCP port of the identity API."),
    IntOpt(
        "token_expiration",
        default=3600,
        min=10,
        help="Seconds a token is valid after it is issued. A token obtained with another token "
        "keeps the expiry of the first one.",
    ),
    StrOpt(
        "password_hash_algorithm",
        default="bcrypt",
        choices=("bcrypt", "scrypt"),
        help="How new passwords are hashed. Stored hashes of either kind keep verifying after a change.",
    ),
    IntOpt(
        "password_hash_rounds",
        default=12,
        min=4,
        max=31,
        help="Cost of a password hash: bcrypt's log2 rounds, or log2 of scrypt's N. Each step doubles "
        "the time one login takes (12: about a quarter second on one core).",
    ),
    StrOpt(
        "region_name",
        default="RegionOne",
        help="Region every endpoint of the service catalog is in.",
    ),
    StrOpt(
        "compute_url",
        default="http://$my_ip:8774/v2.1",
        help="URL of the compute API in the service catalog (public, internal and admin). "
        "$my_ip is [DEFAULT] my_ip: set that to an address clients can reach.",
    ),
    StrOpt("image_url", default="http://$my_ip:9292", help="URL of the image API in the service catalog."),
    StrOpt(
        "identity_url",
        default="http://$my_ip:5000/v3",
        help="URL of this identity API in the service catalog; clients use it for users, projects and EC2 credentials.",
    ),
    StrOpt("ec2_url", default="http://$my_ip:8773/", help="URL of the EC2 API in the service catalog."),
    StrOpt(
        "token_validation",
        default="local",
        choices=("local", "keystone"),
        help="How the compute, image and EC2 APIs check tokens: local (this cloud's own identity "
        "database) or keystone (ask the external Keystone at auth_url, with a service token).",
    ),
    StrOpt(
        "auth_url",
        default="",
        help="With token_validation = keystone: the external Keystone's v3 endpoint, e.g. http://keystone:5000/v3.",
    ),
    StrOpt("username", default="", help="With token_validation = keystone: service user that validates tokens."),
    StrOpt("password", default="", help="Password of the service user.", secret=True),
    StrOpt("project_name", default="service", help="Project the service user's token is scoped to."),
    StrOpt("user_domain_name", default="Default", help="Domain of the service user."),
    StrOpt("project_domain_name", default="Default", help="Domain of the service user's project."),
    IntOpt(
        "keystone_timeout",
        default=10,
        min=1,
        help="Seconds to wait for the external Keystone before a request fails with 503.",
    ),
]
