/* part.h: partition tables (MBR primary, extended/logical chain, GPT) and a blk_dev view over one partition. */
#ifndef PART_H
#define PART_H

#include <stdint.h>
#include "../block/blk.h"

#define PART_MAX_LOGICAL 128       /* longest extended chain followed (Linux allows ~250 partitions) */
#define PART_GPT_MAX_ENTRIES 4096  /* larger GPT entry arrays are refused */
#define PART_NAME_MAX 112          /* UTF-8 bytes for a 36-unit GPT name, with the NUL */

/* Error codes: every distinct defect has its own code and message (part_strerror). */
enum part_err {
	PART_OK = 0,
	PART_E_END,               /* no more partitions (not a defect) */
	PART_E_IO,                /* the device could not be read */
	PART_E_BAD_ARG,
	PART_E_NO_SIGNATURE,      /* sector 0 lacks 0x55AA: no partition table */
	PART_E_BOOT_FLAG,         /* an MBR boot flag is neither 0x00 nor 0x80: not a partition table */
	PART_E_BEYOND_DISK,       /* a partition extends beyond the end of the disk */
	PART_E_EXT_RANGE,         /* an extended boot record lies outside the extended partition */
	PART_E_EXT_SIGNATURE,     /* an extended boot record lacks 0x55AA */
	PART_E_EXT_LOOP,          /* the extended chain points back to an earlier record */
	PART_E_EXT_TOO_MANY,      /* more than PART_MAX_LOGICAL logical partitions */
	PART_E_GPT_SIGNATURE,     /* protective MBR but no "EFI PART" header */
	PART_E_GPT_REVISION,      /* GPT header revision is not 1.x */
	PART_E_GPT_HEADER_SIZE,   /* GPT header size outside 92..512 */
	PART_E_GPT_HEADER_CRC,
	PART_E_GPT_MY_LBA,        /* header's own LBA field differs from where it was read */
	PART_E_GPT_ENTRY_SIZE,    /* entry size not 128 x 2^n (or > 512) */
	PART_E_GPT_ENTRY_COUNT,   /* zero or more than PART_GPT_MAX_ENTRIES entries */
	PART_E_GPT_ENTRIES_RANGE, /* entry array or usable range outside the disk */
	PART_E_GPT_ENTRIES_CRC,
	PART_E_GPT_BAD_RANGE,     /* an entry whose last LBA is before its first */
	PART_E_NOT_FOUND,         /* no partition with that index */
	PART_E_COUNT
};

/* The message for an error code; never NULL. */
const char *part_strerror(int err);
/* The stable short name of an error code ("beyond-disk"...); never NULL. */
const char *part_errname(int err);

/* Partition table schemes. */
enum part_scheme { PART_SCHEME_NONE = 0, PART_SCHEME_MBR, PART_SCHEME_GPT };

/* part_info.flags */
#define PART_F_BOOTABLE 0x1u       /* MBR boot flag 0x80 */
#define PART_F_LOGICAL 0x2u        /* inside the extended partition */

/* One partition, numbered as Linux and GRUB do: MBR 1-4 primary, 5.. logical; GPT entry n+1. */
struct part_info {
	uint32_t index;
	uint64_t start;            /* first LBA on the disk */
	uint64_t sectors;          /* length in sectors */
	int scheme;                /* PART_SCHEME_* */
	unsigned flags;            /* PART_F_* */
	uint8_t type;              /* MBR type byte (0 for GPT) */
	uint8_t type_guid[16];     /* GPT type GUID as stored (mixed endian); zero for MBR */
	uint8_t uuid[16];          /* GPT unique partition GUID as stored */
	uint64_t attrs;            /* GPT attribute bits */
	char name[PART_NAME_MAX];  /* GPT name in UTF-8; "" for MBR */
};

/* part_iter.state */
#define PART_ST_GPT_BACKUP 0x1u    /* primary GPT header bad: the backup at the last LBA is used */

/* Iteration state over a disk's partitions; the caller owns it (about 1.6 KiB). */
struct part_iter {
	struct blk_dev *dev;
	int scheme;
	unsigned state;
	int primary_err;           /* with PART_ST_GPT_BACKUP: why the primary header was refused */
	int done;
	/* MBR */
	uint8_t mbr[BLK_SECTOR];
	uint32_t slot;             /* next primary slot 0..4 */
	uint64_t ext_start, ext_sectors; /* the extended partition (0 if none) */
	uint32_t ebr_rel;          /* next EBR, relative to ext_start; 0 with ebr_pending=0: none */
	int ebr_pending;
	uint32_t logical_next;     /* index of the next logical partition (5, 6 ...) */
	uint32_t ebr_count;
	uint32_t ebr_seen[PART_MAX_LOGICAL]; /* visited EBRs (relative), for loop detection */
	/* GPT */
	uint64_t gpt_entries_lba;
	uint32_t gpt_entries, gpt_entry_size, gpt_next;
	uint64_t gpt_first_usable, gpt_last_usable;
	uint8_t disk_guid[16];
	/* one cached sector */
	uint64_t buf_lba;
	int buf_valid;
	uint8_t buf[BLK_SECTOR];
};

/*
 * Read the partition table of dev and validate it (GPT: headers and the
 * CRC of the whole entry array). PART_OK with scheme NONE when sector 0
 * has no 0x55AA signature is NOT returned: that is PART_E_NO_SIGNATURE.
 */
int part_open(struct part_iter *it, struct blk_dev *dev);
/*
 * The next partition in index order. PART_E_END when there are no more.
 * PART_E_BEYOND_DISK fills *out and iteration may go on; any other error
 * ends the iteration (further calls return PART_E_END).
 */
int part_next(struct part_iter *it, struct part_info *out);
/* Find partition index on dev (iterates with it); PART_E_NOT_FOUND if absent. */
int part_find(struct part_iter *it, struct blk_dev *dev, uint32_t index, struct part_info *out);

/* Format a GUID as stored on disk into the usual 36-character text (upper case) plus NUL. */
void part_guid_str(const uint8_t guid[16], char out[37]);

/* CRC-32 (IEEE 802.3, as GPT uses) of len bytes continuing from crc (start with 0). */
uint32_t part_crc32(uint32_t crc, const void *buf, uint32_t len);

/*
 * Make w->dev a window (block/blk.h) over partition p of disk: requests are
 * offset (blk_read/blk_write check the range), read_only and write_zeroes
 * carry over. PART_E_BEYOND_DISK if p does not fit in disk.
 */
int part_blk_init(struct blk_window *w, struct blk_dev *disk, const struct part_info *p);

#endif
