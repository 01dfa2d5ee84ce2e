"""Uploads that stream: the request body goes to the image file as it arrives, never into memory.

Twisted Web normally reads a whole request body (into memory or a
temporary file) before any resource sees the request. A Site whose
request factory is :class:`StreamingUploadRequest` instead asks its root
resource for an :class:`UploadSink` as soon as the headers of ``PUT
/v2/images/{id}/file`` are in; the sink authenticates the caller, moves
the image to saving and writes each chunk through a HashingWriter, pausing
the connection while the disk is behind.
"""

from __future__ import annotations

import io

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.web import server

from nova_twisted import exception
from nova_twisted.context import generate_request_id
from nova_twisted.image.store import ImageUpload

log = Logger(namespace="nova.image.api")

#: Bytes of an upload kept in memory while the caller is being authenticated.
_EARLY_BUFFER = 4 * 1024 * 1024


class UnsupportedMediaType(exception.Invalid):
    """415: the body is not of a type this call takes."""

    code = 415
    msg_fmt = "%(reason)s"


class _HeadersOnly:
    """What the authenticator needs of a request whose body has not arrived yet."""

    def __init__(self, request):
        self._request = request
        self.raw = self
        self.request_id = generate_request_id()
        self.context = None

    def header(self, name: str, default: str | None = None) -> str | None:
        value = self._request.getHeader(name)
        return value if value is not None else default

    def getClientAddress(self):  # noqa: N802 - the name the authenticator calls
        return self._request.channel.transport.getPeer()


class UploadSink:
    """Receives an upload's body as it arrives and writes it into the image.

    Started when the request's headers are in: it authenticates the caller,
    moves the image to saving and opens the file while the first chunks are
    held (at most a few MiB, then the connection is paused). Any error is
    kept and raised by :meth:`finish`; the rest of the body is then
    discarded. A connection lost mid-body kills the image.
    """

    def __init__(self, api, request, image_id: str, length: int | None):
        # ``api`` is the ImageAPI: its ``authenticate`` and ``store`` are used.
        self.api = api
        self.request = request
        # What HTTPChannel itself pauses (the TCP or TLS transport); without one, no backpressure.
        self.producer = IPushProducer(request.channel.transport, None)
        self.upload: ImageUpload | None = None
        self.error: BaseException | None = None
        self.lost = False
        self.body_complete = False
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._pausers: set[str] = set()
        self._started = defer.ensureDeferred(self._start(image_id, length))

    def _pause(self, why: str) -> None:
        if not self._pausers and self.producer is not None:
            self.producer.pauseProducing()
        self._pausers.add(why)

    def _resume(self, why: str) -> None:
        if why in self._pausers:
            self._pausers.discard(why)
            if not self._pausers and not self.lost and self.producer is not None:
                self.producer.resumeProducing()

    async def _start(self, image_id: str, length: int | None) -> None:
        try:
            headers = _HeadersOnly(self.request)
            await self.api.authenticate(headers)
            check_octet_stream(headers.header("content-type"))
            upload = await self.api.store.begin_upload(headers.context, image_id, length)
        except Exception as exc:  # noqa: BLE001 - kept and raised from finish()
            self.error = exc
            self._held = []
            self._resume("start")
            return
        self.upload = upload
        writer = upload.writer
        writer.pause = lambda: self._pause("disk")
        writer.resume = lambda: self._resume("disk")
        held, self._held = self._held, []
        for chunk in held:
            writer.write(chunk)
        self._resume("start")
        if self.lost and not self.body_complete:
            await upload.abort()

    def data_received(self, data: bytes) -> None:
        """A chunk of the body (reactor thread)."""
        if self.error is not None:
            return
        if self.upload is None:
            self._held.append(data)
            self._held_bytes += len(data)
            if self._held_bytes > _EARLY_BUFFER:
                self._pause("start")
            return
        self.upload.writer.write(data)

    def connection_lost(self) -> None:
        """The client went away: a partial upload kills the image (a complete one is still committed)."""
        if self.lost:
            return
        self.lost = True
        if self.upload is not None and not self.upload.finished and not self.body_complete:
            d = defer.ensureDeferred(self.upload.abort())
            d.addErrback(lambda f: log.failure("aborting an upload failed", f))

    async def finish(self) -> dict:
        """Once the whole body is in: commit the image; return it or raise the kept error."""
        self.body_complete = True
        await self._started
        if self.error is not None:
            raise self.error
        return await self.upload.commit()


def check_octet_stream(content_type: str | None) -> None:
    """UnsupportedMediaType unless the body is application/octet-stream (or says nothing)."""
    if content_type and content_type.split(";")[0].strip().lower() != "application/octet-stream":
        raise UnsupportedMediaType(reason=f"Content type {content_type} is not supported for image data.")


class StreamingUploadRequest(server.Request):
    """A Twisted Web request that hands an image upload's body to an :class:`UploadSink` as it arrives.

    The site's root resource decides through ``open_upload_sink(request,
    path, length)``; any other request behaves exactly as a plain
    ``server.Request``.
    """

    upload_sink: UploadSink | None = None

    def gotLength(self, length):  # noqa: N802 - Twisted's name
        channel = self.channel
        opener = getattr(getattr(getattr(channel, "site", None), "resource", None), "open_upload_sink", None)
        # The request line is only on the channel until the body is in.
        method, path = getattr(channel, "_command", None), getattr(channel, "_path", None)
        if opener is not None and method == b"PUT" and path:
            self.upload_sink = opener(self, path, length)
        if self.upload_sink is None:
            super().gotLength(length)
        else:
            self.content = io.BytesIO()

    def handleContentChunk(self, data):  # noqa: N802 - Twisted's name
        if self.upload_sink is not None:
            self.upload_sink.data_received(data)
        else:
            super().handleContentChunk(data)

    def connectionLost(self, reason):  # noqa: N802 - Twisted's name
        if self.upload_sink is not None:
            self.upload_sink.connection_lost()
        super().connectionLost(reason)
