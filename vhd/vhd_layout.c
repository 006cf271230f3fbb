/* vhd_layout.c: where a VHD lies on a raw device: the whole device, a dynamic image at the start of a larger one, or only a footer copy at sector 0. */
#include "vhd.h"
#include "vhd_util.h"

const char *vhd_layout_name(int layout)
{
	switch (layout) {
	case VHD_LAYOUT_WHOLE: return "whole disk";
	case VHD_LAYOUT_PREFIX: return "image at the start of a larger disk";
	case VHD_LAYOUT_BACKUP_ONLY: return "footer copy at sector 0 only";
	default: return "no VHD";
	}
}

/* Is raw a footer: cookie and checksum right? */
static int vhd_layout_is_footer(const uint8_t *raw)
{
	return !VHD_MEMCMP(raw, VHD_FOOTER_COOKIE, 8) &&
	       vhd_checksum(raw, VHD_SECTOR, VHD_FOOTER_CSUM_OFF) == vhd_be32(raw + VHD_FOOTER_CSUM_OFF);
}

/*
 * The sector just past the metadata and highest allocated block of the
 * dynamic/differencing image whose footer (copy) is foot, where its end
 * footer belongs; 0 if the header is not one or the BAT points past the
 * disk. Parses only what it needs; vhd_open validates everything later.
 */
static uint64_t vhd_layout_image_end(const uint8_t *foot, struct blk_dev *disk, struct vhd_layout_scratch *s)
{
	uint64_t hoff = vhd_be64(foot + 16), size = vhd_be64(foot + 48);
	if (hoff % VHD_SECTOR || hoff / VHD_SECTOR + 2 > disk->sectors ||
	    blk_read(disk, hoff / VHD_SECTOR, 2, s->hdr) != BLK_OK ||
	    VHD_MEMCMP(s->hdr, VHD_HEADER_COOKIE, 8))
		return 0;
	uint64_t table = vhd_be64(s->hdr + 16);
	uint32_t entries = vhd_be32(s->hdr + 28), bsize = vhd_be32(s->hdr + 32);
	if (bsize < VHD_SECTOR || (bsize & (bsize - 1)) || table % VHD_SECTOR)
		return 0;
	uint32_t spb = bsize / VHD_SECTOR;
	uint64_t bitmap = vhd_sectors_of((spb + 7) / 8);
	uint64_t blocks = (size + bsize - 1) / bsize;
	if (blocks > entries)
		blocks = entries;
	uint64_t end = vhd_sectors_of(hoff + 1024);
	uint64_t e = vhd_sectors_of(table + (uint64_t)entries * 4);
	if (e > end)
		end = e;
	for (int i = 0; vhd_be32(foot + 60) == VHD_TYPE_DIFF && i < 8; i++) {
		const uint8_t *l = s->hdr + 576 + 24 * i;
		if (!vhd_be32(l))
			continue;
		e = vhd_sectors_of(vhd_be64(l + 16) + vhd_ploc_space_bytes(vhd_be32(l + 4), vhd_be32(l + 8)));
		if (e > end)
			end = e;
	}
	if (end >= disk->sectors)
		return 0;
	for (uint64_t i = 0; i < blocks; i++) {
		if (i % 128 == 0 && blk_read(disk, table / VHD_SECTOR + i / 128, 1, s->sec) != BLK_OK)
			return 0;
		uint32_t b = vhd_be32(s->sec + (i % 128) * 4);
		if (b == VHD_BAT_FREE)
			continue;
		e = (uint64_t)b + bitmap + spb;
		if (e >= disk->sectors)
			return 0;
		if (e > end)
			end = e;
	}
	return end;
}

int vhd_has_end_footer(struct blk_dev *dev, uint8_t *sec)
{
	return dev->sectors && blk_read(dev, dev->sectors - 1, 1, sec) == BLK_OK &&
	       !VHD_MEMCMP(sec, VHD_FOOTER_COOKIE, 8);
}

int vhd_probe_layout(struct blk_dev *disk, struct vhd_layout_scratch *s, struct vhd_layout_info *out)
{
	uint8_t *first = s->first, *sec = s->sec;
	VHD_MEMSET(out, 0, sizeof(*out));
	if (!disk->sectors || blk_read(disk, disk->sectors - 1, 1, sec) != BLK_OK)
		return VHD_LAYOUT_NONE;
	if (!VHD_MEMCMP(sec, VHD_FOOTER_COOKIE, 8)) {
		out->layout = VHD_LAYOUT_WHOLE;
		out->image_sectors = disk->sectors;
		out->footer_lba = disk->sectors - 1;
		return out->layout;
	}
	if (blk_read(disk, 0, 1, first) != BLK_OK || VHD_MEMCMP(first, VHD_FOOTER_COOKIE, 8))
		return VHD_LAYOUT_NONE;
	/* A footer copy at 0: a dynamic image written to the start of a larger disk, or a damaged end footer. */
	out->layout = VHD_LAYOUT_BACKUP_ONLY;
	out->image_sectors = disk->sectors;
	uint64_t end = 0;
	uint32_t t = vhd_be32(first + 60);
	if (vhd_layout_is_footer(first) && (t == VHD_TYPE_DYNAMIC || t == VHD_TYPE_DIFF))
		end = vhd_layout_image_end(first, disk, s);
	for (uint64_t lba = end; end && lba < disk->sectors - 1 && lba <= end + VHD_LAYOUT_SCAN_SECTORS; lba++) {
		if (blk_read(disk, lba, 1, sec) != BLK_OK)
			break;
		if (!VHD_MEMCMP(sec, first, VHD_SECTOR)) {
			out->layout = VHD_LAYOUT_PREFIX;
			out->image_sectors = lba + 1;
			out->footer_lba = lba;
			out->scanned = lba != end;
			return out->layout;
		}
	}
	return out->layout;
}
