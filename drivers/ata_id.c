/* ata_id.c: IDENTIFY DEVICE parsing (model, serial, size, LBA48, DMA, flush) shared by the ATA and AHCI drivers; pure. */
#include "ata_id.h"

/* IDENTIFY DEVICE word indices and bits (ATA8-ACS 7.16). */
#define ID_CONFIG 0
#define ID_CONFIG_ATAPI 0x8000
#define ID_SERIAL 10           /* 10 words */
#define ID_MODEL 27            /* 20 words */
#define ID_MAX_MULTI 47
#define ID_CAPS 49
#define ID_CAPS_DMA 0x0100
#define ID_CAPS_LBA 0x0200
#define ID_VALID 53
#define ID_VALID_88 0x0004
#define ID_LBA28 60            /* 2 words */
#define ID_CMDSET2 83
#define ID_CMDSET_VALID_MASK 0xC000
#define ID_CMDSET_VALID 0x4000
#define ID_CMDSET2_LBA48 0x0400
#define ID_CMDSET2_FLUSH 0x1000
#define ID_CMDSET2_FLUSH_EXT 0x2000
#define ID_UDMA 88
#define ID_LBA48 100           /* 4 words */
#define ID_SECTOR_SIZE 106
#define ID_SECTOR_LONG 0x1000  /* words 117-118 give the logical sector size */
#define ID_SECTOR_WORDS 117    /* 2 words: logical sector size in words */

void ata_id_string(char *dst, const uint16_t *id, int first, int words)
{
	int len = 2 * words, start = 0, i;
	for (i = 0; i < words; i++) {
		dst[2 * i] = (char)(id[first + i] >> 8);
		dst[2 * i + 1] = (char)id[first + i];
	}
	while (len > 0 && (dst[len - 1] == ' ' || dst[len - 1] == '\0'))
		len--;
	while (start < len && dst[start] == ' ')
		start++;
	for (i = 0; i < len - start; i++)
		dst[i] = dst[start + i];
	dst[len - start] = '\0';
}

int ata_id_parse(const uint16_t *id, struct ata_id *out)
{
	ata_id_string(out->model, id, ID_MODEL, 20);
	ata_id_string(out->serial, id, ID_SERIAL, 10);
	out->sectors = 0;
	out->lba48 = out->dma = out->udma_modes = out->flush_cmd = 0;
	out->max_multi = id[ID_MAX_MULTI] & 0xFF;
	if (id[ID_CONFIG] & ID_CONFIG_ATAPI)
		return ATA_ID_E_PACKET;
	if (!(id[ID_CAPS] & ID_CAPS_LBA))
		return ATA_ID_E_NOLBA;
	uint16_t cmdset2 = (id[ID_CMDSET2] & ID_CMDSET_VALID_MASK) == ID_CMDSET_VALID ? id[ID_CMDSET2] : 0;
	out->sectors = (uint32_t)id[ID_LBA28] | (uint32_t)id[ID_LBA28 + 1] << 16;
	if (cmdset2 & ID_CMDSET2_LBA48) {
		uint64_t n48 = (uint64_t)id[ID_LBA48] | (uint64_t)id[ID_LBA48 + 1] << 16 |
			       (uint64_t)id[ID_LBA48 + 2] << 32 | (uint64_t)id[ID_LBA48 + 3] << 48;
		out->lba48 = 1;
		if (n48)
			out->sectors = n48;
	}
	out->dma = (id[ID_CAPS] & ID_CAPS_DMA) != 0;
	if (id[ID_VALID] & ID_VALID_88)
		out->udma_modes = (uint8_t)id[ID_UDMA];
	out->flush_cmd = out->lba48 && (cmdset2 & ID_CMDSET2_FLUSH_EXT) ? ATA_ID_CMD_FLUSH_CACHE_EXT
		       : (cmdset2 & ID_CMDSET2_FLUSH) ? ATA_ID_CMD_FLUSH_CACHE : 0;
	if ((id[ID_SECTOR_SIZE] & ID_CMDSET_VALID_MASK) == ID_CMDSET_VALID && (id[ID_SECTOR_SIZE] & ID_SECTOR_LONG)) {
		uint32_t words = (uint32_t)id[ID_SECTOR_WORDS] | (uint32_t)id[ID_SECTOR_WORDS + 1] << 16;
		if (words != 256)
			return ATA_ID_E_SECTOR;
	}
	if (!out->sectors)
		return ATA_ID_E_EMPTY;
	return ATA_ID_OK;
}

const char *ata_id_strerror(int st)
{
	switch (st) {
	case ATA_ID_OK: return "ok";
	case ATA_ID_E_PACKET: return "a packet (ATAPI) device, not a hard disk";
	case ATA_ID_E_NOLBA: return "no LBA support (CHS only)";
	case ATA_ID_E_EMPTY: return "reports 0 sectors";
	case ATA_ID_E_SECTOR: return "logical sectors are not 512 bytes";
	default: return "unknown IDENTIFY problem";
	}
}
