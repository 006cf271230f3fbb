/* fsprobe.c: host test driver over fs/: list partitions and directories, map files to extents, dump and write files through ext_blk. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../fs/part.h"
#include "../../fs/fat.h"
#include "../../fs/fat_format.h"
#include "../../fs/extent.h"
#include "../../fs/fs.h"
#include "../../tools/hostdev.h"

static const char *blk_name(int rc)
{
	static const char *n[] = { "ok", "io", "range", "ro", "nospace" };
	return rc >= 0 && rc <= 4 ? n[rc] : "unknown";
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fsprobe parts IMG\n"
		"       fsprobe info IMG PART          (PART 0: the whole disk is the volume)\n"
		"       fsprobe ls IMG PART PATH\n"
		"       fsprobe tree IMG PART\n"
		"       fsprobe find IMG PART          (*.vhd in /, /vhd, /images)\n"
		"       fsprobe extents IMG PART PATH\n"
		"       fsprobe cat IMG PART PATH      (through ext_blk, requests of 1..67 sectors)\n"
		"       fsprobe write IMG PART PATH LBA COUNT BYTE   (prints the blk status)\n"
		"       fsprobe walk IMG               (everything above on every volume; exits 0 unless it crashes)\n"
		"       fsprobe fs-info|fs-tree|fs-find IMG PART, fs-extents|fs-cat IMG PART PATH,\n"
		"       fsprobe fs-write IMG PART PATH LBA COUNT BYTE: the same through fs/fs.h (FAT or exFAT)\n");
	exit(2);
}

/* State of one opened volume: disk, partition view, FAT. */
struct probe {
	struct hostdev host;
	struct part_iter it;
	struct part_info pi;
	struct blk_window view;          /* the partition (view.dev) */
	struct fat_vol vol;
};

/* Open img read-only (or read-write) and mount partition part (0: the whole disk); prints errors. */
static int probe_open(struct probe *p, const char *img, unsigned part, int rw)
{
	int rc;
	struct blk_dev *dev;
	if (hostdev_open(&p->host, img, rw ? 0 : HOSTDEV_RDONLY)) {
		fprintf(stderr, "fsprobe: %s: %s\n", img, strerror(errno));
		return -1;
	}
	dev = &p->host.dev;
	if (part) {
		rc = part_find(&p->it, dev, part, &p->pi);
		if (rc == PART_OK)
			rc = part_blk_init(&p->view, dev, &p->pi);
		if (rc) {
			printf("error part %s\n", part_errname(rc));
			fprintf(stderr, "fsprobe: partition %u: %s\n", part, part_strerror(rc));
			return -1;
		}
		dev = &p->view.dev;
	}
	rc = fat_mount(&p->vol, dev);
	if (rc) {
		printf("error fat %s\n", fat_errname(rc));
		fprintf(stderr, "fsprobe: mount: %s\n", fat_strerror(rc));
		return -1;
	}
	return 0;
}

static int cmd_parts(const char *img)
{
	struct hostdev h;
	struct part_iter it;
	struct part_info pi;
	int rc, bad = 0;
	if (hostdev_open(&h, img, HOSTDEV_RDONLY)) {
		fprintf(stderr, "fsprobe: %s: %s\n", img, strerror(errno));
		return 1;
	}
	rc = part_open(&it, &h.dev);
	if (rc) {
		printf("error %s\n", part_errname(rc));
		hostdev_close(&h);
		return 1;
	}
	printf("scheme %s%s\n", it.scheme == PART_SCHEME_GPT ? "gpt" : "mbr",
	       (it.state & PART_ST_GPT_BACKUP) ? " backup" : "");
	while ((rc = part_next(&it, &pi)) != PART_E_END) {
		char t[40];
		if (rc != PART_OK && rc != PART_E_BEYOND_DISK && rc != PART_E_GPT_BAD_RANGE) {
			printf("error %s\n", part_errname(rc));
			bad = 1;
			break;
		}
		if (pi.scheme == PART_SCHEME_GPT)
			part_guid_str(pi.type_guid, t);
		else
			snprintf(t, sizeof(t), "0x%02x", pi.type);
		printf("%u %llu %llu %s %s%s%s\n", pi.index, (unsigned long long)pi.start, (unsigned long long)pi.sectors,
		       t, (pi.flags & PART_F_LOGICAL) ? "logical" : "-", rc ? " error " : "", rc ? part_errname(rc) : "");
		if (pi.name[0])
			printf("  name %s\n", pi.name);
		bad |= rc != PART_OK;
	}
	hostdev_close(&h);
	return bad;
}

