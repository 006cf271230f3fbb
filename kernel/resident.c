/* resident.c: installs the resident INT 13h/15h/18h/19h hooks and routes the stub's calls to C (rm_dispatch). */
#include "resident.h"
#include "mem.h"
#include "phys.h"
#include "int13.h"
#include "int15.h"
#include "console.h"
#include "string.h"
#include "../boot/realmode.h"
#include "../block/disk.h"        /* disk_get: which BIOS disk a drive's data lies on */

#define BDA_BASE_KB 0x413u        /* 40:13 conventional memory in KiB (INT 12h) */
#define BDA_NUM_HD 0x475u         /* 40:75 hard disk count */
#define BLK_SECTOR_BYTES 512u     /* the least bounce buffer: one sector */

struct resident_info resident;

/* Little-endian 16/32-bit access to low physical memory. */
static uint16_t rd16(uint32_t phys) { return *(volatile uint16_t *)phys_ptr(phys); }
static void wr16(uint32_t phys, uint16_t v) { *(volatile uint16_t *)phys_ptr(phys) = v; }
static uint32_t rd32(uint32_t phys) { return *(volatile uint32_t *)phys_ptr(phys); }
static void wr32(uint32_t phys, uint32_t v) { *(volatile uint32_t *)phys_ptr(phys) = v; }

uint8_t resident_bios_hd(void)
{
	return *(volatile uint8_t *)phys_ptr(BDA_NUM_HD);
}

/* Report refusals the stub counted while it could not reach C (V86 mode, re-entry); serial only by now. */
static void resident_report_refusals(void)
{
	static uint16_t seen_v86, seen_busy;
	uint16_t v86 = *RM_LIVE(volatile uint16_t, rm_v86_count);
	uint16_t busy = *RM_LIVE(volatile uint16_t, rm_busy_count);
	if (v86 != seen_v86)
		con_printf("resident: %u INT 13h call(s) refused with AH=01h: CPU in V86 mode (EMM386/Windows 9x?)\n",
			   (unsigned)(uint16_t)(v86 - seen_v86));
	if (busy != seen_busy)
		con_printf("resident: %u INT 13h call(s) refused with AH=01h: re-entered while busy\n",
			   (unsigned)(uint16_t)(busy - seen_busy));
	seen_v86 = v86;
	seen_busy = busy;
	if (!rm_low)
		return;
	static uint32_t seen_fails, said_calls;
	uint32_t fails = *RM_LIVE(volatile uint32_t, rm_fast_fails);
	uint32_t calls = *RM_LIVE(volatile uint32_t, rm_fast_calls);
	if (fails != seen_fails)
		con_printf("resident: fast path: %u AH=42h/43h request(s) failed in the BIOS; handed to the handler, which retries\n",
			   (unsigned)(fails - seen_fails));
	seen_fails = fails;
	if (calls >= 2 * said_calls && calls) {   /* at 1, 2, 4, 8, ...: tests and logs see that the fast path is in use */
		con_printf("resident: fast path: %u AH=42h/43h request(s) served in real mode so far\n", (unsigned)calls);
		said_calls = calls;
	}
}

/* INT 18h/19h from the guest: say so on COM1 and the screen, then halt with interrupts on; never returns. */
static void __attribute__((noreturn)) resident_guest_stopped(uint16_t vector)
{
	con_set_targets(CON_SERIAL | CON_VGA);
	if (vector == 0x18)
		con_printf("\nvhdboot: the guest gave up booting (INT 18h: no bootable disk or boot failure).\n"
			   "vhdboot: system halted; check the VHD's boot code, then reset.\n");
	else
		con_printf("\nvhdboot: the guest called INT 19h (bootstrap/reboot request).\n"
			   "vhdboot: system halted; reset the machine to boot again.\n");
	rm_halt();
}

#ifdef VHDBOOT_PROFILE
#include "io.h"                   /* rdtsc */
extern uint8_t rm_prof_in[], rm_prof_out[];
#define RES_PROF_EVERY 2048u

