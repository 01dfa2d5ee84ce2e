"""amqps:// URLs: the AMQP transport over TLS, verified against a CA file.

RabbitMQ here listens in plain text only, so a TLS-terminating proxy (in
this process, with a throw-away self-signed certificate) stands in front of it.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import defer, reactor, ssl
from twisted.trial import unittest

from nova_twisted import exception
from nova_twisted.context import RequestContext
from nova_twisted.rpc import RPCClient, RPCServer, get_transport
from tests.contract import transport_rabbit
from tests.contract.test_transport_contract import ContractManager
from tests.contract.transport_proxy import BrokerProxy

pytestmark = [pytest.mark.rabbitmq]


def self_signed(directory: str) -> tuple[str, bytes]:
    """Write a certificate for ``localhost`` (its own CA); return its path and cert+key PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = os.path.join(directory, "ca.pem")
    with open(path, "wb") as handle:
        handle.write(cert_pem)
    return path, cert_pem + key_pem


class AMQPOverTLSTests(unittest.TestCase):
    """amqps:// against a TLS endpoint with a private CA."""

    timeout = 60

    def setUp(self):
        self.vhost, direct_url = transport_rabbit.create_vhost()
        self.addCleanup(transport_rabbit.delete_vhost, self.vhost)
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.ca_file, pem = self_signed(directory)
        self.proxy = BrokerProxy(tls_options=ssl.PrivateCertificate.loadPEM(pem).options())
        self.proxy.accept()
        self.addCleanup(self.proxy.refuse)
        self.addCleanup(self.proxy.cut)
        self.direct_url = direct_url
        self.tls_url = direct_url.replace("amqp://", "amqps://").replace(
            "127.0.0.1:5672", f"localhost:{self.proxy.port}"
        )

    def test_calls_work_over_tls_with_the_ca_file(self):
        return defer.ensureDeferred(self._calls_work_over_tls())

    async def _calls_work_over_tls(self):
        topic = f"tls{uuid.uuid4().hex[:8]}"
        server_transport = get_transport([self.direct_url], clock=reactor)
        await server_transport.connect()
        self.addCleanup(server_transport.close)
        server = RPCServer(server_transport, topic, None, ContractManager())
        await server.start()
        self.addCleanup(server.stop)
        transport = get_transport([self.tls_url], clock=reactor, ssl_ca_file=self.ca_file)
        await transport.connect()
        self.addCleanup(transport.close)
        self.assertTrue(transport.broker.tls)
        client = RPCClient(transport, topic, timeout=10)
        self.assertEqual(await client.call(RequestContext(), "echo", value="secret stuff"), "secret stuff")
        await client.cast(RequestContext(), "record", value=1)

    def test_an_untrusted_certificate_is_refused(self):
        return defer.ensureDeferred(self._untrusted())

    async def _untrusted(self):
        transport = get_transport([self.tls_url], clock=reactor, connect_timeout=5)
        with self.assertRaises(exception.MessagingError) as caught:
            await transport.connect()
        self.assertIn("localhost", str(caught.exception))
