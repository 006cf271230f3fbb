/* test_int13.c: cmocka tests for kernel/int13.c over fake RAM/pattern disks and a fake guest memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../block/disk.h"
#include "../../kernel/int13.h"
#include "ramdev.h"

/* ------------------------------------------------------------ fake guest memory */

#define GMEM_SIZE (4u << 20)       /* 4 MiB: real-mode space plus room for flat buffers */
#define FILL 0xEE                  /* untouched guest memory */
#define BDA_LAST_STATUS 0x474u

static uint8_t *gmem;
static uint32_t prot_lo, prot_hi;  /* [lo, hi) refused by guestmem_ptr */

void *guestmem_ptr(uint32_t linear, uint32_t bytes)
{
	uint64_t end = (uint64_t)linear + bytes;
	if (end > GMEM_SIZE)
		return NULL;
	if (linear < prot_hi && end > prot_lo)
		return NULL;
	return gmem + linear;
}

static uint8_t *lin(uint32_t a) { return gmem + a; }
static uint16_t get16(uint32_t a) { uint16_t v; memcpy(&v, lin(a), 2); return v; }
static uint32_t get32(uint32_t a) { uint32_t v; memcpy(&v, lin(a), 4); return v; }
static uint64_t get64(uint32_t a) { uint64_t v; memcpy(&v, lin(a), 8); return v; }
static void put16(uint32_t a, uint16_t v) { memcpy(lin(a), &v, 2); }
static void put64(uint32_t a, uint64_t v) { memcpy(lin(a), &v, 8); }

/* Nonzero when n bytes at linear a all equal FILL. */
static int untouched(uint32_t a, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (gmem[a + i] != FILL)
			return 0;
	return 1;
}

/* ------------------------------------------------------------ fake disks */

/* Sector i holds 128 little-endian copies of (uint32_t)i unless written (the fill of every disk below). */
static void pattern(uint64_t lba, uint8_t *buf)
{
	uint32_t v = (uint32_t)lba;
	for (int i = 0; i < 128; i++)
		memcpy(buf + 4 * i, &v, 4);
}

/* The drives: RAM devices (ramdev.h) whose unbacked sectors read as pattern(). */
static struct ramdev *disks[3];

/* Prepare disks[i] with n sectors; ram: back it with memory holding the pattern (sector 0 zeroed = blank MBR),
 * else pattern only (writes fail with BLK_E_IO). */
static struct ramdev *mkdisk(int i, uint64_t n, int ram)
{
	ramdev_free(disks[i]);
	struct ramdev *f = disks[i] = ramdev_new(n, ram ? n : 0, 0);
	f->blk.name = "fake";
	f->fill = pattern;
	if (ram) {
		for (uint64_t s = 0; s < n; s++)
			pattern(s, f->data + s * 512);
		memset(f->data, 0, 512);
	}
	return f;
}

/* Nonzero when the 512 bytes at p hold sector lba's pattern. */
static int is_sector(const uint8_t *p, uint32_t lba)
{
	uint8_t want[512];
	pattern(lba, want);
	return memcmp(p, want, 512) == 0;
}

/* ------------------------------------------------------------ calls */

#define BIOS_DISKS 1
#define DAP 0x0600u        /* DAP / EDD buffer at 0000:0600 */
#define BUF_SEG 0x1000u    /* transfer buffer at 1000:0000 = 10000h */
#define BUF 0x10000u

/* A call with AX, BX, CX, DX (high halves filled with junk that must survive), CF preset. */
static struct rm_regs mkregs(uint16_t ax, uint16_t bx, uint16_t cx, uint16_t dx)
{
	struct rm_regs r;
	memset(&r, 0, sizeof(r));
	r.eax = 0xA5A50000u | ax;
	r.ebx = 0xB6B60000u | bx;
	r.ecx = 0xC7C70000u | cx;
	r.edx = 0xD8D80000u | dx;
	r.esi = DAP;
	r.edi = 0x1234;
	r.ds = 0;
	r.es = BUF_SEG;
	r.flags = 0x0202 | RM_FLAG_CF;  /* CF preset: success must clear it */
	r.vector = 0x13;
	return r;
}

#define AH(r) ((uint8_t)((r).eax >> 8))
#define AL(r) ((uint8_t)(r).eax)
#define CF(r) ((r).flags & RM_FLAG_CF)

/* Simple call: function ah on drive dl. */
static struct rm_regs call(uint8_t ah, uint8_t al, uint8_t dl)
{
	struct rm_regs r = mkregs((uint16_t)(ah << 8 | al), 0, 0, dl);
	int13_handle(&r);
	return r;
}

/* CHS call: AH=fn, AL=count, cylinder/head/sector (1-based) on 80h into ES:BX = 1000:0000. */
static struct rm_regs chs(uint8_t fn, uint8_t count, uint32_t cyl, uint32_t head, uint32_t sec)
{
	uint16_t cx = (uint16_t)((cyl & 0xFF) << 8 | ((cyl >> 2) & 0xC0) | (sec & 0x3F));
	struct rm_regs r = mkregs((uint16_t)(fn << 8 | count), 0, cx, (uint16_t)(head << 8 | 0x80));
	int13_handle(&r);
	return r;
}

/* Write a DAP at DAP: size, count, seg:off, lba (and flat when size >= 18h). */
static void mkdap(uint8_t size, uint16_t count, uint16_t seg, uint16_t off, uint64_t lba, uint64_t flat)
{
	memset(lin(DAP), 0, 24);
	gmem[DAP] = size;
	put16(DAP + 2, count);
	put16(DAP + 4, off);
	put16(DAP + 6, seg);
	put64(DAP + 8, lba);
	if (size >= 0x18)
		put64(DAP + 16, flat);
}

/* Extended call AH=fn (AL=al) on drive dl with the DAP at 0000:0600. */
static struct rm_regs ext(uint8_t fn, uint8_t al, uint8_t dl)
{
	return call(fn, al, dl);
}

#define DAP_COUNT() get16(DAP + 2)

/* Status consistency after any call that records a status: AH, CF, 40:74, AH=01h all agree. */
static void assert_status(struct rm_regs r, uint8_t want, uint8_t dl)
{
	assert_int_equal(AH(r), want);
	assert_int_equal(CF(r) != 0, want != 0);
	assert_int_equal(gmem[BDA_LAST_STATUS], want);
	struct rm_regs s = call(0x01, 0x77, dl);
	assert_int_equal(AH(s), want);
	assert_int_equal(AL(s), want);
	assert_int_equal(CF(s) != 0, want != 0);
	/* 01h does not change the stored status. */
	assert_int_equal(gmem[BDA_LAST_STATUS], want);
	assert_int_equal(int13_get_drive(dl) ? int13_get_drive(dl)->last_status : want, want);
}

