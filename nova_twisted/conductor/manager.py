"""The conductor's RPC methods: every database read and write compute needs.

Each method is one transaction. State changes are compare-and-swap on
task_state / vm_state (``expected_task_state``), and an instance-action
event may ride along in the same transaction (``event``), so a compute step
costs one round trip.
"""

from __future__ import annotations

from nova_twisted import utils
from nova_twisted.db import actions, instances, placement, services
from nova_twisted.db.models import Migration
from nova_twisted.rpc import Manager

_MISSING = object()


def _record_event(session, uuid: str, event: dict | None, now) -> None:
    if not event:
        return
    if event.get("phase") == "start":
        actions.event_start(session, uuid, event["request_id"], event["event"], event.get("host"), now)
    else:
        actions.event_finish(
            session,
            uuid,
            event["request_id"],
            event["event"],
            event.get("result", "Success"),
            event.get("traceback"),
            now,
        )


class ConductorManager(Manager):
    """Serves topic ``conductor``."""

    RPC_API_VERSION = "1.0"

    def __init__(self, database, clock, conf=None):
        self.database = database
        self.clock = clock
        self.conf = conf

    def _now(self):
        return utils.utcnow(self.clock)

    # -- services ----------------------------------------------------------------
    def service_register(self, ctxt, binary, host, topic=None):
        return self.database.run(services.register, host, binary, topic, self._now())

    def service_heartbeat(self, ctxt, binary, host):
        return self.database.run(services.heartbeat, host, binary, self._now())

    # -- instances ---------------------------------------------------------------
    def instance_get(self, ctxt, uuid, read_deleted="no"):
        return self.database.run(instances.get, uuid, read_deleted)

    def instances_on_host(self, ctxt, host, include_deleting=True):
        return self.database.run(instances.list_instances, {"host": host}, None, None, ["id"], ["asc"])

    def instance_update(
        self,
        ctxt,
        uuid,
        values,
        expected_task_state=_MISSING,
        expected_vm_state=_MISSING,
        event=None,
        returning=True,
    ):
        """Update an instance, guarded by its expected states, with an optional action event.

        Returns the updated instance (None with ``returning=False``). Raises
        UnexpectedTaskState (nothing written) when the states moved.
        """
        now = self._now()
        expected_task = Ellipsis if expected_task_state is _MISSING else expected_task_state
        expected_vm = Ellipsis if expected_vm_state is _MISSING else expected_vm_state

        def work(session):
            inst = instances.update(session, uuid, values, expected_task, expected_vm, now, returning)
            _record_event(session, uuid, event, now)
            return inst

        return self.database.run(work)

    def action_event(self, ctxt, uuid, event):
        """Record an action event on its own (phase start or finish)."""
        return self.database.run(lambda s: _record_event(s, uuid, event, self._now()))

    def instance_fault_create(self, ctxt, uuid, code, message, details=None, host=None):
        return self.database.run(instances.add_fault, uuid, code, message, details, host, self._now())

    def build_failed(self, ctxt, uuid, fault, reschedule, event=None, host=None):
        """A build failed on ``host``: release its claim, record the fault and either
        hand the instance back to scheduling (``reschedule``) or put it in ERROR."""
        now = self._now()

        def work(session):
            placement.release(session, uuid)
            instances.add_fault(
                session, uuid, fault.get("code", 500), fault.get("message", ""), fault.get("details"), host, now
            )
            if reschedule:
                values = {"task_state": "scheduling", "host": None, "node": None}
            else:
                values = {"vm_state": "error", "task_state": None}
            inst = instances.update(session, uuid, values, now=now)
            _record_event(session, uuid, event, now)
            return inst

        return self.database.run(work)

    def instance_destroy(self, ctxt, uuid, event=None):
        """Soft-delete the instance and release everything it held; idempotent."""
        now = self._now()

        def work(session):
            _record_event(session, uuid, event, now)
            return instances.destroy(session, uuid, now)

        return self.database.run(work)

    def request_spec_get(self, ctxt, uuid):
        return self.database.run(instances.get_request_spec, uuid)

    # -- resources -----------------------------------------------------------------
    def compute_node_update(self, ctxt, host, nodename, resources, inventory):
        return self.database.run(placement.update_node, host, nodename, resources, inventory, self._now())

    def allocations_release(self, ctxt, consumer_id):
        return self.database.run(placement.release, consumer_id)

    # -- resize ----------------------------------------------------------------------
    def migration_get(self, ctxt, instance_uuid, status=None):
        import sqlalchemy as sa

        def work(session):
            query = sa.select(Migration).where(Migration.instance_uuid == instance_uuid)
            if status:
                query = query.where(Migration.status.in_(status if isinstance(status, list) else [status]))
            row = session.execute(query.order_by(Migration.id.desc())).scalars().first()
            return row.to_dict() if row is not None else None

        return self.database.run(work)

    def resize_finish(self, ctxt, uuid, migration_uuid, values, event=None):
        """The guest runs with the new flavor: instance -> resized, migration -> finished."""
        return self._migration_step(uuid, migration_uuid, "finished", values, event)

    def resize_confirm(self, ctxt, uuid, migration_uuid, values, event=None):
        """Keep the new flavor: the new claim becomes the instance's, the old one goes."""
        now = self._now()

        def work(session):
            placement.move_allocations(session, migration_uuid, uuid)
            return self._migration_step_sync(session, uuid, migration_uuid, "confirmed", values, event, now)

        return self.database.run(work)

    def resize_revert(self, ctxt, uuid, migration_uuid, values, event=None):
        """Back to the old flavor: the new claim goes."""
        now = self._now()

        def work(session):
            placement.release(session, migration_uuid)
            return self._migration_step_sync(session, uuid, migration_uuid, "reverted", values, event, now)

        return self.database.run(work)

    def resize_failed(self, ctxt, uuid, migration_uuid, values, fault, event=None, host=None):
        now = self._now()

        def work(session):
            placement.release(session, migration_uuid)
            instances.add_fault(
                session, uuid, fault.get("code", 500), fault.get("message", ""), fault.get("details"), host, now
            )
            return self._migration_step_sync(session, uuid, migration_uuid, "error", values, event, now)

        return self.database.run(work)

    def _migration_step(self, uuid, migration_uuid, status, values, event):
        now = self._now()
        return self.database.run(
            lambda s: self._migration_step_sync(s, uuid, migration_uuid, status, values, event, now)
        )

    @staticmethod
    def _migration_step_sync(session, uuid, migration_uuid, status, values, event, now):
        import sqlalchemy as sa

        session.execute(
            sa.update(Migration).where(Migration.uuid == migration_uuid).values(status=status, updated_at=now)
        )
        inst = instances.update(session, uuid, values, now=now)
        _record_event(session, uuid, event, now)
        return inst
