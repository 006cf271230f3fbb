/* int13_rw.c: INT 13h data functions: CHS (02h-05h) and DAP (42h-44h, 47h) requests checked against the drive and guest memory, then moved by blk_read/blk_write. */
#include <stddef.h>
#include <stdint.h>
#include "int13_priv.h"

/* Limits. */
#define INT13_CHS_MAX_COUNT 128u   /* AL for 02h-04h (SeaBIOS: one 64 KiB DMA window) */
#define INT13_DAP_MAX_COUNT 127u   /* DAP count for 42h-44h */

/* 43h AL. */
#define INT13_AL_VERIFY 0x02

/* FFFF:FFFF in a DAP buffer field means "use the 64-bit flat address". */
#define INT13_DAP_FLAT_MARK 0xFFFFu

/* Disk address packet (42h-44h, 47h) as the guest lays it out at DS:SI. */
struct int13_dap {
	uint8_t size;       /* 10h, or 18h with the flat address */
	uint8_t reserved;
	uint16_t count;     /* sectors; written back with the number moved */
	uint16_t buf_off;
	uint16_t buf_seg;
	uint64_t lba;
	uint64_t buf_flat;  /* only when size >= 18h and buf_seg:buf_off = FFFF:FFFF */
} __attribute__((packed));

#define INT13_DAP_SIZE_MIN 0x10u
#define INT13_DAP_SIZE_FLAT 0x18u
_Static_assert(offsetof(struct int13_dap, buf_flat) == INT13_DAP_SIZE_MIN, "DAP");
_Static_assert(sizeof(struct int13_dap) == INT13_DAP_SIZE_FLAT, "DAP with flat address");

/* Transfer kinds. */
enum int13_op { INT13_OP_READ, INT13_OP_WRITE, INT13_OP_WRITE_VERIFY, INT13_OP_VERIFY };

/* Nonzero when n bytes at a and b differ (no libc in the kernel build). */
static int int13_differs(const uint8_t *a, const uint8_t *b, uint32_t n)
{
	uint8_t acc = 0;
	for (uint32_t i = 0; i < n; i++)
		acc |= (uint8_t)(a[i] ^ b[i]);
	return acc != 0;
}

/*
 * Move count sectors at lba between the drive and linear guest memory
 * [linear, linear + count*512), checking everything before moving a byte.
 * Sets *moved to the sectors moved; returns an INT 13h status.
 */
static uint8_t int13_transfer(struct int13_drive *d, enum int13_op op, uint64_t lba,
			      uint32_t count, uint32_t linear, uint32_t *moved)
{
	*moved = 0;
	if (count == 0)
		return INT13_OK;
	int writing = op == INT13_OP_WRITE || op == INT13_OP_WRITE_VERIFY;
	if (writing && d->read_only)
		return INT13_E_WRITEPROT;
	if (blk_out_of_range(lba, count, d->sectors))   /* guest input: the one place int13 checks a range */
		return INT13_E_NOTFOUND;
	if (op == INT13_OP_VERIFY) {
		*moved = count;
		return INT13_OK;
	}
	void *buf = guestmem_ptr(linear, count * BLK_SECTOR);
	if (!buf)
		return INT13_E_BADCMD;
	int st;
	if (writing)
		st = blk_write(d->dev, lba, count, buf);
	else
		st = blk_read(d->dev, lba, count, buf);
	if (st != BLK_OK)
		return int13_blk_status(st);
	if (op == INT13_OP_WRITE_VERIFY) {
		const uint8_t *src = buf;
		for (uint32_t i = 0; i < count; i++, src += BLK_SECTOR) {
			st = blk_read(d->dev, lba + i, 1, int13_scratch);
			if (st != BLK_OK)
				return int13_blk_status(st);
			if (int13_differs(src, int13_scratch, BLK_SECTOR))
				return INT13_E_WRITEFAULT;
		}
	}
	*moved = count;
	if (int13_moved_hook)
		int13_moved_hook(d, lba, count);
	return INT13_OK;
}

/* CHS read/write/verify (02h-04h): AL sectors at CH/CL/DH into ES:BX; AL returns the sectors moved. */
static unsigned int13_chs_access(struct int13_drive *d, struct rm_regs *r, enum int13_op op)
{
	uint32_t count = RM_AL(r);
	uint32_t cl = (uint8_t)r->ecx;
	uint32_t sector = cl & 0x3Fu;
	uint32_t cylinder = (uint8_t)(r->ecx >> 8) | ((cl & 0xC0u) << 2);
	uint32_t head = (uint8_t)(r->edx >> 8);
	uint32_t moved = 0;
	uint8_t st;

	RM_SET_AL(r, 0);
	if (count == 0 || count > INT13_CHS_MAX_COUNT || sector == 0)
		return INT13_E_BADCMD;
	if (sector > d->spt || head >= d->heads || cylinder >= d->cylinders)
		return INT13_E_NOTFOUND;
	/* At most 1023*255*63 + 254*63 + 62: fits 32 bits. */
	uint32_t lba = (cylinder * d->heads + head) * d->spt + sector - 1;
	st = int13_transfer(d, op, lba, count, INT13_LINEAR(r->es, (uint16_t)r->ebx), &moved);
	RM_SET_AL(r, moved);
	return st;
}

