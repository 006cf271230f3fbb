/* vhd_format.h: on-disk VHD structures (footer, dynamic header, locators), big-endian as stored. */
#ifndef VHD_FORMAT_H
#define VHD_FORMAT_H

#include <stdint.h>

#define VHD_FOOTER_COOKIE "conectix"
#define VHD_HEADER_COOKIE "cxsparse"
#define VHD_VERSION 0x00010000u
#define VHD_FEAT_TEMPORARY 0x1u
#define VHD_FEAT_RESERVED 0x2u     /* must always be set */
#define VHD_NO_OFFSET 0xFFFFFFFFFFFFFFFFull
#define VHD_BAT_FREE 0xFFFFFFFFu

/* Disk types (footer "disk type"). */
#define VHD_TYPE_NONE 0
#define VHD_TYPE_FIXED 2
#define VHD_TYPE_DYNAMIC 3
#define VHD_TYPE_DIFF 4

/* Parent locator platform codes. */
#define VHD_PLAT_NONE 0
#define VHD_PLAT_WI2R 0x57693272u /* "Wi2r" deprecated relative */
#define VHD_PLAT_WI2K 0x5769326Bu /* "Wi2k" deprecated absolute */
#define VHD_PLAT_W2RU 0x57327275u /* "W2ru" relative, UTF-16LE */
#define VHD_PLAT_W2KU 0x57326B75u /* "W2ku" absolute, UTF-16LE */
#define VHD_PLAT_MAC  0x4D616320u /* "Mac " alias blob */
#define VHD_PLAT_MACX 0x4D616358u /* "MacX" file URL, UTF-8 */

/* Creator host OS values. */
#define VHD_OS_WINDOWS 0x5769326Bu
#define VHD_OS_MAC 0x4D616320u

struct vhd_disk_footer {
	char cookie[8];
	uint32_t features;
	uint32_t version;
	uint64_t data_offset;
	uint32_t timestamp;      /* seconds since 2000-01-01 00:00:00 UTC */
	char creator_app[4];
	uint32_t creator_ver;
	uint32_t creator_os;
	uint64_t orig_size;
	uint64_t cur_size;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t spt;
	uint32_t type;
	uint32_t checksum;
	uint8_t uuid[16];
	uint8_t saved_state;
	uint8_t reserved[427];
} __attribute__((packed));
_Static_assert(sizeof(struct vhd_disk_footer) == 512, "footer is 512 bytes");

struct vhd_disk_ploc {
	uint32_t code;
	uint32_t data_space;
	uint32_t data_len;
	uint32_t reserved;
	uint64_t data_offset;
} __attribute__((packed));
_Static_assert(sizeof(struct vhd_disk_ploc) == 24, "locator entry is 24 bytes");

struct vhd_disk_header {
	char cookie[8];
	uint64_t data_offset;
	uint64_t table_offset;
	uint32_t version;
	uint32_t max_entries;
	uint32_t block_size;
	uint32_t checksum;
	uint8_t parent_uuid[16];
	uint32_t parent_timestamp;
	uint32_t reserved1;
	uint16_t parent_name[256];  /* UTF-16 big-endian */
	struct vhd_disk_ploc loc[8];
	uint8_t reserved2[256];
} __attribute__((packed));
_Static_assert(sizeof(struct vhd_disk_header) == 1024, "dynamic header is 1024 bytes");

#endif
