#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# GPU split benchmark: does `pegpu plan` pick the fastest host/eGPU split?
#
# On a Linux machine with an NVIDIA GPU, llama.cpp's rpc-server with CUDA
# plays the eGPU and llama-bench on the CPU (CUDA hidden) plays the Mac.
# The script generates a random-weight model with pegpu-mkgguf, asks
# `pegpu plan` for the split under a GPU memory budget that holds only part
# of the model, then measures with llama-bench (prompt pp, generation tg):
#   - the planner's split, with exactly the planner's placement arguments;
#   - every -ngl from 0 to all layers over RPC (the sweep; splits that need
#     more eGPU memory than the budget are marked "over");
#   - all on the CPU (no RPC at all);
#   - the same GPU used locally, without RPC (the cost of the RPC hop).
# and prints one table with every row's tokens/s and its ratio to the best
# split that fits the budget.  bench/gpu-split/README.md has the details.
#
# llama.cpp is not built here: give its binaries by path.
#   LLAMA_BENCH=/path/llama-bench RPC_SERVER=/path/rpc-server bench/gpu-split/run.sh
#
# Environment (defaults in brackets):
#   LLAMA_BENCH, RPC_SERVER   llama.cpp binaries (required; the rpc-server is
#                             ggml-rpc-server in newer releases)
#   PEGPU, MKGGUF             pegpu and pegpu-mkgguf [build/meson/runtime/*,
#                             else on PATH]
#   WORK                      results, logs and the model [./gpu-split-work]
#   MODEL                     model file, generated when missing [$WORK/model.gguf]
#   MODEL_FLAGS               pegpu-mkgguf flags [a 2.8B F16 llama, 28 layers:
#                             --layers 28 --embd 3072 --heads 24 --kv-heads 8
#                             --ff 8192 --ctx 4096]
#   GPU_FREE                  eGPU memory the planner is told is free [4G]
#   RESERVE                   pegpu plan --reserve [512M]
#   HOST_MEM                  pegpu plan --host-mem [16G]
#   CTX                       pegpu plan --ctx [4096]
#   PORT                      rpc-server port on 127.0.0.1 [50052]
#   THREADS                   llama-bench -t [nproc]
#   REPS PP TG                llama-bench -r -p -n [2 512 64]
#   LLAMA                     the planner's -ngl rule: auto (probe LLAMA_BENCH's
#                             --help), current or legacy [auto]
#   SWEEP                     -ngl values, or "all" for 0..n_layer+1 [all]
#   ROWS                      which rows, in this order [plan local sweep cpu]
#   ROUNDS                    run all rows this many times, interleaved; the
#                             table pools every round's samples [1]
#   ROW_TIMEOUT               seconds per llama-bench run [600]
#   STOP_AT                   a time (seconds since the epoch) after which no
#                             run starts and a running one is stopped; the
#                             table shows what finished (use with RESUME=1)
#   PLAN_JSON, PLAN_ALL_JSON  `pegpu plan --json` outputs computed elsewhere,
#                             for a machine where pegpu cannot run (see README)
#   RESUME=1                  keep results already in $WORK, run the rest
#   TABLE_ONLY=1              only print the table from $WORK's results
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

find_tool() {	# $1 name: build/meson/runtime/$1, else PATH
	if [ -x "$root/build/meson/runtime/$1" ]; then
		echo "$root/build/meson/runtime/$1"
	else
		command -v "$1" || true
	fi
}

WORK=${WORK:-$PWD/gpu-split-work}
MODEL=${MODEL:-$WORK/model.gguf}
MODEL_FLAGS=${MODEL_FLAGS:---layers 28 --embd 3072 --heads 24 --kv-heads 8 --ff 8192 --ctx 4096}
GPU_FREE=${GPU_FREE:-4G}
RESERVE=${RESERVE:-512M}
HOST_MEM=${HOST_MEM:-16G}
CTX=${CTX:-4096}
PORT=${PORT:-50052}
THREADS=${THREADS:-$(nproc)}
REPS=${REPS:-2}
PP=${PP:-512}
TG=${TG:-64}
SWEEP=${SWEEP:-all}
ROWS=${ROWS:-plan local sweep cpu}
ROUNDS=${ROUNDS:-1}
ROW_TIMEOUT=${ROW_TIMEOUT:-600}
EP=127.0.0.1:$PORT

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'gpu-split: %s\n' "$*" >&2; exit 1; }

print_table() {
	python3 "$here/table.py" "$WORK"
}

if [ "${TABLE_ONLY:-0}" = 1 ]; then
	print_table
	exit
fi

