"""The AMQP transport's pieces that need no broker: framing, URLs, options, offline behaviour."""

from __future__ import annotations

import struct

from twisted.internet import task
from twisted.internet.testing import StringTransport
from twisted.trial import unittest
from txamqp.connection import Frame

from nova_twisted import exception
from nova_twisted.conf import load as load_conf
from nova_twisted.rpc import get_transport, serializer, transport_options
from nova_twisted.rpc.amqp import AMQPTransport, BrokerURL
from nova_twisted.rpc.amqp_protocol import AMQPProtocol, NovaDelegate, ProtocolError, load_spec


def frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    return struct.pack("!BHI", frame_type, channel, len(payload)) + payload + b"\xce"


def shortstr(text: str) -> bytes:
    raw = text.encode()
    return bytes([len(raw)]) + raw


def deliver(channel, tag, delivery_tag, routing_key, body, correlation_id=None, reply_to=None, headers=b""):
    method = struct.pack("!HH", 60, 60) + shortstr(tag) + struct.pack("!QB", delivery_tag, 0)
    method += shortstr("nova") + shortstr(routing_key)
    flags = 0x8000
    props = shortstr("application/json")
    if headers:
        flags |= 0x2000
        props += struct.pack("!I", len(headers)) + headers
    if correlation_id:
        flags |= 0x0400
        props += shortstr(correlation_id)
    if reply_to:
        flags |= 0x0200
        props += shortstr(reply_to)
    header = struct.pack("!HHQH", 60, 0, len(body), flags) + props
    chunks = [body[i : i + 5] for i in range(0, len(body), 5)] or []
    return frame(1, channel, method) + frame(2, channel, header) + b"".join(frame(3, channel, c) for c in chunks)


class ProtocolFramingTests(unittest.TestCase):
    """The fast lane parses what RabbitMQ sends and writes what it expects."""

    def setUp(self):
        self.proto = AMQPProtocol(NovaDelegate(), "/", load_spec(), heartbeat=0, clock=task.Clock())
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)
        self.transport.clear()
        self.got = []
        self.proto.consumers["tag-1"] = lambda delivery, body: self.got.append((delivery, body))

    def test_a_delivery_split_across_reads_and_body_frames_arrives_whole(self):
        data = deliver(5, "tag-1", 7, "compute.host-a", b'{"method":"x","args":{}}', "cid-1", "reply_q")
        for i in range(0, len(data), 3):
            self.proto.dataReceived(data[i : i + 3])
        [(delivery, body)] = self.got
        self.assertEqual(body, b'{"method":"x","args":{}}')
        self.assertEqual(
            (delivery.channel, delivery.delivery_tag, delivery.routing_key, delivery.correlation_id, delivery.reply_to),
            (5, 7, "compute.host-a", "cid-1", "reply_q"),
        )

    def test_headers_of_dead_lettered_messages_are_skipped(self):
        table = shortstr("x-death") + b"S" + struct.pack("!I", 3) + b"abc"
        self.proto.dataReceived(deliver(5, "tag-1", 1, "q", b"{}", "cid", None, headers=table))
        self.assertEqual(self.got[0][0].correlation_id, "cid")

    def test_many_deliveries_in_one_read_all_arrive_in_order(self):
        data = b"".join(deliver(5, "tag-1", n, "q", b'{"n":%d}' % n) for n in range(1, 51))
        self.proto.dataReceived(data)
        self.assertEqual([d.delivery_tag for d, _ in self.got], list(range(1, 51)))

    def test_a_delivery_for_a_cancelled_consumer_is_given_back(self):
        self.proto.dataReceived(deliver(5, "gone", 9, "q", b"{}"))
        self.assertEqual(self.got, [])
        written = self.transport.value()
        self.assertEqual(struct.unpack("!BHIHHQB", written[:20]), (1, 5, 13, 60, 120, 9, 2))  # nack, requeue

    def test_publisher_confirms_are_reported_with_their_multiple_flag(self):
        confirms = []
        self.proto.on_confirm = lambda tag, multiple, ok: confirms.append((tag, multiple, ok))
        ack = frame(1, 1, struct.pack("!HHQB", 60, 80, 12, 1))
        nack = frame(1, 1, struct.pack("!HHQB", 60, 120, 13, 0))
        self.proto.dataReceived(ack + nack)
        self.assertEqual(confirms, [(12, True, True), (13, False, False)])

    def test_a_returned_message_reaches_on_return(self):
        returned = []
        self.proto.on_return = lambda delivery, body: returned.append((delivery.routing_key, delivery.reply_code, body))
        method = struct.pack("!HH", 60, 50) + struct.pack("!H", 312) + shortstr("NO_ROUTE") + shortstr("nova")
        method += shortstr("scheduler")
        header = struct.pack("!HHQH", 60, 0, 2, 0)
        self.proto.dataReceived(frame(1, 1, method) + frame(2, 1, header) + frame(3, 1, b"{}"))
        self.assertEqual(returned, [("scheduler", 312, b"{}")])

    def test_garbage_from_the_broker_drops_the_connection(self):
        self.proto.dataReceived(b"\x01\x00\x01\x00\x00\x00\x01\x00\x00")  # bad frame end
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(ProtocolError)), 1)

    def test_publish_writes_what_the_spec_decodes(self):
        self.proto.publish(
            1, "nova", "scheduler", b'{"a":1}', mandatory=True, persistent=True, correlation_id="c1", reply_to="r1"
        )
        data = self.transport.value()
        frames = []
        while data:
            size = struct.unpack("!I", data[3:7])[0]
            frames.append(self.proto._unpack_frame(data[: 8 + size]))
            data = data[8 + size :]
        method, header, body = frames
        self.assertEqual(method.payload.method.name, "publish")
        self.assertEqual(method.payload.args[1:4], ("nova", "scheduler", True))
        self.assertEqual(header.payload.properties["delivery-mode"], 2)
        self.assertEqual(header.payload.properties["correlation-id"], "c1")
        self.assertEqual(header.payload.properties["reply-to"], "r1")
        self.assertEqual(header.payload.properties["content-type"], "application/json")
        self.assertEqual(body.payload.content, '{"a":1}')

    def test_large_bodies_are_split_into_frames_the_broker_accepts(self):
        self.proto.frame_max = 4096
        body = b"x" * 10000
        self.proto.publish(1, "nova", "q", body)
        data = self.transport.value()
        sizes = []
        while data:
            frame_type, _, size = struct.unpack("!BHI", data[:7])
            if frame_type == 3:
                sizes.append(size)
            data = data[8 + size :]
        self.assertEqual(sum(sizes), 10000)
        self.assertTrue(all(size <= 4096 - 8 for size in sizes))

    def test_control_frames_and_fast_frames_keep_their_order(self):
        self.proto.send_frame(Frame(0, _heartbeat_payload()))
        self.proto.ack(3, 1)
        data = self.transport.value()
        self.assertEqual(data[0], 8)  # the heartbeat went first
        self.assertEqual(struct.unpack("!BHIHHQB", data[8:28])[3:6], (60, 80, 1))


