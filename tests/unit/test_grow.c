/* test_grow.c: cmocka tests of fs/grow.c on in-memory FAT16, FAT32 and exFAT volumes (made by mkfs at test time, a file entry written by hand): growth, NoFatChain kept or converted, full volumes, refusals, and a power cut after every device write. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../fs/fs.h"
#include "../../fs/grow.h"
#include "ramdev.h"

/* ------------------------------------------------------------------ volumes */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint32_t get32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A RAM disk of mib MiB holding what the mkfs command line made (run on a temporary file). */
static struct ramdev *mkfs_ram(const char *mkfs, uint32_t mib)
{
	char path[] = "/tmp/test_grow-XXXXXX", cmd[256];
	int fd = mkstemp(path);
	struct ramdev *r;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)mib << 20), 0);
	close(fd);
	snprintf(cmd, sizeof(cmd), "%s %s >/dev/null 2>&1", mkfs, path);
	assert_int_equal(system(cmd), 0);
	r = ramdev_new((uint64_t)mib << 11, (uint64_t)mib << 11, 0);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(r->data, 1, r->cap, f), r->cap);
	fclose(f);
	unlink(path);
	return r;
}

/* The first free 32-byte slot of the root directory's first sector(s) (FAT: name[0] == 0; exFAT: type 0). */
static uint8_t *root_slot(struct ramdev *r, struct fs_vol *v, uint32_t need)
{
	uint64_t lba = v->type == FS_EXFAT ? exfat_cluster_lba(&v->u.exfat, v->u.exfat.root_cluster)
			: v->u.fat.type == 32 ? fat_cluster_lba(&v->u.fat, v->u.fat.root_cluster) : v->u.fat.root_start;
	uint8_t *s = r->data + lba * 512;
	for (uint32_t i = 0; i + need <= 16; i++)
		if (s[i * 32] == 0)
			return s + i * 32;
	fail_msg("no free root slot");
	return s;
}

static uint16_t sum16(uint16_t s, uint8_t b)
{
	return (uint16_t)(((s & 1) ? 0x8000u : 0) + (s >> 1) + b);
}

/* An empty file "d.vhd" in the root (FAT: short entry D.VHD; exFAT: a file/stream/name set). */
static void add_empty_file(struct ramdev *r, int exfat)
{
	struct fs_vol *v = calloc(1, sizeof(*v));
	assert_int_equal(fs_mount(v, &r->blk), 0);
	if (!exfat) {
		uint8_t *e = root_slot(r, v, 1);
		memcpy(e, "D       VHD", 11);
		e[11] = 0x20;
	} else {
		static const char name[] = "d.vhd", up[] = "D.VHD";
		uint8_t *e = root_slot(r, v, 3);
		uint16_t hash = 0, cs = 0;
		memset(e, 0, 96);
		e[0] = 0x85;
		e[1] = 2;
		e[4] = 0x20;
		e[32] = 0xC0;
		e[33] = 0x01;                     /* AllocationPossible */
		e[35] = 5;
		for (int i = 0; i < 5; i++) {
			hash = sum16(hash, (uint8_t)up[i]);
			hash = sum16(hash, 0);
			put16(e + 64 + 2 + 2 * i, (uint8_t)name[i]);
		}
		put16(e + 36, hash);
		e[64] = 0xC1;
		for (int k = 0; k < 96; k++)
			if (k != 2 && k != 3)
				cs = sum16(cs, e[k]);
		put16(e + 2, cs);
	}
	free(v);
}

/* Everything a growable file needs, opened from r. */
struct gfile {
	struct fs_vol vol;
	struct fs_file f;
	struct ext_map map;
	struct ext_run runs[8 + GROW_SPARE_RUNS];
	struct fs_grow g;
	struct blk_dev dev;
};

/* Mount r, open /d.vhd, map it and make it growable (expect: fs_grow_init's result; -1: any). */
static struct gfile *gopen(struct ramdev *r, int expect)
{
	struct gfile *gf = calloc(1, sizeof(*gf));
	assert_int_equal(fs_mount(&gf->vol, &r->blk), 0);
	assert_int_equal(fs_open_path(&gf->vol, "/d.vhd", &gf->f), 0);
	assert_int_equal(fs_extents(&gf->vol, &gf->f, &gf->map, gf->runs, 8 + GROW_SPARE_RUNS), EXT_OK);
	int rc = fs_grow_init(&gf->g, &gf->vol, &gf->f, &gf->map);
	if (expect >= 0)
		assert_int_equal(rc, expect);
	ext_blk_init(&gf->map, &gf->dev);
	return gf;
}

