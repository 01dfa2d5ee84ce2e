"""Server actions, metadata, instance actions and consoles over HTTP, in-process (no computes: casts wait on the bus)."""

from __future__ import annotations

from twisted.internet import defer
from twisted.trial import unittest

from nova_twisted.compute import states
from nova_twisted.db import actions, instances
from tests.identity_fixtures import async_test
from tests.servers_api_helpers import serve


class _Served(unittest.TestCase):
    def setUp(self):
        async def start():
            self.api = await serve(self)
            self.server = await self.api.insert_server()
            self.uuid = self.server["uuid"]

        return defer.ensureDeferred(start())

    async def act(self, body, user="demo", version="2.79", raw=None):
        return await self.api.request(
            "POST", f"/v2.1/servers/{self.uuid}/action", body, user=user, version=version, raw=raw
        )


class ServerActions(_Served):
    @async_test
    async def test_an_unknown_or_malformed_action_is_400(self):
        code, _, body = await self.act({"bogus": None})
        self.assertEqual((code, body["badRequest"]["message"]), (400, "There is no such action: bogus"))
        for bad in ({"pause": None, "unpause": None}, {}, [1]):
            code, _, body = await self.act(bad)
            self.assertEqual((code, body["badRequest"]["message"]), (400, "Malformed request body"), bad)
        code, _, body = await self.act(None, raw=b"")
        self.assertEqual(code, 400)

    @async_test
    async def test_an_action_that_does_not_fit_the_state_is_409_in_novas_words(self):
        await self.api.set_state(self.uuid, vm_state=states.STOPPED, power_state=states.SHUTDOWN)
        code, _, body = await self.act({"pause": None})
        self.assertEqual(code, 409)
        self.assertEqual(
            body["conflictingRequest"]["message"],
            f"Cannot 'pause' instance {self.uuid} while it is in vm_state stopped",
        )
        code, _, body = await self.act({"confirmResize": None})
        self.assertEqual(code, 409)
        self.assertIn("Cannot 'confirmResize'", body["conflictingRequest"]["message"])

    @async_test
    async def test_accepted_actions_move_the_task_state_and_answer_202(self):
        for body, task_state in (
            ({"reboot": {"type": "SOFT"}}, states.REBOOTING),
            ({"os-stop": None}, states.POWERING_OFF),
            ({"pause": None}, states.PAUSING),
            ({"suspend": {}}, states.SUSPENDING),
        ):
            await self.api.set_state(self.uuid, task_state=None)
            code, _, answer = await self.act(body)
            self.assertEqual((code, answer), (202, None), body)
            _, _, shown = await self.api.request("GET", f"/v2.1/servers/{self.uuid}")
            self.assertEqual(shown["server"]["OS-EXT-STS:task_state"], task_state)

    @async_test
    async def test_bodies_are_validated(self):
        for body in (
            {"reboot": {"type": "SIDEWAYS"}},
            {"reboot": {}},
            {"resize": {}},
            {"createImage": {}},
            {"createImage": {"name": "x", "metadata": {"k": 1}}},
            {"rebuild": {"imageRef": "nope"}},
            {"rebuild": {"imageRef": self.api.image_id, "bogus": 1}},
            {"os-getConsoleOutput": {"length": "many"}},
            {"lock": {"locked_reason": ""}},
        ):
            code, _, answer = await self.act(body)
            self.assertEqual(code, 400, (body, answer))
            self.assertIn("badRequest", answer)

    @async_test
    async def test_resize_errors(self):
        code, _, body = await self.act({"resize": {"flavorRef": "1"}})
        self.assertEqual((code, body["badRequest"]["message"]), (400, "When resizing, instances must change flavor!"))
        code, _, body = await self.act({"resize": {"flavorRef": "404"}})
        self.assertEqual((code, body["badRequest"]["message"]), (400, "Flavor 404 could not be found."))

    @async_test
    async def test_a_reader_may_not_act_and_another_project_sees_404(self):
        code, _, body = await self.act({"pause": None}, user="reader")
        self.assertEqual(code, 403)
        self.assertIn("os_compute_api:os-pause-server:pause", body["forbidden"]["message"])
        code, _, body = await self.act({"pause": None}, user="alt")
        self.assertEqual(code, 404)
        code, _, body = await self.api.request("POST", "/v2.1/servers/not-a-uuid/action", {"pause": None})
        self.assertEqual(code, 404)

    @async_test
    async def test_lock_with_a_reason_blocks_the_owner_and_an_admins_lock_needs_an_admin_to_lift(self):
        code, _, _ = await self.act({"lock": {"locked_reason": "maintenance"}})
        self.assertEqual(code, 202)
        _, _, shown = await self.api.request("GET", f"/v2.1/servers/{self.uuid}", version="2.73")
        self.assertEqual((shown["server"]["locked"], shown["server"]["locked_reason"]), (True, "maintenance"))
        code, _, body = await self.act({"pause": None})
        self.assertEqual((code, body["conflictingRequest"]["message"]), (409, f"Instance {self.uuid} is locked"))
        self.assertEqual((await self.act({"unlock": None}))[0], 202)
        self.assertEqual((await self.act({"lock": None}, user="admin"))[0], 202)
        code, _, body = await self.act({"unlock": None})
        self.assertEqual(code, 403)
        self.assertEqual((await self.act({"unlock": None}, user="admin"))[0], 202)
        _, _, shown = await self.api.request("GET", f"/v2.1/servers/{self.uuid}", version="2.73")
        self.assertEqual((shown["server"]["locked"], shown["server"]["locked_reason"]), (False, None))

    @async_test
    async def test_rebuild_answers_the_server_with_the_fields_of_the_microversion(self):
        rebuild = {"rebuild": {"imageRef": self.api.image_id, "name": "again", "adminPass": "pw"}}
        code, headers, body = await self.act(rebuild, version="2.1")
        self.assertEqual(code, 202)
        server = body["server"]
        self.assertEqual((server["name"], server["adminPass"], server["status"]), ("again", "pw", "REBUILD"))
        self.assertNotIn("key_name", server)
        self.assertNotIn("OS-EXT-STS:vm_state", server)
        self.assertEqual(headers.getRawHeaders("location"), [server["links"][0]["href"]])
        for version, present, absent in (
            ("2.54", {"key_name", "description", "tags"}, {"user_data", "OS-EXT-AZ:availability_zone"}),
            ("2.57", {"key_name", "user_data"}, {"OS-EXT-AZ:availability_zone"}),
            ("2.75", {"key_name", "user_data", "OS-EXT-AZ:availability_zone", "server_groups"}, set()),
        ):
            await self.api.set_state(self.uuid, task_state=None)
            code, _, body = await self.act(rebuild, version=version)
            self.assertEqual(code, 202, body)
            self.assertLessEqual(present, set(body["server"]), version)
            self.assertFalse(absent & set(body["server"]), version)
        code, _, body = await self.act({"rebuild": {"imageRef": "3cb9bc59-5699-4588-a4b1-b87f96708bc6"}})
        self.assertEqual(code, 400)

    @async_test
    async def test_create_image_needs_a_host_and_a_quiet_server(self):
        await self.api.set_state(self.uuid, task_state=states.REBOOTING)
        code, _, body = await self.act({"createImage": {"name": "snap"}})
        self.assertEqual(code, 409)
        self.assertIn("Cannot 'createImage'", body["conflictingRequest"]["message"])


