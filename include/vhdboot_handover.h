/* vhdboot_handover.h: the hand-over table vhdboot leaves in low memory for an OS (layout, versioning, checksum) and the pure builder/parser over it (handover/ho.c). */
#ifndef VHDBOOT_HANDOVER_H
#define VHDBOOT_HANDOVER_H
/*
 * Shared by the firmware (kernel/handover.c builds and places it) and the
 * Linux side (tools/linux/vhdboot-attach.c finds and parses it). All fields
 * little-endian, offsets from the table's first byte. docs/handover.md has
 * the layout byte by byte and why it lives where it does.
 *
 *   header (HO_HEADER_BYTES) | ndrives x drive record (drive_bytes each) | data area
 *
 * The data area holds NUL-terminated strings, the chain's path offset arrays
 * (uint16_t each) and extent arrays (struct ho_extent, 8-byte aligned),
 * referenced by offsets in the records (0 = absent).
 *
 * Versioning: a reader accepts major HO_VERSION_MAJOR only; a higher minor
 * may add fields at the end of the header or of a record (header_bytes and
 * drive_bytes grow), which an older reader skips.
 */
#include <stdint.h>

#define HO_SIGNATURE "$VHDBOOT"       /* 8 bytes, no NUL, at offset 0 */
#define HO_SIG_BYTES 8u
#define HO_VERSION_MAJOR 1u
#define HO_VERSION_MINOR 2u            /* 1.1: iface HO_IFACE_EFI, header flag HO_F_EFI_VAR; 1.2: fs HO_FS_EXFAT, HO_FS_NTFS, format HO_FMT_VHDX */
#define HO_ALIGN 16u                  /* the table starts on a 16-byte boundary (it is placed page-aligned) */
#define HO_MAX_BYTES 4096u            /* one page: the table never crosses a page (Linux reads it page by page) */
#define HO_MAX_DRIVES 8u
#define HO_SCAN_LO 0x80000u           /* where a reader searches: [HO_SCAN_LO, HO_SCAN_HI) physical */
#define HO_SCAN_HI 0xA0000u
/*
 * Under UEFI (efi/ehandover.c) the table is not in low memory but the data of
 * a volatile runtime variable (EFI_VARIABLE_BOOTSERVICE_ACCESS |
 * EFI_VARIABLE_RUNTIME_ACCESS) of this name and vendor GUID (vhdboot's, the
 * one of its Block I/O device path too); Linux shows it as
 * /sys/firmware/efi/efivars/VhdbootHandover-<guid>: 4 bytes of attributes,
 * then the table, whose self_phys is 0.
 */
#define HO_EFI_VAR_NAME "VhdbootHandover"
#define HO_EFI_VAR_GUID "bb45c8af-ef6d-4f0e-843d-8e342883d875"

/* Header (64 bytes). */
struct ho_header {
	char signature[8];        /* 0: HO_SIGNATURE */
	uint16_t version_major;   /* 8 */
	uint16_t version_minor;   /* 10 */
	uint32_t total_bytes;     /* 12: header + records + data area */
	uint32_t crc32;           /* 16: CRC-32 (IEEE) of total_bytes bytes with this field taken as 0 */
	uint16_t header_bytes;    /* 20: sizeof(struct ho_header) for this minor */
	uint16_t drive_bytes;     /* 22: size of one drive record */
	uint8_t ndrives;          /* 24: records following the header */
	uint8_t reserved0[3];     /* 25 */
	uint32_t self_phys;       /* 28: physical address the table was placed at (a copy elsewhere is stale) */
	uint32_t resident_phys;   /* 32: vhdboot's resident region (E820 reserved) */
	uint32_t resident_bytes;  /* 36 */
	uint32_t low_phys;        /* 40: vhdboot's low memory [low_phys, low_phys + low_bytes), table and stub */
	uint32_t low_bytes;       /* 44 */
	uint16_t firmware_off;    /* 48: string "vhdboot ..." (who built the table) */
	uint16_t reserved1;       /* 50 */
	uint32_t flags;           /* 52: HO_F_* */
	uint8_t reserved2[8];     /* 56 */
} __attribute__((packed));
_Static_assert(sizeof(struct ho_header) == 64, "ho_header is 64 bytes");
/* ho_header.flags */
#define HO_F_EFI_VAR 0x01u        /* 1.1: built by vhdboot.efi, published as the EFI variable above (self_phys 0, no low or resident memory) */

