/* fat.c: read-only FAT12/16/32: BPB validation, cluster chains, directory listing with long names, path lookup. */
#include <stddef.h>
#include "fat.h"
#include "fat_format.h"
#include "fs_util.h"

static const struct errtab_msg fat_msgs[FAT_E_COUNT] = {
	[FAT_OK] = { "ok", "success" },
	[FAT_E_END] = { "end", "no more directory entries" },
	[FAT_E_IO] = { "io", "the device could not be read" },
	[FAT_E_BAD_ARG] = { "bad-arg", "invalid argument" },
	[FAT_E_SIGNATURE] = { "signature", "boot sector has no 0x55AA signature: not a FAT volume" },
	[FAT_E_JUMP] = { "jump", "boot sector does not start with a jump instruction: not a FAT volume" },
	[FAT_E_SECTOR_SIZE] = { "sector-size", "bytes per sector is not a power of two between 512 and 4096" },
	[FAT_E_SECTOR_SIZE_UNSUPPORTED] = { "sector-size-unsupported", "bytes per sector is 1024, 2048 or 4096: only 512-byte sectors are supported" },
	[FAT_E_CLUSTER_SIZE] = { "cluster-size", "sectors per cluster is not a power of two between 1 and 128" },
	[FAT_E_RESERVED] = { "reserved", "reserved sector count is zero" },
	[FAT_E_NO_FATS] = { "no-fats", "number of FATs is zero" },
	[FAT_E_MEDIA] = { "media", "media descriptor is not 0xF0 or 0xF8..0xFF" },
	[FAT_E_TOTAL_SECTORS] = { "total-sectors", "total sector count is zero" },
	[FAT_E_FAT_SIZE] = { "fat-size", "sectors per FAT is zero" },
	[FAT_E_ROOT_ENTRIES] = { "root-entries", "root entry count is zero on FAT12/16 or nonzero on FAT32" },
	[FAT_E_LAYOUT] = { "layout", "reserved sectors, FATs and root directory leave no room for data" },
	[FAT_E_TYPE_MISMATCH] = { "type-mismatch", "the cluster count (Microsoft's rule: <4085 FAT12, <65525 FAT16, else FAT32) disagrees with the BPB layout" },
	[FAT_E_TOO_MANY_CLUSTERS] = { "too-many-clusters", "more clusters than FAT32 can address (0x0FFFFFF5)" },
	[FAT_E_FAT_TOO_SMALL] = { "fat-too-small", "the FAT is too small for the volume's cluster count" },
	[FAT_E_ROOT_CLUSTER] = { "root-cluster", "FAT32 root directory cluster is outside the volume" },
	[FAT_E_FS_VERSION] = { "fs-version", "unsupported FAT32 version (expected 0.0)" },
	[FAT_E_ACTIVE_FAT] = { "active-fat", "FAT32 mirroring is off and the active FAT number does not exist" },
	[FAT_E_BEYOND_DEVICE] = { "beyond-device", "the volume is larger than its partition or disk" },
	[FAT_E_CHAIN_FREE] = { "chain-free", "a cluster chain runs into a free cluster" },
	[FAT_E_CHAIN_RANGE] = { "chain-range", "a cluster number is outside the volume" },
	[FAT_E_CHAIN_BAD] = { "chain-bad", "a cluster chain runs into a cluster marked bad" },
	[FAT_E_CHAIN_LOOP] = { "chain-loop", "a cluster chain is longer than the volume (it loops)" },
	[FAT_E_CHAIN_SHORT] = { "chain-short", "a file's cluster chain ends before the file's size" },
	[FAT_E_DIR_TOO_BIG] = { "dir-too-big", "a directory has more than 65536 entries" },
	[FAT_E_NOT_FOUND] = { "not-found", "no such file or directory" },
	[FAT_E_NOT_DIR] = { "not-dir", "a path component is not a directory" },
	[FAT_E_BAD_PATH] = { "bad-path", "invalid path (\"..\" or a component longer than 765 bytes)" },
};

const char *fat_strerror(int err)
{
	return errtab_text(fat_msgs, FAT_E_COUNT, err, "unknown FAT error");
}

const char *fat_errname(int err)
{
	return errtab_name(fat_msgs, FAT_E_COUNT, err, "unknown");
}

