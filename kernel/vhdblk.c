/* vhdblk.c: struct blk_dev over an opened VHD (durable writes: write, then flush), and the probe that finds a VHD on a disk (whole disk or prefix). */
#include "vhdblk.h"
#include "string.h"
#include "console.h"

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

/* Point p->view at the first image_sectors of the disk, writable (growing) up to the disk's end. */
static void vhdblk_view_init(struct vhdblk_disk *p, uint64_t image_sectors)
{
	k_strlcpy(p->name, p->disk->name ? p->disk->name : "disk", sizeof(p->name));
	blk_window_init(&p->win, p->disk, 0, image_sectors, p->disk->max_sectors, p->name);
	p->image_sectors = image_sectors;
}

const char *vhdblk_layout_name(int layout)
{
	return vhd_layout_name(layout);
}

/* Scratch for the probe (boot time only). */
static struct vhd_layout_scratch vhdblk_scratch;

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
	struct vhd_layout_info li;
	memset(p, 0, sizeof(*p));
	p->disk = disk;
	p->layout = vhd_probe_layout(disk, &vhdblk_scratch, &li);
	if (p->layout == VHD_LAYOUT_NONE)
		return NULL;
	vhdblk_view_init(p, li.image_sectors);
	if (!vhdblk_first_report(p))
		return &p->win.dev;
	if (p->layout == VHD_LAYOUT_WHOLE)
		con_printf("vhd: %s: the VHD is the whole disk (footer in its last sector, %llu)\n",
			   p->name, (unsigned long long)li.footer_lba);
	else if (p->layout == VHD_LAYOUT_PREFIX)
		con_printf("vhd: %s: the VHD is the first %llu of %llu sectors (end footer at %llu%s); new blocks go into the %llu MiB after it\n",
			   p->name, (unsigned long long)li.image_sectors, (unsigned long long)disk->sectors,
			   (unsigned long long)li.footer_lba, li.scanned ? ", found by scanning" : "",
			   (unsigned long long)((disk->sectors - li.image_sectors) >> 11));
	else
		con_printf("vhd: %s: footer copy at sector 0 but no end footer (neither in the last sector nor after the image's last block): opening from the copy\n",
			   p->name);
	return &p->win.dev;
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
		const struct vhdblk_disk *p = vb->disk;
		if (p && p->layout == VHD_LAYOUT_PREFIX)
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

struct blk_dev *vhdblk_init(struct vhdblk *vb, struct vhd *v, const struct vhdblk_disk *disk, const char *name)
{
	memset(vb, 0, sizeof(*vb));
	vb->v = v;
	vb->disk = disk;
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
