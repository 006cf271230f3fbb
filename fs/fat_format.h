/* fat_format.h: on-disk layouts of the FAT boot sector (BPB), directory entries and long-name entries (little-endian). */
#ifndef FAT_FORMAT_H
#define FAT_FORMAT_H

#include <stdint.h>

/* Extended BPB fields shared by FAT12/16 (at 36) and FAT32 (at 64). */
struct fat_ebpb {
	uint8_t drive;
	uint8_t reserved1;
	uint8_t boot_sig;          /* 0x29: serial, label and type below are valid */
	uint32_t serial;
	char label[11];
	char fs_type[8];
} __attribute__((packed));
_Static_assert(sizeof(struct fat_ebpb) == 26, "fat_ebpb is 26 bytes");

/* The boot sector of a FAT volume (Microsoft FAT specification 1.03, section 3). */
struct fat_boot {
	uint8_t jump[3];           /* EB xx 90 or E9 xx xx */
	char oem[8];
	uint16_t bytes_per_sec;    /* 512 (1024/2048/4096 exist; not supported here) */
	uint8_t sec_per_clus;      /* power of two 1..128 */
	uint16_t reserved;         /* sectors before the first FAT, >= 1 */
	uint8_t fats;              /* >= 1 */
	uint16_t root_entries;     /* FAT12/16: 32-byte entries in the fixed root; FAT32: 0 */
	uint16_t total16;          /* 0: use total32 */
	uint8_t media;             /* 0xF0, 0xF8..0xFF */
	uint16_t fat_size16;       /* sectors per FAT; 0 on FAT32 */
	uint16_t spt;
	uint16_t heads;
	uint32_t hidden;
	uint32_t total32;
	union {
		struct {
			struct fat_ebpb ebpb;
			uint8_t code[448];
		} __attribute__((packed)) f16;
		struct {
			uint32_t fat_size32;
			uint16_t ext_flags;   /* bit 7: mirroring off, bits 0-3: the active FAT */
			uint16_t fs_version;  /* 0 */
			uint32_t root_cluster;
			uint16_t fsinfo;
			uint16_t backup_boot;
			uint8_t reserved[12];
			struct fat_ebpb ebpb;
			uint8_t code[420];
		} __attribute__((packed)) f32;
	} u;
	uint8_t sig[2];            /* 0x55 0xAA */
} __attribute__((packed));
_Static_assert(sizeof(struct fat_boot) == 512, "fat_boot is 512 bytes");

/* A short (8.3) directory entry. */
struct fat_dirent {
	uint8_t name[11];          /* space padded; [0]: 0x00 end, 0xE5 deleted, 0x05 = 0xE5 */
	uint8_t attr;
	uint8_t nt_case;           /* 0x08: base lower case, 0x10: extension lower case */
	uint8_t ctime_tenth;
	uint16_t ctime, cdate, adate;
	uint16_t cluster_hi;       /* FAT32 only */
	uint16_t mtime, mdate;
	uint16_t cluster_lo;
	uint32_t size;
} __attribute__((packed));
_Static_assert(sizeof(struct fat_dirent) == 32, "fat_dirent is 32 bytes");

/* A long-file-name entry (attr 0x0F): 13 UTF-16 units of the name. */
struct fat_lfn {
	uint8_t ord;               /* 1..20, 0x40 on the last (physically first) */
	uint16_t name1[5];
	uint8_t attr;              /* 0x0F */
	uint8_t type;              /* 0 */
	uint8_t checksum;          /* of the short entry's 11 name bytes */
	uint16_t name2[6];
	uint16_t cluster;          /* 0 */
	uint16_t name3[2];
} __attribute__((packed));
_Static_assert(sizeof(struct fat_lfn) == 32, "fat_lfn is 32 bytes");

#define FAT_ATTR_RO 0x01
#define FAT_ATTR_HIDDEN 0x02
#define FAT_ATTR_SYSTEM 0x04
#define FAT_ATTR_VOLUME 0x08
#define FAT_ATTR_DIR 0x10
#define FAT_ATTR_ARCHIVE 0x20
#define FAT_ATTR_LFN 0x0F          /* RO|HIDDEN|SYSTEM|VOLUME, checked under mask 0x3F */

#endif
