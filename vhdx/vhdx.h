/* vhdx.h: the pure VHDX library: open (headers, regions, log replay, metadata, BAT), read, write, create and check fixed/dynamic/differencing images. */
#ifndef VHDX_H
#define VHDX_H

#include <stddef.h>
#include <stdint.h>
#include "../block/blk.h"

/*
 * Pure and freestanding-safe like vhd/: no heap, no globals, no printing;
 * the file is reached only through a struct blk_dev, and every buffer is
 * the caller's (struct vhdx itself, the BAT array, the log overlay, check
 * scratch). Layout and rules: docs/vhdx.md.
 */

#define VHDX_SECTOR 512u
#define VHDX_PAGE 4096u            /* log and metadata unit */
#define VHDX_MIB (1u << 20)
#define VHDX_MAX_CHAIN 32          /* deepest differencing chain accepted */
#define VHDX_MIN_BLOCK (1u << 20)
#define VHDX_MAX_BLOCK (256u << 20)
#define VHDX_MAX_SIZE (64ull << 40) /* 64 TiB, the specification's limit */
#define VHDX_PATH_MAX 1024         /* longest decoded locator value (UTF-8 bytes, NUL included) */
#define VHDX_LOG_MAX_DESC 64u      /* most descriptors one log entry written by this library holds */

/* Error codes: every distinct defect has its own code and message (vhdx_strerror, vhdx_errname). */
enum vhdx_err {
	VHDX_OK = 0,
	VHDX_E_IO,                /* the backing device failed */
	VHDX_E_TOO_SMALL,         /* shorter than the 1 MiB header section */
	VHDX_E_SIGNATURE,         /* no "vhdxfile" file identifier */
	VHDX_E_HEADERS_BAD,       /* neither header copy is valid (signature or CRC-32C) */
	VHDX_E_HEADERS_SAME_SEQ,  /* both headers valid, different, with the same sequence number: none is current */
	VHDX_E_HEADER_VERSION,    /* current header's version is not 1 */
	VHDX_E_LOG_VERSION,       /* a log to replay in a log version other than 0 */
	VHDX_E_LOG_RANGE,         /* log offset/length unaligned, zero, in the header section or past the file */
	VHDX_E_REGION_BAD,        /* neither region table copy is valid (signature or CRC-32C) */
	VHDX_E_REGION_COUNT,      /* region table entry count above 2047 */
	VHDX_E_REGION_RANGE,      /* a region unaligned, empty, in the header section or past the file */
	VHDX_E_REGION_OVERLAP,    /* two regions (or a region and the log) overlap */
	VHDX_E_REGION_UNKNOWN,    /* a region this library does not know is marked required */
	VHDX_E_REGION_MISSING,    /* no BAT or no metadata region */
	VHDX_E_REGION_DUP,        /* the same region listed twice */
	VHDX_E_LOG_TRUNCATED,     /* the file is shorter than the log's flushed file offset */
	VHDX_E_LOG_DESC,          /* a valid log entry targets the file identifier or headers (< 192 KiB), the log, or too far */
	VHDX_E_LOG_OVERLAY,       /* read-only open of a pending log: overlay missing or too small (see log_need) */
	VHDX_E_META_SIGNATURE,    /* no "metadata" table signature */
	VHDX_E_META_COUNT,        /* metadata entry count above 2047 */
	VHDX_E_META_RANGE,        /* a metadata item outside the region or overlapping the table */
	VHDX_E_META_DUP,          /* the same metadata item listed twice */
	VHDX_E_META_UNKNOWN,      /* a metadata item this library does not know is marked required */
	VHDX_E_META_MISSING,      /* a required system metadata item is missing */
	VHDX_E_META_LENGTH,       /* a system metadata item has the wrong length */
	VHDX_E_META_OVERLAP,      /* a metadata item overlaps a system item */
	VHDX_E_BLOCK_SIZE,        /* block size not a power of two in 1..256 MiB */
	VHDX_E_SIZE,              /* virtual size zero, not a multiple of the sector size, or over 64 TiB */
	VHDX_E_LOGICAL_4K,        /* logical sector size 4096: not supported yet */
	VHDX_E_LOGICAL_SECTOR,    /* logical sector size neither 512 nor 4096 */
	VHDX_E_PHYSICAL_SECTOR,   /* physical sector size neither 512 nor 4096 */
	VHDX_E_BAT_SMALL,         /* BAT region too small for the entries the disk needs */
	VHDX_E_BAT_STATE,         /* a BAT entry has an undefined state */
	VHDX_E_BAT_PARTIAL,       /* a partially present block in a disk without parent */
	VHDX_E_BAT_RANGE,         /* a block lies (partly) past the end of the file */
	VHDX_E_BAT_OFFSET,        /* a present block with file offset zero (the header section) */
	VHDX_E_BAT_OVERLAP_META,  /* a block overlaps the header section, log, BAT or metadata */
	VHDX_E_BAT_OVERLAP,       /* two blocks overlap */
	VHDX_E_SB_STATE,          /* a sector bitmap entry has an undefined state */
	VHDX_E_SB_MISSING,        /* a partially present block whose sector bitmap block is not present */
	VHDX_E_LOCATOR_MISSING,   /* has-parent set but no parent locator item */
	VHDX_E_LOCATOR_TYPE,      /* parent locator type is not the VHDX locator */
	VHDX_E_LOCATOR_RANGE,     /* a locator key or value outside the item, odd length or empty */
	VHDX_E_LOCATOR_LINKAGE,   /* parent_linkage missing or not a braced GUID */
	VHDX_E_LOCATOR_DUP,       /* a locator key appears twice */
	VHDX_E_NOT_DIFF,          /* parent operation on an image without parent */
	VHDX_E_NO_PARENT,         /* differencing image read with no parent attached */
	VHDX_E_PARENT_NOT_FOUND,  /* no locator path led to a parent file */
	VHDX_E_PARENT_LINKAGE,    /* parent's DataWriteGuid matches neither parent_linkage nor parent_linkage2 */
	VHDX_E_PARENT_SIZE,       /* parent's virtual size or sector size differs from the child's */
	VHDX_E_CHAIN_LOOP,        /* the same image appears twice in a chain */
	VHDX_E_CHAIN_DEPTH,       /* chain deeper than VHDX_MAX_CHAIN */
	VHDX_E_NO_LOCATOR,        /* no more parent path candidates */
	VHDX_E_RANGE,             /* request past the end of the virtual disk */
	VHDX_E_READ_ONLY,         /* write to an image opened read-only */
	VHDX_E_NOSPACE,           /* the device cannot grow for a new block */
	VHDX_E_BAD_ARG,           /* invalid argument to a library call */
	VHDX_E_BAT_NOT_LOADED,    /* vhdx_load_bat() was not called */
	VHDX_E_LOG_FULL,          /* a metadata update does not fit in the log */
	VHDX_E_META_FULL,         /* an edited metadata item does not fit in the metadata region */
	VHDX_E_EDIT_TOO_BIG,      /* one edit changes more pages than one log entry carries (VHDX_EDIT_MAX) */
	VHDX_E_COUNT
};

