/* vhdx.c: opening (file identifier, headers, log replay, region table, metadata), BAT loading, reading and writing VHDX images. */
#include "vhdx.h"
#include "vhdx_util.h"
#include "../block/utf8.h"   /* utf8_put: locator values */

/* ------------------------------------------------------------------ file access */

/* Overlay record kinds (struct in the caller's overlay: off 8, len 4, kind 4, then 4 KiB for data). */
#define VX_OVL_DATA 1u
#define VX_OVL_ZERO 2u

/* Read-only zeros for filling new blocks (a constant, not state). */
#define VX_ZERO_SECTORS 32u
static const uint8_t vx_zeros[VX_ZERO_SECTORS * VHDX_SECTOR];

int vx_read_sectors(struct vhdx *v, uint64_t lba, uint32_t count, void *buf)
{
	uint8_t *out = buf;
	uint64_t dev_secs = v->dev->sectors;
	uint32_t from_dev = 0;
	if (lba < dev_secs)
		from_dev = dev_secs - lba < count ? (uint32_t)(dev_secs - lba) : count;
	if (from_dev && blk_read(v->dev, lba, from_dev, out))
		return VHDX_E_IO;
	if (from_dev < count)
		VX_MEMSET(out + (uint64_t)from_dev * VHDX_SECTOR, 0, (uint64_t)(count - from_dev) * VHDX_SECTOR);
	/* The read-only log replay: records in log order, later ones win. */
	uint64_t lo = lba * VHDX_SECTOR, hi = lo + (uint64_t)count * VHDX_SECTOR;
	for (uint64_t p = 0; p < v->ovl_used;) {
		const uint8_t *r = v->ovl + p;
		uint64_t off = vx_le64(r), len = vx_le32(r + 8);
		uint32_t kind = vx_le32(r + 12);
		uint64_t a = off > lo ? off : lo, b = off + len < hi ? off + len : hi;
		if (a < b) {
			if (kind == VX_OVL_DATA)
				VX_MEMCPY(out + (a - lo), r + VHDX_OVL_REC + (a - off), b - a);
			else
				VX_MEMSET(out + (a - lo), 0, b - a);
		}
		p += VHDX_OVL_REC + (kind == VX_OVL_DATA ? VHDX_PAGE : 0);
	}
	return VHDX_OK;
}

int vx_pread(struct vhdx *v, uint64_t off, uint32_t len, void *buf)
{
	uint8_t *out = buf;
	while (len) {
		uint64_t lba = off / VHDX_SECTOR;
		uint32_t in = (uint32_t)(off % VHDX_SECTOR);
		uint32_t n = VHDX_SECTOR - in < len ? VHDX_SECTOR - in : len;
		if (!in && len >= VHDX_SECTOR) {
			/* Whole sectors straight into the caller's buffer: one device request, not one per sector. */
			uint32_t secs = len / VHDX_SECTOR;
			int r = vx_read_sectors(v, lba, secs, out);
			if (r)
				return r;
			n = secs * VHDX_SECTOR;
			out += n;
			off += n;
			len -= n;
			continue;
		}
		if (v->tmp_lba != lba) {
			v->tmp_lba = UINT64_MAX;
			int r = vx_read_sectors(v, lba, 1, v->tmp);
			if (r)
				return r;
			v->tmp_lba = lba;
		}
		VX_MEMCPY(out, v->tmp + in, n);
		out += n;
		off += n;
		len -= n;
	}
	return VHDX_OK;
}

int vx_write_sectors(struct vhdx *v, uint64_t lba, uint32_t count, const void *buf)
{
	v->tmp_lba = UINT64_MAX;
	v->sbm_lba = UINT64_MAX;
	int r = blk_write(v->dev, lba, count, buf);
	if (r == BLK_E_NOSPACE || r == BLK_E_RANGE)
		return VHDX_E_NOSPACE;
	if (r == BLK_E_RO)
		return VHDX_E_READ_ONLY;
	if (r)
		return VHDX_E_IO;
	if (v->dev->size_bytes > v->file_bytes)
		v->file_bytes = v->dev->size_bytes;
	return VHDX_OK;
}

int vx_zero_sectors(struct vhdx *v, uint64_t lba, uint64_t count)
{
	if (!count)
		return VHDX_OK;
	if (blk_has_write_zeroes(v->dev)) {
		v->tmp_lba = UINT64_MAX;
		v->sbm_lba = UINT64_MAX;
		int r = blk_write_zeroes(v->dev, lba, count);
		if (r == BLK_E_NOSPACE || r == BLK_E_RANGE)
			return VHDX_E_NOSPACE;
		if (r)
			return VHDX_E_IO;
		if (v->dev->size_bytes > v->file_bytes)
			v->file_bytes = v->dev->size_bytes;
		return VHDX_OK;
	}
	while (count) {
		uint32_t n = count < VX_ZERO_SECTORS ? (uint32_t)count : VX_ZERO_SECTORS;
		int r = vx_write_sectors(v, lba, n, vx_zeros);
		if (r)
			return r;
		lba += n;
		count -= n;
	}
	return VHDX_OK;
}

int vx_crc_range(struct vhdx *v, uint64_t off, uint64_t len, uint64_t csum_off, uint32_t *crc)
{
	uint32_t c = 0;
	while (len) {
		uint32_t n = len < VHDX_PAGE ? (uint32_t)len : VHDX_PAGE;
		int r = vx_pread(v, off, n, v->page2);
		if (r)
			return r;
		for (int k = 0; k < 4; k++)
			if (csum_off + k >= off && csum_off + k < off + n)
				v->page2[csum_off + k - off] = 0;
		c = vhdx_crc32c(c, v->page2, n);
		off += n;
		len -= n;
	}
	*crc = c;
	return VHDX_OK;
}

int vhdx_flush(struct vhdx *v)
{
	return blk_flush(v->dev) ? VHDX_E_IO : VHDX_OK;
}

int vhdx_probe(struct blk_dev *dev, uint8_t *sec)
{
	return dev->sectors && !blk_read(dev, 0, 1, sec) && VX_MEMCMP(sec, "vhdxfile", 8) == 0;
}

/* ------------------------------------------------------------------ headers */

void vx_parse_header(const uint8_t *raw, struct vhdx_header *h)
{
	h->checksum = vx_le32(raw + VX_H_CSUM);
	h->seq = vx_le64(raw + VX_H_SEQ);
	VX_MEMCPY(h->file_write.b, raw + VX_H_FWG, 16);
	VX_MEMCPY(h->data_write.b, raw + VX_H_DWG, 16);
	VX_MEMCPY(h->log_guid.b, raw + VX_H_LOGGUID, 16);
	h->log_version = vx_le16(raw + VX_H_LOGVER);
	h->version = vx_le16(raw + VX_H_VER);
	h->log_length = vx_le32(raw + VX_H_LOGLEN);
	h->log_offset = vx_le64(raw + VX_H_LOGOFF);
}

void vx_build_header(const struct vhdx_header *h, uint8_t *page)
{
	VX_MEMSET(page, 0, VX_HDR_SIZE);
	vx_put32(page + VX_H_SIG, VX_SIG_HEAD);
	vx_put64(page + VX_H_SEQ, h->seq);
	VX_MEMCPY(page + VX_H_FWG, h->file_write.b, 16);
	VX_MEMCPY(page + VX_H_DWG, h->data_write.b, 16);
	VX_MEMCPY(page + VX_H_LOGGUID, h->log_guid.b, 16);
	vx_put16(page + VX_H_LOGVER, h->log_version);
	vx_put16(page + VX_H_VER, h->version);
	vx_put32(page + VX_H_LOGLEN, h->log_length);
	vx_put64(page + VX_H_LOGOFF, h->log_offset);
	vx_put32(page + VX_H_CSUM, vhdx_crc32c(0, page, VX_HDR_SIZE));
}

/* Read header copy idx into h; 0 when its signature and CRC-32C are right, else why not. */
static int vx_read_header(struct vhdx *v, int idx, struct vhdx_header *h)
{
	uint64_t off = idx ? VX_HDR_OFF1 : VX_HDR_OFF0;
	int r = vx_pread(v, off, VX_HDR_SIZE, v->page);
	if (r)
		return r;
	if (vx_le32(v->page) != VX_SIG_HEAD)
		return VHDX_E_HEADERS_BAD;
	vx_parse_header(v->page, h);
	vx_put32(v->page + VX_H_CSUM, 0);
	if (vhdx_crc32c(0, v->page, VX_HDR_SIZE) != h->checksum)
		return VHDX_E_HEADERS_BAD;
	return VHDX_OK;
}

