/* serve.c: the chosen image served as a new EFI handle: a vendor device path of its own and EFI_BLOCK_IO_PROTOCOL whose requests go through blk_read/blk_write/blk_flush. */
#include "efi.h"
#include "../kernel/console.h"
#include "../kernel/string.h"
#include "../kernel/container.h"  /* CONTAINER_OF */

#define ESRV_CHUNK 0x8000u        /* sectors per blk call (16 MiB): keeps counts in 32 bits */

extern EFI_GUID efi_guid_vhdboot;

/* VenHw(vhdboot GUID, index) followed by End: a standalone path (the image is a disk of its own). */
struct esrv_path {
	uint8_t ven[4 + 16 + 4];  /* header, GUID, index (little-endian) */
	uint8_t end[4];
};

struct esrv {
	EFI_BLOCK_IO bio;
	EFI_BLOCK_IO_MEDIA media;
	struct esrv_path path;
	EFI_HANDLE handle;
	struct blk_dev *dev;
	int trace;
	const char *what;
	void (*after_write)(void *ctx);   /* esrv_set_after_write */
	void *after_ctx;
	uint64_t reads, writes, flushes, errors, sectors_read, sectors_written;
};

static struct esrv esrv_tab[ESRV_MAX];

/* The served disk of a protocol instance. */
static struct esrv *esrv_of(EFI_BLOCK_IO *This)
{
	return CONTAINER_OF(This, struct esrv, bio);
}

/*
 * The checks every ReadBlocks/WriteBlocks makes, in the specification's
 * terms: EFI_MEDIA_CHANGED for another MediaId, EFI_BAD_BUFFER_SIZE when
 * size is not whole blocks, EFI_INVALID_PARAMETER for a NULL buffer or a
 * range past LastBlock. *count = the blocks asked for.
 */
static EFI_STATUS esrv_check(struct esrv *s, UINT32 media_id, EFI_LBA lba, UINTN size, const void *buf, uint64_t *count)
{
	*count = size / s->media.BlockSize;
	if (media_id != s->media.MediaId)
		return EFI_MEDIA_CHANGED;
	if (size == 0)
		return EFI_SUCCESS;
	if (!buf)
		return EFI_INVALID_PARAMETER;
	if (size % s->media.BlockSize)
		return EFI_BAD_BUFFER_SIZE;
	if (blk_out_of_range(lba, *count, s->media.LastBlock + 1))
		return EFI_INVALID_PARAMETER;
	return EFI_SUCCESS;
}

/* Log one failed or traced request. */
static void esrv_log(struct esrv *s, const char *op, EFI_LBA lba, uint64_t count, EFI_STATUS st, int rc)
{
	if (st != EFI_SUCCESS)
		s->errors++;
	if (s->trace || (st != EFI_SUCCESS && s->errors <= 16))
		con_printf("serve: %s %s LBA %llu count %llu: %s%s\n", s->what, op, (unsigned long long)lba,
			   (unsigned long long)count,
			   st == EFI_SUCCESS ? "ok" : st == EFI_INVALID_PARAMETER ? "EFI_INVALID_PARAMETER" :
			   st == EFI_BAD_BUFFER_SIZE ? "EFI_BAD_BUFFER_SIZE" : st == EFI_MEDIA_CHANGED ? "EFI_MEDIA_CHANGED" :
			   st == EFI_WRITE_PROTECTED ? "EFI_WRITE_PROTECTED" : "EFI_DEVICE_ERROR",
			   rc == BLK_E_NOSPACE ? " (no room: the image cannot grow, or the snapshot is full)" :
			   rc == BLK_E_IO ? " (the host disk or the image failed; see above)" : "");
}

/* Block I/O Reset: nothing to reset (every completed write is already on the host disk). */
static EFI_STATUS EFIAPI esrv_reset(EFI_BLOCK_IO *This, BOOLEAN ext)
{
	(void)This;
	(void)ext;
	return EFI_SUCCESS;
}

