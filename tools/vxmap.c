/* vxmap.c: `vhdtool map --svg/--html` for a VHDX: the file's regions and blocks, and the virtual disk's blocks by state (sector-bitmap fill for differencing). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vhdtool.h"

/* Kinds of file regions and of virtual blocks. */
enum vxm_kind { VXM_IDENT, VXM_HEADER, VXM_REGION, VXM_RESERVED, VXM_LOG, VXM_META, VXM_BAT, VXM_FULL, VXM_PARTIAL,
                VXM_SB, VXM_UNUSED, VXM_NOT_PRESENT, VXM_ZERO, VXM_UNMAPPED, VXM_KINDS };
static const char *const vxm_name[VXM_KINDS] = { "file-identifier", "header", "region-table", "reserved", "log",
	"metadata", "bat", "block-fully-present", "block-partially-present", "sector-bitmap", "unused", "not-present",
	"zero", "unmapped-or-undefined" };
static const char *const vxm_color[VXM_KINDS] = { "#5e35b1", "#1e88e5", "#3949ab", "#cfd8dc", "#fb8c00", "#00acc1",
	"#00897b", "#43a047", "#9ccc65", "#f9a825", "#e0e0e0", "#f5f5f5", "#b0bec5", "#90a4ae" };

/* One file region [s, e) bytes. */
struct vxm_ext {
	uint64_t s, e;
	int kind;
	uint64_t blk;        /* payload block or chunk index */
	uint32_t set, bits;  /* partially present: sectors present / in the disk */
};

/* qsort order: by start. */
static int vxm_cmp(const void *a, const void *b)
{
	const struct vxm_ext *x = a, *y = b;

	return x->s < y->s ? -1 : x->s > y->s;
}

/* Sectors of block b present per its sector bitmap (read from the file); -1 on a read error. */
static long vxm_fill(struct vxc_member *m, uint64_t b, uint32_t lim)
{
	struct vhdx *v = &m->v;
	uint64_t sbe = v->bat[b / v->chunk_ratio * (v->chunk_ratio + 1ull) + v->chunk_ratio];
	uint64_t off = (vhdx_bat_mb(sbe) << 20) + (b % v->chunk_ratio) * (v->spb / 8);
	uint8_t *bits = malloc(v->spb / 8);
	long set = 0;

	if (!bits || hostdev_pread_full(m->hd.fd, bits, v->spb / 8, off) != (ssize_t)(v->spb / 8)) {
		free(bits);
		return -1;
	}
	for (uint32_t s = 0; s < lim; s++)
		set += (bits[s / 8] >> (s % 8)) & 1;
	free(bits);
	return set;
}

/* Every region of the file in order with the gaps; *n. NULL on memory or read failure. */
static struct vxm_ext *vxm_regions(struct vxc_member *m, uint64_t *n)
{
	struct vhdx *v = &m->v;
	struct vxm_ext *x = malloc((2 * v->bat_entries + 32) * sizeof(*x)), *r;
	uint64_t k = 0, j = 0, prev = 0;

	if (!x)
		return NULL;
	x[k++] = (struct vxm_ext){ 0, 64u << 10, VXM_IDENT, 0, 0, 0 };
	x[k++] = (struct vxm_ext){ 64u << 10, 128u << 10, VXM_HEADER, 0, 0, 0 };
	x[k++] = (struct vxm_ext){ 128u << 10, 192u << 10, VXM_HEADER, 1, 0, 0 };
	x[k++] = (struct vxm_ext){ 192u << 10, 256u << 10, VXM_REGION, 0, 0, 0 };
	x[k++] = (struct vxm_ext){ 256u << 10, 320u << 10, VXM_REGION, 1, 0, 0 };
	x[k++] = (struct vxm_ext){ 320u << 10, VHDX_MIB, VXM_RESERVED, 0, 0, 0 };
	x[k++] = (struct vxm_ext){ v->hdr.log_offset, v->hdr.log_offset + v->hdr.log_length, VXM_LOG, 0, 0, 0 };
	x[k++] = (struct vxm_ext){ v->meta_off, v->meta_off + v->meta_len, VXM_META, 0, 0, 0 };
	x[k++] = (struct vxm_ext){ v->bat_off, v->bat_off + v->bat_len, VXM_BAT, 0, 0, 0 };
	for (uint64_t i = 0; i < v->bat_entries; i++) {
		uint64_t e = v->bat[i], off = vhdx_bat_mb(e) << 20;
		unsigned st = vhdx_bat_state(e);
		if (i % (v->chunk_ratio + 1ull) == v->chunk_ratio) {
			if (st == VHDX_SB_PRESENT)
				x[k++] = (struct vxm_ext){ off, off + VHDX_MIB, VXM_SB, i / (v->chunk_ratio + 1ull), 0, 0 };
			continue;
		}
		uint64_t b = i - i / (v->chunk_ratio + 1ull);
		if (st != VHDX_PB_FULLY_PRESENT && st != VHDX_PB_PARTIALLY_PRESENT)
			continue;
		x[k] = (struct vxm_ext){ off, off + v->block_size, st == VHDX_PB_FULLY_PRESENT ? VXM_FULL : VXM_PARTIAL, b, 0, 0 };
		if (st == VHDX_PB_PARTIALLY_PRESENT) {
			uint32_t lim = v->sectors - b * v->spb < v->spb ? (uint32_t)(v->sectors - b * v->spb) : v->spb;
			long set = vxm_fill(m, b, lim);
			if (set < 0) {
				free(x);
				return NULL;
			}
			x[k].set = (uint32_t)set;
			x[k].bits = lim;
		}
		k++;
	}
	qsort(x, k, sizeof(*x), vxm_cmp);
	r = malloc((2 * k + 1) * sizeof(*r));
	if (!r) {
		free(x);
		return NULL;
	}
	for (uint64_t i = 0; i < k; i++) {
		if (x[i].s > prev)
			r[j++] = (struct vxm_ext){ prev, x[i].s, VXM_UNUSED, 0, 0, 0 };
		r[j++] = x[i];
		if (x[i].e > prev)
			prev = x[i].e;
	}
	if (m->hd.dev.size_bytes > prev)
		r[j++] = (struct vxm_ext){ prev, m->hd.dev.size_bytes, VXM_UNUSED, 0, 0, 0 };
	free(x);
	*n = j;
	return r;
}

