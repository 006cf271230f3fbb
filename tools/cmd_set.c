/* cmd_set.c: `vhdtool set`: change footer and header fields in place (unique id, time stamp, creator, geometry, saved state, parent links); checksums recomputed. */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vhdtool.h"
#include "../vhd/vhd_util.h"   /* vhd_put16/32, vhd_be32 */

const char set_usage[] =
"usage: vhdtool set [-f vhd|vhdx] [--sync] IMAGE FIELD=VALUE...\n"
"\n"
"Change fields of IMAGE in place; both footer copies and the header get their\n"
"checksums recomputed. Fields:\n"
"  uuid=UUID|random          the footer's unique id (children of IMAGE record\n"
"                            it: changing it detaches them)\n"
"  timestamp=SECONDS|now     the footer's time stamp (VHD seconds since\n"
"                            2000-01-01 UTC; children record it too)\n"
"  creator-app=TEXT          up to 4 characters (padded with spaces)\n"
"  creator-version=MAJ.MIN   creator version\n"
"  creator-os=TEXT           up to 4 characters (\"Wi2k\", \"Mac \")\n"
"  geometry=C/H/S            cylinders (<= 65535), heads and sectors per track\n"
"                            (<= 255)\n"
"  saved-state=0|1           the saved-state flag\n"
"  parent-uuid=UUID          (differencing) the parent's id the child expects\n"
"  parent-timestamp=SECONDS  (differencing) the parent's time stamp it expects\n"
"  parent-name=NAME          (differencing) the header's parent file name\n"
"  w2ru=PATH, w2ku=PATH      (differencing) relative / absolute parent locator\n"
"  -f FORMAT  vhd or vhdx (default: by content)\n"
"  --sync     fsync after each step; default: one fsync at the end\n"
"  --help     this text\n"
"Crash-safe order: new locator data is appended after the last block (footer\n"
"moved first), then the header is written (one write), then the end footer,\n"
"then its copy at 0.\n"
"VHDX fields (one log entry; the FileWriteGuid changes, the DataWriteGuid not):\n"
"  page83=GUID|random        the page 83 (SCSI) id\n"
"  parent_linkage=GUID, parent_linkage2=GUID|''  (differencing) linkage GUIDs\n"
"  relative_path=P, volume_path=P, absolute_win32_path=P  (differencing)\n"
"                            locator paths ('/' stored as '\\'); empty removes\n"
"                            one (one path must remain)\n";

/* Parse 8-4-4-4-12 hex into u; 0 on success. */
static int set_parse_uuid(const char *s, uint8_t u[16])
{
	int n = 0;

	for (const char *p = s; *p; p++) {
		int hi, lo;
		if (*p == '-')
			continue;
		if (n == 16 || !isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]))
			return -1;
		hi = isdigit((unsigned char)p[0]) ? p[0] - '0' : (tolower((unsigned char)p[0]) - 'a' + 10);
		lo = isdigit((unsigned char)p[1]) ? p[1] - '0' : (tolower((unsigned char)p[1]) - 'a' + 10);
		u[n++] = (uint8_t)(hi << 4 | lo);
		p++;
	}
	return n == 16 ? 0 : -1;
}

/* A four-character field from text (padded with spaces); 0 on success. */
static int set_fourcc(const char *s, uint8_t out[4])
{
	size_t n = strlen(s);

	if (n == 0 || n > 4)
		return -1;
	for (size_t i = 0; i < 4; i++)
		out[i] = i < n ? (uint8_t)s[i] : ' ';
	return 0;
}

