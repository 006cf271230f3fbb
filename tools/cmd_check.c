/* cmd_check.c: `vhdtool check`: consistency checks over an image and its chain; exit status by severity. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "vhdtool.h"

/* ------------------------------------------------------------------ check */

const char check_usage[] =
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
int cmd_check(int argc, char **argv)
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

