/* vhdblk.c: struct blk_dev over an opened VHD (durable writes: write, then flush), and the probe that finds a VHD on a disk (whole disk or prefix). */
#include "vhdblk.h"
#include "string.h"
#include "console.h"
#include "../vhd/vhd_util.h"

/* vhd_err -> blk_status. */
static int vhdblk_status(int err)
{
	switch (err) {
	case VHD_OK: return BLK_OK;
	case VHD_E_RANGE: return BLK_E_RANGE;
	case VHD_E_READ_ONLY: return BLK_E_RO;
	case VHD_E_NOSPACE: return BLK_E_NOSPACE;
	default: return BLK_E_IO;
	}
}

/* ------------------------------------------------------------------ the disk view */

/* view.read: the disk's sectors (the library only reads inside the image). */
static int vhdblk_view_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct vhdblk_disk *p = d->priv;
	if (lba > d->max_sectors || count > d->max_sectors - lba)
		return BLK_E_RANGE;
	return p->disk->read(p->disk, lba, count, buf);
}

/* view.write: up to the disk's end (BLK_E_NOSPACE past it); the image grows when written past its end. */
static int vhdblk_view_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct vhdblk_disk *p = d->priv;
	if (lba > d->max_sectors || count > d->max_sectors - lba)
		return BLK_E_NOSPACE;
	p->dirty = 1;
	int st = p->disk->write(p->disk, lba, count, buf);
	if (st == BLK_OK && lba + count > d->sectors) {
		d->sectors = lba + count;
		d->size_bytes = d->sectors * BLK_SECTOR;
	}
	return st;
}

/* view.flush: FLUSH CACHE on the disk unless nothing was written since the last one. */
static int vhdblk_view_flush(struct blk_dev *d)
{
	struct vhdblk_disk *p = d->priv;
	if (!p->dirty)
		return BLK_OK;
	int st = p->disk->flush ? p->disk->flush(p->disk) : BLK_OK;
	if (st == BLK_OK)
		p->dirty = 0;
	return st;
}

/* Point p->view at the first image_sectors of disk, writable up to the disk's end. */
static void vhdblk_view_init(struct vhdblk_disk *p, uint64_t image_sectors)
{
	struct blk_dev *v = &p->view;
	memset(v, 0, sizeof(*v));
	k_strlcpy(p->name, p->disk->name ? p->disk->name : "disk", sizeof(p->name));
	v->name = p->name;
	v->sectors = image_sectors;
	v->size_bytes = image_sectors * BLK_SECTOR;
	v->max_sectors = p->disk->max_sectors;
	v->read_only = p->disk->read_only;
	v->read = vhdblk_view_read;
	v->write = p->disk->write ? vhdblk_view_write : 0;
	v->flush = vhdblk_view_flush;
	v->priv = p;
	p->image_sectors = image_sectors;
}

const char *vhdblk_layout_name(int layout)
{
	switch (layout) {
	case VHDBLK_WHOLE: return "whole disk";
	case VHDBLK_PREFIX: return "image at the start of a larger disk";
	case VHDBLK_BACKUP_ONLY: return "footer copy at sector 0 only";
	default: return "no VHD";
	}
}

/* Is raw a footer: cookie and checksum right? */
static int vhdblk_is_footer(const uint8_t *raw)
{
	return !memcmp(raw, VHD_FOOTER_COOKIE, 8) &&
	       vhd_checksum(raw, VHD_SECTOR, 64) == vhd_be32(raw + 64);
}

/* Scratch for the probe (boot time only): one sector and a dynamic header. */
static uint8_t vhdblk_sec[VHD_SECTOR], vhdblk_first[VHD_SECTOR], vhdblk_hdr[1024];

/*
 * The sector just past the metadata and highest allocated block of the
 * dynamic/differencing image whose footer (copy) is foot, where its end
 * footer belongs; 0 if the header is not one or the BAT points past the disk.
 * Parses only what it needs; vhd_open validates everything afterwards.
 */
