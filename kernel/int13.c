/* int13.c: INT 13h emulation for hard disks: the status rules, the function table and dispatcher, the drive registry (knows neither ATA nor VHD). */
#include <stddef.h>
#include <stdint.h>
#include "int13_priv.h"
#include "../block/disk.h"     /* disk_take_status */

/*
 * The INT 13h layer in four files: this one (dispatch, status, registry,
 * the trivial handlers), int13_rw.c (data transfers), int13_info.c
 * (08h 15h 41h 48h 4Eh) and int13_geom.c (the BIOS geometry).
 *
 * Semantics follow SeaBIOS src/disk.c (a real BIOS guests are tested on)
 * except where noted; the project notes (shared/notes/int13-emulation.md)
 * win where they are more specific. The table is kept here because the
 * dispatcher below is what turns a handler's result into AH, CF and the
 * stored status; int13_blk_status() implements the blk rows.
 *
 * Status codes (AH on return; CF set iff AH != 0, except 15h/41h whose AH
 * is data, not a status):
 *
 *  condition                                   AH   note
 *  ------------------------------------------  ---  ----------------------------
 *  success                                     00h
 *  unknown function, 16h on a hard disk        01h  SeaBIOS
 *  DL is not one of our drives                 01h
 *  02h-04h: AL = 0 or > 128, sector (CL) = 0   01h  SeaBIOS
 *  DAP size < 10h, DAP count > 127             01h  127: the Phoenix EDD limit
 *                                                   guests expect (the notes)
 *  buffer refused by guestmem_ptr()         01h  nothing moved; we never
 *  (resident memory, beyond reach, flat >4G)        report 09h (any alignment
 *                                                   works, see 48h flag bit 0)
 *  48h: caller's buffer size < 1Ah             01h  SeaBIOS
 *  4Eh: subfunction other than 01/03/04/06     01h  SeaBIOS
 *  write (03h/05h/43h) to a read-only drive    03h  nothing written
 *  CHS: sector > spt, head >= heads,           04h  SeaBIOS says 01h; a real
 *       cylinder >= cylinders                       drive says IDNF (04h), and
 *                                                   the notes want 04h
 *  LBA (or CHS run) past the end of the disk   04h  checked before any
 *                                                   transfer: nothing moved
 *                                                   (SeaBIOS: 01h, start only)
 *  blk BLK_E_RANGE                             04h
 *  blk BLK_E_RO                                03h
 *  blk BLK_E_IO (disk or VHD metadata failed)  20h  controller failure;
 *                                                   SeaBIOS says 0Ch for all
 *                                                   driver errors. A disk the
 *                                                   BIOS serves: the BIOS's
 *                                                   own status (biosdisk.c
 *                                                   notes it, disk.h)
 *  blk BLK_E_NOSPACE (image cannot grow)       CCh  write fault
 *  43h AL=2: read-back differs from the data   CCh  write fault
 *  any other blk error                         BBh  undefined error
 *  46h eject on a fixed disk                   B2h  volume not removable (SeaBIOS)
 *
 * After an error the number of sectors moved is reported (AL for 02h-04h,
 * the DAP count for 42h-44h). A failed block request is counted as 0
 * sectors moved: the device does not say how far it got, and a guest
 * retrying from the start is always right (SeaBIOS does the same).
 *
 * The last status is kept per drive (for 01h) and in the BDA byte 40:74.
 * 01h reports it in AH (SeaBIOS) and AL (the IBM AT BIOS used AL), with CF
 * set if it is nonzero, and does not change it.
 */

/* BDA byte 40:74: status of the last hard disk operation. */
#define INT13_BDA_LAST_STATUS 0x474u

/* Status codes int13.h does not name. */
#define INT13_E_NOTREMOVABLE 0xB2
#define INT13_E_UNDEFINED 0xBB

void (*int13_trace_hook)(const struct rm_regs *in, const struct rm_regs *out);
void (*int13_moved_hook)(struct int13_drive *d, uint64_t lba, uint32_t count);

