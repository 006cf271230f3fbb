/* select.h: finds VHD images (whole disks, partitions, files on FAT, GRUB modules), chooses them (vhd=, menu) and opens their chains in resident memory. */
#ifndef SELECT_H
#define SELECT_H

#include <stdint.h>
#include "cmdline.h"
#include "../drivers/ata.h"
#include "../vhd/vhd.h"
#include "vhdblk.h"

#define SEL_MAX_CANDS 16          /* images listed by one scan */
#define SEL_MAX_IMAGES CMDLINE_MAX_VHDS
#define SEL_MAX_MODULES 8
#define SEL_PATH_MAX 256          /* a path on a FAT volume, UTF-8 */
#define SEL_NAME_MAX 280          /* "hd0,12:/images/win.vhd" */
#define SEL_SCRATCH (1u << 20)    /* temporary memory for the scan, just above the kernel's load image */

/* Where an image lives. */
enum sel_kind { SEL_DISK = 1, SEL_PART, SEL_FILE, SEL_MODULE };

/* One image found (or named on the command line) and checked with its whole chain. */
struct sel_cand {
	int kind;                 /* SEL_* */
	int disk;                 /* index in the disk array (SEL_DISK/PART/FILE) */
	uint32_t part;            /* partition number as fs/part counts; 0: the whole disk */
	int module;               /* SEL_MODULE: index */
	char path[SEL_PATH_MAX];  /* SEL_FILE: path on the FAT volume */
	char name[SEL_NAME_MAX];  /* "hd0,1:/images/win.vhd", "hd0", "hd0,2", "module0" */
	int ok;                   /* opened, chain resolved */
	char why[320];            /* !ok: the problem */
	const char *remedy;       /* !ok: what to do */
	uint32_t type;            /* VHD_TYPE_* of the leaf */
	uint64_t sectors;         /* virtual size */
	int depth;                /* parents below the leaf */
	char parent[64];          /* file name of the direct parent ("" if none) */
	uint32_t need;            /* resident bytes the chain needs (members, BATs, runs) */
	uint32_t max_bat;         /* largest BAT of the chain (the overlap check's scratch) */
};

/* One image chosen and opened in resident memory; int13 drive 80h + its index. */
struct sel_image {
	struct sel_cand *cand;
	struct vhd *leaf;         /* opened, BATs loaded, parents attached */
	int ram;                  /* a GRUB module: writes stay in RAM, lost at reset */
	int members;              /* images in the chain (1 = no parent) */
	const struct vhdblk_disk *disk; /* a whole-disk image: where it lies (NULL otherwise) */
};

/* Provided by main.c: problem and remedy on both consoles, undo hooks, INT 18h; never returns. */
void __attribute__((noreturn)) boot_fail(const char *problem, const char *remedy);

/* Read the multiboot modules (before anything reuses the MBI) and reserve their memory from the guest. */
void sel_init(uint32_t mbi_phys, const struct cmdline *cmd, uint32_t tsc_per_ms);
/* Find images on the disks and modules, choose per vhd= or the menu; fails through boot_fail. */
void sel_choose(struct ata_disk *disks, int ndisks);
/* Physical end of the scan's temporary memory (the resident region must avoid [kernel, here)); 0 if unused. */
uint32_t sel_scratch_end(void);
/* Resident heap bytes the chosen images need. */
uint32_t sel_resident_bytes(void);
/*
 * After relocation: open every chosen image and its parents in the
 * resident heap (leaf with leaf_flags, parents VHD_OPEN_RDONLY; modules
 * writable), load and check BATs (temporary memory above temp_avoid_hi).
 * Fails through boot_fail. Returns the image count.
 */
int sel_open(unsigned leaf_flags, uint32_t temp_avoid_hi);
/* Chosen image i (0 = drive 80h). */
struct sel_image *sel_image(int i);
/* VHD type name ("fixed", "dynamic", "differencing"). */
const char *sel_type_name(uint32_t t);

#endif
