"""The fake hypervisor driver, as a drop-in (``[compute] driver = fake``)."""

from twisted.plugin import IPlugin
from zope.interface import implementer

from nova_twisted.virt.interfaces import IComputeDriverFactory


@implementer(IPlugin, IComputeDriverFactory)
class FakeDriverFactory:
    name = "fake"

    def create(self, conf, clock, image_service, host):
        from nova_twisted.virt.fake import FakeDriver

        listen = conf.vnc.server_listen if hasattr(conf, "vnc") and hasattr(conf.vnc, "server_listen") else "127.0.0.1"
        return FakeDriver(conf, clock, image_service, host, vnc_listen=listen)


fake = FakeDriverFactory()
