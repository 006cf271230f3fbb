/* select.c: finds VHD images on ATA disks (whole disk, partition, FAT file) and in GRUB modules, chooses them, opens their parent chains. */
#include "select.h"
#include "menu.h"
#include "console.h"
#include "string.h"
#include "phys.h"
#include "mem.h"
#include "vhdblk.h"
#include "../fs/part.h"
#include "../fs/fat.h"
#include "../fs/fat_format.h"
#include "../fs/extent.h"

#define MB_INFO_MODS 0x8u
#define SEL_FIRST_RUNS 32         /* runs tried before asking ext_build how many are needed */
#define SEL_MAX_TRIES 12          /* parent paths tried per child */

/* One image of a chain with every device under it; allocated from the scan's scratch or the resident heap. */
struct sel_member {
	struct vhd v;
	struct blk_window pv;     /* the partition (pv.dev) */
	struct ext_map map;       /* the file's runs (fdev.priv) */
	struct blk_dev fdev;
	struct blk_dev ldev;      /* fdev plus a log line when a write must grow the file */
	struct vhdblk_disk vdisk; /* a whole disk (or a VHD at its start: vhdblk_probe_disk) */
	struct blk_dev ram;       /* a GRUB module */
	uint32_t ram_phys;
	int nospace_logged;
	const char *image;        /* the chosen image's name, for messages */
	char path[SEL_PATH_MAX];  /* on the FAT volume ("" if not a file) */
	const char *via;          /* a parent: the locator that found it ("W2ru", "W2ku", "name") */
};

/* A GRUB module: where it lies and its command line. */
struct sel_module {
	uint32_t start, end;
	char name[96];
};

static const struct cmdline *sel_cmd;
static uint32_t sel_tsc_per_ms;
static struct sel_module sel_mods[SEL_MAX_MODULES];
static int sel_nmods;
static struct ata_disk *sel_disks;
static int sel_ndisks;
static int sel_ncands;
static struct sel_cand sel_chosen[SEL_MAX_IMAGES]; /* resident copies of the chosen candidates */
static struct sel_image sel_images[SEL_MAX_IMAGES];
static int sel_nimages;

/* Allocation: the scan's scratch (phys sel_scr_phys..+SEL_SCRATCH) or, once resident, mem_alloc. */
static uint32_t sel_scr_phys, sel_scr_used;
static int sel_resident;
static uint32_t sel_need;         /* bytes the resident copy of what is opened would take */

/*
 * Work areas (about 35 KiB; never on the 16 KiB stack, not in the resident
 * image): in the scan's scratch, then in temporary memory below the
 * resident region while sel_open runs; dead once the guest runs.
 */
struct sel_work {
	struct sel_cand cands[SEL_MAX_CANDS];
	struct sel_cand named[SEL_MAX_IMAGES];   /* vhd= items */
	char lines[SEL_MAX_CANDS][160];          /* menu lines */
	const char *names[SEL_MAX_CANDS];
	int map[SEL_MAX_CANDS];
	struct part_iter it, mit;
	struct part_info pi, mpi;
	struct fat_vol vol, mvol;
	struct fat_file mfile;
	struct blk_window pv;                    /* the partition being scanned (pv.dev) */
	struct vhdblk_disk probe;
	struct sel_member probe_m;               /* sel_search_path: only its device fields */
	char loc[VHD_PATH_MAX];
	char tries[SEL_MAX_TRIES][SEL_PATH_MAX];
	const char *try_via[SEL_MAX_TRIES];      /* which locator gave each try */
	uint8_t sec[BLK_SECTOR];
};
static struct sel_work *sel_w;
static uint8_t *sel_ovl_tmp;      /* resident open: temporary memory for vhd_check_overlaps */
static uint32_t sel_ovl_cap;

