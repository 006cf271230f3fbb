/* vhdblk.h: an opened VHD seen as a struct blk_dev (what int13.c serves), so int13.c knows nothing of the format; and where on a disk the VHD lies. */
#ifndef VHDBLK_H
#define VHDBLK_H

#include "../drivers/blk.h"
#include "../vhd/vhd.h"

/* Where the VHD lies on a disk (vhdblk_probe_disk). */
enum vhdblk_layout {
	VHDBLK_NONE = 0,          /* no VHD footer at the end nor a footer copy at sector 0 */
	VHDBLK_WHOLE,             /* the disk ends with the footer: the whole disk is the image */
	VHDBLK_PREFIX,            /* a dynamic/differencing image at the start of a larger disk */
	VHDBLK_BACKUP_ONLY,       /* a footer copy at 0 but no end footer found: opens read-only (damaged) */
};

/* The probed disk: the device the library opens (the disk itself seen through a counting view). */
struct vhdblk_disk {
	struct blk_dev view;      /* prefix: size_bytes = image end, max_sectors = disk size; else the whole disk */
	struct blk_dev *disk;     /* the physical disk */
	int layout;               /* enum vhdblk_layout */
	uint64_t image_sectors;   /* sectors of the image, footer included (prefix and whole) */
	int dirty;                /* writes since the last flush (a flush with nothing to flush is skipped) */
	char name[24];
};

struct vhdblk {
	struct blk_dev blk;       /* the virtual disk: sectors = the VHD's virtual size */
	struct vhd *v;            /* opened, BAT loaded */
	char name[24];
};

/*
 * Find the VHD on disk and fill p: whole disk (footer in the last sector),
 * prefix (no footer at the end, a dynamic footer copy at sector 0, and the
 * same footer right after the image's highest block or metadata, or within
 * VHDBLK_SCAN_SECTORS after it), or backup-only. Logs the case on the
 * console. Returns the device to vhd_open (&p->view), NULL if no VHD at all.
 */
struct blk_dev *vhdblk_probe_disk(struct vhdblk_disk *p, struct blk_dev *disk);
#define VHDBLK_SCAN_SECTORS 4096u
/* Name of a layout for messages ("whole disk", ...). */
const char *vhdblk_layout_name(int layout);

/*
 * Make vb->blk a device over v (read-only if v was opened VHD_OPEN_RDONLY);
 * returns &vb->blk. A write returns success only once vhd_write's data and
 * metadata are flushed to the disk; errors are logged with LBA, count and
 * the library's error name.
 */
struct blk_dev *vhdblk_init(struct vhdblk *vb, struct vhd *v, const char *name);

#endif
