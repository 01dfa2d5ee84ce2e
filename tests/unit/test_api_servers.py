"""GET/POST/PUT/DELETE /servers over HTTP, in-process: bodies per microversion, filters, paging, errors, isolation."""

from __future__ import annotations

import datetime as dt

from twisted.trial import unittest

from nova_twisted.api.compute.microversion import APIVersion
from nova_twisted.compute import states
from nova_twisted.db import instances
from tests.identity_fixtures import async_test
from tests.servers_api_helpers import serve

BASE = {
    "id",
    "name",
    "status",
    "tenant_id",
    "user_id",
    "metadata",
    "hostId",
    "image",
    "flavor",
    "created",
    "updated",
    "addresses",
    "accessIPv4",
    "accessIPv6",
    "links",
    "OS-DCF:diskConfig",
    "progress",
    "OS-EXT-AZ:availability_zone",
    "config_drive",
    "key_name",
    "OS-SRV-USG:launched_at",
    "OS-SRV-USG:terminated_at",
    "OS-EXT-STS:task_state",
    "OS-EXT-STS:vm_state",
    "OS-EXT-STS:power_state",
    "os-extended-volumes:volumes_attached",
}
ADMIN_21 = {"OS-EXT-SRV-ATTR:host", "OS-EXT-SRV-ATTR:instance_name", "OS-EXT-SRV-ATTR:hypervisor_hostname"}
ADMIN_23 = ADMIN_21 | {
    "OS-EXT-SRV-ATTR:reservation_id",
    "OS-EXT-SRV-ATTR:launch_index",
    "OS-EXT-SRV-ATTR:hostname",
    "OS-EXT-SRV-ATTR:kernel_id",
    "OS-EXT-SRV-ATTR:ramdisk_id",
    "OS-EXT-SRV-ATTR:root_device_name",
    "OS-EXT-SRV-ATTR:user_data",
}

#: Fields of GET /servers/{id} for the owner (a member) at each microversion where they change.
OWNER_KEYS = {
    "2.1": BASE,
    "2.9": BASE | {"locked"},
    "2.16": BASE | {"locked"},
    "2.19": BASE | {"locked", "description"},
    "2.26": BASE | {"locked", "description", "tags"},
    "2.47": BASE | {"locked", "description", "tags"},
    "2.63": BASE | {"locked", "description", "tags", "trusted_image_certificates"},
    "2.71": BASE | {"locked", "description", "tags", "trusted_image_certificates", "server_groups"},
    "2.73": BASE | {"locked", "description", "tags", "trusted_image_certificates", "server_groups", "locked_reason"},
}


