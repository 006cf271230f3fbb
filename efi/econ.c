/* econ.c: the UEFI front end's console (kernel/console.h): ConOut, plus the firmware's Serial I/O when no console already writes to a UART; keys from ConIn. */
#include "efi.h"
#include <efiser.h>               /* EFI_SERIAL_IO_PROTOCOL */
#include "../kernel/console.h"
#include "../kernel/string.h"

#define ECON_LINE 160             /* characters buffered before ConOut is called */

static EFI_GUID econ_guid_serial = EFI_SERIAL_IO_PROTOCOL_GUID;
static EFI_SERIAL_IO_PROTOCOL *econ_serial; /* NULL: ConOut reaches the serial port already, or there is none */
static unsigned econ_targets = CON_SERIAL | CON_VGA;
static CHAR16 econ_wbuf[ECON_LINE + 3];
static char econ_sbuf[ECON_LINE + 3];
static size_t econ_len;

/* Nonzero when device path dp has a UART node (a serial terminal's path). */
static int econ_dp_has_uart(const EFI_DEVICE_PATH *dp)
{
	for (int i = 0; dp && i < 64 && !(dp->Type == END_DEVICE_PATH_TYPE && dp->SubType == END_ENTIRE_DEVICE_PATH_SUBTYPE); i++) {
		if (dp->Type == MESSAGING_DEVICE_PATH && dp->SubType == MSG_UART_DP)
			return 1;
		size_t len = (size_t)dp->Length[0] | ((size_t)dp->Length[1] << 8);
		if (len < 4)
			return 0;
		dp = (const EFI_DEVICE_PATH *)((const uint8_t *)dp + len);
	}
	return 0;
}

/* econ_init, the contract in efi.h. */
void econ_init(void)
{
	UINTN n = 0;
	EFI_HANDLE *h = NULL;
	int conout_serial = 0;
	if (efi_bs->LocateHandleBuffer(ByProtocol, &efi_guid_textout, NULL, &n, &h) == EFI_SUCCESS) {
		for (UINTN i = 0; i < n; i++) {
			EFI_DEVICE_PATH *dp;
			if (efi_bs->HandleProtocol(h[i], &efi_guid_devpath, (void **)&dp) == EFI_SUCCESS && econ_dp_has_uart(dp))
				conout_serial = 1;
		}
		efi_bs->FreePool(h);
	}
	if (!conout_serial) {
		EFI_SERIAL_IO_PROTOCOL *sio;
		if (efi_bs->LocateProtocol(&econ_guid_serial, NULL, (void **)&sio) == EFI_SUCCESS)
			econ_serial = sio;
	}
	efi_st->ConOut->EnableCursor(efi_st->ConOut, FALSE);
	con_printf("console: ConOut%s\n", conout_serial ? " (the firmware's console includes a serial terminal: COM1 gets it there)" :
		   econ_serial ? " + the firmware's Serial I/O" : "; no serial port found");
}

/* Send the buffered line to ConOut and the serial port. */
static void econ_flush(void)
{
	if (!econ_len)
		return;
	if (econ_targets & CON_VGA) {
		econ_wbuf[econ_len] = 0;
		efi_st->ConOut->OutputString(efi_st->ConOut, econ_wbuf);
	}
	if (econ_serial && (econ_targets & CON_SERIAL)) {
		UINTN n = econ_len;
		econ_serial->Write(econ_serial, &n, econ_sbuf);
	}
	econ_len = 0;
}

/* One character into the line buffer ("\n" becomes "\r\n"); non-ASCII bytes are shown as '?'. */
static void econ_emit(char c)
{
	if (c == '\n') {
		econ_wbuf[econ_len] = '\r';
		econ_sbuf[econ_len++] = '\r';
	}
	unsigned char u = (unsigned char)c;
	econ_wbuf[econ_len] = u < 0x80 ? u : '?';
	econ_sbuf[econ_len++] = c;
	if (c == '\n' || econ_len >= ECON_LINE)
		econ_flush();
}

/* Nothing to set up beyond econ_init (ConOut exists before us). */
void con_init(void)
{
}

/* CON_VGA: ConOut (screen and whatever the firmware mirrors it to); CON_SERIAL: the direct Serial I/O. */
void con_set_targets(unsigned targets)
{
	econ_flush();
	econ_targets = targets;
}

void con_putc(char c)
{
	econ_emit(c);
}

void con_write(const char *s, size_t n)
{
	while (n--)
		econ_emit(*s++);
}

/* printf to ConOut (and the serial port); the line is sent at its end. */
void con_vprintf(const char *fmt, va_list ap)
{
	k_vformat(econ_emit, fmt, ap);
}

void con_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	con_vprintf(fmt, ap);
	va_end(ap);
}

/* econ_key, the contract in efi.h. */
int econ_key(uint32_t ms)
{
	EFI_INPUT_KEY k;
	econ_flush();
	if (efi_st->ConIn->ReadKeyStroke(efi_st->ConIn, &k) == EFI_SUCCESS)
		return k.UnicodeChar ? k.UnicodeChar : 0x100 + k.ScanCode;
	if (!ms)
		return -1;
	EFI_EVENT ev[2];
	UINTN which;
	ev[0] = efi_st->ConIn->WaitForKey;
	if (efi_bs->CreateEvent(EVT_TIMER, 0, NULL, NULL, &ev[1]) != EFI_SUCCESS)
		return -1;
	efi_bs->SetTimer(ev[1], TimerRelative, (UINT64)ms * 10000u);  /* 100 ns units */
	EFI_STATUS st = efi_bs->WaitForEvent(2, ev, &which);
	efi_bs->CloseEvent(ev[1]);
	if (st != EFI_SUCCESS || which != 0)
		return -1;
	if (efi_st->ConIn->ReadKeyStroke(efi_st->ConIn, &k) != EFI_SUCCESS)
		return -1;
	return k.UnicodeChar ? k.UnicodeChar : 0x100 + k.ScanCode;
}
