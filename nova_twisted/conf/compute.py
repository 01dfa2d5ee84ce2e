"""[compute]: the compute service and its hypervisor driver."""

from nova_twisted.conf.types import BoolOpt, FloatOpt, IntOpt, StrOpt

SECTION = "compute"
OPTS = [
    StrOpt("driver", default="fake", help="Hypervisor driver plugin, by name: fake or libvirt."),
    StrOpt(
        "instances_path",
        default="$state_path/instances",
        help="Where instance files live; _base/ inside holds the shared base images.",
    ),
    StrOpt("availability_zone", default="nova", help="Availability zone of this compute host."),
    FloatOpt("cpu_allocation_ratio", default=16.0, min=0.0001, help="Virtual CPUs per physical CPU."),
    FloatOpt("ram_allocation_ratio", default=1.5, min=0.0001, help="Virtual RAM per MiB of physical RAM."),
    FloatOpt("disk_allocation_ratio", default=1.0, min=0.0001, help="Virtual disk per GiB of local disk."),
    IntOpt("reserved_host_memory_mb", default=512, min=0, help="RAM kept for the host itself, in MiB."),
    IntOpt("reserved_host_disk_mb", default=0, min=0, help="Disk kept for the host itself, in MiB."),
    IntOpt("reserved_host_cpus", default=0, min=0, help="Physical CPUs kept for the host itself."),
    IntOpt(
        "update_resources_interval",
        default=60,
        min=1,
        help="Seconds between two reports of this host's resources to the database.",
    ),
    IntOpt(
        "sync_power_state_interval",
        default=60,
        min=1,
        help="Seconds between two comparisons of every instance's power state with the hypervisor's.",
    ),
    IntOpt(
        "max_concurrent_builds",
        default=10,
        min=1,
        help="Builds this host runs at the same time; more wait their turn.",
    ),
    IntOpt(
        "shutdown_timeout",
        default=60,
        min=0,
        help="Seconds a guest gets to shut down cleanly on stop before it is powered off.",
    ),
    BoolOpt(
        "resume_guests_state_on_host_boot",
        default=True,
        help="On start, restart guests that should be running but are not (host reboot).",
    ),
]