static uint64_t vhdblk_image_end(const uint8_t *foot, struct blk_dev *disk)
{
	uint64_t hoff = vhd_be64(foot + 16), size = vhd_be64(foot + 48);
	if (hoff % VHD_SECTOR || hoff / VHD_SECTOR + 2 > disk->sectors ||
	    disk->read(disk, hoff / VHD_SECTOR, 2, vhdblk_hdr) != BLK_OK ||
	    memcmp(vhdblk_hdr, VHD_HEADER_COOKIE, 8))
		return 0;
	uint64_t table = vhd_be64(vhdblk_hdr + 16);
	uint32_t entries = vhd_be32(vhdblk_hdr + 28), bsize = vhd_be32(vhdblk_hdr + 32);
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
		const uint8_t *l = vhdblk_hdr + 576 + 24 * i;
		if (!vhd_be32(l))
			continue;
		e = vhd_sectors_of(vhd_be64(l + 16) + vhd_ploc_space_bytes(vhd_be32(l + 4), vhd_be32(l + 8)));
		if (e > end)
			end = e;
	}
	if (end >= disk->sectors)
		return 0;
	for (uint64_t i = 0; i < blocks; i++) {
		if (i % 128 == 0 && disk->read(disk, table / VHD_SECTOR + i / 128, 1, vhdblk_sec) != BLK_OK)
			return 0;
		uint32_t b = vhd_be32(vhdblk_sec + (i % 128) * 4);
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

/* Say once per disk and outcome which case applies (the boot scan may probe a disk several times). */
static int vhdblk_first_report(const struct vhdblk_disk *p)
{
	static const struct blk_dev *last_disk;
	static int last_layout;
	static uint64_t last_sectors;
	if (last_disk == p->disk && last_layout == p->layout && last_sectors == p->image_sectors)
		return 0;
	last_disk = p->disk;
	last_layout = p->layout;
	last_sectors = p->image_sectors;
	return 1;
}

struct blk_dev *vhdblk_probe_disk(struct vhdblk_disk *p, struct blk_dev *disk)
{
	uint8_t *first = vhdblk_first, *sec = vhdblk_sec;
	memset(p, 0, sizeof(*p));
	p->disk = disk;
	if (!disk->sectors || disk->read(disk, disk->sectors - 1, 1, sec) != BLK_OK)
		return NULL;
	if (!memcmp(sec, VHD_FOOTER_COOKIE, 8)) {
		vhdblk_view_init(p, disk->sectors);
		p->layout = VHDBLK_WHOLE;
		if (vhdblk_first_report(p))
			con_printf("vhd: %s: the VHD is the whole disk (footer in its last sector, %llu)\n",
			   p->name, (unsigned long long)(disk->sectors - 1));
		return &p->view;
	}
	if (disk->read(disk, 0, 1, first) != BLK_OK || memcmp(first, VHD_FOOTER_COOKIE, 8))
		return NULL;
	/* A footer copy at 0: a dynamic image written to the start of a larger disk, or a damaged end footer. */
	vhdblk_view_init(p, disk->sectors);
	p->layout = VHDBLK_BACKUP_ONLY;
	uint64_t end = 0;
	uint32_t t = vhd_be32(first + 60);
	if (vhdblk_is_footer(first) && (t == VHD_TYPE_DYNAMIC || t == VHD_TYPE_DIFF))
		end = vhdblk_image_end(first, disk);
	for (uint64_t s = end; end && s < disk->sectors - 1 && s <= end + VHDBLK_SCAN_SECTORS; s++) {
		if (disk->read(disk, s, 1, sec) != BLK_OK)
			break;
		if (!memcmp(sec, first, VHD_SECTOR)) {
			vhdblk_view_init(p, s + 1);
			p->layout = VHDBLK_PREFIX;
			if (vhdblk_first_report(p))
				con_printf("vhd: %s: the VHD is the first %llu of %llu sectors (end footer at %llu%s); new blocks go into the %llu MiB after it\n",
				   p->name, (unsigned long long)(s + 1), (unsigned long long)disk->sectors,
				   (unsigned long long)s, s == end ? "" : ", found by scanning",
				   (unsigned long long)((disk->sectors - s - 1) >> 11));
			return &p->view;
		}
	}
	if (vhdblk_first_report(p))
		con_printf("vhd: %s: footer copy at sector 0 but no end footer (neither in the last sector nor after the image's last block): opening from the copy\n",
		   p->name);
	return &p->view;
}

/* ------------------------------------------------------------------ the virtual disk */

/* First unallocated block in [lba, lba+count) of a dynamic/differencing image, or -1. */
static int64_t vhdblk_free_block(const struct vhd *v, uint64_t lba, uint32_t count)
{
	if (v->footer.type == VHD_TYPE_FIXED || !v->bat || !count)
		return -1;
	for (uint64_t b = lba >> v->spb_shift; b <= (lba + count - 1) >> v->spb_shift; b++)
		if (v->bat[b] == VHD_BAT_FREE)
			return (int64_t)b;
	return -1;
}

/* Log a failed write: LBA, count, what failed, the library's error; no room gets its own explanation. */
static void vhdblk_log_write(struct vhdblk *vb, uint64_t lba, uint32_t count, const char *what, int err)
{
	struct vhd *v = vb->v;
	int64_t blk = vhdblk_free_block(v, lba, count);
	if (err == VHD_E_NOSPACE && blk >= 0) {
		const struct vhdblk_disk *p = v->dev->read == vhdblk_view_read ? v->dev->priv : 0;
		if (p && p->layout == VHDBLK_PREFIX)
			con_printf("vhd: no room to allocate block %lld: the disk is full (image ends at sector %llu of %llu); write LBA %llu count %u refused (INT 13h CCh), nothing written\n",
				   (long long)blk, (unsigned long long)v->dev->sectors,
				   (unsigned long long)v->dev->max_sectors, (unsigned long long)lba, count);
		else if (!p && v->dev->name)  /* a file on FAT or a GRUB module (kernel/select.c names it) */
			con_printf("vhd: %s: no room to allocate block %lld: the image cannot grow (vhdboot never changes a file system; a module's memory is fixed); write LBA %llu count %u refused (INT 13h CCh), nothing written; remedy: use a fixed VHD, or boot with mode=snapshot\n",
				   v->dev->name, (long long)blk, (unsigned long long)lba, count);
		else
			con_printf("vhd: no room to allocate block %lld: the disk ends at the image's footer; write LBA %llu count %u refused (INT 13h CCh), nothing written; remedy: dd the image onto a larger disk (the space after it is used), convert it to fixed, or boot with mode=snapshot\n",
				   (long long)blk, (unsigned long long)lba, count);
		return;
	}
	con_printf("vhd: %s LBA %llu count %u failed: %s (%s)\n", what, (unsigned long long)lba, count,
		   vhd_strerror(err), vhd_errname(err));
}

/* blk_dev.read: count virtual sectors at lba. */
static int vhdblk_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct vhdblk *vb = d->priv;
	int err = vhd_read(vb->v, lba, count, buf);
	if (err && err != VHD_E_RANGE)
		con_printf("vhd: read LBA %llu count %u failed: %s (%s)\n", (unsigned long long)lba, count,
			   vhd_strerror(err), vhd_errname(err));
	return vhdblk_status(err);
}

