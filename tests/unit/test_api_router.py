"""JSONRouter's matching: routes are found by their first segments but still tried in the order they were added."""

from twisted.internet import defer
from twisted.trial import unittest

from nova_twisted import exception
from nova_twisted.api.http import JSONRouter, _drive


def _named(name):
    async def handler(req):
        return {"route": name}

    handler.__name__ = name
    return handler


class MatchTests(unittest.TestCase):
    def setUp(self):
        self.router = JSONRouter()
        for method, pattern, name in (
            ("GET", "/", "root"),
            ("GET", "/v2.1", "version"),
            ("GET", "/v2.1/servers/detail", "detail"),
            ("GET", "/v2.1/servers/{server_id}", "show"),
            ("DELETE", "/v2.1/servers/{server_id}", "delete"),
            ("GET", "/{project_id}/legacy", "legacy"),
            ("GET", "/v2.1/flavors/{flavor_id}", "flavor"),
            ("GET", "/v3/{anything}", "v3"),
        ):
            self.router.add(method, pattern, _named(name))

    def name(self, method, path):
        handler, params, _auth = self.router.match(method, path)
        return handler.__name__, params

    def test_each_path_finds_its_route_with_its_parameters(self):
        self.assertEqual(self.name("GET", "/"), ("root", {}))
        self.assertEqual(self.name("GET", "/v2.1"), ("version", {}))
        self.assertEqual(self.name("GET", "/v2.1/servers/detail"), ("detail", {}))  # added first: wins over {id}
        self.assertEqual(self.name("GET", "/v2.1/servers/abc"), ("show", {"server_id": "abc"}))
        self.assertEqual(self.name("DELETE", "/v2.1/servers/abc"), ("delete", {"server_id": "abc"}))
        self.assertEqual(self.name("HEAD", "/v2.1/flavors/1"), ("flavor", {"flavor_id": "1"}))
        self.assertEqual(self.name("GET", "/p1/legacy"), ("legacy", {"project_id": "p1"}))
        self.assertEqual(self.name("GET", "/v3/x"), ("v3", {"anything": "x"}))

    def test_a_route_with_a_parameter_first_is_tried_wherever_it_was_added(self):
        # "/{project_id}/legacy" could also match "/v2.1/legacy": it was added before the flavors route.
        self.router.add("GET", "/v2.1/legacy", _named("late"))
        self.assertEqual(self.name("GET", "/v2.1/legacy"), ("legacy", {"project_id": "v2.1"}))

    def test_unknown_paths_and_methods(self):
        with self.assertRaises(exception.NotFound):
            self.router.match("GET", "/v2.1/nothing")
        with self.assertRaises(exception.NotFound):
            self.router.match("GET", "/v2.1/servers/a/b/c")
        with self.assertRaises(exception.NovaError) as caught:
            self.router.match("PUT", "/v2.1/servers/abc")
        self.assertEqual((caught.exception.code, caught.exception.allowed), (405, ["DELETE", "GET"]))

    def test_routes_added_after_a_match_are_found(self):
        self.name("GET", "/")
        self.router.add("GET", "/v2.1/new/{x}", _named("new"))
        self.assertEqual(self.name("GET", "/v2.1/new/1"), ("new", {"x": "1"}))


class DriveTests(unittest.TestCase):
    """The router runs handlers' coroutines itself: at once when nothing is pending, else from callbacks."""

    def test_a_coroutine_that_never_waits_ends_within_the_call(self):
        seen = []

        async def handler():
            seen.append(await defer.succeed(1))
            seen.append("end")

        _drive(handler())
        self.assertEqual(seen, [1, "end"])

    def test_a_pending_deferred_resumes_the_coroutine_with_its_result_or_its_failure(self):
        first, second = defer.Deferred(), defer.Deferred()
        seen = []

        async def handler():
            seen.append(await first)
            try:
                await second
            except ValueError as exc:
                seen.append(f"caught {exc}")
            seen.append(await defer.succeed("after"))

        _drive(handler())
        self.assertEqual(seen, [])
        first.callback("one")
        self.assertEqual(seen, ["one"])
        second.errback(ValueError("two"))
        self.assertEqual(seen, ["one", "caught two", "after"])
        self.assertIsNone(self.successResultOf(second))  # the failure was taken, not left unhandled

    def test_awaiting_something_else_fails_where_it_was_awaited(self):
        seen = []

        class Foreign:
            def __await__(self):
                yield "not a deferred"

        async def handler():
            try:
                await Foreign()
            except TypeError as exc:
                seen.append(str(exc))

        _drive(handler())
        self.assertEqual(len(seen), 1)
        self.assertIn("not a Deferred", seen[0])

    def test_an_escaping_error_is_logged(self):
        async def handler():
            raise RuntimeError("escaped")

        _drive(handler())
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
