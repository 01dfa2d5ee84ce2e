"""Quota checks of key pairs, server groups and group members hold under concurrent requests on MariaDB."""

from __future__ import annotations

import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.internet import defer
from twisted.trial import unittest

from nova_twisted import exception
from nova_twisted.context import RequestContext
from nova_twisted.db import quotas
from tests.conftest import mysql_scratch_url
from tests.unit.api_resource_fixtures import async_test, served

CONCURRENT = 8


class ConcurrentQuotaTests(unittest.TestCase):
    @async_test
    async def setUp(self):
        url, drop = mysql_scratch_url()
        self.addCleanup(drop)
        self.api = await served(self, db_url=url)
        # Counting takes a while, so that concurrent requests overlap inside their transactions:
        # only the project's quota lock keeps them from all seeing the same, too low, usage.
        original = quotas.usage

        def slow_usage(*args, **kwargs):
            used = original(*args, **kwargs)
            time.sleep(0.1)
            return used

        self.patch(quotas, "usage", slow_usage)

    async def concurrently(self, requests):
        return await defer.gatherResults([defer.ensureDeferred(r) for r in requests])

    @async_test
    async def test_concurrent_key_pair_imports_never_pass_the_limit(self):
        await self.api.ok("PUT", "/os-quota-sets/demo-project", {"quota_set": {"key_pairs": 3}}, "admin")
        public = (
            ed25519.Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            .decode()
        )
        answers = await self.concurrently(
            self.api.request(
                "POST", "/os-keypairs", {"keypair": {"name": f"k{i}", "public_key": public}}, "demo", "2.2"
            )
            for i in range(CONCURRENT)
        )
        codes = sorted(code for code, _, _ in answers)
        self.assertEqual(codes, [201] * 3 + [403] * (CONCURRENT - 3))
        self.assertEqual(len((await self.api.ok("GET", "/os-keypairs"))["keypairs"]), 3)

    @async_test
    async def test_concurrent_server_group_creates_never_pass_the_limit(self):
        await self.api.ok("PUT", "/os-quota-sets/demo-project", {"quota_set": {"server_groups": 2}}, "admin")
        answers = await self.concurrently(
            self.api.request("POST", "/os-server-groups", {"server_group": {"name": f"g{i}", "policies": ["affinity"]}})
            for i in range(CONCURRENT)
        )
        self.assertEqual(sorted(code for code, _, _ in answers), [200] * 2 + [403] * (CONCURRENT - 2))
        self.assertEqual(len((await self.api.ok("GET", "/os-server-groups"))["server_groups"]), 2)

    @async_test
    async def test_concurrent_boots_into_one_group_never_pass_server_group_members(self):
        await self.api.ok("PUT", "/os-quota-sets/demo-project", {"quota_set": {"server_group_members": 2}}, "admin")
        group = await self.api.ok(
            "POST", "/os-server-groups", {"server_group": {"name": "g", "policies": ["affinity"]}}
        )
        ctxt = RequestContext(user_id="demo-user", project_id="demo-project", roles=["member"])
        boots = [
            defer.ensureDeferred(
                self.api.app.compute_api.create(ctxt, "1", "image", f"vm{i}", server_group=group["server_group"]["id"])
            )
            for i in range(6)
        ]
        results = await defer.DeferredList(boots, consumeErrors=True)
        failures = [r for ok, r in results if not ok]
        for failure in failures:
            failure.trap(exception.QuotaExceeded)
        self.assertEqual(len(failures), 4)
        shown = (await self.api.ok("GET", f"/os-server-groups/{group['server_group']['id']}"))["server_group"]
        self.assertEqual(len(shown["members"]), 2)
