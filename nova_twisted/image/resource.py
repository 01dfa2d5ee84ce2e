"""The built-in Glance v2 image API (``:9292``): JSON routes on the shared router, data streamed both ways.

Uploads (``PUT /v2/images/{id}/file``) never sit in memory: served by a
Site whose request factory is :class:`StreamingUploadRequest` (see
:func:`build_image_site`), the body goes to the image file chunk by chunk
as it arrives, with TCP backpressure while the disk catches up. Under a
plain Site, Twisted spools the body to a temporary file first and the
handler copies it from there, which is slower but just as frugal with
memory. Downloads (``GET .../file``, with ``Range``) are read from disk on
a thread pool by a push producer that pauses while the client is slow.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

from twisted.logger import Logger
from twisted.web import http, server

from nova_twisted import exception
from nova_twisted.api.http import HANDLED, ApiRequest, JSONRouter, Response, base_url
from nova_twisted.image import schemas
from nova_twisted.image.model import CORE_VIEW, READ_ONLY, RESERVED, parse_sort
from nova_twisted.image.store import ImageStore
from nova_twisted.image.streams import FileProducer
from nova_twisted.image.uploads import StreamingUploadRequest, UnsupportedMediaType, UploadSink, check_octet_stream

log = Logger(namespace="nova.image.api")

PATCH_TYPES = ("application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch")
VERSIONS = [f"v2.{minor}" for minor in range(9, -1, -1)]
_UPLOAD_PATH = re.compile(r"^/v2/images/(?P<image_id>[^/?]+)/file/?(\?.*)?$")


def glance_error_body(exc: exception.NovaError) -> dict:
    """Glance's (webob's) JSON error: ``{"message", "code": "404 Not Found", "title"}``."""
    code = exc.code if isinstance(exc.code, int) else 500
    title = http.RESPONSES.get(code, b"Error").decode("ascii")
    message = exc.message if getattr(exc, "safe", True) or code < 500 else "The server has an internal error."
    return {"message": message, "code": f"{code} {title}", "title": title}


def _error_as_text(req: ApiRequest, response: Response) -> None:
    """Answer errors as webob does: JSON when asked for, else HTML for browsers or plain text."""
    if response.status < 400 or not isinstance(response.body, dict) or "title" not in response.body:
        return
    accept = (req.header("accept") or "").lower()
    if "application/json" in accept:
        return
    body = response.body
    if "html" in accept or "*/*" in accept:
        text = (
            f"<html>\n <head>\n  <title>{body['code']}</title>\n </head>\n <body>\n  <h1>{body['code']}</h1>\n"
            f"  {_html_escape(body['message'])}<br /><br />\n\n\n\n </body>\n</html>"
        )
        response.content_type = "text/html; charset=UTF-8"
    else:
        text = f"{body['code']}\n\n{body['message']}\n\n   "
        response.content_type = "text/plain; charset=UTF-8"
    response.body = text.encode("utf-8")


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _RangeNotSatisfiable(exception.NovaError):
    code = 416
    msg_fmt = "Requested range not satisfiable"


class ImageRouter(JSONRouter):
    """The JSON router of the image API, able to open upload sinks for :class:`StreamingUploadRequest`."""

    def __init__(self, api: "ImageAPI", **kwargs):
        super().__init__(**kwargs)
        self.api = api

    def open_upload_sink(self, request, path: bytes, length: int | None) -> UploadSink | None:
        """An UploadSink when ``path`` is an image's file, else None."""
        match = _UPLOAD_PATH.match(path.decode("utf-8", "replace"))
        if match is None:
            return None
        return UploadSink(self.api, request, match.group("image_id"), length)

    def close(self) -> None:
        """Stop the store's file thread pool (the reactor's shutdown does it too)."""
        self.api.store.close()


