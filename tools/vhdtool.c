/* vhdtool.c: host CLI over the VHD library: create, info, check, convert, read, write and map images. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "../vhd/vhd.h"
#include "chain.h"
#include "hostdev.h"
#include "grubcfg.h"

/* Exit codes: 0 success, 1 failure (or defects found by check), 2 bad arguments / unreadable input. */
#define EXIT_DEFECTS 1
#define EXIT_USAGE 2

#define MIB (1024u * 1024u)
#define CMD_CHUNK (4u * MIB)          /* convert/read/write transfer size */
#define CMD_GRANULE 4096u             /* zero-detection granule for raw/fixed output */

static const char *cmd_name = "vhdtool";  /* subcommand in error messages */

/* Print "vhdtool: <cmd>: <reason>" to stderr; returns code for "return cmd_fail(...)". */
static int cmd_fail(int code, const char *fmt, ...)
{
	va_list ap;

	if (strcmp(cmd_name, "vhdtool"))
		fprintf(stderr, "vhdtool: %s: ", cmd_name);
	else
		fprintf(stderr, "vhdtool: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

/* ------------------------------------------------------------------ helpers */

/* Parse a byte count with an optional K/M/G/T suffix (powers of 1024, optional "B"/"iB"); 0 on success. */
static int cmd_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (shift && (!strcmp(end, "iB") || !strcmp(end, "B")))
		end += strlen(end);
	else if (!shift && !strcmp(end, "B"))
		end++;
	if (*end)
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* Parse a non-negative integer (decimal, or 0x hex); 0 on success. */
static int cmd_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		return -1;
	*out = v;
	return 0;
}

/* Nonzero when v is a power of two. */
static int cmd_is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* Current time in VHD seconds (since 2000-01-01 UTC); 0 if the clock is before 2000. */
static uint32_t cmd_vhd_now(void)
{
	time_t t = time(NULL);

	return t > (time_t)VHD_EPOCH_OFFSET ? (uint32_t)(t - VHD_EPOCH_OFFSET) : 0;
}

/* Fill a random (version 4) unique id from /dev/urandom; 0 on success, -1 with errno. */
static int cmd_random_uuid(uint8_t u[16])
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = hostdev_pread_full(fd, u, 16, 0);
	if (n != 16) {
		int e = n < 0 ? errno : EIO;
		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
	return 0;
}

/* Name of a disk type value. */
static const char *cmd_type_name(uint32_t type)
{
	switch (type) {
	case VHD_TYPE_NONE: return "none";
	case VHD_TYPE_FIXED: return "fixed";
	case VHD_TYPE_DYNAMIC: return "dynamic";
	case VHD_TYPE_DIFF: return "differencing";
	default: return "unknown";
	}
}

/* A four-character code as a printable string ('.' for non-printable bytes). */
static void cmd_fourcc(uint32_t v, char out[5])
{
	for (int i = 0; i < 4; i++) {
		char ch = (char)(v >> (24 - 8 * i));
		out[i] = (ch >= 0x20 && ch < 0x7f) ? ch : '.';
	}
	out[4] = 0;
}

/* Copy bytes as UTF-8 text, replacing control bytes with '?' (locator data of "MacX"/"Wi2r"). */
static void cmd_bytes_to_text(const uint8_t *b, size_t len, char *out, size_t n)
{
	size_t w = 0;

	for (size_t i = 0; i < len && b[i] && w + 1 < n; i++)
		out[w++] = b[i] < 0x20 ? '?' : (char)b[i];
	out[w] = 0;
}

/* ------------------------------------------------------------------ text / JSON output */

/* One emitter for both `info` formats: text is "key: value" lines, JSON is a nested object. */
struct out {
	int json;
	int depth;
	int count[16];       /* items written at each depth (for JSON commas, text array numbering) */
	int is_array[16];
};

/* Write s as a JSON string literal (invalid UTF-8 bytes become U+FFFD). */
static void out_json_string(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	putchar('"');
	while (*p) {
		unsigned c = *p;
		if (c == '"' || c == '\\') {
			printf("\\%c", c);
			p++;
		} else if (c < 0x20 || c == 0x7f) {
			printf("\\u%04x", c);
			p++;
		} else if (c < 0x80) {
			putchar((int)c);
			p++;
		} else {
			int len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
			int ok = len > 0 && c >= 0xc2 && c <= 0xf4;
			for (int i = 1; ok && i < len; i++)
				ok = (p[i] & 0xc0) == 0x80;
			if (ok) {
				fwrite(p, 1, (size_t)len, stdout);
				p += len;
			} else {
				printf("\\ufffd");
				p++;
			}
		}
	}
	putchar('"');
}

/* Start an item: JSON comma/indent/key, or the text indent and "key:" label. */
static void out_key(struct out *o, const char *key)
{
	int d = o->depth;

	if (o->json) {
		printf("%s\n%*s", o->count[d] ? "," : "", 2 * d, "");
		if (key && !o->is_array[d]) {
			out_json_string(key);
			printf(": ");
		}
	} else if (key) {
		char label[64];
		size_t i;
		for (i = 0; key[i] && i + 2 < sizeof(label); i++)
			label[i] = key[i] == '_' ? ' ' : key[i];
		label[i++] = ':';
		label[i] = 0;
		printf("%*s%-*s ", 2 * d, "", 30 - 2 * d, label);
	}
	o->count[d]++;
}

/* A string value. */
static void out_str(struct out *o, const char *key, const char *v)
{
	out_key(o, key);
	if (o->json)
		out_json_string(v);
	else
		printf("%s\n", v);
}

/* An unsigned number. */
static void out_u64(struct out *o, const char *key, uint64_t v)
{
	out_key(o, key);
	printf(o->json ? "%llu" : "%llu\n", (unsigned long long)v);
}

/* An unsigned number shown in hex in text mode (a plain number in JSON). */
static void out_hex(struct out *o, const char *key, uint64_t v, int width)
{
	out_key(o, key);
	if (o->json)
		printf("%llu", (unsigned long long)v);
	else
		printf("0x%0*llx\n", width, (unsigned long long)v);
}

/* A boolean. */
static void out_bool(struct out *o, const char *key, int v)
{
	out_key(o, key);
	printf(o->json ? "%s" : "%s\n", v ? (o->json ? "true" : "yes") : (o->json ? "false" : "no"));
}

/* A JSON null ("none" in text). */
static void out_null(struct out *o, const char *key)
{
	out_key(o, key);
	printf(o->json ? "null" : "none\n");
}

/* Open a nested object (or array, when array is set) under key. */
static void out_begin(struct out *o, const char *key, int array)
{
	int d = o->depth;

	if (o->json) {
		out_key(o, key);
		putchar(array ? '[' : '{');
	} else {
		if (o->is_array[d])
			printf("%*s[%d]\n", 2 * d, "", o->count[d]);
		else if (key)
			printf("%*s%s:\n", 2 * d, "", key);
		o->count[d]++;
	}
	o->depth++;
	o->count[o->depth] = 0;
	o->is_array[o->depth] = array;
}

/* Close the innermost object or array. */
static void out_end(struct out *o)
{
	int d = o->depth--;

	if (o->json)
		printf("\n%*s%c", 2 * o->depth, "", o->is_array[d] ? ']' : '}');
}

/* ------------------------------------------------------------------ help */

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
};

static const struct cmd cmd_table[];

/* Print a subcommand's help to stdout; returns 0. */
static int cmd_help(const char *name)
{
	for (const struct cmd *c = cmd_table; c->name; c++)
		if (!strcmp(c->name, name)) {
			fputs(c->usage, stdout);
			return 0;
		}
	return cmd_fail(EXIT_USAGE, "no such command '%s'", name);
}

