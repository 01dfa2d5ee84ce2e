"""The identity HTTP API on SQLite, over real HTTP on 127.0.0.1: Keystone's shapes, codes and policy."""

from twisted.internet import defer, reactor
from twisted.trial import unittest

from nova_twisted import exception
from tests.identity_fixtures import (
    ADMIN_PASSWORD,
    DEMO_PASSWORD,
    async_test,
    make_conf,
    migrated_database,
    seed,
    serve,
)


def password_auth(name, password, project=None):
    auth = {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"name": name, "domain": {"name": "Default"}, "password": password}},
        }
    }
    if project is not None:
        auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    return {"auth": auth}


class IdentityHTTPTestCase(unittest.TestCase):
    async def start(self):
        url = f"sqlite:///{self.mktemp()}.sqlite"
        self.database = migrated_database(url, reactor, self)
        self.server = serve(self, make_conf(url, ec2_url="http://ec2.example:8773/"), self.database, reactor)
        self.data = await seed(self.server.api)
        self.demo_token, self.demo_body = await self.server.login("demo", DEMO_PASSWORD, "demo")
        self.admin_token, _ = await self.server.login("admin", ADMIN_PASSWORD, "admin")

    def request(self, *args, **kwargs):
        return self.server.request(*args, **kwargs)

    def assertKeystoneError(self, result, code, title):
        status, _, body = result
        self.assertEqual(status, code, body)
        self.assertEqual(set(body), {"error"})
        self.assertEqual(body["error"]["code"], code)
        self.assertEqual(body["error"]["title"], title)
        self.assertTrue(body["error"]["message"])


