# SPDX-License-Identifier: GPL-2.0-or-later
# PEGPU Machine devices for qemu-system-aarch64 (configs/devices/aarch64-softmmu/pegpu.mak);
# build.sh appends CONFIG_ARM_GICV3_TCG=y on QEMU versions whose Kconfig has it.
CONFIG_ARM_VIRT=y
CONFIG_PCIE_PORT=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_BLK=y
CONFIG_VIRTIO_NET=y
CONFIG_VIRTIO_RNG=y
CONFIG_VIRTIO_SERIAL=y
CONFIG_VIRTIO_SCSI=y
CONFIG_PEGPU_DMA=y
CONFIG_PEGPU_DMATEST=y
