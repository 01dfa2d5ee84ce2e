"""A small typed model of libvirt domain XML: dataclasses that render to ElementTree.

The driver describes a guest with :class:`Guest` and its parts and asks
for :meth:`Guest.to_xml`; nothing builds XML from string templates.
:func:`parse_graphics` and :func:`parse_metadata` read back what the
driver needs from a live domain's XML.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

#: Namespace of the driver's own metadata inside <metadata>.
NOVA_NS = "http://nova-twisted.org/xmlns/libvirt/instance/1.0"
ET.register_namespace("nova", NOVA_NS)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: str(v) for k, v in attrs.items() if v not in (None, "")})
    if text is not None:
        element.text = str(text)
    return element


@dataclass
class GuestOS:
    """<os>: firmware boot from a disk, or direct kernel boot when ``kernel`` is set."""

    arch: str = "x86_64"
    machine: str = ""
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    boot_dev: str = "hd"

    def to_element(self, parent: ET.Element) -> ET.Element:
        os_el = _sub(parent, "os")
        _sub(os_el, "type", "hvm", arch=self.arch, machine=self.machine)
        if self.kernel:
            _sub(os_el, "kernel", self.kernel)
            if self.initrd:
                _sub(os_el, "initrd", self.initrd)
            if self.cmdline:
                _sub(os_el, "cmdline", self.cmdline)
        else:
            _sub(os_el, "boot", dev=self.boot_dev)
        return os_el


@dataclass
class GuestDisk:
    """A file-backed disk (a qcow2 overlay, a blank ephemeral disk, a config drive)."""

    source: str
    target: str = "vda"
    bus: str = "virtio"
    driver_type: str = "qcow2"
    cache: str = "none"
    device: str = "disk"
    readonly: bool = False

    def to_element(self, parent: ET.Element) -> ET.Element:
        disk = _sub(parent, "disk", type="file", device=self.device)
        _sub(disk, "driver", name="qemu", type=self.driver_type, cache=self.cache)
        _sub(disk, "source", file=self.source)
        _sub(disk, "target", dev=self.target, bus=self.bus)
        if self.readonly:
            _sub(disk, "readonly")
        return disk


@dataclass
class GuestSerialLog:
    """The first serial port, written to a file (the console log) across reboots."""

    path: str
    append: bool = True

    def to_element(self, parent: ET.Element) -> ET.Element:
        serial = _sub(parent, "serial", type="file")
        _sub(serial, "source", path=self.path, append="on" if self.append else "off")
        _sub(serial, "target", port=0)
        return serial


@dataclass
class GuestGraphics:
    """A VNC or SPICE server for the guest's screen; ``autoport`` picks a free port at start."""

    type: str
    listen: str
    keymap: str = ""
    autoport: bool = True

    def to_element(self, parent: ET.Element) -> ET.Element:
        graphics = _sub(
            parent, "graphics", type=self.type, autoport="yes" if self.autoport else "no", keymap=self.keymap
        )
        _sub(graphics, "listen", type="address", address=self.listen)
        return graphics


@dataclass
class NovaMetadata:
    """What the driver records about an instance inside its domain (read back by list_instances)."""

    uuid: str
    name: str
    host: str
    project_id: str = ""
    flavor_name: str = ""
    image_id: str = ""

    def to_element(self, parent: ET.Element) -> ET.Element:
        instance = ET.SubElement(parent, f"{{{NOVA_NS}}}instance")
        for key in ("uuid", "name", "host", "project_id", "flavor_name", "image_id"):
            ET.SubElement(instance, f"{{{NOVA_NS}}}{key}").text = getattr(self, key) or ""
        return instance


@dataclass
class Guest:
    """One libvirt domain."""

    virt_type: str
    name: str
    uuid: str
    memory_kib: int
    vcpus: int
    os: GuestOS = field(default_factory=GuestOS)
    cpu_mode: str = ""
    disks: list[GuestDisk] = field(default_factory=list)
    serial_log: GuestSerialLog | None = None
    graphics: list[GuestGraphics] = field(default_factory=list)
    metadata: NovaMetadata | None = None
    spice_agent: bool = False

    def to_element(self) -> ET.Element:
        domain = ET.Element("domain", type=self.virt_type)
        _sub(domain, "name", self.name)
        _sub(domain, "uuid", self.uuid)
        if self.metadata is not None:
            self.metadata.to_element(_sub(domain, "metadata"))
        _sub(domain, "memory", self.memory_kib, unit="KiB")
        _sub(domain, "currentMemory", self.memory_kib, unit="KiB")
        _sub(domain, "vcpu", self.vcpus)
        self.os.to_element(domain)
        features = _sub(domain, "features")
        _sub(features, "acpi")
        _sub(features, "apic")
        if self.cpu_mode and self.cpu_mode != "none":
            _sub(domain, "cpu", mode=self.cpu_mode)
        _sub(domain, "clock", offset="utc")
        _sub(domain, "on_poweroff", "destroy")
        _sub(domain, "on_reboot", "restart")
        _sub(domain, "on_crash", "destroy")
        devices = _sub(domain, "devices")
        for disk in self.disks:
            disk.to_element(devices)
        if self.serial_log is not None:
            self.serial_log.to_element(devices)
        if self.graphics:
            # A tablet keeps the pointer where the console viewer shows it.
            _sub(devices, "input", type="tablet", bus="usb")
        for graphics in self.graphics:
            graphics.to_element(devices)
        if self.spice_agent and any(g.type == "spice" for g in self.graphics):
            channel = _sub(devices, "channel", type="spicevmc")
            _sub(channel, "target", type="virtio", name="com.redhat.spice.0")
        _sub(devices, "memballoon", model="virtio")
        return domain

    def to_xml(self) -> str:
        """Return the domain XML text libvirt's defineXML takes."""
        element = self.to_element()
        ET.indent(element)
        return ET.tostring(element, encoding="unicode")


def parse_graphics(xml: str) -> dict[str, dict]:
    """Return ``{"vnc": {"listen", "port"}, "spice": {...}}`` from a domain's XML.

    A port of -1 or none means the guest is not running (autoport picks one at start).
    """
    root = ET.fromstring(xml)
    found = {}
    for graphics in root.findall("./devices/graphics"):
        kind = graphics.get("type")
        listen = graphics.get("listen")
        listen_el = graphics.find("listen")
        if listen_el is not None and listen_el.get("address"):
            listen = listen_el.get("address")
        port = int(graphics.get("port") or -1)
        found[kind] = {"listen": listen, "port": port, "tls_port": int(graphics.get("tlsPort") or -1)}
    return found


def parse_metadata(xml: str) -> dict:
    """Return the driver's metadata (uuid, name, host, ...) from a <nova:instance> element's XML."""
    root = ET.fromstring(xml)
    return {child.tag.split("}", 1)[-1]: child.text or "" for child in root}


def parse_disks(xml: str) -> list[dict]:
    """Return ``[{"target", "source", "type"}]`` of a domain's file disks."""
    disks = []
    for disk in ET.fromstring(xml).findall("./devices/disk"):
        source, target, driver = disk.find("source"), disk.find("target"), disk.find("driver")
        disks.append(
            {
                "target": target.get("dev") if target is not None else None,
                "source": source.get("file") if source is not None else None,
                "type": driver.get("type") if driver is not None else None,
            }
        )
    return disks
