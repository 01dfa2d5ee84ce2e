"""IdentityAPI: authentication, tokens, users, projects, roles and EC2 credentials on the database.

Every public method returns a Deferred. Tokens are opaque random strings
(``secrets.token_urlsafe(32)``) that are handed to the client once and
stored only as their SHA-256; passwords are stored only as bcrypt or scrypt
hashes, computed in a thread so a login never stalls the reactor. Failed
logins take as long for an unknown user as for a wrong password, and say
the same thing.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
import uuid

from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from nova_twisted import exception, utils
from nova_twisted.db import identity as db
from nova_twisted.identity import passwords

log = Logger(namespace="nova.identity")

#: Expired tokens are deleted at most this often, by the next token issued.
FLUSH_INTERVAL = 3600.0


def _deferred(fn):
    """Make ``async def`` methods return Deferreds, as the house rule wants."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return defer.ensureDeferred(fn(*args, **kwargs))

    return wrapper


def hash_token(token: str) -> str:
    """Return the key a token is stored under: the hex SHA-256 of its text."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_audit_id() -> str:
    """Return a fresh audit id: 22 URL-safe characters, like Keystone's."""
    return secrets.token_urlsafe(16)[:22]


def unauthorized() -> exception.NotAuthenticated:
    """The one 401 every failed authentication answers with, whatever failed."""
    return exception.NotAuthenticated("The request you have made requires authentication.")


