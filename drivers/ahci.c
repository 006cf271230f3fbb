/* ahci.c: native AHCI driver (PCI class 01/06/01): per port IDENTIFY, READ/WRITE DMA EXT, FLUSH CACHE EXT, polled with bounded waits, the port borrowed from the BIOS per request and handed back as found. */
#include <stdint.h>
#include "driver.h"
#include "pci.h"       /* pci_find_class, pci_bar, pci_enable */
#include "dma.h"       /* dma_ahci_prd_build */
#include "ata_id.h"    /* ata_id_parse */
#include "../block/disk.h"
#include "../kernel/console.h"
#include "../kernel/io.h"
#include "../kernel/phys.h"
#include "../kernel/string.h"

/* HBA (generic host control) registers, offsets from ABAR (AHCI 1.3 3.1). */
#define HBA_CAP 0x00
#define HBA_GHC 0x04
#define HBA_IS 0x08
#define HBA_PI 0x0C
#define HBA_VS 0x10
#define HBA_CAP2 0x24
#define HBA_BOHC 0x28
#define HBA_PORT0 0x100
#define HBA_PORT_STRIDE 0x80

#define CAP_NP_MASK 0x1Fu
#define CAP_S64A (1u << 31)
#define GHC_AE (1u << 31)
#define CAP2_BOH 0x1u
#define BOHC_BOS 0x1u
#define BOHC_OOS 0x2u
#define BOHC_BB 0x10u

/* Port registers, offsets from the port's base (AHCI 1.3 3.3). */
#define PX_CLB 0x00
#define PX_CLBU 0x04
#define PX_FB 0x08
#define PX_FBU 0x0C
#define PX_IS 0x10
#define PX_IE 0x14
#define PX_CMD 0x18
#define PX_TFD 0x20
#define PX_SIG 0x24
#define PX_SSTS 0x28
#define PX_SCTL 0x2C
#define PX_SERR 0x30
#define PX_SACT 0x34
#define PX_CI 0x38

#define CMD_ST 0x1u
#define CMD_FRE 0x10u
#define CMD_FR (1u << 14)
#define CMD_CR (1u << 15)

#define IS_TFES (1u << 30)
#define IS_HBFS (1u << 29)
#define IS_HBDS (1u << 28)
#define IS_IFS (1u << 27)
#define IS_INFS (1u << 26)
#define IS_OFS (1u << 24)
#define IS_ERRORS (IS_TFES | IS_HBFS | IS_HBDS | IS_IFS | IS_INFS | IS_OFS)

#define TFD_ERR 0x01u
#define TFD_DRQ 0x08u
#define TFD_BSY 0x80u

#define SSTS_DET_MASK 0xFu
#define SSTS_DET_PRESENT 0x3u     /* device present, phy communication established */
#define SCTL_DET_MASK 0xFu
#define SCTL_DET_COMRESET 0x1u

#define SIG_ATA 0x00000101u
#define SIG_ATAPI 0xEB140101u
#define SIG_SEMB 0xC33C0101u
#define SIG_PM 0x96690101u

/* Command header (AHCI 1.3 4.2.2) and table layout. */
#define CH_CFL_H2D 5u             /* a register H2D FIS is 5 dwords */
#define CH_WRITE (1u << 6)
#define CH_PRDTL_SHIFT 16
#define FIS_TYPE_H2D 0x27
#define FIS_H2D_CMD 0x80          /* C bit: the FIS carries a command */
#define FIS_DEV_LBA 0x40

#define ATA_CMD_READ_DMA_EXT 0x25
#define ATA_CMD_WRITE_DMA_EXT 0x35
#define ATA_CMD_IDENTIFY 0xEC

#define AHCI_MAX_CTRL 4
#define AHCI_MAX_DISKS 8
#define AHCI_PRDS 8               /* per command table: 8 x 4 MiB covers 65536 sectors */
#define AHCI_MAX_COUNT 65536u     /* READ/WRITE DMA EXT count register (0 = 65536) */
#define AHCI_BOUNCE 4096u         /* for buffers at an odd address (AHCI needs word alignment) */

