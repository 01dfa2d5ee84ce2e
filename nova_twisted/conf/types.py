"""Typed option declarations: each option is declared once, here-typed."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class OptionValueError(ValueError):
    """A configured value does not fit its option's type."""


@dataclass(frozen=True)
class Opt:
    """One configuration option.

    ``kind`` is one of ``str``, ``int``, ``float``, ``bool``, ``list``, ``port``.
    ``secret`` options are masked wherever configuration is shown or logged.
    ``interpolate`` string values may refer to ``$name`` options of ``[DEFAULT]``.
    """

    name: str
    kind: str
    default: Any
    help: str
    secret: bool = False
    choices: tuple = ()
    min: float | None = None
    max: float | None = None
    sample_default: str | None = None
    interpolate: bool = True
    parse_hook: Callable[[str], Any] | None = field(default=None, compare=False)

    def parse(self, raw: str) -> Any:
        """Return ``raw`` converted to this option's type; raise OptionValueError."""
        text = raw.strip()
        if self.kind == "str":
            value: Any = text
        elif self.kind in ("int", "port"):
            try:
                value = int(text)
            except ValueError:
                raise OptionValueError(f"expected an integer, got {text!r}") from None
            if self.kind == "port" and not 0 <= value <= 65535:
                raise OptionValueError(f"{value} is not a TCP port (0-65535)")
        elif self.kind == "float":
            try:
                value = float(text)
            except ValueError:
                raise OptionValueError(f"expected a number, got {text!r}") from None
        elif self.kind == "bool":
            lowered = text.lower()
            if lowered in _TRUE:
                value = True
            elif lowered in _FALSE:
                value = False
            else:
                raise OptionValueError(f"expected true or false, got {text!r}")
        elif self.kind == "list":
            value = [item.strip() for item in re.split(r"[,\n]", text) if item.strip()]
        else:  # pragma: no cover - declarations are checked by tests
            raise AssertionError(f"unknown option kind {self.kind}")
        self.check(value)
        return value

    def check(self, value: Any) -> None:
        """Raise OptionValueError when ``value`` breaks the choices or bounds."""
        if self.choices and value not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            raise OptionValueError(f"{value!r} is not one of: {allowed}")
        if self.kind in ("int", "float", "port"):
            if self.min is not None and value < self.min:
                raise OptionValueError(f"{value} is below the minimum {self.min}")
            if self.max is not None and value > self.max:
                raise OptionValueError(f"{value} is above the maximum {self.max}")

    def format(self, value: Any) -> str:
        """Return ``value`` as it would be written in nova.conf."""
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "list":
            return ",".join(value)
        if value is None:
            return ""
        return str(value)


def StrOpt(name, default="", help="", **kw):
    return Opt(name, "str", default, help, **kw)


def IntOpt(name, default=0, help="", **kw):
    return Opt(name, "int", default, help, **kw)


def FloatOpt(name, default=0.0, help="", **kw):
    return Opt(name, "float", default, help, **kw)


def BoolOpt(name, default=False, help="", **kw):
    return Opt(name, "bool", default, help, **kw)


def ListOpt(name, default=(), help="", **kw):
    return Opt(name, "list", list(default), help, **kw)


def PortOpt(name, default=0, help="", **kw):
    return Opt(name, "port", default, help, **kw)
