/* vhdtool.h: what vhdtool's verbs (tools/cmd_*.c) share: exit codes, option ids, argument parsing, messages, output, image opening. */
#ifndef VHDTOOL_H
#define VHDTOOL_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include "../vhd/vhd.h"
#include "chain.h"
#include "hostdev.h"
#include "vxchain.h"

/* Exit codes: 0 success, 1 failure (or defects found by check), 2 bad arguments / unusable input, 3 leaks only (check). */
#define EXIT_DEFECTS 1
#define EXIT_USAGE 2
#define EXIT_LEAKS 3

#define MIB (1024u * 1024u)
#define CMD_CHUNK (4u * MIB)          /* convert/read/write transfer size */
#define CMD_GRANULE 4096u             /* zero-detection granule for raw/fixed output */

/* Long-option ids shared by the verbs. */
#define OPT_IGNORE_TS 0x100
#define OPT_JSON 0x101
#define OPT_DEEP 0x102
#define OPT_SYNC 0x103
#define OPT_DRY_RUN 0x104
#define OPT_SHRINK 0x105
#define OPT_SVG 0x106
#define OPT_HTML 0x107
#define OPT_LOG_SIZE 0x108

/* The running subcommand's name, for messages ("vhdtool" before dispatch). */
extern const char *cmd_name;

/* Print "vhdtool: <cmd>: <reason>" to stderr; returns code for "return cmd_fail(...)". */
int cmd_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "vhdtool: <cmd>: note: <text>" to stderr (never changes the exit status). */
void cmd_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Parse a byte count with an optional K/M/G/T suffix (powers of 1024); 0 on success. */
int cmd_parse_size(const char *s, uint64_t *out);
/* Parse a non-negative integer (decimal, or 0x hex); 0 on success. */
int cmd_parse_u64(const char *s, uint64_t *out);
/* Nonzero when v is a power of two. */
int cmd_is_pow2(uint64_t v);
/* Current time in VHD seconds (since 2000-01-01 UTC); 0 if the clock is before 2000. */
uint32_t cmd_vhd_now(void);
/* Fill a random (version 4) unique id from /dev/urandom; 0 on success, -1 with errno. */
int cmd_random_uuid(uint8_t u[16]);
/* Name of a disk type value ("fixed", "dynamic", ...). */
const char *cmd_type_name(uint32_t type);
/* A four-character code as a printable string ('.' for non-printable bytes). */
void cmd_fourcc(uint32_t v, char out[5]);
/* Copy bytes as text, replacing control bytes with '?'. */
void cmd_bytes_to_text(const uint8_t *b, size_t len, char *out, size_t n);
/* Relative path from directory from (absolute, canonical) to file to (absolute, canonical). */
void cmd_relpath(const char *from, const char *to, char *out, size_t n);
/* parent's canonical path into abs (PATH_MAX bytes) and its path relative to child's directory into rel; 0, or 1 with the message printed. */
int cmd_parent_paths(const char *child, const char *parent, char *abs, char *rel, size_t reln);
/* Nonzero when paths a and b both exist and are the same file (device and inode). */
int cmd_same_inode(const char *a, const char *b);
/* Nonzero when path ends in ".vhd" (any case). */
int cmd_ends_vhd(const char *path);

/* Print a subcommand's help to stdout; returns 0. */
int cmd_help(const char *name);
/* Report a getopt error ('?' or ':') as a one-line usage failure; returns EXIT_USAGE. */
int cmd_bad_option(int opt, char **argv);
/* Fail with a wrong-argument-count message; returns EXIT_USAGE. */
int cmd_bad_args(const char *what);
/* Parse a -f argument into *fmt; 0, or EXIT_USAGE with the message printed. */
int cmd_opt_fmt(const char *arg, int *fmt);
/*
 * The getopt results the verbs share: -f into *fmt, -h/--help (verb's help),
 * --sync (*do_sync = 1), --ignore-timestamp (CHAIN_IGNORE_TIMESTAMP into
 * *chain_flags); a NULL pointer: the verb has no such option. 0 when opt was
 * taken (*exit untouched); 1 with *exit set when the verb must return it (0 after the help,
 * EXIT_USAGE after a bad -f, a missing argument or an unknown option).
 */
