"""What every twistd plugin shares: options, configuration, logging, start-up checks.

A plugin's ``makeService`` calls :func:`make_daemon`, which reads the
configuration, sets up logging, checks that the database and the bus can be
reached (one clear line and exit status 1 if not) and asks the area's
builder for the service tree.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import sys
from urllib.parse import urlsplit

from twisted.application.service import MultiService
from twisted.logger import ILogObserver, Logger
from twisted.python import usage

from nova_twisted import conf as confmod
from nova_twisted import exception
from nova_twisted.log import make_observer

log = Logger(namespace="nova.daemon")

_exit_code = 0


class NovaOptions(usage.Options):
    """Flags every nova daemon takes."""

    optFlags = [["debug", "d", "Log debug events too."]]
    optParameters = [
        ["host", None, None, "This host's name (overrides [DEFAULT] host)."],
    ]

    def __init__(self):
        super().__init__()
        self["config"] = []

    def opt_config(self, path):
        """A nova.conf file to read; may be given more than once (later wins)."""
        self["config"].append(path)

    opt_c = opt_config

    def overrides(self) -> dict:
        values = {}
        if self["host"]:
            values[("DEFAULT", "host")] = self["host"]
        if self["debug"]:
            values[("DEFAULT", "debug")] = "true"
        return values


def die(binary: str, message: str) -> None:
    """Print the one line a user sees for a start-up failure and exit 1."""
    sys.stderr.write(f"{binary}: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(1)


def fatal(message: str, failure=None) -> None:
    """A running daemon cannot go on: log one line, stop the reactor, exit 1."""
    global _exit_code
    from twisted.internet import reactor

    log.critical("{message}", message=message)
    if failure is not None:
        log.debug("{tb}", tb=failure.getTraceback())
    _exit_code = 1
    if reactor.running:
        reactor.stop()


def _exit_with_code():
    if _exit_code:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_code)


def load_config(binary: str, options: NovaOptions) -> confmod.Config:
    try:
        return confmod.load(options["config"], options.overrides())
    except confmod.ConfigError as exc:
        die(binary, str(exc))


def check_database(binary: str, conf) -> None:
    """Exit with one line unless the database answers and has the current schema."""
    from nova_twisted.db import engine as engines
    from nova_twisted.db import migration

    url = conf.database.connection
    db_engine = engines.create(url, pool_size=1, connect_timeout=conf.database.connect_timeout)
    try:
        try:
            current = migration.version_of(db_engine)
        except Exception as exc:  # noqa: BLE001 - reported as one line
            die(binary, str(engines.connection_error(url, exc)))
        if current != migration.head():
            die(
                binary,
                f"the database at {confmod.mask_url(url)} is at schema {current or 'none'}, "
                f"not {migration.head()}: run `nova-manage --config <file> db sync`",
            )
    finally:
        db_engine.dispose()


def check_transport(binary: str, conf, in_process: bool) -> None:
    """Exit with one line unless the configured bus can be reached from here."""
    urls = conf.transport.url
    scheme = urls[0].split(":", 1)[0] if urls else ""
    if scheme == "memory":
        if not in_process:
            die(
                binary,
                "[transport] url memory:// only works inside nova-all; "
                "set an amqp://user:password@host:5672/ URL to run services separately",
            )
        return
    errors = []
    for url in urls:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
        try:
            with socket.create_connection((host, port), timeout=5):
                return
        except OSError as exc:
            errors.append(f"{confmod.mask_url(url)}: {exc.strerror or exc}")
    die(binary, "cannot reach the message broker at " + "; ".join(errors))


class DaemonRoot(MultiService):
    """Root of a daemon's service tree: installs the log observer and SIGTERM handling."""

    def __init__(self, binary: str, conf):
        super().__init__()
        self.binary = binary
        self.conf = conf
        self.observer = make_observer(binary, conf.DEFAULT.host, conf.DEFAULT.debug, conf.DEFAULT.log_file)

    def setServiceParent(self, parent):
        # twistd asks the application for its log observer after makeService.
        set_component = getattr(parent, "setComponent", None)
        if set_component is not None:
            set_component(ILogObserver, self.observer)
        return super().setServiceParent(parent)

    def startService(self):
        from twisted.internet import reactor

        reactor.callWhenRunning(_install_sigterm, reactor)
        super().startService()


def _install_sigterm(reactor) -> None:
    # twistd re-raises SIGTERM after shutdown (exit status -15); a graceful
    # stop on SIGTERM is a normal exit for us, status 0.
    def on_sigterm(signum, frame):
        log.info("SIGTERM: shutting down gracefully")
        reactor.callFromThread(reactor.stop)

    signal.signal(signal.SIGTERM, on_sigterm)


def make_daemon(binary: str, options: NovaOptions, builder, *, uses_database: bool, in_process: bool = False):
    """Return the service tree for ``binary``: config, logging and start-up checks done.

    ``builder(conf, reactor)`` returns the area's service. Exits 1 with one
    line on bad configuration, an unreachable database or bus.
    """
    from twisted.internet import reactor

    atexit.register(_exit_with_code)
    conf = load_config(binary, options)
    from nova_twisted import rpc

    # Every RPC message, with its request context, is logged on both sides under --debug.
    rpc.set_message_logging(conf.DEFAULT.debug)
    if uses_database:
        check_database(binary, conf)
    check_transport(binary, conf, in_process)
    root = DaemonRoot(binary, conf)
    try:
        service = builder(conf, reactor)
    except (exception.NovaError, confmod.ConfigError) as exc:
        die(binary, str(exc))
    service.setServiceParent(root)
    return root


def not_built(binary: str, what: str):
    """For daemons whose service does not exist yet: say so, exit non-zero."""
    die(binary, f"{what} is not built yet in nova-twisted; this daemon cannot run.")
