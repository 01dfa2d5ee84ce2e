"""nova-manage: the operator's command line (schema, services, configuration).

It is a short-lived tool, not a daemon: it talks to the database directly
and synchronously. Sub-commands register themselves in :data:`COMMANDS`
(``group action``), so areas can add their own (projects, users, flavors).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from nova_twisted import conf as confmod
from nova_twisted import exception, utils

#: (group, action) -> (function(conf, args) -> exit status, help, argument adder)
COMMANDS: dict[tuple[str, str], tuple[Callable, str, Callable | None]] = {}


def command(group: str, action: str, help: str, arguments: Callable | None = None):
    """Register a ``nova-manage group action`` sub-command."""

    def register(fn):
        COMMANDS[(group, action)] = (fn, help, arguments)
        return fn

    return register


def _sync_database(conf):
    from nova_twisted.db.api import Database

    return Database(
        conf.database.connection,
        reactor=None,
        pool_size=1,
        max_retries=conf.database.max_retries,
        retry_interval=conf.database.retry_interval,
        connect_timeout=conf.database.connect_timeout,
    )


def print_table(headers: list[str], rows: list[list]) -> None:
    """Print rows under headers in aligned columns, as nova-manage does."""
    text_rows = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text_rows]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip())
    for row in text_rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)).rstrip())


# -- db -------------------------------------------------------------------------
@command(
    "db",
    "sync",
    "Create or upgrade the schema to the newest version.",
    lambda p: p.add_argument("--version", default="head", help="target revision"),
)
def db_sync(conf, args) -> int:
    from nova_twisted.db import migration

    version = migration.sync(
        conf.database.connection, args.version, conf.database.create_database, conf.database.connect_timeout
    )
    print(f"database at {confmod.mask_url(conf.database.connection)} is at schema {version}")
    return 0


@command("db", "version", "Print the schema version of the database.")
def db_version(conf, args) -> int:
    from nova_twisted.db import engine as engines
    from nova_twisted.db import migration

    engine = engines.create(conf.database.connection, 1, conf.database.connect_timeout)
    try:
        print(migration.version_of(engine) or "none")
    except Exception as exc:  # noqa: BLE001 - one line for the operator
        raise engines.connection_error(conf.database.connection, exc) from None
    finally:
        engine.dispose()
    return 0


# -- service --------------------------------------------------------------------
def _service_args(parser):
    parser.add_argument("--host", required=True)
    parser.add_argument("--binary", required=True)


@command(
    "service",
    "list",
    "List services, up or down, enabled or disabled.",
    lambda p: (p.add_argument("--host"), p.add_argument("--binary")),
)
def service_list(conf, args) -> int:
    from nova_twisted.db import services

    db = _sync_database(conf)
    rows = db.run_sync(services.list_services, args.host, args.binary)
    now = utils.utcnow()
    table = []
    for row in rows:
        up = services.is_up(row, now, conf.DEFAULT.service_down_time)
        table.append(
            [
                row["id"],
                row["binary"],
                row["host"],
                row["topic"] or "",
                "disabled" if row["disabled"] else "enabled",
                "up" if up else "down",
                utils.isotime(row["last_seen_up"]) or "",
                row["disabled_reason"] or "",
            ]
        )
    print_table(["Id", "Binary", "Host", "Topic", "Status", "State", "Updated At", "Disabled Reason"], table)
    return 0


@command(
    "service",
    "disable",
    "Stop scheduling to a service.",
    lambda p: (_service_args(p), p.add_argument("--reason", default=None)),
)
def service_disable(conf, args) -> int:
    from nova_twisted.db import services

    db = _sync_database(conf)
    db.run_sync(services.update, args.host, args.binary, utils.utcnow(), disabled=True, disabled_reason=args.reason)
    print(f"{args.binary} on {args.host} disabled")
    return 0


@command("service", "enable", "Let the scheduler use a service again.", _service_args)
def service_enable(conf, args) -> int:
    from nova_twisted.db import services

    db = _sync_database(conf)
    db.run_sync(services.update, args.host, args.binary, utils.utcnow(), disabled=False)
    print(f"{args.binary} on {args.host} enabled")
    return 0


# -- config ---------------------------------------------------------------------
@command("config", "sample", "Print nova.conf.sample, generated from the option declarations.")
def config_sample(conf, args) -> int:
    sys.stdout.write(confmod.generate_sample())
    return 0


def _load_extensions() -> None:
    # Areas that add sub-commands register them on import.
    import importlib

    for name in ("nova_twisted.cmd.manage_identity", "nova_twisted.cmd.manage_compute"):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def build_parser() -> argparse.ArgumentParser:
    _load_extensions()
    parser = argparse.ArgumentParser(prog="nova-manage", description="Manage a nova-twisted cloud.")
    parser.add_argument("--config", "-c", action="append", default=[], help="nova.conf file(s) to read")
    parser.add_argument("--debug", action="store_true")
    groups = parser.add_subparsers(dest="group", required=True)
    by_group: dict[str, argparse._SubParsersAction] = {}
    for (group, action), (_, help_text, arguments) in sorted(COMMANDS.items()):
        if group not in by_group:
            by_group[group] = groups.add_parser(group).add_subparsers(dest="action", required=True)
        sub = by_group[group].add_parser(action, help=help_text, description=help_text)
        if arguments is not None:
            arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        conf = confmod.load(args.config)
    except confmod.ConfigError as exc:
        sys.stderr.write(f"nova-manage: error: {exc}\n")
        return 1
    fn = COMMANDS[(args.group, args.action)][0]
    try:
        return fn(conf, args) or 0
    except exception.NovaError as exc:
        sys.stderr.write(f"nova-manage: error: {exc}\n")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
