/* handover.c: gathers what an OS needs to find each served image again and places the hand-over table (include/vhdboot_handover.h) in reserved low memory. */
#include <stdint.h>
#include "handover.h"
#include "select.h"               /* sel_image, struct sel_image */
#include "imgopen.h"              /* IOP_MEMBER_OF, struct iop_member */
#include "cmdline.h"              /* CMDLINE_MODE_* */
#include "console.h"
#include "string.h"
#include "phys.h"
#include "mem.h"                  /* mem_res_base, mem_res_size */
#include "../block/disk.h"
#include "../fs/part.h"
#include "../fs/fs.h"             /* fs_mount: the host file system's type and cluster size */

#define HO_EXTENTS_MAX 64u        /* runs of one file kept in the table (the rest: HO_DF_EXT_PARTIAL) */

/* Work areas: never on the 16 KiB stack. */
static uint8_t ho_buf[HO_MAX_BYTES] __attribute__((aligned(16)));
static struct ho_builder ho_b;
static uint32_t ho_bytes;
static struct part_iter ho_it;
static struct part_info ho_pi;
static struct fs_vol ho_vol;     /* ~28 KiB with NTFS's buffers: never on the stack */
static uint8_t ho_sec[BLK_SECTOR];
static uint32_t ho_ovl_phys[SEL_MAX_IMAGES], ho_ovl_bytes[SEL_MAX_IMAGES];

void handover_set_overlay(int i, uint32_t phys, uint32_t bytes)
{
	if (i >= 0 && i < SEL_MAX_IMAGES) {
		ho_ovl_phys[i] = phys;
		ho_ovl_bytes[i] = bytes;
	}
}

/* HO_TYPE_* for an img_info type name. */
static uint8_t ho_type_of(const char *type)
{
	if (!strcmp(type, "fixed"))
		return HO_TYPE_FIXED;
	if (!strcmp(type, "dynamic"))
		return HO_TYPE_DYNAMIC;
	return HO_TYPE_DIFF;
}

/* The backing disk's identity into d: interface, names, size, sector 0's CRC and disk id, partition table scheme. */
static void ho_fill_disk(struct ho_drive *d, const struct disk *dk)
{
	d->iface = !strcmp(dk->driver, "ata") ? HO_IFACE_ATA : !strcmp(dk->driver, "efi") ? HO_IFACE_EFI :
		   (dk->flags & DISK_RAM) ? HO_IFACE_RAM : HO_IFACE_BIOS;
	d->ata_channel = dk->channel;
	d->ata_device = dk->device;
	d->ata_io_base = dk->io_base;
	d->disk_sectors = dk->blk->sectors;
	d->model_off = ho_put_str(&ho_b, dk->model, 47);
	if (dk->serial[0])
		d->serial_off = ho_put_str(&ho_b, dk->serial, 23);
	if (blk_read(dk->blk, 0, 1, ho_sec) == 0) {
		d->disk_lba0_crc = part_crc32(0, ho_sec, BLK_SECTOR);
		d->disk_mbr_id = (uint32_t)ho_sec[440] | (uint32_t)ho_sec[441] << 8 | (uint32_t)ho_sec[442] << 16 |
				 (uint32_t)ho_sec[443] << 24;
	}
	if (part_open(&ho_it, dk->blk) == PART_OK) {
		d->disk_scheme = (uint8_t)ho_it.scheme;
		if (ho_it.scheme == PART_SCHEME_GPT)
			memcpy(d->disk_guid, ho_it.disk_guid, 16);
	}
}

