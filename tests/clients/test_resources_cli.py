"""The real ``openstack`` CLI (and openstacksdk) against nova-all and separate daemons: flavors, key pairs,
availability zones, hypervisors, compute services, quotas, limits, server groups and usage, as the demo user,
as admin, and across projects."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from openstack import exceptions as openstack_exceptions

from tests.clients.cloud import BIN, CommandFailed


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def md5_fingerprint(path: str) -> str:
    """What OpenSSH says the key's MD5 fingerprint is."""
    out = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", path], capture_output=True, text=True, check=True)
    return out.stdout.split()[1].removeprefix("MD5:")


class Tenant:
    """A fresh project with one member user, and the CLI/SDK as that user (a cloud of its own in its own
    clouds.yaml), so quota changes never touch the projects other tests use."""

    def __init__(self, cloud, tmpdir):
        self.cloud = cloud
        self.name = unique("proj")
        cloud.manage("project", "create", self.name)
        cloud.manage("user", "create", self.name, "--password", self.name, "--project", self.name)
        cloud.manage("role", "add", "--user", self.name, "--project", self.name, "--role", "member")
        self.project_id = cloud.openstack("project", "show", self.name, cloud="admin")["id"]
        with open(cloud.clouds_yaml) as handle:
            config = yaml.safe_load(handle)
        template = next(iter(config["clouds"].values()))
        auth = dict(template["auth"], username=self.name, password=self.name, project_name=self.name)
        config["clouds"] = {"tenant": {**template, "auth": auth}}
        self.clouds_yaml = os.path.join(str(tmpdir), f"{self.name}.yaml")
        with open(self.clouds_yaml, "w") as handle:
            yaml.safe_dump(config, handle)

    def openstack(self, *args, json_output: bool = True):
        import json

        argv = [os.path.join(BIN, "openstack"), "--os-cloud", "tenant", *args] + (["-f", "json"] if json_output else [])
        env = dict(self.cloud.env(), OS_CLIENT_CONFIG_FILE=self.clouds_yaml)
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        if done.returncode != 0:
            raise CommandFailed(argv, done.returncode, done.stdout, done.stderr)
        return json.loads(done.stdout) if json_output and done.stdout.strip() else done.stdout

    def openstack_fails(self, *args) -> CommandFailed:
        with pytest.raises(CommandFailed) as failure:
            self.openstack(*args, json_output=False)
        return failure.value

    def sdk(self):
        import openstack
        from openstack import config as sdk_config

        region = sdk_config.OpenStackConfig(config_files=[self.clouds_yaml]).get_one(cloud="tenant")
        return openstack.connection.Connection(config=region)


def by(items, key, value):
    return [i for i in items if i[key] == value]


# -- flavors ----------------------------------------------------------------------------------------
def test_flavors_are_listed_and_found_by_name_or_id(cloud):
    names = {f["Name"] for f in cloud.openstack("flavor", "list")}
    assert {"m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"} <= names
    tiny = cloud.openstack("flavor", "show", "m1.tiny")
    assert (tiny["id"], tiny["ram"], tiny["vcpus"], tiny["disk"]) == ("1", 512, 1, 1)
    assert cloud.openstack("flavor", "show", "2")["name"] == "m1.small"
    assert "No Flavor found" in cloud.openstack_fails("flavor", "show", "m1.nothing").stderr


def test_admin_creates_sets_and_deletes_a_flavor_members_cannot(cloud):
    name = unique("flv")
    created = cloud.openstack(
        "flavor", "create", "--ram", "256", "--vcpus", "2", "--disk", "3", "--ephemeral", "1", "--swap", "128",
        "--property", "hw:cpu_policy=shared", "--description", "made by a test", name, cloud="admin",
    )  # fmt: skip
    assert (created["ram"], created["vcpus"], created["disk"], created["swap"]) == (256, 2, 3, 128)
    assert created["OS-FLV-EXT-DATA:ephemeral"] == 1
    assert created["properties"] == {"hw:cpu_policy": "shared"}
    assert created["description"] == "made by a test"
    cloud.openstack(
        "flavor", "set", "--property", "quota:disk_read_bytes_sec=1000", name, cloud="admin", json_output=False
    )
    cloud.openstack("flavor", "set", "--description", "changed", name, cloud="admin", json_output=False)
    cloud.openstack("flavor", "unset", "--property", "hw:cpu_policy", name, cloud="admin", json_output=False)
    shown = cloud.openstack("flavor", "show", name)
    assert shown["properties"] == {"quota:disk_read_bytes_sec": "1000"}
    assert shown["description"] == "changed"
    failure = cloud.openstack_fails("flavor", "create", "--ram", "1", "--vcpus", "1", unique("nope"))
    assert "403" in failure.stderr and "os-flavor-manage:create" in failure.stderr
    assert "403" in cloud.openstack_fails("flavor", "delete", name).stderr
    cloud.openstack("flavor", "delete", name, cloud="admin", json_output=False)
    assert name not in {f["Name"] for f in cloud.openstack("flavor", "list", "--all", cloud="admin")}


