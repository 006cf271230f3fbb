/* select.c: chooses the images (vhd= items, else modules, else the scan and a menu) and opens their chains in resident memory; errors are returned, never fatal here. */
#include "select.h"
#include "scan.h"
#include "imgopen.h"
#include "menu.h"
#include "console.h"
#include "string.h"
#include "../block/disk.h"

static struct sel_cand sel_chosen[SEL_MAX_IMAGES]; /* resident copies of the chosen candidates */
static struct sel_image sel_images[SEL_MAX_IMAGES];
static int sel_nimages;

/* Menu and candidate areas (about 30 KiB: in the scan's scratch, dead once chosen). */
struct sel_work {
	struct scan_list list;
	struct sel_cand named[SEL_MAX_IMAGES];   /* vhd= items */
	char lines[SCAN_MAX_CANDS][160];         /* menu lines */
	const char *names[SCAN_MAX_CANDS];
	int map[SCAN_MAX_CANDS];
};

uint32_t sel_scratch_end(void)
{
	return iop_scratch_end();
}

/* Turn vhd= item it into candidate c (unchecked); 0, or -1 with *e set when it names nothing. */
static int sel_named(struct sel_cand *c, const struct cmdline_vhd *it, struct kerr *e)
{
	static char msg[SEL_MAX_IMAGES][200];
	static int next;
	char *m = msg[next++ % SEL_MAX_IMAGES];
	memset(c, 0, sizeof(*c));
	if (it->kind == CMDLINE_VHD_MODULE) {
		char label[16];
		k_snprintf(label, sizeof(label), "module%d", it->module);
		const struct disk *d = disk_by_label(label);
		if (!d) {
			int nmods = 0;
			for (int i = 0; i < disk_count(); i++)
				nmods += (disk_get(i)->flags & DISK_RAM) != 0;
			k_snprintf(m, sizeof(msg[0]), "vhd=%s: GRUB loaded %d module(s)", it->text, nmods);
			return kerr_set(e, m, "add `module /path/image.vhd` after the multiboot line in grub.cfg");
		}
		c->kind = SEL_MODULE;
		c->disk = disk_index(d);
		cand_name(c);
		return 0;
	}
	if (it->kind == CMDLINE_VHD_PATH) {
		if (!scan_find_path(c, it->path)) {
			k_snprintf(m, sizeof(msg[0]), "vhd=%s: no FAT volume (nor exFAT or NTFS one) on any disk has this file",
				   it->text);
			return kerr_set(e, m, "check the path (or name the partition: vhd=hd0,1:/path), see the select: lines above");
		}
		return 0;
	}
	if (it->kind == CMDLINE_VHD_FILE && it->vol_by != CMDLINE_VOL_INDEX) {
		struct scan_vol v;
		if (!scan_find_volume(it->vol_by, it->vol, &v)) {
			k_snprintf(m, sizeof(msg[0]), "vhd=%s: no FAT, exFAT or NTFS volume has the %s %s", it->text,
				   it->vol_by == CMDLINE_VOL_LABEL ? "label" : "GPT partition GUID", it->vol);
			return kerr_set(e, m, "check the label or GUID (the select: lines above show each volume's label; "
					"`blkid` shows PARTUUID), or name the partition: vhd=hd0,1:/path");
		}
		c->kind = SEL_FILE;
		c->disk = v.disk;
		c->part = v.part;
		k_strlcpy(c->path, it->path, sizeof(c->path));
		cand_name(c);
		return 0;
	}
	const struct disk *d = it->by_position ? disk_by_where("ata", it->disk) : disk_by_label(it->disk);
	if (!d || (d->flags & DISK_RAM)) {
		k_snprintf(m, sizeof(msg[0]), "vhd=%s names no hard disk (see the ata lines above)", it->text);
		return kerr_set(e, m, "fix the vhd= option, or drop it to pick the first disk holding a VHD");
	}
	c->disk = disk_index(d);
	c->part = it->part;
	if (it->kind == CMDLINE_VHD_FILE) {
		c->kind = SEL_FILE;
		k_strlcpy(c->path, it->path, sizeof(c->path));
	} else {
		c->kind = c->part ? SEL_PART : SEL_DISK;
	}
	cand_name(c);
	return 0;
}

/*
 * The volumes searched for parents that are not on their child's volume:
 * parents= in its order, else every volume. 0, or -1 with *e set when a
 * parents= volume does not exist.
 */
