"""Console tokens kept in the database: random, stored hashed, bound to one
instance and port, expiring."""

from __future__ import annotations

import hashlib
import secrets
import time

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nova_twisted import exception, utils
from nova_twisted.db.models import ConsoleAuthToken


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(
    session: Session,
    instance_uuid: str,
    console_type: str,
    host: str,
    port: int,
    internal_access_path: str | None,
    access_url_base: str,
    ttl: int,
    now: float | None = None,
) -> str:
    """Store a new token for a console; return the token text (shown once, never stored)."""
    token = secrets.token_urlsafe(24)
    now = now if now is not None else time.time()
    session.add(
        ConsoleAuthToken(
            token_hash=hash_token(token),
            console_type=console_type,
            host=host,
            port=int(port),
            internal_access_path=internal_access_path,
            instance_uuid=instance_uuid,
            access_url_base=access_url_base,
            expires=int(now + ttl),
            created_at=utils.utcnow(),
        )
    )
    return token


def validate(session: Session, token: str, now: float | None = None) -> dict:
    """Return the console a token opens; ConsoleTokenNotFound if unknown or expired."""
    now = now if now is not None else time.time()
    row = session.execute(
        sa.select(ConsoleAuthToken).where(ConsoleAuthToken.token_hash == hash_token(token))
    ).scalar_one_or_none()
    if row is None or row.expires < now:
        raise exception.ConsoleTokenNotFound()
    return row.to_dict()


def delete_for_instance(session: Session, instance_uuid: str) -> None:
    session.execute(sa.delete(ConsoleAuthToken).where(ConsoleAuthToken.instance_uuid == instance_uuid))
