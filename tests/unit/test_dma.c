/* test_dma.c: drivers/dma.c (IDE bus-master and AHCI PRD tables: 64 KiB windows, 4 MiB pieces, alignment, table full, 4 GiB wrap) and drivers/ata_id.c (IDENTIFY parsing: size, LBA48, DMA, flush opcode, strings, refusals). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "../../drivers/dma.h"
#include "../../drivers/ata_id.h"

/* Sum of the bytes a bus-master table describes (0 = 65536), checking the rules of every entry. */
static uint64_t bm_total(const struct dma_bm_prd *t, int n, uint32_t start)
{
	uint64_t sum = 0, a = start;
	for (int i = 0; i < n; i++) {
		uint32_t len = t[i].bytes ? t[i].bytes : 0x10000u;
		assert_int_equal(t[i].addr, (uint32_t)a);                 /* contiguous */
		assert_int_equal(t[i].addr >> 16, (t[i].addr + len - 1) >> 16); /* inside one 64 KiB window */
		assert_int_equal(t[i].flags, i == n - 1 ? DMA_BM_EOT : 0);
		sum += len;
		a += len;
	}
	return sum;
}

static void test_bm_simple(void **state)
{
	(void)state;
	struct dma_bm_prd t[8];
	/* one sector, aligned */
	assert_int_equal(dma_bm_prd_build(t, 8, 0x100000, 512), 1);
	assert_int_equal(t[0].bytes, 512);
	assert_int_equal(bm_total(t, 1, 0x100000), 512);
	/* exactly one full window: a count of 0 means 64 KiB */
	assert_int_equal(dma_bm_prd_build(t, 8, 0x20000, 0x10000), 1);
	assert_int_equal(t[0].bytes, 0);
	/* across a boundary: split there */
	assert_int_equal(dma_bm_prd_build(t, 8, 0x1FE00, 1024), 2);
	assert_int_equal(t[0].bytes, 512);
	assert_int_equal(t[1].addr, 0x20000);
	assert_int_equal(bm_total(t, 2, 0x1FE00), 1024);
	/* 128 KiB at an unaligned start touches three windows */
	assert_int_equal(dma_bm_prd_build(t, 8, 0x7C00, 0x20000), 3);
	assert_int_equal(bm_total(t, 3, 0x7C00), 0x20000);
}

static void test_bm_limits(void **state)
{
	(void)state;
	struct dma_bm_prd t[128];
	assert_int_equal(dma_bm_prd_build(t, 128, 0x1001, 512), DMA_E_ALIGN);
	assert_int_equal(dma_bm_prd_build(t, 128, 0x1000, 511), DMA_E_ALIGN);
	assert_int_equal(dma_bm_prd_build(t, 128, 0x1000, 0), DMA_E_EMPTY);
	assert_int_equal(dma_bm_prd_build(t, 128, 0xFFFFFE00u, 1024), DMA_E_WRAP);
	assert_int_equal(dma_bm_prd_build(t, 128, 0xFFFFFE00u, 512), 1);   /* the last sector below 4 GiB */
	assert_int_equal(dma_bm_prd_build(t, 2, 0x8000, 0x20000), DMA_E_FULL);
	/* dma_bm_capacity holds whatever the alignment (the drivers size max_count by it) */
	uint32_t cap = dma_bm_capacity(128);
	assert_int_equal(cap, 127u * 0x10000u);
	for (uint32_t start = 0x100000; start < 0x110000; start += 0x1F02) {
		int n = dma_bm_prd_build(t, 128, start & ~1u, cap);
		assert_true(n > 0 && n <= 128);
		assert_int_equal(bm_total(t, n, start & ~1u), cap);
	}
	assert_int_equal(dma_bm_capacity(1), 0);
	assert_string_equal(dma_strerror(DMA_E_FULL), "buffer needs more descriptors than the table holds");
}

static void test_ahci(void **state)
{
	(void)state;
	struct dma_ahci_prd t[8];
	memset(t, 0xAA, sizeof(t));
	assert_int_equal(dma_ahci_prd_build(t, 8, 0x12340, 512), 1);
	assert_int_equal(t[0].dba, 0x12340);
	assert_int_equal(t[0].dbau, 0);
	assert_int_equal(t[0].rsv, 0);
	assert_int_equal(t[0].dbc, 511);           /* byte count - 1, no interrupt bit */
	/* 65536 sectors = 32 MiB = 8 pieces of 4 MiB, no 64 KiB rule */
	assert_int_equal(dma_ahci_prd_build(t, 8, 0x1FE00, 65536u * 512), 8);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(t[i].dba, 0x1FE00 + (uint32_t)i * DMA_AHCI_MAX_SEG);
		assert_int_equal(t[i].dbc, DMA_AHCI_MAX_SEG - 1);
	}
	assert_int_equal(dma_ahci_prd_build(t, 8, 0x1FE00, 65536u * 512 + 512), DMA_E_FULL);
	assert_int_equal(dma_ahci_prd_build(t, 8, 0x1FE00, 5u << 20), 2);
	assert_int_equal(t[1].dbc, (1u << 20) - 1);
	assert_int_equal(dma_ahci_prd_build(t, 8, 0x3, 512), DMA_E_ALIGN);
	assert_int_equal(dma_ahci_prd_build(t, 8, 0xFFFFF000u, 8192), DMA_E_WRAP);
}

