/* biosdisk.c: every hard disk the BIOS knows (USB, NVMe, AHCI, virtio, SCSI, SD) read and written through the BIOS's own INT 13h (the vector saved before hooking) by rm_farcall, at boot and from the resident handler. */
#include "driver.h"
#include "ata.h"
#include "../block/disk.h"
#include "../boot/realmode.h"
#include "../kernel/console.h"
#include "../kernel/phys.h"
#include "../kernel/resident.h"
#include "../kernel/string.h"

#define BD_MAX 8                  /* BIOS hard disks served */
#define BD_EDD_MAX 127u           /* sectors per AH=42h/43h call (the Phoenix EDD limit) */
#define BD_TRIES 3                /* attempts per transfer, with an AH=00h reset between */
#define BD_CONV_END 0xA0000u      /* a buffer below this is handed to the BIOS as it is */
#define BD_BDA_NUM_HD 0x475u

/* One BIOS hard disk. */
struct bd_disk {
	struct blk_dev blk;
	uint8_t drive;            /* the BIOS's own number (80h..), as its INT 13h knows it */
	int edd;                  /* AH=42h/43h available (AH=41h CX bit 0) */
	uint16_t cyls, heads, spt; /* AH=08h geometry, for the CHS fallback */
	int ata_pos;              /* EDD 3.0 device path: ATA position 0..3 (pm ps sm ss), -1 unknown */
	char name[12];
	char where[8];            /* "80h" */
	char model[48];
	uint32_t errors;          /* failed attempts (retried or not) */
};

static struct bd_disk bd_tab[BD_MAX];
static uint32_t bd_vec;           /* the BIOS's INT 13h (seg << 16 | off), read before any hook */

/* AH of a BIOS result. */
static uint8_t bd_ah(const struct rm_regs *r) { return RM_AH(r); }

/* One BIOS INT 13h call through the saved vector; 0, the BIOS's status (AH, CF set), or 0xFF if real mode was refused (nested too deep). */
static uint8_t bd_call(struct rm_regs *r)
{
	if (rm_farcall(bd_vec, r) < 0)
		return 0xFF;
	if (!(r->flags & RM_FLAG_CF))
		return 0;
	return bd_ah(r) ? bd_ah(r) : 0xFF;
}

/* BIOS status -> blk_status; a failure's status is noted for the front end to pass on (FFh: no trip made, nothing to pass). */
static int bd_status(uint8_t st)
{
	if (!st)
		return BLK_OK;
	if (st == 0x03)
		return BLK_E_RO;
	if (st != 0xFF)
		disk_note_status(st);
	return BLK_E_IO;
}

/* One transfer of n sectors at lba to/from linear buf (below 1 MiB), retried after a reset; 0 or the last BIOS status. */
static uint8_t bd_xfer1(struct bd_disk *b, int write, uint64_t lba, uint32_t n, uint32_t buf, uint32_t scratch)
{
	uint8_t st = 0;
	for (int t = 0; t < BD_TRIES; t++) {
		struct rm_regs r;
		memset(&r, 0, sizeof(r));
		r.edx = b->drive;
		if (b->edd) {
			uint8_t *dap = phys_ptr(scratch);
			memset(dap, 0, 16);
			dap[0] = 0x10;
			dap[2] = (uint8_t)n;
			dap[4] = (uint8_t)(buf & 15);
			dap[6] = (uint8_t)(buf >> 4);
			dap[7] = (uint8_t)(buf >> 12);
			for (int i = 0; i < 8; i++)
				dap[8 + i] = (uint8_t)(lba >> (8 * i));
			r.eax = write ? 0x4300 : 0x4200;
			r.ds = (uint16_t)(scratch >> 4);
			r.esi = scratch & 15;
		} else {
			uint32_t l = (uint32_t)lba;
			uint32_t cyl = l / ((uint32_t)b->heads * b->spt);
			uint32_t head = (l / b->spt) % b->heads;
			uint32_t sec = l % b->spt + 1;
			r.eax = (write ? 0x0300u : 0x0200u) | n;
			r.ecx = (cyl & 0xFF) << 8 | ((cyl >> 2) & 0xC0) | sec;
			r.edx |= head << 8;
			r.es = (uint16_t)(buf >> 4);
			r.ebx = buf & 15;
		}
		st = bd_call(&r);
		if (!st)
			return 0;
		b->errors++;
		con_printf("biosdisk: %02xh: %s LBA %llu count %u: BIOS status %02xh%s\n", b->drive,
			   write ? "write" : "read", (unsigned long long)lba, n, st,
			   t + 1 < BD_TRIES ? ", resetting the disk and retrying" : ", giving up");
		if (st == 0x03 || st == 0xFF || t + 1 == BD_TRIES)
			break;            /* write protected / no real mode: a retry cannot help */
		memset(&r, 0, sizeof(r));
		r.edx = b->drive;         /* AH=00h reset */
		bd_call(&r);
	}
	return st;
}

