/* cmd_commit.c: `vhdtool commit`: merge the sectors a differencing image holds into its parent (qemu-img commit, vhd-util coalesce). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vhdtool.h"

const char commit_usage[] =
"usage: vhdtool commit [-f vhd|vhdx] [--sync] [--ignore-timestamp] CHILD\n"
"\n"
"Write every sector CHILD (a differencing image) holds into its parent, as\n"
"qemu-img commit and vhd-util coalesce do. Afterwards the parent alone reads\n"
"what the chain read before. CHILD is left unchanged (it still reads the same\n"
"over the updated parent): delete it, or keep it as an empty-again overlay by\n"
"re-creating it with 'vhdtool create -p'. The parent's footer (unique id, time\n"
"stamp) is kept, so other children of it stay attached -- but their view of\n"
"the parent changes, as with qemu-img.\n"
"  -f FORMAT           vhd or vhdx (default: by content)\n"
"  --sync              fsync after each step (crash order also holds across a\n"
"                      power cut); default: one fsync at the end\n"
"  --ignore-timestamp  accept parents whose time stamp differs\n"
"  --help              this text\n"
"Crash safety: each run of sectors goes through the library's write path\n"
"(block allocation: footer, data, BAT, in that order); CHILD is only read, so a\n"
"kill at any moment leaves a valid parent and a chain that reads as before;\n"
"running commit again finishes the job.\n"
"VHDX: CHILD and its parent must both be VHDX (VHD and VHDX do not mix). The\n"
"child first accepts the parent's next DataWriteGuid too (parent_linkage2),\n"
"then its sectors go into the parent (the parent's DataWriteGuid changes),\n"
"then the child is linked to the new one; other children of the parent still\n"
"name the old DataWriteGuid and no longer attach (the message names both).\n";

/* Bit s of a block bitmap. */
static int commit_bit(const uint8_t *bm, uint32_t s)
{
	return (bm[s >> 3] >> (7 - (s & 7))) & 1;
}

/* vhdtool commit: CHILD's sectors into its parent. */
int cmd_commit(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "sync", no_argument, NULL, OPT_SYNC },
		{ "ignore-timestamp", no_argument, NULL, OPT_IGNORE_TS },
		{ NULL, 0, NULL, 0 },
	};
	unsigned flags = CHAIN_RDONLY;
	int opt, rc, fmt = IMG_FMT_AUTO, do_sync = 0;
	struct chain c, p;
	struct vhd *leaf, *pv;
	struct progress pg;
	uint8_t *buf = NULL, *bm = NULL;
	uint64_t done = 0;
	const char *path;

	while ((opt = getopt_long(argc, argv, ":f:h", lopts, NULL)) != -1) {
		if (cmd_opt_shared(opt, argv, "commit", &fmt, &do_sync, &flags, &rc))
			return rc;
	}
	if (argc - optind != 1)
		return cmd_bad_args("expected exactly one CHILD");
	path = argv[optind];
	memset(&pg, 0, sizeof(pg));
	if (img_is_vhdx(path, fmt))
		return vx_commit(path, do_sync);
	if ((rc = img_open_vhd(&c, path, fmt, flags)))
		return rc;
	leaf = chain_leaf(&c);
	if (leaf->footer.type != VHD_TYPE_DIFF || c.n < 2) {
		rc = cmd_fail(1, "%s is a %s image: only a differencing image has a parent to commit into", path,
		              cmd_type_name(leaf->footer.type));
		chain_close(&c);
		return rc;
	}
	/* The parent, writable, on its own (its parents are not needed to write it). */
	if (chain_open(&p, c.m[1]->path, CHAIN_LEAF_ONLY | (do_sync ? 0 : CHAIN_NOSYNC))) {
		rc = cmd_fail(1, "parent %s cannot be opened for writing: %s", c.m[1]->path, p.err);
		chain_close(&p);
		chain_close(&c);
		return rc;
	}
	pv = chain_leaf(&p);
	if (pv->flags & VHD_OPEN_RDONLY) {
		rc = cmd_fail(1, "parent %s was opened from its backup footer (end footer damaged): run 'vhdtool repair %s' first",
		              c.m[1]->path, c.m[1]->path);
		goto out;
	}
	buf = malloc(CMD_CHUNK);
	bm = malloc((size_t)leaf->bitmap_sectors * VHD_SECTOR);
	if (!buf || !bm) {
		rc = cmd_fail(1, "out of memory");
		goto out;
	}
	progress_start(&pg, leaf->blocks);
	for (uint32_t b = 0; b < leaf->blocks; b++) {
		uint32_t entry = leaf->bat[b];
		uint64_t first = (uint64_t)b * leaf->spb;
		uint32_t limit = leaf->sectors - first < leaf->spb ? (uint32_t)(leaf->sectors - first) : leaf->spb;

		progress_update(&pg, b);
		if (entry == VHD_BAT_FREE)
			continue;
		if (blk_read(leaf->dev, entry, leaf->bitmap_sectors, bm)) {
			rc = cmd_fail(1, "%s: bitmap of block %u: %s", path, b, edit_strerror(VHD_E_IO, &c.m[0]->hd));
			goto out;
		}
		for (uint32_t s = 0; s < limit;) {
			uint32_t e = s;
			int r;
			if (!(s & 7) && !bm[s >> 3]) {
				s += 8;
				continue;
			}
			if (!commit_bit(bm, s)) {
				s++;
				continue;
			}
			while (e < limit && commit_bit(bm, e) && e - s < CMD_CHUNK / VHD_SECTOR)
				e++;
			if (blk_read(leaf->dev, (uint64_t)entry + leaf->bitmap_sectors + s, e - s, buf)) {
				rc = cmd_fail(1, "%s: read at sector %llu: %s", path, (unsigned long long)(first + s),
				              edit_strerror(VHD_E_IO, &c.m[0]->hd));
				goto out;
			}
			r = vhd_write(pv, first + s, e - s, buf);
			if (r) {
				rc = cmd_fail(1, "%s: write at sector %llu: %s (%s)", p.m[0]->path,
				              (unsigned long long)(first + s), edit_strerror(r, &p.m[0]->hd), vhd_errname(r));
				goto out;
			}
			done += e - s;
			s = e;
		}
	}
	progress_update(&pg, leaf->blocks);
	if ((rc = vhd_flush(pv))) {
		rc = cmd_fail(1, "%s: flush: %s", p.m[0]->path, edit_strerror(rc, &p.m[0]->hd));
		goto out;
	}
	if ((rc = cmd_sync(&p.m[0]->hd, p.m[0]->path)))
		goto out;
	printf("%s: committed %llu sectors into %s\n", path, (unsigned long long)done, p.m[0]->path);
	rc = 0;
out:
	progress_end(&pg);
	free(buf);
	free(bm);
	chain_close(&p);
	chain_close(&c);
	return rc;
}
