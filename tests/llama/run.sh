#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Real llama.cpp against pegpu's model tools: Debian sid's llama-server and
# ggml-rpc-server (in a chroot, scripts/llama-chroot.sh) and tiny models
# written by pegpu-mkgguf.
#
#   tests/llama/run.sh [BUILDDIR]      (default: $PEGPU_BUILD or ./build)
#
# Checks that llama.cpp loads the generated models, that `pegpu plan` reads
# a real RPC server's version and free memory, that llama-server given the
# plan's arguments puts exactly the planned layers (and MoE experts) where
# the plan says (its debug log names every layer's device), and that the
# split run yields the same greedy tokens as an unsplit run.  Prints
# "PASS name" / "FAIL name: why" lines and "N passed, N failed"; exits 1
# when anything failed.  Needs root (chroot) and about a minute.  Logs stay
# in a /tmp directory when something failed or PEGPU_KEEP=1.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../scripts/lib/common.sh
. "$repo/scripts/lib/common.sh"
build=$(realpath -m "${1:-${PEGPU_BUILD:-$repo/build}}")

pass=0
fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

work=$(mktemp -d /tmp/pegpu-llama.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	if [ "$fail" -gt 0 ] || [ -n "${PEGPU_KEEP:-}" ]; then
		echo "logs kept in $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
}

# ---- helpers ----

# start NAME CMD...: run in the background, log to $work/NAME.log; sets $bg
start() {
	local name=$1
	shift
	"$@" > "$work/$name.log" 2>&1 &
	bg=$!
	pids+=("$bg")
}

# stop PID: TERM, then KILL after 10 s
stop() {
	local i
	kill "$1" 2>/dev/null || return 0
	for i in $(seq 100); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# wait_http PORT PID: until llama-server answers /health (60 s)
wait_http() {
	local i
	for i in $(seq 240); do
		kill -0 "$2" 2>/dev/null || return 1
		curl -sf -m 2 "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0
		sleep 0.25
	done
	return 1
}

# complete PORT: the token ids of a fixed greedy completion, one line
complete() {
	curl -sf -m 120 "http://127.0.0.1:$1/completion" -d '{"prompt": "The quick brown fox",
		"n_predict": 16, "temperature": 0, "seed": 1, "ignore_eos": true,
		"return_tokens": true, "cache_prompt": false}' |
		python3 -c 'import json, sys; t = json.load(sys.stdin)["tokens"]; assert len(t) == 16; print(t)'
}

# json FILE EXPR: evaluate a Python expression over the JSON document j
json() {
	python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); r = eval(sys.argv[2]); print(r if not isinstance(r, bool) else int(r))' "$1" "$2"
}

# check_placement PLAN.json LOG: every layer on the planned device, experts too
check_placement() {
	python3 - "$1" "$2" <<'EOF'
import json, re, sys
plan = json.load(open(sys.argv[1]))
log = open(sys.argv[2], errors="replace").read()
n = plan["model"]["n_layer"]
want = {}
for d in plan["devices"]:
    for il in range(d["first_layer"], d["first_layer"] + d["n_layers"]):
        want[il] = d["name"]
    if d["output"]:
        want[n] = d["name"]
got = {int(m.group(1)): m.group(2)
       for m in re.finditer(r"layer +(\d+) assigned to device (\S+?),", log)}
bad = [f"layer {il}: planned {want.get(il)}, llama.cpp {got.get(il)}"
       for il in range(n + 1) if want.get(il) != got.get(il)]
e = plan["experts_on_host"]
want_x = set(range(e["first_layer"], e["first_layer"] + e["n_layers"]))
got_x = {int(m.group(1)) for m in
         re.finditer(r"tensor blk\.(\d+)\.ffn_\w+_exps\.weight .* overridden to CPU", log)}
if want_x != got_x:
    bad.append(f"experts on the host: planned {sorted(want_x)}, llama.cpp {sorted(got_x)}")
if bad:
    print("; ".join(bad[:4]))
    sys.exit(1)
EOF
}