/* Timeouts in milliseconds. */
#define AHCI_TMO_STOP_MS 500u     /* PxCMD.CR / FR to clear (AHCI 1.3 10.1.2) */
#define AHCI_TMO_CMD_MS 10000u
#define AHCI_TMO_FLUSH_MS 30000u
#define AHCI_TMO_LINK_MS 1000u    /* DET to come back after a COMRESET */
#define AHCI_TMO_BSY_MS 10000u    /* the device to clear BSY after a COMRESET */
#define AHCI_TMO_BOH_MS 2000u     /* BIOS/OS handoff, when the BIOS says it is busy */
#define AHCI_TSC_FALLBACK_PER_MS 3000000u

/* A register H2D FIS (SATA 1.0 10.3.4). */
struct ahci_fis_h2d {
	uint8_t type, flags, command, feature0;
	uint8_t lba0, lba1, lba2, device;
	uint8_t lba3, lba4, lba5, feature1;
	uint8_t count0, count1, icc, control;
	uint8_t rsv[4];
} __attribute__((packed));
_Static_assert(sizeof(struct ahci_fis_h2d) == 20, "H2D FIS is 5 dwords");

/* One command header of the command list. */
struct ahci_cmd_hdr {
	uint32_t flags;           /* CFL, W, PRDTL */
	uint32_t prdbc;           /* bytes transferred (the HBA writes it) */
	uint32_t ctba, ctbau;
	uint32_t rsv[4];
} __attribute__((packed));
_Static_assert(sizeof(struct ahci_cmd_hdr) == 32, "command header is 32 bytes");

/* A command table: the FIS, the (unused) ATAPI command, then the PRDs. */
struct ahci_cmd_tbl {
	uint8_t cfis[64];
	uint8_t acmd[16];
	uint8_t rsv[48];
	struct dma_ahci_prd prd[AHCI_PRDS];
} __attribute__((packed));
_Static_assert(sizeof(struct ahci_cmd_tbl) == 128 + 16 * AHCI_PRDS, "command table layout");

/*
 * The DMA memory of one port, in the kernel image (so in the resident
 * region once the kernel moved, hidden from the guest): a 32-slot command
 * list (1 KiB aligned), the received-FIS area (256 aligned), one command
 * table (128 aligned).
 */
struct ahci_dma {
	struct ahci_cmd_hdr list[32];
	uint8_t rfis[256];
	struct ahci_cmd_tbl tbl;
} __attribute__((aligned(1024)));

/* One controller. */
struct ahci_ctrl {
	uint32_t abar;            /* physical address of the HBA registers */
	char pci[8];
};

/* One SATA disk on a port. */
struct ahci_port {
	struct blk_dev blk;
	struct ahci_ctrl *ctrl;
	uint32_t base;            /* physical address of the port's registers */
	uint8_t num;              /* port number on the HBA */
	uint8_t flush_cmd;        /* FLUSH CACHE (EXT), 0: none */
	uint32_t clb_phys, fb_phys, tbl_phys;   /* where our DMA memory is now (re-set by ahci_relocated) */
	uint32_t errors;
	char where[16];           /* "p0", or "c1p2" on a second controller */
	char label[16];           /* "ahci p0", for messages */
	char model[41];
	/* The BIOS's port state, kept while we borrow the port (ahci_borrow .. ahci_return). */
	uint32_t s_clb, s_clbu, s_fb, s_fbu, s_ie, s_cmd;
};

static struct ahci_dma ahci_mem[AHCI_MAX_DISKS];
static uint8_t ahci_bounce[AHCI_BOUNCE] __attribute__((aligned(16)));
static struct ahci_ctrl ahci_ctrls[AHCI_MAX_CTRL];
static struct ahci_port ahci_ports[AHCI_MAX_DISKS];
static int ahci_nports;
static uint32_t ahci_tsc_per_ms = AHCI_TSC_FALLBACK_PER_MS;

