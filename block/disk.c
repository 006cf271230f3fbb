/* disk.c: the disk registry (hdN = registration order among disks, moduleN among RAM images). */
#include "disk.h"

static struct disk disk_tab[DISK_MAX];
static int disk_n;
static uint8_t disk_status;       /* disk_note_status: the last BIOS status given up on */

/* Copy at most n-1 bytes of src into dst, NUL-terminated (src NULL: ""). */
static void disk_copy(char *dst, const char *src, unsigned n)
{
	unsigned i = 0;
	for (; src && src[i] && i + 1 < n; i++)
		dst[i] = src[i];
	dst[i] = 0;
}

/* "prefix" + decimal num into out (at most 11 characters). */
static void disk_name(char *out, const char *prefix, int num)
{
	char digits[12];
	int k = 0, i = 0;
	while (*prefix)
		out[i++] = *prefix++;
	do
		digits[k++] = (char)('0' + num % 10);
	while ((num /= 10) && k < 4);
	while (k)
		out[i++] = digits[--k];
	out[i] = 0;
}

/* Nonzero when the NUL-terminated strings a and b are equal. */
static int disk_same(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

int disk_add(struct blk_dev *blk, const char *driver, const char *where, const char *model, unsigned flags)
{
	if (disk_n >= DISK_MAX || !blk)
		return -1;
	int same_kind = 0;
	for (int i = 0; i < disk_n; i++)
		if ((disk_tab[i].flags & DISK_RAM) == (flags & DISK_RAM))
			same_kind++;
	struct disk *d = &disk_tab[disk_n];
	d->blk = blk;
	d->driver = driver;
	d->flags = flags;
	d->phys = 0;
	d->serial[0] = 0;         /* identity fields: the driver fills them after disk_add */
	d->io_base = 0;
	d->channel = 0;
	d->device = 0;
	d->bios_vec = 0;
	disk_copy(d->where, where, sizeof(d->where));
	disk_copy(d->model, model, sizeof(d->model));
	disk_name(d->label, (flags & DISK_RAM) ? "module" : "hd", same_kind);
	return disk_n++;
}

int disk_count(void)
{
	return disk_n;
}

struct disk *disk_get(int i)
{
	return i >= 0 && i < disk_n ? &disk_tab[i] : 0;
}

struct disk *disk_by_label(const char *label)
{
	for (int i = 0; i < disk_n; i++)
		if (disk_same(disk_tab[i].label, label))
			return &disk_tab[i];
	return 0;
}

struct disk *disk_by_where(const char *driver, const char *where)
{
	for (int i = 0; i < disk_n; i++)
		if (disk_same(disk_tab[i].driver, driver) && disk_same(disk_tab[i].where, where))
			return &disk_tab[i];
	return 0;
}

int disk_index(const struct disk *d)
{
	return (int)(d - disk_tab);
}

void disk_reset(void)
{
	disk_n = 0;
	disk_status = 0;
}

void disk_note_status(uint8_t st)
{
	disk_status = st;
}

uint8_t disk_take_status(void)
{
	uint8_t st = disk_status;

	disk_status = 0;
	return st;
}