/* Write h into header slot idx (sectors 128.. or 256..); the caller flushes. */
static int vx_write_header(struct vhdx *v, const struct vhdx_header *h, int idx)
{
	vx_build_header(h, v->page);
	return vx_write_sectors(v, (idx ? VX_HDR_OFF1 : VX_HDR_OFF0) / VHDX_SECTOR, VX_HDR_SIZE / VHDX_SECTOR, v->page);
}

/*
 * Make h the header: written to the non-current slot with the next
 * sequence number and flushed, then to the other slot the same way, so
 * both copies stay valid and a crash between leaves one valid.
 */
static int vx_update_headers(struct vhdx *v, struct vhdx_header *h)
{
	for (int k = 0; k < 2; k++) {
		int slot = !v->cur;
		h->seq = v->hdr.seq + 1;
		int r = vx_write_header(v, h, slot);
		if (!r)
			r = vhdx_flush(v);
		if (r)
			return r;
		v->hdr = *h;
		v->cur = slot;
		v->hdr_err[slot] = 0;
	}
	v->state &= ~VHDX_ST_HEADER_COPY_BAD;
	return VHDX_OK;
}

/* ------------------------------------------------------------------ log */

/* A validated log entry. */
struct vx_entry {
	uint32_t pos, len, tail, dcount, dpages;
	uint64_t seq, flushed, last;
};

/* Byte offset in the file of byte k of the entry at log position pos (entries wrap around the log). */
static uint64_t vx_log_at(const struct vhdx *v, uint32_t pos, uint64_t k)
{
	return v->hdr.log_offset + (pos + k) % v->hdr.log_length;
}

/*
 * Validate the entry at log position pos (signature, LogGuid, sizes, CRC-32C,
 * descriptors, data sectors); 0 if valid. full = 0: the header's fields and
 * sizes only (an entry vx_log_find validated already: one read, not a read
 * of every page; a full log is walked three times).
 */
static int vx_log_entry(struct vhdx *v, uint32_t pos, struct vx_entry *e, int full)
{
	uint8_t h[VX_L_HDR];
	int r = vx_pread(v, vx_log_at(v, pos, 0), VX_L_HDR, h);
	if (r)
		return r;
	if (vx_le32(h + VX_L_SIG) != VX_SIG_LOGE || VX_MEMCMP(h + VX_L_GUID, v->hdr.log_guid.b, 16))
		return -1;
	e->pos = pos;
	e->len = vx_le32(h + VX_L_LEN);
	e->tail = vx_le32(h + VX_L_TAIL);
	e->seq = vx_le64(h + VX_L_SEQ);
	e->dcount = vx_le32(h + VX_L_DCOUNT);
	e->flushed = vx_le64(h + VX_L_FLUSHED);
	e->last = vx_le64(h + VX_L_LAST);
	if (!e->seq || !e->len || e->len % VHDX_PAGE || e->len > v->hdr.log_length || e->tail % VHDX_PAGE ||
	    e->tail >= v->hdr.log_length || e->dcount > e->len / VX_L_DESC)
		return -1;
	e->dpages = (uint32_t)((VX_L_HDR + (uint64_t)VX_L_DESC * e->dcount + VHDX_PAGE - 1) / VHDX_PAGE);
	uint32_t pages = e->len / VHDX_PAGE;
	if (e->dpages > pages)
		return -1;
	if (!full)
		return VHDX_OK;
	uint32_t crc = 0;
	for (uint32_t p = 0; p < pages; p++) {
		uint64_t off = vx_log_at(v, pos, (uint64_t)p * VHDX_PAGE);
		r = vx_pread(v, off, VHDX_PAGE, v->page2);
		if (r)
			return r;
		if (!p)
			vx_put32(v->page2 + VX_L_CSUM, 0);
		crc = vhdx_crc32c(crc, v->page2, VHDX_PAGE);
	}
	if (crc != vx_le32(h + VX_L_CSUM))
		return -1;
	uint32_t ndata = 0;
	for (uint32_t i = 0; i < e->dcount; i++) {
		uint8_t d[VX_L_DESC];
		r = vx_pread(v, vx_log_at(v, pos, VX_L_HDR + (uint64_t)VX_L_DESC * i), VX_L_DESC, d);
		if (r)
			return r;
		uint32_t sig = vx_le32(d);
		if (vx_le64(d + 24) != e->seq)
			return -1;
		if (sig == VX_SIG_ZERO) {
			uint64_t zl = vx_le64(d + 8);
			if (!zl || zl % VHDX_PAGE || vx_le64(d + 16) % VHDX_PAGE)
				return -1;
		} else if (sig == VX_SIG_DESC) {
			if (vx_le64(d + 16) % VHDX_PAGE || e->dpages + ndata >= pages)
				return -1;
			uint8_t s[8];
			uint64_t so = vx_log_at(v, pos, (uint64_t)(e->dpages + ndata) * VHDX_PAGE);
			r = vx_pread(v, so, 8, s);
			if (r)
				return r;
			if (vx_le32(s) != VX_SIG_DATA || vx_le32(s + 4) != (uint32_t)(e->seq >> 32))
				return -1;
			r = vx_pread(v, so + VHDX_PAGE - 4, 4, s);
			if (r)
				return r;
			if (vx_le32(s) != (uint32_t)e->seq)
				return -1;
			ndata++;
		} else {
			return -1;
		}
	}
	return VHDX_OK;
}

/*
 * Find the active sequence: the valid entry with the highest sequence
 * number whose tail starts a chain of valid entries, each the previous
 * one's sequence number plus one, ending at it. Returns 1 with *tail and
 * *head, 0 if there is none, or a negative vhdx_err.
 */
static int vx_log_find(struct vhdx *v, struct vx_entry *tail, struct vx_entry *head)
{
	uint64_t bound = UINT64_MAX;
	uint32_t len = v->hdr.log_length;
	for (uint32_t round = 0; round <= len / VHDX_PAGE; round++) {
		struct vx_entry best, e;
		int found = 0;
		for (uint32_t pos = 0; pos < len; pos += VHDX_PAGE) {
			int r = vx_log_entry(v, pos, &e, 1);
			if (r > 0)
				return -r;
			if (r == 0 && e.seq < bound && (!found || e.seq > best.seq)) {
				best = e;
				found = 1;
			}
		}
		if (!found)
			return 0;
		/* Walk from the tail to best. */
		struct vx_entry cur;
		int r = vx_log_entry(v, best.tail, &cur, 1);
		if (r > 0)
			return -r;
		int ok = 0;
		if (r == 0) {
			*tail = cur;
			for (uint32_t steps = 0; steps <= len / VHDX_PAGE; steps++) {
				if (cur.pos == best.pos && cur.seq == best.seq) {
					ok = 1;
					break;
				}
				uint32_t next = (uint32_t)((cur.pos + (uint64_t)cur.len) % len);
				struct vx_entry n;
				r = vx_log_entry(v, next, &n, 1);
				if (r > 0)
					return -r;
				if (r || n.seq != cur.seq + 1)
					break;
				cur = n;
			}
		}
		if (ok) {
			*head = best;
			return 1;
		}
		bound = best.seq;
	}
	return 0;
}

