/* vhd_fmt.c: the VHD adapter of the image-format interface (image.h) over vhd/: probe (whole disk, prefix, footer copy), open, parents, an opened VHD as a blk_dev (durable writes: write, then flush). */
#include "image.h"
#include "../vhd/vhd.h"
#include "../kernel/string.h"     /* memset, k_strlcpy */
#include "../kernel/console.h"    /* con_printf: the firmware's log */

/* vhd_err -> blk_status. */
static int ivhd_status(int err)
{
	switch (err) {
	case VHD_OK: return BLK_OK;
	case VHD_E_RANGE: return BLK_E_RANGE;
	case VHD_E_READ_ONLY: return BLK_E_RO;
	case VHD_E_NOSPACE: return BLK_E_NOSPACE;
	default: return BLK_E_IO;
	}
}

/* "fixed", "dynamic", "differencing" for a footer's disk type. */
static const char *ivhd_type_name(uint32_t t)
{
	return t == VHD_TYPE_FIXED ? "fixed" : t == VHD_TYPE_DYNAMIC ? "dynamic" :
	       t == VHD_TYPE_DIFF ? "differencing" : "unknown";
}

/* ------------------------------------------------------------------ probe: where the VHD lies */

/* Point p->win at the first image_sectors of the disk, writable (growing) up to the disk's end. */
static void ivhd_view_init(struct img_place *p, uint64_t image_sectors)
{
	k_strlcpy(p->name, p->disk->name ? p->disk->name : "disk", sizeof(p->name));
	blk_window_init(&p->win, p->disk, 0, image_sectors, p->disk->max_sectors, p->name);
	p->image_sectors = image_sectors;
}

/* Scratch for the probe (boot time only). */
static struct vhd_layout_scratch ivhd_scratch;

/* Say once per disk and outcome which case applies (the boot scan may probe a disk several times). */
static int ivhd_first_report(const struct img_place *p)
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

