/* ntfs.h: read-only NTFS: boot sector, $MFT records with fix-ups, attribute lists, $I30 index lookup via $UpCase, $DATA run lists as extents. */
#ifndef NTFS_H
#define NTFS_H

#include <stdint.h>
#include "../block/blk.h"
#include "extent.h"

#define NTFS_NAME_UNITS 255
#define NTFS_NAME_MAX 768          /* UTF-8 bytes of a 255-unit name, with the NUL */
#define NTFS_REC_MAX 4096          /* largest MFT record / index block supported */
#define NTFS_MFT_RUNS 64           /* $MFT fragments kept at mount (more: refused) */
#define NTFS_UPCASE_RUNS 8
#define NTFS_DEPTH_MAX 16          /* index tree depth followed */

/* Error codes (ntfs_strerror). */
enum ntfs_err {
	NTFS_OK = 0,
	NTFS_E_END,                /* no more directory entries (not a defect) */
	NTFS_E_IO,
	NTFS_E_BAD_ARG,
	NTFS_E_NOT_NTFS,           /* the boot sector does not say "NTFS    " */
	NTFS_E_SIGNATURE,          /* no 0x55AA */
	NTFS_E_SECTOR_SIZE,        /* bytes per sector not 512 (4Kn NTFS is valid, not supported) */
	NTFS_E_CLUSTER_SIZE,       /* sectors per cluster not a power of two, or a cluster over 2 MiB */
	NTFS_E_RECORD_SIZE,        /* MFT record or index block size not a power of two in 512..4096 */
	NTFS_E_LAYOUT,             /* $MFT outside the volume, or the volume beyond its device */
	NTFS_E_MFT_FRAGMENTED,     /* $MFT in more than NTFS_MFT_RUNS fragments, or in an attribute list */
	NTFS_E_RECORD,             /* an MFT record lacks "FILE", or its header is inconsistent */
	NTFS_E_FIXUP,              /* an update sequence (fix-up) check failed: a torn or damaged record */
	NTFS_E_NOT_IN_USE,         /* a record referenced by the index is free, or its sequence number differs */
	NTFS_E_ATTR,               /* an attribute's header runs outside its record */
	NTFS_E_RUNLIST,            /* a run list is malformed or points outside the volume */
	NTFS_E_ATTR_LIST,          /* an attribute list is malformed */
	NTFS_E_NO_DATA,            /* the file has no unnamed $DATA attribute */
	NTFS_E_RESIDENT,           /* the file's data lives inside its MFT record: too small to be an image */
	NTFS_E_COMPRESSED,         /* compressed file: not served (decompress it: compact /u, or copy it) */
	NTFS_E_ENCRYPTED,          /* EFS-encrypted file: not served */
	NTFS_E_SPARSE_HOLES,       /* a sparse file with unallocated holes: not served (fsutil sparse setflag x 0) */
	NTFS_E_UNINITIALIZED,      /* initialized size below the data size: the end was never written */
	NTFS_E_TOO_BIG,            /* 2 TiB or more */
	NTFS_E_INDEX,              /* an index ($INDEX_ROOT / INDX block) is malformed */
	NTFS_E_INDEX_DEPTH,        /* an index tree deeper than NTFS_DEPTH_MAX (a loop) */
	NTFS_E_UPCASE,             /* $UpCase missing or not 128 KiB */
	NTFS_E_NOT_FOUND,
	NTFS_E_NOT_DIR,
	NTFS_E_BAD_PATH,
	NTFS_E_COUNT
};

const char *ntfs_strerror(int err);
const char *ntfs_errname(int err);

/* A run of a non-resident attribute: vcn.. for len clusters at lcn (lcn = -1: a hole). */
struct ntfs_run {
	uint64_t vcn, len;
	int64_t lcn;
};

/* A mounted volume; the caller owns it (about 22 KiB: record and index buffers live here, not on the stack). */
struct ntfs_vol {
	struct blk_dev *dev;
	uint64_t total_sectors;
	uint32_t clus_shift;       /* log2(sectors per cluster) */
	uint32_t rec_size;         /* MFT record bytes */
	uint32_t idx_size;         /* index block bytes */
	uint64_t serial;
	char label[64];            /* $Volume's $VOLUME_NAME in UTF-8 */
	uint32_t mft_nruns;
	struct ntfs_run mft[NTFS_MFT_RUNS];
	uint32_t up_nruns;
	struct ntfs_run up[NTFS_UPCASE_RUNS];
	uint16_t up_ascii[128];
	uint64_t up_lba;           /* one cached $UpCase sector */
	int up_valid;
	uint8_t up_buf[BLK_SECTOR];
	uint8_t rec[NTFS_REC_MAX];  /* the MFT record being read */
	uint8_t rec2[NTFS_REC_MAX]; /* an extension record (attribute lists) */
	uint8_t idx[NTFS_REC_MAX];  /* the index block of a lookup */
	uint8_t rec3[NTFS_REC_MAX]; /* a second extension record (a directory's index root and allocation apart) */
	uint8_t alist[NTFS_REC_MAX]; /* an attribute list's value */
};

#define NTFS_F_DIR 0x1u

/* A file or directory. */
struct ntfs_file {
	char name[NTFS_NAME_MAX];
	unsigned flags;            /* NTFS_F_* */
	uint64_t mft_ref;          /* record number (low 48 bits) and sequence (high 16) */
	uint64_t size;             /* from the index entry (the $DATA size is read by ntfs_extents) */
};

/* An open directory being listed (its own index block buffer: ~4.7 KiB). */
struct ntfs_dir {
	struct ntfs_vol *vol;
	uint64_t rec_no;
	int phase;                 /* 0: $INDEX_ROOT entries, 1: INDX blocks, 2: done */
	uint32_t pos, end;         /* entry offsets within buf */
	uint64_t block, nblocks;   /* the INDX block being listed, and how many the index has */
	uint32_t steps;
	uint8_t buf[NTFS_REC_MAX];
};

/* Read the boot sector, $MFT's own record (its runs), $UpCase and $Volume's name. */
int ntfs_mount(struct ntfs_vol *v, struct blk_dev *dev);
/* Nonzero when sector 0 names NTFS ("NTFS    " at offset 3). */
int ntfs_probe(const uint8_t sector0[BLK_SECTOR]);
/* Upper case of a UTF-16 unit by the volume's $UpCase. */
uint16_t ntfs_upcase(struct ntfs_vol *v, uint16_t u);

/* Start listing directory f (from ntfs_open_path or ntfs_dir_next). */
int ntfs_dir_open(struct ntfs_vol *v, const struct ntfs_file *f, struct ntfs_dir *d);
/* The next entry (DOS 8.3 duplicates and metafiles skipped); NTFS_E_END at the end. */
int ntfs_dir_next(struct ntfs_dir *d, struct ntfs_file *out);
/* Look up path ('/' or '\\'), case-insensitive through $UpCase, by descending the $I30 index trees. */
int ntfs_open_path(struct ntfs_vol *v, const char *path, struct ntfs_file *out);
/*
 * Map f's unnamed $DATA (through its attribute list if it has one) to runs.
 * Compressed, encrypted, resident, uninitialized-tail and sparse-with-holes
 * files are EXT_E_FS with map->fat_err the ntfs_err saying which.
 */
int ntfs_extents(struct ntfs_vol *v, const struct ntfs_file *f, struct ext_map *map, struct ext_run *runs,
		 uint32_t cap);

#endif
