/* ntfs.c: read-only NTFS: boot sector, $MFT records (fix-ups), attribute lists, $I30 index lookup and listing, $DATA runs as extents. */
#include <stddef.h>
#include "ntfs.h"
#include "fs_util.h"

static const struct errtab_msg ntfs_msgs[NTFS_E_COUNT] = {
	[NTFS_OK] = { "ok", "success" },
	[NTFS_E_END] = { "end", "no more directory entries" },
	[NTFS_E_IO] = { "io", "the device could not be read" },
	[NTFS_E_BAD_ARG] = { "bad-arg", "invalid argument" },
	[NTFS_E_NOT_NTFS] = { "not-ntfs", "the boot sector does not name NTFS" },
	[NTFS_E_SIGNATURE] = { "signature", "the NTFS boot sector lacks 0x55AA" },
	[NTFS_E_SECTOR_SIZE] = { "sector-size", "NTFS with sectors other than 512 bytes is not supported" },
	[NTFS_E_CLUSTER_SIZE] = { "cluster-size", "NTFS sectors per cluster invalid, or a cluster over 2 MiB" },
	[NTFS_E_RECORD_SIZE] = { "record-size", "NTFS MFT record or index block size outside 512..4096" },
	[NTFS_E_LAYOUT] = { "layout", "the NTFS $MFT lies outside the volume, or the volume outside its device" },
	[NTFS_E_MFT_FRAGMENTED] = { "mft-fragmented", "the NTFS $MFT has too many fragments to be read here" },
	[NTFS_E_RECORD] = { "record", "an NTFS MFT record is damaged (no FILE signature or a bad header)" },
	[NTFS_E_FIXUP] = { "fixup", "an NTFS record fails its update sequence check (torn write or damage)" },
	[NTFS_E_NOT_IN_USE] = { "not-in-use", "an NTFS index entry points to a free or reused MFT record" },
	[NTFS_E_ATTR] = { "attr", "an NTFS attribute runs outside its record" },
	[NTFS_E_RUNLIST] = { "runlist", "an NTFS run list is malformed or points outside the volume" },
	[NTFS_E_ATTR_LIST] = { "attr-list", "an NTFS attribute list is malformed" },
	[NTFS_E_NO_DATA] = { "no-data", "the NTFS file has no data stream" },
	[NTFS_E_RESIDENT] = { "resident", "the NTFS file's data is stored inside its MFT record (too small for an image)" },
	[NTFS_E_COMPRESSED] = { "compressed",
				"the NTFS file is compressed: not served (uncompress it: compact /u FILE, or copy it)" },
	[NTFS_E_ENCRYPTED] = { "encrypted", "the NTFS file is EFS-encrypted: not served (decrypt it: cipher /d FILE)" },
	[NTFS_E_SPARSE_HOLES] = { "sparse-holes",
				  "the NTFS file is sparse with unallocated holes: not served (fsutil sparse setflag FILE 0 "
				  "after filling it, or copy it)" },
	[NTFS_E_UNINITIALIZED] = { "uninitialized", "the NTFS file's initialized size is below its size: not served" },
	[NTFS_E_TOO_BIG] = { "too-big", "the file is 2 TiB or larger" },
	[NTFS_E_INDEX] = { "index", "an NTFS directory index is damaged" },
	[NTFS_E_INDEX_DEPTH] = { "index-depth", "an NTFS directory index is too deep (a loop)" },
	[NTFS_E_UPCASE] = { "upcase", "the NTFS $UpCase table is missing or not 128 KiB" },
	[NTFS_E_NOT_FOUND] = { "not-found", "no such file or directory" },
	[NTFS_E_NOT_DIR] = { "not-dir", "a path component is not a directory" },
	[NTFS_E_BAD_PATH] = { "bad-path", "invalid path (\"..\", a name over 255 characters, or not UTF-8)" },
};

const char *ntfs_strerror(int err)
{
	return errtab_text(ntfs_msgs, NTFS_E_COUNT, err, "unknown NTFS error");
}

const char *ntfs_errname(int err)
{
	return errtab_name(ntfs_msgs, NTFS_E_COUNT, err, "unknown");
}

#define NTFS_AT_ATTR_LIST 0x20u
#define NTFS_AT_VOLUME_NAME 0x60u
#define NTFS_AT_DATA 0x80u
#define NTFS_AT_INDEX_ROOT 0x90u
#define NTFS_AT_INDEX_ALLOC 0xA0u
#define NTFS_AT_BITMAP 0xB0u
#define NTFS_AT_END 0xFFFFFFFFu
#define NTFS_REC_MFT 0
#define NTFS_REC_VOLUME 3
#define NTFS_REC_ROOT 5
#define NTFS_REC_UPCASE 10
#define NTFS_REF_MASK 0x0000FFFFFFFFFFFFull

int ntfs_probe(const uint8_t sector0[BLK_SECTOR])
{
	return FS_MEMCMP(sector0 + 3, "NTFS    ", 8) == 0;
}

static uint64_t ntfs_clusters(const struct ntfs_vol *v)
{
	return v->total_sectors >> v->clus_shift;
}

/* ------------------------------------------------------------------ run lists */

/* A run-list decoder over [p, end). */
struct ntfs_rl {
	const uint8_t *p, *end;
	uint64_t vcn;
	int64_t lcn;
};

/* The next run into *r: 1, 0 at the end, or -NTFS_E_RUNLIST. */
static int ntfs_rl_next(struct ntfs_vol *v, struct ntfs_rl *rl, struct ntfs_run *r)
{
	uint8_t h;
	uint32_t ls, os;
	uint64_t len = 0;
	int64_t off = 0;
	if (rl->p >= rl->end)
		return -NTFS_E_RUNLIST;
	h = *rl->p++;
	if (h == 0)
		return 0;
	ls = h & 15;
	os = h >> 4;
	if (ls == 0 || ls > 8 || os > 8 || rl->p + ls + os > rl->end)
		return -NTFS_E_RUNLIST;
	for (uint32_t i = 0; i < ls; i++)
		len |= (uint64_t)rl->p[i] << (8 * i);
	for (uint32_t i = 0; i < os; i++)
		off |= (int64_t)((uint64_t)rl->p[ls + i] << (8 * i));
	if (os && os < 8 && (rl->p[ls + os - 1] & 0x80))
		off |= (int64_t)(~0ull << (8 * os));        /* sign-extend */
	rl->p += ls + os;
	if (len == 0 || len > ntfs_clusters(v))
		return -NTFS_E_RUNLIST;
	r->vcn = rl->vcn;
	r->len = len;
	if (os == 0) {
		r->lcn = -1;                                 /* a hole (sparse) */
	} else {
		rl->lcn += off;
		if (rl->lcn < 0 || (uint64_t)rl->lcn + len > ntfs_clusters(v))
			return -NTFS_E_RUNLIST;
		r->lcn = rl->lcn;
	}
	rl->vcn += len;
	return 1;
}

