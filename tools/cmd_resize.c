/* cmd_resize.c: `vhdtool resize`: grow a fixed or dynamic image, or shrink it over an unallocated (all-zero) tail. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vhdtool.h"
#include "../vhd/vhd_util.h"   /* vhd_put16/32/64, vhd_sectors_of */

const char resize_usage[] =
"usage: vhdtool resize [-f vhd|vhdx] [--shrink] [--sync] IMAGE [+|-]SIZE\n"
"\n"
"Change the virtual size of a fixed or dynamic IMAGE to SIZE bytes (K/M/G/T\n"
"suffixes; +SIZE / -SIZE are relative), as qemu-img resize does for raw\n"
"files: a grown disk reads zeros in its new tail. The footer's current and\n"
"original size and its CHS geometry are updated (libvhdi takes the size from\n"
"the original size field).\n"
"  --shrink            allow a smaller SIZE; refused unless every sector past\n"
"                      SIZE is unallocated (dynamic) or zero (fixed)\n"
"  -f FORMAT           vhd or vhdx (default: by content)\n"
"  --sync              fsync after each step; default: one fsync at the end\n"
"  --help              this text\n"
"A differencing image must keep its parent's size and is refused.\n"
"Crash-safe order, dynamic: room for the table first (blocks lying where it\n"
"grows are moved to the end of the file: each appended, footer first, then\n"
"its BAT entry switched), the new entries written \"free\", then the header\n"
"(entries), then the end footer, then its copy at 0.\n"
"Fixed: new footer at the new end, then the old footer's sector zeroed (grow)\n"
"or the file truncated (shrink). See docs/vhdtool.md for what a kill between\n"
"two steps leaves.\n"
"VHDX (fixed or dynamic): the virtual size and the BAT entries change in one\n"
"log entry; a fixed VHDX's new blocks are added at the end of the file first.\n"
"A size needing more BAT entries than the BAT region holds is refused.\n";

/* The checks every resize makes, VHD or VHDX: "[+|-]SIZE" parsed against cur (a positive multiple of 512 up to max,
 * max_name in the message), a differencing image refused, a smaller size only with shrink. Returns 0 with *out set,
 * RESIZE_SAME after printing that the size is already that, or the verb's exit status (message printed). */
int resize_target(const char *path, const char *arg, uint64_t cur, uint64_t max, const char *max_name, int is_diff,
                  int shrink, uint64_t *out)
{
	uint64_t n;
	int rel = *arg == '+' ? 1 : *arg == '-' ? -1 : 0;

	if (cmd_parse_size(arg + (rel != 0), &n))
		return cmd_bad_args("bad SIZE (bytes, or a K/M/G/T suffix; +SIZE or -SIZE for relative)");
	if (rel < 0 && n > cur)
		return cmd_fail(EXIT_USAGE, "-%llu is more than the current size %llu", (unsigned long long)n,
		                (unsigned long long)cur);
	*out = rel > 0 ? cur + n : rel < 0 ? cur - n : n;
	if (*out == 0 || *out % 512)
		return cmd_fail(EXIT_USAGE, "size %llu is not a positive multiple of 512", (unsigned long long)*out);
	if (*out > max)
		return cmd_fail(EXIT_USAGE, "size %llu is larger than the %s maximum %llu", (unsigned long long)*out,
		                max_name, (unsigned long long)max);
	if (is_diff)
		return cmd_fail(1, "%s is a differencing image: its size must stay its parent's (resize the whole chain "
		                "by converting it, or commit it first)", path);
	if (*out == cur) {
		printf("%s: already %llu bytes\n", path, (unsigned long long)cur);
		return RESIZE_SAME;
	}
	if (*out < cur && !shrink)
		return cmd_fail(1, "%s: %llu is smaller than the current %llu bytes: add --shrink (refused unless the tail "
		                "past the new size is unallocated)", path, (unsigned long long)*out, (unsigned long long)cur);
	return 0;
}

/* The footer for the new size: current size, geometry, checksum. */
static void resize_footer(const struct vhd *v, uint64_t size, uint8_t raw[512])
{
	uint16_t c;
	uint8_t h, s;

	memcpy(raw, v->footer_raw, 512);
	raw[511] = 0;   /* a 511-byte footer becomes a full one */
	/*
	 * Both sizes: the spec calls original size "at creation time", but
	 * libvhdi (20210425) reports the original size as the disk's size, so a
	 * resize that kept it would be invisible to libvhdi-based readers.
	 */
	vhd_put64(raw + 40, size);
	vhd_put64(raw + 48, size);
	vhd_chs_from_size(size / VHD_SECTOR, &c, &h, &s);
	vhd_put16(raw + 56, c);
	raw[58] = h;
	raw[59] = s;
	edit_footer_checksum(raw);
}