class Consoles(_Served):
    @async_test
    async def test_the_console_actions_exist_up_to_2_5_and_remote_consoles_from_2_6(self):
        code, _, body = await self.act({"os-getVNCConsole": {"type": "novnc"}}, version="2.6")
        self.assertEqual((code, body["itemNotFound"]["message"]), (404, "The resource could not be found."))
        code, _, _ = await self.api.request(
            "POST",
            f"/v2.1/servers/{self.uuid}/remote-consoles",
            {"remote_console": {"protocol": "vnc", "type": "novnc"}},
            version="2.5",
        )
        self.assertEqual(code, 404)

    @async_test
    async def test_console_types_that_do_not_fit_or_are_not_served_are_400(self):
        url = f"/v2.1/servers/{self.uuid}/remote-consoles"
        for console, message in (
            ({"protocol": "vnc", "type": "spice-html5"}, "Invalid console type spice-html5"),
            ({"protocol": "rdp", "type": "rdp-html5"}, "Unavailable console type rdp-html5."),
            ({"protocol": "vnc", "type": "xvpvnc"}, "Unavailable console type xvpvnc."),
        ):
            code, _, body = await self.api.request("POST", url, {"remote_console": console}, version="2.6")
            self.assertEqual((code, body["badRequest"]["message"]), (400, message))
        code, _, body = await self.api.request(
            "POST", url, {"remote_console": {"protocol": "telnet", "type": "novnc"}}, version="2.6"
        )
        self.assertEqual(code, 400)
        code, _, body = await self.act({"os-getSerialConsole": {"type": "serial"}}, version="2.1")
        self.assertEqual((code, body["badRequest"]["message"]), (400, "Unavailable console type serial."))
        code, _, body = await self.act({"os-getVNCConsole": {"type": "novnc"}}, version="2.1", user="reader")
        self.assertEqual(code, 403)


