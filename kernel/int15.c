/* int15.c: INT 15h E820h/E801h/88h from a memory map computed at install, with vhdboot's memory marked reserved. */
#include "guestmem.h"
#include "int15.h"
#include "mem.h"
#include "console.h"

/* The guest's map: mem_map with vhdboot's memory carved out (mem_carve), sorted by base. */
static struct mem_range int15_map[INT15_MAX_ENTRIES];
static int int15_n;

/*
 * Turn [lo, hi) reserved in the guest's map. The table has 16 entries
 * more than mem_map, and each hide adds two per usable range it cuts; if
 * it still overflows, mem_carve drops pieces so the range is never left
 * usable (the result is ignored: the guest just sees less memory).
 */
static void int15_hide(uint64_t lo, uint64_t hi)
{
	(void)mem_carve(int15_map, &int15_n, INT15_MAX_ENTRIES, lo, hi);
}

/* Insertion sort by base (the table is small). */
static void int15_sort(void)
{
	for (int i = 1; i < int15_n; i++) {
		struct mem_range t = int15_map[i];
		int j = i - 1;
		while (j >= 0 && int15_map[j].base > t.base) {
			int15_map[j + 1] = int15_map[j];
			j--;
		}
		int15_map[j + 1] = t;
	}
}

int int15_init(uint32_t res_base, uint32_t res_size, uint32_t low_lo, uint32_t low_hi)
{
	int15_n = 0;
	for (int i = 0; i < mem_nranges; i++)
		mem_map_add(int15_map, &int15_n, INT15_MAX_ENTRIES, mem_map[i].base, mem_map[i].len, mem_map[i].type);
	int15_hide(res_base, (uint64_t)res_base + res_size);
	if (low_hi > low_lo)
		int15_hide(low_lo, low_hi);
	int15_sort();
	return int15_n;
}

uint32_t int15_ext_kb(void)
{
	uint64_t cur = 0x100000;
	for (int pass = 0; pass < int15_n; pass++) {
		int grown = 0;
		for (int i = 0; i < int15_n; i++) {
			const struct mem_range *e = &int15_map[i];
			if (e->type == MEM_USABLE && e->base <= cur && cur < e->base + e->len) {
				cur = e->base + e->len;
				grown = 1;
			}
		}
		if (!grown)
			break;
	}
	if (cur > 0x100000000ull)
		cur = 0x100000000ull;
	return (uint32_t)((cur - 0x100000) >> 10);
}

void int15_log(void)
{
	for (int i = 0; i < int15_n; i++)
		con_printf("  e820 %016llx-%016llx type %u\n",
			   (unsigned long long)int15_map[i].base,
			   (unsigned long long)(int15_map[i].base + int15_map[i].len - 1),
			   int15_map[i].type);
}

/* Store a little-endian value of n bytes at p. */
static void int15_put(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* AX=E820h: EBX = continuation (our index), ES:DI buffer, ECX size, EDX "SMAP". */
static void int15_e820(struct rm_regs *r)
{
	uint32_t idx = r->ebx, size = r->ecx >= 24 ? 24 : 20;
	uint8_t *buf = guestmem_ptr(((uint32_t)r->es << 4) + (r->edi & 0xFFFF), size);
	if (r->edx != INT15_SMAP || r->ecx < 20 || idx >= (uint32_t)int15_n || !buf) {
		RM_SET_AH(r, 0x86);       /* "function not supported", as BIOSes answer */
		r->flags |= RM_FLAG_CF;
		return;
	}
	int15_put(buf, int15_map[idx].base, 8);
	int15_put(buf + 8, int15_map[idx].len, 8);
	int15_put(buf + 16, int15_map[idx].type, 4);
	if (size == 24)
		int15_put(buf + 20, 1, 4);    /* ACPI 3.0 attributes: enabled */
	r->eax = INT15_SMAP;
	r->ecx = size;
	r->ebx = idx + 1 < (uint32_t)int15_n ? idx + 1 : 0;
	r->flags &= ~RM_FLAG_CF;
}

void int15_handle(struct rm_regs *r)
{
	uint32_t kb = int15_ext_kb();
	if ((r->eax & 0xFFFF) == 0xE820) {
		int15_e820(r);
	} else if ((r->eax & 0xFFFF) == 0xE801 || (r->eax & 0xFFFF) == 0xE881) {
		/* AX/CX: KiB between 1 and 16 MiB; BX/DX: 64 KiB blocks above 16 MiB (E881h: 32-bit). */
		uint32_t lo = kb > 15 * 1024 ? 15 * 1024 : kb;
		uint32_t hi = kb > 15 * 1024 ? (kb - 15 * 1024) >> 6 : 0;
		if (hi > 0xFFFF)
			hi = 0xFFFF;
		if ((r->eax & 0xFFFF) == 0xE881) {
			r->eax = r->ecx = lo;
			r->ebx = r->edx = hi;
		} else {
			RM_SET_AX(r, lo);
			RM_SET_CX(r, lo);
			RM_SET_BX(r, hi);
			RM_SET_DX(r, hi);
		}
		r->flags &= ~RM_FLAG_CF;
	} else if (RM_AH(r) == 0x88) {
		/* KiB above 1 MiB, capped at 63 MiB as SeaBIOS does (old callers choke on more). */
		RM_SET_AX(r, kb > 63 * 1024 ? 63 * 1024 : kb);
		r->flags &= ~RM_FLAG_CF;
	} else {
		RM_SET_AH(r, 0x86);
		r->flags |= RM_FLAG_CF;
	}
}
