"""A whole cloud (conductor, scheduler, N computes, the compute API) for tests.

In one process on the in-memory bus and SQLite (``InProcessCloud``), or as
separate twistd processes on RabbitMQ + MariaDB (``ProcessCloud``): the
scenarios in test_compute_scenarios.py run against both.
"""

from __future__ import annotations

import os
import sys
import time
import uuid

from twisted.internet import reactor, task

from nova_twisted import conf as confmod
from nova_twisted.compute.api import API
from nova_twisted.context import RequestContext
from nova_twisted.db import flavors, migration, placement
from nova_twisted.db.api import Database
from nova_twisted.rpc import get_transport

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)

FLAVORS = [
    {"flavorid": "1", "name": "m1.tiny", "memory_mb": 512, "vcpus": 1, "root_gb": 1},
    {"flavorid": "2", "name": "m1.small", "memory_mb": 2048, "vcpus": 1, "root_gb": 20},
    {"flavorid": "3", "name": "m1.medium", "memory_mb": 4096, "vcpus": 2, "root_gb": 40},
    {"flavorid": "4", "name": "m1.large", "memory_mb": 8192, "vcpus": 4, "root_gb": 80},
]


def user_context(project="project-a", user="user-a", admin=False):
    roles = ["member"] + (["admin"] if admin else [])
    return RequestContext(user_id=user, project_id=project, roles=roles)


def cloud_conf(state_path, db_url, transport_url, host="compute-1", extra=None):
    values = {
        ("DEFAULT", "state_path"): str(state_path),
        ("DEFAULT", "host"): host,
        ("DEFAULT", "report_interval"): "1",
        ("DEFAULT", "service_down_time"): "6",
        ("DEFAULT", "periodic_fuzzy_delay"): "0",
        ("DEFAULT", "graceful_shutdown_timeout"): "10",
        ("database", "connection"): db_url,
        ("transport", "url"): transport_url,
        ("compute", "update_resources_interval"): "1",
        ("compute", "sync_power_state_interval"): "1",
        ("scheduler", "host_state_refresh_interval"): "0.5",
        ("fake_driver", "vcpus"): "4",
        ("fake_driver", "memory_mb"): "8704",
        ("fake_driver", "local_gb"): "200",
    }
    for key, value in (extra or {}).items():
        values[key] = str(value)
    return confmod.load((), values)


class CloudBase:
    """What scenarios use: the compute API, the database, polling helpers."""

    api: API
    database: Database

    async def wait_for(self, uuid, predicate, timeout=30.0, ctxt=None):
        """Poll the instance until ``predicate(instance)``; return it (fail on timeout)."""
        ctxt = ctxt or user_context(admin=True)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = await self.api.get(ctxt, uuid, read_deleted="yes")
            except Exception as exc:  # noqa: BLE001 - reported if the wait fails
                last = exc
            else:
                if predicate(last):
                    return last
            await task.deferLater(reactor, 0.05, lambda: None)
        raise AssertionError(f"instance {uuid} never reached the expected state; last seen: {last}")

    async def wait_status(self, uuid, vm_state, task_state=None, timeout=30.0):
        return await self.wait_for(uuid, lambda i: i["vm_state"] == vm_state and i["task_state"] == task_state, timeout)

    async def usage(self) -> dict[str, dict]:
        """{host: {"used": {...}, "capacity": {...}}} straight from the database."""
        host_states = await self.database.run(placement.host_states)
        return {
            s["host"]: {
                "used": s["used"],
                "capacity": {rc: placement.capacity(inv) for rc, inv in s["inventory"].items()},
                "instances": s["instances"],
            }
            for s in host_states
        }

    async def wait_hosts(self, count, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            usage = await self.usage()
            if len(usage) >= count:
                return usage
            await task.deferLater(reactor, 0.1, lambda: None)
        raise AssertionError(f"only {len(await self.usage())} of {count} compute hosts reported")


class InProcessCloud(CloudBase):
    """conductor + scheduler + N computes in this process, on memory:// and SQLite."""

    def __init__(self, tmpdir, hosts=("compute-1", "compute-2", "compute-3"), extra=None):
        self.tmpdir = str(tmpdir)
        self.db_url = f"sqlite:///{self.tmpdir}/nova.sqlite"
        self.transport_url = f"memory://cloud-{uuid.uuid4().hex[:8]}"
        self.hosts = list(hosts)
        self.extra = extra or {}
        self.services = {}

    async def start(self):
        from nova_twisted.conductor import service as conductor_service
        from nova_twisted.scheduler import service as scheduler_service

        migration.sync(self.db_url)
        conf = cloud_conf(self.tmpdir, self.db_url, self.transport_url, "control", self.extra)
        self.conf = conf
        self.database = Database.from_config(conf, reactor)
        self.database.startService()
        self.transport = get_transport(conf.transport.url, clock=reactor)
        await self.transport.connect()
        for flavor in FLAVORS:
            await self.database.run(flavors.create, flavor)
        self.services["conductor"] = conductor_service.build(conf, reactor, self.transport, self.database)
        self.services["scheduler"] = scheduler_service.build(conf, reactor, self.transport, self.database)
        for svc in self.services.values():
            svc.startService()
        for host in self.hosts:
            await self.start_compute(host)
        self.api = API(self.database, self.transport, conf, reactor)
        await self.wait_hosts(len(self.hosts))

    async def start_compute(self, host):
        from nova_twisted.compute import service as compute_service

        conf = cloud_conf(self.tmpdir, self.db_url, self.transport_url, host, self.extra)
        svc = compute_service.build(conf, reactor, self.transport)
        svc.startService()
        self.services[host] = svc
        return svc

    def driver(self, host):
        svc = self.services[host]
        nova_service = next(iter(svc))
        return nova_service.manager.driver

    async def stop_compute(self, host):
        svc = self.services.pop(host)
        await svc.stopService()

    async def stop(self):
        for name in list(self.services):
            await self.services.pop(name).stopService()
        await self.transport.close()
        self.database.stopService()
