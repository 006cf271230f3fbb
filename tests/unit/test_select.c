/* test_select.c: host tests of the firmware's scan, chain opening and selection (kernel/scan.c, imgopen.c, select.c) over disk images made with sfdisk, mkfs.fat, mtools and vhdtool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "kstubs.h"
#include "ushell.h"             /* sh: the image-building commands */
#include "kheap.h"              /* kheap_init, kheap_reset: mem_alloc and the scan's scratch */
#include "../../kernel/select.h"
#include "../../kernel/scan.h"
#include "../../kernel/imgopen.h"
#include "../../kernel/cmdline.h"
#include "../../kernel/mem.h"
#include "../../block/disk.h"
#include "../../tools/hostdev.h"

/* ------------------------------------------------------------ stubs for the kernel's services (memory: kheap.c) */

static int menu_pick;             /* what the "user" chooses */
static int menu_calls;

int menu_choose(const char *const *names, int n, int def, int timeout_s, uint32_t tsc_per_ms, int *by_user)
{
	(void)names, (void)def, (void)timeout_s, (void)tsc_per_ms;
	menu_calls++;
	*by_user = 1;
	return menu_pick < n ? menu_pick : 0;
}

/* ------------------------------------------------------------ fixtures */

static char dir[] = "/tmp/vhdboot-select-XXXXXX";
static const char *vhdtool;
static struct hostdev devs[4];

/*
 * The images: disk A = a whole-disk dynamic VHD; disk B = MBR, partition 1
 * FAT32 with /vhd/a.vhd (fixed), /images/Child.vhd (a differencing child
 * of /images/base.vhd, relative locator), /images/orphan.vhd (its parent
 * deleted), /other/x.vhd (not a scanned folder), partition 2 = a fixed VHD.
 */
static int setup(void **state)
{
	(void)state;
	static char tool[4096];
	const char *t = getenv("VHDTOOL") ? getenv("VHDTOOL") : "build/vhdtool";
	if (!realpath(t, tool))
		fail_msg("%s: not found (build it first, or set VHDTOOL)", t);
	vhdtool = tool;
	if (!mkdtemp(dir))
		return -1;
	if (kheap_init())
		return -1;
	sh("%s create -t dynamic -s 64M %s/wholedisk.vhd >/dev/null", vhdtool, dir);
	sh("%s create -t fixed -s 4M %s/a.vhd >/dev/null && %s create -t dynamic -s 8M %s/base.vhd >/dev/null", vhdtool, dir, vhdtool, dir);
	sh("cd %s && %s create -p base.vhd Child.vhd >/dev/null && %s create -t dynamic -s 8M gone.vhd >/dev/null && "
	   "%s create -p gone.vhd orphan.vhd >/dev/null && %s create -t fixed -s 2M p2.vhd >/dev/null",
	   dir, vhdtool, vhdtool, vhdtool, vhdtool);
	sh("cd %s && truncate -s 80M disk.img && printf 'start=2048, size=120832, type=c\\nstart=124928, size=4097, type=83\\n' | "
	   "sfdisk -q disk.img && mkfs.fat -F 32 --offset 2048 -n TESTVOL disk.img 60416 >/dev/null 2>&1 && "
	   "mmd -i disk.img@@1M ::/vhd ::/images ::/other && mcopy -i disk.img@@1M a.vhd ::/vhd/a.vhd && "
	   "mcopy -i disk.img@@1M base.vhd Child.vhd orphan.vhd ::/images/ && mcopy -i disk.img@@1M a.vhd ::/other/x.vhd && "
	   "dd if=p2.vhd of=disk.img bs=512 seek=124928 conv=notrunc status=none", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sh("rm -rf %s", dir);
	return 0;
}

/* Register disks (name: file under dir; where: its ATA position) in order; fresh log and scratch. */
static void disks(int n, const char *const *files, const char *const *where)
{
	disk_reset();
	for (int i = 0; i < n; i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		hostdev_close(&devs[i]);
		assert_int_equal(hostdev_open(&devs[i], path, HOSTDEV_RDONLY), 0);
		assert_true(disk_add(&devs[i].dev, "ata", where[i], files[i], 0) >= 0);
	}
	kstubs_log_reset();
	kheap_reset();
	menu_calls = 0;
}

/* Parse s as the command line. */
static void cmd_of(struct cmdline *c, const char *s)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->raw, sizeof(c->raw), "%s", s);
	cmdline_parse_raw(c);
	assert_int_equal(c->errors, 0);
}