class ServerMetadata(_Served):
    @async_test
    async def test_set_merge_replace_show_and_delete(self):
        base = f"/v2.1/servers/{self.uuid}/metadata"
        code, _, body = await self.api.request("POST", base, {"metadata": {"a": "1", "b": "2"}})
        self.assertEqual((code, body), (200, {"metadata": {"a": "1", "b": "2"}}))
        code, _, body = await self.api.request("POST", base, {"metadata": {"b": "3"}})
        self.assertEqual(body, {"metadata": {"a": "1", "b": "3"}})
        code, _, body = await self.api.request("PUT", base + "/with%20space", {"meta": {"with space": "x"}})
        self.assertEqual((code, body), (200, {"meta": {"with space": "x"}}))
        code, _, body = await self.api.request("GET", base + "/with%20space")
        self.assertEqual(body, {"meta": {"with space": "x"}})
        code, _, body = await self.api.request("PUT", base, {"metadata": {"only": "this"}})
        self.assertEqual(body, {"metadata": {"only": "this"}})
        code, _, body = await self.api.request("GET", base)
        self.assertEqual(body, {"metadata": {"only": "this"}})
        code, _, body = await self.api.request("DELETE", base + "/only")
        self.assertEqual((code, body), (204, None))
        code, _, body = await self.api.request("GET", base + "/only")
        self.assertEqual((code, body["itemNotFound"]["message"]), (404, "Metadata item was not found"))
        code, _, body = await self.api.request("DELETE", base + "/only")
        self.assertEqual(code, 404)

    @async_test
    async def test_errors(self):
        base = f"/v2.1/servers/{self.uuid}/metadata"
        code, _, body = await self.api.request("PUT", base + "/a", {"meta": {"b": "1"}})
        self.assertEqual((code, body["badRequest"]["message"]), (400, "Request body and URI mismatch"))
        code, _, body = await self.api.request("PUT", base + "/a", {"meta": {"a": "1", "b": "2"}})
        self.assertEqual(code, 400)
        code, _, body = await self.api.request("POST", base, {"metadata": {"k": "v" * 256}})
        self.assertEqual(code, 400)
        code, _, body = await self.api.request("POST", base, {"meta": {}})
        self.assertEqual(code, 400)
        code, _, body = await self.api.request("POST", base, {"metadata": {"a": "1"}}, user="reader")
        self.assertEqual(code, 403)
        code, _, body = await self.api.request("GET", base, user="reader")
        self.assertEqual(code, 200)
        code, _, body = await self.api.request("GET", base, user="alt")
        self.assertEqual(code, 404)
        await self.api.set_state(self.uuid, vm_state=states.BUILDING, task_state=states.SCHEDULING)
        code, _, body = await self.api.request("POST", base, {"metadata": {"a": "1"}})
        self.assertEqual(code, 409)
        self.assertEqual(
            body["conflictingRequest"]["message"],
            f"Cannot 'update metadata' instance {self.uuid} while it is in vm_state building",
        )

    @async_test
    async def test_too_many_items_is_a_quota_error(self):
        items = {f"k{i}": "v" for i in range(self.api.conf.quota.metadata_items + 1)}
        code, _, body = await self.api.request("POST", f"/v2.1/servers/{self.uuid}/metadata", {"metadata": items})
        self.assertEqual(code, 403)
        self.assertIn("metadata_items", body["forbidden"]["message"])


