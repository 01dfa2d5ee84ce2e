"""The libvirt driver's base-image cache, through the driver: real qemu-img overlays and the
built-in image store; domains on libvirt's test:///default (no guest needs to boot here).
"""

from __future__ import annotations

import os
import random
import time
import uuid

import pytest
from twisted.internet import defer, reactor, task
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from nova_twisted import exception
from nova_twisted.virt.libvirt import imagecache
from nova_twisted.virt.libvirt.driver import LibvirtDriver
from tests.contract.driver_contract import SMALL, async_test, qemu_img_info, sleep
from tests.libvirt_helpers import TEST_URI, image_store, libvirt_conf, scratch_dir, sweep_domains, upload_test_guest

pytestmark = pytest.mark.libvirt

AGE = 3600


class CountingImages:
    """The image store, counting downloads per image and making each take a moment (so spawns overlap)."""

    def __init__(self, store, delay: float = 0.3):
        self.store = store
        self.delay = delay
        self.downloads: dict[str, int] = {}

    def __getattr__(self, name):
        return getattr(self.store, name)

    async def _download(self, ctxt, image_id, path):
        self.downloads[image_id] = self.downloads.get(image_id, 0) + 1
        await sleep(self.delay)
        return await self.store.download(ctxt, image_id, path)

    def download(self, ctxt, image_id, path):
        return defer.ensureDeferred(self._download(ctxt, image_id, path))