/*
 * Extended read/write/verify (42h-44h) with the DAP at DS:SI; the DAP count
 * is rewritten with the sectors moved whenever the DAP is reachable.
 */
static unsigned int13_dap_access(struct int13_drive *d, struct rm_regs *r, enum int13_op op)
{
	struct int13_dap *gdap = int13_seg_ptr(r->ds, (uint16_t)r->esi, INT13_DAP_SIZE_MIN);
	struct int13_dap dap;
	uint32_t moved = 0;
	uint8_t st;

	if (!gdap)
		return INT13_E_BADCMD;
	__builtin_memcpy(&dap, gdap, INT13_DAP_SIZE_MIN);
	if (dap.size < INT13_DAP_SIZE_MIN || dap.count > INT13_DAP_MAX_COUNT) {
		st = INT13_E_BADCMD;
		goto out;
	}
	uint32_t linear = INT13_LINEAR(dap.buf_seg, dap.buf_off);
	if (dap.size >= INT13_DAP_SIZE_FLAT && dap.buf_seg == INT13_DAP_FLAT_MARK &&
	    dap.buf_off == INT13_DAP_FLAT_MARK) {
		gdap = int13_seg_ptr(r->ds, (uint16_t)r->esi, INT13_DAP_SIZE_FLAT);
		if (!gdap) {
			st = INT13_E_BADCMD;
			goto out_nodap;
		}
		__builtin_memcpy(&dap, gdap, INT13_DAP_SIZE_FLAT);
		/* The whole buffer must lie below 4 GiB. */
		if (dap.buf_flat > 0xFFFFFFFFull ||
		    (uint64_t)dap.count * BLK_SECTOR > 0x100000000ull - dap.buf_flat) {
			st = INT13_E_BADCMD;
			goto out;
		}
		linear = (uint32_t)dap.buf_flat;
	}
	st = int13_transfer(d, op, dap.lba, dap.count, linear, &moved);
out:
	gdap->count = (uint16_t)moved;
out_nodap:
	return st;
}

/* AH=02h: CHS read. */
unsigned int13_1302(struct int13_drive *d, struct rm_regs *r)
{
	return int13_chs_access(d, r, INT13_OP_READ);
}

/* AH=03h: CHS write. */
unsigned int13_1303(struct int13_drive *d, struct rm_regs *r)
{
	return int13_chs_access(d, r, INT13_OP_WRITE);
}

/* AH=04h: CHS verify: the range is checked, no data moves. */
unsigned int13_1304(struct int13_drive *d, struct rm_regs *r)
{
	return int13_chs_access(d, r, INT13_OP_VERIFY);
}

/*
 * AH=05h format track: cylinder/head checked, nothing written. ATA disks
 * ignore track formatting, and SeaBIOS answers 00h without touching data;
 * a read-only drive answers 03h.
 */
unsigned int13_1305(struct int13_drive *d, struct rm_regs *r)
{
	uint32_t cylinder = (uint8_t)(r->ecx >> 8) | (((uint8_t)r->ecx & 0xC0u) << 2);
	uint32_t head = (uint8_t)(r->edx >> 8);
	if (d->read_only)
		return INT13_E_WRITEPROT;
	if (head >= d->heads || cylinder >= d->cylinders)
		return INT13_E_NOTFOUND;
	return INT13_OK;
}

/* AH=42h: extended read. */
unsigned int13_1342(struct int13_drive *d, struct rm_regs *r)
{
	return int13_dap_access(d, r, INT13_OP_READ);
}

/* AH=43h: extended write; AL = 2 reads every sector back and compares, any other AL writes only. */
unsigned int13_1343(struct int13_drive *d, struct rm_regs *r)
{
	/* AL 0/1 mean "no verify"; other values are treated the same (SeaBIOS ignores AL). */
	return int13_dap_access(d, r, RM_AL(r) == INT13_AL_VERIFY ? INT13_OP_WRITE_VERIFY : INT13_OP_WRITE);
}

/* AH=44h: extended verify: range check only. */
unsigned int13_1344(struct int13_drive *d, struct rm_regs *r)
{
	return int13_dap_access(d, r, INT13_OP_VERIFY);
}

/* AH=47h: extended seek: the DAP's LBA must be on the disk; the DAP count is not touched. */
unsigned int13_1347(struct int13_drive *d, struct rm_regs *r)
{
	const struct int13_dap *gdap = int13_seg_ptr(r->ds, (uint16_t)r->esi, INT13_DAP_SIZE_MIN);
	if (!gdap || gdap->size < INT13_DAP_SIZE_MIN)
		return INT13_E_BADCMD;
	return gdap->lba < d->sectors ? INT13_OK : INT13_E_NOTFOUND;
}
