"""The RPC layer's per-message logging and the request context on the wire."""

from __future__ import annotations

from twisted.internet import task
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from nova_twisted import rpc
from nova_twisted.context import RequestContext
from nova_twisted.rpc import Manager, RPCClient, RPCServer
from nova_twisted.rpc.memory import MemoryTransport


class Echo(Manager):
    def echo(self, ctxt, value):
        return {"value": value, "request_id": ctxt.request_id, "roles": ctxt.roles, "user": ctxt.user_name}


class MessageLoggingTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.transport = MemoryTransport(f"memory://logging-{id(self)}", clock=self.clock)
        self.transport.connect()
        RPCServer(self.transport, "echo", None, Echo()).start()
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.addCleanup(rpc.set_message_logging, False)

    def call(self, ctxt):
        d = RPCClient(self.transport, "echo", timeout=5).call(ctxt, "echo", value=1)
        self.clock.advance(0)
        self.clock.advance(0)
        return self.successResultOf(d)

    def rpc_events(self):
        return [e for e in self.events if e.get("log_namespace") == "nova.rpc" and "ctxt" in e]

    def test_messages_are_logged_on_both_sides_with_their_context_when_enabled(self):
        rpc.set_message_logging(True)
        ctxt = RequestContext(user_id="u1", roles=["member"])
        self.call(ctxt)
        logged = self.rpc_events()
        self.assertEqual([e["log_format"].split()[0] for e in logged], ["call", "handling"])
        self.assertEqual({e["ctxt"].request_id for e in logged}, {ctxt.request_id})

    def test_messages_are_not_logged_when_disabled(self):
        rpc.set_message_logging(False)
        self.call(RequestContext())
        self.assertEqual(self.rpc_events(), [])

    def test_the_context_arrives_whole_though_empty_fields_stay_home(self):
        ctxt = RequestContext(user_id="u1", roles=["member", "reader"], user_name=None)
        reply = self.call(ctxt)
        self.assertEqual(
            reply, {"value": 1, "request_id": ctxt.request_id, "roles": ["member", "reader"], "user": None}
        )
