"""The OpenStack Compute API v2.1 application: routing, microversions, errors, policy.

Resource modules (``servers``, ``flavors``, ...) each define
``register(app)`` and add their routes with :meth:`ComputeApp.route`;
handlers are ``async def handler(app, req)`` and use the helpers here for
the microversion, body validation, policy and pagination, so that every
resource answers the same way Nova does.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from urllib.parse import urlencode

import jsonschema
from twisted.logger import Logger

from nova_twisted import exception
from nova_twisted.api.compute import RESOURCE_MODULES, microversion, resource_modules  # noqa: F401
from nova_twisted.api.compute.microversion import APIVersion
from nova_twisted.api.http import JSONRouter, Response, fixed_header
from nova_twisted.api.http import base_url as http_base_url
from nova_twisted.compute.api import API

log = Logger(namespace="nova.api.compute")

#: Nova's names for error bodies, by status.
FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}


def nova_error(exc: exception.NovaError) -> dict:
    """Nova's error body: ``{"badRequest": {"code": 400, "message": "..."}}``.

    Unexpected errors reach here already replaced by the router's generic,
    traceback-free message.
    """
    code = exc.code if isinstance(exc.code, int) else 500
    return {FAULT_NAMES.get(code, "computeFault"): {"code": code, "message": exc.message}}


class ComputeApp:
    """The compute API: a JSONRouter plus what handlers share."""

    def __init__(self, conf, database, transport, reactor, authenticator, image_service=None, policy=None):
        from nova_twisted.api.compute.policies import load_enforcer

        self.conf = conf
        self.database = database
        self.reactor = reactor
        self.image_service = image_service
        self.compute_api = API(database, transport, conf, reactor, image_service)
        self.policy = policy or load_enforcer(conf)
        self._versions: dict = {}
        self.router = JSONRouter(
            error_body=nova_error,
            authenticate=authenticator,
            before=self._before,
            after=self._after,
            request_id_headers=("x-openstack-request-id", "x-compute-request-id"),
        )
        for module in resource_modules():
            module.register(self)

    @property
    def resource(self):
        """The twisted.web Resource to serve (the root of its Site)."""
        return self.router

    # -- routing ----------------------------------------------------------------------------
    def route(
        self,
        method: str,
        pattern: str,
        handler,
        auth: bool = True,
        min_version: str | None = None,
        max_version: str | None = None,
    ) -> None:
        """Route ``method pattern`` to ``handler(app, req)``, for the given microversions.

        Outside ``min_version``..``max_version`` the route answers 404, as
        Nova does for an API that does not exist at the requested version.
        """

        async def call(req):
            if min_version or max_version:
                if not self.version(req).matches(min_version, max_version):
                    raise exception.NotFound("The resource could not be found.")
            return await handler(self, req)

        call.__name__ = getattr(handler, "__name__", "handler")
        call.__doc__ = handler.__doc__
        call.__wrapped__ = handler
        call.versions = (min_version, max_version)
        self.router.add(method, pattern, call, auth=auth)

    def _before(self, req) -> None:
        if not req.path.startswith("/v2.1"):
            return
        asked = (req.header("openstack-api-version"), req.header("x-openstack-nova-api-version"))
        known = self._versions.get(asked)
        if known is None:
            # Parsed once per distinct pair of headers (clients send the same few); errors are not kept.
            version = microversion.requested_version(*asked)
            headers = (
                fixed_header("OpenStack-API-Version", f"compute {version}"),
                fixed_header("X-OpenStack-Nova-API-Version", str(version)),
                fixed_header("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
            )
            if len(self._versions) > 1000:
                self._versions.clear()
            known = self._versions[asked] = (version, headers)
        req.extra["version"] = known[0]
        req.fixed_headers = known[1]

    def _after(self, req, response: Response) -> None:
        return None

    # -- helpers handlers share ---------------------------------------------------------------
    @staticmethod
    def version(req) -> APIVersion:
        """The microversion of this request (2.1 when it asked for none)."""
        return req.extra.get("version", microversion.MIN)

    def authorize(self, req, rule: str, target: dict | None = None) -> None:
        """Raise Forbidden unless policy ``rule`` allows the caller on ``target``."""
        target = target or {"project_id": req.context.project_id, "user_id": req.context.user_id}
        self.policy.authorize(req.context, rule, target)

    def allowed(self, req, rule: str, target: dict | None = None) -> bool:
        target = target or {"project_id": req.context.project_id, "user_id": req.context.user_id}
        return self.policy.allowed(req.context, rule, target)

    @staticmethod
    def body(req, schema: dict | None = None):
        """The request's JSON body, validated against ``schema`` (Nova's 400 on any mismatch)."""
        data = req.json()
        if schema is not None:
            validate(data, schema)
        return data

    async def instance(self, req, server_id: str, read_deleted: str = "no") -> dict:
        """The server, if the caller may see it: 404 otherwise (never 403, as Nova)."""
        ctxt = req.context
        admin = self.allowed(req, "os_compute_api:servers:show:all_projects")
        if not admin:
            ctxt = _without_admin(ctxt)
        return await self.compute_api.get(ctxt, server_id, read_deleted)

    def limit(self, req) -> int | None:
        """``?limit=`` as an int, capped by ``[api] max_limit``; 400 if malformed."""
        raw = req.arg("limit")
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            raise exception.InvalidRequest(
                reason=f"Invalid input for query parameters limit. Value: {raw}. '{raw}' does not match '^[0-9]*$'"
            ) from None
        if value < 0:
            raise exception.InvalidRequest(
                reason=f"Invalid input for query parameters limit. Value: {raw}. '{raw}' does not match '^[0-9]*$'"
            )
        return min(value, self.conf.api.max_limit)

    @staticmethod
    def base_url(req) -> str:
        """``scheme://host:port`` as the client addressed us."""
        return http_base_url(req.raw)

    def links(self, req, collection: str, item_id) -> list[dict]:
        """The self and bookmark links Nova puts on every item."""
        base = self.base_url(req)
        return [
            {"rel": "self", "href": f"{base}/v2.1/{collection}/{item_id}"},
            {"rel": "bookmark", "href": f"{base}/{collection}/{item_id}"},
        ]

    def next_link(self, req, collection: str, items: list[dict], limit: int | None, marker_key: str = "id"):
        """``[{"rel": "next", ...}]`` when a page is full, else ``[]``."""
        page = limit if limit is not None else self.conf.api.max_limit
        if not items or len(items) < page:
            return []
        params = [(k, v) for k, values in req.query.items() if k != "marker" for v in values]
        params.append(("marker", items[-1][marker_key]))
        return [{"rel": "next", "href": f"{self.base_url(req)}/v2.1/{collection}?{urlencode(params)}"}]


