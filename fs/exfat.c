/* exfat.c: read-only exFAT (Microsoft's exFAT specification): boot region, upcase table, bitmap, entry sets, paths, extents. */
#include <stddef.h>
#include "exfat.h"
#include "fs_util.h"

static const struct errtab_msg exfat_msgs[EXFAT_E_COUNT] = {
	[EXFAT_OK] = { "ok", "success" },
	[EXFAT_E_END] = { "end", "no more directory entries" },
	[EXFAT_E_IO] = { "io", "the device could not be read" },
	[EXFAT_E_BAD_ARG] = { "bad-arg", "invalid argument" },
	[EXFAT_E_NOT_EXFAT] = { "not-exfat", "the boot sector does not name exFAT" },
	[EXFAT_E_SIGNATURE] = { "signature", "the exFAT boot sector lacks the 0x55AA signature" },
	[EXFAT_E_ZERO_FIELD] = { "zero-field", "the exFAT boot sector's must-be-zero bytes are not zero" },
	[EXFAT_E_BOOT_CHECKSUM] = { "boot-checksum", "the exFAT boot region's checksum disagrees (main and backup)" },
	[EXFAT_E_REVISION] = { "revision", "exFAT revision is not 1.x" },
	[EXFAT_E_SECTOR_SIZE] = { "sector-size", "exFAT bytes per sector outside 512..4096" },
	[EXFAT_E_SECTOR_SIZE_UNSUPPORTED] = { "sector-size-unsupported",
					      "exFAT with sectors over 512 bytes is valid but not supported" },
	[EXFAT_E_CLUSTER_SIZE] = { "cluster-size", "exFAT cluster larger than 32 MiB" },
	[EXFAT_E_NUM_FATS] = { "num-fats", "exFAT number of FATs is not 1 or 2" },
	[EXFAT_E_LAYOUT] = { "layout", "exFAT FAT or cluster heap lies outside the volume or overlaps" },
	[EXFAT_E_BEYOND_DEVICE] = { "beyond-device", "the exFAT volume is larger than its partition or disk" },
	[EXFAT_E_ROOT_CLUSTER] = { "root-cluster", "exFAT root directory cluster out of range" },
	[EXFAT_E_NO_BITMAP] = { "no-bitmap", "the exFAT root has no allocation bitmap" },
	[EXFAT_E_BITMAP_SIZE] = { "bitmap-size", "the exFAT allocation bitmap is shorter than the cluster count" },
	[EXFAT_E_NO_UPCASE] = { "no-upcase", "the exFAT root has no upcase table" },
	[EXFAT_E_UPCASE_SIZE] = { "upcase-size", "the exFAT upcase table is empty, odd-sized or over 128 KiB" },
	[EXFAT_E_UPCASE_CHECKSUM] = { "upcase-checksum", "the exFAT upcase table's checksum disagrees" },
	[EXFAT_E_CHAIN_FREE] = { "chain-free", "a cluster chain runs into a free cluster" },
	[EXFAT_E_CHAIN_RANGE] = { "chain-range", "a cluster number is out of range" },
	[EXFAT_E_CHAIN_BAD] = { "chain-bad", "a cluster chain runs into a bad cluster" },
	[EXFAT_E_CHAIN_LOOP] = { "chain-loop", "a cluster chain loops" },
	[EXFAT_E_CHAIN_SHORT] = { "chain-short", "a cluster chain ends before the file's size" },
	[EXFAT_E_NOT_ALLOCATED] = { "not-allocated", "a file's cluster is free in the allocation bitmap" },
	[EXFAT_E_SET_SHORT] = { "set-short", "an exFAT entry set is too short" },
	[EXFAT_E_SET_STREAM] = { "set-stream", "an exFAT file entry lacks its stream extension" },
	[EXFAT_E_SET_NAME] = { "set-name", "an exFAT entry set lacks name entries for its name" },
	[EXFAT_E_SET_CHECKSUM] = { "set-checksum", "an exFAT entry set's checksum disagrees" },
	[EXFAT_E_NAME_HASH] = { "name-hash", "an exFAT name hash disagrees with the name" },
	[EXFAT_E_SIZE] = { "size", "an exFAT file's lengths are inconsistent" },
	[EXFAT_E_VALID_LENGTH] = { "valid-length",
				   "the file's valid data length is below its size (its end was never written): not served" },
	[EXFAT_E_TOO_BIG] = { "too-big", "the file is 2 TiB or larger" },
	[EXFAT_E_DIR_TOO_BIG] = { "dir-too-big", "an exFAT directory over 256 MiB" },
	[EXFAT_E_NOT_FOUND] = { "not-found", "no such file or directory" },
	[EXFAT_E_NOT_DIR] = { "not-dir", "a path component is not a directory" },
	[EXFAT_E_IS_DIR] = { "is-dir", "a directory, not a file" },
	[EXFAT_E_BAD_PATH] = { "bad-path", "invalid path (\"..\", a name over 255 characters, or not UTF-8)" },
};

