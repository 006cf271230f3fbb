/* cand.h: one image candidate (found by the scan or named by vhd=): where it lives and, once checked, what it is. */
#ifndef CAND_H
#define CAND_H

#include <stdint.h>

struct img_format;

#define SEL_PATH_MAX 256          /* a path on a FAT volume, UTF-8 */
#define SEL_NAME_MAX 280          /* "hd0,12:/images/win.vhd" */

/* Where an image lives. */
enum sel_kind { SEL_DISK = 1, SEL_PART, SEL_FILE, SEL_MODULE };

/* One image found (or named on the command line) and checked with its whole chain. */
struct sel_cand {
	int kind;                 /* SEL_* */
	int disk;                 /* index in the disk registry (block/disk.h); a module is a DISK_RAM entry */
	uint32_t part;            /* partition number as fs/part counts; 0: the whole disk */
	char path[SEL_PATH_MAX];  /* SEL_FILE: path on the FAT volume */
	char name[SEL_NAME_MAX];  /* "hd0,1:/images/win.vhd", "hd0", "hd0,2", "module0" */
	int ok;                   /* opened, chain resolved */
	char why[320];            /* !ok: the problem */
	const char *remedy;       /* !ok: what to do */
	const struct img_format *fmt; /* the leaf's format (image/image.h), once opened */
	const char *type;         /* the leaf's type ("fixed", "dynamic", "differencing"), once opened */
	uint64_t sectors;         /* virtual size */
	int depth;                /* parents below the leaf */
	char parent[64];          /* file name of the direct parent ("" if none) */
	uint32_t need;            /* resident bytes the chain needs (members, BATs, runs) */
	uint32_t max_bat;         /* largest block map (VHD: BAT) of the chain (the overlap check's scratch) */
};

/* Fill c->name from its place (registry label, partition, path). */
void cand_name(struct sel_cand *c);

#endif
