/* efsync.c: after an image file on a host disk grew, make the firmware's own drivers on that disk (Disk I/O, partitions, FAT) drop their caches by reinstalling the disk's Block I/O, so they never write a stale FAT or directory sector back over the growth. */
#include "efi.h"
#include "../kernel/console.h"
#include "../kernel/imgopen.h"    /* iop_growths */

/*
 * Why: vhdboot.efi grows a file with fs/grow.c over the host disk's raw
 * Block I/O (docs/grow.md), while the firmware's FAT driver (EDK2's FatDxe
 * on OVMF) has the same volume mounted -- it loaded vhdboot.efi from it.
 * That driver caches FAT and directory sectors and its free-cluster count;
 * the next time anything writes a file on that volume through it, it works
 * from the old FAT and directory entry (a shorter file, those clusters
 * free) and writes them back: the growth is undone and the clusters may be
 * handed out twice. EDK2 drops a volume's caches only when its driver is
 * stopped. ReinstallProtocolInterface of the disk's Block I/O with the same
 * interface is the specification's way to say "this device changed": the
 * firmware disconnects every driver that opened it (Disk I/O, and with it
 * the partition and FAT drivers above) and connects them again, and the
 * FAT driver mounts the volume afresh from the disk.
 *
 * When: once per WriteBlocks that grew the file, but not inside it. A
 * WriteBlocks may come from the firmware's FAT driver on the served image's
 * own ESP, which holds the lock that every FAT volume shares; stopping the
 * host's FAT driver then would have to wait for it. So the hook signals a
 * TPL_CALLBACK event, which the firmware runs as soon as the TPL drops
 * below TPL_CALLBACK again: when our WriteBlocks returns to a caller at
 * TPL_APPLICATION, or after the FAT call around it has released its lock.
 * Several growths before it runs are one reinstall.
 *
 * What is not touched: our served disk (its own handle, a vendor device
 * path of its own, not below the host disk), the image's loader and its
 * files (on the served disk), and our pointer to the host's Block I/O (the
 * same interface is installed again).
 */

/* One watched served disk. */
struct efs {
	struct esrv *srv;         /* the served disk whose writes are watched */
	EFI_HANDLE disk;          /* the host disk holding the image file */
	EFI_BLOCK_IO *bio;        /* its Block I/O (reinstalled as it is) */
	const char *what;
	int pending;              /* a growth since the last reinstall */
};

static struct efs efs_tab[ESRV_MAX];
static int efs_count;
static EFI_EVENT efs_event;
static uint32_t efs_seen;         /* iop_growths() at the last check */
static int efs_logged;

/* efs_should_sync, the contract in efi.h. */
int efs_should_sync(uint32_t seen, uint32_t now, int have_handle)
{
	return now != seen && have_handle;
}

/* efs_after_growth, the contract in efi.h. */
EFI_STATUS efs_after_growth(EFI_HANDLE disk, EFI_BLOCK_IO *bio, const char *what)
{
	EFI_STATUS st = efi_bs->ReinstallProtocolInterface(disk, &efi_guid_blockio, bio, bio);
	if (st != EFI_SUCCESS)
		con_printf("efsync: %s: the image file grew, but reinstalling the host disk's Block I/O failed (status %llx): "
			   "the firmware's FAT driver may still hold the old FAT and size; remedy: do not write files on that "
			   "volume from the firmware before a reset, and check it (fsck.fat -n) afterwards\n", what,
			   (unsigned long long)st);
	else if (!efs_logged++)
		con_printf("efsync: %s: the image file grew: the host disk's Block I/O reinstalled, so the firmware's "
			   "partition and FAT drivers on it start again from the disk (their caches dropped; later ones are "
			   "not logged)\n", what);
	return st;
}

/* The event's notify function (TPL_CALLBACK, outside every Block I/O and firmware file-system call): reinstall each disk that saw a growth. */
static VOID EFIAPI efs_notify(EFI_EVENT ev, VOID *ctx)
{
	(void)ev;
	(void)ctx;
	for (int i = 0; i < efs_count; i++)
		if (efs_tab[i].pending) {
			efs_tab[i].pending = 0;
			efs_after_growth(efs_tab[i].disk, efs_tab[i].bio, efs_tab[i].what);
		}
}

/* The served disk's after-write hook: a write that grew the file marks its host disk and signals the event. */
static void efs_after_write(void *ctx)
{
	struct efs *e = ctx;
	uint32_t now = iop_growths();
	if (!efs_should_sync(efs_seen, now, e->disk != NULL))
		return;
	efs_seen = now;
	e->pending = 1;
	efi_bs->SignalEvent(efs_event);
}

/* efs_watch_disk, the contract in efi.h. */
int efs_watch_disk(struct esrv *s, EFI_HANDLE disk, EFI_BLOCK_IO *bio, const char *what)
{
	struct efs *e = NULL;
	for (int i = 0; i < efs_count && !e; i++)
		if (efs_tab[i].srv == s)
			e = &efs_tab[i];          /* watched again (served anew): the new host disk replaces the old */
	if (!e && efs_count >= ESRV_MAX)
		return -1;
	if (!efs_event && efi_bs->CreateEvent(EVT_NOTIFY_SIGNAL, TPL_CALLBACK, efs_notify, NULL, &efs_event) != EFI_SUCCESS) {
		efs_event = NULL;
		con_printf("efsync: %s: no event for the host disk's resync: a growing image file is not safe from the "
			   "firmware's FAT cache; remedy: grow=no, or a fixed VHD\n", what);
		return -1;
	}
	if (!e)
		e = &efs_tab[efs_count++];
	e->srv = s;
	e->disk = disk;
	e->bio = bio;
	e->what = what;
	e->pending = 0;
	efs_seen = iop_growths();
	esrv_set_after_write(s, efs_after_write, e);
	return 0;
}

/* efs_watch, the contract in efi.h. */
int efs_watch(struct esrv *s, struct blk_dev *host, const char *what)
{
	EFI_BLOCK_IO *bio = NULL;
	EFI_HANDLE disk = eblk_handle(host, &bio);
	if (!disk)
		return 0;             /* not a firmware disk: nothing of the firmware caches it */
	return efs_watch_disk(s, disk, bio, what);
}
