"""The IImageService contract, for every implementation.

:class:`ImageServiceContract` uses only the interface. It runs against the
built-in store (on SQLite and on the real MariaDB) and against the Glance v2
client talking over real HTTP (a listening loopback port) to the built-in
image API.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time

import pytest
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from nova_twisted import exception
from nova_twisted.image.glance import GlanceClient
from nova_twisted.image.interfaces import IImageService
from tests.conftest import mysql_scratch_url
from tests.image_helpers import ImageAPIServer, async_test, context_for, make_store, write_file


def _hashes(path: str) -> tuple[str, str, int]:
    md5, sha512 = hashlib.md5(), hashlib.sha512()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            md5.update(block)
            sha512.update(block)
    return md5.hexdigest(), sha512.hexdigest(), os.path.getsize(path)


class ImageServiceContract:
    """Test methods every IImageService must pass; subclasses set ``self.service`` in :meth:`make_service`."""

    async def make_service(self):
        raise NotImplementedError

    async def _setup(self):
        self.service = await self.make_service()
        self.alice = context_for("tok-alice")
        self.bob = context_for("tok-bob")
        self.admin = context_for("tok-admin")
        self.tmp = tempfile.mkdtemp(prefix="nova-image-contract-")

    async def _image(self, ctxt=None, **metadata):
        body = {"name": "cirros", "disk_format": "qcow2", "container_format": "bare"}
        body.update(metadata)
        return await self.service.create(ctxt or self.alice, body)

    async def _active(self, ctxt=None, size=300_000, seed=1, **metadata):
        image = await self._image(ctxt, **metadata)
        path = write_file(os.path.join(self.tmp, f"src-{image['id']}"), size, seed)
        return await self.service.upload(ctxt or self.alice, image["id"], path), path

    async def _fails(self, exc_type, d):
        try:
            await d
        except exc_type as exc:
            return exc
        self.fail(f"expected {exc_type.__name__}")

    # -- create / show ----------------------------------------------------------------
    @async_test
    async def test_provides_the_interface(self):
        await self._setup()
        self.assertTrue(verifyObject(IImageService, self.service))

    @async_test
    async def test_create_gives_a_queued_image_owned_by_the_callers_project(self):
        await self._setup()
        image = await self._image(min_disk=1, min_ram=64, kernel_id="k-1", hw_disk_bus="virtio", tags=["a", "b"])
        self.assertEqual(image["status"], "queued")
        self.assertEqual(image["owner"], "proj-a")
        self.assertEqual(image["visibility"], "shared")
        self.assertIsNone(image["size"])
        self.assertIsNone(image["checksum"])
        shown = await self.service.show(self.alice, image["id"])
        self.assertEqual(
            {k: shown[k] for k in ("name", "disk_format", "container_format", "min_disk", "min_ram", "protected")},
            {
                "name": "cirros",
                "disk_format": "qcow2",
                "container_format": "bare",
                "min_disk": 1,
                "min_ram": 64,
                "protected": False,
            },
        )
        self.assertEqual((shown["kernel_id"], shown["hw_disk_bus"]), ("k-1", "virtio"))
        self.assertEqual(sorted(shown["tags"]), ["a", "b"])

    @async_test
    async def test_create_refuses_read_only_attributes_and_bad_formats(self):
        await self._setup()
        await self._fails(exception.Forbidden, self._image(status="active"))
        await self._fails(exception.Invalid, self._image(disk_format="floppy"))
        await self._fails(exception.Invalid, self._image(min_ram=-1))

    @async_test
    async def test_show_of_an_unknown_image_is_not_found(self):
        await self._setup()
        await self._fails(
            exception.ImageNotFound, self.service.show(self.alice, "3c9f4e8e-0000-4000-8000-000000000000")
        )

    # -- data -------------------------------------------------------------------------
    @async_test
    async def test_upload_makes_the_image_active_with_its_size_and_hashes(self):
        await self._setup()
        image, path = await self._active(size=2_500_000)
        md5, sha512, size = _hashes(path)
        self.assertEqual(image["status"], "active")
        self.assertEqual((image["size"], image["checksum"]), (size, md5))
        self.assertEqual((image["os_hash_algo"], image["os_hash_value"]), ("sha512", sha512))

    @async_test
    async def test_download_writes_the_same_bytes_and_reports_their_hashes(self):
        await self._setup()
        image, path = await self._active(size=3_100_000, seed=5)
        target = os.path.join(self.tmp, "downloaded")
        result = await self.service.download(self.alice, image["id"], target)
        md5, sha512, size = _hashes(path)
        self.assertEqual((result["size"], result["checksum"], result["os_hash_value"]), (size, md5, sha512))
        self.assertEqual(_hashes(target), (md5, sha512, size))

    @async_test
    async def test_an_empty_file_gives_an_active_image_of_size_zero(self):
        await self._setup()
        image, _ = await self._active(size=0)
        self.assertEqual((image["status"], image["size"]), ("active", 0))
        self.assertEqual(image["checksum"], hashlib.md5(b"").hexdigest())

    @async_test
    async def test_download_of_an_image_without_data_is_a_conflict(self):
        await self._setup()
        image = await self._image()
        await self._fails(exception.Conflict, self.service.download(self.alice, image["id"], self.tmp + "/x"))

    @async_test
    async def test_a_second_upload_is_a_conflict(self):
        await self._setup()
        image, path = await self._active()
        await self._fails(exception.Conflict, self.service.upload(self.alice, image["id"], path))
        self.assertEqual((await self.service.show(self.alice, image["id"]))["status"], "active")

    @async_test
    async def test_upload_without_formats_is_invalid_and_leaves_the_image_queued(self):
        await self._setup()
        image = await self.service.create(self.alice, {"name": "no formats"})
        path = write_file(os.path.join(self.tmp, "src"), 1000)
        await self._fails(exception.Invalid, self.service.upload(self.alice, image["id"], path))
        self.assertEqual((await self.service.show(self.alice, image["id"]))["status"], "queued")

    @async_test
    async def test_a_failed_upload_leaves_the_image_killed(self):
        await self._setup()
        image = await self._image()
        # A directory has a size but cannot be read: the upload fails once data should flow.
        unreadable = tempfile.mkdtemp(dir=self.tmp)
        with self.assertRaises(Exception):  # noqa: B017 - each implementation reports it its own way
            await self.service.upload(self.alice, image["id"], unreadable)
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline:
            status = (await self.service.show(self.alice, image["id"]))["status"]
            if status == "killed":
                break
            await deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(status, "killed")
        await self._fails(exception.Conflict, self.service.download(self.alice, image["id"], self.tmp + "/x"))

    # -- list -------------------------------------------------------------------------
    @async_test
    async def test_list_filters_by_name_status_tag_property_format_and_size(self):
        await self._setup()
        big, _ = await self._active(name="big", size=200_000, tags=["gold"], os_distro="debian")
        small, _ = await self._active(name="small", size=1_000, disk_format="raw")
        queued = await self._image(name="queued", tags=["gold"])

        async def names(**filters):
            return sorted(i["name"] for i in await self.service.list(self.alice, filters=filters))

        self.assertEqual(await names(), ["big", "queued", "small"])
        self.assertEqual(await names(name="small"), ["small"])
        self.assertEqual(await names(status="queued"), ["queued"])
        self.assertEqual(await names(tag="gold"), ["big", "queued"])
        self.assertEqual(await names(os_distro="debian"), ["big"])
        self.assertEqual(await names(disk_format="raw"), ["small"])
        self.assertEqual(await names(container_format="bare", status="active"), ["big", "small"])
        self.assertEqual(await names(size_min=100_000), ["big"])
        self.assertEqual(await names(size_max=100_000), ["small"])
        self.assertEqual(await names(owner="proj-a", name="in:big,queued"), ["big", "queued"])
        self.assertEqual(queued["status"], "queued")
        self.assertNotEqual(big["id"], small["id"])

    @async_test
    async def test_list_pages_with_limit_and_marker_in_sort_order(self):
        await self._setup()
        for name in ["d", "b", "e", "a", "c"]:
            await self._image(name=name)
        first = await self.service.list(self.alice, limit=2, sort_key="name", sort_dir="asc")
        self.assertEqual([i["name"] for i in first], ["a", "b"])
        rest = await self.service.list(self.alice, marker=first[-1]["id"], sort_key="name", sort_dir="asc")
        self.assertEqual([i["name"] for i in rest], ["c", "d", "e"])
        newest_first = await self.service.list(self.alice)
        self.assertEqual([i["name"] for i in newest_first], ["c", "a", "e", "b", "d"])

    # -- update -----------------------------------------------------------------------
    @async_test
    async def test_update_sets_and_removes_properties_and_core_attributes(self):
        await self._setup()
        image = await self._image(hw_video_model="vga", architecture="x86_64")
        updated = await self.service.update(
            self.alice,
            image["id"],
            {"name": "renamed", "min_ram": 512, "hw_video_model": "virtio", "os_type": "linux"},
            remove=["architecture", "never_there"],
        )
        self.assertEqual((updated["name"], updated["min_ram"]), ("renamed", 512))
        self.assertEqual((updated["hw_video_model"], updated["os_type"]), ("virtio", "linux"))
        self.assertNotIn("architecture", updated)
        self.assertEqual(await self.service.show(self.alice, image["id"]), updated)

    @async_test
    async def test_update_refuses_read_only_attributes(self):
        await self._setup()
        image = await self._image()
        await self._fails(exception.Forbidden, self.service.update(self.alice, image["id"], {"status": "active"}))
        await self._fails(exception.Forbidden, self.service.update(self.alice, image["id"], {"checksum": "0" * 32}))

    # -- delete and protection --------------------------------------------------------
    @async_test
    async def test_delete_removes_the_image_and_its_data(self):
        await self._setup()
        image, _ = await self._active()
        await self.service.delete(self.alice, image["id"])
        await self._fails(exception.ImageNotFound, self.service.show(self.alice, image["id"]))
        await self._fails(exception.ImageNotFound, self.service.download(self.alice, image["id"], self.tmp + "/x"))
        self.assertNotIn(image["id"], [i["id"] for i in await self.service.list(self.alice)])

    @async_test
    async def test_a_protected_image_cannot_be_deleted_until_unprotected(self):
        await self._setup()
        image = await self._image(protected=True)
        await self._fails(exception.Conflict, self.service.delete(self.alice, image["id"]))
        self.assertEqual((await self.service.show(self.alice, image["id"]))["protected"], True)
        await self.service.update(self.alice, image["id"], {"protected": False})
        await self.service.delete(self.alice, image["id"])
        await self._fails(exception.ImageNotFound, self.service.show(self.alice, image["id"]))

    # -- isolation between projects ------------------------------------------------------
    @async_test
    async def test_a_private_image_is_invisible_to_another_project(self):
        await self._setup()
        image, _ = await self._active(visibility="private")
        await self._fails(exception.ImageNotFound, self.service.show(self.bob, image["id"]))
        await self._fails(exception.ImageNotFound, self.service.download(self.bob, image["id"], self.tmp + "/x"))
        await self._fails(exception.ImageNotFound, self.service.update(self.bob, image["id"], {"name": "mine"}))
        await self._fails(exception.ImageNotFound, self.service.delete(self.bob, image["id"]))
        self.assertEqual(await self.service.list(self.bob), [])
        self.assertEqual([i["id"] for i in await self.service.list(self.alice)], [image["id"]])
        self.assertEqual((await self.service.show(self.admin, image["id"]))["owner"], "proj-a")

    @async_test
    async def test_a_public_image_is_readable_but_not_changeable_by_another_project(self):
        await self._setup()
        image, path = await self._active(ctxt=self.admin, visibility="public")
        self.assertIn(image["id"], [i["id"] for i in await self.service.list(self.bob)])
        result = await self.service.download(self.bob, image["id"], self.tmp + "/bob")
        self.assertEqual(result["checksum"], _hashes(path)[0])
        await self._fails(exception.Forbidden, self.service.update(self.bob, image["id"], {"name": "mine"}))
        await self._fails(exception.Forbidden, self.service.delete(self.bob, image["id"]))

    @async_test
    async def test_only_an_admin_makes_an_image_public(self):
        await self._setup()
        await self._fails(exception.Forbidden, self._image(visibility="public"))
        image = await self._image()
        await self._fails(exception.Forbidden, self.service.update(self.alice, image["id"], {"visibility": "public"}))
        made_public = await self.service.update(self.admin, image["id"], {"visibility": "public"})
        self.assertEqual(made_public["visibility"], "public")

    @async_test
    async def test_a_community_image_is_listed_for_others_only_when_asked_for(self):
        await self._setup()
        image = await self._image(visibility="community")
        self.assertEqual(await self.service.list(self.bob), [])
        listed = await self.service.list(self.bob, filters={"visibility": "community"})
        self.assertEqual([i["id"] for i in listed], [image["id"]])
        self.assertEqual((await self.service.show(self.bob, image["id"]))["visibility"], "community")


class BuiltinStoreOnSQLiteTests(ImageServiceContract, unittest.TestCase):
    """The built-in store, on SQLite."""

    async def make_service(self):
        return make_store(self)


@pytest.mark.mysql
class BuiltinStoreOnMariaDBTests(ImageServiceContract, unittest.TestCase):
    """The built-in store, on the real MariaDB."""

    async def make_service(self):
        url, drop = mysql_scratch_url()
        self.addCleanup(drop)
        return make_store(self, url)


class GlanceClientOverHTTPTests(ImageServiceContract, unittest.TestCase):
    """The Glance v2 client, over a real loopback connection, against the built-in image API."""

    async def make_service(self):
        store = make_store(self)
        server = ImageAPIServer(store)
        self.addCleanup(server.stop)
        client = GlanceClient(reactor, server.url, timeout=10, chunk_size=64 * 1024)
        self.addCleanup(client.close)
        return client
