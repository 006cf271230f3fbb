/* kheap.c: kernel_base, mem_map, __image_end and a bump-allocator mem_alloc/mem_temp over one arena below 4 GiB, for host programs over the scan and selection. */
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include "kheap.h"
#include "../../kernel/mem.h"      /* mem_alloc, mem_temp, mem_map, MEM_MAX_RANGES */
#include "../../kernel/imgopen.h"  /* IOP_SCRATCH, iop_use_scratch */

uint32_t kernel_base;             /* 0: physical == pointer (the arena is mapped below 4 GiB) */
uint8_t __image_end[16];
struct mem_range mem_map[MEM_MAX_RANGES];
int mem_nranges;
static uint8_t *kheap_base;       /* the heap: KHEAP_SIZE bytes after the scratch */
static uint32_t kheap_used, kheap_arena;

int kheap_init(void)
{
	if (kheap_base)
		return 0;
	void *a = mmap(NULL, IOP_SCRATCH + KHEAP_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (a == MAP_FAILED)
		return -1;
	kheap_arena = (uint32_t)(uintptr_t)a;
	kheap_base = (uint8_t *)a + IOP_SCRATCH;
	return 0;
}

void kheap_reset(void)
{
	kheap_used = 0;
	iop_use_scratch(kheap_arena);
}

/* The resident heap: align (a power of two) bytes from the bump pointer; NULL when KHEAP_SIZE is used up. */
void *mem_alloc(uint32_t bytes, uint32_t align)
{
	uint32_t p = (kheap_used + align - 1) & ~(align - 1);
	if (p > KHEAP_SIZE || bytes > KHEAP_SIZE - p)
		return NULL;
	kheap_used = p + bytes;
	return kheap_base + p;
}

/* Temporary memory: from the same heap (page-aligned; avoid_hi does not matter with no kernel image). */
void *mem_temp(uint32_t bytes, uint32_t avoid_hi)
{
	(void)avoid_hi;
	return mem_alloc(bytes, 4096);
}
