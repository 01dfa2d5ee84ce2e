"""The IMessageTransport contract (and the RPC layer over it), for every transport.

:class:`TransportContract` uses only the interface and the RPC layer; it is
run once over the in-memory transport and once over the AMQP transport on
the real RabbitMQ (a scratch vhost per test class). Two hooks differ per
transport: how a consumer dies mid-handler (an aborted listener in memory, a
SIGKILLed consumer process on RabbitMQ) and how raw bytes reach a queue.
"""

from __future__ import annotations

import functools
import time
import uuid

from twisted.internet import defer, reactor, threads
from twisted.internet.task import deferLater
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from nova_twisted import exception
from nova_twisted.context import RequestContext
from nova_twisted.rpc import Manager, RPCClient, RPCServer, get_transport
from nova_twisted.rpc.interfaces import IListener, IMessageTransport
from nova_twisted.rpc.memory import MemoryTransport


def async_test(fn):
    """Run an ``async def`` test method as a Deferred-returning trial test."""

    @functools.wraps(fn)
    def wrapper(self):
        return defer.ensureDeferred(fn(self))

    return wrapper


def sleep(seconds: float) -> defer.Deferred:
    return deferLater(reactor, seconds, lambda: None)


async def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await sleep(0.01)


class ContractManager(Manager):
    """The server side every contract test talks to."""

    RPC_API_VERSION = "1.3"

    def __init__(self, name: str = "server"):
        self.name = name
        self.seen: list = []

    def echo(self, ctxt, value):
        return value

    def whoami(self, ctxt):
        return self.name

    def record(self, ctxt, value):
        self.seen.append(value)

    def request_context(self, ctxt):
        return {"request_id": ctxt.request_id, "user_id": ctxt.user_id, "roles": ctxt.roles}

    def fail_ours(self, ctxt):
        raise exception.InstanceNotFound(instance_id="i-123")

    def fail_quota(self, ctxt):
        raise exception.QuotaExceeded(overs="instances", req=1, used=10, allowed=10)

    def fail_foreign(self, ctxt):
        raise KeyError("no such key")

    async def echo_after(self, ctxt, value, delay):
        await sleep(delay)
        return value


