"""Compute nodes, their inventories and allocations, and race-free claims.

A claim locks the compute node's row (``UPDATE ... generation + 1`` first),
then counts the node's allocations and inserts the new ones only if they
fit: concurrent claims on one node run one after another, so a node can
never be oversubscribed; claims on different nodes run in parallel.
"""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nova_twisted import exception, utils
from nova_twisted.db.models import Allocation, ComputeNode, Instance, Inventory, Service

VCPU, MEMORY_MB, DISK_GB = "VCPU", "MEMORY_MB", "DISK_GB"
RESOURCE_CLASSES = (VCPU, MEMORY_MB, DISK_GB)
# Claims name the tables' columns, not the mapped classes': statements naming mapped
# attributes go through the ORM's much slower compile and bulk-update paths.
_NODES = ComputeNode.__table__
_INVENTORY = Inventory.__table__
_ALLOC = Allocation.__table__
_INSTANCES = Instance.__table__


def flavor_resources(flavor: dict) -> dict[str, int]:
    """Resources a flavor asks for, by resource class."""
    return {
        VCPU: int(flavor.get("vcpus", 0)),
        MEMORY_MB: int(flavor.get("memory_mb", 0)),
        DISK_GB: int(flavor.get("root_gb", 0)) + int(flavor.get("ephemeral_gb", 0)) + _swap_gb(flavor),
    }


def _swap_gb(flavor: dict) -> int:
    swap_mb = int(flavor.get("swap") or 0)
    return (swap_mb + 1023) // 1024


def update_node(
    session: Session, host: str, nodename: str, resources: dict, inventory: dict[str, dict], now: dt.datetime
) -> dict:
    """Create or refresh a compute node and set its inventories; return the node.

    ``resources`` holds what the driver reported (hypervisor type, arch,
    free figures...); ``inventory`` maps resource class to
    {"total", "reserved", "allocation_ratio", "max_unit"}.
    """
    node = session.execute(
        sa.select(ComputeNode).where(ComputeNode.hypervisor_hostname == nodename)
    ).scalar_one_or_none()
    fields = {
        "host": host,
        "hypervisor_type": resources.get("hypervisor_type", "fake"),
        "hypervisor_version": int(resources.get("hypervisor_version", 1)),
        "cpu_arch": resources.get("cpu_arch", "x86_64"),
        "cpu_info": json.dumps(resources.get("cpu_info", {})),
        "host_ip": resources.get("host_ip"),
        "availability_zone": resources.get("availability_zone", "nova"),
        "free_ram_mb": resources.get("memory_mb", 0) - resources.get("memory_mb_used", 0),
        "free_disk_gb": resources.get("local_gb", 0) - resources.get("local_gb_used", 0),
        "running_vms": resources.get("running_vms", 0),
        "updated_at": now,
        "deleted": False,
    }
    if node is None:
        node = ComputeNode(
            uuid=utils.generate_uuid(), hypervisor_hostname=nodename, created_at=now, generation=0, **fields
        )
        session.add(node)
        session.flush()
    else:
        for key, value in fields.items():
            setattr(node, key, value)
    existing = {
        inv.resource_class: inv
        for inv in session.execute(sa.select(Inventory).where(Inventory.compute_node_id == node.id)).scalars()
    }
    for rc, values in inventory.items():
        inv = existing.get(rc)
        if inv is None:
            session.add(Inventory(compute_node_id=node.id, resource_class=rc, **_inventory_fields(values)))
        else:
            for key, value in _inventory_fields(values).items():
                setattr(inv, key, value)
    session.flush()
    return node.to_dict()


def _inventory_fields(values: dict) -> dict:
    total = int(values["total"])
    return {
        "total": total,
        "reserved": int(values.get("reserved", 0)),
        "allocation_ratio": float(values.get("allocation_ratio", 1.0)),
        "min_unit": int(values.get("min_unit", 1)),
        "max_unit": int(values.get("max_unit", total)),
    }