int cmd_opt_shared(int opt, char **argv, const char *verb, int *fmt, int *do_sync, unsigned *chain_flags, int *exit);
/* fsync a file a verb opened with HOSTDEV_NOSYNC/CHAIN_NOSYNC; 0, or 1 with the message printed. */
int cmd_sync(struct hostdev *hd, const char *path);

/* Progress on stderr, drawn only when stderr is a terminal. */
struct progress {
	int tty;                 /* isatty(2) at start */
	int last;                /* last percentage drawn, -1 before the first */
	uint64_t total;
};
/* Start a progress bar for total units of work. */
void progress_start(struct progress *p, uint64_t total);
/* Draw "\r[####....]  42%" for done units (only on a terminal, only when the percentage changes). */
void progress_update(struct progress *p, uint64_t done);
/* End the bar's line if one was drawn. */
void progress_end(struct progress *p);

/* ------------------------------------------------------------------ output (vtout.c) */

/* One emitter for text ("key: value" lines) and JSON (a nested object). */
struct out {
	int json;
	int depth;
	int count[16];       /* items written at each depth (for JSON commas, text array numbering) */
	int is_array[16];
};
/* Write s as a JSON string literal (invalid UTF-8 bytes become U+FFFD). */
void out_json_string(const char *s);
/* Write s to f with <, >, & and " escaped for XML/HTML text and attributes (map --svg/--html). */
void out_xml(FILE *f, const char *s);
/* map --html's page for path: the head, title and heading (then the caller's SVG, then map_html_table). */
void map_html_begin(FILE *f, const char *path);
/* The region table's header row; unit names the first column ("file sectors", "file bytes"). */
void map_html_table(FILE *f, const char *unit);
/* One region row: its kind's name, the range s-e (inclusive) and what it holds (escaped). */
void map_html_row(FILE *f, const char *kind, unsigned long long s, unsigned long long e, const char *what);
/* The table's and the page's end. */
void map_html_end(FILE *f);
/* Start an item: JSON comma/indent/key, or the text indent and "key:" label. */
void out_key(struct out *o, const char *key);
/* A string value. */
void out_str(struct out *o, const char *key, const char *v);
/* An unsigned number. */
void out_u64(struct out *o, const char *key, uint64_t v);
/* An unsigned number shown in hex in text mode (a plain number in JSON). */
void out_hex(struct out *o, const char *key, uint64_t v, int width);
/* A boolean. */
void out_bool(struct out *o, const char *key, int v);
/* A JSON null ("none" in text). */
void out_null(struct out *o, const char *key);
/* Open a nested object (or array, when array is set) under key. */
void out_begin(struct out *o, const char *key, int array);
/* Close the innermost object or array. */
void out_end(struct out *o);

/* ------------------------------------------------------------------ image formats (imgfmt.c) */

/* Image formats, as given with -f or found by content. */
enum img_fmt {
	IMG_FMT_AUTO = 0,    /* -f not given: decide by content */
	IMG_FMT_RAW,
	IMG_FMT_VHD,
	IMG_FMT_VHDX,
};

/* Parse a -f argument ("raw", "vhd"/"vpc", "vhdx"); -1 if unknown. */
int img_fmt_parse(const char *s);
/* Name of a format ("raw", "vhd", "vhdx"). */
const char *img_fmt_name(int fmt);
/*
 * The one place that decides a file's format by its content: VHDX identifier
 * at 0; a VHD footer at the end (or one that looks damaged: 6 of the 8 cookie
 * bytes, or a valid checksum), a footer copy at 0, a "cxsparse" header at 512;
 * otherwise raw. An empty file, or a file named like an image (.vhd, .vhdx) with none of
 * these, is refused (returns -1) with the reason in why. Returns the format,
 * or -1 (why set; *sys_errno set if the file could not be read).
 */
int img_detect(const char *path, char *why, size_t whylen, int *sys_errno);

