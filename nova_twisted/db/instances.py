"""Instances: creation (with quota check), reads, guarded updates, soft delete.

Instance dicts carry the columns plus ``name`` (the domain name),
``metadata`` (dict), and ``flavor``/``system_metadata`` decoded from JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nova_twisted import exception, utils
from nova_twisted.db import quotas
from nova_twisted.db.models import (
    Allocation,
    Instance,
    InstanceAction,
    InstanceFault,
    InstanceMetadata,
    RequestSpec,
    ServerGroup,
    ServerGroupMember,
)

_JSON_COLUMNS = ("flavor", "old_flavor", "new_flavor", "system_metadata")
# Hot paths use the tables' columns, not the mapped classes': a statement naming mapped
# attributes goes through the ORM's (much slower) compile and bulk-update machinery.
_I = Instance.__table__
_IM = InstanceMetadata.__table__
_COLUMNS = [c.key for c in Instance.__table__.columns]


def instance_name(instance_id: int) -> str:
    """The hypervisor's name of an instance, as Nova names it."""
    return f"instance-{instance_id:08x}"


def _row_dict(row) -> dict:
    data = dict(row._mapping) if hasattr(row, "_mapping") else row.to_dict()
    for key in _JSON_COLUMNS:
        value = data.get(key)
        data[key] = json.loads(value) if value else ({} if key in ("flavor", "system_metadata") else None)
    data["name"] = instance_name(data["id"])
    return data


def _attach_metadata(session: Session, instances: list[dict]) -> list[dict]:
    by_uuid = {i["uuid"]: i for i in instances}
    for inst in instances:
        inst["metadata"] = {}
    if not by_uuid:
        return instances
    uuids = list(by_uuid)
    for start in range(0, len(uuids), 500):
        chunk = uuids[start : start + 500]
        rows = session.execute(
            sa.select(_IM.c.instance_uuid, _IM.c.key, _IM.c.value).where(_IM.c.instance_uuid.in_(chunk))
        )
        for uuid, key, value in rows:
            by_uuid[uuid]["metadata"][key] = value
    return instances


def create(
    session: Session,
    instances: list[dict],
    request_spec: dict,
    action: dict,
    quota_check: dict | None = None,
    server_group_uuid: str | None = None,
    now: dt.datetime | None = None,
) -> list[dict]:
    """Insert instances (with metadata, request spec, a create action each) in one transaction.

    ``quota_check`` = {"project_id", "user_id", "limits": {resource: limit},
    "deltas": {resource: amount}}: usage is counted under the project's quota
    lock, so concurrent creates of a project can never exceed its limits.
    Raises QuotaExceeded (nothing is written then).
    """
    now = now or utils.utcnow()
    if quota_check:
        quotas.lock_project(session, quota_check["project_id"])
        quotas.check_deltas(session, quota_check)
    group_id = None
    if server_group_uuid:
        group_id = session.execute(
            sa.select(ServerGroup.id).where(ServerGroup.uuid == server_group_uuid)
        ).scalar_one_or_none()
        if group_id is None:
            raise exception.InstanceGroupNotFound(group_uuid=server_group_uuid)
    spec_text = utils.dumps(request_spec)
    uuids = []
    for values in instances:
        values = dict(values)
        metadata = values.pop("metadata", {}) or {}
        for key in _JSON_COLUMNS:
            if key in values and not isinstance(values[key], str) and values[key] is not None:
                values[key] = utils.dumps(values[key])
        values.setdefault("created_at", now)
        values.setdefault("updated_at", now)
        session.execute(sa.insert(_I).values(**values))
        uuid = values["uuid"]
        uuids.append(uuid)
        if metadata:
            session.execute(
                sa.insert(_IM), [{"instance_uuid": uuid, "key": k, "value": v} for k, v in metadata.items()]
            )
        session.execute(sa.insert(RequestSpec.__table__).values(instance_uuid=uuid, spec=spec_text))
        session.execute(
            sa.insert(InstanceAction.__table__).values(
                action=action["action"],
                instance_uuid=uuid,
                request_id=action["request_id"],
                user_id=action.get("user_id"),
                project_id=action.get("project_id"),
                start_time=now,
                updated_at=now,
            )
        )
        if group_id is not None:
            session.execute(sa.insert(ServerGroupMember.__table__).values(group_id=group_id, instance_uuid=uuid))
    # Read back once (ids and column defaults come from the database); the metadata is what was given.
    found = {row.uuid: _row_dict(row) for row in session.execute(sa.select(_I).where(_I.c.uuid.in_(uuids)))}
    for uuid, values in zip(uuids, instances, strict=True):
        found[uuid]["metadata"] = dict(values.get("metadata") or {})
    return [found[uuid] for uuid in uuids]


