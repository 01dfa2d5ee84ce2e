"""[fake_driver]: the in-memory hypervisor used by the embedded default and tests."""

from nova_twisted.conf.types import FloatOpt, IntOpt, StrOpt

SECTION = "fake_driver"
OPTS = [
    IntOpt("vcpus", default=16, min=1, help="Physical CPUs the fake host reports."),
    IntOpt("memory_mb", default=32768, min=1, help="RAM the fake host reports, in MiB."),
    IntOpt("local_gb", default=1024, min=1, help="Local disk the fake host reports, in GiB."),
    FloatOpt("spawn_delay", default=0.0, min=0, help="Seconds a fake spawn takes (to test slow builds)."),
    FloatOpt(
        "action_delay",
        default=0.0,
        min=0,
        help="Seconds every other guest operation (reboot, stop, pause, snapshot step...) takes.",
    ),
    StrOpt(
        "fail_spawn",
        default="",
        help="Regular expression: spawning a server whose name matches it fails (to test reschedules). "
        "A server's metadata key fake_driver:fail_spawn=true does the same for one server.",
    ),
    StrOpt("hypervisor_type", default="fake", help="Hypervisor type the fake host reports."),
    StrOpt("cpu_arch", default="x86_64", help="CPU architecture the fake host reports."),
]
