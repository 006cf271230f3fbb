/* ehandover.c: the hand-over to the OS under UEFI: kernel/handover.c's table published as the volatile runtime EFI variable VhdbootHandover (Linux: /sys/firmware/efi/efivars), read by vhdboot-attach. */
#include "efi.h"
#include "../kernel/console.h"
#include "../kernel/handover.h"   /* handover_build, handover_table; HO_EFI_VAR_NAME */

extern EFI_GUID efi_guid_vhdboot; /* eblk.c: vhdboot's vendor GUID = HO_EFI_VAR_GUID */

#define EHO_ATTRS (EFI_VARIABLE_BOOTSERVICE_ACCESS | EFI_VARIABLE_RUNTIME_ACCESS) /* volatile: gone at the next reset */

static int eho_published;

/* HO_EFI_VAR_NAME as UTF-16 into w (units n). */
static void eho_name(CHAR16 *w, size_t n)
{
	const char *s = HO_EFI_VAR_NAME;
	size_t k = 0;
	for (; s[k] && k + 1 < n; k++)
		w[k] = (CHAR16)s[k];
	w[k] = 0;
}

/* eho_publish, the contract in efi.h. */
int eho_publish(int nimg, int mode)
{
	CHAR16 name[32];
	uint32_t bytes = 0;
	eho_name(name, sizeof(name) / sizeof(name[0]));
	if (!handover_build(nimg, mode))
		return -1;                /* logged by handover_build */
	const void *t = handover_table(HO_F_EFI_VAR, &bytes);
	if (!t)
		return -1;
	EFI_STATUS st = efi_st->RuntimeServices->SetVariable(name, &efi_guid_vhdboot, EHO_ATTRS, bytes, (void *)t);
	if (st != EFI_SUCCESS) {
		con_printf("handover: SetVariable(%s) of %u bytes failed: status %llx (an OS cannot find the image again)\n",
			   HO_EFI_VAR_NAME, bytes, (unsigned long long)st);
		return -1;
	}
	eho_published = 1;
	con_printf("handover: table %u bytes (version %u.%u, %d drive(s)) in the volatile runtime variable %s-%s\n",
		   bytes, HO_VERSION_MAJOR, HO_VERSION_MINOR, nimg, HO_EFI_VAR_NAME, HO_EFI_VAR_GUID);
	return 0;
}

/* eho_withdraw, the contract in efi.h. */
void eho_withdraw(void)
{
	CHAR16 name[32];
	if (!eho_published)
		return;
	eho_name(name, sizeof(name) / sizeof(name[0]));
	EFI_STATUS st = efi_st->RuntimeServices->SetVariable(name, &efi_guid_vhdboot, EHO_ATTRS, 0, NULL);
	eho_published = st != EFI_SUCCESS;
	con_printf("handover: variable %s %s\n", HO_EFI_VAR_NAME, st == EFI_SUCCESS ? "deleted (vhdboot took the disk back)" :
		   "could not be deleted: an OS booted next would find a disk vhdboot no longer serves");
}
