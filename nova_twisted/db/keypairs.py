"""Key pairs, per user."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nova_twisted import exception, utils
from nova_twisted.db import quotas
from nova_twisted.db.models import KeyPair


def create(
    session: Session,
    user_id: str,
    name: str,
    public_key: str,
    fingerprint: str,
    key_type: str = "ssh",
    quota_check: dict | None = None,
    now: dt.datetime | None = None,
) -> dict:
    if quota_check:
        quotas.lock_project(session, quota_check["project_id"])
        quotas.check_deltas(session, quota_check)
    taken = session.execute(sa.select(KeyPair.id).where(KeyPair.user_id == user_id, KeyPair.name == name)).first()
    if taken:
        raise exception.KeyPairExists(key_name=name)
    row = KeyPair(
        user_id=user_id,
        name=name,
        public_key=public_key,
        fingerprint=fingerprint,
        type=key_type,
        created_at=now or utils.utcnow(),
    )
    session.add(row)
    session.flush()
    return row.to_dict()


def get(session: Session, user_id: str, name: str) -> dict:
    row = session.execute(
        sa.select(KeyPair).where(KeyPair.user_id == user_id, KeyPair.name == name)
    ).scalar_one_or_none()
    if row is None:
        raise exception.KeypairNotFound(name=name, user_id=user_id)
    return row.to_dict()


def list_keypairs(session: Session, user_id: str, limit: int | None = None, marker: str | None = None) -> list[dict]:
    """A user's key pairs in creation order; ``marker`` names the last one seen (NotFound if unknown)."""
    query = sa.select(KeyPair).where(KeyPair.user_id == user_id).order_by(KeyPair.id)
    if marker is not None:
        marker_id = session.execute(
            sa.select(KeyPair.id).where(KeyPair.user_id == user_id, KeyPair.name == marker)
        ).scalar_one_or_none()
        if marker_id is None:
            raise exception.NotFound(f"Marker {marker} could not be found.")
        query = query.where(KeyPair.id > marker_id)
    if limit is not None:
        query = query.limit(limit)
    return [row.to_dict() for row in session.execute(query).scalars()]


def delete(session: Session, user_id: str, name: str) -> None:
    result = session.execute(sa.delete(KeyPair).where(KeyPair.user_id == user_id, KeyPair.name == name))
    if result.rowcount == 0:
        raise exception.KeypairNotFound(name=name, user_id=user_id)