/* Code page 437 (the DOS default) for OEM bytes 0x80..0xFF in 8.3 names. */
static const uint16_t fat_cp437[128] = {
	0x00C7, 0x00FC, 0x00E9, 0x00E2, 0x00E4, 0x00E0, 0x00E5, 0x00E7,
	0x00EA, 0x00EB, 0x00E8, 0x00EF, 0x00EE, 0x00EC, 0x00C4, 0x00C5,
	0x00C9, 0x00E6, 0x00C6, 0x00F4, 0x00F6, 0x00F2, 0x00FB, 0x00F9,
	0x00FF, 0x00D6, 0x00DC, 0x00A2, 0x00A3, 0x00A5, 0x20A7, 0x0192,
	0x00E1, 0x00ED, 0x00F3, 0x00FA, 0x00F1, 0x00D1, 0x00AA, 0x00BA,
	0x00BF, 0x2310, 0x00AC, 0x00BD, 0x00BC, 0x00A1, 0x00AB, 0x00BB,
	0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556,
	0x2555, 0x2563, 0x2551, 0x2557, 0x255D, 0x255C, 0x255B, 0x2510,
	0x2514, 0x2534, 0x252C, 0x251C, 0x2500, 0x253C, 0x255E, 0x255F,
	0x255A, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256C, 0x2567,
	0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256B,
	0x256A, 0x2518, 0x250C, 0x2588, 0x2584, 0x258C, 0x2590, 0x2580,
	0x03B1, 0x00DF, 0x0393, 0x03C0, 0x03A3, 0x03C3, 0x00B5, 0x03C4,
	0x03A6, 0x0398, 0x03A9, 0x03B4, 0x221E, 0x03C6, 0x03B5, 0x2229,
	0x2261, 0x00B1, 0x2265, 0x2264, 0x2320, 0x2321, 0x00F7, 0x2248,
	0x00B0, 0x2219, 0x00B7, 0x221A, 0x207F, 0x00B2, 0x25A0, 0x00A0,
};

/* log2 of x if x is a power of two, else -1. */
static int fat_log2(uint32_t x)
{
	int n = 0;
	if (!x || (x & (x - 1)))
		return -1;
	while (x > 1) {
		x >>= 1;
		n++;
	}
	return n;
}

/* Copy an 11-byte space-padded field, cutting trailing spaces. */
static void fat_copy_label(char *out, const char *in)
{
	int n = 11;
	while (n > 0 && in[n - 1] == ' ')
		n--;
	FS_MEMCPY(out, in, (size_t)n);
	out[n] = 0;
}

