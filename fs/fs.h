/* fs.h: one interface over the file systems of fs/ (FAT12/16/32, exFAT, NTFS): mount, paths, listing by suffix, a file as extents. */
#ifndef FS_H
#define FS_H

#include <stdint.h>
#include "../block/blk.h"
#include "fat.h"
#include "exfat.h"
#include "ntfs.h"
#include "extent.h"

/* Which implementation a volume or file belongs to. */
enum fs_type { FS_NONE = 0, FS_FAT, FS_EXFAT, FS_NTFS };

/* A file or directory of a volume (from fs_open_path or fs_dir_next). */
struct fs_file {
	int type;
	union {
		struct fat_file fat;
		struct exfat_file exfat;
		struct ntfs_file ntfs;
	} u;
};

/* An open directory being listed (NTFS: ~4.7 KiB). */
struct fs_dir {
	int type;
	union {
		struct fat_dir fat;
		struct exfat_dir exfat;
		struct ntfs_dir ntfs;
	} u;
};

/* A mounted volume of any supported type; the caller owns it (28 KiB with NTFS's buffers: not for the stack). */
struct fs_vol {
	int type;                  /* FS_*: after fs_mount, also on failure (whose error codes the return value is) */
	struct blk_dev *dev;
	union {
		struct fat_vol fat;
		struct exfat_vol exfat;
		struct ntfs_vol ntfs;
	} u;
	struct fs_dir ldir;        /* fs_list_dirs' listing state (kept off the stack) */
	struct fs_file lfile;
};

/*
 * Mount dev: exFAT or NTFS when its boot sector names it, else FAT. Returns that
 * implementation's code (0 = mounted); v->type says which, so fs_strerror
 * and fs_errname explain a failure.
 */
int fs_mount(struct fs_vol *v, struct blk_dev *dev);
/* "FAT12", "FAT16", "FAT32", "exFAT", "NTFS" (or "FAT" when nothing was recognised). */
const char *fs_type_name(const struct fs_vol *v);
/* The volume label in UTF-8 ("" if none). */
const char *fs_label(const struct fs_vol *v);
/* The message / short name of an error code of v's type; never NULL. */
const char *fs_strerror(const struct fs_vol *v, int err);
const char *fs_errname(const struct fs_vol *v, int err);
/* Nonzero when err (from fs_open_path) means the path does not exist (a missing name, or a file where a folder was expected). */
int fs_missing(const struct fs_vol *v, int err);

/* Look up path ('/' or '\\' separated, case-insensitive; "" or "/" is the root). */
int fs_open_path(struct fs_vol *v, const char *path, struct fs_file *out);
/* Start listing directory f; then fs_dir_next until it returns fs_end's code. */
int fs_dir_open(struct fs_vol *v, const struct fs_file *f, struct fs_dir *d);
/* The next entry of d; the type's END code (fs_is_end) at the end; errors end the listing. */
int fs_dir_next(struct fs_dir *d, struct fs_file *out);
/* Nonzero when err is v's "no more entries". */
int fs_is_end(const struct fs_vol *v, int err);

/* The file's name in UTF-8 (the long name where there is one). */
const char *fs_file_name(const struct fs_file *f);
/* Nonzero for a directory. */
int fs_file_is_dir(const struct fs_file *f);
/* The file's size in bytes. */
uint64_t fs_file_size(const struct fs_file *f);

/*
 * The file as runs (ext_build / exfat_extents / ntfs_extents): EXT_OK, EXT_E_OVERFLOW
 * (map->needed), or EXT_E_CHAIN / EXT_E_FS with map->fat_err a code of v's
 * type. Then ext_blk_init makes it a device.
 */
int fs_extents(struct fs_vol *v, const struct fs_file *f, struct ext_map *map, struct ext_run *runs, uint32_t cap);

/* Called for each match by fs_list_dirs; nonzero stops the listing and is returned. */
typedef int (*fs_list_fn)(void *ctx, const char *dir, const struct fs_file *f);
/*
 * For each folder of dirs (NULL-terminated; missing ones skipped) call fn
 * for each regular file whose name ends with one of suffixes (ASCII
 * case-insensitive). Returns 0, fn's nonzero value, or an error of v's type.
 * The listing state lives in v (one listing per volume at a time), not on the stack.
 */
int fs_list_dirs(struct fs_vol *v, const char *const *dirs, const char *const *suffixes, fs_list_fn fn, void *ctx);

#endif
