"""A running cloud for real-client tests: daemons in subprocesses, driven by the openstack CLI.

``RunningCloud(tmpdir, mode="all")`` runs ``twistd nova-all`` on SQLite and
the in-memory bus; ``mode="separate"`` runs nova-api, nova-conductor,
nova-scheduler and nova-compute as separate twistd processes on RabbitMQ
(a scratch vhost) and MariaDB (a scratch database). Both get free ports,
``nova-manage demo setup`` data (users admin, demo and alt with their
projects, the classic flavors, ``demo-image``) and a clouds.yaml with the
clouds ``admin``, ``demo`` and ``alt``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

BIN = os.path.dirname(sys.executable)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MYSQL = "mysql+pymysql://root:@127.0.0.1:3306"
CLOUD_NAMES = {"demo": "nova-twisted", "admin": "nova-twisted-admin", "alt": "nova-twisted-alt"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CommandFailed(AssertionError):
    """A CLI command exited non-zero; carries its output."""

    def __init__(self, argv, returncode, stdout, stderr):
        super().__init__(f"{' '.join(argv)} exited {returncode}:\n{stderr.strip() or stdout.strip()}")
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


class RunningCloud:
    """Start with :meth:`start`, drive with :meth:`openstack`, end with :meth:`stop`."""

    def __init__(self, tmpdir, mode: str = "all", computes: int = 1, extra_conf: dict | None = None):
        self.tmpdir = str(tmpdir)
        self.mode = mode
        self.computes = [f"compute-{i + 1}" for i in range(computes)] if mode == "separate" else []
        self.extra_conf = dict(extra_conf or {})  # {(section, option): text}
        self.compute_port, self.identity_port, self.image_port = free_port(), free_port(), free_port()
        self.compute_url = f"http://127.0.0.1:{self.compute_port}/v2.1"
        self.identity_url = f"http://127.0.0.1:{self.identity_port}/v3"
        self.image_url = f"http://127.0.0.1:{self.image_port}"
        self.clouds_yaml = os.path.join(self.tmpdir, "clouds.yaml")
        self.processes: dict[str, subprocess.Popen] = {}
        self.db_name = None
        self.vhost = None
        self.image_id = None
        self.image_name = "demo-image"

    # -- configuration ---------------------------------------------------------------------
    def _database_url(self) -> str:
        if self.mode == "all":
            return f"sqlite:///{self.tmpdir}/state/nova.sqlite"
        self.db_name = f"nova_clients_{uuid.uuid4().hex[:10]}"
        return f"{MYSQL}/{self.db_name}"

    def _transport_url(self) -> str:
        if self.mode == "all":
            return "memory://"
        self.vhost = f"nova-clients-{uuid.uuid4().hex[:10]}"
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", self.vhost], check=True, capture_output=True)
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )
        return f"amqp://guest:guest@127.0.0.1:5672/{self.vhost}"

    def write_config(self, host: str = "control") -> str:
        """Write ``host``'s nova.conf (the cloud's settings, then ``extra_conf`` on top)."""
        from tests.compute.cloud import write_conf

        values = {
            ("DEFAULT", "state_path"): f"{self.tmpdir}/state-{host}",
            ("DEFAULT", "host"): host,
            ("DEFAULT", "my_ip"): "127.0.0.1",
            ("DEFAULT", "report_interval"): "2",
            ("DEFAULT", "service_down_time"): "20",
            ("DEFAULT", "periodic_fuzzy_delay"): "1",
            ("DEFAULT", "graceful_shutdown_timeout"): "10",
            ("DEFAULT", "log_file"): f"{self.tmpdir}/{host}.log",
            ("database", "connection"): self.database_url,
            ("transport", "url"): self.transport_url,
            ("api", "compute_listen"): "127.0.0.1",
            ("api", "compute_port"): str(self.compute_port),
            ("api", "image_listen"): "127.0.0.1",
            ("api", "image_port"): str(self.image_port),
            ("identity", "bind_host"): "127.0.0.1",
            ("identity", "bind_port"): str(self.identity_port),
            ("identity", "identity_url"): self.identity_url,
            ("identity", "compute_url"): self.compute_url,
            ("identity", "image_url"): self.image_url,
            ("identity", "password_hash_rounds"): "4",
            ("image", "data_dir"): f"{self.tmpdir}/images",
            ("image", "endpoint"): self.image_url,
            ("compute", "update_resources_interval"): "5",
            ("compute", "sync_power_state_interval"): "10",
            ("scheduler", "host_state_refresh_interval"): "0.5",
            **self.extra_conf,
        }
        return write_conf(os.path.join(self.tmpdir, f"nova-{host}.conf"), values)

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> RunningCloud:
        os.makedirs(self.tmpdir, exist_ok=True)
        self.database_url = self._database_url()
        self.transport_url = self._transport_url()
        self.control_conf = self.write_config("control")
        self.manage("db", "sync")
        self.manage(
            "demo",
            "setup",
            "--clouds-yaml",
            self.clouds_yaml,
            "--auth-url",
            self.identity_url,
            "--extra-user",
            "alt:alt",
        )
        if self.mode == "all":
            self._spawn("nova-all", self.control_conf)
        else:
            for binary in ("nova-conductor", "nova-scheduler"):
                self._spawn(binary, self.control_conf)
            for host in self.computes:
                self._spawn("nova-compute", self.write_config(host), name=f"nova-compute-{host}")
            self._spawn("nova-api", self.control_conf)
        self._wait_ready()
        images = self.openstack("image", "list", "--name", self.image_name)
        self.image_id = images[0]["ID"]
        return self

    def manage(self, *args) -> str:
        argv = [os.path.join(BIN, "nova-manage"), "--config", self.control_conf, *args]
        done = subprocess.run(argv, capture_output=True, text=True, cwd=self.tmpdir)
        if done.returncode != 0:
            raise CommandFailed(argv, done.returncode, done.stdout, done.stderr)
        return done.stdout

    def _spawn(self, binary: str, conf: str, name: str | None = None) -> None:
        name = name or binary
        log = open(os.path.join(self.tmpdir, f"{name}.out"), "ab")
        self.processes[name] = subprocess.Popen(
            [os.path.join(BIN, "twistd"), "--pidfile=", "-n", binary, "--config", conf],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.tmpdir,
        )

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        expected = {"nova-conductor", "nova-scheduler", "nova-compute"}
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.logs(name)}")
            try:
                with urllib.request.urlopen(self.compute_url, timeout=2) as answer:
                    ready_http = answer.status == 200
            except OSError:
                ready_http = False
            if ready_http:
                listing = self.manage("service", "list")
                up = {line.split()[1] for line in listing.splitlines()[1:] if " up " in f" {line} "}
                computes = sum(1 for line in listing.splitlines()[1:] if "nova-compute" in line and " up" in line)
                if expected <= up and computes >= max(1, len(self.computes)):
                    return
            time.sleep(0.3)
        raise AssertionError(f"cloud not ready in {timeout}s:\n" + "\n".join(self.logs(n) for n in self.processes))

    def logs(self, name: str, tail: int = 40) -> str:
        lines = []
        for suffix in (".out", ".log"):
            for candidate in (name, name.replace("nova-compute-", ""), "control"):
                path = os.path.join(self.tmpdir, candidate + suffix)
                if os.path.exists(path):
                    with open(path, errors="replace") as handle:
                        lines += handle.read().splitlines()[-tail:]
                    break
        return "\n".join(lines)

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()
        if self.db_name:
            import sqlalchemy as sa

            engine = sa.create_engine(MYSQL + "/")
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{self.db_name}`")
            engine.dispose()
        if self.vhost:
            subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.vhost], capture_output=True)
        shutil.rmtree(os.path.join(self.tmpdir, "images"), ignore_errors=True)

    # -- clients -----------------------------------------------------------------------------
    def env(self) -> dict:
        env = dict(os.environ)
        env["OS_CLIENT_CONFIG_FILE"] = self.clouds_yaml
        for key in list(env):
            if key.startswith("OS_") and key != "OS_CLIENT_CONFIG_FILE":
                del env[key]
        return env

    def openstack(self, *args, cloud: str = "demo", json_output: bool = True, timeout: float = 120):
        """Run the real ``openstack`` CLI as ``cloud``; parsed ``-f json`` output (or the text)."""
        argv = [os.path.join(BIN, "openstack"), "--os-cloud", CLOUD_NAMES.get(cloud, cloud), *args]
        if json_output:
            argv += ["-f", "json"]
        done = subprocess.run(argv, capture_output=True, text=True, env=self.env(), timeout=timeout, cwd=self.tmpdir)
        if done.returncode != 0:
            raise CommandFailed(argv, done.returncode, done.stdout, done.stderr)
        if not json_output:
            return done.stdout
        return json.loads(done.stdout) if done.stdout.strip() else None

    def openstack_fails(self, *args, cloud: str = "demo") -> CommandFailed:
        """Run a command that must fail; return the failure (its stderr says why)."""
        try:
            self.openstack(*args, cloud=cloud, json_output=False)
        except CommandFailed as failure:
            return failure
        raise AssertionError(f"openstack {' '.join(args)} succeeded but should have failed")

    def sdk(self, cloud: str = "demo"):
        """An openstacksdk Connection as ``cloud``."""
        import openstack
        from openstack import config as sdk_config

        region = sdk_config.OpenStackConfig(config_files=[self.clouds_yaml]).get_one(cloud=CLOUD_NAMES[cloud])
        return openstack.connection.Connection(config=region)

    def token(self, cloud: str = "demo") -> str:
        """A project-scoped token for ``cloud``'s user, for raw HTTP requests."""
        user = {"admin": ("admin", "admin", "admin"), "demo": ("demo", "demo", "demo"), "alt": ("alt", "alt", "alt")}[
            cloud
        ]
        body = json.dumps(
            {
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {"user": {"name": user[0], "password": user[1], "domain": {"id": "default"}}},
                    },
                    "scope": {"project": {"name": user[2], "domain": {"id": "default"}}},
                }
            }
        ).encode()
        request = urllib.request.Request(f"{self.identity_url}/auth/tokens", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.headers["X-Subject-Token"]

    def kill(self, name: str) -> None:
        """SIGKILL one daemon (e.g. ``nova-compute-compute-1``)."""
        proc = self.processes.pop(name)
        proc.kill()
        proc.wait()
