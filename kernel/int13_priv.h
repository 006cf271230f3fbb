/* int13_priv.h: what the INT 13h files (int13.c, int13_rw.c, int13_info.c, int13_geom.c) share and nobody else sees. */
#ifndef INT13_PRIV_H
#define INT13_PRIV_H

#include <stdint.h>
#include "guestmem.h"   /* guestmem_ptr */
#include "int13.h"

/* Handler results beyond a plain status (low byte); int13.c's dispatcher reads them. */
#define INT13_R_STATUS 0x00FFu
#define INT13_R_AH_SET 0x0100u    /* the handler put data in AH: record 00h, clear CF */
#define INT13_R_NORECORD 0x0200u  /* report the status but leave the stored one (01h) */

#define INT13_CHS_MAX_CYL 1024u    /* 10-bit cylinder numbers (08h, geometry) */

/* Real-mode seg:off to linear; A20 is on, so FFFF:FFFF is 10FFEFh, not a wrap. */
#define INT13_LINEAR(seg, off) (((uint32_t)(seg) << 4) + (uint32_t)(off))

/* Guest memory at seg:off, or NULL if guestmem_ptr refuses it. */
static inline void *int13_seg_ptr(uint16_t seg, uint16_t off, uint32_t bytes)
{
	return guestmem_ptr(INT13_LINEAR(seg, off), bytes);
}

/* One sector of scratch (int13.c): the MBR at int13_add_drive(), read-back for 43h AL=2. Callers are never re-entered. */
extern uint8_t int13_scratch[BLK_SECTOR];

/* Map a blk_dev status to an INT 13h status (the status table in int13.c). */
uint8_t int13_blk_status(int st);
/* Hard disks the guest sees (ours plus the BIOS's shifted ones), for 08h's DL. */
uint32_t int13_disk_total(void);

/*
 * A function handler: d is one of our drives, r the guest's registers.
 * Returns an INT 13h status, possibly or'ed with INT13_R_* flags; the
 * dispatcher sets AH, CF and the stored status from it.
 */
typedef unsigned (*int13_fn)(struct int13_drive *d, struct rm_regs *r);

/* int13_rw.c: transfers (CHS and DAP), verify, seek, format. */
unsigned int13_1302(struct int13_drive *d, struct rm_regs *r);
unsigned int13_1303(struct int13_drive *d, struct rm_regs *r);
unsigned int13_1304(struct int13_drive *d, struct rm_regs *r);
unsigned int13_1305(struct int13_drive *d, struct rm_regs *r);
unsigned int13_1342(struct int13_drive *d, struct rm_regs *r);
unsigned int13_1343(struct int13_drive *d, struct rm_regs *r);
unsigned int13_1344(struct int13_drive *d, struct rm_regs *r);
unsigned int13_1347(struct int13_drive *d, struct rm_regs *r);

/* int13_info.c: drive parameters and capabilities. */
unsigned int13_1308(struct int13_drive *d, struct rm_regs *r);
unsigned int13_1315(struct int13_drive *d, struct rm_regs *r);
unsigned int13_1341(struct int13_drive *d, struct rm_regs *r);
unsigned int13_1348(struct int13_drive *d, struct rm_regs *r);
unsigned int13_134e(struct int13_drive *d, struct rm_regs *r);

#endif
