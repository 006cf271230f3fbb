/* scan.c: lists the image candidates on every registered disk and GRUB module; finds a named file on any FAT, exFAT or NTFS volume. */
#include "scan.h"
#include "imgopen.h"
#include "console.h"
#include "string.h"
#include "../block/disk.h"
#include "../image/image.h"
#include "../fs/part.h"
#include "../fs/fs.h"

/* The scan's work areas (in the scan's scratch: iop_alloc). */
struct scan_work {
	struct part_iter it;
	struct part_info pi;
	struct fs_vol vol;
	struct blk_window pv;                    /* the partition being scanned (pv.dev) */
	struct img_place probe;
};
static struct scan_work *sel_w;

/* The work areas, allocated on first use; NULL when the scratch is full. */
static struct scan_work *scan_work(void)
{
	if (!sel_w)
		sel_w = iop_alloc(sizeof(*sel_w), 16);
	return sel_w;
}

void scan_reset(void)
{
	sel_w = NULL;
}

/* The folders of a volume the scan lists images in (missing ones are skipped), and their text for the log. */
static const char *const scan_dirs[] = { "/", "/vhd", "/images", NULL };

/* "/, /vhd, /images" (scan_dirs joined). */
static const char *scan_dirs_text(void)
{
	static char text[64];
	size_t t = 0;
	for (int i = 0; scan_dirs[i]; i++)
		t += (size_t)k_snprintf(text + t, sizeof(text) - t, "%s%s", i ? ", " : "", scan_dirs[i]);
	return text;
}

/* Add a candidate (unchecked) to l; NULL when the list is full. */
static struct sel_cand *sel_add(struct scan_list *l, int kind, int disk, uint32_t part, const char *path)
{
	if (l->n >= SCAN_MAX_CANDS) {
		con_printf("select: more than %d images; the rest are ignored\n", SCAN_MAX_CANDS);
		return NULL;
	}
	struct sel_cand *c = &l->cands[l->n++];
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->disk = disk;
	c->part = part;
	if (path)
		k_strlcpy(c->path, path, sizeof(c->path));
	cand_name(c);
	return c;
}

void scan_modules(struct scan_list *l)
{
	for (int i = 0; i < disk_count(); i++)
		if (disk_get(i)->flags & DISK_RAM)
			sel_add(l, SEL_MODULE, i, 0, NULL);
}

/* What the listing callbacks need. */
struct sel_scan_ctx {
	struct scan_list *l;
	int disk;
	uint32_t part;
	int found;
};

/* fs_list_dirs callback: note dir/name as a candidate. */
static int sel_scan_file(void *ctx, const char *dir, const struct fs_file *f)
{
	struct sel_scan_ctx *s = ctx;
	char path[SEL_PATH_MAX];
	if (k_snprintf(path, sizeof(path), "%s/%s", dir[1] ? dir : "", fs_file_name(f)) >= (int)sizeof(path))
		return 0;
	s->found++;
	sel_add(s->l, SEL_FILE, s->disk, s->part, path);
	return 0;
}

/* List the image files (every format's suffixes) in scan_dirs of the FAT, exFAT or NTFS volume on dev (disk i, partition part; 0 = superfloppy). */
static void sel_scan_fat(struct scan_list *l, int i, uint32_t part, struct blk_dev *dev, const char *where)
{
	int rc = fs_mount(&sel_w->vol, dev);
	if (rc) {
		if (sel_w->vol.type == FS_FAT)
			con_printf("select: %s: no FAT, exFAT or NTFS file system (%s)\n", where, fs_errname(&sel_w->vol, rc));
		else
			con_printf("select: %s: %s volume unusable: %s (%s)\n", where, fs_type_name(&sel_w->vol),
				   fs_strerror(&sel_w->vol, rc), fs_errname(&sel_w->vol, rc));
		return;
	}
	struct sel_scan_ctx s = { l, i, part, 0 };
	rc = fs_list_dirs(&sel_w->vol, scan_dirs, img_suffixes(), sel_scan_file, &s);
	con_printf("select: %s: %s \"%s\": %d %s file(s) in %s%s%s\n", where, fs_type_name(&sel_w->vol),
		   fs_label(&sel_w->vol), s.found, img_suffix_text(), scan_dirs_text(), rc ? "; listing stopped: " : "",
		   rc ? fs_strerror(&sel_w->vol, rc) : "");
}

