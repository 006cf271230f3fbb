/* int13.c: INT 13h emulation for hard disks: guest registers -> block requests on struct blk_dev (knows neither ATA nor VHD). */
#include "guestmem.h"
#include <stddef.h>
#include <stdint.h>
#include "int13.h"

/*
 * Semantics follow SeaBIOS src/disk.c (a real BIOS guests are tested on)
 * except where noted; the project notes (shared/notes/int13-emulation.md)
 * win where they are more specific.
 *
 * Status codes (AH on return; CF set iff AH != 0, except 15h/41h whose AH
 * is data, not a status):
 *
 *  condition                                   AH   note
 *  ------------------------------------------  ---  ----------------------------
 *  success                                     00h
 *  unknown function, 16h on a hard disk        01h  SeaBIOS
 *  DL is not one of our drives                 01h
 *  02h-04h: AL = 0 or > 128, sector (CL) = 0   01h  SeaBIOS
 *  DAP size < 10h, DAP count > 127             01h  127: the Phoenix EDD limit
 *                                                   guests expect (the notes)
 *  buffer refused by guestmem_ptr()         01h  nothing moved; we never
 *  (resident memory, beyond reach, flat >4G)        report 09h (any alignment
 *                                                   works, see 48h flag bit 0)
 *  48h: caller's buffer size < 1Ah             01h  SeaBIOS
 *  4Eh: subfunction other than 01/03/04/06     01h  SeaBIOS
 *  write (03h/05h/43h) to a read-only drive    03h  nothing written
 *  CHS: sector > spt, head >= heads,           04h  SeaBIOS says 01h; a real
 *       cylinder >= cylinders                       drive says IDNF (04h), and
 *                                                   the notes want 04h
 *  LBA (or CHS run) past the end of the disk   04h  checked before any
 *                                                   transfer: nothing moved
 *                                                   (SeaBIOS: 01h, start only)
 *  blk BLK_E_RANGE                             04h
 *  blk BLK_E_RO                                03h
 *  blk BLK_E_IO (disk or VHD metadata failed)  20h  controller failure;
 *                                                   SeaBIOS says 0Ch for all
 *                                                   driver errors
 *  blk BLK_E_NOSPACE (image cannot grow)       CCh  write fault
 *  43h AL=2: read-back differs from the data   CCh  write fault
 *  any other blk error                         BBh  undefined error
 *  46h eject on a fixed disk                   B2h  volume not removable (SeaBIOS)
 *
 * After an error the number of sectors moved is reported (AL for 02h-04h,
 * the DAP count for 42h-44h). A failed block request is counted as 0
 * sectors moved: the device does not say how far it got, and a guest
 * retrying from the start is always right (SeaBIOS does the same).
 *
 * The last status is kept per drive (for 01h) and in the BDA byte 40:74.
 * 01h reports it in AH (SeaBIOS) and AL (the IBM AT BIOS used AL), with CF
 * set if it is nonzero, and does not change it.
 */

/* BDA byte 40:74: status of the last hard disk operation. */
#define INT13_BDA_LAST_STATUS 0x474u

/* Status codes int13.h does not name. */
#define INT13_E_NOTREMOVABLE 0xB2
#define INT13_E_UNDEFINED 0xBB

/* Handler results beyond a plain status (low byte). */
#define INT13_R_STATUS 0x00FFu
#define INT13_R_AH_SET 0x0100u    /* the handler put data in AH: record 00h, clear CF */
#define INT13_R_NORECORD 0x0200u  /* report the status but leave the stored one (01h) */

/* Limits. */
#define INT13_CHS_MAX_COUNT 128u   /* AL for 02h-04h (SeaBIOS: one 64 KiB DMA window) */
#define INT13_DAP_MAX_COUNT 127u   /* DAP count for 42h-44h */
#define INT13_CHS_MAX_CYL 1024u    /* 10-bit cylinder numbers */
#define INT13_EDD_CHS_LIMIT 15482880u /* 48h: CHS valid only up to this many sectors (EDD 3.0) */
#define INT13_EDD_CYL_INVALID 0x3FFFu /* 48h cylinders when CHS is not valid (SeaBIOS) */

