"""Flavors, their extra specs and (for private flavors) project access."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nova_twisted import exception, utils
from nova_twisted.db.models import Flavor, FlavorExtraSpec, FlavorProject


def _with_specs(session: Session, flavors: list) -> list[dict]:
    out = [f.to_dict() if hasattr(f, "to_dict") else dict(f._mapping) for f in flavors]
    ids = [f["id"] for f in out]
    specs: dict[int, dict] = {i: {} for i in ids}
    if ids:
        extra = FlavorExtraSpec.__table__
        for flavor_id, key, value in session.execute(
            sa.select(extra.c.flavor_id, extra.c.key, extra.c.value).where(extra.c.flavor_id.in_(ids))
        ):
            specs[flavor_id][key] = value
    for f in out:
        f["extra_specs"] = specs.get(f["id"], {})
    return out


def create(session: Session, values: dict, projects: list[str] = (), now: dt.datetime | None = None) -> dict:
    """Create a flavor; FlavorExists if its name or flavorid is taken."""
    values = dict(values)
    extra_specs = values.pop("extra_specs", {}) or {}
    if not values.get("flavorid"):
        values["flavorid"] = utils.generate_uuid()
    for field in ("name", "flavorid"):
        taken = session.execute(sa.select(Flavor.id).where(getattr(Flavor, field) == values[field])).first()
        if taken:
            raise exception.FlavorExists(field="name" if field == "name" else "ID", value=values[field])
    row = Flavor(created_at=now or utils.utcnow(), **values)
    session.add(row)
    session.flush()
    for key, value in extra_specs.items():
        session.add(FlavorExtraSpec(flavor_id=row.id, key=key, value=str(value)))
    for project in projects:
        session.add(FlavorProject(flavor_id=row.id, project_id=project))
    session.flush()
    return _with_specs(session, [row])[0]


def _visible(query, project_id: str | None, is_admin: bool):
    if is_admin or project_id is None:
        return query
    access = sa.select(FlavorProject.flavor_id).where(FlavorProject.project_id == project_id)
    return query.where(sa.or_(Flavor.is_public == sa.true(), Flavor.id.in_(access)))


def get_by_flavorid(
    session: Session, flavorid: str, project_id: str | None = None, is_admin: bool = True, read_disabled: bool = True
) -> dict:
    """The flavor, if the project may use it (public, or private with access); FlavorNotFound otherwise."""
    flavors, access = Flavor.__table__, FlavorProject.__table__
    query = sa.select(flavors).where(flavors.c.flavorid == str(flavorid))
    if not is_admin and project_id is not None:
        allowed = sa.select(access.c.flavor_id).where(access.c.project_id == project_id)
        query = query.where(sa.or_(flavors.c.is_public == sa.true(), flavors.c.id.in_(allowed)))
    row = session.execute(query).first()
    if row is None or (row.disabled and not read_disabled):
        raise exception.FlavorNotFound(flavor_id=flavorid)
    return _with_specs(session, [row])[0]


def get_by_name(session: Session, name: str) -> dict:
    row = session.execute(sa.select(Flavor).where(Flavor.name == name)).scalar_one_or_none()
    if row is None:
        raise exception.FlavorNotFound(flavor_id=name)
    return _with_specs(session, [row])[0]


SORT_KEYS = (
    "flavorid",
    "name",
    "memory_mb",
    "vcpus",
    "root_gb",
    "swap",
    "id",
    "created_at",
    "updated_at",
    "description",
    "ephemeral_gb",
    "rxtx_factor",
    "disabled",
    "is_public",
    "vcpu_weight",
)


def list_flavors(
    session: Session,
    project_id: str | None = None,
    is_admin: bool = False,
    is_public: bool | None = True,
    min_ram: int | None = None,
    min_disk: int | None = None,
    sort_key: str = "flavorid",
    sort_dir: str = "asc",
    limit: int | None = None,
    marker: str | None = None,
) -> list[dict]:
    """Flavors as Nova lists them.

    ``is_public`` True: public flavors plus the private ones ``project_id``
    has access to; False: private flavors only; None: all. Disabled flavors
    are listed for admins only. ``marker`` is a flavorid the caller can see;
    an unknown one raises Invalid (Nova's 400). Invalid for a bad sort key or
    direction.
    """
    if sort_key not in SORT_KEYS:
        raise exception.Invalid(reason="Sort key supplied was not valid.")
    if sort_dir not in ("asc", "desc"):
        raise exception.Invalid(reason=f"Invalid sort direction {sort_dir}")
    query = sa.select(Flavor)
    if not is_admin:
        query = query.where(Flavor.disabled == sa.false())
    if is_public is True:
        if project_id is not None:
            access = sa.select(FlavorProject.flavor_id).where(FlavorProject.project_id == project_id)
            query = query.where(sa.or_(Flavor.is_public == sa.true(), Flavor.id.in_(access)))
        else:
            query = query.where(Flavor.is_public == sa.true())
    elif is_public is False:
        query = query.where(Flavor.is_public == sa.false())
    if min_ram is not None:
        query = query.where(Flavor.memory_mb >= min_ram)
    if min_disk is not None:
        query = query.where(Flavor.root_gb >= min_disk)
    column = getattr(Flavor, sort_key)
    direction = sa.desc if sort_dir == "desc" else sa.asc
    if marker is not None:
        try:
            mark = get_by_flavorid(session, marker, project_id, is_admin)
        except exception.FlavorNotFound:
            raise exception.Invalid(reason=f"marker [{marker}] not found") from None
        value, mark_id = mark[sort_key], mark["id"]
        after = (column < value) if sort_dir == "desc" else (column > value)
        later_id = (Flavor.id < mark_id) if sort_dir == "desc" else (Flavor.id > mark_id)
        # NULLs sort first ascending and last descending (SQLite and MariaDB alike).
        if value is None:
            same = sa.and_(column.is_(None), later_id)
            query = query.where(sa.or_(column.is_not(None), same) if sort_dir == "asc" else same)
        else:
            beyond = sa.or_(after, sa.and_(column == value, later_id))
            query = query.where(sa.or_(beyond, column.is_(None)) if sort_dir == "desc" else beyond)
    query = query.order_by(direction(column), direction(Flavor.id))
    if limit is not None:
        query = query.limit(limit)
    return _with_specs(session, list(session.execute(query).scalars()))


def delete(session: Session, flavorid: str) -> None:
    """Delete a flavor with its extra specs and access list; FlavorNotFound if there is none."""
    row = session.execute(sa.select(Flavor).where(Flavor.flavorid == flavorid)).scalar_one_or_none()
    if row is None:
        raise exception.FlavorNotFound(flavor_id=flavorid)
    session.execute(sa.delete(FlavorExtraSpec).where(FlavorExtraSpec.flavor_id == row.id))
    session.execute(sa.delete(FlavorProject).where(FlavorProject.flavor_id == row.id))
    session.delete(row)


def update(session: Session, flavorid: str, values: dict) -> dict:
    row = session.execute(sa.select(Flavor).where(Flavor.flavorid == flavorid)).scalar_one_or_none()
    if row is None:
        raise exception.FlavorNotFound(flavor_id=flavorid)
    for key, value in values.items():
        setattr(row, key, value)
    session.flush()
    return _with_specs(session, [row])[0]


def set_extra_specs(session: Session, flavorid: str, specs: dict) -> dict:
    flavor = get_by_flavorid(session, flavorid)
    for key, value in specs.items():
        row = session.get(FlavorExtraSpec, (flavor["id"], key))
        if row is None:
            session.add(FlavorExtraSpec(flavor_id=flavor["id"], key=key, value=str(value)))
        else:
            row.value = str(value)
    session.flush()
    return get_by_flavorid(session, flavorid)["extra_specs"]


def delete_extra_spec(session: Session, flavorid: str, key: str) -> None:
    flavor = get_by_flavorid(session, flavorid)
    result = session.execute(
        sa.delete(FlavorExtraSpec).where(FlavorExtraSpec.flavor_id == flavor["id"], FlavorExtraSpec.key == key)
    )
    if result.rowcount == 0:
        raise exception.NotFound(f"Flavor {flavorid} has no extra specs with key {key}.")


def access_list(session: Session, flavorid: str) -> list[str]:
    flavor = get_by_flavorid(session, flavorid)
    return [
        p
        for (p,) in session.execute(
            sa.select(FlavorProject.project_id)
            .where(FlavorProject.flavor_id == flavor["id"])
            .order_by(FlavorProject.project_id)
        )
    ]


def add_access(session: Session, flavorid: str, project_id: str) -> list[str]:
    flavor = get_by_flavorid(session, flavorid)
    if flavor["is_public"]:
        raise exception.Conflict("Can not add access to a public flavor.")
    if session.get(FlavorProject, (flavor["id"], project_id)) is not None:
        raise exception.Conflict(
            f"Flavor access already exists for flavor {flavorid} and project {project_id} combination."
        )
    session.add(FlavorProject(flavor_id=flavor["id"], project_id=project_id))
    session.flush()
    return access_list(session, flavorid)


def remove_access(session: Session, flavorid: str, project_id: str) -> list[str]:
    flavor = get_by_flavorid(session, flavorid)
    row = session.get(FlavorProject, (flavor["id"], project_id))
    if row is None:
        raise exception.NotFound(f"Flavor access not found for {flavorid} / {project_id} combination.")
    session.delete(row)
    session.flush()
    return access_list(session, flavorid)


def embedded(flavor: dict) -> dict:
    """The copy of a flavor kept inside an instance (survives the flavor's deletion)."""
    keys = (
        "id",
        "flavorid",
        "name",
        "memory_mb",
        "vcpus",
        "root_gb",
        "ephemeral_gb",
        "swap",
        "rxtx_factor",
        "vcpu_weight",
        "is_public",
        "description",
        "extra_specs",
    )
    return {k: flavor.get(k) for k in keys}
