/* test_efihandover.c: cmocka tests for the hand-over under UEFI: efi/ehandover.c over kernel/handover.c and the hosted selection, on a GPT disk image with a FAT32 ESP holding a VHD, with a model of SetVariable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../efi/efi.h"
#include "kstubs.h"
#include "ushell.h"             /* sh: the image-building commands */
#include "kheap.h"              /* kheap_init, kheap_reset: kernel_base, mem_alloc and the scan's scratch */
#include "../../kernel/select.h"
#include "../../kernel/imgopen.h"
#include "../../kernel/mem.h"
#include "../../kernel/handover.h"
#include "../../block/disk.h"
#include "../../fs/part.h"        /* part_crc32 */
#include "../../tools/hostdev.h"

/* ------------------------------------------------------------ what the firmware build defines elsewhere */

EFI_SYSTEM_TABLE *efi_st;
EFI_BOOT_SERVICES *efi_bs;
EFI_GUID efi_guid_vhdboot = { 0xbb45c8af, 0xef6d, 0x4f0e, { 0x84, 0x3d, 0x8e, 0x34, 0x28, 0x83, 0xd8, 0x75 } };
uint32_t mem_res_base, mem_res_size;

int menu_choose(const char *const *names, int n, int def, int timeout_s, uint32_t tsc_per_ms, int *by_user)
{
	(void)names, (void)n, (void)timeout_s, (void)tsc_per_ms;
	*by_user = 0;
	return def;
}

/* ------------------------------------------------------------ the model of SetVariable */

static EFI_SYSTEM_TABLE st_model;
static EFI_RUNTIME_SERVICES rt_model;
static struct {
	char name[64];
	EFI_GUID guid;
	UINT32 attrs;
	UINTN size;
	uint8_t data[8192];
	int calls;
	EFI_STATUS answer;
} var;

/* SetVariable: record the call (name in ASCII, data copied) and answer var.answer. */
static EFI_STATUS EFIAPI m_setvar(CHAR16 *name, EFI_GUID *guid, UINT32 attrs, UINTN size, VOID *data)
{
	size_t k = 0;
	for (; name[k] && k + 1 < sizeof(var.name); k++)
		var.name[k] = name[k] < 128 ? (char)name[k] : '?';
	var.name[k] = 0;
	var.guid = *guid;
	var.attrs = attrs;
	var.size = size;
	var.calls++;
	if (size && size <= sizeof(var.data))
		memcpy(var.data, data, size);
	return var.answer;
}

/* ------------------------------------------------------------ fixtures */

static char dir[] = "/tmp/vhdboot-efiho-XXXXXX";
static struct hostdev dev;
static uint8_t disk0[512], gpt_hdr[512], gpt_ent[512];

/*
 * host.img: GPT, partition 1 (2048, 100 MiB) an ESP with FAT32 holding /images/t.vhd (dynamic, 16 MiB) and a
 * VHDX (qemu-img); partition 2 (206848, 40 MiB) NTFS (mkntfs -Q, 4 KiB clusters) holding /n.vhd (ntfscp).
 */
static int setup(void **state)
{
	(void)state;
	static char tool[4096];
	const char *t = getenv("VHDTOOL") ? getenv("VHDTOOL") : "build/vhdtool";
	if (!realpath(t, tool))
		fail_msg("%s: not found (build it first, or set VHDTOOL)", t);
	if (!mkdtemp(dir))
		return -1;
	if (kheap_init())
		return -1;
	sh("cd %s && %s create -t dynamic -s 16M t.vhd >/dev/null && qemu-img create -q -f vhdx x.vhdx 16M",
	   dir, tool);
	sh("cd %s && truncate -s 150M host.img && printf 'label: gpt\\nstart=2048, size=204800, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\\n"
	   "start=206848, size=81920, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\\n' | "
	   "sfdisk -q host.img && mkfs.fat -F 32 --offset 2048 -n HOSTESP host.img 102400 >/dev/null 2>&1 && "
	   "mmd -i host.img@@1M ::/images && mcopy -i host.img@@1M t.vhd ::/images/t.vhd && mcopy -i host.img@@1M x.vhdx ::/images/x.vhdx", dir);
	sh("cd %s && truncate -s 40M ntfs.img && mkntfs -F -Q -q -c 4096 -p 206848 -H 16 -S 63 ntfs.img >/dev/null 2>&1 && "
	   "ntfscp -q ntfs.img t.vhd /n.vhd && dd if=ntfs.img of=host.img bs=512 seek=206848 conv=notrunc status=none", dir);
	char p[512];
	snprintf(p, sizeof(p), "%s/host.img", dir);
	FILE *f = fopen(p, "rb");
	if (!f || fread(disk0, 1, 512, f) != 512 || fread(gpt_hdr, 1, 512, f) != 512 || fread(gpt_ent, 1, 512, f) != 512)
		return -1;
	fclose(f);
	st_model.RuntimeServices = &rt_model;
	rt_model.SetVariable = m_setvar;
	efi_st = &st_model;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sh("rm -rf %s", dir);
	return 0;
}

