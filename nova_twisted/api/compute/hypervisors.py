"""``/os-hypervisors`` (admin): list, detail, show, statistics, search, servers, uptime.

Figures come from the compute nodes, their inventories and the
allocations on them. Below 2.53 a hypervisor's ``id`` is the integer row
id and ``/{pattern}/search`` and ``/{pattern}/servers`` exist; from 2.53
the id is the node's uuid and those routes are query parameters of the
list (``hypervisor_hostname_pattern``, ``with_servers``). ``cpu_info`` is a
JSON string below 2.28 and an object from then on; lists page with
``limit``/``marker`` from 2.33; from 2.75 ``servers`` is always present
(maybe empty) when asked for.
"""

from __future__ import annotations

import json

from nova_twisted import exception, utils
from nova_twisted.api.compute.resource_helpers import MAX_INT, bool_from_string, check_query, param
from nova_twisted.api.compute.services import is_up
from nova_twisted.db import usage

CPU_INFO_OBJECT_VERSION = "2.28"
PAGING_VERSION = "2.33"
UUID_VERSION = "2.53"
SERVERS_ALWAYS_VERSION = "2.75"

POLICIES = {
    f"os_compute_api:os-hypervisors:{name}": "rule:admin_api"
    for name in ("list", "list-detail", "show", "statistics", "uptime", "search", "servers")
}

_DETAIL_FIELDS = (
    "vcpus",
    "memory_mb",
    "local_gb",
    "vcpus_used",
    "memory_mb_used",
    "local_gb_used",
    "hypervisor_type",
    "hypervisor_version",
    "free_ram_mb",
    "free_disk_gb",
    "current_workload",
    "running_vms",
    "disk_available_least",
    "host_ip",
)


def view(app, req, node: dict, detail: bool, servers=None, with_servers: bool = False) -> dict:
    """One hypervisor as Nova shows it at the request's microversion."""
    version = app.version(req)
    by_uuid = version >= UUID_VERSION
    service = node["service"]
    body = {
        "id": node["uuid"] if by_uuid else node["id"],
        "hypervisor_hostname": node["hypervisor_hostname"],
        "state": "up" if is_up(app, service) else "down",
        "status": "disabled" if service["disabled"] else "enabled",
    }
    if detail:
        body.update({field: node[field] for field in _DETAIL_FIELDS})
        body["service"] = {
            "id": service["uuid"] if by_uuid else service["id"],
            "host": node["host"],
            "disabled_reason": service["disabled_reason"],
        }
        if version >= CPU_INFO_OBJECT_VERSION:
            try:
                body["cpu_info"] = json.loads(node["cpu_info"]) if node["cpu_info"] else {}
            except ValueError:
                body["cpu_info"] = {}
        else:
            body["cpu_info"] = node["cpu_info"]
    if servers:
        body["servers"] = [{"name": s["name"], "uuid": s["uuid"]} for s in servers]
    elif with_servers and version >= SERVERS_ALWAYS_VERSION:
        body["servers"] = []
    return body


def _not_found(hypervisor_id) -> exception.NotFound:
    return exception.NotFound(f"Hypervisor with ID '{hypervisor_id}' could not be found.")


def _no_match(pattern: str) -> exception.NotFound:
    return exception.NotFound(f"No hypervisor matching '{pattern}' could be found.")


async def _servers_by_host(app, nodes: list[dict]) -> dict[str, list[dict]]:
    return await app.database.run(usage.instances_on_hosts, sorted({n["host"] for n in nodes}))


async def _list(app, req, detail: bool):
    app.authorize(req, f"os_compute_api:os-hypervisors:{'list-detail' if detail else 'list'}", {})
    version = app.version(req)
    by_uuid = version >= UUID_VERSION
    paging = version >= PAGING_VERSION
    pattern, with_servers = None, False
    if by_uuid:
        check_query(
            app, req, ("limit", "marker", "hypervisor_hostname_pattern", "with_servers"), strict_since=UUID_VERSION
        )
        pattern = req.arg("hypervisor_hostname_pattern")
        try:
            with_servers = bool_from_string(req.arg("with_servers", "false"), strict=True)
        except ValueError:
            raise exception.ValidationError(
                f"Invalid input for query parameters with_servers. Value: {req.arg('with_servers')}. "
                f"'{req.arg('with_servers')}' is not one of the accepted boolean values"
            ) from None
    limit = app.limit(req) if paging else None
    marker = req.arg("marker") if paging else None
    if pattern is not None:
        if req.arg("limit") is not None or marker:
            raise exception.InvalidRequest(
                reason="Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported."
            )
        nodes = await app.database.run(usage.hypervisors, pattern)
        if not nodes:
            raise _no_match(pattern)
        paging = False
    else:
        nodes = await app.database.run(usage.hypervisors)
        if marker is not None:
            key = "uuid" if by_uuid else "id"
            position = next((i for i, n in enumerate(nodes) if str(n[key]) == marker), None)
            if position is None:
                raise exception.InvalidRequest(reason=f"marker [{marker}] not found")
            nodes = nodes[position + 1 :]
        if limit is not None:
            nodes = nodes[:limit]
    servers = await _servers_by_host(app, nodes) if with_servers else {}
    items = [view(app, req, n, detail, servers.get(n["host"]), with_servers) for n in nodes]
    body = {"hypervisors": items}
    if paging:
        page = limit if limit is not None else app.conf.api.max_limit
        links = app.next_link(req, "os-hypervisors/detail" if detail else "os-hypervisors", items, page)
        if links:
            body["hypervisors_links"] = links
    return body


