"""Simple tenant usage through the compute API: hours inside the window, totals, detail, paging, policy."""

from __future__ import annotations

import datetime as dt

from twisted.trial import unittest

from tests.unit.api_resource_fixtures import async_test, served

DAY = dt.datetime(2020, 1, 1)
WINDOW = "start=2020-01-01T02:00:00&end=2020-01-01T12:00:00"
SERVER_USAGE = {
    "hours",
    "flavor",
    "instance_id",
    "name",
    "tenant_id",
    "memory_mb",
    "local_gb",
    "vcpus",
    "started_at",
    "ended_at",
    "state",
    "uptime",
}
SUMMARY = {
    "tenant_id",
    "total_local_gb_usage",
    "total_vcpus_usage",
    "total_memory_mb_usage",
    "total_hours",
    "start",
    "stop",
}


class UsageTests(unittest.TestCase):
    @async_test
    async def setUp(self):
        self.api = await served(self)
        # 8 h inside the window (02:00-10:00), then deleted.
        self.gone = await self.api.add_server(
            name="gone", flavor="2", launched_at=DAY, terminated_at=DAY + dt.timedelta(hours=10), vm_state="deleted"
        )
        await self.api.delete_server(self.gone["uuid"], DAY + dt.timedelta(hours=10))
        # launched at 06:00, still running: 6 h inside the window.
        self.running = await self.api.add_server(name="running", flavor="1", launched_at=DAY + dt.timedelta(hours=6))
        # never launched, and one outside the window: no usage rows.
        await self.api.add_server(name="building", vm_state="building")
        await self.api.add_server(name="later", launched_at=DAY + dt.timedelta(days=2))
        self.alt = await self.api.add_server(token="alt", name="alts", flavor="3", launched_at=DAY)

    @async_test
    async def test_show_sums_hours_times_resources_for_one_project(self):
        usage = (await self.api.ok("GET", f"/os-simple-tenant-usage/demo-project?{WINDOW}"))["tenant_usage"]
        self.assertEqual(set(usage), SUMMARY | {"server_usages"})
        self.assertEqual((usage["start"], usage["stop"]), ("2020-01-01T02:00:00.000000", "2020-01-01T12:00:00.000000"))
        self.assertAlmostEqual(usage["total_hours"], 14.0)
        self.assertAlmostEqual(usage["total_memory_mb_usage"], 8 * 2048 + 6 * 512)
        self.assertAlmostEqual(usage["total_vcpus_usage"], 14.0)
        self.assertAlmostEqual(usage["total_local_gb_usage"], 8 * 20 + 6 * 1)
        by_name = {s["name"]: s for s in usage["server_usages"]}
        self.assertEqual(set(by_name), {"gone", "running"})
        gone = by_name["gone"]
        self.assertEqual(set(gone), SERVER_USAGE)
        self.assertEqual(
            (gone["state"], gone["flavor"], gone["hours"], gone["uptime"]), ("terminated", "m1.small", 8.0, 36000)
        )
        self.assertEqual(
            (gone["started_at"], gone["ended_at"]), ("2020-01-01T00:00:00.000000", "2020-01-01T10:00:00.000000")
        )
        running = by_name["running"]
        self.assertEqual((running["state"], running["ended_at"], running["hours"]), ("active", None, 6.0))

    @async_test
    async def test_index_lists_every_project_for_admins_with_detail_on_request(self):
        usages = (await self.api.ok("GET", f"/os-simple-tenant-usage?{WINDOW}", token="admin"))["tenant_usages"]
        self.assertEqual({u["tenant_id"] for u in usages}, {"demo-project", "alt-project"})
        self.assertEqual(set(usages[0]), SUMMARY)
        detailed = (await self.api.ok("GET", f"/os-simple-tenant-usage?{WINDOW}&detailed=1", token="admin"))[
            "tenant_usages"
        ]
        alt = [u for u in detailed if u["tenant_id"] == "alt-project"][0]
        self.assertEqual([s["instance_id"] for s in alt["server_usages"]], [self.alt["uuid"]])
        self.assertAlmostEqual(alt["total_hours"], 10.0)

    @async_test
    async def test_policy_isolation_between_projects(self):
        await self.api.error("GET", f"/os-simple-tenant-usage?{WINDOW}", status=403)
        await self.api.error("GET", f"/os-simple-tenant-usage/alt-project?{WINDOW}", status=403)
        mine = (await self.api.ok("GET", f"/os-simple-tenant-usage/alt-project?{WINDOW}", token="alt"))["tenant_usage"]
        self.assertEqual([s["name"] for s in mine["server_usages"]], ["alts"])
        empty = await self.api.ok("GET", f"/os-simple-tenant-usage/admin-project?{WINDOW}", token="admin")
        self.assertEqual(empty, {"tenant_usage": {}})

    @async_test
    async def test_bad_periods_are_400s(self):
        message = await self.api.error(
            "GET", "/os-simple-tenant-usage/demo-project?start=2020-01-02T00:00:00&end=2020-01-01T00:00:00"
        )
        self.assertEqual(message, "Invalid start time. The start time cannot occur after the end time.")
        await self.api.error("GET", "/os-simple-tenant-usage/demo-project?start=yesterday")
        await self.api.error("GET", f"/os-simple-tenant-usage/demo-project?{WINDOW}&bogus=1", version="2.75")

    @async_test
    async def test_paging_over_servers_from_2_40(self):
        page = await self.api.ok(
            "GET", f"/os-simple-tenant-usage?{WINDOW}&detailed=1&limit=2", token="admin", version="2.40"
        )
        served_ids = [s["instance_id"] for u in page["tenant_usages"] for s in u["server_usages"]]
        self.assertEqual(len(served_ids), 2)
        (link,) = page["tenant_usages_links"]
        self.assertIn(f"marker={served_ids[-1]}", link["href"])
        rest = await self.api.ok(
            "GET",
            f"/os-simple-tenant-usage?{WINDOW}&detailed=1&limit=2&marker={served_ids[-1]}",
            token="admin",
            version="2.40",
        )
        more = [s["instance_id"] for u in rest["tenant_usages"] for s in u["server_usages"]]
        self.assertEqual(len(more), 1)
        self.assertFalse(set(more) & set(served_ids))
        self.assertNotIn("tenant_usages_links", rest)
        shown = await self.api.ok("GET", f"/os-simple-tenant-usage/demo-project?{WINDOW}&limit=1", version="2.40")
        self.assertIn("/os-simple-tenant-usage/demo-project?", shown["tenant_usage_links"][0]["href"])
        old = await self.api.ok("GET", f"/os-simple-tenant-usage?{WINDOW}&limit=1", token="admin", version="2.39")
        self.assertEqual(len(old["tenant_usages"]), 2)
        message = await self.api.error(
            "GET", f"/os-simple-tenant-usage?{WINDOW}&marker=nope", token="admin", version="2.40"
        )
        self.assertEqual(message, "Marker nope could not be found.")
