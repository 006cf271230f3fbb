/* fuzz_vhdx.c: libFuzzer target for vhdx/: patches applied to valid base images (clean, pending log, differencing child), then open, BAT, reads, check, and a writable session. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../vhdx/vhdx.h"

/*
 * VHDX files are megabytes (1 MiB header section, log, metadata, BAT), far
 * over a useful -max_len, so the input does not hold a file: it is a list of
 * patches to one of three valid images built at start-up, each patch aimed at
 * a structure (file identifier, either header, either region table, the log,
 * the metadata table and items, the BAT, a block, the sector bitmap) and
 * optionally followed by a CRC-32C fix-up, so that mutations get past the
 * checksums. Input: byte 0 = base (0 clean dynamic, 1 pending log, 2
 * differencing child), byte 1 = fix-up mask, then patches of 4 bytes
 * (target, offset lo, offset hi, length) plus length bytes.
 */

#define FZ_MIB (1u << 20)
#define FZ_MAX_FILE (16u * FZ_MIB)
#define FZ_BAT_CAP (8u << 20)

/* A growable in-memory file. */
struct fz_mem {
	uint8_t *data;
	size_t size, cap;
	int cut_after_flushes;   /* >0: writes after this many more flushes are dropped (a power cut) */
	int dropping;
	/* Byte ranges changed since the copy of the base (restored instead of copying megabytes each run). */
	uint64_t dirty[256][2];
	int ndirty;              /* -1: too many, copy everything */
};

/* Remember that [off, off+len) of m changed. */
static void fz_dirty(struct fz_mem *m, uint64_t off, uint64_t len)
{
	if (m->ndirty < 0)
		return;
	if (m->ndirty == 256) {
		m->ndirty = -1;
		return;
	}
	m->dirty[m->ndirty][0] = off;
	m->dirty[m->ndirty][1] = len;
	m->ndirty++;
}

/* Read: the file's bytes, zeros past its end. */
static int fz_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct fz_mem *m = d->priv;
	uint64_t off = lba * 512, n = (uint64_t)count * 512;
	memset(buf, 0, n);
	if (off < m->size)
		memcpy(buf, m->data + off, m->size - off < n ? m->size - off : n);
	return BLK_OK;
}

/* Write: stored (and remembered as dirty) unless the power is cut; grows the file up to cap. */
static int fz_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct fz_mem *m = d->priv;
	uint64_t end = (lba + count) * 512;
	if (m->dropping)
		return BLK_OK;
	if (end > m->cap)
		return BLK_E_NOSPACE;
	fz_dirty(m, lba * 512, (uint64_t)count * 512);
	memcpy(m->data + lba * 512, buf, (size_t)count * 512);
	if (end > m->size) {
		m->size = end;
		d->size_bytes = end;
		d->sectors = end / 512;
	}
	return BLK_OK;
}

/* write_zeroes: as fz_write with zeros, in one piece. */
static int fz_zeroes(struct blk_dev *d, uint64_t lba, uint64_t count)
{
	struct fz_mem *m = d->priv;
	uint64_t end = (lba + count) * 512;
	if (m->dropping)
		return BLK_OK;
	if (end > m->cap)
		return BLK_E_NOSPACE;
	fz_dirty(m, lba * 512, count * 512);
	memset(m->data + lba * 512, 0, (size_t)count * 512);
	if (end > m->size) {
		m->size = end;
		d->size_bytes = end;
		d->sectors = end / 512;
	}
	return BLK_OK;
}

/* Flush: counts down to a power cut when one is armed. */
static int fz_flush(struct blk_dev *d)
{
	struct fz_mem *m = d->priv;
	if (m->cut_after_flushes > 0 && --m->cut_after_flushes == 0)
		m->dropping = 1;
	return BLK_OK;
}

/* Make d the device over m (writable up to m->cap). */
static void fz_dev(struct blk_dev *d, struct fz_mem *m)
{
	memset(d, 0, sizeof(*d));
	d->name = "fuzz";
	d->size_bytes = m->size;
	d->sectors = (m->size + 511) / 512;
	d->max_sectors = m->cap / 512;
	d->read = fz_read;
	d->write = fz_write;
	d->flush = fz_flush;
	d->write_zeroes = fz_zeroes;
	d->priv = m;
}

