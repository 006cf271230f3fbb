/* fuzz_common.h: what the libFuzzer targets share: the input as a bounded RAM block device that traps on any access outside it. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "../../block/blk.h"

/* A RAM disk over a copy of (part of) the input; writes trap unless writable is set. */
struct fuzz_disk {
	struct blk_dev blk;
	uint8_t *data;        /* backed * 512 bytes, owned; sectors past them read as zeros */
	uint64_t backed;
	int writable;
	uint32_t reads;       /* callbacks received, to bound the work one input may cause */
};

/* The layer above must never ask for sectors outside the device: that would be a range check missing. */
static inline void fuzz_disk_range(struct fuzz_disk *f, uint64_t lba, uint32_t count)
{
	if (count == 0 || lba >= f->blk.sectors || count > f->blk.sectors - lba)
		__builtin_trap();
}

/* Read count sectors at lba (always inside the device, or the fuzzer stops). */
static inline int fuzz_disk_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct fuzz_disk *f = d->priv;
	fuzz_disk_range(f, lba, count);
	f->reads++;
	memset(buf, 0, (size_t)count * BLK_SECTOR);
	if (lba < f->backed)
		memcpy(buf, f->data + lba * BLK_SECTOR,
		       (size_t)(count < f->backed - lba ? count : f->backed - lba) * BLK_SECTOR);
	return BLK_OK;
}

/* Write count sectors at lba; a parser that writes (they are read-only by contract) traps. */
static inline int fuzz_disk_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct fuzz_disk *f = d->priv;
	if (!f->writable)
		__builtin_trap();
	fuzz_disk_range(f, lba, count);
	if (lba + count > f->backed)
		return BLK_E_IO;              /* the zero tail is not stored */
	memcpy(f->data + lba * BLK_SECTOR, buf, (size_t)count * BLK_SECTOR);
	return BLK_OK;
}

/* Nothing is cached: flush has nothing to do. */
static inline int fuzz_disk_flush(struct blk_dev *d)
{
	(void)d;
	return BLK_OK;
}

/* Make f a disk of the input's bytes (zero-padded to whole sectors), at least min_sectors long (the rest reads as zeros); 0 or -1 (no memory). */
static inline int fuzz_disk_init(struct fuzz_disk *f, const uint8_t *data, size_t size, uint64_t min_sectors, int writable)
{
	uint64_t b = (size + BLK_SECTOR - 1) / BLK_SECTOR, n = b < min_sectors ? min_sectors : b;
	memset(f, 0, sizeof(*f));
	f->backed = b;
	f->data = calloc(b ? b : 1, BLK_SECTOR);
	if (!f->data)
		return -1;
	if (size)
		memcpy(f->data, data, size);
	f->writable = writable;
	f->blk.name = "fuzz";
	f->blk.sectors = n;
	f->blk.size_bytes = n * BLK_SECTOR;
	f->blk.max_sectors = n;
	f->blk.read_only = !writable;
	f->blk.read = fuzz_disk_read;
	f->blk.write = fuzz_disk_write;
	f->blk.flush = fuzz_disk_flush;
	f->blk.priv = f;
	return 0;
}

/* Release what fuzz_disk_init allocated. */
static inline void fuzz_disk_free(struct fuzz_disk *f)
{
	free(f->data);
	f->data = NULL;
}

/* The firmware's physical memory [at, at+size) for targets that read it (int15, mbinfo): mapped on the first
 * call, the same window after (kernel_base 0, so phys_ptr(p) == p inside it); traps if the range is taken. */
static inline uint8_t *fuzz_phys_window(uint32_t at, uint32_t size)
{
	static uint8_t *win;
	if (!win) {
		win = mmap((void *)(uintptr_t)at, size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (win != (void *)(uintptr_t)at)
			__builtin_trap();
	}
	return win;
}

/* A C string must end inside its buffer: anything else is a missing terminator. */
static inline void fuzz_str_ok(const char *s, size_t cap)
{
	if (!memchr(s, 0, cap))
		__builtin_trap();
}

#endif
