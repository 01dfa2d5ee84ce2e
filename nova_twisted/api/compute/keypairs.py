"""Key pairs (``/os-keypairs``): generated or imported, ssh or x509, per user.

As Nova: a generated ssh key is RSA 2048 (the private key, PEM, is in the
create answer and nowhere else); an x509 key pair is a self-signed client
certificate (the public key is the certificate's PEM, the private key the
base64 of a password-less PKCS#12 bundle). Fingerprints are MD5 colon-hex
of the ssh key blob, SHA-1 of the certificate. ``type`` appears from 2.2
(create answers 201 and delete 204 from then on), admins may act for
another user with ``user_id`` from 2.10, and listing pages with
``limit``/``marker`` from 2.35. The ``key_pairs`` quota counts per user.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import string

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet.threads import deferToThreadPool

from nova_twisted import exception, utils
from nova_twisted.api.compute.resource_helpers import NAME, check_query, nova_time, param
from nova_twisted.api.http import Response
from nova_twisted.db import keypairs as db

TYPE_VERSION = "2.2"
USER_ID_VERSION = "2.10"
PAGING_VERSION = "2.35"
SSH, X509 = "ssh", "x509"

POLICIES = {
    "os_compute_api:os-keypairs:index": "rule:admin_api or user_id:%(user_id)s",
    "os_compute_api:os-keypairs:create": "rule:admin_api or user_id:%(user_id)s",
    "os_compute_api:os-keypairs:show": "rule:admin_api or user_id:%(user_id)s",
    "os_compute_api:os-keypairs:delete": "rule:admin_api or user_id:%(user_id)s",
}

_SAFE_CHARS = set("_- " + string.digits + string.ascii_letters)
#: UPN of the x509 client certificate, as Microsoft's WinRM wants it.
_UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")


def _create_schema(version) -> dict:
    fields = {"name": NAME, "public_key": {"type": "string"}}
    if version >= TYPE_VERSION:
        fields["type"] = {"type": "string", "enum": [SSH, X509]}
    if version >= USER_ID_VERSION:
        fields["user_id"] = {"type": "string"}
    return {
        "type": "object",
        "properties": {
            "keypair": {
                "type": "object",
                "properties": fields,
                "required": ["name"],
                "additionalProperties": False,
            }
        },
        "required": ["keypair"],
        "additionalProperties": False,
    }


# -- key material ---------------------------------------------------------------------------------
def ssh_fingerprint(public_key: str) -> str:
    """MD5 of the key blob, colon-separated hex; InvalidKeypair-style 400 if it is no ssh key."""
    try:
        serialization.load_ssh_public_key(public_key.encode("utf-8"))
        blob = base64.b64decode(public_key.split()[1])
    except Exception:  # noqa: BLE001 - any parse failure is the same client error
        raise exception.InvalidRequest(reason="Keypair data is invalid: failed to generate fingerprint") from None
    return _colons(hashlib.md5(blob, usedforsecurity=False).hexdigest())


def x509_fingerprint(pem: str) -> str:
    """SHA-1 of the certificate, colon-separated hex; 400 if it is no PEM certificate."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("utf-8"))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise exception.InvalidRequest(
            reason=f"Keypair data is invalid: failed to generate X509 fingerprint. Error message: {exc}"
        ) from None
    return _colons(binascii.hexlify(cert.fingerprint(hashes.SHA1())).decode("ascii"))  # noqa: S303 - Nova's


def _colons(hexdigest: str) -> str:
    return ":".join(hexdigest[i : i + 2] for i in range(0, len(hexdigest), 2))


