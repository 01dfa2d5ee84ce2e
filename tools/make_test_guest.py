#!/usr/bin/env python3
"""Build the tiny bootable test guest from Debian packages, and cache it.

The guest is booted AMI-style: a kernel (``vmlinuz``, the host's
linux-image-cloud-amd64 kernel, uploaded as an ``aki``), a busybox
initramfs (``initrd.gz``, an ``ari``) and a machine image with
kernel_id/ramdisk_id properties: ``disk.raw`` (16 MiB, sparse) as an
``ami``, or ``disk.qcow2`` (1 GiB virtual) as a ``qcow2`` image.

The initramfs's ``/init`` loads the virtio and ACPI button modules, starts
a power-button watcher (power button -> clean ``poweroff``), prints what
it sees (memory, CPUs, the root disk's size and first line), then the
boot banner ``nova-twisted test guest booted`` and waits. Kernel command
line switches (and a config drive: its instance uuid and user data are printed too):

- ``nova_test.ignore_acpi=1``: no power-button watcher (a guest that
  ignores ACPI, to test the soft-reboot fallback);
- ``nova_test.poweroff_after=N``: power off by itself N seconds after boot.

Usage: ``tools/make_test_guest.py [--output DIR] [--force]``; prints the
paths as JSON. Without ``--output`` the files go to a cache directory
keyed by kernel version and this script's content
(``$NOVA_TEST_GUEST_CACHE`` or ``state/test-guest/``), so repeated calls
cost nothing. Needs: linux-image-cloud-amd64, busybox-static, qemu-utils.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BANNER = "nova-twisted test guest booted"
DISK_MARKER = b"nova-twisted test machine image\n"
BUSYBOX = "/bin/busybox"
# Loaded in this order (dependencies first); all are modules in Debian's cloud kernel.
MODULES = [
    "kernel/drivers/virtio/virtio_ring.ko",
    "kernel/drivers/virtio/virtio.ko",
    "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
    "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
    "kernel/drivers/virtio/virtio_pci.ko",
    "kernel/drivers/block/virtio_blk.ko",
    "kernel/drivers/acpi/button.ko",
    "kernel/drivers/input/evdev.ko",
    "kernel/drivers/cdrom/cdrom.ko",
    "kernel/fs/isofs/isofs.ko",
]

INIT = r"""#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in __MODULES__; do insmod /lib/modules/$m 2>/dev/null; done
opt() { for word in $(cat /proc/cmdline); do case "$word" in "$1"=*) echo "${word#*=}";; esac; done; }
power_buttons() {
    for input in /sys/class/input/event*; do
        [ "$(cat $input/device/name 2>/dev/null)" = "Power Button" ] && echo "${input##*/}"
    done
}
if [ "$(opt nova_test.ignore_acpi)" = 1 ]; then
    echo "nova-twisted test guest: ignoring ACPI"
else
    # The button's input device appears a moment after the module loads.
    for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        [ -n "$(power_buttons)" ] && break; sleep 0.1
    done
    for event in $(power_buttons); do
        ( dd if=/dev/input/$event of=/dev/null bs=24 count=1 2>/dev/null
          echo "nova-twisted test guest: power button pressed, powering off"
          sync; poweroff -f ) &
    done
fi
echo "nova-twisted test guest: memory $(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2) kB," \
     "cpus $(grep -c ^processor /proc/cpuinfo)"
if [ -e /sys/block/vda/size ]; then
    echo "nova-twisted test guest: root disk vda $(cat /sys/block/vda/size) sectors," \
         "says: $(head -c 31 /dev/vda)"
