"""The in-memory transport: the bus of the single-process mode and of fast tests.

It keeps the AMQP transport's semantics: named queues that hold messages
until someone consumes them, round-robin among a queue's consumers, a
fanout queue per listener, acknowledgement only after the handler's
Deferred fired (an aborted listener's unacknowledged messages are delivered
again), a prefetch limit, asynchronous delivery and encoded messages.
"""

from __future__ import annotations

import itertools
import uuid
from collections import deque

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from nova_twisted import exception
from nova_twisted.rpc import serializer
from nova_twisted.rpc.interfaces import IListener, IMessageTransport

log = Logger(namespace="nova.rpc.memory")


class _Queue:
    def __init__(self, name: str):
        self.name = name
        self.messages: deque = deque()
        self.consumers: list = []
        self._next = 0

    def pick_consumer(self):
        ready = [c for c in self.consumers if c.has_capacity()]
        if not ready:
            return None
        self._next = (self._next + 1) % len(ready)
        return ready[self._next]


class MemoryBroker:
    """The queues of one in-process bus. Transports on one broker see each other."""

    def __init__(self, clock):
        self.clock = clock
        self.queues: dict[str, _Queue] = {}
        self.fanouts: dict[str, set[str]] = {}
        self.dead_letters: list[bytes] = []
        self._scheduled: set[str] = set()

    def queue(self, name: str) -> _Queue:
        if name not in self.queues:
            self.queues[name] = _Queue(name)
        return self.queues[name]

    def publish(self, queue_name: str, body: bytes, props: dict) -> None:
        self.queue(queue_name).messages.append((body, props))
        self.schedule(queue_name)

    def publish_fanout(self, topic: str, body: bytes, props: dict) -> None:
        for queue_name in sorted(self.fanouts.get(topic, ())):
            self.publish(queue_name, body, props)

    def schedule(self, queue_name: str) -> None:
        """Deliver from ``queue_name`` soon, never from inside the caller's stack."""
        if queue_name not in self._scheduled:
            self._scheduled.add(queue_name)
            self.clock.callLater(0, self._deliver, queue_name)

    def _deliver(self, queue_name: str) -> None:
        self._scheduled.discard(queue_name)
        queue = self.queues.get(queue_name)
        if queue is None:
            return
        while queue.messages:
            consumer = queue.pick_consumer()
            if consumer is None:
                return
            body, props = queue.messages.popleft()
            consumer.deliver(queue, body, props)


_brokers: dict[tuple[int, str], MemoryBroker] = {}


def broker_for(url: str, clock) -> MemoryBroker:
    """Return the process-wide broker named by ``memory://name`` (one per clock)."""
    key = (id(clock), url)
    if key not in _brokers:
        _brokers[key] = MemoryBroker(clock)
    return _brokers[key]


@implementer(IListener)
class MemoryListener:
    """Consumes a topic's queues on a memory broker."""

    def __init__(self, transport: "MemoryTransport", handler, queue_names: list[str], prefetch: int):
        self.transport = transport
        self.broker = transport.broker
        self.handler = handler
        self.queue_names = queue_names
        self.prefetch = prefetch
        self.in_flight = 0
        self.stopped = False
        self._unacked: dict[int, tuple[_Queue, bytes, dict]] = {}
        self._tags = itertools.count()
        self._drained: list[defer.Deferred] = []

    def has_capacity(self) -> bool:
        return not self.stopped and (self.prefetch <= 0 or self.in_flight < self.prefetch)

    def deliver(self, queue: _Queue, body: bytes, props: dict) -> None:
        tag = next(self._tags)
        self._unacked[tag] = (queue, body, props)
        self.in_flight += 1
        try:
            message = serializer.decode(body)
        except (ValueError, UnicodeDecodeError) as exc:
            log.error("undecodable message on {queue}, dead-lettered: {error}", queue=queue.name, error=exc)
            self.broker.dead_letters.append(body)
            self._ack(tag)
            return
        reply_to = props.get("reply_to")
        d = defer.maybeDeferred(self.handler, message, reply_to is not None)
        d.addBoth(self._handled, tag, props)

    def _handled(self, result, tag: int, props: dict) -> None:
        if tag not in self._unacked:  # aborted mid-handler: already requeued
            return None
        if isinstance(result, Failure):
            log.failure("message handler failed", result)
            result = None
        reply_to = props.get("reply_to")
        if reply_to is not None and result is not None:
            body = serializer.encode(result)
            self.broker.publish(reply_to, body, {"correlation_id": props.get("correlation_id")})
        self._ack(tag)
        return None

    def _ack(self, tag: int) -> None:
        queue, _, _ = self._unacked.pop(tag)
        self.in_flight -= 1
        if self.in_flight == 0 and self._drained:
            waiting, self._drained = self._drained, []
            for d in waiting:
                d.callback(None)
        if not self.stopped:
            self.broker.schedule(queue.name)

    def stop(self) -> defer.Deferred:
        """Stop consuming; fire once the handlers in flight finished."""
        self._detach()
        if self.in_flight == 0:
            return defer.succeed(None)
        d = defer.Deferred()
        self._drained.append(d)
        return d

    def abort(self) -> None:
        """Die as a crashed consumer would: unacknowledged messages go back to their queues."""
        self._detach()
        unacked, self._unacked = self._unacked, {}
        self.in_flight = 0
        for queue, body, props in reversed(list(unacked.values())):
            queue.messages.appendleft((body, props))
            self.broker.schedule(queue.name)

    def _detach(self) -> None:
        self.stopped = True
        for name in self.queue_names:
            queue = self.broker.queue(name)
            if self in queue.consumers:
                queue.consumers.remove(self)
        for _topic, names in self.broker.fanouts.items():
            for name in list(names):
                if name in self.queue_names:
                    names.discard(name)
        if self in self.transport.listeners:
            self.transport.listeners.remove(self)


