#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# System tier: a full Debian guest driven by the `pegpu` runtime under TCG.
#   image build (scripts/image-build.sh, cached by its inputs) -> served on
#   127.0.0.1 by http_server.py (the first transfer is cut to force a resume)
#   -> pegpu create through the real download + SHA512SUMS code -> cloud-init
#   provisioning -> DKMS guest driver (lsmod) -> ssh, cp both ways, a live port
#   forward to a guest HTTP server -> graceful stop (qemu-img check) -> start
#   (port persists) -> SIGKILL during disk writes (qemu-img check, recovery)
#   -> refusals (second start, GPU before driver, port taken, missing QEMU)
#   -> nvidia install dry run -> destroy.
#
# usage: tests/system/run.sh          prints PASS/FAIL lines, ends "N passed, N failed"
# env:   PEGPU_SYSTEM_FULL=1   also the slow checks: a second instance provisioned
#                              and running beside the first, and the boot-time
#                              comparison (tests/system/boot-times.sh)
#        PEGPU_SYSTEM_KEEP=1   keep the work directory and the VM for inspection
#        PEGPU_QEMU_X86_64     QEMU to use (default: PEGPU Machine from machine/qemu/build.sh)
# Needs root for the image build (debootstrap); everything talks to loopback only.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../scripts/lib/common.sh
. "$top/scripts/lib/common.sh"
cd "$top"

passed=0 failed=0
pass() { echo "PASS $1${2:+ ($2)}"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit
}
now() { date +%s.%N; }
# answers URL WORD: the guest's HTTP server answers with WORD within 60 s
# (a python3 -m http.server takes seconds to come up under TCG)
answers() {
	local i
	for i in $(seq 60); do
		curl -fsS --max-time 5 "$1" 2>/dev/null | grep -q "$2" && return 0
		sleep 1
	done
	return 1
}
secs() { printf '%.1f' "$(echo "$(now) - $1" | bc)"; }

work=${PEGPU_SYSTEM_WORK:-$top/build/system}
rm -rf "$work/home" "$work/cache" "$work/serve" "$work/port" "$work/taken"
mkdir -p "$work/home" "$work/cache" "$work/serve" "$work/logs"
export PEGPU_HOME=$work/home
# pegpu's image cache is this run's own (PEGPU_CACHE=$work/cache on each
# pegpu call), so the download path really runs; QEMU and the built image
# stay in the shared cache
log=$work/logs
name=sys1
server_pid=""
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
	if [ -z "${PEGPU_SYSTEM_KEEP:-}" ] && [ -x "${pegpu:-}" ]; then
		for n in $("$pegpu" list --json 2>/dev/null | python3 -c 'import json,sys; print(" ".join(i["name"] for i in json.load(sys.stdin)))' 2>/dev/null); do
			"$pegpu" destroy --force "$n" >/dev/null 2>&1
		done
	fi
}
trap cleanup EXIT

# --- the pegpu binary -------------------------------------------------------
bdir=$top/build/meson
if [ ! -f "$bdir/build.ninja" ]; then
	meson setup "$bdir" > "$log/meson-setup.log" 2>&1 || { fail build "meson setup failed ($log/meson-setup.log)"; finish; }
fi
if meson compile -C "$bdir" runtime/pegpu runtime/pegpu-mkgguf > "$log/build.log" 2>&1; then
	pegpu=$bdir/runtime/pegpu
	pass build/pegpu
else
	tail -20 "$log/build.log"; fail build/pegpu "compile failed ($log/build.log)"; finish
fi

# --- QEMU: PEGPU Machine, unless one is given --------------------------------
if [ -z "${PEGPU_QEMU_X86_64:-}" ]; then
	if q=$("$top/machine/qemu/build.sh" 2> "$log/qemu-build.log"); then
		eval "$q"
		export PEGPU_QEMU_X86_64
	else
		fail qemu "machine/qemu/build.sh failed ($log/qemu-build.log)"; finish
	fi
fi
[ -x "$PEGPU_QEMU_X86_64" ] && pass qemu "$PEGPU_QEMU_X86_64" || { fail qemu "$PEGPU_QEMU_X86_64 is not executable"; finish; }