def host_states(session: Session) -> list[dict]:
    """Every compute node with its service, inventories and current usage, in three queries.

    Each dict: id, uuid, host, nodename, availability_zone, hypervisor_type,
    cpu_arch, generation, updated_at, service (disabled, forced_down,
    last_seen_up), inventory {rc: {...}}, used {rc: n}, instances (count).
    """
    nodes = {}
    query = (
        sa.select(
            ComputeNode.id,
            ComputeNode.uuid,
            ComputeNode.host,
            ComputeNode.hypervisor_hostname,
            ComputeNode.availability_zone,
            ComputeNode.hypervisor_type,
            ComputeNode.cpu_arch,
            ComputeNode.generation,
            ComputeNode.updated_at,
            Service.disabled,
            Service.forced_down,
            Service.last_seen_up,
            Service.disabled_reason,
        )
        .join(Service, sa.and_(Service.host == ComputeNode.host, Service.binary == "nova-compute"), isouter=True)
        .where(ComputeNode.deleted == sa.false())
    )
    for row in session.execute(query):
        nodes[row.id] = {
            "id": row.id,
            "uuid": row.uuid,
            "host": row.host,
            "nodename": row.hypervisor_hostname,
            "availability_zone": row.availability_zone,
            "hypervisor_type": row.hypervisor_type,
            "cpu_arch": row.cpu_arch,
            "generation": row.generation,
            "updated_at": row.updated_at,
            "service": {
                "exists": row.last_seen_up is not None or row.disabled is not None,
                "disabled": bool(row.disabled),
                "disabled_reason": row.disabled_reason,
                "forced_down": bool(row.forced_down),
                "last_seen_up": row.last_seen_up,
            },
            "inventory": {},
            "used": {rc: 0 for rc in RESOURCE_CLASSES},
            "instances": 0,
        }
    for inv in session.execute(sa.select(Inventory.__table__)):
        node = nodes.get(inv.compute_node_id)
        if node is not None:
            node["inventory"][inv.resource_class] = {
                "total": inv.total,
                "reserved": inv.reserved,
                "allocation_ratio": inv.allocation_ratio,
                "min_unit": inv.min_unit,
                "max_unit": inv.max_unit,
            }
    usage = session.execute(
        sa.select(Allocation.compute_node_id, Allocation.resource_class, sa.func.sum(Allocation.used)).group_by(
            Allocation.compute_node_id, Allocation.resource_class
        )
    )
    for node_id, rc, used in usage:
        node = nodes.get(node_id)
        if node is not None:
            node["used"][rc] = int(used or 0)
    counts = session.execute(
        sa.select(Allocation.compute_node_id, sa.func.count(sa.distinct(Allocation.consumer_id))).group_by(
            Allocation.compute_node_id
        )
    )
    for node_id, count in counts:
        if node_id in nodes:
            nodes[node_id]["instances"] = int(count)
    return list(nodes.values())


def capacity(inventory: dict) -> float:
    """How much of a resource class can be allocated in all."""
    return (inventory["total"] - inventory["reserved"]) * inventory["allocation_ratio"]


