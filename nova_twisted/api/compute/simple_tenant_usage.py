"""``/os-simple-tenant-usage``: what projects' servers used over a period.

Computed from each server's launch and termination times and the flavor
it carries: hours inside [start, end) times RAM, vCPUs and disk. The
index (admin) sums every project (with ``detailed=1`` each server too);
show covers one project, always in detail. From 2.40 both page over
servers with ``limit``/``marker`` (a server uuid) and answer next links.
``end`` is capped at now; a ``start`` not before ``end`` is a 400.
"""

from __future__ import annotations

import datetime as dt

from nova_twisted import exception, utils
from nova_twisted.api.compute.resource_helpers import check_query, nova_time, param
from nova_twisted.db import usage

PAGING_VERSION = "2.40"

POLICIES = {
    "os_compute_api:os-simple-tenant-usage:list": "rule:admin_api",
    "os_compute_api:os-simple-tenant-usage:show": "rule:admin_api or project_id:%(project_id)s",
}

_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


def _parse_time(text: str | None, now: dt.datetime) -> dt.datetime:
    if not text:
        return now
    for fmt in _FORMATS:
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise exception.InvalidRequest(reason="Invalid datetime string: Datetime is in invalid format")


def _period(app, req) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    now = utils.utcnow(app.reactor)
    start = _parse_time(req.arg("start"), now)
    stop = _parse_time(req.arg("end"), now)
    if not start < stop:
        raise exception.InvalidRequest(reason="Invalid start time. The start time cannot occur after the end time.")
    return start, min(stop, now), now


def hours_for(server: dict, start: dt.datetime, stop: dt.datetime) -> float:
    """Hours the server ran inside [start, stop] (0 if it never launched)."""
    launched, terminated = server["launched_at"], server["terminated_at"]
    if launched is None or (terminated is not None and terminated < start) or launched > stop:
        return 0
    end = min(stop, terminated) if terminated is not None else stop
    return (end - max(launched, start)).total_seconds() / 3600.0


def summarize(servers: list[dict], start, stop, now, detailed: bool) -> tuple[list[dict], list[dict]]:
    """Per-project totals (with server usages when ``detailed``) and every server's usage."""
    projects: dict[str, dict] = {}
    all_usages = []
    for server in servers:
        flavor = server["flavor"] or {}
        hours = hours_for(server, start, stop)
        memory_mb = flavor.get("memory_mb", server["memory_mb"]) or 0
        local_gb = (flavor.get("root_gb", server["root_gb"]) or 0) + (
            flavor.get("ephemeral_gb", server["ephemeral_gb"]) or 0
        )
        vcpus = flavor.get("vcpus", server["vcpus"]) or 0
        ended = server["terminated_at"]
        launched = server["launched_at"]
        info = {
            "hours": hours,
            "flavor": flavor.get("name") or "",
            "instance_id": server["uuid"],
            "name": server["display_name"],
            "tenant_id": server["project_id"],
            "memory_mb": memory_mb,
            "local_gb": local_gb,
            "vcpus": vcpus,
            "started_at": nova_time(launched),
            "ended_at": nova_time(ended),
            "state": "terminated" if ended else server["vm_state"],
            "uptime": int(((ended or now) - launched).total_seconds()),
        }
        summary = projects.get(info["tenant_id"])
        if summary is None:
            summary = {"tenant_id": info["tenant_id"]}
            if detailed:
                summary["server_usages"] = []
            summary.update(
                {
                    "total_local_gb_usage": 0,
                    "total_vcpus_usage": 0,
                    "total_memory_mb_usage": 0,
                    "total_hours": 0,
                    "start": nova_time(start),
                    "stop": nova_time(stop),
                }
            )
            projects[info["tenant_id"]] = summary
        summary["total_local_gb_usage"] += local_gb * hours
        summary["total_vcpus_usage"] += vcpus * hours
        summary["total_memory_mb_usage"] += memory_mb * hours
        summary["total_hours"] += hours
        if detailed:
            summary["server_usages"].append(info)
        all_usages.append(info)
    return list(projects.values()), all_usages


async def _usages(app, req, project_id: str | None, detailed: bool):
    start, stop, now = _period(app, req)
    paging = app.version(req) >= PAGING_VERSION
    limit = app.limit(req) if paging else None
    if limit is None:
        limit = app.conf.api.max_limit
    marker = req.arg("marker") if paging else None
    try:
        servers = await app.database.run(usage.active_in_window, start, stop, project_id, limit, marker)
    except exception.NotFound as exc:
        raise exception.InvalidRequest(reason=exc.message) from None
    return summarize(servers, start, stop, now, detailed), limit


def _query_names(app, req) -> tuple[str, ...]:
    names = ("start", "end", "detailed")
    return names + ("limit", "marker") if app.version(req) >= PAGING_VERSION else names


def _links(app, req, collection: str, server_usages: list[dict], limit: int) -> list[dict]:
    if app.version(req) < PAGING_VERSION:
        return []
    return app.next_link(req, collection, [{"id": u["instance_id"]} for u in server_usages], limit)


async def index(app, req):
    """Usage of every project over the period (admin)."""
    app.authorize(req, "os_compute_api:os-simple-tenant-usage:list", {})
    check_query(app, req, _query_names(app, req))
    detailed = req.arg("detailed", "0") == "1"
    (summaries, server_usages), limit = await _usages(app, req, None, detailed)
    body = {"tenant_usages": summaries}
    links = _links(app, req, "os-simple-tenant-usage", server_usages, limit)
    if links:
        body["tenant_usages_links"] = links
    return body


async def show(app, req):
    """Usage of one project over the period, with its servers."""
    project_id = param(req, "project_id")
    app.authorize(req, "os_compute_api:os-simple-tenant-usage:show", {"project_id": project_id})
    check_query(app, req, _query_names(app, req))
    (summaries, server_usages), limit = await _usages(app, req, project_id, True)
    body = {"tenant_usage": summaries[0] if summaries else {}}
    links = _links(app, req, f"os-simple-tenant-usage/{project_id}", server_usages, limit)
    if links:
        body["tenant_usage_links"] = links
    return body


def register(app) -> None:
    app.route("GET", "/v2.1/os-simple-tenant-usage", index)
    app.route("GET", "/v2.1/os-simple-tenant-usage/{project_id}", show)
