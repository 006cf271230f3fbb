/* test_resolve.c: cmocka tests of image/resolve.c: the shared vectors over real in-memory VHDs, a host and a FAT model. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "../../kernel/container.h"   /* CONTAINER_OF */
#include "../../vhd/vhd.h"
#include "ramdev.h"
#include "../../image/resolve.h"
#include "resolve_vectors.h"

/* RAM block devices: ramdev.h (growing, as a file). */

/* ------------------------------------------------------------------ the fake file systems */

#define FS_MAX_FILES 40
#define FS_MAX_OPEN 40

/* A file: a name and the image it holds (an alias shares another file's image and identity). */
struct fs_file {
	char path[256];
	struct ramdev *m;         /* NULL for an alias or a deleted file */
	int id;                   /* identity: the file index of its image */
	int deleted;
	uint8_t uuid[16];
	uint32_t timestamp;
};

/* An opened image (a bump stack: close pops the most recent). */
struct fs_node {
	struct vhd v;
	uint32_t *bat;
	char path[RES_PATH_MAX];
	const char *via;
};

struct fakefs {
	int fold;                 /* FAT model: names match ignoring ASCII case */
	struct fs_file f[FS_MAX_FILES];
	int nf;
	struct fs_node node[FS_MAX_OPEN];
	int nnode;
	int seen[FS_MAX_FILES];   /* file ids returned by this lookup */
	int nseen;
	int opens, closes;
};

static struct fs_file *fs_lookup(struct fakefs *fs, const char *path)
{
	for (int i = 0; i < fs->nf; i++) {
		struct fs_file *f = &fs->f[i];
		if (f->deleted)
			continue;
		if (fs->fold ? !strcasecmp(f->path, path) : !strcmp(f->path, path))
			return f;
	}
	return NULL;
}

/* Open an image read-only with its BAT (as every caller must before attaching it). */
static int node_open(struct fs_node *n, struct ramdev *m, const char *path)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->path, sizeof(n->path), "%s", path);
	int rc = vhd_open(&n->v, &m->blk, VHD_OPEN_RDONLY);
	if (rc)
		return rc;
	size_t bytes = vhd_bat_bytes(&n->v);
	if (bytes) {
		n->bat = malloc(bytes);
		rc = vhd_load_bat(&n->v, n->bat);
	}
	return rc;
}

static int fs_open(void *ctx, const struct res_try *t, struct vhd **parent, const char **path, int *err,
                   char *why, size_t wn)
{
	struct fakefs *fs = ctx;
	if (t->idx == 0)
		fs->nseen = 0;
	struct fs_file *f = fs_lookup(fs, t->path);
	if (!f)
		return RES_NOT_FOUND;
	for (int i = 0; i < fs->nseen; i++)
		if (fs->seen[i] == f->id)
			return RES_DUPLICATE;
	fs->seen[fs->nseen++] = f->id;
	assert_true(fs->nnode < FS_MAX_OPEN);
	struct fs_node *n = &fs->node[fs->nnode++];
	*err = node_open(n, fs->f[f->id].m, t->path);
	if (*err) {
		if (wn)
			snprintf(why, wn, "%s: cannot open (%s)", t->path, vhd_errname(*err));
		free(n->bat);
		fs->nnode--;
		return RES_ERROR;
	}
	n->via = t->via;
	fs->opens++;
	*parent = &n->v;
	*path = n->path;
	return RES_FOUND;
}

static void fs_close(void *ctx, struct vhd *parent)
{
	struct fakefs *fs = ctx;
	assert_true(fs->nnode > 1);
	struct fs_node *n = &fs->node[fs->nnode - 1];
	assert_ptr_equal(&n->v, parent);   /* the contract: always the most recent open */
	free(n->bat);
	fs->nnode--;
	fs->closes++;
}

static const struct res_ops fs_ops = { fs_open, fs_close, "HINT accepts it" };

