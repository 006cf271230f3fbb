/* mem.h: the physical memory map (from multiboot), the resident region at the top of RAM below 4 GiB, and its bump allocator. */
#ifndef MEM_H
#define MEM_H

#include <stdint.h>
#include <stddef.h>

#define MEM_MAX_RANGES 64
#define MEM_USABLE 1u            /* E820 type 1 */
#define MEM_RESERVED 2u          /* E820 type 2 */
#define MEM_RESIDENT_ALIGN 0x10000u

/* One memory-map range as the BIOS (through GRUB) reported it. */
struct mem_range {
	uint64_t base;
	uint64_t len;
	uint32_t type;
};

/* The map copied out of the multiboot info (physical addresses). */
extern struct mem_range mem_map[MEM_MAX_RANGES];
extern int mem_nranges;
/* The resident region chosen by mem_choose_resident (0 until then). */
extern uint32_t mem_res_base, mem_res_size;

/* Copy the multiboot memory map (or mem_lower/upper) into mem_map; returns the range count (0 = none). */
int mem_init(uint32_t mbi_phys);
/* Print the map to the console. */
void mem_log(void);
/* Total usable bytes below 4 GiB. */
uint64_t mem_usable_below_4g(void);
/*
 * Pick the highest size-byte, 64 KiB-aligned, usable block below 4 GiB that
 * does not overlap [avoid_lo, avoid_hi) nor any non-usable range. Returns
 * its physical base, or 0 if there is none.
 */
uint32_t mem_choose_resident(uint32_t size, uint32_t avoid_lo, uint32_t avoid_hi);
/* Append [base, base+len) of type to map[0..*n) (max entries); an empty range is dropped. Returns 0 when the table is full. */
int mem_map_add(struct mem_range *map, int *n, int max, uint64_t base, uint64_t len, uint32_t type);
/*
 * The one "remove [lo, hi) from a map": every usable range of map[0..*n)
 * that overlaps it keeps its part before (in place); the overlap (reserved)
 * and its part after (usable) are appended, in that order; ranges left
 * empty are dropped. Non-usable ranges are untouched. mem_reserve works on
 * mem_map, int15.c on the guest's copy. Returns 0 when the table (max
 * entries) was too small: the pieces that did not fit are dropped, so the
 * carved range never stays usable (only usable memory is lost).
 */
int mem_carve(struct mem_range *map, int *n, int max, uint64_t lo, uint64_t hi);
/*
 * Mark [base, base+len) reserved in mem_map (mem_carve), so the resident
 * region, temporary memory and the guest's E820 map avoid it (GRUB modules
 * served from where they lie). Returns 0 when the table is full (the boot
 * stops then: some usable memory would be lost).
 */
int mem_reserve(uint64_t base, uint64_t len);
/* Start the bump allocator over the resident image's tail: [__image_end, res_size) in kernel pointers. */
void mem_heap_init(uint32_t res_size);
/* Allocate bytes (aligned to align, a power of two) from the resident heap; NULL if it is full. */
void *mem_alloc(uint32_t bytes, uint32_t align);
/* Bytes of the resident heap used so far. */
uint32_t mem_heap_used(void);
/*
 * Temporary memory (contents die at the guest jump): bytes of usable RAM
 * directly below the resident region and above avoid_hi. NULL if none.
 */
void *mem_temp(uint32_t bytes, uint32_t avoid_hi);

#endif
