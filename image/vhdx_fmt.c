/* vhdx_fmt.c: the VHDX adapter of the image-format interface (image.h) over vhdx/: probe (file identifier), open (log replayed to the file, or into memory for read-only opens), parents by the VHDX locator, an opened VHDX as a blk_dev (durable writes). */
#include "image.h"
#include "../vhdx/vhdx.h"
#include "../kernel/string.h"     /* memset, k_strlcpy */
#include "../kernel/console.h"    /* con_printf: the firmware's log */

/* vhdx_err -> blk_status. */
static int ivx_status(int err)
{
	switch (err) {
	case VHDX_OK: return BLK_OK;
	case VHDX_E_RANGE: return BLK_E_RANGE;
	case VHDX_E_READ_ONLY: return BLK_E_RO;
	case VHDX_E_NOSPACE: return BLK_E_NOSPACE;
	default: return BLK_E_IO;
	}
}

/* "fixed", "dynamic", "differencing" for an opened VHDX. */
static const char *ivx_type_name(const struct vhdx *v)
{
	return v->has_parent ? "differencing" : v->leave_allocated ? "fixed" : "dynamic";
}

/* ------------------------------------------------------------------ probe */

/* Sector scratch for the probe (boot time only). */
static uint8_t ivx_sec[VHDX_SECTOR];

/*
 * img_format.probe: the "vhdxfile" identifier in the first sector. On a raw
 * disk the image is the whole disk (VHDX has no end marker to find a
 * prefix by): its file size is the disk's, so a dynamic VHDX there grows
 * only into space inside it.
 */
static struct blk_dev *ivx_probe(struct img_place *p, struct blk_dev *disk, unsigned flags)
{
	memset(p, 0, sizeof(*p));
	if (!vhdx_probe(disk, ivx_sec))
		return NULL;
	if (!(flags & IMG_PROBE_DISK))
		return disk;
	p->disk = disk;
	k_strlcpy(p->name, disk->name ? disk->name : "disk", sizeof(p->name));
	blk_window_init(&p->win, disk, 0, disk->sectors, disk->sectors, p->name);
	p->image_sectors = disk->sectors;
	return &p->win.dev;
}

/* ------------------------------------------------------------------ open */

/* splitmix64 step: the GUID generator's mixer. */
static uint64_t ivx_mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/*
 * A random (version 4) GUID for a write session. The firmware has no
 * entropy source but time: the TSC at each call (its low bits differ run to
 * run), a counter and the state's address are mixed; uniqueness, not
 * secrecy, is what the headers need.
 */
static void ivx_guid(struct vhdx_guid *g, const void *salt)
{
	static uint64_t calls;
	uint64_t s = __builtin_ia32_rdtsc() ^ (uint64_t)(uintptr_t)salt ^ (++calls << 48);
	for (int i = 0; i < 16; i += 8) {
		uint64_t r = ivx_mix(&s);
		for (int j = 0; j < 8; j++)
			g->b[i + j] = (uint8_t)(r >> (8 * j));
	}
	g->b[7] = (uint8_t)((g->b[7] & 0x0F) | 0x40);   /* version 4 (Data3 is stored little-endian) */
	g->b[8] = (uint8_t)((g->b[8] & 0x3F) | 0x80);   /* RFC 4122 variant */
}

/*
 * img_format.open: writable opens replay a pending log into the file (and
 * flush); read-only opens (mode=ro, snapshot, parents, the scan) replay it
 * into memory from img_alloc, sized by what the library reports it needs.
 */
static int ivx_open(void *im, struct blk_dev *dev, unsigned flags, const char *name)
{
	struct vhdx *v = im;
	struct vhdx_session sess;
	struct vhdx_open_opts o;
	(void)name;
	memset(&o, 0, sizeof(o));
	if (!(flags & IMG_OPEN_RDONLY)) {
		ivx_guid(&sess.file_write, v);
		ivx_guid(&sess.data_write, v);
		ivx_guid(&sess.log_guid, v);
		o.session = &sess;
		return vhdx_open(v, dev, 0, &o);
	}
	int rc = vhdx_open(v, dev, VHDX_OPEN_RDONLY, &o);
	if (rc != VHDX_E_LOG_OVERLAY || !v->log_need || v->log_need > 0xFFFFFFF0u)
		return rc;
	uint64_t need = v->log_need;
	o.overlay = img_alloc((uint32_t)need, 16);
	o.overlay_bytes = (size_t)need;
	if (!o.overlay) {
		con_printf("vhdx: %s: its log must be replayed, read-only, into %llu KiB of memory, which is not available\n",
			   name, (unsigned long long)(need >> 10));
		return VHDX_E_LOG_OVERLAY;
	}
	memset(v, 0, sizeof(*v));
	return vhdx_open(v, dev, VHDX_OPEN_RDONLY, &o);
}