static struct int13_drive int13_drives[INT13_MAX_DRIVES];
static int int13_ndrives;
static uint8_t int13_bios_disks;
/* One sector of scratch: the MBR at int13_add_drive(), read-back for 43h AL=2 (int13_rw.c). */
uint8_t int13_scratch[BLK_SECTOR];

/* Map a blk_dev status to an INT 13h status (the blk rows of the table above). */
uint8_t int13_blk_status(int st)
{
	switch (st) {
	case BLK_OK: return INT13_OK;
	case BLK_E_IO: {
		uint8_t bios = disk_take_status();
		return bios ? bios : INT13_E_CTRL;
	}
	case BLK_E_RANGE: return INT13_E_NOTFOUND;
	case BLK_E_RO: return INT13_E_WRITEPROT;
	case BLK_E_NOSPACE: return INT13_E_WRITEFAULT;
	default: return INT13_E_UNDEFINED;
	}
}

/* Hard disks the guest sees: ours plus the BIOS's, shifted up behind them. */
uint32_t int13_disk_total(void)
{
	return (uint32_t)int13_ndrives + int13_bios_disks;
}

/* AH=00h/0Dh reset: make completed writes durable (a guest resets before giving up or rebooting). */
static unsigned int13_1300(struct int13_drive *d, struct rm_regs *r)
{
	(void)r;
	if (d->read_only || !d->dev->flush)
		return INT13_OK;
	return int13_blk_status(blk_flush(d->dev));
}

/* AH=01h: last status of this drive in AH and AL; CF if nonzero; the stored status is kept. */
static unsigned int13_1301(struct int13_drive *d, struct rm_regs *r)
{
	RM_SET_AL(r, d->last_status);
	return INT13_R_NORECORD | d->last_status;
}

/* AH=09h/0Ch/10h/11h/14h/45h/49h: nothing to do for a fixed, always-ready disk. */
static unsigned int13_ok(struct int13_drive *d, struct rm_regs *r)
{
	(void)d;
	(void)r;
	return INT13_OK;
}

/* AH=16h: change line: not supported for hard disks (01h, as SeaBIOS). */
static unsigned int13_1316(struct int13_drive *d, struct rm_regs *r)
{
	(void)d;
	(void)r;
	return INT13_E_BADCMD;
}

/* AH=46h: eject: a fixed disk is not removable (B2h, as SeaBIOS). */
static unsigned int13_1346(struct int13_drive *d, struct rm_regs *r)
{
	(void)d;
	(void)r;
	return INT13_E_NOTREMOVABLE;
}

/* Every function we serve: its number, short name (trace lines) and handler; the one list (trace.c reads names from it). */
static const struct int13_fn_row {
	uint8_t ah;
	const char *name;
	int13_fn fn;
} int13_fns[] = {
	{ 0x00, "reset", int13_1300 },
	{ 0x01, "status", int13_1301 },
	{ 0x02, "read", int13_1302 },
	{ 0x03, "write", int13_1303 },
	{ 0x04, "verify", int13_1304 },
	{ 0x05, "format", int13_1305 },
	{ 0x08, "params", int13_1308 },
	{ 0x09, "init", int13_ok },           /* initialise drive parameters */
	{ 0x0C, "seek", int13_ok },
	{ 0x0D, "reset", int13_1300 },        /* alternate reset */
	{ 0x10, "ready", int13_ok },          /* test ready */
	{ 0x11, "recal", int13_ok },          /* recalibrate */
	{ 0x14, "diag", int13_ok },           /* controller diagnostic */
	{ 0x15, "type", int13_1315 },
	{ 0x16, "changed", int13_1316 },
	{ 0x41, "edd-check", int13_1341 },
	{ 0x42, "ext-read", int13_1342 },
	{ 0x43, "ext-write", int13_1343 },
	{ 0x44, "ext-verify", int13_1344 },
	{ 0x45, "lock", int13_ok },           /* lock/unlock: fixed disks always succeed */
	{ 0x46, "eject", int13_1346 },
	{ 0x47, "ext-seek", int13_1347 },
	{ 0x48, "edd-params", int13_1348 },
	{ 0x49, "media", int13_ok },          /* media change: never */
	{ 0x4E, "hwconfig", int13_134e },
};