/* 41h answer. */
#define INT13_EXT_MAGIC_OUT 0xAA55u
#define INT13_EXT_VERSION 0x30      /* EDD 3.0 */
#define INT13_EXT_API_DAP 0x0001u   /* 42h-44h, 47h, 48h */
#define INT13_EXT_API_EDD 0x0004u   /* 48h returns EDD information */

/* 43h AL. */
#define INT13_AL_VERIFY 0x02

/* 48h flags. */
#define INT13_EDD_FL_DMA_TRANSPARENT 0x0001u /* no 64 KiB boundary errors, ever */
#define INT13_EDD_FL_CHS_VALID 0x0002u

/* Real-mode seg:off to linear; A20 is on, so FFFF:FFFF is 10FFEFh, not a wrap. */
#define INT13_LINEAR(seg, off) (((uint32_t)(seg) << 4) + (uint32_t)(off))
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

/* Result buffer of 48h (EDD 3.0, Phoenix layout); the caller's size decides how much is filled. */
struct int13_edd {
	uint16_t size;          /* in: buffer size; out: bytes filled */
	uint16_t flags;
	uint32_t cylinders;
	uint32_t heads;
	uint32_t spt;
	uint64_t sectors;
	uint16_t sector_size;
	/* EDD 2.x (1Eh bytes) */
	uint16_t dpte_off;
	uint16_t dpte_seg;
	/* EDD 3.0 (42h bytes) */
	uint16_t key;           /* BEDDh */
	uint8_t dpi_length;     /* bytes from key to checksum inclusive */
	uint8_t reserved1;
	uint16_t reserved2;
	char host_bus[4];
	char iface_type[8];
	uint64_t iface_path;
	uint64_t device_path;
	uint8_t reserved3;
	uint8_t checksum;       /* bytes key..checksum sum to 0 */
} __attribute__((packed));

#define INT13_EDD_SIZE_1X 0x1Au
#define INT13_EDD_SIZE_2X 0x1Eu
#define INT13_EDD_SIZE_3X 0x42u
#define INT13_EDD_KEY 0xBEDDu
#define INT13_EDD_NO_DPTE 0xFFFFu
_Static_assert(offsetof(struct int13_edd, dpte_off) == INT13_EDD_SIZE_1X, "EDD 1.x");
_Static_assert(offsetof(struct int13_edd, key) == INT13_EDD_SIZE_2X, "EDD 2.x");
_Static_assert(sizeof(struct int13_edd) == INT13_EDD_SIZE_3X, "EDD 3.0");

/* MBR partition table. */
#define INT13_MBR_TABLE 446u
#define INT13_MBR_ENTRY 16u
#define INT13_MBR_ENTRIES 4u
#define INT13_MBR_SIG 510u
#define INT13_CHS_SATURATED 1023u  /* partition tools write 1023/x/y for "beyond CHS" */

/* Geometry defaults. */
#define INT13_SPT 63u
#define INT13_HEADS_SMALL 16u
#define INT13_HEADS_LARGE 255u
#define INT13_MAX_CYLS 65535u

/* Transfer kinds. */
enum int13_op { INT13_OP_READ, INT13_OP_WRITE, INT13_OP_WRITE_VERIFY, INT13_OP_VERIFY };

void (*int13_trace_hook)(const struct rm_regs *in, const struct rm_regs *out);

static struct int13_drive int13_drives[INT13_MAX_DRIVES];
static int int13_ndrives;
static uint8_t int13_bios_disks;
/* One sector of scratch: the MBR at int13_add_drive(), read-back for 43h AL=2. */
static uint8_t int13_scratch[BLK_SECTOR];

/* Little-endian 32-bit value at p (any alignment). */
static uint32_t int13_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Guest memory at seg:off, or NULL if guestmem_ptr refuses it. */
static void *int13_seg_ptr(uint16_t seg, uint16_t off, uint32_t bytes)
{
	return guestmem_ptr(INT13_LINEAR(seg, off), bytes);
}