/* Start decoding the run list of non-resident attribute a (attr_len bytes). */
static int ntfs_rl_init(struct ntfs_rl *rl, const uint8_t *a, uint32_t attr_len)
{
	uint16_t off = fs_le16(a + 32);
	if (attr_len < 64 || off < 64 || off >= attr_len)
		return NTFS_E_ATTR;
	rl->p = a + off;
	rl->end = a + attr_len;
	rl->vcn = fs_le64(a + 16);
	rl->lcn = 0;
	return NTFS_OK;
}

/* The LBA of byte off of the data mapped by runs[0..n); NTFS_E_RUNLIST if not mapped. */
static int ntfs_runs_lba(const struct ntfs_vol *v, const struct ntfs_run *runs, uint32_t n, uint64_t off,
			 uint64_t *lba)
{
	uint64_t vcn = off >> (9 + v->clus_shift);
	for (uint32_t i = 0; i < n; i++) {
		if (vcn >= runs[i].vcn && vcn < runs[i].vcn + runs[i].len) {
			if (runs[i].lcn < 0)
				return NTFS_E_RUNLIST;
			*lba = (((uint64_t)runs[i].lcn + (vcn - runs[i].vcn)) << v->clus_shift) +
			       ((off >> 9) & ((1u << v->clus_shift) - 1));
			return NTFS_OK;
		}
	}
	return NTFS_E_RUNLIST;
}

/* ------------------------------------------------------------------ records */

/* Apply the update sequence of a size-byte multi-sector record in buf (FILE or INDX). */
static int ntfs_fixup(uint8_t *buf, uint32_t size)
{
	uint32_t off = fs_le16(buf + 4), cnt = fs_le16(buf + 6);
	if (cnt != size / BLK_SECTOR + 1 || (off & 1) || off < 8 || off + 2 * cnt > size)
		return NTFS_E_FIXUP;
	for (uint32_t i = 1; i < cnt; i++) {
		uint8_t *end = buf + i * BLK_SECTOR - 2;
		if (end[0] != buf[off] || end[1] != buf[off + 1])
			return NTFS_E_FIXUP;
		end[0] = buf[off + 2 * i];
		end[1] = buf[off + 2 * i + 1];
	}
	return NTFS_OK;
}

/* Read MFT record no into buf and check it: signature, fix-ups, header offsets. */
static int ntfs_read_record(struct ntfs_vol *v, uint64_t no, uint8_t *buf)
{
	uint64_t off = no * v->rec_size;
	uint32_t first, used;
	if (no > (NTFS_REF_MASK >> 1))
		return NTFS_E_RECORD;
	for (uint32_t s = 0; s < v->rec_size / BLK_SECTOR; s++) {
		uint64_t lba;
		int rc = ntfs_runs_lba(v, v->mft, v->mft_nruns, off + s * BLK_SECTOR, &lba);
		if (rc)
			return NTFS_E_RECORD;
		if (lba >= v->dev->sectors || blk_read(v->dev, lba, 1, buf + s * BLK_SECTOR) != BLK_OK)
			return NTFS_E_IO;
	}
	if (FS_MEMCMP(buf, "FILE", 4))
		return NTFS_E_RECORD;
	if (ntfs_fixup(buf, v->rec_size))
		return NTFS_E_FIXUP;
	first = fs_le16(buf + 0x14);
	used = fs_le32(buf + 0x18);
	if (first < 0x30 || (first & 7) || used > v->rec_size || first + 8 > used)
		return NTFS_E_RECORD;
	return NTFS_OK;
}

/*
 * Find the attribute of type whose name is name (ASCII, NULL or "" for
 * unnamed) in record buf, starting after offset *pos (0: the first); its
 * offset in *pos and length in *len. NTFS_E_NOT_FOUND when there is none.
 */
static int ntfs_find_attr(const uint8_t *buf, uint32_t type, const char *name, uint32_t *pos, uint32_t *len)
{
	uint32_t used = fs_le32(buf + 0x18);
	uint32_t off = *pos ? *pos + fs_le32(buf + *pos + 4) : fs_le16(buf + 0x14);
	while (off + 8 <= used) {
		const uint8_t *a = buf + off;
		uint32_t t = fs_le32(a), l;
		if (t == NTFS_AT_END)
			break;
		l = fs_le32(a + 4);
		if (l < 24 || (l & 7) || l > used - off)
			return NTFS_E_ATTR;
		if (t == type) {
			uint32_t nl = a[9], no = fs_le16(a + 10), i;
			size_t want = 0;
			while (name && name[want])
				want++;
			if (no + 2 * nl > l)
				return NTFS_E_ATTR;
			if (nl == want) {
				for (i = 0; i < nl && fs_le16(a + no + 2 * i) == (uint8_t)name[i]; i++)
					;
				if (i == nl) {
					*pos = off;
					*len = l;
					return NTFS_OK;
				}
			}
		}
		off += l;
	}
	return NTFS_E_NOT_FOUND;
}

/* The value of resident attribute a (length l): pointer and size; NTFS_E_ATTR if it does not fit. */
static int ntfs_resident(const uint8_t *a, uint32_t l, const uint8_t **val, uint32_t *vlen)
{
	uint32_t vl = fs_le32(a + 16), vo = fs_le16(a + 20);
	if (a[8] || vo > l || vl > l - vo)
		return NTFS_E_ATTR;
	*val = a + vo;
	*vlen = vl;
	return NTFS_OK;
}