int fat_mount(struct fat_vol *v, struct blk_dev *dev)
{
	struct fat_boot b;
	uint32_t bps, total, fatsz, root_entries, need_bytes;
	uint64_t meta, data;
	int shift, is32_layout;
	if (!v || !dev || !dev->read)
		return FAT_E_BAD_ARG;
	FS_MEMSET(v, 0, sizeof(*v));
	v->dev = dev;
	if (dev->sectors < 1 || blk_read(dev, 0, 1, &b) != BLK_OK)
		return FAT_E_IO;
	if (b.sig[0] != 0x55 || b.sig[1] != 0xAA)
		return FAT_E_SIGNATURE;
	if (b.jump[0] != 0xEB && b.jump[0] != 0xE9)
		return FAT_E_JUMP;
	bps = fs_le16(&b.bytes_per_sec);
	if (bps < 512 || bps > 4096 || fat_log2(bps) < 0)
		return FAT_E_SECTOR_SIZE;
	if (bps != 512)
		return FAT_E_SECTOR_SIZE_UNSUPPORTED;
	shift = fat_log2(b.sec_per_clus);
	if (shift < 0 || shift > 7)
		return FAT_E_CLUSTER_SIZE;
	v->sec_per_clus = b.sec_per_clus;
	v->clus_shift = (uint32_t)shift;
	if (fs_le16(&b.reserved) == 0)
		return FAT_E_RESERVED;
	if (b.fats == 0)
		return FAT_E_NO_FATS;
	if (b.media != 0xF0 && b.media < 0xF8)
		return FAT_E_MEDIA;
	total = fs_le16(&b.total16) ? fs_le16(&b.total16) : fs_le32(&b.total32);
	if (total == 0)
		return FAT_E_TOTAL_SECTORS;
	is32_layout = fs_le16(&b.fat_size16) == 0;
	fatsz = is32_layout ? fs_le32(&b.u.f32.fat_size32) : fs_le16(&b.fat_size16);
	if (fatsz == 0)
		return FAT_E_FAT_SIZE;
	root_entries = fs_le16(&b.root_entries);
	v->root_sectors = (root_entries * 32 + BLK_SECTOR - 1) >> 9;
	/* Microsoft's rule: DataSec = TotSec - (Rsvd + NumFATs x FATSz + RootDirSectors). */
	meta = (uint64_t)fs_le16(&b.reserved) + (uint64_t)b.fats * fatsz + v->root_sectors;
	if (meta >= total)
		return FAT_E_LAYOUT;
	data = total - meta;
	v->clusters = (uint32_t)(data >> v->clus_shift);
	if (v->clusters == 0)
		return FAT_E_LAYOUT;
	v->type = v->clusters < 4085 ? 12 : v->clusters < 65525 ? 16 : 32;
	if ((v->type == 32) != is32_layout)
		return FAT_E_TYPE_MISMATCH;
	if ((v->type == 32) != (root_entries == 0))
		return FAT_E_ROOT_ENTRIES;
	if (v->clusters > 0x0FFFFFF5u - 2)
		return FAT_E_TOO_MANY_CLUSTERS;
	/* Entries 0..clusters+1 must fit in one FAT. */
	need_bytes = v->type == 12 ? ((v->clusters + 2) * 3 + 1) >> 1 : (v->clusters + 2) * (uint32_t)(v->type >> 3);
	if ((uint64_t)fatsz << 9 < need_bytes)
		return FAT_E_FAT_TOO_SMALL;
	v->fat_sectors = fatsz;
	v->fat_start = fs_le16(&b.reserved);
	v->fat0_start = v->fat_start;
	v->nfats = b.fats;
	v->mirror = 1;
	v->root_start = (uint32_t)(v->fat_start + (uint64_t)b.fats * fatsz);
	v->data_start = (uint32_t)meta;
	v->total_sectors = total;
	if (v->type == 32) {
		uint16_t flags = fs_le16(&b.u.f32.ext_flags);
		v->root_cluster = fs_le32(&b.u.f32.root_cluster);
		if (v->root_cluster < 2 || v->root_cluster > v->clusters + 1)
			return FAT_E_ROOT_CLUSTER;
		if (fs_le16(&b.u.f32.fs_version) != 0)
			return FAT_E_FS_VERSION;
		if (flags & 0x80) {
			/* Mirroring off: only the active FAT is current. */
			if ((flags & 0x0F) >= b.fats)
				return FAT_E_ACTIVE_FAT;
			v->fat_start += (flags & 0x0F) * fatsz;
			v->mirror = 0;
		}
		v->fsinfo = fs_le16(&b.u.f32.fsinfo);
		if (v->fsinfo == 0 || v->fsinfo == 0xFFFF || v->fsinfo >= v->fat0_start)
			v->fsinfo = 0;
		v->root_sectors = 0;
	}
	if (total > dev->sectors)
		return FAT_E_BEYOND_DEVICE;
	{
		const struct fat_ebpb *e = v->type == 32 ? &b.u.f32.ebpb : &b.u.f16.ebpb;
		if (e->boot_sig == 0x29) {
			v->serial = fs_le32(&e->serial);
			fat_copy_label(v->label, e->label);
		}
	}
	return FAT_OK;
}

/* The byte at offset off of the FAT, through the one-sector cache. */
static int fat_byte(struct fat_vol *v, uint32_t off, uint8_t *out)
{
	uint32_t lba = v->fat_start + (off >> 9);
	if (!v->cache_valid || v->cache_lba != lba) {
		v->cache_valid = 0;
		if (blk_read(v->dev, lba, 1, v->cache) != BLK_OK)
			return FAT_E_IO;
		v->cache_lba = lba;
		v->cache_valid = 1;
	}
	*out = v->cache[off & (BLK_SECTOR - 1)];
	return FAT_OK;
}

