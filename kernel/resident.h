/* resident.h: installing the resident hook: low stub below 40:13, IVT vectors 13h/15h/18h/19h, BDA disk count. */
#ifndef RESIDENT_H
#define RESIDENT_H

#include <stdint.h>

#define RESIDENT_MAX_LOW_KB 12u         /* most conventional memory we take (a code page, a data page, rounding) */
#define RESIDENT_RM_STACK 768u          /* least real-mode stack kept for BIOS calls from the resident handler */
#define RESIDENT_BOUNCE 2048u           /* resident bounce buffer for BIOS disk calls (4 sectors; less, down to 1, beside a large hand-over table) */
#define RESIDENT_SCRATCH 96u            /* resident scratch for a BIOS call's packet (DAP, AH=48h buffer) */
#define RESIDENT_BOOT_SCRATCH 0x1780u   /* boot-time scratch: linear 1780h-17FFh (after the boot copy's variables at 1600h) */
#define RESIDENT_BOOT_BOUNCE 0x1800u    /* boot-time bounce buffer: linear 1800h-6FFFh (free until the guest runs) */
#define RESIDENT_BOOT_BOUNCE_BYTES 0x5800u

/* What resident_install did (for the log and the guest-memory checks). */
struct resident_info {
	uint32_t stub_linear;     /* where the low stub lives */
	uint32_t stub_bytes;      /* its size: code, gap, variables (RM_OFF(rm_stub_data) + their size) */
	uint32_t stack_top;       /* real-mode stack for BIOS calls: stub_linear + [stub, stack_top); 0 if none */
	uint32_t scratch_linear;  /* resident scratch (RESIDENT_SCRATCH bytes) right above the stack, 0 if none */
	uint32_t bounce_linear;   /* resident bounce buffer (0 if none) and its size */
	uint32_t bounce_bytes;
	uint32_t low_kb;          /* KiB taken from conventional memory: [new_base_kb, old_base_kb) */
	uint32_t table_linear;    /* the hand-over table's page-aligned place below the stub (0: none) */
	uint16_t old_base_kb;     /* 40:13 before */
	uint16_t new_base_kb;     /* 40:13 after */
	uint8_t bios_hd;          /* 40:75 before */
	uint8_t ndrives;          /* emulated drives */
	uint32_t orig13, orig15, orig18, orig19;  /* previous vectors (seg << 16 | off) */
};

extern struct resident_info resident;

/*
 * Take the low memory and hook: lower 40:13 to a page boundary, copy the
 * stub there, save and patch IVT 13h/15h/18h/19h, 40:75 += ndrives. The
 * stub's code has a page of its own, its variables are in the next one
 * (see resident.c for the layout and why). bios_calls: the resident
 * handler will call the BIOS (a BIOS disk serves an image): also reserve a
 * RESIDENT_BOUNCE buffer (in the code page, after the code), a real-mode
 * stack and a RESIDENT_SCRATCH packet area (in the variables' page).
 * table_bytes > 0: also table_bytes for the hand-over table at the start of
 * the code page (resident.table_linear), so that the whole page holding it
 * is reserved, never RAM, for the OS (Linux's /dev/mem shows RAM pages
 * below 1 MiB as zeros; docs/handover.md). Call with
 * the kernel already in its resident place. Returns 0, or -1 if it does
 * not fit (RESIDENT_MAX_LOW_KB, or 40:13 looks bogus).
 */
int resident_install(uint8_t ndrives, int bios_calls, uint32_t table_bytes);
/* Low memory for a BIOS call's data (linear addresses below 1 MiB, never guest memory while the guest runs). */
struct resident_lowbuf {
	uint32_t scratch;         /* RESIDENT_SCRATCH bytes for the call's packet */
	uint32_t bounce;          /* the bounce buffer ... */
	uint32_t bounce_bytes;    /* ... and its size (0: none: no BIOS calls were planned at install) */
	uint32_t lo, hi;          /* [lo, hi): the low memory vhdboot holds now (a buffer there is never passed to the BIOS) */
};
/* The low buffers for BIOS calls now: the boot-time ones before resident_install, the resident ones after. */
void resident_lowbuf(struct resident_lowbuf *lb);
#define RESIDENT_FAST_MAX 4u             /* drives the real-mode AH=42h/43h fast path can serve (realmode.asm RM_FAST_MAX) */
#define RESIDENT_FT_WRITABLE 0x1u       /* fast path row flag: AH=43h too (realmode.asm RM_FT_WRITABLE) */
#define RESIDENT_FT_TABLE 0x2u          /* fast path row flag: a dynamic image's row: blocks from its window table (RM_FT_TABLE) */
#define RESIDENT_WT_K 8u                /* window table entries per drive, direct-mapped by block & (K - 1) (realmode.asm RM_WT_K) */
/*
 * The stub's real-mode fast path (boot/realmode.asm rm_fast13): for every
 * emulated drive whose data is a plain copy of a BIOS disk's sectors (its
 * blk_dev's linear chain ends on a DISK_RMCALL | DISK_EDD disk: a fixed
 * VHD as a whole disk or a partition on a disk the BIOS backend serves),
 * let the stub hand AH=42h reads (and AH=43h writes without verify, on a
 * writable drive) with buffers below our low memory straight to the
 * BIOS. Off with `trace` (every call must reach C). Call
 * after resident_install and int13's drives are set; logs one line per
 * drive. Returns the drives served so.
 */
int resident_fast_setup(void);
/* Undo resident_install (vectors only where they still point at us); for failures before the guest runs. */
void resident_uninstall(void);
/*
 * Log one line with FNV-1a (32-bit, over little-endian dwords) of what must
 * never change while the guest runs: the resident image's code and read-only
 * data [kernel_base, kernel_base + __ro_end) and the low stub's code
 * [stub + R(rm_int13_body), stub + R(rm_stub_code_end)) (the code page after the safe hook's header). A guest recomputes both
 * (tests/qemu/progs/qfuzz.asm) to prove its calls left our memory intact.
 */
void resident_checksum_log(void);
/* Hard disks the BIOS reports in 40:75. */
uint8_t resident_bios_hd(void);

#endif
