/* ata.c: polled ATA driver for the legacy IDE channels: bus-master DMA (SFF-8038i, PCI IDE BAR4) with PIO (LBA28/LBA48, READ/WRITE MULTIPLE, 32-bit PIO) as the fallback, behind struct blk_dev. */
#include <stdint.h>
#include "ata.h"
#include "ata_id.h"    /* ata_id_parse */
#include "dma.h"       /* dma_bm_prd_build */
#include "driver.h"
#include "pci.h"       /* the PCI IDE function and its BAR4 */
#include "../kernel/phys.h"
#include "../block/disk.h"
#include "../kernel/console.h"
#include "../kernel/io.h"
#include "../kernel/string.h"

/* Command block registers, offsets from io_base. */
#define ATA_REG_DATA 0
#define ATA_REG_ERROR 1        /* read */
#define ATA_REG_FEATURES 1     /* write */
#define ATA_REG_NSECT 2
#define ATA_REG_LBA0 3
#define ATA_REG_LBA1 4         /* cylinder low; signature byte 1 */
#define ATA_REG_LBA2 5         /* cylinder high; signature byte 2 */
#define ATA_REG_DEVICE 6
#define ATA_REG_STATUS 7       /* read: also clears a pending INTRQ */
#define ATA_REG_COMMAND 7      /* write */
/* Control block register, offset from ctl_base. */
#define ATA_REG_ALTSTATUS 0    /* read: status without side effects */
#define ATA_REG_DEVCTL 0       /* write */

/* Legacy channel addresses. */
#define ATA_PRI_IO 0x1F0
#define ATA_PRI_CTL 0x3F6
#define ATA_SEC_IO 0x170
#define ATA_SEC_CTL 0x376

/* Status register bits. */
#define ATA_SR_BSY 0x80
#define ATA_SR_DRDY 0x40
#define ATA_SR_DF 0x20
#define ATA_SR_DRQ 0x08
#define ATA_SR_ERR 0x01
/* A bus with nothing driving it reads all ones. */
#define ATA_SR_FLOATING 0xFF

/* Device control bits: nIEN always set (we poll; the BIOS must never see IRQ 14 from us). */
#define ATA_DC_HD15 0x08       /* obsolete, set by convention as SeaBIOS does */
#define ATA_DC_SRST 0x04
#define ATA_DC_NIEN 0x02
#define ATA_DC_RUN (ATA_DC_HD15 | ATA_DC_NIEN)

/* Device register bits. */
#define ATA_DEV_OBS 0xA0       /* bits 7 and 5: obsolete, traditionally set */
#define ATA_DEV_LBA 0x40
#define ATA_DEV_SLAVE 0x10

/* Command opcodes. */
#define ATA_CMD_READ_SECTORS 0x20
#define ATA_CMD_READ_SECTORS_EXT 0x24
#define ATA_CMD_READ_MULTIPLE_EXT 0x29
#define ATA_CMD_WRITE_SECTORS 0x30
#define ATA_CMD_WRITE_SECTORS_EXT 0x34
#define ATA_CMD_WRITE_MULTIPLE_EXT 0x39
#define ATA_CMD_READ_DMA_EXT 0x25
#define ATA_CMD_WRITE_DMA_EXT 0x35
#define ATA_CMD_READ_DMA 0xC8
#define ATA_CMD_WRITE_DMA 0xCA
#define ATA_CMD_READ_MULTIPLE 0xC4
#define ATA_CMD_WRITE_MULTIPLE 0xC5
#define ATA_CMD_SET_MULTIPLE 0xC6
#define ATA_CMD_FLUSH_CACHE 0xE7
#define ATA_CMD_FLUSH_CACHE_EXT 0xEA
#define ATA_CMD_IDENTIFY 0xEC

/* Signatures (LBA1, LBA2) left by a reset. */
#define ATA_SIG_ATA_1 0x00
#define ATA_SIG_ATA_2 0x00
#define ATA_SIG_SATA_1 0x3C
#define ATA_SIG_SATA_2 0xC3
#define ATA_SIG_ATAPI_1 0x14
#define ATA_SIG_ATAPI_2 0xEB
#define ATA_SIG_SATAPI_1 0x69
#define ATA_SIG_SATAPI_2 0x96
#define ATA_SIG_NONE_1 0xFF    /* QEMU: no drive at this position */
#define ATA_SIG_NONE_2 0xFF


/* Transfer limits. */
#define ATA_SECTOR_WORDS 256
#define ATA_SECTOR_DWORDS 128
#define ATA_LBA28_LIMIT (1ull << 28)
#define ATA_LBA28_MAX_COUNT 256u
#define ATA_LBA48_MAX_COUNT 65536u
#define ATA_MULTI_MAX 16u

/* Bus-master IDE registers (SFF-8038i), offsets from BAR4 + 8 * channel. */
#define BM_CMD 0
#define BM_STATUS 2
#define BM_PRDT 4
#define BM_CMD_START 0x01
#define BM_CMD_TO_MEM 0x08     /* the controller writes memory: a READ */
#define BM_ST_ACTIVE 0x01
#define BM_ST_ERR 0x02
#define BM_ST_IRQ 0x04
#define BM_ST_KEEP 0x60        /* drive 0/1 DMA capable: set by the BIOS, written back unchanged */
#define BM_PRDS 128            /* per channel: 127 x 64 KiB whatever the buffer's alignment */
#define PCI_IDE_PROGIF_PRI_NATIVE 0x01
#define PCI_IDE_PROGIF_SEC_NATIVE 0x04
#define PCI_IDE_PROGIF_BM 0x80

