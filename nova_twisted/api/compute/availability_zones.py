"""``/os-availability-zone``: the zones (any user) and, for admins, ``/detail`` with hosts and services.

A zone is available when an enabled service is in it; a zone whose
services are all disabled is listed as unavailable. Compute services are
in their host's zone, every other service in ``internal``, which only
the detailed view shows (as Nova hides ``internal_service_availability_zone``).
"""

from __future__ import annotations

from nova_twisted.api.compute.resource_helpers import nova_time
from nova_twisted.api.compute.services import INTERNAL_ZONE, is_up, zone_of
from nova_twisted.db import services as db
from nova_twisted.db import usage

POLICIES = {
    "os_compute_api:os-availability-zone:list": "rule:project_reader_or_admin",
    "os_compute_api:os-availability-zone:detail": "rule:admin_api",
    "os_compute_api:os-aggregates:index": "rule:admin_api",
}

#: API services are not kept like the others: Nova leaves them out of the detail.
_API_BINARIES = ("nova-osapi_compute", "nova-metadata", "nova-api")


async def _services(app) -> tuple[list[dict], list[str], list[str]]:
    rows = await app.database.run(db.list_services)
    zones = await app.database.run(usage.compute_zones)
    for row in rows:
        row["zone"] = zone_of(app, row, zones)
    available = sorted({r["zone"] for r in rows if not r["disabled"]})
    unavailable = sorted({r["zone"] for r in rows if r["disabled"]} - set(available))
    return rows, available, unavailable


async def index(app, req):
    """Zone names and whether each is available (the internal zone left out)."""
    app.authorize(req, "os_compute_api:os-availability-zone:list")
    _, available, unavailable = await _services(app)
    info = [
        {"zoneName": zone, "zoneState": {"available": state}, "hosts": None}
        for zones, state in ((available, True), (unavailable, False))
        for zone in zones
        if zone != INTERNAL_ZONE
    ]
    return {"availabilityZoneInfo": info}


async def detail(app, req):
    """Zones with their hosts and each host's services (admin)."""
    app.authorize(req, "os_compute_api:os-availability-zone:detail", {})
    rows, available, unavailable = await _services(app)
    hosts: dict[str, dict[str, dict]] = {}
    for row in rows:
        if row["disabled"] or row["binary"] in _API_BINARIES:
            continue
        hosts.setdefault(row["zone"], {}).setdefault(row["host"], {})[row["binary"]] = {
            "available": is_up(app, row),
            "active": not row["disabled"],
            "updated_at": nova_time(row.get("last_seen_up") or row.get("updated_at")),
        }
    info = [{"zoneName": zone, "zoneState": {"available": True}, "hosts": hosts.get(zone, {})} for zone in available]
    info += [{"zoneName": zone, "zoneState": {"available": False}, "hosts": None} for zone in unavailable]
    return {"availabilityZoneInfo": info}


async def aggregates(app, req):
    """Host aggregates (admin): zones here come from the hosts themselves, so there are none.

    Listed so that clients that look hosts up in aggregates (``openstack
    hypervisor show``) get Nova's empty answer rather than a 404.
    """
    app.authorize(req, "os_compute_api:os-aggregates:index", {})
    return {"aggregates": []}


def register(app) -> None:
    app.route("GET", "/v2.1/os-aggregates", aggregates)
    app.route("GET", "/v2.1/os-availability-zone", index)
    app.route("GET", "/v2.1/os-availability-zone/detail", detail)
