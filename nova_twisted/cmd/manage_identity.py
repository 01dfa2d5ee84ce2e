"""nova-manage commands for identity: projects, users, roles, role assignments, tokens.

    nova-manage project create demo
    nova-manage user create demo --password secret --project demo
    nova-manage role add --user demo --project demo --role member
    nova-manage identity bootstrap --admin-password secret

Every command first makes sure the three standard roles (admin, member,
reader) exist, so they are there as soon as anyone manages identity; the
identity API creates them too, the first time it needs a role.
"""

from __future__ import annotations

import getpass
import sys

from nova_twisted import exception, utils
from nova_twisted.cmd.manage import _sync_database, command, print_table
from nova_twisted.db import identity as db
from nova_twisted.identity import passwords


def _database(conf):
    database = _sync_database(conf)
    try:
        database.run_sync(db.ensure_default_roles)
    except exception.DBDuplicateEntry:
        database.run_sync(db.ensure_default_roles)  # created at the same moment elsewhere
    return database


def _hash(conf, password: str) -> str:
    return passwords.hash_password(password, conf.identity.password_hash_algorithm, conf.identity.password_hash_rounds)


def _read_password(value: str | None, prompt: str = "Password: ") -> str | None:
    """``--password -`` reads one line from standard input; no flag on a terminal prompts."""
    if value == "-":
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    if value is None and sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if first != getpass.getpass("Repeat " + prompt[0].lower() + prompt[1:]):
            raise exception.Invalid(reason="the passwords do not match")
        return first
    return value


# -- projects --------------------------------------------------------------------
def _exist_ok(parser):
    parser.add_argument(
        "--exist-ok", action="store_true", help="succeed without changing anything when it already exists"
    )


def _exists(database, finder, name: str, what: str, args) -> bool:
    """With --exist-ok, say so and return True when ``name`` already exists."""
    if not args.exist_ok:
        return False
    try:
        database.run_sync(finder, name)
    except exception.NotFound:
        return False
    print(f"{what} {name} already exists")
    return True


@command(
    "project",
    "create",
    "Create a project.",
    lambda p: (p.add_argument("name"), p.add_argument("--description", default=""), _exist_ok(p)),
)
def project_create(conf, args) -> int:
    database = _database(conf)
    if _exists(database, db.find_project, args.name, "project", args):
        return 0
    project = database.run_sync(db.create_project, args.name, utils.utcnow(), args.description)
    print(f"project {project['name']} created with id {project['id']}")
    return 0


@command("project", "list", "List projects.")
def project_list(conf, args) -> int:
    database = _database(conf)
    rows = database.run_sync(db.list_projects)
    print_table(
        ["ID", "Name", "Enabled", "Description"],
        [[p["id"], p["name"], p["enabled"], p["description"]] for p in rows],
    )
    return 0


@command(
    "project",
    "delete",
    "Delete a project (by name or id) with its role assignments and EC2 credentials.",
    lambda p: p.add_argument("project"),
)
def project_delete(conf, args) -> int:
    database = _database(conf)
    project = database.run_sync(db.find_project, args.project)
    database.run_sync(db.delete_project, project["id"])
    print(f"project {project['name']} deleted")
    return 0


# -- users -----------------------------------------------------------------------
def _user_args(parser):
    parser.add_argument("name")
    parser.add_argument(
        "--password", help="the user's password; '-' reads it from standard input; omitted on a terminal: prompt"
    )
    parser.add_argument("--project", help="default project (name or id)")
    parser.add_argument("--email")
    _exist_ok(parser)


@command("user", "create", "Create a user, with a password and a default project.", _user_args)
def user_create(conf, args) -> int:
    database = _database(conf)
    if _exists(database, db.find_user, args.name, "user", args):
        return 0
    password = _read_password(args.password)
    project_id = database.run_sync(db.find_project, args.project)["id"] if args.project else None
    user = database.run_sync(
        db.create_user,
        args.name,
        _hash(conf, password) if password else None,
        utils.utcnow(),
        args.email,
        project_id,
    )
    print(f"user {user['name']} created with id {user['id']}")
    if not password:
        print("the user has no password and cannot log in until one is set (`nova-manage user set-password`)")
    return 0


@command("user", "list", "List users.")
def user_list(conf, args) -> int:
    database = _database(conf)
    rows = database.run_sync(db.list_users)
    projects = {p["id"]: p["name"] for p in database.run_sync(db.list_projects)}
    print_table(
        ["ID", "Name", "Enabled", "Default Project", "Email"],
        [
            [
                u["id"],
                u["name"],
                u["enabled"],
                projects.get(u["default_project_id"], u["default_project_id"]),
                u["email"],
            ]
            for u in rows
        ],
    )
    return 0