port_base=$((20000 + RANDOM % 20000))
# next_port: a fresh port in $port (not in a $(...): the count must stick)
next_port() { port_base=$((port_base + 1)); port=$port_base; }

# ---- setup ----

if [ ! -x "$build/runtime/pegpu" ] || [ ! -x "$build/runtime/pegpu-mkgguf" ]; then
	{ [ -d "$build" ] || meson setup "$build" "$repo"; } >&2 && meson compile -C "$build" >&2 ||
		{ bad setup "cannot build pegpu in $build"; finish; }
fi
pegpu=$build/runtime/pegpu
mkgguf=$build/runtime/pegpu-mkgguf

if ! env_out=$("$repo/scripts/llama-chroot.sh" env --bind "$work" 2>"$work/chroot.log"); then
	bad setup "scripts/llama-chroot.sh failed: $(tail -1 "$work/chroot.log")"
	finish
fi
eval "$env_out"
echo "# llama.cpp $LLAMA_VERSION (Debian sid) in $LLAMA_ROOT"

# ---- pegpu-mkgguf ----

if "$mkgguf" -q -o "$work/tiny.gguf" --layers 48 --embd 128 --seed 7 &&
   [ "$(json <("$pegpu" plan "$work/tiny.gguf" --host-mem 1G --json) 'j["model"]["n_layer"]')" = 48 ]; then
	ok "mkgguf writes a 48-layer model that pegpu reads ($(stat -c %s "$work/tiny.gguf") bytes)"
else
	bad mkgguf "could not write or read back $work/tiny.gguf"
	finish
fi

"$mkgguf" -q -o "$work/bad.gguf" --embd 130 --heads 4 2>"$work/mkgguf-bad.log"
rc=$?
if [ "$rc" = 2 ] && ! ls "$work"/bad.gguf* >/dev/null 2>&1 && grep -q 'must divide' "$work/mkgguf-bad.log"; then
	ok "mkgguf refuses bad sizes with a message and exit 2"
else
	bad mkgguf-usage "exit $rc, $(cat "$work/mkgguf-bad.log")"
fi

# killed half-way: nothing left behind (a ~1.7 GB model, stopped early)
"$mkgguf" -q -o "$work/big.gguf" --layers 64 --embd 1024 &
mk=$!
sleep 0.3
kill "$mk" 2>/dev/null
wait "$mk" 2>/dev/null
if ! ls "$work"/big.gguf* >/dev/null 2>&1; then
	ok "mkgguf interrupted leaves no file behind"
else
	bad mkgguf-interrupt "left $(ls "$work"/big.gguf*)"
	rm -f "$work"/big.gguf*
fi

# ---- unsplit reference runs ----

# unsplit MODEL NAME: greedy tokens of MODEL on the host alone, into $work/NAME.tokens
unsplit() {
	local port
	next_port
	start "$2-unsplit" $LLAMA_SERVER -m "$1" --host 127.0.0.1 --port "$port" -c 512 -t 2 \
		-ngl 0 --fit off
	if wait_http "$port" "$bg" && complete "$port" > "$work/$2.tokens"; then
		ok "llama-server loads the $2 model and generates 16 greedy tokens"
	else
		bad "$2-unsplit" "llama-server: $(tail -2 "$work/$2-unsplit.log" | tr '\n' ' ')"
	fi
	stop "$bg"
}

"$mkgguf" -q -o "$work/moe.gguf" --layers 8 --embd 128 --experts 4 --experts-used 2 --seed 3 ||
	bad mkgguf-moe "could not write the MoE model"
unsplit "$work/tiny.gguf" tiny
unsplit "$work/moe.gguf" moe

# ---- the RPC server and pegpu's query ----

next_port
rpc_port=$port
rpc=127.0.0.1:$rpc_port
start rpc $LLAMA_RPC_SERVER -H 127.0.0.1 -p "$rpc_port"
rpc_pid=$bg
for _ in $(seq 40); do
	grep -q 'endpoint' "$work/rpc.log" 2>/dev/null && break
	sleep 0.25
