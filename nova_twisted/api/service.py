"""Builds the nova-api service tree: compute (:8774), identity (:5000) and image (:9292) APIs."""

from __future__ import annotations

from twisted.application.internet import TCPServer
from twisted.web.server import Site

from nova_twisted.api.auth import Authenticator
from nova_twisted.service import ServiceTree


class APISite(Site):
    """A Site that does not log a line per request through twisted's access log."""

    noisy = False

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
    api = conf.api
    TCPServer(api.compute_port, APISite(compute), interface=api.compute_listen).setServiceParent(tree.parent)
    build_identity_service(conf, tree.database, reactor, authenticator).setServiceParent(tree.parent)
    image_site = build_image_site(conf, tree.database, reactor, authenticator)
    TCPServer(api.image_port, image_site, interface=api.image_listen).setServiceParent(tree.parent)
    return tree.root