/* Block I/O ReadBlocks: blk_read of the image, at TPL_CALLBACK so no timer callback enters the image's code twice. */
static EFI_STATUS EFIAPI esrv_read(EFI_BLOCK_IO *This, UINT32 MediaId, EFI_LBA Lba, UINTN BufferSize, VOID *Buffer)
{
	struct esrv *s = esrv_of(This);
	uint64_t count;
	int rc = 0;
	EFI_STATUS st = esrv_check(s, MediaId, Lba, BufferSize, Buffer, &count);
	if (st == EFI_SUCCESS && count) {
		EFI_TPL old = efi_bs->RaiseTPL(TPL_CALLBACK);
		uint8_t *p = Buffer;
		for (uint64_t done = 0; done < count && !rc;) {
			uint32_t n = count - done < ESRV_CHUNK ? (uint32_t)(count - done) : ESRV_CHUNK;
			rc = blk_read(s->dev, Lba + done, n, p);
			p += (size_t)n * BLK_SECTOR;
			done += n;
		}
		efi_bs->RestoreTPL(old);
		st = rc ? EFI_DEVICE_ERROR : EFI_SUCCESS;
		s->reads++;
		s->sectors_read += count;
	}
	if (st != EFI_SUCCESS || s->trace)
		esrv_log(s, "read", Lba, count, st, rc);
	return st;
}

/* Block I/O WriteBlocks: blk_write of the image (the format writes, then flushes the host disk: durable on return). */
static EFI_STATUS EFIAPI esrv_write(EFI_BLOCK_IO *This, UINT32 MediaId, EFI_LBA Lba, UINTN BufferSize, VOID *Buffer)
{
	struct esrv *s = esrv_of(This);
	uint64_t count;
	int rc = 0;
	EFI_STATUS st = MediaId != s->media.MediaId ? EFI_MEDIA_CHANGED :
			s->media.ReadOnly ? EFI_WRITE_PROTECTED : esrv_check(s, MediaId, Lba, BufferSize, Buffer, &count);
	count = BufferSize / BLK_SECTOR;
	if (st == EFI_SUCCESS && count) {
		EFI_TPL old = efi_bs->RaiseTPL(TPL_CALLBACK);
		const uint8_t *p = Buffer;
		for (uint64_t done = 0; done < count && !rc;) {
			uint32_t n = count - done < ESRV_CHUNK ? (uint32_t)(count - done) : ESRV_CHUNK;
			rc = blk_write(s->dev, Lba + done, n, p);
			p += (size_t)n * BLK_SECTOR;
			done += n;
		}
		if (s->after_write)
			s->after_write(s->after_ctx);
		efi_bs->RestoreTPL(old);
		st = rc == BLK_E_RO ? EFI_WRITE_PROTECTED : rc ? EFI_DEVICE_ERROR : EFI_SUCCESS;
		s->writes++;
		s->sectors_written += count;
	}
	if (st != EFI_SUCCESS || s->trace)
		esrv_log(s, "write", Lba, count, st, rc);
	return st;
}

/* Block I/O FlushBlocks: blk_flush (every write was flushed already; this makes sure). */
static EFI_STATUS EFIAPI esrv_flush(EFI_BLOCK_IO *This)
{
	struct esrv *s = esrv_of(This);
	EFI_TPL old = efi_bs->RaiseTPL(TPL_CALLBACK);
	int rc = blk_flush(s->dev);
	efi_bs->RestoreTPL(old);
	s->flushes++;
	EFI_STATUS st = rc ? EFI_DEVICE_ERROR : EFI_SUCCESS;
	if (st != EFI_SUCCESS || s->trace)
		esrv_log(s, "flush", 0, 0, st, rc);
	return st;
}