/* Timeouts in milliseconds (the spec allows 31 s for a reset; disks are spun up by the time GRUB ran). */
#define ATA_TMO_RESET_MS 31000u
#define ATA_TMO_CMD_MS 10000u
#define ATA_TMO_FLUSH_MS 30000u
/* Polls between two rdtsc deadline checks. */
#define ATA_POLL_BATCH 64u
#define ATA_DMA_POLL_ST 16u            /* a DMA command's poll loop reads the device's status every 16 polls (and at the end) */

#define ATA_TSC_FALLBACK_PER_MS 3000000u /* 3 GHz if kernel/tsc.c could not calibrate */

/* Per-channel state: the device we last selected and the disks found there. */
struct ata_chan {
	uint16_t io;
	uint16_t ctl;
	uint8_t sel;                   /* 0/1 last selected device, ATA_SEL_UNKNOWN after a reset */
	struct ata_disk *disk[2];      /* probed disks, for re-setup after a recovery reset */
	uint8_t flush_cmd[2];          /* FLUSH CACHE opcode per device, 0 = not supported */
	uint16_t bm;                   /* bus-master registers of this channel, 0: none (PIO only) */
};
#define ATA_SEL_UNKNOWN 0xFF

static struct ata_chan ata_chans[2] = {
	{ ATA_PRI_IO, ATA_PRI_CTL, ATA_SEL_UNKNOWN, { 0, 0 }, { 0, 0 }, 0 },
	{ ATA_SEC_IO, ATA_SEC_CTL, ATA_SEL_UNKNOWN, { 0, 0 }, { 0, 0 }, 0 },
};
/* One PRD table per channel (512-byte aligned 1 KiB: never across a 64 KiB boundary, as SFF-8038i wants); in the kernel image, so resident. */
static struct dma_bm_prd ata_prdt[2][BM_PRDS] __attribute__((aligned(1024)));
static uint32_t ata_tsc_per_ms, ata_tsc_per_us;

/* Take the boot sequence's TSC rate (kernel/tsc.c, the one calibration); a fallback when it failed. */
static void ata_set_tsc(uint32_t tsc_per_ms)
{
	ata_tsc_per_ms = tsc_per_ms;
	if (!ata_tsc_per_ms) {
		ata_tsc_per_ms = ATA_TSC_FALLBACK_PER_MS;
		con_printf("ata: no TSC calibration, assuming %u TSC ticks/ms\n", ata_tsc_per_ms);
	}
	ata_tsc_per_us = ata_tsc_per_ms / 1000u + 1;
}

/* Busy-wait about us microseconds using the calibrated TSC. */
static void ata_udelay(uint32_t us)
{
	uint64_t end = rdtsc() + (uint64_t)us * ata_tsc_per_us;

	while (rdtsc() < end)
		cpu_relax();
}

/* The ~400 ns settle time: four reads of the alternate status register. */
static void ata_delay400(const struct ata_chan *c)
{
	inb(c->ctl + ATA_REG_ALTSTATUS);
	inb(c->ctl + ATA_REG_ALTSTATUS);
	inb(c->ctl + ATA_REG_ALTSTATUS);
	inb(c->ctl + ATA_REG_ALTSTATUS);
}

/*
 * Poll the alternate status until (status & mask) == want; returns 0, or -1
 * after ms milliseconds. *st gets the last status read either way.
 */
static int ata_wait(const struct ata_chan *c, uint8_t mask, uint8_t want, uint32_t ms, uint8_t *st)
{
	uint64_t deadline = 0;
	uint32_t i;

	for (i = 0;; i++) {
		*st = inb(c->ctl + ATA_REG_ALTSTATUS);
		if ((*st & mask) == want)
			return 0;
		if (i % ATA_POLL_BATCH == 0) {
			uint64_t now = rdtsc();

			if (i == 0)
				deadline = now + (uint64_t)ms * ata_tsc_per_ms;
			else if (now > deadline)
				return -1;
		}
	}
}

/* Name of a command opcode, for messages. */
static const char *ata_cmd_name(uint8_t cmd)
{
	switch (cmd) {
	case ATA_CMD_READ_SECTORS: return "READ SECTORS";
	case ATA_CMD_READ_SECTORS_EXT: return "READ SECTORS EXT";
	case ATA_CMD_READ_MULTIPLE: return "READ MULTIPLE";
	case ATA_CMD_READ_MULTIPLE_EXT: return "READ MULTIPLE EXT";
	case ATA_CMD_WRITE_SECTORS: return "WRITE SECTORS";
	case ATA_CMD_WRITE_SECTORS_EXT: return "WRITE SECTORS EXT";
	case ATA_CMD_WRITE_MULTIPLE: return "WRITE MULTIPLE";
	case ATA_CMD_WRITE_MULTIPLE_EXT: return "WRITE MULTIPLE EXT";
	case ATA_CMD_SET_MULTIPLE: return "SET MULTIPLE MODE";
	case ATA_CMD_FLUSH_CACHE: return "FLUSH CACHE";
	case ATA_CMD_FLUSH_CACHE_EXT: return "FLUSH CACHE EXT";
	case ATA_CMD_IDENTIFY: return "IDENTIFY DEVICE";
	case ATA_CMD_READ_DMA: return "READ DMA";
	case ATA_CMD_READ_DMA_EXT: return "READ DMA EXT";
	case ATA_CMD_WRITE_DMA: return "WRITE DMA";
	case ATA_CMD_WRITE_DMA_EXT: return "WRITE DMA EXT";
	default: return "command";
	}
}

