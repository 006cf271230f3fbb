/* chain.h: open a VHD with its whole differencing chain on the host (parents located, opened read-only, attached). */
#ifndef CHAIN_H
#define CHAIN_H

#include <stdint.h>
#include "../vhd/vhd.h"
#include "hostdev.h"

/* chain_open flags. */
#define CHAIN_RDONLY 0x1u            /* open the leaf read-only too (parents always are) */
#define CHAIN_IGNORE_TIMESTAMP 0x2u  /* accept a parent whose time stamp differs */
#define CHAIN_LEAF_ONLY 0x4u         /* don't look for parents */
#define CHAIN_LENIENT 0x8u           /* skip the leaf's block-overlap check (check/info report it) */
#define CHAIN_NOSYNC 0x10u           /* leaf opened with HOSTDEV_NOSYNC (the verb fsyncs once at the end) */
#define CHAIN_EDIT 0x20u             /* leaf file opened read-write but parsed read-only: the verb edits it through its device */

/* One image of a chain: its file, parsed image and BAT. */
struct chain_member {
	struct hostdev hd;
	struct vhd v;
	uint32_t *bat;               /* malloc'd, vhd_bat_bytes() bytes; NULL for fixed */
	char path[4096];             /* path as opened (leaf: as given; parents: as resolved) */
};

/* An open chain: m[0] is the leaf, m[n-1] the base. */
struct chain {
	int n;                       /* members opened so far (valid even after a failure) */
	struct chain_member *m[VHD_MAX_CHAIN + 1];
	int sys_errno;               /* nonzero if the failure was a system error on the leaf file */
	int err_level;               /* index of the member whose parent (or itself) failed */
	char err[1024];              /* one-line reason for the last failure */
};

/*
 * Open path and, unless CHAIN_LEAF_ONLY, every parent: returns 0 or a
 * vhd_err with c->err set. On failure c keeps the members opened so far
 * (c->n of them); call chain_close() in every case.
 */
int chain_open(struct chain *c, const char *path, unsigned flags);
/* Close every member and free their BATs; c may be partially opened. */
void chain_close(struct chain *c);
/* The leaf image (NULL if nothing opened). */
struct vhd *chain_leaf(struct chain *c);
/* Format a VHD time stamp as an ISO 8601 UTC date into out (32 bytes). */
void chain_time_str(uint32_t vhd_time, char out[32]);
/* Format a 16-byte unique id as 8-4-4-4-12 lower-case hex into out (37 bytes). */
void chain_uuid_str(const uint8_t uuid[16], char out[37]);

#endif