# --- the guest image: built from Debian packages, cached by its inputs --------
suite=${PEGPU_SYSTEM_SUITE:-trixie}
img=pegpu-$suite-amd64.qcow2
# shellcheck source=../../scripts/lib/guest-image.sh
. "$top/scripts/lib/guest-image.sh"
t=$(now)
if pegpu_guest_image "$suite" "$log/image-build.log" > "$work/imgdir"; then
	imgdir=$(cat "$work/imgdir")
	if [ "$pegpu_guest_image_built" = 0 ]; then
		pass image/build "cached: $imgdir"
	else
		pass image/build "$(secs "$t") s"
	fi
else
	tail -20 "$log/image-build.log"; fail image/build "see $log/image-build.log"; finish
fi
cp "$imgdir/$img" "$imgdir/SHA512SUMS" "$work/serve/"

# --- the guest driver package --------------------------------------------------
if deb=$("$top/guest/dkms/mkdeb.sh" "$work/deb" 2> "$log/mkdeb.log"); then
	pass dkms/package "$(basename "$deb")"
else
	fail dkms/package "$(cat "$log/mkdeb.log")"; finish
fi

# --- serve it on loopback; the first transfer breaks off after 200 MB ---------
python3 "$top/tests/system/http_server.py" "$work/serve" "$work/port" --cut-once "$img:200000000" \
	> "$log/http.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
url=http://127.0.0.1:$(cat "$work/port")/$img

# a corrupt image never reaches the cache
head -c 1048576 /dev/urandom > "$work/serve/bad.qcow2"
(cd "$work/serve" && sha512sum bad.qcow2 > bad.sums && printf x >> bad.qcow2)
python3 - "$work/serve" <<'EOF'
import sys, os
d = sys.argv[1]
# publish bad.qcow2's old checksum in the SHA512SUMS the server hands out
with open(os.path.join(d, 'bad.sums')) as f:
    line = f.read()
with open(os.path.join(d, 'SHA512SUMS'), 'a') as f:
    f.write(line)
EOF
if out=$(PEGPU_CACHE=$work/cache "$pegpu" image pull "http://127.0.0.1:$(cat "$work/port")/bad.qcow2" 2>&1); then
	fail image/corrupt-refused "a corrupt download was accepted"
elif grep -q "corrupt or truncated" <<< "$out" && [ -z "$(ls "$work/cache/images" 2>/dev/null | grep -v '\.part$')" ]; then
	pass image/corrupt-refused
else
	fail image/corrupt-refused "unexpected: $out"
fi

# --- create: download (resumed), verify, provision --------------------------------
port_http=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
t=$(now)
PEGPU_CACHE=$work/cache "$pegpu" create "$name" --image "$url" --driver-deb "$deb" --memory 2G --cpus 2 \
	--timeout 2400 > "$log/create.log" 2>&1
rc=$?
t_create=$(secs "$t")
grep -q "resuming $img" "$log/create.log" && pass image/download-resume || fail image/download-resume "no resume in $log/create.log"
grep -q "verifying $img" "$log/create.log" && pass image/verified || fail image/verified "not verified"
if [ $rc = 0 ]; then
	pass create/provisioned "$t_create s"
else
	tail -30 "$log/create.log"; fail create/provisioned "exit $rc ($log/create.log)"; finish
fi
grep -E '^pegpu: \[' "$log/create.log" | sed 's/^/  /'

# --- the guest: driver, SSH with the recorded host key, files, ports ------------
if "$pegpu" ssh "$name" -- 'grep -q "^pegpu_dma " /proc/modules && /usr/sbin/dkms status pegpu-dma | grep -q installed' > "$log/lsmod.log" 2>&1; then
	pass dkms/loaded "pegpu_dma in lsmod, dkms status installed"
else
	fail dkms/loaded "$(cat "$log/lsmod.log")"
fi
# loaded at boot by modules-load.d, before any GPU driver
"$pegpu" ssh "$name" -- 'cat /etc/modules-load.d/pegpu-dma.conf; grep softdep /etc/modprobe.d/pegpu-dma.conf' > "$log/modload.log" 2>&1 &&
	grep -q '^pegpu_dma$' "$log/modload.log" && grep -q 'softdep nvidia pre: pegpu_dma' "$log/modload.log" &&
	pass dkms/boot-order || fail dkms/boot-order "$(cat "$log/modload.log")"