/* Record i: chosen image i (drive 80h + i) under mode (CMDLINE_MODE_*). NULL, or why the table cannot describe it. */
static const char *ho_fill(unsigned i, int mode)
{
	struct ho_drive *d = ho_drive_at(&ho_b, i);
	struct sel_image *si = sel_image((int)i);
	const struct sel_cand *c = si->cand;
	const struct disk *dk = disk_get(c->disk);
	struct img_info in;
	si->fmt->info(si->leaf, &in);
	int vhdx = !strcmp(si->fmt->name, "VHDX");
	if (!vhdx && strcmp(si->fmt->name, "VHD"))
		return "the table describes VHD and VHDX images only";

	d->bios_drive = (uint8_t)(0x80 + i);
	d->mode = mode == CMDLINE_MODE_RO ? HO_MODE_RO : mode == CMDLINE_MODE_SNAPSHOT ? HO_MODE_SNAPSHOT : HO_MODE_RW;
	if (mode == CMDLINE_MODE_RO || (mode == CMDLINE_MODE_RW && in.read_only && !si->ram))
		d->flags |= HO_DF_READ_ONLY;
	d->format = vhdx ? HO_FMT_VHDX : HO_FMT_VHD;
	d->image_type = ho_type_of(in.type);
	d->place = c->kind == SEL_DISK ? HO_PLACE_DISK : c->kind == SEL_PART ? HO_PLACE_PART :
		   c->kind == SEL_FILE ? HO_PLACE_FILE : HO_PLACE_RAM;
	d->virt_sectors = in.sectors;
	d->where_off = ho_put_str(&ho_b, c->name, SEL_NAME_MAX);
	d->overlay_phys = ho_ovl_phys[i];
	d->overlay_bytes = ho_ovl_bytes[i];
	if (dk) {
		ho_fill_disk(d, dk);
		if (dk->flags & DISK_RAM)
			d->ram_phys = dk->phys;
	}
	if (dk && c->part && part_find(&ho_it, dk->blk, c->part, &ho_pi) == PART_OK) {
		d->part_number = c->part;
		d->part_scheme = (uint8_t)ho_pi.scheme;
		d->part_type = ho_pi.type;
		d->part_start = ho_pi.start;
		d->part_sectors = ho_pi.sectors;
		memcpy(d->part_guid, ho_pi.uuid, 16);
	}
	if (si->place) {
		d->file_bytes = si->place->image_sectors * BLK_SECTOR;
		if (si->place->win.dev.max_sectors > si->place->win.dev.sectors)
			d->flags |= HO_DF_GROWS;
	} else if (c->kind == SEL_PART) {
		d->file_bytes = d->part_sectors * BLK_SECTOR;
	}

	/* The chain: every member's path, leaf first (paths only for files). */
	unsigned n = 0;
	for (void *im = si->leaf; im && n < 255; n++) {
		struct img_info ii;
		si->fmt->info(im, &ii);
		im = ii.parent;
	}
	d->chain_len = (uint8_t)n;
	if (c->kind != SEL_FILE)
		return NULL;
	struct iop_member *leaf = IOP_MEMBER_OF(si->leaf);
	d->chain_off = ho_put(&ho_b, 2u * n, 2);
	unsigned k = 0;
	for (void *im = si->leaf; im && k < n; k++) {
		struct img_info ii;
		uint16_t so = ho_put_str(&ho_b, IOP_MEMBER_OF(im)->path, SEL_PATH_MAX);
		if (d->chain_off) {
			uint8_t *p = ho_ptr(&ho_b, (uint16_t)(d->chain_off + 2 * k));
			p[0] = (uint8_t)so;
			p[1] = (uint8_t)(so >> 8);
		}
		si->fmt->info(im, &ii);
		im = ii.parent;
	}
	d->file_bytes = leaf->map.size_bytes;
	if (fs_mount(&ho_vol, leaf->map.dev))
		return "the image's host file system no longer mounts (FAT, exFAT or NTFS expected)";
	if (ho_vol.type == FS_EXFAT) {
		d->fs = HO_FS_EXFAT;
		d->cluster_bytes = (uint32_t)BLK_SECTOR << ho_vol.u.exfat.clus_shift;
	} else if (ho_vol.type == FS_NTFS) {
		d->fs = HO_FS_NTFS;
		d->cluster_bytes = (uint32_t)BLK_SECTOR << ho_vol.u.ntfs.clus_shift;
	} else {
		const struct fat_vol *fv = &ho_vol.u.fat;
		d->fs = fv->type == 12 ? HO_FS_FAT12 : fv->type == 16 ? HO_FS_FAT16 : HO_FS_FAT32;
		d->cluster_bytes = fv->sec_per_clus * BLK_SECTOR;
	}
	uint32_t runs = leaf->map.count, keep = runs > HO_EXTENTS_MAX ? HO_EXTENTS_MAX : runs;
	d->extents_total = runs;
	d->extents_off = keep ? ho_put(&ho_b, keep * (uint32_t)sizeof(struct ho_extent), 8) : 0;
	if (!d->extents_off)
		keep = 0;
	for (uint32_t r = 0; r < keep; r++) {
		struct ho_extent e = { leaf->map.runs[r].file_sector, leaf->map.runs[r].sectors, leaf->map.runs[r].lba };
		memcpy(ho_ptr(&ho_b, (uint16_t)(d->extents_off + r * sizeof(e))), &e, sizeof(e));
	}
	d->extents_count = (uint16_t)keep;
	if (keep < runs)
		d->flags |= HO_DF_EXT_PARTIAL;
	return NULL;
}

uint32_t handover_build(int nimg, int mode)
{
	ho_bytes = 0;
	if (nimg <= 0 || ho_begin(&ho_b, ho_buf, sizeof(ho_buf), (unsigned)nimg)) {
		con_printf("handover: no table (%d image(s) do not fit in one)\n", nimg);
		return 0;
	}
	struct ho_header *h = ho_head(&ho_b);
	h->firmware_off = ho_put_str(&ho_b, "vhdboot (hand-over table 1.2)", 64);
	h->resident_phys = mem_res_base;
	h->resident_bytes = mem_res_size;
	for (int i = 0; i < nimg; i++) {
		const char *why = ho_fill((unsigned)i, mode);
		if (why) {
			con_printf("handover: no table for the OS: drive %02xh: %s\n", 0x80 + i, why);
			return 0;
		}
	}
	if (ho_b.err) {
		con_printf("handover: the table does not fit in %u bytes: none left for the OS (%s)\n",
			   HO_MAX_BYTES, ho_strerror(ho_b.err));
		return 0;
	}
	ho_bytes = ho_b.used;
	return ho_bytes;
}

const void *handover_table(uint32_t flags, uint32_t *bytes)
{
	*bytes = 0;
	if (!ho_bytes)
		return NULL;
	ho_head(&ho_b)->flags |= flags;
	*bytes = ho_finish(&ho_b, 0);
	return *bytes ? ho_buf : NULL;
}

void handover_place(uint32_t phys, uint32_t low_phys, uint32_t low_bytes)
{
	if (!ho_bytes || !phys)
		return;
	ho_head(&ho_b)->low_phys = low_phys;
	ho_head(&ho_b)->low_bytes = low_bytes;
	ho_finish(&ho_b, phys);
	memcpy(phys_ptr(phys), ho_buf, ho_bytes);
	con_printf("handover: table %u bytes at %05x (version %u.%u, %u drive(s)), in reserved low memory %05x-%05x\n",
		   ho_bytes, phys, HO_VERSION_MAJOR, HO_VERSION_MINOR, ho_head(&ho_b)->ndrives, low_phys,
		   low_phys + low_bytes - 1);
}