/* Put an IDENTIFY string (high byte first, blank padded) at word first. */
static void put_str(uint16_t *id, int first, int words, const char *s)
{
	char tmp[80];
	memset(tmp, ' ', sizeof(tmp));
	memcpy(tmp, s, strlen(s));
	for (int i = 0; i < words; i++)
		id[first + i] = (uint16_t)((uint8_t)tmp[2 * i] << 8 | (uint8_t)tmp[2 * i + 1]);
}

/* A QEMU-like SATA disk of sectors sectors. */
static void make_id(uint16_t *id, uint64_t sectors, int lba48)
{
	memset(id, 0, ATA_ID_WORDS * 2);
	put_str(id, 27, 20, "QEMU HARDDISK");
	put_str(id, 10, 10, "  QM00005");
	id[47] = 0x8010;
	id[49] = 0x0300;                           /* LBA, DMA */
	id[53] = 0x0006;
	id[88] = 0x203F;
	uint32_t l28 = sectors > 0x0FFFFFFF ? 0x0FFFFFFF : (uint32_t)sectors;
	id[60] = (uint16_t)l28;
	id[61] = (uint16_t)(l28 >> 16);
	id[83] = 0x4000 | 0x1000 | (lba48 ? 0x2400 : 0);
	for (int i = 0; i < 4; i++)
		id[100 + i] = lba48 ? (uint16_t)(sectors >> (16 * i)) : 0;
}

static void test_identify(void **state)
{
	(void)state;
	uint16_t id[ATA_ID_WORDS];
	struct ata_id a;
	make_id(id, 9ull << 21, 1);                /* 9 GiB: the LBA48 count wins */
	assert_int_equal(ata_id_parse(id, &a), ATA_ID_OK);
	assert_string_equal(a.model, "QEMU HARDDISK");
	assert_string_equal(a.serial, "QM00005");
	assert_true(a.sectors == 9ull << 21);
	assert_int_equal(a.lba48, 1);
	assert_int_equal(a.dma, 1);
	assert_int_equal(a.udma_modes, 0x3F);
	assert_int_equal(a.flush_cmd, ATA_ID_CMD_FLUSH_CACHE_EXT);
	assert_int_equal(a.max_multi, 16);

	make_id(id, 65536, 0);                     /* LBA28 only: FLUSH CACHE, no EXT */
	assert_int_equal(ata_id_parse(id, &a), ATA_ID_OK);
	assert_int_equal(a.lba48, 0);
	assert_true(a.sectors == 65536);
	assert_int_equal(a.flush_cmd, ATA_ID_CMD_FLUSH_CACHE);

	make_id(id, 65536, 1);
	id[83] = 0;                                /* word 83 not valid: no LBA48, no flush */
	assert_int_equal(ata_id_parse(id, &a), ATA_ID_OK);
	assert_int_equal(a.lba48, 0);
	assert_int_equal(a.flush_cmd, 0);
	id[49] = 0x0200;
	id[53] = 0;
	assert_int_equal(ata_id_parse(id, &a), ATA_ID_OK);
	assert_int_equal(a.dma, 0);
	assert_int_equal(a.udma_modes, 0);

	make_id(id, 65536, 1);
	id[0] = 0x85C0;                            /* ATAPI */
	assert_int_equal(ata_id_parse(id, &a), ATA_ID_E_PACKET);
	assert_string_equal(a.model, "QEMU HARDDISK");
	make_id(id, 65536, 1);
	id[49] = 0;
	assert_int_equal(ata_id_parse(id, &a), ATA_ID_E_NOLBA);
	make_id(id, 0, 1);
	assert_int_equal(ata_id_parse(id, &a), ATA_ID_E_EMPTY);
	make_id(id, 65536, 1);
	id[106] = 0x4000 | 0x1000;                 /* 4 KiB logical sectors */
	id[117] = 2048;
	assert_int_equal(ata_id_parse(id, &a), ATA_ID_E_SECTOR);
	id[117] = 256;                             /* 512 bytes stated explicitly */
	assert_int_equal(ata_id_parse(id, &a), ATA_ID_OK);
	assert_string_equal(ata_id_strerror(ATA_ID_E_NOLBA), "no LBA support (CHS only)");

	/* an all-blank model and a full-width one */
	make_id(id, 100, 1);
	put_str(id, 27, 20, "");
	assert_int_equal(ata_id_parse(id, &a), ATA_ID_OK);
	assert_string_equal(a.model, "");
	put_str(id, 27, 20, "0123456789012345678901234567890123456789");
	ata_id_parse(id, &a);
	assert_string_equal(a.model, "0123456789012345678901234567890123456789");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bm_simple),
		cmocka_unit_test(test_bm_limits),
		cmocka_unit_test(test_ahci),
		cmocka_unit_test(test_identify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
