"""Small helpers shared by every area."""

from __future__ import annotations

import datetime as dt
import json
import uuid as _uuid


def utcnow(clock=None) -> dt.datetime:
    """Return naive UTC now, from ``clock`` (an IReactorTime) when given."""
    if clock is None:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return dt.datetime.fromtimestamp(clock.seconds(), dt.UTC).replace(tzinfo=None)


def isotime(value: dt.datetime | None, zulu: bool = True) -> str | None:
    """Return ``value`` in the ISO 8601 form the APIs use (``2026-01-01T00:00:00Z``)."""
    if value is None:
        return None
    text = value.replace(microsecond=0).isoformat()
    return text + "Z" if zulu else text


def generate_uuid() -> str:
    return str(_uuid.uuid4())


def is_uuid_like(value) -> bool:
    try:
        return str(_uuid.UUID(str(value))) == str(value).lower()
    except (TypeError, ValueError, AttributeError):
        return False


def dumps(value) -> str:
    """JSON text for a database column or a message body (compact, stable)."""
    return json.dumps(value, separators=(",", ":"), default=_json_default)


def _json_default(value):
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