const char *exfat_strerror(int err)
{
	return errtab_text(exfat_msgs, EXFAT_E_COUNT, err, "unknown exFAT error");
}

const char *exfat_errname(int err)
{
	return errtab_name(exfat_msgs, EXFAT_E_COUNT, err, "unknown");
}

/* Entry types (in-use bit 0x80 set). */
#define EXFAT_T_BITMAP 0x81
#define EXFAT_T_UPCASE 0x82
#define EXFAT_T_LABEL 0x83
#define EXFAT_T_FILE 0x85
#define EXFAT_T_STREAM 0xC0
#define EXFAT_T_NAME 0xC1
#define EXFAT_ATTR_DIR 0x10
#define EXFAT_SF_NOFATCHAIN 0x02

/* The boot-region and entry-set checksums: rotate right by one, add the byte. */
static uint32_t exfat_sum32(uint32_t s, uint8_t b)
{
	return ((s & 1) ? 0x80000000u : 0) + (s >> 1) + b;
}

static uint16_t exfat_sum16(uint16_t s, uint8_t b)
{
	return (uint16_t)(((s & 1) ? 0x8000u : 0) + (s >> 1) + b);
}

int exfat_probe(const uint8_t sector0[BLK_SECTOR])
{
	return FS_MEMCMP(sector0 + 3, "EXFAT   ", 8) == 0;
}

/* Read sector lba of the volume through the one-sector cache; NULL on an I/O error. */
static const uint8_t *exfat_sector(struct exfat_vol *v, uint64_t lba)
{
	if (v->cache_valid && v->cache_lba == lba)
		return v->cache;
	v->cache_valid = 0;
	if (lba >= v->dev->sectors || blk_read(v->dev, lba, 1, v->cache) != BLK_OK)
		return NULL;
	v->cache_lba = lba;
	v->cache_valid = 1;
	return v->cache;
}

uint64_t exfat_cluster_lba(const struct exfat_vol *v, uint32_t c)
{
	return v->heap_start + ((uint64_t)(c - 2) << v->clus_shift);
}

int exfat_next_cluster(struct exfat_vol *v, uint32_t c, uint32_t *next)
{
	const uint8_t *s;
	uint32_t e;
	if (c < 2 || c > v->clusters + 1)
		return EXFAT_E_CHAIN_RANGE;
	s = exfat_sector(v, v->fat_start + (c >> 7));
	if (!s)
		return EXFAT_E_IO;
	e = fs_le32(s + (c & 127) * 4);
	if (e == 0xFFFFFFFFu) {
		*next = EXFAT_EOC;
		return EXFAT_OK;
	}
	if (e == 0xFFFFFFF7u)
		return EXFAT_E_CHAIN_BAD;
	if (e == 0)
		return EXFAT_E_CHAIN_FREE;
	if (e < 2 || e > v->clusters + 1)
		return EXFAT_E_CHAIN_RANGE;
	*next = e;
	return EXFAT_OK;
}

/*
 * A cursor over a cluster run (contiguous) or chain: the sector at byte
 * offset pos of the object. Advancing is bounded by the cluster count.
 */
struct exfat_cur {
	uint32_t cluster;
	int contig;
	uint32_t steps;
	uint64_t pos;
};

static void exfat_cur_init(struct exfat_cur *c, uint32_t first, int contig)
{
	c->cluster = first;
	c->contig = contig;
	c->steps = 0;
	c->pos = 0;
}

/* The LBA of the sector at c->pos; moves to the next cluster when pos has crossed into it. */
static int exfat_cur_lba(struct exfat_vol *v, struct exfat_cur *c, uint64_t *lba)
{
	uint32_t clus_bytes_shift = 9 + v->clus_shift;
	while ((c->pos >> clus_bytes_shift) > c->steps) {
		uint32_t next;
		if (++c->steps > v->clusters)
			return EXFAT_E_CHAIN_LOOP;
		if (c->contig) {
			next = c->cluster + 1;
			if (next > v->clusters + 1)
				return EXFAT_E_CHAIN_RANGE;
		} else {
			int rc = exfat_next_cluster(v, c->cluster, &next);
			if (rc)
				return rc;
			if (next == EXFAT_EOC)
				return EXFAT_E_END;
		}
		c->cluster = next;
	}
	if (c->cluster < 2 || c->cluster > v->clusters + 1)
		return EXFAT_E_CHAIN_RANGE;
	*lba = exfat_cluster_lba(v, c->cluster) + ((c->pos >> 9) & ((1u << v->clus_shift) - 1));
	return EXFAT_OK;
}

