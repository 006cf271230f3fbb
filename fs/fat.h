/* fat.h: read-only FAT12/16/32: BPB validation, cluster chains, directories with long names, path lookup. */
#ifndef FAT_H
#define FAT_H

#include <stdint.h>
#include "../block/blk.h"

#define FAT_NAME_MAX 768           /* UTF-8 bytes of a 255-unit long name, with the NUL */
#define FAT_LFN_UNITS 260          /* 20 long-name entries x 13 units */
#define FAT_DIR_MAX_ENTRIES 65536  /* the FAT specification's limit per directory */
#define FAT_EOC 0xFFFFFFFFu        /* fat_next_cluster: end of chain */

/* Error codes: every distinct defect has its own code and message (fat_strerror). */
enum fat_err {
	FAT_OK = 0,
	FAT_E_END,                 /* no more directory entries (not a defect) */
	FAT_E_IO,                  /* the device could not be read */
	FAT_E_BAD_ARG,
	FAT_E_SIGNATURE,           /* boot sector lacks 0x55AA */
	FAT_E_JUMP,                /* boot sector does not start with a jump (EB xx / E9 xx xx) */
	FAT_E_SECTOR_SIZE,         /* bytes/sector not a power of two in 512..4096 */
	FAT_E_SECTOR_SIZE_UNSUPPORTED, /* 1024/2048/4096 bytes/sector: valid FAT, but only 512 is supported */
	FAT_E_CLUSTER_SIZE,        /* sectors/cluster not a power of two in 1..128 */
	FAT_E_RESERVED,            /* zero reserved sectors */
	FAT_E_NO_FATS,             /* zero FATs */
	FAT_E_MEDIA,               /* media byte not 0xF0 or 0xF8..0xFF */
	FAT_E_TOTAL_SECTORS,       /* both total-sector fields zero */
	FAT_E_FAT_SIZE,            /* both FAT-size fields zero */
	FAT_E_ROOT_ENTRIES,        /* FAT12/16 with no root entries, or FAT32 with some */
	FAT_E_LAYOUT,              /* reserved + FATs + root leave no data cluster */
	FAT_E_TYPE_MISMATCH,       /* the cluster count decides FAT12/16 vs 32, and the BPB layout disagrees */
	FAT_E_TOO_MANY_CLUSTERS,   /* more clusters than FAT32 can address */
	FAT_E_FAT_TOO_SMALL,       /* a FAT is too small for the cluster count */
	FAT_E_ROOT_CLUSTER,        /* FAT32 root cluster outside 2..clusters+1 */
	FAT_E_FS_VERSION,          /* FAT32 version is not 0.0 */
	FAT_E_ACTIVE_FAT,          /* FAT32 mirroring off and the active FAT does not exist */
	FAT_E_BEYOND_DEVICE,       /* the volume is larger than its partition or disk */
	FAT_E_CHAIN_FREE,          /* a cluster chain runs into a free cluster */
	FAT_E_CHAIN_RANGE,         /* a cluster number outside 2..clusters+1 */
	FAT_E_CHAIN_BAD,           /* a cluster chain runs into a cluster marked bad */
	FAT_E_CHAIN_LOOP,          /* a cluster chain is longer than the volume (loop) */
	FAT_E_CHAIN_SHORT,         /* a file's chain ends before its size */
	FAT_E_DIR_TOO_BIG,         /* more than 65536 entries in a directory */
	FAT_E_NOT_FOUND,           /* no such file or directory */
	FAT_E_NOT_DIR,             /* a path component is a file */
	FAT_E_BAD_PATH,            /* empty component "..", or too long */
	FAT_E_COUNT
};

/* The message for an error code; never NULL. */
const char *fat_strerror(int err);
/* The stable short name of an error code ("cluster-size"...); never NULL. */
const char *fat_errname(int err);

/* A mounted volume; the caller owns it. All reads go through dev; nothing is ever written. */
struct fat_vol {
	struct blk_dev *dev;
	int type;                  /* 12, 16 or 32 */
	uint32_t total_sectors;
	uint32_t sec_per_clus;
	uint32_t clus_shift;       /* log2(sec_per_clus) */
	uint32_t fat_start;        /* first sector of the FAT that is read */
	uint32_t fat0_start;       /* first sector of the first FAT (the reserved sectors) */
	uint32_t nfats;            /* FAT copies */
	int mirror;                /* every FAT copy is current (FAT32 ext_flags bit 7 clear; always on FAT12/16) */
	uint32_t fsinfo;           /* FAT32: the FSInfo sector (0: none) */
	uint32_t fat_sectors;      /* sectors per FAT */
	uint32_t root_start;       /* FAT12/16: first sector of the fixed root directory */
	uint32_t root_sectors;     /* FAT12/16: its length */
	uint32_t root_cluster;     /* FAT32: first cluster of the root directory */
	uint32_t data_start;       /* sector of cluster 2 */
	uint32_t clusters;         /* data clusters; valid numbers are 2..clusters+1 */
	uint32_t serial;           /* from the extended BPB, 0 if none */
	char label[12];            /* from the extended BPB, trailing spaces cut; "" if none */
	/* One cached FAT sector. */
	uint32_t cache_lba;
	int cache_valid;
	uint8_t cache[BLK_SECTOR];
};