const char *sel_type_name(uint32_t t)
{
	return t == VHD_TYPE_FIXED ? "fixed" : t == VHD_TYPE_DYNAMIC ? "dynamic" :
	       t == VHD_TYPE_DIFF ? "differencing" : "unknown";
}

/* bytes (aligned) from the scratch or the resident heap; NULL when full. */
static void *sel_alloc(uint32_t bytes, uint32_t align)
{
	sel_need += bytes + align;
	if (sel_resident)
		return mem_alloc(bytes, align);
	uint32_t p = (sel_scr_phys + sel_scr_used + align - 1) & ~(align - 1);
	if (!sel_scr_phys || p + bytes > sel_scr_phys + SEL_SCRATCH)
		return NULL;
	sel_scr_used = p + bytes - sel_scr_phys;
	void *ptr = phys_ptr(p);
	memset(ptr, 0, bytes);
	return ptr;
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

/* Pick the scan's scratch: the lowest free 1 MiB above the loaded kernel. */
static void sel_scratch_init(void)
{
	extern uint8_t __image_end[];
	uint64_t lo = ((uint64_t)kernel_base + (uint32_t)(uintptr_t)__image_end + 0xFFFF) & ~0xFFFFull;
	for (uint64_t b = lo; b + SEL_SCRATCH <= 0xFFFFFFFFull; b += 0x10000) {
		if (sel_free_ram(b, b + SEL_SCRATCH)) {
			sel_scr_phys = (uint32_t)b;
			return;
		}
		if (b > lo + (256u << 20))
			break;
	}
	boot_fail("no free memory above the kernel for scanning the disks",
		  "give the machine more memory");
}

uint32_t sel_scratch_end(void)
{
	return sel_scr_phys ? sel_scr_phys + SEL_SCRATCH : 0;
}

/* Little-endian dword at physical p. */
static uint32_t sel_rd32(uint32_t p)
{
	const volatile uint8_t *b = phys_ptr(p);
	return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

void sel_init(uint32_t mbi_phys, const struct cmdline *cmd, uint32_t tsc_per_ms)
{
	sel_cmd = cmd;
	sel_tsc_per_ms = tsc_per_ms;
	sel_nmods = 0;
	if (!(sel_rd32(mbi_phys) & MB_INFO_MODS))
		return;
	uint32_t count = sel_rd32(mbi_phys + 20), addr = sel_rd32(mbi_phys + 24);
	for (uint32_t i = 0; i < count && sel_nmods < SEL_MAX_MODULES; i++) {
		struct sel_module *m = &sel_mods[sel_nmods];
		m->start = sel_rd32(addr + 16 * i);
		m->end = sel_rd32(addr + 16 * i + 4);
		uint32_t s = sel_rd32(addr + 16 * i + 8);
		m->name[0] = 0;
		if (s) {
			const char *str = phys_ptr(s);
			k_strlcpy(m->name, str, sizeof(m->name));
		}
		if (m->end <= m->start)
			continue;
		/* GRUB put it anywhere in usable RAM: keep it there and hide it from everyone else. */
		if (!mem_reserve(m->start, ((uint64_t)m->end - m->start + 0xFFF) & ~0xFFFull))
			boot_fail("too many memory ranges to reserve the GRUB module", "report this as a bug");
		con_printf("select: module%d \"%s\" at %08x-%08x (%u KiB), reserved from the guest's memory map\n",
			   sel_nmods, m->name, m->start, m->end - 1, (m->end - m->start) >> 10);
		sel_nmods++;
	}
}

/* Does sector lba of dev start with the VHD footer cookie? */
static int sel_cookie_at(struct blk_dev *dev, uint64_t lba)
{
	if (blk_read(dev, lba, 1, sel_w->sec) != BLK_OK)
		return 0;
	return !memcmp(sel_w->sec, VHD_FOOTER_COOKIE, 8);
}

/* "hdN" for disk index i (its ATA position: pm ps sm ss = 0..3). */
static int sel_pos(int i)
{
	return sel_disks[i].channel * 2 + sel_disks[i].slave;
}

/* Fill c's name from its place. */
static void sel_name(struct sel_cand *c)
{
	if (c->kind == SEL_MODULE)
		k_snprintf(c->name, sizeof(c->name), "module%d", c->module);
	else if (c->kind == SEL_FILE && c->part)
		k_snprintf(c->name, sizeof(c->name), "hd%d,%u:%s", sel_pos(c->disk), c->part, c->path);
	else if (c->kind == SEL_FILE)
		k_snprintf(c->name, sizeof(c->name), "hd%d:%s", sel_pos(c->disk), c->path);
	else if (c->part)
		k_snprintf(c->name, sizeof(c->name), "hd%d,%u", sel_pos(c->disk), c->part);
	else
		k_snprintf(c->name, sizeof(c->name), "hd%d", sel_pos(c->disk));
}

/* ------------------------------------------------------------------ devices */

/* blk_dev.read of a module: straight from its memory. */
static int sel_ram_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct sel_member *m = d->priv;
	memcpy(buf, phys_ptr(m->ram_phys + (uint32_t)lba * BLK_SECTOR), (size_t)count * BLK_SECTOR);
	return BLK_OK;
}

/* blk_dev.write of a module: into its memory (lost at reset). */
static int sel_ram_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct sel_member *m = d->priv;
	memcpy(phys_ptr(m->ram_phys + (uint32_t)lba * BLK_SECTOR), buf, (size_t)count * BLK_SECTOR);
	return BLK_OK;
}

