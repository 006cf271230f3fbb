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
 *   trace                 log every INT 13h call of the guest on COM1 (slow)
 * Unknown words and bad values are reported (cmdline_parse returns them
 * in errors) and ignored.
 */
#define CMDLINE_MAX 256
#define CMDLINE_DISK_AUTO (-1)

struct cmdline {
	char raw[CMDLINE_MAX];    /* as GRUB passed it (truncated) */
	int disk;                 /* CMDLINE_DISK_AUTO or position 0..3 (channel*2 + slave) */
	int trace;                /* "trace" given */
	int errors;               /* words that were not understood */
	char bad[64];             /* the first such word */
};

/* Copy the command line from physical address phys (0 = none) into c->raw and parse it. */
void cmdline_parse(struct cmdline *c, uint32_t phys);
/* Parse c->raw (already filled) into the other fields. */
void cmdline_parse_raw(struct cmdline *c);

#endif