static int ata_setup_multi(struct ata_disk *d, uint16_t max_multi, int quiet);

/*
 * Software-reset a channel after a timeout or protocol error, then restore
 * READ/WRITE MULTIPLE on its disks. Leaves nIEN set.
 */
static void ata_recover(struct ata_chan *c)
{
	static int busy;   /* a failure while recovering must not recurse */
	uint8_t st;
	int i;

	if (busy)
		return;
	busy = 1;
	outb(c->ctl + ATA_REG_DEVCTL, ATA_DC_RUN | ATA_DC_SRST);
	ata_udelay(5);
	outb(c->ctl + ATA_REG_DEVCTL, ATA_DC_RUN);
	ata_udelay(2000);
	c->sel = ATA_SEL_UNKNOWN;
	if (ata_wait(c, ATA_SR_BSY, 0, ATA_TMO_RESET_MS, &st))
		con_printf("ata: channel 0x%x still busy after reset (status 0x%02x)\n", c->io, st);
	for (i = 0; i < 2; i++)
		if (c->disk[i] && c->disk[i]->multi)
			ata_setup_multi(c->disk[i], c->disk[i]->multi, 1);
	inb(c->io + ATA_REG_STATUS);
	busy = 0;
}

/* Report a failed command with the disk, LBA and registers; recover the channel if asked; returns BLK_E_IO. */
static int ata_fail(struct ata_disk *d, uint8_t cmd, uint64_t lba, uint32_t count,
		    const char *what, uint8_t st, int reset)
{
	struct ata_chan *c = &ata_chans[d->channel];
	uint8_t err = inb(c->io + ATA_REG_ERROR);

	con_printf("ata %s: %s lba %llu count %u: %s (status 0x%02x error 0x%02x)\n",
		   d->label, ata_cmd_name(cmd), (unsigned long long)lba, count, what, st, err);
	if (reset)
		ata_recover(c);
	else
		inb(c->io + ATA_REG_STATUS);
	return BLK_E_IO;
}

/* Select d's device if the channel has another one selected (checked against the register too: a BIOS may have switched it). */
static void ata_select(struct ata_disk *d)
{
	struct ata_chan *c = &ata_chans[d->channel];
	uint8_t cur = inb(c->io + ATA_REG_DEVICE) & ATA_DEV_SLAVE ? 1 : 0;

	if (c->sel != d->slave || cur != d->slave) {
		outb(c->io + ATA_REG_DEVICE, (uint8_t)(ATA_DEV_OBS | (d->slave ? ATA_DEV_SLAVE : 0)));
		ata_delay400(c);
		c->sel = d->slave;
	}
}

/*
 * Select the disk, wait until it is ready, load the task file and write the
 * command, without the 400 ns wait before Status is valid (ata_issue waits;
 * a DMA command's end is the engine's: ata_dma_cmd). ext = LBA48 register
 * loading. Returns 0 or BLK_E_IO (logged).
 */
static int ata_issue_nowait(struct ata_disk *d, uint8_t cmd, uint64_t lba, uint32_t count, int ext,
			    uint8_t nsect_val)
{
	struct ata_chan *c = &ata_chans[d->channel];
	uint8_t dev = (uint8_t)(ATA_DEV_OBS | ATA_DEV_LBA | (d->slave ? ATA_DEV_SLAVE : 0));
	uint8_t st;

	ata_select(d);
	/* A BIOS driver may have cleared nIEN while the guest ran: set it again. */
	outb(c->ctl + ATA_REG_DEVCTL, ATA_DC_RUN);
	if (ata_wait(c, ATA_SR_BSY | ATA_SR_DRQ | ATA_SR_DRDY, ATA_SR_DRDY, ATA_TMO_CMD_MS, &st))
		return ata_fail(d, cmd, lba, count, "timeout waiting for ready", st, 1);
	if (ext) {
		outb(c->io + ATA_REG_NSECT, (uint8_t)(count >> 8));
		outb(c->io + ATA_REG_LBA0, (uint8_t)(lba >> 24));
		outb(c->io + ATA_REG_LBA1, (uint8_t)(lba >> 32));
		outb(c->io + ATA_REG_LBA2, (uint8_t)(lba >> 40));
	} else {
		dev |= (uint8_t)((lba >> 24) & 0x0F);
	}
	outb(c->io + ATA_REG_NSECT, nsect_val);
	outb(c->io + ATA_REG_LBA0, (uint8_t)lba);
	outb(c->io + ATA_REG_LBA1, (uint8_t)(lba >> 8));
	outb(c->io + ATA_REG_LBA2, (uint8_t)(lba >> 16));
	outb(c->io + ATA_REG_DEVICE, dev);
	outb(c->io + ATA_REG_COMMAND, cmd);
	return 0;
}

