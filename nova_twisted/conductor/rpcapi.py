"""Client side of topic ``conductor``: compute's only way to the database."""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger

from nova_twisted import exception
from nova_twisted.context import get_admin_context
from nova_twisted.rpc import RPCClient

log = Logger(namespace="nova.conductor.rpcapi")

_MISSING = object()


class ConductorAPI:
    """Calls conductor; every method returns a Deferred of the conductor's answer."""

    def __init__(self, transport, timeout: float | None = None):
        self.client = RPCClient(transport, "conductor", version="1.0", timeout=timeout)

    def service_register(self, ctxt, binary, host, topic=None):
        return self.client.call(ctxt, "service_register", binary=binary, host=host, topic=topic)

    def service_heartbeat(self, ctxt, binary, host):
        return self.client.call(ctxt, "service_heartbeat", binary=binary, host=host)

    def instance_get(self, ctxt, uuid, read_deleted="no"):
        return self.client.call(ctxt, "instance_get", uuid=uuid, read_deleted=read_deleted)

    def instances_on_host(self, ctxt, host):
        return self.client.call(ctxt, "instances_on_host", host=host)

    def instance_update(
        self,
        ctxt,
        uuid,
        values,
        expected_task_state=_MISSING,
        expected_vm_state=_MISSING,
        event=None,
        returning=True,
    ):
        """Update an instance; fails with UnexpectedTaskState if its states moved on.

        Fires with the updated instance, or None with ``returning=False``.
        """
        kwargs = {"uuid": uuid, "values": values, "event": event}
        if expected_task_state is not _MISSING:
            kwargs["expected_task_state"] = expected_task_state
        if expected_vm_state is not _MISSING:
            kwargs["expected_vm_state"] = expected_vm_state
        if not returning:
            kwargs["returning"] = False
        return self.client.call(ctxt, "instance_update", **kwargs)

    def action_event(self, ctxt, uuid, event):
        return self.client.call(ctxt, "action_event", uuid=uuid, event=event)

    def instance_fault_create(self, ctxt, uuid, code, message, details=None, host=None):
        return self.client.call(
            ctxt, "instance_fault_create", uuid=uuid, code=code, message=message, details=details, host=host
        )

    def build_failed(self, ctxt, uuid, fault, reschedule, event=None, host=None):
        return self.client.call(
            ctxt, "build_failed", uuid=uuid, fault=fault, reschedule=reschedule, event=event, host=host
        )

    def instance_destroy(self, ctxt, uuid, event=None):
        return self.client.call(ctxt, "instance_destroy", uuid=uuid, event=event)

    def request_spec_get(self, ctxt, uuid):
        return self.client.call(ctxt, "request_spec_get", uuid=uuid)

    def compute_node_update(self, ctxt, host, nodename, resources, inventory):
        return self.client.call(
            ctxt, "compute_node_update", host=host, nodename=nodename, resources=resources, inventory=inventory
        )

    def allocations_release(self, ctxt, consumer_id):
        return self.client.call(ctxt, "allocations_release", consumer_id=consumer_id)

    def migration_get(self, ctxt, instance_uuid, status=None):
        return self.client.call(ctxt, "migration_get", instance_uuid=instance_uuid, status=status)

    def resize_finish(self, ctxt, uuid, migration_uuid, values, event=None):
        return self.client.call(
            ctxt, "resize_finish", uuid=uuid, migration_uuid=migration_uuid, values=values, event=event
        )

    def resize_confirm(self, ctxt, uuid, migration_uuid, values, event=None):
        return self.client.call(
            ctxt, "resize_confirm", uuid=uuid, migration_uuid=migration_uuid, values=values, event=event
        )

    def resize_revert(self, ctxt, uuid, migration_uuid, values, event=None):
        return self.client.call(
            ctxt, "resize_revert", uuid=uuid, migration_uuid=migration_uuid, values=values, event=event
        )

    def resize_failed(self, ctxt, uuid, migration_uuid, values, fault, event=None, host=None):
        return self.client.call(
            ctxt,
            "resize_failed",
            uuid=uuid,
            migration_uuid=migration_uuid,
            values=values,
            fault=fault,
            event=event,
            host=host,
        )


class ConductorServiceGroup:
    """IServiceGroup for services without database access (compute): through conductor.

    Registration waits for conductor (retrying every few seconds), as a
    compute host may well start before its conductor does.
    """

    def __init__(self, conductor: ConductorAPI, clock=None, retry_interval: float = 5.0):
        self.conductor = conductor
        self.clock = clock
        self.retry_interval = retry_interval

    def register(self, binary, host, topic):
        return defer.ensureDeferred(self._register(binary, host, topic))

    async def _register(self, binary, host, topic):
        client = self.conductor.client.prepare(timeout=self.retry_interval)
        while True:
            try:
                return await client.call(get_admin_context(), "service_register", binary=binary, host=host, topic=topic)
            except exception.MessagingTimeout:
                log.warn("{binary} on {host}: waiting for nova-conductor to answer", binary=binary, host=host)

    def heartbeat(self, binary, host):
        return self.conductor.service_heartbeat(get_admin_context(), binary, host)
