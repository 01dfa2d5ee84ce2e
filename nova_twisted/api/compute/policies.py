"""The compute API's default policy: readable base rules; each resource module adds its own.

Roles: ``admin`` may do everything anywhere; ``member`` acts within its own
project; ``reader`` may only look within its own project. Key pairs belong
to users. A resource module lists its rules in a module-level ``POLICIES``
dict; ``[api] policy_file`` (YAML) overrides any of them.
"""

from __future__ import annotations

from nova_twisted.api.compute import RESOURCE_MODULES, resource_modules
from nova_twisted.api.policy import Enforcer

BASE_RULES = {
    "context_is_admin": "role:admin",
    "admin_api": "role:admin",
    "project_member_api": "(role:member or role:admin) and project_id:%(project_id)s",
    "project_reader_api": "(role:reader or role:member or role:admin) and project_id:%(project_id)s",
    "project_member_or_admin": "rule:project_member_api or rule:context_is_admin",
    "project_reader_or_admin": "rule:project_reader_api or rule:context_is_admin",
    "owner_user_or_admin": "user_id:%(user_id)s or rule:context_is_admin",
}


def default_rules(module_names) -> dict[str, str]:
    """BASE_RULES plus every resource module's POLICIES."""
    rules = dict(BASE_RULES)
    for module in resource_modules(module_names):
        rules.update(getattr(module, "POLICIES", {}))
    return rules


def load_enforcer(conf) -> Enforcer:
    return Enforcer.from_file(default_rules(RESOURCE_MODULES), conf.api.policy_file or None)
