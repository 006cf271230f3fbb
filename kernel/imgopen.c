/* imgopen.c: opens one image candidate with its whole differencing chain: the device under it (disk, partition, FAT file, GRUB module), the VHD, its BATs and parents. */
#include "imgopen.h"
#include "console.h"
#include "string.h"
#include "phys.h"
#include "mem.h"
#include "../block/disk.h"
#include "../fs/part.h"
#include "../fs/fat.h"
#include "../fs/fat_format.h"

#define SEL_FIRST_RUNS 32         /* runs tried before asking ext_build how many are needed */
#define SEL_MAX_TRIES 12          /* parent paths tried per child */

/* Work areas (never on the 16 KiB stack, not in the resident image): the scan's scratch, then temporary memory. */
struct iop_work {
	struct part_iter mit;
	struct part_info mpi;
	struct fat_vol mvol;
	struct fat_file mfile;
	struct iop_member probe_m;               /* iop_file_exists: only its device fields */
	char loc[VHD_PATH_MAX];
	char tries[SEL_MAX_TRIES][SEL_PATH_MAX];
	const char *try_via[SEL_MAX_TRIES];      /* which locator gave each try */
};
static struct iop_work *sel_w;

/* Allocation: the scan's scratch (phys sel_scr_phys..+IOP_SCRATCH) or, once resident, mem_alloc. */
static uint32_t sel_scr_phys, sel_scr_used;
static int sel_resident;
static uint32_t sel_need;         /* bytes the resident copy of what is opened would take */
static int sel_ignore_timestamp;
static uint8_t *sel_ovl_tmp;      /* resident open: temporary memory for vhd_check_overlaps */
static uint32_t sel_ovl_cap;

void *iop_alloc(uint32_t bytes, uint32_t align)
{
	sel_need += bytes + align;
	if (sel_resident) {
		void *p = mem_alloc(bytes, align);
		if (p)
			memset(p, 0, bytes);
		return p;
	}
	uint32_t p = (sel_scr_phys + sel_scr_used + align - 1) & ~(align - 1);
	if (!sel_scr_phys || p + bytes > sel_scr_phys + IOP_SCRATCH)
		return NULL;
	sel_scr_used = p + bytes - sel_scr_phys;
	void *ptr = phys_ptr(p);
	memset(ptr, 0, bytes);
	return ptr;
}

uint32_t iop_mark(void)
{
	return sel_scr_used;
}

void iop_release(uint32_t mark)
{
	if (!sel_resident)
		sel_scr_used = mark;
}

void iop_set_ignore_timestamp(int on)
{
	sel_ignore_timestamp = on;
}

/* Is [lo, hi) inside usable RAM and clear of every other range (reserved, modules)? */
static int sel_free_ram(uint64_t lo, uint64_t hi)
{
	int inside = 0;
	for (int i = 0; i < mem_nranges; i++) {
		uint64_t b = mem_map[i].base, e = b + mem_map[i].len;
		if (mem_map[i].type == MEM_USABLE && b <= lo && hi <= e)
			inside = 1;
		else if (mem_map[i].type != MEM_USABLE && lo < e && b < hi)
			return 0;
	}
	return inside;
}

/* iop_use_scratch: a caller-chosen scratch (host unit tests), taken by the next iop_init. */
static uint32_t sel_scr_preset;

void iop_use_scratch(uint32_t phys)
{
	sel_scr_preset = phys;
}

int iop_init(struct kerr *e)
{
	extern uint8_t __image_end[];
	uint64_t lo = ((uint64_t)kernel_base + (uint32_t)(uintptr_t)__image_end + 0xFFFF) & ~0xFFFFull;
	sel_resident = 0;
	sel_scr_phys = sel_scr_used = 0;
	if (sel_scr_preset) {
		sel_scr_phys = sel_scr_preset;
		sel_w = iop_alloc(sizeof(*sel_w), 16);
		return 0;
	}
	for (uint64_t b = lo; b + IOP_SCRATCH <= 0xFFFFFFFFull && b <= lo + (256u << 20); b += 0x10000) {
		if (sel_free_ram(b, b + IOP_SCRATCH)) {
			sel_scr_phys = (uint32_t)b;
			sel_w = iop_alloc(sizeof(*sel_w), 16);
			return 0;
		}
	}
	return kerr_set(e, "no free memory above the kernel for scanning the disks", "give the machine more memory");
}

