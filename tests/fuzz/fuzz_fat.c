/* fuzz_fat.c: libFuzzer target: fs/fat.c and fs/extent.c (mount, directory walk with long names, path lookup, suffix listing, extents and the file view). */
#include <stdint.h>
#include <string.h>
#include "fuzz_common.h"
#include "../../fs/fat.h"
#include "../../fs/fat_format.h"  /* FAT_ATTR_DIR */
#include "../../fs/extent.h"

/*
 * Input: a path (NUL-terminated, at most FUZZ_FAT_PATH bytes; none if no
 * NUL there) then the volume image. Bounds keep one input's work small.
 */
#define FUZZ_FAT_PATH 64u
#define FUZZ_FAT_MAX_FILES 400u
#define FUZZ_FAT_MAX_DEPTH 4
#define FUZZ_FAT_RUNS 32u

static void code_ok(int rc)
{
	if (rc < 0 || rc >= FAT_E_COUNT || !fat_strerror(rc) || !fat_errname(rc))
		__builtin_trap();
}

static void ext_code_ok(int rc)
{
	if (rc < 0 || rc >= EXT_E_COUNT || !ext_strerror(rc) || !ext_errname(rc))
		__builtin_trap();
}

static void file_ok(const struct fat_file *f)
{
	fuzz_str_ok(f->name, sizeof(f->name));
	fuzz_str_ok(f->short_name, sizeof(f->short_name));
	if (!f->name[0] && f->short_name[0])
		__builtin_trap();              /* a listed entry always has a name */
}

/* Map a file to runs and read its first and last sectors through the view: everything stays on the volume. */
static void extents(struct fat_vol *v, const struct fat_file *f)
{
	static struct ext_run runs[FUZZ_FAT_RUNS];
	struct ext_map map;
	int rc = ext_build(v, f, &map, runs, FUZZ_FAT_RUNS);
	ext_code_ok(rc);
	if (rc != EXT_OK)
		return;
	uint64_t at = 0;
	for (uint32_t i = 0; i < map.count; i++) {
		if (runs[i].file_sector != at || runs[i].sectors == 0 ||
		    runs[i].lba + runs[i].sectors > v->dev->sectors)
			__builtin_trap();      /* runs must tile the file and lie on the volume */
		at += runs[i].sectors;
	}
	if (at < map.sectors || ext_find(&map, map.sectors) != -1)
		__builtin_trap();
	struct blk_dev dev;
	ext_blk_init(&map, &dev);
	uint8_t buf[BLK_SECTOR];
	if (dev.sectors && (blk_read(&dev, 0, 1, buf) != BLK_OK || blk_read(&dev, dev.sectors - 1, 1, buf) != BLK_OK))
		__builtin_trap();
	if (blk_read(&dev, dev.sectors, 1, buf) == BLK_OK)
		__builtin_trap();
}

/* List directory d (depth levels deep at most), mapping every file; *budget bounds the entries visited. */
static void walk(struct fat_vol *v, struct fat_dir *d, int depth, uint32_t *budget)
{
	struct fat_file f;
	int rc;
	while (*budget && (rc = fat_dir_next(d, &f)) == FAT_OK) {
		--*budget;
		file_ok(&f);
		if (f.attr & FAT_ATTR_DIR) {
			if (depth < FUZZ_FAT_MAX_DEPTH) {
				static struct fat_dir sub[FUZZ_FAT_MAX_DEPTH];
				rc = fat_dir_open(v, &f, &sub[depth]);
				code_ok(rc);
				if (rc == FAT_OK)
					walk(v, &sub[depth], depth + 1, budget);
			}
		} else {
			extents(v, &f);
		}
	}
	if (*budget)
		code_ok(rc);
}

static int count_fn(void *ctx, const char *dir, const struct fat_file *f)
{
	fuzz_str_ok(dir, FAT_NAME_MAX * 2);
	file_ok(f);
	return ++*(uint32_t *)ctx >= FUZZ_FAT_MAX_FILES;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[FUZZ_FAT_PATH + 1] = "/boot/disk.vhd";
	const uint8_t *nul = memchr(data, 0, size < FUZZ_FAT_PATH ? size : FUZZ_FAT_PATH);
	if (nul) {
		memcpy(path, data, (size_t)(nul - data) + 1);
		size -= (size_t)(nul - data) + 1;
		data = nul + 1;
	}
	struct fuzz_disk disk;
	/* The seeds keep only a volume's metadata: the device is as long as the BPB says (zeros after the input), at most 4 GiB. */
	uint64_t total = 1;
	if (size >= 36) {
		total = (uint32_t)(data[19] | data[20] << 8);
		if (!total)
			total = (uint32_t)(data[32] | data[33] << 8 | data[34] << 16 | (uint32_t)data[35] << 24);
		total = (total & 0x7FFFFFu) + 1;
	}
	if (fuzz_disk_init(&disk, data, size, total, 0))
		return 0;
	static struct fat_vol v;
	int rc = fat_mount(&v, &disk.blk);
	code_ok(rc);
	if (rc == FAT_OK) {
		fuzz_str_ok(v.label, sizeof(v.label));
		if (v.type != 12 && v.type != 16 && v.type != 32)
			__builtin_trap();
		if ((uint64_t)v.data_start + ((uint64_t)v.clusters << v.clus_shift) > disk.blk.sectors)
			__builtin_trap();      /* a mounted volume's clusters lie on the device */
		static struct fat_dir root;
		uint32_t budget = FUZZ_FAT_MAX_FILES;
		rc = fat_dir_open_root(&v, &root);
		code_ok(rc);
		if (rc == FAT_OK)
			walk(&v, &root, 0, &budget);
		static struct fat_file f;
		rc = fat_open_path(&v, path, &f);
		code_ok(rc);
		if (rc == FAT_OK) {
			file_ok(&f);
			if (!(f.attr & FAT_ATTR_DIR))
				extents(&v, &f);
		}
		static const char *const suffixes[] = { ".vhd", ".vhdx", NULL };
		static const char *const dirs[] = { "/", "/boot", "/images", NULL };
		uint32_t n = 0;
		rc = fat_list_dirs(&v, dirs, suffixes, count_fn, &n);
		if (rc < 0 || (rc > 1 && rc >= FAT_E_COUNT))
			__builtin_trap();
	}
	fuzz_disk_free(&disk);
	return 0;
}
