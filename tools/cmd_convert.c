/* cmd_convert.c: `vhdtool convert`: copy a raw or VHD virtual disk into raw, fixed or dynamic output. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <strings.h>
#include "vhdtool.h"

#define DST_VHDX 0x100      /* cmd_dst.kind of a VHDX output (beside the VHD disk types) */

/* ------------------------------------------------------------------ convert */

const char convert_usage[] =
"usage: vhdtool convert [-f raw|vhd|vhdx] [-O raw|fixed|dynamic|vhdx-fixed|vhdx-dynamic] [-b BLOCKSIZE]\n"
"                       [--log-size SIZE] [--sync] IN OUT\n"
"\n"
"Copy the virtual disk of IN into OUT (OUT is overwritten).\n"
"  -f FORMAT     input format: raw, vhd or vhdx (default: by content; a file\n"
"                that looks like a damaged VHD, an empty file or a *.vhd file\n"
"                with no VHD structures is refused; -f raw copies any file byte\n"
"                for byte). A differencing VHD or VHDX is flattened through its\n"
"                chain; a VHDX's pending log is replayed in memory only\n"
"  -O FORMAT     output format: raw, fixed or dynamic (VHD), vhdx-fixed or\n"
"                vhdx-dynamic (default: dynamic if OUT ends in .vhd,\n"
"                vhdx-dynamic if it ends in .vhdx, raw otherwise)\n"
"  -b BLOCKSIZE  dynamic output block size: VHD a power of two >= 512 (default\n"
"                2M), VHDX a power of two from 1M to 256M (default 32M)\n"
"  --log-size S  VHDX output log size, a multiple of 1M (default 1M)\n"
"  --sync        fsync OUT before exiting (like cp and qemu-img, the default\n"
"                leaves write-back to the kernel)\n"
"  --ignore-timestamp  accept parents whose time stamp differs\n"
"  --help        this text\n"
"All-zero blocks are not allocated in dynamic output; raw output is sparse.\n"
"A progress bar is drawn on stderr when it is a terminal.\n";

/* The output of a conversion. */
struct cmd_dst {
	int kind;               /* 0 raw, VHD_TYPE_FIXED, VHD_TYPE_DYNAMIC, DST_VHDX */
	int vx_type;            /* DST_VHDX: VHDX_FIXED or VHDX_DYNAMIC */
	struct hostdev hd;
	struct vhd v;
	struct vhdx *x;         /* DST_VHDX: the open output (malloc'd) */
	uint64_t *xbat;
	uint32_t *bat;
	const char *path;
};

/* Write the non-zero granules of buf (len bytes at virtual offset off) to a raw or fixed output. */
static int cmd_dst_write_sparse(struct cmd_dst *d, uint64_t off, const uint8_t *buf, uint32_t len)
{
	uint32_t i = 0;

	while (i < len) {
		uint32_t g, start;
		/* skip zero granules */
		while (i < len) {
			g = len - i < CMD_GRANULE ? len - i : CMD_GRANULE;
			if (!hostdev_is_zero(buf + i, g))
				break;
			i += g;
		}
		if (i >= len)
			break;
		start = i;
		while (i < len) {
			g = len - i < CMD_GRANULE ? len - i : CMD_GRANULE;
			if (hostdev_is_zero(buf + i, g))
				break;
			i += g;
		}
		if (d->kind == 0) {
			if (hostdev_pwrite_full(d->hd.fd, buf + start, i - start, off + start) < 0)
				return cmd_fail(1, "%s: write: %s", d->path, strerror(errno));
		} else if (d->kind == DST_VHDX) {
			int rc = vhdx_write(d->x, (off + start) / VHD_SECTOR, (i - start) / VHD_SECTOR, buf + start);
			if (rc)
				return cmd_fail(1, "%s: write at sector %llu: %s (%s)", d->path,
				                (unsigned long long)((off + start) / VHD_SECTOR),
				                rc == VHDX_E_IO && d->hd.last_errno ? strerror(d->hd.last_errno) : vhdx_strerror(rc),
				                vhdx_errname(rc));
		} else {
			int rc = vhd_write(&d->v, (off + start) / VHD_SECTOR, (i - start) / VHD_SECTOR, buf + start);
			if (rc)
				return cmd_fail(1, "%s: write at sector %llu: %s (%s)", d->path,
				                (unsigned long long)((off + start) / VHD_SECTOR), vhd_strerror(rc),
				                vhd_errname(rc));
		}
	}
	return 0;
}

