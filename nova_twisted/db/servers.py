"""What the compute API's servers views read: an instance with everything shown beside it.

One call (one transaction, one trip to the database thread) gathers an
instance, or a page of them, with their metadata and, as asked, tags,
latest faults, server groups, the availability zone of their host and
the state of their host's compute service. Instance dicts are those of
:mod:`nova_twisted.db.instances` plus ``tags``, ``fault``,
``server_groups``, ``host_az`` and ``service``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nova_twisted import exception
from nova_twisted.db.instances import _after_marker, instance_name
from nova_twisted.db.models import (
    ComputeNode,
    Flavor,
    Instance,
    InstanceAction,
    InstanceActionEvent,
    InstanceFault,
    InstanceMetadata,
    InstanceTag,
    ServerGroup,
    ServerGroupMember,
    Service,
)

_TABLE = Instance.__table__
_COLUMNS = frozenset(c.key for c in _TABLE.columns)
_CHUNK = 500

#: Filters matched with a regular expression (in Python, the same on every database).
REGEX_FILTERS = ("display_name", "display_description", "hostname")
#: Filters matched exactly in SQL.
EXACT_FILTERS = (
    "project_id",
    "user_id",
    "host",
    "node",
    "reservation_id",
    "image_ref",
    "instance_type_id",
    "availability_zone",
    "key_name",
    "launch_index",
    "power_state",
    "locked_by",
)
LIST_FILTERS = ("uuid", "vm_state", "task_state")


def _decode(row) -> dict:
    data = dict(row._mapping)
    flavor = data.get("flavor")
    data["flavor"] = json.loads(flavor) if flavor else {}
    sysmeta = data.get("system_metadata")
    data["system_metadata"] = json.loads(sysmeta) if sysmeta else {}
    for key in ("old_flavor", "new_flavor"):
        value = data.get(key)
        data[key] = json.loads(value) if value else None
    data["name"] = instance_name(data["id"])
    return data


def _chunks(values: list[str]):
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _attach(session: Session, rows: list[dict], extras: frozenset | set) -> list[dict]:
    """Add metadata (always) and the ``extras`` asked for to ``rows``, a few queries for all of them."""
    by_uuid = {r["uuid"]: r for r in rows}
    for row in rows:
        row["metadata"] = {}
    if not rows:
        return rows
    uuids = list(by_uuid)
    for chunk in _chunks(uuids):
        for uuid, key, value in session.execute(
            sa.select(InstanceMetadata.instance_uuid, InstanceMetadata.key, InstanceMetadata.value).where(
                InstanceMetadata.instance_uuid.in_(chunk)
            )
        ):
            by_uuid[uuid]["metadata"][key] = value
    if "tags" in extras:
        for row in rows:
            row["tags"] = []
        for chunk in _chunks(uuids):
            for uuid, tag in session.execute(
                sa.select(InstanceTag.instance_uuid, InstanceTag.tag)
                .where(InstanceTag.instance_uuid.in_(chunk))
                .order_by(InstanceTag.tag)
            ):
                by_uuid[uuid]["tags"].append(tag)
    if "fault" in extras:
        faulty = [r["uuid"] for r in rows if r["vm_state"] in ("error", "deleted") or r["deleted"]]
        for row in rows:
            row["fault"] = None
        for chunk in _chunks(faulty):
            for fault in session.execute(
                sa.select(InstanceFault.__table__)
                .where(InstanceFault.instance_uuid.in_(chunk))
                .order_by(InstanceFault.created_at.desc(), InstanceFault.id.desc())
            ):
                row = by_uuid[fault.instance_uuid]
                if row["fault"] is None:
                    row["fault"] = dict(fault._mapping)
    if "server_groups" in extras:
        for row in rows:
            row["server_groups"] = []
        for chunk in _chunks(uuids):
            for uuid, group in session.execute(
                sa.select(ServerGroupMember.instance_uuid, ServerGroup.uuid)
                .join(ServerGroup, ServerGroup.id == ServerGroupMember.group_id)
                .where(ServerGroupMember.instance_uuid.in_(chunk))
            ):
                by_uuid[uuid]["server_groups"].append(group)
    hosts = {r["host"] for r in rows if r["host"]}
    if "host_az" in extras:
        zones: dict[str, str] = {}
        if hosts:
            for host, zone in session.execute(
                sa.select(ComputeNode.host, ComputeNode.availability_zone).where(
                    ComputeNode.host.in_(sorted(hosts)), ComputeNode.deleted == sa.false()
                )
            ):
                zones.setdefault(host, zone)
        for row in rows:
            row["host_az"] = zones.get(row["host"]) if row["host"] else None
    if "service" in extras:
        found: dict[str, dict] = {}
        if hosts:
            for service in session.execute(
                sa.select(
                    Service.host, Service.disabled, Service.forced_down, Service.last_seen_up, Service.updated_at
                ).where(Service.host.in_(sorted(hosts)), Service.binary == "nova-compute")
            ):
                found[service.host] = dict(service._mapping)
        for row in rows:
            row["service"] = found.get(row["host"]) if row["host"] else None
    return rows


def get(
    session: Session,
    uuid: str,
    project_id: str | None = None,
    read_deleted: str = "no",
    extras: frozenset | set = frozenset(),
) -> dict:
    """The instance ``uuid`` with its metadata and ``extras``; InstanceNotFound if it is not visible.

    ``project_id`` (for non-admins) hides other projects' instances;
    ``read_deleted`` is "no", "yes" or "only".
    """
    query = sa.select(_TABLE).where(_TABLE.c.uuid == uuid)
    if read_deleted == "no":
        query = query.where(_TABLE.c.deleted == 0)
    elif read_deleted == "only":
        query = query.where(_TABLE.c.deleted != 0)
    if project_id is not None:
        query = query.where(_TABLE.c.project_id == project_id)
    row = session.execute(query).first()
    if row is None:
        raise exception.InstanceNotFound(instance_id=uuid)
    return _attach(session, [_decode(row)], extras)[0]


def flavor_internal_id(session: Session, flavorid: str) -> int | None:
    """The row id of the flavor with API id ``flavorid`` (None if there is none)."""
    return session.execute(sa.select(Flavor.id).where(Flavor.flavorid == str(flavorid))).scalar()


def _tag_clauses(filters: dict) -> list:
    clauses = []

    def has(tag):
        return sa.exists().where(InstanceTag.instance_uuid == _TABLE.c.uuid, InstanceTag.tag == tag)

    def has_any(tags):
        return sa.exists().where(InstanceTag.instance_uuid == _TABLE.c.uuid, InstanceTag.tag.in_(tags))

    if filters.get("tags"):
        clauses.extend(has(t) for t in filters["tags"])
    if filters.get("tags-any"):
        clauses.append(has_any(filters["tags-any"]))
    if filters.get("not-tags"):
        clauses.append(sa.not_(sa.and_(*[has(t) for t in filters["not-tags"]])))
    if filters.get("not-tags-any"):
        clauses.append(sa.not_(has_any(filters["not-tags-any"])))
    return clauses


def list_servers(
    session: Session,
    filters: dict[str, Any],
    limit: int | None = None,
    marker: str | None = None,
    sort_keys: list[str] | None = None,
    sort_dirs: list[str] | None = None,
    extras: frozenset | set = frozenset(),
) -> list[dict]:
    """A page of instances matching ``filters``, sorted, after ``marker``, with metadata and ``extras``.

    Filters (all optional): ``deleted`` (True/False; None: both), the
    exact-match columns of EXACT_FILTERS, lists for ``uuid``/``vm_state``/
    ``task_state`` (a None in task_state matches no task), ``changes_since``
    and ``changes_before`` (datetimes on updated_at), ``locked`` (bool),
    ``tags``/``tags-any``/``not-tags``/``not-tags-any`` (lists), and regular
    expressions for REGEX_FILTERS. Raises Invalid for a bad sort key and
    MarkerNotFound-style NotFound for a missing marker.
    """
    query = sa.select(_TABLE)
    deleted = filters.get("deleted")
    if deleted is True:
        query = query.where(_TABLE.c.deleted != 0)
    elif deleted is False:
        query = query.where(_TABLE.c.deleted == 0)
    for key in EXACT_FILTERS:
        value = filters.get(key)
        if value is not None:
            query = query.where(_TABLE.c[key] == value)
    for key in LIST_FILTERS:
        values = filters.get(key)
        if values is None:
            continue
        values = list(values)
        column = _TABLE.c[key]
        options = [column.in_([v for v in values if v is not None])] if any(v is not None for v in values) else []
        if None in values:
            options.append(column.is_(None))
        query = query.where(sa.or_(*options) if options else sa.false())
    if filters.get("changes_since") is not None:
        query = query.where(_TABLE.c.updated_at >= filters["changes_since"])
    if filters.get("changes_before") is not None:
        query = query.where(_TABLE.c.updated_at <= filters["changes_before"])
    if filters.get("locked") is not None:
        query = query.where(_TABLE.c.locked == (sa.true() if filters["locked"] else sa.false()))
    for clause in _tag_clauses(filters):
        query = query.where(clause)
    regexes = {k: re.compile(filters[k]) for k in REGEX_FILTERS if filters.get(k) is not None}

    sort_keys = list(sort_keys or ["created_at"])
    sort_dirs = list(sort_dirs or [])
    sort_dirs += [sort_dirs[0] if sort_dirs else "desc"] * (len(sort_keys) - len(sort_dirs))
    for default in ("created_at", "id"):
        if default not in sort_keys:
            sort_keys.append(default)
            sort_dirs.append(sort_dirs[0])
    columns = []
    for key, direction in zip(sort_keys, sort_dirs, strict=True):
        if key not in _COLUMNS:
            raise exception.Invalid(reason=f"Invalid sort key {key}")
        if direction not in ("asc", "desc"):
            raise exception.InvalidRequest(reason="Unknown sort direction, must be 'desc' or 'asc'")
        columns.append((getattr(Instance, key), direction))
    if marker is not None:
        marker_row = session.execute(sa.select(_TABLE).where(_TABLE.c.uuid == marker)).first()
        if marker_row is None:
            raise exception.InvalidRequest(reason=f"marker [{marker}] not found")
        query = query.where(_after_marker(columns, marker_row))
    query = query.order_by(*[c.desc() if d == "desc" else c.asc() for c, d in columns])
    if limit == 0:
        return []
    if not regexes and limit is not None:
        query = query.limit(limit)
    rows = session.execute(query)
    if regexes:
        found = []
        for row in rows:
            mapping = row._mapping
            if all(pattern.search(mapping[key] or "") for key, pattern in regexes.items()):
                found.append(_decode(row))
                if limit is not None and len(found) >= limit:
                    break
    else:
        found = [_decode(row) for row in rows]
    return _attach(session, found, extras)


def add_tags(session: Session, uuid: str, tags: list[str]) -> None:
    """Give the instance ``tags`` (duplicates ignored)."""
    for tag in dict.fromkeys(tags):
        session.add(InstanceTag(instance_uuid=uuid, tag=tag))
    session.flush()


def set_system_metadata(session: Session, uuid: str, values: dict[str, Any], now: dt.datetime) -> None:
    """Merge ``values`` into the instance's system metadata (a None value removes the key)."""
    current = session.execute(sa.select(Instance.system_metadata).where(Instance.uuid == uuid)).scalar()
    if current is None:
        raise exception.InstanceNotFound(instance_id=uuid)
    data = json.loads(current or "{}")
    for key, value in values.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    session.execute(
        sa.update(Instance)
        .where(Instance.uuid == uuid)
        .values(system_metadata=json.dumps(data, separators=(",", ":")), updated_at=now)
    )