class InstanceActions(_Served):
    def setUp(self):
        async def more():
            rows = await self.api.database.run(actions.list_for_instance, self.uuid)
            self.create_request = rows[0]["request_id"]
            await self.api.database.run(
                actions.event_start, self.uuid, self.create_request, "compute_build_and_run_instance", "compute-1"
            )
            await self.api.database.run(
                actions.event_finish, self.uuid, self.create_request, "compute_build_and_run_instance", "Error", "TB"
            )

        d = super().setUp()
        d.addCallback(lambda _: defer.ensureDeferred(more()))
        return d

    @async_test
    async def test_the_list_has_the_fields_of_each_microversion(self):
        url = f"/v2.1/servers/{self.uuid}/os-instance-actions"
        keys = {"action", "instance_uuid", "request_id", "user_id", "project_id", "start_time", "message"}
        _, _, body = await self.api.request("GET", url, version="2.57")
        self.assertEqual(set(body), {"instanceActions"})
        self.assertEqual(set(body["instanceActions"][0]), keys)
        self.assertEqual(body["instanceActions"][0]["message"], "Error")
        self.assertRegex(body["instanceActions"][0]["start_time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
        _, _, body = await self.api.request("GET", url, version="2.58")
        self.assertEqual(set(body["instanceActions"][0]), keys | {"updated_at"})

    @async_test
    async def test_paging_from_2_58(self):
        for _ in range(3):
            await self.api.set_state(self.uuid, task_state=None)
            self.assertEqual((await self.act({"os-stop": None}))[0], 202)
            await self.api.set_state(self.uuid, vm_state=states.ACTIVE)
        url = f"/v2.1/servers/{self.uuid}/os-instance-actions"
        _, _, body = await self.api.request("GET", url + "?limit=2", version="2.58")
        self.assertEqual([a["action"] for a in body["instanceActions"]], ["stop", "stop"])
        self.assertEqual(body["links"][0]["rel"], "next")
        marker = body["instanceActions"][-1]["request_id"]
        _, _, body = await self.api.request("GET", url + f"?limit=2&marker={marker}", version="2.58")
        self.assertEqual([a["action"] for a in body["instanceActions"]], ["stop", "create"])
        code, _, body = await self.api.request("GET", url + "?marker=req-nope", version="2.58")
        self.assertEqual((code, body["badRequest"]["message"]), (400, "Marker req-nope could not be found."))
        code, _, body = await self.api.request("GET", url + "?bogus=1", version="2.58")
        self.assertEqual(code, 400)
        code, _, body = await self.api.request("GET", url + "?changes-since=2999-01-01T00:00:00Z", version="2.58")
        self.assertEqual(body["instanceActions"], [])

    @async_test
    async def test_events_per_microversion_and_caller(self):
        url = f"/v2.1/servers/{self.uuid}/os-instance-actions/{self.create_request}"
        _, _, body = await self.api.request("GET", url, version="2.50")
        self.assertNotIn("events", body["instanceAction"])
        _, _, body = await self.api.request("GET", url, version="2.51")
        self.assertEqual(set(body["instanceAction"]["events"][0]), {"event", "start_time", "finish_time", "result"})
        _, _, body = await self.api.request("GET", url, version="2.62")
        self.assertEqual(
            set(body["instanceAction"]["events"][0]), {"event", "start_time", "finish_time", "result", "hostId"}
        )
        _, _, body = await self.api.request("GET", url, version="2.1", user="admin")
        event = body["instanceAction"]["events"][0]
        self.assertEqual((event["result"], event["traceback"]), ("Error", "TB"))
        _, _, body = await self.api.request("GET", url, version="2.62", user="admin")
        self.assertEqual(body["instanceAction"]["events"][0]["host"], "compute-1")
        code, _, body = await self.api.request("GET", url + "x")
        self.assertEqual(code, 404)
        code, _, body = await self.api.request("GET", url, user="alt")
        self.assertEqual(code, 404)

    @async_test
    async def test_a_deleted_servers_actions_are_readable_from_2_21(self):
        await self.api.database.run(instances.destroy, self.uuid)
        url = f"/v2.1/servers/{self.uuid}/os-instance-actions"
        code, _, _ = await self.api.request("GET", url, version="2.20")
        self.assertEqual(code, 404)
        code, _, body = await self.api.request("GET", url, version="2.21")
        self.assertEqual(code, 200)
        self.assertEqual(body["instanceActions"][0]["action"], "create")
