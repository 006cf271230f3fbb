/* vhdblk.h: an opened VHD seen as a struct blk_dev (what int13.c serves), so int13.c knows nothing of the format. */
#ifndef VHDBLK_H
#define VHDBLK_H

#include "../drivers/blk.h"
#include "../vhd/vhd.h"

struct vhdblk {
	struct blk_dev blk;       /* the virtual disk: sectors = the VHD's virtual size */
	struct vhd *v;            /* opened, BAT loaded */
	char name[24];
};

/* Make vb->blk a device over v (read-only if v was opened VHD_OPEN_RDONLY); returns &vb->blk. */
struct blk_dev *vhdblk_init(struct vhdblk *vb, struct vhd *v, const char *name);

#endif
