"""The base-image cache of one compute host: ``<instances_path>/_base/``.

Each image (machine image, kernel, ramdisk) is held once, in
``_base/<sha1 of image id>``, beside a ``.info`` sidecar recording the
hashes it was verified against and when it was last used. Instance disks
are qcow2 overlays backed by these files.

- :meth:`ImageCache.fetch` downloads an image once however many spawns ask
  for it at the same time (later callers wait on the first download),
  into a temporary name that is renamed into place only once the data
  matched the image service's size, md5 checksum and sha512 hash. A base
  that no longer matches (changed on disk) is deleted and the fetch fails.
- :meth:`ImageCache.hold` / :meth:`release` mark bases a spawn is using
  before any instance records it.
- :meth:`ImageCache.manage` (the cache manager) deletes bases no instance
  on this host has used for ``max_age`` seconds, and never one in use:
  in use means held, recorded in an instance directory's ``images.json``
  (resize leftovers included), or named by the instances compute passes.

Time comes from the injected ``clock``; blocking file work (hashing,
directory scans) runs through ``run_blocking`` (the driver's thread pool).
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import uuid as uuidlib

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from nova_twisted import exception
from nova_twisted.virt.libvirt import qemuimg

log = Logger(namespace="nova.virt.imagecache")

BASE_DIR = "_base"
RECORD = "images.json"
_BASE_NAME = re.compile(r"^[0-9a-f]{40}$")
_PART = re.compile(r"^[0-9a-f]{40}\.part-[0-9a-f]+$")
_INFO = re.compile(r"^([0-9a-f]{40})\.info$")
_CHUNK = 1024 * 1024

#: Image disk_format -> the format qemu reads the cached file as.
DISK_FORMATS = {"qcow2": "qcow2", "raw": "raw", "ami": "raw", "aki": "raw", "ari": "raw"}


def base_name(image_id: str) -> str:
    """Return the file name of ``image_id`` in _base/ (the sha1 of the id)."""
    return hashlib.sha1(str(image_id).encode("utf-8")).hexdigest()


def write_record(instance_dir: str, bases: list[str], extra: dict | None = None) -> None:
    """Record in ``instance_dir`` which base names the instance was built from (blocking)."""
    record = dict(extra or {}, bases=sorted(set(bases)))
    tmp = os.path.join(instance_dir, RECORD + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(record, handle)
    os.replace(tmp, os.path.join(instance_dir, RECORD))


def read_record(instance_dir: str) -> dict:
    """Return the record of ``instance_dir`` ({} when it has none) (blocking)."""
    try:
        with open(os.path.join(instance_dir, RECORD), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def _hash_file(path: str) -> dict:
    md5, sha512, size = hashlib.md5(usedforsecurity=False), hashlib.sha512(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            md5.update(chunk)
            sha512.update(chunk)
            size += len(chunk)
    return {"size": size, "checksum": md5.hexdigest(), "os_hash_value": sha512.hexdigest()}


def _stat_key(path: str) -> list:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _mismatch(expected: dict, actual: dict) -> str | None:
    """Return what differs between the image service's figures and the file's, or None."""
    for key in ("size", "checksum", "os_hash_value"):
        want, got = expected.get(key), actual.get(key)
        if want not in (None, "") and got not in (None, "") and str(want) != str(got):
            return f"{key} is {got}, the image service says {want}"
    return None


class ImageCache:
    """The _base/ directory of one host; see the module docstring."""

    def __init__(
        self,
        instances_path: str,
        image_service,
        reactor,
        run_blocking,
        clock=None,
        remove_unused: bool = True,
        max_age: float = 86400,
    ):
        self.instances_path = instances_path
        self.base_dir = os.path.join(instances_path, BASE_DIR)
        self.image_service = image_service
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.run_blocking = run_blocking
        self.remove_unused = remove_unused
        self.max_age = max_age
        self.downloads = 0  # images actually downloaded, for tests and logs
        self._held: collections.Counter[str] = collections.Counter()
        self._pending: dict[str, list[defer.Deferred]] = {}

    def path(self, image_id: str) -> str:
        """Return where ``image_id`` lives in _base/."""
        return os.path.join(self.base_dir, base_name(image_id))

    # -- use ------------------------------------------------------------------------
    def hold(self, names) -> None:
        """Protect base ``names`` from the cache manager until :meth:`release`."""
        self._held.update(names)

    def release(self, names) -> None:
        self._held.subtract(names)
        self._held += collections.Counter()  # drop counts that reached zero

    def fetch(self, ctxt, image_id: str) -> defer.Deferred:
        """Deferred firing with ``(path, image_meta)`` of ``image_id`` in _base/, verified.

        Concurrent fetches of one image share one download. Fails with
        ImageNotFound, or HypervisorError when the image is not active,
        its data does not match the image service's hashes (the file is
        deleted), or a qcow2 image has a backing file of its own.
        """
        waiters = self._pending.get(image_id)
        if waiters is not None:
            waiter = defer.Deferred()
            waiters.append(waiter)
            return waiter
        self._pending[image_id] = []
        return defer.ensureDeferred(self._fetch_once(ctxt, image_id))

    async def _fetch_once(self, ctxt, image_id: str):
        try:
            result = await self._fetch(ctxt, image_id)
        except BaseException:
            failure = Failure()
            for waiter in self._pending.pop(image_id, []):
                waiter.errback(failure)
            raise
        for waiter in self._pending.pop(image_id, []):
            waiter.callback(result)
        return result

    async def _fetch(self, ctxt, image_id: str):
        meta = await self.image_service.show(ctxt, image_id)
        if meta.get("status") != "active":
            raise exception.HypervisorError(reason=f"image {image_id} is {meta.get('status')}, not active")
        disk_format = meta.get("disk_format")
        if disk_format not in DISK_FORMATS:
            raise exception.HypervisorError(reason=f"image {image_id} has unsupported disk_format {disk_format}")
        path = self.path(image_id)
        if await self.run_blocking(os.path.exists, path):
            problem = await self.run_blocking(self._verify_existing, path, meta)
            if problem:
                log.error(
                    "base image {path} of {image_id} is corrupt ({problem}); deleted",
                    path=path,
                    image_id=image_id,
                    problem=problem,
                )
                raise exception.HypervisorError(
                    reason=f"cached image {image_id} failed verification ({problem}); it was deleted"
                )
            await self.run_blocking(self._touch, path)
            return path, meta
        await self.run_blocking(os.makedirs, self.base_dir, 0o755, True)
        part = f"{path}.part-{uuidlib.uuid4().hex[:12]}"
        try:
            actual = await self.image_service.download(ctxt, image_id, part)
            self.downloads += 1
            problem = _mismatch(meta, actual or {})
            if problem:
                raise exception.HypervisorError(reason=f"download of image {image_id} failed verification ({problem})")
            if DISK_FORMATS[disk_format] == "qcow2":
                info = await qemuimg.info(self.reactor, part, fmt="qcow2")
                if info.get("backing-filename") or info.get("full-backing-filename"):
                    raise exception.HypervisorError(reason=f"qcow2 image {image_id} has a backing file; refused")
            await self.run_blocking(self._install, part, path, meta, actual or {})
        finally:
            await self.run_blocking(self._unlink, part)
        log.info("image {image_id} cached as {path}", image_id=image_id, path=path)
        return path, meta

    # -- blocking helpers (pool threads) ---------------------------------------------
    def _info_path(self, path: str) -> str:
        return path + ".info"

    def _write_info(self, path: str, meta: dict, figures: dict) -> None:
        info = {
            "image_id": meta.get("id"),
            "disk_format": meta.get("disk_format"),
            "size": figures.get("size"),
            "checksum": figures.get("checksum") or meta.get("checksum"),
            "os_hash_value": figures.get("os_hash_value") or meta.get("os_hash_value"),
            "stat": _stat_key(path),
        }
        tmp = self._info_path(path) + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(info, handle)
        now = self.clock.seconds()
        os.utime(tmp, (now, now))
        os.replace(tmp, self._info_path(path))

    def _install(self, part: str, path: str, meta: dict, figures: dict) -> None:
        os.chmod(part, 0o644)  # qemu runs as another user; it reads bases, never writes them
        os.replace(part, path)
        self._write_info(path, meta, figures)

    def _verify_existing(self, path: str, meta: dict) -> str | None:
        """Return None when ``path`` holds ``meta``'s data, else what differs (and delete it)."""
        try:
            with open(self._info_path(path), encoding="utf-8") as handle:
                info = json.load(handle)
        except (OSError, ValueError):
            info = {}
        unchanged = info.get("stat") == _stat_key(path)
        if unchanged and _mismatch(meta, info) is None and (info.get("checksum") or info.get("os_hash_value")):
            return None  # verified before, and not written since
        figures = _hash_file(path)
        problem = _mismatch(meta, figures)
        if problem is None:
            self._write_info(path, meta, figures)
            return None
        self._unlink(path)
        self._unlink(self._info_path(path))
        return problem

    def _touch(self, path: str) -> None:
        now = self.clock.seconds()
        try:
            os.utime(self._info_path(path), (now, now))
        except FileNotFoundError:
            open(self._info_path(path), "w").close()
            os.utime(self._info_path(path), (now, now))

    @staticmethod
    def _unlink(path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def _recorded_bases(self) -> set[str]:
        used: set[str] = set()
        try:
            entries = os.listdir(self.instances_path)
        except FileNotFoundError:
            return used
        for entry in entries:
            if entry == BASE_DIR:
                continue
            directory = os.path.join(self.instances_path, entry)
            if os.path.isdir(directory):
                used.update(read_record(directory).get("bases", []))
        return used

    def _scan(self) -> dict:
        """Return base names with the time each was last used, stale partial files, and recorded bases."""
        bases, parts, infos = {}, [], []
        try:
            entries = os.listdir(self.base_dir)
        except FileNotFoundError:
            entries = []
        for entry in entries:
            full = os.path.join(self.base_dir, entry)
            try:
                if _BASE_NAME.match(entry):
                    # The sidecar's mtime says when the base was last used (see _touch).
                    try:
                        bases[entry] = os.stat(self._info_path(full)).st_mtime
                    except FileNotFoundError:
                        bases[entry] = os.stat(full).st_mtime
                elif _PART.match(entry):
                    parts.append((entry, os.stat(full).st_mtime))
                elif _INFO.match(entry):
                    infos.append(_INFO.match(entry).group(1))
            except FileNotFoundError:
                continue
        orphans = [name for name in infos if name not in bases]
        return {"bases": bases, "parts": parts, "orphan_infos": orphans, "recorded": self._recorded_bases()}

    # -- the cache manager ------------------------------------------------------------
    def manage(self, in_use_image_ids=()) -> defer.Deferred:
        """Run the cache manager once; Deferred firing with ``{"removed", "in_use", "kept"}`` (base names).

        Bases in use are marked used now; unused ones older than
        ``max_age`` are deleted (when ``remove_unused``).
        """
        return defer.ensureDeferred(self._manage(set(in_use_image_ids)))

    async def _manage(self, in_use_image_ids: set) -> dict:
        scan = await self.run_blocking(self._scan)
        now = self.clock.seconds()
        # Decide and delete on the reactor thread, so no spawn can hold a base in between.
        used = scan["recorded"] | set(self._held) | {base_name(i) for i in in_use_image_ids if i}
        pending = {base_name(i) for i in self._pending}
        result = {"removed": [], "in_use": [], "kept": []}
        touch = []
        for name, last_used in sorted(scan["bases"].items()):
            path = os.path.join(self.base_dir, name)
            if name in used or name in pending:
                result["in_use"].append(name)
                touch.append(path)
            elif self.remove_unused and now - last_used >= self.max_age:
                self._unlink(path)
                self._unlink(self._info_path(path))
                result["removed"].append(name)
                log.info("removed unused base image {path}", path=path)
            else:
                result["kept"].append(name)
        for name in scan["orphan_infos"]:
            if name not in pending:
                self._unlink(self._info_path(os.path.join(self.base_dir, name)))
        for entry, mtime in scan["parts"]:
            if now - mtime >= max(self.max_age, 3600):
                self._unlink(os.path.join(self.base_dir, entry))
        for path in touch:
            await self.run_blocking(self._touch, path)
        return result
