/* menu.h: the boot menu on VGA and COM1: number keys, arrows (PS/2 keyboard or ANSI over serial), Enter, a timeout. */
#ifndef MENU_H
#define MENU_H

#include <stdint.h>

/*
 * Let the user pick one of n lines (already printed, numbered 1..n); def is
 * highlighted first. Input is polled from the keyboard controller and COM1:
 * digits, Enter, Up/Down (scan codes, or ESC [ A / ESC [ B). Without a key
 * for timeout_s seconds (measured with the TSC at tsc_per_ms), def is taken;
 * any key stops the countdown. *by_user is set when a key decided.
 * Returns the index 0..n-1.
 */
int menu_choose(const char *const *names, int n, int def, int timeout_s, uint32_t tsc_per_ms, int *by_user);

/* Keys the menu understands besides the digits '0'..'9' (kernel/menukey.c). */
enum menu_key { MENU_NONE = 0, MENU_UP = 0x100, MENU_DOWN, MENU_ENTER };

/* One menu_choose call's state, shared by the BIOS (menu.c) and UEFI (efi/emenu.c) inputs. */
struct menu_sel {
	const char *const *names;
	int n, def, timeout_s;
	int cur;                   /* the highlighted line */
	int num;                   /* the number typed so far (0: none) */
	int counting;              /* the timeout still runs */
	int *by_user;              /* set to 1 by the first key */
};

/* Start a choice over n lines with def highlighted; counting tells whether the timeout runs; *by_user = 0. */
void menu_sel_init(struct menu_sel *s, const char *const *names, int n, int def, int timeout_s, int counting,
		   int *by_user);
/*
 * Apply key k (MENU_UP, MENU_DOWN, MENU_ENTER, '0'..'9'; anything else only
 * stops the countdown): -1 while the choice goes on (a move shows the
 * highlighted line), else the chosen index 0..n-1.
 */
int menu_sel_key(struct menu_sel *s, int k);
/* The timeout ran out: say so; returns def. */
int menu_sel_timeout(const struct menu_sel *s);

#endif
