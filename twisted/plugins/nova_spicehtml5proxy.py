"""twistd plugin: nova-spicehtml5proxy: WebSocket to SPICE console proxy for browsers."""

from nova_twisted.cmd.plugin import NovaServiceMaker

serviceMaker = NovaServiceMaker(
    "nova-spicehtml5proxy",
    "nova-spicehtml5proxy: WebSocket to SPICE console proxy for browsers.",
    None,
    missing="the SPICE HTML5 console proxy",
)