/* Report a getopt error ('?' or ':') as a one-line usage failure. */
static int cmd_bad_option(int opt, char **argv)
{
	if (opt == ':')
		return cmd_fail(EXIT_USAGE, "option %s needs an argument (see 'vhdtool %s --help')",
		                argv[optind - 1], cmd_name);
	if (optopt)
		return cmd_fail(EXIT_USAGE, "unknown option -%c (see 'vhdtool %s --help')", optopt, cmd_name);
	return cmd_fail(EXIT_USAGE, "unknown option %s (see 'vhdtool %s --help')", argv[optind - 1],
	                cmd_name);
}

/* Fail with a wrong-argument-count message. */
static int cmd_bad_args(const char *what)
{
	return cmd_fail(EXIT_USAGE, "%s (see 'vhdtool %s --help')", what, cmd_name);
}

/* Options shared by every command that opens an image. */
#define OPT_IGNORE_TS 0x100
#define OPT_JSON 0x101
#define OPT_DEEP 0x102
#define OPT_SYNC 0x103

/* Open an image chain for a command; prints the failure; returns 0 or an exit code. */
static int cmd_open_chain(struct chain *c, const char *path, unsigned flags)
{
	int rc = chain_open(c, path, flags);

	if (!rc)
		return 0;
	cmd_fail(c->sys_errno ? EXIT_USAGE : 1, "%s", c->err);
	rc = c->sys_errno ? EXIT_USAGE : 1;
	chain_close(c);
	return rc;
}

/* ------------------------------------------------------------------ create */

static const char create_usage[] =
"usage: vhdtool create -t fixed|dynamic [-b BLOCKSIZE] -s SIZE [-f] OUT.vhd\n"
"       vhdtool create -p PARENT.vhd [-b BLOCKSIZE] [-f] CHILD.vhd\n"
"\n"
"Create an empty VHD image.\n"
"  -t TYPE       fixed or dynamic (default dynamic; with -p: differencing)\n"
"  -s SIZE       virtual size in bytes; K/M/G/T suffixes (powers of 1024); multiple of 512\n"
"  -b BLOCKSIZE  dynamic/differencing block size, power of two >= 512 (default 2M)\n"
"  -p PARENT     create a differencing image over PARENT (size taken from it); stores\n"
"                W2ru = PARENT relative to CHILD's directory, W2ku = PARENT's absolute path\n"
"  -f            overwrite OUT if it exists\n"
"  --help        this text\n";

/* Relative path from directory from (absolute, canonical) to file to (absolute, canonical). */
static void cmd_relpath(const char *from, const char *to, char *out, size_t n)
{
	size_t common = 0, i = 0, w = 0;
	int ups = 0;

	/* Longest common prefix ending at a component boundary. */
	while (from[i] && to[i] && from[i] == to[i]) {
		i++;
		if (from[i - 1] == '/')
			common = i;
	}
	if (!from[i] && to[i] == '/')
		common = i + 1;
	if (!strcmp(from, "/"))
		common = 1;
	for (const char *p = from + common; *p; p++)
		if (*p == '/' || p == from + common)
			ups += (*p == '/' && p[1]) || p == from + common;
	out[0] = 0;
	if (ups == 0)
		w += (size_t)snprintf(out, n, "./");
	for (int k = 0; k < ups && w < n; k++)
		w += (size_t)snprintf(out + w, n - w, "../");
	if (w < n)
		snprintf(out + w, n - w, "%s", to + common);
}

/* vhdtool create: a new fixed, dynamic or differencing image. */
static int cmd_create(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *type = NULL, *size_s = NULL, *bs_s = NULL, *parent = NULL, *out;
	int force = 0, opt, rc;
	struct vhd_create_opts o;
	struct chain pc;
	struct hostdev hd;
	char w2ku[PATH_MAX], dir[PATH_MAX], absdir[PATH_MAX], w2ru[PATH_MAX * 2];
	const char *pname;
	struct stat st_out, st_p;

	memset(&o, 0, sizeof(o));
	memset(&pc, 0, sizeof(pc));
	while ((opt = getopt_long(argc, argv, ":t:s:b:p:fh", lopts, NULL)) != -1) {
		switch (opt) {
		case 't': type = optarg; break;
		case 's': size_s = optarg; break;
		case 'b': bs_s = optarg; break;
		case 'p': parent = optarg; break;
		case 'f': force = 1; break;
		case 'h': return cmd_help("create");
		default: return cmd_bad_option(opt, argv);
		}
	}
	if (argc - optind != 1)
		return cmd_bad_args(argc - optind ? "expected exactly one output file" : "missing output file");
	out = argv[optind];

	if (parent) {
		if (type && strcmp(type, "diff") && strcmp(type, "differencing"))
			return cmd_bad_args("-p creates a differencing image; -t must be omitted");
		if (size_s)
			return cmd_bad_args("-s is not allowed with -p (the size is the parent's)");
		o.type = VHD_TYPE_DIFF;
	} else {
		if (!type || !strcmp(type, "dynamic"))
			o.type = VHD_TYPE_DYNAMIC;
		else if (!strcmp(type, "fixed"))
			o.type = VHD_TYPE_FIXED;
		else
			return cmd_bad_args("-t must be fixed or dynamic");
		if (!size_s)
			return cmd_bad_args("missing -s SIZE");
		if (cmd_parse_size(size_s, &o.size))
			return cmd_bad_args("bad size (use bytes or a K/M/G/T suffix)");
		if (o.size == 0 || o.size % VHD_SECTOR)
			return cmd_fail(EXIT_USAGE, "size %llu is not a positive multiple of 512",
			                (unsigned long long)o.size);
		if (o.size > VHD_MAX_SIZE)
			return cmd_fail(EXIT_USAGE, "size %llu is larger than the VHD maximum %llu",
			                (unsigned long long)o.size, (unsigned long long)VHD_MAX_SIZE);
	}
	if (bs_s) {
		uint64_t bs;
		if (o.type == VHD_TYPE_FIXED)
			return cmd_bad_args("-b applies to dynamic and differencing images only");
		if (cmd_parse_size(bs_s, &bs))
			return cmd_bad_args("bad block size (use bytes or a K/M/G suffix)");
		if (bs < VHD_SECTOR || !cmd_is_pow2(bs) || bs > VHD_MAX_BLOCK_SIZE)
			return cmd_fail(EXIT_USAGE, "block size %llu must be a power of two from 512 to %u",
			                (unsigned long long)bs, VHD_MAX_BLOCK_SIZE);
		o.block_size = (uint32_t)bs;
	}

	if (parent) {
		const char *slash;
		if ((rc = cmd_open_chain(&pc, parent, CHAIN_RDONLY)))
			return rc;
		o.parent = chain_leaf(&pc);
		if (!realpath(parent, w2ku)) {
			rc = cmd_fail(1, "%s: %s", parent, strerror(errno));
			goto out_chain;
		}
		slash = strrchr(out, '/');
		if (!slash)
			snprintf(dir, sizeof(dir), ".");
		else if (slash == out)
			snprintf(dir, sizeof(dir), "/");
		else
			snprintf(dir, sizeof(dir), "%.*s", (int)(slash - out), out);
		if (!realpath(dir, absdir)) {
			rc = cmd_fail(1, "%s: %s", dir, strerror(errno));
			goto out_chain;
		}
		cmd_relpath(absdir, w2ku, w2ru, sizeof(w2ru));
		/* The name, like the locators, is the real file's (not a symlink's) name. */
		pname = strrchr(w2ku, '/');
		pname = pname ? pname + 1 : w2ku;
		o.parent_name = pname;
		o.w2ru = w2ru;
		o.w2ku = w2ku;
		if (stat(out, &st_out) == 0 && stat(parent, &st_p) == 0 &&
		    st_out.st_dev == st_p.st_dev && st_out.st_ino == st_p.st_ino) {
			rc = cmd_fail(EXIT_USAGE, "%s: the child cannot be its own parent", out);
			goto out_chain;
		}
	}

	o.timestamp = cmd_vhd_now();
	if (cmd_random_uuid(o.uuid) < 0) {
		rc = cmd_fail(1, "/dev/urandom: %s", strerror(errno));
		goto out_chain;
	}
	if (hostdev_open(&hd, out, HOSTDEV_CREATE | (force ? HOSTDEV_TRUNC : HOSTDEV_EXCL)) < 0) {
		if (errno == EEXIST)
			rc = cmd_fail(1, "%s: file exists (use -f to overwrite)", out);
		else
			rc = cmd_fail(1, "%s: %s", out, strerror(errno));
		goto out_chain;
	}
	rc = vhd_create(&hd.dev, &o);
	if (!rc && hostdev_sync(&hd) < 0)
		rc = VHD_E_IO, hd.last_errno = errno;
	if (rc) {
		if (rc == VHD_E_IO && hd.last_errno)
			cmd_fail(1, "%s: %s (%s)", out, strerror(hd.last_errno), vhd_errname(rc));
		else
			cmd_fail(1, "%s: %s (%s)", out, vhd_strerror(rc), vhd_errname(rc));
		hostdev_close(&hd);
		unlink(out);
		rc = 1;
		goto out_chain;
	}
	hostdev_close(&hd);
	rc = 0;
out_chain:
	chain_close(&pc);
	return rc;
}

