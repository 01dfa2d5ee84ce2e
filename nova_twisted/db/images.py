"""Images, their properties, tags and members: queries for the built-in image store.

Plain functions taking a Session (run them through ``Database.run``) and
returning plain dicts: an image is its row's columns plus ``properties``
(dict of str) and ``tags`` (sorted list). Who may see what is decided
here only for listing (in SQL, so pagination stays exact); every other
rule lives in ``nova_twisted.image.store``.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nova_twisted import exception
from nova_twisted.db.models import Image, ImageMember, ImageProperty, ImageTag

#: Columns an image list may be sorted by, with the value standing in for NULL
#: so that ordering and marker comparisons agree on every database.
SORT_KEYS = {
    "name": "",
    "status": "",
    "container_format": "",
    "disk_format": "",
    "size": -1,
    "id": "",
    "created_at": None,
    "updated_at": None,
    "visibility": "",
}


_IMAGES = Image.__table__
_PROPS = ImageProperty.__table__
_TAGS = ImageTag.__table__


def _load_many(session: Session, rows) -> list[dict]:
    images = [row.to_dict() if hasattr(row, "to_dict") else dict(row._mapping) for row in rows]
    if not images:
        return images
    ids = [image["id"] for image in images]
    props: dict[str, dict[str, str]] = {i: {} for i in ids}
    tags: dict[str, list[str]] = {i: [] for i in ids}
    for image_id, name, value in session.execute(
        sa.select(_PROPS.c.image_id, _PROPS.c.name, _PROPS.c.value).where(_PROPS.c.image_id.in_(ids))
    ):
        props[image_id][name] = value
    for image_id, value in session.execute(sa.select(_TAGS.c.image_id, _TAGS.c.value).where(_TAGS.c.image_id.in_(ids))):
        tags[image_id].append(value)
    for image in images:
        image["properties"] = props[image["id"]]
        image["tags"] = sorted(tags[image["id"]])
    return images


def _row(session: Session, image_id: str, include_deleted: bool = False) -> Image:
    query = sa.select(Image).where(Image.id == image_id)
    if not include_deleted:
        query = query.where(Image.deleted == sa.false())
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        raise exception.ImageNotFound(image_id=image_id)
    return row


def create(session: Session, values: dict, properties: dict, tags: list[str], now: dt.datetime) -> dict:
    """Insert an image with its properties and tags; return it. DBDuplicateEntry if the id exists."""
    row = Image(created_at=now, updated_at=now, deleted=False, **values)
    session.add(row)
    session.flush()
    for name, value in properties.items():
        session.add(ImageProperty(image_id=row.id, name=name, value=value))
    for tag in set(tags):
        session.add(ImageTag(image_id=row.id, value=tag))
    session.flush()
    return _load_many(session, [row])[0]


def get(session: Session, image_id: str) -> dict:
    """Return the (undeleted) image; ImageNotFound otherwise."""
    row = session.execute(sa.select(_IMAGES).where(_IMAGES.c.id == image_id, _IMAGES.c.deleted == sa.false())).first()
    if row is None:
        raise exception.ImageNotFound(image_id=image_id)
    return _load_many(session, [row])[0]


def get_for(session: Session, image_id: str, project_id: str | None) -> tuple[dict, str | None]:
    """Return the image and the membership status of ``project_id`` in it (None if not a member).

    Membership only matters for a shared image the project does not own, so only then is it looked up.
    """
    image = get(session, image_id)
    status = None
    if project_id is not None and image["visibility"] == "shared" and image["owner"] != project_id:
        members = ImageMember.__table__
        status = session.execute(
            sa.select(members.c.status).where(members.c.image_id == image_id, members.c.member == project_id)
        ).scalar()
    return image, status


def _member_ids(project_id: str | None, member_status: str):
    query = sa.select(ImageMember.image_id).where(ImageMember.member == project_id)
    if member_status != "all":
        query = query.where(ImageMember.status == member_status)
    return query


def _visibility_condition(project_id: str | None, is_admin: bool, visibility: str | None, member_status: str):
    if is_admin:
        if visibility in (None, "all"):
            return sa.true()
        return Image.visibility == visibility
    owned = sa.and_(Image.owner.is_not(None), Image.owner == project_id)
    shared_with_me = sa.and_(Image.visibility == "shared", Image.id.in_(_member_ids(project_id, member_status)))
    if visibility is None:
        return sa.or_(Image.visibility == "public", owned, shared_with_me)
    if visibility == "all":
        return sa.or_(Image.visibility.in_(("public", "community")), owned, shared_with_me)
    if visibility in ("public", "community"):
        return Image.visibility == visibility
    if visibility == "private":
        return sa.and_(Image.visibility == "private", owned)
    if visibility == "shared":
        return sa.and_(
            Image.visibility == "shared", sa.or_(owned, Image.id.in_(_member_ids(project_id, member_status)))
        )
    raise exception.InvalidRequest(reason=f"Invalid visibility value: {visibility}")


def _sort_expr(key: str):
    column = getattr(Image, key)
    sentinel = SORT_KEYS[key]
    return column if sentinel is None else sa.func.coalesce(column, sentinel)


def _sort_value(image: dict, key: str):
    value = image[key]
    return SORT_KEYS[key] if value is None else value


_OPS = {
    "eq": lambda c, v: c == v,
    "neq": lambda c, v: c != v,
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
    "in": lambda c, v: c.in_(v),
}


def list_images(
    session: Session,
    *,
    project_id: str | None,
    is_admin: bool,
    visibility: str | None = None,
    member_status: str = "accepted",
    core: list[tuple[str, str, object]] = (),
    properties: dict[str, str] | None = None,
    tags: list[str] = (),
    os_hidden: bool | None = False,
    sort: list[tuple[str, str]] = (("created_at", "desc"),),
    limit: int | None = None,
    marker: str | None = None,
) -> list[dict]:
    """Return one page of the images the caller may see, matching every filter.

    ``core`` holds (column, op, value) with op one of eq, neq, gt, gte, lt,
    lte, in; ``properties`` must all match exactly; every tag in ``tags``
    must be on the image. ``sort`` is a list of (key, asc|desc) over
    :data:`SORT_KEYS`; ``id`` breaks ties. ``marker`` is the last image of
    the previous page (InvalidRequest if the caller cannot see it).
    """
    sort = list(sort)
    if "id" not in [key for key, _ in sort]:
        sort.append(("id", sort[0][1] if sort else "desc"))
    visible = _visibility_condition(project_id, is_admin, visibility, member_status)
    query = sa.select(Image).where(Image.deleted == sa.false(), visible)
    if os_hidden is not None:
        query = query.where(Image.os_hidden == os_hidden)
    for column, op, value in core:
        query = query.where(_OPS[op](getattr(Image, column), value))
    for name, value in (properties or {}).items():
        query = query.where(
            Image.id.in_(
                sa.select(ImageProperty.image_id).where(ImageProperty.name == name, ImageProperty.value == value)
            )
        )
    for tag in tags:
        query = query.where(Image.id.in_(sa.select(ImageTag.image_id).where(ImageTag.value == tag)))
    if marker is not None:
        marker_row = session.execute(
            sa.select(Image).where(
                Image.id == marker,
                Image.deleted == sa.false(),
                _visibility_condition(project_id, is_admin, "all" if not is_admin else None, "all"),
            )
        ).scalar_one_or_none()
        if marker_row is None:
            raise exception.InvalidRequest(reason=f"Invalid marker. Image {marker} could not be found.")
        marker_image = marker_row.to_dict()
        after = []
        for i, (key, direction) in enumerate(sort):
            equal = [_sort_expr(k) == _sort_value(marker_image, k) for k, _ in sort[:i]]
            expr, value = _sort_expr(key), _sort_value(marker_image, key)
            after.append(sa.and_(*equal, expr > value if direction == "asc" else expr < value))
        query = query.where(sa.or_(*after))
    for key, direction in sort:
        expr = _sort_expr(key)
        query = query.order_by(expr.asc() if direction == "asc" else expr.desc())
    if limit is not None:
        query = query.limit(limit)
    return _load_many(session, session.execute(query).scalars().all())


def update(
    session: Session,
    image_id: str,
    now: dt.datetime,
    values: dict | None = None,
    set_properties: dict | None = None,
    remove_properties=(),
) -> dict:
    """Set core columns and properties, remove properties; return the image."""
    row = _row(session, image_id)
    for key, value in (values or {}).items():
        setattr(row, key, value)
    for name, value in (set_properties or {}).items():
        prop = session.get(ImageProperty, (image_id, name))
        if prop is None:
            session.add(ImageProperty(image_id=image_id, name=name, value=value))
        else:
            prop.value = value
    for name in remove_properties:
        prop = session.get(ImageProperty, (image_id, name))
        if prop is not None:
            session.delete(prop)
    row.updated_at = now
    session.flush()
    return get(session, image_id)


def transition(session: Session, image_id: str, from_statuses, to_status: str, now: dt.datetime, **values) -> bool:
    """Move the image to ``to_status`` only if it is in one of ``from_statuses``; True if it moved."""
    result = session.execute(
        sa.update(Image)
        .where(Image.id == image_id, Image.deleted == sa.false(), Image.status.in_(tuple(from_statuses)))
        .values(status=to_status, updated_at=now, **values)
    )
    return result.rowcount == 1


def mark_deleted(session: Session, image_id: str, now: dt.datetime) -> dict:
    """Soft-delete the image (status deleted); return its last state."""
    row = _row(session, image_id)
    row.status = "deleted"
    row.deleted = True
    row.updated_at = now
    session.flush()
    return row.to_dict()


def add_tag(session: Session, image_id: str, tag: str, now: dt.datetime, quota: int) -> None:
    """Add ``tag`` (idempotent); OverLimit past ``quota`` tags."""
    row = _row(session, image_id)
    if session.get(ImageTag, (image_id, tag)) is not None:
        return
    count = session.execute(sa.select(sa.func.count()).where(ImageTag.image_id == image_id)).scalar_one()
    if count >= quota:
        raise exception.OverLimit(reason=f"Maximum number of tags ({quota}) exceeded")
    session.add(ImageTag(image_id=image_id, value=tag))
    row.updated_at = now


def remove_tag(session: Session, image_id: str, tag: str, now: dt.datetime) -> None:
    """Remove ``tag``; NotFound if the image does not carry it."""
    row = _row(session, image_id)
    existing = session.get(ImageTag, (image_id, tag))
    if existing is None:
        raise exception.NotFound(f"Tag {tag} not found on image {image_id}")
    session.delete(existing)
    row.updated_at = now


def list_members(session: Session, image_id: str, member: str | None = None) -> list[dict]:
    """Return the image's members (only ``member``'s own entry when given)."""
    query = sa.select(ImageMember).where(ImageMember.image_id == image_id).order_by(ImageMember.created_at)
    if member is not None:
        query = query.where(ImageMember.member == member)
    return [row.to_dict() for row in session.execute(query).scalars()]


def add_member(session: Session, image_id: str, member: str, now: dt.datetime, quota: int) -> dict:
    """Share the image with project ``member`` (status pending); Duplicate if it already is."""
    _row(session, image_id)
    if session.get(ImageMember, (image_id, member)) is not None:
        raise exception.Duplicate(reason=f"Member {member} already associated with image {image_id}")
    count = session.execute(sa.select(sa.func.count()).where(ImageMember.image_id == image_id)).scalar_one()
    if count >= quota:
        raise exception.OverLimit(reason=f"Maximum number of image members ({quota}) exceeded")
    row = ImageMember(image_id=image_id, member=member, status="pending", created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    return row.to_dict()


def get_member(session: Session, image_id: str, member: str) -> dict:
    row = session.get(ImageMember, (image_id, member))
    if row is None:
        raise exception.NotFound(f"Member {member} not found on image {image_id}")
    return row.to_dict()


def update_member(session: Session, image_id: str, member: str, status: str, now: dt.datetime) -> dict:
    row = session.get(ImageMember, (image_id, member))
    if row is None:
        raise exception.NotFound(f"Member {member} not found on image {image_id}")
    row.status = status
    row.updated_at = now
    session.flush()
    return row.to_dict()


def delete_member(session: Session, image_id: str, member: str) -> None:
    row = session.get(ImageMember, (image_id, member))
    if row is None:
        raise exception.NotFound(f"Member {member} not found on image {image_id}")
    session.delete(row)
