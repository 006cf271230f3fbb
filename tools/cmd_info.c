/* cmd_info.c: `vhdtool info`: every footer and header field of an image and its chain, as text or JSON. */
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

/* ------------------------------------------------------------------ info */

const char info_usage[] =
"usage: vhdtool info [-f raw|vhd|vhdx] [--json] [--ignore-timestamp] IMAGE\n"
"\n"
"Show every footer and dynamic-header field of IMAGE: the current size and the\n"
"size derived from the CHS geometry, parent locators with decoded paths, the\n"
"allocated block count, how the image was opened (backup footer, 511-byte\n"
"footer) and, for a differencing image, the members of its chain. For a VHDX:\n"
"both headers (sequence numbers, which is current), the region table, the log\n"
"(empty, entries replayed in memory only, or torn), metadata, the parent\n"
"locator and block states; a pending log is never written to the file.\n"
"  -f FORMAT           raw, vhd or vhdx (default: by content; a raw file shows its size)\n"
"  --json              print the same data as one JSON object\n"
"  --ignore-timestamp  accept parents whose time stamp differs from the child's record\n"
"  --help              this text\n";

/* Name of a parent-locator platform code. */
static const char *cmd_plat_name(uint32_t code)
{
	switch (code) {
	case VHD_PLAT_NONE: return "none";
	case VHD_PLAT_WI2R: return "Wi2r (relative, deprecated)";
	case VHD_PLAT_WI2K: return "Wi2k (absolute, deprecated)";
	case VHD_PLAT_W2RU: return "W2ru (relative, UTF-16)";
	case VHD_PLAT_W2KU: return "W2ku (absolute, UTF-16)";
	case VHD_PLAT_MAC: return "Mac (alias)";
	case VHD_PLAT_MACX: return "MacX (file URL)";
	default: return "unknown";
	}
}

/* Decode locator slot i of an image into text (its stored path) for display. */
static void cmd_locator_text(struct chain_member *m, int i, char *out, size_t n)
{
	const struct vhd_ploc *l = &m->v.header.loc[i];
	int rc;

	if (l->code == VHD_PLAT_MAC) {
		snprintf(out, n, "(Mac alias record, %u bytes)", l->data_len);
		return;
	}
	if (l->code != VHD_PLAT_W2RU && l->code != VHD_PLAT_W2KU && l->code != VHD_PLAT_MACX) {
		snprintf(out, n, "(platform code not decoded)");
		return;
	}
	rc = vhd_locator_path(&m->v, i, out, n);
	if (rc)
		snprintf(out, n, "(unreadable: %s)", vhd_strerror(rc));
}

