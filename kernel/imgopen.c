/* imgopen.c: opens one image candidate with its whole differencing chain: the device under it (disk, partition, FAT file, GRUB module), the image (through its format, image/image.h), block maps and parents. */
#include "imgopen.h"
#include "console.h"
#include "string.h"
#include "phys.h"
#include "mem.h"
#include "../block/disk.h"
#include "../fs/part.h"
#include "../fs/fs.h"
#include "scan.h"             /* struct scan_vol */

#define SEL_FIRST_RUNS 32         /* runs tried before asking ext_build how many are needed */

/* Work areas (never on the 16 KiB stack, not in the resident image): the scan's scratch, then temporary memory. */
struct iop_work {
	struct part_iter mit;
	struct part_info mpi;
	struct fs_vol mvol;
	struct fs_file mfile;
	struct iop_member probe_m;               /* iop_file_exists: only its device fields */
	struct sel_cand pcand;                   /* the child's candidate moved to another volume (parents there) */
	struct sel_cand gcand;                   /* the same, moved to the volume a VHDX volume_path names by GUID */
	char pwhy[320];                          /* what a parent lookup on another volume said */
	struct res_work res;                     /* the parent resolver's try list */
};
static struct iop_work *sel_w;
#define sel_res (&sel_w->res)

/* Allocation: the scan's scratch (phys sel_scr_phys..+IOP_SCRATCH) or, once resident, mem_alloc. */
static uint32_t sel_scr_phys, sel_scr_used;
static int sel_resident;
static uint32_t sel_need;         /* bytes the resident copy of what is opened would take */
static int sel_ignore_timestamp;
static int sel_grow = 1;          /* grow=yes (default) */
static uint32_t sel_growths;      /* writes that made a file longer (iop_growths) */
/* Resident bytes a growable leaf file adds: its spare runs and its growth state. */
#define SEL_GROW_BYTES ((uint32_t)(GROW_SPARE_RUNS * sizeof(struct ext_run) + sizeof(struct fs_grow) + 32))
static uint8_t *sel_ovl_tmp;      /* resident open: temporary memory for vhd_check_overlaps */
static uint32_t sel_ovl_cap;

void *img_alloc(uint32_t bytes, uint32_t align)
{
	return iop_alloc(bytes, align);
}

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

void iop_set_grow(int on)
{
	sel_grow = on;
}

uint32_t iop_growths(void)
{
	return sel_growths;
}

void iop_set_ignore_timestamp(int on)
{
	sel_ignore_timestamp = on;
}

static struct scan_vol sel_pvols[IOP_MAX_PARENT_VOLS];
static int sel_npvols;

void iop_set_parent_vols(const struct scan_vol *vols, int n)
{
	sel_npvols = n < 0 ? 0 : n > IOP_MAX_PARENT_VOLS ? IOP_MAX_PARENT_VOLS : n;
	for (int i = 0; i < sel_npvols; i++)
		sel_pvols[i] = vols[i];
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

/* blk_dev.read of a file on a FAT, exFAT or NTFS volume: its extents. */
static int sel_file_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct iop_member *m = d->priv;
	return blk_read(&m->fdev, lba, count, buf);
}

/* iop_nogrow, the contract in imgopen.h. */
void iop_nogrow(const struct iop_member *m, const char **why, const char **remedy)
{
	if (m->grow && m->grow->err) {
		*why = grow_strerror(m->grow->err);
		*remedy = m->grow->err == GROW_E_FULL ? "free space on that volume (or copy the image to a larger one)"
			  : m->grow->err == GROW_E_FRAGMENTS ? "defragment the volume, or use a fixed VHD"
			  : "use a fixed VHD, or mode=snapshot";
	} else if (m->grow_err) {
		*why = grow_strerror(m->grow_err);
		*remedy = m->grow_err == GROW_E_NTFS
			  ? "use a fixed VHD (or a dynamic one with every block allocated: `vhdtool convert`), a FAT32 or exFAT volume, or mode=snapshot"
			  : "use a fixed VHD, or mode=snapshot";
	} else {
		*why = "growing files is off (grow=no)";
		*remedy = "boot without grow=no, use a fixed VHD, or mode=snapshot";
	}
}

