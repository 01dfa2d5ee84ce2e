"""Flavors: list/show (+ detail), create/update/delete, extra specs, access to private flavors.

As Nova: ``GET /flavors/{id}`` looks a flavor up by id only (the CLI asks
by name, gets 404, then lists ``/flavors/detail``); private flavors are
invisible (404) to projects without access; ``description`` appears from
2.55, ``extra_specs`` in detailed bodies from 2.61, and ``swap`` is 0
rather than "" from 2.75.
"""

from __future__ import annotations

from nova_twisted import exception, utils
from nova_twisted.api.compute.resource_helpers import (
    BOOLEAN,
    DESCRIPTION,
    MAX_INT,
    NAME,
    bool_from_string,
    check_query,
    param,
)
from nova_twisted.api.http import Response
from nova_twisted.db import flavors as db
from nova_twisted.db import identity

DESCRIPTION_VERSION = "2.55"
EXTRA_SPECS_VERSION = "2.61"
SWAP_ZERO_VERSION = "2.75"

POLICIES = {
    "os_compute_api:os-flavor-manage:create": "rule:admin_api",
    "os_compute_api:os-flavor-manage:update": "rule:admin_api",
    "os_compute_api:os-flavor-manage:delete": "rule:admin_api",
    "os_compute_api:os-flavor-extra-specs:index": "rule:project_reader_or_admin",
    "os_compute_api:os-flavor-extra-specs:show": "rule:project_reader_or_admin",
    "os_compute_api:os-flavor-extra-specs:create": "rule:admin_api",
    "os_compute_api:os-flavor-extra-specs:update": "rule:admin_api",
    "os_compute_api:os-flavor-extra-specs:delete": "rule:admin_api",
    # Nova's default up to 2.79 (Train): a project may read a private flavor's access list.
    "os_compute_api:os-flavor-access": "rule:project_reader_or_admin",
    "os_compute_api:os-flavor-access:add_tenant_access": "rule:admin_api",
    "os_compute_api:os-flavor-access:remove_tenant_access": "rule:admin_api",
}

_SIZE = {"type": ["integer", "string"], "pattern": "^[0-9]+$", "maximum": MAX_INT}
_POSITIVE = {**_SIZE, "minimum": 1}
_NON_NEGATIVE = {**_SIZE, "minimum": 0}
_CREATE_FIELDS = {
    "name": NAME,
    "id": {
        "type": ["string", "number", "null"],
        "minLength": 1,
        "maxLength": 255,
        "pattern": r"^(?! )[a-zA-Z0-9. _-]+(?<! )$",
    },
    "ram": _POSITIVE,
    "vcpus": _POSITIVE,
    "disk": _NON_NEGATIVE,
    "OS-FLV-EXT-DATA:ephemeral": _NON_NEGATIVE,
    "swap": _NON_NEGATIVE,
    "rxtx_factor": {
        "type": ["number", "string"],
        "pattern": r"^[0-9]+(\.[0-9]+)?$",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 3.40282e38,
    },
    "os-flavor-access:is_public": BOOLEAN,
}


def _create_schema(version) -> dict:
    fields = dict(_CREATE_FIELDS)
    if version >= DESCRIPTION_VERSION:
        fields["description"] = DESCRIPTION
    return {
        "type": "object",
        "properties": {
            "flavor": {
                "type": "object",
                "properties": fields,
                "required": ["name", "ram", "vcpus", "disk"],
                "additionalProperties": False,
            }
        },
        "required": ["flavor"],
        "additionalProperties": False,
    }