/*
 * Read len bytes at byte off of attribute a (length l, in a record buffer
 * that stays put) into out: resident or through its run list (no array).
 */
static int ntfs_attr_read(struct ntfs_vol *v, const uint8_t *a, uint32_t l, uint64_t off, uint32_t len, uint8_t *out)
{
	if (!a[8]) {
		const uint8_t *val;
		uint32_t vl;
		int rc = ntfs_resident(a, l, &val, &vl);
		if (rc)
			return rc;
		if (off > vl || len > vl - off)
			return NTFS_E_ATTR;
		FS_MEMCPY(out, val + off, len);
		return NTFS_OK;
	}
	if ((off & (BLK_SECTOR - 1)) || (len & (BLK_SECTOR - 1))) {
		/* Unaligned reads (bitmap bytes): through one sector on the stack. */
		uint8_t sec[BLK_SECTOR];
		while (len) {
			uint64_t s = off & ~(uint64_t)(BLK_SECTOR - 1);
			uint32_t in = (uint32_t)(off - s), n = BLK_SECTOR - in < len ? BLK_SECTOR - in : len;
			int rc = ntfs_attr_read(v, a, l, s, BLK_SECTOR, sec);
			if (rc)
				return rc;
			FS_MEMCPY(out, sec + in, n);
			out += n;
			off += n;
			len -= n;
		}
		return NTFS_OK;
	}
	if (off + len > fs_le64(a + 40))             /* allocated size */
		return NTFS_E_ATTR;
	/* One request per run piece (an index block is one request, not one per sector). */
	for (uint32_t done = 0; done < len;) {
		struct ntfs_rl rl;
		struct ntfs_run r;
		uint64_t vcn = (off + done) >> (9 + v->clus_shift), lba, left;
		uint32_t n = (len - done) >> 9;
		int rc = ntfs_rl_init(&rl, a, l), k;
		if (rc)
			return rc;
		while ((k = ntfs_rl_next(v, &rl, &r)) == 1 && !(vcn >= r.vcn && vcn < r.vcn + r.len))
			;
		if (k < 0)
			return -k;
		if (k == 0 || r.lcn < 0)
			return NTFS_E_RUNLIST;
		lba = (((uint64_t)r.lcn + (vcn - r.vcn)) << v->clus_shift) + (((off + done) >> 9) & ((1u << v->clus_shift) - 1));
		/* Sectors from lba to the run's end: clusters left (>= 1: vcn is in the run), capped before the shift. */
		left = r.vcn + r.len - vcn;
		if (left > n)
			left = n;
		left = (left << v->clus_shift) - (((off + done) >> 9) & ((1u << v->clus_shift) - 1));
		if (n > left)
			n = (uint32_t)left;
		if (lba >= v->dev->sectors || n > v->dev->sectors - lba || blk_read(v->dev, lba, n, out + done) != BLK_OK)
			return NTFS_E_IO;
		done += n << 9;
	}
	return NTFS_OK;
}

/* Read the value of attribute list attribute la (length l) into v->alist; its size in *n. */
static int ntfs_read_list(struct ntfs_vol *v, const uint8_t *la, uint32_t l, uint32_t *n)
{
	if (la[8]) {
		uint64_t sz = fs_le64(la + 48);
		if (sz > NTFS_REC_MAX)
			return NTFS_E_ATTR_LIST;
		*n = (uint32_t)sz;
		return ntfs_attr_read(v, la, l, 0, (*n + BLK_SECTOR - 1) & ~(BLK_SECTOR - 1u), v->alist);
	}
	const uint8_t *val;
	int rc = ntfs_resident(la, l, &val, n);
	if (!rc)
		FS_MEMCPY(v->alist, val, *n);
	return rc;
}

/*
 * Find attribute type/name of the file whose base record base_no is in
 * v->rec: there, or through its attribute list in an extension record read
 * into ext (the segment starting at VCN 0). *rec, *pos, *len say where.
 */
static int ntfs_find_any(struct ntfs_vol *v, uint64_t base_no, uint32_t type, const char *name, uint8_t *ext,
			 const uint8_t **rec, uint32_t *pos, uint32_t *len)
{
	uint32_t lpos = 0, llen, lsize, off = 0;
	size_t nlen = 0;
	int rc;
	*pos = 0;
	rc = ntfs_find_attr(v->rec, type, name, pos, len);
	if (rc != NTFS_E_NOT_FOUND) {
		*rec = v->rec;
		return rc;
	}
	if (ntfs_find_attr(v->rec, NTFS_AT_ATTR_LIST, NULL, &lpos, &llen) != NTFS_OK)
		return NTFS_E_NOT_FOUND;
	rc = ntfs_read_list(v, v->rec + lpos, llen, &lsize);
	if (rc)
		return rc;
	while (name && name[nlen])
		nlen++;
	while (off + 26 <= lsize) {
		const uint8_t *e = v->alist + off;
		uint32_t elen = fs_le16(e + 4), i;
		uint64_t ref;
		if (elen < 26 || off + elen > lsize || e[7] + 2u * e[6] > elen)
			return NTFS_E_ATTR_LIST;
		off += elen;
		if (fs_le32(e) != type || e[6] != nlen || fs_le64(e + 8) != 0)
			continue;
		for (i = 0; i < nlen && fs_le16(e + e[7] + 2 * i) == (uint8_t)name[i]; i++)
			;
		ref = fs_le64(e + 16) & NTFS_REF_MASK;
		if (i != nlen || ref == base_no)
			continue;
		rc = ntfs_read_record(v, ref, ext);
		if (rc)
			return rc;
		if ((fs_le64(ext + 0x20) & NTFS_REF_MASK) != base_no)
			return NTFS_E_ATTR_LIST;
		*pos = 0;
		rc = ntfs_find_attr(ext, type, name, pos, len);
		if (rc)
			return rc == NTFS_E_NOT_FOUND ? NTFS_E_ATTR_LIST : rc;
		*rec = ext;
		return NTFS_OK;
	}
	return NTFS_E_NOT_FOUND;
}

