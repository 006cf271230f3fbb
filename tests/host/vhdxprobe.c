/* vhdxprobe.c: host test driver over vhdx/: info, check, read to raw, write, create, replay, for tests/host/test_vhdx_images.py. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../vhdx/vhdx.h"
#include "../../tools/hostdev.h"

/* One opened member of a chain (leaf first). */
struct member {
	struct hostdev host;
	struct vhdx v;
	uint64_t *bat;
	void *ovl;
	char path[4096];
};

/* Every allocation of the probe, freed at exit whichever way the command ends (error paths return early). */
static void *probe_allocs[4 * (VHDX_MAX_CHAIN + 4)];
static int probe_nallocs;

/* Free every probe_alloc block (atexit). */
static void probe_free_all(void)
{
	while (probe_nallocs)
		free(probe_allocs[--probe_nallocs]);
}

/* calloc that probe_free_all releases; exits on exhaustion. */
static void *probe_alloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p || probe_nallocs == (int)(sizeof(probe_allocs) / sizeof(probe_allocs[0]))) {
		fprintf(stderr, "vhdxprobe: out of memory\n");
		exit(2);
	}
	probe_allocs[probe_nallocs++] = p;
	return p;
}

/* Print the commands and exit 2. */
static void usage(void)
{
	fprintf(stderr,
		"usage: vhdxprobe info IMG               (key=value lines; read-only)\n"
		"       vhdxprobe check IMG              (defect names; exit 0 clean, 1 defects, 2 unusable)\n"
		"       vhdxprobe cat IMG OUT            (the virtual disk as raw, parents through relative_path)\n"
		"       vhdxprobe write IMG LBA FILE     (FILE's bytes at sector LBA, then close)\n"
		"       vhdxprobe replay IMG             (writable open: replays a pending log, then close)\n"
		"       vhdxprobe create fixed|dynamic SIZE BLOCK OUT\n"
		"       vhdxprobe create diff PARENT RELPATH OUT\n"
		"Errors print 'error NAME' on stdout and the message on stderr.\n");
	exit(2);
}

/* 16 random bytes from /dev/urandom (exits 2 if it cannot be read). */
static void random_guid(struct vhdx_guid *g)
{
	int fd = open("/dev/urandom", O_RDONLY);
	if (fd < 0 || read(fd, g->b, 16) != 16) {
		perror("/dev/urandom");
		exit(2);
	}
	close(fd);
}

/* Print "error NAME" on stdout and the message on stderr; returns rc. */
static int fail(const char *what, int rc)
{
	printf("error %s\n", vhdx_errname(rc));
	fprintf(stderr, "vhdxprobe: %s: %s\n", what, vhdx_strerror(rc));
	return rc;
}

/* Open path into m (read-only unless rw) with its BAT, overlaps checked; a pending log goes to a malloc'd overlay. */
static int member_open(struct member *m, const char *path, int rw)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->path, sizeof(m->path), "%s", path);
	if (hostdev_open(&m->host, path, rw ? 0 : HOSTDEV_RDONLY)) {
		fprintf(stderr, "vhdxprobe: %s: %s\n", path, strerror(errno));
		printf("error open\n");
		return -1;
	}
	struct vhdx_session s;
	random_guid(&s.file_write);
	random_guid(&s.data_write);
	random_guid(&s.log_guid);
	struct vhdx_open_opts o = { &s, NULL, 0 };
	int rc = vhdx_open(&m->v, &m->host.dev, rw ? 0 : VHDX_OPEN_RDONLY, &o);
	if (rc == VHDX_E_LOG_OVERLAY && !rw) {
		o.overlay_bytes = m->v.log_need;
		o.overlay = m->ovl = probe_alloc(o.overlay_bytes);
		rc = vhdx_open(&m->v, &m->host.dev, VHDX_OPEN_RDONLY, &o);
	}
	if (rc)
		return fail(path, rc);
	m->bat = probe_alloc(vhdx_bat_bytes(&m->v) + 8);
	rc = vhdx_load_bat(&m->v, m->bat);
	if (!rc) {
		uint64_t *scratch = probe_alloc(vhdx_bat_bytes(&m->v) + 8);
		rc = vhdx_check_overlaps(&m->v, scratch);
	}
	if (rc)
		return fail(path, rc);
	return 0;
}

/* Close m's file (its memory goes at exit). */
static void member_close(struct member *m)
{
	hostdev_close(&m->host);
}