@implementer(IMessageTransport)
class MemoryTransport:
    """An IMessageTransport on a :class:`MemoryBroker` (``memory://`` URLs)."""

    def __init__(self, url: str = "memory://", clock=None, prefetch: int = 64):
        if clock is None:
            from twisted.internet import reactor as clock
        self.url = url
        self.clock = clock
        self.broker = broker_for(url, clock)
        self.prefetch = prefetch
        self.connected = False
        self.listeners: list[MemoryListener] = []
        self._ids = itertools.count()
        # Unique for the life of the broker: an id() may be reused by a later transport,
        # which would then receive the replies (and match the correlation ids) of a dead one.
        self._instance = uuid.uuid4().hex
        self._reply_queue = f"reply_{self._instance}"
        self._pending: dict[str, tuple[defer.Deferred, object]] = {}
        self._reply_consumer = None

    def connect(self) -> defer.Deferred:
        if not self.connected:
            self.connected = True
            self._reply_consumer = _ReplyConsumer(self)
            self.broker.queue(self._reply_queue).consumers.append(self._reply_consumer)
        return defer.succeed(None)

    def close(self) -> defer.Deferred:
        self.connected = False
        for listener in list(self.listeners):
            listener._detach()
        queue = self.broker.queues.pop(self._reply_queue, None)
        if queue is not None:
            queue.consumers.clear()
        pending, self._pending = self._pending, {}
        for d, timer in pending.values():
            if timer.active():
                timer.cancel()
            d.errback(exception.MessagingError(reason="transport closed"))
        return defer.succeed(None)

    def _check(self) -> None:
        if not self.connected:
            raise exception.MessagingError(reason="transport is not connected")

    def cast(self, topic: str, server: str | None, message: dict) -> defer.Deferred:
        try:
            self._check()
            body = serializer.encode(message)
        except exception.MessagingError:
            return defer.fail()
        self.broker.publish(_queue_name(topic, server), body, {})
        return defer.succeed(None)

    def fanout(self, topic: str, message: dict) -> defer.Deferred:
        try:
            self._check()
            body = serializer.encode(message)
        except exception.MessagingError:
            return defer.fail()
        self.broker.publish_fanout(topic, body, {})
        return defer.succeed(None)

    def call(self, topic: str, server: str | None, message: dict, timeout: float) -> defer.Deferred:
        try:
            self._check()
            body = serializer.encode(message)
        except exception.MessagingError:
            return defer.fail()
        correlation_id = f"{self._instance}.{next(self._ids)}"
        d = defer.Deferred()
        timer = self.clock.callLater(timeout, self._timed_out, correlation_id, topic, message, timeout)
        self._pending[correlation_id] = (d, timer)
        self.broker.publish(
            _queue_name(topic, server), body, {"reply_to": self._reply_queue, "correlation_id": correlation_id}
        )
        return d

    def _timed_out(self, correlation_id, topic, message, timeout) -> None:
        entry = self._pending.pop(correlation_id, None)
        if entry is not None:
            entry[0].errback(
                exception.MessagingTimeout(method=message.get("method", "?"), topic=topic, timeout=timeout)
            )

    def _reply(self, body: bytes, props: dict) -> None:
        entry = self._pending.pop(props.get("correlation_id"), None)
        if entry is None:
            return  # the call timed out already
        d, timer = entry
        if timer.active():
            timer.cancel()
        try:
            d.callback(serializer.decode(body))
        except ValueError as exc:
            d.errback(exception.MessagingError(reason=f"undecodable reply: {exc}"))

    def listen(self, topic: str, server: str | None, handler) -> defer.Deferred:
        try:
            self._check()
        except exception.MessagingError:
            return defer.fail()
        names = [topic]
        if server:
            names.append(_queue_name(topic, server))
        fanout_queue = f"{topic}_fanout_{self._instance}_{next(self._ids)}"
        names.append(fanout_queue)
        listener = MemoryListener(self, handler, names, self.prefetch)
        self.broker.fanouts.setdefault(topic, set()).add(fanout_queue)
        for name in names:
            self.broker.queue(name).consumers.append(listener)
            self.broker.schedule(name)
        self.listeners.append(listener)
        return defer.succeed(listener)


class _ReplyConsumer:
    def __init__(self, transport: MemoryTransport):
        self.transport = transport

    def has_capacity(self) -> bool:
        return True

    def deliver(self, queue, body, props) -> None:
        self.transport._reply(body, props)


def _queue_name(topic: str, server: str | None) -> str:
    return f"{topic}.{server}" if server else topic
