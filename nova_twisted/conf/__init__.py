"""Configuration: read nova.conf once at start-up into typed objects.

Options are declared in one module per section (``nova_twisted/conf/*.py``,
each with ``SECTION`` and ``OPTS``); :data:`SECTIONS` collects them.  Nothing
else in the package reads a configuration file or the environment.
"""

from __future__ import annotations

import configparser
import importlib
import os
import re
import socket
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

from nova_twisted.conf.types import Opt, OptionValueError

# Section modules, in the order the sample shows them.
_SECTION_MODULES = [
    "default",
    "database",
    "transport",
    "api",
    "identity",
    "image",
    "scheduler",
    "quota",
    "conductor",
    "compute",
    "fake_driver",
    "libvirt",
    "vnc",
    "spice",
]


def _collect() -> dict[str, list[Opt]]:
    sections: dict[str, list[Opt]] = {}
    for modname in _SECTION_MODULES:
        try:
            module = importlib.import_module(f"nova_twisted.conf.{modname}")
        except ModuleNotFoundError as exc:
            if exc.name != f"nova_twisted.conf.{modname}":
                raise
            continue
        sections[module.SECTION] = list(module.OPTS)
    return sections


SECTIONS: dict[str, list[Opt]] = _collect()

_VAR = re.compile(r"\$(\{(\w+)\}|(\w+))")


class ConfigError(Exception):
    """The configuration cannot be used; the message names file, section and option."""


class Section(SimpleNamespace):
    """The typed values of one section, as attributes."""


class Config:
    """All sections' typed values: ``conf.database.connection``.

    ``conf.sources`` lists the files read, ``conf.DEFAULT`` holds [DEFAULT].
    """

    def __init__(self, values: Mapping[str, Mapping[str, Any]], sources: Iterable[str] = ()):
        self.sources = list(sources)
        self._sections = {}
        for section, opts in values.items():
            ns = Section(**opts)
            self._sections[section] = ns
            setattr(self, section, ns)

    def get(self, section: str, name: str) -> Any:
        """Return one value, by section and option name."""
        return getattr(self._sections[section], name)

    def section(self, name: str) -> Section:
        return self._sections[name]

    def with_overrides(self, overrides: Mapping[tuple[str, str], Any]) -> "Config":
        """Return a copy with some typed values replaced (used by tests and flags)."""
        values = {s: dict(vars(ns)) for s, ns in self._sections.items()}
        for (section, name), value in overrides.items():
            if name not in values.get(section, {}):
                raise ConfigError(f"no option [{section}] {name}")
            values[section][name] = value
        return Config(values, self.sources)


def _opt(section: str, name: str) -> Opt | None:
    for opt in SECTIONS.get(section, ()):
        if opt.name == name:
            return opt
    return None


def _interpolate(text: str, defaults: Mapping[str, Any], where: str) -> str:
    def repl(match: re.Match) -> str:
        name = match.group(2) or match.group(3)
        if name not in defaults:
            raise ConfigError(f"{where}: ${name} names no [DEFAULT] option")
        return str(defaults[name])

    return _VAR.sub(repl, text)


def load(
    paths: Iterable[str] = (),
    overrides: Mapping[tuple[str, str], str] | None = None,
    require_files: bool = True,
) -> Config:
    """Read and check the given nova.conf files (later files win).

    ``overrides`` maps (section, option) to raw text, as flags give it.
    Raises ConfigError naming the file, section and option of the first
    problem: an unreadable file, a syntax error, an unknown section or
    option, or a value that does not fit its type.
    """
    raw: dict[tuple[str, str], tuple[str, str]] = {}
    sources = []
    for path in paths:
        if not os.path.exists(path):
            if require_files:
                raise ConfigError(f"{path}: configuration file not found")
            continue
        parser = configparser.ConfigParser(interpolation=None, strict=True, default_section="\0none")
        parser.optionxform = str  # option names are case-sensitive, as declared
        try:
            with open(path, encoding="utf-8") as handle:
                parser.read_file(handle, source=path)
        except (configparser.Error, OSError, UnicodeDecodeError) as exc:
            first_line = str(exc).splitlines()[0]
            raise ConfigError(f"{path}: cannot parse: {first_line}") from None
        sources.append(path)
        for section in parser.sections():
            if section not in SECTIONS:
                raise ConfigError(f"{path}: [{section}]: unknown section")
            for name, value in parser.items(section, raw=True):
                if _opt(section, name) is None:
                    raise ConfigError(f"{path}: [{section}] {name}: unknown option")
                raw[(section, name)] = (value, path)
    for (section, name), value in (overrides or {}).items():
        if _opt(section, name) is None:
            raise ConfigError(f"command line: [{section}] {name}: unknown option")
        raw[(section, name)] = (value, "command line")

    values: dict[str, dict[str, Any]] = {}
    # [DEFAULT] first: other sections interpolate its values.
    for section in sorted(SECTIONS, key=lambda s: s != "DEFAULT"):
        values[section] = {}
        for opt in SECTIONS[section]:
            where_raw = raw.get((section, opt.name))
            where = f"{where_raw[1] if where_raw else 'default'}: [{section}] {opt.name}"
            try:
                if where_raw is None:
                    value = opt.default
                    if isinstance(value, list):
                        value = list(value)
                    if opt.kind == "str" and opt.interpolate and isinstance(value, str):
                        value = _interpolate(value, values["DEFAULT"], where)
                else:
                    text = where_raw[0]
                    if opt.kind in ("str", "list") and opt.interpolate and section != "DEFAULT":
                        text = _interpolate(text, values["DEFAULT"], where)
                    value = opt.parse(text)
            except OptionValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            values[section][opt.name] = value
        if section == "DEFAULT":
            if not values["DEFAULT"]["host"]:
                values["DEFAULT"]["host"] = socket.gethostname()
            # Interpolation inside [DEFAULT] itself (e.g. a path under $state_path).
            for opt in SECTIONS["DEFAULT"]:
                value = values["DEFAULT"][opt.name]
                if opt.kind == "str" and opt.interpolate and "$" in value:
                    where = f"[DEFAULT] {opt.name}"
                    values["DEFAULT"][opt.name] = _interpolate(value, values["DEFAULT"], where)
    return Config(values, sources)


def defaults() -> Config:
    """Return the configuration with every option at its default."""
    return load(())


def generate_sample() -> str:
    """Return the text of etc/nova.conf.sample, generated from the declarations."""
    lines = [
        "# nova.conf: sample configuration for nova-twisted.",
        "# Generated from the option declarations in nova_twisted/conf/;",
        "# regenerate with `nova-manage config sample > etc/nova.conf.sample`.",
        "# Every option is shown commented out, at its default.",
    ]
    for section, opts in SECTIONS.items():
        lines += ["", f"[{section}]"]
        for opt in opts:
            lines.append("")
            for paragraph in _wrap(opt.help, 76):
                lines.append(f"# {paragraph}")
            kind = opt.kind + (f", one of: {', '.join(map(str, opt.choices))}" if opt.choices else "")
            if opt.min is not None or opt.max is not None:
                kind += f", {'' if opt.min is None else opt.min}..{'' if opt.max is None else opt.max}"
            lines.append(f"# ({kind})")
            shown = opt.sample_default if opt.sample_default is not None else opt.format(opt.default)
            lines.append(f"#{opt.name} = {shown}".rstrip())
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    words, out, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        out.append(line)
    return out


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ***."""
    return re.sub(r"(://[^:/@\s]+:)[^@\s]*@", r"\1***@", url)
