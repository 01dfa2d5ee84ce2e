"""Small pieces the flavor, key pair, quota, host and usage resources share.

Nova's time format, its string-to-boolean rules, strict query parameters
(2.75 and later refuse unknown ones), and JSON schema fragments with
Nova's limits.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import unquote

from nova_twisted import exception

MAX_INT = 0x7FFFFFFF

#: A name: 1-255 printable characters, no leading or trailing whitespace.
NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "format": "name",
}
#: What Nova accepts for a boolean in a body.
BOOLEAN = {
    "type": ["boolean", "string"],
    "enum": [
        True,
        "True",
        "TRUE",
        "true",
        "1",
        "ON",
        "On",
        "on",
        "YES",
        "Yes",
        "yes",
        "y",
        "t",
        False,
        "False",
        "FALSE",
        "false",
        "0",
        "OFF",
        "Off",
        "off",
        "NO",
        "No",
        "no",
        "n",
        "f",
    ],
}
DESCRIPTION = {"type": ["string", "null"], "minLength": 0, "maxLength": 255, "pattern": r"^[^\x00-\x1f\x7f]*$"}
POSITIVE_INTEGER = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 1, "minLength": 1}

_TRUE = {"1", "t", "true", "on", "y", "yes"}
_FALSE = {"0", "f", "false", "off", "n", "no"}


def nova_time(value: dt.datetime | None) -> str | None:
    """A naive UTC datetime as Nova's JSON shows it: ``2024-01-02T03:04:05.000000``."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def bool_from_string(value, strict: bool = False, default: bool = False) -> bool:
    """oslo's bool_from_string: True/False for the usual spellings; ValueError if strict and neither."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if strict and text not in _FALSE:
        raise ValueError(f"Unrecognized value '{value}'")
    return False if text in _FALSE else default


def check_query(app, req, allowed, strict_since: str = "2.75") -> None:
    """From ``strict_since`` on, refuse query parameters other than ``allowed`` (Nova's 400)."""
    if not app.version(req) >= strict_since:
        return
    extra = sorted(k for k in req.query if k not in allowed)
    if extra:
        names = ", ".join(repr(k) for k in extra)
        verb = "were" if len(extra) > 1 else "was"
        raise exception.ValidationError(f"Additional properties are not allowed ({names} {verb} unexpected)")


def single_int(req, name: str, minimum: int = 0) -> int | None:
    """``?name=`` as an int >= ``minimum`` (None when absent); Nova's 400 otherwise."""
    raw = req.arg(name)
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < minimum:
        raise exception.ValidationError(
            f"Invalid input for query parameters {name}. Value: {raw}. '{raw}' does not match '^[0-9]*$'"
        )
    return int(raw)


def owner_target(req, project_id: str | None = None, user_id: str | None = None) -> dict:
    """A policy target: the given project/user, defaulting to the caller's."""
    return {
        "project_id": project_id if project_id is not None else req.context.project_id,
        "user_id": user_id if user_id is not None else req.context.user_id,
    }


def param(req, name: str) -> str:
    """A path parameter, percent-decoded (``hw%3Acpu_policy`` → ``hw:cpu_policy``)."""
    return unquote(req.params[name])
