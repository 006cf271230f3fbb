/* main.c: the UEFI front end's boot sequence: console, options, the firmware's disks, the kernel's selection, the image served as Block I/O, its own EFI loader started. */
#include "efi.h"
#include "../kernel/console.h"
#include "../kernel/io.h"         /* rdtsc */
#include "../kernel/string.h"
#include "../kernel/select.h"
#include "../kernel/overlay.h"
#include "../block/disk.h"
#include "../image/image.h"
#include "../kernel/handover.h" /* HO_EFI_VAR_NAME */

#define EFI_SNAPSHOT_DEFAULT (64ull << 20) /* mode=snapshot without snapshot=SIZE: RAM for the guest's writes */

EFI_HANDLE efi_image;
EFI_SYSTEM_TABLE *efi_st;
EFI_BOOT_SERVICES *efi_bs;
uint64_t efi_tsc_start;
EFI_GUID efi_guid_blockio = EFI_BLOCK_IO_PROTOCOL_GUID;
EFI_GUID efi_guid_devpath = EFI_DEVICE_PATH_PROTOCOL_GUID;
EFI_GUID efi_guid_loaded_image = EFI_LOADED_IMAGE_PROTOCOL_GUID;
EFI_GUID efi_guid_sfs = EFI_SIMPLE_FILE_SYSTEM_PROTOCOL_GUID;
EFI_GUID efi_guid_textout = EFI_SIMPLE_TEXT_OUTPUT_PROTOCOL_GUID;
EFI_GUID efi_guid_file_info = EFI_FILE_INFO_ID;

static struct cmdline boot_cmd;
static char boot_loader[128];
static struct img_blk boot_vblk[SEL_MAX_IMAGES];
static struct overlay boot_overlay[SEL_MAX_IMAGES];
static struct esrv *boot_srv[SEL_MAX_IMAGES];
static char boot_names[SEL_MAX_IMAGES][24];

/* Take back every served disk, then return status to the firmware (its boot manager goes on); never returns while a disk is still in use. */
static EFI_STATUS boot_return(EFI_STATUS status)
{
	eho_withdraw();
	for (int i = SEL_MAX_IMAGES - 1; i >= 0; i--)
		if (boot_srv[i] && esrv_uninstall(boot_srv[i])) {
			/* Our code would be freed under a disk the firmware still uses: never return then. */
			con_printf("vhdboot: cannot return to the firmware safely; press a key to reset the machine\n");
			while (econ_key(1000) < 0)
				;
			efi_st->RuntimeServices->ResetSystem(EfiResetCold, EFI_SUCCESS, 0, NULL);
		}
	con_printf("vhdboot: returning to the firmware (status %llx; its boot manager tries the next boot option)\n",
		   (unsigned long long)status);
	efi_bs->Stall(2000000);   /* 2 s to read the screen */
	return status;
}

/* Print problem and remedy on the console, then boot_return(status). */
static EFI_STATUS boot_fail(const char *problem, const char *remedy, EFI_STATUS status)
{
	con_printf("\nvhdboot: ERROR: %s\n", problem);
	con_printf("vhdboot: remedy: %s\n", remedy);
	return boot_return(status);
}

/* Log the write mode and what it means here. */
static void boot_log_mode(int read_only)
{
	if (boot_cmd.mode == CMDLINE_MODE_RO)
		con_printf("vhd: mode=ro: the disk is read-only (Media.ReadOnly): WriteBlocks answers EFI_WRITE_PROTECTED; nothing is written\n");
	else if (boot_cmd.mode == CMDLINE_MODE_SNAPSHOT)
		con_printf("vhd: mode=snapshot: writes stay in RAM and are lost at reset (and once the OS takes over); the image is never written\n");
	else if (read_only)
		con_printf("vhd: mode=rw, but the image is read-only (see above): WriteBlocks answers EFI_WRITE_PROTECTED\n");
	else
		con_printf("vhd: mode=rw: writes go to the image; each WriteBlocks returns after the data and metadata were written and the host disk's FlushBlocks returned\n");
}

