"""Servers: list (+ /detail), show, create, update, delete, and the server view the servers family shares.

Bodies carry exactly the fields of the requested microversion, as Nova's
view builder makes them: the detailed view of GET /servers/{id} and
/servers/detail, the short one of GET /servers, the small answer of
POST /servers, and the narrower views PUT and rebuild answer with below
2.75. There is no network service: ``addresses`` is always ``{}``,
``networks`` may be "auto"/"none" (or absent) but not a list.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import secrets
import string

import jsonschema

from nova_twisted import exception, utils
from nova_twisted.api.compute.app import FORMAT_CHECKER, parse_isotime
from nova_twisted.api.http import Response, encode_json
from nova_twisted.compute import states
from nova_twisted.db import servers as db_servers
from nova_twisted.db import services

R = "os_compute_api:servers:"

POLICIES = {
    R + "index": "rule:project_reader_or_admin",
    R + "detail": "rule:project_reader_or_admin",
    R + "index:get_all_tenants": "rule:admin_api",
    R + "detail:get_all_tenants": "rule:admin_api",
    R + "allow_all_filters": "rule:admin_api",
    R + "show": "rule:project_reader_or_admin",
    R + "show:all_projects": "rule:admin_api",
    R + "show:host_status": "rule:admin_api",
    R + "create": "rule:project_member_or_admin",
    R + "create:forced_host": "rule:admin_api",
    R + "create:attach_network": "rule:project_member_or_admin",
    R + "create:trusted_certs": "rule:project_member_or_admin",
    "compute:servers:create:requested_destination": "rule:admin_api",
    R + "update": "rule:project_member_or_admin",
    R + "delete": "rule:project_member_or_admin",
    "os_compute_api:os-extended-server-attributes": "rule:admin_api",
}

POLICY_DOCS = {
    R + "index": ("List servers of the caller's project.", [("GET", "/servers")]),
    R + "detail": ("List servers of the caller's project with details.", [("GET", "/servers/detail")]),
    R + "index:get_all_tenants": ("List servers of every project (all_tenants).", [("GET", "/servers")]),
    R + "detail:get_all_tenants": (
        "List servers of every project with details (all_tenants).",
        [("GET", "/servers/detail")],
    ),
    R + "allow_all_filters": (
        "Filter server lists by any field (host, node, user_id, deleted, ...), not only the few any user may.",
        [("GET", "/servers"), ("GET", "/servers/detail")],
    ),
    R + "show": ("Show a server.", [("GET", "/servers/{server_id}")]),
    R + "show:all_projects": (
        "See and act on servers of other projects (without it, another project's server is 404).",
        [("GET", "/servers/{server_id}"), ("POST", "/servers/{server_id}/action")],
    ),
    R + "show:host_status": (
        "Show host_status (UP, DOWN, MAINTENANCE, UNKNOWN) of a server's host (2.16+).",
        [("GET", "/servers/{server_id}"), ("GET", "/servers/detail")],
    ),
    R + "create": ("Create servers.", [("POST", "/servers")]),
    R + "create:forced_host": (
        "Create a server on a given host with availability_zone zone:host[:node].",
        [("POST", "/servers")],
    ),
    R + "create:attach_network": ("Create a server asking for networks.", [("POST", "/servers")]),
    R + "create:trusted_certs": (
        "Create a server with trusted image certificate ids (2.63+).",
        [("POST", "/servers")],
    ),
    "compute:servers:create:requested_destination": (
        "Create a server asking for a host or hypervisor_hostname (2.74+).",
        [("POST", "/servers")],
    ),
    R + "update": ("Rename a server, set its description or access IPs.", [("PUT", "/servers/{server_id}")]),
    R + "delete": ("Delete a server.", [("DELETE", "/servers/{server_id}")]),
    "os_compute_api:os-extended-server-attributes": (
        "Show the OS-EXT-SRV-ATTR attributes (host, instance name, hypervisor, user data, ...) of servers.",
        [("GET", "/servers/{server_id}"), ("GET", "/servers/detail")],
    ),
}

# -- Nova's parameter types -----------------------------------------------------------------
NAME = {"type": "string", "minLength": 1, "maxLength": 255, "format": "name"}
NAME_OR_NONE = {"oneOf": [{"type": "null"}, NAME]}
DESCRIPTION = {"type": ["string", "null"], "minLength": 0, "maxLength": 255, "pattern": r"^[^\x00-\x08\x0b-\x1f\x7f]*$"}
BOOLEAN = {
    "type": ["boolean", "string"],
    "enum": [True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes", "y", "t"]
    + [False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no", "n", "f"],
}
POSITIVE_INTEGER = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 1, "minLength": 1}
FLAVOR_REF = {"type": ["string", "integer"], "minLength": 1}
IMAGE_ID = {"type": "string", "format": "uuid"}
IMAGE_ID_OR_EMPTY = {"oneOf": [IMAGE_ID, {"type": "string", "maxLength": 0}]}
METADATA = {
    "type": "object",
    "patternProperties": {"^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255}},
    "additionalProperties": False,
}
ACCESS_IPV4 = {"type": "string", "format": "ipv4"}
ACCESS_IPV6 = {"type": "string", "format": "ipv6"}
IP_ADDRESS = {"type": "string", "oneOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
DISK_CONFIG = {"type": "string", "enum": ["AUTO", "MANUAL"]}
TAG = {"type": "string", "maxLength": 60, "pattern": "^[^,/]*$"}
MAX_TAGS = 50
TRUSTED_CERTS = {
    "type": ["array", "null"],
    "minItems": 1,
    "maxItems": 50,
    "uniqueItems": True,
    "items": {"type": "string", "minLength": 1},
}
HOSTNAME = {"type": "string", "minLength": 2, "maxLength": 255, "pattern": "^[a-zA-Z0-9-._]*$"}
SERVER_ID = {"type": "string", "format": "uuid"}
USER_DATA = {"type": "string", "format": "base64", "maxLength": 65535}
PERSONALITY = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"path": {"type": "string"}, "contents": {"type": "string", "format": "base64"}},
        "additionalProperties": False,
    },
}
ADMIN_PASSWORD = {"type": "string"}
_LEGACY_BDM = {
    "type": "object",
    "properties": {
        "virtual_name": {"type": "string", "maxLength": 255},
        "volume_id": {"type": "string", "format": "uuid"},
        "snapshot_id": IMAGE_ID,
        "volume_size": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1, "maximum": 0x7FFFFFFF},
        "device_name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9._/-]*$"},
        "delete_on_termination": BOOLEAN,
        "no_device": {},
        "connection_info": {"type": "string", "maxLength": 16777215},
    },
    "additionalProperties": False,
}
_BDM_V2_ITEM = copy.deepcopy(_LEGACY_BDM)
_BDM_V2_ITEM["properties"].update(
    {
        "source_type": {"type": "string", "enum": ["volume", "image", "snapshot", "blank"]},
        "uuid": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9._-]*$"},
        "image_id": IMAGE_ID,
        "destination_type": {"type": "string", "enum": ["local", "volume"]},
        "guest_format": {"type": "string", "maxLength": 255},
        "device_type": {"type": "string", "maxLength": 255},
        "disk_bus": {"type": "string", "maxLength": 255},
        "boot_index": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$"},
        "tag": TAG,
        "volume_type": {"type": ["string", "null"], "minLength": 0, "maxLength": 255},
    }
)
_BDM = {"type": "array", "items": _LEGACY_BDM}
_BDM_V2 = {"type": "array", "items": _BDM_V2_ITEM}

# -- request schemas, per microversion -------------------------------------------------------
_HINTS = {
    "type": "object",
    "properties": {
        "group": {"type": "string", "format": "uuid"},
        "different_host": {"oneOf": [{"type": "string", "format": "uuid"}, {"type": "array", "items": SERVER_ID}]},
        "same_host": {"type": ["string", "array"], "items": SERVER_ID},
        "query": {"type": ["string", "object"]},
        "target_cell": NAME,
        "different_cell": {"type": ["string", "array"], "items": {"type": "string"}},
        "build_near_host_ip": IP_ADDRESS,
        "cidr": {"type": "string", "pattern": "^/[0-9a-f.:]+$"},
    },
    "additionalProperties": True,
}
_NETWORK = {
    "type": "object",
    "properties": {
        "fixed_ip": IP_ADDRESS,
        "port": {"oneOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]},
        "uuid": {"type": "string"},
    },
    "additionalProperties": False,
}

CREATE = {
    "type": "object",
    "properties": {
        "server": {
            "type": "object",
            "properties": {
                "name": NAME,
                "imageRef": IMAGE_ID_OR_EMPTY,
                "flavorRef": FLAVOR_REF,
                "adminPass": ADMIN_PASSWORD,
                "metadata": METADATA,
                "networks": {"type": "array", "items": _NETWORK},
                "OS-DCF:diskConfig": DISK_CONFIG,
                "accessIPv4": ACCESS_IPV4,
                "accessIPv6": ACCESS_IPV6,
                "personality": PERSONALITY,
                "availability_zone": NAME,
                "block_device_mapping": _BDM,
                "block_device_mapping_v2": _BDM_V2,
                "config_drive": BOOLEAN,
                "key_name": NAME,
                "min_count": POSITIVE_INTEGER,
                "max_count": POSITIVE_INTEGER,
                "return_reservation_id": BOOLEAN,
                "security_groups": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"name": NAME}, "additionalProperties": False},
                },
                "user_data": USER_DATA,
            },
            "required": ["name", "flavorRef"],
            "additionalProperties": False,
        },
        "os:scheduler_hints": _HINTS,
        "OS-SCH-HNT:scheduler_hints": _HINTS,
    },
    "required": ["server"],
    "additionalProperties": False,
}


def _derive(schema: dict, **server_properties) -> dict:
    derived = copy.deepcopy(schema)
    for key, value in server_properties.items():
        if value is None:
            derived["properties"]["server"]["properties"].pop(key, None)
        else:
            derived["properties"]["server"]["properties"][key] = value
    return derived


def _networks_v237(with_tag: bool) -> dict:
    item = copy.deepcopy(_NETWORK)
    item["properties"]["uuid"] = {"type": "string", "format": "uuid"}
    if with_tag:
        item["properties"]["tag"] = TAG
    return {"oneOf": [{"type": "array", "items": item}, {"type": "string", "enum": ["none", "auto"]}]}


CREATE_V219 = _derive(CREATE, description=DESCRIPTION)
_NETWORK_TAGGED = copy.deepcopy(_NETWORK)
_NETWORK_TAGGED["properties"]["tag"] = TAG
CREATE_V232 = _derive(CREATE_V219, networks={"type": "array", "items": _NETWORK_TAGGED})
CREATE_V237 = _derive(CREATE_V232, networks=_networks_v237(False))
CREATE_V237["properties"]["server"]["required"].append("networks")
CREATE_V242 = _derive(CREATE_V237, networks=_networks_v237(True))
CREATE_V252 = _derive(CREATE_V242, tags={"type": "array", "items": TAG, "maxItems": MAX_TAGS})
CREATE_V257 = _derive(CREATE_V252, personality=None)
CREATE_V263 = _derive(CREATE_V257, trusted_image_certificates=TRUSTED_CERTS)
CREATE_V274 = _derive(CREATE_V263, host=HOSTNAME, hypervisor_hostname=HOSTNAME)

UPDATE = {
    "type": "object",
    "properties": {
        "server": {
            "type": "object",
            "properties": {
                "name": NAME,
                "OS-DCF:diskConfig": DISK_CONFIG,
                "accessIPv4": ACCESS_IPV4,
                "accessIPv6": ACCESS_IPV6,
            },
            "additionalProperties": False,
        }
    },
    "required": ["server"],
    "additionalProperties": False,
}
UPDATE_V219 = _derive(UPDATE, description=DESCRIPTION)


def create_schema(version) -> dict:
    """The POST /servers body schema at ``version``."""
    for low, schema in (
        ("2.74", CREATE_V274),
        ("2.63", CREATE_V263),
        ("2.57", CREATE_V257),
        ("2.52", CREATE_V252),
        ("2.42", CREATE_V242),
        ("2.37", CREATE_V237),
        ("2.32", CREATE_V232),
        ("2.19", CREATE_V219),
    ):
        if version >= low:
            return schema
    return CREATE


def update_schema(version) -> dict:
    """The PUT /servers/{id} body schema at ``version``."""
    return UPDATE_V219 if version >= "2.19" else UPDATE


# -- query parameters ------------------------------------------------------------------------
def multi(schema: dict) -> dict:
    """A query parameter (a list of values, one per occurrence) whose values match ``schema``."""
    return {"type": "array", "items": schema}


QUERY_STRING = multi({"type": "string"})
QUERY_REGEX = multi({"type": "string", "format": "regex"})
QUERY_DATETIME = multi({"type": "string", "format": "date-time"})
PAGINATION = {
    "limit": multi({"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 0}),
    "marker": QUERY_STRING,
}

SORT_IGNORED = [
    "architecture",
    "cell_name",
    "cleaned",
    "default_ephemeral_device",
    "default_swap_device",
    "deleted",
    "deleted_at",
    "disable_terminate",
    "ephemeral_gb",
    "ephemeral_key_uuid",
    "id",
    "key_data",
    "launched_on",
    "locked",
    "memory_mb",
    "os_type",
    "reservation_id",
    "root_gb",
    "shutdown_terminate",
    "user_data",
    "vcpus",
    "vm_mode",
]
SORT_IGNORED_V273 = [k for k in SORT_IGNORED if k != "locked"]
SORT_KEYS = [
    "access_ip_v4",
    "access_ip_v6",
    "auto_disk_config",
    "availability_zone",
    "config_drive",
    "created_at",
    "display_description",
    "display_name",
    "host",
    "hostname",
    "image_ref",
    "instance_type_id",
    "kernel_id",
    "key_name",
    "launch_index",
    "launched_at",
    "locked_by",
    "node",
    "power_state",
    "progress",
    "project_id",
    "ramdisk_id",
    "root_device_name",
    "task_state",
    "terminated_at",
    "updated_at",
    "user_id",
    "uuid",
    "vm_state",
]
JOINED_TABLE_PARAMS = (
    "block_device_mapping",
    "services",
    "metadata",
    "system_metadata",
    "info_cache",
    "security_groups",
    "pci_devices",
)

_LIST_QUERY_V21 = {
    "type": "object",
    "properties": {
        **{
            name: QUERY_STRING
            for name in (
                "user_id",
                "project_id",
                "tenant_id",
                "launch_index",
                "image_ref",
                "image",
                "vm_state",
                "task_state",
                "host",
                "uuid",
                "sort_dir",
                "all_tenants",
                "soft_deleted",
                "deleted",
                "status",
            )
        },
        **{
            name: QUERY_REGEX
            for name in (
                "kernel_id",
                "ramdisk_id",
                "hostname",
                "key_name",
                "power_state",
                "node",
                "flavor",
                "reservation_id",
                "launched_at",
                "terminated_at",
                "availability_zone",
                "name",
                "display_name",
                "description",
                "display_description",
                "locked_by",
                "root_device_name",
                "config_drive",
                "access_ip_v4",
                "access_ip_v6",
                "auto_disk_config",
                "progress",
                "ip",
                "ip6",
                "created_at",
            )
        },
        **{name: QUERY_STRING for name in JOINED_TABLE_PARAMS},
        "sort_key": multi({"type": "string", "enum": SORT_KEYS + SORT_IGNORED}),
        "changes-since": QUERY_DATETIME,
        **PAGINATION,
    },
    "additionalProperties": True,
    "patternProperties": {"^_": QUERY_STRING},
}


def _derive_query(schema: dict, **properties) -> dict:
    derived = copy.deepcopy(schema)
    derived["properties"].update(properties)
    return derived


_LIST_QUERY_V226 = _derive_query(
    _LIST_QUERY_V21, **{name: QUERY_REGEX for name in ("tags", "tags-any", "not-tags", "not-tags-any")}
)
_LIST_QUERY_V266 = _derive_query(_LIST_QUERY_V226, **{"changes-before": QUERY_DATETIME})
_LIST_QUERY_V273 = _derive_query(
    _LIST_QUERY_V266,
    sort_key=multi({"type": "string", "enum": ["locked"] + SORT_KEYS + SORT_IGNORED_V273}),
    locked=QUERY_STRING,
)
_LIST_QUERY_V275 = _derive_query(_LIST_QUERY_V273, sort_key=multi({"type": "string", "enum": ["locked"] + SORT_KEYS}))
_LIST_QUERY_V275["additionalProperties"] = False


def list_query_schema(version) -> dict:
    """The GET /servers(/detail) query schema at ``version``."""
    for low, schema in (
        ("2.75", _LIST_QUERY_V275),
        ("2.73", _LIST_QUERY_V273),
        ("2.66", _LIST_QUERY_V266),
        ("2.26", _LIST_QUERY_V226),
    ):
        if version >= low:
            return schema
    return _LIST_QUERY_V21


def validate_query(query: dict[str, list[str]], schema: dict) -> None:
    """Raise ValidationError with Nova's query-parameter wording when ``query`` breaks ``schema``."""
    validator = jsonschema.Draft4Validator(schema, format_checker=FORMAT_CHECKER)
    error = jsonschema.exceptions.best_match(validator.iter_errors(query))
    if error is None:
        return
    path = [p for p in error.absolute_path if not isinstance(p, int)]
    if error.validator == "additionalProperties":
        raise exception.ValidationError(f"Additional properties are not allowed ({_unexpected(error)} was unexpected)")
    name = path[-1] if path else ""
    raise exception.ValidationError(
        f"Invalid input for query parameters {name}. Value: {error.instance}. {error.message}", field=name
    )


