"""The libvirt hypervisor driver, as a drop-in (``[compute] driver = libvirt``)."""

from twisted.plugin import IPlugin
from zope.interface import implementer

from nova_twisted.virt.interfaces import IComputeDriverFactory


@implementer(IPlugin, IComputeDriverFactory)
class LibvirtDriverFactory:
    """Makes LibvirtDriver objects; libvirt-python is imported only when one is made."""

    name = "libvirt"

    def create(self, conf, clock, image_service, host):
        from nova_twisted.virt.libvirt.driver import LibvirtDriver

        reactor = clock if hasattr(clock, "callFromThread") else None
        return LibvirtDriver(conf, clock, image_service, host, reactor=reactor)


libvirt = LibvirtDriverFactory()
