/* main.c: the boot sequence: console, command line, memory map, ATA, VHD, relocation, hooks, chainload of the VHD's MBR. */
#include <stdint.h>
#include "console.h"
#include "string.h"
#include "io.h"
#include "phys.h"
#include "cmdline.h"
#include "mem.h"
#include "resident.h"
#include "int13.h"
#include "int15.h"
#include "tsc.h"
#include "vhdblk.h"
#include "../drivers/ata.h"
#include "../vhd/vhd.h"
#include "../boot/realmode.h"

#define MB_BOOT_MAGIC 0x2BADB002u
#define MB_INFO_CMDLINE 0x4u
#define MBR_LINEAR 0x7C00u
#define DAP_LINEAR 0x7000u        /* scratch for the chainload's AH=42h packet, below the MBR stack */
#define HEAP_SLACK 0x4000u        /* resident heap beyond the BAT */

extern uint8_t __image_end[], __bss_start[], __bss_end[], __load_end[];

static struct cmdline boot_cmd;
static struct ata_disk boot_disks[ATA_MAX_DISKS];
static struct vhd boot_vhd;
static struct vhdblk boot_vblk;
static uint32_t boot_tsc_per_ms;

/* Print problem and remedy on both consoles, undo any hooks, then INT 18h (next boot device); never returns. */
static void __attribute__((noreturn)) boot_fail(const char *problem, const char *remedy)
{
	con_set_targets(CON_SERIAL | CON_VGA);
	con_printf("\nvhdboot: ERROR: %s\n", problem);
	con_printf("vhdboot: remedy: %s\n", remedy);
	con_printf("vhdboot: nothing was written to any disk; handing back to the BIOS (INT 18h: next boot device)\n");
	if (resident.low_kb)
		resident_uninstall();
	struct rm_regs r;
	memset(&r, 0, sizeof(r));
	rm_call(0x18, &r);
	con_printf("vhdboot: the BIOS returned from INT 18h; system halted\n");
	rm_halt();
}

/* Serial trace of one guest INT 13h call (cmdline "trace"). */
static void boot_trace(const struct rm_regs *in, const struct rm_regs *out)
{
	con_printf("int13 ax=%04x bx=%04x cx=%04x dx=%04x es=%04x si=%04x -> ax=%04x cf=%u\n",
		   (unsigned)(in->eax & 0xFFFF), (unsigned)(in->ebx & 0xFFFF),
		   (unsigned)(in->ecx & 0xFFFF), (unsigned)(in->edx & 0xFFFF), in->es,
		   (unsigned)(in->esi & 0xFFFF), (unsigned)(out->eax & 0xFFFF),
		   out->flags & RM_FLAG_CF);
}

/* Does sector lba of d start with the VHD footer cookie? */
static int boot_cookie_at(struct ata_disk *d, uint64_t lba)
{
	static uint8_t sec[BLK_SECTOR];
	if (d->blk.read(&d->blk, lba, 1, sec) != BLK_OK)
		return 0;
	return !memcmp(sec, VHD_FOOTER_COOKIE, 8);
}

/* The disk to use (command line, else the first with a footer at its end, else one with a copy at 0); NULL if none. */
static struct ata_disk *boot_pick_disk(int n)
{
	if (boot_cmd.disk != CMDLINE_DISK_AUTO) {
		for (int i = 0; i < n; i++)
			if (boot_disks[i].channel * 2 + boot_disks[i].slave == boot_cmd.disk)
				return &boot_disks[i];
		static char msg[80];
		static const char *const names[4] = { "pm", "ps", "sm", "ss" };
		k_snprintf(msg, sizeof(msg), "vhd=%s names no ATA hard disk (see the ata lines above)",
			   names[boot_cmd.disk]);
		boot_fail(msg, "fix the vhd= option, or drop it to pick the first disk holding a VHD");
	}
	for (int i = 0; i < n; i++)
		if (boot_disks[i].sectors && boot_cookie_at(&boot_disks[i], boot_disks[i].sectors - 1))
			return &boot_disks[i];
	/* A dynamic VHD whose end footer is damaged still has the copy at 0: open it to explain. */
	for (int i = 0; i < n; i++)
		if (boot_cookie_at(&boot_disks[i], 0))
			return &boot_disks[i];
	return NULL;
}

/* VHD type name. */
static const char *boot_type_name(uint32_t t)
{
	return t == VHD_TYPE_FIXED ? "fixed" : t == VHD_TYPE_DYNAMIC ? "dynamic" :
	       t == VHD_TYPE_DIFF ? "differencing" : "unknown";
}

