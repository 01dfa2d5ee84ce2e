"""Browser consoles: ``POST /servers/{id}/remote-consoles`` (2.6+) and the actions it replaced.

``os-getVNCConsole`` / ``os-getSPICEConsole`` (and the RDP and serial
ones, which this cloud does not offer) are server actions up to 2.5 and
404 from 2.6, as in Nova. Each answer carries a URL with a fresh,
short-lived console token for the novnc or spice-html5 proxy.
"""

from __future__ import annotations

from nova_twisted import exception
from nova_twisted.api.compute import server_actions
from nova_twisted.api.compute.server_actions import target_of

RULE = "os_compute_api:os-remote-consoles"
POLICIES = {RULE: "rule:project_member_or_admin"}
POLICY_DOCS = {
    RULE: (
        "Get a browser console URL for a server (remote-consoles, and os-getVNCConsole and friends below 2.6).",
        [("POST", "/servers/{server_id}/remote-consoles"), ("POST", "/servers/{server_id}/action")],
    )
}

#: Console types each protocol offers, and the ones this cloud serves.
PROTOCOL_TYPES = {
    "vnc": ("novnc", "xvpvnc"),
    "spice": ("spice-html5",),
    "rdp": ("rdp-html5",),
    "serial": ("serial",),
    "mks": ("webmks",),
}
SERVED_TYPES = ("novnc", "spice-html5")

REMOTE_CONSOLE_V26 = {
    "type": "object",
    "properties": {
        "remote_console": {
            "type": "object",
            "properties": {
                "protocol": {"type": "string", "enum": ["vnc", "spice", "rdp", "serial"]},
                "type": {"type": "string", "enum": ["novnc", "xvpvnc", "rdp-html5", "spice-html5", "serial"]},
            },
            "required": ["protocol", "type"],
            "additionalProperties": False,
        }
    },
    "required": ["remote_console"],
    "additionalProperties": False,
}
REMOTE_CONSOLE_V28 = {
    "type": "object",
    "properties": {
        "remote_console": {
            "type": "object",
            "properties": {
                "protocol": {"type": "string", "enum": ["vnc", "spice", "rdp", "serial", "mks"]},
                "type": {
                    "type": "string",
                    "enum": ["novnc", "xvpvnc", "rdp-html5", "spice-html5", "serial", "webmks"],
                },
            },
            "required": ["protocol", "type"],
            "additionalProperties": False,
        }
    },
    "required": ["remote_console"],
    "additionalProperties": False,
}


def _action_schema(name: str, types: list[str]) -> dict:
    return {
        "type": "object",
        "properties": {
            name: {
                "type": "object",
                "properties": {"type": {"type": "string", "enum": types}},
                "required": ["type"],
                "additionalProperties": False,
            }
        },
        "required": [name],
        "additionalProperties": False,
    }


async def _console(app, req, inst, console_type: str) -> str:
    app.authorize(req, RULE, target_of(inst))
    if console_type not in SERVED_TYPES:
        raise exception.ConsoleTypeUnavailable(console_type=console_type)
    console = await app.compute_api.get_console(req.context, inst, console_type)
    return console["url"]


def _legacy(name: str):
    async def handler(app, req, inst, args):
        console_type = args["type"]
        return {"console": {"type": console_type, "url": await _console(app, req, inst, console_type)}}

    handler.__name__ = name
    handler.__doc__ = f"{name}: a console URL (up to 2.5)."
    return handler


async def create(app, req):
    """A console URL for ``protocol`` and ``type`` (2.6+; 200)."""
    version = app.version(req)
    body = app.body(req, REMOTE_CONSOLE_V28 if version >= "2.8" else REMOTE_CONSOLE_V26)
    protocol = body["remote_console"]["protocol"]
    console_type = body["remote_console"]["type"]
    inst = await app.instance(req, req.params["server_id"])
    if console_type not in PROTOCOL_TYPES[protocol]:
        app.authorize(req, RULE, target_of(inst))
        raise exception.InvalidRequest(reason=f"Invalid console type {console_type}")
    url = await _console(app, req, inst, console_type)
    return {"remote_console": {"protocol": protocol, "type": console_type, "url": url}}


def register(app) -> None:
    for name, types in (
        ("os-getVNCConsole", ["novnc", "xvpvnc"]),
        ("os-getSPICEConsole", ["spice-html5"]),
        ("os-getRDPConsole", ["rdp-html5"]),
        ("os-getSerialConsole", ["serial"]),
    ):
        server_actions.add_action(name, _legacy(name), _action_schema(name, types), max_version="2.5")
    app.route("POST", "/v2.1/servers/{server_id}/remote-consoles", create, min_version="2.6")
