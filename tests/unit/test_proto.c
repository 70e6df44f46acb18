/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire protocol's ABI: sizes, offsets and numbers that the guest module,
 * the QEMU device and docs/protocol.md all depend on.  A failure here means
 * an incompatible protocol change, not a test to update.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "pegpu/dma_dev.h"
#include "pegpu/dma_proto.h"

static void test_struct_layout(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct pegpu_dma_batch_hdr), 32);
	assert_int_equal(offsetof(struct pegpu_dma_batch_hdr, magic), 0);
	assert_int_equal(offsetof(struct pegpu_dma_batch_hdr, count), 4);
	assert_int_equal(offsetof(struct pegpu_dma_batch_hdr, status), 8);
	assert_int_equal(offsetof(struct pegpu_dma_batch_hdr, nr_ok), 12);
	assert_int_equal(offsetof(struct pegpu_dma_batch_hdr, cookie), 16);
	assert_int_equal(offsetof(struct pegpu_dma_batch_hdr, reserved), 24);

	assert_int_equal(sizeof(struct pegpu_dma_entry), 32);
	assert_int_equal(offsetof(struct pegpu_dma_entry, op), 0);
	assert_int_equal(offsetof(struct pegpu_dma_entry, flags), 2);
	assert_int_equal(offsetof(struct pegpu_dma_entry, status), 4);
	assert_int_equal(offsetof(struct pegpu_dma_entry, addr), 8);
	assert_int_equal(offsetof(struct pegpu_dma_entry, len), 16);
	assert_int_equal(offsetof(struct pegpu_dma_entry, iova), 24);

	assert_int_equal(sizeof(struct pegpu_dmatest_desc), 48);
	assert_int_equal(offsetof(struct pegpu_dmatest_desc, op), 0);
	assert_int_equal(offsetof(struct pegpu_dmatest_desc, status), 4);
	assert_int_equal(offsetof(struct pegpu_dmatest_desc, src), 8);
	assert_int_equal(offsetof(struct pegpu_dmatest_desc, dst), 16);
	assert_int_equal(offsetof(struct pegpu_dmatest_desc, len), 24);
	assert_int_equal(offsetof(struct pegpu_dmatest_desc, arg), 32);
	assert_int_equal(offsetof(struct pegpu_dmatest_desc, result), 40);

	/* entries follow the header directly and stay 8-byte aligned */
	assert_int_equal(PEGPU_BATCH_ALIGN % sizeof(struct pegpu_dma_batch_hdr), 0);
	assert_int_equal(sizeof(struct pegpu_dma_batch_hdr) % 8, 0);
}

/* The four bytes of m, most significant first, or in little-endian memory order. */
static const char *magic_str(uint32_t m, bool le, char buf[5])
{
	int i;

	for (i = 0; i < 4; i++)
		buf[i] = (char)(m >> (le ? 8 * i : 24 - 8 * i));
	buf[4] = 0;
	return buf;
}

static void test_numbers(void **state)
{
	char buf[5];

	(void)state;
	/*
	 * The register magics read as their names when printed as numbers; the
	 * batch magic reads as its name in (little-endian) guest memory.
	 */
	assert_string_equal(magic_str(PEGPU_DMA_MAGIC, false, buf), "PEGD");
	assert_string_equal(magic_str(PEGPU_DMATEST_MAGIC, false, buf), "PEGT");
	assert_string_equal(magic_str(PEGPU_BATCH_MAGIC, true, buf), "BTCH");
	assert_int_equal(PEGPU_DMA_VERSION, 0x10000);
	assert_int_not_equal(PEGPU_DMA_PCI_DEVICE_ID, 0x0015);
	assert_int_not_equal(PEGPU_DMA_PCI_DEVICE_ID, PEGPU_DMATEST_PCI_DEVICE_ID);

	assert_int_equal(PEGPU_OP_MAP, 1);
	assert_int_equal(PEGPU_OP_UNMAP, 2);
	assert_int_equal(PEGPU_ENTRY_FLAGS_MASK, 3);

	assert_int_equal(PEGPU_ST_OK, 0);
	assert_int_equal(PEGPU_ST_BAD_OP, 1);
	assert_int_equal(PEGPU_ST_BAD_FLAGS, 2);
	assert_int_equal(PEGPU_ST_BAD_ALIGN, 3);
	assert_int_equal(PEGPU_ST_BAD_LEN, 4);
	assert_int_equal(PEGPU_ST_NOT_RAM, 5);
	assert_int_equal(PEGPU_ST_NO_SPACE, 6);
	assert_int_equal(PEGPU_ST_TOO_MANY, 7);
	assert_int_equal(PEGPU_ST_NO_IOVA, 8);
	assert_int_equal(PEGPU_ST_NOT_MAPPED, 9);
	assert_int_equal(PEGPU_ST_LEN_MISMATCH, 10);
	assert_int_equal(PEGPU_ST_BAD_BATCH, 11);
	assert_int_equal(PEGPU_ST_BATCH_NOT_RAM, 12);
	assert_int_equal(PEGPU_ST_BACKEND, 13);
	assert_int_equal(PEGPU_ST__COUNT, 14);
	assert_int_equal(PEGPU_ST_PENDING, 0xffffffffu);

	assert_int_equal(PEGPU_DMA_CNT_DOORBELLS, 0);
	assert_int_equal(PEGPU_DMA_CNT_RESETS, 11);
	assert_int_equal(PEGPU_DMA_CNT__COUNT, 12);
}

