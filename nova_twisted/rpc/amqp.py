"""The AMQP transport: RPC over RabbitMQ on txAMQP.

Layout on the broker (one vhost per deployment):

* a durable topic exchange (``[transport] exchange``, ``nova``) with one
  durable queue per topic (``scheduler``) and per server (``compute.<host>``),
  each bound with its own name as routing key;
* a fanout exchange ``<topic>_fanout`` per topic; each listener binds its own
  exclusive, auto-deleted queue to it;
* one reply queue per transport (process), fed through the default exchange;
  replies are matched to calls by correlation id;
* a dead-letter exchange ``<exchange>_dlx`` and durable queue
  ``<exchange>_dead_letter``: every queue above dead-letters into it, and
  messages that cannot be decoded are rejected there.

Reliability: casts are persistent and published in confirm mode; a cast's
Deferred fires on the broker's ack. Calls are transient, carry their timeout
as a per-message TTL and go on a channel without confirms: a call waits for
its reply anyway, and is sent again after a reconnection. Deliveries are acknowledged only after
the handler's Deferred fired. When the connection drops, the transport
reconnects with capped exponential backoff over all its URLs, declares its
exchanges and queues again and re-consumes; casts (and, by default, calls)
that were unconfirmed or made meanwhile are held (bounded in number and
time) and sent once the connection is back, or fail with MessagingError.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections import deque
from urllib.parse import unquote, urlsplit

from twisted.internet import defer, error, protocol, ssl
from twisted.internet.endpoints import SSL4ClientEndpoint, TCP4ClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from txamqp import client as txclient
from zope.interface import implementer

from nova_twisted import exception
from nova_twisted.rpc import serializer
from nova_twisted.rpc.amqp_listener import AMQPListener
from nova_twisted.rpc.amqp_protocol import AMQPProtocol, NovaDelegate, load_spec
from nova_twisted.rpc.interfaces import IMessageTransport

log = Logger(namespace="nova.rpc.amqp")

PUBLISH_CHANNEL = 1  # confirm mode: casts and fanouts
CALL_CHANNEL = 4  # no confirms: calls and late replies (a call waits for its reply instead)
REPLY_CHANNEL = 2  # the reply queue's consumer (no-ack)
ADMIN_CHANNEL = 3  # declarations made on behalf of senders
FIRST_LISTENER_CHANNEL = 10
DEAD_LETTER_MAX = 10000  # oldest dead letters are dropped beyond this

_CAST, _FANOUT, _CALL, _REPLY = 0, 1, 2, 3

DEFAULTS = {
    "exchange": "nova",
    "heartbeat": 30,
    "prefetch": 64,
    "connect_timeout": 5.0,
    "reconnect_delay": 0.5,
    "reconnect_max_delay": 15.0,
    "max_queued_messages": 10000,
    "queued_message_timeout": 60.0,
    "retry_calls_on_reconnect": True,
    "ssl_ca_file": "",
    "ssl_cert_file": "",
    "ssl_key_file": "",
}
_IGNORED = {"url", "rpc_response_timeout"}


class BrokerURL:
    """One parsed ``amqp://user:password@host:port/vhost`` URL (amqps:// for TLS)."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps", "rabbit"):
            raise exception.ConfigurationError(reason=f"[transport] url: not an AMQP URL: {parts.scheme}://")
        self.tls = parts.scheme == "amqps"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (5671 if self.tls else 5672)
        self.user = unquote(parts.username) if parts.username else "guest"
        self.password = unquote(parts.password) if parts.password else "guest"
        vhost = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
        self.vhost = vhost or "/"

    def __str__(self) -> str:  # never shows the password
        scheme = "amqps" if self.tls else "amqp"
        vhost = "" if self.vhost == "/" else self.vhost
        return f"{scheme}://{self.user}:***@{self.host}:{self.port}/{vhost}"


