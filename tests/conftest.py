"""Shared fixtures: scratch databases on SQLite and on the real MariaDB."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

MYSQL_SERVER = os.environ.get("NOVA_TEST_MYSQL", "mysql+pymysql://root:@127.0.0.1:3306")
RABBIT_URL = os.environ.get("NOVA_TEST_RABBIT", "amqp://guest:guest@127.0.0.1:5672/")


def mysql_scratch_url() -> tuple[str, callable]:
    """Create an empty MariaDB database; return its URL and a function dropping it."""
    name = f"nova_test_{uuid.uuid4().hex[:12]}"
    server = sa.create_engine(MYSQL_SERVER + "/")
    with server.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")

    def drop():
        with server.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        server.dispose()

    return f"{MYSQL_SERVER}/{name}", drop


@pytest.fixture
def mysql_url():
    url, drop = mysql_scratch_url()
    yield url
    drop()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path}/nova.sqlite"


@pytest.fixture(params=["sqlite", "mysql"])
def any_db_url(request, tmp_path):
    """Each test using it runs once on SQLite and once on the real MariaDB."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/nova.sqlite"
    else:
        url, drop = mysql_scratch_url()
        yield url
        drop()
