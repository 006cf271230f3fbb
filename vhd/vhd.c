/* vhd.c: opening, validating, reading and writing fixed, dynamic and differencing VHD images. */
#include "vhd.h"
#include "vhd_util.h"
#include "../block/utf8.h"   /* utf8_put: parent names and locators */

/* ------------------------------------------------------------------ device I/O */

/* Read count sectors at sector lba of the image file; VHD_E_IO on failure. */
static int vhd_dev_read(struct vhd *v, uint64_t lba, uint32_t count, void *buf)
{
	return blk_read(v->dev, lba, count, buf) ? VHD_E_IO : VHD_OK;
}

/* Write count sectors at sector lba of the image file; VHD_E_NOSPACE/VHD_E_IO on failure. */
static int vhd_dev_write(struct vhd *v, uint64_t lba, uint32_t count, const void *buf)
{
	int r = blk_write(v->dev, lba, count, buf);
	if (r == BLK_E_NOSPACE || r == BLK_E_RANGE)
		return VHD_E_NOSPACE;
	if (r == BLK_E_RO)
		return VHD_E_READ_ONLY;
	return r ? VHD_E_IO : VHD_OK;
}

/* Read-only zeros for filling new blocks on devices without write_zeroes (constant, not state). */
#define VHD_ZERO_SECTORS 32u
static const uint8_t vhd_zeros[VHD_ZERO_SECTORS * VHD_SECTOR];

/* Write count zero sectors at lba, using the device's fast path when it has one. */
static int vhd_dev_zero(struct vhd *v, uint64_t lba, uint64_t count)
{
	if (!count)
		return VHD_OK;
	if (blk_has_write_zeroes(v->dev))
		return blk_write_zeroes(v->dev, lba, count) ? VHD_E_IO : VHD_OK;
	while (count) {
		uint32_t n = count < VHD_ZERO_SECTORS ? (uint32_t)count : VHD_ZERO_SECTORS;
		int r = vhd_dev_write(v, lba, n, vhd_zeros);
		if (r)
			return r;
		lba += n;
		count -= n;
	}
	return VHD_OK;
}

/* Flush the backing device. */
int vhd_flush(struct vhd *v)
{
	return blk_flush(v->dev) ? VHD_E_IO : VHD_OK;
}

/* ------------------------------------------------------------------ footer and header */

uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t csum_off)
{
	uint32_t sum = 0;
	for (size_t i = 0; i < len; i++)
		if (i < csum_off || i >= csum_off + 4)
			sum += buf[i];
	return ~sum;
}

/* Parse a raw footer into f (no validation). */
static void vhd_parse_footer(const uint8_t *raw, struct vhd_footer *f)
{
	const struct vhd_disk_footer *d = (const void *)raw;
	f->features = vhd_be32(&d->features);
	f->version = vhd_be32(&d->version);
	f->data_offset = vhd_be64(&d->data_offset);
	f->timestamp = vhd_be32(&d->timestamp);
	VHD_MEMCPY(f->creator_app, d->creator_app, 4);
	f->creator_app[4] = 0;
	f->creator_ver = vhd_be32(&d->creator_ver);
	f->creator_os = vhd_be32(&d->creator_os);
	f->orig_size = vhd_be64(&d->orig_size);
	f->cur_size = vhd_be64(&d->cur_size);
	f->cylinders = vhd_be16(&d->cylinders);
	f->heads = d->heads;
	f->spt = d->spt;
	f->type = vhd_be32(&d->type);
	f->checksum = vhd_be32(&d->checksum);
	VHD_MEMCPY(f->uuid, d->uuid, 16);
	f->saved_state = d->saved_state;
}

/* Validate the self-contained parts of a raw footer: cookie, checksum, version, features, type. */
static int vhd_footer_valid(const uint8_t *raw)
{
	const struct vhd_disk_footer *d = (const void *)raw;
	if (VHD_MEMCMP(d->cookie, VHD_FOOTER_COOKIE, 8))
		return VHD_E_FOOTER_COOKIE;
	if (vhd_checksum(raw, 512, VHD_FOOTER_CSUM_OFF) != vhd_be32(&d->checksum))
		return VHD_E_FOOTER_CHECKSUM;
	if ((vhd_be32(&d->version) >> 16) != 1)
		return VHD_E_FOOTER_VERSION;
	if (!(vhd_be32(&d->features) & VHD_FEAT_RESERVED))
		return VHD_E_FOOTER_FEATURES;
	uint32_t t = vhd_be32(&d->type);
	if (t != VHD_TYPE_FIXED && t != VHD_TYPE_DYNAMIC && t != VHD_TYPE_DIFF)
		return VHD_E_FOOTER_TYPE;
	return VHD_OK;
}

/* Parse a raw dynamic header into h (no validation). */
static void vhd_parse_header(const uint8_t *raw, struct vhd_header *h)
{
	const struct vhd_disk_header *d = (const void *)raw;
	h->data_offset = vhd_be64(&d->data_offset);
	h->table_offset = vhd_be64(&d->table_offset);
	h->version = vhd_be32(&d->version);
	h->max_entries = vhd_be32(&d->max_entries);
	h->block_size = vhd_be32(&d->block_size);
	h->checksum = vhd_be32(&d->checksum);
	VHD_MEMCPY(h->parent_uuid, d->parent_uuid, 16);
	h->parent_timestamp = vhd_be32(&d->parent_timestamp);
	for (int i = 0; i < 256; i++)
		h->parent_name[i] = vhd_be16(&d->parent_name[i]);
	for (int i = 0; i < 8; i++) {
		h->loc[i].code = vhd_be32(&d->loc[i].code);
		h->loc[i].data_space = vhd_be32(&d->loc[i].data_space);
		h->loc[i].data_len = vhd_be32(&d->loc[i].data_len);
		h->loc[i].data_offset = vhd_be64(&d->loc[i].data_offset);
	}
}