/* Every code the library returns must have a message and a name. */
static void fz_code(int rc)
{
	if (rc < 0)
		rc = -rc;
	if (rc >= VHDX_E_COUNT || !vhdx_strerror(rc) || !vhdx_errname(rc))
		__builtin_trap();
}

/* vhdx_check report: count, and trap on a code without a name. */
static void fz_report(void *ctx, int code, uint64_t a, uint64_t b)
{
	(void)a;
	(void)b;
	++*(int *)ctx;
	if (code <= 0 || code >= VHDX_C_COUNT)
		__builtin_trap();
}

/* Fixed session GUIDs (tag t) for the writable opens. */
static struct vhdx_session fz_sess(uint8_t t)
{
	struct vhdx_session s;
	memset(&s, t, sizeof(s));
	s.log_guid.b[0] ^= 0x55;
	s.data_write.b[1] ^= 0xAA;
	return s;
}

/* The three base images and the parent of the child. */
static struct fz_mem fz_base[3], fz_parent;
static struct vhdx fz_pv;
static uint64_t *fz_pbat;

/* An empty in-memory file of FZ_MAX_FILE capacity. */
static void fz_new(struct fz_mem *m)
{
	m->cap = FZ_MAX_FILE;
	m->data = calloc(1, m->cap);
	m->size = 0;
}

/* Write count sectors of a pattern at lba through a writable session (then close unless keep_open). */
static void fz_fill(struct fz_mem *m, uint64_t lba, uint32_t count, int cut)
{
	struct blk_dev d;
	static struct vhdx v;
	static uint8_t buf[64 * 512];
	fz_dev(&d, m);
	struct vhdx_session s = fz_sess(0x31);
	struct vhdx_open_opts o = { &s, NULL, 0 };
	if (vhdx_open(&v, &d, 0, &o))
		__builtin_trap();
	uint64_t *bat = malloc(vhdx_bat_bytes(&v));
	if (vhdx_load_bat(&v, bat))
		__builtin_trap();
	for (uint32_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + lba);
	if (cut)
		m->cut_after_flushes = 4;    /* headers (2), block data, log entry: then the cut */
	vhdx_write(&v, lba, count, buf);
	if (!cut)
		vhdx_close(&v);
	m->dropping = 0;
	m->cut_after_flushes = 0;
	free(bat);
}

/* Build the three base images (clean, pending log by a power cut after the log flush, child of a copy of the clean one). */
static void fz_init(void)
{
	struct vhdx_create_opts o;
	struct blk_dev d;
	memset(&o, 0, sizeof(o));
	for (int i = 0; i < 16; i++) {
		o.file_write.b[i] = (uint8_t)i;
		o.data_write.b[i] = (uint8_t)(i + 16);
		o.page83.b[i] = (uint8_t)(i + 32);
	}
	o.type = VHDX_DYNAMIC;
	o.size = 6 * FZ_MIB + 4096;
	o.block_size = FZ_MIB;
	for (int k = 0; k < 2; k++) {
		fz_new(&fz_base[k]);
		fz_dev(&d, &fz_base[k]);
		if (vhdx_create(&d, &o))
			__builtin_trap();
		fz_fill(&fz_base[k], 100, 40, 0);
		fz_fill(&fz_base[k], 2048 * 3 - 8, 16, k == 1);
	}
	/* The parent (a copy of the clean image) and a child of it with one partial block. */
	fz_parent = fz_base[0];
	fz_parent.data = malloc(fz_parent.cap);
	memcpy(fz_parent.data, fz_base[0].data, fz_parent.cap);
	static struct blk_dev pd;
	fz_dev(&pd, &fz_parent);
	pd.read_only = 1;
	if (vhdx_open(&fz_pv, &pd, VHDX_OPEN_RDONLY, NULL))
		__builtin_trap();
	fz_pbat = malloc(vhdx_bat_bytes(&fz_pv));
	if (vhdx_load_bat(&fz_pv, fz_pbat))
		__builtin_trap();
	o.type = VHDX_DIFF;
	o.size = 0;
	o.block_size = 0;
	o.parent = &fz_pv;
	o.relative_path = "parent.vhdx";
	o.data_write.b[0] ^= 0x77;
	fz_new(&fz_base[2]);
	fz_dev(&d, &fz_base[2]);
	if (vhdx_create(&d, &o))
		__builtin_trap();
	fz_fill(&fz_base[2], 7, 3, 0);
}

