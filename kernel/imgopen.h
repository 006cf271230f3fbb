/* imgopen.h: opens one image candidate with its whole differencing chain (disk, partition, FAT file or GRUB module under it), in the scan's scratch or in resident memory. */
#ifndef IMGOPEN_H
#define IMGOPEN_H

#include <stddef.h>
#include <stdint.h>
#include "cand.h"
#include "container.h"   /* CONTAINER_OF for IOP_MEMBER_OF */
#include "kerr.h"
#include "vhdblk.h"
#include "../block/blk.h"
#include "../fs/extent.h"
#include "../vhd/vhd.h"

#define IOP_SCRATCH (1u << 20)    /* temporary memory for the scan, just above the kernel's load image */

/* One image of a chain with every device under it; allocated from the scan's scratch or the resident heap. */
struct iop_member {
	struct vhd v;
	struct blk_window pv;     /* the partition (pv.dev) */
	struct ext_map map;       /* the file's runs (fdev.priv) */
	struct blk_dev fdev;
	struct blk_dev ldev;      /* fdev plus a log line when a write must grow the file */
	struct vhdblk_disk vdisk; /* a whole disk (or a VHD at its start: vhdblk_probe_disk) */
	int nospace_logged;
	const char *image;        /* the chosen image's name, for messages */
	char path[SEL_PATH_MAX];  /* on the FAT volume ("" if not a file) */
	const char *via;          /* a parent: the locator that found it ("W2ru locator", ...) */
	uint32_t mark;            /* scratch position before it was allocated (a refused parent gives it back) */
};

/* The member whose struct vhd is vp (a chain's parent pointers point at members' v). */
#define IOP_MEMBER_OF(vp) CONTAINER_OF(vp, struct iop_member, v)

/* Pick the scan's scratch: the lowest free 1 MiB above the loaded kernel. 0, or -1 with *e set. */
int iop_init(struct kerr *e);
/* Use IOP_SCRATCH bytes at phys as the scratch from the next iop_init on (host unit tests; 0: find one). */
void iop_use_scratch(uint32_t phys);
/* Physical end of the scan's scratch (the resident region must avoid it); 0 if unused. */
uint32_t iop_scratch_end(void);
/* bytes (aligned, zeroed) from the scratch or, once resident, the resident heap; NULL when full. Counted in the chain's need. */
void *iop_alloc(uint32_t bytes, uint32_t align);
/* Scratch position, to give back with iop_release what a check allocated (no-op once resident). */
uint32_t iop_mark(void);
void iop_release(uint32_t mark);
/* vhd_ignore_timestamp: accept a parent whose time stamp differs from what its child recorded. */
void iop_set_ignore_timestamp(int on);
/*
 * Switch to resident allocation: work areas and the overlap check's
 * scratch (max_bat bytes) in temporary memory below the resident region
 * and above temp_avoid_hi. 0, or -1 with *e set.
 */
int iop_go_resident(uint32_t max_bat, uint32_t temp_avoid_hi, struct kerr *e);
/*
 * Open c with its whole chain (leaf with leaf_flags, parents read-only).
 * Fills c->ok, why/remedy, type, sectors, depth, parent, need, max_bat;
 * once resident also loads and checks every BAT. Returns the leaf or NULL.
 */
struct iop_member *iop_open_chain(struct sel_cand *c, unsigned leaf_flags);
/* Check c in the scratch (nothing kept but the summary in c). */
void iop_check(struct sel_cand *c);
/* Nonzero when the FAT volume of c's place (disk, part) has a file (not a folder) at c->path. */
int iop_file_exists(const struct sel_cand *c);

#endif
