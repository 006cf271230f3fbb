/* cmd_rebase.c: `vhdtool rebase`: give a differencing image a new parent, safely (copying what differs) or -u (links only), as qemu-img rebase. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vhdtool.h"
#include "../vhd/vhd_util.h"   /* vhd_put32 */

const char rebase_usage[] =
"usage: vhdtool rebase -b NEWPARENT [-F vhd|vhdx] [-u] [-f vhd|vhdx] [--sync] [--ignore-timestamp] CHILD\n"
"\n"
"Make NEWPARENT the parent of the differencing image CHILD, as qemu-img\n"
"rebase does. Safe mode (default): every sector CHILD does not hold itself\n"
"and where the old parent chain and NEWPARENT differ is first copied from the\n"
"old chain into CHILD, so CHILD reads the same afterwards. -u (unsafe) only\n"
"changes the links: use it when NEWPARENT has the same content (a moved or\n"
"copied parent). NEWPARENT must be a VHD of CHILD's size.\n"
"The header gets NEWPARENT's unique id and time stamp, its file name, a W2ru\n"
"locator (relative to CHILD's directory) and a W2ku locator (absolute path);\n"
"other locators (MacX, Wi2r, ...) are dropped.\n"
"  -b NEWPARENT        the new parent (required; rebasing onto nothing is\n"
"                      'vhdtool convert CHILD OUT')\n"
"  -F vhd              format of NEWPARENT (default: by content)\n"
"  -u                  unsafe: links only, no data copied\n"
"  -f FORMAT           vhd or vhdx: format of CHILD (default: by content)\n"
"  --sync              fsync after each step; default: one fsync at the end\n"
"  --ignore-timestamp  accept parents whose time stamp differs (old chain)\n"
"  --help              this text\n"
"Crash-safe order: data first (through the library's write path: CHILD still\n"
"reads the same over the old parent), then the new locator data appended\n"
"after the last block, then the header (one write) switches the parent.\n"
"VHDX: CHILD and NEWPARENT both VHDX; the locator gets parent_linkage =\n"
"NEWPARENT's DataWriteGuid, relative_path and absolute_win32_path (volume_path\n"
"and parent_linkage2 dropped, other keys kept) in one log entry; CHILD keeps\n"
"its DataWriteGuid (its content as a chain is unchanged).\n";

/* Bit s of a bitmap. */
static int rebase_bit(const uint8_t *bm, uint32_t s)
{
	return (bm[s >> 3] >> (7 - (s & 7))) & 1;
}

/* Copy into the child every sector it lacks where old (the old parent chain) and np (the new parent) differ. */
static int rebase_copy(struct vhd *child, struct vhd *old, struct vhd *np, uint64_t *copied)
{
	uint32_t chunk = child->spb < CMD_CHUNK / VHD_SECTOR ? child->spb : CMD_CHUNK / VHD_SECTOR;
	uint8_t *a = malloc((size_t)chunk * VHD_SECTOR), *b = malloc((size_t)chunk * VHD_SECTOR);
	uint8_t *bm = malloc((size_t)child->bitmap_sectors * VHD_SECTOR);
	struct progress pg;
	int r = VHD_OK;

	*copied = 0;
	if (!a || !b || !bm) {
		r = VHD_E_NOSPACE;
		goto out;
	}
	progress_start(&pg, child->sectors);
	for (uint64_t lba = 0; lba < child->sectors; lba += chunk) {
		uint32_t n = child->sectors - lba < chunk ? (uint32_t)(child->sectors - lba) : chunk;
		uint32_t blk = (uint32_t)(lba >> child->spb_shift), off = (uint32_t)(lba & (child->spb - 1));
		uint32_t entry = child->bat[blk];
		progress_update(&pg, lba);
		if ((r = vhd_read(old, lba, n, a)) || (r = vhd_read(np, lba, n, b)))
			goto out;
		if (!memcmp(a, b, (size_t)n * VHD_SECTOR))
			continue;
		if (entry != VHD_BAT_FREE && blk_read(child->dev, entry, child->bitmap_sectors, bm)) {
			r = VHD_E_IO;
			goto out;
		}
		for (uint32_t s = 0; s < n;) {
			uint32_t e = s;
			while (e < n && memcmp(a + (size_t)e * VHD_SECTOR, b + (size_t)e * VHD_SECTOR, VHD_SECTOR) &&
			       !(entry != VHD_BAT_FREE && rebase_bit(bm, off + e)))
				e++;
			if (e == s) {
				s++;
				continue;
			}
			if ((r = vhd_write(child, lba + s, e - s, a + (size_t)s * VHD_SECTOR)))
				goto out;
			entry = child->bat[blk];   /* the write may have allocated the block */
			if (blk_read(child->dev, entry, child->bitmap_sectors, bm)) {
				r = VHD_E_IO;
				goto out;
			}
			*copied += e - s;
			s = e;
		}
	}
	progress_update(&pg, child->sectors);
	progress_end(&pg);
	r = vhd_flush(child);
out:
	free(a);
	free(b);
	free(bm);
	return r;
}

