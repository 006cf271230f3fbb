/* resolve.c: the one differencing-image parent resolver: candidate paths (VHD locators, VHDX parent locator), chain walk, explanations (see resolve.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "resolve.h"

/* ------------------------------------------------------------------ small string helpers (no libc) */

static size_t res_strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

/* 1 if a and b are equal (fold: ignoring ASCII case). */
static int res_same(const char *a, const char *b, int fold)
{
	for (;; a++, b++) {
		char x = *a, y = *b;
		if (fold) {
			if (x >= 'A' && x <= 'Z')
				x = (char)(x + 32);
			if (y >= 'A' && y <= 'Z')
				y = (char)(y + 32);
		}
		if (x != y)
			return 0;
		if (!x)
			return 1;
	}
}

/* 1 if s starts with prefix. */
static int res_prefix(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return 0;
	return 1;
}

static int res_is_sep(char c)
{
	return c == '/' || c == '\\';
}

/* ------------------------------------------------------------------ a minimal formatter */

/* Output buffer of the formatter: always NUL-terminated, silently truncated. */
struct res_out {
	char *buf;
	size_t cap, len;
};

static void res_putc(struct res_out *o, char c)
{
	if (o->len + 1 < o->cap) {
		o->buf[o->len++] = c;
		o->buf[o->len] = 0;
	}
}

static void res_puts(struct res_out *o, const char *s)
{
	if (!s)
		s = "(null)";
	while (*s)
		res_putc(o, *s++);
}

static void res_putu(struct res_out *o, unsigned long long v)
{
	char d[21];
	int k = 0;
	do {
		/* 32-bit steps: no 64-bit division helper needed on i686. */
		unsigned long long q = 0;
		uint32_t r = 0;
		for (int bit = 63; bit >= 0; bit--) {
			r = (r << 1) | (uint32_t)((v >> bit) & 1);
			q <<= 1;
			if (r >= 10) {
				r -= 10;
				q |= 1;
			}
		}
		d[k++] = (char)('0' + r);
		v = q;
	} while (v);
	while (k)
		res_putc(o, d[--k]);
}

/*
 * Append fmt to o: %s, %d, %u, %llu and %% only (everything this file
 * says). Freestanding: no snprintf in the kernel build.
 */
static void res_vfmt(struct res_out *o, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			res_putc(o, *fmt);
			continue;
		}
		fmt++;
		if (*fmt == 's') {
			res_puts(o, va_arg(ap, const char *));
		} else if (*fmt == 'u') {
			res_putu(o, va_arg(ap, unsigned));
		} else if (*fmt == 'd') {
			int v = va_arg(ap, int);
			if (v < 0) {
				res_putc(o, '-');
				res_putu(o, 0ull - (unsigned long long)(long long)v);
			} else {
				res_putu(o, (unsigned)v);
			}
		} else if (fmt[0] == 'l' && fmt[1] == 'l' && fmt[2] == 'u') {
			res_putu(o, va_arg(ap, unsigned long long));
			fmt += 2;
		} else if (*fmt == '%') {
			res_putc(o, '%');
		} else {
			return;   /* unknown conversion (or a trailing '%'): stop */
		}
	}
}

static void res_fmt(struct res_out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	res_vfmt(o, fmt, ap);
	va_end(ap);
}

/* A formatter over buf (n > 0), emptied. */
static struct res_out res_out_init(char *buf, size_t n)
{
	struct res_out o = { buf, n, 0 };
	if (n)
		buf[0] = 0;
	return o;
}

/* ------------------------------------------------------------------ ids and time stamps */

void res_uuid_str(const uint8_t u[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	int k = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[k++] = '-';
		out[k++] = hex[u[i] >> 4];
		out[k++] = hex[u[i] & 15];
	}
	out[k] = 0;
}

/* Two decimal digits of v at p. */
static void res_2dig(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10 % 10);
	p[1] = (char)('0' + v % 10);
}

