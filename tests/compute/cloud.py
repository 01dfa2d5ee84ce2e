"""A whole cloud (conductor, scheduler, N computes, the compute API) for tests.

In one process on the in-memory bus and SQLite (``InProcessCloud``), or as
separate twistd processes on RabbitMQ + MariaDB (``ProcessCloud``): the
scenarios in test_compute_scenarios.py run against both.
"""

from __future__ import annotations

import os
import signal
import subprocess
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

MYSQL_SERVER = os.environ.get("NOVA_TEST_MYSQL", "mysql+pymysql://root:@127.0.0.1:3306")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)

#: compute-3 spawns (and acts) slowly, so tests can act on a server while it is busy.
SLOW_HOST = "compute-3"
SLOW_SPAWN = 3.0

FLAVORS = [
    {"flavorid": "1", "name": "m1.tiny", "memory_mb": 512, "vcpus": 1, "root_gb": 1},
    {"flavorid": "2", "name": "m1.small", "memory_mb": 2048, "vcpus": 1, "root_gb": 20},
    {"flavorid": "3", "name": "m1.medium", "memory_mb": 4096, "vcpus": 2, "root_gb": 40},
    {"flavorid": "4", "name": "m1.large", "memory_mb": 8192, "vcpus": 4, "root_gb": 80},
    {"flavorid": "5", "name": "m1.narrow", "memory_mb": 1024, "vcpus": 2, "root_gb": 20},
]


def user_context(project="project-a", user="user-a", admin=False):
    roles = ["member"] + (["admin"] if admin else [])
    return RequestContext(user_id=user, project_id=project, roles=roles)


def cloud_conf(state_path, db_url, transport_url, host="compute-1", extra=None):
    return confmod.load((), cloud_values(state_path, db_url, transport_url, host, extra))


def cloud_values(state_path, db_url, transport_url, host="compute-1", extra=None) -> dict:
    """The test cloud's configuration for ``host``, as {(section, option): text}."""
    values = {
        ("DEFAULT", "state_path"): os.path.join(str(state_path), host),
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
        ("scheduler", "stranded_check_interval"): "1",
        ("quota", "instances"): "1000",
        ("quota", "cores"): "1000",
        ("quota", "ram"): "10000000",
        # Each host takes exactly ten m1.tiny (512 MiB each, nothing oversubscribed).
        ("compute", "ram_allocation_ratio"): "1.0",
        ("compute", "reserved_host_memory_mb"): "512",
        ("fake_driver", "vcpus"): "4",
        ("fake_driver", "memory_mb"): "5632",
        ("fake_driver", "local_gb"): "200",
        ("fake_driver", "action_delay"): "0.2",
    }
    if host == SLOW_HOST:
        values[("fake_driver", "spawn_delay")] = str(SLOW_SPAWN)
        values[("fake_driver", "action_delay")] = str(SLOW_SPAWN)
    for key, value in (extra or {}).items():
        values[key] = str(value)
    return values


def write_conf(path, values: dict) -> str:
    """Write {(section, option): text} as a nova.conf file; return its path."""
    sections: dict[str, list[str]] = {}
    for (section, name), value in values.items():
        sections.setdefault(section, []).append(f"{name} = {value}")
    with open(path, "w") as handle:
        for section, lines in sections.items():
            handle.write(f"[{section}]\n" + "\n".join(lines) + "\n\n")
    return str(path)


def make_image_service(conf, database):
    """The built-in image store (what nova-all uses in-process)."""
    from nova_twisted.image.store import ImageStore

    return ImageStore.from_config(conf, database, reactor)


