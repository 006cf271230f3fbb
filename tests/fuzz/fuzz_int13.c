/* fuzz_int13.c: libFuzzer target: random INT 13h call sequences against kernel/int13*.c (hosted) and an independent reference model; any difference in registers, CF, guest memory or disk data traps. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_common.h"
#include "../../kernel/int13.h"
#include "../../kernel/guestmem.h"
#include "../../block/disk.h"      /* disk_note_status: the BIOS backend's way to pass its status up */

/*
 * The world of one input: one drive 80h (RAM disk: backed sectors, then a
 * computed pattern on "large" read-only disks), up to 7 BIOS disks behind it,
 * and a fake guest memory of GMEM_SIZE bytes with two forbidden ranges (our
 * low stub and the resident region). The handler runs on (gm, real disk),
 * the model on (mm, model disk); both start equal and must stay equal.
 *
 * The model is written from the status table in kernel/int13.c (SeaBIOS's
 * codes except where that table says otherwise: 04h for CHS/LBA ranges, 20h
 * for I/O errors), not from the handlers' code; the BIOS geometry comes from
 * the drive table (int13_geom.c has its own unit tests).
 */

#define GMEM_SIZE 0x140000u            /* 1.25 MiB: all of real mode plus flat buffers above it */
#define FORBID1_LO 0x9E000u            /* "low stub": below the EBDA, as the firmware takes it */
#define FORBID1_HI 0xA0000u
#define FORBID2_LO 0x110000u           /* "resident region" just above what seg:off reaches */
#define FORBID2_HI 0x120000u
#define BDA_STATUS 0x474u
#define BACKED_MAX 2048u               /* backed sectors at most (1 MiB per copy) */
#define MAX_CALLS 64u
#define EDD_CHS_LIMIT 15482880u

static uint8_t *gm, *mm;               /* guest memory seen by the handler / by the model */

/* The handler's gate to guest memory: NULL beyond GMEM_SIZE or overlapping a forbidden range. */
void *guestmem_ptr(uint32_t linear, uint32_t bytes)
{
	uint64_t end = (uint64_t)linear + bytes;
	if (end > GMEM_SIZE)
		return NULL;
	if ((linear < FORBID1_HI && end > FORBID1_LO) || (linear < FORBID2_HI && end > FORBID2_LO))
		return NULL;
	return gm + linear;
}

void guestmem_forbid(uint32_t base, uint32_t len, const char *what)
{
	(void)base; (void)len; (void)what;
	__builtin_trap();                  /* the INT 13h layer never forbids memory itself */
}

/* The model's own check of the same rule, written out separately. */
static int m_ok(uint64_t linear, uint64_t bytes)
{
	if (linear + bytes > GMEM_SIZE)
		return 0;
	if (linear + bytes > FORBID1_LO && linear < FORBID1_HI)
		return 0;
	if (linear + bytes > FORBID2_LO && linear < FORBID2_HI)
		return 0;
	return 1;
}

/* Initial guest memory byte at a: a pattern that no disk sector repeats. */
static uint8_t mem_pat(uint32_t a)
{
	return (uint8_t)(a * 131u + (a >> 9) + 0x5A);
}

/* Initial content of sector lba (unbacked sectors keep it): its LBA in the first 8 bytes, then a fixed filler. */
static void disk_pat(uint64_t lba, uint8_t *out)
{
	for (uint32_t i = 8; i < BLK_SECTOR; i++)
		out[i] = (uint8_t)(i * 13u + 1);
	memcpy(out, &lba, 8);
}

static uint8_t *mem_init, *disk_init;  /* the initial guest memory and the first BACKED_MAX sectors, computed once */

/* ------------------------------------------------------------------ the disks */

struct mdisk {
	struct blk_dev blk;
	uint64_t sectors;
	uint32_t backed;
	uint8_t *data;                     /* backed * 512 */
};

static struct mdisk real_disk, model_disk;

/*
 * Fault injection, set from sector 0's first bytes (boot code, which the
 * geometry ignores): with byte 2 = FAULT_MAGIC, every device request that
 * covers sector (byte 0 | byte 1 << 8) fails with BLK_E_IO, after noting
 * byte 3 as the BIOS's own status (disk_note_status; 0 = none, so 20h).
 */
