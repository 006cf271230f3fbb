/* fuzz_handover.c: libFuzzer target: handover/ho.c's parser (ho_check, the record/string/chain/extent getters, ho_find) over any bytes, with the CRC fixed up or not, and its builder over input-driven contents. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../include/vhdboot_handover.h"
#include "../../fs/part.h"        /* part_crc32: the harness re-signs tables so the fuzzer gets past the checksum */

/*
 * Input: byte 0 = mode, byte 1 = where the table sits in ho_find's window
 * (in 16-byte steps), the rest = the table's bytes.
 *   mode bit 0: fix the CRC (total_bytes from the table, clamped to the input)
 *   mode bit 1: also set self_phys to where ho_find will see the table
 *   mode bit 2: run ho_find over a window holding the table
 *   mode bit 3: build a table with the builder from the bytes (must check)
 * Every table lives in a heap block of exactly its length, so a read past
 * the bytes ho_check was told about is an ASan report.
 */
#define FZ_FIX_CRC 0x01u
#define FZ_FIX_SELF 0x02u
#define FZ_FIND 0x04u
#define FZ_BUILD 0x08u
#define FZ_FIND_BASE HO_SCAN_LO
#define FZ_WINDOW (HO_MAX_BYTES * 2u)

/* Little-endian 32-bit read/write at any alignment. */
static uint32_t fz_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void fz_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

/* Re-sign t (n bytes) as ho_finish would, over min(total_bytes, n) bytes; optionally set self_phys first. */
static void fz_resign(uint8_t *t, uint32_t n, int set_self, uint32_t self)
{
	if (n < sizeof(struct ho_header))
		return;
	if (set_self)
		fz_put32(t + 28, self);
	uint32_t total = fz_le32(t + 12);
	if (total < 20 || total > n)
		return;
	fz_put32(t + 16, 0);
	fz_put32(t + 16, part_crc32(0, t, total));
}

/* A string the parser returned must end inside the table [t, t + total). */
static void fz_str_in(const uint8_t *t, uint32_t total, const char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	if (p < t || p >= t + total)
		__builtin_trap();
	if (!memchr(p, 0, (size_t)(t + total - p)))
		__builtin_trap();
}

/* Walk everything a reader (vhdboot-attach) reads of a table that checked. */
static void fz_walk(const uint8_t *t, uint32_t avail)
{
	const struct ho_header *h = (const void *)t;
	uint32_t total = h->total_bytes;
	if (total > avail || total > HO_MAX_BYTES || h->ndrives == 0 || h->ndrives > HO_MAX_DRIVES)
		__builtin_trap();
	if (h->firmware_off)
		fz_str_in(t, total, ho_str(t, h->firmware_off));
	for (unsigned i = 0; i <= h->ndrives; i++) {
		const struct ho_drive *d = ho_drive_get(t, i);
		if (i == h->ndrives) {
			if (d)
				__builtin_trap();   /* past ndrives: NULL */
			break;
		}
		if (!d || (const uint8_t *)d < t + h->header_bytes ||
		    (const uint8_t *)d + sizeof(*d) > t + total)
			__builtin_trap();
		struct ho_drive dc;
		memcpy(&dc, d, sizeof(dc));
		if (dc.bios_drive < 0x80 || dc.chain_len == 0 || dc.extents_count > dc.extents_total)
			__builtin_trap();
		uint16_t offs[3] = { dc.model_off, dc.serial_off, dc.where_off };
		for (int k = 0; k < 3; k++)
			if (offs[k])
				fz_str_in(t, total, ho_str(t, offs[k]));
		for (unsigned k = 0; k <= dc.chain_len; k++) {
			const char *p = ho_chain_path(t, d, k);
			if (k == dc.chain_len || !dc.chain_off) {
				if (p[0])
					__builtin_trap();   /* past the chain: "" */
			} else {
				fz_str_in(t, total, p);
			}
		}
		for (unsigned k = 0; k <= dc.extents_count; k++) {
			struct ho_extent e;
			int rc = ho_extent_get(t, d, k, &e);
			if ((k < dc.extents_count) != (rc == HO_OK))
				__builtin_trap();
		}
	}
}

/* ho_check on an exact-size copy; returns its result after the checks every result must pass. */
static int fz_check(const uint8_t *bytes, uint32_t n)
{
	uint8_t *t = malloc(n ? n : 1);
	if (!t)
		return HO_E_ARG;
	memcpy(t, bytes, n);
	int rc = ho_check(t, n);
	if (rc < 0 || rc >= HO_E_COUNT || !ho_strerror(rc)[0] || !ho_errname(rc)[0])
		__builtin_trap();
	if (rc == HO_OK)
		fz_walk(t, n);
	free(t);
	return rc;
}

