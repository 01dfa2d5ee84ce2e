"""The OpenAPI document describes exactly the routes the compute API serves, and is served without a token."""

from __future__ import annotations

import json
import re

import schemathesis
from twisted.trial import unittest

from nova_twisted import conf as confmod
from nova_twisted.api.compute.app import ComputeApp
from nova_twisted.api.compute.openapi import document_for, template_shape
from tests.identity_fixtures import async_test
from tests.servers_api_helpers import serve

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _app() -> ComputeApp:
    return ComputeApp(confmod.load((), {("database", "connection"): "sqlite://"}), None, None, None, None)


def _operations(document: dict) -> set[tuple[str, str]]:
    found = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                found.add((method.upper(), operation["x-route"]))
                assert template_shape(path) == template_shape(operation["x-route"]), (path, operation["x-route"])
    return found


class OpenAPIDocument(unittest.TestCase):
    def test_every_route_of_the_router_is_in_the_document_and_nothing_else(self):
        app = _app()
        routes = {(method, pattern) for method, _regex, _handler, _auth, pattern in app.router.routes}
        self.assertEqual(_operations(document_for(app.router)), routes)
        # Both engineers' resources are there, not only the servers family.
        shapes = {template_shape(p) for _, p in routes}
        for expected in ("/v2.1/servers/{}/action", "/v2.1/flavors", "/v2.1/os-keypairs", "/v2.1/os-hypervisors"):
            self.assertIn(expected, shapes)

    def test_path_parameters_match_the_path_and_every_ref_resolves(self):
        document = document_for(_app().router)
        for path, item in document["paths"].items():
            names = {p["name"] for p in item.get("parameters", [])}
            self.assertEqual(names, set(re.findall(r"\{(\w+)\}", path)), path)
        text = json.dumps(document)
        for ref in set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', text)):
            self.assertIn(ref, document["components"]["schemas"])

    def test_request_bodies_are_the_schemas_the_handlers_validate_with(self):
        from nova_twisted.api.compute import microversion, servers

        document = document_for(_app().router)
        create = document["paths"]["/v2.1/servers"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        self.assertEqual(create, servers.create_schema(microversion.MAX))
        action = document["paths"]["/v2.1/servers/{server_id}/action"]["post"]["requestBody"]
        names = {next(iter(s["properties"])) for s in action["content"]["application/json"]["schema"]["oneOf"]}
        self.assertLessEqual({"reboot", "rebuild", "resize", "createImage", "os-getVNCConsole", "lock"}, names)
        self.assertIn("requestBody", document["paths"]["/v2.1/flavors"]["post"])
        self.assertIn("requestBody", document["paths"]["/v2.1/os-keypairs"]["post"])

    def test_schemathesis_loads_it_and_finds_every_operation(self):
        document = document_for(_app().router)
        schema = schemathesis.openapi.from_dict(document)
        count = sum(1 for result in schema.get_all_operations() if result.ok())
        self.assertEqual(count, len(_operations(document)))

    @async_test
    async def test_it_is_served_without_a_token_with_this_servers_url(self):
        api = await serve(self)
        code, _, body = await api.request("GET", "/v2.1/openapi.json", user=None)
        self.assertEqual(code, 200)
        self.assertEqual(body["openapi"], "3.1.0")
        self.assertEqual(body["servers"], [{"url": api.url}])
        self.assertEqual(_operations(body), _operations(document_for(api.app.router)))
