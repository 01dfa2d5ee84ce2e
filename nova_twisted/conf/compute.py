"""[compute]: the compute service and its hypervisor driver."""

from nova_twisted.conf.types import StrOpt

SECTION = "compute"
OPTS = [
    StrOpt(
        "driver",
        default="fake",
        help="Hypervisor driver plugin, by name: fake or libvirt.",
    ),
    StrOpt(
        "instances_path",
        default="$state_path/instances",
        help="Where instance files live; _base/ inside holds the shared base images.",
    ),
]