/* blk_dev.write: vhd_write, then a flush: success means data and metadata are on the disk. */
static int vhdblk_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct vhdblk *vb = d->priv;
	int err = vhd_write(vb->v, lba, count, buf);   /* VHD_E_NOSPACE: refused whole, nothing written */
	if (err) {
		vhdblk_log_write(vb, lba, count, "write", err);
		return vhdblk_status(err);
	}
	err = vhd_flush(vb->v);
	if (err)
		vhdblk_log_write(vb, lba, count, "flush after the write of", err);
	return vhdblk_status(err);
}

/* blk_dev.flush. */
static int vhdblk_flush(struct blk_dev *d)
{
	struct vhdblk *vb = d->priv;
	int err = vhd_flush(vb->v);
	if (err)
		con_printf("vhd: flush failed: %s (%s)\n", vhd_strerror(err), vhd_errname(err));
	return vhdblk_status(err);
}

struct blk_dev *vhdblk_init(struct vhdblk *vb, struct vhd *v, const char *name)
{
	memset(vb, 0, sizeof(*vb));
	vb->v = v;
	k_strlcpy(vb->name, name, sizeof(vb->name));
	vb->blk.name = vb->name;
	vb->blk.sectors = v->sectors;
	vb->blk.size_bytes = v->sectors * VHD_SECTOR;
	vb->blk.max_sectors = v->sectors;
	vb->blk.read_only = (v->flags & VHD_OPEN_RDONLY) != 0;
	vb->blk.read = vhdblk_read;
	vb->blk.write = vhdblk_write;
	vb->blk.flush = vhdblk_flush;
	vb->blk.priv = vb;
	return &vb->blk;
}
