"""The real ``openstack`` CLI drives servers against nova-all and against separate daemons (RabbitMQ + MariaDB).

Every action of the servers API, consoles, events and properties as the
demo user; what an admin sees and may do in other projects; and the wall
between two projects (another project's server does not exist for you).
States are awaited over plain HTTP (fast) between the CLI commands.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import pytest


def _get(cloud, path: str, user: str = "admin"):
    request = urllib.request.Request(
        cloud.compute_url + path,
        headers={"X-Auth-Token": _token(cloud, user), "OpenStack-API-Version": "compute 2.79"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


_TOKENS: dict = {}


def _token(cloud, user: str) -> str:
    key = (id(cloud), user)
    if key not in _TOKENS:
        _TOKENS[key] = cloud.token(user)
    return _TOKENS[key]


def wait_status(cloud, server_id: str, status: str, timeout: float = 60.0) -> dict:
    """Poll until the server shows ``status`` with no task in progress; return it."""
    deadline = time.monotonic() + timeout
    server = None
    while time.monotonic() < deadline:
        server = _get(cloud, f"/servers/{server_id}")["server"]
        if server["status"] == status and server["OS-EXT-STS:task_state"] is None:
            return server
        time.sleep(0.2)
    raise AssertionError(f"server {server_id} never became {status}: {server and server['status']}")


def wait_image(cloud, image_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    image = None
    while time.monotonic() < deadline:
        image = cloud.openstack("image", "show", image_id)
        if image["status"] == "active":
            return image
        time.sleep(0.5)
    raise AssertionError(f"image {image_id} never became active: {image and image['status']}")


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_a_server_goes_through_every_action_from_the_cli(cloud):
    name = _name("cli")
    created = cloud.openstack(
        "server", "create", "--flavor", "m1.tiny", "--image", cloud.image_name, "--wait", name, "--property", "x=1"
    )
    server_id = created["id"]
    assert created["status"] == "ACTIVE"
    listed = cloud.openstack("server", "list", "--name", name)
    assert [(s["ID"], s["Status"], s["Flavor"]) for s in listed] == [(server_id, "ACTIVE", "m1.tiny")]
    shown = cloud.openstack("server", "show", name)
    assert shown["id"] == server_id and shown["properties"] == {"x": "1"}

    for command, status in (
        ("stop", "SHUTOFF"),
        ("start", "ACTIVE"),
        ("pause", "PAUSED"),
        ("unpause", "ACTIVE"),
        ("suspend", "SUSPENDED"),
        ("resume", "ACTIVE"),
    ):
        cloud.openstack("server", command, server_id, json_output=False)
        wait_status(cloud, server_id, status)
    for hard in ((), ("--hard",)):
        cloud.openstack("server", "reboot", *hard, server_id, json_output=False)
        wait_status(cloud, server_id, "ACTIVE")

    cloud.openstack("server", "lock", "--reason", "maintenance", server_id, json_output=False)
    shown = cloud.openstack("server", "show", server_id)
    assert shown["locked"] is True and shown["locked_reason"] == "maintenance"
    failure = cloud.openstack_fails("server", "pause", server_id)
    assert "is locked" in failure.stderr
    cloud.openstack("server", "unlock", server_id, json_output=False)

    cloud.openstack("server", "rebuild", "--image", cloud.image_name, server_id)
    wait_status(cloud, server_id, "ACTIVE")
    cloud.openstack("server", "resize", "--flavor", "m1.small", server_id, json_output=False)
    wait_status(cloud, server_id, "VERIFY_RESIZE")
    cloud.openstack("server", "resize", "confirm", server_id, json_output=False)
    assert wait_status(cloud, server_id, "ACTIVE")["flavor"]["original_name"] == "m1.small"
    cloud.openstack("server", "resize", "--flavor", "m1.medium", server_id, json_output=False)
    wait_status(cloud, server_id, "VERIFY_RESIZE")
    cloud.openstack("server", "resize", "revert", server_id, json_output=False)
    assert wait_status(cloud, server_id, "ACTIVE")["flavor"]["original_name"] == "m1.small"

    image = cloud.openstack("server", "image", "create", "--name", f"{name}-snap", server_id)
    snapshot = wait_image(cloud, image["id"])
    assert snapshot["name"] == f"{name}-snap"
    wait_status(cloud, server_id, "ACTIVE")

    log = cloud.openstack("console", "log", "show", server_id, json_output=False)
    assert "booted from image" in log
    novnc = cloud.openstack("console", "url", "show", "--novnc", server_id)
    assert novnc["type"] == "novnc" and "token%3D" in novnc["url"]
    spice = cloud.openstack("console", "url", "show", "--spice", server_id)
    assert spice["type"] == "spice-html5" and "token%3D" in spice["url"]

    events = cloud.openstack("server", "event", "list", server_id)
    actions = [e["Action"] for e in events]
    for action in ("create", "stop", "start", "pause", "reboot", "lock", "rebuild", "resize", "createImage"):
        assert action in actions, actions
    create = next(e for e in events if e["Action"] == "create")
    detail = cloud.openstack("server", "event", "show", server_id, create["Request ID"])
    assert detail["action"] == "create" and detail["events"][0]["result"] == "Success"

    cloud.openstack("server", "set", "--property", "a=b", "--property", "c=d", server_id, json_output=False)
    assert cloud.openstack("server", "show", server_id)["properties"] == {"x": "1", "a": "b", "c": "d"}
    cloud.openstack("server", "unset", "--property", "a", "--property", "x", server_id, json_output=False)
    assert cloud.openstack("server", "show", server_id)["properties"] == {"c": "d"}

    cloud.openstack("server", "delete", "--wait", server_id, json_output=False)
    assert cloud.openstack("server", "list", "--name", name) == []
    cloud.openstack("image", "delete", image["id"], json_output=False)


def test_an_admin_sees_every_project_and_the_host_fields_and_may_act_there(cloud):
    name = _name("adm")
    server_id = cloud.openstack("server", "create", "--flavor", "m1.tiny", "--image", cloud.image_name, "--wait", name)[
        "id"
    ]
    everyone = cloud.openstack("server", "list", "--all-projects", "--name", name, cloud="admin")
    assert [s["ID"] for s in everyone] == [server_id]
    assert cloud.openstack("server", "list", "--name", name, cloud="admin") == []
    shown = cloud.openstack("server", "show", server_id, cloud="admin")
    assert shown["OS-EXT-SRV-ATTR:host"] and shown["host_status"] == "UP"
    assert shown["OS-EXT-SRV-ATTR:instance_name"].startswith("instance-")
    mine = cloud.openstack("server", "show", server_id)
    assert mine.get("OS-EXT-SRV-ATTR:host") is None and mine.get("host_status") is None
    by_host = cloud.openstack(
        "server", "list", "--all-projects", "--host", shown["OS-EXT-SRV-ATTR:host"], cloud="admin"
    )
    assert server_id in [s["ID"] for s in by_host]

    cloud.openstack("server", "lock", server_id, cloud="admin", json_output=False)
    failure = cloud.openstack_fails("server", "unlock", server_id)
    assert "403" in failure.stderr or "Policy" in failure.stderr
    cloud.openstack("server", "stop", server_id, cloud="admin", json_output=False)
    wait_status(cloud, server_id, "SHUTOFF")
    cloud.openstack("server", "unlock", server_id, cloud="admin", json_output=False)
    cloud.openstack("server", "delete", "--wait", server_id, json_output=False)


def test_another_project_cannot_see_or_touch_a_server(cloud):
    name = _name("iso")
    server_id = cloud.openstack("server", "create", "--flavor", "m1.tiny", "--image", cloud.image_name, "--wait", name)[
        "id"
    ]
    assert name not in [s["Name"] for s in cloud.openstack("server", "list", cloud="alt")]
    for command in (("show",), ("stop",), ("delete",), ("set", "--property", "a=b")):
        failure = cloud.openstack_fails("server", *command, server_id, cloud="alt")
        assert "No Server found" in failure.stderr or "No server with a name or ID" in failure.stderr, failure.stderr
    failure = cloud.openstack_fails("console", "log", "show", server_id, cloud="alt")
    assert "No Server found" in failure.stderr or "No server with a name or ID" in failure.stderr
    failure = cloud.openstack_fails("server", "event", "list", server_id, cloud="alt")
    assert failure.returncode != 0
    # Raw HTTP: another project's server is 404, never 403.
    with pytest.raises(urllib.error.HTTPError) as info:
        _get(cloud, f"/servers/{server_id}", user="alt")
    assert info.value.code == 404
    assert wait_status(cloud, server_id, "ACTIVE")["status"] == "ACTIVE"
    cloud.openstack("server", "delete", "--wait", server_id, json_output=False)
