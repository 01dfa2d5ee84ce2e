"""The consuming side of the AMQP transport: one listener per topic/server subscription."""

from __future__ import annotations

import uuid

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from nova_twisted import exception
from nova_twisted.rpc import serializer
from nova_twisted.rpc.amqp_protocol import AMQPProtocol
from nova_twisted.rpc.interfaces import IListener

log = Logger(namespace="nova.rpc.amqp")


@implementer(IListener)
class AMQPListener:
    """Consumes a topic's shared queue, its server queue and its fanout on one channel."""

    def __init__(
        self, transport, topic: str, server: str | None, handler, channel_id: int, exchange: str, prefetch: int
    ):
        self.transport = transport
        self.topic = topic
        self.server = server
        self.handler = handler
        self.channel_id = channel_id
        self.exchange = exchange
        self.prefetch = prefetch
        self.in_flight = 0
        self.stopped = False
        self.fanout_queue = ""
        self._tag_prefix = f"{transport._cid_prefix}{channel_id}."
        self._tags: list[str] = []
        self._protocol: AMQPProtocol | None = None
        self._drained: list[defer.Deferred] = []

    @property
    def queues(self) -> list[str]:
        names = [self.topic]
        if self.server:
            names.append(f"{self.topic}.{self.server}")
        return names

    async def _setup(self, proto: AMQPProtocol) -> None:
        """(Re)declare and consume on ``proto``: called on listen and after each reconnect."""
        if self.stopped:
            return
        transport = self.transport
        ch = await proto.channel(self.channel_id)
        await ch.channel_open()
        if self.prefetch:
            await ch.basic_qos(prefetch_count=min(self.prefetch, 65535))
        for name in self.queues:
            await ch.queue_declare(queue=name, durable=True, arguments=transport.queue_arguments)
            await ch.queue_bind(queue=name, exchange=self.exchange, routing_key=name)
        fanout_exchange = f"{self.topic}_fanout"
        # A new name per connection, as for the reply queue.
        self.fanout_queue = f"{self.topic}_fanout_{uuid.uuid4().hex[:16]}"
        await ch.exchange_declare(exchange=fanout_exchange, type="fanout", durable=True)
        await ch.queue_declare(
            queue=self.fanout_queue, exclusive=True, auto_delete=True, arguments=transport.queue_arguments
        )
        await ch.queue_bind(queue=self.fanout_queue, exchange=fanout_exchange, routing_key="")
        self._protocol = proto
        self._tags = []
        for name in [*self.queues, self.fanout_queue]:
            tag = self._tag_prefix + name
            proto.consumers[tag] = self._on_delivery
            await ch.basic_consume(queue=name, consumer_tag=tag)
            self._tags.append(tag)

    def _connection_lost(self) -> None:
        # Unacknowledged deliveries go back to their queues on the broker;
        # handlers still running finish, but their acks have nowhere to go.
        self._protocol = None

    def _on_delivery(self, delivery, body: bytes) -> None:
        proto = self._protocol
        if self.stopped or proto is None:
            if proto is not None:
                proto.nack(delivery.channel, delivery.delivery_tag, requeue=True)
            return
        try:
            message = serializer.decode(body)
        except (ValueError, UnicodeDecodeError) as exc:
            log.error(
                "undecodable message on {queue} dead-lettered to {dlq}: {error}",
                queue=delivery.routing_key or self.topic,
                dlq=self.transport.dead_letter_queue,
                error=exc,
            )
            proto.reject(delivery.channel, delivery.delivery_tag, requeue=False)
            return
        self.in_flight += 1
        reply_to = delivery.reply_to
        try:
            result = self.handler(message, reply_to is not None)
        except Exception:  # noqa: BLE001 - a failing handler is logged; the message is done
            result = Failure()
        if isinstance(result, defer.Deferred):
            result.addBoth(self._handled, proto, delivery)
        else:
            self._handled(result, proto, delivery)

    def _handled(self, result, proto: AMQPProtocol, delivery) -> None:
        self.in_flight -= 1
        if isinstance(result, Failure):
            log.failure("message handler failed", result)
            result = None
        if proto is self._protocol and proto.transport is not None and not proto.closed:
            if delivery.reply_to is not None and result is not None:
                try:
                    body = serializer.encode(result)
                except exception.MessagingError as exc:
                    body = serializer.encode({"failure": {"type": "MessagingError", "ours": True, "message": str(exc)}})
                proto.publish(
                    self.channel_id,
                    "",
                    delivery.reply_to,
                    body,
                    correlation_id=delivery.correlation_id,
                    now=True,
                    ack=delivery.delivery_tag,
                )
            else:
                proto.ack(self.channel_id, delivery.delivery_tag)
        elif delivery.reply_to is not None and result is not None and self.transport.connected:
            # The connection dropped mid-handler: the request goes back to
            # the queue and will be handled again; answer now anyway.
            self.transport.publish_reply(delivery.reply_to, serializer.encode(result), delivery.correlation_id)
        if self.in_flight == 0 and self._drained:
            waiting, self._drained = self._drained, []
            for d in waiting:
                d.callback(None)

    def stop(self) -> defer.Deferred:
        """Stop consuming; fire once the handlers in flight finished (and were acked)."""
        return defer.ensureDeferred(self._stop())

    async def _stop(self) -> None:
        await self.cancel()
        if self.in_flight:
            d = defer.Deferred()
            self._drained.append(d)
            await d

    async def cancel(self) -> None:
        """Stop consuming, without waiting for the handlers in flight."""
        if not self.stopped:
            self.stopped = True
            proto = self._protocol
            if proto is not None and not proto.closed:
                try:
                    ch = await proto.channel(self.channel_id)
                    for tag in self._tags:
                        await ch.basic_cancel(consumer_tag=tag)
                        proto.consumers.pop(tag, None)
                except Exception as exc:  # noqa: BLE001 - a dead connection cancelled them already
                    log.debug("cancelling consumers: {error}", error=exc)
            if self in self.transport._listeners:
                self.transport._listeners.remove(self)

    def abort(self) -> None:
        """Die as a crashed consumer would: drop the channel; the broker requeues what is unacked."""
        self.stopped = True
        proto, self._protocol = self._protocol, None
        if self in self.transport._listeners:
            self.transport._listeners.remove(self)
        self.in_flight = 0
        if proto is not None and not proto.closed:
            for tag in self._tags:
                proto.consumers.pop(tag, None)
            d = proto.channel(self.channel_id)
            d.addCallback(lambda ch: ch.channel_close(reply_code=200, reply_text="abort"))
            d.addErrback(lambda failure: log.debug("abort: {error}", error=failure.getErrorMessage()))