def _unexpected(error) -> str:
    message = error.message
    start = message.find("(")
    return message[start + 1 : message.rfind(" was unexpected")] if start >= 0 else message


# -- small helpers -----------------------------------------------------------------------
TRUE_STRINGS = ("1", "t", "true", "on", "y", "yes")
FALSE_STRINGS = ("0", "f", "false", "off", "n", "no")


def bool_from_string(value, strict: bool = False, default: bool = False) -> bool:
    """oslo's bool_from_string: ``strict`` raises InvalidRequest for an unknown word."""
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in TRUE_STRINGS:
        return True
    if lowered in FALSE_STRINGS:
        return False
    if strict:
        acceptable = ", ".join(f"'{s}'" for s in sorted(TRUE_STRINGS + FALSE_STRINGS))
        raise exception.InvalidRequest(
            reason=f"Invalid input received: Unrecognized value '{value}', acceptable values are: {acceptable}"
        )
    return default


def id_from_href(ref) -> str:
    """The last path segment of an href (or the value itself), as Nova reads imageRef/flavorRef."""
    text = str(ref)
    return text.rstrip("/").rsplit("/", 1)[-1] if "/" in text else text


def generate_password(length: int = 12) -> str:
    """A random admin password as Nova makes one (letters and digits, no look-alikes)."""
    alphabet = "".join(c for c in string.ascii_letters + string.digits if c not in "lI1O0o")
    return "".join(secrets.choice(alphabet) for _ in range(length))


