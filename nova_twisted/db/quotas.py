"""Quotas: limits (defaults, per-class, per-project) and usage counted from live rows.

Nothing is reserved ahead of time: usage is counted from the instances,
key pairs and server groups that exist. A transaction that consumes quota
first locks its project's row in ``quota_locks`` so that concurrent
requests of one project are checked one after another.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nova_twisted import exception
from nova_twisted.db.models import Instance, KeyPair, Quota, QuotaClass, QuotaLock, ServerGroup, ServerGroupMember

RESOURCES = (
    "instances",
    "cores",
    "ram",
    "metadata_items",
    "key_pairs",
    "server_groups",
    "server_group_members",
    "injected_files",
    "injected_file_content_bytes",
    "injected_file_path_bytes",
)
#: Resources counted from live rows; the others are limits on a single request.
COUNTED = ("instances", "cores", "ram", "key_pairs", "server_groups")
# The checks on the boot path name the tables' columns (the ORM's statement machinery is slow).
_LOCKS = QuotaLock.__table__
_CLASSES = QuotaClass.__table__
_QUOTAS = Quota.__table__
_INSTANCES = Instance.__table__
_GROUPS = ServerGroup.__table__
_MEMBERS = ServerGroupMember.__table__
_KEYPAIRS = KeyPair.__table__
#: nova-network's resources: still shown and settable below API 2.36, never enforced here.
LEGACY_RESOURCES = ("floating_ips", "fixed_ips", "security_groups", "security_group_rules")
LEGACY_DEFAULTS = {"floating_ips": 10, "fixed_ips": -1, "security_groups": 10, "security_group_rules": 20}


def lock_project(session: Session, project_id: str) -> None:
    """Take the project's quota lock until the transaction ends."""
    locked = sa.select(_LOCKS.c.project_id).where(_LOCKS.c.project_id == project_id).with_for_update()
    if session.execute(locked).first() is not None:
        return
    try:
        with session.begin_nested():
            session.execute(sa.insert(_LOCKS).values(project_id=project_id))
    except sa.exc.IntegrityError:
        pass  # created concurrently: fine, lock it below
    session.execute(locked).first()


def class_limits(session: Session, defaults: dict[str, int], class_name: str = "default") -> dict[str, int]:
    """Return the default limits: configuration, overridden by the ``default`` quota class."""
    limits = dict(defaults)
    for resource, limit in session.execute(
        sa.select(_CLASSES.c.resource, _CLASSES.c.hard_limit).where(_CLASSES.c.class_name == class_name)
    ):
        limits[resource] = limit
    return limits


def project_limits(session: Session, project_id: str, defaults: dict[str, int], user_id: str | None = None):
    """Return the limits in force for a project (and user, where a user quota is set)."""
    limits = class_limits(session, defaults)
    for resource, limit in session.execute(
        sa.select(Quota.resource, Quota.hard_limit).where(Quota.project_id == project_id, Quota.user_id == "")
    ):
        limits[resource] = limit
    if user_id:
        for resource, limit in session.execute(
            sa.select(Quota.resource, Quota.hard_limit).where(Quota.project_id == project_id, Quota.user_id == user_id)
        ):
            limits[resource] = limit
    return limits


def usage(session: Session, project_id: str, user_id: str | None = None, per_user: bool = False) -> dict[str, int]:
    """Count what the project (or, with ``per_user``, the user in it) uses now.

    Key pairs belong to users: they are counted when ``user_id`` is given.
    """
    instance_filter = [Instance.project_id == project_id, Instance.deleted == 0]
    group_filter = [ServerGroup.project_id == project_id]
    if per_user and user_id:
        instance_filter.append(Instance.user_id == user_id)
        group_filter.append(ServerGroup.user_id == user_id)
    count, cores, ram = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(Instance.vcpus), 0),
            sa.func.coalesce(sa.func.sum(Instance.memory_mb), 0),
        ).where(*instance_filter)
    ).one()
    groups = session.execute(sa.select(sa.func.count()).select_from(ServerGroup).where(*group_filter)).scalar_one()
    used = {"instances": int(count), "cores": int(cores), "ram": int(ram), "server_groups": int(groups)}
    if user_id:
        used["key_pairs"] = session.execute(
            sa.select(sa.func.count()).select_from(KeyPair).where(KeyPair.user_id == user_id)
        ).scalar_one()
    return used


def user_limits(session: Session, project_id: str, user_id: str) -> dict[str, int]:
    """The limits set for one user of a project (only those set)."""
    return dict(
        session.execute(
            sa.select(Quota.resource, Quota.hard_limit).where(Quota.project_id == project_id, Quota.user_id == user_id)
        ).all()
    )


def group_members(session: Session, group_uuid: str) -> int:
    return session.execute(
        sa.select(sa.func.count())
        .select_from(_MEMBERS)
        .join(_GROUPS, _GROUPS.c.id == _MEMBERS.c.group_id)
        .where(_GROUPS.c.uuid == group_uuid)
    ).scalar_one()