/* Read the guest MBR to 0:7C00 through INT 13h AH=42h (our own hook, as the guest will) and check 55AAh. */
static void boot_read_mbr(void)
{
	uint8_t *dap = phys_ptr(DAP_LINEAR);
	memset(dap, 0, 16);
	dap[0] = 0x10;
	dap[2] = 1;                                  /* one sector */
	dap[4] = (uint8_t)MBR_LINEAR;                /* offset 7C00h, segment 0 */
	dap[5] = (uint8_t)(MBR_LINEAR >> 8);
	memset(phys_ptr(MBR_LINEAR), 0, BLK_SECTOR);
	struct rm_regs r;
	memset(&r, 0, sizeof(r));
	r.eax = 0x4200;
	r.edx = 0x80;
	r.esi = DAP_LINEAR;
	con_printf("boot: reading the guest MBR: INT 13h AH=42h DL=80h LBA 0 -> 0000:7C00 (real mode, through the hook)\n");
	rm_call(0x13, &r);
	if (r.flags & RM_FLAG_CF) {
		static char msg[96];
		k_snprintf(msg, sizeof(msg), "reading the VHD's sector 0 through INT 13h failed (AH=%02xh)",
			   RM_AH(&r));
		boot_fail(msg, "check the ata/vhd messages above; run `vhdtool check` on the image");
	}
	const uint8_t *mbr = phys_ptr(MBR_LINEAR);
	if (mbr[510] != 0x55 || mbr[511] != 0xAA)
		boot_fail("the VHD's sector 0 has no boot signature (55AAh): the virtual disk holds no MBR",
			  "install a boot loader into the VHD (e.g. from a VM), or pick another disk with vhd=");
	con_printf("boot: MBR ok (signature 55AAh)\n");
}

