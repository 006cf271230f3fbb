/* fmt.c: the printf engine (the kernel's subset) behind k_snprintf and both front ends' con_vprintf (BIOS: kernel/console.c, UEFI: efi/econ.c). */
#include <stdint.h>
#include "console.h"
#include "string.h"          /* strlen */

/* Where formatted characters go: a bounded buffer or a console's emit function. */
struct fmt_sink {
	void (*emit)(char c); /* a console (con_vprintf of either front end), or NULL: buf */
	char *buf;     /* may be NULL when size is 0 (length query) */
	size_t size;   /* buffer capacity including the NUL */
	size_t len;    /* characters produced so far (may exceed size) */
};

/* Append one character to the sink. */
static void fmt_out(struct fmt_sink *k, char c)
{
	if (k->emit)
		k->emit(c);
	else if (k->len + 1 < k->size)
		k->buf[k->len] = c;
	k->len++;
}

/* Divide *n by d (d < 2^32) in place and return the remainder, without libgcc. */
static uint32_t fmt_divmod(uint64_t *n, uint32_t d)
{
	uint32_t hi = (uint32_t)(*n >> 32), lo = (uint32_t)*n, qhi = hi / d, r;

	hi %= d;
	__asm__("divl %4" : "=a"(lo), "=d"(r) : "a"(lo), "d"(hi), "rm"(d));
	*n = ((uint64_t)qhi << 32) | lo;
	return r;
}

/* Emit s (len chars) padded to width: left-justified, or right with spaces/zeros (zeros go after the sign). */
static void fmt_pad(struct fmt_sink *k, const char *s, size_t len, unsigned width,
		    int left, int zero)
{
	size_t pad = width > len ? width - len : 0;

	if (!left && zero && len && (*s == '-')) {
		fmt_out(k, *s++);
		len--;
	}
	if (!left)
		while (pad--)
			fmt_out(k, zero ? '0' : ' ');
	while (len--)
		fmt_out(k, *s++);
	if (left)
		while (pad--)
			fmt_out(k, ' ');
}

/* The printf subset shared by con_vprintf and k_snprintf. */
static void fmt_format(struct fmt_sink *k, const char *fmt, va_list ap)
{
	static const char digits_lo[] = "0123456789abcdef", digits_up[] = "0123456789ABCDEF";

	for (; *fmt; fmt++) {
		char tmp[24];
		int left = 0, zero = 0, lng = 0, neg = 0;
		unsigned width = 0, base = 10;
		const char *digits = digits_lo, *s;
		uint64_t v;
		size_t n;

		if (*fmt != '%') {
			fmt_out(k, *fmt);
			continue;
		}
		for (fmt++;; fmt++) {
			if (*fmt == '-')
				left = 1;
			else if (*fmt == '0')
				zero = 1;
			else
				break;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (unsigned)(*fmt++ - '0');
		for (;; fmt++) {
			if (*fmt == 'l')
				lng++;
			else if (*fmt == 'z')
				lng = 1; /* size_t is as wide as long (i686 and x86_64) */
			else
				break;
		}
		switch (*fmt) {
		case '\0':
			return;
		case '%':
			fmt_out(k, '%');
			continue;
		case 'c':
			tmp[0] = (char)va_arg(ap, int);
			fmt_pad(k, tmp, 1, width, left, 0);
			continue;
		case 's':
			s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			fmt_pad(k, s, strlen(s), width, left, 0);
			continue;
		case 'p':
			v = (uintptr_t)va_arg(ap, void *);
			width = 8;
			zero = 1;
			left = 0;
			fmt_out(k, '0');
			fmt_out(k, 'x');
			base = 16;
			break;
		case 'd':
		case 'i':
			if (lng >= 2) {
				int64_t sv = va_arg(ap, int64_t);
				neg = sv < 0;
				v = neg ? -(uint64_t)sv : (uint64_t)sv;
			} else {
				int64_t sv = lng ? (int64_t)va_arg(ap, long) : va_arg(ap, int);
				neg = sv < 0;
				v = neg ? -(uint64_t)sv : (uint64_t)sv;
			}
			break;
		case 'u':
		case 'x':
		case 'X':
			if (*fmt != 'u')
				base = 16;
			if (*fmt == 'X')
				digits = digits_up;
			if (lng >= 2)
				v = va_arg(ap, uint64_t);
			else if (lng)
				v = va_arg(ap, unsigned long);
			else
				v = va_arg(ap, unsigned int);
			break;
		default:
			/* Unknown conversion: print it verbatim so the mistake is visible. */
			fmt_out(k, '%');
			fmt_out(k, *fmt);
			continue;
		}
		n = sizeof(tmp);
		do
			tmp[--n] = digits[fmt_divmod(&v, base)];
		while (v);
		if (neg)
			tmp[--n] = '-';
		fmt_pad(k, tmp + n, sizeof(tmp) - n, width, left, zero);
	}
}

/* k_vformat, the contract in console.h. */
void k_vformat(void (*emit)(char c), const char *fmt, va_list ap)
{
	struct fmt_sink k = { emit, 0, 0, 0 };

	fmt_format(&k, fmt, ap);
}

/* snprintf with the console's subset; always NUL-terminates when n > 0; returns the untruncated length. */
int k_snprintf(char *buf, size_t n, const char *fmt, ...)
{
	struct fmt_sink k = { NULL, buf, n, 0 };
	va_list ap;

	va_start(ap, fmt);
	fmt_format(&k, fmt, ap);
	va_end(ap);
	if (n)
		buf[k.len < n ? k.len : n - 1] = '\0';
	return (int)k.len;
}
