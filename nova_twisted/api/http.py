"""A small JSON router on Twisted Web, shared by the compute, identity and image APIs.

Handlers are ``async def handler(req) -> Response`` (or return a dict,
answered 200). Errors of ours become the API's own error body through the
router's ``error_body`` function; anything else is logged with its
traceback and answered as a 500 with no traceback in the body. Requests
never block the reactor and never hang: a client that goes away is noticed
and the answer dropped.
"""

from __future__ import annotations

import functools
import json
import re
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from random import getrandbits as _random_bits
from typing import Any
from urllib.parse import parse_qs

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from nova_twisted import exception
from nova_twisted.context import RequestContext

try:  # a much faster encoder when installed; the answers are the same JSON either way
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None

log = Logger(namespace="nova.api.http")

MAX_BODY = 1024 * 1024  # JSON bodies; uploads stream through their own handlers


@dataclass
class Response:
    """What a handler answers: status, a JSON-able body (or bytes), headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


class Handled:
    """Returned by a handler that wrote (or is streaming) the response itself."""


HANDLED = Handled()


_UUID4_CLEAR = ~((0xF << 76) | (0x3 << 62))
_UUID4_SET = (0x4 << 76) | (0x2 << 62)


def _request_id() -> str:
    """``req-<uuid4>`` as generate_request_id() makes it, several times faster (one per request).

    A request id names a request in logs and answers; it is no secret, so
    it comes from the process's pseudo-random generator, not the kernel's.
    """
    h = "%032x" % ((_random_bits(128) & _UUID4_CLEAR) | _UUID4_SET)
    return f"req-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class ApiRequest:
    """One request, as handlers see it."""

    def __init__(self, request, params: dict[str, str]):
        self.raw = request
        self.params = params
        self.method = _METHODS.get(request.method) or request.method.decode("ascii")
        self.path = request.path.decode("utf-8", "replace")
        args = request.args
        self.query: dict[str, list[str]] = (
            {k.decode("utf-8", "replace"): [v.decode("utf-8", "replace") for v in vs] for k, vs in args.items()}
            if args
            else {}
        )
        self.context: RequestContext | None = None
        self.request_id = _request_id()
        self.extra: dict[str, Any] = {}
        #: Headers every answer to this request carries, as :func:`fixed_header` pairs.
        self.fixed_headers: tuple[tuple[bytes, bytes], ...] = ()
        self.gone = False  # the answer was written, or the client went away

    def header(self, name: str, default: str | None = None) -> str | None:
        value = self.raw.getHeader(name)
        return value if value is not None else default

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def json(self, required: bool = True):
        """Return the decoded JSON body; raise Invalid if it is missing or malformed."""
        content = self.raw.content
        if content is None:
            body = b""
        else:
            content.seek(0)
            body = content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            raise exception.OverLimit(reason="Request body too large")
        if not body.strip():
            if required:
                raise exception.InvalidRequest(reason="The request body is missing.")
            return None
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise exception.InvalidRequest(reason="Malformed request body") from None


Handler = Callable[[ApiRequest], Awaitable[Any]]
_METHODS = {m.encode("ascii"): m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}
_BASE_URLS: dict = {}  # (Host header, secure) -> base URL


def base_url(request) -> str:
    """``scheme://host[:port]`` as the client addressed this server (a twisted.web request)."""
    host = request.getHeader(b"host")
    if not host:
        address = request.getHost()
        host = f"{address.host}:{address.port}".encode()
    key = (host, request.isSecure())
    found = _BASE_URLS.get(key)
    if found is None:
        if len(_BASE_URLS) > 1000:
            _BASE_URLS.clear()
        found = _BASE_URLS[key] = f"{'https' if key[1] else 'http'}://{host.decode('utf-8', 'replace')}"
    return found


def default_error_body(exc: exception.NovaError) -> Any:
    return {"error": {"code": exc.code, "message": exc.message}}


