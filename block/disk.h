/* disk.h: the disk registry: every driver registers the disks it finds (hdN in registration order, moduleN for RAM images); selection sees only these entries, never a driver's struct. */
#ifndef DISK_H
#define DISK_H

#include <stdint.h>
#include "blk.h"

#define DISK_MAX 16               /* disks the registry holds */
#define DISK_RAM 0x1u             /* a RAM image (GRUB module): named moduleN, writes lost at reset */
#define DISK_RMCALL 0x2u          /* served through real-mode BIOS calls (the resident handler needs low buffers) */
#define DISK_EDD 0x4u             /* DISK_RMCALL: the BIOS takes AH=42h/43h packets for it (up to 127 sectors), at bios_vec */

/* One registered disk. */
struct disk {
	struct blk_dev *blk;      /* the whole disk */
	const char *driver;       /* "ata", "ramdisk" */
	char label[12];           /* "hd0", "hd1", ... or "module0", ... */
	char where[16];           /* driver's own name for the place: "pm", "ss", a module's address */
	char model[48];           /* model string, or a module's command line (truncated) */
	unsigned flags;           /* DISK_* */
	uint32_t phys;            /* DISK_RAM: physical address of the image */
	/* Identity for an OS to find the disk again (kernel/handover.c); filled by the driver after disk_add. */
	char serial[24];          /* serial number (ATA IDENTIFY), "" if unknown */
	uint16_t io_base;         /* ATA: command block base (1F0h/170h) */
	uint8_t channel;          /* ATA: 0 primary, 1 secondary; BIOS: the BIOS drive number */
	uint8_t device;           /* ATA: 0 master, 1 slave */
	uint32_t bios_vec;        /* DISK_RMCALL: the BIOS's INT 13h (seg << 16 | off) its requests go to */
};

/*
 * Register blk (driver: the driver's name; where: its place in the
 * driver's terms; model: for messages; flags: DISK_*). The label is hdN
 * (N = disks registered before without DISK_RAM) or moduleN. Returns the
 * registry index, or -1 when the registry is full.
 */
int disk_add(struct blk_dev *blk, const char *driver, const char *where, const char *model, unsigned flags);
/* Disks registered so far (indices 0 .. disk_count()-1). */
int disk_count(void);
/* Registry entry i, or NULL. */
struct disk *disk_get(int i);
/* The entry whose label is label ("hd1", "module0"), or NULL. */
struct disk *disk_by_label(const char *label);
/* The first entry of driver whose where is where ("ata", "ps"), or NULL. */
struct disk *disk_by_where(const char *driver, const char *where);
/* Index of entry d in the registry. */
int disk_index(const struct disk *d);
/* Forget every disk (tests, and a boot that probes again). */
void disk_reset(void);
/*
 * A driver whose disk speaks INT 13h statuses (the BIOS backend) notes the
 * status of a transfer it gave up on (nonzero), so the front end can pass
 * the BIOS's own status on to the guest instead of a generic one.
 */
void disk_note_status(uint8_t st);
/* The status noted since the last call (0: none), cleared. */
uint8_t disk_take_status(void);

#endif
