/* imgfmt.c: what a file is (raw, VHD, VHDX) decided by its content in one place, and reading its virtual disk. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "vhdtool.h"

#define VHDX_IDENT "vhdxfile"   /* VHDX file type identifier at offset 0 (MS-VHDX 2.2.1) */

/* Parse a -f argument; -1 if unknown. */
int img_fmt_parse(const char *s)
{
	if (!strcmp(s, "raw"))
		return IMG_FMT_RAW;
	if (!strcmp(s, "vhd") || !strcmp(s, "vpc"))
		return IMG_FMT_VHD;
	if (!strcmp(s, "vhdx"))
		return IMG_FMT_VHDX;
	return -1;
}

/* Name of a format. */
const char *img_fmt_name(int fmt)
{
	switch (fmt) {
	case IMG_FMT_RAW: return "raw";
	case IMG_FMT_VHD: return "vhd";
	case IMG_FMT_VHDX: return "vhdx";
	default: return "auto";
	}
}

/* Nonzero when sec (512 bytes) looks like a VHD footer, possibly damaged: most of the cookie, or a valid checksum with version 1.x. */
static int img_looks_like_footer(const uint8_t *sec)
{
	int same = 0;
	uint32_t sum = 0, stored;

	for (int i = 0; i < 8; i++)
		same += sec[i] == (uint8_t)VHD_FOOTER_COOKIE[i];
	if (same >= 6)
		return 1;
	for (int i = 0; i < 512; i++)
		if (i < 64 || i >= 68)
			sum += sec[i];
	stored = ((uint32_t)sec[64] << 24) | ((uint32_t)sec[65] << 16) | ((uint32_t)sec[66] << 8) | sec[67];
	return ~sum == stored && sec[12] == 0 && sec[13] == 1 && sum != 0;
}

/* Nonzero when name ends in one of the VHD/VHDX suffixes (any case). */
static int img_named_like_image(const char *path)
{
	static const char *const sfx[] = { ".vhd", ".vhdx", ".avhd", ".avhdx" };
	size_t n = strlen(path);

	for (unsigned i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		size_t k = strlen(sfx[i]);
		if (n >= k && !strcasecmp(path + n - k, sfx[i]))
			return 1;
	}
	return 0;
}

