/* fuzz_int15.c: libFuzzer target: the memory map from a multiboot info (kernel/mem.c), the resident region chosen in it, and INT 15h E820h chaining / E801h / 88h (kernel/int15.c) with our memory hidden. */
#include <stdint.h>
#include <string.h>
#include "fuzz_common.h"
#include "../../kernel/int15.h"
#include "../../kernel/mem.h"
#include "../../kernel/guestmem.h"

/*
 * Physical memory is a 1 MiB window mapped at PHYS_WIN with kernel_base 0,
 * so phys_ptr(p) == p there. The multiboot info sits at PHYS_WIN, its mmap
 * buffer right after; the input is [u32 flags][u32 mem_lower][u32
 * mem_upper][u32 resident size][u32 low stub KiB][u8 calls][mmap bytes...].
 * Guest memory for the E820 buffers is a separate 64 KiB array.
 */
#define PHYS_WIN 0x20000000u
#define PHYS_WIN_SIZE 0x100000u
#define MMAP_AT (PHYS_WIN + 0x100u)
#define GMEM 0x10000u
#define HDR 21u

uint32_t kernel_base;
char __image_end[1];                 /* linker symbol of the firmware; the heap (mem_heap_init) is not used here */
static uint8_t guest[GMEM];

/* E820 buffers live in the first 64 KiB; the rest of the 4 GiB is unreachable here. */
void *guestmem_ptr(uint32_t linear, uint32_t bytes)
{
	if ((uint64_t)linear + bytes > GMEM)
		return NULL;
	return guest + linear;
}

void guestmem_forbid(uint32_t base, uint32_t len, const char *what)
{
	(void)base; (void)len; (void)what;
}

static uint32_t rd32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint32_t phys, uint32_t v)
{
	memcpy((void *)(uintptr_t)phys, &v, 4);
}

/* The guest's map as E820h hands it out: returns the entries read (traps on a chain that never ends). */
static int e820_walk(uint64_t (*out)[3], int max)
{
	struct rm_regs r;
	uint32_t cont = 0;
	int n = 0;
	do {
		memset(&r, 0, sizeof(r));
		r.eax = 0xE820;
		r.ebx = cont;
		r.ecx = 24;
		r.edx = INT15_SMAP;
		r.es = 0x100;
		r.edi = 0x10;
		r.vector = 0x15;
		int15_handle(&r);
		if (r.flags & RM_FLAG_CF)
			return n;
		if (r.eax != INT15_SMAP || r.ecx != 24 || n >= max)
			__builtin_trap();      /* a bad answer, or a chain longer than the map */
		const uint8_t *e = guest + 0x1010;
		out[n][0] = rd64(e);
		out[n][1] = rd64(e + 8);
		out[n][2] = rd32(e + 16);
		n++;
		cont = r.ebx;
	} while (cont);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *win = fuzz_phys_window(PHYS_WIN, PHYS_WIN_SIZE);
	if (size < HDR)
		return 0;
	size_t mlen = size - HDR;
	if (mlen > PHYS_WIN_SIZE - 0x200)
		mlen = PHYS_WIN_SIZE - 0x200;
	memset(win, 0, 0x100);
	wr32(PHYS_WIN, rd32(data));
	wr32(PHYS_WIN + 4, rd32(data + 4));
	wr32(PHYS_WIN + 8, rd32(data + 8));
	wr32(PHYS_WIN + 44, (uint32_t)mlen);
	wr32(PHYS_WIN + 48, MMAP_AT);
	memcpy((void *)(uintptr_t)MMAP_AT, data + HDR, mlen);
	memset((void *)(uintptr_t)(MMAP_AT + mlen), 0, 0x100);   /* reads just past the buffer see zeros, as RAM would */

	int n = mem_init(PHYS_WIN);
	if (n < 0 || n > MEM_MAX_RANGES || n != mem_nranges)
		__builtin_trap();
	uint32_t res_size = ((rd32(data + 12) & 0x3Fu) + 1) * MEM_RESIDENT_ALIGN;   /* main.c rounds it up to 64 KiB */
	uint32_t low_kb = data[16] % 64;
	uint32_t res = mem_choose_resident(res_size, 0x100000, 0x200000);
	if (res) {
		if (res & (MEM_RESIDENT_ALIGN - 1) || (uint64_t)res + res_size > 0x100000000ull ||
		    (res < 0x200000 && res + res_size > 0x100000))
			__builtin_trap();      /* misaligned, above 4 GiB or over what it must avoid */
		int inside = 0;
		for (int i = 0; i < mem_nranges; i++) {
			const struct mem_range *m = &mem_map[i];
			if (m->type == MEM_USABLE && m->base <= res && res + (uint64_t)res_size <= m->base + m->len)
				inside = 1;
			if (m->type != MEM_USABLE && res < m->base + m->len && m->base < res + (uint64_t)res_size)
				__builtin_trap();      /* the resident region overlaps reserved memory */
		}
		if (!inside)
			__builtin_trap();
	}
	uint32_t low_hi = 0xA0000, low_lo = low_hi - low_kb * 1024;
	int m = int15_init(res, res ? res_size : 0, low_lo, low_hi);
	if (m < 0 || m > INT15_MAX_ENTRIES)
		__builtin_trap();

	static uint64_t map[INT15_MAX_ENTRIES + 1][3];
	int k = e820_walk(map, INT15_MAX_ENTRIES);
	for (int i = 0; i < k; i++) {
		if (i && map[i][0] < map[i - 1][0])
			__builtin_trap();      /* not sorted */
		if (map[i][2] != MEM_USABLE || map[i][1] == 0)
			continue;
		uint64_t b = map[i][0], e = b + map[i][1];
		if (res && b < (uint64_t)res + res_size && res < e)
			__builtin_trap();      /* our resident region shown usable */
		if (low_kb && b < low_hi && low_lo < e)
			__builtin_trap();      /* our low stub shown usable */
	}
	uint32_t kb = int15_ext_kb();
	if (kb > (0x100000000ull - 0x100000) >> 10)
		__builtin_trap();

	/* Random registers: unknown functions fail with CF and AH=86h, E801h/88h agree with the map. */
	const uint8_t *p = data + HDR;
	for (uint32_t c = 0; c < data[20] % 16 && p + 16 <= data + size; c++, p += 16) {
		struct rm_regs r;
		memset(&r, 0, sizeof(r));
		r.eax = rd32(p);
		r.ebx = rd32(p + 4) % (uint32_t)(k + 2);
		r.ecx = rd32(p + 8) % 40;
		r.edx = p[12] & 1 ? INT15_SMAP : rd32(p + 12);
		r.es = (uint16_t)(p[13] << 4);
		r.edi = rd32(p + 4) & 0xFFFF;
		r.vector = 0x15;
		uint16_t ax = (uint16_t)r.eax;
		struct rm_regs in = r;
		int15_handle(&r);
		if (ax == 0xE801 && (r.eax & 0xFFFF) > 15 * 1024)
			__builtin_trap();
		if ((r.eax >> 8 & 0xFF) == 0x88 && (r.eax & 0xFFFF) > 63 * 1024 && ax != 0xE820 && ax != 0xE801 && ax != 0xE881)
			__builtin_trap();
		if (ax != 0xE820 && ax != 0xE801 && ax != 0xE881 && (in.eax >> 8 & 0xFF) != 0x88 &&
		    (!(r.flags & RM_FLAG_CF) || (r.eax >> 8 & 0xFF) != 0x86))
			__builtin_trap();      /* an unknown function must fail */
	}
	return 0;
}
