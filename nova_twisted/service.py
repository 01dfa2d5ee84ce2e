"""The service base every daemon is built from.

A :class:`NovaService` is one binary (``nova-conductor``) on one host: it
registers in the ``services`` table, heartbeats every ``report_interval``,
serves its manager's RPC topic and runs the manager's periodic tasks. On
stop it first stops taking messages, then waits (bounded) for the work in
flight, then stops its loops.
"""

from __future__ import annotations

import random

from twisted.application.service import MultiService
from twisted.internet import defer, task
from twisted.logger import Logger
from zope.interface import Interface

from nova_twisted import utils
from nova_twisted.rpc import RPCServer

log = Logger(namespace="nova.service")


class PeriodicTask:
    """Runs ``fn()`` every ``interval`` seconds, never overlapping itself.

    The first run comes after a random delay of up to ``jitter`` seconds.
    A run that fails is logged and the task keeps its schedule; a run that
    takes longer than ``interval`` simply delays the next one (LoopingCall
    waits for the Deferred ``fn`` returns).
    """

    def __init__(self, name: str, fn, interval: float, clock, jitter: float = 0.0, rng=random.random):
        self.name = name
        self.fn = fn
        self.interval = interval
        self.clock = clock
        self.jitter = jitter
        self.rng = rng
        self.running = False
        self.runs = 0
        self._loop = None
        self._start_call = None
        self._loop_done = None
        self._in_run = False

    def start(self) -> None:
        self.running = True
        delay = self.jitter * self.rng() if self.jitter > 0 else 0
        self._start_call = self.clock.callLater(delay, self._begin)

    def _begin(self) -> None:
        self._start_call = None
        self._loop = task.LoopingCall(self._run)
        self._loop.clock = self.clock
        self._loop_done = self._loop.start(self.interval, now=True)
        self._loop_done.addErrback(lambda f: log.failure("periodic task {name} died", f, name=self.name))

    def _run(self):
        self._in_run = True
        d = defer.maybeDeferred(self.fn)

        def done(result):
            self._in_run = False
            self.runs += 1
            return None

        def failed(failure):
            self._in_run = False
            self.runs += 1
            log.failure("periodic task {name} failed", failure, name=self.name)
            return None

        d.addCallbacks(done, failed)
        return d

    def stop(self) -> defer.Deferred:
        """Stop scheduling runs; fires when a run in progress has finished."""
        self.running = False
        if self._start_call is not None and self._start_call.active():
            self._start_call.cancel()
            self._start_call = None
        if self._loop is not None and self._loop.running:
            stopped = defer.Deferred()  # a Deferred of our own: callers may cancel it
            self._loop_done.addBoth(lambda result: stopped.called or stopped.callback(None))
            self._loop.stop()
            return stopped
        return defer.succeed(None)


class IServiceGroup(Interface):
    """Where services record that they are alive (the database, or conductor for compute)."""

    def register(binary, host, topic):
        """Create or refresh the service's row; Deferred firing with the row dict."""

    def heartbeat(binary, host):
        """Record a heartbeat; Deferred firing with the row dict."""


class DatabaseServiceGroup:
    """Service records kept directly in the database (for services that own DB access)."""

    def __init__(self, database, clock):
        self.database = database
        self.clock = clock

    def register(self, binary, host, topic):
        from nova_twisted.db import services

        return self.database.run(services.register, host, binary, topic, utils.utcnow(self.clock))

    def heartbeat(self, binary, host):
        from nova_twisted.db import services

        return self.database.run(services.heartbeat, host, binary, utils.utcnow(self.clock))