def test_private_flavor_is_seen_only_by_projects_given_access(cloud):
    name = unique("private")
    cloud.openstack("flavor", "create", "--ram", "64", "--vcpus", "1", "--private", name, cloud="admin")
    try:
        assert name not in {f["Name"] for f in cloud.openstack("flavor", "list")}
        assert "No Flavor found" in cloud.openstack_fails("flavor", "show", name).stderr
        assert name in {f["Name"] for f in cloud.openstack("flavor", "list", "--private", cloud="admin")}
        cloud.openstack("flavor", "set", "--project", "demo", name, cloud="admin", json_output=False)
        assert name in {f["Name"] for f in cloud.openstack("flavor", "list")}
        shown = cloud.openstack("flavor", "show", name)
        assert shown["os-flavor-access:is_public"] is False
        demo_id = cloud.openstack("project", "show", "demo", cloud="admin")["id"]
        assert shown["access_project_ids"] == [demo_id]
        assert "No Flavor found" in cloud.openstack_fails("flavor", "show", name, cloud="alt").stderr
        cloud.openstack("flavor", "unset", "--project", "demo", name, cloud="admin", json_output=False)
        assert name not in {f["Name"] for f in cloud.openstack("flavor", "list")}
    finally:
        cloud.openstack("flavor", "delete", name, cloud="admin", json_output=False)


# -- key pairs ----------------------------------------------------------------------------------------
def test_keypairs_imported_from_ssh_keygen_and_cryptography_keep_openssh_fingerprints(cloud, tmp_path):
    keys = {}
    for kind, extra in (("ed25519", []), ("rsa", ["-b", "2048"])):
        path = str(tmp_path / f"id_{kind}")
        subprocess.run(["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-f", path], check=True)
        keys[kind] = path + ".pub"
    ecdsa = ec.generate_private_key(ec.SECP384R1()).public_key()
    keys["ecdsa"] = str(tmp_path / "id_ecdsa.pub")
    with open(keys["ecdsa"], "wb") as handle:
        handle.write(ecdsa.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) + b"\n")
    names = {}
    for kind, path in keys.items():
        names[kind] = unique(kind)
        created = cloud.openstack("keypair", "create", "--public-key", path, names[kind])
        assert created["fingerprint"] == md5_fingerprint(path), kind
        assert created["type"] == "ssh"
    listed = {k["Name"]: k for k in cloud.openstack("keypair", "list")}
    for kind, path in keys.items():
        assert listed[names[kind]]["Fingerprint"] == md5_fingerprint(path)
    shown = cloud.openstack("keypair", "show", names["ed25519"])
    assert shown["fingerprint"] == md5_fingerprint(keys["ed25519"])
    public = cloud.openstack("keypair", "show", "--public-key", names["ed25519"], json_output=False)
    with open(keys["ed25519"]) as handle:
        assert public.split()[:2] == handle.read().split()[:2]
    # Key pairs are the user's own: another project's user neither sees nor deletes them.
    assert names["rsa"] not in {k["Name"] for k in cloud.openstack("keypair", "list", cloud="alt")}
    assert "No Keypair found" in cloud.openstack_fails("keypair", "show", names["rsa"], cloud="alt").stderr
    cloud.openstack_fails("keypair", "delete", names["rsa"], cloud="alt")
    for name in names.values():
        cloud.openstack("keypair", "delete", name, json_output=False)
    remaining = {k["Name"] for k in cloud.openstack("keypair", "list")}
    assert not remaining & set(names.values())


def test_keypairs_generated_by_the_cli_and_by_the_server(cloud, tmp_path):
    name = unique("gen")
    private = cloud.openstack("keypair", "create", name, json_output=False)
    assert "PRIVATE KEY-----" in private
    key_path = tmp_path / "key"
    key_path.write_text(private)
    key_path.chmod(0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(key_path)], capture_output=True, text=True, check=True)
    (tmp_path / "key.pub").write_text(derived.stdout)
    assert cloud.openstack("keypair", "show", name)["fingerprint"] == md5_fingerprint(str(tmp_path / "key.pub"))
    conn = cloud.sdk("demo")
    made = conn.compute.create_keypair(name=unique("server-made"))
    try:
        assert made.private_key.startswith("-----BEGIN RSA PRIVATE KEY-----")
        assert made.public_key.startswith("ssh-rsa ")
        key_path.write_text(made.private_key)
        derived = subprocess.run(["ssh-keygen", "-y", "-f", str(key_path)], capture_output=True, text=True, check=True)
        assert derived.stdout.split()[1] == made.public_key.split()[1]
    finally:
        conn.compute.delete_keypair(made.name)
        cloud.openstack("keypair", "delete", name, json_output=False)