static void fs_free(struct fakefs *fs)
{
	for (int i = 0; i < fs->nnode; i++)
		free(fs->node[i].bat);
	for (int i = 0; i < fs->nf; i++)
		ramdev_free(fs->f[i].m);
	free(fs);
}

/* ------------------------------------------------------------------ building a vector's files */

static int fs_index(struct fakefs *fs, const char *path)
{
	for (int i = 0; i < fs->nf; i++)
		if (!strcmp(fs->f[i].path, path))
			return i;
	fail_msg("vector names an unknown file %s", path);
	return -1;
}

static const char *base_name(const char *p)
{
	const char *b = strrchr(p, '/');
	return b ? b + 1 : p;
}

/* Rewrite the child's header at offset 512: fn edits the 1024 bytes, then the checksum is redone. */
static uint8_t *hdr_of(struct ramdev *m)
{
	return m->data + 512;
}

static void hdr_fix(struct ramdev *m)
{
	uint8_t *h = hdr_of(m);
	uint32_t c = vhd_checksum(h, 1024, 36);
	h[36] = (uint8_t)(c >> 24);
	h[37] = (uint8_t)(c >> 16);
	h[38] = (uint8_t)(c >> 8);
	h[39] = (uint8_t)c;
}

static uint32_t be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Turn the W2ku locator into a MacX one holding url (UTF-8). */
static void make_macx(struct ramdev *m, const char *url)
{
	uint8_t *h = hdr_of(m);
	for (int i = 0; i < 8; i++) {
		uint8_t *l = h + 576 + 24 * i;
		if (be32(l) != VHD_PLAT_W2KU)
			continue;
		uint64_t off = ((uint64_t)be32(l + 16) << 32) | be32(l + 20);
		assert_true(strlen(url) <= be32(l + 4));
		put32(l, VHD_PLAT_MACX);
		put32(l + 8, (uint32_t)strlen(url));
		memset(m->data + off, 0, be32(l + 4));
		memcpy(m->data + off, url, strlen(url));
		hdr_fix(m);
		return;
	}
	fail_msg("no W2ku locator to turn into MacX");
}

/* Create one file of a vector. */
static void fs_create(struct fakefs *fs, const struct rv_file *d, int vi)
{
	assert_true(fs->nf < FS_MAX_FILES);
	struct fs_file *f = &fs->f[fs->nf];
	int idx = fs->nf++;
	snprintf(f->path, sizeof(f->path), "%s", d->path);
	if (d->alias_of) {
		f->id = fs_index(fs, d->alias_of);
		return;
	}
	f->id = idx;
	f->m = ramdev_growing(1u << 20, 0);
	memset(f->uuid, 0, 16);
	f->uuid[0] = (uint8_t)(0xa0 + vi);
	f->uuid[1] = (uint8_t)idx;
	f->uuid[15] = 0x5a;
	f->timestamp = 700000001u + (uint32_t)idx;
	if (d->uuid_of) {
		struct fs_file *o = &fs->f[fs_index(fs, d->uuid_of)];
		memcpy(f->uuid, o->uuid, 16);
		f->timestamp = o->timestamp;
	}
	struct vhd_create_opts o;
	memset(&o, 0, sizeof(o));
	o.block_size = 64 * 1024;
	o.timestamp = f->timestamp;
	memcpy(o.uuid, f->uuid, 16);
	struct fs_node pn;
	if (d->parent) {
		struct fs_file *pf = &fs->f[fs_index(fs, d->parent)];
		assert_int_equal(node_open(&pn, pf->m, pf->path), 0);
		o.type = VHD_TYPE_DIFF;
		o.parent = &pn.v;
		o.parent_name = d->name ? d->name : base_name(d->parent);
		o.w2ru = d->w2ru;
		o.w2ku = d->macx ? "C:/placeholder/for/the/MacX/locator.vhd" : d->w2ku;
		assert_true(!(d->macx && d->w2ku));
	} else {
		o.type = VHD_TYPE_DYNAMIC;
		o.size = (uint64_t)(d->size_kib ? d->size_kib : 1024) * 1024;
	}
	assert_int_equal(vhd_create(&f->m->blk, &o), 0);
	if (d->parent)
		free(pn.bat);
	if (d->macx)
		make_macx(f->m, d->macx);
}

