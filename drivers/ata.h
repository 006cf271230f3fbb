/* ata.h: ATA driver (bus-master DMA, PIO fallback) for the legacy primary/secondary channels, behind struct blk_dev. */
#ifndef ATA_H
#define ATA_H

#include <stdint.h>
#include "../block/blk.h"

#define ATA_MAX_DISKS 4

/* The names of the four legacy positions, index channel * 2 + slave (disk "where" in the registry; vhd=pm..ss). */
static const char *const ata_positions[ATA_MAX_DISKS] = { "pm", "ps", "sm", "ss" };

struct ata_disk {
	struct blk_dev blk;    /* the block-device view (blk.priv points back here) */
	uint16_t io_base;      /* 0x1F0 / 0x170 */
	uint16_t ctl_base;     /* 0x3F6 / 0x376 */
	uint8_t channel;       /* 0 primary, 1 secondary */
	uint8_t slave;         /* 0 master, 1 slave */
	uint8_t lba48;
	uint8_t pio32;         /* 32-bit data transfers in use */
	uint8_t dma;           /* bus-master DMA in use (cleared for good after a failed DMA command) */
	uint16_t multi;        /* sectors per DRQ block for READ/WRITE MULTIPLE (0 = off) */
	uint64_t sectors;
	char model[41];
	char serial[21];
	char label[8];         /* its position: ata_positions[channel * 2 + slave] */
};

/*
 * Probe the four legacy positions; fill disks[] with ATA hard disks
 * (ATAPI and absent devices logged and skipped). Waits are timed with the
 * TSC at tsc_per_ms (kernel/tsc.c; 0: a 3 GHz guess). allow_dma: use
 * bus-master DMA on channels that have it (ata_drv_probe found the PCI IDE
 * function first). Returns the count.
 */
int ata_probe(struct ata_disk *disks, int max, uint32_t tsc_per_ms, int allow_dma);

#endif
