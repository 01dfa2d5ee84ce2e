"""Read-only views across hosts and instances for the admin APIs: hypervisors, usage windows.

Hypervisor figures come from the compute node's inventories (totals and
reserved amounts) and the allocations held on it, as Nova's resource
tracker reports them: ``*_used`` includes what the host reserves.
"""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nova_twisted import exception
from nova_twisted.db import placement
from nova_twisted.db.models import Allocation, ComputeNode, Instance, Inventory, Service


def _node_dict(node: ComputeNode, service: Service, inventory: dict, used: dict, running: int) -> dict:
    def total(rc):
        return int(inventory.get(rc, {}).get("total", 0))

    def reserved(rc):
        return int(inventory.get(rc, {}).get("reserved", 0))

    vcpus, memory_mb, local_gb = total(placement.VCPU), total(placement.MEMORY_MB), total(placement.DISK_GB)
    vcpus_used = int(used.get(placement.VCPU, 0))
    memory_mb_used = reserved(placement.MEMORY_MB) + int(used.get(placement.MEMORY_MB, 0))
    local_gb_used = reserved(placement.DISK_GB) + int(used.get(placement.DISK_GB, 0))
    return {
        "id": node.id,
        "uuid": node.uuid,
        "host": node.host,
        "hypervisor_hostname": node.hypervisor_hostname,
        "hypervisor_type": node.hypervisor_type,
        "hypervisor_version": node.hypervisor_version,
        "host_ip": node.host_ip,
        "cpu_info": node.cpu_info,
        "availability_zone": node.availability_zone,
        "vcpus": vcpus,
        "memory_mb": memory_mb,
        "local_gb": local_gb,
        "vcpus_used": vcpus_used,
        "memory_mb_used": memory_mb_used,
        "local_gb_used": local_gb_used,
        "free_ram_mb": memory_mb - memory_mb_used,
        "free_disk_gb": local_gb - local_gb_used,
        "disk_available_least": node.free_disk_gb,
        "current_workload": node.current_workload or 0,
        "running_vms": running,
        "service": service.to_dict(),
    }


def hypervisors(session: Session, hostname_pattern: str | None = None, node_ids=None) -> list[dict]:
    """Compute nodes that have a nova-compute service, by id, with their figures.

    ``hostname_pattern`` matches anywhere in the hypervisor hostname (as
    Nova's SQL ``LIKE %pattern%``); ``node_ids`` restricts to those ids.
    Each dict holds the node's columns Nova shows, the inventory totals,
    usage (reserved + allocated), ``running_vms`` and its ``service`` row.
    """
    query = (
        sa.select(ComputeNode, Service)
        .join(Service, sa.and_(Service.host == ComputeNode.host, Service.binary == "nova-compute"))
        .where(ComputeNode.deleted == sa.false())
        .order_by(ComputeNode.id)
    )
    if hostname_pattern is not None:
        escaped = hostname_pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(ComputeNode.hypervisor_hostname.like(f"%{escaped}%", escape="\\"))
    if node_ids is not None:
        query = query.where(ComputeNode.id.in_(list(node_ids)))
    rows = session.execute(query).all()
    if not rows:
        return []
    ids = [node.id for node, _ in rows]
    inventories: dict[int, dict] = {}
    for inv in session.execute(sa.select(Inventory).where(Inventory.compute_node_id.in_(ids))).scalars():
        inventories.setdefault(inv.compute_node_id, {})[inv.resource_class] = {
            "total": inv.total,
            "reserved": inv.reserved,
        }
    used: dict[int, dict] = {}
    for node_id, rc, amount in session.execute(
        sa.select(Allocation.compute_node_id, Allocation.resource_class, sa.func.sum(Allocation.used))
        .where(Allocation.compute_node_id.in_(ids))
        .group_by(Allocation.compute_node_id, Allocation.resource_class)
    ):
        used.setdefault(node_id, {})[rc] = int(amount or 0)
    names = [node.hypervisor_hostname for node, _ in rows]
    running = dict(
        session.execute(
            sa.select(Instance.node, sa.func.count())
            .where(Instance.node.in_(names), Instance.deleted == 0)
            .group_by(Instance.node)
        ).all()
    )
    return [
        _node_dict(
            node,
            service,
            inventories.get(node.id, {}),
            used.get(node.id, {}),
            int(running.get(node.hypervisor_hostname, 0)),
        )
        for node, service in rows
    ]


