/* test_efiopts.c: cmocka tests for efi/eopts.c (load options, vhdboot.cfg, loader=) built hosted, over a model of LoadedImage and the Simple File System. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../efi/efi.h"
#include "kstubs.h"

/* What efi/main.c and efi/emem.c define in the firmware build. */
EFI_BOOT_SERVICES *efi_bs;
EFI_SYSTEM_TABLE *efi_st;
EFI_HANDLE efi_image;
EFI_GUID efi_guid_loaded_image = EFI_LOADED_IMAGE_PROTOCOL_GUID;
EFI_GUID efi_guid_sfs = EFI_SIMPLE_FILE_SYSTEM_PROTOCOL_GUID;
uint32_t kernel_base;             /* kernel/cmdline.c's phys_ptr (unused: cmdline_parse_raw only) */

/* ------------------------------------------------------------ the model */

static EFI_BOOT_SERVICES bs_model;
static EFI_LOADED_IMAGE li;
static EFI_FILE_IO_INTERFACE sfs;
static EFI_FILE_PROTOCOL root, file;
static int image_token, device_token;
static int sfs_present, opens;
static const char *cfg_text;      /* the file at cfg_path, or NULL: none */
static char cfg_path[128], opened[128];
static size_t cfg_pos;
static uint8_t filepath[512];

/* UTF-16 text (as CHAR16 units) to ASCII. */
static void narrow(const CHAR16 *w, char *out, size_t n)
{
	size_t k = 0;
	for (; w[k] && k + 1 < n; k++)
		out[k] = (char)w[k];
	out[k] = 0;
}

static EFI_STATUS EFIAPI m_handle_protocol(EFI_HANDLE h, EFI_GUID *g, VOID **out)
{
	if (h == &image_token && !memcmp(g, &efi_guid_loaded_image, sizeof(*g))) {
		*out = &li;
		return EFI_SUCCESS;
	}
	if (h == &device_token && sfs_present && !memcmp(g, &efi_guid_sfs, sizeof(*g))) {
		*out = &sfs;
		return EFI_SUCCESS;
	}
	return EFI_UNSUPPORTED;
}

static EFI_STATUS EFIAPI m_open_volume(EFI_FILE_IO_INTERFACE *s, EFI_FILE_HANDLE *r)
{
	(void)s;
	*r = &root;
	return EFI_SUCCESS;
}

static EFI_STATUS EFIAPI m_open(EFI_FILE_HANDLE f, EFI_FILE_HANDLE *nf, CHAR16 *name, UINT64 mode, UINT64 attr)
{
	(void)f;
	(void)attr;
	assert_int_equal(mode, EFI_FILE_MODE_READ);     /* never opened for writing */
	opens++;
	narrow(name, opened, sizeof(opened));
	if (!cfg_text || strcmp(opened, cfg_path))
		return EFI_NOT_FOUND;
	cfg_pos = 0;
	*nf = &file;
	return EFI_SUCCESS;
}

static EFI_STATUS EFIAPI m_close(EFI_FILE_HANDLE f)
{
	(void)f;
	return EFI_SUCCESS;
}

static EFI_STATUS EFIAPI m_read(EFI_FILE_HANDLE f, UINTN *size, VOID *buf)
{
	(void)f;
	size_t left = strlen(cfg_text) - cfg_pos;
	if (*size > left)
		*size = left;
	memcpy(buf, cfg_text + cfg_pos, *size);
	cfg_pos += *size;
	return EFI_SUCCESS;
}

/* Load options as UTF-16 (NUL included) in a static buffer. */
static void set_text_options(const char *s)
{
	static CHAR16 w[256];
	size_t k = 0;
	for (; s[k]; k++)
		w[k] = (CHAR16)s[k];
	w[k] = 0;
	li.LoadOptions = w;
	li.LoadOptionsSize = (UINT32)((k + 1) * 2);
}

/* LoadedImage->FilePath = a file node with path, then End. */
static void set_file_path(const char *path)
{
	size_t n = strlen(path), len = 4 + (n + 1) * 2;
	filepath[0] = MEDIA_DEVICE_PATH;
	filepath[1] = MEDIA_FILEPATH_DP;
	filepath[2] = (uint8_t)len;
	filepath[3] = (uint8_t)(len >> 8);
	for (size_t i = 0; i <= n; i++) {
		filepath[4 + 2 * i] = (uint8_t)path[i];
		filepath[5 + 2 * i] = 0;
	}
	filepath[len] = END_DEVICE_PATH_TYPE;
	filepath[len + 1] = END_ENTIRE_DEVICE_PATH_SUBTYPE;
	filepath[len + 2] = 4;
	filepath[len + 3] = 0;
	li.FilePath = (EFI_DEVICE_PATH *)filepath;
}

static int setup(void **state)
{
	(void)state;
	memset(&bs_model, 0, sizeof(bs_model));
	bs_model.HandleProtocol = m_handle_protocol;
	efi_bs = &bs_model;
	efi_image = &image_token;
	memset(&li, 0, sizeof(li));
	li.DeviceHandle = &device_token;
	set_file_path("\\EFI\\BOOT\\BOOTX64.EFI");
	sfs.OpenVolume = m_open_volume;
	root.Open = m_open;
	root.Close = file.Close = m_close;
	file.Read = m_read;
	sfs_present = 1;
	opens = 0;
	cfg_text = NULL;
	strcpy(cfg_path, "\\EFI\\BOOT\\vhdboot.cfg");
	kstubs_log_reset();
	return 0;
}

