"""What Glance v2 accepts and how it shows images: formats, statuses, validation, views, list queries."""

from __future__ import annotations

import datetime as dt
from typing import Any

from nova_twisted import exception, utils
from nova_twisted.db import images as db

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
VISIBILITIES = ("public", "private", "shared", "community")
STATUSES = (
    "queued",
    "saving",
    "active",
    "killed",
    "deleted",
    "pending_delete",
    "deactivated",
    "uploading",
    "importing",
)
MEMBER_STATUSES = ("pending", "accepted", "rejected")
#: Attributes set by the store alone.
READ_ONLY = (
    "id",
    "status",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
    "direct_url",
    "locations",
    "stores",
)
RESERVED = ("deleted", "deleted_at", "location")
#: Core attributes a caller may set (the rest of a body is properties).
SETTABLE = ("name", "visibility", "disk_format", "container_format", "min_disk", "min_ram", "protected", "os_hidden")
#: Core attributes shown in an image, in Glance's order.
CORE_VIEW = (
    "name",
    "disk_format",
    "container_format",
    "visibility",
    "size",
    "virtual_size",
    "status",
    "checksum",
    "protected",
    "min_ram",
    "min_disk",
    "owner",
    "os_hidden",
    "os_hash_algo",
    "os_hash_value",
)
_AMI_FORMATS = ("ami", "ari", "aki")


def image_view(image: dict) -> dict:
    """Return a stored image as Glance v2 shows it (properties as top-level keys)."""
    view: dict[str, Any] = dict(image.get("properties", {}))
    for key in CORE_VIEW:
        view[key] = image.get(key)
    view["id"] = image["id"]
    view["created_at"] = utils.isotime(image.get("created_at"))
    view["updated_at"] = utils.isotime(image.get("updated_at"))
    view["tags"] = list(image.get("tags", []))
    view["self"] = f"/v2/images/{image['id']}"
    view["file"] = f"/v2/images/{image['id']}/file"
    view["schema"] = "/v2/schemas/image"
    return view


def member_view(member: dict) -> dict:
    """Return a membership as Glance v2 shows it."""
    return {
        "created_at": utils.isotime(member.get("created_at")),
        "updated_at": utils.isotime(member.get("updated_at")),
        "image_id": member["image_id"],
        "member_id": member["member"],
        "status": member["status"],
        "schema": "/v2/schemas/member",
    }