class _Outgoing:
    """A message on its way to the broker (held while disconnected, until confirmed)."""

    __slots__ = (
        "kind",
        "exchange",
        "routing_key",
        "body",
        "deferred",
        "correlation_id",
        "expiration",
        "declare",
        "queued_at",
        "done",
    )

    def __init__(self, kind, exchange, routing_key, body, deferred, correlation_id=None, expiration=None, declare=None):
        self.kind = kind
        self.exchange = exchange
        self.routing_key = routing_key
        self.body = body
        self.deferred = deferred
        self.correlation_id = correlation_id
        self.expiration = expiration
        self.declare = declare  # (queue, exchange) to declare before the first send, or None
        self.queued_at = 0.0
        self.done = False

    def succeed(self) -> None:
        if not self.done:
            self.done = True
            if self.deferred is not None:
                self.deferred.callback(None)

    def fail(self, reason: str) -> None:
        if not self.done:
            self.done = True
            if self.deferred is not None:
                self.deferred.errback(exception.MessagingError(reason=reason))


class _Call:
    __slots__ = ("deferred", "timer", "outgoing", "method", "topic", "timeout")

    def __init__(self, deferred, timer, outgoing, method, topic, timeout):
        self.deferred = deferred
        self.timer = timer
        self.outgoing = outgoing
        self.method = method
        self.topic = topic
        self.timeout = timeout


class _Factory(protocol.ClientFactory):
    noisy = False

    def __init__(self, transport: "AMQPTransport", url: BrokerURL):
        self.transport = transport
        self.url = url

    def buildProtocol(self, addr):
        proto = AMQPProtocol(
            NovaDelegate(), self.url.vhost, load_spec(), heartbeat=self.transport.heartbeat, clock=self.transport.clock
        )
        proto.factory = self
        return proto