/* The host disk as the firmware's Block I/O disk hd0 (driver "efi", as efi/eblk.c registers it), image vhd chosen and opened. */
static void choose(const char *vhd)
{
	char path[512];
	disk_reset();
	snprintf(path, sizeof(path), "%s/host.img", dir);
	hostdev_close(&dev);
	assert_int_equal(hostdev_open(&dev, path, HOSTDEV_RDONLY), 0);
	assert_true(disk_add(&dev.dev, "efi", "nvme0", "EFI Block I/O, IoAlign 8", 0) >= 0);
	kstubs_log_reset();
	kheap_reset();
	struct cmdline c;
	memset(&c, 0, sizeof(c));
	snprintf(c.raw, sizeof(c.raw), "vhd=%s", vhd);
	cmdline_parse_raw(&c);
	struct kerr e;
	assert_int_equal(sel_choose(&c, 1000, &e), 0);
	assert_int_equal(sel_open(IMG_OPEN_RDONLY, 0, &e), 1);
	memset(&var, 0, sizeof(var));
	var.answer = EFI_SUCCESS;
}

/* Choose vhd, publish it with mode and check the variable's table; returns its drive 0. */
static const struct ho_drive *publish(const char *vhd, int mode)
{
	choose(vhd);
	assert_int_equal(eho_publish(1, mode), 0);
	assert_int_equal(ho_check(var.data, (uint32_t)var.size), HO_OK);
	return ho_drive_get(var.data, 0);
}

/* d's first extent starts the file (file sector 0) and its first sector on the disk begins with the 8 bytes magic. */
static void assert_first_extent(const struct ho_drive *d, const char *magic)
{
	struct ho_extent e;
	uint8_t s[512];
	assert_int_equal(ho_extent_get(var.data, d, 0, &e), HO_OK);
	assert_int_equal(e.file_sector, 0);
	assert_int_equal(blk_read(&dev.dev, d->part_start + e.lba, 1, s), 0);
	assert_memory_equal(s, magic, 8);
}

/* ------------------------------------------------------------ tests */

/* The variable: our name and GUID, volatile boot+runtime access, a table that checks, every identity field of the disk. */
static void test_publish_fills_the_table(void **state)
{
	(void)state;
	const struct ho_drive *d = publish("/images/t.vhd", CMDLINE_MODE_RW);
	assert_int_equal(var.calls, 1);
	assert_string_equal(var.name, HO_EFI_VAR_NAME);
	assert_memory_equal(&var.guid, &efi_guid_vhdboot, sizeof(EFI_GUID));
	assert_int_equal(var.attrs, EFI_VARIABLE_BOOTSERVICE_ACCESS | EFI_VARIABLE_RUNTIME_ACCESS);
	const struct ho_header *h = (const void *)var.data;
	assert_int_equal(h->total_bytes, var.size);
	assert_int_equal(h->version_minor, 2);
	assert_int_equal(h->flags, HO_F_EFI_VAR);
	assert_int_equal(h->self_phys, 0);
	assert_int_equal(h->resident_phys | h->resident_bytes | h->low_phys | h->low_bytes, 0);
	assert_int_equal(d->bios_drive, 0x80);
	assert_int_equal(d->mode, HO_MODE_RW);
	assert_int_equal(d->iface, HO_IFACE_EFI);
	assert_int_equal(d->place, HO_PLACE_FILE);
	assert_int_equal(d->fs, HO_FS_FAT32);
	assert_int_equal(d->image_type, HO_TYPE_DYNAMIC);
	assert_int_equal(d->virt_sectors, 16 * 2048);
	assert_int_equal(d->disk_sectors, 150 * 2048);
	assert_int_equal(d->disk_lba0_crc, part_crc32(0, disk0, 512));
	assert_int_equal(d->disk_scheme, HO_SCHEME_GPT);
	assert_memory_equal(d->disk_guid, gpt_hdr + 56, 16);             /* the GPT header's DiskGUID */
	assert_int_equal(d->part_number, 1);
	assert_int_equal(d->part_scheme, HO_SCHEME_GPT);
	assert_int_equal(d->part_start, 2048);
	assert_int_equal(d->part_sectors, 204800);
	assert_memory_equal(d->part_guid, gpt_ent + 16, 16);             /* entry 0's UniquePartitionGUID */
	assert_string_equal(ho_str(var.data, d->model_off), "EFI Block I/O, IoAlign 8");
	assert_int_equal(d->serial_off, 0);
	assert_int_equal(d->chain_len, 1);
	assert_string_equal(ho_chain_path(var.data, d, 0), "/images/t.vhd");
	assert_true(d->extents_count >= 1 && d->extents_count == d->extents_total);
	/* The first extent is where the file starts: its first sector is the dynamic VHD's footer copy. */
	assert_first_extent(d, "conectix");
	assert_non_null(strstr(kstubs_log, "in the volatile runtime variable " HO_EFI_VAR_NAME "-" HO_EFI_VAR_GUID));
	/* Taken back: the variable is deleted (size 0), once. */
	eho_withdraw();
	assert_int_equal(var.calls, 2);
	assert_int_equal(var.size, 0);
	eho_withdraw();
	assert_int_equal(var.calls, 2);
}

