#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build bench/dma-coalesce and print the tables docs/benchmarks.md records:
# the three profiles at every cluster size against the baseline (with the
# nvidia-loading target check), then how the nvidia-loading result moves
# with the page-allocator assumptions that matter most.
#
#   bench/dma-coalesce/run.sh [BUILD_DIR]     (default: build/meson)
#   SEED=N                                    (default 1)
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
b=${1:-$top/build/meson}
seed=${SEED:-1}
if [ ! -f "$b/build.ninja" ]; then
	meson setup "$b" "$top" >/dev/null || exit 1
fi
meson compile -C "$b" dma-coalesce >/dev/null || exit 1
bin=$b/bench/dma-coalesce/dma-coalesce

echo "## profiles (seed $seed)"
"$bin" --seed "$seed" --markdown --targets
rc=$?
echo
echo "## nvidia-loading: sensitivity to the page allocator"
for set in "hole_reuse_pct=50 pcp_high=256" "hole_reuse_pct=0 pcp_high=63" \
	   "foreign_pct=30 skip_pct=20"; do
	echo
	echo "### $set"
	args=()
	for kv in $set; do args+=(--set "$kv"); done
	"$bin" --seed "$seed" --markdown --profile nvidia-loading --clusters 64K,256K,1M "${args[@]}"
done
echo
echo "## seeds 2..5, nvidia-loading at 256 KiB"
for s in 2 3 4 5; do
	"$bin" --seed "$s" --markdown --profile nvidia-loading --clusters 256K | tail -1
done
exit $rc
