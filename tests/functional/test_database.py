"""The thread-pooled database runner on the real MariaDB: retries and clear failures."""

import threading
import time

import pytest
import sqlalchemy as sa
from twisted.internet import defer
from twisted.trial import unittest

from nova_twisted import exception
from nova_twisted.db import migration
from nova_twisted.db.api import Database
from nova_twisted.db.models import QuotaClass
from tests.conftest import mysql_scratch_url


@pytest.mark.mysql
def test_a_deadlocked_transaction_is_retried_and_both_commit():
    url, drop = mysql_scratch_url()
    try:
        migration.sync(url)
        db = Database(url, reactor=None, pool_size=2, max_retries=5, retry_interval=0.05)
        db.run_sync(
            lambda s: s.add_all([QuotaClass(class_name="default", resource=r, hard_limit=0) for r in ("a", "b")])
        )
        barrier = threading.Barrier(2, timeout=10)
        attempts = {"x": 0, "y": 0}

        def update(session, name, first, second):
            attempts[name] += 1
            session.execute(
                sa.update(QuotaClass).where(QuotaClass.resource == first).values(hard_limit=QuotaClass.hard_limit + 1)
            )
            if attempts[name] == 1:
                barrier.wait()  # both hold their first row lock now
            session.execute(
                sa.update(QuotaClass).where(QuotaClass.resource == second).values(hard_limit=QuotaClass.hard_limit + 10)
            )

        threads = [
            threading.Thread(target=db.run_sync, args=(update, "x", "a", "b")),
            threading.Thread(target=db.run_sync, args=(update, "y", "b", "a")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        limits = dict(db.run_sync(lambda s: [(q.resource, q.hard_limit) for q in s.scalars(sa.select(QuotaClass))]))
        assert limits == {"a": 11, "b": 11}, "both transactions must have committed exactly once"
        assert sorted(attempts.values()) == [1, 2], "exactly one side was rolled back by the deadlock and retried"
        db.engine.dispose()
    finally:
        drop()


class DatabaseDownTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_a_database_that_is_down_fails_fast_with_a_clear_error(self):
        from twisted.internet import reactor

        db = Database(
            "mysql+pymysql://nova:secretpw@127.0.0.1:1/nova",
            reactor,
            pool_size=1,
            max_retries=1,
            retry_interval=0.01,
            connect_timeout=2,
        )
        db.startService()
        self.addCleanup(db.stopService)
        started = time.monotonic()
        with self.assertRaises(exception.DBConnectionError) as info:
            yield db.run(lambda s: s.execute(sa.text("SELECT 1")))
        self.assertLess(time.monotonic() - started, 10)
        self.assertIn(
            "Cannot connect to the database at mysql+pymysql://nova:***@127.0.0.1:1/nova", str(info.exception)
        )
        self.assertNotIn("secretpw", str(info.exception))

    @defer.inlineCallbacks
    def test_work_runs_off_the_reactor_thread(self):
        from twisted.internet import reactor

        db = Database(f"sqlite:///{self.mktemp()}.sqlite", reactor)
        db.startService()
        self.addCleanup(db.stopService)
        main = threading.current_thread()
        ran_in = yield db.run(lambda s: threading.current_thread())
        self.assertIsNot(ran_in, main)


@pytest.mark.mysql
def test_a_pooled_connection_the_server_dropped_is_replaced_without_an_error():
    url, drop = mysql_scratch_url()
    try:
        db = Database(url, reactor=None, pool_size=1, max_retries=3, retry_interval=0.01)
        first = db.run_sync(lambda s: s.execute(sa.text("SELECT CONNECTION_ID()")).scalar())
        killer = sa.create_engine(url)
        with killer.begin() as conn:
            conn.exec_driver_sql(f"KILL {int(first)}")
        killer.dispose()
        second = db.run_sync(lambda s: s.execute(sa.text("SELECT CONNECTION_ID()")).scalar())
        assert second != first, "the dead connection was replaced"
        db.engine.dispose()
    finally:
        drop()