# -- availability zones, hypervisors, services --------------------------------------------------------
def test_availability_zones_for_users_and_in_detail_for_admins(cloud):
    zones = cloud.openstack("availability", "zone", "list")
    assert {"Zone Name": "nova", "Zone Status": "available"} in zones
    assert "internal" not in {z["Zone Name"] for z in zones}
    detail = cloud.openstack("availability", "zone", "list", "--long", cloud="admin")
    computes = [z for z in detail if z["Service Name"] == "nova-compute"]
    assert computes and all(z["Zone Name"] == "nova" for z in computes)
    assert {"nova-conductor", "nova-scheduler"} <= {z["Service Name"] for z in detail if z["Zone Name"] == "internal"}
    assert all(z["Service Status"].startswith("enabled :-)") for z in computes)


def test_hypervisors_list_show_and_statistics_for_admins_only(cloud):
    hypervisors = cloud.openstack("hypervisor", "list", cloud="admin")
    expected = len(cloud.computes) or 1
    assert len(hypervisors) == expected
    assert all(h["State"] == "up" for h in hypervisors)
    name = hypervisors[0]["Hypervisor Hostname"]
    shown = cloud.openstack("hypervisor", "show", name, cloud="admin")
    assert shown["hypervisor_hostname"] == name
    assert shown["vcpus"] > 0 and shown["memory_mb"] > 0 and shown["aggregates"] == []
    stats = cloud.openstack("hypervisor", "stats", "show", cloud="admin")
    assert stats["count"] == expected
    assert stats["vcpus"] >= shown["vcpus"]
    assert "403" in cloud.openstack_fails("hypervisor", "list").stderr


def _compute_row(cloud, host):
    rows = cloud.openstack("compute", "service", "list", "--long", "--service", "nova-compute", cloud="admin")
    return by(rows, "Host", host)[0]


def test_compute_services_disable_with_reason_enable_and_force_down(cloud):
    services = cloud.openstack("compute", "service", "list", cloud="admin")
    binaries = {s["Binary"] for s in services}
    assert {"nova-conductor", "nova-scheduler", "nova-compute"} <= binaries
    assert all(s["State"] == "up" for s in services)
    host = by(services, "Binary", "nova-compute")[0]["Host"]
    try:
        cloud.openstack(
            "compute", "service", "set", "--disable", "--disable-reason", "maintenance", host, "nova-compute",
            cloud="admin", json_output=False,
        )  # fmt: skip
        row = _compute_row(cloud, host)
        assert (row["Status"], row["Disabled Reason"]) == ("disabled", "maintenance")
        cloud.openstack("compute", "service", "set", "--enable", host, "nova-compute", cloud="admin", json_output=False)
        row = _compute_row(cloud, host)
        assert (row["Status"], row["Disabled Reason"]) == ("enabled", None)
        cloud.openstack("compute", "service", "set", "--down", host, "nova-compute", cloud="admin", json_output=False)
        row = _compute_row(cloud, host)
        assert (row["State"], row["Forced Down"]) == ("down", True)
    finally:
        cloud.openstack(
            "compute", "service", "set", "--enable", "--up", host, "nova-compute", cloud="admin", json_output=False
        )
    row = _compute_row(cloud, host)
    assert (row["Status"], row["State"], row["Forced Down"]) == ("enabled", "up", False)
    assert "403" in cloud.openstack_fails("compute", "service", "list").stderr
    failure = cloud.openstack_fails("compute", "service", "set", "--disable", host, "nova-compute")
    assert "403" in failure.stderr


