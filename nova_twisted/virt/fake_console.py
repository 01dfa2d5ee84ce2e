"""Graphical consoles of fake guests: a real (small) RFB server, and a SPICE port that accepts.

The RFB server speaks RFB 3.3/3.7/3.8 with the "None" security type and
the Raw encoding, honours the client's SetPixelFormat for true-colour
formats, and draws the guest's screen: a frame whose colour says the
power state, so a browser client behind a console proxy shows something
that changes with the guest. Enough for noVNC and for proxy tests; not a
general VNC server.
"""

from __future__ import annotations

import struct

from twisted.internet import protocol
from twisted.logger import Logger

log = Logger(namespace="nova.virt.fake_console")

WIDTH, HEIGHT = 640, 400
#: RGB of the screen's frame, by power state name.
COLOURS = {"running": (32, 96, 192), "paused": (128, 128, 128), "other": (160, 32, 32)}
#: bpp, depth, big-endian, true-colour, red/green/blue max, red/green/blue shift
SERVER_FORMAT = (32, 24, 0, 1, 255, 255, 255, 16, 8, 0)


class RFBServer(protocol.Protocol):
    """One client connection to a fake guest's VNC console."""

    def __init__(self, screen):
        self.screen = screen
        self.buffer = b""
        self.state = "version"
        self.version = b"RFB 003.008\n"
        self.pixel_format = SERVER_FORMAT

    def connectionMade(self):
        self.transport.write(b"RFB 003.008\n")

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while self._step():
            pass

    def _take(self, count: int) -> bytes | None:
        if len(self.buffer) < count:
            return None
        chunk, self.buffer = self.buffer[:count], self.buffer[count:]
        return chunk

    def _step(self) -> bool:
        if self.state == "version":
            version = self._take(12)
            if version is None:
                return False
            if not version.startswith(b"RFB 003."):
                self.transport.loseConnection()
                return False
            self.version = version
            if version < b"RFB 003.007\n":
                self.transport.write(struct.pack(">I", 1))  # 3.3: the server picks "None"
                self.state = "init"
            else:
                self.transport.write(bytes([1, 1]))  # one security type: None
                self.state = "security"
            return True
        if self.state == "security":
            choice = self._take(1)
            if choice is None:
                return False
            if choice != b"\x01":
                self.transport.write(struct.pack(">I", 1) + _reason(b"only security type None is offered"))
                self.transport.loseConnection()
                return False
            if self.version >= b"RFB 003.008\n":
                self.transport.write(struct.pack(">I", 0))
            self.state = "init"
            return True
        if self.state == "init":
            if self._take(1) is None:  # ClientInit: shared flag
                return False
            name = self.screen.name.encode()
            self.transport.write(
                struct.pack(">HH", WIDTH, HEIGHT) + _pixel_format(SERVER_FORMAT) + struct.pack(">I", len(name)) + name
            )
            self.state = "normal"
            return True
        return self._message()

    def _message(self) -> bool:
        if not self.buffer:
            return False
        kind = self.buffer[0]
        if kind == 0:  # SetPixelFormat
            raw = self._take(20)
            if raw is None:
                return False
            self.pixel_format = struct.unpack(">BBBBHHHBBB", raw[4:17])
            return True
        if kind == 2:  # SetEncodings
            if len(self.buffer) < 4:
                return False
            count = struct.unpack(">H", self.buffer[2:4])[0]
            return self._take(4 + 4 * count) is not None
        if kind == 3:  # FramebufferUpdateRequest
            raw = self._take(10)
            if raw is None:
                return False
            incremental = raw[1]
            if not incremental or self.screen.changed_since(self):
                self._send_screen()
            else:
                self.transport.write(struct.pack(">BxH", 0, 0))  # nothing changed: no rectangles
            return True
        if kind == 4:  # KeyEvent
            return self._take(8) is not None
        if kind == 5:  # PointerEvent
            return self._take(6) is not None
        if kind == 6:  # ClientCutText
            if len(self.buffer) < 8:
                return False
            length = struct.unpack(">I", self.buffer[4:8])[0]
            return self._take(8 + length) is not None
        log.info("unknown RFB message type {kind}; closing", kind=kind)
        self.transport.loseConnection()
        self.buffer = b""
        return False

    def _send_screen(self) -> None:
        self.screen.sent(self)
        pixels = self.screen.render(self.pixel_format)
        header = struct.pack(">BxH", 0, 1) + struct.pack(">HHHHi", 0, 0, WIDTH, HEIGHT, 0)
        self.transport.write(header + pixels)


def _reason(text: bytes) -> bytes:
    return struct.pack(">I", len(text)) + text


def _pixel_format(fmt) -> bytes:
    return struct.pack(">BBBBHHHBBBxxx", *fmt)


class Screen:
    """What a fake guest's display shows; clients get a full redraw after every change."""

    def __init__(self, name: str, state: str = "running"):
        self.name = name
        self.state = state
        self.version = 0
        self._seen: dict[int, int] = {}

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.version += 1

    def changed_since(self, client) -> bool:
        return self._seen.get(id(client)) != self.version

    def sent(self, client) -> None:
        self._seen[id(client)] = self.version

    def render(self, fmt) -> bytes:
        """The whole screen in the client's pixel format (a frame in the state's colour)."""
        bpp, _, big_endian, true_colour, rmax, gmax, bmax, rshift, gshift, bshift = fmt
        size = max(1, bpp // 8)
        colour = COLOURS.get(self.state, COLOURS["other"])

        def pixel(rgb) -> bytes:
            if not true_colour:
                return bytes(size)
            value = (
                ((rgb[0] * rmax // 255) << rshift)
                | ((rgb[1] * gmax // 255) << gshift)
                | ((rgb[2] * bmax // 255) << bshift)
            )
            return value.to_bytes(size, "big" if big_endian else "little")

        frame, inside = pixel(colour), pixel((8, 8, 16))
        border = 16
        full_row = frame * WIDTH
        framed_row = frame * border + inside * (WIDTH - 2 * border) + frame * border
        return full_row * border + framed_row * (HEIGHT - 2 * border) + full_row * border


class RFBFactory(protocol.ServerFactory):
    noisy = False

    def __init__(self, screen: Screen):
        self.screen = screen

    def buildProtocol(self, addr):
        return RFBServer(self.screen)


class SpiceStub(protocol.Protocol):
    """Accepts a SPICE connection and closes it on the first bytes: a port that is really there."""

    def dataReceived(self, data):
        self.transport.loseConnection()


class SpiceFactory(protocol.ServerFactory):
    noisy = False
    protocol = SpiceStub