void res_time_str(uint32_t t, char out[21])
{
	/* Days since 2000-01-01 -> civil date (H. Hinnant's days_from_civil inverse), 32-bit only. */
	uint32_t days = t / 86400u, s = t % 86400u;
	uint32_t z = days + 10957u + 719468u;          /* days since 0000-03-01 */
	uint32_t era = z / 146097u, doe = z - era * 146097u;
	uint32_t yoe = (doe - doe / 1460u + doe / 36524u - doe / 146096u) / 365u;
	uint32_t doy = doe - (365u * yoe + yoe / 4u - yoe / 100u);
	uint32_t mp = (5u * doy + 2u) / 153u;
	uint32_t d = doy - (153u * mp + 2u) / 5u + 1u;
	uint32_t m = mp < 10u ? mp + 3u : mp - 9u;
	uint32_t y = yoe + era * 400u + (m <= 2u);

	res_2dig(out, y / 100u);
	res_2dig(out + 2, y % 100u);
	out[4] = '-';
	res_2dig(out + 5, m);
	out[7] = '-';
	res_2dig(out + 8, d);
	out[10] = 'T';
	res_2dig(out + 11, s / 3600u);
	out[13] = ':';
	res_2dig(out + 14, s / 60u % 60u);
	out[16] = ':';
	res_2dig(out + 17, s % 60u);
	out[19] = 'Z';
	out[20] = 0;
}

/* ------------------------------------------------------------------ explanations */

void res_explain(int rc, const struct vhd *child, const char *child_path, const struct vhd *parent,
                 const char *parent_path, const char *ts_hint, char *out, size_t n)
{
	struct res_out o = res_out_init(out, n);
	char a[37], b[37], ta[21], tb[21];

	switch (rc) {
	case VHD_E_PARENT_UUID:
		res_uuid_str(child->header.parent_uuid, a);
		res_uuid_str(parent->footer.uuid, b);
		res_fmt(&o, "parent unique id mismatch: %s expects parent id %s, %s has %s (%s)",
		        child_path, a, parent_path, b, vhd_errname(rc));
		break;
	case VHD_E_PARENT_TIMESTAMP:
		res_time_str(child->header.parent_timestamp, ta);
		res_time_str(parent->footer.timestamp, tb);
		res_fmt(&o, "parent time stamp mismatch: %s expects %u (%s), %s has %u (%s) (%s)",
		        child_path, (unsigned)child->header.parent_timestamp, ta, parent_path,
		        (unsigned)parent->footer.timestamp, tb, vhd_errname(rc));
		if (ts_hint)
			res_fmt(&o, "; %s", ts_hint);
		break;
	case VHD_E_PARENT_SIZE:
		res_fmt(&o, "parent size mismatch: %s is %llu bytes, %s is %llu bytes (%s)", child_path,
		        (unsigned long long)child->footer.cur_size, parent_path,
		        (unsigned long long)parent->footer.cur_size, vhd_errname(rc));
		break;
	case VHD_E_CHAIN_LOOP:
		res_uuid_str(parent->footer.uuid, b);
		res_fmt(&o, "differencing chain loop: %s (id %s) already appears in the chain (%s)",
		        parent_path, b, vhd_errname(rc));
		break;
	case VHD_E_CHAIN_DEPTH:
		res_fmt(&o, "differencing chain deeper than %d images at %s (%s)", VHD_MAX_CHAIN,
		        parent_path, vhd_errname(rc));
		break;
	default:
		res_fmt(&o, "%s cannot be the parent of %s: %s (%s)", parent_path, child_path,
		        vhd_strerror(rc), vhd_errname(rc));
		break;
	}
}

/* ------------------------------------------------------------------ candidate paths */

/* A path being built: '/'-separated segments, absolute ("/a/b") or relative ("../a/b"). */
struct res_path {
	char *buf;
	size_t cap, len;
	int abs;
	int nseg;                 /* segments other than leading ".." */
	int bad;                  /* too long, or ".." above the root */
};

/* Append one segment s[0..k) ("." and empty ignored, ".." removes the one before it). */
static void res_seg(struct res_path *p, const char *s, size_t k)
{
	int up = k == 2 && s[0] == '.' && s[1] == '.';
	if (p->bad || k == 0 || (k == 1 && s[0] == '.'))
		return;
	if (up && p->nseg > 0) {
		while (p->len > 0 && p->buf[p->len - 1] != '/')
			p->len--;
		if (p->len > 0)
			p->len--;   /* the separator before it */
		p->buf[p->len] = 0;
		p->nseg--;
		return;
	}
	if (up && p->abs) {
		p->bad = 1;   /* above the root */
		return;
	}
	/* A name, or a leading ".." of a relative path (it stays). */
	size_t sep = p->len || p->abs ? 1 : 0;
	if (p->len + sep + k + 1 > p->cap) {
		p->bad = 1;
		return;
	}
	if (sep)
		p->buf[p->len++] = '/';
	for (size_t i = 0; i < k; i++)
		p->buf[p->len++] = s[i];
	p->buf[p->len] = 0;
	if (!up)
		p->nseg++;
}