/* The message for an error code; never NULL. */
const char *vhdx_strerror(int err);
/* The stable short name of an error code ("header-crc"...); never NULL. */
const char *vhdx_errname(int err);

/* Open flags. */
#define VHDX_OPEN_RDONLY 0x1u      /* never write the image (a pending log goes to the caller's overlay) */

/* State flags reported in struct vhdx.state. */
#define VHDX_ST_HEADER_COPY_BAD 0x1u  /* one header copy invalid (torn): opened from the other */
#define VHDX_ST_REGION_COPY_BAD 0x2u  /* one region table copy invalid: opened from the other */
#define VHDX_ST_LOG_REPLAYED 0x4u     /* a pending log was replayed into the file (writable open) */
#define VHDX_ST_LOG_OVERLAY 0x8u      /* a pending log was replayed into the caller's memory overlay (read-only) */
#define VHDX_ST_LOG_IGNORED 0x10u     /* the header names a log but no valid entry sequence was found (torn entries ignored) */
#define VHDX_ST_REGION_COPIES_DIFFER 0x20u /* both region tables valid but not equal */

/* Payload block states (BAT entry bits 0-2). */
#define VHDX_PB_NOT_PRESENT 0u
#define VHDX_PB_UNDEFINED 1u
#define VHDX_PB_ZERO 2u
#define VHDX_PB_UNMAPPED 3u
#define VHDX_PB_FULLY_PRESENT 6u
#define VHDX_PB_PARTIALLY_PRESENT 7u
/* Sector bitmap block states. */
#define VHDX_SB_NOT_PRESENT 0u
#define VHDX_SB_PRESENT 6u