class CloudBase:
    """What scenarios use: the compute API, the database, polling helpers."""

    api: API
    database: Database
    slow_spawn = SLOW_SPAWN
    tmpdir: str

    async def make_image(self) -> str:
        """A public, active image to boot from; return its id."""
        import tempfile

        ctxt = user_context(project="admin-project", user="admin", admin=True)
        image = await self.image_service.create(
            ctxt, {"name": "cirros-ish", "disk_format": "qcow2", "container_format": "bare", "visibility": "public"}
        )
        with tempfile.NamedTemporaryFile(dir=self.tmpdir, delete=False) as handle:
            handle.write(b"QFI\xfb" + b"\0" * 4096)
        await self.image_service.upload(ctxt, image["id"], handle.name)
        os.unlink(handle.name)
        return image["id"]

    async def wait_image(self, ctxt, image_id, status, timeout=30.0):
        deadline = time.monotonic() + timeout
        image = None
        while time.monotonic() < deadline:
            image = await self.image_service.show(ctxt, image_id)
            if image["status"] == status:
                return image
            await task.deferLater(reactor, 0.05, lambda: None)
        raise AssertionError(f"image {image_id} never became {status}: {image}")

    async def create_group(self, ctxt, name, policy):
        from nova_twisted.db import server_groups

        return await self.database.run(server_groups.create, name, policy, ctxt.project_id, ctxt.user_id)

    async def set_enabled(self, hosts, enabled):
        from nova_twisted import utils
        from nova_twisted.db import services

        for host in hosts:
            await self.database.run(services.update, host, "nova-compute", utils.utcnow(), disabled=not enabled)

    async def actions(self, uuid):
        from nova_twisted.db import actions

        return await self.database.run(actions.list_for_instance, uuid)

    async def guests(self) -> set[str]:
        """Every guest any fake hypervisor of this cloud holds (from their persisted state)."""
        found = set()
        for host in os.listdir(self.tmpdir):
            instances_dir = os.path.join(self.tmpdir, host, "instances")
            if os.path.isdir(instances_dir):
                found |= {
                    u
                    for u in os.listdir(instances_dir)
                    if os.path.exists(os.path.join(instances_dir, u, "fake-guest.json"))
                }
        return found

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
        self.transport = get_transport(conf.transport, clock=reactor)
        await self.transport.connect()
        for flavor in FLAVORS:
            await self.database.run(flavors.create, flavor)
        self.image_service = make_image_service(conf, self.database)
        self.services["conductor"] = conductor_service.build(conf, reactor, self.transport, self.database)
        self.services["scheduler"] = scheduler_service.build(conf, reactor, self.transport, self.database)
        for svc in self.services.values():
            svc.startService()
        for host in self.hosts:
            await self.start_compute(host)
        self.api = API(self.database, self.transport, conf, reactor, self.image_service)
        await self.wait_hosts(len(self.hosts))

    async def start_compute(self, host, extra=None):
        """Start nova-compute for ``host`` on its own bus connection, as a separate daemon would."""
        from nova_twisted.compute import service as compute_service

        conf = cloud_conf(self.tmpdir, self.db_url, self.transport_url, host, {**self.extra, **(extra or {})})
        svc = compute_service.build(conf, reactor, image_service=self.image_service)
        svc.startService()
        self.services[host] = svc
        await self._nova_service(host).registered
        return svc

    def _nova_service(self, host):
        transport_service = next(iter(self.services[host]))
        return next(iter(transport_service))

    def driver(self, host):
        return self._nova_service(host).manager.driver

    async def stop_compute(self, host):
        svc = self.services.pop(host)
        await svc.stopService()

    async def restart_compute(self, host, extra=None):
        return await self.start_compute(host, extra)

    async def kill_compute(self, host):
        """The compute process dies: no draining, no heartbeat, unacknowledged messages go back."""
        nova = self._nova_service(host)
        del self.services[host]
        if nova.rpcserver is not None and nova.rpcserver.listener is not None:
            nova.rpcserver.listener.abort()
        for periodic in nova.tasks:
            periodic.stop()
        await nova.transport.close()
        nova.manager.driver.crash_host()

    async def stop(self):
        for name in reversed(list(self.services)):  # computes first: they still talk to conductor
            await self.services.pop(name).stopService()
        await self.transport.close()
        self.image_service.close()
        self.database.stopService()