/* Decode the unnamed $DATA run list of record buf (no attribute list allowed) into runs[0..cap). */
static int ntfs_data_runs(struct ntfs_vol *v, const uint8_t *buf, struct ntfs_run *runs, uint32_t cap, uint32_t *n,
			  uint64_t *size)
{
	uint32_t pos = 0, len;
	struct ntfs_rl rl;
	int rc, k;
	if (ntfs_find_attr(buf, NTFS_AT_ATTR_LIST, NULL, &pos, &len) == NTFS_OK)
		return NTFS_E_MFT_FRAGMENTED;
	pos = 0;
	rc = ntfs_find_attr(buf, NTFS_AT_DATA, NULL, &pos, &len);
	if (rc)
		return rc == NTFS_E_NOT_FOUND ? NTFS_E_NO_DATA : rc;
	if (!buf[pos + 8])
		return NTFS_E_RESIDENT;
	rc = ntfs_rl_init(&rl, buf + pos, len);
	if (rc)
		return rc;
	*size = fs_le64(buf + pos + 48);
	*n = 0;
	while ((k = ntfs_rl_next(v, &rl, &runs[*n])) == 1) {
		if (runs[*n].lcn < 0)
			return NTFS_E_RUNLIST;
		if (++*n == cap)
			return NTFS_E_MFT_FRAGMENTED;
	}
	return k < 0 ? -k : NTFS_OK;
}

/* ------------------------------------------------------------------ mount, upcase */

/* Size from a boot-sector "clusters per record" byte: positive counts clusters, negative is 2^-x bytes. */
static uint32_t ntfs_rec_bytes(uint8_t b, uint32_t clus_bytes)
{
	int8_t c = (int8_t)b;
	if (c > 0)
		return (uint32_t)c * clus_bytes > NTFS_REC_MAX ? 0 : (uint32_t)c * clus_bytes;
	if (c < -12 || c > -9)
		return 0;
	return 1u << -c;
}

int ntfs_mount(struct ntfs_vol *v, struct blk_dev *dev)
{
	uint8_t *b;
	uint32_t spc_shift, clus_bytes, pos = 0, len;
	uint64_t mft_lcn, size;
	int rc;
	if (!v || !dev)
		return NTFS_E_BAD_ARG;
	FS_MEMSET(v, 0, sizeof(*v));
	v->dev = dev;
	b = v->rec;
	if (!dev->sectors || blk_read(dev, 0, 1, b) != BLK_OK)
		return NTFS_E_IO;
	if (!ntfs_probe(b))
		return NTFS_E_NOT_NTFS;
	if (b[510] != 0x55 || b[511] != 0xAA)
		return NTFS_E_SIGNATURE;
	if (fs_le16(b + 11) != 512)
		return NTFS_E_SECTOR_SIZE;
	if (b[13] <= 0x80) {
		if (b[13] == 0 || (b[13] & (b[13] - 1)))
			return NTFS_E_CLUSTER_SIZE;
		for (spc_shift = 0; (1u << spc_shift) < b[13]; spc_shift++)
			;
	} else {
		spc_shift = 256u - b[13];                     /* 2^n sectors: clusters over 64 KiB */
		if (spc_shift > 12)
			return NTFS_E_CLUSTER_SIZE;
	}
	clus_bytes = 512u << spc_shift;
	v->clus_shift = spc_shift;
	v->rec_size = ntfs_rec_bytes(b[0x40], clus_bytes);
	v->idx_size = ntfs_rec_bytes(b[0x44], clus_bytes);
	if (v->rec_size < 512 || v->rec_size > NTFS_REC_MAX || (v->rec_size & (v->rec_size - 1)) ||
	    v->idx_size < 512 || v->idx_size > NTFS_REC_MAX || (v->idx_size & (v->idx_size - 1)))
		return NTFS_E_RECORD_SIZE;
	v->total_sectors = fs_le64(b + 0x28);
	mft_lcn = fs_le64(b + 0x30);
	v->serial = fs_le64(b + 0x48);
	if (v->total_sectors > dev->sectors + 1)           /* the backup boot sector sits just past the volume */
		return NTFS_E_LAYOUT;
	if (v->total_sectors > dev->sectors)
		v->total_sectors = dev->sectors;
	if (mft_lcn >= ntfs_clusters(v) || ((mft_lcn << spc_shift) + v->rec_size / 512) > v->total_sectors)
		return NTFS_E_LAYOUT;
	/* $MFT's record 0 is at the start of $MFT: read it through a provisional one-run map, then its own runs. */
	v->mft[0].vcn = 0;
	v->mft[0].len = (v->rec_size + clus_bytes - 1) / clus_bytes;
	v->mft[0].lcn = (int64_t)mft_lcn;
	v->mft_nruns = 1;
	rc = ntfs_read_record(v, NTFS_REC_MFT, v->rec);
	if (rc)
		return rc;
	{
		struct ntfs_run tmp[NTFS_MFT_RUNS];
		uint32_t n;
		rc = ntfs_data_runs(v, v->rec, tmp, NTFS_MFT_RUNS, &n, &size);
		if (rc)
			return rc == NTFS_E_RESIDENT || rc == NTFS_E_NO_DATA ? NTFS_E_RECORD : rc;
		FS_MEMCPY(v->mft, tmp, sizeof(tmp));
		v->mft_nruns = n;
	}
	/* $UpCase: 65536 units. */
	rc = ntfs_read_record(v, NTFS_REC_UPCASE, v->rec);
	if (rc)
		return rc;
	rc = ntfs_data_runs(v, v->rec, v->up, NTFS_UPCASE_RUNS, &v->up_nruns, &size);
	if (rc || size != 131072)
		return rc == NTFS_E_IO || rc == NTFS_E_FIXUP ? rc : NTFS_E_UPCASE;
	{
		uint64_t lba;
		if (ntfs_runs_lba(v, v->up, v->up_nruns, 0, &lba) || lba >= dev->sectors ||
		    blk_read(dev, lba, 1, v->up_buf) != BLK_OK)
			return NTFS_E_UPCASE;
		for (uint32_t i = 0; i < 128; i++)
			v->up_ascii[i] = fs_le16(v->up_buf + 2 * i);
		v->up_lba = lba;
		v->up_valid = 1;
	}
	/* $Volume's name: the label. */
	if (ntfs_read_record(v, NTFS_REC_VOLUME, v->rec) == NTFS_OK &&
	    ntfs_find_attr(v->rec, NTFS_AT_VOLUME_NAME, NULL, &pos, &len) == NTFS_OK) {
		const uint8_t *val;
		uint32_t vl;
		if (ntfs_resident(v->rec + pos, len, &val, &vl) == NTFS_OK) {
			uint16_t u[32];
			uint32_t n = vl / 2 > 32 ? 32 : vl / 2;
			for (uint32_t i = 0; i < n; i++)
				u[i] = fs_le16(val + 2 * i);
			fs_utf16_to_utf8(u, n, v->label, sizeof(v->label));
		}
	}
	return NTFS_OK;
}

