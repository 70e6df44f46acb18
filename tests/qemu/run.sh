#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# tests/qemu/run.sh: device-level tests of PEGPU Machine's pegpu-dma and
# pegpu-dmatest under QEMU's qtest accelerator (no guest kernel).
#
# usage: tests/qemu/run.sh [-k PATTERN] [-v] [--keep]
#
# Builds (or reuses) PEGPU Machine with machine/qemu/build.sh, then runs
# pegpu_qtest.py against its qemu-system-x86_64 (-M q35).  Prints one line
# per case, "PASS name" or "FAIL name: why", and "N passed, N failed";
# exits non-zero on any failure.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

out=$("$ROOT/machine/qemu/build.sh") || {
	echo "tests/qemu: machine/qemu/build.sh failed" >&2
	exit 1
}
eval "$out"
: "${PEGPU_QEMU_X86_64:?build.sh printed no PEGPU_QEMU_X86_64}"
: "${PEGPU_SEABIOS:?build.sh printed no PEGPU_SEABIOS}"

exec python3 "$HERE/pegpu_qtest.py" "$PEGPU_QEMU_X86_64" "$PEGPU_SEABIOS" \
	${PEGPU_QEMU_AARCH64:+--aarch64 "$PEGPU_QEMU_AARCH64"} "$@"
