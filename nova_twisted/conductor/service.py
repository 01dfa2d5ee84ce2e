"""Builds the nova-conductor service tree."""

from __future__ import annotations

from twisted.application.service import MultiService

from nova_twisted.conductor.manager import ConductorManager
from nova_twisted.db.api import Database
from nova_twisted.rpc import get_transport
from nova_twisted.service import DatabaseServiceGroup, NovaService, TransportService


def build(conf, reactor, transport=None, database=None):
    """Return nova-conductor's service; shares ``transport``/``database`` when given (nova-all)."""
    root = MultiService()
    if database is None:
        database = Database.from_config(conf, reactor)
        database.setServiceParent(root)
    if transport is None:
        transport = get_transport(conf.transport.url, clock=reactor)
        parent = TransportService(transport)
        parent.setServiceParent(root)
    else:
        parent = root
    manager = ConductorManager(database, reactor, conf)
    NovaService(
        "nova-conductor",
        conf.DEFAULT.host,
        "conductor",
        manager,
        transport=transport,
        servicegroup=DatabaseServiceGroup(database, reactor),
        clock=reactor,
        report_interval=conf.DEFAULT.report_interval,
        periodic_fuzzy_delay=conf.DEFAULT.periodic_fuzzy_delay,
        graceful_shutdown_timeout=conf.DEFAULT.graceful_shutdown_timeout,
    ).setServiceParent(parent)
    return root
