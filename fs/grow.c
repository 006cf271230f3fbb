/* grow.c: growing a FAT16/FAT32 or exFAT file in the crash-safe order of grow.h: mark and tail, link, size; every step flushed. */
#include <stddef.h>
#include "grow.h"
#include "fat_format.h"
#include "fs_util.h"

struct grow_msg {
	const char *name;
	const char *text;
};

static const struct grow_msg grow_msgs[GROW_E_COUNT] = {
	[GROW_OK] = { "ok", "success" },
	[GROW_E_BAD_ARG] = { "bad-arg", "invalid argument" },
	[GROW_E_IO] = { "io", "the volume could not be read or written" },
	[GROW_E_RO] = { "read-only", "the volume is read-only" },
	[GROW_E_NTFS] = { "ntfs", "files on NTFS never grow (vhdboot writes only into a file's existing clusters there)" },
	[GROW_E_FAT12] = { "fat12", "files on FAT12 are not grown" },
	[GROW_E_TEXFAT] = { "texfat", "exFAT with two FATs (TexFAT) is not grown" },
	[GROW_E_SET] = { "entry-set", "the file's exFAT entry set spans two sectors (or has extra entries): "
				     "its size can't be changed in one sector write" },
	[GROW_E_FULL] = { "volume-full", "the volume has too few free clusters left for the file to grow" },
	[GROW_E_TOO_BIG] = { "too-big", "the file would pass its file system's size limit (FAT: 4 GiB - 1)" },
	[GROW_E_FRAGMENTS] = { "fragments", "the free space is too fragmented: the file's extent list is full" },
	[GROW_E_CHAIN] = { "changed", "the file's cluster chain runs past its size (a growth cut short?) or its directory "
				      "entry changed: check the volume (fsck.fat / fsck.exfat / chkdsk)" },
	[GROW_E_BROKEN] = { "broken", "an earlier growth of this file failed part-way: no further growth" },
};

const char *grow_strerror(int err)
{
	if (err < 0 || err >= GROW_E_COUNT || !grow_msgs[err].text)
		return "unknown growth error";
	return grow_msgs[err].text;
}

const char *grow_errname(int err)
{
	if (err < 0 || err >= GROW_E_COUNT || !grow_msgs[err].name)
		return "unknown";
	return grow_msgs[err].name;
}

#define GROW_FAT32_EOC 0x0FFFFFFFu
#define GROW_FAT16_EOC 0xFFFFu
#define GROW_EXFAT_EOC 0xFFFFFFFFu
#define GROW_SF_NOFATCHAIN 0x02
#define GROW_SF_ALLOC 0x01

/* ------------------------------------------------------------------ the sectors being changed */

/*
 * Write slot k back if it changed: every FAT copy for a FAT sector of a mirrored
 * FAT volume, the first FAT last (it is the one fsck.fat and drivers read when the
 * copies differ, so a cut between the copies' writes leaves the old state readable).
 */
static int grow_sync_one(struct fs_grow *g, int k)
{
	struct grow_sec *s = &g->sec[k];
	if (!s->valid || !s->dirty)
		return GROW_OK;
	if (g->type == FS_FAT && k == 0 && g->v.fat.mirror) {
		uint64_t rel = s->lba - g->v.fat.fat_start;
		for (uint32_t i = g->v.fat.nfats; i-- > 0;)
			if (blk_write(g->dev, g->v.fat.fat0_start + (uint64_t)i * g->v.fat.fat_sectors + rel, 1, s->b))
				return GROW_E_IO;
	} else if (blk_write(g->dev, s->lba, 1, s->b)) {
		return GROW_E_IO;
	}
	s->dirty = 0;
	/* The volume's own read caches may hold the old sector. */
	if (g->type == FS_FAT)
		g->v.fat.cache_valid = 0;
	else
		g->v.exfat.cache_valid = 0;
	return GROW_OK;
}

/* Write both slots back. */
static int grow_sync(struct fs_grow *g)
{
	int rc = grow_sync_one(g, 0);
	return rc ? rc : grow_sync_one(g, 1);
}

/* Make sector lba slot k's (writing the slot's previous sector back first); its bytes in *out. */
static int grow_load(struct fs_grow *g, uint64_t lba, int k, uint8_t **out)
{
	struct grow_sec *s = &g->sec[k];
	int rc;
	if (!s->valid || s->lba != lba) {
		rc = grow_sync_one(g, k);
		if (rc)
			return rc;
		s->valid = 0;
		if (blk_read(g->dev, lba, 1, s->b))
			return GROW_E_IO;
		s->lba = lba;
		s->valid = 1;
	}
	*out = s->b;
	return GROW_OK;
}

