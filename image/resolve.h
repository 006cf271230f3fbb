/* resolve.h: the one differencing-VHD parent resolver (candidate paths, chain walk, explanations) for the firmware and vhdtool. */
#ifndef RES_H
#define RES_H

/*
 * Pure and freestanding-safe: no heap, no globals, no I/O. Files are opened
 * through the caller's callbacks; memory is the caller's (struct res_work).
 *
 * Rules (docs/vhdtool.md "Finding parents", docs/selection.md): for each
 * candidate of vhd_parent_candidate() in its order (W2ru, W2ku, MacX
 * locators, then the header's parent name):
 *   - a MacX URL is %XX-decoded, "file://" and a "localhost" host dropped;
 *   - a drive letter ("C:") is dropped: what follows is absolute when it
 *     starts with '/', relative otherwise;
 *   - relative: joined to the child's folder;
 *   - absolute: tried as is from the root (volume root in the firmware, /
 *     on the host), then its base name in the child's folder;
 *   - the parent name: by the same rules, then its base name in the
 *     child's folder;
 *   - '\\' is a separator like '/'; ".", empty segments are dropped; ".."
 *     removes the segment before it; ".." above the root of an absolute
 *     path drops that try (a relative child path keeps leading "..");
 *   - a path already in the list is dropped (RES_FOLD_CASE: ignoring ASCII
 *     case); RES_SKIP_MACX ignores MacX locators.
 * Each try is opened by ops->open_path; a file that opens is attached with
 * vhd_set_parent() (unique id, time stamp unless RES_IGNORE_TIMESTAMP,
 * size, loop, depth). The first real failure (a file that exists but
 * cannot be opened or is refused) is explained; if no try found a file,
 * the message lists every path tried. Matching names (case) and telling
 * that two paths are the same file (inode, FAT entry) is the callback's
 * business (RES_DUPLICATE).
 *
 * Usage from a caller with a bump allocator (the firmware):
 *
 *   struct member { struct vhd v; ...; char path[256]; const char *via; };
 *
 *   static int fw_open(void *ctx, const struct res_try *t, struct vhd **pv,
 *                      const char **ppath, int *err, char *why, size_t wn)
 *   {
 *           uint32_t mark = bump_used;        // a miss gives its memory back
 *           if (t->idx == 0) seen = 0;        // a new lookup (for RES_DUPLICATE by first cluster)
 *           if (strlen(t->path) >= sizeof(m->path) || fat_lookup(t->path) == NOT_FOUND)
 *                   return RES_NOT_FOUND;     // (or RES_DUPLICATE: same file as an earlier try)
 *           struct member *m = bump_alloc(sizeof(*m));
 *           if (open and load BAT fail) {
 *                   if (!resident) bump_used = mark;   // else keep counting it
 *                   if (wn) k_snprintf(why, wn, "...");
 *                   *err = rc; return RES_ERROR;
 *           }
 *           k_strlcpy(m->path, t->path, sizeof(m->path));
 *           m->via = t->via;                 // "parent %s (found through its child's %s)"
 *           m->mark = mark;
 *           *pv = &m->v; *ppath = m->path;
 *           return RES_FOUND;
 *   }
 *   static void fw_close(void *ctx, struct vhd *v)   // opened, then refused
 *   {
 *           struct member *m = CONTAINER_OF(v, struct member, v);  // kernel/container.h
 *           if (!resident) bump_used = m->mark;      // the most recent allocation
 *   }
 *   static const struct res_ops fw_ops = { fw_open, fw_close, "vhd_ignore_timestamp accepts it" };
 *
 *   struct res_work *w = bump_alloc(sizeof(*w));     // scratch, ~22 KiB
 *   rc = res_open_chain(&fw_ops, ctx, w, &leaf->v, leaf->path, RES_FOLD_CASE |
 *                       (ignore_ts ? RES_IGNORE_TIMESTAMP : 0), why, sizeof(why));
 *   // rc == VHD_E_PARENT_NOT_FOUND: "put the parent where ..."; another rc: a refused parent.
 */

#include <stddef.h>
#include <stdint.h>
#include "../vhd/vhd.h"
#include "../vhdx/vhdx.h"   /* res_vhdx_parent_paths */