# -- validation ----------------------------------------------------------------
def check_value(key: str, value: Any) -> Any:
    """Return ``value`` if it fits core attribute ``key``; InvalidRequest otherwise."""
    if key == "name":
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise exception.InvalidRequest(reason="Name must be a string of at most 255 characters.")
    elif key == "visibility":
        if value not in VISIBILITIES:
            raise exception.InvalidRequest(reason=f"Invalid visibility value: {value}")
    elif key == "disk_format":
        if value is not None and value not in DISK_FORMATS:
            raise exception.InvalidRequest(reason=f"Invalid disk format '{value}' for image.")
    elif key == "container_format":
        if value is not None and value not in CONTAINER_FORMATS:
            raise exception.InvalidRequest(reason=f"Invalid container format '{value}' for image.")
    elif key in ("min_disk", "min_ram"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 2**31 - 1:
            raise exception.InvalidRequest(reason=f"{key} must be a non-negative integer.")
    elif key in ("protected", "os_hidden"):
        if not isinstance(value, bool):
            raise exception.InvalidRequest(reason=f"{key} must be true or false.")
    return value


def check_property(name: str, value: Any) -> None:
    """InvalidRequest unless ``name`` is 1-255 characters and ``value`` a string."""
    if not isinstance(name, str) or not name or len(name) > 255:
        raise exception.InvalidRequest(reason="Property names must be 1 to 255 characters.")
    if not isinstance(value, str):
        raise exception.InvalidRequest(reason=f"Property {name} must be a string.")
    if len(value) > 65535:
        raise exception.InvalidRequest(reason=f"Property {name} is too long.")


def check_tag(tag: Any) -> None:
    """InvalidRequest unless ``tag`` is a string of 1-255 characters."""
    if not isinstance(tag, str) or not tag or len(tag) > 255:
        raise exception.InvalidRequest(reason="Tags must be strings of 1 to 255 characters.")


def check_formats(disk_format: str | None, container_format: str | None) -> None:
    """InvalidRequest for a mix of AMI-style and other formats, as Glance refuses it."""
    if disk_format and container_format:
        if (disk_format in _AMI_FORMATS or container_format in _AMI_FORMATS) and disk_format != container_format:
            raise exception.InvalidRequest(
                reason="Invalid mix of disk and container formats. When setting a disk or container format to "
                "one of 'aki', 'ari', or 'ami', the container and disk formats must match."
            )


def _split_values(value) -> list[str]:
    return [item.strip() for item in str(value).split(",") if item.strip()]


def _parse_time(text: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise exception.InvalidRequest(reason=f"Invalid time value: {text}") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def _parse_bool(key: str, value) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise exception.InvalidRequest(reason=f"Invalid value for {key}: {value}")


def parse_filters(filters: dict | None) -> dict:
    """Turn Glance's list filters (query parameter names) into keyword arguments of ``db.list_images``.

    Supported: name, id, status, owner, disk_format, container_format
    (exact or ``in:a,b``), visibility, member_status, tag (one or a list),
    size_min, size_max, protected, os_hidden, created_at and updated_at
    (``gt:``, ``gte:``, ``lt:``, ``lte:``, ``eq:``, ``neq:`` + ISO time), and
    any other key as an exact property match. InvalidRequest on bad values.
    """
    out: dict[str, Any] = {"core": [], "properties": {}, "tags": []}
    for key, raw in (filters or {}).items():
        if raw is None:
            continue
        value = raw[-1] if isinstance(raw, (list, tuple)) and key != "tag" else raw
        if key in ("name", "id", "status", "owner", "disk_format", "container_format"):
            text = str(value)
            if text.startswith("in:"):
                out["core"].append((key, "in", _split_values(text[3:])))
            else:
                out["core"].append((key, "eq", text))
        elif key == "visibility":
            if value not in (*VISIBILITIES, "all"):
                raise exception.InvalidRequest(reason=f"Invalid visibility value: {value}")
            out["visibility"] = value
        elif key == "member_status":
            if value not in (*MEMBER_STATUSES, "all"):
                raise exception.InvalidRequest(reason=f"Invalid status value: {value}")
            out["member_status"] = value
        elif key == "tag":
            tags = raw if isinstance(raw, (list, tuple)) else [raw]
            out["tags"].extend(str(tag) for tag in tags)
        elif key in ("size_min", "size_max"):
            try:
                size = int(value)
            except (TypeError, ValueError):
                raise exception.InvalidRequest(reason=f"Invalid value for {key}: {value}") from None
            out["core"].append(("size", "gte" if key == "size_min" else "lte", size))
        elif key == "protected":
            out["core"].append(("protected", "eq", _parse_bool(key, value)))
        elif key == "os_hidden":
            out["os_hidden"] = _parse_bool(key, value)
        elif key in ("created_at", "updated_at"):
            op, sep, when = str(value).partition(":")
            if not sep or op not in ("gt", "gte", "lt", "lte", "eq", "neq"):
                op, when = "eq", str(value)
            out["core"].append((key, op, _parse_time(when)))
        else:
            out["properties"][key] = str(value)
    return out


def parse_sort(sort_key=None, sort_dir=None, sort: str | None = None) -> list[tuple[str, str]]:
    """Return [(key, direction)] from Glance's ``sort_key``/``sort_dir`` (each one or a list) or ``sort=k:d,...``."""
    keys = [sort_key] if isinstance(sort_key, str) else list(sort_key or [])
    dirs = [sort_dir] if isinstance(sort_dir, str) else list(sort_dir or [])
    if sort is not None:
        if keys or dirs:
            raise exception.InvalidRequest(reason="The sort and sort_key/sort_dir parameters cannot be combined.")
        pairs = []
        for item in _split_values(sort):
            key, _, direction = item.partition(":")
            pairs.append((key.strip(), (direction or "desc").strip()))
    else:
        if not keys:
            keys = ["created_at"]
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise exception.InvalidRequest(reason="The number of sort_dir values must match sort_key's.")
        if len(dirs) <= 1:
            dirs = [dirs[0] if dirs else "desc"] * len(keys)
        pairs = list(zip(keys, dirs, strict=True))
    for key, direction in pairs:
        if key not in db.SORT_KEYS:
            raise exception.InvalidRequest(reason=f"Invalid sort key: {key}. It is not sortable.")
        if direction not in ("asc", "desc"):
            raise exception.InvalidRequest(reason=f"Invalid sort direction: {direction}")
    return pairs
