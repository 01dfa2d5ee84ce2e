"""Client side of topic ``scheduler``."""

from __future__ import annotations

from nova_twisted.rpc import RPCClient


class SchedulerAPI:
    """Casts to nova-scheduler."""

    def __init__(self, transport, timeout: float | None = None):
        self.client = RPCClient(transport, "scheduler", version="1.0", timeout=timeout)

    def schedule_and_build(self, ctxt, request_spec, instance_uuids, attempt=1, tried_hosts=()):
        """Cast: place the instances, claim their resources, start their builds."""
        return self.client.cast(
            ctxt,
            "schedule_and_build",
            request_spec=request_spec,
            instance_uuids=list(instance_uuids),
            attempt=attempt,
            tried_hosts=list(tried_hosts),
        )
