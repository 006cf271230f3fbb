/* nvme.c: native NVMe driver (PCI class 01/08/02): admin queue + one I/O queue pair, polled; IDENTIFY, READ, WRITE, FLUSH over PRP lists; a controller the BIOS runs is left to it unless disk=native. */
#include <stdint.h>
#include "driver.h"
#include "pci.h"       /* pci_find_class, pci_bar, pci_enable */
#include "../block/disk.h"
#include "../kernel/console.h"
#include "../kernel/io.h"
#include "../kernel/phys.h"
#include "../kernel/string.h"

/* Controller registers (NVMe 1.4 3.1), offsets from BAR0. */
#define NV_CAP 0x00           /* 64-bit */
#define NV_VS 0x08
#define NV_CC 0x14
#define NV_CSTS 0x1C
#define NV_AQA 0x24
#define NV_ASQ 0x28           /* 64-bit */
#define NV_ACQ 0x30           /* 64-bit */
#define NV_DOORBELL 0x1000

#define CC_EN 0x1u
#define CC_IOSQES (6u << 16)  /* 64-byte submission entries */
#define CC_IOCQES (4u << 20)  /* 16-byte completion entries */
#define CSTS_RDY 0x1u
#define CSTS_CFS 0x2u

/* Admin and I/O opcodes. */
#define NV_ADM_CREATE_SQ 0x01
#define NV_ADM_CREATE_CQ 0x05
#define NV_ADM_IDENTIFY 0x06
#define NV_IO_FLUSH 0x00
#define NV_IO_WRITE 0x01
#define NV_IO_READ 0x02
#define NV_CNS_NAMESPACE 0
#define NV_CNS_CONTROLLER 1

#define NV_PAGE 4096u
#define NV_QD 16u              /* entries per queue (admin and I/O) */
#define NV_IOQ 1u              /* our I/O queue pair's id */
#define NV_MAX_COUNT 256u      /* sectors per command: 128 KiB = at most 33 pages, PRP1 + a 32-entry list */
#define NV_BOUNCE_SECTORS (NV_PAGE / 512u)

#define NV_TMO_CMD_MS 10000u
#define NV_TMO_MIN_READY_MS 500u
#define NV_TSC_FALLBACK_PER_MS 3000000u

/* A submission queue entry (NVMe 1.4 4.2). */
struct nvme_sqe {
	uint32_t cdw0;            /* opcode 7:0, command id 31:16 */
	uint32_t nsid;
	uint32_t rsv[2];
	uint64_t mptr;
	uint64_t prp1, prp2;
	uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_sqe) == 64, "submission entry is 64 bytes");

/* A completion queue entry (NVMe 1.4 4.6). */
struct nvme_cqe {
	uint32_t dw0, rsv;
	uint16_t sqhd, sqid;
	uint16_t cid;
	uint16_t status;          /* bit 0 phase, 15:1 status field */
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_cqe) == 16, "completion entry is 16 bytes");

/* The DMA memory of the one controller served: every queue on its own page, the PRP list, the bounce page. */
struct nvme_dma {
	struct nvme_sqe asq[NV_PAGE / sizeof(struct nvme_sqe)];
	struct nvme_cqe acq[NV_PAGE / sizeof(struct nvme_cqe)];
	struct nvme_sqe iosq[NV_PAGE / sizeof(struct nvme_sqe)];
	struct nvme_cqe iocq[NV_PAGE / sizeof(struct nvme_cqe)];
	uint64_t prp[NV_PAGE / 8];
	uint8_t bounce[NV_PAGE];  /* IDENTIFY data, and buffers that are not dword aligned */
} __attribute__((aligned(4096)));

/* One queue pair's host-side state. */
struct nvme_q {
	struct nvme_sqe *sq;
	volatile struct nvme_cqe *cq;
	uint16_t qid, tail, head, phase, cid;
};

struct nvme_ctrl {
	struct blk_dev blk;
	uint32_t bar;             /* physical address of the registers */
	uint32_t dstrd;           /* doorbell stride in bytes */
	uint32_t tmo_ms;          /* CAP.TO: enable/disable timeout */
	uint32_t nsid;
	uint16_t mqes;            /* CAP.MQES + 1 */
	struct nvme_q adm, io;
	char pci[8];
	char where[16];           /* "n1" */
	char label[16];           /* "nvme n1" */
	char model[41];
	char serial[21];
	int ready;                /* queues set up (after probe; again after relocation) */
};