/* Nonzero when the virtual sectors [from, to) of v read as zeros. */
static int resize_tail_zero(struct vhd *v, uint64_t from, uint64_t to, uint8_t *buf, int *err)
{
	*err = 0;
	while (from < to) {
		uint32_t n = to - from < CMD_CHUNK / VHD_SECTOR ? (uint32_t)(to - from) : CMD_CHUNK / VHD_SECTOR;
		if ((*err = vhd_read(v, from, n, buf)))
			return 0;
		if (!hostdev_is_zero(buf, (size_t)n * VHD_SECTOR))
			return 0;
		from += n;
	}
	return 1;
}

/* Make the BAT hold entries for new_blocks (dynamic grow): padding entries, or a table moved to the end. */
static int resize_bat_room(struct vhd *v, uint32_t new_blocks)
{
	const struct vhd_header *h = &v->header;
	uint64_t bat_sectors = vhd_sectors_of((uint64_t)h->max_entries * 4);
	uint8_t hdr[1024];
	uint64_t at;
	int r;

	if (new_blocks <= h->max_entries)
		return VHD_OK;
	if ((r = edit_read_header(v, hdr)))
		return r;
	{
		/*
		 * The table grows in place: blocks lying where its new sectors go are
		 * first moved to the end of the file (each: appended, then its BAT
		 * entry switched), then the new entries are written "free".
		 */
		uint64_t start = h->table_offset / VHD_SECTOR, new_end = start + vhd_sectors_of((uint64_t)new_blocks * 4);
		uint64_t blen = (uint64_t)v->bitmap_sectors + v->spb, hs = v->footer.data_offset / VHD_SECTOR;
		uint8_t sec[VHD_SECTOR];
		if (hs < new_end && hs + 2 > start)
			return VHD_E_TABLE_OVERLAP;   /* the header follows the table: no room to grow it in place */
		for (int i = 0; i < 8; i++)
			if (h->loc[i].code && h->loc[i].data_offset / VHD_SECTOR < new_end &&
			    h->loc[i].data_offset / VHD_SECTOR >= start)
				return VHD_E_TABLE_OVERLAP;
		for (uint32_t b = 0; b < h->max_entries; b++) {
			uint8_t *blk;
			uint32_t e = v->bat[b];
			if (e == VHD_BAT_FREE || e >= new_end || e + blen <= start + bat_sectors)
				continue;
			blk = malloc(blen * VHD_SECTOR);
			if (!blk)
				return VHD_E_NOSPACE;
			r = blk_read(v->dev, e, (uint32_t)blen, blk) ? VHD_E_IO : edit_append(v, blk, (uint32_t)(blen * VHD_SECTOR), &at);
			free(blk);
			if (!r)
				r = edit_set_bat(v, b, (uint32_t)(at / VHD_SECTOR));
			if (r)
				return r;
		}
		/* The table's sectors from its last used one to its new end: entries past max_entries read "free". */
		for (uint64_t lba = start + bat_sectors - 1; lba < new_end; lba++) {
			if (lba < start + bat_sectors) {
				if (blk_read(v->dev, lba, 1, sec))
					return VHD_E_IO;
			} else {
				memset(sec, 0xFF, sizeof(sec));
			}
			for (uint32_t k = 0; k < 128; k++) {
				uint64_t i = (lba - start) * 128 + k;
				if (i >= h->max_entries)
					vhd_put32(sec + k * 4, VHD_BAT_FREE);
			}
			if (blk_write(v->dev, lba, 1, sec))
				return VHD_E_IO;
		}
		if (blk_flush(v->dev))
			return VHD_E_IO;
	}
	vhd_put32(hdr + 28, new_blocks);
	return edit_write_header(v, hdr);
}