static void print_entry(const char *prefix, const struct fat_file *f)
{
	if (f->attr & FAT_ATTR_DIR)
		printf("D - %s%s\n", prefix, f->name);
	else
		printf("F %u %s%s\n", f->size, prefix, f->name);
}

static int cmd_ls(struct probe *p, const char *path)
{
	struct fat_file f;
	struct fat_dir d;
	int rc = fat_open_path(&p->vol, path, &f);
	if (rc == FAT_OK)
		rc = fat_dir_open(&p->vol, &f, &d);
	while (rc == FAT_OK && (rc = fat_dir_next(&d, &f)) == FAT_OK) {
		print_entry("", &f);
		printf("  short %s\n", f.short_name);
	}
	if (rc != FAT_E_END) {
		printf("error %s\n", fat_errname(rc));
		return 1;
	}
	return 0;
}

/* Recursive listing of dir (a fat_file) with full paths; bounded depth and entry budget. */
static int tree(struct probe *p, const struct fat_file *dir, const char *path, int depth, long *budget, int quiet)
{
	struct fat_dir d;
	struct fat_file f;
	char sub[4096];
	int rc = fat_dir_open(&p->vol, dir, &d), bad = 0;
	if (rc) {
		if (!quiet)
			printf("error %s %s\n", fat_errname(rc), path);
		return 1;
	}
	while ((rc = fat_dir_next(&d, &f)) == FAT_OK) {
		if (--*budget < 0)
			return 1;
		snprintf(sub, sizeof(sub), "%s/%s", path, f.name);
		if (!quiet && (f.attr & FAT_ATTR_DIR))
			printf("D - %s\n", sub);
		else if (!quiet)
			printf("F %u %s\n", f.size, sub);
		if ((f.attr & FAT_ATTR_DIR) && depth < 16)
			bad |= tree(p, &f, sub, depth + 1, budget, quiet);
	}
	if (rc != FAT_E_END) {
		if (!quiet)
			printf("error %s %s\n", fat_errname(rc), path);
		return 1;
	}
	return bad;
}

/* Map f to extents; the array starts at 2 runs and grows to what EXT_E_OVERFLOW reports. */
static int map_file(struct probe *p, const struct fat_file *f, struct ext_map *m, struct ext_run **runs, int quiet)
{
	uint32_t cap = 2;
	int rc;
	*runs = malloc(cap * sizeof(**runs));
	rc = ext_build(&p->vol, f, m, *runs, cap);
	if (rc == EXT_E_OVERFLOW) {
		if (!quiet)
			fprintf(stderr, "fsprobe: %u runs needed, %u given: retrying\n", m->needed, cap);
		cap = m->needed;
		*runs = realloc(*runs, cap * sizeof(**runs));
		rc = ext_build(&p->vol, f, m, *runs, cap);
	}
	if (rc && !quiet)
		printf("error %s%s%s\n", ext_errname(rc), rc == EXT_E_CHAIN ? " " : "",
		       rc == EXT_E_CHAIN ? fat_errname(m->fat_err) : "");
	return rc;
}

/* Read the whole file through ext_blk with requests of varying sizes into out (size bytes), checking the limits. */
static int dump_file(struct ext_map *m, FILE *out)
{
	static const uint32_t sizes[] = { 1, 7, 64, 3, 67, 2, 16 };
	struct blk_dev b;
	uint8_t *buf = malloc(67 * 512);
	uint64_t lba = 0, left;
	unsigned k = 0;
	int rc = 0;
	ext_blk_init(m, &b);
	if (b.sectors != m->sectors || b.size_bytes != m->size_bytes || b.max_sectors != b.sectors)
		rc = -1;
	while (!rc && lba < b.sectors) {
		uint32_t n = sizes[k++ % 7];
		if (n > b.sectors - lba)
			n = (uint32_t)(b.sectors - lba);
		rc = blk_read(&b, lba, n, buf);
		if (rc)
			break;
		left = b.size_bytes - lba * 512;
		if (out)
			fwrite(buf, 1, left < (uint64_t)n * 512 ? left : (uint64_t)n * 512, out);
		lba += n;
	}
	if (!rc && blk_read(&b, b.sectors, 1, buf) != BLK_E_RANGE)
		rc = -2;
	free(buf);
	return rc;
}

