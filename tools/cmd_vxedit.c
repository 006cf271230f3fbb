/* cmd_vxedit.c: the VHDX side of the editing verbs (commit, rebase, resize, compact, repair, set), every structure change through the image's log. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "vhdtool.h"

/* ------------------------------------------------------------------ helpers */

/* The leaf member of an open chain. */
static struct vxc_member *vxe_m0(struct vxchain *c)
{
	return c->m[0];
}

/* Print a library failure on path; returns 1. */
static int vxe_fail(const char *path, const char *what, int err, struct hostdev *hd)
{
	return cmd_fail(1, "%s: %s: %s (%s)", path, what,
	                err == VHDX_E_IO && hd && hd->last_errno ? strerror(hd->last_errno) : vhdx_strerror(err),
	                vhdx_errname(err));
}

/*
 * One atomic change of v: metadata (s, may be NULL) and BAT entries, as one
 * log entry through vhdx_apply. data: the virtual disk's content changes.
 * 0 or a vhdx_err.
 */
static int vxe_edit(struct vhdx *v, const struct vhdx_meta_set *s, const uint64_t *idx, const uint64_t *val, uint32_t nbat,
                    int data)
{
	uint8_t *meta = NULL, *loc = NULL, *scratch = malloc(VHDX_EDIT_SCRATCH);
	uint64_t offs[VHDX_EDIT_MAX];
	const uint8_t *pages[VHDX_EDIT_MAX];
	struct vhdx_edit e;
	uint32_t n = 0;
	int r = scratch ? 0 : VHDX_E_IO;

	if (!r && s) {
		meta = malloc(v->meta_len);
		loc = malloc(VHDX_LOC_SCRATCH);
		r = meta && loc ? vhdx_meta_build(v, s, meta, v->meta_len, loc, offs, pages, &n) : VHDX_E_IO;
	}
	if (!r) {
		memset(&e, 0, sizeof(e));
		e.page_off = offs;
		e.pages = pages;
		e.npages = n;
		e.bat_idx = idx;
		e.bat_val = val;
		e.nbat = nbat;
		e.data = data;
		r = vhdx_apply(v, &e, scratch);
	}
	free(meta);
	free(loc);
	free(scratch);
	return r;
}

/* End the session (log marked empty) and fsync; 0 or 1 with the message printed. */
static int vxe_finish(struct vxc_member *m)
{
	int r = vhdx_close(&m->v);

	if (r)
		return vxe_fail(m->path, "closing the session", r, &m->hd);
	return cmd_sync(&m->hd, m->path);
}

/* BAT index of payload block b. */
static uint64_t vxe_pbi(const struct vhdx *v, uint64_t b)
{
	return b + b / v->chunk_ratio;
}

/* BAT index of the sector bitmap entry of the chunk holding block b. */
static uint64_t vxe_sbi(const struct vhdx *v, uint64_t b)
{
	return b / v->chunk_ratio * (v->chunk_ratio + 1ull) + v->chunk_ratio;
}

/* Sectors of the disk in block b. */
static uint32_t vxe_limit(const struct vhdx *v, uint64_t b)
{
	uint64_t first = b * v->spb;
	return v->sectors - first < v->spb ? (uint32_t)(v->sectors - first) : v->spb;
}

/*
 * Which sectors of block b the image itself decides (its own data, or
 * zeros a zero/unmapped/undefined block shows over any parent): own[s] = 1.
 * 0 or vhdx_err.
 */
static int vxe_own(struct vxc_member *m, uint64_t b, uint8_t *own)
{
	struct vhdx *v = &m->v;
	uint32_t lim = vxe_limit(v, b);
	unsigned st = vhdx_bat_state(v->bat[vxe_pbi(v, b)]);

	memset(own, st != VHDX_PB_NOT_PRESENT && st != VHDX_PB_PARTIALLY_PRESENT, lim);
	if (st != VHDX_PB_PARTIALLY_PRESENT)
		return 0;
	{
		uint64_t sbe = v->bat[vxe_sbi(v, b)];
		uint64_t off = (vhdx_bat_mb(sbe) << 20) + (b % v->chunk_ratio) * (v->spb / 8);
		uint8_t *bits = malloc(v->spb / 8);
		ssize_t got;
		if (!bits)
			return VHDX_E_IO;
		got = hostdev_pread_full(m->hd.fd, bits, v->spb / 8, off);
		if (got != (ssize_t)(v->spb / 8)) {
			m->hd.last_errno = got < 0 ? errno : EIO;
			free(bits);
			return VHDX_E_IO;
		}
		for (uint32_t s = 0; s < lim; s++)
			own[s] = (bits[s / 8] >> (s % 8)) & 1;   /* MS-VHDX 2.5.2: bit k of the bitmap is sector k, LSB first */
		free(bits);
	}
	return 0;
}

/* Split "FIELD=VALUE": field into f (n bytes), returns VALUE. */
static const char *vxe_split(const char *a, char *f, size_t n)
{
	const char *eq = strchr(a, '=');
	size_t l = (size_t)(eq - a);

	snprintf(f, n, "%.*s", (int)(l < n ? l : n - 1), a);
	return eq + 1;
}

/* A GUID from "{...}" or the bare 8-4-4-4-12 form into g; 0 or -1. */
static int vxe_guid(const char *s, struct vhdx_guid *g)
{
	char b[64];

	if (strlen(s) == 36) {
		snprintf(b, sizeof(b), "{%s}", s);
		s = b;
	}
	return vhdx_guid_parse(s, strlen(s), g);
}

/* ------------------------------------------------------------------ set */