def host_id(project_id, host) -> str:
    """Nova's hostId: sha224 of project id + host ("" without a host)."""
    if not host:
        return ""
    return hashlib.sha224((str(project_id) + host).encode("utf-8")).hexdigest()


def perfect_time(value) -> str | None:
    """A naive UTC datetime as oslo serialises one (``2017-02-14T19:23:59.895661``)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


# -- the server view --------------------------------------------------------------------------
PROGRESS_STATUSES = frozenset(("ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"))
FAULT_STATUSES = frozenset(("ERROR", "DELETED"))
EXTRA_SPECS_RULE = "os_compute_api:os-flavor-extra-specs:index"


_DECISIONS: dict = {}


def _caller(ctxt) -> tuple:
    """What policy decisions depend on of a request context."""
    return (
        ctxt.user_id,
        ctxt.project_id,
        tuple(ctxt.roles or ()),
        ctxt.is_admin,
        ctxt.user_name,
        ctxt.project_name,
    )


#: A View's policy facts by (enforcer, caller, microversion, base URL); bounded, cleared when full.
_VIEW_FACTS: dict = {}


def allowed(app, req, rule: str, target: dict | None = None) -> bool:
    """``app.allowed``, remembered per (rule, caller, target): rules are pure functions of those."""
    key = (
        app.policy,  # the object itself (an id() could be reused by another app's enforcer)
        rule,
        _caller(req.context),
        tuple(sorted(target.items())) if target else None,
    )
    decision = _DECISIONS.get(key)
    if decision is None:
        if len(_DECISIONS) > 10000:
            _DECISIONS.clear()
        decision = _DECISIONS[key] = app.allowed(req, rule, target)
    return decision


def authorize(app, req, rule: str, target: dict | None = None) -> None:
    """``app.authorize`` through the remembered decisions: Forbidden unless ``rule`` allows the caller."""
    if not allowed(app, req, rule, target):
        raise exception.Forbidden(action=rule)


class View:
    """What one request may see of servers: computed once, applied to every server of the answer."""

    __slots__ = (
        "app",
        "version",
        "base",
        "is_admin",
        "all_projects",
        "extended_attrs",
        "host_status",
        "extra_specs",
        "_now",
        "down_time",
        "v",
        "signature",
    )

    def __init__(self, app, req):
        self.app = app
        self.version = version = app.version(req)
        self.base = base = app.base_url(req)
        ctxt = req.context
        # What the caller may see is a pure function of who asks, at which version, through which address.
        key = (app.policy, _caller(ctxt), version, base)
        facts = _VIEW_FACTS.get(key)
        if facts is None:
            v = (version.major, version.minor)
            is_admin = bool(ctxt.is_admin)
            extended_attrs = allowed(app, req, "os_compute_api:os-extended-server-attributes")
            host_status = v >= (2, 16) and allowed(app, req, R + "show:host_status")
            extra_specs = v >= (2, 47) and (
                EXTRA_SPECS_RULE not in app.policy.rules or allowed(app, req, EXTRA_SPECS_RULE)
            )
            facts = (
                v,
                is_admin,
                allowed(app, req, R + "show:all_projects"),
                extended_attrs,
                host_status,
                extra_specs,
                (v, base, is_admin, extended_attrs, host_status, extra_specs),
            )
            if len(_VIEW_FACTS) > 10000:
                _VIEW_FACTS.clear()
            _VIEW_FACTS[key] = facts
        (
            self.v,
            self.is_admin,
            self.all_projects,
            self.extended_attrs,
            self.host_status,
            self.extra_specs,
            self.signature,
        ) = facts
        self._now = None
        self.down_time = app.conf.DEFAULT.service_down_time

    @property
    def now(self):
        """This request's now (read once: every server of an answer is judged at the same time)."""
        if self._now is None:
            self._now = utils.utcnow(self.app.reactor)
        return self._now

    def extras(self, show: bool = False) -> frozenset:
        """What the database call must add to each instance for this view."""
        wanted = {"fault", "host_az"}
        if self.v >= (2, 26):
            wanted.add("tags")
        if self.host_status:
            wanted.add("service")
        if show and self.v >= (2, 71):
            wanted.add("server_groups")
        return frozenset(wanted)

    def links(self, uuid: str) -> list[dict]:
        return [
            {"rel": "self", "href": f"{self.base}/v2.1/servers/{uuid}"},
            {"rel": "bookmark", "href": f"{self.base}/servers/{uuid}"},
        ]

    def basic(self, inst: dict) -> dict:
        """The short view of GET /servers."""
        return {"id": inst["uuid"], "name": inst["display_name"], "links": self.links(inst["uuid"])}

    def server(
        self,
        inst: dict,
        *,
        full: bool = True,
        server_groups: bool = False,
        user_data: bool = True,
        key_name: bool | None = None,
    ) -> dict:
        """The detailed view of one server.

        ``full=False`` is the narrower view PUT and rebuild answer with
        below 2.75; ``server_groups`` adds 2.71's field (show, PUT,
        rebuild); ``user_data=False`` leaves OS-EXT-SRV-ATTR:user_data out
        (rebuild shows it at the top level instead).
        """
        version = self.v
        uuid = inst["uuid"]
        project_id = inst["project_id"]
        host = inst["host"]
        status = "DELETED" if inst["deleted"] else states.status_from_state(inst["vm_state"], inst["task_state"])
        access_v4 = inst["access_ip_v4"]
        access_v6 = inst["access_ip_v6"]
        sysmeta = inst["system_metadata"]
        image_ref = inst["image_ref"]
        base = self.base
        body = {
            "id": uuid,
            "name": inst["display_name"],
            "status": status,
            "tenant_id": project_id or "",
            "user_id": inst["user_id"] or "",
            "metadata": inst.get("metadata") or {},
            "hostId": host_id(project_id, host),
            "image": (
                {"id": image_ref, "links": [{"rel": "bookmark", "href": f"{base}/images/{image_ref}"}]}
                if image_ref
                else ""
            ),
            "flavor": self._flavor(inst["flavor"]),
            "created": utils.isotime(inst["created_at"]),
            "updated": utils.isotime(inst["updated_at"]),
            "addresses": {},
            "accessIPv4": access_v4 if access_v4 is not None else "",
            "accessIPv6": access_v6 if access_v6 is not None else "",
            "links": [
                {"rel": "self", "href": f"{base}/v2.1/servers/{uuid}"},
                {"rel": "bookmark", "href": f"{base}/servers/{uuid}"},
            ],
            "OS-DCF:diskConfig": "AUTO" if sysmeta.get("auto_disk_config") == "True" else "MANUAL",
        }
        if status in FAULT_STATUSES:
            fault = inst.get("fault")
            if fault:
                body["fault"] = self._fault(fault)
        if status in PROGRESS_STATUSES:
            body["progress"] = inst["progress"] or 0
        if full:
            body["OS-EXT-AZ:availability_zone"] = (inst.get("host_az") if host else None) or (
                inst["availability_zone"] or ""
            )
            body["config_drive"] = inst["config_drive"] or ""
            body["key_name"] = inst["key_name"]
            body["OS-SRV-USG:launched_at"] = perfect_time(inst["launched_at"])
            body["OS-SRV-USG:terminated_at"] = perfect_time(inst["terminated_at"])
            if self.extended_attrs:
                body["OS-EXT-SRV-ATTR:host"] = host
                body["OS-EXT-SRV-ATTR:instance_name"] = inst["name"]
                body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = inst["node"]
                if version >= (2, 3):
                    body["OS-EXT-SRV-ATTR:reservation_id"] = inst["reservation_id"]
                    body["OS-EXT-SRV-ATTR:launch_index"] = inst["launch_index"]
                    body["OS-EXT-SRV-ATTR:hostname"] = inst["hostname"]
                    body["OS-EXT-SRV-ATTR:kernel_id"] = inst["kernel_id"] or ""
                    body["OS-EXT-SRV-ATTR:ramdisk_id"] = inst["ramdisk_id"] or ""
                    body["OS-EXT-SRV-ATTR:root_device_name"] = inst["root_device_name"]
                    if user_data:
                        body["OS-EXT-SRV-ATTR:user_data"] = inst["user_data"]
            body["OS-EXT-STS:task_state"] = inst["task_state"]
            body["OS-EXT-STS:vm_state"] = inst["vm_state"]
            body["OS-EXT-STS:power_state"] = inst["power_state"]
            body["os-extended-volumes:volumes_attached"] = []
            if self.host_status:
                body["host_status"] = self.host_status_of(host, inst.get("service"))
        elif key_name:
            body["key_name"] = inst["key_name"]
        if version >= (2, 9):
            body["locked"] = bool(inst["locked"])
        if version >= (2, 73):
            body["locked_reason"] = inst["locked_reason"]
        if version >= (2, 19):
            body["description"] = inst["display_description"]
        if version >= (2, 26):
            body["tags"] = list(inst.get("tags") or [])
        if version >= (2, 63):
            certs = sysmeta.get("trusted_image_certificates")
            body["trusted_image_certificates"] = json.loads(certs) if certs else None
        if server_groups:
            body["server_groups"] = list(inst.get("server_groups") or [])
        return body

    def _flavor(self, flavor: dict) -> dict:
        if not flavor:
            return {}
        if self.v >= (2, 47):
            shown = {
                "vcpus": flavor.get("vcpus"),
                "ram": flavor.get("memory_mb"),
                "disk": flavor.get("root_gb"),
                "ephemeral": flavor.get("ephemeral_gb") or 0,
                "swap": flavor.get("swap") or 0,
                "original_name": flavor.get("name"),
            }
            if self.extra_specs:
                shown["extra_specs"] = dict(flavor.get("extra_specs") or {})
            return shown
        flavorid = str(flavor.get("flavorid"))
        return {"id": flavorid, "links": [{"rel": "bookmark", "href": f"{self.base}/flavors/{flavorid}"}]}

    def _fault(self, fault: dict) -> dict:
        shown = {"code": fault["code"], "created": utils.isotime(fault["created_at"]), "message": fault["message"]}
        if fault.get("details") and (self.is_admin or fault["code"] != 500):
            shown["details"] = fault["details"]
        return shown

    def host_status_of(self, host: str | None, service: dict | None) -> str:
        """UP, DOWN, MAINTENANCE or UNKNOWN for a server's host ("" without one), as Nova tells them."""
        if not host or service is None:
            return ""
        if service["forced_down"]:
            return "DOWN"
        if service["disabled"]:
            return "MAINTENANCE"
        return "UP" if services.is_up(service, self.now, self.down_time) else "UNKNOWN"

    def rendered(self, row, **options) -> bytes:
        """The JSON of :meth:`server` for a database row, memoized.

        The body is a function of the row's raw values, this view's
        signature, the host's status now (only when shown) and the options,
        so a memoized body is exactly what rendering it again would give.
        """
        status = self.host_status_of(row.raw[_HOST], row.service()) if self.host_status else None
        key = (row.raw, self.signature, status, tuple(sorted(options.items())))
        body = _RENDERED.get(key)
        if body is None:
            body = encode_json(self.server(row.decoded(), **options))
            if len(row.raw[_USER_DATA] or "") <= _MEMO_USER_DATA:  # a big row is not worth its memory
                if len(_RENDERED) >= _RENDERED_MAX:
                    _RENDERED.clear()
                _RENDERED[key] = body
        return body


_UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
#: Rendered servers by (raw row, view signature, host status, options); bounded, cleared when full.
_RENDERED: dict = {}
_RENDERED_MAX = 5000
_MEMO_USER_DATA = 8192
_HOST = db_servers.COLUMN_NAMES.index("host")
_UUID = db_servers.COLUMN_NAMES.index("uuid")
_NAME = db_servers.COLUMN_NAMES.index("display_name")
_USER_DATA = db_servers.COLUMN_NAMES.index("user_data")


async def fetch_row(app, req, server_id: str, view: View, show: bool = True, read_deleted: str = "no"):
    """The server's database Row, if the caller may see it (404 otherwise, never 403)."""
    if not _UUID_TEXT.match(server_id):
        raise exception.InstanceNotFound(instance_id=server_id)
    project = None if view.all_projects else req.context.project_id
    found = db_servers.reader(app.database, app.reactor).get(server_id, project, read_deleted, view.extras(show))
    return found if isinstance(found, db_servers.Row) else await found


async def fetch(app, req, server_id: str, view: View, show: bool = True, read_deleted: str = "no") -> dict:
    """The server as an instance dict with what ``view`` shows (see :func:`fetch_row`)."""
    return (await fetch_row(app, req, server_id, view, show, read_deleted)).decoded()


