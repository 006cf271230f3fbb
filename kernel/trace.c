/* trace.c: the `trace` option: one COM1 line per guest INT 13h call on an emulated drive, with running totals. */
#include "guestmem.h"
#include <stdint.h>
#include "trace.h"
#include "int13.h"
#include "console.h"

/* Running totals; only touched when tracing is on. */
static struct {
	int on;
	uint32_t calls, errors;
	uint64_t sectors_read, sectors_written;
	uint32_t per_fn[256];
} trace_st;

/* CHS call (02h-04h): decoded address, LBA under the drive's geometry, sectors moved (AL out). */
static void trace_chs(const struct rm_regs *in, const struct rm_regs *out, char *buf, size_t n, uint32_t *moved)
{
	uint32_t cx = in->ecx & 0xFFFF, dh = (in->edx >> 8) & 0xFF;
	uint32_t cyl = ((cx & 0xC0) << 2) | (cx >> 8), sec = cx & 0x3F;
	const struct int13_drive *d = int13_get_drive((uint8_t)in->edx);
	uint32_t lba = d && sec ? (cyl * d->heads + dh) * d->spt + sec - 1 : 0;
	*moved = (out->flags & RM_FLAG_CF) ? RM_AL(out) : RM_AL(in);
	k_snprintf(buf, n, "chs %u/%u/%u lba %u n=%u buf %04x:%04x", cyl, dh, sec, lba, RM_AL(in),
		   in->es, (unsigned)(in->ebx & 0xFFFF));
}

/* Extended call (42h-44h, 47h): the DAP as it is after the call (its count = sectors moved). */
static void trace_dap(const struct rm_regs *in, char *buf, size_t n, uint32_t *moved)
{
	uint32_t at = ((uint32_t)in->ds << 4) + (in->esi & 0xFFFF);
	const uint8_t *dap = guestmem_ptr(at, 16);
	if (!dap) {
		k_snprintf(buf, n, "dap %04x:%04x unreadable", in->ds, (unsigned)(in->esi & 0xFFFF));
		*moved = 0;
		return;
	}
	uint64_t lba = (uint64_t)(dap[8] | dap[9] << 8 | dap[10] << 16 | (uint32_t)dap[11] << 24) |
		       (uint64_t)(dap[12] | dap[13] << 8 | dap[14] << 16 | (uint32_t)dap[15] << 24) << 32;
	uint32_t cnt = dap[2] | dap[3] << 8, off = dap[4] | dap[5] << 8, seg = dap[6] | dap[7] << 8;
	*moved = cnt;
	const uint8_t *flat = dap[0] >= 0x18 && off == 0xFFFF && seg == 0xFFFF ? guestmem_ptr(at + 16, 8) : NULL;
	if (flat)
		k_snprintf(buf, n, "lba %llu n=%u buf flat %02x%02x%02x%02x%02x%02x%02x%02x", (unsigned long long)lba, cnt,
			   flat[7], flat[6], flat[5], flat[4], flat[3], flat[2], flat[1], flat[0]);
	else
		k_snprintf(buf, n, "lba %llu n=%u buf %04x:%04x", (unsigned long long)lba, cnt, seg, off);
}

/* The hook: raw registers in and out (a stable prefix tools parse), then the decoded call. */
static void trace_hook(const struct rm_regs *in, const struct rm_regs *out)
{
	uint8_t ah = RM_AH(in);
	char what[96];
	uint32_t moved = 0;
	what[0] = 0;
	if (ah >= 0x02 && ah <= 0x04)
		trace_chs(in, out, what, sizeof(what), &moved);
	else if ((ah >= 0x42 && ah <= 0x44) || ah == 0x47)
		trace_dap(in, what, sizeof(what), &moved);
	int err = (out->flags & RM_FLAG_CF) != 0;
	con_printf("int13 ax=%04x bx=%04x cx=%04x dx=%04x es=%04x si=%04x -> ax=%04x cf=%u | dl=%02x %s %s%s%02xh\n",
		   (unsigned)(in->eax & 0xFFFF), (unsigned)(in->ebx & 0xFFFF), (unsigned)(in->ecx & 0xFFFF),
		   (unsigned)(in->edx & 0xFFFF), in->es, (unsigned)(in->esi & 0xFFFF),
		   (unsigned)(out->eax & 0xFFFF), err, (unsigned)(in->edx & 0xFF), int13_fn_name(ah), what,
		   what[0] ? " -> " : "-> ", err ? RM_AH(out) : 0);
	trace_st.calls++;
	trace_st.per_fn[ah]++;
	trace_st.errors += err;
	if (ah == 0x02 || ah == 0x42)
		trace_st.sectors_read += moved;
	else if (ah == 0x03 || ah == 0x43)
		trace_st.sectors_written += moved;
}

void trace_enable(void)
{
	trace_st.on = 1;
	int13_trace_hook = trace_hook;
	con_printf("trace: on: one COM1 line per INT 13h call on an emulated drive (raw registers | decoded call -> status)\n");
}

void trace_summary(const char *when)
{
	if (!trace_st.on)
		return;
	char fns[160];
	size_t w = 0;
	fns[0] = 0;
	for (int f = 0; f < 256 && w + 16 < sizeof(fns); f++)
		if (trace_st.per_fn[f])
			w += (size_t)k_snprintf(fns + w, sizeof(fns) - w, " %02xh x%u", f, trace_st.per_fn[f]);
	con_printf("trace: summary %s: %u calls (%s), %llu sectors read, %llu written, %u errors\n", when,
		   trace_st.calls, w ? fns + 1 : "none", (unsigned long long)trace_st.sectors_read,
		   (unsigned long long)trace_st.sectors_written, trace_st.errors);
}
