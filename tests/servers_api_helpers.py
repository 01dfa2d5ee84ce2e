"""The compute API served in-process for the servers tests, with real tokens and two projects.

``ServedCompute`` serves ``ComputeApp`` on 127.0.0.1 (a free port) over a
SQLite database, the in-memory bus and the built-in image store. Without
``full=True`` no conductor, scheduler or compute runs: servers stay in
BUILD unless a test moves them (``set_state``), and casts wait on the bus.
With ``full=True`` an InProcessCloud (conductor, scheduler, three fake
computes) runs behind the API and servers really boot.

Users (all with real tokens of the built-in identity service):
``demo`` (member of project demo), ``reader`` (reader of demo),
``alt`` (member of project alt), ``admin`` (admin of project admin).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import time

from treq.client import HTTPClient
from twisted.internet import defer, reactor, task
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.server import Site

from nova_twisted import utils
from nova_twisted.api.auth import Authenticator
from nova_twisted.api.compute.app import ComputeApp
from nova_twisted.db import flavors, instances, migration
from nova_twisted.db.api import Database
from nova_twisted.identity.api import IdentityAPI
from nova_twisted.identity.validator import LocalTokenValidator
from nova_twisted.rpc import get_transport
from tests.compute.cloud import FLAVORS, InProcessCloud, cloud_conf, make_image_service

USERS = {
    "demo": ("demo", "member"),
    "reader": ("demo", "reader"),
    "alt": ("alt", "member"),
    "admin": ("admin", "admin"),
}
PASSWORD = "servers-Pa55!"

_TEMPLATE: dict[str, str] = {}


async def _seed_identity(database) -> dict:
    identity = IdentityAPI(database, reactor, hash_rounds=4)
    roles = {r["name"]: r for r in await identity.ensure_default_roles()}
    projects = {}
    for name in ("demo", "alt", "admin"):
        projects[name] = await identity.create_project(name)
    users = {}
    for user, (project, role) in USERS.items():
        row = await identity.create_user(user, PASSWORD, default_project_id=projects[project]["id"])
        await identity.add_role_assignment(row["id"], projects[project]["id"], roles[role]["id"])
        users[user] = row
    return {"projects": projects, "users": users}


async def _template_db(tmpdir: str) -> tuple[str, dict]:
    """A migrated SQLite file with flavors and identity seeded, made once per process and copied per test."""
    if "path" not in _TEMPLATE:
        directory = tempfile.mkdtemp(prefix="servers-api-template-")
        atexit.register(shutil.rmtree, directory, True)
        path = os.path.join(directory, "nova.sqlite")
        url = f"sqlite:///{path}"
        migration.sync(url)
        database = Database(url, reactor, pool_size=1)
        database.startService()
        try:
            for flavor in FLAVORS:
                await database.run(flavors.create, flavor)
            seeded = await _seed_identity(database)
        finally:
            database.stopService()
        _TEMPLATE["path"] = path
        _TEMPLATE["seed"] = json.dumps(seeded, default=str)
    target = os.path.join(tmpdir, "nova.sqlite")
    shutil.copy(_TEMPLATE["path"], target)
    return target, json.loads(_TEMPLATE["seed"])


class ServedCompute:
    """The compute API on a free port; see the module docstring."""

    def __init__(self, tmpdir: str, full: bool = False, extra: dict | None = None, hosts=("compute-1", "compute-2")):
        self.tmpdir = str(tmpdir)
        self.full = full
        self.hosts = hosts
        self.extra = dict(extra or {})
        self.cloud = None
        self.tokens: dict[str, str] = {}

    async def start(self) -> "ServedCompute":
        if self.full:
            self.cloud = InProcessCloud(self.tmpdir, hosts=self.hosts, extra=self.extra)
            await self.cloud.start()
            self.conf = self.cloud.conf
            self.database = self.cloud.database
            self.transport = self.cloud.transport
            self.image_service = self.cloud.image_service
            self.seed = await _seed_identity(self.database)
        else:
            path, self.seed = await _template_db(self.tmpdir)
            url = f"sqlite:///{path}"
            self.conf = cloud_conf(self.tmpdir, url, f"memory://api-{utils.generate_uuid()[:8]}", "control", self.extra)
            self.database = Database.from_config(self.conf, reactor)
            self.database.startService()
            self.transport = get_transport(self.conf.transport, clock=reactor)
            await self.transport.connect()
            self.image_service = make_image_service(self.conf, self.database)
        self.identity = IdentityAPI(self.database, reactor, hash_rounds=4)
        self.authenticator = Authenticator(LocalTokenValidator(self.identity), reactor)
        self.app = ComputeApp(self.conf, self.database, self.transport, reactor, self.authenticator, self.image_service)
        self.site = Site(self.app.resource)
        self.site.noisy = False
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port.getHost().port}"
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.http = HTTPClient(Agent(reactor, pool=self.pool))
        for user in USERS:
            token, _ = await self.identity.issue_token(self.seed["users"][user], ["password"])
            self.tokens[user] = token
        self.image_id = await self.make_image()
        return self

    async def stop(self) -> None:
        await self.port.stopListening()
        await self.pool.closeCachedConnections()
        if self.cloud is not None:
            await self.cloud.stop()
        else:
            await self.transport.close()
            self.image_service.close()
            self.database.stopService()

    def project(self, user: str) -> str:
        return self.seed["projects"][USERS[user][0]]["id"]

    def user_id(self, user: str) -> str:
        return self.seed["users"][user]["id"]

    async def make_image(self, name: str = "cirros") -> str:
        from tests.compute.cloud import user_context

        ctxt = user_context(project=self.project("admin"), user=self.user_id("admin"), admin=True)
        image = await self.image_service.create(
            ctxt, {"name": name, "disk_format": "qcow2", "container_format": "bare", "visibility": "public"}
        )
        with tempfile.NamedTemporaryFile(dir=self.tmpdir, delete=False) as handle:
            handle.write(b"QFI\xfb" + b"\0" * 4096)
        await self.image_service.upload(ctxt, image["id"], handle.name)
        os.unlink(handle.name)
        return image["id"]

    async def request(
        self,
        method: str,
        path: str,
        body=None,
        user: str | None = "demo",
        version: str | None = None,
        headers: dict | None = None,
        raw: bytes | None = None,
    ):
        """Return (status, headers, decoded JSON body or None)."""
        all_headers = {"Accept": ["application/json"]}
        if user is not None:
            all_headers["X-Auth-Token"] = [self.tokens[user]]
        if version is not None:
            all_headers["OpenStack-API-Version"] = [f"compute {version}"]
        for name, value in (headers or {}).items():
            all_headers[name] = [value]
        data = raw
        if body is not None:
            data = json.dumps(body).encode("utf-8")
        if data is not None:
            all_headers["Content-Type"] = ["application/json"]
        response = await self.http.request(method, self.url + path, data=data, headers=all_headers)
        content = await response.content()
        decoded = json.loads(content) if content else None
        return response.code, response.headers, decoded

    async def boot(self, user: str = "demo", version: str = "2.1", **server) -> dict:
        """POST /servers with sensible defaults; return the 202 body's server (fails the test otherwise)."""
        body = {"name": server.pop("name", "vm"), "imageRef": self.image_id, "flavorRef": "1", **server}
        if version >= "2.37" and "networks" not in body:
            body["networks"] = "none"
        code, _, answer = await self.request("POST", "/v2.1/servers", {"server": body}, user=user, version=version)
        assert code == 202, (code, answer)
        return answer["server"]

    async def insert_server(self, user: str = "demo", **values) -> dict:
        """Write a server row straight into the database (no scheduling); return the instance dict."""
        from nova_twisted.compute import states

        flavor = await self.database.run(flavors.get_by_flavorid, "1")
        row = {
            "uuid": utils.generate_uuid(),
            "project_id": self.project(user),
            "user_id": self.user_id(user),
            "display_name": "vm",
            "hostname": "vm",
            "reservation_id": "r-" + utils.generate_uuid()[:8],
            "instance_type_id": flavor["id"],
            "flavor": flavors.embedded(flavor),
            "memory_mb": flavor["memory_mb"],
            "vcpus": flavor["vcpus"],
            "root_gb": flavor["root_gb"],
            "image_ref": self.image_id,
            "vm_state": states.ACTIVE,
            "task_state": None,
            "power_state": states.RUNNING,
            "host": "compute-1",
            "node": "compute-1",
            "system_metadata": {},
            "metadata": {},
        }
        row.update(values)
        action = {
            "action": "create",
            "request_id": "req-" + utils.generate_uuid(),
            "user_id": row["user_id"],
            "project_id": row["project_id"],
        }
        created = await self.database.run(instances.create, [row], {}, action, None, None, utils.utcnow())
        return created[0]

    async def set_state(self, uuid: str, **values) -> dict:
        return await self.database.run(instances.update, uuid, values)

    async def wait_for(self, uuid: str, predicate, timeout: float = 30.0, user: str = "admin") -> dict:
        """Poll GET /servers/{uuid} (latest microversion) until ``predicate(server)``; return it."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            code, _, body = await self.request("GET", f"/v2.1/servers/{uuid}", user=user, version="2.79")
            last = (code, body)
            if code == 200 and predicate(body["server"]):
                return body["server"]
            if code == 404 and predicate(None):
                return None
            await task.deferLater(reactor, 0.05, lambda: None)
        raise AssertionError(f"server {uuid} never reached the expected state; last seen: {last}")

    async def wait_status(self, uuid: str, status: str, timeout: float = 30.0) -> dict:
        return await self.wait_for(
            uuid, lambda s: s is not None and s["status"] == status and s["OS-EXT-STS:task_state"] is None, timeout
        )


def serve(test, full: bool = False, extra: dict | None = None, hosts=("compute-1", "compute-2")):
    """Start a ServedCompute for ``test`` (stopped at its cleanup); Deferred firing with it.

    ``hosts`` are the fake computes of a full cloud (compute-3 is the slow one).
    """
    tmp = test.mktemp()
    os.makedirs(tmp)
    served = ServedCompute(tmp, full=full, extra=extra, hosts=hosts)
    test.addCleanup(lambda: defer.ensureDeferred(served.stop()))
    return defer.ensureDeferred(served.start())