/* ------------------------------------------------------------ tests */

/* The scan lists a whole-disk VHD, the files in /, /vhd, /images of a FAT partition and a VHD partition, named by registry labels. */
static void test_scan_lists_everything(void **state)
{
	(void)state;
	static const char *const f[] = { "wholedisk.vhd", "disk.img" }, *const w[] = { "pm", "sm" };
	disks(2, f, w);
	struct kerr e;
	assert_int_equal(iop_init(&e), 0);
	scan_reset();
	static struct scan_list l;
	l.n = 0;
	scan_disks(&l);
	const char *want[] = { "hd0", "hd1,1:/vhd/a.vhd", "hd1,1:/images/base.vhd", "hd1,1:/images/Child.vhd",
			       "hd1,1:/images/orphan.vhd", "hd1,2" };
	assert_int_equal(l.n, 6);
	for (int i = 0; i < 6; i++) {
		int found = 0;
		for (int j = 0; j < l.n; j++)
			found |= !strcasecmp(l.cands[j].name, want[i]);
		if (!found)
			fail_msg("%s not listed; log:\n%s", want[i], kstubs_log);
	}
	assert_non_null(strstr(kstubs_log, "FAT32 \"TESTVOL"));
	/* Checking: the chain resolves, the orphan explains what it tried. */
	for (int j = 0; j < l.n; j++) {
		struct sel_cand *c = &l.cands[j];
		iop_check(c);
		if (strstr(c->name, "Child")) {
			assert_true(c->ok);
			assert_string_equal(c->type, "differencing");
			assert_string_equal(c->fmt->name, "VHD");
			assert_int_equal(c->depth, 1);
			assert_string_equal(c->parent, "base.vhd");
		} else if (strstr(c->name, "orphan")) {
			assert_false(c->ok);
			assert_non_null(strstr(c->why, "was not found"));
			assert_non_null(strstr(c->why, "/images/gone.vhd"));
			assert_non_null(c->remedy);
		} else {
			if (!c->ok)
				fail_msg("%s: %s", c->name, c->why);
		}
		char line[200];
		scan_describe(c, line, sizeof(line));
		assert_non_null(strstr(line, c->name));
	}
}

/* vhd= items: a file by disk and partition, a file searched on every volume, a partition, a disk by ATA position; opened resident. */
static void test_named_items(void **state)
{
	(void)state;
	static const char *const f[] = { "wholedisk.vhd", "disk.img" }, *const w[] = { "ps", "ss" };
	struct cmdline c;
	struct kerr e = { 0, 0 };
	disks(2, f, w);
	cmd_of(&c, "vhd=hd1,1:/IMAGES/child.VHD+/vhd/a.vhd+hd1,2+ps");
	if (sel_choose(&c, 1000, &e))
		fail_msg("%s / %s\n%s", e.why, e.remedy, kstubs_log);
	assert_int_equal(menu_calls, 0);
	assert_int_equal(sel_open(IMG_OPEN_RDONLY, 0, &e), 4);
	struct sel_image *im = sel_image(0);
	const struct vhd *leaf = im->leaf;   /* the VHD adapter's state is the library's struct vhd */
	assert_int_equal(leaf->footer.type, VHD_TYPE_DIFF);
	assert_int_equal(im->members, 2);
	assert_non_null(leaf->parent);
	assert_string_equal(sel_image(1)->cand->name, "hd1,1:/vhd/a.vhd");
	assert_int_equal(sel_image(2)->cand->kind, SEL_PART);
	assert_int_equal(sel_image(3)->cand->kind, SEL_DISK);
	assert_string_equal(sel_image(3)->cand->name, "hd0");
	assert_non_null(sel_image(3)->place);
	assert_null(sel_image(4));
	assert_non_null(strstr(kstubs_log, "found through its child's"));
}