/* A 32-bit number or "now" (time stamps); 0 on success. */
static int set_u32(const char *s, uint32_t *out, int allow_now)
{
	uint64_t v;

	if (allow_now && !strcmp(s, "now")) {
		*out = cmd_vhd_now();
		return 0;
	}
	if (cmd_parse_u64(s, &v) || v > 0xFFFFFFFFull)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* vhdtool set: fields in place. */
int cmd_set(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "sync", no_argument, NULL, OPT_SYNC },
		{ NULL, 0, NULL, 0 },
	};
	int opt, rc, fmt = IMG_FMT_AUTO, do_sync = 0, foot_dirty = 0, hdr_dirty = 0, diff;
	struct chain c;
	struct vhd *v;
	struct hostdev *hd;
	uint8_t foot[512], hdr[1024];
	const char *path;

	while ((opt = getopt_long(argc, argv, "+:f:h", lopts, NULL)) != -1) {
		if (cmd_opt_shared(opt, argv, "set", &fmt, &do_sync, NULL, &rc))
			return rc;
	}
	if (argc - optind < 2)
		return cmd_bad_args("expected IMAGE and at least one FIELD=VALUE");
	path = argv[optind];
	/* Parse every assignment before opening anything: a typo changes nothing. */
	for (int i = optind + 1; i < argc; i++)
		if (!strchr(argv[i], '='))
			return cmd_bad_args("each change is FIELD=VALUE");
	if (img_is_vhdx(path, fmt))
		return vx_set(path, argc - optind - 1, argv + optind + 1, do_sync);
	if ((rc = edit_open(&c, path, fmt, do_sync, EDIT_ALLOW_SAVED_STATE)))
		return rc;
	v = chain_leaf(&c);
	hd = &c.m[0]->hd;
	diff = v->footer.type == VHD_TYPE_DIFF;
	memcpy(foot, v->footer_raw, 512);
	foot[511] = 0;
	if (v->footer.type != VHD_TYPE_FIXED && (rc = edit_read_header(v, hdr))) {
		rc = cmd_fail(1, "%s: reading the header: %s", path, edit_strerror(rc, hd));
		goto out;
	}
	/* Pass 1: footer and header fields (in memory); locators are written in pass 2. */
	for (int i = optind + 1; i < argc; i++) {
		char field[64];
		const char *val = strchr(argv[i], '=') + 1;
		size_t fl = (size_t)(val - 1 - argv[i]);
		uint32_t u32;
		uint8_t u[16];

		snprintf(field, sizeof(field), "%.*s", (int)(fl < sizeof(field) ? fl : sizeof(field) - 1), argv[i]);
		if (!strcmp(field, "uuid")) {
			if (!strcmp(val, "random") ? cmd_random_uuid(u) : set_parse_uuid(val, u))
				goto bad_value;
			memcpy(foot + 68, u, 16);
			foot_dirty = 1;
		} else if (!strcmp(field, "timestamp")) {
			if (set_u32(val, &u32, 1))
				goto bad_value;
			vhd_put32(foot + 24, u32);
			foot_dirty = 1;
		} else if (!strcmp(field, "creator-app")) {
			if (set_fourcc(val, foot + 28))
				goto bad_value;
			foot_dirty = 1;
		} else if (!strcmp(field, "creator-version")) {
			unsigned maj, min;
			char end;
			if (sscanf(val, "%u.%u%c", &maj, &min, &end) != 2 || maj > 0xFFFF || min > 0xFFFF)
				goto bad_value;
			vhd_put32(foot + 32, maj << 16 | min);
			foot_dirty = 1;
		} else if (!strcmp(field, "creator-os")) {
			if (set_fourcc(val, foot + 36))
				goto bad_value;
			foot_dirty = 1;
		} else if (!strcmp(field, "geometry")) {
			unsigned cy, he, se;
			char end;
			if (sscanf(val, "%u/%u/%u%c", &cy, &he, &se, &end) != 3 || cy > 65535 || he > 255 || se > 255)
				goto bad_value;
			vhd_put16(foot + 56, (uint16_t)cy);
			foot[58] = (uint8_t)he;
			foot[59] = (uint8_t)se;
			foot_dirty = 1;
		} else if (!strcmp(field, "saved-state")) {
			if (strcmp(val, "0") && strcmp(val, "1"))
				goto bad_value;
			foot[84] = (uint8_t)(val[0] - '0');
			foot_dirty = 1;
		} else if (!strcmp(field, "parent-uuid") || !strcmp(field, "parent-timestamp") ||
		           !strcmp(field, "parent-name") || !strcmp(field, "w2ru") || !strcmp(field, "w2ku")) {
			if (!diff) {
				rc = cmd_fail(1, "%s is a %s image: %s applies to differencing images only", path,
				              cmd_type_name(v->footer.type), field);
				goto out;
			}
			if (!strcmp(field, "parent-uuid")) {
				if (set_parse_uuid(val, u))
					goto bad_value;
				memcpy(hdr + 40, u, 16);
			} else if (!strcmp(field, "parent-timestamp")) {
				if (set_u32(val, &u32, 0))
					goto bad_value;
				vhd_put32(hdr + 56, u32);
			} else if (!strcmp(field, "parent-name")) {
				if (!*val || edit_parent_name(hdr, val))
					goto bad_value;
			} else if (!*val) {
				goto bad_value;
			}
			hdr_dirty = 1;
		} else {
			rc = cmd_fail(EXIT_USAGE, "unknown field '%s' (see 'vhdtool set --help')", field);
			goto out;
		}
		continue;
bad_value:
		rc = cmd_fail(EXIT_USAGE, "bad value for %s: '%s' (see 'vhdtool set --help')", field, val);
		goto out;
	}
	/* Pass 2: locator data, appended after the last block (leaked space until the header points at it). */
	for (int i = optind + 1; i < argc; i++) {
		int w2ru = !strncmp(argv[i], "w2ru=", 5), w2ku = !strncmp(argv[i], "w2ku=", 5);
		if (!w2ru && !w2ku)
			continue;
		if ((rc = edit_locator(v, hdr, w2ru ? VHD_PLAT_W2RU : VHD_PLAT_W2KU, argv[i] + 5))) {
			rc = cmd_fail(1, "%s: %s: %s (%s)", path, argv[i], edit_strerror(rc, hd), vhd_errname(rc));
			goto out;
		}
	}
	if (hdr_dirty && (rc = edit_write_header(v, hdr))) {
		rc = cmd_fail(1, "%s: writing the header: %s", path, edit_strerror(rc, hd));
		goto out;
	}
	if (foot_dirty) {
		edit_footer_checksum(foot);
		if ((rc = edit_write_footers(v, foot))) {
			rc = cmd_fail(1, "%s: writing the footer: %s", path, edit_strerror(rc, hd));
			goto out;
		}
	}
	if ((rc = cmd_sync(hd, path)))
		goto out;
	printf("%s: %d field%s set\n", path, argc - optind - 1, argc - optind - 1 == 1 ? "" : "s");
	rc = 0;
out:
	chain_close(&c);
	return rc;
}