class ImageAPI:
    """The handlers of the image API, on an :class:`ImageStore`."""

    def __init__(self, store: ImageStore, authenticator, limit_default: int = 25, limit_max: int = 1000):
        self.store = store
        self.authenticate = authenticator
        self.limit_default = limit_default
        self.limit_max = limit_max
        self.router = ImageRouter(self, error_body=glance_error_body, authenticate=authenticator, after=_error_as_text)
        add = self.router.add
        add("GET", "/", self.versions_multiple, auth=False)
        add("GET", "/versions", self.versions, auth=False)
        add("GET", "/v2", self.versions_multiple, auth=False)
        add("GET", "/v2/schemas/{name}", self.schema)
        add("GET", "/v2/images", self.index)
        add("POST", "/v2/images", self.create)
        add("GET", "/v2/images/{image_id}", self.show)
        add("PATCH", "/v2/images/{image_id}", self.patch)
        add("DELETE", "/v2/images/{image_id}", self.delete)
        add("PUT", "/v2/images/{image_id}/file", self.upload)
        add("GET", "/v2/images/{image_id}/file", self.download)
        add("PUT", "/v2/images/{image_id}/tags/{tag}", self.add_tag)
        add("DELETE", "/v2/images/{image_id}/tags/{tag}", self.remove_tag)
        add("GET", "/v2/images/{image_id}/members", self.list_members)
        add("POST", "/v2/images/{image_id}/members", self.add_member)
        add("GET", "/v2/images/{image_id}/members/{member_id}", self.show_member)
        add("PUT", "/v2/images/{image_id}/members/{member_id}", self.update_member)
        add("DELETE", "/v2/images/{image_id}/members/{member_id}", self.delete_member)

    # -- versions and schemas ----------------------------------------------------
    def _version_list(self, req: ApiRequest) -> dict:
        href = f"{base_url(req.raw)}/v2/"
        return {
            "versions": [
                {
                    "id": version,
                    "status": "CURRENT" if i == 0 else "SUPPORTED",
                    "links": [{"rel": "self", "href": href}],
                }
                for i, version in enumerate(VERSIONS)
            ]
        }

    async def versions_multiple(self, req: ApiRequest) -> Response:
        return Response(300, self._version_list(req))

    async def versions(self, req: ApiRequest) -> Response:
        return Response(200, self._version_list(req))

    async def schema(self, req: ApiRequest) -> Response:
        body = schemas.get(req.params["name"])
        if body is None:
            raise exception.NotFound("The resource could not be found.")
        return Response(200, body)

    # -- images --------------------------------------------------------------------
    async def index(self, req: ApiRequest) -> Response:
        try:
            limit = int(req.arg("limit", str(self.limit_default)))
        except ValueError:
            raise exception.InvalidRequest(reason="limit param must be an integer") from None
        if limit < 0:
            raise exception.InvalidRequest(reason="limit param must be positive")
        limit = min(limit, self.limit_max)
        marker = req.arg("marker")
        if "sort" in req.query:
            sort = parse_sort(req.args("sort_key"), req.args("sort_dir"), sort=req.arg("sort"))
        else:
            sort = parse_sort(req.args("sort_key"), req.args("sort_dir"))
        reserved = {"limit", "marker", "sort", "sort_key", "sort_dir"}
        filters = {k: (v if k == "tag" else v[-1]) for k, v in req.query.items() if k not in reserved}
        images = await self.store.list_sorted(req.context, filters, limit, marker, sort)
        params = [(k, v) for k, v in parse_qsl(req.raw.uri.partition(b"?")[2].decode(), keep_blank_values=True)]
        params = [(k, v) for k, v in params if k != "marker"]
        body = {"images": images, "first": "/v2/images", "schema": "/v2/schemas/images"}
        if params:
            body["first"] = f"/v2/images?{urlencode(params)}"
        if images and len(images) == limit:
            body["next"] = f"/v2/images?{urlencode([*params, ('marker', images[-1]['id'])])}"
        return Response(200, body)

    async def create(self, req: ApiRequest) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise exception.InvalidRequest(reason="The request body must be a JSON object.")
        image = await self.store.create(req.context, body)
        return Response(201, image, headers={"Location": f"{base_url(req.raw)}/v2/images/{image['id']}"})

    async def show(self, req: ApiRequest) -> dict:
        return await self.store.show(req.context, req.params["image_id"])

    async def patch(self, req: ApiRequest) -> dict:
        content_type = (req.header("content-type") or "").split(";")[0].strip().lower()
        if content_type not in PATCH_TYPES:
            raise UnsupportedMediaType(
                reason=f"Unsupported Content-Type {content_type or '(none)'}; use {PATCH_TYPES[0]}."
            )
        ops = req.json()
        if not isinstance(ops, list):
            raise exception.InvalidRequest(reason="Request body must be a JSON array of operation objects.")
        image_id = req.params["image_id"]
        image = await self.store.show(req.context, image_id)
        changes, remove, tags = changes_from_patch(image, ops)
        if changes or remove:
            image = await self.store.update(req.context, image_id, changes, remove)
        if tags is not None:
            image = await self.store.set_tags(req.context, image_id, tags)
        if not (changes or remove or tags is not None):
            image = await self.store.show(req.context, image_id)
        return image

    async def delete(self, req: ApiRequest) -> Response:
        try:
            await self.store.delete(req.context, req.params["image_id"])
        except exception.Conflict as exc:
            # Glance answers 403 for a protected image.
            raise exception.Forbidden(exc.message) from None
        return Response(204)

    # -- data ------------------------------------------------------------------------
    async def upload(self, req: ApiRequest) -> Response:
        sink = getattr(req.raw, "upload_sink", None)
        if sink is not None:
            await sink.finish()
            return Response(204)
        check_octet_stream(req.header("content-type"))
        content = req.raw.content
        length = req.header("content-length")
        upload = await self.store.begin_upload(req.context, req.params["image_id"], int(length) if length else None)
        try:
            content.seek(0)
            await upload.writer.copy_from(content)
        except BaseException:
            await upload.abort()
            raise
        await upload.commit()
        return Response(204)

    async def download(self, req: ApiRequest):
        image_id = req.params["image_id"]
        image = await self.store.show(req.context, image_id)
        if image["status"] != "active":
            return Response(204)
        image, path = await self.store.open_data(req.context, image_id)
        size = image["size"] or 0
        raw = req.raw
        offset, length, status = 0, size, 200
        range_header = req.header("range")
        if range_header:
            parsed = parse_range(range_header, size)
            if parsed is None:
                return Response(
                    416, glance_error_body(_RangeNotSatisfiable()), headers={"Content-Range": f"bytes */{size}"}
                )
            offset, length = parsed
            status = 206
        raw.setResponseCode(status)
        for name in self.router.request_id_headers:
            raw.setHeader(name, req.request_id)
        raw.setHeader("content-type", "application/octet-stream")
        raw.setHeader("content-length", str(length))
        if status == 206:
            raw.setHeader("content-range", f"bytes {offset}-{offset + length - 1}/{size}")
        elif image.get("checksum"):
            raw.setHeader("content-md5", image["checksum"])
        if req.method == "HEAD" or length == 0:
            raw.finish()
            return HANDLED
        producer = FileProducer(self.store.pool, path, offset, length, chunk=self.store.chunk_size)
        raw.registerProducer(producer, True)
        finished = raw.notifyFinish()
        finished.addErrback(lambda _: producer.stopProducing())

        def _done(_):
            raw.unregisterProducer()
            raw.finish()

        def _failed(failure):
            log.failure("reading image {image_id} failed", failure, image_id=image_id)
            raw.unregisterProducer()
            raw.loseConnection()

        producer.startProducing(raw).addCallbacks(_done, _failed)
        return HANDLED

    # -- tags and members ---------------------------------------------------------------
    async def add_tag(self, req: ApiRequest) -> Response:
        await self.store.add_tag(req.context, req.params["image_id"], req.params["tag"])
        return Response(204)

    async def remove_tag(self, req: ApiRequest) -> Response:
        await self.store.remove_tag(req.context, req.params["image_id"], req.params["tag"])
        return Response(204)

    async def list_members(self, req: ApiRequest) -> dict:
        members = await self.store.list_members(req.context, req.params["image_id"])
        return {"members": members, "schema": "/v2/schemas/members"}

    async def add_member(self, req: ApiRequest) -> dict:
        body = req.json()
        if not isinstance(body, dict) or "member" not in body:
            raise exception.InvalidRequest(reason="Member to be added not specified")
        return await self.store.add_member(req.context, req.params["image_id"], body["member"])

    async def show_member(self, req: ApiRequest) -> dict:
        return await self.store.show_member(req.context, req.params["image_id"], req.params["member_id"])

    async def update_member(self, req: ApiRequest) -> dict:
        body = req.json()
        if not isinstance(body, dict) or "status" not in body:
            raise exception.InvalidRequest(reason="Status not specified")
        return await self.store.update_member(
            req.context, req.params["image_id"], req.params["member_id"], body["status"]
        )

    async def delete_member(self, req: ApiRequest) -> Response:
        await self.store.delete_member(req.context, req.params["image_id"], req.params["member_id"])
        return Response(204)


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(offset, length) of a single ``bytes=`` range within ``size``, or None if unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                return None
            start, end = max(size - suffix, 0), size - 1
        else:
            start = int(first)
            end = int(last) if last else size - 1
    except ValueError:
        return None
    end = min(end, size - 1)
    if start < 0 or start >= size or end < start:
        return None
    return start, end - start + 1


