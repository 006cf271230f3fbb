/* driver.h: the driver table (a linker table: DRIVER() in each driver's file): each storage driver probes its hardware (or boot-loader data) and registers disks with disk_add (block/disk.h). */
#ifndef DRIVER_H
#define DRIVER_H

#include <stdint.h>

#define DRV_MAX_MODULES 8

/* disk= on the command line: which backends serve the disks. */
enum drv_disk_mode {
	DRV_DISK_AUTO = 0,        /* native drivers where they know the controller, the BIOS for every other BIOS disk */
	DRV_DISK_BIOS,            /* every disk through the BIOS's INT 13h, no native driver */
	DRV_DISK_NATIVE,          /* native drivers only (disks only the BIOS reads are not seen) */
	DRV_DISK_PIO,             /* native drivers, programmed I/O only (no DMA); no BIOS backend */
};

/* What the boot sequence knows before any driver runs. */
struct drv_boot_info {
	uint32_t tsc_per_ms;      /* TSC ticks per millisecond (kernel/tsc.c), for bounded waits */
	int disk_mode;            /* enum drv_disk_mode */
	int nmods;                /* GRUB multiboot modules (already reserved from the guest's memory) */
	struct {
		uint32_t start, end;  /* physical [start, end) */
		const char *name;     /* the module's command line */
	} mods[DRV_MAX_MODULES];
};

/* One driver: a row of drv_table. */
struct driver {
	const char *name;         /* "ata", "ramdisk" */
	/* Find devices and disk_add() each; returns the count registered. Logs what it finds. */
	int (*probe)(const struct drv_boot_info *bi);
	/* After the kernel moved to its resident region (kernel_base changed): re-point physical addresses (DMA tables); may be NULL. */
	void (*relocated)(void);
};

/*
 * Register a driver from its own file (an iPXE-style linker table: no
 * central list to edit). order: a two-digit key; lower probes first, so
 * hdN numbering follows it (native controllers 10-49, firmware-backed
 * disks 50-79, RAM images 90). linker.ld collects .drv_table.* sorted.
 */
#define DRIVER(order, var) \
	static const struct driver *const drv_row_##var __attribute__((used, section(".drv_table." #order))) = &var

/* The table's bounds (linker.ld). */
extern const struct driver *const __drv_start[], *const __drv_end[];

/* Run every driver's probe in table order; returns the disks registered. */
int drv_probe_all(const struct drv_boot_info *bi);
/* Call every driver's relocated hook. */
void drv_relocated(void);

#endif
