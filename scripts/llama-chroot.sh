#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Real llama.cpp for tests: Debian sid's llama.cpp packages need sid's libc,
# so they live in a minimal sid chroot under "$PEGPU_CACHE/llama-sid".
#
#   llama-chroot.sh [env] [--bind DIR]...
#       build the chroot when missing or stale, then print shell assignments
#       (eval them) naming wrappers that run each binary inside it:
#         LLAMA_ROOT LLAMA_VERSION LLAMA_SERVER LLAMA_CLI LLAMA_BENCH
#         LLAMA_RPC_SERVER
#       Every DIR (the model directory, a log directory) is bound into the
#       chroot at the same path, so paths on the command line work unchanged.
#       Callers word-split the wrappers ($LLAMA_SERVER -m model.gguf ...),
#       so the paths involved must not contain blanks.
#   llama-chroot.sh run [--bind DIR]... PROGRAM [ARGS...]
#       run PROGRAM inside the chroot in a private mount namespace with
#       /proc, /dev and the DIRs bound in.  The mounts vanish with the
#       process, and PROGRAM keeps this process's pid (exec all the way
#       down), so callers can stop it with kill "$pid".
#
# The cache key is the package list: change it and the chroot is rebuilt.
# The chroot is built beside the old one and renamed into place, so an
# interrupted build never leaves a half-made chroot that looks finished.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"

# llama-server/llama-cli/llama-bench, ggml-rpc-server, and the ggml RPC
# backend that llama-server loads for --rpc.
pkgs=(llama.cpp-tools llama.cpp-tools-extra libggml0-backend-rpc)
root=$PEGPU_CACHE/llama-sid
key=$(pegpu_hash "sid" "${pkgs[*]}" "v1")
rpc_server=/usr/libexec/$(uname -m)-linux-gnu/llama/bin/ggml-rpc-server

build_chroot() {
	local tmp=$root.tmp.$$ mirror
	mirror=$(pegpu_mirror)
	command -v debootstrap >/dev/null ||
		pegpu_die "debootstrap is missing: run scripts/deps.sh (or apt-get install debootstrap)"
	pegpu_log "building the llama.cpp sid chroot in $root (about a minute, ~500 MB)"
	rm -rf --one-file-system "$tmp"
	trap 'umount "$tmp/proc" 2>/dev/null || true; rm -rf --one-file-system "$tmp"' EXIT
	pegpu_as_root debootstrap --variant=minbase sid "$tmp" "$mirror" >&2 ||
		pegpu_die "debootstrap of sid from $mirror failed (see the log above)"
	# Sid's Release file reads as expired on this mirror.
	printf 'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\n' \
		> "$tmp/etc/apt/apt.conf.d/99pegpu"
	mount -t proc proc "$tmp/proc"
	chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get -q update >&2 ||
		pegpu_die "apt-get update inside the sid chroot failed"
	chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get -q install -y "${pkgs[@]}" >&2 ||
		pegpu_die "installing ${pkgs[*]} inside the sid chroot failed"
	chroot "$tmp" apt-get clean
	umount "$tmp/proc"
	[ -x "$tmp$rpc_server" ] || pegpu_die "ggml-rpc-server is not at $rpc_server in the chroot"
	chroot "$tmp" dpkg-query -W -f='${Version}' llama.cpp-tools > "$tmp/.pegpu-llama-version"
	printf '%s\n' "$key" > "$tmp/.pegpu-key"
	rm -rf --one-file-system "$root"
	mv "$tmp" "$root"
	trap - EXIT
	pegpu_log "llama.cpp $(cat "$root/.pegpu-llama-version") ready in $root"
}

ensure_chroot() {
	[ "$(id -u)" = 0 ] || pegpu_die "the llama.cpp chroot needs root (debootstrap, chroot, mounts)"
	if [ "$(cat "$root/.pegpu-key" 2>/dev/null)" != "$key" ]; then
		build_chroot
	fi
}

# run [--bind DIR]... PROGRAM ARGS: see the header.
run_in_chroot() {
	local binds=() d
	while [ $# -gt 0 ]; do
		case $1 in
		--bind) [ $# -ge 2 ] || pegpu_die "--bind needs a directory"; binds+=("$2"); shift 2 ;;
		--) shift; break ;;
		*) break ;;
		esac
	done
	[ $# -gt 0 ] || pegpu_die "usage: llama-chroot.sh run [--bind DIR]... PROGRAM [ARGS...]"
	[ -f "$root/.pegpu-key" ] || pegpu_die "no llama.cpp chroot in $root: run scripts/llama-chroot.sh first"
	for d in "${binds[@]}"; do
		[ -d "$d" ] || pegpu_die "--bind $d: not a directory"
	done
	# The inner shell does the mounts in the new namespace and then execs
	# chroot, which execs the program: no process is left in between.
	exec unshare --mount --propagation private -- /bin/sh -euc '
		root=$1; shift; n=$1; shift
		mount --rbind /dev "$root/dev"
		mount --bind /proc "$root/proc"
		i=0
		while [ "$i" -lt "$n" ]; do
			d=$(realpath "$1"); shift
			mkdir -p "$root$d"
			mount --bind "$d" "$root$d"
			i=$((i + 1))
		done
		exec chroot "$root" "$@"' sh "$root" "${#binds[@]}" "${binds[@]}" "$@"
}

print_env() {
	local bind_args="" d
	while [ $# -gt 0 ]; do
		case $1 in
		--bind) [ $# -ge 2 ] || pegpu_die "--bind needs a directory"
			d=$(realpath "$2") || pegpu_die "--bind $2: no such directory"
			case $d in *[[:space:]]*) pegpu_die "--bind $d: paths with blanks cannot go into the wrappers" ;; esac
			bind_args+=" --bind $d"; shift 2 ;;
		*) pegpu_die "unknown argument '$1' (see the header of $0)" ;;
		esac
	done
	ensure_chroot
	# Callers word-split these ($LLAMA_SERVER -m ...): no blanks allowed.
	case $here in *[[:space:]]*) pegpu_die "$here: paths with blanks cannot go into the wrappers" ;; esac
	local w="$here/llama-chroot.sh run$bind_args"
	printf 'LLAMA_ROOT=%q\n' "$root"
	printf 'LLAMA_VERSION=%q\n' "$(cat "$root/.pegpu-llama-version")"
	printf 'LLAMA_SERVER=%q\n' "$w llama-server"
	printf 'LLAMA_CLI=%q\n' "$w llama-cli"
	printf 'LLAMA_BENCH=%q\n' "$w llama-bench"
	printf 'LLAMA_RPC_SERVER=%q\n' "$w $rpc_server"
}

case ${1:-env} in
run) shift; run_in_chroot "$@" ;;
env) [ $# -gt 0 ] && shift; print_env "$@" ;;
--bind) print_env "$@" ;;
-h|--help) sed -n '3,21p' "$0" | sed 's/^# \{0,1\}//' ;;
*) pegpu_die "unknown command '$1': use env, run or --help" ;;
esac