static int cmd_extents(struct probe *p, const char *path)
{
	struct fat_file f;
	struct ext_map m;
	struct ext_run *runs;
	uint32_t i;
	int rc = fat_open_path(&p->vol, path, &f);
	if (rc) {
		printf("error %s\n", fat_errname(rc));
		return 1;
	}
	rc = map_file(p, &f, &m, &runs, 0);
	if (!rc) {
		printf("size %llu sectors %u alloc %u runs %u cluster %u%s\n", (unsigned long long)m.size_bytes, m.sectors,
		       m.alloc_sectors, m.count, p->vol.sec_per_clus, m.chain_longer ? " chain-longer" : "");
		for (i = 0; i < m.count; i++)
			printf("run %u %u %llu\n", runs[i].file_sector, runs[i].sectors, (unsigned long long)runs[i].lba);
		/* Every sector maps into the run that binary search finds. */
		for (i = 0; i < m.alloc_sectors; i++) {
			int32_t r = ext_find(&m, i);
			if (r < 0 || i < runs[r].file_sector || i >= runs[r].file_sector + runs[r].sectors) {
				printf("error ext_find %u\n", i);
				rc = 1;
				break;
			}
		}
		if (ext_find(&m, m.alloc_sectors) != -1)
			rc = 1;
	}
	free(runs);
	return rc != 0;
}

static int cmd_cat(struct probe *p, const char *path)
{
	struct fat_file f;
	struct ext_map m;
	struct ext_run *runs;
	int rc = fat_open_path(&p->vol, path, &f);
	if (rc) {
		fprintf(stderr, "fsprobe: %s: %s\n", path, fat_strerror(rc));
		return 1;
	}
	rc = map_file(p, &f, &m, &runs, 0);
	if (!rc)
		rc = dump_file(&m, stdout);
	if (rc)
		fprintf(stderr, "fsprobe: cat failed (%d)\n", rc);
	free(runs);
	return rc != 0;
}

static int cmd_write(struct probe *p, const char *path, uint64_t lba, uint32_t count, int byte)
{
	struct fat_file f;
	struct ext_map m;
	struct ext_run *runs;
	struct blk_dev b;
	uint8_t *buf;
	int rc = fat_open_path(&p->vol, path, &f);
	if (rc) {
		printf("error %s\n", fat_errname(rc));
		return 1;
	}
	rc = map_file(p, &f, &m, &runs, 0);
	if (rc) {
		free(runs);
		return 1;
	}
	ext_blk_init(&m, &b);
	buf = malloc((size_t)count * 512 + 1);
	memset(buf, byte, (size_t)count * 512);
	rc = blk_write(&b, lba, count, buf);
	if (!rc)
		rc = blk_flush(&b);
	printf("%s\n", blk_name(rc));
	free(buf);
	free(runs);
	return 0;
}

/* What `find` lists: the firmware scan's folders and suffix (kernel/scan.c, the VHD format). */
static const char *const find_dirs[] = { "/", "/vhd", "/images", NULL };
static const char *const find_sfx[] = { ".vhd", NULL };

static int find_cb(void *ctx, const char *dir, const struct fat_file *f)
{
	(void)ctx;
	printf("%s%s%s %u\n", dir, dir[1] ? "/" : "", f->name, f->size);
	return 0;
}