/* Read the 1024-byte header at its (sector-aligned) offset into raw; validate it. */
static int vhd_read_header(struct vhd *v, uint8_t *raw)
{
	uint64_t off = v->footer.data_offset;
	if (off % VHD_SECTOR || off < VHD_SECTOR || off > v->footer_pos || v->footer_pos - off < 1024)
		return VHD_E_HEADER_OFFSET;
	int r = vhd_dev_read(v, off / VHD_SECTOR, 2, raw);
	if (r)
		return r;
	const struct vhd_disk_header *d = (const void *)raw;
	if (VHD_MEMCMP(d->cookie, VHD_HEADER_COOKIE, 8))
		return VHD_E_HEADER_COOKIE;
	if (vhd_checksum(raw, 1024, VHD_HEADER_CSUM_OFF) != vhd_be32(&d->checksum))
		return VHD_E_HEADER_CHECKSUM;
	if ((vhd_be32(&d->version) >> 16) != 1)
		return VHD_E_HEADER_VERSION;
	uint64_t next = vhd_be64(&d->data_offset);
	if (next != VHD_NO_OFFSET && next != 0xFFFFFFFFull)
		return VHD_E_HEADER_DATA_OFFSET;
	return VHD_OK;
}

/* Validate the dynamic header's geometry (block size, table) and derive the block layout. */
static int vhd_setup_dynamic(struct vhd *v)
{
	const struct vhd_header *h = &v->header;
	uint32_t bs = h->block_size;
	if (bs < VHD_SECTOR || bs > VHD_MAX_BLOCK_SIZE || (bs & (bs - 1)))
		return VHD_E_BLOCK_SIZE;
	v->block_size = bs;
	v->spb = bs / VHD_SECTOR;
	v->spb_shift = 0;
	while ((1u << v->spb_shift) < v->spb)
		v->spb_shift++;
	/* One bit per sector, MSB first, padded to whole sectors. */
	v->bitmap_sectors = (uint32_t)vhd_sectors_of((v->spb + 7) / 8);
	uint64_t blocks = (v->footer.cur_size + bs - 1) >> (v->spb_shift + 9);
	if (h->max_entries < blocks)
		return VHD_E_TABLE_SMALL;
	v->blocks = (uint32_t)blocks;
	uint64_t toff = h->table_offset;
	uint64_t tlen = vhd_sectors_of((uint64_t)h->max_entries * 4) * VHD_SECTOR;
	if (toff % VHD_SECTOR || toff < VHD_SECTOR || toff > v->footer_pos || v->footer_pos - toff < tlen)
		return VHD_E_TABLE_OFFSET;
	if (vhd_overlap(toff, tlen, v->footer.data_offset, 1024))
		return VHD_E_TABLE_OVERLAP;
	return VHD_OK;
}

/* Locate and validate the footer: the end copy first, then (dynamic kinds) the copy at 0. */
static int vhd_find_footer(struct vhd *v)
{
	struct blk_dev *dev = v->dev;
	uint64_t size = dev->size_bytes;
	if (size < 511)
		return VHD_E_TOO_SMALL;
	if (size % VHD_SECTOR == 511) {
		v->state |= VHD_ST_SHORT_FOOTER;
		v->footer_pos = size - 511;
	} else {
		v->footer_pos = (size - VHD_SECTOR) & ~(uint64_t)(VHD_SECTOR - 1);
		if (size % VHD_SECTOR)       /* odd length: the footer ends in the last partial sector */
			v->footer_pos = size - VHD_SECTOR;
	}
	int r;
	if (v->footer_pos % VHD_SECTOR == 0) {
		r = vhd_dev_read(v, v->footer_pos / VHD_SECTOR, 1, v->footer_raw);
	} else {
		/* Unaligned end footer: gather it from two sectors. */
		uint64_t s = v->footer_pos / VHD_SECTOR;
		uint32_t k = (uint32_t)(v->footer_pos % VHD_SECTOR);
		r = vhd_dev_read(v, s, 1, v->tmp);
		if (!r) {
			VHD_MEMCPY(v->footer_raw, v->tmp + k, VHD_SECTOR - k);
			r = vhd_dev_read(v, s + 1, 1, v->tmp);
			if (!r)
				VHD_MEMCPY(v->footer_raw + VHD_SECTOR - k, v->tmp, k);
		}
	}
	if (r)
		return r;
	if (v->state & VHD_ST_SHORT_FOOTER)
		v->footer_raw[511] = 0;
	int err = vhd_footer_valid(v->footer_raw);
	if (!err)
		return VHD_OK;
	if (v->flags & VHD_OPEN_NO_BACKUP || v->footer_pos < VHD_SECTOR)
		return err;
	/* The end footer is damaged: dynamic and differencing images keep a copy at 0. */
	r = vhd_dev_read(v, 0, 1, v->tmp);
	if (r)
		return r;
	if (vhd_footer_valid(v->tmp))
		return err;
	uint32_t t = vhd_be32(v->tmp + 60);
	if (t != VHD_TYPE_DYNAMIC && t != VHD_TYPE_DIFF)
		return err;
	VHD_MEMCPY(v->footer_raw, v->tmp, VHD_SECTOR);
	v->state |= VHD_ST_BACKUP_FOOTER | VHD_ST_END_FOOTER_BAD;
	v->state &= ~VHD_ST_SHORT_FOOTER;
	v->end_footer_err = err;
	/* Never write an image whose end footer is damaged: repair it offline first. */
	v->flags |= VHD_OPEN_RDONLY;
	return VHD_OK;
}