def hypervisor(session: Session, node_id: int | None = None, uuid: str | None = None) -> dict:
    """One hypervisor (as :func:`hypervisors`) by id or uuid; ComputeHostNotFound if none."""
    column, value = (ComputeNode.uuid, uuid) if uuid is not None else (ComputeNode.id, node_id)
    found = session.execute(
        sa.select(ComputeNode.id).where(column == value, ComputeNode.deleted == sa.false())
    ).scalar_one_or_none()
    rows = hypervisors(session, node_ids=[found]) if found is not None else []
    if not rows:
        raise exception.ComputeHostNotFound(host=value)
    return rows[0]


def instances_on_hosts(session: Session, hosts: list[str]) -> dict[str, list[dict]]:
    """Live instances by host: {host: [{"uuid", "name"}]} (``name`` is the display name)."""
    out: dict[str, list[dict]] = {h: [] for h in hosts}
    if hosts:
        for host, uuid, name in session.execute(
            sa.select(Instance.host, Instance.uuid, Instance.display_name)
            .where(Instance.host.in_(hosts), Instance.deleted == 0)
            .order_by(Instance.id)
        ):
            out[host].append({"uuid": uuid, "name": name})
    return out


def compute_zones(session: Session) -> dict[str, str]:
    """The availability zone of each compute host, from its compute nodes."""
    return dict(
        session.execute(
            sa.select(ComputeNode.host, ComputeNode.availability_zone).where(ComputeNode.deleted == sa.false())
        ).all()
    )


_USAGE_COLUMNS = (
    Instance.uuid,
    Instance.project_id,
    Instance.display_name,
    Instance.vm_state,
    Instance.flavor,
    Instance.memory_mb,
    Instance.vcpus,
    Instance.root_gb,
    Instance.ephemeral_gb,
    Instance.launched_at,
    Instance.terminated_at,
)


def active_in_window(
    session: Session,
    start: dt.datetime,
    stop: dt.datetime,
    project_id: str | None = None,
    limit: int | None = None,
    marker: str | None = None,
) -> list[dict]:
    """Instances (deleted ones too) that ran during [start, stop), ordered by project then uuid.

    As Nova's ``instance_get_active_by_window_joined``: not terminated
    before ``start`` and launched before ``stop``. ``marker`` is an
    instance uuid (any instance, deleted or not); unknown → NotFound with
    Nova's "Marker ... could not be found." message.
    """
    query = sa.select(*_USAGE_COLUMNS).where(
        sa.or_(Instance.terminated_at.is_(None), Instance.terminated_at > start), Instance.launched_at < stop
    )
    if project_id is not None:
        query = query.where(Instance.project_id == project_id)
    if marker is not None:
        mark = session.execute(sa.select(Instance.project_id, Instance.uuid).where(Instance.uuid == marker)).first()
        if mark is None:
            raise exception.NotFound(f"Marker {marker} could not be found.")
        query = query.where(
            sa.or_(
                Instance.project_id > mark.project_id,
                sa.and_(Instance.project_id == mark.project_id, Instance.uuid > mark.uuid),
            )
        )
    query = query.order_by(Instance.project_id, Instance.uuid)
    if limit is not None:
        query = query.limit(limit)
    out = []
    for row in session.execute(query):
        data = dict(row._mapping)
        data["flavor"] = json.loads(data["flavor"]) if data["flavor"] else {}
        out.append(data)
    return out
