/* ho.c: builds, checks and finds the hand-over table (include/vhdboot_handover.h); pure: no heap, no globals, no I/O. */
#include <stddef.h>
#include "../include/vhdboot_handover.h"
#include "../fs/part.h"           /* part_crc32 */

static const char *const ho_msgs[HO_E_COUNT][2] = {
	[HO_OK] = {"ok", "no error"},
	[HO_E_ARG] = {"arg", "bad argument"},
	[HO_E_FULL] = {"full", "the table does not fit in its buffer"},
	[HO_E_SIGNATURE] = {"signature", "no \"" HO_SIGNATURE "\" signature"},
	[HO_E_VERSION] = {"version", "a major version this reader does not know"},
	[HO_E_SIZE] = {"size", "total, header or record size out of bounds"},
	[HO_E_CRC] = {"crc", "the checksum does not match: the table is damaged"},
	[HO_E_DRIVES] = {"drives", "no drive records, too many, or records past the table's end"},
	[HO_E_OFFSET] = {"offset", "a string, chain or extent offset points outside the table"},
	[HO_E_FIELD] = {"field", "a field holds a value this version does not define"},
	[HO_E_NOT_FOUND] = {"not-found", "no hand-over table in the searched memory"},
	[HO_E_MOVED] = {"moved", "a copy of a table found away from where vhdboot placed it (stale)"},
};

const char *ho_strerror(int err)
{
	return (err >= 0 && err < HO_E_COUNT) ? ho_msgs[err][1] : "unknown hand-over table error";
}

const char *ho_errname(int err)
{
	return (err >= 0 && err < HO_E_COUNT) ? ho_msgs[err][0] : "unknown";
}

/* Byte copies: the table may sit at any 16-byte boundary and the builder never depends on libc. */
static void ho_copy(void *d, const void *s, uint32_t n)
{
	uint8_t *dp = d;
	const uint8_t *sp = s;
	while (n--)
		*dp++ = *sp++;
}

static void ho_zero(void *d, uint32_t n)
{
	uint8_t *dp = d;
	while (n--)
		*dp++ = 0;
}

int ho_begin(struct ho_builder *b, void *buf, uint32_t cap, unsigned ndrives)
{
	if (!b || !buf || ndrives == 0 || ndrives > HO_MAX_DRIVES)
		return HO_E_ARG;
	b->buf = buf;
	b->cap = cap > HO_MAX_BYTES ? HO_MAX_BYTES : cap;
	b->err = 0;
	b->used = (uint32_t)sizeof(struct ho_header) + ndrives * (uint32_t)sizeof(struct ho_drive);
	if (b->used > b->cap)
		return b->err = HO_E_FULL;
	ho_zero(buf, b->cap);
	struct ho_header *h = ho_head(b);
	ho_copy(h->signature, HO_SIGNATURE, HO_SIG_BYTES);
	h->version_major = HO_VERSION_MAJOR;
	h->version_minor = HO_VERSION_MINOR;
	h->header_bytes = sizeof(struct ho_header);
	h->drive_bytes = sizeof(struct ho_drive);
	h->ndrives = (uint8_t)ndrives;
	return 0;
}

struct ho_header *ho_head(struct ho_builder *b)
{
	return (struct ho_header *)(void *)b->buf;
}

struct ho_drive *ho_drive_at(struct ho_builder *b, unsigned i)
{
	if (i >= ho_head(b)->ndrives)
		return NULL;
	return (struct ho_drive *)(void *)(b->buf + sizeof(struct ho_header) + i * sizeof(struct ho_drive));
}

uint16_t ho_put(struct ho_builder *b, uint32_t len, uint32_t align)
{
	if (b->err)
		return 0;
	uint32_t off = b->used;
	if (align > 1)
		off = (off + align - 1) / align * align;
	if (off + len > b->cap || off > 0xFFFFu) {
		b->err = HO_E_FULL;
		return 0;
	}
	ho_zero(b->buf + off, len);
	b->used = off + len;
	return (uint16_t)off;
}