class ServerBodies(unittest.TestCase):
    """The fields of a server, per microversion and per caller, as Nova's view builder gives them."""

    def setUp(self):
        async def start():
            self.api = await serve(self)
            self.server = await self.api.insert_server(launched_at=dt.datetime(2026, 1, 2, 3, 4, 5, 678901))

        from twisted.internet import defer

        return defer.ensureDeferred(start())

    @async_test
    async def test_the_owner_sees_exactly_the_fields_of_each_microversion(self):
        for version, expected in OWNER_KEYS.items():
            code, headers, body = await self.api.request("GET", f"/v2.1/servers/{self.server['uuid']}", version=version)
            self.assertEqual(code, 200)
            self.assertEqual(set(body["server"]), expected, version)
            self.assertEqual(headers.getRawHeaders("openstack-api-version"), [f"compute {version}"])

    @async_test
    async def test_an_admin_also_sees_the_extended_attributes_and_host_status(self):
        for version, extra in (("2.1", ADMIN_21), ("2.3", ADMIN_23), ("2.16", ADMIN_23 | {"host_status"})):
            code, _, body = await self.api.request(
                "GET", f"/v2.1/servers/{self.server['uuid']}", user="admin", version=version
            )
            self.assertEqual(code, 200)
            expected = BASE | extra | ({"locked"} if APIVersion(version) >= "2.9" else set())
            self.assertEqual(set(body["server"]), expected, version)

    @async_test
    async def test_the_flavor_is_a_link_below_2_47_and_embedded_from_2_47(self):
        url = f"/v2.1/servers/{self.server['uuid']}"
        _, _, old = await self.api.request("GET", url, version="2.46")
        self.assertEqual(old["server"]["flavor"]["id"], "1")
        self.assertEqual(old["server"]["flavor"]["links"][0]["rel"], "bookmark")
        self.assertTrue(old["server"]["flavor"]["links"][0]["href"].endswith("/flavors/1"))
        _, _, new = await self.api.request("GET", url, version="2.47")
        self.assertEqual(
            new["server"]["flavor"],
            {
                "vcpus": 1,
                "ram": 512,
                "disk": 1,
                "ephemeral": 0,
                "swap": 0,
                "original_name": "m1.tiny",
                "extra_specs": {},
            },
        )

    @async_test
    async def test_values_are_shown_in_novas_formats(self):
        _, _, body = await self.api.request("GET", f"/v2.1/servers/{self.server['uuid']}", version="2.79")
        server = body["server"]
        self.assertEqual(server["status"], "ACTIVE")
        self.assertEqual(server["OS-SRV-USG:launched_at"], "2026-01-02T03:04:05.678901")
        self.assertRegex(server["created"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        import hashlib

        expected_host_id = hashlib.sha224((self.api.project("demo") + "compute-1").encode()).hexdigest()
        self.assertEqual(server["hostId"], expected_host_id)
        self.assertEqual(server["image"]["id"], self.api.image_id)
        self.assertEqual(server["addresses"], {})
        self.assertEqual(server["accessIPv4"], "")
        self.assertIs(server["locked"], False)
        self.assertEqual(server["tags"], [])
        self.assertIsNone(server["trusted_image_certificates"])
        self.assertEqual(
            server["links"][0], {"rel": "self", "href": f"{self.api.url}/v2.1/servers/{self.server['uuid']}"}
        )

    @async_test
    async def test_a_change_beside_the_row_shows_at_once_in_the_next_answer(self):
        uuid = self.server["uuid"]
        await self.api.database.run(instances.set_metadata, uuid, {"a": "1", "b": "2"})
        url = f"/v2.1/servers/{uuid}"
        _, _, before = await self.api.request("GET", url, version="2.79")
        self.assertEqual(before["server"]["metadata"], {"a": "1", "b": "2"})
        # Deleting one item leaves the instance row as it was: the answer must change all the same.
        await self.api.database.run(instances.delete_metadata_key, uuid, "a")
        await self.api.database.run(_tag, uuid, ["new"])
        _, _, after = await self.api.request("GET", url, version="2.79")
        self.assertEqual((after["server"]["metadata"], after["server"]["tags"]), ({"b": "2"}, ["new"]))

    @async_test
    async def test_an_error_server_shows_its_fault_and_details_only_to_admins_for_a_500(self):
        uuid = self.server["uuid"]
        await self.api.set_state(uuid, vm_state=states.ERROR)
        await self.api.database.run(instances.add_fault, uuid, 500, "No valid host was found.", "Traceback: x", None)
        _, _, mine = await self.api.request("GET", f"/v2.1/servers/{uuid}")
        self.assertEqual(mine["server"]["status"], "ERROR")
        self.assertEqual(set(mine["server"]["fault"]), {"code", "created", "message"})
        self.assertEqual(mine["server"]["fault"]["message"], "No valid host was found.")
        self.assertNotIn("progress", mine["server"])
        _, _, admin = await self.api.request("GET", f"/v2.1/servers/{uuid}", user="admin")
        self.assertEqual(admin["server"]["fault"]["details"], "Traceback: x")


class ListingServers(unittest.TestCase):
    """GET /servers and /servers/detail: filters, sorting, paging, all_tenants."""

    def setUp(self):
        from twisted.internet import defer

        async def start():
            self.api = await serve(self)

        return defer.ensureDeferred(start())

    async def _names(self, query="", user="demo", version="2.79", detail=False):
        path = "/v2.1/servers/detail" if detail else "/v2.1/servers"
        code, _, body = await self.api.request("GET", path + query, user=user, version=version)
        self.assertEqual(code, 200, body)
        return [s["name"] for s in body["servers"]], body

    @async_test
    async def test_the_short_list_has_id_name_and_links_only(self):
        await self.api.insert_server(display_name="one")
        _, body = await self._names()
        self.assertEqual(set(body["servers"][0]), {"id", "name", "links"})
        self.assertNotIn("servers_links", body)

    @async_test
    async def test_a_project_sees_only_its_servers_and_all_tenants_is_admin_only(self):
        await self.api.insert_server(display_name="mine")
        await self.api.insert_server(user="alt", display_name="theirs")
        self.assertEqual((await self._names())[0], ["mine"])
        self.assertEqual((await self._names(user="alt"))[0], ["theirs"])
        code, _, body = await self.api.request("GET", "/v2.1/servers/detail?all_tenants=1")
        self.assertEqual(code, 403)
        self.assertIn("os_compute_api:servers:detail:get_all_tenants", body["forbidden"]["message"])
        names, _ = await self._names("?all_tenants=True", user="admin", detail=True)
        self.assertEqual(sorted(names), ["mine", "theirs"])
        names, _ = await self._names(f"?all_tenants=1&tenant_id={self.api.project('alt')}", user="admin")
        self.assertEqual(names, ["theirs"])
        self.assertEqual((await self._names(user="admin"))[0], [])

    @async_test
    async def test_name_is_a_regular_expression_and_status_maps_to_states(self):
        await self.api.insert_server(display_name="web-1")
        await self.api.insert_server(display_name="web-2", vm_state=states.STOPPED)
        await self.api.insert_server(display_name="db-1", task_state=states.REBOOTING)
        self.assertEqual(sorted((await self._names("?name=^web"))[0]), ["web-1", "web-2"])
        self.assertEqual((await self._names("?status=SHUTOFF"))[0], ["web-2"])
        self.assertEqual((await self._names("?status=REBOOT"))[0], ["db-1"])
        self.assertEqual(sorted((await self._names("?status=ACTIVE"))[0]), ["db-1", "web-1"])
        code, _, body = await self.api.request("GET", "/v2.1/servers?status=NOPE", version="2.38")
        self.assertEqual((code, body["badRequest"]["message"]), (400, "Invalid status value"))
        self.assertEqual((await self._names("?status=NOPE", version="2.37"))[0], [])

    @async_test
    async def test_image_flavor_reservation_and_tag_filters(self):
        first = await self.api.insert_server(display_name="a")
        await self.api.insert_server(display_name="b", image_ref="other-image")
        await self.api.database.run(_tag, first["uuid"], ["red", "big"])
        self.assertEqual((await self._names(f"?image={self.api.image_id}"))[0], ["a"])
        self.assertEqual(sorted((await self._names("?flavor=1"))[0]), ["a", "b"])
        self.assertEqual((await self._names("?flavor=404"))[0], [])
        self.assertEqual((await self._names(f"?reservation_id={first['reservation_id']}"))[0], ["a"])
        self.assertEqual((await self._names("?tags=red,big"))[0], ["a"])
        self.assertEqual((await self._names("?tags=red,small"))[0], [])
        self.assertEqual((await self._names("?tags-any=small,big"))[0], ["a"])
        self.assertEqual((await self._names("?not-tags-any=red"))[0], ["b"])
        self.assertEqual((await self._names("?ip=10.0.0.1"))[0], [])

    @async_test
    async def test_admins_filter_by_host_and_see_deleted_servers(self):
        await self.api.insert_server(display_name="on-1")
        await self.api.insert_server(display_name="on-2", host="compute-2")
        gone = await self.api.insert_server(display_name="gone")
        await self.api.database.run(instances.destroy, gone["uuid"])
        names, _ = await self._names("?all_tenants=1&host=compute-2", user="admin")
        self.assertEqual(names, ["on-2"])
        names, body = await self._names("?all_tenants=1&deleted=true", user="admin", detail=True)
        self.assertEqual(names, ["gone"])
        self.assertEqual(body["servers"][0]["status"], "DELETED")
        # An ordinary user's host filter is dropped, as Nova drops filters it does not allow.
        self.assertEqual(len((await self._names("?host=compute-2"))[0]), 2)

    @async_test
    async def test_changes_since_includes_deleted_servers_and_changes_before_bounds_it(self):
        old = await self.api.insert_server(display_name="old")
        await self.api.database.run(_touch, old["uuid"], dt.datetime(2020, 1, 1))
        gone = await self.api.insert_server(display_name="gone")
        await self.api.database.run(instances.destroy, gone["uuid"])
        names, _ = await self._names("?changes-since=2021-01-01T00:00:00Z", detail=True)
        self.assertEqual(names, ["gone"])
        names, _ = await self._names("?changes-since=2019-01-01T00:00:00Z&changes-before=2020-06-01T00:00:00Z")
        self.assertEqual(names, ["old"])
        code, _, body = await self.api.request(
            "GET", "/v2.1/servers?changes-since=2021-01-01&changes-before=2020-01-01", version="2.66"
        )
        self.assertEqual(code, 400)
        self.assertIn("changes-since must be less than or equal to changes-before", body["badRequest"]["message"])
        code, _, body = await self.api.request("GET", "/v2.1/servers?changes-since=yesterday")
        self.assertEqual(code, 400)
        self.assertIn("Invalid input for query parameters changes-since", body["badRequest"]["message"])

    @async_test
    async def test_limit_and_marker_page_through_with_next_links(self):
        for index in range(5):
            await self.api.insert_server(display_name=f"s{index}")
        names, body = await self._names("?limit=2&sort_key=display_name&sort_dir=asc")
        self.assertEqual(names, ["s0", "s1"])
        next_href = body["servers_links"][0]["href"]
        self.assertEqual(body["servers_links"][0]["rel"], "next")
        self.assertIn("limit=2", next_href)
        marker = body["servers"][-1]["id"]
        self.assertIn(f"marker={marker}", next_href)
        names, body = await self._names(f"?limit=2&sort_key=display_name&sort_dir=asc&marker={marker}")
        self.assertEqual(names, ["s2", "s3"])
        names, body = await self._names(
            f"?limit=2&sort_key=display_name&sort_dir=asc&marker={body['servers'][-1]['id']}"
        )
        self.assertEqual((names, "servers_links" in body), (["s4"], False))
        code, _, body = await self.api.request("GET", "/v2.1/servers?marker=nope")
        self.assertEqual((code, body["badRequest"]["message"]), (400, "marker [nope] not found"))
        code, _, body = await self.api.request("GET", "/v2.1/servers?limit=-1")
        self.assertEqual(code, 400)

    @async_test
    async def test_sort_keys_novas_way(self):
        await self.api.insert_server(display_name="b")
        await self.api.insert_server(display_name="a")
        self.assertEqual((await self._names("?sort_key=display_name&sort_dir=asc"))[0], ["a", "b"])
        self.assertEqual((await self._names("?sort_key=display_name&sort_dir=desc"))[0], ["b", "a"])
        # Keys Nova ignores below 2.75 are ignored; from 2.75 they are refused, as unknown parameters are.
        self.assertEqual(len((await self._names("?sort_key=vcpus", version="2.74"))[0]), 2)
        code, _, _ = await self.api.request("GET", "/v2.1/servers?sort_key=vcpus", version="2.75")
        self.assertEqual(code, 400)
        code, _, body = await self.api.request("GET", "/v2.1/servers?sort_key=host")
        self.assertEqual((code, body["forbidden"]["message"]), (403, "Only administrators can sort servers by host"))
        code, _, body = await self.api.request("GET", "/v2.1/servers?sort_dir=up")
        self.assertEqual(body["badRequest"]["message"], "Unknown sort direction, must be 'desc' or 'asc'")
        code, _, body = await self.api.request("GET", "/v2.1/servers?bogus=1", version="2.75")
        self.assertEqual(code, 400)
        self.assertIn("Additional properties are not allowed", body["badRequest"]["message"])
        self.assertEqual(len((await self._names("?bogus=1", version="2.74"))[0]), 2)


def _touch(session, uuid, when):
    import sqlalchemy as sa

    from nova_twisted.db.models import Instance

    session.execute(sa.update(Instance).where(Instance.uuid == uuid).values(updated_at=when))


def _tag(session, uuid, tags):
    from nova_twisted.db import servers as db_servers

    db_servers.add_tags(session, uuid, tags)


class CreatingServers(unittest.TestCase):
    """POST /servers: Nova's schema per microversion, the 202 body, and its errors."""

    def setUp(self):
        from twisted.internet import defer

        async def start():
            self.api = await serve(self)

        return defer.ensureDeferred(start())

    async def _create(self, server, version="2.79", user="demo", **extra):
        body = {"server": server, **extra}
        return await self.api.request("POST", "/v2.1/servers", body, user=user, version=version)

    def _server(self, **values):
        return {"name": "vm", "imageRef": self.api.image_id, "flavorRef": "1", "networks": "none", **values}

    @async_test
    async def test_the_answer_is_202_with_the_small_body_a_password_and_a_location(self):
        server = self._server()
        del server["networks"]
        code, headers, body = await self._create(server, version="2.1")
        self.assertEqual(code, 202)
        server = body["server"]
        self.assertEqual(set(server), {"id", "links", "OS-DCF:diskConfig", "security_groups", "adminPass"})
        self.assertEqual(server["security_groups"], [{"name": "default"}])
        self.assertEqual(server["OS-DCF:diskConfig"], "MANUAL")
        self.assertGreaterEqual(len(server["adminPass"]), 8)
        self.assertEqual(headers.getRawHeaders("location"), [server["links"][0]["href"]])
        code, _, shown = await self.api.request("GET", f"/v2.1/servers/{server['id']}", version="2.19")
        self.assertEqual((shown["server"]["status"], shown["server"]["description"]), ("BUILD", "vm"))

    @async_test
    async def test_everything_a_boot_may_carry_is_kept(self):
        code, _, body = await self._create(
            self._server(
                name="full",
                flavorRef=f"{self.api.url}/flavors/2",
                metadata={"role": "web"},
                description="a server",
                tags=["a", "b"],
                accessIPv4="192.0.2.1",
                accessIPv6="2001:db8::1",
                config_drive=True,
                user_data="aGVsbG8=",
                security_groups=[{"name": "default"}],
                trusted_image_certificates=["cert-1"],
                adminPass="s3cret",
                **{"OS-DCF:diskConfig": "AUTO"},
            )
        )
        self.assertEqual(code, 202, body)
        self.assertEqual(body["server"]["adminPass"], "s3cret")
        self.assertEqual(body["server"]["OS-DCF:diskConfig"], "AUTO")
        _, _, shown = await self.api.request(
            "GET", f"/v2.1/servers/{body['server']['id']}", user="admin", version="2.79"
        )
        server = shown["server"]
        self.assertEqual(server["metadata"], {"role": "web"})
        self.assertEqual(server["tags"], ["a", "b"])
        self.assertEqual(server["description"], "a server")
        self.assertEqual((server["accessIPv4"], server["accessIPv6"]), ("192.0.2.1", "2001:db8::1"))
        self.assertEqual(server["config_drive"], "True")
        self.assertEqual(server["OS-EXT-SRV-ATTR:user_data"], "aGVsbG8=")
        self.assertEqual(server["trusted_image_certificates"], ["cert-1"])
        self.assertEqual(server["OS-DCF:diskConfig"], "AUTO")
        self.assertEqual(server["flavor"]["original_name"], "m1.small")

    @async_test
    async def test_several_servers_at_once_and_the_reservation_id(self):
        code, _, body = await self._create(self._server(min_count=2, max_count=3, return_reservation_id=True))
        self.assertEqual(code, 202)
        self.assertEqual(set(body), {"reservation_id"})
        _, _, listed = await self.api.request("GET", f"/v2.1/servers?reservation_id={body['reservation_id']}")
        self.assertEqual(sorted(s["name"] for s in listed["servers"]), ["vm-1", "vm-2", "vm-3"])

    @async_test
    async def test_networks_auto_and_none_boot_but_a_list_is_refused_plainly(self):
        for networks in ("auto", "none"):
            code, _, _ = await self._create(self._server(networks=networks))
            self.assertEqual(code, 202)
        code, _, body = await self._create(self._server(networks=[{"uuid": "3cb9bc59-5699-4588-a4b1-b87f96708bc6"}]))
        self.assertEqual(code, 400)
        self.assertIn("no network service", body["badRequest"]["message"])
        code, _, body = await self._create(self._server(networks=[{"uuid": "x"}]), version="2.36")
        self.assertEqual(code, 400)
        code, _, body = await self._create({"name": "vm", "imageRef": self.api.image_id, "flavorRef": "1"})
        self.assertEqual(code, 400)
        self.assertIn("'networks' is a required property", body["badRequest"]["message"])
        server = self._server()
        del server["networks"]
        code, _, _ = await self._create(server, version="2.36")
        self.assertEqual(code, 202)

    @async_test
    async def test_the_image_as_local_root_disk_is_accepted_and_volumes_are_refused(self):
        root = {"uuid": self.api.image_id, "source_type": "image", "destination_type": "local", "boot_index": 0}
        code, _, body = await self._create(self._server(block_device_mapping_v2=[root]))
        self.assertEqual(code, 202, body)
        server = self._server(block_device_mapping_v2=[root])
        del server["imageRef"]
        code, _, body = await self._create(server)
        self.assertEqual(code, 202, body)
        for bdm in (
            {**root, "destination_type": "volume", "volume_size": 1},
            {"source_type": "volume", "uuid": "3cb9bc59-5699-4588-a4b1-b87f96708bc6", "boot_index": 0},
            {"source_type": "blank", "destination_type": "local", "boot_index": -1, "volume_size": 1},
        ):
            code, _, body = await self._create(self._server(block_device_mapping_v2=[root, bdm]))
            self.assertEqual(code, 400, bdm)
            self.assertIn("no volume service", body["badRequest"]["message"])
        code, _, body = await self._create(self._server(block_device_mapping_v2=[{**root, "bogus": 1}]))
        self.assertEqual(code, 400)

    @async_test
    async def test_bad_bodies_get_novas_400s(self):
        cases = [
            ({"name": "", "imageRef": self.api.image_id, "flavorRef": "1", "networks": "none"}, "name"),
            (self._server(name=" padded"), "An invalid 'name' value was provided"),
            (self._server(imageRef="not-a-uuid"), "imageRef"),
            (self._server(flavorRef=""), "flavorRef"),
            (self._server(min_count=0), "min_count"),
            (self._server(user_data="***"), "user_data"),
            (self._server(accessIPv4="300.1.1.1"), "accessIPv4"),
            (self._server(metadata={"k": 1}), "metadata"),
            (self._server(bogus=1), "Additional properties are not allowed ('bogus' was unexpected)"),
            (self._server(tags=["a/b"]), "tags"),
            (self._server(imageRef=""), "Missing imageRef attribute"),
            (self._server(min_count=3, max_count=2), "min_count must be <= max_count"),
            (self._server(flavorRef="404"), "Flavor 404 could not be found."),
            (self._server(key_name="nokey"), "Invalid key_name provided."),
            (self._server(security_groups=[{"name": "web"}]), "Security group web not found."),
            (self._server(availability_zone="nowhere"), "availability zone"),
            (self._server(imageRef="3cb9bc59-5699-4588-a4b1-b87f96708bc6"), "could not be found"),
        ]
        for server, words in cases:
            code, _, body = await self._create(server)
            self.assertEqual(code, 400, (server, body))
            self.assertIn(words, body["badRequest"]["message"], server)
        code, _, body = await self.api.request("POST", "/v2.1/servers", raw=b"{nope", version="2.79")
        self.assertEqual((code, body["badRequest"]["message"]), (400, "Malformed request body"))
        code, _, body = await self._create(self._server(description="x"), version="2.18")
        self.assertEqual(code, 400)

    @async_test
    async def test_quota_exceeded_is_403_in_novas_words(self):
        await self.api.database.run(_set_quota, self.api.project("demo"), {"instances": 1})
        code, _, _ = await self._create(self._server())
        self.assertEqual(code, 202)
        code, _, body = await self._create(self._server())
        self.assertEqual(code, 403)
        self.assertEqual(
            body["forbidden"]["message"], "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances"
        )

    @async_test
    async def test_a_reader_may_not_create_and_forced_hosts_are_for_admins(self):
        code, _, body = await self._create(self._server(), user="reader")
        self.assertEqual(code, 403)
        code, _, body = await self._create(self._server(availability_zone="nova:compute-1"))
        self.assertEqual(code, 403)
        code, _, body = await self._create(self._server(host="compute-1"), version="2.74")
        self.assertEqual(code, 403)
        code, _, body = await self._create(self._server(host="compute-9"), user="admin", version="2.74")
        self.assertEqual((code, body["badRequest"]["message"]), (400, "Compute host compute-9 could not be found."))

    @async_test
    async def test_a_scheduler_hint_group_that_does_not_exist_is_400(self):
        code, _, body = await self._create(
            self._server(), **{"os:scheduler_hints": {"group": "3cb9bc59-5699-4588-a4b1-b87f96708bc6"}}
        )
        self.assertEqual(code, 400)
        self.assertIn("could not be found", body["badRequest"]["message"])


def _set_quota(session, project, limits):
    from nova_twisted.db import quotas

    quotas.set_limits(session, project, limits)


class UpdatingAndDeleting(unittest.TestCase):
    """PUT and DELETE /servers/{id}, and who may."""

    def setUp(self):
        from twisted.internet import defer

        async def start():
            self.api = await serve(self)
            self.server = await self.api.insert_server(display_name="before")

        return defer.ensureDeferred(start())

    @async_test
    async def test_rename_describe_and_set_access_ips(self):
        url = f"/v2.1/servers/{self.server['uuid']}"
        body = {"server": {"name": "after", "description": "new", "accessIPv4": "192.0.2.9"}}
        code, _, answer = await self.api.request("PUT", url, body, version="2.19")
        self.assertEqual(code, 200)
        server = answer["server"]
        self.assertEqual((server["name"], server["description"], server["accessIPv4"]), ("after", "new", "192.0.2.9"))
        # Below 2.75 the answer is the narrow view; from 2.75 it is the whole server, as GET shows it.
        self.assertNotIn("OS-EXT-STS:vm_state", server)
        _, _, full = await self.api.request("PUT", url, {"server": {"description": None}}, version="2.75")
        self.assertIn("OS-EXT-STS:vm_state", full["server"])
        self.assertIsNone(full["server"]["description"])
        code, _, answer = await self.api.request("PUT", url, {"server": {"description": "x"}}, version="2.18")
        self.assertEqual(code, 400)

    @async_test
    async def test_another_project_gets_404_and_a_reader_gets_403(self):
        url = f"/v2.1/servers/{self.server['uuid']}"
        for method, body in (("GET", None), ("PUT", {"server": {"name": "x"}}), ("DELETE", None)):
            code, _, answer = await self.api.request(method, url, body, user="alt")
            self.assertEqual(code, 404, method)
            self.assertEqual(answer["itemNotFound"]["message"], f"Instance {self.server['uuid']} could not be found.")
        code, _, _ = await self.api.request("GET", url, user="reader")
        self.assertEqual(code, 200)
        for method, body in (("PUT", {"server": {"name": "x"}}), ("DELETE", None)):
            code, _, _ = await self.api.request(method, url, body, user="reader")
            self.assertEqual(code, 403, method)

    @async_test
    async def test_delete_answers_204_and_the_server_is_gone(self):
        url = f"/v2.1/servers/{self.server['uuid']}"
        await self.api.set_state(self.server["uuid"], host=None)
        code, _, body = await self.api.request("DELETE", url)
        self.assertEqual((code, body), (204, None))
        code, _, _ = await self.api.request("GET", url)
        self.assertEqual(code, 404)

    @async_test
    async def test_a_locked_server_cannot_be_deleted_by_its_owner_but_can_by_an_admin(self):
        await self.api.set_state(self.server["uuid"], locked=True, locked_by="admin", host=None)
        url = f"/v2.1/servers/{self.server['uuid']}"
        code, _, body = await self.api.request("DELETE", url)
        self.assertEqual(
            (code, body["conflictingRequest"]["message"]), (409, f"Instance {self.server['uuid']} is locked")
        )
        code, _, _ = await self.api.request("DELETE", url, user="admin")
        self.assertEqual(code, 204)

    @async_test
    async def test_requests_without_a_token_are_401_and_unknown_versions_406(self):
        code, _, body = await self.api.request("GET", "/v2.1/servers", user=None)
        self.assertEqual(code, 401)
        code, _, body = await self.api.request("GET", "/v2.1/servers", version="2.99")
        self.assertEqual(code, 406)
