"""The scheduler's filters, as drop-ins (named in ``[scheduler] enabled_filters``)."""

from __future__ import annotations

import numpy as np
from twisted.plugin import IPlugin
from zope.interface import implementer

from nova_twisted.scheduler.interfaces import ISchedulerFilter


@implementer(IPlugin, ISchedulerFilter)
class _Filter:
    name = ""

    def filter(self, table, spec, conf):  # pragma: no cover - overridden
        raise NotImplementedError


class ComputeFilter(_Filter):
    """Only hosts whose nova-compute is up and enabled."""

    name = "ComputeFilter"

    def filter(self, table, spec, conf):
        return table.up & table.enabled


class RetryFilter(_Filter):
    """Not the hosts a failed build of this server was already tried on."""

    name = "RetryFilter"

    def filter(self, table, spec, conf):
        tried = spec.get("tried_hosts") or ()
        return ~table.hosts_mask(tried) if tried else np.ones(len(table), dtype=bool)


class _ResourceFilter(_Filter):
    resource_class = ""
    flavor_key = ""

    def amount(self, flavor) -> int:
        return int(flavor.get(self.flavor_key) or 0)

    def filter(self, table, spec, conf):
        from nova_twisted.db.placement import flavor_resources

        need = flavor_resources(spec["flavor"])[self.resource_class]
        if need <= 0:
            return np.ones(len(table), dtype=bool)
        return (table.free[self.resource_class] >= need) & (table.max_unit[self.resource_class] >= need)


class RamFilter(_ResourceFilter):
    """Enough free RAM, counting the allocation ratio."""

    name = "RamFilter"
    resource_class = "MEMORY_MB"


class CoreFilter(_ResourceFilter):
    """Enough free vCPUs, counting the allocation ratio."""

    name = "CoreFilter"
    resource_class = "VCPU"


class DiskFilter(_ResourceFilter):
    """Enough free disk for root, ephemeral and swap."""

    name = "DiskFilter"
    resource_class = "DISK_GB"


class AvailabilityZoneFilter(_Filter):
    """Hosts of the requested availability zone (and host, in ``zone:host``)."""

    name = "AvailabilityZoneFilter"

    def filter(self, table, spec, conf):
        zone = spec.get("availability_zone")
        if not zone:
            return np.ones(len(table), dtype=bool)
        zone, _, host = zone.partition(":")
        mask = table.availability_zone == zone if zone else np.ones(len(table), dtype=bool)
        if host:
            mask &= table.hostnames == host.partition(":")[0]
        return mask


class ImagePropertiesFilter(_Filter):
    """Hosts whose architecture and hypervisor type fit the image's properties."""

    name = "ImagePropertiesFilter"

    def filter(self, table, spec, conf):
        image = spec.get("image") or {}
        mask = np.ones(len(table), dtype=bool)
        arch = (image.get("architecture") or image.get("hw_architecture") or "").lower()
        if arch:
            aliases = {"amd64": "x86_64", "x64": "x86_64", "i686": "i686", "arm64": "aarch64"}
            mask &= table.cpu_arch == aliases.get(arch, arch)
        hv_type = (image.get("hypervisor_type") or image.get("img_hv_type") or "").lower()
        if hv_type:
            accepted = {hv_type}
            if hv_type in ("qemu", "kvm"):
                accepted = {"qemu", "kvm"}
            mask &= np.fromiter((t in accepted for t in table.hypervisor_type), dtype=bool, count=len(table))
        return mask


class ServerGroupAffinityFilter(_Filter):
    """For an ``affinity`` group: the host the group's servers are on (any host for the first)."""

    name = "ServerGroupAffinityFilter"

    def filter(self, table, spec, conf):
        group = spec.get("group")
        if not group or group.get("policy") != "affinity" or not group.get("hosts"):
            return np.ones(len(table), dtype=bool)
        return table.hosts_mask(group["hosts"])


class ServerGroupAntiAffinityFilter(_Filter):
    """For an ``anti-affinity`` group: hosts with fewer than max_server_per_host of its servers."""

    name = "ServerGroupAntiAffinityFilter"

    def filter(self, table, spec, conf):
        group = spec.get("group")
        if not group or group.get("policy") != "anti-affinity" or not group.get("hosts"):
            return np.ones(len(table), dtype=bool)
        limit = int((group.get("rules") or {}).get("max_server_per_host", 1))
        counts: dict[str, int] = {}
        for host in group["hosts"]:
            counts[host] = counts.get(host, 0) + 1
        full = [h for h, c in counts.items() if c >= limit]
        return ~table.hosts_mask(full)


class SameHostFilter(_Filter):
    """Scheduler hint ``same_host``: on the host(s) of the given servers."""

    name = "SameHostFilter"

    def filter(self, table, spec, conf):
        hosts = (spec.get("hint_hosts") or {}).get("same_host")
        if hosts is None:
            return np.ones(len(table), dtype=bool)
        return table.hosts_mask(hosts)


class DifferentHostFilter(_Filter):
    """Scheduler hint ``different_host``: not on the host(s) of the given servers."""

    name = "DifferentHostFilter"

    def filter(self, table, spec, conf):
        hosts = (spec.get("hint_hosts") or {}).get("different_host")
        if not hosts:
            return np.ones(len(table), dtype=bool)
        return ~table.hosts_mask(hosts)


compute = ComputeFilter()
retry = RetryFilter()
ram = RamFilter()
core = CoreFilter()
disk = DiskFilter()
availability_zone = AvailabilityZoneFilter()
image_properties = ImagePropertiesFilter()
affinity = ServerGroupAffinityFilter()
anti_affinity = ServerGroupAntiAffinityFilter()
same_host = SameHostFilter()
different_host = DifferentHostFilter()
