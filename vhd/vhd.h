/* vhd.h: the pure VHD library: open, validate, read, write, create and check fixed/dynamic/differencing images. */
#ifndef VHD_H
#define VHD_H

#include <stddef.h>
#include <stdint.h>
#include "../block/blk.h"
#include "vhd_format.h"

#define VHD_SECTOR 512u
#define VHD_MAX_CHAIN 32          /* deepest differencing chain accepted */
#define VHD_MAX_BLOCK_SIZE (1u << 30)
#define VHD_MAX_SIZE (2040ull << 30) /* largest virtual size the format allows */
#define VHD_PATH_MAX 1024         /* longest decoded parent path (UTF-8 bytes) */

/* Error codes: every distinct defect has its own code and message. */
enum vhd_err {
	VHD_OK = 0,
	VHD_E_IO,                 /* the backing device failed */
	VHD_E_TOO_SMALL,          /* file shorter than one footer */
	VHD_E_FOOTER_COOKIE,      /* no "conectix" at the end or at offset 0 */
	VHD_E_FOOTER_CHECKSUM,
	VHD_E_FOOTER_VERSION,
	VHD_E_FOOTER_FEATURES,    /* reserved feature bit 1 clear */
	VHD_E_FOOTER_TYPE,        /* type not 2/3/4 */
	VHD_E_SAVED_STATE,        /* saved-state flag set: refusing writable open */
	VHD_E_FIXED_DATA_OFFSET,  /* fixed disk whose data offset is not all ones */
	VHD_E_FIXED_SIZE,         /* fixed disk: file size != current size + footer */
	VHD_E_SIZE_ZERO,
	VHD_E_SIZE_UNALIGNED,     /* current size not a multiple of 512 */
	VHD_E_SIZE_TOO_BIG,
	VHD_E_HEADER_OFFSET,      /* data offset outside the file or unaligned */
	VHD_E_HEADER_COOKIE,
	VHD_E_HEADER_CHECKSUM,
	VHD_E_HEADER_VERSION,
	VHD_E_HEADER_DATA_OFFSET, /* header's data offset not all ones */
	VHD_E_BLOCK_SIZE,         /* not a power of two, < 512 or too large */
	VHD_E_TABLE_OFFSET,       /* BAT offset unaligned or outside the file */
	VHD_E_TABLE_SMALL,        /* max table entries x block size < size */
	VHD_E_TABLE_OVERLAP,      /* BAT overlaps header or footer */
	VHD_E_BAT_RANGE,          /* a BAT entry points outside the file */
	VHD_E_BAT_OVERLAP_META,   /* a block overlaps header, BAT or footer copy */
	VHD_E_BAT_OVERLAP,        /* two blocks overlap */
	VHD_E_NOT_DIFF,           /* parent operation on a non-differencing image */
	VHD_E_NO_PARENT,          /* differencing image with no parent attached */
	VHD_E_PARENT_NOT_FOUND,   /* no locator resolved to a readable file */
	VHD_E_PARENT_UUID,        /* parent's unique id != child's parent id */
	VHD_E_PARENT_TIMESTAMP,   /* parent's time stamp != child's parent time stamp */
	VHD_E_PARENT_SIZE,        /* parent's virtual size differs */
	VHD_E_CHAIN_LOOP,         /* the same image appears twice in a chain */
	VHD_E_CHAIN_DEPTH,        /* chain deeper than VHD_MAX_CHAIN */
	VHD_E_LOCATOR,            /* a parent locator is malformed */
	VHD_E_NO_LOCATOR,         /* no more parent locator candidates */
	VHD_E_RANGE,              /* request past the end of the virtual disk */
	VHD_E_READ_ONLY,          /* write to an image opened read-only */
	VHD_E_NOSPACE,            /* no room to grow the image for a new block */
	VHD_E_BAD_ARG,            /* invalid argument to a library call */
	VHD_E_BAT_NOT_LOADED,     /* vhd_load_bat() was not called */
	VHD_E_COUNT
};

/* The message for an error code; never NULL. */
const char *vhd_strerror(int err);
/* The stable short name of an error code ("footer-checksum"...); never NULL. */
const char *vhd_errname(int err);

/* Open flags. */
#define VHD_OPEN_RDONLY 0x1u       /* never write the image */
#define VHD_OPEN_NO_BACKUP 0x2u    /* don't fall back to the footer copy at 0 */

/* Parent attach flags. */
#define VHD_PARENT_IGNORE_TIMESTAMP 0x1u

