"""The libvirt hypervisor driver (QEMU/KVM and QEMU/TCG) and its base-image cache."""
