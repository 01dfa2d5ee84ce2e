"""Helpers for the identity tests: configuration, a migrated database, a served identity API, seed data."""

from __future__ import annotations

import functools
import json

from treq.client import HTTPClient
from twisted.internet import defer
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.server import Site

from nova_twisted import conf as confmod
from nova_twisted.db import migration
from nova_twisted.db.api import Database
from nova_twisted.identity import build_identity_resource
from nova_twisted.identity.api import IdentityAPI


def async_test(fn):
    """Let a trial test method be ``async def`` (trial waits on the Deferred)."""

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        return defer.ensureDeferred(fn(self, *args, **kwargs))

    return wrapper


DEMO_PASSWORD = "demo-Pa55-word!"
ADMIN_PASSWORD = "admin-Pa55-word!"


def make_conf(db_url: str, **identity) -> confmod.Config:
    """Configuration with every default but the database URL, a cheap password hash and ``identity`` options."""
    overrides = {("database", "connection"): db_url, ("identity", "password_hash_rounds"): "4"}
    for name, value in identity.items():
        overrides[("identity", name)] = str(value)
    return confmod.load((), overrides)


def migrated_database(url: str, reactor, test=None) -> Database:
    """Migrate ``url`` to the newest schema and return a started Database (stopped at test cleanup)."""
    migration.sync(url)
    database = Database(url, reactor, pool_size=4, retry_interval=0.05)
    database.startService()
    if test is not None:
        test.addCleanup(database.stopService)
    return database


async def seed(api: IdentityAPI) -> dict:
    """Create project demo (user demo, member) and admin (user admin, admin); return their rows by name."""
    roles = {r["name"]: r for r in await api.ensure_default_roles()}
    demo = await api.create_project("demo", "The demo project")
    admin_project = await api.create_project("admin")
    demo_user = await api.create_user("demo", DEMO_PASSWORD, default_project_id=demo["id"])
    admin_user = await api.create_user("admin", ADMIN_PASSWORD, default_project_id=admin_project["id"])
    await api.add_role_assignment(demo_user["id"], demo["id"], roles["member"]["id"])
    await api.add_role_assignment(admin_user["id"], admin_project["id"], roles["admin"]["id"])
    return {
        "roles": roles,
        "demo": demo,
        "admin_project": admin_project,
        "demo_user": demo_user,
        "admin_user": admin_user,
    }


class ServedIdentity:
    """The identity API served on 127.0.0.1 on a free port, with a treq client that leaves no connection open."""

    def __init__(self, conf, database, reactor):
        self.reactor = reactor
        self.site = Site(None)
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port.getHost().port}"
        self.conf = conf.with_overrides({("identity", "identity_url"): self.url + "/v3"})
        self.site.resource = build_identity_resource(self.conf, database, reactor)
        self.api = self.site.resource.api
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.http = HTTPClient(Agent(reactor, pool=self.pool))

    def stop(self):
        return defer.DeferredList([self.port.stopListening(), self.pool.closeCachedConnections()])

    async def request(self, method: str, path: str, body=None, token: str | None = None, headers=None):
        """Return (status, headers, decoded JSON body or None)."""
        all_headers = {"Accept": ["application/json"]}
        if token is not None:
            all_headers["X-Auth-Token"] = [token]
        for name, value in (headers or {}).items():
            all_headers[name] = [value]
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            all_headers["Content-Type"] = ["application/json"]
        response = await self.http.request(method, self.url + path, data=data, headers=all_headers)
        content = await response.content()
        decoded = json.loads(content) if content else None
        return response.code, response.headers, decoded

    async def login(self, name: str, password: str, project: str | None = None, **extra) -> tuple[str, dict]:
        """Password authentication by name; return (token, token body). Fails the test on no 201."""
        auth = {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": name, "domain": {"id": "default"}, "password": password}},
            }
        }
        if project is not None:
            auth["scope"] = {"project": {"name": project, "domain": {"name": "Default"}}}
        auth.update(extra)
        code, headers, body = await self.request("POST", "/v3/auth/tokens", {"auth": auth})
        assert code == 201, (code, body)
        return headers.getRawHeaders("x-subject-token")[0], body["token"]


def serve(test, conf, database, reactor) -> ServedIdentity:
    """Serve the identity API for the length of ``test``."""
    served = ServedIdentity(conf, database, reactor)
    test.addCleanup(served.stop)
    return served