static int setup(void **state)
{
	(void)state;
	gmem = malloc(GMEM_SIZE);
	assert_non_null(gmem);
	memset(gmem, FILL, GMEM_SIZE);
	prot_lo = prot_hi = 0;
	int13_trace_hook = NULL;
	int13_init(BIOS_DISKS);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(gmem);
	gmem = NULL;
	for (int i = 0; i < 3; i++) {
		ramdev_free(disks[i]);
		disks[i] = NULL;
	}
	return 0;
}

/* Add disks[i] as the next drive, check its number. */
static struct int13_drive *add(int i, int ro, int want_number)
{
	assert_int_equal(int13_add_drive(&disks[i]->blk, ro), want_number);
	struct int13_drive *d = int13_get_drive((uint8_t)want_number);
	assert_non_null(d);
	return d;
}

/* ------------------------------------------------------------ drive table */

static void test_drive_table(void **state)
{
	(void)state;
	assert_int_equal(int13_drive_count(), 0);
	assert_null(int13_get_drive(0x80));
	mkdisk(0, 2048, 0);
	for (int i = 0; i < INT13_MAX_DRIVES; i++)
		assert_int_equal(int13_add_drive(&disks[0]->blk, 0), 0x80 + i);
	assert_int_equal(int13_add_drive(&disks[0]->blk, 0), -1);
	assert_int_equal(int13_drive_count(), INT13_MAX_DRIVES);
	assert_null(int13_get_drive(0x80 + INT13_MAX_DRIVES));
	assert_null(int13_get_drive(0x7F));
	int13_init(0);
	assert_int_equal(int13_drive_count(), 0);
	struct blk_dev empty = disks[0]->blk;
	empty.sectors = 0;
	assert_int_equal(int13_add_drive(&empty, 0), -1);
	assert_int_equal(int13_add_drive(NULL, 0), -1);
}

static void test_not_our_drive(void **state)
{
	(void)state;
	mkdisk(0, 2048, 0);
	add(0, 0, 0x80);
	struct rm_regs r = call(0x00, 0, 0x81);
	assert_int_equal(AH(r), 0x01);
	assert_true(CF(r));
	assert_int_equal(gmem[BDA_LAST_STATUS], 0x01);
	/* The drive's own status was not touched. */
	assert_int_equal(int13_get_drive(0x80)->last_status, 0);
}

/* ------------------------------------------------------------ 41h, 15h, 08h, 48h */

static void test_41h(void **state)
{
	(void)state;
	mkdisk(0, 2048, 0);
	add(0, 0, 0x80);
	struct rm_regs r = mkregs(0x4100, 0x55AA, 0, 0x80);
	int13_handle(&r);
	assert_int_equal(r.ebx, 0xB6B6AA55u);
	assert_int_equal(r.ecx, 0xC7C70005u);    /* extended access + EDD, not removable */
	assert_int_equal(AH(r), 0x30);
	assert_false(CF(r));
	assert_int_equal(gmem[BDA_LAST_STATUS], 0);
	assert_int_equal(AH(call(0x01, 0, 0x80)), 0);
}

/* 15h: AH=03h, CX:DX = sectors clamped to 32 bits, CF clear, last status 00h. */
static void test_15h(void **state)
{
	(void)state;
	mkdisk(0, 100800, 0);
	mkdisk(1, (1ull << 32) + 5, 0);
	add(0, 0, 0x80);
	add(1, 0, 0x81);
	gmem[BDA_LAST_STATUS] = 0x55;
	struct rm_regs r = call(0x15, 0x42, 0x80);
	assert_int_equal(AH(r), 0x03);
	assert_int_equal(AL(r), 0x42);
	assert_false(CF(r));
	assert_int_equal(r.ecx, 0xC7C70001u);  /* 100800 = 0001:89C0 */
	assert_int_equal(r.edx, 0xD8D889C0u);
	assert_int_equal(gmem[BDA_LAST_STATUS], 0);
	gmem[BDA_LAST_STATUS] = 0x55;
	r = call(0x15, 0, 0x81);
	assert_int_equal(AH(r), 0x03);
	assert_false(CF(r));
	assert_int_equal((uint16_t)r.ecx, 0xFFFF);  /* clamped to 32 bits */
	assert_int_equal((uint16_t)r.edx, 0xFFFF);
	assert_int_equal(gmem[BDA_LAST_STATUS], 0);
	/* AH=03h is a type, not an error: the recorded status is 00h. */
	struct rm_regs s = call(0x01, 0, 0x81);
	assert_int_equal(AH(s), 0);
	assert_false(CF(s));
}

/* 08h on a disk of n sectors (blank MBR): expect CH, CL, DH. */
static void check_08h(uint64_t n, uint8_t ch, uint8_t cl, uint8_t dh)
{
	int13_init(BIOS_DISKS);
	mkdisk(0, n, 0);
	add(0, 0, 0x80);
	struct rm_regs r = mkregs(0x0800, 0x1234, 0, 0x80);
	r.es = 0x4321;
	int13_handle(&r);
	assert_int_equal(r.eax, 0xA5A50000u);      /* AX = 0 */
	assert_false(CF(r));
	assert_int_equal((uint8_t)(r.ecx >> 8), ch);
	assert_int_equal((uint8_t)r.ecx, cl);
	assert_int_equal((uint8_t)(r.edx >> 8), dh);
	assert_int_equal((uint8_t)r.edx, 1 + BIOS_DISKS);
	assert_int_equal(r.ecx >> 16, 0xC7C7);
	assert_int_equal(r.edx >> 16, 0xD8D8);
	assert_int_equal(r.ebx, 0xB6B61234u);     /* BL untouched for hard disks */
	assert_int_equal(r.es, 0x4321);           /* ES:DI untouched */
	assert_int_equal(r.edi, 0x1234);
	assert_int_equal(gmem[BDA_LAST_STATUS], 0);
}

static void test_08h_sizes(void **state)
{
	(void)state;
	/* 16x63x100: max cylinder 99, 63 spt, last head 15. */
	check_08h(100800, 99, 63, 15);
	/* 16x63x600: max cylinder 599 = 257h: CH = 57h, CL = 80h | 63. */
	check_08h(604800, 0x57, 0x80 | 63, 15);
	/* ~9.5 GiB: 255x63, 1244 cylinders clamped to 1024: CH = FFh, CL = C0h | 63, DH = 254. */
	check_08h(20000000, 0xFF, 0xFF, 254);
	/* 2 TiB: still clamped. */
	check_08h(1ull << 32, 0xFF, 0xFF, 254);
	/* Tiny, 500 sectors: 63 spt, 7 heads, 1 cylinder. */
	check_08h(500, 0, 63, 6);
	/* Tinier, 40 sectors: 1 head of 40. */
	check_08h(40, 0, 40, 0);
}

