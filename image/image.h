/* image.h: the image-format interface (probe, open, parents, as_blk, file suffixes) and the format table; each format is one adapter file image/<fmt>_fmt.c over its pure library. */
#ifndef IMG_H
#define IMG_H

/*
 * An adapter turns a format library (vhd/ for VHD) into a struct img_format
 * and registers it with IMG_FORMAT(var) at the end of its file. The kernel
 * (scan, imgopen, select, main) sees only this interface: an opened image is
 * an opaque `void *im` (the format's own state, state_bytes of the caller's
 * memory, e.g. a struct vhd), a place on a raw disk is a struct img_place,
 * and what int13.c serves is the struct blk_dev that as_blk returns.
 *
 * Adapters log on the firmware console (con_printf): they are linked into
 * the firmware and the hosted test of the kernel's selection
 * (tests/unit/test_select.c), not into vhdtool (Makefile IMAGE_FMT_SRCS).
 */

#include <stddef.h>
#include <stdint.h>
#include "resolve.h"              /* struct res_try, struct res_work, RES_FOUND..RES_ERROR */
#include "../block/blk.h"

#define IMG_OPEN_RDONLY 0x1u      /* open: never write the image */
#define IMG_PROBE_DISK 0x1u       /* probe: dev is a raw disk (the image may be a prefix of it) */
#define IMG_FMT_FALLBACK 0x1u     /* img_format.flags: opens (and explains) a place no probe recognised */
#define IMG_NO_PARENT (-1)        /* find_parent: no try found a file */

/* Where an image lies on a probed device (a raw disk: the whole of it, or a prefix). */
struct img_place {
	struct blk_window win;    /* what the format opens: the image's sectors, growable to the disk's end */
	struct blk_dev *disk;     /* the probed device (NULL: nothing probed, or not a raw disk) */
	int layout;               /* the format's own layout code (VHD: enum vhd_layout) */
	uint64_t image_sectors;   /* sectors the image occupies on disk */
	char name[24];
};

/* What an opened image is (info). */
struct img_info {
	uint64_t sectors;         /* virtual size */
	int read_only;            /* opened (or fell back to) read-only */
	int needs_parent;         /* a differencing image: its data below this one is in a parent */
	void *parent;             /* the attached parent's state (find_parent), or NULL */
	const char *type;         /* "fixed", "dynamic", "differencing" (static) */
	uint32_t map_bytes;       /* memory load() needs for the block map (0: none) */
};

/* An opened image seen as a disk (as_blk fills it; the caller owns the memory). */
struct img_blk {
	struct blk_dev blk;       /* the virtual disk: sectors = the image's virtual size */
	void *im;                 /* the opened image, map loaded, parents attached */
	const struct img_place *place; /* the raw disk it lies on (NULL: a file or a module) */
	char name[24];
};

/* The caller's file access for find_parent: image/resolve.c's res_ops with the image left opaque. */
struct img_parent_ops {
	/*
	 * Open t->path read-only as a parent (same format, map loaded); returns
	 * RES_FOUND with *im and *path (the caller's copy), RES_NOT_FOUND,
	 * RES_DUPLICATE, or RES_ERROR with *err (a format error; left alone:
	 * an I/O error) and why (wn > 0).
	 */
	int (*open_path)(void *ctx, const struct res_try *t, void **im, const char **path, int *err,
	                 char *why, size_t wn);
	/* Release a parent open_path returned and the format refused (the most recent open). */
	void (*close)(void *ctx, void *im);
	const char *ignore_ts_hint;   /* appended to a time stamp refusal */
};