/* Write back and flush: the end of one step of the order. */
static int grow_step(struct fs_grow *g)
{
	int rc = grow_sync(g);
	if (rc)
		return rc;
	return blk_flush(g->dev) ? GROW_E_IO : GROW_OK;
}

/* ------------------------------------------------------------------ FAT entries and bitmap bits */

/* Where cluster c's FAT entry is: its sector (slot 0 loaded) and the entry's bytes. */
static int grow_fat_at(struct fs_grow *g, uint32_t c, uint8_t **p, uint32_t *w)
{
	uint32_t start = g->type == FS_FAT ? g->v.fat.fat_start : g->v.exfat.fat_start;
	uint8_t *b;
	uint64_t off;
	int rc;
	*w = g->type == FS_FAT && g->v.fat.type == 16 ? 2 : 4;
	off = (uint64_t)c * *w;
	rc = grow_load(g, start + (off >> 9), 0, &b);
	if (rc)
		return rc;
	*p = b + (off & 511);
	return GROW_OK;
}

/* FAT entry of cluster c (FAT16, FAT32 without its top bits, exFAT). */
static int grow_fat_get(struct fs_grow *g, uint32_t c, uint32_t *val)
{
	uint8_t *p;
	uint32_t w;
	int rc = grow_fat_at(g, c, &p, &w);
	if (rc)
		return rc;
	*val = w == 2 ? fs_le16(p) : fs_le32(p) & (g->type == FS_FAT ? 0x0FFFFFFFu : 0xFFFFFFFFu);
	return GROW_OK;
}

/* Set the FAT entry of cluster c (FAT32 keeps the entry's top four bits). */
static int grow_fat_set(struct fs_grow *g, uint32_t c, uint32_t val)
{
	uint8_t *p;
	uint32_t w;
	int rc = grow_fat_at(g, c, &p, &w);
	if (rc)
		return rc;
	if (w == 2) {
		p[0] = (uint8_t)val;
		p[1] = (uint8_t)(val >> 8);
	} else {
		if (g->type == FS_FAT)
			val = (fs_le32(p) & 0xF0000000u) | (val & 0x0FFFFFFFu);
		for (int i = 0; i < 4; i++)
			p[i] = (uint8_t)(val >> (8 * i));
	}
	g->sec[0].dirty = 1;
	return GROW_OK;
}

/* The exFAT bitmap byte of cluster c (slot 1 loaded). */
static int grow_bitmap_byte(struct fs_grow *g, uint32_t c, uint8_t **p)
{
	uint64_t byte = (uint64_t)(c - 2) >> 3;
	uint8_t *b;
	int rc;
	/* The bitmap's own chain is walked only when the sector changes. */
	if (!g->bm_valid || g->bm_idx != byte >> 9) {
		g->bm_valid = 0;
		if (exfat_bitmap_lba(&g->v.exfat, byte, &g->bm_lba))
			return GROW_E_IO;
		g->bm_idx = byte >> 9;
		g->bm_valid = 1;
	}
	rc = grow_load(g, g->bm_lba, 1, &b);
	if (rc)
		return rc;
	*p = b + (byte & 511);
	return GROW_OK;
}

/* Nonzero in *free when cluster c is free (FAT entry 0; exFAT: bitmap bit clear). */
static int grow_is_free(struct fs_grow *g, uint32_t c, int *free)
{
	uint8_t *p;
	int rc;
	if (g->type == FS_FAT) {
		uint32_t v;
		rc = grow_fat_get(g, c, &v);
		*free = rc == GROW_OK && v == 0;
		return rc;
	}
	rc = grow_bitmap_byte(g, c, &p);
	*free = rc == GROW_OK && !(*p & (1u << ((c - 2) & 7)));
	return rc;
}

/* Mark cluster c in use in the exFAT bitmap. */
static int grow_bitmap_set(struct fs_grow *g, uint32_t c)
{
	uint8_t *p;
	int rc = grow_bitmap_byte(g, c, &p);
	if (rc)
		return rc;
	*p |= (uint8_t)(1u << ((c - 2) & 7));
	g->sec[1].dirty = 1;
	return GROW_OK;
}

