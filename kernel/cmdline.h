/* cmdline.h: the kernel command line (multiboot): which disk holds the VHD, and later options. */
#ifndef CMDLINE_H
#define CMDLINE_H

#include <stdint.h>

/*
 * Syntax: words separated by spaces; double quotes keep spaces inside a word
 * and are dropped (vhd="hd0,1:/my images/win 10.vhd", or vhd=/"a b.vhd";
 * in grub.cfg wrap the word in single quotes so GRUB passes the double
 * quotes on). An unterminated quote makes the word bad. A first word without '=' that contains
 * '/' or '.' is the kernel's file name (GRUB legacy, mboot.c32 and iPXE pass
 * it; GRUB 2 does not) and is skipped. Options:
 *   vhd=auto              GRUB modules if any, else scan every disk; a menu when several images (default)
 *   vhd=hdN               disk N in the order the drivers registered them (hd0 = the first found)
 *   vhd=pm|ps|sm|ss       the ATA disk at primary/secondary master/slave
 *   vhd=hdN,P             partition P of disk N (1-4 primary, 5.. logical, GPT entry n+1): its content is a VHD
 *   vhd=hdN,P:/dir/x.vhd  a VHD file on the FAT, exFAT or NTFS file system of that partition (hdN:/x.vhd: unpartitioned disk)
 *   vhd=/dir/x.vhd        that file on the first FAT, exFAT or NTFS volume (any disk, any partition) that has it
 *   vhd=label=NAME:/x.vhd a file on the volume whose label is NAME (ASCII case ignored; the first such volume)
 *   vhd=guid=GUID:/x.vhd  a file on the GPT partition whose unique partition GUID is GUID
 *   parents=VOL[+VOL...]  volumes (hdN[,P], label=NAME, guid=GUID) searched, in order, for a parent that is not
 *                         on its child's volume; without parents= every FAT/exFAT volume is searched, in scan order
 *   vhd=module[N]         the N-th (default first) GRUB multiboot module
 *   vhd=A+B+...           several images: A is drive 80h, B 81h, ... (up to CMDLINE_MAX_VHDS)
 *   timeout=S             menu timeout in seconds (default 5; 0 = boot the first at once)
 *   vhd_ignore_timestamp  accept a parent whose time stamp differs from what its child recorded
 *   trace                 log every INT 13h call of the guest on COM1 (slow)
 *   nohandover            leave no hand-over table for the OS (docs/handover.md): 2 KiB more conventional memory
 *   mode=rw|ro|snapshot   guest writes: to the image (default), refused (03h), or kept in RAM
 *   snapshot=SIZE         RAM for mode=snapshot: bytes with an optional K/M/G suffix (64M)
 *   grow=yes|no           may a dynamic image FILE on FAT16/32 or exFAT grow when it needs a new block
 *                         (default yes, docs/grow.md); no: such writes answer CCh, the volume is never changed
 *   disk=auto|bios|native|pio  disk backends (drivers/driver.h enum drv_disk_mode; default auto)
 * Unknown words and bad values are reported (cmdline_parse returns them
 * in errors) and ignored.
 */
#define CMDLINE_MAX 256
#define CMDLINE_MAX_DISKS 16     /* hd0..hd15 (block/disk.h DISK_MAX) */
#define CMDLINE_MAX_VHDS 4
#define CMDLINE_VHD_LEN 128
#define CMDLINE_TIMEOUT_DEFAULT 5
#define CMDLINE_MODE_RW 0
#define CMDLINE_MODE_RO 1
#define CMDLINE_MODE_SNAPSHOT 2
#define CMDLINE_MAX_VOLS 4        /* parents= volumes */
#define CMDLINE_VOL_NAME 40       /* a label (UTF-8) or a GUID's 36 characters */

/* How a volume is named. */
enum cmdline_vol_by { CMDLINE_VOL_INDEX = 0, CMDLINE_VOL_LABEL, CMDLINE_VOL_GUID };

/* A volume: hdN[,P] (disk, part; by_position for pm..ss), label=NAME or guid=GUID (name). */
struct cmdline_vol {
	int by;                   /* enum cmdline_vol_by */
	char disk[8];
	int by_position;
	uint32_t part;
	char name[CMDLINE_VOL_NAME];
};

/* What a vhd= item names (kernel/select.c turns it into an image). */
enum cmdline_vhd_kind {
	CMDLINE_VHD_DISK = 1,     /* hdN / pm..ss: the whole disk is (or starts with) a VHD */
	CMDLINE_VHD_PART,         /* hdN,P: partition P is a VHD */
	CMDLINE_VHD_FILE,         /* hdN[,P]:/path, label=NAME:/path, guid=GUID:/path: a file on that volume */
	CMDLINE_VHD_PATH,         /* /path: that file on the first FAT volume that has it */
	CMDLINE_VHD_MODULE,       /* moduleN */
};

/* One parsed vhd= item. */
struct cmdline_vhd {
	char text[CMDLINE_VHD_LEN]; /* as given ("hd0,1:/images/win.vhd") */
	int kind;                 /* enum cmdline_vhd_kind */
	char disk[8];             /* DISK/PART/FILE: "hd1", or an ATA position "ps" */
	int by_position;          /* disk is an ATA position name (pm, ps, sm, ss) */
	uint32_t part;            /* partition number (0: the whole disk) */
	int module;               /* MODULE: index */
	char path[CMDLINE_VHD_LEN]; /* FILE/PATH: the path on the volume */
	int vol_by;               /* FILE: CMDLINE_VOL_INDEX (disk, part), or _LABEL / _GUID (vol) */
	char vol[CMDLINE_VOL_NAME];
};

struct cmdline {
	char raw[CMDLINE_MAX];    /* as GRUB passed it (truncated) */
	int trace;                /* "trace" given */
	int no_handover;          /* "nohandover" given */
	int nvhd;                 /* vhd= items (0: none given, or vhd=auto) */
	struct cmdline_vhd vhd[CMDLINE_MAX_VHDS]; /* each item of vhd=A+B, parsed */
	int timeout;              /* timeout= seconds */
	int ignore_timestamp;     /* "vhd_ignore_timestamp" given */
	int mode;                 /* CMDLINE_MODE_RW (default), _RO, _SNAPSHOT */
	uint64_t snapshot_bytes;  /* snapshot=SIZE, 0 = default (a quarter of free RAM, at most 256 MiB) */
	int no_grow;              /* grow=no given */
	int disk_mode;            /* disk=: enum drv_disk_mode (0 = auto) */
	int nparent_vols;         /* parents= volumes (0: search every volume) */
	struct cmdline_vol parent_vols[CMDLINE_MAX_VOLS];
	int errors;               /* words that were not understood */
	char bad[64];             /* the first such word */
};

/* Copy the command line from physical address phys (0 = none) into c->raw and parse it. */
void cmdline_parse(struct cmdline *c, uint32_t phys);
/* Parse c->raw (already filled) into the other fields. */
void cmdline_parse_raw(struct cmdline *c);

#endif
