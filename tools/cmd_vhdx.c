/* cmd_vhdx.c: the VHDX side of vhdtool's info, check, map and create, called where those verbs find a VHDX (all format logic is vhdx/'s). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "vhdtool.h"

/* A GUID as "{...}" text in one of four rotating buffers (for one printf line). */
static const char *vx_g(const struct vhdx_guid *g)
{
	static char s[4][39];
	static int k;

	k = (k + 1) % 4;
	vhdx_guid_str(g, s[k]);
	return s[k];
}

/* Little-endian 64-bit value of 8 bytes. */
static uint64_t vx_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Block-state name of a payload BAT state. */
static const char *vx_pb_name(int st)
{
	switch (st) {
	case VHDX_PB_NOT_PRESENT: return "not-present";
	case VHDX_PB_UNDEFINED: return "undefined";
	case VHDX_PB_ZERO: return "zero";
	case VHDX_PB_UNMAPPED: return "unmapped";
	case VHDX_PB_FULLY_PRESENT: return "fully-present";
	case VHDX_PB_PARTIALLY_PRESENT: return "partially-present";
	default: return "invalid";
	}
}

/* Kind of an image: fixed (leave-allocated), differencing or dynamic. */
static const char *vx_kind(const struct vhdx *v)
{
	return v->has_parent ? "differencing" : v->leave_allocated ? "fixed" : "dynamic";
}

/* Log state: "empty", "replayed-in-memory", "replayed-into-file" or "torn-ignored". */
static const char *vx_log_state(const struct vhdx *v)
{
	if (v->state & VHDX_ST_LOG_OVERLAY)
		return "replayable (replayed in memory only)";
	if (v->state & VHDX_ST_LOG_REPLAYED)
		return "replayed into the file";
	if (v->state & VHDX_ST_LOG_IGNORED)
		return "torn (no valid entry sequence; ignored)";
	return "empty";
}