/* Walk one volume: every directory, every file mapped and read; damage is reported, never fatal. */
static void walk_volume(struct probe *p, const char *what)
{
	struct fat_file root;
	long budget = 20000;
	int rc = fat_open_path(&p->vol, "/", &root);
	printf("volume %s fat%d clusters %u\n", what, p->vol.type, p->vol.clusters);
	if (!rc)
		tree(p, &root, "", 0, &budget, 1);
	fat_list_dirs(&p->vol, find_dirs, find_sfx, find_cb, NULL);
	/* Read each file of the root and one level down. */
	{
		struct fat_dir d, d2;
		struct fat_file f, g;
		int files = 0;
		if (fat_dir_open_root(&p->vol, &d))
			return;
		while (fat_dir_next(&d, &f) == FAT_OK && files < 200) {
			struct ext_map m;
			struct ext_run *runs;
			if (f.attr & FAT_ATTR_DIR) {
				if (fat_dir_open(&p->vol, &f, &d2))
					continue;
				while (fat_dir_next(&d2, &g) == FAT_OK && files < 200) {
					if (g.attr & FAT_ATTR_DIR)
						continue;
					files++;
					if (map_file(p, &g, &m, &runs, 1) == EXT_OK)
						dump_file(&m, NULL);
					free(runs);
				}
				continue;
			}
			files++;
			if (map_file(p, &f, &m, &runs, 1) == EXT_OK)
				dump_file(&m, NULL);
			free(runs);
		}
	}
}

static int cmd_walk(const char *img)
{
	struct probe *p = calloc(1, sizeof(*p));
	struct part_iter it;
	struct part_info pi;
	int rc, n = 0;
	if (hostdev_open(&p->host, img, HOSTDEV_RDONLY)) {
		fprintf(stderr, "fsprobe: %s: %s\n", img, strerror(errno));
		free(p);
		return 1;
	}
	if (fat_mount(&p->vol, &p->host.dev) == FAT_OK)
		walk_volume(p, "disk");
	rc = part_open(&it, &p->host.dev);
	printf("parts %s\n", part_errname(rc));
	while (rc == PART_OK && n < 300) {
		rc = part_next(&it, &pi);
		n++;
		if (rc == PART_E_END)
			break;
		if (rc != PART_OK) {
			printf("part error %s\n", part_errname(rc));
			rc = rc == PART_E_BEYOND_DISK || rc == PART_E_GPT_BAD_RANGE ? PART_OK : rc;
			continue;
		}
		if (part_blk_init(&p->view, &p->host.dev, &pi) != PART_OK)
			continue;
		if (fat_mount(&p->vol, &p->view.dev) == FAT_OK) {
			char what[32];
			snprintf(what, sizeof(what), "part%u", pi.index);
			walk_volume(p, what);
		}
	}
	hostdev_close(&p->host);
	free(p);
	return 0;
}

/* ------------------------------------------------------------------ the same through fs/fs.h (any file system) */

/* One volume through fs.h. */
struct gprobe {
	struct hostdev host;
	struct part_iter it;
	struct part_info pi;
	struct blk_window view;
	struct fs_vol vol;
};

/* FSPROBE_COUNT set: every read of the image is counted and printed at exit (bench/fs_lookup.py). */
static int (*count_next)(struct blk_dev *, uint64_t, uint32_t, void *);
static unsigned long count_reads, count_sectors;

static int count_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	count_reads++;
	count_sectors += count;
	return count_next(d, lba, count, buf);
}

static void count_report(void)
{
	fprintf(stderr, "fsprobe: reads %lu sectors %lu\n", count_reads, count_sectors);
}

static int gprobe_open(struct gprobe *p, const char *img, unsigned part, int rw)
{
	int rc;
	struct blk_dev *dev;
	if (hostdev_open(&p->host, img, rw ? 0 : HOSTDEV_RDONLY)) {
		fprintf(stderr, "fsprobe: %s: %s\n", img, strerror(errno));
		return -1;
	}
	dev = &p->host.dev;
	if (getenv("FSPROBE_COUNT")) {
		count_next = dev->read;
		dev->read = count_read;
		atexit(count_report);
	}
	if (part) {
		rc = part_find(&p->it, dev, part, &p->pi);
		if (rc == PART_OK)
			rc = part_blk_init(&p->view, dev, &p->pi);
		if (rc) {
			printf("error part %s\n", part_errname(rc));
			return -1;
		}
		dev = &p->view.dev;
	}
	rc = fs_mount(&p->vol, dev);
	if (rc) {
		printf("error %s %s\n", fs_type_name(&p->vol), fs_errname(&p->vol, rc));
		fprintf(stderr, "fsprobe: mount: %s\n", fs_strerror(&p->vol, rc));
		return -1;
	}
	return 0;
}

