"""Shared by the image tests: a token validator double, contexts, and the image API on a real port."""

from __future__ import annotations

import datetime as dt
import functools
import os
import tempfile

from twisted.internet import defer, reactor
from twisted.web import server
from zope.interface import implementer

from nova_twisted import exception
from nova_twisted.api.auth import Authenticator, ITokenValidator
from nova_twisted.context import RequestContext
from nova_twisted.db import migration
from nova_twisted.db.api import Database
from nova_twisted.image.resource import ImageAPI, StreamingUploadRequest
from nova_twisted.image.store import ImageStore

#: token -> who it is (a stand-in for the identity service in image tests).
TOKENS = {
    "tok-alice": {"user_id": "alice", "project_id": "proj-a", "roles": ["member"]},
    "tok-bob": {"user_id": "bob", "project_id": "proj-b", "roles": ["member"]},
    "tok-admin": {"user_id": "admin", "project_id": "proj-admin", "roles": ["admin"]},
}


def context_for(token: str) -> RequestContext:
    """The RequestContext the API would build for ``token`` (carrying the token, as over RPC)."""
    info = TOKENS[token]
    return RequestContext(
        user_id=info["user_id"], project_id=info["project_id"], roles=list(info["roles"]), auth_token=token
    )


@implementer(ITokenValidator)
class StaticTokenValidator:
    """ITokenValidator double answering from :data:`TOKENS`."""

    def __init__(self, tokens=None):
        self.tokens = dict(TOKENS if tokens is None else tokens)

    def validate(self, token):
        info = self.tokens.get(token)
        if info is None:
            return defer.fail(exception.NotAuthenticated())
        expires = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=1)
        return defer.succeed(dict(info, user_name=info["user_id"], project_name=info["project_id"], expires_at=expires))


def async_test(fn):
    """Run an ``async def`` test method as a Deferred-returning trial test."""

    @functools.wraps(fn)
    def wrapper(self):
        return defer.ensureDeferred(fn(self))

    return wrapper


def sqlite_database(directory: str) -> Database:
    """A migrated SQLite database in ``directory``."""
    url = f"sqlite:///{directory}/nova.sqlite"
    migration.sync(url)
    return Database(url, reactor)


class ImageAPIServer:
    """The image API listening on 127.0.0.1 (a free port) over ``store``."""

    def __init__(self, store: ImageStore, streaming: bool = True):
        self.store = store
        self.api = ImageAPI(store, Authenticator(StaticTokenValidator(), reactor), limit_default=25, limit_max=1000)
        factory = StreamingUploadRequest if streaming else server.Request
        self.site = server.Site(self.api.router, requestFactory=factory)
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port.getHost().port}"

    def stop(self):
        return defer.maybeDeferred(self.port.stopListening)


def make_store(testcase, url: str | None = None, **kwargs) -> ImageStore:
    """An ImageStore on a fresh SQLite (or the given, already migrated) database, cleaned up after the test."""
    directory = tempfile.mkdtemp(prefix="nova-image-test-")
    if url is None:
        database = sqlite_database(directory)
    else:
        migration.sync(url)
        database = Database(url, reactor)
    store = ImageStore(database, reactor, os.path.join(directory, "images"), **kwargs)
    testcase.addCleanup(database.stopService)
    testcase.addCleanup(store.close)
    return store


def write_file(path: str, size: int, seed: int = 0) -> str:
    """Write ``size`` bytes of varied data at ``path``; return the path."""
    block = bytes((seed + i * 7) % 251 for i in range(65536))
    with open(path, "wb") as handle:
        remaining = size
        while remaining > 0:
            chunk = block[: min(remaining, len(block))]
            handle.write(chunk)
            remaining -= len(chunk)
    return path