class NovaService(MultiService):
    """One daemon role (binary) on one host: registration, heartbeat, RPC, periodic tasks."""

    def __init__(
        self,
        binary: str,
        host: str,
        topic: str | None,
        manager,
        *,
        transport,
        servicegroup,
        clock,
        report_interval: float = 10,
        periodic_fuzzy_delay: float = 5,
        graceful_shutdown_timeout: float = 60,
        serve_host_queue: bool = True,
    ):
        super().__init__()
        self.setName(binary)
        self.binary = binary
        self.host = host
        self.topic = topic
        self.manager = manager
        self.transport = transport
        self.servicegroup = servicegroup
        self.clock = clock
        self.report_interval = report_interval
        self.periodic_fuzzy_delay = periodic_fuzzy_delay
        self.graceful_shutdown_timeout = graceful_shutdown_timeout
        self.serve_host_queue = serve_host_queue
        self.rpcserver = None
        self.tasks: list[PeriodicTask] = []
        self.registered = defer.Deferred()
        self._starting = None

    def startService(self):
        super().startService()
        self._starting = defer.ensureDeferred(self._start())
        self._starting.addErrback(self._start_failed)

    def _start_failed(self, failure):
        from nova_twisted.cmd.daemon import fatal

        fatal(f"{self.binary} on {self.host} failed to start: {failure.getErrorMessage()}", failure)

    async def _start(self):
        await self.transport.connect()
        record = await self.servicegroup.register(self.binary, self.host, self.topic)
        init_host = getattr(self.manager, "init_host", None)
        if init_host is not None:
            await defer.maybeDeferred(init_host)
        if self.topic:
            server = self.host if self.serve_host_queue else None
            self.rpcserver = RPCServer(self.transport, self.topic, server, self.manager)
            await self.rpcserver.start()
        self.tasks.append(PeriodicTask("heartbeat", self._heartbeat, self.report_interval, self.clock, jitter=0))
        for name, fn, interval in self.manager.periodic_tasks() if self.manager is not None else ():
            self.tasks.append(PeriodicTask(name, fn, interval, self.clock, jitter=self.periodic_fuzzy_delay))
        for periodic in self.tasks:
            periodic.start()
        log.info(
            "{binary} started on {host} (service id {id})",
            binary=self.binary,
            host=self.host,
            id=record.get("id") if isinstance(record, dict) else "?",
        )
        self.registered.callback(record)

    async def _heartbeat(self):
        try:
            await self.servicegroup.heartbeat(self.binary, self.host)
        except Exception as exc:  # noqa: BLE001 - a missed heartbeat is logged; the loop goes on
            log.warn("heartbeat of {binary} failed: {error}", binary=self.binary, error=exc)

    def stopService(self):
        return defer.ensureDeferred(self._stop())

    async def _stop(self):
        log.info("{binary} stopping: no new work, finishing what is in flight", binary=self.binary)
        if self._starting is not None and not self._starting.called:
            self._starting.cancel()
        # Work in flight (RPC handlers, a periodic run) gets graceful_shutdown_timeout in all.
        waits = [periodic.stop() for periodic in self.tasks]
        if self.rpcserver is not None:
            waits.append(self.rpcserver.stop())
        drained = defer.DeferredList(waits, consumeErrors=True)
        timeout = self.clock.callLater(self.graceful_shutdown_timeout, drained.cancel)
        try:
            await drained
        except defer.CancelledError:
            log.warn(
                "{binary}: gave up waiting for work in flight after {t}s",
                binary=self.binary,
                t=self.graceful_shutdown_timeout,
            )
        finally:
            if timeout.active():
                timeout.cancel()
        cleanup = getattr(self.manager, "cleanup_host", None)
        if cleanup is not None:
            await defer.maybeDeferred(cleanup)
        await defer.maybeDeferred(super().stopService)
        log.info("{binary} stopped", binary=self.binary)


class TransportService(MultiService):
    """Owns a transport: connects it on start, closes it after its children stopped.

    Services that use the transport are added as children, so they stop
    (and drain) before the connection closes.
    """

    def __init__(self, transport):
        super().__init__()
        self.transport = transport

    def startService(self):
        d = self.transport.connect()
        d.addErrback(self._connect_failed)
        super().startService()

    def _connect_failed(self, failure):
        from nova_twisted.cmd.daemon import fatal

        fatal(f"cannot connect to the message bus: {failure.getErrorMessage()}", failure)

    def stopService(self):
        d = defer.maybeDeferred(super().stopService)
        d.addCallback(lambda _: self.transport.close())
        return d


class ServiceTree:
    """The shared parts of a daemon's tree: its database and its bus connection.

    ``root`` holds them; ``parent`` is where the daemon's NovaServices go
    (under the transport, so they stop before it closes). Passing a
    ``transport``/``database`` shares them (nova-all runs every service on one).
    """

    def __init__(self, conf, reactor, *, transport=None, database=None, need_database: bool = True):
        from nova_twisted.rpc import get_transport

        self.conf = conf
        self.reactor = reactor
        self.root = MultiService()
        if database is None and need_database:
            from nova_twisted.db.api import Database

            database = Database.from_config(conf, reactor)
            database.setServiceParent(self.root)
        self.database = database
        if transport is None:
            transport = get_transport(conf.transport, clock=reactor)
            self.parent = TransportService(transport)
            self.parent.setServiceParent(self.root)
        else:
            self.parent = self.root
        self.transport = transport

    def add(self, binary: str, topic: str | None, manager, servicegroup, serve_host_queue: bool = True):
        """Add the NovaService for ``binary`` with the configured intervals; return it."""
        d = self.conf.DEFAULT
        service = NovaService(
            binary,
            d.host,
            topic,
            manager,
            transport=self.transport,
            servicegroup=servicegroup,
            clock=self.reactor,
            report_interval=d.report_interval,
            periodic_fuzzy_delay=d.periodic_fuzzy_delay,
            graceful_shutdown_timeout=d.graceful_shutdown_timeout,
            serve_host_queue=serve_host_queue,
        )
        service.setServiceParent(self.parent)
        return service
