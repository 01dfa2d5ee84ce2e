"""Key pairs through the compute API: generate, import (ed25519, RSA, ECDSA, x509), fingerprints, versions, isolation."""

from __future__ import annotations

import base64
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from twisted.trial import unittest

from nova_twisted.api.compute import keypairs
from tests.unit.api_resource_fixtures import async_test, served


def openssh(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def md5_by_ssh_keygen(public_key: str, tmpdir: str) -> str:
    """The fingerprint OpenSSH computes (``MD5:aa:bb:...``), to check ours against."""
    import os

    path = os.path.join(tmpdir, "key.pub")
    with open(path, "w") as handle:
        handle.write(public_key + "\n")
    out = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", path], capture_output=True, text=True, check=True)
    return out.stdout.split()[1].removeprefix("MD5:")


class KeypairTests(unittest.TestCase):
    @async_test
    async def setUp(self):
        self.api = await served(self)

    async def create(self, body, token="demo", version="2.2", status=201):
        return (await self.api.ok("POST", "/os-keypairs", {"keypair": body}, token, version, status))["keypair"]

    @async_test
    async def test_generated_ssh_key_has_a_private_key_once_and_matching_fingerprint(self):
        created = await self.create({"name": "gen"})
        self.assertEqual(set(created), {"name", "public_key", "fingerprint", "user_id", "private_key", "type"})
        self.assertEqual((created["type"], created["user_id"]), ("ssh", "demo-user"))
        self.assertTrue(created["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----"))
        self.assertTrue(
            created["public_key"].startswith("ssh-rsa ") and created["public_key"].endswith(" Generated-by-Nova")
        )
        private = serialization.load_pem_private_key(created["private_key"].encode(), None)
        self.assertEqual(private.key_size, 2048)
        self.assertEqual(openssh(private), created["public_key"].removesuffix(" Generated-by-Nova"))
        self.assertEqual(created["fingerprint"], md5_by_ssh_keygen(created["public_key"], self.mktemp_dir()))
        shown = (await self.api.ok("GET", "/os-keypairs/gen", version="2.2"))["keypair"]
        self.assertNotIn("private_key", shown)
        self.assertEqual(shown["public_key"], created["public_key"])

    def mktemp_dir(self) -> str:
        import os

        path = os.path.abspath(self.mktemp())
        os.makedirs(path)
        return path

    @async_test
    async def test_imported_ed25519_rsa_and_ecdsa_keys_get_openssh_fingerprints(self):
        keys = {
            "ed": ed25519.Ed25519PrivateKey.generate(),
            "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "p256": ec.generate_private_key(ec.SECP256R1()),
            "p384": ec.generate_private_key(ec.SECP384R1()),
            "p521": ec.generate_private_key(ec.SECP521R1()),
        }
        for name, key in keys.items():
            public = openssh(key) + f" me@{name}\n"
            created = await self.create({"name": name, "public_key": public})
            self.assertNotIn("private_key", created)
            self.assertEqual(created["public_key"], public)
            self.assertEqual(created["fingerprint"], md5_by_ssh_keygen(public.strip(), self.mktemp_dir()), name)

    @async_test
    async def test_x509_generated_and_imported(self):
        created = await self.create({"name": "cert", "type": "x509"})
        self.assertEqual(created["type"], "x509")
        cert = x509.load_pem_x509_certificate(created["public_key"].encode())
        self.assertEqual(cert.subject.rfc4514_string(), "CN=demo-user")
        expected = cert.fingerprint(hashes.SHA1()).hex()  # noqa: S303 - what Nova shows
        self.assertEqual(created["fingerprint"], ":".join(expected[i : i + 2] for i in range(0, 40, 2)))
        key, bundled, _ = pkcs12.load_key_and_certificates(base64.b64decode(created["private_key"]), None)
        self.assertEqual(bundled, cert)
        self.assertEqual(key.public_key().public_numbers(), cert.public_key().public_numbers())
        imported = await self.create({"name": "cert2", "type": "x509", "public_key": created["public_key"]})
        self.assertEqual(imported["fingerprint"], created["fingerprint"])
        message = await self.api.error(
            "POST", "/os-keypairs", {"keypair": {"name": "c3", "type": "x509", "public_key": "nope"}}, "demo", "2.2"
        )
        self.assertTrue(message.startswith("Keypair data is invalid: failed to generate X509 fingerprint"), message)

    @async_test
    async def test_fields_and_status_codes_per_microversion(self):
        code, _, body = await self.api.request("POST", "/os-keypairs", {"keypair": {"name": "old"}}, "demo", "2.1")
        self.assertEqual(code, 200)
        self.assertEqual(set(body["keypair"]), {"name", "public_key", "fingerprint", "user_id", "private_key"})
        await self.api.error("POST", "/os-keypairs", {"keypair": {"name": "t", "type": "ssh"}}, "demo", "2.1")
        shown = (await self.api.ok("GET", "/os-keypairs/old", version="2.1"))["keypair"]
        self.assertEqual(
            set(shown),
            {"name", "public_key", "fingerprint", "user_id", "created_at", "deleted", "deleted_at", "id", "updated_at"},
        )
        self.assertIs(shown["deleted"], False)
        self.assertRegex(shown["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
        shown = (await self.api.ok("GET", "/os-keypairs/old", version="2.2"))["keypair"]
        self.assertIn("type", shown)
        listed = await self.api.ok("GET", "/os-keypairs", version="2.1")
        self.assertEqual(set(listed["keypairs"][0]["keypair"]), {"name", "public_key", "fingerprint"})
        listed = await self.api.ok("GET", "/os-keypairs", version="2.2")
        self.assertEqual(set(listed["keypairs"][0]["keypair"]), {"name", "public_key", "fingerprint", "type"})
        code, _, _ = await self.api.request("DELETE", "/os-keypairs/old", token="demo", version="2.1")
        self.assertEqual(code, 202)
        await self.create({"name": "new"})
        code, _, _ = await self.api.request("DELETE", "/os-keypairs/new", token="demo", version="2.2")
        self.assertEqual(code, 204)
        self.assertEqual((await self.api.ok("GET", "/os-keypairs"))["keypairs"], [])

    @async_test
    async def test_validation_errors(self):
        ed = openssh(ed25519.Ed25519PrivateKey.generate())
        self.assertEqual(
            await self.api.error(
                "POST", "/os-keypairs", {"keypair": {"name": "bad!name", "public_key": ed}}, "demo", "2.2"
            ),
            "Keypair data is invalid: Keypair name contains unsafe characters",
        )
        self.assertEqual(
            await self.api.error(
                "POST", "/os-keypairs", {"keypair": {"name": "k", "public_key": "ssh-rsa AAAA"}}, "demo", "2.2"
            ),
            "Keypair data is invalid: failed to generate fingerprint",
        )
        await self.api.error("POST", "/os-keypairs", {"keypair": {"name": ""}}, "demo", "2.2")
        await self.api.error("POST", "/os-keypairs", {"keypair": {"name": "x" * 256}}, "demo", "2.2")
        await self.api.error("POST", "/os-keypairs", {"keypair": {"name": "k", "type": "gpg"}}, "demo", "2.2")
        await self.api.error("POST", "/os-keypairs", {"keypair": {"name": "k", "extra": 1}}, "demo", "2.2")
        await self.api.error("POST", "/os-keypairs", {"keypair": {"public_key": ed}}, "demo", "2.2")
        await self.create({"name": "dup", "public_key": ed})
        self.assertEqual(
            await self.api.error(
                "POST", "/os-keypairs", {"keypair": {"name": "dup", "public_key": ed}}, "demo", "2.2", status=409
            ),
            "Key pair 'dup' already exists.",
        )
        self.assertEqual(
            await self.api.error("GET", "/os-keypairs/none", status=404), "Keypair none not found for user demo-user"
        )
        await self.api.error("DELETE", "/os-keypairs/none", status=404)

    @async_test
    async def test_key_pairs_belong_to_users_even_within_a_project(self):
        ed = openssh(ed25519.Ed25519PrivateKey.generate())
        await self.create({"name": "mine", "public_key": ed})
        await self.api.error("GET", "/os-keypairs/mine", token="demo2", status=404)
        await self.api.error("DELETE", "/os-keypairs/mine", token="alt", status=404)
        self.assertEqual((await self.api.ok("GET", "/os-keypairs", token="demo2"))["keypairs"], [])
        theirs = await self.create({"name": "mine", "public_key": ed}, token="demo2")
        self.assertEqual(theirs["user_id"], "demo2-user")

    @async_test
    async def test_admin_acts_for_another_user_from_2_10(self):
        ed = openssh(ed25519.Ed25519PrivateKey.generate())
        made = await self.create(
            {"name": "given", "public_key": ed, "user_id": "demo-user"}, token="admin", version="2.10"
        )
        self.assertEqual(made["user_id"], "demo-user")
        self.assertEqual((await self.api.ok("GET", "/os-keypairs/given"))["keypair"]["user_id"], "demo-user")
        listed = await self.api.ok("GET", "/os-keypairs?user_id=demo-user", token="admin", version="2.10")
        self.assertEqual([k["keypair"]["name"] for k in listed["keypairs"]], ["given"])
        shown = await self.api.ok("GET", "/os-keypairs/given?user_id=demo-user", token="admin", version="2.10")
        self.assertEqual(shown["keypair"]["name"], "given")
        await self.api.error("GET", "/os-keypairs?user_id=demo-user", token="alt", version="2.10", status=403)
        await self.api.error(
            "POST",
            "/os-keypairs",
            {"keypair": {"name": "x", "public_key": ed, "user_id": "alt-user"}},
            "demo",
            "2.10",
            status=403,
        )
        await self.api.error("POST", "/os-keypairs", {"keypair": {"name": "x", "user_id": "u"}}, "admin", "2.9")
        code, _, _ = await self.api.request(
            "DELETE", "/os-keypairs/given?user_id=demo-user", token="admin", version="2.10"
        )
        self.assertEqual(code, 204)
        self.assertEqual((await self.api.ok("GET", "/os-keypairs"))["keypairs"], [])

    @async_test
    async def test_paging_from_2_35(self):
        ed = openssh(ed25519.Ed25519PrivateKey.generate())
        for name in ("c", "a", "b"):
            await self.create({"name": name, "public_key": ed})
        page = await self.api.ok("GET", "/os-keypairs?limit=2", version="2.35")
        self.assertEqual([k["keypair"]["name"] for k in page["keypairs"]], ["c", "a"])
        self.assertIn("marker=a", page["keypairs_links"][0]["href"])
        rest = await self.api.ok("GET", "/os-keypairs?limit=2&marker=a", version="2.35")
        self.assertEqual([k["keypair"]["name"] for k in rest["keypairs"]], ["b"])
        self.assertNotIn("keypairs_links", rest)
        everything = await self.api.ok("GET", "/os-keypairs?limit=2", version="2.34")
        self.assertEqual(len(everything["keypairs"]), 3)
        self.assertNotIn("keypairs_links", everything)
        self.assertEqual(
            await self.api.error("GET", "/os-keypairs?marker=zz", version="2.35"), "Marker zz could not be found."
        )

    @async_test
    async def test_key_pairs_quota_counts_per_user(self):
        await self.api.ok("PUT", "/os-quota-sets/demo-project", {"quota_set": {"key_pairs": 2}}, "admin")
        ed = openssh(ed25519.Ed25519PrivateKey.generate())
        await self.create({"name": "one", "public_key": ed})
        await self.create({"name": "two", "public_key": ed})
        message = await self.api.error(
            "POST", "/os-keypairs", {"keypair": {"name": "three", "public_key": ed}}, "demo", "2.2", status=403
        )
        self.assertEqual(message, "Quota exceeded, too many key pairs.")
        await self.create({"name": "one", "public_key": ed}, token="demo2")

    def test_fingerprint_helpers_refuse_garbage(self):
        from nova_twisted import exception

        self.assertRaises(exception.InvalidRequest, keypairs.ssh_fingerprint, "not a key")
        self.assertRaises(exception.InvalidRequest, keypairs.x509_fingerprint, "-----BEGIN CERTIFICATE-----\nxx")