/* Replay one entry's descriptors: into the file (writable) or into the overlay (measure: only count bytes). */
static int vx_log_apply(struct vhdx *v, const struct vx_entry *e, int measure, uint64_t *need)
{
	uint32_t ndata = 0;
	for (uint32_t i = 0; i < e->dcount; i++) {
		uint8_t d[VX_L_DESC];
		int r = vx_pread(v, vx_log_at(v, e->pos, VX_L_HDR + (uint64_t)VX_L_DESC * i), VX_L_DESC, d);
		if (r)
			return r;
		int data = vx_le32(d) == VX_SIG_DESC;
		uint64_t off = vx_le64(d + 16);
		uint64_t len = data ? VHDX_PAGE : vx_le64(d + 8);
		/*
		 * Never the file identifier or the headers (updated in place, never
		 * through the log), never the log itself, never absurdly far. The
		 * region tables (192 KiB on) are updated through the log.
		 */
		if (off < VX_RT_OFF0 || len > 0xFFFFF000u || off > (1ull << 50) ||
		    vx_overlap(off, len, v->hdr.log_offset, v->hdr.log_length))
			return VHDX_E_LOG_DESC;
		uint64_t src = data ? vx_log_at(v, e->pos, (uint64_t)(e->dpages + ndata++) * VHDX_PAGE) : 0;
		if (measure) {
			*need += VHDX_OVL_REC + (data ? VHDX_PAGE : 0);
			continue;
		}
		if (data) {
			r = vx_pread(v, src, VHDX_PAGE, v->page);
			if (r)
				return r;
			VX_MEMCPY(v->page, d + 8, 8);       /* leading bytes */
			VX_MEMCPY(v->page + VHDX_PAGE - 4, d + 4, 4); /* trailing bytes */
		}
		if (v->flags & VHDX_OPEN_RDONLY) {
			uint8_t *rec = v->ovl + v->ovl_used;
			vx_put64(rec, off);
			vx_put32(rec + 8, (uint32_t)len);
			vx_put32(rec + 12, data ? VX_OVL_DATA : VX_OVL_ZERO);
			if (data)
				VX_MEMCPY(rec + VHDX_OVL_REC, v->page, VHDX_PAGE);
			v->ovl_used += VHDX_OVL_REC + (data ? VHDX_PAGE : 0);
			v->tmp_lba = UINT64_MAX;
		} else if (data) {
			r = vx_write_sectors(v, off / VHDX_SECTOR, VHDX_PAGE / VHDX_SECTOR, v->page);
			if (r)
				return r;
		} else {
			r = vx_zero_sectors(v, off / VHDX_SECTOR, len / VHDX_SECTOR);
			if (r)
				return r;
		}
	}
	return VHDX_OK;
}

/* Walk the sequence tail..head, applying (or measuring) each entry. */
static int vx_log_walk(struct vhdx *v, const struct vx_entry *tail, const struct vx_entry *head, int measure,
		       uint64_t *need, uint32_t *entries)
{
	struct vx_entry cur = *tail;
	*entries = 0;
	for (uint32_t steps = 0; steps <= v->hdr.log_length / VHDX_PAGE; steps++) {
		int r = vx_log_apply(v, &cur, measure, need);
		if (r)
			return r;
		++*entries;
		if (cur.pos == head->pos && cur.seq == head->seq)
			return VHDX_OK;
		uint32_t next = (uint32_t)((cur.pos + (uint64_t)cur.len) % v->hdr.log_length);
		/* Entries were validated by vx_log_find; on a writable replay the file under them has not changed (the log is never a target). */
		r = vx_log_entry(v, next, &cur, 0);
		if (r)
			return r > 0 ? r : VHDX_E_LOG_DESC;
	}
	return VHDX_E_LOG_DESC;   /* not reached: vx_log_find bounded the same walk */
}

/* Replay the log if the header names one (before anything else is read). */
static int vx_log_replay(struct vhdx *v, const struct vhdx_open_opts *o)
{
	if (vhdx_guid_is_zero(&v->hdr.log_guid))
		return VHDX_OK;
	struct vx_entry tail, head;
	int r = vx_log_find(v, &tail, &head);
	if (r < 0)
		return -r;
	if (r == 0) {
		/* Nothing valid to replay: a writable open says so in the headers (the torn entries stay ignored). */
		v->state |= VHDX_ST_LOG_IGNORED;
		if (v->flags & VHDX_OPEN_RDONLY)
			return VHDX_OK;
		struct vhdx_header h = v->hdr;
		VX_MEMSET(h.log_guid.b, 0, 16);
		h.file_write = v->sess.file_write;
		return vx_update_headers(v, &h);
	}
	if (head.flushed > v->dev->size_bytes)
		return VHDX_E_LOG_TRUNCATED;
	uint64_t need = 0;
	uint32_t n;
	r = vx_log_walk(v, &tail, &head, 1, &need, &n);
	if (r)
		return r;
	v->log_need = need;
	if (v->flags & VHDX_OPEN_RDONLY) {
		if (!o || !o->overlay || o->overlay_bytes < need)
			return VHDX_E_LOG_OVERLAY;
		v->ovl = o->overlay;
		v->ovl_used = 0;
		/* The log area is never a target, so reading it through the growing overlay gives the same bytes. */
		r = vx_log_walk(v, &tail, &head, 0, &need, &n);
		if (r)
			return r;
		if (head.last > v->file_bytes)
			v->file_bytes = head.last;
		v->state |= VHDX_ST_LOG_OVERLAY;
	} else {
		/* The headers get this session's FileWriteGuid before the replay modifies the file (MS-VHDX 2.2.2). */
		struct vhdx_header fh = v->hdr;
		fh.file_write = v->sess.file_write;
		r = vx_update_headers(v, &fh);
		if (r)
			return r;
		r = vx_log_walk(v, &tail, &head, 0, &need, &n);
		if (r)
			return r;
		if (head.last > v->dev->size_bytes) {
			uint64_t last = (head.last + VHDX_SECTOR - 1) / VHDX_SECTOR;
			r = vx_zero_sectors(v, last - 1, 1);
			if (r)
				return r;
		}
		r = vhdx_flush(v);
		if (r)
			return r;
		/* The log is applied: the headers say it is empty (FileWriteGuid: this session). */
		struct vhdx_header h = v->hdr;
		VX_MEMSET(h.log_guid.b, 0, 16);
		h.file_write = v->sess.file_write;
		r = vx_update_headers(v, &h);
		if (r)
			return r;
		v->state |= VHDX_ST_LOG_REPLAYED;
	}
	v->log_replayed = n;
	return VHDX_OK;
}

/* ------------------------------------------------------------------ region table */

/* Validate region table copy idx: signature, entry count, CRC-32C over 64 KiB. */
static int vx_region_copy(struct vhdx *v, int idx, uint32_t *count, uint32_t *crc)
{
	uint64_t off = idx ? VX_RT_OFF1 : VX_RT_OFF0;
	uint8_t h[16];
	int r = vx_pread(v, off, 16, h);
	if (r)
		return r;
	if (vx_le32(h) != VX_SIG_REGI)
		return VHDX_E_REGION_BAD;
	uint32_t c;
	r = vx_crc_range(v, off, VX_RT_SIZE, off + 4, &c);
	if (r)
		return r;
	if (c != vx_le32(h + 4))
		return VHDX_E_REGION_BAD;
	*count = vx_le32(h + 8);
	*crc = c;
	if (*count > VX_MAX_ENTRIES)
		return VHDX_E_REGION_COUNT;
	return VHDX_OK;
}

/* Parse and check the region table: BAT and metadata present, known, in range, not overlapping. */
static int vx_regions(struct vhdx *v)
{
	uint32_t cnt[2] = { 0, 0 }, crc[2] = { 0, 0 };
	for (int i = 0; i < 2; i++) {
		v->rt_err[i] = vx_region_copy(v, i, &cnt[i], &crc[i]);
		if (v->rt_err[i] == VHDX_E_IO)
			return VHDX_E_IO;
	}
	if (v->rt_err[0] && v->rt_err[1])
		return v->rt_err[0] == v->rt_err[1] ? v->rt_err[0] : VHDX_E_REGION_BAD;
	int use = v->rt_err[0] ? 1 : 0;
	if (v->rt_err[0] || v->rt_err[1])
		v->state |= VHDX_ST_REGION_COPY_BAD;
	else if (crc[0] != crc[1] || cnt[0] != cnt[1])
		v->state |= VHDX_ST_REGION_COPIES_DIFFER;
	uint64_t base = use ? VX_RT_OFF1 : VX_RT_OFF0;
	int have_bat = 0, have_meta = 0;
	v->regions = cnt[use];
	for (uint32_t i = 0; i < cnt[use]; i++) {
		uint8_t e[32];
		int r = vx_pread(v, base + 16 + 32ull * i, 32, e);
		if (r)
			return r;
		struct vhdx_guid g;
		VX_MEMCPY(g.b, e, 16);
		uint64_t off = vx_le64(e + 16);
		uint32_t len = vx_le32(e + 24), req = vx_le32(e + 28) & 1u;
		int is_bat = vx_guid_eq(&g, &vx_guid_bat), is_meta = vx_guid_eq(&g, &vx_guid_meta);
		if (!is_bat && !is_meta) {
			if (req)
				return VHDX_E_REGION_UNKNOWN;
			continue;
		}
		if ((is_bat && have_bat) || (is_meta && have_meta))
			return VHDX_E_REGION_DUP;
		if (off % VHDX_MIB || len % VHDX_MIB || !len || off < VX_HEADER_SECTION || off > v->file_bytes ||
		    len > v->file_bytes - off)
			return VHDX_E_REGION_RANGE;
		if (vx_overlap(off, len, v->hdr.log_offset, v->hdr.log_length))
			return VHDX_E_REGION_OVERLAP;
		if (is_bat) {
			have_bat = 1;
			v->bat_off = off;
			v->bat_len = len;
		} else {
			have_meta = 1;
			v->meta_off = off;
			v->meta_len = len;
		}
	}
	if (!have_bat || !have_meta)
		return VHDX_E_REGION_MISSING;
	if (vx_overlap(v->bat_off, v->bat_len, v->meta_off, v->meta_len))
		return VHDX_E_REGION_OVERLAP;
	return VHDX_OK;
}

