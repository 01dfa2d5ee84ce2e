"""[scheduler]: how nova-scheduler picks hosts."""

from nova_twisted.conf.types import FloatOpt, IntOpt, ListOpt

SECTION = "scheduler"
OPTS = [
    ListOpt(
        "enabled_filters",
        default=[
            "ComputeFilter",
            "RetryFilter",
            "AvailabilityZoneFilter",
            "RamFilter",
            "CoreFilter",
            "DiskFilter",
            "ImagePropertiesFilter",
            "ServerGroupAntiAffinityFilter",
            "ServerGroupAffinityFilter",
            "SameHostFilter",
            "DifferentHostFilter",
        ],
        help="Filter plugins, by name, applied in this order; a host must pass them all.",
    ),
    ListOpt(
        "weighers",
        default=[
            "RAMWeigher",
            "CPUWeigher",
            "DiskWeigher",
            "ServerGroupSoftAffinityWeigher",
            "ServerGroupSoftAntiAffinityWeigher",
        ],
        help="Weigher plugins, by name; the host with the highest total weight wins.",
    ),
    FloatOpt("ram_weight_multiplier", default=1.0, help="Positive spreads servers by free RAM, negative stacks them."),
    FloatOpt("cpu_weight_multiplier", default=1.0, help="Positive spreads by free vCPUs, negative stacks."),
    FloatOpt("disk_weight_multiplier", default=1.0, help="Positive spreads by free disk, negative stacks."),
    FloatOpt("soft_affinity_weight_multiplier", default=1.0, min=0, help="Weight of soft-affinity groups."),
    FloatOpt("soft_anti_affinity_weight_multiplier", default=1.0, min=0, help="Weight of soft-anti-affinity groups."),
    IntOpt(
        "max_attempts",
        default=3,
        min=1,
        help="Hosts a build may be tried on before the server goes to ERROR.",
    ),
    IntOpt(
        "host_subset_size",
        default=1,
        min=1,
        help="Pick at random among this many best-weighed hosts (1: always the best).",
    ),
    IntOpt(
        "stranded_check_interval",
        default=30,
        min=1,
        help="Seconds between two looks for servers left building or deleting on a compute host "
        "that went down; they are rescheduled (or deleted) once the host has been down for "
        "[DEFAULT] service_down_time.",
    ),
    FloatOpt(
        "host_state_refresh_interval",
        default=2.0,
        min=0,
        help="Seconds the scheduler's picture of the hosts may age before it is read again "
        "from the database (claims are always checked against the database).",
    ),
]
