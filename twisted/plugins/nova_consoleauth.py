"""twistd plugin: nova-consoleauth: issues and checks console tokens."""

from nova_twisted.cmd.plugin import NovaServiceMaker

serviceMaker = NovaServiceMaker(
    "nova-consoleauth",
    "nova-consoleauth: issues and checks console tokens.",
    None,
    missing="the console token service",
)
