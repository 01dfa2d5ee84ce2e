"""twistd plugin: nova-novncproxy: WebSocket to VNC console proxy for browsers."""

from nova_twisted.cmd.plugin import NovaServiceMaker

serviceMaker = NovaServiceMaker(
    "nova-novncproxy",
    "nova-novncproxy: WebSocket to VNC console proxy for browsers.",
    None,
    missing="the noVNC console proxy",
)
