/* guestmem.h: the one gate to guest memory: a linear range becomes a pointer unless it reaches vhdboot's own memory. */
#ifndef GUESTMEM_H
#define GUESTMEM_H

#include <stdint.h>

#define GUESTMEM_MAX_FORBIDDEN 4

/*
 * Guest memory [linear, linear + bytes) as a kernel pointer; NULL (and one
 * COM1 line naming the range and why) when it reaches past 4 GiB or
 * overlaps a forbidden range. Every INT 13h/15h buffer, DAP and BDA access
 * goes through here. (Host unit tests provide their own.)
 */
void *guestmem_ptr(uint32_t linear, uint32_t bytes);
/* Refuse guest access to [base, base + len) from now on; what names it in the refusal line ("vhdboot's low stub"). */
void guestmem_forbid(uint32_t base, uint32_t len, const char *what);

#endif
