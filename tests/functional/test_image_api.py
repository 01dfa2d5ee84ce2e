"""The built-in Glance v2 API over real HTTP (a loopback port): what Glance clients rely on."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time

import treq
from twisted.internet import protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import deferLater
from twisted.trial import unittest
from twisted.web.client import FileBodyProducer
from twisted.web.iweb import UNKNOWN_LENGTH

from tests.image_helpers import ImageAPIServer, async_test, context_for, make_store, write_file

PATCH = "application/openstack-images-v2.1-json-patch"


class ImageAPITestBase(unittest.TestCase):
    streaming = True

    def setUp(self):
        self.store = make_store(self)
        self.server = ImageAPIServer(self.store, streaming=self.streaming)
        self.addCleanup(self.server.stop)
        self.tmp = tempfile.mkdtemp(prefix="nova-image-api-")

    async def call(self, method, path, token="tok-alice", body=None, headers=None, data=None):
        all_headers = {"Accept": "application/json"}
        if token:
            all_headers["X-Auth-Token"] = token
        if body is not None:
            data = json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        all_headers.update(headers or {})
        response = await treq.request(
            method, self.server.url + path, headers=all_headers, data=data, persistent=False, timeout=30
        )
        content = await treq.content(response)
        return response, content

    async def json_call(self, method, path, token="tok-alice", body=None, headers=None):
        response, content = await self.call(method, path, token, body, headers)
        return response.code, (json.loads(content) if content else None), response

    async def create(self, token="tok-alice", **body):
        body = {"name": "img", "disk_format": "qcow2", "container_format": "bare", **body}
        code, image, _ = await self.json_call("POST", "/v2/images", token, body)
        self.assertEqual(code, 201, image)
        return image

    async def upload(self, image_id, data: bytes, token="tok-alice", content_type="application/octet-stream"):
        response, content = await self.call(
            "PUT", f"/v2/images/{image_id}/file", token, headers={"Content-Type": content_type}, data=data
        )
        return response.code, content

    def header(self, response, name):
        values = response.headers.getRawHeaders(name.encode())
        return values[0].decode() if values else None


class VersionsAndSchemasTests(ImageAPITestBase):
    @async_test
    async def test_root_lists_the_v2_versions_without_a_token(self):
        code, body, _ = await self.json_call("GET", "/", token=None)
        self.assertEqual(code, 300)
        current = [v for v in body["versions"] if v["status"] == "CURRENT"]
        self.assertEqual(len(current), 1)
        self.assertTrue(current[0]["id"].startswith("v2."))
        self.assertEqual(current[0]["links"][0]["href"], f"{self.server.url}/v2/")
        code, body, _ = await self.json_call("GET", "/versions", token=None)
        self.assertEqual(code, 200)
        self.assertIn("v2.0", [v["id"] for v in body["versions"]])

    @async_test
    async def test_schemas_describe_images_and_members(self):
        code, image_schema, _ = await self.json_call("GET", "/v2/schemas/image")
        self.assertEqual(code, 200)
        self.assertEqual(image_schema["name"], "image")
        self.assertIn("qcow2", image_schema["properties"]["disk_format"]["enum"])
        self.assertEqual(image_schema["additionalProperties"], {"type": "string"})
        code, images_schema, _ = await self.json_call("GET", "/v2/schemas/images")
        self.assertEqual(images_schema["properties"]["images"]["items"]["name"], "image")
        for name in ("member", "members"):
            code, _, _ = await self.json_call("GET", f"/v2/schemas/{name}")
            self.assertEqual(code, 200)
        code, _, _ = await self.json_call("GET", "/v2/schemas/nothing")
        self.assertEqual(code, 404)

    @async_test
    async def test_requests_without_a_valid_token_get_glances_401(self):
        code, body, _ = await self.json_call("GET", "/v2/images", token=None)
        self.assertEqual(code, 401)
        self.assertEqual(body["code"], "401 Unauthorized")
        self.assertEqual(body["title"], "Unauthorized")
        code, _, _ = await self.json_call("GET", "/v2/images", token="forged")
        self.assertEqual(code, 401)

    @async_test
    async def test_errors_are_html_for_clients_that_do_not_ask_for_json(self):
        response, content = await self.call("GET", "/v2/images/nope", headers={"Accept": "*/*"})
        self.assertEqual(response.code, 404)
        self.assertIn(b"<h1>404 Not Found</h1>", content)
        self.assertTrue(self.header(response, "content-type").startswith("text/html"))


class ImageCRUDTests(ImageAPITestBase):
    @async_test
    async def test_create_answers_201_with_a_location_and_the_glance_image(self):
        code, image, response = await self.json_call(
            "POST",
            "/v2/images",
            body={"name": "cirros", "disk_format": "qcow2", "container_format": "bare", "tags": ["t"], "os_x": "1"},
        )
        self.assertEqual(code, 201)
        self.assertEqual(self.header(response, "location"), f"{self.server.url}/v2/images/{image['id']}")
        self.assertEqual(image["self"], f"/v2/images/{image['id']}")
        self.assertEqual(image["file"], f"/v2/images/{image['id']}/file")
        self.assertEqual(image["schema"], "/v2/schemas/image")
        self.assertEqual(
            (image["status"], image["visibility"], image["tags"], image["os_x"]), ("queued", "shared", ["t"], "1")
        )
        self.assertRegex(image["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    @async_test
    async def test_create_refuses_read_only_and_reserved_attributes_and_non_string_properties(self):
        code, body, _ = await self.json_call("POST", "/v2/images", body={"status": "active"})
        self.assertEqual((code, body["message"]), (403, "Attribute 'status' is read-only."))
        code, _, _ = await self.json_call("POST", "/v2/images", body={"location": "file:///etc/passwd"})
        self.assertEqual(code, 403)
        code, _, _ = await self.json_call("POST", "/v2/images", body={"hw_numa_nodes": 2})
        self.assertEqual(code, 400)
        code, _, _ = await self.json_call("POST", "/v2/images", body=["not", "an", "object"])
        self.assertEqual(code, 400)

    @async_test
    async def test_a_duplicate_id_is_a_conflict(self):
        image = await self.create(id="2b2b3f52-3a44-4c6e-9b59-1c0f6f2a0001")
        code, _, _ = await self.json_call("POST", "/v2/images", body={"id": image["id"]})
        self.assertEqual(code, 409)

    @async_test
    async def test_list_pages_with_next_and_first_links_as_glance_does(self):
        for name in "abcde":
            await self.create(name=name)
        seen = []
        path = "/v2/images?limit=2&sort_key=name&sort_dir=asc"
        pages = 0
        while path:
            code, body, _ = await self.json_call("GET", path)
            self.assertEqual(code, 200)
            self.assertEqual(body["schema"], "/v2/schemas/images")
            self.assertEqual(body["first"], "/v2/images?limit=2&sort_key=name&sort_dir=asc")
            seen += [image["name"] for image in body["images"]]
            path = body.get("next")
            pages += 1
        self.assertEqual(seen, ["a", "b", "c", "d", "e"])
        self.assertEqual(pages, 3)

    @async_test
    async def test_list_sorts_with_the_sort_parameter_and_rejects_bad_sorts(self):
        for name, size in (("x", 3), ("y", 1), ("z", 2)):
            image = await self.create(name=name)
            await self.upload(image["id"], b"." * size)
        code, body, _ = await self.json_call("GET", "/v2/images?sort=size:asc,name:desc")
        self.assertEqual([i["name"] for i in body["images"]], ["y", "z", "x"])
        for bad in ("sort=size:sideways", "sort_key=owner", "sort=name:asc&sort_key=name"):
            code, _, _ = await self.json_call("GET", f"/v2/images?{bad}")
            self.assertEqual(code, 400, bad)
        code, _, _ = await self.json_call("GET", "/v2/images?marker=3f1e0000-0000-4000-8000-000000000000")
        self.assertEqual(code, 400)

    @async_test
    async def test_list_filters_through_the_query_string(self):
        await self.create(name="one", tags=["a", "b"], os_distro="debian")
        await self.create(name="two", tags=["a"], disk_format="raw")
        code, body, _ = await self.json_call("GET", "/v2/images?tag=a&tag=b")
        self.assertEqual([i["name"] for i in body["images"]], ["one"])
        code, body, _ = await self.json_call("GET", "/v2/images?os_distro=debian")
        self.assertEqual([i["name"] for i in body["images"]], ["one"])
        code, body, _ = await self.json_call("GET", "/v2/images?disk_format=raw&status=queued")
        self.assertEqual([i["name"] for i in body["images"]], ["two"])
        code, body, _ = await self.json_call("GET", "/v2/images?visibility=sideways")
        self.assertEqual(code, 400)

    @async_test
    async def test_patch_adds_replaces_and_removes_as_glance_json_patch(self):
        image = await self.create(os_distro="debian", tags=["old"])
        ops = [
            {"op": "replace", "path": "/name", "value": "renamed"},
            {"op": "add", "path": "/hw_disk_bus", "value": "scsi"},
            {"op": "replace", "path": "/os_distro", "value": "ubuntu"},
            {"op": "add", "path": "/min_ram", "value": 256},
            {"op": "replace", "path": "/tags", "value": ["new", "newer"]},
        ]
        code, body, _ = await self.json_call(
            "PATCH", f"/v2/images/{image['id']}", body=ops, headers={"Content-Type": PATCH}
        )
        self.assertEqual(code, 200, body)
        self.assertEqual(
            (body["name"], body["hw_disk_bus"], body["os_distro"], body["min_ram"], body["tags"]),
            ("renamed", "scsi", "ubuntu", 256, ["new", "newer"]),
        )
        code, body, _ = await self.json_call(
            "PATCH",
            f"/v2/images/{image['id']}",
            body=[{"op": "remove", "path": "/os_distro"}],
            headers={"Content-Type": PATCH},
        )
        self.assertNotIn("os_distro", body)

    @async_test
    async def test_patch_errors_match_glance(self):
        image = await self.create()
        path = f"/v2/images/{image['id']}"
        cases = [
            ([{"op": "replace", "path": "/absent", "value": "x"}], 409),
            ([{"op": "remove", "path": "/absent"}], 409),
            ([{"op": "remove", "path": "/name"}], 403),
            ([{"op": "replace", "path": "/status", "value": "active"}], 403),
            ([{"op": "replace", "path": "/visibility", "value": "public"}], 403),
            ([{"op": "move", "path": "/name", "value": "x"}], 400),
        ]
        for ops, expected in cases:
            code, _, _ = await self.json_call("PATCH", path, body=ops, headers={"Content-Type": PATCH})
            self.assertEqual(code, expected, ops)
        code, _, _ = await self.json_call("PATCH", path, body=[], headers={"Content-Type": "application/json"})
        self.assertEqual(code, 415)

    @async_test
    async def test_delete_answers_204_and_removes_the_file_but_403_for_protected(self):
        image = await self.create()
        await self.upload(image["id"], b"data")
        path = self.store.path_of(image["id"])
        self.assertTrue(os.path.exists(path))
        code, _, _ = await self.json_call("DELETE", f"/v2/images/{image['id']}")
        self.assertEqual(code, 204)
        self.assertFalse(os.path.exists(path))
        code, _, _ = await self.json_call("GET", f"/v2/images/{image['id']}")
        self.assertEqual(code, 404)
        protected = await self.create(protected=True)
        code, body, _ = await self.json_call("DELETE", f"/v2/images/{protected['id']}")
        self.assertEqual(code, 403)
        self.assertIn("protected", body["message"])


class ImageDataTests(ImageAPITestBase):
    @async_test
    async def test_upload_then_download_with_content_md5_and_ranges(self):
        image = await self.create()
        data = os.urandom(1_500_000)
        code, _ = await self.upload(image["id"], data)
        self.assertEqual(code, 204)
        code, shown, _ = await self.json_call("GET", f"/v2/images/{image['id']}")
        self.assertEqual((shown["status"], shown["size"]), ("active", len(data)))
        self.assertEqual(shown["checksum"], hashlib.md5(data).hexdigest())
        self.assertEqual(shown["os_hash_value"], hashlib.sha512(data).hexdigest())

        response, content = await self.call("GET", f"/v2/images/{image['id']}/file")
        self.assertEqual((response.code, content), (200, data))
        self.assertEqual(self.header(response, "content-md5"), shown["checksum"])
        self.assertEqual(self.header(response, "content-type"), "application/octet-stream")

        response, content = await self.call("GET", f"/v2/images/{image['id']}/file", headers={"Range": "bytes=10-19"})
        self.assertEqual((response.code, content), (206, data[10:20]))
        self.assertEqual(self.header(response, "content-range"), f"bytes 10-19/{len(data)}")
        response, content = await self.call("GET", f"/v2/images/{image['id']}/file", headers={"Range": "bytes=-7"})
        self.assertEqual((response.code, content), (206, data[-7:]))
        response, content = await self.call(
            "GET", f"/v2/images/{image['id']}/file", headers={"Range": "bytes=1400000-"}
        )
        self.assertEqual((response.code, content), (206, data[1_400_000:]))
        response, _ = await self.call("GET", f"/v2/images/{image['id']}/file", headers={"Range": "bytes=9999999-"})
        self.assertEqual(response.code, 416)
        self.assertEqual(self.header(response, "content-range"), f"bytes */{len(data)}")

    @async_test
    async def test_download_of_a_queued_image_is_204(self):
        image = await self.create()
        response, content = await self.call("GET", f"/v2/images/{image['id']}/file")
        self.assertEqual((response.code, content), (204, b""))

    @async_test
    async def test_upload_is_refused_twice_for_other_types_and_without_formats(self):
        image = await self.create()
        self.assertEqual((await self.upload(image["id"], b"x"))[0], 204)
        self.assertEqual((await self.upload(image["id"], b"x"))[0], 409)
        other = await self.create()
        self.assertEqual((await self.upload(other["id"], b"x", content_type="text/plain"))[0], 415)
        bare = await self.create(disk_format=None, container_format=None)
        self.assertEqual((await self.upload(bare["id"], b"x"))[0], 400)
        code, shown, _ = await self.json_call("GET", f"/v2/images/{other['id']}")
        self.assertEqual(shown["status"], "queued")

    @async_test
    async def test_an_upload_without_a_valid_token_is_refused_and_leaves_the_image_queued(self):
        image = await self.create()
        self.assertEqual((await self.upload(image["id"], b"x" * 200_000, token="forged"))[0], 401)
        self.assertEqual((await self.upload(image["id"], b"x" * 200_000, token="tok-bob"))[0], 404)
        code, shown, _ = await self.json_call("GET", f"/v2/images/{image['id']}")
        self.assertEqual(shown["status"], "queued")

    @async_test
    async def test_a_client_that_disconnects_mid_upload_leaves_the_image_killed(self):
        image = await self.create()
        head = (
            f"PUT /v2/images/{image['id']}/file HTTP/1.1\r\nHost: x\r\nX-Auth-Token: tok-alice\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: 5000000\r\n\r\n"
        ).encode()
        client = await connectProtocol(
            TCP4ClientEndpoint(reactor, "127.0.0.1", self.server.port.getHost().port), protocol.Protocol()
        )
        client.transport.write(head + b"y" * 1_000_000)
        await deferLater(reactor, 0.3, lambda: None)
        client.transport.abortConnection()
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline:
            status = (await self.store.show(context_for("tok-alice"), image["id"]))["status"]
            if status == "killed":
                break
            await deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(status, "killed")
        self.assertFalse(os.path.exists(self.store.path_of(image["id"]) + ".part"))

    @async_test
    async def test_an_upload_past_the_size_cap_is_413_and_kills_the_image(self):
        self.store.image_size_cap = 1000
        image = await self.create()
        self.assertEqual((await self.upload(image["id"], b"x" * 5000))[0], 413)
        chunked = await self.create()
        # Without a length up front, the cap is found mid-stream.
        path = write_file(os.path.join(self.tmp, "big"), 5000)
        with open(path, "rb") as handle:
            body = FileBodyProducer(handle)
            body.length = UNKNOWN_LENGTH
            response = await treq.put(
                f"{self.server.url}/v2/images/{chunked['id']}/file",
                data=body,
                headers={"X-Auth-Token": "tok-alice", "Content-Type": "application/octet-stream"},
                persistent=False,
            )
            await treq.content(response)
        self.assertEqual(response.code, 413)
        shown = await self.store.show(context_for("tok-alice"), chunked["id"])
        self.assertEqual(shown["status"], "killed")


class PlainSiteUploadTests(ImageAPITestBase):
    """Under a plain twisted.web Site (no streaming request factory) uploads still work."""

    streaming = False

    @async_test
    async def test_upload_and_download_work_without_the_streaming_request(self):
        image = await self.create()
        data = os.urandom(700_000)
        self.assertEqual((await self.upload(image["id"], data))[0], 204)
        response, content = await self.call("GET", f"/v2/images/{image['id']}/file")
        self.assertEqual(content, data)
        code, shown, _ = await self.json_call("GET", f"/v2/images/{image['id']}")
        self.assertEqual(shown["checksum"], hashlib.md5(data).hexdigest())


class TagsAndMembersTests(ImageAPITestBase):
    @async_test
    async def test_tags_are_added_idempotently_and_removed(self):
        image = await self.create()
        for _ in range(2):
            code, _ = await self.call("PUT", f"/v2/images/{image['id']}/tags/gold")
            self.assertEqual(code.code, 204)
        code, shown, _ = await self.json_call("GET", f"/v2/images/{image['id']}")
        self.assertEqual(shown["tags"], ["gold"])
        response, _ = await self.call("DELETE", f"/v2/images/{image['id']}/tags/gold")
        self.assertEqual(response.code, 204)
        response, _ = await self.call("DELETE", f"/v2/images/{image['id']}/tags/gold")
        self.assertEqual(response.code, 404)
        response, _ = await self.call("PUT", f"/v2/images/{image['id']}/tags/x", token="tok-bob")
        self.assertEqual(response.code, 404)

    @async_test
    async def test_sharing_with_a_member_who_accepts_then_is_removed(self):
        image = await self.create()
        base = f"/v2/images/{image['id']}"
        self.assertEqual((await self.json_call("GET", base, token="tok-bob"))[0], 404)
        code, member, _ = await self.json_call("POST", f"{base}/members", body={"member": "proj-b"})
        self.assertEqual((code, member["status"], member["member_id"]), (200, "pending", "proj-b"))
        self.assertEqual(member["schema"], "/v2/schemas/member")
        code, _, _ = await self.json_call("POST", f"{base}/members", body={"member": "proj-b"})
        self.assertEqual(code, 409)
        # A pending member can see the image, but it is not in its default list.
        self.assertEqual((await self.json_call("GET", base, token="tok-bob"))[0], 200)
        _, listed, _ = await self.json_call("GET", "/v2/images", token="tok-bob")
        self.assertEqual(listed["images"], [])
        _, listed, _ = await self.json_call(
            "GET", "/v2/images?member_status=pending&visibility=shared", token="tok-bob"
        )
        self.assertEqual([i["id"] for i in listed["images"]], [image["id"]])
        # Only the member decides its status; only the owner shares.
        code, _, _ = await self.json_call("PUT", f"{base}/members/proj-b", body={"status": "accepted"})
        self.assertEqual(code, 403)
        code, _, _ = await self.json_call("POST", f"{base}/members", token="tok-bob", body={"member": "proj-c"})
        self.assertEqual(code, 403)
        code, member, _ = await self.json_call(
            "PUT", f"{base}/members/proj-b", token="tok-bob", body={"status": "accepted"}
        )
        self.assertEqual((code, member["status"]), (200, "accepted"))
        _, listed, _ = await self.json_call("GET", "/v2/images", token="tok-bob")
        self.assertEqual([i["id"] for i in listed["images"]], [image["id"]])
        _, members, _ = await self.json_call("GET", f"{base}/members")
        self.assertEqual([m["member_id"] for m in members["members"]], ["proj-b"])
        self.assertEqual(members["schema"], "/v2/schemas/members")
        code, _, _ = await self.json_call("DELETE", f"{base}/members/proj-b")
        self.assertEqual(code, 204)
        self.assertEqual((await self.json_call("GET", base, token="tok-bob"))[0], 404)

    @async_test
    async def test_only_shared_images_have_members(self):
        image = await self.create(visibility="private")
        code, body, _ = await self.json_call("POST", f"/v2/images/{image['id']}/members", body={"member": "proj-b"})
        self.assertEqual(code, 403)
        self.assertEqual(body["message"], "Only shared images have members.")
