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
"usage: vhdtool check [-f vhd|vhdx] [--deep] [--json] [--ignore-timestamp] IMAGE\n"
"\n"
"Check IMAGE (and every image of its differencing chain) for consistency:\n"
"footer and header fields and checksums, the backup footer, the BAT and block\n"
"layout (overlaps, range, unused space), parent locators and the parent ids.\n"
"Prints one line per finding: \"IMAGE: <check>: <message>: <details>\"; notes\n"
"(alignment padding, a spare table, a maximal geometry) and leaks (unused room\n"
"for a block, e.g. after an interrupted write) end in \"(note)\" / \"(leak)\".\n"
"Never writes.\n"
"  -f FORMAT           vhd or vhdx (default: by content; raw files have nothing to check)\n"
"A VHDX is checked by vhdx/: open errors and defects by the library's names\n"
"(a pending log is replayed in memory only); --deep does not apply.\n"
"  --deep              also scan sectors whose bitmap bit is clear for data\n"
"  --json              one JSON object: findings, counts and the status\n"
"  --ignore-timestamp  accept parents whose time stamp differs\n"
"  --help              this text\n"
"Exit status (as qemu-img check): 0 clean (notes allowed), 1 defects found,\n"
"2 unusable (does not open as a VHD, unreadable, bad arguments), 3 leaks only\n"
"('vhdtool compact' or 'vhdtool repair' reclaims them).\n";

/* State of one check run: which image, counts per severity, the output form. */
struct cmd_check_ctx {
	const char *path;
	int defects, leaks, notes;
	struct out *o;           /* JSON: the findings array is open */
};

/* Print one finding (text line or JSON object) and count it by severity. */
static void cmd_check_emit(struct cmd_check_ctx *ctx, const char *name, const char *msg, const char *d, int sev,
                           uint64_t a, uint64_t b)
{
	static const char *const sev_name[] = { "defect", "leak", "note" };

	if (sev == VHD_SEV_NOTE)
		ctx->notes++;
	else if (sev == VHD_SEV_LEAK)
		ctx->leaks++;
	else
		ctx->defects++;
	if (ctx->o) {
		out_begin(ctx->o, NULL, 0);
		out_str(ctx->o, "image", ctx->path);
		out_str(ctx->o, "check", name);
		out_str(ctx->o, "severity", sev_name[sev]);
		out_str(ctx->o, "message", msg);
		out_str(ctx->o, "details", d);
		out_u64(ctx->o, "a", a);
		out_u64(ctx->o, "b", b);
		out_end(ctx->o);
		return;
	}
	printf("%s: %s: %s%s%s%s\n", ctx->path, name, msg, d[0] ? ": " : "", d,
	       sev == VHD_SEV_NOTE ? " (note)" : sev == VHD_SEV_LEAK ? " (leak)" : "");
}

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
		snprintf(d, sizeof(d), "current size %llu, CHS geometry claims %llu", ua, ub);
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
		snprintf(d, sizeof(d), "%llu bytes after file sector %llu", ua, ub);
		break;
	case VHD_C_LEAKED_SPACE:
	case VHD_C_ALIGN_GAP:
		snprintf(d, sizeof(d), "%llu sectors at file sector %llu", ua, ub);
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
	cmd_check_emit(ctx, name, vhd_check_msg(code), d, vhd_check_severity(code), a, b);
}

/* End a JSON run: counts and status; returns the exit status. */
static int cmd_check_finish(struct cmd_check_ctx *ctx, struct out *o, const char *path, int status)
{
	static const char *const names[] = { "clean", "defects", "unusable", "leaks" };

	if (o->json) {
		out_end(o);
		out_u64(o, "defects", (uint64_t)ctx->defects);
		out_u64(o, "leaks", (uint64_t)ctx->leaks);
		out_u64(o, "notes", (uint64_t)ctx->notes);
		out_str(o, "status", names[status]);
		out_u64(o, "exit_status", (uint64_t)status);
		printf("\n}\n");
	} else if (status == 0) {
		printf("%s: no defects found%s\n", path, ctx->notes ? " (notes above)" : "");
	} else if (status == EXIT_LEAKS) {
		printf("%s: no defects found; %d leak%s (space compact or repair reclaims)\n", path, ctx->leaks,
		       ctx->leaks == 1 ? "" : "s");
	}
	fflush(stdout);
	if (status == EXIT_DEFECTS)
		cmd_fail(EXIT_DEFECTS, "%s: %d defect%s found", path, ctx->defects, ctx->defects == 1 ? "" : "s");
	return status;
}

