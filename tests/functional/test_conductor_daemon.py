"""`twistd -n nova-conductor` on the real MariaDB and RabbitMQ (issue 2's acceptance).

The daemon runs as a subprocess with a nova.conf pointing at a scratch
database and a scratch RabbitMQ vhost: it registers and heartbeats, finishes
in-flight work on SIGTERM and exits 0, and each broken dependency (broker
port closed, database missing or not synced) gives one error line and exit
status 1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest
import sqlalchemy as sa
from twisted.internet import defer, reactor, threads
from twisted.internet.task import deferLater
from twisted.trial import unittest

from nova_twisted.conductor.rpcapi import ConductorAPI
from nova_twisted.context import get_admin_context
from nova_twisted.db import migration
from nova_twisted.rpc import get_transport
from tests.conftest import MYSQL_SERVER, mysql_scratch_url
from tests.contract import transport_rabbit

pytestmark = [pytest.mark.mysql, pytest.mark.rabbitmq, pytest.mark.slow]

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


def write_conf(directory: str, db_url: str, amqp_url: str, host: str) -> str:
    path = os.path.join(directory, "nova.conf")
    with open(path, "w") as handle:
        handle.write(
            "[DEFAULT]\n"
            f"host = {host}\n"
            "report_interval = 1\n"
            f"state_path = {directory}/state\n"
            "graceful_shutdown_timeout = 30\n"
            "[database]\n"
            f"connection = {db_url}\n"
            "[transport]\n"
            f"url = {amqp_url}\n"
        )
    return path


def start_conductor(conf_path: str, cwd: str) -> subprocess.Popen:
    """Start the daemon; its output (the log goes to stderr) lands in ``cwd``/daemon.log."""
    with open(os.path.join(cwd, "daemon.log"), "w") as log:
        return subprocess.Popen(
            [TWISTD, "--pidfile=", "-n", "nova-conductor", "--config", conf_path],
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def run_conductor(conf_path: str, cwd: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [TWISTD, "--pidfile=", "-n", "nova-conductor", "--config", conf_path],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_row(db_url: str, host: str) -> dict | None:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT `binary`, host, topic, report_count FROM services WHERE host = :h"), {"h": host}
            ).first()
            return dict(row._mapping) if row is not None else None
    finally:
        engine.dispose()


def sleep(seconds: float) -> defer.Deferred:
    return deferLater(reactor, seconds, lambda: None)


class ConductorDaemonTests(unittest.TestCase):
    """The daemon's life on real services."""

    timeout = 120

    def setUp(self):
        self.db_url, drop_db = mysql_scratch_url()
        self.addCleanup(drop_db)
        migration.sync(self.db_url)
        self.vhost, self.amqp_url = transport_rabbit.create_vhost()
        self.addCleanup(transport_rabbit.delete_vhost, self.vhost)
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.host = f"conductor-{uuid.uuid4().hex[:8]}"
        self.conf = write_conf(self.dir, self.db_url, self.amqp_url, self.host)
        self.process = None

    def daemon_log(self) -> str:
        with open(os.path.join(self.dir, "daemon.log")) as handle:
            return handle.read()

    async def wait_for(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while True:
            value = await threads.deferToThread(predicate)
            if value:
                return value
            if time.monotonic() > deadline or (self.process is not None and self.process.poll() is not None):
                detail = ""
                if self.process is not None and self.process.poll() is not None:
                    detail = f": the daemon exited with {self.process.returncode}: {self.daemon_log()[-3000:]}"
                raise AssertionError(f"timed out waiting for {what}{detail}")
            await sleep(0.2)

    def test_registers_heartbeats_and_exits_zero_on_sigterm_after_in_flight_work(self):
        return defer.ensureDeferred(self._registers_heartbeats_and_exits_zero())

    async def _registers_heartbeats_and_exits_zero(self):
        process = self.process = start_conductor(self.conf, self.dir)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        row = await self.wait_for(lambda: service_row(self.db_url, self.host), 30, "the service row")
        self.assertEqual((row["binary"], row["topic"]), ("nova-conductor", "conductor"))
        first = row["report_count"]
        await self.wait_for(
            lambda: service_row(self.db_url, self.host)["report_count"] >= first + 2, 15, "two heartbeats"
        )

        # Hold the service row locked so that a call's database work stays in flight.
        engine = sa.create_engine(self.db_url)
        self.addCleanup(engine.dispose)
        conn = engine.connect()
        self.addCleanup(conn.close)
        locked = conn.begin()
        await threads.deferToThread(
            conn.execute, sa.text("SELECT id FROM services WHERE host = :h FOR UPDATE"), {"h": self.host}
        )
        transport = get_transport([self.amqp_url], clock=reactor)
        await transport.connect()
        self.addCleanup(transport.close)
        call = ConductorAPI(transport, timeout=60).service_heartbeat(get_admin_context(), "nova-conductor", self.host)
        await sleep(1.0)
        self.assertFalse(call.called, "the call finished although its row is locked")

        process.send_signal(signal.SIGTERM)
        await sleep(1.5)
        self.assertIsNone(process.poll(), "the daemon exited with work in flight")
        await threads.deferToThread(locked.commit)

        answer = await call
        self.assertEqual(answer["host"], self.host)
        self.assertGreater(answer["report_count"], first + 2)
        returncode = await threads.deferToThread(process.wait, 30)
        output = self.daemon_log()
        self.assertEqual(returncode, 0, output)
        self.assertIn("SIGTERM", output)
        self.assertIn("nova-conductor stopped", output)


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, (result.returncode, result.stderr, result.stdout[-2000:])
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nova-conductor: error: "), lines[0]
    return lines[0]


@pytest.fixture
def synced_db():
    url, drop = mysql_scratch_url()
    migration.sync(url)
    yield url
    drop()


def test_broker_on_a_closed_port_gives_one_error_line_and_exit_status_1(tmp_path, synced_db):
    port = closed_port()
    conf = write_conf(str(tmp_path), synced_db, f"amqp://guest:s3cret@127.0.0.1:{port}/", "conductor-nobroker")
    line = _one_error_line(run_conductor(conf, str(tmp_path)))
    assert "cannot reach the message broker" in line
    assert f"127.0.0.1:{port}" in line
    assert "s3cret" not in line


def test_database_not_synced_gives_one_error_line_and_exit_status_1(tmp_path):
    url, drop = mysql_scratch_url()
    try:
        conf = write_conf(str(tmp_path), url, transport_rabbit.RABBIT_URL, "conductor-unsynced")
        line = _one_error_line(run_conductor(conf, str(tmp_path)))
    finally:
        drop()
    assert "schema" in line and "db sync" in line


def test_missing_database_gives_one_error_line_and_exit_status_1(tmp_path):
    url = f"{MYSQL_SERVER}/nova_missing_{uuid.uuid4().hex[:8]}"
    conf = write_conf(str(tmp_path), url, transport_rabbit.RABBIT_URL, "conductor-nodb")
    line = _one_error_line(run_conductor(conf, str(tmp_path)))
    assert "Unknown database" in line or "database" in line.lower()