/* Map a blk_dev status to an INT 13h status (table at the top of the file). */
static uint8_t int13_blk_status(int st)
{
	switch (st) {
	case BLK_OK: return INT13_OK;
	case BLK_E_IO: return INT13_E_CTRL;
	case BLK_E_RANGE: return INT13_E_NOTFOUND;
	case BLK_E_RO: return INT13_E_WRITEPROT;
	case BLK_E_NOSPACE: return INT13_E_WRITEFAULT;
	default: return INT13_E_UNDEFINED;
	}
}

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

/* AH=00h/0Dh reset: make completed writes durable (a guest resets before giving up or rebooting). */
static unsigned int13_1300(struct int13_drive *d, struct rm_regs *r)
{
	(void)r;
	if (d->read_only || !d->dev->flush)
		return INT13_OK;
	return int13_blk_status(blk_flush(d->dev));
}

/* AH=01h: last status of this drive in AH and AL; CF if nonzero; the stored status is kept. */
static unsigned int13_1301(struct int13_drive *d, struct rm_regs *r)
{
	RM_SET_AL(r, d->last_status);
	return INT13_R_NORECORD | d->last_status;
}

/* AH=02h: CHS read. */
static unsigned int13_1302(struct int13_drive *d, struct rm_regs *r)
{
	return int13_chs_access(d, r, INT13_OP_READ);
}

/* AH=03h: CHS write. */
static unsigned int13_1303(struct int13_drive *d, struct rm_regs *r)
{
	return int13_chs_access(d, r, INT13_OP_WRITE);
}

/* AH=04h: CHS verify: the range is checked, no data moves. */
static unsigned int13_1304(struct int13_drive *d, struct rm_regs *r)
{
	return int13_chs_access(d, r, INT13_OP_VERIFY);
}

/*
 * AH=05h format track: cylinder/head checked, nothing written. ATA disks
 * ignore track formatting, and SeaBIOS answers 00h without touching data;
 * a read-only drive answers 03h.
 */
static unsigned int13_1305(struct int13_drive *d, struct rm_regs *r)
{
	uint32_t cylinder = (uint8_t)(r->ecx >> 8) | (((uint8_t)r->ecx & 0xC0u) << 2);
	uint32_t head = (uint8_t)(r->edx >> 8);
	if (d->read_only)
		return INT13_E_WRITEPROT;
	if (head >= d->heads || cylinder >= d->cylinders)
		return INT13_E_NOTFOUND;
	return INT13_OK;
}

/*
 * AH=08h: maximum indices (not counts): CH = cylinder bits 0-7, CL[7:6] =
 * cylinder bits 8-9, CL[5:0] = sectors per track, DH = last head, DL = hard
 * disks, AX = 0. Cylinders clamp to 1024. Unlike SeaBIOS we do not hide a
 * "diagnostic" cylinder: partitions often end on the last one, and tools
 * then see a disk smaller than its own partition table (iPXE, MEMDISK agree).
 * BL, ES:DI are left alone (they describe floppies only).
 */
static unsigned int13_1308(struct int13_drive *d, struct rm_regs *r)
{
	uint32_t cyls = d->cylinders < INT13_CHS_MAX_CYL ? d->cylinders : INT13_CHS_MAX_CYL;
	uint32_t maxcyl = cyls ? cyls - 1 : 0;
	uint32_t disks = (uint32_t)int13_ndrives + int13_bios_disks;

	RM_SET_AX(r, 0);
	RM_SET_CX(r, (maxcyl & 0xFFu) << 8 | ((maxcyl >> 2) & 0xC0u) | (d->spt & 0x3Fu));
	RM_SET_DX(r, (uint32_t)(d->heads - 1) << 8 | (disks > 0xFF ? 0xFFu : disks));
	return INT13_OK;
}

/* AH=09h/0Ch/10h/11h/14h/45h/49h: nothing to do for a fixed, always-ready disk. */
static unsigned int13_ok(struct int13_drive *d, struct rm_regs *r)
{
	(void)d;
	(void)r;
	return INT13_OK;
}

/* AH=15h: AH = 03h (hard disk), CX:DX = total sectors (clamped to 32 bits); CF clear. */
static unsigned int13_1315(struct int13_drive *d, struct rm_regs *r)
{
	uint32_t n = d->sectors > 0xFFFFFFFFull ? 0xFFFFFFFFu : (uint32_t)d->sectors;
	RM_SET_CX(r, n >> 16);
	RM_SET_DX(r, n & 0xFFFFu);
	RM_SET_AH(r, 0x03);
	return INT13_R_AH_SET;
}

