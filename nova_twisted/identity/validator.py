"""Token validators for the compute, image and EC2 APIs (``ITokenValidator``).

:class:`LocalTokenValidator` checks tokens against this cloud's identity
database. :class:`KeystoneTokenValidator` asks an external Keystone
(``GET /v3/auth/tokens`` with ``X-Subject-Token``), authenticating with a
service token of its own that it obtains with the configured service
credentials and renews when it expires or is refused.
"""

from __future__ import annotations

import datetime as dt
import functools
import json

from treq.client import HTTPClient
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web.client import Agent, HTTPConnectionPool
from zope.interface import implementer

from nova_twisted import exception
from nova_twisted.api.auth import ITokenValidator

log = Logger(namespace="nova.identity.validator")

#: Renew the service token this many seconds before it expires.
SERVICE_TOKEN_MARGIN = 60.0


class IdentityUnavailable(exception.NovaError):
    """The external identity service cannot be reached or will not answer (HTTP 503)."""

    code = 503
    msg_fmt = "The identity service is unavailable: %(reason)s"


def _deferred(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return defer.ensureDeferred(fn(*args, **kwargs))

    return wrapper


def context_to_info(context: dict) -> dict:
    """Turn an identity context (``{token, user, project, roles}``) into ITokenValidator's answer."""
    project = context.get("project")
    return {
        "user_id": context["user"]["id"],
        "user_name": context["user"]["name"],
        "project_id": project["id"] if project else None,
        "project_name": project["name"] if project else None,
        "roles": [r["name"] for r in context.get("roles", [])],
        "expires_at": context["token"]["expires_at"],
    }


def parse_time(text: str) -> dt.datetime:
    """Parse Keystone's ``2026-01-01T00:00:00.000000Z`` into a naive UTC datetime."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def token_body_to_info(body: dict) -> dict:
    """Turn a Keystone ``{"token": ...}`` body into ITokenValidator's answer."""
    token = body["token"]
    project = token.get("project") or {}
    return {
        "user_id": token["user"]["id"],
        "user_name": token["user"].get("name"),
        "project_id": project.get("id"),
        "project_name": project.get("name"),
        "roles": [r["name"] for r in token.get("roles", [])],
        "expires_at": parse_time(token["expires_at"]),
    }


@implementer(ITokenValidator)
class LocalTokenValidator:
    """Validates tokens against the identity database through an IdentityAPI."""

    def __init__(self, identity_api):
        self.api = identity_api

    @_deferred
    async def validate(self, token):
        """Deferred firing with who the token belongs to; fails with NotAuthenticated."""
        context = await self.api.validate_token(token)
        return context_to_info(context)


@implementer(ITokenValidator)
class KeystoneTokenValidator:
    """Validates tokens with an external Keystone v3 over HTTP (treq).

    Call :meth:`close` when done, to drop the persistent connections.
    """

    def __init__(
        self,
        auth_url: str,
        username: str,
        password: str,
        reactor,
        project_name: str = "service",
        user_domain_name: str = "Default",
        project_domain_name: str = "Default",
        timeout: float = 10.0,
    ):
        if not auth_url or not username:
            raise exception.ConfigurationError(
                reason="[identity] token_validation = keystone needs auth_url, username and password"
            )
        self.auth_url = auth_url.rstrip("/")
        self.username = username
        self._password = password
        self.project_name = project_name
        self.user_domain_name = user_domain_name
        self.project_domain_name = project_domain_name
        self.reactor = reactor
        self.timeout = timeout
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.http = HTTPClient(Agent(reactor, pool=self.pool))
        self._service_token: str | None = None
        self._service_token_until = 0.0
        self._lock = defer.DeferredLock()

    @classmethod
    def from_config(cls, conf, reactor) -> "KeystoneTokenValidator":
        ident = conf.identity
        return cls(
            ident.auth_url,
            ident.username,
            ident.password,
            reactor,
            project_name=ident.project_name,
            user_domain_name=ident.user_domain_name,
            project_domain_name=ident.project_domain_name,
            timeout=ident.keystone_timeout,
        )

    def close(self):
        """Deferred firing when the pooled connections are closed."""
        return self.pool.closeCachedConnections()

    async def _request(self, method: str, url: str, **kwargs) -> tuple[int, dict, object]:
        try:
            response = await self.http.request(method, url, reactor=self.reactor, timeout=self.timeout, **kwargs)
            content = await response.content()
        except Exception as exc:  # noqa: BLE001 - any transport failure is "unavailable"
            log.warn("identity service at {url} unreachable: {error}", url=self.auth_url, error=repr(exc))
            raise IdentityUnavailable(reason=f"{self.auth_url} cannot be reached") from None
        try:
            body = json.loads(content) if content else None
        except ValueError:
            body = None
        return response.code, response.headers, body

    async def _get_service_token(self, renew: bool) -> str:
        async def fetch():
            if not renew and self._service_token and self.reactor.seconds() < self._service_token_until:
                return self._service_token
            request = {
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {
                            "user": {
                                "name": self.username,
                                "domain": {"name": self.user_domain_name},
                                "password": self._password,
                            }
                        },
                    },
                    "scope": {"project": {"name": self.project_name, "domain": {"name": self.project_domain_name}}},
                }
            }
            code, headers, body = await self._request(
                "POST",
                self.auth_url + "/auth/tokens?nocatalog",
                data=json.dumps(request).encode("utf-8"),
                headers={"Content-Type": ["application/json"]},
            )
            token = headers.getRawHeaders("x-subject-token", [None])[0]
            if code != 201 or not token or not isinstance(body, dict) or "token" not in body:
                log.error(
                    "the identity service at {url} refused the service credentials of {user} (HTTP {code})",
                    url=self.auth_url,
                    user=self.username,
                    code=code,
                )
                raise IdentityUnavailable(reason="the service credentials were refused")
            expires = parse_time(body["token"]["expires_at"]).replace(tzinfo=dt.UTC).timestamp()
            self._service_token = token
            self._service_token_until = expires - SERVICE_TOKEN_MARGIN
            return token

        return await self._lock.run(lambda: defer.ensureDeferred(fetch()))

    @_deferred
    async def validate(self, token):
        """Deferred firing with who the token belongs to.

        Fails with NotAuthenticated for a token Keystone does not know (or
        that expired, or was revoked), with IdentityUnavailable (503) when
        Keystone cannot be reached or refuses our service credentials.
        """
        if not token or not isinstance(token, str) or len(token) > 8192:
            raise exception.NotAuthenticated()
        for attempt in range(2):
            service_token = await self._get_service_token(renew=attempt > 0)
            code, _, body = await self._request(
                "GET",
                self.auth_url + "/auth/tokens?nocatalog",
                headers={"X-Auth-Token": [service_token], "X-Subject-Token": [token]},
            )
            if code == 200 and isinstance(body, dict) and "token" in body:
                try:
                    return token_body_to_info(body)
                except (KeyError, TypeError, ValueError):
                    raise IdentityUnavailable(reason="unexpected answer to a token validation") from None
            if code == 404:
                raise exception.NotAuthenticated()
            if code == 401 and attempt == 0:
                continue  # our service token expired or was revoked: get a new one, once
            log.error("token validation at {url} answered HTTP {code}", url=self.auth_url, code=code)
            raise IdentityUnavailable(reason=f"token validation answered HTTP {code}")
        raise IdentityUnavailable(reason="the service token is refused")  # pragma: no cover