/* 32-bit MMIO read of the register at physical address a. */
static uint32_t mmio_rd(uint32_t a)
{
	return *(volatile uint32_t *)phys_ptr(a);
}

/* 32-bit MMIO write of v to the register at physical address a. */
static void mmio_wr(uint32_t a, uint32_t v)
{
	*(volatile uint32_t *)phys_ptr(a) = v;
}

/* Port register off of p. */
static uint32_t px_rd(const struct ahci_port *p, uint32_t off) { return mmio_rd(p->base + off); }
static void px_wr(const struct ahci_port *p, uint32_t off, uint32_t v) { mmio_wr(p->base + off, v); }

/* Wait until (read(a) & mask) == want for at most ms; 0, or -1 on timeout. *last gets the last value read. */
static int ahci_wait(uint32_t a, uint32_t mask, uint32_t want, uint32_t ms, uint32_t *last)
{
	uint64_t deadline = rdtsc() + (uint64_t)ms * ahci_tsc_per_ms;
	for (;;) {
		uint32_t v = mmio_rd(a);
		if (last)
			*last = v;
		if ((v & mask) == want)
			return 0;
		if (rdtsc() > deadline)
			return -1;
		cpu_relax();
	}
}

/* Spin for us microseconds. */
static void ahci_udelay(uint32_t us)
{
	uint64_t end = rdtsc() + (uint64_t)us * (ahci_tsc_per_ms / 1000u + 1);
	while (rdtsc() < end)
		cpu_relax();
}

/* Stop the port's command engine and FIS receive (ST, FRE cleared, CR, FR seen clear); 0 or -1 (logged). */
static int ahci_stop(struct ahci_port *p)
{
	uint32_t cmd = px_rd(p, PX_CMD), v;
	if (cmd & CMD_ST)
		px_wr(p, PX_CMD, cmd & ~CMD_ST);
	if (ahci_wait(p->base + PX_CMD, CMD_CR, 0, AHCI_TMO_STOP_MS, &v)) {
		con_printf("%s: command engine does not stop (PxCMD %08x)\n", p->label, v);
		return -1;
	}
	cmd = px_rd(p, PX_CMD);
	if (cmd & CMD_FRE)
		px_wr(p, PX_CMD, cmd & ~CMD_FRE);
	if (ahci_wait(p->base + PX_CMD, CMD_FR, 0, AHCI_TMO_STOP_MS, &v)) {
		con_printf("%s: FIS receive does not stop (PxCMD %08x)\n", p->label, v);
		return -1;
	}
	return 0;
}

/* COMRESET the link and wait for the device to come back and clear BSY; 0 or -1 (logged). */
static int ahci_comreset(struct ahci_port *p)
{
	uint32_t v, sctl = px_rd(p, PX_SCTL) & ~SCTL_DET_MASK;
	px_wr(p, PX_SCTL, sctl | SCTL_DET_COMRESET);
	ahci_udelay(1000);                     /* COMRESET must be held at least 1 ms */
	px_wr(p, PX_SCTL, sctl);
	if (ahci_wait(p->base + PX_SSTS, SSTS_DET_MASK, SSTS_DET_PRESENT, AHCI_TMO_LINK_MS, &v)) {
		con_printf("%s: no link after COMRESET (PxSSTS %08x)\n", p->label, v);
		return -1;
	}
	px_wr(p, PX_SERR, 0xFFFFFFFFu);
	if (ahci_wait(p->base + PX_TFD, TFD_BSY | TFD_DRQ, 0, AHCI_TMO_BSY_MS, &v)) {
		con_printf("%s: device busy after COMRESET (PxTFD %08x)\n", p->label, v);
		return -1;
	}
	return 0;
}

