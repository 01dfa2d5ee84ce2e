"""The compute-core scenarios, written once and run against each kind of cloud.

A subclass provides ``make_cloud()`` (in one process on the in-memory bus
and SQLite, or as separate twistd processes on RabbitMQ and MariaDB) and
the mixin drives ``compute/api.py`` directly.
"""

from __future__ import annotations

import time

from twisted.internet import defer, reactor, task

from nova_twisted import exception
from nova_twisted.compute import states
from tests.compute.cloud import user_context

ADMIN = user_context(project="admin-project", user="admin", admin=True)


def d(coro):
    return defer.ensureDeferred(coro)


async def sleep(seconds):
    await task.deferLater(reactor, seconds, lambda: None)


def assert_passes_through(test, seen, expected, what, required=0):
    """``seen`` must start and end as ``expected`` and visit only its states, in its order.

    States shorter than the polling interval may be missed; ``required``
    says how many must all have been seen (the fake driver's action_delay
    makes the middle ones last long enough to be).
    """
    test.assertEqual(seen[0], expected[0], f"{what}: started in {seen[0]}, not {expected[0]} ({seen})")
    test.assertEqual(seen[-1], expected[-1], f"{what}: ended in {seen[-1]} ({seen})")
    position = 0
    for state in seen:
        test.assertIn(state, expected[position:], f"{what}: unexpected or out-of-order state {state} in {seen}")
        position = expected.index(state, position)
    test.assertGreaterEqual(len(seen), required, f"{what}: only saw {seen}")