/* blk_dev.linear of a file: fdev's sectors as they are (fdev says whether they are one run of the volume). */
static int sel_file_linear(const struct blk_dev *d, struct blk_dev **under, uint64_t *start)
{
	struct iop_member *m = d->priv;
	*under = &m->fdev;
	*start = 0;
	return 1;
}

/* The first time a write needs the file to grow and it can't: why, and the remedy. */
static void sel_log_nospace(struct iop_member *m, uint64_t lba)
{
	const char *why, *remedy;
	if (m->nospace_logged++)
		return;
	iop_nogrow(m, &why, &remedy);
	con_printf("vhd: %s: write refused (%s): the image file would have to grow "
		   "(file sector %llu, file has %llu): %s; remedy: %s\n", m->image, img_refusal(), (unsigned long long)lba,
		   (unsigned long long)m->fdev.sectors, why, remedy);
}

/* blk_dev.write of a file: through fdev, which grows the file when its format writes past the end (m->grow). */
static int sel_file_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct iop_member *m = d->priv;
	uint64_t before = m->fdev.sectors;
	int rc = blk_write(&m->fdev, lba, count, buf);
	d->sectors = m->fdev.sectors;
	d->size_bytes = m->fdev.size_bytes;
	if (rc == BLK_E_NOSPACE)
		sel_log_nospace(m, lba);
	else if (rc == BLK_E_IO && m->grow && m->grow->broken && !m->nospace_logged++)
		con_printf("vhd: %s: growing the file failed part-way (%s): the volume is left as after a power cut "
			   "(at worst lost clusters, or the file's chain longer than its size); no further growth; remedy: check the volume (fsck.fat / fsck.exfat, "
			   "chkdsk) and the image (`vhdtool check`) on another machine\n", m->image,
			   grow_strerror(m->grow->err));
	if (m->fdev.sectors > before)
		sel_growths++;
	if (rc == BLK_OK && m->fdev.sectors > before && !m->grow_logged++)
		con_printf("vhd: %s: the file grew from %llu to %llu sectors (clusters marked, linked, size written; "
			   "later growths are not logged)\n", m->image, (unsigned long long)before,
			   (unsigned long long)m->fdev.sectors);
	return rc;
}

/* blk_dev.flush of a file. */
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
		*out = disk;
		if (c->kind == SEL_DISK)  /* nothing recognised: the fallback format's open explains */
			m->fmt = img_probe_any(&m->place, disk, IMG_PROBE_DISK, out);
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
	if (sel_place_dev(c, &sel_w->probe_m, &dev, why, sizeof(why)) || fs_mount(&sel_w->mvol, dev) ||
	    fs_open_path(&sel_w->mvol, c->path, &sel_w->mfile))
		return 0;
	return !fs_file_is_dir(&sel_w->mfile);
}

/*
 * Open the image at path (SEL_FILE) or c's place itself into a new member,
 * as format fmt (a parent: its child's), else the format the place's probe
 * or the file's suffix names, else the fallback. SEL_E_NOTFOUND when the
 * file does not exist; SEL_E_OTHER or a format error (positive) with why set.
 */