/* Emit the fields of one member (the leaf) of an image chain. */
static void cmd_info_image(struct out *o, struct chain_member *m)
{
	struct vhd *v = &m->v;
	const struct vhd_footer *f = &v->footer;
	char s[VHD_PATH_MAX * 2], t[32];
	uint64_t chs = (uint64_t)f->cylinders * f->heads * f->spt * VHD_SECTOR;

	out_str(o, "path", m->path);
	out_str(o, "format", "vhd");
	out_u64(o, "file_size", m->hd.dev.size_bytes);
	out_str(o, "type", cmd_type_name(f->type));
	out_u64(o, "virtual_size", f->cur_size);

	out_begin(o, "state", 0);
	out_bool(o, "opened_from_backup_footer", (v->state & VHD_ST_BACKUP_FOOTER) != 0);
	if (v->state & (VHD_ST_BACKUP_FOOTER | VHD_ST_END_FOOTER_BAD)) {
		snprintf(s, sizeof(s), "end footer rejected: %s (%s)", vhd_strerror(v->end_footer_err),
		         vhd_errname(v->end_footer_err));
		out_str(o, "backup_footer_reason", s);
		out_str(o, "end_footer_error", vhd_errname(v->end_footer_err));
	} else {
		out_null(o, "backup_footer_reason");
		out_null(o, "end_footer_error");
	}
	out_bool(o, "short_footer_511_bytes", (v->state & VHD_ST_SHORT_FOOTER) != 0);
	out_u64(o, "footer_offset", v->footer_pos);
	out_end(o);

	out_begin(o, "footer", 0);
	snprintf(s, sizeof(s), "%.8s", (const char *)v->footer_raw);
	cmd_bytes_to_text((const uint8_t *)s, strlen(s), s, sizeof(s));
	out_str(o, "cookie", s);
	out_hex(o, "features", f->features, 8);
	snprintf(s, sizeof(s), "%s%s%s", (f->features & VHD_FEAT_RESERVED) ? "reserved" : "",
	         (f->features & VHD_FEAT_TEMPORARY) ? ((f->features & VHD_FEAT_RESERVED) ? ", temporary" : "temporary") : "",
	         (f->features & ~3u) ? " + unknown bits" : "");
	out_str(o, "features_names", s);
	out_hex(o, "version", f->version, 8);
	snprintf(s, sizeof(s), "%u.%u", f->version >> 16, f->version & 0xffff);
	out_str(o, "version_str", s);
	out_hex(o, "data_offset", f->data_offset, 16);
	out_u64(o, "timestamp", f->timestamp);
	chain_time_str(f->timestamp, t);
	out_str(o, "timestamp_iso", t);
	out_str(o, "creator_app", f->creator_app);
	out_hex(o, "creator_version", f->creator_ver, 8);
	snprintf(s, sizeof(s), "%u.%u", f->creator_ver >> 16, f->creator_ver & 0xffff);
	out_str(o, "creator_version_str", s);
	cmd_fourcc(f->creator_os, t);
	out_str(o, "creator_os", t);
	out_hex(o, "creator_os_code", f->creator_os, 8);
	out_u64(o, "original_size", f->orig_size);
	out_u64(o, "current_size", f->cur_size);
	out_begin(o, "geometry", 0);
	out_u64(o, "cylinders", f->cylinders);
	out_u64(o, "heads", f->heads);
	out_u64(o, "sectors_per_track", f->spt);
	out_end(o);
	out_u64(o, "chs_size", chs);
	out_u64(o, "disk_type", f->type);
	out_str(o, "disk_type_name", cmd_type_name(f->type));
	out_hex(o, "checksum", f->checksum, 8);
	out_bool(o, "checksum_valid", vhd_checksum(v->footer_raw, 512, 64) == f->checksum);
	chain_uuid_str(f->uuid, s);
	out_str(o, "uuid", s);
	out_u64(o, "saved_state", f->saved_state);
	out_end(o);

	if (f->type == VHD_TYPE_DYNAMIC || f->type == VHD_TYPE_DIFF) {
		const struct vhd_header *h = &v->header;
		uint8_t raw[1024];
		uint64_t alloc = 0;
		int nloc = 0;

		memset(raw, 0, sizeof(raw));
		hostdev_pread_full(m->hd.fd, raw, sizeof(raw), f->data_offset);
		out_begin(o, "header", 0);
		snprintf(s, sizeof(s), "%.8s", (const char *)raw);
		cmd_bytes_to_text((const uint8_t *)s, strlen(s), s, sizeof(s));
		out_str(o, "cookie", s);
		out_hex(o, "data_offset", h->data_offset, 16);
		out_hex(o, "table_offset", h->table_offset, 16);
		out_hex(o, "version", h->version, 8);
		snprintf(s, sizeof(s), "%u.%u", h->version >> 16, h->version & 0xffff);
		out_str(o, "version_str", s);
		out_u64(o, "max_table_entries", h->max_entries);
		out_u64(o, "block_size", h->block_size);
		out_hex(o, "checksum", h->checksum, 8);
		out_bool(o, "checksum_valid", vhd_checksum(raw, 1024, 36) == h->checksum);
		chain_uuid_str(h->parent_uuid, s);
		out_str(o, "parent_uuid", s);
		out_u64(o, "parent_timestamp", h->parent_timestamp);
		chain_time_str(h->parent_timestamp, t);
		out_str(o, "parent_timestamp_iso", t);
		if (vhd_parent_name(v, s, sizeof(s)))
			s[0] = 0;
		out_str(o, "parent_name", s);
		out_begin(o, "locators", 1);
		for (int i = 0; i < 8; i++) {
			const struct vhd_ploc *l = &h->loc[i];
			if (!l->code && !l->data_len && !l->data_offset && !l->data_space)
				continue;
			nloc++;
			out_begin(o, NULL, 0);
			out_u64(o, "index", (uint64_t)i);
			cmd_fourcc(l->code, t);
			out_str(o, "code", t);
			out_str(o, "code_name", cmd_plat_name(l->code));
			out_u64(o, "data_space", l->data_space);
			out_u64(o, "data_length", l->data_len);
			out_hex(o, "data_offset", l->data_offset, 8);
			cmd_locator_text(m, i, s, sizeof(s));
			out_str(o, "path", s);
			out_end(o);
		}
		if (!nloc && !o->json)
			printf("%*s(none)\n", 2 * o->depth, "");
		out_end(o);
		out_end(o);
		for (uint32_t i = 0; v->bat && i < h->max_entries; i++)
			alloc += v->bat[i] != VHD_BAT_FREE;
		out_u64(o, "blocks", v->blocks);
		out_u64(o, "allocated_blocks", alloc);
		out_u64(o, "allocated_bytes", alloc * h->block_size);
	} else {
		out_null(o, "header");
		out_u64(o, "blocks", 0);
		out_u64(o, "allocated_blocks", 0);
		out_u64(o, "allocated_bytes", f->cur_size);
	}
}