/* mode=ro is in the record and its read-only flag. */
static void test_publish_ro(void **state)
{
	(void)state;
	const struct ho_drive *d = publish("/images/t.vhd", CMDLINE_MODE_RO);
	assert_int_equal(d->mode, HO_MODE_RO);
	assert_true(d->flags & HO_DF_READ_ONLY);
	eho_withdraw();
}

/* The firmware refuses the variable: -1, a message, nothing to delete later. */
static void test_setvariable_refused(void **state)
{
	(void)state;
	choose("/images/t.vhd");
	var.answer = EFI_OUT_OF_RESOURCES;
	assert_int_equal(eho_publish(1, CMDLINE_MODE_RW), -1);
	assert_non_null(strstr(kstubs_log, "SetVariable(" HO_EFI_VAR_NAME ")"));
	assert_non_null(strstr(kstubs_log, "failed: status"));
	int calls = var.calls;
	eho_withdraw();
	assert_int_equal(var.calls, calls);
}

/* A VHDX (1.2): format HO_FMT_VHDX, its type and size, the file's path and first extent as for a VHD. */
static void test_vhdx_published(void **state)
{
	(void)state;
	const struct ho_drive *d = publish("/images/x.vhdx", CMDLINE_MODE_RW);
	assert_int_equal(var.calls, 1);
	assert_int_equal(d->format, HO_FMT_VHDX);
	assert_int_equal(d->image_type, HO_TYPE_DYNAMIC);
	assert_int_equal(d->virt_sectors, 16 * 2048);
	assert_int_equal(d->place, HO_PLACE_FILE);
	assert_int_equal(d->fs, HO_FS_FAT32);
	assert_string_equal(ho_chain_path(var.data, d, 0), "/images/x.vhdx");
	assert_first_extent(d, "vhdxfile");
	eho_withdraw();
}

/* A file on NTFS (1.2): fs HO_FS_NTFS, the volume's 4 KiB clusters, partition 2, the first extent at the file's footer copy. */
static void test_ntfs_file_published(void **state)
{
	(void)state;
	const struct ho_drive *d = publish("hd0,2:/n.vhd", CMDLINE_MODE_RW);
	assert_int_equal(d->format, HO_FMT_VHD);
	assert_int_equal(d->place, HO_PLACE_FILE);
	assert_int_equal(d->fs, HO_FS_NTFS);
	assert_int_equal(d->cluster_bytes, 4096);
	assert_int_equal(d->part_number, 2);
	assert_int_equal(d->part_start, 206848);
	assert_string_equal(ho_chain_path(var.data, d, 0), "/n.vhd");
	assert_true(d->extents_count >= 1 && d->extents_count == d->extents_total);
	assert_first_extent(d, "conectix");
	eho_withdraw();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_publish_fills_the_table),
		cmocka_unit_test(test_publish_ro),
		cmocka_unit_test(test_setvariable_refused),
		cmocka_unit_test(test_vhdx_published),
		cmocka_unit_test(test_ntfs_file_published),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
