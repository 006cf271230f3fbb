/* mem.c: the multiboot memory map, the choice of the resident region and the resident bump allocator. */
#include "mem.h"
#include "phys.h"
#include "console.h"

struct mem_range mem_map[MEM_MAX_RANGES];
int mem_nranges;
uint32_t mem_res_base, mem_res_size;

extern uint8_t __image_end[];
static uint32_t mem_heap_cur, mem_heap_end;   /* kernel pointers (link addresses) */

#define MB_INFO_MEM 0x1u
#define MB_INFO_MMAP 0x40u
#define FOUR_G 0x100000000ull

/* Little-endian dword at physical p (multiboot info is little-endian, any alignment). */
static uint32_t mem_rd32(uint32_t p)
{
	const volatile uint8_t *b = phys_ptr(p);
	return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

int mem_map_add(struct mem_range *map, int *n, int max, uint64_t base, uint64_t len, uint32_t type)
{
	if (len == 0)
		return 1;
	if (*n >= max)
		return 0;
	map[*n].base = base;
	map[*n].len = len;
	map[*n].type = type;
	(*n)++;
	return 1;
}

/* mem_map_add on mem_map. */
static int mem_add(uint64_t base, uint64_t len, uint32_t type)
{
	return mem_map_add(mem_map, &mem_nranges, MEM_MAX_RANGES, base, len, type);
}

int mem_init(uint32_t mbi_phys)
{
	uint32_t flags = mem_rd32(mbi_phys);
	mem_nranges = 0;
	if (flags & MB_INFO_MMAP) {
		uint32_t len = mem_rd32(mbi_phys + 44), addr = mem_rd32(mbi_phys + 48);
		uint32_t p = addr, end = len > 0xFFFFFFFFu - addr ? 0xFFFFFFFFu : addr + len;
		/* Each entry: size (not counting itself), base, length, type. p <= end throughout: a size field
		 * that would step past the buffer (or wrap the address, fuzz_int15's regression input) ends the walk. */
		while (end - p >= 24) {
			uint32_t sz = mem_rd32(p);
			uint64_t base = mem_rd32(p + 4) | (uint64_t)mem_rd32(p + 8) << 32;
			uint64_t l = mem_rd32(p + 12) | (uint64_t)mem_rd32(p + 16) << 32;
			if (!mem_add(base, l, mem_rd32(p + 20)))
				break;
			if (sz < 20 || sz > end - p - 4)
				break;
			p += sz + 4;
		}
	}
	if (mem_nranges == 0 && (flags & MB_INFO_MEM)) {
		mem_add(0, (uint64_t)mem_rd32(mbi_phys + 4) << 10, MEM_USABLE);
		mem_add(0x100000, (uint64_t)mem_rd32(mbi_phys + 8) << 10, MEM_USABLE);
	}
	return mem_nranges;
}

int mem_carve(struct mem_range *map, int *n, int max, uint64_t lo, uint64_t hi)
{
	int fits = 1, old_n = *n;
	for (int i = 0; i < old_n; i++) {
		struct mem_range *m = &map[i];
		uint64_t b = m->base, end = m->base + m->len;
		if (m->type != MEM_USABLE || hi <= b || end <= lo)
			continue;
		uint64_t cl = lo > b ? lo : b, ch = hi < end ? hi : end;
		/* This range keeps the part before; the reserved middle and the rest are appended. */
		m->len = cl - b;
		fits &= mem_map_add(map, n, max, cl, ch - cl, MEM_RESERVED);
		fits &= mem_map_add(map, n, max, ch, end - ch, MEM_USABLE);
	}
	/* Drop ranges left empty. */
	int k = 0;
	for (int i = 0; i < *n; i++)
		if (map[i].len)
			map[k++] = map[i];
	*n = k;
	return fits;
}

int mem_reserve(uint64_t base, uint64_t len)
{
	return mem_carve(mem_map, &mem_nranges, MEM_MAX_RANGES, base, base + len);
}

void mem_log(void)
{
	for (int i = 0; i < mem_nranges; i++)
		con_printf("  mem %016llx-%016llx type %u%s\n",
			   (unsigned long long)mem_map[i].base,
			   (unsigned long long)(mem_map[i].base + mem_map[i].len - 1),
			   mem_map[i].type, mem_map[i].type == MEM_USABLE ? " (usable)" : "");
}

uint64_t mem_usable_below_4g(void)
{
	uint64_t t = 0;
	for (int i = 0; i < mem_nranges; i++) {
		if (mem_map[i].type != MEM_USABLE || mem_map[i].base >= FOUR_G)
			continue;
		uint64_t end = mem_map[i].base + mem_map[i].len;
		t += (end > FOUR_G ? FOUR_G : end) - mem_map[i].base;
	}
	return t;
}

/* Does [lo, hi) overlap any range that is not usable? (Maps may overlap; the stricter type wins.) */
static int mem_hits_unusable(uint64_t lo, uint64_t hi)
{
	for (int i = 0; i < mem_nranges; i++) {
		if (mem_map[i].type == MEM_USABLE)
			continue;
		if (lo < mem_map[i].base + mem_map[i].len && mem_map[i].base < hi)
			return 1;
	}
	return 0;
}

uint32_t mem_choose_resident(uint32_t size, uint32_t avoid_lo, uint32_t avoid_hi)
{
	uint64_t best = 0;
	for (int i = 0; i < mem_nranges; i++) {
		const struct mem_range *m = &mem_map[i];
		if (m->type != MEM_USABLE || m->base >= FOUR_G)
			continue;
		uint64_t lo = m->base, hi = m->base + m->len;
		if (hi > FOUR_G)
			hi = FOUR_G;
		/* Try from the top, stepping below anything in the way. */
		uint64_t top = hi & ~(uint64_t)(MEM_RESIDENT_ALIGN - 1);
		while (top >= lo + size && top >= size) {
			uint64_t b = top - size;
			if (b < lo || b < 0x100000)
				break;
			if (b < avoid_hi && avoid_lo < b + size) {
				top = avoid_lo & ~(uint64_t)(MEM_RESIDENT_ALIGN - 1);
				continue;
			}
			if (mem_hits_unusable(b, b + size)) {
				top -= MEM_RESIDENT_ALIGN;
				continue;
			}
			if (b > best)
				best = b;
			break;
		}
	}
	if (best) {
		mem_res_base = (uint32_t)best;
		mem_res_size = size;
	}
	return (uint32_t)best;
}

void mem_heap_init(uint32_t res_size)
{
	mem_heap_cur = (uint32_t)(uintptr_t)__image_end;
	mem_heap_end = res_size;
}

void *mem_alloc(uint32_t bytes, uint32_t align)
{
	uint32_t p = (mem_heap_cur + align - 1) & ~(align - 1);
	if (p < mem_heap_cur || p > mem_heap_end || mem_heap_end - p < bytes)
		return NULL;
	mem_heap_cur = p + bytes;
	return (void *)(uintptr_t)p;
}

uint32_t mem_heap_used(void)
{
	return mem_heap_cur - (uint32_t)(uintptr_t)__image_end;
}

void *mem_temp(uint32_t bytes, uint32_t avoid_hi)
{
	if (!mem_res_base || bytes == 0)
		return NULL;
	uint64_t b = ((uint64_t)mem_res_base - bytes) & ~0xFFFull;
	if (mem_res_base < bytes || b < avoid_hi || b < 0x100000)
		return NULL;
	/* The block must lie inside one usable range. */
	for (int i = 0; i < mem_nranges; i++) {
		const struct mem_range *m = &mem_map[i];
		if (m->type == MEM_USABLE && m->base <= b && b + bytes <= m->base + m->len &&
		    !mem_hits_unusable(b, b + bytes))
			return phys_ptr((uint32_t)b);
	}
	return NULL;
}
