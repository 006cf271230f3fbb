/* dma.c: scatter/gather tables for the DMA drivers (IDE bus-master PRDs, AHCI PRDs) from one contiguous physical buffer; pure. */
#include "dma.h"

const char *dma_strerror(int st)
{
	switch (st) {
	case DMA_E_ALIGN: return "buffer address or length is odd (DMA needs word alignment)";
	case DMA_E_EMPTY: return "empty transfer";
	case DMA_E_WRAP: return "buffer runs past 4 GiB";
	case DMA_E_FULL: return "buffer needs more descriptors than the table holds";
	default: return st >= 0 ? "ok" : "unknown DMA error";
	}
}

/* Checks shared by both formats; 0 or a dma_status. */
static int dma_check(uint32_t addr, uint32_t len)
{
	if (!len)
		return DMA_E_EMPTY;
	if ((addr | len) & 1)
		return DMA_E_ALIGN;
	if ((uint64_t)addr + len > 0x100000000ull)
		return DMA_E_WRAP;
	return 0;
}

int dma_bm_prd_build(struct dma_bm_prd *t, int max, uint32_t addr, uint32_t len)
{
	int st = dma_check(addr, len), n = 0;
	if (st)
		return st;
	uint64_t a = addr, end = (uint64_t)addr + len;
	while (a < end) {
		uint64_t next = (a | (DMA_BM_MAX_SEG - 1)) + 1;   /* the next 64 KiB boundary */
		uint32_t seg = (uint32_t)((next < end ? next : end) - a);
		if (n >= max)
			return DMA_E_FULL;
		t[n].addr = (uint32_t)a;
		t[n].bytes = (uint16_t)(seg == DMA_BM_MAX_SEG ? 0 : seg);
		t[n].flags = 0;
		n++;
		a += seg;
	}
	t[n - 1].flags = DMA_BM_EOT;
	return n;
}

int dma_ahci_prd_build(struct dma_ahci_prd *t, int max, uint32_t addr, uint32_t len)
{
	int st = dma_check(addr, len), n = 0;
	if (st)
		return st;
	uint64_t a = addr, end = (uint64_t)addr + len;
	while (a < end) {
		uint32_t seg = end - a > DMA_AHCI_MAX_SEG ? DMA_AHCI_MAX_SEG : (uint32_t)(end - a);
		if (n >= max)
			return DMA_E_FULL;
		t[n].dba = (uint32_t)a;
		t[n].dbau = 0;
		t[n].rsv = 0;
		t[n].dbc = seg - 1;
		n++;
		a += seg;
	}
	return n;
}

uint32_t dma_bm_capacity(int max)
{
	/* A buffer of k * 64 KiB may touch k + 1 windows: max entries always take (max - 1) * 64 KiB. */
	return max > 1 ? (uint32_t)(max - 1) * DMA_BM_MAX_SEG : 0;
}
