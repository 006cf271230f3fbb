/* cmd_rw.c: `vhdtool read` and `vhdtool write`: sectors of the virtual disk to stdout / from stdin. */
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

/* ------------------------------------------------------------------ read / write */

const char read_usage[] =
"usage: vhdtool read [-f raw|vhd|vhdx] [--ignore-timestamp] IMAGE LBA COUNT\n"
"\n"
"Write COUNT sectors of IMAGE's virtual disk starting at sector LBA to stdout\n"
"(through the differencing chain). LBA and COUNT are decimal or 0x hex.\n"
"  -f FORMAT  raw, vhd or vhdx (default: by content)\n"
"  --help  this text\n";

/* vhdtool read: sectors of the virtual disk to stdout. */
int cmd_read(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "ignore-timestamp", no_argument, NULL, OPT_IGNORE_TS },
		{ NULL, 0, NULL, 0 },
	};
	unsigned flags = CHAIN_RDONLY;
	uint64_t lba, count;
	struct img_src src;
	uint8_t *buf;
	int opt, rc = 0, fmt = IMG_FMT_AUTO;

	while ((opt = getopt_long(argc, argv, ":f:h", lopts, NULL)) != -1) {
		if (cmd_opt_shared(opt, argv, "read", &fmt, NULL, &flags, &rc))
			return rc;
	}
	if (argc - optind != 3)
		return cmd_bad_args("expected IMAGE LBA COUNT");
	if (cmd_parse_u64(argv[optind + 1], &lba))
		return cmd_bad_args("bad LBA");
	if (cmd_parse_u64(argv[optind + 2], &count))
		return cmd_bad_args("bad COUNT");
	if ((rc = img_src_open(&src, argv[optind], fmt, flags)))
		return rc;
	if (lba > src.size / VHD_SECTOR || count > src.size / VHD_SECTOR - lba) {
		rc = cmd_fail(1, "sectors %llu+%llu are past the end of the disk (%llu sectors)",
		              (unsigned long long)lba, (unsigned long long)count, (unsigned long long)(src.size / VHD_SECTOR));
		goto out;
	}
	buf = malloc(CMD_CHUNK);
	if (!buf) {
		rc = cmd_fail(1, "out of memory");
		goto out;
	}
	while (count) {
		uint32_t n = count < CMD_CHUNK / VHD_SECTOR ? (uint32_t)count : CMD_CHUNK / VHD_SECTOR;
		int zero;
		if ((rc = img_src_read(&src, lba * VHD_SECTOR, n * VHD_SECTOR, buf, &zero)))
			break;
		if (zero)
			memset(buf, 0, (size_t)n * VHD_SECTOR);
		if (fwrite(buf, VHD_SECTOR, n, stdout) != n) {
			rc = cmd_fail(1, "stdout: %s", strerror(errno));
			break;
		}
		lba += n;
		count -= n;
	}
	free(buf);
	if (!rc && fflush(stdout) != 0)
		rc = cmd_fail(1, "stdout: %s", strerror(errno));
out:
	img_src_close(&src);
	return rc;
}

const char write_usage[] =
"usage: vhdtool write [-f vhd|vhdx] [--ignore-timestamp] IMAGE LBA < DATA\n"
"\n"
"Write the sectors read from stdin into IMAGE's virtual disk at sector LBA.\n"
"The stdin length must be a multiple of 512 and fit inside the disk; nothing\n"
"is written otherwise. A differencing image takes the writes itself; its\n"
"parents are only read. Raw files are not written (use dd). A VHDX is\n"
"written through vhdx/ in a session with random GUIDs; a pending log is\n"
"replayed into the file first (a note on stderr says so).\n"
"  -f FORMAT  vhd or vhdx (default: by content)\n"
"  --help  this text\n";

