/* vhdblk.h: an opened VHD seen as a struct blk_dev (what int13.c serves), so int13.c knows nothing of the format; and where on a disk the VHD lies. */
#ifndef VHDBLK_H
#define VHDBLK_H

#include "../block/blk.h"
#include "../vhd/vhd.h"

/* The probed disk: the device the library opens (a window over the disk's first image_sectors). */
struct vhdblk_disk {
	struct blk_window win;    /* prefix: sectors = image end, max_sectors = disk size; else the whole disk */
	struct blk_dev *disk;     /* the physical disk */
	int layout;               /* enum vhd_layout (vhd/vhd.h) */
	uint64_t image_sectors;   /* sectors of the image, footer included (prefix and whole) */
	char name[24];
};

struct vhdblk {
	struct blk_dev blk;       /* the virtual disk: sectors = the VHD's virtual size */
	struct vhd *v;            /* opened, BAT loaded */
	const struct vhdblk_disk *disk; /* the raw disk it lies on (NULL: a file or module) */
	char name[24];
};

/*
 * Find the VHD on disk (vhd_probe_layout) and fill p; logs the case on the
 * console once. Returns the device to vhd_open (&p->win.dev), NULL if no VHD.
 */
struct blk_dev *vhdblk_probe_disk(struct vhdblk_disk *p, struct blk_dev *disk);
/* Name of a layout for messages ("whole disk", ...). */
const char *vhdblk_layout_name(int layout);

/*
 * Make vb->blk a device over v (disk: the raw disk v lies on, or NULL) (read-only if v was opened VHD_OPEN_RDONLY);
 * returns &vb->blk. A write returns success only once vhd_write's data and
 * metadata are flushed to the disk; errors are logged with LBA, count and
 * the library's error name.
 */
struct blk_dev *vhdblk_init(struct vhdblk *vb, struct vhd *v, const struct vhdblk_disk *disk, const char *name);

#endif
