#!/usr/bin/env python3
"""Boot N servers through the compute API with K fake compute hosts over RabbitMQ + MariaDB.

Separate twistd processes (nova-conductor, nova-scheduler, K nova-computes
with the fake driver) on a scratch RabbitMQ vhost and a scratch MariaDB
database; this process is the API side (compute/api.py: quota check, instance
rows, the cast to the scheduler) and offers boots at a fixed rate. Prints
boots/s sustained (servers ACTIVE per second from the first request to the
last ACTIVE) and time-to-ACTIVE p50/p99 (launched_at - created_at, both
written by the cloud itself).

    .venv/bin/python bench/boot.py [-n 1000] [-k 3] [--rate 60]

Targets (issue 4): >= 50 boots/s sustained, p99 time-to-ACTIVE under 2 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def run(reactor, args):
    from twisted.internet import defer, task

    from nova_twisted.db import instances
    from tests.compute.cloud import ProcessCloud, user_context

    hosts = [f"bench-{i + 1}" for i in range(args.k)]
    extra = {
        ("fake_driver", "memory_mb"): str(1 << 22),
        ("fake_driver", "vcpus"): "4096",
        ("fake_driver", "local_gb"): "100000",
        ("fake_driver", "action_delay"): "0",
        ("compute", "max_concurrent_builds"): "200",
        ("quota", "instances"): "-1",
        ("quota", "cores"): "-1",
        ("quota", "ram"): "-1",
        ("DEFAULT", "report_interval"): "5",
        ("DEFAULT", "service_down_time"): "60",
        ("compute", "update_resources_interval"): "60",
        ("compute", "sync_power_state_interval"): "600",
        ("scheduler", "stranded_check_interval"): "600",
        ("scheduler", "host_state_refresh_interval"): "5",
    }
    tmp = tempfile.mkdtemp(prefix="nova-bench-boot-")
    cloud = ProcessCloud(tmp, hosts=hosts, extra=extra)
    print(f"starting conductor, scheduler and {args.k} compute processes on RabbitMQ + MariaDB ...", flush=True)
    await cloud.start()
    try:
        image_id = await cloud.make_image()
        ctxt = user_context(project="bench", user="bench")
        uuids: list[str] = []
        errors: list[str] = []
        interval = 1.0 / args.rate
        cpu_before = _cpu_times(cloud)
        started = time.monotonic()
        pending = []

        async def boot(i):
            try:
                created, _ = await cloud.api.create(ctxt, "1", image_id, f"bench-{i}")
                uuids.append(created[0]["uuid"])
            except Exception as exc:  # noqa: BLE001 - counted and shown
                errors.append(repr(exc))

        for i in range(args.n):
            target = started + i * interval
            delay = target - time.monotonic()
            if delay > 0:
                await task.deferLater(reactor, delay, lambda: None)
            pending.append(defer.ensureDeferred(boot(i)))
        await defer.gatherResults(pending)
        offered_for = time.monotonic() - started
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            rows = await cloud.database.run(
                instances.list_instances, {"project_id": "bench"}, None, None, ["id"], ["asc"], False
            )
            done = [r for r in rows if r["vm_state"] in ("active", "error")]
            if len(done) >= len(uuids):
                break
            await task.deferLater(reactor, 0.2, lambda: None)
        cpu_after = _cpu_times(cloud)
        active = [r for r in rows if r["vm_state"] == "active"]
        failed = [r for r in rows if r["vm_state"] == "error"]
        latencies = sorted((r["launched_at"] - r["created_at"]).total_seconds() for r in active)
        first = min(r["created_at"] for r in rows)
        last = max(r["launched_at"] for r in active)
        span = (last - first).total_seconds()
        q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
        print()
        print(f"servers requested      {args.n} at {args.rate}/s offered ({offered_for:.1f} s to offer them)")
        print(
            f"ACTIVE / ERROR / lost  {len(active)} / {len(failed)} / {args.n - len(rows)}  (create errors: "
            f"{len(errors)}{': ' + errors[0] if errors else ''})"
        )
        print(f"boots/s sustained      {len(active) / span:.1f}   (first request -> last ACTIVE: {span:.1f} s)")
        print(f"time-to-ACTIVE p50     {statistics.median(latencies) * 1000:.0f} ms")
        print(f"time-to-ACTIVE p99     {q[98] * 1000:.0f} ms   (max {latencies[-1] * 1000:.0f} ms)")
        stages = await cloud.database.run(_stages, [r["uuid"] for r in active])
        if stages:
            print(
                f"  request -> compute starts   p50 {statistics.median(s[0] for s in stages) * 1000:.0f} ms "
                "(API transaction, scheduler cast, claim, compute cast)"
            )
            print(
                f"  compute starts -> ACTIVE    p50 {statistics.median(s[1] for s in stages) * 1000:.0f} ms "
                "(conductor calls, spawn)"
            )
        spent = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
        total = sum(spent.values())
        print(
            f"CPU per boot           {total / max(1, len(active)) * 1000:.1f} ms in all: "
            + ", ".join(
                f"{name} {value / max(1, len(active)) * 1000:.1f}"
                for name, value in sorted(spent.items(), key=lambda kv: -kv[1])
            )
        )
        print(f"compute hosts          {args.k} fake, separate processes; bus RabbitMQ, database MariaDB")
    finally:
        await cloud.stop()


def _cpu_times(cloud) -> dict[str, float]:
    """CPU seconds used so far by each process of the run (this one is the API side)."""
    import resource
    import subprocess

    usage = resource.getrusage(resource.RUSAGE_SELF)
    times = {"api (this process)": usage.ru_utime + usage.ru_stime}
    tick = os.sysconf("SC_CLK_TCK")

    def read(pid):
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    for name, proc in cloud.processes.items():
        times[name] = read(proc.pid)
    for name, pattern in (("rabbitmq", "beam.smp"), ("mariadb", "mariadbd")):
        pids = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
        if pids:
            times[name] = sum(read(pid) for pid in pids)
    return times


def _stages(session, uuids):
    """(request -> compute's build event start, event start -> launched) per instance, in seconds."""
    import sqlalchemy as sa

    from nova_twisted.db.models import Instance, InstanceAction, InstanceActionEvent

    rows = session.execute(
        sa.select(Instance.created_at, InstanceActionEvent.start_time, Instance.launched_at)
        .join(InstanceAction, InstanceAction.instance_uuid == Instance.uuid)
        .join(InstanceActionEvent, InstanceActionEvent.action_id == InstanceAction.id)
        .where(Instance.uuid.in_(uuids), InstanceActionEvent.event == "compute_build_and_run_instance")
    )
    return [((s - c).total_seconds(), (launched - s).total_seconds()) for c, s, launched in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="servers to boot (default 1000)")
    parser.add_argument("-k", type=int, default=3, help="fake compute hosts (default 3)")
    parser.add_argument("--rate", type=float, default=60.0, help="boots offered per second (default 60)")
    args = parser.parse_args()
    from twisted.internet import defer, task

    task.react(lambda reactor: defer.ensureDeferred(run(reactor, args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