static int gtree(struct gprobe *p, const struct fs_file *dir, const char *path, int depth, long *budget, int quiet)
{
	struct fs_dir *d = malloc(sizeof(*d));
	struct fs_file *f = malloc(sizeof(*f));
	char *sub = malloc(4096);
	int rc = fs_dir_open(&p->vol, dir, d), bad = 0;
	while (rc == 0 && (rc = fs_dir_next(d, f)) == 0) {
		if (--*budget < 0) {
			bad = 1;
			break;
		}
		snprintf(sub, 4096, "%s/%s", path, fs_file_name(f));
		if (!quiet && fs_file_is_dir(f))
			printf("D - %s\n", sub);
		else if (!quiet)
			printf("F %llu %s\n", (unsigned long long)fs_file_size(f), sub);
		if (fs_file_is_dir(f) && depth < 16)
			bad |= gtree(p, f, sub, depth + 1, budget, quiet);
	}
	if (!bad && !fs_is_end(&p->vol, rc)) {
		if (!quiet)
			printf("error %s %s\n", fs_errname(&p->vol, rc), path);
		bad = 1;
	}
	free(d);
	free(f);
	free(sub);
	return bad;
}

static int gmap(struct gprobe *p, const struct fs_file *f, struct ext_map *m, struct ext_run **runs, int quiet)
{
	uint32_t cap = 2;
	int rc;
	*runs = malloc(cap * sizeof(**runs));
	rc = fs_extents(&p->vol, f, m, *runs, cap);
	if (rc == EXT_E_OVERFLOW) {
		cap = m->needed;
		*runs = realloc(*runs, cap * sizeof(**runs));
		rc = fs_extents(&p->vol, f, m, *runs, cap);
	}
	if (rc && !quiet)
		printf("error %s%s%s\n", ext_errname(rc), rc == EXT_E_CHAIN || rc == EXT_E_FS ? " " : "",
		       rc == EXT_E_CHAIN || rc == EXT_E_FS ? fs_errname(&p->vol, m->fat_err) : "");
	return rc;
}

static int gfind_cb(void *ctx, const char *dir, const struct fs_file *f)
{
	(void)ctx;
	printf("%s%s%s %llu\n", dir, dir[1] ? "/" : "", fs_file_name(f), (unsigned long long)fs_file_size(f));
	return 0;
}

