/* cmd_map.c: `vhdtool map`: the layout of an image file and the allocation of its virtual disk. */
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

/* ------------------------------------------------------------------ map */

const char map_usage[] =
"usage: vhdtool map [--ignore-timestamp] IMAGE\n"
"\n"
"List the allocated blocks of IMAGE and of each image in its chain:\n"
"\"block N: sectors A-B at file offset X\" (a fixed image is one extent).\n"
"  --help  this text\n";

/* vhdtool map: the allocated blocks of every chain member. */
int cmd_map(int argc, char **argv)
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

