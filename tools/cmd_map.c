/* cmd_map.c: `vhdtool map`: the layout of an image file and the allocation of its virtual disk, as text, SVG or HTML. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vhdtool.h"
#include "../vhd/vhd_util.h"   /* vhd_sectors_of, vhd_ploc_space_bytes */

const char map_usage[] =
"usage: vhdtool map [-f vhd|vhdx] [--svg OUT.svg] [--html OUT.html] [--ignore-timestamp] IMAGE\n"
"\n"
"Show where everything lies in IMAGE's file and which parts of its virtual\n"
"disk are allocated. Text (default): per chain member, a one-line bar of the\n"
"virtual disk ('#' allocated, '.' not; one character per block or group of\n"
"blocks), then the file's regions in order: footer copy, header, BAT, parent\n"
"locators, each block with its virtual sectors and how full its bitmap is,\n"
"unused gaps (alignment padding or leaked space) and the end footer.\n"
"  --svg OUT   draw the leaf image's file layout and virtual-disk allocation\n"
"              as an SVG picture (each region an element with data-kind, and a\n"
"              tooltip)\n"
"  --html OUT  the same picture in an HTML page, with the region table\n"
"  -f FORMAT   vhd or vhdx (default: by content). A VHDX's text map lists the\n"
"              file identifier, headers, region tables, log, metadata, BAT, block\n"
"              runs by state, sector-bitmap blocks and unused space; its SVG/HTML\n"
"              draws those regions and the virtual disk's blocks by state\n"
"              (partially present blocks with their sector-bitmap fill)\n"
"  --help      this text\n";

/* Kinds of file regions. */
enum map_kind { MK_FOOTER_COPY, MK_HEADER, MK_BAT, MK_LOCATOR, MK_BLOCK, MK_DATA, MK_ALIGN_GAP, MK_LEAK, MK_FOOTER };
static const char *const map_kind_name[] = { "footer-copy", "header", "bat", "locator", "block", "data",
                                             "alignment-gap", "leaked", "footer" };
static const char *const map_kind_color[] = { "#7e57c2", "#1e88e5", "#00897b", "#f9a825", "#43a047", "#43a047",
                                              "#bdbdbd", "#e53935", "#7e57c2" };

/* One region of the file (sectors [s, e)). */
struct map_ext {
	uint64_t s, e;
	int kind;
	int64_t blk;          /* block index (MK_BLOCK) or locator slot (MK_LOCATOR) */
	uint32_t set;         /* MK_BLOCK: bitmap bits set (within the disk) */
	uint32_t bits;        /* MK_BLOCK: sectors the block covers inside the disk */
};

/* qsort order: by start. */
static int map_cmp(const void *a, const void *b)
{
	const struct map_ext *x = a, *y = b;

	return x->s < y->s ? -1 : x->s > y->s;
}