done
sleep 0.5
banner=$(grep -o 'RPC server v[0-9.]*' "$work/rpc.log" | head -1)
banner_free=$(grep -oE '[0-9]+ MiB free' "$work/rpc.log" | head -1 | cut -d' ' -f1)

if "$pegpu" plan "$work/tiny.gguf" --ctx 512 --host-mem 1G --rpc "$rpc" --json > "$work/plan-full.json" 2>"$work/plan-full.err"; then
	proto=$(json "$work/plan-full.json" 'j["devices"][1]["protocol"]')
	free=$(json "$work/plan-full.json" 'j["devices"][1]["budget_bytes"] + 512 * 2**20')
	free_mib=$((free >> 20))
	if [ "v$proto" = "${banner#RPC server }" ] &&
	   [ "$free_mib" -gt $((banner_free * 9 / 10)) ] && [ "$free_mib" -lt $((banner_free * 11 / 10 + 1)) ]; then
		ok "pegpu plan queries ggml-rpc-server: protocol $proto, $free_mib MiB free (server says $banner_free)"
	else
		bad rpc-query "protocol '$proto' vs '$banner', $free_mib MiB vs $banner_free MiB"
	fi
else
	bad rpc-query "$(cat "$work/plan-full.err")"
	free=0
fi

# ---- a split planned from the real query ----

# split MODEL NAME PLAN.json: run llama-server with the plan's arguments,
# check the placement in its debug log and the tokens against unsplit
split_run() {
	local model=$1 name=$2 plan=$3 port args
	mapfile -t args < <(json "$plan" '"\n".join(j["args"])')
	next_port
	start "$name-split" $LLAMA_SERVER -m "$model" --host 127.0.0.1 --port "$port" -t 2 -lv 5 \
		"${args[@]}"
	if ! wait_http "$port" "$bg" || ! complete "$port" > "$work/$name-split.tokens"; then
		bad "$name-split" "llama-server $(json "$plan" 'j["command"]'): $(grep -E ' E |error' "$work/$name-split.log" | tail -2 | tr '\n' ' ')"
		stop "$bg"
		return
	fi
	local why g
	g=$(json "$plan" 'j["gpu_layers"]')
	if why=$(check_placement "$plan" "$work/$name-split.log"); then
		ok "$name: llama-server puts the planned layers on RPC ($g of $(json "$plan" 'j["model"]["n_layer"]') + output; $(json "$plan" 'j["experts_on_host"]["n_layers"]') layers' experts on the host)"
	else
		bad "$name-placement" "$why"
	fi
	if cmp -s "$work/$name.tokens" "$work/$name-split.tokens"; then
		ok "$name: the split run yields the same 16 greedy tokens as the unsplit run"
	else
		bad "$name-tokens" "unsplit $(cat "$work/$name.tokens") vs split $(cat "$work/$name-split.tokens")"
	fi
	# while llama-server holds the RPC server, a query must time out, clearly
	local t0=$SECONDS
	if "$pegpu" plan "$model" --rpc "$rpc" --timeout 2 > /dev/null 2>"$work/busy.err"; then
		bad "$name-busy" "a query to a busy RPC server succeeded"
	elif grep -q 'one client at a time' "$work/busy.err" && [ $((SECONDS - t0)) -le 5 ]; then
		ok "$name: pegpu plan gives up on a busy RPC server within its timeout"
	else
		bad "$name-busy" "$(cat "$work/busy.err") ($((SECONDS - t0)) s)"
	fi
	stop "$bg"
}

# Keep ~12 MiB of the server's memory usable, so about a third of the
# 48 layers go to RPC.  Free memory moves a little between queries: the
# plan made from the second query is the one checked.
if [ "$free" -gt $((64 << 20)) ]; then
	reserve=$((free - (12 << 20)))
	if "$pegpu" plan "$work/tiny.gguf" --ctx 512 --host-mem 1G --rpc "$rpc" --reserve "$reserve" \
		--json > "$work/plan-tiny.json" 2>"$work/plan-tiny.err"; then
		g=$(json "$work/plan-tiny.json" 'j["gpu_layers"]')
		if [ "$g" -gt 0 ] && [ "$g" -lt 48 ]; then
			"$pegpu" plan "$work/tiny.gguf" --ctx 512 --host-mem 1G --rpc "$rpc" --reserve "$reserve" \
				> "$work/plan-tiny.txt" 2>&1
			sed 's/^/# /' "$work/plan-tiny.txt"
			split_run "$work/tiny.gguf" tiny "$work/plan-tiny.json"
		else
			bad tiny-plan "expected a partial split, got $g of 48 layers on RPC"
		fi
	else
		bad tiny-plan "$(cat "$work/plan-tiny.err")"
	fi