/* Append every segment of s[0..n). */
static void res_segs(struct res_path *p, const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && res_is_sep(s[i]))
			i++;
		size_t st = i;
		while (i < n && !res_is_sep(s[i]))
			i++;
		res_seg(p, s + st, i - st);
	}
}

/* Length of the folder part of path (before its last separator; 0 if none). */
static size_t res_dir_len(const char *path)
{
	size_t d = 0;
	for (size_t i = 0; path[i]; i++)
		if (res_is_sep(path[i]))
			d = i;
	return d;
}

/* res_add_vol for a try on the child's own volume. */
static void res_add_vol(struct res_work *w, const char *child_path, const char *rel, size_t rlen, int abs,
                        const char *via, unsigned flags, const uint8_t *vol);

/* Add dir(child_path) + rel, or rel from the root when abs, to w (normalised, deduplicated). */
static void res_add(struct res_work *w, const char *child_path, const char *rel, size_t rlen, int abs,
                    const char *via, unsigned flags)
{
	res_add_vol(w, child_path, rel, rlen, abs, via, flags, NULL);
}

/* Nonzero when tries a and b name the same volume: both the child's, or the same GUID. */
static int res_same_vol(const struct res_try *a, const struct res_try *b)
{
	if (a->has_vol != b->has_vol)
		return 0;
	for (int i = 0; a->has_vol && i < 16; i++)
		if (a->vol[i] != b->vol[i])
			return 0;
	return 1;
}

/* res_add, the try on the volume whose GUID is vol (NULL: the child's volume). */
static void res_add_vol(struct res_work *w, const char *child_path, const char *rel, size_t rlen, int abs,
                        const char *via, unsigned flags, const uint8_t *vol)
{
	if (w->n >= RES_MAX_TRIES)
		return;
	struct res_try *t = &w->tries[w->n];
	struct res_path p = { t->path, sizeof(t->path), 0, 0, 0, 0 };
	t->path[0] = 0;
	if (abs) {
		p.abs = 1;
	} else {
		p.abs = res_is_sep(child_path[0]);
		res_segs(&p, child_path, res_dir_len(child_path));
	}
	res_segs(&p, rel, rlen);
	if (p.bad || p.nseg == 0)
		return;   /* unusable: too long, above the root, or no file name at all */
	t->has_vol = vol != NULL;
	for (int i = 0; i < 16; i++)
		t->vol[i] = vol ? vol[i] : 0;
	for (int i = 0; i < w->n; i++)
		if (res_same_vol(&w->tries[i], t) && res_same(w->tries[i].path, t->path, (flags & RES_FOLD_CASE) != 0))
			return;
	t->via = via;
	t->idx = w->n;
	w->n++;
}

static int res_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -1;
}