def generate_ssh_key() -> tuple[str, str, str]:
    """A new RSA 2048 key: (private PEM, ``ssh-rsa ... Generated-by-Nova``, fingerprint). Blocking."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode("ascii")
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    public_key = public.decode("ascii") + " Generated-by-Nova"
    return private, public_key, ssh_fingerprint(public_key)


def generate_x509_key(user_id: str, now: dt.datetime) -> tuple[str, str, str]:
    """A self-signed client certificate for ``user_id``: (base64 PKCS#12, certificate PEM, fingerprint). Blocking."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id)])
    upn = f"{user_id}@localhost".encode()
    # The UPN is an ASN.1 UTF8String (cryptography adds the otherName's explicit tag).
    other_name = b"\x0c" + _der_length(len(upn)) + upn
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.OtherName(_UPN_OID, other_name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    bundle = pkcs12.serialize_key_and_certificates(None, key, cert, None, serialization.NoEncryption())
    return base64.b64encode(bundle).decode("ascii"), pem, x509_fingerprint(pem)


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


# -- views -------------------------------------------------------------------------------------------
def _view(keypair: dict, fields) -> dict:
    values = {
        "name": keypair["name"],
        "public_key": keypair["public_key"],
        "fingerprint": keypair["fingerprint"],
        "user_id": keypair["user_id"],
        "type": keypair.get("type", SSH),
        "created_at": nova_time(keypair.get("created_at")),
        "deleted": False,
        "deleted_at": None,
        "updated_at": None,
        "id": keypair.get("id"),
        "private_key": keypair.get("private_key"),
    }
    return {f: values[f] for f in fields}


def _user_for(app, req, rule: str) -> str:
    """The user whose key pairs are meant: ``?user_id=`` (2.10, policy-checked) or the caller."""
    user_id = req.context.user_id
    if app.version(req) >= USER_ID_VERSION and req.arg("user_id"):
        user_id = req.arg("user_id")
    app.authorize(req, rule, {"user_id": user_id, "project_id": req.context.project_id})
    return user_id


def _check_query(app, req, paging: bool = False) -> None:
    allowed = ["user_id"] if app.version(req) >= USER_ID_VERSION else []
    if paging:
        allowed += ["limit", "marker"]
    check_query(app, req, allowed)


# -- handlers -----------------------------------------------------------------------------------------
async def index(app, req):
    """The user's key pairs (``limit``/``marker`` and ``keypairs_links`` from 2.35)."""
    version = app.version(req)
    paging = version >= PAGING_VERSION
    _check_query(app, req, paging)
    user_id = _user_for(app, req, "os_compute_api:os-keypairs:index")
    limit = app.limit(req) if paging else None
    marker = req.arg("marker") if paging else None
    try:
        rows = await app.database.run(db.list_keypairs, user_id, limit, marker)
    except exception.NotFound as exc:
        raise exception.InvalidRequest(reason=exc.message) from None
    fields = ("name", "public_key", "fingerprint") + (("type",) if version >= TYPE_VERSION else ())
    body = {"keypairs": [{"keypair": _view(k, fields)} for k in rows]}
    if paging:
        links = app.next_link(req, "os-keypairs", [{"id": k["name"]} for k in rows], limit)
        if links:
            body["keypairs_links"] = links
    return body


async def show(app, req):
    """One key pair of the user (404 for another user's)."""
    _check_query(app, req)
    user_id = _user_for(app, req, "os_compute_api:os-keypairs:show")
    keypair = await app.database.run(db.get, user_id, param(req, "name"))
    fields = ["name", "public_key", "fingerprint", "user_id", "created_at", "deleted", "deleted_at", "id", "updated_at"]
    if app.version(req) >= TYPE_VERSION:
        fields.append("type")
    return {"keypair": _view(keypair, fields)}


async def delete(app, req):
    """Delete one of the user's key pairs: 202 at 2.1, 204 from 2.2."""
    _check_query(app, req)
    user_id = _user_for(app, req, "os_compute_api:os-keypairs:delete")
    await app.database.run(db.delete, user_id, param(req, "name"))
    return Response(204 if app.version(req) >= TYPE_VERSION else 202)


def _check_name(name: str) -> None:
    if any(c not in _SAFE_CHARS for c in name):
        raise exception.InvalidRequest(reason="Keypair data is invalid: Keypair name contains unsafe characters")
    if not 1 <= len(name) <= 255:
        raise exception.InvalidRequest(
            reason="Keypair data is invalid: Keypair name must be string and between 1 and 255 characters long"
        )


async def create(app, req):
    """Import ``public_key`` or generate a key pair (then the answer holds ``private_key``)."""
    version = app.version(req)
    body = app.body(req, _create_schema(version))["keypair"]
    user_id = req.context.user_id
    if version >= USER_ID_VERSION and body.get("user_id"):
        user_id = body["user_id"]
    app.authorize(req, "os_compute_api:os-keypairs:create", {"user_id": user_id, "project_id": req.context.project_id})
    name = body["name"]
    key_type = body.get("type", SSH)
    _check_name(name)
    private_key = None
    now = utils.utcnow(app.reactor)
    if "public_key" in body:
        public_key = body["public_key"]
        fingerprint = ssh_fingerprint(public_key) if key_type == SSH else x509_fingerprint(public_key)
    else:
        pool = app.reactor.getThreadPool()
        if key_type == SSH:
            private_key, public_key, fingerprint = await deferToThreadPool(app.reactor, pool, generate_ssh_key)
        else:
            private_key, public_key, fingerprint = await deferToThreadPool(
                app.reactor, pool, generate_x509_key, user_id, now
            )
    quota_check = {
        "project_id": req.context.project_id,
        "user_id": user_id,
        "defaults": app.compute_api._quota_defaults(),
        "deltas": {"key_pairs": 1},
    }
    try:
        keypair = await app.database.run(db.create, user_id, name, public_key, fingerprint, key_type, quota_check, now)
    except exception.QuotaExceeded:
        raise exception.QuotaError("Quota exceeded, too many key pairs.") from None
    keypair["private_key"] = private_key
    fields = (["private_key"] if private_key is not None else []) + (["type"] if version >= TYPE_VERSION else [])
    fields += ["name", "public_key", "fingerprint", "user_id"]
    answer = {"keypair": _view(keypair, fields)}
    return Response(201, answer) if version >= TYPE_VERSION else answer


def register(app) -> None:
    app.route("GET", "/v2.1/os-keypairs", index)
    app.route("POST", "/v2.1/os-keypairs", create)
    app.route("GET", "/v2.1/os-keypairs/{name}", show)
    app.route("DELETE", "/v2.1/os-keypairs/{name}", delete)