/* Profile build: cycles per call of each part of the guest's INT 13h round trip, summed over RES_PROF_EVERY calls. */
static struct {
	uint64_t enter, handler, leave, guest, last_end;
	uint32_t n;
} res_prof;

/* Profile build, at C entry (t0) and exit (t1): account one call; every RES_PROF_EVERY calls, log the means. */
static void resident_profile(uint64_t t0, uint64_t t1)
{
	uint64_t in = *RM_LIVE(volatile uint64_t, rm_prof_in), out = *RM_LIVE(volatile uint64_t, rm_prof_out);
	if (res_prof.last_end && out > res_prof.last_end && in > out) {
		res_prof.leave += out - res_prof.last_end;   /* the previous call: C exit -> real mode */
		res_prof.guest += in - out;                  /* the guest between two calls, the stub's entry included */
	}
	res_prof.enter += t0 - in;
	res_prof.handler += t1 - t0;
	if (++res_prof.n == RES_PROF_EVERY) {
		con_printf("prof: %u calls, cycles per call: enter %u, handler %u, leave %u, guest+stub entry %u\n",
			   res_prof.n, (unsigned)(res_prof.enter / res_prof.n), (unsigned)(res_prof.handler / res_prof.n),
			   (unsigned)(res_prof.leave / res_prof.n), (unsigned)(res_prof.guest / res_prof.n));
		res_prof.enter = res_prof.handler = res_prof.leave = res_prof.guest = 0;
		res_prof.n = 0;
	}
	res_prof.last_end = rdtsc();
}
#endif

void rm_dispatch(struct rm_regs *r)
{
#ifdef VHDBOOT_PROFILE
	uint64_t t0 = rdtsc();
#endif
	resident_report_refusals();
	if (rm_low) {                 /* calls the stub's fast path answered: their drives' stored status is 00h */
		volatile uint8_t *done = RM_LIVE(volatile uint8_t, rm_fast_done);
		if (*done) {
			int13_note_ok(*done);
			*done = 0;
		}
	}
	switch (r->vector) {
	case 0x13:
		int13_handle(r);
		break;
	case 0x15:
		int15_handle(r);
		break;
	case 0x18:
	case 0x19:
		resident_guest_stopped(r->vector);
	default:                      /* cannot happen: the stub only sends these */
		RM_SET_AH(r, 0x01);
		r->flags |= RM_FLAG_CF;
		break;
	}
#ifdef VHDBOOT_PROFILE
	if (r->vector == 0x13)
		resident_profile(t0, rdtsc());
#endif
}

