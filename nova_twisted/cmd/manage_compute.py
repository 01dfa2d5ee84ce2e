"""nova-manage commands for compute: flavors, and the demo set-up `make run` uses.

    nova-manage flavor create m1.tiny --ram 512 --vcpus 1 --disk 1
    nova-manage demo setup --clouds-yaml clouds.yaml

``demo setup`` is idempotent: an admin and a demo user (and projects), the
classic flavors, a demo image (with the libvirt driver: a bootable tiny
Linux built from Debian's packages) and a clouds.yaml for the openstack CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from nova_twisted import exception
from nova_twisted.cmd.manage import _sync_database, command, print_table
from nova_twisted.db import flavors

#: The classic flavors (name, id, RAM MiB, vCPUs, disk GiB).
CLASSIC_FLAVORS = [
    ("m1.tiny", "1", 512, 1, 1),
    ("m1.small", "2", 2048, 1, 20),
    ("m1.medium", "3", 4096, 2, 40),
    ("m1.large", "4", 8192, 4, 80),
    ("m1.xlarge", "5", 16384, 8, 160),
]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# -- flavors ------------------------------------------------------------------------
def _flavor_args(parser):
    parser.add_argument("name")
    parser.add_argument("--id", default=None, help="flavor id (default: a new uuid)")
    parser.add_argument("--ram", type=int, required=True, help="MiB")
    parser.add_argument("--vcpus", type=int, required=True)
    parser.add_argument("--disk", type=int, default=0, help="root disk, GiB")
    parser.add_argument("--ephemeral", type=int, default=0, help="GiB")
    parser.add_argument("--swap", type=int, default=0, help="MiB")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--exist-ok", action="store_true")


def ensure_flavor(database, name, flavorid, ram, vcpus, disk, ephemeral=0, swap=0, is_public=True) -> bool:
    """Create the flavor unless one of that name exists; True when created."""
    try:
        database.run_sync(flavors.get_by_name, name)
        return False
    except exception.FlavorNotFound:
        pass
    database.run_sync(
        flavors.create,
        {
            "name": name,
            "flavorid": flavorid,
            "memory_mb": ram,
            "vcpus": vcpus,
            "root_gb": disk,
            "ephemeral_gb": ephemeral,
            "swap": swap,
            "is_public": is_public,
        },
    )
    return True


@command("flavor", "create", "Create a flavor.", _flavor_args)
def flavor_create(conf, args) -> int:
    database = _sync_database(conf)
    created = (
        ensure_flavor(
            database, args.name, args.id, args.ram, args.vcpus, args.disk, args.ephemeral, args.swap, not args.private
        )
        if args.exist_ok
        else None
    )
    if created is None:
        database.run_sync(
            flavors.create,
            {
                "name": args.name,
                "flavorid": args.id,
                "memory_mb": args.ram,
                "vcpus": args.vcpus,
                "root_gb": args.disk,
                "ephemeral_gb": args.ephemeral,
                "swap": args.swap,
                "is_public": not args.private,
            },
        )
    print(f"flavor {args.name} {'already exists' if created is False else 'created'}")
    return 0


@command("flavor", "list", "List flavors.")
def flavor_list(conf, args) -> int:
    database = _sync_database(conf)
    rows = database.run_sync(flavors.list_flavors, None, True, None)
    print_table(
        ["ID", "Name", "RAM", "vCPUs", "Disk", "Public"],
        [[f["flavorid"], f["name"], f["memory_mb"], f["vcpus"], f["root_gb"], f["is_public"]] for f in rows],
    )
    return 0


# -- the demo ----------------------------------------------------------------------------
def _demo_args(parser):
    parser.add_argument("--admin-password", default="admin", help="password of the admin user (default: admin)")
    parser.add_argument("--demo-password", default="demo", help="password of the demo user (default: demo)")
    parser.add_argument("--clouds-yaml", default=None, help="write a clouds.yaml for the openstack CLI here")
    parser.add_argument(
        "--auth-url", default=None, help="identity URL to put in clouds.yaml (default: [identity] identity_url)"
    )
    parser.add_argument(
        "--extra-user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD",
        help="also create project NAME with member user NAME (for isolation tests)",
    )


def _identity(conf, *argv):
    """Run an identity nova-manage command in this process."""
    from nova_twisted.cmd import manage

    parser = manage.build_parser()
    args = parser.parse_args(list(argv))
    return manage.COMMANDS[(args.group, args.action)][0](conf, args)


def _ensure_user(conf, name: str, password: str, project: str, role: str) -> None:
    """The project, the user (with this password) and the role on it; changes only what differs."""
    from nova_twisted.db import identity as db
    from nova_twisted.identity import passwords

    _identity(conf, "project", "create", project, "--exist-ok")
    database = _sync_database(conf)
    try:
        user = database.run_sync(db.find_user, name)
    except exception.UserNotFound:
        _identity(conf, "user", "create", name, "--password", password, "--project", project)
    else:
        stored = (database.run_sync(db.get_user_credentials, user["id"]) or {}).get("password_hash")
        if not passwords.verify_password(password, stored):
            _identity(conf, "user", "set-password", name, "--password", password)
    _identity(conf, "role", "add", "--user", name, "--project", project, "--role", role)


def demo_image_files(conf) -> dict:
    """What the demo image is made of: a bootable tiny Linux for libvirt, a small disk file otherwise."""
    if conf.compute.driver == "libvirt":
        script = os.path.join(ROOT, "tools", "make_test_guest.py")
        output = subprocess.run([sys.executable, script], check=True, capture_output=True, text=True).stdout
        paths = json.loads(output)
        return {"kernel": paths["kernel"], "ramdisk": paths["ramdisk"], "disk": paths["raw_disk"]}
    path = os.path.join(tempfile.gettempdir(), "nova-twisted-demo-disk.img")
    if not os.path.exists(path):
        with open(path, "wb") as handle:
            handle.write(b"nova-twisted demo image (fake driver)\n".ljust(1 << 20, b"\0"))
    return {"disk": path}


async def _ensure_demo_image(conf, database, reactor, files: dict) -> str:
    from nova_twisted.context import get_admin_context
    from nova_twisted.image import build_image_service

    store = build_image_service(conf, database, reactor)
    ctxt = get_admin_context()
    try:
        existing = [i for i in await store.list(ctxt, {"name": "demo-image"}) if i["status"] == "active"]
        if existing:
            return existing[0]["id"]

        async def upload(name, path, disk_format, properties=None):
            image = await store.create(
                ctxt,
                {
                    "name": name,
                    "disk_format": disk_format,
                    "container_format": disk_format if disk_format in ("aki", "ari", "ami") else "bare",
                    "visibility": "public",
                    **(properties or {}),
                },
            )
            await store.upload(ctxt, image["id"], path)
            return image["id"]

        if "kernel" in files:
            kernel = await upload("demo-image-kernel", files["kernel"], "aki")
            ramdisk = await upload("demo-image-ramdisk", files["ramdisk"], "ari")
            return await upload(
                "demo-image",
                files["disk"],
                "ami",
                {"kernel_id": kernel, "ramdisk_id": ramdisk, "architecture": "x86_64"},
            )
        return await upload("demo-image", files["disk"], "raw")
    finally:
        store.close()


def run_in_reactor(fn):
    """Run ``async fn(reactor)`` to completion in a short-lived reactor; return its result."""
    from twisted.internet import defer, reactor
    from twisted.python.failure import Failure

    outcome = {}

    def start():
        d = defer.ensureDeferred(fn(reactor))
        d.addBoth(lambda result: (outcome.setdefault("result", result), reactor.stop()))

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    result = outcome["result"]
    if isinstance(result, Failure):
        result.raiseException()
    return result


@command(
    "demo", "setup", "Create demo users, the classic flavors, a demo image and clouds.yaml (idempotent).", _demo_args
)
def demo_setup(conf, args) -> int:
    from nova_twisted.db.api import Database

    _identity(conf, "identity", "bootstrap", "--admin-password", args.admin_password)
    _ensure_user(conf, "demo", args.demo_password, "demo", "member")
    for extra in args.extra_user:
        name, _, password = extra.partition(":")
        _ensure_user(conf, name, password or name, name, "member")
    database = _sync_database(conf)
    for name, flavorid, ram, vcpus, disk in CLASSIC_FLAVORS:
        ensure_flavor(database, name, flavorid, ram, vcpus, disk)
    files = demo_image_files(conf)

    async def image(reactor):
        db = Database.from_config(conf, reactor)
        db.startService()
        try:
            return await _ensure_demo_image(conf, db, reactor, files)
        finally:
            db.stopService()

    image_id = run_in_reactor(image)
    print(f"demo image: demo-image ({image_id})")
    if args.clouds_yaml:
        auth_url = args.auth_url or conf.identity.identity_url
        write_clouds_yaml(
            args.clouds_yaml,
            auth_url,
            conf.identity.region_name,
            {
                "nova-twisted": ("demo", args.demo_password, "demo"),
                "nova-twisted-admin": ("admin", args.admin_password, "admin"),
                **{
                    f"nova-twisted-{e.partition(':')[0]}": (
                        e.partition(":")[0],
                        e.partition(":")[2] or e.partition(":")[0],
                        e.partition(":")[0],
                    )
                    for e in args.extra_user
                },
            },
        )
        print(f"wrote {args.clouds_yaml}: openstack --os-cloud nova-twisted (demo) or nova-twisted-admin")
    return 0


def write_clouds_yaml(path: str, auth_url: str, region: str, clouds: dict) -> None:
    """Write a clouds.yaml with one cloud per (user, password, project)."""
    import yaml

    document = {
        "clouds": {
            name: {
                "auth": {
                    "auth_url": auth_url,
                    "username": user,
                    "password": password,
                    "project_name": project,
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
                "region_name": region,
                "identity_api_version": 3,
                "interface": "public",
            }
            for name, (user, password, project) in clouds.items()
        }
    }
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("# Written by `nova-manage demo setup`: clouds for the openstack CLI (--os-cloud NAME).\n")
        yaml.safe_dump(document, handle, default_flow_style=False, sort_keys=True)
