/* fuzz_part.c: libFuzzer target: fs/part.c (MBR, extended/logical chains, GPT with backup) over the input as a whole disk. */
#include <stdint.h>
#include <string.h>
#include "fuzz_common.h"
#include "../../fs/part.h"

#define FUZZ_PART_MAX_STEPS 600u   /* more than 4 + PART_MAX_LOGICAL + a GPT's worth we look at */

/* Every code must have a message and a name. */
static void code_ok(int rc)
{
	if (rc < 0 || rc >= PART_E_COUNT || !part_strerror(rc) || !part_errname(rc))
		__builtin_trap();
}

/* A partition reported without error lies on the disk; its view reads only inside it. */
static void info_ok(struct fuzz_disk *f, int rc, const struct part_info *p)
{
	fuzz_str_ok(p->name, sizeof(p->name));
	if (p->scheme != PART_SCHEME_MBR && p->scheme != PART_SCHEME_GPT)
		__builtin_trap();
	if (rc == PART_OK && (p->sectors == 0 || p->start >= f->blk.sectors || p->sectors > f->blk.sectors - p->start))
		__builtin_trap();              /* "OK" for a partition that leaves the disk */
	if (rc != PART_OK)
		return;
	struct blk_window w;
	if (part_blk_init(&w, &f->blk, p) != PART_OK)
		return;
	uint8_t buf[BLK_SECTOR];
	if (w.dev.sectors) {
		if (blk_read(&w.dev, 0, 1, buf) != BLK_OK || blk_read(&w.dev, w.dev.sectors - 1, 1, buf) != BLK_OK)
			__builtin_trap();      /* a window on the disk must read */
	}
	if (blk_read(&w.dev, w.dev.sectors, 1, buf) == BLK_OK)
		__builtin_trap();              /* past the window */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_disk f;
	if (fuzz_disk_init(&f, data, size, 1, 0))
		return 0;
	static struct part_iter it;
	struct part_info p;
	int rc = part_open(&it, &f.blk);
	code_ok(rc);
	if (rc == PART_OK) {
		uint32_t last = 0;
		for (uint32_t n = 0; n < FUZZ_PART_MAX_STEPS; n++) {
			memset(&p, 0, sizeof(p));
			rc = part_next(&it, &p);
			code_ok(rc);
			if (rc != PART_OK && rc != PART_E_BEYOND_DISK)
				break;
			if (n && p.index <= last)
				__builtin_trap();      /* index order, each partition once */
			last = p.index;
			info_ok(&f, rc, &p);
			if (n + 1 == FUZZ_PART_MAX_STEPS)
				__builtin_trap();      /* the iteration did not end */
		}
		if (part_next(&it, &p) != PART_E_END)
			__builtin_trap();              /* after the end (or an error), only PART_E_END */
		uint32_t want = size ? data[size - 1] % 140 : 1;
		rc = part_find(&it, &f.blk, want, &p);
		code_ok(rc);
		if (rc == PART_OK || rc == PART_E_BEYOND_DISK) {
			if (p.index != want)
				__builtin_trap();
			info_ok(&f, rc, &p);
		}
	}
	fuzz_disk_free(&f);
	return 0;
}
