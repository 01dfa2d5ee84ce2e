"""Instance actions (``os-instance-actions``): what was asked of a server, and the steps it took.

Fields per microversion, as Nova: 2.21 reads deleted servers' actions;
2.51 shows events to the owner too (their traceback stays admin-only);
2.58 adds ``updated_at``, paging (limit, marker = request id) and
``changes-since`` with next ``links``; 2.62 adds ``hostId`` (everyone) and
``host`` (admin) on events; 2.66 adds ``changes-before``.
"""

from __future__ import annotations

import copy

from nova_twisted import exception
from nova_twisted.api.compute.app import parse_isotime
from nova_twisted.api.compute.server_actions import target_of
from nova_twisted.api.compute.servers import host_id, multi, perfect_time, validate_query
from nova_twisted.db import servers as db_servers

P = "os_compute_api:os-instance-actions:"

POLICIES = {
    P + "list": "rule:project_reader_or_admin",
    P + "show": "rule:project_reader_or_admin",
    P + "events": "rule:admin_api",
}

_LIST = "/servers/{server_id}/os-instance-actions"
_ONE = "/servers/{server_id}/os-instance-actions/{request_id}"
POLICY_DOCS = {
    P + "list": ("List the actions taken on a server.", [("GET", _LIST)]),
    P + "show": ("Show one action of a server, with its events from 2.51.", [("GET", _ONE)]),
    P + "events": (
        "See every action's events with their tracebacks (and hosts from 2.62), at any microversion.",
        [("GET", _ONE)],
    ),
}

ACTION_KEYS = ("action", "instance_uuid", "request_id", "user_id", "project_id", "start_time", "message")
EVENT_KEYS = ("event", "start_time", "finish_time", "result", "traceback")
_TIMES = ("start_time", "finish_time", "updated_at")


def _single(schema: dict) -> dict:
    single = multi(schema)
    single["maxItems"] = 1
    return single


_DATETIME = _single({"type": "string", "format": "date-time"})
QUERY_V258 = {
    "type": "object",
    "properties": {
        "limit": _single({"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 0}),
        "marker": _single({"type": "string"}),
        "changes-since": _DATETIME,
    },
    "additionalProperties": False,
}
QUERY_V266 = copy.deepcopy(QUERY_V258)
QUERY_V266["properties"]["changes-before"] = _DATETIME


def _format_action(action: dict, version) -> dict:
    keys = ACTION_KEYS + (("updated_at",) if version >= "2.58" else ())
    shown = {}
    for key in keys:
        value = action.get(key)
        shown[key] = perfect_time(value) if key in _TIMES else value
    return shown


async def _server(app, req, rule: str) -> dict:
    read_deleted = "yes" if app.version(req) >= "2.21" else "no"
    inst = await app.instance(req, req.params["server_id"], read_deleted=read_deleted)
    app.authorize(req, rule, target_of(inst))
    return inst


async def index(app, req):
    """The server's actions, newest first."""
    version = app.version(req)
    if version >= "2.58":
        validate_query(req.query, QUERY_V266 if version >= "2.66" else QUERY_V258)
    inst = await _server(app, req, P + "list")
    limit = marker = since = before = None
    if version >= "2.58":
        limit = app.limit(req)
        if limit is None:
            limit = app.conf.api.max_limit
        marker = req.arg("marker")
        if req.arg("changes-since") is not None:
            since = parse_isotime(req.arg("changes-since"))
        if version >= "2.66" and req.arg("changes-before") is not None:
            before = parse_isotime(req.arg("changes-before"))
            if since is not None and before < since:
                raise exception.InvalidRequest(
                    reason="The value of changes-since must be less than or equal to changes-before."
                )
    rows = await app.database.run(db_servers.list_actions, inst["uuid"], limit, marker, since, before)
    actions = [_format_action(row, version) for row in rows]
    answer = {"instanceActions": actions}
    if version >= "2.58":
        links = app.next_link(req, f"servers/{inst['uuid']}/os-instance-actions", actions, limit, "request_id")
        if links:
            answer["links"] = links
    return answer


async def show(app, req):
    """One action; its events as the caller's rights and the microversion allow."""
    version = app.version(req)
    inst = await _server(app, req, P + "show")
    request_id = req.params["request_id"]
    action = await app.database.run(db_servers.get_action, inst["uuid"], request_id)
    if action is None:
        raise exception.NotFound(f"Action {request_id} not found")
    shown = _format_action(action, version)
    show_events = show_traceback = show_host = False
    if app.allowed(req, P + "events", target_of(inst)):
        show_events = show_traceback = True
        show_host = version >= "2.62"
    elif version >= "2.51":
        show_events = True
    if show_events:
        project = action["project_id"] or inst["project_id"]
        events = []
        for raw in action["events"]:
            event = {}
            for key in EVENT_KEYS:
                if key == "traceback" and not show_traceback:
                    continue
                value = raw.get(key)
                event[key] = perfect_time(value) if key in _TIMES else value
            if show_host:
                event["host"] = raw.get("host")
            if version >= "2.62":
                event["hostId"] = host_id(project, raw.get("host"))
            events.append(event)
        shown["events"] = events
    return {"instanceAction": shown}


def register(app) -> None:
    app.route("GET", "/v2.1" + _LIST, index)
    app.route("GET", "/v2.1" + _ONE, show)
