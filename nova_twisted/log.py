"""Logging on twisted.logger: one line per event, with service, host and request id.

Events name the request they belong to with ``ctxt=<RequestContext>`` or
``request_id=...``; the observer prints ``-`` for events outside a request.
Secrets never reach the output: values of secret-looking fields are masked
before formatting, and every formatted line is scrubbed once more.
"""

from __future__ import annotations

import re
import sys
import time
from typing import IO

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
)
from twisted.python.failure import Failure
from zope.interface import implementer

#: Field names whose values are secrets wherever they appear.
SECRET_KEYS = re.compile(
    r"(pass(word|wd)?|secret|token|auth_?key|private_?key|credential|signature|"
    r"admin_pass|adminPass|x-auth-token|x-subject-token)$",
    re.IGNORECASE,
)

_SCRUBBERS = [
    # user:password@ in URLs
    (re.compile(r"(://[^:/@\s'\"]+:)[^@\s'\"]+@"), r"\1***@"),
    # key=value, key: value, "key": "value" for secret-looking keys
    (
        re.compile(
            r"""(?ix)
            (["']?\b(?:[\w-]*pass(?:word|wd)?|[\w-]*secret|[\w-]*token|auth_?key|
                     private_?key|admin_?pass|signature)["']?
             \s*[:=]\s*)
            (b?["'][^"']*["']|[^\s,;}&)]+)
            """
        ),
        r"\1***",
    ),
    # PEM private keys
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        "-----PRIVATE KEY MASKED-----",
    ),
]


def scrub(text: str) -> str:
    """Return ``text`` with passwords, tokens and private keys masked."""
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    return text


def _mask_fields(event: dict) -> dict:
    masked = dict(event)
    for key in event:
        if key.startswith("log_"):
            continue
        if SECRET_KEYS.search(key):
            masked[key] = "***"
    return masked


def _request_id(event: dict) -> str:
    rid = event.get("request_id")
    if rid:
        return str(rid)
    ctxt = event.get("ctxt")
    return getattr(ctxt, "request_id", None) or "-"


def format_line(event: dict, service: str, host: str) -> str:
    """Return the one line (no newline) that ``event`` is logged as."""
    masked = _mask_fields(event)
    try:
        text = formatEvent(masked)
    except Exception:  # noqa: BLE001 - formatEvent never raises, but be sure
        text = repr(masked.get("log_format"))
    failure = event.get("log_failure")
    if isinstance(failure, Failure):
        summary = f"{failure.type.__name__}: {failure.getErrorMessage()}"
        text = f"{text}: {summary}" if text else summary
        if event.get("log_level") in (LogLevel.critical,) or event.get("log_traceback"):
            text += " | " + failure.getTraceback().replace("\n", " | ")
    stamp = event.get("log_time") or time.time()
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp)) + f".{int(stamp % 1 * 1000):03d}"
    level = getattr(event.get("log_level"), "name", "info").upper()
    namespace = event.get("log_namespace", "-")
    svc = event.get("service") or service
    line = f"{when} {level} {svc} {host} {_request_id(event)} {namespace}: {text}"
    return scrub(line.replace("\n", " | "))


@implementer(ILogObserver)
class LineObserver:
    """Writes each event as one scrubbed line to ``stream``."""

    def __init__(self, stream: IO[str], service: str, host: str):
        self.stream = stream
        self.service = service
        self.host = host

    def __call__(self, event: dict) -> None:
        try:
            self.stream.write(format_line(event, self.service, self.host) + "\n")
            self.stream.flush()
        except Exception:  # noqa: BLE001 - a log observer must never raise
            pass


def make_observer(service: str, host: str, debug: bool = False, log_file: str = "", stream=None):
    """Return the observer a daemon logs through: level-filtered, one line per event."""
    if stream is None:
        stream = open(log_file, "a", encoding="utf-8") if log_file else sys.stderr
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.debug if debug else LogLevel.info)
    return FilteringLogObserver(LineObserver(stream, service, host), [predicate])
