"""nova-compute's RPC methods: the hypervisor work for one host.

Compute never touches the database: every read and write goes through
conductor (a test enforces that this package does not import
``nova_twisted.db``). Operations on one instance run one at a time (a lock
per instance); builds share a bounded number of slots. A message delivered
twice (after a crash) finds the instance's state already moved on and is
dropped or resumed, never applied twice.
"""

from __future__ import annotations

import math
import traceback

from twisted.internet import defer
from twisted.logger import Logger

from nova_twisted import exception, utils
from nova_twisted.compute import states
from nova_twisted.rpc import Manager

log = Logger(namespace="nova.compute.manager")

#: task_states that mean "an action was in progress" when compute restarts.
_INTERRUPTIBLE = {
    states.REBOOTING,
    states.REBOOT_PENDING,
    states.REBOOT_STARTED,
    states.REBOOTING_HARD,
    states.REBOOT_PENDING_HARD,
    states.REBOOT_STARTED_HARD,
    states.POWERING_OFF,
    states.POWERING_ON,
    states.PAUSING,
    states.UNPAUSING,
    states.SUSPENDING,
    states.RESUMING,
    states.IMAGE_SNAPSHOT,
    states.IMAGE_SNAPSHOT_PENDING,
    states.IMAGE_PENDING_UPLOAD,
    states.IMAGE_UPLOADING,
}
_VM_STATE_FOR_POWER = {
    states.RUNNING: states.ACTIVE,
    states.PAUSED: states.PAUSED_VM,
    states.SUSPENDED: states.SUSPENDED_VM,
    states.SHUTDOWN: states.STOPPED,
    states.CRASHED: states.STOPPED,
}


def _fault(exc: BaseException, include_details: bool = True) -> dict:
    code = getattr(exc, "code", 500)
    message = str(exc) or type(exc).__name__
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)) if include_details else None
    return {"code": code if isinstance(code, int) else 500, "message": message, "details": details}


