/* int13.h: INT 13h emulation: turns guest registers into block requests on emulated drives (knows neither ATA nor VHD). */
#ifndef INT13_H
#define INT13_H

#include <stdint.h>
#include "regs.h"
#include "../block/blk.h"

#define INT13_MAX_DRIVES 8

/* INT 13h status codes (AH on return). */
#define INT13_OK 0x00
#define INT13_E_BADCMD 0x01       /* invalid function or parameter */
#define INT13_E_ADDRMARK 0x02
#define INT13_E_WRITEPROT 0x03
#define INT13_E_NOTFOUND 0x04     /* sector not found / out of range */
#define INT13_E_DMA_BOUNDARY 0x09
#define INT13_E_BADSECTOR 0x0A
#define INT13_E_CTRL 0x20         /* controller failure */
#define INT13_E_TIMEOUT 0x80
#define INT13_E_NOTREADY 0xAA
#define INT13_E_WRITEFAULT 0xCC

/* One emulated hard disk. */
struct int13_drive {
	struct blk_dev *dev;   /* the VHD as a block device */
	uint64_t sectors;      /* total sectors offered to the guest */
	uint16_t cylinders;    /* BIOS geometry (cylinders may exceed 1024; 08h clamps) */
	uint16_t heads;        /* 1..255 */
	uint8_t spt;           /* 1..63 */
	uint8_t read_only;     /* writes answer 03h */
	uint8_t last_status;   /* for AH=01h */
};

/* Optional (NULL = off): called after every int13_handle() with the registers before and after. */
extern void (*int13_trace_hook)(const struct rm_regs *in, const struct rm_regs *out);

/* Optional (NULL = off): called after every successful transfer (read or write) of [lba, lba+count) on drive d. */
extern void (*int13_moved_hook)(struct int13_drive *d, uint64_t lba, uint32_t count);

/* Reset the table; bios_disks = hard disks the BIOS had before we shifted them up. */
void int13_init(uint8_t bios_disks);
/* Add an emulated drive (numbered 0x80 + order added; returns that number, -1 if full); geometry from int13_geometry() on its LBA 0. */
int int13_add_drive(struct blk_dev *dev, int read_only);
/* Number of emulated drives. */
int int13_drive_count(void);
struct int13_drive *int13_get_drive(uint8_t number);
/* Handle one INT 13h call for an emulated drive (DL in 0x80..0x80+count-1); sets AH, CF, 40:74. */
void int13_handle(struct rm_regs *r);
/* Drives 80h+n for every bit n of mask completed a call without C (the stub's fast path): their stored status becomes 00h. */
void int13_note_ok(uint8_t mask);
/* Pick a BIOS geometry: one the MBR's CHS fields agree with, else 255x63 above 504 MiB, 16x63 below, fewer heads when tiny; cyl clamps to 65535. */
void int13_geometry(uint64_t sectors, const uint8_t *mbr, uint16_t *cyl, uint16_t *heads, uint8_t *spt);

/* Short name of INT 13h function ah as we serve it ("ext-read"...), "other" for one we refuse; never NULL. */
const char *int13_fn_name(uint8_t ah);

#endif
