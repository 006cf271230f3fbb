/* cmd_create.c: `vhdtool create`: new fixed, dynamic and differencing images. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "vhdtool.h"

/* ------------------------------------------------------------------ create */

const char create_usage[] =
"usage: vhdtool create -t fixed|dynamic [-b BLOCKSIZE] -s SIZE [-f] OUT.vhd\n"
"       vhdtool create -t vhdx-fixed|vhdx-dynamic [-b BLOCKSIZE] [--log-size SIZE] -s SIZE [-f] OUT.vhdx\n"
"       vhdtool create -p PARENT.vhd [-F vhd] [-b BLOCKSIZE] [-f] CHILD.vhd\n"
"       vhdtool create -p PARENT.vhdx [-b BLOCKSIZE] [--log-size SIZE] [-f] CHILD.vhdx\n"
"\n"
"Create an empty VHD or VHDX image.\n"
"  -t TYPE       fixed, dynamic, vhdx-fixed or vhdx-dynamic (default dynamic;\n"
"                with -p: differencing, of the parent's format)\n"
"  --log-size S  VHDX log size, a multiple of 1M (default 1M)\n"
"                VHDX: -b is a power of two from 1M to 256M (default 32M;\n"
"                differencing 2M); a VHDX child stores relative_path and\n"
"                absolute_win32_path in its parent locator\n"
"  -s SIZE       virtual size in bytes; K/M/G/T suffixes (powers of 1024); multiple of 512\n"
"  -b BLOCKSIZE  dynamic/differencing block size, power of two >= 512 (default 2M)\n"
"  -p PARENT     create a differencing image over PARENT (size taken from it); stores\n"
"                W2ru = PARENT relative to CHILD's directory, W2ku = PARENT's absolute path\n"
"  -F FORMAT     format of PARENT: vhd (default: by content; raw and vhdx refused)\n"
"  -f            overwrite OUT if it exists\n"
"  --help        this text\n";

/* Relative path from directory from (absolute, canonical) to file to (absolute, canonical). */
void cmd_relpath(const char *from, const char *to, char *out, size_t n)
{
	size_t common = 0, i = 0, w = 0;
	int ups = 0;

	/* Longest common prefix ending at a component boundary. */
	while (from[i] && to[i] && from[i] == to[i]) {
		i++;
		if (from[i - 1] == '/')
			common = i;
	}
	if (!from[i] && to[i] == '/')
		common = i + 1;
	if (!strcmp(from, "/"))
		common = 1;
	/* All of from shared (to goes on with '/'): common is one past from's NUL, and nothing of from is left. */
	const char *rest = common <= strlen(from) ? from + common : "";
	for (const char *p = rest; *p; p++)
		if (*p == '/' || p == rest)
			ups += (*p == '/' && p[1]) || p == rest;
	out[0] = 0;
	if (ups == 0)
		w += (size_t)snprintf(out, n, "./");
	for (int k = 0; k < ups && w < n; k++)
		w += (size_t)snprintf(out + w, n - w, "../");
	if (w < n)
		snprintf(out + w, n - w, "%s", to + common);
}

/* The parent's canonical path and its path relative to child's directory; 0 or 1 with the message printed. */
int cmd_parent_paths(const char *child, const char *parent, char *abs, char *rel, size_t reln)
{
	char dir[PATH_MAX], absdir[PATH_MAX];
	const char *slash = strrchr(child, '/');

	if (!realpath(parent, abs))
		return cmd_fail(1, "%s: %s", parent, strerror(errno));
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == child)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - child), child);
	if (!realpath(dir, absdir))
		return cmd_fail(1, "%s: %s", dir, strerror(errno));
	cmd_relpath(absdir, abs, rel, reln);
	return 0;
}

