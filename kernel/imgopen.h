/* imgopen.h: opens one image candidate with its whole differencing chain (disk, partition, FAT file or GRUB module under it), in the scan's scratch or in resident memory. */
#ifndef IMGOPEN_H
#define IMGOPEN_H

#include <stddef.h>
#include <stdint.h>
#include "cand.h"
#include "kerr.h"
#include "../block/blk.h"
#include "../fs/extent.h"
#include "../fs/grow.h"
#include "../image/image.h"

#define IOP_SCRATCH (1u << 20)    /* temporary memory for the scan, just above the kernel's load image */

/* One image of a chain with every device under it; allocated from the scan's scratch or the resident heap. */
struct iop_member {
	const struct img_format *fmt;
	void *im;                 /* the opened image: fmt's state, right after this struct (IOP_MEMBER_BYTES) */
	struct blk_window pv;     /* the partition (pv.dev) */
	struct ext_map map;       /* the file's runs (fdev.priv) */
	struct blk_dev fdev;
	struct blk_dev ldev;      /* fdev plus a log line when a write must grow the file */
	struct fs_grow *grow;     /* a leaf file on FAT16/32 or exFAT that may grow (grow=yes, writable), else NULL */
	int grow_err;             /* why it can't (grow_err; 0 with grow set, or when growth is off) */
	int grow_logged;
	struct img_place place;   /* a whole disk: where the image lies on it (img_probe_any) */
	int nospace_logged;
	const char *image;        /* the chosen image's name, for messages */
	char path[SEL_PATH_MAX];  /* on the FAT volume ("" if not a file) */
	const char *via;          /* a parent: the locator that found it ("W2ru locator", ...) */
	const char *other_vol;    /* a parent on another volume than its child's: that volume ("hd1,2"); else NULL */
	uint32_t mark;            /* scratch position before it was allocated (a refused parent gives it back) */
};

/* A member and its image state are one allocation: the state starts IOP_MEMBER_BYTES after the member. */
#define IOP_MEMBER_BYTES ((uint32_t)((sizeof(struct iop_member) + 15) & ~(size_t)15))
/* The member whose image state is im (a chain's parent pointers point at members' states). */
#define IOP_MEMBER_OF(im) ((struct iop_member *)(void *)((char *)(im) - IOP_MEMBER_BYTES))

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
/* grow=yes|no: may a leaf image file on FAT16/32 or exFAT grow when its format writes past its end (default yes)? */
void iop_set_grow(int on);
/* Why leaf file m cannot grow (m->grow NULL, or its growth failed) and what to do, as static text for log lines. */
void iop_nogrow(const struct iop_member *m, const char **why, const char **remedy);
/* How many writes so far made an image file longer (a front end whose firmware caches the host volume resyncs it when this moves). */
uint32_t iop_growths(void);
/* vhd_ignore_timestamp: accept a parent whose time stamp differs from what its child recorded. */
void iop_set_ignore_timestamp(int on);
/*
 * Switch to resident allocation: work areas and the overlap check's
 * scratch (max_bat bytes) in temporary memory below the resident region
 * and above temp_avoid_hi. 0, or -1 with *e set.
 */
int iop_go_resident(uint32_t max_bat, uint32_t temp_avoid_hi, struct kerr *e);
/*
 * Open c with its whole chain (leaf with leaf_flags IMG_OPEN_*, parents
 * read-only). Fills c->ok, why/remedy, fmt, type, sectors, depth, parent, need, max_bat;
 * once resident also loads and checks every BAT. Returns the leaf or NULL.
 */
struct iop_member *iop_open_chain(struct sel_cand *c, unsigned leaf_flags);
#define IOP_MAX_PARENT_VOLS 16   /* volumes searched for parents not on their child's volume */
struct scan_vol;
/* Where parents not on their child's volume are looked for, in order (copied; n <= IOP_MAX_PARENT_VOLS). */
void iop_set_parent_vols(const struct scan_vol *vols, int n);
/* Check c in the scratch (nothing kept but the summary in c). */
void iop_check(struct sel_cand *c);
/* Nonzero when the FAT volume of c's place (disk, part) has a file (not a folder) at c->path. */
int iop_file_exists(const struct sel_cand *c);

#endif
