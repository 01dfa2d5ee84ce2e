"""twistd plugin: nova-scheduler: picks the compute host for each server."""

from nova_twisted.cmd.plugin import NovaServiceMaker

serviceMaker = NovaServiceMaker(
    "nova-scheduler",
    "nova-scheduler: picks the compute host for each server.",
    "nova_twisted.scheduler.service:build",
)