class StateRecorder:
    """Polls an instance and keeps every distinct (vm_state, task_state, power_state) it passes."""

    def __init__(self, cloud, uuid, interval=0.02):
        self.cloud, self.uuid, self.interval = cloud, uuid, interval
        self.seen: list[tuple] = []

    def note(self, inst) -> None:
        state = (inst["vm_state"], inst["task_state"], inst["power_state"])
        if not self.seen or self.seen[-1] != state:
            self.seen.append(state)

    async def until(self, final, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            inst = await self.cloud.api.get(ADMIN, self.uuid, read_deleted="yes")
            self.note(inst)
            if self.seen[-1] == final:
                return self.seen
            await sleep(self.interval)
        raise AssertionError(f"{self.uuid} never reached {final}; passed through {self.seen}")


class ComputeScenarios:
    """Mixin: needs ``self.cloud`` (started) from the subclass's setUp."""

    timeout = 120

    async def boot(self, ctxt=None, name="vm", flavor="1", **kwargs):
        ctxt = ctxt or user_context()
        created, _ = await self.cloud.api.create(ctxt, flavor, self.image_id, name, **kwargs)
        return created

    async def boot_active(self, ctxt=None, **kwargs):
        created = await self.boot(ctxt, **kwargs)
        return [await self.cloud.wait_status(i["uuid"], states.ACTIVE) for i in created]

    # -- scheduling ---------------------------------------------------------------------
    def test_concurrent_boots_all_become_active_and_never_oversubscribe_a_host(self):
        async def run():
            # Each host takes exactly 10 m1.tiny (512 MiB): 30 concurrent boots fill the cloud.
            results = await defer.gatherResults([d(self.boot(name=f"c{i}")) for i in range(30)], consumeErrors=True)
            uuids = [created[0]["uuid"] for created in results]
            active = await defer.gatherResults([d(self.cloud.wait_status(u, states.ACTIVE, timeout=60)) for u in uuids])
            self.assertEqual(len({i["uuid"] for i in active}), 30)
            usage = await self.cloud.usage()
            for host, figures in usage.items():
                for rc, used in figures["used"].items():
                    self.assertLessEqual(used, figures["capacity"][rc], f"{host} is oversubscribed on {rc}")
            self.assertEqual(sorted(f["used"]["MEMORY_MB"] for f in usage.values()), [5120, 5120, 5120])
            # The cloud is full: one more gets ERROR with a fault naming the filter.
            extra = (await self.boot(name="one-too-many"))[0]
            failed = await self.cloud.wait_status(extra["uuid"], states.ERROR)
            faults = await self.cloud.api.faults([failed["uuid"]])
            self.assertIn("No valid host was found", faults[failed["uuid"]]["message"])
            self.assertIn("RamFilter removed 3 of 3", faults[failed["uuid"]]["message"])

        return d(run())

    def test_affinity_group_puts_every_member_on_one_host(self):
        async def run():
            ctxt = user_context()
            group = await self.cloud.create_group(ctxt, "together", "affinity")
            members = await self.boot_active(ctxt, min_count=3, max_count=3, server_group=group["uuid"])
            self.assertEqual(len({m["host"] for m in members}), 1, [m["host"] for m in members])

        return d(run())

    def test_anti_affinity_group_spreads_members_and_refuses_one_more_than_hosts(self):
        async def run():
            ctxt = user_context()
            group = await self.cloud.create_group(ctxt, "apart", "anti-affinity")
            created = await defer.gatherResults(
                [d(self.boot(ctxt, name=f"a{i}", server_group=group["uuid"])) for i in range(3)]
            )
            members = [await self.cloud.wait_status(c[0]["uuid"], states.ACTIVE) for c in created]
            self.assertEqual(len({m["host"] for m in members}), 3, [m["host"] for m in members])
            fourth = (await self.boot(ctxt, name="a3", server_group=group["uuid"]))[0]
            failed = await self.cloud.wait_status(fourth["uuid"], states.ERROR)
            fault = (await self.cloud.api.faults([failed["uuid"]]))[failed["uuid"]]
            self.assertIn("ServerGroupAntiAffinityFilter removed", fault["message"])

        return d(run())

    def test_a_spawn_failure_is_rescheduled_to_another_host(self):
        async def run():
            # compute-1 fails every spawn of a server named "flaky*"; the others don't.
            created = (await self.boot(ADMIN, name="flaky", availability_zone=None))[0]
            inst = await self.cloud.wait_status(created["uuid"], states.ACTIVE)
            self.assertNotEqual(inst["host"], "compute-1")
            usage = await self.cloud.usage()
            self.assertEqual(sum(f["instances"] for f in usage.values()), 1, "the failed host's claim was released")
            faults = await self.cloud.api.faults([inst["uuid"]])
            self.assertIn("rescheduling", faults[inst["uuid"]]["message"])

        return self._with_failing_host("compute-1", "^flaky", run)

    def test_a_build_failing_on_every_host_ends_in_error_with_a_fault(self):
        async def run():
            created = (await self.boot(metadata={"fake_driver:fail_spawn": "true"}))[0]
            inst = await self.cloud.wait_status(created["uuid"], states.ERROR)
            fault = (await self.cloud.api.faults([inst["uuid"]]))[inst["uuid"]]
            self.assertIn("fake spawn failure injected", fault["message"])
            usage = await self.cloud.usage()
            self.assertEqual(sum(f["instances"] for f in usage.values()), 0, "no claim may be left behind")

        return d(run())

    # -- lifecycle --------------------------------------------------------------------------
    def test_every_lifecycle_action_walks_through_the_right_states(self):
        api = self.cloud.api
        run_ = states.RUNNING

        async def step(uuid, action, first, final, *args):
            inst = await api.get(ADMIN, uuid)
            await getattr(api, action)(user_context(), inst, *args)
            recorder = StateRecorder(self.cloud, uuid)
            recorder.note(await api.get(ADMIN, uuid))
            return await recorder.until(final)

        async def run():
            inst = (await self.boot_active(ADMIN, availability_zone="nova:compute-1"))[0]
            uuid = inst["uuid"]
            self.assertEqual((inst["vm_state"], inst["task_state"], inst["power_state"]), ("active", None, run_))
            expected = [
                ("reboot", [("active", "rebooting", run_), ("active", None, run_)], "SOFT"),
                ("reboot", [("active", "rebooting_hard", run_), ("active", None, run_)], "HARD"),
                ("stop", [("active", "powering-off", run_), ("stopped", None, states.SHUTDOWN)]),
                ("start", [("stopped", "powering-on", states.SHUTDOWN), ("active", None, run_)]),
                ("pause", [("active", "pausing", run_), ("paused", None, states.PAUSED)]),
                ("unpause", [("paused", "unpausing", states.PAUSED), ("active", None, run_)]),
                ("suspend", [("active", "suspending", run_), ("suspended", None, states.SUSPENDED)]),
                ("resume", [("suspended", "resuming", states.SUSPENDED), ("active", None, run_)]),
                (
                    "resize",
                    [("active", "resize_prep", run_), ("active", "resize_migrating", run_), ("resized", None, run_)],
                    "2",
                ),
                ("confirm_resize", [("resized", "resize_confirming", run_), ("active", None, run_)]),
                (
                    "resize",
                    [("active", "resize_prep", run_), ("active", "resize_migrating", run_), ("resized", None, run_)],
                    "5",
                ),
                ("revert_resize", [("resized", "resize_reverting", run_), ("active", None, run_)]),
                (
                    "rebuild",
                    [("active", "rebuilding", run_), ("active", "rebuild_spawning", run_), ("active", None, run_)],
                    self.image_id,
                ),
            ]
            for action, sequence, *args in expected:
                seen = await step(uuid, action, sequence[0], sequence[-1], *args)
                assert_passes_through(self, seen, sequence, f"{action} {args}")
            final = await api.get(ADMIN, uuid)
            self.assertEqual(final["flavor"]["flavorid"], "2", "resize to 2 was confirmed, to 3 reverted")
            actions = await self.cloud.actions(uuid)
            self.assertEqual([a["action"] for a in actions][::-1][:4], ["create", "reboot", "reboot", "stop"])
            self.assertTrue(all(a["message"] is None for a in actions), "no action failed")
            usage = await self.cloud.usage()
            self.assertEqual(
                sum(f["used"]["MEMORY_MB"] for f in usage.values()),
                2048,
                "after confirm + revert only flavor 2's RAM is allocated",
            )

        return d(run())

    def test_snapshot_becomes_an_active_image_and_boots_a_new_server(self):
        async def run():
            inst = (await self.boot_active(user_context(admin=True), availability_zone="nova:compute-1"))[0]
            image = await self.cloud.api.snapshot(user_context(), inst, "snap-1")
            self.assertIn(image["status"], ("queued", "saving"))
            recorder = StateRecorder(self.cloud, inst["uuid"])
            recorder.note(await self.cloud.api.get(ADMIN, inst["uuid"]))
            seen = await recorder.until(("active", None, states.RUNNING))
            run_ = states.RUNNING
            assert_passes_through(
                self,
                seen,
                [
                    ("active", "image_snapshot", run_),
                    ("active", "image_pending_upload", run_),
                    ("active", "image_uploading", run_),
                    ("active", None, run_),
                ],
                "snapshot",
                required=4,
            )
            snap = await self.cloud.wait_image(user_context(), image["id"], "active")
            self.assertGreater(snap["size"], 0)
            self.assertEqual(snap["instance_uuid"], inst["uuid"])
            created, _ = await self.cloud.api.create(user_context(), "1", image["id"], "from-snapshot")
            await self.cloud.wait_status(created[0]["uuid"], states.ACTIVE)

        return d(run())

    def test_actions_that_do_not_fit_the_state_are_refused_and_change_nothing(self):
        async def run():
            inst = (await self.boot_active())[0]
            api = self.cloud.api
            await api.stop(user_context(), inst)
            inst = await self.cloud.wait_status(inst["uuid"], states.STOPPED)
            for action in ("pause", "suspend", "stop", "resume", "unpause", "confirm_resize"):
                with self.assertRaises(exception.InstanceInvalidState, msg=action):
                    await getattr(api, action)(user_context(), inst)
            with self.assertRaises(exception.InstanceInvalidState):
                await api.reboot(user_context(), inst, "SOFT")
            after = await api.get(ADMIN, inst["uuid"])
            self.assertEqual((after["vm_state"], after["task_state"]), ("stopped", None))
            await api.lock(user_context(), after)
            with self.assertRaises(exception.InstanceIsLocked):
                await api.start(user_context(), await api.get(ADMIN, inst["uuid"]))

        return d(run())

    def test_deleting_releases_resources_and_is_idempotent(self):
        async def run():
            members = await self.boot_active(min_count=2, max_count=2)
            usage = await self.cloud.usage()
            self.assertEqual(sum(f["used"]["MEMORY_MB"] for f in usage.values()), 1024)
            for inst in members:
                await self.cloud.api.delete(user_context(), inst)
            for inst in members:
                gone = await self.cloud.wait_for(inst["uuid"], lambda i: i["deleted"] != 0)
                self.assertEqual(gone["vm_state"], "deleted")
                with self.assertRaises(exception.InstanceNotFound):
                    await self.cloud.api.get(user_context(), inst["uuid"])
            usage = await self.cloud.usage()
            self.assertEqual(sum(sum(f["used"].values()) for f in usage.values()), 0)
            self.assertEqual(await self.cloud.guests(), set(), "no guest may be left on any hypervisor")

        return d(run())

    def test_deleting_a_server_that_is_still_building_leaves_nothing(self):
        async def run():
            created = (await self.boot(ADMIN, name="slow", availability_zone="nova:compute-3"))[0]
            await self.cloud.wait_for(created["uuid"], lambda i: i["task_state"] == states.SPAWNING)
            await self.cloud.api.delete(ADMIN, await self.cloud.api.get(ADMIN, created["uuid"]))
            await self.cloud.wait_for(created["uuid"], lambda i: i["deleted"] != 0, timeout=30)
            await sleep(self.cloud.slow_spawn + 0.5)
            usage = await self.cloud.usage()
            self.assertEqual(sum(sum(f["used"].values()) for f in usage.values()), 0)
            self.assertEqual(await self.cloud.guests(), set())

        return d(run())

    # -- failures of compute itself -------------------------------------------------------------
    def test_a_compute_dying_mid_build_gets_its_instance_rescheduled(self):
        async def run():
            # Only compute-3 is enabled while the server is placed (a forced host would not be rescheduled).
            await self.cloud.set_enabled(["compute-1", "compute-2"], False)
            created = (await self.boot(ADMIN, name="orphan"))[0]
            await self.cloud.wait_for(created["uuid"], lambda i: i["task_state"] == states.SPAWNING)
            await self.cloud.set_enabled(["compute-1", "compute-2"], True)
            await self.cloud.kill_compute("compute-3")
            inst = await self.cloud.wait_status(created["uuid"], states.ACTIVE, timeout=60)
            self.assertIn(inst["host"], ("compute-1", "compute-2"))
            fault = (await self.cloud.api.faults([inst["uuid"]]))[inst["uuid"]]
            self.assertIn("compute-3 went down", fault["message"])
            usage = await self.cloud.usage()
            self.assertEqual(usage["compute-3"]["instances"], 0, "the dead host's claim was released")

        return d(run())

    def test_a_compute_restarted_mid_task_reconciles_its_instances(self):
        async def run():
            ready = (await self.boot(ADMIN, name="steady", availability_zone="nova:compute-3"))[0]
            ready = await self.cloud.wait_status(ready["uuid"], states.ACTIVE, timeout=60)
            building = (await self.boot(ADMIN, name="interrupted", availability_zone="nova:compute-3"))[0]
            await self.cloud.wait_for(building["uuid"], lambda i: i["task_state"] == states.SPAWNING)
            await self.cloud.api.reboot(ADMIN, ready, "SOFT")
            await self.cloud.wait_for(ready["uuid"], lambda i: i["task_state"] == states.REBOOTING)
            # Both the build and the reboot are in the middle of their (slow) driver calls now.
            await self.cloud.kill_compute("compute-3")
            await self.cloud.restart_compute("compute-3")
            failed = await self.cloud.wait_status(building["uuid"], states.ERROR, timeout=30)
            fault = (await self.cloud.api.faults([failed["uuid"]]))[failed["uuid"]]
            self.assertIn("restarted while the server was being built", fault["message"])
            steady = await self.cloud.wait_status(ready["uuid"], states.ACTIVE, timeout=30)
            self.assertEqual(steady["power_state"], states.RUNNING)
            self.assertEqual(steady["host"], "compute-3")

        return d(run())

    def _with_failing_host(self, host, pattern, body):
        async def run():
            await self.cloud.stop_compute(host)
            await self.cloud.restart_compute(host, {("fake_driver", "fail_spawn"): pattern})
            await body()

        return d(run())
