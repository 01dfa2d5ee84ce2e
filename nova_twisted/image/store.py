"""The built-in image store: IImageService on the database plus one file per image on disk.

Rules follow Glance v2: an image belongs to its owner's project; admins
see and change everything; others see public and community images, their
own, and shared images they are a member of. Only the owner (or an admin)
changes an image, only an admin makes one public, and a protected image
cannot be deleted. Data goes queued -> saving -> active, or killed when an
upload fails; files are written under ``data_dir`` as ``<id>.part`` and
renamed into place once complete, hashed (md5 and sha512) on the way in.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from twisted.internet import defer
from zope.interface import implementer

from nova_twisted import exception, utils
from nova_twisted.db import images as db
from nova_twisted.image.interfaces import IImageService
from nova_twisted.image.model import (
    MEMBER_STATUSES,
    READ_ONLY,
    RESERVED,
    SETTABLE,
    check_formats,
    check_property,
    check_tag,
    check_value,
    image_view,
    member_view,
    parse_filters,
    parse_sort,
)
from nova_twisted.image.streams import Digest, HashingWriter, ImagePool, SizeLimitExceeded


@implementer(IImageService)
class ImageStore:
    """The built-in IImageService (see the module docstring for its rules)."""

    def __init__(
        self,
        database,
        reactor,
        data_dir: str,
        chunk_size: int = 1024 * 1024,
        image_size_cap: int = 1099511627776,
        property_quota: int = 128,
        tag_quota: int = 128,
        member_quota: int = 128,
        pool: ImagePool | None = None,
    ):
        self.db = database
        self.reactor = reactor
        self.data_dir = os.path.abspath(data_dir)
        self.chunk_size = chunk_size
        self.image_size_cap = image_size_cap
        self.property_quota = property_quota
        self.tag_quota = tag_quota
        self.member_quota = member_quota
        self.pool = pool or ImagePool(reactor, "nova-image")

    @classmethod
    def from_config(cls, conf, database, reactor) -> "ImageStore":
        """The store as ``[image]`` configures it."""
        section = conf.image
        return cls(
            database,
            reactor,
            section.data_dir,
            chunk_size=section.chunk_size,
            image_size_cap=section.image_size_cap,
            property_quota=section.image_property_quota,
            tag_quota=section.image_tag_quota,
            member_quota=section.image_member_quota,
        )

    def close(self) -> None:
        """Stop the file thread pool."""
        self.pool.stop()

    def _now(self) -> dt.datetime:
        return utils.utcnow(self.reactor)

    def path_of(self, image_id: str) -> str:
        """Where the data of ``image_id`` lives."""
        return os.path.join(self.data_dir, image_id)

    # -- access ---------------------------------------------------------------
    async def _get(self, ctxt, image_id: str) -> tuple[dict, str | None]:
        if not utils.is_uuid_like(image_id):
            raise exception.ImageNotFound(image_id=image_id)
        image, member_status = await self.db.run(db.get_for, image_id, ctxt.project_id)
        if not self._may_see(ctxt, image, member_status):
            raise exception.ImageNotFound(image_id=image_id)
        return image, member_status

    @staticmethod
    def _owns(ctxt, image: dict) -> bool:
        return bool(ctxt.is_admin or (image["owner"] is not None and image["owner"] == ctxt.project_id))

    def _may_see(self, ctxt, image: dict, member_status: str | None) -> bool:
        if self._owns(ctxt, image) or image["visibility"] in ("public", "community"):
            return True
        return image["visibility"] == "shared" and member_status is not None

    def _must_own(self, ctxt, image: dict, action: str) -> None:
        if not self._owns(ctxt, image):
            raise exception.Forbidden(f"You are not permitted to {action} image {image['id']}.")

    @staticmethod
    def _check_visibility_allowed(ctxt, visibility: str) -> None:
        if visibility == "public" and not ctxt.is_admin:
            raise exception.Forbidden("You are not authorized to complete publicize_image action.")

    # -- IImageService --------------------------------------------------------
    def show(self, ctxt, image_id):
        """Deferred firing with the image as Glance shows it; ImageNotFound if invisible."""
        return defer.ensureDeferred(self._show(ctxt, image_id))

    async def _show(self, ctxt, image_id):
        image, _ = await self._get(ctxt, image_id)
        return image_view(image)

    def list(self, ctxt, filters=None, limit=None, marker=None, sort_key="created_at", sort_dir="desc"):
        """Deferred firing with the visible images matching ``filters`` (Glance's list query names)."""
        return self.list_sorted(ctxt, filters, limit, marker, parse_sort(sort_key, sort_dir))

    def list_sorted(self, ctxt, filters=None, limit=None, marker=None, sort=(("created_at", "desc"),)):
        """Like :meth:`list`, with ``sort`` a list of (key, asc|desc)."""
        return defer.ensureDeferred(self._list(ctxt, filters, limit, marker, list(sort)))

    async def _list(self, ctxt, filters, limit, marker, sort):
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise exception.InvalidRequest(reason="limit param must be a non-negative integer")
        kwargs = parse_filters(filters)
        if marker is not None and not utils.is_uuid_like(marker):
            raise exception.InvalidRequest(reason=f"Invalid marker. Image {marker} could not be found.")
        images = await self.db.run(
            db.list_images,
            project_id=ctxt.project_id,
            is_admin=ctxt.is_admin,
            sort=sort,
            limit=limit,
            marker=marker,
            **kwargs,
        )
        return [image_view(image) for image in images]

    def create(self, ctxt, metadata):
        """Create a queued image from Glance's create body; Deferred firing with it.

        Forbidden for read-only or reserved attributes, for making it public
        without admin, or for giving it to another project without admin;
        Invalid for bad values; Conflict if the given id exists.
        """
        return defer.ensureDeferred(self._create(ctxt, dict(metadata or {})))

    async def _create(self, ctxt, metadata: dict):
        image_id = metadata.pop("id", None) or utils.generate_uuid()
        if not utils.is_uuid_like(image_id):
            raise exception.InvalidRequest(reason=f"Invalid image id: {image_id}")
        tags = metadata.pop("tags", None) or []
        if not isinstance(tags, list):
            raise exception.InvalidRequest(reason="tags must be a list of strings.")
        for tag in tags:
            check_tag(tag)
        if len(set(tags)) > self.tag_quota:
            raise exception.OverLimit(reason=f"Maximum number of tags ({self.tag_quota}) exceeded")
        owner = metadata.pop("owner", None)
        if owner is None:
            owner = ctxt.project_id
        elif owner != ctxt.project_id and not ctxt.is_admin:
            raise exception.Forbidden("You are not permitted to create images owned by another project.")
        values: dict[str, Any] = {
            "id": image_id,
            "status": "queued",
            "visibility": "shared",
            "owner": owner,
            "min_disk": 0,
            "min_ram": 0,
            "protected": False,
            "os_hidden": False,
        }
        properties: dict[str, str] = {}
        for key, value in metadata.items():
            if key in READ_ONLY:
                raise exception.Forbidden(f"Attribute '{key}' is read-only.")
            if key in RESERVED:
                raise exception.Forbidden(f"Attribute '{key}' is reserved.")
            if key in SETTABLE:
                values[key] = check_value(key, value)
            else:
                check_property(key, value)
                properties[key] = value
        if len(properties) > self.property_quota:
            raise exception.OverLimit(reason=f"Maximum number of image properties ({self.property_quota}) exceeded")
        self._check_visibility_allowed(ctxt, values["visibility"])
        check_formats(values.get("disk_format"), values.get("container_format"))
        try:
            image = await self.db.run(db.create, values, properties, tags, self._now())
        except exception.DBDuplicateEntry:
            raise exception.Duplicate(reason=f"An image with identifier {image_id} already exists") from None
        return image_view(image)

    def update(self, ctxt, image_id, changes, remove=()):
        """Set core attributes and properties in ``changes``, remove the properties in ``remove``.

        Removing a property the image lacks is a no-op here (the JSON-patch
        API answers 409 for it, as Glance does). Forbidden for read-only or
        reserved attributes, for another project's image, for making it
        public without admin, or for changing formats once data is there.
        Deferred firing with the image.
        """
        return defer.ensureDeferred(self._update(ctxt, image_id, dict(changes or {}), list(remove or ())))

    async def _update(self, ctxt, image_id: str, changes: dict, remove: list):
        image, _ = await self._get(ctxt, image_id)
        self._must_own(ctxt, image, "modify")
        values: dict[str, Any] = {}
        set_props: dict[str, str] = {}
        for key, value in changes.items():
            if key == "owner":
                if not ctxt.is_admin:
                    raise exception.Forbidden("Attribute 'owner' can only be changed by an admin.")
                values["owner"] = value
                continue
            if key in READ_ONLY:
                raise exception.Forbidden(f"Attribute '{key}' is read-only.")
            if key in RESERVED:
                raise exception.Forbidden(f"Attribute '{key}' is reserved.")
            if key == "tags":
                raise exception.Forbidden("Tags are changed with the tag calls or a tags replace.")
            if key in SETTABLE:
                check_value(key, value)
                if key in ("disk_format", "container_format") and image["status"] != "queued":
                    if value != image[key]:
                        raise exception.Forbidden(f"Attribute {key} can be only replaced for a queued image.")
                if key == "visibility" and value != image["visibility"]:
                    self._check_visibility_allowed(ctxt, value)
                values[key] = value
            else:
                check_property(key, value)
                set_props[key] = value
        for key in remove:
            if key in READ_ONLY or key in SETTABLE or key in ("owner", "tags"):
                raise exception.Forbidden(f"Property {key} may not be removed.")
        props_after = (set(image["properties"]) | set(set_props)) - set(remove)
        if len(props_after) > self.property_quota and len(props_after) > len(image["properties"]):
            raise exception.OverLimit(reason=f"Maximum number of image properties ({self.property_quota}) exceeded")
        check_formats(
            values.get("disk_format", image["disk_format"]), values.get("container_format", image["container_format"])
        )
        updated = await self.db.run(db.update, image_id, self._now(), values, set_props, remove)
        return image_view(updated)

    def set_tags(self, ctxt, image_id, tags):
        """Replace the image's tags (a JSON-patch ``/tags`` replace); Deferred firing with the image."""
        return defer.ensureDeferred(self._set_tags(ctxt, image_id, tags))

    async def _set_tags(self, ctxt, image_id, tags):
        image, _ = await self._get(ctxt, image_id)
        self._must_own(ctxt, image, "modify")
        if not isinstance(tags, list):
            raise exception.InvalidRequest(reason="tags must be a list of strings.")
        for tag in tags:
            check_tag(tag)
        if len(set(tags)) > self.tag_quota:
            raise exception.OverLimit(reason=f"Maximum number of tags ({self.tag_quota}) exceeded")
        now = self._now()

        def _replace(session):
            current = set(db.get(session, image_id)["tags"])
            for tag in current - set(tags):
                db.remove_tag(session, image_id, tag, now)
            for tag in set(tags) - current:
                db.add_tag(session, image_id, tag, now, self.tag_quota)
            return db.get(session, image_id)

        return image_view(await self.db.run(_replace))

    def add_tag(self, ctxt, image_id, tag):
        """Tag the image (idempotent); Deferred."""
        return defer.ensureDeferred(self._tag(ctxt, image_id, tag, add=True))

    def remove_tag(self, ctxt, image_id, tag):
        """Remove a tag; NotFound if absent. Deferred."""
        return defer.ensureDeferred(self._tag(ctxt, image_id, tag, add=False))

    async def _tag(self, ctxt, image_id, tag, add):
        image, _ = await self._get(ctxt, image_id)
        self._must_own(ctxt, image, "modify")
        check_tag(tag)
        if add:
            await self.db.run(db.add_tag, image_id, tag, self._now(), self.tag_quota)
        else:
            await self.db.run(db.remove_tag, image_id, tag, self._now())

    def upload(self, ctxt, image_id, path):
        """Stream the file at ``path`` into a queued image; Deferred firing with the active image.

        Conflict unless the image is queued; Invalid unless its formats are
        set; OverLimit past the size cap. Any failure after the image went
        to saving leaves it killed.
        """
        return defer.ensureDeferred(self._upload(ctxt, image_id, path))

    async def _upload(self, ctxt, image_id, path):
        upload = await self.begin_upload(ctxt, image_id)
        try:
            await upload.writer.copy_from(path)
        except BaseException as exc:
            await upload.abort()
            raise _upload_error(exc) from exc
        return await upload.commit()

    async def begin_upload(self, ctxt, image_id: str, size: int | None = None) -> "ImageUpload":
        """Check the caller may upload, move the image to saving and open its file; return the upload."""
        image, _ = await self._get(ctxt, image_id)
        self._must_own(ctxt, image, "upload data to")
        if not image["disk_format"] or not image["container_format"]:
            raise exception.InvalidRequest(
                reason="Properties disk_format, container_format must be set prior to saving data."
            )
        if size is not None and size > self.image_size_cap:
            raise exception.OverLimit(reason=f"Image exceeds the storage limit of {self.image_size_cap} bytes")
        moved = await self.db.run(db.transition, image_id, ("queued",), "saving", self._now())
        if not moved:
            raise exception.Conflict(f"Image status transition from {image['status']} to saving is not allowed")
        writer = HashingWriter(
            self.pool,
            self.path_of(image_id) + ".part",
            high_water=8 * self.chunk_size,
            low_water=2 * self.chunk_size,
            max_size=self.image_size_cap,
        )
        upload = ImageUpload(self, ctxt, image_id, writer)
        try:
            await writer.open()
        except BaseException:
            await upload.abort()
            raise
        return upload

    def download(self, ctxt, image_id, path):
        """Copy the image's data into a new file at ``path``, hashing it on the way.

        Deferred firing with ``{"size", "checksum", "os_hash_algo",
        "os_hash_value"}``; Conflict if the image has no data (not active).
        """
        return defer.ensureDeferred(self._download(ctxt, image_id, path))

    async def _download(self, ctxt, image_id, path):
        image, source = await self.open_data(ctxt, image_id)
        chunk = self.chunk_size

        def _copy():
            digest = Digest()
            with open(source, "rb") as src, open(path, "wb") as dst:
                while True:
                    data = src.read(chunk)
                    if not data:
                        break
                    dst.write(data)
                    digest.update(data)
            return digest.as_dict()

        try:
            return await self.pool.run(_copy)
        except FileNotFoundError:
            raise exception.ImageNotFound(image_id=image_id) from None

    async def open_data(self, ctxt, image_id: str) -> tuple[dict, str]:
        """Return (image view, path of its data) for a caller who may read it; Conflict if it has no data."""
        image, _ = await self._get(ctxt, image_id)
        if image["status"] != "active":
            raise exception.Conflict(f"Image {image_id} has no data (status {image['status']}).")
        return image_view(image), self.path_of(image_id)

    def delete(self, ctxt, image_id):
        """Delete the image and its file; Conflict if protected, Forbidden if not the caller's. Deferred."""
        return defer.ensureDeferred(self._delete(ctxt, image_id))

    async def _delete(self, ctxt, image_id):
        image, _ = await self._get(ctxt, image_id)
        self._must_own(ctxt, image, "delete")
        if image["protected"]:
            raise exception.Conflict(f"Image {image_id} is protected and cannot be deleted.")
        await self.db.run(db.mark_deleted, image_id, self._now())
        await self.pool.run(_unlink, self.path_of(image_id))

    # -- members ----------------------------------------------------------------
    def list_members(self, ctxt, image_id):
        """Deferred firing with the image's members (a member sees only itself)."""
        return defer.ensureDeferred(self._list_members(ctxt, image_id))

    async def _list_members(self, ctxt, image_id):
        image, _ = await self._get(ctxt, image_id)
        if image["visibility"] != "shared":
            raise exception.Forbidden("Only shared images have members.")
        only = None if self._owns(ctxt, image) else ctxt.project_id
        return [member_view(m) for m in await self.db.run(db.list_members, image_id, only)]

    def show_member(self, ctxt, image_id, member_id):
        """Deferred firing with one membership (owner, admin, or that member only)."""
        return defer.ensureDeferred(self._show_member(ctxt, image_id, member_id))

    async def _show_member(self, ctxt, image_id, member_id):
        image, _ = await self._get(ctxt, image_id)
        if not self._owns(ctxt, image) and member_id != ctxt.project_id:
            raise exception.NotFound(f"Member {member_id} not found on image {image_id}")
        return member_view(await self.db.run(db.get_member, image_id, member_id))

    def add_member(self, ctxt, image_id, member_id):
        """Share a shared image with project ``member_id`` (pending); owner only. Deferred membership."""
        return defer.ensureDeferred(self._add_member(ctxt, image_id, member_id))

    async def _add_member(self, ctxt, image_id, member_id):
        image, _ = await self._get(ctxt, image_id)
        self._must_own(ctxt, image, "share")
        if image["visibility"] != "shared":
            raise exception.Forbidden("Only shared images have members.")
        if not isinstance(member_id, str) or not member_id or len(member_id) > 255:
            raise exception.InvalidRequest(reason="Invalid member id.")
        member = await self.db.run(db.add_member, image_id, member_id, self._now(), self.member_quota)
        return member_view(member)

    def update_member(self, ctxt, image_id, member_id, status):
        """Accept, reject or reset a membership; only that member (or an admin). Deferred membership."""
        return defer.ensureDeferred(self._update_member(ctxt, image_id, member_id, status))

    async def _update_member(self, ctxt, image_id, member_id, status):
        image, _ = await self._get(ctxt, image_id)
        if status not in MEMBER_STATUSES:
            raise exception.InvalidRequest(reason=f"Invalid status: {status}")
        if not ctxt.is_admin and member_id != ctxt.project_id:
            if self._owns(ctxt, image):
                raise exception.Forbidden("Only the member may change its membership status.")
            raise exception.NotFound(f"Member {member_id} not found on image {image_id}")
        return member_view(await self.db.run(db.update_member, image_id, member_id, status, self._now()))

    def delete_member(self, ctxt, image_id, member_id):
        """Stop sharing the image with ``member_id``; owner only. Deferred."""
        return defer.ensureDeferred(self._delete_member(ctxt, image_id, member_id))

    async def _delete_member(self, ctxt, image_id, member_id):
        image, _ = await self._get(ctxt, image_id)
        self._must_own(ctxt, image, "unshare")
        await self.db.run(db.delete_member, image_id, member_id)


class ImageUpload:
    """One upload in progress: feed ``writer``, then :meth:`commit` or :meth:`abort`."""

    def __init__(self, store: ImageStore, ctxt, image_id: str, writer: HashingWriter):
        self.store = store
        self.ctxt = ctxt
        self.image_id = image_id
        self.writer = writer
        self.finished = False

    async def commit(self) -> dict:
        """Close the file, put it in place and make the image active; return the image view.

        If the data could not be written the image is killed and the error
        raised; if the image was deleted meanwhile the data is removed and
        Conflict raised.
        """
        store = self.store
        try:
            digest = await self.writer.close()
        except BaseException as exc:
            await self.abort()
            raise _upload_error(exc) from exc
        final = store.path_of(self.image_id)
        await store.pool.run(os.replace, self.writer.path, final)
        self.finished = True
        values = dict(digest.as_dict(), location=f"file://{final}")
        moved = await store.db.run(db.transition, self.image_id, ("saving",), "active", store._now(), **values)
        if not moved:
            await store.pool.run(_unlink, final)
            raise exception.Conflict(f"Image {self.image_id} was deleted or killed during its upload.")
        return image_view(await store.db.run(db.get, self.image_id))

    async def abort(self) -> None:
        """Discard the data and leave the image killed (if it is still saving)."""
        if self.finished:
            return
        self.finished = True
        await self.writer.abort()
        await self.store.db.run(db.transition, self.image_id, ("saving",), "killed", self.store._now())


def _upload_error(exc: BaseException) -> BaseException:
    if isinstance(exc, SizeLimitExceeded):
        return exception.OverLimit(reason=str(exc))
    if isinstance(exc, exception.NovaError):
        return exc
    return exception.NovaError(f"Image upload failed: {exc}")


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def build_image_service(conf, database, reactor) -> ImageStore:
    """Return the built-in IImageService, for in-process use (API, EC2, all-in-one)."""
    return ImageStore.from_config(conf, database, reactor)
