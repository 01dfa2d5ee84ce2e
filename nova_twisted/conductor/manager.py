"""The conductor's RPC methods: database work done on compute's behalf."""

from __future__ import annotations

from nova_twisted import utils
from nova_twisted.db import services
from nova_twisted.rpc import Manager


class ConductorManager(Manager):
    """Serves topic ``conductor``."""

    RPC_API_VERSION = "1.0"

    def __init__(self, database, clock, conf=None):
        self.database = database
        self.clock = clock
        self.conf = conf

    def service_register(self, ctxt, binary, host, topic=None):
        return self.database.run(services.register, host, binary, topic, utils.utcnow(self.clock))

    def service_heartbeat(self, ctxt, binary, host):
        return self.database.run(services.heartbeat, host, binary, utils.utcnow(self.clock))
