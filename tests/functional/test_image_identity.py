"""The Glance client and the image API with the real built-in identity service (no token doubles)."""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.trial import unittest

from nova_twisted import exception
from nova_twisted.context import RequestContext
from nova_twisted.image.glance import GlanceClient
from tests.image_helpers import async_test, start_cloud, write_file


class GlanceClientWithIdentityTests(unittest.TestCase):
    def client(self, cloud, **credentials) -> GlanceClient:
        client = GlanceClient(reactor, cloud.image_url, timeout=10, auth_url=cloud.auth_url, **credentials)
        self.addCleanup(client.close)
        return client

    @async_test
    async def test_a_context_without_a_token_uses_the_service_credentials(self):
        cloud = await start_cloud(self)
        client = self.client(cloud, username="demo", password="secret-pw", project_name="demo")
        service_ctxt = RequestContext(user_id=None, project_id=None)
        image = await client.create(service_ctxt, {"name": "snap", "disk_format": "raw", "container_format": "bare"})
        self.assertEqual(image["owner"], cloud.project_id)
        path = write_file(os.path.join(cloud.tmp, "data"), 100_000)
        active = await client.upload(service_ctxt, image["id"], path)
        self.assertEqual((active["status"], active["size"]), ("active", 100_000))
        self.assertEqual([i["id"] for i in await client.list(service_ctxt)], [image["id"]])

    @async_test
    async def test_a_users_token_from_identity_is_honoured_and_a_bad_one_refused(self):
        cloud = await start_cloud(self)
        client = self.client(cloud)
        user = await cloud.identity.check_password("secret-pw", user_name="demo")
        token, _ = await cloud.identity.issue_token(user, ["password"], project_name="demo")
        ctxt = RequestContext(project_id=cloud.project_id, auth_token=token)
        self.assertEqual(await client.list(ctxt), [])
        with self.assertRaises(exception.NotAuthenticated):
            await client.list(RequestContext(auth_token="not-a-token"))
        with self.assertRaises(exception.NotAuthenticated):
            await client.list(RequestContext())
