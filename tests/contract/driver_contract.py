"""The IComputeDriver contract, for every driver.

:class:`ComputeDriverContract` talks to the driver only through the
interface. Subclasses (one per driver, with ``twisted.trial.unittest.TestCase``)
provide the hooks: how to make a driver and a bootable image, and how the
outside world acts on a guest (the guest powering itself off, someone
pausing it behind compute's back, a spawn that must fail). Each test spawns
at most one guest, so a real hypervisor boots only a handful of times.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import tempfile
import time
import uuid

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import deferLater
from twisted.internet.utils import getProcessOutputAndValue
from zope.interface.verify import verifyObject

from nova_twisted import exception
from nova_twisted.compute import states
from nova_twisted.virt.interfaces import IComputeDriver

#: Instance ids of contract tests: their names read instance-7e57xxxx ("test").
TEST_ID_BASE = 0x7E570000


def async_test(fn):
    """Run an ``async def`` test method as a Deferred-returning trial test."""

    @functools.wraps(fn)
    def wrapper(self):
        return defer.ensureDeferred(fn(self))

    return wrapper


def sleep(seconds: float) -> defer.Deferred:
    return deferLater(reactor, seconds, lambda: None)


async def wait_until(check, timeout: float, what: str, interval: float = 0.2):
    """Await ``check()`` (sync or async) until it is truthy; return its value or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if isinstance(value, (defer.Deferred,)) or asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await sleep(interval)


async def qemu_img_info(path: str, fmt: str | None = None) -> dict:
    """``qemu-img info --output=json`` of ``path``, as a dict."""
    args = ["info", "--output=json", "-U", *(["-f", fmt] if fmt else []), path]
    out, err, code = await getProcessOutputAndValue("qemu-img", args, env=dict(os.environ), reactor=reactor)
    if code:
        raise AssertionError(f"qemu-img info {path} failed: {err.decode()}")
    return json.loads(out)


class _Greeting(protocol.Protocol):
    def __init__(self):
        self.received = defer.Deferred()
        self.data = b""

    def dataReceived(self, data):
        self.data += data
        if len(self.data) >= 12 and not self.received.called:
            self.received.callback(self.data)


SMALL = {"name": "contract.small", "memory_mb": 128, "vcpus": 1, "root_gb": 1, "ephemeral_gb": 0}
LARGE = {"name": "contract.large", "memory_mb": 192, "vcpus": 2, "root_gb": 2, "ephemeral_gb": 0}


