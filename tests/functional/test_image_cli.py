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
import shutil
import sys
import tempfile

import pytest
from twisted.internet import reactor, utils
from twisted.trial import unittest
from twisted.web import resource, server

from nova_twisted import conf as config
from nova_twisted.api.auth import Authenticator
from nova_twisted.db import migration
from nova_twisted.db.api import Database
from nova_twisted.image.resource import build_image_site
from tests.image_helpers import async_test, write_file

OPENSTACK = os.path.join(os.path.dirname(sys.executable), "openstack")


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
        from nova_twisted.identity import build_identity_resource, build_validator
        from nova_twisted.identity.api import IdentityAPI

        self.tmp = tempfile.mkdtemp(prefix="nova-image-cli-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        url = f"sqlite:///{self.tmp}/nova.sqlite"
        migration.sync(url)
        database = Database(url, reactor)
        self.addCleanup(database.stopService)
        # Listen first (the catalog needs the ports), then put the real resources in place.
        identity_site = server.Site(resource.Resource())
        identity_port = reactor.listenTCP(0, identity_site, interface="127.0.0.1")
        self.addCleanup(identity_port.stopListening)
        image_holder = server.Site(resource.Resource())
        image_port = reactor.listenTCP(0, image_holder, interface="127.0.0.1")
        self.addCleanup(image_port.stopListening)
        identity_url = f"http://127.0.0.1:{identity_port.getHost().port}"
        image_url = f"http://127.0.0.1:{image_port.getHost().port}"
        conf = config.defaults().with_overrides(
            {
                ("identity", "image_url"): image_url,
                ("identity", "identity_url"): f"{identity_url}/v3",
                ("identity", "password_hash_rounds"): 4,
                ("image", "data_dir"): os.path.join(self.tmp, "images"),
            }
        )
        validator = build_validator(conf, database, reactor)
        authenticator = Authenticator(validator, reactor)
        identity_site.resource = build_identity_resource(conf, database, reactor, authenticator)
        image_site = build_image_site(conf, database, reactor, authenticator)
        image_holder.resource = image_site.resource
        self.addCleanup(image_site.resource.close)
        image_holder.requestFactory = image_site.requestFactory

        identity = IdentityAPI.from_config(conf, database, reactor)
        project = await identity.create_project("demo")
        user = await identity.create_user("demo", password="secret-pw", default_project_id=project["id"])
        member = await identity.find_role("member")
        await identity.add_role_assignment(user["id"], project["id"], member["id"])
        self.project_id = project["id"]
        self.env = dict(
            os.environ,
            OS_AUTH_URL=f"{identity_url}/v3",
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

    async def openstack(self, *args: str) -> str:
        out, err, code = await utils.getProcessOutputAndValue(OPENSTACK, args, env=self.env, path=self.tmp)
        self.assertEqual(code, 0, f"openstack {' '.join(args)} failed:\n{err.decode()[-3000:]}")
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
