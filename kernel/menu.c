/* menu.c: the boot menu's input: keyboard controller and COM1 polled in protected mode (no BIOS call, works with -display none). */
#include "menu.h"
#include "io.h"

#define KBC_DATA 0x60
#define KBC_STATUS 0x64
#define KBC_ST_FULL 0x01
#define KBC_ST_AUX 0x20           /* the byte is from the mouse */
#define COM1_DATA 0x3F8
#define COM1_LSR 0x3FD
#define COM1_LSR_READY 0x01

/* Scan code set 1 (what the controller delivers with translation on): digits 1..9, 0. */
static const uint8_t menu_digit_codes[10] = { 0x0B, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A };

/* One key from the PS/2 keyboard, or MENU_NONE. */
static int menu_kbd_key(void)
{
	static int e0;
	uint8_t st = inb(KBC_STATUS);
	if (!(st & KBC_ST_FULL))
		return MENU_NONE;
	uint8_t sc = inb(KBC_DATA);
	if (st & KBC_ST_AUX)
		return MENU_NONE;
	if (sc == 0xE0) {
		e0 = 1;
		return MENU_NONE;
	}
	int ext = e0;
	e0 = 0;
	if (sc & 0x80)
		return MENU_NONE;          /* key release */
	if (sc == 0x48)
		return MENU_UP;            /* grey arrow (E0 48) or keypad 8 */
	if (sc == 0x50)
		return MENU_DOWN;
	if (sc == 0x1C)
		return MENU_ENTER;         /* Enter or keypad Enter */
	if (!ext)
		for (int d = 0; d < 10; d++)
			if (menu_digit_codes[d] == sc)
				return '0' + d;
	return MENU_NONE;
}

/* One key from COM1 (digits, CR/LF, ESC [ A / ESC [ B, ESC O A/B), or MENU_NONE. */
static int menu_serial_key(void)
{
	static int esc;                /* 0, 1 after ESC, 2 after ESC [ or ESC O */
	if (!(inb(COM1_LSR) & COM1_LSR_READY))
		return MENU_NONE;
	uint8_t c = inb(COM1_DATA);
	if (c == 0x1B) {
		esc = 1;
		return MENU_NONE;
	}
	if (esc == 1) {
		esc = (c == '[' || c == 'O') ? 2 : 0;
		return MENU_NONE;
	}
	if (esc == 2) {
		esc = 0;
		return c == 'A' ? MENU_UP : c == 'B' ? MENU_DOWN : MENU_NONE;
	}
	if (c == '\r' || c == '\n')
		return MENU_ENTER;
	if (c >= '0' && c <= '9')
		return c;
	return MENU_NONE;
}

/* The contract in menu.h: keys from the keyboard controller, then COM1; the timeout from the TSC. */
int menu_choose(const char *const *names, int n, int def, int timeout_s, uint32_t tsc_per_ms, int *by_user)
{
	struct menu_sel s;
	uint64_t deadline = rdtsc() + (uint64_t)timeout_s * 1000u * tsc_per_ms;
	menu_sel_init(&s, names, n, def, timeout_s, timeout_s > 0 && tsc_per_ms, by_user);
	if (timeout_s == 0)
		return def;
	/* Drop keys typed before the menu existed. */
	for (int i = 0; i < 64 && (inb(KBC_STATUS) & KBC_ST_FULL); i++)
		(void)inb(KBC_DATA);
	for (;;) {
		int k = menu_kbd_key(), chosen;
		if (k == MENU_NONE)
			k = menu_serial_key();
		if (k == MENU_NONE) {
			if (s.counting && rdtsc() >= deadline)
				return menu_sel_timeout(&s);
			cpu_relax();
			continue;
		}
		chosen = menu_sel_key(&s, k);
		if (chosen >= 0)
			return chosen;
	}
}
