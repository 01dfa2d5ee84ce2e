"""The AMQP 0-9-1 connection under the AMQP transport: txAMQP with a fast lane.

txAMQP does the handshake, channel management and every synchronous
method (declare, bind, qos, consume, confirm.select, cancel) from the
RabbitMQ-extended 0-9-1 spec. Its generic per-frame machinery (a locked,
Deferred-queued dispatch for every frame, heartbeat timers rescheduled on
every frame) costs far more than the RPC messages it carries, so the frames
RPC traffic is made of take a fast lane here instead: deliveries, publisher
confirms and returns are parsed straight from the socket buffer and handed
to callbacks, and publishes, acks and rejects are packed with ``struct`` and
written at once (Twisted coalesces the writes of one reactor turn).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from twisted.internet import task, tcp
from twisted.logger import Logger
from txamqp import spec as txspec
from txamqp.client import TwistedDelegate
from txamqp.protocol import AMQClient

log = Logger(namespace="nova.rpc.amqp")

_SHIPPED_SPEC = os.path.join(os.path.dirname(__file__), "amqp0-9-1.xml")
_SYSTEM_SPEC = "/usr/share/amqp/specs/0-9-1-rabbit/amqp0-9-1.stripped.extended.xml"
_spec = None


def load_spec():
    """Return the parsed RabbitMQ-extended AMQP 0-9-1 spec (the shipped copy first)."""
    global _spec
    if _spec is None:
        path = _SHIPPED_SPEC if os.path.exists(_SHIPPED_SPEC) else _SYSTEM_SPEC
        _spec = txspec.load(path)
    return _spec


FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE
_FRAME_HEADER = struct.Struct("!BHI")
_CLASS_METHOD = struct.Struct("!HH")
_CONTENT_HEADER = struct.Struct("!HHQH")
_ULONGLONG = struct.Struct("!Q")
_ULONG = struct.Struct("!I")
_ACK = struct.Struct("!BHIHHQBB")  # frame header, class, method, delivery-tag, bits, frame-end
_HEARTBEAT_FRAME = b"\x08\x00\x00\x00\x00\x00\x00\xce"

BASIC = 60
BASIC_PUBLISH, BASIC_RETURN, BASIC_DELIVER = 40, 50, 60
BASIC_ACK, BASIC_REJECT, BASIC_NACK = 80, 90, 120

# Content-header property flags of class basic, in wire order.
_P_CONTENT_TYPE = 0x8000
_P_CONTENT_ENCODING = 0x4000
_P_HEADERS = 0x2000
_P_DELIVERY_MODE = 0x1000
_P_PRIORITY = 0x0800
_P_CORRELATION_ID = 0x0400
_P_REPLY_TO = 0x0200
_P_EXPIRATION = 0x0100
_JSON = b"\x10application/json"


class ProtocolError(Exception):
    """The broker sent something that is not AMQP 0-9-1 framing."""


def _shortstr(data: bytes, pos: int) -> tuple[str, int]:
    size = data[pos]
    end = pos + 1 + size
    return data[pos + 1 : end].decode("utf-8", "replace"), end


def _pack_shortstr(value: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > 255:
        raise ValueError(f"AMQP short string too long: {value[:40]!r}...")
    return bytes((len(raw),)) + raw


class Delivery:
    """A message the broker pushed (basic.deliver) or handed back (basic.return)."""

    __slots__ = (
        "channel",
        "consumer_tag",
        "delivery_tag",
        "redelivered",
        "exchange",
        "routing_key",
        "correlation_id",
        "reply_to",
        "size",
        "chunks",
        "returned",
        "reply_code",
        "reply_text",
    )

    def __init__(self, channel: int):
        self.channel = channel
        self.consumer_tag = ""
        self.delivery_tag = 0
        self.redelivered = False
        self.exchange = ""
        self.routing_key = ""
        self.correlation_id = None
        self.reply_to = None
        self.size = 0
        self.chunks: list[bytes] = []
        self.returned = False
        self.reply_code = 0
        self.reply_text = ""


class NovaDelegate(TwistedDelegate):
    """txAMQP's delegate, plus the server-sent methods it does not know."""

    def basic_cancel(self, ch, msg):
        log.warn("the broker cancelled consumer {tag} on channel {ch}", tag=msg.consumer_tag, ch=ch.id)
        self.client.consumer_cancelled(msg.consumer_tag)

    def connection_blocked(self, ch, msg):
        log.warn("the broker blocks publishing: {reason}", reason=getattr(msg, "reason", ""))

    def connection_unblocked(self, ch, msg):
        log.info("the broker unblocked publishing")


