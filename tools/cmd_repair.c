/* cmd_repair.c: `vhdtool repair`: restore a damaged end footer from its copy, fix checksums that alone are wrong, cut a torn tail; --dry-run. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vhdtool.h"
#include "../vhd/vhd_util.h"   /* vhd_be32, vhd_put32, checksum offsets */

const char repair_usage[] =
"usage: vhdtool repair [-f vhd|vhdx] [--dry-run] [--sync] IMAGE\n"
"\n"
"Repair what can be repaired without guessing, and nothing else:\n"
"  - an end footer that is damaged while the copy at offset 0 is good: the\n"
"    copy is written back at the end;\n"
"  - a footer whose checksum alone is wrong (both copies agree, or a fixed\n"
"    disk's footer matches the file's size): the checksum is recomputed;\n"
"  - a dynamic header whose checksum alone is wrong: recomputed;\n"
"  - a missing or stale footer copy at offset 0: rewritten from the end footer;\n"
"  - a torn tail (bytes after the last block: an interrupted allocation, an\n"
"    old 511-byte footer, a file that is not a whole number of sectors): the\n"
"    footer is put right after the last block and the file is cut there.\n"
"Every plan is first checked by opening the image as it would be (in memory);\n"
"an image it cannot make open cleanly is refused, unchanged, with the reason.\n"
"Leaked holes between blocks are left to 'vhdtool compact'.\n"
"  -f FORMAT  vhd or vhdx (default: by content; raw refused)\n"
"  --dry-run  print what would be done; write nothing\n"
"  --sync     fsync after each step; default: one fsync at the end\n"
"  --help     this text\n"
"Exit status: 0 repaired (or nothing to do), 1 not repairable (unchanged),\n"
"2 unreadable or bad arguments.\n"
"Crash-safe order: end footer, footer copy at 0, header, then (torn tail) the\n"
"footer after the last block and the cut; each step alone leaves an image at\n"
"least as usable as before.\n"
"VHDX: a pending log replayed into the file, a bad header copy rewritten from\n"
"the current one, a bad (or differing) region table copy from the good one,\n"
"blocks and sector bitmaps past the end of the file cleared (their data is\n"
"lost: said per block); anything else is refused unchanged.\n";

#define REPAIR_MAX_PATCH 4

/* The image as a repair plan would leave it: the file's sectors, some replaced, cut at size_bytes. */
struct repair_view {
	struct blk_dev dev;
	struct blk_dev *base;
	int n;
	uint64_t lba[REPAIR_MAX_PATCH];
	uint32_t count[REPAIR_MAX_PATCH];
	const uint8_t *data[REPAIR_MAX_PATCH];
};

/* blk_dev read of the view: the base file, zeros past its end, patches on top. */
static int repair_view_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct repair_view *w = d->priv;
	uint8_t *out = buf;

	for (uint32_t i = 0; i < count; i++) {
		uint64_t s = lba + i;
		int hit = 0;
		for (int k = w->n - 1; k >= 0 && !hit; k--)
			if (s >= w->lba[k] && s < w->lba[k] + w->count[k]) {
				memcpy(out + (size_t)i * VHD_SECTOR, w->data[k] + (s - w->lba[k]) * VHD_SECTOR, VHD_SECTOR);
				hit = 1;
			}
		if (hit)
			continue;
		if (s < w->base->sectors) {
			if (w->base->read(w->base, s, 1, out + (size_t)i * VHD_SECTOR))
				return BLK_E_IO;
		} else {
			memset(out + (size_t)i * VHD_SECTOR, 0, VHD_SECTOR);
		}
	}
	return BLK_OK;
}

/* Start a view of base cut (or extended) at size bytes. */
static void repair_view_init(struct repair_view *w, struct blk_dev *base, uint64_t size)
{
	memset(w, 0, sizeof(*w));
	w->base = base;
	w->dev.name = base->name;
	w->dev.size_bytes = size;
	w->dev.sectors = (size + VHD_SECTOR - 1) / VHD_SECTOR;
	w->dev.max_sectors = w->dev.sectors;
	w->dev.read_only = 1;
	w->dev.read = repair_view_read;
	w->dev.priv = w;
}

/* Add a patch of count sectors at lba. */
static void repair_view_patch(struct repair_view *w, uint64_t lba, uint32_t count, const uint8_t *data)
{
	if (w->n < REPAIR_MAX_PATCH) {
		w->lba[w->n] = lba;
		w->count[w->n] = count;
		w->data[w->n++] = data;
	}
}

