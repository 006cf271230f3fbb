/* vhdx_util.h: internal helpers of the vhdx library: little-endian access, on-disk constants and GUIDs, shared internals. */
#ifndef VHDX_UTIL_H
#define VHDX_UTIL_H

#include <stdint.h>
#include <stddef.h>
#include "vhdx.h"

/* Little-endian loads (every VHDX field is little-endian). */
static inline uint16_t vx_le16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] | (b[1] << 8));
}

static inline uint32_t vx_le32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}

static inline uint64_t vx_le64(const void *p)
{
	const uint8_t *b = p;
	return (uint64_t)vx_le32(b) | ((uint64_t)vx_le32(b + 4) << 32);
}

/* Little-endian stores. */
static inline void vx_put16(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}

static inline void vx_put32(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
	b[2] = (uint8_t)(v >> 16);
	b[3] = (uint8_t)(v >> 24);
}

static inline void vx_put64(void *p, uint64_t v)
{
	vx_put32(p, (uint32_t)v);
	vx_put32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

#define VX_MEMCPY __builtin_memcpy
#define VX_MEMSET __builtin_memset
#define VX_MEMCMP __builtin_memcmp

/* Ranges [a, a+alen) and [b, b+blen) intersect. */
static inline int vx_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

/* Nonzero when the two GUIDs are the same 16 bytes. */
static inline int vx_guid_eq(const struct vhdx_guid *a, const struct vhdx_guid *b)
{
	return VX_MEMCMP(a->b, b->b, 16) == 0;
}

/* File layout (MS-VHDX 2.1, 2.2). */
#define VX_FILE_ID_OFF 0u
#define VX_HDR_OFF0 (64u << 10)
#define VX_HDR_OFF1 (128u << 10)
#define VX_HDR_SIZE 4096u
#define VX_RT_OFF0 (192u << 10)
#define VX_RT_OFF1 (256u << 10)
#define VX_RT_SIZE (64u << 10)
#define VX_HEADER_SECTION VHDX_MIB
#define VX_MAX_ENTRIES 2047u
#define VX_META_TABLE_SIZE (64u << 10)

/* Signatures (little-endian uint32 / the 8-byte strings). */
#define VX_SIG_HEAD 0x64616568u   /* "head" */
#define VX_SIG_REGI 0x69676572u   /* "regi" */
#define VX_SIG_LOGE 0x65676f6cu   /* "loge" */
#define VX_SIG_ZERO 0x6f72657au   /* "zero" */
#define VX_SIG_DESC 0x63736564u   /* "desc" */
#define VX_SIG_DATA 0x61746164u   /* "data" */

/* Header field offsets. */
#define VX_H_SIG 0
#define VX_H_CSUM 4
#define VX_H_SEQ 8
#define VX_H_FWG 16
#define VX_H_DWG 32
#define VX_H_LOGGUID 48
#define VX_H_LOGVER 64
#define VX_H_VER 66
#define VX_H_LOGLEN 68
#define VX_H_LOGOFF 72
#define VX_H_END 80

/* Log entry header field offsets (64 bytes), descriptors 32 bytes after it. */
#define VX_L_SIG 0
#define VX_L_CSUM 4
#define VX_L_LEN 8
#define VX_L_TAIL 12
#define VX_L_SEQ 16
#define VX_L_DCOUNT 24
#define VX_L_GUID 32
#define VX_L_FLUSHED 48
#define VX_L_LAST 56
#define VX_L_HDR 64u
#define VX_L_DESC 32u

/* Metadata item flags. */
#define VX_MF_USER 0x1u
#define VX_MF_VDISK 0x2u
#define VX_MF_REQUIRED 0x4u

/* File parameter flags. */
#define VX_FP_LEAVE_ALLOCATED 0x1u
#define VX_FP_HAS_PARENT 0x2u

/* Known GUIDs, in stored byte order. */
extern const struct vhdx_guid vx_guid_bat, vx_guid_meta, vx_guid_file_params, vx_guid_vsize,
	vx_guid_page83, vx_guid_lss, vx_guid_pss, vx_guid_locator, vx_guid_loc_type;

/* BAT index of payload block i and of the sector bitmap entry of chunk c. */
static inline uint64_t vx_pb_index(const struct vhdx *v, uint64_t i)
{
	return i + i / v->chunk_ratio;
}

static inline uint64_t vx_sb_index(const struct vhdx *v, uint64_t c)
{
	return c * (v->chunk_ratio + 1ull) + v->chunk_ratio;
}

/* One 4 KiB page a log entry changes: a BAT page, a sector bitmap page with bits [lo, hi) set, or (raw) the given content. */
struct vx_upd {
	uint64_t off;
	int bitmap;
	uint32_t lo, hi;
	const uint8_t *raw;        /* the page's new content (vhdx_edit.c), or NULL */
};

/* Make the n page updates durable through the log (one entry, flushed, applied, flushed); vhdx.c. */
int vx_log_commit(struct vhdx *v, const struct vx_upd *u, uint32_t n);
/* Start (or widen to data) the write session: headers get the session GUIDs; vhdx.c. */
int vx_session_begin(struct vhdx *v, int data);
/* Parse the metadata region into v (block size, sizes, locator...); vhdx.c. */
int vx_metadata(struct vhdx *v);

/* Internal file access shared by the library's files (vhdx.c). */
/* Read len bytes at byte off of the file as the image sees it (device, past-end zeros, log overlay). */
int vx_pread(struct vhdx *v, uint64_t off, uint32_t len, void *buf);
/* Read count sectors at file sector lba (overlay applied). */
int vx_read_sectors(struct vhdx *v, uint64_t lba, uint32_t count, void *buf);
/* Write count sectors at file sector lba; VHDX_E_NOSPACE / VHDX_E_READ_ONLY / VHDX_E_IO. */
int vx_write_sectors(struct vhdx *v, uint64_t lba, uint32_t count, const void *buf);
/* Write count zero sectors at file sector lba. */
int vx_zero_sectors(struct vhdx *v, uint64_t lba, uint64_t count);
/* CRC-32C of [off, off+len) of the file with the 4 bytes at csum_off taken as zero. */
int vx_crc_range(struct vhdx *v, uint64_t off, uint64_t len, uint64_t csum_off, uint32_t *crc);
/* Parse a raw 4 KiB header page into h (no validation). */
void vx_parse_header(const uint8_t *raw, struct vhdx_header *h);
/* Serialise h into a 4 KiB page with its CRC. */
void vx_build_header(const struct vhdx_header *h, uint8_t *page);
/* Sort a[0..n) ascending (heap sort: no recursion, no memory). */
void vx_sort_u64(uint64_t *a, uint64_t n);
/* Decode UTF-8 s (n bytes) into UTF-16LE at out (cap bytes); returns bytes written or -1. */
long vx_utf8_to_utf16le(const char *s, size_t n, uint8_t *out, size_t cap, int backslash);

#endif