/* ata_issue_nowait, then the 400 ns before Status may be read. Returns 0 or BLK_E_IO (logged). */
static int ata_issue(struct ata_disk *d, uint8_t cmd, uint64_t lba, uint32_t count, int ext, uint8_t nsect_val)
{
	int rc = ata_issue_nowait(d, cmd, lba, count, ext, nsect_val);
	if (!rc)
		ata_delay400(&ata_chans[d->channel]);
	return rc;
}

/* Move sectors*512 bytes from the data port into buf, 32 or 16 bits at a time. */
static void ata_data_in(const struct ata_disk *d, void *buf, uint32_t sectors)
{
	uint16_t port = (uint16_t)(d->io_base + ATA_REG_DATA);

	if (d->pio32)
		insl(port, buf, sectors * ATA_SECTOR_DWORDS);
	else
		insw(port, buf, sectors * ATA_SECTOR_WORDS);
}

/* Move sectors*512 bytes from buf to the data port, 32 or 16 bits at a time. */
static void ata_data_out(const struct ata_disk *d, const void *buf, uint32_t sectors)
{
	uint16_t port = (uint16_t)(d->io_base + ATA_REG_DATA);

	if (d->pio32)
		outsl(port, buf, sectors * ATA_SECTOR_DWORDS);
	else
		outsw(port, buf, sectors * ATA_SECTOR_WORDS);
}

/*
 * Wait for BSY to clear, then read Status (clearing INTRQ) and check it has
 * exactly DRQ set (want_drq) or clear, and neither ERR nor DF.
 * Returns 0 or BLK_E_IO (logged, channel recovered when needed).
 */
static int ata_check(struct ata_disk *d, uint8_t cmd, uint64_t lba, uint32_t count,
		     int want_drq, uint32_t ms)
{
	struct ata_chan *c = &ata_chans[d->channel];
	uint8_t st;

	if (ata_wait(c, ATA_SR_BSY, 0, ms, &st))
		return ata_fail(d, cmd, lba, count, "timeout waiting for BSY to clear", st, 1);
	st = inb(c->io + ATA_REG_STATUS);
	if (st & (ATA_SR_ERR | ATA_SR_DF))
		return ata_fail(d, cmd, lba, count, st & ATA_SR_DF ? "device fault" : "device error",
				st, (st & ATA_SR_DRQ) != 0);
	if (want_drq && !(st & ATA_SR_DRQ))
		return ata_fail(d, cmd, lba, count, "no DRQ for data", st, 1);
	if (!want_drq && (st & ATA_SR_DRQ))
		return ata_fail(d, cmd, lba, count, "DRQ still set after data", st, 1);
	return 0;
}

/* One command moving count (1..65536) sectors at lba; DRQ blocks of multi sectors when multi > 0. */
static int ata_pio_cmd(struct ata_disk *d, uint64_t lba, uint32_t count, void *buf, int write)
{
	/* The shorter LBA28 task file when it reaches (never touching LBA 2^28-1, as SeaBIOS avoids it). */
	int ext = d->lba48 && (lba + count >= ATA_LBA28_LIMIT || count > ATA_LBA28_MAX_COUNT);
	uint32_t block = d->multi ? d->multi : 1, left = count;
	uint8_t *p = buf, cmd;
	int rc;

	if (write)
		cmd = d->multi ? (ext ? ATA_CMD_WRITE_MULTIPLE_EXT : ATA_CMD_WRITE_MULTIPLE)
			       : (ext ? ATA_CMD_WRITE_SECTORS_EXT : ATA_CMD_WRITE_SECTORS);
	else
		cmd = d->multi ? (ext ? ATA_CMD_READ_MULTIPLE_EXT : ATA_CMD_READ_MULTIPLE)
			       : (ext ? ATA_CMD_READ_SECTORS_EXT : ATA_CMD_READ_SECTORS);
	/* A sector count register of 0 means 256 (LBA28) or 65536 (LBA48). */
	rc = ata_issue(d, cmd, lba, count, ext, (uint8_t)count);
	if (rc)
		return rc;
	while (left) {
		uint32_t n = left < block ? left : block;

		rc = ata_check(d, cmd, lba + (count - left), count, 1, ATA_TMO_CMD_MS);
		if (rc)
			return rc;
		if (write)
			ata_data_out(d, p, n);
		else
			ata_data_in(d, p, n);
		/* One PIO cycle before looking at BSY again, as the spec asks after a DRQ block. */
		inb(d->ctl_base + ATA_REG_ALTSTATUS);
		p += n * BLK_SECTOR;
		left -= n;
	}
	return ata_check(d, cmd, lba, count, 0, ATA_TMO_CMD_MS);
}

/*
 * One bus-master DMA command of count sectors at lba (buffer at an even
 * physical address): PRD table, task file, start, poll until the device
 * is idle and the engine stopped, check both. Returns 0 or BLK_E_IO (logged).
 */
