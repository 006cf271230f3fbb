/* grubcfg.c: `vhdtool grubcfg DIR`: a GRUB menu entry (multiboot vhdboot.elf vhd=/path) for every VHD file under DIR. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "grubcfg.h"

#define GRUBCFG_MAX_DEPTH 32          /* folders deeper than this are not visited */

const char grubcfg_usage[] =
"usage: vhdtool grubcfg [--prefix PATH] [--kernel PATH] [--args WORDS] DIR\n"
"\n"
"Print a GRUB menu entry for every VHD file (*.vhd, checked for a VHD footer)\n"
"found under DIR, recursively, sorted by path:\n"
"\n"
"  menuentry \"vhdboot: /images/win.vhd\" {\n"
"          multiboot /boot/vhdboot.elf vhd=/images/win.vhd\n"
"  }\n"
"\n"
"Paths are printed relative to DIR with a leading '/': run it on the mount\n"
"point of the FAT partition (vhdboot searches every FAT volume for the path),\n"
"or give --prefix for the folder DIR is inside that file system.\n"
"\n"
"options:\n"
"  --prefix PATH   put PATH (e.g. /data) in front of every printed path\n"
"  --kernel PATH   where GRUB finds vhdboot.elf (default /boot/vhdboot.elf)\n"
"  --args WORDS    more kernel options for every entry (e.g. \"timeout=0 mode=snapshot\")\n"
"  -h, --help      this text\n"
"\n"
"Files whose path contains a space or '+' cannot be named on the vhd= command\n"
"line; they are reported on stderr and left out. Exit 0 when at least one\n"
"entry was printed, 1 when none, 2 for bad arguments or an unreadable DIR.\n";

/* The VHD paths found, relative to DIR ("/a/b.vhd"). */
struct grubcfg_list {
	char **paths;
	size_t n, cap;
	int skipped;
};

/* Nonzero when path (a regular file) ends with a VHD footer or starts with a footer copy. */
static int grubcfg_is_vhd(const char *path)
{
	unsigned char buf[512];
	FILE *f = fopen(path, "rb");
	int ok = 0;

	if (!f)
		return 0;
	if (fseeko(f, -512, SEEK_END) == 0 && fread(buf, 1, 512, f) == 512 && !memcmp(buf, "conectix", 8))
		ok = 1;
	if (!ok && fseeko(f, -511, SEEK_END) == 0 && fread(buf, 1, 511, f) == 511 && !memcmp(buf, "conectix", 8))
		ok = 1;
	if (!ok && fseeko(f, 0, SEEK_SET) == 0 && fread(buf, 1, 512, f) == 512 && !memcmp(buf, "conectix", 8))
		ok = 1;
	fclose(f);
	return ok;
}

/* Append a copy of rel; 0 on success. */
static int grubcfg_add(struct grubcfg_list *l, const char *rel)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		char **p = realloc(l->paths, cap * sizeof(*p));
		if (!p)
			return -1;
		l->paths = p;
		l->cap = cap;
	}
	l->paths[l->n] = strdup(rel);
	return l->paths[l->n] ? (l->n++, 0) : -1;
}

/* Walk dir (host path) whose path below DIR is rel ("" for DIR itself); 0, or -1 on a fatal error. */
static int grubcfg_walk(struct grubcfg_list *l, const char *dir, const char *rel, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d) {
		if (depth == 0)
			return -1;
		fprintf(stderr, "vhdtool: grubcfg: %s: %s (skipped)\n", dir, strerror(errno));
		return 0;
	}
	while ((e = readdir(d))) {
		char host[4096], r[4096];
		struct stat st;
		size_t len = strlen(e->d_name);

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (snprintf(host, sizeof(host), "%s/%s", dir, e->d_name) >= (int)sizeof(host) ||
		    snprintf(r, sizeof(r), "%s/%s", rel, e->d_name) >= (int)sizeof(r))
			continue;
		if (lstat(host, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth < GRUBCFG_MAX_DEPTH && grubcfg_walk(l, host, r, depth + 1) < 0) {
				closedir(d);
				return -1;
			}
			continue;
		}
		if (!S_ISREG(st.st_mode) || len < 4 || strcasecmp(e->d_name + len - 4, ".vhd"))
			continue;
		if (!grubcfg_is_vhd(host)) {
			fprintf(stderr, "vhdtool: grubcfg: %s: no VHD footer (skipped)\n", host);
			continue;
		}
		if (strpbrk(r, " \t+\"'\\;{}$")) {
			fprintf(stderr, "vhdtool: grubcfg: %s: the path has a space, '+' or a character GRUB or "
			        "vhd= cannot carry (skipped; rename it)\n", host);
			l->skipped++;
			continue;
		}
		if (grubcfg_add(l, r) < 0) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

/* qsort comparator for paths. */
static int grubcfg_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int cmd_grubcfg(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "prefix", required_argument, NULL, 'p' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "args", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *prefix = "", *kernel = "/boot/vhdboot.elf", *args = "";
	struct grubcfg_list l = { NULL, 0, 0, 0 };
	char dir[4096];
	int opt;

	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': prefix = optarg; break;
		case 'k': kernel = optarg; break;
		case 'a': args = optarg; break;
		case 'h': fputs(grubcfg_usage, stdout); return 0;
		case ':':
			fprintf(stderr, "vhdtool: grubcfg: option %s needs an argument (see 'vhdtool grubcfg --help')\n",
			        argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "vhdtool: grubcfg: unknown option %s (see 'vhdtool grubcfg --help')\n",
			        argv[optind - 1]);
			return 2;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "vhdtool: grubcfg: expected exactly one directory (see 'vhdtool grubcfg --help')\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s", argv[optind]);
	while (strlen(dir) > 1 && dir[strlen(dir) - 1] == '/')
		dir[strlen(dir) - 1] = 0;
	if (prefix[0] && (prefix[0] != '/' || strpbrk(prefix, " \t+\"'\\;{}$"))) {
		fprintf(stderr, "vhdtool: grubcfg: --prefix must start with '/' and hold no space, '+' or quote\n");
		return 2;
	}
	if (grubcfg_walk(&l, dir, "", 0) < 0) {
		fprintf(stderr, "vhdtool: grubcfg: %s: %s\n", dir, strerror(errno));
		return 2;
	}
	while (prefix[0] && prefix[strlen(prefix) - 1] == '/' && prefix[1])
		prefix = strndup(prefix, strlen(prefix) - 1);
	if (!strcmp(prefix, "/"))
		prefix = "";
	qsort(l.paths, l.n, sizeof(*l.paths), grubcfg_cmp);
	printf("# vhdboot entries made by `vhdtool grubcfg` (%zu image(s) under %s)\n", l.n, dir);
	for (size_t i = 0; i < l.n; i++) {
		printf("menuentry \"vhdboot: %s%s\" {\n", prefix, l.paths[i]);
		printf("\tmultiboot %s vhd=%s%s%s%s\n", kernel, prefix, l.paths[i], args[0] ? " " : "", args);
		printf("}\n");
		free(l.paths[i]);
	}
	free(l.paths);
	if (!l.n)
		fprintf(stderr, "vhdtool: grubcfg: no VHD file under %s\n", dir);
	return l.n ? 0 : 1;
}
