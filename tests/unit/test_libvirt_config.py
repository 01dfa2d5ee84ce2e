"""The libvirt driver's typed domain model, its XML, and the power-state mapping."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt

from nova_twisted.compute import states
from nova_twisted.virt.libvirt import config as vconfig
from nova_twisted.virt.libvirt.host import event_power_state, power_state
from nova_twisted.virt.libvirt.resources import cpu_info

UUID = "0b5d3c39-43b5-4c28-9a2b-7a8f3d1c2e11"


def _guest(**kw):
    values = dict(
        virt_type="qemu",
        name="instance-0000002a",
        uuid=UUID,
        memory_kib=128 * 1024,
        vcpus=2,
        disks=[vconfig.GuestDisk("/srv/i/disk")],
        serial_log=vconfig.GuestSerialLog("/srv/i/console.log"),
        graphics=[vconfig.GuestGraphics("vnc", "0.0.0.0"), vconfig.GuestGraphics("spice", "10.0.0.5")],
        metadata=vconfig.NovaMetadata(UUID, "web-1", "compute-a", project_id="p1", flavor_name="m1.tiny"),
    )
    values.update(kw)
    return vconfig.Guest(**values)


def test_direct_kernel_boot_puts_kernel_initrd_and_cmdline_in_os():
    guest = _guest(os=vconfig.GuestOS(kernel="/srv/i/kernel", initrd="/srv/i/ramdisk", cmdline="console=ttyS0"))
    root = ET.fromstring(guest.to_xml())
    assert root.get("type") == "qemu"
    assert root.findtext("os/kernel") == "/srv/i/kernel"
    assert root.findtext("os/initrd") == "/srv/i/ramdisk"
    assert root.findtext("os/cmdline") == "console=ttyS0"
    assert root.find("os/boot") is None


def test_disk_boot_boots_from_the_disk_with_the_machine_type():
    root = ET.fromstring(_guest(os=vconfig.GuestOS(machine="q35")).to_xml())
    assert root.find("os/boot").get("dev") == "hd"
    assert root.find("os/type").get("machine") == "q35"
    assert root.find("os/kernel") is None


def test_size_disk_and_serial_console_log():
    root = ET.fromstring(_guest().to_xml())
    assert root.findtext("vcpu") == "2"
    assert root.find("memory").text == str(128 * 1024) and root.find("memory").get("unit") == "KiB"
    disk = root.find("devices/disk")
    assert disk.find("driver").get("type") == "qcow2"
    assert disk.find("target").get("bus") == "virtio" and disk.find("target").get("dev") == "vda"
    assert disk.find("source").get("file") == "/srv/i/disk"
    serial = root.find("devices/serial")
    assert serial.get("type") == "file"
    assert serial.find("source").get("path") == "/srv/i/console.log"
    assert serial.find("source").get("append") == "on"
    assert root.find("cpu") is None  # qemu/TCG: QEMU's own CPU model


def test_vnc_and_spice_listen_where_configured_with_autoport():
    root = ET.fromstring(_guest(spice_agent=True, cpu_mode="host-model").to_xml())
    graphics = {g.get("type"): g for g in root.findall("devices/graphics")}
    assert set(graphics) == {"vnc", "spice"}
    assert graphics["vnc"].find("listen").get("address") == "0.0.0.0"
    assert graphics["spice"].find("listen").get("address") == "10.0.0.5"
    assert all(g.get("autoport") == "yes" for g in graphics.values())
    assert root.find("devices/channel/target").get("name") == "com.redhat.spice.0"
    assert root.find("cpu").get("mode") == "host-model"


def test_metadata_survives_the_round_trip_through_libvirts_format():
    root = ET.fromstring(_guest().to_xml())
    element = root.find(f"metadata/{{{vconfig.NOVA_NS}}}instance")
    assert vconfig.parse_metadata(ET.tostring(element, encoding="unicode")) == {
        "uuid": UUID,
        "name": "web-1",
        "host": "compute-a",
        "project_id": "p1",
        "flavor_name": "m1.tiny",
        "image_id": "",
    }
    # libvirt hands it back with a default namespace instead of the prefix
    returned = f'<instance xmlns="{vconfig.NOVA_NS}"><uuid>{UUID}</uuid><host>compute-a</host></instance>'
    assert vconfig.parse_metadata(returned) == {"uuid": UUID, "host": "compute-a"}


def test_parse_graphics_reads_the_ports_of_a_running_domain():
    live = """<domain><devices>
      <graphics type='vnc' port='5903' autoport='yes' listen='127.0.0.1'><listen type='address' address='127.0.0.1'/></graphics>
      <graphics type='spice' port='5904' tlsPort='-1' autoport='yes'><listen type='address' address='10.0.0.5'/></graphics>
    </devices></domain>"""
    assert vconfig.parse_graphics(live) == {
        "vnc": {"listen": "127.0.0.1", "port": 5903, "tls_port": -1},
        "spice": {"listen": "10.0.0.5", "port": 5904, "tls_port": -1},
    }
    assert vconfig.parse_graphics("<domain><devices/></domain>") == {}
    disks = vconfig.parse_disks(_guest().to_xml())
    assert disks == [{"target": "vda", "source": "/srv/i/disk", "type": "qcow2"}]


def test_domain_states_map_to_nova_power_states():
    assert power_state(libvirt.VIR_DOMAIN_RUNNING) == states.RUNNING
    assert power_state(libvirt.VIR_DOMAIN_BLOCKED) == states.RUNNING
    assert power_state(libvirt.VIR_DOMAIN_SHUTDOWN) == states.RUNNING  # still shutting down
    assert power_state(libvirt.VIR_DOMAIN_PAUSED) == states.PAUSED
    assert power_state(libvirt.VIR_DOMAIN_SHUTOFF) == states.SHUTDOWN
    assert power_state(libvirt.VIR_DOMAIN_SHUTOFF, has_managed_save=True) == states.SUSPENDED
    assert power_state(libvirt.VIR_DOMAIN_CRASHED) == states.CRASHED
    assert power_state(libvirt.VIR_DOMAIN_PMSUSPENDED) == states.SUSPENDED
    assert power_state(libvirt.VIR_DOMAIN_NOSTATE) == states.NOSTATE


def test_lifecycle_events_map_to_the_state_they_leave():
    ev = libvirt
    assert event_power_state(ev.VIR_DOMAIN_EVENT_STARTED, ev.VIR_DOMAIN_EVENT_STARTED_BOOTED) == states.RUNNING
    assert event_power_state(ev.VIR_DOMAIN_EVENT_RESUMED, 0) == states.RUNNING
    assert event_power_state(ev.VIR_DOMAIN_EVENT_SUSPENDED, ev.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED) == states.PAUSED
    assert event_power_state(ev.VIR_DOMAIN_EVENT_SUSPENDED, ev.VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED) is None
    assert event_power_state(ev.VIR_DOMAIN_EVENT_STOPPED, ev.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN) == states.SHUTDOWN
    assert event_power_state(ev.VIR_DOMAIN_EVENT_STOPPED, ev.VIR_DOMAIN_EVENT_STOPPED_DESTROYED) == states.SHUTDOWN
    assert event_power_state(ev.VIR_DOMAIN_EVENT_STOPPED, ev.VIR_DOMAIN_EVENT_STOPPED_SAVED) == states.SUSPENDED
    assert event_power_state(ev.VIR_DOMAIN_EVENT_STOPPED, ev.VIR_DOMAIN_EVENT_STOPPED_CRASHED) == states.CRASHED
    assert event_power_state(ev.VIR_DOMAIN_EVENT_SHUTDOWN, 0) is None  # the STOPPED that follows counts
    assert event_power_state(ev.VIR_DOMAIN_EVENT_DEFINED, 0) is None


def test_cpu_info_comes_from_the_capabilities():
    caps = """<capabilities><host><cpu><arch>x86_64</arch><model>Broadwell</model><vendor>Intel</vendor>
      <topology sockets='1' dies='1' cores='2' threads='1'/><feature name='vmx'/><feature name='aes'/></cpu></host>
      </capabilities>"""
    assert cpu_info(caps) == {
        "arch": "x86_64",
        "model": "Broadwell",
        "vendor": "Intel",
        "topology": {"sockets": 1, "cores": 2, "threads": 1},
        "features": ["aes", "vmx"],
    }