/* ------------------------------------------------------------------ the growth */

static uint64_t grow_clus_lba(const struct fs_grow *g, uint32_t c)
{
	return g->type == FS_FAT ? fat_cluster_lba(&g->v.fat, c) : exfat_cluster_lba(&g->v.exfat, c);
}

static uint32_t grow_eoc(const struct fs_grow *g)
{
	return g->type == FS_EXFAT ? GROW_EXFAT_EOC : g->v.fat.type == 16 ? GROW_FAT16_EOC : GROW_FAT32_EOC;
}

/* Nonzero when FAT value v ends a chain. */
static int grow_is_eoc(const struct fs_grow *g, uint32_t v)
{
	if (g->type == FS_EXFAT)
		return v == GROW_EXFAT_EOC;
	return g->v.fat.type == 16 ? v >= 0xFFF8u : v >= 0x0FFFFFF8u;
}

/* Step i of the search order: from start (after the file's last cluster) to the volume's end, then from cluster 2. */
static uint32_t grow_nth(const struct fs_grow *g, uint32_t start, uint32_t i)
{
	uint64_t c = (uint64_t)start + i;
	if (c > (uint64_t)g->clusters + 1)
		c -= g->clusters;
	return (uint32_t)c;
}

/* What a search found. */
struct grow_find {
	uint32_t found;            /* free clusters taken (<= need) */
	uint32_t runs;             /* runs they form (the first one counted even when it continues the file's last) */
	uint32_t first, last;      /* the first and last of them */
	int follows;               /* they are exactly last+1..last+need of the file (or one run for an empty file) */
};

/*
 * Take need free clusters in the search order. With claim (the second pass,
 * over the same order, so it takes the same clusters): the exFAT bitmap bits
 * set, with chain their FAT entries linked in order ending in EOC, and their
 * runs written to map->runs[map->count...] (not yet counted).
 */
static int grow_find(struct fs_grow *g, struct ext_map *map, uint32_t need, int claim, int chain,
		     struct grow_find *out)
{
	uint32_t start = g->last && g->last + 1 <= g->clusters + 1 ? g->last + 1 : 2, prev = 0;
	uint32_t spc = 1u << g->spc_shift;
	int rc;
	FS_MEMSET(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < g->clusters && out->found < need; i++) {
		uint32_t c = grow_nth(g, start, i);
		int free;
		rc = grow_is_free(g, c, &free);
		if (rc)
			return rc;
		if (!free)
			continue;
		if (!out->found || c != prev + 1) {
			if (claim) {
				struct ext_run *r = &map->runs[map->count + out->runs];
				r->file_sector = (g->nclus + out->found) << g->spc_shift;
				r->sectors = spc;
				r->lba = grow_clus_lba(g, c);
			}
			out->runs++;
		} else if (claim) {
			map->runs[map->count + out->runs - 1].sectors += spc;
		}
		if (claim) {
			if (chain && out->found && (rc = grow_fat_set(g, prev, c)) != 0)
				return rc;
			if (g->type == FS_EXFAT && (rc = grow_bitmap_set(g, c)) != 0)
				return rc;
		}
		if (!out->found)
			out->first = c;
		out->last = c;
		prev = c;
		out->found++;
	}
	out->follows = out->found && out->runs == 1 && (g->nclus ? out->first == g->last + 1 : 1);
	if (claim && chain && out->found)
		return grow_fat_set(g, prev, grow_eoc(g));
	return GROW_OK;
}

/* Count the runs claimed at map->runs[map->count..+n), merging the first into the file's last run when they touch. */
static void grow_commit_runs(struct ext_map *map, uint32_t n, uint32_t new_alloc)
{
	struct ext_run *r = map->runs;
	uint32_t k = map->count;
	if (n && k && r[k].lba == r[k - 1].lba + r[k - 1].sectors) {
		r[k - 1].sectors += r[k].sectors;
		for (uint32_t i = 1; i < n; i++)
			r[k + i - 1] = r[k + i];
		n--;
	}
	map->count += n;
	map->needed = map->count;
	map->alloc_sectors = new_alloc;
}

/* The volume sector of file sector s (through map's runs). */
static int grow_file_lba(const struct ext_map *map, uint64_t s, uint64_t *lba)
{
	int32_t i = ext_find(map, s);
	if (i < 0)
		return GROW_E_CHAIN;
	*lba = map->runs[i].lba + (s - map->runs[i].file_sector);
	return GROW_OK;
}

