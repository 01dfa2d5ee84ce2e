"""Server actions: ``POST /servers/{id}/action`` with one action name as the body's only key.

reboot, os-stop, os-start, pause, unpause, suspend, resume, lock, unlock,
rebuild, resize, confirmResize, revertResize, createImage and
os-getConsoleOutput live here; other modules add theirs with
:func:`add_action` (remote_consoles adds os-getVNCConsole and friends).
An action outside its microversions is 404, an unknown one 400, as Nova.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass

from nova_twisted import exception
from nova_twisted.api.compute import servers
from nova_twisted.api.compute.servers import NAME, NAME_OR_NONE, R
from nova_twisted.api.http import Response

POLICIES = {
    R + "reboot": "rule:project_member_or_admin",
    R + "start": "rule:project_member_or_admin",
    R + "stop": "rule:project_member_or_admin",
    R + "rebuild": "rule:project_member_or_admin",
    R + "rebuild:trusted_certs": "rule:project_member_or_admin",
    R + "resize": "rule:project_member_or_admin",
    R + "confirm_resize": "rule:project_member_or_admin",
    R + "revert_resize": "rule:project_member_or_admin",
    R + "create_image": "rule:project_member_or_admin",
    "os_compute_api:os-pause-server:pause": "rule:project_member_or_admin",
    "os_compute_api:os-pause-server:unpause": "rule:project_member_or_admin",
    "os_compute_api:os-suspend-server:suspend": "rule:project_member_or_admin",
    "os_compute_api:os-suspend-server:resume": "rule:project_member_or_admin",
    "os_compute_api:os-lock-server:lock": "rule:project_member_or_admin",
    "os_compute_api:os-lock-server:unlock": "rule:project_member_or_admin",
    "os_compute_api:os-lock-server:unlock:unlock_override": "rule:admin_api",
    "os_compute_api:os-console-output": "rule:project_member_or_admin",
}

_ACTION = [("POST", "/servers/{server_id}/action")]
POLICY_DOCS = {
    R + "reboot": ("Reboot a server (action reboot).", _ACTION),
    R + "start": ("Start a stopped server (action os-start).", _ACTION),
    R + "stop": ("Stop a server (action os-stop).", _ACTION),
    R + "rebuild": ("Rebuild a server from an image (action rebuild).", _ACTION),
    R + "rebuild:trusted_certs": ("Rebuild a server with trusted image certificate ids (2.63+).", _ACTION),
    R + "resize": ("Resize a server to another flavor (action resize).", _ACTION),
    R + "confirm_resize": ("Confirm a resize (action confirmResize).", _ACTION),
    R + "revert_resize": ("Revert a resize (action revertResize).", _ACTION),
    R + "create_image": ("Snapshot a server into an image (action createImage).", _ACTION),
    "os_compute_api:os-pause-server:pause": ("Pause a server (action pause).", _ACTION),
    "os_compute_api:os-pause-server:unpause": ("Unpause a server (action unpause).", _ACTION),
    "os_compute_api:os-suspend-server:suspend": ("Suspend a server (action suspend).", _ACTION),
    "os_compute_api:os-suspend-server:resume": ("Resume a suspended server (action resume).", _ACTION),
    "os_compute_api:os-lock-server:lock": ("Lock a server against changes by non-admins (action lock).", _ACTION),
    "os_compute_api:os-lock-server:unlock": ("Unlock a server (action unlock).", _ACTION),
    "os_compute_api:os-lock-server:unlock:unlock_override": (
        "Unlock a server an administrator locked.",
        _ACTION,
    ),
    "os_compute_api:os-console-output": ("Read a server's console log (action os-getConsoleOutput).", _ACTION),
}


@dataclass
class Action:
    """One action: its handler ``(app, req, inst, body) -> dict | Response``, schema and microversions."""

    handler: object
    schema: dict | None = None
    min_version: str | None = None
    max_version: str | None = None
    schemas: tuple = ()  # ((low, high, schema), ...) when the schema changes with the microversion

    def schema_for(self, version) -> dict | None:
        for low, high, schema in self.schemas:
            if version.matches(low, high):
                return schema
        return self.schema


#: Every action, by the name a request body carries.
ACTIONS: dict[str, Action] = {}


def add_action(name: str, handler, schema=None, min_version=None, max_version=None, schemas=()) -> None:
    """Serve action ``name`` (idempotent: modules call it from their register())."""
    ACTIONS[name] = Action(handler, schema, min_version, max_version, tuple(schemas))


def _body_of(name: str, properties: dict | None = None, required=(), null: bool = False) -> dict:
    inner: dict = {"type": ["object", "null"] if null else "object", "additionalProperties": False}
    if properties is not None:
        inner["properties"] = properties
    if required:
        inner["required"] = list(required)
    return {"type": "object", "properties": {name: inner}, "required": [name], "additionalProperties": False}


def target_of(inst: dict) -> dict:
    return {"project_id": inst["project_id"], "user_id": inst["user_id"]}


# -- the dispatcher ----------------------------------------------------------------------------
async def action(app, req):
    """Run the server action the body names."""
    body = req.json()
    if not isinstance(body, dict) or len(body) != 1:
        raise exception.InvalidRequest(reason="Malformed request body")
    name = next(iter(body))
    spec = ACTIONS.get(name)
    if spec is None:
        raise exception.InvalidRequest(reason=f"There is no such action: {name}")
    version = app.version(req)
    if not version.matches(spec.min_version, spec.max_version):
        raise exception.NotFound("The resource could not be found.")
    schema = spec.schema_for(version)
    if schema is not None:
        app.body(req, schema)
    inst = await app.instance(req, req.params["server_id"])
    return await spec.handler(app, req, inst, body[name])


# -- simple state changes ---------------------------------------------------------------------
def _simple(rule: str, method: str):
    async def handler(app, req, inst, _args):
        app.authorize(req, rule, target_of(inst))
        await getattr(app.compute_api, method)(req.context, inst)
        return Response(202)

    handler.__name__ = method
    handler.__doc__ = f"{method} the server (202)."
    return handler


REBOOT = _body_of(
    "reboot", {"type": {"type": "string", "enum": ["HARD", "Hard", "hard", "SOFT", "Soft", "soft"]}}, required=["type"]
)


async def reboot(app, req, inst, args):
    """Reboot, SOFT or HARD (202)."""
    app.authorize(req, R + "reboot", target_of(inst))
    await app.compute_api.reboot(req.context, inst, args["type"].upper())
    return Response(202)


async def lock(app, req, inst, args):
    """Lock the server; from 2.73 with a locked_reason (202)."""
    app.authorize(req, "os_compute_api:os-lock-server:lock", target_of(inst))
    reason = None
    if app.version(req) >= "2.73" and isinstance(args, dict):
        reason = args.get("locked_reason")
    await app.compute_api.lock(req.context, inst, reason)
    return Response(202)


async def unlock(app, req, inst, _args):
    """Unlock the server; one an administrator locked needs unlock_override (202)."""
    app.authorize(req, "os_compute_api:os-lock-server:unlock", target_of(inst))
    ctxt = req.context
    if inst.get("locked") and inst.get("locked_by") == "admin" and not ctxt.is_admin:
        app.authorize(req, "os_compute_api:os-lock-server:unlock:unlock_override", target_of(inst))
        ctxt = ctxt.elevated()  # policy allowed this caller to lift an administrator's lock
    await app.compute_api.unlock(ctxt, inst)
    return Response(202)


# -- resize ------------------------------------------------------------------------------------
RESIZE = _body_of(
    "resize",
    {"flavorRef": servers.FLAVOR_REF, "OS-DCF:diskConfig": servers.DISK_CONFIG},
    required=["flavorRef"],
)


async def resize(app, req, inst, args):
    """Resize to another flavor on the same host (202; confirm or revert afterwards)."""
    app.authorize(req, R + "resize", target_of(inst))
    try:
        await app.compute_api.resize(req.context, inst, servers.id_from_href(args["flavorRef"]))
    except exception.FlavorNotFound as exc:
        raise exception.InvalidRequest(reason=exc.message) from None
    except exception.NoValidHost as exc:
        raise exception.InvalidRequest(reason=exc.message) from None
    return Response(202)


async def _finish_resize(app, req, inst, name: str, status: int) -> Response:
    """Confirm or revert (``name``) a resize; 400 if the server has not been resized."""
    app.authorize(req, R + name, target_of(inst))
    try:
        await getattr(app.compute_api, name)(req.context, inst)
    except exception.InstanceNotFound:
        raise
    except exception.NotFound:
        raise exception.InvalidRequest(reason="Instance has not been resized.") from None
    return Response(status)


async def confirm_resize(app, req, inst, _args):
    """Confirm a resize (204, as Nova answers it)."""
    return await _finish_resize(app, req, inst, "confirm_resize", 204)


async def revert_resize(app, req, inst, _args):
    """Revert a resize to the old flavor (202)."""
    return await _finish_resize(app, req, inst, "revert_resize", 202)


# -- rebuild -----------------------------------------------------------------------------------
REBUILD = _body_of(
    "rebuild",
    {
        "name": NAME,
        "imageRef": servers.IMAGE_ID,
        "adminPass": servers.ADMIN_PASSWORD,
        "metadata": servers.METADATA,
        "preserve_ephemeral": servers.BOOLEAN,
        "OS-DCF:diskConfig": servers.DISK_CONFIG,
        "accessIPv4": servers.ACCESS_IPV4,
        "accessIPv6": servers.ACCESS_IPV6,
        "personality": servers.PERSONALITY,
    },
    required=["imageRef"],
)


def _rebuild_schema(base: dict, **changes) -> dict:
    schema = copy.deepcopy(base)
    properties = schema["properties"]["rebuild"]["properties"]
    for key, value in changes.items():
        if value is None:
            properties.pop(key, None)
        else:
            properties[key] = value
    return schema


REBUILD_V219 = _rebuild_schema(REBUILD, description=servers.DESCRIPTION)
REBUILD_V254 = _rebuild_schema(REBUILD_V219, key_name=NAME_OR_NONE)
REBUILD_V257 = _rebuild_schema(
    REBUILD_V254, personality=None, user_data={"oneOf": [servers.USER_DATA, {"type": "null"}]}
)
REBUILD_V263 = _rebuild_schema(REBUILD_V257, trusted_image_certificates=servers.TRUSTED_CERTS)


async def rebuild(app, req, inst, args):
    """Rebuild the server from an image (202, with the server as it now is)."""
    version = app.version(req)
    target = target_of(inst)
    app.authorize(req, R + "rebuild", target)
    if args.get("personality"):
        raise exception.InvalidRequest(reason="Personality files are not supported by this cloud.")
    password = args.get("adminPass") or servers.generate_password()
    kwargs = {}
    if "name" in args:
        kwargs["name"] = args["name"].strip()
    if version >= "2.19" and "description" in args:
        kwargs["description"] = args["description"]
    if "metadata" in args:
        kwargs["metadata"] = args["metadata"]
    if version >= "2.54" and "key_name" in args:
        kwargs["key_name"] = args["key_name"]
    if version >= "2.57" and "user_data" in args:
        kwargs["user_data"] = args["user_data"]
    access = {}
    if "accessIPv4" in args:
        access["access_ip_v4"] = args["accessIPv4"]
    if "accessIPv6" in args:
        access["access_ip_v6"] = args["accessIPv6"]
    system_metadata = {}
    if "OS-DCF:diskConfig" in args:
        system_metadata["auto_disk_config"] = str(args["OS-DCF:diskConfig"] == "AUTO")
    if version >= "2.63" and "trusted_image_certificates" in args:
        app.authorize(req, R + "rebuild:trusted_certs", target)
        certs = args["trusted_image_certificates"]
        system_metadata["trusted_image_certificates"] = json.dumps(certs) if certs else None
    try:
        await app.compute_api.rebuild(
            req.context,
            inst,
            servers.id_from_href(args["imageRef"]),
            access_ips=access,
            system_metadata=system_metadata,
            **kwargs,
        )
    except exception.KeypairNotFound:
        raise exception.InvalidRequest(reason="Invalid key_name provided.") from None
    except exception.ImageNotFound:
        raise exception.InvalidRequest(reason="Cannot find image for rebuild") from None
    view = servers.View(app, req)
    fresh = await servers.fetch(app, req, inst["uuid"], view)
    if version >= "2.75":
        shown = view.server(fresh, full=True, server_groups=True, user_data=False)
    else:
        shown = view.server(fresh, full=False, key_name=version >= "2.54", server_groups=version >= "2.71")
    shown["adminPass"] = password
    if version >= "2.57":
        shown["user_data"] = fresh["user_data"]
    return Response(202, {"server": shown}, {"Location": shown["links"][0]["href"]})


# -- createImage -------------------------------------------------------------------------------
CREATE_IMAGE = _body_of("createImage", {"name": NAME, "metadata": servers.METADATA}, required=["name"])


async def create_image(app, req, inst, args):
    """Snapshot the server: 202 with a Location header below 2.45, ``{"image_id"}`` from 2.45."""
    app.authorize(req, R + "create_image", target_of(inst))
    image = await app.compute_api.snapshot(req.context, inst, args["name"].strip(), dict(args.get("metadata") or {}))
    if app.version(req) >= "2.45":
        return Response(202, {"image_id": image["id"]})
    location = f"{app.conf.identity.image_url.rstrip('/')}/images/{image['id']}"
    return Response(202, None, {"Location": location})


# -- console output ----------------------------------------------------------------------------
CONSOLE_OUTPUT = _body_of(
    "os-getConsoleOutput",
    {"length": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$", "minimum": -1}},
)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")


async def console_output(app, req, inst, args):
    """The tail (``length`` lines; -1 or none: all) of the server's console log."""
    app.authorize(req, "os_compute_api:os-console-output", target_of(inst))
    length = (args or {}).get("length")
    if length is not None:
        length = int(length)
        if length < 0:
            length = None
    output = await app.compute_api.get_console_output(req.context, inst, length)
    return {"output": _CONTROL.sub("", output or "")}