/* Sectors one call may move: EDD 127 (and the bounce buffer), CHS up to the end of the track. */
static uint32_t bd_chunk(const struct bd_disk *b, uint64_t lba, uint32_t count, uint32_t cap)
{
	uint32_t n = count < cap ? count : cap;
	if (n > BD_EDD_MAX)
		n = BD_EDD_MAX;
	if (!b->edd) {
		uint32_t left = b->spt - (uint32_t)(lba % b->spt);
		if (n > left)
			n = left;
	}
	return n;
}

/* Read or write count sectors at lba: straight into a buffer below 640 KiB that is not ours, else through the bounce buffer. */
static int bd_rw(struct blk_dev *d, int write, uint64_t lba, uint32_t count, uint8_t *buf)
{
	struct bd_disk *b = d->priv;
	struct resident_lowbuf lb;
	resident_lowbuf(&lb);
	while (count) {
		uint32_t phys = virt_to_phys(buf);
		uint32_t direct_cap = 0;
		if (phys >= 0x500u && phys < BD_CONV_END && (phys >= lb.hi || phys + 512u <= lb.lo)) {
			uint32_t end = phys < lb.lo ? lb.lo : BD_CONV_END;
			direct_cap = (end - phys) / BLK_SECTOR;
		}
		int direct = direct_cap > 0;
		uint32_t n = bd_chunk(b, lba, count, direct ? direct_cap : lb.bounce_bytes / BLK_SECTOR);
		if (!n) {
			con_printf("biosdisk: %02xh: no bounce buffer below 1 MiB for a transfer into %08x (internal error)\n",
				   b->drive, phys);
			return BLK_E_IO;
		}
		uint32_t bytes = n * BLK_SECTOR;
		if (!direct && write)
			memcpy(phys_ptr(lb.bounce), buf, bytes);
		uint8_t st = bd_xfer1(b, write, lba, n, direct ? phys : lb.bounce, lb.scratch);
		if (st)
			return bd_status(st);
		if (!direct && !write)
			memcpy(buf, phys_ptr(lb.bounce), bytes);
		buf += bytes;
		lba += n;
		count -= n;
	}
	return BLK_OK;
}

/* blk_dev.read. */
static int bd_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	return bd_rw(d, 0, lba, count, buf);
}

/* blk_dev.write: done when the BIOS's write call returns (INT 13h has no cache flush). */
static int bd_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	return bd_rw(d, 1, lba, count, (uint8_t *)(uintptr_t)buf);
}

/* blk_dev.flush: INT 13h defines no flush; a write is complete when the BIOS returns it. */
static int bd_flush(struct blk_dev *d)
{
	(void)d;
	return BLK_OK;
}

/* Copy n bytes of an EDD text field, trimmed, into out. */
static void bd_text(char *out, size_t cap, const uint8_t *p, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k + 1 < cap && p[i]; i++)
		out[k++] = (char)p[i];
	while (k && out[k - 1] == ' ')
		k--;
	out[k] = 0;
}