class VersionAndTokenTests(IdentityHTTPTestCase):
    @async_test
    async def test_version_documents_need_no_token_and_link_to_the_address_used(self):
        await self.start()
        status, _, body = await self.request("GET", "/")
        self.assertEqual(status, 300)
        (version,) = body["versions"]["values"]
        self.assertEqual(version["status"], "stable")
        self.assertEqual(version["links"][0]["href"], self.server.url + "/v3/")
        for path in ("/v3", "/v3/"):
            status, _, body = await self.request("GET", path)
            self.assertEqual(status, 200)
            self.assertEqual(body["version"]["id"], "v3.14")
            self.assertEqual(body["version"]["media-types"][0]["type"], "application/vnd.openstack.identity-v3+json")

    @async_test
    async def test_password_token_has_the_fields_clients_read(self):
        await self.start()
        body = self.demo_body
        self.assertEqual(body["methods"], ["password"])
        self.assertEqual(body["user"]["name"], "demo")
        self.assertEqual(body["user"]["domain"], {"id": "default", "name": "Default"})
        self.assertEqual(body["project"]["id"], self.data["demo"]["id"])
        self.assertEqual(body["project"]["domain"]["id"], "default")
        self.assertEqual([r["name"] for r in body["roles"]], ["member"])
        self.assertRegex(body["issued_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        self.assertRegex(body["expires_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        self.assertEqual(len(body["audit_ids"]), 1)

    @async_test
    async def test_catalog_lists_every_service_on_three_interfaces_with_a_region(self):
        await self.start()
        catalog = {s["type"]: s for s in self.demo_body["catalog"]}
        self.assertEqual(set(catalog), {"compute", "image", "identity", "ec2"})
        self.assertEqual(catalog["identity"]["endpoints"][0]["url"], self.server.url + "/v3")
        self.assertEqual(catalog["ec2"]["endpoints"][0]["url"], "http://ec2.example:8773/")
        self.assertEqual(catalog["compute"]["endpoints"][0]["url"], "http://127.0.0.1:8774/v2.1")
        for service in catalog.values():
            self.assertEqual(sorted(e["interface"] for e in service["endpoints"]), ["admin", "internal", "public"])
            for endpoint in service["endpoints"]:
                self.assertEqual(endpoint["region"], "RegionOne")
                self.assertEqual(endpoint["region_id"], "RegionOne")
        status, _, body = await self.request("GET", "/v3/auth/catalog", token=self.demo_token)
        self.assertEqual(status, 200)
        self.assertEqual(body["catalog"], self.demo_body["catalog"])

    @async_test
    async def test_login_by_user_id_and_project_id_and_without_catalog(self):
        await self.start()
        auth = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"id": self.data["demo_user"]["id"], "password": DEMO_PASSWORD}},
                },
                "scope": {"project": {"id": self.data["demo"]["id"]}},
            }
        }
        status, headers, body = await self.request("POST", "/v3/auth/tokens?nocatalog", auth)
        self.assertEqual(status, 201)
        self.assertTrue(headers.getRawHeaders("x-subject-token")[0])
        self.assertNotIn("catalog", body["token"])
        self.assertEqual(body["token"]["project"]["name"], "demo")

    @async_test
    async def test_explicitly_unscoped_token_has_no_project_roles_or_catalog(self):
        await self.start()
        request = password_auth("demo", DEMO_PASSWORD)
        request["auth"]["scope"] = "unscoped"
        status, _, body = await self.request("POST", "/v3/auth/tokens", request)
        self.assertEqual(status, 201)
        self.assertNotIn("project", body["token"])
        self.assertNotIn("roles", body["token"])
        self.assertNotIn("catalog", body["token"])
        status, _, _ = await self.request(
            "GET", "/v3/auth/catalog", token=(await self.server.login("demo", DEMO_PASSWORD, scope="unscoped"))[0]
        )
        self.assertEqual(status, 403)

    @async_test
    async def test_token_method_rescopes_and_lists_both_methods_audit_chain(self):
        await self.start()
        request = {
            "auth": {
                "identity": {"methods": ["token"], "token": {"id": self.demo_token}},
                "scope": {"project": {"name": "demo", "domain": {"id": "default"}}},
            }
        }
        status, headers, body = await self.request("POST", "/v3/auth/tokens", request)
        self.assertEqual(status, 201)
        self.assertNotEqual(headers.getRawHeaders("x-subject-token")[0], self.demo_token)
        self.assertEqual(body["token"]["methods"], ["token"])
        self.assertEqual(body["token"]["expires_at"], self.demo_body["expires_at"])
        self.assertEqual(body["token"]["audit_ids"][1], self.demo_body["audit_ids"][0])

    @async_test
    async def test_wrong_password_is_a_keystone_401_with_www_authenticate(self):
        await self.start()
        result = await self.request("POST", "/v3/auth/tokens", password_auth("demo", "wrong", "demo"))
        self.assertKeystoneError(result, 401, "Unauthorized")
        self.assertEqual(result[2]["error"]["message"], "The request you have made requires authentication.")
        self.assertEqual(result[1].getRawHeaders("www-authenticate"), [f'Keystone uri="{self.server.url}"'])
        result = await self.request("POST", "/v3/auth/tokens", password_auth("ghost", "wrong"))
        self.assertKeystoneError(result, 401, "Unauthorized")

    @async_test
    async def test_scope_to_a_project_without_a_role_is_401(self):
        await self.start()
        result = await self.request("POST", "/v3/auth/tokens", password_auth("demo", DEMO_PASSWORD, "admin"))
        self.assertKeystoneError(result, 401, "Unauthorized")

    @async_test
    async def test_malformed_auth_requests_are_400(self):
        await self.start()
        no_domain = password_auth("demo", DEMO_PASSWORD)
        del no_domain["auth"]["identity"]["password"]["user"]["domain"]
        domain_scope = password_auth("demo", DEMO_PASSWORD)
        domain_scope["auth"]["scope"] = {"domain": {"id": "default"}}
        for body in ({}, {"auth": {}}, {"auth": {"identity": {"methods": "password"}}}, no_domain, domain_scope):
            self.assertKeystoneError(await self.request("POST", "/v3/auth/tokens", body), 400, "Bad Request")
        bad_method = {"auth": {"identity": {"methods": ["totp"]}}}
        self.assertKeystoneError(await self.request("POST", "/v3/auth/tokens", bad_method), 401, "Unauthorized")

    @async_test
    async def test_validate_own_token_and_admin_validates_anyones(self):
        await self.start()
        for token in (self.demo_token, self.admin_token):
            status, headers, body = await self.request(
                "GET", "/v3/auth/tokens", token=token, headers={"X-Subject-Token": self.demo_token}
            )
            self.assertEqual(status, 200)
            self.assertEqual(headers.getRawHeaders("x-subject-token"), [self.demo_token])
            self.assertEqual(body["token"]["user"]["name"], "demo")
            self.assertEqual(body["token"]["expires_at"], self.demo_body["expires_at"])
        status, _, body = await self.request(
            "HEAD", "/v3/auth/tokens", token=self.demo_token, headers={"X-Subject-Token": self.demo_token}
        )
        self.assertEqual((status, body), (200, None))

    @async_test
    async def test_a_user_cannot_validate_someone_elses_token(self):
        await self.start()
        result = await self.request(
            "GET", "/v3/auth/tokens", token=self.demo_token, headers={"X-Subject-Token": self.admin_token}
        )
        self.assertKeystoneError(result, 403, "Forbidden")

    @async_test
    async def test_validation_needs_a_valid_x_auth_token_and_an_existing_subject(self):
        await self.start()
        result = await self.request("GET", "/v3/auth/tokens", headers={"X-Subject-Token": self.demo_token})
        self.assertKeystoneError(result, 401, "Unauthorized")
        result = await self.request(
            "GET", "/v3/auth/tokens", token="forged", headers={"X-Subject-Token": self.demo_token}
        )
        self.assertKeystoneError(result, 401, "Unauthorized")
        result = await self.request("GET", "/v3/auth/tokens", token=self.admin_token, headers={"X-Subject-Token": "x"})
        self.assertKeystoneError(result, 404, "Not Found")

    @async_test
    async def test_revoked_token_is_404_to_validate_and_401_to_use(self):
        await self.start()
        status, _, _ = await self.request(
            "DELETE", "/v3/auth/tokens", token=self.demo_token, headers={"X-Subject-Token": self.demo_token}
        )
        self.assertEqual(status, 204)
        result = await self.request(
            "GET", "/v3/auth/tokens", token=self.admin_token, headers={"X-Subject-Token": self.demo_token}
        )
        self.assertKeystoneError(result, 404, "Not Found")
        result = await self.request("GET", "/v3/auth/projects", token=self.demo_token)
        self.assertKeystoneError(result, 401, "Unauthorized")

    @async_test
    async def test_revocation_is_forgotten_by_a_shared_authenticator_at_once(self):
        from nova_twisted.api.auth import Authenticator
        from nova_twisted.identity import build_validator

        await self.start()
        authenticator = Authenticator(build_validator(self.server.conf, self.database, reactor), reactor, 60)
        self.server.site.resource.authenticator = authenticator
        info = await authenticator.identify(self.demo_token)
        self.assertEqual(info["user_name"], "demo")
        await self.request(
            "DELETE", "/v3/auth/tokens", token=self.admin_token, headers={"X-Subject-Token": self.demo_token}
        )
        with self.assertRaises(Exception) as failure:
            await authenticator.identify(self.demo_token)
        self.assertEqual(getattr(failure.exception, "code", None), 401)

    @async_test
    async def test_doubled_slashes_from_joined_discovery_links_are_tolerated(self):
        await self.start()
        status, _, body = await self.request("GET", "/v3//auth/projects", token=self.demo_token)
        self.assertEqual((status, [p["name"] for p in body["projects"]]), (200, ["demo"]))

    @async_test
    async def test_auth_projects_lists_the_users_projects(self):
        await self.start()
        status, _, body = await self.request("GET", "/v3/auth/projects", token=self.demo_token)
        self.assertEqual(status, 200)
        self.assertEqual([p["name"] for p in body["projects"]], ["demo"])
        self.assertIn("links", body)


