"""The connection to libvirtd: a thread pool for calls, an event thread, reconnection.

Every libvirt call runs on the ``nova-libvirt`` thread pool (libvirt
blocks), never on the reactor. libvirt's default event loop runs in one
daemon thread per process; lifecycle events and connection closes are
handed to the reactor with ``callFromThread``. A connection that dies
(libvirtd restarted) is re-opened at once and then every
``reconnect_interval`` seconds until it works; calls in between re-open
it themselves.
"""

from __future__ import annotations

import threading

import libvirt
from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from nova_twisted import exception
from nova_twisted.compute import states

log = Logger(namespace="nova.virt.libvirt")

_loop_lock = threading.Lock()
_loop_thread: threading.Thread | None = None


def _silence(_ctx, _error) -> None:
    """libvirt prints every error to stderr unless a handler takes them; we raise them instead."""


def ensure_event_loop() -> None:
    """Register libvirt's default event implementation and run it in a daemon thread (once per process).

    Must happen before connections are opened, or they deliver no events.
    """
    global _loop_thread
    with _loop_lock:
        if _loop_thread is not None:
            return
        libvirt.registerErrorHandler(_silence, None)
        libvirt.virEventRegisterDefaultImpl()
        _loop_thread = threading.Thread(target=_run_event_loop, name="libvirt-event-loop", daemon=True)
        _loop_thread.start()


def _run_event_loop() -> None:
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except Exception:  # noqa: BLE001 - the loop must survive anything
            log.failure("libvirt event loop iteration failed")


# -- power states ---------------------------------------------------------------
#: virDomainState -> power_state, as Nova maps them (a guest shutting down still runs).
DOMAIN_STATE_TO_POWER_STATE = {
    libvirt.VIR_DOMAIN_NOSTATE: states.NOSTATE,
    libvirt.VIR_DOMAIN_RUNNING: states.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: states.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: states.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: states.RUNNING,
    libvirt.VIR_DOMAIN_SHUTOFF: states.SHUTDOWN,
    libvirt.VIR_DOMAIN_CRASHED: states.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: states.SUSPENDED,
}


def power_state(domain_state: int, has_managed_save: bool = False) -> int:
    """Return the power_state of a domain in libvirt state ``domain_state``.

    A shut-off domain with a managed-save image is a suspended guest.
    """
    if domain_state == libvirt.VIR_DOMAIN_SHUTOFF and has_managed_save:
        return states.SUSPENDED
    return DOMAIN_STATE_TO_POWER_STATE.get(domain_state, states.NOSTATE)


def event_power_state(event: int, detail: int) -> int | None:
    """Return the power_state a lifecycle event leaves the guest in, or None for events that change none."""
    if event in (libvirt.VIR_DOMAIN_EVENT_STARTED, libvirt.VIR_DOMAIN_EVENT_RESUMED):
        return states.RUNNING
    if event == libvirt.VIR_DOMAIN_EVENT_SUSPENDED:
        # A save or migration pauses the guest on its way out; the STOPPED event that follows counts.
        if detail == libvirt.VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED:
            return None
        return states.PAUSED
    if event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
        if detail == libvirt.VIR_DOMAIN_EVENT_STOPPED_SAVED:
            return states.SUSPENDED
        if detail == libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED:
            return states.CRASHED
        return states.SHUTDOWN
    if event == libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED:
        return states.SUSPENDED
    if event == libvirt.VIR_DOMAIN_EVENT_CRASHED:
        return states.CRASHED
    return None


def is_connection_error(exc: libvirt.libvirtError) -> bool:
    """True when ``exc`` says the connection to libvirtd is gone (not that the call failed)."""
    return exc.get_error_code() in (
        libvirt.VIR_ERR_SYSTEM_ERROR,
        libvirt.VIR_ERR_INTERNAL_ERROR,
        libvirt.VIR_ERR_NO_CONNECT,
        libvirt.VIR_ERR_INVALID_CONN,
    ) and exc.get_error_domain() in (libvirt.VIR_FROM_REMOTE, libvirt.VIR_FROM_RPC)


