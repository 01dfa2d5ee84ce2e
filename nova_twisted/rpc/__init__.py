"""RPC over the message bus: cast, call and fanout between services.

``RPCClient(transport, topic).call(ctxt, "method", **kwargs)`` reaches the
``method`` of the manager an :class:`RPCServer` serves on that topic. The
request context and an RPC API version travel with every message; errors of
ours come back as their own type, anything else as RemoteError.
"""

from __future__ import annotations

import functools
import inspect
import traceback

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from nova_twisted import exception
from nova_twisted.context import RequestContext

log = Logger(namespace="nova.rpc")

DEFAULT_TIMEOUT = 60

#: Log every message sent and handled (with its request context) at debug
#: level. Off by default: an event per message costs more than the message.
_log_messages = False


def set_message_logging(enabled: bool) -> None:
    """Turn per-message debug logging (both sides, with the request context) on or off.

    Daemons turn it on with ``--debug`` / ``[DEFAULT] debug``.
    """
    global _log_messages
    _log_messages = bool(enabled)


def _context_to_wire(ctxt) -> dict:
    if ctxt is None:
        return {}
    if type(ctxt) is RequestContext:
        # dataclasses.asdict deep-copies recursively; the fields are flat.
        # Fields left at None are left out: from_dict restores them.
        wire = {key: value for key, value in ctxt.__dict__.items() if value is not None}
        wire["roles"] = list(wire["roles"])
        return wire
    return ctxt.to_wire()


def transport_options(section) -> dict:
    """Return the keyword options of :func:`get_transport` from a ``[transport]`` section."""
    from nova_twisted.conf import transport as transport_conf

    names = [opt.name for opt in transport_conf.OPTS if opt.name not in ("url", "rpc_response_timeout")]
    return {name: getattr(section, name) for name in names if hasattr(section, name)}


def get_transport(urls, clock=None, **options):
    """Return the IMessageTransport for the configured URL(s) (not yet connected).

    ``urls`` is a URL, a list of URLs, or the whole ``[transport]`` section
    (``conf.transport``), whose other options then apply too.
    """
    if hasattr(urls, "url"):
        options = {**transport_options(urls), **options}
        urls = urls.url
    if isinstance(urls, str):
        urls = [urls]
    urls = list(urls)
    if not urls:
        raise exception.ConfigurationError(reason="[transport] url is empty")
    scheme = urls[0].split(":", 1)[0]
    if scheme == "memory":
        from nova_twisted.rpc.memory import MemoryTransport

        return MemoryTransport(urls[0], clock=clock, prefetch=options.get("prefetch") or 64)
    if scheme in ("amqp", "amqps", "rabbit"):
        try:
            from nova_twisted.rpc.amqp import AMQPTransport
        except ImportError:
            raise exception.ConfigurationError(reason="the AMQP transport is not built yet") from None
        return AMQPTransport(urls, clock=clock, **options)
    raise exception.ConfigurationError(reason=f"[transport] url: unknown scheme {scheme!r}")


@functools.lru_cache(maxsize=256)
def _version_tuple(version: str) -> tuple[int, int]:
    major, _, minor = str(version).partition(".")
    return int(major), int(minor or 0)


def serialize_error(exc: BaseException) -> dict:
    """Return what travels back to a caller for ``exc``."""
    kwargs = getattr(exc, "kwargs", {}) if isinstance(exc, exception.NovaError) else {}
    safe_kwargs = {}
    for key, value in kwargs.items():
        if isinstance(value, (str, int, float, bool, type(None), list, dict)):
            safe_kwargs[key] = value
        else:
            safe_kwargs[key] = str(value)
    return {
        "type": type(exc).__name__,
        "ours": isinstance(exc, exception.NovaError),
        "message": str(exc),
        "kwargs": safe_kwargs,
        "code": getattr(exc, "code", 500),
    }


def deserialize_error(data: dict) -> Exception:
    """Return the exception a caller raises for a serialized error."""
    cls = exception.by_name(data.get("type", "")) if data.get("ours") else None
    if cls is not None:
        try:
            if cls is exception.RemoteError:
                return exception.RemoteError(**data.get("kwargs", {}))
            err = cls(data.get("message"), **data.get("kwargs", {}))
            return err
        except TypeError:
            pass
    return exception.RemoteError(exc_type=data.get("type", "Exception"), value=data.get("message", ""))


