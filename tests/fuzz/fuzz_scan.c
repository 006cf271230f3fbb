/* fuzz_scan.c: libFuzzer target: the boot scan over a whole disk image (kernel/scan.c: partitions, FAT volumes, image files and partitions; kernel/imgopen.c: opening and checking each candidate). */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include "fuzz_common.h"
#include "../unit/kstubs.h"
#include "../../kernel/scan.h"
#include "../../kernel/imgopen.h"
#include "../../kernel/select.h"
#include "../../kernel/mem.h"
#include "../../kernel/kerr.h"
#include "../../block/disk.h"

/*
 * The input is one disk (ATA primary master), zero-padded to at least 2 MiB
 * so a VHD footer at the end of a seed is found where a real disk has it.
 * The kernel services scan.c/imgopen.c use are stubbed as in
 * tests/unit/test_select.c: a bump heap and the scan's scratch in an arena
 * below 4 GiB (kernel_base 0, so physical == pointer).
 */
#define FUZZ_SCAN_MIN_SECTORS 64u
#define HEAP_SIZE (8u << 20)

uint32_t kernel_base;
uint8_t __image_end[16];
struct mem_range mem_map[MEM_MAX_RANGES];
int mem_nranges;
static uint8_t *heap;
static uint32_t heap_used, arena;

/* The resident heap: a bump allocator over HEAP_SIZE bytes; NULL when full. */
void *mem_alloc(uint32_t bytes, uint32_t align)
{
	uint32_t p = (heap_used + align - 1) & ~(align - 1);
	if (p > HEAP_SIZE || bytes > HEAP_SIZE - p)
		return NULL;
	heap_used = p + bytes;
	return heap + p;
}

/* Temporary memory: from the same heap. */
void *mem_temp(uint32_t bytes, uint32_t avoid_hi)
{
	(void)avoid_hi;
	return mem_alloc(bytes, 4096);
}

/* The menu is not reached by the scan. */
int menu_choose(const char *const *names, int n, int def, int timeout_s, uint32_t tsc_per_ms, int *by_user)
{
	(void)names; (void)n; (void)def; (void)timeout_s; (void)tsc_per_ms; (void)by_user;
	__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!heap) {
		void *a = mmap(NULL, IOP_SCRATCH + HEAP_SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
		if (a == MAP_FAILED)
			__builtin_trap();
		arena = (uint32_t)(uintptr_t)a;
		heap = (uint8_t *)a + IOP_SCRATCH;
	}
	struct fuzz_disk f;
	if (fuzz_disk_init(&f, data, size, FUZZ_SCAN_MIN_SECTORS, 0))
		return 0;
	disk_reset();
	if (disk_add(&f.blk, "ata", "pm", "fuzz", 0) < 0)
		__builtin_trap();
	kstubs_log_reset();
	heap_used = 0;
	iop_use_scratch(arena);
	struct kerr e = { 0 };
	if (iop_init(&e) != 0)
		__builtin_trap();
	scan_reset();
	static struct scan_list l;
	l.n = 0;
	scan_disks(&l);
	if (l.n < 0 || l.n > SCAN_MAX_CANDS)
		__builtin_trap();
	for (int i = 0; i < l.n; i++) {
		struct sel_cand *c = &l.cands[i];
		fuzz_str_ok(c->name, sizeof(c->name));
		fuzz_str_ok(c->path, sizeof(c->path));
		if (c->disk != 0)
			__builtin_trap();      /* there is one disk */
		iop_check(c);
		fuzz_str_ok(c->why, sizeof(c->why));
		if (!c->ok && (!c->why[0] || !c->remedy))
			__builtin_trap();      /* a refused candidate says why and what to do */
		if (c->ok && (!c->fmt || !c->type || c->sectors == 0))
			__builtin_trap();
		char line[200];
		scan_describe(c, line, sizeof(line));
		fuzz_str_ok(line, sizeof(line));
	}
	disk_reset();
	fuzz_disk_free(&f);
	return 0;
}
