"""``GET /v2.1/openapi.json``: an OpenAPI 3.1 document of every route the compute API serves.

The paths and methods come from the router itself, so the document
cannot drift from what is served (a test compares them). Request bodies
are the JSON schemas the handlers validate with, at the newest
microversion; a resource module may describe its routes in a module-level
``OPENAPI = {(method, pattern): {"request": schema, "responses": {...},
"query": {name: schema}}}``; for modules without one, the table below
names the schemas they validate with. Response shapes are given for the
main resources (servers, flavors, key pairs, server groups); every error
is Nova's ``{"<fault>": {"code", "message"}}``.
"""

from __future__ import annotations

import copy
import importlib
import re

from nova_twisted.api.compute import microversion

LATEST = microversion.MAX

# -- shared shapes ----------------------------------------------------------------------------
LINK = {
    "type": "object",
    "properties": {"rel": {"type": "string"}, "href": {"type": "string"}, "type": {"type": "string"}},
    "required": ["rel", "href"],
}
LINKS = {"type": "array", "items": {"$ref": "#/components/schemas/Link"}}
ERROR = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": {
        "type": "object",
        "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
        "required": ["code", "message"],
    },
}
_STR_OR_NULL = {"type": ["string", "null"]}
SERVER = {
    "type": "object",
    "description": "A server as GET /servers/{server_id} shows it; which optional fields appear depends on the "
    "microversion and the caller's rights.",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "status": {"type": "string"},
        "tenant_id": {"type": "string"},
        "user_id": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "hostId": {"type": "string"},
        "image": {"oneOf": [{"type": "string", "maxLength": 0}, {"type": "object"}]},
        "flavor": {"type": "object"},
        "created": {"type": "string"},
        "updated": {"type": "string"},
        "addresses": {"type": "object"},
        "accessIPv4": {"type": "string"},
        "accessIPv6": {"type": "string"},
        "links": LINKS,
        "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
        "progress": {"type": "integer"},
        "fault": {"type": "object"},
        "OS-EXT-AZ:availability_zone": {"type": "string"},
        "config_drive": {"type": "string"},
        "key_name": _STR_OR_NULL,
        "OS-SRV-USG:launched_at": _STR_OR_NULL,
        "OS-SRV-USG:terminated_at": _STR_OR_NULL,
        "OS-EXT-STS:task_state": _STR_OR_NULL,
        "OS-EXT-STS:vm_state": {"type": "string"},
        "OS-EXT-STS:power_state": {"type": "integer"},
        "os-extended-volumes:volumes_attached": {"type": "array"},
        "locked": {"type": "boolean"},
        "locked_reason": _STR_OR_NULL,
        "description": _STR_OR_NULL,
        "tags": {"type": "array", "items": {"type": "string"}},
        "trusted_image_certificates": {"type": ["array", "null"]},
        "server_groups": {"type": "array", "items": {"type": "string"}},
        "host_status": {"type": "string"},
        "adminPass": {"type": "string"},
        "user_data": _STR_OR_NULL,
    },
    "required": [
        "id",
        "name",
        "status",
        "tenant_id",
        "user_id",
        "metadata",
        "hostId",
        "image",
        "flavor",
        "created",
        "updated",
        "addresses",
        "accessIPv4",
        "accessIPv6",
        "links",
        "OS-DCF:diskConfig",
    ],
}
SERVER_SUMMARY = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "links": LINKS},
    "required": ["id", "name", "links"],
    "additionalProperties": False,
}
CREATED_SERVER = {
    "oneOf": [
        {
            "type": "object",
            "properties": {
                "server": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "links": LINKS,
                        "OS-DCF:diskConfig": {"type": "string"},
                        "security_groups": {"type": "array"},
                        "adminPass": {"type": "string"},
                    },
                    "required": ["id", "links", "OS-DCF:diskConfig", "security_groups"],
                    "additionalProperties": False,
                }
            },
            "required": ["server"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"reservation_id": {"type": "string"}},
            "required": ["reservation_id"],
            "additionalProperties": False,
        },
    ]
}
FLAVOR = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "ram": {"type": "integer"},
        "vcpus": {"type": "integer"},
        "disk": {"type": "integer"},
        "links": LINKS,
    },
    "required": ["id", "name", "links"],
}
KEYPAIR = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "public_key": {"type": "string"},
        "fingerprint": {"type": "string"},
        "type": {"type": "string"},
    },
    "required": ["name", "public_key", "fingerprint"],
}
SERVER_GROUP = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "members": {"type": "array"}},
    "required": ["id", "name", "members"],
}
COMPONENT_SCHEMAS = {
    "Error": ERROR,
    "Link": LINK,
    "Server": SERVER,
    "ServerSummary": SERVER_SUMMARY,
    "CreatedServer": CREATED_SERVER,
    "Flavor": FLAVOR,
    "Keypair": KEYPAIR,
    "ServerGroup": SERVER_GROUP,
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _wrapped(key: str, schema: dict) -> dict:
    return {"type": "object", "properties": {key: schema}, "required": [key]}


def _listing(key: str, item: dict, links_key: str | None = None) -> dict:
    schema = {"type": "object", "properties": {key: {"type": "array", "items": item}}, "required": [key]}
    if links_key:
        schema["properties"][links_key] = LINKS
    return schema


#: Success answers of routes whose shape is known: (method, pattern) -> {status: schema or None}.
RESPONSES = {
    ("GET", "/v2.1/servers"): {"200": _listing("servers", _ref("ServerSummary"), "servers_links")},
    ("GET", "/v2.1/servers/detail"): {"200": _listing("servers", _ref("Server"), "servers_links")},
    ("POST", "/v2.1/servers"): {"202": _ref("CreatedServer")},
    ("GET", "/v2.1/servers/{server_id}"): {"200": _wrapped("server", _ref("Server"))},
    ("PUT", "/v2.1/servers/{server_id}"): {"200": _wrapped("server", {"type": "object"})},
    ("DELETE", "/v2.1/servers/{server_id}"): {"204": None},
    ("POST", "/v2.1/servers/{server_id}/action"): {"200": {"type": "object"}, "202": None, "204": None},
    ("GET", "/v2.1/servers/{server_id}/metadata"): {"200": _wrapped("metadata", {"type": "object"})},
    ("POST", "/v2.1/servers/{server_id}/metadata"): {"200": _wrapped("metadata", {"type": "object"})},
    ("PUT", "/v2.1/servers/{server_id}/metadata"): {"200": _wrapped("metadata", {"type": "object"})},
    ("GET", "/v2.1/servers/{server_id}/metadata/{key}"): {"200": _wrapped("meta", {"type": "object"})},
    ("PUT", "/v2.1/servers/{server_id}/metadata/{key}"): {"200": _wrapped("meta", {"type": "object"})},
    ("DELETE", "/v2.1/servers/{server_id}/metadata/{key}"): {"204": None},
    ("GET", "/v2.1/servers/{server_id}/os-instance-actions"): {
        "200": _listing("instanceActions", {"type": "object"}, "links")
    },
    ("GET", "/v2.1/servers/{server_id}/os-instance-actions/{request_id}"): {
        "200": _wrapped("instanceAction", {"type": "object"})
    },
    ("POST", "/v2.1/servers/{server_id}/remote-consoles"): {"200": _wrapped("remote_console", {"type": "object"})},
    ("GET", "/v2.1/flavors"): {"200": _listing("flavors", {"type": "object"}, "flavors_links")},
    ("GET", "/v2.1/flavors/detail"): {"200": _listing("flavors", _ref("Flavor"), "flavors_links")},
    ("GET", "/v2.1/flavors/{flavor_id}"): {"200": _wrapped("flavor", _ref("Flavor"))},
    ("POST", "/v2.1/flavors"): {"200": _wrapped("flavor", _ref("Flavor"))},
    ("GET", "/v2.1/os-keypairs"): {"200": _listing("keypairs", _wrapped("keypair", {"type": "object"}))},
    ("GET", "/v2.1/os-keypairs/{name}"): {"200": _wrapped("keypair", _ref("Keypair"))},
    ("POST", "/v2.1/os-keypairs"): {"200": _wrapped("keypair", _ref("Keypair")), "201": None},
    ("GET", "/v2.1/os-server-groups"): {"200": _listing("server_groups", _ref("ServerGroup"))},
    ("GET", "/v2.1/os-server-groups/{group_id}"): {"200": _wrapped("server_group", _ref("ServerGroup"))},
    ("POST", "/v2.1/os-server-groups"): {"200": _wrapped("server_group", _ref("ServerGroup"))},
    ("GET", "/"): {"200": {"type": "object", "required": ["versions"]}},
    ("GET", "/v2.1"): {"200": {"type": "object", "required": ["version"]}},
    ("GET", "/v2.1/openapi.json"): {"200": {"type": "object", "required": ["openapi", "paths"]}},
}

#: Request schemas of modules without an OPENAPI dict: (method, pattern) -> (module, attribute[, key]).
#: A callable attribute is called with the newest microversion; a dict one is offered as oneOf.
OTHER_REQUEST_SCHEMAS = {
    ("POST", "/v2.1/flavors"): ("flavors", "_create_schema"),
    ("PUT", "/v2.1/flavors/{flavor_id}"): ("flavors", "UPDATE_SCHEMA"),
    ("POST", "/v2.1/flavors/{flavor_id}/os-extra_specs"): ("flavors", "EXTRA_SPECS_CREATE_SCHEMA"),
    ("PUT", "/v2.1/flavors/{flavor_id}/os-extra_specs/{key}"): ("flavors", "EXTRA_SPEC_UPDATE_SCHEMA"),
    ("POST", "/v2.1/flavors/{flavor_id}/action"): ("flavors", "ACCESS_SCHEMAS"),
    ("POST", "/v2.1/os-keypairs"): ("keypairs", "_create_schema"),
    ("POST", "/v2.1/os-server-groups"): ("server_groups", "_create_schema"),
    ("PUT", "/v2.1/os-quota-sets/{project_id}"): ("quota_sets", "_update_schema"),
    ("PUT", "/v2.1/os-services/{action}"): ("services", "UPDATE_SCHEMA_253"),
}


def _servers_family() -> tuple[dict, dict]:
    """Request schemas and query parameters of the servers family (this module's own)."""
    from nova_twisted.api.compute import (
        instance_actions,
        remote_consoles,
        server_actions,
        server_metadata,
        servers,
    )

    actions = []
    for name, spec in sorted(server_actions.ACTIONS.items()):
        schema = spec.schema_for(LATEST) if spec.max_version is None else spec.schema
        actions.append(
            schema
            if schema is not None
            else {"type": "object", "properties": {name: {}}, "required": [name], "additionalProperties": False}
        )
    requests = {
        ("POST", "/v2.1/servers"): servers.create_schema(LATEST),
        ("PUT", "/v2.1/servers/{server_id}"): servers.update_schema(LATEST),
        ("POST", "/v2.1/servers/{server_id}/action"): {"oneOf": actions},
        ("POST", "/v2.1/servers/{server_id}/metadata"): server_metadata.METADATA_BODY,
        ("PUT", "/v2.1/servers/{server_id}/metadata"): server_metadata.METADATA_BODY,
        ("PUT", "/v2.1/servers/{server_id}/metadata/{key}"): server_metadata.META_BODY,
        ("POST", "/v2.1/servers/{server_id}/remote-consoles"): remote_consoles.REMOTE_CONSOLE_V28,
    }
    list_query = {name: schema["items"] for name, schema in servers.list_query_schema(LATEST)["properties"].items()}
    queries = {
        ("GET", "/v2.1/servers"): list_query,
        ("GET", "/v2.1/servers/detail"): list_query,
        ("GET", "/v2.1/servers/{server_id}/os-instance-actions"): {
            name: schema["items"] for name, schema in instance_actions.QUERY_V266["properties"].items()
        },
    }
    return requests, queries


def _other_request_schema(method: str, pattern: str) -> dict | None:
    entry = OTHER_REQUEST_SCHEMAS.get((method, pattern))
    if entry is None:
        return None
    try:
        module = importlib.import_module(f"nova_twisted.api.compute.{entry[0]}")
    except ImportError:
        return None
    value = getattr(module, entry[1], None)
    if callable(value):
        value = value(LATEST)
    if not isinstance(value, dict):
        return None
    if "type" not in value and "oneOf" not in value:  # a dict of schemas, one per action name
        return {"oneOf": list(value.values())}
    return value


def template_shape(pattern: str) -> str:
    """A route pattern with its parameter names blanked (``/servers/{}``): equal shapes are one OpenAPI path."""
    return re.sub(r"\{\w+\}", "{}", pattern.rstrip("/") or "/")


def _module_openapi(handler) -> dict:
    module = importlib.import_module(handler.__module__) if handler is not None else None
    return getattr(module, "OPENAPI", {}) if module is not None else {}


def _operation_id(method: str, pattern: str, handler) -> str:
    module = handler.__module__.rsplit(".", 1)[-1] if handler is not None else "api"
    name = getattr(handler, "__name__", "handler")
    slug = re.sub(r"[^a-zA-Z0-9]+", "_", pattern).strip("_") or "root"
    return f"{module}.{name}.{method.lower()}.{slug}"


def document_for(router) -> dict:
    """The OpenAPI document of ``router``'s routes."""
    requests, queries = _servers_family()
    paths: dict[str, dict] = {}
    shapes: dict[str, str] = {}
    for method, _regex, call, auth, pattern in router.routes:
        handler = getattr(call, "__wrapped__", None)
        module_doc = _module_openapi(handler).get((method, pattern), {})
        # Template-equivalent patterns (/os-services/{action}, /os-services/{service_id}) are one path.
        shape = template_shape(pattern)
        path = shapes.setdefault(shape, pattern.rstrip("/") or "/")
        item = paths.setdefault(path, {})
        names = re.findall(r"\{(\w+)\}", path)
        if names:
            item["parameters"] = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
                for name in names
            ]
        summary = ((call.__doc__ or "").strip().splitlines() or [""])[0]
        low, high = getattr(call, "versions", (None, None))
        operation: dict = {
            "operationId": _operation_id(method, pattern, handler),
            "x-route": pattern,
            "summary": summary or f"{method} {pattern}",
            "x-openstack-microversions": {
                "min": low or microversion.MIN_VERSION,
                "max": high or microversion.MAX_VERSION,
            },
            "parameters": [
                {
                    "name": "OpenStack-API-Version",
                    "in": "header",
                    "required": False,
                    "description": "compute X.Y (or latest): the microversion asked for; 2.1 without it.",
                    "schema": {"type": "string"},
                }
            ],
        }
        if auth:
            operation["security"] = [{"token": []}]
        else:
            operation["security"] = []
        for name, schema in (module_doc.get("query") or queries.get((method, pattern)) or {}).items():
            operation["parameters"].append({"name": name, "in": "query", "required": False, "schema": schema})
        body = module_doc.get("request") or requests.get((method, pattern)) or _other_request_schema(method, pattern)
        if body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": copy.deepcopy(body)}},
            }
        elif method in ("POST", "PUT"):
            operation["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": {"type": ["object", "null"]}}},
            }
        responses: dict = {}
        for status, schema in (module_doc.get("responses") or RESPONSES.get((method, pattern)) or {}).items():
            responses[status] = {"description": "Success"}
            if schema is not None:
                responses[status]["content"] = {"application/json": {"schema": schema}}
        if not responses:
            responses["2XX"] = {"description": "Success"}
        error = {"content": {"application/json": {"schema": _ref("Error")}}}
        responses["4XX"] = {"description": "Nova's error body (badRequest, itemNotFound, conflictingRequest, ...)"}
        responses["4XX"].update(error)
        operation["responses"] = responses
        item[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "nova-twisted OpenStack Compute API",
            "version": "2.1",
            "description": f"The OpenStack Compute API v2.1, microversions {microversion.MIN_VERSION} to "
            f"{microversion.MAX_VERSION}. Request schemas are those of the newest microversion.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": copy.deepcopy(COMPONENT_SCHEMAS),
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}},
        },
    }


async def openapi_json(app, req):
    """This document (no token needed)."""
    document = getattr(app, "_openapi_document", None)
    if document is None:
        document = app._openapi_document = document_for(app.router)
    answer = dict(document)
    answer["servers"] = [{"url": app.base_url(req)}]
    return answer


def register(app) -> None:
    app.route("GET", "/v2.1/openapi.json", openapi_json, auth=False)