/* ------------------------------------------------------------------ info */

static const char info_usage[] =
"usage: vhdtool info [--json] [--ignore-timestamp] IMAGE\n"
"\n"
"Show every footer and dynamic-header field of IMAGE: the current size and the\n"
"size derived from the CHS geometry, parent locators with decoded paths, the\n"
"allocated block count, how the image was opened (backup footer, 511-byte\n"
"footer) and, for a differencing image, the members of its chain.\n"
"  --json              print the same data as one JSON object\n"
"  --ignore-timestamp  accept parents whose time stamp differs from the child's record\n"
"  --help              this text\n";

/* Name of a parent-locator platform code. */
static const char *cmd_plat_name(uint32_t code)
{
	switch (code) {
	case VHD_PLAT_NONE: return "none";
	case VHD_PLAT_WI2R: return "Wi2r (relative, deprecated)";
	case VHD_PLAT_WI2K: return "Wi2k (absolute, deprecated)";
	case VHD_PLAT_W2RU: return "W2ru (relative, UTF-16)";
	case VHD_PLAT_W2KU: return "W2ku (absolute, UTF-16)";
	case VHD_PLAT_MAC: return "Mac (alias)";
	case VHD_PLAT_MACX: return "MacX (file URL)";
	default: return "unknown";
	}
}

/* Decode locator slot i of an image into text (its stored path) for display. */
static void cmd_locator_text(struct chain_member *m, int i, char *out, size_t n)
{
	const struct vhd_ploc *l = &m->v.header.loc[i];
	int rc;

	if (l->code == VHD_PLAT_MAC) {
		snprintf(out, n, "(Mac alias record, %u bytes)", l->data_len);
		return;
	}
	if (l->code != VHD_PLAT_W2RU && l->code != VHD_PLAT_W2KU && l->code != VHD_PLAT_MACX) {
		snprintf(out, n, "(platform code not decoded)");
		return;
	}
	rc = vhd_locator_path(&m->v, i, out, n);
	if (rc)
		snprintf(out, n, "(unreadable: %s)", vhd_strerror(rc));
}

/* Emit the fields of one member (the leaf) of an image chain. */
static void cmd_info_image(struct out *o, struct chain_member *m)
{
	struct vhd *v = &m->v;
	const struct vhd_footer *f = &v->footer;
	char s[VHD_PATH_MAX * 2], t[32];
	uint64_t chs = (uint64_t)f->cylinders * f->heads * f->spt * VHD_SECTOR;

	out_str(o, "path", m->path);
	out_u64(o, "file_size", m->hd.dev.size_bytes);
	out_str(o, "type", cmd_type_name(f->type));
	out_u64(o, "virtual_size", f->cur_size);

	out_begin(o, "state", 0);
	out_bool(o, "opened_from_backup_footer", (v->state & VHD_ST_BACKUP_FOOTER) != 0);
	if (v->state & (VHD_ST_BACKUP_FOOTER | VHD_ST_END_FOOTER_BAD)) {
		snprintf(s, sizeof(s), "end footer rejected: %s (%s)", vhd_strerror(v->end_footer_err),
		         vhd_errname(v->end_footer_err));
		out_str(o, "backup_footer_reason", s);
		out_str(o, "end_footer_error", vhd_errname(v->end_footer_err));
	} else {
		out_null(o, "backup_footer_reason");
		out_null(o, "end_footer_error");
	}
	out_bool(o, "short_footer_511_bytes", (v->state & VHD_ST_SHORT_FOOTER) != 0);
	out_u64(o, "footer_offset", v->footer_pos);
	out_end(o);

	out_begin(o, "footer", 0);
	snprintf(s, sizeof(s), "%.8s", (const char *)v->footer_raw);
	cmd_bytes_to_text((const uint8_t *)s, strlen(s), s, sizeof(s));
	out_str(o, "cookie", s);
	out_hex(o, "features", f->features, 8);
	snprintf(s, sizeof(s), "%s%s%s", (f->features & VHD_FEAT_RESERVED) ? "reserved" : "",
	         (f->features & VHD_FEAT_TEMPORARY) ? ((f->features & VHD_FEAT_RESERVED) ? ", temporary" : "temporary") : "",
	         (f->features & ~3u) ? " + unknown bits" : "");
	out_str(o, "features_names", s);
	out_hex(o, "version", f->version, 8);
	snprintf(s, sizeof(s), "%u.%u", f->version >> 16, f->version & 0xffff);
	out_str(o, "version_str", s);
	out_hex(o, "data_offset", f->data_offset, 16);
	out_u64(o, "timestamp", f->timestamp);
	chain_time_str(f->timestamp, t);
	out_str(o, "timestamp_iso", t);
	out_str(o, "creator_app", f->creator_app);
	out_hex(o, "creator_version", f->creator_ver, 8);
	snprintf(s, sizeof(s), "%u.%u", f->creator_ver >> 16, f->creator_ver & 0xffff);
	out_str(o, "creator_version_str", s);
	cmd_fourcc(f->creator_os, t);
	out_str(o, "creator_os", t);
	out_hex(o, "creator_os_code", f->creator_os, 8);
	out_u64(o, "original_size", f->orig_size);
	out_u64(o, "current_size", f->cur_size);
	out_begin(o, "geometry", 0);
	out_u64(o, "cylinders", f->cylinders);
	out_u64(o, "heads", f->heads);
	out_u64(o, "sectors_per_track", f->spt);
	out_end(o);
	out_u64(o, "chs_size", chs);
	out_u64(o, "disk_type", f->type);
	out_str(o, "disk_type_name", cmd_type_name(f->type));
	out_hex(o, "checksum", f->checksum, 8);
	out_bool(o, "checksum_valid", vhd_checksum(v->footer_raw, 512, 64) == f->checksum);
	chain_uuid_str(f->uuid, s);
	out_str(o, "uuid", s);
	out_u64(o, "saved_state", f->saved_state);
	out_end(o);

	if (f->type == VHD_TYPE_DYNAMIC || f->type == VHD_TYPE_DIFF) {
		const struct vhd_header *h = &v->header;
		uint8_t raw[1024];
		uint64_t alloc = 0;
		int nloc = 0;

		memset(raw, 0, sizeof(raw));
		hostdev_pread_full(m->hd.fd, raw, sizeof(raw), f->data_offset);
		out_begin(o, "header", 0);
		snprintf(s, sizeof(s), "%.8s", (const char *)raw);
		cmd_bytes_to_text((const uint8_t *)s, strlen(s), s, sizeof(s));
		out_str(o, "cookie", s);
		out_hex(o, "data_offset", h->data_offset, 16);
		out_hex(o, "table_offset", h->table_offset, 16);
		out_hex(o, "version", h->version, 8);
		snprintf(s, sizeof(s), "%u.%u", h->version >> 16, h->version & 0xffff);
		out_str(o, "version_str", s);
		out_u64(o, "max_table_entries", h->max_entries);
		out_u64(o, "block_size", h->block_size);
		out_hex(o, "checksum", h->checksum, 8);
		out_bool(o, "checksum_valid", vhd_checksum(raw, 1024, 36) == h->checksum);
		chain_uuid_str(h->parent_uuid, s);
		out_str(o, "parent_uuid", s);
		out_u64(o, "parent_timestamp", h->parent_timestamp);
		chain_time_str(h->parent_timestamp, t);
		out_str(o, "parent_timestamp_iso", t);
		if (vhd_parent_name(v, s, sizeof(s)))
			s[0] = 0;
		out_str(o, "parent_name", s);
		out_begin(o, "locators", 1);
		for (int i = 0; i < 8; i++) {
			const struct vhd_ploc *l = &h->loc[i];
			if (!l->code && !l->data_len && !l->data_offset && !l->data_space)
				continue;
			nloc++;
			out_begin(o, NULL, 0);
			out_u64(o, "index", (uint64_t)i);
			cmd_fourcc(l->code, t);
			out_str(o, "code", t);
			out_str(o, "code_name", cmd_plat_name(l->code));
			out_u64(o, "data_space", l->data_space);
			out_u64(o, "data_length", l->data_len);
			out_hex(o, "data_offset", l->data_offset, 8);
			cmd_locator_text(m, i, s, sizeof(s));
			out_str(o, "path", s);
			out_end(o);
		}
		if (!nloc && !o->json)
			printf("%*s(none)\n", 2 * o->depth, "");
		out_end(o);
		out_end(o);
		for (uint32_t i = 0; v->bat && i < h->max_entries; i++)
			alloc += v->bat[i] != VHD_BAT_FREE;
		out_u64(o, "blocks", v->blocks);
		out_u64(o, "allocated_blocks", alloc);
		out_u64(o, "allocated_bytes", alloc * h->block_size);
	} else {
		out_null(o, "header");
		out_u64(o, "blocks", 0);
		out_u64(o, "allocated_blocks", 0);
		out_u64(o, "allocated_bytes", f->cur_size);
	}
}

