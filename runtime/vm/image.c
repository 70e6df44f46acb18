/* SPDX-License-Identifier: Apache-2.0 */
/* Base images: SHA-512, SHA512SUMS, resumable downloads (libcurl), the cache. */
#include "image.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

const char *image_default_url(enum vm_arch arch)
{
	/* "latest" moves; the cache is keyed by the checksum it had when fetched */
	return arch == VM_ARCH_AARCH64 ?
		"https://cloud.debian.org/images/cloud/trixie/latest/debian-13-generic-arm64.qcow2" :
		"https://cloud.debian.org/images/cloud/trixie/latest/debian-13-generic-amd64.qcow2";
}

/* --- SHA-512 (FIPS 180-4) ---------------------------------------------- */

static const uint64_t K[80] = {
	0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL, 0xb5c0fbcfec4d3b2fULL,
	0xe9b5dba58189dbbcULL, 0x3956c25bf348b538ULL, 0x59f111f1b605d019ULL,
	0x923f82a4af194f9bULL, 0xab1c5ed5da6d8118ULL, 0xd807aa98a3030242ULL,
	0x12835b0145706fbeULL, 0x243185be4ee4b28cULL, 0x550c7dc3d5ffb4e2ULL,
	0x72be5d74f27b896fULL, 0x80deb1fe3b1696b1ULL, 0x9bdc06a725c71235ULL,
	0xc19bf174cf692694ULL, 0xe49b69c19ef14ad2ULL, 0xefbe4786384f25e3ULL,
	0x0fc19dc68b8cd5b5ULL, 0x240ca1cc77ac9c65ULL, 0x2de92c6f592b0275ULL,
	0x4a7484aa6ea6e483ULL, 0x5cb0a9dcbd41fbd4ULL, 0x76f988da831153b5ULL,
	0x983e5152ee66dfabULL, 0xa831c66d2db43210ULL, 0xb00327c898fb213fULL,
	0xbf597fc7beef0ee4ULL, 0xc6e00bf33da88fc2ULL, 0xd5a79147930aa725ULL,
	0x06ca6351e003826fULL, 0x142929670a0e6e70ULL, 0x27b70a8546d22ffcULL,
	0x2e1b21385c26c926ULL, 0x4d2c6dfc5ac42aedULL, 0x53380d139d95b3dfULL,
	0x650a73548baf63deULL, 0x766a0abb3c77b2a8ULL, 0x81c2c92e47edaee6ULL,
	0x92722c851482353bULL, 0xa2bfe8a14cf10364ULL, 0xa81a664bbc423001ULL,
	0xc24b8b70d0f89791ULL, 0xc76c51a30654be30ULL, 0xd192e819d6ef5218ULL,
	0xd69906245565a910ULL, 0xf40e35855771202aULL, 0x106aa07032bbd1b8ULL,
	0x19a4c116b8d2d0c8ULL, 0x1e376c085141ab53ULL, 0x2748774cdf8eeb99ULL,
	0x34b0bcb5e19b48a8ULL, 0x391c0cb3c5c95a63ULL, 0x4ed8aa4ae3418acbULL,
	0x5b9cca4f7763e373ULL, 0x682e6ff3d6b2b8a3ULL, 0x748f82ee5defb2fcULL,
	0x78a5636f43172f60ULL, 0x84c87814a1f0ab72ULL, 0x8cc702081a6439ecULL,
	0x90befffa23631e28ULL, 0xa4506cebde82bde9ULL, 0xbef9a3f7b2c67915ULL,
	0xc67178f2e372532bULL, 0xca273eceea26619cULL, 0xd186b8c721c0c207ULL,
	0xeada7dd6cde0eb1eULL, 0xf57d4f7fee6ed178ULL, 0x06f067aa72176fbaULL,
	0x0a637dc5a2c898a6ULL, 0x113f9804bef90daeULL, 0x1b710b35131c471bULL,
	0x28db77f523047d84ULL, 0x32caab7b40c72493ULL, 0x3c9ebe0a15c9bebcULL,
	0x431d67c49c100d4cULL, 0x4cc5d4becb3e42b6ULL, 0x597f299cfc657e2aULL,
	0x5fcb6fab3ad6faecULL, 0x6c44198c4a475817ULL,
};
static const uint64_t H0[8] = {
	0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL,
	0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL,
	0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (64 - (n))))