class IdentityAPI:
    """Identity operations on a :class:`nova_twisted.db.api.Database`.

    ``reactor`` runs password hashing in its thread pool; ``clock``
    (defaults to the reactor) gives the time tokens are issued and expire.
    """

    def __init__(
        self,
        database,
        reactor,
        token_expiration: int = 3600,
        hash_algorithm: str = "bcrypt",
        hash_rounds: int = 12,
        clock=None,
    ):
        self.db = database
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.token_expiration = token_expiration
        self.hash_algorithm = hash_algorithm
        self.hash_rounds = hash_rounds
        self._dummy = passwords.DummyHash()
        self._roles_ready = False
        self._last_flush: float | None = None

    @classmethod
    def from_config(cls, conf, database, reactor, clock=None) -> "IdentityAPI":
        ident = conf.identity
        return cls(
            database,
            reactor,
            token_expiration=ident.token_expiration,
            hash_algorithm=ident.password_hash_algorithm,
            hash_rounds=ident.password_hash_rounds,
            clock=clock,
        )

    # -- helpers -----------------------------------------------------------------
    def now(self) -> dt.datetime:
        """Return naive UTC now, from the injected clock."""
        return utils.utcnow(self.clock)

    def _in_thread(self, fn, *args):
        return deferToThreadPool(self.reactor, self.reactor.getThreadPool(), fn, *args)

    def hash_password(self, password: str):
        """Deferred firing with the stored form of ``password``, hashed in a thread."""
        return self._in_thread(passwords.hash_password, password, self.hash_algorithm, self.hash_rounds)

    @_deferred
    async def ensure_default_roles(self) -> list[dict]:
        """Create admin, member and reader if missing (once per process); fire with them."""
        try:
            roles = await self.db.run(db.ensure_default_roles)
        except exception.DBDuplicateEntry:
            # Another process created them at the same moment: theirs will do.
            roles = await self.db.run(db.ensure_default_roles)
        self._roles_ready = True
        return roles

    async def _roles(self) -> None:
        if not self._roles_ready:
            await self.ensure_default_roles()

    # -- authentication ---------------------------------------------------------
    @_deferred
    async def check_password(self, password: str, user_id: str | None = None, user_name: str | None = None) -> dict:
        """Fire with the user (no hash) whose password this is; fail with NotAuthenticated.

        Unknown user, disabled user and wrong password fail alike and take
        alike long. A hash made at another cost or algorithm than the
        configured one is replaced on a successful login.
        """
        if not isinstance(password, str) or (user_id is None and user_name is None):
            raise unauthorized()
        record = await self.db.run(db.get_user_credentials, user_id, user_name)
        stored = record["password_hash"] if record else None
        if not stored:
            stored = self._dummy.get(self.hash_algorithm, self.hash_rounds)
        ok = await self._in_thread(passwords.verify_password, password, stored)
        if not ok or record is None or not record.get("password_hash") or not record["enabled"]:
            log.info(
                "password authentication failed for user {user}",
                user=user_id if user_id is not None else user_name,
            )
            raise unauthorized()
        if passwords.needs_rehash(record["password_hash"], self.hash_algorithm, self.hash_rounds):
            new_hash = await self.hash_password(password)
            await self.db.run(db.replace_password_hash, record["id"], record["password_hash"], new_hash)
        record.pop("password_hash", None)
        return record

    @_deferred
    async def issue_token(
        self,
        user: dict,
        methods: list[str],
        project_id: str | None = None,
        project_name: str | None = None,
        unscoped: bool = False,
        parent: dict | None = None,
    ) -> tuple[str, dict]:
        """Issue a token for an authenticated user; fire with ``(token text, context)``.

        Scope: the project by id or name, else (unless ``unscoped``) the
        user's default project when they have a role there, else none. A
        project that is missing, disabled or where the user holds no role
        fails with NotAuthenticated. ``parent`` is the context of the token
        this one was obtained with: the new token keeps its expiry and audit
        chain. The context is the one :meth:`validate_token` gives.
        """
        now = self.now()
        scoped_project = None
        if project_id is not None or project_name is not None:
            scoped_project = await self._project_for_scope(user["id"], project_id, project_name)
        elif not unscoped and user.get("default_project_id"):
            try:
                scoped_project = await self._project_for_scope(user["id"], user["default_project_id"], None)
            except exception.NotAuthenticated:
                scoped_project = None  # no role there any more: an unscoped token, as Keystone gives
        expires_at = now + dt.timedelta(seconds=self.token_expiration)
        audit_ids = [new_audit_id()]
        if parent is not None:
            expires_at = min(expires_at, parent["token"]["expires_at"])
            audit_ids.append(parent["token"]["audit_ids"][-1])
        token = secrets.token_urlsafe(32)
        flush = self._last_flush is None or self.clock.seconds() - self._last_flush >= FLUSH_INTERVAL
        if flush:
            self._last_flush = self.clock.seconds()
        context = await self.db.run(
            _store_token,
            hash_token(token),
            user["id"],
            scoped_project["id"] if scoped_project else None,
            methods,
            audit_ids,
            now,
            expires_at,
            flush,
        )
        if context is None:  # pragma: no cover - the user was deleted in between
            raise unauthorized()
        log.info(
            "issued token {audit_id} to user {user_id} for project {project_id}",
            audit_id=audit_ids[0],
            user_id=user["id"],
            project_id=scoped_project["id"] if scoped_project else "-",
        )
        return token, context

    async def _project_for_scope(self, user_id: str, project_id: str | None, project_name: str | None) -> dict:
        try:
            if project_id is not None:
                project = await self.db.run(db.get_project, project_id)
            else:
                projects = await self.db.run(db.list_projects, project_name)
                if not projects:
                    raise exception.ProjectNotFound(project=project_name)
                project = projects[0]
        except exception.NotFound:
            log.info("scope to unknown project {project} refused", project=project_id or project_name)
            raise unauthorized() from None
        if not project["enabled"]:
            raise unauthorized()
        roles = await self.db.run(db.roles_for, user_id, project["id"])
        if not roles:
            log.info("user {user_id} has no role on project {project_id}", user_id=user_id, project_id=project["id"])
            raise unauthorized()
        return project

    @_deferred
    async def validate_token(self, token: str | None) -> dict:
        """Fire with ``{token, user, project, roles}`` of a usable token; fail with NotAuthenticated.

        Expired, revoked, unknown tokens and tokens of disabled or deleted
        users (or projects) all fail the same way.
        """
        if not token or not isinstance(token, str) or len(token) > 1024:
            raise unauthorized()
        context = await self.db.run(db.token_context, hash_token(token), self.now())
        if context is None:
            raise unauthorized()
        return context

    @_deferred
    async def revoke_token(self, token: str) -> bool:
        """Revoke a token; fire with True if it was usable until now."""
        revoked = await self.db.run(db.revoke_token, hash_token(token))
        if revoked:
            log.info("token revoked")
        return revoked

    def flush_expired_tokens(self):
        """Deferred firing with how many expired tokens were deleted."""
        return self.db.run(db.flush_expired_tokens, self.now())

    # -- projects ----------------------------------------------------------------
    def create_project(self, name: str, description: str = "", enabled: bool = True):
        """Deferred firing with the new project; fails with Duplicate when the name is taken."""
        return self.db.run(db.create_project, name, self.now(), description, enabled)

    def get_project(self, project_id: str):
        return self.db.run(db.get_project, project_id)

    def list_projects(self, name: str | None = None, enabled: bool | None = None):
        return self.db.run(db.list_projects, name, enabled)

    def update_project(self, project_id: str, **values):
        return self.db.run(db.update_project, project_id, self.now(), **values)

    def delete_project(self, project_id: str):
        return self.db.run(db.delete_project, project_id)

    def projects_for_user(self, user_id: str, enabled_only: bool = False):
        """Deferred firing with the projects where the user holds a role."""
        return self.db.run(db.projects_for_user, user_id, enabled_only)

    # -- users -------------------------------------------------------------------
    @_deferred
    async def create_user(
        self,
        name: str,
        password: str | None = None,
        email: str | None = None,
        default_project_id: str | None = None,
        enabled: bool = True,
    ) -> dict:
        """Fire with the new user (never its hash); fails with Duplicate or ProjectNotFound."""
        password_hash = await self.hash_password(password) if password else None
        return await self.db.run(db.create_user, name, password_hash, self.now(), email, default_project_id, enabled)

    def get_user(self, user_id: str):
        return self.db.run(db.get_user, user_id)

    def list_users(self, name: str | None = None, enabled: bool | None = None):
        return self.db.run(db.list_users, name, enabled)

    @_deferred
    async def update_user(self, user_id: str, password: str | None = None, **values) -> dict:
        """Change a user; a new password (hashed here) or disabling revokes their tokens."""
        if password is not None:
            values["password_hash"] = await self.hash_password(password)
        return await self.db.run(db.update_user, user_id, self.now(), **values)

    @_deferred
    async def change_password(self, user_id: str, original_password: str, password: str) -> None:
        """Self-service change: check the old password, store the new one, revoke every token."""
        await self.check_password(original_password, user_id=user_id)
        await self.update_user(user_id, password=password)

    def delete_user(self, user_id: str):
        return self.db.run(db.delete_user, user_id)

    # -- roles and assignments ---------------------------------------------------
    @_deferred
    async def list_roles(self, name: str | None = None) -> list[dict]:
        await self._roles()
        return await self.db.run(db.list_roles, name)

    @_deferred
    async def get_role(self, role_id: str) -> dict:
        await self._roles()
        return await self.db.run(db.get_role, role_id)

    @_deferred
    async def find_role(self, name_or_id: str) -> dict:
        await self._roles()
        return await self.db.run(db.find_role, name_or_id)

    def create_role(self, name: str):
        return self.db.run(db.create_role, name)

    def delete_role(self, role_id: str):
        return self.db.run(db.delete_role, role_id)

    @_deferred
    async def add_role_assignment(self, user_id: str, project_id: str, role_id: str) -> None:
        await self._roles()
        await self.db.run(db.add_role_assignment, user_id, project_id, role_id)

    def remove_role_assignment(self, user_id: str, project_id: str, role_id: str):
        return self.db.run(db.remove_role_assignment, user_id, project_id, role_id)

    def has_role_assignment(self, user_id: str, project_id: str, role_id: str):
        return self.db.run(db.has_role_assignment, user_id, project_id, role_id)

    def list_role_assignments(self, user_id=None, project_id=None, role_id=None):
        return self.db.run(db.list_role_assignments, user_id, project_id, role_id)

    def roles_for(self, user_id: str, project_id: str):
        return self.db.run(db.roles_for, user_id, project_id)

    # -- EC2 credentials ---------------------------------------------------------
    def create_ec2_credential(self, user_id: str, project_id: str):
        """Deferred firing with a new ``{access, secret, user_id, project_id}`` pair."""
        return self.db.run(
            db.create_ec2_credential, uuid.uuid4().hex, secrets.token_hex(16), user_id, project_id, self.now()
        )

    def list_ec2_credentials(self, user_id: str):
        return self.db.run(db.list_ec2_credentials, user_id)

    def get_ec2_credential(self, user_id: str, access: str):
        return self.db.run(db.get_ec2_credential, access, user_id)

    def delete_ec2_credential(self, user_id: str, access: str):
        return self.db.run(db.delete_ec2_credential, user_id, access)

    @_deferred
    async def ec2_context(self, access: str) -> dict:
        """For the EC2 API: fire with ``{credential (with secret), user, project, roles}``.

        Fails with NotAuthenticated when the access key is unknown, or its
        user or project is disabled, or the user no longer holds a role there.
        """
        context = await self.db.run(_ec2_context, access)
        if context is None:
            raise unauthorized()
        return context


def _store_token(session, id_hash, user_id, project_id, methods, audit_ids, now, expires_at, flush):
    if flush:
        db.flush_expired_tokens(session, now)
    db.create_token(session, id_hash, user_id, project_id, methods, audit_ids, now, expires_at)
    return db.token_context(session, id_hash, now)


def _ec2_context(session, access):
    try:
        credential = db.get_ec2_credential(session, access)
        user = db.get_user(session, credential["user_id"])
        project = db.get_project(session, credential["project_id"])
    except exception.NotFound:
        return None
    if not user["enabled"] or not project["enabled"]:
        return None
    roles = db.roles_for(session, user["id"], project["id"])
    if not roles:
        return None
    return {"credential": credential, "user": user, "project": project, "roles": roles}