/* AH=16h: change line: not supported for hard disks (01h, as SeaBIOS). */
static unsigned int13_1316(struct int13_drive *d, struct rm_regs *r)
{
	(void)d;
	(void)r;
	return INT13_E_BADCMD;
}

/*
 * AH=41h: BX = AA55h, AH = 30h (EDD 3.0), CX = extended access + EDD.
 * BX on entry should be 55AAh; like SeaBIOS we do not insist. CX bit 1
 * (removable-drive functions) is not claimed: we are a fixed disk and have
 * no INT 15h AH=52h (SeaBIOS sets it; iPXE doesn't).
 */
static unsigned int13_1341(struct int13_drive *d, struct rm_regs *r)
{
	(void)d;
	RM_SET_BX(r, INT13_EXT_MAGIC_OUT);
	RM_SET_CX(r, INT13_EXT_API_DAP | INT13_EXT_API_EDD);
	RM_SET_AH(r, INT13_EXT_VERSION);
	return INT13_R_AH_SET;
}

/* AH=42h: extended read. */
static unsigned int13_1342(struct int13_drive *d, struct rm_regs *r)
{
	return int13_dap_access(d, r, INT13_OP_READ);
}

/* AH=43h: extended write; AL = 2 reads every sector back and compares, any other AL writes only. */
static unsigned int13_1343(struct int13_drive *d, struct rm_regs *r)
{
	/* AL 0/1 mean "no verify"; other values are treated the same (SeaBIOS ignores AL). */
	return int13_dap_access(d, r, RM_AL(r) == INT13_AL_VERIFY ? INT13_OP_WRITE_VERIFY : INT13_OP_WRITE);
}

/* AH=44h: extended verify: range check only. */
static unsigned int13_1344(struct int13_drive *d, struct rm_regs *r)
{
	return int13_dap_access(d, r, INT13_OP_VERIFY);
}

/* AH=46h: eject: a fixed disk is not removable (B2h, as SeaBIOS). */
static unsigned int13_1346(struct int13_drive *d, struct rm_regs *r)
{
	(void)d;
	(void)r;
	return INT13_E_NOTREMOVABLE;
}

/* AH=47h: extended seek: the DAP's LBA must be on the disk; the DAP count is not touched. */
static unsigned int13_1347(struct int13_drive *d, struct rm_regs *r)
{
	const struct int13_dap *gdap = int13_seg_ptr(r->ds, (uint16_t)r->esi, INT13_DAP_SIZE_MIN);
	if (!gdap || gdap->size < INT13_DAP_SIZE_MIN)
		return INT13_E_BADCMD;
	return gdap->lba < d->sectors ? INT13_OK : INT13_E_NOTFOUND;
}

/*
 * AH=48h: fill the caller's buffer at DS:SI up to its size (1Ah, 1Eh, 42h
 * steps; bytes beyond the step reached are not touched) and set the size
 * field to what was filled. CHS fields repeat the 08h/15h geometry;
 * "CHS valid" only up to 15,482,880 sectors. No DPTE (FFFF:FFFF): there is
 * no controller behind us for an OS to program. The EDD 3.0 path claims an
 * ISA ATA master at I/O 0: truthful enough that parsers accept it, while an
 * OS matching it against a real controller finds no match.
 */