int vhd_open(struct vhd *v, struct blk_dev *dev, unsigned flags)
{
	if (!v || !dev || !dev->read)
		return VHD_E_BAD_ARG;
	VHD_MEMSET(v, 0, sizeof(*v));
	v->dev = dev;
	v->flags = flags;
	if (dev->read_only || !dev->write)
		v->flags |= VHD_OPEN_RDONLY;
	int r = vhd_find_footer(v);
	if (r)
		return r;
	struct vhd_footer *f = &v->footer;
	vhd_parse_footer(v->footer_raw, f);
	if (f->saved_state && !(v->flags & VHD_OPEN_RDONLY))
		return VHD_E_SAVED_STATE;
	if (f->cur_size == 0)
		return VHD_E_SIZE_ZERO;
	if (f->cur_size % VHD_SECTOR)
		return VHD_E_SIZE_UNALIGNED;
	v->sectors = f->cur_size / VHD_SECTOR;
	if (f->type == VHD_TYPE_FIXED) {
		if (f->data_offset != VHD_NO_OFFSET && f->data_offset != 0xFFFFFFFFull)
			return VHD_E_FIXED_DATA_OFFSET;
		if (v->footer_pos < f->cur_size)
			return VHD_E_FIXED_SIZE;
		return VHD_OK;
	}
	if (f->cur_size > VHD_MAX_SIZE)
		return VHD_E_SIZE_TOO_BIG;
	uint8_t raw[1024];
	r = vhd_read_header(v, raw);
	if (r)
		return r;
	vhd_parse_header(raw, &v->header);
	return vhd_setup_dynamic(v);
}

size_t vhd_bat_bytes(const struct vhd *v)
{
	if (v->footer.type == VHD_TYPE_FIXED)
		return 0;
	return (size_t)v->header.max_entries * 4;
}

/* Sector just past the metadata (header, BAT, locator data): blocks start at or after it. */
static uint64_t vhd_meta_end(const struct vhd *v)
{
	const struct vhd_header *h = &v->header;
	uint64_t end = 1;
	uint64_t e = vhd_sectors_of(v->footer.data_offset + 1024);
	if (e > end)
		end = e;
	e = vhd_sectors_of(h->table_offset + (uint64_t)h->max_entries * 4);
	if (e > end)
		end = e;
	if (v->footer.type == VHD_TYPE_DIFF) {
		for (int i = 0; i < 8; i++) {
			const struct vhd_ploc *l = &h->loc[i];
			if (!l->code || l->data_offset >= v->footer_pos)
				continue;
			e = vhd_sectors_of(l->data_offset + vhd_ploc_space_bytes(l->data_space, l->data_len));
			if (e > end)
				end = e;
		}
	}
	return end;
}

/* Check one BAT entry's block lies inside the file and clear of metadata. */
static int vhd_block_valid(const struct vhd *v, uint32_t entry)
{
	const struct vhd_header *h = &v->header;
	uint64_t start = entry;
	uint64_t len = (uint64_t)v->bitmap_sectors + v->spb;
	if (start == 0 || (start + len) * VHD_SECTOR > v->footer_pos)
		return VHD_E_BAT_RANGE;
	if (vhd_overlap(start, len, v->footer.data_offset / VHD_SECTOR, 2) ||
	    vhd_overlap(start, len, h->table_offset / VHD_SECTOR,
			vhd_sectors_of((uint64_t)h->max_entries * 4)))
		return VHD_E_BAT_OVERLAP_META;
	return VHD_OK;
}

int vhd_load_bat(struct vhd *v, uint32_t *bat)
{
	if (v->footer.type == VHD_TYPE_FIXED)
		return VHD_OK;
	if (!bat)
		return VHD_E_BAD_ARG;
	const struct vhd_header *h = &v->header;
	uint64_t first = h->table_offset / VHD_SECTOR;
	uint32_t full = (uint32_t)((uint64_t)h->max_entries * 4 / VHD_SECTOR);
	uint32_t rest = (uint32_t)((uint64_t)h->max_entries * 4 % VHD_SECTOR);
	/* Whole sectors straight into the array, in bounded chunks. */
	for (uint32_t done = 0; done < full;) {
		uint32_t n = full - done > 256 ? 256 : full - done;
		int r = vhd_dev_read(v, first + done, n, (uint8_t *)bat + (size_t)done * VHD_SECTOR);
		if (r)
			return r;
		done += n;
	}
	if (rest) {
		int r = vhd_dev_read(v, first + full, 1, v->tmp);
		if (r)
			return r;
		VHD_MEMCPY((uint8_t *)bat + (size_t)full * VHD_SECTOR, v->tmp, rest);
	}
	uint64_t end = vhd_meta_end(v);
	for (uint32_t i = 0; i < h->max_entries; i++) {
		uint32_t e = vhd_be32(&bat[i]);
		bat[i] = e;
		if (e == VHD_BAT_FREE || i >= v->blocks)
			continue;   /* entries past the disk size are never used: vhd_check reports them */
		int r = vhd_block_valid(v, e);
		if (r)
			return r;
		uint64_t be = (uint64_t)e + v->bitmap_sectors + v->spb;
		if (be > end)
			end = be;
	}
	v->bat = bat;
	v->alloc_end = end;
	v->bm_valid = 0;
	return VHD_OK;
}