/* Serve chosen image i: the format's as_blk, the snapshot overlay, a Block I/O handle. */
static EFI_STATUS boot_serve(int i, int nimg)
{
	struct sel_image *si = sel_image(i);
	struct img_info in;
	k_snprintf(boot_names[i], sizeof(boot_names[i]), "vhd%d", i);
	si->fmt->info(si->leaf, &in);
	boot_log_mode(in.read_only);
	struct blk_dev *vdev = si->fmt->as_blk(&boot_vblk[i], si->leaf, si->place, boot_names[i]);
	int ro = boot_cmd.mode == CMDLINE_MODE_RO || in.read_only;
	if (boot_cmd.mode == CMDLINE_MODE_SNAPSHOT) {
		uint64_t bytes = (boot_cmd.snapshot_bytes ? boot_cmd.snapshot_bytes : EFI_SNAPSHOT_DEFAULT) / (uint64_t)nimg;
		uint32_t cap = overlay_capacity_for(bytes);
		/*
		 * Reserved pages below 4 GiB, not pool: Linux keeps EfiReservedMemoryType
		 * out of its allocator (and lets /dev/mem read it), so vhdboot-attach can
		 * carry the boot loader's writes over after ExitBootServices, as on BIOS.
		 */
		EFI_PHYSICAL_ADDRESS a = 0xFFFFFFFFull;
		uint64_t ob = cap ? overlay_bytes(cap) : 0;
		void *mem = NULL;
		if (ob && efi_bs->AllocatePages(AllocateMaxAddress, EfiReservedMemoryType, (UINTN)((ob + 4095) / 4096), &a) ==
				  EFI_SUCCESS)
			mem = (void *)(uintptr_t)a;
		vdev = mem ? overlay_init(&boot_overlay[i], vdev, mem, cap, "snapshot") : NULL;
		if (!vdev)
			return boot_fail("no memory for the snapshot overlay", "boot with a smaller snapshot=SIZE", EFI_OUT_OF_RESOURCES);
		handover_set_overlay(i, (uint32_t)a, (uint32_t)ob);
		ro = 0;
		con_printf("snapshot: %u MiB of RAM (%u sectors) for writes, reserved memory at %08x (the OS keeps it; "
			   "vhdboot-attach carries the writes over)\n", cap >> 11, cap, (uint32_t)a);
	}
	boot_srv[i] = esrv_install(i, vdev, ro, boot_cmd.trace, boot_names[i]);
	if (!boot_srv[i])
		return boot_fail("the firmware refused the new Block I/O handle", "report this as a bug, with the firmware's name",
				 EFI_DEVICE_ERROR);
	/* A writable image file may grow on its host volume: the firmware's drivers there must then drop their caches. */
	const struct disk *host = disk_get(si->cand->disk);
	if (!ro && boot_cmd.mode == CMDLINE_MODE_RW && si->cand->kind == SEL_FILE && host)
		efs_watch(boot_srv[i], host->blk, boot_names[i]);
	return EFI_SUCCESS;
}

/* One line per registered disk. */
static void boot_log_disks(void)
{
	for (int i = 0; i < disk_count(); i++) {
		const struct disk *d = disk_get(i);
		con_printf("disk: %s = %s %s, %llu sectors (%llu MiB), \"%s\"\n", d->label, d->driver, d->where,
			   (unsigned long long)d->blk->sectors, (unsigned long long)(d->blk->sectors >> 11), d->model);
	}
}

/* The entry point: gnu-efi's crt0 relocates us, then calls this with the System V ABI (so not EFIAPI). */
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	efi_tsc_start = rdtsc();
	efi_image = image;
	efi_st = st;
	efi_bs = st->BootServices;
	efi_bs->SetWatchdogTimer(0, 0, 0, NULL);   /* a menu may wait: the firmware's 5-minute watchdog would reset */
	econ_init();
	img_set_refusal("EFI_DEVICE_ERROR");   /* the adapters' and imgopen's refusal lines: WriteBlocks' answer */
	con_printf("\nvhdboot: UEFI front end (vhdboot.efi, x86_64); firmware revision %08x\n", st->FirmwareRevision);
	eopts_read(&boot_cmd, boot_loader, sizeof(boot_loader));
	con_printf("cmdline: \"%s\"\n", boot_cmd.raw);
	if (boot_cmd.errors)
		con_printf("cmdline: WARNING: %d word(s) not understood, first \"%s\" (options: vhd=auto|hdN[,P][:/path]|/path, trace, mode=rw|ro|snapshot, snapshot=SIZE, grow=yes|no, timeout=S, vhd_ignore_timestamp, loader=\\PATH)\n",
			   boot_cmd.errors, boot_cmd.bad);
	if (emem_init())
		return boot_fail("no memory below 4 GiB for scanning the disks", "give the machine more memory", EFI_OUT_OF_RESOURCES);
	if (!eblk_register_all())
		return boot_fail("the firmware offers no disk with 512-byte sectors", "attach the disk holding the image", EFI_NOT_FOUND);
	boot_log_disks();
	struct kerr err;
	if (sel_choose(&boot_cmd, 0, &err))
		return boot_fail(err.why, err.remedy, EFI_NOT_FOUND);
	int nimg = sel_open(boot_cmd.mode == CMDLINE_MODE_RW ? 0 : IMG_OPEN_RDONLY, 0, &err);
	if (nimg < 0)
		return boot_fail(err.why, err.remedy, EFI_LOAD_ERROR);
	for (int i = 0; i < nimg; i++) {
		EFI_STATUS s = boot_serve(i, nimg);
		if (s != EFI_SUCCESS)
			return s;
	}
	/* The hand-over table for the OS (efi/ehandover.c, docs/handover.md): after ExitBootServices nothing of ours runs. */
	if (boot_cmd.no_handover)
		con_printf("handover: nohandover: no %s variable for the OS (an OS cannot find the image again)\n", HO_EFI_VAR_NAME);
	else
		eho_publish(nimg, boot_cmd.mode);
	EFI_STATUS ls = eload_start(boot_srv[0], boot_loader);
	for (int i = 0; i < nimg; i++)
		esrv_log_stats(boot_srv[i]);
	if (ls == EFI_NOT_FOUND)
		return boot_fail("the image holds no EFI loader to start",
				 "install one into the image's ESP (\\EFI\\BOOT\\BOOTX64.EFI), or name it with loader=\\PATH",
				 EFI_NOT_FOUND);
	if (ls != EFI_SUCCESS)
		return boot_fail("the image's EFI loader failed or returned an error (status above)",
				 "check the loader's own messages above", ls);
	con_printf("boot: the image's EFI loader returned success: vhdboot takes the disk back\n");
	return boot_return(EFI_SUCCESS);
}
