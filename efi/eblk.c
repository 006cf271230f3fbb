/* eblk.c: the firmware's disks under UEFI: every whole-disk Block I/O handle (AHCI, NVMe, USB, virtio, ...) as a struct blk_dev in the disk registry (block/disk.h). */
#include "efi.h"
#include "../block/disk.h"
#include "../kernel/console.h"
#include "../kernel/string.h"

#define EBLK_BOUNCE_SECTORS 128u  /* 64 KiB: the bounce buffer for buffers the device's IoAlign refuses */

/* One firmware disk. */
struct eblk {
	struct blk_dev blk;
	EFI_BLOCK_IO *bio;
	EFI_HANDLE handle;        /* the firmware's handle of the disk (efi/efsync.c reinstalls its Block I/O) */
	uint8_t *bounce;          /* IoAlign-aligned, EBLK_BOUNCE_SECTORS sectors (NULL: IoAlign <= 1) */
	char name[12];
	int media_logged;
};

static struct eblk eblk_tab[DISK_MAX];

/* The vendor GUID of the disks vhdboot serves (efi/serve.c's device path node). */
EFI_GUID efi_guid_vhdboot = { 0xbb45c8af, 0xef6d, 0x4f0e, { 0x84, 0x3d, 0x8e, 0x34, 0x28, 0x83, 0xd8, 0x75 } };

/* Length of device path node dp. */
static size_t eblk_node_len(const EFI_DEVICE_PATH *dp)
{
	return (size_t)dp->Length[0] | ((size_t)dp->Length[1] << 8);
}

size_t eblk_dp_size(const EFI_DEVICE_PATH *dp)
{
	size_t total = 0;
	for (int i = 0; i < 128; i++) {
		size_t len = eblk_node_len(dp);
		if (len < 4 || total + len > 4096)
			return 0;
		total += len;
		if (dp->Type == END_DEVICE_PATH_TYPE && dp->SubType == END_ENTIRE_DEVICE_PATH_SUBTYPE)
			return total;
		dp = (const EFI_DEVICE_PATH *)((const uint8_t *)dp + len);
	}
	return 0;
}

int eblk_is_ours(const EFI_DEVICE_PATH *dp)
{
	return dp && dp->Type == HARDWARE_DEVICE_PATH && dp->SubType == HW_VENDOR_DP && eblk_node_len(dp) >= 20 &&
	       !memcmp((const uint8_t *)dp + 4, &efi_guid_vhdboot, sizeof(EFI_GUID));
}

/* The transport named by the path's last messaging node ("sata", "nvme", "usb", ...), or "pci" / "disk". */
static const char *eblk_kind(const EFI_DEVICE_PATH *dp)
{
	const char *kind = "disk";
	for (int i = 0; dp && i < 64 && dp->Type != END_DEVICE_PATH_TYPE; i++) {
		size_t len = eblk_node_len(dp);
		if (len < 4)
			break;
		if (dp->Type == HARDWARE_DEVICE_PATH && dp->SubType == HW_PCI_DP && !strcmp(kind, "disk"))
			kind = "pci";
		if (dp->Type == MESSAGING_DEVICE_PATH) {
			switch (dp->SubType) {
			case MSG_ATAPI_DP: kind = "ide"; break;
			case MSG_SCSI_DP: kind = "scsi"; break;
			case MSG_USB_DP: kind = "usb"; break;
			case MSG_SATA_DP: kind = "sata"; break;
			case 23: kind = "nvme"; break;       /* NVM Express namespace (UEFI 2.4+) */
			case 26: kind = "sd"; break;
			case 29: kind = "emmc"; break;
			}
		}
		dp = (const EFI_DEVICE_PATH *)((const uint8_t *)dp + len);
	}
	return kind;
}

/* Turn a Block I/O status into a blk status, logging the media's trouble once. */
static int eblk_status(struct eblk *e, EFI_STATUS st, const char *op, uint64_t lba, uint32_t count)
{
	if (st == EFI_SUCCESS)
		return BLK_OK;
	if (!e->media_logged++ || st != EFI_MEDIA_CHANGED)
		con_printf("disk: %s: %s LBA %llu count %u failed: status %llx%s\n", e->name, op,
			   (unsigned long long)lba, count, (unsigned long long)st,
			   st == EFI_MEDIA_CHANGED ? " (the medium changed: vhdboot does not follow it)" :
			   st == EFI_WRITE_PROTECTED ? " (write protected)" : st == EFI_NO_MEDIA ? " (no medium)" : "");
	return st == EFI_WRITE_PROTECTED ? BLK_E_RO : BLK_E_IO;
}

/* blk_dev.read: ReadBlocks, straight into buf when its alignment suits the device, else through the bounce buffer. */
static int eblk_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct eblk *e = d->priv;
	EFI_BLOCK_IO *b = e->bio;
	if (!e->bounce || ((uintptr_t)buf & (b->Media->IoAlign - 1)) == 0)
		return eblk_status(e, b->ReadBlocks(b, b->Media->MediaId, lba, (UINTN)count * BLK_SECTOR, buf), "read",
				   lba, count);
	while (count) {
		uint32_t n = count < EBLK_BOUNCE_SECTORS ? count : EBLK_BOUNCE_SECTORS;
		int rc = eblk_status(e, b->ReadBlocks(b, b->Media->MediaId, lba, (UINTN)n * BLK_SECTOR, e->bounce),
				     "read", lba, n);
		if (rc)
			return rc;
		memcpy(buf, e->bounce, (size_t)n * BLK_SECTOR);
		buf = (uint8_t *)buf + (size_t)n * BLK_SECTOR;
		lba += n;
		count -= n;
	}
	return BLK_OK;
}