/* An image opened for reading its virtual disk: a VHD chain, a VHDX chain or a raw file. */
struct img_src {
	int fmt;                 /* IMG_FMT_RAW, IMG_FMT_VHD or IMG_FMT_VHDX */
	struct chain c;          /* VHD */
	struct vxchain x;        /* VHDX (read-only: a pending log replayed in memory) */
	int fd;                  /* raw (-1 otherwise) */
	uint64_t size;           /* virtual size in bytes */
	uint64_t data_pos;       /* raw: no data before this offset (hole skip cache) */
	const char *path;
};
/*
 * Open path as fmt (IMG_FMT_AUTO: img_detect), read-only; a VHDX with its
 * chain through vxc_open (a pending log replayed in memory, said on stderr);
 * a file that looks like a VHD but does not open is refused with the reason
 * and the remedy. chain_flags: CHAIN_* (CHAIN_LEAF_ONLY applies to VHDX too).
 * Prints the failure; returns 0 or an exit code (1 malformed, 2 unreadable).
 */
int img_src_open(struct img_src *s, const char *path, int fmt, unsigned chain_flags);
/* Read len bytes of the virtual disk at off into buf; *zero set (buf untouched) when known all-zero. 0 or exit code. */
int img_src_read(struct img_src *s, uint64_t off, uint32_t len, uint8_t *buf, int *zero);
/* Nonzero when [off, off+len) is known to read as zeros without reading (unallocated in every member, or a hole). */
int img_src_unallocated(struct img_src *s, uint64_t off, uint64_t len);
/* Close whatever img_src_open opened. */
void img_src_close(struct img_src *s);
/*
 * Open path as a VHD chain for a VHD-only verb: -f raw is refused (the verb
 * has nothing to work on in a raw file), as is VHDX (img_refuse_vhdx) and a
 * file that is not a VHD. Prints the failure; returns 0 or an exit code; c is closed on failure.
 */
int img_open_vhd(struct chain *c, const char *path, int fmt, unsigned chain_flags);

/* Refuse a VHDX for a verb that edits VHD structures (one wording); returns EXIT_USAGE. */
int img_refuse_vhdx(const char *path);
/* Open path as a VHDX chain (vxc_open flags); prints the failure; 0 or an exit code (1 malformed, 2 unreadable); c closed on failure. */
int img_open_vhdx(struct vxchain *c, const char *path, unsigned vxc_flags);

/* ------------------------------------------------------------------ VHDX verbs (cmd_vhdx.c), called where a verb finds a VHDX */

/* info of a VHDX (and its chain): headers, regions, log, metadata, locator, blocks; text or JSON (o). Exit code. */
int vx_info(struct out *o, const char *path);
/* check of a VHDX and its chain: every open error and vhdx_check defect by the library's names. Exit code as check's. */
int vx_check(const char *path, int json);
/* write stdin's sectors at lba into a VHDX (leaf), log replayed into the file first. Exit code. */
int vx_write(const char *path, uint64_t lba);
/* map of a VHDX's file layout as text (regions, log, BAT, blocks). Exit code. */
int vx_map(const char *path);
/* create a VHDX: type VHDX_FIXED/VHDX_DYNAMIC (size, block, log), or VHDX_DIFF over parent; force overwrites. Exit code. */
int vx_create(int type, uint64_t size, uint32_t block, uint32_t log, const char *parent, const char *out, int force);

/* The editing verbs on a VHDX (cmd_vxedit.c): every structure change one log entry; exit codes as the VHD verbs'. */
/* Nonzero when path is to be handled as a VHDX (-f vhdx, or a VHDX by content); an unreadable file is left to the verb's own open. */
int img_is_vhdx(const char *path, int fmt);
/* map --svg/--html of a VHDX (the leaf): file regions and blocks, virtual blocks by state (vxmap.c). */
int vx_map_picture(const char *path, const char *svg, const char *html);
/* set FIELD=VALUE on a VHDX: page83, parent_linkage(2), relative_path, volume_path, absolute_win32_path. */
int vx_set(const char *path, int nargs, char **args, int do_sync);
/* The size checks of resize, VHD and VHDX (cmd_resize.c): 0 with *out, RESIZE_SAME (already that size, said), or
 * the exit status after a message. */
#define RESIZE_SAME (-1)
int resize_target(const char *path, const char *arg, uint64_t cur, uint64_t max, const char *max_name, int is_diff,
                  int shrink, uint64_t *out);
