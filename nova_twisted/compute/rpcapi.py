"""Client side of the compute topic: casts and calls to ``compute.<host>``."""

from __future__ import annotations

from nova_twisted.rpc import RPCClient


class ComputeAPI:
    """Reaches the nova-compute serving an instance's host.

    Casts (most actions) fire once the bus holds the message; calls
    (console output, console connection info) wait for the answer.
    """

    def __init__(self, transport, timeout: float | None = None):
        self.client = RPCClient(transport, "compute", version="1.0", timeout=timeout)

    def _host(self, host: str, timeout: float | None = None) -> RPCClient:
        return self.client.prepare(server=host, timeout=timeout)

    def build_and_run_instance(self, ctxt, host, instance, request_spec, attempt=1, tried_hosts=()):
        return self._host(host).cast(
            ctxt,
            "build_and_run_instance",
            instance=instance,
            request_spec=request_spec,
            attempt=attempt,
            tried_hosts=list(tried_hosts),
        )

    def terminate_instance(self, ctxt, instance):
        return self._host(instance["host"]).cast(ctxt, "terminate_instance", instance=instance)

    def reboot_instance(self, ctxt, instance, reboot_type):
        return self._host(instance["host"]).cast(ctxt, "reboot_instance", instance=instance, reboot_type=reboot_type)

    def stop_instance(self, ctxt, instance):
        return self._host(instance["host"]).cast(ctxt, "stop_instance", instance=instance)

    def start_instance(self, ctxt, instance):
        return self._host(instance["host"]).cast(ctxt, "start_instance", instance=instance)

    def pause_instance(self, ctxt, instance):
        return self._host(instance["host"]).cast(ctxt, "pause_instance", instance=instance)

    def unpause_instance(self, ctxt, instance):
        return self._host(instance["host"]).cast(ctxt, "unpause_instance", instance=instance)

    def suspend_instance(self, ctxt, instance):
        return self._host(instance["host"]).cast(ctxt, "suspend_instance", instance=instance)

    def resume_instance(self, ctxt, instance):
        return self._host(instance["host"]).cast(ctxt, "resume_instance", instance=instance)

    def rebuild_instance(self, ctxt, instance, image_meta):
        return self._host(instance["host"]).cast(ctxt, "rebuild_instance", instance=instance, image_meta=image_meta)

    def resize_instance(self, ctxt, instance, migration, new_flavor):
        return self._host(instance["host"]).cast(
            ctxt, "resize_instance", instance=instance, migration=migration, new_flavor=new_flavor
        )

    def confirm_resize(self, ctxt, instance, migration):
        return self._host(instance["host"]).cast(ctxt, "confirm_resize", instance=instance, migration=migration)

    def revert_resize(self, ctxt, instance, migration):
        return self._host(instance["host"]).cast(ctxt, "revert_resize", instance=instance, migration=migration)

    def snapshot_instance(self, ctxt, instance, image_id):
        return self._host(instance["host"]).cast(ctxt, "snapshot_instance", instance=instance, image_id=image_id)

    def get_console_output(self, ctxt, instance, tail_length=None, timeout=30):
        return self._host(instance["host"], timeout).call(
            ctxt, "get_console_output", instance=instance, tail_length=tail_length
        )

    def get_console_connection(self, ctxt, instance, console_type, timeout=30):
        return self._host(instance["host"], timeout).call(
            ctxt, "get_console_connection", instance=instance, console_type=console_type
        )
