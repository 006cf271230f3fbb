/* cmd_compact.c: `vhdtool compact`: drop all-zero (or, in a differencing image, empty) blocks, pack the rest, shrink the file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vhdtool.h"
#include "../vhd/vhd_util.h"   /* vhd_sectors_of, vhd_ploc_space_bytes */

const char compact_usage[] =
"usage: vhdtool compact [-f vhd|vhdx] [--json] [--sync] IMAGE\n"
"\n"
"Reclaim space in a dynamic or differencing IMAGE: blocks whose data is all\n"
"zeros (dynamic) or whose bitmap is empty (differencing: a zero sector there\n"
"hides the parent, so only empty blocks go) are dropped from the BAT, the\n"
"blocks at the end of the file move into the holes, and the file is cut after\n"
"the last one. The virtual disk reads the same.\n"
"  -f FORMAT  vhd or vhdx (default: by content)\n"
"  --json     report as one JSON object\n"
"  --sync     fsync after each step; default: one fsync at the end\n"
"  --help     this text\n"
"Crash-safe order: a dropped block is one BAT entry write; a move copies the\n"
"block into a hole nothing points at, then rewrites its one BAT entry (a\n"
"locator: its header entry, one header write); the\n"
"file is cut last, after a footer is written right behind the last block. A\n"
"kill at any moment leaves a valid image reading the same data (at worst with\n"
"leaked space that running compact again reclaims).\n"
"VHDX (dynamic or differencing): all-zero blocks (no parent), blocks with an\n"
"empty sector bitmap, and the space of zero-state blocks are dropped, the last\n"
"blocks move into holes (copy, then one log entry per BAT change), the log is\n"
"closed and the file cut; the DataWriteGuid stays (children stay attached).\n";

/* One extent of the file, in sectors; blk: the block index, -2 - slot for parent locator data, -1 for metadata that stays. */
struct compact_ext {
	uint64_t s, e;
	int64_t blk;
};

/* qsort order: by start. */
static int compact_cmp(const void *a, const void *b)
{
	const struct compact_ext *x = a, *y = b;

	return x->s < y->s ? -1 : x->s > y->s;
}

/* Nonzero when block b holds nothing worth keeping (see compact_usage); *err on a read failure. */
static int compact_droppable(struct vhd *v, uint32_t b, uint8_t *bm, uint8_t *buf, int *err)
{
	uint32_t entry = v->bat[b];
	uint64_t first = (uint64_t)b * v->spb;
	uint32_t limit = v->sectors - first < v->spb ? (uint32_t)(v->sectors - first) : v->spb;

	*err = 0;
	if (blk_read(v->dev, entry, v->bitmap_sectors, bm)) {
		*err = VHD_E_IO;
		return 0;
	}
	if (v->footer.type == VHD_TYPE_DIFF) {
		for (uint32_t s = 0; s < limit; s++)
			if (bm[s >> 3] & (0x80 >> (s & 7)))
				return 0;
		return 1;
	}
	for (uint32_t s = 0; s < limit;) {
		uint32_t n = limit - s < CMD_CHUNK / VHD_SECTOR ? limit - s : CMD_CHUNK / VHD_SECTOR;
		if (blk_read(v->dev, (uint64_t)entry + v->bitmap_sectors + s, n, buf)) {
			*err = VHD_E_IO;
			return 0;
		}
		for (uint32_t i = 0; i < n; i++)
			if ((bm[(s + i) >> 3] & (0x80 >> ((s + i) & 7))) &&
			    !hostdev_is_zero(buf + (size_t)i * VHD_SECTOR, VHD_SECTOR))
				return 0;
		s += n;
	}
	return 1;
}

/* Copy blen sectors from sector from to sector to (to lies in a hole), flush. */
static int compact_copy(struct vhd *v, uint64_t from, uint64_t to, uint64_t blen, uint8_t *buf)
{
	for (uint64_t done = 0; done < blen;) {
		uint32_t n = blen - done < CMD_CHUNK / VHD_SECTOR ? (uint32_t)(blen - done) : CMD_CHUNK / VHD_SECTOR;
		if (blk_read(v->dev, from + done, n, buf) || blk_write(v->dev, to + done, n, buf))
			return VHD_E_IO;
		done += n;
	}
	return blk_flush(v->dev) ? VHD_E_IO : VHD_OK;
}

