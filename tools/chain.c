/* chain.c: open a VHD with its whole differencing chain on the host (parents located, opened read-only, attached). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "chain.h"

/* Most file paths one parent lookup will try (a few per candidate). */
#define CHAIN_MAX_TRIES 32

/* Format a 16-byte unique id as 8-4-4-4-12 lower-case hex. */
void chain_uuid_str(const uint8_t u[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
	         u[12], u[13], u[14], u[15]);
}

/* Format a VHD time stamp as an ISO 8601 UTC date ("2024-01-31T12:00:00Z"). */
void chain_time_str(uint32_t vhd_time, char out[32])
{
	time_t t = (time_t)vhd_time + VHD_EPOCH_OFFSET;
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, 32, "?");
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
static int chain_open_member(struct chain *c, const char *path, unsigned vflags, int check_overlaps,
                             int is_leaf, struct chain_member **out)
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
	if (hostdev_open(&m->hd, path, (vflags & VHD_OPEN_RDONLY) ? HOSTDEV_RDONLY : 0) < 0) {
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

/* Decode %XX escapes of a file URL in place. */
static void chain_url_decode(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '%' && isxdigit((unsigned char)s[1]) && isxdigit((unsigned char)s[2])) {
			char hex[3] = { s[1], s[2], 0 };
			*w++ = (char)strtol(hex, NULL, 16);
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = 0;
}

/* Append dir/name to the try list (deduplicated by text). */
static void chain_add_try(char tries[][4096], int *n, const char *dir, const char *name)
{
	char buf[4096];

	if (*n >= CHAIN_MAX_TRIES || !*name)
		return;
	while (name[0] == '.' && name[1] == '/')
		name += 2;   /* ".\\x.vhd" (Hyper-V's W2ru) -> "x.vhd" */
	if (dir && !strcmp(dir, "."))
		dir = NULL;  /* keep "x.vhd" rather than "./x.vhd" in messages */
	if (dir)
		snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	else
		snprintf(buf, sizeof(buf), "%s", name);
	for (int i = 0; i < *n; i++)
		if (!strcmp(tries[i], buf))
			return;
	snprintf(tries[(*n)++], 4096, "%s", buf);
}

/*
 * Turn one locator candidate into host paths to try, in order:
 * relative -> child's dir; "C:/x/y" -> "/x/y" then child's dir + "y";
 * absolute -> as is; MacX -> URL-decoded, "localhost" host dropped.
 */
static void chain_candidate_paths(const char *cand, uint32_t code, const char *childdir,
                                  char tries[][4096], int *n)
{
	char p[VHD_PATH_MAX + 16];
	const char *base;

	snprintf(p, sizeof(p), "%s", cand);
	if (code == VHD_PLAT_MACX) {
		chain_url_decode(p);
		if (!strncmp(p, "localhost/", 10))
			memmove(p, p + 9, strlen(p + 9) + 1);
	}
	if (isalpha((unsigned char)p[0]) && p[1] == ':') {
		const char *rest = p + 2;
		if (rest[0] == '/')
			chain_add_try(tries, n, NULL, rest);
		base = strrchr(rest, '/');
		chain_add_try(tries, n, childdir, base ? base + 1 : rest);
	} else if (p[0] == '/') {
		chain_add_try(tries, n, NULL, p);
	} else {
		chain_add_try(tries, n, childdir, p);
	}
}

/* Explain why vhd_set_parent refused parent for child, naming the failed check. */
static void chain_explain(struct chain *c, int rc, const struct chain_member *child,
                          const struct chain_member *parent)
{
	char a[37], b[37], ta[32], tb[32];

	switch (rc) {
	case VHD_E_PARENT_UUID:
		chain_uuid_str(child->v.header.parent_uuid, a);
		chain_uuid_str(parent->v.footer.uuid, b);
		chain_err(c, "parent unique id mismatch: %s expects %s, %s has %s (%s)",
		          child->path, a, parent->path, b, vhd_errname(rc));
		break;
	case VHD_E_PARENT_TIMESTAMP:
		chain_time_str(child->v.header.parent_timestamp, ta);
		chain_time_str(parent->v.footer.timestamp, tb);
		chain_err(c, "parent time stamp mismatch: %s expects %u (%s), %s has %u (%s); "
		          "--ignore-timestamp overrides (%s)",
		          child->path, child->v.header.parent_timestamp, ta, parent->path,
		          parent->v.footer.timestamp, tb, vhd_errname(rc));
		break;
	case VHD_E_PARENT_SIZE:
		chain_err(c, "parent size mismatch: %s is %llu bytes, %s is %llu bytes (%s)",
		          child->path, (unsigned long long)child->v.footer.cur_size, parent->path,
		          (unsigned long long)parent->v.footer.cur_size, vhd_errname(rc));
		break;
	case VHD_E_CHAIN_LOOP:
		chain_uuid_str(parent->v.footer.uuid, b);
		chain_err(c, "differencing chain loop: %s (id %s) already appears in the chain (%s)",
		          parent->path, b, vhd_errname(rc));
		break;
	case VHD_E_CHAIN_DEPTH:
		chain_err(c, "differencing chain deeper than %d images at %s (%s)", VHD_MAX_CHAIN,
		          parent->path, vhd_errname(rc));
		break;
	default:
		chain_err(c, "%s cannot be the parent of %s: %s (%s)", parent->path, child->path,
		          vhd_strerror(rc), vhd_errname(rc));
		break;
	}
}

/* Find, open and attach the parent of c->m[level]; returns 0 or a vhd_err with c->err set. */
static int chain_find_parent(struct chain *c, int level, unsigned flags)
{
	struct chain_member *child = c->m[level];
	char (*tries)[4096] = malloc(CHAIN_MAX_TRIES * sizeof(*tries));
	char cand[VHD_PATH_MAX];
	char childdir[4096];
	char *slash;
	int ntries = 0, best_rc = 0, bad_locators = 0;
	char best[sizeof(c->err)] = "";
	struct stat seen[CHAIN_MAX_TRIES];
	int nseen = 0;
	unsigned pflags = (flags & CHAIN_IGNORE_TIMESTAMP) ? VHD_PARENT_IGNORE_TIMESTAMP : 0;

	if (!tries) {
		chain_err(c, "%s: out of memory", child->path);
		return VHD_E_IO;
	}
	snprintf(childdir, sizeof(childdir), "%s", child->path);
	slash = strrchr(childdir, '/');
	if (!slash)
		snprintf(childdir, sizeof(childdir), ".");
	else if (slash == childdir)
		childdir[1] = 0;  /* "/x.vhd" -> "/" */
	else
		*slash = 0;
	if (!strcmp(childdir, "/"))
		childdir[0] = 0;  /* joins as "/name" */

	for (int idx = 0; idx < 64; idx++) {
		uint32_t code = 0;
		int rc = vhd_parent_candidate(&child->v, idx, cand, sizeof(cand), &code);
		if (rc == VHD_E_NO_LOCATOR)
			break;
		if (rc) {
			bad_locators++;
			continue;
		}
		chain_candidate_paths(cand, code, childdir, tries, &ntries);
	}

	for (int i = 0; i < ntries; i++) {
		struct stat st;
		struct chain_member *p;
		int dup = 0, rc;

		if (stat(tries[i], &st) < 0)
			continue;
		for (int j = 0; j < nseen; j++)
			if (seen[j].st_dev == st.st_dev && seen[j].st_ino == st.st_ino)
				dup = 1;
		if (dup)
			continue;
		seen[nseen++] = st;
		rc = chain_open_member(c, tries[i], VHD_OPEN_RDONLY, 1, 0, &p);
		if (rc == 0) {
			rc = vhd_set_parent(&child->v, &p->v, &c->m[0]->v, pflags);
			if (rc == 0) {
				c->m[c->n++] = p;
				free(tries);
				return 0;
			}
			chain_explain(c, rc, child, p);
			chain_member_free(p);
		}
		if (!best_rc) {
			best_rc = rc;
			snprintf(best, sizeof(best), "%s", c->err);
		}
	}
	if (best_rc) {
		snprintf(c->err, sizeof(c->err), "%s", best);
		free(tries);
		return best_rc;
	}
	{
		size_t off;
		off = (size_t)snprintf(c->err, sizeof(c->err), "%s: parent not found (%s): ",
		                       child->path, vhd_errname(VHD_E_PARENT_NOT_FOUND));
		if (ntries == 0)
			snprintf(c->err + off, sizeof(c->err) - off, "no usable parent locator or name%s",
			         bad_locators ? " (malformed locators skipped)" : "");
		for (int i = 0; i < ntries && off < sizeof(c->err); i++)
			off += (size_t)snprintf(c->err + off, sizeof(c->err) - off, "%s%s",
			                        i ? ", " : "tried ", tries[i]);
	}
	free(tries);
	return VHD_E_PARENT_NOT_FOUND;
}

/* Open path and its parents; see chain.h. */
int chain_open(struct chain *c, const char *path, unsigned flags)
{
	unsigned vflags = (flags & CHAIN_RDONLY) ? VHD_OPEN_RDONLY : 0;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = chain_open_member(c, path, vflags, !(flags & CHAIN_LENIENT), 1, &c->m[0]);
	if (rc)
		return rc;
	c->n = 1;
	if (flags & CHAIN_LEAF_ONLY)
		return 0;
	while (c->m[c->n - 1]->v.footer.type == VHD_TYPE_DIFF) {
		c->err_level = c->n - 1;
		if (c->n > VHD_MAX_CHAIN) {
			chain_err(c, "%s: differencing chain deeper than %d images (%s)", path,
			          VHD_MAX_CHAIN, vhd_errname(VHD_E_CHAIN_DEPTH));
			return VHD_E_CHAIN_DEPTH;
		}
		rc = chain_find_parent(c, c->n - 1, flags);
		if (rc)
			return rc;
	}
	return 0;
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