async def index(app, req):
    """Hypervisors: id, hostname, state, status."""
    return await _list(app, req, detail=False)


async def detail(app, req):
    """Hypervisors with their figures and service."""
    return await _list(app, req, detail=True)


async def _node(app, req, hypervisor_id: str) -> dict:
    if app.version(req) >= UUID_VERSION:
        if not utils.is_uuid_like(hypervisor_id):
            raise exception.InvalidRequest(reason=f"Invalid uuid {hypervisor_id}")
        lookup = {"uuid": hypervisor_id}
    else:
        if not hypervisor_id.isdigit() or int(hypervisor_id) > MAX_INT:
            raise _not_found(hypervisor_id)
        lookup = {"node_id": int(hypervisor_id)}
    try:
        return await app.database.run(usage.hypervisor, **lookup)
    except exception.NotFound:
        raise _not_found(hypervisor_id) from None


async def show(app, req):
    """One hypervisor in detail (``with_servers`` from 2.53)."""
    app.authorize(req, "os_compute_api:os-hypervisors:show", {})
    with_servers = False
    if app.version(req) >= UUID_VERSION:
        check_query(app, req, ("with_servers",), strict_since=UUID_VERSION)
        try:
            with_servers = bool_from_string(req.arg("with_servers", "false"), strict=True)
        except ValueError:
            raise exception.ValidationError(
                f"Invalid input for query parameters with_servers. Value: {req.arg('with_servers')}."
            ) from None
    hypervisor_id = param(req, "hypervisor_id")
    node = await _node(app, req, hypervisor_id)
    servers = (await _servers_by_host(app, [node]))[node["host"]] if with_servers else None
    return {"hypervisor": view(app, req, node, True, servers, with_servers)}


async def uptime(app, req):
    """Not offered by our drivers: Nova's 501 for a driver without uptime."""
    app.authorize(req, "os_compute_api:os-hypervisors:uptime", {})
    await _node(app, req, param(req, "hypervisor_id"))
    error = exception.NovaError("Virt driver does not implement uptime function.")
    error.code = 501
    raise error


async def search(app, req):
    """Hypervisors whose hostname contains the pattern (before 2.53)."""
    app.authorize(req, "os_compute_api:os-hypervisors:search", {})
    pattern = param(req, "pattern")
    nodes = await app.database.run(usage.hypervisors, pattern)
    if not nodes:
        raise _no_match(pattern)
    return {"hypervisors": [view(app, req, n, False) for n in nodes]}


async def servers(app, req):
    """Matching hypervisors with the servers on them (before 2.53)."""
    app.authorize(req, "os_compute_api:os-hypervisors:servers", {})
    pattern = param(req, "pattern")
    nodes = await app.database.run(usage.hypervisors, pattern)
    if not nodes:
        raise _no_match(pattern)
    by_host = await _servers_by_host(app, nodes)
    return {"hypervisors": [view(app, req, n, False, by_host.get(n["host"])) for n in nodes]}


async def statistics(app, req):
    """Sums over the hypervisors of enabled compute services."""
    app.authorize(req, "os_compute_api:os-hypervisors:statistics", {})
    nodes = [n for n in await app.database.run(usage.hypervisors) if not n["service"]["disabled"]]
    fields = (
        "vcpus",
        "memory_mb",
        "local_gb",
        "vcpus_used",
        "memory_mb_used",
        "local_gb_used",
        "free_ram_mb",
        "free_disk_gb",
        "current_workload",
        "running_vms",
        "disk_available_least",
    )
    stats = {"count": len(nodes)}
    for field in fields:
        stats[field] = sum(int(n[field] or 0) for n in nodes)
    return {"hypervisor_statistics": stats}


def register(app) -> None:
    app.route("GET", "/v2.1/os-hypervisors", index)
    app.route("GET", "/v2.1/os-hypervisors/detail", detail)
    app.route("GET", "/v2.1/os-hypervisors/statistics", statistics)
    app.route("GET", "/v2.1/os-hypervisors/{hypervisor_id}", show)
    app.route("GET", "/v2.1/os-hypervisors/{hypervisor_id}/uptime", uptime)
    app.route("GET", "/v2.1/os-hypervisors/{pattern}/search", search, max_version="2.52")
    app.route("GET", "/v2.1/os-hypervisors/{pattern}/servers", servers, max_version="2.52")