/* Decide path's format by content; see vhdtool.h. */
int img_detect(const char *path, char *why, size_t whylen, int *sys_errno)
{
	uint8_t first[1024], last[1024];
	struct stat st;
	uint64_t size;
	ssize_t n0, n1 = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*sys_errno = 0;
	if (fd < 0 || fstat(fd, &st) < 0) {
		*sys_errno = errno;
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		*sys_errno = EISDIR;
		snprintf(why, whylen, "%s: %s", path, strerror(EISDIR));
		return -1;
	}
	size = S_ISBLK(st.st_mode) ? (uint64_t)lseek(fd, 0, SEEK_END) : (uint64_t)st.st_size;
	memset(first, 0, sizeof(first));
	memset(last, 0, sizeof(last));
	n0 = hostdev_pread_full(fd, first, sizeof(first), 0);
	if (n0 >= 0 && size >= sizeof(last))
		n1 = hostdev_pread_full(fd, last, sizeof(last), size - sizeof(last));
	if (n0 < 0 || n1 < 0) {
		*sys_errno = errno;
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	if (size == 0) {
		snprintf(why, whylen, "%s is empty (0 bytes): neither a VHD nor a disk; use -f raw to read it as an empty raw disk", path);
		return -1;
	}
	if (size >= 8 && !memcmp(first, VHDX_IDENT, 8))
		return IMG_FMT_VHDX;
	if (size < sizeof(last)) {
		memcpy(last, first, sizeof(last));
		if (size >= 512)
			memmove(last + 512, first + size - 512, 512);
	}
	/* End footer (512 bytes, or the old 511-byte one: its last byte read as 0), copy at 0, header at 512. */
	{
		uint8_t short_footer[512];
		memcpy(short_footer, last + 513, 511);
		short_footer[511] = 0;
		if (size >= 511 && (img_looks_like_footer(last + 512) || img_looks_like_footer(short_footer)))
			return IMG_FMT_VHD;
	}
	if (!memcmp(first, VHD_FOOTER_COOKIE, 8) || img_looks_like_footer(first))
		return IMG_FMT_VHD;
	if (size >= 520 && !memcmp(first + 512, VHD_HEADER_COOKIE, 8))
		return IMG_FMT_VHD;
	if (img_named_like_image(path)) {
		snprintf(why, whylen, "%s has no VHD footer, footer copy or header and no VHDX identifier, "
		         "yet its name says it is an image; use -f raw to read it as a raw disk", path);
		return -1;
	}
	return IMG_FMT_RAW;
}

/* Whether a verb takes its VHDX path; see vhdtool.h. */
int img_is_vhdx(const char *path, int fmt)
{
	char why[1024];
	int e;

	if (fmt != IMG_FMT_AUTO)
		return fmt == IMG_FMT_VHDX;
	return img_detect(path, why, sizeof(why), &e) == IMG_FMT_VHDX;
}

/* Refuse a VHDX for a verb that edits VHD structures; see vhdtool.h. */
int img_refuse_vhdx(const char *path)
{
	return cmd_fail(EXIT_USAGE, "%s is a VHDX: '%s' edits VHD structures and does not work on VHDX images "
	                "(VHDX: create, info, check, convert, read, write, map, compare, measure; "
	                "'vhdtool convert -O dynamic' makes a VHD of it)", path, cmd_name);
}

/* Open a VHDX chain; see vhdtool.h. */
int img_open_vhdx(struct vxchain *c, const char *path, unsigned vxc_flags)
{
	int rc = vxc_open(c, path, vxc_flags);

	if (!rc)
		return 0;
	rc = c->sys_errno ? EXIT_USAGE : 1;
	cmd_fail(rc, "%s", c->err_msg);
	vxc_close(c);
	return rc;
}

/* Open a raw file as the source; prints failures; 0 or exit code. */
static int img_open_raw(struct img_src *s, const char *path)
{
	struct stat st;

	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0)
		return cmd_fail(EXIT_USAGE, "%s: %s", path, strerror(errno));
	if (fstat(s->fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		close(s->fd);
		s->fd = -1;
		return cmd_fail(EXIT_USAGE, "%s: not a regular file or block device", path);
	}
	s->size = S_ISBLK(st.st_mode) ? (uint64_t)lseek(s->fd, 0, SEEK_END) : (uint64_t)st.st_size;
	if (s->size % VHD_SECTOR) {
		close(s->fd);
		s->fd = -1;
		return cmd_fail(1, "%s: raw input size %llu is not a multiple of 512", path, (unsigned long long)s->size);
	}
	s->fmt = IMG_FMT_RAW;
	return 0;
}

/* Open a file the content says is a VHD (or -f vhd): a failure names the reason and the remedy. */
static int img_open_vhd_chain(struct chain *c, const char *path, unsigned chain_flags)
{
	int rc = chain_open(c, path, chain_flags);

	if (!rc)
		return 0;
	if (c->sys_errno) {
		rc = cmd_fail(EXIT_USAGE, "%s", c->err);
	} else if (c->n == 0) {
		rc = cmd_fail(1, "%s; the file looks like a damaged VHD: see 'vhdtool repair', or use -f raw to read it as raw bytes",
		              c->err);
	} else {
		rc = cmd_fail(1, "%s", c->err);
	}
	chain_close(c);
	return rc;
}

/* Open an image's virtual disk for reading; see vhdtool.h. */
int img_src_open(struct img_src *s, const char *path, int fmt, unsigned chain_flags)
{
	char why[1024];
	int e;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->path = path;
	if (fmt == IMG_FMT_AUTO) {
		fmt = img_detect(path, why, sizeof(why), &e);
		if (fmt < 0)
			return cmd_fail(e ? EXIT_USAGE : 1, "%s", why);
	}
	if (fmt == IMG_FMT_VHDX) {
		e = img_open_vhdx(&s->x, path, VXC_RDONLY | ((chain_flags & CHAIN_LEAF_ONLY) ? VXC_LEAF_ONLY : 0));
		if (e)
			return e;
		s->fmt = IMG_FMT_VHDX;
		s->size = vxc_leaf(&s->x)->vsize;
		return 0;
	}
	if (fmt == IMG_FMT_RAW)
		return img_open_raw(s, path);
	e = img_open_vhd_chain(&s->c, path, chain_flags | CHAIN_RDONLY);
	if (e)
		return e;
	s->fmt = IMG_FMT_VHD;
	s->size = chain_leaf(&s->c)->sectors * VHD_SECTOR;
	return 0;
}

/* Open a VHD chain for a VHD-only verb; see vhdtool.h. */
int img_open_vhd(struct chain *c, const char *path, int fmt, unsigned chain_flags)
{
	char why[1024];
	int e;

	memset(c, 0, sizeof(*c));
	if (fmt == IMG_FMT_RAW)
		return cmd_fail(EXIT_USAGE, "%s: '%s' works on VHD images; a raw file has nothing for it to do", path, cmd_name);
	if (fmt == IMG_FMT_AUTO) {
		fmt = img_detect(path, why, sizeof(why), &e);
		if (fmt < 0)
			return cmd_fail(e ? EXIT_USAGE : 1, "%s", why);
		if (fmt == IMG_FMT_RAW)
			return cmd_fail(EXIT_USAGE, "%s is not a VHD (no footer, footer copy or header found): '%s' works on VHD images",
			                path, cmd_name);
	}
	if (fmt == IMG_FMT_VHDX)
		return img_refuse_vhdx(path);
	return img_open_vhd_chain(c, path, chain_flags);
}

/* Nonzero if [off, off+len) has no allocated block in any chain member, or lies in a hole of a raw file. */
int img_src_unallocated(struct img_src *s, uint64_t off, uint64_t len)
{
	if (!len)
		return 1;
	if (s->fmt == IMG_FMT_RAW)
		return hostdev_next_data(s->fd, off, off + len) >= off + len;
	if (s->fmt == IMG_FMT_VHDX)
		return vxc_unallocated(&s->x, off, len);
	for (int i = 0; i < s->c.n; i++) {
		struct vhd *v = &s->c.m[i]->v;
		if (v->footer.type != VHD_TYPE_DYNAMIC && v->footer.type != VHD_TYPE_DIFF)
			return 0;
		for (uint64_t b = off / v->block_size; b <= (off + len - 1) / v->block_size; b++)
			if (b < v->header.max_entries && v->bat[b] != VHD_BAT_FREE)
				return 0;
	}
	return 1;
}

/* Read len bytes of the virtual disk at off; see vhdtool.h. */
int img_src_read(struct img_src *s, uint64_t off, uint32_t len, uint8_t *buf, int *zero)
{
	*zero = 0;
	if (s->fmt == IMG_FMT_VHD) {
		int rc;
		if (img_src_unallocated(s, off, len)) {
			*zero = 1;
			return 0;
		}
		rc = vhd_read(chain_leaf(&s->c), off / VHD_SECTOR, len / VHD_SECTOR, buf);
		if (rc)
			return cmd_fail(1, "%s: read at sector %llu: %s (%s)", s->c.m[0]->path,
			                (unsigned long long)(off / VHD_SECTOR), vhd_strerror(rc), vhd_errname(rc));
		return 0;
	}
	if (s->fmt == IMG_FMT_VHDX) {
		int rc;
		if (vxc_unallocated(&s->x, off, len)) {
			*zero = 1;
			return 0;
		}
		rc = vxc_read(&s->x, off, len, buf);
		if (rc)
			return cmd_fail(1, "%s: read at sector %llu: %s (%s)", s->path, (unsigned long long)(off / VHD_SECTOR),
			                rc == VHDX_E_IO && s->x.m[0]->hd.last_errno ? strerror(s->x.m[0]->hd.last_errno) :
			                vhdx_strerror(rc), vhdx_errname(rc));
		return 0;
	}
	/* Raw: read only the data extents of a sparse file; holes are zeros. */
	if (off >= s->data_pos)
		s->data_pos = hostdev_next_data(s->fd, off, s->size);
	if (s->data_pos >= off + len) {
		*zero = 1;
		return 0;
	}
	for (uint64_t pos = off; pos < off + len;) {
		uint64_t data = hostdev_next_data(s->fd, pos, off + len), hole;
		ssize_t n;
		if (data > pos)
			memset(buf + (pos - off), 0, data - pos);
		if (data >= off + len)
			break;
		hole = hostdev_next_hole(s->fd, data, off + len);
		n = hostdev_pread_full(s->fd, buf + (data - off), hole - data, data);
		if (n < 0)
			return cmd_fail(1, "%s: read at byte %llu: %s", s->path, (unsigned long long)data, strerror(errno));
		if ((uint64_t)n < hole - data)
			memset(buf + (data - off) + n, 0, hole - data - (uint64_t)n);
		pos = hole;
	}
	return 0;
}

/* Close the source. */
void img_src_close(struct img_src *s)
{
	if (s->fmt == IMG_FMT_VHD)
		chain_close(&s->c);
	if (s->fmt == IMG_FMT_VHDX)
		vxc_close(&s->x);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->fmt = 0;
}