/* img_format.probe: a raw disk by vhd_probe_layout (logged once per outcome); else an end footer. */
static struct blk_dev *ivhd_probe(struct img_place *p, struct blk_dev *disk, unsigned flags)
{
	struct vhd_layout_info li;
	memset(p, 0, sizeof(*p));
	if (!(flags & IMG_PROBE_DISK))
		return vhd_has_end_footer(disk, ivhd_scratch.sec) ? disk : NULL;
	p->disk = disk;
	p->layout = vhd_probe_layout(disk, &ivhd_scratch, &li);
	if (p->layout == VHD_LAYOUT_NONE)
		return NULL;
	ivhd_view_init(p, li.image_sectors);
	if (!ivhd_first_report(p))
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

/* ------------------------------------------------------------------ open, map, info, parents */

/* img_format.open: vhd_open; an image marked "saved state" is opened again read-only, with a warning. */
static int ivhd_open(void *im, struct blk_dev *dev, unsigned flags, const char *name)
{
	unsigned vflags = (flags & IMG_OPEN_RDONLY) ? VHD_OPEN_RDONLY : 0;
	int rc = vhd_open(im, dev, vflags);
	if (rc == VHD_E_SAVED_STATE && !(vflags & VHD_OPEN_RDONLY)) {
		con_printf("vhd: WARNING: %s is marked \"saved state\" (a VM was suspended on it): opening it read-only\n",
			   name);
		rc = vhd_open(im, dev, vflags | VHD_OPEN_RDONLY);
	}
	return rc;
}

/* img_format.load: the BAT into map, then (scratch given) the overlap check. */
static int ivhd_load(void *im, void *map, void *scratch)
{
	if (!map)
		return VHD_E_NOSPACE;
	int err = vhd_load_bat(im, map);
	if (!err && scratch)
		err = vhd_check_overlaps(im, scratch);
	return err;
}

/* img_format.info. */
static void ivhd_info(const void *im, struct img_info *out)
{
	const struct vhd *v = im;
	out->sectors = v->sectors;
	out->read_only = (v->flags & VHD_OPEN_RDONLY) != 0;
	out->needs_parent = v->footer.type == VHD_TYPE_DIFF;
	out->parent = v->parent;
	out->type = ivhd_type_name(v->footer.type);
	out->map_bytes = (uint32_t)vhd_bat_bytes(v);
}

/* The caller's ops and context behind the resolver's VHD-typed res_ops. */
struct ivhd_bridge {
	const struct img_parent_ops *ops;
	void *ctx;
};

/* res_ops.open_path: the caller's open_path, its image taken as a struct vhd. */
static int ivhd_res_open(void *ctx, const struct res_try *t, struct vhd **pv, const char **path, int *err,
			 char *why, size_t wn)
{
	struct ivhd_bridge *b = ctx;
	void *im = NULL;
	int rc = b->ops->open_path(b->ctx, t, &im, path, err, why, wn);
	*pv = im;
	return rc;
}

/* res_ops.close: the caller's close. */
static void ivhd_res_close(void *ctx, struct vhd *v)
{
	struct ivhd_bridge *b = ctx;
	if (b->ops->close)
		b->ops->close(b->ctx, v);
}

/* img_format.find_parent: res_find_parent (the W2ru/W2ku/MacX/parent-name try list) through the caller's ops. */
static int ivhd_find_parent(const struct img_parent_ops *ops, void *ctx, struct res_work *w, void *child,
			    const char *child_path, const void *leaf, unsigned res_flags, void **parent,
			    const char **parent_path, char *why, size_t wn)
{
	struct ivhd_bridge b = { ops, ctx };
	struct res_ops ro = { ivhd_res_open, ivhd_res_close, ops->ignore_ts_hint };
	struct vhd *pv = NULL;
	int rc = res_find_parent(&ro, &b, w, child, child_path, leaf, res_flags, &pv, parent_path, why, wn);
	*parent = pv;
	return rc == VHD_E_PARENT_NOT_FOUND ? IMG_NO_PARENT : rc;
}

/* img_format.describe: type, size, footer geometry, creator; a damaged end footer; the block size. */
static void ivhd_describe(const void *im, int drive, const char *name)
{
	const struct vhd *v = im;
	con_printf("vhd: %02xh: %s: %s, %llu MiB (%llu sectors), footer CHS %u/%u/%u, creator \"%s\"\n",
		   drive, name, ivhd_type_name(v->footer.type), (unsigned long long)(v->sectors >> 11),
		   (unsigned long long)v->sectors, v->footer.cylinders, v->footer.heads, v->footer.spt,
		   v->footer.creator_app);
	if (v->state & VHD_ST_BACKUP_FOOTER)
		con_printf("vhd: WARNING: end footer damaged (%s); using the copy at offset 0\n",
			   vhd_strerror(v->end_footer_err));
	if (v->footer.type != VHD_TYPE_FIXED)
		con_printf("vhd: block size %u KiB, %u blocks, BAT %u bytes\n", v->block_size >> 10,
			   v->blocks, (unsigned)vhd_bat_bytes(v));
}

/* ------------------------------------------------------------------ the virtual disk */

/* First unallocated block in [lba, lba+count) of a dynamic/differencing image, or -1. */
static int64_t ivhd_free_block(const struct vhd *v, uint64_t lba, uint32_t count)
{
	if (v->footer.type == VHD_TYPE_FIXED || !v->bat || !count)
		return -1;
	for (uint64_t b = lba >> v->spb_shift; b <= (lba + count - 1) >> v->spb_shift; b++)
		if (v->bat[b] == VHD_BAT_FREE)
			return (int64_t)b;
	return -1;
}

/* Log a failed write: LBA, count, what failed, the library's error; no room gets its own explanation. */
static void ivhd_log_write(struct img_blk *vb, uint64_t lba, uint32_t count, const char *what, int err)
{
	struct vhd *v = vb->im;
	int64_t blk = ivhd_free_block(v, lba, count);
	if (err == VHD_E_NOSPACE && blk >= 0) {
		const struct img_place *p = vb->place;
		if (p && p->layout == VHD_LAYOUT_PREFIX)
			con_printf("vhd: no room to allocate block %lld: the disk is full (image ends at sector %llu of %llu); write LBA %llu count %u refused (%s), nothing written\n",
				   (long long)blk, (unsigned long long)v->dev->sectors,
				   (unsigned long long)v->dev->max_sectors, (unsigned long long)lba, count, img_refusal());
		else if (!p && v->dev->name)  /* a file on FAT or a GRUB module (kernel/imgopen.c names it) */
			con_printf("vhd: %s: no room to allocate block %lld: the image cannot grow (a file grows only on FAT16/32 or exFAT, never on NTFS or with grow=no, and not past a full volume: the boot log's extent line says which; a module's memory is fixed); write LBA %llu count %u refused (%s), nothing written; remedy: use a fixed VHD, free space on the volume, or boot with mode=snapshot\n",
				   v->dev->name, (long long)blk, (unsigned long long)lba, count, img_refusal());
		else
			con_printf("vhd: no room to allocate block %lld: the disk ends at the image's footer; write LBA %llu count %u refused (%s), nothing written; remedy: dd the image onto a larger disk (the space after it is used), convert it to fixed, or boot with mode=snapshot\n",
				   (long long)blk, (unsigned long long)lba, count, img_refusal());
		return;
	}
	con_printf("vhd: %s LBA %llu count %u failed: %s (%s)\n", what, (unsigned long long)lba, count,
		   vhd_strerror(err), vhd_errname(err));
}

/* blk_dev.read: count virtual sectors at lba. */
static int ivhd_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct img_blk *vb = d->priv;
	int err = vhd_read(vb->im, lba, count, buf);
	if (err && err != VHD_E_RANGE)
		con_printf("vhd: read LBA %llu count %u failed: %s (%s)\n", (unsigned long long)lba, count,
			   vhd_strerror(err), vhd_errname(err));
	return ivhd_status(err);
}

