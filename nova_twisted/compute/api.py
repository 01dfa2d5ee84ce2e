"""The compute API layer both front ends (OpenStack REST, EC2) use.

Every action checks the instance's vm_state/task_state and moves it with a
compare-and-swap in the same transaction that records the instance action,
then casts (or calls) onward. An action that does not fit the instance's
state fails with InstanceInvalidState (409) and changes nothing; two
concurrent actions on one server cannot both pass.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid as uuidlib

from twisted.logger import Logger

from nova_twisted import exception, utils
from nova_twisted.compute import states
from nova_twisted.compute.rpcapi import ComputeAPI
from nova_twisted.db import actions, flavors, instances, keypairs, placement, quotas, server_groups, services
from nova_twisted.db.models import InstanceTag, Migration
from nova_twisted.scheduler.rpcapi import SchedulerAPI

log = Logger(namespace="nova.compute.api")

MAX_USERDATA_SIZE = 65535
ALLOW_HARD_REBOOT = (states.ACTIVE, states.STOPPED, states.PAUSED_VM, states.SUSPENDED_VM, states.ERROR)
REBOOT_TASKS = (None, states.REBOOTING, states.REBOOT_PENDING, states.REBOOT_STARTED)


def sanitize_hostname(name: str, default: str = "server") -> str:
    """A DNS-safe host name from a display name, as Nova makes it."""
    hostname = re.sub(r"[ _]", "-", (name or "").lower())
    hostname = re.sub(r"[^\w.-]+", "", hostname, flags=re.ASCII)
    hostname = hostname.strip(".-")[:63].strip(".-")
    return hostname or default


def _create_with_tags(session, tags, *args):
    created = instances.create(session, *args)
    for instance in created:
        for tag in dict.fromkeys(tags):
            session.add(InstanceTag(instance_uuid=instance["uuid"], tag=tag))
        instance["tags"] = list(dict.fromkeys(tags))
    return created


class API:
    """Compute operations for one cloud; every method is ``async`` and returns plain dicts."""

    def __init__(self, database, transport, conf, clock, image_service=None):
        self.database = database
        self.conf = conf
        self.clock = clock
        self.image_service = image_service
        self.compute_rpcapi = ComputeAPI(transport)
        self.scheduler_rpcapi = SchedulerAPI(transport)

    def _now(self):
        return utils.utcnow(self.clock)

    def _quota_defaults(self) -> dict[str, int]:
        q = self.conf.quota
        return {name: getattr(q, name) for name in quotas.RESOURCES}

    # -- reads ------------------------------------------------------------------------------
    async def get(self, ctxt, uuid: str, read_deleted: str = "no") -> dict:
        """The instance, if the caller may see it; InstanceNotFound otherwise (never 403)."""
        if not utils.is_uuid_like(uuid):
            raise exception.InstanceNotFound(instance_id=uuid)
        project = None if ctxt.is_admin else ctxt.project_id
        return await self.database.run(instances.get, uuid, read_deleted, project)

    async def get_all(
        self, ctxt, filters=None, limit=None, marker=None, sort_keys=None, sort_dirs=None, all_tenants=False
    ) -> list[dict]:
        filters = dict(filters or {})
        if not (ctxt.is_admin and all_tenants):
            filters["project_id"] = ctxt.project_id
        return await self.database.run(instances.list_instances, filters, limit, marker, sort_keys, sort_dirs)

    async def faults(self, uuids: list[str]) -> dict[str, dict]:
        return await self.database.run(instances.latest_faults, uuids)

    # -- create -----------------------------------------------------------------------------
    async def create(
        self,
        ctxt,
        flavor_id,
        image_ref,
        name,
        *,
        min_count=1,
        max_count=1,
        availability_zone=None,
        key_name=None,
        user_data=None,
        metadata=None,
        scheduler_hints=None,
        server_group=None,
        description=None,
        access_ip_v4=None,
        access_ip_v6=None,
        config_drive=None,
        hostname=None,
        tags=None,
        system_metadata=None,
    ) -> tuple[list[dict], str]:
        """Create servers; return (instances, reservation_id). They start in BUILD/scheduling.

        ``tags`` (a list) are given to every server in the same transaction;
        ``system_metadata`` is merged into each server's system metadata.
        """
        if min_count < 1 or max_count < min_count:
            raise exception.InvalidRequest(reason="min_count must be >= 1 and <= max_count")
        flavor = await self.database.run(flavors.get_by_flavorid, str(flavor_id), ctxt.project_id, ctxt.is_admin, False)
        image = await self._image_for_boot(ctxt, image_ref, flavor)
        metadata = dict(metadata or {})
        self._check_metadata(metadata)
        key_data = None
        if key_name:
            key = await self.database.run(keypairs.get, ctxt.user_id, key_name)
            key_data = key["public_key"]
        if user_data is not None:
            self._check_user_data(user_data)
        if availability_zone:
            await self._check_availability_zone(availability_zone, ctxt)
        group = None
        if server_group:
            group = await self.database.run(server_groups.get, server_group, None if ctxt.is_admin else ctxt.project_id)
        embedded = flavors.embedded(flavor)
        reservation_id = "r-" + uuidlib.uuid4().hex[:8]
        request_spec = {
            "flavor": embedded,
            "image": image,
            "availability_zone": availability_zone,
            "scheduler_hints": scheduler_hints or {},
            "group": {"uuid": group["uuid"], "policy": group["policy"], "rules": group["rules"]} if group else None,
            "project_id": ctxt.project_id,
            "user_id": ctxt.user_id,
            "num_instances": max_count,
        }
        common = {
            "project_id": ctxt.project_id,
            "user_id": ctxt.user_id,
            "display_description": description,
            "availability_zone": availability_zone.partition(":")[0] if availability_zone else None,
            "reservation_id": reservation_id,
            "instance_type_id": flavor["id"],
            "flavor": embedded,
            "memory_mb": flavor["memory_mb"],
            "vcpus": flavor["vcpus"],
            "root_gb": flavor["root_gb"],
            "ephemeral_gb": flavor["ephemeral_gb"],
            "image_ref": image_ref,
            "kernel_id": image.get("kernel_id"),
            "ramdisk_id": image.get("ramdisk_id"),
            "key_name": key_name,
            "key_data": key_data,
            "user_data": user_data,
            "config_drive": "True" if config_drive else "",
            "vm_state": states.BUILDING,
            "task_state": states.SCHEDULING,
            "power_state": states.NOSTATE,
            "access_ip_v4": access_ip_v4,
            "access_ip_v6": access_ip_v6,
            "system_metadata": {**self._image_system_metadata(image, image_ref), **(system_metadata or {})},
            "metadata": metadata,
        }
        count = max_count
        while True:
            rows = self._instance_rows(common, count, name, hostname)
            quota_check = {
                "project_id": ctxt.project_id,
                "user_id": ctxt.user_id,
                "defaults": self._quota_defaults(),
                "deltas": {"instances": count, "cores": count * flavor["vcpus"], "ram": count * flavor["memory_mb"]},
            }
            if group:
                members = len(group["members"])
                limit = await self._group_member_limit(ctxt)
                if limit >= 0 and members + count > limit:
                    raise exception.QuotaExceeded(
                        f"Quota exceeded, too many servers in group {group['uuid']}",
                        resources="server_group_members",
                        req=count,
                        used=members,
                        allowed=limit,
                    )
                # Counted again under the project's quota lock: concurrent boots into one group.
                quota_check["deltas"]["server_group_members"] = count
                quota_check["server_group_uuid"] = group["uuid"]
            action = {
                "action": "create",
                "request_id": ctxt.request_id,
                "user_id": ctxt.user_id,
                "project_id": ctxt.project_id,
            }
            try:
                created = await self.database.run(
                    _create_with_tags,
                    list(tags or ()),
                    rows,
                    request_spec,
                    action,
                    quota_check,
                    group["uuid"] if group else None,
                    self._now(),
                )
                break
            except exception.QuotaExceeded as exc:
                if count <= min_count:
                    if group and "server_group_members" in str(exc.kwargs.get("resources", "")):
                        raise exception.QuotaExceeded(
                            f"Quota exceeded, too many servers in group {group['uuid']}", **exc.kwargs
                        ) from None
                    raise
                headroom = await self._headroom(ctxt, flavor)
                if headroom < min_count:
                    raise
                count = min(headroom, count - 1)
        await self.scheduler_rpcapi.schedule_and_build(ctxt, request_spec, [i["uuid"] for i in created])
        log.info("created {n} server(s) {uuids}", n=len(created), uuids=[i["uuid"] for i in created], ctxt=ctxt)
        return created, reservation_id

    @staticmethod
    def _instance_rows(common: dict, count: int, name: str, hostname: str | None) -> list[dict]:
        """``count`` new instance rows: ``common`` plus each server's own uuid, name and index."""
        rows = []
        for index in range(count):
            display_name = name if count == 1 else f"{name}-{index + 1}"
            rows.append(
                {
                    **common,
                    "uuid": utils.generate_uuid(),
                    "display_name": display_name,
                    "hostname": sanitize_hostname(hostname or display_name),
                    "launch_index": index,
                    "system_metadata": dict(common["system_metadata"]),
                }
            )
        return rows

    @staticmethod
    def _image_system_metadata(image: dict, image_ref: str) -> dict:
        """What of the image a server remembers (as Nova's image_* system metadata)."""
        kept = (
            "min_ram",
            "min_disk",
            "disk_format",
            "container_format",
            "architecture",
            "hypervisor_type",
            "kernel_id",
            "ramdisk_id",
            "os_type",
            "base_image_ref",
        )
        system_metadata = {f"image_{k}": str(v) for k, v in image.items() if k in kept}
        system_metadata["image_base_image_ref"] = image_ref
        return system_metadata

    async def _headroom(self, ctxt, flavor) -> int:
        def count(session):
            limits = quotas.project_limits(session, ctxt.project_id, self._quota_defaults(), ctxt.user_id)
            used = quotas.usage(session, ctxt.project_id)
            room = []
            for resource, per in (("instances", 1), ("cores", flavor["vcpus"]), ("ram", flavor["memory_mb"])):
                limit = limits.get(resource, -1)
                if limit >= 0 and per > 0:
                    room.append((limit - used[resource]) // per)
            return max(0, min(room)) if room else 1 << 30

        return await self.database.run(count)

    async def _group_member_limit(self, ctxt) -> int:
        def work(session):
            return quotas.project_limits(session, ctxt.project_id, self._quota_defaults()).get(
                "server_group_members", -1
            )

        return await self.database.run(work)

    async def _image_for_boot(self, ctxt, image_ref, flavor) -> dict:
        if not image_ref:
            raise exception.InvalidRequest(reason="An image is required to boot a server (no volumes here).")
        if self.image_service is None:
            return {"id": image_ref}
        try:
            image = await self.image_service.show(ctxt, image_ref)
        except exception.ImageNotFound:
            raise exception.InvalidRequest(reason=f"Image {image_ref} could not be found.") from None
        if image.get("status") != "active":
            raise exception.InvalidRequest(reason=f"Image {image_ref} is not active.")
        min_ram = int(image.get("min_ram") or 0)
        if min_ram and flavor["memory_mb"] < min_ram:
            raise exception.InvalidRequest(reason="Flavor's memory is too small for requested image.")
        min_disk = int(image.get("min_disk") or 0)
        if flavor["root_gb"] and min_disk and flavor["root_gb"] < min_disk:
            raise exception.InvalidRequest(reason="Flavor's disk is too small for requested image.")
        size_gb = (int(image.get("size") or 0) + (1 << 30) - 1) >> 30
        if flavor["root_gb"] and size_gb > flavor["root_gb"]:
            raise exception.InvalidRequest(reason="Flavor's disk is too small for requested image.")
        return image

    def _check_metadata(self, metadata: dict) -> None:
        if len(metadata) > self.conf.quota.metadata_items >= 0:
            raise exception.QuotaExceeded(
                f"Quota exceeded for metadata_items: Requested {len(metadata)}, but already used 0 of "
                f"{self.conf.quota.metadata_items} metadata_items",
                resources="metadata_items",
                req=len(metadata),
                used=0,
                allowed=self.conf.quota.metadata_items,
            )
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise exception.InvalidRequest(reason="Metadata keys and values must be strings.")
            if not key or len(key) > 255 or len(value) > 255:
                raise exception.InvalidRequest(
                    reason="Metadata property key/value greater than 255 characters, or an empty key."
                )

    @staticmethod
    def _check_user_data(user_data: str) -> None:
        if len(user_data) > MAX_USERDATA_SIZE:
            raise exception.InvalidRequest(
                reason=f"User data too large. User data must be no larger than "
                f"{MAX_USERDATA_SIZE} bytes once base64 encoded."
            )
        try:
            base64.b64decode(user_data, validate=True)
        except (binascii.Error, ValueError):
            raise exception.InvalidRequest(reason="User data needs to be valid base 64.") from None

    async def _check_availability_zone(self, zone: str, ctxt) -> None:
        name, _, host = zone.partition(":")
        if host and not ctxt.is_admin:
            raise exception.Forbidden(action="os_compute_api:servers:create:forced_host")
        zones = {n["availability_zone"] for n in await self.database.run(placement.list_nodes)}
        zones.add(self.conf.compute.availability_zone)
        if name and name not in zones:
            raise exception.InvalidRequest(reason="The requested availability zone is not available")

    # -- state changes ------------------------------------------------------------------------
    async def _transition(
        self,
        ctxt,
        instance,
        action: str,
        task_state: str,
        vm_states,
        task_states=(None,),
        extra: dict | None = None,
        check_lock: bool = True,
    ) -> dict:
        """CAS the instance into ``task_state`` and record the action, in one transaction."""
        if check_lock:
            self._check_locked(ctxt, instance)
        if instance["vm_state"] not in vm_states:
            raise exception.InstanceInvalidState(
                action=action, instance_uuid=instance["uuid"], attr="vm_state", state=instance["vm_state"]
            )
        if instance["task_state"] not in task_states:
            raise exception.InstanceInvalidState(
                action=action, instance_uuid=instance["uuid"], attr="task_state", state=instance["task_state"]
            )
        now = self._now()
        values = {"task_state": task_state, **(extra or {})}

        def work(session):
            try:
                updated = instances.update(session, instance["uuid"], values, list(task_states), list(vm_states), now)
            except exception.UnexpectedTaskState:
                current = instances.get(session, instance["uuid"])
                raise exception.InstanceInvalidState(
                    action=action, instance_uuid=instance["uuid"], attr="task_state", state=current["task_state"]
                ) from None
            actions.start(session, instance["uuid"], action, ctxt.request_id, ctxt.user_id, ctxt.project_id, now)
            return updated

        return await self.database.run(work)

    def _check_locked(self, ctxt, instance) -> None:
        if instance.get("locked") and not ctxt.is_admin:
            raise exception.InstanceIsLocked(instance_uuid=instance["uuid"])

    def _check_host(self, instance, action) -> None:
        if not instance.get("host"):
            raise exception.InstanceInvalidState(
                action=action, instance_uuid=instance["uuid"], attr="vm_state", state=instance["vm_state"]
            )

    async def reboot(self, ctxt, instance, reboot_type="SOFT") -> None:
        reboot_type = reboot_type.upper()
        if reboot_type not in ("SOFT", "HARD"):
            raise exception.InvalidRequest(
                reason="Argument 'type' for reboot must be a string with value 'SOFT' or 'HARD'."
            )
        self._check_host(instance, "reboot")
        if reboot_type == "SOFT":
            updated = await self._transition(ctxt, instance, "reboot", states.REBOOTING, (states.ACTIVE,))
        else:
            updated = await self._transition(
                ctxt, instance, "reboot", states.REBOOTING_HARD, ALLOW_HARD_REBOOT, REBOOT_TASKS
            )
        await self.compute_rpcapi.reboot_instance(ctxt, updated, reboot_type)

    async def stop(self, ctxt, instance) -> None:
        self._check_host(instance, "stop")
        updated = await self._transition(ctxt, instance, "stop", states.POWERING_OFF, (states.ACTIVE, states.ERROR))
        await self.compute_rpcapi.stop_instance(ctxt, updated)

    async def start(self, ctxt, instance) -> None:
        self._check_host(instance, "start")
        updated = await self._transition(ctxt, instance, "start", states.POWERING_ON, (states.STOPPED,))
        await self.compute_rpcapi.start_instance(ctxt, updated)

    async def pause(self, ctxt, instance) -> None:
        self._check_host(instance, "pause")
        updated = await self._transition(ctxt, instance, "pause", states.PAUSING, (states.ACTIVE,))
        await self.compute_rpcapi.pause_instance(ctxt, updated)

    async def unpause(self, ctxt, instance) -> None:
        updated = await self._transition(ctxt, instance, "unpause", states.UNPAUSING, (states.PAUSED_VM,))
        await self.compute_rpcapi.unpause_instance(ctxt, updated)

    async def suspend(self, ctxt, instance) -> None:
        self._check_host(instance, "suspend")
        updated = await self._transition(ctxt, instance, "suspend", states.SUSPENDING, (states.ACTIVE,))
        await self.compute_rpcapi.suspend_instance(ctxt, updated)

    async def resume(self, ctxt, instance) -> None:
        updated = await self._transition(ctxt, instance, "resume", states.RESUMING, (states.SUSPENDED_VM,))
        await self.compute_rpcapi.resume_instance(ctxt, updated)

    async def lock(self, ctxt, instance, reason: str | None = None) -> None:
        by = "admin" if ctxt.is_admin and ctxt.project_id != instance["project_id"] else "owner"
        await self._set_fields(ctxt, instance, "lock", {"locked": True, "locked_by": by, "locked_reason": reason})

    async def unlock(self, ctxt, instance) -> None:
        if instance.get("locked") and instance.get("locked_by") == "admin" and not ctxt.is_admin:
            raise exception.Forbidden(action="os_compute_api:os-lock-server:unlock:unlock_override")
        await self._set_fields(ctxt, instance, "unlock", {"locked": False, "locked_by": None, "locked_reason": None})

    async def _set_fields(self, ctxt, instance, action, values) -> dict:
        now = self._now()

        def work(session):
            updated = instances.update(session, instance["uuid"], values, now=now)
            actions.start(session, instance["uuid"], action, ctxt.request_id, ctxt.user_id, ctxt.project_id, now)
            return updated

        return await self.database.run(work)

    async def update(self, ctxt, instance, values: dict) -> dict:
        """Rename or describe a server (display_name, display_description, access IPs, hostname)."""
        allowed = {"display_name", "display_description", "access_ip_v4", "access_ip_v6", "hostname"}
        values = {k: v for k, v in values.items() if k in allowed}
        if "display_name" in values and "hostname" not in values:
            pass  # Nova keeps the hostname on rename
        return await self.database.run(instances.update, instance["uuid"], values, Ellipsis, Ellipsis, self._now())

    async def rebuild(
        self,
        ctxt,
        instance,
        image_ref,
        name=None,
        metadata=None,
        description=None,
        key_name=Ellipsis,
        user_data=Ellipsis,
        access_ips=None,
        system_metadata=None,
    ) -> dict:
        """Rebuild on the server's host from ``image_ref``.

        ``key_name``/``user_data`` left as Ellipsis keep the current ones (None
        removes them); ``access_ips`` maps access_ip_v4/6 to new values;
        ``system_metadata`` entries are merged (a None value removes one).
        """
        self._check_host(instance, "rebuild")
        image = await self._image_for_boot(ctxt, image_ref, instance["flavor"])
        extra = {"image_ref": image_ref, "kernel_id": image.get("kernel_id"), "ramdisk_id": image.get("ramdisk_id")}
        if name is not None:
            extra["display_name"] = name
        if description is not None:
            extra["display_description"] = description
        if metadata is not None:
            self._check_metadata(metadata)
            extra["metadata"] = metadata
        if key_name is not Ellipsis:
            if key_name is None:
                extra.update(key_name=None, key_data=None)
            else:
                key = await self.database.run(keypairs.get, ctxt.user_id, key_name)
                extra.update(key_name=key_name, key_data=key["public_key"])
        if user_data is not Ellipsis:
            if user_data is not None:
                self._check_user_data(user_data)
            extra["user_data"] = user_data
        extra.update(access_ips or {})
        if system_metadata:
            merged = dict(instance.get("system_metadata") or {})
            for key, value in system_metadata.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            extra["system_metadata"] = merged
        updated = await self._transition(
            ctxt, instance, "rebuild", states.REBUILDING, (states.ACTIVE, states.STOPPED, states.ERROR), extra=extra
        )
        await self.compute_rpcapi.rebuild_instance(ctxt, updated, image)
        return updated

    async def resize(self, ctxt, instance, flavor_id) -> None:
        """Resize on the instance's host: the new flavor's resources are claimed there first."""
        self._check_locked(ctxt, instance)
        self._check_host(instance, "resize")
        new = await self.database.run(flavors.get_by_flavorid, str(flavor_id), ctxt.project_id, ctxt.is_admin, False)
        old = instance["flavor"]
        if str(new["flavorid"]) == str(old.get("flavorid")):
            raise exception.InvalidRequest(reason="When resizing, instances must change flavor!")
        if new["root_gb"] < (old.get("root_gb") or 0):
            raise exception.InvalidRequest(
                reason="Resize to zero disk flavor is not allowed."
                if not new["root_gb"]
                else "Flavor's disk is too small for requested image."
            )
        if instance["vm_state"] not in (states.ACTIVE, states.STOPPED):
            raise exception.InstanceInvalidState(
                action="resize", instance_uuid=instance["uuid"], attr="vm_state", state=instance["vm_state"]
            )
        embedded = flavors.embedded(new)
        deltas = {"cores": max(0, new["vcpus"] - old["vcpus"]), "ram": max(0, new["memory_mb"] - old["memory_mb"])}
        migration_uuid = utils.generate_uuid()
        now = self._now()
        resources = placement.flavor_resources(embedded)

        def work(session):
            quotas.lock_project(session, instance["project_id"])
            quotas.check_deltas(
                session, {"project_id": instance["project_id"], "defaults": self._quota_defaults(), "deltas": deltas}
            )
            try:
                updated = instances.update(
                    session,
                    instance["uuid"],
                    {"task_state": states.RESIZE_PREP},
                    [None],
                    [states.ACTIVE, states.STOPPED],
                    now,
                )
            except exception.UnexpectedTaskState:
                raise exception.InstanceInvalidState(
                    action="resize", instance_uuid=instance["uuid"], attr="task_state", state="busy"
                ) from None
            node = placement.node_by_name(session, instance["node"] or instance["host"])
            try:
                placement.claim(session, node["id"], migration_uuid, resources, now)
            except exception.ClaimFailed as exc:
                raise exception.NoValidHost(reason=f"Not enough resources on the server's host: {exc}") from None
            session.add(
                Migration(
                    uuid=migration_uuid,
                    instance_uuid=instance["uuid"],
                    source_compute=instance["host"],
                    dest_compute=instance["host"],
                    source_node=instance["node"],
                    dest_node=instance["node"],
                    old_instance_type_id=old.get("id"),
                    new_instance_type_id=new["id"],
                    migration_type="resize",
                    status="pre-migrating",
                    project_id=instance["project_id"],
                    user_id=instance["user_id"],
                    created_at=now,
                    updated_at=now,
                )
            )
            actions.start(session, instance["uuid"], "resize", ctxt.request_id, ctxt.user_id, ctxt.project_id, now)
            return updated

        updated = await self.database.run(work)
        await self.compute_rpcapi.resize_instance(ctxt, updated, {"uuid": migration_uuid}, embedded)

    async def _migration(self, instance) -> dict:
        import sqlalchemy as sa

        def work(session):
            row = (
                session.execute(
                    sa.select(Migration)
                    .where(Migration.instance_uuid == instance["uuid"], Migration.status == "finished")
                    .order_by(Migration.id.desc())
                )
                .scalars()
                .first()
            )
            if row is None:
                raise exception.NotFound(f"Instance {instance['uuid']} has not been resized.")
            return row.to_dict()

        return await self.database.run(work)

    async def confirm_resize(self, ctxt, instance) -> None:
        self._check_locked(ctxt, instance)
        if instance["vm_state"] != states.RESIZED:
            raise exception.InstanceInvalidState(
                action="confirmResize", instance_uuid=instance["uuid"], attr="vm_state", state=instance["vm_state"]
            )
        migration = await self._migration(instance)
        updated = await self._transition(ctxt, instance, "confirmResize", states.RESIZE_CONFIRMING, (states.RESIZED,))
        await self.compute_rpcapi.confirm_resize(ctxt, updated, migration)

    async def revert_resize(self, ctxt, instance) -> None:
        self._check_locked(ctxt, instance)
        if instance["vm_state"] != states.RESIZED:
            raise exception.InstanceInvalidState(
                action="revertResize", instance_uuid=instance["uuid"], attr="vm_state", state=instance["vm_state"]
            )
        migration = await self._migration(instance)
        updated = await self._transition(ctxt, instance, "revertResize", states.RESIZE_REVERTING, (states.RESIZED,))
        await self.compute_rpcapi.revert_resize(ctxt, updated, migration)

    async def snapshot(self, ctxt, instance, name: str, extra_properties: dict | None = None) -> dict:
        """Start a snapshot; return the (queued) image at once, as Nova does."""
        if self.image_service is None:
            raise exception.InvalidRequest(reason="No image service is configured.")
        self._check_host(instance, "createImage")
        allowed = (states.ACTIVE, states.STOPPED, states.PAUSED_VM, states.SUSPENDED_VM)
        if instance["vm_state"] not in allowed or instance["task_state"] is not None:
            raise exception.InstanceInvalidState(
                action="createImage",
                instance_uuid=instance["uuid"],
                attr="task_state" if instance["vm_state"] in allowed else "vm_state",
                state=instance["task_state"] or instance["vm_state"],
            )
        base = {}
        if self.image_service is not None and instance.get("image_ref"):
            try:
                base = await self.image_service.show(ctxt, instance["image_ref"])
            except exception.NotFound:
                base = {}
        properties = {
            k: v
            for k, v in base.items()
            if k in ("architecture", "hypervisor_type", "os_type", "kernel_id", "ramdisk_id") or k.startswith("hw_")
        }
        properties.update(extra_properties or {})
        properties.update(
            {
                "image_type": "snapshot",
                "instance_uuid": instance["uuid"],
                "user_id": ctxt.user_id,
                "base_image_ref": instance.get("image_ref") or "",
            }
        )
        image = await self.image_service.create(
            ctxt,
            {
                "name": name,
                "disk_format": "qcow2"
                if base.get("disk_format") in (None, "ami", "qcow2", "raw")
                else base["disk_format"],
                "container_format": "bare",
                "visibility": "private",
                "min_disk": max(int(base.get("min_disk") or 0), int(instance["root_gb"] or 0)),
                "min_ram": int(base.get("min_ram") or 0),
                **properties,
            },
        )
        try:
            updated = await self._transition(ctxt, instance, "createImage", states.IMAGE_SNAPSHOT, allowed)
        except exception.NovaError:
            await self.image_service.delete(ctxt, image["id"])
            raise
        await self.compute_rpcapi.snapshot_instance(ctxt, updated, image["id"])
        return image

    async def delete(self, ctxt, instance) -> None:
        """Delete a server: at once in the database when no compute holds it, else via its compute."""
        self._check_locked(ctxt, instance)
        now = self._now()
        host = instance.get("host")
        local = not host or not await self._compute_is_up(host)
        if local or instance["task_state"] == states.SCHEDULING:

            def work(session):
                actions.start(session, instance["uuid"], "delete", ctxt.request_id, ctxt.user_id, ctxt.project_id, now)
                return instances.destroy(session, instance["uuid"], now)

            await self.database.run(work)
            log.info("deleted {uuid} locally (host {host})", uuid=instance["uuid"], host=host or "none", ctxt=ctxt)
            return
        if instance["task_state"] == states.DELETING:
            await self.compute_rpcapi.terminate_instance(ctxt, instance)  # again: idempotent on compute
            return

        def mark(session):
            updated = instances.update(session, instance["uuid"], {"task_state": states.DELETING}, now=now)
            actions.start(session, instance["uuid"], "delete", ctxt.request_id, ctxt.user_id, ctxt.project_id, now)
            return updated

        updated = await self.database.run(mark)
        await self.compute_rpcapi.terminate_instance(ctxt, updated)

    async def _compute_is_up(self, host: str) -> bool:
        rows = await self.database.run(services.list_services, host, "nova-compute")
        return bool(rows) and services.is_up(rows[0], self._now(), self.conf.DEFAULT.service_down_time)

    # -- metadata ---------------------------------------------------------------------------
    async def update_metadata(self, ctxt, instance, metadata: dict, replace: bool = False) -> dict:
        self._check_locked(ctxt, instance)
        merged = metadata if replace else {**instance.get("metadata", {}), **metadata}
        self._check_metadata(merged)
        return await self.database.run(instances.set_metadata, instance["uuid"], metadata, replace)

    async def delete_metadata_item(self, ctxt, instance, key: str) -> None:
        self._check_locked(ctxt, instance)
        await self.database.run(instances.delete_metadata_key, instance["uuid"], key)

    # -- consoles -----------------------------------------------------------------------------
    async def get_console_output(self, ctxt, instance, tail_length=None) -> str:
        self._check_host(instance, "get_console_output")
        if instance["vm_state"] == states.BUILDING:
            raise exception.InstanceNotRunning(instance_uuid=instance["uuid"])
        return await self.compute_rpcapi.get_console_output(ctxt, instance, tail_length)

    async def get_console(self, ctxt, instance, console_type: str) -> dict:
        """Return {"type", "url"} for a browser console, with a fresh token."""
        from nova_twisted.console import tokens

        self._check_host(instance, "get_console")
        if instance["vm_state"] in (states.BUILDING, states.ERROR, states.DELETED):
            raise exception.InstanceNotRunning(instance_uuid=instance["uuid"])
        if console_type in ("novnc", "xvpvnc"):
            base = self._conf_value("vnc", "novncproxy_base_url", "http://127.0.0.1:6080/vnc_auto.html")
        elif console_type == "spice-html5":
            base = self._conf_value("spice", "html5proxy_base_url", "http://127.0.0.1:6082/spice_auto.html")
        else:
            raise exception.ConsoleTypeUnavailable(console_type=console_type)
        connection = await self.compute_rpcapi.get_console_connection(ctxt, instance, console_type)
        ttl = int(self._conf_value("consoleauth", "token_ttl", 600))
        token = await self.database.run(
            tokens.create,
            instance["uuid"],
            console_type,
            connection["host"],
            connection["port"],
            connection.get("internal_access_path"),
            base,
            ttl,
            self.clock.seconds(),
        )
        separator = "&" if "?" in base else "?"
        return {"type": console_type, "url": f"{base}{separator}path=%3Ftoken%3D{token}"}

    def _conf_value(self, section: str, name: str, default):
        part = getattr(self.conf, section, None)
        return getattr(part, name, default) if part is not None else default
