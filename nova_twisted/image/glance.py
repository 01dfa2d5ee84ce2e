"""IImageService over HTTP: a client of any Glance v2 endpoint (ours on :9292 or a real Glance).

Requests carry the caller's token (``ctxt.auth_token``, which travels with
the context over RPC). A context without one uses a token of the service
user configured in ``[image]`` (fetched from the identity v3 endpoint and
kept until shortly before it expires); without either, NotAuthenticated.
Image data streams both ways through :mod:`nova_twisted.image.streams`:
uploads are read from disk on a thread pool as the connection drains, and
downloads are written and hashed on the pool with the connection paused
while the disk catches up, so neither holds an image in memory.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from twisted.internet import defer
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.web.client import Agent, HTTPConnectionPool, PartialDownloadError, ResponseDone, readBody
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from nova_twisted import exception
from nova_twisted.image.interfaces import IImageService
from nova_twisted.image.streams import FileProducer, HashingWriter, ImagePool

log = Logger(namespace="nova.image.glance")

PATCH_TYPE = "application/openstack-images-v2.1-json-patch"
#: Images asked for per page when the caller wants them all.
PAGE_SIZE = 200


@implementer(IBodyProducer)
class _BytesProducer:
    """A small request body held in memory (JSON only)."""

    def __init__(self, data: bytes):
        self.data = data
        self.length = len(data)

    def startProducing(self, consumer):  # noqa: N802 - Twisted's name
        consumer.write(self.data)
        return defer.succeed(None)

    def pauseProducing(self):  # noqa: N802
        pass

    def resumeProducing(self):  # noqa: N802
        pass

    def stopProducing(self):  # noqa: N802
        pass


class _BodyToWriter(Protocol):
    """Feeds a response body into a HashingWriter, pausing the connection while the writer is behind."""

    def __init__(self, writer: HashingWriter, done: defer.Deferred):
        self.writer = writer
        self.done = done

    def connectionMade(self):  # noqa: N802
        self.writer.pause = self.transport.pauseProducing
        self.writer.resume = self.transport.resumeProducing

    def dataReceived(self, data):  # noqa: N802
        self.writer.write(data)

    def connectionLost(self, reason):  # noqa: N802
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(None)
        else:
            self.done.errback(reason)


def _message(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:500]
    if isinstance(data, dict):
        for key in ("message", "title"):
            if isinstance(data.get(key), str):
                return data[key]
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
    return text[:500]


def _error(status: int, body: bytes, image_id: str | None) -> exception.NovaError:
    message = _message(body) or f"HTTP {status}"
    if status == 400 or status == 415:
        return exception.InvalidRequest(reason=message)
    if status == 401:
        return exception.NotAuthenticated()
    if status == 403:
        return exception.Forbidden(message)
    if status == 404:
        return exception.ImageNotFound(image_id=image_id) if image_id else exception.NotFound(message)
    if status == 409:
        return exception.Conflict(message)
    if status == 413:
        return exception.OverLimit(reason=message)
    return exception.NovaError(f"Image service error {status}: {message}")


@implementer(IImageService)
class GlanceClient:
    """IImageService on a Glance v2 endpoint (see the module docstring)."""

    def __init__(
        self,
        reactor,
        endpoint: str,
        timeout: float = 60,
        auth_url: str = "",
        username: str = "",
        password: str = "",
        project_name: str = "",
        user_domain_name: str = "Default",
        project_domain_name: str = "Default",
        chunk_size: int = 1024 * 1024,
        agent=None,
    ):
        self.reactor = reactor
        self.endpoint = endpoint.rstrip("/")
        if self.endpoint.endswith("/v2"):
            self.endpoint = self.endpoint[:-3]
        self.timeout = timeout
        self.auth_url = auth_url.rstrip("/")
        self.credentials = (username, password, project_name, user_domain_name, project_domain_name)
        self.chunk_size = chunk_size
        self.pool = ImagePool(reactor, "nova-image-client")
        self._connections = HTTPConnectionPool(reactor, persistent=True)
        self.agent = agent or Agent(reactor, connectTimeout=timeout, pool=self._connections)
        self._service_token: tuple[str, float] | None = None

    @classmethod
    def from_config(cls, conf, reactor) -> "GlanceClient":
        """The client as ``[image]`` configures it."""
        section = conf.image
        return cls(
            reactor,
            section.endpoint,
            timeout=section.timeout,
            auth_url=section.auth_url,
            username=section.username,
            password=section.password,
            project_name=section.project_name,
            user_domain_name=section.user_domain_name,
            project_domain_name=section.project_domain_name,
            chunk_size=section.chunk_size,
        )

    def close(self):
        """Close pooled connections and stop the file thread pool; Deferred."""
        self.pool.stop()
        return self._connections.closeCachedConnections()

    # -- plumbing --------------------------------------------------------------------
    async def _token(self, ctxt, refresh: bool = False) -> str:
        if getattr(ctxt, "auth_token", None):
            return ctxt.auth_token
        if not (self.auth_url and self.credentials[0]):
            raise exception.NotAuthenticated()
        cached = self._service_token
        if cached is not None and not refresh and cached[1] > self.reactor.seconds():
            return cached[0]
        username, password, project, user_domain, project_domain = self.credentials
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"name": username, "domain": {"name": user_domain}, "password": password}},
                },
                "scope": {"project": {"name": project, "domain": {"name": project_domain}}},
            }
        }
        response = await self._send("POST", f"{self.auth_url}/auth/tokens", {"Content-Type": "application/json"}, body)
        data = await self._read(response)
        if response.code != 201:
            raise exception.NotAuthenticated()
        token = response.headers.getRawHeaders(b"x-subject-token", [b""])[0].decode()
        expires = json.loads(data)["token"].get("expires_at")
        lifetime = 3600.0
        if expires:
            when = dt.datetime.fromisoformat(expires.replace("Z", "+00:00"))
            lifetime = when.timestamp() - dt.datetime.now(dt.UTC).timestamp()
        self._service_token = (token, self.reactor.seconds() + max(0.0, lifetime - 60))
        return token

    def _send(self, method: str, url: str, headers: dict, body=None, producer=None, timeout: bool = True):
        raw_headers = Headers({k.encode(): [v.encode()] for k, v in headers.items()})
        raw_headers.setRawHeaders(b"user-agent", [b"nova-twisted-image-client"])
        if body is not None:
            producer = _BytesProducer(json.dumps(body).encode() if not isinstance(body, bytes) else body)
        d = self.agent.request(method.encode(), url.encode(), raw_headers, producer)
        if timeout:
            d.addTimeout(self.timeout, self.reactor)
        return d

    async def _read(self, response) -> bytes:
        d = readBody(response)
        d.addTimeout(self.timeout, self.reactor)
        try:
            return await d
        except PartialDownloadError as exc:
            return exc.response or b""

    async def _call(
        self,
        ctxt,
        method: str,
        path: str,
        body=None,
        headers: dict | None = None,
        image_id: str | None = None,
        producer=None,
        stream: bool = False,
    ):
        """Send one request as the caller; return (response, body bytes) or (response, None) when streaming."""
        for attempt in (0, 1):
            token = await self._token(ctxt, refresh=attempt == 1)
            all_headers = {"X-Auth-Token": token, "Accept": "application/json"}
            if ctxt is not None and getattr(ctxt, "request_id", None):
                all_headers["X-OpenStack-Request-ID"] = ctxt.request_id
            all_headers.update(headers or {})
            if body is not None and "Content-Type" not in all_headers:
                all_headers["Content-Type"] = "application/json"
            try:
                response = await self._send(
                    method, self.endpoint + path, all_headers, body, producer, timeout=not stream and producer is None
                )
            except defer.TimeoutError:
                raise exception.NovaError(f"Image service at {self.endpoint} timed out") from None
            except (ConnectionError, OSError) as exc:
                raise exception.NovaError(f"Image service at {self.endpoint} unreachable: {exc}") from None
            if response.code == 401 and attempt == 0 and not getattr(ctxt, "auth_token", None) and producer is None:
                await self._read(response)
                continue
            if response.code >= 400:
                raise _error(response.code, await self._read(response), image_id)
            if stream:
                return response, None
            return response, await self._read(response)
        raise exception.NotAuthenticated()

    async def _json(self, ctxt, method, path, body=None, headers=None, image_id=None):
        _, data = await self._call(ctxt, method, path, body, headers, image_id)
        return json.loads(data) if data else None

    # -- IImageService ------------------------------------------------------------------
    def show(self, ctxt, image_id):
        """Deferred firing with the image; ImageNotFound if the endpoint says 404."""
        return defer.ensureDeferred(self._show(ctxt, image_id))

    async def _show(self, ctxt, image_id):
        return await self._json(ctxt, "GET", f"/v2/images/{quote(image_id, safe='')}", image_id=image_id)

    def list(self, ctxt, filters=None, limit=None, marker=None, sort_key="created_at", sort_dir="desc"):
        """Deferred firing with the images (all of them, following ``next`` links, unless ``limit``)."""
        return defer.ensureDeferred(self._list(ctxt, filters, limit, marker, sort_key, sort_dir))

    async def _list(self, ctxt, filters, limit, marker, sort_key, sort_dir):
        params: list[tuple[str, str]] = []
        for key, value in (filters or {}).items():
            if value is None:
                continue
            values = value if isinstance(value, (list, tuple)) else [value]
            for item in values:
                params.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
        for key in [sort_key] if isinstance(sort_key, str) else list(sort_key or []):
            params.append(("sort_key", key))
        for direction in [sort_dir] if isinstance(sort_dir, str) else list(sort_dir or []):
            params.append(("sort_dir", direction))
        images: list[dict] = []
        while True:
            page = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(images))
            query = [*params, ("limit", str(page))]
            if marker:
                query.append(("marker", marker))
            data = await self._json(ctxt, "GET", f"/v2/images?{urlencode(query)}")
            images.extend(data.get("images", []))
            next_link = data.get("next")
            if not next_link or (limit is not None and len(images) >= limit) or not data.get("images"):
                break
            marker = parse_qs(urlsplit(next_link).query).get("marker", [images[-1]["id"]])[-1]
        return images if limit is None else images[:limit]

    def create(self, ctxt, metadata):
        """Deferred firing with the new queued image (POST /v2/images)."""
        return defer.ensureDeferred(self._json(ctxt, "POST", "/v2/images", dict(metadata or {})))

    def update(self, ctxt, image_id, changes, remove=()):
        """Send a JSON patch; removing an absent property is a no-op. Deferred firing with the image."""
        return defer.ensureDeferred(self._update(ctxt, image_id, dict(changes or {}), list(remove or ())))

    async def _update(self, ctxt, image_id, changes, remove):
        current = await self._show(ctxt, image_id)
        ops = []
        for key, value in changes.items():
            ops.append({"op": "replace" if key in current else "add", "path": f"/{_escape(key)}", "value": value})
        for key in remove:
            if key in current:
                ops.append({"op": "remove", "path": f"/{_escape(key)}"})
        if not ops:
            return current
        return await self._json(
            ctxt, "PATCH", f"/v2/images/{quote(image_id, safe='')}", ops, {"Content-Type": PATCH_TYPE}, image_id
        )

    def upload(self, ctxt, image_id, path):
        """Stream the file at ``path`` to ``PUT .../file``; Deferred firing with the active image.

        Fails with the endpoint's error, or NovaError when the checksum the
        endpoint computed differs from the one computed while sending.
        """
        return defer.ensureDeferred(self._upload(ctxt, image_id, path))

    async def _upload(self, ctxt, image_id, path):
        producer = await FileProducer.for_file(self.pool, path, chunk=self.chunk_size)
        await self._call(
            ctxt,
            "PUT",
            f"/v2/images/{quote(image_id, safe='')}/file",
            headers={"Content-Type": "application/octet-stream"},
            image_id=image_id,
            producer=producer,
        )
        image = await self._show(ctxt, image_id)
        sent = producer.digest
        if image.get("checksum") and image["checksum"] != sent.checksum:
            raise exception.NovaError(
                f"Image {image_id} arrived corrupted: checksum {image['checksum']}, sent {sent.checksum}"
            )
        if image.get("size") is not None and image["size"] != sent.size:
            raise exception.NovaError(f"Image {image_id} arrived truncated: {image['size']} of {sent.size} bytes")
        return image

    def download(self, ctxt, image_id, path):
        """Stream the image's data into a new file at ``path``.

        Deferred firing with ``{"size", "checksum", "os_hash_algo",
        "os_hash_value"}``; Conflict if the image has no data; NovaError (and
        no file left behind) if the data does not match the endpoint's
        Content-MD5.
        """
        return defer.ensureDeferred(self._download(ctxt, image_id, path))

    async def _download(self, ctxt, image_id, path):
        response, _ = await self._call(
            ctxt, "GET", f"/v2/images/{quote(image_id, safe='')}/file", image_id=image_id, stream=True
        )
        if response.code == 204:
            await self._read(response)
            raise exception.Conflict(f"Image {image_id} has no data.")
        writer = HashingWriter(self.pool, path, high_water=8 * self.chunk_size, low_water=2 * self.chunk_size)
        await writer.open()
        done = defer.Deferred()
        response.deliverBody(_BodyToWriter(writer, done))
        try:
            await done
            digest = await writer.close()
        except BaseException as exc:
            await writer.abort()
            raise exception.NovaError(f"Downloading image {image_id} failed: {exc}") from exc
        expected = response.headers.getRawHeaders(b"content-md5", [b""])[0].decode()
        if expected and expected != digest.checksum:
            await self.pool.run(_unlink, path)
            raise exception.NovaError(f"Image {image_id} downloaded corrupted: checksum {digest.checksum}")
        return digest.as_dict()

    def delete(self, ctxt, image_id):
        """DELETE the image; Conflict if it is protected. Deferred."""
        return defer.ensureDeferred(self._delete(ctxt, image_id))

    async def _delete(self, ctxt, image_id):
        try:
            await self._call(ctxt, "DELETE", f"/v2/images/{quote(image_id, safe='')}", image_id=image_id)
        except exception.Forbidden:
            # Glance answers 403 both for a protected image and for someone else's.
            image = await self._show(ctxt, image_id)
            if image.get("protected"):
                raise exception.Conflict(f"Image {image_id} is protected and cannot be deleted.") from None
            raise


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def build_glance_client(conf, reactor) -> GlanceClient:
    """The Glance v2 client IImageService as ``[image]`` configures it (what compute uses)."""
    return GlanceClient.from_config(conf, reactor)