/* ------------------------------------------------------------------ metadata */

/* Parse the metadata table and the system items into v. */
int vx_metadata(struct vhdx *v)
{
	v->meta_unknown = 0;
	v->loc_off = v->loc_len = 0;
	uint8_t h[32];
	int r = vx_pread(v, v->meta_off, 32, h);
	if (r)
		return r;
	if (VX_MEMCMP(h, "metadata", 8))
		return VHDX_E_META_SIGNATURE;
	uint32_t count = vx_le16(h + 10);
	if (count > VX_MAX_ENTRIES)
		return VHDX_E_META_COUNT;
	v->meta_items = count;
	unsigned seen = 0;   /* bit per known item */
	uint32_t known_idx[6], known_off[6], known_len[6];   /* where each known item is (for the overlap test) */
	const struct vhdx_guid *known[6] = { &vx_guid_file_params, &vx_guid_vsize, &vx_guid_page83,
					     &vx_guid_lss, &vx_guid_pss, &vx_guid_locator };
	static const uint32_t want_len[6] = { 8, 8, 16, 4, 4, 0 };
	for (uint32_t i = 0; i < count; i++) {
		uint8_t e[32];
		r = vx_pread(v, v->meta_off + 32 + 32ull * i, 32, e);
		if (r)
			return r;
		struct vhdx_guid g;
		VX_MEMCPY(g.b, e, 16);
		uint32_t off = vx_le32(e + 16), len = vx_le32(e + 20), fl = vx_le32(e + 24);
		if (len > VHDX_MIB || (!len && off) ||
		    (len && (off < VX_META_TABLE_SIZE || off > v->meta_len || len > v->meta_len - off)))
			return VHDX_E_META_RANGE;
		int k = -1;
		for (int j = 0; j < 6; j++)
			if (!(fl & VX_MF_USER) && vx_guid_eq(&g, known[j]))
				k = j;
		if (k < 0) {
			if (fl & VX_MF_REQUIRED)
				return VHDX_E_META_UNKNOWN;
			v->meta_unknown++;
			continue;
		}
		if (seen & (1u << k))
			return VHDX_E_META_DUP;
		seen |= 1u << k;
		known_idx[k] = i;
		known_off[k] = off;
		known_len[k] = len;
		if (want_len[k] && len != want_len[k])
			return VHDX_E_META_LENGTH;
		uint8_t val[16];
		uint64_t at = v->meta_off + off;
		if (k < 5) {
			r = vx_pread(v, at, len, val);
			if (r)
				return r;
		}
		switch (k) {
		case 0:
			v->block_size = vx_le32(val);
			v->file_params_flags = vx_le32(val + 4);
			v->leave_allocated = !!(v->file_params_flags & VX_FP_LEAVE_ALLOCATED);
			v->has_parent = !!(v->file_params_flags & VX_FP_HAS_PARENT);
			break;
		case 1:
			v->vsize = vx_le64(val);
			break;
		case 2:
			VX_MEMCPY(v->page83.b, val, 16);
			break;
		case 3:
			v->lss = vx_le32(val);
			break;
		case 4:
			v->pss = vx_le32(val);
			break;
		default:
			if (len < 20)
				return VHDX_E_LOCATOR_RANGE;
			v->loc_off = off;
			v->loc_len = len;
		}
	}
	if ((seen & 0x1Bu) != 0x1Bu)    /* file parameters, virtual size, logical and physical sector size */
		return VHDX_E_META_MISSING;
	/* No item may overlap a system item (checked against the few known ones: O(items)). */
	for (uint32_t i = 0; i < count; i++) {
		uint8_t e[32];
		r = vx_pread(v, v->meta_off + 32 + 32ull * i, 32, e);
		if (r)
			return r;
		uint32_t off = vx_le32(e + 16), len = vx_le32(e + 20);
		for (int k = 0; k < 6; k++)
			if ((seen & (1u << k)) && known_idx[k] != i && vx_overlap(off, len, known_off[k], known_len[k]))
				return VHDX_E_META_OVERLAP;
	}
	uint32_t bs = v->block_size;
	if (bs < VHDX_MIN_BLOCK || bs > VHDX_MAX_BLOCK || (bs & (bs - 1)))
		return VHDX_E_BLOCK_SIZE;
	if (v->lss == 4096)
		return VHDX_E_LOGICAL_4K;
	if (v->lss != 512)
		return VHDX_E_LOGICAL_SECTOR;
	if (v->pss != 512 && v->pss != 4096)
		return VHDX_E_PHYSICAL_SECTOR;
	if (!v->vsize || v->vsize % v->lss || v->vsize > VHDX_MAX_SIZE)
		return VHDX_E_SIZE;
	if (v->has_parent && !v->loc_len)
		return VHDX_E_LOCATOR_MISSING;
	v->sectors = v->vsize / VHDX_SECTOR;
	v->spb = bs / VHDX_SECTOR;
	v->chunk_ratio = (uint32_t)(((uint64_t)1 << 23) * v->lss / bs);
	v->data_blocks = (v->vsize + bs - 1) / bs;
	v->sb_blocks = (v->data_blocks + v->chunk_ratio - 1) / v->chunk_ratio;
	v->bat_entries = v->has_parent ? v->sb_blocks * (v->chunk_ratio + 1ull)
				       : v->data_blocks + (v->data_blocks - 1) / v->chunk_ratio;
	if (v->bat_entries * 8 > v->bat_len)
		return VHDX_E_BAT_SMALL;
	if (v->has_parent) {
		struct vhdx_parent_info pi;
		r = vhdx_parent_info(v, &pi);
		if (r)
			return r;
	}
	return VHDX_OK;
}

/* ------------------------------------------------------------------ open */

int vhdx_open(struct vhdx *v, struct blk_dev *dev, unsigned flags, const struct vhdx_open_opts *o)
{
	VX_MEMSET(v, 0, sizeof(*v));
	v->dev = dev;
	v->flags = flags;
	v->tmp_lba = UINT64_MAX;
	v->sbm_lba = UINT64_MAX;
	v->file_bytes = dev->size_bytes;
	if (!(flags & VHDX_OPEN_RDONLY)) {
		if (!o || !o->session || dev->read_only)
			return VHDX_E_BAD_ARG;
		v->sess = *o->session;
	}
	if (dev->size_bytes < VX_HEADER_SECTION)
		return VHDX_E_TOO_SMALL;
	uint8_t id[8];
	int r = vx_pread(v, 0, 8, id);
	if (r)
		return r;
	if (VX_MEMCMP(id, "vhdxfile", 8))
		return VHDX_E_SIGNATURE;
	struct vhdx_header h[2];
	for (int i = 0; i < 2; i++) {
		v->hdr_err[i] = vx_read_header(v, i, &h[i]);
		if (v->hdr_err[i] == VHDX_E_IO)
			return VHDX_E_IO;
	}
	if (v->hdr_err[0] && v->hdr_err[1])
		return VHDX_E_HEADERS_BAD;
	if (v->hdr_err[0] || v->hdr_err[1])
		v->state |= VHDX_ST_HEADER_COPY_BAD;
	/*
	 * Current: the only valid one, or the valid one with the higher
	 * sequence number. Two valid copies with the same number leave no
	 * current header (MS-VHDX 2.2.2) unless they are the same header.
	 */
	if (!v->hdr_err[0] && !v->hdr_err[1] && h[0].seq == h[1].seq && h[0].checksum != h[1].checksum)
		return VHDX_E_HEADERS_SAME_SEQ;
	v->cur = v->hdr_err[0] ? 1 : v->hdr_err[1] ? 0 : h[1].seq > h[0].seq;
	v->hdr = h[v->cur];
	if (v->hdr.version != 1)
		return VHDX_E_HEADER_VERSION;
	/* Another log format can only be refused when there is a log to replay. */
	if (v->hdr.log_version != 0 && !vhdx_guid_is_zero(&v->hdr.log_guid))
		return VHDX_E_LOG_VERSION;
	if (!v->hdr.log_length || v->hdr.log_length % VHDX_MIB || v->hdr.log_offset % VHDX_MIB ||
	    v->hdr.log_offset < VX_HEADER_SECTION || v->hdr.log_offset > v->file_bytes ||
	    v->hdr.log_length > v->file_bytes - v->hdr.log_offset)
		return VHDX_E_LOG_RANGE;
	r = vx_log_replay(v, o);
	if (r)
		return r;
	r = vx_regions(v);
	if (r)
		return r;
	r = vx_metadata(v);
	if (r)
		return r;
	v->log_seq = 1;
	return VHDX_OK;
}