/* Emit one image's fields (the leaf of info). */
static void vx_info_image(struct out *o, struct vxc_member *m)
{
	struct vhdx *v = &m->v;
	static const char *const keys[VHDX_LOC_PATHS] = { "relative_path", "volume_path", "absolute_win32_path" };
	char s[VHDX_PATH_MAX + 64];

	out_str(o, "path", m->path);
	out_str(o, "format", "vhdx");
	out_u64(o, "file_size", m->hd.dev.size_bytes);
	out_str(o, "type", vx_kind(v));
	out_u64(o, "virtual_size", v->vsize);

	out_begin(o, "headers", 1);
	for (int i = 0; i < 2; i++) {
		uint8_t h[16];
		memset(h, 0, sizeof(h));
		hostdev_pread_full(m->hd.fd, h, sizeof(h), i ? 128u << 10 : 64u << 10);
		out_begin(o, NULL, 0);
		out_u64(o, "copy", (uint64_t)i);
		out_hex(o, "offset", i ? 128u << 10 : 64u << 10, 8);
		out_bool(o, "valid", v->hdr_err[i] == 0);
		if (v->hdr_err[i])
			out_str(o, "error", vhdx_errname(v->hdr_err[i]));
		else
			out_null(o, "error");
		out_u64(o, "sequence_number", vx_le64(h + 8));
		out_bool(o, "current", v->cur == i);
		out_end(o);
	}
	out_end(o);
	out_begin(o, "current_header", 0);
	out_u64(o, "copy", (uint64_t)v->cur);
	out_u64(o, "sequence_number", v->hdr.seq);
	out_hex(o, "checksum", v->hdr.checksum, 8);
	out_str(o, "file_write_guid", vx_g(&v->hdr.file_write));
	out_str(o, "data_write_guid", vx_g(&v->hdr.data_write));
	out_str(o, "log_guid", vx_g(&v->hdr.log_guid));
	out_u64(o, "version", v->hdr.version);
	out_u64(o, "log_version", v->hdr.log_version);
	out_hex(o, "log_offset", v->hdr.log_offset, 8);
	out_u64(o, "log_length", v->hdr.log_length);
	out_end(o);

	out_begin(o, "regions", 0);
	out_u64(o, "entries", v->regions);
	out_bool(o, "copy0_valid", v->rt_err[0] == 0);
	out_bool(o, "copy1_valid", v->rt_err[1] == 0);
	out_bool(o, "copies_differ", (v->state & VHDX_ST_REGION_COPIES_DIFFER) != 0);
	out_hex(o, "bat_offset", v->bat_off, 8);
	out_u64(o, "bat_length", v->bat_len);
	out_hex(o, "metadata_offset", v->meta_off, 8);
	out_u64(o, "metadata_length", v->meta_len);
	out_end(o);

	out_begin(o, "log", 0);
	out_str(o, "state", vx_log_state(v));
	out_bool(o, "pending", (v->state & (VHDX_ST_LOG_OVERLAY | VHDX_ST_LOG_REPLAYED)) != 0);
	out_u64(o, "entries_replayed", v->log_replayed);
	out_bool(o, "replayed_in_memory_only", (v->state & VHDX_ST_LOG_OVERLAY) != 0);
	out_bool(o, "torn_entries_ignored", (v->state & VHDX_ST_LOG_IGNORED) != 0);
	out_u64(o, "overlay_bytes", v->log_need);
	out_end(o);

	out_begin(o, "metadata", 0);
	out_u64(o, "items", v->meta_items);
	out_u64(o, "unknown_optional_items", v->meta_unknown);
	out_u64(o, "block_size", v->block_size);
	out_bool(o, "leave_block_allocated", v->leave_allocated);
	out_bool(o, "has_parent", v->has_parent);
	out_hex(o, "file_parameters_flags", v->file_params_flags, 8);
	out_u64(o, "virtual_disk_size", v->vsize);
	out_u64(o, "logical_sector_size", v->lss);
	out_u64(o, "physical_sector_size", v->pss);
	out_str(o, "page83_id", vx_g(&v->page83));
	out_u64(o, "chunk_ratio", v->chunk_ratio);
	out_u64(o, "data_blocks", v->data_blocks);
	out_u64(o, "bat_entries", v->bat_entries);
	out_end(o);

	if (v->has_parent) {
		struct vhdx_parent_info pi;
		int rc = vhdx_parent_info(v, &pi);
		out_begin(o, "parent_locator", 0);
		if (rc) {
			snprintf(s, sizeof(s), "%s (%s)", vhdx_strerror(rc), vhdx_errname(rc));
			out_str(o, "error", s);
		} else {
			out_u64(o, "entries", pi.entries);
			out_u64(o, "unknown_keys", pi.unknown_keys);
			out_str(o, "parent_linkage", vx_g(&pi.linkage));
			if (pi.has_linkage2)
				out_str(o, "parent_linkage2", vx_g(&pi.linkage2));
			else
				out_null(o, "parent_linkage2");
			for (int k = 0; k < VHDX_LOC_PATHS; k++) {
				if (!pi.has_path[k]) {
					out_null(o, keys[k]);
					continue;
				}
				rc = vhdx_locator_path(v, k, s, sizeof(s));
				if (rc)
					snprintf(s, sizeof(s), "(unreadable: %s)", vhdx_errname(rc));
				out_str(o, keys[k], s);
			}
		}
		out_end(o);
	} else {
		out_null(o, "parent_locator");
	}

	if (m->ready) {
		uint64_t cnt[8] = { 0 };
		for (uint64_t b = 0; b < v->data_blocks; b++) {
			int st = vhdx_block_state(v, b * v->spb);
			if (st >= 0 && st < 8)
				cnt[st]++;
		}
		out_begin(o, "blocks", 0);
		for (int st = 0; st < 8; st++)
			if (st != 4 && st != 5)
				out_u64(o, vx_pb_name(st), cnt[st]);
		out_end(o);
		out_u64(o, "allocated_bytes", (cnt[VHDX_PB_FULLY_PRESENT] + cnt[VHDX_PB_PARTIALLY_PRESENT]) * v->block_size);
	}
}

/* info of a VHDX; see vhdtool.h. */
int vx_info(struct out *o, const char *path)
{
	struct vxchain c;
	int rc = vxc_open(&c, path, VXC_RDONLY);

	if (rc && !c.leaf_opened) {
		int code = c.sys_errno ? EXIT_USAGE : 1;
		cmd_fail(code, "%s", c.err_msg);
		vxc_close(&c);
		return code;
	}
	if (o->json)
		putchar('{');
	vx_info_image(o, c.m[0]);
	out_begin(o, "chain", 1);
	for (int i = 0; i < c.n; i++) {
		out_begin(o, NULL, 0);
		out_u64(o, "level", (uint64_t)i);
		out_str(o, "path", c.m[i]->path);
		out_str(o, "type", vx_kind(&c.m[i]->v));
		out_str(o, "data_write_guid", vx_g(&c.m[i]->v.hdr.data_write));
		out_end(o);
	}
	out_end(o);
	if (rc)
		out_str(o, "chain_error", c.err_msg);
	else
		out_null(o, "chain_error");
	if (o->json)
		printf("\n}\n");
	fflush(stdout);
	if (rc)
		cmd_fail(1, "%s", c.err_msg);
	vxc_close(&c);
	return rc ? 1 : 0;
}

