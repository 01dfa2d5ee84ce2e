"""Flavors through the compute API: bodies per microversion, filters, paging, manage, extra specs, access."""

from __future__ import annotations

from twisted.trial import unittest

from tests.unit.api_resource_fixtures import async_test, served

LINKS = "links"
DETAIL_21 = {
    "id",
    "name",
    "ram",
    "disk",
    "swap",
    "OS-FLV-EXT-DATA:ephemeral",
    "OS-FLV-DISABLED:disabled",
    "vcpus",
    "os-flavor-access:is_public",
    "rxtx_factor",
    "links",
}


class FlavorReadTests(unittest.TestCase):
    @async_test
    async def setUp(self):
        self.api = await served(self)

    @async_test
    async def test_list_answers_id_name_links_and_description_from_2_55(self):
        body = await self.api.ok("GET", "/flavors")
        self.assertEqual({f["name"] for f in body["flavors"]}, {"m1.tiny", "m1.small", "m1.medium"})
        self.assertEqual(set(body["flavors"][0]), {"id", "name", "links"})
        self.assertNotIn("flavors_links", body)
        link = body["flavors"][0]["links"][0]
        self.assertEqual(link["rel"], "self")
        self.assertTrue(link["href"].endswith("/v2.1/flavors/1"), link)
        body = await self.api.ok("GET", "/flavors", version="2.55")
        self.assertEqual(set(body["flavors"][0]), {"id", "name", "links", "description"})

    @async_test
    async def test_detail_key_sets_change_at_2_55_2_61_and_swap_at_2_75(self):
        body = await self.api.ok("GET", "/flavors/detail")
        tiny = body["flavors"][0]
        self.assertEqual(set(tiny), DETAIL_21)
        self.assertEqual((tiny["id"], tiny["ram"], tiny["vcpus"], tiny["disk"]), ("1", 512, 1, 1))
        self.assertEqual(tiny["swap"], "")
        self.assertEqual(tiny["rxtx_factor"], 1.0)
        self.assertIs(tiny["os-flavor-access:is_public"], True)
        self.assertEqual(
            set((await self.api.ok("GET", "/flavors/detail", version="2.55"))["flavors"][0]),
            DETAIL_21 | {"description"},
        )
        at_261 = (await self.api.ok("GET", "/flavors/detail", version="2.61"))["flavors"][0]
        self.assertEqual(set(at_261), DETAIL_21 | {"description", "extra_specs"})
        self.assertEqual(at_261["swap"], "")
        self.assertEqual((await self.api.ok("GET", "/flavors/1", version="2.75"))["flavor"]["swap"], 0)

    @async_test
    async def test_show_by_name_is_404_so_clients_fall_back_to_listing(self):
        message = await self.api.error("GET", "/flavors/m1.tiny", status=404)
        self.assertEqual(message, "Flavor m1.tiny could not be found.")
        shown = await self.api.ok("GET", "/flavors/2")
        self.assertEqual(shown["flavor"]["name"], "m1.small")

    @async_test
    async def test_filters_sorting_and_paging(self):
        body = await self.api.ok("GET", "/flavors?minRam=1024&minDisk=30")
        self.assertEqual([f["id"] for f in body["flavors"]], ["3"])
        body = await self.api.ok("GET", "/flavors/detail?sort_key=memory_mb&sort_dir=desc")
        self.assertEqual([f["id"] for f in body["flavors"]], ["3", "2", "1"])
        page = await self.api.ok("GET", "/flavors/detail?limit=2")
        self.assertEqual([f["id"] for f in page["flavors"]], ["1", "2"])
        (next_link,) = page["flavors_links"]
        self.assertEqual(next_link["rel"], "next")
        self.assertIn("/v2.1/flavors/detail?", next_link["href"])
        self.assertIn("marker=2", next_link["href"])
        rest = await self.api.ok("GET", "/flavors/detail?limit=2&marker=2")
        self.assertEqual([f["id"] for f in rest["flavors"]], ["3"])
        self.assertNotIn("flavors_links", rest)

    @async_test
    async def test_bad_filters_are_400s(self):
        self.assertEqual(await self.api.error("GET", "/flavors?minRam=lots"), "Invalid minRam filter [lots]")
        self.assertEqual(await self.api.error("GET", "/flavors?minDisk=x"), "Invalid minDisk filter [x]")
        self.assertEqual(await self.api.error("GET", "/flavors?marker=nope"), "marker [nope] not found")
        huge = "9" * 30
        self.assertEqual((await self.api.ok("GET", f"/flavors?minRam={huge}"))["flavors"], [])
        self.assertEqual(len((await self.api.ok("GET", f"/flavors?minDisk=-{huge}"))["flavors"]), 3)
        await self.api.error("GET", "/flavors?sort_key=bogus")
        await self.api.error("GET", "/flavors?sort_dir=sideways")
        await self.api.error("GET", "/flavors?limit=-1")
        self.assertEqual(
            await self.api.error("GET", "/flavors?is_public=maybe", token="admin"), "Invalid is_public filter [maybe]"
        )

    @async_test
    async def test_unknown_query_parameters_are_ignored_before_2_75_and_refused_from_it(self):
        await self.api.ok("GET", "/flavors?colour=blue", version="2.74")
        message = await self.api.error("GET", "/flavors?colour=blue", version="2.75")
        self.assertIn("'colour' was unexpected", message)