/* vhdtool info: every field of an image and its chain. */
static int cmd_info(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "ignore-timestamp", no_argument, NULL, OPT_IGNORE_TS },
		{ NULL, 0, NULL, 0 },
	};
	struct out o;
	struct chain c;
	unsigned flags = CHAIN_RDONLY;
	int opt, rc;
	char u[37];

	memset(&o, 0, sizeof(o));
	while ((opt = getopt_long(argc, argv, ":h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'h': return cmd_help("info");
		case OPT_JSON: o.json = 1; break;
		case OPT_IGNORE_TS: flags |= CHAIN_IGNORE_TIMESTAMP; break;
		default: return cmd_bad_option(opt, argv);
		}
	}
	if (argc - optind != 1)
		return cmd_bad_args("expected exactly one IMAGE");
	rc = chain_open(&c, argv[optind], flags);
	if (rc && c.n == 0) {
		cmd_fail(c.sys_errno ? EXIT_USAGE : 1, "%s", c.err);
		return c.sys_errno ? EXIT_USAGE : 1;
	}
	if (o.json)
		putchar('{');
	cmd_info_image(&o, c.m[0]);
	out_begin(&o, "chain", 1);
	for (int i = 0; i < c.n; i++) {
		out_begin(&o, NULL, 0);
		out_u64(&o, "level", (uint64_t)i);
		out_str(&o, "path", c.m[i]->path);
		out_str(&o, "type", cmd_type_name(c.m[i]->v.footer.type));
		chain_uuid_str(c.m[i]->v.footer.uuid, u);
		out_str(&o, "uuid", u);
		out_end(&o);
	}
	out_end(&o);
	if (rc)
		out_str(&o, "chain_error", c.err);
	else
		out_null(&o, "chain_error");
	if (o.json)
		printf("\n}\n");
	fflush(stdout);
	if (rc)
		cmd_fail(1, "%s", c.err);
	chain_close(&c);
	return rc ? 1 : 0;
}

/* ------------------------------------------------------------------ check */

static const char check_usage[] =
"usage: vhdtool check [--deep] [--ignore-timestamp] IMAGE\n"
"\n"
"Check IMAGE (and every image of its differencing chain) for consistency:\n"
"footer and header fields and checksums, the backup footer, the BAT and block\n"
"layout (overlaps, range, leaked space), parent locators and the parent ids.\n"
"Prints one line per defect: \"IMAGE: <check>: <details>\". Never writes.\n"
"  --deep              also scan sectors whose bitmap bit is clear for data\n"
"  --ignore-timestamp  accept parents whose time stamp differs\n"
"  --help              this text\n"
"Exit status: 0 no defects, 1 defects found, 2 bad arguments or unreadable file.\n";

/* State of one check run: which image, how many defects. */
struct cmd_check_ctx {
	const char *path;
	int defects;
};

/* vhd_check report callback: prints "IMAGE: <check>: <message>: <details>". */
static void cmd_check_report(void *ctxp, int code, uint64_t a, uint64_t b)
{
	struct cmd_check_ctx *ctx = ctxp;
	const char *name = vhd_check_name(code);
	unsigned long long ua = (unsigned long long)a, ub = (unsigned long long)b;
	char d[256], ta[32], tb[32];

	switch (code) {
	case VHD_C_END_FOOTER_BAD:
		snprintf(d, sizeof(d), "end footer: %s (%s)", vhd_strerror((int)a), vhd_errname((int)a));
		break;
	case VHD_C_TIMESTAMP_FUTURE:
		chain_time_str((uint32_t)a, ta);
		chain_time_str((uint32_t)b, tb);
		snprintf(d, sizeof(d), "time stamp %llu (%s) is after now %llu (%s)", ua, ta, ub, tb);
		break;
	case VHD_C_FEATURES_UNKNOWN:
		snprintf(d, sizeof(d), "features 0x%08llx", ua);
		break;
	case VHD_C_SIZE_MISMATCH_CHS:
		/* Informational: qemu-img force_size=on writes 65535/16/255 on purpose. */
		snprintf(d, sizeof(d), "current size %llu, CHS geometry claims %llu (note, not counted)", ua, ub);
		break;
	case VHD_C_MAX_ENTRIES_EXCESS:
		snprintf(d, sizeof(d), "max table entries %llu, disk needs %llu", ua, ub);
		break;
	case VHD_C_BAT_ENTRY_PAST_USE:
		snprintf(d, sizeof(d), "BAT entry %llu (sector %llu) is allocated beyond the disk size", ua, ub);
		break;
	case VHD_C_BLOCK_OVERLAP:
		snprintf(d, sizeof(d), "blocks at file sectors %llu and %llu overlap", ua, ub);
		break;
	case VHD_C_LOCATOR_BAD:
	case VHD_C_LOCATOR_OVERLAP:
	case VHD_C_LOCATORS_ON_DYNAMIC:
		snprintf(d, sizeof(d), "locator %llu", ua);
		break;
	case VHD_C_LOCATOR_DUP:
		snprintf(d, sizeof(d), "locator %llu has the same code as locator %llu", ua, ub);
		break;
	case VHD_C_TRAILING_BYTES:
		snprintf(d, sizeof(d), "%llu bytes", ua);
		break;
	case VHD_C_LEAKED_SPACE:
		snprintf(d, sizeof(d), "%llu sectors", ua);
		break;
	case VHD_C_DATA_BITMAP_CLEAR:
		snprintf(d, sizeof(d), "%llu sectors with data but a clear bit, first at virtual sector %llu", ub, ua);
		break;
	case VHD_C_BACKUP_FOOTER_MISSING:
	case VHD_C_BACKUP_FOOTER_DIFFERS:
	case VHD_C_FOOTER_RESERVED:
	case VHD_C_HEADER_RESERVED:
	case VHD_C_FOOTER_SHORT:
		d[0] = 0;   /* the message says it all */
		break;
	default:
		snprintf(d, sizeof(d), "a=%llu b=%llu", ua, ub);
		break;
	}
	printf("%s: %s: %s%s%s\n", ctx->path, name, vhd_check_msg(code), d[0] ? ": " : "", d);
	ctx->defects++;
}

