"""[libvirt]: the libvirt hypervisor driver and its image cache."""

from nova_twisted.conf.types import BoolOpt, IntOpt, StrOpt

SECTION = "libvirt"
OPTS = [
    StrOpt(
        "virt_type",
        default="kvm",
        choices=("kvm", "qemu"),
        help="Kind of guest libvirt runs: kvm (hardware virtualisation, needs /dev/kvm that can run "
        "guests) or qemu (QEMU/TCG emulation: slower, works everywhere, e.g. in a VM without nested KVM).",
    ),
    StrOpt(
        "connection_uri",
        default="",
        help="libvirt connection URI. Empty means qemu:///system. test:///default is libvirt's "
        "in-memory test hypervisor.",
    ),
    StrOpt(
        "cpu_mode",
        default="",
        choices=("", "none", "host-model", "host-passthrough"),
        help="CPU model given to guests. Empty means host-model for kvm and none (QEMU's default CPU) for qemu.",
    ),
    StrOpt(
        "machine_type",
        default="",
        help="QEMU machine type of new guests (pc, q35, ...). Empty means libvirt's default. An "
        "image's hw_machine_type property wins over it.",
    ),
    StrOpt(
        "disk_cachemode",
        default="",
        choices=("", "none", "writethrough", "writeback", "directsync", "unsafe"),
        help="Host cache mode of guest disks. Empty means none where the instances directory "
        "supports O_DIRECT, writethrough elsewhere.",
    ),
    StrOpt(
        "kernel_cmdline",
        default="root=/dev/vda console=tty0 console=ttyS0",
        help="Kernel command line of guests booted from a kernel image (AKI/ARI). An image's "
        "os_command_line property wins over it.",
    ),
    BoolOpt(
        "force_config_drive",
        default=False,
        help="Give every guest a config drive (an ISO 9660 disk labelled config-2 with its metadata). "
        "Guests with user data or a key pair get one anyway.",
    ),
    IntOpt(
        "soft_reboot_timeout",
        default=120,
        min=0,
        help="Seconds a soft reboot waits for the guest to shut down after the ACPI power button "
        "before it falls back to a hard reboot.",
    ),
    IntOpt(
        "resize_shutdown_timeout",
        default=60,
        min=0,
        help="Seconds a resize lets the guest shut down cleanly before it is powered off.",
    ),
    IntOpt(
        "thread_pool_size",
        default=8,
        min=1,
        help="Threads that run libvirt calls and other blocking work of the driver.",
    ),
    IntOpt(
        "console_log_max_bytes",
        default=100 * 1024,
        min=1024,
        help="Most bytes of the guest's serial console log that console output returns (its tail).",
    ),
    IntOpt(
        "reconnect_interval",
        default=5,
        min=1,
        help="Seconds between two attempts to re-open a lost connection to libvirtd (the first attempt is immediate).",
    ),
    BoolOpt(
        "remove_unused_base_images",
        default=True,
        help="Let the image cache manager delete base images in _base/ no instance on this host "
        "has used for remove_unused_base_images_age seconds.",
    ),
    IntOpt(
        "remove_unused_base_images_age",
        default=86400,
        min=0,
        help="Seconds a base image must have gone unused before the image cache manager deletes it.",
    ),
    IntOpt(
        "image_cache_manager_interval",
        default=2400,
        min=1,
        help="Seconds between two runs of the image cache manager (a periodic task of nova-compute).",
    ),
]
