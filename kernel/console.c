/* console.c: kernel logging to COM1 (115200 8N1, bounded waits) and the VGA text screen, over the printf engine of kernel/fmt.c. */
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

/* printf to the enabled console targets. */
void con_vprintf(const char *fmt, va_list ap)
{
	k_vformat(con_emit, fmt, ap);
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