class FlavorManageTests(unittest.TestCase):
    @async_test
    async def setUp(self):
        self.api = await served(self)

    async def create(self, body, version=None, token="admin", status=200):
        return await self.api.ok("POST", "/flavors", {"flavor": body}, token, version, status)

    @async_test
    async def test_admin_creates_a_flavor_with_every_field_and_it_is_listed(self):
        body = {
            "name": "big",
            "id": "big-1",
            "ram": 1024,
            "vcpus": 2,
            "disk": 10,
            "OS-FLV-EXT-DATA:ephemeral": 5,
            "swap": 512,
            "rxtx_factor": 2.5,
            "os-flavor-access:is_public": True,
            "description": "a big one",
        }
        flavor = (await self.create(body, version="2.61"))["flavor"]
        self.assertEqual(set(flavor), DETAIL_21 | {"description", "extra_specs"})
        self.assertEqual(
            (flavor["id"], flavor["swap"], flavor["OS-FLV-EXT-DATA:ephemeral"], flavor["rxtx_factor"]),
            ("big-1", 512, 5, 2.5),
        )
        self.assertEqual((flavor["description"], flavor["extra_specs"]), ("a big one", {}))
        listed = await self.api.ok("GET", "/flavors")
        self.assertIn("big-1", [f["id"] for f in listed["flavors"]])

    @async_test
    async def test_ids_are_generated_when_missing_null_or_auto(self):
        for extra in ({}, {"id": None}, {"id": "auto"}):
            flavor = (
                await self.create({"name": f"f{len(extra)}{extra.get('id')}", "ram": 1, "vcpus": 1, "disk": 0, **extra})
            )["flavor"]
            self.assertEqual(len(flavor["id"]), 36, flavor)
        numeric = (await self.create({"name": "numeric", "id": 42, "ram": "64", "vcpus": "1", "disk": "0"}))["flavor"]
        self.assertEqual((numeric["id"], numeric["ram"]), ("42", 64))

    @async_test
    async def test_description_is_refused_before_2_55(self):
        message = await self.api.error(
            "POST", "/flavors", {"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 0, "description": "d"}}, "admin"
        )
        self.assertIn("'description' was unexpected", message)

    @async_test
    async def test_create_validation_and_duplicates(self):
        base = {"name": "ok", "ram": 1, "vcpus": 1, "disk": 0}
        for bad in (
            {"ram": 0},
            {"vcpus": -1},
            {"disk": "x"},
            {"name": " pad"},
            {"name": ""},
            {"id": " x"},
            {"rxtx_factor": 0},
            {"swap": 2**31},
            {"os-flavor-access:is_public": "perhaps"},
        ):
            await self.api.error("POST", "/flavors", {"flavor": {**base, **bad}}, "admin")
        await self.api.error("POST", "/flavors", {"flavor": {"name": "x"}}, "admin")
        await self.api.error("POST", "/flavors", {"nope": {}}, "admin")
        await self.api.error("POST", "/flavors", None, "admin")
        self.assertEqual(
            await self.api.error("POST", "/flavors", {"flavor": {**base, "name": "m1.tiny"}}, "admin", status=409),
            "Flavor with name m1.tiny already exists.",
        )
        self.assertEqual(
            await self.api.error("POST", "/flavors", {"flavor": {**base, "id": "1"}}, "admin", status=409),
            "Flavor with ID 1 already exists.",
        )

    @async_test
    async def test_members_may_not_create_update_or_delete_flavors(self):
        body = {"flavor": {"name": "mine", "ram": 1, "vcpus": 1, "disk": 0}}
        await self.api.error("POST", "/flavors", body, "demo", status=403)
        await self.api.error("PUT", "/flavors/1", {"flavor": {"description": "x"}}, "demo", "2.55", status=403)
        await self.api.error("DELETE", "/flavors/1", token="demo", status=403)
        self.assertEqual((await self.api.ok("GET", "/flavors/1"))["flavor"]["name"], "m1.tiny")

    @async_test
    async def test_update_sets_the_description_from_2_55_only(self):
        await self.api.error("PUT", "/flavors/1", {"flavor": {"description": "x"}}, "admin", "2.54", status=404)
        flavor = (await self.api.ok("PUT", "/flavors/1", {"flavor": {"description": "tiny one"}}, "admin", "2.55"))[
            "flavor"
        ]
        self.assertEqual(flavor["description"], "tiny one")
        await self.api.error("PUT", "/flavors/1", {"flavor": {"name": "x"}}, "admin", "2.55")
        await self.api.error("PUT", "/flavors/nope", {"flavor": {"description": "x"}}, "admin", "2.55", status=404)

    @async_test
    async def test_delete_answers_202_then_the_flavor_is_gone(self):
        code, _, body = await self.api.request("DELETE", "/flavors/3", token="admin")
        self.assertEqual((code, body), (202, None))
        await self.api.error("GET", "/flavors/3", status=404)
        await self.api.error("DELETE", "/flavors/3", token="admin", status=404)


class ExtraSpecTests(unittest.TestCase):
    @async_test
    async def setUp(self):
        self.api = await served(self)

    @async_test
    async def test_extra_specs_crud_and_embedding_from_2_61(self):
        created = await self.api.ok(
            "POST", "/flavors/1/os-extra_specs", {"extra_specs": {"hw:cpu_policy": "dedicated", "quota:n": 3}}, "admin"
        )
        self.assertEqual(created, {"extra_specs": {"hw:cpu_policy": "dedicated", "quota:n": 3}})
        listed = await self.api.ok("GET", "/flavors/1/os-extra_specs")
        self.assertEqual(listed, {"extra_specs": {"hw:cpu_policy": "dedicated", "quota:n": "3"}})
        self.assertEqual(
            await self.api.ok("GET", "/flavors/1/os-extra_specs/hw%3Acpu_policy"), {"hw:cpu_policy": "dedicated"}
        )
        updated = await self.api.ok("PUT", "/flavors/1/os-extra_specs/quota:n", {"quota:n": "4"}, "admin")
        self.assertEqual(updated, {"quota:n": "4"})
        shown = (await self.api.ok("GET", "/flavors/1", version="2.61"))["flavor"]
        self.assertEqual(shown["extra_specs"], {"hw:cpu_policy": "dedicated", "quota:n": "4"})
        code, _, _ = await self.api.request("DELETE", "/flavors/1/os-extra_specs/quota:n", token="admin")
        self.assertEqual(code, 202)
        message = await self.api.error("GET", "/flavors/1/os-extra_specs/quota:n", status=404)
        self.assertEqual(message, "Flavor 1 has no extra specs with key quota:n.")
        await self.api.error("DELETE", "/flavors/1/os-extra_specs/quota:n", token="admin", status=404)

    @async_test
    async def test_extra_spec_errors(self):
        await self.api.error("POST", "/flavors/1/os-extra_specs", {"extra_specs": {"a": "b"}}, "demo", status=403)
        await self.api.error("POST", "/flavors/1/os-extra_specs", {"extra_specs": {"bad/key": "b"}}, "admin")
        await self.api.error("POST", "/flavors/1/os-extra_specs", {"extra_specs": {"k": "v" * 256}}, "admin")
        await self.api.error("POST", "/flavors/nope/os-extra_specs", {"extra_specs": {"a": "b"}}, "admin", status=404)
        self.assertEqual(
            await self.api.error("PUT", "/flavors/1/os-extra_specs/a", {"b": "c"}, "admin"),
            "Request body and URI mismatch",
        )
        await self.api.error("PUT", "/flavors/1/os-extra_specs/a", {"a": "c", "b": "d"}, "admin")
        await self.api.error("PUT", "/flavors/1/os-extra_specs/a", {"a": "c"}, "demo", status=403)


class FlavorAccessTests(unittest.TestCase):
    @async_test
    async def setUp(self):
        self.api = await served(self)
        body = {
            "flavor": {
                "name": "secret",
                "id": "p1",
                "ram": 64,
                "vcpus": 1,
                "disk": 0,
                "os-flavor-access:is_public": False,
            }
        }
        await self.api.ok("POST", "/flavors", body, "admin")

    async def ids(self, token, query=""):
        return {f["id"] for f in (await self.api.ok("GET", "/flavors" + query, token=token))["flavors"]}

    @async_test
    async def test_private_flavor_is_invisible_until_the_project_gets_access(self):
        self.assertNotIn("p1", await self.ids("demo"))
        await self.api.error("GET", "/flavors/p1", status=404)
        access = await self.api.ok(
            "POST", "/flavors/p1/action", {"addTenantAccess": {"tenant": "demo-project"}}, "admin"
        )
        self.assertEqual(access, {"flavor_access": [{"flavor_id": "p1", "tenant_id": "demo-project"}]})
        self.assertIn("p1", await self.ids("demo"))
        self.assertEqual((await self.api.ok("GET", "/flavors/p1"))["flavor"]["name"], "secret")
        self.assertNotIn("p1", await self.ids("alt"))
        await self.api.error("GET", "/flavors/p1", token="alt", status=404)
        listed = await self.api.ok("GET", "/flavors/p1/os-flavor-access", token="admin")
        self.assertEqual(listed["flavor_access"], [{"flavor_id": "p1", "tenant_id": "demo-project"}])
        removed = await self.api.ok(
            "POST", "/flavors/p1/action", {"removeTenantAccess": {"tenant": "demo-project"}}, "admin"
        )
        self.assertEqual(removed, {"flavor_access": []})
        await self.api.error("GET", "/flavors/p1", status=404)

    @async_test
    async def test_admin_is_public_filter(self):
        self.assertNotIn("p1", await self.ids("admin"))
        self.assertEqual(await self.ids("admin", "?is_public=false"), {"p1"})
        self.assertEqual(await self.ids("admin", "?is_public=none"), {"1", "2", "3", "p1"})
        self.assertNotIn("p1", await self.ids("demo", "?is_public=none"))

    @async_test
    async def test_access_errors(self):
        await self.api.error("GET", "/flavors/1/os-flavor-access", token="admin", status=404)
        self.assertEqual(
            await self.api.error(
                "POST", "/flavors/1/action", {"addTenantAccess": {"tenant": "demo-project"}}, "admin", status=409
            ),
            "Can not add access to a public flavor.",
        )
        add = {"addTenantAccess": {"tenant": "alt-project"}}
        await self.api.ok("POST", "/flavors/p1/action", add, "admin")
        await self.api.error("POST", "/flavors/p1/action", add, "admin", status=409)
        self.assertEqual(
            await self.api.error("POST", "/flavors/p1/action", {"addTenantAccess": {"tenant": "nobody"}}, "admin"),
            "Project ID nobody is not a valid project.",
        )
        await self.api.error(
            "POST", "/flavors/p1/action", {"removeTenantAccess": {"tenant": "demo-project"}}, "admin", status=404
        )
        await self.api.error("POST", "/flavors/p1/action", add, "demo", status=403)
        await self.api.error("GET", "/flavors/p1/os-flavor-access", token="demo", status=404)
        seen = await self.api.ok("GET", "/flavors/p1/os-flavor-access", token="alt")
        self.assertEqual(seen["flavor_access"], [{"flavor_id": "p1", "tenant_id": "alt-project"}])
        await self.api.error("POST", "/flavors/p1/action", {"addTenantAccess": {}}, "admin")
        await self.api.error("POST", "/flavors/p1/action", {"frobnicate": {}}, "admin")
