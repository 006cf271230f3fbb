/* vhdx_check.c: vhdx_check, every consistency defect of an opened VHDX beyond the open errors, each with its own code. */
#include "vhdx.h"
#include "vhdx_util.h"

/* Nonzero when the reserved bytes (80..4095) of header copy idx are not all zero. */
static int vx_header_reserved(struct vhdx *v, int idx, int *err)
{
	uint64_t off = idx ? (128u << 10) : (64u << 10);
	*err = vx_pread(v, off, VHDX_PAGE, v->page);
	if (*err)
		return 0;
	for (uint32_t i = VX_H_END; i < VHDX_PAGE; i++)
		if (v->page[i])
			return 1;
	return 0;
}

int vhdx_check(struct vhdx *v, uint64_t *scratch, vhdx_report_fn report, void *ctx)
{
	int n = 0, r;
	if (!v->bat)
		return -VHDX_E_BAT_NOT_LOADED;
#define VX_REPORT(c, a, b) do { if (report) report(ctx, (c), (a), (b)); n++; } while (0)
	for (int i = 0; i < 2; i++) {
		if (v->hdr_err[i]) {
			VX_REPORT(VHDX_C_HEADER_COPY_BAD, (uint64_t)i, (uint64_t)v->hdr_err[i]);
			continue;
		}
		if (vx_header_reserved(v, i, &r))
			VX_REPORT(VHDX_C_HEADER_RESERVED, (uint64_t)i, 0);
		if (r)
			return -r;
	}
	for (int i = 0; i < 2; i++)
		if (v->rt_err[i])
			VX_REPORT(VHDX_C_REGION_COPY_BAD, (uint64_t)i, (uint64_t)v->rt_err[i]);
	if (v->state & VHDX_ST_REGION_COPIES_DIFFER)
		VX_REPORT(VHDX_C_REGION_COPIES_DIFFER, 0, 0);
	if (v->state & (VHDX_ST_LOG_REPLAYED | VHDX_ST_LOG_OVERLAY))
		VX_REPORT(VHDX_C_LOG_PENDING, v->log_replayed, 0);
	if (v->state & VHDX_ST_LOG_IGNORED)
		VX_REPORT(VHDX_C_LOG_IGNORED, 0, 0);
	if (v->file_params_flags & ~3u)
		VX_REPORT(VHDX_C_FILE_PARAMS_RESERVED, v->file_params_flags, 0);
	if (v->meta_unknown)
		VX_REPORT(VHDX_C_META_UNKNOWN, v->meta_unknown, 0);
	if (v->has_parent) {
		struct vhdx_parent_info pi;
		r = vhdx_parent_info(v, &pi);
		if (r)
			return -r;
		if (!pi.has_path[0] && !pi.has_path[1] && !pi.has_path[2])
			VX_REPORT(VHDX_C_LOCATOR_NO_PATH, 0, 0);
		if (pi.unknown_keys)
			VX_REPORT(VHDX_C_LOCATOR_UNKNOWN_KEY, pi.unknown_keys, 0);
	}
	uint64_t cr1 = v->chunk_ratio + 1ull;
	for (uint64_t i = 0; i < v->bat_entries; i++) {
		uint64_t e = v->bat[i];
		int sb = i % cr1 == v->chunk_ratio;
		uint64_t blk = i - i / cr1;       /* payload block index of a payload entry */
		unsigned st = vhdx_bat_state(e);
		if (e & 0xFFFF8ull)
			VX_REPORT(VHDX_C_BAT_RESERVED, i, e);
		if (sb) {
			if (st == VHDX_SB_PRESENT && !v->has_parent)
				VX_REPORT(VHDX_C_SB_IN_NON_DIFF, i, e);
		} else if (blk >= v->data_blocks) {
			if (e)
				VX_REPORT(VHDX_C_BAT_PAD_USED, i, e);
			continue;
		} else if (v->leave_allocated && !v->has_parent && st != VHDX_PB_FULLY_PRESENT && st != VHDX_PB_ZERO) {
			VX_REPORT(VHDX_C_FIXED_NOT_ALLOCATED, blk, st);
		}
	}
	r = vhdx_check_overlaps(v, scratch);
	if (r)
		return -r;
#undef VX_REPORT
	return n;
}