@command(
    "user",
    "set-password",
    "Set a user's password (and revoke their tokens).",
    lambda p: (p.add_argument("name"), p.add_argument("--password", help="'-' reads it from standard input")),
)
def user_set_password(conf, args) -> int:
    database = _database(conf)
    user = database.run_sync(db.find_user, args.name)
    password = _read_password(args.password)
    if not password:
        raise exception.Invalid(reason="give the new password with --password")
    database.run_sync(db.update_user, user["id"], utils.utcnow(), password_hash=_hash(conf, password))
    print(f"password of user {user['name']} changed")
    return 0


@command(
    "user",
    "delete",
    "Delete a user (by name or id) with their role assignments, EC2 credentials and tokens.",
    lambda p: p.add_argument("user"),
)
def user_delete(conf, args) -> int:
    database = _database(conf)
    user = database.run_sync(db.find_user, args.user)
    database.run_sync(db.delete_user, user["id"])
    print(f"user {user['name']} deleted")
    return 0


# -- roles -----------------------------------------------------------------------
@command("role", "create", "Create a role.", lambda p: (p.add_argument("name"), _exist_ok(p)))
def role_create(conf, args) -> int:
    database = _database(conf)
    if _exists(database, db.find_role, args.name, "role", args):
        return 0
    role = database.run_sync(db.create_role, args.name)
    print(f"role {role['name']} created with id {role['id']}")
    return 0


@command("role", "list", "List roles.")
def role_list(conf, args) -> int:
    database = _database(conf)
    print_table(["ID", "Name"], [[r["id"], r["name"]] for r in database.run_sync(db.list_roles)])
    return 0


def _assignment_args(parser):
    parser.add_argument("--user", required=True, help="user name or id")
    parser.add_argument("--project", required=True, help="project name or id")
    parser.add_argument("--role", required=True, help="role name or id")


def _resolve(database, args) -> tuple[dict, dict, dict]:
    return (
        database.run_sync(db.find_user, args.user),
        database.run_sync(db.find_project, args.project),
        database.run_sync(db.find_role, args.role),
    )


@command("role", "add", "Give a user a role on a project.", _assignment_args)
def role_add(conf, args) -> int:
    database = _database(conf)
    user, project, role = _resolve(database, args)
    database.run_sync(db.add_role_assignment, user["id"], project["id"], role["id"])
    print(f"user {user['name']} has role {role['name']} on project {project['name']}")
    return 0


@command("role", "remove", "Take a role on a project away from a user.", _assignment_args)
def role_remove(conf, args) -> int:
    database = _database(conf)
    user, project, role = _resolve(database, args)
    database.run_sync(db.remove_role_assignment, user["id"], project["id"], role["id"])
    print(f"user {user['name']} no longer has role {role['name']} on project {project['name']}")
    return 0


@command(
    "role",
    "assignments",
    "List role assignments, optionally of one user or project.",
    lambda p: (p.add_argument("--user"), p.add_argument("--project")),
)
def role_assignments(conf, args) -> int:
    database = _database(conf)
    user_id = database.run_sync(db.find_user, args.user)["id"] if args.user else None
    project_id = database.run_sync(db.find_project, args.project)["id"] if args.project else None
    rows = database.run_sync(db.list_role_assignments, user_id, project_id)
    print_table(["User", "Project", "Role"], [[r["user_name"], r["project_name"], r["role_name"]] for r in rows])
    return 0


# -- tokens and bootstrap --------------------------------------------------------
@command("token", "flush", "Delete expired tokens from the database.")
def token_flush(conf, args) -> int:
    database = _database(conf)
    count = database.run_sync(db.flush_expired_tokens, utils.utcnow())
    print(f"{count} expired token(s) deleted")
    return 0


def _bootstrap_args(parser):
    parser.add_argument("--admin-user", default="admin")
    parser.add_argument("--admin-project", default="admin")
    parser.add_argument(
        "--admin-password", help="'-' reads it from standard input; given again, it replaces the old one"
    )


@command(
    "identity",
    "bootstrap",
    "Create the standard roles, an admin project and an admin user with the admin role (idempotent).",
    _bootstrap_args,
)
def identity_bootstrap(conf, args) -> int:
    database = _database(conf)
    password = _read_password(args.admin_password, "Admin password: ")
    database.run_sync(_bootstrap, args.admin_user, args.admin_project, _hash(conf, password) if password else None)
    print(f"user {args.admin_user} has role admin on project {args.admin_project}")
    return 0


def _bootstrap(session, user_name: str, project_name: str, password_hash: str | None) -> None:
    now = utils.utcnow()
    try:
        project = db.find_project(session, project_name)
    except exception.ProjectNotFound:
        project = db.create_project(session, project_name, now, "Bootstrap project for initializing the cloud.")
    try:
        user = db.find_user(session, user_name)
        if password_hash is not None:
            db.update_user(session, user["id"], now, password_hash=password_hash)
    except exception.UserNotFound:
        if password_hash is None:
            raise exception.Invalid(reason="a new admin user needs --admin-password") from None
        user = db.create_user(session, user_name, password_hash, now, default_project_id=project["id"])
    admin = db.find_role(session, "admin")
    db.add_role_assignment(session, user["id"], project["id"], admin["id"])