/*
 * Take the port from the BIOS for one request: remember its command list,
 * FIS area, interrupt enables and running state, stop it, point it at our
 * DMA memory and start it with interrupts off. Returns 0 or -1 (logged;
 * the BIOS's state is put back by ahci_return either way).
 */
static int ahci_borrow(struct ahci_port *p)
{
	p->s_clb = px_rd(p, PX_CLB);
	p->s_clbu = px_rd(p, PX_CLBU);
	p->s_fb = px_rd(p, PX_FB);
	p->s_fbu = px_rd(p, PX_FBU);
	p->s_ie = px_rd(p, PX_IE);
	p->s_cmd = px_rd(p, PX_CMD);
	px_wr(p, PX_IE, 0);
	if (ahci_stop(p))
		return -1;
	px_wr(p, PX_CLB, p->clb_phys);
	px_wr(p, PX_CLBU, 0);
	px_wr(p, PX_FB, p->fb_phys);
	px_wr(p, PX_FBU, 0);
	px_wr(p, PX_SERR, 0xFFFFFFFFu);
	px_wr(p, PX_IS, 0xFFFFFFFFu);
	px_wr(p, PX_CMD, px_rd(p, PX_CMD) | CMD_FRE);
	uint32_t v;
	if (ahci_wait(p->base + PX_TFD, TFD_BSY | TFD_DRQ, 0, AHCI_TMO_CMD_MS, &v)) {
		con_printf("%s: device busy before the command (PxTFD %08x): COMRESET\n", p->label, v);
		if (ahci_comreset(p))
			return -1;
	}
	px_wr(p, PX_CMD, px_rd(p, PX_CMD) | CMD_ST);
	return 0;
}

/* Hand the port back as ahci_borrow found it (command list, FIS area, IE, FRE/ST); interrupt status we caused is cleared. */
static void ahci_return(struct ahci_port *p)
{
	ahci_stop(p);
	px_wr(p, PX_CLB, p->s_clb);
	px_wr(p, PX_CLBU, p->s_clbu);
	px_wr(p, PX_FB, p->s_fb);
	px_wr(p, PX_FBU, p->s_fbu);
	px_wr(p, PX_SERR, 0xFFFFFFFFu);
	px_wr(p, PX_IS, 0xFFFFFFFFu);
	mmio_wr(p->ctrl->abar + HBA_IS, 1u << p->num);
	px_wr(p, PX_IE, p->s_ie);
	if (p->s_cmd & CMD_FRE)
		px_wr(p, PX_CMD, px_rd(p, PX_CMD) | CMD_FRE);
	if ((p->s_cmd & CMD_ST) && (p->s_cmd & CMD_FRE))
		px_wr(p, PX_CMD, px_rd(p, PX_CMD) | CMD_ST);
}

/* Name of a command opcode, for messages. */
static const char *ahci_cmd_name(uint8_t cmd)
{
	switch (cmd) {
	case ATA_CMD_READ_DMA_EXT: return "READ DMA EXT";
	case ATA_CMD_WRITE_DMA_EXT: return "WRITE DMA EXT";
	case ATA_ID_CMD_FLUSH_CACHE: return "FLUSH CACHE";
	case ATA_ID_CMD_FLUSH_CACHE_EXT: return "FLUSH CACHE EXT";
	case ATA_CMD_IDENTIFY: return "IDENTIFY DEVICE";
	default: return "command";
	}
}

/*
 * Run one non-queued ATA command in slot 0 of a borrowed port: data
 * [buf_phys, +bytes) (bytes 0: no data), write = host to device. Waits at
 * most ms. Returns 0 or BLK_E_IO (logged; the port recovered by stopping
 * it and, if the device stays busy, a COMRESET).
 */