/* All regions of v's file in order, gaps included; *out malloc'd. Returns the count, or -1 with errno. */
static long map_regions(struct vhd *v, struct map_ext **out)
{
	uint64_t foot = vhd_sectors_of(v->footer_pos), blen = (uint64_t)v->bitmap_sectors + v->spb, prev = 0;
	size_t cap = 16 + (v->footer.type == VHD_TYPE_FIXED ? 0 : 2 * (size_t)v->header.max_entries);
	struct map_ext *x = malloc(cap * sizeof(*x)), *r;
	uint8_t *bm = v->bitmap_sectors ? malloc((size_t)v->bitmap_sectors * VHD_SECTOR) : NULL;
	size_t n = 0, m = 0;

	if (!x || (v->bitmap_sectors && !bm)) {
		free(x);
		free(bm);
		errno = ENOMEM;
		return -1;
	}
	if (v->footer.type == VHD_TYPE_FIXED) {
		x[n++] = (struct map_ext){ 0, v->sectors, MK_DATA, -1, 0, 0 };
		blen = 1;
	} else {
		const struct vhd_header *h = &v->header;
		x[n++] = (struct map_ext){ 0, 1, MK_FOOTER_COPY, -1, 0, 0 };
		x[n++] = (struct map_ext){ v->footer.data_offset / VHD_SECTOR, vhd_sectors_of(v->footer.data_offset + 1024),
		                           MK_HEADER, -1, 0, 0 };
		x[n++] = (struct map_ext){ h->table_offset / VHD_SECTOR,
		                           vhd_sectors_of(h->table_offset + (uint64_t)h->max_entries * 4), MK_BAT, -1, 0, 0 };
		for (int i = 0; i < 8; i++) {
			const struct vhd_ploc *l = &h->loc[i];
			if (l->code && l->data_offset < v->footer_pos)
				x[n++] = (struct map_ext){ l->data_offset / VHD_SECTOR,
				                           vhd_sectors_of(l->data_offset + vhd_ploc_space_bytes(l->data_space, l->data_len)),
				                           MK_LOCATOR, i, 0, 0 };
		}
		for (uint32_t b = 0; b < h->max_entries; b++) {
			uint64_t first = (uint64_t)b * v->spb;
			uint32_t bits = first >= v->sectors ? 0 : v->sectors - first < v->spb ? (uint32_t)(v->sectors - first) : v->spb;
			uint32_t set = 0;
			if (v->bat[b] == VHD_BAT_FREE)
				continue;
			if (!blk_read(v->dev, v->bat[b], v->bitmap_sectors, bm))
				for (uint32_t s = 0; s < bits; s++)
					set += (bm[s >> 3] >> (7 - (s & 7))) & 1;
			x[n++] = (struct map_ext){ v->bat[b], v->bat[b] + blen, MK_BLOCK, b, set, bits };
		}
	}
	free(bm);
	qsort(x, n, sizeof(*x), map_cmp);
	r = malloc((2 * n + 2) * sizeof(*r));
	if (!r) {
		free(x);
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (x[i].s > prev)
			r[m++] = (struct map_ext){ prev, x[i].s, x[i].s - prev < blen ? MK_ALIGN_GAP : MK_LEAK, -1, 0, 0 };
		r[m++] = x[i];
		prev = x[i].e > prev ? x[i].e : prev;
	}
	if (foot > prev)
		r[m++] = (struct map_ext){ prev, foot, foot - prev < blen ? MK_ALIGN_GAP : MK_LEAK, -1, 0, 0 };
	r[m++] = (struct map_ext){ foot, foot + 1, MK_FOOTER, -1, 0, 0 };
	free(x);
	*out = r;
	return (long)m;
}

/* One line describing a region (text map, tooltips, the HTML table). */
static void map_describe(const struct vhd *v, const struct map_ext *e, char *out, size_t n)
{
	switch (e->kind) {
	case MK_BLOCK:
		snprintf(out, n, "block %lld: virtual sectors %llu-%llu, bitmap %u of %u sectors set (%u%%)", (long long)e->blk,
		         (unsigned long long)((uint64_t)e->blk * v->spb), (unsigned long long)((uint64_t)e->blk * v->spb + v->spb - 1),
		         e->set, e->bits, e->bits ? (unsigned)((uint64_t)e->set * 100 / e->bits) : 0);
		break;
	case MK_LOCATOR:
		snprintf(out, n, "parent locator %lld data", (long long)e->blk);
		break;
	case MK_DATA:
		snprintf(out, n, "data: virtual sectors 0-%llu", (unsigned long long)(v->sectors - 1));
		break;
	case MK_ALIGN_GAP:
		snprintf(out, n, "unused: %llu sectors (alignment padding)", (unsigned long long)(e->e - e->s));
		break;
	case MK_LEAK:
		snprintf(out, n, "unused: %llu sectors (leaked space: 'vhdtool compact' reclaims it)",
		         (unsigned long long)(e->e - e->s));
		break;
	default:
		snprintf(out, n, "%s", e->kind == MK_FOOTER_COPY ? "footer copy" : e->kind == MK_HEADER ? "dynamic header"
		                       : e->kind == MK_BAT ? "block allocation table" : "footer");
		break;
	}
}

/* The virtual disk as a bar of at most width characters: '#' where any block of the group is allocated. */
static void map_bar(const struct vhd *v, int width)
{
	uint64_t per;

	if (v->footer.type == VHD_TYPE_FIXED) {
		printf("  virtual disk: fully allocated (fixed)\n");
		return;
	}
	per = (v->blocks + (uint64_t)width - 1) / (uint64_t)width;
	per = per ? per : 1;
	printf("  virtual disk (%llu block%s per character): [", (unsigned long long)per, per == 1 ? "" : "s");
	for (uint64_t b = 0; b < v->blocks; b += per) {
		int any = 0;
		for (uint64_t k = b; k < b + per && k < v->blocks; k++)
			any |= v->bat[k] != VHD_BAT_FREE;
		putchar(any ? '#' : '.');
	}
	printf("]\n");
}

#define MAP_W 1000.0   /* drawing width in SVG units */