#define RES_MAX_TRIES 20          /* paths one lookup can produce: 9 candidates x 2, plus room */
#define RES_PATH_MAX 1024         /* longest try path (bytes, NUL included); longer tries are dropped */

/* Flags of res_parent_paths / res_find_parent / res_open_chain. */
#define RES_IGNORE_TIMESTAMP 0x1u /* accept a parent whose time stamp differs (VHD_PARENT_IGNORE_TIMESTAMP) */
#define RES_SKIP_MACX 0x2u        /* ignore MacX locators */
#define RES_FOLD_CASE 0x4u        /* drop tries that differ from an earlier one only in ASCII case */
#define RES_VOLUME_GUID 0x8u      /* VHDX: a volume_path's Volume{GUID} becomes a try on that volume (res_try.has_vol) */

/* What ops->open_path found. */
enum res_found {
	RES_FOUND = 0,            /* opened: *parent and *path set */
	RES_NOT_FOUND,            /* no such file: try the next path */
	RES_DUPLICATE,            /* the same file as an earlier try of this lookup: skip it */
	RES_ERROR,                /* the file exists but cannot be used: *err and why set */
};

/* One path to try and the candidate it came from. */
struct res_try {
	const char *via;          /* "W2ru locator", "W2ku locator", "MacX locator", "parent name" (static) */
	int idx;                  /* position in this lookup's list: 0 starts a new lookup */
	char path[RES_PATH_MAX];  /* normalised, '/' separators */
	int has_vol;              /* RES_VOLUME_GUID: path is from the root of the volume whose GUID is vol, not the child's */
	uint8_t vol[16];          /* that GUID in stored byte order (a GPT entry's unique partition GUID) */
};

/* The caller's scratch for one lookup (reused level after level). */
struct res_work {
	struct res_try tries[RES_MAX_TRIES];
	int n;                    /* tries in the list */
	int bad_locators;         /* malformed candidates skipped (VHD_E_LOCATOR) */
	char cand[VHD_PATH_MAX];  /* one decoded candidate */
};

/* The caller's file access. */
struct res_ops {
	/*
	 * Open t->path read-only as a VHD ready to read (BAT loaded, overlaps
	 * checked), as a parent; t->idx == 0 starts a new lookup (reset what
	 * RES_DUPLICATE remembers). Return RES_FOUND with *parent and *path (the
	 * caller's copy, valid while the image is open), RES_NOT_FOUND,
	 * RES_DUPLICATE, or RES_ERROR with *err (a vhd_err) and a one-line
	 * reason in why when wn > 0 (why may be NULL with wn 0).
	 */
	int (*open_path)(void *ctx, const struct res_try *t, struct vhd **parent, const char **path,
	                 int *err, char *why, size_t wn);
	/* Release a parent that open_path returned and vhd_set_parent refused (the most recent open). */
	void (*close)(void *ctx, struct vhd *parent);
	/* Named after a time stamp mismatch: how to override ("--ignore-timestamp overrides"); may be NULL. */
	const char *ignore_ts_hint;
};

/*
 * Build w's ordered, deduplicated try list for the parent of child, whose
 * file is child_path ('/' or '\\' separators; absolute, or relative to the
 * caller's current folder). Returns 0, or VHD_E_NOT_DIFF / VHD_E_BAD_ARG.
 */
int res_parent_paths(struct vhd *child, const char *child_path, unsigned flags, struct res_work *w);

/*
 * The same try list for a differencing VHDX child, from its parent locator
 * in the seed document's order: relative_path (joined to the child's
 * folder), volume_path and absolute_win32_path ("\\?\", then
 * "Volume{GUID}" or a drive letter dropped: tried from the root of the
 * child's volume, then as a base name beside the child). With
 * RES_VOLUME_GUID, a volume_path "\\?\Volume{GUID}\path" first gives a
 * try with has_vol set: path from the root of the volume whose GUID it is
 * (matching GUIDs to volumes, GPT unique partition GUIDs in the firmware,
 * is the caller's open_path; a caller without volumes leaves the flag
 * off). Vias:
 * "relative_path", "volume_path", "absolute_win32_path". Malformed entries
 * are counted in w->bad_locators. Returns 0, or VHD_E_NOT_DIFF /
 * VHD_E_BAD_ARG. (The chain walk below is VHD's: a VHDX chain is attached
 * with vhdx_set_parent; VHD and VHDX never mix in one chain.)
 */