def register(app) -> None:
    add_action("reboot", reboot, REBOOT)
    add_action("os-stop", _simple(R + "stop", "stop"))
    add_action("os-start", _simple(R + "start", "start"))
    add_action("pause", _simple("os_compute_api:os-pause-server:pause", "pause"))
    add_action("unpause", _simple("os_compute_api:os-pause-server:unpause", "unpause"))
    add_action("suspend", _simple("os_compute_api:os-suspend-server:suspend", "suspend"))
    add_action("resume", _simple("os_compute_api:os-suspend-server:resume", "resume"))
    add_action(
        "lock",
        lock,
        schemas=[
            (
                "2.73",
                None,
                _body_of("lock", {"locked_reason": {"type": "string", "minLength": 1, "maxLength": 255}}, null=True),
            )
        ],
    )
    add_action("unlock", unlock)
    add_action("resize", resize, RESIZE)
    add_action("confirmResize", confirm_resize)
    add_action("revertResize", revert_resize)
    add_action(
        "rebuild",
        rebuild,
        REBUILD,
        schemas=[
            ("2.63", None, REBUILD_V263),
            ("2.57", "2.62", REBUILD_V257),
            ("2.54", "2.56", REBUILD_V254),
            ("2.19", "2.53", REBUILD_V219),
        ],
    )
    add_action("createImage", create_image, CREATE_IMAGE)
    add_action("os-getConsoleOutput", console_output, CONSOLE_OUTPUT)
    app.route("POST", "/v2.1/servers/{server_id}/action", action)
