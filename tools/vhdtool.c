/* vhdtool.c: vhdtool's frame: the verb table and dispatch, messages, argument parsing and progress shared by tools/cmd_*.c. */
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
#include "vhdtool.h"
#include "grubcfg.h"   /* cmd_grubcfg */

const char *cmd_name = "vhdtool";  /* subcommand in error messages */

/* Print "vhdtool: <cmd>: <reason>" to stderr; returns code for "return cmd_fail(...)". */
int cmd_fail(int code, const char *fmt, ...)
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

/* Print "vhdtool: <cmd>: note: <text>" to stderr. */
void cmd_note(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vhdtool: %s: note: ", cmd_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ------------------------------------------------------------------ progress */

/* Start a progress bar for total units (drawn only if stderr is a terminal). */
void progress_start(struct progress *p, uint64_t total)
{
	p->tty = isatty(2);
	p->last = -1;
	p->total = total;
}

/* Draw the bar for done units when the percentage changed. */
void progress_update(struct progress *p, uint64_t done)
{
	int pct = p->total ? (int)(done * 100 / p->total) : 100;
	char bar[41];

	if (!p->tty || pct == p->last)
		return;
	p->last = pct;
	for (int i = 0; i < 40; i++)
		bar[i] = i < pct * 40 / 100 ? '#' : '.';
	bar[40] = 0;
	fprintf(stderr, "\r[%s] %3d%%", bar, pct);
	if (pct == 100)
		fputc('\n', stderr);
	fflush(stderr);
}

/* Finish the bar's line if one was drawn and did not reach 100%. */
void progress_end(struct progress *p)
{
	if (p->tty && p->last >= 0 && p->last < 100)
		fputc('\n', stderr);
	p->last = 100;
}

/* ------------------------------------------------------------------ helpers */

/* Parse a byte count with an optional K/M/G/T suffix (powers of 1024, optional "B"/"iB"); 0 on success. */
int cmd_parse_size(const char *s, uint64_t *out)
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
int cmd_parse_u64(const char *s, uint64_t *out)
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
int cmd_is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* Current time in VHD seconds (since 2000-01-01 UTC); 0 if the clock is before 2000. */
uint32_t cmd_vhd_now(void)
{
	time_t t = time(NULL);

	return t > (time_t)VHD_EPOCH_OFFSET ? (uint32_t)(t - VHD_EPOCH_OFFSET) : 0;
}

/* Fill a random (version 4) unique id from /dev/urandom; 0 on success, -1 with errno. */
int cmd_random_uuid(uint8_t u[16])
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
const char *cmd_type_name(uint32_t type)
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
void cmd_fourcc(uint32_t v, char out[5])
{
	for (int i = 0; i < 4; i++) {
		char ch = (char)(v >> (24 - 8 * i));
		out[i] = (ch >= 0x20 && ch < 0x7f) ? ch : '.';
	}
	out[4] = 0;
}

/* Copy bytes as UTF-8 text, replacing control bytes with '?' (locator data of "MacX"/"Wi2r"). */
void cmd_bytes_to_text(const uint8_t *b, size_t len, char *out, size_t n)
{
	size_t w = 0;

	for (size_t i = 0; i < len && b[i] && w + 1 < n; i++)
		out[w++] = b[i] < 0x20 ? '?' : (char)b[i];
	out[w] = 0;
}

/* ------------------------------------------------------------------ help */

/* One verb: its name, entry point and --help text. */
struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
};

static const struct cmd cmd_table[];

/* Print a subcommand's help to stdout; returns 0. */
int cmd_help(const char *name)
{
	for (const struct cmd *c = cmd_table; c->name; c++)
		if (!strcmp(c->name, name)) {
			fputs(c->usage, stdout);
			return 0;
		}
	return cmd_fail(EXIT_USAGE, "no such command '%s'", name);
}

