"""Compute API microversions: parsing, negotiation, and the range we serve."""

from __future__ import annotations

import functools

from nova_twisted import exception

MIN_VERSION = "2.1"
MAX_VERSION = "2.79"


@functools.total_ordering
class APIVersion:
    """A ``major.minor`` microversion, comparable with another or with ``"2.47"``."""

    __slots__ = ("major", "minor")

    def __init__(self, text: str):
        major, sep, minor = str(text).strip().partition(".")
        if not sep or not major.isdigit() or not minor.isdigit():
            raise ValueError(f"{text!r} is not a microversion")
        self.major, self.minor = int(major), int(minor)

    def _key(self, other) -> tuple[int, int]:
        if not isinstance(other, APIVersion):
            other = APIVersion(other)
        return other.major, other.minor

    def __eq__(self, other) -> bool:
        return (self.major, self.minor) == self._key(other)

    def __lt__(self, other) -> bool:
        return (self.major, self.minor) < self._key(other)

    def __hash__(self) -> int:
        return hash((self.major, self.minor))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    __repr__ = __str__

    def matches(self, low: str | None = None, high: str | None = None) -> bool:
        """True when low <= self <= high (either bound may be None)."""
        return (low is None or self >= low) and (high is None or self <= high)


MIN = APIVersion(MIN_VERSION)
MAX = APIVersion(MAX_VERSION)


class VersionNotAcceptable(exception.NovaError):
    code = 406
    msg_fmt = "Version %(version)s is not supported by the API. Minimum is %(min)s and maximum is %(max)s."


def requested_version(openstack_header: str | None, legacy_header: str | None) -> APIVersion:
    """The microversion a request asks for (2.1 when it asks for none).

    ``OpenStack-API-Version: compute 2.60`` wins over the legacy
    ``X-OpenStack-Nova-API-Version: 2.60``; ``latest`` means MAX_VERSION.
    Raises InvalidRequest for a malformed value, VersionNotAcceptable (406)
    for one outside the range.
    """
    text = None
    if openstack_header:
        for item in openstack_header.split(","):
            service, _, value = item.strip().partition(" ")
            if service.lower() == "compute":
                text = value.strip()
    if text is None and legacy_header:
        text = legacy_header.strip()
    if not text:
        return MIN
    if text.lower() == "latest":
        return MAX
    try:
        version = APIVersion(text)
    except ValueError:
        raise exception.InvalidRequest(
            reason=f"API Version String {text} is of invalid format. Must be of format MajorNum.MinorNum."
        ) from None
    if not version.matches(MIN_VERSION, MAX_VERSION):
        raise VersionNotAcceptable(version=text, min=MIN_VERSION, max=MAX_VERSION)
    return version
