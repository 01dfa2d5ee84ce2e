"""Server groups (affinity, anti-affinity, soft-*) and their members."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nova_twisted import exception, utils
from nova_twisted.db import quotas
from nova_twisted.db.models import Instance, ServerGroup, ServerGroupMember

POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")


def _dict(session: Session, row: ServerGroup) -> dict:
    data = row.to_dict()
    data["rules"] = json.loads(row.rules or "{}")
    data["members"] = [
        m
        for (m,) in session.execute(
            sa.select(ServerGroupMember.instance_uuid)
            .where(ServerGroupMember.group_id == row.id)
            .order_by(ServerGroupMember.instance_uuid)
        )
    ]
    return data


def create(
    session: Session,
    name: str,
    policy: str,
    project_id: str,
    user_id: str,
    rules: dict | None = None,
    quota_check: dict | None = None,
    now: dt.datetime | None = None,
) -> dict:
    if policy not in POLICIES:
        raise exception.Invalid(reason=f"Invalid policy {policy}")
    if quota_check:
        quotas.lock_project(session, project_id)
        quotas.check_deltas(session, quota_check)
    row = ServerGroup(
        uuid=utils.generate_uuid(),
        name=name,
        policy=policy,
        project_id=project_id,
        user_id=user_id,
        rules=utils.dumps(rules or {}),
        created_at=now or utils.utcnow(),
    )
    session.add(row)
    session.flush()
    return _dict(session, row)


def get(session: Session, uuid: str, project_id: str | None = None) -> dict:
    query = sa.select(ServerGroup).where(ServerGroup.uuid == uuid)
    if project_id is not None:
        query = query.where(ServerGroup.project_id == project_id)
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        raise exception.InstanceGroupNotFound(group_uuid=uuid)
    return _dict(session, row)


def list_groups(
    session: Session, project_id: str | None = None, limit: int | None = None, offset: int | None = None
) -> list[dict]:
    query = sa.select(ServerGroup).order_by(ServerGroup.id)
    if project_id is not None:
        query = query.where(ServerGroup.project_id == project_id)
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [_dict(session, row) for row in session.execute(query).scalars()]


def delete(session: Session, uuid: str, project_id: str | None = None) -> None:
    group = get(session, uuid, project_id)
    session.execute(sa.delete(ServerGroupMember).where(ServerGroupMember.group_id == group["id"]))
    session.execute(sa.delete(ServerGroup).where(ServerGroup.id == group["id"]))


def member_hosts(session: Session, uuid: str, exclude: str | None = None) -> list[str]:
    """Hosts of the group's live members (for affinity filters)."""
    query = (
        sa.select(Instance.host)
        .join(ServerGroupMember, ServerGroupMember.instance_uuid == Instance.uuid)
        .join(ServerGroup, ServerGroup.id == ServerGroupMember.group_id)
        .where(ServerGroup.uuid == uuid, Instance.deleted == 0, Instance.host.is_not(None))
    )
    if exclude:
        query = query.where(Instance.uuid != exclude)
    return [h for (h,) in session.execute(query)]


def group_of(session: Session, instance_uuid: str) -> dict | None:
    row = session.execute(
        sa.select(ServerGroup)
        .join(ServerGroupMember, ServerGroupMember.group_id == ServerGroup.id)
        .where(ServerGroupMember.instance_uuid == instance_uuid)
    ).scalar_one_or_none()
    return _dict(session, row) if row is not None else None