/* Where each patch target lies in a base image (offset, length); the BAT, metadata and log from the header/region layout of vhdx_create. */
static void fz_target(int t, uint64_t *off, uint64_t *len)
{
	static const uint64_t tab[][2] = {
		{ 0, 4096 },                      /* file identifier */
		{ 64 << 10, 4096 },               /* header 0 */
		{ 128 << 10, 4096 },              /* header 1 */
		{ 192 << 10, 4096 },              /* region table 0 (start) */
		{ 256 << 10, 4096 },              /* region table 1 (start) */
		{ FZ_MIB, 65536 },                /* the log */
		{ 2 * FZ_MIB, 4096 },             /* metadata table */
		{ 2 * FZ_MIB + (64 << 10), 4096 },/* metadata items */
		{ 3 * FZ_MIB, 65536 },            /* BAT */
		{ 4 * FZ_MIB, 2 * FZ_MIB },       /* first blocks / sector bitmap */
	};
	t %= (int)(sizeof(tab) / sizeof(tab[0]));
	*off = tab[t][0];
	*len = tab[t][1];
}

/* Recompute the CRC-32C of a header (4 KiB at off, field at +4) or region table (64 KiB). */
static void fz_fix_crc(struct fz_mem *m, uint64_t off, uint32_t len)
{
	fz_dirty(m, off + 4, 4);
	memset(m->data + off + 4, 0, 4);
	uint32_t c = vhdx_crc32c(0, m->data + off, len);
	memcpy(m->data + off + 4, &c, 4);
}

/* Reads at the start, middle, end, across the first block boundary, past the end (must fail), and one from the input. */
static void fz_reads(struct vhdx *v, const uint8_t *data, size_t size)
{
	static uint8_t buf[16 * 512];
	uint64_t n = v->sectors;
	uint64_t at[5] = { 0, n / 2, n ? n - 1 : 0, v->spb ? v->spb - 1 : 0, n };
	for (int i = 0; i < 5; i++) {
		uint32_t cnt = i == 3 ? 2 : 1;
		int rc = vhdx_read(v, at[i], cnt, buf);
		fz_code(rc);
		if ((at[i] >= n || cnt > n - at[i]) && rc == VHDX_OK)
			__builtin_trap();      /* a read past the virtual disk succeeded */
	}
	if (size >= 8 && n) {
		uint64_t lba;
		memcpy(&lba, data + size - 8, sizeof(lba));
		fz_code(vhdx_read(v, lba % n, (uint32_t)(lba >> 61) + 1 > n - lba % n ? 1 : (uint32_t)(lba >> 61) + 1, buf));
	}
}

