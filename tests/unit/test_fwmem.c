/* test_fwmem.c: cmocka tests for the firmware's command line, resident-region choice and INT 15h memory map (host build). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "../../drivers/driver.h"

/* The units under test are freestanding kernel files; compile them in here. */
#include "../../kernel/cmdline.c"
#include "../../kernel/mem.c"
#include "../../kernel/int15.c"

/* ------------------------------------------------------------ kernel stand-ins */

uint32_t kernel_base;              /* phys_ptr() is only used by code we do not call */
uint8_t __image_end[16];

static uint8_t gbuf[64];           /* the guest's E820 buffer */
static uint32_t gbuf_lin = 0x1000;

void *guestmem_ptr(uint32_t linear, uint32_t bytes)
{
	if (linear < gbuf_lin || (uint64_t)linear + bytes > gbuf_lin + sizeof(gbuf))
		return NULL;
	return gbuf + (linear - gbuf_lin);
}

/* ------------------------------------------------------------ command line */

static void parse(struct cmdline *c, const char *s)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->raw, sizeof(c->raw), "%s", s);
	cmdline_parse_raw(c);
}

static void test_cmdline(void **state)
{
	(void)state;
	struct cmdline c;
	parse(&c, "");
	assert_int_equal(c.nvhd, 0);
	assert_int_equal(c.disk_mode, DRV_DISK_AUTO);
	parse(&c, "disk=bios");
	assert_int_equal(c.disk_mode, DRV_DISK_BIOS);
	assert_int_equal(c.errors, 0);
	parse(&c, "disk=native");
	assert_int_equal(c.disk_mode, DRV_DISK_NATIVE);
	parse(&c, "disk=pio");
	assert_int_equal(c.disk_mode, DRV_DISK_PIO);
	parse(&c, "disk=auto");
	assert_int_equal(c.disk_mode, DRV_DISK_AUTO);
	parse(&c, "disk=usb disk= disk=biosx");
	assert_int_equal(c.disk_mode, DRV_DISK_AUTO);
	assert_int_equal(c.errors, 3);
	assert_string_equal(c.bad, "disk=usb");
	parse(&c, "");
	assert_int_equal(c.errors, 0);
	parse(&c, "vhd=pm");
	assert_int_equal(c.nvhd, 1);
	assert_int_equal(c.vhd[0].kind, CMDLINE_VHD_DISK);
	assert_string_equal(c.vhd[0].disk, "pm");
	assert_int_equal(c.vhd[0].by_position, 1);
	parse(&c, "vhd=ss trace");
	assert_string_equal(c.vhd[0].disk, "ss");
	assert_int_equal(c.trace, 1);
	parse(&c, "/boot/vhdboot.elf vhd=sm");
	assert_string_equal(c.vhd[0].disk, "sm");
	assert_int_equal(c.errors, 0);
	parse(&c, "vhd=hd1");
	assert_string_equal(c.vhd[0].disk, "hd1");
	assert_int_equal(c.vhd[0].by_position, 0);
	parse(&c, "vhd=hd15");
	assert_int_equal(c.errors, 0);
	assert_string_equal(c.vhd[0].disk, "hd15");
	parse(&c, "  vhd=auto  ");
	assert_int_equal(c.nvhd, 0);
	assert_int_equal(c.errors, 0);
	parse(&c, "trace");
	assert_int_equal(c.trace, 1);
	assert_int_equal(c.no_handover, 0);
	assert_int_equal(c.errors, 0);
	parse(&c, "nohandover");                 /* no hand-over table (docs/handover.md) */
	assert_int_equal(c.no_handover, 1);
	assert_int_equal(c.errors, 0);
	parse(&c, "nohandoverx");
	assert_int_equal(c.no_handover, 0);
	assert_int_equal(c.errors, 1);
	parse(&c, "vhd=hd16 bogus");
	assert_int_equal(c.nvhd, 0);
	assert_int_equal(c.errors, 2);
	assert_string_equal(c.bad, "vhd=hd16");
}