static int ata_dma_cmd(struct ata_disk *d, uint64_t lba, uint32_t count, void *buf, int write)
{
	struct ata_chan *c = &ata_chans[d->channel];
	struct dma_bm_prd *t = ata_prdt[d->channel];
	int ext = d->lba48 && (lba + count >= ATA_LBA28_LIMIT || count > ATA_LBA28_MAX_COUNT);
	uint8_t cmd = write ? (ext ? ATA_CMD_WRITE_DMA_EXT : ATA_CMD_WRITE_DMA)
			    : (ext ? ATA_CMD_READ_DMA_EXT : ATA_CMD_READ_DMA);
	int n = dma_bm_prd_build(t, BM_PRDS, virt_to_phys(buf), count * BLK_SECTOR);

	if (n < 0) {
		con_printf("ata %s: %s lba %llu count %u: %s\n", d->label, ata_cmd_name(cmd),
			   (unsigned long long)lba, count, dma_strerror(n));
		return BLK_E_IO;
	}
	/* Leave the engine as a BIOS that uses it expects: its table pointer is put back afterwards. */
	uint32_t old_prdt = inl((uint16_t)(c->bm + BM_PRDT));
	uint8_t dir = write ? 0 : BM_CMD_TO_MEM;
	outb((uint16_t)(c->bm + BM_CMD), dir);
	outl((uint16_t)(c->bm + BM_PRDT), virt_to_phys(t));
	uint8_t keep = inb((uint16_t)(c->bm + BM_STATUS)) & BM_ST_KEEP;
	outb((uint16_t)(c->bm + BM_STATUS), keep | BM_ST_ERR | BM_ST_IRQ);
	/* No separate 400 ns wait: the engine is started first, and the loop reads the device's status only
	 * from its 5th poll on (4 port reads: ata_delay400's wait), once the engine stopped or every
	 * ATA_DMA_POLL_ST polls (a device error leaves the engine running). */
	int rc = ata_issue_nowait(d, cmd, lba, count, ext, (uint8_t)count);
	if (rc) {
		outl((uint16_t)(c->bm + BM_PRDT), old_prdt);
		return rc;
	}
	outb((uint16_t)(c->bm + BM_CMD), dir | BM_CMD_START);
	uint64_t deadline = rdtsc() + (uint64_t)ATA_TMO_CMD_MS * ata_tsc_per_ms;
	uint8_t st = ATA_SR_BSY, bm;
	const char *why = 0;
	for (uint32_t i = 1;; i++) {
		/* One port read per poll while the transfer runs (each one is an exit to the emulator, which
		 * completes the DMA meanwhile: docs/perf.md). */
		bm = inb((uint16_t)(c->bm + BM_STATUS));
		if (bm & BM_ST_ERR) {
			why = "bus-master error";
			break;
		}
		/* nIEN is set, so the IRQ bit may never come: idle device + stopped engine is the end. */
		int stopped = !(bm & BM_ST_ACTIVE) || (bm & BM_ST_IRQ);
		/* Not before the 5th poll: 4 port reads are ata_delay400's 400 ns, after which Status is valid. */
		if (i > 4 && (stopped || i % ATA_DMA_POLL_ST == 0)) {
			st = inb(c->ctl + ATA_REG_ALTSTATUS);
			if (!(st & ATA_SR_BSY) && (stopped || (st & (ATA_SR_ERR | ATA_SR_DF))))
				break;
		}
		if (rdtsc() > deadline) {
			why = "timeout";
			break;
		}
		cpu_relax();
	}
	outb((uint16_t)(c->bm + BM_CMD), dir);
	st = inb(c->io + ATA_REG_STATUS);
	outb((uint16_t)(c->bm + BM_STATUS), keep | BM_ST_ERR | BM_ST_IRQ);
	outl((uint16_t)(c->bm + BM_PRDT), old_prdt);
	if (!why && (st & (ATA_SR_ERR | ATA_SR_DF)))
		why = st & ATA_SR_DF ? "device fault" : "device error";
	else if (!why && (st & ATA_SR_DRQ))
		why = "DRQ set after DMA";
	else if (!why && (bm & BM_ST_ACTIVE) && !(bm & BM_ST_IRQ))
		why = "transfer ended early";
	if (why)
		return ata_fail(d, cmd, lba, count, why, st, 1);
	return 0;
}

/* One PIO command (blk_read/blk_write checked the range and split by max_count: 256 LBA28, 65536 LBA48). */
static int ata_rw(struct blk_dev *bd, uint64_t lba, uint32_t count, void *buf, int write)
{
	struct ata_disk *d = bd->priv;

	/* DMA needs a word-aligned buffer; an odd one (rare: a guest's odd ES:BX) goes by PIO. */
	if (d->dma && !(virt_to_phys(buf) & 1)) {
		if (ata_dma_cmd(d, lba, count, buf, write) == 0)
			return 0;
		d->dma = 0;
		con_printf("ata %s: DMA command failed; this disk uses PIO from now on (the request is retried by PIO)\n",
			   d->label);
	}
	return ata_pio_cmd(d, lba, count, buf, write);
}

/* blk_dev read: count sectors at lba into buf. */
static int ata_read(struct blk_dev *bd, uint64_t lba, uint32_t count, void *buf)
{
	return ata_rw(bd, lba, count, buf, 0);
}

