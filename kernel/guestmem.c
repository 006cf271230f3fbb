/* guestmem.c: the one gate to guest memory; vhdboot's resident memory is refused to guest buffers. */
#include "guestmem.h"
#include "console.h"
#include "phys.h"

static struct {
	uint32_t base, len;
	const char *what;
} guestmem_forbidden[GUESTMEM_MAX_FORBIDDEN];
static int guestmem_n;

void guestmem_forbid(uint32_t base, uint32_t len, const char *what)
{
	if (guestmem_n < GUESTMEM_MAX_FORBIDDEN && len) {
		guestmem_forbidden[guestmem_n].base = base;
		guestmem_forbidden[guestmem_n].len = len;
		guestmem_forbidden[guestmem_n++].what = what;
	}
}

void *guestmem_ptr(uint32_t linear, uint32_t bytes)
{
	uint64_t end = (uint64_t)linear + bytes;
	const char *why = NULL, *what = "";
	if (end > 0x100000000ull)
		why = "reaches past 4 GiB";
	for (int i = 0; !why && i < guestmem_n; i++) {
		uint64_t b = guestmem_forbidden[i].base, e = b + guestmem_forbidden[i].len;
		if (bytes && linear < e && b < end) {
			why = "overlaps ";
			what = guestmem_forbidden[i].what;
		}
	}
	if (!why)
		return phys_ptr(linear);
	/* A guest buffer on top of our memory would destroy the handler: refuse, say so, write nothing. */
	con_printf("int13: refused a guest buffer at %08x (%u bytes): it %s%s\n", linear, bytes, why, what);
	return 0;
}
