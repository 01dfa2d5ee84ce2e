"""Instance actions (one per API request on a server) and their events (per step)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nova_twisted import exception, utils
from nova_twisted.db.models import InstanceAction, InstanceActionEvent


def start(
    session: Session,
    instance_uuid: str,
    action: str,
    request_id: str,
    user_id: str | None,
    project_id: str | None,
    now: dt.datetime | None = None,
) -> dict:
    """Record that ``action`` (reboot, stop, ...) was asked for the instance."""
    now = now or utils.utcnow()
    row = InstanceAction(
        action=action,
        instance_uuid=instance_uuid,
        request_id=request_id,
        user_id=user_id,
        project_id=project_id,
        start_time=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row.to_dict()


def _action(session: Session, instance_uuid: str, request_id: str) -> InstanceAction:
    row = (
        session.execute(
            sa.select(InstanceAction)
            .where(InstanceAction.instance_uuid == instance_uuid, InstanceAction.request_id == request_id)
            .order_by(InstanceAction.id.desc())
        )
        .scalars()
        .first()
    )
    if row is None:
        raise exception.ActionNotFound(request_id=request_id, instance_uuid=instance_uuid)
    return row


_A = InstanceAction.__table__
_E = InstanceActionEvent.__table__


def _action_id(session: Session, instance_uuid: str, request_id: str) -> int | None:
    return session.execute(
        sa.select(_A.c.id)
        .where(_A.c.instance_uuid == instance_uuid, _A.c.request_id == request_id)
        .order_by(_A.c.id.desc())
        .limit(1)
    ).scalar()


def event_start(
    session: Session,
    instance_uuid: str,
    request_id: str,
    event: str,
    host: str | None,
    now: dt.datetime | None = None,
) -> dict | None:
    """Record the start of a step (``compute_reboot_instance``) of the request's action.

    Returns None when the request has no action (internal work)."""
    now = now or utils.utcnow()
    action_id = _action_id(session, instance_uuid, request_id)
    if action_id is None:
        return None
    values = {"action_id": action_id, "event": event, "start_time": now, "host": host}
    event_id = session.execute(sa.insert(_E).values(**values)).inserted_primary_key[0]
    session.execute(sa.update(_A).where(_A.c.id == action_id).values(updated_at=now))
    return {"id": event_id, **values}


def event_finish(
    session: Session,
    instance_uuid: str,
    request_id: str,
    event: str,
    result: str = "Success",
    traceback: str | None = None,
    now: dt.datetime | None = None,
) -> dict | None:
    """Record the end of a step; an ``Error`` result marks the action failed."""
    now = now or utils.utcnow()
    action_id = _action_id(session, instance_uuid, request_id)
    if action_id is None:
        return None
    event_id = session.execute(
        sa.select(_E.c.id).where(_E.c.action_id == action_id, _E.c.event == event).order_by(_E.c.id.desc()).limit(1)
    ).scalar()
    values = {"finish_time": now, "result": result, "traceback": traceback}
    if event_id is None:
        event_id = session.execute(
            sa.insert(_E).values(action_id=action_id, event=event, start_time=now, **values)
        ).inserted_primary_key[0]
    else:
        session.execute(sa.update(_E).where(_E.c.id == event_id).values(**values))
    action_values = {"updated_at": now, "finish_time": now}
    if result != "Success":
        action_values["message"] = "Error"
    session.execute(sa.update(_A).where(_A.c.id == action_id).values(**action_values))
    return {"id": event_id, "action_id": action_id, "event": event, **values}


def list_for_instance(
    session: Session,
    instance_uuid: str,
    limit: int | None = None,
    marker: str | None = None,
    changes_since: dt.datetime | None = None,
) -> list[dict]:
    """Actions of an instance, newest first; ``marker`` is a request id."""
    query = sa.select(InstanceAction.__table__).where(InstanceAction.instance_uuid == instance_uuid)
    if changes_since is not None:
        query = query.where(InstanceAction.updated_at >= changes_since)
    if marker is not None:
        marker_row = session.execute(
            sa.select(InstanceAction.id).where(
                InstanceAction.instance_uuid == instance_uuid, InstanceAction.request_id == marker
            )
        ).scalar()
        if marker_row is None:
            raise exception.NotFound(f"Marker {marker} could not be found.")
        query = query.where(InstanceAction.id < marker_row)
    query = query.order_by(InstanceAction.start_time.desc(), InstanceAction.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [dict(r._mapping) for r in session.execute(query)]


def get_with_events(session: Session, instance_uuid: str, request_id: str) -> dict:
    action = _action(session, instance_uuid, request_id).to_dict()
    action["events"] = [
        e.to_dict()
        for e in session.execute(
            sa.select(InstanceActionEvent)
            .where(InstanceActionEvent.action_id == action["id"])
            .order_by(InstanceActionEvent.id)
        ).scalars()
    ]
    return action