uint16_t ho_put_str(struct ho_builder *b, const char *s, uint32_t max)
{
	uint32_t n = 0;
	if (!s)
		s = "";
	while (n < max && s[n])
		n++;
	uint16_t off = ho_put(b, n + 1, 1);
	if (off)
		ho_copy(b->buf + off, s, n);   /* the NUL: ho_put zeroed it */
	return off;
}

void *ho_ptr(struct ho_builder *b, uint16_t off)
{
	return b->buf + off;
}

uint32_t ho_finish(struct ho_builder *b, uint32_t self_phys)
{
	if (b->err)
		return 0;
	struct ho_header *h = ho_head(b);
	h->total_bytes = b->used;
	h->self_phys = self_phys;
	h->crc32 = 0;
	h->crc32 = part_crc32(0, b->buf, b->used);
	return b->used;
}

/* Little-endian reads from a table of unknown alignment. */
static uint32_t ho_le(const uint8_t *p, int n)
{
	uint32_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* A string offset: 0, or inside [data, total) with a NUL before total. */
static int ho_str_ok(const uint8_t *t, uint32_t data, uint32_t total, uint32_t off)
{
	if (off == 0)
		return 1;
	if (off < data || off >= total)
		return 0;
	for (uint32_t i = off; i < total; i++)
		if (!t[i])
			return 1;
	return 0;
}

/* [off, off + len) inside [data, total) (off 0 allowed only with len 0). */
static int ho_range_ok(uint32_t data, uint32_t total, uint32_t off, uint32_t len)
{
	if (len == 0)
		return 1;
	return off >= data && off <= total && len <= total - off;
}

/* Every field and offset of record d (of a table whose data area is [data, total)). */
static int ho_check_drive(const uint8_t *t, uint32_t data, uint32_t total, const struct ho_drive *d)
{
	if (d->bios_drive < 0x80 || d->mode < HO_MODE_RW || d->mode > HO_MODE_SNAPSHOT ||
	    (d->format != HO_FMT_VHD && d->format != HO_FMT_VHDX) || d->image_type < HO_TYPE_FIXED ||
	    d->image_type > HO_TYPE_DIFF || d->place < HO_PLACE_DISK || d->place > HO_PLACE_RAM || d->fs > HO_FS_NTFS ||
	    d->part_scheme > HO_SCHEME_GPT ||
	    d->disk_scheme > HO_SCHEME_GPT || d->iface < HO_IFACE_ATA || d->iface > HO_IFACE_EFI || d->chain_len == 0)
		return HO_E_FIELD;
	if ((d->place == HO_PLACE_FILE) != (d->fs != HO_FS_NONE))
		return HO_E_FIELD;
	if (!ho_str_ok(t, data, total, d->model_off) || !ho_str_ok(t, data, total, d->serial_off) ||
	    !ho_str_ok(t, data, total, d->where_off))
		return HO_E_OFFSET;
	if (d->chain_off || d->place == HO_PLACE_FILE) {
		if (!ho_range_ok(data, total, d->chain_off, 2u * d->chain_len) || !d->chain_off)
			return HO_E_OFFSET;
		for (unsigned k = 0; k < d->chain_len; k++) {
			uint32_t so = ho_le(t + d->chain_off + 2 * k, 2);
			if (!so || !ho_str_ok(t, data, total, so))
				return HO_E_OFFSET;
		}
	}
	if (d->extents_count > d->extents_total ||
	    !ho_range_ok(data, total, d->extents_off, (uint32_t)d->extents_count * sizeof(struct ho_extent)) ||
	    (d->extents_count && !d->extents_off))
		return HO_E_OFFSET;
	if ((d->extents_count < d->extents_total) != !!(d->flags & HO_DF_EXT_PARTIAL))
		return HO_E_FIELD;
	return HO_OK;
}

int ho_check(const void *tv, uint32_t avail)
{
	const uint8_t *t = tv;
	if (!t || avail < HO_SIG_BYTES)
		return HO_E_ARG;
	for (unsigned i = 0; i < HO_SIG_BYTES; i++)
		if (t[i] != (uint8_t)HO_SIGNATURE[i])
			return HO_E_SIGNATURE;
	if (avail < sizeof(struct ho_header))
		return HO_E_SIZE;
	struct ho_header h;
	ho_copy(&h, t, sizeof(h));
	if (h.version_major != HO_VERSION_MAJOR)
		return HO_E_VERSION;
	if (h.header_bytes < sizeof(struct ho_header) || h.drive_bytes < sizeof(struct ho_drive) ||
	    h.total_bytes > HO_MAX_BYTES || h.total_bytes > avail || h.total_bytes < h.header_bytes)
		return HO_E_SIZE;
	uint8_t zero[4] = {0, 0, 0, 0};
	uint32_t crc = part_crc32(0, t, 16);
	crc = part_crc32(crc, zero, 4);
	crc = part_crc32(crc, t + 20, h.total_bytes - 20);
	if (crc != h.crc32)
		return HO_E_CRC;
	uint32_t data = h.header_bytes + (uint32_t)h.ndrives * h.drive_bytes;
	if (h.ndrives == 0 || h.ndrives > HO_MAX_DRIVES || data > h.total_bytes)
		return HO_E_DRIVES;
	if (!ho_str_ok(t, data, h.total_bytes, h.firmware_off))
		return HO_E_OFFSET;
	for (unsigned i = 0; i < h.ndrives; i++) {
		struct ho_drive d;
		ho_copy(&d, t + h.header_bytes + i * h.drive_bytes, sizeof(d));
		int rc = ho_check_drive(t, data, h.total_bytes, &d);
		if (rc)
			return rc;
	}
	return HO_OK;
}

const struct ho_drive *ho_drive_get(const void *tv, unsigned i)
{
	const uint8_t *t = tv;
	const struct ho_header *h = tv;
	if (i >= h->ndrives)
		return NULL;
	return (const struct ho_drive *)(const void *)(t + h->header_bytes + i * h->drive_bytes);
}

const char *ho_str(const void *t, uint16_t off)
{
	return off ? (const char *)t + off : "";
}

const char *ho_chain_path(const void *tv, const struct ho_drive *d, unsigned k)
{
	const uint8_t *t = tv;
	if (k >= d->chain_len || !d->chain_off)
		return "";
	return ho_str(t, (uint16_t)ho_le(t + d->chain_off + 2 * k, 2));
}

int ho_extent_get(const void *tv, const struct ho_drive *d, unsigned k, struct ho_extent *out)
{
	const uint8_t *t = tv;
	if (k >= d->extents_count)
		return HO_E_ARG;
	ho_copy(out, t + d->extents_off + k * sizeof(struct ho_extent), sizeof(*out));
	return HO_OK;
}

int ho_find(const void *memv, uint32_t len, uint32_t base, uint32_t *off)
{
	const uint8_t *mem = memv;
	int last = HO_E_NOT_FOUND;
	for (uint32_t o = (uint32_t)(-base % HO_ALIGN); o + HO_SIG_BYTES <= len; o += HO_ALIGN) {
		if (mem[o] != (uint8_t)HO_SIGNATURE[0])
			continue;
		int rc = ho_check(mem + o, len - o);
		if (rc == HO_E_SIGNATURE)
			continue;
		if (rc == HO_OK && ho_le(mem + o + 28, 4) != base + o)
			rc = HO_E_MOVED;  /* a copy of a table, not the one vhdboot placed here */
		if (rc == HO_OK) {
			*off = o;
			return HO_OK;
		}
		last = rc;
	}
	return last;
}
