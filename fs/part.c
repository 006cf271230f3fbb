/* part.c: enumerate MBR (primary + extended chain) and GPT partitions of a blk_dev; the partition blk_dev view. */
#include <stddef.h>
#include "part.h"
#include "part_format.h"
#include "fs_util.h"

static const struct errtab_msg part_msgs[PART_E_COUNT] = {
	[PART_OK] = { "ok", "success" },
	[PART_E_END] = { "end", "no more partitions" },
	[PART_E_IO] = { "io", "the disk could not be read" },
	[PART_E_BAD_ARG] = { "bad-arg", "invalid argument" },
	[PART_E_NO_SIGNATURE] = { "no-signature", "sector 0 has no 0x55AA signature: no partition table" },
	[PART_E_BOOT_FLAG] = { "boot-flag", "an MBR boot flag is neither 0x00 nor 0x80: not a partition table (a bare file system?)" },
	[PART_E_BEYOND_DISK] = { "beyond-disk", "partition extends beyond the end of the disk (truncated image?)" },
	[PART_E_EXT_RANGE] = { "ext-range", "an extended boot record lies outside the extended partition or the disk" },
	[PART_E_EXT_SIGNATURE] = { "ext-signature", "an extended boot record has no 0x55AA signature" },
	[PART_E_EXT_LOOP] = { "ext-loop", "the extended partition chain loops back to an earlier record" },
	[PART_E_EXT_TOO_MANY] = { "ext-too-many", "too many logical partitions (chain longer than 128)" },
	[PART_E_GPT_SIGNATURE] = { "gpt-signature", "protective MBR but no \"EFI PART\" GPT header" },
	[PART_E_GPT_REVISION] = { "gpt-revision", "unsupported GPT header revision (expected 1.x)" },
	[PART_E_GPT_HEADER_SIZE] = { "gpt-header-size", "GPT header size outside 92..512 bytes" },
	[PART_E_GPT_HEADER_CRC] = { "gpt-header-crc", "GPT header CRC32 mismatch" },
	[PART_E_GPT_MY_LBA] = { "gpt-my-lba", "GPT header's own LBA does not match where it was read" },
	[PART_E_GPT_ENTRY_SIZE] = { "gpt-entry-size", "GPT entry size is not 128, 256 or 512 bytes" },
	[PART_E_GPT_ENTRY_COUNT] = { "gpt-entry-count", "GPT entry count is zero or larger than 4096" },
	[PART_E_GPT_ENTRIES_RANGE] = { "gpt-entries-range", "GPT entry array lies outside the disk or over the header" },
	[PART_E_GPT_ENTRIES_CRC] = { "gpt-entries-crc", "GPT entry array CRC32 mismatch" },
	[PART_E_GPT_BAD_RANGE] = { "gpt-bad-range", "GPT entry ends before it starts" },
	[PART_E_NOT_FOUND] = { "not-found", "no partition with that number" },
};

const char *part_strerror(int err)
{
	return errtab_text(part_msgs, PART_E_COUNT, err, "unknown partition error");
}

const char *part_errname(int err)
{
	return errtab_name(part_msgs, PART_E_COUNT, err, "unknown");
}

/* CRC-32 nibble table (reflected polynomial 0xEDB88320). */
static const uint32_t part_crc_tab[16] = {
	0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
	0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C, 0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
};

uint32_t part_crc32(uint32_t crc, const void *buf, uint32_t len)
{
	const uint8_t *p = buf;
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		crc = (crc >> 4) ^ part_crc_tab[crc & 15];
		crc = (crc >> 4) ^ part_crc_tab[crc & 15];
	}
	return ~crc;
}

void part_guid_str(const uint8_t g[16], char out[37])
{
	static const char hex[] = "0123456789ABCDEF";
	/* Byte order of the text form: the first three fields are little-endian. */
	static const uint8_t order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
	int i, o = 0;
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[g[order[i]] >> 4];
		out[o++] = hex[g[order[i]] & 15];
	}
	out[o] = 0;
}

/* Read one sector into the iterator's cache (no-op if cached). */
static int part_read_buf(struct part_iter *it, uint64_t lba)
{
	if (it->buf_valid && it->buf_lba == lba)
		return PART_OK;
	it->buf_valid = 0;
	if (lba >= it->dev->sectors || blk_read(it->dev, lba, 1, it->buf) != BLK_OK)
		return PART_E_IO;
	it->buf_lba = lba;
	it->buf_valid = 1;
	return PART_OK;
}