fi
for disk in /dev/vd[b-z]; do
    [ -e "$disk" ] || continue
    mkdir -p /mnt && mount -t iso9660 -o ro "$disk" /mnt 2>/dev/null || continue
    [ -f /mnt/openstack/latest/meta_data.json ] && \
        echo "nova-twisted test guest: config drive on $disk, uuid $(sed 's/.*"uuid": "\([^"]*\)".*/\1/' /mnt/openstack/latest/meta_data.json)"
    [ -f /mnt/openstack/latest/user_data ] && \
        echo "nova-twisted test guest: user data: $(head -c 200 /mnt/openstack/latest/user_data)"
    umount /mnt
done
echo "__BANNER__"
after="$(opt nova_test.poweroff_after)"
if [ -n "$after" ]; then
    sleep "$after"
    echo "nova-twisted test guest: powering itself off"
    sync; poweroff -f
fi
while true; do sleep 3600; done
"""


def _kernel() -> tuple[str, str]:
    """Return (path of the newest cloud kernel in /boot, its release)."""
    kernels = sorted(glob.glob("/boot/vmlinuz-*-cloud-amd64")) or sorted(glob.glob("/boot/vmlinuz-*"))
    if not kernels:
        raise SystemExit("make_test_guest: no kernel in /boot (apt-get install linux-image-cloud-amd64)")
    path = kernels[-1]
    return path, os.path.basename(path)[len("vmlinuz-") :]


def _newc_entry(out: io.BytesIO, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)):
    """Append one cpio 'newc' record (the format the kernel unpacks); inodes number the records."""
    ino = out.tell() + 1
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
    header = b"070701" + b"".join(b"%08X" % f for f in fields)
    out.write(header + name.encode() + b"\0")
    out.write(b"\0" * (-(len(header) + len(name) + 1) % 4))
    out.write(data)
    out.write(b"\0" * (-len(data) % 4))


def build_initramfs(release: str) -> bytes:
    """Return the gzip-compressed initramfs: busybox, /init, a few kernel modules."""
    if not os.path.exists(BUSYBOX):
        raise SystemExit("make_test_guest: no /bin/busybox (apt-get install busybox-static)")
    with open(BUSYBOX, "rb") as handle:
        busybox = handle.read()
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True, text=True).stdout.split()
    moddir = f"/lib/modules/{release}"
    names = [os.path.basename(m) for m in MODULES]
    init = INIT.replace("__MODULES__", " ".join(names)).replace("__BANNER__", BANNER)
    out = io.BytesIO()
    directory, regular, link = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o755, stat.S_IFLNK | 0o777
    for name in ("bin", "dev", "proc", "sys", "tmp", "mnt", "lib", "lib/modules"):
        _newc_entry(out, name, directory)
    _newc_entry(out, "dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    _newc_entry(out, "bin/busybox", regular, busybox)
    for applet in applets:
        if applet != "busybox":
            _newc_entry(out, f"bin/{applet}", link, b"busybox")
    for module in MODULES:
        with open(os.path.join(moddir, module), "rb") as handle:
            _newc_entry(out, f"lib/modules/{os.path.basename(module)}", stat.S_IFREG | 0o644, handle.read())
    _newc_entry(out, "init", regular, init.encode())
    _newc_entry(out, "TRAILER!!!", 0)
    return gzip.compress(out.getvalue(), compresslevel=6, mtime=0)


def build_disks(qcow2: str, raw: str, qcow2_size: str = "1G", raw_size: int = 16 * 1024 * 1024) -> None:
    """Write the machine images, whose first MiB repeats DISK_MARKER: a qcow2 one and a small
    sparse raw one (for an ``ami``, whose data is a raw disk)."""
    with open(raw, "wb") as handle:
        handle.write(DISK_MARKER * (1024 * 1024 // len(DISK_MARKER) + 1))
        handle.truncate(1024 * 1024)
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, qcow2], check=True)
    subprocess.run(["qemu-img", "resize", "-q", "-f", "qcow2", qcow2, qcow2_size], check=True)
    with open(raw, "r+b") as handle:
        handle.truncate(raw_size)


def cache_dir() -> str:
    """Return the default cache directory for this kernel and this script."""
    _, release = _kernel()
    with open(os.path.abspath(__file__), "rb") as handle:
        digest = hashlib.sha1(handle.read()).hexdigest()[:10]
    base = os.environ.get("NOVA_TEST_GUEST_CACHE") or os.path.join(ROOT, "state", "test-guest")
    return os.path.join(base, f"{release}-{digest}")


def paths(directory: str) -> dict:
    """Return the guest's files in ``directory``, plus the banner it prints."""
    return {
        "kernel": os.path.join(directory, "vmlinuz"),
        "ramdisk": os.path.join(directory, "initrd.gz"),
        "disk": os.path.join(directory, "disk.qcow2"),
        "raw_disk": os.path.join(directory, "disk.raw"),
        "banner": BANNER,
        "disk_marker": DISK_MARKER.decode().strip(),
    }


def build(output: str | None = None, force: bool = False) -> dict:
    """Build the guest into ``output`` (default: the cache) unless it is there; return paths()."""
    directory = output or cache_dir()
    result = paths(directory)
    if not force and all(os.path.exists(result[k]) for k in ("kernel", "ramdisk", "disk", "raw_disk")):
        return result
    kernel, release = _kernel()
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".test-guest-", dir=parent)
    try:
        shutil.copyfile(kernel, os.path.join(scratch, "vmlinuz"))
        with open(os.path.join(scratch, "initrd.gz"), "wb") as handle:
            handle.write(build_initramfs(release))
        build_disks(os.path.join(scratch, "disk.qcow2"), os.path.join(scratch, "disk.raw"))
        for name in os.listdir(scratch):
            os.chmod(os.path.join(scratch, name), 0o644)
        os.makedirs(directory, exist_ok=True)
        for name in ("vmlinuz", "initrd.gz", "disk.qcow2", "disk.raw"):  # each rename is atomic
            os.replace(os.path.join(scratch, name), os.path.join(directory, name))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if output is None:  # builds of older versions of this script are of no more use
        for stale in glob.glob(os.path.join(parent, f"{release}-*")):
            if os.path.abspath(stale) != os.path.abspath(directory):
                shutil.rmtree(stale, ignore_errors=True)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", help="directory to write to (default: the cache)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the files exist")
    args = parser.parse_args(argv)
    json.dump(build(args.output, args.force), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
