"""The config drive: an ISO 9660 image labelled ``config-2`` carrying metadata and user data.

Laid out as OpenStack's config drive (what cloud-init reads):
``openstack/latest/meta_data.json``, ``openstack/latest/user_data`` (when
there is any), and the same under ``openstack/2012-08-10/``. Built with
pycdlib (pure Python); blocking, so the driver runs it on its thread pool.
"""

from __future__ import annotations

import base64
import binascii
import io
import json

from nova_twisted import exception

VOLUME_LABEL = "config-2"
VERSIONS = ("2012-08-10", "latest")


def wanted(instance: dict, force: bool = False) -> bool:
    """True when ``instance`` gets a config drive: forced, asked for, or it has user data or a key."""
    return bool(force or instance.get("config_drive") or instance.get("user_data") or instance.get("key_data"))


def user_data_bytes(user_data) -> bytes | None:
    """Return the instance's user data as bytes (the API stores it base64-encoded; raw text is kept as is)."""
    if not user_data:
        return None
    if isinstance(user_data, bytes):
        return user_data
    try:
        return base64.b64decode(user_data, validate=True)
    except (binascii.Error, ValueError):
        return user_data.encode("utf-8")


def meta_data(instance: dict) -> dict:
    """Return the meta_data.json document of ``instance``."""
    name = instance.get("display_name") or instance.get("name") or instance["uuid"]
    data = {
        "uuid": instance["uuid"],
        "name": name,
        "hostname": instance.get("hostname") or name,
        "launch_index": instance.get("launch_index") or 0,
        "availability_zone": instance.get("availability_zone") or "nova",
        "project_id": instance.get("project_id"),
        "meta": dict(instance.get("metadata") or {}),
    }
    if instance.get("key_data"):
        key_name = instance.get("key_name") or "key"
        data["public_keys"] = {key_name: instance["key_data"]}
        data["keys"] = [{"name": key_name, "type": "ssh", "data": instance["key_data"]}]
    return data


def build(path: str, instance: dict) -> None:
    """Write the config drive of ``instance`` to ``path`` (blocking).

    Fails with HypervisorError when pycdlib is not installed.
    """
    try:
        import pycdlib
    except ImportError:
        raise exception.HypervisorError(reason="a config drive needs the pycdlib package") from None
    files = {"meta_data.json": json.dumps(meta_data(instance), sort_keys=True).encode("utf-8")}
    user_data = user_data_bytes(instance.get("user_data"))
    if user_data is not None:
        files["user_data"] = user_data
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=VOLUME_LABEL)
    iso.add_directory("/OPENSTAC", rr_name="openstack", joliet_path="/openstack")
    for number, version in enumerate(VERSIONS):
        directory = f"/OPENSTAC/V{number}"
        iso.add_directory(directory, rr_name=version, joliet_path=f"/openstack/{version}")
        for index, (name, content) in enumerate(sorted(files.items())):
            iso.add_fp(
                io.BytesIO(content),
                len(content),
                f"{directory}/F{index}.;1",
                rr_name=name,
                joliet_path=f"/openstack/{version}/{name}",
            )
    try:
        iso.write(path)
    finally:
        iso.close()