uint16_t ntfs_upcase(struct ntfs_vol *v, uint16_t u)
{
	uint64_t lba;
	if (u < 128)
		return v->up_ascii[u];
	if (ntfs_runs_lba(v, v->up, v->up_nruns, (uint64_t)u * 2, &lba))
		return u;
	if (!v->up_valid || v->up_lba != lba) {
		v->up_valid = 0;
		if (lba >= v->dev->sectors || blk_read(v->dev, lba, 1, v->up_buf) != BLK_OK)
			return u;
		v->up_lba = lba;
		v->up_valid = 1;
	}
	return fs_le16(v->up_buf + ((u * 2) & (BLK_SECTOR - 1)));
}

/* ------------------------------------------------------------------ index entries */

/* Check index entry e at pos of a node ending at end; its length in *elen. */
static int ntfs_entry_ok(const uint8_t *e, uint32_t pos, uint32_t end, uint32_t *elen)
{
	uint32_t len, klen, flags;
	if (pos + 16 > end)
		return NTFS_E_INDEX;
	len = fs_le16(e + 8);
	klen = fs_le16(e + 10);
	flags = fs_le32(e + 12);
	if (len < 16 || (len & 7) || len > end - pos)
		return NTFS_E_INDEX;
	if (!(flags & 2)) {
		if (klen < 66 || 16 + klen > len || 66 + 2u * e[16 + 64] > klen)
			return NTFS_E_INDEX;
	}
	if ((flags & 1) && len < 24)
		return NTFS_E_INDEX;
	*elen = len;
	return NTFS_OK;
}

/* Fill out from index entry e (not the last entry). */
static void ntfs_entry_file(const uint8_t *e, struct ntfs_file *out)
{
	const uint8_t *k = e + 16;
	uint16_t u[NTFS_NAME_UNITS];
	uint32_t n = k[64];
	FS_MEMSET(out, 0, sizeof(*out));
	out->mft_ref = fs_le64(e);
	out->size = fs_le64(k + 48);
	if (fs_le32(k + 56) & 0x10000000u)
		out->flags |= NTFS_F_DIR;
	for (uint32_t i = 0; i < n; i++)
		u[i] = fs_le16(k + 66 + 2 * i);
	fs_utf16_to_utf8(u, n, out->name, sizeof(out->name));
}

/* Read index block at byte off of $INDEX_ALLOCATION (attribute at rec+apos) into buf; entries' [pos, end). */
static int ntfs_read_block(struct ntfs_vol *v, const uint8_t *rec, uint32_t apos, uint32_t alen, uint64_t off,
			   uint8_t *buf, uint32_t *pos, uint32_t *end)
{
	uint32_t first, total;
	int rc = ntfs_attr_read(v, rec + apos, alen, off, v->idx_size, buf);
	if (rc)
		return rc;
	if (FS_MEMCMP(buf, "INDX", 4) || ntfs_fixup(buf, v->idx_size))
		return NTFS_E_INDEX;
	first = fs_le32(buf + 0x18);
	total = fs_le32(buf + 0x1C);
	if (first < 16 || total > v->idx_size - 0x18 || first > total)
		return NTFS_E_INDEX;
	*pos = 0x18 + first;
	*end = 0x18 + total;
	return NTFS_OK;
}

/* The $INDEX_ROOT "$I30" of directory record base_no (in v->rec): its record in *rec, entries' [pos, end) within it. */
static int ntfs_root_entries(struct ntfs_vol *v, uint64_t base_no, const uint8_t **rec, uint32_t *pos, uint32_t *end)
{
	uint32_t apos, alen, vlen, first, total;
	const uint8_t *val;
	int rc = ntfs_find_any(v, base_no, NTFS_AT_INDEX_ROOT, "$I30", v->rec2, rec, &apos, &alen);
	if (rc)
		return rc == NTFS_E_NOT_FOUND ? NTFS_E_NOT_DIR : rc;
	rc = ntfs_resident(*rec + apos, alen, &val, &vlen);
	if (rc || vlen < 32)
		return NTFS_E_INDEX;
	first = fs_le32(val + 16);
	total = fs_le32(val + 20);
	if (first < 16 || first > total || total > vlen - 16)
		return NTFS_E_INDEX;
	*pos = (uint32_t)(val - *rec) + 16 + first;
	*end = (uint32_t)(val - *rec) + 16 + total;
	return NTFS_OK;
}

/* The $INDEX_ALLOCATION "$I30" of directory base_no (in v->rec), non-resident: 1 with *rec/pos/len, 0 if none, or -err. */
static int ntfs_alloc_attr(struct ntfs_vol *v, uint64_t base_no, const uint8_t **rec, uint32_t *pos, uint32_t *len)
{
	int rc = ntfs_find_any(v, base_no, NTFS_AT_INDEX_ALLOC, "$I30", v->rec3, rec, pos, len);
	if (rc == NTFS_E_NOT_FOUND)
		return 0;
	if (rc)
		return -rc;
	return (*rec)[*pos + 8] ? 1 : -NTFS_E_INDEX;
}