static void fill(uint8_t *b, uint32_t n, uint8_t seed)
{
	for (uint32_t i = 0; i < n * 512; i++)
		b[i] = (uint8_t)(seed + i * 7 + (i >> 9));
}

/* Write n sectors at file sector lba with seed's pattern through the growable device. */
static int gwrite(struct gfile *gf, uint64_t lba, uint32_t n, uint8_t seed)
{
	uint8_t *b = malloc((size_t)n * 512);
	fill(b, n, seed);
	int rc = blk_write(&gf->dev, lba, n, b);
	free(b);
	return rc;
}

/* The file as mounted afresh from r: its size, and (reads must match) seed's pattern at [lba, lba+n). */
static uint64_t reopen_check(struct ramdev *r, uint64_t lba, uint32_t n, uint8_t seed)
{
	struct gfile *gf = gopen(r, -1);   /* after a cut the chain may run past the size: growth refused, reads fine */
	uint64_t size = gf->map.size_bytes;
	if (n) {
		uint8_t *want = malloc((size_t)n * 512), *got = malloc((size_t)n * 512);
		fill(want, n, seed);
		assert_int_equal(blk_read(&gf->dev, lba, n, got), BLK_OK);
		assert_memory_equal(got, want, (size_t)n * 512);
		free(want);
		free(got);
	}
	free(gf);
	return size;
}

/* fsck's verdict on r's bytes (tool: "fsck.fat -n" or "fsck.exfat -n"): its exit status. */
static int fsck_ram(struct ramdev *r, const char *tool)
{
	char path[] = "/tmp/test_grow-fsck-XXXXXX", cmd[256];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, r->data, r->cap), (ssize_t)r->cap);
	close(fd);
	snprintf(cmd, sizeof(cmd), "%s %s >/dev/null 2>&1", tool, path);
	int rc = system(cmd);
	unlink(path);
	return rc;
}

/* fsck's view of a volume after a power cut. */
enum fsck_view { FSCK_CLEAN, FSCK_LOST, FSCK_LONG, FSCK_DAMAGED };

static const char *const fsck_view_name[] = { "clean", "lost clusters", "chain longer than the size", "damaged" };

/* Is line one of fsck.fat -n's reports of lost clusters, differing FAT copies or an over-long chain (or its chatter)? */
static int fsck_fat_line_ok(const char *ln)
{
	static const char *const ok[] = { "fsck.fat", "Leaving filesystem unchanged", " files, ", "Free cluster summary",
					  "Reclaimed", "unused cluster", "FATs differ", "Using first FAT",
					  "cluster chain length is > ", "Truncating file", "/D.VHD" };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strstr(ln, ok[i]))
			return 1;
	return ln[strspn(ln, " \t\r\n")] == 0;
}

/*
 * fsck.fat -n's (exfat 0) or fsck.exfat -n's (exfat 1) view of r: clean (exit 0),
 * lost clusters (FAT: only "Reclaimed ... unused clusters" / differing FAT copies),
 * a chain longer than the size (fsck.fat "chain length is >", fsck.exfat "more
 * clusters are allocated", nothing else wrong), or damaged (anything else).
 */
static enum fsck_view fsck_view_ram(struct ramdev *r, int exfat, char *text, size_t cap)
{
	char path[] = "/tmp/test_grow-fsck-XXXXXX", cmd[256], ln[512];
	int fd = mkstemp(path), bad = 0;
	size_t used = 0;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, r->data, r->cap), (ssize_t)r->cap);
	close(fd);
	snprintf(cmd, sizeof(cmd), "%s -n %s 2>&1", exfat ? "fsck.exfat" : "fsck.fat", path);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	text[0] = 0;
	while (fgets(ln, sizeof(ln), p)) {
		size_t n = strlen(ln);
		if (used + n < cap) {
			memcpy(text + used, ln, n + 1);
			used += n;
		}
		if (exfat)
			bad |= !!strstr(ln, "ERROR") && !strstr(ln, "more clusters are allocated");
		else
			bad |= !fsck_fat_line_ok(ln);
	}
	int st = pclose(p);
	unlink(path);
	if (st == 0)
		return FSCK_CLEAN;
	if (bad)
		return FSCK_DAMAGED;
	if (strstr(text, exfat ? "more clusters are allocated" : "chain length is >"))
		return FSCK_LONG;
	return exfat ? FSCK_DAMAGED : FSCK_LOST;   /* fsck.exfat 1.2 reports no lost bitmap bits: a failure is something else */
}

