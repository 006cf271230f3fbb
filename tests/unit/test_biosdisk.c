/* test_biosdisk.c: drivers/biosdisk.c against a model BIOS (EDD and CHS-only disks, retries, errors, bounce vs direct buffers, native twins, disk= modes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "../../block/disk.h"
#include "../../boot/realmode.h"
#include "../../drivers/driver.h"
#include "../../kernel/resident.h"
#include "ramdev.h"
#include "kstubs.h"
/* The driver under test, built into this test (its static driver row bd_driver included). */
#include "../../drivers/biosdisk.c"

/* ------------------------------------------------------------ the kernel's services */

uint32_t kernel_base;             /* pointer = arena + physical: kernel_base = -arena (mod 2^32) */
static uint8_t *arena;            /* 2 MiB of "physical memory", mapped below 4 GiB */
#define ARENA_BYTES (2u << 20)

/* The low buffers: boot-time ones, or "installed" ones (bounce_bytes may be 0). */
static struct resident_lowbuf lowbuf;
void resident_lowbuf(struct resident_lowbuf *lb) { *lb = lowbuf; }

/* ------------------------------------------------------------ the model BIOS */

#define BIOS_VEC 0xF000E3FEu
#define NDRIVES 3

struct mdisk {
	uint64_t sectors;
	int edd;                  /* AH=41h/42h/43h/48h */
	unsigned cyls, heads, spt;
	uint8_t *data;
	int fail;                 /* the next `fail` transfers answer fail_st */
	uint8_t fail_st;
	int write_protected;
	int ata_pos;              /* EDD 3.0 path: -1 none, else PCI ATA channel*2+unit */
};

static struct mdisk mdisks[NDRIVES];
static int trips, resets, refuse;
static uint32_t max_xfer;         /* largest transfer a call asked for */
static uint32_t min_buf = 0xFFFFFFFF, max_buf;  /* linear buffers the BIOS was given */

static uint8_t *lin(uint32_t a) { return arena + a; }

/* Move n sectors at lba between the disk and linear buf; 0 or a BIOS status. */
static uint8_t mxfer(struct mdisk *m, int write, uint64_t lba, uint32_t n, uint32_t buf)
{
	if (m->fail) {
		m->fail--;
		return m->fail_st;
	}
	if (write && m->write_protected)
		return 0x03;
	if (!n || lba + n > m->sectors)
		return 0x04;
	if (n > max_xfer)
		max_xfer = n;
	if (buf < min_buf)
		min_buf = buf;
	if (buf + n * 512 > max_buf)
		max_buf = buf + n * 512;
	assert_true(buf + n * 512 <= ARENA_BYTES);
	if (write)
		memcpy(m->data + lba * 512, lin(buf), n * 512);
	else
		memcpy(lin(buf), m->data + lba * 512, n * 512);
	return 0;
}

