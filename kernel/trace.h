/* trace.h: the `trace` option: one COM1 line per guest INT 13h call on an emulated drive, with running totals. */
#ifndef TRACE_H
#define TRACE_H

/* Hook the INT 13h layer so every call is logged (cost when not enabled: one NULL test per call). */
void trace_enable(void);
/* Print the totals so far, introduced by when ("at the guest jump"...). No-op unless enabled. */
void trace_summary(const char *when);

#endif
