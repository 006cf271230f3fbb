/* cmdline.c: parses the kernel command line (syntax in cmdline.h). */
#include "cmdline.h"
#include "phys.h"
#include "string.h"

/* First c in w[0..n), or NULL. */
static const char *cmdline_memchr(const char *w, char c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (w[i] == c)
			return w + i;
	return NULL;
}

/* Position 0..3 for a disk name ("pm".."ss", "hd0".."hd3"), -1 for "auto", -2 if unknown. */
static int cmdline_disk(const char *v, size_t n)
{
	static const char *const names[4] = { "pm", "ps", "sm", "ss" };
	if (n == 4 && !strncmp(v, "auto", 4))
		return CMDLINE_DISK_AUTO;
	for (int i = 0; i < 4; i++)
		if (n == 2 && !strncmp(v, names[i], 2))
			return i;
	if (n == 3 && !strncmp(v, "hd", 2) && v[2] >= '0' && v[2] <= '3')
		return v[2] - '0';
	return -2;
}

/* Record a word we did not understand. */
static void cmdline_bad(struct cmdline *c, const char *w, size_t n)
{
	if (c->errors++ == 0) {
		if (n >= sizeof(c->bad))
			n = sizeof(c->bad) - 1;
		memcpy(c->bad, w, n);
		c->bad[n] = 0;
	}
}

void cmdline_parse_raw(struct cmdline *c)
{
	c->disk = CMDLINE_DISK_AUTO;
	c->trace = 0;
	c->errors = 0;
	c->bad[0] = 0;
	const char *p = c->raw;
	int first = 1;
	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		const char *w = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		size_t n = (size_t)(p - w);
		const char *eq = cmdline_memchr(w, '=', n);
		/* Some loaders (GRUB legacy, mboot.c32, iPXE) put the kernel's file name first; GRUB 2 does not. */
		if (first && !eq && (cmdline_memchr(w, '/', n) || cmdline_memchr(w, '.', n))) {
			first = 0;
			continue;
		}
		first = 0;
		if (eq && eq - w == 3 && !strncmp(w, "vhd", 3)) {
			int d = cmdline_disk(eq + 1, n - 4);
			if (d == -2)
				cmdline_bad(c, w, n);
			else
				c->disk = d;
		} else if (n == 5 && !strncmp(w, "trace", 5)) {
			c->trace = 1;
		} else {
			cmdline_bad(c, w, n);
		}
	}
}

void cmdline_parse(struct cmdline *c, uint32_t phys)
{
	c->raw[0] = 0;
	if (phys) {
		const char *s = phys_ptr(phys);
		size_t i = 0;
		while (i < CMDLINE_MAX - 1 && s[i]) {
			c->raw[i] = s[i];
			i++;
		}
		c->raw[i] = 0;
	}
	cmdline_parse_raw(c);
}
