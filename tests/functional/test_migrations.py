"""The migrated schema is exactly the models, on SQLite and on the real MariaDB."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from nova_twisted import exception
from nova_twisted.db import engine as engines
from nova_twisted.db import migration
from nova_twisted.db.models import Base


def test_db_sync_builds_exactly_the_models(any_db_url):
    assert migration.sync(any_db_url) == migration.head()
    engine = engines.create(any_db_url, 1)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == [], f"migrations and models differ: {diff}"
        tables = set(sa.inspect(engine).get_table_names())
        assert {"instances", "services", "compute_nodes", "allocations", "flavors", "key_pairs"} <= tables
    finally:
        engine.dispose()


def test_db_sync_is_idempotent(any_db_url):
    migration.sync(any_db_url)
    assert migration.sync(any_db_url) == migration.head()


@pytest.mark.mysql
def test_db_sync_creates_the_mysql_database():
    from tests.conftest import MYSQL_SERVER

    name = "nova_test_created_by_sync"
    server = sa.create_engine(MYSQL_SERVER + "/")
    with server.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    try:
        assert migration.sync(f"{MYSQL_SERVER}/{name}", create_database=True) == migration.head()
        with server.connect() as conn:
            found = conn.exec_driver_sql(f"SHOW DATABASES LIKE '{name}'").fetchall()
        assert found
    finally:
        with server.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        server.dispose()


def test_db_sync_against_a_server_that_is_down_fails_clearly():
    with pytest.raises(exception.DBConnectionError) as info:
        migration.sync("mysql+pymysql://nova:pw@127.0.0.1:1/nova", connect_timeout=2)
    message = str(info.value)
    assert "127.0.0.1:1" not in message or "***" in message
    assert "pw@" not in message
    assert "Cannot connect to the database" in message
