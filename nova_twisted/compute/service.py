"""Builds the nova-compute service tree (no database: everything goes through conductor)."""

from __future__ import annotations

from nova_twisted.compute.manager import ComputeManager
from nova_twisted.conductor.rpcapi import ConductorAPI, ConductorServiceGroup
from nova_twisted.scheduler.rpcapi import SchedulerAPI
from nova_twisted.service import ServiceTree
from nova_twisted.virt import load_driver


def image_service_for_compute(conf, reactor, image_service=None):
    """The image service compute uses: the one given (nova-all) or a Glance v2 client."""
    if image_service is not None:
        return image_service
    from nova_twisted.image import build_glance_client

    return build_glance_client(conf, reactor)


def build(conf, reactor, transport=None, database=None, image_service=None):
    """Return nova-compute's service for ``[DEFAULT] host``."""
    tree = ServiceTree(conf, reactor, transport=transport, database=None, need_database=False)
    conductor = ConductorAPI(tree.transport)
    images = image_service_for_compute(conf, reactor, image_service)
    host = conf.DEFAULT.host
    driver = load_driver(conf, reactor, images, host)
    manager = ComputeManager(driver, conductor, SchedulerAPI(tree.transport), images, host, conf, reactor)
    tree.add("nova-compute", "compute", manager, ConductorServiceGroup(conductor, reactor))
    return tree.root
