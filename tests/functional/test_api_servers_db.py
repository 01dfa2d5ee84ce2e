"""The servers read path's SQL (JSON-aggregating subqueries, per dialect) on SQLite and on the real MariaDB."""

from __future__ import annotations

import datetime as dt

from nova_twisted import utils
from nova_twisted.db import flavors, instances, migration, server_groups
from nova_twisted.db import servers as db_servers
from nova_twisted.db.api import Database
from nova_twisted.db.models import ComputeNode, Service

ALL = frozenset({"tags", "fault", "server_groups", "host_az", "service"})
T0 = dt.datetime(2026, 3, 4, 5, 6, 7, 123456)


def _seed(session) -> tuple[str, str, str]:
    flavor = flavors.create(session, {"flavorid": "1", "name": "m1.tiny", "memory_mb": 512, "vcpus": 1, "root_gb": 1})
    session.add(
        ComputeNode(uuid=utils.generate_uuid(), host="h1", hypervisor_hostname="h1", availability_zone="zone-x")
    )
    session.add(Service(uuid=utils.generate_uuid(), host="h1", binary="nova-compute", disabled=True, last_seen_up=T0))
    rows = []
    for name, state in (("alpha", "error"), ("beta", "active")):
        rows.append(
            {
                "uuid": utils.generate_uuid(),
                "project_id": "p1",
                "user_id": "u1",
                "display_name": name,
                "instance_type_id": flavor["id"],
                "flavor": flavors.embedded(flavor),
                "vm_state": state,
                "host": "h1",
                "node": "h1",
                "launched_at": T0,
                "system_metadata": {"auto_disk_config": "True"},
                "metadata": {"a": "1", "key": "v"} if name == "alpha" else {},
            }
        )
    action = {"action": "create", "request_id": "req-1", "user_id": "u1", "project_id": "p1"}
    created = instances.create(session, rows, {}, action, None, None, T0)
    alpha, beta = created[0]["uuid"], created[1]["uuid"]
    db_servers.add_tags(session, alpha, ["b", "a"])
    instances.add_fault(session, alpha, 500, "old", "tb-old", "h1", T0)
    instances.add_fault(session, alpha, 404, "new", "tb-new", "h1", T0 + dt.timedelta(seconds=1))
    group = server_groups.create(session, "g", "affinity", "p1", "u1")
    session.execute(
        server_groups.ServerGroupMember.__table__.insert().values(group_id=group["id"], instance_uuid=alpha)
    )
    return alpha, beta, group["uuid"]


def _check_alpha(inst: dict, group: str) -> None:
    assert inst["display_name"] == "alpha"
    assert inst["metadata"] == {"a": "1", "key": "v"}
    assert inst["tags"] == ["a", "b"]
    assert inst["fault"]["message"] == "new" and inst["fault"]["code"] == 404
    assert inst["fault"]["created_at"] == T0 + dt.timedelta(seconds=1)
    assert inst["server_groups"] == [group]
    assert inst["host_az"] == "zone-x"
    assert inst["service"]["disabled"] in (True, 1) and inst["service"]["last_seen_up"] == T0
    assert inst["launched_at"] == T0
    assert inst["flavor"]["name"] == "m1.tiny"
    assert inst["system_metadata"] == {"auto_disk_config": "True"}
    assert inst["name"].startswith("instance-")


def test_the_reader_and_the_list_give_the_same_server_with_all_its_extras(any_db_url):
    migration.sync(any_db_url)
    database = Database(any_db_url, None, pool_size=2)
    try:
        alpha, beta, group = database.run_sync(_seed)
        reader = db_servers.ServerReader(database, None)
        found = reader._read(database.engine, sorted([alpha, beta]), ALL)
        _check_alpha(found[alpha].decoded(), group)
        beta_row = found[beta].decoded()
        assert (beta_row["metadata"], beta_row["tags"], beta_row["fault"], beta_row["server_groups"]) == (
            {},
            [],
            None,
            [],
        )
        listed = database.run_sync(db_servers.list_rows, {"project_id": "p1"}, None, None, None, None, ALL)
        by_uuid = {row.uuid: row.decoded() for row in listed}
        _check_alpha(by_uuid[alpha], group)
        assert by_uuid[alpha] == found[alpha].decoded()
        assert found[alpha].service()["last_seen_up"] == T0
        assert found[alpha].visible("p1", "no") and not found[alpha].visible("p2", "no")
    finally:
        database.stopService()


def test_list_filters_and_paging_on_each_database(any_db_url):
    migration.sync(any_db_url)
    database = Database(any_db_url, None, pool_size=2)
    try:
        alpha, beta, _ = database.run_sync(_seed)

        def names(filters, **kwargs):
            rows = database.run_sync(
                db_servers.list_rows,
                {"project_id": "p1", **filters},
                kwargs.get("limit"),
                kwargs.get("marker"),
                ["display_name"],
                ["asc"],
                frozenset(),
            )
            return [row.raw[db_servers.COLUMN_NAMES.index("display_name")] for row in rows]

        assert names({}) == ["alpha", "beta"]
        assert names({"tags": ["a", "b"]}) == ["alpha"]
        assert names({"not-tags-any": ["a"]}) == ["beta"]
        assert names({"display_name": "^b"}) == ["beta"]
        assert names({"vm_state": ["error"]}) == ["alpha"]
        assert names({}, limit=1) == ["alpha"]
        assert names({}, limit=1, marker=alpha) == ["beta"]
        assert names({"changes_since": T0 + dt.timedelta(days=1)}) == []
    finally:
        database.stopService()
