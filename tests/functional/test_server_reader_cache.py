"""GET /servers/{id}'s read path keeps rows on SQLite only while nothing was committed since they were read.

The cache is checked against what a fresh SELECT gives after writes by
the same Database (as the in-process conductor does), by another
connection and by another process, after writes to the instance's other
tables (metadata, faults), and under a stream of commits racing the reads.
MySQL is never cached.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import types

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from nova_twisted import exception, utils
from nova_twisted.db import flavors, instances, migration
from nova_twisted.db import servers as db_servers
from nova_twisted.db.api import Database
from tests.conftest import mysql_scratch_url
from tests.identity_fixtures import async_test

EXTRAS = frozenset({"fault", "host_az", "tags"})
NAME = db_servers.COLUMN_NAMES.index("display_name")


def _seed(session, name: str = "name-0") -> str:
    """One ACTIVE server of project p1 (and flavor 1 if there is none yet); its uuid."""
    try:
        flavor = flavors.get_by_flavorid(session, "1")
    except exception.FlavorNotFound:
        flavor = flavors.create(
            session, {"flavorid": "1", "name": "m1.tiny", "memory_mb": 512, "vcpus": 1, "root_gb": 1}
        )
    row = {
        "uuid": utils.generate_uuid(),
        "project_id": "p1",
        "user_id": "u1",
        "display_name": name,
        "instance_type_id": flavor["id"],
        "flavor": flavors.embedded(flavor),
        "vm_state": "active",
        "host": "h1",
        "node": "h1",
        "system_metadata": {},
        "metadata": {"k": "v0"},
    }
    action = {"action": "create", "request_id": "req-1", "user_id": "u1", "project_id": "p1"}
    return instances.create(session, [row], {}, action, None, None, utils.utcnow())[0]["uuid"]


class SQLiteCacheTests(unittest.TestCase):
    def setUp(self):
        self.path = self.mktemp() + ".sqlite"
        self.url = f"sqlite:///{self.path}"
        migration.sync(self.url)
        self.database = Database(self.url, reactor, pool_size=2)
        self.database.startService()
        self.addCleanup(self.database.stopService)
        self.reader = db_servers.ServerReader(self.database, reactor)

    async def read(self, uuid: str, project: str | None = "p1"):
        """(row, whether it came from the cache)."""
        found = self.reader.get(uuid, project, "no", EXTRAS)
        if isinstance(found, db_servers.Row):
            return found, True
        return await found, False

    async def read_cached(self, uuid: str):
        """Read until the reader's watch is open and the row is kept; return the kept row."""
        for _ in range(200):
            row, cached = await self.read(uuid)
            if cached:
                return row
            await task.deferLater(reactor, 0.01, lambda: None)
        raise AssertionError("the reader never kept the row")

    @async_test
    async def test_rows_are_kept_until_any_commit_then_read_again(self):
        uuid = await self.database.run(_seed)
        row, cached = await self.read(uuid)
        self.assertFalse(cached)
        self.assertEqual(row.raw[NAME], "name-0")
        kept = await self.read_cached(uuid)
        self.assertEqual(kept.raw[NAME], "name-0")

        # Written by this process's Database (the in-process conductor's path).
        await self.database.run(instances.update, uuid, {"display_name": "name-1"})
        row, cached = await self.read(uuid)
        self.assertEqual((row.raw[NAME], cached), ("name-1", False))
        self.assertEqual((await self.read_cached(uuid)).raw[NAME], "name-1")

        # Written by another process, to another table (the metadata the view shows).
        script = (
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "c.execute(\"UPDATE instance_metadata SET value = 'v2' WHERE instance_uuid = ?\", (sys.argv[2],)); "
            "c.commit()"
        )
        subprocess.run([sys.executable, "-c", script, self.path, uuid], check=True)
        row, cached = await self.read(uuid)
        self.assertFalse(cached)
        self.assertEqual(row.decoded()["metadata"], {"k": "v2"})

        # A fault added by another connection of this process.
        await self.read_cached(uuid)
        connection = sqlite3.connect(self.path)
        connection.execute(
            "INSERT INTO instance_faults (instance_uuid, code, message, details, host, created_at) "
            "VALUES (?, 500, 'boom', '', 'h1', '2026-01-01 00:00:00')",
            (uuid,),
        )
        connection.execute("UPDATE instances SET vm_state = 'error' WHERE uuid = ?", (uuid,))
        connection.commit()
        connection.close()
        row, cached = await self.read(uuid)
        self.assertFalse(cached)
        self.assertEqual(row.decoded()["fault"]["message"], "boom")

    @async_test
    async def test_a_kept_row_is_still_hidden_from_other_projects(self):
        uuid = await self.database.run(_seed)
        await self.read_cached(uuid)
        with self.assertRaises(exception.InstanceNotFound):
            self.reader.get(uuid, "p2", "no", EXTRAS)
        with self.assertRaises(exception.InstanceNotFound):
            self.reader.get(uuid, "p1", "only", EXTRAS)
        row, cached = await self.read(uuid, project=None)
        self.assertTrue(cached)
        self.assertEqual(row.uuid, uuid)

    @async_test
    async def test_no_read_is_older_than_a_commit_made_before_it(self):
        """A writer thread commits a counter as fast as it can; every read sees at least the last one before it."""
        uuid = await self.database.run(_seed)
        await self.read_cached(uuid)
        committed = [0]
        stop = threading.Event()

        def write():
            connection = sqlite3.connect(self.path, timeout=30)
            try:
                for number in range(1, 100000):
                    if stop.is_set():
                        return
                    connection.execute("UPDATE instances SET display_name = ? WHERE uuid = ?", (f"name-{number}", uuid))
                    connection.commit()
                    committed[0] = number
                    if number % 20 == 0:
                        stop.wait(0.005)  # let whole runs of reads through between commits
            finally:
                connection.close()

        writer = threading.Thread(target=write)
        writer.start()
        hits = misses = 0
        try:
            deadline = reactor.seconds() + 3.0
            while reactor.seconds() < deadline:
                before = committed[0]
                reads = [self.read(uuid) for _ in range(5)]
                for row, cached in await defer.gatherResults([defer.ensureDeferred(r) for r in reads]):
                    self.assertGreaterEqual(int(row.raw[NAME].split("-")[1]), before)
                    hits += cached
                    misses += not cached
        finally:
            stop.set()
            writer.join()
        self.assertGreater(committed[0], 10)
        self.assertGreater(hits, 0)
        self.assertGreater(misses, 0)


