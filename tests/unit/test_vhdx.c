/* test_vhdx.c: cmocka unit tests of the vhdx/ library over the RAM block device (ramdev.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../vhdx/vhdx.h"
#include "../../image/resolve.h"   /* res_vhdx_parent_paths */
#include "ramdev.h"

#define MIB (1u << 20)

/* An opened image with its BAT (and overlay when one was needed). */
struct img {
	struct ramdev *m;
	struct vhdx v;
	uint64_t *bat;
	void *ovl;
};

/* Session GUIDs distinct per tag. */
static struct vhdx_session sess(uint8_t tag)
{
	struct vhdx_session s;
	for (int i = 0; i < 16; i++) {
		s.file_write.b[i] = (uint8_t)(0x10 + tag + i);
		s.data_write.b[i] = (uint8_t)(0x40 + tag + i);
		s.log_guid.b[i] = (uint8_t)(0x70 + tag + i);
	}
	return s;
}

/* Open m (writable unless ro), load the BAT, check overlaps; a read-only open gets an overlay if the log needs one. */
static int img_open(struct img *im, struct ramdev *m, int ro, uint8_t tag)
{
	memset(im, 0, sizeof(*im));
	im->m = m;
	struct vhdx_session s = sess(tag);
	struct vhdx_open_opts o = { &s, NULL, 0 };
	int r = vhdx_open(&im->v, &m->blk, ro ? VHDX_OPEN_RDONLY : 0, &o);
	if (r == VHDX_E_LOG_OVERLAY && ro) {
		o.overlay = im->ovl = malloc(im->v.log_need);
		o.overlay_bytes = im->v.log_need;
		r = vhdx_open(&im->v, &m->blk, VHDX_OPEN_RDONLY, &o);
	}
	if (r)
		return r;
	im->bat = malloc(vhdx_bat_bytes(&im->v));
	r = vhdx_load_bat(&im->v, im->bat);
	if (r)
		return r;
	uint64_t *scratch = malloc(vhdx_bat_bytes(&im->v));
	r = vhdx_check_overlaps(&im->v, scratch);
	free(scratch);
	return r;
}

/* Free what img_open allocated (the device stays). */
static void img_close(struct img *im)
{
	free(im->bat);
	free(im->ovl);
	im->bat = NULL;
	im->ovl = NULL;
}

/* A new image on a growing RAM device (no write_zeroes: the library writes its own zeros). */
static struct ramdev *make(int type, uint64_t size, uint32_t bs, const struct vhdx *parent)
{
	struct ramdev *m = ramdev_growing(1ull << 31, 0);
	struct vhdx_create_opts o;
	memset(&o, 0, sizeof(o));
	o.type = type;
	o.size = size;
	o.block_size = bs;
	for (int i = 0; i < 16; i++) {
		o.file_write.b[i] = (uint8_t)(i + 1);
		o.data_write.b[i] = (uint8_t)(i + 0x21 + type);
		o.page83.b[i] = (uint8_t)(i + 0x83);
	}
	o.parent = parent;
	if (parent)
		o.relative_path = "..\\base/parent.vhdx";
	assert_int_equal(vhdx_create(&m->blk, &o), VHDX_OK);
	return m;
}

/* n pseudo-random bytes from seed. */
static void fill(uint8_t *b, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (uint8_t)(seed >> 16);
	}
}

/* Nonzero when every byte is zero. */
static int all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