/* resize a fixed or dynamic VHDX to arg ("[+|-]SIZE"); shrink only over a tail that reads zeros. */
int vx_resize(const char *path, const char *arg, int shrink, int do_sync);
/* commit a VHDX child into its VHDX parent; the child relinked to the parent's new DataWriteGuid. */
int vx_commit(const char *path, int do_sync);
/* rebase a VHDX child onto the VHDX np_path (safe: differing sectors copied first; unsafe: links only). */
int vx_rebase(const char *path, const char *np_path, int unsafe, int do_sync);
/* compact a dynamic or differencing VHDX in place (drop empty blocks, pack, cut). */
int vx_compact(const char *path, int json, int do_sync);
/* repair a VHDX: log replay, header and region table copies, blocks past the end; dry: report only. */
int vx_repair(const char *path, int dry, int do_sync);

/* ------------------------------------------------------------------ editing an image in place (vhdedit.c) */

/* Write the raw 512-byte footer at the end position and then as the copy at 0 (dynamic kinds), flushing after each. 0 or vhd_err. */
int edit_write_footers(struct vhd *v, const uint8_t raw[512]);
/* Recompute the footer checksum of raw in place. */
void edit_footer_checksum(uint8_t raw[512]);
/* Read the raw 1024-byte dynamic header into raw; 0 or vhd_err. */
int edit_read_header(struct vhd *v, uint8_t raw[1024]);
/* Recompute the checksum of raw and write it as the dynamic header (one 1024-byte write), then flush. 0 or vhd_err. */
int edit_write_header(struct vhd *v, uint8_t raw[1024]);
/* Point BAT entry blk at entry (VHD_BAT_FREE to drop it): one sector read-modify-write, flushed; updates v->bat. 0 or vhd_err. */
int edit_set_bat(struct vhd *v, uint32_t blk, uint32_t entry);
/*
 * Append len bytes (a multiple of 512) as a new area at the end of a
 * dynamic image, crash-safely: footer written at the new end first, then the
 * data where the footer was, each flushed; *at gets the area's byte offset.
 * Until something points at it, the area is leaked space. 0 or vhd_err.
 */
int edit_append(struct vhd *v, const uint8_t *data, uint32_t len, uint64_t *at);
/* Set the parent name (UTF-16BE) in a raw header; VHD_E_LOCATOR if it does not fit. */
int edit_parent_name(uint8_t hdr[1024], const char *name);
/*
 * Point locator `code` (W2ru/W2ku) of the raw header at path: its slot, or a
 * free one; the data goes into a newly appended 1 KiB area (edit_append), the
 * entry is changed in hdr only: the caller's header write makes it count.
 */
int edit_locator(struct vhd *v, uint8_t hdr[1024], uint32_t code, const char *path);
/* Clear every locator entry but W2ru and W2ku in a raw header (Mac, MacX, Wi2r, Wi2k would name the old parent). */
void edit_drop_other_locators(uint8_t hdr[1024]);
/* End (sector) of everything a dynamic image uses: metadata, locator data and blocks. */
uint64_t edit_used_end(const struct vhd *v);
/* edit_open allow flags. */
#define EDIT_ALLOW_SAVED_STATE 0x1u
/*
 * Open path (leaf only) for an in-place edit: read-write file, parsed
 * read-only (the verb writes through vhdedit). Refuses, with the remedy, an
 * image opened from its backup footer, a footer off a sector boundary and
 * (unless allowed) a set saved-state flag. Prints failures; 0 or exit code.
 */
int edit_open(struct chain *c, const char *path, int fmt, int do_sync, unsigned allow);
/* Message for a failed edit: vhd_strerror, or the system error of the host file. */
const char *edit_strerror(int rc, const struct hostdev *hd);

/* ------------------------------------------------------------------ verbs */

#define VERB(name) extern const char name##_usage[]; int cmd_##name(int argc, char **argv)
VERB(create);
VERB(info);
VERB(check);
VERB(convert);
VERB(read);
VERB(write);
VERB(map);
VERB(commit);
VERB(rebase);
VERB(resize);
VERB(compact);
VERB(repair);
VERB(set);
VERB(compare);
VERB(measure);
#undef VERB

#endif
