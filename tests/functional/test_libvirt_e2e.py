"""Real virtual machines through the whole stack: the openstack CLI -> nova-all -> libvirt/QEMU.

The demo image is the tiny guest built from Debian's packages (as `make run`
with ``[compute] driver = libvirt`` builds it). Every lifecycle step's status
in the API is compared with what ``virsh domstate`` says, and nothing (domain,
instance directory, overlay) may be left behind. A second cloud checks the
shared base image cache: three servers of one image share one file in
``_base/``, which the cache manager removes once the last server is gone and
the configured age has passed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

from tests.clients.cloud import RunningCloud

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BANNER = "nova-twisted test guest booted"


def libvirt_conf(age: int, interval: int) -> dict:
    """The settings `make run CONFIG=...` would use for real guests (QEMU/TCG here)."""
    return {
        ("compute", "driver"): "libvirt",
        ("libvirt", "virt_type"): "qemu",
        ("libvirt", "soft_reboot_timeout"): "20",
        ("libvirt", "remove_unused_base_images_age"): str(age),
        ("libvirt", "image_cache_manager_interval"): str(interval),
        ("vnc", "enabled"): "true",
    }


#: What virsh says for each API status (suspend is a managed save: "shut off", reason "saved").
VIRSH_FOR_STATUS = {"ACTIVE": "running", "SHUTOFF": "shut off", "PAUSED": "paused", "SUSPENDED": "shut off"}


def _libvirt_dir() -> str:
    """A scratch directory libvirt's qemu user can reach (pytest's private tmp dirs are 0700)."""
    path = os.path.join(ROOT, "state", f"e2e-{uuid.uuid4().hex[:8]}")
    os.makedirs(path)
    return path


@pytest.fixture(scope="module")
def libvirt_cloud():
    tmp = _libvirt_dir()
    cloud = RunningCloud(tmp, "all", extra_conf=libvirt_conf(age=3600, interval=3600)).start()
    yield cloud
    cloud.stop()
    shutil.rmtree(tmp, ignore_errors=True)


def virsh(*args) -> str:
    return subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True).stdout.strip()


def domain_of(cloud, server: dict) -> str:
    detail = cloud.openstack("server", "show", server["id"], cloud="admin")
    return detail["OS-EXT-SRV-ATTR:instance_name"]


def wait_status(cloud, server_id: str, status: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    shown = None
    while time.monotonic() < deadline:
        shown = cloud.openstack("server", "show", server_id)
        if shown["status"] == status and not shown.get("OS-EXT-STS:task_state"):
            return shown
        if shown["status"] == "ERROR":
            raise AssertionError(f"server went to ERROR: {shown.get('fault')}")
        time.sleep(1)
    raise AssertionError(f"server {server_id} never reached {status}: {shown}")


def assert_matches_virsh(cloud, server: dict, status: str) -> None:
    shown = wait_status(cloud, server["id"], status)
    domain = domain_of(cloud, shown)
    assert virsh("domstate", domain) == VIRSH_FOR_STATUS[status], f"API says {status}"
    if status == "SUSPENDED":
        assert "saved" in virsh("domstate", domain, "--reason")


def console_has_banner(cloud, server_id: str, count: int = 1, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    log = ""
    while time.monotonic() < deadline:
        log = cloud.openstack("console", "log", "show", server_id, json_output=False)
        if log.count(BANNER) >= count:
            return log
        time.sleep(1)
    raise AssertionError(f"the guest's banner did not appear {count} time(s); console log:\n{log[-2000:]}")


def instances_dir(cloud) -> str:
    return os.path.join(cloud.tmpdir, "state-control", "instances")


def test_a_tiny_guest_goes_through_its_whole_life_and_leaves_nothing_behind(libvirt_cloud):
    cloud = libvirt_cloud
    server = cloud.openstack(
        "server", "create", "--flavor", "m1.tiny", "--image", "demo-image", "e2e-vm1", "--wait", timeout=300
    )
    assert server["status"] == "ACTIVE"
    assert_matches_virsh(cloud, server, "ACTIVE")
    console_has_banner(cloud, server["id"])

    cloud.openstack("server", "reboot", "--soft", "--wait", server["id"], json_output=False, timeout=300)
    assert_matches_virsh(cloud, server, "ACTIVE")
    console_has_banner(cloud, server["id"], count=2)

    cloud.openstack("server", "stop", server["id"], json_output=False)
    assert_matches_virsh(cloud, server, "SHUTOFF")
    cloud.openstack("server", "start", server["id"], json_output=False)
    assert_matches_virsh(cloud, server, "ACTIVE")

    cloud.openstack("server", "pause", server["id"], json_output=False)
    assert_matches_virsh(cloud, server, "PAUSED")
    cloud.openstack("server", "unpause", server["id"], json_output=False)
    assert_matches_virsh(cloud, server, "ACTIVE")

    cloud.openstack("server", "suspend", server["id"], json_output=False)
    assert_matches_virsh(cloud, server, "SUSPENDED")
    cloud.openstack("server", "resume", server["id"], json_output=False)
    assert_matches_virsh(cloud, server, "ACTIVE")

    image = cloud.openstack("server", "image", "create", "--name", "e2e-snapshot", "--wait", server["id"], timeout=600)
    snapshot = cloud.openstack("image", "show", image["id"])
    assert snapshot["status"] == "active" and snapshot["disk_format"] == "qcow2"
    second = cloud.openstack(
        "server", "create", "--flavor", "m1.tiny", "--image", snapshot["id"], "e2e-vm2", "--wait", timeout=300
    )
    assert_matches_virsh(cloud, second, "ACTIVE")
    console_has_banner(cloud, second["id"])

    domains = [domain_of(cloud, server), domain_of(cloud, second)]
    cloud.openstack("server", "delete", "--wait", server["id"], second["id"], json_output=False, timeout=300)
    for domain in domains:
        assert virsh("domstate", domain) == "", f"domain {domain} is still defined"
    leftovers = [n for n in os.listdir(instances_dir(cloud)) if n != "_base"]
    assert leftovers == [], f"instance files left behind: {leftovers}"
    cloud.openstack("image", "delete", snapshot["id"], json_output=False)


@pytest.fixture(scope="module")
def cache_cloud():
    tmp = _libvirt_dir()
    cloud = RunningCloud(tmp, "all", extra_conf=libvirt_conf(age=5, interval=2)).start()
    yield cloud
    cloud.stop()
    shutil.rmtree(tmp, ignore_errors=True)


def test_three_servers_of_one_image_share_one_base_file_which_ages_out_after_the_last(cache_cloud):
    cloud = cache_cloud
    servers = cloud.openstack(
        "server",
        "create",
        "--flavor",
        "m1.tiny",
        "--image",
        "demo-image",
        "--min",
        "3",
        "--max",
        "3",
        "--wait",
        "e2e-cache",
        timeout=600,
    )
    listed = [s for s in cloud.openstack("server", "list") if s["Name"].startswith("e2e-cache")]
    assert len(listed) == 3 and all(s["Status"] == "ACTIVE" for s in listed), listed
    base_dir = os.path.join(instances_dir(cloud), "_base")
    backing = set()
    for entry in listed:
        disk = os.path.join(instances_dir(cloud), entry["ID"], "disk")
        info = json.loads(
            subprocess.run(
                ["qemu-img", "info", "-U", "--output=json", disk], capture_output=True, text=True, check=True
            ).stdout
        )
        backing.add(info["full-backing-filename"] if "full-backing-filename" in info else info["backing-filename"])
    assert len(backing) == 1, f"the three overlays have different bases: {backing}"
    base = backing.pop()
    assert os.path.dirname(base) == base_dir and os.path.exists(base)
    time.sleep(8)  # older than the age, but in use: it must stay
    assert os.path.exists(base), "the cache manager removed a base image still in use"
    cloud.openstack("server", "delete", "--wait", *[s["ID"] for s in listed], json_output=False, timeout=300)
    deadline = time.monotonic() + 60
    while os.path.exists(base) and time.monotonic() < deadline:
        time.sleep(1)
    assert not os.path.exists(base), "the unused base image was not removed after its age passed"
    del servers