int resident_install(uint8_t ndrives, int bios_calls, uint32_t table_bytes)
{
	/*
	 * Layout, from the new 40:13 (a page boundary) up to the old one:
	 *   code page: [hand-over table][stub code][bounce buffer]   only the bounce buffer is written per call
 *            (BIOS-backend requests only; it does not fit in the variables' page beside a usable stack)
	 *   4 KiB on:  [stub variables][real-mode stack][scratch]    written on every call
	 * The variables sit RM_OFF(rm_stub_data) = 4 KiB after the stub's start
	 * (boot/realmode.asm), so they are in the next page whatever the
	 * table's size. Why a page of its own for the code: under an emulator
	 * that translates code (QEMU TCG) every write into a page holding
	 * translated code takes a slow path; with the variables next to the
	 * code, that doubled the cost of a trip (docs/perf.md).
	 */
	uint32_t code = (RM_OFF(rm_stub_code_end) + 15u) & ~15u;
	uint32_t data_off = RM_OFF(rm_stub_data);
	uint32_t vars = ((uint32_t)(rm_stub_end - rm_stub_data) + 15u) & ~15u;
	uint32_t tab = (table_bytes + 15u) & ~15u;
	uint32_t bounce = bios_calls ? RESIDENT_BOUNCE : 0;
	/* A large hand-over table (a file in many extents) leaves less of the code page: a smaller bounce buffer,
	 * at least one sector (guest buffers below 1 MiB never use it; see drivers/biosdisk.c). */
	if (bounce && tab + code + bounce > 4096u && tab + code + BLK_SECTOR_BYTES <= 4096u)
		bounce = (4096u - tab - code) & ~(BLK_SECTOR_BYTES - 1u);
	uint32_t data_need = vars + (bios_calls ? RESIDENT_RM_STACK + RESIDENT_SCRATCH : 0);
	uint16_t old_kb = rd16(BDA_BASE_KB);
	uint32_t top = (uint32_t)old_kb * 1024u;
	if (old_kb > 640 || table_bytes > 4096u || tab + code + bounce > 4096u || data_off < 4096u ||
	    top < 64u * 1024u + tab + data_off + data_need)
		return -1;
	uint32_t page = (top - tab - data_off - data_need) & ~0xFFFu;   /* the highest page that fits it all */
	uint32_t lin = page + tab;                                      /* the stub */
	uint32_t kb = (top - page) / 1024u;
	if (kb > RESIDENT_MAX_LOW_KB || old_kb < 64 + kb)
		return -1;
	uint16_t new_kb = (uint16_t)(old_kb - kb);

	memset(&resident, 0, sizeof(resident));
	resident.stub_bytes = data_off + (uint32_t)(rm_stub_end - rm_stub_data);   /* code to the last variable */
	resident.table_linear = table_bytes ? page : 0;
	if (bios_calls) {
		resident.bounce_bytes = bounce;
		resident.bounce_linear = lin + code;
		resident.scratch_linear = top - RESIDENT_SCRATCH;
		resident.stack_top = resident.scratch_linear - lin;   /* the stack: from the variables up to the scratch */
	}
	resident.old_base_kb = old_kb;
	resident.new_base_kb = new_kb;
	resident.bios_hd = resident_bios_hd();
	resident.ndrives = ndrives;
	resident.orig13 = rd32(0x13 * 4);
	resident.orig15 = rd32(0x15 * 4);
	resident.orig18 = rd32(0x18 * 4);
	resident.orig19 = rd32(0x19 * 4);

	/* Fill the stub's variables in the image, then copy it down. */
	*rm_ndrives = ndrives;
	*rm_bios_hd = resident.bios_hd;
	memcpy(rm_orig13, &resident.orig13, 4);
	memcpy(rm_orig15, &resident.orig15, 4);
	memcpy(rm_orig18, &resident.orig18, 4);
	memcpy(rm_orig19, &resident.orig19, 4);
	rm_place_stub(lin, resident.stack_top);
	resident.stub_linear = lin;
	resident.low_kb = kb;

	/* Interrupts are off (we are in PM): no INT can see a half-patched table. */
	uint16_t seg = (uint16_t)(lin >> 4);
	wr16(BDA_BASE_KB, new_kb);
	*(volatile uint8_t *)phys_ptr(BDA_NUM_HD) = (uint8_t)(resident.bios_hd + ndrives);
	wr32(0x13 * 4, (uint32_t)seg << 16 | RM_OFF(rm_int13_entry));
	wr32(0x15 * 4, (uint32_t)seg << 16 | RM_OFF(rm_int15_entry));
	wr32(0x18 * 4, (uint32_t)seg << 16 | RM_OFF(rm_int18_entry));
	wr32(0x19 * 4, (uint32_t)seg << 16 | RM_OFF(rm_int19_entry));
	return 0;
}

/* The disk registry's entry whose whole-disk device is blk, or NULL. */
static struct disk *resident_disk_of(const struct blk_dev *blk)
{
	for (int i = 0; i < disk_count(); i++)
		if (disk_get(i)->blk == blk)
			return disk_get(i);
	return 0;
}

/* Drives whose row is a window (a dynamic image's block), moved by resident_fast_moved; 0: not one. */
static uint8_t resident_win[RESIDENT_FAST_MAX];

/*
 * Why drive 80h+n on BIOS disk k cannot have a fast row (vec: the INT 13h
 * vector the rows share so far, 0: none yet), or NULL.
 */