LLAMA_BENCH=${LLAMA_BENCH:?set LLAMA_BENCH to the llama-bench of llama.cpp}
RPC_SERVER=${RPC_SERVER:?set RPC_SERVER to the rpc-server of llama.cpp (ggml-rpc-server)}
PEGPU=${PEGPU:-$(find_tool pegpu)}
MKGGUF=${MKGGUF:-$(find_tool pegpu-mkgguf)}
[ -x "$LLAMA_BENCH" ] || die "LLAMA_BENCH=$LLAMA_BENCH is not executable"
[ -x "$RPC_SERVER" ] || die "RPC_SERVER=$RPC_SERVER is not executable"
command -v python3 >/dev/null || die "python3 is needed for the JSON and the table"
mkdir -p "$WORK/json" "$WORK/log"

if [ "${RESUME:-0}" != 1 ]; then
	rm -f "$WORK"/json/*.json "$WORK"/log/*.log "$WORK/rows.tsv" "$WORK/meta.tsv"
fi

# ---- the model --------------------------------------------------------------
if [ ! -s "$MODEL" ]; then
	[ -x "$MKGGUF" ] || die "pegpu-mkgguf not found: set MKGGUF"
	log "generating $MODEL ($MODEL_FLAGS)"
	# shellcheck disable=SC2086
	"$MKGGUF" -q -o "$MODEL" $MODEL_FLAGS
fi

# ---- the plan ---------------------------------------------------------------
# plan.json: the planner's split under the budget; all.json: the same model
# with unlimited eGPU memory, which gives the eGPU bytes of every -ngl (dense
# layers are all the same size) to mark the sweep's over-budget rows.
if [ -n "${PLAN_JSON:-}" ]; then
	cp "$PLAN_JSON" "$WORK/plan.json"
	cp "${PLAN_ALL_JSON:?PLAN_JSON needs PLAN_ALL_JSON too}" "$WORK/all.json"
	log "plan taken from $PLAN_JSON (computed elsewhere)"
else
	[ -x "$PEGPU" ] || die "pegpu not found: set PEGPU, or PLAN_JSON and PLAN_ALL_JSON"
	# which -ngl rule: by default the planner asks the llama-bench given
	# (--help: --fit or not); LLAMA=current|legacy says it instead
	if [ "${LLAMA:-auto}" = auto ]; then rule=(--llama-server "$LLAMA_BENCH")
	else rule=(--llama "$LLAMA"); fi
	plan=("$PEGPU" plan "$MODEL" --rpc "$EP=$GPU_FREE" --reserve "$RESERVE"
	      --host-mem "$HOST_MEM" --ctx "$CTX" "${rule[@]}")
	log "${plan[*]}"
	"${plan[@]}" | tee "$WORK/plan.txt" >&2
	"${plan[@]}" --json >"$WORK/plan.json"
	"$PEGPU" plan "$MODEL" --rpc "$EP=1T" --reserve "$RESERVE" --host-mem "$HOST_MEM" \
		--ctx "$CTX" --json >"$WORK/all.json"
fi

# The planner prints llama-server arguments; llama-bench spells some of them
# differently and lacks others.  Translate (bench-args.txt records it).
bench_help=$("$LLAMA_BENCH" --help 2>&1 || true)
has_opt() { grep -q -- "$1" <<<"$bench_help"; }
mapfile -t server_args < <(python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["args"]))' "$WORK/plan.json")
plan_args=()
notes=()
i=0
while [ $i -lt ${#server_args[@]} ]; do
	a=${server_args[$i]}
	v=${server_args[$((i + 1))]:-}
	case $a in
	--rpc) plan_args+=(-rpc "$v") ;;
	-ngl) plan_args+=(-ngl "$v") ;;
	-ts) plan_args+=(-ts "${v//,//}") ;;			# 3,17 -> 3/17
	-ot) plan_args+=(-ot "${v//,/;}") ;;			# a=X,b=Y -> a=X;b=Y
	--device)
		if has_opt '--device'; then
			plan_args+=(-dev "${v//,//}")
		else
			# only the listed RPC devices exist on the host side
			# (CUDA hidden), in --rpc order: the same device list
			notes+=("--device $v dropped: this llama-bench has no --device; with CUDA hidden its device list is the --rpc devices in order, the same")
		fi ;;
	-c) notes+=("-c $v dropped: llama-bench sizes the context to each test (pp+tg)") ;;
	--fit)
		if has_opt '--fit'; then
			plan_args+=(--fit "$v")
		else
			notes+=("--fit $v dropped: this llama-bench does no automatic fitting")
		fi ;;
	*) die "planner argument $a: no llama-bench translation known" ;;
	esac
	i=$((i + 2))
done
{
	echo "llama-server: ${server_args[*]}"
	echo "llama-bench:  ${plan_args[*]}"
	for n in "${notes[@]}"; do echo "note: $n"; done
} >"$WORK/bench-args.txt"
cat "$WORK/bench-args.txt" >&2
n_layer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"]["n_layer"])' "$WORK/plan.json")
plan_ngl=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ngl"])' "$WORK/plan.json")

# ---- the rpc-server ("the eGPU") -------------------------------------------
rpc_pid=
start_rpc() {
	log "starting $RPC_SERVER on $EP"
	"$RPC_SERVER" -H 127.0.0.1 -p "$PORT" >>"$WORK/log/rpc-server.log" 2>&1 &
	rpc_pid=$!
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
			return 0
		fi
		kill -0 "$rpc_pid" 2>/dev/null || die "rpc-server exited; see $WORK/log/rpc-server.log"
		sleep 0.2
	done
	die "rpc-server does not listen on $EP"
}
stop_rpc() {
	if [ -n "$rpc_pid" ]; then
		kill "$rpc_pid" 2>/dev/null || true
		wait "$rpc_pid" 2>/dev/null || true
		rpc_pid=
	fi
}
trap stop_rpc EXIT
ensure_rpc() {
	if [ -z "$rpc_pid" ] || ! kill -0 "$rpc_pid" 2>/dev/null; then
		[ -z "$rpc_pid" ] || log "rpc-server died; restarting"
		rpc_pid=
		start_rpc
	fi
}

{
	printf 'date\t%s\n' "$(date -u +%Y-%m-%dT%H:%MZ)"
	printf 'gpu\t%s\n' "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)"
	printf 'cpu\t%s\n' "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) threads"
	printf 'threads\t%s\n' "$THREADS"
	printf 'model_flags\t%s\n' "$MODEL_FLAGS"
	printf 'gpu_free\t%s\n' "$GPU_FREE"
	printf 'reserve\t%s\n' "$RESERVE"
	printf 'ctx\t%s\n' "$CTX"
	printf 'reps\t%s\n' "$REPS"
	printf 'rounds\t%s\n' "$ROUNDS"
	printf 'pp\t%s\n' "$PP"
	printf 'tg\t%s\n' "$TG"
} >"$WORK/meta.tsv"

# ---- the runs ---------------------------------------------------------------
# rows.tsv: id, label, kind (plan|sweep|cpu|local), ngl, llama-bench args;
# json/ID.rROUND.json: llama-bench's JSON, log/ID.rROUND.log: its stderr
common=(-m "$MODEL" -p "$PP" -n "$TG" -r "$REPS" -t "$THREADS" -o json)
: >"$WORK/rows.tsv.new"
round=1
run_row() {	# id label kind ngl where(host|local) args...
	local id=$1 label=$2 kind=$3 ngl=$4 where=$5
	shift 5
	local f=$WORK/json/$id.r$round.json lg=$WORK/log/$id.r$round.log
	[ "$round" != 1 ] ||
		printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$label" "$kind" "$ngl" "$*" >>"$WORK/rows.tsv.new"
	if [ "${RESUME:-0}" = 1 ] && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' \
		"$f" 2>/dev/null; then
		log "$id round $round: kept from an earlier run"
		return 0
	fi
	local envs=() limit=$ROW_TIMEOUT now
	if [ -n "${STOP_AT:-}" ]; then
		now=$(date +%s)
		if [ "$now" -ge "$STOP_AT" ]; then
			log "$id round $round: skipped (STOP_AT reached)"
			return 0
		fi
		[ $((STOP_AT - now)) -lt "$limit" ] && limit=$((STOP_AT - now))
	fi
	if [ "$where" = host ]; then
		envs=(CUDA_VISIBLE_DEVICES=)	# the "Mac": no GPU of its own
	fi
	case " $* " in *" -rpc "*) ensure_rpc ;; esac
	log "$id round $round: ${envs[*]} llama-bench $*"
	if ! env "${envs[@]}" timeout "$limit" "$LLAMA_BENCH" "${common[@]}" "$@" \
		>"$f.tmp" 2>"$lg"; then
		log "$id round $round: FAILED (see $lg)"
		tail -n 5 "$lg" >&2 || true
		rm -f "$f.tmp"
		return 0
	fi
	mv "$f.tmp" "$f"
}

if [ "$SWEEP" = all ]; then
	SWEEP=$(seq "$((n_layer + 1))" -1 0)
fi
verbose=()
has_opt '--verbose' && verbose=(-v)	# logs llama.cpp's buffer sizes

# by default the most telling rows first, the slow (CPU-heavy) ones last
while [ "$round" -le "$ROUNDS" ]; do
	for kind in $ROWS; do
		case $kind in
		plan) run_row plan "planner: ${plan_args[*]}" plan "$plan_ngl" host \
			"${plan_args[@]}" "${verbose[@]}" ;;
		local) run_row local "same GPU locally, no RPC: -ngl 99" local 99 local -ngl 99 ;;
		sweep)
			for n in $SWEEP; do
				run_row "ngl$n" "-rpc $EP -ngl $n" sweep "$n" host -rpc "$EP" -ngl "$n"
			done ;;
		cpu) run_row cpu "all on CPU, no RPC: -ngl 0" cpu 0 host -ngl 0 ;;
		*) die "ROWS: unknown row kind $kind" ;;
		esac
	done
	if [ "$round" = 1 ]; then
		mv "$WORK/rows.tsv.new" "$WORK/rows.tsv"
	fi
	round=$((round + 1))
done
stop_rpc

print_table