/* vhdtool check: consistency checks over an image and its chain; never writes. */
static int cmd_check(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "deep", no_argument, NULL, OPT_DEEP },
		{ "ignore-timestamp", no_argument, NULL, OPT_IGNORE_TS },
		{ NULL, 0, NULL, 0 },
	};
	unsigned cflags = 0, flags = CHAIN_RDONLY | CHAIN_LENIENT;
	struct cmd_check_ctx ctx;
	struct chain c;
	const char *path;
	int opt, rc, status = 0;

	while ((opt = getopt_long(argc, argv, ":h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'h': return cmd_help("check");
		case OPT_DEEP: cflags |= VHD_CHECK_DEEP; break;
		case OPT_IGNORE_TS: flags |= CHAIN_IGNORE_TIMESTAMP; break;
		default: return cmd_bad_option(opt, argv);
		}
	}
	if (argc - optind != 1)
		return cmd_bad_args("expected exactly one IMAGE");
	path = argv[optind];
	memset(&ctx, 0, sizeof(ctx));
	rc = chain_open(&c, path, flags);
	if (rc && c.n == 0) {
		if (c.sys_errno)
			return cmd_fail(EXIT_USAGE, "%s", c.err);
		printf("%s: %s: %s\n", path, vhd_errname(rc), vhd_strerror(rc));
		cmd_fail(EXIT_DEFECTS, "%s", c.err);
		return EXIT_DEFECTS;
	}
	for (int i = 0; i < c.n; i++) {
		struct chain_member *m = c.m[i];
		size_t bytes = vhd_bat_bytes(&m->v);
		uint32_t *scratch = bytes ? malloc(bytes) : NULL;
		int n;

		if (bytes && !scratch) {
			status = cmd_fail(EXIT_USAGE, "%s: out of memory", m->path);
			break;
		}
		ctx.path = m->path;
		n = vhd_check(&m->v, scratch, cflags, cmd_vhd_now(), cmd_check_report, &ctx);
		free(scratch);
		if (n < 0) {
			if (n == -VHD_E_IO) {
				status = cmd_fail(EXIT_USAGE, "%s: read failed: %s", m->path,
				                  m->hd.last_errno ? strerror(m->hd.last_errno) : vhd_strerror(VHD_E_IO));
				break;
			}
			printf("%s: %s: %s\n", m->path, vhd_errname(-n), vhd_strerror(-n));
			ctx.defects++;
		}
	}
	if (rc) {
		printf("%s: %s: %s\n", path, vhd_errname(rc), c.err);
		ctx.defects++;
	}
	chain_close(&c);
	if (status)
		return status;
	if (ctx.defects) {
		fflush(stdout);
		cmd_fail(EXIT_DEFECTS, "%s: %d defect%s found", path, ctx.defects, ctx.defects == 1 ? "" : "s");
		return EXIT_DEFECTS;
	}
	printf("%s: no defects found\n", path);
	return 0;
}

/* ------------------------------------------------------------------ convert */

static const char convert_usage[] =
"usage: vhdtool convert [-f raw|vhd] [-O raw|fixed|dynamic] [-b BLOCKSIZE] [--sync] IN OUT\n"
"\n"
"Copy the virtual disk of IN into OUT (OUT is overwritten).\n"
"  -f FORMAT     input format: vhd or raw (default: vhd if IN opens as a VHD,\n"
"                raw if it has no VHD footer; a differencing VHD is flattened\n"
"                through its whole chain)\n"
"  -O FORMAT     output format: raw, fixed or dynamic (default: dynamic if OUT\n"
"                ends in .vhd, raw otherwise)\n"
"  -b BLOCKSIZE  dynamic output block size, power of two >= 512 (default 2M)\n"
"  --sync        fsync OUT before exiting (like cp and qemu-img, the default\n"
"                leaves write-back to the kernel)\n"
"  --ignore-timestamp  accept parents whose time stamp differs\n"
"  --help        this text\n"
"All-zero blocks are not allocated in dynamic output; raw output is sparse.\n"
"A progress bar is drawn on stderr when it is a terminal.\n";

/* The input of a conversion: a VHD chain or a raw file. */
struct cmd_src {
	int is_vhd;
	struct chain c;
	int fd;
	uint64_t size;
	uint64_t data_pos;      /* raw: no data before this offset (hole skip cache) */
};

/* Nonzero if [off, off+len) has no allocated block in any chain member (reads as zeros). */
static int cmd_src_unallocated(struct cmd_src *s, uint64_t off, uint64_t len)
{
	for (int i = 0; i < s->c.n; i++) {
		struct vhd *v = &s->c.m[i]->v;
		if (v->footer.type != VHD_TYPE_DYNAMIC && v->footer.type != VHD_TYPE_DIFF)
			return 0;
		for (uint64_t b = off / v->block_size; b <= (off + len - 1) / v->block_size; b++)
			if (b < v->header.max_entries && v->bat[b] != VHD_BAT_FREE)
				return 0;
	}
	return 1;
}

/* Read len bytes of the virtual disk at off into buf; *zero set when known all-zero. 0 or exit code. */
static int cmd_src_read(struct cmd_src *s, uint64_t off, uint32_t len, uint8_t *buf, int *zero)
{
	*zero = 0;
	if (s->is_vhd) {
		int rc;
		if (cmd_src_unallocated(s, off, len)) {
			*zero = 1;
			return 0;
		}
		rc = vhd_read(chain_leaf(&s->c), off / VHD_SECTOR, len / VHD_SECTOR, buf);
		if (rc)
			return cmd_fail(1, "%s: read at sector %llu: %s (%s)", s->c.m[0]->path,
			                (unsigned long long)(off / VHD_SECTOR), vhd_strerror(rc), vhd_errname(rc));
		return 0;
	}
	/* Raw: read only the data extents of a sparse file; holes are zeros. */
	if (off >= s->data_pos)
		s->data_pos = hostdev_next_data(s->fd, off, s->size);
	if (s->data_pos >= off + len) {
		*zero = 1;
		return 0;
	}
	for (uint64_t pos = off; pos < off + len;) {
		uint64_t data = hostdev_next_data(s->fd, pos, off + len), hole;
		ssize_t n;
		if (data > pos)
			memset(buf + (pos - off), 0, data - pos);
		if (data >= off + len)
			break;
		hole = hostdev_next_hole(s->fd, data, off + len);
		n = hostdev_pread_full(s->fd, buf + (data - off), hole - data, data);
		if (n < 0)
			return cmd_fail(1, "read at byte %llu: %s", (unsigned long long)data, strerror(errno));
		if ((uint64_t)n < hole - data)
			memset(buf + (data - off) + n, 0, hole - data - (uint64_t)n);
		pos = hole;
	}
	return 0;
}

/* The output of a conversion. */
struct cmd_dst {
	int kind;               /* 0 raw, VHD_TYPE_FIXED, VHD_TYPE_DYNAMIC */
	struct hostdev hd;
	struct vhd v;
	uint32_t *bat;
	const char *path;
};