/* img_format.load: the BAT into map, then (scratch given) the overlap check. */
static int ivx_load(void *im, void *map, void *scratch)
{
	if (!map)
		return VHDX_E_BAT_NOT_LOADED;
	int err = vhdx_load_bat(im, map);
	if (!err && scratch)
		err = vhdx_check_overlaps(im, scratch);
	return err;
}

/* img_format.info. */
static void ivx_info(const void *im, struct img_info *out)
{
	const struct vhdx *v = im;
	out->sectors = v->sectors;
	out->read_only = (v->flags & VHDX_OPEN_RDONLY) != 0;
	out->needs_parent = v->has_parent;
	out->parent = v->parent;
	out->type = ivx_type_name(v);
	out->map_bytes = (uint32_t)vhdx_bat_bytes(v);
}

/* ------------------------------------------------------------------ parents */

/* The caller's ops and context behind the resolver's VHDX-typed res_vhdx_ops. */
struct ivx_bridge {
	const struct img_parent_ops *ops;
	void *ctx;
};

/* res_vhdx_ops.open_path: the caller's open_path, its image taken as a struct vhdx. */
static int ivx_res_open(void *ctx, const struct res_try *t, struct vhdx **pv, const char **path, int *err,
			char *why, size_t wn)
{
	struct ivx_bridge *b = ctx;
	void *im = NULL;
	int rc = b->ops->open_path(b->ctx, t, &im, path, err, why, wn);
	*pv = im;
	return rc;
}

/* res_vhdx_ops.close: the caller's close. */
static void ivx_res_close(void *ctx, struct vhdx *v)
{
	struct ivx_bridge *b = ctx;
	if (b->ops->close)
		b->ops->close(b->ctx, v);
}

/*
 * img_format.find_parent: res_vhdx_find_parent (the child's locator paths
 * relative_path, volume_path, absolute_win32_path, base names beside the
 * child, each attached with vhdx_set_parent: linkage, size, loops, depth)
 * through the caller's ops (read-only, same format: a VHD parent is refused
 * by the VHDX probe).
 */
static int ivx_find_parent(const struct img_parent_ops *ops, void *ctx, struct res_work *w, void *child,
			   const char *child_path, const void *leaf, unsigned res_flags, void **parent,
			   const char **parent_path, char *why, size_t wn)
{
	struct ivx_bridge b = { ops, ctx };
	struct res_vhdx_ops ro = { ivx_res_open, ivx_res_close };
	struct vhdx *pv = NULL;
	int rc = res_vhdx_find_parent(&ro, &b, w, child, child_path, leaf, res_flags, &pv, parent_path, why, wn);
	*parent = pv;
	return rc == VHDX_E_PARENT_NOT_FOUND ? IMG_NO_PARENT : rc;
}

/* img_format.describe: type, size, block size, and what the open found (torn copies, the log). */
static void ivx_describe(const void *im, int drive, const char *name)
{
	const struct vhdx *v = im;
	con_printf("vhdx: %02xh: %s: %s VHDX, %llu MiB (%llu sectors), block size %u MiB, logical/physical sector %u/%u bytes\n",
		   drive, name, ivx_type_name(v), (unsigned long long)(v->sectors >> 11),
		   (unsigned long long)v->sectors, v->block_size >> 20, v->lss, v->pss);
	if (v->state & VHDX_ST_HEADER_COPY_BAD)
		con_printf("vhdx: WARNING: header copy %d is damaged (%s): opened from the other (a torn header update)\n",
			   v->hdr_err[0] ? 0 : 1, vhdx_errname(v->hdr_err[0] ? v->hdr_err[0] : v->hdr_err[1]));
	if (v->state & VHDX_ST_REGION_COPY_BAD)
		con_printf("vhdx: WARNING: region table copy %d is damaged (%s): using the other\n",
			   v->rt_err[0] ? 0 : 1, vhdx_errname(v->rt_err[0] ? v->rt_err[0] : v->rt_err[1]));
	if (v->state & VHDX_ST_LOG_REPLAYED)
		con_printf("vhdx: the image was not closed cleanly: %u log entries replayed into the file and flushed\n",
			   v->log_replayed);
	if (v->state & VHDX_ST_LOG_OVERLAY)
		con_printf("vhdx: the image was not closed cleanly: %u log entries replayed into memory only (%llu KiB; opened read-only, the file is not changed)\n",
			   v->log_replayed, (unsigned long long)(v->ovl_used >> 10));
	if (v->state & VHDX_ST_LOG_IGNORED)
		con_printf("vhdx: the header names a log but it holds no valid entry sequence (torn entries ignored, as the specification says)\n");
}

/* ------------------------------------------------------------------ the virtual disk */

