"""Quota sets, limits and server groups through the compute API: fields per version, live usage, enforcement."""

from __future__ import annotations

from twisted.trial import unittest

from tests.unit.api_resource_fixtures import async_test, served

QUOTAS_257 = {
    "instances",
    "cores",
    "ram",
    "metadata_items",
    "key_pairs",
    "server_groups",
    "server_group_members",
}
QUOTAS_236 = QUOTAS_257 | {"injected_files", "injected_file_content_bytes", "injected_file_path_bytes"}
QUOTAS_21 = QUOTAS_236 | {"floating_ips", "fixed_ips", "security_groups", "security_group_rules"}
ABSOLUTE_257 = {
    "maxTotalRAMSize",
    "maxTotalInstances",
    "maxTotalCores",
    "maxTotalKeypairs",
    "maxServerMeta",
    "maxServerGroups",
    "maxServerGroupMembers",
    "totalRAMUsed",
    "totalCoresUsed",
    "totalInstancesUsed",
    "totalServerGroupsUsed",
}
ABSOLUTE_239 = ABSOLUTE_257 | {"maxPersonality", "maxPersonalitySize"}
ABSOLUTE_236 = ABSOLUTE_239 | {"maxImageMeta"}
ABSOLUTE_21 = ABSOLUTE_236 | {
    "maxTotalFloatingIps",
    "maxSecurityGroups",
    "maxSecurityGroupRules",
    "totalFloatingIpsUsed",
    "totalSecurityGroupsUsed",
}