uint32_t iop_scratch_end(void)
{
	return sel_scr_phys ? sel_scr_phys + IOP_SCRATCH : 0;
}

int iop_go_resident(uint32_t max_bat, uint32_t temp_avoid_hi, struct kerr *e)
{
	uint32_t wbytes = (sizeof(struct iop_work) + 0xFFF) & ~0xFFFu;
	uint8_t *t = mem_temp(wbytes + max_bat, temp_avoid_hi);
	sel_resident = 1;
	sel_w = (struct iop_work *)(void *)t;
	sel_ovl_tmp = t ? t + wbytes : NULL;
	sel_ovl_cap = t ? max_bat : 0;
	if (!t)
		sel_w = mem_alloc(sizeof(*sel_w), 16);
	if (!sel_w)
		return kerr_set(e, "no memory for opening the images (internal error)", "give the machine more memory");
	return 0;
}

void cand_name(struct sel_cand *c)
{
	const struct disk *d = disk_get(c->disk);
	const char *label = d ? d->label : "hd?";
	if (c->kind == SEL_FILE && c->part)
		k_snprintf(c->name, sizeof(c->name), "%s,%u:%s", label, c->part, c->path);
	else if (c->kind == SEL_FILE)
		k_snprintf(c->name, sizeof(c->name), "%s:%s", label, c->path);
	else if (c->part)
		k_snprintf(c->name, sizeof(c->name), "%s,%u", label, c->part);
	else
		k_snprintf(c->name, sizeof(c->name), "%s", label);
}

/* ------------------------------------------------------------------ devices */

/* blk_dev.read of a FAT file: its extents. */
static int sel_file_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct iop_member *m = d->priv;
	return blk_read(&m->fdev, lba, count, buf);
}

/* blk_dev.write of a FAT file: its existing sectors only; a write that would grow the file is logged once. */
static int sel_file_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct iop_member *m = d->priv;
	int rc = blk_write(&m->fdev, lba, count, buf);
	if (rc == BLK_E_NOSPACE && !m->nospace_logged++)
		con_printf("vhd: %s: write refused (INT 13h status CCh): the VHD file would have to grow "
			   "(file sector %llu, file has %llu), and vhdboot never changes the FAT file system; "
			   "use a fixed VHD or mode=snapshot\n", m->image, (unsigned long long)lba,
			   (unsigned long long)m->fdev.sectors);
	return rc;
}

/* blk_dev.flush of a FAT file. */
static int sel_file_flush(struct blk_dev *d)
{
	struct iop_member *m = d->priv;
	return blk_flush(&m->fdev);
}

/* ------------------------------------------------------------------ opening one image */

enum { SEL_E_NOTFOUND = -1, SEL_E_OTHER = -2 };

/*
 * The device under image c (disk, partition or module) into m; for files
 * the volume's device. Returns 0, or SEL_E_OTHER with why set.
 */
static int sel_place_dev(const struct sel_cand *c, struct iop_member *m, struct blk_dev **out,
			 char *why, size_t wn)
{
	const struct disk *dk = disk_get(c->disk);
	if (!dk) {
		k_snprintf(why, wn, "%s: no such disk", c->name);
		return SEL_E_OTHER;
	}
	struct blk_dev *disk = dk->blk;
	if (!c->part) {
		*out = c->kind == SEL_DISK ? vhdblk_probe_disk(&m->vdisk, disk) : disk;
		if (!*out)
			*out = disk;          /* no footer anywhere: vhd_open explains */
		return 0;
	}
	int rc = part_find(&sel_w->mit, disk, c->part, &sel_w->mpi);
	if (rc == PART_OK)
		rc = part_blk_init(&m->pv, disk, &sel_w->mpi);
	if (rc) {
		k_snprintf(why, wn, "%s has no usable partition %u: %s (%s)", dk->label, c->part,
			   part_strerror(rc), part_errname(rc));
		return SEL_E_OTHER;
	}
	m->pv.dev.name = "partition";
	*out = &m->pv.dev;
	return 0;
}