/* Byte offset off of the object at first (chain or contiguous, len bytes): its LBA (bounded chain walk). */
static int exfat_seek(struct exfat_vol *v, uint32_t first, int contig, uint64_t off, uint64_t *lba)
{
	uint64_t k = off >> (9 + v->clus_shift);
	uint32_t c = first;
	if (contig) {
		if (k > v->clusters || first + k > (uint64_t)v->clusters + 1)
			return EXFAT_E_CHAIN_RANGE;
		c = (uint32_t)(first + k);
	} else {
		if (k > v->clusters)
			return EXFAT_E_CHAIN_LOOP;
		for (uint64_t i = 0; i < k; i++) {
			int rc = exfat_next_cluster(v, c, &c);
			if (rc)
				return rc;
			if (c == EXFAT_EOC)
				return EXFAT_E_CHAIN_SHORT;
		}
	}
	if (c < 2 || c > v->clusters + 1)
		return EXFAT_E_CHAIN_RANGE;
	*lba = exfat_cluster_lba(v, c) + ((off >> 9) & ((1u << v->clus_shift) - 1));
	return EXFAT_OK;
}

/* Validate the boot region at sector base (0 main, 12 backup) and fill the geometry of v. */
static int exfat_boot(struct exfat_vol *v, uint32_t base)
{
	uint8_t b[BLK_SECTOR];
	uint32_t sum = 0, i, spc_shift, nfats, fat_off, fat_len, heap, clusters;
	uint64_t vol_len;
	for (i = 0; i < 12; i++) {
		const uint8_t *s;
		if (blk_read(v->dev, base + i, 1, b) != BLK_OK)
			return EXFAT_E_IO;
		if (i == 0) {
			if (!exfat_probe(b))
				return EXFAT_E_NOT_EXFAT;
			if (b[510] != 0x55 || b[511] != 0xAA)
				return EXFAT_E_SIGNATURE;
			for (uint32_t k = 11; k < 64; k++)
				if (b[k])
					return EXFAT_E_ZERO_FIELD;
			if (b[108] < 9 || b[108] > 12)
				return EXFAT_E_SECTOR_SIZE;
			if (b[108] != 9)
				return EXFAT_E_SECTOR_SIZE_UNSUPPORTED;
			if (b[109] > 25 - 9)
				return EXFAT_E_CLUSTER_SIZE;
			if (b[105] != 1)
				return EXFAT_E_REVISION;
			FS_MEMCPY(v->cache, b, BLK_SECTOR); /* kept for the fields below */
		}
		if (i == 11) {
			for (uint32_t k = 0; k < BLK_SECTOR; k += 4)
				if (fs_le32(b + k) != sum)
					return EXFAT_E_BOOT_CHECKSUM;
			break;
		}
		s = b;
		for (uint32_t k = 0; k < BLK_SECTOR; k++) {
			if (i == 0 && (k == 106 || k == 107 || k == 112))
				continue;   /* VolumeFlags and PercentInUse change without the checksum */
			sum = exfat_sum32(sum, s[k]);
		}
	}
	FS_MEMCPY(b, v->cache, BLK_SECTOR);
	v->cache_valid = 0;
	vol_len = fs_le64(b + 72);
	fat_off = fs_le32(b + 80);
	fat_len = fs_le32(b + 84);
	heap = fs_le32(b + 88);
	clusters = fs_le32(b + 92);
	spc_shift = b[109];
	nfats = b[110];
	if (nfats != 1 && nfats != 2)
		return EXFAT_E_NUM_FATS;
	/* FATs after the two boot regions, the heap after the FATs, the heap inside the volume, every entry in a FAT. */
	if (fat_off < 24 || fat_len == 0 || (uint64_t)fat_off + (uint64_t)fat_len * nfats > heap || clusters == 0 ||
	    clusters > 0xFFFFFFF5u || (uint64_t)fat_len * 128 < (uint64_t)clusters + 2 ||
	    (uint64_t)heap + ((uint64_t)clusters << spc_shift) > vol_len)
		return EXFAT_E_LAYOUT;
	if (vol_len > v->dev->sectors)
		return EXFAT_E_BEYOND_DEVICE;
	v->vol_sectors = vol_len;
	v->clusters = clusters;
	v->clus_shift = spc_shift;
	v->heap_start = heap;
	v->fat_sectors = fat_len;
	v->num_fats = nfats;
	/* ActiveFat (VolumeFlags bit 0) picks the second FAT and bitmap on a two-FAT (TexFAT) volume. */
	v->fat_start = fat_off + ((nfats == 2 && (b[106] & 1)) ? fat_len : 0);
	v->root_cluster = fs_le32(b + 96);
	v->serial = fs_le32(b + 100);
	if (b[106] & 2)
		v->state |= EXFAT_ST_DIRTY;
	if (v->root_cluster < 2 || v->root_cluster > clusters + 1)
		return EXFAT_E_ROOT_CLUSTER;
	return (nfats == 2 && (b[106] & 1)) ? -1 : EXFAT_OK; /* -1: the second bitmap is the active one */
}

