/* libgcc.c: the 64-bit division helpers gcc calls on i386 (__udivdi3 & co.), since the kernel links with -nostdlib. */
#include <stdint.h>

uint64_t __udivmoddi4(uint64_t n, uint64_t d, uint64_t *rem);
uint64_t __udivdi3(uint64_t n, uint64_t d);
uint64_t __umoddi3(uint64_t n, uint64_t d);
int64_t __divdi3(int64_t n, int64_t d);
int64_t __moddi3(int64_t n, int64_t d);

/* Unsigned 64/64 divide with optional remainder; d == 0 traps like the divl it ends up executing. */
uint64_t __udivmoddi4(uint64_t n, uint64_t d, uint64_t *rem)
{
	uint64_t q = 0;

	if ((d >> 32) == 0) {
		/* Divisor fits 32 bits: two divl steps, each quotient fits 32 bits. */
		uint32_t dl = (uint32_t)d, hi = (uint32_t)(n >> 32), lo = (uint32_t)n;
		uint32_t qhi = 0, qlo, r;

		if (hi >= dl) {
			qhi = hi / dl;
			hi = hi % dl;
		}
		__asm__("divl %4" : "=a"(qlo), "=d"(r) : "a"(lo), "d"(hi), "rm"(dl));
		q = ((uint64_t)qhi << 32) | qlo;
		if (rem)
			*rem = r;
		return q;
	}
	/* Divisor >= 2^32: quotient < 2^32, plain shift-subtract over 32 bits. */
	{
		int shift = __builtin_clzll(d) - __builtin_clzll(n);
		uint64_t r = n;

		if (n < d) {
			if (rem)
				*rem = n;
			return 0;
		}
		d <<= shift;
		for (; shift >= 0; shift--, d >>= 1) {
			q <<= 1;
			if (r >= d) {
				r -= d;
				q |= 1;
			}
		}
		if (rem)
			*rem = r;
		return q;
	}
}

/* Unsigned 64-bit quotient. */
uint64_t __udivdi3(uint64_t n, uint64_t d)
{
	return __udivmoddi4(n, d, 0);
}

/* Unsigned 64-bit remainder. */
uint64_t __umoddi3(uint64_t n, uint64_t d)
{
	uint64_t r;

	__udivmoddi4(n, d, &r);
	return r;
}

/* Signed 64-bit quotient, truncating toward zero like C. */
int64_t __divdi3(int64_t n, int64_t d)
{
	int neg = (n < 0) != (d < 0);
	uint64_t q = __udivmoddi4(n < 0 ? -(uint64_t)n : (uint64_t)n,
				  d < 0 ? -(uint64_t)d : (uint64_t)d, 0);
	return neg ? -(int64_t)q : (int64_t)q;
}

/* Signed 64-bit remainder, sign of the dividend like C. */
int64_t __moddi3(int64_t n, int64_t d)
{
	uint64_t r;

	__udivmoddi4(n < 0 ? -(uint64_t)n : (uint64_t)n, d < 0 ? -(uint64_t)d : (uint64_t)d, &r);
	return n < 0 ? -(int64_t)r : (int64_t)r;
}
