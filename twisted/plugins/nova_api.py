"""twistd plugin: nova-api: OpenStack Compute v2.1, identity and image APIs over HTTP."""

from nova_twisted.cmd.plugin import NovaServiceMaker

serviceMaker = NovaServiceMaker(
    "nova-api",
    "nova-api: OpenStack Compute v2.1, identity and image APIs over HTTP.",
    "nova_twisted.api.service:build",
)
