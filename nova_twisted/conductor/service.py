"""Builds the nova-conductor service tree."""

from __future__ import annotations

from nova_twisted.conductor.manager import ConductorManager
from nova_twisted.service import DatabaseServiceGroup, ServiceTree


def build(conf, reactor, transport=None, database=None):
    """Return nova-conductor's service; shares ``transport``/``database`` when given (nova-all)."""
    tree = ServiceTree(conf, reactor, transport=transport, database=database)
    manager = ConductorManager(tree.database, reactor, conf)
    tree.add("nova-conductor", "conductor", manager, DatabaseServiceGroup(tree.database, reactor))
    return tree.root