void vhd_sort_u32(uint32_t *a, uint32_t n)
{
	if (n < 2)
		return;
	for (uint32_t start = n / 2; start-- > 0;) {
		for (uint32_t root = start;;) {
			uint32_t child = 2 * root + 1;
			if (child >= n)
				break;
			if (child + 1 < n && a[child + 1] > a[child])
				child++;
			if (a[root] >= a[child])
				break;
			uint32_t t = a[root]; a[root] = a[child]; a[child] = t;
			root = child;
		}
	}
	for (uint32_t end = n - 1; end > 0; end--) {
		uint32_t t = a[0]; a[0] = a[end]; a[end] = t;
		for (uint32_t root = 0;;) {
			uint32_t child = 2 * root + 1;
			if (child >= end)
				break;
			if (child + 1 < end && a[child + 1] > a[child])
				child++;
			if (a[root] >= a[child])
				break;
			t = a[root]; a[root] = a[child]; a[child] = t;
			root = child;
		}
	}
}

int vhd_check_overlaps(const struct vhd *v, uint32_t *scratch)
{
	if (v->footer.type == VHD_TYPE_FIXED)
		return VHD_OK;
	if (!v->bat || !scratch)
		return VHD_E_BAT_NOT_LOADED;
	uint32_t n = 0;
	for (uint32_t i = 0; i < v->blocks; i++)
		if (v->bat[i] != VHD_BAT_FREE)
			scratch[n++] = v->bat[i];
	vhd_sort_u32(scratch, n);
	uint64_t len = (uint64_t)v->bitmap_sectors + v->spb;
	for (uint32_t i = 1; i < n; i++)
		if ((uint64_t)scratch[i - 1] + len > scratch[i])
			return VHD_E_BAT_OVERLAP;
	return VHD_OK;
}

/* ------------------------------------------------------------------ bitmaps */

/* Make the bitmap sector idx of block blk (at file sector entry) the cached one. */
static int vhd_bitmap_load(struct vhd *v, uint32_t blk, uint32_t entry, uint32_t idx)
{
	if (v->bm_valid && v->bm_block == blk && v->bm_index == idx)
		return VHD_OK;
	v->bm_valid = 0;
	int r = vhd_dev_read(v, (uint64_t)entry + idx, 1, v->bm);
	if (r)
		return r;
	v->bm_block = blk;
	v->bm_index = idx;
	v->bm_valid = 1;
	return VHD_OK;
}

/*
 * Length of the run of sectors starting at sector s of block blk (at most
 * max) whose bitmap bits all equal the first one; *set gets that value.
 */
static int vhd_bitmap_run(struct vhd *v, uint32_t blk, uint32_t entry, uint32_t s, uint32_t max,
			  int *set, uint32_t *run)
{
	uint32_t idx = s / 4096;
	int r = vhd_bitmap_load(v, blk, entry, idx);
	if (r)
		return r;
	uint32_t bit = s % 4096;
	uint32_t lim = 4096 - bit;
	if (lim > max)
		lim = max;
	const uint8_t *bm = v->bm;
	int first = (bm[bit >> 3] >> (7 - (bit & 7))) & 1;
	uint32_t n = 0;
	while (n < lim) {
		uint32_t b = bit + n;
		if ((b & 7) == 0 && lim - n >= 8) {
			uint8_t want = first ? 0xFF : 0x00;
			if (bm[b >> 3] == want) {
				n += 8;
				continue;
			}
		}
		if (((bm[b >> 3] >> (7 - (b & 7))) & 1) != first)
			break;
		n++;
	}
	*set = first;
	*run = n;
	return VHD_OK;
}

/* Set the bits of sectors [s, s+n) of block blk; write changed bitmap sectors (after a flush). */
static int vhd_bitmap_set(struct vhd *v, uint32_t blk, uint32_t entry, uint32_t s, uint32_t n)
{
	int flushed = 0;
	while (n) {
		uint32_t idx = s / 4096;
		int r = vhd_bitmap_load(v, blk, entry, idx);
		if (r)
			return r;
		uint32_t bit = s % 4096;
		uint32_t k = 4096 - bit < n ? 4096 - bit : n;
		int changed = 0;
		for (uint32_t i = 0; i < k; i++) {
			uint32_t b = bit + i;
			uint8_t m = (uint8_t)(0x80 >> (b & 7));
			if (!(v->bm[b >> 3] & m)) {
				v->bm[b >> 3] |= m;
				changed = 1;
			}
		}
		if (changed) {
			/* The data must be durable before the bitmap claims it. */
			if (!flushed) {
				r = vhd_flush(v);
				if (r)
					goto fail;
				flushed = 1;
			}
			r = vhd_dev_write(v, (uint64_t)entry + idx, 1, v->bm);
			if (r)
				goto fail;
		}
		s += k;
		n -= k;
		continue;
fail:
		v->bm_valid = 0;
		return r;
	}
	return flushed ? vhd_flush(v) : VHD_OK;
}

/* ------------------------------------------------------------------ reads */

/* Read sectors whose bitmap bit is clear: from the parent, or zeros. */
static int vhd_read_absent(struct vhd *v, uint64_t lba, uint32_t n, uint8_t *buf)
{
	if (v->footer.type != VHD_TYPE_DIFF) {
		VHD_MEMSET(buf, 0, (size_t)n * VHD_SECTOR);
		return VHD_OK;
	}
	struct vhd *p = v->parent;
	if (!p)
		return VHD_E_NO_PARENT;
	/* A parent smaller than its child reads as zeros past its end. */
	uint32_t in = 0;
	if (lba < p->sectors)
		in = p->sectors - lba < n ? (uint32_t)(p->sectors - lba) : n;
	if (in) {
		int r = vhd_read(p, lba, in, buf);
		if (r)
			return r;
	}
	if (in < n)
		VHD_MEMSET(buf + (size_t)in * VHD_SECTOR, 0, (size_t)(n - in) * VHD_SECTOR);
	return VHD_OK;
}