/* vhdtool rebase: a new parent for CHILD. */
int cmd_rebase(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "sync", no_argument, NULL, OPT_SYNC },
		{ "ignore-timestamp", no_argument, NULL, OPT_IGNORE_TS },
		{ NULL, 0, NULL, 0 },
	};
	int opt, rc, fmt = IMG_FMT_AUTO, npfmt = IMG_FMT_AUTO, do_sync = 0, unsafe = 0;
	unsigned flags = CHAIN_RDONLY;
	const char *np_path = NULL, *path, *slash;
	struct chain old, np, w;
	struct vhd *child, *npv;
	uint8_t hdr[1024];
	uint64_t copied = 0;
	char abs_np[PATH_MAX], rel[PATH_MAX * 2];

	memset(&old, 0, sizeof(old));
	memset(&np, 0, sizeof(np));
	memset(&w, 0, sizeof(w));
	while ((opt = getopt_long(argc, argv, ":b:uf:F:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'b': np_path = optarg; break;
		case 'u': unsafe = 1; break;
		case 'F':
			if ((rc = cmd_opt_fmt(optarg, &npfmt)))
				return rc;
			break;
		default:
			if (cmd_opt_shared(opt, argv, "rebase", &fmt, &do_sync, &flags, &rc))
				return rc;
		}
	}
	if (argc - optind != 1)
		return cmd_bad_args("expected exactly one CHILD");
	if (!np_path || !*np_path)
		return cmd_bad_args("-b NEWPARENT is required (to drop the parent, 'vhdtool convert CHILD OUT')");
	path = argv[optind];
	if (img_is_vhdx(path, fmt) != img_is_vhdx(np_path, npfmt))
		return cmd_fail(1, "%s is a %s and %s a %s: VHD and VHDX do not mix in one chain (convert one of them first)",
		                path, img_is_vhdx(path, fmt) ? "VHDX" : "VHD", np_path,
		                img_is_vhdx(np_path, npfmt) ? "VHDX" : "VHD");
	if (img_is_vhdx(path, fmt))
		return vx_rebase(path, np_path, unsafe, do_sync);
	/* The new parent with its chain, read-only. */
	if ((rc = img_open_vhd(&np, np_path, npfmt, CHAIN_RDONLY)))
		return rc;
	npv = chain_leaf(&np);
	/* The child: its old chain for reading (safe mode needs it; -u only the child). */
	if ((rc = img_open_vhd(&old, path, fmt, flags | (unsafe ? CHAIN_LEAF_ONLY : 0))))
		goto out;
	child = chain_leaf(&old);
	if (child->footer.type != VHD_TYPE_DIFF) {
		rc = cmd_fail(1, "%s is a %s image: only a differencing image has a parent to change", path,
		              cmd_type_name(child->footer.type));
		goto out;
	}
	if (npv->footer.cur_size != child->footer.cur_size) {
		rc = cmd_fail(1, "%s has %llu bytes, %s has %llu: a parent must have its child's size", np_path,
		              (unsigned long long)npv->footer.cur_size, path, (unsigned long long)child->footer.cur_size);
		goto out;
	}
	for (int i = 0; i < np.n; i++)
		if (!memcmp(np.m[i]->v.footer.uuid, child->footer.uuid, 16)) {
			rc = cmd_fail(1, "%s is %s or one of its descendants' parents: the chain would loop (chain-loop)", np_path, path);
			goto out;
		}
	if ((rc = cmd_parent_paths(path, np_path, abs_np, rel, sizeof(rel))))
		goto out;
	/* The child, writable, on its own. */
	if ((rc = chain_open(&w, path, CHAIN_LEAF_ONLY | (do_sync ? 0 : CHAIN_NOSYNC)))) {
		rc = cmd_fail(1, "%s cannot be opened for writing: %s", path, w.err);
		goto out;
	}
	if (chain_leaf(&w)->flags & VHD_OPEN_RDONLY) {
		rc = cmd_fail(1, "%s: the end footer is damaged: run 'vhdtool repair %s' first", path, path);
		goto out;
	}
	if (!unsafe && (rc = rebase_copy(chain_leaf(&w), &old.m[1]->v, npv, &copied))) {
		rc = cmd_fail(1, "%s: copying what differs: %s (%s)", path, edit_strerror(rc, &w.m[0]->hd), vhd_errname(rc));
		goto out;
	}
	/* The switch: locator data appended, then one header write. */
	if ((rc = edit_read_header(chain_leaf(&w), hdr)))
		goto io_fail;
	memcpy(hdr + 40, npv->footer.uuid, 16);
	vhd_put32(hdr + 56, npv->footer.timestamp);
	slash = strrchr(abs_np, '/');
	if ((rc = edit_parent_name(hdr, slash ? slash + 1 : abs_np)))
		goto io_fail;
	edit_drop_other_locators(hdr);
	if ((rc = edit_locator(chain_leaf(&w), hdr, VHD_PLAT_W2RU, rel)) ||
	    (rc = edit_locator(chain_leaf(&w), hdr, VHD_PLAT_W2KU, abs_np)) ||
	    (rc = edit_write_header(chain_leaf(&w), hdr)))
		goto io_fail;
	if ((rc = cmd_sync(&w.m[0]->hd, path)))
		goto out;
	printf("%s: parent is now %s (%s; %llu sectors copied from the old chain)\n", path, np_path,
	       unsafe ? "unsafe: links only" : "safe", (unsigned long long)copied);
	rc = 0;
	goto out;
io_fail:
	rc = cmd_fail(1, "%s: %s (%s)", path, edit_strerror(rc, &w.m[0]->hd), vhd_errname(rc));
out:
	chain_close(&w);
	chain_close(&old);
	chain_close(&np);
	return rc;
}