class QuotaSetTests(unittest.TestCase):
    @async_test
    async def setUp(self):
        self.api = await served(self)

    @async_test
    async def test_show_fields_per_microversion(self):
        for version, fields in (("2.1", QUOTAS_21), ("2.35", QUOTAS_21), ("2.36", QUOTAS_236), ("2.57", QUOTAS_257)):
            body = (await self.api.ok("GET", "/os-quota-sets/demo-project", version=version))["quota_set"]
            self.assertEqual(set(body), fields | {"id"}, version)
        body = (await self.api.ok("GET", "/os-quota-sets/demo-project"))["quota_set"]
        self.assertEqual(
            (body["id"], body["instances"], body["cores"], body["ram"], body["fixed_ips"], body["floating_ips"]),
            ("demo-project", 10, 20, 51200, -1, 10),
        )
        defaults = (await self.api.ok("GET", "/os-quota-sets/alt-project/defaults", version="2.57"))["quota_set"]
        self.assertEqual(set(defaults), QUOTAS_257 | {"id"})

    @async_test
    async def test_detail_counts_live_usage(self):
        await self.api.add_server(flavor="3")
        await self.api.add_server(flavor="1")
        await self.api.ok("POST", "/os-server-groups", {"server_group": {"name": "g", "policies": ["affinity"]}})
        body = (await self.api.ok("GET", "/os-quota-sets/demo-project/detail", version="2.57"))["quota_set"]
        self.assertEqual(set(body), QUOTAS_257 | {"id"})
        self.assertEqual(body["instances"], {"in_use": 2, "limit": 10, "reserved": 0})
        self.assertEqual(body["cores"]["in_use"], 3)
        self.assertEqual(body["ram"]["in_use"], 4096 + 512)
        self.assertEqual(body["server_groups"]["in_use"], 1)
        self.assertEqual(body["key_pairs"]["in_use"], 0)
        mine = await self.api.ok("GET", "/os-quota-sets/demo-project/detail?user_id=demo2-user", version="2.57")
        self.assertEqual(mine["quota_set"]["instances"]["in_use"], 0)

    @async_test
    async def test_admin_updates_limits_members_cannot_and_projects_are_isolated(self):
        updated = await self.api.ok(
            "PUT", "/os-quota-sets/demo-project", {"quota_set": {"instances": 3, "cores": "7"}}, "admin"
        )
        self.assertNotIn("id", updated["quota_set"])
        self.assertEqual((updated["quota_set"]["instances"], updated["quota_set"]["cores"]), (3, 7))
        self.assertEqual((await self.api.ok("GET", "/os-quota-sets/demo-project"))["quota_set"]["instances"], 3)
        self.assertEqual(
            (await self.api.ok("GET", "/os-quota-sets/alt-project", token="alt"))["quota_set"]["instances"], 10
        )
        await self.api.error(
            "PUT", "/os-quota-sets/demo-project", {"quota_set": {"instances": 100}}, "demo", status=403
        )
        await self.api.error("GET", "/os-quota-sets/alt-project", token="demo", status=403)
        await self.api.error("GET", "/os-quota-sets/alt-project/detail", token="demo", status=403)
        code, _, _ = await self.api.request("DELETE", "/os-quota-sets/demo-project", token="admin")
        self.assertEqual(code, 202)
        self.assertEqual((await self.api.ok("GET", "/os-quota-sets/demo-project"))["quota_set"]["instances"], 10)

    @async_test
    async def test_update_validation(self):
        await self.api.add_server()
        await self.api.add_server()
        path = "/os-quota-sets/demo-project"
        message = await self.api.error("PUT", path, {"quota_set": {"instances": 1}}, "admin")
        self.assertEqual(
            message, "Quota limit 1 for instances must be greater than or equal to already used and reserved 2."
        )
        forced = await self.api.ok("PUT", path, {"quota_set": {"instances": 1, "force": True}}, "admin")
        self.assertEqual(forced["quota_set"]["instances"], 1)
        await self.api.ok("PUT", path, {"quota_set": {"instances": -1}}, "admin")
        for bad in ({"instances": -2}, {"instances": "many"}, {"bogus": 1}, {"instances": 2**31}):
            await self.api.error("PUT", path, {"quota_set": bad}, "admin")
        self.assertEqual(
            await self.api.error("PUT", path, {"quota_set": {"networks": 1}}, "admin"),
            "The networks quota has been removed",
        )
        await self.api.ok("PUT", path, {"quota_set": {"floating_ips": 3}}, "admin", "2.35")
        await self.api.error("PUT", path, {"quota_set": {"floating_ips": 3}}, "admin", "2.36")
        await self.api.error("PUT", path, {"quota_set": {"injected_files": 3}}, "admin", "2.57")
        self.assertEqual(
            await self.api.error("PUT", "/os-quota-sets/ghost", {"quota_set": {"instances": 3}}, "admin"),
            "Project ID ghost is not a valid project.",
        )

    @async_test
    async def test_user_quota_within_the_project(self):
        path = "/os-quota-sets/demo-project?user_id=demo2-user"
        await self.api.ok("PUT", "/os-quota-sets/demo-project", {"quota_set": {"instances": 5}}, "admin")
        message = await self.api.error("PUT", path, {"quota_set": {"instances": 6}}, "admin")
        self.assertEqual(message, "Quota limit 6 for instances must be less than or equal to 5.")
        await self.api.ok("PUT", path, {"quota_set": {"instances": 1}}, "admin")
        self.assertEqual((await self.api.ok("GET", path))["quota_set"]["instances"], 1)
        self.assertEqual((await self.api.ok("GET", "/os-quota-sets/demo-project"))["quota_set"]["instances"], 5)
        code, _, _ = await self.api.request("DELETE", path, token="admin")
        self.assertEqual(code, 202)
        self.assertEqual((await self.api.ok("GET", path))["quota_set"]["instances"], 5)


class LimitsTests(unittest.TestCase):
    @async_test
    async def setUp(self):
        self.api = await served(self)

    @async_test
    async def test_absolute_limits_per_microversion_with_live_usage(self):
        await self.api.add_server(flavor="2")
        await self.api.ok("POST", "/os-server-groups", {"server_group": {"name": "g", "policies": ["affinity"]}})
        for version, fields in (
            ("2.1", ABSOLUTE_21),
            ("2.36", ABSOLUTE_236),
            ("2.39", ABSOLUTE_239),
            ("2.57", ABSOLUTE_257),
        ):
            body = (await self.api.ok("GET", "/limits", version=version))["limits"]
            self.assertEqual(body["rate"], [])
            self.assertEqual(set(body["absolute"]), fields, version)
        absolute = (await self.api.ok("GET", "/limits"))["limits"]["absolute"]
        self.assertEqual(
            (absolute["totalInstancesUsed"], absolute["totalCoresUsed"], absolute["totalRAMUsed"]), (1, 1, 2048)
        )
        self.assertEqual((absolute["totalServerGroupsUsed"], absolute["maxTotalInstances"]), (1, 10))
        other = (await self.api.ok("GET", "/limits", token="alt"))["limits"]["absolute"]
        self.assertEqual((other["totalInstancesUsed"], other["totalServerGroupsUsed"]), (0, 0))

    @async_test
    async def test_another_projects_limits_are_for_admins(self):
        await self.api.add_server()
        seen = (await self.api.ok("GET", "/limits?tenant_id=demo-project", token="admin"))["limits"]["absolute"]
        self.assertEqual(seen["totalInstancesUsed"], 1)
        await self.api.error("GET", "/limits?tenant_id=alt-project", status=403)
        await self.api.ok("GET", "/limits?tenant_id=demo-project")
        await self.api.error("GET", "/limits?x=1", version="2.75")