/* After every file exists: links (loops), bad ids and time stamps, deletions. */
static void fs_patch(struct fakefs *fs, const struct rv_file *d)
{
	struct fs_file *f = &fs->f[fs_index(fs, d->path)];
	if (d->link) {
		struct fs_file *to = &fs->f[fs_index(fs, d->link)];
		memcpy(hdr_of(f->m) + 40, to->uuid, 16);
		put32(hdr_of(f->m) + 56, to->timestamp);
	}
	if (d->patch & RV_BAD_ID)
		memset(hdr_of(f->m) + 40, 0xee, 16);
	if (d->patch & RV_BAD_STAMP)
		put32(hdr_of(f->m) + 56, be32(hdr_of(f->m) + 56) + 1);
	if (d->link || (d->patch & (RV_BAD_ID | RV_BAD_STAMP)))
		hdr_fix(f->m);
	if (d->patch & RV_DELETED)
		f->deleted = 1;
}

static struct fakefs *fs_build(const struct rv_vector *v, int vi, int fold)
{
	struct fakefs *fs = calloc(1, sizeof(*fs));
	fs->fold = fold;
	if (v->deep) {
		static struct rv_file gen[FS_MAX_FILES];
		static char paths[FS_MAX_FILES][2][32];
		assert_true(v->deep < FS_MAX_FILES);
		for (int i = 0; i <= v->deep; i++) {
			snprintf(paths[i][0], sizeof(paths[i][0]), "/deep/l%d.vhd", i);
			if (i)
				snprintf(paths[i][1], sizeof(paths[i][1]), "l%d.vhd", i - 1);
			memset(&gen[i], 0, sizeof(gen[i]));
			gen[i].path = paths[i][0];
			gen[i].parent = i ? paths[i - 1][0] : NULL;
			gen[i].w2ru = i ? paths[i][1] : NULL;
			fs_create(fs, &gen[i], vi);
		}
		return fs;
	}
	for (int i = 0; i < 8 && v->files[i].path; i++)
		fs_create(fs, &v->files[i], vi);
	for (int i = 0; i < 8 && v->files[i].path; i++)
		fs_patch(fs, &v->files[i]);
	return fs;
}

/* ------------------------------------------------------------------ running a vector */

/* "a|b|c" of n strings. */
static void join(char *out, size_t n, const char *const *s, int k)
{
	size_t off = 0;
	out[0] = 0;
	for (int i = 0; i < k; i++)
		off += (size_t)snprintf(out + off, n - off, "%s%s", i ? "|" : "", s[i]);
}

