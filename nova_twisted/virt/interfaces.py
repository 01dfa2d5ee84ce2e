"""The hypervisor seam: what nova-compute asks of a driver (fake or libvirt).

Every method returns a Deferred (or is ``async def``); none blocks the
reactor (libvirt calls run in a thread pool) and none touches the database:
drivers know only the instance dicts compute hands them.

An *instance* dict carries at least: ``uuid``, ``name`` (the domain name,
``instance-%08x``), ``id``, ``memory_mb``, ``vcpus``, ``root_gb``,
``ephemeral_gb``, ``flavor`` (dict), ``image_ref``, ``kernel_id``,
``ramdisk_id``, ``user_data``, ``key_data``, ``host``, ``project_id``.
An *image_meta* dict is what IImageService.show returns.
"""

from zope.interface import Attribute, Interface


class IComputeDriver(Interface):
    """One host's hypervisor."""

    name = Attribute("Plugin name of the driver: 'fake', 'libvirt'.")
    capabilities = Attribute(
        "dict of what the driver supports: console_types (list of 'vnc', "
        "'spice', 'serial'), supports_pause, supports_suspend, supports_resize."
    )

    def init_host(host):
        """Prepare the driver for ``host``; Deferred. Called once at compute start."""

    def cleanup_host():
        """Release what init_host took (connections, threads); Deferred."""

    def register_event_listener(callback):
        """Have ``callback(instance_uuid, power_state)`` called, on the reactor thread,
        whenever a guest's power state changes on its own (it powered itself
        off, crashed, was paused from outside).

        A driver may also report changes it made itself (libvirt reports a
        reboot's stop and start, a snapshot's pause), and events can arrive
        after the operation that caused them finished: listeners ignore
        instances with a task in progress and re-read the state with get_info
        rather than trust the order of events. Events may name guests of
        other hosts sharing the hypervisor; listeners ignore unknown uuids."""

    def list_instances():
        """Deferred firing with the uuids of every guest the driver runs on this host."""

    def get_info(instance):
        """Deferred firing with ``{"state": power_state, "max_mem_kb", "mem_kb",
        "num_cpu", "cpu_time_ns"}``; fails with InstanceNotFound if there is no guest."""

    def spawn(ctxt, instance, image_meta, admin_password=None):
        """Create and start the guest; Deferred firing when it runs.
        Fails with HypervisorError (compute may reschedule); leaves nothing behind on failure."""

    def destroy(ctxt, instance, destroy_disks=True):
        """Stop and undefine the guest and (with destroy_disks) remove its files.
        Idempotent: a guest that is already gone is not an error."""

    def reboot(ctxt, instance, reboot_type):
        """Reboot: 'SOFT' asks the guest (ACPI), falling back to hard after a
        timeout; 'HARD' resets it. Deferred firing when the guest runs again."""

    def power_off(instance, timeout=0, retry_interval=0):
        """Shut the guest down (gracefully for up to ``timeout`` seconds, then
        forcibly); Deferred firing once it is SHUTDOWN."""

    def power_on(ctxt, instance):
        """Start a shut-down guest; Deferred firing once it is RUNNING."""

    def pause(instance):
        """Freeze the guest in memory (PAUSED)."""

    def unpause(instance):
        """Thaw a paused guest (RUNNING)."""

    def suspend(ctxt, instance):
        """Save the guest's memory to disk and stop it (SUSPENDED)."""

    def resume(ctxt, instance):
        """Restore a suspended guest (RUNNING)."""

    def snapshot(ctxt, instance, image_id, update_task_state):
        """Write the guest's disk to image ``image_id`` through the image service.

        Calls ``update_task_state(task_state, expected_state)`` (returning a
        Deferred) with image_pending_upload then image_uploading as Nova does.
        Deferred firing when the upload finished.
        """

    def resize(ctxt, instance, new_flavor):
        """Resize the guest on this host to ``new_flavor`` (dict), keeping what
        revert_resize needs; the guest runs afterwards with the new size."""

    def confirm_resize(ctxt, instance):
        """Drop what revert_resize would need; idempotent."""

    def revert_resize(ctxt, instance, old_flavor):
        """Return the guest to ``old_flavor`` and its disk before the resize."""

    def get_console_output(ctxt, instance):
        """Deferred firing with the tail of the guest's serial console (str, bounded)."""

    def get_vnc_console(ctxt, instance):
        """Deferred firing with ``{"host", "port", "internal_access_path"}`` of the
        guest's VNC server; fails with ConsoleTypeUnavailable if it has none."""

    def get_spice_console(ctxt, instance):
        """As get_vnc_console, for SPICE."""

    def get_available_resource():
        """Deferred firing with this host's resources: ``vcpus``, ``memory_mb``,
        ``local_gb``, ``vcpus_used``, ``memory_mb_used``, ``local_gb_used``,
        ``hypervisor_type``, ``hypervisor_version``, ``hypervisor_hostname``,
        ``cpu_arch``, ``cpu_info`` (dict), ``running_vms``."""


class IComputeDriverFactory(Interface):
    """A ``plugins/`` drop-in that makes a driver; chosen by ``[compute] driver``."""

    name = Attribute("The name nova.conf uses for this driver.")

    def create(conf, clock, image_service, host):
        """Return a new IComputeDriver for ``host``."""