static void sha512_block(struct sha512 *s, const uint8_t *p)
{
	uint64_t w[80], a, b, c, d, e, f, g, h;

	for (int i = 0; i < 16; i++) {
		w[i] = 0;
		for (int k = 0; k < 8; k++)
			w[i] = (w[i] << 8) | p[i * 8 + k];
	}
	for (int i = 16; i < 80; i++) {
		uint64_t s0 = ROR(w[i - 15], 1) ^ ROR(w[i - 15], 8) ^ (w[i - 15] >> 7);
		uint64_t s1 = ROR(w[i - 2], 19) ^ ROR(w[i - 2], 61) ^ (w[i - 2] >> 6);

		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3];
	e = s->h[4]; f = s->h[5]; g = s->h[6]; h = s->h[7];
	for (int i = 0; i < 80; i++) {
		uint64_t t1 = h + (ROR(e, 14) ^ ROR(e, 18) ^ ROR(e, 41)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
		uint64_t t2 = (ROR(a, 28) ^ ROR(a, 34) ^ ROR(a, 39)) + ((a & b) ^ (a & c) ^ (b & c));

		h = g; g = f; f = e; e = d + t1;
		d = c; c = b; b = a; a = t1 + t2;
	}
	s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d;
	s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}

void sha512_init(struct sha512 *s)
{
	memcpy(s->h, H0, sizeof(H0));
	s->len = 0;
	s->fill = 0;
}

void sha512_update(struct sha512 *s, const void *data, size_t len)
{
	const uint8_t *p = data;

	s->len += len;
	if (s->fill) {
		size_t take = 128 - s->fill < len ? 128 - s->fill : len;

		memcpy(s->buf + s->fill, p, take);
		s->fill += take;
		p += take;
		len -= take;
		if (s->fill < 128)
			return;
		sha512_block(s, s->buf);
		s->fill = 0;
	}
	for (; len >= 128; p += 128, len -= 128)
		sha512_block(s, p);
	memcpy(s->buf, p, len);
	s->fill = len;
}

void sha512_hex(struct sha512 *s, char out[129])
{
	uint64_t bits = s->len * 8;
	uint8_t pad[144] = { 0x80 };
	size_t padlen = (s->fill < 112 ? 112 : 240) - s->fill;

	/* length is 128 bits; inputs here are far below 2^64 bits */
	for (int i = 0; i < 8; i++)
		pad[padlen + 8 + i] = (uint8_t)(bits >> (56 - 8 * i));
	sha512_update(s, pad, padlen + 16);
	for (int i = 0; i < 8; i++)
		snprintf(out + 16 * i, 17, "%016llx", (unsigned long long)s->h[i]);
}

int sha512_file(const char *path, char out[129])
{
	static uint8_t buf[1 << 20];
	struct sha512 s;
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return -1;
	sha512_init(&s);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sha512_update(&s, buf, n);
	if (ferror(f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	sha512_hex(&s, out);
	return 0;
}

int image_sums_lookup(const char *sums, const char *name, char out[129])
{
	const char *p = sums;

	while (*p) {
		size_t l = strcspn(p, "\n"), hl = strspn(p, "0123456789abcdefABCDEF");

		if (hl == 128 && hl < l && (p[hl] == ' ' || p[hl] == '\t')) {
			const char *n = p + hl;

			while (n < p + l && (*n == ' ' || *n == '\t'))
				n++;
			if (n < p + l && *n == '*')	/* binary-mode marker */
				n++;
			size_t nl = (size_t)(p + l - n);

			while (nl && n[nl - 1] == '\r')
				nl--;
			if (nl == strlen(name) && !memcmp(n, name, nl)) {
				for (int i = 0; i < 128; i++)
					out[i] = (char)(p[i] | 0x20);	/* lowercase */
				out[128] = 0;
				return 0;
			}
		}
		p += l;
		if (*p)
			p++;
	}
	return -1;
}

int image_verify(const char *path, const char *sha512, char *err, size_t errlen)
{
	char got[129];

	if (sha512_file(path, got)) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (strcmp(got, sha512)) {
		snprintf(err, errlen, "%s does not match its published SHA-512 (got %.16s..., expected "
			 "%.16s...): the download is corrupt or truncated", path, got, sha512);
		return -1;
	}
	return 0;
}

/* --- downloads ----------------------------------------------------------- */

struct membuf {
	char *p;
	size_t n;
};

static size_t mem_write(char *data, size_t sz, size_t nm, void *u)
{
	struct membuf *m = u;
	size_t len = sz * nm;
	char *np;

	if (m->n + len > (4u << 20))	/* a checksum file is small: refuse a huge one */
		return 0;
	np = realloc(m->p, m->n + len + 1);
	if (!np)
		return 0;
	memcpy(np + m->n, data, len);
	m->p = np;
	m->n += len;
	m->p[m->n] = 0;
	return len;
}

struct progress {
	const char *name;
	curl_off_t base;	/* bytes already on disk when this attempt began */
	double t0, last;
	int tty;
	int last_decile;
};

static int progress_cb(void *u, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ul, curl_off_t uln)
{
	struct progress *pr = u;
	double now = now_s(), mib = 1024.0 * 1024.0;
	curl_off_t total = dltotal ? dltotal + pr->base : 0, have = dlnow + pr->base;

	(void)ul;
	(void)uln;
	if (now - pr->last < 0.25 && dlnow != dltotal)
		return 0;
	pr->last = now;
	double rate = dlnow / mib / (now - pr->t0 > 0.001 ? now - pr->t0 : 0.001);

	if (pr->tty) {
		int pct = total ? (int)(have * 100 / total) : 0, bar = pct * 30 / 100;

		fprintf(stderr, "\r  %s [%.*s%*s] %3d%% %7.1f/%.1f MiB %6.1f MiB/s", pr->name, bar,
			"##############################", 30 - bar, "", pct, have / mib, total / mib, rate);
	} else if (total) {
		int dec = (int)(have * 10 / total);

		if (dec > pr->last_decile) {
			pr->last_decile = dec;
			fprintf(stderr, "  %s: %d%% (%.1f of %.1f MiB, %.1f MiB/s)\n", pr->name, dec * 10,
				have / mib, total / mib, rate);
		}
	}
	return 0;
}

static CURL *curl_new(const char *url, char *errbuf)
{
	CURL *c = curl_easy_init();

	if (!c)
		return NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	/* a stalled transfer (under 1 KiB/s for 60 s) fails and is resumed */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "pegpu/" PEGPU_VM_VERSION);
	errbuf[0] = 0;
	return c;
}

static char *fetch_small(const char *url, char *err, size_t errlen)
{
	char eb[CURL_ERROR_SIZE];
	struct membuf m = { 0 };
	CURL *c = curl_new(url, eb);
	CURLcode rc;

	if (!c)
		return NULL;
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mem_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
	rc = curl_easy_perform(c);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "cannot fetch %s: %s", url, eb[0] ? eb : curl_easy_strerror(rc));
		free(m.p);
		return NULL;
	}
	return m.p ? m.p : strdup("");
}