@implementer(IMessageTransport)
class AMQPTransport:
    """IMessageTransport on RabbitMQ (``amqp://`` / ``amqps://`` URLs).

    ``options`` are the ``[transport]`` options (see nova_twisted.conf.transport).
    ``clock`` drives timers (timeouts, backoff); ``reactor`` makes the
    connections (defaults to the global reactor).
    """

    def __init__(self, urls, clock=None, reactor=None, **options):
        if isinstance(urls, str):
            urls = [urls]
        unknown = set(options) - set(DEFAULTS) - _IGNORED
        if unknown:
            raise exception.ConfigurationError(reason=f"unknown AMQP transport option(s): {', '.join(sorted(unknown))}")
        settings = {**DEFAULTS, **{k: v for k, v in options.items() if k in DEFAULTS}}
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.urls = [BrokerURL(url) for url in urls]
        if not self.urls:
            raise exception.ConfigurationError(reason="[transport] url is empty")
        self.exchange = settings["exchange"]
        self.heartbeat = int(settings["heartbeat"])
        self.prefetch = int(settings["prefetch"])
        self.connect_timeout = float(settings["connect_timeout"])
        self.reconnect_delay = float(settings["reconnect_delay"])
        self.reconnect_max_delay = float(settings["reconnect_max_delay"])
        self.max_queued = int(settings["max_queued_messages"])
        self.queued_timeout = float(settings["queued_message_timeout"])
        self.retry_calls = bool(settings["retry_calls_on_reconnect"])
        self._tls = {k: settings[k] for k in ("ssl_ca_file", "ssl_cert_file", "ssl_key_file")}
        self._tls_cache: dict[str, object] = {}
        self.dead_letter_exchange = f"{self.exchange}_dlx"
        self.dead_letter_queue = f"{self.exchange}_dead_letter"
        self.queue_arguments = {"x-dead-letter-exchange": self.dead_letter_exchange}

        self.connected = False
        self.protocol: AMQPProtocol | None = None
        self.broker: BrokerURL | None = None
        self._closing = False
        self._closed = False
        self._connecting = False
        self._connect_waiters: list[defer.Deferred] = []
        self._reconnect_call = None
        self._attempts = 0
        self._url_index = 0
        self._generation = 0

        self._seq = 0
        self._unconfirmed: deque = deque()  # [seq, _Outgoing], in publish order
        self._backlog: deque = deque()  # _Outgoing waiting for a connection
        self._sweeper = None
        self._declared: set[str] = set()
        self._declaring: dict[str, list[_Outgoing]] = {}

        self._cid_prefix = uuid.uuid4().hex[:12] + "."
        self._cids = itertools.count()
        self._calls: dict[str, _Call] = {}
        self.reply_queue = f"reply_{uuid.uuid4().hex}"

        self._listeners: list[AMQPListener] = []
        self._channel_ids = itertools.count(FIRST_LISTENER_CHANNEL)

    # -- connection ------------------------------------------------------------
    def connect(self) -> defer.Deferred:
        """Connect (trying each URL once); fails with MessagingError if none answers."""
        if self.connected:
            return defer.succeed(None)
        if self._closed:
            return defer.fail(exception.MessagingError(reason="the transport is closed"))
        d = defer.Deferred()
        self._connect_waiters.append(d)
        # While a reconnection is under way the waiter fires once it succeeds.
        if not self._connecting and self._reconnect_call is None:
            self._connecting = True
            defer.ensureDeferred(self._connect_once()).addErrback(self._connect_failed)
        return d

    async def _connect_once(self) -> None:
        problems = []
        for index in range(len(self.urls)):
            url = self.urls[(self._url_index + index) % len(self.urls)]
            try:
                await self._open(url)
            except Exception as exc:  # noqa: BLE001 - every reason is reported in the one error
                problems.append(f"{url}: {_describe(exc)}")
                continue
            self._url_index = (self._url_index + index) % len(self.urls)
            return
        raise exception.MessagingError(reason="cannot connect to the message broker: " + "; ".join(problems))

    def _connect_failed(self, failure: Failure) -> None:
        self._connecting = False
        waiters, self._connect_waiters = self._connect_waiters, []
        for d in waiters:
            d.errback(failure)

    async def _open(self, url: BrokerURL) -> None:
        """Connect to one broker, set everything up, and start using the connection."""
        if url.tls:
            endpoint = SSL4ClientEndpoint(
                self.reactor, url.host, url.port, self._tls_options(url), timeout=self.connect_timeout
            )
        else:
            endpoint = TCP4ClientEndpoint(self.reactor, url.host, url.port, timeout=self.connect_timeout)
        proto = await endpoint.connect(_Factory(self, url))
        # A broker that accepts the socket but never answers must not hang us.
        watchdog = self.clock.callLater(self.connect_timeout, proto.transport.abortConnection)
        try:
            try:
                await proto.authenticate(url.user, url.password, mechanism="AMQPLAIN")
            except txclient.Closed as exc:
                reason = _describe(exc)
                if "connection lost" in reason or "closed the connection" in reason:
                    reason = "the broker closed the connection during login (check the user and password)"
                raise exception.MessagingError(reason=reason) from None
            await self._setup(proto)
        except Exception:
            proto.transport.abortConnection()
            raise
        finally:
            if watchdog.active():
                watchdog.cancel()
        if self._closing or self._closed:
            proto.transport.loseConnection()
            raise exception.MessagingError(reason="the transport was closed while connecting")
        self._connected(proto, url)

    def _tls_options(self, url: BrokerURL):
        # Read once: the files are small, but the reactor thread reads nothing twice.
        cached = self._tls_cache.get(url.host)
        if cached is None:
            cached = self._tls_cache[url.host] = self._load_tls_options(url)
        return cached

    def _load_tls_options(self, url: BrokerURL):
        trust = None
        if self._tls["ssl_ca_file"]:
            with open(self._tls["ssl_ca_file"], "rb") as handle:
                trust = ssl.Certificate.loadPEM(handle.read())
        client_cert = None
        if self._tls["ssl_cert_file"]:
            with open(self._tls["ssl_cert_file"], "rb") as handle:
                cert_pem = handle.read()
            key_path = self._tls["ssl_key_file"] or self._tls["ssl_cert_file"]
            with open(key_path, "rb") as handle:
                key_pem = handle.read()
            client_cert = ssl.PrivateCertificate.loadPEM(cert_pem + b"\n" + key_pem)
        return ssl.optionsForClientTLS(url.host, trustRoot=trust, clientCertificate=client_cert)

    async def _setup(self, proto: AMQPProtocol) -> None:
        """Declare what this process needs on a fresh connection."""
        publish = await proto.channel(PUBLISH_CHANNEL)
        await publish.channel_open()
        await publish.confirm_select()
        calls = await proto.channel(CALL_CHANNEL)
        await calls.channel_open()
        admin = await proto.channel(ADMIN_CHANNEL)
        await admin.channel_open()
        await admin.exchange_declare(exchange=self.exchange, type="topic", durable=True)
        await admin.exchange_declare(exchange=self.dead_letter_exchange, type="fanout", durable=True)
        # Bounded: expired calls land here too (a call whose server never came).
        await admin.queue_declare(
            queue=self.dead_letter_queue, durable=True, arguments={"x-max-length": DEAD_LETTER_MAX}
        )
        await admin.queue_bind(queue=self.dead_letter_queue, exchange=self.dead_letter_exchange, routing_key="")
        replies = await proto.channel(REPLY_CHANNEL)
        await replies.channel_open()
        # A new name per connection: the broker may not have noticed yet that
        # the last connection (and its exclusive queue) is gone.
        self.reply_queue = f"reply_{uuid.uuid4().hex}"
        await replies.queue_declare(queue=self.reply_queue, exclusive=True, auto_delete=True)
        proto.consumers[self.reply_queue] = self._on_reply
        await replies.basic_consume(queue=self.reply_queue, consumer_tag=self.reply_queue, no_ack=True)
        proto.on_confirm = self._on_confirm
        proto.on_return = self._on_return
        proto.on_channel_closed = self._on_channel_closed
        for listener in list(self._listeners):
            await listener._setup(proto)

    def _connected(self, proto: AMQPProtocol, url: BrokerURL) -> None:
        self._generation += 1
        self.protocol = proto
        self.broker = url
        self.connected = True
        self._connecting = False
        self._attempts = 0
        self._seq = 0  # confirm sequence numbers start again on each new channel
        self._unconfirmed = deque()
        self._declared = set()
        self._declaring = {}
        proto.disconnected.wait().addCallback(lambda _: self._connection_lost(proto))
        log.info("connected to the message broker at {url}", url=str(url))
        self._flush_backlog()
        waiters, self._connect_waiters = self._connect_waiters, []
        for d in waiters:
            d.callback(None)

    def _connection_lost(self, proto: AMQPProtocol) -> None:
        if proto is not self.protocol:
            return
        self.protocol = None
        self.connected = False
        unconfirmed, self._unconfirmed = self._unconfirmed, deque()
        declaring, self._declaring = self._declaring, {}
        undeclared = [out for outs in declaring.values() for out in outs if out.kind != _CALL]
        if self._closing or self._closed:
            for out in [out for _, out in unconfirmed] + undeclared:
                out.fail("the transport was closed before the broker confirmed the message")
            return
        log.warn("lost the connection to the message broker at {url}; reconnecting", url=str(self.broker))
        now = self.clock.seconds()
        held = []
        for out in [out for _, out in unconfirmed] + undeclared:
            if (out.kind == _CAST or out.kind == _FANOUT) and not out.done:
                out.queued_at = now
                held.append(out)
        abandoned = []
        for call in list(self._calls.values()):
            if not self.retry_calls:
                abandoned.append(call)
            elif not call.outgoing.done:
                call.outgoing.queued_at = now
                held.append(call.outgoing)
        # Re-send what the broker may not have, before anything made since.
        held = [out for out in held if out not in self._backlog]
        self._backlog.extendleft(reversed(held))
        for listener in self._listeners:
            listener._connection_lost()
        self._start_sweeper()
        self._schedule_reconnect()
        # Last: a caller's errback may close the transport.
        for call in abandoned:
            self._fail_call(call, "the connection to the broker was lost while waiting for the reply")

    def _schedule_reconnect(self) -> None:
        if self._closing or self._closed or self._reconnect_call is not None:
            return
        delay = min(self.reconnect_max_delay, self.reconnect_delay * (2 ** min(self._attempts, 20)))
        delay *= 0.8 + 0.4 * random.random()  # so a fleet does not reconnect in step
        self._attempts += 1
        self._reconnect_call = self.clock.callLater(delay, self._reconnect)

    def _reconnect(self) -> None:
        self._reconnect_call = None
        if self._closing or self._closed or self.connected:
            return
        self._connecting = True
        url = self.urls[self._url_index % len(self.urls)]
        d = defer.ensureDeferred(self._open(url))

        def failed(failure):
            self._connecting = False
            log.info("reconnecting to {url} failed: {error}", url=str(url), error=_describe(failure.value))
            self._url_index = (self._url_index + 1) % len(self.urls)
            self._schedule_reconnect()

        d.addErrback(failed)

    def close(self) -> defer.Deferred:
        """Stop listening, wait (briefly) for unconfirmed casts, disconnect.

        Calls waiting for replies and messages still held fail with MessagingError.
        """
        return defer.ensureDeferred(self._close())

    async def _close(self) -> None:
        if self._closed:
            return
        self._closing = True
        if self._reconnect_call is not None and self._reconnect_call.active():
            self._reconnect_call.cancel()
        self._reconnect_call = None
        # Handlers still running are not waited for: draining, bounded, is the
        # services' business (RPCServer.stop) before they close the transport.
        for listener in list(self._listeners):
            await listener.cancel()
        if self.connected and self._unconfirmed:
            waits = [out.deferred for _, out in self._unconfirmed if out.deferred is not None and not out.done]
            if waits:
                pending = defer.DeferredList(waits, consumeErrors=True)
                timer = self.clock.callLater(5, pending.cancel)
                try:
                    await pending
                except defer.CancelledError:
                    pass
                if timer.active():
                    timer.cancel()
        self._closed = True
        self.connected = False
        backlog, self._backlog = self._backlog, deque()
        for out in backlog:
            out.fail("the transport was closed before the message could be sent")
        for call in list(self._calls.values()):
            self._fail_call(call, "the transport was closed while waiting for the reply")
        if self._sweeper is not None and self._sweeper.active():
            self._sweeper.cancel()
        waiters, self._connect_waiters = self._connect_waiters, []
        for d in waiters:
            d.errback(exception.MessagingError(reason="the transport was closed"))
        proto, self.protocol = self.protocol, None
        if proto is not None and proto.transport is not None:
            for _, out in self._unconfirmed:
                out.fail("the transport was closed before the broker confirmed the message")
            self._unconfirmed = deque()
            done = proto.disconnected.wait()
            try:
                channel0 = await proto.channel(0)
                closing = channel0.connection_close(reply_code=200, reply_text="bye")
                timer = self.clock.callLater(2, closing.cancel)
                try:
                    await closing
                finally:
                    if timer.active():
                        timer.cancel()
            except Exception:  # noqa: BLE001 - closing politely is best effort
                pass
            proto.transport.loseConnection()
            await done

    # -- sending ---------------------------------------------------------------
    def cast(self, topic: str, server: str | None, message: dict) -> defer.Deferred:
        try:
            body = serializer.encode(message)
        except exception.MessagingError:
            return defer.fail()
        key = f"{topic}.{server}" if server else topic
        d = defer.Deferred()
        self._send(_Outgoing(_CAST, self.exchange, key, body, d, declare=key))
        return d

    def fanout(self, topic: str, message: dict) -> defer.Deferred:
        try:
            body = serializer.encode(message)
        except exception.MessagingError:
            return defer.fail()
        d = defer.Deferred()
        self._send(_Outgoing(_FANOUT, f"{topic}_fanout", "", body, d, declare=f"exchange:{topic}_fanout"))
        return d

    def call(self, topic: str, server: str | None, message: dict, timeout: float) -> defer.Deferred:
        try:
            body = serializer.encode(message)
        except exception.MessagingError:
            return defer.fail()
        key = f"{topic}.{server}" if server else topic
        cid = self._cid_prefix + str(next(self._cids))
        d = defer.Deferred(lambda _: self._calls.pop(cid, None))
        out = _Outgoing(_CALL, self.exchange, key, body, None, cid, str(max(1, int(timeout * 1000))), declare=key)
        timer = self.clock.callLater(timeout, self._call_timed_out, cid)
        self._calls[cid] = _Call(d, timer, out, message.get("method", "?"), topic, timeout)
        self._send(out)
        return d

    def _send(self, out: _Outgoing) -> None:
        if self.connected:
            if out.declare is None or out.declare in self._declared:
                self._publish(out)
            else:
                self._declare_then_send(out)
            return
        if self._closed or self._closing:
            out.fail("the transport is closed")
            if out.kind == _CALL:
                call = self._calls.get(out.correlation_id)
                if call is not None:
                    self._fail_call(call, "the transport is closed")
            return
        if not self._connecting and self._reconnect_call is None:
            out.fail("the transport is not connected")
            call = self._calls.get(out.correlation_id) if out.kind == _CALL else None
            if call is not None:
                self._fail_call(call, "the transport is not connected")
            return
        if len(self._backlog) >= self.max_queued:
            reason = f"the broker is unreachable and {len(self._backlog)} messages already wait for it"
            out.fail(reason)
            call = self._calls.get(out.correlation_id) if out.kind == _CALL else None
            if call is not None:
                self._fail_call(call, reason)
            return
        out.queued_at = self.clock.seconds()
        self._backlog.append(out)
        self._start_sweeper()

    def _publish(self, out: _Outgoing) -> None:
        kind = out.kind
        if kind == _CAST or kind == _FANOUT:
            channel = PUBLISH_CHANNEL
            self._seq += 1
            self._unconfirmed.append((self._seq, out))
        else:
            channel = CALL_CHANNEL
        self.protocol.publish(
            channel,
            out.exchange,
            out.routing_key,
            out.body,
            mandatory=kind == _CAST or kind == _CALL,
            persistent=kind == _CAST,
            correlation_id=out.correlation_id,
            reply_to=self.reply_queue if kind == _CALL else None,
            expiration=out.expiration,
            now=kind == _CALL,
        )

    def _declare_then_send(self, out: _Outgoing) -> None:
        name = out.declare
        waiting = self._declaring.get(name)
        if waiting is not None:
            waiting.append(out)
            return
        self._declaring[name] = [out]
        generation = self._generation
        d = defer.ensureDeferred(self._declare(name))

        def declared(_):
            if generation != self._generation:
                return  # the connection dropped meanwhile: the messages were re-queued
            self._declared.add(name)
            for waiting_out in self._declaring.pop(name, []):
                if waiting_out.kind == _CALL and waiting_out.correlation_id not in self._calls:
                    continue  # timed out while we declared
                self._publish(waiting_out)

        def failed(failure):
            if generation != self._generation:
                return
            if failure.check(txclient.Closed) and not failure.check(txclient.ChannelClosed):
                return  # the connection is going: _connection_lost holds these for the next one
            log.error("cannot declare {name}: {error}", name=name, error=_describe(failure.value))
            for waiting_out in self._declaring.pop(name, []):
                waiting_out.fail(f"cannot declare {name}: {_describe(failure.value)}")
                if waiting_out.kind == _CALL:
                    call = self._calls.get(waiting_out.correlation_id)
                    if call is not None:
                        self._fail_call(call, f"cannot declare {name}: {_describe(failure.value)}")

        d.addCallbacks(declared, failed)

    async def _declare(self, name: str) -> None:
        """Declare queue ``name`` (bound to the exchange), or fanout exchange ``exchange:<name>``."""
        proto = self.protocol
        admin = await proto.channel(ADMIN_CHANNEL)
        if admin.closed:  # the broker refused an earlier declaration: open a fresh one
            proto.channels.pop(ADMIN_CHANNEL, None)
            admin = await proto.channel(ADMIN_CHANNEL)
            await admin.channel_open()
        if name.startswith("exchange:"):
            await admin.exchange_declare(exchange=name[len("exchange:") :], type="fanout", durable=True)
        else:
            await admin.queue_declare(queue=name, durable=True, arguments=self.queue_arguments)
            await admin.queue_bind(queue=name, exchange=self.exchange, routing_key=name)

    def _flush_backlog(self) -> None:
        backlog, self._backlog = self._backlog, deque()
        for out in backlog:
            if out.done or (out.kind == _CALL and out.correlation_id not in self._calls):
                continue
            self._send(out)

    def _start_sweeper(self) -> None:
        if self._closed or self._closing:
            return
        if self._sweeper is None or not self._sweeper.active():
            self._sweeper = self.clock.callLater(min(1.0, self.queued_timeout or 1.0), self._sweep)

    def _sweep(self) -> None:
        """Fail casts that waited too long for the broker; calls time out on their own."""
        self._sweeper = None
        if self.connected or not self._backlog:
            return
        limit = self.clock.seconds() - self.queued_timeout
        kept = deque()
        for out in self._backlog:
            if out.kind != _CALL and out.queued_at <= limit:
                out.fail(f"the message broker was unreachable for {self.queued_timeout:g}s")
            elif not out.done:
                kept.append(out)
        self._backlog = kept
        if kept:
            self._start_sweeper()

    # -- broker feedback -------------------------------------------------------
    def _on_confirm(self, tag: int, multiple: bool, ok: bool) -> None:
        unconfirmed = self._unconfirmed
        if multiple:
            while unconfirmed and unconfirmed[0][0] <= tag:
                self._confirmed(unconfirmed.popleft()[1], ok)
            return
        if unconfirmed and unconfirmed[0][0] == tag:
            self._confirmed(unconfirmed.popleft()[1], ok)
            return
        for index, (seq, out) in enumerate(unconfirmed):
            if seq == tag:
                del unconfirmed[index]
                self._confirmed(out, ok)
                return

    def _confirmed(self, out: _Outgoing, ok: bool) -> None:
        if ok:
            out.succeed()
        else:
            out.fail(f"the broker refused the message for {out.exchange}/{out.routing_key} (basic.nack)")

    def _on_return(self, delivery, body: bytes) -> None:
        """A mandatory message no queue took: its queue vanished under us."""
        key = delivery.routing_key
        self._declared.discard(key)
        if delivery.correlation_id is not None:
            call = self._calls.get(delivery.correlation_id)
            if call is not None:
                log.warn("call to {key} came back unroutable; declaring its queue again", key=key)
                self._send(call.outgoing)
            return
        # A cast: publish it again once its queue exists (it keeps its place in
        # the broker's confirm order, so its own Deferred fires on that ack).
        log.warn(
            "cast to {key} came back unroutable ({text}); declaring its queue again", key=key, text=delivery.reply_text
        )
        self._send(_Outgoing(_CAST, delivery.exchange, key, body, None, declare=key))

    def _on_channel_closed(self, channel_id, reason) -> None:
        if channel_id == ADMIN_CHANNEL:
            # A declaration was refused: the messages waiting for it fail
            # loudly (see _declare_then_send); the connection is fine.
            log.error("the broker refused a declaration: {reason}", reason=_describe(reason))
            return
        # Any other channel the broker closed (a queue deleted under a
        # consumer, say) leaves the connection half-working: start afresh.
        log.error("the broker closed channel {ch}: {reason}; reconnecting", ch=channel_id, reason=_describe(reason))
        proto = self.protocol
        if proto is not None and proto.transport is not None:
            proto.transport.abortConnection()

    def _on_reply(self, delivery, body: bytes) -> None:
        call = self._calls.pop(delivery.correlation_id, None)
        if call is None:
            return  # timed out already, or a duplicate answer to a re-sent call
        if call.timer.active():
            call.timer.cancel()
        try:
            reply = serializer.decode(body)
        except (ValueError, UnicodeDecodeError) as exc:
            log.error("undecodable reply to {method}: {error}", method=call.method, error=exc)
            call.deferred.errback(exception.MessagingError(reason=f"undecodable reply: {exc}"))
            return
        call.deferred.callback(reply)

    def _call_timed_out(self, cid: str) -> None:
        call = self._calls.pop(cid, None)
        if call is not None:
            call.outgoing.done = True
            call.deferred.errback(
                exception.MessagingTimeout(method=call.method, topic=call.topic, timeout=call.timeout)
            )

    def _fail_call(self, call: _Call, reason: str) -> None:
        if self._calls.pop(call.outgoing.correlation_id, None) is None:
            return
        call.outgoing.done = True
        if call.timer.active():
            call.timer.cancel()
        call.deferred.errback(exception.MessagingError(reason=reason))

    def publish_reply(self, reply_to: str, body: bytes, correlation_id: str) -> None:
        """Send a reply on the current connection (for handlers that outlived theirs)."""
        if self.connected:
            self._publish(_Outgoing(_REPLY, "", reply_to, body, None, correlation_id))

    # -- listening -------------------------------------------------------------
    def listen(self, topic: str, server: str | None, handler) -> defer.Deferred:
        if not self.connected:
            return defer.fail(exception.MessagingError(reason="the transport is not connected"))
        listener = AMQPListener(self, topic, server, handler, next(self._channel_ids), self.exchange, self.prefetch)
        self._listeners.append(listener)
        d = defer.ensureDeferred(listener._setup(self.protocol))

        def failed(failure):
            if listener in self._listeners:
                self._listeners.remove(listener)
            return Failure(exception.MessagingError(reason=f"cannot listen on {topic}: {_describe(failure.value)}"))

        d.addCallbacks(lambda _: listener, failed)
        return d


def _describe(exc) -> str:
    """One short line for a connection problem (never a traceback)."""
    if isinstance(exc, Failure):
        exc = exc.value
    if isinstance(exc, txclient.Closed) and exc.args:
        inner = exc.args[0]
        if isinstance(inner, Failure):
            return _describe(inner.value)
        exc = inner if isinstance(inner, BaseException) else Exception(str(inner))
    if isinstance(exc, (error.ConnectionLost, error.ConnectionDone)):
        return "connection lost: the broker closed the connection"
    if type(exc).__module__.startswith("OpenSSL"):
        return f"TLS handshake failed: {exc}"
    if isinstance(exc, error.ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (error.TimeoutError, defer.CancelledError)):
        return "timed out"
    if isinstance(exc, exception.NovaError):
        return str(exc.kwargs.get("reason", exc))
    text = str(exc) or type(exc).__name__
    if "ACCESS_REFUSED" in text:
        return "login refused (check the user and password in [transport] url)"
    if "NOT_ALLOWED" in text and "vhost" in text:
        return "the virtual host does not exist or the user may not use it"
    return text.splitlines()[0][:300]
