"""Policy: named rules in a small language, defaults in code, overrides from YAML.

A rule is a boolean expression over checks, as oslo.policy writes them::

    role:admin or (role:member and project_id:%(project_id)s)

Checks: ``role:NAME``, ``project_id:%(key)s`` / ``user_id:%(key)s``
(compared with the target's ``key``), ``is_admin:True``, ``rule:NAME``,
``@`` (always), ``!`` (never); combined with ``and``, ``or``, ``not`` and
parentheses. An empty rule allows everyone.
"""

from __future__ import annotations

import re
from typing import Any

from nova_twisted import exception

_TOKEN = re.compile(r"\s*(\(|\)|and\b|or\b|not\b|[^\s()]*%\([^)]*\)[^\s()]*|[^\s()]+)")


class PolicyError(exception.ConfigurationError):
    """A rule cannot be parsed."""


def _tokens(text: str) -> list[str]:
    pos, out = 0, []
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            break
        out.append(match.group(1))
        pos = match.end()
    if text[pos:].strip():
        raise PolicyError(reason=f"cannot parse policy rule {text!r}")
    return out


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def parse(self):
        if not self.tokens:
            return ("always",)
        node = self._or()
        if self.pos != len(self.tokens):
            raise PolicyError(reason=f"unexpected {self.tokens[self.pos]!r} in policy rule {self.text!r}")
        return node

    def _peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _or(self):
        node = self._and()
        while self._peek() == "or":
            self.pos += 1
            node = ("or", node, self._and())
        return node

    def _and(self):
        node = self._not()
        while self._peek() == "and":
            self.pos += 1
            node = ("and", node, self._not())
        return node

    def _not(self):
        if self._peek() == "not":
            self.pos += 1
            return ("not", self._not())
        return self._atom()

    def _atom(self):
        token = self._peek()
        if token is None:
            raise PolicyError(reason=f"policy rule {self.text!r} ends too early")
        self.pos += 1
        if token == "(":
            node = self._or()
            if self._peek() != ")":
                raise PolicyError(reason=f"missing ) in policy rule {self.text!r}")
            self.pos += 1
            return node
        if token == "@":
            return ("always",)
        if token == "!":
            return ("never",)
        kind, sep, value = token.partition(":")
        if not sep:
            raise PolicyError(reason=f"{token!r} is not a check in policy rule {self.text!r}")
        return ("check", kind, value)


class Enforcer:
    """Evaluates named rules for a RequestContext and a target dict."""

    def __init__(self, defaults: dict[str, str], overrides: dict[str, str] | None = None):
        self.rules: dict[str, Any] = {}
        for name, text in {**defaults, **(overrides or {})}.items():
            self.rules[name] = _Parser(str(text)).parse()

    @classmethod
    def from_file(cls, defaults: dict[str, str], path: str | None) -> "Enforcer":
        """Defaults overridden by the YAML (or JSON) mapping in ``path``, if given."""
        overrides = {}
        if path:
            import yaml

            try:
                with open(path, encoding="utf-8") as handle:
                    overrides = yaml.safe_load(handle) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise PolicyError(reason=f"cannot read policy file {path}: {exc}") from None
            if not isinstance(overrides, dict):
                raise PolicyError(reason=f"policy file {path} must hold a mapping of rule names to rules")
        return cls(defaults, overrides)

    def allowed(self, ctxt, rule: str, target: dict | None = None) -> bool:
        node = self.rules.get(rule)
        if node is None:
            raise PolicyError(reason=f"no policy rule named {rule}")
        return self._eval(node, ctxt, target or {}, set())

    def authorize(self, ctxt, rule: str, target: dict | None = None) -> None:
        """Raise Forbidden unless ``rule`` allows ``ctxt`` on ``target``."""
        if not self.allowed(ctxt, rule, target):
            raise exception.Forbidden(action=rule)

    def _eval(self, node, ctxt, target, seen) -> bool:
        kind = node[0]
        if kind == "always":
            return True
        if kind == "never":
            return False
        if kind == "and":
            return self._eval(node[1], ctxt, target, seen) and self._eval(node[2], ctxt, target, seen)
        if kind == "or":
            return self._eval(node[1], ctxt, target, seen) or self._eval(node[2], ctxt, target, seen)
        if kind == "not":
            return not self._eval(node[1], ctxt, target, seen)
        _, check, value = node
        if check == "rule":
            if value in seen or value not in self.rules:
                return False
            return self._eval(self.rules[value], ctxt, target, seen | {value})
        if check == "role":
            return value.lower() in {r.lower() for r in (ctxt.roles or [])}
        if check == "is_admin":
            return bool(ctxt.is_admin) == (value.lower() == "true")
        expected = value
        if "%(" in value:
            try:
                expected = value % target
            except (KeyError, TypeError, ValueError):
                return False
        actual = getattr(ctxt, check, None)
        return actual is not None and str(actual) == str(expected)