static int ahci_exec(struct ahci_port *p, uint8_t cmd, uint64_t lba, uint32_t count,
		     uint32_t buf_phys, uint32_t bytes, int write, uint32_t ms)
{
	struct ahci_dma *m = &ahci_mem[p - ahci_ports];
	struct ahci_fis_h2d *f = (struct ahci_fis_h2d *)m->tbl.cfis;
	int nprd = 0;

	if (bytes) {
		nprd = dma_ahci_prd_build(m->tbl.prd, AHCI_PRDS, buf_phys, bytes);
		if (nprd < 0) {
			con_printf("%s: %s lba %llu count %u: %s\n", p->label, ahci_cmd_name(cmd),
				   (unsigned long long)lba, count, dma_strerror(nprd));
			return BLK_E_IO;
		}
	}
	memset(f, 0, sizeof(m->tbl.cfis));
	f->type = FIS_TYPE_H2D;
	f->flags = FIS_H2D_CMD;
	f->command = cmd;
	f->device = cmd == ATA_CMD_IDENTIFY ? 0 : FIS_DEV_LBA;
	f->lba0 = (uint8_t)lba;
	f->lba1 = (uint8_t)(lba >> 8);
	f->lba2 = (uint8_t)(lba >> 16);
	f->lba3 = (uint8_t)(lba >> 24);
	f->lba4 = (uint8_t)(lba >> 32);
	f->lba5 = (uint8_t)(lba >> 40);
	f->count0 = (uint8_t)count;            /* 65536 -> 0 as the spec wants */
	f->count1 = (uint8_t)(count >> 8);
	memset(&m->list[0], 0, sizeof(m->list[0]));
	m->list[0].flags = CH_CFL_H2D | (write ? CH_WRITE : 0) | (uint32_t)nprd << CH_PRDTL_SHIFT;
	m->list[0].ctba = p->tbl_phys;
	__asm__ volatile("" : : : "memory");   /* the tables are in memory before the HBA is told */

	px_wr(p, PX_IS, 0xFFFFFFFFu);
	px_wr(p, PX_CI, 1);
	uint64_t deadline = rdtsc() + (uint64_t)ms * ahci_tsc_per_ms;
	uint32_t is = 0, ci = 1;
	const char *why = 0;
	for (;;) {
		is = px_rd(p, PX_IS);
		ci = px_rd(p, PX_CI);
		if (is & IS_ERRORS) {
			why = is & IS_TFES ? "device error" : "host bus / interface error";
			break;
		}
		if (!(ci & 1))
			break;
		if (rdtsc() > deadline) {
			why = "timeout";
			break;
		}
		cpu_relax();
	}
	uint32_t tfd = px_rd(p, PX_TFD);
	if (!why && (tfd & (TFD_ERR | TFD_BSY | TFD_DRQ)))
		why = "device error";
	if (!why && bytes && m->list[0].prdbc != bytes && !write)
		why = "short transfer";
	if (!why)
		return 0;
	p->errors++;
	con_printf("%s: %s lba %llu count %u: %s (PxIS %08x PxTFD %08x PxSERR %08x PxCI %08x); port reset\n",
		   p->label, ahci_cmd_name(cmd), (unsigned long long)lba, count, why, is, tfd,
		   px_rd(p, PX_SERR), ci);
	/* Non-queued error recovery (AHCI 1.3 6.2.2.1): stop, clear errors, COMRESET if the device is stuck. */
	int stuck = ahci_stop(p) != 0 || (px_rd(p, PX_TFD) & (TFD_BSY | TFD_DRQ));
	px_wr(p, PX_SERR, 0xFFFFFFFFu);
	px_wr(p, PX_IS, 0xFFFFFFFFu);
	if (stuck && ahci_comreset(p) == 0)
		con_printf("%s: port recovered by COMRESET\n", p->label);
	return BLK_E_IO;
}

