"""nova-manage project/user/role/identity/token commands on SQLite."""

import datetime as dt
import io

import pytest

from nova_twisted.cmd import manage
from nova_twisted.db import identity as db
from nova_twisted.db import migration
from nova_twisted.db.api import Database
from nova_twisted.identity import passwords


@pytest.fixture
def nova(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/nova.sqlite"
    config = tmp_path / "nova.conf"
    config.write_text(f"[database]\nconnection = {url}\n[identity]\npassword_hash_rounds = 4\n")
    migration.sync(url)
    database = Database(url, reactor=None, pool_size=1)

    def run(*argv):
        capsys.readouterr()
        status = manage.main(["--config", str(config), *argv])
        out, err = capsys.readouterr()
        return status, out, err

    run.db = database
    yield run
    database.engine.dispose()


def test_project_user_and_role_commands_build_a_working_login(nova):
    assert nova("project", "create", "demo", "--description", "Demo")[0] == 0
    status, out, _ = nova("user", "create", "demo", "--password", "s3cret", "--project", "demo")
    assert status == 0 and "user demo created" in out
    status, out, _ = nova("role", "add", "--user", "demo", "--project", "demo", "--role", "member")
    assert (status, out.strip()) == (0, "user demo has role member on project demo")
    _, out, _ = nova("role", "assignments", "--user", "demo")
    assert out.splitlines()[1].split() == ["demo", "demo", "member"]
    _, out, _ = nova("user", "list")
    assert "demo" in out and "s3cret" not in out
    record = nova.db.run_sync(db.get_user_credentials, None, "demo")
    assert passwords.verify_password("s3cret", record["password_hash"])
    assert record["default_project_id"] == nova.db.run_sync(db.find_project, "demo")["id"]


def test_the_three_standard_roles_exist_after_any_identity_command(nova):
    _, out, _ = nova("role", "list")
    assert sorted(line.split()[1] for line in out.splitlines()[1:]) == ["admin", "member", "reader"]
    nova("project", "list")
    assert len(nova.db.run_sync(db.list_roles)) == 3


def test_errors_are_one_line_and_exit_1(nova):
    nova("project", "create", "demo")
    status, _, err = nova("project", "create", "demo")
    assert status == 1
    assert err.startswith("nova-manage: error: ") and "same name" in err and err.count("\n") == 1
    status, _, err = nova("role", "add", "--user", "ghost", "--project", "demo", "--role", "member")
    assert (status, err.strip()) == (1, "nova-manage: error: Could not find user: ghost.")


def test_password_can_come_from_standard_input(nova, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin\n"))
    assert nova("user", "create", "piped", "--password", "-")[0] == 0
    record = nova.db.run_sync(db.get_user_credentials, None, "piped")
    assert passwords.verify_password("from-stdin", record["password_hash"])


def test_bootstrap_is_idempotent_and_resets_the_password(nova):
    assert nova("identity", "bootstrap", "--admin-password", "first")[0] == 0
    assert nova("identity", "bootstrap", "--admin-password", "second")[0] == 0
    assignments = nova.db.run_sync(db.list_role_assignments)
    assert [(a["user_name"], a["project_name"], a["role_name"]) for a in assignments] == [("admin", "admin", "admin")]
    record = nova.db.run_sync(db.get_user_credentials, None, "admin")
    assert passwords.verify_password("second", record["password_hash"])
    assert not passwords.verify_password("first", record["password_hash"])


def test_set_password_delete_and_token_flush(nova):
    nova("project", "create", "demo")
    nova("user", "create", "demo", "--password", "one", "--project", "demo")
    user = nova.db.run_sync(db.find_user, "demo")
    past = dt.datetime(2000, 1, 1)
    nova.db.run_sync(db.create_token, "a" * 64, user["id"], None, ["password"], ["x"], past, past)
    assert nova("user", "set-password", "demo", "--password", "two")[0] == 0
    record = nova.db.run_sync(db.get_user_credentials, None, "demo")
    assert passwords.verify_password("two", record["password_hash"])
    status, out, _ = nova("token", "flush")
    assert (status, out.strip()) == (0, "1 expired token(s) deleted")
    assert nova("user", "delete", "demo")[0] == 0
    assert nova("project", "delete", "demo")[0] == 0
    assert nova.db.run_sync(db.list_users) == []


def test_exist_ok_makes_creation_idempotent_without_changing_anything(nova):
    nova("project", "create", "demo")
    nova("user", "create", "demo", "--password", "first", "--project", "demo")
    for argv in (
        ("project", "create", "demo", "--exist-ok"),
        ("user", "create", "demo", "--password", "second", "--exist-ok"),
        ("role", "create", "member", "--exist-ok"),
    ):
        status, out, _ = nova(*argv)
        assert (status, out.strip()) == (0, f"{argv[0]} {argv[2]} already exists")
    record = nova.db.run_sync(db.get_user_credentials, None, "demo")
    assert passwords.verify_password("first", record["password_hash"])
    assert nova("role", "create", "operator", "--exist-ok")[0] == 0
    assert "operator" in [r["name"] for r in nova.db.run_sync(db.list_roles)]