fi

# MoE: a fixed 2.5 MiB eGPU budget makes the planner keep experts home
if "$pegpu" plan "$work/moe.gguf" --ctx 512 --host-mem 1G --rpc "$rpc=2.5M" --reserve 0 --json \
	> "$work/plan-moe.json" 2>"$work/plan-moe.err"; then
	if [ "$(json "$work/plan-moe.json" 'j["experts_on_host"]["n_layers"]')" -gt 0 ]; then
		sed 's/^/# /' <("$pegpu" plan "$work/moe.gguf" --ctx 512 --host-mem 1G --rpc "$rpc=2.5M" --reserve 0)
		split_run "$work/moe.gguf" moe "$work/plan-moe.json"
	else
		bad moe-plan "no -ot: $(json "$work/plan-moe.json" 'j["command"]')"
	fi
else
	bad moe-plan "$(cat "$work/plan-moe.err")"
fi
# the timed-out queries above sat in its accept queue: it must survive them
sleep 1
if kill -0 "$rpc_pid" 2>/dev/null; then
	ok "ggml-rpc-server survives pegpu's timed-out queries"
else
	wait "$rpc_pid"
	bad rpc-survives "ggml-rpc-server exited with status $? after a timed-out query"
fi
stop "$rpc_pid"

# ---- pegpu serve end to end: a llama-swap config, a supervised RPC server ----

# complete_url URL: like complete, against any base URL
complete_url() {
	curl -sf -m 180 "$1/completion" -d '{"prompt": "The quick brown fox",
		"n_predict": 16, "temperature": 0, "seed": 1, "ignore_eos": true,
		"return_tokens": true, "cache_prompt": false}' |
		python3 -c 'import json, sys; t = json.load(sys.stdin)["tokens"]; assert len(t) == 16; print(t)'
}

# rpc_field FIELD: a field of the supervised RPC server in /running
rpc_field() {
	curl -sf -m 5 "$serve_url/running" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["rpcServers"][0][sys.argv[1]])' "$1"
}

next_port
srpc_port=$port
next_port
serve_port=$port
port_base=$((port_base + 10))
serve_url=http://127.0.0.1:$serve_port
# about a third of the layers on the eGPU, as in the split above
sreserve=${reserve:-0}
cat > "$work/serve.yaml" <<EOF
# written by tests/llama/run.sh
healthCheckTimeout: 60
logToStdout: both
startPort: $((port_base - 8))
rpcServers:
  egpu:
    endpoint: 127.0.0.1:$srpc_port
    cmd: $LLAMA_RPC_SERVER -H 127.0.0.1 -p $srpc_port
models:
  tiny:
    cmd: $LLAMA_SERVER -m $work/tiny.gguf --host 127.0.0.1 --port \${PORT} -c 512 -t 2 -ngl 0 --fit off
  tiny-split:
    cmd: $LLAMA_SERVER -m $work/tiny.gguf --host 127.0.0.1 --port \${PORT} -c 512 -t 2 -lv 5
    split:
      rpc: [egpu]
      hostMemory: 1G
      reserve: $sreserve
  nowhere:
    cmd: $LLAMA_SERVER -m $work/tiny.gguf --host 127.0.0.1 --port \${PORT} -c 512 -t 2
    split:
      rpc: [127.0.0.1:1]
      hostMemory: 1G
EOF
if "$pegpu" serve --check --config "$work/serve.yaml" > "$work/serve-check.log" 2>&1; then
	ok "pegpu serve --check accepts a llama-swap config with rpcServers and split"
else
	bad serve-check "$(cat "$work/serve-check.log")"