static struct nvme_dma nv_mem;
static struct nvme_ctrl nv;
static uint32_t nv_tsc_per_ms = NV_TSC_FALLBACK_PER_MS;

static uint32_t nv_rd(uint32_t off) { return *(volatile uint32_t *)phys_ptr(nv.bar + off); }
static void nv_wr(uint32_t off, uint32_t v) { *(volatile uint32_t *)phys_ptr(nv.bar + off) = v; }

/* Wait until (CSTS & mask) == want for at most ms; 0 or -1. */
static int nv_wait_csts(uint32_t mask, uint32_t want, uint32_t ms)
{
	uint64_t deadline = rdtsc() + (uint64_t)ms * nv_tsc_per_ms;
	for (;;) {
		uint32_t v = nv_rd(NV_CSTS);
		if (v != 0xFFFFFFFFu && (v & mask) == want)
			return 0;
		if (rdtsc() > deadline)
			return -1;
		cpu_relax();
	}
}

/*
 * Submit one command on q and poll its completion for at most ms.
 * Returns 0, or the NVMe status field (nonzero), or -1 on timeout (logged
 * by the caller). The command id is the queue's running counter.
 */
static int nv_submit(struct nvme_q *q, struct nvme_sqe *cmd, uint32_t ms)
{
	cmd->cdw0 = (cmd->cdw0 & 0xFFFFu) | (uint32_t)q->cid << 16;
	q->sq[q->tail] = *cmd;
	q->tail = (uint16_t)((q->tail + 1) % NV_QD);
	__asm__ volatile("" : : : "memory");
	nv_wr(NV_DOORBELL + (2u * q->qid) * nv.dstrd, q->tail);
	uint64_t deadline = rdtsc() + (uint64_t)ms * nv_tsc_per_ms;
	for (;;) {
		volatile struct nvme_cqe *e = &q->cq[q->head];
		if ((e->status & 1) == q->phase) {
			uint16_t st = (uint16_t)(e->status >> 1), cid = e->cid;
			q->head = (uint16_t)((q->head + 1) % NV_QD);
			if (!q->head)
				q->phase ^= 1;
			nv_wr(NV_DOORBELL + (2u * q->qid + 1) * nv.dstrd, q->head);
			if (cid != q->cid)
				continue;         /* a stale completion: not ours */
			q->cid++;
			return st;
		}
		if (rdtsc() > deadline || (nv_rd(NV_CSTS) & CSTS_CFS)) {
			q->cid++;
			return -1;
		}
		cpu_relax();
	}
}

/* Point a queue's host state at its memory, empty. */
static void nv_q_init(struct nvme_q *q, uint16_t qid, struct nvme_sqe *sq, struct nvme_cqe *cq)
{
	q->sq = sq;
	q->cq = cq;
	q->qid = qid;
	q->tail = q->head = 0;
	q->phase = 1;
	memset(sq, 0, NV_PAGE);
	memset(cq, 0, NV_PAGE);
}

/* One admin command with prp1 as its data page; 0 or nonzero (logged as what). */
static int nv_admin(uint8_t opc, uint32_t nsid, uint32_t prp1, uint32_t cdw10, uint32_t cdw11, const char *what)
{
	struct nvme_sqe c;
	memset(&c, 0, sizeof(c));
	c.cdw0 = opc;
	c.nsid = nsid;
	c.prp1 = prp1;
	c.cdw10 = cdw10;
	c.cdw11 = cdw11;
	int st = nv_submit(&nv.adm, &c, NV_TMO_CMD_MS);
	if (st)
		con_printf("nvme %s: %s: %s (status %04x, CSTS %08x)\n", nv.pci, what,
			   st < 0 ? "timeout" : "error", st < 0 ? 0 : st, nv_rd(NV_CSTS));
	return st;
}

/*
 * Reset the controller and set it up from nothing at the current
 * addresses of nv_mem: admin queues, enable, I/O completion and submission
 * queue NV_IOQ. Returns 0 or -1 (logged).
 */