/* One input: restore the base, apply the patches and fix-ups, then the read-only and (fix & 64) writable passes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready, last = -1;
	static struct fz_mem m;
	if (!ready) {
		fz_init();
		m.cap = FZ_MAX_FILE;
		m.data = calloc(1, m.cap);
		ready = 1;
	}
	if (size < 2)
		return 0;
	int bi = data[0] % 3;
	const struct fz_mem *b = &fz_base[bi];
	if (bi != last || m.ndirty < 0) {
		memcpy(m.data, b->data, m.cap);
	} else {
		for (int i = 0; i < m.ndirty; i++)
			memcpy(m.data + m.dirty[i][0], b->data + m.dirty[i][0], m.dirty[i][1]);
	}
	last = bi;
	m.ndirty = 0;
	m.size = b->size;
	m.dropping = 0;
	m.cut_after_flushes = 0;
	unsigned fix = data[1];
	size_t p = 2;
	while (p + 4 <= size) {
		uint64_t off, len;
		fz_target(data[p], &off, &len);
		uint64_t at = (data[p + 1] | (uint64_t)data[p + 2] << 8) % len;
		uint32_t n = data[p + 3];
		p += 4;
		if (n > size - p)
			n = (uint32_t)(size - p);
		if (at + n > len)
			n = (uint32_t)(len - at);
		if (off + at + n > m.size)
			break;
		fz_dirty(&m, off + at, n);
		memcpy(m.data + off + at, data + p, n);
		p += n;
	}
	if (fix & 1)
		fz_fix_crc(&m, 64 << 10, 4096);
	if (fix & 2)
		fz_fix_crc(&m, 128 << 10, 4096);
	if (fix & 4)
		fz_fix_crc(&m, 192 << 10, 65536);
	if (fix & 8)
		fz_fix_crc(&m, 256 << 10, 65536);
	if ((fix & 16) && (fix & 32))
		m.size -= (m.size / 3) & ~511ull;      /* truncated */

	/* Read-only: the log into an overlay, the bytes unchanged. */
	struct blk_dev d;
	fz_dev(&d, &m);
	d.read_only = 1;
	static struct vhdx v;
	uint64_t *bat = NULL, *scratch = NULL;
	void *ovl = NULL;
	struct vhdx_open_opts o = { NULL, NULL, 0 };
	int rc = vhdx_open(&v, &d, VHDX_OPEN_RDONLY, &o);
	fz_code(rc);
	if (rc == VHDX_E_LOG_OVERLAY && v.log_need <= (64u << 20)) {
		o.overlay = ovl = malloc(v.log_need + 1);
		o.overlay_bytes = v.log_need;
		rc = vhdx_open(&v, &d, VHDX_OPEN_RDONLY, &o);
		fz_code(rc);
	}
	if (rc == VHDX_OK && vhdx_bat_bytes(&v) <= FZ_BAT_CAP) {
		bat = malloc(vhdx_bat_bytes(&v) + 8);
		scratch = malloc(vhdx_bat_bytes(&v) + 8);
		rc = vhdx_load_bat(&v, bat);
		fz_code(rc);
		if (rc == VHDX_OK)
			rc = vhdx_check_overlaps(&v, scratch);
		fz_code(rc);
		if (rc == VHDX_OK) {
			if (v.has_parent) {
				struct vhdx_parent_info pi;
				fz_code(vhdx_parent_info(&v, &pi));
				char path[VHDX_PATH_MAX];
				int key;
				for (int i = 0; i < 4; i++)
					fz_code(vhdx_parent_candidate(&v, i, path, sizeof(path), &key));
				fz_code(vhdx_set_parent(&v, &fz_pv, &v));
			}
			fz_reads(&v, data, size);
			int defects = 0;
			rc = vhdx_check(&v, scratch, fz_report, &defects);
			if (rc < 0)
				fz_code(rc);
			else if (rc != defects)
				__builtin_trap();
		}
	}
	free(bat);
	free(scratch);
	free(ovl);
	bat = scratch = NULL;

	/* Writable: replay into the (copied) file, one write, close. */
	if (fix & 64) {
		fz_dev(&d, &m);
		struct vhdx_session s = fz_sess(0x42);
		struct vhdx_open_opts wo = { &s, NULL, 0 };
		rc = vhdx_open(&v, &d, 0, &wo);
		fz_code(rc);
		if (rc == VHDX_OK && vhdx_bat_bytes(&v) <= FZ_BAT_CAP) {
			bat = malloc(vhdx_bat_bytes(&v) + 8);
			scratch = malloc(vhdx_bat_bytes(&v) + 8);
			rc = vhdx_load_bat(&v, bat);
			if (rc == VHDX_OK)
				rc = vhdx_check_overlaps(&v, scratch);
			fz_code(rc);
			if (rc == VHDX_OK && v.sectors) {
				static uint8_t w[4 * 512];
				memset(w, 0xC3, sizeof(w));
				uint64_t lba = size >= 8 ? (data[size - 1] * 977ull) % v.sectors : 0;
				uint32_t cnt = v.sectors - lba < 4 ? (uint32_t)(v.sectors - lba) : 4;
				fz_code(vhdx_write(&v, lba, cnt, w));
				fz_code(vhdx_close(&v));
			}
		}
		free(bat);
		free(scratch);
	}
	return 0;
}