/* Validate the GPT header at lba and its entry array; on success load the iterator's GPT fields. */
static int part_gpt_load(struct part_iter *it, uint64_t lba)
{
	struct gpt_header h;
	uint32_t hsize, crc, n, esize, i;
	uint64_t bytes, nsect, disk = it->dev->sectors;
	static const uint8_t zero4[4];
	int rc = part_read_buf(it, lba);
	if (rc)
		return rc;
	FS_MEMCPY(&h, it->buf, sizeof(h));
	if (FS_MEMCMP(h.sig, "EFI PART", 8))
		return PART_E_GPT_SIGNATURE;
	if ((fs_le32(&h.revision) >> 16) != 1)
		return PART_E_GPT_REVISION;
	hsize = fs_le32(&h.header_size);
	if (hsize < sizeof(h) || hsize > BLK_SECTOR)
		return PART_E_GPT_HEADER_SIZE;
	crc = part_crc32(0, it->buf, GPT_HEADER_CRC_OFF);
	crc = part_crc32(crc, zero4, 4);
	crc = part_crc32(crc, it->buf + GPT_HEADER_CRC_OFF + 4, hsize - GPT_HEADER_CRC_OFF - 4);
	if (crc != fs_le32(&h.header_crc))
		return PART_E_GPT_HEADER_CRC;
	if (fs_le64(&h.my_lba) != lba)
		return PART_E_GPT_MY_LBA;
	esize = fs_le32(&h.entry_size);
	if (esize != 128 && esize != 256 && esize != 512)
		return PART_E_GPT_ENTRY_SIZE;
	n = fs_le32(&h.entries);
	if (n == 0 || n > PART_GPT_MAX_ENTRIES)
		return PART_E_GPT_ENTRY_COUNT;
	bytes = (uint64_t)n * esize;
	nsect = (bytes + BLK_SECTOR - 1) >> 9;
	it->gpt_entries_lba = fs_le64(&h.entries_lba);
	if (it->gpt_entries_lba >= disk || nsect > disk - it->gpt_entries_lba ||
	    (lba >= it->gpt_entries_lba && lba < it->gpt_entries_lba + nsect))
		return PART_E_GPT_ENTRIES_RANGE;
	it->gpt_entries = n;
	it->gpt_entry_size = esize;
	it->gpt_first_usable = fs_le64(&h.first_usable);
	it->gpt_last_usable = fs_le64(&h.last_usable);
	FS_MEMCPY(it->disk_guid, h.disk_guid, 16);
	crc = 0;
	for (i = 0; i < nsect; i++) {
		uint32_t len = bytes - ((uint64_t)i << 9) < BLK_SECTOR ? (uint32_t)(bytes - ((uint64_t)i << 9)) : BLK_SECTOR;
		rc = part_read_buf(it, it->gpt_entries_lba + i);
		if (rc)
			return rc;
		crc = part_crc32(crc, it->buf, len);
	}
	if (crc != fs_le32(&h.entries_crc))
		return PART_E_GPT_ENTRIES_CRC;
	return PART_OK;
}

int part_open(struct part_iter *it, struct blk_dev *dev)
{
	const struct mbr *m;
	int i, gpt = 0, rc;
	if (!it || !dev || !dev->read)
		return PART_E_BAD_ARG;
	FS_MEMSET(it, 0, sizeof(*it));
	it->dev = dev;
	it->done = 1;
	if (dev->sectors < 1 || blk_read(dev, 0, 1, it->mbr) != BLK_OK)
		return PART_E_IO;
	m = (const struct mbr *)it->mbr;
	if (m->sig[0] != 0x55 || m->sig[1] != 0xAA)
		return PART_E_NO_SIGNATURE;
	for (i = 0; i < 4; i++) {
		if (m->part[i].boot & 0x7F)
			return PART_E_BOOT_FLAG;
		if (m->part[i].type == MBR_TYPE_GPT)
			gpt = 1;
	}
	if (gpt) {
		/* Hybrid MBRs also carry 0xEE: the GPT wins, as on Linux and UEFI. */
		rc = part_gpt_load(it, 1);
		if (rc && dev->sectors > 2) {
			it->primary_err = rc;
			if (part_gpt_load(it, dev->sectors - 1) == PART_OK) {
				rc = PART_OK;
				it->state |= PART_ST_GPT_BACKUP;
			}
		}
		if (rc)
			return rc;
		it->scheme = PART_SCHEME_GPT;
		it->done = 0;
		return PART_OK;
	}
	it->scheme = PART_SCHEME_MBR;
	it->logical_next = 5;
	for (i = 0; i < 4; i++) {
		const struct mbr_entry *e = &m->part[i];
		if (MBR_TYPE_IS_EXT(e->type) && fs_le32(&e->sectors)) {
			/* Only the first extended partition is followed (DOS and Linux agree on one). */
			it->ext_start = fs_le32(&e->lba_first);
			it->ext_sectors = fs_le32(&e->sectors);
			it->ebr_pending = 1;
			break;
		}
	}
	it->done = 0;
	return PART_OK;
}

/* Fill the common fields of *out and check that it fits on the disk. */
static int part_fill(struct part_iter *it, struct part_info *out, uint32_t index, uint64_t start, uint64_t sectors)
{
	FS_MEMSET(out, 0, sizeof(*out));
	out->index = index;
	out->start = start;
	out->sectors = sectors;
	out->scheme = it->scheme;
	if (start > it->dev->sectors || sectors > it->dev->sectors - start)
		return PART_E_BEYOND_DISK;
	return PART_OK;
}