/* blk_dev.write: vhd_write, then a flush: success means data and metadata are on the disk. */
static int ivhd_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct img_blk *vb = d->priv;
	int err = vhd_write(vb->im, lba, count, buf);   /* VHD_E_NOSPACE: refused whole, nothing written */
	if (err) {
		ivhd_log_write(vb, lba, count, "write", err);
		return ivhd_status(err);
	}
	err = vhd_flush(vb->im);
	if (err)
		ivhd_log_write(vb, lba, count, "flush after the write of", err);
	return ivhd_status(err);
}

/* blk_dev.flush. */
static int ivhd_flush(struct blk_dev *d)
{
	struct img_blk *vb = d->priv;
	int err = vhd_flush(vb->im);
	if (err)
		con_printf("vhd: flush failed: %s (%s)\n", vhd_strerror(err), vhd_errname(err));
	return ivhd_status(err);
}

/* blk_dev.linear: a fixed VHD's data is its file's first sectors as they are; dynamic and differencing data is not. */
static int ivhd_linear(const struct blk_dev *d, struct blk_dev **under, uint64_t *start)
{
	const struct img_blk *vb = d->priv;
	const struct vhd *v = vb->im;
	if (v->footer.type != VHD_TYPE_FIXED || v->parent)
		return 0;
	*under = v->dev;
	*start = 0;
	return 1;
}

/* blk_dev.window: a dynamic or differencing VHD's fully written block is its file's sectors as they are (start + s). */
static int ivhd_window(struct blk_dev *d, uint64_t lba, struct blk_dev **under, uint64_t *start, uint64_t *lo,
		       uint64_t *hi)
{
	struct img_blk *vb = d->priv;
	struct vhd *v = vb->im;
	uint64_t first, fs;
	uint32_t n;
	if (vhd_plain_block(v, lba, &first, &n, &fs) != 1)
		return 0;
	*under = v->dev;
	*start = fs - first;      /* modulo 2^64: start + s is the file sector of virtual sector s */
	*lo = first;
	*hi = first + n;
	return 1;
}

/* img_format.as_blk: read-only if the VHD was opened read-only; errors logged with LBA, count and the library's error name. */
static struct blk_dev *ivhd_as_blk(struct img_blk *vb, void *im, const struct img_place *place, const char *name)
{
	struct vhd *v = im;
	struct blk_dev *d = img_blk_init(vb, v, place, name, v->sectors, (v->flags & VHD_OPEN_RDONLY) != 0, ivhd_read,
					 ivhd_write, ivhd_flush);
	d->linear = ivhd_linear;
	d->window = ivhd_window;
	d->window_unit = v->spb;  /* a block (vhd_plain_block's unit) */
	return d;
}

static const char *const ivhd_suffixes[] = { ".vhd", NULL };

static const struct img_format ivhd_format = {
	.name = "VHD",
	.suffixes = ivhd_suffixes,
	.flags = IMG_FMT_FALLBACK,    /* vhd_open explains a missing footer */
	.state_bytes = sizeof(struct vhd),
	.probe = ivhd_probe,
	.open = ivhd_open,
	.load = ivhd_load,
	.info = ivhd_info,
	.find_parent = ivhd_find_parent,
	.as_blk = ivhd_as_blk,
	.describe = ivhd_describe,
	.strerror = vhd_strerror,
	.errname = vhd_errname,
};
IMG_FORMAT(ivhd_format);
