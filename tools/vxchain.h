/* vxchain.h: open a VHDX with its differencing chain on the host (parents found through image/resolve.c, opened read-only, attached). */
#ifndef VXCHAIN_H
#define VXCHAIN_H

#include <stdint.h>
#include "../vhdx/vhdx.h"
#include "hostdev.h"

/* vxc_open flags. */
#define VXC_RDONLY 0x1u       /* leaf read-only: a pending log is replayed into memory only (parents always are) */
#define VXC_LEAF_ONLY 0x2u    /* don't look for parents */
#define VXC_LENIENT 0x4u      /* skip the leaf's block-overlap check (check reports it) */
#define VXC_NOSYNC 0x8u       /* leaf opened with HOSTDEV_NOSYNC (the verb fsyncs once at the end) */
#define VXC_NO_BAT 0x10u      /* leaf: open only (headers, log, regions, metadata); no BAT */

/* One image of a VHDX chain: its file, parsed image, BAT and log overlay. */
struct vxc_member {
	struct hostdev hd;
	struct vhdx v;
	uint64_t *bat;               /* malloc'd, vhdx_bat_bytes() bytes */
	void *ovl;                   /* malloc'd overlay of a log replayed in memory, or NULL */
	int ready;                   /* BAT loaded (and overlaps checked unless VXC_LENIENT): readable */
	char path[4096];
};

/* An open VHDX chain: m[0] the leaf, m[n-1] the base. */
struct vxchain {
	int n;                       /* members opened so far */
	struct vxc_member *m[VHDX_MAX_CHAIN + 1];
	int sys_errno;               /* nonzero when the leaf file itself could not be opened or read */
	int err;                     /* vhdx_err of the failure (0: none) */
	int leaf_opened;             /* vhdx_open of the leaf succeeded (its BAT may still have failed) */
	char err_msg[1024];          /* one-line reason of the failure */
};

/*
 * Open path as a VHDX and, unless VXC_LEAF_ONLY, its parents. A writable
 * open gets a session of random GUIDs (getrandom) and replays a pending log
 * into the file (a note on stderr says so); a read-only one replays it into
 * memory and says the file is unchanged. Returns 0 or a vhdx_err with
 * err_msg set; call vxc_close in every case (members opened so far stay).
 */
int vxc_open(struct vxchain *c, const char *path, unsigned flags);
/* Close every member and free its memory; c may be partly opened. */
void vxc_close(struct vxchain *c);
/* The leaf (NULL if nothing opened). */
struct vhdx *vxc_leaf(struct vxchain *c);
/* 16 random bytes from getrandom() into g; 0, or -1 with errno. */
int vxc_random_guid(struct vhdx_guid *g);
/* A session of three random GUIDs; 0, or -1 with errno. */
int vxc_random_session(struct vhdx_session *s);
/*
 * Nonzero when [off, off+len) of the chain's virtual disk is known to read
 * as zeros without reading: zero/absent in every member down to one that
 * decides, or (leaf block fully present) a hole in the leaf's file.
 */
int vxc_unallocated(struct vxchain *c, uint64_t off, uint64_t len);

/*
 * Read len bytes (sector multiple) of the virtual disk at off into buf:
 * vhdx_read, except that a fully present block of the leaf is read from its
 * file's data extents only (holes of a sparse file are zeros without a
 * read). 0 or a vhdx_err.
 */
int vxc_read(struct vxchain *c, uint64_t off, uint32_t len, uint8_t *buf);

#endif