/* vhd= lists, partitions, paths, modules; timeout=; vhd_ignore_timestamp (kernel/select.c's input). */
static void test_cmdline_select(void **state)
{
	(void)state;
	struct cmdline c;
	parse(&c, "");
	assert_int_equal(c.nvhd, 0);
	assert_int_equal(c.timeout, CMDLINE_TIMEOUT_DEFAULT);
	assert_int_equal(c.ignore_timestamp, 0);
	parse(&c, "vhd=hd0,1:/images/win.vhd timeout=12 vhd_ignore_timestamp");
	assert_int_equal(c.errors, 0);
	assert_int_equal(c.nvhd, 1);
	assert_string_equal(c.vhd[0].text, "hd0,1:/images/win.vhd");
	assert_int_equal(c.vhd[0].kind, CMDLINE_VHD_FILE);
	assert_string_equal(c.vhd[0].disk, "hd0");
	assert_int_equal(c.vhd[0].part, 1);
	assert_string_equal(c.vhd[0].path, "/images/win.vhd");
	assert_int_equal(c.timeout, 12);
	assert_int_equal(c.ignore_timestamp, 1);
	/* Double quotes keep spaces in a word and are dropped; an unterminated quote is a bad word. */
	parse(&c, "vhd=\"hd0,1:/my images/Windows 10.vhd\" trace");
	assert_int_equal(c.errors, 0);
	assert_int_equal(c.nvhd, 1);
	assert_int_equal(c.vhd[0].kind, CMDLINE_VHD_FILE);
	assert_string_equal(c.vhd[0].path, "/my images/Windows 10.vhd");
	assert_int_equal(c.trace, 1);
	parse(&c, "vhd=/\"a  b\".vhd+hd1");
	assert_int_equal(c.errors, 0);
	assert_int_equal(c.nvhd, 2);
	assert_string_equal(c.vhd[0].path, "/a  b.vhd");
	assert_int_equal(c.vhd[0].kind, CMDLINE_VHD_PATH);
	parse(&c, "\"vhd=hd0:/vhd\\\\sub/my \\\"x\\\".vhd\" trace");   /* GRUB 2's quoting of vhd=hd0:/vhd\sub/my "x".vhd */
	assert_int_equal(c.errors, 0);
	assert_string_equal(c.vhd[0].path, "/vhd\\sub/my \"x\".vhd");
	assert_int_equal(c.trace, 1);
	/* Volumes by label or GPT partition GUID; parents= lists where parents may be. */
	parse(&c, "vhd=label=My_Data:/vhd/child.vhd parents=hd1,2+label=BASES+guid=0fc63daf-8483-4772-8E79-3d69d8477de4");
	assert_int_equal(c.errors, 0);
	assert_int_equal(c.vhd[0].kind, CMDLINE_VHD_FILE);
	assert_int_equal(c.vhd[0].vol_by, CMDLINE_VOL_LABEL);
	assert_string_equal(c.vhd[0].vol, "My_Data");
	assert_string_equal(c.vhd[0].path, "/vhd/child.vhd");
	assert_int_equal(c.nparent_vols, 3);
	assert_int_equal(c.parent_vols[0].by, CMDLINE_VOL_INDEX);
	assert_string_equal(c.parent_vols[0].disk, "hd1");
	assert_int_equal(c.parent_vols[0].part, 2);
	assert_int_equal(c.parent_vols[1].by, CMDLINE_VOL_LABEL);
	assert_string_equal(c.parent_vols[1].name, "BASES");
	assert_int_equal(c.parent_vols[2].by, CMDLINE_VOL_GUID);
	assert_string_equal(c.parent_vols[2].name, "0fc63daf-8483-4772-8E79-3d69d8477de4");
	parse(&c, "vhd=\"guid=0FC63DAF-8483-4772-8E79-3D69D8477DE4:/my file.vhd\"");
	assert_int_equal(c.errors, 0);
	assert_int_equal(c.vhd[0].vol_by, CMDLINE_VOL_GUID);
	assert_string_equal(c.vhd[0].path, "/my file.vhd");
	parse(&c, "vhd=guid=0FC63DAF-8483-4772-8E79:/x.vhd");          /* not a GUID */
	assert_int_equal(c.nvhd, 0);
	assert_int_equal(c.errors, 1);
	parse(&c, "vhd=label=DATA");                                    /* a label names a volume, not an image */
	assert_int_equal(c.errors, 1);
	parse(&c, "parents=hd0,1+ parents=hd99 parents=label=");
	assert_int_equal(c.errors, 3);
	assert_int_equal(c.nparent_vols, 0);
	parse(&c, "vhd=\"/open quote.vhd trace");
	assert_int_equal(c.nvhd, 0);
	assert_int_equal(c.trace, 0);
	assert_int_equal(c.errors, 1);
	assert_string_equal(c.bad, "vhd=\"/open quote.vhd trace");
	parse(&c, "\"\" trace");                  /* an empty quoted word is named as written (fuzz_cmdline) */
	assert_int_equal(c.errors, 1);
	assert_int_equal(c.trace, 1);
	assert_string_equal(c.bad, "\"\"");
	parse(&c, "vhd=/a.vhd+pm,5+hd1:/x/y.vhd+module1");
	assert_int_equal(c.errors, 0);
	assert_int_equal(c.nvhd, 4);
	assert_string_equal(c.vhd[0].text, "/a.vhd");
	assert_int_equal(c.vhd[0].kind, CMDLINE_VHD_PATH);
	assert_string_equal(c.vhd[0].path, "/a.vhd");
	assert_string_equal(c.vhd[1].text, "pm,5");
	assert_int_equal(c.vhd[1].kind, CMDLINE_VHD_PART);
	assert_int_equal(c.vhd[1].part, 5);
	assert_string_equal(c.vhd[2].text, "hd1:/x/y.vhd");
	assert_int_equal(c.vhd[2].kind, CMDLINE_VHD_FILE);
	assert_int_equal(c.vhd[2].part, 0);
	assert_string_equal(c.vhd[3].text, "module1");
	assert_int_equal(c.vhd[3].kind, CMDLINE_VHD_MODULE);
	assert_int_equal(c.vhd[3].module, 1);
	parse(&c, "vhd=module");
	assert_int_equal(c.vhd[0].kind, CMDLINE_VHD_MODULE);
	assert_int_equal(c.vhd[0].module, 0);
	parse(&c, "vhd=ps");
	assert_int_equal(c.nvhd, 1);
	assert_string_equal(c.vhd[0].disk, "ps");
	parse(&c, "vhd=hd0,1 timeout=0");
	assert_int_equal(c.errors, 0);
	assert_int_equal(c.timeout, 0);
	/* Malformed: empty item, trailing '+', too many, bad partition, path without '/', bad disk, bad timeout. */
	const char *bad[] = { "vhd=a+", "vhd=/a+", "vhd=/a+/b+/c+/d+/e", "vhd=hd0,", "vhd=hd0,x", "vhd=hd0:x.vhd",
			      "vhd=hd16", "vhd=hd01", "vhd=hdx", "vhd=modulex", "timeout=", "timeout=5s", "timeout=99999" };
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		parse(&c, bad[i]);
		assert_int_equal(c.errors, 1);
		assert_string_equal(c.bad, bad[i]);
	}
}