UPDATE_SCHEMA = {
    "type": "object",
    "properties": {
        "flavor": {
            "type": "object",
            "properties": {"description": DESCRIPTION},
            "required": ["description"],
            "additionalProperties": False,
        }
    },
    "required": ["flavor"],
    "additionalProperties": False,
}
_SPEC_KEY = r"^[a-zA-Z0-9-_:. ]{1,255}$"
_SPECS = {
    "type": "object",
    "patternProperties": {_SPEC_KEY: {"type": ["string", "number"], "maxLength": 255}},
    "additionalProperties": False,
}
EXTRA_SPECS_CREATE_SCHEMA = {
    "type": "object",
    "properties": {"extra_specs": _SPECS},
    "required": ["extra_specs"],
    "additionalProperties": False,
}
EXTRA_SPEC_UPDATE_SCHEMA = {**_SPECS, "minProperties": 1, "maxProperties": 1}
_TENANT = {"type": "string", "minLength": 1, "maxLength": 255}
ACCESS_SCHEMAS = {
    name: {
        "type": "object",
        "properties": {
            name: {
                "type": "object",
                "properties": {"tenant": _TENANT},
                "required": ["tenant"],
                "additionalProperties": False,
            }
        },
        "required": [name],
        "additionalProperties": False,
    }
    for name in ("addTenantAccess", "removeTenantAccess")
}
_LIST_PARAMS = ("limit", "marker", "is_public", "minRam", "minDisk", "sort_key", "sort_dir")


# -- views ------------------------------------------------------------------------------------
def view(app, req, flavor: dict, detail: bool = True, extra_specs: bool = False) -> dict:
    """One flavor as Nova shows it at the request's microversion."""
    version = app.version(req)
    body = {"id": flavor["flavorid"], "name": flavor["name"]}
    if detail:
        swap = flavor["swap"] or (0 if version >= SWAP_ZERO_VERSION else "")
        body.update(
            {
                "ram": flavor["memory_mb"],
                "disk": flavor["root_gb"],
                "swap": swap,
                "OS-FLV-EXT-DATA:ephemeral": flavor["ephemeral_gb"],
                "OS-FLV-DISABLED:disabled": bool(flavor["disabled"]),
                "vcpus": flavor["vcpus"],
                "os-flavor-access:is_public": bool(flavor["is_public"]),
                "rxtx_factor": flavor["rxtx_factor"] or "",
            }
        )
    body["links"] = app.links(req, "flavors", flavor["flavorid"])
    if version >= DESCRIPTION_VERSION:
        body["description"] = flavor.get("description")
    if detail and extra_specs:
        body["extra_specs"] = dict(flavor.get("extra_specs") or {})
    return body


def _with_extra_specs(app, req) -> bool:
    return app.version(req) >= EXTRA_SPECS_VERSION and app.allowed(req, "os_compute_api:os-flavor-extra-specs:index")


def _is_admin(app, req) -> bool:
    return app.allowed(req, "context_is_admin")


async def _visible_flavor(app, req, flavorid: str) -> dict:
    ctxt = req.context
    return await app.database.run(db.get_by_flavorid, flavorid, ctxt.project_id, _is_admin(app, req))