class ResourceTests(IdentityHTTPTestCase):
    @async_test
    async def test_admin_creates_a_project_and_user_and_grants_a_role_the_user_can_log_in_with(self):
        await self.start()
        t = self.admin_token
        status, _, body = await self.request(
            "POST", "/v3/projects", {"project": {"name": "p2", "domain_id": "default"}}, t
        )
        self.assertEqual(status, 201)
        project = body["project"]
        self.assertEqual((project["name"], project["domain_id"], project["enabled"]), ("p2", "default", True))
        status, _, body = await self.request(
            "POST", "/v3/users", {"user": {"name": "u2", "password": "pw-u2", "default_project_id": project["id"]}}, t
        )
        self.assertEqual(status, 201)
        user = body["user"]
        self.assertNotIn("password", user)
        self.assertEqual(user["default_project_id"], project["id"])
        member = self.data["roles"]["member"]["id"]
        path = f"/v3/projects/{project['id']}/users/{user['id']}/roles/{member}"
        self.assertEqual((await self.request("HEAD", path, token=t))[0], 404)
        self.assertEqual((await self.request("PUT", path, token=t))[0], 204)
        self.assertEqual((await self.request("HEAD", path, token=t))[0], 204)
        _, token_body = await self.server.login("u2", "pw-u2")
        self.assertEqual(token_body["project"]["id"], project["id"])
        self.assertEqual((await self.request("DELETE", path, token=t))[0], 204)
        self.assertEqual((await self.request("DELETE", f"/v3/users/{user['id']}", token=t))[0], 204)
        self.assertEqual((await self.request("DELETE", f"/v3/projects/{project['id']}", token=t))[0], 204)
        self.assertKeystoneError(await self.request("GET", f"/v3/projects/{project['id']}", token=t), 404, "Not Found")

    @async_test
    async def test_duplicate_project_is_409(self):
        await self.start()
        result = await self.request("POST", "/v3/projects", {"project": {"name": "demo"}}, self.admin_token)
        self.assertKeystoneError(result, 409, "Conflict")

    @async_test
    async def test_lists_filter_by_name_as_the_cli_asks(self):
        await self.start()
        t = self.admin_token
        _, _, body = await self.request("GET", "/v3/projects?name=demo", token=t)
        self.assertEqual([p["name"] for p in body["projects"]], ["demo"])
        _, _, body = await self.request("GET", "/v3/projects", token=t)
        self.assertEqual([p["name"] for p in body["projects"]], ["admin", "demo"])
        _, _, body = await self.request("GET", "/v3/users?name=demo&domain_id=default", token=t)
        self.assertEqual([u["name"] for u in body["users"]], ["demo"])
        _, _, body = await self.request("GET", "/v3/roles?name=reader", token=t)
        self.assertEqual([r["name"] for r in body["roles"]], ["reader"])
        _, _, body = await self.request("GET", "/v3/domains?name=Default", token=t)
        self.assertEqual([d["id"] for d in body["domains"]], ["default"])
        self.assertEqual((await self.request("GET", "/v3/domains/default", token=self.demo_token))[0], 200)
        self.assertEqual((await self.request("GET", "/v3/domains/Default", token=t))[0], 404)

    @async_test
    async def test_a_member_is_refused_administration_with_403(self):
        await self.start()
        t = self.demo_token
        other = self.data["admin_user"]["id"]
        for method, path, body in (
            ("GET", "/v3/users", None),
            ("GET", "/v3/projects", None),
            ("GET", "/v3/roles", None),
            ("POST", "/v3/projects", {"project": {"name": "mine"}}),
            ("POST", "/v3/users", {"user": {"name": "mine"}}),
            ("GET", f"/v3/users/{other}", None),
            ("GET", f"/v3/users/{other}/projects", None),
            ("GET", f"/v3/projects/{self.data['admin_project']['id']}", None),
            ("GET", f"/v3/users/{other}/credentials/OS-EC2", None),
            ("POST", f"/v3/users/{other}/credentials/OS-EC2", {"tenant_id": self.data["demo"]["id"]}),
            ("GET", "/v3/role_assignments", None),
            (
                "PUT",
                f"/v3/projects/{self.data['admin_project']['id']}/users/{self.data['demo_user']['id']}"
                f"/roles/{self.data['roles']['admin']['id']}",
                None,
            ),
        ):
            self.assertKeystoneError(await self.request(method, path, body, t), 403, "Forbidden")

    @async_test
    async def test_a_member_sees_themselves_and_their_projects(self):
        await self.start()
        t, me = self.demo_token, self.data["demo_user"]["id"]
        status, _, body = await self.request("GET", f"/v3/users/{me}", token=t)
        self.assertEqual((status, body["user"]["name"]), (200, "demo"))
        _, _, body = await self.request("GET", f"/v3/users/{me}/projects", token=t)
        self.assertEqual([p["name"] for p in body["projects"]], ["demo"])
        status, _, body = await self.request("GET", f"/v3/projects/{self.data['demo']['id']}", token=t)
        self.assertEqual((status, body["project"]["name"]), (200, "demo"))
        _, _, body = await self.request("GET", f"/v3/role_assignments?user.id={me}&include_names=1", token=t)
        (assignment,) = body["role_assignments"]
        self.assertEqual(assignment["role"]["name"], "member")
        self.assertEqual(assignment["scope"]["project"]["name"], "demo")

    @async_test
    async def test_role_assignments_filter_by_user_and_project(self):
        await self.start()
        t = self.admin_token
        demo_project = self.data["demo"]["id"]
        _, _, body = await self.request("GET", f"/v3/role_assignments?scope.project.id={demo_project}", token=t)
        self.assertEqual([a["user"]["id"] for a in body["role_assignments"]], [self.data["demo_user"]["id"]])
        self.assertEqual(body["role_assignments"][0]["scope"], {"project": {"id": demo_project}})
        _, _, body = await self.request("GET", "/v3/role_assignments", token=t)
        self.assertEqual(len(body["role_assignments"]), 2)
        _, _, body = await self.request("GET", "/v3/role_assignments?group.id=x", token=t)
        self.assertEqual(body["role_assignments"], [])

    @async_test
    async def test_ec2_credentials_crud_for_oneself(self):
        await self.start()
        t, me, project = self.demo_token, self.data["demo_user"]["id"], self.data["demo"]["id"]
        base = f"/v3/users/{me}/credentials/OS-EC2"
        status, _, body = await self.request("POST", base, {"tenant_id": project}, t)
        self.assertEqual(status, 201)
        cred = body["credential"]
        self.assertEqual((cred["user_id"], cred["tenant_id"]), (me, project))
        self.assertTrue(cred["access"] and cred["secret"])
        _, _, body = await self.request("GET", base, token=t)
        self.assertEqual([c["access"] for c in body["credentials"]], [cred["access"]])
        status, _, body = await self.request("GET", f"{base}/{cred['access']}", token=t)
        self.assertEqual((status, body["credential"]["secret"]), (200, cred["secret"]))
        self.assertEqual((await self.request("DELETE", f"{base}/{cred['access']}", token=t))[0], 204)
        self.assertKeystoneError(await self.request("GET", f"{base}/{cred['access']}", token=t), 404, "Not Found")

    @async_test
    async def test_ec2_credentials_need_a_role_on_the_project_and_a_body(self):
        await self.start()
        base = f"/v3/users/{self.data['demo_user']['id']}/credentials/OS-EC2"
        result = await self.request("POST", base, {"tenant_id": self.data["admin_project"]["id"]}, self.demo_token)
        self.assertKeystoneError(result, 403, "Forbidden")
        self.assertKeystoneError(
            await self.request("POST", base, {"tenant_id": "nope"}, self.demo_token), 404, "Not Found"
        )
        self.assertKeystoneError(await self.request("POST", base, {}, self.demo_token), 400, "Bad Request")

    @async_test
    async def test_admin_manages_another_users_ec2_credentials(self):
        await self.start()
        base = f"/v3/users/{self.data['demo_user']['id']}/credentials/OS-EC2"
        status, _, body = await self.request("POST", base, {"tenant_id": self.data["demo"]["id"]}, self.admin_token)
        self.assertEqual(status, 201)
        _, _, listed = await self.request("GET", base, token=self.demo_token)
        self.assertEqual([c["access"] for c in listed["credentials"]], [body["credential"]["access"]])

    @async_test
    async def test_self_service_password_change_revokes_tokens(self):
        await self.start()
        me = self.data["demo_user"]["id"]
        wrong = {"user": {"original_password": "nope", "password": "n3w"}}
        self.assertKeystoneError(
            await self.request("POST", f"/v3/users/{me}/password", wrong, self.demo_token), 401, "Unauthorized"
        )
        right = {"user": {"original_password": DEMO_PASSWORD, "password": "n3w"}}
        status, _, _ = await self.request("POST", f"/v3/users/{me}/password", right, self.demo_token)
        self.assertEqual(status, 204)
        self.assertKeystoneError(
            await self.request("GET", "/v3/auth/projects", token=self.demo_token), 401, "Unauthorized"
        )
        await self.server.login("demo", "n3w", "demo")

    @async_test
    async def test_admin_disables_a_user_with_patch(self):
        await self.start()
        me = self.data["demo_user"]["id"]
        status, _, body = await self.request("PATCH", f"/v3/users/{me}", {"user": {"enabled": False}}, self.admin_token)
        self.assertEqual((status, body["user"]["enabled"]), (200, False))
        result = await self.request("POST", "/v3/auth/tokens", password_auth("demo", DEMO_PASSWORD, "demo"))
        self.assertKeystoneError(result, 401, "Unauthorized")

    @async_test
    async def test_unknown_paths_and_methods_answer_keystone_errors(self):
        await self.start()
        self.assertKeystoneError(await self.request("GET", "/v3/nothing", token=self.admin_token), 404, "Not Found")
        result = await self.request("PUT", "/v3/users", token=self.admin_token)
        self.assertKeystoneError(result, 405, "Method Not Allowed")
        self.assertIn("GET", result[1].getRawHeaders("allow")[0])
        result = await self.request("POST", "/v3/projects", None, self.admin_token)
        self.assertKeystoneError(result, 400, "Bad Request")

    @async_test
    async def test_catalog_administration_is_read_only_and_for_admins(self):
        await self.start()
        _, _, body = await self.request("GET", "/v3/services?type=identity", token=self.admin_token)
        (service,) = body["services"]
        status, _, one = await self.request("GET", f"/v3/services/{service['id']}", token=self.admin_token)
        self.assertEqual((status, one["service"]["name"]), (200, "keystone"))
        _, _, body = await self.request(
            "GET", f"/v3/endpoints?service_id={service['id']}&interface=public", token=self.admin_token
        )
        self.assertEqual([e["url"] for e in body["endpoints"]], [self.server.url + "/v3"])
        self.assertKeystoneError(await self.request("GET", "/v3/endpoints", token=self.demo_token), 403, "Forbidden")


