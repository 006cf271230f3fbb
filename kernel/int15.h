/* int15.h: INT 15h memory-size calls (E820h, E801h/E881h, 88h) answered with the resident memory hidden. */
#ifndef INT15_H
#define INT15_H

#include <stdint.h>
#include "regs.h"

#define INT15_MAX_ENTRIES 80
#define INT15_SMAP 0x534D4150u   /* "SMAP" */

/*
 * Build the map the guest will see: mem_map with [res_base, res_base+res_size)
 * and the low stub [low_lo, low_hi) turned into reserved (type 2) entries.
 * Returns the entry count.
 */
int int15_init(uint32_t res_base, uint32_t res_size, uint32_t low_lo, uint32_t low_hi);
/* Handle AX=E820h, AX=E801h/E881h or AH=88h; sets CF in r->flags. */
void int15_handle(struct rm_regs *r);
/* KiB of contiguous usable memory from 1 MiB in the guest's map (what 88h/E801h report before clamping). */
uint32_t int15_ext_kb(void);
/* Print the guest's map. */
void int15_log(void);

#endif