/* A BAT entry's fields. */
/* State (bits 0-2), file offset in MiB (bits 20-63), and an entry made of both. */
static inline unsigned vhdx_bat_state(uint64_t e) { return (unsigned)(e & 7u); }
static inline uint64_t vhdx_bat_mb(uint64_t e) { return e >> 20; }
static inline uint64_t vhdx_bat_make(unsigned state, uint64_t mb) { return (mb << 20) | state; }

/* A 16-byte GUID as stored (Microsoft byte order: the first three fields little-endian). */
struct vhdx_guid {
	uint8_t b[16];
};

/* One parsed header copy (native endian). */
struct vhdx_header {
	uint32_t checksum;
	uint64_t seq;
	struct vhdx_guid file_write, data_write, log_guid;
	uint16_t log_version, version;
	uint32_t log_length;
	uint64_t log_offset;
};

/* GUIDs a writable open uses for its session (the caller makes them random: the library has no entropy). */
struct vhdx_session {
	struct vhdx_guid file_write;   /* new FileWriteGuid, set on the first write */
	struct vhdx_guid data_write;   /* new DataWriteGuid, set on the first write */
	struct vhdx_guid log_guid;     /* LogGuid of this session's log entries */
};

/* Options of vhdx_open (NULL: read-only without overlay). */
struct vhdx_open_opts {
	const struct vhdx_session *session; /* required for writable opens */
	void *overlay;                 /* read-only opens with a pending log: the replay goes here */
	size_t overlay_bytes;          /* its size; vhdx_open says how much it needs in v->log_need */
};

/* Bytes one replayed log descriptor takes in the overlay (record head + one 4 KiB page for data). */
#define VHDX_OVL_REC 16u

/*
 * Most overlay bytes any log of log_length bytes can need (a bound known
 * before opening: every 4 KiB of log one data page, every 32 bytes one
 * zero descriptor); vhdx_open reports the exact need in log_need.
 */
static inline uint64_t vhdx_log_overlay_max(uint32_t log_length)
{
	return (uint64_t)(log_length / 4096u) * (VHDX_OVL_REC + 4096u) + (uint64_t)(log_length / 32u) * VHDX_OVL_REC;
}

/*
 * An open image. The caller owns the memory (no heap inside the library);
 * it also provides the BAT array (vhdx_bat_bytes() bytes) through
 * vhdx_load_bat().
 */
struct vhdx {
	struct blk_dev *dev;
	struct vhdx *parent;       /* attached with vhdx_set_parent() */
	unsigned flags;            /* VHDX_OPEN_* */
	unsigned state;            /* VHDX_ST_* */
	int hdr_err[2];            /* why header copy 0/1 was rejected (0: valid) */
	int rt_err[2];             /* why region table copy 0/1 was rejected (0: valid) */
	int cur;                   /* index of the current header (0: at 64 KiB, 1: at 128 KiB) */
	struct vhdx_header hdr;    /* the current header */
	uint64_t file_bytes;       /* file size seen (after replay: at least the log's last file offset) */
	/* Regions. */
	uint64_t bat_off, meta_off;
	uint32_t bat_len, meta_len;
	uint32_t regions;          /* entries in the region table in use */
	/* Metadata. */
	uint32_t block_size;
	int leave_allocated, has_parent;
	uint32_t file_params_flags;
	uint64_t vsize;            /* bytes */
	uint32_t lss, pss;         /* logical / physical sector size */
	struct vhdx_guid page83;
	uint32_t loc_off, loc_len; /* parent locator item (offset in the metadata region), 0 if none */
	uint32_t meta_items;       /* entries in the metadata table */
	uint32_t meta_unknown;     /* non-required items not known to this library */
	/* Derived. */
	uint64_t sectors;          /* virtual size in 512-byte sectors */
	uint32_t spb;              /* sectors per block */
	uint32_t chunk_ratio;      /* payload blocks per sector bitmap block */
	uint64_t data_blocks, sb_blocks, bat_entries;
	uint64_t *bat;             /* native copy of the BAT (bat_entries), the caller's */
	uint64_t alloc_end;        /* bytes: where the next new block goes (1 MiB aligned, past everything) */
	/* Log. */
	uint64_t log_need;         /* overlay bytes the pending log needs (set by vhdx_open) */
	uint32_t log_replayed;     /* entries replayed on open */
	uint64_t log_seq;          /* sequence number of the next entry written */
	uint32_t log_head;         /* where it goes (offset in the log) */
	uint8_t *ovl;              /* overlay records (read-only replay), the caller's */
	uint64_t ovl_used;         /* bytes of records */
	/* Session. */
	struct vhdx_session sess;
	int session_started;       /* headers carry the session's FileWriteGuid and LogGuid */
	int data_started;          /* ... and its DataWriteGuid (the virtual disk's data was changed) */
	/* Caches and scratch. */
	uint64_t tmp_lba;          /* sector held in tmp (UINT64_MAX: none) */
	uint64_t sbm_lba;          /* sector bitmap sector held in sbm (UINT64_MAX: none) */
	uint8_t tmp[VHDX_SECTOR];
	uint8_t sbm[VHDX_SECTOR];
	uint8_t page[VHDX_PAGE];
	uint8_t page2[VHDX_PAGE];
};

