/* console.c: kernel logging to COM1 (115200 8N1, bounded waits) and the VGA text screen, plus the printf engine. */
#include <stdint.h>
#include "console.h"
#include "io.h"
#include "phys.h"
#include "string.h"

/* ---- 16550 UART on COM1 */
#define SER_BASE 0x3F8
#define SER_THR (SER_BASE + 0)   /* transmit holding (DLAB=0) */
#define SER_DLL (SER_BASE + 0)   /* divisor low (DLAB=1) */
#define SER_IER (SER_BASE + 1)   /* interrupt enable (DLAB=0) */
#define SER_DLM (SER_BASE + 1)   /* divisor high (DLAB=1) */
#define SER_FCR (SER_BASE + 2)   /* FIFO control */
#define SER_LCR (SER_BASE + 3)   /* line control */
#define SER_MCR (SER_BASE + 4)   /* modem control */
#define SER_LSR (SER_BASE + 5)   /* line status */
#define SER_SCR (SER_BASE + 7)   /* scratch */
#define SER_LCR_DLAB 0x80
#define SER_LCR_8N1 0x03
#define SER_FCR_ENABLE_CLEAR_14 0xC7 /* enable, clear RX/TX, 14-byte threshold */
#define SER_MCR_DTR_RTS_OUT2 0x0B
#define SER_LSR_THRE 0x20
#define SER_DIVISOR_115200 1
/* Polls of LSR before declaring the UART gone (~ms on real hardware at 1 us per inb). */
#define SER_TX_SPIN 100000u

/* ---- VGA text mode */
#define VGA_PHYS 0xB8000u
#define VGA_COLS 80
#define VGA_ROWS 25
#define VGA_ATTR 0x07            /* light grey on black */
#define VGA_CRTC_INDEX 0x3D4
#define VGA_CRTC_DATA 0x3D5
#define VGA_CRTC_CURSOR_HI 0x0E
#define VGA_CRTC_CURSOR_LO 0x0F
#define VGA_TAB 8

static int ser_present;
static unsigned con_targets;
static unsigned vga_row, vga_col;

/* Program COM1 for 115200 8N1 with FIFOs; marks it absent if the scratch register does not hold a value. */
static void ser_init(void)
{
	outb(SER_SCR, 0x5A);
	if (inb(SER_SCR) != 0x5A) {
		ser_present = 0;
		return;
	}
	outb(SER_IER, 0x00);
	outb(SER_LCR, SER_LCR_DLAB);
	outb(SER_DLL, SER_DIVISOR_115200 & 0xFF);
	outb(SER_DLM, SER_DIVISOR_115200 >> 8);
	outb(SER_LCR, SER_LCR_8N1);
	outb(SER_FCR, SER_FCR_ENABLE_CLEAR_14);
	outb(SER_MCR, SER_MCR_DTR_RTS_OUT2);
	ser_present = inb(SER_LSR) != 0xFF;
}

/* Send one byte; gives up (and stops using the UART) if THR never empties. */
static void ser_putc(char c)
{
	uint32_t spin;

	if (!ser_present)
		return;
	for (spin = 0; !(inb(SER_LSR) & SER_LSR_THRE); spin++) {
		if (spin >= SER_TX_SPIN) {
			ser_present = 0;
			return;
		}
	}
	outb(SER_THR, (uint8_t)c);
}

/* The text buffer as a kernel pointer (the kernel runs with segment bases). */
static volatile uint16_t *vga_buf(void)
{
	return (volatile uint16_t *)phys_ptr(VGA_PHYS);
}

/* Move the hardware cursor to the current position. */
static void vga_update_cursor(void)
{
	uint16_t pos = (uint16_t)(vga_row * VGA_COLS + vga_col);

	outb(VGA_CRTC_INDEX, VGA_CRTC_CURSOR_HI);
	outb(VGA_CRTC_DATA, (uint8_t)(pos >> 8));
	outb(VGA_CRTC_INDEX, VGA_CRTC_CURSOR_LO);
	outb(VGA_CRTC_DATA, (uint8_t)pos);
}