# -- handlers ------------------------------------------------------------------------------
async def index(app, req):
    """List servers (id, name, links)."""
    app.authorize(req, R + "index")
    return await _list(app, req, detail=False)


async def detail(app, req):
    """List servers with details."""
    app.authorize(req, R + "detail")
    return await _list(app, req, detail=True)


async def show(app, req):
    """Show a server."""
    authorize(app, req, R + "show")
    view = View(app, req)
    row = await fetch_row(app, req, req.params["server_id"], view)
    return Response(200, b'{"server":' + view.rendered(row, server_groups=view.v >= (2, 71)) + b"}")


def _search_options(version) -> tuple[str, ...]:
    options = ("reservation_id", "name", "status", "image", "flavor", "ip", "changes-since", "all_tenants")
    if version >= "2.5":
        options += ("ip6",)
    if version >= "2.26":
        options += ("tags", "tags-any", "not-tags", "not-tags-any")
    if version >= "2.66":
        options += ("changes-before",)
    if version >= "2.73":
        options += ("locked",)
    return options


def _states_from_status(statuses: list[str]) -> tuple[list[str], list]:
    wanted = {s.strip().lower() for s in statuses}
    vm_states, task_states = set(), set()
    for vm_state, task_map in states._STATE_MAP.items():  # noqa: SLF001 - Nova's table, read as Nova reads it
        for task_state, status in task_map.items():
            if status.lower() in wanted:
                vm_states.add(vm_state)
                task_states.add(task_state)
    return sorted(vm_states), list(task_states)