int iop_file_exists(const struct sel_cand *c)
{
	struct blk_dev *dev;
	char why[8];
	memset(&sel_w->probe_m, 0, sizeof(sel_w->probe_m));
	if (sel_place_dev(c, &sel_w->probe_m, &dev, why, sizeof(why)) || fat_mount(&sel_w->mvol, dev) ||
	    fat_open_path(&sel_w->mvol, c->path, &sel_w->mfile))
		return 0;
	return !(sel_w->mfile.attr & FAT_ATTR_DIR);
}

/*
 * Open the image at path (SEL_FILE) or c's place itself into a new member.
 * SEL_E_NOTFOUND when the file does not exist; SEL_E_OTHER or a vhd_err
 * (positive) with why set.
 */
static int sel_open_member(const struct sel_cand *c, const char *path, unsigned vflags,
			   struct iop_member **out, char *why, size_t wn)
{
	struct iop_member *m = iop_alloc(sizeof(*m), 16);
	struct blk_dev *dev;
	*out = NULL;
	if (!m) {
		k_snprintf(why, wn, "out of memory opening %s", c->name);
		return SEL_E_OTHER;
	}
	memset(m, 0, sizeof(*m));
	m->image = c->name;
	int rc = sel_place_dev(c, m, &dev, why, wn);
	if (rc)
		return rc;
	if (c->kind == SEL_FILE) {
		k_strlcpy(m->path, path, sizeof(m->path));
		rc = fat_mount(&sel_w->mvol, dev);
		if (rc) {
			k_snprintf(why, wn, "%s: no FAT file system: %s (%s)", c->name, fat_strerror(rc), fat_errname(rc));
			return SEL_E_OTHER;
		}
		rc = fat_open_path(&sel_w->mvol, path, &sel_w->mfile);
		if (rc == FAT_E_NOT_FOUND || rc == FAT_E_NOT_DIR)
			return SEL_E_NOTFOUND;
		if (rc) {
			k_snprintf(why, wn, "%s: %s (%s)", path, fat_strerror(rc), fat_errname(rc));
			return SEL_E_OTHER;
		}
		uint32_t cap = SEL_FIRST_RUNS;
		for (int pass = 0; pass < 2; pass++) {
			struct ext_run *runs = iop_alloc(cap * sizeof(struct ext_run), 16);
			if (!runs) {
				k_snprintf(why, wn, "%s: no memory for %u extents", path, cap);
				return SEL_E_OTHER;
			}
			rc = ext_build(&sel_w->mvol, &sel_w->mfile, &m->map, runs, cap);
			if (rc != EXT_E_OVERFLOW)
				break;
			cap = m->map.needed;
		}
		if (rc) {
			k_snprintf(why, wn, "%s: %s (%s%s%s)", path, ext_strerror(rc), ext_errname(rc),
				   rc == EXT_E_CHAIN ? ", " : "", rc == EXT_E_CHAIN ? fat_errname(m->map.fat_err) : "");
			return SEL_E_OTHER;
		}
		ext_blk_init(&m->map, &m->fdev);
		m->ldev = m->fdev;
		m->ldev.name = c->name;   /* named in vhdblk's "no room" line */
		m->ldev.read = sel_file_read;
		m->ldev.write = sel_file_write;
		m->ldev.flush = sel_file_flush;
		m->ldev.write_zeroes = NULL;
		m->ldev.priv = m;
		dev = &m->ldev;
	}
	rc = vhd_open(&m->v, dev, vflags);
	if (rc) {
		k_snprintf(why, wn, "the VHD %s%s%s cannot be opened: %s (%s)", c->name,
			   path && path != c->path ? " parent " : "", path && path != c->path ? path : "",
			   vhd_strerror(rc), vhd_errname(rc));
		return rc;
	}
	*out = m;
	return 0;
}

