/* fuzz_cmdline.c: libFuzzer target: kernel/cmdline.c over any command line GRUB (or a user at its prompt) may pass. */
#include <stdint.h>
#include <string.h>
#include "fuzz_common.h"
#include "../../kernel/cmdline.h"

uint32_t kernel_base;               /* cmdline_parse(phys) is not called: only the parser over c.raw */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cmdline c;
	memset(&c, 0x5A, sizeof(c));       /* cmdline_parse_raw must set every field it reports */
	size_t n = size < CMDLINE_MAX - 1 ? size : CMDLINE_MAX - 1;
	memcpy(c.raw, data, n);
	c.raw[n] = 0;
	cmdline_parse_raw(&c);
	fuzz_str_ok(c.raw, sizeof(c.raw));
	fuzz_str_ok(c.bad, sizeof(c.bad));
	if (c.nvhd < 0 || c.nvhd > CMDLINE_MAX_VHDS || c.errors < 0 || c.timeout < 0)
		__builtin_trap();
	if (c.mode != CMDLINE_MODE_RW && c.mode != CMDLINE_MODE_RO && c.mode != CMDLINE_MODE_SNAPSHOT)
		__builtin_trap();
	if (c.trace != 0 && c.trace != 1)
		__builtin_trap();
	if (c.errors && !c.bad[0])
		__builtin_trap();              /* an error is named */
	for (int i = 0; i < c.nvhd; i++) {
		const struct cmdline_vhd *v = &c.vhd[i];
		fuzz_str_ok(v->text, sizeof(v->text));
		fuzz_str_ok(v->disk, sizeof(v->disk));
		fuzz_str_ok(v->path, sizeof(v->path));
		if (v->kind < CMDLINE_VHD_DISK || v->kind > CMDLINE_VHD_MODULE)
			__builtin_trap();
		if ((v->kind == CMDLINE_VHD_FILE || v->kind == CMDLINE_VHD_PATH) && !v->path[0])
			__builtin_trap();      /* a file item names a path */
		if (v->kind == CMDLINE_VHD_MODULE && v->module < 0)
			__builtin_trap();
	}
	return 0;
}
