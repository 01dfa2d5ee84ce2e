"""The service base: periodic tasks, registration, heartbeats, graceful stop."""

from twisted.internet import defer, task
from twisted.trial import unittest

from nova_twisted import utils
from nova_twisted.db import migration, services
from nova_twisted.db.api import Database
from nova_twisted.rpc import Manager, RPCClient
from nova_twisted.rpc.memory import MemoryTransport
from nova_twisted.service import DatabaseServiceGroup, NovaService, PeriodicTask


class PeriodicTaskTests(unittest.TestCase):
    def test_first_run_after_jitter_then_every_interval(self):
        clock = task.Clock()
        runs = []
        periodic = PeriodicTask("t", lambda: runs.append(clock.seconds()), 10, clock, jitter=4, rng=lambda: 0.5)
        periodic.start()
        clock.advance(1.9)
        self.assertEqual(runs, [])
        clock.advance(0.1)
        self.assertEqual(runs, [2.0])
        clock.pump([10, 10])
        self.assertEqual(runs, [2.0, 12.0, 22.0])

    def test_a_slow_run_never_overlaps_the_next(self):
        clock = task.Clock()
        started, pending = [], []

        def slow():
            started.append(clock.seconds())
            d = defer.Deferred()
            pending.append(d)
            return d

        periodic = PeriodicTask("slow", slow, 5, clock)
        periodic.start()
        clock.advance(0)
        clock.pump([5, 5, 5])
        self.assertEqual(len(started), 1, "a second run started while the first was in progress")
        pending[0].callback(None)
        clock.advance(5)
        self.assertEqual(len(started), 2)

    def test_a_failing_run_keeps_the_schedule(self):
        clock = task.Clock()
        runs = []

        def flaky():
            runs.append(clock.seconds())
            raise RuntimeError("boom")

        periodic = PeriodicTask("flaky", flaky, 5, clock)
        periodic.start()
        clock.advance(0)
        clock.pump([5, 5])
        self.assertEqual(runs, [0, 5, 10])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 3, "each failed run is logged")

    def test_stop_waits_for_the_run_in_progress(self):
        clock = task.Clock()
        pending = []
        periodic = PeriodicTask("t", lambda: pending.append(defer.Deferred()) or pending[-1], 5, clock)
        periodic.start()
        clock.advance(0)
        stopped = periodic.stop()
        self.assertNoResult(stopped)
        pending[0].callback(None)
        self.successResultOf(stopped)


class EchoManager(Manager):
    def __init__(self):
        self.release = defer.Deferred()
        self.started = []

    def slow(self, ctxt, value):
        self.started.append(value)
        return self.release.addCallback(lambda _: value)


class NovaServiceTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        url = f"sqlite:///{self.mktemp()}.sqlite"
        migration.sync(url)
        from twisted.internet import reactor

        self.db = Database(url, reactor)
        self.db.startService()
        self.addCleanup(self.db.stopService)
        self.transport = MemoryTransport("memory://service-tests", clock=self.clock)
        self.manager = EchoManager()
        self.svc = NovaService(
            "nova-test",
            "host-a",
            "testtopic",
            self.manager,
            transport=self.transport,
            servicegroup=DatabaseServiceGroup(self.db, self.clock),
            clock=self.clock,
            report_interval=10,
            periodic_fuzzy_delay=0,
            graceful_shutdown_timeout=30,
        )

    @defer.inlineCallbacks
    def test_registers_and_heartbeats_every_report_interval(self):
        self.svc.startService()
        yield self.svc.registered
        rows = yield self.db.run(services.list_services)
        self.assertEqual([(r["binary"], r["host"], r["topic"]) for r in rows], [("nova-test", "host-a", "testtopic")])
        first = rows[0]["report_count"]
        for _ in range(3):
            self.clock.advance(10)
            yield self.db.run(lambda s: None)  # let the heartbeat's transaction finish
        row = (yield self.db.run(services.list_services))[0]
        self.assertGreaterEqual(row["report_count"], first + 3)
        self.assertTrue(services.is_up(row, utils.utcnow(self.clock), 60))
        self.clock.advance(0)
        yield self.svc.stopService()

    @defer.inlineCallbacks
    def test_stop_finishes_in_flight_work_and_takes_no_new_work(self):
        self.svc.startService()
        yield self.svc.registered
        caller = MemoryTransport("memory://service-tests", clock=self.clock)
        yield caller.connect()
        client = RPCClient(caller, "testtopic", timeout=1000)
        from nova_twisted.context import RequestContext

        ctxt = RequestContext()
        first = client.call(ctxt, "slow", value=1)
        self.clock.advance(0)
        self.assertEqual(self.manager.started, [1])
        stopping = self.svc.stopService()
        self.clock.advance(0)
        second = client.call(ctxt, "slow", value=2)
        self.clock.advance(0)
        self.assertNoResult(stopping)
        self.manager.release.callback(None)
        self.clock.advance(0)
        yield stopping
        self.assertEqual((yield first), 1)
        self.assertEqual(self.manager.started, [1], "a stopping service took new work")
        self.assertNoResult(second)
        self.clock.advance(1000)
        self.failureResultOf(second)

    @defer.inlineCallbacks
    def test_stop_gives_up_after_the_graceful_timeout(self):
        self.svc.startService()
        yield self.svc.registered
        caller = MemoryTransport("memory://service-tests", clock=self.clock)
        yield caller.connect()
        from nova_twisted.context import RequestContext

        RPCClient(caller, "testtopic", timeout=1000).call(RequestContext(), "slow", value=1).addErrback(lambda f: None)
        self.clock.advance(0)
        stopping = self.svc.stopService()
        self.clock.advance(29)
        self.assertNoResult(stopping)
        self.clock.advance(1)
        yield stopping