/* State flags reported in struct vhd.state. */
#define VHD_ST_BACKUP_FOOTER 0x1u  /* end footer damaged: opened from the copy at 0 */
#define VHD_ST_SHORT_FOOTER 0x2u   /* old 511-byte end footer */
#define VHD_ST_END_FOOTER_BAD 0x4u /* set with BACKUP_FOOTER: why (err in end_footer_err) */

/* Parsed footer (native endian). */
struct vhd_footer {
	uint32_t features;
	uint32_t version;
	uint64_t data_offset;
	uint32_t timestamp;
	char creator_app[5];      /* NUL-terminated copy */
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
};

/* Parsed parent locator entry. */
struct vhd_ploc {
	uint32_t code;
	uint32_t data_space;      /* as stored (sectors or bytes, see vhd-format notes) */
	uint32_t data_len;        /* bytes */
	uint64_t data_offset;     /* byte offset in the file */
};

/* Parsed dynamic header (native endian). */
struct vhd_header {
	uint64_t data_offset;
	uint64_t table_offset;
	uint32_t version;
	uint32_t max_entries;
	uint32_t block_size;
	uint32_t checksum;
	uint8_t parent_uuid[16];
	uint32_t parent_timestamp;
	uint16_t parent_name[256]; /* native-endian UTF-16 code units */
	struct vhd_ploc loc[8];
};

/*
 * An open image. The caller owns the memory (no heap inside the library);
 * for dynamic/differencing images it also provides the BAT array
 * (vhd_bat_bytes() bytes, 4 per block) through vhd_load_bat().
 */
struct vhd {
	struct blk_dev *dev;
	struct vhd *parent;        /* attached with vhd_set_parent() */
	unsigned flags;            /* VHD_OPEN_* */
	unsigned state;            /* VHD_ST_* */
	int end_footer_err;        /* why the end footer was rejected, if it was */
	struct vhd_footer footer;
	struct vhd_header header;  /* valid for dynamic and differencing */
	uint8_t footer_raw[512];   /* the footer as read (big-endian) */
	uint64_t footer_pos;       /* byte offset of the end footer */
	uint64_t sectors;          /* virtual size in sectors */
	uint32_t block_size;       /* bytes */
	uint32_t spb;              /* sectors per block */
	uint32_t spb_shift;        /* log2(spb) */
	uint32_t bitmap_sectors;   /* sectors of bitmap before each block */
	uint32_t blocks;           /* blocks needed for the virtual size */
	uint32_t *bat;             /* native-endian copy of the BAT (max_entries) */
	uint64_t alloc_end;        /* first free sector after metadata and blocks */
	/* One cached bitmap sector (512 B covers 4096 sectors of one block). */
	uint32_t bm_block;
	uint32_t bm_index;
	int bm_valid;
	uint8_t bm[VHD_SECTOR];
	uint8_t tmp[VHD_SECTOR];   /* scratch sector */
};

/* Open an image on dev: read and validate the footer and (if any) header. No BAT yet. */
int vhd_open(struct vhd *v, struct blk_dev *dev, unsigned flags);
/* Bytes of memory vhd_load_bat() needs (0 for fixed images). */
size_t vhd_bat_bytes(const struct vhd *v);
/* Read and validate the BAT into bat (vhd_bat_bytes() bytes); the image keeps the pointer. */
int vhd_load_bat(struct vhd *v, uint32_t *bat);
/*
 * Check that no two blocks overlap: O(n log n), using the caller's scratch
 * of vhd_bat_bytes() bytes. Called by vhd_check; openers should call it too.
 */
int vhd_check_overlaps(const struct vhd *v, uint32_t *scratch);

/* Read count sectors at lba (virtual disk) into buf. Needs the BAT (and parent, if differencing). */
int vhd_read(struct vhd *v, uint64_t lba, uint32_t count, void *buf);

/*
 * Is the dynamic or differencing block holding virtual sector lba a plain
 * copy of file sectors: allocated, every bitmap bit set (so reads of it
 * are the file's data and in-place writes change nothing else)? 1 with
 * *lo, *n = the block's virtual sectors [lo, lo+n) and *file_sector = the
 * file sector of virtual sector lo; 0 if not (or a fixed image: its
 * whole data is plain, see the caller's linear view); minus a VHD_E_* code if a
 * bitmap cannot be read. Reads bitmap sectors through the cache.
 */
int vhd_plain_block(struct vhd *v, uint64_t lba, uint64_t *lo, uint32_t *n, uint64_t *file_sector);
/* Write count sectors at lba; allocates blocks crash-safely; writes only this image, never a parent. VHD_E_NOSPACE (nothing written) if the device cannot hold every block the write needs. */
int vhd_write(struct vhd *v, uint64_t lba, uint32_t count, const void *buf);
/* Flush the backing device. */
int vhd_flush(struct vhd *v);