/* Next logical partition from the extended chain, or PART_E_END. */
static int part_next_logical(struct part_iter *it, struct part_info *out)
{
	while (it->ebr_pending) {
		const struct mbr *m = (const struct mbr *)it->buf;
		uint32_t rel = it->ebr_rel, i, start, n;
		uint64_t lba = it->ext_start + rel;
		int rc;
		for (i = 0; i < it->ebr_count; i++)
			if (it->ebr_seen[i] == rel)
				return PART_E_EXT_LOOP;
		if (it->ebr_count >= PART_MAX_LOGICAL)
			return PART_E_EXT_TOO_MANY;
		it->ebr_seen[it->ebr_count++] = rel;
		if (rel >= it->ext_sectors || lba >= it->dev->sectors)
			return PART_E_EXT_RANGE;
		rc = part_read_buf(it, lba);
		if (rc)
			return rc;
		if (m->sig[0] != 0x55 || m->sig[1] != 0xAA)
			return PART_E_EXT_SIGNATURE;
		/* Entry 1 links to the next EBR, relative to the extended partition's start. */
		it->ebr_pending = MBR_TYPE_IS_EXT(m->part[1].type) && fs_le32(&m->part[1].sectors);
		it->ebr_rel = fs_le32(&m->part[1].lba_first);
		start = fs_le32(&m->part[0].lba_first);
		n = fs_le32(&m->part[0].sectors);
		if (m->part[0].type == 0 || n == 0)
			continue; /* an empty EBR (left by deleting a logical): numbers don't advance */
		rc = part_fill(it, out, it->logical_next++, lba + start, n);
		out->type = m->part[0].type;
		out->flags = PART_F_LOGICAL | (m->part[0].boot == 0x80 ? PART_F_BOOTABLE : 0);
		return rc;
	}
	return PART_E_END;
}

/* Next used GPT entry, or PART_E_END. */
static int part_next_gpt(struct part_iter *it, struct part_info *out)
{
	static const uint8_t zero[16];
	while (it->gpt_next < it->gpt_entries) {
		uint32_t i = it->gpt_next++, off = i * it->gpt_entry_size;
		struct gpt_entry e;
		uint64_t first, last;
		uint16_t name[36];
		int rc = part_read_buf(it, it->gpt_entries_lba + (off >> 9)), j;
		if (rc)
			return rc;
		FS_MEMCPY(&e, it->buf + (off & (BLK_SECTOR - 1)), sizeof(e));
		if (!FS_MEMCMP(e.type_guid, zero, 16))
			continue;
		first = fs_le64(&e.first_lba);
		last = fs_le64(&e.last_lba);
		if (last < first) {
			part_fill(it, out, i + 1, first, 0);
			rc = PART_E_GPT_BAD_RANGE;
		} else {
			rc = part_fill(it, out, i + 1, first, last - first + 1);
		}
		FS_MEMCPY(out->type_guid, e.type_guid, 16);
		FS_MEMCPY(out->uuid, e.uuid, 16);
		out->attrs = fs_le64(&e.attrs);
		for (j = 0; j < 36; j++)
			name[j] = fs_le16(&e.name[j]);
		fs_utf16_to_utf8(name, 36, out->name, sizeof(out->name));
		return rc;
	}
	return PART_E_END;
}

int part_next(struct part_iter *it, struct part_info *out)
{
	int rc = PART_E_END;
	if (!it || !out)
		return PART_E_BAD_ARG;
	if (it->done)
		return PART_E_END;
	if (it->scheme == PART_SCHEME_GPT) {
		rc = part_next_gpt(it, out);
	} else {
		const struct mbr *m = (const struct mbr *)it->mbr;
		while (it->slot < 4) {
			const struct mbr_entry *e = &m->part[it->slot++];
			uint32_t n = fs_le32(&e->sectors);
			if (e->type == 0 || n == 0 || MBR_TYPE_IS_EXT(e->type))
				continue;
			rc = part_fill(it, out, it->slot, fs_le32(&e->lba_first), n);
			out->type = e->type;
			out->flags = e->boot == 0x80 ? PART_F_BOOTABLE : 0;
			return rc;
		}
		rc = part_next_logical(it, out);
	}
	if (rc != PART_OK && rc != PART_E_BEYOND_DISK && rc != PART_E_GPT_BAD_RANGE)
		it->done = 1;
	return rc;
}

int part_find(struct part_iter *it, struct blk_dev *dev, uint32_t index, struct part_info *out)
{
	int rc = part_open(it, dev);
	if (rc)
		return rc;
	for (;;) {
		rc = part_next(it, out);
		if (rc == PART_E_END)
			return PART_E_NOT_FOUND;
		if (out->index == index && (rc == PART_OK || rc == PART_E_BEYOND_DISK || rc == PART_E_GPT_BAD_RANGE))
			return rc;
		if (rc != PART_OK && rc != PART_E_BEYOND_DISK && rc != PART_E_GPT_BAD_RANGE)
			return rc;
	}
}

/* ------------------------------------------------------------------ the partition view */

int part_blk_init(struct blk_window *w, struct blk_dev *disk, const struct part_info *p)
{
	if (!w || !disk || !p)
		return PART_E_BAD_ARG;
	if (!blk_window_init(w, disk, p->start, p->sectors, p->sectors, disk->name))
		return PART_E_BEYOND_DISK;
	return PART_OK;
}