/* State of one VHDX check run. */
struct vx_check_ctx {
	const char *path;
	int defects;
	struct out *o;
};

/* Print one finding (text line, or a JSON object) and count it. */
static void vx_check_emit(struct vx_check_ctx *x, const char *name, const char *msg, const char *d)
{
	x->defects++;
	if (x->o) {
		out_begin(x->o, NULL, 0);
		out_str(x->o, "image", x->path);
		out_str(x->o, "check", name);
		out_str(x->o, "severity", "defect");
		out_str(x->o, "message", msg);
		out_str(x->o, "details", d);
		out_end(x->o);
		return;
	}
	printf("%s: %s: %s%s%s\n", x->path, name, msg, d[0] ? ": " : "", d);
}

/* vhdx_check report: one finding with its details. */
static void vx_check_report(void *ctx, int code, uint64_t a, uint64_t b)
{
	char d[160];

	switch (code) {
	case VHDX_C_HEADER_COPY_BAD:
	case VHDX_C_REGION_COPY_BAD:
		snprintf(d, sizeof(d), "copy %llu: %s (%s)", (unsigned long long)a, vhdx_strerror((int)b), vhdx_errname((int)b));
		break;
	case VHDX_C_HEADER_RESERVED:
		snprintf(d, sizeof(d), "copy %llu", (unsigned long long)a);
		break;
	case VHDX_C_LOG_PENDING:
		snprintf(d, sizeof(d), "%llu entries (replayed in memory for this check; the file is unchanged)",
		         (unsigned long long)a);
		break;
	case VHDX_C_BAT_RESERVED:
	case VHDX_C_SB_IN_NON_DIFF:
	case VHDX_C_BAT_PAD_USED:
		snprintf(d, sizeof(d), "BAT entry %llu = 0x%016llx", (unsigned long long)a, (unsigned long long)b);
		break;
	case VHDX_C_FIXED_NOT_ALLOCATED:
		snprintf(d, sizeof(d), "block %llu is %s", (unsigned long long)a, vx_pb_name((int)b));
		break;
	case VHDX_C_FILE_PARAMS_RESERVED:
		snprintf(d, sizeof(d), "flags 0x%llx", (unsigned long long)a);
		break;
	case VHDX_C_META_UNKNOWN:
	case VHDX_C_LOCATOR_UNKNOWN_KEY:
		snprintf(d, sizeof(d), "%llu", (unsigned long long)a);
		break;
	default:
		d[0] = 0;
	}
	vx_check_emit(ctx, vhdx_check_name(code), vhdx_check_msg(code), d);
}

/* End a check: JSON tail or the summary line; returns status. */
static int vx_check_finish(struct vx_check_ctx *x, struct out *o, int status)
{
	if (o->json) {
		out_end(o);
		out_u64(o, "defects", (uint64_t)x->defects);
		out_u64(o, "leaks", 0);
		out_u64(o, "notes", 0);
		out_u64(o, "status", (uint64_t)status);
		printf("\n}\n");
	} else if (status == 0) {
		printf("%s: no defects found\n", x->path);
	}
	fflush(stdout);
	return status;
}

