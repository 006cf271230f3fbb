/* menukey.c: the boot menu's key logic (arrows, digits, Enter, the countdown) shared by kernel/menu.c (BIOS) and efi/emenu.c (UEFI). */
#include "menu.h"
#include "console.h"

/* Show which line is highlighted. */
static void menu_show(const struct menu_sel *s)
{
	con_printf("menu: > %d  %s\n", s->cur + 1, s->names[s->cur]);
}

void menu_sel_init(struct menu_sel *s, const char *const *names, int n, int def, int timeout_s, int counting,
		   int *by_user)
{
	s->names = names;
	s->n = n;
	s->def = def;
	s->timeout_s = timeout_s;
	s->cur = def;
	s->num = 0;
	s->counting = counting;
	s->by_user = by_user;
	*by_user = 0;
}

int menu_sel_key(struct menu_sel *s, int k)
{
	if (s->counting) {
		s->counting = 0;
		con_printf("menu: countdown stopped; Enter boots the highlighted line\n");
	}
	*s->by_user = 1;
	if (k == MENU_UP || k == MENU_DOWN) {
		s->cur = (s->cur + (k == MENU_UP ? s->n - 1 : 1)) % s->n;
		s->num = 0;
		menu_show(s);
	} else if (k == MENU_ENTER) {
		if (s->num >= 1 && s->num <= s->n)
			s->cur = s->num - 1;
		return s->cur;
	} else if (k >= '0' && k <= '9') {
		s->num = s->num * 10 + (k - '0');
		if (s->num < 1 || s->num > s->n) {
			con_printf("menu: no line %d (1-%d)\n", s->num, s->n);
			s->num = 0;
			return -1;
		}
		s->cur = s->num - 1;
		menu_show(s);
		if (s->num * 10 > s->n)    /* no further digit can make a valid number */
			return s->cur;
	}
	return -1;
}

int menu_sel_timeout(const struct menu_sel *s)
{
	con_printf("menu: timeout after %d s: booting %d\n", s->timeout_s, s->def + 1);
	return s->def;
}
