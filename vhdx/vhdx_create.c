/* vhdx_create.c: writing new fixed, dynamic and differencing VHDX images (header section, log, metadata, BAT, blocks). */
#include "vhdx.h"
#include "vhdx_util.h"

/* Scratch of one creation: a 4 KiB page and a sector (on the caller's stack: the library has no heap). */
struct vx_cbuf {
	uint8_t page[VHDX_PAGE];
};

/* Write len bytes of page at byte off (len a multiple of 512). */
static int vx_cwrite(struct blk_dev *dev, uint64_t off, const uint8_t *buf, uint32_t len)
{
	int r = blk_write(dev, off / VHDX_SECTOR, len / VHDX_SECTOR, buf);
	if (r == BLK_E_NOSPACE || r == BLK_E_RANGE)
		return VHDX_E_NOSPACE;
	if (r == BLK_E_RO)
		return VHDX_E_READ_ONLY;
	return r ? VHDX_E_IO : VHDX_OK;
}

/* Read-only zeros (a constant, not state). */
static const uint8_t vx_czeros[VHDX_PAGE];

/* Zero count bytes at off (multiples of 512), with the device's fast path when it has one. */
static int vx_czero(struct blk_dev *dev, uint64_t off, uint64_t count)
{
	if (!count)
		return VHDX_OK;
	if (blk_has_write_zeroes(dev))
		return blk_write_zeroes(dev, off / VHDX_SECTOR, count / VHDX_SECTOR) ? VHDX_E_IO : VHDX_OK;
	while (count) {
		uint32_t n = count < VHDX_PAGE ? (uint32_t)count : VHDX_PAGE;
		int r = vx_cwrite(dev, off, vx_czeros, n);
		if (r)
			return r;
		off += n;
		count -= n;
	}
	return VHDX_OK;
}

/* Add one metadata table entry (index i) and return the offset after its value. */
static void vx_meta_entry(uint8_t *table, uint32_t i, const struct vhdx_guid *g, uint32_t off, uint32_t len, uint32_t flags)
{
	uint8_t *e = table + 32 + 32 * i;
	VX_MEMCPY(e, g->b, 16);
	vx_put32(e + 16, off);
	vx_put32(e + 20, len);
	vx_put32(e + 24, flags);
}

/* Append key/value entry i (UTF-16LE) to the locator at loc (cap bytes; data grows from *used). */
static int vx_loc_add(uint8_t *loc, uint32_t cap, uint32_t *used, uint32_t i, const char *key, const char *val, int backslash)
{
	size_t kn = 0, vn = 0;
	while (key[kn])
		kn++;
	while (val[vn])
		vn++;
	long kl = vx_utf8_to_utf16le(key, kn, loc + *used, cap - *used, 0);
	if (kl <= 0 || kl > 0xFFFF)
		return VHDX_E_BAD_ARG;
	uint32_t ko = *used;
	*used += (uint32_t)kl;
	long vl = vx_utf8_to_utf16le(val, vn, loc + *used, cap - *used, backslash);
	if (vl <= 0 || vl > 0xFFFF)
		return VHDX_E_BAD_ARG;
	uint32_t vo = *used;
	*used += (uint32_t)vl;
	uint8_t *e = loc + 20 + 12 * i;
	vx_put32(e, ko);
	vx_put32(e + 4, vo);
	vx_put16(e + 8, (uint16_t)kl);
	vx_put16(e + 10, (uint16_t)vl);
	return VHDX_OK;
}

