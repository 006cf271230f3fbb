/* string.h: the freestanding kernel's memory and string routines (gcc may emit calls to memcpy/memset/memcmp/memmove). */
#ifndef KSTRING_H
#define KSTRING_H

#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
/* Copy at most size-1 bytes of src into dst, always NUL-terminate (size > 0); returns strlen(src). */
size_t k_strlcpy(char *dst, const char *src, size_t size);

#endif