class ComputeDriverContract:
    """Test methods every IComputeDriver must pass.

    Hooks for subclasses:

    - ``make_driver()`` (async): a driver for ``self.host_name``, after
      init_host, cleaned up after the test; ``self.image_service`` and
      ``self.ctxt`` are set by then.
    - ``make_image()`` (async): the image_meta of a bootable image.
    - ``boot_marker``: text the console output shows once the guest booted.
    - ``guest_powers_itself_off(instance)``, ``pause_outside_compute(instance)`` (async).
    - ``make_spawn_fail(instance, image_meta)`` (async): return (instance, image_meta)
      whose spawn must fail with HypervisorError.
    - ``leftovers(instance)`` (async): anything of the instance still on the host
      (files, domains); empty after destroy or a failed spawn.
    """

    boot_marker = ""
    boot_timeout = 60.0
    timeout = 300  # trial's per-test timeout

    async def make_driver(self):
        raise NotImplementedError

    async def make_image(self) -> dict:
        raise NotImplementedError

    async def guest_powers_itself_off(self, instance):
        raise NotImplementedError

    async def pause_outside_compute(self, instance):
        raise NotImplementedError

    async def make_spawn_fail(self, instance, image_meta):
        raise NotImplementedError

    async def leftovers(self, instance) -> list:
        return []

    # -- helpers ------------------------------------------------------------------------
    async def _setup(self):
        self.host_name = f"contract-{uuid.uuid4().hex[:8]}"
        self.driver = await self.make_driver()
        self.image_meta = await self.make_image()

    def _instance(self, flavor=SMALL, **extra) -> dict:
        ident = TEST_ID_BASE + random.randint(0, 0xFFFF)
        instance = {
            "uuid": str(uuid.uuid4()),
            "id": ident,
            "name": f"instance-{ident:08x}",
            "display_name": f"contract-{ident:x}",
            "memory_mb": flavor["memory_mb"],
            "vcpus": flavor["vcpus"],
            "root_gb": flavor["root_gb"],
            "ephemeral_gb": flavor["ephemeral_gb"],
            "flavor": dict(flavor),
            "image_ref": self.image_meta.get("id"),
            "kernel_id": self.image_meta.get("kernel_id"),
            "ramdisk_id": self.image_meta.get("ramdisk_id"),
            "user_data": None,
            "key_data": None,
            "host": self.host_name,
            "project_id": getattr(self.ctxt, "project_id", None),
            "metadata": {},
        }
        instance.update(extra)
        return instance

    async def _spawn(self, flavor=SMALL, wait_for_boot=False, **extra) -> dict:
        instance = self._instance(flavor, **extra)
        self.addCleanup(lambda: defer.ensureDeferred(self._destroy_quietly(instance)))
        await self.driver.spawn(self.ctxt, instance, self.image_meta)
        if wait_for_boot:
            await self._wait_for_boot(instance)
        return instance

    async def _destroy_quietly(self, instance):
        try:
            await self.driver.destroy(self.ctxt, instance)
        except Exception:  # noqa: BLE001 - the test's own failure is what matters
            pass

    async def _wait_for_boot(self, instance, boots: int = 1):
        async def booted():
            output = await self.driver.get_console_output(self.ctxt, instance)
            return output.count(self.boot_marker) >= boots

        await wait_until(booted, self.boot_timeout, f"boot {boots} of {instance['name']}", interval=0.25)

    async def _state(self, instance) -> int:
        return (await self.driver.get_info(instance))["state"]

    async def _assert_state(self, instance, expected: int):
        state = await self._state(instance)
        self.assertEqual(states.POWER_STATE_NAMES.get(state, state), states.POWER_STATE_NAMES.get(expected, expected))

    async def _assert_gone(self, instance):
        self.assertNotIn(instance["uuid"], await self.driver.list_instances())
        with self.assertRaises(exception.InstanceNotFound):
            await self.driver.get_info(instance)
        self.assertEqual(await self.leftovers(instance), [])

    # -- the interface ------------------------------------------------------------------
    @async_test
    async def test_driver_provides_the_interface(self):
        await self._setup()
        self.assertTrue(verifyObject(IComputeDriver, self.driver))
        caps = self.driver.capabilities
        for key in ("console_types", "supports_pause", "supports_suspend", "supports_resize"):
            self.assertIn(key, caps)

    @async_test
    async def test_available_resource_has_the_documented_shape(self):
        await self._setup()
        res = await self.driver.get_available_resource()
        for key in (
            "vcpus",
            "memory_mb",
            "local_gb",
            "vcpus_used",
            "memory_mb_used",
            "local_gb_used",
            "hypervisor_version",
            "running_vms",
        ):
            self.assertIsInstance(res[key], int, key)
            self.assertGreaterEqual(res[key], 0, key)
        self.assertGreater(res["vcpus"], 0)
        self.assertGreater(res["memory_mb"], 0)
        for key in ("hypervisor_type", "hypervisor_hostname", "cpu_arch"):
            self.assertIsInstance(res[key], str, key)
            self.assertTrue(res[key], key)
        self.assertIsInstance(res["cpu_info"], dict)

    @async_test
    async def test_unknown_guest_is_not_found_and_destroying_it_is_no_error(self):
        await self._setup()
        instance = self._instance()
        with self.assertRaises(exception.InstanceNotFound):
            await self.driver.get_info(instance)
        await self.driver.destroy(self.ctxt, instance)
        await self._assert_gone(instance)

    # -- spawn / destroy ----------------------------------------------------------------
    @async_test
    async def test_spawned_guest_runs_is_listed_and_destroy_leaves_nothing(self):
        await self._setup()
        instance = await self._spawn(SMALL)
        info = await self.driver.get_info(instance)
        self.assertEqual(info["state"], states.RUNNING)
        self.assertEqual(info["num_cpu"], SMALL["vcpus"])
        self.assertEqual(info["max_mem_kb"], SMALL["memory_mb"] * 1024)
        for key in ("mem_kb", "cpu_time_ns"):
            self.assertIsInstance(info[key], int)
        self.assertIn(instance["uuid"], await self.driver.list_instances())
        resources = await self.driver.get_available_resource()
        self.assertGreaterEqual(resources["running_vms"], 1)
        await self.driver.destroy(self.ctxt, instance)
        await self._assert_gone(instance)
        await self.driver.destroy(self.ctxt, instance)  # again: idempotent
        await self._assert_gone(instance)

    @async_test
    async def test_spawn_failure_fails_with_hypervisor_error_and_leaves_nothing(self):
        await self._setup()
        instance, image_meta = await self.make_spawn_fail(self._instance(), dict(self.image_meta))
        self.addCleanup(lambda: defer.ensureDeferred(self._destroy_quietly(instance)))
        with self.assertRaises(exception.HypervisorError):
            await self.driver.spawn(self.ctxt, instance, image_meta)
        await self._assert_gone(instance)

    # -- power ----------------------------------------------------------------------------
    @async_test
    async def test_power_pause_and_suspend_round_trips(self):
        await self._setup()
        instance = await self._spawn(SMALL)
        await self.driver.power_off(instance)
        await self._assert_state(instance, states.SHUTDOWN)
        await self.driver.power_on(self.ctxt, instance)
        await self._assert_state(instance, states.RUNNING)
        await self.driver.pause(instance)
        await self._assert_state(instance, states.PAUSED)
        with self.assertRaises(exception.Conflict):
            await self.driver.pause(instance)  # a paused guest cannot be paused again
        await self.driver.unpause(instance)
        await self._assert_state(instance, states.RUNNING)
        with self.assertRaises(exception.Conflict):
            await self.driver.unpause(instance)  # nor a running one unpaused
        await self.driver.suspend(self.ctxt, instance)
        await self._assert_state(instance, states.SUSPENDED)
        await self.driver.resume(self.ctxt, instance)
        await self._assert_state(instance, states.RUNNING)
        self.assertIn(instance["uuid"], await self.driver.list_instances())

    @async_test
    async def test_soft_and_hard_reboot_leave_the_guest_running(self):
        await self._setup()
        instance = await self._spawn(SMALL, wait_for_boot=True)
        await self.driver.reboot(self.ctxt, instance, "SOFT")
        await self._assert_state(instance, states.RUNNING)
        await self._wait_for_boot(instance, boots=2)
        await self.after_soft_reboot(instance)
        await self.driver.reboot(self.ctxt, instance, "HARD")
        await self._assert_state(instance, states.RUNNING)
        await self._wait_for_boot(instance, boots=3)

    # -- what happens outside compute -------------------------------------------------------
    @async_test
    async def test_changes_outside_compute_reach_the_event_listener(self):
        await self._setup()
        events = []
        self.driver.register_event_listener(lambda uuid, state: events.append((uuid, state)))
        instance = await self._spawn(SMALL, wait_for_boot=True)
        uuid = instance["uuid"]
        await self.pause_outside_compute(instance)
        await wait_until(lambda: (uuid, states.PAUSED) in events, 30, "a PAUSED event")
        await self._assert_state(instance, states.PAUSED)
        await self.driver.unpause(instance)
        await self._assert_state(instance, states.RUNNING)
        del events[:]
        await self.guest_powers_itself_off(instance)
        await wait_until(lambda: (uuid, states.SHUTDOWN) in events, 60, "a SHUTDOWN event")
        await self._assert_state(instance, states.SHUTDOWN)
        self.assertTrue(all(isinstance(state, int) for _, state in events))

    # -- snapshot ---------------------------------------------------------------------------
    @async_test
    async def test_snapshot_uploads_a_standalone_disk_and_reports_its_task_states(self):
        await self._setup()
        instance = await self._spawn(SMALL)
        image = await self.image_service.create(
            self.ctxt, {"name": "contract-snapshot", "disk_format": "raw", "container_format": "bare"}
        )
        task_states = []

        def update_task_state(task_state, expected_state):
            task_states.append((task_state, expected_state))
            return defer.succeed(None)

        await self.driver.snapshot(self.ctxt, instance, image["id"], update_task_state)
        self.assertEqual(
            task_states,
            [
                (states.IMAGE_PENDING_UPLOAD, states.IMAGE_SNAPSHOT),
                (states.IMAGE_UPLOADING, states.IMAGE_PENDING_UPLOAD),
            ],
        )
        snapshot = await self.image_service.show(self.ctxt, image["id"])
        self.assertEqual(snapshot["status"], "active")
        self.assertGreater(snapshot["size"], 0)
        scratch = tempfile.mkdtemp(prefix="contract-snapshot-")
        self.addCleanup(lambda: __import__("shutil").rmtree(scratch, True))
        path = os.path.join(scratch, "snapshot")
        await self.image_service.download(self.ctxt, image["id"], path)
        info = await qemu_img_info(path, snapshot["disk_format"])
        self.assertEqual(info["format"], snapshot["disk_format"])
        self.assertNotIn("backing-filename", info)  # standalone
        await self.check_snapshot_data(path, snapshot)
        await self._assert_state(instance, states.RUNNING)

    async def check_snapshot_data(self, path, snapshot):
        """Hook: further checks of the snapshot's data (the default checks nothing more)."""

    # -- consoles ---------------------------------------------------------------------------
    @async_test
    async def test_console_output_is_bounded_text_from_the_guest(self):
        await self._setup()
        instance = await self._spawn(SMALL, wait_for_boot=True)
        output = await self.driver.get_console_output(self.ctxt, instance)
        self.assertIsInstance(output, str)
        self.assertIn(self.boot_marker, output)
        self.assertLessEqual(len(output.encode()), 1024 * 1024)
        await self.driver.destroy(self.ctxt, instance)
        with self.assertRaises(exception.InstanceNotFound):
            await self.driver.get_console_output(self.ctxt, instance)

    @async_test
    async def test_graphical_consoles_answer_on_the_port_they_name(self):
        await self._setup()
        console_types = self.driver.capabilities["console_types"]
        self.assertTrue({"vnc", "spice"} & set(console_types), "the contract wants at least one console type")
        instance = await self._spawn(SMALL)
        getters = {"vnc": self.driver.get_vnc_console, "spice": self.driver.get_spice_console}
        for kind in ("vnc", "spice"):
            if kind not in console_types:
                with self.assertRaises(exception.ConsoleTypeUnavailable):
                    await getters[kind](self.ctxt, instance)
                continue
            info = await getters[kind](self.ctxt, instance)
            self.assertEqual(set(info), {"host", "port", "internal_access_path"})
            self.assertIsInstance(info["port"], int)
            self.assertGreater(info["port"], 0)
            endpoint = TCP4ClientEndpoint(reactor, info["host"], info["port"], timeout=5)
            greeting = _Greeting()
            proto = await connectProtocol(endpoint, greeting)
            try:
                if kind == "vnc":
                    banner = await greeting.received.addTimeout(10, reactor)
                    self.assertTrue(banner.startswith(b"RFB 003."), banner)
            finally:
                proto.transport.loseConnection()

    # -- resize -----------------------------------------------------------------------------
    @async_test
    async def test_resize_then_revert_then_resize_and_confirm(self):
        await self._setup()
        instance = await self._spawn(SMALL, wait_for_boot=True)
        mark = await self.boot_mark(instance)
        await self.driver.resize(self.ctxt, instance, dict(LARGE))
        info = await self.driver.get_info(instance)
        self.assertEqual((info["state"], info["num_cpu"], info["max_mem_kb"]), (states.RUNNING, 2, 192 * 1024))
        await self.driver.revert_resize(self.ctxt, instance, dict(SMALL))
        info = await self.driver.get_info(instance)
        self.assertEqual((info["state"], info["num_cpu"], info["max_mem_kb"]), (states.RUNNING, 1, 128 * 1024))
        await self.after_revert(instance)
        await self.guest_settled(instance, mark)
        mark = await self.boot_mark(instance)
        await self.driver.resize(self.ctxt, instance, dict(LARGE))
        await self.driver.confirm_resize(self.ctxt, instance)
        await self.driver.confirm_resize(self.ctxt, instance)  # idempotent
        info = await self.driver.get_info(instance)
        self.assertEqual((info["state"], info["num_cpu"], info["max_mem_kb"]), (states.RUNNING, 2, 192 * 1024))
        await self.after_confirm(instance, mark)
        await self.driver.destroy(self.ctxt, instance)
        await self._assert_gone(instance)

    async def boot_mark(self, instance):
        """Hook: something :meth:`guest_settled` can tell later boots from (default: None)."""

    async def guest_settled(self, instance, mark):
        """Hook: wait until a guest restarted since ``mark`` is ready for a clean shutdown (default: at once)."""

    async def after_soft_reboot(self, instance):
        """Hook: driver-specific checks once a soft reboot finished and the guest booted again."""

    async def after_revert(self, instance):
        """Hook: driver-specific checks once a resize was reverted."""

    async def after_confirm(self, instance, mark):
        """Hook: driver-specific checks once a resize (restarting the guest after ``mark``) was confirmed."""
