/* hostdev.c: a struct blk_dev over a host file (pread/pwrite/fsync), plus raw-file helpers for vhdtool. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "hostdev.h"

/* Largest device a host file may grow to: keeps every byte offset inside off_t. */
#define HOSTDEV_MAX_SECTORS ((uint64_t)INT64_MAX / BLK_SECTOR)

/*
 * Test hook, compiled in on purpose: with VHDTOOL_CRASH_AFTER=N in the
 * environment the process kills itself with SIGKILL just before its
 * (N+1)th file modification (a pwrite, a hole punch, a truncate), so
 * tests can stop a writing verb at every point of its write order
 * (tests/host/test_crash.py). Without the variable this is one getenv.
 */
void hostdev_crash_point(void)
{
	static long left = -2;   /* -2: not read yet, -1: hook off */

	if (left == -2) {
		const char *e = getenv("VHDTOOL_CRASH_AFTER");
		char *end;
		left = -1;
		if (e && *e) {
			long n = strtol(e, &end, 10);
			if (!*end && n >= 0)
				left = n;
		}
	}
	if (left < 0)
		return;
	if (left == 0)
		raise(SIGKILL);
	left--;
}

/* ftruncate with the crash hook; 0 or -1 with errno. */
int hostdev_truncate(struct hostdev *h, uint64_t size)
{
	hostdev_crash_point();
	if (ftruncate(h->fd, (off_t)size) < 0) {
		h->last_errno = errno;
		return -1;
	}
	h->dev.size_bytes = size;
	h->dev.sectors = (size + BLK_SECTOR - 1) / BLK_SECTOR;
	return 0;
}

/* Read len bytes at off, retrying short reads; returns bytes read (less than len only at EOF) or -1. */
ssize_t hostdev_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Write len bytes at off, retrying short writes; returns 0 or -1 with errno set. */
int hostdev_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	hostdev_crash_point();
	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

/* Nonzero when all len bytes are zero: checks a head, then compares the buffer with itself shifted. */
int hostdev_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t head = len < 16 ? len : 16;

	for (size_t i = 0; i < head; i++)
		if (p[i])
			return 0;
	if (len <= 16)
		return 1;
	return memcmp(p, p + 16, len - 16) == 0;
}

/* Next data offset at or after off via SEEK_DATA; size if none; off if the file system can't tell. */
uint64_t hostdev_next_data(int fd, uint64_t off, uint64_t size)
{
	off_t r;

	if (off >= size)
		return size;
	r = lseek(fd, (off_t)off, SEEK_DATA);
	if (r < 0)
		return errno == ENXIO ? size : off;
	if ((uint64_t)r > size)
		return size;
	return (uint64_t)r;
}

/* End of the data region at off (next hole) via SEEK_HOLE, capped at end; end if unknown. */
uint64_t hostdev_next_hole(int fd, uint64_t off, uint64_t end)
{
	off_t r = lseek(fd, (off_t)off, SEEK_HOLE);

	if (r < 0 || (uint64_t)r > end || (uint64_t)r <= off)
		return end;
	return (uint64_t)r;
}

/* blk_dev read (range checked by blk_read): zero-fills the tail of the last partial sector. */
static int hostdev_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct hostdev *h = d->priv;
	size_t len = (size_t)count * BLK_SECTOR;
	ssize_t n;

	n = hostdev_pread_full(h->fd, buf, len, lba * BLK_SECTOR);
	if (n < 0) {
		h->last_errno = errno;
		return BLK_E_IO;
	}
	if ((size_t)n < len)
		memset((char *)buf + n, 0, len - (size_t)n);
	return BLK_OK;
}

/* blk_dev write: grows the file (and sectors/size_bytes) up to max_sectors. */
static int hostdev_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct hostdev *h = d->priv;
	uint64_t end;

	if (hostdev_pwrite_full(h->fd, buf, (size_t)count * BLK_SECTOR, lba * BLK_SECTOR) < 0) {
		h->last_errno = errno;
		return (errno == ENOSPC || errno == EFBIG) ? BLK_E_NOSPACE : BLK_E_IO;
	}
	end = (lba + count) * BLK_SECTOR;
	if (end > d->size_bytes) {
		d->size_bytes = end;
		d->sectors = lba + count;
	}
	return BLK_OK;
}

