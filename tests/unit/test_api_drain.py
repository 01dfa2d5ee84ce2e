"""nova-api on stop: no new requests, the ones in flight finish (bounded), then it exits."""

from twisted.internet import defer, task
from twisted.trial import unittest
from twisted.web.test.requesthelper import DummyRequest

from nova_twisted.api.http import JSONRouter
from nova_twisted.api.service import Drain


class DrainTests(unittest.TestCase):
    def setUp(self):
        self.release = defer.Deferred()
        self.router = JSONRouter()

        async def slow(req):
            await self.release
            return {"done": True}

        self.router.add("GET", "/slow", slow, auth=False)
        self.clock = task.Clock()
        self.drain = Drain([self.router], self.clock, timeout=30)
        self.drain.startService()

    def request(self):
        request = DummyRequest([b"slow"])
        request.path = b"/slow"
        self.router.render(request)
        return request

    def test_stop_waits_for_the_request_in_flight_then_it_is_answered(self):
        request = self.request()
        self.assertEqual(self.router.in_flight, 1)
        stopping = self.drain.stopService()
        self.assertNoResult(stopping)
        self.release.callback(None)
        self.successResultOf(stopping)
        self.assertEqual(request.finished, 1)
        self.assertIn(b'"done":true', b"".join(request.written))
        self.assertEqual(self.router.in_flight, 0)

    def test_stop_gives_up_after_the_timeout(self):
        self.request()
        stopping = self.drain.stopService()
        self.clock.advance(29)
        self.assertNoResult(stopping)
        self.clock.advance(1)
        self.successResultOf(stopping)

    def test_stop_with_nothing_in_flight_is_immediate(self):
        self.assertIsNone(self.drain.stopService())
