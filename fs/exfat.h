/* exfat.h: read-only exFAT: boot region and its checksum, upcase table, allocation bitmap, FAT and contiguous files, entry sets, paths. */
#ifndef EXFAT_H
#define EXFAT_H

#include <stdint.h>
#include "../block/blk.h"
#include "extent.h"

#define EXFAT_NAME_UNITS 255       /* UTF-16 units of a file name */
#define EXFAT_NAME_MAX 768         /* UTF-8 bytes of a 255-unit name, with the NUL */
#define EXFAT_LABEL_MAX 48         /* UTF-8 bytes of an 11-unit volume label, with the NUL */
#define EXFAT_DIR_MAX_BYTES (256u << 20) /* the specification's limit for one directory */
#define EXFAT_EOC 0xFFFFFFFFu      /* exfat_next_cluster: end of chain */
#define EXFAT_SET_MAX 19           /* entries of a set kept in exfat_file (file + stream + 17 names) */

/* Error codes: every distinct defect has its own code and message (exfat_strerror). */
enum exfat_err {
	EXFAT_OK = 0,
	EXFAT_E_END,               /* no more directory entries (not a defect) */
	EXFAT_E_IO,                /* the device could not be read */
	EXFAT_E_BAD_ARG,
	EXFAT_E_NOT_EXFAT,         /* the boot sector does not say "EXFAT   " */
	EXFAT_E_SIGNATURE,         /* boot sector lacks 0x55AA */
	EXFAT_E_ZERO_FIELD,        /* the 53 must-be-zero bytes (the FAT BPB) are not zero */
	EXFAT_E_BOOT_CHECKSUM,     /* the boot region's checksum sector disagrees, in both copies */
	EXFAT_E_REVISION,          /* file system revision is not 1.x */
	EXFAT_E_SECTOR_SIZE,       /* bytes/sector shift outside 9..12 */
	EXFAT_E_SECTOR_SIZE_UNSUPPORTED, /* 1024..4096 bytes/sector: valid exFAT, but only 512 is supported */
	EXFAT_E_CLUSTER_SIZE,      /* cluster larger than 32 MiB */
	EXFAT_E_NUM_FATS,          /* number of FATs not 1 or 2 */
	EXFAT_E_LAYOUT,            /* FAT or cluster heap outside the volume, or overlapping */
	EXFAT_E_BEYOND_DEVICE,     /* the volume is larger than its partition or disk */
	EXFAT_E_ROOT_CLUSTER,      /* root directory cluster outside 2..clusters+1 */
	EXFAT_E_NO_BITMAP,         /* the root has no (active) allocation bitmap entry */
	EXFAT_E_BITMAP_SIZE,       /* the allocation bitmap is shorter than the cluster count */
	EXFAT_E_NO_UPCASE,         /* the root has no upcase table entry */
	EXFAT_E_UPCASE_SIZE,       /* upcase table empty, odd-sized or over 128 KiB */
	EXFAT_E_UPCASE_CHECKSUM,   /* the upcase table's checksum disagrees with its entry */
	EXFAT_E_CHAIN_FREE,        /* a cluster chain runs into a free cluster */
	EXFAT_E_CHAIN_RANGE,       /* a cluster number outside 2..clusters+1 */
	EXFAT_E_CHAIN_BAD,         /* a cluster chain runs into a cluster marked bad */
	EXFAT_E_CHAIN_LOOP,        /* a cluster chain is longer than the volume, or revisits a cluster */
	EXFAT_E_CHAIN_SHORT,       /* a chain ends before its size */
	EXFAT_E_NOT_ALLOCATED,     /* a file's cluster is free in the allocation bitmap */
	EXFAT_E_SET_SHORT,         /* an entry set has fewer than 2 secondary entries or ends early */
	EXFAT_E_SET_STREAM,        /* a file entry is not followed by its stream extension */
	EXFAT_E_SET_NAME,          /* an entry set lacks name entries for its name length (or the length is 0) */
	EXFAT_E_SET_CHECKSUM,      /* an entry set's checksum disagrees */
	EXFAT_E_NAME_HASH,         /* the stream extension's name hash disagrees with the name */
	EXFAT_E_SIZE,              /* valid data length above the data length, or a directory size not in clusters */
	EXFAT_E_VALID_LENGTH,      /* valid data length below the size: the end was never written (not served) */
	EXFAT_E_TOO_BIG,           /* a file of 2 TiB or more (the extent map counts 32-bit sectors) */
	EXFAT_E_DIR_TOO_BIG,       /* a directory over 256 MiB */
	EXFAT_E_NOT_FOUND,         /* no such file or directory */
	EXFAT_E_NOT_DIR,           /* a path component is a file */
	EXFAT_E_IS_DIR,            /* extents of a directory were asked for */
	EXFAT_E_BAD_PATH,          /* "..", a component over 255 units, or not UTF-8 */
	EXFAT_E_COUNT
};

/* The message for an error code; never NULL. */
const char *exfat_strerror(int err);
/* The stable short name of an error code ("boot-checksum"...); never NULL. */
const char *exfat_errname(int err);

/* exfat_vol.state */
#define EXFAT_ST_BACKUP_BOOT 0x1u  /* the main boot region was refused: the backup (sectors 12..23) is used */
#define EXFAT_ST_DIRTY 0x2u        /* VolumeDirty set: the volume was not unmounted cleanly */

