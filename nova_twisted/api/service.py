"""Builds the nova-api service tree: compute (:8774), identity (:5000) and image (:9292) APIs."""

from __future__ import annotations

from twisted.application.internet import TCPServer
from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web.http import HTTPChannel
from twisted.web.server import Site

from nova_twisted.api.auth import Authenticator
from nova_twisted.service import ServiceTree

log = Logger(namespace="nova.api.service")


class Drain(Service):
    """Stops after the API listeners (it is added before them): waits, at most
    ``timeout`` seconds, for the requests still in flight on ``routers``."""

    def __init__(self, routers, clock, timeout: float):
        self.routers = routers
        self.clock = clock
        self.timeout = timeout

    def stopService(self):
        super().stopService()
        busy = sum(router.in_flight for router in self.routers)
        if not busy:
            return None
        log.info("nova-api stopping: finishing {n} request(s) in flight", n=busy)
        waiting = defer.DeferredList([router.idle() for router in self.routers], consumeErrors=True)
        timer = self.clock.callLater(self.timeout, waiting.cancel)
        waiting.addBoth(lambda result: timer.active() and timer.cancel())
        return waiting


def _router(resource):
    return getattr(resource, "router", resource)


class APIChannel(HTTPChannel):
    """An HTTP/1.1 connection that learns its addresses and security once, not once per request.

    Twisted's Request asks its channel for both addresses on every request
    (the local one is a getsockname() call each time); neither changes
    while the connection lasts.
    """

    _host = _peer = _secure = None

    def getHost(self):
        if self._host is None:
            self._host = super().getHost()
        return self._host

    def getPeer(self):
        if self._peer is None:
            self._peer = super().getPeer()
        return self._peer

    def isSecure(self):
        if self._secure is None:
            self._secure = super().isSecure()
        return self._secure


class APISite(Site):
    """A Site that does not log a line per request through twisted's access log."""

    noisy = False
    protocol = APIChannel

    def log(self, request):  # the APIs log what matters themselves, with request ids
        pass


def build(conf, reactor, transport=None, database=None, image_service=None):
    """Return nova-api's service; shares ``transport``/``database``/``image_service`` when given (nova-all)."""
    from nova_twisted.api.compute.app import build_compute_resource
    from nova_twisted.identity import build_identity_service, build_validator
    from nova_twisted.image import build_image_service, build_image_site

    tree = ServiceTree(conf, reactor, transport=transport, database=database)
    validator = build_validator(conf, tree.database, reactor)
    authenticator = Authenticator(validator, reactor, cache_seconds=conf.api.token_cache_seconds)
    if image_service is None:
        image_service = build_image_service(conf, tree.database, reactor)
    compute = build_compute_resource(conf, tree.database, tree.transport, reactor, authenticator, image_service)
    identity = build_identity_service(conf, tree.database, reactor, authenticator)
    image_site = build_image_site(conf, tree.database, reactor, authenticator)
    # Added before the listeners, so stopped after them: no new requests, then the ones in flight finish.
    routers = [_router(compute), _router(identity.args[1].resource), _router(image_site.resource)]
    Drain(routers, reactor, conf.DEFAULT.graceful_shutdown_timeout).setServiceParent(tree.parent)
    api = conf.api
    TCPServer(api.compute_port, APISite(compute), interface=api.compute_listen).setServiceParent(tree.parent)
    identity.setServiceParent(tree.parent)
    TCPServer(api.image_port, image_site, interface=api.image_listen).setServiceParent(tree.parent)
    return tree.root