/* The BIOS's INT 13h as biosdisk.c calls it: rm_farcall(saved vector) = rm_trip(RM_OP_FAR, ...). */
int rm_trip(uint32_t op, uint32_t arg, struct rm_regs *r)
{
	assert_int_equal(op, RM_OP_FAR);
	assert_int_equal(arg, BIOS_VEC);
	trips++;
	if (refuse)
		return -1;
	uint8_t ah = RM_AH(r), dl = (uint8_t)r->edx, st = 0;
	r->flags &= ~RM_FLAG_CF;
	if (dl < 0x80 || dl >= 0x80 + NDRIVES || !mdisks[dl - 0x80].sectors) {
		st = 0x01;
		goto out;
	}
	struct mdisk *m = &mdisks[dl - 0x80];
	uint32_t dap = (uint32_t)r->ds * 16 + (r->esi & 0xFFFF);
	uint8_t *p = lin(dap);
	switch (ah) {
	case 0x00:
		resets++;
		break;
	case 0x41:
		if (!m->edd || (r->ebx & 0xFFFF) != 0x55AA) {
			st = 0x01;
			break;
		}
		r->ebx = 0xAA55;
		r->ecx = 0x0005;
		RM_SET_AH(r, 0x30);
		goto out_ok;
	case 0x48:
		if (!m->edd) {
			st = 0x01;
			break;
		}
		memset(p + 2, 0, 0x40);
		for (int i = 0; i < 8; i++)
			p[0x10 + i] = (uint8_t)(m->sectors >> (8 * i));
		p[0x18] = 0x00;
		p[0x19] = 0x02;
		if (m->ata_pos >= 0) {
			p[0] = 0x42;
			p[0x1E] = 0xDD;
			p[0x1F] = 0xBE;
			memcpy(p + 0x24, "PCI ", 4);
			memcpy(p + 0x28, "ATA     ", 8);
			p[0x33] = (uint8_t)(m->ata_pos / 2);
			p[0x38] = (uint8_t)(m->ata_pos & 1);
		} else {
			p[0] = 0x1A;
		}
		break;
	case 0x08:
		r->ecx = ((m->cyls - 1) & 0xFF) << 8 | ((m->cyls - 1) >> 2 & 0xC0) | m->spt;
		r->edx = (m->heads - 1) << 8 | NDRIVES;
		break;
	case 0x42:
	case 0x43:
		if (!m->edd) {
			st = 0x01;
			break;
		}
		st = mxfer(m, ah == 0x43, *(uint64_t *)(p + 8), p[2] | p[3] << 8,
			   (uint32_t)(p[6] | p[7] << 8) * 16 + (p[4] | p[5] << 8));
		break;
	case 0x02:
	case 0x03: {
		unsigned sec = r->ecx & 0x3F, cyl = (r->ecx >> 8 & 0xFF) | (r->ecx & 0xC0) << 2, head = r->edx >> 8 & 0xFF;
		unsigned n = r->eax & 0xFF;
		assert_true(sec >= 1 && sec <= m->spt && head < m->heads && cyl < m->cyls);
		assert_true(sec - 1 + n <= m->spt);   /* biosdisk never crosses a track */
		uint64_t lba = ((uint64_t)cyl * m->heads + head) * m->spt + sec - 1;
		st = mxfer(m, ah == 0x03, lba, n, (uint32_t)r->es * 16 + (r->ebx & 0xFFFF));
		break;
	}
	default:
		st = 0x01;
	}
out:
	RM_SET_AH(r, st);
out_ok:
	if (st)
		r->flags |= RM_FLAG_CF;
	return 0;
}

/* ------------------------------------------------------------ helpers */

/* The biosdisk driver's row. */
static const struct driver *bd(void)
{
	assert_string_equal(bd_driver.name, "bios");
	return &bd_driver;
}

static void fill(uint8_t *d, uint64_t sectors, unsigned seed)
{
	for (uint64_t i = 0; i < sectors * 512; i++)
		d[i] = (uint8_t)(i * 7 + seed + (i >> 9));
}

/* Model disk i: sectors (EDD) or the CHS geometry's size; data patterned by seed. */
static void mkdisk(int i, int edd, unsigned cyls, unsigned heads, unsigned spt, uint64_t sectors, unsigned seed)
{
	struct mdisk *m = &mdisks[i];
	free(m->data);
	memset(m, 0, sizeof(*m));
	m->edd = edd;
	m->cyls = cyls;
	m->heads = heads;
	m->spt = spt;
	m->sectors = edd ? sectors : (uint64_t)cyls * heads * spt;
	m->data = malloc(m->sectors * 512);
	m->ata_pos = -1;
	fill(m->data, m->sectors, seed);
}

