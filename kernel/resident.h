/* resident.h: installing the resident hook: low stub below 40:13, IVT vectors 13h/15h/18h/19h, BDA disk count. */
#ifndef RESIDENT_H
#define RESIDENT_H

#include <stdint.h>

#define RESIDENT_MAX_LOW_KB 4u          /* most conventional memory we take */

/* What resident_install did (for the log and the guest-memory checks). */
struct resident_info {
	uint32_t stub_linear;     /* where the low stub lives */
	uint32_t stub_bytes;      /* its size */
	uint32_t low_kb;          /* KiB taken from conventional memory */
	uint16_t old_base_kb;     /* 40:13 before */
	uint16_t new_base_kb;     /* 40:13 after */
	uint8_t bios_hd;          /* 40:75 before */
	uint8_t ndrives;          /* emulated drives */
	uint32_t orig13, orig15, orig18, orig19;  /* previous vectors (seg << 16 | off) */
};

extern struct resident_info resident;

/*
 * Take the low memory and hook: lower 40:13, copy the stub there, save and
 * patch IVT 13h/15h/18h/19h, 40:75 += ndrives. Call with the kernel already
 * in its resident place. Returns 0, or -1 if the stub does not fit
 * (RESIDENT_MAX_LOW_KB, or 40:13 looks bogus).
 */
int resident_install(uint8_t ndrives);
/* Undo resident_install (vectors only where they still point at us); for failures before the guest runs. */
void resident_uninstall(void);
/* Hard disks the BIOS reports in 40:75. */
uint8_t resident_bios_hd(void);

#endif
