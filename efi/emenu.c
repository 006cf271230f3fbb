/* emenu.c: kernel/menu.h's menu_choose under UEFI: keys from ConIn (digits, arrows, Enter), the timeout from boot-services timer events. */
#include "efi.h"
#include "../kernel/menu.h"
#include "../kernel/console.h"

#define EMENU_TICK_MS 100u
#define EMENU_KEY_UP (0x100 + SCAN_UP)
#define EMENU_KEY_DOWN (0x100 + SCAN_DOWN)

/* Show which line is highlighted. */
static void emenu_show(const char *const *names, int cur)
{
	con_printf("menu: > %d  %s\n", cur + 1, names[cur]);
}

/* The contract in kernel/menu.h; tsc_per_ms is unused (the firmware's timer measures the timeout). */
int menu_choose(const char *const *names, int n, int def, int timeout_s, uint32_t tsc_per_ms, int *by_user)
{
	(void)tsc_per_ms;
	int cur = def, num = 0, counting = timeout_s > 0;
	uint64_t left_ms = (uint64_t)timeout_s * 1000u;
	*by_user = 0;
	if (timeout_s == 0)
		return def;
	while (econ_key(0) >= 0)      /* drop keys typed before the menu existed */
		;
	for (;;) {
		int k = econ_key(EMENU_TICK_MS);
		if (k < 0) {
			if (counting) {
				left_ms = left_ms > EMENU_TICK_MS ? left_ms - EMENU_TICK_MS : 0;
				if (!left_ms) {
					con_printf("menu: timeout after %d s: booting %d\n", timeout_s, def + 1);
					return def;
				}
			}
			continue;
		}
		if (counting) {
			counting = 0;
			con_printf("menu: countdown stopped; Enter boots the highlighted line\n");
		}
		*by_user = 1;
		if (k == EMENU_KEY_UP || k == EMENU_KEY_DOWN) {
			cur = (cur + (k == EMENU_KEY_UP ? n - 1 : 1)) % n;
			num = 0;
			emenu_show(names, cur);
		} else if (k == '\r' || k == '\n') {
			if (num >= 1 && num <= n)
				cur = num - 1;
			return cur;
		} else if (k >= '0' && k <= '9') {
			num = num * 10 + (k - '0');
			if (num < 1 || num > n) {
				con_printf("menu: no line %d (1-%d)\n", num, n);
				num = 0;
				continue;
			}
			cur = num - 1;
			emenu_show(names, cur);
			if (num * 10 > n)      /* no further digit can make a valid number */
				return cur;
		}
	}
}