/* Read n sectors of one block starting at sector off of block blk. */
static int vhd_read_block(struct vhd *v, uint32_t blk, uint32_t off, uint32_t n, uint8_t *buf, void *ctx)
{
	(void)ctx;
	uint64_t lba = ((uint64_t)blk << v->spb_shift) + off;
	uint32_t entry = v->bat[blk];
	if (entry == VHD_BAT_FREE)
		return vhd_read_absent(v, lba, n, buf);
	uint64_t data = (uint64_t)entry + v->bitmap_sectors;
	while (n) {
		int set;
		uint32_t run;
		int r = vhd_bitmap_run(v, blk, entry, off, n, &set, &run);
		if (r)
			return r;
		r = set ? vhd_dev_read(v, data + off, run, buf) : vhd_read_absent(v, lba, run, buf);
		if (r)
			return r;
		off += run;
		lba += run;
		n -= run;
		buf += (size_t)run * VHD_SECTOR;
	}
	return VHD_OK;
}

/* Per-block piece of a read, a write or a pre-write check; ctx is the caller's. */
typedef int (*vhd_piece_fn)(struct vhd *v, uint32_t blk, uint32_t off, uint32_t n, uint8_t *buf, void *ctx);

/* Split [lba, lba+count) at block boundaries and apply fn to each piece (dynamic kinds). */
static int vhd_for_blocks(struct vhd *v, uint64_t lba, uint32_t count, uint8_t *p, vhd_piece_fn fn, void *ctx)
{
	if (!v->bat)
		return VHD_E_BAT_NOT_LOADED;
	while (count) {
		uint32_t blk = (uint32_t)(lba >> v->spb_shift);
		uint32_t off = (uint32_t)(lba & (v->spb - 1));
		uint32_t n = v->spb - off < count ? v->spb - off : count;
		int r = fn(v, blk, off, n, p, ctx);
		if (r)
			return r;
		lba += n;
		count -= n;
		p += (size_t)n * VHD_SECTOR;
	}
	return VHD_OK;
}

int vhd_read(struct vhd *v, uint64_t lba, uint32_t count, void *buf)
{
	if (lba > v->sectors || count > v->sectors - lba)
		return VHD_E_RANGE;
	if (v->footer.type == VHD_TYPE_FIXED)
		return count ? vhd_dev_read(v, lba, count, buf) : VHD_OK;
	return vhd_for_blocks(v, lba, count, buf, vhd_read_block, NULL);
}

int vhd_plain_block(struct vhd *v, uint64_t lba, uint64_t *lo, uint32_t *n, uint64_t *file_sector)
{
	if (v->footer.type == VHD_TYPE_FIXED || lba >= v->sectors)
		return 0;
	uint32_t blk = (uint32_t)(lba >> v->spb_shift);
	uint32_t entry = v->bat[blk];
	if (entry == VHD_BAT_FREE)
		return 0;
	uint64_t first = (uint64_t)blk << v->spb_shift;
	uint32_t len = v->sectors - first < v->spb ? (uint32_t)(v->sectors - first) : v->spb;
	for (uint32_t s = 0; s < len;) {
		int set;
		uint32_t run;
		int r = vhd_bitmap_run(v, blk, entry, s, len - s, &set, &run);
		if (r)
			return -r;
		if (!set || !run)
			return 0;
		s += run;
	}
	*lo = first;
	*n = len;
	*file_sector = (uint64_t)entry + v->bitmap_sectors;
	return 1;
}

/* ------------------------------------------------------------------ writes */

/* True if n sectors at buf are all zero. */
static int vhd_all_zero(const uint8_t *buf, uint32_t n)
{
	const uint32_t *w = (const uint32_t *)(const void *)buf;
	size_t words = (size_t)n * VHD_SECTOR / 4;
	for (size_t i = 0; i < words; i++)
		if (w[i])
			return 0;
	return 1;
}

/* Sector where the next new block goes: after all metadata and blocks, and after the footer. */
static uint64_t vhd_alloc_at(const struct vhd *v)
{
	uint64_t at = v->alloc_end, fs = vhd_sectors_of(v->footer_pos);
	return fs > at ? fs : at;
}

/* Does writing n sectors from buf into block blk allocate it? Zeros into an unallocated block of a parentless image change nothing. */
static int vhd_piece_allocates(const struct vhd *v, uint32_t blk, uint32_t n, const uint8_t *buf)
{
	return v->bat[blk] == VHD_BAT_FREE && !(v->footer.type == VHD_TYPE_DYNAMIC && vhd_all_zero(buf, n));
}

/* Pre-write pass: count the blocks a write will allocate (ctx: uint64_t sectors needed). */
static int vhd_count_alloc(struct vhd *v, uint32_t blk, uint32_t off, uint32_t n, uint8_t *buf, void *ctx)
{
	(void)off;
	if (vhd_piece_allocates(v, blk, n, buf))
		*(uint64_t *)ctx += (uint64_t)v->bitmap_sectors + v->spb;
	return VHD_OK;
}

/* Write the BAT sector that holds entry blk with value entry (read-modify-write), then flush. */
static int vhd_write_bat_entry(struct vhd *v, uint32_t blk, uint32_t entry)
{
	uint64_t sec = v->header.table_offset / VHD_SECTOR + blk / 128;
	int r = vhd_dev_read(v, sec, 1, v->tmp);
	if (r)
		return r;
	vhd_put32(v->tmp + (blk % 128) * 4, entry);
	r = vhd_dev_write(v, sec, 1, v->tmp);
	if (r)
		return r;
	return vhd_flush(v);
}

/*
 * Allocate block blk holding sectors [off, off+n) from buf, in the
 * crash-safe order: footer at the new end, flush; bitmap and block
 * (zero-filled around the data), flush; BAT sector, flush; memory.
 * A crash at any point leaves a valid image (at worst leaked space).
 */
