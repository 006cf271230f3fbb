/* io.h: x86 port I/O, string port I/O, TSC and interrupt-flag helpers for the freestanding kernel. */
#ifndef IO_H
#define IO_H

#include <stdint.h>
#include <stddef.h>

/* Port used for io_delay: POST diagnostic port, writes to it are harmless. */
#define IO_DELAY_PORT 0x80
/* EFLAGS.IF */
#define IO_EFLAGS_IF 0x200u

/* Read one byte from port. */
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %w1, %b0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

/* Write one byte to port. */
static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %b0, %w1" : : "a"(v), "Nd"(port) : "memory");
}

/* Read one 16-bit word from port. */
static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %w1, %w0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

/* Write one 16-bit word to port. */
static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %w0, %w1" : : "a"(v), "Nd"(port) : "memory");
}

/* Read one 32-bit dword from port. */
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %w1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

/* Write one 32-bit dword to port. */
static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %w1" : : "a"(v), "Nd"(port) : "memory");
}

/* Read count 16-bit words from port into buf (rep insw; ES must map like DS). */
static inline void insw(uint16_t port, void *buf, size_t count)
{
	__asm__ volatile("cld; rep insw"
			 : "+D"(buf), "+c"(count) : "d"(port) : "memory");
}

/* Read count 32-bit dwords from port into buf (rep insl; ES must map like DS). */
static inline void insl(uint16_t port, void *buf, size_t count)
{
	__asm__ volatile("cld; rep insl"
			 : "+D"(buf), "+c"(count) : "d"(port) : "memory");
}

/* Write count 16-bit words from buf to port (rep outsw). */
static inline void outsw(uint16_t port, const void *buf, size_t count)
{
	__asm__ volatile("cld; rep outsw"
			 : "+S"(buf), "+c"(count) : "d"(port) : "memory");
}

/* Write count 32-bit dwords from buf to port (rep outsl). */
static inline void outsl(uint16_t port, const void *buf, size_t count)
{
	__asm__ volatile("cld; rep outsl"
			 : "+S"(buf), "+c"(count) : "d"(port) : "memory");
}

/* Short delay (~1 us on ISA hardware) by writing the POST port. */
static inline void io_delay(void)
{
	outb(IO_DELAY_PORT, 0);
}

/* Read the time-stamp counter (any i686 has it). */
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* Disable maskable interrupts. */
static inline void cli(void)
{
	__asm__ volatile("cli" : : : "memory");
}

/* Enable maskable interrupts. */
static inline void sti(void)
{
	__asm__ volatile("sti" : : : "memory");
}

/* Return EFLAGS and disable interrupts; pair with irq_restore(). */
static inline uint32_t irq_save(void)
{
	uint32_t flags;
	__asm__ volatile("pushfl; popl %0; cli" : "=r"(flags) : : "memory");
	return flags;
}

/* Re-enable interrupts if flags (from irq_save) had IF set. */
static inline void irq_restore(uint32_t flags)
{
	if (flags & IO_EFLAGS_IF)
		sti();
}

/* Spin-wait hint. */
static inline void cpu_relax(void)
{
	__asm__ volatile("pause" : : : "memory");
}

#endif