/* ------------------------------------------------------------------ FAT */

static void test_fat32_grows(void **state)
{
	(void)state;
	struct ramdev *r = mkfs_ram("mkfs.fat -F 32 -s 1", 34);
	add_empty_file(r, 0);
	struct gfile *gf = gopen(r, GROW_OK);
	assert_int_equal(gf->dev.sectors, 0);
	assert_true(gf->dev.max_sectors >= 8000000);
	/* From empty: clusters found, the entry gets its first cluster and size. */
	assert_int_equal(gwrite(gf, 0, 3, 1), BLK_OK);
	assert_int_equal(gf->dev.sectors, 3);
	assert_int_equal(gf->g.grows, 1);
	/* Past the end by far: the chain continues (contiguously here), the old last sector is carried to the new end. */
	uint8_t last[512], now[512];
	assert_int_equal(blk_read(&gf->dev, 2, 1, last), BLK_OK);
	assert_int_equal(gf->map.grow(gf->map.grow_ctx, &gf->map, 1000 * 512), BLK_OK);
	gf->dev.sectors = gf->map.sectors;
	assert_int_equal(blk_read(&gf->dev, 999, 1, now), BLK_OK);
	assert_memory_equal(now, last, 512);
	assert_int_equal(gf->map.count, 1);
	assert_int_equal(gwrite(gf, 1500, 10, 2), BLK_OK);
	assert_int_equal(gf->dev.sectors, 1510);
	/* Both FATs agree; FSInfo's counts are "unknown". */
	struct fat_vol *fv = &gf->vol.u.fat;
	assert_int_equal(fv->nfats, 2);
	assert_memory_equal(r->data + (uint64_t)fv->fat0_start * 512,
			    r->data + ((uint64_t)fv->fat0_start + fv->fat_sectors) * 512, (size_t)fv->fat_sectors * 512);
	assert_int_equal(get32(r->data + fv->fsinfo * 512 + 488), 0xFFFFFFFFu);
	assert_int_equal(get32(r->data + fv->fsinfo * 512 + 492), 0xFFFFFFFFu);
	free(gf);
	assert_int_equal(reopen_check(r, 1500, 10, 2), 1510 * 512);
	assert_int_equal(reopen_check(r, 0, 3, 1), 1510 * 512);
	assert_int_equal(fsck_ram(r, "fsck.fat -n"), 0);
	ramdev_free(r);
}

static void test_fat16_grows_fat12_refused(void **state)
{
	(void)state;
	struct ramdev *r = mkfs_ram("mkfs.fat -F 16 -s 4", 16);
	add_empty_file(r, 0);
	struct gfile *gf = gopen(r, GROW_OK);
	assert_int_equal(gwrite(gf, 0, 8, 3), BLK_OK);
	assert_int_equal(gwrite(gf, 100, 8, 4), BLK_OK);
	free(gf);
	assert_int_equal(reopen_check(r, 100, 8, 4), 108 * 512);
	assert_int_equal(fsck_ram(r, "fsck.fat -n"), 0);
	ramdev_free(r);
	r = mkfs_ram("mkfs.fat -F 12", 2);
	add_empty_file(r, 0);
	gf = gopen(r, GROW_E_FAT12);
	assert_null(gf->map.grow);
	assert_int_equal(gwrite(gf, 0, 1, 1), BLK_E_NOSPACE);
	free(gf);
	ramdev_free(r);
}