static int sel_parent_places(const struct cmdline *cmd, struct kerr *e)
{
	static struct scan_vol vols[IOP_MAX_PARENT_VOLS];
	static char msg[160];
	int n = 0;
	if (!cmd->nparent_vols) {
		iop_set_parent_vols(vols, scan_volumes(vols, IOP_MAX_PARENT_VOLS));
		return 0;
	}
	for (int i = 0; i < cmd->nparent_vols; i++) {
		const struct cmdline_vol *v = &cmd->parent_vols[i];
		if (v->by != CMDLINE_VOL_INDEX) {
			if (!scan_find_volume(v->by, v->name, &vols[n])) {
				k_snprintf(msg, sizeof(msg), "parents=: no FAT, exFAT or NTFS volume has the %s %s",
					   v->by == CMDLINE_VOL_LABEL ? "label" : "GPT partition GUID", v->name);
				return kerr_set(e, msg, "fix parents= (the select: lines show each volume's label)");
			}
		} else {
			const struct disk *d = v->by_position ? disk_by_where("ata", v->disk) : disk_by_label(v->disk);
			if (!d || (d->flags & DISK_RAM)) {
				k_snprintf(msg, sizeof(msg), "parents=: %s names no hard disk", v->disk);
				return kerr_set(e, msg, "fix parents= (see the disk lines above)");
			}
			vols[n].disk = disk_index(d);
			vols[n].part = v->part;
		}
		n++;
	}
	iop_set_parent_vols(vols, n);
	return 0;
}

/* Take checked candidate c as the next image (drive 80h + n); 0, or -1 with *e = its problem. */
static int sel_take(struct sel_cand *c, const char *how, struct kerr *e)
{
	const struct disk *d = disk_get(c->disk);
	if (c->kind != SEL_MODULE && d)
		con_printf("vhd: using %s %s (%s, %s), %llu sectors\n", !strcmp(d->driver, "ata") ? "ATA" : d->driver,
			   d->where, d->label, d->model, (unsigned long long)d->blk->sectors);
	if (!c->ok)
		return kerr_set(e, c->why, c->remedy);
	con_printf("select: drive %02xh = %s (%s)\n", 0x80 + sel_nimages, c->name, how);
	sel_chosen[sel_nimages] = *c;
	sel_images[sel_nimages].cand = &sel_chosen[sel_nimages];
	sel_nimages++;
	return 0;
}

/* Several images: print the menu, wait for the user (or the timeout); returns the index into w->list. */
static int sel_menu(struct sel_work *w, int nok, const struct cmdline *cmd, uint32_t tsc_per_ms, int *by_user)
{
	con_printf("menu: %d images found; choose one (number, or arrows and Enter):\n", nok);
	for (int i = 0; i < nok; i++)
		con_printf("menu: %d  %s\n", i + 1, w->names[i]);
	int t = cmd->timeout;
	if (t)
		con_printf("menu: booting 1 in %d s unless a key is pressed (timeout=%d)\n", t, t);
	int k = menu_choose(w->names, nok, 0, t, tsc_per_ms, by_user);
	con_printf("menu: chose %d: %s\n", k + 1, w->list.cands[w->map[k]].name);
	return w->map[k];
}

int sel_choose(const struct cmdline *cmd, uint32_t tsc_per_ms, struct kerr *e)
{
	sel_nimages = 0;
	if (iop_init(e))
		return -1;
	scan_reset();
	iop_set_ignore_timestamp(cmd->ignore_timestamp);
	iop_set_grow(!cmd->no_grow);
	struct sel_work *w = iop_alloc(sizeof(*w), 16);
	if (!w)
		return kerr_set(e, "no memory for the scan (internal error)", "give the machine more memory");

	if (sel_parent_places(cmd, e))
		return -1;
	if (cmd->nvhd) {
		for (int i = 0; i < cmd->nvhd; i++) {
			if (sel_named(&w->named[i], &cmd->vhd[i], e))
				return -1;
			iop_check(&w->named[i]);
			if (sel_take(&w->named[i], "vhd= on the command line", e))
				return -1;
		}
		return 0;
	}

	/* No vhd=: GRUB modules if there are any, else every disk. */
	w->list.n = 0;
	scan_modules(&w->list);
	if (w->list.n)
		con_printf("select: no vhd= given and GRUB loaded %d module(s): choosing among the modules\n", w->list.n);
	else
		scan_disks(&w->list);
	int nok = 0;
	for (int i = 0; i < w->list.n; i++) {
		struct sel_cand *c = &w->list.cands[i];
		iop_check(c);
		scan_describe(c, w->lines[i], sizeof(w->lines[i]));
		if (c->ok) {
			con_printf("select: found %s\n", w->lines[i]);
			w->names[nok] = w->lines[i];
			w->map[nok++] = i;
		} else {
			con_printf("select: skipped %s: %s\n", c->name, c->why);
		}
	}
	if (nok == 0) {
		if (w->list.n)            /* one explanation is better than "nothing found" */
			return kerr_set(e, w->list.cands[0].why, w->list.cands[0].remedy);
		return kerr_set(e, "no VHD found: no hard disk ends with a VHD footer (\"conectix\"), and no FAT, exFAT "
				"or NTFS volume has a *.vhd file in /, /vhd or /images",
				"attach the .vhd file itself as an IDE disk (raw, not converted), put it on a FAT, exFAT or NTFS partition, "
				"or name it with vhd= (see docs/selection.md)");
	}
	if (nok == 1)
		return sel_take(&w->list.cands[w->map[0]], "the only image found", e);
	int by_user;
	int k = sel_menu(w, nok, cmd, tsc_per_ms, &by_user);
	return sel_take(&w->list.cands[k], by_user ? "chosen in the menu" : "menu timeout: the first", e);
}