/* fsprobe fs-* commands. */
static int cmd_fs(int argc, char **argv)
{
	struct gprobe *p = calloc(1, sizeof(*p));
	struct fs_file *f = calloc(1, sizeof(*f));
	struct ext_map m;
	struct ext_run *runs = NULL;
	const char *cmd = argv[1] + 3;
	int rc = 1;
	if (gprobe_open(p, argv[2], (unsigned)strtoul(argv[3], NULL, 0), !strcmp(cmd, "write")))
		goto out;
	if (!strcmp(cmd, "info")) {
		printf("%s label '%s'\n", fs_type_name(&p->vol), fs_label(&p->vol));
		if (p->vol.type == FS_EXFAT)
			printf("clusters %u spc %u heap %u serial %08X%s%s\n", p->vol.u.exfat.clusters,
			       1u << p->vol.u.exfat.clus_shift, p->vol.u.exfat.heap_start, p->vol.u.exfat.serial,
			       (p->vol.u.exfat.state & EXFAT_ST_BACKUP_BOOT) ? " backup-boot " : "",
			       (p->vol.u.exfat.state & EXFAT_ST_BACKUP_BOOT) ? exfat_errname(p->vol.u.exfat.main_err) : "");
		rc = 0;
	} else if (!strcmp(cmd, "tree")) {
		long budget = 1000000;
		rc = fs_open_path(&p->vol, "/", f);
		if (!rc)
			rc = gtree(p, f, "", 0, &budget, 0);
	} else if (!strcmp(cmd, "find")) {
		rc = fs_list_dirs(&p->vol, find_dirs, find_sfx, gfind_cb, NULL);
		if (rc)
			printf("error %s\n", fs_errname(&p->vol, rc));
	} else if (argc >= 5 && (!strcmp(cmd, "extents") || !strcmp(cmd, "cat") || !strcmp(cmd, "write"))) {
		rc = fs_open_path(&p->vol, argv[4], f);
		if (rc) {
			printf("error %s\n", fs_errname(&p->vol, rc));
			goto out;
		}
		rc = gmap(p, f, &m, &runs, 0);
		if (rc)
			goto out;
		if (!strcmp(cmd, "extents")) {
			printf("size %llu sectors %u alloc %u runs %u\n", (unsigned long long)m.size_bytes, m.sectors,
			       m.alloc_sectors, m.count);
			for (uint32_t i = 0; i < m.count; i++)
				printf("run %u %u %llu\n", runs[i].file_sector, runs[i].sectors,
				       (unsigned long long)runs[i].lba);
		} else if (!strcmp(cmd, "cat")) {
			rc = dump_file(&m, stdout);
			if (rc)
				fprintf(stderr, "fsprobe: cat failed (%d)\n", rc);
		} else if (argc == 8) {
			struct blk_dev b;
			uint32_t count = (uint32_t)strtoul(argv[6], NULL, 0);
			uint8_t *buf = malloc((size_t)count * 512 + 1);
			ext_blk_init(&m, &b);
			memset(buf, (int)strtol(argv[7], NULL, 0), (size_t)count * 512);
			rc = blk_write(&b, strtoull(argv[5], NULL, 0), count, buf);
			if (!rc)
				rc = blk_flush(&b);
			printf("%s\n", blk_name(rc));
			free(buf);
			rc = 0;
		} else {
			usage();
		}
	} else {
		usage();
	}
out:
	hostdev_close(&p->host);
	free(runs);
	free(f);
	free(p);
	return rc != 0;
}

int main(int argc, char **argv)
{
	struct probe *p;
	int rc;
	if (argc < 3)
		usage();
	if (!strcmp(argv[1], "parts"))
		return cmd_parts(argv[2]);
	if (!strcmp(argv[1], "walk"))
		return cmd_walk(argv[2]);
	if (argc < 4)
		usage();
	if (!strncmp(argv[1], "fs-", 3))
		return cmd_fs(argc, argv);
	p = calloc(1, sizeof(*p));
	if (probe_open(p, argv[2], (unsigned)strtoul(argv[3], NULL, 0), !strcmp(argv[1], "write"))) {
		hostdev_close(&p->host);
		free(p);
		return 1;
	}
	if (!strcmp(argv[1], "info")) {
		printf("fat%d clusters %u spc %u total %u data %u label '%s' serial %08X\n", p->vol.type, p->vol.clusters,
		       p->vol.sec_per_clus, p->vol.total_sectors, p->vol.data_start, p->vol.label, p->vol.serial);
		rc = 0;
	} else if (!strcmp(argv[1], "ls") && argc == 5) {
		rc = cmd_ls(p, argv[4]);
	} else if (!strcmp(argv[1], "tree")) {
		struct fat_file root;
		long budget = 1000000;
		rc = fat_open_path(&p->vol, "/", &root);
		if (!rc)
			rc = tree(p, &root, "", 0, &budget, 0);
	} else if (!strcmp(argv[1], "find")) {
		rc = fat_list_dirs(&p->vol, find_dirs, find_sfx, find_cb, NULL);
		if (rc)
			printf("error %s\n", fat_errname(rc));
	} else if (!strcmp(argv[1], "extents") && argc == 5) {
		rc = cmd_extents(p, argv[4]);
	} else if (!strcmp(argv[1], "cat") && argc == 5) {
		rc = cmd_cat(p, argv[4]);
	} else if (!strcmp(argv[1], "write") && argc == 8) {
		rc = cmd_write(p, argv[4], strtoull(argv[5], NULL, 0), (uint32_t)strtoul(argv[6], NULL, 0),
			       (int)strtol(argv[7], NULL, 0));
	} else {
		usage();
		rc = 2;
	}
	hostdev_close(&p->host);
	free(p);
	return rc != 0;
}