#define FAULT_MAGIC 0xBD
static int fault_on;
static uint64_t fault_lba;
static uint8_t fault_note;

/* Nonzero (and the status noted) when the request [lba, lba+count) hits the bad sector. */
static int rd_fault(uint64_t lba, uint32_t count)
{
	if (!fault_on || fault_lba < lba || fault_lba - lba >= count)
		return 0;
	if (fault_note)
		disk_note_status(fault_note);
	return 1;
}

static void mdisk_get(struct mdisk *m, uint64_t lba, uint8_t *out)
{
	if (lba < m->backed) {
		memcpy(out, m->data + lba * BLK_SECTOR, BLK_SECTOR);
		return;
	}
	disk_pat(lba, out);
}

/* The handler's device: every request must lie inside the disk. */
static int rd_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct mdisk *m = d->priv;
	if (count == 0 || lba >= m->sectors || count > m->sectors - lba)
		__builtin_trap();
	if (rd_fault(lba, count))
		return BLK_E_IO;
	for (uint32_t i = 0; i < count; i++)
		mdisk_get(m, lba + i, (uint8_t *)buf + (size_t)i * BLK_SECTOR);
	return BLK_OK;
}

/* Writes only reach backed sectors (large disks are read-only, so int13 refuses before the device). */
static int rd_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct mdisk *m = d->priv;
	if (count == 0 || lba >= m->sectors || count > m->sectors - lba || lba + count > m->backed)
		__builtin_trap();
	if (rd_fault(lba, count))
		return BLK_E_IO;
	memcpy(m->data + lba * BLK_SECTOR, buf, (size_t)count * BLK_SECTOR);
	return BLK_OK;
}

static int rd_flush(struct blk_dev *d)
{
	(void)d;
	return BLK_OK;
}

/* ------------------------------------------------------------------ the model */

struct model {
	int ro;
	uint32_t disks;                    /* ours + the BIOS's, for 08h DL */
	uint8_t last;                      /* last status of drive 80h */
	uint32_t cyls, heads, spt;         /* from the drive table */
};

static struct model M;

