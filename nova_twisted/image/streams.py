"""Streaming image data to and from disk without blocking the reactor or holding it in memory.

:class:`HashingWriter` takes chunks on the reactor thread, writes and
hashes them (md5 and sha512) on a thread pool, one batch at a time, and
asks its source to pause while more than ``high_water`` bytes wait.
:class:`FileProducer` reads a file (or a byte range of it) on the thread
pool and writes it to a consumer, honouring pause/resume; it is both an
``IPushProducer`` for a Twisted Web response and an ``IBodyProducer`` for a
client request.
"""

from __future__ import annotations

import hashlib
import os

from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from zope.interface import implementer

DEFAULT_CHUNK = 1024 * 1024


class ImagePool:
    """A named thread pool for image file work, started on first use and stopped at shutdown."""

    def __init__(self, reactor, name: str = "nova-image", maxthreads: int = 4):
        self.reactor = reactor
        self.pool = ThreadPool(minthreads=0, maxthreads=maxthreads, name=name)
        self._trigger = None

    def run(self, fn, *args, **kwargs):
        """Run ``fn(*args, **kwargs)`` on the pool; Deferred of its result."""
        if not self.pool.started:
            self.pool.start()
            self._trigger = self.reactor.addSystemEventTrigger("during", "shutdown", self.stop)
        return deferToThreadPool(self.reactor, self.pool, fn, *args, **kwargs)

    def stop(self) -> None:
        """Stop the pool (waits for the work in flight)."""
        if self.pool.started:
            self.pool.stop()
        if self._trigger is not None:
            try:
                self.reactor.removeSystemEventTrigger(self._trigger)
            except (ValueError, KeyError):
                pass
            self._trigger = None


class Digest:
    """What was written or read: size, md5 hex and sha512 hex."""

    def __init__(self):
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha512 = hashlib.sha512()

    def update(self, data: bytes) -> None:
        self.size += len(data)
        self._md5.update(data)
        self._sha512.update(data)

    @property
    def checksum(self) -> str:
        return self._md5.hexdigest()

    @property
    def os_hash_value(self) -> str:
        return self._sha512.hexdigest()

    def as_dict(self) -> dict:
        """``{"size", "checksum", "os_hash_algo", "os_hash_value"}``."""
        return {
            "size": self.size,
            "checksum": self.checksum,
            "os_hash_algo": "sha512",
            "os_hash_value": self.os_hash_value,
        }


class HashingWriter:
    """Writes a new file from chunks given on the reactor thread; hashing happens on the pool.

    ``pause``/``resume`` are called (on the reactor thread) when the bytes
    waiting to be written cross ``high_water`` / fall under ``low_water``:
    wire them to the source's transport for backpressure. ``max_size``
    bytes at most are accepted (OverLimit-like ``ValueError`` after).
    """

    def __init__(
        self,
        pool: ImagePool,
        path: str,
        high_water: int = 8 * DEFAULT_CHUNK,
        low_water: int = 2 * DEFAULT_CHUNK,
        max_size: int | None = None,
    ):
        self.pool = pool
        self.path = path
        self.high_water = high_water
        self.low_water = low_water
        self.max_size = max_size
        self.digest = Digest()
        self.pause = lambda: None
        self.resume = lambda: None
        self._file = None
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._received = 0
        self._busy = False
        self._paused = False
        self._error: BaseException | None = None
        self._drained: list[defer.Deferred] = []
        self._closed = False

    def open(self):
        """Create the file (and its directory); Deferred."""

        def _open():
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()/abort()

        return self.pool.run(_open)

    @property
    def failed(self) -> BaseException | None:
        """The error that stopped writing, if any."""
        return self._error

    def write(self, data: bytes) -> None:
        """Queue ``data`` (reactor thread); dropped silently once the writer failed."""
        if self._error is not None or self._closed or not data:
            return
        self._received += len(data)
        if self.max_size is not None and self._received > self.max_size:
            self._fail(SizeLimitExceeded(self.max_size))
            return
        self._pending.append(data)
        self._pending_bytes += len(data)
        if not self._busy:
            self._flush()
        if self._pending_bytes > self.high_water and not self._paused:
            self._paused = True
            self.pause()

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self._busy = True
        self.pool.run(self._write_batch, batch).addCallbacks(self._flushed, self._write_failed)

    def _write_batch(self, batch: list[bytes]) -> int:
        written = 0
        for chunk in batch:
            self._file.write(chunk)
            self.digest.update(chunk)
            written += len(chunk)
        return written

    def _flushed(self, written: int) -> None:
        self._busy = False
        self._pending_bytes -= written
        if self._error is not None:
            return
        if self._pending:
            self._flush()
        else:
            waiters, self._drained = self._drained, []
            for d in waiters:
                d.callback(None)
        if self._paused and self._pending_bytes <= self.low_water:
            self._paused = False
            self.resume()

    def _write_failed(self, failure) -> None:
        self._busy = False
        self._fail(failure.value)

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._pending = []
        self._pending_bytes = 0
        waiters, self._drained = self._drained, []
        for d in waiters:
            d.errback(error)
        if self._paused:
            # A failed writer discards what still comes: let the source finish.
            self._paused = False
            self.resume()

    def drained(self):
        """Deferred firing once every queued chunk is on disk (failing with the write error)."""
        if self._error is not None:
            return defer.fail(self._error)
        if not self._busy and not self._pending:
            return defer.succeed(None)
        d = defer.Deferred()
        self._drained.append(d)
        return d

    def copy_from(self, source) -> defer.Deferred:
        """Copy a whole file (path or binary file object) in, on the pool; Deferred."""

        def _copy():
            handle = open(source, "rb") if isinstance(source, (str, os.PathLike)) else source  # noqa: SIM115
            try:
                while True:
                    chunk = handle.read(DEFAULT_CHUNK)
                    if not chunk:
                        return
                    if self.max_size is not None and self.digest.size + len(chunk) > self.max_size:
                        raise SizeLimitExceeded(self.max_size)
                    self._file.write(chunk)
                    self.digest.update(chunk)
            finally:
                if handle is not source:
                    handle.close()

        d = self.pool.run(_copy)
        d.addErrback(lambda f: (self._fail(f.value), f)[1])
        return d

    async def close(self) -> Digest:
        """Wait for the queued data, then flush, fsync and close the file; return the digest."""
        await self.drained()
        self._closed = True

        def _close():
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

        await self.pool.run(_close)
        return self.digest

    async def abort(self) -> None:
        """Stop, close and remove the file (quietly; the first error is kept)."""
        if self._error is None:
            self._error = WriterAborted()
        self._closed = True
        self._pending = []
        while self._busy:
            d = defer.Deferred()
            self._drained.append(d)
            try:
                await d
            except Exception:  # noqa: BLE001 - the writer is being discarded anyway
                break

        def _remove():
            if self._file is not None and not self._file.closed:
                self._file.close()
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

        await self.pool.run(_remove)


