/* string.c: memcpy/memmove/memset/memcmp and small string routines for the freestanding kernel (rep string ops, no libc). */
#include "string.h"
#include <stdint.h>

/* Copy n bytes, regions must not overlap; dwords with rep movsl, then the tail bytes. */
void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;
	size_t dw = n >> 2, tail = n & 3;

	__asm__ volatile("cld; rep movsl" : "+D"(d), "+S"(src), "+c"(dw) : : "memory");
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(tail) : : "memory");
	return dst;
}

/* Copy n bytes; regions may overlap (copies backwards when dst is above src). */
void *memmove(void *dst, const void *src, size_t n)
{
	uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;

	if (d <= s || d >= s + n)
		return memcpy(dst, src, n);
	/* Overlap with dst above src: copy from the last byte down, then clear DF. */
	d += n - 1;
	s += n - 1;
	__asm__ volatile("std; rep movsb; cld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	return dst;
}

/* Fill n bytes with (unsigned char)c; dwords with rep stosl, then the tail bytes. */
void *memset(void *dst, int c, size_t n)
{
	void *d = dst;
	uint32_t v = (uint8_t)c * 0x01010101u;
	size_t dw = n >> 2, tail = n & 3;

	__asm__ volatile("cld; rep stosl" : "+D"(d), "+c"(dw) : "a"(v) : "memory");
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(tail) : "a"(v) : "memory");
	return dst;
}

/* Compare n bytes as unsigned chars; <0, 0, >0 like libc. */
int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *p = a, *q = b;

	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p - *q;
	return 0;
}

/* Length of a NUL-terminated string. */
size_t strlen(const char *s)
{
	const char *p = s;

	while (*p)
		p++;
	return (size_t)(p - s);
}

/* Compare two NUL-terminated strings as unsigned chars. */
int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

/* Compare at most n characters of two strings. */
int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			break;
	}
	return 0;
}

/* First occurrence of (char)c in s (the terminating NUL counts), or NULL. */
char *strchr(const char *s, int c)
{
	for (;; s++) {
		if (*s == (char)c)
			return (char *)s;
		if (!*s)
			return NULL;
	}
}

/* Bounded copy that always terminates (when size > 0); returns strlen(src) so truncation is detectable. */
size_t k_strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size) {
		size_t n = len < size - 1 ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}
