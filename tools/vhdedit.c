/* vhdedit.c: the in-place edits vhdtool's writing verbs are built from (footers, header, BAT entries, appended areas), each one write then a flush. */
#include <string.h>
#include "vhdtool.h"
#include "../vhd/vhd_util.h"   /* vhd_put32, vhd_sectors_of, vhd_ploc_space_bytes, checksum offsets */

/* Write count sectors at lba of v's file, then flush; 0 or vhd_err. */
static int edit_put(struct vhd *v, uint64_t lba, uint32_t count, const void *buf)
{
	int r = blk_write(v->dev, lba, count, buf);

	if (r == BLK_E_NOSPACE || r == BLK_E_RANGE)
		return VHD_E_NOSPACE;
	if (r == BLK_E_RO)
		return VHD_E_READ_ONLY;
	if (r || blk_flush(v->dev))
		return VHD_E_IO;
	return VHD_OK;
}

/* Recompute the footer checksum in place. */
void edit_footer_checksum(uint8_t raw[512])
{
	vhd_put32(raw + VHD_FOOTER_CSUM_OFF, vhd_checksum(raw, 512, VHD_FOOTER_CSUM_OFF));
}

/* End footer first (the copy readers use), then the copy at 0; each flushed. */
int edit_write_footers(struct vhd *v, const uint8_t raw[512])
{
	int r;

	if (v->footer_pos % VHD_SECTOR)
		return VHD_E_BAD_ARG;   /* an odd-length file: 'vhdtool repair' puts the footer on a sector first */
	r = edit_put(v, v->footer_pos / VHD_SECTOR, 1, raw);
	if (!r && v->footer.type != VHD_TYPE_FIXED)
		r = edit_put(v, 0, 1, raw);
	if (!r) {
		memcpy(v->footer_raw, raw, 512);
		v->state &= ~VHD_ST_SHORT_FOOTER;
	}
	return r;
}

/* Read the raw dynamic header. */
int edit_read_header(struct vhd *v, uint8_t raw[1024])
{
	return blk_read(v->dev, v->footer.data_offset / VHD_SECTOR, 2, raw) ? VHD_E_IO : VHD_OK;
}

/* Checksum and write the header: one 1024-byte write (inside one page: a kill cannot split it). */
int edit_write_header(struct vhd *v, uint8_t raw[1024])
{
	vhd_put32(raw + VHD_HEADER_CSUM_OFF, vhd_checksum(raw, 1024, VHD_HEADER_CSUM_OFF));
	return edit_put(v, v->footer.data_offset / VHD_SECTOR, 2, raw);
}

/* One BAT entry: read-modify-write of its sector, flushed; then the in-memory copy. */
int edit_set_bat(struct vhd *v, uint32_t blk, uint32_t entry)
{
	uint8_t sec[VHD_SECTOR];
	uint64_t lba = v->header.table_offset / VHD_SECTOR + blk / 128;
	int r;

	if (blk >= v->header.max_entries)
		return VHD_E_BAD_ARG;
	if (blk_read(v->dev, lba, 1, sec))
		return VHD_E_IO;
	vhd_put32(sec + (blk % 128) * 4, entry);
	r = edit_put(v, lba, 1, sec);
	if (!r && v->bat)
		v->bat[blk] = entry;
	return r;
}

/* Sector after everything the image uses (header, BAT, locator data, blocks). */
uint64_t edit_used_end(const struct vhd *v)
{
	const struct vhd_header *h = &v->header;
	uint64_t end = 1, e, blen = (uint64_t)v->bitmap_sectors + v->spb;

	if (v->footer.type == VHD_TYPE_FIXED)
		return v->sectors;
	e = vhd_sectors_of(v->footer.data_offset + 1024);
	end = e > end ? e : end;
	e = vhd_sectors_of(h->table_offset + (uint64_t)h->max_entries * 4);
	end = e > end ? e : end;
	for (int i = 0; i < 8; i++) {
		const struct vhd_ploc *l = &h->loc[i];
		if (!l->code || l->data_offset >= v->footer_pos)
			continue;
		e = vhd_sectors_of(l->data_offset + vhd_ploc_space_bytes(l->data_space, l->data_len));
		end = e > end ? e : end;
	}
	for (uint32_t b = 0; v->bat && b < h->max_entries; b++) {
		if (v->bat[b] == VHD_BAT_FREE)
			continue;
		e = (uint64_t)v->bat[b] + blen;
		end = e > end ? e : end;
	}
	return end;
}