static uint16_t m_rd16(uint32_t a) { return (uint16_t)(mm[a] | mm[a + 1] << 8); }
static uint64_t m_rd64(uint32_t a)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | mm[a + i];
	return v;
}
static void m_wr(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

enum { OP_READ, OP_WRITE, OP_WRITE_VERIFY, OP_VERIFY };

/* A transfer of count sectors at lba with linear guest memory: returns the status, *moved the sectors moved. */
static uint8_t m_xfer(int op, uint64_t lba, uint32_t count, uint32_t linear, uint32_t *moved)
{
	*moved = 0;
	if (count == 0)
		return 0x00;
	if ((op == OP_WRITE || op == OP_WRITE_VERIFY) && M.ro)
		return 0x03;
	if (lba >= model_disk.sectors || count > model_disk.sectors - lba)
		return 0x04;
	if (op == OP_VERIFY) {
		*moved = count;
		return 0x00;
	}
	if (!m_ok(linear, (uint64_t)count * BLK_SECTOR))
		return 0x01;
	/* The device sees the request in pieces of max_count; the piece with the bad sector fails and ends it. */
	uint32_t piece = real_disk.blk.max_count ? real_disk.blk.max_count : count;
	for (uint32_t done = 0; done < count; done += piece) {
		uint32_t n = count - done < piece ? count - done : piece;
		if (fault_on && fault_lba >= lba + done && fault_lba < lba + done + n)
			return fault_note ? fault_note : 0x20;   /* moved stays 0: a failed request moved nothing */
		if (op == OP_READ) {
			for (uint32_t i = 0; i < n; i++)
				mdisk_get(&model_disk, lba + done + i, mm + linear + (size_t)(done + i) * BLK_SECTOR);
		} else {
			memmove(model_disk.data + (lba + done) * BLK_SECTOR, mm + linear + (size_t)done * BLK_SECTOR,
				(size_t)n * BLK_SECTOR);
		}
	}
	*moved = count;
	return 0x00;
}

static uint8_t m_chs(struct rm_regs *r, int op)
{
	uint32_t count = r->eax & 0xFF, cl = r->ecx & 0xFF;
	uint32_t sector = cl & 63, cyl = ((r->ecx >> 8) & 0xFF) | (cl & 0xC0) << 2, head = (r->edx >> 8) & 0xFF;
	uint32_t moved;
	r->eax &= ~0xFFu;
	if (count == 0 || count > 128 || sector == 0)
		return 0x01;
	if (sector > M.spt || head >= M.heads || cyl >= M.cyls)
		return 0x04;
	uint8_t st = m_xfer(op, ((uint64_t)cyl * M.heads + head) * M.spt + sector - 1, count,
			    (uint32_t)r->es * 16 + (r->ebx & 0xFFFF), &moved);
	r->eax |= moved & 0xFF;
	return st;
}

static uint8_t m_dap(struct rm_regs *r, int op)
{
	uint32_t at = (uint32_t)r->ds * 16 + (r->esi & 0xFFFF), moved = 0;
	uint8_t st;
	if (!m_ok(at, 16))
		return 0x01;
	uint8_t size = mm[at];
	uint16_t count = m_rd16(at + 2), off = m_rd16(at + 4), seg = m_rd16(at + 6);
	uint64_t lba = m_rd64(at + 8);
	uint32_t linear = (uint32_t)seg * 16 + off;
	if (size < 0x10 || count > 127) {
		st = 0x01;
	} else if (size >= 0x18 && seg == 0xFFFF && off == 0xFFFF) {
		if (!m_ok(at, 24))
			return 0x01;               /* the flat field is unreachable: the DAP is left alone */
		uint64_t flat = m_rd64(at + 16);
		if (flat + (uint64_t)count * BLK_SECTOR > 0x100000000ull)
			st = 0x01;
		else
			st = m_xfer(op, lba, count, (uint32_t)flat, &moved);
	} else {
		st = m_xfer(op, lba, count, linear, &moved);
	}
	m_wr(mm + at + 2, moved, 2);
	return st;
}

static uint8_t m_edd(struct rm_regs *r)
{
	uint32_t at = (uint32_t)r->ds * 16 + (r->esi & 0xFFFF);
	if (!m_ok(at, 2))
		return 0x01;
	uint16_t size = m_rd16(at);
	if (size < 0x1A)
		return 0x01;
	uint32_t fill = size >= 0x42 ? 0x42 : size >= 0x1E ? 0x1E : 0x1A;
	if (!m_ok(at, fill))
		return 0x01;
	uint8_t e[0x42];
	memset(e, 0, sizeof(e));
	int chs = model_disk.sectors <= EDD_CHS_LIMIT;
	m_wr(e + 0, fill, 2);
	m_wr(e + 2, chs ? 3 : 1, 2);
	m_wr(e + 4, chs ? M.cyls : 0x3FFF, 4);
	m_wr(e + 8, M.heads, 4);
	m_wr(e + 12, M.spt, 4);
	m_wr(e + 16, model_disk.sectors, 8);
	m_wr(e + 24, 512, 2);
	m_wr(e + 26, 0xFFFFFFFFu, 4);
	m_wr(e + 30, 0xBEDD, 2);
	e[32] = 0x42 - 0x1E;
	memcpy(e + 36, "ISA ATA     ", 12);
	uint8_t sum = 0;
	for (int i = 0x1E; i < 0x41; i++)
		sum = (uint8_t)(sum + e[i]);
	e[0x41] = (uint8_t)-sum;
	memcpy(mm + at, e, fill);
	return 0x00;
}

/* What the guest should see after the call r (registers, model memory and disk updated). */
static void m_call(struct rm_regs *r)
{
	uint8_t ah = (uint8_t)(r->eax >> 8), st;
	if ((r->edx & 0xFF) != 0x80) {
		st = 0x01;
		mm[BDA_STATUS] = st;
		goto status;
	}
	switch (ah) {
	case 0x00: case 0x0D: case 0x09: case 0x0C: case 0x10: case 0x11: case 0x14: case 0x45: case 0x49:
		st = 0x00; break;
	case 0x01:
		r->eax = (r->eax & ~0xFFFFu) | (uint32_t)M.last << 8 | M.last;
		r->flags = (uint16_t)((r->flags & ~1u) | (M.last != 0));
		return;
	case 0x02: st = m_chs(r, OP_READ); break;
	case 0x03: st = m_chs(r, OP_WRITE); break;
	case 0x04: st = m_chs(r, OP_VERIFY); break;
	case 0x05: {
		uint32_t cyl = ((r->ecx >> 8) & 0xFF) | (r->ecx & 0xC0) << 2, head = (r->edx >> 8) & 0xFF;
		st = M.ro ? 0x03 : (head >= M.heads || cyl >= M.cyls) ? 0x04 : 0x00;
		break;
	}
	case 0x08: {
		uint32_t c = (M.cyls > 1024 ? 1024 : M.cyls) - 1;
		r->eax &= ~0xFFFFu;
		r->ecx = (r->ecx & ~0xFFFFu) | (c & 0xFF) << 8 | (c >> 2 & 0xC0) | (M.spt & 0x3F);
		r->edx = (r->edx & ~0xFFFFu) | (M.heads - 1) << 8 | (M.disks > 255 ? 255 : M.disks);
		st = 0x00;
		break;
	}
	case 0x15: {
		uint32_t n = model_disk.sectors > 0xFFFFFFFFull ? 0xFFFFFFFFu : (uint32_t)model_disk.sectors;
		r->ecx = (r->ecx & ~0xFFFFu) | n >> 16;
		r->edx = (r->edx & ~0xFFFFu) | (n & 0xFFFF);
		r->eax = (r->eax & ~0xFF00u) | 0x0300;
		goto data_in_ah;
	}
	case 0x41:
		r->ebx = (r->ebx & ~0xFFFFu) | 0xAA55;
		r->ecx = (r->ecx & ~0xFFFFu) | 0x0005;
		r->eax = (r->eax & ~0xFF00u) | 0x3000;
		goto data_in_ah;
	case 0x42: st = m_dap(r, OP_READ); break;
	case 0x43: st = m_dap(r, (r->eax & 0xFF) == 2 ? OP_WRITE_VERIFY : OP_WRITE); break;
	case 0x44: st = m_dap(r, OP_VERIFY); break;
	case 0x46: st = 0xB2; break;
	case 0x47: {
		uint32_t at = (uint32_t)r->ds * 16 + (r->esi & 0xFFFF);
		st = !m_ok(at, 16) || mm[at] < 0x10 ? 0x01 : m_rd64(at + 8) < model_disk.sectors ? 0x00 : 0x04;
		break;
	}
	case 0x48: st = m_edd(r); break;
	case 0x4E: {
		uint8_t al = r->eax & 0xFF;
		st = (al == 1 || al == 3 || al == 4 || al == 6) ? 0x00 : 0x01;
		break;
	}
	default: st = 0x01; break;
	}
	M.last = st;
	mm[BDA_STATUS] = st;
status:
	r->eax = (r->eax & ~0xFF00u) | (uint32_t)st << 8;
	r->flags = (uint16_t)((r->flags & ~1u) | (st != 0));
	return;
data_in_ah:
	M.last = 0;
	mm[BDA_STATUS] = 0;
	r->flags &= (uint16_t)~1u;
}

/* ------------------------------------------------------------------ the input */

/* One call: registers, and optionally a DAP / EDD size word placed at DS:SI first. */
struct call_rec {
	uint32_t eax, ebx, ecx, edx, esi, edi;
	uint16_t ds, es;
	uint8_t steer;                     /* FUZZ_S_* */
	uint8_t dap[24];                   /* as placed */
} __attribute__((packed));

#define FUZZ_S_PLACE 0x01u             /* write dap[] at DS:SI (where memory allows) */
#define FUZZ_S_ANY_DRIVE 0x02u         /* keep DL as given (else 80h) */
#define FUZZ_S_KNOWN_FN 0x04u          /* AH from the list of functions we serve */
#define FUZZ_S_NEAR_LBA 0x08u          /* DAP LBA near the disk */
#define FUZZ_S_SMALL_COUNT 0x10u       /* DAP count and AL below 130 */
#define FUZZ_S_FLAT 0x20u              /* DAP with a flat address inside (or just past) guest memory */

static const uint8_t known_fns[] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x08, 0x09, 0x0C, 0x0D, 0x10, 0x11, 0x14, 0x15, 0x16,
	0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4E,
};
static const uint64_t large_sizes[] = { EDD_CHS_LIMIT, EDD_CHS_LIMIT + 1, 0xFFFFFFFFull, 0x100000001ull, 1ull << 40 };