static const char *resident_fast_refusal(unsigned n, const struct int13_drive *d, const struct disk *k, uint32_t vec)
{
	if (int13_trace_hook)
		return "trace logs every call";
	if (!(k->flags & DISK_EDD))
		return "the BIOS has no AH=42h for that disk";
	if (!resident.stack_top)
		return "no real-mode stack was reserved for BIOS calls";
	if (n >= RESIDENT_FAST_MAX)
		return "only the first 4 drives have a row";
	if (d->sectors >> 32)
		return "the drive has 2^32 sectors or more";
	if (vec && k->bios_vec != vec)
		return "another drive's BIOS disk is behind another INT 13h vector";
	return 0;
}

/* Fill row n: BIOS drive of k, writable unless d is read-only, virtual [lo, hi) at start + s of the disk;
 * shift > 0: a table row (RESIDENT_FT_TABLE, blocks of 2^shift sectors from its window table, start unused). */
static void resident_fast_row(unsigned n, const struct int13_drive *d, const struct disk *k, uint64_t start,
			      uint32_t lo, uint32_t hi, unsigned shift)
{
	uint8_t *row = RM_LIVE(uint8_t, rm_fast_tab) + n * RM_FT_SIZE;
	row[0] = 0;               /* off while it changes (nothing runs the stub meanwhile; kept simple) */
	row[1] = (uint8_t)(1u << n);
	row[2] = (uint8_t)((d->read_only ? 0 : RESIDENT_FT_WRITABLE) | (shift ? RESIDENT_FT_TABLE : 0));
	row[3] = (uint8_t)shift;
	memcpy(row + 4, &start, 8);
	memcpy(row + 12, &hi, 4);
	memcpy(row + 16, &lo, 4);
	row[0] = k->channel;
}

/* Drive n's window table entry for block blk (direct-mapped: slot blk & (K - 1)). */
static uint8_t *resident_wt_entry(unsigned n, uint32_t blk)
{
	return RM_LIVE(uint8_t, rm_fast_wt) + (n * RESIDENT_WT_K + (blk & (RESIDENT_WT_K - 1u))) * RM_WT_ENTRY;
}

/* Does drive n's window table hold block blk? */
static int resident_wt_has(unsigned n, uint32_t blk)
{
	uint32_t tag;
	memcpy(&tag, resident_wt_entry(n, blk), 4);
	return tag == blk + 1u;
}

/*
 * Put block blk of drive n (d) into its window table when it is a plain
 * copy of a BIOS disk's sectors (d->dev->window: a fully written block of
 * a file that is one run of the disk; reads its bitmap), switching the
 * row on as a table row the first time. Returns 1 if it went in, else 0
 * (the slot keeps what it held: a window stays true while the image is
 * open, so an older block's entry is still right).
 */
static int resident_wt_fill(unsigned n, struct int13_drive *d, uint32_t blk, unsigned shift)
{
	uint64_t lba = (uint64_t)blk << shift, start, lo, hi, below = 0;
	struct blk_dev *under;
	if (lba >= d->sectors || !d->dev->window(d->dev, lba, &under, &start, &lo, &hi) || hi > d->sectors ||
	    lo != lba || hi - lo > d->dev->window_unit)
		return 0;
	struct disk *k = resident_disk_of(blk_linear_bottom(under, &below));
	uint32_t vec;
	memcpy(&vec, RM_LIVE(uint8_t, rm_fast_vec), 4);
	if (!k || !(k->flags & DISK_RMCALL) || resident_fast_refusal(n, d, k, vec))
		return 0;
	uint8_t *row = RM_LIVE(uint8_t, rm_fast_tab) + n * RM_FT_SIZE;
	if (row[0] && row[0] != k->channel)
		return 0;         /* (one image file, one disk: cannot happen) */
	if (!vec)
		memcpy(RM_LIVE(uint8_t, rm_fast_vec), &k->bios_vec, 4);
	uint8_t *e = resident_wt_entry(n, blk);
	uint64_t at = below + start;  /* the disk's sector of virtual sector 0, mod 2^64: at + lba for lba in the block */
	uint32_t tag = blk + 1u;
	memcpy(e + 4, &at, 8);
	memcpy(e, &tag, 4);
	if (!row[0])
		resident_fast_row(n, d, k, 0, 0, (uint32_t)d->sectors, shift);
	return 1;
}