/* Read the upcase table once: its checksum, and the mapping of U+0000..U+007F into v->upcase_ascii. */
static int exfat_load_upcase(struct exfat_vol *v, uint32_t want_sum)
{
	struct exfat_cur c;
	uint32_t sum = 0, idx = 0;
	int after_ffff = 0;
	for (uint32_t i = 0; i < 128; i++)
		v->upcase_ascii[i] = (uint16_t)i;
	exfat_cur_init(&c, v->upcase_cluster, 0);
	while (c.pos < v->upcase_bytes) {
		uint64_t lba;
		const uint8_t *s;
		int rc = exfat_cur_lba(v, &c, &lba);
		if (rc)
			return rc == EXFAT_E_END ? EXFAT_E_UPCASE_SIZE : rc;
		s = exfat_sector(v, lba);
		if (!s)
			return EXFAT_E_IO;
		for (uint32_t k = 0; k < BLK_SECTOR && c.pos + k < v->upcase_bytes; k++) {
			sum = exfat_sum32(sum, s[k]);
			if (k & 1) {
				uint16_t u = fs_le16(s + k - 1);
				if (after_ffff) {
					idx += u;      /* identity for u units */
					after_ffff = 0;
				} else if (u == 0xFFFF) {
					after_ffff = 1;
				} else {
					if (idx < 128)
						v->upcase_ascii[idx] = u;
					idx++;
				}
			}
		}
		c.pos += BLK_SECTOR;
	}
	return sum == want_sum ? EXFAT_OK : EXFAT_E_UPCASE_CHECKSUM;
}

uint16_t exfat_upcase(struct exfat_vol *v, uint16_t u)
{
	struct exfat_cur c;
	uint32_t idx = 0;
	int after_ffff = 0;
	if (u < 128)
		return v->upcase_ascii[u];
	/* Walk the (compressed) table up to index u; the mount checked it, so I/O errors leave u as it is. */
	exfat_cur_init(&c, v->upcase_cluster, 0);
	while (c.pos < v->upcase_bytes) {
		uint64_t lba;
		const uint8_t *s;
		if (exfat_cur_lba(v, &c, &lba) || !(s = exfat_sector(v, lba)))
			return u;
		for (uint32_t k = 0; k + 1 < BLK_SECTOR && c.pos + k + 1 < v->upcase_bytes; k += 2) {
			uint16_t e = fs_le16(s + k);
			if (after_ffff) {
				if (u < idx + e)
					return u;
				idx += e;
				after_ffff = 0;
			} else if (e == 0xFFFF) {
				after_ffff = 1;
			} else if (idx++ == u) {
				return e;
			}
		}
		c.pos += BLK_SECTOR;
	}
	return u;
}

int exfat_bitmap_lba(struct exfat_vol *v, uint64_t off, uint64_t *lba)
{
	return exfat_seek(v, v->bitmap_cluster, 0, off, lba);
}

int exfat_check_alloc(struct exfat_vol *v, uint32_t c, uint32_t n)
{
	uint32_t i = c - 2;
	while (n) {
		uint64_t lba;
		const uint8_t *s;
		uint32_t byte = i >> 3, in_sec = byte & (BLK_SECTOR - 1);
		int rc = exfat_seek(v, v->bitmap_cluster, 0, byte, &lba);
		if (rc)
			return rc;
		s = exfat_sector(v, lba);
		if (!s)
			return EXFAT_E_IO;
		/* Whole bytes at a time where the run covers them. */
		while (n && in_sec < BLK_SECTOR) {
			if ((i & 7) == 0 && n >= 8) {
				if (s[in_sec] != 0xFF)
					return EXFAT_E_NOT_ALLOCATED;
				i += 8;
				n -= 8;
			} else {
				if (!(s[in_sec] & (1u << (i & 7))))
					return EXFAT_E_NOT_ALLOCATED;
				i++;
				n--;
			}
			in_sec = (i >> 3) & (BLK_SECTOR - 1);
			if (in_sec == 0)
				break;
		}
	}
	return EXFAT_OK;
}