static void test_08h_two_drives(void **state)
{
	(void)state;
	int13_init(2);
	mkdisk(0, 100800, 0);
	mkdisk(1, 20000000, 0);
	add(0, 0, 0x80);
	add(1, 0, 0x81);
	struct rm_regs r = call(0x08, 0, 0x81);
	assert_int_equal(AH(r), 0);
	assert_int_equal((uint8_t)r.edx, 4);   /* 2 emulated + 2 BIOS */
	assert_int_equal((uint8_t)(r.edx >> 8), 254);
	r = call(0x08, 0, 0x82);
	assert_int_equal(AH(r), 0x01);
	assert_true(CF(r));
}

static void test_48h_1a(void **state)
{
	(void)state;
	mkdisk(0, 100800, 0);
	add(0, 0, 0x80);
	put16(DAP, 0x1A);
	struct rm_regs r = call(0x48, 0, 0x80);
	assert_status(r, 0, 0x80);
	assert_int_equal(get16(DAP), 0x1A);
	assert_int_equal(get16(DAP + 2), 0x0003);  /* DMA transparent + CHS valid */
	assert_int_equal(get32(DAP + 4), 100);
	assert_int_equal(get32(DAP + 8), 16);
	assert_int_equal(get32(DAP + 12), 63);
	assert_int_equal(get64(DAP + 16), 100800);
	assert_int_equal(get16(DAP + 24), 512);
	assert_true(untouched(DAP + 0x1A, 64));
}

static void test_48h_1e(void **state)
{
	(void)state;
	mkdisk(0, 100800, 0);
	add(0, 0, 0x80);
	put16(DAP, 0x1D);  /* not enough for the DPTE pointer: 1Ah filled */
	assert_int_equal(AH(call(0x48, 0, 0x80)), 0);
	assert_int_equal(get16(DAP), 0x1A);
	assert_true(untouched(DAP + 0x1A, 64));
	put16(DAP, 0x1E);
	assert_int_equal(AH(call(0x48, 0, 0x80)), 0);
	assert_int_equal(get16(DAP), 0x1E);
	assert_int_equal(get32(DAP + 0x1A), 0xFFFFFFFFu);  /* no DPTE */
	assert_true(untouched(DAP + 0x1E, 64));
	/* 1Eh..41h: still the 2.x answer. */
	memset(lin(DAP), FILL, 128);
	put16(DAP, 0x41);
	assert_int_equal(AH(call(0x48, 0, 0x80)), 0);
	assert_int_equal(get16(DAP), 0x1E);
	assert_true(untouched(DAP + 0x1E, 64));
}

static void test_48h_42(void **state)
{
	(void)state;
	mkdisk(0, 100800, 0);
	add(0, 0, 0x80);
	put16(DAP, 0x4A);  /* a T13-sized buffer: we fill the 42h-byte Phoenix layout */
	struct rm_regs r = call(0x48, 0, 0x80);
	assert_status(r, 0, 0x80);
	assert_int_equal(get16(DAP), 0x42);
	assert_int_equal(get64(DAP + 16), 100800);
	assert_int_equal(get32(DAP + 0x1A), 0xFFFFFFFFu);
	assert_int_equal(get16(DAP + 0x1E), 0xBEDD);
	assert_int_equal(gmem[DAP + 0x20], 0x24);
	assert_memory_equal(lin(DAP + 0x24), "ISA ", 4);
	assert_memory_equal(lin(DAP + 0x28), "ATA     ", 8);
	uint8_t sum = 0;
	for (uint32_t i = 0x1E; i < 0x42; i++)
		sum = (uint8_t)(sum + gmem[DAP + i]);
	assert_int_equal(sum, 0);
	assert_true(untouched(DAP + 0x42, 64));
}

static void test_48h_small_and_big(void **state)
{
	(void)state;
	mkdisk(0, 20000000, 0);
	add(0, 0, 0x80);
	put16(DAP, 0x19);
	struct rm_regs r = call(0x48, 0, 0x80);
	assert_status(r, 0x01, 0x80);
	assert_int_equal(get16(DAP), 0x19);
	assert_true(untouched(DAP + 2, 64));
	/* Above 15,482,880 sectors: CHS not valid, 64-bit count still exact. */
	put16(DAP, 0x1A);
	r = call(0x48, 0, 0x80);
	assert_status(r, 0, 0x80);
	assert_int_equal(get16(DAP + 2), 0x0001);
	assert_int_equal(get32(DAP + 4), 0x3FFF);
	assert_int_equal(get32(DAP + 8), 255);
	assert_int_equal(get32(DAP + 12), 63);
	assert_int_equal(get64(DAP + 16), 20000000);
	/* Beyond 32 bits. */
	int13_init(0);
	mkdisk(1, (1ull << 33) + 7, 0);
	add(1, 0, 0x80);
	put16(DAP, 0x1A);
	assert_int_equal(AH(call(0x48, 0, 0x80)), 0);
	assert_int_equal(get64(DAP + 16), (1ull << 33) + 7);
	/* Exactly at the limit: valid. */
	int13_init(0);
	mkdisk(2, 15482880, 0);
	add(2, 0, 0x80);
	put16(DAP, 0x1A);
	assert_int_equal(AH(call(0x48, 0, 0x80)), 0);
	assert_int_equal(get16(DAP + 2), 0x0003);
	/* The buffer header itself in refused memory: 01h. */
	prot_lo = DAP;
	prot_hi = DAP + 1;
	assert_int_equal(AH(call(0x48, 0, 0x80)), 0x01);
}

/* 08h, 15h and 48h describe the same disk. */
static void test_08h_15h_48h_agree(void **state)
{
	(void)state;
	uint64_t sizes[] = { 500, 2048, 100800, 604800, 1032191, 1032192, 15482880, 20000000 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int13_init(0);
		mkdisk(0, sizes[i], 0);
		add(0, 0, 0x80);
		struct rm_regs g = call(0x08, 0, 0x80);
		uint32_t maxcyl = (uint8_t)(g.ecx >> 8) | (((uint8_t)g.ecx & 0xC0u) << 2);
		uint32_t spt = g.ecx & 0x3F, heads = (uint8_t)(g.edx >> 8) + 1u;
		struct rm_regs s = call(0x15, 0, 0x80);
		uint32_t total = (uint32_t)(uint16_t)s.ecx << 16 | (uint16_t)s.edx;
		put16(DAP, 0x1A);
		assert_int_equal(AH(call(0x48, 0, 0x80)), 0);
		assert_int_equal(get32(DAP + 8), heads);
		assert_int_equal(get32(DAP + 12), spt);
		assert_int_equal(get64(DAP + 16), total);
		if (get16(DAP + 2) & 2)
			assert_int_equal(get32(DAP + 4), maxcyl + 1);
		/* The CHS space never exceeds the disk. */
		assert_true((uint64_t)(maxcyl + 1) * heads * spt <= sizes[i]);
	}
}

