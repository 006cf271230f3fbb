/* ramdisk.c: GRUB multiboot modules served as disks from RAM (registered as moduleN; writes stay in RAM and are lost at reset). */
#include "driver.h"
#include "../block/disk.h"
#include "../kernel/console.h"
#include "../kernel/phys.h"
#include "../kernel/string.h"

/* One module seen as a device. */
struct ramdisk {
	struct blk_dev blk;
	uint32_t phys;            /* physical address of sector 0 */
	char name[12];
};

static struct ramdisk ramdisk_tab[DRV_MAX_MODULES];

/* blk_dev.read: straight from the module's memory (blk_read checked the range). */
static int ramdisk_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct ramdisk *r = d->priv;
	memcpy(buf, phys_ptr(r->phys + (uint32_t)lba * BLK_SECTOR), (size_t)count * BLK_SECTOR);
	return BLK_OK;
}

/* blk_dev.write: into the module's memory (lost at reset). */
static int ramdisk_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct ramdisk *r = d->priv;
	memcpy(phys_ptr(r->phys + (uint32_t)lba * BLK_SECTOR), buf, (size_t)count * BLK_SECTOR);
	return BLK_OK;
}

/* Register every module GRUB loaded (kernel/mbinfo.c found and reserved them). */
static int ramdisk_probe(const struct drv_boot_info *bi)
{
	int n = 0;
	for (int i = 0; i < bi->nmods && i < DRV_MAX_MODULES; i++) {
		struct ramdisk *r = &ramdisk_tab[i];
		uint32_t bytes = bi->mods[i].end - bi->mods[i].start;
		memset(r, 0, sizeof(*r));
		r->phys = bi->mods[i].start;
		r->blk.size_bytes = bytes;
		r->blk.sectors = bytes / BLK_SECTOR;
		r->blk.max_sectors = r->blk.sectors;
		r->blk.read = ramdisk_read;
		r->blk.write = ramdisk_write;
		r->blk.priv = r;
		char where[16];
		k_snprintf(where, sizeof(where), "%08x", r->phys);
		int k = disk_add(&r->blk, "ramdisk", where, bi->mods[i].name, DISK_RAM);
		if (k < 0) {
			con_printf("ramdisk: disk registry full; module at %08x ignored\n", r->phys);
			continue;
		}
		struct disk *d = disk_get(k);
		d->phys = r->phys;
		k_strlcpy(r->name, d->label, sizeof(r->name));
		r->blk.name = r->name;
		n++;
	}
	return n;
}

static const struct driver ramdisk_driver = { "ramdisk", ramdisk_probe, 0 };
DRIVER(90, ramdisk_driver);