static void run_one(const struct rv_vector *v, int vi, int fold, const struct rv_expect *e)
{
	const char *model = fold ? "FAT" : "host";
	unsigned flags = v->flags | (fold ? RES_FOLD_CASE : 0);
	struct fakefs *fs = fs_build(v, vi, fold);
	struct fs_file *lf = fs_lookup(fs, v->leaf);
	assert_non_null(lf);
	struct fs_node *leaf = &fs->node[fs->nnode++];
	assert_int_equal(node_open(leaf, fs->f[lf->id].m, v->leaf), 0);

	/* The leaf's try list, on its own. */
	static struct res_work w;
	char got[8192], why[2048];
	if (e->tries) {
		assert_int_equal(res_parent_paths(&leaf->v, v->leaf, flags, &w), 0);
		const char *t[RES_MAX_TRIES];
		for (int i = 0; i < w.n; i++)
			t[i] = w.tries[i].path;
		join(got, sizeof(got), t, w.n);
		if (strcmp(got, e->tries))
			fail_msg("%s [%s]: tries\n  got  %s\n  want %s", v->name, model, got, e->tries);
	}

	int rc = res_open_chain(&fs_ops, fs, &w, &leaf->v, v->leaf, flags, why, sizeof(why));
	if (rc != e->rc)
		fail_msg("%s [%s]: rc %s, want %s (%s)", v->name, model, vhd_errname(rc), vhd_errname(e->rc), why);
	if (rc == 0 && why[0])
		fail_msg("%s [%s]: success with a message: %s", v->name, model, why);

	/* The chain from the leaf down, as attached; every member must be an open node in order. */
	const char *paths[64], *vias[64];
	int k = 0, nv = 0;
	for (struct vhd *m = &leaf->v; m; m = m->parent) {
		struct fs_node *n = CONTAINER_OF(m, struct fs_node, v);
		assert_true(k < fs->nnode);
		assert_ptr_equal(n, &fs->node[k]);
		paths[k++] = n->path;
		if (k > 1)
			vias[nv++] = n->via;
	}
	assert_int_equal(k, fs->nnode);   /* refused parents were closed */
	if (e->chain) {
		join(got, sizeof(got), paths, k);
		if (strcmp(got, e->chain))
			fail_msg("%s [%s]: chain\n  got  %s\n  want %s", v->name, model, got, e->chain);
	}
	if (e->via) {
		join(got, sizeof(got), vias, nv);
		if (strcmp(got, e->via))
			fail_msg("%s [%s]: via\n  got  %s\n  want %s", v->name, model, got, e->via);
	}
	if (e->members && k != e->members)
		fail_msg("%s [%s]: %d members, want %d", v->name, model, k, e->members);
	for (int i = 0; i < 3 && e->why[i]; i++)
		if (!strstr(why, e->why[i]))
			fail_msg("%s [%s]: message lacks \"%s\":\n  %s", v->name, model, e->why[i], why);
	if (e->why_not && strstr(why, e->why_not))
		fail_msg("%s [%s]: message holds \"%s\":\n  %s", v->name, model, e->why_not, why);
	if (e->opens >= 0 && fs->opens != e->opens)
		fail_msg("%s [%s]: %d files opened, want %d", v->name, model, fs->opens, e->opens);
	if (fs->closes != fs->opens - (k - 1))
		fail_msg("%s [%s]: %d opened, %d attached, %d closed", v->name, model, fs->opens, k - 1, fs->closes);
	fs_free(fs);
}

static void test_vector(void **state)
{
	const struct rv_vector *v = *state;
	int vi = (int)(v - rv_vectors);
	run_one(v, vi, 0, &v->host);
	run_one(v, vi, 1, v->fat_differs ? &v->fat : &v->host);
}

/* ------------------------------------------------------------------ the formatters */

static void test_uuid_and_time_str(void **state)
{
	(void)state;
	static const uint8_t u[16] = { 0x59, 0x64, 0x36, 0xc5, 0x01, 0x23, 0x45, 0x67,
	                               0x89, 0xab, 0xcd, 0xef, 0x00, 0xff, 0x10, 0x0a };
	char s[37], t[21];
	res_uuid_str(u, s);
	assert_string_equal(s, "596436c5-0123-4567-89ab-cdef00ff100a");
	res_time_str(0, t);
	assert_string_equal(t, "2000-01-01T00:00:00Z");
	res_time_str(86400u * 59u, t);            /* leap day */
	assert_string_equal(t, "2000-02-29T00:00:00Z");
	res_time_str(704643072u, t);              /* date -u -d @1651327872 */
	assert_string_equal(t, "2022-04-30T14:11:12Z");
	res_time_str(0xffffffffu, t);             /* the last VHD second */
	assert_string_equal(t, "2136-02-07T06:28:15Z");
}