/* FAT32: FSInfo's free count and next-free hint set to "unknown" (0xFFFFFFFF), once, so they can't go stale. */
static int grow_fsinfo(struct fs_grow *g)
{
	uint8_t *b = g->tmp;
	if (g->type != FS_FAT || g->v.fat.type != 32 || !g->v.fat.fsinfo || g->fsinfo_done)
		return GROW_OK;
	if (blk_read(g->dev, g->v.fat.fsinfo, 1, b))
		return GROW_E_IO;
	g->fsinfo_done = 1;
	if (fs_le32(b) != 0x41615252u || fs_le32(b + 484) != 0x61417272u || fs_le32(b + 508) != 0xAA550000u)
		return GROW_OK;     /* not an FSInfo sector: nothing there to go stale */
	if (fs_le32(b + 488) == 0xFFFFFFFFu && fs_le32(b + 492) == 0xFFFFFFFFu)
		return GROW_OK;
	FS_MEMSET(b + 488, 0xFF, 8);
	if (blk_write(g->dev, g->v.fat.fsinfo, 1, b) || blk_flush(g->dev))
		return GROW_E_IO;
	return GROW_OK;
}

/* Checksum of an exFAT entry set (entry 0's bytes 2 and 3, the checksum itself, skipped). */
static uint16_t grow_set_sum(const uint8_t *set, uint32_t n)
{
	uint16_t s = 0;
	for (uint32_t k = 0; k < n * 32; k++)
		if (k != 2 && k != 3)
			s = (uint16_t)(((s & 1) ? 0x8000u : 0) + (s >> 1) + set[k]);
	return s;
}

/* Is the directory entry on disk still the one the file was opened with (size, first cluster)? */
static int grow_check_entry(struct fs_grow *g, const struct ext_map *map)
{
	uint8_t *b = g->tmp;
	if (blk_read(g->dev, g->ent_lba[0], 1, b))
		return GROW_E_IO;
	if (g->type == FS_FAT) {
		const struct fat_dirent *e = (const struct fat_dirent *)(const void *)(b + g->ent_off[0]);
		uint32_t c = fs_le16(&e->cluster_lo) | (g->v.fat.type == 32 ? (uint32_t)fs_le16(&e->cluster_hi) << 16 : 0);
		if (e->name[0] == 0 || e->name[0] == 0xE5 || (e->attr & FAT_ATTR_DIR) || fs_le32(&e->size) != map->size_bytes ||
		    c != (g->nclus ? g->first : c))
			return GROW_E_CHAIN;
		return GROW_OK;
	}
	return FS_MEMCMP(b + g->ent_off[0], g->set, 64) ? GROW_E_CHAIN : GROW_OK;
}

/* Step (d): the directory entry says bytes (and first cluster, NoFatChain), in one sector write, then flush. */
static int grow_write_entry(struct fs_grow *g, uint64_t bytes, uint32_t first, int contig)
{
	uint8_t *b = g->tmp;
	if (blk_read(g->dev, g->ent_lba[0], 1, b))
		return GROW_E_IO;
	if (g->type == FS_FAT) {
		struct fat_dirent *e = (struct fat_dirent *)(void *)(b + g->ent_off[0]);
		uint8_t *p = (uint8_t *)&e->size;
		for (int i = 0; i < 4; i++)
			p[i] = (uint8_t)(bytes >> (8 * i));
		p = (uint8_t *)&e->cluster_lo;
		p[0] = (uint8_t)first;
		p[1] = (uint8_t)(first >> 8);
		if (g->v.fat.type == 32) {
			p = (uint8_t *)&e->cluster_hi;
			p[0] = (uint8_t)(first >> 16);
			p[1] = (uint8_t)(first >> 24);
		}
	} else {
		uint8_t *st = g->set + 32;
		uint16_t sum;
		st[1] = (uint8_t)((st[1] | GROW_SF_ALLOC) & ~GROW_SF_NOFATCHAIN);
		if (contig)
			st[1] |= GROW_SF_NOFATCHAIN;
		for (int i = 0; i < 8; i++) {
			st[8 + i] = (uint8_t)(bytes >> (8 * i));   /* ValidDataLength: the new part is written by the caller */
			st[24 + i] = (uint8_t)(bytes >> (8 * i));  /* DataLength */
		}
		for (int i = 0; i < 4; i++)
			st[20 + i] = (uint8_t)(first >> (8 * i));
		sum = grow_set_sum(g->set, g->set_n);
		g->set[2] = (uint8_t)sum;
		g->set[3] = (uint8_t)(sum >> 8);
		FS_MEMCPY(b + g->ent_off[0], g->set, 64);
	}
	if (blk_write(g->dev, g->ent_lba[0], 1, b) || blk_flush(g->dev))
		return GROW_E_IO;
	return GROW_OK;
}