class JSONRouter(Resource):
    """Dispatches on (method, path pattern); ``{name}`` in a pattern matches one segment.

    ``authenticate(req)`` (async) sets ``req.context`` for routes that need
    it; ``before(req)`` and ``after(req, response)`` are hooks for
    per-API behaviour (microversions, extra headers).
    """

    isLeaf = True

    def __init__(
        self,
        error_body: Callable[[exception.NovaError], Any] = default_error_body,
        authenticate: Callable[[ApiRequest], Awaitable[None]] | None = None,
        before: Callable[[ApiRequest], None] | None = None,
        after: Callable[[ApiRequest, Response], None] | None = None,
        request_id_headers: tuple[str, ...] = ("x-openstack-request-id",),
    ):
        super().__init__()
        self.routes: list[tuple[str, re.Pattern, Handler, bool, str]] = []
        self.error_body = error_body
        self.authenticate = authenticate
        self.before = before
        self.after = after
        self.request_id_headers = request_id_headers
        self._request_id_names = [fixed_header(name, "-")[0] for name in request_id_headers]
        self.in_flight = 0
        self._idle: list[defer.Deferred] = []
        self._index: dict[str, list[int]] | None = None
        self._anywhere: list[int] = []

    def add(self, method: str, pattern: str, handler: Handler, auth: bool = True) -> None:
        """Route ``method pattern`` to ``handler``; ``auth=False`` for public routes."""
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern.rstrip("/") or "") + "/?$"
        self.routes.append((method.upper(), re.compile(regex), handler, auth, pattern))
        self._index = None

    @staticmethod
    def _key(path: str) -> str:
        # The first two segments ("/v2.1/servers"): what most routes are told apart by.
        return "/".join(path.split("/", 3)[:3])

    def _candidates(self, path: str) -> list[int]:
        """Indexes of the routes that may match ``path``, in the order they were added."""
        if self._index is None:
            index: dict[str, list[int]] = {}
            anywhere = []
            for number, (*_ignored, pattern) in enumerate(self.routes):
                key = self._key(pattern.rstrip("/") or "/")
                if "{" in key:
                    anywhere.append(number)
                else:
                    index.setdefault(key, []).append(number)
            self._index = {key: sorted(found + anywhere) for key, found in index.items()}
            self._anywhere = anywhere
        return self._index.get(self._key(path), self._anywhere)

    def match(self, method: str, path: str):
        """Return (handler, params, auth) or raise NotFound / a 405 error."""
        allowed = []
        routes = self.routes
        for index in self._candidates(path):
            route_method, regex, handler, auth, _ = routes[index]
            m = regex.match(path)
            if m:
                if route_method == method or (method == "HEAD" and route_method == "GET"):
                    return handler, m.groupdict(), auth
                allowed.append(route_method)
        if allowed:
            err = exception.NovaError("The method specified is not allowed for this resource.")
            err.code = 405
            err.allowed = sorted(set(allowed))
            raise err
        raise exception.NotFound("The resource could not be found.")

    def render(self, request):
        self.in_flight += 1
        req = ApiRequest(request, {})
        request.notifyFinish().addBoth(self._request_done, req)
        _drive(self._handle(request, req))
        return NOT_DONE_YET

    def _request_done(self, _result, req: ApiRequest) -> None:
        req.gone = True
        self.in_flight -= 1
        if self.in_flight == 0 and self._idle:
            waiting, self._idle = self._idle, []
            for d in waiting:
                d.callback(None)

    def idle(self) -> defer.Deferred:
        """A Deferred firing once no request is in flight (at once if none is)."""
        if self.in_flight == 0:
            return defer.succeed(None)
        d = defer.Deferred()
        self._idle.append(d)
        return d

    async def _handle(self, request, req: ApiRequest) -> None:
        path = req.path
        response: Response | Handled
        try:
            handler, params, auth = self.match(req.method, path.rstrip("/") or "/")
            req.params = params
            if self.before is not None:
                self.before(req)
            if auth and self.authenticate is not None:
                await self.authenticate(req)
            result = await handler(req)
            response = result if isinstance(result, (Response, Handled)) else Response(200, result)
        except exception.NovaError as exc:
            response = self._error_response(req, exc)
        except Exception:  # noqa: BLE001 - answered as a 500, logged with its traceback
            log.error(
                "{method} {path} failed: {tb}",
                method=req.method,
                path=path,
                tb=traceback.format_exc(),
                request_id=req.request_id,
            )
            response = self._error_response(
                req, exception.NovaError("Unexpected API Error. Please report this at the project's issue tracker.")
            )
        if isinstance(response, Handled) or req.gone:
            return
        if self.after is not None:
            try:
                self.after(req, response)
            except exception.NovaError as exc:
                response = self._error_response(req, exc)
        self.write(request, req, response)

    def _error_response(self, req: ApiRequest, exc: exception.NovaError) -> Response:
        code = exc.code if isinstance(exc.code, int) else 500
        if code >= 500 and not isinstance(exc, (exception.NoValidHost, exception.MessagingTimeout)):
            if type(exc) is not exception.NovaError:
                log.error(
                    "{method} {path}: {error!r}", method=req.method, path=req.path, error=exc, request_id=req.request_id
                )
        response = Response(code, self.error_body(exc))
        allowed = getattr(exc, "allowed", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response

    def write(self, request, req: ApiRequest, response: Response) -> None:
        request.setResponseCode(response.status)
        request_id = req.request_id.encode("ascii")
        fixed = [(name, request_id) for name in self._request_id_names]
        fixed += req.fixed_headers
        for name, value in response.headers.items():
            request.setHeader(name, value)
        if response.body is None or response.status == 204:
            if response.status != 204:
                fixed.append((b"Content-Length", b"0"))
            _put_headers(request, fixed)
            request.finish()
            return
        if isinstance(response.body, bytes):
            data = response.body
        else:
            data = encode_json(response.body)
        fixed.append(fixed_header("content-type", response.content_type))
        fixed.append((b"Content-Length", b"%d" % len(data)))
        _put_headers(request, fixed)
        if req.method != "HEAD":
            request.write(data)
        request.finish()


@functools.lru_cache(maxsize=256)
def fixed_header(name: str, value: str) -> tuple[bytes, bytes]:
    """A response header as Twisted keeps it: (canonical name, value) bytes, checked and encoded once."""
    headers = Headers()
    headers.setRawHeaders(name, [value])
    ((canonical, values),) = headers.getAllRawHeaders()
    return canonical, values[0]


def _put_headers(request, pairs: list[tuple[bytes, bytes]]) -> None:
    """Set response headers from :func:`fixed_header` pairs (and ids and lengths of our own making).

    They are canonical and clean already: they go into the Headers' table
    as they are, without Twisted encoding and checking them again per
    request (through its public method where that table is not there).
    """
    headers = request.responseHeaders
    table = getattr(headers, "_rawHeaders", None)
    if isinstance(table, dict):
        for name, value in pairs:
            table[name] = [value]
    else:  # pragma: no cover - another Twisted's Headers
        for name, value in pairs:
            headers.setRawHeaders(name, [value])


def _drive(coroutine, result=None, error: BaseException | None = None) -> None:
    """Run a request's coroutine: to its end at once when nothing it awaits is pending.

    What :func:`defer.ensureDeferred` does, without its Deferred and
    bookkeeping per request: most answers (a cached token, a cached server)
    never wait, and the coroutine ends within this call. When it awaits a
    Deferred that has not fired, it carries on from that Deferred's
    callback with its result, or its failure raised where it was awaited
    (as Twisted's own driver does). The router's coroutines answer every
    error themselves; anything escaping is logged.
    """
    try:
        if error is not None:
            waiting = coroutine.throw(error)
        elif isinstance(result, Failure):
            waiting = result.throwExceptionIntoGenerator(coroutine)
        else:
            waiting = coroutine.send(result)
    except StopIteration:
        return None
    except BaseException:  # noqa: BLE001 - nothing else would see it
        log.failure("unhandled error rendering a response")
        return None
    if not isinstance(waiting, defer.Deferred):  # only Deferreds are awaited here: fail where it happened
        return _drive(coroutine, error=TypeError(f"a request handler awaited {waiting!r}, not a Deferred"))
    waiting.addBoth(lambda outcome: _drive(coroutine, outcome))  # returns None: the failure is taken
    return None


def encode_json(value) -> bytes:
    """Compact JSON bytes of ``value``; what is not JSON (datetimes, ...) is written as its str()."""
    if orjson is not None:
        try:
            return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME)
        except TypeError:
            pass  # e.g. an int beyond 64 bits: the standard library copes
    return json.dumps(value, separators=(",", ":"), default=str).encode("utf-8")


def query_params(raw: bytes) -> dict[str, list[str]]:
    return {k: v for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
