"""Hypervisor drivers behind IComputeDriver, found as plugins."""

from __future__ import annotations

from nova_twisted import exception


def driver_factories() -> dict:
    """Return {name: IComputeDriverFactory} for every driver plugin installed."""
    from twisted.plugin import getPlugins

    import plugins
    from nova_twisted.virt.interfaces import IComputeDriverFactory

    return {factory.name: factory for factory in getPlugins(IComputeDriverFactory, plugins)}


def load_driver(conf, clock, image_service, host):
    """Return the IComputeDriver named by ``[compute] driver``; ConfigurationError if unknown."""
    factories = driver_factories()
    name = conf.compute.driver
    if name not in factories:
        known = ", ".join(sorted(factories)) or "none"
        raise exception.ConfigurationError(reason=f"[compute] driver: no driver plugin named {name!r} (have: {known})")
    return factories[name].create(conf, clock, image_service, host)
