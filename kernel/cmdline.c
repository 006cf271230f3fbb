/* cmdline.c: parses the kernel command line (syntax in cmdline.h). */
#include "cmdline.h"
#include "phys.h"
#include "string.h"
#include "../drivers/ata.h"     /* ata_positions: the names vhd=pm..ss accepts */

/* First c in w[0..n), or NULL. */
static const char *cmdline_memchr(const char *w, char c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (w[i] == c)
			return w + i;
	return NULL;
}

/* Is w[0..n) a disk name: an ATA position "pm".."ss", or "hdN" (N < CMDLINE_MAX_DISKS)? */
static int cmdline_disk(const char *w, size_t n, int *by_position)
{
	*by_position = 0;
	for (int i = 0; i < ATA_MAX_DISKS; i++)
		if (n == 2 && !strncmp(w, ata_positions[i], 2)) {
			*by_position = 1;
			return 1;
		}
	if (n < 3 || n > 4 || strncmp(w, "hd", 2))
		return 0;
	int num = 0;
	for (size_t i = 2; i < n; i++) {
		if (w[i] < '0' || w[i] > '9')
			return 0;
		num = num * 10 + (w[i] - '0');
	}
	return (n == 3 || w[2] != '0') && num < CMDLINE_MAX_DISKS;
}

/* CMDLINE_MODE_* for "rw", "ro", "snapshot"; -1 if unknown. */
static int cmdline_mode(const char *v, size_t n)
{
	if (n == 2 && !strncmp(v, "rw", 2))
		return CMDLINE_MODE_RW;
	if (n == 2 && !strncmp(v, "ro", 2))
		return CMDLINE_MODE_RO;
	if (n == 8 && !strncmp(v, "snapshot", 8))
		return CMDLINE_MODE_SNAPSHOT;
	return -1;
}

/* Parse a size ("65536", "64K", "64M", "1G"; nonzero, below 4 GiB) into *out; 0 if malformed. */
static int cmdline_size(const char *v, size_t n, uint64_t *out)
{
	uint64_t x = 0;
	size_t i = 0;
	for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
		x = x * 10 + (uint64_t)(v[i] - '0');
		if (x >= (1ull << 32))
			return 0;
	}
	if (i == 0)
		return 0;
	if (i + 1 == n) {
		char s = v[i] | 0x20;      /* lower case */
		if (s != 'k' && s != 'm' && s != 'g')
			return 0;
		x <<= s == 'k' ? 10 : s == 'm' ? 20 : 30;
	} else if (i != n) {
		return 0;
	}
	if (x == 0 || x >= (1ull << 32))
		return 0;
	*out = x;
	return 1;
}

/* Decimal w[i..n) (at most 4 digits, at least one) into *out; 0 if malformed. */
static int cmdline_num(const char *w, size_t i, size_t n, uint32_t *out)
{
	uint32_t x = 0;
	if (i == n || n - i > 4)
		return 0;
	for (; i < n; i++) {
		if (w[i] < '0' || w[i] > '9')
			return 0;
		x = x * 10 + (uint32_t)(w[i] - '0');
	}
	*out = x;
	return 1;
}