int res_vhdx_parent_paths(struct vhdx *child, const char *child_path, unsigned flags, struct res_work *w);

/* The caller's file access for a VHDX chain: as struct res_ops, over struct vhdx and vhdx_err codes. */
struct res_vhdx_ops {
	/*
	 * Open t->path read-only as a VHDX parent ready to read (any pending log
	 * replayed into memory, BAT loaded, overlaps checked); t->idx == 0
	 * starts a new lookup. RES_FOUND with *parent and *path, RES_NOT_FOUND,
	 * RES_DUPLICATE, or RES_ERROR with *err (a vhdx_err) and a reason in why
	 * (wn > 0). A file that is a VHD, not a VHDX, is RES_ERROR: VHD and VHDX
	 * do not mix in one chain.
	 */
	int (*open_path)(void *ctx, const struct res_try *t, struct vhdx **parent, const char **path,
	                 int *err, char *why, size_t wn);
	/* Release a parent that open_path returned and vhdx_set_parent refused (the most recent open). */
	void (*close)(void *ctx, struct vhdx *parent);
};

/*
 * res_find_parent for a VHDX child: the tries of res_vhdx_parent_paths in
 * order, each found file attached with vhdx_set_parent (linkage, size,
 * loop, depth). Returns 0 with *parent / *parent_path, or a vhdx_err with
 * why set: the first refusal or open error explained, or
 * VHDX_E_PARENT_NOT_FOUND listing the paths tried.
 */
int res_vhdx_find_parent(const struct res_vhdx_ops *ops, void *ctx, struct res_work *w, struct vhdx *child,
                         const char *child_path, const struct vhdx *leaf, unsigned flags,
                         struct vhdx **parent, const char **parent_path, char *why, size_t wn);

/* res_open_chain for a VHDX leaf: parents attached level after level until one without parent. */
int res_vhdx_open_chain(const struct res_vhdx_ops *ops, void *ctx, struct res_work *w, struct vhdx *leaf,
                        const char *leaf_path, unsigned flags, char *why, size_t wn);

/* One-line explanation of why vhdx_set_parent(child, parent) returned rc (linkage GUIDs named). */
void res_vhdx_explain(int rc, struct vhdx *child, const char *child_path, const struct vhdx *parent,
                      const char *parent_path, char *out, size_t n);

/*
 * Find, open and attach the parent of child (leaf: the chain's top, may
 * equal child). Returns 0 with *parent / *parent_path (from open_path), or
 * a vhd_err with why set: a refusal's or open error's explanation, or
 * VHD_E_PARENT_NOT_FOUND listing the paths tried.
 */
int res_find_parent(const struct res_ops *ops, void *ctx, struct res_work *w, struct vhd *child,
                    const char *child_path, const struct vhd *leaf, unsigned flags,
                    struct vhd **parent, const char **parent_path, char *why, size_t wn);

/*
 * Attach every parent below leaf (already open at leaf_path) with
 * res_find_parent, level after level, until a non-differencing image;
 * refuses a chain deeper than VHD_MAX_CHAIN before opening more. Returns
 * 0, or a vhd_err with why set (parents attached so far stay attached and
 * open: the caller closes them by walking leaf->parent).
 */
int res_open_chain(const struct res_ops *ops, void *ctx, struct res_work *w, struct vhd *leaf,
                   const char *leaf_path, unsigned flags, char *why, size_t wn);

/*
 * One-line explanation of why vhd_set_parent(child, parent) returned rc,
 * naming the failed check and the error name; ts_hint (may be NULL) is
 * appended to a time stamp mismatch. Always NUL-terminates (n > 0).
 */
void res_explain(int rc, const struct vhd *child, const char *child_path, const struct vhd *parent,
                 const char *parent_path, const char *ts_hint, char *out, size_t n);

/* Format a 16-byte unique id as 8-4-4-4-12 lower-case hex into out (37 bytes). */
void res_uuid_str(const uint8_t uuid[16], char out[37]);

/* Format a VHD time stamp (seconds since 2000-01-01 UTC) as "2024-01-31T12:00:00Z" into out (21 bytes). */
void res_time_str(uint32_t vhd_time, char out[21]);

#endif