/*
 * Open an image on dev: file identifier, both headers (the valid one with
 * the higher sequence number is current), the log (replayed before
 * anything else is read: into the file and flushed on a writable open,
 * into opts->overlay on a read-only one), both region tables and the
 * metadata. No BAT yet. A read-only open of an image whose log must be
 * replayed fails with VHDX_E_LOG_OVERLAY when opts gives no overlay or a
 * too small one; v->log_need then says how many bytes to give.
 */
int vhdx_open(struct vhdx *v, struct blk_dev *dev, unsigned flags, const struct vhdx_open_opts *opts);
/* Bytes of memory vhdx_load_bat() needs (8 per BAT entry). */
size_t vhdx_bat_bytes(const struct vhdx *v);
/* Read and validate the BAT into bat (vhdx_bat_bytes() bytes); the image keeps the pointer. */
int vhdx_load_bat(struct vhdx *v, uint64_t *bat);
/* Check that no two blocks overlap, O(n log n) with the caller's scratch of vhdx_bat_bytes() bytes; vhdx_check calls it. */
int vhdx_check_overlaps(const struct vhdx *v, uint64_t *scratch);

/* Read count sectors at lba (virtual disk) into buf. Needs the BAT (and parent, if differencing). */
int vhdx_read(struct vhdx *v, uint64_t lba, uint32_t count, void *buf);
/*
 * Write count sectors at lba: in place in allocated blocks; new blocks
 * allocated with the BAT and sector bitmap changes made through the log,
 * flushed before returning. The first write of a session updates the
 * headers (FileWriteGuid, DataWriteGuid, LogGuid). Never writes a parent.
 */
int vhdx_write(struct vhdx *v, uint64_t lba, uint32_t count, const void *buf);
/* Flush the backing device. */
int vhdx_flush(struct vhdx *v);
/* End a writable session: flush and mark the log empty (LogGuid zero) in both headers. A no-op when nothing was written. */
int vhdx_close(struct vhdx *v);

/* The state of the payload block holding virtual sector lba (VHDX_PB_*), or -VHDX_E_RANGE / -VHDX_E_BAT_NOT_LOADED. */
int vhdx_block_state(const struct vhdx *v, uint64_t lba);

/* ------------------------------------------------------------------ differencing */

/* Locator keys in the order the parent is looked for (the seed document's order). */
enum vhdx_loc_key {
	VHDX_LOC_RELATIVE = 0,     /* relative_path */
	VHDX_LOC_VOLUME,           /* volume_path */
	VHDX_LOC_ABSOLUTE,         /* absolute_win32_path */
	VHDX_LOC_PATHS,            /* number of path keys */
};

/* What the parent locator says. */
struct vhdx_parent_info {
	struct vhdx_guid linkage;  /* parent_linkage (the parent's DataWriteGuid) */
	struct vhdx_guid linkage2; /* parent_linkage2, if has_linkage2 */
	int has_linkage2;
	int has_path[VHDX_LOC_PATHS];
	uint32_t entries;          /* key/value entries */
	uint32_t unknown_keys;     /* keys this library does not know */
};

/* Parse the parent locator into pi (VHDX_E_NOT_DIFF without parent). */
int vhdx_parent_info(struct vhdx *v, struct vhdx_parent_info *pi);
/* The locator value of key (VHDX_LOC_*) as UTF-8 (backslashes kept); VHDX_E_NO_LOCATOR if absent. */
int vhdx_locator_path(struct vhdx *v, int key, char *out, size_t outlen);
/*
 * Parent path candidate idx (0, 1, ...) in lookup order relative_path,
 * volume_path, absolute_win32_path (absent ones skipped); *key gets its
 * VHDX_LOC_*. VHDX_E_NO_LOCATOR when there are no more.
 */