/* set on a VHDX: page83 and the parent locator's entries, one log entry, FileWriteGuid changed. */
int vx_set(const char *path, int nargs, char **args, int do_sync)
{
	static const char *const loc_fields[] = { "parent_linkage", "parent_linkage2", "relative_path", "volume_path",
	                                          "absolute_win32_path" };
	const char *keys[8], *vals[8];
	char bufs[8][40];
	struct vhdx_meta_set s;
	struct vhdx_guid page83, g;
	struct vxchain c;
	struct vhdx *v;
	int rc;

	memset(&s, 0, sizeof(s));
	if (nargs > 8)
		return cmd_bad_args("at most 8 FIELD=VALUE changes at once");
	/* Everything parsed before the file is opened: a typo changes nothing. */
	for (int i = 0; i < nargs; i++) {
		char f[64];
		const char *val = vxe_split(args[i], f, sizeof(f));
		int k = -1;
		if (!strcmp(f, "page83")) {
			if (!strcmp(val, "random") ? vxc_random_guid(&page83) : vxe_guid(val, &page83))
				return cmd_fail(EXIT_USAGE, "bad value for page83: '%s' (a GUID, or random)", val);
			s.page83 = &page83;
			continue;
		}
		for (int j = 0; j < 5; j++)
			if (!strcmp(f, loc_fields[j]))
				k = j;
		if (k < 0)
			return cmd_fail(EXIT_USAGE, "unknown VHDX field '%s' (VHDX: page83, parent_linkage, parent_linkage2, "
			                "relative_path, volume_path, absolute_win32_path; see 'vhdtool set --help')", f);
		for (uint32_t j = 0; j < s.nkeys; j++)
			if (!strcmp(keys[j], loc_fields[k]))
				return cmd_fail(EXIT_USAGE, "%s given twice", f);
		keys[s.nkeys] = loc_fields[k];
		if (k < 2 && *val) {
			if (vxe_guid(val, &g))
				return cmd_fail(EXIT_USAGE, "bad value for %s: '%s' (a GUID)", f, val);
			vhdx_guid_str(&g, bufs[s.nkeys]);
			vals[s.nkeys] = bufs[s.nkeys];
		} else if (!*val && k == 0) {
			return cmd_fail(EXIT_USAGE, "parent_linkage cannot be removed (the specification requires it)");
		} else {
			vals[s.nkeys] = *val ? val : NULL;   /* empty: remove the entry */
		}
		s.nkeys++;
	}
	s.keys = keys;
	s.vals = vals;
	if ((rc = img_open_vhdx(&c, path, VXC_LEAF_ONLY | VXC_NO_BAT | (do_sync ? 0 : VXC_NOSYNC))))
		return rc;
	v = vxc_leaf(&c);
	if (s.nkeys && !v->has_parent) {
		rc = cmd_fail(1, "%s is not a differencing VHDX: the parent locator fields apply to children only", path);
		goto out;
	}
	if (s.nkeys) {
		/* At least one path must remain, or the parent can never be found again. */
		int paths = 0;
		for (int k = VHDX_LOC_RELATIVE; k < VHDX_LOC_PATHS; k++) {
			static const char *const pk[3] = { "relative_path", "volume_path", "absolute_win32_path" };
			char tmp[8];
			int given = -1;
			for (uint32_t j = 0; j < s.nkeys; j++)
				if (!strcmp(keys[j], pk[k]))
					given = (int)j;
			if (given >= 0 ? vals[given] != NULL : vhdx_locator_path(v, k, tmp, sizeof(tmp)) != VHDX_E_NO_LOCATOR)
				paths++;
		}
		if (!paths) {
			rc = cmd_fail(1, "%s: the locator would keep no parent path (relative_path, volume_path or "
			              "absolute_win32_path): refused", path);
			goto out;
		}
	}
	if ((rc = vxe_edit(v, &s, NULL, NULL, 0, 0))) {
		rc = vxe_fail(path, "writing the metadata", rc, &vxe_m0(&c)->hd);
		goto out;
	}
	if ((rc = vxe_finish(vxe_m0(&c))))
		goto out;
	printf("%s: %d field%s set\n", path, nargs, nargs == 1 ? "" : "s");
out:
	if (rc && c.n)
		vhdx_close(v);
	vxc_close(&c);
	return rc;
}

/* ------------------------------------------------------------------ resize */

/* The BAT entries a disk of size bytes needs (no parent). */
static uint64_t vxe_entries(const struct vhdx *v, uint64_t size)
{
	uint64_t nb = (size + v->block_size - 1) / v->block_size;
	return nb + (nb - 1) / v->chunk_ratio;
}

