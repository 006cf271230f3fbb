/* console.h: logging: COM1 (115200 8N1) and the VGA text screen (kernel/console.c), or ConOut and COM1 (efi/econ.c); the printf engine (kernel/fmt.c). */
#ifndef CONSOLE_H
#define CONSOLE_H

#include <stdarg.h>
#include <stddef.h>

#define CON_SERIAL 0x1u
#define CON_VGA 0x2u

/* Initialise COM1 and clear the VGA screen; both targets on. */
void con_init(void);
/* Choose the targets (CON_SERIAL | CON_VGA); the resident handler logs to serial only. */
void con_set_targets(unsigned targets);
void con_putc(char c);
void con_write(const char *s, size_t n);
/* printf subset: %s %c %d %u %x %X %p %% with l/ll, width and 0-padding. */
void con_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void con_vprintf(const char *fmt, va_list ap);
/* Format fmt (the subset above) into emit, one character at a time: the engine of con_vprintf (kernel/fmt.c). */
void k_vformat(void (*emit)(char c), const char *fmt, va_list ap);
/* snprintf with the same subset; returns the length it would have written. */
int k_snprintf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