def _base_query(read_deleted: str = "no"):
    query = sa.select(_I)
    if read_deleted == "no":
        query = query.where(_I.c.deleted == 0)
    elif read_deleted == "only":
        query = query.where(_I.c.deleted != 0)
    return query


def get(session: Session, uuid: str, read_deleted: str = "no", project_id: str | None = None) -> dict:
    """Return one instance; InstanceNotFound if missing (or in another project)."""
    query = _base_query(read_deleted).where(_I.c.uuid == uuid)
    if project_id is not None:
        query = query.where(_I.c.project_id == project_id)
    row = session.execute(query).first()
    if row is None:
        raise exception.InstanceNotFound(instance_id=uuid)
    return _attach_metadata(session, [_row_dict(row)])[0]


def get_by_id(session: Session, instance_id: int, read_deleted: str = "no") -> dict:
    row = session.execute(_base_query(read_deleted).where(Instance.id == instance_id)).first()
    if row is None:
        raise exception.InstanceNotFound(instance_id=instance_id)
    return _attach_metadata(session, [_row_dict(row)])[0]


def list_instances(
    session: Session,
    filters: dict[str, Any] | None = None,
    limit: int | None = None,
    marker: str | None = None,
    sort_keys: list[str] | None = None,
    sort_dirs: list[str] | None = None,
    with_metadata: bool = True,
) -> list[dict]:
    """Return instances matching ``filters``, sorted, after ``marker``, at most ``limit``.

    Filters: project_id, user_id, host, hosts (list), uuids (list), vm_state
    (str or list), task_state, name (regex on display_name), changes_since
    (datetime; includes deleted), deleted (bool), reservation_id, image_ref,
    flavor_id, availability_zone.
    """
    filters = dict(filters or {})
    changes_since = filters.pop("changes_since", None)
    deleted = filters.pop("deleted", None)
    if changes_since is not None or deleted:
        query = _base_query("yes")
        if deleted is True:
            query = query.where(Instance.deleted != 0)
        elif deleted is False:
            query = query.where(Instance.deleted == 0)
    else:
        query = _base_query("no")
    if changes_since is not None:
        query = query.where(Instance.updated_at >= changes_since)
    name_regex = filters.pop("name", None)
    for key, column in (
        ("project_id", Instance.project_id),
        ("user_id", Instance.user_id),
        ("host", Instance.host),
        ("task_state", Instance.task_state),
        ("reservation_id", Instance.reservation_id),
        ("image_ref", Instance.image_ref),
        ("flavor_id", Instance.instance_type_id),
        ("availability_zone", Instance.availability_zone),
        ("key_name", Instance.key_name),
    ):
        if key in filters and filters[key] is not None:
            query = query.where(column == filters.pop(key))
    if filters.get("hosts") is not None:
        query = query.where(Instance.host.in_(filters.pop("hosts")))
    if filters.get("uuids") is not None:
        query = query.where(Instance.uuid.in_(filters.pop("uuids")))
    vm_state = filters.pop("vm_state", None)
    if vm_state is not None:
        states = [vm_state] if isinstance(vm_state, str) else list(vm_state)
        query = query.where(Instance.vm_state.in_(states))
    sort_keys = list(sort_keys or ["created_at"])
    sort_dirs = list(sort_dirs or ["desc"] * len(sort_keys))
    if "id" not in sort_keys:
        sort_keys.append("id")
        sort_dirs.append(sort_dirs[0] if sort_dirs else "desc")
    columns = []
    for key, direction in zip(sort_keys, sort_dirs, strict=False):
        if key not in _COLUMNS:
            raise exception.Invalid(reason=f"Invalid sort key {key}")
        column = getattr(Instance, key)
        columns.append((column, direction))
    if marker is not None:
        marker_row = session.execute(sa.select(Instance.__table__).where(Instance.uuid == marker)).first()
        if marker_row is None:
            raise exception.NotFound(f"Marker {marker} could not be found.")
        query = query.where(_after_marker(columns, marker_row))
    query = query.order_by(*[c.desc() if d == "desc" else c.asc() for c, d in columns])
    if name_regex is None and limit is not None:
        query = query.limit(limit)
    rows = [_row_dict(row) for row in session.execute(query)]
    if name_regex is not None:
        try:
            pattern = re.compile(name_regex)
        except re.error:
            pattern = re.compile(re.escape(name_regex))
        rows = [r for r in rows if pattern.search(r["display_name"] or "")]
        if limit is not None:
            rows = rows[:limit]
    if with_metadata:
        _attach_metadata(session, rows)
    return rows


