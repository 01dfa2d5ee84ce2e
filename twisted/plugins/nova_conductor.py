"""twistd plugin: nova-conductor: does the database work for compute."""

from nova_twisted.cmd.plugin import NovaServiceMaker

serviceMaker = NovaServiceMaker(
    "nova-conductor",
    "nova-conductor: does the database work for compute.",
    "nova_twisted.conductor.service:build",
)
