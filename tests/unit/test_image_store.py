"""Pure pieces of the image store and API: filters, sorting, ranges, JSON patch, views, streaming backpressure."""

from __future__ import annotations

import datetime as dt
import os
import tempfile

from twisted.internet import defer
from twisted.trial import unittest

from nova_twisted import exception
from nova_twisted.image.model import image_view, parse_filters, parse_sort
from nova_twisted.image.resource import changes_from_patch, parse_range
from nova_twisted.image.streams import HashingWriter


class FiltersTests(unittest.TestCase):
    def test_core_filters_take_exact_values_or_in_lists(self):
        parsed = parse_filters({"name": "in:a, b", "status": "active", "size_min": "10", "size_max": 20})
        self.assertEqual(
            sorted(parsed["core"], key=str),
            sorted(
                [("name", "in", ["a", "b"]), ("status", "eq", "active"), ("size", "gte", 10), ("size", "lte", 20)],
                key=str,
            ),
        )

    def test_unknown_keys_are_property_filters_and_tags_accumulate(self):
        parsed = parse_filters({"os_distro": "debian", "tag": ["a", "b"]})
        self.assertEqual(parsed["properties"], {"os_distro": "debian"})
        self.assertEqual(parsed["tags"], ["a", "b"])

    def test_time_filters_take_an_operator(self):
        parsed = parse_filters({"created_at": "gte:2026-01-02T03:04:05Z"})
        self.assertEqual(parsed["core"], [("created_at", "gte", dt.datetime(2026, 1, 2, 3, 4, 5))])

    def test_bad_values_are_invalid(self):
        for filters in ({"visibility": "nope"}, {"size_min": "big"}, {"protected": "maybe"}, {"member_status": "x"}):
            self.assertRaises(exception.Invalid, parse_filters, filters)


class SortTests(unittest.TestCase):
    def test_sort_parameter_and_sort_key_forms(self):
        self.assertEqual(parse_sort(sort="name:asc,size"), [("name", "asc"), ("size", "desc")])
        self.assertEqual(parse_sort(["name", "size"], "asc"), [("name", "asc"), ("size", "asc")])
        self.assertEqual(parse_sort(), [("created_at", "desc")])

    def test_unknown_keys_directions_and_mixed_forms_are_invalid(self):
        self.assertRaises(exception.Invalid, parse_sort, "owner")
        self.assertRaises(exception.Invalid, parse_sort, "name", "up")
        self.assertRaises(exception.Invalid, parse_sort, "name", None, "size:asc")
        self.assertRaises(exception.Invalid, parse_sort, ["name", "size"], ["asc", "desc", "asc"])


class RangeTests(unittest.TestCase):
    def test_ranges_within_the_image(self):
        self.assertEqual(parse_range("bytes=0-9", 100), (0, 10))
        self.assertEqual(parse_range("bytes=90-", 100), (90, 10))
        self.assertEqual(parse_range("bytes=-5", 100), (95, 5))
        self.assertEqual(parse_range("bytes=95-500", 100), (95, 5))

    def test_unsatisfiable_ranges(self):
        for header in ("bytes=100-", "bytes=5-1", "bytes=0-1,4-5", "items=0-1", "bytes=-0", "bytes=a-b"):
            self.assertIsNone(parse_range(header, 100), header)
        self.assertIsNone(parse_range("bytes=0-0", 0))