/* A directory entry (file or directory) as returned by listing or lookup. */
struct fat_file {
	char name[FAT_NAME_MAX];   /* UTF-8: the long name if present and valid, else the 8.3 name */
	char short_name[13];       /* the 8.3 name as stored ("NAME.EXT", OEM bytes), "" for the root */
	uint8_t attr;              /* FAT_ATTR_* */
	uint32_t first_cluster;    /* 0: empty file (or the FAT12/16 root) */
	uint32_t size;             /* bytes; 0 for directories */
	uint16_t mdate, mtime;     /* DOS date/time of the last write */
	uint64_t ent_lba;          /* the sector (on the volume) holding the short entry (0: the root, which has none) */
	uint16_t ent_off;          /* its byte offset in that sector */
};

/* An open directory being listed; the caller owns it (about 1.1 KiB). */
struct fat_dir {
	struct fat_vol *vol;
	uint32_t first_cluster;    /* 0: the fixed FAT12/16 root */
	uint32_t cluster;          /* current cluster (chained directories) */
	uint32_t sector;           /* sector within the cluster, or within the fixed root */
	uint32_t entry;            /* entry within the sector, 0..15 */
	uint32_t steps;            /* clusters walked (bounded by the cluster count) */
	uint32_t mark, power, lam; /* Brent's cycle detection over the chain */
	uint32_t count;            /* entries read (bounded by FAT_DIR_MAX_ENTRIES) */
	int done;
	uint64_t buf_lba;
	int buf_valid;
	uint8_t buf[BLK_SECTOR];
	uint16_t lfn[FAT_LFN_UNITS]; /* long name being assembled */
	uint8_t lfn_sum;           /* checksum every part must carry */
	uint8_t lfn_expect;        /* next ordinal expected; 0 with lfn_ok: complete */
	uint8_t lfn_ok;            /* a long name is being or has been assembled */
};

/* Read and validate the boot sector of dev and mount it; every BPB field is range-checked. */
int fat_mount(struct fat_vol *v, struct blk_dev *dev);

/* The cluster after c in its chain (*next = FAT_EOC at the end); checks range, free and bad marks. */
int fat_next_cluster(struct fat_vol *v, uint32_t c, uint32_t *next);
/* The first sector (on v->dev) of cluster c (2..clusters+1). */
uint64_t fat_cluster_lba(const struct fat_vol *v, uint32_t c);

/* Start listing the root directory. */
int fat_dir_open_root(struct fat_vol *v, struct fat_dir *d);
/* Start listing the directory f (from fat_dir_next or fat_open_path); FAT_E_NOT_DIR if f is a file. */
int fat_dir_open(struct fat_vol *v, const struct fat_file *f, struct fat_dir *d);
/*
 * The next file or directory in d (never the volume label, "." or "..").
 * FAT_E_END when the directory ends; errors end the listing.
 */
int fat_dir_next(struct fat_dir *d, struct fat_file *out);

/*
 * Look up path ("/images/win.vhd", '/' or '\\', case-insensitive on ASCII,
 * matching long or 8.3 names); "" or "/" is the root. Uses ~2 KiB of stack.
 */
int fat_open_path(struct fat_vol *v, const char *path, struct fat_file *out);

/* Called for each match by the listing helpers; nonzero stops the listing and is returned. */
typedef int (*fat_list_fn)(void *ctx, const char *dir, const struct fat_file *f);
/*
 * Call fn for each regular file in directory dir whose name ends with one of
 * suffixes (NULL-terminated, e.g. the image formats' {".vhd", NULL}; ASCII
 * case-insensitive). FAT_E_NOT_FOUND/FAT_E_NOT_DIR if dir is not a
 * directory. Uses ~4 KiB of stack.
 */
int fat_list_suffix(struct fat_vol *v, const char *dir, const char *const *suffixes, fat_list_fn fn, void *ctx);
/*
 * fat_list_suffix over each directory of dirs (NULL-terminated; missing
 * ones are skipped), in order. Returns FAT_OK, fn's nonzero value, or an error.
 */
int fat_list_dirs(struct fat_vol *v, const char *const *dirs, const char *const *suffixes, fat_list_fn fn, void *ctx);

/* Nonzero when a and b are equal ignoring ASCII case. */
int fat_name_eq(const char *a, const char *b);
/* Nonzero when name ends with one of suffixes (a NULL-terminated list), ignoring ASCII case. */
int fat_has_suffix(const char *name, const char *const *suffixes);

#endif