class ServerGroupTests(unittest.TestCase):
    @async_test
    async def setUp(self):
        self.api = await served(self)

    async def create(self, body, token="demo", version=None, status=200):
        return (await self.api.ok("POST", "/os-server-groups", {"server_group": body}, token, version, status))[
            "server_group"
        ]

    @async_test
    async def test_fields_per_microversion(self):
        old = await self.create({"name": "a", "policies": ["anti-affinity"]})
        self.assertEqual(set(old), {"id", "name", "policies", "members", "metadata"})
        self.assertEqual((old["policies"], old["metadata"], old["members"]), (["anti-affinity"], {}, []))
        owned = await self.create({"name": "b", "policies": ["affinity"]}, version="2.13")
        self.assertEqual(set(owned), {"id", "name", "policies", "members", "metadata", "project_id", "user_id"})
        self.assertEqual((owned["project_id"], owned["user_id"]), ("demo-project", "demo-user"))
        new = await self.create(
            {"name": "c", "policy": "anti-affinity", "rules": {"max_server_per_host": "2"}}, version="2.64"
        )
        self.assertEqual(set(new), {"id", "name", "policy", "rules", "members", "project_id", "user_id"})
        self.assertEqual(new["rules"], {"max_server_per_host": 2})
        shown = (await self.api.ok("GET", f"/os-server-groups/{new['id']}", version="2.1"))["server_group"]
        self.assertEqual(shown["policies"], ["anti-affinity"])

    @async_test
    async def test_policies_by_version_and_validation(self):
        await self.api.error(
            "POST", "/os-server-groups", {"server_group": {"name": "s", "policies": ["soft-affinity"]}}, version="2.14"
        )
        soft = await self.create({"name": "s", "policies": ["soft-affinity"]}, version="2.15")
        self.assertEqual(soft["policies"], ["soft-affinity"])
        await self.create({"name": "s2", "policy": "soft-anti-affinity"}, version="2.64")
        await self.api.error(
            "POST", "/os-server-groups", {"server_group": {"name": "x", "policies": ["affinity"]}}, version="2.64"
        )
        await self.api.error(
            "POST", "/os-server-groups", {"server_group": {"name": "x", "policy": "affinity"}}, version="2.63"
        )
        self.assertEqual(
            await self.api.error(
                "POST",
                "/os-server-groups",
                {"server_group": {"name": "x", "policy": "affinity", "rules": {"max_server_per_host": 2}}},
                version="2.64",
            ),
            "Only anti-affinity policy supports rules.",
        )
        for bad in (
            {"name": "x", "policies": ["affinity", "anti-affinity"]},
            {"name": "x", "policies": []},
            {"name": "x", "policies": ["gregarious"]},
            {"policies": ["affinity"]},
            {"name": "", "policies": ["affinity"]},
        ):
            await self.api.error("POST", "/os-server-groups", {"server_group": bad})
        await self.api.error(
            "POST",
            "/os-server-groups",
            {"server_group": {"name": "x", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}}},
            version="2.64",
        )

    @async_test
    async def test_groups_belong_to_their_project(self):
        group = await self.create({"name": "mine", "policies": ["affinity"]})
        await self.api.error("GET", f"/os-server-groups/{group['id']}", token="alt", status=404)
        await self.api.error("DELETE", f"/os-server-groups/{group['id']}", token="alt", status=404)
        self.assertEqual((await self.api.ok("GET", "/os-server-groups", token="alt"))["server_groups"], [])
        self.assertEqual(len((await self.api.ok("GET", "/os-server-groups", token="demo2"))["server_groups"]), 1)
        await self.create({"name": "theirs", "policies": ["affinity"]}, token="alt")
        everyone = (await self.api.ok("GET", "/os-server-groups?all_projects=True", token="admin"))["server_groups"]
        self.assertEqual({g["name"] for g in everyone}, {"mine", "theirs"})
        self.assertEqual(
            (await self.api.ok("GET", "/os-server-groups?all_projects=True", token="alt"))["server_groups"][0]["name"],
            "theirs",
        )
        self.assertEqual(
            (await self.api.ok("GET", f"/os-server-groups/{group['id']}", token="admin"))["server_group"]["name"],
            "mine",
        )
        message = await self.api.error("GET", "/os-server-groups/00000000-0000-0000-0000-000000000000", status=404)
        self.assertEqual(message, "Instance group 00000000-0000-0000-0000-000000000000 could not be found.")
        await self.api.error(
            "POST", "/os-server-groups", {"server_group": {"name": "r", "policies": ["affinity"]}}, "reader", status=403
        )
        code, _, _ = await self.api.request("DELETE", f"/os-server-groups/{group['id']}")
        self.assertEqual(code, 204)
        await self.api.error("GET", f"/os-server-groups/{group['id']}", status=404)

    @async_test
    async def test_list_paging_with_limit_and_offset(self):
        for name in "abc":
            await self.create({"name": name, "policies": ["affinity"]})
        page = (await self.api.ok("GET", "/os-server-groups?limit=2&offset=1"))["server_groups"]
        self.assertEqual([g["name"] for g in page], ["b", "c"])
        await self.api.error("GET", "/os-server-groups?offset=-1")
        await self.api.error("GET", "/os-server-groups?offset=x")
        self.assertEqual((await self.api.ok("GET", "/os-server-groups?offset=" + "9" * 30))["server_groups"], [])

    @async_test
    async def test_members_show_live_servers(self):
        group = await self.create({"name": "g", "policies": ["anti-affinity"]})
        from nova_twisted.db.models import ServerGroupMember

        server = await self.api.add_server()

        def join(session):
            from nova_twisted.db import server_groups

            row = server_groups.get(session, group["id"])
            session.add(ServerGroupMember(group_id=row["id"], instance_uuid=server["uuid"]))

        await self.api.database.run(join)
        shown = (await self.api.ok("GET", f"/os-server-groups/{group['id']}"))["server_group"]
        self.assertEqual(shown["members"], [server["uuid"]])
        await self.api.delete_server(server["uuid"])
        shown = (await self.api.ok("GET", f"/os-server-groups/{group['id']}"))["server_group"]
        self.assertEqual(shown["members"], [])

    @async_test
    async def test_server_groups_quota(self):
        await self.api.ok("PUT", "/os-quota-sets/demo-project", {"quota_set": {"server_groups": 1}}, "admin")
        await self.create({"name": "one", "policies": ["affinity"]})
        message = await self.api.error(
            "POST", "/os-server-groups", {"server_group": {"name": "two", "policies": ["affinity"]}}, status=403
        )
        self.assertEqual(message, "Quota exceeded, too many server groups.")
        await self.create({"name": "two", "policies": ["affinity"]}, token="alt")