class TransportContract:
    """Contract tests; subclasses provide the transports and the two hooks below."""

    timeout = 60

    # -- hooks ---------------------------------------------------------------
    def make_transport(self, **options):
        """Return a new, unconnected transport on this test's bus."""
        raise NotImplementedError

    async def start_doomed_consumer(self, topic: str):
        """Start a consumer of ``topic`` whose handler never finishes.

        Returns an object with ``got`` (a Deferred firing with the message
        once its handler started) and ``kill()`` (dies as a crashed
        consumer would; returns a Deferred firing once it is dead).
        """
        raise NotImplementedError

    async def send_raw(self, transport, topic: str, body: bytes) -> None:
        """Put ``body`` (not a valid message) on ``topic``'s queue."""
        raise NotImplementedError

    async def dead_letters(self, transport, expected: list[bytes]) -> list[bytes]:
        """Return the dead-lettered bodies once all ``expected`` are among them (or after a timeout)."""
        raise NotImplementedError

    # -- helpers -------------------------------------------------------------
    async def connected(self, **options):
        transport = self.make_transport(**options)
        await transport.connect()
        self.addCleanup(transport.close)
        return transport

    def topic(self) -> str:
        return f"t{uuid.uuid4().hex[:10]}"

    async def serve(self, transport, topic, server=None, manager=None) -> ContractManager:
        manager = manager or ContractManager(server or "server")
        rpcserver = RPCServer(transport, topic, server, manager)
        await rpcserver.start()
        self.addCleanup(rpcserver.stop)
        return manager

    async def setUpTransports(self):
        self.client = await self.connected()
        self.server = await self.connected()
        self.ctxt = RequestContext(user_id="u1", project_id="p1", roles=["member"])

    # -- the interface -------------------------------------------------------
    @async_test
    async def test_transport_and_listener_provide_their_interfaces(self):
        await self.setUpTransports()
        verifyObject(IMessageTransport, self.client)
        self.assertTrue(self.client.connected)
        listener = await self.server.listen(self.topic(), "host-a", lambda message, reply_wanted: None)
        verifyObject(IListener, listener)
        self.assertEqual(listener.in_flight, 0)
        await listener.stop()

    @async_test
    async def test_delivery_never_runs_the_handler_inside_the_send(self):
        await self.setUpTransports()
        topic = self.topic()
        seen = []
        listener = await self.server.listen(topic, None, lambda message, reply_wanted: seen.append(message))
        self.addCleanup(listener.stop)
        d = self.client.cast(topic, None, {"n": 1})
        self.assertEqual(seen, [], "the handler ran inside cast()")
        await d
        await wait_until(lambda: seen, what="the cast")
        self.assertEqual(seen, [{"n": 1}])

    # -- cast ----------------------------------------------------------------
    @async_test
    async def test_cast_reaches_exactly_one_server_of_the_topic(self):
        await self.setUpTransports()
        topic = self.topic()
        a = await self.serve(self.server, topic, "host-a")
        b = await self.serve(self.server, topic, "host-b")
        client = RPCClient(self.client, topic)
        await defer.gatherResults([client.cast(self.ctxt, "record", value=i) for i in range(40)])
        await wait_until(lambda: len(a.seen) + len(b.seen) >= 40, what="40 casts")
        await sleep(0.2)
        self.assertEqual(sorted(a.seen + b.seen), list(range(40)))

    @async_test
    async def test_cast_to_a_server_reaches_only_that_server(self):
        await self.setUpTransports()
        topic = self.topic()
        a = await self.serve(self.server, topic, "host-a")
        b = await self.serve(self.server, topic, "host-b")
        client = RPCClient(self.client, topic).prepare(server="host-b")
        await defer.gatherResults([client.cast(self.ctxt, "record", value=i) for i in range(10)])
        await wait_until(lambda: len(b.seen) == 10, what="10 casts on host-b")
        self.assertEqual(a.seen, [])
        self.assertEqual(sorted(b.seen), list(range(10)))

    @async_test
    async def test_cast_made_before_any_server_listens_waits_for_one(self):
        await self.setUpTransports()
        topic = self.topic()
        await RPCClient(self.client, topic).cast(self.ctxt, "record", value="early")
        manager = await self.serve(self.server, topic, "host-a")
        await wait_until(lambda: manager.seen, what="the early cast")
        self.assertEqual(manager.seen, ["early"])

    @async_test
    async def test_cast_of_something_unencodable_fails_with_messaging_error(self):
        await self.setUpTransports()
        with self.assertRaises(exception.MessagingError):
            await self.client.cast(self.topic(), None, {"value": object()})

    # -- call ----------------------------------------------------------------
    @async_test
    async def test_call_returns_the_methods_result(self):
        await self.setUpTransports()
        topic = self.topic()
        await self.serve(self.server, topic, "host-a")
        client = RPCClient(self.client, topic, timeout=10)
        self.assertEqual(await client.call(self.ctxt, "echo", value={"a": [1, 2, "x"]}), {"a": [1, 2, "x"]})
        self.assertEqual(await client.prepare(server="host-a").call(self.ctxt, "whoami"), "host-a")

    @async_test
    async def test_request_context_travels_with_the_call(self):
        await self.setUpTransports()
        topic = self.topic()
        await self.serve(self.server, topic)
        seen = await RPCClient(self.client, topic, timeout=10).call(self.ctxt, "request_context")
        self.assertEqual(seen, {"request_id": self.ctxt.request_id, "user_id": "u1", "roles": ["member"]})

    @async_test
    async def test_call_made_before_the_server_listens_is_answered_once_it_does(self):
        await self.setUpTransports()
        topic = self.topic()
        pending = RPCClient(self.client, topic, timeout=10).call(self.ctxt, "echo", value=7)
        await sleep(0.2)
        self.assertFalse(pending.called)
        await self.serve(self.server, topic)
        self.assertEqual(await pending, 7)

    @async_test
    async def test_call_without_answer_fails_with_messaging_timeout(self):
        await self.setUpTransports()
        topic = self.topic()
        started = time.monotonic()
        with self.assertRaises(exception.MessagingTimeout) as caught:
            await RPCClient(self.client, topic, timeout=0.5).call(self.ctxt, "echo", value=1)
        elapsed = time.monotonic() - started
        self.assertGreaterEqual(elapsed, 0.45)
        self.assertLess(elapsed, 5)
        self.assertIn(topic, str(caught.exception))

    @async_test
    async def test_slow_method_fails_the_call_with_messaging_timeout(self):
        await self.setUpTransports()
        topic = self.topic()
        await self.serve(self.server, topic)
        with self.assertRaises(exception.MessagingTimeout):
            await RPCClient(self.client, topic, timeout=0.3).call(self.ctxt, "echo_after", value=1, delay=1.0)

    @async_test
    async def test_our_errors_come_back_as_the_same_type(self):
        await self.setUpTransports()
        topic = self.topic()
        await self.serve(self.server, topic)
        client = RPCClient(self.client, topic, timeout=10)
        with self.assertRaises(exception.InstanceNotFound) as caught:
            await client.call(self.ctxt, "fail_ours")
        self.assertIn("i-123", str(caught.exception))
        self.assertEqual(caught.exception.code, 404)
        with self.assertRaises(exception.QuotaExceeded):
            await client.call(self.ctxt, "fail_quota")

    @async_test
    async def test_foreign_errors_come_back_as_remote_error(self):
        await self.setUpTransports()
        topic = self.topic()
        await self.serve(self.server, topic)
        with self.assertRaises(exception.RemoteError) as caught:
            await RPCClient(self.client, topic, timeout=10).call(self.ctxt, "fail_foreign")
        self.assertEqual(caught.exception.exc_type, "KeyError")
        self.assertIn("no such key", caught.exception.value)

    @async_test
    async def test_call_to_a_missing_method_fails_at_once(self):
        await self.setUpTransports()
        topic = self.topic()
        await self.serve(self.server, topic)
        started = time.monotonic()
        with self.assertRaises(exception.NoSuchMethod):
            await RPCClient(self.client, topic, timeout=30).call(self.ctxt, "no_such_method")
        with self.assertRaises(exception.NoSuchMethod):
            await RPCClient(self.client, topic, timeout=30).call(self.ctxt, "_private")
        self.assertLess(time.monotonic() - started, 5)

    @async_test
    async def test_unsupported_version_is_refused_with_a_clear_error(self):
        await self.setUpTransports()
        topic = self.topic()
        await self.serve(self.server, topic)
        client = RPCClient(self.client, topic, timeout=10)
        self.assertEqual(await client.prepare(version="1.2").call(self.ctxt, "echo", value=1), 1)
        for version in ("1.4", "2.0"):
            with self.assertRaises(exception.UnsupportedVersion) as caught:
                await client.prepare(version=version).call(self.ctxt, "echo", value=1)
            self.assertIn(version, str(caught.exception))

    @async_test
    async def test_concurrent_calls_get_their_own_replies_in_any_order(self):
        await self.setUpTransports()
        topic = self.topic()
        await self.serve(self.server, topic)
        client = RPCClient(self.client, topic, timeout=20)
        # Later calls answer first: replies come back interleaved.
        calls = [client.call(self.ctxt, "echo_after", value=i, delay=(20 - i) * 0.01) for i in range(20)]
        finished = []
        for i, d in enumerate(calls):
            d.addCallback(lambda value, i=i: finished.append(i) or value)
        results = await defer.gatherResults(calls)
        self.assertEqual(results, list(range(20)))
        self.assertNotEqual(finished, sorted(finished), "replies did not interleave")

    @async_test
    async def test_close_fails_calls_still_waiting(self):
        await self.setUpTransports()
        topic = self.topic()
        pending = RPCClient(self.client, topic, timeout=30).call(self.ctxt, "echo", value=1)
        await sleep(0.1)
        await self.client.close()
        with self.assertRaises(exception.MessagingError):
            await pending

    @async_test
    async def test_close_does_not_wait_for_a_handler_that_never_finishes(self):
        await self.setUpTransports()
        topic = self.topic()
        stuck = []
        await self.server.listen(topic, None, lambda message, reply_wanted: stuck.append(1) or defer.Deferred())
        await self.client.cast(topic, None, {"n": 1})
        await wait_until(lambda: stuck, what="the handler to start")
        closing = self.server.close()
        await wait_until(lambda: closing.called, timeout=10, what="close()")

    @async_test
    async def test_large_messages_travel_whole(self):
        await self.setUpTransports()
        topic = self.topic()
        await self.serve(self.server, topic)
        big = "x" * 400_000 + "end"
        self.assertEqual(await RPCClient(self.client, topic, timeout=20).call(self.ctxt, "echo", value=big), big)

    # -- fanout --------------------------------------------------------------
    @async_test
    async def test_fanout_reaches_every_server_of_the_topic(self):
        await self.setUpTransports()
        topic = self.topic()
        managers = [await self.serve(self.server, topic, f"host-{i}") for i in range(3)]
        other = await self.connected()
        managers.append(await self.serve(other, topic, "host-other-process"))
        await RPCClient(self.client, topic).fanout(self.ctxt, "record", value="hello")
        await wait_until(lambda: all(m.seen for m in managers), what="the fanout on every server")
        await sleep(0.2)
        self.assertEqual([m.seen for m in managers], [["hello"]] * 4)

    # -- reliability ---------------------------------------------------------
    @async_test
    async def test_stop_waits_for_handlers_in_flight_and_acknowledges_them(self):
        await self.setUpTransports()
        topic = self.topic()
        release = defer.Deferred()
        seen = []

        def handler(message, reply_wanted):
            seen.append(message)
            return release

        listener = await self.server.listen(topic, None, handler)
        await self.client.cast(topic, None, {"n": 1})
        await wait_until(lambda: seen, what="the cast")
        stopping = listener.stop()
        await sleep(0.1)
        self.assertFalse(stopping.called)
        self.assertEqual(listener.in_flight, 1)
        release.callback(None)
        await stopping
        self.assertEqual(listener.in_flight, 0)
        # It was acknowledged: a new consumer does not get it again.
        again = []
        listener2 = await self.server.listen(topic, None, lambda message, reply_wanted: again.append(message))
        self.addCleanup(listener2.stop)
        await self.client.cast(topic, None, {"n": 2})
        await wait_until(lambda: again, what="the second cast")
        await sleep(0.1)
        self.assertEqual(again, [{"n": 2}])

    @async_test
    async def test_message_is_delivered_again_when_its_consumer_dies_mid_handler(self):
        await self.setUpTransports()
        topic = self.topic()
        doomed = await self.start_doomed_consumer(topic)
        await self.client.cast(topic, None, {"id": "precious"})
        self.assertEqual(await doomed.got, {"id": "precious"})
        await doomed.kill()
        survivor = []
        listener = await self.server.listen(topic, None, lambda message, reply_wanted: survivor.append(message))
        self.addCleanup(listener.stop)
        await wait_until(lambda: survivor, what="the redelivery")
        self.assertEqual(survivor, [{"id": "precious"}])

    @async_test
    async def test_undecodable_message_is_dead_lettered_and_the_consumer_goes_on(self):
        await self.setUpTransports()
        topic = self.topic()
        manager = await self.serve(self.server, topic)
        await self.send_raw(self.client, topic, b"\xff\xfe not json")
        await self.send_raw(self.client, topic, b"[1, 2, 3]")
        await RPCClient(self.client, topic).cast(self.ctxt, "record", value="after")
        await wait_until(lambda: manager.seen, what="the good cast")
        self.assertEqual(manager.seen, ["after"])
        expected = [b"\xff\xfe not json", b"[1, 2, 3]"]
        letters = await self.dead_letters(self.client, expected)
        self.assertEqual([body for body in expected if body in letters], expected)
        self.assertEqual(await RPCClient(self.client, topic, timeout=10).call(self.ctxt, "echo", value=3), 3)