/* check of a VHDX; see vhdtool.h. */
int vx_check(const char *path, int json)
{
	struct vx_check_ctx x;
	struct out o;
	struct vxchain c;
	int rc;

	memset(&o, 0, sizeof(o));
	memset(&x, 0, sizeof(x));
	x.path = path;
	o.json = json;
	if (json) {
		putchar('{');
		out_str(&o, "image", path);
		out_str(&o, "format", "vhdx");
		out_begin(&o, "findings", 1);
		x.o = &o;
	}
	rc = vxc_open(&c, path, VXC_RDONLY | VXC_LENIENT);
	if (!c.leaf_opened || !c.m[0]->ready) {
		if (c.sys_errno) {
			vx_check_finish(&x, &o, EXIT_USAGE);
			rc = cmd_fail(EXIT_USAGE, "%s", c.err_msg);
			vxc_close(&c);
			return rc;
		}
		vx_check_emit(&x, vhdx_errname(rc), vhdx_strerror(rc), "the image does not open");
		vx_check_finish(&x, &o, EXIT_USAGE);
		cmd_fail(EXIT_USAGE, "%s (unusable)", c.err_msg);
		vxc_close(&c);
		return EXIT_USAGE;
	}
	for (int i = 0; i < c.n; i++) {
		struct vxc_member *m = c.m[i];
		uint64_t *scratch;
		int n;
		if (!m->ready)
			continue;
		scratch = malloc(vhdx_bat_bytes(&m->v) + 8);
		if (!scratch) {
			vxc_close(&c);
			return cmd_fail(EXIT_USAGE, "%s: out of memory", m->path);
		}
		x.path = m->path;
		n = vhdx_check(&m->v, scratch, vx_check_report, &x);
		free(scratch);
		if (n == -VHDX_E_IO) {
			rc = cmd_fail(EXIT_USAGE, "%s: read failed: %s", m->path,
			              m->hd.last_errno ? strerror(m->hd.last_errno) : vhdx_strerror(VHDX_E_IO));
			vxc_close(&c);
			return rc;
		}
		if (n < 0)
			vx_check_emit(&x, vhdx_errname(-n), vhdx_strerror(-n), "");
	}
	x.path = path;
	if (rc)
		vx_check_emit(&x, vhdx_errname(rc), c.err_msg, "");
	vxc_close(&c);
	rc = vx_check_finish(&x, &o, x.defects ? EXIT_DEFECTS : 0);
	if (rc == EXIT_DEFECTS)
		cmd_fail(EXIT_DEFECTS, "%s: %d defect%s found", path, x.defects, x.defects == 1 ? "" : "s");
	return rc;
}

/* One extent of a VHDX file for the map. */
struct vx_ext {
	uint64_t s, e;          /* bytes [s, e) */
	const char *kind;
	uint64_t first, last;   /* block run (kind "blocks"/"sector-bitmap") */
	int st;
};

/* qsort order: by start. */
static int vx_ext_cmp(const void *a, const void *b)
{
	const struct vx_ext *x = a, *y = b;

	return x->s < y->s ? -1 : x->s > y->s;
}

/* Print one member's layout: structures, block runs (consecutive in the file and virtual disk), gaps. */
static int vx_map_member(struct vxc_member *m)
{
	struct vhdx *v = &m->v;
	size_t cap = 8 + 2 * (size_t)v->bat_entries, n = 0;
	struct vx_ext *x = malloc(cap * sizeof(*x));
	uint64_t cnt = 0, prev = 0, cr1 = v->chunk_ratio + 1ull;

	if (!x)
		return cmd_fail(1, "out of memory");
	x[n++] = (struct vx_ext){ 0, 64u << 10, "file-identifier", 0, 0, 0 };
	x[n++] = (struct vx_ext){ 64u << 10, 128u << 10, v->cur == 0 ? "header (current)" : "header", 0, 0, 0 };
	x[n++] = (struct vx_ext){ 128u << 10, 192u << 10, v->cur == 1 ? "header (current)" : "header", 0, 0, 0 };
	x[n++] = (struct vx_ext){ 192u << 10, 256u << 10, "region-table", 0, 0, 0 };
	x[n++] = (struct vx_ext){ 256u << 10, 320u << 10, "region-table-copy", 0, 0, 0 };
	if (v->hdr.log_length)
		x[n++] = (struct vx_ext){ v->hdr.log_offset, v->hdr.log_offset + v->hdr.log_length, "log", 0, 0, 0 };
	x[n++] = (struct vx_ext){ v->meta_off, v->meta_off + v->meta_len, "metadata", 0, 0, 0 };
	x[n++] = (struct vx_ext){ v->bat_off, v->bat_off + v->bat_len, "bat", 0, 0, 0 };
	for (uint64_t i = 0; i < v->bat_entries; i++) {
		uint64_t e = v->bat[i], off = vhdx_bat_mb(e) << 20;
		int sb = i % cr1 == v->chunk_ratio, st = (int)vhdx_bat_state(e);
		uint64_t blk = sb ? i / cr1 : i - i / cr1;
		if (!off || (sb ? st != VHDX_SB_PRESENT : (st != VHDX_PB_FULLY_PRESENT && st != VHDX_PB_PARTIALLY_PRESENT &&
		                                          st != VHDX_PB_ZERO && st != VHDX_PB_UNMAPPED && st != VHDX_PB_UNDEFINED)))
			continue;
		if (!sb)
			cnt++;
		uint64_t len = sb ? VHDX_MIB : v->block_size;
		const char *kind = sb ? "sector-bitmap" : vx_pb_name(st);
		if (n > 8 && x[n - 1].e == off && x[n - 1].kind == kind && x[n - 1].last + 1 == blk) {
			x[n - 1].e += len;
			x[n - 1].last = blk;
			continue;
		}
		x[n++] = (struct vx_ext){ off, off + len, kind, blk, blk, st };
	}
	qsort(x, n, sizeof(*x), vx_ext_cmp);
	printf("%s: vhdx %s, %llu sectors, block size %u, %llu blocks, %llu with file space\n", m->path, vx_kind(v),
	       (unsigned long long)v->sectors, v->block_size, (unsigned long long)v->data_blocks, (unsigned long long)cnt);
	for (size_t k = 0; k < n; k++) {
		if (x[k].s > prev)
			printf("  bytes 0x%llx-0x%llx: unused\n", (unsigned long long)prev, (unsigned long long)(x[k].s - 1));
		if (x[k].first != x[k].last || !strcmp(x[k].kind, "sector-bitmap") || x[k].st)
			printf("  bytes 0x%llx-0x%llx: %s %s %llu-%llu\n", (unsigned long long)x[k].s,
			       (unsigned long long)(x[k].e - 1), x[k].kind,
			       strcmp(x[k].kind, "sector-bitmap") ? "blocks" : "chunks", (unsigned long long)x[k].first,
			       (unsigned long long)x[k].last);
		else
			printf("  bytes 0x%llx-0x%llx: %s\n", (unsigned long long)x[k].s, (unsigned long long)(x[k].e - 1),
			       x[k].kind);
		if (x[k].e > prev)
			prev = x[k].e;
	}
	if (m->hd.dev.size_bytes > prev)
		printf("  bytes 0x%llx-0x%llx: unused\n", (unsigned long long)prev,
		       (unsigned long long)(m->hd.dev.size_bytes - 1));
	free(x);
	return 0;
}

