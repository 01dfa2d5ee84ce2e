"""[spice]: guests' SPICE consoles and the SPICE HTML5 proxy in front of them."""

from nova_twisted.conf.types import BoolOpt, PortOpt, StrOpt

SECTION = "spice"
OPTS = [
    BoolOpt("enabled", default=False, help="Give guests a SPICE console (it can be enabled alongside VNC)."),
    StrOpt(
        "server_listen",
        default="127.0.0.1",
        help="Address the guests' SPICE servers listen on, on the compute host (0.0.0.0 for every address).",
    ),
    StrOpt(
        "server_proxyclient_address",
        default="127.0.0.1",
        help="Address of this compute host that the SPICE proxy connects to, to reach a guest's SPICE server.",
    ),
    BoolOpt("agent_enabled", default=True, help="Give guests a SPICE agent channel (clipboard, resolution)."),
    StrOpt("keymap", default="", help="Keyboard layout of the SPICE console (e.g. en-us); empty leaves it to QEMU."),
    StrOpt(
        "html5proxy_base_url",
        default="http://127.0.0.1:6082/spice_auto.html",
        help="URL of the SPICE HTML5 proxy's page that clients open; the console token is added as ?token=.",
    ),
    StrOpt("html5proxy_host", default="0.0.0.0", help="Address the SPICE HTML5 proxy listens on."),
    PortOpt("html5proxy_port", default=6082, help="Port the SPICE HTML5 proxy listens on."),
]