/* Read all of stdin (at most limit bytes + 1) into a malloc'd buffer; returns 0 or -1 with errno. */
static int cmd_slurp_stdin(uint8_t **out, size_t *len, uint64_t limit)
{
	size_t cap = 1 * MIB, n = 0;
	uint8_t *b = malloc(cap);

	if (!b)
		return -1;
	for (;;) {
		ssize_t r;
		if (n == cap) {
			uint8_t *nb;
			if (n > limit)
				break;
			cap *= 2;
			nb = realloc(b, cap);
			if (!nb) {
				free(b);
				return -1;
			}
			b = nb;
		}
		r = read(0, b + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			free(b);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*out = b;
	*len = n;
	return 0;
}

/* vhdtool write: sectors from stdin into the virtual disk (through vhd_write). */
int cmd_write(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "ignore-timestamp", no_argument, NULL, OPT_IGNORE_TS },
		{ NULL, 0, NULL, 0 },
	};
	unsigned flags = 0;
	uint64_t lba, room, len = 0;
	struct chain c;
	struct vxchain x;
	struct vhd *v = NULL;
	struct vhdx *xv = NULL;
	uint64_t sectors;
	struct stat st;
	uint8_t *buf = NULL;
	size_t blen = 0;
	int opt, rc = 0, stream, fmt = IMG_FMT_AUTO;

	while ((opt = getopt_long(argc, argv, ":f:h", lopts, NULL)) != -1) {
		if (cmd_opt_shared(opt, argv, "write", &fmt, NULL, &flags, &rc))
			return rc;
	}
	if (argc - optind != 2)
		return cmd_bad_args("expected IMAGE LBA (data on stdin)");
	if (cmd_parse_u64(argv[optind + 1], &lba))
		return cmd_bad_args("bad LBA");
	memset(&c, 0, sizeof(c));
	memset(&x, 0, sizeof(x));
	if (fmt == IMG_FMT_AUTO) {
		char why[1024];
		int e;
		if ((fmt = img_detect(argv[optind], why, sizeof(why), &e)) < 0)
			return cmd_fail(e ? EXIT_USAGE : 1, "%s", why);
		if (fmt == IMG_FMT_RAW)
			fmt = IMG_FMT_AUTO;   /* img_open_vhd words the refusal */
	}
	if (fmt == IMG_FMT_VHDX) {
		if ((rc = img_open_vhdx(&x, argv[optind], 0)))
			return rc;
		xv = vxc_leaf(&x);
		sectors = xv->sectors;
	} else {
		if ((rc = img_open_vhd(&c, argv[optind], fmt, flags)))
			return rc;
		v = chain_leaf(&c);
		sectors = v->sectors;
	}
	if (lba > sectors) {
		rc = cmd_fail(1, "LBA %llu is past the end of the disk (%llu sectors)", (unsigned long long)lba,
		              (unsigned long long)sectors);
		goto out;
	}
	room = (sectors - lba) * VHD_SECTOR;
	/* A regular file on stdin can be validated up front and streamed; anything else is buffered. */
	stream = fstat(0, &st) == 0 && S_ISREG(st.st_mode);
	if (stream) {
		off_t pos = lseek(0, 0, SEEK_CUR);
		len = (uint64_t)st.st_size - (pos > 0 ? (uint64_t)pos : 0);
	} else {
		if (cmd_slurp_stdin(&buf, &blen, room) < 0) {
			rc = cmd_fail(1, "stdin: %s", strerror(errno));
			goto out;
		}
		len = blen;
	}
	if (len % VHD_SECTOR) {
		rc = cmd_fail(1, "stdin length %llu is not a multiple of 512", (unsigned long long)len);
		goto out;
	}
	if (len > room) {
		rc = cmd_fail(1, "%llu sectors at LBA %llu are past the end of the disk (%llu sectors)",
		              (unsigned long long)(len / VHD_SECTOR), (unsigned long long)lba,
		              (unsigned long long)sectors);
		goto out;
	}
	if (stream) {
		buf = malloc(CMD_CHUNK);
		if (!buf) {
			rc = cmd_fail(1, "out of memory");
			goto out;
		}
	}
	for (uint64_t done = 0; done < len;) {
		uint32_t n = len - done < CMD_CHUNK ? (uint32_t)(len - done) : CMD_CHUNK;
		const uint8_t *p = buf + done;
		int e;
		if (stream) {
			ssize_t r = hostdev_pread_full(0, buf, n, (uint64_t)lseek(0, 0, SEEK_CUR));
			if (r != (ssize_t)n) {
				rc = cmd_fail(1, "stdin: %s", r < 0 ? strerror(errno) : "file shrank while reading");
				goto out;
			}
			lseek(0, n, SEEK_CUR);
			p = buf;
		}
		e = xv ? vhdx_write(xv, lba + done / VHD_SECTOR, n / VHD_SECTOR, p) :
		         vhd_write(v, lba + done / VHD_SECTOR, n / VHD_SECTOR, p);
		if (e) {
			rc = cmd_fail(1, "%s: write at sector %llu: %s (%s)", argv[optind],
			              (unsigned long long)(lba + done / VHD_SECTOR), xv ? vhdx_strerror(e) : vhd_strerror(e),
			              xv ? vhdx_errname(e) : vhd_errname(e));
			goto out;
		}
		done += n;
	}
	if (xv) {
		/* Flushed, the log marked empty in both headers: the file opens clean without replay. */
		if ((rc = vhdx_close(xv)))
			rc = cmd_fail(1, "%s: close: %s (%s)", argv[optind], vhdx_strerror(rc), vhdx_errname(rc));
		goto out;
	}
	if ((rc = vhd_flush(v))) {
		rc = cmd_fail(1, "%s: flush: %s (%s)", argv[optind], vhd_strerror(rc), vhd_errname(rc));
		goto out;
	}
out:
	if (xv && rc)
		vhdx_close(xv);   /* what was acknowledged stays; the log is marked empty if it can be */
	free(buf);
	chain_close(&c);
	vxc_close(&x);
	return rc;
}

