"""Token validators: local (database) and Keystone over HTTP (against our own identity API on 127.0.0.1)."""

import datetime as dt

import sqlalchemy as sa
from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from nova_twisted import exception
from nova_twisted.api.auth import Authenticator, ITokenValidator
from nova_twisted.db.models import Token
from nova_twisted.identity import build_validator
from nova_twisted.identity.api import hash_token
from nova_twisted.identity.validator import IdentityUnavailable, KeystoneTokenValidator, LocalTokenValidator
from tests.identity_fixtures import DEMO_PASSWORD, async_test, make_conf, migrated_database, seed, serve

SERVICE_PASSWORD = "service-Pa55"


class ValidatorTestCase(unittest.TestCase):
    async def start(self):
        url = f"sqlite:///{self.mktemp()}.sqlite"
        self.conf = make_conf(url)
        self.database = migrated_database(url, reactor, self)
        self.server = serve(self, self.conf, self.database, reactor)
        self.data = await seed(self.server.api)
        api = self.server.api
        service_project = await api.create_project("service")
        service_role = await api.create_role("service")
        nova = await api.create_user("nova", SERVICE_PASSWORD)
        await api.add_role_assignment(nova["id"], service_project["id"], service_role["id"])
        self.demo_token, _ = await self.server.login("demo", DEMO_PASSWORD, "demo")

    def keystone_validator(self, **kwargs) -> KeystoneTokenValidator:
        options = {"auth_url": self.server.url + "/v3", "username": "nova", "password": SERVICE_PASSWORD}
        options.update(kwargs)
        validator = KeystoneTokenValidator(reactor=reactor, timeout=5, **options)
        self.addCleanup(validator.close)
        return validator

    def assertIsDemo(self, info):
        self.assertEqual(info["user_id"], self.data["demo_user"]["id"])
        self.assertEqual(info["user_name"], "demo")
        self.assertEqual(info["project_id"], self.data["demo"]["id"])
        self.assertEqual(info["project_name"], "demo")
        self.assertEqual(info["roles"], ["member"])
        self.assertIsInstance(info["expires_at"], dt.datetime)
        self.assertIsNone(info["expires_at"].tzinfo)


class TokenValidatorContract:
    """What every ITokenValidator must do; subclasses give ``make_validator()``."""

    def make_validator(self):
        raise NotImplementedError

    @async_test
    async def test_provides_the_interface(self):
        await self.start()
        verifyObject(ITokenValidator, self.make_validator())

    @async_test
    async def test_a_valid_token_tells_who_and_which_project(self):
        await self.start()
        info = await self.make_validator().validate(self.demo_token)
        self.assertEqual(set(info), {"user_id", "user_name", "project_id", "project_name", "roles", "expires_at"})
        self.assertIsDemo(info)

    @async_test
    async def test_an_unscoped_token_has_no_project_and_no_roles(self):
        await self.start()
        token, _ = await self.server.login("demo", DEMO_PASSWORD, scope="unscoped")
        info = await self.make_validator().validate(token)
        self.assertEqual((info["user_name"], info["project_id"], info["roles"]), ("demo", None, []))

    @async_test
    async def test_missing_unknown_and_oversized_tokens_are_refused(self):
        await self.start()
        validator = self.make_validator()
        for bad in (None, "", "forged-token", "x" * 10000):
            with self.assertRaises(exception.NotAuthenticated):
                await validator.validate(bad)

    @async_test
    async def test_a_revoked_token_is_refused(self):
        await self.start()
        validator = self.make_validator()
        await validator.validate(self.demo_token)
        await self.server.api.revoke_token(self.demo_token)
        with self.assertRaises(exception.NotAuthenticated):
            await validator.validate(self.demo_token)

    @async_test
    async def test_an_expired_token_is_refused(self):
        await self.start()
        past = dt.datetime(2001, 1, 1)
        await self.database.run(
            lambda s: s.execute(
                sa.update(Token).where(Token.id_hash == hash_token(self.demo_token)).values(expires_at=past)
            )
        )
        with self.assertRaises(exception.NotAuthenticated):
            await self.make_validator().validate(self.demo_token)

    @async_test
    async def test_the_token_of_a_disabled_user_is_refused(self):
        await self.start()
        await self.server.api.update_user(self.data["demo_user"]["id"], enabled=False)
        with self.assertRaises(exception.NotAuthenticated):
            await self.make_validator().validate(self.demo_token)