/* Attach parents below chain[0] through relative_path (then the other paths as given), as many as there are. */
static int open_chain(struct member **chain, int *n)
{
	while (chain[*n - 1]->v.has_parent) {
		struct member *c = chain[*n - 1];
		if (*n >= VHDX_MAX_CHAIN + 1)
			return fail("chain", VHDX_E_CHAIN_DEPTH);
		char cand[VHDX_PATH_MAX], full[8192];
		int key, rc = VHDX_E_NO_LOCATOR, found = 0;
		for (int i = 0; !found; i++) {
			rc = vhdx_parent_candidate(&c->v, i, cand, sizeof(cand), &key);
			if (rc)
				break;
			for (char *p = cand; *p; p++)
				if (*p == '\\')
					*p = '/';
			if (key == VHDX_LOC_RELATIVE) {
				char dir[4096];
				snprintf(dir, sizeof(dir), "%s", c->path);
				char *sl = strrchr(dir, '/');
				if (sl)
					sl[1] = 0;
				else
					strcpy(dir, "./");
				snprintf(full, sizeof(full), "%s%s", dir, cand);
			} else {
				snprintf(full, sizeof(full), "%s", cand);
			}
			if (access(full, R_OK) == 0)
				found = 1;
		}
		if (!found)
			return fail("parent", rc == VHDX_E_NO_LOCATOR ? VHDX_E_NO_PARENT : rc);
		struct member *p = probe_alloc(sizeof(*p));
		chain[(*n)++] = p;
		if (member_open(p, full, 0))
			return -1;
		rc = vhdx_set_parent(&c->v, &p->v, &chain[0]->v);
		if (rc)
			return fail(full, rc);
	}
	return 0;
}

static const char *guid(const struct vhdx_guid *g)
{
	static char s[4][39];
	static int k;
	k = (k + 1) % 4;
	vhdx_guid_str(g, s[k]);
	return s[k];
}

/* info: key=value lines of the headers, regions, metadata, block states and locator. */
static int cmd_info(const char *img)
{
	struct member m;
	if (member_open(&m, img, 0))
		return 2;
	struct vhdx *v = &m.v;
	printf("state=0x%x\nheader=%d\nseq=%llu\nfile_write=%s\ndata_write=%s\nlog_guid=%s\n", v->state, v->cur,
	       (unsigned long long)v->hdr.seq, guid(&v->hdr.file_write), guid(&v->hdr.data_write), guid(&v->hdr.log_guid));
	printf("log_offset=%llu\nlog_length=%u\nlog_replayed=%u\nlog_need=%llu\n", (unsigned long long)v->hdr.log_offset,
	       v->hdr.log_length, v->log_replayed, (unsigned long long)v->log_need);
	printf("bat_offset=%llu\nbat_length=%u\nmeta_offset=%llu\nmeta_length=%u\n", (unsigned long long)v->bat_off, v->bat_len,
	       (unsigned long long)v->meta_off, v->meta_len);
	printf("block_size=%u\nleave_allocated=%d\nhas_parent=%d\nvirtual_size=%llu\nlogical_sector=%u\nphysical_sector=%u\npage83=%s\n",
	       v->block_size, v->leave_allocated, v->has_parent, (unsigned long long)v->vsize, v->lss, v->pss, guid(&v->page83));
	printf("chunk_ratio=%u\ndata_blocks=%llu\nbat_entries=%llu\n", v->chunk_ratio, (unsigned long long)v->data_blocks,
	       (unsigned long long)v->bat_entries);
	uint64_t cnt[8] = { 0 };
	for (uint64_t b = 0; b < v->data_blocks; b++)
		cnt[vhdx_block_state(v, b * v->spb)]++;
	printf("blocks_not_present=%llu\nblocks_zero=%llu\nblocks_full=%llu\nblocks_partial=%llu\n",
	       (unsigned long long)cnt[0], (unsigned long long)cnt[2], (unsigned long long)cnt[6], (unsigned long long)cnt[7]);
	if (v->has_parent) {
		struct vhdx_parent_info pi;
		int rc = vhdx_parent_info(v, &pi);
		if (rc)
			return fail("locator", rc), 2;
		printf("parent_linkage=%s\n", guid(&pi.linkage));
		if (pi.has_linkage2)
			printf("parent_linkage2=%s\n", guid(&pi.linkage2));
		char p[VHDX_PATH_MAX];
		int key;
		static const char *kn[] = { "relative_path", "volume_path", "absolute_win32_path" };
		for (int i = 0; vhdx_parent_candidate(v, i, p, sizeof(p), &key) == 0; i++)
			printf("candidate%d=%s %s\n", i, kn[key], p);
	}
	member_close(&m);
	return 0;
}

/* vhdx_check report: "defect NAME A B" on stdout, the message on stderr. */
static void report(void *ctx, int code, uint64_t a, uint64_t b)
{
	(void)ctx;
	printf("defect %s %llu %llu\n", vhdx_check_name(code), (unsigned long long)a, (unsigned long long)b);
	fprintf(stderr, "vhdxprobe: %s\n", vhdx_check_msg(code));
}

/* check: every defect; exit 0 clean, 1 defects, 2 unusable. */
static int cmd_check(const char *img)
{
	struct member m;
	if (member_open(&m, img, 0))
		return 2;
	uint64_t *scratch = probe_alloc(vhdx_bat_bytes(&m.v) + 8);
	int n = vhdx_check(&m.v, scratch, report, NULL);
	member_close(&m);
	if (n < 0)
		return fail(img, -n), 2;
	printf("defects %d\n", n);
	return n ? 1 : 0;
}