/* info of a file read as raw: its format and size. */
static int cmd_info_raw(struct out *o, const char *path)
{
	struct img_src s;
	int rc = img_src_open(&s, path, IMG_FMT_RAW, 0);

	if (rc)
		return rc;
	if (o->json)
		putchar('{');
	out_str(o, "path", path);
	out_str(o, "format", "raw");
	out_u64(o, "file_size", s.size);
	out_u64(o, "virtual_size", s.size);
	if (o->json)
		printf("\n}\n");
	img_src_close(&s);
	return 0;
}

/* vhdtool info: every field of an image and its chain. */
int cmd_info(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "ignore-timestamp", no_argument, NULL, OPT_IGNORE_TS },
		{ NULL, 0, NULL, 0 },
	};
	struct out o;
	struct chain c;
	unsigned flags = CHAIN_RDONLY;
	int opt, rc, fmt = IMG_FMT_AUTO;
	char u[37];

	memset(&o, 0, sizeof(o));
	while ((opt = getopt_long(argc, argv, ":f:h", lopts, NULL)) != -1) {
		switch (opt) {
		case OPT_JSON: o.json = 1; break;
		default:
			if (cmd_opt_shared(opt, argv, "info", &fmt, NULL, &flags, &rc))
				return rc;
		}
	}
	if (argc - optind != 1)
		return cmd_bad_args("expected exactly one IMAGE");
	if (fmt == IMG_FMT_AUTO) {
		char why[1024];
		int e;
		fmt = img_detect(argv[optind], why, sizeof(why), &e);
		if (fmt < 0)
			return cmd_fail(e ? EXIT_USAGE : 1, "%s", why);
	}
	if (fmt == IMG_FMT_RAW)
		return cmd_info_raw(&o, argv[optind]);
	if (fmt == IMG_FMT_VHDX)
		return vx_info(&o, argv[optind]);
	rc = chain_open(&c, argv[optind], flags);
	if (rc && c.n == 0) {
		cmd_fail(c.sys_errno ? EXIT_USAGE : 1, "%s", c.err);
		return c.sys_errno ? EXIT_USAGE : 1;
	}
	if (o.json)
		putchar('{');
	cmd_info_image(&o, c.m[0]);
	out_begin(&o, "chain", 1);
	for (int i = 0; i < c.n; i++) {
		out_begin(&o, NULL, 0);
		out_u64(&o, "level", (uint64_t)i);
		out_str(&o, "path", c.m[i]->path);
		out_str(&o, "type", cmd_type_name(c.m[i]->v.footer.type));
		chain_uuid_str(c.m[i]->v.footer.uuid, u);
		out_str(&o, "uuid", u);
		out_end(&o);
	}
	out_end(&o);
	if (rc)
		out_str(&o, "chain_error", c.err);
	else
		out_null(&o, "chain_error");
	if (o.json)
		printf("\n}\n");
	fflush(stdout);
	if (rc)
		cmd_fail(1, "%s", c.err);
	chain_close(&c);
	return rc ? 1 : 0;
}