/* Log a failed write; no room gets its own explanation and remedy. */
static void ivx_log_write(struct img_blk *b, uint64_t lba, uint32_t count, const char *what, int err)
{
	if (err == VHDX_E_NOSPACE) {
		con_printf("vhdx: %s: no room for a new block: the image cannot grow (%s); write LBA %llu count %u refused (%s), nothing written; remedy: use a fixed VHDX, or boot with mode=snapshot\n",
			   b->name, b->place ? "it fills its disk" : "a file grows only on FAT16/32 or exFAT, never on NTFS or with grow=no, and not past a full volume: the boot log's extent line says which; a module's memory is fixed",
			   (unsigned long long)lba, count, img_refusal());
		return;
	}
	con_printf("vhdx: %s LBA %llu count %u failed: %s (%s)\n", what, (unsigned long long)lba, count,
		   vhdx_strerror(err), vhdx_errname(err));
}

/* blk_dev.read: count virtual sectors at lba. */
static int ivx_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct img_blk *b = d->priv;
	int err = vhdx_read(b->im, lba, count, buf);
	if (err && err != VHDX_E_RANGE)
		con_printf("vhdx: read LBA %llu count %u failed: %s (%s)\n", (unsigned long long)lba, count,
			   vhdx_strerror(err), vhdx_errname(err));
	return ivx_status(err);
}

/* blk_dev.write: vhdx_write (new blocks through the log, flushed), then a flush: success means durable. */
static int ivx_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct img_blk *b = d->priv;
	int err = vhdx_write(b->im, lba, count, buf);
	if (err) {
		ivx_log_write(b, lba, count, "write", err);
		return ivx_status(err);
	}
	err = vhdx_flush(b->im);
	if (err)
		ivx_log_write(b, lba, count, "flush after the write of", err);
	return ivx_status(err);
}

/* blk_dev.flush. */
static int ivx_flush(struct blk_dev *d)
{
	struct img_blk *b = d->priv;
	int err = vhdx_flush(b->im);
	if (err)
		con_printf("vhdx: flush failed: %s (%s)\n", vhdx_strerror(err), vhdx_errname(err));
	return ivx_status(err);
}

/*
 * A writable VHDX on a raw disk (whole disk, or dd'd onto a larger one)
 * has the disk's size as its file size, which leaves no room for new
 * blocks. Its real end is where its last structure ends (header section,
 * log, BAT, metadata, every block with space in the file, whatever its
 * state): everything after that is
 * unused by definition, so new blocks go there, and the log records that
 * end as the file's. Only for images with just the two known regions (an
 * unknown optional region's extent is not kept).
 */
static void ivx_reclaim_tail(struct vhdx *v, const struct img_place *place)
{
	if (!place || !place->disk || (v->flags & VHDX_OPEN_RDONLY) || !v->bat || v->regions != 2)
		return;
	uint64_t end = VHDX_MIB;
	uint64_t ends[3] = { v->hdr.log_offset + v->hdr.log_length, v->bat_off + v->bat_len, v->meta_off + v->meta_len };
	for (int i = 0; i < 3; i++)
		end = ends[i] > end ? ends[i] : end;
	uint64_t cr1 = v->chunk_ratio + 1ull;
	for (uint64_t i = 0; i < v->bat_entries; i++) {
		int sb = i % cr1 == v->chunk_ratio;
		if (!vhdx_bat_mb(v->bat[i]))      /* any state with space in the file keeps it (zero-state preallocation) */
			continue;
		uint64_t e = (vhdx_bat_mb(v->bat[i]) << 20) + (sb ? VHDX_MIB : v->block_size);
		end = e > end ? e : end;
	}
	end = (end + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
	if (end >= v->file_bytes)
		return;
	con_printf("vhdx: %s: the VHDX's structures end at %llu MiB of the disk's %llu MiB: new blocks go into the space after them\n",
		   place->name, (unsigned long long)(end >> 20), (unsigned long long)(v->file_bytes >> 20));
	v->file_bytes = end;
	v->alloc_end = end;
}

/* img_format.as_blk: read-only if the VHDX was opened read-only. */
static struct blk_dev *ivx_as_blk(struct img_blk *b, void *im, const struct img_place *place, const char *name)
{
	struct vhdx *v = im;
	ivx_reclaim_tail(v, place);
	return img_blk_init(b, v, place, name, v->sectors, (v->flags & VHDX_OPEN_RDONLY) != 0, ivx_read, ivx_write,
			    ivx_flush);
}

static const char *const ivx_suffixes[] = { ".vhdx", NULL };

static const struct img_format ivx_format = {
	.name = "VHDX",
	.suffixes = ivx_suffixes,
	.flags = 0,
	.state_bytes = sizeof(struct vhdx),
	.probe = ivx_probe,
	.open = ivx_open,
	.load = ivx_load,
	.info = ivx_info,
	.find_parent = ivx_find_parent,
	.as_blk = ivx_as_blk,
	.describe = ivx_describe,
	.strerror = vhdx_strerror,
	.errname = vhdx_errname,
};
IMG_FORMAT(ivx_format);