static void test_registers(void **state)
{
	static const unsigned int regs32[] = {
		PEGPU_DMA_REG_MAGIC, PEGPU_DMA_REG_VERSION, PEGPU_DMA_REG_FEATURES,
		PEGPU_DMA_REG_PAGE_SHIFT, PEGPU_DMA_REG_MAX_BATCH, PEGPU_DMA_REG_MAX_MAPPINGS,
		PEGPU_DMA_REG_MANAGED_BDF, PEGPU_DMA_REG_MANAGED_VALID, PEGPU_DMA_REG_CONTROL,
		PEGPU_DMA_REG_LAST_STATUS,
	};
	static const unsigned int regs64[] = {
		PEGPU_DMA_REG_MAX_MAPPED, PEGPU_DMA_REG_IOVA_BASE, PEGPU_DMA_REG_IOVA_SIZE,
		PEGPU_DMA_REG_DOORBELL, PEGPU_DMA_REG_COUNTERS,
	};
	unsigned char used[PEGPU_DMA_BAR_SIZE] = { 0 };
	size_t i, b;

	(void)state;
	/* naturally aligned, inside the BAR, no two registers overlap */
	for (i = 0; i < sizeof(regs32) / sizeof(regs32[0]); i++) {
		assert_int_equal(regs32[i] % 4, 0);
		for (b = 0; b < 4; b++) {
			assert_int_equal(used[regs32[i] + b], 0);
			used[regs32[i] + b] = 1;
		}
	}
	for (i = 0; i < sizeof(regs64) / sizeof(regs64[0]); i++) {
		unsigned int n = regs64[i] == PEGPU_DMA_REG_COUNTERS ? 8 * PEGPU_DMA_CNT__COUNT : 8;

		assert_int_equal(regs64[i] % 8, 0);
		assert_true(regs64[i] + n <= PEGPU_DMA_BAR_SIZE);
		for (b = 0; b < n; b++) {
			assert_int_equal(used[regs64[i] + b], 0);
			used[regs64[i] + b] = 1;
		}
	}
	assert_int_equal(PEGPU_DMATEST_REG_RING_IOVA % 8, 0);
	assert_int_equal(PEGPU_DMATEST_REG_FAULTS % 8, 0);
	assert_int_equal(PEGPU_DMATEST_REG_DESCS % 8, 0);
}

static void test_counter_names(void **state)
{
	static const char *const names[] = PEGPU_DMA_COUNTER_NAMES_INIT;
	size_t i, j;

	(void)state;
	assert_int_equal(sizeof(names) / sizeof(names[0]), PEGPU_DMA_CNT__COUNT);
	assert_string_equal(names[PEGPU_DMA_CNT_DOORBELLS], "doorbells");
	assert_string_equal(names[PEGPU_DMA_CNT_PEAK_MAPPED_BYTES], "peak-mapped-bytes");
	assert_string_equal(names[PEGPU_DMA_CNT_RESETS], "resets");
	for (i = 0; i < PEGPU_DMA_CNT__COUNT; i++) {
		const char *n = pegpu_dmadev_counter_name((enum pegpu_dma_counter)i);

		assert_non_null(n);
		assert_string_equal(n, names[i]);
		/* QOM property names: lower case, digits and dashes only */
		assert_int_equal(strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789-"), strlen(n));
		for (j = 0; j < i; j++)
			assert_string_not_equal(names[i], names[j]);
	}
	assert_null(pegpu_dmadev_counter_name(PEGPU_DMA_CNT__COUNT));
}

static void test_status_strings(void **state)
{
	uint32_t i, j;

	(void)state;
	for (i = 0; i < PEGPU_ST__COUNT; i++) {
		const char *s = pegpu_dma_status_str(i);

		assert_non_null(s);
		assert_true(strlen(s) > 0);
		assert_string_not_equal(s, pegpu_dma_status_str(PEGPU_ST__COUNT));
		for (j = 0; j < i; j++)
			assert_string_not_equal(s, pegpu_dma_status_str(j));
	}
	assert_string_equal(pegpu_dma_status_str(PEGPU_ST_OK), "ok");
	assert_string_equal(pegpu_dma_status_str(PEGPU_ST_PENDING), "pending");
	assert_non_null(pegpu_dma_status_str(0x7fffffffu));
}

static void test_fnv1a64(void **state)
{
	uint64_t h;

	(void)state;
	assert_int_equal(PEGPU_FNV1A64_INIT, 0xcbf29ce484222325ull);
	assert_int_equal(pegpu_fnv1a64(PEGPU_FNV1A64_INIT, "", 0), 0xcbf29ce484222325ull);
	assert_int_equal(pegpu_fnv1a64(PEGPU_FNV1A64_INIT, "a", 1), 0xaf63dc4c8601ec8cull);
	assert_int_equal(pegpu_fnv1a64(PEGPU_FNV1A64_INIT, "foobar", 6), 0x85944171f73967e8ull);
	/* incremental use (the test device checksums in pieces) gives the same hash */
	h = pegpu_fnv1a64(PEGPU_FNV1A64_INIT, "foo", 3);
	h = pegpu_fnv1a64(h, "bar", 3);
	assert_int_equal(h, 0x85944171f73967e8ull);
	/* bytes above 0x7f are unsigned: "\xff" differs from a sign-extended read */
	assert_int_equal(pegpu_fnv1a64(PEGPU_FNV1A64_INIT, "\xff", 1),
			 (0xcbf29ce484222325ull ^ 0xffull) * 0x100000001b3ull);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_struct_layout),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_registers),
		cmocka_unit_test(test_counter_names),
		cmocka_unit_test(test_status_strings),
		cmocka_unit_test(test_fnv1a64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