static int nv_setup(void)
{
	nv.ready = 0;
	nv_wr(NV_CC, nv_rd(NV_CC) & ~CC_EN);
	if (nv_wait_csts(CSTS_RDY, 0, nv.tmo_ms)) {
		con_printf("nvme %s: does not leave the ready state after CC.EN=0 (CSTS %08x)\n", nv.pci, nv_rd(NV_CSTS));
		return -1;
	}
	nv_q_init(&nv.adm, 0, nv_mem.asq, nv_mem.acq);
	nv_q_init(&nv.io, NV_IOQ, nv_mem.iosq, nv_mem.iocq);
	nv_wr(NV_AQA, (NV_QD - 1) << 16 | (NV_QD - 1));
	nv_wr(NV_ASQ, virt_to_phys(nv_mem.asq));
	nv_wr(NV_ASQ + 4, 0);
	nv_wr(NV_ACQ, virt_to_phys(nv_mem.acq));
	nv_wr(NV_ACQ + 4, 0);
	nv_wr(NV_CC, CC_IOSQES | CC_IOCQES | CC_EN);   /* NVM command set, 4 KiB pages, round robin */
	if (nv_wait_csts(CSTS_RDY | CSTS_CFS, CSTS_RDY, nv.tmo_ms)) {
		con_printf("nvme %s: not ready after CC.EN=1 (CSTS %08x)\n", nv.pci, nv_rd(NV_CSTS));
		return -1;
	}
	/* Physically contiguous queues, no interrupts (we poll). */
	if (nv_admin(NV_ADM_CREATE_CQ, 0, virt_to_phys(nv_mem.iocq), (NV_QD - 1) << 16 | NV_IOQ, 0x1,
		     "CREATE I/O COMPLETION QUEUE"))
		return -1;
	if (nv_admin(NV_ADM_CREATE_SQ, 0, virt_to_phys(nv_mem.iosq), (NV_QD - 1) << 16 | NV_IOQ, NV_IOQ << 16 | 0x1,
		     "CREATE I/O SUBMISSION QUEUE"))
		return -1;
	nv.ready = 1;
	return 0;
}

/* The PRP entries of [phys, phys+bytes) (dword aligned, at most NV_MAX_COUNT sectors): prp1, and prp2 = second page or list. */
static void nv_prps(uint32_t phys, uint32_t bytes, uint64_t *prp1, uint64_t *prp2)
{
	uint32_t first = NV_PAGE - (phys & (NV_PAGE - 1));
	*prp1 = phys;
	*prp2 = 0;
	if (bytes <= first)
		return;
	uint32_t page = (phys & ~(NV_PAGE - 1)) + NV_PAGE, left = bytes - first;
	if (left <= NV_PAGE) {
		*prp2 = page;
		return;
	}
	int n = 0;
	for (; left; n++) {
		nv_mem.prp[n] = page;
		page += NV_PAGE;
		left = left > NV_PAGE ? left - NV_PAGE : 0;
	}
	*prp2 = virt_to_phys(nv_mem.prp);
}

/* Name of an I/O opcode, for messages. */
static const char *nv_op_name(uint8_t opc)
{
	return opc == NV_IO_READ ? "READ" : opc == NV_IO_WRITE ? "WRITE" : "FLUSH";
}

/* One I/O command (count sectors at lba, data at phys); 0 or BLK_E_IO (logged; a timeout resets and re-creates the queues). */
static int nv_io(uint8_t opc, uint64_t lba, uint32_t count, uint32_t phys)
{
	struct nvme_sqe c;
	if (!nv.ready && nv_setup())
		return BLK_E_IO;
	memset(&c, 0, sizeof(c));
	c.cdw0 = opc;
	c.nsid = nv.nsid;
	if (opc != NV_IO_FLUSH) {
		uint64_t p1, p2;
		nv_prps(phys, count * 512u, &p1, &p2);
		c.prp1 = p1;
		c.prp2 = p2;
		c.cdw10 = (uint32_t)lba;
		c.cdw11 = (uint32_t)(lba >> 32);
		c.cdw12 = count - 1;
	}
	int st = nv_submit(&nv.io, &c, NV_TMO_CMD_MS);
	if (!st)
		return BLK_OK;
	con_printf("%s: %s lba %llu count %u: %s (status %04x, CSTS %08x)%s\n", nv.label, nv_op_name(opc),
		   (unsigned long long)lba, count, st < 0 ? "timeout" : "error", st < 0 ? 0 : st, nv_rd(NV_CSTS),
		   st < 0 ? "; controller reset" : "");
	if (st < 0 && nv_setup() == 0)
		con_printf("%s: controller reset and queues re-created\n", nv.label);
	return BLK_E_IO;
}