int vhdx_parent_candidate(struct vhdx *v, int idx, char *out, size_t outlen, int *key);
/*
 * Attach parent to child after checking parent_linkage(2) against the
 * parent's DataWriteGuid, the virtual and logical sector sizes, that the
 * parent does not already appear in the chain from leaf to child (loop,
 * by DataWriteGuid or identity) and the depth. leaf may equal child.
 */
int vhdx_set_parent(struct vhdx *child, struct vhdx *parent, const struct vhdx *leaf);
/* Depth of the chain below v (0 = no parent). */
int vhdx_chain_depth(const struct vhdx *v);

/* ------------------------------------------------------------------ editing (vhdx_edit.c) */

/* Most pages one edit changes: one log entry's descriptors. */
#define VHDX_EDIT_MAX VHDX_LOG_MAX_DESC
/* Scratch bytes vhdx_apply needs (the BAT pages it builds). */
#define VHDX_EDIT_SCRATCH ((size_t)VHDX_EDIT_MAX * VHDX_PAGE)
/* Scratch bytes vhdx_meta_build needs for a rebuilt parent locator. */
#define VHDX_LOC_SCRATCH 65536u

/*
 * One atomic change of a writable image: whole 4 KiB pages (page_off[i] ->
 * pages[i]; page aligned, past the header section, not in the log, not in
 * the BAT) and BAT entries (bat_idx[i] -> bat_val[i]; an index may lie in
 * the BAT region's padding past bat_entries). data: the change alters the
 * virtual disk's content (the session's DataWriteGuid goes into the headers
 * first); otherwise only FileWriteGuid and LogGuid change.
 */
struct vhdx_edit {
	const uint64_t *page_off;
	const uint8_t *const *pages;
	uint32_t npages;
	const uint64_t *bat_idx;
	const uint64_t *bat_val;
	uint32_t nbat;
	int data;
};

/*
 * Apply e through the log as one entry (written and flushed, then the pages
 * in place, flushed): a crash leaves the old or the new state. scratch:
 * VHDX_EDIT_SCRATCH bytes. A change to the metadata region re-reads the
 * metadata; when the disk then needs another BAT entry count, v->bat is
 * dropped (NULL) and the caller loads the BAT again. An empty edit only
 * starts the session (both headers rewritten). VHDX_E_EDIT_TOO_BIG
 * when the pages do not fit in one entry (nothing written).
 */
int vhdx_apply(struct vhdx *v, const struct vhdx_edit *e, uint8_t *scratch);

/* Metadata changes for vhdx_meta_build. */
struct vhdx_meta_set {
	uint64_t vsize;                     /* new virtual size in bytes (0: keep) */
	const struct vhdx_guid *page83;     /* new page 83 id (NULL: keep) */
	const char *const *keys;            /* locator keys to set (UTF-8 values; NULL value: remove the key) */
	const char *const *vals;
	uint32_t nkeys;
};

/*
 * The metadata region with s applied, into buf (at least meta_len bytes;
 * loc_scratch: VHDX_LOC_SCRATCH bytes): the virtual size and page 83 items
 * rewritten in place; a changed locator rebuilt (other keys kept byte for
 * byte, path values stored with '\\') where it was if it fits, else after
 * the last item. offs/pages (VHDX_EDIT_MAX each) get the pages that differ
 * from the file, *n their count: hand them to vhdx_apply. Nothing is
 * written. VHDX_E_META_FULL when the locator has no room.
 */
int vhdx_meta_build(struct vhdx *v, const struct vhdx_meta_set *s, uint8_t *buf, size_t buflen, uint8_t *loc_scratch,
                    uint64_t *offs, const uint8_t **pages, uint32_t *n);

/* ------------------------------------------------------------------ create */

enum vhdx_type {
	VHDX_FIXED = 1,
	VHDX_DYNAMIC,
	VHDX_DIFF,
};

