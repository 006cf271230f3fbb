/* vhd_check.c: consistency checks of an opened image beyond what opening requires (vhd-util's list and more). */
#include "vhd.h"
#include "vhd_util.h"

#define VHD_FUTURE_SLACK 86400u  /* tolerate clocks up to a day ahead (local-time writers) */

struct vhd_chk {
	vhd_report_fn report;
	void *ctx;
	int count;
};

/* Report one defect. */
static void vhd_defect(struct vhd_chk *c, int code, uint64_t a, uint64_t b)
{
	c->count++;
	if (c->report)
		c->report(c->ctx, code, a, b);
}

/* True if len bytes at p are all zero. */
static int vhd_zero_bytes(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

/* Footer-level checks: reserved bytes, features, time stamp, geometry, footer copies. */
static int vhd_check_footer(struct vhd *v, struct vhd_chk *c, uint32_t now)
{
	const struct vhd_footer *f = &v->footer;
	const struct vhd_disk_footer *raw = (const void *)v->footer_raw;
	if (v->state & VHD_ST_BACKUP_FOOTER)
		vhd_defect(c, VHD_C_END_FOOTER_BAD, (uint64_t)v->end_footer_err, 0);
	if (v->state & VHD_ST_SHORT_FOOTER)
		vhd_defect(c, VHD_C_FOOTER_SHORT, 0, 0);
	/* A 511-byte footer has no last reserved byte to check. */
	if (!vhd_zero_bytes(raw->reserved, (v->state & VHD_ST_SHORT_FOOTER) ? 426 : 427))
		vhd_defect(c, VHD_C_FOOTER_RESERVED, 0, 0);
	if (f->features & ~(uint32_t)(VHD_FEAT_RESERVED | VHD_FEAT_TEMPORARY))
		vhd_defect(c, VHD_C_FEATURES_UNKNOWN, f->features, 0);
	if (now && f->timestamp > now + VHD_FUTURE_SLACK)
		vhd_defect(c, VHD_C_TIMESTAMP_FUTURE, f->timestamp, now);
	/* 65535/16/255 is the "size is in current size" marker (qemu-img force_size, big disks). */
	uint64_t chs = (uint64_t)f->cylinders * f->heads * f->spt * VHD_SECTOR;
	int max_chs = f->cylinders == 65535 && f->heads == 16 && f->spt == 255;
	if (chs > f->cur_size && !max_chs)
		vhd_defect(c, VHD_C_SIZE_MISMATCH_CHS, f->cur_size, chs);
	if (f->type == VHD_TYPE_FIXED) {
		uint64_t data_end = f->cur_size;
		if (v->footer_pos > data_end)
			vhd_defect(c, VHD_C_TRAILING_BYTES, v->footer_pos - data_end, 0);
		return VHD_OK;
	}
	if (!(v->state & VHD_ST_BACKUP_FOOTER)) {
		int r = blk_read(v->dev, 0, 1, v->tmp) ? VHD_E_IO : VHD_OK;
		if (r)
			return r;
		if (VHD_MEMCMP(v->tmp, VHD_FOOTER_COOKIE, 8) ||
		    vhd_checksum(v->tmp, 512, VHD_FOOTER_CSUM_OFF) != vhd_be32(v->tmp + VHD_FOOTER_CSUM_OFF))
			vhd_defect(c, VHD_C_BACKUP_FOOTER_MISSING, 0, 0);
		else if (VHD_MEMCMP(v->tmp, v->footer_raw, (v->state & VHD_ST_SHORT_FOOTER) ? 511 : 512))
			vhd_defect(c, VHD_C_BACKUP_FOOTER_DIFFERS, 0, 0);
	}
	return VHD_OK;
}

/* Header-level checks: reserved bytes, table size, locators. */
static int vhd_check_header(struct vhd *v, struct vhd_chk *c)
{
	uint8_t raw[1024];
	if (blk_read(v->dev, v->footer.data_offset / VHD_SECTOR, 2, raw))
		return VHD_E_IO;
	const struct vhd_disk_header *d = (const void *)raw;
	int res = !vhd_zero_bytes((const uint8_t *)&d->reserved1, 4) ||
		  !vhd_zero_bytes(d->reserved2, sizeof(d->reserved2));
	for (int i = 0; i < 8; i++)
		if (d->loc[i].reserved)
			res = 1;
	if (res)
		vhd_defect(c, VHD_C_HEADER_RESERVED, 0, 0);
	const struct vhd_header *h = &v->header;
	/* Old qemu-img wrote one spare entry: tolerate that much. */
	if (h->max_entries > (uint64_t)v->blocks + 1)
		vhd_defect(c, VHD_C_MAX_ENTRIES_EXCESS, h->max_entries, v->blocks);
	for (int i = 0; i < 8; i++) {
		const struct vhd_ploc *l = &h->loc[i];
		if (!l->code)
			continue;
		if (v->footer.type != VHD_TYPE_DIFF) {
			vhd_defect(c, VHD_C_LOCATORS_ON_DYNAMIC, (uint64_t)i, 0);
			continue;
		}
		for (int j = 0; j < i; j++)
			if (h->loc[j].code == l->code) {
				vhd_defect(c, VHD_C_LOCATOR_DUP, (uint64_t)i, (uint64_t)j);
				break;
			}
		if (l->code != VHD_PLAT_W2RU && l->code != VHD_PLAT_W2KU && l->code != VHD_PLAT_MACX)
			continue;   /* Mac alias blobs and deprecated codes: opaque */
		char path[VHD_PATH_MAX];
		int r = vhd_locator_path(v, i, path, sizeof(path));
		if (r == VHD_E_IO)
			return r;
		if (r)
			vhd_defect(c, VHD_C_LOCATOR_BAD, (uint64_t)i, 0);
	}
	return VHD_OK;
}

/* Block-level checks: entries past the disk, overlaps, leaked space, trailing bytes. */
static int vhd_check_blocks(struct vhd *v, struct vhd_chk *c, uint32_t *scratch)
{
	const struct vhd_header *h = &v->header;
	uint64_t blen = (uint64_t)v->bitmap_sectors + v->spb;
	uint32_t n = 0;
	for (uint32_t i = 0; i < h->max_entries; i++) {
		if (v->bat[i] == VHD_BAT_FREE)
			continue;
		if (i >= v->blocks) {
			vhd_defect(c, VHD_C_BAT_ENTRY_PAST_USE, i, v->bat[i]);
			continue;
		}
		scratch[n++] = v->bat[i];
	}
	vhd_sort_u32(scratch, n);
	/*
	 * Fixed extents (footer copy, header, BAT, locator data) and the sorted
	 * blocks, walked in file order: every hole between them is either an
	 * alignment gap (shorter than a block: a writer's padding, a note) or
	 * leaked space (room for a block: an interrupted allocation, a dropped
	 * block).
	 */
	uint64_t fs[11], fe[11];
	int nf = 0;
	fs[nf] = 0; fe[nf++] = 1;
	fs[nf] = v->footer.data_offset / VHD_SECTOR; fe[nf++] = vhd_sectors_of(v->footer.data_offset + 1024);
	fs[nf] = h->table_offset / VHD_SECTOR;
	fe[nf++] = vhd_sectors_of(h->table_offset + (uint64_t)h->max_entries * 4);
	for (int i = 0; i < 8; i++) {
		const struct vhd_ploc *l = &h->loc[i];
		if (!l->code || v->footer.type != VHD_TYPE_DIFF)
			continue;
		uint64_t lo = l->data_offset / VHD_SECTOR;
		uint64_t ll = vhd_sectors_of(vhd_ploc_space_bytes(l->data_space, l->data_len));
		int bad = vhd_overlap(lo, ll, v->footer.data_offset / VHD_SECTOR, 2) ||
			  vhd_overlap(lo, ll, h->table_offset / VHD_SECTOR,
				      vhd_sectors_of((uint64_t)h->max_entries * 4)) || lo == 0;
		for (uint32_t k = 0; k < n && !bad; k++)
			bad = vhd_overlap(lo, ll, scratch[k], blen);
		if (bad)
			vhd_defect(c, VHD_C_LOCATOR_OVERLAP, (uint64_t)i, 0);
		if ((lo + ll) * VHD_SECTOR > v->footer_pos)
			continue;   /* outside the file: the locator check names it */
		fs[nf] = lo;
		fe[nf++] = lo + ll;
	}
	for (int i = 1; i < nf; i++)   /* insertion sort: at most 11 */
		for (int j = i; j > 0 && fs[j - 1] > fs[j]; j--) {
			uint64_t t = fs[j]; fs[j] = fs[j - 1]; fs[j - 1] = t;
			t = fe[j]; fe[j] = fe[j - 1]; fe[j - 1] = t;
		}
	uint64_t prev_end = 0;
	int fi = 0;
	for (uint32_t k = 0; k < n || fi < nf;) {
		uint64_t st, en;
		if (fi < nf && (k >= n || fs[fi] <= scratch[k])) {
			st = fs[fi];
			en = fe[fi++];
		} else {
			if (k && (uint64_t)scratch[k - 1] + blen > scratch[k])
				vhd_defect(c, VHD_C_BLOCK_OVERLAP, scratch[k - 1], scratch[k]);
			st = scratch[k++];
			en = st + blen;
		}
		if (st > prev_end)
			vhd_defect(c, st - prev_end < blen ? VHD_C_ALIGN_GAP : VHD_C_LEAKED_SPACE, st - prev_end, prev_end);
		if (en > prev_end)
			prev_end = en;
	}
	uint64_t end_bytes = prev_end * VHD_SECTOR;
	if (v->footer_pos > end_bytes) {
		uint64_t extra = v->footer_pos - end_bytes;
		if (extra < blen * VHD_SECTOR)
			vhd_defect(c, VHD_C_ALIGN_GAP, vhd_sectors_of(extra), prev_end);
		else
			vhd_defect(c, VHD_C_TRAILING_BYTES, extra, prev_end);
	}
	return VHD_OK;
}

/* Deep scan: sectors of allocated blocks whose bit is clear must hold zeros (dynamic disks). */
static int vhd_check_deep(struct vhd *v, struct vhd_chk *c)
{
	uint8_t bm[VHD_SECTOR];
	for (uint32_t b = 0; b < v->blocks; b++) {
		uint32_t entry = v->bat[b];
		if (entry == VHD_BAT_FREE)
			continue;
		uint64_t bad = 0, first = 0;
		for (uint32_t s = 0; s < v->spb; s++) {
			if (s % 4096 == 0 && blk_read(v->dev, (uint64_t)entry + s / 4096, 1, bm))
				return VHD_E_IO;
			uint32_t bit = s % 4096;
			if (bm[bit >> 3] & (0x80 >> (bit & 7)))
				continue;
			if (blk_read(v->dev, (uint64_t)entry + v->bitmap_sectors + s, 1, v->tmp))
				return VHD_E_IO;
			if (!vhd_zero_bytes(v->tmp, VHD_SECTOR) && !bad++)
				first = ((uint64_t)b << v->spb_shift) + s;
		}
		if (bad)
			vhd_defect(c, VHD_C_DATA_BITMAP_CLEAR, first, bad);
	}
	return VHD_OK;
}

int vhd_check(struct vhd *v, uint32_t *scratch, unsigned flags, uint32_t now, vhd_report_fn report, void *ctx)
{
	struct vhd_chk c = { report, ctx, 0 };
	int r = vhd_check_footer(v, &c, now);
	if (r)
		return -r;
	if (v->footer.type == VHD_TYPE_FIXED)
		return c.count;
	if (!v->bat || !scratch)
		return -VHD_E_BAT_NOT_LOADED;
	r = vhd_check_header(v, &c);
	if (!r)
		r = vhd_check_blocks(v, &c, scratch);
	if (!r && (flags & VHD_CHECK_DEEP) && v->footer.type == VHD_TYPE_DYNAMIC)
		r = vhd_check_deep(v, &c);
	v->bm_valid = 0;
	return r ? -r : c.count;
}