hk=$("$pegpu" ssh "$name" -- cat /etc/ssh/ssh_host_ed25519_key.pub 2>/dev/null | cut -d' ' -f2)
if [ -n "$hk" ] && grep -q "^pegpu-$name ssh-ed25519 $hk" "$PEGPU_HOME/$name/known_hosts"; then
	pass ssh/host-key "the guest's key is the one recorded at create"
else
	fail ssh/host-key "guest key '$hk' not in known_hosts"
fi
# checking is never off: a wrong recorded key must stop the connection
cp "$PEGPU_HOME/$name/known_hosts" "$work/kh.good"
sed -i 's/ssh-ed25519 [A-Za-z0-9+\/=]*/ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG5vdCB0aGUga2V5IHlvdSBhcmUgbG9va2luZyBmb3I=/' "$PEGPU_HOME/$name/known_hosts"
if "$pegpu" ssh "$name" -- true > "$log/badkey.log" 2>&1; then
	fail ssh/host-key-enforced "ssh accepted a host key that does not match"
else
	pass ssh/host-key-enforced
fi
cp "$work/kh.good" "$PEGPU_HOME/$name/known_hosts"

head -c 3000000 /dev/urandom > "$work/blob"
if "$pegpu" cp "$work/blob" "$name:blob" && "$pegpu" cp "$name:blob" "$work/blob.back" && cmp -s "$work/blob" "$work/blob.back"; then
	pass cp/both-ways "3 MB there and back"
else
	fail cp/both-ways "the file did not come back intact"
fi

"$pegpu" ssh "$name" -- 'mkdir -p www && echo pegpu-port-ok > www/index.html && cd www && { nohup python3 -m http.server 8080 < /dev/null > /dev/null 2>&1 & }'
if "$pegpu" port add "$name" "$port_http:8080" > "$log/port.log" 2>&1 &&
   answers "http://127.0.0.1:$port_http/" pegpu-port-ok; then
	pass port/live "127.0.0.1:$port_http -> guest 8080"
else
	fail port/live "$(cat "$log/port.log")"
fi
"$pegpu" port list "$name" | grep -q "127.0.0.1:$port_http -> 8080" && grep -q "host: $port_http" "$PEGPU_HOME/$name/pegpu.yaml" &&
	pass port/persisted || fail port/persisted "not in pegpu.yaml"

# the serial console: a login prompt after a newline; Ctrl-] detaches
{ sleep 2; printf '\n'; sleep 5; printf '\035'; } | timeout 30 "$pegpu" console "$name" > "$log/console.out" 2>&1
if grep -q "login:" "$log/console.out" && grep -q "detached" "$log/console.out" &&
   "$pegpu" status "$name" | grep -q "^state: *running"; then
	pass console "login prompt on the serial console; detached, VM still running"
else
	fail console "$(tail -c 300 "$log/console.out")"
fi

# --- an RPC server in the VM, supervised by pegpu serve through pegpu ssh -t ---
# The guest has no llama.cpp (trixie does not package it): tests/system/
# fake_rpc.py answers pegpu's queries as ggml-rpc-server 8.0.0 would.  It
# binds the guest's private address only; the host reaches it through a
# pegpu port forward, as llama-server's --rpc would.
rpc_fwd=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
serve_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rpc_state() {
	curl -sf -m 5 "http://127.0.0.1:$serve_port/running" |
		python3 -c 'import json,sys; r=json.load(sys.stdin)["rpcServers"][0]; print(r["state"], r["restarts"])'
}
rpc_free() {	# the free bytes pegpu plan reads from the server in the VM
	"$pegpu" plan "$work/tiny.gguf" --host-mem 1G --rpc "127.0.0.1:$rpc_fwd" --timeout 10 --json 2>> "$log/rpc-plan.err" |
		python3 -c 'import json,sys; d=json.load(sys.stdin)["devices"]; print(d[-1]["budget_bytes"] + 512 * 2**20)'
}
rpc_up() {	# rpc_up RESTARTS: running with that many restarts and answering
	local i
	for i in $(seq 60); do
		[ "$(rpc_state 2>/dev/null)" = "running $1" ] && [ "$(rpc_free 2>/dev/null)" = 6442450944 ] && return 0
		sleep 1
	done
	return 1
}
cat > "$work/serve.yaml" <<EOF
logToStdout: both
rpcServers:
  vm:
    endpoint: 127.0.0.1:$rpc_fwd
    cmd: $pegpu ssh $name -t -- exec python3 -u fake_rpc.py 10.0.2.15 50052 6442450944 8589934592