def _without_admin(ctxt):
    from nova_twisted.context import RequestContext

    data = ctxt.to_wire()
    data["is_admin"] = False
    return RequestContext.from_dict(data)


class InvalidName(exception.Invalid):
    msg_fmt = "An invalid 'name' value was provided. The name must be: %(reason)s"


#: Formats Nova's schemas use beyond jsonschema's own: ``name``, ``base64``, ``date-time``.
FORMAT_CHECKER = jsonschema.FormatChecker()
_NAME = re.compile(r"^(?![\s])[^\x00-\x1f\x7f-\x9f]*(?<![\s])$")


@FORMAT_CHECKER.checks("name", raises=InvalidName)
def _check_name(value) -> bool:
    if not isinstance(value, str) or _NAME.match(value):
        return True
    raise InvalidName(reason="printable characters. Can not start or end with whitespace.")


@FORMAT_CHECKER.checks("base64", raises=(ValueError, TypeError))
def _check_base64(value) -> bool:
    if isinstance(value, str):
        base64.b64decode(value.encode("ascii"), validate=True)
    return True


@FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _check_date_time(value) -> bool:
    if isinstance(value, str):
        parse_isotime(value)
    return True


def parse_isotime(text: str) -> dt.datetime:
    """An ISO 8601 time as naive UTC; ValueError if it is not one."""
    value = dt.datetime.fromisoformat(text.strip().replace("z", "Z"))
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def validate(data, schema: dict) -> None:
    """Raise ValidationError (400) with Nova's wording when ``data`` breaks ``schema``."""
    validator = jsonschema.Draft4Validator(schema, format_checker=FORMAT_CHECKER)
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        return
    path = "/".join(str(p) for p in error.absolute_path)
    if isinstance(error.cause, exception.NovaError):
        raise exception.ValidationError(error.cause.message, field=path, reason=error.cause.message)
    if error.validator == "additionalProperties":
        raise exception.ValidationError(
            f"Additional properties are not allowed ({_extra(error)} was unexpected)", field=path, reason=error.message
        )
    if error.validator == "required":
        raise exception.ValidationError(f"{error.message}", field=path, reason=error.message)
    value = error.instance
    raise exception.ValidationError(
        f"Invalid input for field/attribute {path or error.validator}. Value: {value}. {error.message}",
        field=path,
        reason=error.message,
    )


def _extra(error) -> str:
    message = error.message
    start = message.find("(")
    return message[start + 1 : message.rfind(" was unexpected")] if start >= 0 else message


def build_compute_resource(conf, database, transport, reactor, authenticator, image_service=None):
    """The twisted.web Resource answering the compute API (the root of its Site)."""
    return ComputeApp(conf, database, transport, reactor, authenticator, image_service).resource