/* One image format: a row of the format table. */
struct img_format {
	const char *name;             /* "VHD": in messages ("the VHD hd0 cannot be opened") */
	const char *const *suffixes;  /* lower-case file suffixes the scan lists, NULL-terminated: {".vhd", NULL} */
	unsigned flags;               /* IMG_FMT_* */
	uint32_t state_bytes;         /* size of one opened image's state (open's im) */
	/*
	 * Does dev hold an image of this format? IMG_PROBE_DISK: a raw disk (VHD:
	 * whole disk, prefix, footer copy only; logs the case once); else a
	 * partition, file or module (VHD: a footer in the last sector). Fills pl;
	 * returns the device to open (dev, or &pl->win.dev), NULL if not this format.
	 */
	struct blk_dev *(*probe)(struct img_place *pl, struct blk_dev *dev, unsigned flags);
	/*
	 * Open the image on dev into im (state_bytes, zeroed) with IMG_OPEN_*
	 * flags, map not loaded; name is for messages. Returns 0 or a format
	 * error (positive; strerror/errname explain it).
	 */
	int (*open)(void *im, struct blk_dev *dev, unsigned flags, const char *name);
	/* Load the block map into map (info.map_bytes; NULL: no memory) and, with scratch (as big), check it. 0 or an error. */
	int (*load)(void *im, void *map, void *scratch);
	/* Fill *out for an opened image. */
	void (*info)(const void *im, struct img_info *out);
	/*
	 * The parent of child (leaf: the chain's top): try the parent candidates
	 * in the resolver's order (image/resolve.c; VHD: W2ru, W2ku, MacX
	 * locators, then the header's parent name), each opened by ops, and
	 * attach the first the format accepts (unique id, time stamp, size,
	 * loops, depth). res_flags: RES_*. Returns 0 with *parent and *path,
	 * IMG_NO_PARENT (why lists the paths tried), or a format error with why.
	 */
	int (*find_parent)(const struct img_parent_ops *ops, void *ctx, struct res_work *w, void *child,
	                   const char *child_path, const void *leaf, unsigned res_flags, void **parent,
	                   const char **parent_path, char *why, size_t wn);
	/* Make b a blk_dev over im (place: the raw disk it lies on, or NULL): reads; durable writes (write, then flush); flush. Returns &b->blk. */
	struct blk_dev *(*as_blk)(struct img_blk *b, void *im, const struct img_place *place, const char *name);
	/* Log what the image is, as drive drive (type, size, geometry, metadata state). */
	void (*describe)(const void *im, int drive, const char *name);
	const char *(*strerror)(int err);
	const char *(*errname)(int err);
};

/*
 * Register a format from its adapter file (a linker table, like DRIVER() in
 * drivers/driver.h, but unordered: formats are told apart by signatures, and
 * the fallback is a flag). linker.ld collects the img_formats section; a
 * hosted link gets __start_/__stop_img_formats from the linker.
 */
#define IMG_FORMAT(var) \
	static const struct img_format *img_row_##var __attribute__((used, section("img_formats"))) = &var

/* The table's bounds (linker.ld; GNU ld provides them in hosted links). */
extern const struct img_format *__start_img_formats[], *__stop_img_formats[];

/*
 * Memory an adapter needs beyond state_bytes while opening (VHDX: the
 * read-only replay of a pending log), zeroed, living as long as the image:
 * the kernel's (kernel/imgopen.c: the scan's scratch, resident memory once
 * the boot image is opened), counted in what the resident copy needs.
 * NULL when there is none.
 */
void *img_alloc(uint32_t bytes, uint32_t align);

/*
 * The common part of every adapter's as_blk: b over the opened image im
 * (sectors: its virtual size; read_only as opened), with the adapter's
 * read/write/flush callbacks (their priv is b). Returns &b->blk.
 */
struct blk_dev *img_blk_init(struct img_blk *b, void *im, const struct img_place *place, const char *name,
                             uint64_t sectors, int read_only,
                             int (*read)(struct blk_dev *, uint64_t, uint32_t, void *),
                             int (*write)(struct blk_dev *, uint64_t, uint32_t, const void *),
                             int (*flush)(struct blk_dev *));

/* Number of formats in the table, and format i (NULL past the end). */
int img_format_count(void);
const struct img_format *img_format_get(int i);
/* The first format that recognises dev (probe with flags); *open_dev = the device to open. NULL if none. */
const struct img_format *img_probe_any(struct img_place *pl, struct blk_dev *dev, unsigned flags,
                                       struct blk_dev **open_dev);
/* The format one of whose suffixes ends name (ASCII case-insensitive), or NULL. */
const struct img_format *img_suffix_match(const char *name);
/* Every format's suffixes in table order, NULL-terminated (a static list, for fs/fat.c's listing). */
const char *const *img_suffixes(void);
/* "*.vhd" (every suffix, joined by ", "): the scan's log lines. */
const char *img_suffix_text(void);
/* The largest state_bytes of the table (memory for an image of any format). */
uint32_t img_state_max(void);
/* The format that opens a place no probe recognised, so its library explains why (VHD). */
const struct img_format *img_fallback(void);

/*
 * How the front end answers a write it refuses (a full disk, an image that
 * cannot grow), for the adapters' and kernel/imgopen.c's log lines: "INT 13h
 * CCh" (the default, BIOS) or "EFI_DEVICE_ERROR" (vhdboot.efi). text must
 * stay valid (a string literal).
 */
void img_set_refusal(const char *text);
/* The text img_set_refusal gave ("INT 13h CCh" until then). */
const char *img_refusal(void);

#endif