models:
  unused:
    cmd: "true --port \${PORT}"
EOF
if "$bdir/runtime/pegpu-mkgguf" -q -o "$work/tiny.gguf" --layers 4 --embd 64 &&
   "$pegpu" cp tests/system/fake_rpc.py "$name:fake_rpc.py" &&
   "$pegpu" port add "$name" "$rpc_fwd:50052" > "$log/rpc-port.log" 2>&1; then
	"$pegpu" serve --config "$work/serve.yaml" --listen "127.0.0.1:$serve_port" \
		--state-dir "$work/serve-state" > "$log/serve.log" 2>&1 &
	serve_pid=$!
	if rpc_up 0 && "$pegpu" ssh "$name" -- 'ss -ltn | grep -q "10.0.2.15:50052 "'; then
		pass rpc-vm/supervised "pegpu serve runs it over pegpu ssh -t; bound to 10.0.2.15, queried through the forward"
	else
		fail rpc-vm/supervised "$(rpc_state 2>&1); $(tail -3 "$log/serve.log" | tr '\n' ' ')"
	fi
	"$pegpu" ssh "$name" -- "pkill -f '[f]ake_rpc.py'"
	if rpc_up 1; then
		pass rpc-vm/restarted "killed in the guest, restarted by pegpu serve"
	else
		fail rpc-vm/restarted "$(rpc_state 2>&1); $(grep -i rpc "$log/serve.log" | tail -3 | tr '\n' ' ')"
	fi
	kill "$serve_pid"; wait "$serve_pid"
	sleep 3
	if ! "$pegpu" ssh "$name" -- "pgrep -f '[f]ake_rpc.py'" > /dev/null; then
		pass rpc-vm/stopped "gone from the guest when pegpu serve stops"
	else
		fail rpc-vm/stopped "still running in the guest after pegpu serve stopped"
	fi
	"$pegpu" port rm "$name" "$rpc_fwd" > /dev/null 2>&1
else
	fail rpc-vm/supervised "setup: $(cat "$log/rpc-port.log")"
fi

# --- refusals ---------------------------------------------------------------
out=$("$pegpu" start "$name" 2>&1) && fail start/refuse-running "a second start succeeded" ||
	{ grep -q "already running" <<< "$out" && pass start/refuse-running || fail start/refuse-running "$out"; }
PEGPU_CACHE=$work/cache "$pegpu" create gpu1 --image "$url" --driver-deb "$deb" --gpu 0000:99:00.0 --no-start > "$log/gpu1.log" 2>&1
# as if its first boot had finished without the guest driver (an unprovisioned
# instance boots without the GPU anyway: that is the first run)
printf '{"state": "stopped", "provisioned": true, "driver_installed": false}\n' > "$PEGPU_HOME/gpu1/state.json"
out=$("$pegpu" start gpu1 2>&1) && fail start/refuse-gpu-before-driver "started" ||
	{ grep -q "only once the guest driver is installed" <<< "$out" && pass start/refuse-gpu-before-driver || fail start/refuse-gpu-before-driver "$out"; }
python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); open("'"$work"'/taken","w").write(str(s.getsockname()[1])); time.sleep(60)' &
taker=$!
for _ in $(seq 50); do [ -s "$work/taken" ] && break; sleep 0.1; done
PEGPU_CACHE=$work/cache "$pegpu" create nq1 --image "$url" --no-guest-driver --port "$(cat "$work/taken"):80" --no-start > "$log/nq1.log" 2>&1
out=$("$pegpu" start nq1 --no-wait 2>&1) && fail start/refuse-port-taken "started" ||
	{ grep -q "is taken by another program" <<< "$out" && pass start/refuse-port-taken || fail start/refuse-port-taken "$out"; }
kill $taker 2>/dev/null
echo "firmware: /nonexistent/OVMF_CODE.fd" >> "$PEGPU_HOME/nq1/pegpu.yaml"
out=$("$pegpu" start nq1 --no-wait 2>&1) && fail start/refuse-no-firmware "started" ||
	{ grep -q "no UEFI firmware" <<< "$out" && pass start/refuse-no-firmware || fail start/refuse-no-firmware "$out"; }