/* Read directory record no into v->rec, checking it is a directory in use with sequence seq (0: any). */
static int ntfs_dir_record(struct ntfs_vol *v, uint64_t ref)
{
	int rc = ntfs_read_record(v, ref & NTFS_REF_MASK, v->rec);
	if (rc)
		return rc;
	if (!(fs_le16(v->rec + 0x16) & 1) || ((ref >> 48) && fs_le16(v->rec + 0x10) != (ref >> 48)))
		return NTFS_E_NOT_IN_USE;
	if (!(fs_le16(v->rec + 0x16) & 2))
		return NTFS_E_NOT_DIR;
	return NTFS_OK;
}

/* ------------------------------------------------------------------ listing */

/* log2 of a power of two (no 64-bit division in the freestanding build). */
static uint32_t ntfs_log2(uint32_t x)
{
	uint32_t k = 0;
	while ((1u << k) < x)
		k++;
	return k;
}

int ntfs_dir_open(struct ntfs_vol *v, const struct ntfs_file *f, struct ntfs_dir *d)
{
	uint32_t pos, end, apos = 0, alen;
	const uint8_t *rec;
	int rc;
	if (!v || !f || !d)
		return NTFS_E_BAD_ARG;
	if (!(f->flags & NTFS_F_DIR))
		return NTFS_E_NOT_DIR;
	FS_MEMSET(d, 0, sizeof(*d) - sizeof(d->buf));
	d->vol = v;
	d->rec_no = f->mft_ref;
	rc = ntfs_dir_record(v, f->mft_ref);
	if (rc)
		return rc;
	rc = ntfs_root_entries(v, f->mft_ref & NTFS_REF_MASK, &rec, &pos, &end);
	if (rc)
		return rc;
	if (end - pos > sizeof(d->buf))
		return NTFS_E_INDEX;
	FS_MEMCPY(d->buf, rec + pos, end - pos);
	d->pos = 0;
	d->end = end - pos;
	rc = ntfs_alloc_attr(v, f->mft_ref & NTFS_REF_MASK, &rec, &apos, &alen);
	if (rc < 0)
		return -rc;
	if (rc)
		d->nblocks = fs_le64(rec + apos + 48) >> ntfs_log2(v->idx_size);
	return NTFS_OK;
}

/* Is index block b of directory base_no (in v->rec) in use by its $BITMAP "$I30"? 1, 0, or -err. */
static int ntfs_block_used(struct ntfs_vol *v, uint64_t base_no, uint64_t b)
{
	uint32_t apos, alen;
	const uint8_t *rec;
	uint8_t byte;
	int rc = ntfs_find_any(v, base_no, NTFS_AT_BITMAP, "$I30", v->rec2, &rec, &apos, &alen);
	if (rc)
		return -NTFS_E_INDEX;
	rc = ntfs_attr_read(v, rec + apos, alen, b >> 3, 1, &byte);
	if (rc)
		return -rc;
	return (byte >> (b & 7)) & 1;
}

int ntfs_dir_next(struct ntfs_dir *d, struct ntfs_file *out)
{
	struct ntfs_vol *v;
	if (!d || !out)
		return NTFS_E_BAD_ARG;
	v = d->vol;
	while (d->phase < 2) {
		while (d->pos < d->end) {
			const uint8_t *e = d->buf + d->pos;
			uint32_t elen;
			int rc = ntfs_entry_ok(e, d->pos, d->end, &elen);
			if (rc) {
				d->phase = 2;
				return rc;
			}
			if (fs_le32(e + 12) & 2) {
				d->pos = d->end;
				break;
			}
			d->pos += elen;
			/* DOS 8.3 aliases duplicate their Win32 names; records 0..15 are metafiles (and "." of the root). */
			if (e[16 + 65] == 2 || (fs_le64(e) & NTFS_REF_MASK) < 16)
				continue;
			ntfs_entry_file(e, out);
			return NTFS_OK;
		}
		/* The next INDX block in use. */
		if (d->phase == 0)
			d->phase = 1;
		for (;;) {
			uint32_t apos = 0, alen;
			const uint8_t *rec;
			uint64_t no = d->rec_no & NTFS_REF_MASK;
			int used, rc;
			if (d->block >= d->nblocks) {
				d->phase = 2;
				break;
			}
			rc = ntfs_dir_record(v, d->rec_no);
			used = rc ? -rc : ntfs_block_used(v, no, d->block);
			if (used < 0) {
				d->phase = 2;
				return -used;
			}
			if (!used) {
				d->block++;
				continue;
			}
			rc = ntfs_alloc_attr(v, no, &rec, &apos, &alen);
			rc = rc < 0 ? -rc : rc == 0 ? NTFS_E_INDEX : NTFS_OK;
			if (!rc)
				rc = ntfs_read_block(v, rec, apos, alen, d->block * v->idx_size, d->buf, &d->pos, &d->end);
			d->block++;
			if (rc) {
				d->phase = 2;
				return rc;
			}
			break;
		}
	}
	return NTFS_E_END;
}

/* ------------------------------------------------------------------ lookup */

/* Compare want (upcased, n units) with the name of entry e: <0, 0, >0 as want sorts before, equal, after. */
static int ntfs_cmp(struct ntfs_vol *v, const uint16_t *want, uint32_t n, const uint8_t *e)
{
	const uint8_t *k = e + 16;
	uint32_t m = k[64];
	for (uint32_t i = 0; i < n && i < m; i++) {
		uint16_t c = ntfs_upcase(v, fs_le16(k + 66 + 2 * i));
		if (want[i] != c)
			return want[i] < c ? -1 : 1;
	}
	return n == m ? 0 : n < m ? -1 : 1;
}