/* esrv_install, the contract in efi.h. */
struct esrv *esrv_install(int index, struct blk_dev *dev, int ro, int trace, const char *what)
{
	if (index < 0 || index >= ESRV_MAX)
		return NULL;
	struct esrv *s = &esrv_tab[index];
	memset(s, 0, sizeof(*s));
	s->dev = dev;
	s->trace = trace;
	s->what = what;
	s->media.MediaId = 1;
	s->media.RemovableMedia = FALSE;
	s->media.MediaPresent = TRUE;
	s->media.LogicalPartition = FALSE;
	s->media.ReadOnly = ro ? TRUE : FALSE;
	s->media.WriteCaching = FALSE;    /* WriteBlocks returns after the host's FlushBlocks */
	s->media.BlockSize = BLK_SECTOR;
	s->media.IoAlign = 0;             /* any buffer: blk_read/blk_write take byte-aligned memory */
	s->media.LastBlock = dev->sectors - 1;
	s->media.LowestAlignedLba = 0;
	s->media.LogicalBlocksPerPhysicalBlock = 1;
	s->media.OptimalTransferLengthGranularity = 0;
	s->bio.Revision = EFI_BLOCK_IO_PROTOCOL_REVISION3;
	s->bio.Media = &s->media;
	s->bio.Reset = esrv_reset;
	s->bio.ReadBlocks = esrv_read;
	s->bio.WriteBlocks = esrv_write;
	s->bio.FlushBlocks = esrv_flush;
	s->path.ven[0] = HARDWARE_DEVICE_PATH;
	s->path.ven[1] = HW_VENDOR_DP;
	s->path.ven[2] = sizeof(s->path.ven);
	memcpy(s->path.ven + 4, &efi_guid_vhdboot, sizeof(EFI_GUID));
	s->path.ven[20] = (uint8_t)index;
	s->path.end[0] = END_DEVICE_PATH_TYPE;
	s->path.end[1] = END_ENTIRE_DEVICE_PATH_SUBTYPE;
	s->path.end[2] = sizeof(s->path.end);
	EFI_STATUS st = efi_bs->InstallMultipleProtocolInterfaces(&s->handle, &efi_guid_devpath, &s->path,
								   &efi_guid_blockio, &s->bio, NULL);
	if (st != EFI_SUCCESS) {
		con_printf("serve: installing Block I/O for %s failed: status %llx\n", what, (unsigned long long)st);
		return NULL;
	}
	con_printf("serve: %s = VenHw(%08x-...,%02x): Block I/O, %llu blocks of 512 bytes, %s, MediaId %u\n", what,
		   efi_guid_vhdboot.Data1, index, (unsigned long long)dev->sectors, ro ? "read-only" : "writable",
		   s->media.MediaId);
	st = efi_bs->ConnectController(s->handle, NULL, NULL, TRUE);
	con_printf("serve: ConnectController (recursive): %s\n", st == EFI_SUCCESS ? "drivers bound (partitions, file systems)" :
		   st == EFI_NOT_FOUND ? "no driver took the disk (no partition table or file system the firmware knows)" :
		   "failed");
	return s;
}

/* esrv_uninstall, the contract in efi.h. */
int esrv_uninstall(struct esrv *s)
{
	efi_bs->DisconnectController(s->handle, NULL, NULL);
	EFI_STATUS st = efi_bs->UninstallMultipleProtocolInterfaces(s->handle, &efi_guid_devpath, &s->path,
								     &efi_guid_blockio, &s->bio, NULL);
	if (st != EFI_SUCCESS) {
		con_printf("serve: %s: the firmware keeps the disk in use (UninstallMultipleProtocolInterfaces: status %llx)\n",
			   s->what, (unsigned long long)st);
		return -1;
	}
	con_printf("serve: %s: Block I/O removed\n", s->what);
	return 0;
}

EFI_BLOCK_IO *esrv_blockio(struct esrv *s)
{
	return &s->bio;
}

EFI_HANDLE esrv_handle(const struct esrv *s)
{
	return s->handle;
}

const EFI_DEVICE_PATH *esrv_devpath(const struct esrv *s)
{
	return (const EFI_DEVICE_PATH *)&s->path;
}

void esrv_set_after_write(struct esrv *s, void (*fn)(void *ctx), void *ctx)
{
	s->after_write = fn;
	s->after_ctx = ctx;
}

void esrv_log_stats(const struct esrv *s)
{
	con_printf("serve: %s: %llu reads (%llu sectors), %llu writes (%llu sectors), %llu flushes, %llu errors\n", s->what,
		   (unsigned long long)s->reads, (unsigned long long)s->sectors_read, (unsigned long long)s->writes,
		   (unsigned long long)s->sectors_written, (unsigned long long)s->flushes, (unsigned long long)s->errors);
}