class PatchTests(unittest.TestCase):
    image = {"name": "a", "min_ram": 0, "owner": "p", "tags": ["t"], "os_distro": "debian", "visibility": "shared"}

    def test_operations_become_changes_removals_and_tags(self):
        changes, removed, tags = changes_from_patch(
            self.image,
            [
                {"op": "replace", "path": "/name", "value": "b"},
                {"op": "add", "path": "/hw~1x", "value": "1"},
                {"op": "remove", "path": "/os_distro"},
                {"replace": "/tags", "value": ["u"]},
                {"op": "replace", "path": "/min_ram", "value": 0},
            ],
        )
        self.assertEqual(changes, {"name": "b", "hw/x": "1"})
        self.assertEqual(removed, ["os_distro"])
        self.assertEqual(tags, ["u"])

    def test_glance_refusals(self):
        cases = [
            ([{"op": "replace", "path": "/missing", "value": "x"}], exception.Conflict),
            ([{"op": "remove", "path": "/missing"}], exception.Conflict),
            ([{"op": "remove", "path": "/name"}], exception.Forbidden),
            ([{"op": "add", "path": "/checksum", "value": "x"}], exception.Forbidden),
            ([{"op": "add", "path": "/locations/-", "value": {}}], exception.Forbidden),
            ([{"op": "add", "path": "name", "value": "x"}], exception.Invalid),
            ([{"op": "add", "path": "/name"}], exception.Invalid),
            ([{"op": "test", "path": "/name", "value": "a"}], exception.Invalid),
        ]
        for ops, error in cases:
            self.assertRaises(error, changes_from_patch, self.image, ops)


class ViewTests(unittest.TestCase):
    def test_properties_become_top_level_keys_beside_the_core_attributes(self):
        now = dt.datetime(2026, 5, 1, 12, 0, 0, 123456)
        stored = {
            "id": "i-1",
            "name": "n",
            "status": "active",
            "visibility": "public",
            "owner": "p",
            "disk_format": "raw",
            "container_format": "bare",
            "size": 3,
            "virtual_size": None,
            "checksum": "c",
            "os_hash_algo": "sha512",
            "os_hash_value": "h",
            "min_disk": 0,
            "min_ram": 0,
            "protected": False,
            "os_hidden": False,
            "created_at": now,
            "updated_at": now,
            "properties": {"kernel_id": "k"},
            "tags": ["x"],
        }
        view = image_view(stored)
        self.assertEqual(view["kernel_id"], "k")
        self.assertEqual(view["created_at"], "2026-05-01T12:00:00Z")
        self.assertEqual((view["self"], view["file"]), ("/v2/images/i-1", "/v2/images/i-1/file"))
        self.assertNotIn("properties", view)


class ManualPool:
    """A thread pool stand-in that runs work only when the test says so."""

    def __init__(self):
        self.queue: list[tuple] = []

    def run(self, fn, *args, **kwargs):
        d = defer.Deferred()
        self.queue.append((d, fn, args, kwargs))
        return d

    def step(self):
        d, fn, args, kwargs = self.queue.pop(0)
        d.callback(fn(*args, **kwargs))

    def drain(self):
        while self.queue:
            self.step()


class HashingWriterTests(unittest.TestCase):
    def setUp(self):
        self.pool = ManualPool()
        self.path = os.path.join(tempfile.mkdtemp(), "out")
        self.writer = HashingWriter(self.pool, self.path, high_water=100, low_water=20)
        self.events = []
        self.writer.pause = lambda: self.events.append("pause")
        self.writer.resume = lambda: self.events.append("resume")
        self.writer.open()
        self.pool.step()

    def test_a_slow_disk_pauses_the_source_and_resumes_it_once_drained(self):
        for _ in range(5):
            self.writer.write(b"x" * 30)
        self.assertEqual(self.events, ["pause"], "150 bytes waiting is above the high-water mark")
        self.writer.write(b"y" * 30)
        self.assertEqual(self.events, ["pause"], "paused once, not once per chunk")
        self.pool.step()  # the first chunk, written alone
        self.assertEqual(self.events, ["pause"])
        self.pool.step()  # the other five, batched
        self.assertEqual(self.events, ["pause", "resume"])
        closed = defer.ensureDeferred(self.writer.close())
        self.pool.drain()
        digest = self.successResultOf(closed)
        self.assertEqual(digest.size, 180)
        with open(self.path, "rb") as handle:
            self.assertEqual(handle.read(), b"x" * 150 + b"y" * 30)

    def test_more_data_than_the_limit_fails_the_writer_and_drops_the_rest(self):
        self.writer.max_size = 50
        self.writer.write(b"a" * 40)
        self.writer.write(b"b" * 40)
        self.assertIsNotNone(self.writer.failed)
        self.writer.write(b"c" * 10)
        self.pool.drain()
        closing = defer.ensureDeferred(self.writer.close())
        self.pool.drain()
        self.failureResultOf(closing, ValueError)