/* ext_map.grow: make the file at least bytes long, in grow.h's order. */
static int grow_extend(void *ctx, struct ext_map *map, uint64_t bytes)
{
	struct fs_grow *g = ctx;
	uint32_t cbs = 9 + g->spc_shift, need = 0, want, first = g->first, last = g->last;
	uint64_t new_sec, old_sec = map->sectors;
	struct grow_find fd;
	int contig = g->contig, rc;
	FS_MEMSET(&fd, 0, sizeof(fd));
	if (g->broken) {
		g->err = GROW_E_BROKEN;
		return BLK_E_IO;
	}
	if (bytes <= map->size_bytes)
		return BLK_OK;
	if (bytes > g->max_bytes) {
		g->err = GROW_E_TOO_BIG;
		return BLK_E_NOSPACE;
	}
	want = (uint32_t)((bytes + (1ull << cbs) - 1) >> cbs);
	if (want > g->nclus)
		need = want - g->nclus;
	new_sec = (bytes + BLK_SECTOR - 1) >> 9;
	rc = grow_check_entry(g, map);
	if (rc)
		goto refuse;
	if (need) {
		if (g->full_need && need >= g->full_need) {
			rc = GROW_E_FULL;
			goto refuse;
		}
		/* Pass 1 reads only: the growth is refused before anything is written. */
		rc = grow_find(g, map, need, 0, 0, &fd);
		if (!rc && fd.found < need) {
			g->full_need = need;
			rc = GROW_E_FULL;
		}
		if (!rc && map->count + fd.runs > map->cap)
			rc = GROW_E_FRAGMENTS;
		if (rc)
			goto refuse;
		/*
		 * exFAT: clusters that follow a file held in one run make (or keep) it
		 * NoFatChain: no FAT link to write, so no moment where the chain is
		 * longer than the size. The FAT entries a chained file had are then unused.
		 */
		contig = g->type == FS_EXFAT && fd.follows && (g->contig || !g->nclus || map->count == 1);
		/* From here on a failure leaves the volume as a power cut would: no further growth. */
		rc = grow_fsinfo(g);
		if (!rc && g->type == FS_EXFAT && g->contig && !contig) {
			/* NoFatChain ends: the chain of the clusters the file has goes in first. */
			for (uint32_t c = g->first; !rc && c <= g->last; c++)
				rc = grow_fat_set(g, c, c == g->last ? grow_eoc(g) : c + 1);
			if (!rc)
				rc = grow_step(g);
		}
		/* (a) the new clusters marked in use (every FAT copy, the bitmap), still owned by no file. */
		if (!rc)
			rc = grow_find(g, map, need, 1, !contig, &fd);
		if (rc)
			goto broken;
		grow_commit_runs(map, fd.runs, want << g->spc_shift);
		if (!g->nclus)
			first = fd.first;
		last = fd.last;
	}
	/*
	 * (b) The file's last sector goes to its new last sector, in the same step
	 * as the marks: the new clusters are no file's yet, so this can't be seen
	 * (a trailer, the VHD footer, then still ends the grown file).
	 */
	if (old_sec && new_sec - 1 > old_sec - 1) {
		uint64_t from, to;
		rc = grow_file_lba(map, old_sec - 1, &from);
		if (!rc)
			rc = grow_file_lba(map, new_sec - 1, &to);
		if (!rc && (blk_read(g->dev, from, 1, g->tmp) || blk_write(g->dev, to, 1, g->tmp)))
			rc = GROW_E_IO;
		if (rc)
			goto broken;
	}
	rc = grow_step(g);
	/*
	 * (c) The file's last cluster linked to the new ones (the first FAT last),
	 * flushed, and the size written next: the only moment the chain is longer
	 * than the size is between these two device writes (docs/grow.md: why FAT
	 * can't do without it).
	 */
	if (!rc && need && g->nclus && !contig) {
		rc = grow_fat_set(g, g->last, fd.first);
		if (!rc)
			rc = grow_step(g);
	}
	if (rc)
		goto broken;
	/* (d) the size in the directory entry. */
	rc = grow_write_entry(g, bytes, first, contig);
	if (rc)
		goto broken;
	map->size_bytes = bytes;
	map->sectors = (uint32_t)new_sec;
	if (need) {
		g->grows++;
		g->added += need;
	}
	g->nclus = want > g->nclus ? want : g->nclus;
	g->first = first;
	g->last = last;
	g->contig = contig;
	g->err = GROW_OK;
	return BLK_OK;
refuse:
	g->err = rc;
	return rc == GROW_E_IO ? BLK_E_IO : BLK_E_NOSPACE;
broken:
	g->broken = 1;
	g->err = rc;
	return BLK_E_IO;
}

