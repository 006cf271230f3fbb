/* kstubs.c: con_printf, k_snprintf and k_strlcpy for unit tests (the firmware's versions need the console hardware). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "kstubs.h"

char kstubs_log[1 << 16];
static size_t kstubs_len;

void kstubs_log_reset(void)
{
	kstubs_len = 0;
	kstubs_log[0] = 0;
}

/* Append to kstubs_log. */
void con_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(kstubs_log + kstubs_len, sizeof(kstubs_log) - kstubs_len, fmt, ap);
	va_end(ap);
	if (n > 0 && kstubs_len + (size_t)n < sizeof(kstubs_log))
		kstubs_len += (size_t)n;
}

/* vsnprintf with the kernel's name. */
int k_snprintf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r;
}

/* Copy with truncation; returns strlen(src). */
size_t k_strlcpy(char *dst, const char *src, size_t size)
{
	snprintf(dst, size, "%s", src);
	return strlen(src);
}
