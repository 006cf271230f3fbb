/* kheap.h: the kernel's memory globals and a bump heap (mem_alloc, mem_temp) for host programs that link kernel/scan.c, imgopen.c and select.c (test_select, test_efihandover, fuzz_scan). */
#ifndef TESTS_UNIT_KHEAP_H
#define TESTS_UNIT_KHEAP_H

#include <stdint.h>

/* Bytes mem_alloc hands out between two kheap_reset calls. */
#define KHEAP_SIZE (8u << 20)

/*
 * One arena below 4 GiB (MAP_32BIT; kernel_base stays 0, so physical ==
 * pointer): the scan's scratch (IOP_SCRATCH bytes), then the heap.
 * Map it on the first call, reuse it after; 0, or -1 if mmap fails.
 */
int kheap_init(void);
/* Empty the heap and give the arena's scratch to the next iop_init. Caller has had kheap_init return 0. */
void kheap_reset(void);

#endif