int vhdx_create(struct blk_dev *dev, const struct vhdx_create_opts *o)
{
	struct vx_cbuf b;
	int diff = o->type == VHDX_DIFF;
	if (o->type != VHDX_FIXED && o->type != VHDX_DYNAMIC && !diff)
		return VHDX_E_BAD_ARG;
	if (diff && (!o->parent || (!o->relative_path && !o->volume_path && !o->absolute_win32_path)))
		return VHDX_E_BAD_ARG;
	uint64_t size = diff && !o->size ? o->parent->vsize : o->size;
	uint32_t bs = o->block_size ? o->block_size : diff ? (2u << 20) : (32u << 20);
	uint32_t log = o->log_size ? o->log_size : VHDX_MIB;
	uint32_t pss = o->physical_sector ? o->physical_sector : 4096;
	/* A child takes the parent's virtual-disk metadata (MS-VHDX 2.6.1.2, IsVirtualDisk: copied when forking). */
	const struct vhdx_guid *page83 = diff ? &o->parent->page83 : &o->page83;
	if (diff)
		pss = o->parent->pss;
	if (bs < VHDX_MIN_BLOCK || bs > VHDX_MAX_BLOCK || (bs & (bs - 1)))
		return VHDX_E_BLOCK_SIZE;
	if (!size || size % VHDX_SECTOR || size > VHDX_MAX_SIZE || (diff && size != o->parent->vsize))
		return diff && size != o->parent->vsize ? VHDX_E_PARENT_SIZE : VHDX_E_SIZE;
	if (log % VHDX_MIB || pss % 512 || (pss != 512 && pss != 4096))
		return VHDX_E_BAD_ARG;
	uint32_t cr = (uint32_t)((1ull << 23) * 512 / bs);
	uint64_t blocks = (size + bs - 1) / bs, sbs = (blocks + cr - 1) / cr;
	uint64_t entries = diff ? sbs * (cr + 1ull) : blocks + (blocks - 1) / cr;
	uint64_t log_off = VX_HEADER_SECTION, meta_off = log_off + log, bat_off = meta_off + VHDX_MIB;
	uint64_t bat_len = (entries * 8 + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
	uint64_t data_off = bat_off + bat_len;
	if (bat_len > 0xFFF00000u)
		return VHDX_E_SIZE;
	uint64_t end = o->type == VHDX_FIXED ? data_off + blocks * bs : data_off;
	if (end / VHDX_SECTOR > dev->max_sectors)
		return VHDX_E_NOSPACE;
	int r;

	/* File identifier. */
	VX_MEMSET(b.page, 0, VHDX_PAGE);
	VX_MEMCPY(b.page, "vhdxfile", 8);
	const char *cr8 = o->creator ? o->creator : "vhdboot";
	for (uint32_t i = 0; cr8[i] && i < 255; i++)
		vx_put16(b.page + 8 + 2 * i, (uint8_t)cr8[i]);
	if ((r = vx_cwrite(dev, 0, b.page, VHDX_PAGE)) || (r = vx_czero(dev, VHDX_PAGE, VX_HDR_OFF0 - VHDX_PAGE)))
		return r;

	/* Everything but the headers first: a crash leaves no valid header, so no half image opens. */
	if ((r = vx_czero(dev, VX_HDR_OFF0, VX_HEADER_SECTION - VX_HDR_OFF0)))
		return r;
	for (int copy = 0; copy < 2; copy++) {
		VX_MEMSET(b.page, 0, VHDX_PAGE);
		vx_put32(b.page, VX_SIG_REGI);
		vx_put32(b.page + 8, 2);
		VX_MEMCPY(b.page + 16, vx_guid_bat.b, 16);
		vx_put64(b.page + 32, bat_off);
		vx_put32(b.page + 40, (uint32_t)bat_len);
		vx_put32(b.page + 44, 1);
		VX_MEMCPY(b.page + 48, vx_guid_meta.b, 16);
		vx_put64(b.page + 64, meta_off);
		vx_put32(b.page + 72, VHDX_MIB);
		vx_put32(b.page + 76, 1);
		/* CRC over the whole 64 KiB: the rest is zeros. */
		uint32_t c = vhdx_crc32c(0, b.page, VHDX_PAGE);
		uint8_t z[64];
		VX_MEMSET(z, 0, sizeof(z));
		for (uint32_t k = VHDX_PAGE; k < VX_RT_SIZE; k += sizeof(z))
			c = vhdx_crc32c(c, z, sizeof(z));
		vx_put32(b.page + 4, c);
		if ((r = vx_cwrite(dev, copy ? VX_RT_OFF1 : VX_RT_OFF0, b.page, VHDX_PAGE)))
			return r;
	}
	if ((r = vx_czero(dev, log_off, log)))
		return r;

	/* Metadata: the table, then the items at 64 KiB into the region. */
	uint32_t items = diff ? 6 : 5;
	VX_MEMSET(b.page, 0, VHDX_PAGE);
	VX_MEMCPY(b.page, "metadata", 8);
	vx_put16(b.page + 10, (uint16_t)items);
	uint32_t v0 = VX_META_TABLE_SIZE;
	vx_meta_entry(b.page, 0, &vx_guid_file_params, v0, 8, VX_MF_REQUIRED);
	vx_meta_entry(b.page, 1, &vx_guid_vsize, v0 + 8, 8, VX_MF_REQUIRED | VX_MF_VDISK);
	vx_meta_entry(b.page, 2, &vx_guid_page83, v0 + 16, 16, VX_MF_REQUIRED | VX_MF_VDISK);
	vx_meta_entry(b.page, 3, &vx_guid_lss, v0 + 32, 4, VX_MF_REQUIRED | VX_MF_VDISK);
	vx_meta_entry(b.page, 4, &vx_guid_pss, v0 + 36, 4, VX_MF_REQUIRED | VX_MF_VDISK);
	uint32_t loc_used = 0;
	uint8_t loc[VHDX_PAGE - 40];
	if (diff) {
		VX_MEMSET(loc, 0, sizeof(loc));
		VX_MEMCPY(loc, vx_guid_loc_type.b, 16);
		uint32_t n = 0;
		const char *keys[4] = { "parent_linkage", "relative_path", "volume_path", "absolute_win32_path" };
		char link[39];
		vhdx_guid_str(&o->parent->hdr.data_write, link);
		const char *vals[4] = { link, o->relative_path, o->volume_path, o->absolute_win32_path };
		for (int k = 0; k < 4; k++)
			n += vals[k] != 0;
		loc_used = 20 + 12 * n;
		n = 0;
		for (int k = 0; k < 4; k++) {
			if (!vals[k])
				continue;
			if ((r = vx_loc_add(loc, sizeof(loc), &loc_used, n++, keys[k], vals[k], k > 0)))
				return r;
		}
		vx_put16(loc + 18, (uint16_t)n);
		vx_meta_entry(b.page, 5, &vx_guid_locator, v0 + 40, loc_used, VX_MF_REQUIRED);
	}
	if ((r = vx_czero(dev, meta_off, VHDX_MIB)) || (r = vx_cwrite(dev, meta_off, b.page, VHDX_PAGE)))
		return r;
	VX_MEMSET(b.page, 0, VHDX_PAGE);
	vx_put32(b.page, bs);
	vx_put32(b.page + 4, (o->type == VHDX_FIXED ? VX_FP_LEAVE_ALLOCATED : 0) | (diff ? VX_FP_HAS_PARENT : 0));
	vx_put64(b.page + 8, size);
	VX_MEMCPY(b.page + 16, page83->b, 16);
	vx_put32(b.page + 32, 512);
	vx_put32(b.page + 36, pss);
	if (diff)
		VX_MEMCPY(b.page + 40, loc, loc_used);
	if ((r = vx_cwrite(dev, meta_off + v0, b.page, VHDX_PAGE)))
		return r;

	/* BAT: fixed disks point every block at its place; the others start empty. */
	if ((r = vx_czero(dev, bat_off, bat_len)))
		return r;
	if (o->type == VHDX_FIXED) {
		for (uint64_t p = 0; p * (VHDX_PAGE / 8) < entries; p++) {
			VX_MEMSET(b.page, 0, VHDX_PAGE);
			for (uint32_t k = 0; k < VHDX_PAGE / 8; k++) {
				uint64_t i = p * (VHDX_PAGE / 8) + k;
				if (i >= entries)
					break;
				if (i % (cr + 1ull) == cr)
					continue;   /* sector bitmap entries: not present */
				uint64_t blk = i - i / (cr + 1ull);
				vx_put64(b.page + 8 * k, vhdx_bat_make(VHDX_PB_FULLY_PRESENT, (data_off + blk * bs) >> 20));
			}
			if ((r = vx_cwrite(dev, bat_off + p * VHDX_PAGE, b.page, VHDX_PAGE)))
				return r;
		}
		if ((r = vx_czero(dev, data_off, blocks * bs)))
			return r;
	}
	if ((r = blk_flush(dev) ? VHDX_E_IO : VHDX_OK))
		return r;

	/* The headers last, each flushed: sequence numbers 1 and 2, no log. */
	struct vhdx_header h;
	VX_MEMSET(&h, 0, sizeof(h));
	h.file_write = o->file_write;
	h.data_write = o->data_write;
	h.version = 1;
	h.log_length = log;
	h.log_offset = log_off;
	for (int copy = 0; copy < 2; copy++) {
		h.seq = 1 + (uint64_t)copy;
		vx_build_header(&h, b.page);
		if ((r = vx_cwrite(dev, copy ? VX_HDR_OFF1 : VX_HDR_OFF0, b.page, VHDX_PAGE)))
			return r;
		if (blk_flush(dev))
			return VHDX_E_IO;
	}
	return VHDX_OK;
}
