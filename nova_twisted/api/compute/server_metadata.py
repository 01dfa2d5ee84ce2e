"""Server metadata: ``/servers/{id}/metadata`` (GET, POST merge, PUT replace) and ``/metadata/{key}``."""

from __future__ import annotations

import copy
from urllib.parse import unquote

from nova_twisted import exception
from nova_twisted.api.compute.server_actions import target_of
from nova_twisted.api.compute.servers import METADATA
from nova_twisted.api.http import Response
from nova_twisted.compute import states

P = "os_compute_api:server-metadata:"

POLICIES = {
    P + "index": "rule:project_reader_or_admin",
    P + "show": "rule:project_reader_or_admin",
    P + "create": "rule:project_member_or_admin",
    P + "update": "rule:project_member_or_admin",
    P + "update_all": "rule:project_member_or_admin",
    P + "delete": "rule:project_member_or_admin",
}

_ALL = "/servers/{server_id}/metadata"
_ONE = "/servers/{server_id}/metadata/{key}"
POLICY_DOCS = {
    P + "index": ("List a server's metadata.", [("GET", _ALL)]),
    P + "show": ("Show one metadata item of a server.", [("GET", _ONE)]),
    P + "create": ("Add or change metadata items of a server.", [("POST", _ALL)]),
    P + "update": ("Set one metadata item of a server.", [("PUT", _ONE)]),
    P + "update_all": ("Replace all metadata of a server.", [("PUT", _ALL)]),
    P + "delete": ("Delete one metadata item of a server.", [("DELETE", _ONE)]),
}

METADATA_BODY = {
    "type": "object",
    "properties": {"metadata": METADATA},
    "required": ["metadata"],
    "additionalProperties": False,
}
_ONE_ITEM = copy.deepcopy(METADATA)
_ONE_ITEM.update({"minProperties": 1, "maxProperties": 1})
META_BODY = {
    "type": "object",
    "properties": {"meta": _ONE_ITEM},
    "required": ["meta"],
    "additionalProperties": False,
}

#: The states in which Nova lets metadata change.
CHANGEABLE = (states.ACTIVE, states.PAUSED_VM, states.SUSPENDED_VM, states.STOPPED)


async def _server(app, req, rule: str) -> dict:
    inst = await app.instance(req, req.params["server_id"])
    app.authorize(req, rule, target_of(inst))
    return inst


def _check_changeable(inst: dict, action: str) -> None:
    if inst["vm_state"] not in CHANGEABLE:
        raise exception.InstanceInvalidState(
            action=action, instance_uuid=inst["uuid"], attr="vm_state", state=inst["vm_state"]
        )
    if inst["task_state"] is not None:
        raise exception.InstanceInvalidState(
            action=action, instance_uuid=inst["uuid"], attr="task_state", state=inst["task_state"]
        )


async def _update(app, req, inst, metadata: dict, replace: bool) -> dict:
    _check_changeable(inst, "update metadata")
    return await app.compute_api.update_metadata(req.context, inst, metadata, replace=replace)


async def index(app, req):
    """All metadata of the server."""
    inst = await _server(app, req, P + "index")
    return {"metadata": dict(inst.get("metadata") or {})}


async def create(app, req):
    """Add or change items (the others stay); answer with all of them."""
    body = app.body(req, METADATA_BODY)
    inst = await _server(app, req, P + "create")
    return {"metadata": await _update(app, req, inst, body["metadata"], replace=False)}


async def update_all(app, req):
    """Replace all metadata with the body's."""
    body = app.body(req, METADATA_BODY)
    inst = await _server(app, req, P + "update_all")
    return {"metadata": await _update(app, req, inst, body["metadata"], replace=True)}


async def show(app, req):
    """One item, ``{"meta": {key: value}}``."""
    inst = await _server(app, req, P + "show")
    key = unquote(req.params["key"])
    metadata = inst.get("metadata") or {}
    if key not in metadata:
        raise exception.NotFound("Metadata item was not found")
    return {"meta": {key: metadata[key]}}


async def update(app, req):
    """Set one item; the body's only key must be the URL's."""
    body = app.body(req, META_BODY)
    inst = await _server(app, req, P + "update")
    item = body["meta"]
    if unquote(req.params["key"]) not in item:
        raise exception.InvalidRequest(reason="Request body and URI mismatch")
    await _update(app, req, inst, item, replace=False)
    return {"meta": item}


async def delete(app, req):
    """Delete one item (204)."""
    inst = await _server(app, req, P + "delete")
    key = unquote(req.params["key"])
    if key not in (inst.get("metadata") or {}):
        raise exception.NotFound("Metadata item was not found")
    _check_changeable(inst, "delete metadata")
    await app.compute_api.delete_metadata_item(req.context, inst, key)
    return Response(204)


def register(app) -> None:
    app.route("GET", "/v2.1" + _ALL, index)
    app.route("POST", "/v2.1" + _ALL, create)
    app.route("PUT", "/v2.1" + _ALL, update_all)
    app.route("GET", "/v2.1" + _ONE, show)
    app.route("PUT", "/v2.1" + _ONE, update)
    app.route("DELETE", "/v2.1" + _ONE, delete)