/* blk_dev read/write: straight into buf when it is dword aligned, else through the bounce page. */
static int nv_rw(struct blk_dev *bd, uint64_t lba, uint32_t count, void *buf, int write)
{
	(void)bd;
	uint8_t opc = write ? NV_IO_WRITE : NV_IO_READ;
	uint32_t phys = virt_to_phys(buf);
	if (!(phys & 3))
		return nv_io(opc, lba, count, phys);
	uint8_t *b = buf;
	while (count) {
		uint32_t n = count < NV_BOUNCE_SECTORS ? count : NV_BOUNCE_SECTORS;
		if (write)
			memcpy(nv_mem.bounce, b, n * 512u);
		int rc = nv_io(opc, lba, n, virt_to_phys(nv_mem.bounce));
		if (rc)
			return rc;
		if (!write)
			memcpy(b, nv_mem.bounce, n * 512u);
		b += n * 512u;
		lba += n;
		count -= n;
	}
	return BLK_OK;
}

static int nv_read(struct blk_dev *bd, uint64_t lba, uint32_t count, void *buf)
{
	return nv_rw(bd, lba, count, buf, 0);
}

static int nv_write(struct blk_dev *bd, uint64_t lba, uint32_t count, const void *buf)
{
	return nv_rw(bd, lba, count, (void *)(uintptr_t)buf, 1);
}

/* blk_dev flush: the NVM FLUSH command (the volatile write cache to media). */
static int nv_flush(struct blk_dev *bd)
{
	(void)bd;
	return nv_io(NV_IO_FLUSH, 0, 0, 0);
}

/* Copy an ASCII field of n bytes, blanks trimmed. */
static void nv_text(char *dst, const uint8_t *src, int n)
{
	int len = n, start = 0;
	while (len > 0 && (src[len - 1] == ' ' || !src[len - 1]))
		len--;
	while (start < len && src[start] == ' ')
		start++;
	memcpy(dst, src + start, (size_t)(len - start));
	dst[len - start] = 0;
}

/* Identify the controller and its first active namespace; registers the disk. Returns 1 if registered. */
static int nv_identify(void)
{
	uint8_t *id = nv_mem.bounce;
	if (nv_admin(NV_ADM_IDENTIFY, 0, virt_to_phys(id), NV_CNS_CONTROLLER, 0, "IDENTIFY controller"))
		return 0;
	nv_text(nv.serial, id + 4, 20);
	nv_text(nv.model, id + 24, 40);
	uint32_t nn = (uint32_t)id[516] | (uint32_t)id[517] << 8 | (uint32_t)id[518] << 16 | (uint32_t)id[519] << 24;
	uint8_t mdts = id[77];
	uint32_t max_count = NV_MAX_COUNT;
	/* MDTS: 2^mdts minimum pages (CAP.MPSMIN = 4 KiB assumed, as CC.MPS = 0); 0 = no limit. */
	if (mdts && mdts < 6 && (NV_PAGE << mdts) / 512u < max_count)
		max_count = (NV_PAGE << mdts) / 512u;
	for (uint32_t ns = 1; ns <= nn && ns <= 16; ns++) {
		if (nv_admin(NV_ADM_IDENTIFY, ns, virt_to_phys(id), NV_CNS_NAMESPACE, 0, "IDENTIFY namespace"))
			continue;
		uint64_t nsze = 0;
		for (int i = 0; i < 8; i++)
			nsze |= (uint64_t)id[i] << (8 * i);
		if (!nsze)
			continue;         /* inactive namespace */
		uint8_t lbads = id[128 + 4 * (id[26] & 0xF) + 2];
		if (lbads != 9) {
			con_printf("nvme %s: namespace %u has %u-byte blocks: not served (512 only)\n", nv.pci, ns, 1u << lbads);
			continue;
		}
		nv.nsid = ns;
		k_snprintf(nv.where, sizeof(nv.where), "n%u", ns);
		k_snprintf(nv.label, sizeof(nv.label), "nvme n%u", ns);
		nv.blk.name = nv.label;
		nv.blk.sectors = nv.blk.max_sectors = nsze;
		nv.blk.size_bytes = nsze * 512u;
		nv.blk.max_count = max_count;
		nv.blk.read = nv_read;
		nv.blk.write = nv_write;
		nv.blk.flush = nv_flush;
		nv.blk.priv = &nv;
		if (disk_add(&nv.blk, "nvme", nv.where, nv.model, 0) < 0) {
			con_printf("%s: disk registry full, skipped\n", nv.label);
			return 0;
		}
		con_printf("%s: %s (serial %s), %llu sectors (%llu MiB), up to %u sectors per command\n", nv.label,
			   nv.model, nv.serial, (unsigned long long)nsze, (unsigned long long)(nsze >> 11), max_count);
		return 1;
	}
	con_printf("nvme %s: no active namespace with 512-byte blocks\n", nv.pci);
	return 0;
}

