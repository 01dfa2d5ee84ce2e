"""Blocking work of the libvirt driver, run on its thread pool: domain operations and instance files.

Functions taking ``conn`` run through ``LibvirtHost.run``; the others through
``LibvirtHost.run_blocking``. None may be called on the reactor thread.
"""

from __future__ import annotations

import os
import shutil
import time

import libvirt

from nova_twisted import exception
from nova_twisted.virt.libvirt import imagecache
from nova_twisted.virt.libvirt.host import power_state


def lookup(conn, uuid: str):
    """Return the domain of instance ``uuid``; raise InstanceNotFound (pool threads)."""
    try:
        return conn.lookupByUUIDString(uuid)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            raise exception.InstanceNotFound(instance_id=uuid) from None
        raise


def domain_power_state(dom) -> int:
    state = dom.state()[0]
    managed = state == libvirt.VIR_DOMAIN_SHUTOFF and bool(dom.hasManagedSaveImage(0))
    return power_state(state, managed)


def supports_direct_io(path: str) -> bool:
    probe = os.path.join(path, ".directio.test")
    try:
        fd = os.open(probe, os.O_CREAT | os.O_WRONLY | getattr(os, "O_DIRECT", 0), 0o600)
        os.close(fd)
        return True
    except OSError:
        return False
    finally:
        try:
            os.unlink(probe)
        except OSError:
            pass


def exists(conn, uuid: str) -> bool:
    try:
        lookup(conn, uuid)
        return True
    except exception.InstanceNotFound:
        return False


def state_and_xml(conn, uuid: str) -> tuple[int, str]:
    dom = lookup(conn, uuid)
    return domain_power_state(dom), dom.XMLDesc(0)


def shutdown_domain(conn, uuid: str) -> None:
    """Press the guest's ACPI power button (a guest that is not running is left alone)."""
    dom = lookup(conn, uuid)
    try:
        dom.shutdown()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:
            raise


def hard_stop(conn, uuid: str, discard_saved: bool = False) -> None:
    """Power the guest off at once (and drop its managed save when asked)."""
    dom = lookup(conn, uuid)
    destroy_active(dom)
    if discard_saved and dom.hasManagedSaveImage(0):
        dom.managedSaveRemove(0)


def destroy_active(dom) -> None:
    for attempt in range(6):
        if not dom.isActive():
            return
        try:
            dom.destroy()
            return
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID or attempt == 5:
                if not dom.isActive():
                    return
                raise
            time.sleep(0.5)  # QEMU can take a moment to let go of a busy process


def destroy_domain(conn, uuid: str) -> None:
    try:
        dom = lookup(conn, uuid)
    except exception.InstanceNotFound:
        return
    destroy_active(dom)
    flags = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    try:
        dom.undefineFlags(flags)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise


def prepare_instance_dir(inst_dir, kernel, ramdisk, bases, facts) -> None:
    for source, name in ((kernel, "kernel"), (ramdisk, "ramdisk")):
        if source:
            shutil.copyfile(source, os.path.join(inst_dir, name))
            os.chmod(os.path.join(inst_dir, name), 0o644)
    imagecache.write_record(inst_dir, bases, facts)


def keep_for_revert(inst_dir: str, old_dir: str) -> None:
    """Move the instance directory aside and start a new one holding copies of its files."""
    shutil.rmtree(old_dir, ignore_errors=True)
    os.rename(inst_dir, old_dir)
    os.makedirs(inst_dir, 0o755)
    os.chmod(inst_dir, 0o755)
    for name in os.listdir(old_dir):
        if name != "libvirt.xml":
            shutil.copy2(os.path.join(old_dir, name), os.path.join(inst_dir, name))


def swap_back(inst_dir: str, old_dir: str) -> None:
    """Put the pre-resize directory back, keeping the console log written since (one history)."""
    log_path = os.path.join(inst_dir, "console.log")
    if os.path.exists(log_path):
        os.replace(log_path, os.path.join(old_dir, "console.log"))
    shutil.rmtree(inst_dir, ignore_errors=True)
    os.rename(old_dir, inst_dir)


def write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def tail(path: str, limit: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            data = handle.read(limit)
    except FileNotFoundError:
        return ""
    return data.decode("utf-8", "replace").replace("\r\n", "\n")
