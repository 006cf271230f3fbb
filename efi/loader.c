/* loader.c: starts the served image's own EFI loader (\EFI\BOOT\BOOTX64.EFI by default) from a FAT partition of the image, through LoadImage and StartImage. */
#include "efi.h"
#include "../kernel/console.h"
#include "../kernel/string.h"
#include "../kernel/io.h"         /* rdtsc */

#define ELOAD_PATH_MAX 128        /* characters of the loader's path */

/* path (ASCII) as UTF-16 into w (units n). */
static void eload_wide(const char *path, CHAR16 *w, size_t n)
{
	size_t k = 0;
	for (; path[k] && k + 1 < n; k++)
		w[k] = (CHAR16)(unsigned char)path[k];
	w[k] = 0;
}

/* Nonzero when volume h has a file (not a folder) at w. */
static int eload_has_file(EFI_HANDLE h, CHAR16 *w)
{
	EFI_FILE_IO_INTERFACE *sfs;
	EFI_FILE_HANDLE root, f;
	if (efi_bs->HandleProtocol(h, &efi_guid_sfs, (void **)&sfs) != EFI_SUCCESS ||
	    sfs->OpenVolume(sfs, &root) != EFI_SUCCESS)
		return 0;
	int ok = root->Open(root, &f, w, EFI_FILE_MODE_READ, 0) == EFI_SUCCESS;
	if (ok) {
		uint8_t info[512];
		UINTN size = sizeof(info);
		if (f->GetInfo(f, &efi_guid_file_info, &size, info) == EFI_SUCCESS)
			ok = !(((EFI_FILE_INFO *)(void *)info)->Attribute & EFI_FILE_DIRECTORY);
		f->Close(f);
	}
	root->Close(root);
	return ok;
}

/* eload_start, the contract in efi.h. */
EFI_STATUS eload_start(const struct esrv *s, const char *path)
{
	CHAR16 w[ELOAD_PATH_MAX];
	eload_wide(path, w, ELOAD_PATH_MAX);
	UINTN n = 0;
	EFI_HANDLE *h = NULL;
	int volumes = 0;
	size_t own = eblk_dp_size(esrv_devpath(s)) - 4;   /* our node, without End */
	if (efi_bs->LocateHandleBuffer(ByProtocol, &efi_guid_sfs, NULL, &n, &h) != EFI_SUCCESS)
		n = 0;
	for (UINTN i = 0; i < n; i++) {
		EFI_DEVICE_PATH *dp;
		if (efi_bs->HandleProtocol(h[i], &efi_guid_devpath, (void **)&dp) != EFI_SUCCESS ||
		    memcmp(dp, esrv_devpath(s), own))
			continue;             /* not a volume of the served disk */
		volumes++;
		if (!eload_has_file(h[i], w))
			continue;
		/* The partition's path + a file node: the loader's LoadedImage->DeviceHandle is the image's partition. */
		size_t pl = eblk_dp_size(dp);
		size_t fl = 4 + (strlen(path) + 1) * 2;
		uint8_t *full;
		if (!pl || efi_bs->AllocatePool(EfiLoaderData, pl + fl, (void **)&full) != EFI_SUCCESS)
			break;
		memcpy(full, dp, pl - 4);
		uint8_t *f = full + pl - 4;
		f[0] = MEDIA_DEVICE_PATH;
		f[1] = MEDIA_FILEPATH_DP;
		f[2] = (uint8_t)fl;
		f[3] = (uint8_t)(fl >> 8);
		memcpy(f + 4, w, (strlen(path) + 1) * 2);
		f += fl;
		f[0] = END_DEVICE_PATH_TYPE;
		f[1] = END_ENTIRE_DEVICE_PATH_SUBTYPE;
		f[2] = 4;
		f[3] = 0;
		EFI_HANDLE child = NULL;
		EFI_STATUS st = efi_bs->LoadImage(FALSE, efi_image, (EFI_DEVICE_PATH *)full, NULL, 0, &child);
		efi_bs->FreePool(full);
		if (st != EFI_SUCCESS) {
			con_printf("boot: LoadImage of %s from the image's volume %d failed: status %llx%s\n", path, volumes,
				   (unsigned long long)st, st == EFI_SECURITY_VIOLATION || st == EFI_ACCESS_DENIED ?
				   " (Secure Boot refuses it: the loader is not signed by a key the firmware trusts)" : "");
			efi_bs->FreePool(h);
			return st;
		}
		uint64_t now = rdtsc(), c0 = rdtsc();
		efi_bs->Stall(10000);             /* 10 ms: the TSC's rate, for the line below */
		uint64_t per_ms = (rdtsc() - c0) / 10;
		con_printf("boot: %llu ms from vhdboot.efi's start to StartImage (TSC %llu kHz)\n",
			   per_ms ? (unsigned long long)((now - efi_tsc_start) / per_ms) : 0ull, (unsigned long long)per_ms);
		con_printf("boot: starting %s from the image's volume %d (StartImage)\n", path, volumes);
		UINTN xsize = 0;
		CHAR16 *xdata = NULL;
		st = efi_bs->StartImage(child, &xsize, &xdata);
		con_printf("boot: %s returned status %llx%s\n", path, (unsigned long long)st,
			   st == EFI_SUCCESS ? " (success)" : "");
		efi_bs->FreePool(h);
		return st;
	}
	if (h)
		efi_bs->FreePool(h);
	if (!volumes)
		con_printf("boot: the image has no EFI loader: the firmware found no file system on it (no FAT partition, "
			   "e.g. no ESP); nothing to start\n");
	else
		con_printf("boot: the image has no EFI loader: none of its %d FAT volume(s) has %s\n", volumes, path);
	return EFI_NOT_FOUND;
}