/* The CRC-32C check value of "123456789" (RFC 3720), and continuation. */
static void test_crc32c(void **state)
{
	(void)state;
	assert_int_equal(vhdx_crc32c(0, "123456789", 9), 0xE3069283u);
	/* Continuing a CRC over two pieces gives the CRC of the whole. */
	assert_int_equal(vhdx_crc32c(vhdx_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
	assert_int_equal(vhdx_crc32c(0, "", 0), 0);
}

/* GUID text <-> stored bytes (mixed endian), braces required. */
static void test_guid_text(void **state)
{
	(void)state;
	struct vhdx_guid g, h;
	/* The VHDX parent locator type, as the specification writes it, and as stored. */
	static const uint8_t stored[16] = { 0xB7, 0xEF, 0x4A, 0xB0, 0x9E, 0xD1, 0x81, 0x4A, 0xB7, 0x89, 0x25, 0xB8, 0xE9, 0x44, 0x59, 0x13 };
	const char *s = "{B04AEFB7-D19E-4A81-B789-25B8E9445913}";
	assert_int_equal(vhdx_guid_parse(s, strlen(s), &g), 0);
	assert_memory_equal(g.b, stored, 16);
	char out[39];
	vhdx_guid_str(&g, out);
	assert_string_equal(out, "{b04aefb7-d19e-4a81-b789-25b8e9445913}");
	assert_int_equal(vhdx_guid_parse(out, strlen(out), &h), 0);
	assert_memory_equal(g.b, h.b, 16);
	assert_int_equal(vhdx_guid_parse("b04aefb7-d19e-4a81-b789-25b8e9445913", 36, &h), -1);
	/* The volume GUID of a volume_path (the seed's example). */
	const char *rest;
	assert_int_equal(vhdx_volume_guid("\\\\?\\Volume{B04AEFB7-D19E-4A81-B789-25B8E9445913}\\path2\\parent.vhdx", &h, &rest), 0);
	assert_memory_equal(h.b, stored, 16);
	assert_string_equal(rest, "\\path2\\parent.vhdx");
	assert_int_equal(vhdx_volume_guid("//?/Volume{b04aefb7-d19e-4a81-b789-25b8e9445913}/x", &h, &rest), 0);
	assert_int_equal(vhdx_volume_guid("\\\\?\\d:\\path2\\parent.vhdx", &h, &rest), -1);
	assert_int_equal(vhdx_volume_guid("\\\\?\\Volume{b04aefb7-d19e}", &h, &rest), -1);
	assert_int_equal(vhdx_guid_parse("{g04aefb7-d19e-4a81-b789-25b8e9445913}", 38, &h), -1);
}

/* Every code has a distinct name and a message. */
static void test_messages(void **state)
{
	(void)state;
	for (int e = 1; e < VHDX_E_COUNT; e++) {
		assert_string_not_equal(vhdx_errname(e), "unknown");
		for (int f = 1; f < e; f++)
			assert_string_not_equal(vhdx_errname(e), vhdx_errname(f));
	}
	for (int c = 1; c < VHDX_C_COUNT; c++)
		assert_string_not_equal(vhdx_check_name(c), "unknown");
	assert_string_equal(vhdx_errname(VHDX_E_COUNT), "unknown");
}

/* Create, open writable, allocate across a block boundary, write in place, close, reopen read-only. */
static void test_create_open_rw(void **state)
{
	(void)state;
	struct ramdev *m = make(VHDX_DYNAMIC, 20 * MIB + 4096, MIB, NULL);
	struct img im;
	assert_int_equal(img_open(&im, m, 0, 1), VHDX_OK);
	assert_int_equal(im.v.block_size, MIB);
	assert_int_equal(im.v.sectors, (20 * MIB + 4096) / 512);
	assert_int_equal(im.v.chunk_ratio, 4096);
	assert_int_equal(im.v.data_blocks, 21);
	assert_int_equal(im.v.cur, 1);
	uint64_t seq0 = im.v.hdr.seq;
	uint8_t buf[8192], back[8192];
	assert_int_equal(vhdx_read(&im.v, 0, 16, back), VHDX_OK);
	assert_true(all_zero(back, sizeof(back)));
	/* A write across a block boundary allocates two blocks, through the log. */
	fill(buf, sizeof(buf), 7);
	uint64_t lba = MIB / 512 - 5;
	assert_int_equal(vhdx_write(&im.v, lba, 16, buf), VHDX_OK);
	assert_int_equal(vhdx_block_state(&im.v, lba), VHDX_PB_FULLY_PRESENT);
	assert_int_equal(vhdx_block_state(&im.v, lba + 15), VHDX_PB_FULLY_PRESENT);
	assert_int_equal(vhdx_block_state(&im.v, 5 * MIB / 512), VHDX_PB_NOT_PRESENT);
	assert_true(im.v.hdr.seq >= seq0 + 2);
	assert_memory_equal(im.v.hdr.data_write.b, sess(1).data_write.b, 16);
	assert_false(vhdx_guid_is_zero(&im.v.hdr.log_guid));
	assert_int_equal(vhdx_read(&im.v, lba, 16, back), VHDX_OK);
	assert_memory_equal(buf, back, sizeof(buf));
	/* In place: a second write of an allocated block touches no metadata. */
	int before = m->writes;
	assert_int_equal(vhdx_write(&im.v, lba + 1, 1, buf + 4096), VHDX_OK);
	assert_int_equal(m->writes, before + 1);
	assert_int_equal(vhdx_close(&im.v), VHDX_OK);
	assert_true(vhdx_guid_is_zero(&im.v.hdr.log_guid));
	img_close(&im);
	/* Reopened read-only: clean, same data. */
	assert_int_equal(img_open(&im, m, 1, 2), VHDX_OK);
	assert_int_equal(im.v.state, 0);
	assert_int_equal(vhdx_read(&im.v, lba + 1, 1, back), VHDX_OK);
	assert_memory_equal(buf + 4096, back, 512);
	assert_int_equal(vhdx_write(&im.v, 0, 1, buf), VHDX_E_READ_ONLY);
	assert_int_equal(vhdx_read(&im.v, im.v.sectors - 1, 2, back), VHDX_E_RANGE);
	img_close(&im);
	ramdev_free(m);
}

/* A fixed image: every block present, writes in place, the file never grows. */
static void test_fixed(void **state)
{
	(void)state;
	struct ramdev *m = make(VHDX_FIXED, 9 * MIB, 4 * MIB, NULL);
	struct img im;
	assert_int_equal(img_open(&im, m, 0, 1), VHDX_OK);
	assert_true(im.v.leave_allocated);
	for (uint64_t b = 0; b < im.v.data_blocks; b++)
		assert_int_equal(vhdx_block_state(&im.v, b * im.v.spb), VHDX_PB_FULLY_PRESENT);
	uint64_t size = m->blk.size_bytes;
	uint8_t buf[1024];
	fill(buf, sizeof(buf), 3);
	assert_int_equal(vhdx_write(&im.v, 12345, 2, buf), VHDX_OK);
	assert_int_equal(m->blk.size_bytes, size);
	assert_int_equal(vhdx_close(&im.v), VHDX_OK);
	uint64_t *scratch = malloc(vhdx_bat_bytes(&im.v));
	assert_int_equal(vhdx_check(&im.v, scratch, NULL, NULL), 0);
	free(scratch);
	img_close(&im);
	ramdev_free(m);
}

/* Refused arguments: a writable open without session, bad block and disk sizes, a child without parent. */
static void test_bad_args(void **state)
{
	(void)state;
	struct ramdev *m = make(VHDX_DYNAMIC, 4 * MIB, MIB, NULL);
	struct vhdx v;
	assert_int_equal(vhdx_open(&v, &m->blk, 0, NULL), VHDX_E_BAD_ARG);   /* writable without a session */
	struct ramdev *n = ramdev_growing(1ull << 31, 0);
	struct vhdx_create_opts o;
	memset(&o, 0, sizeof(o));
	o.type = VHDX_DYNAMIC;
	o.size = 4 * MIB;
	o.block_size = 3 * MIB;
	assert_int_equal(vhdx_create(&n->blk, &o), VHDX_E_BLOCK_SIZE);
	o.block_size = 512u << 20;
	assert_int_equal(vhdx_create(&n->blk, &o), VHDX_E_BLOCK_SIZE);
	o.block_size = 0;
	o.size = 1000;
	assert_int_equal(vhdx_create(&n->blk, &o), VHDX_E_SIZE);
	o.size = 4 * MIB;
	o.type = VHDX_DIFF;
	assert_int_equal(vhdx_create(&n->blk, &o), VHDX_E_BAD_ARG);          /* no parent */
	ramdev_free(n);
	ramdev_free(m);
}

/* Flip a byte of header copy idx (0 at 64 KiB, 1 at 128 KiB). */
static void damage_header(struct ramdev *m, int idx)
{
	m->data[(idx ? 128u : 64u) * 1024 + 100] ^= 0x5A;
}

/* A torn current header: the other copy is used and named; a session repairs both; both torn is refused. */
static void test_torn_header(void **state)
{
	(void)state;
	struct ramdev *m = make(VHDX_DYNAMIC, 4 * MIB, MIB, NULL);
	struct img im;
	/* Copy 1 (sequence 2) is current; torn, copy 0 is used and named. */
	damage_header(m, 1);
	assert_int_equal(img_open(&im, m, 1, 1), VHDX_OK);
	assert_int_equal(im.v.cur, 0);
	assert_int_equal(im.v.hdr.seq, 1);
	assert_true(im.v.state & VHDX_ST_HEADER_COPY_BAD);
	assert_int_equal(im.v.hdr_err[1], VHDX_E_HEADERS_BAD);
	img_close(&im);
	/* A writable session rewrites both copies: valid again, higher sequence numbers. */
	assert_int_equal(img_open(&im, m, 0, 1), VHDX_OK);
	uint8_t b[512] = { 1 };
	assert_int_equal(vhdx_write(&im.v, 0, 1, b), VHDX_OK);
	assert_int_equal(vhdx_close(&im.v), VHDX_OK);
	img_close(&im);
	assert_int_equal(img_open(&im, m, 1, 1), VHDX_OK);
	assert_int_equal(im.v.state & VHDX_ST_HEADER_COPY_BAD, 0);
	assert_true(im.v.hdr.seq > 2);
	img_close(&im);
	damage_header(m, 0);
	damage_header(m, 1);
	assert_int_equal(img_open(&im, m, 1, 1), VHDX_E_HEADERS_BAD);
	img_close(&im);
	ramdev_free(m);
}

/* vhdx_check report: collect the codes as bits. */
static void collect(void *ctx, int code, uint64_t a, uint64_t b)
{
	(void)a;
	(void)b;
	*(unsigned *)ctx |= 1u << code;
}

/*
 * Power cut after every possible number of device writes during a write
 * that allocates two blocks: the disk afterwards opens (replaying what the
 * log holds), reads either the old data or the new data for each block,
 * the new data whenever the write was acknowledged, and checks clean.
 */
static void test_power_cut(void **state)
{
	(void)state;
	struct ramdev *base = make(VHDX_DYNAMIC, 8 * MIB, MIB, NULL);
	uint8_t buf[2048], back[2048];
	fill(buf, sizeof(buf), 11);
	uint64_t lba = MIB / 512 - 2;
	int saw_partial = 0, saw_replay = 0;
	for (long k = 0; k < 200; k++) {
		struct ramdev *c = ramdev_clone(base);
		struct img im;
		assert_int_equal(img_open(&im, c, 0, 1), VHDX_OK);
		c->writes_left = k;
		int rc = vhdx_write(&im.v, lba, 4, buf);
		img_close(&im);
		struct ramdev *after = ramdev_clone(c);   /* what the disk holds after the cut */
		ramdev_free(c);
		struct img re;
		/* Read-only first: a pending log goes into the overlay, the disk stays as it is. */
		int stored = after->stored;
		assert_int_equal(img_open(&re, after, 1, 2), VHDX_OK);
		assert_int_equal(after->stored, stored);
		assert_int_equal(vhdx_read(&re.v, lba, 4, back), VHDX_OK);
		int replayed_ro = !!(re.v.state & VHDX_ST_LOG_OVERLAY);
		uint8_t ro[2048];
		memcpy(ro, back, sizeof(ro));
		img_close(&re);
		/* Writable: replayed into the file; the same disk content. */
		assert_int_equal(img_open(&re, after, 0, 3), VHDX_OK);
		assert_int_equal(!!(re.v.state & VHDX_ST_LOG_REPLAYED), replayed_ro);
		saw_replay |= replayed_ro;
		assert_int_equal(vhdx_read(&re.v, lba, 4, back), VHDX_OK);
		assert_memory_equal(ro, back, sizeof(back));
		for (int half = 0; half < 2; half++) {
			const uint8_t *got = back + half * 1024;
			int is_new = !memcmp(got, buf + half * 1024, 1024), is_old = all_zero(got, 1024);
			assert_true(is_new || is_old);
			if (rc == VHDX_OK)
				assert_true(is_new);
			saw_partial |= is_new && rc;
		}
		uint64_t *scratch = malloc(vhdx_bat_bytes(&re.v));
		unsigned codes = 0;
		assert_true(vhdx_check(&re.v, scratch, collect, &codes) >= 0);
		/* Only the marks of an unclean end: a log replayed, or a named log with nothing valid in it. */
		assert_int_equal(codes & ~((1u << VHDX_C_LOG_PENDING) | (1u << VHDX_C_LOG_IGNORED)), 0);
		assert_int_equal(!!(codes & (1u << VHDX_C_LOG_PENDING)), replayed_ro);
		free(scratch);
		img_close(&re);
		ramdev_free(after);
		if (rc == VHDX_OK)
			break;
		assert_true(k < 199);
	}
	assert_true(saw_partial);
	assert_true(saw_replay);
	ramdev_free(base);
}

/* A device that cannot grow by a block: no-space, nothing changed, the image still clean. */
static void test_nospace(void **state)
{
	(void)state;
	struct ramdev *m = make(VHDX_DYNAMIC, 8 * MIB, MIB, NULL);
	m->blk.max_sectors = m->blk.sectors + 100;   /* room for less than a block */
	struct img im;
	assert_int_equal(img_open(&im, m, 0, 1), VHDX_OK);
	uint8_t b[512] = { 9 };
	assert_int_equal(vhdx_write(&im.v, 5000, 1, b), VHDX_E_NOSPACE);
	assert_int_equal(vhdx_block_state(&im.v, 5000), VHDX_PB_NOT_PRESENT);
	assert_int_equal(vhdx_close(&im.v), VHDX_OK);
	img_close(&im);
	assert_int_equal(img_open(&im, m, 1, 1), VHDX_OK);
	assert_int_equal(im.v.state, 0);
	img_close(&im);
	ramdev_free(m);
}

/* A read-only open of a pending log: refused without (or with too small) an overlay; log_need exact and within the bound. */
static void test_overlay_size(void **state)
{
	(void)state;
	/* Cut the power right after the log entry is flushed: the log must be replayed. */
	struct ramdev *base = make(VHDX_DYNAMIC, 8 * MIB, MIB, NULL);
	struct ramdev *after = NULL;
	uint8_t buf[512];
	fill(buf, sizeof(buf), 5);
	for (long k = 1; k < 100 && !after; k++) {
		struct ramdev *c = ramdev_clone(base);
		struct img im;
		assert_int_equal(img_open(&im, c, 0, 1), VHDX_OK);
		c->writes_left = k;
		vhdx_write(&im.v, 3000, 1, buf);
		img_close(&im);
		struct ramdev *a = ramdev_clone(c);
		ramdev_free(c);
		struct vhdx v;
		struct vhdx_open_opts o = { NULL, NULL, 0 };
		if (vhdx_open(&v, &a->blk, VHDX_OPEN_RDONLY, &o) == VHDX_E_LOG_OVERLAY)
			after = a;
		else
			ramdev_free(a);
	}
	assert_non_null(after);
	struct vhdx v;
	struct vhdx_open_opts o = { NULL, NULL, 0 };
	assert_int_equal(vhdx_open(&v, &after->blk, VHDX_OPEN_RDONLY, &o), VHDX_E_LOG_OVERLAY);
	size_t need = v.log_need;
	/* One BAT page: a record head and 4 KiB. */
	assert_int_equal(need, VHDX_OVL_REC + 4096);
	assert_true(need <= vhdx_log_overlay_max(v.hdr.log_length));
	uint8_t *ovl = malloc(need);
	o.overlay = ovl;
	o.overlay_bytes = need - 1;
	assert_int_equal(vhdx_open(&v, &after->blk, VHDX_OPEN_RDONLY, &o), VHDX_E_LOG_OVERLAY);
	o.overlay_bytes = need;
	assert_int_equal(vhdx_open(&v, &after->blk, VHDX_OPEN_RDONLY, &o), VHDX_OK);
	assert_true(v.state & VHDX_ST_LOG_OVERLAY);
	assert_int_equal(v.log_replayed, 1);
	uint64_t *bat = malloc(vhdx_bat_bytes(&v));
	assert_int_equal(vhdx_load_bat(&v, bat), VHDX_OK);
	uint8_t back[512];
	assert_int_equal(vhdx_read(&v, 3000, 1, back), VHDX_OK);
	assert_memory_equal(back, buf, 512);
	free(bat);
	free(ovl);
	ramdev_free(after);
	ramdev_free(base);
}

/* A child of a dynamic parent: locator, parent reads, partial blocks, bitmap updates through the log, linkage. */
static void test_differencing(void **state)
{
	(void)state;
	struct ramdev *pm = make(VHDX_DYNAMIC, 6 * MIB, MIB, NULL);
	struct img p;
	assert_int_equal(img_open(&p, pm, 0, 1), VHDX_OK);
	uint8_t pat[MIB / 2];
	fill(pat, sizeof(pat), 99);
	assert_int_equal(vhdx_write(&p.v, 0, sizeof(pat) / 512, pat), VHDX_OK);
	assert_int_equal(vhdx_close(&p.v), VHDX_OK);
	img_close(&p);
	assert_int_equal(img_open(&p, pm, 1, 1), VHDX_OK);
	int parent_writes = pm->writes, parent_flushes = pm->flushes;
	struct ramdev *cm = make(VHDX_DIFF, 0, 0, &p.v);
	struct img c;
	assert_int_equal(img_open(&c, cm, 0, 2), VHDX_OK);
	assert_true(c.v.has_parent);
	assert_int_equal(c.v.block_size, 2 * MIB);
	/* Virtual-disk metadata is the parent's (copied when forking). */
	assert_memory_equal(c.v.page83.b, p.v.page83.b, 16);
	assert_int_equal(c.v.pss, p.v.pss);
	assert_int_equal(c.v.vsize, p.v.vsize);
	struct vhdx_parent_info pi;
	assert_int_equal(vhdx_parent_info(&c.v, &pi), VHDX_OK);
	assert_memory_equal(pi.linkage.b, p.v.hdr.data_write.b, 16);
	assert_true(pi.has_path[VHDX_LOC_RELATIVE]);
	char path[256];
	int key;
	assert_int_equal(vhdx_parent_candidate(&c.v, 0, path, sizeof(path), &key), VHDX_OK);
	assert_int_equal(key, VHDX_LOC_RELATIVE);
	assert_string_equal(path, "..\\base\\parent.vhdx");
	assert_int_equal(vhdx_parent_candidate(&c.v, 1, path, sizeof(path), &key), VHDX_E_NO_LOCATOR);
	uint8_t back[2048];
	assert_int_equal(vhdx_read(&c.v, 0, 2, back), VHDX_E_NO_PARENT);
	/* Loops and linkage. */
	assert_int_equal(vhdx_set_parent(&c.v, &c.v, &c.v), VHDX_E_PARENT_LINKAGE);
	assert_int_equal(vhdx_set_parent(&c.v, &p.v, &c.v), VHDX_OK);
	assert_int_equal(vhdx_chain_depth(&c.v), 1);
	assert_int_equal(vhdx_read(&c.v, 10, 2, back), VHDX_OK);
	assert_memory_equal(back, pat + 10 * 512, 1024);
	/* A partial write: only its sectors come from the child. */
	uint8_t w[512];
	memset(w, 0xEE, sizeof(w));
	assert_int_equal(vhdx_write(&c.v, 11, 1, w), VHDX_OK);
	assert_int_equal(vhdx_block_state(&c.v, 11), VHDX_PB_PARTIALLY_PRESENT);
	assert_int_equal(vhdx_read(&c.v, 10, 2, back), VHDX_OK);
	assert_memory_equal(back, pat + 10 * 512, 512);
	assert_memory_equal(back + 512, w, 512);
	/* A second write into the same block sets more bits through the log. */
	assert_int_equal(vhdx_write(&c.v, 10, 1, w), VHDX_OK);
	assert_int_equal(vhdx_read(&c.v, 9, 3, back), VHDX_OK);
	assert_memory_equal(back, pat + 9 * 512, 512);
	assert_memory_equal(back + 512, w, 512);
	/* An unmapped block reads as zeros, not as the parent; a write keeps the zeros around it. */
	c.v.bat[0] = VHDX_PB_UNMAPPED;   /* (in memory only: block 0, over the parent's pattern) */
	assert_int_equal(vhdx_read(&c.v, 3, 1, back), VHDX_OK);
	assert_true(all_zero(back, 512));
	assert_int_equal(vhdx_write(&c.v, 4, 1, w), VHDX_OK);
	assert_int_equal(vhdx_block_state(&c.v, 4), VHDX_PB_FULLY_PRESENT);
	assert_int_equal(vhdx_read(&c.v, 3, 2, back), VHDX_OK);
	assert_true(all_zero(back, 512));
	assert_memory_equal(back + 512, w, 512);
	assert_int_equal(vhdx_close(&c.v), VHDX_OK);
	/* The parent is never written (nor flushed). */
	assert_int_equal(pm->writes, parent_writes);
	assert_int_equal(pm->flushes, parent_flushes);
	uint64_t *scratch = malloc(vhdx_bat_bytes(&c.v));
	assert_int_equal(vhdx_check(&c.v, scratch, NULL, NULL), 0);
	free(scratch);
	/* A parent that changed (another DataWriteGuid) is refused. */
	struct vhdx other = p.v;
	other.hdr.data_write.b[0] ^= 1;
	c.v.parent = NULL;
	assert_int_equal(vhdx_set_parent(&c.v, &other, &c.v), VHDX_E_PARENT_LINKAGE);
	img_close(&c);
	img_close(&p);
	ramdev_free(cm);
	ramdev_free(pm);
}

/* A tiny file system for the resolver tests: paths -> RAM devices, and the opened parents. */
struct fs_file {
	const char *path;
	struct ramdev *m;
};
struct fs_ctx {
	struct fs_file files[8];
	int nfiles;
	struct img open[8];
	int nopen, closes;
};

/* res_vhdx_ops.open_path over struct fs_ctx: a file that is not a VHDX is refused (no VHD parents). */
static int fs_open(void *ctx, const struct res_try *t, struct vhdx **parent, const char **path, int *err,
		   char *why, size_t wn)
{
	struct fs_ctx *c = ctx;
	for (int i = 0; i < c->nfiles; i++) {
		if (strcmp(c->files[i].path, t->path))
			continue;
		struct img *im = &c->open[c->nopen];
		if (memcmp(c->files[i].m->data, "vhdxfile", 8)) {
			*err = VHDX_E_SIGNATURE;
			if (wn)
				snprintf(why, wn, "%s is not a VHDX (a VHD cannot be the parent of a VHDX)", t->path);
			return RES_ERROR;
		}
		int r = img_open(im, c->files[i].m, 1, (uint8_t)(40 + c->nopen));
		if (r) {
			img_close(im);
			*err = r;
			return RES_ERROR;
		}
		c->nopen++;
		*parent = &im->v;
		*path = c->files[i].path;
		return RES_FOUND;
	}
	return RES_NOT_FOUND;
}

/* res_vhdx_ops.close: the most recent open goes. */
static void fs_close(void *ctx, struct vhdx *parent)
{
	struct fs_ctx *c = ctx;
	assert_ptr_equal(parent, &c->open[c->nopen - 1].v);
	img_close(&c->open[--c->nopen]);
	c->closes++;
}

static const struct res_vhdx_ops fs_ops = { fs_open, fs_close };

/* A child of parent with relative_path rel. */
static struct ramdev *make_child(const struct vhdx *parent, const char *rel)
{
	struct ramdev *m = ramdev_growing(1ull << 31, 0);
	struct vhdx_create_opts o;
	memset(&o, 0, sizeof(o));
	o.type = VHDX_DIFF;
	o.parent = parent;
	o.relative_path = rel;
	for (int i = 0; i < 16; i++)
		o.data_write.b[i] = (uint8_t)(0x90 + i + rel[0]);
	assert_int_equal(vhdx_create(&m->blk, &o), VHDX_OK);
	return m;
}

/* The VHDX chain walk: found through relative paths, refused for linkage, a VHD, or nothing there. */
static void test_resolve_chain(void **state)
{
	(void)state;
	static struct fs_ctx c;
	memset(&c, 0, sizeof(c));
	struct ramdev *base = make(VHDX_DYNAMIC, 4 * MIB, MIB, NULL);
	struct img b;
	assert_int_equal(img_open(&b, base, 1, 1), VHDX_OK);
	struct ramdev *mid = make_child(&b.v, "..\\base.vhdx");
	struct img mi;
	assert_int_equal(img_open(&mi, mid, 1, 2), VHDX_OK);
	struct ramdev *top = make_child(&mi.v, "mid.vhdx");
	img_close(&mi);
	img_close(&b);
	c.files[c.nfiles++] = (struct fs_file){ "/vm/base.vhdx", base };
	c.files[c.nfiles++] = (struct fs_file){ "/vm/disks/mid.vhdx", mid };
	static struct res_work w;
	char why[512];
	struct img t;
	assert_int_equal(img_open(&t, top, 1, 3), VHDX_OK);
	assert_int_equal(res_vhdx_open_chain(&fs_ops, &c, &w, &t.v, "/vm/disks/top.vhdx", 0, why, sizeof(why)), VHDX_OK);
	assert_int_equal(vhdx_chain_depth(&t.v), 2);
	uint8_t sec[512];
	assert_int_equal(vhdx_read(&t.v, 7, 1, sec), VHDX_OK);
	/* The base is replaced by another image: the linkage check refuses it, and says why. */
	struct ramdev *other = make(VHDX_DYNAMIC, 4 * MIB, MIB, NULL);   /* (same GUIDs as base until written) */
	struct img o;
	assert_int_equal(img_open(&o, other, 0, 9), VHDX_OK);
	assert_int_equal(vhdx_write(&o.v, 0, 1, sec), VHDX_OK);         /* a new DataWriteGuid */
	assert_int_equal(vhdx_close(&o.v), VHDX_OK);
	img_close(&o);
	c.files[0].m = other;
	for (int i = 0; i < c.nopen; i++)
		img_close(&c.open[i]);
	c.nopen = 0;
	t.v.parent = NULL;
	c.open[0].v.parent = NULL;
	assert_int_equal(res_vhdx_open_chain(&fs_ops, &c, &w, &t.v, "/vm/disks/top.vhdx", 0, why, sizeof(why)),
			 VHDX_E_PARENT_LINKAGE);
	assert_non_null(strstr(why, "parent linkage mismatch"));
	assert_non_null(strstr(why, "/vm/base.vhdx"));
	assert_int_equal(c.closes, 1);
	/* A VHD where the parent should be. */
	for (int i = 0; i < c.nopen; i++)
		img_close(&c.open[i]);
	c.nopen = 0;
	t.v.parent = NULL;
	memcpy(other->data, "conectix", 8);
	assert_int_equal(res_vhdx_open_chain(&fs_ops, &c, &w, &t.v, "/vm/disks/top.vhdx", 0, why, sizeof(why)),
			 VHDX_E_SIGNATURE);
	assert_non_null(strstr(why, "not a VHDX"));
	/* Nothing at the path: every try listed. */
	for (int i = 0; i < c.nopen; i++)
		img_close(&c.open[i]);
	c.nopen = 0;
	t.v.parent = NULL;
	c.nfiles = 1;   /* only base, not mid */
	assert_int_equal(res_vhdx_open_chain(&fs_ops, &c, &w, &t.v, "/vm/disks/top.vhdx", 0, why, sizeof(why)),
			 VHDX_E_PARENT_NOT_FOUND);
	assert_non_null(strstr(why, "tried /vm/disks/mid.vhdx"));
	for (int i = 0; i < c.nopen; i++)
		img_close(&c.open[i]);
	img_close(&t);
	ramdev_free(base);
	ramdev_free(mid);
	ramdev_free(top);
	ramdev_free(other);
}

/*
 * Two sessions with the same GUIDs (a poor random source): the second
 * session's entries must outrank the first one's still in the log, so a
 * crash never replays a stale BAT page over an acknowledged allocation.
 */
static void test_same_log_guid(void **state)
{
	(void)state;
	struct ramdev *base = make(VHDX_DYNAMIC, 12 * MIB, MIB, NULL);
	uint8_t a[512], b[512], back[512];
	fill(a, sizeof(a), 1);
	fill(b, sizeof(b), 2);
	struct img im;
	assert_int_equal(img_open(&im, base, 0, 7), VHDX_OK);
	for (int k = 0; k < 5; k++)
		assert_int_equal(vhdx_write(&im.v, (uint64_t)k * 2048, 1, a), VHDX_OK);
	assert_int_equal(vhdx_close(&im.v), VHDX_OK);
	img_close(&im);
	for (long cut = 0; cut < 100; cut++) {
		struct ramdev *c = ramdev_clone(base);
		assert_int_equal(img_open(&im, c, 0, 7), VHDX_OK);
		assert_int_equal(vhdx_write(&im.v, 6 * 2048, 1, b), VHDX_OK);   /* acknowledged */
		c->writes_left = cut;
		int rc = vhdx_write(&im.v, 7 * 2048, 1, b);
		img_close(&im);
		struct ramdev *after = ramdev_clone(c);
		ramdev_free(c);
		struct img re;
		assert_int_equal(img_open(&re, after, 1, 8), VHDX_OK);
		assert_int_equal(vhdx_read(&re.v, 6 * 2048, 1, back), VHDX_OK);
		assert_memory_equal(back, b, 512);
		for (int k = 0; k < 5; k++) {
			assert_int_equal(vhdx_read(&re.v, (uint64_t)k * 2048, 1, back), VHDX_OK);
			assert_memory_equal(back, a, 512);
		}
		img_close(&re);
		ramdev_free(after);
		if (rc == VHDX_OK)
			break;
	}
	ramdev_free(base);
}

/* The resolver's try list from a VHDX locator: the seed's order, Win32 prefixes dropped, duplicates dropped. */
static void test_resolve_paths(void **state)
{
	(void)state;
	struct ramdev *pm = make(VHDX_DYNAMIC, 4 * MIB, MIB, NULL);
	struct img p;
	assert_int_equal(img_open(&p, pm, 1, 1), VHDX_OK);
	struct ramdev *cm = ramdev_growing(1ull << 31, 0);
	struct vhdx_create_opts o;
	memset(&o, 0, sizeof(o));
	o.type = VHDX_DIFF;
	o.parent = &p.v;
	o.relative_path = "..\\base\\parent.vhdx";
	o.volume_path = "\\\\?\\Volume{26A21BDA-A627-11D7-9931-806E6F6E6963}\\path2\\sub3\\parent.vhdx";
	o.absolute_win32_path = "\\\\?\\d:\\images\\parent.vhdx";
	assert_int_equal(vhdx_create(&cm->blk, &o), VHDX_OK);
	struct img c;
	assert_int_equal(img_open(&c, cm, 1, 2), VHDX_OK);
	char buf[VHDX_PATH_MAX];
	int key;
	assert_int_equal(vhdx_parent_candidate(&c.v, 1, buf, sizeof(buf), &key), VHDX_OK);
	assert_int_equal(key, VHDX_LOC_VOLUME);
	assert_string_equal(buf, "\\\\?\\Volume{26A21BDA-A627-11D7-9931-806E6F6E6963}\\path2\\sub3\\parent.vhdx");
	static struct res_work w;
	assert_int_equal(res_vhdx_parent_paths(&c.v, "/vm/disks/child.vhdx", 0, &w), 0);
	static const char *const want[][2] = {
		{ "/vm/base/parent.vhdx", "relative_path" },
		{ "/path2/sub3/parent.vhdx", "volume_path" },
		{ "/vm/disks/parent.vhdx", "volume_path" },
		{ "/images/parent.vhdx", "absolute_win32_path" },
	};
	assert_int_equal(w.n, 4);
	for (int i = 0; i < 4; i++) {
		assert_string_equal(w.tries[i].path, want[i][0]);
		assert_string_equal(w.tries[i].via, want[i][1]);
		assert_int_equal(w.tries[i].idx, i);
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(w.tries[i].has_vol, 0);
	/* RES_VOLUME_GUID: the volume_path's own volume first (its GUID in GPT byte order), then the same tries. */
	assert_int_equal(res_vhdx_parent_paths(&c.v, "/vm/disks/child.vhdx", RES_VOLUME_GUID, &w), 0);
	assert_int_equal(w.n, 5);
	assert_string_equal(w.tries[0].path, "/vm/base/parent.vhdx");
	assert_int_equal(w.tries[0].has_vol, 0);
	assert_string_equal(w.tries[1].path, "/path2/sub3/parent.vhdx");
	assert_string_equal(w.tries[1].via, "volume_path");
	assert_int_equal(w.tries[1].has_vol, 1);
	static const uint8_t gpt[16] = { 0xDA, 0x1B, 0xA2, 0x26, 0x27, 0xA6, 0xD7, 0x11,
					 0x99, 0x31, 0x80, 0x6E, 0x6F, 0x6E, 0x69, 0x63 };
	assert_memory_equal(w.tries[1].vol, gpt, 16);
	for (int i = 2; i < 5; i++) {
		assert_string_equal(w.tries[i].path, want[i - 1][0]);   /* the same path on the child's volume stays */
		assert_int_equal(w.tries[i].has_vol, 0);
		assert_int_equal(w.tries[i].idx, i);
	}
	assert_int_equal(res_vhdx_parent_paths(&p.v, "/x.vhdx", 0, &w), VHD_E_NOT_DIFF);
	img_close(&c);
	img_close(&p);
	ramdev_free(cm);
	ramdev_free(pm);
}

/* The cmocka group. */
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_guid_text),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_create_open_rw),
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_torn_header),
		cmocka_unit_test(test_power_cut),
		cmocka_unit_test(test_nospace),
		cmocka_unit_test(test_overlay_size),
		cmocka_unit_test(test_differencing),
		cmocka_unit_test(test_resolve_paths),
		cmocka_unit_test(test_same_log_guid),
		cmocka_unit_test(test_resolve_chain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