/* The next raw 32-byte entry of d into e; EXFAT_E_END past the directory's end. */
static int exfat_raw(struct exfat_dir *d, uint8_t e[32])
{
	struct exfat_cur c;
	uint64_t lba;
	int rc;
	if (d->pos >= d->bytes)
		return d->root ? EXFAT_E_DIR_TOO_BIG : EXFAT_E_END;
	c.cluster = d->cluster;
	c.contig = d->contig;
	c.steps = d->steps;
	c.pos = d->pos;
	rc = exfat_cur_lba(d->vol, &c, &lba);
	if (rc)
		return rc;
	d->cluster = c.cluster;
	d->steps = c.steps;
	if (!d->buf_valid || d->buf_lba != lba) {
		d->buf_valid = 0;
		if (lba >= d->vol->dev->sectors || blk_read(d->vol->dev, lba, 1, d->buf) != BLK_OK)
			return EXFAT_E_IO;
		d->buf_lba = lba;
		d->buf_valid = 1;
	}
	FS_MEMCPY(e, d->buf + (d->pos & (BLK_SECTOR - 1)), 32);
	d->pos += 32;
	return EXFAT_OK;
}

/* Start listing the directory at first (FAT chain or contiguous, bytes long). */
static void exfat_dir_start(struct exfat_vol *v, struct exfat_dir *d, uint32_t first, int contig, uint64_t bytes)
{
	FS_MEMSET(d, 0, sizeof(*d));
	d->vol = v;
	d->first_cluster = first;
	d->cluster = first;
	d->contig = contig;
	d->bytes = bytes;
}

int exfat_dir_open_root(struct exfat_vol *v, struct exfat_dir *d)
{
	if (!v || !d)
		return EXFAT_E_BAD_ARG;
	/* The root has no size of its own: its chain ends it; 256 MiB bounds it. */
	exfat_dir_start(v, d, v->root_cluster, 0, EXFAT_DIR_MAX_BYTES);
	d->root = 1;
	return EXFAT_OK;
}

int exfat_dir_open(struct exfat_vol *v, const struct exfat_file *f, struct exfat_dir *d)
{
	if (!v || !f || !d)
		return EXFAT_E_BAD_ARG;
	if (!(f->flags & EXFAT_F_DIR))
		return EXFAT_E_NOT_DIR;
	if (f->name[0] == '/' && f->name[1] == 0)
		return exfat_dir_open_root(v, d);
	if (f->size > EXFAT_DIR_MAX_BYTES)
		return EXFAT_E_DIR_TOO_BIG;
	exfat_dir_start(v, d, f->first_cluster, (f->flags & EXFAT_F_CONTIG) != 0, f->size);
	if (f->size == 0)
		d->done = 1;
	return EXFAT_OK;
}

/* Hash of an upcased name (the stream extension's NameHash). */
static uint16_t exfat_name_hash(const uint16_t *up, uint32_t n)
{
	uint16_t h = 0;
	for (uint32_t i = 0; i < n; i++) {
		h = exfat_sum16(h, (uint8_t)up[i]);
		h = exfat_sum16(h, (uint8_t)(up[i] >> 8));
	}
	return h;
}