/* The SVG picture: the file band (regions proportional to their size, each at least a hairline) and the virtual band. */
static void map_svg(FILE *f, const char *path, struct vhd *v, const struct map_ext *x, long n)
{
	uint64_t total = x[n - 1].e;
	char d[256];

	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1040\" height=\"230\" viewBox=\"0 0 1040 230\" "
	        "font-family=\"sans-serif\" font-size=\"12\">\n<title>");
	out_xml(f, path);
	fprintf(f, "</title>\n<text x=\"20\" y=\"18\">");
	out_xml(f, path);
	fprintf(f, ": %s, %llu bytes virtual, file %llu bytes</text>\n", cmd_type_name(v->footer.type),
	        (unsigned long long)v->footer.cur_size, (unsigned long long)(total * VHD_SECTOR));
	fprintf(f, "<text x=\"20\" y=\"40\">file layout (regions in file order; small ones widened to stay visible)</text>\n"
	        "<g id=\"file\">\n");
	/* Each region gets a minimum width (a footer is one sector of thousands), the rest shared by size. */
	double minw = n * 3.0 <= MAP_W / 2 ? 3.0 : 0.5, spare = MAP_W - minw * (double)n, x0 = 20;
	for (long i = 0; i < n; i++) {
		double w = minw + (spare > 0 ? spare * (double)(x[i].e - x[i].s) / (double)total : 0);
		const char *color = map_kind_color[x[i].kind];
		char fillc[16];
		if (x[i].kind == MK_BLOCK && x[i].bits) {   /* darker green for fuller bitmaps */
			unsigned p = (unsigned)((uint64_t)x[i].set * 100 / x[i].bits);
			snprintf(fillc, sizeof(fillc), "#%02x%02x%02x", 200 - p * 170 / 100, 230 - p * 90 / 100, 200 - p * 170 / 100);
			color = fillc;
		}
		map_describe(v, &x[i], d, sizeof(d));
		fprintf(f, "<rect data-kind=\"%s\" data-start-sector=\"%llu\" data-sectors=\"%llu\"", map_kind_name[x[i].kind],
		        (unsigned long long)x[i].s, (unsigned long long)(x[i].e - x[i].s));
		if (x[i].kind == MK_BLOCK)
			fprintf(f, " data-block=\"%lld\" data-virtual-sector=\"%llu\" data-bitmap-set=\"%u\" data-bitmap-bits=\"%u\"",
			        (long long)x[i].blk, (unsigned long long)((uint64_t)x[i].blk * v->spb), x[i].set, x[i].bits);
		fprintf(f, " x=\"%.2f\" y=\"48\" width=\"%.2f\" height=\"50\" fill=\"%s\" stroke=\"#333\" stroke-width=\"0.2\">"
		        "<title>sectors %llu-%llu: ", x0, w, color, (unsigned long long)x[i].s, (unsigned long long)(x[i].e - 1));
		out_xml(f, d);
		fprintf(f, "</title></rect>\n");
		x0 += w;
	}
	fprintf(f, "</g>\n<text x=\"20\" y=\"128\">virtual disk (allocated blocks)</text>\n<g id=\"virtual\">\n");
	if (v->footer.type == VHD_TYPE_FIXED) {
		fprintf(f, "<rect data-kind=\"virtual-allocated\" x=\"20\" y=\"136\" width=\"%.2f\" height=\"30\" fill=\"#43a047\">"
		        "<title>fixed: every sector is stored</title></rect>\n", MAP_W);
	} else {
		for (uint32_t b = 0; b < v->blocks; b++) {
			double x0 = 20 + MAP_W * b / v->blocks, w = MAP_W / v->blocks;
			int on = v->bat[b] != VHD_BAT_FREE;
			fprintf(f, "<rect data-kind=\"%s\" data-block=\"%u\" x=\"%.2f\" y=\"136\" width=\"%.2f\" height=\"30\" "
			        "fill=\"%s\"><title>block %u: virtual sectors %llu-%llu, %s</title></rect>\n",
			        on ? "virtual-allocated" : "virtual-unallocated", b, x0, w < 0.5 ? 0.5 : w, on ? "#43a047" : "#eeeeee",
			        b, (unsigned long long)((uint64_t)b * v->spb), (unsigned long long)((uint64_t)b * v->spb + v->spb - 1),
			        on ? "allocated" : "not allocated");
		}
	}
	fprintf(f, "</g>\n<g id=\"legend\">\n");
	for (int k = 0; k <= MK_FOOTER; k++) {
		if (k == MK_DATA && v->footer.type != VHD_TYPE_FIXED)
			continue;
		fprintf(f, "<rect x=\"%d\" y=\"190\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"200\">%s</text>\n",
		        20 + 110 * (k > MK_DATA ? k - 1 : k), map_kind_color[k], 36 + 110 * (k > MK_DATA ? k - 1 : k),
		        map_kind_name[k]);
	}
	fprintf(f, "</g>\n</svg>\n");
}