static int sel_open_member(const struct sel_cand *c, const struct img_format *fmt, const char *path,
			   unsigned flags, struct iop_member **out, char *why, size_t wn)
{
	struct iop_member *m = iop_alloc(IOP_MEMBER_BYTES + img_state_max(), 16);
	struct blk_dev *dev;
	*out = NULL;
	if (!m) {
		k_snprintf(why, wn, "out of memory opening %s", c->name);
		return SEL_E_OTHER;
	}
	m->im = (uint8_t *)m + IOP_MEMBER_BYTES;
	m->image = c->name;
	if (c == &sel_w->pcand || c == &sel_w->gcand) {   /* they change with the next volume tried: keep the names */
		const struct disk *dk = disk_get(c->disk);
		char vol[24];
		if (c->part)
			k_snprintf(vol, sizeof(vol), "%s,%u", dk ? dk->label : "?", c->part);
		else
			k_snprintf(vol, sizeof(vol), "%s", dk ? dk->label : "?");
		uint32_t vn = (uint32_t)strlen(vol) + 1, pn = (uint32_t)strlen(path) + 1;
		char *nm = iop_alloc(vn + vn + pn, 1);
		if (!nm) {
			k_snprintf(why, wn, "out of memory opening %s", c->name);
			return SEL_E_OTHER;
		}
		k_strlcpy(nm, vol, vn);
		k_snprintf(nm + vn, vn + pn, "%s:%s", vol, path);
		m->other_vol = nm;
		m->image = nm + vn;
	}
	int rc = sel_place_dev(c, m, &dev, why, wn);
	if (rc)
		return rc;
	if (c->kind == SEL_FILE) {
		k_strlcpy(m->path, path, sizeof(m->path));
		struct fs_vol *vol = &sel_w->mvol;
		rc = fs_mount(vol, dev);
		if (rc) {
			k_snprintf(why, wn, "%s: no usable FAT, exFAT or NTFS file system: %s: %s (%s)", c->name, fs_type_name(vol),
				   fs_strerror(vol, rc), fs_errname(vol, rc));
			return SEL_E_OTHER;
		}
		rc = fs_open_path(vol, path, &sel_w->mfile);
		if (fs_missing(vol, rc))
			return SEL_E_NOTFOUND;
		if (rc) {
			k_snprintf(why, wn, "%s: %s (%s)", path, fs_strerror(vol, rc), fs_errname(vol, rc));
			return SEL_E_OTHER;
		}
		/* A writable leaf on FAT16/32 or exFAT may grow: runs to spare, and its growth state. */
		int growable = sel_grow && !fmt && !(flags & IMG_OPEN_RDONLY) && vol->type != FS_NTFS;
		uint32_t spare = growable ? GROW_SPARE_RUNS : 0;
		uint32_t cap = SEL_FIRST_RUNS + spare;
		if (sel_grow && !fmt && vol->type != FS_NTFS && !growable)
			sel_need += SEL_GROW_BYTES;      /* a check opens it read-only; the boot will not */
		for (int pass = 0; pass < 2; pass++) {
			struct ext_run *runs = iop_alloc(cap * sizeof(struct ext_run), 16);
			if (!runs) {
				k_snprintf(why, wn, "%s: no memory for %u extents", path, cap);
				return SEL_E_OTHER;
			}
			rc = fs_extents(vol, &sel_w->mfile, &m->map, runs, cap);
			if (rc != EXT_E_OVERFLOW)
				break;
			cap = m->map.needed + spare;
		}
		if (rc) {
			int detail = rc == EXT_E_CHAIN || rc == EXT_E_FS;
			k_snprintf(why, wn, "%s: %s%s%s (%s%s%s)", path, ext_strerror(rc), detail ? ": " : "",
				   detail ? fs_strerror(vol, m->map.fat_err) : "", ext_errname(rc), detail ? ", " : "",
				   detail ? fs_errname(vol, m->map.fat_err) : "");
			return SEL_E_OTHER;
		}
		m->grow_err = sel_grow && !fmt && vol->type == FS_NTFS ? GROW_E_NTFS : 0;
		if (growable) {
			m->grow = iop_alloc(sizeof(struct fs_grow), 16);
			if (!m->grow) {
				k_snprintf(why, wn, "%s: no memory for the file's growth state", path);
				return SEL_E_OTHER;
			}
			m->grow_err = fs_grow_init(m->grow, vol, &sel_w->mfile, &m->map);
			if (m->grow_err)
				m->grow = NULL;
		}
		ext_blk_init(&m->map, &m->fdev);
		m->ldev = m->fdev;
		m->ldev.name = m->image;  /* named in the format's "no room" line */
		m->ldev.read = sel_file_read;
		m->ldev.write = sel_file_write;
		m->ldev.flush = sel_file_flush;
		m->ldev.write_zeroes = NULL;
		m->ldev.linear = sel_file_linear;   /* not fdev's: its priv is the map, ours the member */
		m->ldev.priv = m;
		dev = &m->ldev;
	}
	if (fmt)
		m->fmt = fmt;
	else if (!m->fmt && c->kind == SEL_FILE)
		m->fmt = img_suffix_match(path);
	if (!m->fmt && c->kind != SEL_DISK)
		m->fmt = img_probe_any(&m->place, dev, 0, NULL);
	if (!m->fmt)
		m->fmt = img_fallback();
	rc = m->fmt->open(m->im, dev, flags, c->name);
	if (rc) {
		k_snprintf(why, wn, "the %s %s%s%s cannot be opened: %s (%s)", m->fmt->name, c->name,
			   path && path != c->path ? " parent " : "", path && path != c->path ? path : "",
			   m->fmt->strerror(rc), m->fmt->errname(rc));
		return rc;
	}
	*out = m;
	return 0;
}