# -- list / show ----------------------------------------------------------------------------
def _int_filter(req, name: str) -> int | None:
    raw = req.arg(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise exception.InvalidRequest(reason=f"Invalid {name} filter [{raw}]") from None
    # Beyond any column's range: keep the database's integers from overflowing (same answer).
    return max(-MAX_INT - 1, min(value, MAX_INT + 1))


def _is_public_filter(raw: str | None) -> bool | None:
    if raw is None:
        return True
    if raw.strip().lower() == "none":
        return None
    try:
        return bool_from_string(raw, strict=True)
    except ValueError:
        raise exception.InvalidRequest(reason=f"Invalid is_public filter [{raw}]") from None


async def _list(app, req, detail: bool):
    check_query(app, req, _LIST_PARAMS)
    admin = _is_admin(app, req)
    is_public = _is_public_filter(req.arg("is_public")) if admin else True
    min_ram = _int_filter(req, "minRam")
    min_disk = _int_filter(req, "minDisk")
    limit = app.limit(req)
    page = limit if limit is not None else app.conf.api.max_limit
    try:
        rows = await app.database.run(
            db.list_flavors,
            req.context.project_id,
            admin,
            is_public,
            min_ram,
            min_disk,
            req.arg("sort_key") or "flavorid",
            req.arg("sort_dir") or "asc",
            page,
            req.arg("marker"),
        )
    except exception.Invalid as exc:
        raise exception.InvalidRequest(reason=exc.message.removeprefix("Invalid input: ")) from None
    specs = detail and _with_extra_specs(app, req)
    items = [view(app, req, f, detail, specs) for f in rows]
    body = {"flavors": items}
    links = app.next_link(req, "flavors/detail" if detail else "flavors", items, page)
    if links:
        body["flavors_links"] = links
    return body


async def index(app, req):
    """List flavors (id, name, links; description from 2.55)."""
    return await _list(app, req, detail=False)


async def detail(app, req):
    """List flavors with every field."""
    return await _list(app, req, detail=True)


async def show(app, req):
    """Show one flavor, by id only (a name is 404 unless some flavor has that id)."""
    flavor = await _visible_flavor(app, req, param(req, "flavor_id"))
    return {"flavor": view(app, req, flavor, True, _with_extra_specs(app, req))}


# -- manage --------------------------------------------------------------------------------------
async def create(app, req):
    """Create a flavor (admin). The id is generated when missing, null or "auto"."""
    app.authorize(req, "os_compute_api:os-flavor-manage:create", {})
    version = app.version(req)
    body = app.body(req, _create_schema(version))["flavor"]
    flavorid = body.get("id")
    if flavorid is None or flavorid == "auto" or flavorid == "":
        flavorid = utils.generate_uuid()
    try:
        is_public = bool_from_string(body.get("os-flavor-access:is_public", True), strict=True)
    except ValueError:
        raise exception.InvalidRequest(reason="Invalid input received: is_public must be a boolean") from None
    values = {
        "name": body["name"].strip(),
        "flavorid": str(flavorid),
        "memory_mb": int(body["ram"]),
        "vcpus": int(body["vcpus"]),
        "root_gb": int(body["disk"]),
        "ephemeral_gb": int(body.get("OS-FLV-EXT-DATA:ephemeral", 0)),
        "swap": int(body.get("swap", 0)),
        "rxtx_factor": float(body.get("rxtx_factor", 1.0)),
        "is_public": is_public,
        "description": body.get("description") if version >= DESCRIPTION_VERSION else None,
    }
    flavor = await app.database.run(db.create, values, (), utils.utcnow(app.reactor))
    return {"flavor": view(app, req, flavor, True, _with_extra_specs(app, req))}


async def update(app, req):
    """Change a flavor's description (2.55, admin)."""
    app.authorize(req, "os_compute_api:os-flavor-manage:update", {})
    body = app.body(req, UPDATE_SCHEMA)["flavor"]
    flavor = await app.database.run(
        db.update,
        param(req, "flavor_id"),
        {"description": body["description"], "updated_at": utils.utcnow(app.reactor)},
    )
    return {"flavor": view(app, req, flavor, True, _with_extra_specs(app, req))}


async def delete(app, req):
    """Delete a flavor (admin); servers keep their copy of it."""
    app.authorize(req, "os_compute_api:os-flavor-manage:delete", {})
    await app.database.run(db.delete, param(req, "flavor_id"))
    return Response(202)


# -- extra specs --------------------------------------------------------------------------------
def _spec_values(specs: dict) -> dict:
    out = {}
    for key, value in specs.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise exception.ValidationError(f"Invalid input for field/attribute {key}. Value: {value}.")
        text = str(value)
        if len(text) > 255:
            raise exception.InvalidRequest(
                reason="Invalid input received: extra_specs value has more than 255 characters."
            )
        out[key] = text
    return out


async def extra_specs_index(app, req):
    """A flavor's extra specs."""
    app.authorize(req, "os_compute_api:os-flavor-extra-specs:index")
    flavor = await _visible_flavor(app, req, param(req, "flavor_id"))
    return {"extra_specs": flavor["extra_specs"]}


async def extra_specs_create(app, req):
    """Add or replace extra specs (admin); answers with the request's specs."""
    app.authorize(req, "os_compute_api:os-flavor-extra-specs:create", {})
    body = app.body(req, EXTRA_SPECS_CREATE_SCHEMA)
    specs = _spec_values(body["extra_specs"])
    await app.database.run(db.set_extra_specs, param(req, "flavor_id"), specs)
    return {"extra_specs": body["extra_specs"]}


async def extra_spec_show(app, req):
    """One extra spec: ``{key: value}``."""
    app.authorize(req, "os_compute_api:os-flavor-extra-specs:show")
    flavorid, key = param(req, "flavor_id"), param(req, "key")
    flavor = await _visible_flavor(app, req, flavorid)
    if key not in flavor["extra_specs"]:
        raise exception.NotFound(f"Flavor {flavorid} has no extra specs with key {key}.")
    return {key: flavor["extra_specs"][key]}


async def extra_spec_update(app, req):
    """Set one extra spec; the body names exactly that key (admin)."""
    app.authorize(req, "os_compute_api:os-flavor-extra-specs:update", {})
    body = app.body(req, EXTRA_SPEC_UPDATE_SCHEMA)
    key = param(req, "key")
    if key not in body:
        raise exception.InvalidRequest(reason="Request body and URI mismatch")
    await app.database.run(db.set_extra_specs, param(req, "flavor_id"), _spec_values(body))
    return body


async def extra_spec_delete(app, req):
    """Remove one extra spec (admin)."""
    app.authorize(req, "os_compute_api:os-flavor-extra-specs:delete", {})
    flavorid, key = param(req, "flavor_id"), param(req, "key")
    try:
        await app.database.run(db.delete_extra_spec, flavorid, key)
    except exception.FlavorNotFound:
        raise
    except exception.NotFound:
        raise exception.NotFound(f"Flavor {flavorid} has no extra specs with key {key}.") from None
    return Response(202)


# -- access ---------------------------------------------------------------------------------------
def _access_body(flavorid: str, projects: list[str]) -> dict:
    return {"flavor_access": [{"flavor_id": flavorid, "tenant_id": p} for p in projects]}


async def access_index(app, req):
    """The projects that may use a private flavor (404 for a public one)."""
    app.authorize(req, "os_compute_api:os-flavor-access")
    flavorid = param(req, "flavor_id")
    flavor = await _visible_flavor(app, req, flavorid)
    if flavor["is_public"]:
        raise exception.NotFound("Access list not available for public flavors.")
    return _access_body(flavorid, await app.database.run(db.access_list, flavorid))


async def _verify_project(app, project_id: str) -> None:
    if app.conf.identity.token_validation != "local":
        return
    try:
        await app.database.run(identity.get_project, project_id)
    except exception.NotFound:
        raise exception.InvalidRequest(reason=f"Project ID {project_id} is not a valid project.") from None


async def action(app, req):
    """``addTenantAccess`` / ``removeTenantAccess`` on a private flavor (admin)."""
    body = app.body(req)
    name = next((k for k in ("addTenantAccess", "removeTenantAccess") if isinstance(body, dict) and k in body), None)
    if name is None:
        if not isinstance(body, dict):
            raise exception.InvalidRequest(reason="Malformed request body")
        raise exception.InvalidRequest(reason=f"There is no such action: {', '.join(body)}")
    rule = "add_tenant_access" if name == "addTenantAccess" else "remove_tenant_access"
    app.authorize(req, f"os_compute_api:os-flavor-access:{rule}", {})
    app.body(req, ACCESS_SCHEMAS[name])
    flavorid, tenant = param(req, "flavor_id"), body[name]["tenant"]
    if name == "addTenantAccess":
        await _verify_project(app, tenant)
        projects = await app.database.run(db.add_access, flavorid, tenant)
    else:
        projects = await app.database.run(db.remove_access, flavorid, tenant)
    return _access_body(flavorid, projects)


def register(app) -> None:
    app.route("GET", "/v2.1/flavors", index)
    app.route("GET", "/v2.1/flavors/detail", detail)
    app.route("POST", "/v2.1/flavors", create)
    app.route("GET", "/v2.1/flavors/{flavor_id}", show)
    app.route("PUT", "/v2.1/flavors/{flavor_id}", update, min_version=DESCRIPTION_VERSION)
    app.route("DELETE", "/v2.1/flavors/{flavor_id}", delete)
    app.route("POST", "/v2.1/flavors/{flavor_id}/action", action)
    app.route("GET", "/v2.1/flavors/{flavor_id}/os-flavor-access", access_index)
    app.route("GET", "/v2.1/flavors/{flavor_id}/os-extra_specs", extra_specs_index)
    app.route("POST", "/v2.1/flavors/{flavor_id}/os-extra_specs", extra_specs_create)
    app.route("GET", "/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", extra_spec_show)
    app.route("PUT", "/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", extra_spec_update)
    app.route("DELETE", "/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", extra_spec_delete)
