/* cmdline.h: the kernel command line (multiboot): which disk holds the VHD, and later options. */
#ifndef CMDLINE_H
#define CMDLINE_H

#include <stdint.h>

/*
 * Syntax: words separated by spaces. A first word without '=' that contains
 * '/' or '.' is the kernel's file name (GRUB legacy, mboot.c32 and iPXE pass
 * it; GRUB 2 does not) and is skipped. Options:
 *   vhd=auto              first ATA disk whose last sector is a VHD footer (default)
 *   vhd=pm|ps|sm|ss       primary/secondary master/slave
 *   vhd=hd0|hd1|hd2|hd3   the same positions by number (pm, ps, sm, ss)
 *   vhd=hdN,P             partition P of disk N (1-4 primary, 5.. logical, GPT entry n+1): its content is a VHD
 *   vhd=hdN,P:/dir/x.vhd  a VHD file on the FAT file system of that partition (hdN:/x.vhd: unpartitioned FAT disk)
 *   vhd=/dir/x.vhd        that file on the first FAT volume (any disk, any partition) that has it
 *   vhd=module[N]         the N-th (default first) GRUB multiboot module
 *   vhd=A+B+...           several images: A is drive 80h, B 81h, ... (up to CMDLINE_MAX_VHDS)
 *   timeout=S             menu timeout in seconds (default 5; 0 = boot the first at once)
 *   vhd_ignore_timestamp  accept a parent whose time stamp differs from what its child recorded
 *   trace                 log every INT 13h call of the guest on COM1 (slow)
 *   mode=rw|ro|snapshot   guest writes: to the image (default), refused (03h), or kept in RAM
 *   snapshot=SIZE         RAM for mode=snapshot: bytes with an optional K/M/G suffix (64M)
 * Unknown words and bad values are reported (cmdline_parse returns them
 * in errors) and ignored.
 */
#define CMDLINE_MAX 256
#define CMDLINE_DISK_AUTO (-1)
#define CMDLINE_MAX_VHDS 4
#define CMDLINE_VHD_LEN 128
#define CMDLINE_TIMEOUT_DEFAULT 5
#define CMDLINE_MODE_RW 0
#define CMDLINE_MODE_RO 1
#define CMDLINE_MODE_SNAPSHOT 2

struct cmdline {
	char raw[CMDLINE_MAX];    /* as GRUB passed it (truncated) */
	int disk;                 /* CMDLINE_DISK_AUTO or position 0..3 (channel*2 + slave) */
	int trace;                /* "trace" given */
	int nvhd;                 /* vhd= items (0: none given, or vhd=auto) */
	char vhd[CMDLINE_MAX_VHDS][CMDLINE_VHD_LEN]; /* each item of vhd=A+B (see kernel/select.c) */
	int timeout;              /* timeout= seconds */
	int ignore_timestamp;     /* "vhd_ignore_timestamp" given */
	int mode;                 /* CMDLINE_MODE_RW (default), _RO, _SNAPSHOT */
	uint64_t snapshot_bytes;  /* snapshot=SIZE, 0 = default (a quarter of free RAM, at most 256 MiB) */
	int errors;               /* words that were not understood */
	char bad[64];             /* the first such word */
};

/* Copy the command line from physical address phys (0 = none) into c->raw and parse it. */
void cmdline_parse(struct cmdline *c, uint32_t phys);
/* Parse c->raw (already filled) into the other fields. */
void cmdline_parse_raw(struct cmdline *c);

#endif