/* Is w[0..36) a GUID's text (8-4-4-4-12 hex digits)? */
static int cmdline_guid(const char *w, size_t n)
{
	if (n != 36)
		return 0;
	for (size_t i = 0; i < 36; i++) {
		char ch = w[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (ch != '-')
				return 0;
		} else if (!((ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f'))) {
			return 0;
		}
	}
	return 1;
}

/* Parse "label=NAME" or "guid=GUID" (w[0..n)) into v; 0 if it is neither or malformed. */
static int cmdline_vol_named(struct cmdline_vol *v, const char *w, size_t n)
{
	memset(v, 0, sizeof(*v));
	size_t k;
	if (n > 6 && !strncmp(w, "label=", 6)) {
		v->by = CMDLINE_VOL_LABEL;
		k = 6;
	} else if (n > 5 && !strncmp(w, "guid=", 5)) {
		v->by = CMDLINE_VOL_GUID;
		k = 5;
		if (!cmdline_guid(w + k, n - k))
			return 0;
	} else {
		return 0;
	}
	if (n - k >= sizeof(v->name))
		return 0;
	memcpy(v->name, w + k, n - k);
	v->name[n - k] = 0;
	return 1;
}

/* Parse a volume w[0..n): hdN[,P], pm..ss[,P], label=NAME or guid=GUID; 0 if malformed. */
static int cmdline_vol(struct cmdline_vol *v, const char *w, size_t n)
{
	if (cmdline_vol_named(v, w, n))
		return 1;
	memset(v, 0, sizeof(*v));
	const char *comma = cmdline_memchr(w, ',', n);
	size_t nn = comma ? (size_t)(comma - w) : n;
	if (!cmdline_disk(w, nn, &v->by_position))
		return 0;
	memcpy(v->disk, w, nn);
	v->disk[nn] = 0;
	return !comma || cmdline_num(w, nn + 1, n, &v->part);
}

/* Parse the value of parents= (v[0..n)): volumes separated by '+'; 0 if malformed. */
static int cmdline_parents(struct cmdline *c, const char *v, size_t n)
{
	c->nparent_vols = 0;
	while (n) {
		const char *plus = cmdline_memchr(v, '+', n);
		size_t k = plus ? (size_t)(plus - v) : n;
		if (c->nparent_vols >= CMDLINE_MAX_VOLS || !cmdline_vol(&c->parent_vols[c->nparent_vols], v, k)) {
			c->nparent_vols = 0;
			return 0;
		}
		c->nparent_vols++;
		if (!plus)
			break;
		n -= k + 1;
		v += k + 1;
		if (!n) {
			c->nparent_vols = 0;
			return 0;
		}
	}
	return c->nparent_vols > 0;
}

/* Parse one vhd= item w[0..n) other than "auto" into *it; 0 if malformed. */
static int cmdline_vhd_item(struct cmdline_vhd *it, const char *w, size_t n)
{
	memset(it, 0, sizeof(*it));
	if (n == 0 || n >= CMDLINE_VHD_LEN)
		return 0;
	memcpy(it->text, w, n);
	it->text[n] = 0;
	if (w[0] == '/') {
		it->kind = CMDLINE_VHD_PATH;
		memcpy(it->path, w, n);
		return 1;
	}
	if (n >= 6 && !strncmp(w, "module", 6)) {
		uint32_t m = 0;
		if (n > 6 && !cmdline_num(w, 6, n, &m))
			return 0;
		it->kind = CMDLINE_VHD_MODULE;
		it->module = (int)m;
		return 1;
	}
	const char *colon = cmdline_memchr(w, ':', n);
	size_t dn = colon ? (size_t)(colon - w) : n;
	if (colon && (colon + 1 == w + n || colon[1] != '/'))
		return 0;
	struct cmdline_vol vol;
	if (cmdline_vol_named(&vol, w, dn)) {
		if (!colon)
			return 0;         /* a volume named by label or GUID holds files: a path is needed */
		it->kind = CMDLINE_VHD_FILE;
		it->vol_by = vol.by;
		memcpy(it->vol, vol.name, sizeof(it->vol));
		memcpy(it->path, colon + 1, n - dn - 1);
		it->path[n - dn - 1] = 0;
		return 1;
	}
	const char *comma = cmdline_memchr(w, ',', dn);
	size_t nn = comma ? (size_t)(comma - w) : dn;
	if (!cmdline_disk(w, nn, &it->by_position))
		return 0;
	memcpy(it->disk, w, nn);
	it->disk[nn] = 0;
	if (comma && !cmdline_num(w, nn + 1, dn, &it->part))
		return 0;
	if (colon) {
		it->kind = CMDLINE_VHD_FILE;
		memcpy(it->path, colon + 1, n - dn - 1);
		it->path[n - dn - 1] = 0;
	} else {
		it->kind = it->part ? CMDLINE_VHD_PART : CMDLINE_VHD_DISK;
	}
	return 1;
}

/* Parse the value of vhd= (v[0..n)): "auto", or items separated by '+'; 0 if malformed. */
static int cmdline_vhd(struct cmdline *c, const char *v, size_t n)
{
	c->nvhd = 0;
	if (n == 4 && !strncmp(v, "auto", 4))
		return 1;
	while (n) {
		const char *plus = cmdline_memchr(v, '+', n);
		size_t k = plus ? (size_t)(plus - v) : n;
		if (c->nvhd >= CMDLINE_MAX_VHDS || !cmdline_vhd_item(&c->vhd[c->nvhd], v, k)) {
			c->nvhd = 0;
			return 0;
		}
		c->nvhd++;
		if (!plus)
			break;
		n -= k + 1;
		v += k + 1;
		if (!n) {
			c->nvhd = 0;
			return 0;
		}
	}
	return c->nvhd > 0;
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
	c->trace = 0;
	c->no_handover = 0;
	c->nvhd = 0;
	c->timeout = CMDLINE_TIMEOUT_DEFAULT;
	c->ignore_timestamp = 0;
	c->mode = CMDLINE_MODE_RW;
	c->snapshot_bytes = 0;
	c->no_grow = 0;
	c->errors = 0;
	c->nparent_vols = 0;
	c->bad[0] = 0;
	const char *p = c->raw;
	int first = 1;
	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		/*
		 * A word ends at a space or tab outside double quotes; the quotes are
		 * dropped ("a b" -> a b). GRUB 2 passes an argument that has spaces
		 * this way: vhd="/my images/a.vhd" in grub.cfg arrives as
		 * "vhd=/my images/a.vhd", with \" and \\ for quotes and backslashes.
		 */
		char word[CMDLINE_MAX];
		const char *w = word, *start = p;
		size_t n = 0;
		int quoted = 0;
		for (; *p && (quoted || (*p != ' ' && *p != '\t')); p++) {
			if (*p == '"')
				quoted = !quoted;
			else if (quoted && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
				word[n++] = *++p;   /* GRUB 2 escapes " and \ when it quotes an argument with spaces */
			else
				word[n++] = *p;
		}
		word[n] = 0;
		if (quoted || !n) {
			first = 0;
			cmdline_bad(c, start, (size_t)(p - start));  /* an unterminated quote, or "" (an empty word) */
			continue;
		}
		const char *eq = cmdline_memchr(w, '=', n);
		/* Some loaders (GRUB legacy, mboot.c32, iPXE) put the kernel's file name first; GRUB 2 does not. */
		if (first && !eq && (cmdline_memchr(w, '/', n) || cmdline_memchr(w, '.', n))) {
			first = 0;
			continue;
		}
		first = 0;
		if (eq && eq - w == 3 && !strncmp(w, "vhd", 3)) {
			if (!cmdline_vhd(c, eq + 1, n - 4))
				cmdline_bad(c, w, n);
		} else if (eq && eq - w == 7 && !strncmp(w, "timeout", 7)) {
			int t = 0;
			size_t i = 8;
			for (; i < n && w[i] >= '0' && w[i] <= '9' && t < 100000; i++)
				t = t * 10 + (w[i] - '0');
			if (i != n || n == 8 || t > 3600)
				cmdline_bad(c, w, n);
			else
				c->timeout = t;
		} else if (eq && eq - w == 7 && !strncmp(w, "parents", 7)) {
			if (!cmdline_parents(c, eq + 1, n - 8))
				cmdline_bad(c, w, n);
		} else if (n == 20 && !strncmp(w, "vhd_ignore_timestamp", 20)) {
			c->ignore_timestamp = 1;
		} else if (n == 5 && !strncmp(w, "trace", 5)) {
			c->trace = 1;
		} else if (n == 10 && !strncmp(w, "nohandover", 10)) {
			c->no_handover = 1;
		} else if (eq && eq - w == 4 && !strncmp(w, "mode", 4)) {
			int m = cmdline_mode(eq + 1, n - 5);
			if (m < 0)
				cmdline_bad(c, w, n);
			else
				c->mode = m;
		} else if (eq && eq - w == 4 && !strncmp(w, "grow", 4)) {
			if (n == 7 && !strncmp(eq + 1, "no", 2))
				c->no_grow = 1;
			else if (n == 8 && !strncmp(eq + 1, "yes", 3))
				c->no_grow = 0;
			else
				cmdline_bad(c, w, n);
		} else if (eq && eq - w == 4 && !strncmp(w, "disk", 4)) {
			static const char *const modes[] = { "auto", "bios", "native", "pio" };
			int m = -1;
			for (int k = 0; k < 4; k++)
				if (n - 5 == strlen(modes[k]) && !strncmp(eq + 1, modes[k], n - 5))
					m = k;
			if (m < 0)
				cmdline_bad(c, w, n);
			else
				c->disk_mode = m;
		} else if (eq && eq - w == 8 && !strncmp(w, "snapshot", 8)) {
			if (!cmdline_size(eq + 1, n - 9, &c->snapshot_bytes))
				cmdline_bad(c, w, n);
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