/* ------------------------------------------------------------ memory map */

/* QEMU -m 256 as SeaBIOS reports it. */
static void qemu_map(void)
{
	mem_nranges = 0;
	mem_add(0, 0x9FC00, 1);
	mem_add(0x9FC00, 0x400, 2);
	mem_add(0xF0000, 0x10000, 2);
	mem_add(0x100000, 0xFEE0000, 1);
	mem_add(0xFFE0000, 0x20000, 2);
	mem_add(0xFFFC0000, 0x40000, 2);
	mem_res_base = mem_res_size = 0;
}

static void test_choose(void **state)
{
	(void)state;
	qemu_map();
	assert_int_equal(mem_usable_below_4g(), 0x9FC00 + 0xFEE0000);
	/* Top of the usable range, 64 KiB aligned. */
	assert_int_equal(mem_choose_resident(0x20000, 0x100000, 0x120000), 0xFFC0000);
	assert_int_equal(mem_res_size, 0x20000);
	/* Avoiding a block at the top moves below it. */
	assert_int_equal(mem_choose_resident(0x20000, 0xFFD0000, 0xFFE0000), 0xFFB0000);
	/* A reserved range overlapping a usable one (sloppy BIOS) is respected. */
	mem_add(0xFF00000, 0x1000, 2);
	assert_int_equal(mem_choose_resident(0x200000, 0, 0), 0xFD00000);
	/* Never below 1 MiB, never bigger than RAM. */
	assert_int_equal(mem_choose_resident(0x20000000, 0, 0), 0);
	/* Usable RAM above 4 GiB is ignored; a range crossing 4 GiB is clipped. */
	qemu_map();
	mem_nranges = 0;
	mem_add(0x100000, 0xFFF00000ull + 0x10000000ull, 1);
	assert_int_equal(mem_choose_resident(0x10000, 0, 0), 0xFFFF0000u);
}

