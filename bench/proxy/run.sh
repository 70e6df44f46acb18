#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Proxy overhead of `pegpu serve` against nginx, in one run, to the same
# upstream (fake_upstream, a stand-in for llama-server):
#   - latency: one connection, requests back to back; p50 and p99 of the
#     direct path, and what each proxy adds to them;
#   - throughput: 16 connections, requests per second;
#   - both for a plain JSON completion and for a streamed (SSE, 20 chunks)
#     one.
# nginx runs as a reverse proxy with proxy_buffering off and upstream
# keep-alive, one worker (pegpu serve is one event loop too).  Load: wrk.
# Loopback only; about a minute.
#
#   bench/proxy/run.sh [BUILD_DIR]      (default: build/meson)
#   SECS=4 ROUNDS=2 CONNS=16 bench/proxy/run.sh
#
# Prints a markdown table; docs/benchmarks.md keeps a measured one.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build/meson}
secs=${SECS:-4}
rounds=${ROUNDS:-2}
conns=${CONNS:-16}
hz=$(getconf CLK_TCK)
# With two or more CPUs the proxy under test gets the last one to itself and
# the load generator and upstream share the others, so the two proxies are
# measured under the same conditions.
ncpu=$(nproc)
if [ "$ncpu" -ge 2 ] && command -v taskset >/dev/null; then
	pin_proxy="taskset -c $((ncpu - 1))"
	pin_load="taskset -c 0-$((ncpu - 2))"
	pin_note=" Proxies pinned to CPU $((ncpu - 1)), wrk and the upstream to CPU 0-$((ncpu - 2))."
else
	pin_proxy="" pin_load="" pin_note=""
fi

# The tools come from Debian but are not installed system-wide: nginx's
# package would start a web server on port 80 of the host.  Its
# binary is unpacked into the cache instead; wrk is a plain tool.
. "$top/scripts/lib/common.sh"
command -v wrk >/dev/null || pegpu_as_root env DEBIAN_FRONTEND=noninteractive \
	apt-get -q install -y --no-install-recommends wrk >&2 ||
	{ echo "bench/proxy: could not install wrk (Debian package wrk)" >&2; exit 1; }
if ! command -v nginx >/dev/null; then
	ngx=$PEGPU_CACHE/bench/nginx
	if [ ! -x "$ngx/usr/sbin/nginx" ]; then
		mkdir -p "$ngx/dl"
		(cd "$ngx/dl" && apt-get -q download nginx >&2) ||
			{ echo "bench/proxy: could not download nginx" >&2; exit 1; }
		dpkg -x "$ngx"/dl/nginx_*.deb "$ngx"
	fi
	PATH=$PATH:$ngx/usr/sbin
fi
if [ -z "${SKIP_BUILD:-}" ]; then	# SKIP_BUILD=1: use the binaries already in BUILD_DIR
	if [ ! -f "$build/build.ninja" ]; then
		meson setup "$build" "$top" >/dev/null
	fi
	meson compile -C "$build" runtime/pegpu tests/unit/fake_upstream >/dev/null
fi

work=$(mktemp -d /tmp/pegpu-bench-proxy.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

base=$((30000 + RANDOM % 20000))
up=$base pegpu_port=$((base + 1)) nginx_port=$((base + 2))

$pin_load "$build/tests/unit/fake_upstream" --port "$up" --name bench 2>"$work/upstream.log" &
pids+=($!)

# pegpu supervises a placeholder process and proxies to the shared upstream,
# so both proxies talk to the very same server.
cat >"$work/serve.yaml" <<YAML
models:
  bench:
    cmd: sleep 100000
    proxy: http://127.0.0.1:$up
    checkEndpoint: /health
    concurrencyLimit: 1000
YAML
$pin_proxy "$build/runtime/pegpu" serve -c "$work/serve.yaml" --listen "127.0.0.1:$pegpu_port" \
	--state-dir "$work/state" >"$work/serve.log" 2>&1 &
pids+=($!)

mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    upstream llm { server 127.0.0.1:$up; keepalive 64; }
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://llm;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 3600s;
        }
    }
}
NGINX
$pin_proxy nginx -c "$work/nginx.conf" -p "$work/nginx" 2>"$work/nginx-start.log" &
pids+=($!)