def _admin_value(opts: dict, key: str):
    value = opts.get(key)
    return value if value not in (None, "") else None


async def _list(app, req, detail: bool):
    version = app.version(req)
    validate_query(req.query, list_query_schema(version))
    ctxt = req.context
    opts = {k: v[-1] for k, v in req.query.items() if v}
    all_filters = app.allowed(req, R + "allow_all_filters")
    if all_filters:
        for key in ("sort_key", "sort_dir", "limit", "marker"):
            opts.pop(key, None)
    else:
        allowed_options = _search_options(version)
        opts = {k: v for k, v in opts.items() if k in allowed_options}
    for key in opts:
        if key in JOINED_TABLE_PARAMS or key.startswith("_"):
            raise exception.InvalidRequest(reason=f"Invalid filter field: {key}.")

    filters: dict = {}
    if "status" in req.query and "status" in opts:
        vm_states, task_states = _states_from_status(req.args("status"))
        if not vm_states and not task_states:
            if version >= "2.38":
                raise exception.InvalidRequest(reason="Invalid status value")
            return {"servers": []}
        filters["vm_state"] = vm_states
        if "default" not in task_states:
            filters["task_state"] = task_states
    elif all_filters:
        for key in ("vm_state", "task_state"):
            if _admin_value(opts, key) is not None:
                filters[key] = [opts[key]]
    since = before = None
    if "changes-since" in opts:
        since = filters["changes_since"] = _time_filter(opts, "changes-since")
    if "changes-before" in opts:
        before = filters["changes_before"] = _time_filter(opts, "changes-before")
        if since is not None and before < since:
            raise exception.InvalidRequest(
                reason="The value of changes-since must be less than or equal to changes-before."
            )
    if "deleted" in opts:
        filters["deleted"] = bool_from_string(opts["deleted"], default=False)
    elif since is None and before is None:
        filters["deleted"] = False
    if filters.get("vm_state") == ["deleted"]:
        if not ctxt.is_admin:
            raise exception.Forbidden("Only administrators may list deleted instances")
        filters["deleted"] = True
    if version >= "2.26":
        for key in ("tags", "tags-any", "not-tags", "not-tags-any"):
            if key in opts:
                filters[key] = opts[key].split(",")
    all_tenants = "all_tenants" in opts and bool_from_string(opts["all_tenants"], strict=True)
    if "locked" in opts:
        filters["locked"] = bool_from_string(opts["locked"], strict=True)
    if all_tenants:
        app.authorize(req, R + ("detail:get_all_tenants" if detail else "index:get_all_tenants"))
        project = _admin_value(opts, "project_id") or _admin_value(opts, "tenant_id")
        if project is not None:
            filters["project_id"] = project
    elif ctxt.project_id:
        filters["project_id"] = ctxt.project_id
    else:
        filters["user_id"] = ctxt.user_id
    if "ip" in opts or "ip6" in opts:
        return {"servers": []}  # no network service: no server has an address to match
    if "name" in opts:
        filters["display_name"] = opts["name"]
    if "reservation_id" in opts:
        filters["reservation_id"] = opts["reservation_id"]
    if "image" in opts:
        filters["image_ref"] = id_from_href(opts["image"])
    if all_filters:
        _admin_filters(opts, filters)
    if "flavor" in opts:
        flavor_id = await app.database.run(db_servers.flavor_internal_id, id_from_href(opts["flavor"]))
        if flavor_id is None:
            return {"servers": []}
        filters["instance_type_id"] = flavor_id

    limit = app.limit(req)
    if limit is None:
        limit = app.conf.api.max_limit
    marker = req.arg("marker")
    sort_keys, sort_dirs = _sort_params(req, version, ctxt)
    view = View(app, req)
    rows = await app.database.run(
        db_servers.list_rows,
        filters,
        limit,
        marker,
        sort_keys,
        sort_dirs,
        view.extras() if detail else frozenset(),
    )
    ids = [{"id": row.raw[_UUID]} for row in rows]
    links = app.next_link(req, "servers/detail" if detail else "servers", ids, limit)
    if not detail:
        answer = {"servers": [view.basic({"uuid": row.raw[_UUID], "display_name": row.raw[_NAME]}) for row in rows]}
        if links:
            answer["servers_links"] = links
        return answer
    body = b'{"servers":[' + b",".join([view.rendered(row) for row in rows]) + b"]"
    if links:
        body += b',"servers_links":' + encode_json(links)
    return Response(200, body + b"}")


