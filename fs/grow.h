/* grow.h: growing a file on FAT16/FAT32 or exFAT crash-safely (clusters marked and the tail copied, linked, size written, each step flushed), as the ext_map grow hook. */
#ifndef GROW_H
#define GROW_H

#include <stdint.h>
#include "fs.h"

/* Error codes (grow_strerror): why a file can't grow, or why one growth failed. */
enum grow_err {
	GROW_OK = 0,
	GROW_E_BAD_ARG,
	GROW_E_IO,                 /* the volume could not be read or written */
	GROW_E_RO,                 /* the volume is read-only */
	GROW_E_NTFS,               /* NTFS files never grow here */
	GROW_E_FAT12,              /* FAT12 volumes are not grown */
	GROW_E_TEXFAT,             /* an exFAT volume with two FATs (TexFAT) */
	GROW_E_SET,                /* the exFAT entry set can't be rewritten in one sector write */
	GROW_E_FULL,               /* no free clusters left for the growth */
	GROW_E_TOO_BIG,            /* the file would pass the file system's (or the extent map's) size limit */
	GROW_E_FRAGMENTS,          /* the new clusters would need more extent runs than were reserved */
	GROW_E_CHAIN,              /* the file's chain or directory entry is not what it was at open time */
	GROW_E_BROKEN,             /* an earlier growth failed part-way: no further growth */
	GROW_E_COUNT
};

/* The message / stable short name of a grow_err; never NULL. */
const char *grow_strerror(int err);
const char *grow_errname(int err);

/* Extent runs to allocate beyond a growable file's own (each run 16 bytes). */
#define GROW_SPARE_RUNS 256

/*
 * What a file needs to grow; the caller owns it, next to the ext_map, for
 * as long as the file is written (~2.2 KiB). A copy of the volume's state is
 * kept, so the fs_vol it was made from may go away; its device may not.
 */
struct fs_grow {
	int type;                  /* FS_FAT or FS_EXFAT */
	union {
		struct fat_vol fat;
		struct exfat_vol exfat;
	} v;
	struct blk_dev *dev;       /* the volume */
	uint32_t spc_shift;        /* log2(sectors per cluster) */
	uint32_t clusters;         /* valid cluster numbers 2..clusters+1 */
	uint32_t first, last;      /* the file's first and last cluster (0: none) */
	uint32_t nclus;            /* clusters the file holds */
	int contig;                /* exFAT NoFatChain: clusters first..last, no FAT chain */
	uint64_t ent_lba[2];       /* FAT: the short entry; exFAT: file entry, stream extension */
	uint16_t ent_off[2];
	uint8_t set_n;             /* exFAT: entries in set */
	uint8_t set[EXFAT_SET_MAX * 32];
	uint64_t max_bytes;        /* the size limit */
	uint32_t full_need;        /* a growth needing this many clusters or more found the volume full (0: not yet) */
	int fsinfo_done;           /* FAT32: FSInfo's free count and hint invalidated */
	int broken;
	int err;                   /* the last growth's grow_err */
	uint32_t grows;            /* successful growths that added clusters */
	uint32_t added;            /* clusters added */
	/* The sectors being changed: [0] a FAT sector, [1] a bitmap sector; written back before another is loaded. */
	struct grow_sec {
		uint64_t lba;
		int valid, dirty;
		uint8_t b[BLK_SECTOR];
	} sec[2];
	uint64_t bm_idx, bm_lba;   /* exFAT: the bitmap's sector bm_idx lies at bm_lba */
	int bm_valid;
	uint8_t tmp[BLK_SECTOR];
};

/*
 * Make the file f of volume v (mapped into map by fs_extents, with runs to
 * spare in map->cap) growable: on success map->grow/grow_ctx/max_bytes
 * are set (call before ext_blk_init). A grow_err when this file can't grow
 * (NTFS, FAT12, TexFAT, an odd exFAT entry set, a read-only volume, a
 * directory): map is left fixed.
 *
 * Each growth, in this order, each step flushed before the next: FSInfo's
 * free count and hint invalidated (FAT32, once); free clusters (after the
 * file's last one first) marked in every FAT copy (the first FAT last), or in
 * the exFAT bitmap (and FAT chain; a NoFatChain file that can't stay
 * contiguous gets its chain written first; a file in one run whose new
 * clusters follow it becomes NoFatChain, so it needs no link), and the file's
 * last sector copied to its new last sector (so a file that ends in a trailer,
 * the VHD footer, still does); the file's last cluster linked to them; the
 * size in the directory entry (exFAT: both lengths, NoFatChain, the set
 * checksum, in one sector write). Only between the link's write and the
 * size's is the chain longer than the size.
 */
int fs_grow_init(struct fs_grow *g, const struct fs_vol *v, const struct fs_file *f, struct ext_map *map);

#endif