static void test_explain_truncates_and_terminates(void **state)
{
	(void)state;
	struct vhd a, b;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.footer.cur_size = 1ull << 40;
	b.footer.cur_size = 18446744073709551615ull;
	char big[256], small[12];
	res_explain(VHD_E_PARENT_SIZE, &a, "/c.vhd", &b, "/p.vhd", NULL, big, sizeof(big));
	assert_string_equal(big, "parent size mismatch: /c.vhd is 1099511627776 bytes, /p.vhd is "
	                         "18446744073709551615 bytes (parent-size)");
	memset(small, 'x', sizeof(small));
	res_explain(VHD_E_PARENT_SIZE, &a, "/c.vhd", &b, "/p.vhd", NULL, small, sizeof(small));
	assert_string_equal(small, "parent size");
	res_explain(VHD_E_IO, &a, "/c.vhd", &b, "/p.vhd", NULL, big, sizeof(big));
	assert_string_equal(big, "/p.vhd cannot be the parent of /c.vhd: the backing device could not be read or written (io)");
}

/* A non-differencing child has no tries; a too-long folder drops the try instead of truncating it. */
static void test_paths_edges(void **state)
{
	(void)state;
	struct ramdev *m = ramdev_growing(1u << 20, 0);
	struct vhd_create_opts o;
	memset(&o, 0, sizeof(o));
	o.type = VHD_TYPE_DYNAMIC;
	o.size = 1 << 20;
	o.block_size = 64 * 1024;
	assert_int_equal(vhd_create(&m->blk, &o), 0);
	struct fs_node base;
	assert_int_equal(node_open(&base, m, "/b.vhd"), 0);
	static struct res_work w;
	assert_int_equal(res_parent_paths(&base.v, "/b.vhd", 0, &w), VHD_E_NOT_DIFF);
	assert_int_equal(w.n, 0);

	struct ramdev *c = ramdev_growing(1u << 20, 0);
	o.type = VHD_TYPE_DIFF;
	o.parent = &base.v;
	o.parent_name = "b.vhd";
	o.w2ku = "C:\\abs\\b.vhd";
	assert_int_equal(vhd_create(&c->blk, &o), 0);
	struct fs_node child;
	assert_int_equal(node_open(&child, c, "/x/c.vhd"), 0);
	static char longdir[RES_PATH_MAX + 16];
	memset(longdir, 'd', sizeof(longdir));
	longdir[0] = '/';
	memcpy(longdir + sizeof(longdir) - 7, "/c.vhd", 7);
	assert_int_equal(res_parent_paths(&child.v, longdir, 0, &w), 0);
	assert_int_equal(w.n, 1);                  /* only the absolute W2ku survives */
	assert_string_equal(w.tries[0].path, "/abs/b.vhd");
	assert_string_equal(w.tries[0].via, "W2ku locator");
	assert_int_equal(w.tries[0].idx, 0);
	free(base.bat);
	free(child.bat);
	ramdev_free(m);
	ramdev_free(c);
}

int main(void)
{
	enum { NV = sizeof(rv_vectors) / sizeof(rv_vectors[0]) };
	struct CMUnitTest tests[NV + 3];
	for (int i = 0; i < NV; i++) {
		tests[i].name = rv_vectors[i].name;
		tests[i].test_func = test_vector;
		tests[i].setup_func = NULL;
		tests[i].teardown_func = NULL;
		tests[i].initial_state = (void *)&rv_vectors[i];
	}
	tests[NV] = (struct CMUnitTest)cmocka_unit_test(test_uuid_and_time_str);
	tests[NV + 1] = (struct CMUnitTest)cmocka_unit_test(test_explain_truncates_and_terminates);
	tests[NV + 2] = (struct CMUnitTest)cmocka_unit_test(test_paths_edges);
	return _cmocka_run_group_tests("resolve", tests, NV + 3, NULL, NULL);
}