/* What m's image is (img_format.info). */
static struct img_info sel_info(const struct iop_member *m)
{
	struct img_info in;
	m->fmt->info(m->im, &in);
	return in;
}

/* The member attached below m, or NULL. */
static struct iop_member *sel_parent(const struct iop_member *m)
{
	void *p = sel_info(m).parent;
	return p ? IOP_MEMBER_OF(p) : NULL;
}

/* Load m's block map (VHD: BAT) into the resident heap and check its blocks don't overlap; 0, or -1 with c->why/remedy set. */
static int sel_load_bat(struct iop_member *m, struct sel_cand *c)
{
	uint32_t bytes = sel_info(m).map_bytes;
	if (!bytes)
		return 0;
	void *bat = iop_alloc(bytes, 16);
	if (!bat) {
		k_snprintf(c->why, sizeof(c->why), "resident heap too small for the BAT of %s (internal error)", c->name);
		c->remedy = "report this as a bug";
		return -1;
	}
	void *scratch = bytes <= sel_ovl_cap ? sel_ovl_tmp : NULL;
	int err = m->fmt->load(m->im, bat, scratch);
	if (!err && !scratch)
		con_printf("vhd: WARNING: no temporary memory for the overlap check; skipped\n");
	if (err) {
		k_snprintf(c->why, sizeof(c->why), "the block table of %s%s%s is damaged: %s (%s)", c->name,
			   m->path[0] ? " member " : "", m->path, m->fmt->strerror(err), m->fmt->errname(err));
		c->remedy = "repair the image on another machine (`vhdtool check`), or restore it from a backup";
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ parent lookup (image/resolve.c) */

/* Load and check a parent's block map once resident (temporary memory for the overlap check); 0 or a format error. */
static int sel_parent_bat(struct iop_member *m)
{
	uint32_t bytes = sel_info(m).map_bytes;
	if (!sel_resident || !bytes)
		return 0;
	return m->fmt->load(m->im, iop_alloc(bytes, 16), bytes <= sel_ovl_cap ? sel_ovl_tmp : NULL);
}

/*
 * The GPT partition, on any disk (not modules), whose unique partition GUID
 * is g (stored byte order: a VHDX volume_path's Volume{GUID}, which Windows
 * gives a GPT partition): 1 with *disk and *part set, else 0.
 */
static int sel_guid_volume(const uint8_t g[16], int *disk, uint32_t *part)
{
	for (int i = 0; i < disk_count(); i++) {
		const struct disk *d = disk_get(i);
		if (!d || (d->flags & DISK_RAM) || part_open(&sel_w->mit, d->blk) != PART_OK)
			continue;
		int rc;
		while ((rc = part_next(&sel_w->mit, &sel_w->mpi)) != PART_E_END) {
			if (rc == PART_E_BEYOND_DISK)
				continue;
			if (rc != PART_OK)
				break;
			if (sel_w->mpi.scheme == PART_SCHEME_GPT && !memcmp(sel_w->mpi.uuid, g, 16)) {
				*disk = i;
				*part = sel_w->mpi.index;
				return 1;
			}
		}
	}
	return 0;
}

/*
 * A try on the volume a VHDX volume_path names by GUID (t->has_vol): the
 * candidate moved to that GPT partition (sel_w->gcand), or NULL when no
 * partition has that GUID (logged) or when c is already a candidate moved
 * to another volume (sel_parent_elsewhere: the try was made in the first
 * pass).
 */
static const struct sel_cand *sel_vol_cand(const struct sel_cand *c, const struct res_try *t)
{
	char g[37];
	int disk;
	uint32_t part;
	if (c == &sel_w->pcand)
		return NULL;
	part_guid_str(t->vol, g);
	if (!sel_guid_volume(t->vol, &disk, &part)) {
		con_printf("vhd: %s: its volume_path names volume {%s}: no GPT partition of any disk has that unique "
			   "partition GUID\n", c->name, g);
		return NULL;
	}
	if (disk == c->disk && part == c->part)
		return c;             /* the child's own volume */
	struct sel_cand *gc = &sel_w->gcand;
	*gc = *c;
	gc->disk = disk;
	gc->part = part;
	cand_name(gc);
	con_printf("vhd: %s: its volume_path names volume {%s}: %s,%u (the GPT partition with that unique partition GUID)\n",
		   c->name, g, disk_get(disk)->label, part);
	return gc;
}

/* img_parent_ops.open_path: the try's path on the candidate's volume (FAT, exFAT, NTFS), or on the volume its GUID names, opened read-only (the child's format) as a new member. */
static int sel_res_open(void *ctx, const struct res_try *t, void **pv, const char **ppath, int *err,
			char *why, size_t wn)
{
	const struct sel_cand *c = ctx;
	char none[8];
	uint32_t mark = sel_scr_used;
	struct iop_member *p;
	if (strlen(t->path) >= SEL_PATH_MAX)
		return RES_NOT_FOUND;
	if (t->has_vol && !(c = sel_vol_cand(c, t)))
		return RES_NOT_FOUND;
	int rc = sel_open_member(c, c->fmt, t->path, IMG_OPEN_RDONLY, &p, wn ? why : none, wn ? wn : sizeof(none));
	if (rc == SEL_E_NOTFOUND) {
		iop_release(mark);
		return RES_NOT_FOUND;
	}
	if (!rc && (rc = sel_parent_bat(p)) != 0 && wn)
		k_snprintf(why, wn, "the block table of parent %s is damaged: %s (%s)", t->path, c->fmt->strerror(rc),
			   c->fmt->errname(rc));
	if (rc) {
		iop_release(mark);    /* resident: a failed try still counts in sel_need */
		if (rc > 0)
			*err = rc;    /* else the resolver's default: an I/O error */
		return RES_ERROR;
	}
	p->via = t->via;
	p->mark = mark;
	*pv = p->im;
	*ppath = p->path;
	return RES_FOUND;
}

/* img_parent_ops.close: a parent that was opened and then refused gives its scratch back. */
static void sel_res_close(void *ctx, void *im)
{
	(void)ctx;
	iop_release(IOP_MEMBER_OF(im)->mark);
}

static const struct img_parent_ops sel_res_ops = { sel_res_open, sel_res_close, "vhd_ignore_timestamp accepts it" };

/*
 * m's parent is not on its child's volume: the same tries (its locators'
 * paths) on each volume of sel_pvols but the child's own, in order. 0 with
 * *pv set; IMG_NO_PARENT (c->why kept: the child's volume's tries, plus
 * how many other volumes were searched); or another error with c->why set
 * (a file there exists but is refused).
 */
static int sel_parent_elsewhere(struct sel_cand *c, struct iop_member *m, struct iop_member *leaf,
				unsigned rflags, void **pv)
{
	struct sel_cand *pc = &sel_w->pcand;
	int searched = 0;
	for (int i = 0; i < sel_npvols; i++) {
		if (sel_pvols[i].disk == c->disk && sel_pvols[i].part == c->part)
			continue;
		const char *ppath;
		*pc = *c;
		pc->disk = sel_pvols[i].disk;
		pc->part = sel_pvols[i].part;
		cand_name(pc);
		/* Relative tries are joined to the child's folder: the same folder on the other volume. */
		int rc = c->fmt->find_parent(&sel_res_ops, pc, sel_res, m->im, m->path, leaf->im, rflags, pv, &ppath,
					     sel_w->pwhy, sizeof(sel_w->pwhy));
		searched++;
		if (rc == 0) {
			con_printf("vhd: %s: parent %s found on %s (not on its child's volume)\n", c->name, ppath,
				   IOP_MEMBER_OF(*pv)->other_vol);
			return 0;
		}
		if (rc != IMG_NO_PARENT) {
			k_strlcpy(c->why, sel_w->pwhy, sizeof(c->why));
			return rc;
		}
	}
	if (searched) {
		size_t k = strlen(c->why);
		k_snprintf(c->why + k, sizeof(c->why) - k, "; not on %d other volume(s) either", searched);
	}
	return IMG_NO_PARENT;
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
	rc = sel_open_member(c, NULL, c->path, leaf_flags, &leaf, c->why, sizeof(c->why));
	if (rc == SEL_E_NOTFOUND) {
		k_snprintf(c->why, sizeof(c->why), "%s: no such file", c->name);
		c->remedy = "check the path in vhd= (names are case-insensitive; '/' or '\\' separate folders)";
		return NULL;
	}
	if (rc)
		return NULL;
	struct img_info in = sel_info(leaf);
	c->fmt = leaf->fmt;
	c->type = in.type;
	c->sectors = in.sectors;
	if (sel_resident && sel_load_bat(leaf, c))
		return NULL;
	for (m = leaf; sel_info(m).needs_parent; m = p) {
		if (c->kind != SEL_FILE) {
			k_snprintf(c->why, sizeof(c->why),
				   "the %s is a differencing image: its parent is a file, and a bare %s has no file system to find it in",
				   c->fmt->name, c->kind == SEL_DISK ? "disk" : c->kind == SEL_PART ? "partition" : "GRUB module");
			c->remedy = "merge the chain into one image (`vhdtool convert`) and attach that, or put the images on a FAT, exFAT or NTFS partition";
			return NULL;
		}
		void *pv;
		const char *ppath;
		unsigned rflags = RES_FOLD_CASE | RES_VOLUME_GUID | (sel_ignore_timestamp ? RES_IGNORE_TIMESTAMP : 0);
		rc = c->fmt->find_parent(&sel_res_ops, c, sel_res, m->im, m->path, leaf->im, rflags, &pv, &ppath,
					 c->why, sizeof(c->why));
		if (rc == IMG_NO_PARENT)
			rc = sel_parent_elsewhere(c, m, leaf, rflags, &pv);
		p = rc ? NULL : IOP_MEMBER_OF(pv);
		if (!p) {
			if (rc == IMG_NO_PARENT)
				c->remedy = "put the parent where the child's locators point (or next to the child), "
					    "or merge the chain with `vhdtool convert`";
			else
				c->remedy = "the parent was replaced or changed after the child was made: restore the "
					    "original parent (`vhdtool check` on the child explains; vhd_ignore_timestamp "
					    "accepts a changed time stamp only)";
			return NULL;
		}
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
	for (m = leaf; m; m = sel_parent(m))
		if (sel_info(m).map_bytes > c->max_bat)
			c->max_bat = sel_info(m).map_bytes;
	if (!sel_resident)
		for (m = leaf; m; m = sel_parent(m))
			sel_need += sel_info(m).map_bytes + 16;
	c->need = sel_need;
	c->ok = 1;
	return leaf;
}

void iop_check(struct sel_cand *c)
{
	uint32_t mark = sel_scr_used;
	iop_open_chain(c, IMG_OPEN_RDONLY);
	sel_scr_used = mark;
}