/* blk_dev write: count sectors at lba from buf. */
static int ata_write(struct blk_dev *bd, uint64_t lba, uint32_t count, const void *buf)
{
	return ata_rw(bd, lba, count, (void *)(uintptr_t)buf, 1);
}

/* blk_dev flush: FLUSH CACHE (EXT); a disk without the command is write-through and needs none. */
static int ata_flush(struct blk_dev *bd)
{
	struct ata_disk *d = bd->priv;
	uint8_t cmd = ata_chans[d->channel].flush_cmd[d->slave];
	int rc;

	if (!cmd)
		return BLK_OK;
	rc = ata_issue(d, cmd, 0, 0, 0, 0);
	if (rc)
		return rc;
	return ata_check(d, cmd, 0, 0, 0, ATA_TMO_FLUSH_MS);
}

/* SET MULTIPLE MODE to the largest power of two <= min(max_multi, 16); d->multi = 0 (single-sector commands) if refused. */
static int ata_setup_multi(struct ata_disk *d, uint16_t max_multi, int quiet)
{
	struct ata_chan *c = &ata_chans[d->channel];
	uint16_t m = 1;
	uint8_t st;

	d->multi = 0;
	if (!max_multi)
		return 0;
	while (m * 2 <= max_multi && m * 2 <= ATA_MULTI_MAX)
		m *= 2;
	if (ata_issue(d, ATA_CMD_SET_MULTIPLE, 0, m, 0, (uint8_t)m))
		return -1;
	if (ata_wait(c, ATA_SR_BSY, 0, ATA_TMO_CMD_MS, &st)) {
		ata_fail(d, ATA_CMD_SET_MULTIPLE, 0, m, "timeout", st, 1);
		return -1;
	}
	st = inb(c->io + ATA_REG_STATUS);
	if (st & (ATA_SR_ERR | ATA_SR_DF)) {
		if (!quiet)
			con_printf("ata %s: SET MULTIPLE MODE %u refused (status 0x%02x error 0x%02x), using single-sector commands\n",
				   d->label, m, st, inb(c->io + ATA_REG_ERROR));
		return -1;
	}
	d->multi = m;
	return 0;
}

/* IDENTIFY DEVICE into id, 32-bit transfers if pio32; returns 0, or -1 if the device answered with an error or nothing. */
static int ata_identify(struct ata_disk *d, uint16_t *id, int pio32)
{
	struct ata_chan *c = &ata_chans[d->channel];
	uint8_t st;

	ata_select(d);
	outb(c->ctl + ATA_REG_DEVCTL, ATA_DC_RUN);
	if (ata_wait(c, ATA_SR_BSY | ATA_SR_DRQ, 0, ATA_TMO_CMD_MS, &st)) {
		ata_fail(d, ATA_CMD_IDENTIFY, 0, 1, "timeout waiting for ready", st, 1);
		return -1;
	}
	outb(c->io + ATA_REG_COMMAND, ATA_CMD_IDENTIFY);
	ata_delay400(c);
	if (ata_wait(c, ATA_SR_BSY, 0, ATA_TMO_CMD_MS, &st)) {
		ata_fail(d, ATA_CMD_IDENTIFY, 0, 1, "timeout", st, 1);
		return -1;
	}
	st = inb(c->io + ATA_REG_STATUS);
	if (st == 0 || (st & (ATA_SR_ERR | ATA_SR_DF)) || !(st & ATA_SR_DRQ))
		return -1;
	if (pio32)
		insl(c->io + ATA_REG_DATA, id, ATA_SECTOR_DWORDS);
	else
		insw(c->io + ATA_REG_DATA, id, ATA_SECTOR_WORDS);
	inb(c->ctl + ATA_REG_ALTSTATUS);
	if (ata_wait(c, ATA_SR_BSY, 0, ATA_TMO_CMD_MS, &st)) {
		ata_fail(d, ATA_CMD_IDENTIFY, 0, 1, "timeout after data", st, 1);
		return -1;
	}
	inb(c->io + ATA_REG_STATUS);
	return 0;
}

/*
 * Decide whether 32-bit PIO can be trusted on this controller: IDENTIFY
 * and LBA 0 read with 32-bit transfers must match the 16-bit copies.
 */
static int ata_check_pio32(struct ata_disk *d, const uint16_t *id16)
{
	static uint16_t id32[ATA_ID_WORDS];
	static uint8_t s16[BLK_SECTOR], s32[BLK_SECTOR];

	if (ata_identify(d, id32, 1) || memcmp(id16, id32, sizeof(id32)))
		return 0;
	d->pio32 = 0;
	if (ata_read(&d->blk, 0, 1, s16))
		return 0;
	d->pio32 = 1;
	if (ata_read(&d->blk, 0, 1, s32) || memcmp(s16, s32, sizeof(s16))) {
		d->pio32 = 0;
		return 0;
	}
	return 1;
}