/* Write the non-zero granules of buf (len bytes at virtual offset off) to a raw or fixed output. */
static int cmd_dst_write_sparse(struct cmd_dst *d, uint64_t off, const uint8_t *buf, uint32_t len)
{
	uint32_t i = 0;

	while (i < len) {
		uint32_t g, start;
		/* skip zero granules */
		while (i < len) {
			g = len - i < CMD_GRANULE ? len - i : CMD_GRANULE;
			if (!hostdev_is_zero(buf + i, g))
				break;
			i += g;
		}
		if (i >= len)
			break;
		start = i;
		while (i < len) {
			g = len - i < CMD_GRANULE ? len - i : CMD_GRANULE;
			if (hostdev_is_zero(buf + i, g))
				break;
			i += g;
		}
		if (d->kind == 0) {
			if (hostdev_pwrite_full(d->hd.fd, buf + start, i - start, off + start) < 0)
				return cmd_fail(1, "%s: write: %s", d->path, strerror(errno));
		} else {
			int rc = vhd_write(&d->v, (off + start) / VHD_SECTOR, (i - start) / VHD_SECTOR, buf + start);
			if (rc)
				return cmd_fail(1, "%s: write at sector %llu: %s (%s)", d->path,
				                (unsigned long long)((off + start) / VHD_SECTOR), vhd_strerror(rc),
				                vhd_errname(rc));
		}
	}
	return 0;
}

/*
 * Write one chunk to the output. Every kind only receives the non-zero
 * granules: the library allocates a dynamic block on its first write and
 * zero-fills the rest of it through the device's write_zeroes (holes).
 */
static int cmd_dst_write(struct cmd_dst *d, uint64_t off, const uint8_t *buf, uint32_t len)
{
	return cmd_dst_write_sparse(d, off, buf, len);
}

/* Draw a progress bar on stderr ("\r[####....]  42%"). */
static void cmd_progress(uint64_t done, uint64_t total, int *last)
{
	int pct = total ? (int)(done * 100 / total) : 100;
	char bar[41];

	if (pct == *last)
		return;
	*last = pct;
	for (int i = 0; i < 40; i++)
		bar[i] = i < pct * 40 / 100 ? '#' : '.';
	bar[40] = 0;
	fprintf(stderr, "\r[%s] %3d%%", bar, pct);
	if (pct == 100)
		fputc('\n', stderr);
	fflush(stderr);
}

