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


class Cloud:
    """Identity and image APIs on free loopback ports of the test reactor (see :func:`start_cloud`)."""

    tmp: str
    auth_url: str
    image_url: str
    project_id: str
    identity: object


async def start_cloud(testcase) -> Cloud:
    """Start the built-in identity (Keystone v3) and image APIs on one SQLite database.

    The identity catalog's image endpoint is the image API's port. Creates
    project ``demo`` with user ``demo`` (password ``secret-pw``, role
    member). Everything is stopped when the test ends.
    """
    import shutil

    from twisted.web import resource

    from nova_twisted import conf as config
    from nova_twisted.identity import build_identity_resource, build_validator
    from nova_twisted.identity.api import IdentityAPI
    from nova_twisted.image.resource import build_image_site

    cloud = Cloud()
    cloud.tmp = tempfile.mkdtemp(prefix="nova-image-cloud-")
    testcase.addCleanup(shutil.rmtree, cloud.tmp, True)
    database = sqlite_database(cloud.tmp)
    testcase.addCleanup(database.stopService)
    # Listen first (the catalog needs the ports), then put the real resources in place.
    identity_site = server.Site(resource.Resource())
    identity_port = reactor.listenTCP(0, identity_site, interface="127.0.0.1")
    testcase.addCleanup(identity_port.stopListening)
    image_holder = server.Site(resource.Resource())
    image_port = reactor.listenTCP(0, image_holder, interface="127.0.0.1")
    testcase.addCleanup(image_port.stopListening)
    cloud.auth_url = f"http://127.0.0.1:{identity_port.getHost().port}/v3"
    cloud.image_url = f"http://127.0.0.1:{image_port.getHost().port}"
    conf = config.defaults().with_overrides(
        {
            ("identity", "image_url"): cloud.image_url,
            ("identity", "identity_url"): cloud.auth_url,
            ("identity", "password_hash_rounds"): 4,
            ("image", "data_dir"): os.path.join(cloud.tmp, "images"),
        }
    )
    authenticator = Authenticator(build_validator(conf, database, reactor), reactor)
    identity_site.resource = build_identity_resource(conf, database, reactor, authenticator)
    image_site = build_image_site(conf, database, reactor, authenticator)
    image_holder.resource = image_site.resource
    image_holder.requestFactory = image_site.requestFactory
    testcase.addCleanup(image_site.resource.close)

    identity = IdentityAPI.from_config(conf, database, reactor)
    project = await identity.create_project("demo")
    user = await identity.create_user("demo", password="secret-pw", default_project_id=project["id"])
    member = await identity.find_role("member")
    await identity.add_role_assignment(user["id"], project["id"], member["id"])
    cloud.project_id = project["id"]
    cloud.identity = identity
    return cloud