/* Read the rest of the entry set whose file entry is e0 into out and d->units; checks everything the set promises. */
static int exfat_read_set(struct exfat_dir *d, const uint8_t e0[32], uint64_t lba0, uint32_t off0,
			  struct exfat_file *out)
{
	uint8_t e[32];
	uint32_t sc = e0[1], names = 0, name_len = 0, got = 0;
	uint16_t sum = 0;
	uint8_t sflags = 0;
	int rc;
	for (uint32_t k = 0; k < 32; k++)
		if (k != 2 && k != 3)
			sum = exfat_sum16(sum, e0[k]);
	if (sc < 2)
		return EXFAT_E_SET_SHORT;
	FS_MEMSET(out, 0, sizeof(*out));
	out->attr = fs_le16(e0 + 4);
	out->ent_lba[0] = lba0;
	out->ent_off[0] = (uint16_t)off0;
	if (sc + 1 <= EXFAT_SET_MAX) {
		out->set_n = (uint8_t)(sc + 1);
		FS_MEMCPY(out->set, e0, 32);
	}
	for (uint32_t i = 0; i < sc; i++) {
		rc = exfat_raw(d, e);
		if (rc == EXFAT_E_END)
			return EXFAT_E_SET_SHORT;
		if (rc)
			return rc;
		if (!(e[0] & 0x80) || (e[0] & 0x40) == 0)
			return i == 0 ? EXFAT_E_SET_STREAM : EXFAT_E_SET_SHORT; /* a primary or unused entry in the set */
		for (uint32_t k = 0; k < 32; k++)
			sum = exfat_sum16(sum, e[k]);
		if (out->set_n)
			FS_MEMCPY(out->set + 32 * (i + 1), e, 32);
		if (i == 0) {
			out->ent_lba[1] = d->buf_lba;
			out->ent_off[1] = (uint16_t)((d->pos - 32) & (BLK_SECTOR - 1));
			if (e[0] != EXFAT_T_STREAM)
				return EXFAT_E_SET_STREAM;
			sflags = e[1];
			name_len = e[3];
			out->name_hash = fs_le16(e + 4);
			out->valid_size = fs_le64(e + 8);
			out->first_cluster = fs_le32(e + 20);
			out->size = fs_le64(e + 24);
			names = (name_len + 14) / 15;
			if (name_len == 0 || names > sc - 1)
				return EXFAT_E_SET_NAME;
		} else if (i <= names) {
			if (e[0] != EXFAT_T_NAME)
				return EXFAT_E_SET_NAME;
			for (uint32_t k = 0; k < 15 && got < name_len; k++)
				d->units[got++] = fs_le16(e + 2 + 2 * k);
		}
		/* Further secondaries (vendor extensions) only count in the checksum. */
	}
	if (sum != fs_le16(e0 + 2))
		return EXFAT_E_SET_CHECKSUM;
	d->name_len = (uint8_t)name_len;
	{
		uint16_t up[EXFAT_NAME_UNITS];
		for (uint32_t i = 0; i < name_len; i++)
			up[i] = exfat_upcase(d->vol, d->units[i]);
		if (exfat_name_hash(up, name_len) != out->name_hash)
			return EXFAT_E_NAME_HASH;
	}
	if (out->attr & EXFAT_ATTR_DIR)
		out->flags |= EXFAT_F_DIR;
	if (sflags & EXFAT_SF_NOFATCHAIN)
		out->flags |= EXFAT_F_CONTIG;
	if (out->valid_size > out->size)
		return EXFAT_E_SIZE;
	if ((out->flags & EXFAT_F_DIR) && (out->size & ((512ull << d->vol->clus_shift) - 1)))
		return EXFAT_E_SIZE;
	if (!(sflags & 1) || out->size == 0) {       /* AllocationPossible clear, or empty: no clusters */
		out->first_cluster = 0;
		out->size = 0;
		out->valid_size = 0;
	}
	fs_utf16_to_utf8(d->units, name_len, out->name, sizeof(out->name));
	return EXFAT_OK;
}

int exfat_dir_next(struct exfat_dir *d, struct exfat_file *out)
{
	uint8_t e[32];
	if (!d || !out)
		return EXFAT_E_BAD_ARG;
	while (!d->done) {
		int rc = exfat_raw(d, e);
		if (rc == EXFAT_OK && e[0] == 0)
			rc = EXFAT_E_END;        /* end of directory: nothing after it is in use */
		if (rc) {
			d->done = 1;
			return rc;
		}
		if (e[0] != EXFAT_T_FILE)
			continue;                /* unused, bitmap, upcase, label, GUID, padding, stray secondaries */
		rc = exfat_read_set(d, e, d->buf_lba, (uint32_t)((d->pos - 32) & (BLK_SECTOR - 1)), out);
		if (rc) {
			d->done = 1;
			return rc;
		}
		return EXFAT_OK;
	}
	return EXFAT_E_END;
}