/* Ask the BIOS what drive is: EDD (41h, 48h with the 3.0 device path), geometry (08h). Returns its size in sectors, 0 if unusable. */
static uint64_t bd_query(struct bd_disk *b, uint32_t scratch)
{
	struct rm_regs r;
	memset(&r, 0, sizeof(r));
	r.eax = 0x4100;
	r.ebx = 0x55AA;
	r.edx = b->drive;
	b->edd = !bd_call(&r) && (r.ebx & 0xFFFF) == 0xAA55 && (r.ecx & 1);
	uint64_t sectors = 0;
	char bus[8] = "", iface[12] = "";
	if (b->edd) {
		uint8_t *p = phys_ptr(scratch);
		memset(p, 0, 0x42);
		p[0] = 0x42;
		memset(&r, 0, sizeof(r));
		r.eax = 0x4800;
		r.edx = b->drive;
		r.ds = (uint16_t)(scratch >> 4);
		r.esi = scratch & 15;
		if (!bd_call(&r)) {
			for (int i = 0; i < 8; i++)
				sectors |= (uint64_t)p[0x10 + i] << (8 * i);
			uint16_t bps = (uint16_t)(p[0x18] | p[0x19] << 8);
			if (bps && bps != BLK_SECTOR) {
				con_printf("biosdisk: %02xh: %u-byte sectors: not served (512 only)\n", b->drive, bps);
				return 0;
			}
			uint16_t size = (uint16_t)(p[0] | p[1] << 8);
			if (size >= 0x42 && p[0x1E] == 0xDD && p[0x1F] == 0xBE) {
				bd_text(bus, sizeof(bus), p + 0x24, 4);
				bd_text(iface, sizeof(iface), p + 0x28, 8);
				if (!strcmp(iface, "ATA")) {
					int chan = -1;
					if (!strcmp(bus, "PCI"))
						chan = p[0x33];
					else if (!strcmp(bus, "ISA"))
						chan = (p[0x30] | p[0x31] << 8) == 0x1F0 ? 0 : (p[0x30] | p[0x31] << 8) == 0x170 ? 1 : -1;
					if (chan == 0 || chan == 1)
						b->ata_pos = chan * 2 + (p[0x38] & 1);
				}
			}
		} else {
			b->edd = 0;
		}
	}
	memset(&r, 0, sizeof(r));
	r.eax = 0x0800;
	r.edx = b->drive;
	if (!bd_call(&r)) {
		b->spt = (uint16_t)(r.ecx & 0x3F);
		b->cyls = (uint16_t)(((r.ecx >> 8) & 0xFF) | ((r.ecx & 0xC0) << 2)) + 1;
		b->heads = (uint16_t)(((r.edx >> 8) & 0xFF) + 1);
	}
	if (!b->edd) {
		if (!b->spt) {
			con_printf("biosdisk: %02xh: neither EDD nor a geometry (AH=08h): not served\n", b->drive);
			return 0;
		}
		sectors = (uint64_t)b->cyls * b->heads * b->spt;
	}
	k_snprintf(b->model, sizeof(b->model), "BIOS %02xh %s%s%s%s", b->drive,
		   b->edd ? "EDD" : "CHS only", bus[0] ? " " : "", bus, iface[0] ? " " : "");
	size_t l = strlen(b->model);
	k_strlcpy(b->model + l, iface, sizeof(b->model) - l);
	return sectors;
}