static unsigned int13_1348(struct int13_drive *d, struct rm_regs *r)
{
	const uint16_t *gsize = int13_seg_ptr(r->ds, (uint16_t)r->esi, sizeof(uint16_t));
	if (!gsize)
		return INT13_E_BADCMD;
	uint16_t size = *gsize;
	if (size < INT13_EDD_SIZE_1X)
		return INT13_E_BADCMD;
	uint32_t fill = size >= INT13_EDD_SIZE_3X ? INT13_EDD_SIZE_3X :
			size >= INT13_EDD_SIZE_2X ? INT13_EDD_SIZE_2X : INT13_EDD_SIZE_1X;
	uint8_t *out = int13_seg_ptr(r->ds, (uint16_t)r->esi, fill);
	if (!out)
		return INT13_E_BADCMD;

	struct int13_edd e;
	__builtin_memset(&e, 0, sizeof(e));
	e.size = (uint16_t)fill;
	e.flags = INT13_EDD_FL_DMA_TRANSPARENT;
	if (d->sectors <= INT13_EDD_CHS_LIMIT) {
		e.flags |= INT13_EDD_FL_CHS_VALID;
		e.cylinders = d->cylinders;
	} else {
		e.cylinders = INT13_EDD_CYL_INVALID;
	}
	e.heads = d->heads;
	e.spt = d->spt;
	e.sectors = d->sectors;
	e.sector_size = BLK_SECTOR;
	e.dpte_off = INT13_EDD_NO_DPTE;
	e.dpte_seg = INT13_EDD_NO_DPTE;
	e.key = INT13_EDD_KEY;
	e.dpi_length = INT13_EDD_SIZE_3X - INT13_EDD_SIZE_2X;
	__builtin_memcpy(e.host_bus, "ISA ", sizeof(e.host_bus));
	__builtin_memcpy(e.iface_type, "ATA     ", sizeof(e.iface_type));
	e.iface_path = 0;   /* ISA: base I/O port */
	e.device_path = 0;  /* ATA: master */
	uint8_t sum = 0;
	const uint8_t *p = (const uint8_t *)&e;
	for (uint32_t i = INT13_EDD_SIZE_2X; i < INT13_EDD_SIZE_3X; i++)
		sum = (uint8_t)(sum + p[i]);
	e.checksum = (uint8_t)-sum;
	__builtin_memcpy(out, &e, fill);
	return INT13_OK;
}

/* AH=4Eh: set hardware configuration: AL 01h/03h/04h/06h accepted (nothing to configure), others 01h, as SeaBIOS. */
static unsigned int13_134e(struct int13_drive *d, struct rm_regs *r)
{
	(void)d;
	switch (RM_AL(r)) {
	case 0x01: case 0x03: case 0x04: case 0x06:
		return INT13_OK;
	default:
		return INT13_E_BADCMD;
	}
}

/* Every function we serve: its number, short name (trace lines) and handler; the one list (trace.c reads names from it). */
typedef unsigned (*int13_fn)(struct int13_drive *d, struct rm_regs *r);
static const struct int13_fn_row {
	uint8_t ah;
	const char *name;
	int13_fn fn;
} int13_fns[] = {
	{ 0x00, "reset", int13_1300 },
	{ 0x01, "status", int13_1301 },
	{ 0x02, "read", int13_1302 },
	{ 0x03, "write", int13_1303 },
	{ 0x04, "verify", int13_1304 },
	{ 0x05, "format", int13_1305 },
	{ 0x08, "params", int13_1308 },
	{ 0x09, "init", int13_ok },           /* initialise drive parameters */
	{ 0x0C, "seek", int13_ok },
	{ 0x0D, "reset", int13_1300 },        /* alternate reset */
	{ 0x10, "ready", int13_ok },          /* test ready */
	{ 0x11, "recal", int13_ok },          /* recalibrate */
	{ 0x14, "diag", int13_ok },           /* controller diagnostic */
	{ 0x15, "type", int13_1315 },
	{ 0x16, "changed", int13_1316 },
	{ 0x41, "edd-check", int13_1341 },
	{ 0x42, "ext-read", int13_1342 },
	{ 0x43, "ext-write", int13_1343 },
	{ 0x44, "ext-verify", int13_1344 },
	{ 0x45, "lock", int13_ok },           /* lock/unlock: fixed disks always succeed */
	{ 0x46, "eject", int13_1346 },
	{ 0x47, "ext-seek", int13_1347 },
	{ 0x48, "edd-params", int13_1348 },
	{ 0x49, "media", int13_ok },          /* media change: never */
	{ 0x4E, "hwconfig", int13_134e },
};

/* The row for function ah, or NULL if we don't offer it. */
static const struct int13_fn_row *int13_row(uint8_t ah)
{
	for (size_t i = 0; i < sizeof(int13_fns) / sizeof(int13_fns[0]); i++)
		if (int13_fns[i].ah == ah)
			return &int13_fns[i];
	return NULL;
}

