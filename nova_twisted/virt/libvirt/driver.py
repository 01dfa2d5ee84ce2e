"""The libvirt compute driver: real guests on QEMU/KVM (or QEMU/TCG).

Files of an instance live in ``<instances_path>/<uuid>/``: ``disk`` (a
qcow2 overlay on a base image in ``_base/``), ``kernel``/``ramdisk``
(copies of the AKI/ARI, for direct kernel boot), ``disk.local`` (the
flavor's ephemeral disk, blank), ``console.log`` (the serial console),
``disk.config`` (the config drive with metadata and user data, when the
instance has user data or a key, or [libvirt] force_config_drive is set),
``libvirt.xml`` (the domain as defined) and ``images.json`` (the bases
it was built from, and the image facts needed to rebuild its XML). A
resize keeps the old directory as ``<uuid>_resize`` until it is confirmed
or reverted.

Every libvirt call runs on the driver's thread pool (see host.py), qemu-img
runs as a child process, and the domain XML comes from the typed model in
config.py. Operations on one instance are serialized.
"""

from __future__ import annotations

import functools
import os
import shutil

import libvirt
from twisted.internet import defer, task
from twisted.logger import Logger
from zope.interface import implementer

from nova_twisted import exception
from nova_twisted.compute import states
from nova_twisted.virt.interfaces import IComputeDriver
from nova_twisted.virt.libvirt import blocking, configdrive, imagecache, qemuimg
from nova_twisted.virt.libvirt import config as vconfig
from nova_twisted.virt.libvirt.host import LibvirtHost
from nova_twisted.virt.libvirt.resources import host_resources

log = Logger(namespace="nova.virt.libvirt")

GiB = 1024**3
#: Image facts kept in images.json, enough to rebuild the domain XML later (resize, revert).
_IMAGE_FACTS = ("id", "disk_format", "os_command_line", "hw_machine_type", "architecture")