def _heartbeat_payload():
    from txamqp.connection import Heartbeat

    return Heartbeat()


class HeartbeatTests(unittest.TestCase):
    """Heartbeats are sent when idle, and a silent broker is dropped."""

    def setUp(self):
        self.clock = task.Clock()
        self.proto = AMQPProtocol(NovaDelegate(), "/", load_spec(), heartbeat=2, clock=self.clock)
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)
        self.proto.started.fire()
        self.transport.clear()

    def test_an_idle_connection_sends_heartbeats(self):
        self.clock.advance(1)
        self.assertEqual(self.transport.value(), b"\x08\x00\x00\x00\x00\x00\x00\xce")

    def test_a_broker_silent_for_three_intervals_is_dropped(self):
        for _ in range(6):
            self.clock.advance(1)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(self.transport.disconnecting)

    def test_traffic_from_the_broker_keeps_the_connection(self):
        for _ in range(20):
            self.clock.advance(1)
            self.proto.dataReceived(b"\x08\x00\x00\x00\x00\x00\x00\xce")
        self.assertFalse(self.transport.disconnecting)


class BrokerURLTests(unittest.TestCase):
    def test_parts_and_defaults(self):
        url = BrokerURL("amqp://nova:p%40ss@rabbit1:5673/nova%2Fprod")
        self.assertEqual(
            (url.user, url.password, url.host, url.port, url.vhost), ("nova", "p@ss", "rabbit1", 5673, "nova/prod")
        )
        self.assertEqual(BrokerURL("amqp://h/").vhost, "/")
        self.assertEqual((BrokerURL("amqps://h").port, BrokerURL("amqps://h").tls), (5671, True))

    def test_the_password_never_shows(self):
        self.assertNotIn("s3cret", str(BrokerURL("amqp://u:s3cret@h/")))

    def test_other_schemes_are_refused(self):
        self.assertRaises(exception.ConfigurationError, BrokerURL, "http://h/")


class TransportOptionsTests(unittest.TestCase):
    def test_the_transport_section_configures_the_transport(self):
        conf = load_conf([], require_files=False).with_overrides(
            {("transport", "url"): ["amqp://u:p@h1/", "amqp://u:p@h2/"], ("transport", "prefetch"): 7}
        )
        self.assertIn("heartbeat", transport_options(conf.transport))
        transport = get_transport(conf.transport, clock=task.Clock())
        self.assertIsInstance(transport, AMQPTransport)
        self.assertEqual([u.host for u in transport.urls], ["h1", "h2"])
        self.assertEqual(transport.prefetch, 7)

    def test_unknown_options_are_refused(self):
        self.assertRaises(exception.ConfigurationError, AMQPTransport, ["amqp://h/"], clock=task.Clock(), prefetchh=1)

    def test_sending_before_connecting_fails_at_once(self):
        transport = AMQPTransport(["amqp://h/"], clock=task.Clock())
        self.failureResultOf(transport.cast("t", None, {}), exception.MessagingError)
        self.failureResultOf(transport.call("t", None, {"method": "m"}, 5), exception.MessagingError)
        self.assertEqual(transport._calls, {})


class SerializerTests(unittest.TestCase):
    def test_datetimes_survive_the_trip(self):
        import datetime as dt

        message = {"at": dt.datetime(2026, 1, 2, 3, 4, 5), "nested": [{"at": dt.datetime(2020, 1, 1)}]}
        self.assertEqual(serializer.decode(serializer.encode(message)), message)

    def test_non_objects_are_refused(self):
        self.assertRaises(ValueError, serializer.decode, b"[1]")
        self.assertRaises(ValueError, serializer.decode, b"\xff")
