#!/usr/bin/env python3
"""Scheduling time per request at 100, 1,000 and 10,000 compute hosts.

Runs nova-scheduler's real decision path (HostTable from the database's
host states, every default filter and weigher, the local usage update after
a claim) against synthetic hosts, and in the same run, for comparison, the
same filters written the classic way (one Python call per host per filter,
as Nova's filter scheduler does), so the figures have a peer.

    .venv/bin/python bench/schedule.py [--requests 300] [--hosts 100,1000,10000]

Target: under 5 ms per decision at 10,000 hosts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nova_twisted import conf as confmod  # noqa: E402
from nova_twisted.db.placement import capacity, flavor_resources  # noqa: E402
from nova_twisted.scheduler.host_state import HostTable  # noqa: E402
from nova_twisted.scheduler.interfaces import IHostWeigher, ISchedulerFilter  # noqa: E402
from nova_twisted.scheduler.manager import HostSelector, load_plugins  # noqa: E402

NOW = dt.datetime(2026, 1, 1, 12, 0, 0)


def synthetic_hosts(count: int, rng: random.Random) -> list[dict]:
    """Host states as placement.host_states returns them: mixed sizes, zones and usage."""
    hosts = []
    for i in range(count):
        vcpus = rng.choice([16, 32, 64])
        ram = rng.choice([65536, 131072, 262144])
        disk = rng.choice([1000, 2000, 4000])
        used_fraction = rng.random() * 0.8
        hosts.append(
            {
                "id": i + 1,
                "uuid": f"node-{i}",
                "host": f"host-{i}",
                "nodename": f"host-{i}",
                "availability_zone": "nova" if i % 10 else "zone-b",
                "hypervisor_type": "qemu",
                "cpu_arch": "x86_64",
                "generation": 0,
                "updated_at": NOW,
                "service": {
                    "exists": True,
                    "disabled": i % 97 == 0,
                    "disabled_reason": None,
                    "forced_down": False,
                    "last_seen_up": NOW - dt.timedelta(seconds=i % 90),
                },
                "inventory": {
                    "VCPU": {"total": vcpus, "reserved": 0, "allocation_ratio": 16.0, "min_unit": 1, "max_unit": vcpus},
                    "MEMORY_MB": {
                        "total": ram,
                        "reserved": 512,
                        "allocation_ratio": 1.5,
                        "min_unit": 1,
                        "max_unit": ram,
                    },
                    "DISK_GB": {"total": disk, "reserved": 0, "allocation_ratio": 1.0, "min_unit": 1, "max_unit": disk},
                },
                "used": {
                    "VCPU": int(vcpus * 16 * used_fraction),
                    "MEMORY_MB": int(ram * 1.5 * used_fraction),
                    "DISK_GB": int(disk * used_fraction),
                },
                "instances": int(40 * used_fraction),
            }
        )
    return hosts


def request_spec(rng: random.Random, group_hosts: list[str]) -> dict:
    flavor = rng.choice(
        [
            {"vcpus": 1, "memory_mb": 512, "root_gb": 1},
            {"vcpus": 2, "memory_mb": 4096, "root_gb": 40},
            {"vcpus": 8, "memory_mb": 16384, "root_gb": 160},
        ]
    )
    spec = {
        "flavor": flavor,
        "image": {"architecture": "x86_64", "hypervisor_type": "qemu"},
        "availability_zone": "nova" if rng.random() < 0.3 else None,
        "scheduler_hints": {},
        "tried_hosts": [],
        "hint_hosts": {},
    }
    if rng.random() < 0.2:
        spec["group"] = {"uuid": "g", "policy": "anti-affinity", "rules": {}, "hosts": group_hosts}
    return spec


class ClassicSelector:
    """The same decisions, one Python call per host per filter (Nova's filter scheduler shape)."""

    def __init__(self, hosts, down_time: float):
        self.hosts = [
            dict(h, free={rc: capacity(inv) - h["used"][rc] for rc, inv in h["inventory"].items()}) for h in hosts
        ]
        self.down = dt.timedelta(seconds=down_time)

    def select(self, spec):
        need = flavor_resources(spec["flavor"])
        zone = spec.get("availability_zone")
        group = spec.get("group") or {}
        avoid = set(group.get("hosts") or ()) if group.get("policy") == "anti-affinity" else set()
        filters = [
            lambda h: not h["service"]["disabled"] and NOW - h["service"]["last_seen_up"] <= self.down,
            lambda h: not zone or h["availability_zone"] == zone,
            lambda h: h["free"]["MEMORY_MB"] >= need["MEMORY_MB"],
            lambda h: h["free"]["VCPU"] >= need["VCPU"],
            lambda h: h["free"]["DISK_GB"] >= need["DISK_GB"],
            lambda h: h["cpu_arch"] == "x86_64",
            lambda h: h["host"] not in avoid,
        ]
        hosts = self.hosts
        for check in filters:
            hosts = [h for h in hosts if check(h)]
        if not hosts:
            return None
        weights = [0.0] * len(hosts)
        for rc in ("MEMORY_MB", "VCPU", "DISK_GB"):
            values = [h["free"][rc] for h in hosts]
            low, high = min(values), max(values)
            if high > low:
                for i, v in enumerate(values):
                    weights[i] += (v - low) / (high - low)
        best = max(range(len(hosts)), key=weights.__getitem__)
        chosen = hosts[best]
        for rc, amount in need.items():
            chosen["free"][rc] -= amount
        return chosen["host"]


def measure(fn, specs) -> list[float]:
    timings = []
    for spec in specs:
        started = time.perf_counter()
        fn(spec)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--hosts", default="100,1000,10000")
    args = parser.parse_args()
    conf = confmod.load(())
    selector = HostSelector(
        load_plugins(conf.scheduler.enabled_filters, ISchedulerFilter),
        load_plugins(conf.scheduler.weighers, IHostWeigher),
        conf,
    )
    print(f"{'hosts':>7} | {'ours p50 ms':>11} {'p99 ms':>8} {'build ms':>9} | {'classic p50':>11} {'p99':>8} | ratio")
    for count in [int(c) for c in args.hosts.split(",")]:
        rng = random.Random(count)
        hosts = synthetic_hosts(count, rng)
        started = time.perf_counter()
        table = HostTable(hosts, NOW, conf.DEFAULT.service_down_time)
        build_ms = (time.perf_counter() - started) * 1000
        group_hosts = [f"host-{i}" for i in range(0, count, max(1, count // 50))]
        specs = [request_spec(rng, group_hosts) for _ in range(args.requests)]

        def ours(spec, table=table):
            ranked, _ = selector.select(table, spec)
            if len(ranked):
                table.consume(int(ranked[0]), flavor_resources(spec["flavor"]))

        ours_ms = measure(ours, specs)
        classic = ClassicSelector(hosts, conf.DEFAULT.service_down_time)
        classic_ms = measure(classic.select, specs)
        p = lambda xs, q: statistics.quantiles(xs, n=100)[q - 1]  # noqa: E731
        print(
            f"{count:>7} | {statistics.median(ours_ms):>11.3f} {p(ours_ms, 99):>8.3f} {build_ms:>9.1f} | "
            f"{statistics.median(classic_ms):>11.3f} {p(classic_ms, 99):>8.3f} | "
            f"{statistics.median(classic_ms) / statistics.median(ours_ms):5.1f}x"
        )
    print("ours: decision on the in-memory HostTable (all default filters and weighers + local claim update);")
    print("build: turning the database's host states into the table (done on refresh, not per request).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
