"""``/limits``: the project's absolute limits and what it uses, as Nova names them.

nova-network's limits (floating IPs, security groups) go at 2.36,
``maxImageMeta`` at 2.39, the personality (injected file) limits at 2.57.
``rate`` is always empty. ``?tenant_id=`` shows another project (admin).
"""

from __future__ import annotations

from nova_twisted.api.compute.quota_sets import defaults
from nova_twisted.api.compute.resource_helpers import check_query
from nova_twisted.db import quotas as db

NETWORK_LIMITS_REMOVED = "2.36"
IMAGE_META_REMOVED = "2.39"
PERSONALITY_REMOVED = "2.57"

POLICIES = {
    "os_compute_api:limits": "@",
    "os_compute_api:limits:other_project": "rule:admin_api or project_id:%(project_id)s",
}

#: Quota → the absolute limit names it is shown as.
LIMIT_NAMES = {
    "ram": ["maxTotalRAMSize"],
    "instances": ["maxTotalInstances"],
    "cores": ["maxTotalCores"],
    "key_pairs": ["maxTotalKeypairs"],
    "floating_ips": ["maxTotalFloatingIps"],
    "metadata_items": ["maxServerMeta", "maxImageMeta"],
    "injected_files": ["maxPersonality"],
    "injected_file_content_bytes": ["maxPersonalitySize"],
    "security_groups": ["maxSecurityGroups"],
    "security_group_rules": ["maxSecurityGroupRules"],
    "server_groups": ["maxServerGroups"],
    "server_group_members": ["maxServerGroupMembers"],
}
#: Usage figure → the quota it counts.
USED_NAMES = {
    "totalRAMUsed": "ram",
    "totalCoresUsed": "cores",
    "totalInstancesUsed": "instances",
    "totalFloatingIpsUsed": "floating_ips",
    "totalSecurityGroupsUsed": "security_groups",
    "totalServerGroupsUsed": "server_groups",
}


def absolute(version, limits: dict[str, int], used: dict[str, int]) -> dict[str, int]:
    """The ``absolute`` block at ``version``."""
    hidden = set()
    if version >= NETWORK_LIMITS_REMOVED:
        hidden |= {"floating_ips", "security_groups", "security_group_rules"}
    if version >= PERSONALITY_REMOVED:
        hidden |= {"injected_files", "injected_file_content_bytes"}
    out = {}
    for quota, names in LIMIT_NAMES.items():
        if quota in hidden or quota not in limits:
            continue
        for name in names:
            if name == "maxImageMeta" and version >= IMAGE_META_REMOVED:
                continue
            out[name] = limits[quota]
    for name, quota in USED_NAMES.items():
        if quota not in hidden:
            out[name] = used.get(quota, 0)
    return out


async def index(app, req):
    """The caller's project's limits (or ``tenant_id``'s, for admins)."""
    app.authorize(req, "os_compute_api:limits", {})
    check_query(app, req, ("tenant_id",))
    project_id = req.context.project_id
    if req.arg("tenant_id") is not None:
        project_id = req.arg("tenant_id")
        app.authorize(req, "os_compute_api:limits:other_project", {"project_id": project_id})
    limits, used = await app.database.run(db.limits_and_usage, project_id, defaults(app), None)
    return {"limits": {"rate": [], "absolute": absolute(app.version(req), limits, used)}}


def register(app) -> None:
    app.route("GET", "/v2.1/limits", index)