int fat_next_cluster(struct fat_vol *v, uint32_t c, uint32_t *next)
{
	uint8_t b[4];
	uint32_t val, off, i, n, bad;
	int rc;
	if (c < 2 || c > v->clusters + 1)
		return FAT_E_CHAIN_RANGE;
	if (v->type == 12) {
		off = c + (c >> 1);
		n = 2;
	} else {
		off = c * (uint32_t)(v->type >> 3);
		n = (uint32_t)(v->type >> 3);
	}
	for (i = 0; i < n; i++) {
		rc = fat_byte(v, off + i, &b[i]); /* FAT12 entries may straddle two sectors */
		if (rc)
			return rc;
	}
	if (v->type == 12) {
		val = b[0] | ((uint32_t)b[1] << 8);
		val = (c & 1) ? val >> 4 : val & 0xFFF;
		bad = 0xFF7;
	} else if (v->type == 16) {
		val = b[0] | ((uint32_t)b[1] << 8);
		bad = 0xFFF7;
	} else {
		val = fs_le32(b) & 0x0FFFFFFF;
		bad = 0x0FFFFFF7;
	}
	if (val > bad) {
		*next = FAT_EOC;
		return FAT_OK;
	}
	if (val == bad)
		return FAT_E_CHAIN_BAD;
	if (val == 0)
		return FAT_E_CHAIN_FREE;
	if (val < 2 || val > v->clusters + 1)
		return FAT_E_CHAIN_RANGE;
	*next = val;
	return FAT_OK;
}

uint64_t fat_cluster_lba(const struct fat_vol *v, uint32_t c)
{
	return v->data_start + ((uint64_t)(c - 2) << v->clus_shift);
}

/* Start a listing at first_cluster (0: the fixed root). */
static int fat_dir_start(struct fat_vol *v, uint32_t first_cluster, struct fat_dir *d)
{
	FS_MEMSET(d, 0, sizeof(*d));
	d->vol = v;
	if (first_cluster == 0 && v->type == 32)
		first_cluster = v->root_cluster;
	if (first_cluster && (first_cluster < 2 || first_cluster > v->clusters + 1))
		return FAT_E_CHAIN_RANGE;
	d->first_cluster = first_cluster;
	d->cluster = first_cluster;
	d->mark = first_cluster;
	d->power = 1;
	return FAT_OK;
}

int fat_dir_open_root(struct fat_vol *v, struct fat_dir *d)
{
	if (!v || !d)
		return FAT_E_BAD_ARG;
	return fat_dir_start(v, 0, d);
}

int fat_dir_open(struct fat_vol *v, const struct fat_file *f, struct fat_dir *d)
{
	if (!v || !f || !d)
		return FAT_E_BAD_ARG;
	if (!(f->attr & FAT_ATTR_DIR))
		return FAT_E_NOT_DIR;
	return fat_dir_start(v, f->first_cluster, d);
}

/* Checksum of an 8.3 name, as stored in each of its long-name entries. */
static uint8_t fat_lfn_checksum(const uint8_t name[11])
{
	uint8_t sum = 0;
	int i;
	for (i = 0; i < 11; i++)
		sum = (uint8_t)(((sum & 1) << 7) + (sum >> 1) + name[i]);
	return sum;
}

/* Take in one long-name entry: start, continue or abandon the name being assembled. */
static void fat_lfn_add(struct fat_dir *d, const uint8_t *e)
{
	const struct fat_lfn *l = (const struct fat_lfn *)e;
	uint32_t seq = l->ord & 0x1F, i, base;
	if (l->ord & 0x40) {
		if (seq < 1 || seq > 20) {
			d->lfn_ok = 0;
			return;
		}
		FS_MEMSET(d->lfn, 0, sizeof(d->lfn));
		d->lfn_sum = l->checksum;
		d->lfn_ok = 1;
	} else if (!d->lfn_ok || d->lfn_expect == 0 || seq != d->lfn_expect || l->checksum != d->lfn_sum) {
		d->lfn_ok = 0;
		return;
	}
	base = (seq - 1) * 13;
	for (i = 0; i < 5; i++)
		d->lfn[base + i] = fs_le16(&l->name1[i]);
	for (i = 0; i < 6; i++)
		d->lfn[base + 5 + i] = fs_le16(&l->name2[i]);
	for (i = 0; i < 2; i++)
		d->lfn[base + 11 + i] = fs_le16(&l->name3[i]);
	d->lfn_expect = (uint8_t)(seq - 1);
}