/*
 * Parent candidate idx (0, 1, ...) in lookup order: W2ru, W2ku, MacX
 * locators, then the header's parent name. Writes a UTF-8 path with '/'
 * separators (drive letter kept, "file://" stripped) into out and the
 * locator code (0 for the parent name) into *code. VHD_E_NO_LOCATOR when
 * there are no more; VHD_E_LOCATOR for a malformed one (skip it and go on).
 */
int vhd_parent_candidate(struct vhd *v, int idx, char *out, size_t outlen, uint32_t *code);
/* Decode the W2ru/W2ku/MacX locator in header slot 0..7 to a UTF-8 path ('/' separators). */
int vhd_locator_path(struct vhd *v, int slot, char *out, size_t outlen);
/* Decode the header's parent name (UTF-16BE) to UTF-8; VHD_E_NO_LOCATOR if empty. */
int vhd_parent_name(const struct vhd *v, char *out, size_t outlen);
/*
 * Attach parent to child after checking unique id, time stamp (unless
 * VHD_PARENT_IGNORE_TIMESTAMP) and size, that parent's id does not appear
 * in the chain from leaf down to child (loop) and the chain stays within
 * VHD_MAX_CHAIN. leaf may equal child.
 */
int vhd_set_parent(struct vhd *child, struct vhd *parent, const struct vhd *leaf, unsigned flags);
/* Depth of the chain below v (0 = no parent). */
int vhd_chain_depth(const struct vhd *v);

/* Creation parameters. */
struct vhd_create_opts {
	uint32_t type;             /* VHD_TYPE_FIXED / DYNAMIC / DIFF */
	uint64_t size;             /* bytes, multiple of 512 (ignored for DIFF: parent's) */
	uint32_t block_size;       /* dynamic/diff: power of two >= 512; 0 = 2 MiB */
	uint32_t timestamp;        /* seconds since 2000-01-01 UTC */
	uint8_t uuid[16];          /* caller-generated random id */
	const char *creator_app;   /* 4 chars, default "win " (size = current size) */
	uint32_t creator_os;       /* default "Wi2k" */
	/* Differencing only: */
	const struct vhd *parent;
	const char *parent_name;   /* UTF-8 file name stored in the header */
	const char *w2ru;          /* relative path (UTF-8, '/' or '\\'), or NULL */
	const char *w2ku;          /* absolute path, or NULL */
};

/*
 * Encode the UTF-8 string in as UTF-16 into out (at most max units), '/'
 * turned into '\\' when backslash is set, big-endian if be (header parent
 * name) else little-endian (W2ru/W2ku locators); returns the units written
 * or -1 if it does not fit.
 */
int vhd_utf16_encode(const char *in, uint8_t *out, int max, int be, int backslash);

/* Write a new empty image to dev (which must be empty or be overwritten). */
int vhd_create(struct blk_dev *dev, const struct vhd_create_opts *o);

/* Compute a CHS geometry from a size in sectors, as the VHD spec's appendix does. */
void vhd_chs_from_size(uint64_t sectors, uint16_t *c, uint8_t *h, uint8_t *s);
/* Footer/header checksum: one's complement of the byte sum, skipping the 4-byte field at csum_off. */
uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t csum_off);

/* One defect found by vhd_check: code is a VHD_C_* value, a and b are details. */
typedef void (*vhd_report_fn)(void *ctx, int code, uint64_t a, uint64_t b);