/* ho_drive.mode */
enum ho_mode { HO_MODE_RW = 1, HO_MODE_RO = 2, HO_MODE_SNAPSHOT = 3 };
/* ho_drive.format */
enum ho_format { HO_FMT_VHD = 1, HO_FMT_VHDX = 2 /* 1.2 */ };
/* ho_drive.image_type: the VHD footer's disk type values (a VHDX: fixed = leave-blocks-allocated, differencing = has a parent) */
enum ho_type { HO_TYPE_FIXED = 2, HO_TYPE_DYNAMIC = 3, HO_TYPE_DIFF = 4 };
/* ho_drive.place: where the image lives */
enum ho_place { HO_PLACE_DISK = 1, HO_PLACE_PART = 2, HO_PLACE_FILE = 3, HO_PLACE_RAM = 4 };
/* ho_drive.fs: the file system holding a HO_PLACE_FILE image */
enum ho_fs { HO_FS_NONE = 0, HO_FS_FAT12 = 1, HO_FS_FAT16 = 2, HO_FS_FAT32 = 3, HO_FS_EXFAT = 4 /* 1.2 */, HO_FS_NTFS = 5 /* 1.2 */ };
/* ho_drive.part_scheme, ho_drive.disk_scheme */
enum ho_scheme { HO_SCHEME_NONE = 0, HO_SCHEME_MBR = 1, HO_SCHEME_GPT = 2 };
/* ho_drive.iface: how vhdboot reached the backing disk */
enum ho_iface { HO_IFACE_ATA = 1, HO_IFACE_BIOS = 2, HO_IFACE_RAM = 3, HO_IFACE_EFI = 4 /* 1.1: the firmware's Block I/O */ };
/* ho_drive.flags */
#define HO_DF_READ_ONLY 0x01u     /* the image was served read-only (mode=ro, or forced by its state) */
#define HO_DF_EXT_PARTIAL 0x02u   /* the table holds only the first extents_count of extents_total runs */
#define HO_DF_GROWS 0x04u         /* the image may grow on its device (a prefix of a larger disk) */

/* One emulated drive (160 bytes). */
struct ho_drive {
	uint8_t bios_drive;       /* 0: 80h, 81h, ... */
	uint8_t mode;             /* 1: HO_MODE_* */
	uint8_t format;           /* 2: HO_FMT_* */
	uint8_t image_type;       /* 3: HO_TYPE_* (the leaf's) */
	uint8_t place;            /* 4: HO_PLACE_* */
	uint8_t fs;               /* 5: HO_FS_* */
	uint8_t part_scheme;      /* 6: HO_SCHEME_* of the backing disk's table (0: no partition used) */
	uint8_t chain_len;        /* 7: images in the chain, leaf first (1 = no parent) */
	uint8_t flags;            /* 8: HO_DF_* */
	uint8_t iface;            /* 9: HO_IFACE_* */
	uint8_t ata_channel;      /* 10: ATA: 0 primary, 1 secondary; BIOS: the BIOS's drive number */
	uint8_t ata_device;       /* 11: ATA: 0 master, 1 slave */
	uint16_t ata_io_base;     /* 12: ATA command block base (1F0h, 170h), 0 if unknown */
	uint16_t reserved0;       /* 14 */
	uint64_t virt_sectors;    /* 16: the virtual disk's size */
	uint64_t disk_sectors;    /* 24: the backing disk's size */
	uint32_t disk_mbr_id;     /* 32: backing disk's MBR disk signature (bytes 1B8h-1BBh of LBA 0) */
	uint32_t disk_lba0_crc;   /* 36: CRC-32 of the backing disk's LBA 0 as read at boot */
	uint8_t disk_guid[16];    /* 40: GPT disk GUID as stored (zero for MBR) */
	uint32_t part_number;     /* 56: as Linux numbers it (MBR 1-4 primary, 5.. logical; GPT entry + 1); 0 = whole disk */
	uint8_t part_type;        /* 60: MBR type byte (0 for GPT) */
	uint8_t disk_scheme;      /* 61: HO_SCHEME_* of the backing disk (as read at boot) */
	uint8_t reserved1[2];     /* 62 */
	uint64_t part_start;      /* 64: first LBA of the partition on the disk */
	uint64_t part_sectors;    /* 72 */
	uint8_t part_guid[16];    /* 80: GPT unique partition GUID as stored (zero for MBR) */
	uint64_t file_bytes;      /* 96: HO_PLACE_FILE: the leaf file's size; DISK/PART: the image's sectors * 512 */
	uint64_t ram_phys;        /* 104: HO_PLACE_RAM: the GRUB module's address; else 0 */
	uint64_t overlay_phys;    /* 112: mode=snapshot: the RAM overlay's pool (E820 reserved) */
	uint64_t overlay_bytes;   /* 120 */
	uint16_t model_off;       /* 128: string: the backing disk's model */
	uint16_t serial_off;      /* 130: string: its serial number (ATA IDENTIFY), 0 if unknown */
	uint16_t where_off;       /* 132: string: vhdboot's name of the place ("pm", "hd0,1:/x.vhd") */
	uint16_t chain_off;       /* 134: chain_len uint16_t string offsets: each member's path on the volume, leaf first */
	uint16_t extents_off;     /* 136: extents_count struct ho_extent of the leaf file */
	uint16_t extents_count;   /* 138 */
	uint32_t extents_total;   /* 140: runs the leaf file has */
	uint32_t cluster_bytes;   /* 144: the host file system's cluster size (0 if not a file) */
	uint8_t reserved2[12];    /* 148 */
} __attribute__((packed));
_Static_assert(sizeof(struct ho_drive) == 160, "ho_drive is 160 bytes");