/* ------------------------------------------------------------ CHS */

static void test_02h_corners(void **state)
{
	(void)state;
	mkdisk(0, 100800, 0);  /* 16x63x100 */
	add(0, 0, 0x80);
	struct rm_regs r = chs(0x02, 1, 99, 15, 63);   /* last sector of the disk */
	assert_status(r, 0, 0x80);
	assert_int_equal(AL(r), 1);
	assert_true(is_sector(lin(BUF), 100799));
	assert_true(untouched(BUF + 512, 512));
	r = chs(0x02, 3, 0, 0, 62);                    /* head wrap: 61, 62 | 63 */
	assert_int_equal(AH(r), 0);
	assert_int_equal(AL(r), 3);
	for (uint32_t i = 0; i < 3; i++)
		assert_true(is_sector(lin(BUF + 512 * i), 61 + i));
	r = chs(0x02, 2, 4, 15, 63);                   /* cylinder wrap: (4,15,63) then (5,0,1) */
	assert_int_equal(AH(r), 0);
	assert_true(is_sector(lin(BUF), (4 * 16 + 15) * 63 + 62));
	assert_true(is_sector(lin(BUF + 512), 5 * 16 * 63));
	r = chs(0x02, 128, 0, 0, 1);                   /* 128 sectors: a full 64 KiB */
	assert_int_equal(AH(r), 0);
	assert_int_equal(AL(r), 128);
	assert_true(is_sector(lin(BUF + 127 * 512), 127));
	assert_true(untouched(BUF + 128 * 512, 16));

	/* Cylinder bits 8-9 from CL[7:6]. */
	int13_init(0);
	mkdisk(1, 604800, 0);  /* 16x63x600 */
	add(1, 0, 0x80);
	r = chs(0x02, 1, 0x22C, 2, 5);
	assert_int_equal(AH(r), 0);
	assert_true(is_sector(lin(BUF), (0x22C * 16 + 2) * 63 + 4));
	r = chs(0x02, 1, 599, 15, 63);
	assert_int_equal(AH(r), 0);
	assert_true(is_sector(lin(BUF), 604799));
}

/* A buffer reaching past 1 MiB in seg:off terms is used as linear memory (A20 on). */
static void test_02h_above_1m(void **state)
{
	(void)state;
	mkdisk(0, 100800, 0);
	add(0, 0, 0x80);
	struct rm_regs r = mkregs(0x0202, 0xFF00, 0x0001, 0x0080);
	r.es = 0xFFFF;  /* FFFF:FF00 = 10FEF0h; 2 sectors end at 1100F0h */
	int13_handle(&r);
	assert_int_equal(AH(r), 0);
	assert_true(is_sector(lin(0x10FEF0), 0));
	assert_true(is_sector(lin(0x10FEF0 + 512), 1));
	assert_true(untouched(0xFEF0, 1024));  /* no 20-bit wrap */
}

static void test_02h_errors(void **state)
{
	(void)state;
	mkdisk(0, 100800, 0);
	struct int13_drive *d = add(0, 0, 0x80);
	struct rm_regs r;
	r = chs(0x02, 1, 100, 0, 1);           /* cylinder >= cylinders */
	assert_status(r, 0x04, 0x80);
	assert_int_equal(AL(r), 0);
	r = chs(0x02, 1, 0, 16, 1);            /* head >= heads */
	assert_status(r, 0x04, 0x80);
	r = chs(0x02, 2, 99, 15, 63);          /* runs past the end */
	assert_status(r, 0x04, 0x80);
	assert_int_equal(AL(r), 0);
	r = chs(0x02, 1, 0, 0, 0);             /* sector 0 */
	assert_status(r, 0x01, 0x80);
	r = chs(0x02, 0, 0, 0, 1);             /* count 0 */
	assert_status(r, 0x01, 0x80);
	r = chs(0x02, 129, 0, 0, 1);           /* count > 128 */
	assert_status(r, 0x01, 0x80);
	assert_true(untouched(BUF, 130 * 512));
	/* sector > spt on a 32-spt geometry. */
	d->spt = 32;
	d->cylinders = (uint16_t)(100800 / (16 * 32));
	r = chs(0x02, 1, 0, 0, 33);
	assert_status(r, 0x04, 0x80);
	r = chs(0x02, 1, 0, 0, 32);
	assert_status(r, 0, 0x80);
	assert_true(is_sector(lin(BUF), 31));
	/* 04h verify: range only, nothing moved into memory. */
	memset(lin(BUF), FILL, 1024);
	d->spt = 63;
	d->cylinders = 100;
	r = chs(0x04, 2, 0, 0, 1);
	assert_status(r, 0, 0x80);
	assert_int_equal(AL(r), 2);
	assert_true(untouched(BUF, 1024));
	r = chs(0x04, 2, 99, 15, 63);
	assert_status(r, 0x04, 0x80);
}

static void test_03h_write(void **state)
{
	(void)state;
	struct ramdev *f = mkdisk(0, 2016, 1);  /* 16x63x2 */
	add(0, 0, 0x80);
	memset(lin(BUF), 0x5A, 1024);
	struct rm_regs r = chs(0x03, 2, 1, 15, 62);  /* LBA 2014, 2015 */
	assert_status(r, 0, 0x80);
	assert_int_equal(AL(r), 2);
	assert_int_equal(f->data[2014 * 512], 0x5A);
	assert_int_equal(f->data[2016 * 512 - 1], 0x5A);
	assert_true(is_sector(f->data + 2013 * 512, 2013));
	r = chs(0x02, 1, 1, 15, 63);
	assert_int_equal(AH(r), 0);
	memset(lin(BUF + 512), 0x5A, 512);
	assert_memory_equal(lin(BUF), lin(BUF + 512), 512);
}