/* ho_find over a window with the table at slot*16 (plus an unaligned copy after it, which must be skipped). */
static void fz_find(const uint8_t *tbl, uint32_t n, uint32_t slot, unsigned mode)
{
	uint8_t *win = calloc(1, FZ_WINDOW);
	if (!win)
		return;
	uint32_t at = (slot * HO_ALIGN) % (FZ_WINDOW / 2);
	uint32_t len = n < FZ_WINDOW - at ? n : FZ_WINDOW - at;
	memcpy(win + at, tbl, len);
	if (mode & FZ_FIX_CRC)
		fz_resign(win + at, len, (mode & FZ_FIX_SELF) != 0, FZ_FIND_BASE + at);
	uint32_t off = 0xFFFFFFFFu;
	int rc = ho_find(win, FZ_WINDOW, FZ_FIND_BASE, &off);
	if (rc < 0 || rc >= HO_E_COUNT)
		__builtin_trap();
	if (rc == HO_OK) {
		if (off >= FZ_WINDOW || off % HO_ALIGN || fz_le32(win + off + 28) != FZ_FIND_BASE + off)
			__builtin_trap();
		if (ho_check(win + off, FZ_WINDOW - off) != HO_OK)
			__builtin_trap();   /* found means it checks */
		fz_walk(win + off, FZ_WINDOW - off);
	}
	free(win);
}

/* Build a table whose contents come from the input; a table the builder finishes must check. */
static void fz_build(const uint8_t *data, uint32_t n)
{
	static uint8_t buf[HO_MAX_BYTES];
	struct ho_builder b;
	uint32_t pos = 0;
#define FZ_NEXT() (pos < n ? data[pos++] : 0u)
	unsigned ndrives = FZ_NEXT() % (HO_MAX_DRIVES + 2);
	uint32_t cap = FZ_NEXT();
	cap = 64u + (cap | FZ_NEXT() << 8) % (HO_MAX_BYTES + 64u);
	int rc = ho_begin(&b, buf, cap, ndrives);
	if (ndrives == 0 || ndrives > HO_MAX_DRIVES) {
		if (rc != HO_E_ARG)
			__builtin_trap();
		return;
	}
	if (rc)
		return;
	char s[300];
	uint32_t sl = FZ_NEXT() % sizeof(s);
	for (uint32_t i = 0; i < sl; i++)
		s[i] = (char)(FZ_NEXT() | 1);
	s[sl] = 0;
	ho_head(&b)->firmware_off = ho_put_str(&b, s, FZ_NEXT());
	for (unsigned i = 0; i < ndrives; i++) {
		struct ho_drive *d = ho_drive_at(&b, i);
		d->bios_drive = (uint8_t)(0x80 + i);
		d->mode = (uint8_t)(HO_MODE_RW + FZ_NEXT() % 3);
		d->format = (uint8_t)(HO_FMT_VHD + FZ_NEXT() % 2);
		d->image_type = (uint8_t)(HO_TYPE_FIXED + FZ_NEXT() % 3);
		d->place = (uint8_t)(HO_PLACE_DISK + FZ_NEXT() % 4);
		d->fs = d->place == HO_PLACE_FILE ? (uint8_t)(HO_FS_FAT12 + FZ_NEXT() % 5) : HO_FS_NONE;
		d->iface = (uint8_t)(HO_IFACE_ATA + FZ_NEXT() % 4);
		d->chain_len = (uint8_t)(1 + FZ_NEXT() % 4);
		uint32_t from = FZ_NEXT() % (sl + 1);
		d->model_off = ho_put_str(&b, s + from, FZ_NEXT());
		if (d->place == HO_PLACE_FILE) {
			uint16_t chain = ho_put(&b, 2u * d->chain_len, 2);
			d->chain_off = chain;
			for (unsigned k = 0; k < d->chain_len; k++) {
				uint16_t p = ho_put_str(&b, s + FZ_NEXT() % (sl + 1), 256);
				if (chain && p) {
					uint8_t *c = ho_ptr(&b, (uint16_t)(chain + 2 * k));
					c[0] = (uint8_t)p, c[1] = (uint8_t)(p >> 8);
				}
			}
			d->extents_count = (uint16_t)(FZ_NEXT() % 20);
			d->extents_total = d->extents_count + (FZ_NEXT() & 1);
			if (d->extents_total > d->extents_count)
				d->flags |= HO_DF_EXT_PARTIAL;
			d->extents_off = ho_put(&b, d->extents_count * (uint32_t)sizeof(struct ho_extent), 8);
		}
	}
#undef FZ_NEXT
	uint32_t total = ho_finish(&b, FZ_FIND_BASE);
	if (b.err) {
		if (total != 0 || b.err != HO_E_FULL)
			__builtin_trap();
		return;
	}
	if (total == 0 || total > b.cap || fz_check(buf, total) != HO_OK)
		__builtin_trap();   /* the builder's own table must pass its parser */
}