/* Creation parameters. */
struct vhdx_create_opts {
	int type;                  /* enum vhdx_type */
	uint64_t size;             /* bytes, multiple of 512 (DIFF: 0 = the parent's) */
	uint32_t block_size;       /* power of two 1..256 MiB; 0 = 32 MiB (DIFF: 2 MiB) */
	uint32_t log_size;         /* multiple of 1 MiB; 0 = 1 MiB */
	uint32_t physical_sector;  /* 512 or 4096; 0 = 4096 (DIFF: the parent's) */
	struct vhdx_guid file_write, data_write, page83; /* caller-generated random GUIDs (DIFF: page83 is the parent's) */
	const char *creator;       /* file identifier creator (ASCII), NULL = "vhdboot" */
	/* Differencing only (UTF-8 paths, '/' becomes '\\'): */
	const struct vhdx *parent;
	const char *relative_path, *volume_path, *absolute_win32_path;
};

/*
 * Write a new image to dev (empty, or overwritten). Fixed images get every
 * block allocated and zeroed. The layout: header section (1 MiB), log,
 * metadata (1 MiB), BAT (whole MiBs), then blocks.
 */
int vhdx_create(struct blk_dev *dev, const struct vhdx_create_opts *o);

/* ------------------------------------------------------------------ check */

/* One defect found by vhdx_check: code is a VHDX_C_* value, a and b are details. */
typedef void (*vhdx_report_fn)(void *ctx, int code, uint64_t a, uint64_t b);

/* Consistency defects beyond the open errors. */
enum vhdx_check_code {
	VHDX_C_HEADER_COPY_BAD = 1,  /* a: copy (0/1), b: vhdx_err */
	VHDX_C_HEADER_RESERVED,      /* a: copy: reserved bytes non-zero */
	VHDX_C_REGION_COPY_BAD,      /* a: copy, b: vhdx_err */
	VHDX_C_REGION_COPIES_DIFFER,
	VHDX_C_LOG_PENDING,          /* a: entries replayed on open (image not closed cleanly) */
	VHDX_C_LOG_IGNORED,          /* header names a log, no valid entry sequence (torn) */
	VHDX_C_FILE_PARAMS_RESERVED, /* a: flags */
	VHDX_C_META_UNKNOWN,         /* a: count of unknown optional items */
	VHDX_C_BAT_RESERVED,         /* a: BAT index: reserved bits set */
	VHDX_C_SB_IN_NON_DIFF,       /* a: BAT index: sector bitmap block present without a parent */
	VHDX_C_BAT_PAD_USED,         /* a: BAT index past the disk's blocks not zero */
	VHDX_C_LOCATOR_NO_PATH,      /* differencing without any path entry */
	VHDX_C_LOCATOR_UNKNOWN_KEY,  /* a: count */
	VHDX_C_FIXED_NOT_ALLOCATED,  /* a: block index of a leave-allocated (fixed) disk neither present nor zero */
	VHDX_C_COUNT
};
/* Message for a check code; never NULL. */
const char *vhdx_check_msg(int code);
/* Stable short name of a check code; never NULL. */
const char *vhdx_check_name(int code);

/*
 * Run every consistency check on an opened image with its BAT loaded and
 * report each defect (report may be NULL: count only). scratch: vhdx_bat_bytes() bytes. Returns the defect
 * count, or a negative vhdx_err if the image is unusable.
 */
int vhdx_check(struct vhdx *v, uint64_t *scratch, vhdx_report_fn report, void *ctx);

/* ------------------------------------------------------------------ helpers */

/* CRC-32C (Castagnoli) of len bytes, continuing from crc (start with 0). */
uint32_t vhdx_crc32c(uint32_t crc, const void *buf, size_t len);
/* Format g as lower-case "{8-4-4-4-12}" (39 bytes with the NUL). */
void vhdx_guid_str(const struct vhdx_guid *g, char out[39]);
/* Parse "{8-4-4-4-12}" (either case, braces required) into g; 0 or -1. */
int vhdx_guid_parse(const char *s, size_t n, struct vhdx_guid *g);
/*
 * The volume GUID of a volume_path ("\\?\Volume{GUID}\rest", '\\' or '/'),
 * in stored order (as a GPT partition's unique GUID is stored, which is the
 * volume GUID Windows gives a GPT partition); *rest points after the GUID's
 * closing brace. 0, or -1 if path is not of that form.
 */
int vhdx_volume_guid(const char *path, struct vhdx_guid *g, const char **rest);
/* Nonzero when all 16 bytes are zero. */
int vhdx_guid_is_zero(const struct vhdx_guid *g);
/* Nonzero when the device starts with the "vhdxfile" identifier (reads sector 0 into sec, 512 bytes). */
int vhdx_probe(struct blk_dev *dev, uint8_t *sec);

#endif
