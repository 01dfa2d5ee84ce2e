"""Services, hypervisors and availability zones through the compute API (admin views of the hosts)."""

from __future__ import annotations

import datetime as dt

from twisted.trial import unittest

from nova_twisted import utils
from tests.unit.api_resource_fixtures import async_test, served

SERVICE_21 = {"binary", "host", "id", "zone", "status", "state", "updated_at", "disabled_reason"}
HYPERVISOR_BASIC = {"id", "hypervisor_hostname", "state", "status"}
HYPERVISOR_DETAIL = HYPERVISOR_BASIC | {
    "vcpus",
    "memory_mb",
    "local_gb",
    "vcpus_used",
    "memory_mb_used",
    "local_gb_used",
    "hypervisor_type",
    "hypervisor_version",
    "free_ram_mb",
    "free_disk_gb",
    "current_workload",
    "running_vms",
    "disk_available_least",
    "host_ip",
    "service",
    "cpu_info",
}


class ServiceTests(unittest.TestCase):
    @async_test
    async def setUp(self):
        self.api = await served(self)
        self.compute = await self.api.add_hypervisor("compute-1", zone="zone-a")
        await self.api.add_service("control", "nova-scheduler")
        await self.api.add_service("control", "nova-conductor", seen=utils.utcnow() - dt.timedelta(seconds=600))

    async def services(self, version=None, query=""):
        return (await self.api.ok("GET", "/os-services" + query, token="admin", version=version))["services"]

    @async_test
    async def test_list_shows_zone_state_and_fields_per_version(self):
        listed = {s["binary"]: s for s in await self.services()}
        self.assertEqual(set(listed), {"nova-compute", "nova-scheduler", "nova-conductor"})
        compute = listed["nova-compute"]
        self.assertEqual(set(compute), SERVICE_21)
        self.assertEqual((compute["zone"], compute["state"], compute["status"]), ("zone-a", "up", "enabled"))
        self.assertIsInstance(compute["id"], int)
        self.assertRegex(compute["updated_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
        self.assertEqual((listed["nova-scheduler"]["zone"], listed["nova-conductor"]["state"]), ("internal", "down"))
        self.assertEqual(set((await self.services("2.11"))[0]), SERVICE_21 | {"forced_down"})
        uuid_ids = {s["id"] for s in await self.services("2.53")}
        self.assertTrue(all(utils.is_uuid_like(i) for i in uuid_ids))
        self.assertEqual([s["binary"] for s in await self.services(query="?binary=nova-compute")], ["nova-compute"])
        self.assertEqual(len(await self.services(query="?host=control")), 2)
        await self.api.error("GET", "/os-services?colour=red", token="admin", version="2.75")

    @async_test
    async def test_members_may_not_see_or_change_services(self):
        await self.api.error("GET", "/os-services", status=403)
        body = {"host": "compute-1", "binary": "nova-compute"}
        await self.api.error("PUT", "/os-services/disable", body, status=403)
        await self.api.error("DELETE", "/os-services/1", status=403)

    @async_test
    async def test_legacy_enable_disable_with_reason_and_force_down(self):
        body = {"host": "compute-1", "binary": "nova-compute"}
        answer = await self.api.ok("PUT", "/os-services/disable", body, "admin")
        self.assertEqual(answer, {"service": {"host": "compute-1", "binary": "nova-compute", "status": "disabled"}})
        answer = await self.api.ok(
            "PUT", "/os-services/disable-log-reason", {**body, "disabled_reason": "maint"}, "admin"
        )
        self.assertEqual(answer["service"]["disabled_reason"], "maint")
        (compute,) = await self.services(query="?binary=nova-compute")
        self.assertEqual((compute["status"], compute["disabled_reason"]), ("disabled", "maint"))
        self.assertEqual(
            await self.api.error("PUT", "/os-services/disable-log-reason", body, "admin"),
            "Missing disabled reason field",
        )
        answer = await self.api.ok("PUT", "/os-services/enable", body, "admin")
        self.assertEqual(answer["service"]["status"], "enabled")
        (compute,) = await self.services(query="?binary=nova-compute")
        self.assertEqual((compute["status"], compute["disabled_reason"]), ("enabled", None))
        self.assertEqual(
            await self.api.error("PUT", "/os-services/force-down", {**body, "forced_down": True}, "admin", status=404),
            "Unknown action",
        )
        answer = await self.api.ok("PUT", "/os-services/force-down", {**body, "forced_down": True}, "admin", "2.11")
        self.assertEqual(answer, {"service": {"host": "compute-1", "binary": "nova-compute", "forced_down": True}})
        (compute,) = await self.services("2.11", "?binary=nova-compute")
        self.assertEqual((compute["forced_down"], compute["state"]), (True, "down"))
        message = await self.api.error(
            "PUT", "/os-services/enable", {"host": "nope", "binary": "nova-compute"}, "admin", status=404
        )
        self.assertEqual(message, "Could not find binary nova-compute on host nope.")
        await self.api.error("PUT", "/os-services/enable", {"host": "compute-1"}, "admin")
        await self.api.error("PUT", "/os-services/frobnicate", body, "admin", status=404)

    @async_test
    async def test_uuid_update_from_2_53(self):
        (compute,) = await self.services("2.53", "?binary=nova-compute")
        path = f"/os-services/{compute['id']}"
        answer = await self.api.ok("PUT", path, {"status": "disabled", "disabled_reason": "x"}, "admin", "2.53")
        self.assertEqual(set(answer["service"]), SERVICE_21 | {"forced_down"})
        self.assertEqual((answer["service"]["status"], answer["service"]["disabled_reason"]), ("disabled", "x"))
        answer = await self.api.ok("PUT", path, {"forced_down": True}, "admin", "2.53")
        self.assertEqual((answer["service"]["forced_down"], answer["service"]["state"]), (True, "down"))
        answer = await self.api.ok("PUT", path, {"status": "enabled", "forced_down": False}, "admin", "2.53")
        self.assertEqual(
            (answer["service"]["status"], answer["service"]["disabled_reason"], answer["service"]["state"]),
            ("enabled", None, "up"),
        )
        self.assertIn("No updates were requested", await self.api.error("PUT", path, {}, "admin", "2.53"))
        await self.api.error("PUT", path, {"status": "enabled", "disabled_reason": "x"}, "admin", "2.53")
        await self.api.error("PUT", path, {"status": "sleeping"}, "admin", "2.53")
        self.assertEqual(await self.api.error("PUT", "/os-services/12", {}, "admin", "2.53"), "Invalid uuid 12")
        await self.api.error(
            "PUT", f"/os-services/{utils.generate_uuid()}", {"status": "enabled"}, "admin", "2.53", status=404
        )
        scheduler = [s for s in await self.services("2.53") if s["binary"] == "nova-scheduler"][0]
        message = await self.api.error(
            "PUT", f"/os-services/{scheduler['id']}", {"status": "disabled"}, "admin", "2.53"
        )
        self.assertIn("Only nova-compute services can be updated", message)

    @async_test
    async def test_delete_refuses_a_compute_with_servers_and_removes_its_hypervisor(self):
        server = await self.api.add_server(host="compute-1")
        (compute,) = await self.services(query="?binary=nova-compute")
        await self.api.error("DELETE", f"/os-services/{compute['id']}", token="admin", status=409)
        await self.api.delete_server(server["uuid"])
        code, _, _ = await self.api.request("DELETE", f"/os-services/{compute['id']}", token="admin")
        self.assertEqual(code, 204)
        self.assertEqual(await self.services(query="?binary=nova-compute"), [])
        self.assertEqual((await self.api.ok("GET", "/os-hypervisors", token="admin"))["hypervisors"], [])
        await self.api.error("DELETE", f"/os-services/{compute['id']}", token="admin", status=404)
        await self.api.error("DELETE", "/os-services/abc", token="admin")
        await self.api.error("DELETE", "/os-services/99999999999999999999999", token="admin", status=404)
        await self.api.error("DELETE", "/os-services/1", token="admin", version="2.53")


class HypervisorTests(unittest.TestCase):
    @async_test
    async def setUp(self):
        self.api = await served(self)
        self.node1 = await self.api.add_hypervisor("compute-1", vcpus=4, memory_mb=8192, disk_gb=100)
        self.node2 = await self.api.add_hypervisor("compute-2", vcpus=8, memory_mb=16384, disk_gb=200)
        self.server = await self.api.add_server(name="web", flavor="2", host="compute-1")

    async def get(self, path, version=None):
        return await self.api.ok("GET", path, token="admin", version=version)

    @async_test
    async def test_list_and_detail_with_figures_from_inventories_and_allocations(self):
        listed = (await self.get("/os-hypervisors"))["hypervisors"]
        self.assertEqual([h["hypervisor_hostname"] for h in listed], ["compute-1", "compute-2"])
        self.assertEqual(set(listed[0]), HYPERVISOR_BASIC)
        self.assertEqual(
            (listed[0]["id"], listed[0]["state"], listed[0]["status"]), (self.node1["id"], "up", "enabled")
        )
        (detail, _) = (await self.get("/os-hypervisors/detail"))["hypervisors"]
        self.assertEqual(set(detail), HYPERVISOR_DETAIL)
        self.assertEqual(
            {k: detail[k] for k in ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used")},
            {
                "vcpus": 4,
                "memory_mb": 8192,
                "local_gb": 100,
                "vcpus_used": 1,
                "memory_mb_used": 512 + 2048,
                "local_gb_used": 20,
            },
        )
        self.assertEqual((detail["free_ram_mb"], detail["free_disk_gb"], detail["running_vms"]), (8192 - 2560, 80, 1))
        self.assertEqual(
            detail["service"], {"id": detail["service"]["id"], "host": "compute-1", "disabled_reason": None}
        )
        self.assertIsInstance(detail["cpu_info"], str)
        self.assertEqual(
            (await self.get("/os-hypervisors/detail", "2.28"))["hypervisors"][0]["cpu_info"]["model"], "fake"
        )

    @async_test
    async def test_ids_become_uuids_at_2_53_and_show_takes_them(self):
        shown = (await self.get(f"/os-hypervisors/{self.node1['id']}"))["hypervisor"]
        self.assertEqual(set(shown), HYPERVISOR_DETAIL)
        await self.api.error("GET", f"/os-hypervisors/{self.node1['uuid']}", token="admin", status=404)
        message = await self.api.error("GET", "/os-hypervisors/999", token="admin", status=404)
        self.assertEqual(message, "Hypervisor with ID '999' could not be found.")
        await self.api.error("GET", "/os-hypervisors/99999999999999999999999", token="admin", status=404)
        shown = (await self.get(f"/os-hypervisors/{self.node1['uuid']}", "2.53"))["hypervisor"]
        self.assertEqual(shown["id"], self.node1["uuid"])
        self.assertTrue(utils.is_uuid_like(shown["service"]["id"]))
        self.assertNotIn("servers", shown)
        self.assertEqual(
            await self.api.error("GET", "/os-hypervisors/1", token="admin", version="2.53"), "Invalid uuid 1"
        )
        with_servers = await self.get(f"/os-hypervisors/{self.node1['uuid']}?with_servers=true", "2.53")
        self.assertEqual(with_servers["hypervisor"]["servers"], [{"name": "web", "uuid": self.server["uuid"]}])
        empty = await self.get(f"/os-hypervisors/{self.node2['uuid']}?with_servers=1", "2.53")
        self.assertNotIn("servers", empty["hypervisor"])
        empty = await self.get(f"/os-hypervisors/{self.node2['uuid']}?with_servers=1", "2.75")
        self.assertEqual(empty["hypervisor"]["servers"], [])

    @async_test
    async def test_search_and_servers_routes_until_2_52_then_query_parameters(self):
        found = (await self.get("/os-hypervisors/compute-1/search"))["hypervisors"]
        self.assertEqual([(h["hypervisor_hostname"], set(h)) for h in found], [("compute-1", HYPERVISOR_BASIC)])
        servers = (await self.get("/os-hypervisors/compute/servers"))["hypervisors"]
        self.assertEqual([h.get("servers") for h in servers], [[{"name": "web", "uuid": self.server["uuid"]}], None])
        self.assertEqual(
            await self.api.error("GET", "/os-hypervisors/nothing/search", token="admin", status=404),
            "No hypervisor matching 'nothing' could be found.",
        )
        await self.api.error("GET", "/os-hypervisors/compute/search", token="admin", version="2.53", status=404)
        listed = await self.get("/os-hypervisors?hypervisor_hostname_pattern=compute-2&with_servers=true", "2.53")
        self.assertEqual([h["hypervisor_hostname"] for h in listed["hypervisors"]], ["compute-2"])
        await self.api.error(
            "GET", "/os-hypervisors?hypervisor_hostname_pattern=zzz", token="admin", version="2.53", status=404
        )
        message = await self.api.error(
            "GET", "/os-hypervisors?hypervisor_hostname_pattern=c&limit=1", token="admin", version="2.53"
        )
        self.assertIn("Paging over hypervisors", message)
        await self.api.error("GET", "/os-hypervisors?with_servers=maybe", token="admin", version="2.53")
        await self.api.error("GET", "/os-hypervisors?other=1", token="admin", version="2.53")

    @async_test
    async def test_paging_from_2_33(self):
        page = await self.get("/os-hypervisors?limit=1", "2.33")
        self.assertEqual(len(page["hypervisors"]), 1)
        self.assertIn(f"marker={self.node1['id']}", page["hypervisors_links"][0]["href"])
        rest = await self.get(f"/os-hypervisors/detail?marker={self.node1['id']}", "2.33")
        self.assertEqual([h["hypervisor_hostname"] for h in rest["hypervisors"]], ["compute-2"])
        rest = await self.get(f"/os-hypervisors?limit=5&marker={self.node1['uuid']}", "2.53")
        self.assertEqual([h["id"] for h in rest["hypervisors"]], [self.node2["uuid"]])
        self.assertEqual(len((await self.get("/os-hypervisors?limit=1", "2.32"))["hypervisors"]), 2)
        await self.api.error("GET", "/os-hypervisors?marker=77", token="admin", version="2.33")

    @async_test
    async def test_statistics_sum_enabled_hypervisors(self):
        stats = (await self.get("/os-hypervisors/statistics"))["hypervisor_statistics"]
        self.assertEqual((stats["count"], stats["vcpus"], stats["memory_mb"], stats["vcpus_used"]), (2, 12, 24576, 1))
        self.assertEqual(stats["running_vms"], 1)
        self.assertEqual(stats["memory_mb_used"], 512 + 2048 + 512)
        await self.api.ok("PUT", "/os-services/disable", {"host": "compute-2", "binary": "nova-compute"}, "admin")
        stats = (await self.get("/os-hypervisors/statistics"))["hypervisor_statistics"]
        self.assertEqual((stats["count"], stats["vcpus"]), (1, 4))
        listed = (await self.get("/os-hypervisors"))["hypervisors"]
        self.assertEqual([h["status"] for h in listed], ["enabled", "disabled"])

    @async_test
    async def test_admin_only_and_uptime_not_implemented(self):
        for path in (
            "/os-hypervisors",
            "/os-hypervisors/detail",
            "/os-hypervisors/statistics",
            f"/os-hypervisors/{self.node1['id']}",
        ):
            await self.api.error("GET", path, status=403)
        await self.api.error("GET", f"/os-hypervisors/{self.node1['id']}/uptime", token="admin", status=501)
        await self.api.error("GET", "/os-hypervisors/555/uptime", token="admin", status=404)


class AvailabilityZoneTests(unittest.TestCase):
    @async_test
    async def setUp(self):
        self.api = await served(self)
        await self.api.add_hypervisor("compute-1", zone="nova")
        await self.api.add_hypervisor("compute-2", zone="zone-b")
        await self.api.add_hypervisor("compute-3", zone="zone-c")
        await self.api.add_service("control", "nova-scheduler")
        await self.api.ok("PUT", "/os-services/disable", {"host": "compute-3", "binary": "nova-compute"}, "admin")

    @async_test
    async def test_list_shows_zones_and_availability_without_internal(self):
        info = (await self.api.ok("GET", "/os-availability-zone"))["availabilityZoneInfo"]
        self.assertEqual(
            info,
            [
                {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None},
                {"zoneName": "zone-b", "zoneState": {"available": True}, "hosts": None},
                {"zoneName": "zone-c", "zoneState": {"available": False}, "hosts": None},
            ],
        )

    @async_test
    async def test_detail_shows_hosts_and_services_to_admins_only(self):
        await self.api.error("GET", "/os-availability-zone/detail", status=403)
        info = (await self.api.ok("GET", "/os-availability-zone/detail", token="admin"))["availabilityZoneInfo"]
        by_name = {z["zoneName"]: z for z in info}
        self.assertEqual(set(by_name), {"internal", "nova", "zone-b", "zone-c"})
        compute = by_name["nova"]["hosts"]["compute-1"]["nova-compute"]
        self.assertEqual((compute["available"], compute["active"]), (True, True))
        self.assertRegex(compute["updated_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
        self.assertIn("nova-scheduler", by_name["internal"]["hosts"]["control"])
        self.assertEqual(by_name["zone-c"], {"zoneName": "zone-c", "zoneState": {"available": False}, "hosts": None})

    @async_test
    async def test_aggregates_list_is_empty_and_admin_only(self):
        self.assertEqual(await self.api.ok("GET", "/os-aggregates", token="admin"), {"aggregates": []})
        await self.api.error("GET", "/os-aggregates", status=403)