static void test_05h_format(void **state)
{
	(void)state;
	struct ramdev *f = mkdisk(0, 2016, 1);
	mkdisk(1, 2016, 1);
	add(0, 0, 0x80);
	add(1, 1, 0x81);
	struct rm_regs r = chs(0x05, 63, 1, 3, 1);
	assert_status(r, 0, 0x80);
	assert_int_equal(f->writes, 0);             /* nothing erased */
	assert_true(is_sector(f->data + (16 + 3) * 63 * 512, (16 + 3) * 63));
	r = chs(0x05, 63, 2, 0, 1);
	assert_status(r, 0x04, 0x80);
	r = mkregs(0x0500, 0, 0x0001, 0x0081);
	int13_handle(&r);
	assert_status(r, 0x03, 0x81);
}

/* ------------------------------------------------------------ extended */

static void test_42h_read(void **state)
{
	(void)state;
	mkdisk(0, 100800, 0);
	add(0, 0, 0x80);
	mkdap(0x10, 5, BUF_SEG, 0x0200, 100, 0);
	struct rm_regs r = ext(0x42, 0, 0x80);
	assert_status(r, 0, 0x80);
	assert_int_equal(DAP_COUNT(), 5);
	assert_true(untouched(BUF, 0x200));
	for (uint32_t i = 0; i < 5; i++)
		assert_true(is_sector(lin(BUF + 0x200 + 512 * i), 100 + i));
	assert_true(untouched(BUF + 0x200 + 5 * 512, 512));
	/* The last sector, and 127 sectors. */
	mkdap(0x10, 1, BUF_SEG, 0, 100799, 0);
	assert_int_equal(AH(ext(0x42, 0, 0x80)), 0);
	assert_true(is_sector(lin(BUF), 100799));
	mkdap(0x10, 127, BUF_SEG, 0, 1000, 0);
	assert_int_equal(AH(ext(0x42, 0, 0x80)), 0);
	assert_int_equal(DAP_COUNT(), 127);
	assert_true(is_sector(lin(BUF + 126 * 512), 1126));
}

static void test_42h_out_of_range(void **state)
{
	(void)state;
	mkdisk(0, 100800, 0);
	add(0, 0, 0x80);
	mkdap(0x10, 2, BUF_SEG, 0, 100799, 0);   /* second sector is past the end */
	struct rm_regs r = ext(0x42, 0, 0x80);
	assert_status(r, 0x04, 0x80);
	assert_int_equal(DAP_COUNT(), 0);
	assert_true(untouched(BUF, 1024));
	mkdap(0x10, 1, BUF_SEG, 0, 100800, 0);
	assert_status(ext(0x42, 0, 0x80), 0x04, 0x80);
	assert_int_equal(DAP_COUNT(), 0);
	mkdap(0x10, 1, BUF_SEG, 0, ~0ull, 0);    /* no wrap-around */
	assert_status(ext(0x42, 0, 0x80), 0x04, 0x80);
	assert_int_equal(DAP_COUNT(), 0);
	assert_true(untouched(BUF, 1024));
}

static void test_42h_flat(void **state)
{
	(void)state;
	mkdisk(0, 100800, 0);
	add(0, 0, 0x80);
	mkdap(0x18, 3, 0xFFFF, 0xFFFF, 500, 0x200000);
	struct rm_regs r = ext(0x42, 0, 0x80);
	assert_status(r, 0, 0x80);
	assert_int_equal(DAP_COUNT(), 3);
	for (uint32_t i = 0; i < 3; i++)
		assert_true(is_sector(lin(0x200000 + 512 * i), 500 + i));
	assert_true(untouched(0x10FFEF, 3 * 512)); /* FFFF:FFFF itself not used */
	/* Above 4 GiB, or crossing it: refused. */
	mkdap(0x18, 1, 0xFFFF, 0xFFFF, 0, 0x100000000ull);
	assert_status(ext(0x42, 0, 0x80), 0x01, 0x80);
	assert_int_equal(DAP_COUNT(), 0);
	mkdap(0x18, 1, 0xFFFF, 0xFFFF, 0, 0xFFFFFF00ull);
	assert_status(ext(0x42, 0, 0x80), 0x01, 0x80);
	/* Flat field present but seg:off is not FFFF:FFFF: seg:off wins. */
	mkdap(0x18, 1, BUF_SEG, 0, 7, 0x300000);
	assert_int_equal(AH(ext(0x42, 0, 0x80)), 0);
	assert_true(is_sector(lin(BUF), 7));
	assert_true(untouched(0x300000, 512));
	/* A 10h DAP with FFFF:FFFF is a real-mode address (10FFEFh). */
	mkdap(0x10, 1, 0xFFFF, 0xFFFF, 9, 0);
	assert_int_equal(AH(ext(0x42, 0, 0x80)), 0);
	assert_true(is_sector(lin(0x10FFEF), 9));
}

static void test_42h_params(void **state)
{
	(void)state;
	mkdisk(0, 100800, 0);
	add(0, 0, 0x80);
	mkdap(0x10, 0, BUF_SEG, 0, 5, 0);        /* count 0: nothing to do */
	struct rm_regs r = ext(0x42, 0, 0x80);
	assert_status(r, 0, 0x80);
	assert_int_equal(DAP_COUNT(), 0);
	assert_true(untouched(BUF, 512));
	mkdap(0x10, 128, BUF_SEG, 0, 5, 0);      /* count > 127 */
	r = ext(0x42, 0, 0x80);
	assert_status(r, 0x01, 0x80);
	assert_int_equal(DAP_COUNT(), 0);
	assert_true(untouched(BUF, 512));
	mkdap(0x0F, 1, BUF_SEG, 0, 5, 0);        /* DAP too small */
	r = ext(0x42, 0, 0x80);
	assert_status(r, 0x01, 0x80);
	assert_int_equal(DAP_COUNT(), 0);
	assert_true(untouched(BUF, 512));
	/* The DAP itself in refused memory. */
	mkdap(0x10, 1, BUF_SEG, 0, 5, 0);
	prot_lo = DAP + 8;
	prot_hi = DAP + 9;
	assert_status(ext(0x42, 0, 0x80), 0x01, 0x80);
	assert_int_equal(DAP_COUNT(), 1);        /* not writable, so not written */
	assert_true(untouched(BUF, 512));
}

static void test_protected_buffer(void **state)
{
	(void)state;
	mkdisk(0, 100800, 0);
	add(0, 0, 0x80);
	prot_lo = 0x9F000;
	prot_hi = 0xA0000;
	/* 42h ending one byte into the refused range. */
	mkdap(0x10, 4, 0x9E80, 0x0001, 0, 0);   /* 9E801h + 800h = 9F001h */
	struct rm_regs r = ext(0x42, 0, 0x80);
	assert_status(r, 0x01, 0x80);
	assert_int_equal(DAP_COUNT(), 0);
	assert_true(untouched(0x9E801, 0x7FF));
	assert_true(untouched(0x9F000, 0x1000));
	/* 02h into it. */
	r = mkregs(0x0201, 0, 0x0001, 0x0080);
	r.es = 0x9F00;
	int13_handle(&r);
	assert_status(r, 0x01, 0x80);
	assert_int_equal(AL(r), 0);
	assert_true(untouched(0x9F000, 0x1000));
	/* Just below it: fine. */
	mkdap(0x10, 4, 0x9E80, 0x0000, 0, 0);
	assert_status(ext(0x42, 0, 0x80), 0, 0x80);
	assert_true(is_sector(lin(0x9EE00), 3));
	assert_true(untouched(0x9F000, 0x1000));
}