/* MacX: decode %XX in place and drop "file://" + host and a leading "localhost/"; 0 if unusable. */
static int res_macx(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		int h, l;
		if (r[0] == '%' && (h = res_hexval(r[1])) >= 0 && (l = res_hexval(r[2])) >= 0) {
			if (!h && !l)
				return 0;   /* %00 */
			*w++ = (char)(h * 16 + l);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = 0;
	size_t skip = 0;
	if (res_prefix(s, "file://"))
		for (skip = 7; s[skip] && s[skip] != '/'; skip++)
			;   /* host (vhd_parent_candidate strips it already; decoded text may still hold one) */
	else if (res_prefix(s, "localhost/"))
		skip = 9;
	if (skip) {
		size_t i = 0;
		do
			s[i] = s[skip + i];
		while (s[i++]);
	}
	return s[0] != 0;
}

/* Add the tries of one candidate (code: its locator, 0 for the parent name) to w. */
static void res_candidate(struct res_work *w, const char *child_path, char *cand, uint32_t code,
                          unsigned flags)
{
	const char *via = code == VHD_PLAT_W2RU ? "W2ru locator" : code == VHD_PLAT_W2KU ? "W2ku locator" :
	                  code == VHD_PLAT_MACX ? "MacX locator" : "parent name";
	const char *p = cand;
	if (code == VHD_PLAT_MACX && !res_macx(cand))
		return;
	if (((p[0] | 0x20) >= 'a' && (p[0] | 0x20) <= 'z') && p[1] == ':')
		p += 2;   /* "C:/vhd/base.vhd": a drive letter means nothing to us */
	size_t len = res_strlen(p);
	size_t base = 0;
	for (size_t i = 0; i < len; i++)
		if (res_is_sep(p[i]))
			base = i + 1;
	if (res_is_sep(p[0])) {
		res_add(w, child_path, p, len, 1, via, flags);
		res_add(w, child_path, p + base, len - base, 0, via, flags);
	} else {
		res_add(w, child_path, p, len, 0, via, flags);
		if (code == 0)
			res_add(w, child_path, p + base, len - base, 0, via, flags);
	}
}

int res_parent_paths(struct vhd *child, const char *child_path, unsigned flags, struct res_work *w)
{
	if (!child || !child_path || !w)
		return VHD_E_BAD_ARG;
	w->n = 0;
	w->bad_locators = 0;
	if (child->footer.type != VHD_TYPE_DIFF)
		return VHD_E_NOT_DIFF;
	/* 8 locator slots and the parent name: idx never passes 9. */
	for (int idx = 0; idx < 9; idx++) {
		uint32_t code = 0;
		int rc = vhd_parent_candidate(child, idx, w->cand, sizeof(w->cand), &code);
		if (rc == VHD_E_NO_LOCATOR)
			break;
		if (rc) {
			w->bad_locators++;
			continue;
		}
		if (code == VHD_PLAT_MACX && (flags & RES_SKIP_MACX))
			continue;
		res_candidate(w, child_path, w->cand, code, flags);
	}
	return VHD_OK;
}

/* VHDX: strip "\\?\" and then "Volume{...}" or a drive letter from a Win32 path; returns where the path starts. */
static const char *res_win32_strip(const char *p)
{
	if (res_is_sep(p[0]) && res_is_sep(p[1]) && p[2] == '?' && res_is_sep(p[3]))
		p += 4;
	if (res_prefix(p, "Volume{")) {
		while (*p && *p != '}')
			p++;
		return *p ? p + 1 : p;
	}
	if (((p[0] | 0x20) >= 'a' && (p[0] | 0x20) <= 'z') && p[1] == ':')
		p += 2;
	return p;
}

int res_vhdx_parent_paths(struct vhdx *child, const char *child_path, unsigned flags, struct res_work *w)
{
	static const char *const via[VHDX_LOC_PATHS] = { "relative_path", "volume_path", "absolute_win32_path" };
	if (!child || !child_path || !w)
		return VHD_E_BAD_ARG;
	w->n = 0;
	w->bad_locators = 0;
	if (!child->has_parent)
		return VHD_E_NOT_DIFF;
	for (int idx = 0; idx < VHDX_LOC_PATHS; idx++) {
		int key;
		int rc = vhdx_parent_candidate(child, idx, w->cand, sizeof(w->cand), &key);
		if (rc == VHDX_E_NO_LOCATOR)
			break;
		if (rc) {
			w->bad_locators++;
			continue;
		}
		const char *p = key == VHDX_LOC_RELATIVE ? w->cand : res_win32_strip(w->cand);
		size_t len = res_strlen(p), base = 0;
		struct vhdx_guid g;
		const char *rest;
		if (key == VHDX_LOC_VOLUME && (flags & RES_VOLUME_GUID) && vhdx_volume_guid(w->cand, &g, &rest) == 0)
			res_add_vol(w, child_path, rest, res_strlen(rest), 1, via[key], flags, g.b);   /* on that volume first */
		for (size_t i = 0; i < len; i++)
			if (res_is_sep(p[i]))
				base = i + 1;
		if (key == VHDX_LOC_RELATIVE && !res_is_sep(p[0])) {
			res_add(w, child_path, p, len, 0, via[key], flags);
			continue;
		}
		/* volume_path and absolute_win32_path: from the root of the child's volume, then the base name beside the child. */
		res_add(w, child_path, p, len, 1, via[key], flags);
		res_add(w, child_path, p + base, len - base, 0, via[key], flags);
	}
	return VHD_OK;
}

/* ------------------------------------------------------------------ the chain walk */

int res_find_parent(const struct res_ops *ops, void *ctx, struct res_work *w, struct vhd *child,
                    const char *child_path, const struct vhd *leaf, unsigned flags,
                    struct vhd **parent, const char **parent_path, char *why, size_t wn)
{
	unsigned pflags = (flags & RES_IGNORE_TIMESTAMP) ? VHD_PARENT_IGNORE_TIMESTAMP : 0;
	int first_rc = 0;
	struct res_out o;

	*parent = NULL;
	*parent_path = NULL;
	if (wn)
		why[0] = 0;
	int rc = res_parent_paths(child, child_path, flags, w);
	if (rc) {
		o = res_out_init(why, wn);
		res_fmt(&o, "%s: %s (%s)", child_path, vhd_strerror(rc), vhd_errname(rc));
		return rc;
	}
	for (int i = 0; i < w->n; i++) {
		struct vhd *p = NULL;
		const char *pp = NULL;
		int err = VHD_E_IO;
		/* Only the first real failure is explained. */
		int found = ops->open_path(ctx, &w->tries[i], &p, &pp, &err, first_rc ? NULL : why,
		                           first_rc ? 0 : wn);
		if (found == RES_NOT_FOUND || found == RES_DUPLICATE)
			continue;
		if (found == RES_FOUND) {
			rc = vhd_set_parent(child, p, leaf, pflags);
			if (rc == 0) {
				*parent = p;
				*parent_path = pp;
				if (wn)
					why[0] = 0;   /* an earlier refusal is no longer the story */
				return VHD_OK;
			}
			if (!first_rc)
				res_explain(rc, child, child_path, p, pp ? pp : w->tries[i].path,
				            ops->ignore_ts_hint, why, wn);
			if (ops->close)
				ops->close(ctx, p);
			err = rc;
		} else if (!first_rc && wn && !why[0]) {
			o = res_out_init(why, wn);   /* the callback gave no reason */
			res_fmt(&o, "%s: %s (%s)", w->tries[i].path, vhd_strerror(err), vhd_errname(err));
		}
		if (!first_rc)
			first_rc = err ? err : VHD_E_IO;
	}
	if (first_rc)
		return first_rc;
	o = res_out_init(why, wn);
	res_fmt(&o, "the parent of %s was not found (%s): ", child_path, vhd_errname(VHD_E_PARENT_NOT_FOUND));
	if (w->n == 0)
		res_fmt(&o, "no usable parent locator or name%s",
		        w->bad_locators ? " (malformed locators skipped)" : "");
	for (int i = 0; i < w->n; i++)
		res_fmt(&o, "%s%s", i ? ", " : "tried ", w->tries[i].path);
	return VHD_E_PARENT_NOT_FOUND;
}

int res_open_chain(const struct res_ops *ops, void *ctx, struct res_work *w, struct vhd *leaf,
                   const char *leaf_path, unsigned flags, char *why, size_t wn)
{
	struct vhd *cur = leaf;
	const char *cur_path = leaf_path;

	if (wn)
		why[0] = 0;
	while (cur->footer.type == VHD_TYPE_DIFF) {
		struct vhd *p;
		const char *pp;
		if (vhd_chain_depth(leaf) >= VHD_MAX_CHAIN) {
			struct res_out o = res_out_init(why, wn);
			res_fmt(&o, "differencing chain deeper than %d images at %s (%s)", VHD_MAX_CHAIN,
			        cur_path, vhd_errname(VHD_E_CHAIN_DEPTH));
			return VHD_E_CHAIN_DEPTH;
		}
		int rc = res_find_parent(ops, ctx, w, cur, cur_path, leaf, flags, &p, &pp, why, wn);
		if (rc)
			return rc;
		cur = p;
		cur_path = pp ? pp : "?";
	}
	return VHD_OK;
}

/* ------------------------------------------------------------------ the VHDX chain walk */

void res_vhdx_explain(int rc, struct vhdx *child, const char *child_path, const struct vhdx *parent,
                      const char *parent_path, char *out, size_t n)
{
	struct res_out o = res_out_init(out, n);
	char a[39], b[39];
	struct vhdx_parent_info pi;

	switch (rc) {
	case VHDX_E_PARENT_LINKAGE:
		vhdx_guid_str(&parent->hdr.data_write, b);
		if (vhdx_parent_info(child, &pi) == VHDX_OK) {
			vhdx_guid_str(&pi.linkage, a);
			res_fmt(&o, "parent linkage mismatch: %s expects a parent with DataWriteGuid %s, %s has %s "
			        "(written since the child was made, or another file) (%s)",
			        child_path, a, parent_path, b, vhdx_errname(rc));
		} else {
			res_fmt(&o, "parent linkage mismatch: %s has DataWriteGuid %s (%s)", parent_path, b,
			        vhdx_errname(rc));
		}
		break;
	case VHDX_E_PARENT_SIZE:
		res_fmt(&o, "parent size mismatch: %s is %llu bytes, %s is %llu bytes (%s)", child_path,
		        (unsigned long long)child->vsize, parent_path, (unsigned long long)parent->vsize,
		        vhdx_errname(rc));
		break;
	case VHDX_E_CHAIN_LOOP:
		vhdx_guid_str(&parent->hdr.data_write, b);
		res_fmt(&o, "differencing chain loop: %s (DataWriteGuid %s) already appears in the chain (%s)",
		        parent_path, b, vhdx_errname(rc));
		break;
	case VHDX_E_CHAIN_DEPTH:
		res_fmt(&o, "differencing chain deeper than %d images at %s (%s)", VHDX_MAX_CHAIN, parent_path,
		        vhdx_errname(rc));
		break;
	default:
		res_fmt(&o, "%s cannot be the parent of %s: %s (%s)", parent_path, child_path, vhdx_strerror(rc),
		        vhdx_errname(rc));
		break;
	}
}

int res_vhdx_find_parent(const struct res_vhdx_ops *ops, void *ctx, struct res_work *w, struct vhdx *child,
                         const char *child_path, const struct vhdx *leaf, unsigned flags,
                         struct vhdx **parent, const char **parent_path, char *why, size_t wn)
{
	int first_rc = 0;
	struct res_out o;

	*parent = NULL;
	*parent_path = NULL;
	if (wn)
		why[0] = 0;
	int rc = res_vhdx_parent_paths(child, child_path, flags, w);
	if (rc) {
		rc = rc == VHD_E_NOT_DIFF ? VHDX_E_NOT_DIFF : VHDX_E_BAD_ARG;
		o = res_out_init(why, wn);
		res_fmt(&o, "%s: %s (%s)", child_path, vhdx_strerror(rc), vhdx_errname(rc));
		return rc;
	}
	for (int i = 0; i < w->n; i++) {
		struct vhdx *p = NULL;
		const char *pp = NULL;
		int err = VHDX_E_IO;
		/* Only the first real failure is explained. */
		int found = ops->open_path(ctx, &w->tries[i], &p, &pp, &err, first_rc ? NULL : why,
		                           first_rc ? 0 : wn);
		if (found == RES_NOT_FOUND || found == RES_DUPLICATE)
			continue;
		if (found == RES_FOUND) {
			rc = vhdx_set_parent(child, p, leaf);
			if (rc == 0) {
				*parent = p;
				*parent_path = pp;
				if (wn)
					why[0] = 0;
				return VHDX_OK;
			}
			if (!first_rc)
				res_vhdx_explain(rc, child, child_path, p, pp ? pp : w->tries[i].path, why, wn);
			if (ops->close)
				ops->close(ctx, p);
			err = rc;
		} else if (!first_rc && wn && !why[0]) {
			o = res_out_init(why, wn);
			res_fmt(&o, "%s: %s (%s)", w->tries[i].path, vhdx_strerror(err), vhdx_errname(err));
		}
		if (!first_rc)
			first_rc = err ? err : VHDX_E_IO;
	}
	if (first_rc)
		return first_rc;
	o = res_out_init(why, wn);
	res_fmt(&o, "the parent of %s was not found (%s): ", child_path, vhdx_errname(VHDX_E_PARENT_NOT_FOUND));
	if (w->n == 0)
		res_fmt(&o, "no usable parent locator path%s", w->bad_locators ? " (malformed entries skipped)" : "");
	for (int i = 0; i < w->n; i++)
		res_fmt(&o, "%s%s", i ? ", " : "tried ", w->tries[i].path);
	return VHDX_E_PARENT_NOT_FOUND;
}

int res_vhdx_open_chain(const struct res_vhdx_ops *ops, void *ctx, struct res_work *w, struct vhdx *leaf,
                        const char *leaf_path, unsigned flags, char *why, size_t wn)
{
	struct vhdx *cur = leaf;
	const char *cur_path = leaf_path;

	if (wn)
		why[0] = 0;
	while (cur->has_parent) {
		struct vhdx *p;
		const char *pp;
		if (vhdx_chain_depth(leaf) >= VHDX_MAX_CHAIN) {
			struct res_out o = res_out_init(why, wn);
			res_fmt(&o, "differencing chain deeper than %d images at %s (%s)", VHDX_MAX_CHAIN, cur_path,
			        vhdx_errname(VHDX_E_CHAIN_DEPTH));
			return VHDX_E_CHAIN_DEPTH;
		}
		int rc = res_vhdx_find_parent(ops, ctx, w, cur, cur_path, leaf, flags, &p, &pp, why, wn);
		if (rc)
			return rc;
		cur = p;
		cur_path = pp ? pp : "?";
	}
	return VHDX_OK;
}