/* Borrow the port, run one command, hand the port back; 0 or BLK_E_IO. */
static int ahci_cmd(struct ahci_port *p, uint8_t cmd, uint64_t lba, uint32_t count,
		    uint32_t buf_phys, uint32_t bytes, int write, uint32_t ms)
{
	int rc = BLK_E_IO;
	if (ahci_borrow(p) == 0)
		rc = ahci_exec(p, cmd, lba, count, buf_phys, bytes, write, ms);
	else
		p->errors++;
	ahci_return(p);
	return rc;
}

/* One transfer (blk_read/blk_write split it by max_count): straight into buf, or through the bounce buffer when buf is at an odd address. */
static int ahci_rw(struct blk_dev *bd, uint64_t lba, uint32_t count, void *buf, int write)
{
	struct ahci_port *p = bd->priv;
	uint8_t cmd = write ? ATA_CMD_WRITE_DMA_EXT : ATA_CMD_READ_DMA_EXT;
	uint32_t phys = virt_to_phys(buf);

	if (!(phys & 1))
		return ahci_cmd(p, cmd, lba, count, phys, count * BLK_SECTOR, write, AHCI_TMO_CMD_MS);
	uint8_t *b = buf;
	while (count) {
		uint32_t n = count < AHCI_BOUNCE / BLK_SECTOR ? count : AHCI_BOUNCE / BLK_SECTOR;
		if (write)
			memcpy(ahci_bounce, b, n * BLK_SECTOR);
		int rc = ahci_cmd(p, cmd, lba, n, virt_to_phys(ahci_bounce), n * BLK_SECTOR, write, AHCI_TMO_CMD_MS);
		if (rc)
			return rc;
		if (!write)
			memcpy(b, ahci_bounce, n * BLK_SECTOR);
		b += n * BLK_SECTOR;
		lba += n;
		count -= n;
	}
	return 0;
}

/* blk_dev read. */
static int ahci_read(struct blk_dev *bd, uint64_t lba, uint32_t count, void *buf)
{
	return ahci_rw(bd, lba, count, buf, 0);
}

/* blk_dev write. */
static int ahci_write(struct blk_dev *bd, uint64_t lba, uint32_t count, const void *buf)
{
	return ahci_rw(bd, lba, count, (void *)(uintptr_t)buf, 1);
}

/* blk_dev flush: FLUSH CACHE (EXT); a disk without it is write-through. */
static int ahci_flush(struct blk_dev *bd)
{
	struct ahci_port *p = bd->priv;
	if (!p->flush_cmd)
		return BLK_OK;
	return ahci_cmd(p, p->flush_cmd, 0, 0, 0, 0, 0, AHCI_TMO_FLUSH_MS);
}

/* Physical addresses of port i's DMA memory (the kernel image moved, so they moved). */
static void ahci_point(int i)
{
	ahci_ports[i].clb_phys = virt_to_phys(ahci_mem[i].list);
	ahci_ports[i].fb_phys = virt_to_phys(ahci_mem[i].rfis);
	ahci_ports[i].tbl_phys = virt_to_phys(&ahci_mem[i].tbl);
}

/* BIOS/OS handoff (AHCI 1.3 10.6) when the HBA supports it: request ownership, wait for the BIOS to let go. */
static void ahci_handoff(struct ahci_ctrl *c)
{
	if (!(mmio_rd(c->abar + HBA_CAP2) & CAP2_BOH))
		return;
	uint32_t v = mmio_rd(c->abar + HBA_BOHC);
	if (!(v & BOHC_BOS) && (v & BOHC_OOS))
		return;
	mmio_wr(c->abar + HBA_BOHC, v | BOHC_OOS);
	if (ahci_wait(c->abar + HBA_BOHC, BOHC_BOS, 0, 25, &v) == 0 && !(v & BOHC_BB)) {
		con_printf("ahci %s: BIOS/OS handoff done\n", c->pci);
		return;
	}
	if (ahci_wait(c->abar + HBA_BOHC, BOHC_BOS | BOHC_BB, 0, AHCI_TMO_BOH_MS, &v))
		con_printf("ahci %s: BIOS/OS handoff: the BIOS still owns the HBA after %u ms (BOHC %08x); going on\n",
			   c->pci, AHCI_TMO_BOH_MS, v);
	else
		con_printf("ahci %s: BIOS/OS handoff done (BIOS was busy)\n", c->pci);
}