/* Consistency defects found by vhd_check (beyond the open errors). */
enum vhd_check_code {
	VHD_C_BACKUP_FOOTER_MISSING = 1, /* a: 0 */
	VHD_C_BACKUP_FOOTER_DIFFERS,     /* copy at 0 differs from the end footer */
	VHD_C_END_FOOTER_BAD,            /* a: vhd_err of the end footer (opened from copy) */
	VHD_C_FOOTER_RESERVED,           /* reserved footer bytes non-zero */
	VHD_C_HEADER_RESERVED,           /* reserved header bytes non-zero */
	VHD_C_TIMESTAMP_FUTURE,          /* a: stamp, b: now */
	VHD_C_FEATURES_UNKNOWN,          /* a: features */
	VHD_C_SIZE_MISMATCH_CHS,         /* a: cur size, b: CHS size (informational) */
	VHD_C_MAX_ENTRIES_EXCESS,        /* a: max entries, b: needed */
	VHD_C_BAT_ENTRY_PAST_USE,        /* a: block index allocated beyond the disk size */
	VHD_C_BLOCK_OVERLAP,             /* a, b: file sectors of the two overlapping blocks */
	VHD_C_LOCATOR_BAD,               /* a: locator index */
	VHD_C_LOCATOR_DUP,               /* a: index, b: earlier index with the same code */
	VHD_C_LOCATOR_OVERLAP,           /* a: locator index overlaps metadata or a block */
	VHD_C_LOCATORS_ON_DYNAMIC,       /* a: locator index */
	VHD_C_TRAILING_BYTES,            /* a: bytes between the last block and the footer (a block's room or more), b: at sector */
	VHD_C_LEAKED_SPACE,              /* a: sectors of one hole with room for a block, b: at sector */
	VHD_C_FOOTER_SHORT,              /* old 511-byte footer */
	VHD_C_DATA_BITMAP_CLEAR,         /* a: virtual sector with data but a clear bit (deep) */
	VHD_C_ALIGN_GAP,                 /* a: sectors of one hole shorter than a block (padding), b: at sector */
	VHD_C_COUNT
};

/* How much a check finding matters (vhd_check_severity). */
enum vhd_check_severity {
	VHD_SEV_DEFECT = 0,              /* the image is inconsistent */
	VHD_SEV_LEAK,                    /* unused space with room for a block: harmless, reclaimable (compact, repair) */
	VHD_SEV_NOTE,                    /* worth saying, nothing wrong (alignment padding, a spare table, a maximal geometry) */
};
/* Severity of a check code. */
int vhd_check_severity(int code);
/* Message for a check code; never NULL. */
const char *vhd_check_msg(int code);
/* Stable short name of a check code ("block-overlap"...); never NULL. */
const char *vhd_check_name(int code);

#define VHD_CHECK_DEEP 0x1u        /* also scan data of clear-bitmap sectors */
/*
 * Run every consistency check on an opened image with its BAT loaded;
 * report each defect. scratch: vhd_bat_bytes() bytes. now: current time
 * in VHD seconds (0 = skip the future check). Returns the number of
 * findings reported (of every severity: see vhd_check_severity), or a
 * negative vhd_err if the image could not be read.
 */
int vhd_check(struct vhd *v, uint32_t *scratch, unsigned flags, uint32_t now, vhd_report_fn report, void *ctx);

/* Where a VHD lies on a raw device (vhd_probe_layout). */
enum vhd_layout {
	VHD_LAYOUT_NONE = 0,      /* no VHD footer at the end nor a footer copy at sector 0 */
	VHD_LAYOUT_WHOLE,         /* the device ends with the footer: the whole device is the image */
	VHD_LAYOUT_PREFIX,        /* a dynamic/differencing image at the start of a larger device */
	VHD_LAYOUT_BACKUP_ONLY,   /* a footer copy at 0 but no end footer found: open from the copy (damaged) */
};
#define VHD_LAYOUT_SCAN_SECTORS 4096u /* how far past the computed end a prefix's end footer is looked for */

/* What vhd_probe_layout found. */
struct vhd_layout_info {
	int layout;               /* enum vhd_layout */
	uint64_t image_sectors;   /* sectors the image occupies (prefix: through its end footer; else the device) */
	uint64_t footer_lba;      /* whole/prefix: where the end footer is */
	int scanned;              /* prefix: the end footer was found by scanning past the computed end */
};

/* Scratch for vhd_probe_layout (the caller's: no state in the library). */
struct vhd_layout_scratch {
	uint8_t sec[VHD_SECTOR], first[VHD_SECTOR], hdr[1024];
};

/*
 * Find the VHD on dev: whole device (footer in the last sector), prefix (no
 * footer at the end, a dynamic footer copy at sector 0, and the same footer
 * right after the image's highest block or metadata, or within
 * VHD_LAYOUT_SCAN_SECTORS after it), or backup-only. Returns out->layout.
 */
int vhd_probe_layout(struct blk_dev *dev, struct vhd_layout_scratch *s, struct vhd_layout_info *out);
/* Nonzero when the last sector of dev (read into sec, VHD_SECTOR bytes) starts with the footer cookie. */
int vhd_has_end_footer(struct blk_dev *dev, uint8_t *sec);
/* Name of a layout for messages ("whole disk", ...); never NULL. */
const char *vhd_layout_name(int layout);

/* Convert between Unix time and VHD time (seconds since 2000-01-01 UTC). */
#define VHD_EPOCH_OFFSET 946684800u

#endif