/* Nonzero when a and b both exist and are one file. */
int cmd_same_inode(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* vhdtool create: a new fixed, dynamic or differencing image. */
int cmd_create(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "log-size", required_argument, NULL, OPT_LOG_SIZE },
		{ NULL, 0, NULL, 0 },
	};
	const char *type = NULL, *size_s = NULL, *bs_s = NULL, *parent = NULL, *out, *log_s = NULL;
	int vx_type = 0;
	int force = 0, opt, rc, pfmt = IMG_FMT_AUTO;
	struct vhd_create_opts o;
	struct chain pc;
	struct hostdev hd;
	char w2ku[PATH_MAX], w2ru[PATH_MAX * 2];
	const char *pname;

	memset(&o, 0, sizeof(o));
	memset(&pc, 0, sizeof(pc));
	while ((opt = getopt_long(argc, argv, ":t:s:b:p:F:fh", lopts, NULL)) != -1) {
		switch (opt) {
		case 't': type = optarg; break;
		case 's': size_s = optarg; break;
		case 'b': bs_s = optarg; break;
		case 'p': parent = optarg; break;
		case 'F':
			if ((rc = cmd_opt_fmt(optarg, &pfmt)))
				return rc;
			break;
		case 'f': force = 1; break;
		case OPT_LOG_SIZE: log_s = optarg; break;
		case 'h': return cmd_help("create");
		default: return cmd_bad_option(opt, argv);
		}
	}
	if (argc - optind != 1)
		return cmd_bad_args(argc - optind ? "expected exactly one output file" : "missing output file");
	out = argv[optind];

	/* VHDX: chosen by -t, or by the parent's content. */
	if (type && !strncmp(type, "vhdx-", 5))
		vx_type = !strcmp(type, "vhdx-fixed") ? VHDX_FIXED : !strcmp(type, "vhdx-dynamic") ? VHDX_DYNAMIC : -1;
	if (vx_type < 0)
		return cmd_bad_args("-t must be fixed, dynamic, vhdx-fixed or vhdx-dynamic");
	if (parent && !vx_type) {
		char why[1024];
		int e, f = pfmt;
		if (f == IMG_FMT_AUTO && (f = img_detect(parent, why, sizeof(why), &e)) < 0)
			return cmd_fail(e ? EXIT_USAGE : 1, "%s", why);
		if (f == IMG_FMT_VHDX)
			vx_type = VHDX_DIFF;
	}
	if (vx_type) {
		uint64_t sz = 0, bs = 0, ls = 0;
		if (parent && vx_type != VHDX_DIFF)
			return cmd_bad_args("-p creates a differencing image; -t must be omitted");
		if (vx_type == VHDX_DIFF && size_s)
			return cmd_bad_args("-s is not allowed with -p (the size is the parent's)");
		if (vx_type != VHDX_DIFF) {
			if (!size_s)
				return cmd_bad_args("missing -s SIZE");
			if (cmd_parse_size(size_s, &sz))
				return cmd_bad_args("bad size (use bytes or a K/M/G/T suffix)");
			if (sz == 0 || sz % VHDX_SECTOR || sz > VHDX_MAX_SIZE)
				return cmd_fail(EXIT_USAGE, "size %llu must be a positive multiple of 512 up to %llu (64 TiB)",
				                (unsigned long long)sz, (unsigned long long)VHDX_MAX_SIZE);
		}
		if (bs_s && (cmd_parse_size(bs_s, &bs) || bs < VHDX_MIN_BLOCK || bs > VHDX_MAX_BLOCK || !cmd_is_pow2(bs)))
			return cmd_fail(EXIT_USAGE, "VHDX block size %s must be a power of two from 1M to 256M", bs_s);
		if (log_s && (cmd_parse_size(log_s, &ls) || ls == 0 || ls % MIB || ls > 0xFFFFFFFFull - MIB + 1))
			return cmd_fail(EXIT_USAGE, "VHDX log size %s must be a positive multiple of 1M below 4G", log_s);
		return vx_create(vx_type, sz, (uint32_t)bs, (uint32_t)ls, parent, out, force);
	}
	if (log_s)
		return cmd_bad_args("--log-size applies to VHDX images only");

	if (parent) {
		if (type && strcmp(type, "diff") && strcmp(type, "differencing"))
			return cmd_bad_args("-p creates a differencing image; -t must be omitted");
		if (size_s)
			return cmd_bad_args("-s is not allowed with -p (the size is the parent's)");
		o.type = VHD_TYPE_DIFF;
	} else {
		if (!type || !strcmp(type, "dynamic"))
			o.type = VHD_TYPE_DYNAMIC;
		else if (!strcmp(type, "fixed"))
			o.type = VHD_TYPE_FIXED;
		else
			return cmd_bad_args("-t must be fixed or dynamic");
		if (!size_s)
			return cmd_bad_args("missing -s SIZE");
		if (cmd_parse_size(size_s, &o.size))
			return cmd_bad_args("bad size (use bytes or a K/M/G/T suffix)");
		if (o.size == 0 || o.size % VHD_SECTOR)
			return cmd_fail(EXIT_USAGE, "size %llu is not a positive multiple of 512",
			                (unsigned long long)o.size);
		if (o.size > VHD_MAX_SIZE)
			return cmd_fail(EXIT_USAGE, "size %llu is larger than the VHD maximum %llu",
			                (unsigned long long)o.size, (unsigned long long)VHD_MAX_SIZE);
	}
	if (bs_s) {
		uint64_t bs;
		if (o.type == VHD_TYPE_FIXED)
			return cmd_bad_args("-b applies to dynamic and differencing images only");
		if (cmd_parse_size(bs_s, &bs))
			return cmd_bad_args("bad block size (use bytes or a K/M/G suffix)");
		if (bs < VHD_SECTOR || !cmd_is_pow2(bs) || bs > VHD_MAX_BLOCK_SIZE)
			return cmd_fail(EXIT_USAGE, "block size %llu must be a power of two from 512 to %u",
			                (unsigned long long)bs, VHD_MAX_BLOCK_SIZE);
		o.block_size = (uint32_t)bs;
	}

	if (parent) {
		if ((rc = img_open_vhd(&pc, parent, pfmt, CHAIN_RDONLY)))
			return rc;
		o.parent = chain_leaf(&pc);
		if ((rc = cmd_parent_paths(out, parent, w2ku, w2ru, sizeof(w2ru))))
			goto out_chain;
		/* The name, like the locators, is the real file's (not a symlink's) name. */
		pname = strrchr(w2ku, '/');
		pname = pname ? pname + 1 : w2ku;
		o.parent_name = pname;
		o.w2ru = w2ru;
		o.w2ku = w2ku;
		if (cmd_same_inode(out, parent)) {
			rc = cmd_fail(EXIT_USAGE, "%s: the child cannot be its own parent", out);
			goto out_chain;
		}
	}

	o.timestamp = cmd_vhd_now();
	if (cmd_random_uuid(o.uuid) < 0) {
		rc = cmd_fail(1, "/dev/urandom: %s", strerror(errno));
		goto out_chain;
	}
	if (hostdev_open(&hd, out, HOSTDEV_CREATE | (force ? HOSTDEV_TRUNC : HOSTDEV_EXCL)) < 0) {
		if (errno == EEXIST)
			rc = cmd_fail(1, "%s: file exists (use -f to overwrite)", out);
		else
			rc = cmd_fail(1, "%s: %s", out, strerror(errno));
		goto out_chain;
	}
	rc = vhd_create(&hd.dev, &o);
	if (!rc && hostdev_sync(&hd) < 0)
		rc = VHD_E_IO, hd.last_errno = errno;
	if (rc) {
		if (rc == VHD_E_IO && hd.last_errno)
			cmd_fail(1, "%s: %s (%s)", out, strerror(hd.last_errno), vhd_errname(rc));
		else
			cmd_fail(1, "%s: %s (%s)", out, vhd_strerror(rc), vhd_errname(rc));
		hostdev_close(&hd);
		unlink(out);
		rc = 1;
		goto out_chain;
	}
	hostdev_close(&hd);
	rc = 0;
out_chain:
	chain_close(&pc);
	return rc;
}

