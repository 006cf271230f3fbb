/* fuzz_fs.c: libFuzzer target over fs/fs.h: mount (FAT, exFAT or NTFS by the input's boot sector), walk two folder levels, look paths up, map and read files (read-only). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_common.h"     /* fuzz_disk: the input as a read-only device that traps on writes and out-of-range reads */
#include "../../fs/fs.h"

#define FUZZ_MAX_RUNS 4096u
#define FUZZ_ENTRIES 64            /* entries listed per folder */

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
	struct fuzz_disk disk;
	if (fuzz_disk_init(&disk, data, size, 64, 0))     /* at least 64 sectors: the rest reads as zeros */
		return 0;
	struct fs_vol *v = calloc(1, sizeof(*v));
	struct fs_dir *d = calloc(2, sizeof(*d));
	struct fs_file *f = calloc(3, sizeof(*f));
	struct ext_run *runs = calloc(FUZZ_MAX_RUNS, sizeof(*runs));
	if (v && d && f && runs && fs_mount(v, &disk.blk) == 0) {
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
	fuzz_disk_free(&disk);
	return 0;
}