/* vhdtool resize: grow, or shrink over an empty tail. */
int cmd_resize(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "shrink", no_argument, NULL, OPT_SHRINK },
		{ "sync", no_argument, NULL, OPT_SYNC },
		{ NULL, 0, NULL, 0 },
	};
	int opt, rc, fmt = IMG_FMT_AUTO, do_sync = 0, shrink = 0, err;
	struct chain c;
	struct vhd *v;
	struct hostdev *hd;
	uint64_t old, size = 0;
	uint8_t foot[512], *buf = NULL;
	const char *path;

	while ((opt = getopt_long(argc, argv, ":f:h", lopts, NULL)) != -1) {
		switch (opt) {
		case OPT_SHRINK: shrink = 1; break;
		default:
			if (cmd_opt_shared(opt, argv, "resize", &fmt, &do_sync, NULL, &rc))
				return rc;
		}
	}
	if (argc - optind != 2)
		return cmd_bad_args("expected IMAGE and SIZE");
	path = argv[optind];
	if (img_is_vhdx(path, fmt))
		return vx_resize(path, argv[optind + 1], shrink, do_sync);
	if ((rc = edit_open(&c, path, fmt, do_sync, 0)))
		return rc;
	v = chain_leaf(&c);
	hd = &c.m[0]->hd;
	old = v->footer.cur_size;
	if ((rc = resize_target(path, argv[optind + 1], old, VHD_MAX_SIZE, "VHD", v->footer.type == VHD_TYPE_DIFF,
	                        shrink, &size))) {
		if (rc == RESIZE_SAME)
			rc = 0;
		goto out;
	}
	buf = malloc(CMD_CHUNK);
	if (!buf) {
		rc = cmd_fail(1, "out of memory");
		goto out;
	}
	resize_footer(v, size, foot);
	if (v->footer.type == VHD_TYPE_FIXED) {
		if (v->footer_pos != old) {
			rc = cmd_fail(1, "%s: %llu bytes lie between the data and the footer; convert the image instead", path,
			              (unsigned long long)(v->footer_pos - old));
			goto out;
		}
		if (size < old) {
			if (!resize_tail_zero(v, size / VHD_SECTOR, old / VHD_SECTOR, buf, &err)) {
				rc = err ? cmd_fail(1, "%s: read: %s", path, edit_strerror(err, hd))
				         : cmd_fail(1, "%s: sectors past %llu hold data: not shrinking", path,
				                    (unsigned long long)(size / VHD_SECTOR));
				goto out;
			}
			/* 1. New footer over the (zero) sector at the new end; 2. cut the file after it. */
			if (blk_write(v->dev, size / VHD_SECTOR, 1, foot) || blk_flush(v->dev) ||
			    hostdev_truncate(hd, size + VHD_SECTOR) < 0) {
				rc = cmd_fail(1, "%s: %s", path, edit_strerror(VHD_E_IO, hd));
				goto out;
			}
		} else {
			/* 1. New footer at the new end (the file grows, the gap is a hole); 2. zero the old footer's sector. */
			if (blk_write(v->dev, size / VHD_SECTOR, 1, foot) || blk_flush(v->dev) ||
			    blk_write_zeroes(v->dev, old / VHD_SECTOR, 1) || blk_flush(v->dev)) {
				rc = cmd_fail(1, "%s: %s", path, edit_strerror(VHD_E_IO, hd));
				goto out;
			}
		}
	} else {
		uint32_t new_blocks = (uint32_t)((size + v->block_size - 1) / v->block_size);
		if (size < old) {
			for (uint32_t b = new_blocks; b < v->blocks; b++)
				if (v->bat[b] != VHD_BAT_FREE) {
					rc = cmd_fail(1, "%s: block %u (virtual sectors from %llu) past the new size is allocated: "
					              "not shrinking", path, b, (unsigned long long)b * v->spb);
					goto out;
				}
			if (!resize_tail_zero(v, size / VHD_SECTOR, (uint64_t)new_blocks * v->spb < v->sectors ?
			                      (uint64_t)new_blocks * v->spb : v->sectors, buf, &err)) {
				rc = err ? cmd_fail(1, "%s: read: %s", path, edit_strerror(err, hd))
				         : cmd_fail(1, "%s: sectors past %llu hold data: not shrinking", path,
				                    (unsigned long long)(size / VHD_SECTOR));
				goto out;
			}
		} else if ((rc = resize_bat_room(v, new_blocks))) {
			rc = cmd_fail(1, "%s: growing the block table: %s (%s)", path, edit_strerror(rc, hd), vhd_errname(rc));
			goto out;
		}
		if ((rc = edit_write_footers(v, foot))) {
			rc = cmd_fail(1, "%s: writing the footer: %s (%s)", path, edit_strerror(rc, hd), vhd_errname(rc));
			goto out;
		}
	}
	if ((rc = cmd_sync(hd, path)))
		goto out;
	printf("%s: resized from %llu to %llu bytes\n", path, (unsigned long long)old, (unsigned long long)size);
	rc = 0;
out:
	free(buf);
	chain_close(&c);
	return rc;
}
