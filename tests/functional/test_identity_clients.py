"""The real `openstack` CLI and openstacksdk against our identity API, on the real MariaDB.

The API is served inside the test's reactor on a free port; the CLI runs as
a child process (getProcessOutputAndValue), so the reactor keeps serving
while it waits. Each CLI start costs about a second: invocations are few.
"""

import datetime as dt
import json
import os
import sys

import pytest
import sqlalchemy as sa
from twisted.internet import reactor, threads
from twisted.internet.utils import getProcessOutputAndValue
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from nova_twisted.db import identity as db
from nova_twisted.db import migration
from nova_twisted.db.api import Database
from nova_twisted.db.models import Token
from nova_twisted.identity import passwords
from nova_twisted.identity.api import hash_token
from nova_twisted.log import format_line
from tests.conftest import mysql_scratch_url
from tests.identity_fixtures import ADMIN_PASSWORD, DEMO_PASSWORD, async_test, make_conf, serve

pytestmark = pytest.mark.mysql

OPENSTACK = os.path.join(os.path.dirname(sys.executable), "openstack")
UNAUTHORIZED = "The request you have made requires authentication. (HTTP 401)"


def _seed(session) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    roles = {r["name"]: r for r in db.ensure_default_roles(session)}
    for user, project, role, password in (
        ("demo", "demo", "member", DEMO_PASSWORD),
        ("admin", "admin", "admin", ADMIN_PASSWORD),
    ):
        p = db.create_project(session, project, now)
        u = db.create_user(
            session, user, passwords.hash_password(password, "bcrypt", 4), now, default_project_id=p["id"]
        )
        db.add_role_assignment(session, u["id"], p["id"], roles[role]["id"])


class OpenStackClientTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url, cls.drop = mysql_scratch_url()
        migration.sync(cls.url)
        seeder = Database(cls.url, reactor=None, pool_size=1)
        seeder.run_sync(_seed)
        seeder.engine.dispose()

    @classmethod
    def tearDownClass(cls):
        cls.drop()

    def setUp(self):
        self.database = Database(self.url, reactor, pool_size=4)
        self.database.startService()
        self.addCleanup(self.database.stopService)
        self.server = serve(self, make_conf(self.url), self.database, reactor)
        self.home = self.mktemp()
        os.makedirs(self.home)

    async def openstack(self, *args, user="demo", password=DEMO_PASSWORD, project="demo", token=None):
        """Run the real CLI; return (exit status, stdout, stderr)."""
        auth = ["--os-auth-url", self.server.url + "/v3", "--os-identity-api-version", "3"]
        if token is not None:
            auth += ["--os-auth-type", "token", "--os-token", token]
        else:
            auth += ["--os-username", user, "--os-password", password, "--os-user-domain-name", "Default"]
        auth += ["--os-project-name", project, "--os-project-domain-name", "Default"]
        env = {"PATH": "/usr/bin:/bin", "HOME": self.home, "LANG": "C.UTF-8"}
        out, err, code = await getProcessOutputAndValue(OPENSTACK, auth + list(args), env=env, path=self.home)
        return code, out.decode(), err.decode()

    async def openstack_json(self, *args, **kwargs):
        code, out, err = await self.openstack(*args, "-f", "json", **kwargs)
        self.assertEqual(code, 0, err)
        return json.loads(out)

    @async_test
    async def test_member_issues_a_token_reads_the_catalog_and_manages_ec2_credentials(self):
        token = await self.openstack_json("token", "issue")
        demo_project = await self.database.run(db.find_project, "demo")
        self.assertEqual(token["project_id"], demo_project["id"])
        await self.server.api.validate_token(token["id"])

        catalog = {s["Type"]: s for s in await self.openstack_json("catalog", "list")}
        self.assertEqual(set(catalog), {"compute", "image", "identity", "ec2"})
        self.assertIn(self.server.url + "/v3", str(catalog["identity"]["Endpoints"]))
        self.assertIn("RegionOne", str(catalog["compute"]["Endpoints"]))

        created = await self.openstack_json("ec2", "credentials", "create")
        self.assertEqual(created["project_id"], demo_project["id"])
        listed = await self.openstack_json("ec2", "credentials", "list")
        self.assertIn(created["access"], [c["Access"] for c in listed])
        shown = await self.openstack_json("ec2", "credentials", "show", created["access"])
        self.assertEqual((shown["access"], shown["secret"]), (created["access"], created["secret"]))
        code, _, err = await self.openstack("ec2", "credentials", "delete", created["access"])
        self.assertEqual(code, 0, err)
        remaining = await self.database.run(db.list_ec2_credentials, token["user_id"])
        self.assertNotIn(created["access"], [c["access"] for c in remaining])

    @async_test
    async def test_admin_lists_projects_and_creates_a_user_who_can_log_in(self):
        admin = {"user": "admin", "password": ADMIN_PASSWORD, "project": "admin"}
        projects = await self.openstack_json("project", "list", **admin)
        self.assertTrue({"admin", "demo"} <= {p["Name"] for p in projects})
        await self.openstack_json("project", "create", "cli-project", "--domain", "default", **admin)
        await self.openstack_json(
            "user",
            "create",
            "cli-user",
            "--password",
            "cli-Pa55",
            "--project",
            "cli-project",
            "--domain",
            "default",
            **admin,
        )
        code, _, err = await self.openstack(
            "role", "add", "--user", "cli-user", "--project", "cli-project", "member", **admin
        )
        self.assertEqual(code, 0, err)
        token = await self.openstack_json("token", "issue", user="cli-user", password="cli-Pa55", project="cli-project")
        project = await self.database.run(db.find_project, "cli-project")
        self.assertEqual(token["project_id"], project["id"])

    @async_test
    async def test_a_member_listing_projects_sees_only_their_own(self):
        projects = await self.openstack_json("project", "list")
        self.assertEqual([p["Name"] for p in projects], ["demo"])

    @async_test
    async def test_wrong_password_is_a_clear_401(self):
        code, out, err = await self.openstack("token", "issue", password="not-the-password")
        self.assertNotEqual(code, 0)
        self.assertIn(UNAUTHORIZED, err)
        self.assertNotIn("Traceback", err)

    @async_test
    async def test_a_revoked_token_is_refused(self):
        token = (await self.openstack_json("token", "issue"))["id"]
        code, _, err = await self.openstack("token", "revoke", token)
        self.assertEqual(code, 0, err)
        code, _, err = await self.openstack("token", "issue", token=token)
        self.assertNotEqual(code, 0)
        self.assertIn(UNAUTHORIZED, err)

    @async_test
    async def test_an_expired_token_is_refused(self):
        token, _ = await self.server.login("demo", DEMO_PASSWORD, "demo")
        past = dt.datetime(2001, 1, 1)
        await self.database.run(
            lambda s: s.execute(sa.update(Token).where(Token.id_hash == hash_token(token)).values(expires_at=past))
        )
        code, _, err = await self.openstack("ec2", "credentials", "list", token=token)
        self.assertNotEqual(code, 0)
        self.assertIn(UNAUTHORIZED, err)

    @async_test
    async def test_passwords_and_tokens_never_reach_the_logs_or_the_database(self):
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        token = (await self.openstack_json("token", "issue"))["id"]
        code, _, err = await self.openstack("token", "issue", password="wrong-Pa55-guess")
        self.assertNotEqual(code, 0)
        code, _, err = await self.openstack(
            "token", "revoke", token, user="admin", password=ADMIN_PASSWORD, project="admin"
        )
        self.assertEqual(code, 0, err)
        self.assertGreater(len(events), 5)
        raw = "\n".join(formatEvent(e) + repr({k: v for k, v in e.items() if not k.startswith("log_")}) for e in events)
        lines = "\n".join(format_line(e, "nova-api", "test") for e in events)
        self.assertIn("POST /v3/auth/tokens", raw)
        for secret in (token, DEMO_PASSWORD, ADMIN_PASSWORD, "wrong-Pa55-guess"):
            self.assertNotIn(secret, raw)
            self.assertNotIn(secret, lines)

        def dump(session):
            return "\n".join(
                repr(tuple(row))
                for table in sa.inspect(session.bind).get_table_names()
                for row in session.execute(sa.text(f"SELECT * FROM `{table}`"))
            )

        everything = await self.database.run(dump)
        self.assertIn(hash_token(token), everything)
        for secret in (token, DEMO_PASSWORD, ADMIN_PASSWORD):
            self.assertNotIn(secret, everything)

    @async_test
    async def test_openstacksdk_connection_authenticates_and_reads_its_catalog(self):
        url = self.server.url

        def use_sdk():
            import openstack

            conn = openstack.connect(
                auth_url=url + "/v3",
                username="admin",
                password=ADMIN_PASSWORD,
                project_name="admin",
                user_domain_name="Default",
                project_domain_name="Default",
                identity_api_version="3",
                load_yaml_config=False,
                load_envvars=False,
            )
            try:
                conn.authorize()
                access = conn.session.auth.get_access(conn.session)
                catalog = access.service_catalog
                return {
                    "compute": catalog.url_for(service_type="compute", interface="public"),
                    "image": catalog.url_for(service_type="image", interface="internal"),
                    "identity": conn.session.get_endpoint(service_type="identity", interface="public"),
                    "roles": access.role_names,
                    "projects": sorted(p.name for p in conn.identity.projects()),
                    "me": conn.identity.get_user(access.user_id).name,
                }
            finally:
                conn.close()

        result = await threads.deferToThread(use_sdk)
        self.assertEqual(result["compute"], "http://127.0.0.1:8774/v2.1")
        self.assertEqual(result["image"], "http://127.0.0.1:9292")
        self.assertEqual(result["identity"].rstrip("/"), url + "/v3")
        self.assertEqual(result["roles"], ["admin"])
        self.assertTrue({"admin", "demo"} <= set(result["projects"]))
        self.assertEqual(result["me"], "admin")
