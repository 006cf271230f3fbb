/* fuzz_scan.c: libFuzzer target: the boot scan over a whole disk image (kernel/scan.c: partitions, FAT volumes, image files and partitions; kernel/imgopen.c: opening and checking each candidate). */
#include <stdint.h>
#include <string.h>
#include "fuzz_common.h"
#include "../unit/kstubs.h"
#include "../unit/kheap.h"        /* kheap_init, kheap_reset: mem_alloc and the scan's scratch */
#include "../../kernel/scan.h"
#include "../../kernel/imgopen.h"
#include "../../kernel/select.h"
#include "../../kernel/kerr.h"
#include "../../block/disk.h"

/*
 * The input is one disk (ATA primary master), zero-padded to at least 2 MiB
 * so a VHD footer at the end of a seed is found where a real disk has it.
 * The kernel's memory scan.c/imgopen.c use comes from tests/unit/kheap.c
 * as in tests/unit/test_select.c: a bump heap and the scan's scratch in an
 * arena below 4 GiB (kernel_base 0, so physical == pointer).
 */
#define FUZZ_SCAN_MIN_SECTORS 64u

/* The menu is not reached by the scan. */
int menu_choose(const char *const *names, int n, int def, int timeout_s, uint32_t tsc_per_ms, int *by_user)
{
	(void)names; (void)n; (void)def; (void)timeout_s; (void)tsc_per_ms; (void)by_user;
	__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (kheap_init())
		__builtin_trap();
	struct fuzz_disk f;
	if (fuzz_disk_init(&f, data, size, FUZZ_SCAN_MIN_SECTORS, 0))
		return 0;
	disk_reset();
	if (disk_add(&f.blk, "ata", "pm", "fuzz", 0) < 0)
		__builtin_trap();
	kstubs_log_reset();
	kheap_reset();
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