/* Load m's BAT into the resident heap and check its blocks don't overlap; 0, or -1 with c->why/remedy set. */
static int sel_load_bat(struct iop_member *m, struct sel_cand *c)
{
	uint32_t bytes = (uint32_t)vhd_bat_bytes(&m->v);
	if (!bytes)
		return 0;
	uint32_t *bat = iop_alloc(bytes, 16);
	if (!bat) {
		k_snprintf(c->why, sizeof(c->why), "resident heap too small for the BAT of %s (internal error)", c->name);
		c->remedy = "report this as a bug";
		return -1;
	}
	int err = vhd_load_bat(&m->v, bat);
	if (!err) {
		uint32_t *scratch = bytes <= sel_ovl_cap ? (uint32_t *)(void *)sel_ovl_tmp : NULL;
		if (scratch)
			err = vhd_check_overlaps(&m->v, scratch);
		else
			con_printf("vhd: WARNING: no temporary memory for the overlap check; skipped\n");
	}
	if (err) {
		k_snprintf(c->why, sizeof(c->why), "the block table of %s%s%s is damaged: %s (%s)", c->name,
			   m->path[0] ? " member " : "", m->path, vhd_strerror(err), vhd_errname(err));
		c->remedy = "repair the image on another machine (`vhdtool check`), or restore it from a backup";
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ parent lookup */

/* Append the normalised form of dir + "/" + rel (rel absolute: from the root) to the try list. */
static void sel_add_try(int *n, const char *dir, const char *rel, const char *via)
{
	char buf[SEL_PATH_MAX * 2];
	char out[SEL_PATH_MAX];
	size_t len = 0;
	if (*n >= SEL_MAX_TRIES)
		return;
	if (rel[0] == '/')
		k_snprintf(buf, sizeof(buf), "%s", rel);
	else
		k_snprintf(buf, sizeof(buf), "%s/%s", dir, rel);
	/* Resolve ".", ".." and repeated separators; ".." above the root makes the path useless. */
	const char *p = buf;
	out[0] = 0;
	while (*p) {
		while (*p == '/' || *p == '\\')
			p++;
		const char *s = p;
		while (*p && *p != '/' && *p != '\\')
			p++;
		size_t k = (size_t)(p - s);
		if (k == 0 || (k == 1 && s[0] == '.'))
			continue;
		if (k == 2 && s[0] == '.' && s[1] == '.') {
			if (len == 0)
				return;
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
			out[len] = 0;
			continue;
		}
		if (len + 1 + k + 1 > sizeof(out))
			return;
		out[len++] = '/';
		memcpy(out + len, s, k);
		len += k;
		out[len] = 0;
	}
	if (!len)
		return;
	for (int i = 0; i < *n; i++)
		if (!strcmp(sel_w->tries[i], out))
			return;
	sel_w->try_via[*n] = via;
	k_strlcpy(sel_w->tries[(*n)++], out, SEL_PATH_MAX);
}

/* Format a 16-byte id as 8-4-4-4-12 hex. */
static void sel_uuid(const uint8_t u[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	int k = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[k++] = '-';
		out[k++] = hex[u[i] >> 4];
		out[k++] = hex[u[i] & 15];
	}
	out[k] = 0;
}

/* Explain why vhd_set_parent refused parent p for child ch: which check failed. */
static void sel_explain(int rc, const struct iop_member *ch, const struct iop_member *p, char *why, size_t wn)
{
	char a[37], b[37];
	switch (rc) {
	case VHD_E_PARENT_UUID:
		sel_uuid(ch->v.header.parent_uuid, a);
		sel_uuid(p->v.footer.uuid, b);
		k_snprintf(why, wn, "parent unique id mismatch: %s expects parent id %s, %s has %s (%s)",
			   ch->path, a, p->path, b, vhd_errname(rc));
		break;
	case VHD_E_PARENT_TIMESTAMP:
		k_snprintf(why, wn, "parent time stamp mismatch: %s expects %u, %s has %u (%s); "
			   "vhd_ignore_timestamp accepts it", ch->path, ch->v.header.parent_timestamp,
			   p->path, p->v.footer.timestamp, vhd_errname(rc));
		break;
	case VHD_E_PARENT_SIZE:
		k_snprintf(why, wn, "parent size mismatch: %s is %llu bytes, %s is %llu bytes (%s)", ch->path,
			   (unsigned long long)ch->v.footer.cur_size, p->path,
			   (unsigned long long)p->v.footer.cur_size, vhd_errname(rc));
		break;
	case VHD_E_CHAIN_LOOP:
		k_snprintf(why, wn, "differencing chain loop: %s already appears in the chain (%s)", p->path,
			   vhd_errname(rc));
		break;
	case VHD_E_CHAIN_DEPTH:
		k_snprintf(why, wn, "differencing chain deeper than %d images at %s (%s)", VHD_MAX_CHAIN, p->path,
			   vhd_errname(rc));
		break;
	default:
		k_snprintf(why, wn, "%s cannot be the parent of %s: %s (%s)", p->path, ch->path,
			   vhd_strerror(rc), vhd_errname(rc));
		break;
	}
}

/*
 * Find, open (read-only) and attach the parent of ch on c's volume:
 * W2ru relative to ch's folder, then W2ku without its drive letter from
 * the root, then the parent's name in ch's folder. Returns the parent, or
 * NULL with why set (the first real failure, else every path tried).
 */
static struct iop_member *sel_find_parent(const struct sel_cand *c, struct iop_member *ch,
					  struct iop_member *leaf, char *why, size_t wn)
{
	char dir[SEL_PATH_MAX];
	int n = 0, best = 0;
	k_strlcpy(dir, ch->path, sizeof(dir));
	char *slash = dir;
	for (char *q = dir; *q; q++)
		if (*q == '/')
			slash = q;
	*slash = 0;                    /* "/images/x.vhd" -> "/images", "/x.vhd" -> "" */

	for (int idx = 0; idx < 16; idx++) {
		uint32_t code = 0;
		int rc = vhd_parent_candidate(&ch->v, idx, sel_w->loc, sizeof(sel_w->loc), &code);
		if (rc == VHD_E_NO_LOCATOR)
			break;
		if (rc || code == VHD_PLAT_MACX)
			continue;
		const char *p = sel_w->loc;
		if (((p[0] | 0x20) >= 'a' && (p[0] | 0x20) <= 'z') && p[1] == ':')
			p += 2;                /* "C:/vhd/base.vhd": the drive letter means nothing here */
		if (code == 0) {           /* the parent's file name: in the child's folder */
			const char *base = p;
			for (const char *q = p; *q; q++)
				if (*q == '/' || *q == '\\')
					base = q + 1;
			sel_add_try(&n, dir, base, "parent name");
		} else {
			sel_add_try(&n, dir, p, code == VHD_PLAT_W2RU ? "W2ru locator" : "W2ku locator");
		}
	}
	for (int i = 0; i < n; i++) {
		/* A try that fails still costs its member when resident: sel_need keeps counting it. */
		uint32_t mark = sel_scr_used;
		struct iop_member *p;
		int rc = sel_open_member(c, sel_w->tries[i], VHD_OPEN_RDONLY, &p, best ? sel_w->loc : why,
					 best ? sizeof(sel_w->loc) : wn);
		if (rc == SEL_E_NOTFOUND) {
			if (!sel_resident)
				sel_scr_used = mark;
			continue;
		}
		if (rc == 0) {
			unsigned pf = sel_ignore_timestamp ? VHD_PARENT_IGNORE_TIMESTAMP : 0;
			rc = vhd_set_parent(&ch->v, &p->v, &leaf->v, pf);
			if (rc == 0) {
				p->via = sel_w->try_via[i];
				return p;
			}
			if (!best)
				sel_explain(rc, ch, p, why, wn);
		}
		best = 1;
		if (!sel_resident)
			sel_scr_used = mark;
	}
	if (best)
		return NULL;
	size_t off = (size_t)k_snprintf(why, wn, "the parent of %s was not found (%s): ", ch->path,
					vhd_errname(VHD_E_PARENT_NOT_FOUND));
	if (n == 0)
		k_snprintf(why + off, wn - off, "no usable parent locator or name");
	for (int i = 0; i < n && off < wn; i++)
		off += (size_t)k_snprintf(why + off, wn - off, "%s%s", i ? ", " : "tried ", sel_w->tries[i]);
	return NULL;
}

/*
 * iop_open_chain, the contract in imgopen.h.
 */
struct iop_member *iop_open_chain(struct sel_cand *c, unsigned leaf_flags)
{
	struct iop_member *leaf, *m, *p;
	int rc;
	sel_need = 0;
	c->ok = 0;
	c->depth = 0;
	c->parent[0] = 0;
	c->remedy = "repair or recreate the image on another machine (`vhdtool check` explains the defect)";
	uint32_t mark = sel_scr_used;
	rc = sel_open_member(c, c->path, leaf_flags, &leaf, c->why, sizeof(c->why));
	if (rc == VHD_E_SAVED_STATE && !(leaf_flags & VHD_OPEN_RDONLY)) {
		con_printf("vhd: WARNING: %s is marked \"saved state\" (a VM was suspended on it): opening it read-only\n",
			   c->name);
		if (!sel_resident)
			sel_scr_used = mark;
		rc = sel_open_member(c, c->path, leaf_flags | VHD_OPEN_RDONLY, &leaf, c->why, sizeof(c->why));
	}
	if (rc == SEL_E_NOTFOUND) {
		k_snprintf(c->why, sizeof(c->why), "%s: no such file", c->name);
		c->remedy = "check the path in vhd= (names are case-insensitive; '/' or '\\' separate folders)";
		return NULL;
	}
	if (rc)
		return NULL;
	c->type = leaf->v.footer.type;
	c->sectors = leaf->v.sectors;
	if (sel_resident && sel_load_bat(leaf, c))
		return NULL;
	for (m = leaf; m->v.footer.type == VHD_TYPE_DIFF; m = p) {
		if (c->kind != SEL_FILE) {
			k_snprintf(c->why, sizeof(c->why),
				   "the VHD is a differencing image: its parent is a file, and a bare %s has no file system to find it in",
				   c->kind == SEL_DISK ? "disk" : c->kind == SEL_PART ? "partition" : "GRUB module");
			c->remedy = "merge the chain into one image (`vhdtool convert`) and attach that, or put the images on a FAT partition";
			return NULL;
		}
		p = sel_find_parent(c, m, leaf, c->why, sizeof(c->why));
		if (!p) {
			if (!strncmp(c->why, "the parent of", 13))
				c->remedy = "put the parent where the child's locators point (or next to the child), "
					    "or merge the chain with `vhdtool convert`";
			else
				c->remedy = "the parent was replaced or changed after the child was made: restore the "
					    "original parent (`vhdtool check` on the child explains; vhd_ignore_timestamp "
					    "accepts a changed time stamp only)";
			return NULL;
		}
		if (sel_resident && sel_load_bat(p, c))
			return NULL;
		if (!c->depth++) {
			const char *base = p->path;
			for (const char *q = p->path; *q; q++)
				if (*q == '/')
					base = q + 1;
			k_strlcpy(c->parent, base, sizeof(c->parent));
		}
	}
	/* BATs are allocated only when resident; count them for the size estimate. */
	c->max_bat = 0;
	for (m = leaf; m; m = m->v.parent ? (struct iop_member *)IOP_MEMBER_OF(m->v.parent) : NULL)
		if ((uint32_t)vhd_bat_bytes(&m->v) > c->max_bat)
			c->max_bat = (uint32_t)vhd_bat_bytes(&m->v);
	if (!sel_resident)
		for (m = leaf; m; m = m->v.parent ? (struct iop_member *)IOP_MEMBER_OF(m->v.parent) : NULL)
			sel_need += (uint32_t)vhd_bat_bytes(&m->v) + 16;
	c->need = sel_need;
	c->ok = 1;
	return leaf;
}

void iop_check(struct sel_cand *c)
{
	uint32_t mark = sel_scr_used;
	iop_open_chain(c, VHD_OPEN_RDONLY);
	sel_scr_used = mark;
}