int fs_grow_init(struct fs_grow *g, const struct fs_vol *v, const struct fs_file *f, struct ext_map *map)
{
	if (!g || !v || !f || !map || f->type != v->type)
		return GROW_E_BAD_ARG;
	FS_MEMSET(g, 0, sizeof(*g));
	if (v->type == FS_NTFS)
		return GROW_E_NTFS;
	if (fs_file_is_dir(f) || (map->count && !map->runs))
		return GROW_E_BAD_ARG;
	if (!v->dev || v->dev->read_only || !v->dev->write)
		return GROW_E_RO;
	g->type = v->type;
	g->dev = v->dev;
	if (v->type == FS_FAT) {
		if (v->u.fat.type == 12)
			return GROW_E_FAT12;
		if (!f->u.fat.ent_lba)
			return GROW_E_BAD_ARG;
		g->v.fat = v->u.fat;
		g->spc_shift = v->u.fat.clus_shift;
		g->clusters = v->u.fat.clusters;
		g->first = f->u.fat.first_cluster;
		g->ent_lba[0] = f->u.fat.ent_lba;
		g->ent_off[0] = f->u.fat.ent_off;
		g->max_bytes = 0xFFFFFFFFu & ~(uint64_t)(BLK_SECTOR - 1);
	} else {
		const struct exfat_file *x = &f->u.exfat;
		uint64_t lim;
		if (v->u.exfat.num_fats != 1)
			return GROW_E_TEXFAT;
		if (!x->set_n || x->ent_lba[0] != x->ent_lba[1] || x->ent_off[1] != x->ent_off[0] + 32)
			return GROW_E_SET;
		g->v.exfat = v->u.exfat;
		g->spc_shift = v->u.exfat.clus_shift;
		g->clusters = v->u.exfat.clusters;
		g->first = x->first_cluster;
		g->contig = (x->flags & EXFAT_F_CONTIG) != 0;
		g->ent_lba[0] = g->ent_lba[1] = x->ent_lba[0];
		g->ent_off[0] = x->ent_off[0];
		g->ent_off[1] = x->ent_off[1];
		g->set_n = x->set_n;
		FS_MEMCPY(g->set, x->set, sizeof(g->set));
		/* The extent map counts 32-bit sectors; the heap bounds it too. */
		lim = ((uint64_t)(0xFFFFFFFFu >> g->spc_shift) << g->spc_shift) << 9;
		g->max_bytes = (uint64_t)g->clusters << (9 + g->spc_shift);
		if (g->max_bytes > lim)
			g->max_bytes = lim;
	}
	g->nclus = map->alloc_sectors >> g->spc_shift;
	if (g->nclus) {
		const struct ext_run *r;
		uint64_t heap = g->type == FS_FAT ? g->v.fat.data_start : g->v.exfat.heap_start;
		if (!map->count)
			return GROW_E_BAD_ARG;
		r = &map->runs[map->count - 1];
		g->last = (uint32_t)(2 + ((r->lba + r->sectors - heap) >> g->spc_shift) - 1);
		if (map->chain_longer)
			return GROW_E_CHAIN;
		if (!g->contig) {
			uint32_t val;
			int rc = grow_fat_get(g, g->last, &val);
			if (rc)
				return rc;
			if (!grow_is_eoc(g, val))
				return GROW_E_CHAIN;
		}
	} else {
		g->first = 0;
	}
	map->grow = grow_extend;
	map->grow_ctx = g;
	map->max_bytes = g->max_bytes;
	return GROW_OK;
}