/* Handler for function ah, or NULL if we don't offer it. */
static int13_fn int13_lookup(uint8_t ah)
{
	const struct int13_fn_row *row = int13_row(ah);
	return row ? row->fn : NULL;
}

const char *int13_fn_name(uint8_t ah)
{
	const struct int13_fn_row *row = int13_row(ah);
	return row ? row->name : "other";
}

/* Record status st for drive d (may be NULL) in the drive and the BDA. */
static void int13_record(struct int13_drive *d, uint8_t st)
{
	uint8_t *bda = guestmem_ptr(INT13_BDA_LAST_STATUS, 1);
	if (d)
		d->last_status = st;
	if (bda)
		*bda = st;
}

/* Dispatch one call: AH, CF and the last status follow the handler's result. */
static void int13_dispatch(struct rm_regs *r)
{
	struct int13_drive *d = int13_get_drive((uint8_t)r->edx);
	int13_fn fn = int13_lookup(RM_AH(r));
	unsigned res = (d && fn) ? fn(d, r) : INT13_E_BADCMD;
	uint8_t st = (uint8_t)(res & INT13_R_STATUS);

	if (res & INT13_R_AH_SET) {
		int13_record(d, INT13_OK);
		r->flags &= (uint16_t)~RM_FLAG_CF;
		return;
	}
	if (!(res & INT13_R_NORECORD))
		int13_record(d, st);
	RM_SET_AH(r, st);
	if (st)
		r->flags |= RM_FLAG_CF;
	else
		r->flags &= (uint16_t)~RM_FLAG_CF;
}

void int13_handle(struct rm_regs *r)
{
	if (!int13_trace_hook) {
		int13_dispatch(r);
		return;
	}
	struct rm_regs in = *r;
	int13_dispatch(r);
	int13_trace_hook(&in, r);
}

void int13_init(uint8_t bios_disks)
{
	__builtin_memset(int13_drives, 0, sizeof(int13_drives));
	int13_ndrives = 0;
	int13_bios_disks = bios_disks;
}

int int13_drive_count(void)
{
	return int13_ndrives;
}

struct int13_drive *int13_get_drive(uint8_t number)
{
	if (number < 0x80 || number - 0x80 >= int13_ndrives)
		return NULL;
	return &int13_drives[number - 0x80];
}

/* Returns the drive number (80h + n), or -1 when the table is full or dev is unusable. */
int int13_add_drive(struct blk_dev *dev, int read_only)
{
	if (!dev || !dev->read || !dev->write || dev->sectors == 0 ||
	    int13_ndrives >= INT13_MAX_DRIVES)
		return -1;
	struct int13_drive *d = &int13_drives[int13_ndrives];
	__builtin_memset(d, 0, sizeof(*d));
	d->dev = dev;
	d->sectors = dev->sectors;
	d->read_only = (uint8_t)(read_only || dev->read_only);
	/* An unreadable LBA 0 just means the default geometry; the boot will report the read error. */
	const uint8_t *mbr = blk_read(dev, 0, 1, int13_scratch) == BLK_OK ? int13_scratch : NULL;
	int13_geometry(d->sectors, mbr, &d->cylinders, &d->heads, &d->spt);
	return 0x80 + int13_ndrives++;
}

/* Cylinders for a geometry, clamped to 16 bits; 32-bit division only. */
static uint16_t int13_cyls(uint64_t sectors, uint32_t heads, uint32_t spt)
{
	uint32_t per_cyl = heads * spt;
	if (sectors >= (uint64_t)INT13_MAX_CYLS * per_cyl)
		return INT13_MAX_CYLS;
	return (uint16_t)((uint32_t)sectors / per_cyl);
}

/*
 * Nonzero when every CHS tuple (start and end) of every used partition maps
 * to its LBA under heads x spt, and at least one tuple could be checked.
 * Tuples at cylinder 1023 that don't map are skipped: tools write
 * 1023/254/63 or 1023/H-1/S for "beyond CHS".
 */
