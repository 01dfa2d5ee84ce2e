"""``/os-services``: list, enable/disable (with a reason), force down, delete (admin).

Below 2.53 a service is named by ``host`` + ``binary`` in the body of
``PUT /os-services/{enable,disable,disable-log-reason,force-down}`` and
its ``id`` is the integer row id; from 2.53 ``id`` is the service's uuid
and ``PUT /os-services/{uuid}`` takes ``status``/``disabled_reason``/
``forced_down``. ``forced_down`` is shown from 2.11. ``state`` is up when
the service heartbeated within ``[DEFAULT] service_down_time`` and is
not forced down.
"""

from __future__ import annotations

from nova_twisted import exception, utils
from nova_twisted.api.compute.resource_helpers import BOOLEAN, MAX_INT, bool_from_string, check_query, nova_time, param
from nova_twisted.api.http import Response
from nova_twisted.db import services as db
from nova_twisted.db import usage

FORCE_DOWN_VERSION = "2.11"
UUID_VERSION = "2.53"
INTERNAL_ZONE = "internal"

POLICIES = {
    "os_compute_api:os-services:list": "rule:admin_api",
    "os_compute_api:os-services:update": "rule:admin_api",
    "os_compute_api:os-services:delete": "rule:admin_api",
}

_BINARY = {"type": "string", "minLength": 1, "maxLength": 255}
_REASON = {"type": "string", "minLength": 1, "maxLength": 255}
_HOST = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[a-zA-Z0-9-._]*$"}


def _legacy_schema(version) -> dict:
    fields = {"host": _HOST, "binary": _BINARY, "disabled_reason": _REASON}
    if version >= FORCE_DOWN_VERSION:
        fields["forced_down"] = BOOLEAN
    return {"type": "object", "properties": fields, "required": ["host", "binary"], "additionalProperties": False}


UPDATE_SCHEMA_253 = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["enabled", "disabled"]},
        "disabled_reason": _REASON,
        "forced_down": BOOLEAN,
    },
    "additionalProperties": False,
}


def is_up(app, service: dict) -> bool:
    """Whether the service heartbeated recently enough and is not forced down."""
    return db.is_up(service, utils.utcnow(app.reactor), app.conf.DEFAULT.service_down_time)


def zone_of(app, service: dict, zones: dict[str, str]) -> str:
    """A compute service's availability zone is its host's; every other service is ``internal``."""
    if service["binary"] == "nova-compute":
        return zones.get(service["host"], app.conf.compute.availability_zone)
    return INTERNAL_ZONE


def view(app, req, service: dict, zones: dict[str, str]) -> dict:
    """One service as Nova shows it at the request's microversion."""
    version = app.version(req)
    body = {
        "binary": service["binary"],
        "host": service["host"],
        "id": service["uuid"] if version >= UUID_VERSION else service["id"],
        "zone": zone_of(app, service, zones),
        "status": "disabled" if service["disabled"] else "enabled",
        "state": "up" if is_up(app, service) else "down",
        "updated_at": nova_time(service.get("last_seen_up") or service.get("updated_at")),
        "disabled_reason": service.get("disabled_reason"),
    }
    if version >= FORCE_DOWN_VERSION:
        body["forced_down"] = bool(service.get("forced_down"))
    return body


async def index(app, req):
    """Every service, optionally only those of ``host`` and/or ``binary``."""
    app.authorize(req, "os_compute_api:os-services:list", {})
    check_query(app, req, ("host", "binary"))
    rows = await app.database.run(db.list_services, req.arg("host"), req.arg("binary"))
    zones = await app.database.run(usage.compute_zones)
    return {"services": [view(app, req, s, zones) for s in rows]}


async def _update(app, host: str, binary: str, **values) -> dict:
    try:
        return await app.database.run(db.update, host, binary, utils.utcnow(app.reactor), **values)
    except exception.ServiceNotFound:
        raise exception.NotFound(f"Could not find binary {binary} on host {host}.") from None


