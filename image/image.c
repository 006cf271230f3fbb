/* image.c: walks the format table (IMG_FORMAT rows): probe any format, match a file suffix, the suffix list the scan hands to fs/. */
#include "image.h"
#include "../kernel/string.h"     /* memset, k_strlcpy */

#define IMG_MAX_SUFFIXES 15       /* over every format */

int img_format_count(void)
{
	return (int)(__stop_img_formats - __start_img_formats);
}

const struct img_format *img_format_get(int i)
{
	return i >= 0 && i < img_format_count() ? __start_img_formats[i] : NULL;
}

const struct img_format *img_probe_any(struct img_place *pl, struct blk_dev *dev, unsigned flags,
                                       struct blk_dev **open_dev)
{
	for (int i = 0; i < img_format_count(); i++) {
		const struct img_format *f = __start_img_formats[i];
		struct blk_dev *d = f->probe(pl, dev, flags);
		if (d) {
			if (open_dev)
				*open_dev = d;
			return f;
		}
	}
	return NULL;
}

/* ASCII lower case. */
static char img_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* Nonzero when name ends with suffix (lower case), ignoring ASCII case. */
static int img_ends_with(const char *name, const char *suffix)
{
	size_t n = 0, s = 0;
	while (name[n])
		n++;
	while (suffix[s])
		s++;
	if (s > n)
		return 0;
	for (size_t i = 0; i < s; i++)
		if (img_lower(name[n - s + i]) != suffix[i])
			return 0;
	return 1;
}

const struct img_format *img_suffix_match(const char *name)
{
	for (int i = 0; name && i < img_format_count(); i++)
		for (const char *const *s = __start_img_formats[i]->suffixes; s && *s; s++)
			if (img_ends_with(name, *s))
				return __start_img_formats[i];
	return NULL;
}

/* The joined list and its text, built on first use (the table is fixed at link time). */
static const char *img_all[IMG_MAX_SUFFIXES + 1];
static char img_text[IMG_MAX_SUFFIXES * 8];
static int img_built;

/* Fill img_all and img_text from the table. */
static void img_build(void)
{
	int n = 0;
	size_t t = 0;
	for (int i = 0; i < img_format_count(); i++)
		for (const char *const *s = __start_img_formats[i]->suffixes; s && *s && n < IMG_MAX_SUFFIXES; s++) {
			img_all[n++] = *s;
			const char *sep = n > 1 ? ", *" : "*";
			for (const char *p = sep; *p && t + 1 < sizeof(img_text); p++)
				img_text[t++] = *p;
			for (const char *p = *s; *p && t + 1 < sizeof(img_text); p++)
				img_text[t++] = *p;
		}
	img_all[n] = NULL;
	img_text[t] = 0;
	img_built = 1;
}

const char *const *img_suffixes(void)
{
	if (!img_built)
		img_build();
	return img_all;
}

const char *img_suffix_text(void)
{
	if (!img_built)
		img_build();
	return img_text;
}

const struct img_format *img_fallback(void)
{
	for (int i = 0; i < img_format_count(); i++)
		if (__start_img_formats[i]->flags & IMG_FMT_FALLBACK)
			return __start_img_formats[i];
	return img_format_get(0);
}

uint32_t img_state_max(void)
{
	uint32_t m = 0;
	for (int i = 0; i < img_format_count(); i++)
		if (__start_img_formats[i]->state_bytes > m)
			m = __start_img_formats[i]->state_bytes;
	return m;
}

struct blk_dev *img_blk_init(struct img_blk *b, void *im, const struct img_place *place, const char *name,
                             uint64_t sectors, int read_only,
                             int (*read)(struct blk_dev *, uint64_t, uint32_t, void *),
                             int (*write)(struct blk_dev *, uint64_t, uint32_t, const void *),
                             int (*flush)(struct blk_dev *))
{
	memset(b, 0, sizeof(*b));
	b->im = im;
	b->place = place;
	k_strlcpy(b->name, name, sizeof(b->name));
	b->blk.name = b->name;
	b->blk.sectors = sectors;
	b->blk.size_bytes = sectors * BLK_SECTOR;
	b->blk.max_sectors = sectors;
	b->blk.read_only = read_only;
	b->blk.read = read;
	b->blk.write = write;
	b->blk.flush = flush;
	b->blk.priv = b;
	return &b->blk;
}

static const char *img_refusal_text = "INT 13h CCh";

/* img_set_refusal, the contract in image.h. */
void img_set_refusal(const char *text)
{
	img_refusal_text = text ? text : "INT 13h CCh";
}

/* img_refusal, the contract in image.h. */
const char *img_refusal(void)
{
	return img_refusal_text;
}