echo "qemu: /nonexistent/qemu-system-x86_64" >> "$PEGPU_HOME/nq1/pegpu.yaml"
out=$("$pegpu" start nq1 --no-wait 2>&1) && fail start/refuse-no-qemu "started" ||
	{ grep -q "QEMU for x86_64 was not found" <<< "$out" && pass start/refuse-no-qemu || fail start/refuse-no-qemu "$out"; }
"$pegpu" destroy nq1 > /dev/null 2>&1
# with the driver but the NVIDIA stack wanted and missing
printf '{"state": "stopped", "provisioned": true, "driver_installed": true}\n' > "$PEGPU_HOME/gpu1/state.json"
sed -i "s/^nvidia: false/nvidia: true/" "$PEGPU_HOME/gpu1/pegpu.yaml"
out=$("$pegpu" start gpu1 2>&1) && fail start/refuse-gpu-before-nvidia "started" ||
	{ grep -q "NVIDIA driver is wanted but not installed" <<< "$out" && pass start/refuse-gpu-before-nvidia || fail start/refuse-gpu-before-nvidia "$out"; }
"$pegpu" destroy gpu1 > /dev/null 2>&1

out=$("$pegpu" nvidia install "$name" --dry-run 2>&1)
if grep -q "repository: https://developer.download.nvidia.com/compute/cuda/repos/debian13/x86_64/" <<< "$out" &&
   grep -q "apt-get -q install -y nvidia-open cuda-toolkit" <<< "$out" &&
   grep -q "dpkg -i /tmp/cuda-keyring.deb" <<< "$out" && ! "$pegpu" status "$name" --json | grep -q '"nvidia_installed": true'; then
	pass nvidia/dry-run "repository, keyring, nvidia-open + cuda-toolkit; nothing installed"
else
	fail nvidia/dry-run "$out"
fi

# --- graceful stop, clean disk, warm start, port back ---------------------------
t=$(now)
if "$pegpu" stop "$name" > "$log/stop.log" 2>&1 && grep -q "stopped (poweroff)" "$log/stop.log"; then
	pass stop/graceful "$(secs "$t") s, guest poweroff"
else
	fail stop/graceful "$(cat "$log/stop.log")"
fi
qemu-img check "$PEGPU_HOME/$name/disk.qcow2" > "$log/check1.log" 2>&1 && pass disk/clean-after-stop || fail disk/clean-after-stop "$(cat "$log/check1.log")"
t=$(now)
if "$pegpu" start "$name" > "$log/start.log" 2>&1; then
	pass start/warm "$(secs "$t") s to SSH"
else
	fail start/warm "$(tail -5 "$log/start.log")"
fi
"$pegpu" ssh "$name" -- 'cd www && { nohup python3 -m http.server 8080 < /dev/null > /dev/null 2>&1 & }'
answers "http://127.0.0.1:$port_http/" pegpu-port-ok && pass port/after-restart || fail port/after-restart "no answer on $port_http within 60 s"
"$pegpu" ssh "$name" -- 'grep -q "^pegpu_dma " /proc/modules' && pass dkms/loaded-at-boot || fail dkms/loaded-at-boot "pegpu_dma not loaded after a reboot"

