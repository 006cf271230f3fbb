/* vxchain.c: open a VHDX with its differencing chain on the host (parents found through image/resolve.c, opened read-only, attached). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include "vxchain.h"
#include "../image/resolve.h"   /* res_vhdx_open_chain */
#include "hostres.h"            /* hostres_seen, hostres_admit */

/* 16 random bytes from getrandom(); 0 or -1 with errno. */
int vxc_random_guid(struct vhdx_guid *g)
{
	size_t got = 0;

	while (got < sizeof(g->b)) {
		ssize_t r = getrandom(g->b + got, sizeof(g->b) - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)r;
	}
	g->b[7] = (uint8_t)((g->b[7] & 0x0f) | 0x40);   /* version 4 (stored little-endian: byte 7 is the high byte of field 3) */
	g->b[8] = (uint8_t)((g->b[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
	return 0;
}

/* A session of three random GUIDs; 0 or -1 with errno. */
int vxc_random_session(struct vhdx_session *s)
{
	return vxc_random_guid(&s->file_write) || vxc_random_guid(&s->data_write) || vxc_random_guid(&s->log_guid) ? -1 : 0;
}

/* The leaf image, or NULL. */
struct vhdx *vxc_leaf(struct vxchain *c)
{
	return c->n > 0 ? &c->m[0]->v : NULL;
}

/* printf into c->err_msg. */
static void vxc_err(struct vxchain *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vxc_err(struct vxchain *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err_msg, sizeof(c->err_msg), fmt, ap);
	va_end(ap);
}

/* Close and free one member (NULL is fine). */
static void vxc_member_free(struct vxc_member *m)
{
	if (!m)
		return;
	hostdev_close(&m->hd);
	free(m->bat);
	free(m->ovl);
	free(m);
}

/*
 * Open one file as a VHDX into a new member: the log replayed (into the file
 * when writable, else into a malloc'd overlay), BAT loaded unless VXC_NO_BAT,
 * overlaps checked unless VXC_LENIENT. 0 and *out, or a vhdx_err with c->err_msg
 * set; a failed member is still returned in *out when vhdx_open succeeded
 * (so check can name its BAT error), else freed.
 */
static int vxc_open_member(struct vxchain *c, const char *path, unsigned flags, int is_leaf, struct vxc_member **out)
{
	struct vxc_member *m = calloc(1, sizeof(*m));
	int rdonly = !is_leaf || (flags & VXC_RDONLY);
	struct vhdx_session sess;
	struct vhdx_open_opts o;
	int rc;

	*out = NULL;
	if (!m) {
		vxc_err(c, "%s: out of memory", path);
		return VHDX_E_IO;
	}
	snprintf(m->path, sizeof(m->path), "%s", path);
	if (hostdev_open(&m->hd, path, rdonly ? HOSTDEV_RDONLY : (flags & VXC_NOSYNC) ? HOSTDEV_NOSYNC : 0) < 0) {
		if (is_leaf)
			c->sys_errno = errno;
		vxc_err(c, "%s: %s", path, strerror(errno));
		free(m);
		return VHDX_E_IO;
	}
	memset(&o, 0, sizeof(o));
	if (!rdonly) {
		if (vxc_random_session(&sess) < 0) {
			vxc_err(c, "getrandom: %s", strerror(errno));
			vxc_member_free(m);
			return VHDX_E_IO;
		}
		o.session = &sess;
	}
	rc = vhdx_open(&m->v, &m->hd.dev, rdonly ? VHDX_OPEN_RDONLY : 0, &o);
	if (rc == VHDX_E_LOG_OVERLAY && rdonly && m->v.log_need) {
		m->ovl = malloc(m->v.log_need);
		if (!m->ovl) {
			vxc_err(c, "%s: cannot allocate %llu bytes to replay the log in memory", path,
			        (unsigned long long)m->v.log_need);
			vxc_member_free(m);
			return VHDX_E_IO;
		}
		o.overlay = m->ovl;
		o.overlay_bytes = m->v.log_need;
		rc = vhdx_open(&m->v, &m->hd.dev, VHDX_OPEN_RDONLY, &o);
	}
	if (rc) {
		if (rc == VHDX_E_IO && is_leaf && m->hd.last_errno)
			c->sys_errno = m->hd.last_errno;
		vxc_err(c, "%s: %s (%s)", path, rc == VHDX_E_IO && m->hd.last_errno ? strerror(m->hd.last_errno) :
		        vhdx_strerror(rc), vhdx_errname(rc));
		vxc_member_free(m);
		return rc;
	}
	if (is_leaf)
		c->leaf_opened = 1;
	if (m->v.state & VHDX_ST_LOG_OVERLAY)
		fprintf(stderr, "vhdtool: note: %s: %u pending log entr%s replayed in memory only; the file is unchanged "
		        "('vhdtool write' replays the log into the file)\n", path, m->v.log_replayed,
		        m->v.log_replayed == 1 ? "y" : "ies");
	if (m->v.state & VHDX_ST_LOG_REPLAYED)
		fprintf(stderr, "vhdtool: note: %s: %u pending log entr%s replayed into the file first\n", path,
		        m->v.log_replayed, m->v.log_replayed == 1 ? "y" : "ies");
	if (m->v.state & VHDX_ST_LOG_IGNORED)
		fprintf(stderr, "vhdtool: note: %s: the header names a log but no valid entry sequence was found; "
		        "torn entries ignored\n", path);
	*out = m;
	if (is_leaf && (flags & VXC_NO_BAT))
		return 0;
	m->bat = malloc(vhdx_bat_bytes(&m->v) + 8);
	if (!m->bat) {
		vxc_err(c, "%s: cannot allocate %zu bytes for the BAT", path, vhdx_bat_bytes(&m->v));
		return VHDX_E_IO;
	}
	rc = vhdx_load_bat(&m->v, m->bat);
	if (!rc && !(is_leaf && (flags & VXC_LENIENT))) {
		uint64_t *scratch = malloc(vhdx_bat_bytes(&m->v) + 8);
		rc = scratch ? vhdx_check_overlaps(&m->v, scratch) : VHDX_E_IO;
		free(scratch);
	}
	if (rc) {
		vxc_err(c, "%s: %s (%s)", path, vhdx_strerror(rc), vhdx_errname(rc));
		return rc;
	}
	m->ready = 1;
	return 0;
}

/* The resolver's context: the chain being built and the files seen by this lookup. */
struct vxc_res {
	struct vxchain *c;
	struct hostres_seen seen;
};

/* res_vhdx_ops.open_path: a host file deduplicated by inode; a VHDX parent is pushed onto the chain. */
static int vxc_res_open(void *ctx, const struct res_try *t, struct vhdx **parent, const char **path, int *err,
                        char *why, size_t wn)
{
	struct vxc_res *r = ctx;
	struct vxc_member *p;
	uint8_t sec[512];
	int skip = hostres_admit(&r->seen, t);

	if (skip)
		return skip;
	{
		struct hostdev h;
		int is_vhdx = 0;
		if (hostdev_open(&h, t->path, HOSTDEV_RDONLY) == 0) {
			is_vhdx = vhdx_probe(&h.dev, sec);
			hostdev_close(&h);
		}
		if (!is_vhdx) {
			*err = VHDX_E_SIGNATURE;
			if (wn)
				snprintf(why, wn, "%s: not a VHDX (a VHDX chain takes VHDX parents only; VHD and VHDX do not mix) (%s)",
				         t->path, vhdx_errname(VHDX_E_SIGNATURE));
			return RES_ERROR;
		}
	}
	*err = vxc_open_member(r->c, t->path, VXC_RDONLY, 0, &p);
	if (*err) {
		vxc_member_free(p);
		if (wn)
			snprintf(why, wn, "%s", r->c->err_msg);
		return RES_ERROR;
	}
	r->c->m[r->c->n++] = p;
	*parent = &p->v;
	*path = p->path;
	return RES_FOUND;
}

/* res_vhdx_ops.close: drop the refused parent (the last member pushed). */
static void vxc_res_close(void *ctx, struct vhdx *parent)
{
	struct vxc_res *r = ctx;
	struct vxchain *c = r->c;

	if (c->n > 1 && &c->m[c->n - 1]->v == parent) {
		vxc_member_free(c->m[--c->n]);
		c->m[c->n] = NULL;
	}
}

static const struct res_vhdx_ops vxc_res_ops = { vxc_res_open, vxc_res_close };

/* Open path and its parents; see vxchain.h. */
int vxc_open(struct vxchain *c, const char *path, unsigned flags)
{
	int rc;

	memset(c, 0, sizeof(*c));
	rc = vxc_open_member(c, path, flags, 1, &c->m[0]);
	if (c->m[0])
		c->n = 1;
	c->err = rc;
	if (rc || (flags & (VXC_LEAF_ONLY | VXC_NO_BAT)) || !c->m[0]->v.has_parent)
		return rc;
	struct vxc_res *r = calloc(1, sizeof(*r));
	struct res_work *w = malloc(sizeof(*w));
	if (!r || !w) {
		vxc_err(c, "%s: out of memory", path);
		rc = VHDX_E_IO;
	} else {
		r->c = c;
		rc = res_vhdx_open_chain(&vxc_res_ops, r, w, &c->m[0]->v, c->m[0]->path, 0, c->err_msg,
		                         sizeof(c->err_msg));
	}
	free(w);
	free(r);
	c->err = rc;
	return rc;
}

/* Close every member. */
void vxc_close(struct vxchain *c)
{
	for (int i = 0; i < c->n; i++) {
		vxc_member_free(c->m[i]);
		c->m[i] = NULL;
	}
	c->n = 0;
}

/*
 * File offset of virtual byte off when its block is fully present in the
 * leaf and no log overlay covers the file (1), else 0. The payload entry of block b is BAT entry
 * b + b / chunk_ratio (MS-VHDX 2.5: a sector bitmap entry after every
 * chunk_ratio payload entries).
 */
static int vxc_leaf_file_off(struct vxchain *c, uint64_t off, uint64_t *foff)
{
	struct vhdx *v = &c->m[0]->v;
	uint64_t blk = off / v->block_size, e;

	/* A log replayed into memory overlays file bytes: only vhdx_read knows them. */
	if ((v->state & VHDX_ST_LOG_OVERLAY) || !v->bat || blk >= v->data_blocks ||
	    vhdx_block_state(v, off / VHDX_SECTOR) != VHDX_PB_FULLY_PRESENT)
		return 0;
	e = v->bat[blk + blk / v->chunk_ratio];
	if (vhdx_bat_state(e) != VHDX_PB_FULLY_PRESENT)
		return 0;
	*foff = (vhdx_bat_mb(e) << 20) + off % v->block_size;
	return 1;
}

/* Nonzero when [off, off+len) (inside one block) is in a fully present leaf block whose file bytes are a hole: reads as zeros. */
static int vxc_leaf_hole(struct vxchain *c, uint64_t off, uint64_t len)
{
	uint64_t foff;

	return vxc_leaf_file_off(c, off, &foff) && hostdev_next_data(c->m[0]->hd.fd, foff, foff + len) >= foff + len;
}

/* Read len bytes at off, block by block; see vxchain.h. */
int vxc_read(struct vxchain *c, uint64_t off, uint32_t len, uint8_t *buf)
{
	struct vhdx *v = vxc_leaf(c);

	while (len) {
		uint64_t bend = (off / v->block_size + 1) * (uint64_t)v->block_size, foff;
		uint32_t n = bend - off < len ? (uint32_t)(bend - off) : len;
		if (!vxc_leaf_file_off(c, off, &foff)) {
			int rc = vhdx_read(v, off / VHDX_SECTOR, n / VHDX_SECTOR, buf);
			if (rc)
				return rc;
		} else {
			int fd = c->m[0]->hd.fd;
			for (uint64_t pos = foff; pos < foff + n;) {
				uint64_t data = hostdev_next_data(fd, pos, foff + n), hole;
				ssize_t r;
				if (data > pos)
					memset(buf + (pos - foff), 0, data - pos);
				if (data >= foff + n)
					break;
				hole = hostdev_next_hole(fd, data, foff + n);
				r = hostdev_pread_full(fd, buf + (data - foff), hole - data, data);
				if (r < 0 || (uint64_t)r < hole - data) {
					c->m[0]->hd.last_errno = r < 0 ? errno : EIO;
					return VHDX_E_IO;   /* load_bat checked the block lies in the file: short is an error */
				}
				pos = hole;
			}
		}
		off += n;
		buf += n;
		len -= n;
	}
	return 0;
}

/* Zero-known test of one block range of the chain, member after member (see vxchain.h). */
int vxc_unallocated(struct vxchain *c, uint64_t off, uint64_t len)
{
	if (!len)
		return 1;
	for (uint64_t pos = off; pos < off + len;) {
		uint64_t next = off + len;
		int known = 0;
		for (int i = 0; i < c->n && !known; i++) {
			struct vhdx *v = &c->m[i]->v;
			uint64_t bend = (pos / v->block_size + 1) * (uint64_t)v->block_size;
			int st = vhdx_block_state(v, pos / VHDX_SECTOR);
			if (bend < next)
				next = bend;
			if (st == VHDX_PB_ZERO || (!v->has_parent && (st == VHDX_PB_NOT_PRESENT || st == VHDX_PB_UNMAPPED ||
			                                              st == VHDX_PB_UNDEFINED)))
				known = 1;          /* reads as zeros here, whatever is below */
			else if (i == 0 && st == VHDX_PB_FULLY_PRESENT && vxc_leaf_hole(c, pos, next - pos))
				known = 1;          /* the leaf's own bytes, a hole in its file */
			else if (st != VHDX_PB_NOT_PRESENT)
				return 0;           /* data (or a state resolved only by reading) */
		}
		if (!known)
			return 0;
		pos = next;
	}
	return 1;
}
