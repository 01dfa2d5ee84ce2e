"""The identity service on the real MariaDB: the whole token life, races, and no secret stored in clear."""

import pytest
import sqlalchemy as sa
from twisted.internet import defer, reactor
from twisted.trial import unittest

from nova_twisted import exception
from nova_twisted.identity.api import IdentityAPI
from tests.conftest import mysql_scratch_url
from tests.identity_fixtures import (
    ADMIN_PASSWORD,
    DEMO_PASSWORD,
    async_test,
    make_conf,
    migrated_database,
    seed,
    serve,
)

pytestmark = pytest.mark.mysql


class IdentityOnMariaDBTests(unittest.TestCase):
    def setUp(self):
        self.url, drop = mysql_scratch_url()
        self.addCleanup(drop)
        self.database = migrated_database(self.url, reactor, self)
        self.api = IdentityAPI(self.database, reactor, token_expiration=600, hash_rounds=4)

    @async_test
    async def test_login_validate_revoke_on_mariadb(self):
        data = await seed(self.api)
        user = await self.api.check_password(DEMO_PASSWORD, user_name="demo")
        token, context = await self.api.issue_token(user, ["password"])
        self.assertEqual(context["project"]["id"], data["demo"]["id"])
        validated = await self.api.validate_token(token)
        self.assertEqual([r["name"] for r in validated["roles"]], ["member"])
        # Microseconds survive the round trip (DATETIME(6)): the expiry reads back exactly.
        self.assertEqual(validated["token"]["expires_at"], context["token"]["expires_at"])
        await self.api.revoke_token(token)
        with self.assertRaises(exception.NotAuthenticated):
            await self.api.validate_token(token)

    @async_test
    async def test_user_names_are_case_sensitive(self):
        await seed(self.api)
        with self.assertRaises(exception.NotAuthenticated):
            await self.api.check_password(DEMO_PASSWORD, user_name="DEMO")

    @async_test
    async def test_processes_creating_the_default_roles_at_once_make_exactly_three(self):
        others = [migrated_database(self.url, reactor, self) for _ in range(3)]
        apis = [IdentityAPI(db, reactor, hash_rounds=4) for db in [self.database, *others]]
        results = await defer.gatherResults([defer.ensureDeferred(api.list_roles()) for api in apis])
        for roles in results:
            self.assertEqual(sorted(r["name"] for r in roles), ["admin", "member", "reader"])
        count = await self.database.run(lambda s: s.scalar(sa.text("SELECT COUNT(*) FROM roles")))
        self.assertEqual(count, 3)

    @async_test
    async def test_concurrent_logins_each_get_their_own_valid_token(self):
        await seed(self.api)

        async def login():
            user = await self.api.check_password(DEMO_PASSWORD, user_name="demo")
            token, _ = await self.api.issue_token(user, ["password"])
            return token

        tokens = await defer.gatherResults([defer.ensureDeferred(login()) for _ in range(20)])
        self.assertEqual(len(set(tokens)), 20)
        for token in tokens:
            await self.api.validate_token(token)

    @async_test
    async def test_no_password_or_token_is_stored_in_clear(self):
        server = serve(self, make_conf(self.url), self.database, reactor)
        await seed(server.api)
        secrets = [DEMO_PASSWORD, ADMIN_PASSWORD]
        for name, password in (("demo", DEMO_PASSWORD), ("admin", ADMIN_PASSWORD)):
            token, _ = await server.login(name, password, name if name == "demo" else "admin")
            secrets.append(token)
        admin_token = secrets[-1]
        code, _, _ = await server.request(
            "POST", "/v3/users", {"user": {"name": "new", "password": "brand-new-Pa55"}}, admin_token
        )
        self.assertEqual(code, 201)
        secrets.append("brand-new-Pa55")

        def dump(session):
            text = []
            for table in sa.inspect(session.bind).get_table_names():
                for row in session.execute(sa.text(f"SELECT * FROM `{table}`")):
                    text.append(repr(tuple(row)))
            return "\n".join(text)

        everything = await self.database.run(dump)
        self.assertIn("demo", everything)
        for secret in secrets:
            self.assertNotIn(secret, everything)
