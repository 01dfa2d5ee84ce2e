"""[vnc]: guests' VNC consoles and the noVNC proxy in front of them."""

from nova_twisted.conf.types import BoolOpt, PortOpt, StrOpt

SECTION = "vnc"
OPTS = [
    BoolOpt("enabled", default=True, help="Give guests a VNC console."),
    StrOpt(
        "server_listen",
        default="127.0.0.1",
        help="Address the guests' VNC servers listen on, on the compute host (0.0.0.0 for every address).",
    ),
    StrOpt(
        "server_proxyclient_address",
        default="127.0.0.1",
        help="Address of this compute host that the VNC proxy connects to, to reach a guest's VNC server.",
    ),
    StrOpt("keymap", default="", help="Keyboard layout of the VNC console (e.g. en-us); empty leaves it to QEMU."),
    StrOpt(
        "novncproxy_base_url",
        default="http://127.0.0.1:6080/vnc_auto.html",
        help="URL of the noVNC proxy's page that clients open; the console token is added as ?token=.",
    ),
    StrOpt("novncproxy_host", default="0.0.0.0", help="Address the noVNC proxy listens on."),
    PortOpt("novncproxy_port", default=6080, help="Port the noVNC proxy listens on."),
]