static int int13_mbr_fits(const uint8_t *mbr, uint32_t heads, uint32_t spt)
{
	int checked = 0;
	for (uint32_t i = 0; i < INT13_MBR_ENTRIES; i++) {
		const uint8_t *e = mbr + INT13_MBR_TABLE + i * INT13_MBR_ENTRY;
		uint32_t start = int13_le32(e + 8), count = int13_le32(e + 12);
		if (e[4] == 0 || count == 0)
			continue;
		for (int end = 0; end < 2; end++) {
			const uint8_t *chs = e + (end ? 5 : 1);
			uint32_t h = chs[0], s = chs[1] & 0x3Fu;
			uint32_t c = chs[2] | ((chs[1] & 0xC0u) << 2);
			uint32_t lba = end ? start + count - 1 : start;
			int ok = s != 0 && s <= spt && h < heads &&
				 (c * heads + h) * spt + s - 1 == lba;
			if (ok)
				checked = 1;
			else if (c != INT13_CHS_SATURATED)
				return 0;
		}
	}
	return checked;
}

/*
 * Geometry search: first what the partition ends claim (largest end head
 * + 1, largest end sector), then common partitioner geometries; the first
 * one under which every partition's CHS fields agree with its LBA fields
 * wins. This accepts DOS-era tables (ends on cylinder boundaries) and
 * rejects a modern 1 MiB-aligned table whose end CHS is not a boundary.
 * Without an answer: 255x63 above 1024x16x63 sectors (~504 MiB), 16x63
 * below, and for disks under 16x63 sectors fewer heads (and sectors).
 */
void int13_geometry(uint64_t sectors, const uint8_t *mbr, uint16_t *cyl, uint16_t *heads, uint8_t *spt)
{
	static const uint8_t common[][2] = {
		{ 255, 63 }, { 16, 63 }, { 240, 63 }, { 128, 63 }, { 64, 63 }, { 32, 63 }, { 64, 32 },
	};
	if (mbr && mbr[INT13_MBR_SIG] == 0x55 && mbr[INT13_MBR_SIG + 1] == 0xAA) {
		uint32_t maxh = 0, maxs = 0;
		int valid = 1;
		for (uint32_t i = 0; i < INT13_MBR_ENTRIES; i++) {
			const uint8_t *e = mbr + INT13_MBR_TABLE + i * INT13_MBR_ENTRY;
			if (e[0] != 0x00 && e[0] != 0x80)
				valid = 0;  /* not a partition table (a FAT boot sector, say) */
			uint32_t c = e[7] | ((e[6] & 0xC0u) << 2);
			if (e[4] == 0 || c == INT13_CHS_SATURATED)
				continue;
			if (e[5] > maxh)
				maxh = e[5];
			if ((e[6] & 0x3Fu) > maxs)
				maxs = e[6] & 0x3Fu;
		}
		for (int k = -1; valid && k < (int)(sizeof(common) / sizeof(common[0])); k++) {
			uint32_t h = k < 0 ? maxh + 1 : common[k][0];
			uint32_t s = k < 0 ? maxs : common[k][1];
			if (h > INT13_HEADS_LARGE || s == 0 || s > INT13_SPT)
				continue;
			if (sectors < h * s || !int13_mbr_fits(mbr, h, s))
				continue;
			*heads = (uint16_t)h;
			*spt = (uint8_t)s;
			*cyl = int13_cyls(sectors, h, s);
			return;
		}
	}
	uint32_t h, s;
	if (sectors >= (uint64_t)INT13_CHS_MAX_CYL * INT13_HEADS_SMALL * INT13_SPT) {
		h = INT13_HEADS_LARGE;
		s = INT13_SPT;
	} else if (sectors >= INT13_HEADS_SMALL * INT13_SPT) {
		h = INT13_HEADS_SMALL;
		s = INT13_SPT;
	} else {
		/* Tiny: one cylinder of up to 16 tracks of up to 63 sectors. */
		s = sectors >= INT13_SPT ? INT13_SPT : (sectors ? (uint32_t)sectors : 1);
		h = (uint32_t)sectors / s;
		if (h == 0)
			h = 1;
	}
	*heads = (uint16_t)h;
	*spt = (uint8_t)s;
	*cyl = int13_cyls(sectors, h, s);
}