/* blk_dev write_zeroes: extends with ftruncate past EOF, punches holes inside; writes zeros as a fallback. */
static int hostdev_write_zeroes(struct blk_dev *d, uint64_t lba, uint64_t count)
{
	struct hostdev *h = d->priv;
	static const uint8_t zeros[64 * 1024];
	uint64_t start = lba * BLK_SECTOR, end, inside;

	end = (lba + count) * BLK_SECTOR;
	inside = end < d->size_bytes ? end : d->size_bytes;
	if (start < inside) {
		int done = 0;
		/* A fresh block of a growing image usually lies in a hole already. */
		if (!h->is_blkdev && hostdev_next_data(h->fd, start, inside) >= inside)
			done = 1;
		if (!done)
			hostdev_crash_point();
		if (!done && !h->is_blkdev &&
		    fallocate(h->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)start, (off_t)(inside - start)) == 0)
			done = 1;
		for (uint64_t off = start; !done && off < inside;) {
			size_t n = inside - off < sizeof(zeros) ? (size_t)(inside - off) : sizeof(zeros);
			if (hostdev_pwrite_full(h->fd, zeros, n, off) < 0) {
				h->last_errno = errno;
				return errno == ENOSPC ? BLK_E_NOSPACE : BLK_E_IO;
			}
			off += n;
		}
	}
	if (end > d->size_bytes) {
		if (h->is_blkdev)
			return BLK_E_RANGE;
		hostdev_crash_point();
		if (ftruncate(h->fd, (off_t)end) < 0) {
			h->last_errno = errno;
			return (errno == ENOSPC || errno == EFBIG) ? BLK_E_NOSPACE : BLK_E_IO;
		}
		d->size_bytes = end;
		d->sectors = lba + count;
	}
	return BLK_OK;
}

/* blk_dev flush: fsync unless HOSTDEV_NOSYNC (then the caller syncs once at the end). */
static int hostdev_flush(struct blk_dev *d)
{
	struct hostdev *h = d->priv;

	if (d->read_only || (h->flags & HOSTDEV_NOSYNC))
		return BLK_OK;
	if (fsync(h->fd) < 0) {
		h->last_errno = errno;
		return BLK_E_IO;
	}
	return BLK_OK;
}

/* Open path as a blk_dev; regular files and block devices; returns 0 or -1 with errno set. */
int hostdev_open(struct hostdev *h, const char *path, unsigned flags)
{
	int oflags = (flags & HOSTDEV_RDONLY) ? O_RDONLY : O_RDWR;
	struct stat st;

	memset(h, 0, sizeof(*h));
	h->fd = -1;
	if (strlen(path) >= sizeof(h->path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (!(flags & HOSTDEV_RDONLY)) {
		if (flags & HOSTDEV_CREATE)
			oflags |= O_CREAT;
		if (flags & HOSTDEV_EXCL)
			oflags |= O_EXCL;
		if (flags & HOSTDEV_TRUNC)
			oflags |= O_TRUNC;
	}
	h->fd = open(path, oflags | O_CLOEXEC, 0644);
	if (h->fd < 0)
		return -1;
	if (fstat(h->fd, &st) < 0)
		goto fail;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto fail;
	}
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(h->fd, 0, SEEK_END);
		if (end < 0)
			goto fail;
		st.st_size = end;
	} else if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;   /* pipes and sockets have no pread */
		goto fail;
	}
	strcpy(h->path, path);
	h->flags = flags;
	h->dev.name = h->path;
	h->dev.size_bytes = (uint64_t)st.st_size;
	h->dev.sectors = ((uint64_t)st.st_size + BLK_SECTOR - 1) / BLK_SECTOR;
	h->dev.read_only = (flags & HOSTDEV_RDONLY) != 0;
	h->dev.max_sectors = (h->dev.read_only || S_ISBLK(st.st_mode)) ? h->dev.sectors
	                                                               : HOSTDEV_MAX_SECTORS;
	h->dev.read = hostdev_read;
	h->dev.write = hostdev_write;
	h->dev.flush = hostdev_flush;
	h->dev.write_zeroes = hostdev_write_zeroes;
	h->dev.zero_extend = !S_ISBLK(st.st_mode);   /* a regular file: a write past the end leaves zeros behind */
	h->is_blkdev = S_ISBLK(st.st_mode);
	h->dev.priv = h;
	return 0;
fail: {
		int e = errno;
		close(h->fd);
		h->fd = -1;
		errno = e;
		return -1;
	}
}

/* Close the descriptor if hostdev_open succeeded (dev.read set); leaves h zeroed apart from fd = -1. */
void hostdev_close(struct hostdev *h)
{
	if (h->dev.read && h->fd >= 0)
		close(h->fd);
	memset(h, 0, sizeof(*h));
	h->fd = -1;
}

/* Force the file to stable storage even in HOSTDEV_NOSYNC mode. */
int hostdev_sync(struct hostdev *h)
{
	if (h->dev.read_only)
		return 0;
	return fsync(h->fd);
}