static void test_43h_write_read(void **state)
{
	(void)state;
	struct ramdev *f = mkdisk(0, 2048, 1);
	add(0, 0, 0x80);
	for (uint32_t i = 0; i < 3 * 512; i++)
		gmem[BUF + i] = (uint8_t)(i * 7 + 1);
	mkdap(0x10, 3, BUF_SEG, 0, 1000, 0);
	struct rm_regs r = ext(0x43, 0, 0x80);
	assert_status(r, 0, 0x80);
	assert_int_equal(DAP_COUNT(), 3);
	assert_memory_equal(f->data + 1000 * 512, lin(BUF), 3 * 512);
	assert_true(is_sector(f->data + 999 * 512, 999));
	assert_true(is_sector(f->data + 1003 * 512, 1003));
	/* Read back through 42h into another buffer. */
	mkdap(0x10, 3, 0x2000, 0, 1000, 0);
	assert_int_equal(AH(ext(0x42, 0, 0x80)), 0);
	assert_memory_equal(lin(0x20000), lin(BUF), 3 * 512);
	/* And through CHS 02h: LBA 1000 = C0 H15 S56. */
	r = mkregs(0x0201, 0, 0x0038, 0x0F80);
	r.es = 0x3000;
	int13_handle(&r);
	assert_int_equal(AH(r), 0);
	assert_memory_equal(lin(0x30000), lin(BUF), 512);
	/* AL = 1 and AL = 2 (verify) both write. */
	memset(lin(BUF), 0x11, 512);
	mkdap(0x10, 1, BUF_SEG, 0, 10, 0);
	assert_status(ext(0x43, 1, 0x80), 0, 0x80);
	assert_int_equal(f->data[10 * 512 + 511], 0x11);
	memset(lin(BUF), 0x22, 512);
	assert_status(ext(0x43, 2, 0x80), 0, 0x80);
	assert_int_equal(f->data[10 * 512 + 511], 0x22);
	/* Verify catches a device that drops writes. */
	f->drop_writes = 1;
	memset(lin(BUF), 0x33, 512);
	r = ext(0x43, 2, 0x80);
	assert_status(r, 0xCC, 0x80);
	assert_int_equal(DAP_COUNT(), 0);
}

static void test_43h_read_only(void **state)
{
	(void)state;
	struct ramdev *f = mkdisk(0, 2048, 1);
	struct ramdev *g = mkdisk(1, 2048, 1);
	g->blk.read_only = 1;
	add(0, 1, 0x80);                 /* read-only by request */
	add(1, 0, 0x81);                 /* read-only device */
	memset(lin(BUF), 0x77, 4 * 512);
	for (uint8_t dl = 0x80; dl <= 0x81; dl++) {
		mkdap(0x10, 4, BUF_SEG, 0, 20, 0);
		struct rm_regs r = ext(0x43, 0, dl);
		assert_status(r, 0x03, dl);
		assert_int_equal(DAP_COUNT(), 0);
		r = mkregs(0x0301, 0, 0x0001, dl);
		int13_handle(&r);
		assert_status(r, 0x03, dl);
		assert_int_equal(AL(r), 0);
	}
	assert_int_equal(f->writes + g->writes, 0);
	for (uint32_t i = 1; i < 2048; i++) {
		assert_true(is_sector(f->data + i * 512, i));
		assert_true(is_sector(g->data + i * 512, i));
	}
	/* Reads still work. */
	mkdap(0x10, 1, BUF_SEG, 0, 20, 0);
	assert_status(ext(0x42, 0, 0x80), 0, 0x80);
	assert_true(is_sector(lin(BUF), 20));
}

static void test_44h_47h(void **state)
{
	(void)state;
	mkdisk(0, 100800, 0);
	add(0, 0, 0x80);
	mkdap(0x10, 100, BUF_SEG, 0, 100700, 0);
	struct rm_regs r = ext(0x44, 0, 0x80);
	assert_status(r, 0, 0x80);
	assert_int_equal(DAP_COUNT(), 100);
	assert_true(untouched(BUF, 512));
	mkdap(0x10, 101, BUF_SEG, 0, 100700, 0);
	assert_status(ext(0x44, 0, 0x80), 0x04, 0x80);
	assert_int_equal(DAP_COUNT(), 0);
	mkdap(0x10, 9, BUF_SEG, 0, 100799, 0);
	assert_status(ext(0x47, 0, 0x80), 0, 0x80);
	assert_int_equal(DAP_COUNT(), 9);          /* seek leaves the count */
	mkdap(0x10, 9, BUF_SEG, 0, 100800, 0);
	assert_status(ext(0x47, 0, 0x80), 0x04, 0x80);
	mkdap(0x0F, 9, BUF_SEG, 0, 0, 0);
	assert_status(ext(0x47, 0, 0x80), 0x01, 0x80);
}

static void test_io_errors(void **state)
{
	(void)state;
	struct ramdev *f = mkdisk(0, 2048, 1);
	add(0, 0, 0x80);
	f->fail_io = 1;
	mkdap(0x10, 4, BUF_SEG, 0, 8, 0);
	struct rm_regs r = ext(0x42, 0, 0x80);
	assert_status(r, 0x20, 0x80);
	assert_int_equal(DAP_COUNT(), 0);
	r = chs(0x02, 4, 0, 0, 1);
	assert_status(r, 0x20, 0x80);
	assert_int_equal(AL(r), 0);
	mkdap(0x10, 4, BUF_SEG, 0, 8, 0);
	assert_status(ext(0x43, 0, 0x80), 0x20, 0x80);
	assert_status(call(0x00, 0, 0x80), 0x20, 0x80);   /* reset flushes */
	f->fail_io = 0;
	f->nospace = 1;
	mkdap(0x10, 4, BUF_SEG, 0, 8, 0);
	assert_status(ext(0x43, 0, 0x80), 0xCC, 0x80);
	assert_int_equal(DAP_COUNT(), 0);
	f->nospace = 0;
	assert_status(ext(0x43, 0, 0x80), 0, 0x80);
}