/* IDENTIFY an ATA device found at a position and fill d; returns 0 if it is a usable LBA disk. */
static int ata_setup_disk(struct ata_disk *d, int ch, int slave, int allow_dma)
{
	static uint16_t id[ATA_ID_WORDS];
	struct ata_chan *c = &ata_chans[ch];
	struct ata_id info;

	memset(d, 0, sizeof(*d));
	d->io_base = c->io;
	d->ctl_base = c->ctl;
	d->channel = (uint8_t)ch;
	d->slave = (uint8_t)slave;
	k_strlcpy(d->label, ata_positions[ch * 2 + slave], sizeof(d->label));
	if (ata_identify(d, id, 0)) {
		con_printf("ata %s: IDENTIFY DEVICE failed, skipped\n", d->label);
		return -1;
	}
	int st = ata_id_parse(id, &info);
	k_strlcpy(d->model, info.model, sizeof(d->model));
	k_strlcpy(d->serial, info.serial, sizeof(d->serial));
	if (st) {
		con_printf("ata %s: %s: %s, skipped\n", d->label, d->model, ata_id_strerror(st));
		return -1;
	}
	d->sectors = info.sectors;
	d->lba48 = info.lba48;
	c->flush_cmd[slave] = info.flush_cmd;

	d->blk.name = d->label;
	d->blk.sectors = d->blk.max_sectors = d->sectors;
	d->blk.max_count = d->lba48 ? ATA_LBA48_MAX_COUNT : ATA_LBA28_MAX_COUNT;
	d->blk.size_bytes = d->sectors * BLK_SECTOR;
	d->blk.read_only = 0;
	d->blk.read = ata_read;
	d->blk.write = ata_write;
	d->blk.flush = ata_flush;
	d->blk.write_zeroes = 0;
	d->blk.priv = d;

	ata_setup_multi(d, info.max_multi, 0);
	d->pio32 = (uint8_t)ata_check_pio32(d, id);
	c->disk[slave] = d;
	const char *dma = "PIO only (disk=pio)";
	if (allow_dma && !c->bm)
		dma = "PIO only (no bus-master IDE controller for this channel)";
	else if (allow_dma && !info.dma)
		dma = "PIO only (the disk has no DMA)";
	else if (allow_dma) {
		d->dma = 1;
		/* The PRD table bounds one command: 127 x 64 KiB, within the command's own count limit. */
		uint32_t cap = dma_bm_capacity(BM_PRDS) / BLK_SECTOR;
		if (cap < d->blk.max_count)
			d->blk.max_count = cap;
		dma = "bus-master DMA";
	}
	con_printf("ata %s: %s (serial %s), %llu sectors (%llu MiB), %s, multi %u, %s, %s\n",
		   d->label, d->model, d->serial, (unsigned long long)d->sectors,
		   (unsigned long long)(d->sectors >> 11), d->lba48 ? "LBA48" : "LBA28",
		   d->multi, d->pio32 ? "PIO32" : "PIO16", dma);
	return 0;
}

/* True if a device register written through this channel reads back (some device drives the bus). */
static int ata_chan_responds(struct ata_chan *c)
{
	int dev;

	for (dev = 0; dev < 2; dev++) {
		outb(c->io + ATA_REG_DEVICE, (uint8_t)(ATA_DEV_OBS | (dev ? ATA_DEV_SLAVE : 0)));
		ata_delay400(c);
		outb(c->io + ATA_REG_NSECT, 0x55);
		outb(c->io + ATA_REG_LBA0, 0xAA);
		if (inb(c->io + ATA_REG_NSECT) == 0x55 && inb(c->io + ATA_REG_LBA0) == 0xAA)
			return 1;
	}
	return 0;
}

/* Probe the four legacy positions; fill disks[] with ATA hard disks (ATAPI and absent devices logged and skipped). */
int ata_probe(struct ata_disk *disks, int max, uint32_t tsc_per_ms, int allow_dma)
{
	static const char *const chan_names[2] = { "primary", "secondary" };
	int found = 0, ch, dev;

	ata_set_tsc(tsc_per_ms);
	for (ch = 0; ch < 2; ch++) {
		struct ata_chan *c = &ata_chans[ch];
		uint8_t st = inb(c->io + ATA_REG_STATUS);

		c->disk[0] = c->disk[1] = 0;
		c->sel = ATA_SEL_UNKNOWN;
		if (st == ATA_SR_FLOATING) {
			con_printf("ata: %s channel (0x%x): floating bus, no devices\n", chan_names[ch], c->io);
			continue;
		}
		if (!ata_chan_responds(c)) {
			con_printf("ata: %s channel (0x%x): no devices\n", chan_names[ch], c->io);
			continue;
		}
		/* Software reset of both devices; nIEN stays set throughout. */
		outb(c->ctl + ATA_REG_DEVCTL, ATA_DC_RUN | ATA_DC_SRST);
		ata_udelay(5);
		outb(c->ctl + ATA_REG_DEVCTL, ATA_DC_RUN);
		ata_udelay(2000);
		for (dev = 0; dev < 2; dev++) {
			const char *label = ata_positions[ch * 2 + dev];
			uint8_t s1, s2;

			outb(c->io + ATA_REG_DEVICE, (uint8_t)(ATA_DEV_OBS | (dev ? ATA_DEV_SLAVE : 0)));
			ata_delay400(c);
			c->sel = (uint8_t)dev;
			if (ata_wait(c, ATA_SR_BSY, 0, ATA_TMO_RESET_MS, &st)) {
				con_printf("ata %s: still busy after reset (status 0x%02x), skipped\n", label, st);
				continue;
			}
			st = inb(c->io + ATA_REG_STATUS);
			s1 = inb(c->io + ATA_REG_LBA1);
			s2 = inb(c->io + ATA_REG_LBA2);
			/* Packet devices clear DRDY after a reset, so their status may read 0: signature first. */
			if ((s1 == ATA_SIG_ATAPI_1 && s2 == ATA_SIG_ATAPI_2) ||
			    (s1 == ATA_SIG_SATAPI_1 && s2 == ATA_SIG_SATAPI_2)) {
				con_printf("ata: ATAPI device at %s skipped\n", label);
				continue;
			}
			if (st == 0 || st == ATA_SR_FLOATING || (s1 == ATA_SIG_NONE_1 && s2 == ATA_SIG_NONE_2)) {
				con_printf("ata %s: no device\n", label);
				continue;
			}
			if (!(s1 == ATA_SIG_ATA_1 && s2 == ATA_SIG_ATA_2) &&
			    !(s1 == ATA_SIG_SATA_1 && s2 == ATA_SIG_SATA_2)) {
				con_printf("ata %s: unknown signature %02x/%02x (status 0x%02x), skipped\n",
					   label, s1, s2, st);
				continue;
			}
			if (found >= max) {
				con_printf("ata %s: disk table full (%d), skipped\n", label, max);
				continue;
			}
			if (ata_setup_disk(&disks[found], ch, dev, allow_dma) == 0)
				found++;
		}
		inb(c->io + ATA_REG_STATUS);
	}
	return found;
}