# -- the in-memory transport --------------------------------------------------
class _MemoryDoomed:
    def __init__(self, listener, got):
        self.listener = listener
        self.got = got

    def kill(self):
        self.listener.abort()
        return defer.succeed(None)


class MemoryTransportContractTests(TransportContract, unittest.TestCase):
    """The contract over the in-memory transport (the real reactor as its clock)."""

    def setUp(self):
        self.url = f"memory://contract-{uuid.uuid4().hex}"

    def make_transport(self, **options):
        return get_transport(self.url, clock=reactor, **options)

    async def start_doomed_consumer(self, topic):
        got = defer.Deferred()

        def handler(message, reply_wanted):
            if not got.called:
                got.callback(message)
            return defer.Deferred()

        listener = await self.server.listen(topic, None, handler)
        return _MemoryDoomed(listener, got)

    async def send_raw(self, transport, topic, body):
        transport.broker.publish(topic, body, {})

    async def dead_letters(self, transport, expected):
        letters = transport.broker.dead_letters
        await wait_until(lambda: all(body in letters for body in expected), what="dead letters")
        return list(letters)

    def test_memory_transport_is_chosen_for_memory_urls(self):
        self.assertIsInstance(get_transport("memory://x", clock=reactor), MemoryTransport)


# -- the AMQP transport on the real RabbitMQ ---------------------------------
class _ProcessDoomed:
    def __init__(self, process):
        self.process = process
        self.got = process.wait_got()
        self.got.addCallback(lambda line: __import__("json").loads(line[4:]))

    def kill(self):
        return self.process.kill()


