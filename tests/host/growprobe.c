/* growprobe.c: host test driver of file growth (fs/grow.h): a dynamic VHD file on a FAT/exFAT volume written through vhd/ over ext_blk, as the firmware does, with an optional power cut. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../fs/part.h"
#include "../../fs/fs.h"
#include "../../fs/grow.h"
#include "../../vhd/vhd.h"
#include "../../tools/hostdev.h"

static void usage(void)
{
	fprintf(stderr,
		"usage: growprobe IMG PART PATH [nogrow] [cut=N] LBA:COUNT:SEED ...\n"
		"  Writes COUNT sectors at LBA of the VHD file PATH on partition PART (0: the whole IMG)\n"
		"  through vhd_write over the growable file (fs_grow_init), each sector: its LBA (8 bytes LE),\n"
		"  SEED (4 bytes LE), then bytes (SEED + LBA + i) & 0xFF. nogrow: the file stays fixed.\n"
		"  cut=N: every volume write after the N-th fails (a power cut); the run then stops.\n"
		"  Prints one line per write (ok, or the vhd error) and a summary: grows, clusters, err, size.\n");
	exit(2);
}

/* The volume's device with a write budget: after cut writes every write and flush fails (the power is gone). */
struct cutdev {
	struct blk_dev dev;
	struct blk_dev *under;
	long left;                /* -1: no cut */
	long writes;
};

static int cut_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct cutdev *c = d->priv;
	return blk_read(c->under, lba, count, buf);
}

static int cut_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct cutdev *c = d->priv;
	c->writes++;
	if (c->left == 0)
		return BLK_E_IO;
	if (c->left > 0)
		c->left--;
	return blk_write(c->under, lba, count, buf);
}

static int cut_flush(struct blk_dev *d)
{
	struct cutdev *c = d->priv;
	if (c->left == 0)
		return BLK_E_IO;
	return blk_flush(c->under);
}

/* Fill one sector of the test pattern. */
static void pattern(uint8_t *s, uint64_t lba, uint32_t seed)
{
	for (int i = 0; i < 8; i++)
		s[i] = (uint8_t)(lba >> (8 * i));
	for (int i = 0; i < 4; i++)
		s[8 + i] = (uint8_t)(seed >> (8 * i));
	for (int i = 12; i < 512; i++)
		s[i] = (uint8_t)(seed + lba + (uint64_t)i);
}

int main(int argc, char **argv)
{
	static struct hostdev host;
	static struct part_iter it;
	static struct part_info pi;
	static struct blk_window view;
	static struct fs_vol vol;
	static struct fs_file file;
	static struct ext_map map;
	static struct fs_grow grow;
	static struct vhd vhd;
	static struct cutdev cut;
	struct blk_dev *dev, filedev;
	struct ext_run *runs;
	uint32_t cap = 64;
	int rc, argi = 4, nogrow = 0, grow_rc = 0, failed = 0;
	if (argc < 4)
		usage();
	if (hostdev_open(&host, argv[1], 0)) {
		fprintf(stderr, "growprobe: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	dev = &host.dev;
	if (atoi(argv[2])) {
		rc = part_find(&it, dev, (uint32_t)atoi(argv[2]), &pi);
		if (rc == PART_OK)
			rc = part_blk_init(&view, dev, &pi);
		if (rc) {
			printf("error part %s\n", part_errname(rc));
			return 1;
		}
		dev = &view.dev;
	}
	cut.under = dev;
	cut.left = -1;
	cut.dev = *dev;
	cut.dev.read = cut_read;
	cut.dev.write = cut_write;
	cut.dev.flush = cut_flush;
	cut.dev.write_zeroes = NULL;
	cut.dev.priv = &cut;
	for (; argi < argc && !strchr(argv[argi], ':'); argi++) {
		if (!strcmp(argv[argi], "nogrow"))
			nogrow = 1;
		else if (!strncmp(argv[argi], "cut=", 4))
			cut.left = atol(argv[argi] + 4);
		else
			usage();
	}
	rc = fs_mount(&vol, &cut.dev);
	if (rc) {
		printf("error mount %s\n", fs_errname(&vol, rc));
		return 1;
	}
	rc = fs_open_path(&vol, argv[3], &file);
	if (rc) {
		printf("error open %s\n", fs_errname(&vol, rc));
		return 1;
	}
	for (;;) {
		runs = calloc(cap + GROW_SPARE_RUNS, sizeof(*runs));
		if (!runs)
			return 1;
		rc = fs_extents(&vol, &file, &map, runs, cap + GROW_SPARE_RUNS);
		if (rc != EXT_E_OVERFLOW)
			break;
		cap = map.needed;
		free(runs);
	}
	if (rc) {
		printf("error extents %s %s\n", ext_errname(rc), fs_errname(&vol, map.fat_err));
		return 1;
	}
	if (!nogrow) {
		grow_rc = fs_grow_init(&grow, &vol, &file, &map);
		printf("grow-init %s\n", grow_errname(grow_rc));
	}
	ext_blk_init(&map, &filedev);
	rc = vhd_open(&vhd, &filedev, 0);
	if (rc) {
		printf("error vhd-open %s\n", vhd_errname(rc));
		return 1;
	}
	if (vhd_bat_bytes(&vhd)) {
		uint32_t *bat = malloc(vhd_bat_bytes(&vhd));
		if (!bat || (rc = vhd_load_bat(&vhd, bat)) != 0) {
			printf("error vhd-bat %s\n", bat ? vhd_errname(rc) : "memory");
			return 1;
		}
	}
	for (; argi < argc; argi++) {
		unsigned long long lba;
		unsigned count, seed;
		uint8_t *buf;
		if (sscanf(argv[argi], "%llu:%u:%u", &lba, &count, &seed) != 3 || !count)
			usage();
		buf = malloc((size_t)count * 512);
		if (!buf)
			return 1;
		for (unsigned k = 0; k < count; k++)
			pattern(buf + (size_t)k * 512, lba + k, seed);
		rc = vhd_write(&vhd, lba, count, buf);
		if (!rc)
			rc = vhd_flush(&vhd);
		printf("write %llu %u %s\n", lba, count, rc ? vhd_errname(rc) : "ok");
		free(buf);
		if (rc) {
			failed = 1;
			if (cut.left == 0)
				break;  /* the power is gone: nothing after this would reach the disk */
		}
	}
	printf("summary grows=%u clusters=%u err=%s broken=%d size=%llu runs=%u writes=%ld\n", grow.grows, grow.added,
	       grow_errname(nogrow ? 0 : grow_rc ? grow_rc : grow.err), grow.broken, (unsigned long long)map.size_bytes,
	       map.count, cut.writes);
	hostdev_close(&host);
	return failed ? 3 : 0;
}
