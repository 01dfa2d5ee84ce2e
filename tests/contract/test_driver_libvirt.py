"""The IComputeDriver contract on the libvirt driver: real QEMU/TCG guests on qemu:///system.

The guest is the tiny test guest (tools/make_test_guest.py: Debian's cloud
kernel and a busybox initramfs) booted AMI-style from images in the
built-in image store. Beyond the contract, tests here check what only a
real guest shows: the soft reboot goes through ACPI and falls back to a
hard reboot for a guest that ignores it, a resize grows the disk the guest
sees, the snapshot holds the guest's disk contents.
"""

from __future__ import annotations

import base64
import os

import libvirt
import pytest
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.internet.utils import getProcessValue
from twisted.trial import unittest

from nova_twisted import exception
from nova_twisted.compute import states
from nova_twisted.virt.libvirt.driver import LibvirtDriver
from tests.contract.driver_contract import (
    LARGE,
    SMALL,
    ComputeDriverContract,
    async_test,
    qemu_img_info,
    wait_until,
)
from tests.libvirt_helpers import (
    QEMU_URI,
    domain_exists,
    image_store,
    libvirt_conf,
    scratch_dir,
    sweep_domains,
    tiny_guest,
    upload_file,
    upload_test_guest,
)

pytestmark = [pytest.mark.libvirt, pytest.mark.slow]


class LibvirtDriverBase:
    """Makes a LibvirtDriver on qemu:///system over a scratch instances path and image store."""

    uri = QEMU_URI
    conf_overrides: dict = {}

    async def make_driver(self, **overrides):
        self.instances_path = os.path.join(scratch_dir(self), "instances")
        self.image_service, self.ctxt = image_store(self)
        self.conf = libvirt_conf(self.instances_path, self.uri, **{**self.conf_overrides, **overrides})
        driver = LibvirtDriver(self.conf, reactor, self.image_service, self.host_name)
        # Runs after the driver's own clean-up (clean-ups run last-in first-out).
        self.addCleanup(deferToThread, sweep_domains, self.uri, self.host_name)
        self.addCleanup(driver.cleanup_host)
        await driver.init_host(self.host_name)
        return driver

    async def make_image(self):
        return await upload_test_guest(self.image_service, self.ctxt)

    async def leftovers(self, instance):
        found = []
        base = os.path.join(self.instances_path, instance["uuid"])
        for path in (base, base + "_resize"):
            if os.path.exists(path):
                found.append(path)
        if await deferToThread(domain_exists, self.uri, instance["uuid"]):
            found.append(f"domain {instance['uuid']}")
        return found


class LibvirtDriverContractTest(LibvirtDriverBase, ComputeDriverContract, unittest.TestCase):
    """The contract suite on real guests."""

    boot_marker = tiny_guest()["banner"]

    def _outside(self, instance, action):
        # Another libvirt client (like virsh), not the driver.
        def act():
            conn = libvirt.open(self.uri)
            try:
                getattr(conn.lookupByUUIDString(instance["uuid"]), action)()
            finally:
                conn.close()

        return deferToThread(act)

    async def guest_powers_itself_off(self, instance):
        # `virsh shutdown` presses the ACPI power button; the guest's own init then powers it off.
        await self._outside(instance, "shutdown")

    async def pause_outside_compute(self, instance):
        await self._outside(instance, "suspend")  # `virsh suspend`

    async def make_spawn_fail(self, instance, image_meta):
        # A kernel image QEMU cannot load: the domain is defined, then fails to start.
        scratch = scratch_dir(self)
        junk = os.path.join(scratch, "junk-kernel")
        with open(junk, "wb") as handle:
            handle.write(b"this is not a kernel\n" * 4096)
        kernel = await upload_file(self.image_service, self.ctxt, junk, "junk-kernel", "aki", "aki")
        image = await upload_file(
            self.image_service,
            self.ctxt,
            tiny_guest()["disk"],
            "junk-kernel-guest",
            "qcow2",
            "bare",
            kernel_id=kernel["id"],
            ramdisk_id=image_meta["ramdisk_id"],
        )
        instance.update(image_ref=image["id"], kernel_id=kernel["id"])
        return instance, image

    async def check_snapshot_data(self, path, snapshot):
        # The standalone snapshot holds what the guest's disk held: the machine image's contents.
        info = await qemu_img_info(path, "qcow2")
        self.assertEqual(info["virtual-size"], SMALL["root_gb"] * 1024**3)
        code = await getProcessValue(
            "qemu-img", ["compare", "-q", "-f", "qcow2", "-F", "qcow2", tiny_guest()["disk"], path], env=os.environ
        )
        self.assertEqual(code, 0, "the snapshot's data differs from the machine image")

    async def boot_mark(self, instance):
        output = await self.driver.get_console_output(self.ctxt, instance)
        return output.count(self.boot_marker)

    async def guest_settled(self, instance, mark) -> str:
        """Wait until the guest finished a boot started after ``mark``; return what that boot printed."""

        async def booted_again():
            output = await self.driver.get_console_output(self.ctxt, instance)
            if output.count(self.boot_marker) > mark:
                return output.rsplit(self.boot_marker, 1)[0].rsplit("\n", 4)[-4:]

        return "\n".join(await wait_until(booted_again, self.boot_timeout, f"a new boot of {instance['name']}"))

    async def after_soft_reboot(self, instance):
        # The soft reboot went through the guest: its init saw the ACPI power button.
        output = await self.driver.get_console_output(self.ctxt, instance)
        self.assertIn("power button pressed, powering off", output)

    async def after_revert(self, instance):
        disk = os.path.join(self.instances_path, instance["uuid"], "disk")
        self.assertEqual((await qemu_img_info(disk, "qcow2"))["virtual-size"], SMALL["root_gb"] * 1024**3)
        self.assertFalse(os.path.exists(os.path.join(self.instances_path, instance["uuid"] + "_resize")))

    async def after_confirm(self, instance, mark):
        disk = os.path.join(self.instances_path, instance["uuid"], "disk")
        info = await qemu_img_info(disk, "qcow2")
        self.assertEqual(info["virtual-size"], LARGE["root_gb"] * 1024**3)
        self.assertTrue(info["backing-filename"].startswith(os.path.join(self.instances_path, "_base")))
        self.assertFalse(os.path.exists(os.path.join(self.instances_path, instance["uuid"] + "_resize")))
        # The guest itself sees the bigger disk and the second CPU, with the machine image's data intact.
        last_boot = await self.guest_settled(instance, mark)
        self.assertIn("root disk vda 4194304 sectors, says: nova-twisted test machine image", last_boot)
        self.assertIn("cpus 2", last_boot)