/*
 * Write one chunk to the output. Every kind only receives the non-zero
 * granules: the library allocates a dynamic block on its first write and
 * zero-fills the rest of it through the device's write_zeroes (holes).
 */
static int cmd_dst_write(struct cmd_dst *d, uint64_t off, const uint8_t *buf, uint32_t len)
{
	return cmd_dst_write_sparse(d, off, buf, len);
}

/* Create the VHDX output on d->hd (size bytes) and open it for writing with a random session; 0 or exit code. */
static int cmd_dst_vhdx_open(struct cmd_dst *d, uint64_t size, uint32_t block_size, uint32_t log_size)
{
	struct vhdx_create_opts o;
	struct vhdx_session sess;
	struct vhdx_open_opts oo;
	int rc;

	memset(&o, 0, sizeof(o));
	o.type = d->vx_type;
	o.size = size;
	o.block_size = block_size;
	o.log_size = log_size;
	if (vxc_random_guid(&o.file_write) || vxc_random_guid(&o.data_write) || vxc_random_guid(&o.page83) ||
	    vxc_random_session(&sess))
		return cmd_fail(1, "getrandom: %s", strerror(errno));
	memset(&oo, 0, sizeof(oo));
	oo.session = &sess;
	d->x = calloc(1, sizeof(*d->x));
	if (!d->x)
		return cmd_fail(1, "out of memory");
	rc = vhdx_create(&d->hd.dev, &o);
	if (!rc)
		rc = vhdx_open(d->x, &d->hd.dev, 0, &oo);
	if (!rc) {
		d->xbat = malloc(vhdx_bat_bytes(d->x) + 8);
		rc = d->xbat ? vhdx_load_bat(d->x, d->xbat) : VHDX_E_IO;
	}
	if (rc)
		return cmd_fail(1, "%s: %s (%s)", d->path, rc == VHDX_E_IO && d->hd.last_errno ? strerror(d->hd.last_errno) :
		                vhdx_strerror(rc), vhdx_errname(rc));
	return 0;
}

