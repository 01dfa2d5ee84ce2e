"""The services table: registration, heartbeats, up/down, disable."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nova_twisted import exception, utils
from nova_twisted.db.models import Service


def register(session: Session, host: str, binary: str, topic: str | None, now: dt.datetime) -> dict:
    """Create the (host, binary) row or refresh it; return it. Keeps disabled state."""
    row = session.execute(sa.select(Service).where(Service.host == host, Service.binary == binary)).scalar_one_or_none()
    if row is None:
        row = Service(
            uuid=utils.generate_uuid(),
            host=host,
            binary=binary,
            topic=topic,
            report_count=0,
            created_at=now,
            updated_at=now,
            last_seen_up=now,
        )
        session.add(row)
    else:
        row.topic = topic
        row.updated_at = now
        row.last_seen_up = now
    session.flush()
    return row.to_dict()


def heartbeat(session: Session, host: str, binary: str, now: dt.datetime) -> dict:
    """Record that the service is alive; return its row (to learn of forced_down)."""
    row = session.execute(sa.select(Service).where(Service.host == host, Service.binary == binary)).scalar_one_or_none()
    if row is None:
        raise exception.ServiceNotFound(service_id=f"{binary} on {host}")
    row.report_count += 1
    row.last_seen_up = now
    row.updated_at = now
    return row.to_dict()


def list_services(session: Session, host: str | None = None, binary: str | None = None) -> list[dict]:
    query = sa.select(Service).order_by(Service.id)
    if host:
        query = query.where(Service.host == host)
    if binary:
        query = query.where(Service.binary == binary)
    return [row.to_dict() for row in session.execute(query).scalars()]


def get(session: Session, service_id) -> dict:
    column = Service.uuid if isinstance(service_id, str) and not service_id.isdigit() else Service.id
    row = session.execute(sa.select(Service).where(column == service_id)).scalar_one_or_none()
    if row is None:
        raise exception.ServiceNotFound(service_id=service_id)
    return row.to_dict()


def update(session: Session, host: str, binary: str, now: dt.datetime, **values) -> dict:
    """Set disabled/disabled_reason/forced_down of one service; return the row."""
    allowed = {"disabled", "disabled_reason", "forced_down"}
    unknown = set(values) - allowed
    if unknown:
        raise exception.Invalid(reason=f"cannot update service field(s) {sorted(unknown)}")
    row = session.execute(sa.select(Service).where(Service.host == host, Service.binary == binary)).scalar_one_or_none()
    if row is None:
        raise exception.ServiceNotFound(service_id=f"{binary} on {host}")
    for key, value in values.items():
        setattr(row, key, value)
    if values.get("disabled") is False:
        row.disabled_reason = None
    row.updated_at = now
    return row.to_dict()


def delete(session: Session, service_id) -> None:
    """Delete a service by id (int or digits) or uuid.

    A nova-compute service that still hosts instances cannot go (Conflict);
    otherwise its compute nodes go with it (marked deleted, their
    inventories and allocations removed). ServiceNotFound if there is none.
    """
    from nova_twisted.db.models import Allocation, ComputeNode, Instance, Inventory

    row = (
        session.get(Service, int(service_id))
        if str(service_id).isdigit()
        else session.execute(sa.select(Service).where(Service.uuid == service_id)).scalar_one_or_none()
    )
    if row is None:
        raise exception.ServiceNotFound(service_id=service_id)
    if row.binary == "nova-compute":
        hosting = session.execute(
            sa.select(sa.func.count()).select_from(Instance).where(Instance.host == row.host, Instance.deleted == 0)
        ).scalar_one()
        if hosting:
            raise exception.Conflict(
                "Unable to delete compute service that is hosting instances. Migrate or delete the instances first."
            )
        node_ids = [n for (n,) in session.execute(sa.select(ComputeNode.id).where(ComputeNode.host == row.host))]
        if node_ids:
            session.execute(sa.delete(Allocation).where(Allocation.compute_node_id.in_(node_ids)))
            session.execute(sa.delete(Inventory).where(Inventory.compute_node_id.in_(node_ids)))
            session.execute(sa.update(ComputeNode).where(ComputeNode.id.in_(node_ids)).values(deleted=True))
    session.delete(row)


def set_state(session: Session, service_id, now: dt.datetime, **values) -> dict:
    """As :func:`update`, for the service with this id or uuid."""
    row = get(session, service_id)
    return update(session, row["host"], row["binary"], now, **values)


def is_up(service: dict, now: dt.datetime, down_time: int) -> bool:
    """True when the service heartbeated within ``down_time`` seconds and is not forced down."""
    if service.get("forced_down"):
        return False
    last = service.get("last_seen_up") or service.get("updated_at") or service.get("created_at")
    if last is None:
        return False
    return (now - last).total_seconds() <= down_time