/* One region's tooltip text. */
static void vxm_describe(const struct vhdx *v, const struct vxm_ext *e, char *out, size_t n)
{
	switch (e->kind) {
	case VXM_HEADER:
	case VXM_REGION:
		snprintf(out, n, "%s copy %llu%s", vxm_name[e->kind], (unsigned long long)e->blk,
		         e->kind == VXM_HEADER && (int)e->blk == v->cur ? " (current)" : "");
		break;
	case VXM_FULL:
		snprintf(out, n, "block %llu (virtual sectors %llu-), fully present", (unsigned long long)e->blk,
		         (unsigned long long)(e->blk * v->spb));
		break;
	case VXM_PARTIAL:
		snprintf(out, n, "block %llu (virtual sectors %llu-), partially present: %u of %u sectors in the bitmap",
		         (unsigned long long)e->blk, (unsigned long long)(e->blk * v->spb), e->set, e->bits);
		break;
	case VXM_SB:
		snprintf(out, n, "sector bitmap of chunk %llu (blocks %llu-%llu)", (unsigned long long)e->blk,
		         (unsigned long long)(e->blk * v->chunk_ratio), (unsigned long long)((e->blk + 1) * v->chunk_ratio - 1));
		break;
	default:
		snprintf(out, n, "%s", vxm_name[e->kind]);
	}
}

#define VXM_W 1000.0   /* drawing width in SVG units */