/* Per window drive: the block after the last one resident_fast_moved filled (a sequential reader's next miss). */
static uint32_t resident_wt_next[RESIDENT_FAST_MAX];

/*
 * int13_moved_hook: after the C path moved sectors of a window drive, the
 * block it touched goes into the row's window table when it is a plain
 * copy of a BIOS disk's sectors (resident_wt_fill), and when that miss
 * follows the last fill (a sequential reader) the next RESIDENT_WT_K - 1
 * blocks too, so that the stub crosses K blocks before C sees the reader
 * again: 1 C request per K blocks instead of one per block; a scattered
 * reader costs one bitmap per miss, as before.
 */
static void resident_fast_moved(struct int13_drive *d, uint64_t lba, uint32_t count)
{
	unsigned n = 0;
	while (n < RESIDENT_FAST_MAX && int13_get_drive((uint8_t)(0x80 + n)) != d)
		n++;
	if (n >= RESIDENT_FAST_MAX || !resident_win[n] || !d->dev->window || !count)
		return;
	unsigned shift = 0;
	while (shift < 31 && (1u << shift) < d->dev->window_unit)
		shift++;
	if (!d->dev->window_unit || (1u << shift) != d->dev->window_unit || (lba + count) >> (shift + 32))
		return;
	uint32_t first = (uint32_t)(lba >> shift), last = (uint32_t)((lba + count - 1) >> shift);
	if (resident_wt_has(n, first) && resident_wt_has(n, last))
		return;           /* in the table already (the stub passed it on: buffer, flags, a BIOS error, two blocks) */
	uint32_t ahead = first == resident_wt_next[n] ? RESIDENT_WT_K : 1u;
	uint32_t end = last + ahead;
	if (end < last)
		end = last;
	for (uint32_t b = first;; b++) {
		if (!resident_wt_has(n, b))
			resident_wt_fill(n, d, b, shift);
		if (b == end - 1u || b == UINT32_MAX)
			break;
	}
	resident_wt_next[n] = end;
}

int resident_fast_setup(void)
{
	if (!rm_low)
		return 0;
	uint8_t *tab = RM_LIVE(uint8_t, rm_fast_tab);
	uint32_t vec = 0;
	int served = 0;
	memset(tab, 0, RESIDENT_FAST_MAX * RM_FT_SIZE);
	memset(RM_LIVE(uint8_t, rm_fast_wt), 0, RESIDENT_FAST_MAX * RESIDENT_WT_K * RM_WT_ENTRY);   /* resident copy only: never copied */
	for (unsigned n = 0; n < resident.ndrives; n++) {
		struct int13_drive *d = int13_get_drive((uint8_t)(0x80 + n));
		if (!d)
			break;
		uint64_t start = 0;
		struct blk_dev *bottom = blk_linear_bottom(d->dev, &start);
		struct disk *k = resident_disk_of(bottom);
		if (!k && d->dev->window && n < RESIDENT_FAST_MAX && !int13_trace_hook && resident.stack_top &&
		    !(d->sectors >> 32)) {
			/* A dynamic image: its row follows the block the C path last moved (resident_fast_moved). */
			resident_win[n] = 1;
			int13_moved_hook = resident_fast_moved;
			con_printf("resident: %02xh: AH=42h/43h inside a fully written block the handler served last go "
				   "straight to the BIOS in real mode, when the image's file is one run of a BIOS disk\n", 0x80 + n);
			continue;
		}
		if (!k || !(k->flags & DISK_RMCALL))
			continue;         /* a native driver, a module, a file in pieces: nothing to say */
		const char *why = resident_fast_refusal(n, d, k, vec);
		if (why) {
			con_printf("resident: %02xh: AH=42h/43h through the handler (%s)\n", 0x80 + n, why);
			continue;
		}
		resident_fast_row(n, d, k, start, 0, (uint32_t)d->sectors, 0);
		vec = k->bios_vec;
		served++;
		con_printf("resident: %02xh: AH=42h %swith buffers below %05x go straight to the BIOS in real mode (%s = BIOS %02xh, from its sector %llu)\n",
			   0x80 + n, d->read_only ? "" : "and 43h ", (unsigned)resident.new_base_kb * 1024u, k->label,
			   k->channel, (unsigned long long)start);
	}
	uint32_t lo = (uint32_t)resident.new_base_kb * 1024u;
	memcpy(RM_LIVE(uint8_t, rm_fast_lo), &lo, 4);
	memcpy(RM_LIVE(uint8_t, rm_fast_vec), &vec, 4);   /* the rows last: a drive byte of 0 keeps a row off */
	return served;
}

