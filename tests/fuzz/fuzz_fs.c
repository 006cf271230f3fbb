/* fuzz_fs.c: libFuzzer target over fs/fs.h: mount (FAT, exFAT or NTFS by the input's boot sector), walk two folder levels, look paths up, map and read files (read-only). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../fs/fs.h"

#define FUZZ_MAX_RUNS 4096u
#define FUZZ_ENTRIES 64            /* entries listed per folder */

/* The fuzz input as a read-only device of at least 64 sectors (the rest reads as zeros). */
struct fuzz_mem {
	const uint8_t *data;
	size_t size;
};

/* Read count sectors at lba; past the end is BLK_E_RANGE, as a real device would say. */
static int fuzz_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	const struct fuzz_mem *m = d->priv;
	if (lba > d->sectors || count > d->sectors - lba)
		return BLK_E_RANGE;
	uint64_t off = lba * BLK_SECTOR;
	size_t n = (size_t)count * BLK_SECTOR;
	memset(buf, 0, n);
	if (off < m->size) {
		size_t avail = m->size - (size_t)off;
		memcpy(buf, m->data + off, avail < n ? avail : n);
	}
	return BLK_OK;
}

/* fs/ never writes metadata, and the target opens files only for reads. */
static int fuzz_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	(void)d; (void)lba; (void)count; (void)buf;
	__builtin_trap();
}

static int fuzz_flush(struct blk_dev *d)
{
	(void)d;
	return BLK_OK;
}

/* Map f and read its first and last few sectors through ext_blk. */
static void fuzz_file(struct fs_vol *v, const struct fs_file *f, struct ext_run *runs)
{
	struct ext_map map;
	struct blk_dev fd;
	uint8_t buf[4 * BLK_SECTOR];
	if (fs_extents(v, f, &map, runs, FUZZ_MAX_RUNS) != EXT_OK)
		return;
	ext_blk_init(&map, &fd);
	fd.read_only = 1;
	if (fd.sectors) {
		uint32_t n = fd.sectors < 4 ? (uint32_t)fd.sectors : 4;
		(void)blk_read(&fd, 0, n, buf);
		(void)blk_read(&fd, fd.sectors - n, n, buf);
	}
}

static int fuzz_list_cb(void *ctx, const char *dir, const struct fs_file *f)
{
	(void)ctx;
	(void)dir;
	(void)fs_file_name(f);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const dirs[] = { "/", "/vhd", "/images", NULL };
	static const char *const sfx[] = { ".vhd", ".vhdx", NULL };
	struct fuzz_mem m = { data, size };
	struct blk_dev dev;
	struct fs_vol *v = calloc(1, sizeof(*v));
	struct fs_dir *d = calloc(2, sizeof(*d));
	struct fs_file *f = calloc(3, sizeof(*f));
	struct ext_run *runs = calloc(FUZZ_MAX_RUNS, sizeof(*runs));
	memset(&dev, 0, sizeof(dev));
	dev.name = "fuzz";
	dev.sectors = (size + BLK_SECTOR - 1) / BLK_SECTOR;
	if (dev.sectors < 64)
		dev.sectors = 64;
	dev.size_bytes = dev.sectors * BLK_SECTOR;
	dev.max_sectors = dev.sectors;
	dev.read_only = 1;
	dev.read = fuzz_read;
	dev.write = fuzz_write;
	dev.flush = fuzz_flush;
	dev.priv = &m;
	if (fs_mount(v, &dev) == 0) {
		(void)fs_label(v);
		(void)fs_list_dirs(v, dirs, sfx, fuzz_list_cb, NULL);
		(void)fs_open_path(v, "/images/Some Long Name.VHD", &f[2]);
		if (fs_open_path(v, "/", &f[0]) == 0 && fs_dir_open(v, &f[0], &d[0]) == 0) {
			for (int i = 0; i < FUZZ_ENTRIES && fs_dir_next(&d[0], &f[1]) == 0; i++) {
				if (!fs_file_is_dir(&f[1])) {
					fuzz_file(v, &f[1], runs);
					continue;
				}
				if (fs_dir_open(v, &f[1], &d[1]) != 0)
					continue;
				for (int k = 0; k < FUZZ_ENTRIES && fs_dir_next(&d[1], &f[2]) == 0; k++)
					if (!fs_file_is_dir(&f[2]))
						fuzz_file(v, &f[2], runs);
			}
		}
	}
	free(runs);
	free(f);
	free(d);
	free(v);
	return 0;
}