/* A disk that speaks INT 13h statuses (the BIOS backend) has its own status passed on; a stale one is not. */
static void test_io_error_bios_status(void **state)
{
	(void)state;
	struct ramdev *f = mkdisk(0, 2048, 1);
	add(0, 0, 0x80);
	f->fail_reads = 1;
	f->fail_status = 0x0C;
	mkdap(0x10, 4, BUF_SEG, 0, 8, 0);
	assert_status(ext(0x42, 0, 0x80), 0x0C, 0x80);
	assert_status(chs(0x02, 4, 0, 0, 1), 0x0C, 0x80);
	f->fail_status = 0;
	disk_note_status(0x40);                    /* noted by something before this call: not passed on */
	mkdap(0x10, 4, BUF_SEG, 0, 8, 0);
	assert_status(ext(0x42, 0, 0x80), 0x20, 0x80);
	f->fail_reads = 0;
	mkdap(0x10, 4, BUF_SEG, 0, 8, 0);
	assert_status(ext(0x42, 0, 0x80), 0, 0x80);
}

static void test_reset_flush(void **state)
{
	(void)state;
	struct ramdev *f = mkdisk(0, 2048, 1);
	struct ramdev *g = mkdisk(1, 2048, 1);
	add(0, 0, 0x80);
	add(1, 1, 0x81);
	assert_status(call(0x00, 0, 0x80), 0, 0x80);
	assert_int_equal(f->flushes, 1);
	assert_status(call(0x0D, 0, 0x80), 0, 0x80);
	assert_int_equal(f->flushes, 2);
	assert_status(call(0x00, 0, 0x81), 0, 0x81);
	assert_int_equal(g->flushes, 0);           /* nothing to flush on a read-only drive */
	f->blk.flush = NULL;
	assert_status(call(0x00, 0, 0x80), 0, 0x80);
}

/* ------------------------------------------------------------ the rest of the table */

static void test_simple_functions(void **state)
{
	(void)state;
	mkdisk(0, 2048, 0);
	add(0, 0, 0x80);
	static const uint8_t ok[] = { 0x09, 0x0C, 0x10, 0x11, 0x14, 0x45, 0x49 };
	for (size_t i = 0; i < sizeof(ok); i++) {
		gmem[BDA_LAST_STATUS] = 0x55;
		assert_status(call(ok[i], 0, 0x80), 0, 0x80);
	}
	assert_status(call(0x16, 0, 0x80), 0x01, 0x80);
	assert_status(call(0x46, 0, 0x80), 0xB2, 0x80);
	static const uint8_t al_ok[] = { 0x01, 0x03, 0x04, 0x06 };
	for (size_t i = 0; i < sizeof(al_ok); i++)
		assert_status(call(0x4E, al_ok[i], 0x80), 0, 0x80);
	assert_status(call(0x4E, 0x02, 0x80), 0x01, 0x80);
}

static void test_unknown_functions(void **state)
{
	(void)state;
	mkdisk(0, 2048, 0);
	add(0, 0, 0x80);
	static const uint8_t bad[] = { 0x06, 0x07, 0x0A, 0x0B, 0x12, 0x17, 0x18, 0x21, 0x40, 0x4A, 0x4B, 0x4D, 0x50, 0xFF };
	for (size_t i = 0; i < sizeof(bad); i++) {
		struct rm_regs r = mkregs((uint16_t)(bad[i] << 8 | 0x12), 0x3456, 0x789A, 0x0080);
		int13_handle(&r);
		assert_status(r, 0x01, 0x80);
		assert_int_equal(AL(r), 0x12);            /* nothing else touched */
		assert_int_equal(r.ebx, 0xB6B63456u);
		assert_int_equal(r.ecx, 0xC7C7789Au);
		assert_int_equal(r.edx, 0xD8D80080u);
	}
}

/* CF, AH, 40:74 and 01h stay consistent across a sequence of calls. */
static void test_status_sequence(void **state)
{
	(void)state;
	mkdisk(0, 2048, 0);
	mkdisk(1, 2048, 0);
	add(0, 0, 0x80);
	add(1, 0, 0x81);
	assert_status(call(0x50, 0, 0x80), 0x01, 0x80);
	/* A successful call on the other drive writes the BDA; 01h on 80h still reports 80h's error. */
	struct rm_regs r = call(0x10, 0, 0x81);
	assert_int_equal(AH(r), 0);
	assert_int_equal(gmem[BDA_LAST_STATUS], 0);
	struct rm_regs s = call(0x01, 0, 0x80);
	assert_int_equal(AH(s), 0x01);
	assert_true(CF(s));
	/* Repeated 01h keep it. */
	s = call(0x01, 0, 0x80);
	assert_int_equal(AH(s), 0x01);
	/* 41h (AH=30h) and 15h (AH=03h) record success. */
	r = mkregs(0x4100, 0x55AA, 0, 0x80);
	int13_handle(&r);
	assert_false(CF(r));
	s = call(0x01, 0, 0x80);
	assert_int_equal(AH(s), 0);
	assert_false(CF(s));
	mkdap(0x10, 1, BUF_SEG, 0, 4096, 0);
	assert_status(ext(0x42, 0, 0x80), 0x04, 0x80);
	assert_status(call(0x08, 0, 0x80), 0, 0x80);
	/* BDA not reachable: the call still works. */
	prot_lo = BDA_LAST_STATUS;
	prot_hi = BDA_LAST_STATUS + 1;
	r = call(0x50, 0, 0x80);
	assert_int_equal(AH(r), 0x01);
	assert_int_equal(int13_get_drive(0x80)->last_status, 0x01);
}

static struct rm_regs trace_in, trace_out;
static int trace_calls;

static void trace(const struct rm_regs *in, const struct rm_regs *out)
{
	trace_in = *in;
	trace_out = *out;
	trace_calls++;
}

static void test_trace_hook(void **state)
{
	(void)state;
	mkdisk(0, 2048, 0);
	add(0, 0, 0x80);
	trace_calls = 0;
	int13_trace_hook = trace;
	struct rm_regs r = call(0x50, 0x12, 0x80);
	assert_int_equal(trace_calls, 1);
	assert_int_equal(AH(trace_in), 0x50);
	assert_int_equal(AL(trace_in), 0x12);
	assert_int_equal(AH(trace_out), 0x01);
	assert_memory_equal(&trace_out, &r, sizeof(r));
	int13_trace_hook = NULL;
	call(0x50, 0, 0x80);
	assert_int_equal(trace_calls, 1);
}

/* ------------------------------------------------------------ geometry */

