# SPDX-License-Identifier: Apache-2.0
# Shared shell helpers for pegpu's scripts: cache location, logging, the
# private apt configuration for suites and architectures the host must not
# be upgraded from.  Source it; it defines functions and variables only.

: "${PEGPU_CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/pegpu}"
: "${PEGPU_KABI:=6.1.0-47}"		# pinned Debian kernel ABI (see docs/building.md)
export PEGPU_CACHE PEGPU_KABI

pegpu_log() { printf '%s\n' "pegpu: $*" >&2; }
pegpu_die() { printf '%s\n' "pegpu: error: $*" >&2; exit 1; }

# Run as root, through sudo when needed, or explain what to do.
pegpu_as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"
	elif command -v sudo >/dev/null 2>&1; then sudo "$@"
	else pegpu_die "'$*' needs root: run it as root or install sudo"; fi
}

# The Debian mirror this machine already uses (never hard-coded).
pegpu_mirror() {
	local m=""
	if [ -r /etc/apt/sources.list.d/debian.sources ]; then
		m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
	fi
	if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
		m=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; exit}}' /etc/apt/sources.list)
	fi
	[ -n "$m" ] || pegpu_die "cannot find the Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
	printf '%s\n' "$m"
}

# A private apt configuration (arm64 bookworm, trixie sources and arch:all
# packages) that only ever downloads: the host's own apt state is untouched.
# Prints the path of its apt.conf; updates its lists at most once a day.
pegpu_apt_private() {
	local d=$PEGPU_CACHE/apt mirror key
	mirror=$(pegpu_mirror)
	key=signed-by=/usr/share/keyrings/debian-archive-keyring.gpg
	mkdir -p "$d"/lists/partial "$d"/cache/archives/partial "$d"/parts "$d"/prefs
	cat > "$d/sources.list.new" <<EOT
deb [arch=arm64,amd64 $key] $mirror bookworm main
deb [arch=amd64 $key] $mirror bookworm-backports main
deb [arch=amd64 $key] $mirror trixie main
deb-src [$key] $mirror trixie main
EOT
	cat > "$d/apt.conf" <<EOT
Dir::Etc::SourceList "$d/sources.list";
Dir::Etc::SourceParts "$d/parts";
Dir::Etc::PreferencesParts "$d/prefs";
Dir::State::Lists "$d/lists";
Dir::Cache "$d/cache";
APT::Architectures { "amd64"; "arm64"; };
Acquire::Check-Valid-Until "false";
Acquire::Retries "3";
EOT
	if ! cmp -s "$d/sources.list.new" "$d/sources.list" 2>/dev/null ||
	   [ -z "$(find "$d/lists" -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
		mv "$d/sources.list.new" "$d/sources.list"
		APT_CONFIG=$d/apt.conf apt-get -q update >&2 ||
			pegpu_die "apt-get update with the private config $d/apt.conf failed; check the network and the mirror"
	else
		rm -f "$d/sources.list.new"
	fi
	printf '%s\n' "$d/apt.conf"
}

# Hash of files' contents and extra strings: cache keys.
pegpu_hash() {
	{ for a in "$@"; do if [ -f "$a" ]; then printf '%s\n' "$a"; cat "$a"; else printf '%s\n' "$a"; fi; done; } |
		sha256sum | cut -c1-16
}
