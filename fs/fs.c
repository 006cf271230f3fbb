/* fs.c: dispatch of the fs.h interface to FAT (fat.c + extent.c), exFAT (exfat.c) or NTFS (ntfs.c), and the suffix listing over them. */
#include <stddef.h>
#include "fs.h"
#include "fat_format.h"
#include "fs_util.h"

int fs_mount(struct fs_vol *v, struct blk_dev *dev)
{
	uint8_t s[BLK_SECTOR];
	if (!v || !dev)
		return FAT_E_BAD_ARG;
	v->dev = dev;
	v->type = FS_FAT;
	if (dev->sectors && blk_read(dev, 0, 1, s) == BLK_OK && exfat_probe(s)) {
		v->type = FS_EXFAT;
		return exfat_mount(&v->u.exfat, dev);
	}
	if (dev->sectors && ntfs_probe(s)) {
		v->type = FS_NTFS;
		return ntfs_mount(&v->u.ntfs, dev);
	}
	return fat_mount(&v->u.fat, dev);
}

const char *fs_type_name(const struct fs_vol *v)
{
	if (v->type == FS_EXFAT)
		return "exFAT";
	if (v->type == FS_NTFS)
		return "NTFS";
	return v->u.fat.type == 12 ? "FAT12" : v->u.fat.type == 16 ? "FAT16" : v->u.fat.type == 32 ? "FAT32" : "FAT";
}

const char *fs_label(const struct fs_vol *v)
{
	return v->type == FS_EXFAT ? v->u.exfat.label : v->type == FS_NTFS ? v->u.ntfs.label : v->u.fat.label;
}

const char *fs_strerror(const struct fs_vol *v, int err)
{
	return v->type == FS_EXFAT ? exfat_strerror(err) : v->type == FS_NTFS ? ntfs_strerror(err) : fat_strerror(err);
}

const char *fs_errname(const struct fs_vol *v, int err)
{
	return v->type == FS_EXFAT ? exfat_errname(err) : v->type == FS_NTFS ? ntfs_errname(err) : fat_errname(err);
}

int fs_missing(const struct fs_vol *v, int err)
{
	if (v->type == FS_EXFAT)
		return err == EXFAT_E_NOT_FOUND || err == EXFAT_E_NOT_DIR;
	if (v->type == FS_NTFS)
		return err == NTFS_E_NOT_FOUND || err == NTFS_E_NOT_DIR;
	return err == FAT_E_NOT_FOUND || err == FAT_E_NOT_DIR;
}

int fs_is_end(const struct fs_vol *v, int err)
{
	return err == (v->type == FS_EXFAT ? EXFAT_E_END : v->type == FS_NTFS ? NTFS_E_END : FAT_E_END);
}

int fs_open_path(struct fs_vol *v, const char *path, struct fs_file *out)
{
	out->type = v->type;
	if (v->type == FS_EXFAT)
		return exfat_open_path(&v->u.exfat, path, &out->u.exfat);
	if (v->type == FS_NTFS)
		return ntfs_open_path(&v->u.ntfs, path, &out->u.ntfs);
	return fat_open_path(&v->u.fat, path, &out->u.fat);
}

int fs_dir_open(struct fs_vol *v, const struct fs_file *f, struct fs_dir *d)
{
	d->type = v->type;
	if (f->type != v->type)
		return v->type == FS_EXFAT ? EXFAT_E_BAD_ARG : v->type == FS_NTFS ? NTFS_E_BAD_ARG : FAT_E_BAD_ARG;
	if (v->type == FS_EXFAT)
		return exfat_dir_open(&v->u.exfat, &f->u.exfat, &d->u.exfat);
	if (v->type == FS_NTFS)
		return ntfs_dir_open(&v->u.ntfs, &f->u.ntfs, &d->u.ntfs);
	return fat_dir_open(&v->u.fat, &f->u.fat, &d->u.fat);
}

int fs_dir_next(struct fs_dir *d, struct fs_file *out)
{
	out->type = d->type;
	if (d->type == FS_EXFAT)
		return exfat_dir_next(&d->u.exfat, &out->u.exfat);
	if (d->type == FS_NTFS)
		return ntfs_dir_next(&d->u.ntfs, &out->u.ntfs);
	return fat_dir_next(&d->u.fat, &out->u.fat);
}

const char *fs_file_name(const struct fs_file *f)
{
	return f->type == FS_EXFAT ? f->u.exfat.name : f->type == FS_NTFS ? f->u.ntfs.name : f->u.fat.name;
}

int fs_file_is_dir(const struct fs_file *f)
{
	if (f->type == FS_EXFAT)
		return (f->u.exfat.flags & EXFAT_F_DIR) != 0;
	if (f->type == FS_NTFS)
		return (f->u.ntfs.flags & NTFS_F_DIR) != 0;
	return (f->u.fat.attr & FAT_ATTR_DIR) != 0;
}

uint64_t fs_file_size(const struct fs_file *f)
{
	return f->type == FS_EXFAT ? f->u.exfat.size : f->type == FS_NTFS ? f->u.ntfs.size : f->u.fat.size;
}

int fs_extents(struct fs_vol *v, const struct fs_file *f, struct ext_map *map, struct ext_run *runs, uint32_t cap)
{
	if (f->type != v->type)
		return EXT_E_BAD_ARG;
	if (v->type == FS_EXFAT)
		return exfat_extents(&v->u.exfat, &f->u.exfat, map, runs, cap);
	if (v->type == FS_NTFS)
		return ntfs_extents(&v->u.ntfs, &f->u.ntfs, map, runs, cap);
	return ext_build(&v->u.fat, &f->u.fat, map, runs, cap);
}

/* fs_list_dirs for one folder. */
static int fs_list_one(struct fs_vol *v, const char *dir, const char *const *suffixes, fs_list_fn fn, void *ctx)
{
	struct fs_dir *d = &v->ldir;
	struct fs_file *f = &v->lfile;
	int rc = fs_open_path(v, dir, f);
	if (rc)
		return rc;
	rc = fs_dir_open(v, f, d);
	if (rc)
		return rc;
	while ((rc = fs_dir_next(d, f)) == 0) {
		if (fs_file_is_dir(f) || !fat_has_suffix(fs_file_name(f), suffixes))
			continue;
		rc = fn(ctx, dir, f);
		if (rc)
			return rc;
	}
	return fs_is_end(v, rc) ? 0 : rc;
}

int fs_list_dirs(struct fs_vol *v, const char *const *dirs, const char *const *suffixes, fs_list_fn fn, void *ctx)
{
	if (!v || !dirs || !suffixes || !fn)
		return FAT_E_BAD_ARG;
	for (; *dirs; dirs++) {
		int rc = fs_list_one(v, *dirs, suffixes, fn, ctx);
		if (fs_missing(v, rc))
			continue;
		if (rc)
			return rc;
	}
	return 0;
}
