/* efiguest.h: what the EFI guest programs of the tests share (one translation unit each): memory routines gcc may call, ConOut output, isa-debug-exit, device path length. */
#ifndef EFIGUEST_H
#define EFIGUEST_H

#include <efi.h>                  /* gnu-efi: types and protocols */
#include <stddef.h>
#include <stdint.h>

#define GUEST_EXIT_PORT 0xF4      /* isa-debug-exit: QEMU exits with (v << 1) | 1 */

static EFI_SYSTEM_TABLE *st;
static EFI_BOOT_SERVICES *bs;

/* memcpy/memset/memcmp: gcc may emit calls to them. */
void *memset(void *d, int c, size_t n)
{
	uint8_t *p = d;
	while (n--)
		*p++ = (uint8_t)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *p = d;
	const uint8_t *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *p = a, *q = b;
	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p < *q ? -1 : 1;
	return 0;
}

/* Print ASCII s, then an optional hex number (-1: none), then a newline if nl. */
static void say(const char *s, int64_t hex, int nl)
{
	CHAR16 w[160];
	size_t k = 0;
	while (*s && k < 120)
		w[k++] = (CHAR16)*s++;
	if (hex >= 0) {
		char tmp[17];
		int n = 0;
		uint64_t v = (uint64_t)hex;
		do
			tmp[n++] = "0123456789abcdef"[v & 15];
		while ((v >>= 4) && n < 16);
		while (n)
			w[k++] = (CHAR16)tmp[--n];
	}
	if (nl) {
		w[k++] = '\r';
		w[k++] = '\n';
	}
	w[k] = 0;
	st->ConOut->OutputString(st->ConOut, w);
}

/* End QEMU with code v through isa-debug-exit (returns when there is no such device). */
static void guest_exit(uint8_t v)
{
	__asm__ volatile("outb %b0, %w1" : : "a"(v), "Nd"((uint16_t)GUEST_EXIT_PORT));
}

/* Size in bytes of device path dp without its End node (bounded). */
static size_t dp_len(const EFI_DEVICE_PATH *dp)
{
	size_t t = 0;
	for (int i = 0; i < 64 && dp->Type != END_DEVICE_PATH_TYPE; i++) {
		size_t l = (size_t)dp->Length[0] | ((size_t)dp->Length[1] << 8);
		if (l < 4)
			break;
		t += l;
		dp = (const EFI_DEVICE_PATH *)((const uint8_t *)dp + l);
	}
	return t;
}

#endif
