"""nova-all: every service of the cloud in one process, on the in-memory bus.

The same service objects as the separate daemons, wired to one shared
database, one in-memory transport and the built-in image store.
"""

from __future__ import annotations

from twisted.application.service import MultiService

from nova_twisted.db.api import Database
from nova_twisted.rpc import get_transport
from nova_twisted.service import TransportService


def build(conf, reactor):
    """Return the whole cloud's service tree."""
    from nova_twisted.api import service as api_service
    from nova_twisted.compute import service as compute_service
    from nova_twisted.conductor import service as conductor_service
    from nova_twisted.image import build_image_service
    from nova_twisted.scheduler import service as scheduler_service

    root = MultiService()
    database = Database.from_config(conf, reactor)
    database.setServiceParent(root)
    transport = get_transport(conf.transport, clock=reactor)
    bus = TransportService(transport)
    bus.setServiceParent(root)
    images = build_image_service(conf, database, reactor)
    # Start order: conductor and scheduler first, compute (which registers through conductor), then the APIs.
    for build_service in (conductor_service.build, scheduler_service.build):
        build_service(conf, reactor, transport, database).setServiceParent(bus)
    compute_service.build(conf, reactor, transport, image_service=images).setServiceParent(bus)
    api_service.build(conf, reactor, transport, database, image_service=images).setServiceParent(bus)
    return root