/* Find want (upcased) in directory ref (a B+ tree descent): out filled. */
static int ntfs_lookup(struct ntfs_vol *v, uint64_t ref, const uint16_t *want, uint32_t n, struct ntfs_file *out)
{
	uint32_t pos, end, apos = 0, alen;
	const uint8_t *node, *arec = NULL;
	uint64_t no = ref & NTFS_REF_MASK;
	int rc = ntfs_dir_record(v, ref), have_alloc;
	if (rc)
		return rc;
	/* The allocation (maybe in rec3) first, then the root (maybe in rec2): both stay put during the descent. */
	have_alloc = ntfs_alloc_attr(v, no, &arec, &apos, &alen);
	if (have_alloc < 0)
		return -have_alloc;
	rc = ntfs_root_entries(v, no, &node, &pos, &end);
	if (rc)
		return rc;
	for (int depth = 0; depth < NTFS_DEPTH_MAX; depth++) {
		uint64_t vcn = 0;
		int down = 0;
		while (pos < end) {
			const uint8_t *e = node + pos;
			uint32_t elen, flags;
			int c;
			rc = ntfs_entry_ok(e, pos, end, &elen);
			if (rc)
				return rc;
			flags = fs_le32(e + 12);
			c = (flags & 2) ? -1 : ntfs_cmp(v, want, n, e);
			if (c == 0) {
				ntfs_entry_file(e, out);
				return NTFS_OK;
			}
			if (c < 0) {
				if (!(flags & 1))
					return NTFS_E_NOT_FOUND;
				vcn = fs_le64(e + elen - 8);
				down = 1;
				break;
			}
			pos += elen;
		}
		if (!down || !have_alloc)
			return down ? NTFS_E_INDEX : NTFS_E_NOT_FOUND;
		/* Subnode VCNs count clusters, or 512-byte units when index blocks are smaller than a cluster. */
		rc = ntfs_read_block(v, arec, apos, alen,
				     vcn << (v->idx_size >= (512u << v->clus_shift) ? 9 + v->clus_shift : 9), v->idx, &pos,
				     &end);
		if (rc)
			return rc;
		node = v->idx;
	}
	return NTFS_E_INDEX_DEPTH;
}

/* UTF-8 component [s, s+len) to UTF-16 units in u (at most NTFS_NAME_UNITS); the count, or -1. */
static int ntfs_units(const char *s, size_t len, uint16_t *u)
{
	size_t i = 0;
	int n = 0;
	while (i < len) {
		uint32_t b = (uint8_t)s[i], cp;
		int extra = b < 0x80 ? 0 : (b & 0xE0) == 0xC0 ? 1 : (b & 0xF0) == 0xE0 ? 2 : (b & 0xF8) == 0xF0 ? 3 : -1;
		if (extra < 0)
			return -1;
		cp = extra == 0 ? b : extra == 1 ? (b & 0x1F) : extra == 2 ? (b & 0x0F) : (b & 0x07);
		for (int k = 1; k <= extra; k++) {
			if (i + (size_t)k >= len || ((uint8_t)s[i + (size_t)k] & 0xC0) != 0x80)
				return -1;
			cp = (cp << 6) | ((uint8_t)s[i + (size_t)k] & 0x3F);
		}
		i += (size_t)extra + 1;
		if (cp >= 0x10000) {
			if (cp > 0x10FFFF || n + 2 > NTFS_NAME_UNITS)
				return -1;
			u[n++] = (uint16_t)(0xD800 + ((cp - 0x10000) >> 10));
			u[n++] = (uint16_t)(0xDC00 + ((cp - 0x10000) & 0x3FF));
		} else {
			if (n + 1 > NTFS_NAME_UNITS)
				return -1;
			u[n++] = (uint16_t)cp;
		}
	}
	return n;
}

int ntfs_open_path(struct ntfs_vol *v, const char *path, struct ntfs_file *out)
{
	uint16_t want[NTFS_NAME_UNITS];
	if (!v || !path || !out)
		return NTFS_E_BAD_ARG;
	FS_MEMSET(out, 0, sizeof(*out));
	out->name[0] = '/';
	out->flags = NTFS_F_DIR;
	out->mft_ref = NTFS_REC_ROOT;
	for (;;) {
		const char *c;
		size_t len;
		int n, rc;
		while (*path == '/' || *path == '\\')
			path++;
		if (!*path)
			return NTFS_OK;
		for (c = path, len = 0; c[len] && c[len] != '/' && c[len] != '\\'; len++)
			;
		path += len;
		if (len == 1 && c[0] == '.')
			continue;
		if (len == 2 && c[0] == '.' && c[1] == '.')
			return NTFS_E_BAD_PATH;
		if (!(out->flags & NTFS_F_DIR))
			return NTFS_E_NOT_DIR;
		n = ntfs_units(c, len, want);
		if (n <= 0)
			return NTFS_E_BAD_PATH;
		for (int i = 0; i < n; i++)
			want[i] = ntfs_upcase(v, want[i]);
		rc = ntfs_lookup(v, out->mft_ref, want, (uint32_t)n, out);
		if (rc)
			return rc;
	}
}

/* ------------------------------------------------------------------ extents */

/* What ntfs_extents is building. */
struct ntfs_xb {
	struct ext_map *map;       /* runs and cap in map */
	uint64_t nclus;            /* clusters the data size needs */
	uint64_t next_vcn;         /* runs must follow each other */
	uint64_t run_end;
	int uninit;                /* initialized size below the data size */
};

/* Append the runs of $DATA segment a (length l) to b; holes inside the data are refused. */
static int ntfs_add_segment(struct ntfs_vol *v, const uint8_t *a, uint32_t l, struct ntfs_xb *b)
{
	struct ntfs_rl rl;
	struct ntfs_run r;
	int rc = ntfs_rl_init(&rl, a, l), k;
	if (rc)
		return rc;
	if (rl.vcn != b->next_vcn)
		return NTFS_E_ATTR_LIST;
	while ((k = ntfs_rl_next(v, &rl, &r)) == 1) {
		uint64_t len = r.len;
		if (r.vcn >= b->nclus)
			break;                                  /* allocated past the data size */
		if (len > b->nclus - r.vcn)
			len = b->nclus - r.vcn;
		if (r.lcn < 0)
			return NTFS_E_SPARSE_HOLES;
		uint64_t lba = (uint64_t)r.lcn << v->clus_shift, secs = len << v->clus_shift;
		ext_append(b->map, &b->run_end, (uint32_t)(r.vcn << v->clus_shift), lba, (uint32_t)secs);
		b->next_vcn = r.vcn + r.len;
	}
	if (k < 0)
		return -k;
	b->next_vcn = fs_le64(a + 24) + 1;           /* the segment's last VCN + 1 */
	return NTFS_OK;
}

