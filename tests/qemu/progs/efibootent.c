/* efibootent.c: EFI test program that adds a UEFI boot entry (Boot0100, first in BootOrder) starting \EFI\vhdboot\vhdboot.efi on its own volume with options as the entry's optional data, then resets; test_uefi_options.py's first run. */
#include "efiguest.h"             /* st, bs, mem*, say, guest_exit, dp_len */

/*
 * The entry: EFI_LOAD_OPTION { LOAD_OPTION_ACTIVE, FilePathListLength,
 * L"vhdboot test entry", <this program's volume's device path> +
 * File(\EFI\vhdboot\vhdboot.efi) + End, OptionalData = BOOTENT_OPTIONS as
 * UTF-16LE without a NUL }. The firmware's boot manager hands the optional
 * data to the image as its LoadOptions. Output: "BOOTENT set Boot0100, BootOrder
 * N entries" and a cold reset (QEMU -no-reboot exits), or "BOOTENT FAIL ..."
 * (exit 0x11). If Boot0100 already exists when this program runs, the firmware
 * did not boot the entry (it fell back to the default loader): that is a failure.
 */
#define BOOTENT_OPTIONS "vhd=/images/b.vhd mode=ro"
#define BOOTENT_FILE "\\EFI\\vhdboot\\vhdboot.efi"
#define BOOTENT_DESC "vhdboot test entry"
#define BOOTENT_NUM 0x0100

static EFI_GUID guid_dp = EFI_DEVICE_PATH_PROTOCOL_GUID, guid_li = EFI_LOADED_IMAGE_PROTOCOL_GUID,
		guid_gv = EFI_GLOBAL_VARIABLE;
static uint8_t opt[1024];
static uint16_t order[64];

static EFI_STATUS fail(const char *why, int64_t st_code)
{
	say("BOOTENT FAIL ", -1, 0);
	say(why, st_code, 1);
	guest_exit(0x11);
	return EFI_DEVICE_ERROR;
}

/* Append ASCII s as UTF-16LE to opt at *k (with a NUL if nul); 0 if it does not fit. */
static int put16(size_t *k, const char *s, int nul)
{
	for (; *s || nul; s++) {
		if (*k + 2 > sizeof(opt))
			return 0;
		opt[(*k)++] = (uint8_t)*s;
		opt[(*k)++] = 0;
		if (!*s)
			break;
	}
	return 1;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	st = systab;
	bs = st->BootServices;
	EFI_RUNTIME_SERVICES *rt = st->RuntimeServices;
	EFI_LOADED_IMAGE *li;
	EFI_DEVICE_PATH *vol;
	UINTN size = sizeof(opt);
	UINT32 attrs;
	CHAR16 name[] = { 'B', 'o', 'o', 't', '0', '1', '0', '0', 0 };
	CHAR16 bootorder[] = { 'B', 'o', 'o', 't', 'O', 'r', 'd', 'e', 'r', 0 };

	if (rt->GetVariable(name, &guid_gv, &attrs, &size, opt) != EFI_NOT_FOUND)
		return fail("Boot0100 exists already: the firmware did not start it", -1);
	if (bs->HandleProtocol(image, &guid_li, (void **)&li) != EFI_SUCCESS ||
	    bs->HandleProtocol(li->DeviceHandle, &guid_dp, (void **)&vol) != EFI_SUCCESS)
		return fail("no device path of our own volume", -1);
	size_t vl = dp_len(vol), k = 6;
	opt[0] = 1;                                /* LOAD_OPTION_ACTIVE */
	if (!put16(&k, BOOTENT_DESC, 1) || k + vl + 4 + 2 * sizeof(BOOTENT_FILE) + 4 > sizeof(opt))
		return fail("the entry does not fit", -1);
	size_t fp = k;
	memcpy(opt + k, vol, vl);
	k += vl;
	size_t node = k, nl = 4 + 2 * sizeof(BOOTENT_FILE);   /* MEDIA_FILEPATH_DP, the name with its NUL */
	opt[k] = MEDIA_DEVICE_PATH;
	opt[k + 1] = MEDIA_FILEPATH_DP;
	opt[k + 2] = (uint8_t)nl;
	opt[k + 3] = (uint8_t)(nl >> 8);
	k += 4;
	put16(&k, BOOTENT_FILE, 1);
	if (k != node + nl)
		return fail("file path node length", (int64_t)k);
	static const uint8_t end[4] = { END_DEVICE_PATH_TYPE, END_ENTIRE_DEVICE_PATH_SUBTYPE, 4, 0 };
	memcpy(opt + k, end, 4);
	k += 4;
	opt[4] = (uint8_t)(k - fp);
	opt[5] = (uint8_t)((k - fp) >> 8);
	if (!put16(&k, BOOTENT_OPTIONS, 0))
		return fail("the options do not fit", -1);
	UINT32 nv = EFI_VARIABLE_NON_VOLATILE | EFI_VARIABLE_BOOTSERVICE_ACCESS | EFI_VARIABLE_RUNTIME_ACCESS;
	EFI_STATUS s = rt->SetVariable(name, &guid_gv, nv, k, opt);
	if (s != EFI_SUCCESS)
		return fail("SetVariable Boot0100: status ", (int64_t)s);
	/* BootOrder: ours first, the firmware's after it. */
	UINTN osz = sizeof(order) - sizeof(order[0]);
	size_t n = 0;
	if (rt->GetVariable(bootorder, &guid_gv, &attrs, &osz, order + 1) == EFI_SUCCESS)
		n = osz / 2;
	order[0] = BOOTENT_NUM;
	size_t w = 1;
	for (size_t i = 1; i <= n; i++)
		if (order[i] != BOOTENT_NUM)
			order[w++] = order[i];
	s = rt->SetVariable(bootorder, &guid_gv, nv, w * 2, order);
	if (s != EFI_SUCCESS)
		return fail("SetVariable BootOrder: status ", (int64_t)s);
	say("BOOTENT set Boot0100, BootOrder entries: ", (int64_t)w, 1);
	rt->ResetSystem(EfiResetCold, EFI_SUCCESS, 0, NULL);
	return fail("ResetSystem returned", -1);
}