def _time_filter(opts: dict, name: str):
    try:
        return parse_isotime(opts[name])
    except ValueError:
        raise exception.InvalidRequest(reason=f"Invalid filter field: {name}.") from None


def _admin_filters(opts: dict, filters: dict) -> None:
    for key, column in (
        ("user_id", "user_id"),
        ("host", "host"),
        ("node", "node"),
        ("key_name", "key_name"),
        ("availability_zone", "availability_zone"),
        ("launch_index", "launch_index"),
        ("power_state", "power_state"),
        ("locked_by", "locked_by"),
        ("image_ref", "image_ref"),
        ("kernel_id", "kernel_id"),
        ("ramdisk_id", "ramdisk_id"),
        ("root_device_name", "root_device_name"),
        ("config_drive", "config_drive"),
        ("access_ip_v4", "access_ip_v4"),
        ("access_ip_v6", "access_ip_v6"),
        ("progress", "progress"),
    ):
        value = _admin_value(opts, key)
        if value is None:
            continue
        if key in ("launch_index", "power_state", "progress"):
            try:
                value = int(value)
            except ValueError:
                value = -1  # matches nothing, as a non-number never equals a number column
        filters[column] = value
    if _admin_value(opts, "uuid") is not None:
        filters["uuid"] = [opts["uuid"]]
    for key, column in (
        ("display_name", "display_name"),
        ("hostname", "hostname"),
        ("description", "display_description"),
        ("display_description", "display_description"),
    ):
        if _admin_value(opts, key) is not None:
            filters[column] = opts[key]


def _sort_params(req, version, ctxt) -> tuple[list[str], list[str]]:
    keys = [k.strip() for k in req.args("sort_key")] or ["created_at"]
    dirs = [d.strip() for d in req.args("sort_dir")] or ["desc"]
    ignored = SORT_IGNORED_V273 if version >= "2.73" else SORT_IGNORED
    for key in list(keys):
        if key in ignored or key == "auto_disk_config":
            index = keys.index(key)
            if len(dirs) > index:
                dirs.pop(index)
            keys.pop(index)
        elif key in ("host", "node") and not ctxt.is_admin:
            raise exception.Forbidden(f"Only administrators can sort servers by {key}")
    for direction in dirs:
        if direction not in ("asc", "desc"):
            raise exception.InvalidRequest(reason="Unknown sort direction, must be 'desc' or 'asc'")
    if len(dirs) > max(len(keys), 1):
        raise exception.InvalidRequest(reason="Sort direction size exceeds sort key size")
    return keys, dirs


# -- create, update, delete --------------------------------------------------------------------
NO_NETWORKS = (
    "This cloud has no network service: a server cannot be given networks, ports or fixed IPs. "
    "Boot with networks 'none' or 'auto' (it is built without networking)."
)


