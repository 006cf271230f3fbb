/* hostres.h: what the host chain openers (chain.c, vxchain.c) share in their resolver callbacks: parent candidates deduplicated by inode. */
#ifndef HOSTRES_H
#define HOSTRES_H

#include <sys/stat.h>
#include "../image/resolve.h"   /* struct res_try, RES_MAX_TRIES, RES_FOUND, RES_NOT_FOUND, RES_DUPLICATE */

/* The files one parent lookup has tried so far (res_try.idx 0 starts a new lookup). */
struct hostres_seen {
	struct stat st[RES_MAX_TRIES];
	int n;
};

/*
 * Admit try t of a lookup: RES_NOT_FOUND when its path does not exist,
 * RES_DUPLICATE when the lookup already tried the same file (device and
 * inode: another name of it), else RES_FOUND (0: open it) with the file
 * remembered.
 */
static inline int hostres_admit(struct hostres_seen *s, const struct res_try *t)
{
	struct stat st;

	if (t->idx == 0)
		s->n = 0;
	if (stat(t->path, &st) < 0)
		return RES_NOT_FOUND;
	for (int j = 0; j < s->n; j++)
		if (s->st[j].st_dev == st.st_dev && s->st[j].st_ino == st.st_ino)
			return RES_DUPLICATE;
	if (s->n < RES_MAX_TRIES)
		s->st[s->n++] = st;
	return RES_FOUND;
}

#endif
