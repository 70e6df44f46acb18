/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image verification: SHA-512 against FIPS 180-4 vectors, SHA512SUMS
 * parsing, and the fetch path (file:// through libcurl): a good image is
 * cached by checksum, a corrupt one is refused and never cached.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "image.h"
#include "util.h"

static void hex_of(const void *p, size_t len, char out[129])
{
	struct sha512 s;

	sha512_init(&s);
	sha512_update(&s, p, len);
	sha512_hex(&s, out);
}

static void test_sha512_vectors(void **st)
{
	char h[129];

	(void)st;
	hex_of("", 0, h);
	assert_string_equal(h, "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
			       "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
	hex_of("abc", 3, h);
	assert_string_equal(h, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
			       "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
	/* two blocks */
	hex_of("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
	       "klmnopqrlmnopqrsmnopqrstnopqrstu", 112, h);
	assert_string_equal(h, "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
			       "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909");
	/* a million 'a', fed in odd pieces */
	struct sha512 s;
	char buf[997];

	memset(buf, 'a', sizeof(buf));
	sha512_init(&s);
	for (size_t left = 1000000; left;) {
		size_t n = left < sizeof(buf) ? left : sizeof(buf);

		sha512_update(&s, buf, n);
		left -= n;
	}
	sha512_hex(&s, h);
	assert_string_equal(h, "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb"
			       "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b");
}

#define H1 "11111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"
#define H2 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

static void test_sums_lookup(void **st)
{
	const char *sums = H1 "  debian-13-generic-amd64.qcow2\n"
			   H2 " *debian-13-generic-arm64.qcow2\r\n"
			   "garbage line\n"
			   "1234  short-hash.qcow2\n";
	char out[129];

	(void)st;
	assert_int_equal(image_sums_lookup(sums, "debian-13-generic-amd64.qcow2", out), 0);
	assert_string_equal(out, H1);
	/* binary marker, CRLF, uppercase hex (lowercased) */
	assert_int_equal(image_sums_lookup(sums, "debian-13-generic-arm64.qcow2", out), 0);
	assert_int_equal(out[0], 'a');
	assert_int_equal(image_sums_lookup(sums, "debian-13-generic-amd64", out), -1);
	assert_int_equal(image_sums_lookup(sums, "short-hash.qcow2", out), -1);
	assert_int_equal(image_sums_lookup(sums, "missing.qcow2", out), -1);
}

static void write_file(const char *dir, const char *name, const char *data)
{
	char p[1024];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_int_equal(file_write_atomic(p, data, strlen(data), 0644), 0);
}

static void test_fetch_verify_cache(void **st)
{
	char srv[] = "/tmp/pegpu-img-XXXXXX", cache[1100], url[1100], path[4096], sha[129], err[1024];
	char line[1400], good[129];
	const char *img = "pretend this is a qcow2 image\n";

	(void)st;
	assert_non_null(mkdtemp(srv));
	snprintf(cache, sizeof(cache), "%s/cache", srv);
	write_file(srv, "img.qcow2", img);
	hex_of(img, strlen(img), good);
	snprintf(line, sizeof(line), "%s  img.qcow2\n", good);
	write_file(srv, "SHA512SUMS", line);
	snprintf(url, sizeof(url), "file://%s/img.qcow2", srv);

	assert_int_equal(image_fetch(url, cache, 0, path, sizeof(path), sha, err, sizeof(err)), 0);
	assert_string_equal(sha, good);
	assert_non_null(strstr(path, "/cache/sha512-"));
	assert_int_equal(image_verify(path, good, err, sizeof(err)), 0);

	/* a corrupted image (same length) is refused and not cached */
	write_file(srv, "img.qcow2", "pretend this is a qcow2 imagE\n");
	rm_rf(cache);
	assert_int_equal(image_fetch(url, cache, 0, path, sizeof(path), sha, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "corrupt or truncated"));
	assert_false(path_exists(path));

	/* a truncated partial download is resumed, then verified */
	write_file(srv, "img.qcow2", img);
	snprintf(line, sizeof(line), "%s/sha512-%.64s.part", cache, good);
	assert_int_equal(file_write_atomic(line, img, 10, 0644), 0);
	assert_int_equal(image_fetch(url, cache, 0, path, sizeof(path), sha, err, sizeof(err)), 0);
	assert_int_equal(image_verify(path, good, err, sizeof(err)), 0);
	assert_false(path_exists(line));

	/* not listed in SHA512SUMS: never used */
	write_file(srv, "SHA512SUMS", "");
	rm_rf(cache);
	assert_int_equal(image_fetch(url, cache, 0, path, sizeof(path), sha, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not list img.qcow2"));
	rm_rf(srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha512_vectors),
		cmocka_unit_test(test_sums_lookup),
		cmocka_unit_test(test_fetch_verify_cache),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
