"""twistd plugin: nova-compute: runs servers on this host through a hypervisor driver."""

from nova_twisted.cmd.plugin import NovaServiceMaker

serviceMaker = NovaServiceMaker(
    "nova-compute",
    "nova-compute: runs servers on this host through a hypervisor driver.",
    "nova_twisted.compute.service:build",
    uses_database=False,
)