/* Driver probe: the first NVMe controller, if the BIOS does not run it (or disk=native says take it). */
static int nv_probe(const struct drv_boot_info *bi)
{
	struct pci_dev devs[4];
	struct pci_bar bar;
	if (bi->disk_mode == DRV_DISK_BIOS || bi->disk_mode == DRV_DISK_PIO)
		return 0;
	if (bi->tsc_per_ms)
		nv_tsc_per_ms = bi->tsc_per_ms;
	if (!pci_present())
		return 0;
	int n = pci_find_class(0x01, 0x08, 0x02, devs, 4);
	if (!n)
		return 0;
	pci_name(&devs[0], nv.pci);
	if (n > 1)
		con_printf("nvme: %d controllers; %s served natively, the others through the BIOS\n", n, nv.pci);
	if (pci_bar(&devs[0], 0, &bar) || bar.io || !bar.base || bar.base >> 32 || bar.size < 0x2000) {
		con_printf("nvme %s: BAR0 unassigned or above 4 GiB: left to the BIOS\n", nv.pci);
		return 0;
	}
	nv.bar = (uint32_t)bar.base;
	if ((nv_rd(NV_CC) & CC_EN) && bi->disk_mode != DRV_DISK_NATIVE) {
		/* Its INT 13h uses the admin and I/O queues it made: taking them would break the BIOS's disk. */
		con_printf("nvme %s: enabled by the BIOS: left to the BIOS backend (disk=native takes it over)\n", nv.pci);
		return 0;
	}
	uint32_t cap_lo = nv_rd(NV_CAP), cap_hi = nv_rd(NV_CAP + 4), vs = nv_rd(NV_VS);
	nv.mqes = (uint16_t)((cap_lo & 0xFFFF) + 1);
	nv.tmo_ms = ((cap_lo >> 24) & 0xFF) * 500u;
	if (nv.tmo_ms < NV_TMO_MIN_READY_MS)
		nv.tmo_ms = NV_TMO_MIN_READY_MS;
	nv.dstrd = 4u << (cap_hi & 0xF);
	if (nv.mqes < NV_QD || ((cap_hi >> 16) & 0xF) != 0 || !((cap_hi >> 5) & 1)) {
		con_printf("nvme %s: CAP %08x%08x: needs %u-entry queues, 4 KiB pages and the NVM command set: left to the BIOS\n",
			   nv.pci, cap_hi, cap_lo, NV_QD);
		return 0;
	}
	pci_enable(&devs[0], PCI_CMD_MEM | PCI_CMD_MASTER);
	con_printf("nvme %s: %04x:%04x NVMe %u.%u at %08x%s\n", nv.pci, devs[0].vendor, devs[0].device, vs >> 16,
		   (vs >> 8) & 0xFF, nv.bar,
		   (nv_rd(NV_CC) & CC_EN) ? ", taken over from the BIOS (disk=native): its own INT 13h loses this disk" : "");
	if (nv_setup())
		return 0;
	return nv_identify();
}

/* After the kernel moved: the queues moved with it, so the controller is reset and set up again at the new addresses. */
static void nv_relocated(void)
{
	if (nv.ready && nv_setup())
		con_printf("%s: set-up after the move failed; requests will retry it\n", nv.label);
}

static const struct driver nv_driver = { "nvme", nv_probe, nv_relocated };
DRIVER(30, nv_driver);
