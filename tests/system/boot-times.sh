#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Compare `pegpu start` (to SSH-ready) with the raw QEMU boot of the same
# instance (the same command line, from qemu.log, polled with plain ssh),
# and time `pegpu stop`.  A measurement for docs/benchmarks.md, never a test.
# usage: tests/system/boot-times.sh PEGPU NAME [ROUNDS]   (NAME provisioned and stopped)
set -euo pipefail
pegpu=$1 name=$2 rounds=${3:-2}
dir=${PEGPU_HOME:-$HOME/.pegpu}/$name
now() { date +%s.%N; }
ssh_ready() {	# poll until sshd answers on the forwarded port
	local port=$1
	until ssh -i "$dir/id_ed25519" -o IdentitiesOnly=yes -o UserKnownHostsFile="$dir/known_hosts" \
		-o StrictHostKeyChecking=yes -o HostKeyAlias="pegpu-$name" -o BatchMode=yes \
		-o ConnectTimeout=5 -o LogLevel=ERROR -p "$port" "pegpu@127.0.0.1" true 2>/dev/null; do
		sleep 0.5
	done
}
printf '%-28s %8s\n' what seconds
for r in $(seq "$rounds"); do
	t=$(now); "$pegpu" start "$name" >/dev/null 2>&1
	printf '%-28s %8.1f\n' "pegpu start -> SSH ($r)" "$(echo "$(now) - $t" | bc)"
	t=$(now); "$pegpu" stop "$name" >/dev/null 2>&1
	printf '%-28s %8.1f\n' "pegpu stop ($r)" "$(echo "$(now) - $t" | bc)"
	# the same QEMU command line, started by hand
	read -r -a argv < "$dir/qemu.log"
	port=$(sed -n 's/.*hostfwd=tcp:127.0.0.1:\([0-9]*\)-:22.*/\1/p' "$dir/qemu.log" | head -1)
	t=$(now); "${argv[@]}" >/dev/null 2>&1; ssh_ready "$port"
	printf '%-28s %8.1f\n' "raw QEMU -> SSH ($r)" "$(echo "$(now) - $t" | bc)"
	pid=$(cat "$dir/qemu.pid")
	ssh -i "$dir/id_ed25519" -o UserKnownHostsFile="$dir/known_hosts" -o HostKeyAlias="pegpu-$name" \
		-o BatchMode=yes -p "$port" pegpu@127.0.0.1 'sudo systemctl poweroff --no-block' 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do sleep 0.5; done
done
