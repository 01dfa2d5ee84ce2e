"""Instance states as Nova names them: vm_state, task_state, power_state, and status."""

# -- power_state (what the hypervisor says) -------------------------------------
NOSTATE = 0
RUNNING = 1
PAUSED = 3
SHUTDOWN = 4
CRASHED = 6
SUSPENDED = 7

POWER_STATE_NAMES = {
    NOSTATE: "NOSTATE",
    RUNNING: "Running",
    PAUSED: "Paused",
    SHUTDOWN: "Shutdown",
    CRASHED: "Crashed",
    SUSPENDED: "Suspended",
}

# -- vm_state (stable states) ------------------------------------------------------
ACTIVE = "active"
BUILDING = "building"
PAUSED_VM = "paused"
SUSPENDED_VM = "suspended"
STOPPED = "stopped"
RESCUED = "rescued"
RESIZED = "resized"
SOFT_DELETED = "soft-delete"
DELETED = "deleted"
ERROR = "error"
SHELVED = "shelved"
SHELVED_OFFLOADED = "shelved_offloaded"

# -- task_state (transitions in progress) ------------------------------------------
SCHEDULING = "scheduling"
BLOCK_DEVICE_MAPPING = "block_device_mapping"
NETWORKING = "networking"
SPAWNING = "spawning"
IMAGE_SNAPSHOT = "image_snapshot"
IMAGE_SNAPSHOT_PENDING = "image_snapshot_pending"
IMAGE_PENDING_UPLOAD = "image_pending_upload"
IMAGE_UPLOADING = "image_uploading"
REBOOTING = "rebooting"
REBOOT_PENDING = "reboot_pending"
REBOOT_STARTED = "reboot_started"
REBOOTING_HARD = "rebooting_hard"
REBOOT_PENDING_HARD = "reboot_pending_hard"
REBOOT_STARTED_HARD = "reboot_started_hard"
PAUSING = "pausing"
UNPAUSING = "unpausing"
SUSPENDING = "suspending"
RESUMING = "resuming"
POWERING_OFF = "powering-off"
POWERING_ON = "powering-on"
REBUILDING = "rebuilding"
REBUILD_SPAWNING = "rebuild_spawning"
RESIZE_PREP = "resize_prep"
RESIZE_MIGRATING = "resize_migrating"
RESIZE_MIGRATED = "resize_migrated"
RESIZE_FINISH = "resize_finish"
RESIZE_REVERTING = "resize_reverting"
RESIZE_CONFIRMING = "resize_confirming"
DELETING = "deleting"

# The API's status, derived from vm_state and task_state as Nova derives it.
_STATE_MAP = {
    ACTIVE: {
        "default": "ACTIVE",
        REBOOTING: "REBOOT",
        REBOOT_PENDING: "REBOOT",
        REBOOT_STARTED: "REBOOT",
        REBOOTING_HARD: "HARD_REBOOT",
        REBOOT_PENDING_HARD: "HARD_REBOOT",
        REBOOT_STARTED_HARD: "HARD_REBOOT",
        REBUILDING: "REBUILD",
        REBUILD_SPAWNING: "REBUILD",
        RESIZE_PREP: "RESIZE",
        RESIZE_MIGRATING: "RESIZE",
        RESIZE_MIGRATED: "RESIZE",
        RESIZE_FINISH: "RESIZE",
    },
    BUILDING: {"default": "BUILD"},
    STOPPED: {
        "default": "SHUTOFF",
        RESIZE_PREP: "RESIZE",
        RESIZE_MIGRATING: "RESIZE",
        RESIZE_MIGRATED: "RESIZE",
        RESIZE_FINISH: "RESIZE",
        REBUILDING: "REBUILD",
        REBUILD_SPAWNING: "REBUILD",
    },
    RESIZED: {"default": "VERIFY_RESIZE", RESIZE_REVERTING: "REVERT_RESIZE"},
    PAUSED_VM: {"default": "PAUSED", REBUILDING: "REBUILD"},
    SUSPENDED_VM: {"default": "SUSPENDED"},
    RESCUED: {"default": "RESCUE"},
    ERROR: {"default": "ERROR", REBUILDING: "REBUILD", REBUILD_SPAWNING: "REBUILD"},
    DELETED: {"default": "DELETED"},
    SOFT_DELETED: {"default": "SOFT_DELETED"},
    SHELVED: {"default": "SHELVED"},
    SHELVED_OFFLOADED: {"default": "SHELVED_OFFLOADED"},
}

#: Status names the API accepts in ?status= filters, mapped back to vm_states.
STATUS_TO_VM_STATES = {}
for _vm_state, _tasks in _STATE_MAP.items():
    STATUS_TO_VM_STATES.setdefault(_tasks["default"], set()).add(_vm_state)


def status_from_state(vm_state: str, task_state: str | None = None) -> str:
    """Return the API status (ACTIVE, BUILD, SHUTOFF, ...) of an instance."""
    task_map = _STATE_MAP.get(vm_state, {"default": "UNKNOWN"})
    status = task_map.get(task_state, task_map["default"])
    if status == "UNKNOWN":
        return "UNKNOWN"
    if task_state == DELETING:
        return "DELETED" if vm_state == DELETED else status
    return status