/* Walk the root's critical entries: the active bitmap, the upcase table, the label. */
static int exfat_root_meta(struct exfat_vol *v, int second_bitmap)
{
	struct exfat_dir d;
	uint8_t e[32];
	uint32_t up_sum = 0;
	int have_bitmap = 0, have_upcase = 0, rc;
	exfat_dir_open_root(v, &d);
	while ((rc = exfat_raw(&d, e)) == EXFAT_OK && e[0]) {
		if (e[0] == EXFAT_T_BITMAP && (e[1] & 1) == (second_bitmap ? 1 : 0) && !have_bitmap) {
			v->bitmap_cluster = fs_le32(e + 20);
			v->bitmap_bytes = fs_le64(e + 24);
			have_bitmap = 1;
		} else if (e[0] == EXFAT_T_UPCASE && !have_upcase) {
			up_sum = fs_le32(e + 4);
			v->upcase_cluster = fs_le32(e + 20);
			if (fs_le64(e + 24) == 0 || fs_le64(e + 24) > 131072 || (fs_le64(e + 24) & 1))
				return EXFAT_E_UPCASE_SIZE;
			v->upcase_bytes = (uint32_t)fs_le64(e + 24);
			have_upcase = 1;
		} else if (e[0] == EXFAT_T_LABEL) {
			uint16_t u[11];
			uint32_t n = e[1] > 11 ? 11 : e[1];
			for (uint32_t k = 0; k < n; k++)
				u[k] = fs_le16(e + 2 + 2 * k);
			fs_utf16_to_utf8(u, n, v->label, sizeof(v->label));
		}
	}
	if (rc && rc != EXFAT_E_END)
		return rc;
	if (!have_bitmap)
		return EXFAT_E_NO_BITMAP;
	if (v->bitmap_bytes < ((uint64_t)v->clusters + 7) / 8)
		return EXFAT_E_BITMAP_SIZE;
	if (v->bitmap_cluster < 2 || v->bitmap_cluster > v->clusters + 1)
		return EXFAT_E_CHAIN_RANGE;
	if (!have_upcase)
		return EXFAT_E_NO_UPCASE;
	return exfat_load_upcase(v, up_sum);
}

int exfat_mount(struct exfat_vol *v, struct blk_dev *dev)
{
	int rc, second;
	if (!v || !dev)
		return EXFAT_E_BAD_ARG;
	FS_MEMSET(v, 0, sizeof(*v));
	v->dev = dev;
	if (dev->sectors < 24)
		return dev->sectors ? EXFAT_E_BEYOND_DEVICE : EXFAT_E_IO;
	rc = exfat_boot(v, 0);
	if (rc > 0 && rc != EXFAT_E_NOT_EXFAT && rc != EXFAT_E_IO && rc != EXFAT_E_BEYOND_DEVICE) {
		/* The main boot region is damaged: the backup copy at sector 12 may be whole. */
		int main_err = rc;
		struct blk_dev *keep = v->dev;
		FS_MEMSET(v, 0, sizeof(*v));
		v->dev = keep;
		rc = exfat_boot(v, 12);
		if (rc > 0)
			return main_err;
		v->state |= EXFAT_ST_BACKUP_BOOT;
		v->main_err = main_err;
	}
	if (rc > 0)
		return rc;
	second = rc < 0;
	return exfat_root_meta(v, second);
}

/* Decode one UTF-8 component [s, s+len) into UTF-16 units; the count, or -1 if invalid or too long. */
static int exfat_utf8_to_units(const char *s, size_t len, uint16_t *u)
{
	size_t i = 0;
	int n = 0;
	while (i < len) {
		uint32_t cp, b = (uint8_t)s[i];
		int extra;
		if (b < 0x80) {
			cp = b;
			extra = 0;
		} else if ((b & 0xE0) == 0xC0) {
			cp = b & 0x1F;
			extra = 1;
		} else if ((b & 0xF0) == 0xE0) {
			cp = b & 0x0F;
			extra = 2;
		} else if ((b & 0xF8) == 0xF0) {
			cp = b & 0x07;
			extra = 3;
		} else {
			return -1;
		}
		for (int k = 1; k <= extra; k++) {
			uint8_t c = (uint8_t)s[i + (size_t)k];
			if (i + (size_t)k >= len || (c & 0xC0) != 0x80)
				return -1;
			cp = (cp << 6) | (c & 0x3F);
		}
		i += (size_t)extra + 1;
		if (cp >= 0x10000) {
			if (cp > 0x10FFFF || n + 2 > EXFAT_NAME_UNITS)
				return -1;
			u[n++] = (uint16_t)(0xD800 + ((cp - 0x10000) >> 10));
			u[n++] = (uint16_t)(0xDC00 + ((cp - 0x10000) & 0x3FF));
		} else {
			if (n + 1 > EXFAT_NAME_UNITS)
				return -1;
			u[n++] = (uint16_t)cp;
		}
	}
	return n;
}

