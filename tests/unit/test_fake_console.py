"""The fake guests' VNC console speaks RFB the way a browser client (noVNC) expects."""

import struct

from twisted.internet.testing import StringTransport

from nova_twisted.virt import fake_console


def connect(screen, version=b"RFB 003.008\n"):
    proto = fake_console.RFBFactory(screen).buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    assert transport.value() == b"RFB 003.008\n"
    transport.clear()
    proto.dataReceived(version)
    if version >= b"RFB 003.007\n":
        assert transport.value() == b"\x01\x01", "one security type offered: None"
        transport.clear()
        proto.dataReceived(b"\x01")
        if version == b"RFB 003.008\n":
            assert transport.value() == struct.pack(">I", 0), "SecurityResult OK"
    else:
        assert transport.value() == struct.pack(">I", 1), "3.3: the server chose None"
    transport.clear()
    proto.dataReceived(b"\x01")  # ClientInit, shared
    return proto, transport


def test_handshake_then_server_init_names_the_guest_and_its_size():
    screen = fake_console.Screen("instance-00000001")
    _, transport = connect(screen)
    init = transport.value()
    width, height = struct.unpack(">HH", init[:4])
    name_length = struct.unpack(">I", init[20:24])[0]
    assert (width, height) == (fake_console.WIDTH, fake_console.HEIGHT)
    assert init[24 : 24 + name_length] == b"instance-00000001"


def test_old_protocol_versions_are_served_too():
    _, transport = connect(fake_console.Screen("g"), b"RFB 003.003\n")
    assert struct.unpack(">HH", transport.value()[:4]) == (fake_console.WIDTH, fake_console.HEIGHT)


def _update(proto, transport, incremental):
    transport.clear()
    proto.dataReceived(struct.pack(">BBHHHH", 3, incremental, 0, 0, fake_console.WIDTH, fake_console.HEIGHT))
    return transport.value()


def test_the_screen_comes_in_the_clients_pixel_format_and_shows_the_power_state():
    screen = fake_console.Screen("g")
    proto, transport = connect(screen)
    # noVNC's format: 32 bpp, depth 24, little-endian, true colour, red at shift 0.
    proto.dataReceived(struct.pack(">BxxxBBBBHHHBBBxxx", 0, 32, 24, 0, 1, 255, 255, 255, 0, 8, 16))
    proto.dataReceived(struct.pack(">BxHi", 2, 1, 0))  # SetEncodings: Raw
    full = _update(proto, transport, incremental=0)
    header = struct.calcsize(">BxH") + struct.calcsize(">HHHHi")
    assert struct.unpack(">BxH", full[:4]) == (0, 1)
    assert len(full) == header + fake_console.WIDTH * fake_console.HEIGHT * 4
    assert full[header : header + 4] == bytes([32, 96, 192, 0]), "a running guest's frame is blue (R, G, B, pad)"
    assert _update(proto, transport, incremental=1) == struct.pack(">BxH", 0, 0), "no change: no rectangles"
    screen.set_state("paused")
    paused = _update(proto, transport, incremental=1)
    assert paused[header : header + 4] == bytes([128, 128, 128, 0]), "after a pause the frame turns grey"


def test_input_and_clipboard_messages_are_consumed_without_answers():
    proto, transport = connect(fake_console.Screen("g"))
    transport.clear()
    proto.dataReceived(
        struct.pack(">BBxxI", 4, 1, 0x41) + struct.pack(">BBHH", 5, 0, 10, 10) + struct.pack(">BxxxI", 6, 3) + b"abc"
    )
    assert transport.value() == b""
    assert not transport.disconnecting