/* Fill out from a short entry (and the long name assembled before it, if it belongs to it). */
static void fat_fill(struct fat_dir *d, const struct fat_dirent *e, struct fat_file *out)
{
	uint8_t name[11];
	size_t pos = 0, sp = 0;
	int i, n, in_ext = 0;
	FS_MEMCPY(name, e->name, 11);
	if (name[0] == 0x05)
		name[0] = 0xE5; /* 0x05 stands for a leading 0xE5 (a lead byte in Kanji code pages) */
	out->attr = e->attr;
	out->first_cluster = fs_le16(&e->cluster_lo) |
		(d->vol->type == 32 ? (uint32_t)fs_le16(&e->cluster_hi) << 16 : 0);
	out->size = (e->attr & FAT_ATTR_DIR) ? 0 : fs_le32(&e->size);
	out->mdate = fs_le16(&e->mdate);
	out->mtime = fs_le16(&e->mtime);
	/* The 8.3 name as stored. */
	for (n = 8; n > 0 && name[n - 1] == ' '; n--)
		;
	for (i = 0; i < n; i++)
		out->short_name[sp++] = (char)name[i];
	for (n = 11; n > 8 && name[n - 1] == ' '; n--)
		;
	if (n > 8) {
		out->short_name[sp++] = '.';
		for (i = 8; i < n; i++)
			out->short_name[sp++] = (char)name[i];
	}
	out->short_name[sp] = 0;
	if (d->lfn_ok && d->lfn_expect == 0 && d->lfn[0] && fat_lfn_checksum(e->name) == d->lfn_sum &&
	    fs_utf16_to_utf8(d->lfn, FAT_LFN_UNITS, out->name, sizeof(out->name)) == 0) {
		d->lfn_ok = 0;
		return;
	}
	d->lfn_ok = 0;
	/* No (valid) long name: the 8.3 name, lower-cased where the NT case bits say so. */
	for (i = 0; out->short_name[i]; i++) {
		uint8_t c = (uint8_t)out->short_name[i];
		if (c == '.')
			in_ext = 1;
		else if (c >= 'A' && c <= 'Z' && (e->nt_case & (in_ext ? 0x10 : 0x08)))
			c = (uint8_t)(c + 32);
		utf8_put(out->name, sizeof(out->name), &pos, c < 0x80 ? c : fat_cp437[c - 0x80]);
	}
	out->name[pos] = 0;
}

int fat_dir_next(struct fat_dir *d, struct fat_file *out)
{
	struct fat_vol *v;
	if (!d || !out || !d->vol)
		return FAT_E_BAD_ARG;
	v = d->vol;
	while (!d->done) {
		const uint8_t *e;
		uint64_t lba;
		int rc;
		if (d->count >= FAT_DIR_MAX_ENTRIES) {
			d->done = 1;
			return FAT_E_DIR_TOO_BIG;
		}
		if (d->first_cluster == 0) {
			if (d->sector >= v->root_sectors)
				break;
			lba = v->root_start + d->sector;
		} else {
			if (d->sector == v->sec_per_clus) {
				uint32_t next;
				rc = fat_next_cluster(v, d->cluster, &next);
				if (rc) {
					d->done = 1;
					return rc;
				}
				if (next == FAT_EOC)
					break;
				/*
				 * A loop is seen within ~3x its length (Brent: compare with a
				 * mark moved at powers of two); the count is the hard bound.
				 */
				if (++d->steps > v->clusters || next == d->mark) {
					d->done = 1;
					return FAT_E_CHAIN_LOOP;
				}
				if (++d->lam == d->power) {
					d->mark = next;
					d->power <<= 1;
					d->lam = 0;
				}
				d->cluster = next;
				d->sector = 0;
			}
			lba = fat_cluster_lba(v, d->cluster) + d->sector;
		}
		if (!d->buf_valid || d->buf_lba != lba) {
			d->buf_valid = 0;
			if (lba >= v->dev->sectors || blk_read(v->dev, lba, 1, d->buf) != BLK_OK) {
				d->done = 1;
				return FAT_E_IO;
			}
			d->buf_lba = lba;
			d->buf_valid = 1;
		}
		e = d->buf + d->entry * 32;
		if (++d->entry == BLK_SECTOR / 32) {
			d->entry = 0;
			d->sector++;
		}
		d->count++;
		if (e[0] == 0x00)
			break; /* end marker: nothing after it is in use */
		if (e[0] == 0xE5) {
			d->lfn_ok = 0;
			continue;
		}
		if ((e[11] & 0x3F) == FAT_ATTR_LFN) {
			fat_lfn_add(d, e);
			continue;
		}
		if ((e[11] & FAT_ATTR_VOLUME) || e[0] == '.') {
			d->lfn_ok = 0;
			continue;
		}
		FS_MEMSET(out, 0, sizeof(*out));
		fat_fill(d, (const struct fat_dirent *)e, out);
		out->ent_lba = d->buf_lba;
		out->ent_off = (uint16_t)(e - d->buf);
		return FAT_OK;
	}
	d->done = 1;
	return FAT_E_END;
}

