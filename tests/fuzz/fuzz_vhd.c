/* fuzz_vhd.c: libFuzzer target: open, BAT load, overlap check, reads and check of an in-memory image (read-only). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_common.h"     /* fuzz_disk: the input as a read-only device that traps on writes and out-of-range reads */
#include "../../vhd/vhd.h"

#define FUZZ_BAT_CAP (64u << 20)   /* largest BAT we allocate: bigger ones are not worth the memory */
#define FUZZ_READ_SECTORS 8u

/* Every code the library returns must be one it has a message and a name for. */
static void fuzz_code(int rc)
{
	if (rc < 0)
		rc = -rc;
	if (rc >= VHD_E_COUNT || !vhd_strerror(rc) || !vhd_errname(rc))
		__builtin_trap();
}

static void fuzz_report(void *ctx, int code, uint64_t a, uint64_t b)
{
	(void)a; (void)b;
	++*(int *)ctx;
	if (code <= 0 || code >= VHD_C_COUNT || !vhd_check_msg(code))
		__builtin_trap();
}

/* Read count sectors at lba; fixed images must read back the input bytes themselves. */
static void fuzz_read_range(struct vhd *v, const uint8_t *data, size_t size, uint64_t lba, uint32_t count)
{
	static uint8_t buf[FUZZ_READ_SECTORS * VHD_SECTOR];
	if (count > FUZZ_READ_SECTORS)
		count = FUZZ_READ_SECTORS;
	int rc = vhd_read(v, lba, count, buf);
	fuzz_code(rc);
	if (lba >= v->sectors || count > v->sectors - lba) {
		if (rc == VHD_OK)
			__builtin_trap();          /* a read past the virtual disk succeeded */
		return;
	}
	if (rc == VHD_OK && v->footer.type == VHD_TYPE_FIXED && !(v->state & VHD_ST_BACKUP_FOOTER)) {
		uint64_t off = lba * VHD_SECTOR;
		size_t n = (size_t)count * VHD_SECTOR;
		if (off + n <= size && memcmp(buf, data + off, n) != 0)
			__builtin_trap();          /* fixed disk data is the file itself */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_disk disk;
	uint32_t *bat = NULL, *scratch = NULL;
	if (fuzz_disk_init(&disk, data, size, 0, 0))
		return 0;
	/* The file's exact length, not whole sectors: vhd_open looks for the footer in its last 512 (or 511) bytes;
	 * the partial last sector reads with a zero tail. */
	disk.blk.size_bytes = size;

	static struct vhd v;
	memset(&v, 0, sizeof(v));
	int rc = vhd_open(&v, &disk.blk, VHD_OPEN_RDONLY);
	fuzz_code(rc);
	if (rc != VHD_OK)
		goto out;

	size_t bb = vhd_bat_bytes(&v);
	if (bb > FUZZ_BAT_CAP)
		goto out;
	bat = malloc(bb ? bb : 4);
	scratch = malloc(bb ? bb : 4);
	if (!bat || !scratch)
		goto out;
	if (bb) {
		rc = vhd_load_bat(&v, bat);
		fuzz_code(rc);
		if (rc != VHD_OK)
			goto out;
		fuzz_code(vhd_check_overlaps(&v, scratch));
	}

	/* A differencing image has no parent here: its reads fail with VHD_E_NO_PARENT, which is fine. */
	uint64_t n = v.sectors;
	uint32_t spb = v.spb ? v.spb : 1;
	fuzz_read_range(&v, data, size, 0, 1);
	fuzz_read_range(&v, data, size, n / 2, FUZZ_READ_SECTORS);
	if (n)
		fuzz_read_range(&v, data, size, n - 1, 1);
	if (n > spb)
		fuzz_read_range(&v, data, size, spb - 1, 2);   /* across the first block boundary */
	fuzz_read_range(&v, data, size, n, 1);             /* past the end: must fail */
	if (size >= 8) {
		uint64_t lba;
		memcpy(&lba, data + size - 8, sizeof(lba));
		fuzz_read_range(&v, data, size, n ? lba % n : 0, (uint32_t)(lba >> 60) + 1);
	}

	int defects = 0;
	rc = vhd_check(&v, scratch, VHD_CHECK_DEEP, 0, fuzz_report, &defects);
	if (rc < 0)
		fuzz_code(rc);
	else if (rc != defects)
		__builtin_trap();                  /* the count returned must match the reports */
out:
	free(bat);
	free(scratch);
	fuzz_disk_free(&disk);
	return 0;
}
