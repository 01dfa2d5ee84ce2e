"""Schema migrations with Alembic: ``nova-manage db sync`` and friends."""

from __future__ import annotations

import os

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from nova_twisted.db import engine as engines

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")


def alembic_config(connection=None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", MIGRATIONS)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """Return the newest revision the code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def sync(url: str, revision: str = "head", create_database: bool = True, connect_timeout: int = 5) -> str | None:
    """Upgrade the database at ``url`` to ``revision``; return the version reached.

    On MySQL the database itself is created first when allowed.
    Raises DBConnectionError when the server cannot be reached.
    """
    from sqlalchemy.exc import SQLAlchemyError

    try:
        if create_database:
            engines.ensure_database(url, connect_timeout)
        engine = engines.create(url, pool_size=1, connect_timeout=connect_timeout)
        try:
            with engine.begin() as conn:
                command.upgrade(alembic_config(conn), revision)
            return version_of(engine)
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        if engines.is_connection_error(exc):
            raise engines.connection_error(url, exc) from None
        raise


def version_of(engine) -> str | None:
    """Return the revision the database at ``engine`` is at (None if never synced)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
