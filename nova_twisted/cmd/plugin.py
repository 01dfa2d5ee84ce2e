"""The IServiceMaker behind every ``twisted/plugins/nova_*.py`` file."""

from __future__ import annotations

import importlib

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from zope.interface import implementer

from nova_twisted.cmd.daemon import NovaOptions


@implementer(IServiceMaker, IPlugin)
class NovaServiceMaker:
    """Makes one daemon's service tree; ``builder`` is ``"module:function"``.

    A daemon whose service is not built yet has ``builder=None``: it says so
    and exits non-zero instead of pretending to run.
    """

    options = NovaOptions

    def __init__(
        self,
        tapname: str,
        description: str,
        builder: str | None,
        *,
        uses_database: bool = True,
        in_process: bool = False,
        missing: str = "",
    ):
        self.tapname = tapname
        self.description = description
        self.builder = builder
        self.uses_database = uses_database
        self.in_process = in_process
        self.missing = missing

    def makeService(self, options):
        from nova_twisted.cmd import daemon

        if self.builder is None:
            daemon.not_built(self.tapname, self.missing or self.tapname)
        module_name, _, function = self.builder.partition(":")
        build = getattr(importlib.import_module(module_name), function)
        return daemon.make_daemon(
            self.tapname, options, build, uses_database=self.uses_database, in_process=self.in_process
        )