/* ------------------------------------------------------------------ BAT */

size_t vhdx_bat_bytes(const struct vhdx *v)
{
	return (size_t)(v->bat_entries * 8);
}

/* Nonzero when [off, off+len) overlaps the header section, the log, the BAT or the metadata region. */
static int vx_hits_meta(const struct vhdx *v, uint64_t off, uint64_t len)
{
	return vx_overlap(off, len, 0, VX_HEADER_SECTION) ||
	       vx_overlap(off, len, v->hdr.log_offset, v->hdr.log_length) ||
	       vx_overlap(off, len, v->bat_off, v->bat_len) || vx_overlap(off, len, v->meta_off, v->meta_len);
}

int vhdx_load_bat(struct vhdx *v, uint64_t *bat)
{
	uint64_t n = v->bat_entries, full = n * 8 / VHDX_SECTOR;
	uint8_t *raw = (uint8_t *)bat;
	for (uint64_t s = 0; s < full;) {
		uint32_t k = full - s > 256 ? 256 : (uint32_t)(full - s);
		int r = vx_read_sectors(v, v->bat_off / VHDX_SECTOR + s, k, raw + s * VHDX_SECTOR);
		if (r)
			return r;
		s += k;
	}
	if (n * 8 % VHDX_SECTOR) {
		int r = vx_pread(v, v->bat_off + full * VHDX_SECTOR, (uint32_t)(n * 8 % VHDX_SECTOR), raw + full * VHDX_SECTOR);
		if (r)
			return r;
	}
	for (uint64_t i = 0; i < n; i++)
		bat[i] = vx_le64(raw + i * 8);
	uint64_t end = (v->file_bytes + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
	uint64_t cr1 = v->chunk_ratio + 1ull;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t e = bat[i];
		unsigned st = vhdx_bat_state(e);
		int sb = i % cr1 == v->chunk_ratio;
		uint64_t size = sb ? VHDX_MIB : v->block_size, off = vhdx_bat_mb(e) << 20;
		if (sb) {
			if (st != VHDX_SB_NOT_PRESENT && st != VHDX_SB_PRESENT)
				return VHDX_E_SB_STATE;
			if (st != VHDX_SB_PRESENT)
				continue;
		} else {
			if (st == 4 || st == 5)
				return VHDX_E_BAT_STATE;
			if (st == VHDX_PB_PARTIALLY_PRESENT && !v->has_parent)
				return VHDX_E_BAT_PARTIAL;
			if (st != VHDX_PB_FULLY_PRESENT && st != VHDX_PB_PARTIALLY_PRESENT)
				continue;
			if (st == VHDX_PB_PARTIALLY_PRESENT) {
				uint64_t sbi = (i / cr1) * cr1 + v->chunk_ratio;
				unsigned sst = sbi < n ? vhdx_bat_state(bat[sbi]) : VHDX_SB_NOT_PRESENT;
				if (sst != VHDX_SB_NOT_PRESENT && sst != VHDX_SB_PRESENT)
					return VHDX_E_SB_STATE;
				if (sst != VHDX_SB_PRESENT)
					return VHDX_E_SB_MISSING;
			}
		}
		if (!off)
			return VHDX_E_BAT_OFFSET;
		if (off > v->file_bytes || size > v->file_bytes - off)
			return VHDX_E_BAT_RANGE;
		if (vx_hits_meta(v, off, size))
			return VHDX_E_BAT_OVERLAP_META;
		if (off + size > end)
			end = off + size;
	}
	v->alloc_end = end;
	v->bat = bat;
	return VHDX_OK;
}

int vhdx_check_overlaps(const struct vhdx *v, uint64_t *scratch)
{
	if (!v->bat)
		return VHDX_E_BAT_NOT_LOADED;
	uint64_t m = 0, cr1 = v->chunk_ratio + 1ull;
	for (uint64_t i = 0; i < v->bat_entries; i++) {
		unsigned st = vhdx_bat_state(v->bat[i]);
		int sb = i % cr1 == v->chunk_ratio;
		if (sb ? st == VHDX_SB_PRESENT : (st == VHDX_PB_FULLY_PRESENT || st == VHDX_PB_PARTIALLY_PRESENT))
			scratch[m++] = vhdx_bat_mb(v->bat[i]) << 1 | (uint64_t)sb;
	}
	vx_sort_u64(scratch, m);
	for (uint64_t i = 1; i < m; i++) {
		uint64_t prev = scratch[i - 1] >> 1, size = (scratch[i - 1] & 1) ? 1 : v->block_size >> 20;
		if (prev + size > scratch[i] >> 1)
			return VHDX_E_BAT_OVERLAP;
	}
	return VHDX_OK;
}

int vhdx_block_state(const struct vhdx *v, uint64_t lba)
{
	if (!v->bat)
		return -VHDX_E_BAT_NOT_LOADED;
	if (lba >= v->sectors)
		return -VHDX_E_RANGE;
	return (int)vhdx_bat_state(v->bat[vx_pb_index(v, lba / v->spb)]);
}

/* ------------------------------------------------------------------ read */

/* Bit of virtual sector lba in its chunk's sector bitmap (the block is partially present); <0 on error. */
static int vx_bitmap_bit(struct vhdx *v, uint64_t lba)
{
	uint64_t blk = lba / v->spb;
	uint64_t sbe = v->bat[vx_sb_index(v, blk / v->chunk_ratio)];
	uint64_t s = (blk % v->chunk_ratio) * v->spb + lba % v->spb;   /* sector within the chunk */
	uint64_t sec = (vhdx_bat_mb(sbe) << 11) + s / 4096;
	if (v->sbm_lba != sec) {
		v->sbm_lba = UINT64_MAX;
		int r = vx_read_sectors(v, sec, 1, v->sbm);
		if (r)
			return -r;
		v->sbm_lba = sec;
	}
	uint32_t bit = (uint32_t)(s % 4096);
	return (v->sbm[bit / 8] >> (bit % 8)) & 1;   /* LSB first */
}

/* Read from the parent, or zeros when the image has none. */
static int vx_read_below(struct vhdx *v, uint64_t lba, uint32_t n, uint8_t *out)
{
	if (!v->has_parent) {
		VX_MEMSET(out, 0, (uint64_t)n * VHDX_SECTOR);
		return VHDX_OK;
	}
	if (!v->parent)
		return VHDX_E_NO_PARENT;
	return vhdx_read(v->parent, lba, n, out);
}

int vhdx_read(struct vhdx *v, uint64_t lba, uint32_t count, void *buf)
{
	uint8_t *out = buf;
	if (!v->bat)
		return VHDX_E_BAT_NOT_LOADED;
	if (blk_out_of_range(lba, count, v->sectors))
		return VHDX_E_RANGE;
	while (count) {
		uint64_t blk = lba / v->spb;
		uint32_t in = (uint32_t)(lba % v->spb);
		uint32_t n = v->spb - in < count ? v->spb - in : count;
		uint64_t e = v->bat[vx_pb_index(v, blk)];
		int r = VHDX_OK;
		switch (vhdx_bat_state(e)) {
		case VHDX_PB_FULLY_PRESENT:
			r = vx_read_sectors(v, (vhdx_bat_mb(e) << 11) + in, n, out);
			break;
		case VHDX_PB_PARTIALLY_PRESENT:
			for (uint32_t k = 0; k < n && !r;) {
				int bit = vx_bitmap_bit(v, lba + k);
				if (bit < 0)
					return -bit;
				uint32_t run = 1;
				while (k + run < n && vx_bitmap_bit(v, lba + k + run) == bit)
					run++;
				if (bit)
					r = vx_read_sectors(v, (vhdx_bat_mb(e) << 11) + in + k, run, out + (uint64_t)k * VHDX_SECTOR);
				else
					r = vx_read_below(v, lba + k, run, out + (uint64_t)k * VHDX_SECTOR);
				k += run;
			}
			break;
		case VHDX_PB_NOT_PRESENT:   /* the parent's data (a differencing disk), else zeros */
			r = vx_read_below(v, lba, n, out);
			break;
		default:
			/*
			 * Zero; undefined and unmapped (MS-VHDX 2.5.1.1 allows zeros for
			 * both, and zeros are what a later partial write keeps around
			 * the written sectors, so reads stay stable).
			 */
			VX_MEMSET(out, 0, (uint64_t)n * VHDX_SECTOR);
		}
		if (r)
			return r;
		out += (uint64_t)n * VHDX_SECTOR;
		lba += n;
		count -= n;
	}
	return VHDX_OK;
}

