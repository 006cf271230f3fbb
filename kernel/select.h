/* select.h: chooses the images to serve (vhd= items, else GRUB modules, else a scan of every disk and a menu) and opens their chains in resident memory. */
#ifndef SELECT_H
#define SELECT_H

#include <stdint.h>
#include "cand.h"
#include "cmdline.h"
#include "kerr.h"
#include "../image/image.h"

#define SEL_MAX_IMAGES CMDLINE_MAX_VHDS

/* One image chosen and opened in resident memory; int13 drive 80h + its index. */
struct sel_image {
	struct sel_cand *cand;
	const struct img_format *fmt; /* the chain's format */
	void *leaf;               /* the leaf image (fmt's state): opened, maps loaded, parents attached */
	int ram;                  /* a GRUB module: writes stay in RAM, lost at reset */
	int members;              /* images in the chain (1 = no parent) */
	const struct img_place *place; /* a whole-disk image: where it lies (NULL otherwise) */
};

/*
 * Choose the images among the registered disks (block/disk.h): the vhd=
 * items of cmd, else the GRUB modules, else every disk's images, with a
 * menu when there are several (timeout from cmd, TSC at tsc_per_ms).
 * Every candidate is opened and checked in the scan's scratch. 0, or -1
 * with *e set (nothing found, a vhd= item that names nothing, ...).
 */
int sel_choose(const struct cmdline *cmd, uint32_t tsc_per_ms, struct kerr *e);
/* Physical end of the scan's temporary memory (the resident region must avoid [kernel, here)); 0 if unused. */
uint32_t sel_scratch_end(void);
/* Resident heap bytes the chosen images need. */
uint32_t sel_resident_bytes(void);
/*
 * After relocation: open every chosen image and its parents in the
 * resident heap (leaf with leaf_flags IMG_OPEN_*, parents read-only; modules
 * writable), load and check BATs (temporary memory above temp_avoid_hi).
 * Returns the image count, or -1 with *e set.
 */
int sel_open(unsigned leaf_flags, uint32_t temp_avoid_hi, struct kerr *e);
/* Chosen image i (0 = drive 80h), or NULL. */
struct sel_image *sel_image(int i);

#endif