class NotCachedTests(unittest.TestCase):
    def test_mysql_and_in_memory_sqlite_are_never_cached(self):
        url, drop = mysql_scratch_url()
        self.addCleanup(drop)
        database = Database(url, reactor, pool_size=1)
        self.addCleanup(database.stopService)
        self.assertIsNone(db_servers.DataVersion.of(database))
        for memory in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"):
            self.assertIsNone(db_servers.DataVersion.of(types.SimpleNamespace(url=memory)), memory)
        self.assertIsNotNone(db_servers.DataVersion.of(types.SimpleNamespace(url="sqlite:////tmp/x.sqlite")))


class BatchingTests(unittest.TestCase):
    """On MariaDB (never cached) reads asked while one SELECT runs wait for it and then share the next."""

    def setUp(self):
        url, drop = mysql_scratch_url()
        self.addCleanup(drop)
        migration.sync(url)
        self.database = Database(url, reactor, pool_size=2)
        self.database.startService()
        self.addCleanup(self.database.stopService)
        self.reader = db_servers.ServerReader(self.database, reactor)
        self.selects = []
        self.release = threading.Event()  # holds the first SELECT until the test lets it go
        read = self.reader._read

        def counting(engine, uuids, extras):
            self.selects.append(list(uuids))
            if len(self.selects) == 1:
                self.release.wait(10)
            return read(engine, uuids, extras)

        self.reader._read = counting

    @async_test
    async def test_reads_asked_during_a_select_share_the_next_one(self):
        uuids = [await self.database.run(_seed, f"vm-{n}") for n in range(6)]
        first = [self.reader.get(uuid, "p1", "no", EXTRAS) for uuid in uuids[:3]]
        self.assertTrue(all(isinstance(d, defer.Deferred) for d in first))
        later = []
        for uuid in uuids[3:]:  # one per reactor turn, while the first SELECT is held
            await task.deferLater(reactor, 0.01, lambda: None)
            later.append(self.reader.get(uuid, "p1", "no", EXTRAS))
        self.assertEqual(len(self.selects), 1)
        self.release.set()
        rows = await defer.gatherResults(first + later)
        self.assertEqual([row.uuid for row in rows], uuids)
        self.assertEqual([sorted(s) for s in self.selects], [sorted(uuids[:3]), sorted(uuids[3:])])

    @async_test
    async def test_a_failed_select_fails_its_batch_and_the_next_reads_work(self):
        uuid = await self.database.run(_seed, "vm")
        read = self.reader._read
        calls = []

        def failing_once(engine, uuids, extras):
            calls.append(uuids)
            if len(calls) == 1:
                raise exception.DBError(reason="gone")
            return read(engine, uuids, extras)

        self.reader._read = failing_once
        self.release.set()
        with self.assertRaises(exception.DBError):
            await self.reader.get(uuid, "p1", "no", EXTRAS)
        row = await self.reader.get(uuid, "p1", "no", EXTRAS)
        self.assertEqual(row.uuid, uuid)
        with self.assertRaises(exception.InstanceNotFound):
            await self.reader.get(uuid, "p2", "no", EXTRAS)


class ThreadStartFailureTests(unittest.TestCase):
    @async_test
    async def test_a_reader_thread_that_cannot_connect_fails_the_reads_and_the_next_one_works(self):
        path = self.mktemp() + ".sqlite"
        url = f"sqlite:///{path}"
        migration.sync(url)
        database = Database(url, reactor, pool_size=1)
        database.startService()
        self.addCleanup(database.stopService)
        uuid = await database.run(_seed)
        reader = db_servers.ServerReader(database, reactor)
        real = db_servers.engines.create
        calls = []

        def failing_once(*args, **kwargs):
            calls.append(args)
            if len(calls) == 1:
                raise RuntimeError("no engine")
            return real(*args, **kwargs)

        self.patch(db_servers.engines, "create", failing_once)
        with self.assertRaises(exception.DBError):
            await reader.get(uuid, "p1", "no", EXTRAS)
        row = await reader.get(uuid, "p1", "no", EXTRAS)
        self.assertEqual(row.uuid, uuid)