/* Check the first $DATA segment a: flags, sizes; set b->nclus and map sizes. */
static int ntfs_first_segment(struct ntfs_vol *v, const uint8_t *a, struct ntfs_xb *b)
{
	uint16_t flags = fs_le16(a + 12);
	uint64_t size, init;
	if (flags & 0x4000)
		return NTFS_E_ENCRYPTED;
	if (flags & 0x00FF)                          /* a compression unit alone is also set on sparse files */
		return NTFS_E_COMPRESSED;
	if (!a[8])
		return NTFS_E_RESIDENT;
	if (fs_le64(a + 16) != 0)
		return NTFS_E_ATTR_LIST;
	size = fs_le64(a + 48);
	init = fs_le64(a + 56);
	b->uninit = init < size;                     /* reported after the runs: holes are the better reason */
	b->nclus = (size + (512ull << v->clus_shift) - 1) >> (9 + v->clus_shift);
	if ((b->nclus << v->clus_shift) > 0xFFFFFFFFull)
		return NTFS_E_TOO_BIG;
	b->map->size_bytes = size;
	b->map->sectors = (uint32_t)((size + BLK_SECTOR - 1) >> 9);
	b->map->alloc_sectors = (uint32_t)(b->nclus << v->clus_shift);
	return NTFS_OK;
}

/* The runs of f's $DATA through the attribute list of record v->rec (at lpos, llen). */
static int ntfs_list_runs(struct ntfs_vol *v, uint64_t base_no, uint32_t lpos, uint32_t llen, struct ntfs_xb *b)
{
	const uint8_t *list = v->alist;
	uint32_t lsize, off = 0;
	int first = 1, rc = ntfs_read_list(v, v->rec + lpos, llen, &lsize);
	if (rc)
		return rc;
	while (off + 26 <= lsize) {
		const uint8_t *e = list + off;
		uint32_t type = fs_le32(e), elen = fs_le16(e + 4);
		if (elen < 26 || off + elen > lsize)
			return NTFS_E_ATTR_LIST;
		off += elen;
		if (type != NTFS_AT_DATA || e[6] != 0)
			continue;
		uint64_t ref = fs_le64(e + 16), vcn = fs_le64(e + 8);
		uint8_t *rec = (ref & NTFS_REF_MASK) == base_no ? v->rec : v->rec2;
		uint32_t apos = 0, alen;
		if (rec == v->rec2) {
			rc = ntfs_read_record(v, ref & NTFS_REF_MASK, v->rec2);
			if (rc)
				return rc;
			if ((fs_le64(v->rec2 + 0x20) & NTFS_REF_MASK) != base_no)
				return NTFS_E_ATTR_LIST;
		}
		/* The unnamed $DATA segment of that record starting at vcn. */
		for (;;) {
			rc = ntfs_find_attr(rec, NTFS_AT_DATA, NULL, &apos, &alen);
			if (rc)
				return rc == NTFS_E_NOT_FOUND ? NTFS_E_ATTR_LIST : rc;
			if (!rec[apos + 8] ? vcn == 0 : fs_le64(rec + apos + 16) == vcn)
				break;
		}
		if (first) {
			rc = ntfs_first_segment(v, rec + apos, b);
			if (rc)
				return rc;
			first = 0;
		}
		rc = ntfs_add_segment(v, rec + apos, alen, b);
		if (rc)
			return rc;
	}
	if (first)
		return NTFS_E_NO_DATA;
	return b->next_vcn < b->nclus ? NTFS_E_RUNLIST : b->uninit ? NTFS_E_UNINITIALIZED : NTFS_OK;
}

int ntfs_extents(struct ntfs_vol *v, const struct ntfs_file *f, struct ext_map *map, struct ext_run *runs,
		 uint32_t cap)
{
	struct ntfs_xb b;
	uint64_t no;
	uint32_t pos = 0, len;
	int rc;
	if (!v || !f || !map || (!runs && cap))
		return EXT_E_BAD_ARG;
	rc = ext_map_begin(map, v->dev, runs, cap, f->flags & NTFS_F_DIR);
	if (rc)
		return rc;
	FS_MEMSET(&b, 0, sizeof(b));
	b.map = map;
	no = f->mft_ref & NTFS_REF_MASK;
	rc = ntfs_read_record(v, no, v->rec);
	if (rc == NTFS_OK && (!(fs_le16(v->rec + 0x16) & 1) ||
			      ((f->mft_ref >> 48) && fs_le16(v->rec + 0x10) != (f->mft_ref >> 48)) ||
			      (fs_le64(v->rec + 0x20) & NTFS_REF_MASK)))
		rc = NTFS_E_NOT_IN_USE;
	if (rc == NTFS_OK) {
		if (ntfs_find_attr(v->rec, NTFS_AT_ATTR_LIST, NULL, &pos, &len) == NTFS_OK) {
			rc = ntfs_list_runs(v, no, pos, len, &b);
		} else {
			pos = 0;
			rc = ntfs_find_attr(v->rec, NTFS_AT_DATA, NULL, &pos, &len);
			if (rc == NTFS_E_NOT_FOUND)
				rc = NTFS_E_NO_DATA;
			if (!rc)
				rc = ntfs_first_segment(v, v->rec + pos, &b);
			if (!rc)
				rc = ntfs_add_segment(v, v->rec + pos, len, &b);
			if (!rc && b.next_vcn < b.nclus)
				rc = NTFS_E_RUNLIST;
			if (!rc && b.uninit)
				rc = NTFS_E_UNINITIALIZED;
		}
	}
	if (rc) {
		map->fat_err = rc;
		map->needed = 0;
		map->count = 0;
		return rc == NTFS_E_RUNLIST || rc == NTFS_E_IO || rc == NTFS_E_ATTR_LIST || rc == NTFS_E_RECORD ||
				       rc == NTFS_E_FIXUP || rc == NTFS_E_ATTR || rc == NTFS_E_NOT_IN_USE ?
			       EXT_E_CHAIN : EXT_E_FS;
	}
	return ext_map_end(map, NTFS_E_RUNLIST);
}