def _pointer(path) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise exception.InvalidRequest(reason=f"Invalid JSON pointer for this resource: '{path}'")
    parts = path[1:].split("/")
    if len(parts) != 1 or not parts[0]:
        raise exception.Forbidden(f"Path {path} may not be changed.")
    return parts[0].replace("~1", "/").replace("~0", "~")


def changes_from_patch(image: dict, ops: list) -> tuple[dict, list, list | None]:
    """Apply a Glance JSON patch to ``image``; return (changes, removed properties, new tags or None)."""
    current = dict(image)
    changes: dict = {}
    removed: list[str] = []
    tags = None
    for change in ops:
        if not isinstance(change, dict):
            raise exception.InvalidRequest(reason="Operation objects must be JSON objects.")
        if "op" in change:
            op, path = change["op"], change.get("path")
        else:  # the v2.0 draft: {"replace": "/name", "value": ...}
            found = [key for key in ("add", "replace", "remove") if key in change]
            if len(found) != 1:
                raise exception.InvalidRequest(reason="Operation objects must contain exactly one operation.")
            op, path = found[0], change[found[0]]
        if op not in ("add", "replace", "remove"):
            raise exception.InvalidRequest(reason=f"Invalid operation: `{op}`")
        key = _pointer(path)
        if key == "locations":
            raise exception.Forbidden("It's not allowed to update locations if locations are invisible.")
        if key in READ_ONLY:
            raise exception.Forbidden(f"Attribute '{key}' is read-only.")
        if key in RESERVED:
            raise exception.Forbidden(f"Attribute '{key}' is reserved.")
        is_property = key not in CORE_VIEW and key != "tags"
        if op == "remove":
            if not is_property:
                raise exception.Forbidden(f"Property {key} may not be removed.")
            if key not in current:
                raise exception.Conflict(f"Property {key} does not exist.")
            current.pop(key)
            changes.pop(key, None)
            removed.append(key)
            continue
        if "value" not in change:
            raise exception.InvalidRequest(reason="Operation objects must contain a 'value' member.")
        value = change["value"]
        if op == "replace" and is_property and key not in current:
            raise exception.Conflict(f"Property {key} does not exist.")
        if key == "tags":
            tags = value
            continue
        current[key] = value
        if key in removed:
            removed.remove(key)
        if key == "owner" and value == image.get("owner"):
            continue
        changes[key] = value
    # Unchanged core values are not changes (a client may send the whole image back).
    for key in list(changes):
        if key in CORE_VIEW and changes[key] == image.get(key) and key != "owner":
            changes.pop(key)
    return changes, removed, tags


def build_image_resource(conf, database, reactor, authenticator):
    """The image API as a twisted.web Resource, to be the root of the :9292 site.

    Serve it with ``Site(resource, requestFactory=StreamingUploadRequest)``
    (:func:`build_image_site` does) so that uploads stream to disk as they
    arrive; under a plain Site they are spooled to a temporary file first.
    """
    store = ImageStore.from_config(conf, database, reactor)
    api = ImageAPI(
        store, authenticator, limit_default=conf.image.limit_param_default, limit_max=conf.image.api_limit_max
    )
    return api.router


def build_image_site(conf, database, reactor, authenticator) -> server.Site:
    """The :9292 site: the image API with streaming uploads."""
    return server.Site(
        build_image_resource(conf, database, reactor, authenticator), requestFactory=StreamingUploadRequest
    )
