"""``/os-quota-sets``: show, defaults, detail (in_use/limit/reserved), update and delete (admin).

Limits are a project's (or, with ``?user_id=``, one user's within it);
usage is counted live. nova-network's quotas (floating_ips, fixed_ips,
security_groups, security_group_rules) are shown and settable below 2.36
only, the injected-file quotas below 2.57 only. An update below current
usage fails unless ``force`` is set; a user's limit cannot pass the
project's.
"""

from __future__ import annotations

from nova_twisted import exception
from nova_twisted.api.compute.resource_helpers import BOOLEAN, MAX_INT, bool_from_string, check_query, param
from nova_twisted.api.http import Response
from nova_twisted.db import identity
from nova_twisted.db import quotas as db

NETWORK_QUOTAS_REMOVED = "2.36"
INJECTED_FILES_REMOVED = "2.57"
INJECTED_FILE_QUOTAS = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")

POLICIES = {
    "os_compute_api:os-quota-sets:show": "rule:admin_api or project_id:%(project_id)s",
    "os_compute_api:os-quota-sets:detail": "rule:admin_api or project_id:%(project_id)s",
    "os_compute_api:os-quota-sets:defaults": "@",
    "os_compute_api:os-quota-sets:update": "rule:admin_api",
    "os_compute_api:os-quota-sets:delete": "rule:admin_api",
}

_QUOTA_VALUE = {"type": ["integer", "string"], "pattern": "^-?[0-9]+$", "minimum": -1, "maximum": MAX_INT}


def resources(version) -> list[str]:
    """The quota names shown and settable at ``version``."""
    names = list(db.RESOURCES)
    if version < NETWORK_QUOTAS_REMOVED:
        names += list(db.LEGACY_RESOURCES)
    if version >= INJECTED_FILES_REMOVED:
        names = [n for n in names if n not in INJECTED_FILE_QUOTAS]
    return names


def defaults(app) -> dict[str, int]:
    """The configured defaults, nova-network's included."""
    return {**db.LEGACY_DEFAULTS, **app.compute_api._quota_defaults()}


def _update_schema(version) -> dict:
    fields = {name: _QUOTA_VALUE for name in resources(version)}
    if version < NETWORK_QUOTAS_REMOVED:
        fields["networks"] = _QUOTA_VALUE
    fields["force"] = BOOLEAN
    return {
        "type": "object",
        "properties": {"quota_set": {"type": "object", "properties": fields, "additionalProperties": False}},
        "required": ["quota_set"],
        "additionalProperties": False,
    }


def _user_id(app, req) -> str | None:
    check_query(app, req, ("user_id",))
    return req.arg("user_id") or None


async def _limits_and_usage(app, project_id: str, user_id: str | None):
    return await app.database.run(db.limits_and_usage, project_id, defaults(app), user_id)


async def show(app, req):
    """The limits in force for the project (or user)."""
    project_id = param(req, "project_id")
    app.authorize(req, "os_compute_api:os-quota-sets:show", {"project_id": project_id})
    limits, _ = await _limits_and_usage(app, project_id, _user_id(app, req))
    body = {"id": project_id}
    body.update({name: limits.get(name, -1) for name in resources(app.version(req))})
    return {"quota_set": body}


async def detail(app, req):
    """Each quota as {"in_use", "limit", "reserved"}."""
    project_id = param(req, "project_id")
    app.authorize(req, "os_compute_api:os-quota-sets:detail", {"project_id": project_id})
    limits, used = await _limits_and_usage(app, project_id, _user_id(app, req))
    body = {"id": project_id}
    for name in resources(app.version(req)):
        body[name] = {"in_use": used.get(name, 0), "limit": limits.get(name, -1), "reserved": 0}
    return {"quota_set": body}


async def show_defaults(app, req):
    """The default limits every project starts with."""
    project_id = param(req, "project_id")
    app.authorize(req, "os_compute_api:os-quota-sets:defaults", {"project_id": project_id})
    check_query(app, req, ())
    values = await app.database.run(db.class_limits, defaults(app))
    body = {"id": project_id}
    body.update({name: values.get(name, -1) for name in resources(app.version(req))})
    return {"quota_set": body}


async def _verify_project(app, project_id: str) -> None:
    if app.conf.identity.token_validation != "local":
        return
    try:
        await app.database.run(identity.get_project, project_id)
    except exception.NotFound:
        raise exception.InvalidRequest(reason=f"Project ID {project_id} is not a valid project.") from None


def _check_limit(resource: str, limit: int, minimum: int, maximum: int) -> None:
    def infinite(value):
        return float("inf") if value == -1 else value

    if infinite(limit) < infinite(minimum):
        raise exception.InvalidRequest(
            reason=f"Quota limit {limit} for {resource} must be greater than or equal to already used "
            f"and reserved {minimum}."
        )
    if infinite(limit) > infinite(maximum):
        raise exception.InvalidRequest(
            reason=f"Quota limit {limit} for {resource} must be less than or equal to {maximum}."
        )


async def update(app, req):
    """Set limits for the project (or user); answers with every limit (no ``id``)."""
    project_id = param(req, "project_id")
    app.authorize(req, "os_compute_api:os-quota-sets:update", {"project_id": project_id})
    user_id = _user_id(app, req)
    version = app.version(req)
    body = app.body(req, _update_schema(version))["quota_set"]
    if "networks" in body:
        raise exception.InvalidRequest(reason="The networks quota has been removed")
    await _verify_project(app, project_id)
    force = bool_from_string(body.get("force", "False"))
    requested = {
        k: int(v) for k, v in body.items() if k not in ("force", "networks") and (v or v == 0) and v is not None
    }
    limits, used = await _limits_and_usage(app, project_id, user_id)
    project_limits = limits
    if user_id:
        project_limits, _ = await _limits_and_usage(app, project_id, None)
    if not force:
        for resource, value in requested.items():
            maximum = project_limits.get(resource, -1) if user_id else -1
            _check_limit(resource, value, used.get(resource, 0), maximum)
    if requested:
        await app.database.run(db.set_limits, project_id, requested, user_id or "")
    limits, _ = await _limits_and_usage(app, project_id, user_id)
    return {"quota_set": {name: limits.get(name, -1) for name in resources(version)}}


async def delete(app, req):
    """Forget the project's (or user's) own limits: the defaults apply again."""
    project_id = param(req, "project_id")
    app.authorize(req, "os_compute_api:os-quota-sets:delete", {"project_id": project_id})
    user_id = _user_id(app, req)
    await app.database.run(db.delete_limits, project_id, user_id or "")
    return Response(202)


def register(app) -> None:
    app.route("GET", "/v2.1/os-quota-sets/{project_id}", show)
    app.route("GET", "/v2.1/os-quota-sets/{project_id}/detail", detail)
    app.route("GET", "/v2.1/os-quota-sets/{project_id}/defaults", show_defaults)
    app.route("PUT", "/v2.1/os-quota-sets/{project_id}", update)
    app.route("DELETE", "/v2.1/os-quota-sets/{project_id}", delete)
