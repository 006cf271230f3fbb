/* vhdblk.c: struct blk_dev over an opened VHD: reads/writes go through the VHD library. */
#include "vhdblk.h"
#include "string.h"

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

/* blk_dev.read: count virtual sectors at lba. */
static int vhdblk_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct vhdblk *vb = d->priv;
	return vhdblk_status(vhd_read(vb->v, lba, count, buf));
}

/* blk_dev.write: refused with BLK_E_RO for a read-only open (the library checks). */
static int vhdblk_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct vhdblk *vb = d->priv;
	return vhdblk_status(vhd_write(vb->v, lba, count, buf));
}

/* blk_dev.flush. */
static int vhdblk_flush(struct blk_dev *d)
{
	struct vhdblk *vb = d->priv;
	return vhdblk_status(vhd_flush(vb->v));
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
