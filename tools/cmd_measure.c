/* cmd_measure.c: `vhdtool measure`: the file size a conversion to raw, fixed or dynamic VHD needs (qemu-img measure). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vhdtool.h"
#include "../vhd/vhd_util.h"   /* vhd_sectors_of */

const char measure_usage[] =
"usage: vhdtool measure [-f FMT] [-O raw|fixed|dynamic] [-b BLOCKSIZE] [--json] [--ignore-timestamp] IN\n"
"       vhdtool measure [-O raw|fixed|dynamic] [-b BLOCKSIZE] [--json] --size SIZE\n"
"\n"
"Print the file size 'vhdtool convert -O FORMAT IN OUT' writes, as qemu-img\n"
"measure does: \"required size\" (for the data IN holds: a dynamic VHD\n"
"allocates only blocks with a non-zero byte) and \"fully allocated size\" (every\n"
"block allocated). With --size, for a new empty disk of SIZE bytes.\n"
"  -f FMT        format of IN: raw, vhd or vhdx (default: by content)\n"
"  -O FORMAT     raw, fixed or dynamic (default dynamic)\n"
"  -b BLOCKSIZE  dynamic block size, power of two >= 512 (default 2M)\n"
"  --size SIZE   measure an empty disk of SIZE bytes instead of IN\n"
"  --json        {\"required\": N, \"fully-allocated\": M}\n"
"  --help        this text\n";

#define OPT_SIZE 0x200

/* Blocks of bs bytes in s that hold a non-zero byte (allocated blocks are read; unallocated ones are skipped). */
static int measure_blocks(struct img_src *s, uint32_t bs, uint64_t *used)
{
	uint8_t *buf = malloc(CMD_CHUNK);
	uint32_t step = bs < CMD_CHUNK ? bs : CMD_CHUNK;
	struct progress pg;
	int rc = 0;

	if (!buf)
		return cmd_fail(1, "out of memory");
	*used = 0;
	progress_start(&pg, s->size);
	for (uint64_t blk = 0; blk * bs < s->size; blk++) {
		uint64_t start = blk * bs, end = start + bs < s->size ? start + bs : s->size;
		progress_update(&pg, start);
		if (img_src_unallocated(s, start, end - start))
			continue;
		for (uint64_t off = start; off < end; off += step) {
			uint32_t len = end - off < step ? (uint32_t)(end - off) : step;
			int zero;
			if ((rc = img_src_read(s, off, len, buf, &zero)))
				goto out;
			if (!zero && !hostdev_is_zero(buf, len)) {
				(*used)++;
				break;
			}
		}
	}
	progress_update(&pg, s->size);
out:
	progress_end(&pg);
	free(buf);
	return rc;
}

/* vhdtool measure: sizes a conversion needs. */
int cmd_measure(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "ignore-timestamp", no_argument, NULL, OPT_IGNORE_TS },
		{ NULL, 0, NULL, 0 },
	};
	int opt, rc, fmt = IMG_FMT_AUTO, kind = VHD_TYPE_DYNAMIC, json = 0;
	unsigned flags = 0;
	const char *size_s = NULL;
	uint64_t size = 0, bs = 2 * MIB, used = 0, required, full;
	struct img_src s;

	while ((opt = getopt_long(argc, argv, ":f:O:b:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'O':
			if (!strcmp(optarg, "raw"))
				kind = 0;
			else if (!strcmp(optarg, "fixed"))
				kind = VHD_TYPE_FIXED;
			else if (!strcmp(optarg, "dynamic") || !strcmp(optarg, "vhd") || !strcmp(optarg, "vpc"))
				kind = VHD_TYPE_DYNAMIC;
			else
				return cmd_bad_args("-O must be raw, fixed or dynamic");
			break;
		case 'b':
			if (cmd_parse_size(optarg, &bs) || bs < VHD_SECTOR || !cmd_is_pow2(bs) || bs > VHD_MAX_BLOCK_SIZE)
				return cmd_bad_args("-b must be a power of two from 512 to 1G");
			break;
		case OPT_JSON: json = 1; break;
		case OPT_SIZE: size_s = optarg; break;
		default:
			if (cmd_opt_shared(opt, argv, "measure", &fmt, NULL, &flags, &rc))
				return rc;
		}
	}
	if (size_s ? argc - optind != 0 : argc - optind != 1)
		return cmd_bad_args(size_s ? "--size and IN exclude each other" : "expected IN (or --size SIZE)");
	if (size_s) {
		if (cmd_parse_size(size_s, &size) || !size || size % VHD_SECTOR)
			return cmd_bad_args("--size must be a positive multiple of 512 (K/M/G/T suffixes)");
	} else {
		if ((rc = img_src_open(&s, argv[optind], fmt, flags)))
			return rc;
		size = s.size;
		if (kind == VHD_TYPE_DYNAMIC)
			rc = measure_blocks(&s, (uint32_t)bs, &used);
		img_src_close(&s);
		if (rc)
			return rc;
	}
	if (kind != 0 && size > VHD_MAX_SIZE)
		return cmd_fail(1, "a VHD holds at most %llu bytes; this disk has %llu", (unsigned long long)VHD_MAX_SIZE,
		                (unsigned long long)size);
	if (kind == 0) {
		required = full = size;
	} else if (kind == VHD_TYPE_FIXED) {
		required = full = size + VHD_SECTOR;
	} else {
		/* vhd_create's layout: footer copy, header, BAT (whole sectors), end footer; each block: bitmap + data. */
		uint64_t blocks = (size + bs - 1) / bs;
		uint64_t meta = VHD_SECTOR + 1024 + vhd_sectors_of(blocks * 4) * VHD_SECTOR + VHD_SECTOR;
		uint64_t per = bs + vhd_sectors_of((bs / VHD_SECTOR + 7) / 8) * VHD_SECTOR;
		required = meta + used * per;
		full = meta + blocks * per;
	}
	if (json)
		printf("{\n  \"required\": %llu,\n  \"fully-allocated\": %llu\n}\n", (unsigned long long)required,
		       (unsigned long long)full);
	else
		printf("required size: %llu\nfully allocated size: %llu\n", (unsigned long long)required,
		       (unsigned long long)full);
	return 0;
}
