/* realmode.h: the C view of boot/realmode.asm: relocation, the low stub, and calls into real mode. */
#ifndef REALMODE_H
#define REALMODE_H

#include <stdint.h>
#include "../kernel/regs.h"

/* TSC value read first thing at the multiboot entry. */
extern uint64_t boot_tsc;
/* Kernel pointer to the live low stub (set by rm_place_stub). */
extern uint8_t *rm_low;

/* Copy the running image (with its stack) to physical new_base and continue there. */
void rm_relocate(uint32_t new_base);
/* Copy the low stub to linear (16-aligned, in conventional memory) and make it the live one. */
void rm_place_stub(uint32_t linear);
/* Real mode (works before and without rm_place_stub): INT vec with *r's registers (far call through the IVT, IF=1); results and FLAGS back into *r. */
void rm_call(uint32_t vec, struct rm_regs *r);
/* Real mode: DL=drive, other registers 0, SS:SP=0:7C00, STI, jump to 0:7C00. */
void rm_boot(uint32_t drive) __attribute__((noreturn));
/* Real mode: STI; HLT forever. */
void rm_halt(void) __attribute__((noreturn));

/* The resident stub image inside the kernel (copied by rm_place_stub). */
extern uint8_t rm_stub_start[], rm_stub_end[];
/* The boot-time stub (trip B), copied to 0:0600 by every rm_call/rm_boot/rm_halt. */
extern uint8_t rm_boot_start[], rm_boot_end[];
/* Entry points and variables inside the stub (use RM_OFF / RM_LIVE). */
extern uint8_t rm_int13_entry[], rm_int15_entry[], rm_int18_entry[], rm_int19_entry[];
extern uint8_t rm_ndrives[], rm_bios_hd[], rm_orig13[], rm_orig15[], rm_orig18[], rm_orig19[];
extern uint8_t rm_calls[], rm_v86_count[], rm_busy_count[], rm_tag[];

/* Offset of a stub symbol from the stub's start (its real-mode offset). */
#define RM_OFF(sym) ((uint16_t)((uint8_t *)(sym) - rm_stub_start))
/* Pointer to a stub symbol in the live low copy. */
#define RM_LIVE(type, sym) ((type *)(rm_low + RM_OFF(sym)))

/* Called by the stub in 32-bit PM for every hooked INT (frame in low memory). */
void rm_dispatch(struct rm_regs *r);
/* C entry from _start: magic and physical multiboot info pointer. */
void kmain(uint32_t magic, uint32_t mbi_phys) __attribute__((noreturn));

#endif
