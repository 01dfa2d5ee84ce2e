"""IdentityAPI on SQLite: authentication, tokens (expiry, revocation, scope), users, roles, EC2 credentials.

Time comes from a task.Clock; password hashing and the database run in the
real reactor's threads.
"""

import datetime as dt

import sqlalchemy as sa
from twisted.internet import reactor, task
from twisted.trial import unittest

from nova_twisted import exception
from nova_twisted.db.models import Role, Token, User
from nova_twisted.identity import passwords
from nova_twisted.identity.api import IdentityAPI, hash_token
from tests.identity_fixtures import DEMO_PASSWORD, async_test, migrated_database, seed

START = 1_800_000_000.0


class IdentityAPITests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(START)
        self.database = migrated_database(f"sqlite:///{self.mktemp()}.sqlite", reactor, self)
        self.api = IdentityAPI(self.database, reactor, token_expiration=600, hash_rounds=4, clock=self.clock)

    async def login_demo(self, **scope):
        user = await self.api.check_password(DEMO_PASSWORD, user_name="demo")
        return await self.api.issue_token(user, ["password"], **scope)

    @async_test
    async def test_password_login_issues_a_token_scoped_to_the_default_project(self):
        data = await seed(self.api)
        token, context = await self.login_demo()
        self.assertGreaterEqual(len(token), 40)
        self.assertEqual(context["user"]["id"], data["demo_user"]["id"])
        self.assertEqual(context["project"]["id"], data["demo"]["id"])
        self.assertEqual([r["name"] for r in context["roles"]], ["member"])
        self.assertEqual(context["token"]["methods"], ["password"])
        self.assertEqual(context["token"]["expires_at"] - context["token"]["issued_at"], dt.timedelta(seconds=600))
        validated = await self.api.validate_token(token)
        self.assertEqual(validated["user"]["name"], "demo")
        self.assertEqual(validated["project"]["name"], "demo")

    @async_test
    async def test_tokens_are_stored_only_as_their_sha256(self):
        await seed(self.api)
        token, _ = await self.login_demo()
        rows = await self.database.run(lambda s: [t.to_dict() for t in s.scalars(sa.select(Token))])
        self.assertEqual([r["id_hash"] for r in rows], [hash_token(token)])
        for row in rows:
            self.assertNotIn(token, repr(row))

    @async_test
    async def test_wrong_password_and_unknown_user_fail_alike(self):
        await seed(self.api)
        with self.assertRaises(exception.NotAuthenticated) as wrong:
            await self.api.check_password("not it", user_name="demo")
        with self.assertRaises(exception.NotAuthenticated) as unknown:
            await self.api.check_password("not it", user_name="nobody")
        self.assertEqual(str(wrong.exception), str(unknown.exception))
        self.assertEqual(str(wrong.exception), "The request you have made requires authentication.")

    @async_test
    async def test_a_disabled_user_cannot_log_in_and_loses_their_tokens(self):
        data = await seed(self.api)
        token, _ = await self.login_demo()
        await self.api.update_user(data["demo_user"]["id"], enabled=False)
        with self.assertRaises(exception.NotAuthenticated):
            await self.api.check_password(DEMO_PASSWORD, user_name="demo")
        with self.assertRaises(exception.NotAuthenticated):
            await self.api.validate_token(token)
        await self.api.update_user(data["demo_user"]["id"], enabled=True)
        with self.assertRaises(exception.NotAuthenticated):
            await self.api.validate_token(token)  # revoked for good, not only while disabled

    @async_test
    async def test_a_token_expires_after_token_expiration_seconds(self):
        await seed(self.api)
        token, _ = await self.login_demo()
        self.clock.advance(599)
        await self.api.validate_token(token)
        self.clock.advance(1)
        with self.assertRaises(exception.NotAuthenticated):
            await self.api.validate_token(token)

    @async_test
    async def test_a_revoked_token_is_rejected_and_others_stay_valid(self):
        await seed(self.api)
        first, _ = await self.login_demo()
        second, _ = await self.login_demo()
        self.assertTrue(await self.api.revoke_token(first))
        self.assertFalse(await self.api.revoke_token(first))
        with self.assertRaises(exception.NotAuthenticated):
            await self.api.validate_token(first)
        await self.api.validate_token(second)

    @async_test
    async def test_a_token_from_a_token_keeps_the_expiry_and_audit_chain(self):
        data = await seed(self.api)
        first, parent = await self.login_demo(unscoped=True)
        self.assertIsNone(parent["project"])
        self.clock.advance(100)
        second, child = await self.api.issue_token(
            parent["user"], ["token"], project_id=data["demo"]["id"], parent=parent
        )
        self.assertNotEqual(first, second)
        self.assertEqual(child["token"]["expires_at"], parent["token"]["expires_at"])
        self.assertEqual(child["token"]["audit_ids"][1], parent["token"]["audit_ids"][0])
        self.assertEqual(child["project"]["id"], data["demo"]["id"])

    @async_test
    async def test_scoping_to_a_project_without_a_role_is_refused(self):
        data = await seed(self.api)
        user = await self.api.check_password(DEMO_PASSWORD, user_name="demo")
        for scope in ({"project_id": data["admin_project"]["id"]}, {"project_name": "admin"}, {"project_name": "nope"}):
            with self.assertRaises(exception.NotAuthenticated):
                await self.api.issue_token(user, ["password"], **scope)

    @async_test
    async def test_losing_the_last_role_invalidates_a_scoped_token_at_once(self):
        data = await seed(self.api)
        token, _ = await self.login_demo()
        await self.api.remove_role_assignment(
            data["demo_user"]["id"], data["demo"]["id"], data["roles"]["member"]["id"]
        )
        with self.assertRaises(exception.NotAuthenticated):
            await self.api.validate_token(token)
        _, context = await self.login_demo()
        self.assertIsNone(context["project"], "no role on the default project: an unscoped token")

    @async_test
    async def test_roles_are_read_at_validation_time(self):
        data = await seed(self.api)
        token, _ = await self.login_demo()
        await self.api.add_role_assignment(data["demo_user"]["id"], data["demo"]["id"], data["roles"]["reader"]["id"])
        context = await self.api.validate_token(token)
        self.assertEqual(sorted(r["name"] for r in context["roles"]), ["member", "reader"])

    @async_test
    async def test_disabling_or_deleting_the_project_invalidates_its_tokens(self):
        data = await seed(self.api)
        token, _ = await self.login_demo()
        await self.api.update_project(data["demo"]["id"], enabled=False)
        with self.assertRaises(exception.NotAuthenticated):
            await self.api.validate_token(token)
        await self.api.update_project(data["demo"]["id"], enabled=True)
        await self.api.validate_token(token)
        await self.api.delete_project(data["demo"]["id"])
        with self.assertRaises(exception.NotAuthenticated):
            await self.api.validate_token(token)

    @async_test
    async def test_changing_the_password_revokes_tokens_and_needs_the_old_one(self):
        data = await seed(self.api)
        token, _ = await self.login_demo()
        with self.assertRaises(exception.NotAuthenticated):
            await self.api.change_password(data["demo_user"]["id"], "wrong", "new-password")
        await self.api.validate_token(token)
        await self.api.change_password(data["demo_user"]["id"], DEMO_PASSWORD, "new-password")
        with self.assertRaises(exception.NotAuthenticated):
            await self.api.validate_token(token)
        await self.api.check_password("new-password", user_name="demo")

    @async_test
    async def test_a_hash_of_another_cost_is_upgraded_at_login_without_revoking_tokens(self):
        await seed(self.api)
        token, _ = await self.login_demo()
        stronger = IdentityAPI(self.database, reactor, hash_rounds=5, clock=self.clock)
        await stronger.check_password(DEMO_PASSWORD, user_name="demo")
        stored = await self.database.run(
            lambda s: s.scalars(sa.select(User.password_hash).where(User.name == "demo")).one()
        )
        self.assertFalse(passwords.needs_rehash(stored, "bcrypt", 5))
        await self.api.validate_token(token)
        await self.api.check_password(DEMO_PASSWORD, user_name="demo")

    @async_test
    async def test_expired_tokens_are_flushed(self):
        await seed(self.api)
        await self.login_demo()
        self.clock.advance(601)
        live, _ = await self.login_demo()
        self.assertEqual(await self.api.flush_expired_tokens(), 1)
        await self.api.validate_token(live)

    @async_test
    async def test_expired_tokens_are_flushed_by_a_login_once_an_hour(self):
        await seed(self.api)
        await self.login_demo()
        self.clock.advance(3600)
        live, _ = await self.login_demo()
        count = await self.database.run(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Token)))
        self.assertEqual(count, 1, "the expired token went away with the next login")
        await self.api.validate_token(live)

    @async_test
    async def test_default_roles_are_created_on_first_use(self):
        roles = await self.api.list_roles()
        self.assertEqual(sorted(r["name"] for r in roles), ["admin", "member", "reader"])
        again = IdentityAPI(self.database, reactor, hash_rounds=4, clock=self.clock)
        self.assertEqual(sorted(r["name"] for r in await again.list_roles()), ["admin", "member", "reader"])
        count = await self.database.run(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Role)))
        self.assertEqual(count, 3)

    @async_test
    async def test_duplicate_names_are_conflicts(self):
        await seed(self.api)
        with self.assertRaises(exception.Conflict):
            await self.api.create_project("demo")
        with self.assertRaises(exception.Conflict):
            await self.api.create_user("demo", "pw")
        with self.assertRaises(exception.Conflict):
            await self.api.create_role("member")

    @async_test
    async def test_ec2_credentials_belong_to_a_user_and_resolve_to_their_project(self):
        data = await seed(self.api)
        user_id, project_id = data["demo_user"]["id"], data["demo"]["id"]
        cred = await self.api.create_ec2_credential(user_id, project_id)
        self.assertEqual(len(cred["access"]), 32)
        self.assertEqual(len(cred["secret"]), 32)
        listed = await self.api.list_ec2_credentials(user_id)
        self.assertEqual([c["access"] for c in listed], [cred["access"]])
        context = await self.api.ec2_context(cred["access"])
        self.assertEqual(context["credential"]["secret"], cred["secret"])
        self.assertEqual(context["project"]["id"], project_id)
        self.assertEqual([r["name"] for r in context["roles"]], ["member"])
        with self.assertRaises(exception.NotFound):
            await self.api.get_ec2_credential(data["admin_user"]["id"], cred["access"])
        await self.api.delete_ec2_credential(user_id, cred["access"])
        self.assertEqual(await self.api.list_ec2_credentials(user_id), [])
        with self.assertRaises(exception.NotAuthenticated):
            await self.api.ec2_context(cred["access"])

    @async_test
    async def test_deleting_a_user_removes_their_tokens_credentials_and_assignments(self):
        data = await seed(self.api)
        token, _ = await self.login_demo()
        await self.api.create_ec2_credential(data["demo_user"]["id"], data["demo"]["id"])
        await self.api.delete_user(data["demo_user"]["id"])
        with self.assertRaises(exception.NotAuthenticated):
            await self.api.validate_token(token)
        self.assertEqual(await self.api.list_role_assignments(user_id=data["demo_user"]["id"]), [])
        self.assertEqual(await self.api.list_ec2_credentials(data["demo_user"]["id"]), [])
        with self.assertRaises(exception.UserNotFound):
            await self.api.get_user(data["demo_user"]["id"])

    @async_test
    async def test_scrypt_hashes_work_end_to_end(self):
        api = IdentityAPI(self.database, reactor, hash_algorithm="scrypt", hash_rounds=4, clock=self.clock)
        await api.create_user("s", "scrypt-pw")
        user = await api.check_password("scrypt-pw", user_name="s")
        stored = await self.database.run(
            lambda s: s.scalars(sa.select(User.password_hash).where(User.name == "s")).one()
        )
        self.assertTrue(stored.startswith("scrypt$"))
        _, context = await api.issue_token(user, ["password"])
        self.assertIsNone(context["project"])