class LibvirtGuestBehaviourTest(LibvirtDriverBase, unittest.TestCase):
    """What only a real guest shows, beyond the contract."""

    timeout = 300
    banner = tiny_guest()["banner"]

    async def _setup(self, os_command_line=None, **overrides):
        import uuid

        self.host_name = f"libvirt-{uuid.uuid4().hex[:8]}"
        self.driver = await self.make_driver(**overrides)
        self.image_meta = await upload_test_guest(self.image_service, self.ctxt, os_command_line)

    def _instance(self, flavor=SMALL):
        import random
        import uuid

        ident = 0x7E570000 + random.randint(0, 0xFFFF)
        return {
            "uuid": str(uuid.uuid4()),
            "id": ident,
            "name": f"instance-{ident:08x}",
            "memory_mb": flavor["memory_mb"],
            "vcpus": flavor["vcpus"],
            "root_gb": flavor["root_gb"],
            "ephemeral_gb": flavor["ephemeral_gb"],
            "flavor": dict(flavor),
            "host": self.host_name,
            "project_id": self.ctxt.project_id,
        }

    async def _console(self, instance):
        return await self.driver.get_console_output(self.ctxt, instance)

    async def _wait_console(self, instance, text, count=1, timeout=60):
        from tests.contract.driver_contract import wait_until

        async def seen():
            return (await self._console(instance)).count(text) >= count

        await wait_until(seen, timeout, f"{count} x {text!r} on the console", interval=0.25)

    async def _spawn(self, flavor=SMALL, **extra):
        instance = dict(self._instance(flavor), **extra)
        self.addCleanup(lambda: self.driver.destroy(self.ctxt, instance))
        await self.driver.spawn(self.ctxt, instance, self.image_meta)
        return instance

    @async_test
    async def test_soft_reboot_of_a_guest_ignoring_acpi_falls_back_to_a_hard_reboot(self):
        await self._setup(os_command_line="console=ttyS0 nova_test.ignore_acpi=1", **{"libvirt.soft_reboot_timeout": 2})
        instance = await self._spawn()
        await self._wait_console(instance, self.banner)
        started = reactor.seconds()
        await self.driver.reboot(self.ctxt, instance, "SOFT")
        self.assertGreaterEqual(reactor.seconds() - started, 2)
        await self._wait_console(instance, self.banner, count=2)
        output = await self._console(instance)
        self.assertIn("ignoring ACPI", output)
        self.assertNotIn("power button pressed", output)
        self.assertEqual((await self.driver.get_info(instance))["state"], states.RUNNING)

    @async_test
    async def test_a_root_disk_never_shrinks(self):
        await self._setup()
        instance = await self._spawn(LARGE)
        with self.assertRaises(exception.Invalid):
            await self.driver.resize(self.ctxt, instance, dict(SMALL))
        info = await self.driver.get_info(instance)
        self.assertEqual((info["state"], info["num_cpu"]), (states.RUNNING, 2))

    @async_test
    async def test_user_data_reaches_the_guest_on_a_config_drive(self):
        await self._setup()
        user_data = base64.b64encode(b"hello from user data").decode()
        instance = await self._spawn(user_data=user_data, key_data="ssh-ed25519 AAAAC3 test@key")
        await self._wait_console(instance, self.banner)
        output = await self._console(instance)
        self.assertIn(f"config drive on /dev/vdb, uuid {instance['uuid']}", output)
        self.assertIn("user data: hello from user data", output)

    @async_test
    async def test_instance_files_and_domain_xml(self):
        await self._setup()
        instance = await self._spawn()
        directory = os.path.join(self.instances_path, instance["uuid"])
        self.assertEqual(
            sorted(os.listdir(directory)), ["console.log", "disk", "images.json", "kernel", "libvirt.xml", "ramdisk"]
        )
        with open(os.path.join(directory, "libvirt.xml")) as handle:
            xml = handle.read()
        for fragment in ("<kernel>", "<initrd>", "console=ttyS0", 'type="vnc"', 'type="spice"', "console.log"):
            self.assertIn(fragment, xml)
        info = await qemu_img_info(os.path.join(directory, "disk"), "qcow2")
        self.assertEqual(info["backing-filename-format"], "qcow2")
        await self.driver.destroy(self.ctxt, instance)
        self.assertFalse(os.path.exists(directory))
