/* hostdev.h: a struct blk_dev over a host file (pread/pwrite/fsync), plus raw-file helpers for vhdtool. */
#ifndef HOSTDEV_H
#define HOSTDEV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "../block/blk.h"

/* hostdev_open flags. */
#define HOSTDEV_RDONLY 0x1u   /* open O_RDONLY; every write fails with BLK_E_RO */
#define HOSTDEV_CREATE 0x2u   /* create the file if missing (O_CREAT) */
#define HOSTDEV_EXCL 0x4u     /* with CREATE: fail if the file exists (O_EXCL) */
#define HOSTDEV_TRUNC 0x8u    /* truncate an existing file to 0 bytes */
#define HOSTDEV_NOSYNC 0x10u  /* flush is a no-op (bulk conversion); call hostdev_sync() at the end */

/* A host file seen as a growable device of 512-byte sectors. */
struct hostdev {
	struct blk_dev dev;       /* dev.priv = this (the callbacks find the hostdev there) */
	int fd;
	unsigned flags;
	int is_blkdev;            /* a block device: can't grow or be truncated */
	int last_errno;           /* errno of the last failed system call, 0 if none */
	char path[4096];
};

/* Open path as a blk_dev; returns 0 or -1 with errno set. h->dev is ready to hand to vhd_open(). */
int hostdev_open(struct hostdev *h, const char *path, unsigned flags);
/* Close the file (no flush); safe to call on a closed or zeroed hostdev. */
void hostdev_close(struct hostdev *h);
/* fsync the file regardless of HOSTDEV_NOSYNC; returns 0 or -1 with errno set. */
int hostdev_sync(struct hostdev *h);

/* Test hook: SIGKILL before the (N+1)th file modification when VHDTOOL_CRASH_AFTER=N is set (see hostdev.c). */
void hostdev_crash_point(void);
/* Truncate or extend the file to size bytes (crash hook first); updates dev sizes; 0 or -1 with errno. */
int hostdev_truncate(struct hostdev *h, uint64_t size);
/* Read exactly len bytes at off (short only at EOF); returns the bytes read or -1 with errno set. */
ssize_t hostdev_pread_full(int fd, void *buf, size_t len, uint64_t off);
/* Write exactly len bytes at off; returns 0 or -1 with errno set. */
int hostdev_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
/* Nonzero when all len bytes of buf are zero. */
int hostdev_is_zero(const void *buf, size_t len);
/*
 * Start of the next data region at or after off in a possibly sparse file,
 * or size if the rest is a hole; returns off when holes can't be detected.
 */
uint64_t hostdev_next_data(int fd, uint64_t off, uint64_t size);
/* End of the data region that contains off (the next hole), capped at end; end when unknown. */
uint64_t hostdev_next_hole(int fd, uint64_t off, uint64_t end);

#endif