wait_up() {	# wait_up PORT PATH
	for _ in $(seq 100); do
		curl -sf -o /dev/null "http://127.0.0.1:$1$2" && return 0
		sleep 0.05
	done
	echo "bench/proxy: nothing answers on port $1" >&2
	cat "$work"/*.log >&2
	exit 1
}
wait_up "$up" /health
wait_up "$pegpu_port" /health
wait_up "$nginx_port" /health
# start the model in pegpu before measuring
curl -sf -o /dev/null "http://127.0.0.1:$pegpu_port/v1/chat/completions" \
	-d '{"model":"bench","messages":[]}'

plain='{"model":"bench","messages":[{"role":"user","content":"hi"}],"fake_bytes":256}'
streamed='{"model":"bench","stream":true,"messages":[{"role":"user","content":"hi"}],"fake_chunks":20}'

lua() {	# lua BODY FILE
	printf 'wrk.method = "POST"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n' \
		"$1" >"$2"
}
lua "$plain" "$work/plain.lua"
lua "$streamed" "$work/streamed.lua"

cpu_ticks() {	# utime + stime of a process, in clock ticks
	awk '{print $14 + $15}' "/proc/$1/stat"
}

# run PORT SCRIPT CONNS -> "p50_us p99_us req_per_s errors requests"
run() {
	local out
	out=$($pin_load wrk -t1 -c"$3" -d"${secs}s" --latency -s "$2" "http://127.0.0.1:$1/v1/chat/completions")
	awk '
	function us(v) {
		if (v ~ /us$/) return v + 0
		if (v ~ /ms$/) return v * 1000
		if (v ~ /s$/) return v * 1000000
		return v
	}
	/^ +50%/ { p50 = us($2) }
	/^ +99%/ { p99 = us($2) }
	/^Requests\/sec:/ { rps = $2 }
	/Non-2xx/ { err += $NF }
	/Socket errors/ { err += 1 }
	/requests in/ { n = $1 }
	END { printf "%.1f %.1f %.0f %d %d\n", p50, p99, rps, err, n }' <<<"$out"
}

declare -A P50 P99 RPS ERR CPU
targets=(direct pegpu nginx)
declare -A PORT=([direct]=$up [pegpu]=$pegpu_port [nginx]=$nginx_port)
# the process doing each proxy's work (nginx: its one worker)
declare -A WORKER=([direct]=${pids[0]} [pegpu]=${pids[1]} [nginx]=$(pgrep -P "${pids[2]}" | head -1))
for mode in plain streamed; do
	for t in "${targets[@]}"; do	# warm up every path once
		$pin_load wrk -t1 -c4 -d1s -s "$work/$mode.lua" "http://127.0.0.1:${PORT[$t]}/v1/chat/completions" >/dev/null
	done
	for r in $(seq "$rounds"); do
		for t in "${targets[@]}"; do
			read -r p50 p99 _ e _ < <(run "${PORT[$t]}" "$work/$mode.lua" 1)
			c0=$(cpu_ticks "${WORKER[$t]}")
			read -r _ _ rps e2 n < <(run "${PORT[$t]}" "$work/$mode.lua" "$conns")
			c1=$(cpu_ticks "${WORKER[$t]}")
			cpu=$(awk "BEGIN{printf \"%.1f\", ($c1 - $c0) * 1e6 / $hz / ($n ? $n : 1)}")
			k=$mode/$t
			if [ -z "${CPU[$k]:-}" ] || awk "BEGIN{exit !($cpu < ${CPU[$k]})}"; then CPU[$k]=$cpu; fi
			# keep the best round: the machine is shared, noise only adds
			if [ -z "${P50[$k]:-}" ] || awk "BEGIN{exit !($p50 < ${P50[$k]})}"; then P50[$k]=$p50; fi
			if [ -z "${P99[$k]:-}" ] || awk "BEGIN{exit !($p99 < ${P99[$k]})}"; then P99[$k]=$p99; fi
			if [ -z "${RPS[$k]:-}" ] || awk "BEGIN{exit !($rps > ${RPS[$k]})}"; then RPS[$k]=$rps; fi
			ERR[$k]=$(( ${ERR[$k]:-0} + e + e2 ))
		done
	done
done

echo "| reply | path | p50 | p99 | added p50 | added p99 | req/s ($conns conns) | CPU per request | errors |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
for mode in plain streamed; do
	for t in "${targets[@]}"; do
		k=$mode/$t d=$mode/direct
		if [ "$t" = direct ]; then
			add50=- add99=-
		else
			add50=$(awk "BEGIN{printf \"%+.0f µs\", ${P50[$k]} - ${P50[$d]}}")
			add99=$(awk "BEGIN{printf \"%+.0f µs\", ${P99[$k]} - ${P99[$d]}}")
		fi
		label=$t
		[ "$t" = pegpu ] && label="pegpu serve"
		[ "$t" = nginx ] && label="nginx $(nginx -v 2>&1 | sed 's|.*/||')"
		printf '| %s | %s | %.0f µs | %.0f µs | %s | %s | %s | %s µs | %s |\n' \
			"$([ "$mode" = plain ] && echo "JSON (256 B)" || echo "SSE (20 chunks)")" "$label" \
			"${P50[$k]}" "${P99[$k]}" "$add50" "$add99" "${RPS[$k]}" "${CPU[$k]}" "${ERR[$k]}"
	done
done
echo
echo "wrk -t1, $secs s per measurement, best of $rounds rounds; latency with 1 connection, throughput"
echo "with $conns; CPU per request: user+system time of the serving process (for direct: the upstream"
echo "itself) during the throughput run, divided by the requests answered.${pin_note}"