def list_actions(
    session: Session,
    uuid: str,
    limit: int | None = None,
    marker: str | None = None,
    changes_since: dt.datetime | None = None,
    changes_before: dt.datetime | None = None,
) -> list[dict]:
    """The instance's actions, newest first; ``marker`` is a request id (InvalidRequest if unknown)."""
    table = InstanceAction.__table__
    query = sa.select(table).where(table.c.instance_uuid == uuid)
    if changes_since is not None:
        query = query.where(table.c.updated_at >= changes_since)
    if changes_before is not None:
        query = query.where(table.c.updated_at <= changes_before)
    if marker is not None:
        marker_row = session.execute(
            sa.select(table.c.id, table.c.start_time)
            .where(table.c.instance_uuid == uuid, table.c.request_id == marker)
            .order_by(table.c.id.desc())
        ).first()
        if marker_row is None:
            raise exception.InvalidRequest(reason=f"Marker {marker} could not be found.")
        query = query.where(
            sa.or_(
                table.c.start_time < marker_row.start_time,
                sa.and_(table.c.start_time == marker_row.start_time, table.c.id < marker_row.id),
            )
        )
    query = query.order_by(table.c.start_time.desc(), table.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [dict(r._mapping) for r in session.execute(query)]


def get_action(session: Session, uuid: str, request_id: str) -> dict | None:
    """The instance's action of ``request_id`` with its events (newest first), or None."""
    table = InstanceAction.__table__
    row = session.execute(
        sa.select(table)
        .where(table.c.instance_uuid == uuid, table.c.request_id == request_id)
        .order_by(table.c.id.desc())
    ).first()
    if row is None:
        return None
    action = dict(row._mapping)
    events = InstanceActionEvent.__table__
    action["events"] = [
        dict(e._mapping)
        for e in session.execute(
            sa.select(events)
            .where(events.c.action_id == action["id"])
            .order_by(events.c.start_time.desc(), events.c.id.desc())
        )
    ]
    return action
