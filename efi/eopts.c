/* eopts.c: the UEFI front end's options: the load options (UTF-16 text from the shell, a boot entry or GRUB's chainloader), else vhdboot.cfg beside vhdboot.efi, parsed by kernel/cmdline.c. */
#include "efi.h"
#include "../kernel/console.h"
#include "../kernel/string.h"

#define EOPTS_CFG_NAME "vhdboot.cfg"
#define EOPTS_CFG_MAX 4096        /* bytes of vhdboot.cfg read */
#define EOPTS_DEFAULT_LOADER "\\EFI\\BOOT\\BOOTX64.EFI"

/*
 * Load options as ASCII into out (size n): only when they are UTF-16 text
 * (every unit printable ASCII or a blank, up to a NUL or the end). Boot
 * entries made by the firmware carry binary data (EDK2: a 16-byte GUID),
 * which is not options. Returns 1 when text was found, 0 otherwise.
 */
static int eopts_load_options(const EFI_LOADED_IMAGE *li, char *out, size_t n)
{
	out[0] = 0;
	if (!li->LoadOptions || li->LoadOptionsSize < 2) {
		con_printf("options: no load options\n");
		return 0;
	}
	const CHAR16 *w = li->LoadOptions;
	size_t units = li->LoadOptionsSize / 2, k = 0;
	if (li->LoadOptionsSize & 1)
		goto binary;
	for (size_t i = 0; i < units && w[i]; i++) {
		CHAR16 c = w[i];
		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		if (c < 0x20 || c > 0x7E)
			goto binary;
		if (k + 1 < n)
			out[k++] = (char)c;
	}
	out[k] = 0;
	return 1;
binary:
	out[0] = 0;
	con_printf("options: load options are %u bytes of binary data (a firmware boot entry's), not text: ignored\n",
		   (unsigned)li->LoadOptionsSize);
	return 0;
}

/* The folder of our own file path ("\EFI\BOOT\"), as UTF-16 into dir (units n); "\" when unknown. */
static void eopts_own_dir(const EFI_LOADED_IMAGE *li, CHAR16 *dir, size_t n)
{
	size_t k = 0, last = 0;
	const EFI_DEVICE_PATH *dp = li->FilePath;
	for (int i = 0; dp && i < 32 && dp->Type != END_DEVICE_PATH_TYPE; i++) {
		size_t len = (size_t)dp->Length[0] | ((size_t)dp->Length[1] << 8);
		if (len < 4)
			break;
		if (dp->Type == MEDIA_DEVICE_PATH && dp->SubType == MEDIA_FILEPATH_DP) {
			const CHAR16 *s = (const CHAR16 *)((const uint8_t *)dp + 4);
			for (size_t j = 0; j < (len - 4) / 2 && s[j] && k + 1 < n; j++) {
				if (k == 0 && s[j] != '\\')
					dir[k++] = '\\';
				dir[k++] = s[j];
				if (s[j] == '\\')
					last = k;
			}
		}
		dp = (const EFI_DEVICE_PATH *)((const uint8_t *)dp + len);
	}
	k = last ? last : 0;
	if (!k)
		dir[k++] = '\\';
	dir[k] = 0;
}

