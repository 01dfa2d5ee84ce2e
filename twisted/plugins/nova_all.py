"""twistd plugin: nova-all: the whole cloud in one process (SQLite, in-memory bus, fake driver)."""

from nova_twisted.cmd.plugin import NovaServiceMaker

serviceMaker = NovaServiceMaker(
    "nova-all",
    "nova-all: the whole cloud in one process (SQLite, in-memory bus, fake driver).",
    "nova_twisted.cmd.all:build",
    in_process=True,
)