class LocalValidatorContractTests(TokenValidatorContract, ValidatorTestCase):
    def make_validator(self):
        return LocalTokenValidator(self.server.api)


class KeystoneValidatorContractTests(TokenValidatorContract, ValidatorTestCase):
    def make_validator(self):
        return self.keystone_validator()


class LocalValidatorTests(ValidatorTestCase):
    @async_test
    async def test_build_validator_gives_the_local_validator_by_default(self):
        await self.start()
        validator = build_validator(self.conf, self.database, reactor)
        self.assertIsInstance(validator, LocalTokenValidator)
        self.assertIsDemo(await validator.validate(self.demo_token))

    @async_test
    async def test_authenticator_on_the_local_validator_sets_the_request_context(self):
        await self.start()
        authenticator = Authenticator(build_validator(self.conf, self.database, reactor), reactor)
        info = await authenticator.identify(self.demo_token)
        self.assertEqual(info["project_name"], "demo")
        with self.assertRaises(exception.NotAuthenticated):
            await authenticator.identify("forged")


class KeystoneValidatorTests(ValidatorTestCase):
    @async_test
    async def test_keystone_validator_asks_keystone_with_a_service_token(self):
        await self.start()
        validator = self.keystone_validator()
        verifyObject(ITokenValidator, validator)
        self.assertIsDemo(await validator.validate(self.demo_token))
        service_token = validator._service_token
        self.assertTrue(service_token)
        self.assertIsDemo(await validator.validate(self.demo_token))
        self.assertEqual(validator._service_token, service_token, "the service token is reused until it expires")

    @async_test
    async def test_a_revoked_service_token_is_replaced_once_and_validation_goes_on(self):
        await self.start()
        validator = self.keystone_validator()
        await validator.validate(self.demo_token)
        old = validator._service_token
        await self.server.api.revoke_token(old)
        self.assertIsDemo(await validator.validate(self.demo_token))
        self.assertNotEqual(validator._service_token, old)

    @async_test
    async def test_refused_service_credentials_are_503_not_401(self):
        await self.start()
        validator = self.keystone_validator(password="wrong")
        with self.assertRaises(IdentityUnavailable) as failure:
            await validator.validate(self.demo_token)
        self.assertEqual(failure.exception.code, 503)

    @async_test
    async def test_a_service_user_without_rights_cannot_validate_others_tokens(self):
        await self.start()
        validator = self.keystone_validator(username="admin", password="wrong")
        with self.assertRaises(IdentityUnavailable):
            await validator.validate(self.demo_token)
        member_validator = self.keystone_validator(username="demo", password=DEMO_PASSWORD, project_name="demo")
        admin_token, _ = await self.server.login("admin", "admin-Pa55-word!", "admin")
        with self.assertRaises(IdentityUnavailable):
            await member_validator.validate(admin_token)  # Keystone says 403: a deployment error, not the user's

    @async_test
    async def test_unreachable_keystone_fails_fast_with_503(self):
        validator = KeystoneTokenValidator("http://127.0.0.1:1/v3", "nova", "pw", reactor, timeout=2)
        self.addCleanup(validator.close)
        with self.assertRaises(IdentityUnavailable) as failure:
            await validator.validate("some-token")
        self.assertEqual(failure.exception.code, 503)
        self.assertNotIn("pw", str(failure.exception))

    @async_test
    async def test_a_keystone_that_never_answers_times_out(self):
        silent = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        self.addCleanup(silent.stopListening)
        url = f"http://127.0.0.1:{silent.getHost().port}/v3"
        validator = KeystoneTokenValidator(url, "nova", "pw", reactor, timeout=0.3)
        self.addCleanup(validator.close)
        started = reactor.seconds()
        with self.assertRaises(IdentityUnavailable):
            await validator.validate("some-token")
        self.assertLess(reactor.seconds() - started, 3)

    def test_keystone_validation_is_chosen_by_configuration(self):
        conf = make_conf(
            "sqlite://", token_validation="keystone", auth_url="http://keystone:5000/v3", username="nova", password="x"
        )
        validator = build_validator(conf, None, reactor)
        self.addCleanup(validator.close)
        self.assertIsInstance(validator, KeystoneTokenValidator)
        self.assertEqual(validator.auth_url, "http://keystone:5000/v3")
        with self.assertRaises(exception.ConfigurationError):
            build_validator(make_conf("sqlite://", token_validation="keystone"), None, reactor)