def check_deltas(session: Session, check: dict) -> None:
    """Raise QuotaExceeded if adding ``check["deltas"]`` would pass a limit.

    ``check`` = {"project_id", "user_id", "defaults": {...}, "deltas": {...}}
    and, for ``server_group_members``, "server_group_uuid". The project's
    usage is checked against the project's limits and, where limits are set
    for the user, the user's own usage against those. Only the resources
    asked for, and only those with a limit, are counted. Call inside the
    transaction that then writes, after lock_project.
    """
    project_id = check["project_id"]
    user_id = check.get("user_id")
    deltas = {r: d for r, d in check["deltas"].items() if d > 0}
    if not deltas:
        return
    limits, mine = _limits_for_check(session, project_id, user_id, check.get("defaults", {}))
    # Key pairs are a user's own: their limit is the user's if set, else the project's.
    if user_id and "key_pairs" in deltas and "key_pairs" not in mine:
        mine["key_pairs"] = limits.get("key_pairs", -1)
    limited = {r: d for r, d in deltas.items() if limits.get(r, -1) >= 0}
    over = []
    if limited:
        used = _usage_of(session, limited, project_id, user_id, False, check.get("server_group_uuid"))
        over = _over(limited, limits, used)
    mine = {r: limit for r, limit in mine.items() if r in deltas and limit >= 0}
    if not over and mine:
        user_used = _usage_of(session, mine, project_id, user_id, True, check.get("server_group_uuid"))
        over = _over({r: deltas[r] for r in mine}, mine, user_used)
    if over:
        names = ", ".join(r for r, *_ in over)
        resource, delta, current, limit = over[0]
        raise exception.QuotaExceeded(
            f"Quota exceeded for {names}: Requested {delta}, but already used {current} of {limit} {resource}",
            resources=names,
            req=delta,
            used=current,
            allowed=limit,
        )


def _limits_for_check(session: Session, project_id: str, user_id: str | None, defaults: dict[str, int]):
    """(project limits, the user's own limits) in two queries."""
    limits = class_limits(session, defaults)
    mine: dict[str, int] = {}
    owners = [""] + ([user_id] if user_id else [])
    for owner, resource, limit in session.execute(
        sa.select(_QUOTAS.c.user_id, _QUOTAS.c.resource, _QUOTAS.c.hard_limit).where(
            _QUOTAS.c.project_id == project_id, _QUOTAS.c.user_id.in_(owners)
        )
    ):
        (mine if owner else limits)[resource] = limit
    return limits, mine


def _usage_of(session: Session, resources, project_id: str, user_id: str | None, per_user: bool, group_uuid):
    """Count only ``resources`` (one query for the instance-based ones)."""
    used: dict[str, int] = {}
    if {"instances", "cores", "ram"} & set(resources):
        conditions = [_INSTANCES.c.project_id == project_id, _INSTANCES.c.deleted == 0]
        if per_user and user_id:
            conditions.append(_INSTANCES.c.user_id == user_id)
        count, cores, ram = session.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(_INSTANCES.c.vcpus), 0),
                sa.func.coalesce(sa.func.sum(_INSTANCES.c.memory_mb), 0),
            ).where(*conditions)
        ).one()
        used.update(instances=int(count), cores=int(cores), ram=int(ram))
    if "server_groups" in resources:
        conditions = [_GROUPS.c.project_id == project_id]
        if per_user and user_id:
            conditions.append(_GROUPS.c.user_id == user_id)
        used["server_groups"] = session.execute(
            sa.select(sa.func.count()).select_from(_GROUPS).where(*conditions)
        ).scalar_one()
    if "key_pairs" in resources and user_id:
        used["key_pairs"] = session.execute(
            sa.select(sa.func.count()).select_from(_KEYPAIRS).where(_KEYPAIRS.c.user_id == user_id)
        ).scalar_one()
    if "server_group_members" in resources:
        used["server_group_members"] = group_members(session, group_uuid or "")
    return used


def _over(deltas: dict[str, int], limits: dict[str, int], used: dict[str, int]) -> list[tuple]:
    over = []
    for resource, delta in deltas.items():
        limit = limits.get(resource, -1)
        if limit < 0:
            continue
        current = used.get(resource, 0)
        if current + delta > limit:
            over.append((resource, delta, current, limit))
    return over


def set_limits(session: Session, project_id: str, limits: dict[str, int], user_id: str = "") -> None:
    """Set per-project (or per-user) limits."""
    for resource, limit in limits.items():
        if resource not in RESOURCES and resource not in LEGACY_RESOURCES:
            raise exception.Invalid(reason=f"Unknown quota resource {resource}")
        row = session.execute(
            sa.select(Quota).where(Quota.project_id == project_id, Quota.user_id == user_id, Quota.resource == resource)
        ).scalar_one_or_none()
        if row is None:
            session.add(Quota(project_id=project_id, user_id=user_id, resource=resource, hard_limit=int(limit)))
        else:
            row.hard_limit = int(limit)


def delete_limits(session: Session, project_id: str, user_id: str = "") -> None:
    """Drop the limits set for a user of a project or, without ``user_id``, for the project and all its users."""
    query = sa.delete(Quota).where(Quota.project_id == project_id)
    if user_id:
        query = query.where(Quota.user_id == user_id)
    session.execute(query)


def limits_and_usage(
    session: Session, project_id: str, defaults: dict[str, int], user_id: str | None = None
) -> tuple[dict[str, int], dict[str, int]]:
    """(limits, in use) of a project or, with ``user_id``, of one of its users, as Nova shows them.

    A user's limits are the project's with the user's own on top, and its
    usage is what that user holds. As in Nova, key pairs and server group
    members show no usage here (they are counted per user and per group
    when consumed).
    """
    limits = project_limits(session, project_id, defaults, user_id)
    used = usage(session, project_id, user_id, per_user=bool(user_id))
    used["key_pairs"] = 0
    used["server_group_members"] = 0
    return limits, used


def set_class_limits(session: Session, class_name: str, limits: dict[str, int]) -> None:
    for resource, limit in limits.items():
        row = session.get(QuotaClass, (class_name, resource))
        if row is None:
            session.add(QuotaClass(class_name=class_name, resource=resource, hard_limit=int(limit)))
        else:
            row.hard_limit = int(limit)