static void test_fat32_full_and_limits(void **state)
{
	(void)state;
	struct ramdev *r = mkfs_ram("mkfs.fat -F 32 -s 1", 34);
	add_empty_file(r, 0);
	struct gfile *gf = gopen(r, GROW_OK);
	struct fat_vol *fv = &gf->vol.u.fat;
	assert_int_equal(gwrite(gf, 0, 4, 1), BLK_OK);
	/* Every free cluster but 10 marked bad (in both FATs). */
	uint32_t left = 10;
	for (uint32_t c = 2; c < fv->clusters + 2; c++) {
		for (uint32_t k = 0; k < 2; k++) {
			uint8_t *p = r->data + ((uint64_t)fv->fat0_start + k * fv->fat_sectors) * 512 + c * 4;
			if (get32(p) == 0 && (c < fv->clusters - 100 || !left)) {
				p[0] = 0xF7; p[1] = 0xFF; p[2] = 0xFF; p[3] = 0x0F;
			}
		}
		if (get32(r->data + (uint64_t)fv->fat0_start * 512 + c * 4) == 0 && left)
			left--;
	}
	free(gf);
	gf = gopen(r, GROW_OK);
	int writes = r->writes;
	assert_int_equal(gwrite(gf, 100, 1, 2), BLK_E_NOSPACE);   /* 97 clusters needed, 10 free */
	assert_int_equal(gf->g.err, GROW_E_FULL);
	assert_int_equal(r->writes, writes);                       /* refused before anything was written */
	assert_int_equal(gwrite(gf, 200, 1, 2), BLK_E_NOSPACE);    /* a bigger need: refused without a scan */
	assert_int_equal(gwrite(gf, 8, 4, 3), BLK_OK);             /* 8 more clusters still fit */
	assert_int_equal(gf->g.broken, 0);
	/* FAT's size limit: 4 GiB - 1. */
	assert_int_equal(gf->map.grow(gf->map.grow_ctx, &gf->map, 1ull << 32), BLK_E_NOSPACE);
	assert_int_equal(gf->g.err, GROW_E_TOO_BIG);
	free(gf);
	assert_int_equal(reopen_check(r, 8, 4, 3), 12 * 512);
	ramdev_free(r);
}

/* ------------------------------------------------------------------ exFAT */

/* The stream extension of /d.vhd in r (its entry set, as fs/ found it). */
static uint8_t *exfat_stream(struct ramdev *r)
{
	struct gfile *gf = gopen(r, GROW_OK);
	uint8_t *p = r->data + gf->f.u.exfat.ent_lba[1] * 512 + gf->f.u.exfat.ent_off[1];
	free(gf);
	return p;
}

/* Mark cluster c in use in the bitmap of r (another file's cluster). */
static void exfat_take(struct ramdev *r, struct exfat_vol *v, uint32_t c)
{
	uint64_t lba;
	assert_int_equal(exfat_bitmap_lba(v, (c - 2) / 8, &lba), 0);
	r->data[lba * 512 + ((c - 2) / 8) % 512] |= (uint8_t)(1u << ((c - 2) & 7));
}

static void test_exfat_contiguous_then_converted(void **state)
{
	(void)state;
	struct ramdev *r = mkfs_ram("mkfs.exfat -c 4K", 8);
	add_empty_file(r, 1);
	struct gfile *gf = gopen(r, GROW_OK);
	assert_int_equal(gwrite(gf, 0, 20, 1), BLK_OK);          /* 3 clusters */
	assert_int_equal(gwrite(gf, 60, 4, 2), BLK_OK);          /* 8: they follow */
	assert_true(gf->g.contig);
	uint32_t first = gf->g.first, last = gf->g.last;
	assert_int_equal(last, first + 7);
	free(gf);
	uint8_t *st = exfat_stream(r);
	assert_int_equal(st[1] & 0x03, 0x03);                    /* AllocationPossible, NoFatChain */
	assert_int_equal(get32(st + 8), 64 * 512);               /* ValidDataLength */
	assert_int_equal(get32(st + 24), 64 * 512);              /* DataLength */
	assert_int_equal(fsck_ram(r, "fsck.exfat -n"), 0);
	/* Another file takes the cluster after it: the next growth writes the chain and clears NoFatChain. */
	gf = gopen(r, GROW_OK);
	exfat_take(r, &gf->vol.u.exfat, last + 1);
	free(gf);
	gf = gopen(r, GROW_OK);
	assert_int_equal(gwrite(gf, 100, 8, 3), BLK_OK);
	assert_false(gf->g.contig);
	assert_int_equal(gf->map.count, 2);
	struct exfat_vol *xv = &gf->vol.u.exfat;
	for (uint32_t c = first; c < last; c++)
		assert_int_equal(get32(r->data + (uint64_t)xv->fat_start * 512 + c * 4), c + 1);
	assert_int_equal(get32(r->data + (uint64_t)xv->fat_start * 512 + last * 4), last + 2);  /* linked past the taken one */
	free(gf);
	st = exfat_stream(r);
	assert_int_equal(st[1] & 0x03, 0x01);
	assert_int_equal(reopen_check(r, 100, 8, 3), 108 * 512);
	assert_int_equal(reopen_check(r, 0, 20, 1), 108 * 512);
	/* fsck would see the taken cluster as lost (no file owns it): give it back before asking. */
	gf = gopen(r, GROW_OK);
	uint64_t lba;
	assert_int_equal(exfat_bitmap_lba(&gf->vol.u.exfat, (last + 1 - 2) / 8, &lba), 0);
	r->data[lba * 512 + ((last - 1) / 8) % 512] &= (uint8_t)~(1u << ((last - 1) & 7));
	free(gf);
	assert_int_equal(fsck_ram(r, "fsck.exfat -n"), 0);
	ramdev_free(r);
}

