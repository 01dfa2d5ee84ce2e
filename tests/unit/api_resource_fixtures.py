"""The compute API served in-process for the flavor, key pair, quota, host and usage tests.

A migrated SQLite database, a token validator that knows a few fixed
users (admin; demo and demo2 in project demo; reader in demo with the
reader role only; alt in project alt), the compute API on 127.0.0.1, and
helpers to seed services, hypervisors and servers without running any.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid

from treq.client import HTTPClient
from twisted.internet import defer, reactor
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.server import Site
from zope.interface import implementer

from nova_twisted import conf as confmod
from nova_twisted import exception, utils
from nova_twisted.api.auth import Authenticator, ITokenValidator
from nova_twisted.api.compute.app import ComputeApp
from nova_twisted.db import flavors, identity, instances, migration, placement, services
from nova_twisted.db.api import Database
from nova_twisted.rpc import get_transport

#: token → (user id, project id, roles)
USERS = {
    "admin": ("admin-user", "admin-project", ["admin", "member", "reader"]),
    "demo": ("demo-user", "demo-project", ["member", "reader"]),
    "demo2": ("demo2-user", "demo-project", ["member", "reader"]),
    "reader": ("reader-user", "demo-project", ["reader"]),
    "alt": ("alt-user", "alt-project", ["member", "reader"]),
}
FLAVORS = [
    {"flavorid": "1", "name": "m1.tiny", "memory_mb": 512, "vcpus": 1, "root_gb": 1},
    {"flavorid": "2", "name": "m1.small", "memory_mb": 2048, "vcpus": 1, "root_gb": 20},
    {"flavorid": "3", "name": "m1.medium", "memory_mb": 4096, "vcpus": 2, "root_gb": 40},
]


def async_test(fn):
    """Let a trial test method be ``async def``."""

    def wrapper(self, *args, **kwargs):
        return defer.ensureDeferred(fn(self, *args, **kwargs))

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@implementer(ITokenValidator)
class FixedTokens:
    """Tokens are the user names in USERS; anything else is refused."""

    def validate(self, token):
        if token not in USERS:
            return defer.fail(exception.NotAuthenticated())
        user_id, project_id, roles = USERS[token]
        return defer.succeed(
            {
                "user_id": user_id,
                "user_name": token,
                "project_id": project_id,
                "project_name": project_id.removesuffix("-project"),
                "roles": roles,
                "expires_at": None,
            }
        )


class ServedCompute:
    """The compute API on a free port, a client for it, and seeding helpers."""

    def __init__(self, tmpdir: str, overrides: dict | None = None, db_url: str | None = None):
        self.db_url = db_url or f"sqlite:///{tmpdir}/nova.sqlite"
        values = {
            ("database", "connection"): self.db_url,
            ("DEFAULT", "service_down_time"): "60",
            ("api", "max_limit"): "1000",
        }
        values.update(overrides or {})
        self.conf = confmod.load((), values)

    async def start(self, test) -> "ServedCompute":
        migration.sync(self.db_url)
        self.database = Database(self.db_url, reactor, pool_size=8, retry_interval=0.05)
        self.database.startService()
        test.addCleanup(self.database.stopService)
        self.transport = get_transport(f"memory://api-{uuid.uuid4().hex[:8]}", clock=reactor)
        await self.transport.connect()
        test.addCleanup(self.transport.close)
        self.app = ComputeApp(self.conf, self.database, self.transport, reactor, Authenticator(FixedTokens(), reactor))
        self.site = Site(self.app.resource)
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        test.addCleanup(self.port.stopListening)
        self.url = f"http://127.0.0.1:{self.port.getHost().port}"
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        test.addCleanup(self.pool.closeCachedConnections)
        self.http = HTTPClient(Agent(reactor, pool=self.pool))
        now = utils.utcnow()
        for name in ("admin", "demo", "alt"):
            await self.database.run(identity.create_project, name, now, "", True, f"{name}-project")
        for flavor in FLAVORS:
            await self.database.run(flavors.create, flavor)
        return self

    async def request(self, method, path, body=None, token="demo", version=None, raw_body=None, headers=None):
        """(status, headers, decoded JSON or None) of one request to ``/v2.1<path>``."""
        all_headers = {"Accept": ["application/json"]}
        if token is not None:
            all_headers["X-Auth-Token"] = [token]
        if version is not None:
            all_headers["OpenStack-API-Version"] = [f"compute {version}"]
        for name, value in (headers or {}).items():
            all_headers[name] = [value]
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            all_headers["Content-Type"] = ["application/json"]
        response = await self.http.request(method, self.url + "/v2.1" + path, data=data, headers=all_headers)
        content = await response.content()
        decoded = json.loads(content) if content else None
        return response.code, response.headers, decoded

    async def ok(self, method, path, body=None, token="demo", version=None, status=200):
        """The decoded body of a request that must answer ``status``."""
        code, _, decoded = await self.request(method, path, body, token, version)
        assert code == status, (method, path, code, decoded)
        return decoded

    async def error(self, method, path, body=None, token="demo", version=None, status=400):
        """The message of a request that must fail with ``status`` and Nova's error body."""
        code, _, decoded = await self.request(method, path, body, token, version)
        assert code == status, (method, path, code, decoded)
        assert isinstance(decoded, dict) and len(decoded) == 1, decoded
        (fault,) = decoded.values()
        assert fault["code"] == status and "Traceback" not in fault["message"], decoded
        return fault["message"]

    # -- seeding --------------------------------------------------------------------------------
    async def add_service(self, host, binary="nova-compute", seen=None, **values) -> dict:
        """A service row that heartbeated at ``seen`` (now by default)."""
        seen = seen or utils.utcnow()
        row = await self.database.run(services.register, host, binary, binary.removeprefix("nova-"), seen)
        if values:
            row = await self.database.run(services.update, host, binary, seen, **values)
        return row

    async def add_hypervisor(self, host, nodename=None, zone="nova", vcpus=4, memory_mb=8192, disk_gb=100, **extra):
        """A compute service plus its node with inventories (512 MiB RAM reserved)."""
        await self.add_service(host)
        resources = {
            "hypervisor_type": "fake",
            "hypervisor_version": 1000,
            "cpu_info": {"arch": "x86_64", "model": "fake"},
            "host_ip": "192.0.2.10",
            "availability_zone": zone,
            "memory_mb": memory_mb,
            "local_gb": disk_gb,
            **extra,
        }
        inventory = {
            placement.VCPU: {"total": vcpus, "allocation_ratio": 16.0},
            placement.MEMORY_MB: {"total": memory_mb, "reserved": 512, "allocation_ratio": 1.5},
            placement.DISK_GB: {"total": disk_gb, "allocation_ratio": 1.0},
        }
        return await self.database.run(
            placement.update_node, host, nodename or host, resources, inventory, utils.utcnow()
        )

    async def add_server(
        self,
        token="demo",
        name="vm",
        flavor="1",
        host=None,
        launched_at=None,
        terminated_at=None,
        vm_state="active",
    ) -> dict:
        """A server row (no compute involved), its resources claimed on ``host``'s node if given."""
        user_id, project_id, _ = USERS[token]
        flavor_row = await self.database.run(flavors.get_by_flavorid, flavor)
        embedded = flavors.embedded(flavor_row)
        row = {
            "uuid": str(uuid.uuid4()),
            "project_id": project_id,
            "user_id": user_id,
            "display_name": name,
            "hostname": name,
            "instance_type_id": flavor_row["id"],
            "flavor": embedded,
            "memory_mb": flavor_row["memory_mb"],
            "vcpus": flavor_row["vcpus"],
            "root_gb": flavor_row["root_gb"],
            "ephemeral_gb": flavor_row["ephemeral_gb"],
            "vm_state": vm_state,
            "power_state": 1,
            "host": host,
            "node": host,
            "launched_at": launched_at,
            "terminated_at": terminated_at,
            "system_metadata": {},
        }
        action = {"action": "create", "request_id": "req-seed", "user_id": user_id, "project_id": project_id}
        (created,) = await self.database.run(instances.create, [row], {}, action)
        if host:
            node = await self.database.run(placement.node_by_name, host)
            await self.database.run(
                placement.claim, node["id"], created["uuid"], placement.flavor_resources(embedded), utils.utcnow()
            )
        return created

    async def delete_server(self, uuid_: str, when: dt.datetime | None = None) -> None:
        await self.database.run(instances.destroy, uuid_, when)


async def served(test, overrides: dict | None = None, db_url: str | None = None) -> ServedCompute:
    """Start a ServedCompute for ``test`` (stopped at cleanup), on SQLite unless ``db_url`` is given."""
    tmpdir = os.path.abspath(test.mktemp())
    os.makedirs(tmpdir)
    return await ServedCompute(tmpdir, overrides, db_url).start(test)
