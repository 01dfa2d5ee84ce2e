"""The scheduler's weighers, as drop-ins (named in ``[scheduler] weighers``)."""

from __future__ import annotations

import numpy as np
from twisted.plugin import IPlugin
from zope.interface import implementer

from nova_twisted.scheduler.interfaces import IHostWeigher


@implementer(IPlugin, IHostWeigher)
class _FreeResourceWeigher:
    name = ""
    resource_class = ""
    multiplier_option = ""

    def weigh(self, table, spec, conf, candidates):
        return table.free[self.resource_class][candidates], getattr(conf.scheduler, self.multiplier_option)


class RAMWeigher(_FreeResourceWeigher):
    """More free RAM weighs more (spread); a negative multiplier stacks."""

    name = "RAMWeigher"
    resource_class = "MEMORY_MB"
    multiplier_option = "ram_weight_multiplier"


class CPUWeigher(_FreeResourceWeigher):
    """More free vCPUs weigh more (spread); a negative multiplier stacks."""

    name = "CPUWeigher"
    resource_class = "VCPU"
    multiplier_option = "cpu_weight_multiplier"


class DiskWeigher(_FreeResourceWeigher):
    """More free disk weighs more (spread); a negative multiplier stacks."""

    name = "DiskWeigher"
    resource_class = "DISK_GB"
    multiplier_option = "disk_weight_multiplier"


@implementer(IPlugin, IHostWeigher)
class _GroupWeigher:
    name = ""
    policy = ""
    multiplier_option = ""
    sign = 1.0

    def weigh(self, table, spec, conf, candidates):
        group = spec.get("group") or {}
        multiplier = getattr(conf.scheduler, self.multiplier_option)
        if group.get("policy") != self.policy or not group.get("hosts"):
            return np.zeros(len(candidates)), 0.0
        counts: dict[str, int] = {}
        for host in group["hosts"]:
            counts[host] = counts.get(host, 0) + 1
        members = np.fromiter(
            (counts.get(h, 0) for h in table.hostnames[candidates]), dtype=float, count=len(candidates)
        )
        return self.sign * members, multiplier


class ServerGroupSoftAffinityWeigher(_GroupWeigher):
    """soft-affinity: prefer hosts with more of the group's servers."""

    name = "ServerGroupSoftAffinityWeigher"
    policy = "soft-affinity"
    multiplier_option = "soft_affinity_weight_multiplier"


class ServerGroupSoftAntiAffinityWeigher(_GroupWeigher):
    """soft-anti-affinity: prefer hosts with fewer of the group's servers."""

    name = "ServerGroupSoftAntiAffinityWeigher"
    policy = "soft-anti-affinity"
    multiplier_option = "soft_anti_affinity_weight_multiplier"
    sign = -1.0


ram = RAMWeigher()
cpu = CPUWeigher()
disk = DiskWeigher()
soft_affinity = ServerGroupSoftAffinityWeigher()
soft_anti_affinity = ServerGroupSoftAntiAffinityWeigher()
