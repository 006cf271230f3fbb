/* kerr.h: errors as values: what went wrong and what the user can do; only main.c turns one into boot_fail. */
#ifndef KERR_H
#define KERR_H

/* A failure: why (one line, names the thing and the check) and remedy (what to do). Both static strings or buffers that outlive the call. */
struct kerr {
	const char *why;
	const char *remedy;
};

/* Fill *e and return -1 (for `return kerr_set(e, ...)`). */
static inline int kerr_set(struct kerr *e, const char *why, const char *remedy)
{
	e->why = why;
	e->remedy = remedy;
	return -1;
}

#endif
