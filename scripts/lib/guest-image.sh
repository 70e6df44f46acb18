# SPDX-License-Identifier: Apache-2.0
# The locally built guest image (scripts/image-build.sh), cached under
# $PEGPU_CACHE/system-image/<key> by its inputs, shared by `make demo` and
# the system tier.  Source it after common.sh; run from the repository root.

# pegpu_guest_image SUITE LOG: build the image unless cached; prints the
# directory holding pegpu-SUITE-amd64.qcow2 and SHA512SUMS.  Call it as
# `pegpu_guest_image ... > file`, not in $(...), to see pegpu_guest_image_built
# (1 when this call built it).
pegpu_guest_image() {
	local suite=$1 log=$2 key dir
	# relative paths: pegpu_hash hashes names too, and the key must not
	# depend on where the checkout is
	key=$(pegpu_hash scripts/image-build.sh scripts/lib/common.sh "$suite")
	dir=$PEGPU_CACHE/system-image/$key
	pegpu_guest_image_built=0
	if [ ! -f "$dir/SHA512SUMS" ] || [ ! -f "$dir/pegpu-$suite-amd64.qcow2" ]; then
		scripts/image-build.sh --suite "$suite" --out "$dir/pegpu-$suite-amd64.qcow2" \
			> "$log" 2>&1 || return 1
		pegpu_guest_image_built=1
	fi
	printf '%s\n' "$dir"
}
