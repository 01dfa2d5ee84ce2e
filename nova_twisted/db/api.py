"""Run database work off the reactor: every call returns a Deferred.

``Database.run(fn, *args)`` runs ``fn(session, *args)`` in one transaction
on the database thread pool and fires with its result. Transient errors
(deadlock, lock wait timeout, lost connection) roll back and retry the
whole function with backoff, so ``fn`` must be a pure transaction: it may
run more than once. A database that cannot be reached fails with
DBConnectionError after the retries, never hangs.
"""

from __future__ import annotations

import time

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session
from twisted.application.service import Service
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from nova_twisted import exception
from nova_twisted.conf import mask_url
from nova_twisted.db import engine as engines

log = Logger(namespace="nova.db")


class Database(Service):
    """The process's database: an engine plus the thread pool that uses it.

    A Twisted Service: starting it starts the pool, stopping it waits for
    the transactions in flight, then closes the connections.
    """

    name = "database"

    def __init__(
        self,
        url: str,
        reactor,
        pool_size: int = 8,
        max_retries: int = 5,
        retry_interval: float = 0.2,
        connect_timeout: int = 5,
    ):
        self.url = url
        self.reactor = reactor
        self.sqlite = engines.is_sqlite(url)
        # SQLite allows one writer at a time: one thread avoids lock contention.
        threads = 1 if self.sqlite else pool_size
        self.engine = engines.create(url, pool_size=threads, connect_timeout=connect_timeout)
        self.max_retries = max_retries
        self.retry_interval = retry_interval
        self.threadpool = ThreadPool(minthreads=1, maxthreads=threads, name="nova-db")
        self._shutdown_trigger = None

    @classmethod
    def from_config(cls, conf, reactor) -> "Database":
        db = conf.database
        return cls(
            db.connection,
            reactor,
            pool_size=db.max_pool_size,
            max_retries=db.max_retries,
            retry_interval=db.retry_interval,
            connect_timeout=db.connect_timeout,
        )

    def startService(self):
        super().startService()
        if not self.threadpool.started:
            self.threadpool.start()
            self._shutdown_trigger = self.reactor.addSystemEventTrigger("during", "shutdown", self._stop_pool)

    def stopService(self):
        super().stopService()
        self._stop_pool()

    def _stop_pool(self):
        if self.threadpool.started:
            self.threadpool.stop()
            self.engine.dispose()
        if self._shutdown_trigger is not None:
            try:
                self.reactor.removeSystemEventTrigger(self._shutdown_trigger)
            except (ValueError, KeyError):
                pass
            self._shutdown_trigger = None

    def run(self, fn, *args, **kwargs):
        """Run ``fn(session, *args, **kwargs)`` in one transaction; Deferred of its result."""
        if not self.threadpool.started:
            self.startService()
        return deferToThreadPool(self.reactor, self.threadpool, self.run_sync, fn, *args, **kwargs)

    def run_sync(self, fn, *args, **kwargs):
        """The blocking form of :meth:`run`, for threads and command-line tools."""
        attempt = 0
        while True:
            try:
                with Session(self.engine, expire_on_commit=False) as session:
                    with session.begin():
                        return fn(session, *args, **kwargs)
            except IntegrityError as exc:
                raise exception.DBDuplicateEntry(reason=_first_line(exc.orig)) from exc
            except SQLAlchemyError as exc:
                if engines.is_transient(exc) and attempt < self.max_retries:
                    delay = self.retry_interval * (2**attempt)
                    attempt += 1
                    log.warn(
                        "transient database error, retry {attempt} in {delay:.2f}s: {error}",
                        attempt=attempt,
                        delay=delay,
                        error=_first_line(getattr(exc, "orig", exc)),
                    )
                    time.sleep(delay)
                    continue
                if engines.is_connection_error(exc):
                    raise engines.connection_error(self.url, exc) from exc
                raise exception.DBError(reason=_first_line(getattr(exc, "orig", exc))) from exc

    def check_connection(self) -> None:
        """Connect once, synchronously; raise DBConnectionError if the database is down."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except SQLAlchemyError as exc:
            raise engines.connection_error(self.url, exc) from None

    def __repr__(self) -> str:
        return f"<Database {mask_url(self.url)}>"


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