async def legacy_update(app, req):
    """``PUT /os-services/{enable|disable|disable-log-reason|force-down}`` (before 2.53)."""
    app.authorize(req, "os_compute_api:os-services:update", {})
    version = app.version(req)
    action = param(req, "action")
    actions = {"enable", "disable", "disable-log-reason"}
    if version >= FORCE_DOWN_VERSION:
        actions.add("force-down")
    if action not in actions:
        raise exception.NotFound("Unknown action")
    body = app.body(req, _legacy_schema(version))
    host, binary = body["host"], body["binary"]
    if action == "enable":
        await _update(app, host, binary, disabled=False, disabled_reason=None)
        return {"service": {"host": host, "binary": binary, "status": "enabled"}}
    if action in ("disable", "disable-log-reason"):
        reason = None
        if action == "disable-log-reason":
            if "disabled_reason" not in body:
                raise exception.InvalidRequest(reason="Missing disabled reason field")
            reason = body["disabled_reason"]
        await _update(app, host, binary, disabled=True, disabled_reason=reason)
        answer = {"host": host, "binary": binary, "status": "disabled"}
        if reason:
            answer["disabled_reason"] = reason
        return {"service": answer}
    if "forced_down" not in body:
        raise exception.InvalidRequest(reason="Missing forced_down field")
    forced_down = bool_from_string(body["forced_down"])
    await _update(app, host, binary, forced_down=forced_down)
    return {"service": {"host": host, "binary": binary, "forced_down": forced_down}}


async def update(app, req):
    """``PUT /os-services/{uuid}`` (2.53): status, disabled_reason, forced_down of a compute service."""
    app.authorize(req, "os_compute_api:os-services:update", {})
    service_id = param(req, "action")
    if not utils.is_uuid_like(service_id):
        raise exception.InvalidRequest(reason=f"Invalid uuid {service_id}")
    body = app.body(req, UPDATE_SCHEMA_253)
    service = await app.database.run(db.get, service_id)
    status = body.get("status")
    if "disabled_reason" in body and status != "disabled":
        raise exception.InvalidRequest(
            reason="Specifying 'disabled_reason' with status other than 'disabled' is not supported."
        )
    if service["binary"] != "nova-compute":
        raise exception.InvalidRequest(
            reason=f"Updating a {service['binary']} service is not supported. "
            "Only nova-compute services can be updated."
        )
    values = {}
    if status == "enabled":
        values.update(disabled=False, disabled_reason=None)
    elif status == "disabled":
        values.update(disabled=True, disabled_reason=body.get("disabled_reason"))
    if "forced_down" in body:
        values["forced_down"] = bool_from_string(body["forced_down"], strict=True)
    if not values:
        raise exception.InvalidRequest(
            reason="No updates were requested. Fields 'status' or 'forced_down' should be specified."
        )
    row = await app.database.run(db.set_state, service["uuid"], utils.utcnow(app.reactor), **values)
    zones = await app.database.run(usage.compute_zones)
    body = view(app, req, row, zones)
    body["forced_down"] = bool(row.get("forced_down"))
    return {"service": body}


async def update_any(app, req):
    """Before 2.53 the path names an action, from 2.53 a service uuid."""
    if app.version(req) >= UUID_VERSION:
        return await update(app, req)
    return await legacy_update(app, req)


async def delete(app, req):
    """Delete a service (and a compute service's hypervisors); 409 while it hosts servers."""
    app.authorize(req, "os_compute_api:os-services:delete", {})
    service_id = param(req, "service_id")
    if app.version(req) >= UUID_VERSION:
        if not utils.is_uuid_like(service_id):
            raise exception.InvalidRequest(reason=f"Invalid uuid {service_id}")
    elif not service_id.isdigit():
        raise exception.InvalidRequest(reason="Invalid input received: id must be an integer")
    elif int(service_id) > MAX_INT:
        raise exception.ServiceNotFound(service_id=service_id)
    await app.database.run(db.delete, service_id)
    return Response(204)


def register(app) -> None:
    app.route("GET", "/v2.1/os-services", index)
    app.route("PUT", "/v2.1/os-services/{action}", update_any)
    app.route("DELETE", "/v2.1/os-services/{service_id}", delete)