/* Report a getopt error ('?' or ':') as a one-line usage failure. */
int cmd_bad_option(int opt, char **argv)
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
int cmd_bad_args(const char *what)
{
	return cmd_fail(EXIT_USAGE, "%s (see 'vhdtool %s --help')", what, cmd_name);
}

/* Parse -f; EXIT_USAGE with a message for an unknown format. */
int cmd_opt_fmt(const char *arg, int *fmt)
{
	if ((*fmt = img_fmt_parse(arg)) < 0)
		return cmd_bad_args("-f must be raw, vhd or vhdx");
	return 0;
}

/* One of the shared options into the verb's variables, or the code the verb returns (see vhdtool.h). */
int cmd_opt_shared(int opt, char **argv, const char *verb, int *fmt, int *do_sync, unsigned *chain_flags, int *exit)
{
	if (opt == 'f' && fmt) {
		int rc = cmd_opt_fmt(optarg, fmt);
		if (rc)
			*exit = rc;
		return rc != 0;
	}
	if (opt == 'h') {
		*exit = cmd_help(verb);
		return 1;
	}
	if (opt == OPT_SYNC && do_sync) {
		*do_sync = 1;
		return 0;
	}
	if (opt == OPT_IGNORE_TS && chain_flags) {
		*chain_flags |= CHAIN_IGNORE_TIMESTAMP;
		return 0;
	}
	*exit = cmd_bad_option(opt, argv);
	return 1;
}

/* fsync at the end of a verb that wrote without per-step flushes. */
int cmd_sync(struct hostdev *hd, const char *path)
{
	if (hostdev_sync(hd) < 0)
		return cmd_fail(1, "%s: fsync: %s", path, strerror(errno));
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
	{ "commit", cmd_commit, commit_usage },
	{ "resize", cmd_resize, resize_usage },
	{ "compact", cmd_compact, compact_usage },
	{ "rebase", cmd_rebase, rebase_usage },
	{ "set", cmd_set, set_usage },
	{ "repair", cmd_repair, repair_usage },
	{ "compare", cmd_compare, compare_usage },
	{ "measure", cmd_measure, measure_usage },
	{ "grubcfg", cmd_grubcfg, grubcfg_usage },
	{ NULL, NULL, NULL },
};

static const char main_usage[] =
"usage: vhdtool COMMAND [OPTIONS] ARGS...\n"
"\n"
"Create, inspect, check, convert and edit VHD (Virtual PC / Hyper-V) and VHDX disk images.\n"
"A file is read as raw only with -f raw or when nothing in it looks like a VHD\n"
"or VHDX. Every command takes VHD and VHDX; a VHDX's structures change only\n"
"through its log (docs/vhdtool-vhdx.md).\n"
"\n"
"commands:\n"
"  create   create a fixed, dynamic or differencing image (VHD or VHDX)\n"
"  info     show every footer/header field, locators and the chain (--json)\n"
"  check    consistency checks; exit 0 clean, 1 defects, 2 unusable, 3 leaks only\n"
"  convert  between raw, fixed/dynamic VHD and VHDX; differencing input is flattened\n"
"  read     sectors of the virtual disk to stdout\n"
"  write    sectors from stdin into the virtual disk\n"
"  map      the file's layout and the disk's allocation (text, --svg, --html)\n"
"  commit   merge a differencing image into its parent\n"
"  rebase   give a differencing image a new parent (safe, or -u links only)\n"
"  resize   grow an image, or --shrink it over an unallocated tail\n"
"  compact  drop empty blocks and shrink the file\n"
"  repair   restore footers, fix lone checksum errors, cut a torn tail (--dry-run)\n"
"  set      change footer/header fields (uuid, timestamp, creator, geometry, ...;\n"
"           VHDX: page83 and the parent locator's entries)\n"
"  compare  same virtual content? exit 0 same, 1 differ (first differing sector)\n"
"  measure  file size a conversion needs\n"
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

