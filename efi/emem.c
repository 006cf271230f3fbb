/* emem.c: memory for the shared selection code under UEFI: kernel/mem.h's mem_alloc and mem_temp from boot-services pool, imgopen's scan scratch from AllocatePages below 4 GiB. */
#include "efi.h"
#include "../kernel/mem.h"
#include "../kernel/imgopen.h"    /* IOP_SCRATCH, iop_use_scratch */
#include "../kernel/console.h"
#include "../kernel/string.h"

/*
 * kernel/phys.h: UEFI runs identity-mapped, so a physical address is the
 * pointer (kernel_base 0). imgopen's scratch is addressed as a 32-bit
 * physical address, hence AllocateMaxAddress below 4 GiB.
 */
uint32_t kernel_base;
/*
 * kernel/mem.h's multiboot memory map: under UEFI there is none (the
 * firmware owns the map and hands out memory on request). imgopen.c reads
 * it only to search for a scratch when none was given; emem_init gives one.
 */
struct mem_range mem_map[MEM_MAX_RANGES];
int mem_nranges;
/* kernel/mem.h's resident region: none under UEFI (the hand-over table's resident_phys/bytes are 0). */
uint32_t mem_res_base, mem_res_size;

/* emem_init, the contract in efi.h. */
int emem_init(void)
{
	EFI_PHYSICAL_ADDRESS a = 0xFFFFFFFFull;
	EFI_STATUS st = efi_bs->AllocatePages(AllocateMaxAddress, EfiLoaderData, IOP_SCRATCH / 4096, &a);
	if (st != EFI_SUCCESS) {
		con_printf("memory: no %u KiB below 4 GiB for the scan (AllocatePages: status %llx)\n",
			   IOP_SCRATCH >> 10, (unsigned long long)st);
		return -1;
	}
	iop_use_scratch((uint32_t)a);
	return 0;
}

/* mem.h: bytes aligned to align (a power of two), zeroed, from boot-services pool (kept until ExitBootServices); NULL when none is left. */
void *mem_alloc(uint32_t bytes, uint32_t align)
{
	void *p;
	if (align < 8)
		align = 8;
	if (efi_bs->AllocatePool(EfiLoaderData, (UINTN)bytes + align, &p) != EFI_SUCCESS)
		return NULL;
	uintptr_t u = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
	memset((void *)u, 0, bytes);
	return (void *)u;
}

/* mem.h: temporary memory (the overlap check's scratch): pool as well, page-aligned; avoid_hi has no meaning here. */
void *mem_temp(uint32_t bytes, uint32_t avoid_hi)
{
	(void)avoid_hi;
	return bytes ? mem_alloc(bytes, 4096) : NULL;
}
