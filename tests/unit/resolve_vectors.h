/* resolve_vectors.h: the parent-resolution test vectors (image/resolve.c), run by test_resolve.c over a host and a FAT model. */
#ifndef RESOLVE_VECTORS_H
#define RESOLVE_VECTORS_H

/*
 * Each vector is a small file system of real VHDs built in memory with
 * vhd_create(): files are created in order (a parent before its child),
 * then patched. The leaf is opened by the test and its chain walked with
 * res_open_chain() twice: over a case-sensitive host model (flags as
 * given) and a case-insensitive FAT model (flags | RES_FOLD_CASE). The
 * expectations are exact: rc, members (paths from the leaf down, '|'
 * separated), the locator that found each parent, the leaf's try list,
 * words the message must (and one it must not) contain, files opened.
 */

#define RV_BAD_ID 0x1u            /* patch the child's parent id (no file can match) */
#define RV_BAD_STAMP 0x2u         /* patch the child's parent time stamp (+1) */
#define RV_DELETED 0x4u           /* gone after its children were made from it */

/* One file of a vector's file system. */
struct rv_file {
	const char *path;
	const char *parent;       /* differencing: its parent's path (created from it); NULL: a dynamic base */
	unsigned size_kib;        /* base only; 0 = 1024 */
	const char *uuid_of;      /* base only: take this file's unique id and time stamp (an impostor) */
	const char *w2ru, *w2ku, *name;   /* locators and header parent name (NULL: none / default) */
	const char *macx;         /* a MacX locator with this URL (in place of W2ku) */
	const char *link;         /* after creation: record this file as the parent (id, time stamp) */
	unsigned patch;           /* RV_BAD_* */
	const char *alias_of;     /* no image: a second name of that file (a hard link) */
};

/* What one model must give. */
struct rv_expect {
	int rc;                   /* vhd_err of res_open_chain */
	const char *chain;        /* member paths from the leaf down ("|"), NULL: don't check */
	const char *via;          /* each parent's res_try.via ("|"), NULL: don't check */
	const char *tries;        /* the leaf's try list ("|"), NULL: don't check */
	const char *why[3];       /* substrings the message must hold */
	const char *why_not;      /* a substring it must not hold */
	int opens;                /* files opened by open_path (RES_FOUND), -1: don't check */
	int members;              /* chain length, 0: don't check */
};

struct rv_vector {
	const char *name;
	const char *leaf;
	unsigned flags;           /* RES_* */
	int deep;                 /* > 0: generate /deep/l0.vhd (base) .. /deep/l<deep>.vhd instead of files */
	struct rv_file files[8];  /* up to the first NULL path */
	struct rv_expect host;
	int fat_differs;          /* 0: the FAT model must give what host says */
	struct rv_expect fat;
};