static int setup(void **state)
{
	(void)state;
	if (!arena) {
		arena = mmap(NULL, ARENA_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
		assert_true(arena != MAP_FAILED);
		kernel_base = (uint32_t)(0u - (uint32_t)(uintptr_t)arena);
	}
	memset(arena, 0, ARENA_BYTES);
	*(uint32_t *)lin(0x13 * 4) = BIOS_VEC;
	for (int i = 0; i < NDRIVES; i++) {
		free(mdisks[i].data);
		memset(&mdisks[i], 0, sizeof(mdisks[i]));
	}
	lowbuf = (struct resident_lowbuf){ RESIDENT_BOOT_SCRATCH, RESIDENT_BOOT_BOUNCE, RESIDENT_BOOT_BOUNCE_BYTES,
					   0x500, RESIDENT_BOOT_BOUNCE + RESIDENT_BOOT_BOUNCE_BYTES };
	disk_reset();
	trips = resets = refuse = 0;
	max_xfer = 0;
	min_buf = 0xFFFFFFFF;
	max_buf = 0;
	kstubs_log_reset();
	return 0;
}

static int probe(int mode, int nbios)
{
	*lin(0x475) = (uint8_t)nbios;
	struct drv_boot_info bi;
	memset(&bi, 0, sizeof(bi));
	bi.disk_mode = mode;
	return bd()->probe(&bi);
}

/* ------------------------------------------------------------ tests */

/* EDD disk: registered with its size; a read into low memory goes straight to the BIOS in calls of <= 127 sectors. */
static void test_edd_direct(void **state)
{
	(void)state;
	mkdisk(0, 1, 0, 0, 0, 5000, 1);
	assert_int_equal(probe(DRV_DISK_AUTO, 1), 1);
	struct disk *d = disk_get(0);
	assert_string_equal(d->driver, "bios");
	assert_string_equal(d->where, "80h");
	assert_true(d->flags & DISK_RMCALL);
	assert_int_equal(d->blk->sectors, 5000);
	uint8_t *buf = lin(0x20000);
	max_xfer = 0;
	min_buf = 0xFFFFFFFF;
	assert_int_equal(blk_read(d->blk, 100, 300, buf), BLK_OK);
	assert_memory_equal(buf, mdisks[0].data + 100 * 512, 300 * 512);
	assert_int_equal(max_xfer, 127);
	assert_int_equal(min_buf, 0x20000);             /* the caller's own buffer */
	/* writes the same way, and read back */
	fill(buf, 40, 77);
	assert_int_equal(blk_write(d->blk, 4000, 40, buf), BLK_OK);
	assert_memory_equal(mdisks[0].data + 4000 * 512, buf, 40 * 512);
	assert_int_equal(blk_flush(d->blk), BLK_OK);
}

/* A buffer above 640 KiB (kernel memory) goes through the bounce buffer, in bounce-sized pieces. */
static void test_bounce(void **state)
{
	(void)state;
	mkdisk(0, 1, 0, 0, 0, 5000, 2);
	assert_int_equal(probe(DRV_DISK_AUTO, 1), 1);
	struct blk_dev *b = disk_get(0)->blk;
	uint8_t *buf = lin(0x100000);
	max_xfer = 0;
	min_buf = 0xFFFFFFFF;
	max_buf = 0;
	assert_int_equal(blk_read(b, 7, 200, buf), BLK_OK);
	assert_memory_equal(buf, mdisks[0].data + 7 * 512, 200 * 512);
	assert_int_equal(min_buf, RESIDENT_BOOT_BOUNCE);
	assert_true(max_buf <= RESIDENT_BOOT_BOUNCE + RESIDENT_BOOT_BOUNCE_BYTES);
	assert_int_equal(max_xfer, RESIDENT_BOOT_BOUNCE_BYTES / 512);
	/* the guest is running: the 2 KiB resident bounce (4 sectors per call) */
	lowbuf = (struct resident_lowbuf){ 0x9F000, 0x9F400, 2048, 0x9EC00, 0xA0000 };
	max_xfer = 0;
	fill(buf, 9, 5);
	assert_int_equal(blk_write(b, 50, 9, buf), BLK_OK);
	assert_memory_equal(mdisks[0].data + 50 * 512, buf, 9 * 512);
	assert_int_equal(max_xfer, 4);
	/* a low buffer that overlaps vhdboot's own low memory is never handed to the BIOS */
	min_buf = 0xFFFFFFFF;
	assert_int_equal(blk_read(b, 0, 2, lin(0x9EE00)), BLK_OK);
	assert_int_equal(min_buf, 0x9F400);
	/* installed without BIOS calls planned: no bounce buffer, a clear error instead of a wild transfer */
	lowbuf.bounce_bytes = 0;
	assert_int_equal(blk_read(b, 0, 1, buf), BLK_E_IO);
	assert_non_null(strstr(kstubs_log, "no bounce buffer"));
}

/* No EDD: the size is the AH=08h geometry and transfers are CHS, never crossing a track. */
static void test_chs_only(void **state)
{
	(void)state;
	mkdisk(0, 0, 20, 4, 17, 0, 3);
	assert_int_equal(probe(DRV_DISK_AUTO, 1), 1);
	struct blk_dev *b = disk_get(0)->blk;
	assert_int_equal(b->sectors, 20 * 4 * 17);
	uint8_t *buf = lin(0x30000);
	assert_int_equal(blk_read(b, 10, 100, buf), BLK_OK);           /* crosses tracks and heads */
	assert_memory_equal(buf, mdisks[0].data + 10 * 512, 100 * 512);
	assert_true(max_xfer <= 17);
	fill(buf, 30, 9);
	assert_int_equal(blk_write(b, 1300, 30, buf), BLK_OK);
	assert_memory_equal(mdisks[0].data + 1300 * 512, buf, 30 * 512);
	assert_non_null(strstr(kstubs_log, "CHS (AH=02h/03h)"));
}

/* A failing call is retried after AH=00h; three failures give BLK_E_IO; 03h means read-only, at once. */
static void test_errors(void **state)
{
	(void)state;
	mkdisk(0, 1, 0, 0, 0, 1000, 4);
	assert_int_equal(probe(DRV_DISK_AUTO, 1), 1);
	struct blk_dev *b = disk_get(0)->blk;
	uint8_t *buf = lin(0x40000);
	mdisks[0].fail = 2;
	mdisks[0].fail_st = 0x80;
	resets = 0;
	assert_int_equal(blk_read(b, 1, 8, buf), BLK_OK);
	assert_int_equal(resets, 2);
	assert_memory_equal(buf, mdisks[0].data + 512, 8 * 512);
	mdisks[0].fail = 5;
	resets = 0;
	assert_int_equal(blk_read(b, 1, 8, buf), BLK_E_IO);
	assert_int_equal(resets, 2);                     /* 3 attempts, a reset between */
	assert_non_null(strstr(kstubs_log, "BIOS status 80h, giving up"));
	mdisks[0].fail = 0;
	mdisks[0].write_protected = 1;
	resets = 0;
	assert_int_equal(blk_write(b, 1, 1, buf), BLK_E_RO);
	assert_int_equal(resets, 0);
	/* real mode refused (trips nested too deep): an I/O error, not a hang */
	refuse = 1;
	assert_int_equal(blk_read(b, 1, 1, buf), BLK_E_IO);
	refuse = 0;
	/* past the end: the block layer refuses before the BIOS is asked */
	trips = 0;
	assert_int_equal(blk_read(b, 999, 2, buf), BLK_E_RANGE);
	assert_int_equal(trips, 0);
}

/* A BIOS disk that a native driver serves already (same size and sector 0, same ATA position for an ata disk) is skipped. */
static void test_native_twin(void **state)
{
	(void)state;
	struct ramdev *pm = ramdev_new(1000, 1000, 0), *ps = ramdev_new(1000, 1000, 0);
	mkdisk(0, 1, 0, 0, 0, 1000, 5);
	mkdisk(1, 1, 0, 0, 0, 1000, 5);      /* same content as 80h: only the EDD path tells them apart */
	mkdisk(2, 1, 0, 0, 0, 2000, 6);      /* USB stick: no native twin */
	memcpy(pm->data, mdisks[0].data, 1000 * 512);
	memcpy(ps->data, mdisks[1].data, 1000 * 512);
	mdisks[0].ata_pos = 0;
	mdisks[1].ata_pos = 1;
	assert_true(disk_add(&pm->blk, "ata", "pm", "QEMU", 0) == 0);
	assert_true(disk_add(&ps->blk, "ata", "ps", "QEMU", 0) == 1);
	assert_int_equal(probe(DRV_DISK_AUTO, 3), 1);
	assert_int_equal(disk_count(), 3);
	assert_string_equal(disk_get(2)->where, "82h");
	assert_string_equal(disk_get(2)->label, "hd2");
	assert_non_null(strstr(kstubs_log, "80h = hd0 (ata pm): served by the native driver"));
	assert_non_null(strstr(kstubs_log, "81h = hd1 (ata ps): served by the native driver"));
	/* the same content at another ATA position is not a twin */
	setup(NULL);
	mkdisk(0, 1, 0, 0, 0, 1000, 5);
	mdisks[0].ata_pos = 1;
	memcpy(pm->data, mdisks[0].data, 1000 * 512);
	assert_true(disk_add(&pm->blk, "ata", "pm", "QEMU", 0) == 0);
	assert_int_equal(probe(DRV_DISK_AUTO, 1), 1);
	/* an AHCI disk: a twin by size and sector 0, whether the BIOS gives no path or an ATA one */
	for (int pos = -1; pos <= 1; pos++) {
		setup(NULL);
		mkdisk(0, 1, 0, 0, 0, 1000, 5);
		mdisks[0].ata_pos = pos;
		memcpy(pm->data, mdisks[0].data, 1000 * 512);
		assert_true(disk_add(&pm->blk, "ahci", "p0", "QEMU", 0) == 0);
		assert_int_equal(probe(DRV_DISK_AUTO, 1), 0);
		assert_non_null(strstr(kstubs_log, "80h = hd0 (ahci p0): served by the native driver"));
	}
	/* ... but not with another sector 0 */
	setup(NULL);
	mkdisk(0, 1, 0, 0, 0, 1000, 5);
	memcpy(pm->data, mdisks[0].data, 1000 * 512);
	pm->data[17] ^= 1;
	assert_true(disk_add(&pm->blk, "ahci", "p0", "QEMU", 0) == 0);
	assert_int_equal(probe(DRV_DISK_AUTO, 1), 1);
	memcpy(pm->data, mdisks[0].data, 1000 * 512);
	/* disk=bios: every BIOS disk, twins included; disk=native / pio: none */
	setup(NULL);
	mkdisk(0, 1, 0, 0, 0, 1000, 5);
	mdisks[0].ata_pos = 0;
	assert_true(disk_add(&pm->blk, "ata", "pm", "QEMU", 0) == 0);
	assert_int_equal(probe(DRV_DISK_BIOS, 1), 1);
	setup(NULL);
	mkdisk(0, 1, 0, 0, 0, 1000, 5);
	assert_int_equal(probe(DRV_DISK_NATIVE, 1), 0);
	assert_int_equal(probe(DRV_DISK_PIO, 1), 0);
	assert_int_equal(trips, 0);
	ramdev_free(pm);
	ramdev_free(ps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_edd_direct, setup),
		cmocka_unit_test_setup(test_bounce, setup),
		cmocka_unit_test_setup(test_chs_only, setup),
		cmocka_unit_test_setup(test_errors, setup),
		cmocka_unit_test_setup(test_native_twin, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