/* ------------------------------------------------------------ tests */

/* No load options, no config file: the defaults (scan, rw), the default loader; the config file was looked for. */
static void test_nothing_given(void **state)
{
	(void)state;
	struct cmdline c;
	char loader[128];
	eopts_read(&c, loader, sizeof(loader));
	assert_string_equal(loader, "\\EFI\\BOOT\\BOOTX64.EFI");
	assert_int_equal(c.nvhd, 0);
	assert_int_equal(c.mode, CMDLINE_MODE_RW);
	assert_int_equal(c.errors, 0);
	assert_int_equal(opens, 1);
	assert_string_equal(opened, "\\EFI\\BOOT\\vhdboot.cfg");
	assert_non_null(strstr(kstubs_log, "no \\EFI\\BOOT\\vhdboot.cfg beside vhdboot.efi"));
}

/* A firmware-made boot entry's binary data (EDK2: a GUID) is not options: the config file is used, comments dropped. */
static void test_binary_options_then_config(void **state)
{
	(void)state;
	static const uint8_t guid[16] = { 0x2d, 0xe9, 0x38, 0x1d, 0x3a, 0x91, 0x0e, 0x4c, 0x92, 0xfa, 1, 2, 3, 4, 5, 6 };
	li.LoadOptions = (void *)guid;
	li.LoadOptionsSize = sizeof(guid);
	cfg_text = "# vhdboot.cfg\nvhd=/images/a.vhd   # the image\r\nmode=ro\ttimeout=3\n";
	struct cmdline c;
	char loader[128];
	eopts_read(&c, loader, sizeof(loader));
	assert_non_null(strstr(kstubs_log, "16 bytes of binary data"));
	assert_int_equal(c.errors, 0);
	assert_int_equal(c.nvhd, 1);
	assert_string_equal(c.vhd[0].path, "/images/a.vhd");
	assert_int_equal(c.mode, CMDLINE_MODE_RO);
	assert_int_equal(c.timeout, 3);
	li.LoadOptionsSize = 15;  /* an odd size is binary too */
	kstubs_log_reset();
	eopts_read(&c, loader, sizeof(loader));
	assert_non_null(strstr(kstubs_log, "15 bytes of binary data"));
	assert_int_equal(c.nvhd, 1);
}

/* The shell's command line: the program's path is skipped, loader= is taken out (with / turned into \), the rest parsed; no config file read. */
static void test_shell_command_line(void **state)
{
	(void)state;
	set_text_options("fs0:\\vhdboot.efi vhd=/images/x.vhd loader=/EFI/alt/grubx64.efi trace");
	cfg_text = "mode=snapshot\n";
	struct cmdline c;
	char loader[128];
	eopts_read(&c, loader, sizeof(loader));
	assert_string_equal(loader, "\\EFI\\alt\\grubx64.efi");
	assert_int_equal(c.errors, 0);
	assert_int_equal(c.nvhd, 1);
	assert_int_equal(c.trace, 1);
	assert_int_equal(c.mode, CMDLINE_MODE_RW);
	assert_int_equal(opens, 0);
	assert_null(strstr(c.raw, "loader="));
}

/* Options that are only our own file name (a boot entry or the shell without arguments): the config file counts. */
static void test_name_only_reads_config(void **state)
{
	(void)state;
	set_text_options("vhdboot.efi");
	cfg_text = "vhd=hd1";
	struct cmdline c;
	char loader[128];
	eopts_read(&c, loader, sizeof(loader));
	assert_int_equal(c.nvhd, 1);
	assert_string_equal(c.vhd[0].disk, "hd1");
}

/* The config file is looked for in vhdboot.efi's own folder; no file system on our volume is said, not fatal. */
static void test_config_beside_the_program(void **state)
{
	(void)state;
	set_file_path("\\tools\\boot\\vhdboot.efi");
	strcpy(cfg_path, "\\tools\\boot\\vhdboot.cfg");
	cfg_text = "mode=ro";
	struct cmdline c;
	char loader[128];
	eopts_read(&c, loader, sizeof(loader));
	assert_string_equal(opened, "\\tools\\boot\\vhdboot.cfg");
	assert_int_equal(c.mode, CMDLINE_MODE_RO);
	sfs_present = 0;
	kstubs_log_reset();
	eopts_read(&c, loader, sizeof(loader));
	assert_int_equal(c.mode, CMDLINE_MODE_RW);
	assert_non_null(strstr(kstubs_log, "no file system the firmware reads"));
}

/* Non-text bytes in the config file become '?' (reported as a word not understood), never a crash. */
static void test_config_with_junk(void **state)
{
	(void)state;
	cfg_text = "vhd=/a.vhd \x01\xff junk\n";
	struct cmdline c;
	char loader[128];
	eopts_read(&c, loader, sizeof(loader));
	assert_int_equal(c.nvhd, 1);
	assert_true(c.errors >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_nothing_given, setup),
		cmocka_unit_test_setup(test_binary_options_then_config, setup),
		cmocka_unit_test_setup(test_shell_command_line, setup),
		cmocka_unit_test_setup(test_name_only_reads_config, setup),
		cmocka_unit_test_setup(test_config_beside_the_program, setup),
		cmocka_unit_test_setup(test_config_with_junk, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