static int vhd_alloc_block(struct vhd *v, uint32_t blk, uint32_t off, uint32_t n, const uint8_t *buf)
{
	uint64_t at = vhd_alloc_at(v);
	uint64_t blen = (uint64_t)v->bitmap_sectors + v->spb;
	uint64_t new_footer = at + blen;
	if (new_footer > 0xFFFFFFFFull || new_footer + 1 > v->dev->max_sectors)
		return VHD_E_NOSPACE;
	/* 1. The footer moves to the new end; the old one still ends a valid file. */
	int r = vhd_dev_write(v, new_footer, 1, v->footer_raw);
	if (!r)
		r = vhd_flush(v);
	if (r)
		return r;
	/* 2. Bitmap: all set for dynamic (zeros are data), only the written sectors for differencing. */
	int diff = v->footer.type == VHD_TYPE_DIFF;
	v->bm_valid = 0;
	for (uint32_t i = 0; i < v->bitmap_sectors; i++) {
		VHD_MEMSET(v->tmp, 0, VHD_SECTOR);
		for (uint32_t b = 0; b < 4096; b++) {
			uint32_t s = i * 4096 + b;
			int on = diff ? (s >= off && s < off + n) : (s < v->spb);
			if (on)
				v->tmp[b >> 3] |= (uint8_t)(0x80 >> (b & 7));
		}
		r = vhd_dev_write(v, at + i, 1, v->tmp);
		if (r)
			return r;
	}
	uint64_t data = at + v->bitmap_sectors;
	r = vhd_dev_zero(v, data, off);
	if (!r)
		r = vhd_dev_write(v, data + off, n, buf);
	if (!r)
		r = vhd_dev_zero(v, data + off + n, v->spb - off - n);
	if (!r)
		r = vhd_flush(v);
	if (r)
		return r;
	/* 3. Only now does the BAT point at the block. */
	r = vhd_write_bat_entry(v, blk, (uint32_t)at);
	if (r)
		return r;
	v->bat[blk] = (uint32_t)at;
	v->alloc_end = at + blen;
	v->footer_pos = new_footer * VHD_SECTOR;
	v->state &= ~VHD_ST_SHORT_FOOTER;
	return VHD_OK;
}

/*
 * Batched allocation (a write that allocates several blocks): the same
 * crash-safe order as vhd_alloc_block, each step once for all of them:
 * footer after the last new block, flush; every piece written (new blocks
 * with their bitmaps and zero fill, placed in order from alloc_at), flush;
 * the BAT sectors of the new blocks (one read-modify-write per sector),
 * flush; memory. A crash leaves a valid image (at worst leaked space), and
 * the image costs three flushes per write instead of three per block.
 */
struct vhd_batch {
	uint64_t at;               /* where the next new block goes */
	uint64_t bat_sec;          /* BAT sector held in v->tmp (0 = none) */
	uint64_t zeros_from;       /* sectors from here read as zeros already (past the old end of a zero_extend device) */
};

/* Zero fill of a new block in a batch: nothing to write where the device already reads zeros. */
static int vhd_batch_zero(struct vhd *v, const struct vhd_batch *b, uint64_t lba, uint64_t count)
{
	return lba >= b->zeros_from ? VHD_OK : vhd_dev_zero(v, lba, count);
}

/* Pass 2 of a batched write: one piece; new blocks go to ctx->at in order (memory untouched). */
static int vhd_batch_piece(struct vhd *v, uint32_t blk, uint32_t off, uint32_t n, uint8_t *buf, void *ctx)
{
	struct vhd_batch *b = ctx;
	uint32_t entry = v->bat[blk];
	if (entry != VHD_BAT_FREE) {
		int r = vhd_dev_write(v, (uint64_t)entry + v->bitmap_sectors + off, n, buf);
		return r ? r : vhd_bitmap_set(v, blk, entry, off, n);
	}
	if (!vhd_piece_allocates(v, blk, n, buf))
		return VHD_OK;
	uint64_t at = b->at;
	b->at += (uint64_t)v->bitmap_sectors + v->spb;
	int diff = v->footer.type == VHD_TYPE_DIFF;
	v->bm_valid = 0;
	for (uint32_t i = 0; i < v->bitmap_sectors; i++) {
		VHD_MEMSET(v->tmp, 0, VHD_SECTOR);
		for (uint32_t k = 0; k < 4096; k++) {
			uint32_t s = i * 4096 + k;
			if (diff ? (s >= off && s < off + n) : (s < v->spb))
				v->tmp[k >> 3] |= (uint8_t)(0x80 >> (k & 7));
		}
		int r = vhd_dev_write(v, at + i, 1, v->tmp);
		if (r)
			return r;
	}
	uint64_t data = at + v->bitmap_sectors;
	int r = vhd_batch_zero(v, b, data, off);
	if (!r)
		r = vhd_dev_write(v, data + off, n, buf);
	if (!r)
		r = vhd_batch_zero(v, b, data + off + n, v->spb - off - n);
	return r;
}

/* Pass 3: the BAT entry of each new block (same order as pass 2), a sector written when the next entry leaves it. */
static int vhd_batch_bat(struct vhd *v, uint32_t blk, uint32_t off, uint32_t n, uint8_t *buf, void *ctx)
{
	(void)off;
	struct vhd_batch *b = ctx;
	if (!vhd_piece_allocates(v, blk, n, buf))
		return VHD_OK;
	uint64_t sec = v->header.table_offset / VHD_SECTOR + blk / 128;
	int r;
	if (b->bat_sec != sec) {
		if (b->bat_sec && (r = vhd_dev_write(v, b->bat_sec, 1, v->tmp)))
			return r;
		if ((r = vhd_dev_read(v, sec, 1, v->tmp)))
			return r;
		b->bat_sec = sec;
	}
	vhd_put32(v->tmp + (blk % 128) * 4, (uint32_t)b->at);
	b->at += (uint64_t)v->bitmap_sectors + v->spb;
	return VHD_OK;
}

