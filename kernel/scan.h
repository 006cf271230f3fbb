/* scan.h: lists the image candidates on every registered disk (whole-disk images, image partitions, image files on FAT volumes: every format of image/image.h) and on GRUB modules. */
#ifndef SCAN_H
#define SCAN_H

#include <stddef.h>
#include "cand.h"

#define SCAN_MAX_CANDS 16         /* images listed by one scan */

/* The candidates found (unchecked until iop_check). */
struct scan_list {
	struct sel_cand cands[SCAN_MAX_CANDS];
	int n;
};

/* Forget the work areas (the scratch was reset by iop_init): call at the start of each selection. */
void scan_reset(void);
/* Add every place of every disk (not modules) that may hold an image to l; logs what each disk holds. */
void scan_disks(struct scan_list *l);
/* Add every GRUB module (DISK_RAM entries) to l. */
void scan_modules(struct scan_list *l);
/* Find the first FAT volume (any disk, any partition) with a file at path; fills c (kind SEL_FILE) and returns 1, else 0. */
int scan_find_path(struct sel_cand *c, const char *path);
/* A volume: disk index and partition (0: the whole disk). */
struct scan_vol {
	int disk;
	uint32_t part;
};
/* Every FAT, exFAT or NTFS volume of every disk (not modules), in scan order, into out[0..max); returns the count. */
int scan_volumes(struct scan_vol *out, int max);
/*
 * The first volume whose file-system label equals name (by = 1, ASCII case
 * ignored) or whose GPT unique partition GUID is name (by = 2, text form,
 * case ignored): 1 with *out set, else 0. by is enum cmdline_vol_by.
 */
int scan_find_volume(int by, const char *name, struct scan_vol *out);
/* One line describing a checked candidate (kind, type, size, chain) into out. */
void scan_describe(const struct sel_cand *c, char *out, size_t n);

#endif
