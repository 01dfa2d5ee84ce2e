"""qemu-img, run as a child process so the reactor never waits on it.

Every function returns a Deferred; a failing qemu-img fails it with
HypervisorError carrying qemu-img's own message.
"""

from __future__ import annotations

import json
import os

from twisted.internet import defer
from twisted.internet.utils import getProcessOutputAndValue

from nova_twisted import exception

QEMU_IMG = "qemu-img"
GiB = 1024**3


async def _run(reactor, *args: str) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    out, err, code = await getProcessOutputAndValue(QEMU_IMG, args, env=env, reactor=reactor)
    if code != 0:
        message = (err or out).decode("utf-8", "replace").strip().splitlines()
        raise exception.HypervisorError(reason=f"qemu-img {args[0]} failed: {message[-1] if message else code}")
    return out.decode("utf-8", "replace")


def info(reactor, path: str, fmt: str | None = None, force_share: bool = False) -> defer.Deferred:
    """Deferred firing with ``qemu-img info --output=json`` of ``path`` as a dict.

    ``fmt`` stops qemu-img from probing the format (never probe untrusted
    images as raw); ``force_share`` reads an image a running guest holds.
    """
    args = ["info", "--output=json"]
    if fmt:
        args += ["-f", fmt]
    if force_share:
        args.append("-U")
    return defer.ensureDeferred(_info(reactor, [*args, path]))


async def _info(reactor, args) -> dict:
    return json.loads(await _run(reactor, *args))


def create_overlay(reactor, path: str, backing: str, backing_fmt: str, size: int | None = None) -> defer.Deferred:
    """Create a qcow2 image at ``path`` backed by ``backing``; ``size`` in bytes (None: the backing's)."""
    args = ["create", "-q", "-f", "qcow2", "-F", backing_fmt, "-b", backing, path]
    if size:
        args.append(str(size))
    return defer.ensureDeferred(_run(reactor, *args))


def create_blank(reactor, path: str, size: int) -> defer.Deferred:
    """Create an empty qcow2 image of ``size`` bytes at ``path``."""
    return defer.ensureDeferred(_run(reactor, "create", "-q", "-f", "qcow2", path, str(size)))


def resize(reactor, path: str, size: int) -> defer.Deferred:
    """Grow the qcow2 image at ``path`` to ``size`` bytes."""
    return defer.ensureDeferred(_run(reactor, "resize", "-q", "-f", "qcow2", path, str(size)))


def convert(
    reactor, source: str, dest: str, source_fmt: str = "qcow2", dest_fmt: str = "qcow2", force_share: bool = False
) -> defer.Deferred:
    """Write ``source`` with its whole backing chain into the standalone image ``dest``."""
    args = ["convert", "-q", "-f", source_fmt, "-O", dest_fmt]
    if force_share:
        args.append("-U")
    return defer.ensureDeferred(_run(reactor, *args, source, dest))