def claim(
    session: Session, node_id: int, consumer_id: str, resources: dict[str, int], now: dt.datetime
) -> dict[str, int]:
    """Allocate ``resources`` on the node to ``consumer_id``, or raise ClaimFailed.

    Returns the node's usage after the claim. The node row is locked first,
    so two claims on one node cannot both pass on stale usage.
    """
    bumped = session.execute(
        sa.update(_NODES)
        .where(_NODES.c.id == node_id, _NODES.c.deleted == sa.false())
        .values(generation=_NODES.c.generation + 1)
    )

    def host():
        return session.execute(sa.select(_NODES.c.hypervisor_hostname).where(_NODES.c.id == node_id)).scalar()

    if bumped.rowcount == 0:
        raise exception.ClaimFailed(host=host() or node_id, reason="the compute node is gone")
    inventory = {
        row.resource_class: row
        for row in session.execute(
            sa.select(
                _INVENTORY.c.resource_class,
                _INVENTORY.c.total,
                _INVENTORY.c.reserved,
                _INVENTORY.c.allocation_ratio,
                _INVENTORY.c.max_unit,
            ).where(_INVENTORY.c.compute_node_id == node_id)
        )
    }
    # The node's usage, and what this consumer already holds there, in one query.
    used, mine = {}, {}
    for rc, total, own in session.execute(
        sa.select(
            _ALLOC.c.resource_class,
            sa.func.sum(_ALLOC.c.used),
            sa.func.sum(sa.case((_ALLOC.c.consumer_id == consumer_id, _ALLOC.c.used), else_=0)),
        )
        .where(_ALLOC.c.compute_node_id == node_id)
        .group_by(_ALLOC.c.resource_class)
    ):
        used[rc] = int(total or 0)
        if own:
            mine[rc] = int(own)
    after = {}
    wanted = {rc: amount for rc, amount in resources.items() if amount > 0}
    for rc, amount in wanted.items():
        inv = inventory.get(rc)
        if inv is None:
            raise exception.ClaimFailed(host=host(), reason=f"no {rc} inventory")
        if amount > inv.max_unit:
            raise exception.ClaimFailed(host=host(), reason=f"{rc} {amount} is more than max_unit {inv.max_unit}")
        total_used = used.get(rc, 0) + amount
        limit = (inv.total - inv.reserved) * inv.allocation_ratio
        if total_used > limit:
            raise exception.ClaimFailed(
                host=host(), reason=f"{rc}: {amount} requested, {used.get(rc, 0)} of {int(limit)} used"
            )
        after[rc] = total_used
    new = [
        {
            "compute_node_id": node_id,
            "consumer_id": consumer_id,
            "resource_class": rc,
            "used": amount,
            "created_at": now,
        }
        for rc, amount in wanted.items()
        if rc not in mine
    ]
    if new:
        session.execute(sa.insert(_ALLOC), new)
    for rc in wanted.keys() & mine.keys():
        session.execute(
            sa.update(_ALLOC)
            .where(
                _ALLOC.c.compute_node_id == node_id,
                _ALLOC.c.consumer_id == consumer_id,
                _ALLOC.c.resource_class == rc,
            )
            .values(used=_ALLOC.c.used + wanted[rc])
        )
    return after


def claim_for_instance(
    session: Session,
    node_id: int,
    instance_uuid: str,
    resources: dict[str, int],
    now: dt.datetime,
    expected_task_state: str | None = "scheduling",
    group: dict | None = None,
) -> dict:
    """Claim for an instance and record its host/node in the same transaction.

    With ``group`` ({"uuid", "policy", "rules"}) of a hard (anti-)affinity
    policy, the group's row is locked and the policy checked against its
    members' hosts inside the transaction, so concurrent boots of one group
    cannot break it. Fails with ClaimFailed (try another host),
    InstanceNotFound if the instance was deleted meanwhile, and
    UnexpectedTaskState if it is no longer waiting to be scheduled.
    """
    if group and group.get("policy") in ("affinity", "anti-affinity"):
        _check_group_policy(session, node_id, instance_uuid, group)
    claim(session, node_id, instance_uuid, resources, now)
    node = session.execute(
        sa.select(_NODES.c.host, _NODES.c.hypervisor_hostname, _NODES.c.availability_zone).where(_NODES.c.id == node_id)
    ).one()
    statement = sa.update(_INSTANCES).where(_INSTANCES.c.uuid == instance_uuid, _INSTANCES.c.deleted == 0)
    if expected_task_state is not None:
        statement = statement.where(_INSTANCES.c.task_state == expected_task_state)
    result = session.execute(
        statement.values(
            host=node.host, node=node.hypervisor_hostname, availability_zone=node.availability_zone, updated_at=now
        )
    )
    if result.rowcount == 0:
        exists = session.execute(
            sa.select(_INSTANCES.c.task_state).where(_INSTANCES.c.uuid == instance_uuid, _INSTANCES.c.deleted == 0)
        ).first()
        if exists is None:
            raise exception.InstanceNotFound(instance_id=instance_uuid)
        raise exception.UnexpectedTaskState(
            instance_uuid=instance_uuid, expected=expected_task_state, actual=exists.task_state
        )
    return {"host": node.host, "node": node.hypervisor_hostname, "availability_zone": node.availability_zone}