/* One run of the leaf file: file sectors [file_sector, +sectors) at lba on the partition (16 bytes). */
struct ho_extent {
	uint32_t file_sector;
	uint32_t sectors;
	uint64_t lba;             /* relative to part_start */
} __attribute__((packed));
_Static_assert(sizeof(struct ho_extent) == 16, "ho_extent is 16 bytes");

/* Error codes (ho_strerror). */
enum ho_err {
	HO_OK = 0,
	HO_E_ARG,                 /* bad argument */
	HO_E_FULL,                /* the table does not fit in the caller's buffer */
	HO_E_SIGNATURE,           /* no "$VHDBOOT" at the start */
	HO_E_VERSION,             /* a major version this reader does not know */
	HO_E_SIZE,                /* total_bytes, header_bytes or drive_bytes out of bounds */
	HO_E_CRC,                 /* the checksum does not match: the table is damaged */
	HO_E_DRIVES,              /* ndrives is 0 or above HO_MAX_DRIVES, or records overrun the table */
	HO_E_OFFSET,              /* a string, chain or extent offset points outside the data area */
	HO_E_FIELD,               /* a field holds a value the version does not define */
	HO_E_NOT_FOUND,           /* no table in the searched memory */
	HO_E_MOVED,               /* a valid table whose self_phys is elsewhere: a stale copy, not vhdboot's */
	HO_E_COUNT
};

/* The message for an error code; never NULL. */
const char *ho_strerror(int err);
/* Its stable short name ("crc", ...); never NULL. */
const char *ho_errname(int err);

/* A table being built in the caller's buffer (no heap). */
struct ho_builder {
	uint8_t *buf;
	uint32_t cap;             /* buffer bytes (at most HO_MAX_BYTES are used) */
	uint32_t used;            /* end of the data area so far */
	int err;                  /* first error (HO_E_FULL), sticky */
};

/* Start a table of ndrives records in buf (cap bytes, zeroed here). 0 or HO_E_ARG / HO_E_FULL. */
int ho_begin(struct ho_builder *b, void *buf, uint32_t cap, unsigned ndrives);
/* The header and record i of the table being built (i < ndrives; NULL otherwise). */
struct ho_header *ho_head(struct ho_builder *b);
struct ho_drive *ho_drive_at(struct ho_builder *b, unsigned i);
/* Copy s (NUL-terminated, at most max bytes kept) into the data area; its offset, or 0 with b->err = HO_E_FULL. */
uint16_t ho_put_str(struct ho_builder *b, const char *s, uint32_t max);
/* Reserve len bytes (zeroed, aligned to align) in the data area; their offset, or 0 with b->err = HO_E_FULL. */
uint16_t ho_put(struct ho_builder *b, uint32_t len, uint32_t align);
/* Pointer to data-area offset off of the table being built. */
void *ho_ptr(struct ho_builder *b, uint16_t off);
/* Set total_bytes and the checksum (self_phys: where the bytes now live). Returns total_bytes, or 0 on b->err. */
uint32_t ho_finish(struct ho_builder *b, uint32_t self_phys);

/*
 * Check a table at t with avail readable bytes: signature, major version,
 * sizes, checksum, every record's fields and offsets (strings NUL-terminated
 * inside the table). HO_OK or the first defect.
 */
int ho_check(const void *t, uint32_t avail);
/* Record i of a checked table (NULL past ndrives). */
const struct ho_drive *ho_drive_get(const void *t, unsigned i);
/* String at off of a checked table ("" for 0). */
const char *ho_str(const void *t, uint16_t off);
/* Chain member k's path of record d (leaf = 0), "" past chain_len. */
const char *ho_chain_path(const void *t, const struct ho_drive *d, unsigned k);
/* Extent k of record d (NULL past extents_count); unaligned-safe copy into *out. */
int ho_extent_get(const void *t, const struct ho_drive *d, unsigned k, struct ho_extent *out);

/*
 * Search mem (len bytes, physical address base) on HO_ALIGN boundaries for a
 * table that checks and whose self_phys is where it was found. *off = its
 * offset in mem. HO_OK; else the defect of the last candidate with the
 * signature (so a damaged table is named), or HO_E_NOT_FOUND.
 */
int ho_find(const void *mem, uint32_t len, uint32_t base, uint32_t *off);

#endif