class ProcessCloud(CloudBase):
    """conductor, scheduler, three computes and nova-api as separate twistd processes on
    RabbitMQ (a scratch vhost) and MariaDB (a scratch database); this process drives
    compute/api.py over the same bus and database."""

    def __init__(self, tmpdir, hosts=("compute-1", "compute-2", "compute-3"), extra=None):
        from tests.clients.cloud import free_port

        self.tmpdir = str(tmpdir)
        self.hosts = list(hosts)
        self.extra = dict(extra or {})
        self.processes: dict[str, subprocess.Popen] = {}
        self.db_name = f"nova_compute_{uuid.uuid4().hex[:10]}"
        self.vhost = f"nova-compute-{uuid.uuid4().hex[:10]}"
        self.db_url = f"{MYSQL_SERVER}/{self.db_name}"
        self.transport_url = f"amqp://guest:guest@127.0.0.1:5672/{self.vhost}"
        self.ports = {"compute": free_port(), "identity": free_port(), "image": free_port()}

    def _values(self, host, extra=None):
        ports = self.ports
        values = cloud_values(self.tmpdir, self.db_url, self.transport_url, host, {**self.extra, **(extra or {})})
        values.update(
            {
                ("DEFAULT", "log_file"): os.path.join(self.tmpdir, f"{host}.log"),
                ("api", "compute_listen"): "127.0.0.1",
                ("api", "compute_port"): str(ports["compute"]),
                ("api", "image_listen"): "127.0.0.1",
                ("api", "image_port"): str(ports["image"]),
                ("identity", "bind_host"): "127.0.0.1",
                ("identity", "bind_port"): str(ports["identity"]),
                ("identity", "password_hash_rounds"): "4",
                ("image", "data_dir"): os.path.join(self.tmpdir, "images"),
                ("image", "endpoint"): f"http://127.0.0.1:{ports['image']}",
                # compute uploads snapshots with a service token when a request carries none
                ("image", "auth_url"): f"http://127.0.0.1:{ports['identity']}/v3",
                ("image", "username"): "admin",
                ("image", "password"): "admin",
                ("image", "project_name"): "admin",
            }
        )
        return values

    async def start(self):
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", self.vhost], check=True, capture_output=True)
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )
        values = self._values("control")
        self.control_conf = write_conf(os.path.join(self.tmpdir, "control.conf"), values)
        migration.sync(self.db_url)
        self._manage("identity", "bootstrap", "--admin-password", "admin")
        self.conf = confmod.load([self.control_conf])
        self.database = Database.from_config(self.conf, reactor)
        self.database.startService()
        for flavor in FLAVORS:
            await self.database.run(flavors.create, flavor)
        self.image_service = make_image_service(self.conf, self.database)
        self.transport = get_transport(self.conf.transport, clock=reactor)
        await self.transport.connect()
        for binary in ("nova-conductor", "nova-scheduler", "nova-api"):
            self._spawn(binary, self.control_conf, binary)
        for host in self.hosts:
            await self.start_compute(host)
        self.api = API(self.database, self.transport, self.conf, reactor, self.image_service)
        await self.wait_hosts(len(self.hosts), timeout=60)

    def _manage(self, *args):
        subprocess.run(
            [os.path.join(VENV_BIN, "nova-manage"), "--config", self.control_conf, *args],
            check=True,
            capture_output=True,
        )

    def _spawn(self, binary, conf, name):
        log = open(os.path.join(self.tmpdir, f"{name}.out"), "ab")
        self.processes[name] = subprocess.Popen(
            [os.path.join(VENV_BIN, "twistd"), "--pidfile=", "-n", binary, "--config", conf],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.tmpdir,
        )

    async def start_compute(self, host, extra=None):
        conf = write_conf(os.path.join(self.tmpdir, f"{host}.conf"), self._values(host, extra))
        self._spawn("nova-compute", conf, host)
        await self._wait_service_up(host)

    async def _wait_service_up(self, host, timeout=60.0):
        from nova_twisted import utils
        from nova_twisted.db import services

        deadline = time.monotonic() + timeout
        started = utils.utcnow()
        while time.monotonic() < deadline:
            rows = await self.database.run(services.list_services, host, "nova-compute")
            if rows and rows[0]["last_seen_up"] and rows[0]["last_seen_up"] > started:
                return
            proc = self.processes.get(host)
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"nova-compute {host} exited {proc.returncode}")
            await task.deferLater(reactor, 0.2, lambda: None)
        raise AssertionError(f"nova-compute {host} did not come up")

    async def restart_compute(self, host, extra=None):
        return await self.start_compute(host, extra)

    async def stop_compute(self, host):
        proc = self.processes.pop(host)
        proc.send_signal(signal.SIGTERM)
        await self._wait_exit(proc)

    async def kill_compute(self, host):
        proc = self.processes.pop(host)
        proc.kill()
        await self._wait_exit(proc)

    @staticmethod
    async def _wait_exit(proc, timeout=30.0):
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            await task.deferLater(reactor, 0.1, lambda: None)
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    async def stop(self):
        for name in reversed(list(self.processes)):
            proc = self.processes[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            await self._wait_exit(proc)
        self.processes.clear()
        await self.transport.close()
        self.image_service.close()
        self.database.stopService()
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.vhost], capture_output=True)
        import sqlalchemy as sa

        engine = sa.create_engine(MYSQL_SERVER + "/")
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{self.db_name}`")
        engine.dispose()
