/* vhdx_edit.c: atomic edits of a VHDX's structures through its log (pages, BAT entries) and the metadata region rebuilt with changes. */
#include "vhdx.h"
#include "vhdx_util.h"

/* Nonzero when the page at off may be edited as a raw page: aligned, past the header section, clear of the log and the BAT. */
static int vx_edit_page_ok(const struct vhdx *v, uint64_t off)
{
	return off % VHDX_PAGE == 0 && off >= VX_HEADER_SECTION &&
	       !vx_overlap(off, VHDX_PAGE, v->hdr.log_offset, v->hdr.log_length) &&
	       !vx_overlap(off, VHDX_PAGE, v->bat_off, v->bat_len);
}

int vhdx_apply(struct vhdx *v, const struct vhdx_edit *e, uint8_t *scratch)
{
	struct vx_upd u[VHDX_EDIT_MAX];
	uint32_t n = 0, nb = 0;
	int meta = 0;
	if (v->flags & VHDX_OPEN_RDONLY)
		return VHDX_E_READ_ONLY;
	if (e->npages > VHDX_EDIT_MAX)
		return VHDX_E_EDIT_TOO_BIG;
	for (uint32_t i = 0; i < e->npages; i++) {
		if (!vx_edit_page_ok(v, e->page_off[i]))
			return VHDX_E_BAD_ARG;
		for (uint32_t j = 0; j < i; j++)
			if (e->page_off[j] == e->page_off[i])
				return VHDX_E_BAD_ARG;
		if (vx_overlap(e->page_off[i], VHDX_PAGE, v->meta_off, v->meta_len))
			meta = 1;
		u[n].off = e->page_off[i];
		u[n].bitmap = 0;
		u[n].lo = u[n].hi = 0;
		u[n].raw = e->pages[i];
		n++;
	}
	/* BAT entries: their pages built in scratch from the file's pages (which match v->bat on a writable open). */
	for (uint32_t j = 0; j < e->nbat; j++) {
		uint64_t idx = e->bat_idx[j];
		if (idx >= v->bat_len / 8)
			return VHDX_E_BAD_ARG;
		uint64_t po = v->bat_off + idx * 8 / VHDX_PAGE * VHDX_PAGE;
		uint32_t k = 0;
		while (k < nb && u[e->npages + k].off != po)
			k++;
		if (k == nb) {
			if (n == VHDX_EDIT_MAX)
				return VHDX_E_EDIT_TOO_BIG;
			int r = vx_pread(v, po, VHDX_PAGE, scratch + (uint64_t)nb * VHDX_PAGE);
			if (r)
				return r;
			u[n].off = po;
			u[n].bitmap = 0;
			u[n].lo = u[n].hi = 0;
			u[n].raw = scratch + (uint64_t)nb * VHDX_PAGE;
			n++;
			nb++;
		}
		vx_put64(scratch + (uint64_t)k * VHDX_PAGE + idx * 8 % VHDX_PAGE, e->bat_val[j]);
	}
	/* An empty edit still starts the session: both headers rewritten (how a torn header copy is repaired). */
	int r = vx_session_begin(v, e->data);
	if (r || !n)
		return r;
	r = vx_log_commit(v, u, n);
	if (r)
		return r;
	if (v->bat)
		for (uint32_t j = 0; j < e->nbat; j++)
			if (e->bat_idx[j] < v->bat_entries)
				v->bat[e->bat_idx[j]] = e->bat_val[j];
	/* New blocks the caller wrote past the old end are the file's now: allocation continues after them. */
	uint64_t end = (v->file_bytes + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
	if (end > v->alloc_end)
		v->alloc_end = end;
	if (meta) {
		uint64_t old_entries = v->bat_entries;
		r = vx_metadata(v);
		if (r)
			return r;
		if (v->bat_entries != old_entries)
			v->bat = 0;
	}
	return VHDX_OK;
}

/* ------------------------------------------------------------------ metadata */

/* Table entry i of the metadata region in buf: GUID, offset, length. */
static void vx_meta_item(const uint8_t *buf, uint32_t i, struct vhdx_guid *g, uint32_t *off, uint32_t *len)
{
	const uint8_t *e = buf + 32 + 32ull * i;
	VX_MEMCPY(g->b, e, 16);
	*off = vx_le32(e + 16);
	*len = vx_le32(e + 20);
}

/* Index of the non-user table entry with GUID g, or -1. */
static int vx_meta_find(const uint8_t *buf, uint32_t count, const struct vhdx_guid *g)
{
	for (uint32_t i = 0; i < count; i++) {
		struct vhdx_guid x;
		uint32_t off, len;
		vx_meta_item(buf, i, &x, &off, &len);
		if (vx_guid_eq(&x, g) && !(vx_le32(buf + 32 + 32ull * i + 24) & VX_MF_USER))
			return (int)i;
	}
	return -1;
}

/* Length of the NUL-terminated s. */
static size_t vx_strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

/* Nonzero for keys whose values are paths (stored with backslashes). */
static int vx_key_is_path(const char *k)
{
	static const char *const paths[3] = { "relative_path", "volume_path", "absolute_win32_path" };
	for (int i = 0; i < 3; i++) {
		const char *p = paths[i];
		size_t j = 0;
		while (p[j] && k[j] == p[j])
			j++;
		if (!p[j] && !k[j])
			return 1;
	}
	return 0;
}

/* Rebuild the locator at loc (item bytes, len) with s's keys into out (VHDX_LOC_SCRATCH); *outlen its length. */
static int vx_loc_rebuild(const uint8_t *loc, uint32_t len, const struct vhdx_meta_set *s, uint8_t *out, uint32_t *outlen)
{
	uint8_t kbuf[512];
	uint32_t cnt = vx_le16(loc + 18), keep = 0, add = 0;
	if (len < 20 || 20ull + 12ull * cnt > len)
		return VHDX_E_LOCATOR_RANGE;
	/* Pass 0 counts, pass 1 writes: kept entries (not named by s), then s's entries with a value. */
	for (int pass = 0; pass < 2; pass++) {
		uint32_t ne = 0, used = 20 + 12 * (keep + add);
		if (pass) {
			if (used > VHDX_LOC_SCRATCH)
				return VHDX_E_META_FULL;
			VX_MEMCPY(out, loc, 18);
			vx_put16(out + 18, (uint16_t)(keep + add));
		}
		for (uint32_t i = 0; i < cnt; i++) {
			const uint8_t *e = loc + 20 + 12 * i;
			uint32_t ko = vx_le32(e), vo = vx_le32(e + 4), kl = vx_le16(e + 8), vl = vx_le16(e + 10);
			if (ko > len || kl > len - ko || vo > len || vl > len - vo)
				return VHDX_E_LOCATOR_RANGE;
			int named = 0;
			for (uint32_t j = 0; j < s->nkeys && !named; j++) {
				long l = vx_utf8_to_utf16le(s->keys[j], vx_strlen(s->keys[j]), kbuf, sizeof(kbuf), 0);
				if (l < 0)
					return VHDX_E_BAD_ARG;
				named = (uint32_t)l == kl && !VX_MEMCMP(kbuf, loc + ko, kl);
			}
			if (named)
				continue;
			if (!pass) {
				keep++;
				continue;
			}
			if (used + kl + vl > VHDX_LOC_SCRATCH)
				return VHDX_E_META_FULL;
			uint8_t *o = out + 20 + 12 * ne++;
			VX_MEMCPY(out + used, loc + ko, kl);
			vx_put32(o, used);
			used += kl;
			VX_MEMCPY(out + used, loc + vo, vl);
			vx_put32(o + 4, used);
			used += vl;
			vx_put16(o + 8, (uint16_t)kl);
			vx_put16(o + 10, (uint16_t)vl);
		}
		for (uint32_t j = 0; j < s->nkeys; j++) {
			if (!s->vals[j])
				continue;
			if (!pass) {
				add++;
				continue;
			}
			long kl = vx_utf8_to_utf16le(s->keys[j], vx_strlen(s->keys[j]), out + used, VHDX_LOC_SCRATCH - used, 0);
			if (kl <= 0 || kl > 0xFFFF)
				return kl < 0 && used < VHDX_LOC_SCRATCH - 512 ? VHDX_E_BAD_ARG : VHDX_E_META_FULL;
			uint8_t *o = out + 20 + 12 * ne++;
			vx_put32(o, used);
			vx_put16(o + 8, (uint16_t)kl);
			used += (uint32_t)kl;
			long vl = vx_utf8_to_utf16le(s->vals[j], vx_strlen(s->vals[j]), out + used, VHDX_LOC_SCRATCH - used,
			                             vx_key_is_path(s->keys[j]));
			if (vl <= 0 || vl > 0xFFFF)
				return VHDX_E_BAD_ARG;
			vx_put32(o + 4, used);
			vx_put16(o + 10, (uint16_t)vl);
			used += (uint32_t)vl;
		}
		if (pass)
			*outlen = used;
	}
	return VHDX_OK;
}

int vhdx_meta_build(struct vhdx *v, const struct vhdx_meta_set *s, uint8_t *buf, size_t buflen, uint8_t *loc_scratch,
                    uint64_t *offs, const uint8_t **pages, uint32_t *n)
{
	*n = 0;
	if (buflen < v->meta_len || v->meta_len % VHDX_PAGE)
		return VHDX_E_BAD_ARG;
	for (uint32_t p = 0; p < v->meta_len; p += VHDX_PAGE) {
		int r = vx_pread(v, v->meta_off + p, VHDX_PAGE, buf + p);
		if (r)
			return r;
	}
	uint32_t count = vx_le16(buf + 10);
	if (count > VX_MAX_ENTRIES)
		return VHDX_E_META_COUNT;
	struct vhdx_guid g;
	uint32_t off, len;
	if (s->vsize) {
		int i = vx_meta_find(buf, count, &vx_guid_vsize);
		if (i < 0)
			return VHDX_E_META_MISSING;
		if (s->vsize % VHDX_SECTOR || s->vsize > VHDX_MAX_SIZE)
			return VHDX_E_SIZE;
		vx_meta_item(buf, (uint32_t)i, &g, &off, &len);
		vx_put64(buf + off, s->vsize);
	}
	if (s->page83) {
		int i = vx_meta_find(buf, count, &vx_guid_page83);
		if (i < 0)
			return VHDX_E_META_MISSING;
		vx_meta_item(buf, (uint32_t)i, &g, &off, &len);
		VX_MEMCPY(buf + off, s->page83->b, 16);
	}
	if (s->nkeys) {
		int li = vx_meta_find(buf, count, &vx_guid_locator);
		if (li < 0)
			return VHDX_E_NOT_DIFF;
		uint32_t loff, llen, nl;
		vx_meta_item(buf, (uint32_t)li, &g, &loff, &llen);
		int r = vx_loc_rebuild(buf + loff, llen, s, loc_scratch, &nl);
		if (r)
			return r;
		/* Where it goes: its own place if nothing else is there, else after the last item (8-byte aligned). */
		uint32_t at = loff, top = VX_META_TABLE_SIZE;
		int clash = loff + (uint64_t)nl > v->meta_len;
		for (uint32_t i = 0; i < count; i++) {
			uint32_t o2, l2;
			if (i == (uint32_t)li)
				continue;
			vx_meta_item(buf, i, &g, &o2, &l2);
			if (vx_overlap(loff, nl, o2, l2))
				clash = 1;
			if (o2 + l2 > top)
				top = o2 + l2;
		}
		if (clash) {
			at = (top + 7u) & ~7u;
			if (at + (uint64_t)nl > v->meta_len)
				return VHDX_E_META_FULL;
			VX_MEMSET(buf + loff, 0, llen);
		} else if (nl < llen) {
			VX_MEMSET(buf + loff + nl, 0, llen - nl);
		}
		VX_MEMCPY(buf + at, loc_scratch, nl);
		vx_put32(buf + 32 + 32ull * (uint32_t)li + 16, at);
		vx_put32(buf + 32 + 32ull * (uint32_t)li + 20, nl);
	}
	/* The pages that differ from the file. */
	for (uint32_t p = 0; p < v->meta_len; p += VHDX_PAGE) {
		int r = vx_pread(v, v->meta_off + p, VHDX_PAGE, v->page);
		if (r)
			return r;
		if (!VX_MEMCMP(v->page, buf + p, VHDX_PAGE))
			continue;
		if (*n == VHDX_EDIT_MAX)
			return VHDX_E_EDIT_TOO_BIG;
		offs[*n] = v->meta_off + p;
		pages[*n] = buf + p;
		++*n;
	}
	return VHDX_OK;
}
