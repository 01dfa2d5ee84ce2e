"""Token authentication shared by every HTTP API.

An :class:`ITokenValidator` turns the ``X-Auth-Token`` of a request into
who is asking; the built-in identity service and an external Keystone each
provide one. :class:`Authenticator` caches answers briefly (tokens are
checked once per few seconds, not once per request) and honours
revocation within that window.
"""

from __future__ import annotations

import hashlib

from zope.interface import Interface

from nova_twisted import exception
from nova_twisted.context import RequestContext


class ITokenValidator(Interface):
    """Checks tokens."""

    def validate(token):
        """Deferred firing with ``{"user_id", "user_name", "project_id",
        "project_name", "roles" (list of names), "expires_at" (datetime)}``
        for a valid, unexpired, unrevoked token; fails with NotAuthenticated
        otherwise."""


class Authenticator:
    """``await authenticator(req)`` sets ``req.context`` from its X-Auth-Token."""

    def __init__(self, validator, clock, cache_seconds: float = 5.0, max_entries: int = 10000):
        self.validator = validator
        self.clock = clock
        self.cache_seconds = cache_seconds
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, dict]] = {}

    def forget(self, token: str) -> None:
        """Drop a cached answer (a revoked token must fail at once in this process)."""
        self._cache.pop(hashlib.sha256(token.encode()).hexdigest(), None)

    async def identify(self, token: str | None) -> dict:
        if not token:
            raise exception.NotAuthenticated()
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self.clock.seconds()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        info = await self.validator.validate(token)
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        expires = info.get("expires_at")
        ttl = self.cache_seconds
        if expires is not None and hasattr(expires, "timestamp"):
            import datetime as dt

            remaining = expires.replace(tzinfo=dt.UTC).timestamp() - now
            ttl = max(0.0, min(ttl, remaining))
        self._cache[key] = (now + ttl, info)
        return info

    async def __call__(self, req) -> None:
        token = req.header("x-auth-token")
        info = await self.identify(token)
        req.context = RequestContext(
            user_id=info["user_id"],
            project_id=info.get("project_id"),
            roles=list(info.get("roles", [])),
            user_name=info.get("user_name"),
            project_name=info.get("project_name"),
            request_id=req.request_id,
            remote_address=getattr(req.raw.getClientAddress(), "host", None),
            auth_token=token,
        )