class LibvirtHost:
    """One connection to libvirtd, used only from the ``nova-libvirt`` thread pool.

    ``on_event(uuid, power_state)`` and ``on_reconnect()`` are called on the
    reactor thread.
    """

    def __init__(self, uri: str, reactor, clock=None, pool_size: int = 8, reconnect_interval: float = 5):
        self.uri = uri or "qemu:///system"
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.reconnect_interval = reconnect_interval
        self.pool = ThreadPool(minthreads=0, maxthreads=pool_size, name="nova-libvirt")
        self.on_event = None
        self.on_reconnect = None
        self.connections_opened = 0
        self._conn: libvirt.virConnect | None = None
        self._conn_lock = threading.Lock()
        self._callback_id: int | None = None
        self._reconnect_call = None
        self._stopping = False

    # -- life ---------------------------------------------------------------------
    def start(self) -> defer.Deferred:
        """Start the pool and open the connection; Deferred. Fails with HypervisorError."""
        ensure_event_loop()
        self._stopping = False
        if not self.pool.started:
            self.pool.start()
        return self.run(lambda conn: None)

    def stop(self) -> defer.Deferred:
        """Close the connection and stop the pool without blocking the reactor; Deferred."""
        self._stopping = True
        if self._reconnect_call is not None and self._reconnect_call.active():
            self._reconnect_call.cancel()
        self._reconnect_call = None
        if not self.pool.started:
            return defer.succeed(None)
        done = self.run_blocking(self._close)
        done.addBoth(lambda _: self._stop_pool())
        return done

    def _stop_pool(self) -> defer.Deferred:
        # ThreadPool.stop joins its threads: do it from a thread of its own.
        finished = defer.Deferred()

        def stop():
            self.pool.stop()
            self.reactor.callFromThread(finished.callback, None)

        threading.Thread(target=stop, name="nova-libvirt-stop", daemon=True).start()
        return finished

    def _close(self) -> None:
        with self._conn_lock:
            if self._conn is not None:
                self._forget(self._conn)
                self._conn = None

    # -- running calls ------------------------------------------------------------
    def run(self, fn, *args, **kwargs) -> defer.Deferred:
        """Run ``fn(conn, *args, **kwargs)`` on the pool; Deferred with its result.

        libvirt errors become HypervisorError (NovaErrors ``fn`` raises pass through).
        """
        return deferToThreadPool(self.reactor, self.pool, self._call, fn, args, kwargs)

    def run_blocking(self, fn, *args, **kwargs) -> defer.Deferred:
        """Run blocking work that needs no connection (file I/O) on the pool; Deferred."""
        return deferToThreadPool(self.reactor, self.pool, fn, *args, **kwargs)

    def _call(self, fn, args, kwargs):
        conn = self.connection()
        try:
            return fn(conn, *args, **kwargs)
        except libvirt.libvirtError as exc:
            if is_connection_error(exc):
                self._drop(conn)
            raise exception.HypervisorError(reason=exc.get_error_message() or str(exc)) from None

    def connection(self) -> libvirt.virConnect:
        """Return a live connection, opening one if needed. Pool threads only."""
        with self._conn_lock:
            conn = self._conn
            if conn is not None:
                try:
                    if conn.isAlive() == 1:
                        return conn
                except libvirt.libvirtError:
                    pass
                self._forget(conn)
                self._conn = None
            try:
                conn = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                raise exception.HypervisorError(
                    reason=f"cannot connect to libvirt at {self.uri}: {exc.get_error_message() or exc}"
                ) from None
            try:
                conn.registerCloseCallback(self._closed_cb, None)
            except libvirt.libvirtError:
                pass  # drivers without a daemon (test:///) never close on their own
            self._callback_id = conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle_cb, None
            )
            self._conn = conn
            self.connections_opened += 1
            return conn

    def _drop(self, conn) -> None:
        with self._conn_lock:
            if self._conn is conn:
                self._forget(conn)
                self._conn = None

    def _forget(self, conn) -> None:
        for undo in (
            lambda: conn.domainEventDeregisterAny(self._callback_id),
            conn.unregisterCloseCallback,
            conn.close,
        ):
            try:
                undo()
            except libvirt.libvirtError:
                pass
        self._callback_id = None

    # -- from the event thread ------------------------------------------------------
    def _lifecycle_cb(self, conn, dom, event, detail, opaque) -> None:
        state = event_power_state(event, detail)
        if state is None:
            return
        self.reactor.callFromThread(self._deliver, dom.UUIDString(), state)

    def _closed_cb(self, conn, reason, opaque) -> None:
        self.reactor.callFromThread(self._connection_closed, conn, reason)

    # -- on the reactor -------------------------------------------------------------
    def _deliver(self, uuid: str, state: int) -> None:
        if self.on_event is not None and not self._stopping:
            self.on_event(uuid, state)

    def _connection_closed(self, conn, reason) -> None:
        if self._stopping:
            return
        log.warn("connection to libvirt at {uri} closed (reason {reason}); reconnecting", uri=self.uri, reason=reason)
        self.run_blocking(self._drop, conn).addBoth(lambda _: self._schedule_reconnect(0))

    def _schedule_reconnect(self, delay: float) -> None:
        if self._stopping or (self._reconnect_call is not None and self._reconnect_call.active()):
            return
        self._reconnect_call = self.clock.callLater(delay, self._reconnect)

    def _reconnect(self) -> None:
        self._reconnect_call = None

        def ok(_):
            log.info("reconnected to libvirt at {uri}", uri=self.uri)
            if self.on_reconnect is not None:
                self.on_reconnect()

        def failed(failure):
            log.warn("libvirt at {uri} still unreachable: {error}", uri=self.uri, error=failure.value)
            self._schedule_reconnect(self.reconnect_interval)

        self.run(lambda conn: None).addCallbacks(ok, failed)
