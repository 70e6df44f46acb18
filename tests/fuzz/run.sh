#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fuzz tier: build the libFuzzer targets with ASan + UBSan and run each for a
# fixed budget.  A crash, a property violation, a leak, a sanitizer report or
# a timeout fails the target; the input that did it is kept next to the build.
#
#   tests/fuzz/run.sh [target...]          fuzz_dmadev fuzz_coalesce fuzz_trace
#   FUZZ_SECONDS=N                         budget per target (default 20)
#   PEGPU_FUZZ_LONG=1                      600 s per target (bench, by hand)
#   PEGPU_FUZZ_OUT=DIR                     build and work dir (default build/fuzz)
#
# The committed seeds (tests/fuzz/corpus/TARGET) are copied into a work
# corpus; what the fuzzer adds stays in the work dir, never in the repo.
# Prints PASS/FAIL lines and ends with "N passed, N failed".
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=${PEGPU_FUZZ_OUT:-$top/build/fuzz}
secs=${FUZZ_SECONDS:-20}
[ "${PEGPU_FUZZ_LONG:-0}" != 0 ] && secs=600
targets=${*:-fuzz_dmadev fuzz_coalesce fuzz_trace}
passed=0 failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
mkdir -p "$out"

cc=
for c in ${FUZZ_CC:-} clang-14 clang; do
	if command -v "$c" >/dev/null 2>&1; then cc=$c; break; fi
done
if [ -z "$cc" ]; then
	fail fuzz/toolchain "no clang found (apt install clang-14 libclang-rt-14-dev)"
	echo "$passed passed, $failed failed"
	exit 1
fi
cflags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
	-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
	-Wmissing-prototypes -Iinclude)

sources() {	# sources TARGET: the lib files a target links
	case $1 in
	fuzz_dmadev) echo lib/dma_dev.c lib/dart_emu.c lib/dma_backend_emu.c ;;
	fuzz_coalesce) echo lib/coalesce.c ;;
	fuzz_trace) echo lib/dma_trace.c lib/dma_replay.c lib/coalesce.c lib/dart_emu.c \
			lib/dma_dev.c lib/dma_backend_emu.c ;;
	*) return 1 ;;
	esac
}

for t in $targets; do
	if ! src=$(sources "$t"); then
		fail "fuzz/$t" "unknown target (fuzz_dmadev, fuzz_coalesce, fuzz_trace)"
		continue
	fi
	# shellcheck disable=SC2086
	if ! "$cc" "${cflags[@]}" "tests/fuzz/$t.c" $src -o "$out/$t" >"$out/$t-build.log" 2>&1; then
		tail -20 "$out/$t-build.log"
		fail "fuzz/$t" "build failed; log: $out/$t-build.log"
		continue
	fi
	work=$out/corpus-$t
	mkdir -p "$work"
	[ -d "tests/fuzz/corpus/$t" ] && cp -n "tests/fuzz/corpus/$t"/* "$work"/ 2>/dev/null
	rm -f "$out/$t"-crash-* "$out/$t"-leak-* "$out/$t"-timeout-* "$out/$t"-oom-*
	log=$out/$t.log
	# -timeout: one input may not take 10 s; -rss_limit_mb: nor 2 GiB
	(cd "$out" && "./$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$out/$t-" "$work") >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	arts=$(ls "$out/$t"-crash-* "$out/$t"-leak-* "$out/$t"-timeout-* "$out/$t"-oom-* 2>/dev/null)
	if [ "$rc" = 0 ] && [ -z "$arts" ]; then
		pass "fuzz/$t (${execs:-?} execs in ${secs}s, corpus $(ls "$work" | wc -l))"
	else
		grep -m5 -E 'property violated|ERROR: [A-Za-z]*Sanitizer|runtime error|^  ' "$log"
		fail "fuzz/$t" "exit $rc after ${execs:-?} execs; input: ${arts:-none}; log: $log"
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
