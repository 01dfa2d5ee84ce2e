"""nova-scheduler: choose a host for each server, claim it, hand the build to compute.

Decisions run on an in-memory :class:`HostTable` (filters and weighers are
vector operations); the claim that follows is one database transaction
that re-checks everything against the real usage, so a stale picture can
only make a claim fail and the next-best host be tried, never oversubscribe.
"""

from __future__ import annotations

import random

import numpy as np
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from nova_twisted import exception, utils
from nova_twisted.compute import states
from nova_twisted.db import actions, instances, placement, server_groups
from nova_twisted.rpc import Manager
from nova_twisted.scheduler.host_state import HostTable

log = Logger(namespace="nova.scheduler.manager")

#: How many candidate hosts one server's claim walks through before giving up.
MAX_CLAIM_TRIES = 20


def load_plugins(names, interface):
    """Return the plugins named in ``names`` (in that order); ConfigurationError for unknown names."""
    from twisted.plugin import getPlugins

    import plugins

    found = {p.name: p for p in getPlugins(interface, plugins)}
    missing = [n for n in names if n not in found]
    if missing:
        raise exception.ConfigurationError(
            reason=f"[scheduler] no plugin named {', '.join(missing)} (have: {', '.join(sorted(found))})"
        )
    return [found[n] for n in names]


class HostSelector:
    """Filters then weighs a HostTable for one server; pure, no I/O."""

    def __init__(self, filters, weighers, conf, rng=random.random):
        self.filters = filters
        self.weighers = weighers
        self.conf = conf
        self.rng = rng

    def select(self, table: HostTable, spec: dict):
        """Return (candidate indices best first, [(filter name, removed, of)])."""
        mask = np.ones(len(table), dtype=bool)
        report = []
        for f in self.filters:
            before = int(mask.sum())
            mask &= f.filter(table, spec, self.conf)
            after = int(mask.sum())
            report.append((f.name, before - after, before))
            if after == 0:
                break
        candidates = np.flatnonzero(mask)
        if len(candidates) == 0:
            return candidates, report
        total = np.zeros(len(candidates))
        for w in self.weighers:
            raw, multiplier = w.weigh(table, spec, self.conf, candidates)
            if not multiplier:
                continue
            low, high = float(raw.min()), float(raw.max())
            if high > low:
                total += multiplier * (raw - low) / (high - low)
        order = np.argsort(-total, kind="stable")
        ranked = candidates[order]
        subset = min(self.conf.scheduler.host_subset_size, len(ranked))
        if subset > 1:
            pick = int(self.rng() * subset)
            ranked = np.concatenate([ranked[pick : pick + 1], np.delete(ranked, pick)])
        return ranked, report


def _claim_and_read(session, node_id, uuid, resources, now, group):
    """Claim on the node and read the instance back, in one transaction (one round trip per boot)."""
    placed = placement.claim_for_instance(session, node_id, uuid, resources, now, states.SCHEDULING, group)
    return placed, instances.get(session, uuid)


def no_valid_host_reason(report) -> str:
    removed = ", ".join(f"{name} removed {gone} of {of}" for name, gone, of in report if gone)
    if not report:
        return "There are not enough hosts available: no compute hosts are known."
    return f"There are not enough hosts available. {removed}." if removed else "There are not enough hosts available."


