/* tsc.c: TSC calibration against PIT channel 2 (gate via port 61h, no interrupts needed). */
#include "tsc.h"
#include "io.h"

#define PIT_HZ 1193182u
#define PIT_CH2 0x42
#define PIT_CMD 0x43
#define PORT_B 0x61               /* bit 0: ch2 gate, bit 1: speaker, bit 5: ch2 output */
#define CAL_MS 10u

uint32_t tsc_calibrate(void)
{
	uint16_t latch = (uint16_t)(PIT_HZ * CAL_MS / 1000);
	uint8_t b = inb(PORT_B);
	outb(PORT_B, (uint8_t)((b & ~0x02) | 0x01));
	outb(PIT_CMD, 0xB0);              /* channel 2, lo/hi byte, mode 0, binary */
	outb(PIT_CH2, (uint8_t)latch);
	outb(PIT_CH2, (uint8_t)(latch >> 8));
	uint64_t t0 = rdtsc();
	uint32_t spins = 0;
	while (!(inb(PORT_B) & 0x20))
		if (++spins > 50000000u)  /* no PIT: give up rather than hang */
			break;
	uint64_t t1 = rdtsc();
	outb(PORT_B, b);
	if (spins > 50000000u)
		return 0;
	return (uint32_t)((t1 - t0) / CAL_MS);
}

uint32_t tsc_ms(uint64_t from, uint64_t to, uint32_t ticks_per_ms)
{
	if (!ticks_per_ms || to < from)
		return 0;
	return (uint32_t)((to - from) / ticks_per_ms);
}