/* ------------------------------------------------------------------ log writes */


/* The new content of update u's page into page: the file's page with the change applied. */
static int vx_upd_page(struct vhdx *v, const struct vx_upd *u, uint8_t *page)
{
	if (u->raw) {
		VX_MEMCPY(page, u->raw, VHDX_PAGE);
		return VHDX_OK;
	}
	int r = vx_pread(v, u->off, VHDX_PAGE, page);
	if (r)
		return r;
	if (u->bitmap) {
		for (uint32_t b = u->lo; b < u->hi; b++)
			page[b / 8] |= (uint8_t)(1u << (b % 8));
		return VHDX_OK;
	}
	uint64_t first = (u->off - v->bat_off) / 8;
	for (uint32_t k = 0; k < VHDX_PAGE / 8 && first + k < v->bat_entries; k++)
		vx_put64(page + 8 * k, v->bat[first + k]);
	return VHDX_OK;
}

/* The log data sector carrying page (sequence seq). */
static void vx_data_sector(const uint8_t *page, uint64_t seq, uint8_t *sec)
{
	VX_MEMCPY(sec, page, VHDX_PAGE);
	vx_put32(sec, VX_SIG_DATA);
	vx_put32(sec + 4, (uint32_t)(seq >> 32));
	vx_put32(sec + VHDX_PAGE - 4, (uint32_t)seq);
}

/*
 * Make the n page updates durable through the log: write the entry (tail =
 * itself: every earlier entry is applied and flushed), flush, write the
 * pages to their places, flush. A crash before the first flush leaves the
 * old state; after it, replay finishes the update.
 */
int vx_log_commit(struct vhdx *v, const struct vx_upd *u, uint32_t n)
{
	if (!n)
		return VHDX_OK;
	if (n > VHDX_LOG_MAX_DESC)
		return VHDX_E_LOG_FULL;
	uint32_t dpages = (VX_L_HDR + VX_L_DESC * n + VHDX_PAGE - 1) / VHDX_PAGE;
	uint64_t len = (uint64_t)(dpages + n) * VHDX_PAGE;
	if (len > v->hdr.log_length)
		return VHDX_E_LOG_FULL;
	if (v->log_head + len > v->hdr.log_length)
		v->log_head = 0;
	uint64_t seq = v->log_seq;
	uint8_t lead[VHDX_LOG_MAX_DESC][8], trail[VHDX_LOG_MAX_DESC][4];
	int r;
	for (uint32_t i = 0; i < n; i++) {
		r = vx_upd_page(v, &u[i], v->page);
		if (r)
			return r;
		VX_MEMCPY(lead[i], v->page, 8);
		VX_MEMCPY(trail[i], v->page + VHDX_PAGE - 4, 4);
	}
	/* The descriptor pages are built one at a time; the CRC runs over the whole entry in order. */
	uint32_t crc = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t p = 0; p < dpages; p++) {
			VX_MEMSET(v->page2, 0, VHDX_PAGE);
			if (!p) {
				vx_put32(v->page2 + VX_L_SIG, VX_SIG_LOGE);
				vx_put32(v->page2 + VX_L_LEN, (uint32_t)len);
				vx_put32(v->page2 + VX_L_TAIL, v->log_head);
				vx_put64(v->page2 + VX_L_SEQ, seq);
				vx_put32(v->page2 + VX_L_DCOUNT, n);
				VX_MEMCPY(v->page2 + VX_L_GUID, v->hdr.log_guid.b, 16);
				/* Both whole MiBs: the stable size rounded down, the end of everything rounded up. */
				uint64_t last = v->file_bytes > v->alloc_end ? v->file_bytes : v->alloc_end;
				vx_put64(v->page2 + VX_L_FLUSHED, v->dev->size_bytes / VHDX_MIB * VHDX_MIB);
				vx_put64(v->page2 + VX_L_LAST, (last + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB);
			}
			for (uint32_t i = 0; i < n; i++) {
				uint64_t at = VX_L_HDR + (uint64_t)VX_L_DESC * i;
				if (at / VHDX_PAGE != p)
					continue;
				uint8_t *d = v->page2 + at % VHDX_PAGE;
				vx_put32(d, VX_SIG_DESC);
				VX_MEMCPY(d + 4, trail[i], 4);
				VX_MEMCPY(d + 8, lead[i], 8);
				vx_put64(d + 16, u[i].off);
				vx_put64(d + 24, seq);
			}
			if (pass == 0) {
				crc = vhdx_crc32c(crc, v->page2, VHDX_PAGE);
			} else {
				if (!p)
					vx_put32(v->page2 + VX_L_CSUM, crc);
				r = vx_write_sectors(v, (v->hdr.log_offset + v->log_head + (uint64_t)p * VHDX_PAGE) / VHDX_SECTOR,
						     VHDX_PAGE / VHDX_SECTOR, v->page2);
				if (r)
					return r;
			}
		}
		for (uint32_t i = 0; i < n; i++) {
			r = vx_upd_page(v, &u[i], v->page);
			if (r)
				return r;
			vx_data_sector(v->page, seq, v->page2);
			if (pass == 0) {
				crc = vhdx_crc32c(crc, v->page2, VHDX_PAGE);
				continue;
			}
			r = vx_write_sectors(v, (v->hdr.log_offset + v->log_head + (uint64_t)(dpages + i) * VHDX_PAGE) / VHDX_SECTOR,
					     VHDX_PAGE / VHDX_SECTOR, v->page2);
			if (r)
				return r;
		}
	}
	r = vhdx_flush(v);
	if (r)
		return r;
	v->log_seq++;
	v->log_head = (uint32_t)((v->log_head + len) % v->hdr.log_length);
	for (uint32_t i = 0; i < n; i++) {
		r = vx_upd_page(v, &u[i], v->page);
		if (!r)
			r = vx_write_sectors(v, u[i].off / VHDX_SECTOR, VHDX_PAGE / VHDX_SECTOR, v->page);
		if (r)
			return r;
	}
	return vhdx_flush(v);
}

/* ------------------------------------------------------------------ write */

/*
 * First write of the session: both headers get the session's FileWriteGuid
 * and LogGuid, and its DataWriteGuid when data is set (the change alters
 * the virtual disk's content; MS-VHDX 2.2.2). A metadata-only session that
 * later writes data gets the new DataWriteGuid then.
 */
int vx_session_begin(struct vhdx *v, int data)
{
	if (v->flags & VHDX_OPEN_RDONLY)
		return VHDX_E_READ_ONLY;
	if (v->session_started) {
		if (!data || v->data_started)
			return VHDX_OK;
		struct vhdx_header h = v->hdr;
		h.data_write = v->sess.data_write;
		int r = vx_update_headers(v, &h);
		if (!r)
			v->data_started = 1;
		return r;
	}
	/*
	 * Entries of an earlier session that used the same LogGuid (a caller
	 * with a poor random source) must never outrank ours after a crash:
	 * start above the highest sequence number any of them carries.
	 */
	struct vhdx_guid keep = v->hdr.log_guid;
	uint64_t top = 0;
	v->hdr.log_guid = v->sess.log_guid;
	for (uint32_t pos = 0; pos < v->hdr.log_length; pos += VHDX_PAGE) {
		struct vx_entry e;
		int r = vx_log_entry(v, pos, &e, 1);
		if (r > 0) {
			v->hdr.log_guid = keep;
			return r;
		}
		if (r == 0 && e.seq > top)
			top = e.seq;
	}
	v->hdr.log_guid = keep;
	v->log_seq = top + 1;
	struct vhdx_header h = v->hdr;
	h.file_write = v->sess.file_write;
	if (data)
		h.data_write = v->sess.data_write;
	h.log_guid = v->sess.log_guid;
	h.log_version = 0;   /* the log this library writes */
	int r = vx_update_headers(v, &h);
	if (r)
		return r;
	v->session_started = 1;
	v->data_started = data;
	v->log_head = 0;
	return VHDX_OK;
}

