"""``/os-server-groups``: create, list, show, delete; affinity, anti-affinity and (2.15) soft-*.

Below 2.64 a group carries ``policies`` (a one-item list) and an empty
``metadata``; from 2.64 ``policy`` and ``rules`` (``max_server_per_host``
for anti-affinity). ``project_id``/``user_id`` appear from 2.13. A group
belongs to its project: another project's group is 404. Admins list every
project's groups with ``all_projects``. The ``server_groups`` quota is
checked under the project's quota lock.
"""

from __future__ import annotations

from nova_twisted import exception, utils
from nova_twisted.api.compute.resource_helpers import MAX_INT, NAME, POSITIVE_INTEGER, check_query, param
from nova_twisted.api.http import Response
from nova_twisted.db import server_groups as db

SOFT_POLICIES_VERSION = "2.15"
OWNER_FIELDS_VERSION = "2.13"
POLICY_OBJECT_VERSION = "2.64"

POLICIES = {
    "os_compute_api:os-server-groups:create": "rule:project_member_or_admin",
    "os_compute_api:os-server-groups:delete": "rule:project_member_or_admin",
    "os_compute_api:os-server-groups:index": "rule:project_reader_or_admin",
    "os_compute_api:os-server-groups:index:all_projects": "rule:admin_api",
    "os_compute_api:os-server-groups:show": "rule:project_reader_or_admin",
}


def _create_schema(version) -> dict:
    names = ["anti-affinity", "affinity"]
    if version >= SOFT_POLICIES_VERSION:
        names += ["soft-anti-affinity", "soft-affinity"]
    fields = {"name": NAME}
    if version >= POLICY_OBJECT_VERSION:
        fields["policy"] = {"type": "string", "enum": names}
        fields["rules"] = {
            "type": "object",
            "properties": {"max_server_per_host": POSITIVE_INTEGER},
            "additionalProperties": False,
        }
        required = ["name", "policy"]
    else:
        fields["policies"] = {
            "type": "array",
            "items": [{"type": "string", "enum": names}],
            "uniqueItems": True,
            "minItems": 1,
            "maxItems": 1,
            "additionalItems": False,
        }
        required = ["name", "policies"]
    return {
        "type": "object",
        "properties": {
            "server_group": {
                "type": "object",
                "properties": fields,
                "required": required,
                "additionalProperties": False,
            }
        },
        "required": ["server_group"],
        "additionalProperties": False,
    }


def view(app, req, group: dict) -> dict:
    """One group as Nova shows it at the request's microversion."""
    version = app.version(req)
    body = {"id": group["uuid"], "name": group["name"]}
    if version >= POLICY_OBJECT_VERSION:
        body["policy"] = group["policy"]
        body["rules"] = dict(group.get("rules") or {})
    else:
        body["policies"] = [group["policy"]]
        body["metadata"] = {}
    body["members"] = list(group.get("members") or [])
    if version >= OWNER_FIELDS_VERSION:
        body["project_id"] = group["project_id"]
        body["user_id"] = group["user_id"]
    return body


def _scope(app, req) -> str | None:
    """The project whose groups the caller may reach (None: any, for admins)."""
    return None if app.allowed(req, "context_is_admin") else req.context.project_id


async def create(app, req):
    """Create a group in the caller's project (quota ``server_groups``)."""
    app.authorize(req, "os_compute_api:os-server-groups:create")
    version = app.version(req)
    body = app.body(req, _create_schema(version))["server_group"]
    if version >= POLICY_OBJECT_VERSION:
        policy = body["policy"]
        rules = body.get("rules") or {}
        if policy != "anti-affinity" and rules:
            raise exception.InvalidRequest(reason="Only anti-affinity policy supports rules.")
        rules = {k: int(v) for k, v in rules.items()}
    else:
        policy, rules = body["policies"][0], {}
    ctxt = req.context
    quota_check = {
        "project_id": ctxt.project_id,
        "user_id": ctxt.user_id,
        "defaults": app.compute_api._quota_defaults(),
        "deltas": {"server_groups": 1},
    }
    try:
        group = await app.database.run(
            db.create,
            body["name"],
            policy,
            ctxt.project_id,
            ctxt.user_id,
            rules,
            quota_check,
            utils.utcnow(app.reactor),
        )
    except exception.QuotaExceeded:
        raise exception.QuotaError("Quota exceeded, too many server groups.") from None
    return {"server_group": view(app, req, group)}


async def index(app, req):
    """The caller's project's groups (every project's with ``all_projects``, for admins)."""
    app.authorize(req, "os_compute_api:os-server-groups:index")
    check_query(app, req, ("all_projects", "limit", "offset"))
    project_id = req.context.project_id
    if req.arg("all_projects") is not None and app.allowed(req, "context_is_admin"):
        app.authorize(req, "os_compute_api:os-server-groups:index:all_projects", {})
        project_id = None
    offset = _offset(req)
    limit = app.limit(req)
    if limit is None:
        limit = app.conf.api.max_limit
    groups = await app.database.run(db.list_groups, project_id, limit, offset)
    return {"server_groups": [view(app, req, g) for g in groups]}


def _offset(req) -> int:
    raw = req.arg("offset")
    if raw is None:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise exception.InvalidRequest(reason="offset param must be an integer") from None
    if value < 0:
        raise exception.InvalidRequest(reason="offset param must be positive")
    return min(value, MAX_INT)


async def show(app, req):
    """One group of the caller's project (404 for another project's)."""
    app.authorize(req, "os_compute_api:os-server-groups:show")
    group = await app.database.run(db.get, param(req, "group_id"), _scope(app, req))
    return {"server_group": view(app, req, group)}


async def delete(app, req):
    """Delete one of the project's groups (its servers stay)."""
    app.authorize(req, "os_compute_api:os-server-groups:delete")
    await app.database.run(db.delete, param(req, "group_id"), _scope(app, req))
    return Response(204)


def register(app) -> None:
    app.route("GET", "/v2.1/os-server-groups", index)
    app.route("POST", "/v2.1/os-server-groups", create)
    app.route("GET", "/v2.1/os-server-groups/{group_id}", show)
    app.route("DELETE", "/v2.1/os-server-groups/{group_id}", delete)