class SchedulerManager(Manager):
    """Serves topic ``scheduler``."""

    RPC_API_VERSION = "1.0"

    def __init__(self, database, clock, conf, compute_rpcapi):
        from nova_twisted.scheduler.interfaces import IHostWeigher, ISchedulerFilter

        self.database = database
        self.clock = clock
        self.conf = conf
        self.compute_rpcapi = compute_rpcapi
        self.selector = HostSelector(
            load_plugins(conf.scheduler.enabled_filters, ISchedulerFilter),
            load_plugins(conf.scheduler.weighers, IHostWeigher),
            conf,
        )
        self.table: HostTable | None = None
        self._table_time = -1e18
        self._refreshing = False
        self._waiters: list[defer.Deferred] = []

    # -- host states -------------------------------------------------------------------------
    async def host_table(self, force: bool = False) -> HostTable:
        """Return the current picture, reading the database when it is stale.

        Concurrent requests for a refresh share one database read.
        """
        age = self.clock.seconds() - self._table_time
        if self.table is not None and not force and age < self.conf.scheduler.host_state_refresh_interval:
            return self.table
        waiter = defer.Deferred()
        self._waiters.append(waiter)
        if not self._refreshing:
            self._refreshing = True
            defer.ensureDeferred(self._refresh()).addBoth(self._refreshed)
        return await waiter

    async def _refresh(self) -> HostTable:
        started = self.clock.seconds()
        host_states = await self.database.run(placement.host_states)
        table = HostTable(host_states, utils.utcnow(self.clock), self.conf.DEFAULT.service_down_time)
        self.table = table
        self._table_time = started
        return table

    def _refreshed(self, result):
        self._refreshing = False
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)
        return None

    # -- RPC -----------------------------------------------------------------------------------
    def schedule_and_build(self, ctxt, request_spec, instance_uuids, attempt=1, tried_hosts=()):
        """Place each instance of ``request_spec`` and cast its build to the chosen compute."""
        return defer.ensureDeferred(
            self._schedule(ctxt, request_spec, list(instance_uuids), attempt, list(tried_hosts))
        )

    async def _schedule(self, ctxt, request_spec, instance_uuids, attempt, tried_hosts):
        spec = dict(request_spec)
        spec["tried_hosts"] = tried_hosts
        hints = spec.get("scheduler_hints") or {}
        hint_hosts = {}
        for hint in ("same_host", "different_host"):
            if hints.get(hint):
                uuids = hints[hint] if isinstance(hints[hint], list) else [hints[hint]]
                found = await self.database.run(
                    instances.list_instances, {"uuids": uuids}, None, None, None, None, False
                )
                hint_hosts[hint] = [i["host"] for i in found if i["host"]]
        spec["hint_hosts"] = hint_hosts
        resources = placement.flavor_resources(spec["flavor"])
        for uuid in instance_uuids:
            await self._schedule_one(ctxt, spec, request_spec, uuid, resources, attempt, tried_hosts)

    async def _schedule_one(self, ctxt, spec, request_spec, uuid, resources, attempt, tried_hosts):
        group = spec.get("group")
        if group:
            group = dict(group)
            group["hosts"] = await self.database.run(server_groups.member_hosts, group["uuid"], uuid)
            spec = {**spec, "group": group}
        table = await self.host_table()
        for round_ in range(2):
            candidates, report = self.selector.select(table, spec)
            for i in candidates[:MAX_CLAIM_TRIES]:
                node_id = int(table.node_ids[i])
                try:
                    placed, instance = await self.database.run(
                        _claim_and_read, node_id, uuid, resources, utils.utcnow(self.clock), group
                    )
                except exception.ClaimFailed as exc:
                    log.info(
                        "claim for {uuid} on {node} failed: {error}",
                        uuid=uuid,
                        node=table.nodenames[i],
                        error=exc,
                        ctxt=ctxt,
                    )
                    table.set_free(int(i), {rc: 0 for rc in resources})  # don't pick it again from this picture
                    continue
                except (exception.InstanceNotFound, exception.UnexpectedTaskState) as exc:
                    log.info("not scheduling {uuid}: {error}", uuid=uuid, error=exc, ctxt=ctxt)
                    await self.database.run(placement.release, uuid)
                    return
                table.consume(int(i), resources)
                log.info("scheduled {uuid} to {host}", uuid=uuid, host=placed["host"], ctxt=ctxt)
                await self.compute_rpcapi.build_and_run_instance(
                    ctxt, placed["host"], instance, request_spec, attempt, tried_hosts
                )
                return
            if round_ == 0:
                table = await self.host_table(force=True)  # the picture may be stale: look again once
        await self._no_valid_host(ctxt, uuid, no_valid_host_reason(report))

    # -- periodic: servers stranded on a compute host that went down -----------------------------
    def periodic_tasks(self):
        return [
            ("rescue_stranded_instances", self.rescue_stranded_instances, self.conf.scheduler.stranded_check_interval)
        ]

    def rescue_stranded_instances(self):
        """Reschedule builds (or finish deletes) left on compute hosts that are down."""
        return defer.ensureDeferred(self._rescue_stranded())

    async def _rescue_stranded(self):
        from nova_twisted.context import get_admin_context
        from nova_twisted.db import services

        now = utils.utcnow(self.clock)
        down_time = self.conf.DEFAULT.service_down_time
        computes = await self.database.run(services.list_services, None, "nova-compute")
        down = [s["host"] for s in computes if not services.is_up(s, now, down_time)]
        if not down:
            return
        stranded = await self.database.run(
            instances.list_instances, {"hosts": down}, None, None, ["id"], ["asc"], False
        )
        stale = [
            i
            for i in stranded
            if (i["vm_state"] == states.BUILDING or i["task_state"] == states.DELETING)
            and (now - (i["updated_at"] or i["created_at"])).total_seconds() > down_time
        ]
        if not stale:
            return
        faults = await self.database.run(instances.fault_counts, [i["uuid"] for i in stale])
        for inst in stale:
            ctxt = get_admin_context()
            try:
                await self._rescue_one(ctxt, inst, faults.get(inst["uuid"], 0) + 1, now)
            except exception.NovaError as exc:
                log.warn(
                    "could not rescue {uuid} from {host}: {error}", uuid=inst["uuid"], host=inst["host"], error=exc
                )

    async def _rescue_one(self, ctxt, inst, attempt, now):
        uuid, host = inst["uuid"], inst["host"]
        if inst["task_state"] == states.DELETING:
            log.warn("finishing the delete of {uuid}: its compute host {host} is down", uuid=uuid, host=host)
            await self.database.run(instances.destroy, uuid, now)
            return
        reschedule = attempt < self.conf.scheduler.max_attempts
        message = f"The compute host {host} went down while building the server."
        values = (
            {"task_state": states.SCHEDULING, "host": None, "node": None}
            if reschedule
            else {"vm_state": states.ERROR, "task_state": None}
        )

        def work(session):
            placement.release(session, uuid)
            instances.add_fault(session, uuid, 500, message + (" Rescheduling." if reschedule else ""), None, host, now)
            return instances.update(
                session,
                uuid,
                values,
                [states.SCHEDULING, states.SPAWNING, states.NETWORKING, states.BLOCK_DEVICE_MAPPING],
                [states.BUILDING],
                now,
            )

        try:
            await self.database.run(work)
        except (exception.UnexpectedTaskState, exception.InstanceNotFound):
            return
        log.warn(
            "{uuid} was stranded on down host {host}: {what}",
            uuid=uuid,
            host=host,
            what="rescheduling" if reschedule else "ERROR",
        )
        if reschedule:
            spec = await self.database.run(instances.get_request_spec, uuid)
            await self._schedule(ctxt, spec, [uuid], attempt, [host])

    async def _no_valid_host(self, ctxt, uuid, reason):
        log.warn("no valid host for {uuid}: {reason}", uuid=uuid, reason=reason, ctxt=ctxt)
        error = exception.NoValidHost(reason=reason)
        now = utils.utcnow(self.clock)

        def work(session):
            instances.add_fault(session, uuid, 500, error.message, None, None, now)
            actions.event_finish(session, uuid, ctxt.request_id, "schedule_instances", "Error", None, now)
            return instances.update(session, uuid, {"vm_state": states.ERROR, "task_state": None}, now=now)

        try:
            await self.database.run(work)
        except exception.InstanceNotFound:
            pass