# -- quotas, limits, usage -------------------------------------------------------------------------------
def _wait_active(conn, server_id, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = conn.compute.get_server(server_id)
        if server.status in ("ACTIVE", "ERROR"):
            return server
        time.sleep(0.5)
    raise AssertionError(f"server {server_id} never became ACTIVE")


def test_quota_limits_and_usage_of_a_project_with_a_server_and_a_boot_over_quota(cloud, tmp_path):
    tenant = Tenant(cloud, tmp_path)
    cloud.openstack("quota", "set", "--instances", "1", "--cores", "4", tenant.name, cloud="admin", json_output=False)
    quota = {q["Resource"]: q["Limit"] for q in tenant.openstack("quota", "show")}
    assert (quota["instances"], quota["cores"], quota["ram"]) == (1, 4, 51200)
    assert "403" in tenant.openstack_fails("quota", "set", "--instances", "50", tenant.name).stderr
    conn = tenant.sdk()
    server = conn.compute.create_server(name="in-quota", image_id=cloud.image_id, flavor_id="1", networks="none")
    try:
        assert _wait_active(conn, server.id).status == "ACTIVE"
        usage = {q["Resource"]: q for q in tenant.openstack("quota", "show", "--usage")}
        assert (usage["instances"]["In Use"], usage["cores"]["In Use"], usage["ram"]["In Use"]) == (1, 1, 512)
        limits = {row["Name"]: row["Value"] for row in tenant.openstack("limits", "show", "--absolute")}
        assert (limits["max_total_instances"], limits["total_instances_used"], limits["total_ram_used"]) == (1, 1, 512)
        # Usage: the project's own view, and the admin's view of every project.
        own = tenant.openstack("usage", "show")
        assert len(own["Servers"]) == 1
        listed = cloud.openstack("usage", "list", cloud="admin")
        # (The CLI asks with detailed=True, which Nova reads as not detailed: no server list, totals only.)
        assert by(listed, "Project", tenant.project_id)[0]["RAM MB-Hours"] > 0
        shown = cloud.openstack("usage", "show", "--project", tenant.name, cloud="admin")
        assert len(shown["Servers"]) == 1
        assert "403" in cloud.openstack_fails("usage", "show", "--project", tenant.name).stderr
        assert "403" in tenant.openstack_fails("usage", "list").stderr
        # Another project's quotas are out of a member's reach.
        assert "403" in tenant.openstack_fails("quota", "show", "demo").stderr
        # A boot over quota fails at once with Nova's 403 and message, through the SDK and the CLI.
        with pytest.raises(openstack_exceptions.HttpException) as refused:
            conn.compute.create_server(name="over", image_id=cloud.image_id, flavor_id="1", networks="none")
        assert refused.value.status_code == 403
        assert "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances" in str(refused.value)
        failure = tenant.openstack_fails("server", "create", "--flavor", "m1.tiny", "--image", cloud.image_id, "over")
        assert "Quota exceeded for instances" in failure.stderr, failure.stderr
    finally:
        conn.compute.delete_server(server.id)


def test_limits_show_absolute_for_the_demo_project(cloud):
    limits = {row["Name"]: row["Value"] for row in cloud.openstack("limits", "show", "--absolute")}
    assert limits["max_total_instances"] >= 1 and limits["max_total_keypairs"] == 100
    assert limits["total_instances_used"] >= 0 and "total_server_groups_used" in limits
    other = cloud.openstack("limits", "show", "--absolute", "--project", "alt", cloud="admin")
    assert {row["Name"] for row in other} >= {"max_total_instances", "total_instances_used"}


# -- server groups -----------------------------------------------------------------------------------------
def test_server_groups_of_every_policy_belong_to_their_project(cloud):
    made = {}
    try:
        for policy in ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"):
            name = unique(policy)
            group = cloud.openstack("server", "group", "create", "--policy", policy, name)
            assert (group["name"], group["policy"], group["members"]) == (name, policy, [])
            made[name] = group["id"]
        ruled = unique("ruled")
        group = cloud.openstack(
            "server", "group", "create", "--policy", "anti-affinity", "--rule", "max_server_per_host=2", ruled
        )
        made[ruled] = group["id"]
        assert group["rules"] == {"max_server_per_host": 2}
        listed = {g["Name"]: g for g in cloud.openstack("server", "group", "list", "--long")}
        assert set(made) <= set(listed)
        shown = cloud.openstack("server", "group", "show", made[ruled])
        assert (shown["name"], shown["policy"]) == (ruled, "anti-affinity")
        assert not set(made) & {g["Name"] for g in cloud.openstack("server", "group", "list", cloud="alt")}
        assert (
            "No ServerGroup found" in cloud.openstack_fails("server", "group", "show", made[ruled], cloud="alt").stderr
        )
        cloud.openstack_fails("server", "group", "delete", made[ruled], cloud="alt")
        everyone = {g["Name"] for g in cloud.openstack("server", "group", "list", "--all-projects", cloud="admin")}
        assert set(made) <= everyone
        failure = cloud.openstack_fails(
            "server", "group", "create", "--policy", "affinity", "--rule", "max_server_per_host=2", unique("bad")
        )
        assert "Only anti-affinity policy supports rules" in failure.stderr
    finally:
        for group_id in made.values():
            cloud.openstack("server", "group", "delete", group_id, json_output=False)
    assert not set(made) & {g["Name"] for g in cloud.openstack("server", "group", "list")}
