/* regs.h: the guest register frame saved by the real-mode stubs; the one source of truth for asm and C. */
#ifndef REGS_H
#define REGS_H

#include <stdint.h>
#include <stddef.h>

/*
 * Filled by the 16-bit entry stub (boot/realmode.asm) from the guest's
 * registers, handed to the C handler, written back to the guest on return.
 * The asm side uses the RM_REGS_* offsets below (boot/regs.inc must match:
 * the static asserts keep them in step).
 */
struct rm_regs {
	uint32_t eax;
	uint32_t ebx;
	uint32_t ecx;
	uint32_t edx;
	uint32_t esi;
	uint32_t edi;
	uint32_t ebp;
	uint16_t ds;
	uint16_t es;
	uint16_t flags;   /* the guest's FLAGS image: the handler sets/clears CF (bit 0) */
	uint16_t vector;  /* which interrupt brought us here (0x13, 0x15, ...) */
} __attribute__((packed));

#define RM_REGS_EAX 0
#define RM_REGS_EBX 4
#define RM_REGS_ECX 8
#define RM_REGS_EDX 12
#define RM_REGS_ESI 16
#define RM_REGS_EDI 20
#define RM_REGS_EBP 24
#define RM_REGS_DS 28
#define RM_REGS_ES 30
#define RM_REGS_FLAGS 32
#define RM_REGS_VECTOR 34
#define RM_REGS_SIZE 36
_Static_assert(offsetof(struct rm_regs, eax) == RM_REGS_EAX, "frame");
_Static_assert(offsetof(struct rm_regs, ebx) == RM_REGS_EBX, "frame");
_Static_assert(offsetof(struct rm_regs, ecx) == RM_REGS_ECX, "frame");
_Static_assert(offsetof(struct rm_regs, edx) == RM_REGS_EDX, "frame");
_Static_assert(offsetof(struct rm_regs, esi) == RM_REGS_ESI, "frame");
_Static_assert(offsetof(struct rm_regs, edi) == RM_REGS_EDI, "frame");
_Static_assert(offsetof(struct rm_regs, ebp) == RM_REGS_EBP, "frame");
_Static_assert(offsetof(struct rm_regs, ds) == RM_REGS_DS, "frame");
_Static_assert(offsetof(struct rm_regs, es) == RM_REGS_ES, "frame");
_Static_assert(offsetof(struct rm_regs, flags) == RM_REGS_FLAGS, "frame");
_Static_assert(offsetof(struct rm_regs, vector) == RM_REGS_VECTOR, "frame");
_Static_assert(sizeof(struct rm_regs) == RM_REGS_SIZE, "frame");

#define RM_FLAG_CF 0x0001u

/* 8/16-bit views of the 32-bit registers. */
#define RM_AH(r) ((uint8_t)((r)->eax >> 8))
#define RM_AL(r) ((uint8_t)(r)->eax)
#define RM_SET_AH(r, v) ((r)->eax = ((r)->eax & ~0xFF00u) | ((uint32_t)(uint8_t)(v) << 8))
#define RM_SET_AL(r, v) ((r)->eax = ((r)->eax & ~0xFFu) | (uint8_t)(v))
#define RM_SET_AX(r, v) ((r)->eax = ((r)->eax & ~0xFFFFu) | (uint16_t)(v))
#define RM_SET_BX(r, v) ((r)->ebx = ((r)->ebx & ~0xFFFFu) | (uint16_t)(v))
#define RM_SET_CX(r, v) ((r)->ecx = ((r)->ecx & ~0xFFFFu) | (uint16_t)(v))
#define RM_SET_DX(r, v) ((r)->edx = ((r)->edx & ~0xFFFFu) | (uint16_t)(v))

#endif