class ImageCacheThroughTheDriverTest(unittest.TestCase):
    timeout = 120

    async def _setup(self):
        self.host_name = f"cache-{uuid.uuid4().hex[:8]}"
        self.instances_path = os.path.join(scratch_dir(self), "instances")
        store, self.ctxt = image_store(self)
        self.images = CountingImages(store)
        self.clock = task.Clock()
        self.clock.advance(time.time())
        conf = libvirt_conf(self.instances_path, TEST_URI, **{"libvirt.remove_unused_base_images_age": AGE})
        self.driver = LibvirtDriver(conf, self.clock, self.images, self.host_name, reactor=reactor)
        self.addCleanup(deferToThread, sweep_domains, TEST_URI, self.host_name)
        self.addCleanup(self.driver.cleanup_host)
        await self.driver.init_host(self.host_name)
        # An ami: the cached base is raw, the overlays name it as such.
        self.image = await upload_test_guest(store, self.ctxt, disk_format="ami")
        self.base_dir = os.path.join(self.instances_path, "_base")

    def _instance(self):
        ident = 0x7E570000 + random.randint(0, 0xFFFF)
        return dict(
            SMALL,
            uuid=str(uuid.uuid4()),
            id=ident,
            name=f"instance-{ident:08x}",
            flavor=dict(SMALL),
            image_ref=self.image["id"],
            host=self.host_name,
            project_id=self.ctxt.project_id,
        )

    async def _spawn(self, count=1):
        instances = [self._instance() for _ in range(count)]
        for instance in instances:
            self.addCleanup(self.driver.destroy, self.ctxt, instance)
        await defer.gatherResults(
            [defer.ensureDeferred(self.driver.spawn(self.ctxt, i, self.image)) for i in instances], consumeErrors=True
        )
        return instances

    def _bases(self):
        return sorted(name for name in os.listdir(self.base_dir) if len(name) == 40)

    @async_test
    async def test_three_instances_of_one_image_share_one_base_file(self):
        await self._setup()
        instances = await self._spawn(3)
        machine_base = os.path.join(self.base_dir, imagecache.base_name(self.image["id"]))
        expected = sorted(imagecache.base_name(self.image[k]) for k in ("id", "kernel_id", "ramdisk_id"))
        self.assertEqual(self._bases(), expected)  # the image, its kernel and ramdisk: once each
        for instance in instances:
            info = await qemu_img_info(os.path.join(self.instances_path, instance["uuid"], "disk"), "qcow2")
            self.assertEqual(info["full-backing-filename"], machine_base)
            self.assertEqual(info["backing-filename-format"], "raw")
            self.assertEqual(info["virtual-size"], SMALL["root_gb"] * 1024**3)
        self.assertEqual(sorted(await self.driver.list_instances()), sorted(i["uuid"] for i in instances))

    @async_test
    async def test_concurrent_spawns_download_each_image_once(self):
        await self._setup()
        await self._spawn(3)
        self.assertEqual(
            self.images.downloads, {self.image["id"]: 1, self.image["kernel_id"]: 1, self.image["ramdisk_id"]: 1}
        )
        await self._spawn(1)  # a later spawn finds the verified base
        self.assertEqual(self.images.downloads[self.image["id"]], 1)

    @async_test
    async def test_a_corrupted_base_is_rejected_deleted_and_fetched_again_next_time(self):
        await self._setup()
        (first,) = await self._spawn(1)
        await self.driver.destroy(self.ctxt, first)
        base = os.path.join(self.base_dir, imagecache.base_name(self.image["id"]))
        with open(base, "r+b") as handle:
            handle.seek(512)
            handle.write(b"bit rot")
        victim = self._instance()
        with self.assertRaises(exception.HypervisorError) as caught:
            await self.driver.spawn(self.ctxt, victim, self.image)
        self.assertIn("failed verification", str(caught.exception))
        self.assertFalse(os.path.exists(base))
        self.assertFalse(os.path.exists(os.path.join(self.instances_path, victim["uuid"])))
        self.assertNotIn(victim["uuid"], await self.driver.list_instances())
        await self._spawn(1)
        self.assertEqual(self.images.downloads[self.image["id"]], 2)
        self.assertTrue(os.path.exists(base))

    @async_test
    async def test_a_download_that_does_not_match_the_image_service_is_refused(self):
        await self._setup()
        real_download = self.images.store.download

        async def tampered(ctxt, image_id, path):
            figures = await real_download(ctxt, image_id, path)
            with open(path, "ab") as handle:
                handle.write(b"extra")
            return dict(figures, size=figures["size"] + 5)

        self.images.store.download = lambda *a: defer.ensureDeferred(tampered(*a))
        instance = self._instance()
        with self.assertRaises(exception.HypervisorError):
            await self.driver.spawn(self.ctxt, instance, self.image)
        self.assertEqual(os.listdir(self.base_dir), [])  # neither the base nor a partial file
        self.assertFalse(os.path.exists(os.path.join(self.instances_path, instance["uuid"])))

    @async_test
    async def test_cache_manager_removes_a_base_after_the_last_instance_and_the_age_never_before(self):
        await self._setup()
        first, second = await self._spawn(2)
        everything = self._bases()
        self.clock.advance(10 * AGE)
        result = await self.driver.manage_image_cache(self.ctxt, [])
        self.assertEqual(sorted(result["in_use"]), everything)
        self.assertEqual(self._bases(), everything)  # in use: never removed, however old
        await self.driver.destroy(self.ctxt, first)
        self.clock.advance(10 * AGE)
        await self.driver.manage_image_cache(self.ctxt, [])
        self.assertEqual(self._bases(), everything)  # the second instance still uses them
        await self.driver.destroy(self.ctxt, second)
        self.clock.advance(AGE - 1)
        result = await self.driver.manage_image_cache(self.ctxt, [])
        self.assertEqual(self._bases(), everything)  # unused, but not for long enough yet
        self.assertEqual(sorted(result["kept"]), everything)
        # Compute's own list of instances counts too: an instance it knows keeps its image.
        self.clock.advance(2)
        known = {
            "uuid": "gone-from-disk",
            **{
                k: self.image[v]
                for k, v in (("image_ref", "id"), ("kernel_id", "kernel_id"), ("ramdisk_id", "ramdisk_id"))
            },
        }
        await self.driver.manage_image_cache(self.ctxt, [known])
        self.assertEqual(self._bases(), everything)
        self.clock.advance(AGE)
        result = await self.driver.manage_image_cache(self.ctxt, [])
        self.assertEqual(sorted(result["removed"]), everything)
        self.assertEqual(os.listdir(self.base_dir), [])