/* vhdtool compact: drop, pack, cut. */
int cmd_compact(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "sync", no_argument, NULL, OPT_SYNC },
		{ NULL, 0, NULL, 0 },
	};
	int opt, rc, fmt = IMG_FMT_AUTO, do_sync = 0, err;
	struct out o;
	struct chain c;
	struct vhd *v;
	struct hostdev *hd;
	struct compact_ext *x = NULL;
	struct progress pg;
	uint8_t *buf = NULL, *bm = NULL;
	uint64_t blen, before, after, end = 0;
	uint32_t dropped = 0, moved = 0, n = 0;
	const char *path;

	memset(&o, 0, sizeof(o));
	memset(&pg, 0, sizeof(pg));
	while ((opt = getopt_long(argc, argv, ":f:h", lopts, NULL)) != -1) {
		switch (opt) {
		case OPT_JSON: o.json = 1; break;
		default:
			if (cmd_opt_shared(opt, argv, "compact", &fmt, &do_sync, NULL, &rc))
				return rc;
		}
	}
	if (argc - optind != 1)
		return cmd_bad_args("expected exactly one IMAGE");
	path = argv[optind];
	if (img_is_vhdx(path, fmt))
		return vx_compact(path, o.json, do_sync);
	if ((rc = edit_open(&c, path, fmt, do_sync, 0)))
		return rc;
	v = chain_leaf(&c);
	hd = &c.m[0]->hd;
	before = hd->dev.size_bytes;
	if (v->footer.type == VHD_TYPE_FIXED) {
		rc = cmd_fail(1, "%s is a fixed image: it has no blocks to drop (vhdtool convert -O dynamic makes a "
		              "compact copy)", path);
		goto out;
	}
	blen = (uint64_t)v->bitmap_sectors + v->spb;
	buf = malloc(CMD_CHUNK);
	bm = malloc((size_t)v->bitmap_sectors * VHD_SECTOR);
	x = malloc(((size_t)v->header.max_entries + 11) * sizeof(*x));
	if (!buf || !bm || !x) {
		rc = cmd_fail(1, "out of memory");
		goto out;
	}
	/* 1. Drop blocks that hold nothing: one BAT entry each. */
	progress_start(&pg, (uint64_t)v->blocks * 2);
	for (uint32_t b = 0; b < v->blocks; b++) {
		progress_update(&pg, b);
		if (v->bat[b] == VHD_BAT_FREE)
			continue;
		if (compact_droppable(v, b, bm, buf, &err)) {
			if ((err = edit_set_bat(v, b, VHD_BAT_FREE)))
				goto io_fail;
			dropped++;
		} else if (err) {
			goto io_fail;
		}
	}
	/* 2. The file's extents in order: metadata stays, blocks move from the end into the first hole that fits. */
	x[n++] = (struct compact_ext){ 0, 1, -1 };
	x[n++] = (struct compact_ext){ v->footer.data_offset / VHD_SECTOR, vhd_sectors_of(v->footer.data_offset + 1024), -1 };
	x[n++] = (struct compact_ext){ v->header.table_offset / VHD_SECTOR,
	                               vhd_sectors_of(v->header.table_offset + (uint64_t)v->header.max_entries * 4), -1 };
	for (int i = 0; i < 8; i++) {
		const struct vhd_ploc *l = &v->header.loc[i];
		if (l->code && l->data_offset < v->footer_pos)
			x[n++] = (struct compact_ext){ l->data_offset / VHD_SECTOR,
			                               vhd_sectors_of(l->data_offset + vhd_ploc_space_bytes(l->data_space, l->data_len)),
			                               -2 - i };
	}
	for (uint32_t b = 0; b < v->header.max_entries; b++)
		if (v->bat[b] != VHD_BAT_FREE)
			x[n++] = (struct compact_ext){ v->bat[b], v->bat[b] + blen, b };
	qsort(x, n, sizeof(*x), compact_cmp);
	{
		uint32_t k = 0, hi = n - 1;
		uint64_t cur = x[0].e;
		for (;;) {
			uint64_t need = x[hi].e - x[hi].s;   /* a block's bitmap + data, or a locator's area */
			while (k + 1 <= hi && (x[k + 1].s < cur || x[k + 1].s - cur < need)) {
				k++;
				cur = x[k].e > cur ? x[k].e : cur;
			}
			if (k + 1 > hi || x[hi].blk == -1 || cur >= x[hi].s)
				break;
			progress_update(&pg, v->blocks + (uint64_t)v->blocks * moved / (n ? n : 1));
			if ((err = compact_copy(v, x[hi].s, cur, need, buf)))
				goto io_fail;
			if (x[hi].blk >= 0) {
				if ((err = edit_set_bat(v, (uint32_t)x[hi].blk, (uint32_t)cur)))
					goto io_fail;
			} else {
				/* Locator data: the header's entry points at the copy (one header write). */
				int slot = (int)(-2 - x[hi].blk);
				uint8_t hdr[1024];
				if ((err = edit_read_header(v, hdr)))
					goto io_fail;
				vhd_put64(hdr + 576 + 24 * slot + 16, cur * VHD_SECTOR);
				if ((err = edit_write_header(v, hdr)))
					goto io_fail;
				v->header.loc[slot].data_offset = cur * VHD_SECTOR;
			}
			x[hi].s = cur;
			x[hi].e = cur + need;
			cur += need;
			moved++;
			hi--;
		}
	}
	for (uint32_t i = 0; i < n; i++)
		end = x[i].e > end ? x[i].e : end;
	progress_update(&pg, (uint64_t)v->blocks * 2);
	progress_end(&pg);
	/* 3. A footer right after the last extent, then cut the file there. */
	if (end * VHD_SECTOR < v->footer_pos) {
		if (blk_write(v->dev, end, 1, v->footer_raw) || blk_flush(v->dev) ||
		    hostdev_truncate(hd, (end + 1) * VHD_SECTOR) < 0) {
			err = VHD_E_IO;
			goto io_fail;
		}
	}
	if ((rc = cmd_sync(hd, path)))
		goto out;
	after = hd->dev.size_bytes;
	if (o.json) {
		putchar('{');
		out_str(&o, "image", path);
		out_u64(&o, "dropped_blocks", dropped);
		out_u64(&o, "moved_blocks", moved);
		out_u64(&o, "file_size_before", before);
		out_u64(&o, "file_size_after", after);
		printf("\n}\n");
	} else {
		printf("%s: dropped %u empty block%s, moved %u; file %llu -> %llu bytes\n", path, dropped,
		       dropped == 1 ? "" : "s", moved, (unsigned long long)before, (unsigned long long)after);
	}
	rc = 0;
	goto out;
io_fail:
	rc = cmd_fail(1, "%s: %s (%s)", path, edit_strerror(err, hd), vhd_errname(err));
out:
	progress_end(&pg);
	free(x);
	free(buf);
	free(bm);
	chain_close(&c);
	return rc;
}