/* cat: the whole virtual disk (through its chain) into OUT, in requests of 1531 and 17 sectors. */
static int cmd_cat(const char *img, const char *out)
{
	struct member *chain[VHDX_MAX_CHAIN + 2];
	int n = 1;
	chain[0] = probe_alloc(sizeof(struct member));
	if (member_open(chain[0], img, 0) || open_chain(chain, &n))
		return 2;
	FILE *f = fopen(out, "wb");
	if (!f)
		return perror(out), 2;
	static uint8_t buf[2048 * 512];
	struct vhdx *v = &chain[0]->v;
	/* Odd request sizes cross block boundaries at varying places. */
	uint32_t step = 1531;
	for (uint64_t lba = 0; lba < v->sectors;) {
		uint32_t k = v->sectors - lba < step ? (uint32_t)(v->sectors - lba) : step;
		int rc = vhdx_read(v, lba, k, buf);
		if (rc)
			return fail("read", rc), 2;
		fwrite(buf, 512, k, f);
		lba += k;
		step = step == 1531 ? 17 : 1531;
	}
	fclose(f);
	for (int i = 0; i < n; i++)
		member_close(chain[i]);
	return 0;
}

/* write: FILE at sector LBA (zero-padded to a sector), then vhdx_close. */
static int cmd_write(const char *img, const char *lba_s, const char *file)
{
	struct member *chain[1];
	chain[0] = probe_alloc(sizeof(struct member));
	if (member_open(chain[0], img, 1))
		return 2;
	FILE *f = fopen(file, "rb");
	if (!f)
		return perror(file), 2;
	uint64_t lba = strtoull(lba_s, NULL, 0);
	static uint8_t buf[4096 * 512];
	size_t got;
	int rc = 0;
	while ((got = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (got % 512)
			memset(buf + got, 0, 512 - got % 512);
		uint32_t k = (uint32_t)((got + 511) / 512);
		rc = vhdx_write(&chain[0]->v, lba, k, buf);
		if (rc)
			break;
		lba += k;
	}
	fclose(f);
	if (!rc)
		rc = vhdx_close(&chain[0]->v);
	if (rc)
		return fail("write", rc), 2;
	member_close(chain[0]);
	return 0;
}

/* replay: a writable open (which replays a pending log) and a close. */
static int cmd_replay(const char *img)
{
	struct member m;
	if (member_open(&m, img, 1))
		return 2;
	printf("state=0x%x\nlog_replayed=%u\n", m.v.state, m.v.log_replayed);
	int rc = vhdx_close(&m.v);
	if (rc)
		return fail("close", rc), 2;
	member_close(&m);
	return 0;
}

/* create fixed|dynamic SIZE BLOCK OUT, or create diff PARENT RELPATH OUT (absolute path from realpath). */
static int cmd_create(int argc, char **argv)
{
	struct vhdx_create_opts o;
	memset(&o, 0, sizeof(o));
	random_guid(&o.file_write);
	random_guid(&o.data_write);
	random_guid(&o.page83);
	struct member parent;
	const char *out;
	if (!strcmp(argv[0], "diff")) {
		if (argc != 4)
			usage();
		if (member_open(&parent, argv[1], 0))
			return 2;
		o.type = VHDX_DIFF;
		o.parent = &parent.v;
		o.relative_path = argv[2];
		char abs[4096];
		if (realpath(argv[1], abs))
			o.absolute_win32_path = abs;
		out = argv[3];
		struct hostdev h;
		if (hostdev_open(&h, out, HOSTDEV_CREATE | HOSTDEV_TRUNC))
			return perror(out), 2;
		int rc = vhdx_create(&h.dev, &o);
		hostdev_close(&h);
		member_close(&parent);
		return rc ? (fail("create", rc), 2) : 0;
	}
	if (argc != 4)
		usage();
	o.type = !strcmp(argv[0], "fixed") ? VHDX_FIXED : !strcmp(argv[0], "dynamic") ? VHDX_DYNAMIC : 0;
	o.size = strtoull(argv[1], NULL, 0);
	o.block_size = (uint32_t)strtoul(argv[2], NULL, 0);
	out = argv[3];
	struct hostdev h;
	if (hostdev_open(&h, out, HOSTDEV_CREATE | HOSTDEV_TRUNC))
		return perror(out), 2;
	int rc = vhdx_create(&h.dev, &o);
	hostdev_close(&h);
	return rc ? (fail("create", rc), 2) : 0;
}

/* Dispatch on the command name. */
int main(int argc, char **argv)
{
	if (argc < 3)
		usage();
	atexit(probe_free_all);
	const char *c = argv[1];
	if (!strcmp(c, "info") && argc == 3)
		return cmd_info(argv[2]);
	if (!strcmp(c, "check") && argc == 3)
		return cmd_check(argv[2]);
	if (!strcmp(c, "cat") && argc == 4)
		return cmd_cat(argv[2], argv[3]);
	if (!strcmp(c, "write") && argc == 5)
		return cmd_write(argv[2], argv[3], argv[4]);
	if (!strcmp(c, "replay") && argc == 3)
		return cmd_replay(argv[2]);
	if (!strcmp(c, "create") && argc >= 3)
		return cmd_create(argc - 2, argv + 2);
	usage();
	return 2;
}