/* Footer validity as the library checks it (cookie, checksum, version, features, type); vhd_err. */
static int repair_footer_err(const uint8_t *f)
{
	uint32_t t = vhd_be32(f + 60);

	if (memcmp(f, VHD_FOOTER_COOKIE, 8))
		return VHD_E_FOOTER_COOKIE;
	if (vhd_checksum(f, 512, VHD_FOOTER_CSUM_OFF) != vhd_be32(f + VHD_FOOTER_CSUM_OFF))
		return VHD_E_FOOTER_CHECKSUM;
	if ((vhd_be32(f + 12) >> 16) != 1)
		return VHD_E_FOOTER_VERSION;
	if (!(vhd_be32(f + 8) & VHD_FEAT_RESERVED))
		return VHD_E_FOOTER_FEATURES;
	if (t != VHD_TYPE_FIXED && t != VHD_TYPE_DYNAMIC && t != VHD_TYPE_DIFF)
		return VHD_E_FOOTER_TYPE;
	return VHD_OK;
}

/* Nonzero when a and b are the same footer apart from the checksum field. */
static int repair_same_but_checksum(const uint8_t *a, const uint8_t *b)
{
	return !memcmp(a, b, VHD_FOOTER_CSUM_OFF) && !memcmp(a + 68, b + 68, 512 - 68);
}

/* Open the view as an image (footer, header, BAT, overlaps); 0 or vhd_err; v keeps bat (caller frees). */
static int repair_try(struct repair_view *w, struct vhd *v, uint32_t **bat)
{
	int r = vhd_open(v, &w->dev, VHD_OPEN_RDONLY | VHD_OPEN_NO_BACKUP);
	size_t n;
	uint32_t *scratch;

	*bat = NULL;
	if (r)
		return r;
	n = vhd_bat_bytes(v);
	if (!n)
		return VHD_OK;
	*bat = malloc(n);
	scratch = malloc(n);
	if (!*bat || !scratch) {
		free(scratch);
		return VHD_E_NOSPACE;
	}
	r = vhd_load_bat(v, *bat);
	if (!r)
		r = vhd_check_overlaps(v, scratch);
	free(scratch);
	return r;
}

/* Count of defects (not leaks or notes) vhd_check finds in an opened view. */
struct repair_count {
	int defects;
	int first;
};

/* vhd_check callback: count defects, remember the first. */
static void repair_count_cb(void *ctx, int code, uint64_t a, uint64_t b)
{
	struct repair_count *c = ctx;

	(void)a;
	(void)b;
	if (vhd_check_severity(code) == VHD_SEV_DEFECT && !c->defects++)
		c->first = code;
}