/* Append an area: footer at the new end first, then the data in the old footer's place. */
int edit_append(struct vhd *v, const uint8_t *data, uint32_t len, uint64_t *at)
{
	uint64_t start = edit_used_end(v), fs = vhd_sectors_of(v->footer_pos), foot;
	int r;

	if (len % VHD_SECTOR || v->footer_pos % VHD_SECTOR)
		return VHD_E_BAD_ARG;
	if (fs > start)
		start = fs;   /* never write over leaked space someone may still be looking at: go past the footer */
	foot = start + len / VHD_SECTOR;
	if (foot > 0xFFFFFFFFull)
		return VHD_E_NOSPACE;
	r = edit_put(v, foot, 1, v->footer_raw);
	if (r)
		return r;
	/* The file now ends with a valid footer; the old one (if inside [start, foot)) is overwritten next. */
	r = edit_put(v, start, len / VHD_SECTOR, data);
	if (r)
		return r;
	v->footer_pos = foot * VHD_SECTOR;
	*at = start * VHD_SECTOR;
	return VHD_OK;
}

/* vhd_strerror, or the host file's errno for an I/O failure. */
const char *edit_strerror(int rc, const struct hostdev *hd)
{
	if (rc == VHD_E_IO && hd && hd->last_errno)
		return strerror(hd->last_errno);
	return vhd_strerror(rc);
}

/* Open path's image (leaf only) for an in-place edit; see vhdtool.h. */
int edit_open(struct chain *c, const char *path, int fmt, int do_sync, unsigned allow)
{
	struct vhd *v;
	int rc = img_open_vhd(c, path, fmt, CHAIN_LEAF_ONLY | CHAIN_EDIT | (do_sync ? 0 : CHAIN_NOSYNC));

	if (rc)
		return rc;
	v = chain_leaf(c);
	if (v->state & VHD_ST_BACKUP_FOOTER)
		rc = cmd_fail(1, "%s: the end footer is damaged (%s): run 'vhdtool repair %s' first", path,
		              vhd_errname(v->end_footer_err), path);
	else if (v->footer_pos % VHD_SECTOR)
		rc = cmd_fail(1, "%s: the footer does not start on a sector (file length %llu): run 'vhdtool repair %s' first",
		              path, (unsigned long long)c->m[0]->hd.dev.size_bytes, path);
	else if (v->footer.saved_state && !(allow & EDIT_ALLOW_SAVED_STATE))
		rc = cmd_fail(1, "%s: the saved-state flag is set (a suspended machine's disk): refusing to change it "
		              "(vhdtool set %s saved-state=0 clears the flag)", path, path);
	if (rc)
		chain_close(c);
	return rc;
}

/* Set the header's parent name (UTF-16BE, 256 units) in raw; VHD_E_LOCATOR if it does not fit. */
int edit_parent_name(uint8_t hdr[1024], const char *name)
{
	uint8_t u[512];

	memset(u, 0, sizeof(u));
	if (vhd_utf16_encode(name, u, 255, 1, 0) < 0)
		return VHD_E_LOCATOR;
	memcpy(hdr + 64, u, sizeof(u));
	return VHD_OK;
}

/* Point locator `code` of hdr at path: data appended (crash-safe), entry updated in hdr (not written). */
int edit_locator(struct vhd *v, uint8_t hdr[1024], uint32_t code, const char *path)
{
	uint8_t data[1024];
	uint8_t *e = NULL;
	uint64_t at;
	int units, r;

	for (int i = 0; i < 8 && !e; i++)
		if (vhd_be32(hdr + 576 + 24 * i) == code)
			e = hdr + 576 + 24 * i;
	for (int i = 0; i < 8 && !e; i++)
		if (vhd_be32(hdr + 576 + 24 * i) == 0)
			e = hdr + 576 + 24 * i;
	if (!e)
		return VHD_E_LOCATOR;   /* eight locators in use: none is ours to replace */
	memset(data, 0, sizeof(data));
	units = vhd_utf16_encode(path, data, (int)sizeof(data) / 2, 0, 1);
	if (units <= 0)
		return VHD_E_LOCATOR;
	if ((r = edit_append(v, data, sizeof(data), &at)))
		return r;
	memset(e, 0, 24);
	vhd_put32(e, code);
	vhd_put32(e + 4, sizeof(data));
	vhd_put32(e + 8, (uint32_t)units * 2);
	vhd_put64(e + 16, at);
	return VHD_OK;
}

/* Clear every locator entry of hdr whose code is not W2ru or W2ku (they would name an old parent). */
void edit_drop_other_locators(uint8_t hdr[1024])
{
	for (int i = 0; i < 8; i++) {
		uint32_t code = vhd_be32(hdr + 576 + 24 * i);
		if (code && code != VHD_PLAT_W2RU && code != VHD_PLAT_W2KU)
			memset(hdr + 576 + 24 * i, 0, 24);
	}
}