/* Nonzero if OUT names the same file as IN or one of IN's chain members. */
static int cmd_same_file(const char *out, struct img_src *s, const char *in)
{
	struct stat so, si;

	if (stat(out, &so) < 0)
		return 0;
	if (s->fmt == IMG_FMT_VHD) {
		for (int i = 0; i < s->c.n; i++)
			if (stat(s->c.m[i]->path, &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
				return 1;
		return 0;
	}
	if (s->fmt == IMG_FMT_VHDX) {
		for (int i = 0; i < s->x.n; i++)
			if (stat(s->x.m[i]->path, &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
				return 1;
		return 0;
	}
	return stat(in, &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino;
}

/* Nonzero when path ends in ".vhd" (any case). */
int cmd_ends_vhd(const char *path)
{
	size_t n = strlen(path);

	return n >= 4 && !strcasecmp(path + n - 4, ".vhd");
}

/* vhdtool convert: copy a raw or VHD (chain) virtual disk into raw, fixed or dynamic output. */
int cmd_convert(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "ignore-timestamp", no_argument, NULL, OPT_IGNORE_TS },
		{ "sync", no_argument, NULL, OPT_SYNC },
		{ "log-size", required_argument, NULL, OPT_LOG_SIZE },
		{ NULL, 0, NULL, 0 },
	};
	const char *out_fmt = NULL, *bs_s = NULL, *in, *out, *log_s = NULL;
	uint64_t log_size = 0;
	int in_fmt = IMG_FMT_AUTO;
	struct progress pg;
	unsigned cflags = CHAIN_RDONLY;
	uint32_t block_size = 0, chunk;
	struct img_src s;
	struct cmd_dst d;
	uint8_t *buf = NULL;
	int opt, rc, created = 0, do_sync = 0;
	struct stat st;

	memset(&s, 0, sizeof(s));
	memset(&pg, 0, sizeof(pg));
	memset(&d, 0, sizeof(d));
	s.fd = -1;
	d.hd.fd = -1;
	while ((opt = getopt_long(argc, argv, ":f:O:b:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			if ((in_fmt = img_fmt_parse(optarg)) < 0)
				return cmd_bad_args("-f must be raw, vhd or vhdx");
			break;
		case 'O': out_fmt = optarg; break;
		case 'b': bs_s = optarg; break;
		case 'h': return cmd_help("convert");
		case OPT_IGNORE_TS: cflags |= CHAIN_IGNORE_TIMESTAMP; break;
		case OPT_SYNC: do_sync = 1; break;
		case OPT_LOG_SIZE: log_s = optarg; break;
		default: return cmd_bad_option(opt, argv);
		}
	}
	if (argc - optind != 2)
		return cmd_bad_args("expected IN and OUT");
	in = argv[optind];
	out = argv[optind + 1];
	if (!out_fmt) {
		size_t ol = strlen(out);
		d.kind = cmd_ends_vhd(out) ? VHD_TYPE_DYNAMIC : 0;
		if (ol >= 5 && !strcasecmp(out + ol - 5, ".vhdx"))
			d.kind = DST_VHDX, d.vx_type = VHDX_DYNAMIC;
	} else if (!strcmp(out_fmt, "vhdx-dynamic") || !strcmp(out_fmt, "vhdx"))
		d.kind = DST_VHDX, d.vx_type = VHDX_DYNAMIC;
	else if (!strcmp(out_fmt, "vhdx-fixed"))
		d.kind = DST_VHDX, d.vx_type = VHDX_FIXED;
	else if (!strcmp(out_fmt, "raw"))
		d.kind = 0;
	else if (!strcmp(out_fmt, "fixed"))
		d.kind = VHD_TYPE_FIXED;
	else if (!strcmp(out_fmt, "dynamic") || !strcmp(out_fmt, "vhd") || !strcmp(out_fmt, "vpc"))
		d.kind = VHD_TYPE_DYNAMIC;
	else
		return cmd_bad_args("-O must be raw, fixed, dynamic, vhdx-fixed or vhdx-dynamic");
	if (log_s && (d.kind != DST_VHDX || cmd_parse_size(log_s, &log_size) || !log_size || log_size % MIB ||
	              log_size > 0xFFFFFFFFull - MIB + 1))
		return cmd_bad_args("--log-size applies to VHDX output: a positive multiple of 1M below 4G");
	if (bs_s && d.kind == DST_VHDX) {
		uint64_t bs;
		if (cmd_parse_size(bs_s, &bs) || bs < VHDX_MIN_BLOCK || bs > VHDX_MAX_BLOCK || !cmd_is_pow2(bs))
			return cmd_fail(EXIT_USAGE, "VHDX block size %s must be a power of two from 1M to 256M", bs_s);
		block_size = (uint32_t)bs;
	} else if (bs_s) {
		uint64_t bs;
		if (d.kind != VHD_TYPE_DYNAMIC)
			return cmd_bad_args("-b applies to dynamic output only");
		if (cmd_parse_size(bs_s, &bs))
			return cmd_bad_args("bad block size (use bytes or a K/M/G suffix)");
		if (bs < VHD_SECTOR || !cmd_is_pow2(bs) || bs > VHD_MAX_BLOCK_SIZE)
			return cmd_fail(EXIT_USAGE, "block size %llu must be a power of two from 512 to %u",
			                (unsigned long long)bs, VHD_MAX_BLOCK_SIZE);
		block_size = (uint32_t)bs;
	}

	/* Input: by -f, or by content (imgfmt.c). */
	if ((rc = img_src_open(&s, in, in_fmt, cflags)))
		return rc;
	if (d.kind == DST_VHDX && (s.size == 0 || s.size > VHDX_MAX_SIZE)) {
		rc = cmd_fail(1, "%s: a VHDX's size must be 512 to %llu bytes, this input has %llu", in,
		              (unsigned long long)VHDX_MAX_SIZE, (unsigned long long)s.size);
		goto done;
	}
	if (d.kind != 0 && d.kind != DST_VHDX && (s.size == 0 || s.size > VHD_MAX_SIZE)) {
		rc = cmd_fail(1, "%s: a VHD's size must be 512 to %llu bytes, this input has %llu", in,
		              (unsigned long long)VHD_MAX_SIZE, (unsigned long long)s.size);
		goto done;
	}
	if (cmd_same_file(out, &s, in)) {
		rc = cmd_fail(EXIT_USAGE, "%s: output is the input (or one of its parents)", out);
		goto done;
	}

	/* Output. */
	d.path = out;
	/*
	 * Replace an existing regular file rather than truncating it: freeing a
	 * large file's blocks under O_TRUNC (and ext4's flush on close after a
	 * truncate-to-zero) costs more than the whole conversion.
	 */
	if (lstat(out, &st) == 0 && S_ISREG(st.st_mode) && unlink(out) < 0) {
		rc = cmd_fail(1, "%s: %s", out, strerror(errno));
		goto done;
	}
	if (hostdev_open(&d.hd, out, HOSTDEV_CREATE | HOSTDEV_TRUNC | HOSTDEV_NOSYNC) < 0) {
		rc = cmd_fail(1, "%s: %s", out, strerror(errno));
		goto done;
	}
	created = 1;
	if (d.kind == DST_VHDX) {
		if ((rc = cmd_dst_vhdx_open(&d, s.size, block_size, (uint32_t)log_size)))
			goto done;
	} else if (d.kind != 0) {
		struct vhd_create_opts o;
		memset(&o, 0, sizeof(o));
		o.type = (uint32_t)d.kind;
		o.size = s.size;
		o.block_size = block_size;
		o.timestamp = cmd_vhd_now();
		if (cmd_random_uuid(o.uuid) < 0) {
			rc = cmd_fail(1, "/dev/urandom: %s", strerror(errno));
			goto done;
		}
		rc = vhd_create(&d.hd.dev, &o);
		if (!rc)
			rc = vhd_open(&d.v, &d.hd.dev, 0);
		if (!rc && vhd_bat_bytes(&d.v)) {
			d.bat = malloc(vhd_bat_bytes(&d.v));
			rc = d.bat ? vhd_load_bat(&d.v, d.bat) : VHD_E_IO;
		}
		if (rc) {
			rc = cmd_fail(1, "%s: %s (%s)", out, vhd_strerror(rc), vhd_errname(rc));
			goto done;
		}
	}

	chunk = CMD_CHUNK;   /* any size works: writes are per non-zero granule, not per block */
	buf = malloc(chunk);
	if (!buf) {
		rc = cmd_fail(1, "out of memory");
		goto done;
	}
	progress_start(&pg, s.size);
	for (uint64_t off = 0; off < s.size; off += chunk) {
		uint32_t len = s.size - off < chunk ? (uint32_t)(s.size - off) : chunk;
		int zero;
		if ((rc = img_src_read(&s, off, len, buf, &zero)))
			goto done;
		if (!zero && (rc = cmd_dst_write(&d, off, buf, len)))
			goto done;
		progress_update(&pg, off + len);
	}
	if (d.kind == 0 && ftruncate(d.hd.fd, (off_t)s.size) < 0) {
		rc = cmd_fail(1, "%s: %s", out, strerror(errno));
		goto done;
	}
	if (d.kind == DST_VHDX && (rc = vhdx_close(d.x))) {
		rc = cmd_fail(1, "%s: close: %s (%s)", out, vhdx_strerror(rc), vhdx_errname(rc));
		goto done;
	}
	if (d.kind != 0 && d.kind != DST_VHDX && (rc = vhd_flush(&d.v))) {
		rc = cmd_fail(1, "%s: flush: %s (%s)", out, vhd_strerror(rc), vhd_errname(rc));
		goto done;
	}
	if (do_sync && hostdev_sync(&d.hd) < 0) {
		rc = cmd_fail(1, "%s: fsync: %s", out, strerror(errno));
		goto done;
	}
	rc = 0;
done:
	progress_end(&pg);
	free(buf);
	free(d.bat);
	free(d.x);
	free(d.xbat);
	hostdev_close(&d.hd);
	if (rc && created)
		unlink(out);
	img_src_close(&s);
	return rc;
}