/* Clear the screen and home the cursor. */
static void vga_clear(void)
{
	volatile uint16_t *b = vga_buf();
	unsigned i;

	for (i = 0; i < VGA_COLS * VGA_ROWS; i++)
		b[i] = (uint16_t)(VGA_ATTR << 8 | ' ');
	vga_row = vga_col = 0;
	vga_update_cursor();
}

/* Scroll up one line, blanking the bottom row. */
static void vga_scroll(void)
{
	volatile uint16_t *b = vga_buf();
	unsigned i;

	for (i = 0; i < VGA_COLS * (VGA_ROWS - 1); i++)
		b[i] = b[i + VGA_COLS];
	for (; i < VGA_COLS * VGA_ROWS; i++)
		b[i] = (uint16_t)(VGA_ATTR << 8 | ' ');
}

/* Advance to a new line, scrolling at the bottom. */
static void vga_newline(void)
{
	vga_col = 0;
	if (++vga_row == VGA_ROWS) {
		vga_scroll();
		vga_row = VGA_ROWS - 1;
	}
}

/* Put one character at the cursor (no hardware cursor update: callers batch that). */
static void vga_putc(char c)
{
	switch (c) {
	case '\n':
		vga_newline();
		return;
	case '\r':
		vga_col = 0;
		return;
	case '\b':
		if (vga_col)
			vga_col--;
		return;
	case '\t':
		do
			vga_putc(' ');
		while (vga_col % VGA_TAB);
		return;
	}
	vga_buf()[vga_row * VGA_COLS + vga_col] = (uint16_t)(VGA_ATTR << 8 | (uint8_t)c);
	if (++vga_col == VGA_COLS)
		vga_newline();
}

/* One character to every enabled target, without the VGA cursor update. */
static void con_emit(char c)
{
	if (con_targets & CON_SERIAL) {
		if (c == '\n')
			ser_putc('\r');
		ser_putc(c);
	}
	if (con_targets & CON_VGA)
		vga_putc(c);
}

/* Initialise COM1 and clear the VGA screen; both targets on. */
void con_init(void)
{
	ser_init();
	vga_clear();
	con_targets = CON_SERIAL | CON_VGA;
}

/* Choose the targets (CON_SERIAL | CON_VGA). */
void con_set_targets(unsigned targets)
{
	con_targets = targets & (CON_SERIAL | CON_VGA);
}

/* Write one character to the enabled targets. */
void con_putc(char c)
{
	con_emit(c);
	if (con_targets & CON_VGA)
		vga_update_cursor();
}

/* Write n characters to the enabled targets. */
void con_write(const char *s, size_t n)
{
	while (n--)
		con_emit(*s++);
	if (con_targets & CON_VGA)
		vga_update_cursor();
}

/* ---- printf engine */

/* Where formatted characters go: a bounded buffer and/or the console. */
struct fmt_sink {
	int to_con;    /* 1: console, 0: buf */
	char *buf;     /* may be NULL when size is 0 (length query) */
	size_t size;   /* buffer capacity including the NUL */
	size_t len;    /* characters produced so far (may exceed size) */
};

/* Append one character to the sink. */
static void fmt_out(struct fmt_sink *k, char c)
{
	if (k->to_con)
		con_emit(c);
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
				lng = 1; /* size_t is 32-bit here, like long */
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
				int32_t sv = lng ? (int32_t)va_arg(ap, long) : va_arg(ap, int);
				neg = sv < 0;
				v = neg ? -(uint64_t)(int64_t)sv : (uint64_t)sv;
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

/* printf to the enabled console targets. */
void con_vprintf(const char *fmt, va_list ap)
{
	struct fmt_sink k = { 1, 0, 0, 0 };

	fmt_format(&k, fmt, ap);
	if (con_targets & CON_VGA)
		vga_update_cursor();
}

/* printf to the enabled console targets. */
void con_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	con_vprintf(fmt, ap);
	va_end(ap);
}

/* snprintf with the console's subset; always NUL-terminates when n > 0; returns the untruncated length. */
int k_snprintf(char *buf, size_t n, const char *fmt, ...)
{
	struct fmt_sink k = { 0, buf, n, 0 };
	va_list ap;

	va_start(ap, fmt);
	fmt_format(&k, fmt, ap);
	va_end(ap);
	if (n)
		buf[k.len < n ? k.len : n - 1] = '\0';
	return (int)k.len;
}
