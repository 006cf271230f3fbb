/* dma.h: pure helpers for DMA drivers: splitting a physical buffer into scatter/gather segments and writing IDE bus-master and AHCI PRD tables (no I/O, no globals; hosted in tests/unit/test_dma.c). */
#ifndef DMA_H
#define DMA_H

#include <stdint.h>

/* Status codes of the PRD builders (negative; >= 0 is an entry count). */
enum dma_status {
	DMA_E_ALIGN = -1,    /* address or length odd (both formats need word alignment) */
	DMA_E_EMPTY = -2,    /* zero length */
	DMA_E_WRAP = -3,     /* the buffer runs past 4 GiB */
	DMA_E_FULL = -4,     /* more segments needed than the table holds */
};

/* IDE bus-master physical region descriptor (SFF-8038i): 64 KiB at most, never across a 64 KiB boundary. */
struct dma_bm_prd {
	uint32_t addr;       /* physical, bit 0 clear */
	uint16_t bytes;      /* 0 means 65536 */
	uint16_t flags;      /* DMA_BM_EOT on the last entry */
} __attribute__((packed));
_Static_assert(sizeof(struct dma_bm_prd) == 8, "bus-master PRD is 8 bytes");
#define DMA_BM_EOT 0x8000u
#define DMA_BM_MAX_SEG 0x10000u

/* AHCI physical region descriptor (AHCI 1.3 4.2.3.3): 4 MiB at most, even byte count. */
struct dma_ahci_prd {
	uint32_t dba;        /* data base address, bit 0 clear */
	uint32_t dbau;       /* upper 32 bits (0: we address below 4 GiB) */
	uint32_t rsv;
	uint32_t dbc;        /* bits 21:0 byte count - 1 (bit 0 set: even count); bit 31 interrupt on completion */
} __attribute__((packed));
_Static_assert(sizeof(struct dma_ahci_prd) == 16, "AHCI PRD is 16 bytes");
#define DMA_AHCI_MAX_SEG 0x400000u

/* Human-readable text of a dma_status. */
const char *dma_strerror(int st);
/*
 * Fill t (room for max entries) for the physical buffer [addr, addr+len):
 * segments of at most 64 KiB that never cross a 64 KiB boundary, EOT on
 * the last. Returns the entry count, or a dma_status (t partly written).
 */
int dma_bm_prd_build(struct dma_bm_prd *t, int max, uint32_t addr, uint32_t len);
/* Fill t (room for max entries) for [addr, addr+len) in pieces of at most 4 MiB, no interrupt bits. Returns the entry count or a dma_status. */
int dma_ahci_prd_build(struct dma_ahci_prd *t, int max, uint32_t addr, uint32_t len);
/* Most bytes a bus-master table of max entries is sure to take whatever the buffer's address (a multiple of 512). */
uint32_t dma_bm_capacity(int max);

#endif
