/* realmode.h: the C view of boot/realmode.asm: relocation, the low stub, and calls into real mode. */
#ifndef REALMODE_H
#define REALMODE_H

#include <stdint.h>
#include "../kernel/regs.h"

/* TSC value read first thing at the multiboot entry. */
extern uint64_t boot_tsc;
/* Kernel pointer to the resident stub copy (set by rm_place_stub; 0 before, or after resident_uninstall). */
extern uint8_t *rm_low;

/* Copy the running image (with its stack) to physical new_base and continue there. */
void rm_relocate(uint32_t new_base);
/* Copy the stub to linear (16-aligned, in conventional memory) and make it the resident copy; stack_top: offset of the real-mode stack trip B uses from the resident handler (0 = none reserved: the stack INT came in on). */
void rm_place_stub(uint32_t linear, uint32_t stack_top);

#define RM_OP_INT 0u      /* INT arg, through the IVT */
#define RM_OP_BOOT 1u     /* jump to 0:7C00 with DL = arg; no return */
#define RM_OP_HALT 2u     /* STI; HLT forever; no return */
#define RM_OP_FAR 3u      /* far call to arg = seg << 16 | off, as INT would (PUSHF first) */
/* Trip B (real mode, IF=1, works before and without rm_place_stub, also from the resident handler): op with *r's registers; results and FLAGS back into *r. Returns 0, or -1 if refused (trips nested too deep; *r untouched). */
int rm_trip(uint32_t op, uint32_t arg, struct rm_regs *r);
/* Real mode: INT vec with *r's registers (far call through the IVT, so hooks are taken); 0 or -1 as rm_trip. */
static inline int rm_call(uint32_t vec, struct rm_regs *r) { return rm_trip(RM_OP_INT, vec, r); }
/* Real mode: far call to segoff (seg << 16 | off, e.g. a saved INT vector) as INT would; 0 or -1 as rm_trip. */
static inline int rm_farcall(uint32_t segoff, struct rm_regs *r) { return rm_trip(RM_OP_FAR, segoff, r); }
/* Real mode: DL=drive, other registers 0, SS:SP=0:7C00, STI, jump to 0:7C00. */
void rm_boot(uint32_t drive) __attribute__((noreturn));
/* Real mode: STI; HLT forever. */
void rm_halt(void) __attribute__((noreturn));
/* Trips B in flight, made and refused (statistics and tests). */
extern volatile uint32_t rm_trip_depth, rm_trips, rm_trips_refused;

/* The real-mode stub image inside the kernel (copied by rm_place_stub, and to 0:0600 for boot-time trips):
 * code [rm_stub_start, rm_stub_code_end), its variables [rm_stub_data, rm_stub_end) 4 KiB after its start. */
extern uint8_t rm_stub_start[], rm_stub_end[], rm_stub_code_end[], rm_stub_data[];
/* Entry points and variables inside the stub (use RM_OFF / RM_LIVE). */
extern uint8_t rm_int13_body[];  /* after the safe-hook header (whose previous vector is set at install) */
extern uint8_t rm_int13_entry[], rm_int15_entry[], rm_int18_entry[], rm_int19_entry[];
extern uint8_t rm_ndrives[], rm_bios_hd[], rm_orig13[], rm_orig15[], rm_orig18[], rm_orig19[];
extern uint8_t rm_calls[], rm_v86_count[], rm_busy_count[], rm_tag[];
/* The AH=42h/43h real-mode fast path (rm_fast13): its rows, the BIOS vector, the buffer limit, counters, done mask. */
extern uint8_t rm_fast_tab[], rm_fast_vec[], rm_fast_lo[], rm_fast_calls[], rm_fast_fails[], rm_fast_done[];
#define RM_FT_SIZE 32u            /* one rm_fast_tab row: drive, bit, flags, shift, start (64-bit), end (32-bit), first (32-bit), pad */
/* Its window table (resident copy only, after rm_stub_boot_end): a row of RESIDENT_WT_K entries per drive. */
extern uint8_t rm_fast_wt[], rm_stub_boot_end[];
#define RM_WT_ENTRY 12u           /* one entry: tag (block + 1, 32-bit; 0 empty), start (64-bit: the disk's sector of its virtual 0) */

/* Offset of a stub symbol from the stub's start (its real-mode offset). */
#define RM_OFF(sym) ((uint16_t)((uint8_t *)(sym) - rm_stub_start))
/* Pointer to a stub symbol in the live low copy. */
#define RM_LIVE(type, sym) ((type *)(rm_low + RM_OFF(sym)))

/* Called by the stub in 32-bit PM for every hooked INT (frame in low memory). */
void rm_dispatch(struct rm_regs *r);
/* C entry from _start: magic and physical multiboot info pointer. */
void kmain(uint32_t magic, uint32_t mbi_phys) __attribute__((noreturn));

#endif
