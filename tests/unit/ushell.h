/* ushell.h: sh(), a printf-style shell command that fails the cmocka test when it fails; for the unit tests that build disk images (test_select, test_efihandover). Include after <cmocka.h>. */
#ifndef TESTS_UNIT_USHELL_H
#define TESTS_UNIT_USHELL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Run the shell command fmt...; the test fails, naming the command, if it exits non-zero. */
static inline void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

#endif