/* Visit every place of disk i: a whole-disk image, else its partitions (image or FAT), else a superfloppy FAT. */
static void sel_scan_disk(struct scan_list *l, int i)
{
	struct disk *d = disk_get(i);
	char where[24];
	k_snprintf(where, sizeof(where), "%s", d->label);
	/* The whole disk, an image at its start, or (VHD) a footer copy at 0 only (offered, so the damage is explained). */
	if (img_probe_any(&sel_w->probe, d->blk, IMG_PROBE_DISK, NULL)) {
		sel_add(l, SEL_DISK, i, 0, NULL);
		return;
	}
	int rc = part_open(&sel_w->it, d->blk);
	if (rc == PART_E_NO_SIGNATURE || rc == PART_E_BOOT_FLAG) {
		sel_scan_fat(l, i, 0, d->blk, where);
		return;
	}
	if (rc) {
		con_printf("select: %s: partition table unusable: %s (%s)\n", where, part_strerror(rc), part_errname(rc));
		return;
	}
	int nparts = 0;
	for (;; nparts++) {
		rc = part_next(&sel_w->it, &sel_w->pi);
		if (rc == PART_E_END)
			break;
		k_snprintf(where, sizeof(where), "%s,%u", d->label, sel_w->pi.index);
		if (rc) {
			con_printf("select: %s: skipped: %s (%s)\n", where, part_strerror(rc), part_errname(rc));
			if (rc == PART_E_BEYOND_DISK)
				continue;
			break;
		}
		if (part_blk_init(&sel_w->pv, d->blk, &sel_w->pi) != PART_OK)
			continue;
		if (sel_w->pi.sectors && img_probe_any(&sel_w->probe, &sel_w->pv.dev, 0, NULL)) {
			sel_add(l, SEL_PART, i, sel_w->pi.index, NULL);
			continue;
		}
		sel_scan_fat(l, i, sel_w->pi.index, &sel_w->pv.dev, where);
	}
	/* mkfs.fat leaves zeros where the partition entries would be: an empty "MBR" may be a superfloppy. */
	if (nparts == 0) {
		k_snprintf(where, sizeof(where), "%s", d->label);
		sel_scan_fat(l, i, 0, d->blk, where);
	}
}

void scan_disks(struct scan_list *l)
{
	if (!scan_work())
		return;
	for (int i = 0; i < disk_count(); i++)
		if (!(disk_get(i)->flags & DISK_RAM))
			sel_scan_disk(l, i);
}

/* One line describing a checked candidate (kind, type, size, chain). */
void scan_describe(const struct sel_cand *c, char *out, size_t n)
{
	static const char *const kinds[] = { "", "disk", "partition", "file", "module" };
	if (!c->ok) {
		k_snprintf(out, n, "%s  (unusable: %s)", c->name, c->why);
		return;
	}
	size_t k = (size_t)k_snprintf(out, n, "%s  %s, %s, %llu MiB", c->name, kinds[c->kind],
				      c->type, (unsigned long long)(c->sectors >> 11));
	if (c->depth && k < n)
		k_snprintf(out + k, n - k, ", child of %s (chain of %d)", c->parent, c->depth + 1);
}