class ServerGroupMemberQuotaTests(unittest.TestCase):
    @async_test
    async def setUp(self):
        self.api = await served(self)

    @async_test
    async def test_concurrent_boots_into_a_group_never_pass_server_group_members(self):
        from twisted.internet import defer

        from nova_twisted import exception
        from nova_twisted.context import RequestContext

        await self.api.ok("PUT", "/os-quota-sets/demo-project", {"quota_set": {"server_group_members": 1}}, "admin")
        group = await self.api.ok(
            "POST", "/os-server-groups", {"server_group": {"name": "g", "policies": ["affinity"]}}
        )
        ctxt = RequestContext(user_id="demo-user", project_id="demo-project", roles=["member"])
        boots = [
            defer.ensureDeferred(
                self.api.app.compute_api.create(
                    ctxt, "1", "image-1", f"vm{i}", server_group=group["server_group"]["id"]
                )
            )
            for i in range(2)
        ]
        results = await defer.DeferredList(boots, consumeErrors=True)
        failures = [r for ok, r in results if not ok]
        self.assertEqual(len(failures), 1, results)
        failures[0].trap(exception.QuotaExceeded)
        self.assertIn("too many servers in group", failures[0].value.message)
        shown = (await self.api.ok("GET", f"/os-server-groups/{group['server_group']['id']}"))["server_group"]
        self.assertEqual(len(shown["members"]), 1)