class SizeLimitExceeded(ValueError):
    """More data came than the image may hold."""

    def __init__(self, limit: int):
        super().__init__(f"Image exceeds the storage limit of {limit} bytes")
        self.limit = limit


class WriterAborted(Exception):
    """The writer was aborted before it finished."""


@implementer(IBodyProducer)
class FileProducer:
    """Streams ``length`` bytes of a file from ``offset`` into a consumer, read on the pool.

    An IBodyProducer (``length``, ``startProducing`` firing when all is
    written) and an IPushProducer (``pauseProducing``/``resumeProducing``/
    ``stopProducing``). ``digest`` holds the size and hashes of what was sent.
    """

    def __init__(self, pool: ImagePool, path: str, offset: int = 0, length: int | None = None, chunk=DEFAULT_CHUNK):
        self.pool = pool
        self.path = path
        self.offset = offset
        self.length = UNKNOWN_LENGTH if length is None else length
        self.chunk = chunk
        self.digest = Digest()
        self._consumer = None
        self._handle = None
        self._remaining = None if length is None else length
        self._paused = False
        self._reading = False
        self._stopped = False
        self._done: defer.Deferred | None = None

    @classmethod
    async def for_file(cls, pool: ImagePool, path: str, **kwargs) -> "FileProducer":
        """A producer for the whole file at ``path`` (its length known up front)."""
        size = await pool.run(os.path.getsize, path)
        return cls(pool, path, length=size, **kwargs)

    def startProducing(self, consumer):
        """Start writing into ``consumer``; Deferred firing when the last byte is written."""
        self._consumer = consumer
        self._done = defer.Deferred()

        def _open():
            handle = open(self.path, "rb")  # noqa: SIM115 - closed in _finish
            handle.seek(self.offset)
            return handle

        def _opened(handle):
            self._handle = handle
            self._read_next()

        self.pool.run(_open).addCallbacks(_opened, self._finish_error)
        return self._done

    def _read_next(self) -> None:
        if self._stopped or self._paused or self._reading:
            return
        size = self.chunk if self._remaining is None else min(self.chunk, self._remaining)
        if size == 0:
            self._finish()
            return
        self._reading = True
        self.pool.run(self._handle.read, size).addCallbacks(self._got, self._finish_error)

    def _got(self, data: bytes) -> None:
        self._reading = False
        if self._stopped:
            self._close()
            return
        if not data:
            if self._remaining:
                self._finish_error(OSError(f"{self.path} ended {self._remaining} bytes early"))
            else:
                self._finish()
            return
        if self._remaining is not None:
            self._remaining -= len(data)
        self.digest.update(data)
        self._consumer.write(data)
        self._read_next()

    def _close(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            self.pool.run(handle.close)

    def _finish(self) -> None:
        self._close()
        if self._done is not None and not self._done.called:
            self._done.callback(None)

    def _finish_error(self, failure) -> None:
        self._reading = False
        self._close()
        if self._done is not None and not self._done.called:
            self._done.errback(failure)

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        if self._handle is not None:
            self._read_next()

    def stopProducing(self) -> None:
        """Stop reading; the Deferred from startProducing then never fires (IBodyProducer's rule)."""
        self._stopped = True
        if not self._reading:
            self._close()