int vhdx_close(struct vhdx *v)
{
	if (!v->session_started)
		return VHDX_OK;
	int r = vhdx_flush(v);
	if (r)
		return r;
	struct vhdx_header h = v->hdr;
	VX_MEMSET(h.log_guid.b, 0, 16);
	r = vx_update_headers(v, &h);
	if (!r)
		v->session_started = 0;
	return r;
}

/* Add to u[*n] the BAT page holding entry idx (once). */
static void vx_add_bat_page(const struct vhdx *v, struct vx_upd *u, uint32_t *n, uint64_t idx)
{
	uint64_t off = v->bat_off + idx * 8 / VHDX_PAGE * VHDX_PAGE;
	for (uint32_t i = 0; i < *n; i++)
		if (!u[i].bitmap && u[i].off == off)
			return;
	u[*n].off = off;
	u[*n].bitmap = 0;
	u[*n].lo = u[*n].hi = 0;
	u[*n].raw = 0;
	++*n;
}

/* Add the sector bitmap pages setting the bits of sectors [in, in+cnt) of block blk (sector bitmap block at sb_off). */
static void vx_add_bits(const struct vhdx *v, struct vx_upd *u, uint32_t *n, uint64_t sb_off, uint64_t blk, uint32_t in, uint32_t cnt)
{
	uint64_t s = (blk % v->chunk_ratio) * v->spb + in, e = s + cnt;
	while (s < e) {
		uint64_t page = s / (VHDX_PAGE * 8);
		uint64_t pe = (page + 1) * VHDX_PAGE * 8;
		uint64_t stop = e < pe ? e : pe;
		u[*n].off = sb_off + page * VHDX_PAGE;
		u[*n].bitmap = 1;
		u[*n].lo = (uint32_t)(s % (VHDX_PAGE * 8));
		u[*n].hi = (uint32_t)(stop - page * VHDX_PAGE * 8);
		u[*n].raw = 0;
		++*n;
		s = stop;
	}
}

/* Nonzero when every bit of sectors [lba, lba+cnt) is set in the (partially present) block's bitmap; <0 on error. */
static int vx_bits_all_set(struct vhdx *v, uint64_t lba, uint32_t cnt)
{
	for (uint32_t k = 0; k < cnt; k++) {
		int b = vx_bitmap_bit(v, lba + k);
		if (b <= 0)
			return b;
	}
	return 1;
}

/*
 * Allocate block blk for a write of sectors [in, in+cnt) (data): the new
 * block (and a new sector bitmap block) written past the file's end and
 * flushed first, then the BAT (and bitmap) through the log.
 */
static int vx_allocate(struct vhdx *v, uint64_t blk, uint32_t in, uint32_t cnt, const uint8_t *data)
{
	uint64_t pbi = vx_pb_index(v, blk), old = v->bat[pbi];
	unsigned st = vhdx_bat_state(old);
	/* Only a block that was the parent's keeps the parent's sectors (partially present); zero/undefined/unmapped ones read as zeros. */
	int partial = v->has_parent && st == VHDX_PB_NOT_PRESENT && cnt < v->spb;
	uint64_t sbi = vx_sb_index(v, blk / v->chunk_ratio), old_sb = 0;
	uint64_t off = v->alloc_end, end = off + v->block_size;
	uint64_t sb_off = 0;
	int new_sb = 0;
	/*
	 * A zero, unmapped or undefined block may already own space in the file
	 * (qemu-img's fixed images are all zero-state blocks with their space
	 * preallocated): that space is the block's, so it is written in place
	 * and nothing grows. load_bat checked it lies in the file, clear of the
	 * metadata; the overlap check covers the rest.
	 */
	uint64_t own = vhdx_bat_mb(old) << 20;
	int in_place = !partial && own && (st == VHDX_PB_ZERO || st == VHDX_PB_UNMAPPED || st == VHDX_PB_UNDEFINED) &&
	               own <= v->file_bytes && v->block_size <= v->file_bytes - own;
	if (in_place) {
		off = own;
		end = v->alloc_end;
	}
	if (partial) {
		old_sb = v->bat[sbi];
		if (vhdx_bat_state(old_sb) == VHDX_SB_PRESENT) {
			sb_off = vhdx_bat_mb(old_sb) << 20;
		} else {
			new_sb = 1;
			sb_off = end;
			end += VHDX_MIB;
		}
	}
	if (end / VHDX_SECTOR > v->dev->max_sectors)
		return VHDX_E_NOSPACE;
	uint64_t lba = off / VHDX_SECTOR;
	int r = vx_zero_sectors(v, lba, in);
	if (!r)
		r = vx_write_sectors(v, lba + in, cnt, data);
	if (!r)
		r = vx_zero_sectors(v, lba + in + cnt, v->spb - in - cnt);
	if (!r && new_sb)
		r = vx_zero_sectors(v, sb_off / VHDX_SECTOR, VHDX_MIB / VHDX_SECTOR);
	if (!r)
		r = vhdx_flush(v);
	if (r)
		return r;
	uint64_t old_end = v->alloc_end;
	v->alloc_end = in_place ? old_end : end;
	v->bat[pbi] = vhdx_bat_make(partial ? VHDX_PB_PARTIALLY_PRESENT : VHDX_PB_FULLY_PRESENT, off >> 20);
	if (new_sb)
		v->bat[sbi] = vhdx_bat_make(VHDX_SB_PRESENT, sb_off >> 20);
	struct vx_upd u[24];
	uint32_t n = 0;
	vx_add_bat_page(v, u, &n, pbi);
	if (new_sb)
		vx_add_bat_page(v, u, &n, sbi);
	if (partial)
		vx_add_bits(v, u, &n, sb_off, blk, in, cnt);
	r = vx_log_commit(v, u, n);
	if (r) {
		/* Not acknowledged: the in-memory map goes back (the file may hold the new state if the log was flushed). */
		v->bat[pbi] = old;
		if (new_sb)
			v->bat[sbi] = old_sb;
		v->alloc_end = old_end;
	}
	return r;
}

int vhdx_write(struct vhdx *v, uint64_t lba, uint32_t count, const void *buf)
{
	const uint8_t *in_buf = buf;
	if (v->flags & VHDX_OPEN_RDONLY)
		return VHDX_E_READ_ONLY;
	if (!v->bat)
		return VHDX_E_BAT_NOT_LOADED;
	if (blk_out_of_range(lba, count, v->sectors))
		return VHDX_E_RANGE;
	int r = vx_session_begin(v, 1);
	if (r)
		return r;
	while (count) {
		uint64_t blk = lba / v->spb;
		uint32_t in = (uint32_t)(lba % v->spb);
		uint32_t n = v->spb - in < count ? v->spb - in : count;
		uint64_t e = v->bat[vx_pb_index(v, blk)];
		unsigned st = vhdx_bat_state(e);
		if (st == VHDX_PB_FULLY_PRESENT) {
			r = vx_write_sectors(v, (vhdx_bat_mb(e) << 11) + in, n, in_buf);
		} else if (st == VHDX_PB_PARTIALLY_PRESENT) {
			r = vx_write_sectors(v, (vhdx_bat_mb(e) << 11) + in, n, in_buf);
			int all = r ? 0 : vx_bits_all_set(v, lba, n);
			if (all < 0)
				r = -all;
			if (!r && !all) {
				/* The data is durable before a bit says it is there. */
				r = vhdx_flush(v);
				struct vx_upd u[24];
				uint32_t k = 0;
				uint64_t sbe = v->bat[vx_sb_index(v, blk / v->chunk_ratio)];
				vx_add_bits(v, u, &k, vhdx_bat_mb(sbe) << 20, blk, in, n);
				if (!r)
					r = vx_log_commit(v, u, k);
			}
		} else {
			r = vx_allocate(v, blk, in, n, in_buf);
		}
		if (r)
			return r;
		in_buf += (uint64_t)n * VHDX_SECTOR;
		lba += n;
		count -= n;
	}
	return VHDX_OK;
}

/* ------------------------------------------------------------------ parent locator */