/* resize on a VHDX: virtual size (and BAT entries) through the log. */
int vx_resize(const char *path, const char *arg, int shrink, int do_sync)
{
	struct vxchain c;
	struct vhdx *v;
	struct vxc_member *m;
	struct vhdx_meta_set s;
	uint64_t old, size, *idx = NULL, *val = NULL, nbat = 0;
	uint8_t *buf = NULL;
	int rc;

	if ((rc = img_open_vhdx(&c, path, VXC_LEAF_ONLY | (do_sync ? 0 : VXC_NOSYNC))))
		return rc;
	m = vxe_m0(&c);
	v = &m->v;
	old = v->vsize;
	if ((rc = resize_target(path, arg, old, VHDX_MAX_SIZE, "VHDX", v->has_parent, shrink, &size))) {
		if (rc == RESIZE_SAME)
			rc = 0;
		goto out;
	}
	{
		uint64_t ne = vxe_entries(v, size), oe = v->bat_entries, nb = (size + v->block_size - 1) / v->block_size;
		uint64_t ob = v->data_blocks, hi = ne > oe ? ne : oe;
		if (ne * 8 > v->bat_len) {
			rc = cmd_fail(1, "%s: the BAT region (%u bytes) holds %llu entries, %llu bytes of virtual disk need %llu: "
			              "moving the BAT is not done by vhdtool; 'vhdtool convert -O vhdx-dynamic' makes a larger "
			              "image (then resize that)", path, v->bat_len, (unsigned long long)(v->bat_len / 8),
			              (unsigned long long)size, (unsigned long long)ne);
			goto out;
		}
		idx = malloc(hi * sizeof(*idx) + 8);
		val = malloc(hi * sizeof(*val) + 8);
		buf = malloc(CMD_CHUNK);
		if (!idx || !val || !buf) {
			rc = cmd_fail(1, "out of memory");
			goto out;
		}
		if (size < old) {
			/* Shrink: every sector past size reads zeros, and (dynamic) no block past it owns data. */
			for (uint64_t b = nb; b < ob && !v->leave_allocated; b++) {
				unsigned st = vhdx_bat_state(v->bat[vxe_pbi(v, b)]);
				if (st == VHDX_PB_FULLY_PRESENT || st == VHDX_PB_PARTIALLY_PRESENT) {
					rc = cmd_fail(1, "%s: block %llu (virtual sectors from %llu) past the new size is allocated: "
					              "not shrinking", path, (unsigned long long)b, (unsigned long long)(b * v->spb));
					goto out;
				}
			}
			for (uint64_t off = size; off < old;) {
				uint32_t len = old - off < CMD_CHUNK ? (uint32_t)(old - off) : CMD_CHUNK;
				if ((rc = vhdx_read(v, off / VHDX_SECTOR, len / VHDX_SECTOR, buf))) {
					rc = vxe_fail(path, "read", rc, &m->hd);
					goto out;
				}
				if (!hostdev_is_zero(buf, len)) {
					rc = cmd_fail(1, "%s: sectors past %llu hold data: not shrinking", path,
					              (unsigned long long)(size / VHDX_SECTOR));
					goto out;
				}
				off += len;
			}
			/* Entries past the new end become padding: zero (blocks of a fixed disk leave their space unused). */
			for (uint64_t i = ne; i < oe; i++)
				if (v->bat[i]) {
					idx[nbat] = i;
					val[nbat++] = 0;
				}
		} else {
			/* Grow. The old last block's bytes past the old end may be stale: zeroed before they become visible. */
			uint64_t e = v->bat[vxe_pbi(v, ob - 1)];
			if (old % v->block_size && vhdx_bat_state(e) == VHDX_PB_FULLY_PRESENT) {
				uint64_t from = (vhdx_bat_mb(e) << 20) + old % v->block_size;
				uint64_t to = (vhdx_bat_mb(e) << 20) + v->block_size;
				memset(buf, 0, CMD_CHUNK);
				for (uint64_t p = from; p < to;) {
					uint32_t l = to - p < CMD_CHUNK ? (uint32_t)(to - p) : CMD_CHUNK;
					if (blk_write(&m->hd.dev, p / VHDX_SECTOR, l / VHDX_SECTOR, buf)) {
						rc = vxe_fail(path, "zeroing the last block's tail", VHDX_E_IO, &m->hd);
						goto out;
					}
					p += l;
				}
			}
			/* Padding entries that become real ones must read "not present". */
			for (uint64_t i = oe; i < ne; i++) {
				uint64_t cur;
				if (hostdev_pread_full(m->hd.fd, &cur, 8, v->bat_off + i * 8) != 8) {
					rc = vxe_fail(path, "reading the BAT", VHDX_E_IO, &m->hd);
					goto out;
				}
				if (cur) {
					idx[nbat] = i;
					val[nbat++] = 0;
				}
			}
			if (v->leave_allocated) {
				/* A fixed disk's new blocks: space after everything (the file grows, zeros), then one BAT entry each. */
				uint64_t at = v->alloc_end > m->hd.dev.size_bytes ? v->alloc_end : m->hd.dev.size_bytes;
				at = (at + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
				nbat = 0;
				for (uint64_t i = oe; i < ne; i++) {
					idx[nbat] = i;
					val[nbat++] = 0;
				}
				for (uint64_t b = ob; b < nb; b++) {
					uint64_t i = vxe_pbi(v, b), k = 0;
					while (k < nbat && idx[k] != i)
						k++;
					if (k == nbat)
						idx[nbat++] = i;
					val[k] = vhdx_bat_make(VHDX_PB_FULLY_PRESENT, (at + (b - ob) * v->block_size) >> 20);
				}
				if (hostdev_truncate(&m->hd, at + (nb - ob) * v->block_size) < 0 || blk_flush(&m->hd.dev)) {
					rc = vxe_fail(path, "growing the file for the new blocks", VHDX_E_IO, &m->hd);
					goto out;
				}
			}
		}
	}
	if (blk_flush(&m->hd.dev)) {
		rc = vxe_fail(path, "flush", VHDX_E_IO, &m->hd);
		goto out;
	}
	memset(&s, 0, sizeof(s));
	s.vsize = size;
	if ((rc = vxe_edit(v, &s, idx, val, (uint32_t)nbat, 1))) {
		if (rc == VHDX_E_EDIT_TOO_BIG)
			rc = cmd_fail(1, "%s: the change touches more BAT pages than one log entry carries: resize in smaller "
			              "steps (each at most about %llu bytes for this block size)", path,
			              (unsigned long long)(60ull * 512 * v->block_size));
		else
			rc = vxe_fail(path, "writing the new size", rc, &m->hd);
		goto out;
	}
	if ((rc = vxe_finish(m)))
		goto out;
	printf("%s: resized from %llu to %llu bytes\n", path, (unsigned long long)old, (unsigned long long)size);
	rc = 0;
out:
	if (rc && c.n)
		vhdx_close(v);
	free(idx);
	free(val);
	free(buf);
	vxc_close(&c);
	return rc;
}

/* ------------------------------------------------------------------ commit */

/* Set the child's parent_linkage (and parent_linkage2, NULL: removed); 0 or vhdx_err. */
static int vxe_relink(struct vhdx *child, const struct vhdx_guid *link, const struct vhdx_guid *link2)
{
	char a[39], b[39];
	const char *keys[2] = { "parent_linkage", "parent_linkage2" }, *vals[2] = { a, link2 ? b : NULL };
	struct vhdx_meta_set s;

	vhdx_guid_str(link, a);
	if (link2)
		vhdx_guid_str(link2, b);
	memset(&s, 0, sizeof(s));
	s.keys = keys;
	s.vals = vals;
	s.nkeys = 2;
	return vxe_edit(child, &s, NULL, NULL, 0, 0);
}

/* commit of a VHDX child into its VHDX parent. */
int vx_commit(const char *path, int do_sync)
{
	struct vxchain c, p, w;
	struct vhdx *leaf, *pv, *wv;
	struct vhdx_guid oldg, newg, link;
	uint8_t *buf = NULL, *own = NULL;
	uint64_t done = 0;
	char g1[39], g2[39];
	int rc;

	memset(&p, 0, sizeof(p));
	memset(&w, 0, sizeof(w));
	/* The whole chain, read-only: the child's data is read from here. */
	if ((rc = img_open_vhdx(&c, path, VXC_RDONLY)))
		return rc;
	leaf = vxc_leaf(&c);
	if (!leaf->has_parent || c.n < 2) {
		rc = cmd_fail(1, "%s is a %s VHDX: only a differencing image has a parent to commit into", path,
		              leaf->leave_allocated ? "fixed" : "dynamic");
		goto out;
	}
	/* The parent writable on its own; its session's DataWriteGuid is known before anything is written. */
	if ((rc = img_open_vhdx(&p, c.m[1]->path, VXC_LEAF_ONLY | (do_sync ? 0 : VXC_NOSYNC)))) {
		rc = cmd_fail(1, "parent %s cannot be opened for writing", c.m[1]->path);
		goto out;
	}
	pv = vxc_leaf(&p);
	oldg = pv->hdr.data_write;
	newg = pv->sess.data_write;
	/* 1. The child accepts both the parent's current and its next DataWriteGuid (parent_linkage2), so a kill later keeps the chain. */
	if ((rc = img_open_vhdx(&w, path, VXC_LEAF_ONLY | VXC_NO_BAT | (do_sync ? 0 : VXC_NOSYNC))))
		goto out;
	wv = vxc_leaf(&w);
	if ((rc = vxe_relink(wv, &oldg, &newg)) || (rc = vhdx_close(wv)) ||
	    (!do_sync && hostdev_sync(&w.m[0]->hd) < 0 ? (rc = VHDX_E_IO) : 0)) {
		rc = vxe_fail(path, "adding parent_linkage2", rc, &w.m[0]->hd);
		goto out;
	}
	/* 2. Every sector the child decides, into the parent (its first write switches it to the new DataWriteGuid). */
	buf = malloc(leaf->block_size);
	own = malloc(leaf->spb);
	if (!buf || !own) {
		rc = cmd_fail(1, "out of memory");
		goto out;
	}
	for (uint64_t b = 0; b < leaf->data_blocks; b++) {
		uint32_t lim = vxe_limit(leaf, b);
		if ((rc = vxe_own(c.m[0], b, own))) {
			rc = vxe_fail(path, "reading a sector bitmap", rc, &c.m[0]->hd);
			goto out;
		}
		for (uint32_t s = 0; s < lim;) {
			uint32_t e = s;
			if (!own[s]) {
				s++;
				continue;
			}
			while (e < lim && own[e])
				e++;
			if ((rc = vhdx_read(leaf, b * leaf->spb + s, e - s, buf))) {
				rc = vxe_fail(path, "read", rc, &c.m[0]->hd);
				goto out;
			}
			if ((rc = vhdx_write(pv, b * leaf->spb + s, e - s, buf))) {
				rc = vxe_fail(p.m[0]->path, "write", rc, &p.m[0]->hd);
				goto out;
			}
			done += e - s;
			s = e;
		}
	}
	/* 3. The parent closed (flushed, log empty); 4. the child linked to what the parent now is. */
	if ((rc = vxe_finish(p.m[0])))
		goto out;
	link = pv->hdr.data_write;
	if ((rc = vxe_relink(wv, &link, NULL)) || (rc = vhdx_close(wv))) {
		rc = vxe_fail(path, "relinking to the parent", rc, &w.m[0]->hd);
		goto out;
	}
	if ((rc = cmd_sync(&w.m[0]->hd, path)))
		goto out;
	vhdx_guid_str(&oldg, g1);
	vhdx_guid_str(&link, g2);
	printf("%s: committed %llu sectors into %s\n", path, (unsigned long long)done, p.m[0]->path);
	if (memcmp(&oldg, &link, sizeof(link)))
		printf("%s: the parent's DataWriteGuid changed from %s to %s: %s links to the new one; any other child of "
		       "%s still names %s and no longer attaches (parent-linkage), as its view of the parent changed\n",
		       p.m[0]->path, g1, g2, path, p.m[0]->path, g1);
	rc = 0;
out:
	if (rc) {
		if (p.n)
			vhdx_close(vxc_leaf(&p));
		if (w.n)
			vhdx_close(vxc_leaf(&w));
	}
	free(buf);
	free(own);
	vxc_close(&w);
	vxc_close(&p);
	vxc_close(&c);
	return rc;
}

/* ------------------------------------------------------------------ rebase */

/* rebase of a VHDX child onto NEWPARENT (a VHDX): safe (differing sectors copied first) or unsafe (links only). */
int vx_rebase(const char *path, const char *np_path, int unsafe, int do_sync)
{
	struct vxchain np, old, w;
	struct vhdx *child, *npv, *wv;
	struct vxc_member *wm;
	uint8_t *a = NULL, *b = NULL, *own = NULL;
	uint64_t copied = 0;
	char abs_np[PATH_MAX], rel[PATH_MAX * 2], link[39];
	struct stat sc;
	int rc;

	memset(&old, 0, sizeof(old));
	memset(&w, 0, sizeof(w));
	if ((rc = img_open_vhdx(&np, np_path, VXC_RDONLY)))
		return rc;
	npv = vxc_leaf(&np);
	if ((rc = img_open_vhdx(&old, path, VXC_RDONLY | (unsafe ? VXC_LEAF_ONLY : 0))))
		goto out;
	child = vxc_leaf(&old);
	if (!child->has_parent) {
		rc = cmd_fail(1, "%s is not a differencing VHDX: only a differencing image has a parent to change", path);
		goto out;
	}
	if (npv->vsize != child->vsize) {
		rc = cmd_fail(1, "%s has %llu bytes, %s has %llu: a parent must have its child's size", np_path,
		              (unsigned long long)npv->vsize, path, (unsigned long long)child->vsize);
		goto out;
	}
	if (stat(path, &sc) == 0)
		for (int i = 0; i < np.n; i++) {
			struct stat sp;
			if (stat(np.m[i]->path, &sp) == 0 && sp.st_dev == sc.st_dev && sp.st_ino == sc.st_ino) {
				rc = cmd_fail(1, "%s is %s or has it in its chain: the chain would loop (chain-loop)", np_path, path);
				goto out;
			}
		}
	if ((rc = cmd_parent_paths(path, np_path, abs_np, rel, sizeof(rel))))
		goto out;
	if ((rc = img_open_vhdx(&w, path, VXC_LEAF_ONLY | (do_sync ? 0 : VXC_NOSYNC))))
		goto out;
	wm = vxe_m0(&w);
	wv = &wm->v;
	/*
	 * The chain's content does not change (safe mode copies exactly what
	 * would), so the child keeps its DataWriteGuid: its own children stay attached.
	 */
	wv->sess.data_write = wv->hdr.data_write;
	if (!unsafe) {
		a = malloc(wv->block_size);
		b = malloc(wv->block_size);
		own = malloc(wv->spb);
		if (!a || !b || !own) {
			rc = cmd_fail(1, "out of memory");
			goto out;
		}
		for (uint64_t blk = 0; blk < wv->data_blocks; blk++) {
			uint32_t lim = vxe_limit(wv, blk);
			uint64_t lba = blk * wv->spb;
			if ((rc = vxe_own(wm, blk, own))) {
				rc = vxe_fail(path, "reading a sector bitmap", rc, &wm->hd);
				goto out;
			}
			if (!memchr(own, 0, lim))
				continue;
			if ((rc = vhdx_read(&old.m[1]->v, lba, lim, a)) || (rc = vhdx_read(npv, lba, lim, b))) {
				rc = vxe_fail(path, "reading the old and new parents", rc, NULL);
				goto out;
			}
			for (uint32_t s = 0; s < lim;) {
				uint32_t e = s;
				while (e < lim && !own[e] && memcmp(a + (size_t)e * VHDX_SECTOR, b + (size_t)e * VHDX_SECTOR, VHDX_SECTOR))
					e++;
				if (e == s) {
					s++;
					continue;
				}
				if ((rc = vhdx_write(wv, lba + s, e - s, a + (size_t)s * VHDX_SECTOR))) {
					rc = vxe_fail(path, "copying from the old chain", rc, &wm->hd);
					goto out;
				}
				copied += e - s;
				s = e;
			}
		}
	}
	/* The switch: one log entry rewrites the locator (linkage = NEWPARENT's DataWriteGuid, its paths). */
	{
		const char *keys[5] = { "parent_linkage", "parent_linkage2", "relative_path", "volume_path", "absolute_win32_path" };
		const char *vals[5] = { link, NULL, rel, NULL, abs_np };
		struct vhdx_meta_set s;
		vhdx_guid_str(&npv->hdr.data_write, link);
		memset(&s, 0, sizeof(s));
		s.keys = keys;
		s.vals = vals;
		s.nkeys = 5;
		if ((rc = vxe_edit(wv, &s, NULL, NULL, 0, 0))) {
			rc = vxe_fail(path, "writing the new parent locator", rc, &wm->hd);
			goto out;
		}
	}
	if ((rc = vxe_finish(wm)))
		goto out;
	printf("%s: parent is now %s (%s; %llu sectors copied from the old chain; parent_linkage %s)\n", path, np_path,
	       unsafe ? "unsafe: links only" : "safe", (unsigned long long)copied, link);
	rc = 0;
out:
	if (rc && w.n)
		vhdx_close(vxc_leaf(&w));
	free(a);
	free(b);
	free(own);
	vxc_close(&w);
	vxc_close(&old);
	vxc_close(&np);
	return rc;
}

/* ------------------------------------------------------------------ compact */

/* One extent of the file in bytes; idx: the BAT index of a movable block, UINT64_MAX for fixed structures. */
struct vxe_ext {
	uint64_t s, e, idx;
};

/* qsort order: by start. */
static int vxe_ext_cmp(const void *x, const void *y)
{
	const struct vxe_ext *a = x, *b = y;

	return a->s < b->s ? -1 : a->s > b->s;
}

/* Every extent the image uses: header section, log, regions, present blocks; *n. */
static struct vxe_ext *vxe_extents(const struct vhdx *v, uint64_t *n)
{
	struct vxe_ext *x = malloc((v->bat_entries + 4) * sizeof(*x));
	uint64_t k = 0;

	if (!x)
		return NULL;
	x[k++] = (struct vxe_ext){ 0, VHDX_MIB, UINT64_MAX };
	x[k++] = (struct vxe_ext){ v->hdr.log_offset, v->hdr.log_offset + v->hdr.log_length, UINT64_MAX };
	x[k++] = (struct vxe_ext){ v->bat_off, v->bat_off + v->bat_len, UINT64_MAX };
	x[k++] = (struct vxe_ext){ v->meta_off, v->meta_off + v->meta_len, UINT64_MAX };
	for (uint64_t i = 0; i < v->bat_entries; i++) {
		uint64_t e = v->bat[i], off = vhdx_bat_mb(e) << 20;
		int sb = i % (v->chunk_ratio + 1ull) == v->chunk_ratio;
		unsigned st = vhdx_bat_state(e);
		if (sb ? st == VHDX_SB_PRESENT : (st == VHDX_PB_FULLY_PRESENT || st == VHDX_PB_PARTIALLY_PRESENT))
			x[k++] = (struct vxe_ext){ off, off + (sb ? VHDX_MIB : v->block_size), i };
	}
	qsort(x, k, sizeof(*x), vxe_ext_cmp);
	*n = k;
	return x;
}

/* compact of a dynamic or differencing VHDX, in place: drop empty blocks, move the last ones into holes, cut. */
int vx_compact(const char *path, int json, int do_sync)
{
	struct vxchain c;
	struct vxc_member *m;
	struct vhdx *v;
	struct vxe_ext *x = NULL;
	uint64_t *idx = NULL, *val = NULL, before, after, n = 0, end = 0;
	uint8_t *buf = NULL, *own = NULL;
	uint32_t dropped = 0, moved = 0, nb = 0;
	int rc;

	if ((rc = img_open_vhdx(&c, path, VXC_LEAF_ONLY | (do_sync ? 0 : VXC_NOSYNC))))
		return rc;
	m = vxe_m0(&c);
	v = &m->v;
	before = m->hd.dev.size_bytes;
	if (v->leave_allocated) {
		rc = cmd_fail(1, "%s is a fixed VHDX: it has no blocks to drop ('vhdtool convert -O vhdx-dynamic' makes a "
		              "compact copy)", path);
		goto out;
	}
	/* The virtual disk reads the same: children of this image stay attached (same DataWriteGuid). */
	v->sess.data_write = v->hdr.data_write;
	buf = malloc(v->block_size);
	own = malloc(v->spb);
	idx = malloc(256 * sizeof(*idx));
	val = malloc(256 * sizeof(*val));
	if (!buf || !own || !idx || !val) {
		rc = cmd_fail(1, "out of memory");
		goto out;
	}
	/* 1. Drop: all-zero blocks (no parent), bitmap-empty blocks (differencing), space held by zero-state blocks; 256 entries per log entry. */
	for (uint64_t b = 0; b <= v->data_blocks; b++) {
		if (b < v->data_blocks) {
			uint64_t i = vxe_pbi(v, b), e = v->bat[i];
			unsigned st = vhdx_bat_state(e);
			int drop = 0;
			uint64_t nv = 0;
			if (st == VHDX_PB_FULLY_PRESENT && !v->has_parent) {
				if ((rc = vhdx_read(v, b * v->spb, vxe_limit(v, b), buf))) {
					rc = vxe_fail(path, "read", rc, &m->hd);
					goto out;
				}
				drop = hostdev_is_zero(buf, (size_t)vxe_limit(v, b) * VHDX_SECTOR);
			} else if (st == VHDX_PB_PARTIALLY_PRESENT) {
				if ((rc = vxe_own(m, b, own))) {
					rc = vxe_fail(path, "reading a sector bitmap", rc, &m->hd);
					goto out;
				}
				drop = !memchr(own, 1, vxe_limit(v, b));
			} else if ((st == VHDX_PB_ZERO || st == VHDX_PB_UNMAPPED || st == VHDX_PB_UNDEFINED) && vhdx_bat_mb(e)) {
				drop = 1;
				nv = v->has_parent ? vhdx_bat_make(st, 0) : 0;   /* a child's zero block still hides the parent */
			}
			if (drop) {
				idx[nb] = i;
				val[nb++] = nv;
				dropped++;
			}
		}
		if (nb && (nb == 256 || b == v->data_blocks)) {
			if ((rc = vxe_edit(v, NULL, idx, val, nb, 0))) {
				rc = vxe_fail(path, "dropping blocks", rc, &m->hd);
				goto out;
			}
			nb = 0;
		}
	}
	/* 2. Pack: the last block moves into the first hole before it that fits, until none does. */
	for (;;) {
		uint64_t last = UINT64_MAX, hole = UINT64_MAX, len;
		free(x);
		if (!(x = vxe_extents(v, &n))) {
			rc = cmd_fail(1, "out of memory");
			goto out;
		}
		for (uint64_t k = n; k-- > 0;)
			if (x[k].idx != UINT64_MAX) {
				last = k;
				break;
			}
		if (last == UINT64_MAX)
			break;
		len = x[last].e - x[last].s;
		for (uint64_t k = 0; k + 1 <= last && hole == UINT64_MAX; k++) {
			uint64_t hs = (x[k].e + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
			uint64_t he = x[k + 1].s;
			for (uint64_t j = k + 1; j < n; j++)   /* the end of this extent may lie past the next start: overlap-free anyway */
				if (x[j].s >= hs) {
					he = x[j].s;
					break;
				}
			if (he > hs && he - hs >= len && hs + len <= x[last].s)
				hole = hs;
		}
		if (hole == UINT64_MAX)
			break;
		/* Copy into the hole (nothing points at it), flush, then one BAT entry through the log. */
		for (uint64_t d = 0; d < len;) {
			uint32_t l = len - d < v->block_size ? (uint32_t)(len - d) : v->block_size;
			ssize_t got = hostdev_pread_full(m->hd.fd, buf, l, x[last].s + d);
			if (got != (ssize_t)l) {
				memset(buf + (got > 0 ? got : 0), 0, l - (size_t)(got > 0 ? got : 0));   /* a sparse tail past EOF reads zeros */
			}
			if (blk_write(&m->hd.dev, (hole + d) / VHDX_SECTOR, l / VHDX_SECTOR, buf)) {
				rc = vxe_fail(path, "moving a block", VHDX_E_IO, &m->hd);
				goto out;
			}
			d += l;
		}
		if (blk_flush(&m->hd.dev)) {
			rc = vxe_fail(path, "flush", VHDX_E_IO, &m->hd);
			goto out;
		}
		idx[0] = x[last].idx;
		val[0] = vhdx_bat_make(vhdx_bat_state(v->bat[idx[0]]), hole >> 20);
		if ((rc = vxe_edit(v, NULL, idx, val, 1, 0))) {
			rc = vxe_fail(path, "moving a block", rc, &m->hd);
			goto out;
		}
		moved++;
	}
	for (uint64_t k = 0; k < n; k++)
		if (x[k].e > end)
			end = x[k].e;
	/* 3. Close the session (the log is empty, so nothing replays past the cut), then cut after the last extent. */
	if ((rc = vhdx_close(v))) {
		rc = vxe_fail(path, "closing the session", rc, &m->hd);
		goto out;
	}
	if (end < m->hd.dev.size_bytes && hostdev_truncate(&m->hd, end) < 0) {
		rc = vxe_fail(path, "cutting the file", VHDX_E_IO, &m->hd);
		goto out;
	}
	if ((rc = cmd_sync(&m->hd, path)))
		goto out;
	after = m->hd.dev.size_bytes;
	if (json)
		printf("{\"image\": \"%s\", \"dropped\": %u, \"moved\": %u, \"bytes_before\": %llu, \"bytes_after\": %llu}\n",
		       path, dropped, moved, (unsigned long long)before, (unsigned long long)after);
	else
		printf("%s: %u block%s dropped, %u moved, %llu -> %llu bytes\n", path, dropped, dropped == 1 ? "" : "s", moved,
		       (unsigned long long)before, (unsigned long long)after);
	rc = 0;
out:
	if (rc && c.n)
		vhdx_close(v);
	free(x);
	free(idx);
	free(val);
	free(buf);
	free(own);
	vxc_close(&c);
	return rc;
}

/* ------------------------------------------------------------------ repair */

/* repair of a VHDX: pending log replayed, a bad header or region table copy rewritten from the good one, blocks past EOF dropped. */
int vx_repair(const char *path, int dry, int do_sync)
{
	struct vxchain c;
	struct vxc_member *m;
	struct vhdx *v;
	uint64_t *raw = NULL, *idx = NULL, *val = NULL, nfix = 0;
	int rc, actions = 0, hdr_bad, rt_bad, log_pending, rt_good;

	if ((rc = img_open_vhdx(&c, path, VXC_LEAF_ONLY | VXC_NO_BAT | (dry ? VXC_RDONLY : 0) | (do_sync ? 0 : VXC_NOSYNC)))) {
		cmd_fail(1, "%s: not repairable: the image does not open (see 'vhdtool check %s'); unchanged", path, path);
		return 1;
	}
	m = vxe_m0(&c);
	v = &m->v;
	hdr_bad = !!(v->state & VHDX_ST_HEADER_COPY_BAD);
	rt_bad = !!(v->state & (VHDX_ST_REGION_COPY_BAD | VHDX_ST_REGION_COPIES_DIFFER));
	log_pending = !!(v->state & (VHDX_ST_LOG_REPLAYED | VHDX_ST_LOG_OVERLAY));
	rt_good = v->rt_err[0] ? 1 : 0;
	/* Blocks (or sector bitmap blocks) lying past the end of the file: read raw, since vhdx_load_bat refuses them. */
	raw = malloc(v->bat_entries * 8 + 8);
	idx = malloc(v->bat_entries * 8 + 8);
	val = malloc(v->bat_entries * 8 + 8);
	if (!raw || !idx || !val) {
		rc = cmd_fail(EXIT_USAGE, "out of memory");
		goto out;
	}
	for (uint64_t i = 0; i < v->bat_entries; i++) {
		uint8_t e[8];
		if (hostdev_pread_full(m->hd.fd, e, 8, v->bat_off + i * 8) != 8) {
			rc = cmd_fail(EXIT_USAGE, "%s: reading the BAT: %s", path, strerror(errno));
			goto out;
		}
		raw[i] = (uint64_t)e[0] | (uint64_t)e[1] << 8 | (uint64_t)e[2] << 16 | (uint64_t)e[3] << 24 |
		         (uint64_t)e[4] << 32 | (uint64_t)e[5] << 40 | (uint64_t)e[6] << 48 | (uint64_t)e[7] << 56;
	}
	rc = 0;
	for (uint64_t i = 0; i < v->bat_entries; i++) {
		int sb = i % (v->chunk_ratio + 1ull) == v->chunk_ratio;
		unsigned st = vhdx_bat_state(raw[i]);
		uint64_t off = vhdx_bat_mb(raw[i]) << 20, len = sb ? VHDX_MIB : v->block_size;
		int present = sb ? st == VHDX_SB_PRESENT : (st == VHDX_PB_FULLY_PRESENT || st == VHDX_PB_PARTIALLY_PRESENT);
		if (!present || (off && off + len <= m->hd.dev.size_bytes))
			continue;
		idx[nfix] = i;
		val[nfix++] = 0;
		if (sb) {
			/* The chunk's partially present blocks lose their bitmap: they go too. */
			uint64_t first = i - v->chunk_ratio;
			for (uint64_t j = first; j < i; j++)
				if (vhdx_bat_state(raw[j]) == VHDX_PB_PARTIALLY_PRESENT) {
					idx[nfix] = j;
					val[nfix++] = 0;
					raw[j] = 0;
				}
		}
		printf("%s: %s %llu at %llu lies past the end of the file (%llu bytes): entry %s (its data is lost; the "
		       "block reads %s)\n", path, sb ? "sector bitmap block of chunk" : "block",
		       (unsigned long long)(sb ? i / (v->chunk_ratio + 1ull) : i - i / (v->chunk_ratio + 1ull)),
		       (unsigned long long)off, (unsigned long long)m->hd.dev.size_bytes, dry ? "would be cleared" : "cleared",
		       v->has_parent ? "the parent's data" : "zeros");
	}
	if (log_pending) {
		printf("%s: %u pending log entr%s %s\n", path, v->log_replayed, v->log_replayed == 1 ? "y" : "ies",
		       dry ? "would be replayed into the file" : "replayed into the file");
		actions++;
	}
	if (hdr_bad) {
		printf("%s: header copy %d is invalid (%s): %s from the current one\n", path, !v->cur,
		       vhdx_errname(v->hdr_err[!v->cur]), dry ? "would be rewritten" : "rewritten");
		actions++;
	}
	if (rt_bad) {
		printf("%s: region table copy %d is %s: %s from copy %d\n", path, !rt_good,
		       v->rt_err[!rt_good] ? vhdx_errname(v->rt_err[!rt_good]) : "different from the other",
		       dry ? "would be rewritten" : "rewritten", rt_good);
		actions++;
	}
	actions += nfix != 0;
	if (!actions) {
		struct vxchain t;
		vxc_close(&c);
		if ((rc = img_open_vhdx(&t, path, VXC_RDONLY | VXC_LEAF_ONLY))) {
			cmd_fail(1, "%s: not repairable by vhdtool (none of: pending log, bad header or region table copy, "
			         "block past the end); unchanged", path);
			return 1;
		}
		vxc_close(&t);
		printf("%s: nothing to repair\n", path);
		return 0;
	}
	if (dry)
		goto out;
	/* Region table: the good copy over the other (direct: the good one stays valid whatever a kill leaves). */
	if (rt_bad) {
		uint8_t *t = malloc(64u << 10);
		uint64_t from = rt_good ? (256u << 10) : (192u << 10), to = rt_good ? (192u << 10) : (256u << 10);
		int bad = !t || hostdev_pread_full(m->hd.fd, t, 64u << 10, from) != (ssize_t)(64u << 10) ||
		          blk_write(&m->hd.dev, to / VHDX_SECTOR, (64u << 10) / VHDX_SECTOR, t) || blk_flush(&m->hd.dev);
		free(t);
		if (bad) {
			rc = vxe_fail(path, "rewriting the region table copy", VHDX_E_IO, &m->hd);
			goto out;
		}
	}
	/* Headers (an empty edit rewrites both) and the BAT entries, each batch one log entry. */
	for (uint64_t k = 0; k < nfix || k == 0; k += 256) {
		uint32_t cnt = nfix - k < 256 ? (uint32_t)(nfix - k) : 256;
		if ((rc = vxe_edit(v, NULL, idx + k, val + k, cnt, cnt != 0))) {
			rc = vxe_fail(path, "writing the repair", rc, &m->hd);
			goto out;
		}
		if (!nfix)
			break;
	}
	if ((rc = vxe_finish(m)))
		goto out;
	/* The result must open with its BAT: checked by opening it again. */
	vxc_close(&c);
	if ((rc = img_open_vhdx(&c, path, VXC_RDONLY | VXC_LEAF_ONLY))) {
		cmd_fail(1, "%s: still does not open after the repair", path);
		return 1;
	}
	printf("%s: repaired\n", path);
	rc = 0;
out:
	if (rc && c.n && !dry)
		vhdx_close(vxc_leaf(&c));
	free(raw);
	free(idx);
	free(val);
	vxc_close(&c);
	return rc;
}
