"""The base-image cache, on its own: single-flight downloads, verification, ageing (task.Clock)."""

from __future__ import annotations

import hashlib
import os

import pytest
from twisted.internet import defer, task

from nova_twisted import exception
from nova_twisted.virt.libvirt import imagecache


class ControlledImages:
    """IImageService double with raw images in memory; downloads wait until the test releases them."""

    def __init__(self):
        self.images = {}
        self.data = {}
        self.downloads = []
        self.hold_downloads = False
        self._waiting = []

    def add(self, image_id, data: bytes, **meta):
        self.data[image_id] = data
        self.images[image_id] = dict(
            id=image_id,
            status="active",
            disk_format="raw",
            size=len(data),
            checksum=hashlib.md5(data).hexdigest(),
            os_hash_value=hashlib.sha512(data).hexdigest(),
            **meta,
        )

    def show(self, ctxt, image_id):
        if image_id not in self.images:
            return defer.fail(exception.ImageNotFound(image_id=image_id))
        return defer.succeed(dict(self.images[image_id]))

    def download(self, ctxt, image_id, path):
        self.downloads.append(image_id)
        data = self.data[image_id]

        def write(_=None):
            with open(path, "wb") as handle:
                handle.write(data)
            return {
                "size": len(data),
                "checksum": hashlib.md5(data).hexdigest(),
                "os_hash_value": hashlib.sha512(data).hexdigest(),
            }

        if self.hold_downloads:
            waiting = defer.Deferred()
            self._waiting.append(waiting)
            return waiting.addCallback(write)
        return defer.succeed(write())

    def release_downloads(self):
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)


AGE = 600


@pytest.fixture
def setup(tmp_path):
    images = ControlledImages()
    images.add("img-1", b"machine image " * 1000)
    images.add("img-2", b"another image " * 500)
    clock = task.Clock()
    clock.advance(1_000_000)
    cache = imagecache.ImageCache(
        str(tmp_path), images, reactor=None, run_blocking=defer.maybeDeferred, clock=clock, max_age=AGE
    )
    return cache, images, clock, tmp_path


def _result(d):
    results = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    return results[0]


def test_concurrent_fetches_of_one_image_share_one_download(setup):
    cache, images, _clock, _ = setup
    images.hold_downloads = True
    fetches = [cache.fetch(None, "img-1") for _ in range(3)]
    assert images.downloads == ["img-1"]
    assert not any(d.called for d in fetches)
    images.release_downloads()
    paths = {_result(d)[0] for d in fetches}
    assert paths == {cache.path("img-1")}
    assert open(cache.path("img-1"), "rb").read() == images.data["img-1"]
    _result(cache.fetch(None, "img-1"))  # cached now
    assert images.downloads == ["img-1"]


def test_a_failed_download_fails_every_waiter_and_leaves_no_file(setup):
    cache, images, _clock, tmp_path = setup
    images.hold_downloads = True
    images.data["img-1"] = b"not what the image service promised"
    fetches = [cache.fetch(None, "img-1") for _ in range(2)]
    images.release_downloads()
    for d in fetches:
        failure = _result(d)
        assert failure.check(exception.HypervisorError), failure
        assert "failed verification" in str(failure.value)
    assert os.listdir(tmp_path / "_base") == []


def test_a_changed_base_is_rehashed_rejected_and_deleted(setup):
    cache, images, _clock, _ = setup
    path, _ = _result(cache.fetch(None, "img-1"))
    with open(path, "r+b") as handle:
        handle.write(b"X")
    failure = _result(cache.fetch(None, "img-1"))
    assert failure.check(exception.HypervisorError)
    assert not os.path.exists(path)
    assert not os.path.exists(path + ".info")
    _result(cache.fetch(None, "img-1"))  # the next fetch downloads it again
    assert images.downloads == ["img-1", "img-1"]


def test_an_image_that_is_not_active_is_refused(setup):
    cache, images, _clock, _ = setup
    images.images["img-1"]["status"] = "queued"
    assert _result(cache.fetch(None, "img-1")).check(exception.HypervisorError)
    assert _result(cache.fetch(None, "nope")).check(exception.ImageNotFound)


def test_manager_keeps_held_and_recorded_bases_and_removes_old_unused_ones(setup):
    cache, _images, clock, tmp_path = setup
    _result(cache.fetch(None, "img-1"))
    _result(cache.fetch(None, "img-2"))
    name1, name2 = imagecache.base_name("img-1"), imagecache.base_name("img-2")
    instance_dir = tmp_path / "some-instance"
    instance_dir.mkdir()
    imagecache.write_record(str(instance_dir), [name1])
    clock.advance(AGE - 1)
    assert _result(cache.manage()) == {"removed": [], "in_use": [name1], "kept": [name2]}
    clock.advance(1)
    assert _result(cache.manage()) == {"removed": [name2], "in_use": [name1], "kept": []}
    # held by a spawn in progress: in use even without a record
    os.remove(instance_dir / imagecache.RECORD)
    cache.hold([name1])
    clock.advance(10 * AGE)
    assert _result(cache.manage())["in_use"] == [name1]
    cache.release([name1])
    assert _result(cache.manage())["kept"] == [name1]  # used a moment ago (touched while held)
    clock.advance(AGE)
    assert _result(cache.manage())["removed"] == [name1]
    assert sorted(os.listdir(tmp_path / "_base")) == []


def test_manager_never_removes_anything_when_told_not_to(setup):
    cache, _images, clock, _ = setup
    _result(cache.fetch(None, "img-1"))
    cache.remove_unused = False
    clock.advance(100 * AGE)
    assert _result(cache.manage())["kept"] == [imagecache.base_name("img-1")]
    assert os.path.exists(cache.path("img-1"))
