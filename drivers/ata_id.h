/* ata_id.h: IDENTIFY DEVICE parsing shared by the ATA and AHCI drivers (pure: no I/O, no globals; hosted in tests/unit/test_dma.c). */
#ifndef ATA_ID_H
#define ATA_ID_H

#include <stdint.h>

#define ATA_ID_WORDS 256

/* Why a device is not a usable disk (0: it is). */
enum ata_id_status {
	ATA_ID_OK = 0,
	ATA_ID_E_PACKET = 1,   /* an ATAPI (packet) device */
	ATA_ID_E_NOLBA = 2,    /* CHS only */
	ATA_ID_E_EMPTY = 3,    /* reports 0 sectors */
	ATA_ID_E_SECTOR = 4,   /* logical sectors other than 512 bytes */
};

/* Command opcodes the parse chooses between. */
#define ATA_ID_CMD_FLUSH_CACHE 0xE7
#define ATA_ID_CMD_FLUSH_CACHE_EXT 0xEA

/* What vhdboot needs of an IDENTIFY DEVICE answer. */
struct ata_id {
	char model[41];
	char serial[21];
	uint64_t sectors;      /* LBA48 count when the disk has LBA48, else the LBA28 count */
	uint8_t lba48;
	uint8_t dma;           /* word 49 bit 8: DMA supported */
	uint8_t udma_modes;    /* word 88 bits 7:0 when word 53 says it is valid */
	uint8_t flush_cmd;     /* FLUSH CACHE (EXT) opcode, 0: the disk has none (write-through) */
	uint16_t max_multi;    /* word 47 bits 7:0: largest READ/WRITE MULTIPLE block */
};

/* Parse id (256 words, host order) into out; returns an ata_id_status (out's strings are filled either way). */
int ata_id_parse(const uint16_t *id, struct ata_id *out);
/* Text of an ata_id_status, for "... skipped" messages. */
const char *ata_id_strerror(int st);
/* Copy an IDENTIFY string (two characters a word, high byte first) of words words at id[first] into dst (2*words+1 bytes), blanks trimmed. */
void ata_id_string(char *dst, const uint16_t *id, int first, int words);

#endif
