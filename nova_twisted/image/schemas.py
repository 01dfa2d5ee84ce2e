"""The JSON schemas Glance v2 publishes under /v2/schemas (clients fetch them to validate images)."""

from __future__ import annotations

import copy

from nova_twisted.image.model import CONTAINER_FORMATS, DISK_FORMATS, MEMBER_STATUSES, STATUSES, VISIBILITIES

_UUID = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
_DATE = {"type": "string", "readOnly": True}


def _string(description: str, max_length: int = 255, null: bool = True, **extra) -> dict:
    schema = {"type": ["null", "string"] if null else "string", "description": description, "maxLength": max_length}
    schema.update(extra)
    return schema


def image_schema() -> dict:
    """The schema of one image (``GET /v2/schemas/image``)."""
    properties = {
        "id": {"type": "string", "description": "An identifier for the image", "pattern": _UUID},
        "name": _string("Descriptive name for the image"),
        "status": {
            "type": "string",
            "readOnly": True,
            "description": "Status of the image",
            "enum": list(STATUSES),
        },
        "visibility": {"type": "string", "description": "Scope of image accessibility", "enum": list(VISIBILITIES)},
        "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
        "os_hidden": {
            "type": "boolean",
            "description": "If true, image will not appear in default image list response.",
        },
        "checksum": _string("md5 hash of image contents.", 32, readOnly=True),
        "os_hash_algo": _string("Algorithm to calculate the os_hash_value", 64, readOnly=True),
        "os_hash_value": _string(
            "Hexdigest of the image contents using the algorithm in os_hash_algo.", 128, readOnly=True
        ),
        "owner": _string("Owner of the image"),
        "size": {"type": ["null", "integer"], "readOnly": True, "description": "Size of image file in bytes"},
        "virtual_size": {
            "type": ["null", "integer"],
            "readOnly": True,
            "description": "Virtual size of image in bytes",
        },
        "container_format": {
            "type": ["null", "string"],
            "description": "Format of the container",
            "enum": [None, *CONTAINER_FORMATS],
        },
        "disk_format": {
            "type": ["null", "string"],
            "description": "Format of the disk",
            "enum": [None, *DISK_FORMATS],
        },
        "created_at": dict(_DATE, description="Date and time of image registration"),
        "updated_at": dict(_DATE, description="Date and time of the last image modification"),
        "tags": {
            "type": "array",
            "description": "List of strings related to the image",
            "items": {"type": "string", "maxLength": 255},
        },
        "direct_url": {"type": "string", "readOnly": True, "description": "URL to access the image file"},
        "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
        "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
        "self": {"type": "string", "readOnly": True, "description": "An image self url"},
        "file": {"type": "string", "readOnly": True, "description": "An image file url"},
        "stores": {"type": "string", "readOnly": True, "description": "Store in which image data resides."},
        "schema": {"type": "string", "readOnly": True, "description": "An image schema url"},
        "locations": {
            "type": "array",
            "description": "A set of URLs to access the image file kept in external store",
            "items": {"type": "object", "properties": {"url": {"type": "string"}, "metadata": {"type": "object"}}},
        },
        "kernel_id": {
            "type": ["null", "string"],
            "pattern": _UUID,
            "description": "ID of image stored in Glance that should be used as the kernel when booting an "
            "AMI-style image.",
            "is_base": False,
        },
        "ramdisk_id": {
            "type": ["null", "string"],
            "pattern": _UUID,
            "description": "ID of image stored in Glance that should be used as the ramdisk when booting an "
            "AMI-style image.",
            "is_base": False,
        },
        "instance_uuid": {
            "type": "string",
            "description": "Metadata which can be used to record which instance this image is associated with.",
            "is_base": False,
        },
        "architecture": {
            "type": "string",
            "description": "Operating system architecture as specified in https://docs.openstack.org/"
            "python-glanceclient/latest/cli/property-keys.html",
            "is_base": False,
        },
        "os_distro": {
            "type": "string",
            "description": "Common name of operating system distribution",
            "is_base": False,
        },
        "os_version": {"type": "string", "description": "Operating system version", "is_base": False},
        "description": {
            "type": "string",
            "description": "A human-readable string describing this image.",
            "is_base": False,
        },
    }
    return {
        "name": "image",
        "properties": properties,
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def images_schema() -> dict:
    """The schema of an image list (``GET /v2/schemas/images``)."""
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def member_schema() -> dict:
    """The schema of one image membership (``GET /v2/schemas/member``)."""
    return {
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "image_id": {"type": "string", "description": "An identifier for the image", "pattern": _UUID},
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "status": {
                "type": "string",
                "description": "The status of this image member",
                "enum": list(MEMBER_STATUSES),
            },
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
            "schema": {"readOnly": True, "type": "string"},
        },
    }


def members_schema() -> dict:
    """The schema of a membership list (``GET /v2/schemas/members``)."""
    return {
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": member_schema()},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "describedby", "href": "{schema}"}],
    }


SCHEMAS = {
    "image": image_schema,
    "images": images_schema,
    "member": member_schema,
    "members": members_schema,
}


def get(name: str) -> dict | None:
    """A fresh copy of the named schema, or None."""
    factory = SCHEMAS.get(name)
    return copy.deepcopy(factory()) if factory else None
