/* cmd_compare.c: `vhdtool compare`: do two images (raw, VHD chains) hold the same virtual disk (qemu-img compare)? */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vhdtool.h"

const char compare_usage[] =
"usage: vhdtool compare [-f FMT] [-F FMT] [-s] [--json] [--ignore-timestamp] A B\n"
"\n"
"Compare the virtual disks of A and B (each raw or a VHD chain), as qemu-img\n"
"compare does: exit 0 when they hold the same content, 1 when they differ\n"
"(the first differing sector is printed), 2 on an error. Without -s, a disk\n"
"that is larger than the other matches when its extra tail reads zeros.\n"
"  -f FMT              format of A: raw, vhd or vhdx (default: by content)\n"
"  -F FMT              format of B\n"
"  -s                  strict: different sizes differ\n"
"  --json              report as one JSON object\n"
"  --ignore-timestamp  accept parents whose time stamp differs\n"
"  --help              this text\n";

/* First differing sector of a and b (len bytes each), or -1. */
static int64_t compare_first(const uint8_t *a, const uint8_t *b, uint32_t len)
{
	for (uint32_t i = 0; i < len; i += VHD_SECTOR)
		if (memcmp(a + i, b + i, VHD_SECTOR))
			return i / VHD_SECTOR;
	return -1;
}

/* First non-zero sector of a (len bytes), or -1. */
static int64_t compare_nonzero(const uint8_t *a, uint32_t len)
{
	for (uint32_t i = 0; i < len; i += VHD_SECTOR)
		if (!hostdev_is_zero(a + i, VHD_SECTOR))
			return i / VHD_SECTOR;
	return -1;
}

/* vhdtool compare: same content or not. */
int cmd_compare(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "ignore-timestamp", no_argument, NULL, OPT_IGNORE_TS },
		{ NULL, 0, NULL, 0 },
	};
	int opt, rc, fa = IMG_FMT_AUTO, fb = IMG_FMT_AUTO, strict = 0;
	unsigned flags = 0;
	struct img_src a, b;
	struct out o;
	struct progress pg;
	uint8_t *ba = NULL, *bb = NULL;
	uint64_t common, total, diff = UINT64_MAX;
	const char *why = NULL;

	memset(&o, 0, sizeof(o));
	memset(&pg, 0, sizeof(pg));
	while ((opt = getopt_long(argc, argv, ":f:F:sh", lopts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			if ((rc = cmd_opt_fmt(optarg, &fa)))
				return rc;
			break;
		case 'F':
			if ((rc = cmd_opt_fmt(optarg, &fb)))
				return rc;
			break;
		case 's': strict = 1; break;
		case OPT_JSON: o.json = 1; break;
		default:
			if (cmd_opt_shared(opt, argv, "compare", NULL, NULL, &flags, &rc))
				return rc;
		}
	}
	if (argc - optind != 2)
		return cmd_bad_args("expected A and B");
	if ((rc = img_src_open(&a, argv[optind], fa, flags)))
		return rc == 1 ? EXIT_USAGE : rc;
	if ((rc = img_src_open(&b, argv[optind + 1], fb, flags))) {
		img_src_close(&a);
		return rc == 1 ? EXIT_USAGE : rc;
	}
	ba = malloc(CMD_CHUNK);
	bb = malloc(CMD_CHUNK);
	if (!ba || !bb) {
		rc = cmd_fail(EXIT_USAGE, "out of memory");
		goto out;
	}
	common = a.size < b.size ? a.size : b.size;
	total = a.size > b.size ? a.size : b.size;
	if (strict && a.size != b.size) {
		why = "sizes differ";
		diff = common / VHD_SECTOR;
	}
	progress_start(&pg, total);
	for (uint64_t off = 0; !why && off < total; off += CMD_CHUNK) {
		uint32_t len = total - off < CMD_CHUNK ? (uint32_t)(total - off) : CMD_CHUNK;
		int za = 1, zb = 1;
		int64_t d;
		uint32_t la = off < a.size ? (uint32_t)((a.size - off) < len ? a.size - off : len) : 0;
		uint32_t lb = off < b.size ? (uint32_t)((b.size - off) < len ? b.size - off : len) : 0;

		progress_update(&pg, off);
		if (la && (rc = img_src_read(&a, off, la, ba, &za)))
			goto err;
		if (lb && (rc = img_src_read(&b, off, lb, bb, &zb)))
			goto err;
		if (za)
			memset(ba, 0, len);
		else if (la < len)
			memset(ba + la, 0, len - la);
		if (zb)
			memset(bb, 0, len);
		else if (lb < len)
			memset(bb + lb, 0, len - lb);
		if (za && zb)
			continue;
		d = za ? compare_nonzero(bb, len) : zb ? compare_nonzero(ba, len) : compare_first(ba, bb, len);
		if (d >= 0) {
			diff = off / VHD_SECTOR + (uint64_t)d;
			why = diff * VHD_SECTOR >= common ? "content mismatch (past the end of the smaller disk: not zeros)"
			                                   : "content mismatch";
		}
	}
	progress_update(&pg, total);
	progress_end(&pg);
	if (o.json) {
		putchar('{');
		out_str(&o, "a", argv[optind]);
		out_str(&o, "b", argv[optind + 1]);
		out_u64(&o, "size_a", a.size);
		out_u64(&o, "size_b", b.size);
		out_bool(&o, "identical", why == NULL);
		if (why) {
			out_u64(&o, "first_difference_sector", diff);
			out_str(&o, "reason", why);
		} else {
			out_null(&o, "first_difference_sector");
			out_null(&o, "reason");
		}
		printf("\n}\n");
	} else if (why) {
		printf("%s and %s differ: %s at sector %llu (byte offset %llu)\n", argv[optind], argv[optind + 1], why,
		       (unsigned long long)diff, (unsigned long long)diff * VHD_SECTOR);
	} else {
		printf("%s and %s are identical%s\n", argv[optind], argv[optind + 1],
		       a.size != b.size ? " (the larger one's tail reads zeros)" : "");
	}
	rc = why ? 1 : 0;
	goto out;
err:
	rc = EXIT_USAGE;   /* a read failure is an error, not a difference */
out:
	free(ba);
	free(bb);
	img_src_close(&a);
	img_src_close(&b);
	return rc;
}
