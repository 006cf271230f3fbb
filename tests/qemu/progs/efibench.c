/* efibench.c: EFI guest of bench/uefi_read.py: reads the served disk it was loaded from and its raw twin (the same bytes on a plain disk, read by the firmware's own driver) in turns, and prints the TSC cycles each took. */
#include "efiguest.h"             /* st, bs, mem*, say, guest_exit, dp_len */

/*
 * The twin: a whole-disk Block I/O that is not ours (no vendor node first)
 * with the same LastBlock and the same LBA 1 (GPT header, disk GUID). Each
 * round reads all of both disks sequentially in BENCH_CHUNK pieces, served
 * first in even rounds, raw first in odd ones. Output:
 *   "BENCH tsc_khz=K", "BENCH round=R served=CYCLES raw=CYCLES", "BENCH DONE" (exit 0x10),
 *   or "BENCH FAIL ..." (exit 0x11).
 */
#define BENCH_CHUNK (1u << 20)
#define BENCH_ROUNDS 5

static EFI_GUID guid_bio = EFI_BLOCK_IO_PROTOCOL_GUID, guid_dp = EFI_DEVICE_PATH_PROTOCOL_GUID,
		guid_li = EFI_LOADED_IMAGE_PROTOCOL_GUID;
static uint8_t lba1_a[512], lba1_b[512];

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static EFI_STATUS fail(const char *why)
{
	say("BENCH FAIL ", -1, 0);
	say(why, -1, 1);
	guest_exit(0x11);
	return EFI_DEVICE_ERROR;
}

/* Cycles to read all of b into buf (BENCH_CHUNK at a time); 0 on a read error. */
static uint64_t read_all(EFI_BLOCK_IO *b, uint8_t *buf)
{
	uint64_t blocks = b->Media->LastBlock + 1, per = BENCH_CHUNK / 512, t0 = rdtsc();
	for (uint64_t lba = 0; lba < blocks; lba += per) {
		uint64_t n = blocks - lba < per ? blocks - lba : per;
		if (b->ReadBlocks(b, b->Media->MediaId, lba, n * 512, buf) != EFI_SUCCESS)
			return 0;
	}
	return rdtsc() - t0;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	st = systab;
	bs = st->BootServices;
	EFI_LOADED_IMAGE *li;
	EFI_DEVICE_PATH *mine, *dp;
	UINTN n;
	EFI_HANDLE *h;
	EFI_BLOCK_IO *served = NULL, *raw = NULL;
	if (bs->HandleProtocol(image, &guid_li, (void **)&li) != EFI_SUCCESS ||
	    bs->HandleProtocol(li->DeviceHandle, &guid_dp, (void **)&mine) != EFI_SUCCESS ||
	    bs->LocateHandleBuffer(ByProtocol, &guid_bio, NULL, &n, &h) != EFI_SUCCESS)
		return fail("no Block I/O");
	size_t ml = dp_len(mine);
	for (UINTN i = 0; i < n; i++) {
		EFI_BLOCK_IO *b;
		if (bs->HandleProtocol(h[i], &guid_bio, (void **)&b) != EFI_SUCCESS || b->Media->LogicalPartition ||
		    bs->HandleProtocol(h[i], &guid_dp, (void **)&dp) != EFI_SUCCESS)
			continue;
		size_t l = dp_len(dp);
		if (l < ml && !memcmp(dp, mine, l))
			served = b;
	}
	if (!served || served->ReadBlocks(served, served->Media->MediaId, 1, 512, lba1_a) != EFI_SUCCESS)
		return fail("the served disk is not found");
	for (UINTN i = 0; i < n; i++) {
		EFI_BLOCK_IO *b;
		if (bs->HandleProtocol(h[i], &guid_bio, (void **)&b) != EFI_SUCCESS || b == served ||
		    b->Media->LogicalPartition || b->Media->LastBlock != served->Media->LastBlock ||
		    b->ReadBlocks(b, b->Media->MediaId, 1, 512, lba1_b) != EFI_SUCCESS || memcmp(lba1_a, lba1_b, 512))
			continue;
		raw = b;
	}
	if (!raw)
		return fail("no raw twin of the served disk");
	uint8_t *buf;
	if (bs->AllocatePool(EfiLoaderData, BENCH_CHUNK, (void **)&buf) != EFI_SUCCESS)
		return fail("no memory");
	uint64_t c0 = rdtsc();
	bs->Stall(100000);
	say("BENCH tsc_khz=", (int64_t)((rdtsc() - c0) / 100), 1);   /* hex, like every number here */
	read_all(served, buf);    /* warm both (the host's page cache, the image's block map) */
	read_all(raw, buf);
	for (int r = 0; r < BENCH_ROUNDS; r++) {
		uint64_t a, b;
		if (r & 1) {
			b = read_all(raw, buf);
			a = read_all(served, buf);
		} else {
			a = read_all(served, buf);
			b = read_all(raw, buf);
		}
		if (!a || !b)
			return fail("a read failed");
		say("BENCH round=", r, 0);
		say(" served=", (int64_t)a, 0);
		say(" raw=", (int64_t)b, 1);
	}
	say("BENCH DONE", -1, 1);
	guest_exit(0x10);
	return EFI_SUCCESS;
}