class ComputeManager(Manager):
    """Serves ``compute.<host>`` (and the compute fanout)."""

    RPC_API_VERSION = "1.0"
    NOT_RPC = Manager.NOT_RPC | {"handle_driver_event"}

    def __init__(self, driver, conductor, scheduler, image_service, host: str, conf, clock):
        self.driver = driver
        self.conductor = conductor
        self.scheduler = scheduler
        self.image_service = image_service
        self.host = host
        self.conf = conf
        self.clock = clock
        self.max_attempts = conf.scheduler.max_attempts if hasattr(conf, "scheduler") else 3
        self._locks: dict[str, defer.DeferredLock] = {}
        self._builds = defer.DeferredSemaphore(conf.compute.max_concurrent_builds)
        self.nodename = host

    # -- helpers -----------------------------------------------------------------------
    def _lock(self, uuid: str) -> defer.DeferredLock:
        lock = self._locks.get(uuid)
        if lock is None:
            lock = self._locks[uuid] = defer.DeferredLock()
        return lock

    async def _locked(self, uuid: str, fn):
        lock = self._lock(uuid)
        await lock.acquire()
        try:
            return await fn()
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(uuid, None)

    def _event(self, ctxt, name: str, phase: str, result: str = "Success", tb: str | None = None) -> dict:
        return {
            "request_id": ctxt.request_id,
            "event": name,
            "phase": phase,
            "result": result,
            "traceback": tb,
            "host": self.host,
        }

    async def _power_state(self, instance: dict) -> int:
        try:
            info = await self.driver.get_info(instance)
        except exception.InstanceNotFound:
            return states.NOSTATE
        return info["state"]

    # -- start-up ----------------------------------------------------------------------
    async def _init_host(self):
        await self.driver.init_host(self.host)
        self.driver.register_event_listener(self.handle_driver_event)
        await self.update_available_resource()
        await self._reconcile()

    def init_host(self):
        return defer.ensureDeferred(self._init_host())

    def cleanup_host(self):
        return self.driver.cleanup_host()

    async def _reconcile(self):
        """Finish or fail what was in progress when this compute stopped; drop orphans."""
        from nova_twisted.context import get_admin_context

        ctxt = get_admin_context()
        instances = await self.conductor.instances_on_host(ctxt, self.host)
        known = {inst["uuid"] for inst in instances}
        for inst in instances:
            try:
                await self._locked(inst["uuid"], lambda inst=inst: self._reconcile_one(ctxt, inst))
            except Exception as exc:  # noqa: BLE001 - one bad instance must not stop the others
                log.error("reconciling {uuid} failed: {error!r}", uuid=inst["uuid"], error=exc)
        for uuid in await self.driver.list_instances():
            if uuid not in known:
                log.warn("destroying orphan guest {uuid}: no live instance owns it here", uuid=uuid)
                await self.driver.destroy(ctxt, {"uuid": uuid, "name": uuid, "host": self.host})

    async def _reconcile_one(self, ctxt, inst):
        uuid, task, vm_state = inst["uuid"], inst["task_state"], inst["vm_state"]
        power = await self._power_state(inst)
        if task == states.DELETING:
            log.info("finishing the delete of {uuid} interrupted by a restart", uuid=uuid)
            await self.driver.destroy(ctxt, inst)
            await self.conductor.instance_destroy(ctxt, uuid)
            return
        if vm_state == states.BUILDING:
            if power == states.RUNNING:
                await self.conductor.instance_update(
                    ctxt,
                    uuid,
                    {
                        "vm_state": states.ACTIVE,
                        "task_state": None,
                        "power_state": power,
                        "launched_at": utils.utcnow(self.clock),
                    },
                )
            else:
                await self.driver.destroy(ctxt, inst)
                await self.conductor.build_failed(
                    ctxt,
                    uuid,
                    {
                        "code": 500,
                        "message": "The compute service restarted while the server was "
                        "being built; the build did not finish.",
                    },
                    reschedule=False,
                    host=self.host,
                )
            return
        if task is not None and task.startswith("resize"):
            migration = await self.conductor.migration_get(ctxt, uuid, ["pre-migrating", "migrating", "post-migrating"])
            old = inst.get("old_flavor") or inst["flavor"]
            if power != states.NOSTATE:
                await self.driver.revert_resize(ctxt, inst, old)
            values = {"vm_state": states.ERROR, "task_state": None, "power_state": await self._power_state(inst)}
            fault = {"code": 500, "message": "The compute service restarted during a resize; it was rolled back."}
            if migration:
                await self.conductor.resize_failed(ctxt, uuid, migration["uuid"], values, fault, host=self.host)
            else:
                await self.conductor.instance_update(ctxt, uuid, values)
            return
        if task in _INTERRUPTIBLE or task in (states.REBUILDING, states.REBUILD_SPAWNING):
            if power == states.NOSTATE:
                values = {"vm_state": states.ERROR, "task_state": None, "power_state": power}
                await self.conductor.instance_fault_create(
                    ctxt,
                    uuid,
                    500,
                    f"The compute service restarted during {task} and the guest is gone.",
                    host=self.host,
                )
            else:
                values = {
                    "vm_state": _VM_STATE_FOR_POWER.get(power, states.ERROR),
                    "task_state": None,
                    "power_state": power,
                }
            log.info(
                "instance {uuid}: {task} was interrupted by a restart, now {vm}",
                uuid=uuid,
                task=task,
                vm=values["vm_state"],
            )
            await self.conductor.instance_update(ctxt, uuid, values)
            return
        if (
            vm_state == states.ACTIVE
            and power == states.SHUTDOWN
            and self.conf.compute.resume_guests_state_on_host_boot
        ):
            await self.driver.power_on(ctxt, inst)
            power = await self._power_state(inst)
        if power != inst["power_state"]:
            await self._sync_one(ctxt, inst, power)

    # -- periodic tasks ----------------------------------------------------------------
    def periodic_tasks(self):
        tasks = [
            ("update_available_resource", self.update_available_resource, self.conf.compute.update_resources_interval),
            ("sync_power_states", self.sync_power_states, self.conf.compute.sync_power_state_interval),
        ]
        manage_cache = getattr(self.driver, "manage_image_cache", None)
        if manage_cache is not None:
            interval = getattr(self.driver, "image_cache_interval", 600)
            tasks.append(("manage_image_cache", self._manage_image_cache, interval))
        return tasks

    async def _manage_image_cache(self):
        from nova_twisted.context import get_admin_context

        ctxt = get_admin_context()
        instances = await self.conductor.instances_on_host(ctxt, self.host)
        await self.driver.manage_image_cache(ctxt, instances)

    def update_available_resource(self):
        return defer.ensureDeferred(self._update_available_resource())

    async def _update_available_resource(self):
        from nova_twisted.context import get_admin_context

        resources = await self.driver.get_available_resource()
        c = self.conf.compute
        resources.setdefault("availability_zone", c.availability_zone)
        resources.setdefault("host_ip", self.conf.DEFAULT.my_ip)
        self.nodename = resources.get("hypervisor_hostname") or self.host
        inventory = {
            "VCPU": {
                "total": resources["vcpus"],
                "reserved": c.reserved_host_cpus,
                "allocation_ratio": c.cpu_allocation_ratio,
                "max_unit": resources["vcpus"],
            },
            "MEMORY_MB": {
                "total": resources["memory_mb"],
                "reserved": c.reserved_host_memory_mb,
                "allocation_ratio": c.ram_allocation_ratio,
                "max_unit": resources["memory_mb"],
            },
            "DISK_GB": {
                "total": resources["local_gb"],
                "reserved": math.ceil(c.reserved_host_disk_mb / 1024),
                "allocation_ratio": c.disk_allocation_ratio,
                "max_unit": resources["local_gb"],
            },
        }
        await self.conductor.compute_node_update(get_admin_context(), self.host, self.nodename, resources, inventory)

    def sync_power_states(self):
        return defer.ensureDeferred(self._sync_power_states())

    async def _sync_power_states(self):
        from nova_twisted.context import get_admin_context

        ctxt = get_admin_context()
        for inst in await self.conductor.instances_on_host(ctxt, self.host):
            if inst["task_state"] is not None:
                continue  # an action is in progress; it sets the states itself

            async def sync(inst=inst):
                current = await self.conductor.instance_get(ctxt, inst["uuid"])
                if current["task_state"] is None and current["host"] == self.host:
                    await self._sync_one(ctxt, current, await self._power_state(current))

            try:
                await self._locked(inst["uuid"], sync)
            except exception.InstanceNotFound:
                pass

    async def _sync_one(self, ctxt, inst: dict, power: int) -> None:
        """Bring the database in line with the hypervisor's power state, as Nova does."""
        values: dict = {}
        if power != inst["power_state"]:
            values["power_state"] = power
        vm_state = inst["vm_state"]
        if vm_state == states.ACTIVE and power in (states.SHUTDOWN, states.CRASHED, states.NOSTATE):
            values["vm_state"] = states.STOPPED  # the guest shut itself down: SHUTOFF, as Nova shows it
        elif vm_state == states.STOPPED and power == states.RUNNING:
            await self.driver.power_off(inst, 0)
            values["power_state"] = await self._power_state(inst)
        if values.get("power_state") == inst["power_state"]:
            values.pop("power_state")
        if values:
            log.info(
                "instance {uuid}: hypervisor says {power}, updating {values}",
                uuid=inst["uuid"],
                power=states.POWER_STATE_NAMES.get(power, power),
                values=values,
            )
            try:
                await self.conductor.instance_update(ctxt, inst["uuid"], values, expected_task_state=None)
            except (exception.UnexpectedTaskState, exception.InstanceNotFound):
                pass  # an action started meanwhile; it will set the states

    def handle_driver_event(self, uuid: str, power_state: int) -> None:
        """A guest changed power state on its own: sync that instance now."""
        from nova_twisted.context import get_admin_context

        ctxt = get_admin_context()

        async def sync():
            try:
                inst = await self.conductor.instance_get(ctxt, uuid)
            except exception.InstanceNotFound:
                return
            if inst["host"] == self.host and inst["task_state"] is None:
                await self._sync_one(ctxt, inst, await self._power_state(inst))

        d = defer.ensureDeferred(self._locked(uuid, sync))
        d.addErrback(lambda f: log.failure("syncing {uuid} after a driver event failed", f, uuid=uuid))

    # -- build and delete ---------------------------------------------------------------
    def build_and_run_instance(self, ctxt, instance, request_spec, attempt=1, tried_hosts=()):
        uuid = instance["uuid"]

        async def build():
            await self._builds.acquire()
            try:
                await self._locked(uuid, lambda: self._build(ctxt, instance, request_spec, attempt, list(tried_hosts)))
            finally:
                self._builds.release()

        return defer.ensureDeferred(build())

    async def _build(self, ctxt, instance, request_spec, attempt, tried_hosts):
        uuid = instance["uuid"]
        event = "compute_build_and_run_instance"
        try:
            inst = await self.conductor.instance_update(
                ctxt,
                uuid,
                {"task_state": states.SPAWNING, "host": self.host, "node": self.nodename},
                expected_task_state=states.SCHEDULING,
                event=self._event(ctxt, event, "start"),
            )
        except exception.InstanceNotFound:
            log.info("instance {uuid} was deleted before its build started", uuid=uuid, ctxt=ctxt)
            await self.conductor.allocations_release(ctxt, uuid)
            return
        except exception.UnexpectedTaskState:
            inst = await self.conductor.instance_get(ctxt, uuid)
            if not (inst["host"] == self.host and inst["task_state"] == states.SPAWNING):
                log.info("dropping a stale build of {uuid} (now {task})", uuid=uuid, task=inst["task_state"], ctxt=ctxt)
                return
            # The same build delivered again after a restart: carry on from where it was.
            if uuid in await self.driver.list_instances():
                await self.driver.destroy(ctxt, inst)
        try:
            await self.driver.spawn(ctxt, inst, request_spec.get("image") or {})
        except Exception as exc:  # noqa: BLE001 - any driver failure leads to a reschedule or ERROR
            await self._build_failed(ctxt, inst, request_spec, attempt, tried_hosts, exc)
            return
        power = await self._power_state(inst)
        try:
            await self.conductor.instance_update(
                ctxt,
                uuid,
                {
                    "vm_state": states.ACTIVE,
                    "task_state": None,
                    "power_state": power,
                    "launched_at": utils.utcnow(self.clock),
                },
                expected_task_state=states.SPAWNING,
                event=self._event(ctxt, event, "finish"),
                returning=False,
            )
            log.info("instance {uuid} is ACTIVE on {host}", uuid=uuid, host=self.host, ctxt=ctxt)
        except (exception.UnexpectedTaskState, exception.InstanceNotFound) as exc:
            log.info(
                "instance {uuid} changed during its build ({error}); leaving it to that action",
                uuid=uuid,
                error=exc,
                ctxt=ctxt,
            )

    async def _build_failed(self, ctxt, inst, request_spec, attempt, tried_hosts, exc):
        uuid = inst["uuid"]
        log.warn(
            "build of {uuid} failed on {host} (attempt {attempt}): {error}",
            uuid=uuid,
            host=self.host,
            attempt=attempt,
            error=exc,
            ctxt=ctxt,
        )
        try:
            await self.driver.destroy(ctxt, inst)
        except Exception as cleanup_error:  # noqa: BLE001 - reported, the failure path goes on
            log.error("cleaning up {uuid} after a failed build failed too: {error!r}", uuid=uuid, error=cleanup_error)
        reschedule = attempt < self.max_attempts and self.scheduler is not None
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        event = self._event(ctxt, "compute_build_and_run_instance", "finish", "Error", tb)
        fault = _fault(exc)
        if reschedule:
            fault["message"] = f"Build failed on {self.host}, rescheduling: {fault['message']}"
        try:
            await self.conductor.build_failed(ctxt, uuid, fault, reschedule, event=event, host=self.host)
        except exception.InstanceNotFound:
            return
        if reschedule:
            await self.scheduler.schedule_and_build(
                ctxt, request_spec, [uuid], attempt=attempt + 1, tried_hosts=[*tried_hosts, self.host]
            )

    def terminate_instance(self, ctxt, instance):
        uuid = instance["uuid"]

        async def terminate():
            try:
                inst = await self.conductor.instance_get(ctxt, uuid)
            except exception.InstanceNotFound:
                inst = instance
            await self.driver.destroy(ctxt, inst, destroy_disks=True)
            try:
                await self.conductor.instance_destroy(
                    ctxt, uuid, event=self._event(ctxt, "compute_terminate_instance", "finish")
                )
            except exception.InstanceNotFound:
                pass
            log.info("instance {uuid} deleted", uuid=uuid, ctxt=ctxt)

        return defer.ensureDeferred(self._locked(uuid, terminate))

    # -- simple power actions --------------------------------------------------------------
    def _action(self, ctxt, instance, event_name, expected_task_state, run, final_vm_state, final_expected=None):
        """Run one driver action under the instance lock, recording its event and states.

        ``final_expected`` lists the task states the action may have moved
        through (default: just ``expected_task_state``).
        """
        uuid = instance["uuid"]
        final_expected = final_expected or expected_task_state

        async def act():
            try:
                inst = await self.conductor.instance_get(ctxt, uuid)
            except exception.InstanceNotFound:
                return
            if inst["task_state"] != expected_task_state:
                log.info(
                    "dropping {event} of {uuid}: task_state is {task}",
                    event=event_name,
                    uuid=uuid,
                    task=inst["task_state"],
                    ctxt=ctxt,
                )
                return
            await self.conductor.action_event(ctxt, uuid, self._event(ctxt, event_name, "start"))
            try:
                await run(inst)
            except Exception as exc:  # noqa: BLE001 - the action fails, the instance stays usable
                log.warn("{event} of {uuid} failed: {error}", event=event_name, uuid=uuid, error=exc, ctxt=ctxt)
                power = await self._power_state(inst)
                await self.conductor.instance_fault_create(
                    ctxt, uuid, getattr(exc, "code", 500), str(exc), _fault(exc)["details"], self.host
                )
                tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                await self.conductor.instance_update(
                    ctxt,
                    uuid,
                    {"task_state": None, "power_state": power},
                    expected_task_state=final_expected,
                    event=self._event(ctxt, event_name, "finish", "Error", tb),
                )
                return
            power = await self._power_state(inst)
            await self.conductor.instance_update(
                ctxt,
                uuid,
                {"vm_state": final_vm_state, "task_state": None, "power_state": power},
                expected_task_state=final_expected,
                event=self._event(ctxt, event_name, "finish"),
                returning=False,
            )

        return defer.ensureDeferred(self._locked(uuid, act))

    def reboot_instance(self, ctxt, instance, reboot_type="SOFT"):
        expected = states.REBOOTING if reboot_type == "SOFT" else states.REBOOTING_HARD
        return self._action(
            ctxt,
            instance,
            "compute_reboot_instance",
            expected,
            lambda inst: self.driver.reboot(ctxt, inst, reboot_type),
            states.ACTIVE,
        )

    def stop_instance(self, ctxt, instance):
        timeout = self.conf.compute.shutdown_timeout
        return self._action(
            ctxt,
            instance,
            "compute_stop_instance",
            states.POWERING_OFF,
            lambda inst: self.driver.power_off(inst, timeout),
            states.STOPPED,
        )

    def start_instance(self, ctxt, instance):
        return self._action(
            ctxt,
            instance,
            "compute_start_instance",
            states.POWERING_ON,
            lambda inst: self.driver.power_on(ctxt, inst),
            states.ACTIVE,
        )

    def pause_instance(self, ctxt, instance):
        return self._action(
            ctxt, instance, "compute_pause_instance", states.PAUSING, self.driver.pause, states.PAUSED_VM
        )

    def unpause_instance(self, ctxt, instance):
        return self._action(
            ctxt, instance, "compute_unpause_instance", states.UNPAUSING, self.driver.unpause, states.ACTIVE
        )

    def suspend_instance(self, ctxt, instance):
        return self._action(
            ctxt,
            instance,
            "compute_suspend_instance",
            states.SUSPENDING,
            lambda inst: self.driver.suspend(ctxt, inst),
            states.SUSPENDED_VM,
        )

    def resume_instance(self, ctxt, instance):
        return self._action(
            ctxt,
            instance,
            "compute_resume_instance",
            states.RESUMING,
            lambda inst: self.driver.resume(ctxt, inst),
            states.ACTIVE,
        )

    def rebuild_instance(self, ctxt, instance, image_meta):
        async def rebuild(inst):
            await self.driver.destroy(ctxt, inst, destroy_disks=True)
            inst = await self.conductor.instance_update(
                ctxt, inst["uuid"], {"task_state": states.REBUILD_SPAWNING}, expected_task_state=states.REBUILDING
            )
            await self.driver.spawn(ctxt, inst, image_meta or {})

        return self._action(
            ctxt,
            instance,
            "compute_rebuild_instance",
            states.REBUILDING,
            rebuild,
            states.ACTIVE,
            final_expected=[states.REBUILDING, states.REBUILD_SPAWNING],
        )

    # -- snapshot --------------------------------------------------------------------------
    def snapshot_instance(self, ctxt, instance, image_id):
        uuid = instance["uuid"]

        async def update_task_state(task_state, expected_state):
            await self.conductor.instance_update(
                ctxt, uuid, {"task_state": task_state}, expected_task_state=expected_state
            )

        async def snapshot(inst):
            try:
                await self.driver.snapshot(ctxt, inst, image_id, update_task_state)
            except Exception:
                await self._discard_failed_snapshot(ctxt, image_id)
                raise

        return self._action(
            ctxt,
            instance,
            "compute_snapshot_instance",
            states.IMAGE_SNAPSHOT,
            snapshot,
            instance["vm_state"],
            final_expected=[states.IMAGE_SNAPSHOT, states.IMAGE_PENDING_UPLOAD, states.IMAGE_UPLOADING],
        )

    async def _discard_failed_snapshot(self, ctxt, image_id):
        if self.image_service is None:
            return
        try:
            image = await self.image_service.show(ctxt, image_id)
            if image.get("status") in ("queued", "saving"):
                await self.image_service.delete(ctxt, image_id)
        except exception.NovaError as exc:
            log.warn("could not discard the failed snapshot {image}: {error}", image=image_id, error=exc)

    # -- resize (on this host) --------------------------------------------------------------
    def resize_instance(self, ctxt, instance, migration, new_flavor):
        uuid = instance["uuid"]

        async def resize():
            inst = await self.conductor.instance_get(ctxt, uuid)
            event = "compute_resize_instance"
            try:
                await self.conductor.instance_update(
                    ctxt,
                    uuid,
                    {"task_state": states.RESIZE_MIGRATING},
                    expected_task_state=states.RESIZE_PREP,
                    event=self._event(ctxt, event, "start"),
                )
            except (exception.UnexpectedTaskState, exception.InstanceNotFound):
                return
            was_stopped = inst["vm_state"] == states.STOPPED
            try:
                await self.driver.resize(ctxt, inst, new_flavor)
                if was_stopped:
                    await self.driver.power_off(inst, 0)
            except Exception as exc:  # noqa: BLE001 - rolled back and reported
                power = await self._power_state(inst)
                tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                await self.conductor.resize_failed(
                    ctxt,
                    uuid,
                    migration["uuid"],
                    {"vm_state": inst["vm_state"], "task_state": None, "power_state": power},
                    _fault(exc),
                    event=self._event(ctxt, event, "finish", "Error", tb),
                    host=self.host,
                )
                return
            power = await self._power_state(inst)
            await self.conductor.resize_finish(
                ctxt,
                uuid,
                migration["uuid"],
                {
                    "vm_state": states.RESIZED,
                    "task_state": None,
                    "power_state": power,
                    "flavor": new_flavor,
                    "old_flavor": inst["flavor"],
                    "new_flavor": new_flavor,
                    "memory_mb": new_flavor["memory_mb"],
                    "vcpus": new_flavor["vcpus"],
                    "root_gb": new_flavor["root_gb"],
                    "ephemeral_gb": new_flavor.get("ephemeral_gb", 0),
                    "instance_type_id": new_flavor.get("id"),
                    "system_metadata": {**(inst.get("system_metadata") or {}), "old_vm_state": inst["vm_state"]},
                },
                event=self._event(ctxt, event, "finish"),
            )

        return defer.ensureDeferred(self._locked(uuid, resize))

    def confirm_resize(self, ctxt, instance, migration):
        uuid = instance["uuid"]

        async def confirm():
            inst = await self.conductor.instance_get(ctxt, uuid)
            await self.driver.confirm_resize(ctxt, inst)
            old_vm_state = (inst.get("system_metadata") or {}).get("old_vm_state", states.ACTIVE)
            power = await self._power_state(inst)
            vm_state = states.STOPPED if old_vm_state == states.STOPPED else states.ACTIVE
            await self.conductor.resize_confirm(
                ctxt,
                uuid,
                migration["uuid"],
                {
                    "vm_state": vm_state,
                    "task_state": None,
                    "power_state": power,
                    "old_flavor": None,
                    "new_flavor": None,
                },
                event=self._event(ctxt, "compute_confirm_resize", "finish"),
            )

        return defer.ensureDeferred(self._locked(uuid, confirm))

    def revert_resize(self, ctxt, instance, migration):
        uuid = instance["uuid"]

        async def revert():
            inst = await self.conductor.instance_get(ctxt, uuid)
            old = inst.get("old_flavor") or inst["flavor"]
            await self.driver.revert_resize(ctxt, inst, old)
            old_vm_state = (inst.get("system_metadata") or {}).get("old_vm_state", states.ACTIVE)
            if old_vm_state == states.STOPPED:
                await self.driver.power_off(inst, 0)
            power = await self._power_state(inst)
            await self.conductor.resize_revert(
                ctxt,
                uuid,
                migration["uuid"],
                {
                    "vm_state": states.STOPPED if old_vm_state == states.STOPPED else states.ACTIVE,
                    "task_state": None,
                    "power_state": power,
                    "flavor": old,
                    "old_flavor": None,
                    "new_flavor": None,
                    "memory_mb": old["memory_mb"],
                    "vcpus": old["vcpus"],
                    "root_gb": old["root_gb"],
                    "ephemeral_gb": old.get("ephemeral_gb", 0),
                    "instance_type_id": old.get("id"),
                },
                event=self._event(ctxt, "compute_revert_resize", "finish"),
            )

        return defer.ensureDeferred(self._locked(uuid, revert))

    # -- consoles ---------------------------------------------------------------------------
    async def get_console_output(self, ctxt, instance, tail_length=None):
        inst = await self.conductor.instance_get(ctxt, instance["uuid"])
        text = await self.driver.get_console_output(ctxt, inst)
        if tail_length is not None:
            lines = text.splitlines()
            text = "\n".join(lines[-int(tail_length) :]) if int(tail_length) > 0 else ""
        return text

    async def get_console_connection(self, ctxt, instance, console_type):
        inst = await self.conductor.instance_get(ctxt, instance["uuid"])
        if console_type in ("novnc", "xvpvnc", "vnc"):
            return await self.driver.get_vnc_console(ctxt, inst)
        if console_type in ("spice-html5", "spice"):
            return await self.driver.get_spice_console(ctxt, inst)
        raise exception.ConsoleTypeUnavailable(console_type=console_type)