/* The row for function ah, or NULL if we don't offer it. */
static const struct int13_fn_row *int13_row(uint8_t ah)
{
	for (size_t i = 0; i < sizeof(int13_fns) / sizeof(int13_fns[0]); i++)
		if (int13_fns[i].ah == ah)
			return &int13_fns[i];
	return NULL;
}

/* Handler for function ah, or NULL if we don't offer it. */
static int13_fn int13_lookup(uint8_t ah)
{
	const struct int13_fn_row *row = int13_row(ah);
	return row ? row->fn : NULL;
}

const char *int13_fn_name(uint8_t ah)
{
	const struct int13_fn_row *row = int13_row(ah);
	return row ? row->name : "other";
}

/* Record status st for drive d (may be NULL) in the drive and the BDA. */
static void int13_record(struct int13_drive *d, uint8_t st)
{
	uint8_t *bda = guestmem_ptr(INT13_BDA_LAST_STATUS, 1);
	if (d)
		d->last_status = st;
	if (bda)
		*bda = st;
}

/* Dispatch one call: AH, CF and the last status follow the handler's result. */
static void int13_dispatch(struct rm_regs *r)
{
	struct int13_drive *d = int13_get_drive((uint8_t)r->edx);
	int13_fn fn = int13_lookup(RM_AH(r));

	(void)disk_take_status();     /* a status noted before this call is not this call's */
	unsigned res = (d && fn) ? fn(d, r) : INT13_E_BADCMD;
	uint8_t st = (uint8_t)(res & INT13_R_STATUS);

	if (res & INT13_R_AH_SET) {
		int13_record(d, INT13_OK);
		r->flags &= (uint16_t)~RM_FLAG_CF;
		return;
	}
	if (!(res & INT13_R_NORECORD))
		int13_record(d, st);
	RM_SET_AH(r, st);
	if (st)
		r->flags |= RM_FLAG_CF;
	else
		r->flags &= (uint16_t)~RM_FLAG_CF;
}

void int13_handle(struct rm_regs *r)
{
	if (!int13_trace_hook) {
		int13_dispatch(r);
		return;
	}
	struct rm_regs in = *r;
	int13_dispatch(r);
	int13_trace_hook(&in, r);
}

void int13_note_ok(uint8_t mask)
{
	for (int i = 0; i < int13_ndrives && i < 8; i++)
		if (mask & (1u << i))
			int13_drives[i].last_status = INT13_OK;
}

void int13_init(uint8_t bios_disks)
{
	__builtin_memset(int13_drives, 0, sizeof(int13_drives));
	int13_ndrives = 0;
	int13_bios_disks = bios_disks;
}

int int13_drive_count(void)
{
	return int13_ndrives;
}

struct int13_drive *int13_get_drive(uint8_t number)
{
	if (number < 0x80 || number - 0x80 >= int13_ndrives)
		return NULL;
	return &int13_drives[number - 0x80];
}

/* Returns the drive number (80h + n), or -1 when the table is full or dev is unusable. */
int int13_add_drive(struct blk_dev *dev, int read_only)
{
	if (!dev || !dev->read || !dev->write || dev->sectors == 0 ||
	    int13_ndrives >= INT13_MAX_DRIVES)
		return -1;
	struct int13_drive *d = &int13_drives[int13_ndrives];
	__builtin_memset(d, 0, sizeof(*d));
	d->dev = dev;
	d->sectors = dev->sectors;
	d->read_only = (uint8_t)(read_only || dev->read_only);
	/* An unreadable LBA 0 just means the default geometry; the boot will report the read error. */
	const uint8_t *mbr = blk_read(dev, 0, 1, int13_scratch) == BLK_OK ? int13_scratch : NULL;
	int13_geometry(d->sectors, mbr, &d->cylinders, &d->heads, &d->spt);
	return 0x80 + int13_ndrives++;
}
