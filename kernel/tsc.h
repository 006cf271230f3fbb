/* tsc.h: TSC frequency from the PIT, for boot-time measurements. */
#ifndef TSC_H
#define TSC_H

#include <stdint.h>

/* Measure TSC ticks per millisecond over 10 ms of PIT channel 2 (polling); 0 if the PIT did not answer. */
uint32_t tsc_calibrate(void);
/* Milliseconds between two TSC readings at ticks_per_ms (0 -> 0). */
uint32_t tsc_ms(uint64_t from, uint64_t to, uint32_t ticks_per_ms);

#endif