def _after_marker(columns, marker_row):
    """Keyset pagination: rows strictly after the marker in the sort order."""
    clauses = []
    for i, (column, direction) in enumerate(columns):
        value = marker_row._mapping[column.key]
        equal_before = [c == marker_row._mapping[c.key] for c, _ in columns[:i]]
        if value is None:
            # NULLs sort first ascending (SQLite and MySQL): nothing is "before" a NULL descending.
            if direction == "asc":
                step = column.is_not(None)
            else:
                continue
        else:
            step = column > value if direction == "asc" else sa.or_(column < value, column.is_(None))
        clauses.append(sa.and_(*equal_before, step))
    return sa.or_(*clauses)


def update(
    session: Session,
    uuid: str,
    values: dict,
    expected_task_state=Ellipsis,
    expected_vm_state=Ellipsis,
    now: dt.datetime | None = None,
    returning: bool = True,
) -> dict | None:
    """Set ``values`` on a live instance, compare-and-swap on its states.

    ``expected_task_state`` / ``expected_vm_state`` (a value, None, or a
    list of them) must match the current states or UnexpectedTaskState is
    raised and nothing changes. Returns the updated instance (None when
    not ``returning``: one query less for callers that do not need it).
    """
    values = dict(values)
    metadata = values.pop("metadata", None)
    for key in _JSON_COLUMNS:
        if key in values and values[key] is not None and not isinstance(values[key], str):
            values[key] = utils.dumps(values[key])
    values["updated_at"] = now or utils.utcnow()
    statement = sa.update(_I).where(_I.c.uuid == uuid, _I.c.deleted == 0)
    for expected, column in ((expected_task_state, _I.c.task_state), (expected_vm_state, _I.c.vm_state)):
        if expected is Ellipsis:
            continue
        options = expected if isinstance(expected, (list, tuple, set)) else [expected]
        conditions = [column.is_(None) if o is None else column == o for o in options]
        statement = statement.where(sa.or_(*conditions))
    result = session.execute(statement.values(**values))
    if result.rowcount == 0:
        current = session.execute(
            sa.select(_I.c.task_state, _I.c.vm_state).where(_I.c.uuid == uuid, _I.c.deleted == 0)
        ).first()
        if current is None:
            raise exception.InstanceNotFound(instance_id=uuid)
        expected = expected_task_state if expected_task_state is not Ellipsis else expected_vm_state
        actual = current.task_state if expected_task_state is not Ellipsis else current.vm_state
        raise exception.UnexpectedTaskState(instance_uuid=uuid, expected=expected, actual=actual)
    if metadata is not None:
        set_metadata(session, uuid, metadata, delete=True)
    return get(session, uuid) if returning else None