/* HANDOVER_SEED_DIR=dir: write seeds built by the same builder the firmware uses (seeds.py sets it). */
static void fz_write_seeds(const char *dir)
{
	static uint8_t t[HO_MAX_BYTES];
	struct ho_builder b;
	const unsigned modes[] = { 0x00, FZ_FIX_CRC, FZ_FIX_CRC | FZ_FIX_SELF | FZ_FIND, FZ_FIND };
	for (unsigned v = 0; v < 3; v++) {
		unsigned nd = v + 1;
		if (ho_begin(&b, t, sizeof(t), nd))
			return;
		ho_head(&b)->firmware_off = ho_put_str(&b, "vhdboot seed", 64);
		ho_head(&b)->resident_phys = 0x0FF00000u;
		ho_head(&b)->resident_bytes = 0x40000u;
		ho_head(&b)->low_phys = 0x9D000u;
		ho_head(&b)->low_bytes = 0x3000u;
		for (unsigned i = 0; i < nd; i++) {
			struct ho_drive *d = ho_drive_at(&b, i);
			d->bios_drive = (uint8_t)(0x80 + i);
			d->mode = (uint8_t)(HO_MODE_RW + (i + v) % 3);
			d->format = HO_FMT_VHD;
			d->image_type = (uint8_t)(HO_TYPE_FIXED + (i + v) % 3);
			d->iface = HO_IFACE_ATA;
			d->chain_len = 1;
			d->virt_sectors = 1u << 20;
			d->disk_sectors = 1u << 21;
			d->model_off = ho_put_str(&b, "QEMU HARDDISK", 47);
			d->serial_off = ho_put_str(&b, "QM00001", 23);
			d->where_off = ho_put_str(&b, v ? "hd0,1:/images/x.vhd" : "pm", 64);
			if (v) {   /* a file on FAT with a chain and extents, the last one partial */
				d->place = HO_PLACE_FILE;
				d->fs = HO_FS_FAT32;
				d->part_scheme = HO_SCHEME_MBR;
				d->part_number = 1;
				d->chain_len = (uint8_t)(1 + i);
				d->chain_off = ho_put(&b, 2u * d->chain_len, 2);
				for (unsigned k = 0; k < d->chain_len; k++) {
					uint16_t p = ho_put_str(&b, k ? "/images/base.vhd" : "/images/x.vhd", 256);
					uint8_t *c = ho_ptr(&b, (uint16_t)(d->chain_off + 2 * k));
					c[0] = (uint8_t)p, c[1] = (uint8_t)(p >> 8);
				}
				d->extents_count = 3;
				d->extents_total = i ? 4 : 3;
				if (i)
					d->flags |= HO_DF_EXT_PARTIAL;
				d->extents_off = ho_put(&b, 3 * sizeof(struct ho_extent), 8);
				for (uint32_t k = 0; k < 3; k++) {
					struct ho_extent e = { k * 64, 64, 10000 + k * 1000 };
					memcpy(ho_ptr(&b, (uint16_t)(d->extents_off + k * sizeof(e))), &e, sizeof(e));
				}
			} else {
				d->place = HO_PLACE_DISK;
			}
		}
		uint32_t total = ho_finish(&b, FZ_FIND_BASE);
		if (!total || ho_check(t, total) != HO_OK)
			abort();   /* the seed itself must be a valid table */
		for (unsigned m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/table%u-mode%x", dir, nd, modes[m]);
			FILE *f = fopen(path, "wb");
			if (!f)
				abort();
			fputc((int)modes[m], f);
			fputc(0, f);
			fwrite(t, 1, total, f);
			fclose(f);
		}
	}
	static const uint8_t build_seed[] = { FZ_BUILD, 0, 2, 0x00, 0x10, 12, 'v', 'h', 'd', 'b', 'o', 'o', 't', ' ',
					      'x', 'y', 'z', '!', 40, 0, 1, 2, 2, 1, 3, 5, 7, 9 };
	char path[4096];
	snprintf(path, sizeof(path), "%s/build", dir);
	FILE *f = fopen(path, "wb");
	if (!f)
		abort();
	fwrite(build_seed, 1, sizeof(build_seed), f);
	fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *dir = getenv("HANDOVER_SEED_DIR");
	if (dir && dir[0])
		fz_write_seeds(dir);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > 2u + FZ_WINDOW)
		return 0;
	unsigned mode = data[0];
	uint32_t slot = data[1];
	const uint8_t *body = data + 2;
	uint32_t n = (uint32_t)size - 2;
	if (mode & FZ_BUILD) {
		fz_build(body, n);
		return 0;
	}
	uint8_t *t = malloc(n ? n : 1);
	if (!t)
		return 0;
	memcpy(t, body, n);
	if (mode & FZ_FIX_CRC)
		fz_resign(t, n, (mode & FZ_FIX_SELF) != 0, FZ_FIND_BASE);
	fz_check(t, n);
	if (mode & FZ_FIND)
		fz_find(t, n, slot, mode);
	free(t);
	return 0;
}