/* blk_dev.write: WriteBlocks (bounced as for reads); durable only after eblk_flush. */
static int eblk_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct eblk *e = d->priv;
	EFI_BLOCK_IO *b = e->bio;
	if (!e->bounce || ((uintptr_t)buf & (b->Media->IoAlign - 1)) == 0)
		return eblk_status(e, b->WriteBlocks(b, b->Media->MediaId, lba, (UINTN)count * BLK_SECTOR, (void *)buf),
				   "write", lba, count);
	while (count) {
		uint32_t n = count < EBLK_BOUNCE_SECTORS ? count : EBLK_BOUNCE_SECTORS;
		memcpy(e->bounce, buf, (size_t)n * BLK_SECTOR);
		int rc = eblk_status(e, b->WriteBlocks(b, b->Media->MediaId, lba, (UINTN)n * BLK_SECTOR, e->bounce),
				     "write", lba, n);
		if (rc)
			return rc;
		buf = (const uint8_t *)buf + (size_t)n * BLK_SECTOR;
		lba += n;
		count -= n;
	}
	return BLK_OK;
}

/* blk_dev.flush: FlushBlocks (the device's write cache to the medium). */
static int eblk_flush(struct blk_dev *d)
{
	struct eblk *e = d->priv;
	return eblk_status(e, e->bio->FlushBlocks(e->bio), "flush", 0, 0);
}

/* eblk_handle, the contract in efi.h. */
EFI_HANDLE eblk_handle(const struct blk_dev *d, EFI_BLOCK_IO **bio)
{
	if (!d || d->read != eblk_read)
		return NULL;
	const struct eblk *e = d->priv;
	if (bio)
		*bio = e->bio;
	return e->handle;
}

/* eblk_register_all, the contract in efi.h. */
int eblk_register_all(void)
{
	UINTN n = 0;
	EFI_HANDLE *h = NULL;
	int count = 0;
	if (efi_bs->LocateHandleBuffer(ByProtocol, &efi_guid_blockio, NULL, &n, &h) != EFI_SUCCESS) {
		con_printf("disk: the firmware offers no Block I/O device\n");
		return 0;
	}
	for (UINTN i = 0; i < n && count < DISK_MAX; i++) {
		EFI_BLOCK_IO *b;
		EFI_DEVICE_PATH *dp = NULL;
		if (efi_bs->HandleProtocol(h[i], &efi_guid_blockio, (void **)&b) != EFI_SUCCESS)
			continue;
		efi_bs->HandleProtocol(h[i], &efi_guid_devpath, (void **)&dp);
		if (b->Media->LogicalPartition || eblk_is_ours(dp))
			continue;             /* partitions: fs/part.c reads the tables itself; ours: not a host disk */
		const char *kind = eblk_kind(dp);
		if (!b->Media->MediaPresent) {
			con_printf("disk: %s Block I/O without a medium: skipped\n", kind);
			continue;
		}
		if (b->Media->BlockSize != BLK_SECTOR) {
			con_printf("disk: %s with %u-byte logical blocks: skipped: vhdboot's partition, file system and image code "
				   "count 512-byte sectors (4Kn host disks are not supported; put the images on a disk with "
				   "512-byte logical blocks: 512n or 512e)\n", kind, b->Media->BlockSize);
			continue;
		}
		struct eblk *e = &eblk_tab[count];
		memset(e, 0, sizeof(*e));
		e->bio = b;
		e->handle = h[i];
		if (b->Media->IoAlign > 1) {
			uint32_t al = b->Media->IoAlign;
			void *p;
			if ((al & (al - 1)) || efi_bs->AllocatePool(EfiLoaderData, EBLK_BOUNCE_SECTORS * BLK_SECTOR + al, &p) != EFI_SUCCESS) {
				con_printf("disk: %s: IoAlign %u unusable (not a power of two, or no memory): skipped\n", kind, al);
				continue;
			}
			e->bounce = (uint8_t *)(((uintptr_t)p + al - 1) & ~(uintptr_t)(al - 1));
		}
		e->blk.sectors = b->Media->LastBlock + 1;
		e->blk.size_bytes = e->blk.sectors * BLK_SECTOR;
		e->blk.max_sectors = e->blk.sectors;
		e->blk.read_only = b->Media->ReadOnly;
		e->blk.read = eblk_read;
		e->blk.write = b->Media->ReadOnly ? NULL : eblk_write;
		e->blk.flush = eblk_flush;
		e->blk.priv = e;
		char model[48];
		k_snprintf(model, sizeof(model), "EFI Block I/O%s%s, IoAlign %u", b->Media->RemovableMedia ? ", removable" : "",
			   b->Media->ReadOnly ? ", read-only" : "", b->Media->IoAlign);
		char where[16];
		k_snprintf(where, sizeof(where), "%s%d", kind, count);
		int k = disk_add(&e->blk, "efi", where, model, 0);
		if (k < 0)
			break;
		k_strlcpy(e->name, disk_get(k)->label, sizeof(e->name));
		e->blk.name = e->name;
		count++;
	}
	efi_bs->FreePool(h);
	return count;
}