/* mem_reserve (a GRUB module): split out of a usable range, avoided by the resident choice. */
static void test_reserve(void **state)
{
	(void)state;
	qemu_map();
	uint64_t before = mem_usable_below_4g();
	assert_int_equal(mem_reserve(0x130000, 0x401000), 1);
	assert_int_equal(mem_usable_below_4g(), before - 0x401000);
	int hit = 0;
	for (int i = 0; i < mem_nranges; i++) {
		if (mem_map[i].base == 0x130000 && mem_map[i].len == 0x401000 && mem_map[i].type == MEM_RESERVED)
			hit++;
		/* no usable range overlaps the reserved one */
		if (mem_map[i].type == MEM_USABLE)
			assert_true(mem_map[i].base + mem_map[i].len <= 0x130000 || mem_map[i].base >= 0x531000);
	}
	assert_int_equal(hit, 1);
	/* The resident region steps around it (module at the top of RAM). */
	assert_int_equal(mem_reserve(0xFF80000, 0x60000), 1);
	assert_int_equal(mem_choose_resident(0x20000, 0, 0), 0xFF60000);
	/* Reserving inside reserved memory changes nothing. */
	int n = mem_nranges;
	assert_int_equal(mem_reserve(0x9FC00, 0x100), 1);
	assert_int_equal(mem_nranges, n);
	/* A full table refuses. */
	mem_nranges = MEM_MAX_RANGES - 1;
	mem_map[MEM_MAX_RANGES - 2] = (struct mem_range){ 0x100000, 0x100000, MEM_USABLE };
	assert_int_equal(mem_reserve(0x180000, 0x1000), 0);
}

/* mem_carve on a small table: the pieces that fit are kept, the carved range never stays usable. */
static void test_carve_full(void **state)
{
	(void)state;
	struct mem_range m[8] = { { 0, 0x9FC00, MEM_USABLE }, { 0x100000, 0x100000, MEM_USABLE } };
	int n = 2;
	/* Inside the second range: the reserved middle fits, the usable tail does not. */
	assert_int_equal(mem_carve(m, &n, 3, 0x180000, 0x181000), 0);
	assert_int_equal(n, 3);
	assert_true(m[1].base == 0x100000 && m[1].len == 0x80000 && m[1].type == MEM_USABLE);
	assert_true(m[2].base == 0x180000 && m[2].len == 0x1000 && m[2].type == MEM_RESERVED);
	/* At the end of the first range nothing new is needed but the reserved piece: no room, it is dropped. */
	assert_int_equal(mem_carve(m, &n, 3, 0x9F000, 0xA0000), 0);
	assert_int_equal(n, 3);
	assert_int_equal(m[0].len, 0x9F000);
	/* Across both: nothing usable is left in [lo, hi). */
	n = 2;
	m[0] = (struct mem_range){ 0, 0x9FC00, MEM_USABLE };
	m[1] = (struct mem_range){ 0x100000, 0x100000, MEM_USABLE };
	assert_int_equal(mem_carve(m, &n, 8, 0x90000, 0x110000), 1);
	for (int i = 0; i < n; i++)
		if (m[i].type == MEM_USABLE)
			assert_true(m[i].base + m[i].len <= 0x90000 || m[i].base >= 0x110000);
}

/* ------------------------------------------------------------ INT 15h */

