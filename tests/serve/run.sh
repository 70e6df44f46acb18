#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Integration tests of `pegpu serve` against fake_upstream (a stand-in for
# llama-server): start on demand, health, queueing, streaming without
# buffering, swap and groups, TTL, concurrency limit, crash mid-stream,
# SIGHUP reload, API keys, bad input, kill -9 and restart without orphans.
#
#   tests/serve/run.sh [BUILD_DIR]     (default: build/meson)
#
# Prints "PASS name" / "FAIL name: why" and ends with "N passed, N failed".
# Loopback only; bounded (about a minute; hard limit 300 s).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build/meson}
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$top" >/dev/null || { echo "FAIL setup: meson setup $build failed"; echo "0 passed, 1 failed"; exit 1; }
fi
if ! meson compile -C "$build" runtime/pegpu tests/unit/fake_upstream >/dev/null 2>&1; then
	meson compile -C "$build" runtime/pegpu tests/unit/fake_upstream 2>&1 | tail -20
	echo "FAIL build: pegpu or fake_upstream did not compile"
	echo "0 passed, 1 failed"
	exit 1
fi
exec timeout -k 10 300 python3 "$top/tests/serve/itest.py" \
	--pegpu "$build/runtime/pegpu" --fake "$build/tests/unit/fake_upstream" \
	--configs "$top/tests/serve/configs"
