"""Engines for SQLite (embedded) and MySQL/MariaDB, and the transient-error test."""

from __future__ import annotations

import os

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from nova_twisted import exception
from nova_twisted.conf import mask_url

#: MySQL error numbers worth a retry: deadlock, lock wait timeout, server gone
#: away, lost connection, can't connect (the server may be restarting).
TRANSIENT_MYSQL_ERRORS = {1205, 1213, 2003, 2006, 2013, 2055, 1927, 4031}


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create(url: str, pool_size: int = 8, connect_timeout: int = 5) -> Engine:
    """Return an Engine for ``url``, tuned for its backend.

    SQLite gets WAL, foreign keys and a busy timeout, and its file's
    directory is created. MySQL gets a connect/read timeout so that a
    server that is down gives an error instead of a hang.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
        engine = sa.create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=max(pool_size, 1),
            max_overflow=0,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if database and database != ":memory:":
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if backend in ("mysql", "mariadb"):
        query = dict(parsed.query)
        query.setdefault("charset", "utf8mb4")
        parsed = parsed.set(query=query)
        # No pre-ping (a round trip per transaction): a connection the server dropped fails its
        # transaction with a "lost connection" error, which Database.run_sync retries on a new one.
        return sa.create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=3600,
            connect_args={
                "connect_timeout": connect_timeout,
                "read_timeout": 300,
                "write_timeout": 300,
            },
            isolation_level="READ COMMITTED",
        )
    return sa.create_engine(parsed, pool_pre_ping=True)


def is_transient(exc: BaseException) -> bool:
    """True when retrying the transaction may succeed (deadlock, lost connection)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        orig = exc.orig
        args = getattr(orig, "args", ())
        if args and isinstance(args[0], int):
            return args[0] in TRANSIENT_MYSQL_ERRORS
        text = str(orig).lower()
        return "database is locked" in text or "deadlock" in text
    return False


def is_connection_error(exc: BaseException) -> bool:
    """True when the error means the database server cannot be reached at all."""
    if isinstance(exc, OperationalError):
        args = getattr(exc.orig, "args", ())
        if args and isinstance(args[0], int):
            return args[0] in (2002, 2003, 2005, 2006, 2013, 1045, 1049)
        return "unable to open database" in str(exc.orig).lower()
    return False


def connection_error(url: str, exc: BaseException) -> exception.DBConnectionError:
    """Return the one-line error a user sees when the database is unreachable."""
    orig = getattr(exc, "orig", exc)
    args = getattr(orig, "args", ())
    reason = args[1] if len(args) > 1 and isinstance(args[1], str) else str(orig)
    return exception.DBConnectionError(url=mask_url(url), reason=reason.splitlines()[0])


def ensure_database(url: str, connect_timeout: int = 5) -> bool:
    """Create the MySQL database named in ``url`` if it is missing; True if created."""
    parsed = make_url(url)
    if parsed.get_backend_name() not in ("mysql", "mariadb") or not parsed.database:
        return False
    server = create(parsed.set(database="").render_as_string(hide_password=False), 1, connect_timeout)
    try:
        with server.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :n"),
                {"n": parsed.database},
            ).first()
            if exists:
                return False
            quoted = parsed.database.replace("`", "``")
            conn.execute(sa.text(f"CREATE DATABASE `{quoted}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
            return True
    finally:
        server.dispose()
