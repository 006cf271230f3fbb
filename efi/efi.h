/* efi.h: the UEFI front end's shared state (system table, boot services, our image) and the modules of efi/ (console, options, disks, serving, loader). */
#ifndef VHDBOOT_EFI_H
#define VHDBOOT_EFI_H

#include <efi.h>                  /* gnu-efi: the specification's types and protocols */
#include <stddef.h>
#include <stdint.h>
#include "../block/blk.h"
#include "../kernel/cmdline.h"

extern EFI_HANDLE efi_image;      /* vhdboot.efi's own image handle */
extern EFI_SYSTEM_TABLE *efi_st;
extern EFI_BOOT_SERVICES *efi_bs;
extern uint64_t efi_tsc_start;    /* TSC at efi_main's entry (the boot-time log line) */

/* Protocol GUIDs (the specification's values, from gnu-efi's macros). */
extern EFI_GUID efi_guid_blockio, efi_guid_devpath, efi_guid_loaded_image, efi_guid_sfs, efi_guid_textout,
	efi_guid_file_info;

/* ---- econ.c: logging */
/* Start logging: ConOut always; COM1 directly only when no console of the firmware is already on a UART. */
void econ_init(void);
/* Wait for a key on ConIn for at most ms milliseconds (0: none); returns the key (unicode, or 0x100 + scan code), or -1. */
int econ_key(uint32_t ms);

/* ---- emem.c: memory for the shared code (mem.h's mem_alloc/mem_temp, imgopen's scratch) */
/* Give imgopen its scan scratch (IOP_SCRATCH bytes below 4 GiB, AllocatePages). 0, or -1 (logged). */
int emem_init(void);

/* ---- eopts.c: options */
/*
 * Fill cmd->raw from the load options (UEFI shell, a boot entry, GRUB's
 * chainloader) and, when they give none, from vhdboot.cfg beside the .efi;
 * the EFI-only word loader=\PATH goes to loader (size n; default
 * \EFI\BOOT\BOOTX64.EFI). Then cmdline_parse_raw. Logs where each came from.
 */
void eopts_read(struct cmdline *cmd, char *loader, size_t n);

/* ---- eblk.c: the firmware's disks */
/* Register every whole disk the firmware offers as Block I/O (not partitions, not our own) in block/disk.h's registry; returns how many. */
int eblk_register_all(void);
/* The firmware's handle of a disk eblk_register_all registered (and its Block I/O in *bio, if bio); NULL for any other blk_dev. */
EFI_HANDLE eblk_handle(const struct blk_dev *d, EFI_BLOCK_IO **bio);
/* Nonzero when dp's first node is our vendor node (a disk vhdboot serves). */
int eblk_is_ours(const EFI_DEVICE_PATH *dp);
/* Device path size in bytes up to and including its End node (bounded by 4 KiB; 0: malformed). */
size_t eblk_dp_size(const EFI_DEVICE_PATH *dp);

/* ---- serve.c: the served image as Block I/O */
#define ESRV_MAX 4
/* One served disk (efi/serve.c). */
struct esrv;
/*
 * Serve dev as disk index (0 = the first image; at most ESRV_MAX): a new
 * handle with the device path VenHw(vhdboot GUID, index) and Block I/O over
 * dev (ro: read-only media; trace: log every request; what: its name in
 * messages), then ConnectController recursively. NULL (logged) on failure.
 */
struct esrv *esrv_install(int index, struct blk_dev *dev, int ro, int trace, const char *what);
/* Disconnect and uninstall it (before vhdboot.efi returns to the firmware); 0, or -1 when the firmware refused (logged). */
int esrv_uninstall(struct esrv *s);
/* Its Block I/O protocol (what the firmware and loaders call), handle and device path. */
EFI_BLOCK_IO *esrv_blockio(struct esrv *s);
EFI_HANDLE esrv_handle(const struct esrv *s);
const EFI_DEVICE_PATH *esrv_devpath(const struct esrv *s);
/* Log the request counters (reads, writes, flushes, errors). */
void esrv_log_stats(const struct esrv *s);
/* Call fn(ctx) after every WriteBlocks that reached the image (also a failed one: it may have grown a file first), at TPL_CALLBACK; NULL: none. */
void esrv_set_after_write(struct esrv *s, void (*fn)(void *ctx), void *ctx);

/* ---- efsync.c: the firmware's caches of a host disk after an image file on it grew */
/*
 * Watch served disk s, whose image file lies on host disk host (a disk of
 * eblk_register_all; anything else is not watched): after a WriteBlocks that
 * made the file longer (kernel/imgopen.c iop_growths), the firmware's file
 * system drivers on host are made to drop what they cached (efs_after_growth),
 * once the request and any firmware file-system call around it are over (a
 * TPL_CALLBACK event). 0, or -1 (logged) when the event cannot be made.
 */
int efs_watch(struct esrv *s, struct blk_dev *host, const char *what);
/* efs_watch with the host disk given by its handle and Block I/O (efs_watch's lookup done; the unit test calls it). */
int efs_watch_disk(struct esrv *s, EFI_HANDLE disk, EFI_BLOCK_IO *bio, const char *what);
/*
 * The decision of the hook: nonzero when the growth counter moved from
 * seen to now (a file grew) and the host disk is known (have_handle).
 */
int efs_should_sync(uint32_t seen, uint32_t now, int have_handle);
/*
 * Reinstall host disk handle's Block I/O with the same interface: the
 * firmware disconnects the drivers on it (Disk I/O, partitions, FAT, which
 * drop their caches) and connects them again, reading the grown FAT and
 * directory afresh. Our own pointer to that Block I/O stays valid. Returns
 * the firmware's status (logged once, and every failure).
 */
EFI_STATUS efs_after_growth(EFI_HANDLE disk, EFI_BLOCK_IO *bio, const char *what);

/* ---- ehandover.c: the hand-over table for the OS */
/*
 * Build the hand-over table for the nimg served images under mode
 * (CMDLINE_MODE_*) and publish it as the volatile runtime variable
 * HO_EFI_VAR_NAME-HO_EFI_VAR_GUID, before the image's loader starts.
 * 0, or -1 (logged: no table, or SetVariable refused it).
 */
int eho_publish(int nimg, int mode);
/* Delete the variable again (vhdboot takes the disk back: a later OS must not look for it); logged. */
void eho_withdraw(void);

/* ---- loader.c: the image's own EFI loader */
/* Find path (an EFI loader, "\EFI\BOOT\BOOTX64.EFI") on a FAT partition of served disk s, LoadImage and StartImage it; returns its exit status, or an error (logged) when there is none. */
EFI_STATUS eload_start(const struct esrv *s, const char *path);

#endif