/* A mounted volume; the caller owns it. All reads go through dev. */
struct exfat_vol {
	struct blk_dev *dev;
	unsigned state;            /* EXFAT_ST_* */
	int main_err;              /* with EXFAT_ST_BACKUP_BOOT: why the main boot region was refused */
	uint64_t vol_sectors;
	uint32_t fat_start;        /* first sector of the active FAT */
	uint32_t fat_sectors;
	uint32_t num_fats;         /* 1, or 2 (TexFAT) */
	uint32_t heap_start;       /* sector of cluster 2 */
	uint32_t clusters;         /* valid numbers are 2..clusters+1 */
	uint32_t clus_shift;       /* log2(sectors per cluster) */
	uint32_t root_cluster;
	uint32_t serial;
	uint32_t bitmap_cluster;   /* the active allocation bitmap */
	uint64_t bitmap_bytes;
	uint32_t upcase_cluster;
	uint32_t upcase_bytes;
	uint16_t upcase_ascii[128]; /* the upcase table's mapping of U+0000..U+007F */
	char label[EXFAT_LABEL_MAX]; /* UTF-8; "" if none */
	/* One cached sector (FAT, bitmap and upcase reads). */
	uint64_t cache_lba;
	int cache_valid;
	uint8_t cache[BLK_SECTOR];
};

/* exfat_file.flags */
#define EXFAT_F_DIR 0x1u           /* a directory */
#define EXFAT_F_CONTIG 0x2u        /* NoFatChain: the clusters are contiguous and the FAT is not used */

/* A file or directory as returned by listing or lookup. */
struct exfat_file {
	char name[EXFAT_NAME_MAX]; /* UTF-8 */
	unsigned flags;            /* EXFAT_F_* */
	uint16_t attr;             /* FileAttributes */
	uint16_t name_hash;
	uint32_t first_cluster;    /* 0: no clusters */
	uint64_t size;             /* DataLength, bytes */
	uint64_t valid_size;       /* ValidDataLength */
	/* Where the entry set lies (fs/grow.c rewrites entries 0 and 1): */
	uint64_t ent_lba[2];       /* sectors of the file entry and of the stream extension */
	uint16_t ent_off[2];       /* their byte offsets in those sectors */
	uint8_t set_n;             /* entries of the set copied into set (0: more than EXFAT_SET_MAX) */
	uint8_t set[EXFAT_SET_MAX * 32]; /* the set as read */
};

/* An open directory being listed; the caller owns it (about 1.1 KiB). */
struct exfat_dir {
	struct exfat_vol *vol;
	uint32_t first_cluster;
	int contig;                /* NoFatChain directory */
	int root;                  /* the root: its chain ends it, and reaching 256 MiB is an error */
	uint64_t bytes;            /* the directory's size (bounds a contiguous one) */
	uint64_t pos;              /* bytes read */
	uint32_t cluster;          /* current cluster */
	uint32_t steps;            /* clusters walked */
	int done;
	uint64_t buf_lba;
	int buf_valid;
	uint8_t buf[BLK_SECTOR];
	uint16_t units[EXFAT_NAME_UNITS]; /* the name of the last set read (UTF-16) */
	uint8_t name_len;
};

/* Read and validate the boot region of dev (checksum; backup region if the main one fails), upcase table and bitmap. */
int exfat_mount(struct exfat_vol *v, struct blk_dev *dev);
/* Nonzero when sector 0 of dev names exFAT ("EXFAT   " at offset 3): exfat_mount's errors then describe this volume. */
int exfat_probe(const uint8_t sector0[BLK_SECTOR]);

/* The cluster after c in the FAT (*next = EXFAT_EOC at the end); checks range, free and bad marks. */
int exfat_next_cluster(struct exfat_vol *v, uint32_t c, uint32_t *next);
/* The first sector (on v->dev) of cluster c (2..clusters+1). */
uint64_t exfat_cluster_lba(const struct exfat_vol *v, uint32_t c);
/* Upper case of UTF-16 unit u by the volume's upcase table (identity where the table says nothing). */
uint16_t exfat_upcase(struct exfat_vol *v, uint16_t u);
/* The sector (on v->dev) holding byte off of the allocation bitmap. */
int exfat_bitmap_lba(struct exfat_vol *v, uint64_t off, uint64_t *lba);
/* EXFAT_OK when clusters [c, c+n) are all allocated in the bitmap, else EXFAT_E_NOT_ALLOCATED or EXFAT_E_IO. */
int exfat_check_alloc(struct exfat_vol *v, uint32_t c, uint32_t n);

/* Start listing the root directory. */
int exfat_dir_open_root(struct exfat_vol *v, struct exfat_dir *d);
/* Start listing directory f; EXFAT_E_NOT_DIR if f is a file. */
int exfat_dir_open(struct exfat_vol *v, const struct exfat_file *f, struct exfat_dir *d);
/* The next file or directory of d (entry set checked: checksum, stream, names, hash). EXFAT_E_END at the end; errors end the listing. */
int exfat_dir_next(struct exfat_dir *d, struct exfat_file *out);

/* Look up path ('/' or '\\'), case-insensitive through the upcase table; "" or "/" is the root. ~2.5 KiB of stack. */
int exfat_open_path(struct exfat_vol *v, const char *path, struct exfat_file *out);

/*
 * Map file f to runs (as ext_build does for FAT): contiguous files are one
 * run, FAT chains are walked only as far as the size needs; every run's
 * clusters must be allocated in the bitmap. EXT_E_CHAIN with map->fat_err
 * holding the exfat_err; EXT_E_OVERFLOW with map->needed.
 */
int exfat_extents(struct exfat_vol *v, const struct exfat_file *f, struct ext_map *map, struct ext_run *runs,
		  uint32_t cap);

#endif
