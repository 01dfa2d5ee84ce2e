"""The IComputeDriver contract on the fake driver (in-memory guests)."""

from __future__ import annotations

from twisted.internet import reactor
from twisted.trial import unittest

from nova_twisted.virt.fake import FakeDriver
from tests.contract.driver_contract import ComputeDriverContract
from tests.image_helpers import context_for, make_store
from tests.libvirt_helpers import tiny_guest, upload_file


class FakeDriverContractTest(ComputeDriverContract, unittest.TestCase):
    """The contract suite on nova_twisted.virt.fake.FakeDriver."""

    boot_marker = "booted"
    timeout = 60

    async def make_driver(self):
        self.image_service = make_store(self)
        self.ctxt = context_for("tok-alice")
        driver = FakeDriver(None, reactor, self.image_service, self.host_name)
        self.addCleanup(driver.cleanup_host)
        await driver.init_host(self.host_name)
        return driver

    async def make_image(self):
        return await upload_file(self.image_service, self.ctxt, tiny_guest()["disk"], "fake-guest", "qcow2", "bare")

    async def guest_powers_itself_off(self, instance):
        self.driver.simulate_guest_poweroff(instance["uuid"])

    async def pause_outside_compute(self, instance):
        self.driver.simulate_external_pause(instance["uuid"])

    async def make_spawn_fail(self, instance, image_meta):
        instance["metadata"] = {"fake_driver:fail_spawn": "true"}
        return instance, image_meta