/* Errors come back as values: a disk that does not exist, no modules, a missing file, a file outside any volume. */
static void test_named_errors(void **state)
{
	(void)state;
	static const char *const f[] = { "disk.img" }, *const w[] = { "pm" };
	struct cmdline c;
	struct kerr e;
	disks(1, f, w);
	cmd_of(&c, "vhd=hd3");
	assert_int_equal(sel_choose(&c, 1000, &e), -1);
	assert_non_null(strstr(e.why, "names no hard disk"));
	assert_non_null(e.remedy);
	disks(1, f, w);
	cmd_of(&c, "vhd=ss");
	assert_int_equal(sel_choose(&c, 1000, &e), -1);
	assert_non_null(strstr(e.why, "vhd=ss"));
	disks(1, f, w);
	cmd_of(&c, "vhd=module0");
	assert_int_equal(sel_choose(&c, 1000, &e), -1);
	assert_non_null(strstr(e.why, "GRUB loaded 0 module(s)"));
	disks(1, f, w);
	cmd_of(&c, "vhd=hd0,1:/vhd/none.vhd");
	assert_int_equal(sel_choose(&c, 1000, &e), -1);
	assert_non_null(strstr(e.why, "no such file"));
	disks(1, f, w);
	cmd_of(&c, "vhd=/nowhere.vhd");
	assert_int_equal(sel_choose(&c, 1000, &e), -1);
	assert_non_null(strstr(e.why, "no FAT volume"));
	disks(1, f, w);
	cmd_of(&c, "vhd=hd0,1:/images/orphan.vhd");
	assert_int_equal(sel_choose(&c, 1000, &e), -1);
	assert_non_null(strstr(e.why, "was not found"));
}

/* No vhd=: several usable images give a menu (the user's pick is taken); one gives no menu; unusable ones are skipped. */
static void test_menu_choice(void **state)
{
	(void)state;
	static const char *const f[] = { "disk.img", "wholedisk.vhd" }, *const w[] = { "pm", "ps" };
	struct cmdline c;
	struct kerr e;
	disks(2, f, w);
	cmd_of(&c, "timeout=0");
	menu_pick = 1;
	assert_int_equal(sel_choose(&c, 1000, &e), 0);
	assert_int_equal(menu_calls, 1);
	assert_non_null(strstr(kstubs_log, "select: skipped hd0,1:/images/orphan.vhd"));
	assert_non_null(strstr(kstubs_log, "menu: chose 2:"));
	assert_int_equal(sel_open(0, 0, &e), 1);
	assert_non_null(strstr(kstubs_log, "(chosen in the menu)"));
	/* One image only: no menu. */
	static const char *const f1[] = { "wholedisk.vhd" }, *const w1[] = { "sm" };
	disks(1, f1, w1);
	assert_int_equal(sel_choose(&c, 1000, &e), 0);
	assert_int_equal(menu_calls, 0);
	assert_non_null(strstr(kstubs_log, "select: drive 80h = hd0 (the only image found)"));
}

/* hdN follows registration order, whatever the ATA positions; nothing at all gives the "no VHD found" explanation. */
/* The format table (image/image.c): VHD registered, its suffix matched case-insensitively, the fallback. */
static void test_format_table(void **state)
{
	(void)state;
	assert_true(img_format_count() >= 1);
	const struct img_format *vhd = img_suffix_match("/images/Win.VHD");
	assert_non_null(vhd);
	assert_string_equal(vhd->name, "VHD");
	assert_ptr_equal(img_fallback(), vhd);
	assert_null(img_suffix_match("/images/win.vhd.txt"));
	assert_null(img_suffix_match("vhd"));
	int has = 0;
	for (const char *const *s = img_suffixes(); *s; s++)
		has |= !strcmp(*s, ".vhd");
	assert_true(has);
	assert_non_null(strstr(img_suffix_text(), "*.vhd"));
	assert_true(img_state_max() >= vhd->state_bytes);
	assert_null(img_format_get(img_format_count()));
}

static void test_registry_order(void **state)
{
	(void)state;
	static const char *const f[] = { "wholedisk.vhd", "disk.img" }, *const w[] = { "ss", "pm" };
	disks(2, f, w);
	assert_string_equal(disk_get(0)->label, "hd0");
	assert_string_equal(disk_get(1)->label, "hd1");
	assert_ptr_equal(disk_by_where("ata", "pm"), disk_get(1));
	assert_ptr_equal(disk_by_label("hd0"), disk_get(0));
	assert_null(disk_by_label("hd2"));
	struct cmdline c;
	struct kerr e;
	disks(0, f, w);
	cmd_of(&c, "");
	assert_int_equal(sel_choose(&c, 1000, &e), -1);
	assert_non_null(strstr(e.why, "no VHD found"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan_lists_everything),
		cmocka_unit_test(test_named_items),
		cmocka_unit_test(test_named_errors),
		cmocka_unit_test(test_menu_choice),
		cmocka_unit_test(test_registry_order),
		cmocka_unit_test(test_format_table),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
