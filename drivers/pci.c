/* pci.c: PCI configuration mechanism 1 (ports CF8h/CFCh): enumeration by class, BAR decoding and sizing, command-register enables. */
#include "pci.h"
#include "../kernel/io.h"

#define PCI_CFG_ADDR 0xCF8
#define PCI_CFG_DATA 0xCFC
#define PCI_CFG_ENABLE 0x80000000u
#define PCI_NO_DEVICE 0xFFFF

#define PCI_BAR_IO 0x1u
#define PCI_BAR_MEM_TYPE 0x6u
#define PCI_BAR_MEM_64 0x4u
#define PCI_BAR_PREFETCH 0x8u
#define PCI_BAR_IO_MASK 0xFFFFFFFCu
#define PCI_BAR_MEM_MASK 0xFFFFFFF0u

static int pci_state;   /* 0 unknown, 1 present, -1 absent */

/* The CF8h address of d's register off (dword-aligned). */
static uint32_t pci_addr(const struct pci_dev *d, uint8_t off)
{
	return PCI_CFG_ENABLE | (uint32_t)d->bus << 16 | (uint32_t)d->dev << 11 | (uint32_t)d->fn << 8 | (off & 0xFCu);
}

int pci_present(void)
{
	if (!pci_state) {
		/* Mechanism 1: the address register holds what is written to it (bit 31 set). */
		uint32_t old = inl(PCI_CFG_ADDR);
		outl(PCI_CFG_ADDR, PCI_CFG_ENABLE);
		pci_state = inl(PCI_CFG_ADDR) == PCI_CFG_ENABLE ? 1 : -1;
		outl(PCI_CFG_ADDR, old);
	}
	return pci_state > 0;
}

uint32_t pci_read32(const struct pci_dev *d, uint8_t off)
{
	outl(PCI_CFG_ADDR, pci_addr(d, off));
	return inl(PCI_CFG_DATA);
}

uint16_t pci_read16(const struct pci_dev *d, uint8_t off)
{
	return (uint16_t)(pci_read32(d, off) >> ((off & 2) * 8));
}

uint8_t pci_read8(const struct pci_dev *d, uint8_t off)
{
	return (uint8_t)(pci_read32(d, off) >> ((off & 3) * 8));
}

void pci_write32(const struct pci_dev *d, uint8_t off, uint32_t v)
{
	outl(PCI_CFG_ADDR, pci_addr(d, off));
	outl(PCI_CFG_DATA, v);
}

void pci_write16(const struct pci_dev *d, uint8_t off, uint16_t v)
{
	outl(PCI_CFG_ADDR, pci_addr(d, off));
	outw((uint16_t)(PCI_CFG_DATA + (off & 2)), v);
}

/* Fill the identity fields of d (bus/dev/fn set); returns 0, or -1 when nothing answers there. */
static int pci_fill(struct pci_dev *d)
{
	uint32_t id = pci_read32(d, PCI_VENDOR);
	if ((id & 0xFFFF) == PCI_NO_DEVICE || (id & 0xFFFF) == 0)
		return -1;
	uint32_t cls = pci_read32(d, 0x08);
	d->vendor = (uint16_t)id;
	d->device = (uint16_t)(id >> 16);
	d->progif = (uint8_t)(cls >> 8);
	d->subclass = (uint8_t)(cls >> 16);
	d->cls = (uint8_t)(cls >> 24);
	d->header = pci_read8(d, PCI_HEADER) & PCI_HEADER_TYPE_MASK;
	return 0;
}

int pci_find_class(uint8_t cls, uint8_t sub, int progif, struct pci_dev *out, int max)
{
	int n = 0;
	if (!pci_present())
		return 0;
	for (unsigned bus = 0; bus < 256; bus++)
		for (unsigned dev = 0; dev < 32; dev++) {
			struct pci_dev d = { (uint8_t)bus, (uint8_t)dev, 0, 0, 0, 0, 0, 0, 0 };
			if (pci_fill(&d))
				continue;
			unsigned nfn = pci_read8(&d, PCI_HEADER) & PCI_HEADER_MULTI ? 8 : 1;
			for (unsigned fn = 0; fn < nfn; fn++) {
				d.fn = (uint8_t)fn;
				if (fn && pci_fill(&d))
					continue;
				if (d.cls != cls || d.subclass != sub || (progif != PCI_ANY && d.progif != progif))
					continue;
				if (n < max)
					out[n] = d;
				n++;
			}
		}
	return n;
}

int pci_bar(const struct pci_dev *d, int i, struct pci_bar *out)
{
	if (i < 0 || i >= PCI_MAX_BARS || d->header != 0)
		return -1;
	uint8_t off = (uint8_t)(PCI_BAR0 + 4 * i);
	uint16_t cmd = pci_read16(d, PCI_COMMAND);
	uint32_t lo = pci_read32(d, off), hi = 0, mlo, mhi = 0xFFFFFFFFu;
	out->io = lo & PCI_BAR_IO;
	out->is64 = !out->io && (lo & PCI_BAR_MEM_TYPE) == PCI_BAR_MEM_64;
	out->prefetch = !out->io && (lo & PCI_BAR_PREFETCH);
	if (out->is64 && i == PCI_MAX_BARS - 1)
		return -1;
	/* Size it: all ones in, the mask out, with decoding off so no cycle hits the probe value. */
	pci_write16(d, PCI_COMMAND, (uint16_t)(cmd & ~(PCI_CMD_IO | PCI_CMD_MEM)));
	pci_write32(d, off, 0xFFFFFFFFu);
	mlo = pci_read32(d, off);
	pci_write32(d, off, lo);
	if (out->is64) {
		hi = pci_read32(d, (uint8_t)(off + 4));
		pci_write32(d, (uint8_t)(off + 4), 0xFFFFFFFFu);
		mhi = pci_read32(d, (uint8_t)(off + 4));
		pci_write32(d, (uint8_t)(off + 4), hi);
	}
	pci_write16(d, PCI_COMMAND, cmd);
	if (out->io) {
		uint32_t m = mlo & PCI_BAR_IO_MASK & 0xFFFFu;
		out->base = lo & PCI_BAR_IO_MASK;
		out->size = m ? (~m & 0xFFFFu) + 1 : 0;
	} else {
		uint64_t m = ((uint64_t)mhi << 32 | (mlo & PCI_BAR_MEM_MASK));
		if (!out->is64)
			m |= 0xFFFFFFFF00000000ull;
		out->base = (uint64_t)hi << 32 | (lo & PCI_BAR_MEM_MASK);
		out->size = (mlo & PCI_BAR_MEM_MASK) ? ~m + 1 : 0;
	}
	if (!out->size)
		out->base = 0;
	return 0;
}

uint16_t pci_enable(const struct pci_dev *d, uint16_t bits)
{
	uint16_t cmd = pci_read16(d, PCI_COMMAND);
	if ((cmd & bits) != bits)
		pci_write16(d, PCI_COMMAND, (uint16_t)(cmd | bits));
	return cmd;
}

void pci_name(const struct pci_dev *d, char *buf)
{
	static const char hex[] = "0123456789abcdef";
	buf[0] = hex[d->bus >> 4];
	buf[1] = hex[d->bus & 15];
	buf[2] = ':';
	buf[3] = hex[d->dev >> 4];
	buf[4] = hex[d->dev & 15];
	buf[5] = '.';
	buf[6] = hex[d->fn & 7];
	buf[7] = 0;
}
