"""The identity API's JSON bodies, shaped as Keystone v3 shapes them.

Pure functions from our dicts (as ``nova_twisted.db.identity`` returns
them) and a base URL (``http://host:port``) to what clients parse.
"""

from __future__ import annotations

import datetime as dt
import uuid

from nova_twisted.db.identity import DEFAULT_DOMAIN_ID

DEFAULT_DOMAIN = {"id": DEFAULT_DOMAIN_ID, "name": "Default"}
API_VERSION = "v3.14"
API_UPDATED = "2020-04-07T00:00:00Z"
MEDIA_TYPES = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]

#: (type, name, option of [identity] with its URL), in catalog order.
CATALOG_SERVICES = (
    ("compute", "nova", "compute_url"),
    ("image", "glance", "image_url"),
    ("identity", "keystone", "identity_url"),
    ("ec2", "ec2", "ec2_url"),
)
INTERFACES = ("public", "internal", "admin")
_NAMESPACE = uuid.UUID("5b0c7e4e-6d1f-4d7e-9a52-2b1f2c8a4f10")


def timestamp(value: dt.datetime | None) -> str | None:
    """Return a time as Keystone writes it: ``2026-01-01T00:00:00.000000Z``."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _stable_id(*parts: str) -> str:
    return uuid.uuid5(_NAMESPACE, "/".join(parts)).hex


def build_catalog(identity_conf) -> list[dict]:
    """Return the service catalog: compute, image, identity and ec2, each on three interfaces.

    Ids are stable (derived from type and interface), so clients caching
    them see the same catalog from every API process.
    """
    region = identity_conf.region_name
    catalog = []
    for service_type, name, option in CATALOG_SERVICES:
        url = getattr(identity_conf, option)
        endpoints = [
            {
                "id": _stable_id(service_type, interface),
                "interface": interface,
                "region_id": region,
                "region": region,
                "url": url,
            }
            for interface in INTERFACES
        ]
        catalog.append({"endpoints": endpoints, "id": _stable_id(service_type), "type": service_type, "name": name})
    return catalog


def version_v3(base: str) -> dict:
    """The v3 version entry, with its self link under ``base``."""
    return {
        "id": API_VERSION,
        "status": "stable",
        "updated": API_UPDATED,
        "links": [{"rel": "self", "href": f"{base}/v3/"}],
        "media-types": MEDIA_TYPES,
    }


def versions(base: str) -> dict:
    """``GET /``: the versions this server speaks (only v3)."""
    return {"versions": {"values": [version_v3(base)]}}


def links(base: str, path: str) -> dict:
    return {"self": f"{base}/v3/{path}"}


def collection(key: str, items: list[dict], base: str, path: str) -> dict:
    """A list body: ``{key: items, "links": {self, previous, next}}``."""
    return {key: items, "links": {"self": f"{base}/v3/{path}", "previous": None, "next": None}}


def project(row: dict, base: str) -> dict:
    return {
        "id": row["id"],
        "name": row["name"],
        "domain_id": row.get("domain_id") or DEFAULT_DOMAIN_ID,
        "description": row.get("description") or "",
        "enabled": bool(row["enabled"]),
        "parent_id": row.get("domain_id") or DEFAULT_DOMAIN_ID,
        "is_domain": False,
        "tags": [],
        "options": {},
        "links": links(base, f"projects/{row['id']}"),
    }


def user(row: dict, base: str) -> dict:
    body = {
        "id": row["id"],
        "name": row["name"],
        "domain_id": row.get("domain_id") or DEFAULT_DOMAIN_ID,
        "enabled": bool(row["enabled"]),
        "password_expires_at": None,
        "options": {},
        "links": links(base, f"users/{row['id']}"),
    }
    if row.get("email"):
        body["email"] = row["email"]
    if row.get("default_project_id"):
        body["default_project_id"] = row["default_project_id"]
    return body


def role(row: dict, base: str) -> dict:
    return {
        "id": row["id"],
        "name": row["name"],
        "domain_id": None,
        "description": None,
        "options": {},
        "links": links(base, f"roles/{row['id']}"),
    }


def domain(base: str) -> dict:
    return {
        "id": DEFAULT_DOMAIN_ID,
        "name": "Default",
        "description": "The default domain",
        "enabled": True,
        "tags": [],
        "options": {},
        "links": links(base, f"domains/{DEFAULT_DOMAIN_ID}"),
    }


def role_assignment(row: dict, base: str, include_names: bool = False) -> dict:
    """One entry of ``GET /v3/role_assignments``."""
    body = {
        "role": {"id": row["role_id"]},
        "user": {"id": row["user_id"]},
        "scope": {"project": {"id": row["project_id"]}},
        "links": {
            "assignment": f"{base}/v3/projects/{row['project_id']}/users/{row['user_id']}/roles/{row['role_id']}"
        },
    }
    if include_names:
        body["role"]["name"] = row["role_name"]
        body["user"]["name"] = row["user_name"]
        body["user"]["domain"] = dict(DEFAULT_DOMAIN)
        body["scope"]["project"]["name"] = row["project_name"]
        body["scope"]["project"]["domain"] = dict(DEFAULT_DOMAIN)
    return body


def ec2_credential(row: dict, base: str) -> dict:
    """An EC2 credential as keystoneclient reads it (``tenant_id``, not ``project_id``)."""
    return {
        "user_id": row["user_id"],
        "tenant_id": row["project_id"],
        "access": row["access"],
        "secret": row["secret"],
        "trust_id": None,
        "links": links(base, f"users/{row['user_id']}/credentials/OS-EC2/{row['access']}"),
    }


def token(context: dict, catalog: list[dict] | None) -> dict:
    """The ``{"token": ...}`` body of a token context (see IdentityAPI.validate_token)."""
    tok = context["token"]
    usr = context["user"]
    body = {
        "methods": list(tok["methods"]),
        "user": {
            "domain": dict(DEFAULT_DOMAIN),
            "id": usr["id"],
            "name": usr["name"],
            "password_expires_at": None,
        },
        "audit_ids": list(tok["audit_ids"]),
        "expires_at": timestamp(tok["expires_at"]),
        "issued_at": timestamp(tok["issued_at"]),
    }
    proj = context.get("project")
    if proj is not None:
        body["project"] = {"domain": dict(DEFAULT_DOMAIN), "id": proj["id"], "name": proj["name"]}
        body["is_domain"] = False
        body["roles"] = [{"id": r["id"], "name": r["name"]} for r in context["roles"]]
        if catalog is not None:
            body["catalog"] = catalog
    return {"token": body}
