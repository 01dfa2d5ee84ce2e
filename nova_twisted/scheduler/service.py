"""Builds the nova-scheduler service tree."""

from __future__ import annotations

from nova_twisted.compute.rpcapi import ComputeAPI
from nova_twisted.scheduler.manager import SchedulerManager
from nova_twisted.service import DatabaseServiceGroup, ServiceTree


def build(conf, reactor, transport=None, database=None):
    """Return nova-scheduler's service; shares ``transport``/``database`` when given (nova-all)."""
    tree = ServiceTree(conf, reactor, transport=transport, database=database)
    manager = SchedulerManager(tree.database, reactor, conf, ComputeAPI(tree.transport))
    tree.add("nova-scheduler", "scheduler", manager, DatabaseServiceGroup(tree.database, reactor))
    return tree.root