/* Download url into part, resuming what is there.  0 when complete. */
static int download(const char *url, const char *part, const char *name, int progress, char *err,
		    size_t errlen)
{
	for (int attempt = 0; attempt < 6; attempt++) {
		char eb[CURL_ERROR_SIZE];
		struct stat st;
		curl_off_t have = stat(part, &st) == 0 ? st.st_size : 0;
		struct progress pr = { .name = name, .base = have, .t0 = now_s(), .tty = isatty(2),
				       .last_decile = -1 };
		FILE *f = fopen(part, "ab");
		CURL *c;
		CURLcode rc;
		long code = 0;

		if (!f) {
			snprintf(err, errlen, "cannot write %s: %s", part, strerror(errno));
			return -1;
		}
		c = curl_new(url, eb);
		if (!c) {
			fclose(f);
			return -1;
		}
		curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
		curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, have);
		if (progress) {
			curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
			curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
			curl_easy_setopt(c, CURLOPT_XFERINFODATA, &pr);
		}
		if (have)
			fprintf(stderr, "  resuming %s at %.1f MiB\n", name, have / 1048576.0);
		rc = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		curl_easy_cleanup(c);
		if (fclose(f) && rc == CURLE_OK) {
			snprintf(err, errlen, "cannot write %s: %s", part, strerror(errno));
			return -1;
		}
		if (progress && pr.tty)
			fputc('\n', stderr);
		if (rc == CURLE_OK)
			return 0;
		if (code == 416 && have)
			return 0;	/* nothing left to fetch: the checksum decides */
		if (rc == CURLE_RANGE_ERROR) {
			/* the server cannot resume: start over */
			fprintf(stderr, "  the server cannot resume; downloading %s from the start\n", name);
			truncate(part, 0);
			continue;
		}
		snprintf(err, errlen, "downloading %s failed: %s", url, eb[0] ? eb : curl_easy_strerror(rc));
		if (rc == CURLE_HTTP_RETURNED_ERROR && code != 416 && code < 500)
			return -1;	/* 404 and friends do not get better */
		fprintf(stderr, "  %s; retrying\n", err);
		sleep_s(1 + attempt);
	}
	return -1;
}

