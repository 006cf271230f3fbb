/* phys.h: the one place that converts between physical addresses and kernel pointers. */
#ifndef PHYS_H
#define PHYS_H

#include <stdint.h>

/*
 * The kernel is linked at 0 and runs with segment bases equal to
 * kernel_base (its physical load address), so a pointer is
 * (physical - kernel_base) mod 2^32. Flat 4 GiB segments wrap, so every
 * physical address stays reachable.
 */
extern uint32_t kernel_base;

static inline void *phys_ptr(uint32_t phys)
{
	return (void *)(uintptr_t)(phys - kernel_base);
}

static inline uint32_t virt_to_phys(const void *p)
{
	return (uint32_t)(uintptr_t)p + kernel_base;
}

#endif