/* Pass 4: memory, once everything is durable. */
static int vhd_batch_commit(struct vhd *v, uint32_t blk, uint32_t off, uint32_t n, uint8_t *buf, void *ctx)
{
	(void)off;
	struct vhd_batch *b = ctx;
	if (!vhd_piece_allocates(v, blk, n, buf))
		return VHD_OK;
	v->bat[blk] = (uint32_t)b->at;
	b->at += (uint64_t)v->bitmap_sectors + v->spb;
	return VHD_OK;
}

/* A write that allocates need sectors of new blocks (more than one block), in the batched order above. */
static int vhd_write_batched(struct vhd *v, uint64_t lba, uint32_t count, uint8_t *p, uint64_t need)
{
	uint64_t at0 = vhd_alloc_at(v), new_footer = at0 + need, old_end = v->dev->sectors;
	int r = vhd_dev_write(v, new_footer, 1, v->footer_raw);   /* on a zero_extend device the gap now reads as zeros */
	if (!r)
		r = vhd_flush(v);
	struct vhd_batch b = { at0, 0, v->dev->zero_extend && new_footer >= old_end ? old_end : UINT64_MAX };
	if (!r)
		r = vhd_for_blocks(v, lba, count, p, vhd_batch_piece, &b);
	if (!r)
		r = vhd_flush(v);
	b.at = at0;
	if (!r)
		r = vhd_for_blocks(v, lba, count, p, vhd_batch_bat, &b);
	if (!r && b.bat_sec)
		r = vhd_dev_write(v, b.bat_sec, 1, v->tmp);
	if (!r)
		r = vhd_flush(v);
	if (r)
		return r;
	b.at = at0;
	vhd_for_blocks(v, lba, count, p, vhd_batch_commit, &b);
	v->alloc_end = at0 + need;
	v->footer_pos = new_footer * VHD_SECTOR;
	v->state &= ~VHD_ST_SHORT_FOOTER;
	return VHD_OK;
}

/* Write n sectors into block blk at sector off. */
static int vhd_write_block(struct vhd *v, uint32_t blk, uint32_t off, uint32_t n, uint8_t *buf, void *ctx)
{
	(void)ctx;
	uint32_t entry = v->bat[blk];
	if (entry == VHD_BAT_FREE) {
		if (!vhd_piece_allocates(v, blk, n, buf))
			return VHD_OK;
		return vhd_alloc_block(v, blk, off, n, buf);
	}
	int r = vhd_dev_write(v, (uint64_t)entry + v->bitmap_sectors + off, n, buf);
	if (r)
		return r;
	return vhd_bitmap_set(v, blk, entry, off, n);
}

int vhd_write(struct vhd *v, uint64_t lba, uint32_t count, const void *buf)
{
	if (v->flags & VHD_OPEN_RDONLY)
		return VHD_E_READ_ONLY;
	if (lba > v->sectors || count > v->sectors - lba)
		return VHD_E_RANGE;
	if (v->footer.type == VHD_TYPE_FIXED)
		return count ? vhd_dev_write(v, lba, count, buf) : VHD_OK;
	/* The piece callbacks never write through the buffer pointer on this path. */
	uint8_t *p = (uint8_t *)(uintptr_t)buf;
	/* A write that cannot get all the room it needs is refused before anything is written. */
	uint64_t need = 0;
	int r = vhd_for_blocks(v, lba, count, p, vhd_count_alloc, &need);
	if (r)
		return r;
	if (need) {
		uint64_t end = vhd_alloc_at(v) + need;   /* + 1 for the footer after the last new block */
		if (end > 0xFFFFFFFFull || end + 1 > v->dev->max_sectors)
			return VHD_E_NOSPACE;
		if (need > (uint64_t)v->bitmap_sectors + v->spb)
			return vhd_write_batched(v, lba, count, p, need);
	}
	return vhd_for_blocks(v, lba, count, p, vhd_write_block, NULL);
}

/* ------------------------------------------------------------------ parents */

int vhd_chain_depth(const struct vhd *v)
{
	int d = 0;
	while (v->parent && d <= VHD_MAX_CHAIN) {
		v = v->parent;
		d++;
	}
	return d;
}

int vhd_set_parent(struct vhd *child, struct vhd *parent, const struct vhd *leaf, unsigned flags)
{
	if (!child || !parent)
		return VHD_E_BAD_ARG;
	if (child->footer.type != VHD_TYPE_DIFF)
		return VHD_E_NOT_DIFF;
	if (VHD_MEMCMP(child->header.parent_uuid, parent->footer.uuid, 16))
		return VHD_E_PARENT_UUID;
	if (!(flags & VHD_PARENT_IGNORE_TIMESTAMP) &&
	    child->header.parent_timestamp != parent->footer.timestamp)
		return VHD_E_PARENT_TIMESTAMP;
	if (child->footer.cur_size != parent->footer.cur_size)
		return VHD_E_PARENT_SIZE;
	/* The parent must not already be in the chain from the leaf down to the child. */
	int depth = 1;
	for (const struct vhd *c = leaf ? leaf : child; c; c = c->parent) {
		if (c == parent || !VHD_MEMCMP(c->footer.uuid, parent->footer.uuid, 16))
			return VHD_E_CHAIN_LOOP;
		if (c == child)
			break;
		depth++;
		if (depth > VHD_MAX_CHAIN)
			return VHD_E_CHAIN_DEPTH;
	}
	if (depth + vhd_chain_depth(parent) > VHD_MAX_CHAIN)
		return VHD_E_CHAIN_DEPTH;
	child->parent = parent;
	return VHD_OK;
}

