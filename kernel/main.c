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
#include "trace.h"
#include "int15.h"
#include "tsc.h"
#include "overlay.h"
#include "select.h"
#include "guestmem.h"
#include "mbinfo.h"
#include "handover.h"
#include "kerr.h"
#include "../drivers/driver.h"
#include "../block/disk.h"
#include "../image/image.h"
#include "../boot/realmode.h"

#define MB_BOOT_MAGIC 0x2BADB002u
#define MB_INFO_CMDLINE 0x4u
#define MBR_LINEAR 0x7C00u
#define DAP_LINEAR 0x7000u        /* scratch for the chainload's AH=42h packet, below the MBR stack */
#define HEAP_SLACK 0x4000u        /* resident heap beyond the BAT */

extern uint8_t __image_end[], __bss_start[], __bss_end[], __load_end[];

static struct cmdline boot_cmd;
static struct drv_boot_info boot_info;
static struct img_blk boot_vblk[SEL_MAX_IMAGES];
static struct overlay boot_overlay[SEL_MAX_IMAGES];
static uint32_t boot_tsc_per_ms;

/* Print problem and remedy on both consoles, undo any hooks, then INT 18h (next boot device); never returns. */
void __attribute__((noreturn)) boot_fail(const char *problem, const char *remedy)
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

/* Log the write mode (mode=) and what it means for this image (read_only: it was opened read-only). */
static void boot_log_mode(int read_only)
{
	if (boot_cmd.mode == CMDLINE_MODE_RO)
		con_printf("vhd: mode=ro: guest writes are refused with status 03h (write protected); nothing is written\n");
	else if (boot_cmd.mode == CMDLINE_MODE_SNAPSHOT)
		con_printf("vhd: mode=snapshot: guest writes stay in RAM and are lost at reset; the image is never written\n");
	else if (read_only)
		con_printf("vhd: mode=rw, but the image is read-only (see above): guest writes answer 03h\n");
	else
		con_printf("vhd: mode=rw: guest writes go to the image; each INT 13h write returns after its data and metadata are flushed (ATA, AHCI: FLUSH CACHE (EXT); NVMe: FLUSH; a BIOS disk: once the BIOS's write call returned, INT 13h has no flush)\n");
}

/* Sectors for the snapshot overlay: snapshot=SIZE, else a quarter of usable RAM, at most 256 MiB. */
static uint32_t boot_snapshot_capacity(void)
{
	uint64_t bytes = boot_cmd.snapshot_bytes;
	if (!bytes) {
		bytes = mem_usable_below_4g() / 4;
		if (bytes > (256u << 20))
			bytes = 256u << 20;
	}
	uint32_t cap = overlay_capacity_for(bytes);
	return cap ? cap : 1;
}

/* overlay on_full hook: one COM1 line per refused write. */
static void boot_overlay_full(struct overlay *o, uint64_t lba, uint32_t count, uint32_t missing)
{
	con_printf("snapshot: overlay full (%u of %u sectors used): write LBA %llu count %u refused with status CCh (needs %u more sectors); boot with a larger snapshot=SIZE\n",
		   o->used, o->capacity, (unsigned long long)lba, count, missing);
}

/* Serve chosen image i as drive 80h+i: the format's as_blk, the snapshot overlay (a share of snap_cap), int13. */
static void boot_add_image(int i, int nimg, uint32_t snap_cap)
{
	struct sel_image *si = sel_image(i);
	struct img_info in;
	static char vname[SEL_MAX_IMAGES][24];
	k_snprintf(vname[i], sizeof(vname[i]), "vhd%d", i);
	si->fmt->info(si->leaf, &in);
	if (!si->ram)
		boot_log_mode(in.read_only);
	struct blk_dev *vdev = si->fmt->as_blk(&boot_vblk[i], si->leaf, si->place, vname[i]);
	int read_only = !si->ram && (boot_cmd.mode == CMDLINE_MODE_RO || in.read_only);
	if (boot_cmd.mode == CMDLINE_MODE_SNAPSHOT) {
		uint32_t cap = snap_cap / (uint32_t)nimg;
		void *mem = mem_alloc((uint32_t)overlay_bytes(cap), 4096);
		vdev = mem ? overlay_init(&boot_overlay[i], vdev, mem, cap, "snapshot") : 0;
		if (!vdev)
			boot_fail("no memory for the snapshot overlay (internal error)", "boot with a smaller snapshot=SIZE");
		boot_overlay[i].on_full = boot_overlay_full;
		handover_set_overlay(i, virt_to_phys(mem), (uint32_t)overlay_bytes(cap));
		read_only = 0;
		con_printf("snapshot: %u MiB of RAM (%u sectors) for guest writes, reserved with the resident region\n",
			   cap >> 11, cap);
	}
	int drive = int13_add_drive(vdev, read_only);
	if (drive < 0)
		boot_fail("the INT 13h layer refused the VHD (internal error)", "report this as a bug");
	struct int13_drive *d = int13_get_drive((uint8_t)drive);
	con_printf("int13: drive %02xh = VHD, %s, %llu sectors, BIOS geometry %u/%u/%u; BIOS hard disks %u shift up\n",
		   drive, read_only ? "read-only" : boot_cmd.mode == CMDLINE_MODE_SNAPSHOT ? "writes to RAM" : "read-write",
		   (unsigned long long)d->sectors, d->cylinders, d->heads, d->spt,
		   resident_bios_hd());
}