/* Nonzero if OUT names the same file as IN or one of IN's chain members. */
static int cmd_same_file(const char *out, struct cmd_src *s, const char *in)
{
	struct stat so, si;

	if (stat(out, &so) < 0)
		return 0;
	if (s->is_vhd) {
		for (int i = 0; i < s->c.n; i++)
			if (stat(s->c.m[i]->path, &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
				return 1;
		return 0;
	}
	return stat(in, &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino;
}

/* Nonzero when path ends in ".vhd" (any case). */
static int cmd_ends_vhd(const char *path)
{
	size_t n = strlen(path);

	return n >= 4 && !strcasecmp(path + n - 4, ".vhd");
}

/* vhdtool convert: copy a raw or VHD (chain) virtual disk into raw, fixed or dynamic output. */
static int cmd_convert(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "ignore-timestamp", no_argument, NULL, OPT_IGNORE_TS },
		{ "sync", no_argument, NULL, OPT_SYNC },
		{ NULL, 0, NULL, 0 },
	};
	const char *in_fmt = NULL, *out_fmt = NULL, *bs_s = NULL, *in, *out;
	unsigned cflags = CHAIN_RDONLY;
	uint32_t block_size = 0, chunk;
	struct cmd_src s;
	struct cmd_dst d;
	uint8_t *buf = NULL;
	int opt, rc, created = 0, tty = isatty(2), last = -1, do_sync = 0;
	struct stat st;

	memset(&s, 0, sizeof(s));
	memset(&d, 0, sizeof(d));
	s.fd = -1;
	d.hd.fd = -1;
	while ((opt = getopt_long(argc, argv, ":f:O:b:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'f': in_fmt = optarg; break;
		case 'O': out_fmt = optarg; break;
		case 'b': bs_s = optarg; break;
		case 'h': return cmd_help("convert");
		case OPT_IGNORE_TS: cflags |= CHAIN_IGNORE_TIMESTAMP; break;
		case OPT_SYNC: do_sync = 1; break;
		default: return cmd_bad_option(opt, argv);
		}
	}
	if (argc - optind != 2)
		return cmd_bad_args("expected IN and OUT");
	in = argv[optind];
	out = argv[optind + 1];
	if (in_fmt && strcmp(in_fmt, "raw") && strcmp(in_fmt, "vhd") && strcmp(in_fmt, "vpc"))
		return cmd_bad_args("-f must be raw or vhd");
	if (!out_fmt)
		d.kind = cmd_ends_vhd(out) ? VHD_TYPE_DYNAMIC : 0;
	else if (!strcmp(out_fmt, "raw"))
		d.kind = 0;
	else if (!strcmp(out_fmt, "fixed"))
		d.kind = VHD_TYPE_FIXED;
	else if (!strcmp(out_fmt, "dynamic") || !strcmp(out_fmt, "vhd") || !strcmp(out_fmt, "vpc"))
		d.kind = VHD_TYPE_DYNAMIC;
	else
		return cmd_bad_args("-O must be raw, fixed or dynamic");
	if (bs_s) {
		uint64_t bs;
		if (d.kind != VHD_TYPE_DYNAMIC)
			return cmd_bad_args("-b applies to dynamic output only");
		if (cmd_parse_size(bs_s, &bs))
			return cmd_bad_args("bad block size (use bytes or a K/M/G suffix)");
		if (bs < VHD_SECTOR || !cmd_is_pow2(bs) || bs > VHD_MAX_BLOCK_SIZE)
			return cmd_fail(EXIT_USAGE, "block size %llu must be a power of two from 512 to %u",
			                (unsigned long long)bs, VHD_MAX_BLOCK_SIZE);
		block_size = (uint32_t)bs;
	}

	/* Input: a VHD if it opens as one (unless -f raw). */
	if (!in_fmt || strcmp(in_fmt, "raw")) {
		rc = chain_open(&s.c, in, cflags);
		if (rc == 0) {
			s.is_vhd = 1;
			s.size = chain_leaf(&s.c)->sectors * VHD_SECTOR;
		} else {
			int not_vhd = s.c.n == 0 && !s.c.sys_errno &&
			              (rc == VHD_E_FOOTER_COOKIE || rc == VHD_E_TOO_SMALL);
			if (s.c.sys_errno) {
				rc = cmd_fail(EXIT_USAGE, "%s", s.c.err);
				chain_close(&s.c);
				return rc;
			}
			if (in_fmt || !not_vhd) {
				if (!in_fmt && s.c.n == 0)
					cmd_fail(1, "%s (looks like a damaged VHD; use -f raw to copy it as a raw file)",
					         s.c.err);
				else
					cmd_fail(1, "%s", s.c.err);
				chain_close(&s.c);
				return 1;
			}
			chain_close(&s.c);
		}
	}
	if (!s.is_vhd) {
		s.fd = open(in, O_RDONLY | O_CLOEXEC);
		if (s.fd < 0)
			return cmd_fail(EXIT_USAGE, "%s: %s", in, strerror(errno));
		if (fstat(s.fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
			close(s.fd);
			return cmd_fail(EXIT_USAGE, "%s: not a regular file or block device", in);
		}
		s.size = S_ISBLK(st.st_mode) ? (uint64_t)lseek(s.fd, 0, SEEK_END) : (uint64_t)st.st_size;
		if (s.size % VHD_SECTOR) {
			close(s.fd);
			return cmd_fail(1, "%s: raw input size %llu is not a multiple of 512", in,
			                (unsigned long long)s.size);
		}
		if (d.kind != 0 && (s.size == 0 || s.size > VHD_MAX_SIZE)) {
			close(s.fd);
			return cmd_fail(1, "%s: a VHD's size must be 512 to %llu bytes, this input has %llu", in,
			                (unsigned long long)VHD_MAX_SIZE, (unsigned long long)s.size);
		}
	}
	if (cmd_same_file(out, &s, in)) {
		rc = cmd_fail(EXIT_USAGE, "%s: output is the input (or one of its parents)", out);
		goto done;
	}

	/* Output. */
	d.path = out;
	/*
	 * Replace an existing regular file rather than truncating it: freeing a
	 * large file's blocks under O_TRUNC (and ext4's flush on close after a
	 * truncate-to-zero) costs more than the whole conversion.
	 */
	if (lstat(out, &st) == 0 && S_ISREG(st.st_mode) && unlink(out) < 0) {
		rc = cmd_fail(1, "%s: %s", out, strerror(errno));
		goto done;
	}
	if (hostdev_open(&d.hd, out, HOSTDEV_CREATE | HOSTDEV_TRUNC | HOSTDEV_NOSYNC) < 0) {
		rc = cmd_fail(1, "%s: %s", out, strerror(errno));
		goto done;
	}
	created = 1;
	if (d.kind != 0) {
		struct vhd_create_opts o;
		memset(&o, 0, sizeof(o));
		o.type = (uint32_t)d.kind;
		o.size = s.size;
		o.block_size = block_size;
		o.timestamp = cmd_vhd_now();
		if (cmd_random_uuid(o.uuid) < 0) {
			rc = cmd_fail(1, "/dev/urandom: %s", strerror(errno));
			goto done;
		}
		rc = vhd_create(&d.hd.dev, &o);
		if (!rc)
			rc = vhd_open(&d.v, &d.hd.dev, 0);
		if (!rc && vhd_bat_bytes(&d.v)) {
			d.bat = malloc(vhd_bat_bytes(&d.v));
			rc = d.bat ? vhd_load_bat(&d.v, d.bat) : VHD_E_IO;
		}
		if (rc) {
			rc = cmd_fail(1, "%s: %s (%s)", out, vhd_strerror(rc), vhd_errname(rc));
			goto done;
		}
	}

	chunk = CMD_CHUNK;   /* any size works: writes are per non-zero granule, not per block */
	buf = malloc(chunk);
	if (!buf) {
		rc = cmd_fail(1, "out of memory");
		goto done;
	}
	for (uint64_t off = 0; off < s.size; off += chunk) {
		uint32_t len = s.size - off < chunk ? (uint32_t)(s.size - off) : chunk;
		int zero;
		if ((rc = cmd_src_read(&s, off, len, buf, &zero)))
			goto done;
		if (!zero && (rc = cmd_dst_write(&d, off, buf, len)))
			goto done;
		if (tty)
			cmd_progress(off + len, s.size, &last);
	}
	if (d.kind == 0 && ftruncate(d.hd.fd, (off_t)s.size) < 0) {
		rc = cmd_fail(1, "%s: %s", out, strerror(errno));
		goto done;
	}
	if (d.kind != 0 && (rc = vhd_flush(&d.v))) {
		rc = cmd_fail(1, "%s: flush: %s (%s)", out, vhd_strerror(rc), vhd_errname(rc));
		goto done;
	}
	if (do_sync && hostdev_sync(&d.hd) < 0) {
		rc = cmd_fail(1, "%s: fsync: %s", out, strerror(errno));
		goto done;
	}
	rc = 0;
done:
	if (tty && last >= 0 && last < 100)
		fputc('\n', stderr);
	free(buf);
	free(d.bat);
	hostdev_close(&d.hd);
	if (rc && created)
		unlink(out);
	if (s.is_vhd)
		chain_close(&s.c);
	if (s.fd >= 0)
		close(s.fd);
	return rc;
}

/* ------------------------------------------------------------------ read / write */

static const char read_usage[] =
"usage: vhdtool read [--ignore-timestamp] IMAGE LBA COUNT\n"
"\n"
"Write COUNT sectors of IMAGE's virtual disk starting at sector LBA to stdout\n"
"(through the differencing chain). LBA and COUNT are decimal or 0x hex.\n"
"  --help  this text\n";

/* vhdtool read: sectors of the virtual disk to stdout. */
static int cmd_read(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "ignore-timestamp", no_argument, NULL, OPT_IGNORE_TS },
		{ NULL, 0, NULL, 0 },
	};
	unsigned flags = CHAIN_RDONLY;
	uint64_t lba, count;
	struct chain c;
	struct vhd *v;
	uint8_t *buf;
	int opt, rc = 0;

	while ((opt = getopt_long(argc, argv, ":h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'h': return cmd_help("read");
		case OPT_IGNORE_TS: flags |= CHAIN_IGNORE_TIMESTAMP; break;
		default: return cmd_bad_option(opt, argv);
		}
	}
	if (argc - optind != 3)
		return cmd_bad_args("expected IMAGE LBA COUNT");
	if (cmd_parse_u64(argv[optind + 1], &lba))
		return cmd_bad_args("bad LBA");
	if (cmd_parse_u64(argv[optind + 2], &count))
		return cmd_bad_args("bad COUNT");
	if ((rc = cmd_open_chain(&c, argv[optind], flags)))
		return rc;
	v = chain_leaf(&c);
	if (lba > v->sectors || count > v->sectors - lba) {
		rc = cmd_fail(1, "sectors %llu+%llu are past the end of the disk (%llu sectors)",
		              (unsigned long long)lba, (unsigned long long)count, (unsigned long long)v->sectors);
		goto out;
	}
	buf = malloc(CMD_CHUNK);
	if (!buf) {
		rc = cmd_fail(1, "out of memory");
		goto out;
	}
	while (count) {
		uint32_t n = count < CMD_CHUNK / VHD_SECTOR ? (uint32_t)count : CMD_CHUNK / VHD_SECTOR;
		int e = vhd_read(v, lba, n, buf);
		if (e) {
			rc = cmd_fail(1, "%s: read at sector %llu: %s (%s)", argv[optind], (unsigned long long)lba,
			              vhd_strerror(e), vhd_errname(e));
			break;
		}
		if (fwrite(buf, VHD_SECTOR, n, stdout) != n) {
			rc = cmd_fail(1, "stdout: %s", strerror(errno));
			break;
		}
		lba += n;
		count -= n;
	}
	free(buf);
	if (!rc && fflush(stdout) != 0)
		rc = cmd_fail(1, "stdout: %s", strerror(errno));
out:
	chain_close(&c);
	return rc;
}

static const char write_usage[] =
"usage: vhdtool write [--ignore-timestamp] IMAGE LBA < DATA\n"
"\n"
"Write the sectors read from stdin into IMAGE's virtual disk at sector LBA.\n"
"The stdin length must be a multiple of 512 and fit inside the disk; nothing\n"
"is written otherwise. A differencing image takes the writes itself; its\n"
"parents are only read.\n"
"  --help  this text\n";

/* Read all of stdin (at most limit bytes + 1) into a malloc'd buffer; returns 0 or -1 with errno. */
static int cmd_slurp_stdin(uint8_t **out, size_t *len, uint64_t limit)
{
	size_t cap = 1 * MIB, n = 0;
	uint8_t *b = malloc(cap);

	if (!b)
		return -1;
	for (;;) {
		ssize_t r;
		if (n == cap) {
			uint8_t *nb;
			if (n > limit)
				break;
			cap *= 2;
			nb = realloc(b, cap);
			if (!nb) {
				free(b);
				return -1;
			}
			b = nb;
		}
		r = read(0, b + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			free(b);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*out = b;
	*len = n;
	return 0;
}

/* vhdtool write: sectors from stdin into the virtual disk (through vhd_write). */
static int cmd_write(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "ignore-timestamp", no_argument, NULL, OPT_IGNORE_TS },
		{ NULL, 0, NULL, 0 },
	};
	unsigned flags = 0;
	uint64_t lba, room, len = 0;
	struct chain c;
	struct vhd *v;
	struct stat st;
	uint8_t *buf = NULL;
	size_t blen = 0;
	int opt, rc = 0, stream;

	while ((opt = getopt_long(argc, argv, ":h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'h': return cmd_help("write");
		case OPT_IGNORE_TS: flags |= CHAIN_IGNORE_TIMESTAMP; break;
		default: return cmd_bad_option(opt, argv);
		}
	}
	if (argc - optind != 2)
		return cmd_bad_args("expected IMAGE LBA (data on stdin)");
	if (cmd_parse_u64(argv[optind + 1], &lba))
		return cmd_bad_args("bad LBA");
	if ((rc = cmd_open_chain(&c, argv[optind], flags)))
		return rc;
	v = chain_leaf(&c);
	if (lba > v->sectors) {
		rc = cmd_fail(1, "LBA %llu is past the end of the disk (%llu sectors)", (unsigned long long)lba,
		              (unsigned long long)v->sectors);
		goto out;
	}
	room = (v->sectors - lba) * VHD_SECTOR;
	/* A regular file on stdin can be validated up front and streamed; anything else is buffered. */
	stream = fstat(0, &st) == 0 && S_ISREG(st.st_mode);
	if (stream) {
		off_t pos = lseek(0, 0, SEEK_CUR);
		len = (uint64_t)st.st_size - (pos > 0 ? (uint64_t)pos : 0);
	} else {
		if (cmd_slurp_stdin(&buf, &blen, room) < 0) {
			rc = cmd_fail(1, "stdin: %s", strerror(errno));
			goto out;
		}
		len = blen;
	}
	if (len % VHD_SECTOR) {
		rc = cmd_fail(1, "stdin length %llu is not a multiple of 512", (unsigned long long)len);
		goto out;
	}
	if (len > room) {
		rc = cmd_fail(1, "%llu sectors at LBA %llu are past the end of the disk (%llu sectors)",
		              (unsigned long long)(len / VHD_SECTOR), (unsigned long long)lba,
		              (unsigned long long)v->sectors);
		goto out;
	}
	if (stream) {
		buf = malloc(CMD_CHUNK);
		if (!buf) {
			rc = cmd_fail(1, "out of memory");
			goto out;
		}
	}
	for (uint64_t done = 0; done < len;) {
		uint32_t n = len - done < CMD_CHUNK ? (uint32_t)(len - done) : CMD_CHUNK;
		const uint8_t *p = buf + done;
		int e;
		if (stream) {
			ssize_t r = hostdev_pread_full(0, buf, n, (uint64_t)lseek(0, 0, SEEK_CUR));
			if (r != (ssize_t)n) {
				rc = cmd_fail(1, "stdin: %s", r < 0 ? strerror(errno) : "file shrank while reading");
				goto out;
			}
			lseek(0, n, SEEK_CUR);
			p = buf;
		}
		e = vhd_write(v, lba + done / VHD_SECTOR, n / VHD_SECTOR, p);
		if (e) {
			rc = cmd_fail(1, "%s: write at sector %llu: %s (%s)", argv[optind],
			              (unsigned long long)(lba + done / VHD_SECTOR), vhd_strerror(e), vhd_errname(e));
			goto out;
		}
		done += n;
	}
	if ((rc = vhd_flush(v))) {
		rc = cmd_fail(1, "%s: flush: %s (%s)", argv[optind], vhd_strerror(rc), vhd_errname(rc));
		goto out;
	}
out:
	free(buf);
	chain_close(&c);
	return rc;
}

/* ------------------------------------------------------------------ map */

static const char map_usage[] =
"usage: vhdtool map [--ignore-timestamp] IMAGE\n"
"\n"
"List the allocated blocks of IMAGE and of each image in its chain:\n"
"\"block N: sectors A-B at file offset X\" (a fixed image is one extent).\n"
"  --help  this text\n";

/* vhdtool map: the allocated blocks of every chain member. */
static int cmd_map(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "ignore-timestamp", no_argument, NULL, OPT_IGNORE_TS },
		{ NULL, 0, NULL, 0 },
	};
	unsigned flags = CHAIN_RDONLY;
	struct chain c;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, ":h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'h': return cmd_help("map");
		case OPT_IGNORE_TS: flags |= CHAIN_IGNORE_TIMESTAMP; break;
		default: return cmd_bad_option(opt, argv);
		}
	}
	if (argc - optind != 1)
		return cmd_bad_args("expected exactly one IMAGE");
	if ((rc = cmd_open_chain(&c, argv[optind], flags)))
		return rc;
	for (int i = 0; i < c.n; i++) {
		struct vhd *v = &c.m[i]->v;
		uint64_t alloc = 0;
		printf("%s: %s, %llu sectors", c.m[i]->path, cmd_type_name(v->footer.type),
		       (unsigned long long)v->sectors);
		if (v->footer.type == VHD_TYPE_FIXED) {
			printf("\n  sectors 0-%llu at file offset 0x0\n", (unsigned long long)v->sectors - 1);
			continue;
		}
		for (uint32_t b = 0; b < v->header.max_entries; b++)
			alloc += v->bat[b] != VHD_BAT_FREE;
		printf(", block size %u, %u blocks, %llu allocated\n", v->block_size, v->blocks,
		       (unsigned long long)alloc);
		for (uint32_t b = 0; b < v->header.max_entries; b++) {
			uint64_t first = (uint64_t)b * v->spb;
			if (v->bat[b] == VHD_BAT_FREE)
				continue;
			printf("  block %u: sectors %llu-%llu at file offset 0x%llx (bitmap at 0x%llx)\n", b,
			       (unsigned long long)first, (unsigned long long)(first + v->spb - 1),
			       (unsigned long long)(((uint64_t)v->bat[b] + v->bitmap_sectors) * VHD_SECTOR),
			       (unsigned long long)((uint64_t)v->bat[b] * VHD_SECTOR));
		}
	}
	chain_close(&c);
	return 0;
}

