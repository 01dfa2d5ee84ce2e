"""The OpenStack Compute API v2.1 (:8774): app.py is the framework, one module per resource."""

from __future__ import annotations

import importlib

#: Resource modules, each with ``register(app)`` and its ``POLICIES`` (and ``POLICY_DOCS``).
RESOURCE_MODULES = [
    "versions",
    "servers",
    "server_actions",
    "server_metadata",
    "instance_actions",
    "remote_consoles",
    "flavors",
    "keypairs",
    "availability_zones",
    "hypervisors",
    "services",
    "limits",
    "quota_sets",
    "server_groups",
    "simple_tenant_usage",
    "openapi",
]


def resource_modules(names=None) -> list:
    """Import and return the resource modules named (default: all), in registration order."""
    return [importlib.import_module(f"{__name__}.{name}") for name in (names or RESOURCE_MODULES)]