fi
start serve "$pegpu" serve --config "$work/serve.yaml" --listen "127.0.0.1:$serve_port" \
	--state-dir "$work/serve-state"
serve_pid=$bg
for _ in $(seq 100); do
	[ "$(rpc_field state 2>/dev/null)" = running ] && break
	sleep 0.1
done

if complete_url "$serve_url/upstream/tiny" > "$work/serve-tiny.tokens" &&
   cmp -s "$work/tiny.tokens" "$work/serve-tiny.tokens"; then
	ok "pegpu serve starts llama-server on demand and proxies it (same 16 greedy tokens)"
else
	bad serve-tiny "$(tail -3 "$work/serve.log" | tr '\n' ' ')"
fi
# OpenAI-style route, model chosen by the request's model field
if curl -sf -m 120 "$serve_url/v1/completions" -H 'Content-Type: application/json' \
	-d '{"model": "tiny", "prompt": "Hello", "max_tokens": 4, "temperature": 0}' |
	python3 -c 'import json, sys; j = json.load(sys.stdin); assert j["choices"][0]["text"] is not None'; then
	ok "pegpu serve: /v1/completions routed by the model field"
else
	bad serve-v1 "no completion from /v1/completions"
fi

# the split model: planned at start from the supervised server's free memory
if complete_url "$serve_url/upstream/tiny-split" > "$work/serve-split.tokens"; then
	if cmp -s "$work/tiny.tokens" "$work/serve-split.tokens"; then
		ok "pegpu serve: the split model yields the same 16 greedy tokens as unsplit"
	else
		bad serve-split-tokens "unsplit $(cat "$work/tiny.tokens") vs split $(cat "$work/serve-split.tokens")"
	fi
	if why=$(python3 - "$work/serve.log" <<'EOF'
import re, sys
log = open(sys.argv[1], errors="replace").read()
m = re.findall(r"(\d+) of (\d+) layers( and the output layer)? on the eGPU", log)
if not m:
    sys.exit("no plan in the serve log")
g, n, out = int(m[-1][0]), int(m[-1][1]), bool(m[-1][2])
got = {int(a): d for a, d in re.findall(r"layer +(\d+) assigned to device (\S+?),", log)}
rpc = sorted(il for il, d in got.items() if d.startswith("RPC"))
want = list(range(n - g, n)) + ([n] if out else [])
if not 0 < g < n or rpc != want:
    sys.exit(f"plan: {g} of {n} layers (+output: {out}); llama.cpp put {rpc} on RPC")
print(f"{g} of {n} layers + output")
EOF
	); then
		ok "pegpu serve: llama-server places the planned layers on the RPC server ($why)"
	else
		bad serve-split-placement "$why"
	fi
else
	bad serve-split "$(grep -E 'tiny-split|split' "$work/serve.log" | tail -4 | tr '\n' ' ')"
fi

# kill the RPC server: the daemon restarts it and the split model, and the
# next request is answered with the same tokens
rpid=$(rpc_field pid 2>/dev/null)
t0=$SECONDS
if [ -n "$rpid" ] && [ "$rpid" != 0 ] && kill -9 "$rpid"; then
	for _ in $(seq 100); do
		[ "$(rpc_field restarts 2>/dev/null)" = 1 ] && [ "$(rpc_field state 2>/dev/null)" = running ] && break
		sleep 0.1
	done
	if grep -q "model 'tiny-split' lost its RPC server 'egpu'" "$work/serve.log" &&
	   [ "$(rpc_field restarts)" = 1 ]; then
		ok "pegpu serve: a killed RPC server is restarted and its model is stopped with a clear message"
	else
		bad serve-rpc-restart "restarts $(rpc_field restarts 2>&1); $(grep -i rpc "$work/serve.log" | tail -3 | tr '\n' ' ')"
	fi
	if complete_url "$serve_url/upstream/tiny-split" > "$work/serve-split2.tokens" &&
	   cmp -s "$work/tiny.tokens" "$work/serve-split2.tokens"; then
		ok "pegpu serve: after the RPC server died, the split model answers again ($((SECONDS - t0)) s, same tokens)"
	else
		bad serve-rpc-recover "$(grep -E 'tiny-split|egpu' "$work/serve.log" | tail -4 | tr '\n' ' ')"
	fi
	grep -q "restarting model 'tiny-split' now that RPC server 'egpu' is back" "$work/serve.log" &&
		ok "pegpu serve: the split model was restarted by the daemon, not by the next request" ||
		bad serve-rpc-proactive "no proactive restart in the log"