class AMQPTransportContractTests(TransportContract, unittest.TestCase):
    """The contract over the AMQP transport, on the real RabbitMQ, in a scratch vhost."""

    @classmethod
    def setUpClass(cls):
        from tests.contract import transport_rabbit

        cls.rabbit = transport_rabbit
        cls.vhost, cls.url = transport_rabbit.create_vhost()

    @classmethod
    def tearDownClass(cls):
        cls.rabbit.delete_vhost(cls.vhost)

    def make_transport(self, **options):
        settings = {"heartbeat": 10, "reconnect_delay": 0.1, "reconnect_max_delay": 1.0, **options}
        return get_transport([self.url], clock=reactor, **settings)

    async def start_doomed_consumer(self, topic):
        process = self.rabbit.ConsumerProcess(self.url, topic, self.client.exchange)
        self.addCleanup(lambda: process.process.pid and process.process.signalProcess("KILL"))
        await process.wait_ready()
        return _ProcessDoomed(process)

    async def send_raw(self, transport, topic, body):
        # Bytes the encoder would never produce (the topic's queue exists: a server listens).
        await self.rabbit.publish_raw(transport, topic, body)

    async def dead_letters(self, transport, expected):
        return await self.rabbit.collect_dead_letters(transport, expected)

    @async_test
    async def test_connect_to_a_closed_port_fails_with_messaging_error(self):
        transport = get_transport(["amqp://guest:guest@127.0.0.1:1/"], clock=reactor, connect_timeout=2)
        with self.assertRaises(exception.MessagingError) as caught:
            await transport.connect()
        self.assertIn("127.0.0.1:1", str(caught.exception))
        self.assertNotIn("guest:guest", str(caught.exception))

    @async_test
    async def test_wrong_password_or_vhost_fails_with_a_clear_messaging_error(self):
        bad_password = self.url.replace("guest:guest@", "guest:wrong-s3cret@")
        with self.assertRaises(exception.MessagingError) as caught:
            await get_transport([bad_password], clock=reactor).connect()
        self.assertIn("user and password", str(caught.exception))
        self.assertNotIn("wrong-s3cret", str(caught.exception))
        no_vhost = self.rabbit.vhost_url(f"missing_{uuid.uuid4().hex[:6]}")
        with self.assertRaises(exception.MessagingError) as caught:
            await get_transport([no_vhost], clock=reactor).connect()
        self.assertIn("virtual host", str(caught.exception))

    @async_test
    async def test_connect_goes_on_to_the_next_url_of_a_cluster(self):
        transport = get_transport(["amqp://guest:guest@127.0.0.1:1/", self.url], clock=reactor)
        await transport.connect()
        self.addCleanup(transport.close)
        self.assertTrue(transport.connected)
        self.assertEqual(transport.broker.port, 5672)

    @async_test
    async def test_a_cast_to_a_queue_the_broker_will_not_declare_fails_loudly(self):
        await self.setUpTransports()
        topic = self.topic()
        _, ch = await self.rabbit.open_raw_channel(self.client, self.rabbit.RAW_CHANNEL)
        await ch.queue_declare(queue=topic, durable=False)  # not what the transport declares
        connection = self.client.protocol
        with self.assertRaises(exception.MessagingError) as caught:
            await self.client.cast(topic, None, {"n": 1})
        self.assertIn("PRECONDITION_FAILED", str(caught.exception))
        self.assertIs(self.client.protocol, connection, "a refused declaration cost the connection")
        other = self.topic()
        manager = await self.serve(self.server, other)
        await RPCClient(self.client, other).cast(self.ctxt, "record", value="still works")
        await wait_until(lambda: manager.seen, what="the next cast")
        self.assertEqual(manager.seen, ["still works"])

    @async_test
    async def test_broker_restart_mid_stream_loses_no_cast_and_settles_every_call(self):
        await self.setUpTransports()
        topic = self.topic()
        manager = await self.serve(self.server, topic)
        client = RPCClient(self.client, topic, timeout=30)
        casts, calls = [], []
        restart = None
        try:
            for i in range(600):
                casts.append(client.cast(self.ctxt, "record", value=i))
                if i % 10 == 0:
                    calls.append((i, client.call(self.ctxt, "echo", value=i)))
                if i == 100:
                    restart = threads.deferToThread(self.rabbit.restart_broker_app)
                await sleep(0.01)
            await restart
        finally:
            if restart is not None and not restart.called:
                await defer.DeferredList([restart], consumeErrors=True)
            # Whatever happened above, leave the broker running.
            await threads.deferToThread(self.rabbit.ensure_broker_running)
        cast_results = await defer.DeferredList(casts, consumeErrors=True)
        failed_casts = [r for ok, r in cast_results if not ok]
        self.assertEqual(failed_casts, [], "some casts failed")
        await wait_until(lambda: set(manager.seen) >= set(range(600)), timeout=60, what="every cast")
        answered = errors = 0
        for i, d in calls:
            try:
                self.assertEqual(await d, i)
                answered += 1
            except exception.MessagingError:
                errors += 1
        self.assertEqual(answered + errors, len(calls))
        self.assertGreater(answered, 0)
        # The transports are connected again and work.
        self.assertEqual(await client.call(self.ctxt, "echo", value="after"), "after")

    test_broker_restart_mid_stream_loses_no_cast_and_settles_every_call.timeout = 180