/* Decoder state for UTF-16 → UTF-8 with path separators normalised to '/'. */
struct vhd_u16 {
	char *out;
	size_t cap, n;
	uint16_t high;  /* pending high surrogate */
	int done;       /* NUL seen */
};

/* Feed one UTF-16 code unit; 0 on malformed input or overflow. */
static int vhd_u16_feed(struct vhd_u16 *d, uint16_t u)
{
	if (d->done)
		return 1;
	if (d->high) {
		if (u < 0xDC00 || u > 0xDFFF)
			return 0;
		uint32_t cp = 0x10000 + (((uint32_t)d->high - 0xD800) << 10) + (u - 0xDC00);
		d->high = 0;
		return utf8_put(d->out, d->cap, &d->n, cp) == 0;
	}
	if (u == 0) {
		d->done = 1;
		return 1;
	}
	if (u >= 0xD800 && u <= 0xDBFF) {
		d->high = u;
		return 1;
	}
	if (u >= 0xDC00 && u <= 0xDFFF)
		return 0;
	return utf8_put(d->out, d->cap, &d->n, u == '\\' ? '/' : u) == 0;
}

#define VHD_LOCATOR_MAX 4096u  /* longest locator data we accept (bytes) */

/* Decode locator l into a UTF-8 path in out. */
static int vhd_decode_locator(struct vhd *v, const struct vhd_ploc *l, char *out, size_t outlen)
{
	if (!l->data_len || l->data_len > VHD_LOCATOR_MAX || l->data_offset % VHD_SECTOR ||
	    l->data_offset > v->footer_pos || v->footer_pos - l->data_offset < l->data_len)
		return VHD_E_LOCATOR;
	struct vhd_u16 d = { out, outlen, 0, 0, 0 };
	out[0] = 0;
	int utf16 = l->code != VHD_PLAT_MACX;
	if (utf16 && l->data_len % 2)
		return VHD_E_LOCATOR;
	uint64_t sec = l->data_offset / VHD_SECTOR;
	for (uint32_t pos = 0; pos < l->data_len && !d.done; pos += VHD_SECTOR, sec++) {
		int r = vhd_dev_read(v, sec, 1, v->tmp);
		if (r)
			return r;
		uint32_t k = l->data_len - pos < VHD_SECTOR ? l->data_len - pos : VHD_SECTOR;
		for (uint32_t i = 0; i < k && !d.done; i += utf16 ? 2 : 1) {
			if (utf16) {
				if (!vhd_u16_feed(&d, (uint16_t)(v->tmp[i] | (v->tmp[i + 1] << 8))))
					return VHD_E_LOCATOR;
			} else if (v->tmp[i] == 0) {
				d.done = 1;
			} else {
				if (d.n + 2 > outlen)
					return VHD_E_LOCATOR;
				out[d.n++] = (char)v->tmp[i];
				out[d.n] = 0;
			}
		}
	}
	if (d.high || d.n == 0)
		return VHD_E_LOCATOR;
	if (!utf16) {
		/* MacX: file://[host]/path → /path */
		const char *pfx = "file://";
		size_t pl = 7;
		if (d.n > pl && !VHD_MEMCMP(out, pfx, pl)) {
			size_t s = pl;
			while (s < d.n && out[s] != '/')
				s++;
			size_t m = d.n - s;
			for (size_t i = 0; i <= m; i++)
				out[i] = out[s + i];
			if (!m)
				return VHD_E_LOCATOR;
		}
	}
	return VHD_OK;
}

int vhd_locator_path(struct vhd *v, int slot, char *out, size_t outlen)
{
	if (slot < 0 || slot > 7 || !out || outlen < 2)
		return VHD_E_BAD_ARG;
	return vhd_decode_locator(v, &v->header.loc[slot], out, outlen);
}

int vhd_parent_candidate(struct vhd *v, int idx, char *out, size_t outlen, uint32_t *code)
{
	static const uint32_t order[] = { VHD_PLAT_W2RU, VHD_PLAT_W2KU, VHD_PLAT_MACX };
	if (!out || outlen < 2 || idx < 0)
		return VHD_E_BAD_ARG;
	if (v->footer.type != VHD_TYPE_DIFF)
		return VHD_E_NOT_DIFF;
	int k = 0;
	for (unsigned o = 0; o < sizeof(order) / sizeof(order[0]); o++)
		for (int i = 0; i < 8; i++) {
			if (v->header.loc[i].code != order[o])
				continue;
			if (k++ == idx) {
				if (code)
					*code = order[o];
				return vhd_decode_locator(v, &v->header.loc[i], out, outlen);
			}
		}
	if (k != idx || !v->header.parent_name[0])
		return VHD_E_NO_LOCATOR;
	if (code)
		*code = 0;
	return vhd_parent_name(v, out, outlen);
}

int vhd_parent_name(const struct vhd *v, char *out, size_t outlen)
{
	if (!out || outlen < 2)
		return VHD_E_BAD_ARG;
	struct vhd_u16 d = { out, outlen, 0, 0, 0 };
	out[0] = 0;
	for (int i = 0; i < 256 && !d.done; i++)
		if (!vhd_u16_feed(&d, v->header.parent_name[i]))
			return VHD_E_LOCATOR;
	if (d.high)
		return VHD_E_LOCATOR;
	return d.n ? VHD_OK : VHD_E_NO_LOCATOR;
}
