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

#endif