/* blk_dev.flush of a module: nothing to do. */
static int sel_ram_flush(struct blk_dev *d)
{
	(void)d;
	return BLK_OK;
}

/* blk_dev.read of a FAT file: its extents. */
static int sel_file_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct sel_member *m = d->priv;
	return blk_read(&m->fdev, lba, count, buf);
}

/* blk_dev.write of a FAT file: its existing sectors only; a write that would grow the file is logged once. */
static int sel_file_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct sel_member *m = d->priv;
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
	struct sel_member *m = d->priv;
	return blk_flush(&m->fdev);
}

/* ------------------------------------------------------------------ opening one image */

enum { SEL_E_NOTFOUND = -1, SEL_E_OTHER = -2 };

/*
 * The device under image c (disk, partition or module) into m; for files
 * the volume's device. Returns 0, or SEL_E_OTHER with why set.
 */
static int sel_place_dev(const struct sel_cand *c, struct sel_member *m, struct blk_dev **out,
			 char *why, size_t wn)
{
	if (c->kind == SEL_MODULE) {
		const struct sel_module *mod = &sel_mods[c->module];
		m->ram_phys = mod->start;
		m->ram.name = c->name;
		m->ram.size_bytes = mod->end - mod->start;
		m->ram.sectors = m->ram.size_bytes / BLK_SECTOR;
		m->ram.max_sectors = m->ram.sectors;
		m->ram.read = sel_ram_read;
		m->ram.write = sel_ram_write;
		m->ram.flush = sel_ram_flush;
		m->ram.priv = m;
		*out = &m->ram;
		return 0;
	}
	struct blk_dev *disk = &sel_disks[c->disk].blk;
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
		k_snprintf(why, wn, "hd%d has no usable partition %u: %s (%s)", sel_pos(c->disk), c->part,
			   part_strerror(rc), part_errname(rc));
		return SEL_E_OTHER;
	}
	m->pv.dev.name = "partition";
	*out = &m->pv.dev;
	return 0;
}

/*
 * Open the image at path (SEL_FILE) or c's place itself into a new member.
 * SEL_E_NOTFOUND when the file does not exist; SEL_E_OTHER or a vhd_err
 * (positive) with why set.
 */