/* Read vhdboot.cfg from our own folder on our own volume (Simple File System) into out (size n) as one line: '#' comments dropped, lines joined. 1 if read. */
static int eopts_config(const EFI_LOADED_IMAGE *li, char *out, size_t n)
{
	CHAR16 path[256];
	EFI_FILE_IO_INTERFACE *sfs;
	EFI_FILE_HANDLE root, f;
	out[0] = 0;
	eopts_own_dir(li, path, sizeof(path) / sizeof(path[0]) - sizeof(EOPTS_CFG_NAME));
	size_t k = 0;
	while (path[k])
		k++;
	for (const char *s = EOPTS_CFG_NAME; *s; s++)
		path[k++] = (CHAR16)*s;
	path[k] = 0;
	char shown[256];
	for (k = 0; path[k] && k + 1 < sizeof(shown); k++)
		shown[k] = (char)path[k];
	shown[k] = 0;
	if (efi_bs->HandleProtocol(li->DeviceHandle, &efi_guid_sfs, (void **)&sfs) != EFI_SUCCESS ||
	    sfs->OpenVolume(sfs, &root) != EFI_SUCCESS) {
		con_printf("options: vhdboot.efi's volume has no file system the firmware reads: no %s\n", shown);
		return 0;
	}
	EFI_STATUS st = root->Open(root, &f, path, EFI_FILE_MODE_READ, 0);
	if (st != EFI_SUCCESS) {
		con_printf("options: no %s beside vhdboot.efi\n", shown);
		root->Close(root);
		return 0;
	}
	static char buf[EOPTS_CFG_MAX];
	UINTN size = sizeof(buf) - 1;
	st = f->Read(f, &size, buf);
	f->Close(f);
	root->Close(root);
	if (st != EFI_SUCCESS) {
		con_printf("options: reading %s failed (status %llx): ignored\n", shown, (unsigned long long)st);
		return 0;
	}
	buf[size] = 0;
	k = 0;
	int comment = 0;
	for (UINTN i = 0; i < size; i++) {
		char c = buf[i];
		if (c == '#')
			comment = 1;
		if (c == '\n' || c == '\r') {
			comment = 0;
			c = ' ';
		}
		if (comment)
			continue;
		if (c == '\t')
			c = ' ';
		if ((unsigned char)c < 0x20 || (unsigned char)c > 0x7E)
			c = '?';
		if (k + 1 < n)
			out[k++] = c;
	}
	out[k] = 0;
	con_printf("options: read %s (%u bytes)\n", shown, (unsigned)size);
	return 1;
}

/* Remove the EFI-only word loader=PATH from s (in place) into loader; other words stay for cmdline.c. */
static void eopts_take_loader(char *s, char *loader, size_t n)
{
	char *p = s;
	while (*p) {
		while (*p == ' ')
			p++;
		char *w = p;
		while (*p && *p != ' ')
			p++;
		if (p - w > 7 && !strncmp(w, "loader=", 7)) {
			size_t len = (size_t)(p - w - 7);
			if (len >= n)
				len = n - 1;
			memcpy(loader, w + 7, len);
			loader[len] = 0;
			for (char *q = loader; *q; q++)
				if (*q == '/')
					*q = '\\';
			memmove(w, p, strlen(p) + 1);
			p = w;
		}
	}
}

/* eopts_read, the contract in efi.h. */
void eopts_read(struct cmdline *cmd, char *loader, size_t n)
{
	EFI_LOADED_IMAGE *li;
	k_strlcpy(loader, EOPTS_DEFAULT_LOADER, n);
	cmd->raw[0] = 0;
	if (efi_bs->HandleProtocol(efi_image, &efi_guid_loaded_image, (void **)&li) != EFI_SUCCESS) {
		con_printf("options: no LoadedImage protocol on our own image (firmware bug?): defaults\n");
	} else {
		int text = eopts_load_options(li, cmd->raw, sizeof(cmd->raw));
		/* The shell passes our own file name first: words other than a file name make options. */
		const char *p = cmd->raw;
		while (*p == ' ')
			p++;
		const char *w = p;
		while (*p && *p != ' ')
			p++;
		int only_name = !strchr(cmd->raw, '=') && (*p == 0) && (!*w || strchr(w, '.') || strchr(w, '\\'));
		if (text && !only_name)
			con_printf("options: from the load options: \"%s\"\n", cmd->raw);
		else if (eopts_config(li, cmd->raw, sizeof(cmd->raw)))
			con_printf("options: from the config file: \"%s\"\n", cmd->raw);
	}
	eopts_take_loader(cmd->raw, loader, n);
	cmdline_parse_raw(cmd);
	con_printf("options: loader %s\n", loader);
}