static void check_forbidden(void)
{
	if (memcmp(gm + FORBID1_LO, mem_init + FORBID1_LO, FORBID1_HI - FORBID1_LO) != 0)
		__builtin_trap();              /* the handler wrote into our low stub */
	if (memcmp(gm + FORBID2_LO, mem_init + FORBID2_LO, FORBID2_HI - FORBID2_LO) != 0)
		__builtin_trap();              /* the handler wrote into the resident region */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	if (!gm) {
		gm = malloc(GMEM_SIZE);        /* exactly GMEM_SIZE: ASan sees any access past it */
		mm = malloc(GMEM_SIZE);
		real_disk.data = malloc((size_t)BACKED_MAX * BLK_SECTOR);
		model_disk.data = malloc((size_t)BACKED_MAX * BLK_SECTOR);
		mem_init = malloc(GMEM_SIZE);
		disk_init = malloc((size_t)BACKED_MAX * BLK_SECTOR);
		if (!gm || !mm || !real_disk.data || !model_disk.data || !mem_init || !disk_init)
			abort();
		for (uint32_t a = 0; a < GMEM_SIZE; a++)
			mem_init[a] = mem_pat(a);
		for (uint32_t s = 0; s < BACKED_MAX; s++)
			disk_pat(s, disk_init + (size_t)s * BLK_SECTOR);
	}
	memcpy(gm, mem_init, GMEM_SIZE);
	memcpy(mm, mem_init, GMEM_SIZE);

	uint8_t opts = data[0];
	uint16_t sz = (uint16_t)(data[1] | data[2] << 8);
	int large = (opts & 2) != 0;
	uint64_t sectors = large ? large_sizes[sz % 5] + (sz >> 3) % 3 : 1u + sz % BACKED_MAX;
	uint32_t backed = sectors < BACKED_MAX ? (uint32_t)sectors : BACKED_MAX;
	data += 3;
	size -= 3;

	memset(&real_disk.blk, 0, sizeof(real_disk.blk));
	real_disk.sectors = sectors;
	real_disk.backed = backed;
	memcpy(real_disk.data, disk_init, (size_t)backed * BLK_SECTOR);
	size_t mbr = size < BLK_SECTOR ? size : BLK_SECTOR;   /* sector 0 from the input: the geometry follows its table */
	memcpy(real_disk.data, data, mbr);
	fault_on = mbr >= 4 && data[2] == FAULT_MAGIC;
	fault_lba = mbr >= 4 ? (uint64_t)(data[0] | data[1] << 8) % (sectors + 1) : 0;
	fault_note = mbr >= 4 ? data[3] : 0;
	data += mbr;
	size -= mbr;
	real_disk.blk.name = "fuzz";
	real_disk.blk.sectors = sectors;
	real_disk.blk.size_bytes = sectors * BLK_SECTOR;
	real_disk.blk.max_sectors = sectors;
	real_disk.blk.max_count = (opts >> 5) & 7;   /* 0 = no limit; else blk splits by it */
	real_disk.blk.read = rd_read;
	real_disk.blk.write = rd_write;
	real_disk.blk.flush = rd_flush;
	real_disk.blk.priv = &real_disk;
	model_disk.sectors = sectors;
	model_disk.backed = backed;
	memcpy(model_disk.data, real_disk.data, (size_t)backed * BLK_SECTOR);

	int ro = (opts & 1) || large;
	int13_init((opts >> 2) & 7);
	if (int13_add_drive(&real_disk.blk, ro) != 0x80)
		__builtin_trap();
	struct int13_drive *d = int13_get_drive(0x80);
	if (!d || int13_get_drive(0x81) || d->sectors != sectors)
		__builtin_trap();
	if (d->spt < 1 || d->spt > 63 || d->heads < 1 || d->heads > 255 || d->cylinders < 1)
		__builtin_trap();              /* a geometry no guest can use */
	memset(&M, 0, sizeof(M));
	M.ro = ro;
	M.disks = 1 + ((opts >> 2) & 7);
	M.cyls = d->cylinders;
	M.heads = d->heads;
	M.spt = d->spt;

	for (uint32_t n = 0; n < MAX_CALLS && size >= sizeof(struct call_rec); n++) {
		struct call_rec c;
		memcpy(&c, data, sizeof(c));
		data += sizeof(c);
		size -= sizeof(c);
		if (!(c.steer & FUZZ_S_ANY_DRIVE))
			c.edx = (c.edx & ~0xFFu) | 0x80;
		if (c.steer & FUZZ_S_KNOWN_FN)
			c.eax = (c.eax & ~0xFF00u) | (uint32_t)known_fns[(c.eax >> 8 & 0xFF) % sizeof(known_fns)] << 8;
		if (c.steer & FUZZ_S_SMALL_COUNT) {
			c.eax = (c.eax & ~0xFFu) | (c.eax & 0xFF) % 130;
			uint16_t cnt = (uint16_t)((c.dap[2] | c.dap[3] << 8) % 130);
			c.dap[2] = (uint8_t)cnt;
			c.dap[3] = (uint8_t)(cnt >> 8);
		}
		if (c.steer & FUZZ_S_NEAR_LBA) {
			uint64_t lba;
			memcpy(&lba, c.dap + 8, 8);
			lba = sectors - 130 + lba % 260;   /* wraps below 0 on small disks: huge LBAs, also wanted */
			memcpy(c.dap + 8, &lba, 8);
		}
		if (c.steer & FUZZ_S_FLAT) {
			uint64_t flat;
			memcpy(&flat, c.dap + 16, 8);
			flat %= GMEM_SIZE + 0x20000;
			memcpy(c.dap + 16, &flat, 8);
			c.dap[4] = c.dap[5] = c.dap[6] = c.dap[7] = 0xFF;
			if (c.dap[0] < 0x18)
				c.dap[0] = 0x18;
		}
		uint32_t at = (uint32_t)c.ds * 16 + (c.esi & 0xFFFF);
		if ((c.steer & FUZZ_S_PLACE) && m_ok(at, sizeof(c.dap))) {
			memcpy(gm + at, c.dap, sizeof(c.dap));
			memcpy(mm + at, c.dap, sizeof(c.dap));
		}

		struct rm_regs real, model;
		memset(&real, 0, sizeof(real));
		real.eax = c.eax; real.ebx = c.ebx; real.ecx = c.ecx; real.edx = c.edx;
		real.esi = c.esi; real.edi = c.edi; real.ebp = c.eax ^ c.edi;
		real.ds = c.ds; real.es = c.es;
		real.flags = (uint16_t)(0x0202 | (c.steer >> 7));   /* IF set; CF as the caller left it */
		real.vector = 0x13;
		model = real;
		int13_handle(&real);
		m_call(&model);
		if (memcmp(&real, &model, sizeof(real)) != 0)
			__builtin_trap();          /* registers, status or CF differ from the model */
		if (gm[BDA_STATUS] != mm[BDA_STATUS] || d->last_status != M.last)
			__builtin_trap();          /* the stored status differs */
	}
	check_forbidden();
	if (memcmp(gm, mm, GMEM_SIZE) != 0)
		__builtin_trap();                  /* guest memory differs from the model */
	if (memcmp(real_disk.data, model_disk.data, (size_t)backed * BLK_SECTOR) != 0)
		__builtin_trap();                  /* disk data differs from the model */
	return 0;
}