static int sel_open_member(const struct sel_cand *c, const char *path, unsigned vflags,
			   struct sel_member **out, char *why, size_t wn)
{
	struct sel_member *m = sel_alloc(sizeof(*m), 16);
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
			struct ext_run *runs = sel_alloc(cap * sizeof(struct ext_run), 16);
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

/* Load m's BAT into the resident heap and check its blocks don't overlap (temporary memory above avoid_hi). */
static void sel_load_bat(struct sel_member *m, const char *name, uint32_t avoid_hi)
{
	uint32_t bytes = (uint32_t)vhd_bat_bytes(&m->v);
	if (!bytes)
		return;
	uint32_t *bat = sel_alloc(bytes, 16);
	if (!bat)
		boot_fail("resident heap too small for the BAT (internal error)", "report this as a bug");
	int err = vhd_load_bat(&m->v, bat);
	if (!err) {
		(void)avoid_hi;
		uint32_t *scratch = bytes <= sel_ovl_cap ? (uint32_t *)(void *)sel_ovl_tmp : NULL;
		if (scratch)
			err = vhd_check_overlaps(&m->v, scratch);
		else
			con_printf("vhd: WARNING: no temporary memory for the overlap check; skipped\n");
	}
	if (err) {
		static char msg[200];
		k_snprintf(msg, sizeof(msg), "the block table of %s%s%s is damaged: %s (%s)", name,
			   m->path[0] ? " member " : "", m->path, vhd_strerror(err), vhd_errname(err));
		boot_fail(msg, "repair the image on another machine (`vhdtool check`), or restore it from a backup");
	}
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
static void sel_explain(int rc, const struct sel_member *ch, const struct sel_member *p, char *why, size_t wn)
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
static struct sel_member *sel_find_parent(const struct sel_cand *c, struct sel_member *ch,
					  struct sel_member *leaf, char *why, size_t wn)
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
		struct sel_member *p;
		int rc = sel_open_member(c, sel_w->tries[i], VHD_OPEN_RDONLY, &p, best ? sel_w->loc : why,
					 best ? sizeof(sel_w->loc) : wn);
		if (rc == SEL_E_NOTFOUND) {
			if (!sel_resident)
				sel_scr_used = mark;
			continue;
		}
		if (rc == 0) {
			unsigned pf = sel_cmd->ignore_timestamp ? VHD_PARENT_IGNORE_TIMESTAMP : 0;
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
 * Open c with its whole chain (leaf with leaf_flags). Scan: fills c->ok,
 * why, type, size, depth, parent, need. Resident: loads BATs too and fails
 * through boot_fail. Returns the leaf or NULL.
 */
static struct sel_member *sel_open_chain(struct sel_cand *c, unsigned leaf_flags, uint32_t avoid_hi)
{
	struct sel_member *leaf, *m, *p;
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
	if (sel_resident)
		sel_load_bat(leaf, c->name, avoid_hi);
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
		if (sel_resident)
			sel_load_bat(p, c->name, avoid_hi);
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
	for (m = leaf; m; m = (struct sel_member *)(void *)m->v.parent)
		if ((uint32_t)vhd_bat_bytes(&m->v) > c->max_bat)
			c->max_bat = (uint32_t)vhd_bat_bytes(&m->v);
	if (!sel_resident)
		for (m = leaf; m; m = (struct sel_member *)(void *)m->v.parent)
			sel_need += (uint32_t)vhd_bat_bytes(&m->v) + 16;
	c->need = sel_need;
	c->ok = 1;
	return leaf;
}

/* Check candidate c in the scratch (nothing kept but the summary). */
static void sel_check(struct sel_cand *c)
{
	uint32_t mark = sel_scr_used;
	sel_open_chain(c, VHD_OPEN_RDONLY, 0);
	sel_scr_used = mark;
}

/* ------------------------------------------------------------------ the scan */

/* Add a candidate (unchecked); NULL when the list is full. */
static struct sel_cand *sel_add(int kind, int disk, uint32_t part, const char *path)
{
	if (sel_ncands >= SEL_MAX_CANDS) {
		con_printf("select: more than %d images; the rest are ignored\n", SEL_MAX_CANDS);
		return NULL;
	}
	struct sel_cand *c = &sel_w->cands[sel_ncands++];
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->disk = disk;
	c->part = part;
	c->module = kind == SEL_MODULE ? part : 0;
	if (path)
		k_strlcpy(c->path, path, sizeof(c->path));
	sel_name(c);
	return c;
}

/* What the FAT listing callbacks need. */
struct sel_scan_ctx {
	int disk;
	uint32_t part;
	int found;
};

/* fat_find_vhds callback: note dir/name as a candidate. */
static int sel_scan_file(void *ctx, const char *dir, const struct fat_file *f)
{
	struct sel_scan_ctx *s = ctx;
	char path[SEL_PATH_MAX];
	if (k_snprintf(path, sizeof(path), "%s/%s", dir[1] ? dir : "", f->name) >= (int)sizeof(path))
		return 0;
	s->found++;
	sel_add(SEL_FILE, s->disk, s->part, path);
	return 0;
}

/* List *.vhd in /, /vhd and /images of the FAT volume on dev (disk i, partition part; 0 = superfloppy). */
static void sel_scan_fat(int i, uint32_t part, struct blk_dev *dev, const char *where)
{
	int rc = fat_mount(&sel_w->vol, dev);
	if (rc) {
		con_printf("select: %s: no FAT file system (%s)\n", where, fat_errname(rc));
		return;
	}
	struct sel_scan_ctx s = { i, part, 0 };
	rc = fat_find_vhds(&sel_w->vol, sel_scan_file, &s);
	con_printf("select: %s: FAT%d \"%s\": %d *.vhd file(s) in /, /vhd, /images%s%s\n", where, sel_w->vol.type,
		   sel_w->vol.label, s.found, rc ? "; listing stopped: " : "", rc ? fat_strerror(rc) : "");
}

/* Visit every place of disk i: whole-disk VHD, else its partitions (VHD or FAT), else a superfloppy FAT. */
static void sel_scan_disk(int i)
{
	struct ata_disk *d = &sel_disks[i];
	char where[24];
	k_snprintf(where, sizeof(where), "hd%d", sel_pos(i));
	/* The whole disk, a VHD at its start, or a footer copy at 0 only (offered, so the damage is explained). */
	if (vhdblk_probe_disk(&sel_w->probe, &d->blk)) {
		sel_add(SEL_DISK, i, 0, NULL);
		return;
	}
	int rc = part_open(&sel_w->it, &d->blk);
	if (rc == PART_E_NO_SIGNATURE || rc == PART_E_BOOT_FLAG) {
		sel_scan_fat(i, 0, &d->blk, where);
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
		k_snprintf(where, sizeof(where), "hd%d,%u", sel_pos(i), sel_w->pi.index);
		if (rc) {
			con_printf("select: %s: skipped: %s (%s)\n", where, part_strerror(rc), part_errname(rc));
			if (rc == PART_E_BEYOND_DISK)
				continue;
			break;
		}
		if (sel_w->pi.sectors && sel_cookie_at(&d->blk, sel_w->pi.start + sel_w->pi.sectors - 1)) {
			sel_add(SEL_PART, i, sel_w->pi.index, NULL);
			continue;
		}
		if (part_blk_init(&sel_w->pv, &d->blk, &sel_w->pi) == PART_OK)
			sel_scan_fat(i, sel_w->pi.index, &sel_w->pv.dev, where);
	}
	/* mkfs.fat leaves zeros where the partition entries would be: an empty "MBR" may be a superfloppy. */
	if (nparts == 0) {
		k_snprintf(where, sizeof(where), "hd%d", sel_pos(i));
		sel_scan_fat(i, 0, &d->blk, where);
	}
}

/* One line describing a checked candidate (kind, type, size, chain). */
static void sel_describe(const struct sel_cand *c, char *out, size_t n)
{
	static const char *const kinds[] = { "", "disk", "partition", "file", "module" };
	if (!c->ok) {
		k_snprintf(out, n, "%s  (unusable: %s)", c->name, c->why);
		return;
	}
	size_t k = (size_t)k_snprintf(out, n, "%s  %s, %s, %llu MiB", c->name, kinds[c->kind],
				      sel_type_name(c->type), (unsigned long long)(c->sectors >> 11));
	if (c->depth && k < n)
		k_snprintf(out + k, n - k, ", child of %s (chain of %d)", c->parent, c->depth + 1);
}

/* ------------------------------------------------------------------ named images (vhd=) */

/* Decimal number at *s (advances). */
static uint32_t sel_num(const char **s)
{
	uint32_t v = 0;
	while (**s >= '0' && **s <= '9')
		v = v * 10 + (uint32_t)(*(*s)++ - '0');
	return v;
}

/* Search every FAT volume of every disk for path; fills c (kind FILE) and returns 1 if found. */
static int sel_search_path(struct sel_cand *c, const char *path)
{
	for (int i = 0; i < sel_ndisks; i++) {
		struct ata_disk *d = &sel_disks[i];
		if (vhdblk_probe_disk(&sel_w->probe, &d->blk))
			continue;
		uint32_t parts[64];
		int np = 0;
		int rc = part_open(&sel_w->it, &d->blk);
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
			sel_name(c);
			struct blk_dev *dev;
			char why[8];
			if (sel_place_dev(c, &sel_w->probe_m, &dev, why, sizeof(why)) || fat_mount(&sel_w->mvol, dev) ||
			    fat_open_path(&sel_w->mvol, path, &sel_w->mfile))
				continue;
			if (!(sel_w->mfile.attr & FAT_ATTR_DIR))
				return 1;
		}
	}
	return 0;
}

/* Turn vhd= item s into candidate c (unchecked); fails through boot_fail when it names nothing. */
static void sel_parse_item(struct sel_cand *c, const char *s)
{
	static char msg[200];
	memset(c, 0, sizeof(*c));
	if (!strncmp(s, "module", 6)) {
		const char *q = s + 6;
		c->kind = SEL_MODULE;
		c->module = (int)sel_num(&q);
		if (c->module >= sel_nmods) {
			k_snprintf(msg, sizeof(msg), "vhd=%s: GRUB loaded %d module(s)", s, sel_nmods);
			boot_fail(msg, "add `module /path/image.vhd` after the multiboot line in grub.cfg");
		}
		sel_name(c);
		return;
	}
	if (s[0] == '/') {
		if (!sel_search_path(c, s)) {
			k_snprintf(msg, sizeof(msg), "vhd=%s: no FAT volume on any ATA disk has this file", s);
			boot_fail(msg, "check the path (or name the partition: vhd=hd0,1:/path), see the select: lines above");
		}
		return;
	}
	int pos;
	const char *q = s;
	if (s[0] == 'h') {
		q = s + 2;
		pos = (int)sel_num(&q);
	} else {
		static const char *const names[4] = { "pm", "ps", "sm", "ss" };
		for (pos = 0; pos < 4 && strncmp(s, names[pos], 2); pos++)
			;
		q = s + 2;
	}
	c->disk = -1;
	for (int i = 0; i < sel_ndisks; i++)
		if (sel_pos(i) == pos)
			c->disk = i;
	if (c->disk < 0) {
		k_snprintf(msg, sizeof(msg), "vhd=%s names no ATA hard disk (see the ata lines above)", s);
		boot_fail(msg, "fix the vhd= option, or drop it to pick the first disk holding a VHD");
	}
	if (*q == ',') {
		q++;
		c->part = sel_num(&q);
	}
	if (*q == ':') {
		c->kind = SEL_FILE;
		k_strlcpy(c->path, q + 1, sizeof(c->path));
	} else {
		c->kind = c->part ? SEL_PART : SEL_DISK;
	}
	sel_name(c);
}

/* ------------------------------------------------------------------ choosing */

/* Take candidate c as the next image (drive 80h + n). */
static void sel_take(struct sel_cand *c, const char *how)
{
	if (c->kind != SEL_MODULE) {
		const struct ata_disk *d = &sel_disks[c->disk];
		con_printf("vhd: using ATA %s (%s), %llu sectors\n", d->label, d->model, (unsigned long long)d->sectors);
	}
	if (!c->ok)
		boot_fail(c->why, c->remedy);
	con_printf("select: drive %02xh = %s (%s)\n", 0x80 + sel_nimages, c->name, how);
	sel_chosen[sel_nimages] = *c;
	sel_images[sel_nimages].cand = &sel_chosen[sel_nimages];
	sel_nimages++;
}

void sel_choose(struct ata_disk *disks, int ndisks)
{
	char (*lines)[160];
	const char **names;
	int *map;
	sel_disks = disks;
	sel_ndisks = ndisks;
	sel_nimages = 0;
	sel_scratch_init();
	sel_w = sel_alloc(sizeof(*sel_w), 16);
	sel_need = 0;
	lines = sel_w->lines;
	names = sel_w->names;
	map = sel_w->map;

	if (sel_cmd->nvhd) {
		for (int i = 0; i < sel_cmd->nvhd; i++) {
			sel_parse_item(&sel_w->named[i], sel_cmd->vhd[i]);
			sel_check(&sel_w->named[i]);
			sel_take(&sel_w->named[i], "vhd= on the command line");
		}
		return;
	}

	/* No vhd=: GRUB modules if there are any, else every disk. */
	sel_ncands = 0;
	if (sel_nmods) {
		con_printf("select: no vhd= given and GRUB loaded %d module(s): choosing among the modules\n", sel_nmods);
		for (int i = 0; i < sel_nmods; i++)
			sel_add(SEL_MODULE, -1, (uint32_t)i, NULL);
	} else {
		for (int i = 0; i < ndisks; i++)
			sel_scan_disk(i);
	}
	int nok = 0;
	for (int i = 0; i < sel_ncands; i++) {
		struct sel_cand *c = &sel_w->cands[i];
		sel_check(c);
		sel_describe(c, lines[i], sizeof(lines[i]));
		if (c->ok) {
			con_printf("select: found %s\n", lines[i]);
			names[nok] = lines[i];
			map[nok++] = i;
		} else {
			con_printf("select: skipped %s: %s\n", c->name, c->why);
		}
	}
	if (nok == 0) {
		if (sel_ncands)            /* one explanation is better than "nothing found" */
			boot_fail(sel_w->cands[0].why, sel_w->cands[0].remedy);
		boot_fail("no VHD found: no ATA hard disk ends with a VHD footer (\"conectix\"), and no FAT volume "
			  "has a *.vhd file in /, /vhd or /images",
			  "attach the .vhd file itself as an IDE disk (raw, not converted), put it on a FAT partition, "
			  "or name it with vhd= (see docs/selection.md)");
	}
	if (nok == 1) {
		sel_take(&sel_w->cands[map[0]], "the only image found");
		return;
	}
	con_printf("menu: %d images found; choose one (number, or arrows and Enter):\n", nok);
	for (int i = 0; i < nok; i++)
		con_printf("menu: %d  %s\n", i + 1, names[i]);
	int t = sel_cmd->timeout;
	if (t)
		con_printf("menu: booting 1 in %d s unless a key is pressed (timeout=%d)\n", t, t);
	int by_user;
	int k = menu_choose(names, nok, 0, t, sel_tsc_per_ms, &by_user);
	con_printf("menu: chose %d: %s\n", k + 1, sel_w->cands[map[k]].name);
	sel_take(&sel_w->cands[map[k]], by_user ? "chosen in the menu" : "menu timeout: the first");
}

uint32_t sel_resident_bytes(void)
{
	uint32_t t = 0;
	for (int i = 0; i < sel_nimages; i++)
		t += sel_images[i].cand->need + 256;
	return t;
}

int sel_open(unsigned leaf_flags, uint32_t temp_avoid_hi)
{
	/* The work areas and the overlap check's scratch: temporary memory below the region. */
	uint32_t wbytes = (sizeof(struct sel_work) + 0xFFF) & ~0xFFFu, maxbat = 0;
	for (int i = 0; i < sel_nimages; i++)
		if (sel_images[i].cand->max_bat > maxbat)
			maxbat = sel_images[i].cand->max_bat;
	uint8_t *t = mem_temp(wbytes + maxbat, temp_avoid_hi);
	sel_w = (struct sel_work *)(void *)t;
	sel_ovl_tmp = t ? t + wbytes : NULL;
	sel_ovl_cap = t ? maxbat : 0;
	if (!t)
		sel_w = mem_alloc(sizeof(*sel_w), 16);
	if (!sel_w)
		boot_fail("no memory for opening the images (internal error)", "give the machine more memory");
	sel_resident = 1;
	for (int i = 0; i < sel_nimages; i++) {
		struct sel_image *img = &sel_images[i];
		struct sel_cand *c = img->cand;
		img->ram = c->kind == SEL_MODULE;
		struct sel_member *leaf = sel_open_chain(c, img->ram ? 0 : leaf_flags, temp_avoid_hi);
		if (!leaf)
			boot_fail(c->why, c->remedy);
		img->leaf = &leaf->v;
		img->members = c->depth + 1;
		img->disk = c->kind == SEL_DISK && leaf->vdisk.disk ? &leaf->vdisk : NULL;
		struct vhd *v = img->leaf;
		con_printf("vhd: %02xh: %s: %s, %llu MiB (%llu sectors), footer CHS %u/%u/%u, creator \"%s\"\n",
			   0x80 + i, c->name, sel_type_name(v->footer.type), (unsigned long long)(v->sectors >> 11),
			   (unsigned long long)v->sectors, v->footer.cylinders, v->footer.heads, v->footer.spt,
			   v->footer.creator_app);
		if (v->state & VHD_ST_BACKUP_FOOTER)
			con_printf("vhd: WARNING: end footer damaged (%s); using the copy at offset 0\n",
				   vhd_strerror(v->end_footer_err));
		if (v->footer.type != VHD_TYPE_FIXED)
			con_printf("vhd: block size %u KiB, %u blocks, BAT %u bytes\n", v->block_size >> 10,
				   v->blocks, (unsigned)vhd_bat_bytes(v));
		if (c->kind == SEL_FILE) {
			const struct sel_member *m = (const struct sel_member *)(const void *)v;
			con_printf("vhd: %s: %u extent(s) on disk, %u sectors; the file can't grow: writes beyond "
				   "its clusters fail\n", c->path, m->map.count, m->map.sectors);
		}
		for (const struct vhd *p = v->parent; p; p = p->parent) {
			const struct sel_member *m = (const struct sel_member *)(const void *)p;
			con_printf("vhd: %02xh: parent %s (found through its child's %s): %s, %u extent(s), read-only\n",
				   0x80 + i, m->path, m->via, sel_type_name(p->footer.type), m->map.count);
		}
		if (img->ram)
			con_printf("vhd: %02xh: served from RAM (GRUB module at %08x): guest writes stay in RAM and "
				   "are LOST at reset\n", 0x80 + i, sel_mods[c->module].start);
	}
	return sel_nimages;
}

struct sel_image *sel_image(int i)
{
	return i >= 0 && i < sel_nimages ? &sel_images[i] : NULL;
}
