/* int13_info.c: INT 13h information functions: 08h (parameters), 15h (type), 41h (extensions check), 48h (EDD parameters), 4Eh (hardware configuration). */
#include <stddef.h>
#include <stdint.h>
#include "int13_priv.h"

/* Limits. */
#define INT13_EDD_CHS_LIMIT 15482880u /* 48h: CHS valid only up to this many sectors (EDD 3.0) */
#define INT13_EDD_CYL_INVALID 0x3FFFu /* 48h cylinders when CHS is not valid (SeaBIOS) */

/* 41h answer. */
#define INT13_EXT_MAGIC_OUT 0xAA55u
#define INT13_EXT_VERSION 0x30      /* EDD 3.0 */
#define INT13_EXT_API_DAP 0x0001u   /* 42h-44h, 47h, 48h */
#define INT13_EXT_API_EDD 0x0004u   /* 48h returns EDD information */

/* 48h flags. */
#define INT13_EDD_FL_DMA_TRANSPARENT 0x0001u /* no 64 KiB boundary errors, ever */
#define INT13_EDD_FL_CHS_VALID 0x0002u

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

/*
 * AH=08h: maximum indices (not counts): CH = cylinder bits 0-7, CL[7:6] =
 * cylinder bits 8-9, CL[5:0] = sectors per track, DH = last head, DL = hard
 * disks, AX = 0. Cylinders clamp to 1024. Unlike SeaBIOS we do not hide a
 * "diagnostic" cylinder: partitions often end on the last one, and tools
 * then see a disk smaller than its own partition table (iPXE, MEMDISK agree).
 * BL, ES:DI are left alone (they describe floppies only).
 */
unsigned int13_1308(struct int13_drive *d, struct rm_regs *r)
{
	uint32_t cyls = d->cylinders < INT13_CHS_MAX_CYL ? d->cylinders : INT13_CHS_MAX_CYL;
	uint32_t maxcyl = cyls ? cyls - 1 : 0;
	uint32_t disks = int13_disk_total();

	RM_SET_AX(r, 0);
	RM_SET_CX(r, (maxcyl & 0xFFu) << 8 | ((maxcyl >> 2) & 0xC0u) | (d->spt & 0x3Fu));
	RM_SET_DX(r, (uint32_t)(d->heads - 1) << 8 | (disks > 0xFF ? 0xFFu : disks));
	return INT13_OK;
}

/* AH=15h: AH = 03h (hard disk), CX:DX = total sectors (clamped to 32 bits); CF clear. */
unsigned int13_1315(struct int13_drive *d, struct rm_regs *r)
{
	uint32_t n = d->sectors > 0xFFFFFFFFull ? 0xFFFFFFFFu : (uint32_t)d->sectors;
	RM_SET_CX(r, n >> 16);
	RM_SET_DX(r, n & 0xFFFFu);
	RM_SET_AH(r, 0x03);
	return INT13_R_AH_SET;
}

/*
 * AH=41h: BX = AA55h, AH = 30h (EDD 3.0), CX = extended access + EDD.
 * BX on entry should be 55AAh; like SeaBIOS we do not insist. CX bit 1
 * (removable-drive functions) is not claimed: we are a fixed disk and have
 * no INT 15h AH=52h (SeaBIOS sets it; iPXE doesn't).
 */
unsigned int13_1341(struct int13_drive *d, struct rm_regs *r)
{
	(void)d;
	RM_SET_BX(r, INT13_EXT_MAGIC_OUT);
	RM_SET_CX(r, INT13_EXT_API_DAP | INT13_EXT_API_EDD);
	RM_SET_AH(r, INT13_EXT_VERSION);
	return INT13_R_AH_SET;
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
unsigned int13_1348(struct int13_drive *d, struct rm_regs *r)
{
	const uint8_t *gsize = int13_seg_ptr(r->ds, (uint16_t)r->esi, sizeof(uint16_t));
	if (!gsize)
		return INT13_E_BADCMD;
	uint16_t size;
	__builtin_memcpy(&size, gsize, sizeof(size));   /* DS:SI may be odd: no misaligned uint16_t load (fuzz_int13) */
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
unsigned int13_134e(struct int13_drive *d, struct rm_regs *r)
{
	(void)d;
	switch (RM_AL(r)) {
	case 0x01: case 0x03: case 0x04: case 0x06:
		return INT13_OK;
	default:
		return INT13_E_BADCMD;
	}
}
