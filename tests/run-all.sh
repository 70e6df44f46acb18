#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Run every test tier and end with "N passed, N failed".
#   tests/run-all.sh [TIER...]     (default: every tier below, in this order)
# unit:   cmocka tests of lib/, plain and under ASan+UBSan (seconds)
# qemu:   PEGPU Machine's devices driven through qtest (tests/qemu/run.sh)
# kernel: arm64 and x86_64 guests under TCG with the guest driver (minutes)
# fuzz:   libFuzzer targets, a fixed budget each (tests/fuzz/run.sh, ~1.5 min)
# serve:  pegpu serve against a fake upstream (tests/serve/run.sh)
# llama:  pegpu plan and real split runs with Debian sid's llama.cpp (tests/llama/run.sh)
# system: full guests under the pegpu runtime (tests/system/run.sh; ~11 min with
#         the guest image cached, plus ~6-9 min to build it the first time)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
tiers=${*:-unit qemu kernel fuzz serve llama system}
passed=0 failed=0
log=$top/build/test-logs
mkdir -p "$log"

count() {	# count TIER OUTPUT RC: add a tier's PASS/FAIL lines to the totals
	local np nf
	np=$(printf '%s\n' "$2" | grep -c '^PASS ')
	nf=$(printf '%s\n' "$2" | grep -c '^FAIL ')
	if [ "$3" != 0 ] && [ "$nf" = 0 ]; then
		echo "FAIL $1: exited $3 without reporting a failed test"
		nf=1
	fi
	passed=$((passed + np)) failed=$((failed + nf))
}

unit_build() {	# unit_build DIR [meson options]: configure once, compile, run each test
	local dir=$1 name=$2 t out rc np nf; shift 2
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >"$log/$name-setup.log" 2>&1 ||
			{ cat "$log/$name-setup.log"; echo "FAIL $name/setup: meson setup failed"
			  failed=$((failed + 1)); return 1; }
	fi
	meson compile -C "$dir" >"$log/$name-build.log" 2>&1 ||
		{ tail -40 "$log/$name-build.log"; echo "FAIL $name/build: compile failed"
		  failed=$((failed + 1)); return 1; }
	echo "PASS $name/build"
	passed=$((passed + 1))
	# every test meson knows, as "name<TAB>command" (its argv joined by spaces)
	meson introspect --tests "$dir" | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    print(t["name"] + "\t" + " ".join(t["cmd"]))' > "$log/$name-tests.tsv"
	while IFS=$'\t' read -r t cmd; do
		out=$(cd "$dir" && $cmd 2>&1 </dev/null); rc=$?
		printf '%s\n' "$out" > "$log/$name-$t.log"
		# cmocka: "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s), listed below:"
		np=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
		nf=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed.*/\1/p' | tail -1)
		np=${np:-0} nf=${nf:-0}
		if [ "$rc" != 0 ] && [ "$nf" = 0 ]; then nf=1; fi
		if [ "$nf" = 0 ] && [ "$np" -gt 0 ]; then
			echo "PASS $name/$t ($np cases)"
		else
			printf '%s\n' "$out" | grep -E 'FAILED|ERROR|error|Sanitizer|runtime error' | head -20
			echo "FAIL $name/$t: $nf of $((np + nf)) cases failed (log: $log/$name-$t.log)"
		fi
		# the totals count cmocka cases, not executables
		passed=$((passed + np)) failed=$((failed + nf))
	done < "$log/$name-tests.tsv"
}

"$top/scripts/deps.sh" || { echo "FAIL deps: scripts/deps.sh failed"; echo "0 passed, 1 failed"; exit 1; }

for tier in $tiers; do
	echo "== $tier"
	case $tier in
	unit)
		unit_build build/meson unit
		unit_build build/meson-asan unit-asan -Db_sanitize=address,undefined -Db_lundef=false
		;;
	qemu|kernel|fuzz|serve|llama|system)
		args=()	# serve and llama build user space: they reuse the unit tier's tree
		case $tier in serve|llama) args=("$top/build/meson") ;; esac
		out=$("$top/tests/$tier/run.sh" "${args[@]}" 2>&1 | tee "$log/$tier.log" | grep -E '^(PASS|FAIL) ' |
			sed -E "/^(PASS|FAIL) $tier\//! s#^(PASS|FAIL) #\1 $tier/#"; exit "${PIPESTATUS[0]}")
		rc=$?
		printf '%s\n' "$out"
		count "$tier" "$out" "$rc"
		;;
	*) echo "FAIL $tier: unknown tier (unit, qemu, kernel, fuzz, serve, llama, system)"; failed=$((failed + 1)) ;;
	esac
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