static void test_exfat_full_and_refusals(void **state)
{
	(void)state;
	struct ramdev *r = mkfs_ram("mkfs.exfat -c 4K", 8);
	add_empty_file(r, 1);
	struct gfile *gf = gopen(r, GROW_OK);
	assert_int_equal(gwrite(gf, 0, 8, 1), BLK_OK);
	/* Every cluster taken. */
	for (uint32_t c = 2; c < gf->vol.u.exfat.clusters + 2; c++)
		exfat_take(r, &gf->vol.u.exfat, c);
	free(gf);
	gf = gopen(r, GROW_OK);
	int writes = r->writes;
	assert_int_equal(gwrite(gf, 8, 1, 2), BLK_E_NOSPACE);
	assert_int_equal(gf->g.err, GROW_E_FULL);
	assert_int_equal(r->writes, writes);
	assert_int_equal(gwrite(gf, 7, 1, 2), BLK_OK);          /* inside the file: a write, no growth */
	free(gf);
	/* An entry set straddling two sectors, and TexFAT, are refused by name. */
	struct fs_vol *v = calloc(1, sizeof(*v));
	struct fs_file *f = calloc(1, sizeof(*f));
	struct ext_map m;
	struct ext_run runs[4];
	struct fs_grow *g = calloc(1, sizeof(*g));
	assert_int_equal(fs_mount(v, &r->blk), 0);
	assert_int_equal(fs_open_path(v, "/d.vhd", f), 0);
	assert_int_equal(fs_extents(v, f, &m, runs, 4), EXT_OK);
	f->u.exfat.ent_lba[1]++;
	assert_int_equal(fs_grow_init(g, v, f, &m), GROW_E_SET);
	assert_null(m.grow);
	f->u.exfat.ent_lba[1]--;
	v->u.exfat.num_fats = 2;
	assert_int_equal(fs_grow_init(g, v, f, &m), GROW_E_TEXFAT);
	v->u.exfat.num_fats = 1;
	r->blk.read_only = 1;
	assert_int_equal(fs_grow_init(g, v, f, &m), GROW_E_RO);
	r->blk.read_only = 0;
	/* NTFS never grows. */
	v->type = f->type = FS_NTFS;
	assert_int_equal(fs_grow_init(g, v, f, &m), GROW_E_NTFS);
	assert_string_equal(grow_errname(GROW_E_NTFS), "ntfs");
	assert_non_null(strstr(grow_strerror(GROW_E_FULL), "too few free clusters"));
	assert_string_equal(grow_errname(GROW_E_COUNT), "unknown");
	free(v);
	free(f);
	free(g);
	ramdev_free(r);
}

/* ------------------------------------------------------------------ power cuts */

/*
 * A file of 10 sectors with a cluster after it taken, grown by a write of 1 sector
 * far past its end; the power cut after every device write k. Afterwards the file
 * must open and map (size old or new, every cluster accounted for); with the new
 * size its last sector holds the old last sector or the write; the old data is whole.
 * fsck -n judges every cut state: clean or lost clusters only, except at most one
 * cut (links links: 1 for a chained file, 0 when the link is the entry's) whose
 * chain is longer than the size, exactly where fs/ sees it so, and the very next
 * device write is the size's.
 */
