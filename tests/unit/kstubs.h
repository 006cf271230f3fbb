/* kstubs.h: the kernel's console and string services for unit tests that link kernel/ or drivers/ code: con_printf into a log the test can search. */
#ifndef TESTS_UNIT_KSTUBS_H
#define TESTS_UNIT_KSTUBS_H

#include <stddef.h>

/* Everything con_printf printed since the last kstubs_log_reset (NUL-terminated, truncated at 64 KiB). */
extern char kstubs_log[1 << 16];
/* Forget the log. */
void kstubs_log_reset(void);

#endif