/* Search every FAT, exFAT or NTFS volume of every disk for path; fills c (kind FILE) and returns 1 if found. */
int scan_find_path(struct sel_cand *c, const char *path)
{
	if (!scan_work())
		return 0;
	for (int i = 0; i < disk_count(); i++) {
		struct disk *d = disk_get(i);
		if (d->flags & DISK_RAM)
			continue;
		if (img_probe_any(&sel_w->probe, d->blk, IMG_PROBE_DISK, NULL))
			continue;
		uint32_t parts[64];
		int np = 0;
		int rc = part_open(&sel_w->it, d->blk);
		if (rc == PART_E_NO_SIGNATURE || rc == PART_E_BOOT_FLAG)
			parts[np++] = 0;
		else if (rc == PART_OK)
			while (np < 64 && (rc = part_next(&sel_w->it, &sel_w->pi)) != PART_E_END) {
				if (rc == PART_OK)
					parts[np++] = sel_w->pi.index;
				else if (rc != PART_E_BEYOND_DISK)
					break;
			}
		if (np == 0)
			parts[np++] = 0;      /* no partitions: maybe a superfloppy */
		for (int j = 0; j < np; j++) {
			c->kind = SEL_FILE;
			c->disk = i;
			c->part = parts[j];
			k_strlcpy(c->path, path, sizeof(c->path));
			cand_name(c);
			if (iop_file_exists(c))
				return 1;
		}
	}
	return 0;
}

/*
 * Call fn for each FAT, exFAT or NTFS volume of every disk (superfloppy or
 * partition), mounted in sel_w->vol, with its partition (NULL for a whole
 * disk); a nonzero return stops the walk and is returned.
 */
static int scan_each_volume(int (*fn)(void *ctx, int disk, const struct part_info *pi), void *ctx)
{
	for (int i = 0; i < disk_count(); i++) {
		struct disk *d = disk_get(i);
		if ((d->flags & DISK_RAM) || img_probe_any(&sel_w->probe, d->blk, IMG_PROBE_DISK, NULL))
			continue;
		int rc = part_open(&sel_w->it, d->blk), nparts = 0, r;
		if (rc == PART_OK) {
			while ((rc = part_next(&sel_w->it, &sel_w->pi)) != PART_E_END) {
				if (rc != PART_OK) {
					if (rc == PART_E_BEYOND_DISK)
						continue;
					break;
				}
				nparts++;
				if (part_blk_init(&sel_w->pv, d->blk, &sel_w->pi) != PART_OK ||
				    fs_mount(&sel_w->vol, &sel_w->pv.dev))
					continue;
				if ((r = fn(ctx, i, &sel_w->pi)) != 0)
					return r;
			}
		}
		if (nparts == 0 && fs_mount(&sel_w->vol, d->blk) == 0 && (r = fn(ctx, i, NULL)) != 0)
			return r;
	}
	return 0;
}

/* What the volume walks collect. */
struct scan_vol_ctx {
	struct scan_vol *out;
	int max, n;
	int by;
	const char *name;
};

/* scan_each_volume callback: note the volume. */
static int scan_vol_add(void *ctx, int disk, const struct part_info *pi)
{
	struct scan_vol_ctx *s = ctx;
	if (s->n < s->max) {
		s->out[s->n].disk = disk;
		s->out[s->n].part = pi ? pi->index : 0;
		s->n++;
	}
	return 0;
}

int scan_volumes(struct scan_vol *out, int max)
{
	struct scan_vol_ctx s = { out, max, 0, 0, NULL };
	if (!scan_work())
		return 0;
	scan_each_volume(scan_vol_add, &s);
	return s.n;
}

/* Nonzero when a and b are equal ignoring ASCII case. */
static int scan_eq_nocase(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
		char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
		if (x != y)
			return 0;
	}
	return *a == *b;
}

/* scan_each_volume callback: stop at the volume with the wanted label or partition GUID. */
static int scan_vol_match(void *ctx, int disk, const struct part_info *pi)
{
	struct scan_vol_ctx *s = ctx;
	if (s->by == 1 && !scan_eq_nocase(fs_label(&sel_w->vol), s->name))
		return 0;
	if (s->by == 2) {
		char g[37];
		if (!pi || pi->scheme != PART_SCHEME_GPT)
			return 0;
		part_guid_str(pi->uuid, g);
		if (!scan_eq_nocase(g, s->name))
			return 0;
	}
	s->out->disk = disk;
	s->out->part = pi ? pi->index : 0;
	return 1;
}

int scan_find_volume(int by, const char *name, struct scan_vol *out)
{
	struct scan_vol_ctx s = { out, 1, 0, by, name };
	if (!scan_work() || (by != 1 && by != 2))
		return 0;
	return scan_each_volume(scan_vol_match, &s);
}