def set_metadata(session: Session, uuid: str, metadata: dict, delete: bool = False) -> dict:
    """Set (and with ``delete``, replace) the instance's metadata; return it all."""
    current = {
        key: value
        for key, value in session.execute(
            sa.select(InstanceMetadata.key, InstanceMetadata.value).where(InstanceMetadata.instance_uuid == uuid)
        )
    }
    if delete:
        gone = [key for key in current if key not in metadata]
        if gone:
            session.execute(
                sa.delete(InstanceMetadata).where(
                    InstanceMetadata.instance_uuid == uuid, InstanceMetadata.key.in_(gone)
                )
            )
    for key, value in metadata.items():
        if key in current:
            if current[key] != value:
                session.execute(
                    sa.update(InstanceMetadata)
                    .where(InstanceMetadata.instance_uuid == uuid, InstanceMetadata.key == key)
                    .values(value=value)
                )
        else:
            session.add(InstanceMetadata(instance_uuid=uuid, key=key, value=value))
    session.execute(sa.update(Instance).where(Instance.uuid == uuid).values(updated_at=utils.utcnow()))
    session.flush()
    result = {} if delete else dict(current)
    result.update(metadata)
    return result


def delete_metadata_key(session: Session, uuid: str, key: str) -> None:
    result = session.execute(
        sa.delete(InstanceMetadata).where(InstanceMetadata.instance_uuid == uuid, InstanceMetadata.key == key)
    )
    if result.rowcount == 0:
        raise exception.NotFound(f"Metadata item was not found: {key}")


def destroy(session: Session, uuid: str, now: dt.datetime | None = None) -> dict:
    """Soft-delete the instance, release its allocations and group membership; idempotent."""
    now = now or utils.utcnow()
    row = session.execute(sa.select(Instance).where(Instance.uuid == uuid)).scalar_one_or_none()
    if row is None:
        raise exception.InstanceNotFound(instance_id=uuid)
    if row.deleted == 0:
        row.deleted = row.id
        row.deleted_at = now
        row.terminated_at = row.terminated_at or now
        row.vm_state = "deleted"
        row.task_state = None
        row.power_state = 0
        row.updated_at = now
    session.execute(sa.delete(Allocation).where(Allocation.consumer_id == uuid))
    session.execute(sa.delete(ServerGroupMember).where(ServerGroupMember.instance_uuid == uuid))
    session.flush()
    return _row_dict(row)


def get_request_spec(session: Session, uuid: str) -> dict:
    spec = session.execute(sa.select(RequestSpec.spec).where(RequestSpec.instance_uuid == uuid)).scalar_one_or_none()
    if spec is None:
        raise exception.NotFound(f"Request spec of {uuid} could not be found.")
    return json.loads(spec)


def save_request_spec(session: Session, uuid: str, spec: dict) -> None:
    session.execute(sa.update(RequestSpec).where(RequestSpec.instance_uuid == uuid).values(spec=utils.dumps(spec)))


def add_fault(
    session: Session,
    uuid: str,
    code: int,
    message: str,
    details: str | None,
    host: str | None,
    now: dt.datetime | None = None,
) -> dict:
    """Record a fault on an instance (the newest is what the API shows)."""
    fault = InstanceFault(
        instance_uuid=uuid,
        code=code,
        message=(message or "")[:255],
        details=details,
        host=host,
        created_at=now or utils.utcnow(),
    )
    session.add(fault)
    session.flush()
    return fault.to_dict()


def latest_faults(session: Session, uuids: list[str]) -> dict[str, dict]:
    """Return {uuid: newest fault} for the instances that have one."""
    if not uuids:
        return {}
    found: dict[str, dict] = {}
    for start in range(0, len(uuids), 500):
        chunk = uuids[start : start + 500]
        rows = session.execute(
            sa.select(InstanceFault.__table__)
            .where(InstanceFault.instance_uuid.in_(chunk))
            .order_by(InstanceFault.created_at.desc(), InstanceFault.id.desc())
        )
        for row in rows:
            found.setdefault(row.instance_uuid, dict(row._mapping))
    return found


def count_by_host(session: Session, host: str) -> int:
    return session.execute(
        sa.select(sa.func.count()).select_from(Instance).where(Instance.host == host, Instance.deleted == 0)
    ).scalar_one()


def fault_counts(session: Session, uuids: list[str]) -> dict[str, int]:
    """How many faults each instance has had (each failed build attempt leaves one)."""
    if not uuids:
        return {}
    rows = session.execute(
        sa.select(InstanceFault.instance_uuid, sa.func.count())
        .where(InstanceFault.instance_uuid.in_(uuids))
        .group_by(InstanceFault.instance_uuid)
    )
    return {uuid: int(count) for uuid, count in rows}