/* One line per registered disk: its name, driver, place, size and model. */
static void boot_log_disks(void)
{
	for (int i = 0; i < disk_count(); i++) {
		const struct disk *d = disk_get(i);
		con_printf("disk: %s = %s %s, %llu sectors (%llu MiB), \"%s\"\n", d->label, d->driver, d->where,
			   (unsigned long long)d->blk->sectors, (unsigned long long)(d->blk->sectors >> 11), d->model);
	}
}

/* One line per registered disk: what the boot read from it so far (blk_read's counts: the scan, the open, the MBR). */
static void boot_log_reads(void)
{
	for (int i = 0; i < disk_count(); i++) {
		const struct disk *d = disk_get(i);
		con_printf("boot: %s: %llu sectors read in %llu requests before the guest jump (disk %llu sectors)\n",
			   d->label, (unsigned long long)d->blk->read_sectors, (unsigned long long)d->blk->read_reqs,
			   (unsigned long long)d->blk->sectors);
	}
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
		con_printf("cmdline: WARNING: %d word(s) not understood, first \"%s\" (options: vhd=auto|hdN[,P][:/path]|pm|ps|sm|ss|/path|moduleN, trace, mode=rw|ro|snapshot, snapshot=SIZE, grow=yes|no, disk=auto|bios|native|pio, nohandover)\n",
			   boot_cmd.errors, boot_cmd.bad);

	if (!mem_init(mbi_phys))
		boot_fail("the boot loader passed no memory map", "boot vhdboot with GRUB 2 (multiboot)");
	con_printf("memory map (from the BIOS via GRUB): %u MiB usable below 4 GiB\n",
		   (unsigned)(mem_usable_below_4g() >> 20));
	mem_log();
	boot_tsc_per_ms = tsc_calibrate();
	struct kerr err;
	boot_info.tsc_per_ms = boot_tsc_per_ms;
	boot_info.disk_mode = boot_cmd.disk_mode;
	if (mbinfo_modules(mbi_phys, &boot_info, &err))
		boot_fail(err.why, err.remedy);

	/* Every driver of the table (drivers/driver.h) registers the disks it finds (block/disk.h). */
	drv_probe_all(&boot_info);
	boot_log_disks();
	/* Which images (kernel/select.c): vhd=, else GRUB modules, else a scan of every disk and a menu. */
	if (sel_choose(&boot_cmd, boot_tsc_per_ms, &err))
		boot_fail(err.why, err.remedy);
	/* The resident region: the whole kernel image (code, data, bss, stacks) plus the heap. */
	uint32_t image = (uint32_t)(uintptr_t)__image_end;
	uint32_t snap_cap = boot_cmd.mode == CMDLINE_MODE_SNAPSHOT ? boot_snapshot_capacity() : 0;
	uint32_t size, res;
	uint32_t old_base = kernel_base;
	/* Avoid the loaded kernel and the scan's memory just above it (sel_scratch_end). */
	uint32_t avoid_hi = sel_scratch_end() > old_base + image ? sel_scratch_end() : old_base + image;
	for (;;) {
		uint32_t ovl = (uint32_t)((overlay_bytes(snap_cap) + 0xFFFu) & ~0xFFFull);
		size = (image + sel_resident_bytes() + ovl + HEAP_SLACK + MEM_RESIDENT_ALIGN - 1) &
		       ~(MEM_RESIDENT_ALIGN - 1);
		res = mem_choose_resident(size, old_base, avoid_hi);
		if (res || snap_cap <= 2048)
			break;
		snap_cap /= 2;            /* the snapshot does not fit: halve it and say so below */
		con_printf("snapshot: not enough free RAM; trying %u MiB\n", snap_cap >> 11);
	}
	if (!res)
		boot_fail("no room for the resident handler at the top of RAM below 4 GiB",
			  "give the machine more memory");
	rm_relocate(res);
	drv_relocated();
	con_printf("resident: kernel moved %08x -> %08x, region %u KiB (image %u KiB: code+data %u KiB, bss+stacks %u KiB)\n",
		   old_base, kernel_base, size >> 10, image >> 10,
		   (unsigned)((uint32_t)(uintptr_t)__load_end >> 10),
		   (unsigned)(((uint32_t)(uintptr_t)__bss_end - (uint32_t)(uintptr_t)__bss_start) >> 10));
	mem_heap_init(size);

	/* mode=rw opens the images writable; ro and snapshot never write them (parents: never). */
	int nimg = sel_open(boot_cmd.mode == CMDLINE_MODE_RW ? 0 : IMG_OPEN_RDONLY, avoid_hi, &err);
	if (nimg < 0)
		boot_fail(err.why, err.remedy);
	int13_init(resident_bios_hd());
	for (int i = 0; i < nimg; i++)
		boot_add_image(i, nimg, snap_cap);
	if (boot_cmd.trace)
		trace_enable();

	/* A disk served by the BIOS is called from the resident handler: reserve its real-mode stack and bounce buffer. */
	int bios_calls = 0;
	for (int i = 0; i < disk_count(); i++)
		if (disk_get(i)->flags & DISK_RMCALL)
			bios_calls = 1;
	/* The hand-over table for an OS (kernel/handover.c, docs/handover.md): in reserved low memory below the stub. */
	uint32_t ho_bytes = boot_cmd.no_handover ? 0 : handover_build(nimg, boot_cmd.mode);
	if (boot_cmd.no_handover)
		con_printf("handover: nohandover: no table for the OS (an OS cannot find the image again)\n");
	if (resident_install((uint8_t)nimg, bios_calls, ho_bytes))
		boot_fail("the real-mode stub does not fit in conventional memory (40:13 looks wrong)",
			  "report this as a bug, with the BIOS model");
	uint32_t low_lo = (uint32_t)resident.new_base_kb * 1024u;
	handover_place(resident.table_linear, low_lo, resident.low_kb * 1024u);
	/* From here on the guest's buffers must never reach our memory (kernel/guestmem.c). */
	guestmem_forbid(low_lo, resident.low_kb * 1024u, "vhdboot's low stub and hand-over table");
	guestmem_forbid(mem_res_base, mem_res_size, "vhdboot's resident region");
	int15_init(mem_res_base, mem_res_size, low_lo, (uint32_t)resident.old_base_kb * 1024u);
	con_printf("resident: low stub %u bytes at %04x:0000, conventional memory %u -> %u KiB (%u KiB taken)\n",
		   resident.stub_bytes, resident.stub_linear >> 4, resident.old_base_kb,
		   resident.new_base_kb, resident.low_kb);
	if (resident.bounce_bytes)
		con_printf("resident: BIOS calls from the handler: real-mode stack %u bytes, bounce buffer %u bytes at %05x\n",
			   resident.stack_top - ((resident.stub_bytes + 15u) & ~15u), resident.bounce_bytes,
			   resident.bounce_linear);
	con_printf("resident: high memory reserved %u KiB at %08x-%08x (heap used %u bytes), hidden from INT 15h E820/E801/88h\n",
		   mem_res_size >> 10, mem_res_base, mem_res_base + mem_res_size - 1, mem_heap_used());
	con_printf("resident: hooked INT 13h/15h/18h/19h (old 13h %04x:%04x); extended memory now %u KiB\n",
		   resident.orig13 >> 16, resident.orig13 & 0xFFFF, int15_ext_kb());
	int15_log();
	resident_fast_setup();

	boot_read_mbr();
	uint64_t now = rdtsc();
	con_printf("boot: %u ms from kernel entry to the guest jump (TSC %u kHz)\n",
		   tsc_ms(boot_tsc, now, boot_tsc_per_ms), boot_tsc_per_ms);
	boot_log_reads();
	trace_summary("at the guest jump");
	resident_checksum_log();
	con_printf("boot: jumping to the guest MBR at 0000:7C00 with DL=80h; further vhdboot messages on COM1 only\n");
	con_set_targets(CON_SERIAL);
	rm_boot(0x80);
}
