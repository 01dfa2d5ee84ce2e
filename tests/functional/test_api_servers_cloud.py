"""The servers API in front of a whole in-process cloud (conductor, scheduler, two fake computes).

Servers really boot, every action really reaches its compute and the
server settles in the state Nova would show; consoles hand out working
tokens; snapshots become images; a build no host can take ends in ERROR
with its fault; the host's service state shows as host_status.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlparse

from twisted.internet import defer
from twisted.trial import unittest

from nova_twisted import utils
from nova_twisted.console import tokens
from nova_twisted.db import services
from tests.identity_fixtures import async_test
from tests.servers_api_helpers import serve


class ServersInACloud(unittest.TestCase):
    timeout = 120

    def setUp(self):
        async def start():
            self.api = await serve(self, full=True)

        return defer.ensureDeferred(start())

    async def act(self, uuid, body, version="2.79", user="demo"):
        code, headers, answer = await self.api.request(
            "POST", f"/v2.1/servers/{uuid}/action", body, user=user, version=version
        )
        return code, headers, answer

    async def boot_active(self, **server):
        created = await self.api.boot(version="2.79", **server)
        shown = await self.api.wait_status(created["id"], "ACTIVE")
        return created, shown

    @async_test
    async def test_a_server_boots_and_goes_through_every_state_change_action(self):
        created, server = await self.boot_active(name="life", metadata={"a": "b"}, tags=["t"])
        uuid = created["id"]
        self.assertEqual(server["OS-EXT-STS:power_state"], 1)
        self.assertIn(server["OS-EXT-SRV-ATTR:host"], ("compute-1", "compute-2"))
        self.assertEqual(server["host_status"], "UP")
        self.assertEqual(server["OS-EXT-AZ:availability_zone"], "nova")
        self.assertIsNotNone(server["OS-SRV-USG:launched_at"])
        self.assertEqual((server["metadata"], server["tags"]), ({"a": "b"}, ["t"]))
        for body, status in (
            ({"os-stop": None}, "SHUTOFF"),
            ({"os-start": None}, "ACTIVE"),
            ({"pause": None}, "PAUSED"),
            ({"unpause": None}, "ACTIVE"),
            ({"suspend": None}, "SUSPENDED"),
            ({"resume": None}, "ACTIVE"),
            ({"reboot": {"type": "SOFT"}}, "ACTIVE"),
            ({"reboot": {"type": "HARD"}}, "ACTIVE"),
        ):
            code, _, answer = await self.act(uuid, body)
            self.assertEqual(code, 202, (body, answer))
            await self.api.wait_status(uuid, status)
        _, _, listed = await self.api.request("GET", f"/v2.1/servers/{uuid}/os-instance-actions", version="2.58")
        names = [a["action"] for a in listed["instanceActions"]]
        self.assertEqual(
            names, ["reboot", "reboot", "resume", "suspend", "unpause", "pause", "start", "stop", "create"]
        )
        request_id = listed["instanceActions"][0]["request_id"]
        _, _, shown = await self.api.request(
            "GET", f"/v2.1/servers/{uuid}/os-instance-actions/{request_id}", version="2.62"
        )
        events = shown["instanceAction"]["events"]
        self.assertEqual([e["result"] for e in events], ["Success"])
        self.assertEqual(events[0]["hostId"], server["hostId"])

    @async_test
    async def test_rebuild_resize_revert_confirm_and_snapshots(self):
        created, server = await self.boot_active(name="mover")
        uuid = created["id"]
        code, _, answer = await self.act(uuid, {"rebuild": {"imageRef": self.api.image_id, "name": "rebuilt"}})
        self.assertEqual(code, 202)
        self.assertEqual(answer["server"]["name"], "rebuilt")
        await self.api.wait_status(uuid, "ACTIVE")
        self.assertEqual((await self.act(uuid, {"resize": {"flavorRef": "2"}}))[0], 202)
        resized = await self.api.wait_status(uuid, "VERIFY_RESIZE")
        self.assertEqual(resized["flavor"]["original_name"], "m1.small")
        self.assertEqual((await self.act(uuid, {"revertResize": None}))[0], 202)
        reverted = await self.api.wait_status(uuid, "ACTIVE")
        self.assertEqual(reverted["flavor"]["original_name"], "m1.tiny")
        self.assertEqual((await self.act(uuid, {"resize": {"flavorRef": "2"}}))[0], 202)
        await self.api.wait_status(uuid, "VERIFY_RESIZE")
        self.assertEqual((await self.act(uuid, {"confirmResize": None}))[0], 204)
        confirmed = await self.api.wait_status(uuid, "ACTIVE")
        self.assertEqual(confirmed["flavor"]["original_name"], "m1.small")
        code, headers, body = await self.act(uuid, {"createImage": {"name": "snap-old"}}, version="2.44")
        self.assertEqual((code, body), (202, None))
        old_image = headers.getRawHeaders("location")[0].rsplit("/", 1)[-1]
        await self.api.wait_status(uuid, "ACTIVE")
        code, headers, body = await self.act(uuid, {"createImage": {"name": "snap", "metadata": {"k": "v"}}})
        self.assertEqual(code, 202)
        self.assertIsNone(headers.getRawHeaders("location"))
        await self.api.wait_status(uuid, "ACTIVE")
        ctxt = _admin()
        for image_id in (old_image, body["image_id"]):
            image = await self.api.cloud.wait_image(ctxt, image_id, "active")
            self.assertEqual(image["instance_uuid"], uuid)
        self.assertEqual(image["k"], "v")

    @async_test
    async def test_console_output_and_browser_consoles_with_working_tokens(self):
        created, _ = await self.boot_active(name="console")
        uuid = created["id"]
        code, _, body = await self.act(uuid, {"os-getConsoleOutput": {"length": -1}})
        self.assertEqual(code, 200)
        self.assertIn(f"booted from image {self.api.image_id}", body["output"])
        urls = []
        code, _, body = await self.act(uuid, {"os-getVNCConsole": {"type": "novnc"}}, version="2.5")
        self.assertEqual((code, body["console"]["type"]), (200, "novnc"))
        urls.append(body["console"]["url"])
        code, _, body = await self.act(uuid, {"os-getSPICEConsole": {"type": "spice-html5"}}, version="2.1")
        self.assertEqual(code, 200)
        urls.append(body["console"]["url"])
        for protocol, kind in (("vnc", "novnc"), ("spice", "spice-html5")):
            code, _, body = await self.api.request(
                "POST",
                f"/v2.1/servers/{uuid}/remote-consoles",
                {"remote_console": {"protocol": protocol, "type": kind}},
                version="2.6",
            )
            self.assertEqual(code, 200)
            self.assertEqual((body["remote_console"]["protocol"], body["remote_console"]["type"]), (protocol, kind))
            urls.append(body["remote_console"]["url"])
        for url in urls:
            path = parse_qs(urlparse(url).query)["path"][0]
            token = parse_qs(urlparse(unquote(path)).query)["token"][0]
            found = await self.api.database.run(tokens.validate, token)
            self.assertEqual(found["instance_uuid"], uuid)

    @async_test
    async def test_a_build_no_host_can_take_ends_in_error_with_its_fault(self):
        created = await self.api.boot(version="2.79", name="too-big", flavorRef="4")
        server = await self.api.wait_for(created["id"], lambda s: s["status"] == "ERROR")
        self.assertEqual(server["fault"]["code"], 500)
        self.assertIn("No valid host", server["fault"]["message"])
        _, _, mine = await self.api.request("GET", f"/v2.1/servers/{created['id']}", version="2.79")
        self.assertNotIn("details", mine["server"]["fault"])
        self.assertNotIn("progress", mine["server"])
        code, _, _ = await self.api.request("DELETE", f"/v2.1/servers/{created['id']}")
        self.assertEqual(code, 204)
        await self.api.wait_for(created["id"], lambda s: s is None)

    @async_test
    async def test_host_status_follows_the_compute_service(self):
        created, server = await self.boot_active(name="watched")
        host = server["OS-EXT-SRV-ATTR:host"]
        await self.api.database.run(services.update, host, "nova-compute", utils.utcnow(), disabled=True)
        shown = await self.api.wait_for(created["id"], lambda s: s["host_status"] == "MAINTENANCE")
        await self.api.database.run(services.update, host, "nova-compute", utils.utcnow(), forced_down=True)
        shown = await self.api.wait_for(created["id"], lambda s: s["host_status"] == "DOWN")
        self.assertEqual(shown["status"], "ACTIVE")
        _, _, mine = await self.api.request("GET", f"/v2.1/servers/{created['id']}", version="2.16")
        self.assertNotIn("host_status", mine["server"])

    @async_test
    async def test_scheduler_hints_and_groups_place_servers(self):
        first, shown = await self.boot_active(name="first")
        host = shown["OS-EXT-SRV-ATTR:host"]
        code, _, body = await self.api.request(
            "POST",
            "/v2.1/servers",
            {
                "server": {"name": "apart", "imageRef": self.api.image_id, "flavorRef": "1", "networks": "none"},
                "os:scheduler_hints": {"different_host": [first["id"]]},
            },
            version="2.79",
        )
        self.assertEqual(code, 202, body)
        apart = await self.api.wait_status(body["server"]["id"], "ACTIVE")
        self.assertNotEqual(apart["OS-EXT-SRV-ATTR:host"], host)
        code, _, body = await self.api.request(
            "POST",
            "/v2.1/servers",
            {
                "server": {"name": "together", "imageRef": self.api.image_id, "flavorRef": "1", "networks": "none"},
                "os:scheduler_hints": {"same_host": first["id"]},
            },
            version="2.79",
        )
        self.assertEqual(code, 202, body)
        together = await self.api.wait_status(body["server"]["id"], "ACTIVE")
        self.assertEqual(together["OS-EXT-SRV-ATTR:host"], host)
        code, _, group = await self.api.request(
            "POST",
            "/v2.1/os-server-groups",
            {"server_group": {"name": "spread", "policy": "anti-affinity"}},
            version="2.64",
        )
        self.assertEqual(code, 200, group)
        hosts = []
        for name in ("g1", "g2"):
            code, _, body = await self.api.request(
                "POST",
                "/v2.1/servers",
                {
                    "server": {"name": name, "imageRef": self.api.image_id, "flavorRef": "1", "networks": "none"},
                    "os:scheduler_hints": {"group": group["server_group"]["id"]},
                },
                version="2.79",
            )
            self.assertEqual(code, 202, body)
            member = await self.api.wait_status(body["server"]["id"], "ACTIVE")
            self.assertEqual(member["server_groups"], [group["server_group"]["id"]])
            hosts.append(member["OS-EXT-SRV-ATTR:host"])
        self.assertEqual(len(set(hosts)), 2)

    @async_test
    async def test_deleting_a_running_server_and_seeing_it_in_changes_since(self):
        before = utils.isotime(utils.utcnow())
        created, _ = await self.boot_active(name="short-lived")
        code, _, _ = await self.api.request("DELETE", f"/v2.1/servers/{created['id']}")
        self.assertEqual(code, 204)
        await self.api.wait_for(created["id"], lambda s: s is None, user="demo")
        _, _, listed = await self.api.request("GET", f"/v2.1/servers/detail?changes-since={before}", version="2.79")
        gone = [s for s in listed["servers"] if s["id"] == created["id"]]
        self.assertEqual([s["status"] for s in gone], ["DELETED"])
        _, _, listed = await self.api.request("GET", "/v2.1/servers", version="2.79")
        self.assertEqual(listed["servers"], [])


def _admin():
    from nova_twisted.context import RequestContext

    return RequestContext(user_id="admin", project_id="admin", roles=["admin"], is_admin=True)
