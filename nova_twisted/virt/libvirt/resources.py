"""What this host offers, as libvirt and the instances directory report it (pool threads)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import libvirt

GiB = 1024**3


def cpu_info(capabilities_xml: str) -> dict:
    """Return ``{"arch", "model", "vendor", "topology", "features"}`` of the host CPU from capabilities XML."""
    cpu = ET.fromstring(capabilities_xml).find("./host/cpu")
    if cpu is None:
        return {"arch": None, "model": None, "vendor": None, "topology": {}, "features": []}
    topology = cpu.find("topology")
    return {
        "arch": cpu.findtext("arch"),
        "model": cpu.findtext("model"),
        "vendor": cpu.findtext("vendor"),
        "topology": {
            key: int(topology.get(key))
            for key in ("sockets", "cores", "threads")
            if topology is not None and topology.get(key)
        },
        "features": sorted(f.get("name") for f in cpu.findall("feature") if f.get("name")),
    }


def host_resources(conn, instances_path: str) -> dict:
    """Return the IComputeDriver.get_available_resource dict for this connection's host.

    Totals come from virNodeGetInfo and the file system holding
    ``instances_path``; vcpus_used and memory_mb_used add up the running
    guests' sizes; local_gb_used is the file system's used space.
    """
    _model, memory_mb, cpus, _mhz, _nodes, _sockets, _cores, _threads = conn.getInfo()
    info = cpu_info(conn.getCapabilities())
    vcpus_used = memory_kib_used = 0
    running = conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
    for dom in running:
        try:
            _state, max_mem, _mem, vcpus, _cpu_time = dom.info()
        except libvirt.libvirtError:
            continue  # it stopped meanwhile
        vcpus_used += vcpus
        memory_kib_used += max_mem
    path = instances_path
    while not os.path.exists(path):
        path = os.path.dirname(path)
    fs = os.statvfs(path)
    total, free = fs.f_blocks * fs.f_frsize, fs.f_bavail * fs.f_frsize
    return {
        "vcpus": cpus,
        "memory_mb": memory_mb,
        "local_gb": total // GiB,
        "vcpus_used": vcpus_used,
        "memory_mb_used": memory_kib_used // 1024,
        "local_gb_used": (total - free) // GiB,
        "hypervisor_type": conn.getType(),
        "hypervisor_version": conn.getVersion(),
        "hypervisor_hostname": conn.getHostname(),
        "cpu_arch": info["arch"],
        "cpu_info": info,
        "running_vms": len(running),
    }
