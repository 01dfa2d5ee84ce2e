"""Shared by the libvirt tests: the tiny test guest in the image store, scratch dirs, clean-up."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile

import libvirt

from nova_twisted import conf as nova_conf
from nova_twisted.virt.libvirt import config as vconfig
from tests.image_helpers import context_for, make_store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QEMU_URI = "qemu:///system"
TEST_URI = "test:///default"


def _guest_builder():
    spec = importlib.util.spec_from_file_location("make_test_guest", os.path.join(ROOT, "tools", "make_test_guest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_guest() -> dict:
    """The tiny guest's files (built once, then cached): kernel, ramdisk, disk, banner, disk_marker."""
    return _guest_builder().build()


def scratch_dir(testcase, prefix: str = "nova-libvirt-test-") -> str:
    """A directory qemu (another user) can reach, removed after the test."""
    path = tempfile.mkdtemp(prefix=prefix)
    os.chmod(path, 0o755)
    testcase.addCleanup(shutil.rmtree, path, True)
    return path


def libvirt_conf(instances_path: str, uri: str = QEMU_URI, **overrides):
    """The configuration of a test driver: QEMU/TCG, short timeouts, VNC and SPICE on loopback."""
    values = {
        ("libvirt", "virt_type"): "qemu",
        ("libvirt", "connection_uri"): uri,
        ("libvirt", "soft_reboot_timeout"): 20,
        ("libvirt", "resize_shutdown_timeout"): 10,
        # Several verbose boots must fit: tests count the banners in the console's tail.
        ("libvirt", "console_log_max_bytes"): 1024 * 1024,
        ("compute", "instances_path"): instances_path,
        ("vnc", "enabled"): True,
        ("spice", "enabled"): True,
    }
    values.update({tuple(key.split(".", 1)): value for key, value in overrides.items()})
    return nova_conf.defaults().with_overrides(values)


def image_store(testcase):
    """The built-in image store on a scratch SQLite database, and the context of its image owner."""
    return make_store(testcase), context_for("tok-alice")


async def upload_file(store, ctxt, path: str, name: str, disk_format: str, container_format: str, **props) -> dict:
    image = await store.create(
        ctxt, {"name": name, "disk_format": disk_format, "container_format": container_format, **props}
    )
    return await store.upload(ctxt, image["id"], path)


async def upload_test_guest(store, ctxt, os_command_line: str | None = None, disk_format: str = "qcow2") -> dict:
    """Upload the tiny guest AMI-style; return the machine image's image_meta (with kernel_id/ramdisk_id).

    ``disk_format`` "ami" uploads the raw machine image as an ami, "qcow2" the qcow2 one.
    """
    guest = tiny_guest()
    kernel = await upload_file(store, ctxt, guest["kernel"], "test-guest-kernel", "aki", "aki")
    ramdisk = await upload_file(store, ctxt, guest["ramdisk"], "test-guest-ramdisk", "ari", "ari")
    props = {"kernel_id": kernel["id"], "ramdisk_id": ramdisk["id"]}
    if os_command_line:
        props["os_command_line"] = os_command_line
    if disk_format == "ami":
        return await upload_file(store, ctxt, guest["raw_disk"], "test-guest", "ami", "ami", **props)
    return await upload_file(store, ctxt, guest["disk"], "test-guest", "qcow2", "bare", **props)


def sweep_domains(uri: str, host: str) -> list[str]:
    """Destroy and undefine every domain our driver made for ``host`` (blocking; test clean-up only)."""
    removed = []
    conn = libvirt.open(uri)
    try:
        for dom in conn.listAllDomains(0):
            try:
                xml = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, vconfig.NOVA_NS)
            except libvirt.libvirtError:
                continue
            if vconfig.parse_metadata(xml).get("host") != host:
                continue
            try:
                if dom.isActive():
                    dom.destroy()
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
                removed.append(dom.name())
            except libvirt.libvirtError:
                pass
    finally:
        conn.close()
    return removed


def domain_exists(uri: str, uuid: str) -> bool:
    """True if libvirt at ``uri`` knows a domain with ``uuid`` (blocking; tests only)."""
    conn = libvirt.open(uri)
    try:
        conn.lookupByUUIDString(uuid)
        return True
    except libvirt.libvirtError:
        return False
    finally:
        conn.close()
