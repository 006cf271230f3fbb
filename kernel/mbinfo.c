/* mbinfo.c: reads the multiboot modules GRUB loaded and keeps their memory from the guest. */
#include "mbinfo.h"
#include "console.h"
#include "mem.h"
#include "phys.h"
#include "string.h"

#define MB_INFO_MODS 0x8u
/* Module entries read at most: a corrupt count must not walk all of memory (fuzz_mbinfo, regress/mbinfo/huge-count). */
#define MBINFO_MAX_ENTRIES 256u

/* Little-endian dword at physical p. */
static uint32_t mbinfo_rd32(uint32_t p)
{
	const volatile uint8_t *b = phys_ptr(p);
	return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* The modules' command lines, copied out of GRUB's memory (the MBI may be overwritten later). */
static char mbinfo_names[DRV_MAX_MODULES][96];

int mbinfo_modules(uint32_t mbi_phys, struct drv_boot_info *bi, struct kerr *e)
{
	bi->nmods = 0;
	if (!(mbinfo_rd32(mbi_phys) & MB_INFO_MODS))
		return 0;
	uint32_t count = mbinfo_rd32(mbi_phys + 20), addr = mbinfo_rd32(mbi_phys + 24);
	if (count > MBINFO_MAX_ENTRIES) {
		con_printf("select: the multiboot info lists %u modules; only the first %u entries are read\n",
			   count, MBINFO_MAX_ENTRIES);
		count = MBINFO_MAX_ENTRIES;
	}
	for (uint32_t i = 0; i < count && bi->nmods < DRV_MAX_MODULES; i++) {
		int k = bi->nmods;
		uint32_t start = mbinfo_rd32(addr + 16 * i), end = mbinfo_rd32(addr + 16 * i + 4);
		uint32_t s = mbinfo_rd32(addr + 16 * i + 8);
		mbinfo_names[k][0] = 0;
		if (s)
			k_strlcpy(mbinfo_names[k], phys_ptr(s), sizeof(mbinfo_names[k]));
		if (end <= start)
			continue;
		/* GRUB put it anywhere in usable RAM: keep it there and hide it from everyone else. */
		if (!mem_reserve(start, ((uint64_t)end - start + 0xFFF) & ~0xFFFull))
			return kerr_set(e, "too many memory ranges to reserve the GRUB module", "report this as a bug");
		con_printf("select: module%d \"%s\" at %08x-%08x (%u KiB), reserved from the guest's memory map\n",
			   k, mbinfo_names[k], start, end - 1, (end - start) >> 10);
		bi->mods[k].start = start;
		bi->mods[k].end = end;
		bi->mods[k].name = mbinfo_names[k];
		bi->nmods++;
	}
	return 0;
}