/* ------------------------------------------------------------------ the driver row */

static struct ata_disk ata_disks[ATA_MAX_DISKS];

/*
 * The bus-master registers of the legacy channels: the first PCI IDE
 * function (class 01/01) with a bus master whose channels are in
 * compatibility mode (they answer at 1F0h/170h); BAR4 gives 16 ports,
 * 8 per channel. Bus mastering and I/O decoding are switched on.
 */
static void ata_find_bm(void)
{
	struct pci_dev devs[4];
	char name[8];
	ata_chans[0].bm = ata_chans[1].bm = 0;
	if (!pci_present()) {
		con_printf("ata: no PCI: PIO only\n");
		return;
	}
	int n = pci_find_class(0x01, 0x01, PCI_ANY, devs, 4);
	for (int i = 0; i < n && i < 4; i++) {
		struct pci_bar bar;
		uint8_t pi = devs[i].progif;
		pci_name(&devs[i], name);
		if (!(pi & PCI_IDE_PROGIF_BM)) {
			con_printf("ata: IDE controller %s (%04x:%04x) has no bus master: PIO\n", name,
				   devs[i].vendor, devs[i].device);
			continue;
		}
		if (pci_bar(&devs[i], 4, &bar) || !bar.io || !bar.base || bar.size < 16) {
			con_printf("ata: IDE controller %s: BAR4 (bus master) unassigned: PIO\n", name);
			continue;
		}
		pci_enable(&devs[i], PCI_CMD_IO | PCI_CMD_MASTER);
		if (!(pi & PCI_IDE_PROGIF_PRI_NATIVE))
			ata_chans[0].bm = (uint16_t)bar.base;
		if (!(pi & PCI_IDE_PROGIF_SEC_NATIVE))
			ata_chans[1].bm = (uint16_t)(bar.base + 8);
		con_printf("ata: IDE controller %s (%04x:%04x), bus master at %04x: primary %s, secondary %s\n", name,
			   devs[i].vendor, devs[i].device, (unsigned)bar.base,
			   ata_chans[0].bm ? "DMA" : "native mode (not served)", ata_chans[1].bm ? "DMA" : "native mode (not served)");
		return;
	}
}

/* Driver probe: the four legacy positions; each hard disk registered as hdN with its position ("pm".."ss"). */
static int ata_drv_probe(const struct drv_boot_info *bi)
{
	if (bi->disk_mode == DRV_DISK_BIOS) {
		con_printf("ata: disk=bios: the legacy ATA ports are left to the BIOS\n");
		return 0;
	}
	int allow_dma = bi->disk_mode != DRV_DISK_PIO;
	if (allow_dma)
		ata_find_bm();
	else
		con_printf("ata: disk=pio: programmed I/O only\n");
	int n = ata_probe(ata_disks, ATA_MAX_DISKS, bi->tsc_per_ms, allow_dma), added = 0;
	con_printf("ata: %d hard disk(s)\n", n);
	for (int i = 0; i < n; i++) {
		int k = disk_add(&ata_disks[i].blk, "ata", ata_disks[i].label, ata_disks[i].model, 0);
		if (k < 0)
			continue;
		struct disk *d = disk_get(k);     /* identity for the hand-over table */
		k_strlcpy(d->serial, ata_disks[i].serial, sizeof(d->serial));
		d->io_base = ata_disks[i].io_base;
		d->channel = ata_disks[i].channel;
		d->device = ata_disks[i].slave;
		added++;
	}
	return added;
}

static const struct driver ata_driver = { "ata", ata_drv_probe, 0 };
DRIVER(10, ata_driver);