/* Look at port n of controller c: a SATA disk is IDENTIFYed and registered; others are logged. Returns 1 if registered. */
static int ahci_probe_port(struct ahci_ctrl *c, int ci, unsigned n)
{
	static uint16_t id[ATA_ID_WORDS];
	char where[16];
	if (ci)
		k_snprintf(where, sizeof(where), "c%dp%u", ci, n);
	else
		k_snprintf(where, sizeof(where), "p%u", n);
	uint32_t base = c->abar + HBA_PORT0 + HBA_PORT_STRIDE * n;
	uint32_t ssts = mmio_rd(base + PX_SSTS), sig = mmio_rd(base + PX_SIG);
	if ((ssts & SSTS_DET_MASK) != SSTS_DET_PRESENT) {
		if (ssts & SSTS_DET_MASK)
			con_printf("ahci %s: link not established (PxSSTS %08x), skipped\n", where, ssts);
		return 0;
	}
	if (sig == SIG_ATAPI) {
		con_printf("ahci %s: ATAPI device ignored\n", where);
		return 0;
	}
	if (sig == SIG_PM || sig == SIG_SEMB) {
		con_printf("ahci %s: %s ignored\n", where, sig == SIG_PM ? "port multiplier" : "enclosure bridge");
		return 0;
	}
	if (sig != SIG_ATA)
		con_printf("ahci %s: unknown signature %08x, trying IDENTIFY\n", where, sig);
	if (ahci_nports >= AHCI_MAX_DISKS) {
		con_printf("ahci %s: disk table full (%d), skipped\n", where, AHCI_MAX_DISKS);
		return 0;
	}
	int i = ahci_nports;
	struct ahci_port *p = &ahci_ports[i];
	memset(p, 0, sizeof(*p));
	p->ctrl = c;
	p->base = base;
	p->num = (uint8_t)n;
	k_strlcpy(p->where, where, sizeof(p->where));
	k_snprintf(p->label, sizeof(p->label), "ahci %s", where);
	ahci_point(i);
	memset(id, 0, sizeof(id));
	if (ahci_cmd(p, ATA_CMD_IDENTIFY, 0, 0, virt_to_phys(id), sizeof(id), 0, AHCI_TMO_CMD_MS)) {
		con_printf("%s: IDENTIFY DEVICE failed, skipped\n", p->label);
		return 0;
	}
	struct ata_id info;
	int st = ata_id_parse(id, &info);
	k_strlcpy(p->model, info.model, sizeof(p->model));
	if (st) {
		con_printf("%s: %s: %s, skipped\n", p->label, info.model, ata_id_strerror(st));
		return 0;
	}
	if (!info.lba48) {
		/* READ/WRITE DMA EXT are LBA48 commands; every SATA disk has them. */
		con_printf("%s: %s has no LBA48 command set, skipped\n", p->label, info.model);
		return 0;
	}
	p->flush_cmd = info.flush_cmd;
	p->blk.name = p->label;
	p->blk.sectors = p->blk.max_sectors = info.sectors;
	p->blk.size_bytes = info.sectors * BLK_SECTOR;
	p->blk.max_count = AHCI_MAX_COUNT;
	_Static_assert((uint64_t)AHCI_PRDS * DMA_AHCI_MAX_SEG >= (uint64_t)AHCI_MAX_COUNT * BLK_SECTOR,
		       "the PRD table covers the largest command");
	p->blk.read = ahci_read;
	p->blk.write = ahci_write;
	p->blk.flush = ahci_flush;
	p->blk.priv = p;
	if (disk_add(&p->blk, "ahci", p->where, p->model, 0) < 0) {
		con_printf("%s: disk registry full, skipped\n", p->label);
		return 0;
	}
	ahci_nports++;
	con_printf("%s: %s (serial %s), %llu sectors (%llu MiB), %s, up to %u sectors per command\n",
		   p->label, info.model, info.serial, (unsigned long long)info.sectors,
		   (unsigned long long)(info.sectors >> 11),
		   info.flush_cmd == ATA_ID_CMD_FLUSH_CACHE_EXT ? "FLUSH CACHE EXT" : info.flush_cmd ? "FLUSH CACHE" : "no flush (write-through)",
		   p->blk.max_count);
	return 1;
}