/* ------------------------------------------------------------------ main */

static const struct cmd cmd_table[] = {
	{ "create", cmd_create, create_usage },
	{ "info", cmd_info, info_usage },
	{ "check", cmd_check, check_usage },
	{ "convert", cmd_convert, convert_usage },
	{ "read", cmd_read, read_usage },
	{ "write", cmd_write, write_usage },
	{ "map", cmd_map, map_usage },
	{ "grubcfg", cmd_grubcfg, grubcfg_usage },
	{ NULL, NULL, NULL },
};

static const char main_usage[] =
"usage: vhdtool COMMAND [OPTIONS] ARGS...\n"
"\n"
"Create, inspect, check and convert VHD (Virtual PC / Hyper-V) disk images.\n"
"\n"
"commands:\n"
"  create   create a fixed, dynamic or differencing image\n"
"  info     show every footer/header field, locators and the chain (--json)\n"
"  check    consistency checks; exit 0 clean, 1 defects, 2 unusable/unreadable\n"
"  convert  raw <-> fixed/dynamic VHD; differencing input is flattened\n"
"  read     sectors of the virtual disk to stdout\n"
"  write    sectors from stdin into the virtual disk\n"
"  map      list allocated blocks\n"
"  grubcfg  GRUB menu entries booting each VHD under a folder through vhdboot\n"
"\n"
"'vhdtool COMMAND --help' describes each command.\n";

/* Dispatch argv[1] to its command. */
int main(int argc, char **argv)
{
	opterr = 0;
	if (argc < 2)
		return cmd_fail(EXIT_USAGE, "missing command (see 'vhdtool --help')");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(main_usage, stdout);
		return 0;
	}
	if (!strcmp(argv[1], "help")) {
		if (argc < 3) {
			fputs(main_usage, stdout);
			return 0;
		}
		cmd_name = "help";
		return cmd_help(argv[2]);
	}
	for (const struct cmd *c = cmd_table; c->name; c++)
		if (!strcmp(c->name, argv[1])) {
			cmd_name = c->name;
			optind = 1;
			return c->fn(argc - 1, argv + 1);
		}
	return cmd_fail(EXIT_USAGE, "unknown command '%s' (see 'vhdtool --help')", argv[1]);
}