/* The native disk (already registered) that BIOS disk b is, or NULL: same size, same sector 0, and the same ATA position when EDD names one. */
static struct disk *bd_native_twin(const struct bd_disk *b, const uint8_t *s0, uint8_t *tmp, unsigned *taken)
{
	for (int i = 0; i < disk_count() && i < 32; i++) {
		struct disk *d = disk_get(i);
		if ((d->flags & (DISK_RAM | DISK_RMCALL)) || (*taken & (1u << i)))
			continue;
		if (d->blk->sectors != b->blk.sectors)
			continue;
		/* The EDD ATA position tells IDE disks apart; a BIOS in AHCI mode may describe a SATA disk as ATA
		 * channel/unit too, so for other native drivers (ahci, nvme) size and sector 0 decide. */
		if (b->ata_pos >= 0 && !strcmp(d->driver, "ata") && strcmp(d->where, ata_positions[b->ata_pos]))
			continue;
		if (blk_read(d->blk, 0, 1, tmp) || memcmp(tmp, s0, BLK_SECTOR))
			continue;
		*taken |= 1u << i;
		return d;
	}
	return 0;
}

/* Driver probe: every BIOS hard disk (40:75) that no native driver serves already. */
static int bd_probe(const struct drv_boot_info *bi)
{
	if (bi->disk_mode == DRV_DISK_NATIVE || bi->disk_mode == DRV_DISK_PIO)
		return 0;
	bd_vec = *(volatile uint32_t *)phys_ptr(0x13 * 4);
	int nbios = *(volatile uint8_t *)phys_ptr(BD_BDA_NUM_HD), added = 0;
	struct resident_lowbuf lb;
	resident_lowbuf(&lb);
	static uint8_t s0[BLK_SECTOR], tmp[BLK_SECTOR];
	unsigned taken = 0;
	con_printf("biosdisk: %d BIOS hard disk(s), INT 13h at %04x:%04x\n", nbios, bd_vec >> 16, bd_vec & 0xFFFF);
	for (int i = 0; i < nbios && i < BD_MAX; i++) {
		struct bd_disk *b = &bd_tab[added];
		memset(b, 0, sizeof(*b));
		b->drive = (uint8_t)(0x80 + i);
		b->ata_pos = -1;
		uint64_t sectors = bd_query(b, lb.scratch);
		if (!sectors)
			continue;
		b->blk.sectors = sectors;
		b->blk.size_bytes = sectors * BLK_SECTOR;
		b->blk.max_sectors = sectors;
		b->blk.max_count = b->edd ? BD_EDD_MAX : b->spt;
		b->blk.read = bd_read;
		b->blk.write = bd_write;
		b->blk.flush = bd_flush;
		b->blk.priv = b;
		k_snprintf(b->where, sizeof(b->where), "%02xh", b->drive);
		b->blk.name = b->where;
		if (blk_read(&b->blk, 0, 1, s0)) {
			con_printf("biosdisk: %02xh: sector 0 unreadable: not served\n", b->drive);
			continue;
		}
		struct disk *twin = bi->disk_mode == DRV_DISK_BIOS ? 0 : bd_native_twin(b, s0, tmp, &taken);
		if (twin) {
			con_printf("biosdisk: %02xh = %s (%s %s): served by the native driver\n", b->drive, twin->label,
				   twin->driver, twin->where);
			continue;
		}
		int k = disk_add(&b->blk, "bios", b->where, b->model, DISK_RMCALL | (b->edd ? DISK_EDD : 0u));
		if (k < 0) {
			con_printf("biosdisk: disk registry full; %02xh ignored\n", b->drive);
			continue;
		}
		k_strlcpy(b->name, disk_get(k)->label, sizeof(b->name));
		disk_get(k)->channel = b->drive;  /* identity for the hand-over table, and the resident fast path's drive */
		disk_get(k)->bios_vec = bd_vec;
		b->blk.name = b->name;
		con_printf("biosdisk: %02xh = %s: %llu sectors, %s, up to %u sectors per call\n", b->drive, b->name,
			   (unsigned long long)sectors, b->edd ? "EDD (AH=42h/43h)" : "CHS (AH=02h/03h)",
			   b->blk.max_count);
		added++;
	}
	return added;
}

static const struct driver bd_driver = { "bios", bd_probe, 0 };
DRIVER(50, bd_driver);