class BrokenDatabase:
    """Fails every transaction, as a database that lost its disk would."""

    def run(self, fn, *args, **kwargs):
        return defer.fail(exception.DBError(reason="disk I/O error at /var/lib/secret/path"))


class InternalErrorTests(IdentityHTTPTestCase):
    @async_test
    async def test_a_database_failure_is_a_500_that_shows_no_internals(self):
        await self.start()
        self.patch(self.server.api, "db", BrokenDatabase())
        for method, path, body in (
            ("GET", "/v3/auth/projects", None),
            ("POST", "/v3/auth/tokens", password_auth("demo", DEMO_PASSWORD, "demo")),
        ):
            result = await self.request(method, path, body, self.demo_token)
            self.assertKeystoneError(result, 500, "Internal Server Error")
            self.assertNotIn("secret", result[2]["error"]["message"])


class ListeningServiceTests(unittest.TestCase):
    @async_test
    async def test_identity_service_listens_on_the_configured_address(self):
        from treq.client import HTTPClient
        from twisted.web.client import Agent, HTTPConnectionPool

        from nova_twisted.identity import build_identity_service

        url = f"sqlite:///{self.mktemp()}.sqlite"
        database = migrated_database(url, reactor, self)
        service = build_identity_service(make_conf(url, bind_host="127.0.0.1", bind_port=0), database, reactor)
        service.startService()
        self.addCleanup(service.stopService)
        port = service._port.getHost()
        self.assertEqual(port.host, "127.0.0.1")
        pool = HTTPConnectionPool(reactor, persistent=False)
        response = await HTTPClient(Agent(reactor, pool=pool)).get(f"http://127.0.0.1:{port.port}/v3")
        body = await response.json()
        self.assertEqual((response.code, body["version"]["id"]), (200, "v3.14"))