else
	bad serve-rpc-kill "no RPC server pid in /running"
fi

# a split whose RPC server is not there: a clear error, the daemon alive
code=$(curl -s -m 60 -o "$work/nowhere.json" -w '%{http_code}' "$serve_url/v1/completions" \
	-H 'Content-Type: application/json' -d '{"model": "nowhere", "prompt": "x", "max_tokens": 1}')
if [ "$code" -ge 500 ] && grep -q "not listening" "$work/nowhere.json" && kill -0 "$serve_pid"; then
	ok "pegpu serve: a split model without its RPC server fails with a clear error ($code)"
else
	bad serve-nowhere "HTTP $code: $(head -c 300 "$work/nowhere.json")"
fi

# SIGTERM: models first, then the RPC server; nothing left running
rpid=$(rpc_field pid 2>/dev/null)
stop "$serve_pid"
sleep 0.5
if [ -n "$rpid" ] && ! kill -0 "$rpid" 2>/dev/null && ! pgrep -f "$work/tiny.gguf" >/dev/null; then
	ok "pegpu serve stops its models and RPC server on SIGTERM"
else
	bad serve-stop "left running: $(pgrep -af "ggml-rpc-server -H 127.0.0.1 -p $srpc_port|$work/tiny.gguf" | head -3 | tr '\n' ' ')"
fi

# ---- errors ----

"$pegpu" plan "$work/tiny.gguf" --ctx 512 --host-mem 4M --rpc 127.0.0.1:1=4M > /dev/null 2>"$work/nofit.err"
rc=$?
if [ "$rc" = 1 ] && grep -q 'missing on the host' "$work/nofit.err"; then
	ok "pegpu plan: a model that does not fit is an error naming the missing bytes"
else
	bad plan-nofit "exit $rc: $(cat "$work/nofit.err")"
fi

# fake RPC servers: a protocol too old (1.x), and one that never answers
fake() {
	python3 - "$1" "$2" <<'EOF'
import socket, struct, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(4)
print("ready", flush=True)
s.settimeout(20)
for _ in range(2):
    c, _ = s.accept()
    hdr = c.recv(9)
    n = struct.unpack("<Q", hdr[1:9])[0]
    if mode == "silent":
        time.sleep(10)
        break
    if n:			# protocols 1 to 4 take an empty HELLO only
        c.close()
        continue
    c.sendall(struct.pack("<Q", 3) + bytes([1, 0, 0]))
    c.close()
    break
EOF
}

for mode in old silent; do
	next_port
	fake "$mode" "$port" > "$work/fake-$mode.log" 2>&1 &
	fpid=$!
	pids+=("$fpid")
	for _ in $(seq 40); do grep -q ready "$work/fake-$mode.log" && break; sleep 0.1; done
	t0=$SECONDS
	"$pegpu" plan "$work/tiny.gguf" --host-mem 1G --rpc "127.0.0.1:$port" --timeout 2 \
		> /dev/null 2>"$work/fake-$mode.err"
	rc=$?
	took=$((SECONDS - t0))
	if [ "$mode" = old ]; then
		want='speaks RPC protocol 1.0.0'
		what="a protocol mismatch is a clear error"
	else
		want='no answer within 2000 ms'
		what="a silent server times out"
	fi
	if [ "$rc" = 1 ] && grep -q "$want" "$work/fake-$mode.err" && [ "$took" -le 5 ]; then
		ok "pegpu plan: $what ($took s)"
	else
		bad "rpc-$mode" "exit $rc after $took s: $(cat "$work/fake-$mode.err")"
	fi
	stop "$fpid"
done

finish