int exfat_open_path(struct exfat_vol *v, const char *path, struct exfat_file *out)
{
	struct exfat_dir d;
	uint16_t want[EXFAT_NAME_UNITS];
	if (!v || !path || !out)
		return EXFAT_E_BAD_ARG;
	FS_MEMSET(out, 0, sizeof(*out));
	out->name[0] = '/';
	out->flags = EXFAT_F_DIR;
	out->first_cluster = v->root_cluster;
	for (;;) {
		const char *c;
		size_t len;
		int n, rc;
		uint16_t hash;
		while (*path == '/' || *path == '\\')
			path++;
		if (!*path)
			return EXFAT_OK;
		for (c = path, len = 0; c[len] && c[len] != '/' && c[len] != '\\'; len++)
			;
		path += len;
		if (len == 1 && c[0] == '.')
			continue;
		if (len == 2 && c[0] == '.' && c[1] == '.')
			return EXFAT_E_BAD_PATH;
		n = exfat_utf8_to_units(c, len, want);
		if (n <= 0)
			return EXFAT_E_BAD_PATH;
		for (int i = 0; i < n; i++)
			want[i] = exfat_upcase(v, want[i]);
		hash = exfat_name_hash(want, (uint32_t)n);
		rc = exfat_dir_open(v, out, &d);
		if (rc)
			return rc;
		for (;;) {
			int i;
			rc = exfat_dir_next(&d, out);
			if (rc == EXFAT_E_END)
				return EXFAT_E_NOT_FOUND;
			if (rc)
				return rc;
			if (out->name_hash != hash || d.name_len != n)
				continue;
			for (i = 0; i < n && exfat_upcase(v, d.units[i]) == want[i]; i++)
				;
			if (i == n)
				break;
		}
	}
}

int exfat_extents(struct exfat_vol *v, const struct exfat_file *f, struct ext_map *map, struct ext_run *runs,
		  uint32_t cap)
{
	uint64_t nclus, sectors;
	uint32_t spc, c, k, file_sector = 0;
	uint64_t run_end = 0;
	int rc;
	if (!v || !f || !map || (!runs && cap))
		return EXT_E_BAD_ARG;
	rc = ext_map_begin(map, v->dev, runs, cap, f->flags & EXFAT_F_DIR);
	if (rc)
		return rc;
	spc = 1u << v->clus_shift;
	nclus = (f->size + (512ull << v->clus_shift) - 1) >> (9 + v->clus_shift);
	sectors = (f->size + BLK_SECTOR - 1) >> 9;
	if ((nclus << v->clus_shift) > 0xFFFFFFFFull) {
		map->fat_err = EXFAT_E_TOO_BIG;
		return EXT_E_FS;
	}
	if (f->valid_size < f->size) {
		map->fat_err = EXFAT_E_VALID_LENGTH;
		return EXT_E_FS;
	}
	map->size_bytes = f->size;
	map->sectors = (uint32_t)sectors;
	map->alloc_sectors = (uint32_t)(nclus << v->clus_shift);
	if (nclus == 0)
		return EXT_OK;
	c = f->first_cluster;
	if (nclus > v->clusters || c < 2 || c > v->clusters + 1) {
		map->fat_err = nclus > v->clusters ? EXFAT_E_CHAIN_SHORT : EXFAT_E_CHAIN_RANGE;
		return EXT_E_CHAIN;
	}
	if (f->flags & EXFAT_F_CONTIG) {
		if (c + nclus - 1 > (uint64_t)v->clusters + 1) {
			map->fat_err = EXFAT_E_CHAIN_RANGE;
			return EXT_E_CHAIN;
		}
		map->needed = 1;
		if (cap) {
			runs[0].file_sector = 0;
			runs[0].sectors = map->alloc_sectors;
			runs[0].lba = exfat_cluster_lba(v, c);
		}
	} else {
		/* Bounded by nclus <= clusters steps, as on FAT. */
		for (k = 0;; k++) {
			ext_append(map, &run_end, file_sector, exfat_cluster_lba(v, c), spc);
			file_sector += spc;
			if (k + 1 == nclus)
				break;
			rc = exfat_next_cluster(v, c, &c);
			if (rc == EXFAT_OK && c == EXFAT_EOC)
				rc = EXFAT_E_CHAIN_SHORT;
			if (rc) {
				map->fat_err = rc;
				map->needed = 0;
				return EXT_E_CHAIN;
			}
		}
	}
	rc = ext_map_end(map, EXFAT_E_CHAIN_LOOP);
	if (rc)
		return rc;
	for (k = 0; k < map->count; k++) {
		/* Every cluster of the file must be marked in use, or another file may own it tomorrow. */
		rc = exfat_check_alloc(v, (uint32_t)(2 + ((runs[k].lba - v->heap_start) >> v->clus_shift)),
				       runs[k].sectors >> v->clus_shift);
		if (rc) {
			map->fat_err = rc;
			map->needed = map->count = 0;
			return EXT_E_CHAIN;
		}
	}
	return EXT_OK;
}
