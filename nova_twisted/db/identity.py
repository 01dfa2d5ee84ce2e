"""Identity tables: projects, users, roles, role assignments, tokens, EC2 credentials.

Plain functions taking a Session and returning dicts, run through
``Database.run``. Users' dicts never carry the password hash except from
:func:`get_user_credentials`. Tokens are stored by the SHA-256 of their
text; ``audit_id`` holds the token's own audit id, then (for a token
obtained with another token) the first token's, separated by a space.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nova_twisted import exception
from nova_twisted.db.models import EC2Credential, Project, Role, RoleAssignment, Token, User

#: Roles every cloud has; created by :func:`ensure_default_roles`.
DEFAULT_ROLES = ("admin", "member", "reader")
DEFAULT_DOMAIN_ID = "default"


def new_id() -> str:
    """Return a new id in Keystone's form: 32 hexadecimal digits."""
    return uuid.uuid4().hex


def _user_dict(row: User) -> dict:
    data = row.to_dict()
    data.pop("password_hash", None)
    return data


# -- roles -----------------------------------------------------------------------
def ensure_default_roles(session: Session) -> list[dict]:
    """Create the admin, member and reader roles that are missing; return all three."""
    rows = {r.name: r for r in session.execute(sa.select(Role).where(Role.name.in_(DEFAULT_ROLES))).scalars()}
    for name in DEFAULT_ROLES:
        if name not in rows:
            rows[name] = Role(id=new_id(), name=name)
            session.add(rows[name])
    session.flush()
    return [rows[name].to_dict() for name in DEFAULT_ROLES]


def create_role(session: Session, name: str, role_id: str | None = None) -> dict:
    """Create a role; raise Duplicate when the name is taken."""
    if session.execute(sa.select(Role.id).where(Role.name == name)).first() is not None:
        raise exception.Duplicate(
            reason=f"Conflict occurred attempting to store role - Duplicate entry found with name {name}."
        )
    row = Role(id=role_id or new_id(), name=name)
    session.add(row)
    session.flush()
    return row.to_dict()


def _by_id_or_name(session: Session, model, name_or_id: str):
    """The row of ``model`` with this id, else the one with this name, else None."""
    return (
        session.get(model, name_or_id)
        or session.execute(sa.select(model).where(model.name == name_or_id)).scalar_one_or_none()
    )


def get_role(session: Session, role_id: str) -> dict:
    row = session.get(Role, role_id)
    if row is None:
        raise exception.RoleNotFound(f"Could not find role: {role_id}.", role=role_id)
    return row.to_dict()


def find_role(session: Session, name_or_id: str) -> dict:
    """Return the role with this id, else with this name; raise RoleNotFound."""
    row = _by_id_or_name(session, Role, name_or_id)
    if row is None:
        raise exception.RoleNotFound(f"Could not find role: {name_or_id}.", role=name_or_id)
    return row.to_dict()


def list_roles(session: Session, name: str | None = None) -> list[dict]:
    query = sa.select(Role).order_by(Role.name)
    if name is not None:
        query = query.where(Role.name == name)
    return [r.to_dict() for r in session.execute(query).scalars()]


def delete_role(session: Session, role_id: str) -> None:
    row = session.get(Role, role_id)
    if row is None:
        raise exception.RoleNotFound(f"Could not find role: {role_id}.", role=role_id)
    session.execute(sa.delete(RoleAssignment).where(RoleAssignment.role_id == role_id))
    session.delete(row)


