/* emenu.c: kernel/menu.h's menu_choose under UEFI: keys from ConIn (digits, arrows, Enter), the timeout from boot-services timer events. */
#include "efi.h"
#include "../kernel/menu.h"

#define EMENU_TICK_MS 100u
#define EMENU_KEY_UP (0x100 + SCAN_UP)
#define EMENU_KEY_DOWN (0x100 + SCAN_DOWN)

/* An econ_key value as a menu key (enum menu_key or '0'..'9'); MENU_NONE for any other key. */
static int emenu_key(int k)
{
	if (k == EMENU_KEY_UP)
		return MENU_UP;
	if (k == EMENU_KEY_DOWN)
		return MENU_DOWN;
	if (k == '\r' || k == '\n')
		return MENU_ENTER;
	return k >= '0' && k <= '9' ? k : MENU_NONE;
}

/* The contract in kernel/menu.h; tsc_per_ms is unused (the firmware's timer measures the timeout). */
int menu_choose(const char *const *names, int n, int def, int timeout_s, uint32_t tsc_per_ms, int *by_user)
{
	(void)tsc_per_ms;
	struct menu_sel s;
	uint64_t left_ms = (uint64_t)timeout_s * 1000u;
	menu_sel_init(&s, names, n, def, timeout_s, timeout_s > 0, by_user);
	if (timeout_s == 0)
		return def;
	while (econ_key(0) >= 0)      /* drop keys typed before the menu existed */
		;
	for (;;) {
		int k = econ_key(EMENU_TICK_MS), chosen;
		if (k < 0) {
			if (s.counting) {
				left_ms = left_ms > EMENU_TICK_MS ? left_ms - EMENU_TICK_MS : 0;
				if (!left_ms)
					return menu_sel_timeout(&s);
			}
			continue;
		}
		chosen = menu_sel_key(&s, emenu_key(k));
		if (chosen >= 0)
			return chosen;
	}
}
