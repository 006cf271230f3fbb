/* mbinfo.h: what the multiboot loader (GRUB) passed besides the command line and memory map: its modules. */
#ifndef MBINFO_H
#define MBINFO_H

#include <stdint.h>
#include "kerr.h"
#include "../drivers/driver.h"

/*
 * Copy the module list of the multiboot info at mbi_phys into bi (start,
 * end, command line; empty modules skipped, at most DRV_MAX_MODULES) and
 * reserve each module's memory from the guest's map (it is served where
 * GRUB put it). Call before anything reuses the MBI. 0, or -1 with *e set.
 */
int mbinfo_modules(uint32_t mbi_phys, struct drv_boot_info *bi, struct kerr *e);

#endif