def _serialized(method):
    """Run the coroutine ``method(self, ..., instance, ...)`` alone for its instance; return a Deferred."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        instance = kwargs.get("instance") or next(a for a in args if isinstance(a, dict) and "uuid" in a)
        lock = self._locks.setdefault(instance["uuid"], defer.DeferredLock())

        def release(result):
            if not lock.locked and not lock.waiting:
                self._locks.pop(instance["uuid"], None)
            return result

        d = lock.run(lambda: defer.ensureDeferred(method(self, *args, **kwargs)))
        return d.addBoth(release)

    return wrapper


@implementer(IComputeDriver)
class LibvirtDriver:
    """IComputeDriver on libvirt; ``conf`` is the whole typed configuration."""

    name = "libvirt"

    def __init__(self, conf, clock, image_service, host: str, reactor=None):
        if reactor is None:
            from twisted.internet import reactor
        self.conf = conf
        self.clock = clock if clock is not None else reactor
        self.reactor = reactor
        self.image_service = image_service
        self.host = host
        lv = conf.libvirt
        self.virt_type = lv.virt_type
        self.instances_path = os.path.abspath(conf.compute.instances_path)
        self.libvirt = LibvirtHost(
            lv.connection_uri or "qemu:///system",
            reactor,
            clock=self.clock,
            pool_size=lv.thread_pool_size,
            reconnect_interval=lv.reconnect_interval,
        )
        self.libvirt.on_event = self._emit
        self.image_cache = imagecache.ImageCache(
            self.instances_path,
            image_service,
            reactor,
            self.libvirt.run_blocking,
            clock=self.clock,
            remove_unused=lv.remove_unused_base_images,
            max_age=lv.remove_unused_base_images_age,
        )
        console_types = [kind for kind in ("vnc", "spice") if getattr(conf, kind).enabled]
        self.capabilities = {
            "console_types": console_types,
            "supports_pause": True,
            "supports_suspend": True,
            "supports_resize": True,
        }
        #: Seconds between two looks at a guest that is shutting down.
        self.poll_interval = 0.5
        self._listeners = []
        self._locks: dict[str, defer.DeferredLock] = {}
        self._cache_mode = lv.disk_cachemode
        #: Seconds between two runs of manage_image_cache (nova-compute schedules it).
        self.image_cache_interval = lv.image_cache_manager_interval

    # -- host ---------------------------------------------------------------------------
    def init_host(self, host):
        """Open the connection, check the hypervisor, create the instances directory; Deferred."""
        return defer.ensureDeferred(self._init_host(host))

    async def _init_host(self, host):
        self.host = host
        await self.libvirt.start()
        await self.libvirt.run_blocking(self._prepare_dirs)
        if not self._cache_mode:
            direct = await self.libvirt.run_blocking(blocking.supports_direct_io, self.instances_path)
            self._cache_mode = "none" if direct else "writethrough"
        await self.libvirt.run(self._check_virt_type)
        log.info(
            "libvirt driver ready on {uri} ({virt_type}), instances in {path}",
            uri=self.libvirt.uri,
            virt_type=self.virt_type,
            path=self.instances_path,
        )

    def _prepare_dirs(self) -> None:
        os.makedirs(os.path.join(self.instances_path, imagecache.BASE_DIR), exist_ok=True)
        for path in (self.instances_path, os.path.join(self.instances_path, imagecache.BASE_DIR)):
            os.chmod(path, os.stat(path).st_mode | 0o755)
        # qemu runs as another user (libvirt-qemu): every parent must let it through.
        parent = self.instances_path
        while parent != os.path.dirname(parent):
            parent = os.path.dirname(parent)
            if not os.stat(parent).st_mode & 0o001:
                log.warn("{path} is not searchable by other users: qemu may not reach instance files", path=parent)

    def _check_virt_type(self, conn) -> None:
        if conn.getType() != "QEMU":
            return  # test:///default and friends
        caps = conn.getCapabilities()
        if f"<domain type='{self.virt_type}'" not in caps:
            raise exception.StartupError(
                reason=f"libvirt at {self.libvirt.uri} cannot run {self.virt_type} guests "
                "(set [libvirt] virt_type = qemu where KVM is unavailable)"
            )

    def cleanup_host(self):
        """Close the connection and stop the thread pool; Deferred."""
        return self.libvirt.stop()

    def register_event_listener(self, callback):
        """Have ``callback(uuid, power_state)`` called on the reactor for every lifecycle event.

        libvirt reports changes the driver itself makes too (a pause, a
        reboot's stop and start); compute ignores events of instances with a
        task in progress.
        """
        self._listeners.append(callback)

    def _emit(self, uuid: str, state: int) -> None:
        for callback in list(self._listeners):
            try:
                callback(uuid, state)
            except Exception:  # noqa: BLE001 - one listener must not starve the others
                log.failure("event listener failed for {uuid}", uuid=uuid)

    def _instance_dir(self, uuid: str) -> str:
        return os.path.join(self.instances_path, uuid)

    # -- queries --------------------------------------------------------------------------
    def list_instances(self):
        """Deferred firing with the uuids of the guests this driver created for this host."""
        return self.libvirt.run(self._list_instances)

    def _list_instances(self, conn) -> list[str]:
        uuids = []
        for dom in conn.listAllDomains(0):
            try:
                xml = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, vconfig.NOVA_NS)
            except libvirt.libvirtError:
                continue  # not one of ours (or gone meanwhile)
            if vconfig.parse_metadata(xml).get("host") == self.host:
                uuids.append(dom.UUIDString())
        return sorted(uuids)

    def get_info(self, instance):
        """Deferred firing with the guest's state and size; InstanceNotFound if it has none."""
        return self.libvirt.run(self._get_info, instance["uuid"])

    @staticmethod
    def _get_info(conn, uuid: str) -> dict:
        dom = blocking.lookup(conn, uuid)
        _state, max_mem, mem, vcpus, cpu_time = dom.info()
        return {
            "state": blocking.domain_power_state(dom),
            "max_mem_kb": max_mem,
            "mem_kb": mem,
            "num_cpu": vcpus,
            "cpu_time_ns": cpu_time,
        }

    def get_available_resource(self):
        """Deferred firing with this host's resources (see IComputeDriver)."""
        return self.libvirt.run(host_resources, self.instances_path)

    def get_console_output(self, ctxt, instance):
        """Deferred firing with the tail of the guest's console.log (at most console_log_max_bytes)."""
        return defer.ensureDeferred(self._get_console_output(instance))

    async def _get_console_output(self, instance):
        await self.libvirt.run(blocking.lookup, instance["uuid"])
        path = os.path.join(self._instance_dir(instance["uuid"]), "console.log")
        return await self.libvirt.run_blocking(blocking.tail, path, self.conf.libvirt.console_log_max_bytes)

    def get_vnc_console(self, ctxt, instance):
        """Deferred firing with the VNC server of a running guest, as the proxy reaches it."""
        return defer.ensureDeferred(self._get_console(instance, "vnc"))

    def get_spice_console(self, ctxt, instance):
        """Deferred firing with the SPICE server of a running guest, as the proxy reaches it."""
        return defer.ensureDeferred(self._get_console(instance, "spice"))

    async def _get_console(self, instance, kind: str) -> dict:
        uuid = instance["uuid"]
        if not getattr(self.conf, kind).enabled:
            raise exception.ConsoleTypeUnavailable(console_type=kind)
        state, xml = await self.libvirt.run(blocking.state_and_xml, uuid)
        if state not in (states.RUNNING, states.PAUSED):
            raise exception.InstanceNotRunning(instance_uuid=uuid)
        graphics = vconfig.parse_graphics(xml).get(kind)
        if graphics is None or graphics["port"] <= 0:
            raise exception.ConsoleTypeUnavailable(console_type=kind)
        return {
            "host": getattr(self.conf, kind).server_proxyclient_address,
            "port": graphics["port"],
            "internal_access_path": None,
        }

    # -- spawn ------------------------------------------------------------------------------
    @_serialized
    async def spawn(self, ctxt, instance, image_meta, admin_password=None):
        """Fetch the images, build the overlay, define and start the guest; Deferred.

        Fails with HypervisorError and leaves nothing behind.
        """
        uuid = instance["uuid"]
        inst_dir = self._instance_dir(uuid)
        if await self.libvirt.run(lambda conn: blocking.exists(conn, uuid)):
            raise exception.HypervisorError(reason=f"a guest with uuid {uuid} already exists")
        if await self.libvirt.run_blocking(os.path.exists, inst_dir):
            raise exception.HypervisorError(reason=f"instance directory {inst_dir} already exists")
        image_id = image_meta.get("id") or instance.get("image_ref")
        kernel_id = image_meta.get("kernel_id") or instance.get("kernel_id") or None
        ramdisk_id = image_meta.get("ramdisk_id") or instance.get("ramdisk_id") or None
        image_ids = [i for i in (image_id, kernel_id, ramdisk_id) if i]
        bases = [imagecache.base_name(i) for i in image_ids]
        self.image_cache.hold(bases)
        created_dir = defined = False
        try:
            base, meta = await self.image_cache.fetch(ctxt, image_id)
            if meta.get("disk_format") in ("aki", "ari"):
                raise exception.HypervisorError(reason=f"image {image_id} is a {meta['disk_format']}, not bootable")
            base_fmt = imagecache.DISK_FORMATS[meta["disk_format"]]
            kernel = (await self.image_cache.fetch(ctxt, kernel_id))[0] if kernel_id else None
            ramdisk = (await self.image_cache.fetch(ctxt, ramdisk_id))[0] if ramdisk_id else None
            base_info = await qemuimg.info(self.reactor, base, fmt=base_fmt)
            root_bytes = int(instance.get("root_gb") or 0) * GiB
            if root_bytes and root_bytes < base_info["virtual-size"]:
                raise exception.HypervisorError(
                    reason=f"flavor's root disk ({instance['root_gb']} GiB) is smaller than image {image_id} "
                    f"({base_info['virtual-size']} bytes)"
                )
            await self.libvirt.run_blocking(os.makedirs, inst_dir, 0o755)
            created_dir = True
            await self.libvirt.run_blocking(os.chmod, inst_dir, 0o755)
            disk = os.path.join(inst_dir, "disk")
            await qemuimg.create_overlay(self.reactor, disk, base, base_fmt, root_bytes or None)
            if int(instance.get("ephemeral_gb") or 0):
                local = os.path.join(inst_dir, "disk.local")
                await qemuimg.create_blank(self.reactor, local, int(instance["ephemeral_gb"]) * GiB)
            facts = {k: meta.get(k) for k in _IMAGE_FACTS if meta.get(k) not in (None, "")}
            facts.update(kernel=bool(kernel), ramdisk=bool(ramdisk))
            if configdrive.wanted(instance, self.conf.libvirt.force_config_drive):
                await self.libvirt.run_blocking(configdrive.build, os.path.join(inst_dir, "disk.config"), instance)
                facts["config_drive"] = True
            await self.libvirt.run_blocking(blocking.prepare_instance_dir, inst_dir, kernel, ramdisk, bases, facts)
            guest = self._guest_config(instance, facts, self._flavor(instance))
            xml = guest.to_xml()
            await self.libvirt.run_blocking(blocking.write, os.path.join(inst_dir, "libvirt.xml"), xml)
            await self.libvirt.run(lambda conn: conn.defineXML(xml))
            defined = True
            await self.libvirt.run(self._start, uuid)
        except Exception as exc:
            await self._undo_spawn(uuid, inst_dir, defined, created_dir)
            if isinstance(exc, exception.HypervisorError):
                raise
            raise exception.HypervisorError(reason=f"spawn of {uuid} failed: {exc}") from exc
        finally:
            self.image_cache.release(bases)
        log.info("spawned {name} ({uuid})", name=instance.get("name"), uuid=uuid)

    async def _undo_spawn(self, uuid, inst_dir, defined, created_dir) -> None:
        try:
            if defined:
                await self.libvirt.run(blocking.destroy_domain, uuid)
            if created_dir:
                await self.libvirt.run_blocking(shutil.rmtree, inst_dir, True)
        except Exception:  # noqa: BLE001 - report the spawn's own error, not the clean-up's
            log.failure("clean-up after the failed spawn of {uuid} failed", uuid=uuid)

    @staticmethod
    def _flavor(instance: dict) -> dict:
        flavor = dict(instance.get("flavor") or {})
        for key in ("memory_mb", "vcpus", "root_gb", "ephemeral_gb"):
            if instance.get(key) is not None:
                flavor[key] = instance[key]
        return flavor

    def _guest_config(self, instance: dict, facts: dict, flavor: dict) -> vconfig.Guest:
        """Return the domain of ``instance`` with ``flavor``'s size, from the image ``facts``."""
        uuid = instance["uuid"]
        inst_dir = self._instance_dir(uuid)
        lv = self.conf.libvirt
        guest_os = vconfig.GuestOS(
            arch=facts.get("architecture") or "x86_64",
            machine=facts.get("hw_machine_type") or lv.machine_type,
        )
        if facts.get("kernel"):
            guest_os.kernel = os.path.join(inst_dir, "kernel")
            guest_os.initrd = os.path.join(inst_dir, "ramdisk") if facts.get("ramdisk") else ""
            guest_os.cmdline = facts.get("os_command_line") or lv.kernel_cmdline
        cpu_mode = lv.cpu_mode or ("host-model" if self.virt_type == "kvm" else "none")
        disks = [vconfig.GuestDisk(os.path.join(inst_dir, "disk"), cache=self._cache_mode)]
        if int(flavor.get("ephemeral_gb") or 0):
            disks.append(vconfig.GuestDisk(os.path.join(inst_dir, "disk.local"), target="vdb", cache=self._cache_mode))
        if facts.get("config_drive"):
            target = "vd" + "abcdefgh"[len(disks)]
            disks.append(
                vconfig.GuestDisk(
                    os.path.join(inst_dir, "disk.config"),
                    target=target,
                    driver_type="raw",
                    cache=self._cache_mode,
                    readonly=True,
                )
            )
        graphics = []
        if self.conf.vnc.enabled:
            graphics.append(vconfig.GuestGraphics("vnc", self.conf.vnc.server_listen, keymap=self.conf.vnc.keymap))
        if self.conf.spice.enabled:
            graphics.append(
                vconfig.GuestGraphics("spice", self.conf.spice.server_listen, keymap=self.conf.spice.keymap)
            )
        return vconfig.Guest(
            virt_type=self.virt_type,
            name=instance.get("name") or f"instance-{uuid}",
            uuid=uuid,
            memory_kib=int(flavor["memory_mb"]) * 1024,
            vcpus=int(flavor["vcpus"]),
            os=guest_os,
            cpu_mode=cpu_mode,
            disks=disks,
            serial_log=vconfig.GuestSerialLog(os.path.join(inst_dir, "console.log")),
            graphics=graphics,
            metadata=vconfig.NovaMetadata(
                uuid=uuid,
                name=instance.get("display_name") or instance.get("name") or "",
                host=self.host,
                project_id=instance.get("project_id") or "",
                flavor_name=flavor.get("name") or "",
                image_id=facts.get("id") or "",
            ),
            spice_agent=self.conf.spice.agent_enabled,
        )

    @staticmethod
    def _start(conn, uuid: str) -> None:
        """Start a defined guest (restoring a managed save); a restored guest that comes back paused runs."""
        dom = blocking.lookup(conn, uuid)
        if not dom.isActive():
            dom.create()
        if dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
            dom.resume()

    # -- destroy --------------------------------------------------------------------------
    @_serialized
    async def destroy(self, ctxt, instance, destroy_disks=True):
        """Stop and undefine the guest, and remove its files; an absent guest is no error."""
        uuid = instance["uuid"]
        await self.libvirt.run(blocking.destroy_domain, uuid)
        if destroy_disks:
            inst_dir = self._instance_dir(uuid)
            await self.libvirt.run_blocking(shutil.rmtree, inst_dir, True)
            await self.libvirt.run_blocking(shutil.rmtree, inst_dir + "_resize", True)

    # -- power ----------------------------------------------------------------------------
    async def _state(self, uuid: str) -> int:
        return await self.libvirt.run(lambda conn: blocking.domain_power_state(blocking.lookup(conn, uuid)))

    async def _require(self, uuid: str, allowed: tuple, action: str) -> int:
        state = await self._state(uuid)
        if state not in allowed:
            raise exception.InstanceInvalidState(
                action=action,
                instance_uuid=uuid,
                attr="power_state",
                state=states.POWER_STATE_NAMES.get(state, state),
            )
        return state

    async def _wait_for_shutoff(self, uuid: str, timeout: float, resend_every: float = 0) -> bool:
        """Poll until the guest is off; True if it got there within ``timeout`` seconds."""
        deadline = self.clock.seconds() + timeout
        last_sent = self.clock.seconds()
        while True:
            if await self._state(uuid) in (states.SHUTDOWN, states.CRASHED, states.SUSPENDED):
                return True
            now = self.clock.seconds()
            if now >= deadline:
                return False
            if resend_every and now - last_sent >= resend_every:
                await self.libvirt.run(blocking.shutdown_domain, uuid)
                last_sent = now
            await task.deferLater(self.clock, min(self.poll_interval, deadline - now), lambda: None)

    async def _power_off(self, uuid: str, timeout: float, retry_interval: float = 0) -> None:
        state = await self._state(uuid)
        if state == states.SUSPENDED:
            await self.libvirt.run(lambda conn: blocking.lookup(conn, uuid).managedSaveRemove(0))
            return
        if state in (states.SHUTDOWN, states.CRASHED):
            return
        if timeout > 0 and state == states.RUNNING:
            await self.libvirt.run(blocking.shutdown_domain, uuid)
            if await self._wait_for_shutoff(uuid, timeout, retry_interval):
                return
            log.info("guest {uuid} did not shut down within {timeout}s; powering it off", uuid=uuid, timeout=timeout)
        await self.libvirt.run(blocking.hard_stop, uuid)

    @_serialized
    async def power_off(self, instance, timeout=0, retry_interval=0):
        """Shut the guest down (ACPI for up to ``timeout`` seconds, then forcibly); Deferred."""
        await self._power_off(instance["uuid"], timeout, retry_interval)

    @_serialized
    async def power_on(self, ctxt, instance):
        """Start a shut-down guest; Deferred firing once it runs."""
        uuid = instance["uuid"]
        await self._require(uuid, (states.SHUTDOWN, states.CRASHED, states.RUNNING, states.NOSTATE), "power_on")
        await self.libvirt.run(self._start, uuid)

    @_serialized
    async def reboot(self, ctxt, instance, reboot_type):
        """Reboot: SOFT presses the ACPI power button and restarts the guest once it is off,
        falling back to HARD after [libvirt] soft_reboot_timeout; HARD stops and starts it."""
        uuid = instance["uuid"]
        if reboot_type == "SOFT":
            await self._require(uuid, (states.RUNNING,), "reboot")
            await self.libvirt.run(blocking.shutdown_domain, uuid)
            if await self._wait_for_shutoff(uuid, self.conf.libvirt.soft_reboot_timeout):
                await self.libvirt.run(self._start, uuid)
                return
            log.info("guest {uuid} ignored the soft reboot; rebooting it hard", uuid=uuid)
        await self.libvirt.run(blocking.hard_stop, uuid, True)
        await self.libvirt.run(self._start, uuid)

    @_serialized
    async def pause(self, instance):
        """Freeze the guest in memory; Deferred. InstanceInvalidState unless it runs."""
        uuid = instance["uuid"]
        await self._require(uuid, (states.RUNNING,), "pause")
        await self.libvirt.run(lambda conn: blocking.lookup(conn, uuid).suspend())

    @_serialized
    async def unpause(self, instance):
        """Thaw a paused guest; Deferred. InstanceInvalidState unless it is paused."""
        uuid = instance["uuid"]
        await self._require(uuid, (states.PAUSED,), "unpause")
        await self.libvirt.run(lambda conn: blocking.lookup(conn, uuid).resume())

    @_serialized
    async def suspend(self, ctxt, instance):
        """Save the guest's memory (libvirt managed save) and stop it; Deferred."""
        uuid = instance["uuid"]
        await self._require(uuid, (states.RUNNING, states.PAUSED), "suspend")
        await self.libvirt.run(lambda conn: blocking.lookup(conn, uuid).managedSave(0))

    @_serialized
    async def resume(self, ctxt, instance):
        """Restore a suspended guest from its managed save; Deferred firing once it runs."""
        uuid = instance["uuid"]
        await self._require(uuid, (states.SUSPENDED,), "resume")
        await self.libvirt.run(self._start, uuid)

    # -- snapshot -------------------------------------------------------------------------
    @_serialized
    async def snapshot(self, ctxt, instance, image_id, update_task_state):
        """Convert the guest's overlay and its base into one standalone qcow2 and upload it as ``image_id``.

        A running guest is paused for the copy (pausing flushes its disk) and
        resumed afterwards.
        """
        uuid = instance["uuid"]
        state = await self._state(uuid)
        await update_task_state(states.IMAGE_PENDING_UPLOAD, states.IMAGE_SNAPSHOT)
        inst_dir = self._instance_dir(uuid)
        target = os.path.join(inst_dir, f"snapshot-{image_id}.qcow2")
        try:
            if state == states.RUNNING:
                await self.libvirt.run(lambda conn: blocking.lookup(conn, uuid).suspend())
            try:
                await qemuimg.convert(self.reactor, os.path.join(inst_dir, "disk"), target, force_share=True)
            finally:
                if state == states.RUNNING:
                    await self.libvirt.run(lambda conn: blocking.lookup(conn, uuid).resume())
            await update_task_state(states.IMAGE_UPLOADING, states.IMAGE_PENDING_UPLOAD)
            await self.image_service.update(ctxt, image_id, {"disk_format": "qcow2", "container_format": "bare"})
            await self.image_service.upload(ctxt, image_id, target)
        finally:
            await self.libvirt.run_blocking(imagecache.ImageCache._unlink, target)
        log.info("snapshot of {uuid} uploaded as image {image_id}", uuid=uuid, image_id=image_id)

    # -- resize ---------------------------------------------------------------------------
    @_serialized
    async def resize(self, ctxt, instance, new_flavor):
        """Resize on this host: stop the guest, keep its directory as ``<uuid>_resize``,
        give a copy of the disk the new flavor's size, start it with the new vCPUs and memory.

        A root disk cannot shrink (Invalid). On failure the guest is put back as it was.
        """
        uuid = instance["uuid"]
        inst_dir = self._instance_dir(uuid)
        old_dir = inst_dir + "_resize"
        await self.libvirt.run(blocking.lookup, uuid)
        disk = os.path.join(inst_dir, "disk")
        current = (await qemuimg.info(self.reactor, disk, fmt="qcow2", force_share=True))["virtual-size"]
        new_root = int(new_flavor.get("root_gb") or 0) * GiB
        if new_root and new_root < current:
            raise exception.Invalid(reason="Unable to resize disk down.")
        facts = await self.libvirt.run_blocking(imagecache.read_record, inst_dir)
        await self._power_off(uuid, self.conf.libvirt.resize_shutdown_timeout)
        await self.libvirt.run_blocking(blocking.keep_for_revert, inst_dir, old_dir)
        try:
            if new_root > current:
                await qemuimg.resize(self.reactor, disk, new_root)
            flavor = dict(self._flavor(instance), **new_flavor)
            xml = self._guest_config(instance, facts, flavor).to_xml()
            await self.libvirt.run_blocking(blocking.write, os.path.join(inst_dir, "libvirt.xml"), xml)
            await self.libvirt.run(lambda conn: conn.defineXML(xml))
            await self.libvirt.run(self._start, uuid)
        except Exception:
            log.failure("resize of {uuid} failed; putting the guest back", uuid=uuid)
            await self._restore_from(old_dir, uuid)
            raise

    async def _restore_from(self, old_dir: str, uuid: str) -> None:
        inst_dir = self._instance_dir(uuid)
        await self.libvirt.run(blocking.hard_stop, uuid, True)
        await self.libvirt.run_blocking(blocking.swap_back, inst_dir, old_dir)
        xml = await self.libvirt.run_blocking(blocking.read, os.path.join(inst_dir, "libvirt.xml"))
        await self.libvirt.run(lambda conn: conn.defineXML(xml))
        await self.libvirt.run(self._start, uuid)

    @_serialized
    async def confirm_resize(self, ctxt, instance):
        """Delete the pre-resize directory; idempotent."""
        await self.libvirt.run_blocking(shutil.rmtree, self._instance_dir(instance["uuid"]) + "_resize", True)

    @_serialized
    async def revert_resize(self, ctxt, instance, old_flavor):
        """Put back the pre-resize disk and start the guest with ``old_flavor``; Deferred."""
        uuid = instance["uuid"]
        inst_dir = self._instance_dir(uuid)
        old_dir = inst_dir + "_resize"
        if not await self.libvirt.run_blocking(os.path.isdir, old_dir):
            raise exception.HypervisorError(reason=f"instance {uuid} has no resize to revert")
        facts = await self.libvirt.run_blocking(imagecache.read_record, old_dir)
        flavor = dict(self._flavor(instance), **old_flavor)
        xml = self._guest_config(instance, facts, flavor).to_xml()
        await self.libvirt.run_blocking(blocking.write, os.path.join(old_dir, "libvirt.xml"), xml)
        await self._restore_from(old_dir, uuid)

    # -- the image cache ------------------------------------------------------------------
    def manage_image_cache(self, ctxt=None, all_instances=()):
        """Run the image cache manager once; Deferred firing with its summary.

        ``all_instances`` (instance dicts compute knows on this host) count
        as users of their image, kernel and ramdisk, besides the instance
        directories found on disk. nova-compute runs it every
        ``image_cache_interval`` ([libvirt] image_cache_manager_interval) seconds.
        """
        ids = set()
        for inst in all_instances or ():
            ids.update(inst.get(k) for k in ("image_ref", "kernel_id", "ramdisk_id") if inst.get(k))
        return self.image_cache.manage(ids)