async def create(app, req):
    """Create one or more servers (202, with the admin password)."""
    version = app.version(req)
    body = app.body(req, create_schema(version))
    server = body["server"]
    ctxt = req.context
    password = server.get("adminPass") or generate_password()
    name = server["name"].strip()
    description = server.get("description") if version >= "2.19" else name
    availability_zone = server.get("availability_zone")
    target = {"project_id": ctxt.project_id, "user_id": ctxt.user_id, "availability_zone": availability_zone}
    app.authorize(req, R + "create", target)

    networks = server.get("networks")
    if isinstance(networks, list) and networks:
        app.authorize(req, R + "create:attach_network", target)
        raise exception.InvalidRequest(reason=NO_NETWORKS)
    image_ref = _image_from_block_devices(server)
    if server.get("personality"):
        raise exception.InvalidRequest(reason="Personality files are not supported by this cloud.")
    groups = [g.get("name") for g in server.get("security_groups") or [] if g.get("name")]
    for group in groups:
        if group != "default":
            raise exception.InvalidRequest(reason=f"Security group {group} not found.")

    system_metadata = {}
    if "OS-DCF:diskConfig" in server:
        system_metadata["auto_disk_config"] = str(server["OS-DCF:diskConfig"] == "AUTO")
    certs = server.get("trusted_image_certificates")
    if certs:
        app.authorize(req, R + "create:trusted_certs", target)
        system_metadata["trusted_image_certificates"] = json.dumps(certs)

    zone, _, forced = (availability_zone or "").partition(":")
    if forced:
        app.authorize(req, R + "create:forced_host", {})
    if version >= "2.74" and (server.get("host") or server.get("hypervisor_hostname")):
        app.authorize(req, "compute:servers:create:requested_destination", target)
        if forced:
            raise exception.InvalidRequest(
                reason="One mechanism with host and/or hypervisor_hostname and another mechanism "
                "with zone:host:node are mutually exclusive."
            )
        availability_zone = await _requested_destination(
            app, zone, server.get("host"), server.get("hypervisor_hostname")
        )

    if not image_ref:
        raise exception.InvalidRequest(reason="Missing imageRef attribute")
    hints = body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") or {}
    min_count = int(server.get("min_count", 1))
    max_count = int(server.get("max_count", min_count))
    if min_count > max_count:
        raise exception.InvalidRequest(reason="min_count must be <= max_count")
    config_drive = bool_from_string(server["config_drive"]) if "config_drive" in server else None
    try:
        created, reservation_id = await app.compute_api.create(
            ctxt,
            id_from_href(server["flavorRef"]),
            id_from_href(image_ref),
            name,
            min_count=min_count,
            max_count=max_count,
            availability_zone=availability_zone or None,
            key_name=server.get("key_name"),
            user_data=server.get("user_data"),
            metadata=server.get("metadata") or {},
            scheduler_hints={k: v for k, v in hints.items() if k != "group"},
            server_group=hints.get("group"),
            description=description,
            access_ip_v4=server.get("accessIPv4"),
            access_ip_v6=server.get("accessIPv6"),
            config_drive=config_drive,
            tags=server.get("tags"),
            system_metadata=system_metadata,
        )
    except exception.KeypairNotFound:
        raise exception.InvalidRequest(reason="Invalid key_name provided.") from None
    except exception.ImageNotFound:
        raise exception.InvalidRequest(reason="Can not find requested image") from None
    except (exception.FlavorNotFound, exception.InstanceGroupNotFound) as exc:
        raise exception.InvalidRequest(reason=exc.message) from None
    if bool_from_string(server.get("return_reservation_id", False)):
        return Response(202, {"reservation_id": reservation_id})
    first = created[0]
    links = app.links(req, "servers", first["uuid"])
    answer = {
        "id": first["uuid"],
        "links": links,
        "OS-DCF:diskConfig": "AUTO" if system_metadata.get("auto_disk_config") == "True" else "MANUAL",
        "security_groups": server.get("security_groups", [{"name": "default"}]),
        "adminPass": password,
    }
    return Response(202, {"server": answer}, {"Location": links[0]["href"]})


NO_VOLUMES = (
    "This cloud has no volume service: the only block device a server may ask for is its image as the "
    "local root disk (source_type image, destination_type local, boot_index 0)."
)


def _image_from_block_devices(server: dict):
    """The image to boot: imageRef, or the one image-to-local root disk a block device mapping may name.

    Clients (openstack server create --image) send the image both ways; anything
    needing a volume service, or a second disk, is refused with a clear 400.
    """
    image_ref = server.get("imageRef")
    if server.get("block_device_mapping"):
        raise exception.InvalidRequest(reason=NO_VOLUMES)
    for bdm in server.get("block_device_mapping_v2") or []:
        image = bdm.get("uuid") or bdm.get("image_id")
        root = bdm.get("source_type") == "image" and bdm.get("destination_type", "local") == "local"
        if not root or str(bdm.get("boot_index", 0)) != "0" or not image:
            raise exception.InvalidRequest(reason=NO_VOLUMES)
        if image_ref and id_from_href(image_ref) != image:
            raise exception.InvalidRequest(reason=NO_VOLUMES)
        image_ref = image_ref or image
    return image_ref


async def _requested_destination(app, zone: str, host: str | None, node: str | None) -> str:
    from nova_twisted.db import placement

    nodes = await app.database.run(placement.list_nodes)
    if node:
        match = [n for n in nodes if n["hypervisor_hostname"] == node and (not host or n["host"] == host)]
        if not match:
            raise exception.InvalidRequest(reason=f"Compute host {host or node} could not be found.")
        host = match[0]["host"]
    elif not any(n["host"] == host for n in nodes):
        raise exception.InvalidRequest(reason=f"Compute host {host} could not be found.")
    return f"{zone}:{host}"


async def update(app, req):
    """Rename a server, or set its description, access IPs or disk config."""
    version = app.version(req)
    body = app.body(req, update_schema(version))
    view = View(app, req)
    inst = await fetch(app, req, req.params["server_id"], view)
    app.authorize(req, R + "update", {"project_id": inst["project_id"], "user_id": inst["user_id"]})
    server = body["server"]
    values = {}
    if "name" in server:
        values["display_name"] = server["name"].strip()
    if "description" in server:
        values["display_description"] = server["description"]
    if "accessIPv4" in server:
        values["access_ip_v4"] = server["accessIPv4"]
    if "accessIPv6" in server:
        values["access_ip_v6"] = server["accessIPv6"]
    if values:
        await app.compute_api.update(req.context, inst, values)
    if "OS-DCF:diskConfig" in server:
        await app.database.run(
            db_servers.set_system_metadata,
            inst["uuid"],
            {"auto_disk_config": str(server["OS-DCF:diskConfig"] == "AUTO")},
            utils.utcnow(app.reactor),
        )
    inst = await fetch(app, req, inst["uuid"], view)
    full = version >= "2.75"
    return {"server": view.server(inst, full=full, server_groups=version >= "2.71")}


async def delete(app, req):
    """Delete a server (204)."""
    inst = await app.instance(req, req.params["server_id"])
    app.authorize(req, R + "delete", {"project_id": inst["project_id"], "user_id": inst["user_id"]})
    await app.compute_api.delete(req.context, inst)
    return Response(204)


def register(app) -> None:
    app.route("GET", "/v2.1/servers", index)
    app.route("GET", "/v2.1/servers/detail", detail)
    app.route("POST", "/v2.1/servers", create)
    app.route("GET", "/v2.1/servers/{server_id}", show)
    app.route("PUT", "/v2.1/servers/{server_id}", update)
    app.route("DELETE", "/v2.1/servers/{server_id}", delete)
