"""Helpers for tests on the real RabbitMQ: scratch vhosts, raw publishing, broker restarts."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

from twisted.internet import defer, protocol, reactor
from twisted.internet.task import deferLater

from nova_twisted.rpc.amqp_protocol import AMQPProtocol

RABBIT_URL = os.environ.get("NOVA_TEST_RABBIT", "amqp://guest:guest@127.0.0.1:5672/")
RABBITMQCTL = os.environ.get("NOVA_TEST_RABBITMQCTL", "rabbitmqctl")
RAW_CHANNEL = 99
DEAD_LETTER_CHANNEL = 98


def rabbitmqctl(*args: str, timeout: float = 60) -> str:
    """Run rabbitmqctl; raise with its output if it fails."""
    result = subprocess.run([RABBITMQCTL, *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result.stdout


def create_vhost() -> tuple[str, str]:
    """Create a scratch vhost the test user may use; return (its name, an amqp URL for it)."""
    name = f"nova_test_{uuid.uuid4().hex[:12]}"
    rabbitmqctl("add_vhost", name)
    user = urlsplit(RABBIT_URL).username or "guest"
    rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
    return name, vhost_url(name)


def vhost_url(name: str, base: str = RABBIT_URL) -> str:
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(name, safe=""), "", ""))


def delete_vhost(name: str) -> None:
    rabbitmqctl("delete_vhost", name)


def broker_running() -> bool:
    try:
        rabbitmqctl("await_startup", timeout=60)
        return True
    except (RuntimeError, OSError, subprocess.TimeoutExpired):
        return False


def restart_broker_app() -> None:
    """Stop and start the RabbitMQ application (not the Erlang node): a fast broker restart."""
    try:
        rabbitmqctl("stop_app")
    finally:
        rabbitmqctl("start_app")


def ensure_broker_running() -> None:
    """Whatever happened, leave the broker running."""
    try:
        rabbitmqctl("start_app")
    except RuntimeError:
        pass
    rabbitmqctl("await_startup")


async def open_raw_channel(transport, channel_id: int):
    """Return (protocol, channel) of a plain (non-confirm) channel on ``transport``'s connection."""
    proto: AMQPProtocol = transport.protocol
    ch = await proto.channel(channel_id)
    if channel_id not in getattr(proto, "_test_open_channels", set()):
        await ch.channel_open()
        proto._test_open_channels = {*getattr(proto, "_test_open_channels", set()), channel_id}
    return proto, ch


async def publish_raw(transport, routing_key: str, body: bytes) -> None:
    """Publish bytes to ``routing_key`` on the transport's exchange, bypassing the encoder."""
    proto, _ = await open_raw_channel(transport, RAW_CHANNEL)
    proto.publish(RAW_CHANNEL, transport.exchange, routing_key, body, persistent=True)


async def collect_dead_letters(transport, expected: list[bytes], timeout: float = 10) -> list[bytes]:
    """Consume the dead-letter queue until all ``expected`` bodies arrived (or the timeout)."""
    proto, ch = await open_raw_channel(transport, DEAD_LETTER_CHANNEL)
    bodies: list[bytes] = []
    tag = f"dead-letters-{uuid.uuid4().hex[:8]}"
    proto.consumers[tag] = lambda delivery, body: bodies.append(body)
    await ch.basic_consume(queue=transport.dead_letter_queue, consumer_tag=tag, no_ack=True)
    waited = 0.0
    while not all(body in bodies for body in expected) and waited < timeout:
        await deferLater(reactor, 0.05, lambda: None)
        waited += 0.05
    await ch.basic_cancel(consumer_tag=tag)
    return bodies


class _Lines(protocol.ProcessProtocol):
    def __init__(self):
        self.lines: list[str] = []
        self.waiters: list[tuple[str, defer.Deferred]] = []
        self.ended = defer.Deferred()
        self._partial = ""
        self.stderr = ""

    def outReceived(self, data: bytes) -> None:
        self._partial += data.decode()
        while "\n" in self._partial:
            line, self._partial = self._partial.split("\n", 1)
            self.lines.append(line)
            for prefix, d in list(self.waiters):
                if line.startswith(prefix):
                    self.waiters.remove((prefix, d))
                    d.callback(line)

    def errReceived(self, data: bytes) -> None:
        self.stderr += data.decode(errors="replace")

    def processEnded(self, reason) -> None:
        for _, d in self.waiters:
            d.errback(RuntimeError(f"consumer process ended: {self.stderr[-2000:]}"))
        self.waiters = []
        self.ended.callback(reason.value.exitCode)

    def wait_for(self, prefix: str) -> defer.Deferred:
        for line in self.lines:
            if line.startswith(prefix):
                return defer.succeed(line)
        d = defer.Deferred()
        self.waiters.append((prefix, d))
        return d


class ConsumerProcess:
    """A consumer in its own process (tests/contract/transport_consumer.py) that can be SIGKILLed."""

    def __init__(self, url: str, topic: str, exchange: str):
        self.lines = _Lines()
        script = os.path.join(os.path.dirname(__file__), "transport_consumer.py")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self.process = reactor.spawnProcess(
            self.lines, sys.executable, [sys.executable, script, url, topic, exchange], env=env
        )

    def wait_ready(self) -> defer.Deferred:
        return self.lines.wait_for("ready")

    def wait_got(self) -> defer.Deferred:
        return self.lines.wait_for("got ")

    def kill(self) -> defer.Deferred:
        self.process.signalProcess("KILL")
        return self.lines.ended
