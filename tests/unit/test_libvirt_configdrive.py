"""The config drive: an ISO 9660 image labelled config-2 with OpenStack's layout."""

from __future__ import annotations

import base64
import io
import json

import pycdlib

from nova_twisted.virt.libvirt import configdrive

INSTANCE = {
    "uuid": "0b5d3c39-43b5-4c28-9a2b-7a8f3d1c2e11",
    "name": "instance-0000002a",
    "display_name": "web-1",
    "project_id": "p1",
    "metadata": {"role": "web"},
    "user_data": base64.b64encode(b"#!/bin/sh\necho hi\n").decode(),
    "key_data": "ssh-ed25519 AAAA test",
    "key_name": "mykey",
}


def _read(iso, path):
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, rr_path=path)
    return out.getvalue()


def test_config_drive_carries_metadata_and_user_data(tmp_path):
    path = str(tmp_path / "disk.config")
    configdrive.build(path, INSTANCE)
    iso = pycdlib.PyCdlib()
    iso.open(path)
    try:
        assert iso.pvd.volume_identifier.decode().strip() == "config-2"
        for version in ("latest", "2012-08-10"):
            meta = json.loads(_read(iso, f"/openstack/{version}/meta_data.json"))
            assert meta["uuid"] == INSTANCE["uuid"]
            assert meta["name"] == "web-1"
            assert meta["meta"] == {"role": "web"}
            assert meta["public_keys"] == {"mykey": "ssh-ed25519 AAAA test"}
            assert _read(iso, f"/openstack/{version}/user_data") == b"#!/bin/sh\necho hi\n"
    finally:
        iso.close()


def test_who_gets_a_config_drive_and_how_user_data_is_read():
    assert not configdrive.wanted({"uuid": "x"})
    assert configdrive.wanted({"uuid": "x"}, force=True)
    assert configdrive.wanted({"uuid": "x", "user_data": "aGk="})
    assert configdrive.wanted({"uuid": "x", "key_data": "ssh-rsa A"})
    assert configdrive.user_data_bytes("aGk=") == b"hi"
    assert configdrive.user_data_bytes("not base64!") == b"not base64!"
    assert configdrive.user_data_bytes(None) is None
