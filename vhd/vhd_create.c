/* vhd_create.c: writing new fixed, dynamic and differencing images (footer, header, BAT, parent locators). */
#include "vhd.h"
#include "vhd_util.h"

void vhd_chs_from_size(uint64_t sectors, uint16_t *c, uint8_t *h, uint8_t *s)
{
	/* The VHD specification's appendix algorithm; values fit in 32 bits after the clamp. */
	uint32_t total = sectors > 65535ull * 16 * 255 ? 65535u * 16 * 255 : (uint32_t)sectors;
	uint32_t spt, heads, cth;
	if (total >= 65535u * 16 * 63) {
		spt = 255;
		heads = 16;
		cth = total / spt;
	} else {
		spt = 17;
		cth = total / spt;
		heads = (cth + 1023) / 1024;
		if (heads < 4)
			heads = 4;
		if (cth >= heads * 1024 || heads > 16) {
			spt = 31;
			heads = 16;
			cth = total / spt;
		}
		if (cth >= heads * 1024) {
			spt = 63;
			heads = 16;
			cth = total / spt;
		}
	}
	*c = (uint16_t)(cth / heads);
	*h = (uint8_t)heads;
	*s = (uint8_t)spt;
}

/* Fill a raw footer for o, with data offset and size given; computes the checksum. */
static void vhd_make_footer(uint8_t *raw, const struct vhd_create_opts *o, uint32_t type,
			    uint64_t data_offset, uint64_t size)
{
	struct vhd_disk_footer *f = (void *)raw;
	VHD_MEMSET(raw, 0, 512);
	VHD_MEMCPY(f->cookie, VHD_FOOTER_COOKIE, 8);
	vhd_put32(&f->features, VHD_FEAT_RESERVED);
	vhd_put32(&f->version, VHD_VERSION);
	vhd_put64(&f->data_offset, data_offset);
	vhd_put32(&f->timestamp, o->timestamp);
	/*
	 * "win " tells readers to take the size from current size, which is
	 * what our images mean; QEMU's vpc driver derives a (smaller) size
	 * from the CHS geometry for creator apps it does not know.
	 */
	const char *app = o->creator_app ? o->creator_app : "win ";
	for (int i = 0; i < 4; i++)
		f->creator_app[i] = app[i] ? app[i] : ' ';
	vhd_put32(&f->creator_ver, 0x00010000);
	vhd_put32(&f->creator_os, o->creator_os ? o->creator_os : VHD_OS_WINDOWS);
	vhd_put64(&f->orig_size, size);
	vhd_put64(&f->cur_size, size);
	uint16_t c;
	uint8_t h, s;
	vhd_chs_from_size(size / VHD_SECTOR, &c, &h, &s);
	vhd_put16(&f->cylinders, c);
	f->heads = h;
	f->spt = s;
	vhd_put32(&f->type, type);
	VHD_MEMCPY(f->uuid, o->uuid, 16);
	vhd_put32(&f->checksum, vhd_checksum(raw, 512, VHD_FOOTER_CSUM_OFF));
}

