"""A TCP (or TLS-terminating) proxy in front of RabbitMQ that tests can cut, close and freeze."""

from __future__ import annotations

from twisted.internet import defer, protocol, reactor


class _Upstream(protocol.Protocol):
    def connectionMade(self):
        self.factory.downstream.upstream_ready(self)

    def dataReceived(self, data):
        self.factory.downstream.from_broker(data)

    def connectionLost(self, reason):
        self.factory.downstream.upstream_lost()


class _Downstream(protocol.Protocol):
    def connectionMade(self):
        self.proxy = self.factory.proxy
        self.proxy.connections.append(self)
        self.upstream = None
        self.pending = []
        self.frozen = False
        factory = protocol.ClientFactory()
        factory.protocol = _Upstream
        factory.downstream = self
        factory.noisy = False
        reactor.connectTCP(self.proxy.target_host, self.proxy.target_port, factory)

    def upstream_ready(self, upstream):
        self.upstream = upstream
        for data in self.pending:
            upstream.transport.write(data)
        self.pending = []

    def dataReceived(self, data):
        if self.frozen:
            return
        if self.upstream is None:
            self.pending.append(data)
        else:
            self.upstream.transport.write(data)

    def from_broker(self, data):
        if not self.frozen:
            self.transport.write(data)

    def upstream_lost(self):
        self.transport.loseConnection()

    def connectionLost(self, reason):
        if self in self.proxy.connections:
            self.proxy.connections.remove(self)
        if self.upstream is not None:
            self.upstream.transport.loseConnection()

    def cut(self):
        self.transport.abortConnection()
        if self.upstream is not None:
            self.upstream.transport.abortConnection()


class BrokerProxy:
    """A TCP proxy in front of RabbitMQ that tests can cut, close and freeze."""

    def __init__(self, target_host="127.0.0.1", target_port=5672, tls_options=None):
        self.target_host = target_host
        self.target_port = target_port
        self.tls_options = tls_options  # terminate TLS here (the broker itself speaks plain AMQP)
        self.connections: list[_Downstream] = []
        self.port = 0
        self._listening = None

    def accept(self):
        factory = protocol.Factory()
        factory.protocol = _Downstream
        factory.proxy = self
        factory.noisy = False
        if self.tls_options is not None:
            self._listening = reactor.listenSSL(self.port, factory, self.tls_options, interface="127.0.0.1")
        else:
            self._listening = reactor.listenTCP(self.port, factory, interface="127.0.0.1")
        self.port = self._listening.getHost().port

    def refuse(self) -> defer.Deferred:
        listening, self._listening = self._listening, None
        return defer.maybeDeferred(listening.stopListening) if listening else defer.succeed(None)

    def cut(self):
        for conn in list(self.connections):
            conn.cut()

    def freeze(self):
        for conn in self.connections:
            conn.frozen = True

    def url(self, vhost_url: str) -> str:
        return vhost_url.replace("127.0.0.1:5672", f"127.0.0.1:{self.port}")