/* "dir/SHA512SUMS" for ".../dir/name", and name */
static int split_url(const char *url, char *sums, size_t slen, char *name, size_t nlen)
{
	size_t l = strcspn(url, "?#");
	const char *slash = NULL;

	/* no memrchr: macOS lacks it */
	for (const char *p = url; p < url + l; p++)
		if (*p == '/')
			slash = p;
	if (!slash || slash + 1 == url + l)
		return -1;
	if (snprintf(name, nlen, "%.*s", (int)(url + l - slash - 1), slash + 1) >= (int)nlen)
		return -1;
	if (snprintf(sums, slen, "%.*sSHA512SUMS", (int)(slash + 1 - url), url) >= (int)slen)
		return -1;
	return 0;
}

int image_fetch(const char *url_in, const char *cache_dir, int progress, char *path, size_t pathlen,
		char sha512[129], char *err, size_t errlen)
{
	char url[2048], sums_url[2048], name[256], part[4096], final[4096];
	char *sums = NULL;
	const char *ext;
	int r = -1;

	/* a plain path is a local file: fetched through the same code */
	if (!strstr(url_in, "://")) {
		char *rp = realpath(url_in, NULL);

		if (!rp) {
			snprintf(err, errlen, "image %s: %s", url_in, strerror(errno));
			return -1;
		}
		snprintf(url, sizeof(url), "file://%s", rp);
		free(rp);
	} else {
		snprintf(url, sizeof(url), "%s", url_in);
	}
	if (split_url(url, sums_url, sizeof(sums_url), name, sizeof(name))) {
		snprintf(err, errlen, "'%s' does not end in a file name", url);
		return -1;
	}
	if (mkdir_p(cache_dir, 0755)) {
		snprintf(err, errlen, "cannot create the image cache %s: %s", cache_dir, strerror(errno));
		return -1;
	}
	sums = fetch_small(sums_url, err, errlen);
	if (!sums)
		goto out;
	if (image_sums_lookup(sums, name, sha512)) {
		snprintf(err, errlen, "%s does not list %s: cannot verify the image, so it is not used",
			 sums_url, name);
		goto out;
	}
	ext = strrchr(name, '.');
	ext = ext && (!strcmp(ext, ".qcow2") || !strcmp(ext, ".raw") || !strcmp(ext, ".img")) ? ext : ".img";
	snprintf(final, sizeof(final), "%s/sha512-%.64s%s", cache_dir, sha512, ext);
	snprintf(part, sizeof(part), "%s/sha512-%.64s.part", cache_dir, sha512);
	if (snprintf(path, pathlen, "%s", final) >= (int)pathlen)
		goto out;
	if (path_exists(final)) {
		/* verified before it was renamed into place */
		fprintf(stderr, "  %s: cached (sha512 %.16s...)\n", name, sha512);
		r = 0;
		goto out;
	}
	if (download(url, part, name, progress, err, errlen))
		goto out;
	fprintf(stderr, "  verifying %s against %s\n", name, sums_url);
	if (image_verify(part, sha512, err, errlen)) {
		unlink(part);
		size_t l = strlen(err);

		snprintf(err + l, errlen - l, "; it was deleted: run the command again to download it anew");
		goto out;
	}
	if (rename(part, final)) {
		snprintf(err, errlen, "cannot rename %s: %s", part, strerror(errno));
		goto out;
	}
	r = 0;
out:
	free(sums);
	return r;
}
