/* chain.c: open a VHD with its whole differencing chain on the host (parents located, opened read-only, attached). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "chain.h"
#include "../image/resolve.h"
#include "hostres.h"     /* hostres_seen, hostres_admit */

/* Format a 16-byte unique id as 8-4-4-4-12 lower-case hex (res_uuid_str). */
void chain_uuid_str(const uint8_t u[16], char out[37])
{
	res_uuid_str(u, out);
}

/* Format a VHD time stamp as an ISO 8601 UTC date ("2024-01-31T12:00:00Z"; res_time_str). */
void chain_time_str(uint32_t vhd_time, char out[32])
{
	res_time_str(vhd_time, out);
}

/* The leaf image, or NULL when not even the leaf opened. */
struct vhd *chain_leaf(struct chain *c)
{
	return c->n > 0 ? &c->m[0]->v : NULL;
}

/* printf into c->err (the one-line reason of the last failure). */
static void chain_err(struct chain *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

/* Close and free one member (NULL is fine). */
static void chain_member_free(struct chain_member *m)
{
	if (!m)
		return;
	hostdev_close(&m->hd);
	free(m->bat);
	free(m);
}

/*
 * Open one image file and load its BAT; returns 0 and *out, or a vhd_err
 * with c->err set (and c->sys_errno when is_leaf and the file itself failed).
 */
static int chain_open_member(struct chain *c, const char *path, unsigned vflags, unsigned hflags,
                             int check_overlaps, int is_leaf, struct chain_member **out)
{
	struct chain_member *m = calloc(1, sizeof(*m));
	uint32_t *scratch = NULL;
	size_t bytes;
	int rc;

	*out = NULL;
	if (!m) {
		chain_err(c, "%s: out of memory", path);
		return VHD_E_IO;
	}
	snprintf(m->path, sizeof(m->path), "%s", path);
	if (hostdev_open(&m->hd, path, hflags) < 0) {
		if (is_leaf)
			c->sys_errno = errno;
		chain_err(c, "%s: %s", path, strerror(errno));
		free(m);
		return VHD_E_IO;
	}
	rc = vhd_open(&m->v, &m->hd.dev, vflags);
	if (rc) {
		if (rc == VHD_E_IO && is_leaf && m->hd.last_errno)
			c->sys_errno = m->hd.last_errno;
		chain_err(c, "%s: %s (%s)", path, vhd_strerror(rc), vhd_errname(rc));
		goto fail;
	}
	bytes = vhd_bat_bytes(&m->v);
	if (bytes) {
		m->bat = malloc(bytes);
		if (!m->bat) {
			chain_err(c, "%s: cannot allocate %zu bytes for the BAT", path, bytes);
			rc = VHD_E_IO;
			goto fail;
		}
		rc = vhd_load_bat(&m->v, m->bat);
		if (rc) {
			chain_err(c, "%s: %s (%s)", path, vhd_strerror(rc), vhd_errname(rc));
			goto fail;
		}
		if (check_overlaps) {
			scratch = malloc(bytes);
			if (!scratch) {
				chain_err(c, "%s: out of memory", path);
				rc = VHD_E_IO;
				goto fail;
			}
			rc = vhd_check_overlaps(&m->v, scratch);
			free(scratch);
			if (rc) {
				chain_err(c, "%s: %s (%s)", path, vhd_strerror(rc), vhd_errname(rc));
				goto fail;
			}
		}
	}
	*out = m;
	return 0;
fail:
	chain_member_free(m);
	return rc;
}

/* The resolver's context: the chain being built and the files seen by this lookup. */
struct chain_res {
	struct chain *c;
	struct hostres_seen seen;
};

/* res_ops.open_path: a host file, deduplicated by inode within one lookup; pushed onto the chain. */
static int chain_res_open(void *ctx, const struct res_try *t, struct vhd **parent, const char **path,
                          int *err, char *why, size_t wn)
{
	struct chain_res *r = ctx;
	struct chain_member *p;
	int skip = hostres_admit(&r->seen, t);

	if (skip)
		return skip;
	*err = chain_open_member(r->c, t->path, VHD_OPEN_RDONLY, HOSTDEV_RDONLY, 1, 0, &p);
	if (*err) {
		if (wn)
			snprintf(why, wn, "%s", r->c->err);
		return RES_ERROR;
	}
	r->c->m[r->c->n++] = p;
	*parent = &p->v;
	*path = p->path;
	return RES_FOUND;
}

/* res_ops.close: drop the refused parent (always the last member pushed). */
static void chain_res_close(void *ctx, struct vhd *parent)
{
	struct chain_res *r = ctx;
	struct chain *c = r->c;

	if (c->n > 1 && &c->m[c->n - 1]->v == parent) {
		chain_member_free(c->m[--c->n]);
		c->m[c->n] = NULL;
	}
}

static const struct res_ops chain_res_ops = {
	chain_res_open, chain_res_close, "--ignore-timestamp overrides",
};

/* Open path and its parents; see chain.h. */
int chain_open(struct chain *c, const char *path, unsigned flags)
{
	unsigned vflags = (flags & (CHAIN_RDONLY | CHAIN_EDIT)) ? VHD_OPEN_RDONLY : 0;
	unsigned hflags = (flags & CHAIN_RDONLY) ? HOSTDEV_RDONLY : (flags & CHAIN_NOSYNC) ? HOSTDEV_NOSYNC : 0;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = chain_open_member(c, path, vflags, hflags, !(flags & CHAIN_LENIENT), 1, &c->m[0]);
	if (rc)
		return rc;
	c->n = 1;
	if (flags & CHAIN_LEAF_ONLY)
		return 0;
	if (c->m[0]->v.footer.type != VHD_TYPE_DIFF)
		return 0;
	struct chain_res *r = calloc(1, sizeof(*r));
	struct res_work *w = malloc(sizeof(*w));
	char *why = malloc(sizeof(c->err));
	if (!r || !w || !why) {
		chain_err(c, "%s: out of memory", path);
		rc = VHD_E_IO;
	} else {
		r->c = c;
		rc = res_open_chain(&chain_res_ops, r, w, &c->m[0]->v, c->m[0]->path,
		                    (flags & CHAIN_IGNORE_TIMESTAMP) ? RES_IGNORE_TIMESTAMP : 0,
		                    why, sizeof(c->err));
		if (rc) {
			c->err_level = c->n - 1;   /* the member whose parent failed */
			snprintf(c->err, sizeof(c->err), "%s", why);
		}
	}
	free(why);
	free(w);
	free(r);
	return rc;
}

/* Close every member and free their BATs. */
void chain_close(struct chain *c)
{
	for (int i = 0; i < c->n; i++) {
		chain_member_free(c->m[i]);
		c->m[i] = NULL;
	}
	c->n = 0;
}