static void power_cut_sweep(const char *mkfs, uint32_t mib, int exfat, int links)
{
	struct ramdev *base = mkfs_ram(mkfs, mib);
	add_empty_file(base, exfat);
	struct gfile *gf = gopen(base, GROW_OK);
	assert_int_equal(gwrite(gf, 0, 10, 1), BLK_OK);
	uint32_t last = gf->g.last;
	if (exfat) {
		exfat_take(base, &gf->vol.u.exfat, last + 1);
	} else {
		struct fat_vol *fv = &gf->vol.u.fat;
		for (uint32_t k = 0; k < fv->nfats; k++) {   /* a one-cluster file in the root, so no cluster is lost before */
			uint8_t *p = base->data + ((uint64_t)fv->fat0_start + k * fv->fat_sectors) * 512 + (last + 1) * 4;
			p[0] = 0xFF; p[1] = 0xFF; p[2] = 0xFF; p[3] = 0x0F;
		}
		uint8_t *e = root_slot(base, &gf->vol, 1);
		memcpy(e, "TAKEN   BIN", 11);
		e[11] = 0x20;
		put16(e + 26, (uint16_t)(last + 1));
		put16(e + 20, (uint16_t)((last + 1) >> 16));
		e[28] = 1;                                    /* 1 byte */
	}
	free(gf);
	if (!exfat) {
		char text[4096];
		assert_int_equal(fsck_view_ram(base, 0, text, sizeof(text)), FSCK_CLEAN);
	}
	/* How many device writes the whole growth takes. */
	struct ramdev *r = ramdev_clone(base);
	gf = gopen(r, GROW_OK);
	int w0 = r->writes;
	assert_int_equal(gwrite(gf, 300, 1, 2), BLK_OK);
	int total = r->writes - w0;
	assert_true(total >= 5);
	free(gf);
	ramdev_free(r);
	int cut_long = 0, long_at = -1, views[4] = { 0 };
	uint64_t *sizes = calloc((size_t)total + 1, sizeof(*sizes));
	for (int k = 0; k <= total; k++) {
		r = ramdev_clone(base);
		gf = gopen(r, GROW_OK);
		r->writes_left = k;
		int rc = gwrite(gf, 300, 1, 2);
		assert_int_equal(rc, k < total ? BLK_E_IO : BLK_OK);
		if (k < total) {
			assert_int_equal(gf->g.broken, 1);
			assert_int_equal(gwrite(gf, 400, 1, 3), BLK_E_IO);   /* no further growth after a failed one */
		}
		free(gf);
		r->writes_left = -1;
		uint64_t size = reopen_check(r, 0, 10, 1);
		assert_true(size == 10 * 512 || size == 301 * 512);
		sizes[k] = size;
		int longer;
		{
			struct gfile *g3 = gopen(r, -1);
			/* A cut between the link and the size leaves the chain longer than the size: growth is refused. */
			longer = g3->map.chain_longer;
			if (longer)
				assert_int_equal(fs_grow_init(&g3->g, &g3->vol, &g3->f, &g3->map), GROW_E_CHAIN);
			cut_long += longer;
			if (longer)
				long_at = k;
			free(g3);
		}
		if (size == 301 * 512) {
			struct gfile *g2 = gopen(r, -1);
			uint8_t got[512], old[10 * 512], data[512];
			fill(old, 10, 1);
			fill(data, 1, 2);
			assert_int_equal(blk_read(&g2->dev, 300, 1, got), BLK_OK);
			assert_true(!memcmp(got, old + 9 * 512, 512) || !memcmp(got, data, 512));
			free(g2);
		}
		char text[4096];
		enum fsck_view v = fsck_view_ram(r, exfat, text, sizeof(text));
		if (v == FSCK_DAMAGED || (v == FSCK_LONG) != longer)
			fail_msg("cut after %d of %d writes: fsck: %s (fs/: chain %s the size)\n%s", k, total,
				 fsck_view_name[v], longer ? "longer than" : "matches", text);
		views[v]++;
		ramdev_free(r);
	}
	char at[32] = "";
	if (long_at >= 0)
		snprintf(at, sizeof(at), " (after write %d)", long_at);
	print_message("%s: %d device writes; cut after each: fsck clean %d, lost clusters %d, chain longer than the size %d%s\n",
		      mkfs, total, views[FSCK_CLEAN], views[FSCK_LOST], views[FSCK_LONG], at);
	assert_int_equal(cut_long, links);
	/* The link's write and the size's are consecutive: one write later the size is the new one. */
	if (long_at >= 0) {
		assert_int_equal(sizes[long_at], 10 * 512);
		assert_int_equal(sizes[long_at + 1], 301 * 512);
	}
	free(sizes);
	ramdev_free(base);
}

static void test_power_cut_fat32(void **state)
{
	(void)state;
	power_cut_sweep("mkfs.fat -F 32 -s 1", 34, 0, 1);
}

static void test_power_cut_exfat(void **state)
{
	(void)state;
	power_cut_sweep("mkfs.exfat -c 512", 4, 1, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fat32_grows),
		cmocka_unit_test(test_fat16_grows_fat12_refused),
		cmocka_unit_test(test_fat32_full_and_limits),
		cmocka_unit_test(test_exfat_contiguous_then_converted),
		cmocka_unit_test(test_exfat_full_and_refusals),
		cmocka_unit_test(test_power_cut_fat32),
		cmocka_unit_test(test_power_cut_exfat),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
