"""The real ``openstack`` CLI against the built-in identity and image APIs.

Identity (Keystone v3, :5000-like) and the image API (:9292-like) listen on
free loopback ports of the test's reactor; the identity catalog's image
URL points at the image port. The CLI runs as a child process (never
blocking the reactor) and creates, lists, shows, sets properties on,
downloads and deletes an image; checksums must match the files.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

import pytest
from twisted.internet import utils
from twisted.trial import unittest

from tests.image_helpers import async_test, start_cloud, write_file

OPENSTACK = os.path.join(os.path.dirname(sys.executable), "openstack")
GLANCE = os.path.join(os.path.dirname(sys.executable), "glance")


def _md5(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(OPENSTACK), reason="python-openstackclient is not installed in the venv")
class OpenStackImageCLITests(unittest.TestCase):
    timeout = 240

    async def start_cloud(self):
        self.cloud = await start_cloud(self)
        self.tmp = self.cloud.tmp
        self.project_id = self.cloud.project_id
        self.env = dict(
            os.environ,
            OS_AUTH_URL=self.cloud.auth_url,
            OS_IDENTITY_API_VERSION="3",
            OS_IMAGE_API_VERSION="2",
            OS_USERNAME="demo",
            OS_PASSWORD="secret-pw",
            OS_PROJECT_NAME="demo",
            OS_USER_DOMAIN_NAME="Default",
            OS_PROJECT_DOMAIN_NAME="Default",
            OS_REGION_NAME="RegionOne",
            OS_INTERFACE="public",
            HOME=self.tmp,
        )
        for key in ("OS_CLOUD", "OS_TOKEN", "OS_AUTH_TYPE"):
            self.env.pop(key, None)

    async def openstack(self, *args: str, program: str = OPENSTACK) -> str:
        out, err, code = await utils.getProcessOutputAndValue(program, args, env=self.env, path=self.tmp)
        self.assertEqual(code, 0, f"{os.path.basename(program)} {' '.join(args)} failed:\n{err.decode()[-3000:]}")
        return out.decode()

    async def openstack_json(self, *args: str):
        return json.loads(await self.openstack(*args, "-f", "json"))

    @async_test
    async def test_cli_creates_lists_shows_sets_saves_and_deletes_an_image(self):
        await self.start_cloud()
        source = write_file(os.path.join(self.tmp, "disk.qcow2"), 3 * 1024 * 1024 + 123, seed=9)
        created = await self.openstack_json(
            "image",
            "create",
            "--file",
            source,
            "--disk-format",
            "qcow2",
            "--container-format",
            "bare",
            "--property",
            "os_distro=cirros",
            "cli-image",
        )
        image_id = created["id"]
        self.assertEqual(created["status"], "active")

        listed = await self.openstack_json("image", "list")
        self.assertEqual([(i["ID"], i["Name"], i["Status"]) for i in listed], [(image_id, "cli-image", "active")])

        shown = await self.openstack_json("image", "show", image_id)
        self.assertEqual(shown["checksum"], _md5(source))
        self.assertEqual(shown["size"], os.path.getsize(source))
        self.assertEqual((shown["disk_format"], shown["container_format"]), ("qcow2", "bare"))
        self.assertEqual(shown["owner"], self.project_id)

        await self.openstack("image", "set", "--property", "hw_disk_bus=scsi", "--min-ram", "64", image_id)
        shown = await self.openstack_json("image", "show", image_id)
        self.assertEqual(shown["properties"]["hw_disk_bus"], "scsi")
        self.assertEqual(shown["properties"]["os_distro"], "cirros")
        self.assertEqual(shown["min_ram"], 64)

        saved = os.path.join(self.tmp, "saved.qcow2")
        await self.openstack("image", "save", "--file", saved, image_id)
        self.assertEqual(_md5(saved), _md5(source))

        await self.openstack("image", "delete", image_id)
        self.assertEqual(await self.openstack_json("image", "list"), [])

    @pytest.mark.skipif(not os.path.exists(GLANCE), reason="python-glanceclient is not installed in the venv")
    @async_test
    async def test_glance_cli_validates_against_our_schemas_and_round_trips_an_image(self):
        await self.start_cloud()

        def field(table: str, name: str) -> str:
            for line in table.splitlines():
                cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
                if len(cells) == 2 and cells[0] == name:
                    return cells[1]
            raise AssertionError(f"no {name} in:\n{table}")

        async def glance(*args):
            return await self.openstack("--os-image-api-version", "2", *args, program=GLANCE)

        source = write_file(os.path.join(self.tmp, "disk.raw"), 1024 * 1024 + 5, seed=3)
        created = await glance(
            "image-create", "--name", "g", "--disk-format", "raw", "--container-format", "bare", "--file", source
        )
        image_id = field(created, "id")
        self.assertEqual(field(created, "checksum"), _md5(source))
        await glance("image-update", "--property", "os_distro=debian", image_id)
        shown = await glance("image-show", image_id)
        self.assertEqual((field(shown, "os_distro"), field(shown, "status")), ("debian", "active"))
        self.assertIn(image_id, await glance("image-list"))
        saved = os.path.join(self.tmp, "saved.raw")
        await glance("image-download", "--file", saved, image_id)
        self.assertEqual(_md5(saved), _md5(source))
        await glance("image-delete", image_id)
        self.assertNotIn(image_id, await glance("image-list"))