# --- SIGKILL during disk writes ---------------------------------------------------
"$pegpu" ssh "$name" -- 'nohup sh -c "while :; do dd if=/dev/urandom of=junk bs=1M count=64 conv=fsync status=none; done" < /dev/null > /dev/null 2>&1 &'
sleep 5
pid=$(cat "$PEGPU_HOME/$name/qemu.pid")
kill -9 "$pid"; sleep 1
st=$("$pegpu" status "$name" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
[ "$st" = crashed ] && pass crash/detected || fail crash/detected "state is $st"
qemu-img check "$PEGPU_HOME/$name/disk.qcow2" > "$log/check2.log" 2>&1
rc=$?
# 0: clean; 3: only leaked clusters (space, not data; QEMU reclaims them on repair)
if [ $rc = 0 ] || [ $rc = 3 ]; then
	pass crash/disk-consistent "qemu-img check rc $rc"
else
	fail crash/disk-consistent "qemu-img check rc $rc: $(tail -3 "$log/check2.log")"
fi
t=$(now)
if "$pegpu" start "$name" > "$log/start2.log" 2>&1 && grep -q "had crashed" "$log/start2.log" &&
   grep -q "checked after the crash" "$log/start2.log"; then
	pass crash/recovered "$(secs "$t") s to SSH; stale pid and sockets cleaned, leaked clusters reclaimed"
else
	fail crash/recovered "$(tail -5 "$log/start2.log")"
fi
"$pegpu" status "$name" | grep -q "^state: *running" && pass status/running || fail status/running "$("$pegpu" status "$name")"

t=$(now)
"$pegpu" stop "$name" > "$log/stop2.log" 2>&1 && pass stop/again "$(secs "$t") s" || fail stop/again "$(cat "$log/stop2.log")"
qemu-img check "$PEGPU_HOME/$name/disk.qcow2" > "$log/check3.log" 2>&1 && pass disk/clean-at-end || fail disk/clean-at-end "$(cat "$log/check3.log")"

# --- the fuller tier: two instances side by side, boot-time comparison ---------
if [ -n "${PEGPU_SYSTEM_FULL:-}" ]; then
	"$pegpu" start "$name" > "$log/start3.log" 2>&1
	t=$(now)
	if PEGPU_CACHE=$work/cache "$pegpu" create sys2 --image "$url" --no-guest-driver --memory 1G \
		> "$log/create2.log" 2>&1; then
		pass full/second-instance "$(secs "$t") s to provision, while $name runs"
	else
		fail full/second-instance "$(tail -5 "$log/create2.log")"
	fi
	p1=$("$pegpu" status "$name" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ssh_port"])')
	p2=$("$pegpu" status sys2 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ssh_port"])')
	[ "$("$pegpu" ssh sys2 -- hostname)" = sys2 ] && [ "$("$pegpu" ssh "$name" -- hostname)" = "$name" ] && [ "$p1" != "$p2" ] &&
		pass full/side-by-side "ssh ports $p1 and $p2" || fail full/side-by-side "hostnames or ports mixed up"
	"$pegpu" list > "$log/list.log" && [ "$(grep -c ' running ' "$log/list.log")" = 2 ] &&
		pass full/list || fail full/list "$(cat "$log/list.log")"
	"$pegpu" stop sys2 > /dev/null 2>&1; "$pegpu" destroy sys2 > /dev/null 2>&1
	"$pegpu" stop "$name" > /dev/null 2>&1
	"$top/tests/system/boot-times.sh" "$pegpu" "$name" 1 > "$log/boot-times.log" 2>&1 &&
		pass full/boot-times "$(tr '\n' ';' < "$log/boot-times.log")" || fail full/boot-times "$(cat "$log/boot-times.log")"
fi

if [ -z "${PEGPU_SYSTEM_KEEP:-}" ]; then
	"$pegpu" destroy "$name" > /dev/null 2>&1 && [ ! -e "$PEGPU_HOME/$name" ] && pass destroy || fail destroy "$PEGPU_HOME/$name remains"
fi

# --- a first boot that fails: the failing step and the guest's log ------------
# A driver package whose dependency does not exist: apt refuses it at once
# from the image's own package lists, so the step fails without the network.
mkdir -p "$work/baddeb/DEBIAN"
cat > "$work/baddeb/DEBIAN/control" <<EOF
Package: pegpu-dma-dkms
Version: 0.0.1
Architecture: all
Maintainer: pegpu tests <tests@pegpu.invalid>
Depends: pegpu-no-such-package
Description: a guest driver package that cannot be installed (system tier)
EOF
dpkg-deb --build "$work/baddeb" "$work/bad.deb" > /dev/null
t=$(now)
if PEGPU_CACHE=$work/cache "$pegpu" create bad1 --image "$url" --driver-deb "$work/bad.deb" \
	--memory 1G --timeout 900 > "$log/bad1.log" 2>&1; then
	fail create/step-failure "create succeeded with a driver package that cannot be installed"
elif grep -q "provisioning step 'guest-driver' failed" "$log/bad1.log" &&
     grep -q "guest| .*pegpu-no-such-package" "$log/bad1.log"; then
	pass create/step-failure "$(secs "$t") s: the failed step named, the guest's log shown"
else
	fail create/step-failure "$(tail -8 "$log/bad1.log")"
fi
"$pegpu" destroy --force bad1 > /dev/null 2>&1
finish
