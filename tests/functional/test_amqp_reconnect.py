"""The AMQP transport when its connection breaks, on the real RabbitMQ behind a TCP proxy.

The proxy (in this process) can cut every connection, refuse new ones and
freeze traffic, so each failure is exact and fast without touching the
broker itself (the broker restart is in the contract suite).
"""

from __future__ import annotations

import functools
import time
import uuid

import pytest
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.trial import unittest

from nova_twisted import exception
from nova_twisted.context import RequestContext
from nova_twisted.rpc import RPCClient, RPCServer, get_transport
from tests.contract import transport_rabbit
from tests.contract.test_transport_contract import ContractManager
from tests.contract.transport_proxy import BrokerProxy

pytestmark = [pytest.mark.rabbitmq]


def sleep(seconds: float) -> defer.Deferred:
    return deferLater(reactor, seconds, lambda: None)


async def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await sleep(0.02)


def async_test(fn):
    @functools.wraps(fn)
    def wrapper(self):
        return defer.ensureDeferred(fn(self))

    return wrapper


class AMQPReconnectTests(unittest.TestCase):
    """Reconnection, held messages and heartbeats on a real broker behind a proxy."""

    timeout = 60

    @classmethod
    def setUpClass(cls):
        cls.vhost, cls.direct_url = transport_rabbit.create_vhost()

    @classmethod
    def tearDownClass(cls):
        transport_rabbit.delete_vhost(cls.vhost)

    def setUp(self):
        self.proxy = BrokerProxy()
        self.proxy.accept()
        self.addCleanup(self.proxy.refuse)
        self.addCleanup(self.proxy.cut)
        self.ctxt = RequestContext()
        self.topic = f"r{uuid.uuid4().hex[:10]}"

    async def transport(self, through_proxy: bool = True, **options):
        settings = {"heartbeat": 0, "reconnect_delay": 0.05, "reconnect_max_delay": 0.2, **options}
        url = self.proxy.url(self.direct_url) if through_proxy else self.direct_url
        transport = get_transport([url], clock=reactor, **settings)
        await transport.connect()
        self.addCleanup(transport.close)
        return transport

    async def serve(self, transport, manager=None):
        manager = manager or ContractManager()
        server = RPCServer(transport, self.topic, None, manager)
        await server.start()
        self.addCleanup(server.stop)
        return manager

    @async_test
    async def test_casts_made_while_the_broker_is_unreachable_are_sent_once_it_is_back(self):
        manager = await self.serve(await self.transport(through_proxy=False))
        client_transport = await self.transport()
        client = RPCClient(client_transport, self.topic)
        await client.cast(self.ctxt, "record", value="before")
        await self.proxy.refuse()
        self.proxy.cut()
        await wait_until(lambda: not client_transport.connected, what="the disconnect")
        held = [client.cast(self.ctxt, "record", value=i) for i in range(5)]
        await sleep(0.3)
        self.assertEqual([d.called for d in held], [False] * 5, "casts claimed success while disconnected")
        self.proxy.accept()
        await defer.gatherResults(held)
        await wait_until(lambda: len(manager.seen) >= 6, what="the held casts")
        self.assertEqual(manager.seen, ["before", 0, 1, 2, 3, 4])

    @async_test
    async def test_a_cast_waiting_for_its_queue_declaration_survives_a_dropped_connection(self):
        client_transport = await self.transport()
        first = client_transport.protocol
        self.proxy.freeze()  # the declaration never gets its answer on this connection
        pending = RPCClient(client_transport, self.topic).cast(self.ctxt, "record", value="kept")
        await sleep(0.3)
        self.assertFalse(pending.called)
        self.proxy.cut()
        await pending
        self.assertIsNot(client_transport.protocol, first)
        manager = await self.serve(await self.transport(through_proxy=False))
        await wait_until(lambda: manager.seen, what="the cast")
        self.assertEqual(manager.seen, ["kept"])

    @async_test
    async def test_casts_fail_with_messaging_error_when_the_broker_stays_away(self):
        client_transport = await self.transport(queued_message_timeout=0.3)
        await self.proxy.refuse()
        self.proxy.cut()
        await wait_until(lambda: not client_transport.connected, what="the disconnect")
        started = time.monotonic()
        with self.assertRaises(exception.MessagingError) as caught:
            await RPCClient(client_transport, self.topic).cast(self.ctxt, "record", value=1)
        self.assertLess(time.monotonic() - started, 5)
        self.assertIn("unreachable", str(caught.exception))

    @async_test
    async def test_held_messages_are_bounded_and_the_overflow_fails_at_once(self):
        client_transport = await self.transport(max_queued_messages=3)
        await self.proxy.refuse()
        self.proxy.cut()
        await wait_until(lambda: not client_transport.connected, what="the disconnect")
        client = RPCClient(client_transport, self.topic)
        held = [client.cast(self.ctxt, "record", value=i) for i in range(3)]
        with self.assertRaises(exception.MessagingError):
            await client.cast(self.ctxt, "record", value=3)
        self.assertEqual([d.called for d in held], [False] * 3)
        self.proxy.accept()
        await defer.gatherResults(held)

    @async_test
    async def test_call_in_flight_when_the_connection_drops_is_sent_again_and_answered(self):
        await self.serve(await self.transport(through_proxy=False))
        client_transport = await self.transport()
        pending = RPCClient(client_transport, self.topic, timeout=20).call(
            self.ctxt, "echo_after", value="answer", delay=0.5
        )
        await sleep(0.1)
        self.proxy.cut()
        self.assertEqual(await pending, "answer")

    @async_test
    async def test_call_in_flight_fails_with_messaging_error_when_retries_are_off(self):
        await self.serve(await self.transport(through_proxy=False))
        client_transport = await self.transport(retry_calls_on_reconnect=False)
        pending = RPCClient(client_transport, self.topic, timeout=20).call(
            self.ctxt, "echo_after", value="answer", delay=0.5
        )
        await sleep(0.1)
        started = time.monotonic()
        self.proxy.cut()
        with self.assertRaises(exception.MessagingError) as caught:
            await pending
        self.assertNotIsInstance(caught.exception, exception.MessagingTimeout)
        self.assertLess(time.monotonic() - started, 2)

    @async_test
    async def test_server_consumes_again_after_its_connection_comes_back(self):
        manager = await self.serve(await self.transport())
        client = RPCClient(await self.transport(through_proxy=False), self.topic, timeout=10)
        self.assertEqual(await client.call(self.ctxt, "echo", value=1), 1)
        self.proxy.cut()
        await client.cast(self.ctxt, "record", value="while away")
        self.assertEqual(await client.call(self.ctxt, "echo", value=2), 2)
        await wait_until(lambda: manager.seen, what="the cast")
        self.assertEqual(manager.seen, ["while away"])

    @async_test
    async def test_a_silent_broker_is_noticed_by_heartbeats_and_left(self):
        client_transport = await self.transport(heartbeat=1)
        first = client_transport.protocol
        await self.serve(await self.transport(through_proxy=False))
        self.proxy.freeze()  # the socket stays open, nothing moves
        started = time.monotonic()
        await wait_until(lambda: client_transport.protocol is not first, timeout=10, what="the dead connection dropped")
        self.assertLess(time.monotonic() - started, 6)
        await wait_until(lambda: client_transport.connected, what="the reconnect")
        self.assertEqual(await RPCClient(client_transport, self.topic, timeout=10).call(self.ctxt, "echo", value=5), 5)