/* Set MBR entry i: boot flag 0, type, CHS start/end, LBA start and count. */
static void mbr_entry(uint8_t *mbr, int i, uint8_t type, uint32_t sc, uint32_t sh, uint32_t ss,
		      uint32_t ec, uint32_t eh, uint32_t es, uint32_t lba, uint32_t count)
{
	uint8_t *e = mbr + 446 + 16 * i;
	e[0] = 0;
	e[1] = (uint8_t)sh;
	e[2] = (uint8_t)(ss | ((sc >> 2) & 0xC0));
	e[3] = (uint8_t)sc;
	e[4] = type;
	e[5] = (uint8_t)eh;
	e[6] = (uint8_t)(es | ((ec >> 2) & 0xC0));
	e[7] = (uint8_t)ec;
	memcpy(e + 8, &lba, 4);
	memcpy(e + 12, &count, 4);
	mbr[510] = 0x55;
	mbr[511] = 0xAA;
}

static void geom(uint64_t n, const uint8_t *mbr, unsigned c, unsigned h, unsigned s)
{
	uint16_t cyl = 0, heads = 0;
	uint8_t spt = 0;
	int13_geometry(n, mbr, &cyl, &heads, &spt);
	assert_int_equal(heads, h);
	assert_int_equal(spt, s);
	assert_int_equal(cyl, c);
}

static void test_geometry_defaults(void **state)
{
	(void)state;
	uint8_t blank[512] = { 0 };
	geom(2000000, NULL, 124, 255, 63);
	geom(2000000, blank, 124, 255, 63);
	blank[510] = 0x55;
	blank[511] = 0xAA;                          /* signature, no partitions */
	geom(2000000, blank, 124, 255, 63);
	geom(1032192, blank, 64, 255, 63);          /* 1024x16x63: 255 heads from here */
	geom(1032191, blank, 1023, 16, 63);
	geom(1008, blank, 1, 16, 63);
	geom(1007, blank, 1, 15, 63);               /* tiny: fewer heads */
	geom(63, blank, 1, 1, 63);
	geom(10, blank, 1, 1, 10);
	geom(1ull << 40, blank, 65535, 255, 63);    /* cylinders clamp to 16 bits */
}

static void test_geometry_mbr_16x63(void **state)
{
	(void)state;
	uint8_t mbr[512] = { 0 };
	/* DOS-style 16x63 table on a disk whose default would be 255x63. */
	mbr_entry(mbr, 0, 0x06, 0, 1, 1, 99, 15, 63, 63, 100800 - 63);
	mbr_entry(mbr, 1, 0x05, 100, 0, 1, 999, 15, 63, 100800, 1008000 - 100800);
	geom(2000000, mbr, 1984, 16, 63);
	/* A third partition beyond CHS (1023/254/63 marker) does not spoil it. */
	mbr_entry(mbr, 2, 0x0C, 1000, 0, 1, 1023, 254, 63, 1008000, 2000000 - 1008000);
	geom(2000000, mbr, 1984, 16, 63);
	/* Through int13_add_drive: 08h reports it. */
	struct ramdev *f = mkdisk(0, 4032, 1);
	uint8_t small[512] = { 0 };
	mbr_entry(small, 0, 0x06, 0, 1, 1, 3, 3, 63, 63, 4 * 4 * 63 - 63);  /* 4 heads x 63 */
	memcpy(f->data, small, 512);
	add(0, 0, 0x80);
	struct rm_regs r = call(0x08, 0, 0x80);
	assert_int_equal((uint8_t)(r.edx >> 8), 3);
	assert_int_equal((uint8_t)r.ecx, 63);
	assert_int_equal((uint8_t)(r.ecx >> 8), 15);   /* 4032 / 252 = 16 cylinders */
}

static void test_geometry_mbr_other(void **state)
{
	(void)state;
	uint8_t mbr[512] = { 0 };
	/* Modern 1 MiB-aligned table written with 255x63 CHS on a disk whose default is 16x63. */
	mbr_entry(mbr, 0, 0x83, 0, 32, 33, 31, 31, 32, 2048, 500000 - 2048);
	/* LBA 2048 = C0 H32 S33 and 499999 = C31 H31 S32 under 255x63; the ends claim 32x32, which fails. */
	assert_int_equal((31 * 255 + 31) * 63 + 31, 499999);
	geom(500000, mbr, 31, 255, 63);
	/* Inconsistent CHS/LBA: ignored, default used. */
	memset(mbr, 0, sizeof(mbr));
	mbr_entry(mbr, 0, 0x83, 0, 1, 1, 50, 200, 10, 63, 12345);
	geom(500000, mbr, 496, 16, 63);
	/* A FAT boot sector (not a partition table) is not read as one. */
	memset(mbr, 0, sizeof(mbr));
	mbr_entry(mbr, 0, 0x06, 0, 1, 1, 99, 15, 63, 63, 100800 - 63);
	mbr[446] = 0x3C;
	geom(2000000, mbr, 124, 255, 63);
	/* 64x32 (older tools and many USB sticks). */
	memset(mbr, 0, sizeof(mbr));
	mbr_entry(mbr, 0, 0x06, 0, 1, 1, 199, 63, 32, 32, 200 * 64 * 32 - 32);
	geom(2000000, mbr, 976, 64, 32);
}

/* The one function list: names for the trace, "other" for what we refuse. */
static void test_fn_names(void **state)
{
	(void)state;
	assert_string_equal(int13_fn_name(0x42), "ext-read");
	assert_string_equal(int13_fn_name(0x02), "read");
	assert_string_equal(int13_fn_name(0x4E), "hwconfig");
	assert_string_equal(int13_fn_name(0x07), "other");
	assert_string_equal(int13_fn_name(0xFF), "other");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_drive_table),
		T(test_fn_names),
		T(test_not_our_drive),
		T(test_41h),
		T(test_15h),
		T(test_08h_sizes),
		T(test_08h_two_drives),
		T(test_48h_1a),
		T(test_48h_1e),
		T(test_48h_42),
		T(test_48h_small_and_big),
		T(test_08h_15h_48h_agree),
		T(test_02h_corners),
		T(test_02h_above_1m),
		T(test_02h_errors),
		T(test_03h_write),
		T(test_05h_format),
		T(test_42h_read),
		T(test_42h_out_of_range),
		T(test_42h_flat),
		T(test_42h_params),
		T(test_protected_buffer),
		T(test_43h_write_read),
		T(test_43h_read_only),
		T(test_44h_47h),
		T(test_io_errors),
		T(test_io_error_bios_status),
		T(test_reset_flush),
		T(test_simple_functions),
		T(test_unknown_functions),
		T(test_status_sequence),
		T(test_trace_hook),
		T(test_geometry_defaults),
		T(test_geometry_mbr_16x63),
		T(test_geometry_mbr_other),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