uint32_t sel_resident_bytes(void)
{
	uint32_t t = 0;
	for (int i = 0; i < sel_nimages; i++)
		t += sel_images[i].cand->need + 256;
	return t;
}

/* Log what image i is: the format's description (type, size, geometry, metadata), file extents, parents, RAM. */
static void sel_log_image(int i, const struct sel_image *img)
{
	const struct sel_cand *c = img->cand;
	struct img_info in;
	img->fmt->describe(img->leaf, 0x80 + i, c->name);
	if (c->kind == SEL_FILE) {
		const struct iop_member *m = IOP_MEMBER_OF(img->leaf);
		if (m->grow)
			con_printf("vhd: %s: %u extent(s) on disk, %u sectors; the file grows when the image needs room "
				   "(up to %llu MiB by the file system's limit; grow=no keeps it as it is)\n", c->path,
				   m->map.count, m->map.sectors, (unsigned long long)(m->map.max_bytes >> 20));
		else {
			/* A writable leaf that cannot grow: the cause, the answer a write into a new block gets, the remedy. */
			const char *why, *remedy;
			img->fmt->info(img->leaf, &in);
			iop_nogrow(m, &why, &remedy);
			if (in.read_only && !m->grow_err)
				con_printf("vhd: %s: %u extent(s) on disk, %u sectors; the file can't grow (grow=no, or opened "
					   "read-only): writes beyond its clusters fail\n", c->path, m->map.count, m->map.sectors);
			else
				con_printf("vhd: %s: %u extent(s) on disk, %u sectors; the file can't grow (%s): writes beyond "
					   "its clusters fail (%s); remedy: %s\n", c->path, m->map.count, m->map.sectors,
					   m->grow_err ? why : "grow=no, or opened read-only", img_refusal(), remedy);
		}
	}
	img->fmt->info(img->leaf, &in);
	for (void *p = in.parent; p; p = in.parent) {
		const struct iop_member *m = IOP_MEMBER_OF(p);
		m->fmt->info(p, &in);
		con_printf("vhd: %02xh: parent %s%s%s (found through its child's %s): %s, %u extent(s), read-only\n",
			   0x80 + i, m->path, m->other_vol ? " on " : "", m->other_vol ? m->other_vol : "", m->via, in.type,
			   m->map.count);
	}
	if (img->ram)
		con_printf("vhd: %02xh: served from RAM (GRUB module at %08x): guest writes stay in RAM and "
			   "are LOST at reset\n", 0x80 + i, disk_get(c->disk)->phys);
}

int sel_open(unsigned leaf_flags, uint32_t temp_avoid_hi, struct kerr *e)
{
	uint32_t maxbat = 0;
	for (int i = 0; i < sel_nimages; i++)
		if (sel_images[i].cand->max_bat > maxbat)
			maxbat = sel_images[i].cand->max_bat;
	if (iop_go_resident(maxbat, temp_avoid_hi, e))
		return -1;
	for (int i = 0; i < sel_nimages; i++) {
		struct sel_image *img = &sel_images[i];
		struct sel_cand *c = img->cand;
		img->ram = c->kind == SEL_MODULE;
		struct iop_member *leaf = iop_open_chain(c, img->ram ? 0 : leaf_flags);
		if (!leaf)
			return kerr_set(e, c->why, c->remedy);
		img->fmt = leaf->fmt;
		img->leaf = leaf->im;
		img->members = c->depth + 1;
		img->place = c->kind == SEL_DISK && leaf->place.disk ? &leaf->place : NULL;
		sel_log_image(i, img);
	}
	return sel_nimages;
}

struct sel_image *sel_image(int i)
{
	return i >= 0 && i < sel_nimages ? &sel_images[i] : NULL;
}
