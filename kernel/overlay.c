/* overlay.c: RAM copy-on-write overlay over a block device for mode=snapshot; pure logic, built for the firmware and for host tests. */
#include "overlay.h"

#define OVERLAY_SECTOR BLK_SECTOR
#define OVERLAY_MAX_LBA 0xFFFFFFFEull   /* keys are lba + 1 in 32 bits, 0 = empty */

/* Smallest power of two >= 2 * capacity (the table stays at most half full). */
static uint64_t overlay_table_entries(uint32_t capacity)
{
	uint64_t n = 1;
	while (n < 2ull * capacity)
		n <<= 1;
	return n;
}

uint64_t overlay_bytes(uint32_t capacity)
{
	if (capacity == 0 || capacity > 0x40000000u)
		return 0;
	return (uint64_t)capacity * OVERLAY_SECTOR + overlay_table_entries(capacity) * 8;
}

uint32_t overlay_capacity_for(uint64_t bytes)
{
	/* Each sector costs 512 bytes of pool plus at most 32 bytes of table (2x, rounded up to 2^k). */
	uint64_t c = bytes / (OVERLAY_SECTOR + 32);
	if (c > 0x40000000u)
		c = 0x40000000u;
	while (c && overlay_bytes((uint32_t)c) > bytes)
		c--;
	/* Grow into the table's rounding slack as long as it fits. */
	while (c < 0x40000000u && overlay_bytes((uint32_t)c + 1) && overlay_bytes((uint32_t)c + 1) <= bytes)
		c++;
	return (uint32_t)c;
}

/* Table index for lba: multiplicative hash (Knuth), linear probing. */
static uint32_t overlay_hash(const struct overlay *o, uint64_t lba)
{
	return ((uint32_t)lba * 2654435761u) & o->mask;
}

/* Pool slot holding lba, or -1. */
static int64_t overlay_find(const struct overlay *o, uint64_t lba)
{
	uint32_t key = (uint32_t)lba + 1;
	for (uint32_t i = overlay_hash(o, lba);; i = (i + 1) & o->mask) {
		if (o->keys[i] == key)
			return o->slots[i];
		if (o->keys[i] == 0)
			return -1;
	}
}

/* Pool slot for lba, taking a free one if lba is new (the caller checked there is room). */
static uint32_t overlay_claim(struct overlay *o, uint64_t lba)
{
	uint32_t key = (uint32_t)lba + 1;
	uint32_t i = overlay_hash(o, lba);
	for (; o->keys[i]; i = (i + 1) & o->mask)
		if (o->keys[i] == key)
			return o->slots[i];
	o->keys[i] = key;
	o->slots[i] = o->used++;
	return o->slots[i];
}

/* blk_dev.read: overlay sectors from memory; each run of other sectors is one lower read. */
static int overlay_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct overlay *o = d->priv;
	uint8_t *p = buf;
	uint32_t i = 0;
	while (i < count) {
		int64_t s = o->used ? overlay_find(o, lba + i) : -1;
		if (s >= 0) {
			__builtin_memcpy(p + (size_t)i * OVERLAY_SECTOR, o->pool + (size_t)s * OVERLAY_SECTOR,
					 OVERLAY_SECTOR);
			i++;
			continue;
		}
		uint32_t j = i + 1;
		while (j < count && (!o->used || overlay_find(o, lba + j) < 0))
			j++;
		o->lower_reads++;
		int st = blk_read(o->lower, lba + i, j - i, p + (size_t)i * OVERLAY_SECTOR);
		if (st != BLK_OK)
			return st;
		i = j;
	}
	return BLK_OK;
}

/* blk_dev.write: all sectors into the pool, or none (BLK_E_NOSPACE when the pool lacks room). */
static int overlay_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct overlay *o = d->priv;
	const uint8_t *p = buf;
	uint32_t fresh = 0;
	for (uint32_t i = 0; i < count; i++)
		if (overlay_find(o, lba + i) < 0)
			fresh++;
	if (fresh > o->capacity - o->used) {
		o->refused++;
		if (o->on_full)
			o->on_full(o, lba, count, fresh - (o->capacity - o->used));
		return BLK_E_NOSPACE;
	}
	for (uint32_t i = 0; i < count; i++) {
		uint32_t s = overlay_claim(o, lba + i);
		__builtin_memcpy(o->pool + (size_t)s * OVERLAY_SECTOR, p + (size_t)i * OVERLAY_SECTOR,
				 OVERLAY_SECTOR);
	}
	return BLK_OK;
}

/* blk_dev.flush: the overlay is memory and the lower device is never written: nothing to do. */
static int overlay_flush(struct blk_dev *d)
{
	(void)d;
	return BLK_OK;
}

struct blk_dev *overlay_init(struct overlay *o, struct blk_dev *lower, void *mem, uint32_t capacity,
			     const char *name)
{
	uint64_t bytes = overlay_bytes(capacity);
	if (!o || !lower || !lower->read || !mem || !bytes || lower->sectors > OVERLAY_MAX_LBA)
		return NULL;
	__builtin_memset(o, 0, sizeof(*o));
	o->lower = lower;
	o->capacity = capacity;
	uint64_t entries = overlay_table_entries(capacity);
	o->mask = (uint32_t)(entries - 1);
	o->keys = mem;
	o->slots = o->keys + entries;
	o->pool = (uint8_t *)(o->slots + entries);
	__builtin_memset(o->keys, 0, (size_t)entries * 4);
	size_t n = 0;
	while (name && name[n] && n < sizeof(o->name) - 1) {
		o->name[n] = name[n];
		n++;
	}
	o->name[n] = 0;
	o->blk.name = o->name;
	o->blk.sectors = lower->sectors;
	o->blk.size_bytes = lower->sectors * OVERLAY_SECTOR;
	o->blk.max_sectors = lower->sectors;
	o->blk.read_only = 0;
	o->blk.read = overlay_read;
	o->blk.write = overlay_write;
	o->blk.flush = overlay_flush;
	o->blk.priv = o;
	return &o->blk;
}