def _check_group_policy(session: Session, node_id: int, instance_uuid: str, group: dict) -> None:
    from nova_twisted.db.models import ServerGroup, ServerGroupMember

    _GROUPS, _MEMBERS = ServerGroup.__table__, ServerGroupMember.__table__
    session.execute(sa.select(_GROUPS.c.id).where(_GROUPS.c.uuid == group["uuid"]).with_for_update()).first()
    host = session.execute(sa.select(_NODES.c.host).where(_NODES.c.id == node_id)).scalar()
    member_hosts = [
        h
        for (h,) in session.execute(
            sa.select(_INSTANCES.c.host)
            .join(_MEMBERS, _MEMBERS.c.instance_uuid == _INSTANCES.c.uuid)
            .join(_GROUPS, _GROUPS.c.id == _MEMBERS.c.group_id)
            .where(
                _GROUPS.c.uuid == group["uuid"],
                _INSTANCES.c.deleted == 0,
                _INSTANCES.c.host.is_not(None),
                _INSTANCES.c.uuid != instance_uuid,
            )
        )
    ]
    if group["policy"] == "affinity":
        if member_hosts and set(member_hosts) != {host}:
            raise exception.ClaimFailed(host=host, reason=f"affinity group {group['uuid']} is on {member_hosts[0]}")
    else:
        limit = int((group.get("rules") or {}).get("max_server_per_host", 1))
        if member_hosts.count(host) >= limit:
            raise exception.ClaimFailed(
                host=host,
                reason=f"anti-affinity group {group['uuid']} already has {member_hosts.count(host)} server(s) here",
            )


def release(session: Session, consumer_id: str) -> int:
    """Drop every allocation of ``consumer_id``; return how many rows went. Idempotent."""
    return session.execute(sa.delete(Allocation).where(Allocation.consumer_id == consumer_id)).rowcount


def move_allocations(session: Session, source_consumer: str, target_consumer: str) -> None:
    """Give ``source_consumer``'s allocations to ``target_consumer`` (whose own go)."""
    session.execute(sa.delete(Allocation).where(Allocation.consumer_id == target_consumer))
    session.execute(
        sa.update(Allocation).where(Allocation.consumer_id == source_consumer).values(consumer_id=target_consumer)
    )


def allocations_of(session: Session, consumer_id: str) -> dict[str, int]:
    return dict(
        session.execute(
            sa.select(Allocation.resource_class, Allocation.used).where(Allocation.consumer_id == consumer_id)
        ).all()
    )


def node_by_name(session: Session, nodename: str) -> dict:
    node = session.execute(
        sa.select(ComputeNode).where(ComputeNode.hypervisor_hostname == nodename)
    ).scalar_one_or_none()
    if node is None:
        raise exception.ComputeHostNotFound(host=nodename)
    return node.to_dict()


def list_nodes(session: Session) -> list[dict]:
    return [n.to_dict() for n in session.execute(sa.select(ComputeNode).order_by(ComputeNode.id)).scalars()]


def usage_by_node(session: Session) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    for node_id, rc, used in session.execute(
        sa.select(Allocation.compute_node_id, Allocation.resource_class, sa.func.sum(Allocation.used)).group_by(
            Allocation.compute_node_id, Allocation.resource_class
        )
    ):
        out.setdefault(node_id, {})[rc] = int(used or 0)
    return out


def inventories_by_node(session: Session) -> dict[int, dict[str, dict]]:
    out: dict[int, dict[str, dict]] = {}
    for inv in session.execute(sa.select(Inventory.__table__)):
        out.setdefault(inv.compute_node_id, {})[inv.resource_class] = {
            "total": inv.total,
            "reserved": inv.reserved,
            "allocation_ratio": inv.allocation_ratio,
            "max_unit": inv.max_unit,
        }
    return out
