"""The fake hypervisor: in-memory guests with honest power states.

It behaves like a real driver as far as compute can tell: guests have
states that change only through the driver (or the ``simulate_*`` hooks,
standing for things that happen inside a guest), operations that do not
fit a guest's state fail as they would on libvirt, snapshots are real
files uploaded through the image service, and resources are reported from
configuration. Failure injection (fail_spawn, spawn_delay) serves tests.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field

from twisted.internet import defer, task
from twisted.logger import Logger
from zope.interface import implementer

from nova_twisted import exception
from nova_twisted.compute import states
from nova_twisted.virt.interfaces import IComputeDriver

log = Logger(namespace="nova.virt.fake")

CONSOLE_LIMIT = 100 * 1024


@dataclass
class FakeGuest:
    uuid: str
    name: str
    memory_mb: int
    vcpus: int
    root_gb: int
    state: int = states.RUNNING
    console: list[str] = field(default_factory=list)
    boots: int = 1
    old_flavor: dict | None = None
    vnc_port: int = 0


@implementer(IComputeDriver)
class FakeDriver:
    """An IComputeDriver keeping guests in memory."""

    name = "fake"
    capabilities = {
        "console_types": ["vnc", "spice"],
        "supports_pause": True,
        "supports_suspend": True,
        "supports_resize": True,
    }

    def __init__(
        self,
        conf=None,
        clock=None,
        image_service=None,
        host: str = "fake-host",
        *,
        vcpus: int = 16,
        memory_mb: int = 32768,
        local_gb: int = 1024,
        spawn_delay: float = 0.0,
        fail_spawn: str = "",
        hypervisor_type: str = "fake",
        cpu_arch: str = "x86_64",
        vnc_listen: str = "127.0.0.1",
    ):
        if clock is None:
            from twisted.internet import reactor as clock
        if conf is not None:
            fake = conf.fake_driver
            vcpus, memory_mb, local_gb = fake.vcpus, fake.memory_mb, fake.local_gb
            spawn_delay, fail_spawn = fake.spawn_delay, fake.fail_spawn
            hypervisor_type, cpu_arch = fake.hypervisor_type, fake.cpu_arch
        self.clock = clock
        self.image_service = image_service
        self.host = host
        self.vcpus = vcpus
        self.memory_mb = memory_mb
        self.local_gb = local_gb
        self.spawn_delay = spawn_delay
        self.fail_spawn = re.compile(fail_spawn) if fail_spawn else None
        self.hypervisor_type = hypervisor_type
        self.cpu_arch = cpu_arch
        self.vnc_listen = vnc_listen
        self.guests: dict[str, FakeGuest] = {}
        self._listeners = []
        self._next_port = 5900

    # -- host -----------------------------------------------------------------
    def init_host(self, host):
        self.host = host
        return defer.succeed(None)

    def cleanup_host(self):
        return defer.succeed(None)

    def register_event_listener(self, callback):
        self._listeners.append(callback)

    def _emit(self, uuid: str, power_state: int) -> None:
        for callback in list(self._listeners):
            self.clock.callLater(0, callback, uuid, power_state)

    def list_instances(self):
        return defer.succeed(sorted(self.guests))

    def get_available_resource(self):
        used_vcpus = sum(g.vcpus for g in self.guests.values())
        used_mem = sum(g.memory_mb for g in self.guests.values())
        used_disk = sum(g.root_gb for g in self.guests.values())
        return defer.succeed(
            {
                "vcpus": self.vcpus,
                "memory_mb": self.memory_mb,
                "local_gb": self.local_gb,
                "vcpus_used": used_vcpus,
                "memory_mb_used": used_mem,
                "local_gb_used": used_disk,
                "hypervisor_type": self.hypervisor_type,
                "hypervisor_version": 1000,
                "hypervisor_hostname": self.host,
                "cpu_arch": self.cpu_arch,
                "cpu_info": {
                    "arch": self.cpu_arch,
                    "model": "fake",
                    "vendor": "nova-twisted",
                    "topology": {"sockets": 1, "cores": self.vcpus, "threads": 1},
                },
                "running_vms": sum(1 for g in self.guests.values() if g.state == states.RUNNING),
            }
        )

    # -- guests -----------------------------------------------------------------
    def _guest(self, instance: dict) -> FakeGuest:
        guest = self.guests.get(instance["uuid"])
        if guest is None:
            raise exception.InstanceNotFound(instance_id=instance["uuid"])
        return guest

    def _require(self, guest: FakeGuest, allowed: tuple[int, ...], action: str) -> None:
        if guest.state not in allowed:
            raise exception.InstanceInvalidState(
                action=action,
                instance_uuid=guest.uuid,
                attr="power_state",
                state=states.POWER_STATE_NAMES.get(guest.state, guest.state),
            )

    def get_info(self, instance):
        try:
            guest = self._guest(instance)
        except exception.InstanceNotFound:
            return defer.fail()
        return defer.succeed(
            {
                "state": guest.state,
                "max_mem_kb": guest.memory_mb * 1024,
                "mem_kb": guest.memory_mb * 1024,
                "num_cpu": guest.vcpus,
                "cpu_time_ns": 0,
            }
        )

    def _should_fail(self, instance: dict) -> bool:
        metadata = instance.get("metadata") or {}
        if str(metadata.get("fake_driver:fail_spawn", "")).lower() == "true":
            return True
        return bool(self.fail_spawn and self.fail_spawn.search(instance.get("display_name") or ""))

    @defer.inlineCallbacks
    def spawn(self, ctxt, instance, image_meta, admin_password=None):
        if self.spawn_delay:
            yield task.deferLater(self.clock, self.spawn_delay, lambda: None)
        if self._should_fail(instance):
            raise exception.HypervisorError(reason=f"fake spawn failure injected for {instance['uuid']}")
        if instance["uuid"] in self.guests:
            raise exception.HypervisorError(reason=f"a guest {instance['uuid']} already exists")
        self._next_port += 1
        guest = FakeGuest(
            uuid=instance["uuid"],
            name=instance.get("name", instance["uuid"]),
            memory_mb=int(instance.get("memory_mb", 0)),
            vcpus=int(instance.get("vcpus", 0)),
            root_gb=int(instance.get("root_gb", 0)),
            vnc_port=self._next_port,
        )
        guest.console.append(f"fake guest {guest.name} booted from image {image_meta.get('id', '?')}")
        self.guests[guest.uuid] = guest
        return None

    def destroy(self, ctxt, instance, destroy_disks=True):
        self.guests.pop(instance["uuid"], None)
        return defer.succeed(None)

    @defer.inlineCallbacks
    def reboot(self, ctxt, instance, reboot_type):
        guest = self._guest(instance)
        if reboot_type == "SOFT":
            self._require(guest, (states.RUNNING,), "reboot")
        yield task.deferLater(self.clock, 0, lambda: None)
        guest.state = states.RUNNING
        guest.boots += 1
        guest.console.append(f"fake guest {guest.name} rebooted ({reboot_type.lower()}), boot {guest.boots}")

    def power_off(self, instance, timeout=0, retry_interval=0):
        try:
            guest = self._guest(instance)
        except exception.InstanceNotFound:
            return defer.fail()
        guest.state = states.SHUTDOWN
        guest.console.append(f"fake guest {guest.name} powered off")
        return defer.succeed(None)

    def power_on(self, ctxt, instance):
        try:
            guest = self._guest(instance)
            self._require(guest, (states.SHUTDOWN, states.CRASHED, states.RUNNING), "power_on")
        except exception.NovaError:
            return defer.fail()
        guest.state = states.RUNNING
        guest.boots += 1
        guest.console.append(f"fake guest {guest.name} powered on, boot {guest.boots}")
        return defer.succeed(None)

    def _transition(self, instance, allowed, new_state, action):
        try:
            guest = self._guest(instance)
            self._require(guest, allowed, action)
        except exception.NovaError:
            return defer.fail()
        guest.state = new_state
        return defer.succeed(None)

    def pause(self, instance):
        return self._transition(instance, (states.RUNNING,), states.PAUSED, "pause")

    def unpause(self, instance):
        return self._transition(instance, (states.PAUSED,), states.RUNNING, "unpause")

    def suspend(self, ctxt, instance):
        return self._transition(instance, (states.RUNNING, states.PAUSED), states.SUSPENDED, "suspend")

    def resume(self, ctxt, instance):
        return self._transition(instance, (states.SUSPENDED,), states.RUNNING, "resume")

    @defer.inlineCallbacks
    def snapshot(self, ctxt, instance, image_id, update_task_state):
        guest = self._guest(instance)
        yield update_task_state(states.IMAGE_PENDING_UPLOAD, states.IMAGE_SNAPSHOT)
        handle, path = tempfile.mkstemp(prefix=f"fake-snapshot-{guest.uuid}-")
        try:
            # A small but real disk file: its bytes identify the guest and the moment.
            with os.fdopen(handle, "wb") as out:
                seed = f"{guest.uuid}:{guest.boots}:{self.clock.seconds()}".encode()
                block = hashlib.sha512(seed).digest() * 64
                for _ in range(16):
                    out.write(block)
            yield update_task_state(states.IMAGE_UPLOADING, states.IMAGE_PENDING_UPLOAD)
            if self.image_service is None:
                raise exception.HypervisorError(reason="no image service to upload the snapshot to")
            yield self.image_service.upload(ctxt, image_id, path)
        finally:
            os.unlink(path)

    def resize(self, ctxt, instance, new_flavor):
        try:
            guest = self._guest(instance)
        except exception.InstanceNotFound:
            return defer.fail()
        guest.old_flavor = {"memory_mb": guest.memory_mb, "vcpus": guest.vcpus, "root_gb": guest.root_gb}
        guest.memory_mb = int(new_flavor["memory_mb"])
        guest.vcpus = int(new_flavor["vcpus"])
        guest.root_gb = int(new_flavor.get("root_gb", guest.root_gb))
        guest.state = states.RUNNING
        return defer.succeed(None)

    def confirm_resize(self, ctxt, instance):
        guest = self.guests.get(instance["uuid"])
        if guest is not None:
            guest.old_flavor = None
        return defer.succeed(None)

    def revert_resize(self, ctxt, instance, old_flavor):
        try:
            guest = self._guest(instance)
        except exception.InstanceNotFound:
            return defer.fail()
        guest.memory_mb = int(old_flavor["memory_mb"])
        guest.vcpus = int(old_flavor["vcpus"])
        guest.root_gb = int(old_flavor.get("root_gb", guest.root_gb))
        guest.old_flavor = None
        guest.state = states.RUNNING
        return defer.succeed(None)

    def get_console_output(self, ctxt, instance):
        try:
            guest = self._guest(instance)
        except exception.InstanceNotFound:
            return defer.fail()
        text = "\n".join(guest.console) + "\n"
        return defer.succeed(text[-CONSOLE_LIMIT:])

    def get_vnc_console(self, ctxt, instance):
        try:
            guest = self._guest(instance)
        except exception.InstanceNotFound:
            return defer.fail()
        return defer.succeed({"host": self.vnc_listen, "port": guest.vnc_port, "internal_access_path": None})

    def get_spice_console(self, ctxt, instance):
        try:
            guest = self._guest(instance)
        except exception.InstanceNotFound:
            return defer.fail()
        return defer.succeed({"host": self.vnc_listen, "port": guest.vnc_port + 1000, "internal_access_path": None})

    # -- what happens inside a guest (test hooks) ---------------------------------
    def simulate_guest_poweroff(self, uuid: str) -> None:
        """The guest shut itself down (``poweroff`` inside it)."""
        self.guests[uuid].state = states.SHUTDOWN
        self._emit(uuid, states.SHUTDOWN)

    def simulate_crash(self, uuid: str) -> None:
        self.guests[uuid].state = states.CRASHED
        self._emit(uuid, states.CRASHED)

    def simulate_external_pause(self, uuid: str) -> None:
        """Someone paused the guest outside compute (``virsh suspend``)."""
        self.guests[uuid].state = states.PAUSED
        self._emit(uuid, states.PAUSED)

    def simulate_vanish(self, uuid: str) -> None:
        """The guest disappeared from the hypervisor."""
        self.guests.pop(uuid, None)