int fat_name_eq(const char *a, const char *b)
{
	while (*a && fs_lower(*a) == fs_lower(*b)) {
		a++;
		b++;
	}
	return *a == 0 && *b == 0;
}

/* Nonzero when name[0..len) equals s ignoring ASCII case. */
static int fat_comp_eq(const char *name, size_t len, const char *s)
{
	size_t i;
	for (i = 0; i < len; i++)
		if (!s[i] || fs_lower(name[i]) != fs_lower(s[i]))
			return 0;
	return s[len] == 0;
}

int fat_open_path(struct fat_vol *v, const char *path, struct fat_file *out)
{
	struct fat_dir d;
	struct fat_file f;
	if (!v || !path || !out)
		return FAT_E_BAD_ARG;
	FS_MEMSET(out, 0, sizeof(*out));
	out->name[0] = '/';
	out->attr = FAT_ATTR_DIR;
	out->first_cluster = v->type == 32 ? v->root_cluster : 0;
	for (;;) {
		const char *c;
		size_t len;
		int rc;
		while (*path == '/' || *path == '\\')
			path++;
		if (!*path)
			return FAT_OK;
		for (c = path, len = 0; c[len] && c[len] != '/' && c[len] != '\\'; len++)
			;
		path += len;
		if (len == 1 && c[0] == '.')
			continue;
		if (len >= FAT_NAME_MAX || (len == 2 && c[0] == '.' && c[1] == '.'))
			return FAT_E_BAD_PATH;
		rc = fat_dir_open(v, out, &d);
		if (rc)
			return rc;
		for (;;) {
			rc = fat_dir_next(&d, &f);
			if (rc == FAT_E_END)
				return FAT_E_NOT_FOUND;
			if (rc)
				return rc;
			if (fat_comp_eq(c, len, f.name) || fat_comp_eq(c, len, f.short_name))
				break;
		}
		FS_MEMCPY(out, &f, sizeof(f));
	}
}

/* Nonzero when name ends with one of suffixes (NULL-terminated), ignoring ASCII case. */
int fat_has_suffix(const char *name, const char *const *suffixes)
{
	size_t n = 0;
	while (name[n])
		n++;
	for (; *suffixes; suffixes++) {
		size_t s = 0;
		while ((*suffixes)[s])
			s++;
		if (s <= n && fat_name_eq(name + n - s, *suffixes))
			return 1;
	}
	return 0;
}

int fat_list_suffix(struct fat_vol *v, const char *dir, const char *const *suffixes, fat_list_fn fn, void *ctx)
{
	struct fat_dir d;
	struct fat_file f;
	int rc;
	if (!v || !dir || !suffixes || !fn)
		return FAT_E_BAD_ARG;
	rc = fat_open_path(v, dir, &f);
	if (rc)
		return rc;
	rc = fat_dir_open(v, &f, &d);
	if (rc)
		return rc;
	while ((rc = fat_dir_next(&d, &f)) == FAT_OK) {
		if ((f.attr & FAT_ATTR_DIR) || !fat_has_suffix(f.name, suffixes))
			continue;
		rc = fn(ctx, dir, &f);
		if (rc)
			return rc;
	}
	return rc == FAT_E_END ? FAT_OK : rc;
}

int fat_list_dirs(struct fat_vol *v, const char *const *dirs, const char *const *suffixes, fat_list_fn fn, void *ctx)
{
	if (!dirs)
		return FAT_E_BAD_ARG;
	for (; *dirs; dirs++) {
		int rc = fat_list_suffix(v, *dirs, suffixes, fn, ctx);
		if (rc == FAT_E_NOT_FOUND || rc == FAT_E_NOT_DIR)
			continue;
		if (rc)
			return rc;
	}
	return FAT_OK;
}