/* The HTML page: the SVG and a table of the regions. */
static void map_html(FILE *f, const char *path, struct vhd *v, const struct map_ext *x, long n)
{
	char d[256];

	map_html_begin(f, path);
	map_svg(f, path, v, x, n);
	map_html_table(f, "file sectors");
	for (long i = 0; i < n; i++) {
		map_describe(v, &x[i], d, sizeof(d));
		map_html_row(f, map_kind_name[x[i].kind], (unsigned long long)x[i].s, (unsigned long long)(x[i].e - 1), d);
	}
	map_html_end(f);
}

/* Write a picture file with fn; 0 or exit code. */
static int map_write(const char *out, void (*fn)(FILE *, const char *, struct vhd *, const struct map_ext *, long),
                     const char *path, struct vhd *v, const struct map_ext *x, long n)
{
	FILE *f = fopen(out, "w");

	if (!f)
		return cmd_fail(1, "%s: %s", out, strerror(errno));
	fn(f, path, v, x, n);
	if (fclose(f) != 0)
		return cmd_fail(1, "%s: %s", out, strerror(errno));
	return 0;
}

/* vhdtool map: text, SVG or HTML. */
int cmd_map(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "svg", required_argument, NULL, OPT_SVG },
		{ "html", required_argument, NULL, OPT_HTML },
		{ "ignore-timestamp", no_argument, NULL, OPT_IGNORE_TS },
		{ NULL, 0, NULL, 0 },
	};
	unsigned flags = CHAIN_RDONLY;
	const char *svg = NULL, *html = NULL;
	struct chain c;
	int opt, rc, fmt = IMG_FMT_AUTO;

	while ((opt = getopt_long(argc, argv, ":f:h", lopts, NULL)) != -1) {
		switch (opt) {
		case OPT_SVG: svg = optarg; break;
		case OPT_HTML: html = optarg; break;
		default:
			if (cmd_opt_shared(opt, argv, "map", &fmt, NULL, &flags, &rc))
				return rc;
		}
	}
	if (argc - optind != 1)
		return cmd_bad_args("expected exactly one IMAGE");
	if (fmt == IMG_FMT_AUTO) {
		char why[1024];
		int e;
		if ((fmt = img_detect(argv[optind], why, sizeof(why), &e)) < 0)
			return cmd_fail(e ? EXIT_USAGE : 1, "%s", why);
	}
	if (fmt == IMG_FMT_VHDX) {
		if (svg || html)
			return vx_map_picture(argv[optind], svg, html);
		return vx_map(argv[optind]);
	}
	if ((rc = img_open_vhd(&c, argv[optind], fmt, flags)))
		return rc;
	for (int i = 0; i < c.n && rc == 0; i++) {
		struct vhd *v = &c.m[i]->v;
		struct map_ext *x;
		long n = map_regions(v, &x);
		char d[256];

		if (n < 0) {
			rc = cmd_fail(1, "out of memory");
			break;
		}
		if (i == 0 && svg)
			rc = map_write(svg, map_svg, c.m[0]->path, v, x, n);
		if (i == 0 && html && !rc)
			rc = map_write(html, map_html, c.m[0]->path, v, x, n);
		if (!svg && !html) {
			printf("%s: %s, %llu sectors", c.m[i]->path, cmd_type_name(v->footer.type), (unsigned long long)v->sectors);
			if (v->footer.type != VHD_TYPE_FIXED) {
				uint64_t alloc = 0;
				for (uint32_t b = 0; b < v->header.max_entries; b++)
					alloc += v->bat[b] != VHD_BAT_FREE;
				printf(", block size %u, %u blocks, %llu allocated", v->block_size, v->blocks, (unsigned long long)alloc);
			}
			printf("\n");
			map_bar(v, 64);
			for (long k = 0; k < n; k++) {
				map_describe(v, &x[k], d, sizeof(d));
				printf("  file sectors %llu-%llu (offset 0x%llx): %s\n", (unsigned long long)x[k].s,
				       (unsigned long long)(x[k].e - 1), (unsigned long long)x[k].s * VHD_SECTOR, d);
			}
		}
		free(x);
	}
	chain_close(&c);
	return rc;
}