# -- projects --------------------------------------------------------------------
def create_project(
    session: Session,
    name: str,
    now: dt.datetime,
    description: str = "",
    enabled: bool = True,
    project_id: str | None = None,
) -> dict:
    """Create a project in the default domain; raise Duplicate when the name is taken."""
    if session.execute(sa.select(Project.id).where(Project.name == name)).first() is not None:
        raise exception.Duplicate(
            reason="Conflict occurred attempting to store project - it is not permitted to have two "
            f"projects with the same name in the same domain : {name}."
        )
    row = Project(
        id=project_id or new_id(),
        name=name,
        description=description or "",
        domain_id=DEFAULT_DOMAIN_ID,
        enabled=enabled,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row.to_dict()


def get_project(session: Session, project_id: str) -> dict:
    row = session.get(Project, project_id)
    if row is None:
        raise exception.ProjectNotFound(f"Could not find project: {project_id}.", project=project_id)
    return row.to_dict()


def find_project(session: Session, name_or_id: str) -> dict:
    """Return the project with this id, else with this name; raise ProjectNotFound."""
    row = _by_id_or_name(session, Project, name_or_id)
    if row is None:
        raise exception.ProjectNotFound(f"Could not find project: {name_or_id}.", project=name_or_id)
    return row.to_dict()


def list_projects(
    session: Session, name: str | None = None, enabled: bool | None = None, ids: list[str] | None = None
) -> list[dict]:
    query = sa.select(Project).order_by(Project.name)
    if name is not None:
        query = query.where(Project.name == name)
    if enabled is not None:
        query = query.where(Project.enabled == enabled)
    if ids is not None:
        query = query.where(Project.id.in_(ids))
    return [r.to_dict() for r in session.execute(query).scalars()]


def update_project(session: Session, project_id: str, now: dt.datetime, **values) -> dict:
    """Change name, description or enabled of a project; return it."""
    unknown = set(values) - {"name", "description", "enabled"}
    if unknown:
        raise exception.Invalid(reason=f"cannot update project field(s) {sorted(unknown)}")
    row = session.get(Project, project_id)
    if row is None:
        raise exception.ProjectNotFound(f"Could not find project: {project_id}.", project=project_id)
    name = values.get("name")
    if name is not None and name != row.name:
        if session.execute(sa.select(Project.id).where(Project.name == name)).first() is not None:
            raise exception.Duplicate(
                reason="Conflict occurred attempting to store project - it is not permitted to have two "
                f"projects with the same name in the same domain : {name}."
            )
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = now
    session.flush()
    return row.to_dict()


def delete_project(session: Session, project_id: str) -> None:
    """Delete a project, its role assignments, its EC2 credentials and the tokens scoped to it."""
    row = session.get(Project, project_id)
    if row is None:
        raise exception.ProjectNotFound(f"Could not find project: {project_id}.", project=project_id)
    session.execute(sa.delete(RoleAssignment).where(RoleAssignment.project_id == project_id))
    session.execute(sa.delete(EC2Credential).where(EC2Credential.project_id == project_id))
    session.execute(sa.update(Token).where(Token.project_id == project_id).values(revoked=True))
    session.delete(row)


# -- users -----------------------------------------------------------------------
def create_user(
    session: Session,
    name: str,
    password_hash: str | None,
    now: dt.datetime,
    email: str | None = None,
    default_project_id: str | None = None,
    enabled: bool = True,
    user_id: str | None = None,
) -> dict:
    """Create a user in the default domain; raise Duplicate when the name is taken."""
    if session.execute(sa.select(User.id).where(User.name == name)).first() is not None:
        raise exception.Duplicate(
            reason="Conflict occurred attempting to store user - Duplicate entry found with name "
            f"{name} at domain ID {DEFAULT_DOMAIN_ID}."
        )
    if default_project_id is not None:
        get_project(session, default_project_id)
    row = User(
        id=user_id or new_id(),
        name=name,
        password_hash=password_hash,
        email=email,
        default_project_id=default_project_id,
        domain_id=DEFAULT_DOMAIN_ID,
        enabled=enabled,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return _user_dict(row)


def get_user(session: Session, user_id: str) -> dict:
    row = session.get(User, user_id)
    if row is None:
        raise exception.UserNotFound(f"Could not find user: {user_id}.", user=user_id)
    return _user_dict(row)


def find_user(session: Session, name_or_id: str) -> dict:
    """Return the user with this id, else with this name; raise UserNotFound."""
    row = _by_id_or_name(session, User, name_or_id)
    if row is None:
        raise exception.UserNotFound(f"Could not find user: {name_or_id}.", user=name_or_id)
    return _user_dict(row)


def get_user_credentials(session: Session, user_id: str | None = None, name: str | None = None) -> dict | None:
    """Return the user (with ``password_hash``) by id or name, or None."""
    if user_id is not None:
        row = session.get(User, user_id)
    else:
        row = session.execute(sa.select(User).where(User.name == name)).scalar_one_or_none()
    return None if row is None else row.to_dict()


def list_users(session: Session, name: str | None = None, enabled: bool | None = None) -> list[dict]:
    query = sa.select(User).order_by(User.name)
    if name is not None:
        query = query.where(User.name == name)
    if enabled is not None:
        query = query.where(User.enabled == enabled)
    return [_user_dict(r) for r in session.execute(query).scalars()]


def update_user(session: Session, user_id: str, now: dt.datetime, **values) -> dict:
    """Change name, email, enabled, default project or password hash of a user; return it.

    Disabling a user or changing the password revokes every token the user holds.
    """
    unknown = set(values) - {"name", "email", "enabled", "default_project_id", "password_hash"}
    if unknown:
        raise exception.Invalid(reason=f"cannot update user field(s) {sorted(unknown)}")
    row = session.get(User, user_id)
    if row is None:
        raise exception.UserNotFound(f"Could not find user: {user_id}.", user=user_id)
    name = values.get("name")
    if name is not None and name != row.name:
        if session.execute(sa.select(User.id).where(User.name == name)).first() is not None:
            raise exception.Duplicate(
                reason="Conflict occurred attempting to store user - Duplicate entry found with name "
                f"{name} at domain ID {DEFAULT_DOMAIN_ID}."
            )
    if values.get("default_project_id"):
        get_project(session, values["default_project_id"])
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = now
    if "password_hash" in values or values.get("enabled") is False:
        revoke_user_tokens(session, user_id)
    session.flush()
    return _user_dict(row)


def replace_password_hash(session: Session, user_id: str, old_hash: str, new_hash: str) -> None:
    """Store a new hash of the same password (a cost upgrade): tokens stay valid.

    Only replaces ``old_hash``: a password changed meanwhile is left alone.
    """
    session.execute(
        sa.update(User).where(User.id == user_id, User.password_hash == old_hash).values(password_hash=new_hash)
    )


def delete_user(session: Session, user_id: str) -> None:
    """Delete a user with their role assignments, EC2 credentials and tokens."""
    row = session.get(User, user_id)
    if row is None:
        raise exception.UserNotFound(f"Could not find user: {user_id}.", user=user_id)
    session.execute(sa.delete(RoleAssignment).where(RoleAssignment.user_id == user_id))
    session.execute(sa.delete(EC2Credential).where(EC2Credential.user_id == user_id))
    session.execute(sa.delete(Token).where(Token.user_id == user_id))
    session.delete(row)


# -- role assignments ------------------------------------------------------------
def add_role_assignment(session: Session, user_id: str, project_id: str, role_id: str) -> None:
    """Give ``user_id`` the role on the project (idempotent); raise NotFound for any missing part."""
    get_user(session, user_id)
    get_project(session, project_id)
    get_role(session, role_id)
    key = {"user_id": user_id, "project_id": project_id, "role_id": role_id}
    if session.get(RoleAssignment, key) is None:
        session.add(RoleAssignment(**key))
        session.flush()


def remove_role_assignment(session: Session, user_id: str, project_id: str, role_id: str) -> None:
    """Take the role away; raise RoleNotFound when the user does not have it there."""
    row = session.get(RoleAssignment, {"user_id": user_id, "project_id": project_id, "role_id": role_id})
    if row is None:
        raise exception.RoleNotFound(
            f"Could not find role assignment with role: {role_id}, user or group: {user_id}, "
            f"project, domain, or system: {project_id}.",
            role=role_id,
        )
    session.delete(row)


def has_role_assignment(session: Session, user_id: str, project_id: str, role_id: str) -> bool:
    return session.get(RoleAssignment, {"user_id": user_id, "project_id": project_id, "role_id": role_id}) is not None


def list_role_assignments(
    session: Session, user_id: str | None = None, project_id: str | None = None, role_id: str | None = None
) -> list[dict]:
    """Return assignments as ``{user_id, user_name, project_id, project_name, role_id, role_name}``."""
    query = (
        sa.select(
            RoleAssignment.user_id,
            User.name,
            RoleAssignment.project_id,
            Project.name,
            RoleAssignment.role_id,
            Role.name,
        )
        .join(User, User.id == RoleAssignment.user_id)
        .join(Project, Project.id == RoleAssignment.project_id)
        .join(Role, Role.id == RoleAssignment.role_id)
        .order_by(User.name, Project.name, Role.name)
    )
    if user_id is not None:
        query = query.where(RoleAssignment.user_id == user_id)
    if project_id is not None:
        query = query.where(RoleAssignment.project_id == project_id)
    if role_id is not None:
        query = query.where(RoleAssignment.role_id == role_id)
    keys = ("user_id", "user_name", "project_id", "project_name", "role_id", "role_name")
    return [dict(zip(keys, row, strict=True)) for row in session.execute(query)]


def roles_for(session: Session, user_id: str, project_id: str) -> list[dict]:
    """Return the roles (``{id, name}``) the user has on the project."""
    query = (
        sa.select(Role)
        .join(RoleAssignment, RoleAssignment.role_id == Role.id)
        .where(RoleAssignment.user_id == user_id, RoleAssignment.project_id == project_id)
        .order_by(Role.name)
    )
    return [r.to_dict() for r in session.execute(query).scalars()]


def projects_for_user(session: Session, user_id: str, enabled_only: bool = False) -> list[dict]:
    """Return the projects where the user has at least one role."""
    query = (
        sa.select(Project)
        .where(Project.id.in_(sa.select(RoleAssignment.project_id).where(RoleAssignment.user_id == user_id)))
        .order_by(Project.name)
    )
    if enabled_only:
        query = query.where(Project.enabled.is_(True))
    return [r.to_dict() for r in session.execute(query).scalars()]


# -- tokens ----------------------------------------------------------------------
def create_token(
    session: Session,
    id_hash: str,
    user_id: str,
    project_id: str | None,
    methods: list[str],
    audit_ids: list[str],
    issued_at: dt.datetime,
    expires_at: dt.datetime,
) -> dict:
    """Store a token by its hash; return the row."""
    row = Token(
        id_hash=id_hash,
        user_id=user_id,
        project_id=project_id,
        methods=",".join(methods),
        audit_id=" ".join(audit_ids[:2]),
        issued_at=issued_at,
        expires_at=expires_at,
        revoked=False,
    )
    session.add(row)
    session.flush()
    return token_dict(row)


def token_dict(row: Token) -> dict:
    data = row.to_dict()
    data["methods"] = [m for m in data["methods"].split(",") if m]
    data["audit_ids"] = data.pop("audit_id").split()
    return data


def token_context(session: Session, id_hash: str, now: dt.datetime) -> dict | None:
    """Return ``{token, user, project, roles}`` for a usable token, else None.

    A token is usable while it is unexpired and unrevoked, its user exists
    and is enabled, and (when scoped) its project exists, is enabled and the
    user still holds a role there. Roles are read now, not when the token was
    issued: taking a role away takes effect at once.
    """
    row = session.get(Token, id_hash)
    if row is None or row.revoked or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.enabled:
        return None
    project = None
    roles: list[dict] = []
    if row.project_id is not None:
        project = session.get(Project, row.project_id)
        if project is None or not project.enabled:
            return None
        roles = roles_for(session, row.user_id, row.project_id)
        if not roles:
            return None
        project = project.to_dict()
    return {"token": token_dict(row), "user": _user_dict(user), "project": project, "roles": roles}


def revoke_token(session: Session, id_hash: str) -> bool:
    """Mark a token revoked; True when it existed and was not yet revoked."""
    row = session.get(Token, id_hash)
    if row is None or row.revoked:
        return False
    row.revoked = True
    return True


def revoke_user_tokens(session: Session, user_id: str) -> int:
    """Revoke every token of a user; return how many."""
    result = session.execute(
        sa.update(Token).where(Token.user_id == user_id, Token.revoked.is_(False)).values(revoked=True)
    )
    return result.rowcount or 0


def flush_expired_tokens(session: Session, now: dt.datetime) -> int:
    """Delete tokens that expired before ``now`` (revoked or not); return how many."""
    result = session.execute(sa.delete(Token).where(Token.expires_at <= now))
    return result.rowcount or 0


# -- EC2 credentials -------------------------------------------------------------
def create_ec2_credential(
    session: Session, access: str, secret: str, user_id: str, project_id: str, now: dt.datetime
) -> dict:
    """Store an EC2 access/secret pair of a user for a project; return it."""
    get_user(session, user_id)
    get_project(session, project_id)
    row = EC2Credential(
        access=access, secret=secret, user_id=user_id, project_id=project_id, created_at=now, updated_at=now
    )
    session.add(row)
    session.flush()
    return row.to_dict()


def list_ec2_credentials(session: Session, user_id: str) -> list[dict]:
    query = sa.select(EC2Credential).where(EC2Credential.user_id == user_id).order_by(EC2Credential.created_at)
    return [r.to_dict() for r in session.execute(query).scalars()]


def get_ec2_credential(session: Session, access: str, user_id: str | None = None) -> dict:
    """Return one credential by access key (of ``user_id`` when given); raise NotFound."""
    row = session.get(EC2Credential, access)
    if row is None or (user_id is not None and row.user_id != user_id):
        raise exception.NotFound(f"Could not find credential: {access}.")
    return row.to_dict()


def delete_ec2_credential(session: Session, user_id: str, access: str) -> None:
    row = session.get(EC2Credential, access)
    if row is None or row.user_id != user_id:
        raise exception.NotFound(f"Could not find credential: {access}.")
    session.delete(row)