/* vhdtool repair: plan, verify the plan in memory, then apply it in a crash-safe order. */
int cmd_repair(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "sync", no_argument, NULL, OPT_SYNC },
		{ NULL, 0, NULL, 0 },
	};
	int opt, rc, dry = 0, do_sync = 0, nact = 0, fmt, e, end_err, zero_err, type;
	struct hostdev hd;
	struct repair_view w;
	struct vhd *v = NULL;
	uint32_t *bat = NULL;
	uint8_t end[512], zero[512], good[512], hdr[1024];
	int hdr_fix = 0, need_end = 0, need_copy = 0, need_cut = 0;
	uint64_t size, aligned, final_lba = 0, hdr_lba = 0;
	const char *path;
	char why[1024], acts[8][256];

	fmt = IMG_FMT_AUTO;
	while ((opt = getopt_long(argc, argv, ":f:h", lopts, NULL)) != -1) {
		switch (opt) {
		case OPT_DRY_RUN: dry = 1; break;
		default:
			if (cmd_opt_shared(opt, argv, "repair", &fmt, &do_sync, NULL, &rc))
				return rc;
		}
	}
	if (argc - optind != 1)
		return cmd_bad_args("expected exactly one IMAGE");
	path = argv[optind];
	if (fmt == IMG_FMT_AUTO) {
		fmt = img_detect(path, why, sizeof(why), &e);
		if (fmt < 0)
			return cmd_fail(e ? EXIT_USAGE : 1, "%s", why);
	}
	if (fmt == IMG_FMT_VHDX)
		return vx_repair(path, dry, do_sync);
	if (fmt == IMG_FMT_RAW)
		return cmd_fail(1, "%s is read as raw (-f raw, or no VHD footer, footer copy or header): nothing to repair", path);
	if (hostdev_open(&hd, path, dry ? HOSTDEV_RDONLY : (do_sync ? 0 : HOSTDEV_NOSYNC)) < 0)
		return cmd_fail(EXIT_USAGE, "%s: %s", path, strerror(errno));
	v = calloc(1, sizeof(*v));
	if (!v) {
		rc = cmd_fail(EXIT_USAGE, "out of memory");
		goto out;
	}
	size = hd.dev.size_bytes;
	aligned = size & ~(uint64_t)(VHD_SECTOR - 1);
	memset(end, 0, sizeof(end));
	memset(zero, 0, sizeof(zero));
	if (size >= 511) {
		uint64_t pos = size % VHD_SECTOR == 511 ? size - 511 : size - (size >= 512 ? 512 : size);
		if (hostdev_pread_full(hd.fd, end, size - pos, pos) < 0 || hostdev_pread_full(hd.fd, zero, 512, 0) < 0) {
			rc = cmd_fail(EXIT_USAGE, "%s: %s", path, strerror(errno));
			goto out;
		}
	}
	end_err = repair_footer_err(end);
	zero_err = repair_footer_err(zero);
	/* 1. A footer to trust. */
	if (!end_err) {
		memcpy(good, end, 512);
	} else if (!zero_err && (vhd_be32(zero + 60) == VHD_TYPE_DYNAMIC || vhd_be32(zero + 60) == VHD_TYPE_DIFF)) {
		memcpy(good, zero, 512);
		snprintf(acts[nact++], sizeof(acts[0]), "restore the end footer (%s) from the copy at offset 0",
		         vhd_errname(end_err));
		need_end = 1;
	} else if (end_err == VHD_E_FOOTER_CHECKSUM || zero_err == VHD_E_FOOTER_CHECKSUM) {
		int from_end = end_err == VHD_E_FOOTER_CHECKSUM;
		const uint8_t *f = from_end ? end : zero;
		type = (int)vhd_be32(f + 60);
		memcpy(good, f, 512);
		edit_footer_checksum(good);
		if (repair_footer_err(good)) {
			rc = cmd_fail(1, "%s: the footer is damaged beyond its checksum (%s): not repairable", path,
			              vhd_errname(repair_footer_err(good)));
			goto out;
		}
		if (type != VHD_TYPE_FIXED && !repair_same_but_checksum(end, zero)) {
			rc = cmd_fail(1, "%s: both footer copies fail their checksum and they disagree: cannot tell which "
			              "fields are right (footer-checksum); not repairable", path);
			goto out;
		}
		if (type == VHD_TYPE_FIXED && (!from_end || vhd_be64(good + 48) + VHD_SECTOR != aligned)) {
			rc = cmd_fail(1, "%s: a fixed disk's footer with a wrong checksum whose size does not match the file "
			              "(footer-checksum): not repairable", path);
			goto out;
		}
		snprintf(acts[nact++], sizeof(acts[0]), "recompute the footer checksum (footer-checksum: %s)",
		         type == VHD_TYPE_FIXED ? "the fixed disk's size matches the file" : "both copies agree on every field");
		need_end = 1;
	} else {
		rc = cmd_fail(1, "%s: no usable footer: end footer %s, copy at 0 %s; not repairable", path,
		              vhd_errname(end_err), vhd_errname(zero_err));
		goto out;
	}
	type = (int)vhd_be32(good + 60);
	/* 2. Open with that footer after everything in the file (so no block is cut), fixing a header checksum. */
	repair_view_init(&w, &hd.dev, aligned + VHD_SECTOR);
	repair_view_patch(&w, aligned / VHD_SECTOR, 1, good);
	rc = repair_try(&w, v, &bat);
	if (rc == VHD_E_HEADER_CHECKSUM) {
		hdr_lba = vhd_be64(good + 16) / VHD_SECTOR;
		if (blk_read(&w.dev, hdr_lba, 2, hdr)) {
			rc = cmd_fail(EXIT_USAGE, "%s: %s", path, strerror(hd.last_errno ? hd.last_errno : EIO));
			goto out;
		}
		vhd_put32(hdr + VHD_HEADER_CSUM_OFF, vhd_checksum(hdr, 1024, VHD_HEADER_CSUM_OFF));
		repair_view_patch(&w, hdr_lba, 2, hdr);
		free(bat);
		rc = repair_try(&w, v, &bat);
		if (!rc) {
			hdr_fix = 1;
			snprintf(acts[nact++], sizeof(acts[0]), "recompute the dynamic header checksum (header-checksum)");
		}
	}
	if (rc) {
		rc = cmd_fail(1, "%s: %s (%s); not repairable%s", path, vhd_strerror(rc), vhd_errname(rc),
		              rc == VHD_E_BAT_RANGE ? ": a block lies past the end of the file (its data is lost)" : "");
		goto out;
	}
	/* 3. Where the footer belongs: right after the last block (dynamic), after the data (fixed). */
	final_lba = type == VHD_TYPE_FIXED ? v->sectors : edit_used_end(v);
	if (final_lba * VHD_SECTOR > aligned) {
		rc = cmd_fail(1, "%s: the image needs %llu bytes but the file has %llu: data is missing; not repairable",
		              path, (unsigned long long)(final_lba * VHD_SECTOR + VHD_SECTOR), (unsigned long long)size);
		goto out;
	}
	if ((final_lba + 1) * VHD_SECTOR != size || memcmp(end, good, 512)) {
		if ((final_lba + 1) * VHD_SECTOR != size) {
			need_cut = 1;
			snprintf(acts[nact++], sizeof(acts[0]), "put the footer right after the last %s (file sector %llu) and cut "
			         "the file to %llu bytes (was %llu: %s)", type == VHD_TYPE_FIXED ? "data sector" : "block",
			         (unsigned long long)final_lba, (unsigned long long)((final_lba + 1) * VHD_SECTOR),
			         (unsigned long long)size, size % VHD_SECTOR == 511 ? "511-byte footer" : "torn or unused tail");
		}
		need_end = 1;
	}
	if (type != VHD_TYPE_FIXED && memcmp(zero, good, 512)) {
		need_copy = 1;
		snprintf(acts[nact++], sizeof(acts[0]), "write the footer copy at offset 0 (%s)",
		         zero_err ? "missing or damaged" : "it differed from the end footer");
	}
	/* 4. Check the whole plan: the image as it will be opens and has no defect left. */
	{
		struct repair_count cnt = { 0, 0 };
		size_t bytes;
		uint32_t *scratch;
		free(bat);
		repair_view_init(&w, &hd.dev, (final_lba + 1) * VHD_SECTOR);
		repair_view_patch(&w, final_lba, 1, good);
		if (type != VHD_TYPE_FIXED)
			repair_view_patch(&w, 0, 1, good);
		if (hdr_fix)
			repair_view_patch(&w, hdr_lba, 2, hdr);
		rc = repair_try(&w, v, &bat);
		if (rc) {
			rc = cmd_fail(1, "%s: the repaired image would not open: %s (%s); not repairable", path,
			              vhd_strerror(rc), vhd_errname(rc));
			goto out;
		}
		bytes = vhd_bat_bytes(v);
		scratch = malloc(bytes ? bytes : 4);
		rc = scratch ? vhd_check(v, scratch, 0, 0, repair_count_cb, &cnt) : -VHD_E_NOSPACE;
		free(scratch);
		if (rc < 0 || cnt.defects) {
			rc = cmd_fail(1, "%s: after the repair %d defect%s would remain (first: %s): not repairable here "
			              "(see 'vhdtool check')", path, cnt.defects, cnt.defects == 1 ? "" : "s",
			              rc < 0 ? vhd_errname(-rc) : vhd_check_name(cnt.first));
			goto out;
		}
	}
	if (!nact && !need_end && !need_copy) {
		printf("%s: nothing to repair\n", path);
		rc = 0;
		goto out;
	}
	for (int i = 0; i < nact; i++)
		printf("%s: %s%s\n", path, dry ? "would " : "", acts[i]);
	if (dry) {
		rc = 0;
		goto out;
	}
	/* 5. Apply: end footer (readers use it), copy at 0, header, then the cut. */
	if (need_end && (blk_write(&hd.dev, final_lba, 1, good) || blk_flush(&hd.dev)))
		goto io_fail;
	if (need_copy && (blk_write(&hd.dev, 0, 1, good) || blk_flush(&hd.dev)))
		goto io_fail;
	if (hdr_fix && (blk_write(&hd.dev, hdr_lba, 2, hdr) || blk_flush(&hd.dev)))
		goto io_fail;
	if (need_cut && hostdev_truncate(&hd, (final_lba + 1) * VHD_SECTOR) < 0)
		goto io_fail;
	if ((rc = cmd_sync(&hd, path)))
		goto out;
	printf("%s: repaired\n", path);
	rc = 0;
	goto out;
io_fail:
	rc = cmd_fail(1, "%s: %s", path, strerror(hd.last_errno ? hd.last_errno : EIO));
out:
	free(bat);
	free(v);
	hostdev_close(&hd);
	return rc;
}