static struct rm_regs call15(uint32_t eax, uint32_t ebx, uint32_t ecx)
{
	struct rm_regs r;
	memset(&r, 0, sizeof(r));
	r.eax = eax;
	r.ebx = ebx;
	r.ecx = ecx;
	r.edx = INT15_SMAP;
	r.es = (uint16_t)(gbuf_lin >> 4);
	r.edi = 0;
	r.vector = 0x15;
	int15_handle(&r);
	return r;
}

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void test_int15(void **state)
{
	(void)state;
	qemu_map();
	int n = int15_init(0xFFC0000, 0x20000, 0x9F800, 0x9FC00);
	/* 0-9F800 ram, 9F800-9FC00 res, 9FC00 res, F0000 res, 1M-FFC0000 ram, FFC0000 res, FFE0000 res, top res */
	assert_int_equal(n, 8);
	uint64_t expect[8][3] = {
		{ 0, 0x9F800, 1 }, { 0x9F800, 0x400, 2 }, { 0x9FC00, 0x400, 2 }, { 0xF0000, 0x10000, 2 },
		{ 0x100000, 0xFEC0000, 1 }, { 0xFFC0000, 0x20000, 2 }, { 0xFFE0000, 0x20000, 2 },
		{ 0xFFFC0000, 0x40000, 2 },
	};
	uint32_t cont = 0;
	for (int i = 0; i < 8; i++) {
		memset(gbuf, 0xEE, sizeof(gbuf));
		struct rm_regs r = call15(0xE820, cont, 24);
		assert_int_equal(r.flags & RM_FLAG_CF, 0);
		assert_int_equal(r.eax, INT15_SMAP);
		assert_int_equal(r.ecx, 24);
		assert_int_equal(le(gbuf, 8), expect[i][0]);
		assert_int_equal(le(gbuf + 8, 8), expect[i][1]);
		assert_int_equal(le(gbuf + 16, 4), expect[i][2]);
		assert_int_equal(le(gbuf + 20, 4), 1);
		assert_int_equal(gbuf[24], 0xEE);
		cont = r.ebx;
		assert_int_equal(cont, i == 7 ? 0 : (uint32_t)i + 1);
	}
	/* 20-byte callers get 20 bytes. */
	memset(gbuf, 0xEE, sizeof(gbuf));
	struct rm_regs r = call15(0xE820, 0, 20);
	assert_int_equal(r.ecx, 20);
	assert_int_equal(gbuf[20], 0xEE);
	/* Bad signature, short buffer, index past the end, buffer we refuse: CF=1. */
	r = call15(0xE820, 0, 19);
	assert_int_equal(r.flags & RM_FLAG_CF, 1);
	r = call15(0xE820, 8, 20);
	assert_int_equal(r.flags & RM_FLAG_CF, 1);
	memset(&r, 0, sizeof(r));
	r.eax = 0xE820;
	r.ecx = 20;
	r.edx = INT15_SMAP;
	r.es = 0x200;                 /* 0x2000: not guest memory we hand out */
	int15_handle(&r);
	assert_int_equal(r.flags & RM_FLAG_CF, 1);

	/* E801h / 88h: memory from 1 MiB up to the resident region. */
	uint32_t kb = (0xFFC0000 - 0x100000) >> 10;
	assert_int_equal(int15_ext_kb(), kb);
	r = call15(0xE801, 0, 0);
	assert_int_equal(r.flags & RM_FLAG_CF, 0);
	assert_int_equal(r.eax & 0xFFFF, 15 * 1024);
	assert_int_equal(r.ecx & 0xFFFF, 15 * 1024);
	assert_int_equal(r.ebx & 0xFFFF, (kb - 15 * 1024) / 64);
	assert_int_equal(r.edx & 0xFFFF, (kb - 15 * 1024) / 64);
	r = call15(0xE881, 0, 0);
	assert_int_equal(r.ebx, (kb - 15 * 1024) / 64);
	r = call15(0x8800, 0, 0);
	assert_int_equal(r.eax & 0xFFFF, 63 * 1024);
	assert_int_equal(r.flags & RM_FLAG_CF, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_choose),
		cmocka_unit_test(test_cmdline_select),
		cmocka_unit_test(test_reserve),
		cmocka_unit_test(test_carve_full),
		cmocka_unit_test(test_int15),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