class AMQPProtocol(AMQClient):
    """One AMQP connection: txAMQP for control, the fast lane for messages.

    ``consumers`` maps consumer tags to ``callback(Delivery, body)``;
    ``on_confirm(delivery_tag, multiple, ok)`` receives publisher confirms
    and ``on_return(Delivery, body)`` unroutable mandatory messages;
    ``on_channel_closed(channel_id, reason)`` hears of a channel the broker closed.
    """

    def __init__(self, delegate, vhost, spec, heartbeat: int = 0, clock=None):
        # txAMQP's own heartbeat machinery reschedules timers on every frame;
        # ours below only sets flags per frame and checks them on a timer.
        super().__init__(delegate, vhost, spec, heartbeat=0, clock=clock)
        self.heartbeatInterval = heartbeat
        self.consumers: dict[str, Callable] = {}
        self.on_confirm: Callable | None = None
        self.on_return: Callable | None = None
        self.on_channel_closed: Callable | None = None
        self._inbuf = bytearray()
        self._content: dict[int, Delivery] = {}
        self._sent = False
        self._silent_ticks = 0
        self._heartbeat_loop = None
        self.frame_max = 131072
        self._direct = False
        self._batch: list[bytes] | None = None
        self._batch_urgent = False
        self._method_frames: dict[tuple, bytes] = {}
        self.started.wait().addCallbacks(self._tuned, lambda _: None)

    def connectionMade(self):
        super().connectionMade()
        # Small request/reply frames must not wait for Nagle's algorithm.
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            try:
                set_no_delay(True)
            except OSError:
                pass
        # Only a plain TCP socket of the reactor's can be written to directly.
        self._direct = isinstance(self.transport, tcp.Connection) and hasattr(self.transport, "_tempDataBuffer")

    # -- heartbeats ----------------------------------------------------------
    def _tuned(self, _):
        self.frame_max = self.MAX_LENGTH or self.frame_max
        if self.heartbeatInterval > 0:
            self._heartbeat_loop = task.LoopingCall(self._heartbeat_tick)
            self._heartbeat_loop.clock = self.clock
            self._heartbeat_loop.start(self.heartbeatInterval / 2.0, now=False)

    def _heartbeat_tick(self):
        if not self._sent and self.transport is not None:
            self.transport.write(_HEARTBEAT_FRAME)
        self._sent = False
        self._silent_ticks += 1
        if self._silent_ticks > 6:  # three heartbeat intervals without a byte
            log.warn("no heartbeat from the broker for {s}s: dropping the connection", s=3 * self.heartbeatInterval)
            self.transport.abortConnection()

    def reschedule_send_heartbeat(self):
        self._sent = True

    def reschedule_check_heartbeat(self):
        pass

    def connectionLost(self, reason):
        if self._heartbeat_loop is not None and self._heartbeat_loop.running:
            self._heartbeat_loop.stop()
        self.close(reason)
        self.disconnected.fire()

    def channel_failed(self, channel, reason):
        if self.on_channel_closed is not None:
            self.on_channel_closed(channel.id, reason)

    def consumer_cancelled(self, consumer_tag: str) -> None:
        self.consumers.pop(consumer_tag, None)
        if self.on_channel_closed is not None:
            self.on_channel_closed(None, f"consumer {consumer_tag} cancelled by the broker")

    # -- reading -------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        # Urgent writes made while handling this read (replies, the next
        # calls) leave together in one send at its end.
        self._batch = []
        try:
            self._read(data)
        finally:
            batch, self._batch = self._batch, None
            if batch and self.transport is not None:
                if self._batch_urgent:
                    self._batch_urgent = False
                    self.send_now(b"".join(batch))
                else:
                    self.transport.write(b"".join(batch))

    def _read(self, data: bytes) -> None:
        self._silent_ticks = 0
        buf = self._inbuf
        buf += data
        pos = 0
        size = len(buf)
        unpack = _FRAME_HEADER.unpack_from
        try:
            while size - pos >= 8:
                frame_type, channel, length = unpack(buf, pos)
                end = pos + 7 + length
                if end >= size:
                    break
                if buf[end] != FRAME_END:
                    raise ProtocolError(f"bad frame end {buf[end]:#x}")
                payload = bytes(buf[pos + 7 : end])
                packet_start, pos = pos, end + 1
                if frame_type == FRAME_METHOD:
                    self._method_frame(channel, payload, buf, packet_start, pos)
                elif frame_type == FRAME_HEADER:
                    self._header_frame(channel, payload)
                elif frame_type == FRAME_BODY:
                    self._body_frame(channel, payload)
                elif frame_type != FRAME_HEARTBEAT:
                    raise ProtocolError(f"unknown frame type {frame_type}")
                if self.transport is None or self.transport.disconnecting:
                    break
        except Exception as exc:  # noqa: BLE001 - a broken stream ends the connection, loudly
            log.failure("AMQP stream from the broker is broken; dropping the connection: {error}", error=exc)
            del buf[:]
            if self.transport is not None:
                self.transport.abortConnection()
            return
        del buf[:pos]

    def _method_frame(self, channel: int, payload: bytes, buf, start: int, stop: int) -> None:
        class_id, method_id = _CLASS_METHOD.unpack_from(payload, 0)
        if class_id == BASIC:
            if method_id == BASIC_DELIVER:
                delivery = Delivery(channel)
                delivery.consumer_tag, pos = _shortstr(payload, 4)
                (delivery.delivery_tag,) = _ULONGLONG.unpack_from(payload, pos)
                delivery.redelivered = bool(payload[pos + 8] & 1)
                delivery.exchange, pos = _shortstr(payload, pos + 9)
                delivery.routing_key, pos = _shortstr(payload, pos)
                self._content[channel] = delivery
                return
            if method_id == BASIC_ACK or method_id == BASIC_NACK:
                (tag,) = _ULONGLONG.unpack_from(payload, 4)
                if self.on_confirm is not None:
                    self.on_confirm(tag, bool(payload[12] & 1), method_id == BASIC_ACK)
                return
            if method_id == BASIC_RETURN:
                delivery = Delivery(channel)
                delivery.returned = True
                delivery.reply_code = struct.unpack_from("!H", payload, 4)[0]
                delivery.reply_text, pos = _shortstr(payload, 6)
                delivery.exchange, pos = _shortstr(payload, pos)
                delivery.routing_key, pos = _shortstr(payload, pos)
                self._content[channel] = delivery
                return
        # Everything else (handshake, synchronous replies, closes) goes the txAMQP way.
        self.process_frame(self._unpack_frame(bytes(buf[start:stop])))

    def _header_frame(self, channel: int, payload: bytes) -> None:
        delivery = self._content.get(channel)
        if delivery is None:
            raise ProtocolError(f"content header without a method on channel {channel}")
        _, _, delivery.size, flags = _CONTENT_HEADER.unpack_from(payload, 0)
        pos = 14
        if flags & 1:  # a second flags word: properties we never send
            pos += 2
        if flags & _P_CONTENT_TYPE:
            pos += 1 + payload[pos]
        if flags & _P_CONTENT_ENCODING:
            pos += 1 + payload[pos]
        if flags & _P_HEADERS:
            pos += 4 + _ULONG.unpack_from(payload, pos)[0]
        if flags & _P_DELIVERY_MODE:
            pos += 1
        if flags & _P_PRIORITY:
            pos += 1
        if flags & _P_CORRELATION_ID:
            delivery.correlation_id, pos = _shortstr(payload, pos)
        if flags & _P_REPLY_TO:
            delivery.reply_to, pos = _shortstr(payload, pos)
        if delivery.size == 0:
            self._complete(channel, delivery, b"")

    def _body_frame(self, channel: int, payload: bytes) -> None:
        delivery = self._content.get(channel)
        if delivery is None:
            raise ProtocolError(f"content body without a method on channel {channel}")
        if not delivery.chunks and len(payload) >= delivery.size:
            self._complete(channel, delivery, payload)
            return
        delivery.chunks.append(payload)
        if sum(len(c) for c in delivery.chunks) >= delivery.size:
            self._complete(channel, delivery, b"".join(delivery.chunks))

    def _complete(self, channel: int, delivery: Delivery, body: bytes) -> None:
        del self._content[channel]
        if delivery.returned:
            if self.on_return is not None:
                self.on_return(delivery, body)
            return
        callback = self.consumers.get(delivery.consumer_tag)
        if callback is None:
            # A delivery racing a cancel: give it back to the queue.
            self.nack(channel, delivery.delivery_tag, requeue=True)
            return
        callback(delivery, body)

    # -- writing -------------------------------------------------------------
    def publish(
        self,
        channel: int,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        mandatory: bool = False,
        persistent: bool = False,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        expiration: str | None = None,
        now: bool = False,
        ack: int | None = None,
    ) -> None:
        """Write one basic.publish with a JSON body (no waiting).

        ``now`` sends at once instead of with the rest of this reactor turn's
        writes (for calls and replies, where latency matters more than
        batching); ``ack`` acknowledges that delivery tag on the same channel
        in the same write.
        """
        key = (channel, exchange, routing_key, mandatory)
        method_frame = self._method_frames.get(key)
        if method_frame is None:
            method = b"".join(
                (
                    b"\x00\x3c\x00\x28\x00\x00",
                    _pack_shortstr(exchange),
                    _pack_shortstr(routing_key),
                    b"\x01" if mandatory else b"\x00",
                )
            )
            method_frame = _FRAME_HEADER.pack(FRAME_METHOD, channel, len(method)) + method + b"\xce"
            if len(self._method_frames) > 4096:
                self._method_frames.clear()
            self._method_frames[key] = method_frame
        flags = _P_CONTENT_TYPE | _P_DELIVERY_MODE
        props = [_JSON, b"\x02" if persistent else b"\x01"]
        if correlation_id is not None:
            flags |= _P_CORRELATION_ID
            props.append(_pack_shortstr(correlation_id))
        if reply_to is not None:
            flags |= _P_REPLY_TO
            props.append(_pack_shortstr(reply_to))
        if expiration is not None:
            flags |= _P_EXPIRATION
            props.append(_pack_shortstr(expiration))
        header = _CONTENT_HEADER.pack(BASIC, 0, len(body), flags) + b"".join(props)
        parts = [
            method_frame,
            _FRAME_HEADER.pack(FRAME_HEADER, channel, len(header)),
            header,
            b"\xce",
        ]
        chunk = self.frame_max - 8
        for start in range(0, len(body), chunk):
            piece = body[start : start + chunk]
            parts.append(_FRAME_HEADER.pack(FRAME_BODY, channel, len(piece)))
            parts.append(piece)
            parts.append(b"\xce")
        if ack is not None:
            parts.append(_ACK.pack(FRAME_METHOD, channel, 13, BASIC, BASIC_ACK, ack, 0, FRAME_END))
        self._sent = True
        self._write(b"".join(parts), now)

    def send_frame(self, frame) -> None:
        # txAMQP's control frames take the same road as ours, so order holds.
        self._sent = True
        self._write(self._pack_frame(frame), False)

    def _write(self, data: bytes, urgent: bool) -> None:
        """Write in order with everything else; ``urgent`` data leaves without waiting for the reactor."""
        if self._batch is not None:
            self._batch.append(data)
            if urgent:
                self._batch_urgent = True
        elif urgent:
            self.send_now(data)
        else:
            self.transport.write(data)

    def send_now(self, data: bytes) -> None:
        """Write ``data`` to the socket at once when nothing else waits to be written.

        Twisted would send it on the next reactor turn, after two epoll
        updates; for a lone call or reply that is most of its latency.
        """
        t = self.transport
        if not self._direct or t._tempDataBuffer or t.offset < len(t.dataBuffer) or t.disconnecting:
            t.write(data)
            return
        try:
            sent = t.socket.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            t.write(data)  # let Twisted meet and report the error
            return
        if sent < len(data):
            t.write(data[sent:])

    def ack(self, channel: int, delivery_tag: int, now: bool = False) -> None:
        """Acknowledge one delivery."""
        self._sent = True
        self._write(_ACK.pack(FRAME_METHOD, channel, 13, BASIC, BASIC_ACK, delivery_tag, 0, FRAME_END), now)

    def reject(self, channel: int, delivery_tag: int, requeue: bool) -> None:
        """Reject one delivery: requeue it, or dead-letter it (requeue=False)."""
        self._sent = True
        self._write(
            _ACK.pack(FRAME_METHOD, channel, 13, BASIC, BASIC_REJECT, delivery_tag, int(requeue), FRAME_END), False
        )

    def nack(self, channel: int, delivery_tag: int, requeue: bool) -> None:
        """Negatively acknowledge one delivery (RabbitMQ's basic.nack)."""
        self._sent = True
        bits = 2 if requeue else 0
        self._write(_ACK.pack(FRAME_METHOD, channel, 13, BASIC, BASIC_NACK, delivery_tag, bits, FRAME_END), False)
