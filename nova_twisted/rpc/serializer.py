"""Message encoding: JSON, with datetimes kept as datetimes across the bus."""

from __future__ import annotations

import datetime as dt
import json

from nova_twisted import exception

_DT = "__dt__"


def _default(value):
    if isinstance(value, dt.datetime):
        return {_DT: value.isoformat()}
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot send a {type(value).__name__} over the bus")


def _hook(obj: dict):
    if len(obj) == 1 and _DT in obj:
        return dt.datetime.fromisoformat(obj[_DT])
    return obj


# Made once: json.dumps/loads build a new coder per call when given options.
_ENCODER = json.JSONEncoder(default=_default, separators=(",", ":"))
_DECODER = json.JSONDecoder()
_DECODER_DT = json.JSONDecoder(object_hook=_hook)
_DT_MARK = b'"' + _DT.encode() + b'"'


def encode(message: dict) -> bytes:
    """Return ``message`` as bytes; raise MessagingError if it holds something unsendable."""
    try:
        return _ENCODER.encode(message).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise exception.MessagingError(reason=f"cannot encode message: {exc}") from None


def decode(body: bytes) -> dict:
    """Return the message in ``body``; raise ValueError if it is not one of ours."""
    # The datetime hook costs a Python call per object: only use it when needed.
    decoder = _DECODER_DT if _DT_MARK in body else _DECODER
    message = decoder.decode(body.decode("utf-8"))
    if not isinstance(message, dict):
        raise ValueError("a message must be a JSON object")
    return message