/* Decode one UTF-8 code point from *p (advancing it); 0xFFFD on malformed input. */
static uint32_t vhd_utf8_next(const char **p)
{
	const uint8_t *s = (const uint8_t *)*p;
	uint32_t cp;
	int extra;
	if (s[0] < 0x80) {
		cp = s[0]; extra = 0;
	} else if ((s[0] & 0xE0) == 0xC0) {
		cp = s[0] & 0x1F; extra = 1;
	} else if ((s[0] & 0xF0) == 0xE0) {
		cp = s[0] & 0x0F; extra = 2;
	} else if ((s[0] & 0xF8) == 0xF0) {
		cp = s[0] & 0x07; extra = 3;
	} else {
		*p += 1;
		return 0xFFFD;
	}
	for (int i = 1; i <= extra; i++) {
		if ((s[i] & 0xC0) != 0x80) {
			*p += i;
			return 0xFFFD;
		}
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	*p += 1 + extra;
	return cp;
}

/*
 * Encode UTF-8 string in as UTF-16 into out (max units), '/' turned into
 * '\\' when backslash is set, big-endian if be; returns units written or
 * -1 if it does not fit.
 */
int vhd_utf16_encode(const char *in, uint8_t *out, int max, int be, int backslash)
{
	int n = 0;
	while (*in) {
		uint32_t cp = vhd_utf8_next(&in);
		if (backslash && cp == '/')
			cp = '\\';
		uint16_t u[2];
		int k = 1;
		if (cp >= 0x10000) {
			cp -= 0x10000;
			u[0] = (uint16_t)(0xD800 + (cp >> 10));
			u[1] = (uint16_t)(0xDC00 + (cp & 0x3FF));
			k = 2;
		} else {
			u[0] = (uint16_t)cp;
		}
		if (n + k > max)
			return -1;
		for (int i = 0; i < k; i++, n++) {
			out[2 * n + (be ? 0 : 1)] = (uint8_t)(u[i] >> 8);
			out[2 * n + (be ? 1 : 0)] = (uint8_t)u[i];
		}
	}
	return n;
}

/* Write len bytes from raw (a multiple of 512) at byte offset off. */
static int vhd_put_sectors(struct blk_dev *dev, uint64_t off, const uint8_t *raw, uint32_t len)
{
	return blk_write(dev, off / VHD_SECTOR, len / VHD_SECTOR, raw) ? VHD_E_IO : VHD_OK;
}

#define VHD_LOC_SPACE 1024u    /* bytes reserved per locator (512 UTF-16 units) */

int vhd_create(struct blk_dev *dev, const struct vhd_create_opts *o)
{
	if (!dev || !o || !dev->write)
		return VHD_E_BAD_ARG;
	uint8_t foot[512];
	uint64_t size = o->size;
	uint32_t type = o->type;
	if (type == VHD_TYPE_DIFF) {
		if (!o->parent || !o->parent_name)
			return VHD_E_BAD_ARG;
		size = o->parent->footer.cur_size;
	}
	if (size == 0)
		return VHD_E_SIZE_ZERO;
	if (size % VHD_SECTOR)
		return VHD_E_SIZE_UNALIGNED;
	if (type == VHD_TYPE_FIXED) {
		vhd_make_footer(foot, o, type, VHD_NO_OFFSET, size);
		int r = vhd_put_sectors(dev, size, foot, 512);
		if (!r && blk_flush(dev))
			r = VHD_E_IO;
		return r;
	}
	if (type != VHD_TYPE_DYNAMIC && type != VHD_TYPE_DIFF)
		return VHD_E_FOOTER_TYPE;
	if (size > VHD_MAX_SIZE)
		return VHD_E_SIZE_TOO_BIG;
	uint32_t bs = o->block_size ? o->block_size : 2u << 20;
	if (bs < VHD_SECTOR || bs > VHD_MAX_BLOCK_SIZE || (bs & (bs - 1)))
		return VHD_E_BLOCK_SIZE;
	uint32_t shift = 0;
	while ((1u << shift) < bs)
		shift++;
	uint64_t entries = (size + bs - 1) >> shift;
	if (entries > 0xFFFFFFFEull)
		return VHD_E_SIZE_TOO_BIG;
	/* Layout: footer copy, header, BAT, locator data, end footer. */
	const uint64_t hdr_off = 512, bat_off = 1536;
	uint64_t bat_len = vhd_sectors_of(entries * 4) * VHD_SECTOR;
	uint64_t next = bat_off + bat_len;

	uint8_t hdr[1024];
	struct vhd_disk_header *h = (void *)hdr;
	VHD_MEMSET(hdr, 0, sizeof(hdr));
	VHD_MEMCPY(h->cookie, VHD_HEADER_COOKIE, 8);
	vhd_put64(&h->data_offset, VHD_NO_OFFSET);
	vhd_put64(&h->table_offset, bat_off);
	vhd_put32(&h->version, VHD_VERSION);
	vhd_put32(&h->max_entries, (uint32_t)entries);
	vhd_put32(&h->block_size, bs);

	/* Locator data: one sector-aligned area per path. */
	uint8_t loc[VHD_LOC_SPACE];
	const char *paths[2] = { o->w2ru, o->w2ku };
	const uint32_t codes[2] = { VHD_PLAT_W2RU, VHD_PLAT_W2KU };
	uint64_t loc_off[2] = { 0, 0 };
	if (type == VHD_TYPE_DIFF) {
		VHD_MEMCPY(h->parent_uuid, o->parent->footer.uuid, 16);
		vhd_put32(&h->parent_timestamp, o->parent->footer.timestamp);
		if (vhd_utf16_encode(o->parent_name, (uint8_t *)h->parent_name, 255, 1, 0) < 0)
			return VHD_E_LOCATOR;
		int slot = 0;
		for (int i = 0; i < 2; i++) {
			if (!paths[i] || !paths[i][0])
				continue;
			int units = vhd_utf16_encode(paths[i], loc, VHD_LOC_SPACE / 2, 0, 1);
			if (units < 0)
				return VHD_E_LOCATOR;
			loc_off[i] = next;
			struct vhd_disk_ploc *pl = &h->loc[slot++];
			vhd_put32(&pl->code, codes[i]);
			vhd_put32(&pl->data_space, VHD_LOC_SPACE);
			vhd_put32(&pl->data_len, (uint32_t)units * 2);
			vhd_put64(&pl->data_offset, next);
			next += VHD_LOC_SPACE;
		}
	}
	vhd_put32(&h->checksum, vhd_checksum(hdr, 1024, VHD_HEADER_CSUM_OFF));
	vhd_make_footer(foot, o, type, hdr_off, size);

	/* The end footer first, so the file has its final length; then the rest. */
	int r = vhd_put_sectors(dev, next, foot, 512);
	if (!r)
		r = vhd_put_sectors(dev, 0, foot, 512);
	if (!r)
		r = vhd_put_sectors(dev, hdr_off, hdr, 1024);
	uint8_t sec[512];
	VHD_MEMSET(sec, 0xFF, sizeof(sec));
	for (uint64_t off = bat_off; !r && off < bat_off + bat_len; off += 512)
		r = vhd_put_sectors(dev, off, sec, 512);
	for (int i = 0; i < 2 && !r; i++) {
		if (!loc_off[i])
			continue;
		VHD_MEMSET(loc, 0, sizeof(loc));
		vhd_utf16_encode(paths[i], loc, VHD_LOC_SPACE / 2, 0, 1);
		r = vhd_put_sectors(dev, loc_off[i], loc, VHD_LOC_SPACE);
	}
	if (!r && blk_flush(dev))
		r = VHD_E_IO;
	return r;
}
