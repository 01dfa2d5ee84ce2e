"""The libvirt driver survives a libvirtd restart: it reconnects and events flow again.

The driver talks to the real libvirtd through a Unix-socket relay owned by
the test (``qemu+unix:///system?socket=<relay>``). Cutting every relayed
connection and refusing new ones for a while is exactly what a client sees
when libvirtd restarts, without disturbing the real daemon other tests use.
"""

from __future__ import annotations

import os
import random
import uuid

import libvirt
import pytest
from twisted.internet import defer, protocol, reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from nova_twisted import exception
from nova_twisted.compute import states
from nova_twisted.virt.libvirt.driver import LibvirtDriver
from tests.contract.driver_contract import SMALL, async_test, sleep, wait_until
from tests.libvirt_helpers import QEMU_URI, image_store, libvirt_conf, scratch_dir, sweep_domains, upload_test_guest

pytestmark = [pytest.mark.libvirt, pytest.mark.slow]

LIBVIRT_SOCKET = "/var/run/libvirt/libvirt-sock"


class _Upstream(protocol.Protocol):
    def __init__(self, downstream):
        self.downstream = downstream

    def connectionMade(self):
        self.downstream.upstream = self
        self.downstream.transport.resumeProducing()
        if self.downstream.buffered:
            self.transport.write(b"".join(self.downstream.buffered))
            self.downstream.buffered = []

    def dataReceived(self, data):
        self.downstream.transport.write(data)

    def connectionLost(self, reason=None):
        self.downstream.transport.loseConnection()


class _Downstream(protocol.Protocol):
    def __init__(self, relay):
        self.relay = relay
        self.upstream = None
        self.buffered = []

    def connectionMade(self):
        self.relay.live.add(self)
        self.transport.pauseProducing()
        protocol.ClientCreator(reactor, _Upstream, self).connectUNIX(LIBVIRT_SOCKET).addErrback(
            lambda _: self.transport.loseConnection()
        )

    def dataReceived(self, data):
        if self.upstream is None:
            self.buffered.append(data)
        else:
            self.upstream.transport.write(data)

    def connectionLost(self, reason=None):
        self.relay.live.discard(self)
        if self.upstream is not None:
            self.upstream.transport.loseConnection()


class Relay(protocol.Factory):
    """Relays a Unix socket to libvirtd's; :meth:`down` plays a daemon going away, :meth:`up` coming back."""

    def __init__(self, path):
        self.path = path
        self.live = set()
        self.port = None
        self.connections = 0

    def buildProtocol(self, addr):
        self.connections += 1
        return _Downstream(self)

    def up(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.port = reactor.listenUNIX(self.path, self)

    def down(self):
        for conn in list(self.live):
            conn.transport.abortConnection()
        port, self.port = self.port, None
        return defer.maybeDeferred(port.stopListening) if port else defer.succeed(None)


class LibvirtReconnectTest(unittest.TestCase):
    timeout = 180

    @async_test
    async def test_driver_reconnects_after_libvirtd_restarts_and_events_flow_again(self):
        self.host_name = f"reconnect-{uuid.uuid4().hex[:8]}"
        scratch = scratch_dir(self)
        relay = Relay(os.path.join(scratch, "libvirt-sock"))
        relay.up()
        self.addCleanup(relay.down)
        uri = f"qemu+unix:///system?socket={relay.path}"
        store, ctxt = image_store(self)
        conf = libvirt_conf(os.path.join(scratch, "instances"), uri, **{"libvirt.reconnect_interval": 1})
        driver = LibvirtDriver(conf, reactor, store, self.host_name)
        self.addCleanup(deferToThread, sweep_domains, QEMU_URI, self.host_name)
        self.addCleanup(driver.cleanup_host)
        await driver.init_host(self.host_name)
        events = []
        driver.register_event_listener(lambda u, s: events.append((u, s)))
        image = await upload_test_guest(store, ctxt)
        ident = 0x7E570000 + random.randint(0, 0xFFFF)
        instance = dict(SMALL, uuid=str(uuid.uuid4()), id=ident, name=f"instance-{ident:08x}", flavor=dict(SMALL))
        self.addCleanup(driver.destroy, ctxt, instance)
        await driver.spawn(ctxt, instance, image)
        self.assertEqual(driver.libvirt.connections_opened, 1)

        # libvirtd "restarts": every connection drops, and for a while nobody answers.
        await relay.down()
        await sleep(0.5)
        with self.assertRaises(exception.HypervisorError):
            await driver.list_instances()
        await sleep(1.5)  # the driver keeps trying every reconnect_interval
        relay.up()
        await wait_until(lambda: driver.libvirt.connections_opened >= 2, 15, "the driver to reconnect")
        self.assertEqual(await driver.list_instances(), [instance["uuid"]])  # the guest kept running
        self.assertEqual((await driver.get_info(instance))["state"], states.RUNNING)

        # Events come through the new connection: pause the guest behind the driver's back.
        def pause_outside():
            conn = libvirt.open(QEMU_URI)
            try:
                conn.lookupByUUIDString(instance["uuid"]).suspend()
            finally:
                conn.close()

        del events[:]
        await deferToThread(pause_outside)
        await wait_until(lambda: (instance["uuid"], states.PAUSED) in events, 15, "a PAUSED event after reconnecting")