void kmain(uint32_t magic, uint32_t mbi_phys)
{
	con_init();
	con_printf("\nvhdboot: BIOS VHD boot firmware; loaded at %08x, image %u KiB\n",
		   kernel_base, (unsigned)((uint32_t)(uintptr_t)__image_end >> 10));
	if (magic != MB_BOOT_MAGIC)
		boot_fail("not started by a multiboot loader (bad magic in EAX)",
			  "load vhdboot.elf with GRUB's `multiboot` command");
	uint32_t mb_flags = *(volatile uint32_t *)phys_ptr(mbi_phys);
	cmdline_parse(&boot_cmd, (mb_flags & MB_INFO_CMDLINE) ? *(volatile uint32_t *)phys_ptr(mbi_phys + 16) : 0);
	con_printf("cmdline: \"%s\"\n", boot_cmd.raw);
	if (boot_cmd.errors)
		con_printf("cmdline: WARNING: %d word(s) not understood, first \"%s\" (options: vhd=auto|pm|ps|sm|ss|hd0..hd3, trace)\n",
			   boot_cmd.errors, boot_cmd.bad);

	if (!mem_init(mbi_phys))
		boot_fail("the boot loader passed no memory map", "boot vhdboot with GRUB 2 (multiboot)");
	con_printf("memory map (from the BIOS via GRUB): %u MiB usable below 4 GiB\n",
		   (unsigned)(mem_usable_below_4g() >> 20));
	mem_log();
	boot_tsc_per_ms = tsc_calibrate();

	int n = ata_probe(boot_disks, ATA_MAX_DISKS);
	con_printf("ata: %d hard disk(s)\n", n);
	struct ata_disk *disk = boot_pick_disk(n);
	if (!disk)
		boot_fail("no VHD found: no ATA hard disk ends with a VHD footer (\"conectix\")",
			  "attach the .vhd file itself as an IDE disk (raw, not converted), or name the disk with vhd=pm|ps|sm|ss");
	con_printf("vhd: using ATA %s (%s), %llu sectors\n", disk->label, disk->model,
		   (unsigned long long)disk->sectors);

	int err = vhd_open(&boot_vhd, &disk->blk, VHD_OPEN_RDONLY);
	if (err) {
		static char msg[160];
		k_snprintf(msg, sizeof(msg), "the VHD on %s cannot be opened: %s (%s)",
			   disk->label, vhd_strerror(err), vhd_errname(err));
		boot_fail(msg, "repair or recreate the image on another machine (`vhdtool check` explains the defect)");
	}
	struct vhd *v = &boot_vhd;
	if (v->footer.type == VHD_TYPE_DIFF)
		boot_fail("the VHD is a differencing image: its parent is a file, and a bare disk has no file system to find it in",
			  "merge the chain into one image (`vhdtool convert`) and attach that");
	if (v->state & VHD_ST_BACKUP_FOOTER)
		con_printf("vhd: WARNING: end footer damaged (%s); using the copy at offset 0\n",
			   vhd_strerror(v->end_footer_err));
	con_printf("vhd: %s, %llu MiB (%llu sectors), footer CHS %u/%u/%u, creator \"%s\"\n",
		   boot_type_name(v->footer.type), (unsigned long long)(v->sectors >> 11),
		   (unsigned long long)v->sectors, v->footer.cylinders, v->footer.heads,
		   v->footer.spt, v->footer.creator_app);
	uint32_t bat_bytes = (uint32_t)vhd_bat_bytes(v);
	if (v->footer.type == VHD_TYPE_DYNAMIC)
		con_printf("vhd: block size %u KiB, %u blocks, BAT %u bytes\n",
			   v->block_size >> 10, v->blocks, bat_bytes);

	/* The resident region: the whole kernel image (code, data, bss, stacks) plus the heap. */
	uint32_t image = (uint32_t)(uintptr_t)__image_end;
	uint32_t size = (image + ((bat_bytes + 0xFFFu) & ~0xFFFu) + HEAP_SLACK + MEM_RESIDENT_ALIGN - 1) &
			~(MEM_RESIDENT_ALIGN - 1);
	uint32_t old_base = kernel_base;
	uint32_t res = mem_choose_resident(size, old_base, old_base + image);
	if (!res)
		boot_fail("no room for the resident handler at the top of RAM below 4 GiB",
			  "give the machine more memory");
	rm_relocate(res);
	con_printf("resident: kernel moved %08x -> %08x, region %u KiB (image %u KiB: code+data %u KiB, bss+stacks %u KiB)\n",
		   old_base, kernel_base, size >> 10, image >> 10,
		   (unsigned)((uint32_t)(uintptr_t)__load_end >> 10),
		   (unsigned)(((uint32_t)(uintptr_t)__bss_end - (uint32_t)(uintptr_t)__bss_start) >> 10));
	mem_heap_init(size);

	if (bat_bytes) {
		uint32_t *bat = mem_alloc(bat_bytes, 4096);
		if (!bat)
			boot_fail("resident heap too small for the BAT (internal error)", "report this as a bug");
		err = vhd_load_bat(v, bat);
		if (!err) {
			uint32_t *scratch = mem_temp(bat_bytes, old_base + image);
			if (scratch)
				err = vhd_check_overlaps(v, scratch);
			else
				con_printf("vhd: WARNING: no temporary memory for the overlap check; skipped\n");
		}
		if (err) {
			static char msg[160];
			k_snprintf(msg, sizeof(msg), "the VHD's block table is damaged: %s (%s)",
				   vhd_strerror(err), vhd_errname(err));
			boot_fail(msg, "repair the image on another machine (`vhdtool check`), or restore it from a backup");
		}
	}

	struct blk_dev *vdev = vhdblk_init(&boot_vblk, v, "vhd0");
	int13_init(resident_bios_hd());
	int drive = int13_add_drive(vdev, 1);
	if (drive < 0)
		boot_fail("the INT 13h layer refused the VHD (internal error)", "report this as a bug");
	struct int13_drive *d = int13_get_drive((uint8_t)drive);
	con_printf("int13: drive %02xh = VHD, read-only, %llu sectors, BIOS geometry %u/%u/%u; BIOS hard disks %u shift up\n",
		   drive, (unsigned long long)d->sectors, d->cylinders, d->heads, d->spt,
		   resident_bios_hd());
	if (boot_cmd.trace)
		int13_trace_hook = boot_trace;

	if (resident_install(1))
		boot_fail("the real-mode stub does not fit in conventional memory (40:13 looks wrong)",
			  "report this as a bug, with the BIOS model");
	int15_init(mem_res_base, mem_res_size, resident.stub_linear,
		   (uint32_t)resident.old_base_kb * 1024u);
	con_printf("resident: low stub %u bytes at %04x:0000, conventional memory %u -> %u KiB (%u KiB taken)\n",
		   resident.stub_bytes, resident.stub_linear >> 4, resident.old_base_kb,
		   resident.new_base_kb, resident.low_kb);
	con_printf("resident: high memory reserved %u KiB at %08x-%08x (heap used %u bytes), hidden from INT 15h E820/E801/88h\n",
		   mem_res_size >> 10, mem_res_base, mem_res_base + mem_res_size - 1, mem_heap_used());
	con_printf("resident: hooked INT 13h/15h/18h/19h (old 13h %04x:%04x); extended memory now %u KiB\n",
		   resident.orig13 >> 16, resident.orig13 & 0xFFFF, int15_ext_kb());
	int15_log();

	boot_read_mbr();
	uint64_t now = rdtsc();
	con_printf("boot: %u ms from kernel entry to the guest jump (TSC %u kHz)\n",
		   tsc_ms(boot_tsc, now, boot_tsc_per_ms), boot_tsc_per_ms);
	con_printf("boot: jumping to the guest MBR at 0000:7C00 with DL=80h; further vhdboot messages on COM1 only\n");
	con_set_targets(CON_SERIAL);
	rm_boot(0x80);
}