class RPCClient:
    """The client side of one topic.

    ``server`` aims at one server's queue (``compute.<host>``); without it a
    cast or call goes to whichever server of the topic takes it first.
    """

    def __init__(
        self, transport, topic: str, server: str | None = None, version: str = "1.0", timeout: float | None = None
    ):
        self.transport = transport
        self.topic = topic
        self.server = server
        self.version = version
        self.timeout = timeout or DEFAULT_TIMEOUT

    def prepare(self, server=None, version=None, timeout=None) -> "RPCClient":
        """Return a copy aimed at another server, version or timeout."""
        return RPCClient(
            self.transport, self.topic, server or self.server, version or self.version, timeout or self.timeout
        )

    def _message(self, ctxt: RequestContext, method: str, kwargs: dict) -> dict:
        return {
            "method": method,
            "args": kwargs,
            "version": self.version,
            "context": _context_to_wire(ctxt),
        }

    def cast(self, ctxt, method: str, **kwargs) -> defer.Deferred:
        """Send and go on; the Deferred fires once the bus holds the message."""
        if _log_messages:
            log.debug(
                "cast {topic}.{method} to {server}",
                topic=self.topic,
                method=method,
                server=self.server or "any",
                ctxt=ctxt,
            )
        return self.transport.cast(self.topic, self.server, self._message(ctxt, method, kwargs))

    def fanout(self, ctxt, method: str, **kwargs) -> defer.Deferred:
        """Cast to every server of the topic."""
        if _log_messages:
            log.debug("fanout {topic}.{method}", topic=self.topic, method=method, ctxt=ctxt)
        return self.transport.fanout(self.topic, self._message(ctxt, method, kwargs))

    def call(self, ctxt, method: str, **kwargs) -> defer.Deferred:
        """Send and wait; fires with the method's result or fails with its error
        (our own type, RemoteError, or MessagingTimeout)."""
        if _log_messages:
            log.debug(
                "call {topic}.{method} on {server}",
                topic=self.topic,
                method=method,
                server=self.server or "any",
                ctxt=ctxt,
            )
        d = self.transport.call(self.topic, self.server, self._message(ctxt, method, kwargs), self.timeout)
        d.addCallback(self._unwrap)
        return d

    @staticmethod
    def _unwrap(reply: dict):
        if "failure" in reply:
            raise deserialize_error(reply["failure"])
        return reply.get("result")


class Manager:
    """Base of the server side of a topic: its public methods are RPC methods.

    Subclasses set ``RPC_API_VERSION`` (``major.minor``); a message asking
    for a newer minor or another major is refused with UnsupportedVersion.
    Methods take ``(ctxt, **kwargs)`` and may return a value, a Deferred or
    be ``async def``.
    """

    RPC_API_VERSION = "1.0"
    #: Public methods that are not reachable over RPC.
    NOT_RPC = frozenset({"init_host", "cleanup_host", "periodic_tasks"})

    def rpc_method(self, name: str):
        if name.startswith("_") or name in self.NOT_RPC or name in Manager.__dict__:
            return None
        fn = getattr(self, name, None)
        return fn if callable(fn) else None

    def periodic_tasks(self) -> list:
        """Return [(name, function, interval seconds)] to run periodically."""
        return []


def _wrap_result(result):
    return {"result": result}


def _nothing(_):
    return None


class RPCServer:
    """Serves a manager's methods on ``topic`` (and ``topic.server`` and the fanout)."""

    def __init__(self, transport, topic: str, server: str | None, manager: Manager):
        self.transport = transport
        self.topic = topic
        self.server = server
        self.manager = manager
        self.listener = None

    @defer.inlineCallbacks
    def start(self):
        self.listener = yield self.transport.listen(self.topic, self.server, self._handle)
        log.info("serving topic {topic} as {server}", topic=self.topic, server=self.server or "-")
        return self.listener

    def stop(self) -> defer.Deferred:
        """Stop taking messages; fires when the handlers in flight have finished."""
        if self.listener is None:
            return defer.succeed(None)
        listener, self.listener = self.listener, None
        return listener.stop()

    @property
    def in_flight(self) -> int:
        return self.listener.in_flight if self.listener is not None else 0

    def _handle(self, message: dict, reply_wanted: bool):
        """The transport's handler: returns the reply dict (or None), or a Deferred of it."""
        ctxt = RequestContext.from_dict(message.get("context") or {})
        method = message.get("method", "")
        try:
            result = self._dispatch(ctxt, method, message)
        except Exception:  # noqa: BLE001 - every error goes back to the caller
            reply = self._failed(Failure(), ctxt, method, reply_wanted)
            return reply if reply_wanted else None
        if isinstance(result, defer.Deferred):
            result.addCallbacks(_wrap_result, self._failed, errbackArgs=(ctxt, method, reply_wanted))
            if not reply_wanted:
                result.addCallback(_nothing)
            return result
        return {"result": result} if reply_wanted else None

    def _dispatch(self, ctxt, method: str, message: dict):
        version = str(message.get("version", "1.0"))
        try:
            want_major, want_minor = _version_tuple(version)
            have_major, have_minor = _version_tuple(self.manager.RPC_API_VERSION)
        except ValueError:
            raise exception.UnsupportedVersion(version=version, method=method) from None
        if want_major != have_major or want_minor > have_minor:
            raise exception.UnsupportedVersion(version=version, method=method)
        fn = self.manager.rpc_method(method)
        if fn is None:
            raise exception.NoSuchMethod(method=method)
        args = message.get("args") or {}
        if _log_messages:
            log.debug("handling {topic}.{method}", topic=self.topic, method=method, ctxt=ctxt)
        result = fn(ctxt, **args)
        if inspect.isawaitable(result):
            return defer.ensureDeferred(result)
        return result

    def _failed(self, failure, ctxt, method, reply_wanted):
        exc = failure.value
        expected = isinstance(exc, exception.NovaError) and exc.code < 500
        if expected:
            log.info("{topic}.{method} refused: {error}", topic=self.topic, method=method, error=exc, ctxt=ctxt)
        else:
            log.error(
                "{topic}.{method} failed: {error}\n{tb}",
                topic=self.topic,
                method=method,
                error=repr(exc),
                tb="".join(traceback.format_exception(failure.type, exc, failure.getTracebackObject())),
                ctxt=ctxt,
            )
        return {"failure": serialize_error(exc)}