/* vhdtool check: consistency checks over an image and its chain; never writes. */
int cmd_check(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "deep", no_argument, NULL, OPT_DEEP },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "ignore-timestamp", no_argument, NULL, OPT_IGNORE_TS },
		{ NULL, 0, NULL, 0 },
	};
	unsigned cflags = 0, flags = CHAIN_RDONLY | CHAIN_LENIENT;
	struct cmd_check_ctx ctx;
	struct out o;
	struct chain c;
	const char *path;
	char why[1024];
	int opt, rc, fmt = IMG_FMT_AUTO, e;

	memset(&o, 0, sizeof(o));
	while ((opt = getopt_long(argc, argv, ":f:h", lopts, NULL)) != -1) {
		switch (opt) {
		case OPT_DEEP: cflags |= VHD_CHECK_DEEP; break;
		case OPT_JSON: o.json = 1; break;
		default:
			if (cmd_opt_shared(opt, argv, "check", &fmt, NULL, &flags, &rc))
				return rc;
		}
	}
	if (argc - optind != 1)
		return cmd_bad_args("expected exactly one IMAGE");
	path = argv[optind];
	memset(&ctx, 0, sizeof(ctx));
	ctx.path = path;
	if (fmt == IMG_FMT_AUTO) {
		fmt = img_detect(path, why, sizeof(why), &e);
		if (fmt < 0)
			return cmd_fail(EXIT_USAGE, "%s", why);
	}
	if (fmt == IMG_FMT_RAW)
		return cmd_fail(EXIT_USAGE, "%s is read as raw (-f raw, or no VHD footer, footer copy or header found): "
		                "a raw disk has no structure to check", path);
	if (fmt == IMG_FMT_VHDX)
		return vx_check(path, o.json);
	if (o.json) {
		putchar('{');
		out_str(&o, "image", path);
		out_begin(&o, "findings", 1);
		ctx.o = &o;
	}
	rc = chain_open(&c, path, flags);
	if (rc && c.n == 0) {
		if (c.sys_errno) {
			if (o.json)
				cmd_check_finish(&ctx, &o, path, EXIT_USAGE);
			return cmd_fail(EXIT_USAGE, "%s", c.err);
		}
		cmd_check_emit(&ctx, vhd_errname(rc), vhd_strerror(rc), "the image does not open", VHD_SEV_DEFECT, 0, 0);
		cmd_check_finish(&ctx, &o, path, EXIT_USAGE);
		return cmd_fail(EXIT_USAGE, "%s (unusable; see 'vhdtool repair')", c.err);
	}
	for (int i = 0; i < c.n; i++) {
		struct chain_member *m = c.m[i];
		size_t bytes = vhd_bat_bytes(&m->v);
		uint32_t *scratch = bytes ? malloc(bytes) : NULL;
		int n;

		if (bytes && !scratch) {
			chain_close(&c);
			return cmd_fail(EXIT_USAGE, "%s: out of memory", m->path);
		}
		ctx.path = m->path;
		n = vhd_check(&m->v, scratch, cflags, cmd_vhd_now(), cmd_check_report, &ctx);
		free(scratch);
		if (n < 0) {
			if (n == -VHD_E_IO) {
				rc = cmd_fail(EXIT_USAGE, "%s: read failed: %s", m->path,
				              m->hd.last_errno ? strerror(m->hd.last_errno) : vhd_strerror(VHD_E_IO));
				chain_close(&c);
				return rc;
			}
			cmd_check_emit(&ctx, vhd_errname(-n), vhd_strerror(-n), "", VHD_SEV_DEFECT, 0, 0);
		}
	}
	ctx.path = path;
	if (rc)
		cmd_check_emit(&ctx, vhd_errname(rc), c.err, "", VHD_SEV_DEFECT, 0, 0);
	chain_close(&c);
	return cmd_check_finish(&ctx, &o, path, ctx.defects ? EXIT_DEFECTS : ctx.leaks ? EXIT_LEAKS : 0);
}
