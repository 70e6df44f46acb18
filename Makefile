# SPDX-License-Identifier: Apache-2.0
# pegpu's front door.  Everything real lives in scripts/, tests/, meson and
# guest/kmod's Kbuild; this file only names the jobs.
#
#   make demo    install what is needed, boot the arm64 guest on PEGPU Machine,
#                run the DMA self-test and print its summary; then create,
#                start, reach and stop a Debian VM with `pegpu` (demo-vm)
#   make demo-dma    only the DMA self-test
#   make demo-vm     only the pegpu VM part
#   make test    every test tier; ends with "N passed, N failed"
#   make build   user-space libraries (meson, into build/meson)
#   make qemu    PEGPU Machine (cached in PEGPU_CACHE, default ~/.cache/pegpu)
#   make kmod    the guest modules for arm64 and x86_64 into build/kmod/
#   make deps    only install the dependencies
#   make clean   remove build/ (the cache outside the checkout stays)

SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help deps demo demo-dma demo-vm test test-unit test-qemu test-kernel build qemu kmod clean

help:
	@sed -n '4,16s/^# \{0,1\}//p' Makefile

deps:
	scripts/deps.sh

demo: demo-dma demo-vm

demo-dma: deps
	PEGPU_ARCHES=arm64 tests/kernel/run.sh demo

demo-vm: deps
	scripts/demo-vm.sh

test:
	tests/run-all.sh

test-unit test-qemu test-kernel: deps
	tests/run-all.sh $(@:test-%=%)

build: deps
	[ -f build/meson/build.ninja ] || meson setup build/meson
	meson compile -C build/meson

qemu: deps
	machine/qemu/build.sh

kmod: deps
	eval "$$(scripts/fetch-kernels.sh)" && \
	$(MAKE) -C guest/kmod KDIR="$$PEGPU_KDIR_ARM64" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- \
		OUT=$(CURDIR)/build/kmod/arm64 && \
	$(MAKE) -C guest/kmod KDIR="$$PEGPU_KDIR_AMD64" OUT=$(CURDIR)/build/kmod/x86_64

clean:
	rm -rf build