#define NF VHD_E_PARENT_NOT_FOUND
/* Vectors leave the FAT expectation (and trailing fields) out when it is the host's. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static const struct rv_vector rv_vectors[] = {
	{ "w2ru-relative-with-dotdot", "/vm/child.vhd", 0, 0, {
		{ .path = "/base/base.vhd" },
		{ .path = "/vm/child.vhd", .parent = "/base/base.vhd", .w2ru = "..\\base\\base.vhd",
		  .w2ku = "C:\\elsewhere\\base.vhd", .name = "base.vhd" },
	  }, { 0, "/vm/child.vhd|/base/base.vhd", "W2ru locator",
	       "/base/base.vhd|/elsewhere/base.vhd|/vm/base.vhd", { 0 }, 0, 1, 2 } },

	{ "w2ku-drive-letter-from-root", "/a/child.vhd", 0, 0, {
		{ .path = "/store/p.vhd" },
		{ .path = "/a/child.vhd", .parent = "/store/p.vhd", .w2ru = "missing\\x.vhd",
		  .w2ku = "D:\\store\\p.vhd", .name = "p.vhd" },
	  }, { 0, "/a/child.vhd|/store/p.vhd", "W2ku locator",
	       "/a/missing/x.vhd|/store/p.vhd|/a/p.vhd", { 0 }, 0, 1, 2 } },

	{ "w2ku-no-drive-base-name-in-child-folder", "/a/child.vhd", 0, 0, {
		{ .path = "/a/p.vhd" },
		{ .path = "/a/child.vhd", .parent = "/a/p.vhd", .w2ku = "/store/p.vhd", .name = "q.vhd" },
	  }, { 0, "/a/child.vhd|/a/p.vhd", "W2ku locator", "/store/p.vhd|/a/p.vhd|/a/q.vhd", { 0 }, 0, 1, 2 } },

	{ "macx-url-decoded-localhost", "/m/c.vhd", 0, 0, {
		{ .path = "/Users/me/My Disks/base disk.vhd" },
		{ .path = "/m/c.vhd", .parent = "/Users/me/My Disks/base disk.vhd",
		  .macx = "file://localhost/Users/me/My%20Disks/base%20disk.vhd", .name = "other.vhd" },
	  }, { 0, "/m/c.vhd|/Users/me/My Disks/base disk.vhd", "MacX locator",
	       "/Users/me/My Disks/base disk.vhd|/m/base disk.vhd|/m/other.vhd", { 0 }, 0, 1, 2 } },

	{ "macx-bare-localhost-and-escape", "/m/c.vhd", 0, 0, {
		{ .path = "/m/pA.vhd" },
		{ .path = "/m/c.vhd", .parent = "/m/pA.vhd", .macx = "localhost/abs/p%41.vhd", .name = "x.vhd" },
	  }, { 0, "/m/c.vhd|/m/pA.vhd", "MacX locator", "/abs/pA.vhd|/m/pA.vhd|/m/x.vhd", { 0 }, 0, 1, 2 } },

	{ "macx-skipped-by-flag", "/m/c.vhd", RES_SKIP_MACX, 0, {
		{ .path = "/Users/me/base.vhd" },
		{ .path = "/m/c.vhd", .parent = "/Users/me/base.vhd", .macx = "file:///Users/me/base.vhd",
		  .name = "other.vhd" },
	  }, { NF, "/m/c.vhd", "", "/m/other.vhd",
	       { "the parent of /m/c.vhd was not found (parent-not-found): tried /m/other.vhd" },
	       "/Users", 0, 1 } },

	{ "parent-name-only", "/n/c.vhd", 0, 0, {
		{ .path = "/n/base.vhd" },
		{ .path = "/n/c.vhd", .parent = "/n/base.vhd", .name = "base.vhd" },
	  }, { 0, "/n/c.vhd|/n/base.vhd", "parent name", "/n/base.vhd", { 0 }, 0, 1, 2 } },

	{ "parent-name-absolute-then-base-name", "/n/c.vhd", 0, 0, {
		{ .path = "/n/base.vhd" },
		{ .path = "/n/c.vhd", .parent = "/n/base.vhd", .name = "C:\\vms\\base.vhd" },
	  }, { 0, "/n/c.vhd|/n/base.vhd", "parent name", "/vms/base.vhd|/n/base.vhd", { 0 }, 0, 1, 2 } },

	{ "parent-name-with-folder-then-base-name", "/n/c.vhd", 0, 0, {
		{ .path = "/n/p.vhd" },
		{ .path = "/n/c.vhd", .parent = "/n/p.vhd", .name = "sub\\p.vhd" },
	  }, { 0, "/n/c.vhd|/n/p.vhd", "parent name", "/n/sub/p.vhd|/n/p.vhd", { 0 }, 0, 1, 2 } },

	{ "dotdot-above-root-dropped-dot-and-double-slash", "/x/y/c.vhd", 0, 0, {
		{ .path = "/x/p.vhd" },
		{ .path = "/x/y/c.vhd", .parent = "/x/p.vhd", .w2ru = "..\\..\\..\\p.vhd",
		  .w2ku = "/x/./y//../p.vhd", .name = "p.vhd" },
	  }, { 0, "/x/y/c.vhd|/x/p.vhd", "W2ku locator", "/x/p.vhd|/x/y/p.vhd", { 0 }, 0, 1, 2 } },

	{ "dotdot-to-root", "/x/y/c.vhd", 0, 0, {
		{ .path = "/p.vhd" },
		{ .path = "/x/y/c.vhd", .parent = "/p.vhd", .w2ru = "..\\..\\p.vhd", .name = "p.vhd" },
	  }, { 0, "/x/y/c.vhd|/p.vhd", "W2ru locator", "/p.vhd|/x/y/p.vhd", { 0 }, 0, 1, 2 } },

	{ "fat-case-insensitive-names", "/IMAGES/LEAF.VHD", 0, 0, {
		{ .path = "/images/BASE/base.vhd" },
		{ .path = "/IMAGES/LEAF.VHD", .parent = "/images/BASE/base.vhd", .w2ru = "base\\Base.VHD",
		  .w2ku = "C:\\images\\base\\BASE.vhd", .name = "base.vhd" },
	  }, { NF, "/IMAGES/LEAF.VHD", "",
	       "/IMAGES/base/Base.VHD|/images/base/BASE.vhd|/IMAGES/BASE.vhd|/IMAGES/base.vhd",
	       { "tried /IMAGES/base/Base.VHD, /images/base/BASE.vhd, /IMAGES/BASE.vhd, /IMAGES/base.vhd",
	         "(parent-not-found)" }, 0, 0, 1 },
	  1, { 0, "/IMAGES/LEAF.VHD|/IMAGES/base/Base.VHD", "W2ru locator",
	       "/IMAGES/base/Base.VHD|/IMAGES/BASE.vhd", { 0 }, 0, 1, 2 } },

	{ "three-levels-across-folders", "/top/leaf.vhd", 0, 0, {
		{ .path = "/base/b.vhd" },
		{ .path = "/mid/m.vhd", .parent = "/base/b.vhd", .w2ru = "../base/b.vhd", .name = "b.vhd" },
		{ .path = "/top/leaf.vhd", .parent = "/mid/m.vhd", .w2ru = "..\\nowhere\\m.vhd",
		  .w2ku = "E:\\mid\\m.vhd", .name = "m.vhd" },
	  }, { 0, "/top/leaf.vhd|/mid/m.vhd|/base/b.vhd", "W2ku locator|W2ru locator",
	       "/nowhere/m.vhd|/mid/m.vhd|/top/m.vhd", { 0 }, 0, 2, 3 } },

	{ "loop-by-unique-ids", "/l/a.vhd", 0, 0, {
		{ .path = "/l/base.vhd" },
		{ .path = "/l/b.vhd", .parent = "/l/base.vhd", .w2ru = "a.vhd", .name = "a.vhd",
		  .link = "/l/a.vhd" },
		{ .path = "/l/a.vhd", .parent = "/l/b.vhd", .w2ru = "b.vhd" },
	  }, { VHD_E_CHAIN_LOOP, "/l/a.vhd|/l/b.vhd", "W2ru locator", "/l/b.vhd",
	       { "differencing chain loop: /l/a.vhd (id ", "already appears in the chain (chain-loop)" },
	       0, 2, 2 } },

	{ "depth-32-links-ok", "/deep/l32.vhd", 0, 32, { { 0 } },
	  { 0, 0, 0, "/deep/l31.vhd", { 0 }, 0, 32, 33 } },

	{ "depth-33-links-refused", "/deep/l33.vhd", 0, 33, { { 0 } },
	  { VHD_E_CHAIN_DEPTH, 0, 0, 0,
	    { "differencing chain deeper than 32 images at /deep/l1.vhd (chain-depth)" }, 0, 32, 33 } },

	{ "id-mismatch-explained", "/c/c.vhd", 0, 0, {
		{ .path = "/c/p.vhd" },
		{ .path = "/c/c.vhd", .parent = "/c/p.vhd", .w2ru = "p.vhd", .patch = RV_BAD_ID },
	  }, { VHD_E_PARENT_UUID, "/c/c.vhd", "", "/c/p.vhd",
	       { "parent unique id mismatch: /c/c.vhd expects parent id ee", ", /c/p.vhd has ", "(parent-uuid)" },
	       "not found", 1, 1 } },

	{ "timestamp-mismatch-explained", "/c/c.vhd", 0, 0, {
		{ .path = "/c/p.vhd" },
		{ .path = "/c/c.vhd", .parent = "/c/p.vhd", .w2ru = "p.vhd", .patch = RV_BAD_STAMP },
	  }, { VHD_E_PARENT_TIMESTAMP, "/c/c.vhd", "", "/c/p.vhd",
	       { "parent time stamp mismatch: /c/c.vhd expects 700000002 (2022-03-07T20:26:42Z), "
	         "/c/p.vhd has 700000001 (2022-03-07T20:26:41Z) (parent-timestamp); HINT accepts it" },
	       0, 1, 1 } },

	{ "timestamp-mismatch-ignored-by-flag", "/c/c.vhd", RES_IGNORE_TIMESTAMP, 0, {
		{ .path = "/c/p.vhd" },
		{ .path = "/c/c.vhd", .parent = "/c/p.vhd", .w2ru = "p.vhd", .patch = RV_BAD_STAMP },
	  }, { 0, "/c/c.vhd|/c/p.vhd", "W2ru locator", "/c/p.vhd", { 0 }, 0, 1, 2 } },

	{ "size-mismatch-explained", "/c/c.vhd", 0, 0, {
		{ .path = "/hidden/p.vhd" },
		{ .path = "/c/p.vhd", .size_kib = 2048, .uuid_of = "/hidden/p.vhd" },
		{ .path = "/c/c.vhd", .parent = "/hidden/p.vhd", .w2ru = "p.vhd" },
	  }, { VHD_E_PARENT_SIZE, "/c/c.vhd", "", "/c/p.vhd",
	       { "parent size mismatch: /c/c.vhd is 1048576 bytes, /c/p.vhd is 2097152 bytes (parent-size)" },
	       0, 1, 1 } },

	{ "refused-then-found-closes-the-refused", "/c/c.vhd", 0, 0, {
		{ .path = "/g/p.vhd" },
		{ .path = "/c/p.vhd" },
		{ .path = "/c/c.vhd", .parent = "/g/p.vhd", .w2ru = "p.vhd", .w2ku = "C:\\g\\p.vhd" },
	  }, { 0, "/c/c.vhd|/g/p.vhd", "W2ku locator", "/c/p.vhd|/g/p.vhd", { 0 }, 0, 2, 2 } },

	{ "first-real-failure-wins", "/c/c.vhd", 0, 0, {
		{ .path = "/hidden/p.vhd" },
		{ .path = "/c/p.vhd" },
		{ .path = "/o/q.vhd" },
		{ .path = "/c/c.vhd", .parent = "/hidden/p.vhd", .w2ru = "p.vhd", .w2ku = "C:\\o\\q.vhd" },
	  }, { VHD_E_PARENT_UUID, "/c/c.vhd", "", "/c/p.vhd|/o/q.vhd|/c/q.vhd",
	       { "parent unique id mismatch: /c/c.vhd expects", "/c/p.vhd has" }, "/o/q.vhd", 2, 1 } },

	{ "same-file-twice-opened-once", "/c/c.vhd", 0, 0, {
		{ .path = "/c/p.vhd" },
		{ .path = "/c/link.vhd", .alias_of = "/c/p.vhd" },
		{ .path = "/c/c.vhd", .parent = "/c/p.vhd", .w2ru = "link.vhd", .w2ku = "/c/p.vhd",
		  .patch = RV_BAD_ID },
	  }, { VHD_E_PARENT_UUID, "/c/c.vhd", "", "/c/link.vhd|/c/p.vhd",
	       { "/c/link.vhd has" }, 0, 1, 1 } },

	{ "not-found-lists-every-path", "/vm/c.vhd", 0, 0, {
		{ .path = "/gone/p.vhd", .patch = RV_DELETED },
		{ .path = "/vm/c.vhd", .parent = "/gone/p.vhd", .w2ru = "sub\\p.vhd", .w2ku = "C:\\gone\\p.vhd",
		  .name = "p.vhd" },
	  }, { NF, "/vm/c.vhd", "", "/vm/sub/p.vhd|/gone/p.vhd|/vm/p.vhd",
	       { "the parent of /vm/c.vhd was not found (parent-not-found): "
	         "tried /vm/sub/p.vhd, /gone/p.vhd, /vm/p.vhd" }, 0, 0, 1 } },

	/* A relative child path (vhdtool's "x.vhd" on the command line): results stay relative. */
	{ "relative-child-path-keeps-leading-dotdot", "sub/c.vhd", 0, 0, {
		{ .path = "../up/p.vhd" },
		{ .path = "sub/c.vhd", .parent = "../up/p.vhd", .w2ru = "..\\..\\up\\p.vhd", .name = "p.vhd" },
	  }, { 0, "sub/c.vhd|../up/p.vhd", "W2ru locator", "../up/p.vhd|sub/p.vhd", { 0 }, 0, 1, 2 } },

	{ "relative-child-path-dot-prefix", "c.vhd", 0, 0, {
		{ .path = "p.vhd" },
		{ .path = "c.vhd", .parent = "p.vhd", .w2ru = ".\\p.vhd", .name = "p.vhd" },
	  }, { 0, "c.vhd|p.vhd", "W2ru locator", "p.vhd", { 0 }, 0, 1, 2 } },
};

#pragma GCC diagnostic pop
#undef NF

#endif