/* Read entry i of the locator: key and value offsets/lengths (relative to the item), checked. */
static int vx_loc_entry(struct vhdx *v, uint32_t i, uint32_t *ko, uint32_t *vo, uint32_t *kl, uint32_t *vl)
{
	uint8_t e[12];
	int r = vx_pread(v, v->meta_off + v->loc_off + 20 + 12ull * i, 12, e);
	if (r)
		return r;
	*ko = vx_le32(e);
	*vo = vx_le32(e + 4);
	*kl = vx_le16(e + 8);
	*vl = vx_le16(e + 10);
	if (!*kl || !*vl || (*kl & 1) || (*vl & 1) || *ko > v->loc_len || *kl > v->loc_len - *ko ||
	    *vo > v->loc_len || *vl > v->loc_len - *vo)
		return VHDX_E_LOCATOR_RANGE;
	return VHDX_OK;
}

/* Nonzero when the UTF-16LE key at item offset ko (kl bytes) is the ASCII string s. */
static int vx_key_is(struct vhdx *v, uint32_t ko, uint32_t kl, const char *s, int *err)
{
	uint32_t n = 0;
	while (s[n])
		n++;
	if (kl != 2 * n)
		return 0;
	for (uint32_t k = 0; k < n; k++) {
		uint8_t c[2];
		*err = vx_pread(v, v->meta_off + v->loc_off + ko + 2ull * k, 2, c);
		if (*err)
			return 0;
		if (vx_le16(c) != (uint8_t)s[k])
			return 0;
	}
	return 1;
}

static const char *const vx_path_keys[VHDX_LOC_PATHS] = { "relative_path", "volume_path", "absolute_win32_path" };

/* Find key s: 1 with the value's offset and length, 0 if absent, <0 error. */
static int vx_loc_find(struct vhdx *v, const char *s, uint32_t *vo, uint32_t *vl)
{
	uint8_t h[20];
	int r = vx_pread(v, v->meta_off + v->loc_off, 20, h);
	if (r)
		return -r;
	uint32_t cnt = vx_le16(h + 18);
	for (uint32_t i = 0; i < cnt; i++) {
		uint32_t ko, kl;
		r = vx_loc_entry(v, i, &ko, vo, &kl, vl);
		if (r)
			return -r;
		if (vx_key_is(v, ko, kl, s, &r))
			return 1;
		if (r)
			return -r;
	}
	return 0;
}

/* Decode the UTF-16LE value at item offset vo (vl bytes) to UTF-8 in out. */
static int vx_loc_value(struct vhdx *v, uint32_t vo, uint32_t vl, char *out, size_t outlen)
{
	size_t pos = 0;
	if (!outlen)
		return VHDX_E_BAD_ARG;
	out[0] = 0;
	for (uint32_t k = 0; k < vl; k += 2) {
		uint8_t c[4];
		int r = vx_pread(v, v->meta_off + v->loc_off + vo + k, 2, c);
		if (r)
			return r;
		uint32_t cp = vx_le16(c);
		if (cp >= 0xD800 && cp < 0xDC00 && k + 2 < vl) {
			r = vx_pread(v, v->meta_off + v->loc_off + vo + k + 2, 2, c + 2);
			if (r)
				return r;
			uint32_t lo = vx_le16(c + 2);
			if (lo >= 0xDC00 && lo < 0xE000) {
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				k += 2;
			}
		}
		if (cp == 0)
			break;
		if (cp >= 0xD800 && cp < 0xE000)
			return VHDX_E_LOCATOR_RANGE;
		if (utf8_put(out, outlen, &pos, cp))
			return VHDX_E_LOCATOR_RANGE;
	}
	return VHDX_OK;
}

int vhdx_parent_info(struct vhdx *v, struct vhdx_parent_info *pi)
{
	VX_MEMSET(pi, 0, sizeof(*pi));
	if (!v->has_parent)
		return VHDX_E_NOT_DIFF;
	if (!v->loc_len)
		return VHDX_E_LOCATOR_MISSING;
	uint8_t h[20];
	int r = vx_pread(v, v->meta_off + v->loc_off, 20, h);
	if (r)
		return r;
	struct vhdx_guid t;
	VX_MEMCPY(t.b, h, 16);
	if (!vx_guid_eq(&t, &vx_guid_loc_type))
		return VHDX_E_LOCATOR_TYPE;
	uint32_t cnt = vx_le16(h + 18);
	if (20 + 12ull * cnt > v->loc_len)
		return VHDX_E_LOCATOR_RANGE;
	pi->entries = cnt;
	int have_link = 0;
	unsigned keys_seen = 0;   /* bit per known key: linkage, linkage2, the three paths */
	for (uint32_t i = 0; i < cnt; i++) {
		uint32_t ko, vo, kl, vl;
		r = vx_loc_entry(v, i, &ko, &vo, &kl, &vl);
		if (r)
			return r;
		int known = 0;
		for (int k = 0; k < 2; k++) {
			if (!vx_key_is(v, ko, kl, k ? "parent_linkage2" : "parent_linkage", &r)) {
				if (r)
					return r;
				continue;
			}
			char s[40];
			known = 1;
			if (keys_seen & (1u << k))
				return VHDX_E_LOCATOR_DUP;
			keys_seen |= 1u << k;
			if (vl != 76)
				return VHDX_E_LOCATOR_LINKAGE;
			r = vx_loc_value(v, vo, vl, s, sizeof(s));
			if (r)
				return r == VHDX_E_LOCATOR_RANGE ? VHDX_E_LOCATOR_LINKAGE : r;
			size_t sl = 0;
			while (s[sl])
				sl++;
			if (vhdx_guid_parse(s, sl, k ? &pi->linkage2 : &pi->linkage))
				return VHDX_E_LOCATOR_LINKAGE;
			if (k)
				pi->has_linkage2 = 1;
			else
				have_link = 1;
		}
		for (int k = 0; k < VHDX_LOC_PATHS && !known; k++) {
			if (vx_key_is(v, ko, kl, vx_path_keys[k], &r)) {
				if (pi->has_path[k])
					return VHDX_E_LOCATOR_DUP;
				pi->has_path[k] = 1;
				known = 1;
			}
			if (r)
				return r;
		}
		if (!known)
			pi->unknown_keys++;
	}
	if (!have_link)
		return VHDX_E_LOCATOR_LINKAGE;
	return VHDX_OK;
}

int vhdx_locator_path(struct vhdx *v, int key, char *out, size_t outlen)
{
	if (!v->has_parent)
		return VHDX_E_NOT_DIFF;
	if (key < 0 || key >= VHDX_LOC_PATHS || !outlen)
		return VHDX_E_BAD_ARG;
	uint32_t vo, vl;
	int r = vx_loc_find(v, vx_path_keys[key], &vo, &vl);
	if (r < 0)
		return -r;
	if (!r)
		return VHDX_E_NO_LOCATOR;
	return vx_loc_value(v, vo, vl, out, outlen);
}

int vhdx_parent_candidate(struct vhdx *v, int idx, char *out, size_t outlen, int *key)
{
	if (!v->has_parent)
		return VHDX_E_NOT_DIFF;
	for (int k = 0; k < VHDX_LOC_PATHS; k++) {
		int r = vhdx_locator_path(v, k, out, outlen);
		if (r == VHDX_E_NO_LOCATOR)
			continue;
		if (idx-- == 0) {
			*key = k;
			return r;
		}
	}
	return VHDX_E_NO_LOCATOR;
}

int vhdx_chain_depth(const struct vhdx *v)
{
	int d = 0;
	for (const struct vhdx *p = v->parent; p && d <= VHDX_MAX_CHAIN; p = p->parent)
		d++;
	return d;
}

int vhdx_set_parent(struct vhdx *child, struct vhdx *parent, const struct vhdx *leaf)
{
	struct vhdx_parent_info pi;
	int r = vhdx_parent_info(child, &pi);
	if (r)
		return r;
	if (!vx_guid_eq(&pi.linkage, &parent->hdr.data_write) &&
	    !(pi.has_linkage2 && vx_guid_eq(&pi.linkage2, &parent->hdr.data_write)))
		return VHDX_E_PARENT_LINKAGE;
	if (parent->vsize != child->vsize || parent->lss != child->lss)
		return VHDX_E_PARENT_SIZE;
	int depth = 0;
	for (const struct vhdx *x = leaf; x; x = x->parent) {
		if (x == parent || vx_guid_eq(&x->hdr.data_write, &parent->hdr.data_write))
			return VHDX_E_CHAIN_LOOP;
		depth++;
		if (x == child)
			break;
		if (depth > VHDX_MAX_CHAIN)
			return VHDX_E_CHAIN_DEPTH;
	}
	if (depth + 1 + vhdx_chain_depth(parent) > VHDX_MAX_CHAIN)
		return VHDX_E_CHAIN_DEPTH;
	child->parent = parent;
	return VHDX_OK;
}