/* The SVG picture: the file band and the virtual band (one cell per block, coloured by state). */
static void vxm_svg(FILE *f, const char *path, struct vxc_member *m, const struct vxm_ext *x, uint64_t n)
{
	struct vhdx *v = &m->v;
	uint64_t total = x[n - 1].e;
	double minw = n * 3.0 <= VXM_W / 2 ? 3.0 : 0.5, spare = VXM_W - minw * (double)n, x0 = 20;
	char d[256];

	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1040\" height=\"250\" viewBox=\"0 0 1040 250\" "
	        "font-family=\"sans-serif\" font-size=\"12\">\n<title>");
	out_xml(f, path);
	fprintf(f, "</title>\n<text x=\"20\" y=\"18\">");
	out_xml(f, path);
	fprintf(f, ": VHDX %s, %llu bytes virtual, block size %u, file %llu bytes</text>\n",
	        v->has_parent ? "differencing" : v->leave_allocated ? "fixed" : "dynamic", (unsigned long long)v->vsize,
	        v->block_size, (unsigned long long)total);
	fprintf(f, "<text x=\"20\" y=\"40\">file layout (regions in file order; small ones widened to stay visible)</text>\n"
	        "<g id=\"file\">\n");
	for (uint64_t i = 0; i < n; i++) {
		double w = minw + (spare > 0 ? spare * (double)(x[i].e - x[i].s) / (double)total : 0);
		vxm_describe(v, &x[i], d, sizeof(d));
		fprintf(f, "<rect data-kind=\"%s\" data-offset=\"%llu\" data-bytes=\"%llu\"", vxm_name[x[i].kind],
		        (unsigned long long)x[i].s, (unsigned long long)(x[i].e - x[i].s));
		if (x[i].kind == VXM_FULL || x[i].kind == VXM_PARTIAL)
			fprintf(f, " data-block=\"%llu\"", (unsigned long long)x[i].blk);
		if (x[i].kind == VXM_PARTIAL)
			fprintf(f, " data-bitmap-set=\"%u\" data-bitmap-bits=\"%u\"", x[i].set, x[i].bits);
		fprintf(f, " x=\"%.2f\" y=\"48\" width=\"%.2f\" height=\"50\" fill=\"%s\" stroke=\"#333\" stroke-width=\"0.2\">"
		        "<title>bytes %llu-%llu: ", x0, w, vxm_color[x[i].kind], (unsigned long long)x[i].s,
		        (unsigned long long)(x[i].e - 1));
		out_xml(f, d);
		fprintf(f, "</title></rect>\n");
		x0 += w;
	}
	fprintf(f, "</g>\n<text x=\"20\" y=\"128\">virtual disk (blocks by state%s)</text>\n<g id=\"virtual\">\n",
	        v->has_parent ? "; not present = the parent's data" : "");
	for (uint64_t b = 0; b < v->data_blocks; b++) {
		unsigned st = vhdx_bat_state(v->bat[b + b / v->chunk_ratio]);
		int k = st == VHDX_PB_FULLY_PRESENT ? VXM_FULL : st == VHDX_PB_PARTIALLY_PRESENT ? VXM_PARTIAL :
		        st == VHDX_PB_ZERO ? VXM_ZERO : st == VHDX_PB_NOT_PRESENT ? VXM_NOT_PRESENT : VXM_UNMAPPED;
		double bx = 20 + VXM_W * (double)b / (double)v->data_blocks, w = VXM_W / (double)v->data_blocks;
		fprintf(f, "<rect data-kind=\"virtual-%s\" data-block=\"%llu\" x=\"%.2f\" y=\"136\" width=\"%.2f\" height=\"30\" "
		        "fill=\"%s\"><title>block %llu: virtual sectors %llu-, %s</title></rect>\n", vxm_name[k],
		        (unsigned long long)b, bx, w < 0.5 ? 0.5 : w, vxm_color[k], (unsigned long long)b,
		        (unsigned long long)(b * v->spb), vxm_name[k]);
	}
	fprintf(f, "</g>\n<g id=\"legend\">\n");
	for (int k = 0; k < VXM_KINDS; k++)
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">%s</text>\n",
		        20 + 145 * (k % 7), 186 + 22 * (k / 7), vxm_color[k], 36 + 145 * (k % 7), 196 + 22 * (k / 7), vxm_name[k]);
	fprintf(f, "</g>\n</svg>\n");
}

/* The HTML page: the SVG and the region table. */
static void vxm_html(FILE *f, const char *path, struct vxc_member *m, const struct vxm_ext *x, uint64_t n)
{
	char d[256];

	map_html_begin(f, path);
	vxm_svg(f, path, m, x, n);
	map_html_table(f, "file bytes");
	for (uint64_t i = 0; i < n; i++) {
		vxm_describe(&m->v, &x[i], d, sizeof(d));
		map_html_row(f, vxm_name[x[i].kind], (unsigned long long)x[i].s, (unsigned long long)(x[i].e - 1), d);
	}
	map_html_end(f);
}

/* Write one picture file; 0 or 1. */
static int vxm_write(const char *out, void (*fn)(FILE *, const char *, struct vxc_member *, const struct vxm_ext *, uint64_t),
                     const char *path, struct vxc_member *m, const struct vxm_ext *x, uint64_t n)
{
	FILE *f = fopen(out, "w");

	if (!f)
		return cmd_fail(1, "%s: %s", out, strerror(errno));
	fn(f, path, m, x, n);
	if (fclose(f) != 0)
		return cmd_fail(1, "%s: %s", out, strerror(errno));
	return 0;
}

/* map --svg/--html of a VHDX leaf; see vhdtool.h. */
int vx_map_picture(const char *path, const char *svg, const char *html)
{
	struct vxchain c;
	struct vxm_ext *x;
	uint64_t n;
	int rc;

	if ((rc = img_open_vhdx(&c, path, VXC_RDONLY | VXC_LEAF_ONLY)))
		return rc;
	if (c.m[0]->v.state & VHDX_ST_LOG_OVERLAY) {
		vxc_close(&c);
		return cmd_fail(1, "%s: a pending log is replayed in memory only: the picture would show the file's bytes "
		                "before it; 'vhdtool repair %s' replays it into the file", path, path);
	}
	x = vxm_regions(c.m[0], &n);
	if (!x) {
		vxc_close(&c);
		return cmd_fail(1, "%s: out of memory or a sector bitmap could not be read", path);
	}
	rc = svg ? vxm_write(svg, vxm_svg, path, c.m[0], x, n) : 0;
	if (!rc && html)
		rc = vxm_write(html, vxm_html, path, c.m[0], x, n);
	free(x);
	vxc_close(&c);
	return rc;
}
