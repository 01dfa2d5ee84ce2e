"""Client side of topic ``conductor``."""

from __future__ import annotations

from nova_twisted.context import get_admin_context
from nova_twisted.rpc import RPCClient


class ConductorAPI:
    """Calls conductor; every method returns a Deferred of the conductor's answer."""

    def __init__(self, transport, timeout: float | None = None):
        self.client = RPCClient(transport, "conductor", version="1.0", timeout=timeout)

    def service_register(self, ctxt, binary, host, topic=None):
        return self.client.call(ctxt, "service_register", binary=binary, host=host, topic=topic)

    def service_heartbeat(self, ctxt, binary, host):
        return self.client.call(ctxt, "service_heartbeat", binary=binary, host=host)


class ConductorServiceGroup:
    """IServiceGroup for services without database access (compute): through conductor."""

    def __init__(self, conductor: ConductorAPI):
        self.conductor = conductor

    def register(self, binary, host, topic):
        return self.conductor.service_register(get_admin_context(), binary, host, topic)

    def heartbeat(self, binary, host):
        return self.conductor.service_heartbeat(get_admin_context(), binary, host)
