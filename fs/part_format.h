/* part_format.h: on-disk layouts of the MBR, its partition entries, the GPT header and GPT entries (little-endian). */
#ifndef PART_FORMAT_H
#define PART_FORMAT_H

#include <stdint.h>

/* One of the four 16-byte entries of an MBR or EBR. */
struct mbr_entry {
	uint8_t boot;              /* 0x80 bootable, 0x00 not; anything else: not a table */
	uint8_t chs_first[3];
	uint8_t type;              /* 0x05/0x0F/0x85 extended, 0xEE GPT protective */
	uint8_t chs_last[3];
	uint32_t lba_first;        /* MBR: absolute; EBR entry 0: from this EBR; EBR entry 1: from the extended start */
	uint32_t sectors;
} __attribute__((packed));
_Static_assert(sizeof(struct mbr_entry) == 16, "mbr_entry is 16 bytes");

/* The MBR (sector 0) or an extended boot record. */
struct mbr {
	uint8_t code[440];
	uint32_t disk_sig;
	uint16_t reserved;
	struct mbr_entry part[4];  /* at 446 */
	uint8_t sig[2];            /* 0x55 0xAA */
} __attribute__((packed));
_Static_assert(sizeof(struct mbr) == 512, "mbr is 512 bytes");

#define MBR_PART_OFF 446
#define MBR_TYPE_GPT 0xEE
#define MBR_TYPE_IS_EXT(t) ((t) == 0x05 || (t) == 0x0F || (t) == 0x85)

/* GPT header (UEFI 2.x, 5.3.2); header_size bytes of it are covered by the CRC. */
struct gpt_header {
	char sig[8];               /* "EFI PART" */
	uint32_t revision;         /* 0x00010000 */
	uint32_t header_size;      /* 92 .. sector size */
	uint32_t header_crc;       /* CRC32 of header_size bytes with this field zero */
	uint32_t reserved;
	uint64_t my_lba;
	uint64_t alternate_lba;
	uint64_t first_usable;
	uint64_t last_usable;
	uint8_t disk_guid[16];
	uint64_t entries_lba;
	uint32_t entries;
	uint32_t entry_size;       /* 128 x 2^n */
	uint32_t entries_crc;      /* CRC32 of entries x entry_size bytes */
} __attribute__((packed));
_Static_assert(sizeof(struct gpt_header) == 92, "gpt_header is 92 bytes");

#define GPT_HEADER_CRC_OFF 16

/* GPT partition entry (the first 128 bytes of each entry_size slot). */
struct gpt_entry {
	uint8_t type_guid[16];     /* all zero: unused */
	uint8_t uuid[16];
	uint64_t first_lba;
	uint64_t last_lba;         /* inclusive */
	uint64_t attrs;
	uint16_t name[36];         /* UTF-16LE */
} __attribute__((packed));
_Static_assert(sizeof(struct gpt_entry) == 128, "gpt_entry is 128 bytes");

#endif
