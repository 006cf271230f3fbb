/* fuzz_mbinfo.c: libFuzzer target: the multiboot module list (kernel/mbinfo.c) and the reservation of each module from the memory map (kernel/mem.c). */
#include <stdint.h>
#include <string.h>
#include "fuzz_common.h"
#include "../../kernel/mbinfo.h"
#include "../../kernel/mem.h"
#include "../../kernel/kerr.h"
#include "../../drivers/driver.h"

/*
 * Physical memory is a 1 MiB window at PHYS_WIN (kernel_base 0, so
 * phys_ptr(p) == p). The input is [u32 flags][u32 count][module table...]:
 * the MBI at PHYS_WIN names the table at TABLE_AT (the input's bytes, then
 * zeros to the end of the window); each entry's string pointer is folded
 * into the window as GRUB's always lie in RAM it owns. The memory map is one
 * usable range [0, 4 GiB) so every reservation carves it.
 */
#define PHYS_WIN 0x30000000u
#define PHYS_WIN_SIZE 0x100000u
#define TABLE_AT (PHYS_WIN + 0x100u)

uint32_t kernel_base;
char __image_end[1];                 /* linker symbol of the firmware; the heap is not used here */

static void wr32(uint32_t phys, uint32_t v)
{
	memcpy((void *)(uintptr_t)phys, &v, 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *win = fuzz_phys_window(PHYS_WIN, PHYS_WIN_SIZE);
	if (size < 8)
		return 0;
	size_t tlen = size - 8;
	if (tlen > PHYS_WIN_SIZE - 0x200)
		tlen = PHYS_WIN_SIZE - 0x200;
	memset(win, 0, PHYS_WIN_SIZE);
	uint32_t flags, count;
	memcpy(&flags, data, 4);
	memcpy(&count, data + 4, 4);
	wr32(PHYS_WIN, flags);
	wr32(PHYS_WIN + 20, count);
	wr32(PHYS_WIN + 24, TABLE_AT);
	memcpy((void *)(uintptr_t)TABLE_AT, data + 8, tlen);
	for (size_t i = 0; i + 8 < tlen; i += 16) {   /* every string field the input reaches, even in part */
		uint32_t s;
		memcpy(&s, (void *)(uintptr_t)(TABLE_AT + i + 8), 4);
		if (s)
			wr32(TABLE_AT + (uint32_t)i + 8, PHYS_WIN + s % PHYS_WIN_SIZE);
	}

	mem_nranges = 0;
	mem_map_add(mem_map, &mem_nranges, MEM_MAX_RANGES, 0, 0x100000000ull, MEM_USABLE);
	static struct drv_boot_info bi;
	struct kerr e = { 0 };
	memset(&bi, 0, sizeof(bi));
	int rc = mbinfo_modules(PHYS_WIN, &bi, &e);
	if (rc != 0 && (rc != -1 || !e.why || !e.remedy))
		__builtin_trap();              /* a failure says why and what to do */
	if (bi.nmods < 0 || bi.nmods > DRV_MAX_MODULES)
		__builtin_trap();
	for (int i = 0; i < bi.nmods; i++) {
		if (bi.mods[i].end <= bi.mods[i].start || !bi.mods[i].name)
			__builtin_trap();
		fuzz_str_ok(bi.mods[i].name, 96);
		for (int j = 0; j < mem_nranges; j++)
			if (mem_map[j].type == MEM_USABLE && mem_map[j].base < bi.mods[i].end &&
			    bi.mods[i].start < mem_map[j].base + mem_map[j].len)
				__builtin_trap();      /* a module left usable in the map */
	}
	return 0;
}