/* Driver probe: every AHCI controller on PCI, every implemented port. */
static int ahci_probe(const struct drv_boot_info *bi)
{
	struct pci_dev devs[AHCI_MAX_CTRL];
	if (bi->disk_mode == DRV_DISK_BIOS) {
		con_printf("ahci: disk=bios: AHCI controllers are left to the BIOS\n");
		return 0;
	}
	if (bi->disk_mode == DRV_DISK_PIO) {
		con_printf("ahci: disk=pio: AHCI is DMA only; AHCI disks are not served\n");
		return 0;
	}
	if (bi->tsc_per_ms)
		ahci_tsc_per_ms = bi->tsc_per_ms;
	if (!pci_present()) {
		con_printf("ahci: no PCI configuration mechanism 1\n");
		return 0;
	}
	int nfound = pci_find_class(0x01, 0x06, 0x01, devs, AHCI_MAX_CTRL), added = 0;
	if (!nfound)
		return 0;
	if (nfound > AHCI_MAX_CTRL)
		con_printf("ahci: %d controllers, serving the first %d\n", nfound, AHCI_MAX_CTRL);
	for (int ci = 0; ci < nfound && ci < AHCI_MAX_CTRL; ci++) {
		struct ahci_ctrl *c = &ahci_ctrls[ci];
		struct pci_bar bar;
		pci_name(&devs[ci], c->pci);
		if (pci_bar(&devs[ci], 5, &bar) || bar.io || !bar.base || bar.base >> 32) {
			con_printf("ahci %s: ABAR (BAR5) unassigned or above 4 GiB, skipped\n", c->pci);
			continue;
		}
		c->abar = (uint32_t)bar.base;
		pci_enable(&devs[ci], PCI_CMD_MEM | PCI_CMD_MASTER);
		ahci_handoff(c);
		uint32_t ghc = mmio_rd(c->abar + HBA_GHC);
		if (!(ghc & GHC_AE)) {
			/* No HBA reset: the BIOS may be using it; AHCI mode is all we need. */
			mmio_wr(c->abar + HBA_GHC, ghc | GHC_AE);
			con_printf("ahci %s: AHCI mode was off; switched on (no HBA reset)\n", c->pci);
		}
		uint32_t cap = mmio_rd(c->abar + HBA_CAP), pi = mmio_rd(c->abar + HBA_PI);
		uint32_t vs = mmio_rd(c->abar + HBA_VS);
		con_printf("ahci %s: %04x:%04x AHCI %x.%x at %08x, %u ports (implemented %08x)\n", c->pci,
			   devs[ci].vendor, devs[ci].device, vs >> 16, (vs >> 8) & 0xFF, c->abar,
			   (cap & CAP_NP_MASK) + 1, pi);
		for (unsigned n = 0; n < 32; n++)
			if (pi & (1u << n))
				added += ahci_probe_port(c, ci, n);
	}
	con_printf("ahci: %d disk(s)\n", added);
	return added;
}

/* After the kernel moved: our DMA memory moved with it; the ports hold the BIOS's pointers between requests, so only our own record changes. */
static void ahci_relocated(void)
{
	for (int i = 0; i < ahci_nports; i++)
		ahci_point(i);
}

static const struct driver ahci_driver = { "ahci", ahci_probe, ahci_relocated };
DRIVER(20, ahci_driver);
