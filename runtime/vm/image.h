/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Base images: download (resumable, with progress), verification against
 * the SHA512SUMS file published next to the image (Debian's layout), and a
 * cache keyed by checksum, so instances share one verified copy and a
 * corrupt or truncated download is never used.
 */
#ifndef PEGPU_VM_IMAGE_H
#define PEGPU_VM_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Debian's official cloud image for the architecture (Debian 13 "trixie"). */
const char *image_default_url(enum vm_arch arch);

/* SHA-512 */
struct sha512 {
	uint64_t h[8];
	uint8_t buf[128];
	uint64_t len;
	size_t fill;
};
void sha512_init(struct sha512 *s);
void sha512_update(struct sha512 *s, const void *p, size_t len);
void sha512_hex(struct sha512 *s, char out[129]);
/* Checksum of a whole file; 0 on success. */
int sha512_file(const char *path, char out[129]);

/*
 * Find name's checksum in a SHA512SUMS text ("<hex>  <name>" lines, '*'
 * binary marker allowed).  0 when found.
 */
int image_sums_lookup(const char *sums, const char *name, char out[129]);
/* Compare a file against an expected checksum; message into err on mismatch. */
int image_verify(const char *path, const char *sha512, char *err, size_t errlen);

/*
 * Make url's image available in the cache: fetch SHA512SUMS next to it,
 * reuse a cached copy with that checksum or download (resuming a partial
 * download of the same checksum), verify.  path receives the cache file,
 * sha512 its checksum.  progress: draw a progress bar on stderr.
 */
int image_fetch(const char *url, const char *cache_dir, int progress, char *path, size_t pathlen,
		char sha512[129], char *err, size_t errlen);

#endif /* PEGPU_VM_IMAGE_H */