/* Restore one vector saved in orig if it still holds ours. */
static void resident_unhook(uint8_t vec, uint8_t *entry, uint32_t orig)
{
	uint32_t ours = (resident.stub_linear >> 4) << 16 | RM_OFF(entry);
	if (rd32(vec * 4u) == ours)
		wr32(vec * 4u, orig);
}

void resident_uninstall(void)
{
	if (!resident.low_kb)
		return;
	resident_unhook(0x13, rm_int13_entry, resident.orig13);
	resident_unhook(0x15, rm_int15_entry, resident.orig15);
	resident_unhook(0x18, rm_int18_entry, resident.orig18);
	resident_unhook(0x19, rm_int19_entry, resident.orig19);
	if (rd16(BDA_BASE_KB) == resident.new_base_kb)
		wr16(BDA_BASE_KB, resident.old_base_kb);
	*(volatile uint8_t *)phys_ptr(BDA_NUM_HD) = resident.bios_hd;
	resident.low_kb = 0;
	rm_low = 0;               /* trips B use the boot copy again */
}

/* FNV-1a over the n / 4 little-endian dwords at p (the hash the guest programs use). */
static uint32_t resident_fnv(const uint8_t *p, uint32_t n)
{
	uint32_t h = 0x811C9DC5u;
	__asm__("" : "+r"(p));        /* p may be the image's link address 0: not a null pointer to the compiler */
	for (uint32_t i = 0; i + 4 <= n; i += 4) {
		uint32_t d;
		memcpy(&d, p + i, 4);
		h = (h ^ d) * 0x01000193u;
	}
	return h;
}

void resident_checksum_log(void)
{
	extern uint8_t __ro_end[];
	uint32_t ro = (uint32_t)(uintptr_t)__ro_end;
	uint32_t off = (uint32_t)(rm_int13_body - rm_stub_start);   /* the safe hook's vector: set at install */
	uint32_t len = (uint32_t)(rm_stub_code_end - rm_int13_body) & ~3u;   /* the code page only */
	con_printf("resident: checksum fnv=%08x of code+rodata (%u bytes at %08x), stub code fnv=%08x (%u bytes at %05x)\n",
		   resident_fnv(phys_ptr(kernel_base), ro), ro, kernel_base,
		   resident_fnv(phys_ptr(resident.stub_linear + off), len), len, resident.stub_linear + off);
}

void resident_lowbuf(struct resident_lowbuf *lb)
{
	if (!resident.low_kb) {   /* before the guest runs: 0600h (stub copy) .. 7000h, all ours */
		lb->scratch = RESIDENT_BOOT_SCRATCH;
		lb->bounce = RESIDENT_BOOT_BOUNCE;
		lb->bounce_bytes = RESIDENT_BOOT_BOUNCE_BYTES;
		lb->lo = 0x0500u;
		lb->hi = RESIDENT_BOOT_BOUNCE + RESIDENT_BOOT_BOUNCE_BYTES;
	} else {
		lb->scratch = resident.scratch_linear;
		lb->bounce = resident.bounce_linear;
		lb->bounce_bytes = resident.bounce_bytes;
		lb->lo = (uint32_t)resident.new_base_kb * 1024u;
		lb->hi = (uint32_t)resident.old_base_kb * 1024u;
	}
}
