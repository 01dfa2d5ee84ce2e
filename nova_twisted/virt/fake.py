"""The fake hypervisor: in-memory guests with honest power states.

It behaves like a real driver as far as compute can tell: guests have
states that change only through the driver (or the ``simulate_*`` hooks,
standing for things that happen inside a guest), operations that do not
fit a guest's state fail as they would on libvirt, snapshots are real
files uploaded through the image service, and resources are reported from
configuration. Failure injection (fail_spawn, spawn_delay) serves tests.

Like real guests, fake guests outlive the compute process: with a
``state_dir`` (the instances path) each guest is kept in
``<state_dir>/<uuid>/fake-guest.json`` and found again by init_host.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field

from twisted.internet import defer, task, threads
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
    spice_port: int = 0


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
        action_delay: float = 0.0,
        fail_spawn: str = "",
        hypervisor_type: str = "fake",
        cpu_arch: str = "x86_64",
        vnc_listen: str = "127.0.0.1",
        state_dir: str | None = None,
    ):
        if clock is None:
            from twisted.internet import reactor as clock
        if conf is not None:
            fake = conf.fake_driver
            vcpus, memory_mb, local_gb = fake.vcpus, fake.memory_mb, fake.local_gb
            spawn_delay, fail_spawn, action_delay = fake.spawn_delay, fake.fail_spawn, fake.action_delay
            hypervisor_type, cpu_arch = fake.hypervisor_type, fake.cpu_arch
            state_dir = state_dir or conf.compute.instances_path
        self.clock = clock
        self.image_service = image_service
        self.host = host
        self.vcpus = vcpus
        self.memory_mb = memory_mb
        self.local_gb = local_gb
        self.spawn_delay = spawn_delay
        self.action_delay = action_delay
        self.fail_spawn = re.compile(fail_spawn) if fail_spawn else None
        self.hypervisor_type = hypervisor_type
        self.cpu_arch = cpu_arch
        self.vnc_listen = vnc_listen
        self.state_dir = state_dir
        self.guests: dict[str, FakeGuest] = {}
        self.dead = False
        self._pending: set[defer.Deferred] = set()
        self._consoles: dict[str, tuple] = {}
        self._listeners = []

    # -- persistence (guests outlive compute, as on a real hypervisor) -----------
    def _guest_file(self, uuid: str) -> str:
        return os.path.join(self.state_dir, uuid, "fake-guest.json")

    def _save(self, guest: FakeGuest):
        if self.dead:
            raise exception.HypervisorError(reason="the compute host is gone")
        if self.state_dir is None:
            return defer.succeed(None)
        data = json.dumps(asdict(guest))
        path = self._guest_file(guest.uuid)

        def write():
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".tmp", "w") as handle:
                handle.write(data)
            os.replace(path + ".tmp", path)

        return threads.deferToThread(write)

    def _forget(self, uuid: str):
        if self.dead:
            return defer.fail(exception.HypervisorError(reason="the compute host is gone"))
        if self.state_dir is None:
            return defer.succeed(None)
        path = self._guest_file(uuid)
        return threads.deferToThread(lambda: shutil.rmtree(os.path.dirname(path), ignore_errors=True))

    def _load(self) -> dict[str, FakeGuest]:
        found = {}
        if self.state_dir is None or not os.path.isdir(self.state_dir):
            return found
        for name in os.listdir(self.state_dir):
            path = self._guest_file(name)
            if os.path.exists(path):
                with open(path) as handle:
                    guest = FakeGuest(**json.load(handle))
                found[guest.uuid] = guest
        return found

    # -- host -----------------------------------------------------------------
    @defer.inlineCallbacks
    def init_host(self, host):
        self.host = host
        self.guests = yield threads.deferToThread(self._load)
        for guest in self.guests.values():
            self._open_consoles(guest)

    def cleanup_host(self):
        for uuid in list(self._consoles):
            self._close_consoles(uuid)
        return defer.succeed(None)

    # -- consoles: a real RFB server per guest, as QEMU gives each guest its own port ------------
    def _open_consoles(self, guest: FakeGuest) -> None:
        from nova_twisted.virt import fake_console

        listener = self.clock if hasattr(self.clock, "listenTCP") else _global_reactor()
        screen = fake_console.Screen(guest.name, _screen_state(guest.state))
        vnc = listener.listenTCP(0, fake_console.RFBFactory(screen), interface=self.vnc_listen)
        spice = listener.listenTCP(0, fake_console.SpiceFactory(), interface=self.vnc_listen)
        guest.vnc_port, guest.spice_port = vnc.getHost().port, spice.getHost().port
        self._consoles[guest.uuid] = (vnc, spice, screen)

    def _close_consoles(self, uuid: str) -> None:
        entry = self._consoles.pop(uuid, None)
        if entry is not None:
            entry[0].stopListening()
            entry[1].stopListening()

    def _show(self, guest: FakeGuest) -> None:
        entry = self._consoles.get(guest.uuid)
        if entry is not None:
            entry[2].set_state(_screen_state(guest.state))

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
            yield self._sleep(self.spawn_delay)
        if self._should_fail(instance):
            raise exception.HypervisorError(reason=f"fake spawn failure injected for {instance['uuid']}")
        if instance["uuid"] in self.guests:
            raise exception.HypervisorError(reason=f"a guest {instance['uuid']} already exists")
        guest = FakeGuest(
            uuid=instance["uuid"],
            name=instance.get("name", instance["uuid"]),
            memory_mb=int(instance.get("memory_mb", 0)),
            vcpus=int(instance.get("vcpus", 0)),
            root_gb=int(instance.get("root_gb", 0)),
        )
        guest.console.append(f"fake guest {guest.name} booted from image {image_meta.get('id', '?')}")
        self.guests[guest.uuid] = guest
        self._open_consoles(guest)
        yield self._save(guest)

    def destroy(self, ctxt, instance, destroy_disks=True):
        self.guests.pop(instance["uuid"], None)
        self._close_consoles(instance["uuid"])
        return self._forget(instance["uuid"])

    @defer.inlineCallbacks
    def _change(self, instance, allowed, action, mutate):
        """After ``action_delay``, apply ``mutate(guest)`` if the guest's state is one of
        ``allowed``, then persist it."""
        guest = self._guest(instance)
        if allowed is not None:
            self._require(guest, allowed, action)
        if self.action_delay:
            yield self._sleep(self.action_delay)
            guest = self._guest(instance)
        mutate(guest)
        self._show(guest)
        yield self._save(guest)

    @defer.inlineCallbacks
    def reboot(self, ctxt, instance, reboot_type):
        def rebooted(g):
            g.state = states.RUNNING
            g.boots += 1
            g.console.append(f"fake guest {g.name} rebooted ({reboot_type.lower()}), boot {g.boots}")

        allowed = (states.RUNNING,) if reboot_type == "SOFT" else None
        yield self._change(instance, allowed, "reboot", rebooted)

    def power_off(self, instance, timeout=0, retry_interval=0):
        def off(g):
            g.state = states.SHUTDOWN
            g.console.append(f"fake guest {g.name} powered off")

        return self._change(instance, None, "power_off", off)

    def power_on(self, ctxt, instance):
        def on(g):
            g.state = states.RUNNING
            g.boots += 1
            g.console.append(f"fake guest {g.name} powered on, boot {g.boots}")

        return self._change(instance, (states.SHUTDOWN, states.CRASHED, states.RUNNING), "power_on", on)

    def _transition(self, instance, allowed, new_state, action):
        return self._change(instance, allowed, action, lambda g: setattr(g, "state", new_state))

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
        if self.action_delay:
            yield self._sleep(self.action_delay)
        seed = f"{guest.uuid}:{guest.boots}:{self.clock.seconds()}".encode()
        path = yield threads.deferToThread(_write_fake_disk, guest.uuid, seed)
        try:
            yield update_task_state(states.IMAGE_UPLOADING, states.IMAGE_PENDING_UPLOAD)
            if self.action_delay:
                yield self._sleep(self.action_delay)
            if self.image_service is None:
                raise exception.HypervisorError(reason="no image service to upload the snapshot to")
            yield self.image_service.upload(ctxt, image_id, path)
        finally:
            os.unlink(path)

    def resize(self, ctxt, instance, new_flavor):
        def resized(g):
            g.old_flavor = {"memory_mb": g.memory_mb, "vcpus": g.vcpus, "root_gb": g.root_gb}
            g.memory_mb = int(new_flavor["memory_mb"])
            g.vcpus = int(new_flavor["vcpus"])
            g.root_gb = int(new_flavor.get("root_gb", g.root_gb))
            g.state = states.RUNNING

        return self._change(instance, None, "resize", resized)

    def confirm_resize(self, ctxt, instance):
        if instance["uuid"] not in self.guests:
            return defer.succeed(None)
        return self._change(instance, None, "confirm_resize", lambda g: setattr(g, "old_flavor", None))

    def revert_resize(self, ctxt, instance, old_flavor):
        def reverted(g):
            g.memory_mb = int(old_flavor["memory_mb"])
            g.vcpus = int(old_flavor["vcpus"])
            g.root_gb = int(old_flavor.get("root_gb", g.root_gb))
            g.old_flavor = None
            g.state = states.RUNNING

        return self._change(instance, None, "revert_resize", reverted)

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
        return defer.succeed({"host": self.vnc_listen, "port": guest.spice_port, "internal_access_path": None})

    def crash_host(self) -> None:
        """The compute process died: nothing it had in flight completes or persists."""
        self.dead = True
        for pending in list(self._pending):
            pending.cancel()
        for uuid in list(self._consoles):
            self._close_consoles(uuid)

    def _sleep(self, seconds: float) -> defer.Deferred:
        d = task.deferLater(self.clock, seconds, lambda: None)
        self._pending.add(d)
        d.addBoth(lambda r: (self._pending.discard(d), r)[1])
        return d

    # -- what happens inside a guest (test hooks) ---------------------------------
    def _simulate(self, uuid: str, power_state: int) -> defer.Deferred:
        guest = self.guests[uuid]
        guest.state = power_state
        self._show(guest)
        self._emit(uuid, power_state)
        return self._save(guest)

    def simulate_guest_poweroff(self, uuid: str) -> defer.Deferred:
        """The guest shut itself down (``poweroff`` inside it)."""
        return self._simulate(uuid, states.SHUTDOWN)

    def simulate_crash(self, uuid: str) -> defer.Deferred:
        return self._simulate(uuid, states.CRASHED)

    def simulate_external_pause(self, uuid: str) -> defer.Deferred:
        """Someone paused the guest outside compute (``virsh suspend``)."""
        return self._simulate(uuid, states.PAUSED)

    def simulate_vanish(self, uuid: str) -> defer.Deferred:
        """The guest disappeared from the hypervisor."""
        self.guests.pop(uuid, None)
        self._close_consoles(uuid)
        return self._forget(uuid)


def _screen_state(power_state: int) -> str:
    return {states.RUNNING: "running", states.PAUSED: "paused"}.get(power_state, "other")


def _global_reactor():
    from twisted.internet import reactor

    return reactor


def _write_fake_disk(uuid: str, seed: bytes) -> str:
    """Write a small but real disk file whose bytes identify the guest and the moment."""
    handle, path = tempfile.mkstemp(prefix=f"fake-snapshot-{uuid}-")
    with os.fdopen(handle, "wb") as out:
        block = hashlib.sha512(seed).digest() * 64
        for _ in range(16):
            out.write(block)
    return path