/* map of a VHDX; see vhdtool.h. */
int vx_map(const char *path)
{
	struct vxchain c;
	int rc = img_open_vhdx(&c, path, VXC_RDONLY);

	if (rc)
		return rc;
	for (int i = 0; i < c.n && !rc; i++)
		rc = vx_map_member(c.m[i]);
	vxc_close(&c);
	return rc;
}

/* create a VHDX; see vhdtool.h. */
int vx_create(int type, uint64_t size, uint32_t block, uint32_t log, const char *parent, const char *out, int force)
{
	struct vhdx_create_opts o;
	struct vxchain pc;
	struct hostdev hd;
	char absp[PATH_MAX], rel[PATH_MAX * 2];
	int rc;

	memset(&o, 0, sizeof(o));
	memset(&pc, 0, sizeof(pc));
	o.type = type;
	o.size = size;
	o.block_size = block;
	o.log_size = log;
	if (vxc_random_guid(&o.file_write) || vxc_random_guid(&o.data_write) || vxc_random_guid(&o.page83))
		return cmd_fail(1, "getrandom: %s", strerror(errno));
	if (parent) {
		/* The parent is opened with its own chain: a child of a broken chain is refused now, not at first read. */
		if ((rc = img_open_vhdx(&pc, parent, VXC_RDONLY)))
			return rc;
		o.parent = vxc_leaf(&pc);
		if ((rc = cmd_parent_paths(out, parent, absp, rel, sizeof(rel))))
			goto done;
		o.relative_path = rel;
		o.absolute_win32_path = absp;
		if (cmd_same_inode(out, parent)) {
			rc = cmd_fail(EXIT_USAGE, "%s: the child cannot be its own parent", out);
			goto done;
		}
	}
	if (hostdev_open(&hd, out, HOSTDEV_CREATE | (force ? HOSTDEV_TRUNC : HOSTDEV_EXCL)) < 0) {
		rc = cmd_fail(1, "%s: %s", out, errno == EEXIST ? "file exists (use -f to overwrite)" : strerror(errno));
		goto done;
	}
	rc = vhdx_create(&hd.dev, &o);
	if (!rc && hostdev_sync(&hd) < 0)
		rc = VHDX_E_IO, hd.last_errno = errno;
	if (rc) {
		cmd_fail(1, "%s: %s (%s)", out, rc == VHDX_E_IO && hd.last_errno ? strerror(hd.last_errno) : vhdx_strerror(rc),
		         vhdx_errname(rc));
		hostdev_close(&hd);
		unlink(out);
		rc = 1;
		goto done;
	}
	hostdev_close(&hd);
	rc = 0;
done:
	vxc_close(&pc);
	return rc;
}
