/* efiprobe.c: EFI guest of tests/qemu/test_uefi.py: from inside a served image, checks the disk it was loaded from through Block I/O (media fields, pattern, the specification's error codes, a durable write) and ends QEMU with a verdict. */
#include "efiguest.h"             /* st, bs, mem*, say, guest_exit, dp_len */

/*
 * The image (tests/qemu/efi_harness.py): GPT, partition 1 the ESP holding
 * this program, partition 2 the pattern: sector s (disk LBA) starts with
 * "VHDBPAT!" and s as a little-endian u64, byte i >= 16 is (s * 7 + i) & 0xFF.
 * Output lines on ConOut (COM1): "PROBE <what> ..."; the last is
 * "PROBE PASS" or "PROBE FAIL <why>". Writes: PROBE_WRITE_COUNT sectors at
 * partition 2's start + PROBE_WRITE_OFF, each "VHDBWRIT" + its LBA + byte i
 * = (s * 13 + i) ^ 0x5A; read-only media must refuse with EFI_WRITE_PROTECTED.
 * Then PROBE_RANDOM requests in partition 2's first PROBE_WIN sectors: writes
 * (the same pattern; each logged as "PROBE w LBA COUNT", hex) and reads
 * checked against what was written so far.
 * Exit through isa-debug-exit at 0xF4: 0x10 pass, 0x11 fail.
 *
 * Optional, for tests/qemu/test_uefi_grow.py: a file \EFI\BOOT\GROW.TXT on
 * our own ESP, one command a line (numbers decimal), run after the checks
 * above, in order:
 *   w LBA COUNT       WriteBlocks of the write pattern (logged "PROBE w", as
 *                     the random writes), then read back and checked
 *   refuse LBA COUNT  WriteBlocks must answer EFI_DEVICE_ERROR; the sectors
 *                     then read back as zeros (the block was never made)
 *   size PATH         the size of file PATH on the host volume (the first
 *                     Simple File System not on a disk of ours) through the
 *                     firmware's FAT driver: "PROBE host size PATH=HEX"
 *   note PATH BYTES   create PATH there and write BYTES bytes (byte i =
 *                     (i * 7 + 3) & 0xFF) through the firmware's FAT driver,
 *                     flushed and closed: "PROBE host note written"
 *   selfnote PATH BYTES  the same on our own ESP (the served disk: the
 *                     firmware's FAT driver writes the image through our
 *                     Block I/O, holding its lock): "PROBE self note written"
 * A command that fails ends the run with PROBE FAIL.
 */
#define PROBE_EXIT_PASS 0x10
#define PROBE_EXIT_FAIL 0x11
#define PROBE_READS 200
#define PROBE_MAX_COUNT 64
#define PROBE_WRITE_OFF 5
#define PROBE_WRITE_COUNT 3
#define PROBE_WIN 2048            /* random writes stay in partition 2's first 1 MiB (one 2 MiB VHD block here) */
#define PROBE_RANDOM 80           /* random requests after the first write: even ones write, odd ones read */
#define PROBE_MAX_WRITE 16

static EFI_GUID guid_bio = EFI_BLOCK_IO_PROTOCOL_GUID, guid_dp = EFI_DEVICE_PATH_PROTOCOL_GUID,
		guid_li = EFI_LOADED_IMAGE_PROTOCOL_GUID, guid_sfs = EFI_SIMPLE_FILE_SYSTEM_PROTOCOL_GUID,
		guid_finfo = EFI_FILE_INFO_ID;
static uint8_t buf[(PROBE_MAX_COUNT + 1) * 512];

/* Leave QEMU with code (isa-debug-exit); if there is no such device, return to the firmware. */
static EFI_STATUS finish(int pass, const char *why, int64_t v)
{
	if (pass) {
		say("PROBE PASS", -1, 1);
	} else {
		say("PROBE FAIL ", -1, 0);
		say(why, v, 1);
	}
	guest_exit(pass ? PROBE_EXIT_PASS : PROBE_EXIT_FAIL);
	return pass ? EFI_SUCCESS : EFI_DEVICE_ERROR;
}

/* Sectors of the window [p2, p2 + PROBE_WIN) written so far (one bit each). */
static uint8_t written[PROBE_WIN / 8];

static void mark(uint64_t i)
{
	written[i / 8] |= (uint8_t)(1u << (i % 8));
}

static int marked(uint64_t i)
{
	return (written[i / 8] >> (i % 8)) & 1;
}

/* The write pattern of sector s into p: "VHDBWRIT", s, byte i = (s * 13 + i) ^ 0x5A. */
static void fill_written(uint8_t *p, uint64_t s)
{
	memcpy(p, "VHDBWRIT", 8);
	for (int i = 0; i < 8; i++)
		p[8 + i] = (uint8_t)(s >> (8 * i));
	for (int i = 16; i < 512; i++)
		p[i] = (uint8_t)((s * 13 + (uint64_t)i) ^ 0x5A);
}

static uint32_t rnd_state = 12345;
/* A small LCG: the same sequence every run. */
static uint32_t rnd(void)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return rnd_state >> 8;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Nonzero when sector s (disk LBA) at p holds the pattern (or, with written, the write pattern). */
static int sector_ok(const uint8_t *p, uint64_t s, int written)
{
	if (memcmp(p, written ? "VHDBWRIT" : "VHDBPAT!", 8) || rd64(p + 8) != s)
		return 0;
	for (int i = 16; i < 512; i++)
		if (p[i] != (uint8_t)(written ? ((s * 13 + (uint64_t)i) ^ 0x5A) : (s * 7 + (uint64_t)i)))
			return 0;
	return 1;
}

/* The whole disk our partition (LoadedImage->DeviceHandle) lies on: the Block I/O without LogicalPartition whose path prefixes ours. */
static EFI_BLOCK_IO *find_disk(EFI_HANDLE image, int *vendor)
{
	EFI_LOADED_IMAGE *li;
	EFI_DEVICE_PATH *mine, *dp;
	UINTN n;
	EFI_HANDLE *h;
	if (bs->HandleProtocol(image, &guid_li, (void **)&li) != EFI_SUCCESS ||
	    bs->HandleProtocol(li->DeviceHandle, &guid_dp, (void **)&mine) != EFI_SUCCESS ||
	    bs->LocateHandleBuffer(ByProtocol, &guid_bio, NULL, &n, &h) != EFI_SUCCESS)
		return NULL;
	*vendor = mine->Type == HARDWARE_DEVICE_PATH && mine->SubType == HW_VENDOR_DP;
	size_t ml = dp_len(mine);
	for (UINTN i = 0; i < n; i++) {
		EFI_BLOCK_IO *b;
		if (bs->HandleProtocol(h[i], &guid_bio, (void **)&b) != EFI_SUCCESS || b->Media->LogicalPartition ||
		    bs->HandleProtocol(h[i], &guid_dp, (void **)&dp) != EFI_SUCCESS)
			continue;
		size_t l = dp_len(dp);
		if (l < ml && !memcmp(dp, mine, l))
			return b;
	}
	return NULL;
}


/* ------------------------------------------------------------ GROW.TXT (test_uefi_grow.py) */

#define GROW_TXT_MAX 4096
#define GROW_MAX_COUNT 128        /* sectors per GROW.TXT write (a 127-sector write spans two new blocks) */
static char grow_txt[GROW_TXT_MAX + 1];
static uint8_t gbuf[GROW_MAX_COUNT * 512];
static uint8_t note_buf[4096];

/* The root of the Simple File System on handle h, or NULL. */
static EFI_FILE_HANDLE sfs_root(EFI_HANDLE h)
{
	EFI_FILE_IO_INTERFACE *fs;
	EFI_FILE_HANDLE root;
	if (bs->HandleProtocol(h, &guid_sfs, (void **)&fs) != EFI_SUCCESS || fs->OpenVolume(fs, &root) != EFI_SUCCESS)
		return NULL;
	return root;
}

/* The root of the host volume: the first Simple File System whose device path does not start with a vendor node (our disks). Looked up each time: the handle changes when vhdboot reconnects the host disk's drivers. */
static EFI_FILE_HANDLE host_root(void)
{
	UINTN n;
	EFI_HANDLE *h;
	if (bs->LocateHandleBuffer(ByProtocol, &guid_sfs, NULL, &n, &h) != EFI_SUCCESS)
		return NULL;
	EFI_FILE_HANDLE root = NULL;
	for (UINTN i = 0; i < n && !root; i++) {
		EFI_DEVICE_PATH *dp;
		if (bs->HandleProtocol(h[i], &guid_dp, (void **)&dp) != EFI_SUCCESS ||
		    (dp->Type == HARDWARE_DEVICE_PATH && dp->SubType == HW_VENDOR_DP))
			continue;
		root = sfs_root(h[i]);
	}
	bs->FreePool(h);
	return root;
}

/* ASCII path (/ or \) into a CHAR16 path with backslashes. */
static void wpath(CHAR16 *w, size_t n, const char *s, size_t len)
{
	size_t k = 0;
	for (; k < len && k + 1 < n; k++)
		w[k] = s[k] == '/' ? '\\' : (CHAR16)s[k];
	w[k] = 0;
}

/* Read GROW.TXT from our own ESP (LoadedImage->DeviceHandle) into grow_txt; 0 when there is none. */
static int grow_read(EFI_HANDLE image)
{
	EFI_LOADED_IMAGE *li;
	EFI_FILE_HANDLE root, f;
	if (bs->HandleProtocol(image, &guid_li, (void **)&li) != EFI_SUCCESS || !(root = sfs_root(li->DeviceHandle)))
		return 0;
	CHAR16 name[] = L"\\EFI\\BOOT\\GROW.TXT";
	int got = 0;
	if (root->Open(root, &f, name, EFI_FILE_MODE_READ, 0) == EFI_SUCCESS) {
		UINTN n = GROW_TXT_MAX;
		if (f->Read(f, &n, grow_txt) == EFI_SUCCESS) {
			grow_txt[n] = 0;
			got = n > 0;
		}
		f->Close(f);
	}
	root->Close(root);
	return got;
}

/* The next blank-separated word of *p (its length in *len), or NULL at the end of the line. */
static const char *word(const char **p, size_t *len)
{
	while (**p == ' ' || **p == '\t' || **p == '\r')
		(*p)++;
	if (!**p || **p == '\n')
		return NULL;
	const char *w = *p;
	while (**p && **p != ' ' && **p != '\t' && **p != '\r' && **p != '\n')
		(*p)++;
	*len = (size_t)(*p - w);
	return w;
}

static int64_t number(const char *w, size_t len)
{
	int64_t v = 0;
	if (!w || !len)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (w[i] < '0' || w[i] > '9')
			return -1;
		v = v * 10 + (w[i] - '0');
	}
	return v;
}

static int same(const char *w, size_t len, const char *s)
{
	size_t k = 0;
	while (s[k])
		k++;
	return w && len == k && !memcmp(w, s, k);
}

/* "size PATH": the file's size through the firmware's FAT driver, logged; -1 when it cannot be read. */
static int64_t grow_size(const char *path, size_t len)
{
	EFI_FILE_HANDLE root = host_root(), f;
	CHAR16 w[128];
	uint8_t info[512];
	UINTN n = sizeof(info);
	int64_t size = -1;
	if (!root)
		return -1;
	wpath(w, 128, path, len);
	if (root->Open(root, &f, w, EFI_FILE_MODE_READ, 0) == EFI_SUCCESS) {
		if (f->GetInfo(f, &guid_finfo, &n, info) == EFI_SUCCESS)
			size = (int64_t)((EFI_FILE_INFO *)info)->FileSize;
		f->Close(f);
	}
	root->Close(root);
	return size;
}

/* "note PATH BYTES" / "selfnote": create the file on the host volume (or root) through the firmware's FAT driver; 0 or -1. */
static int grow_note(EFI_FILE_HANDLE root, const char *path, size_t len, int64_t bytes)
{
	EFI_FILE_HANDLE f;
	CHAR16 w[128];
	int ok = 0;
	if (!root)
		return -1;
	wpath(w, 128, path, len);
	if (root->Open(root, &f, w, EFI_FILE_MODE_READ | EFI_FILE_MODE_WRITE | EFI_FILE_MODE_CREATE, 0) == EFI_SUCCESS) {
		ok = 1;
		for (int64_t done = 0; done < bytes && ok;) {
			UINTN n = bytes - done < (int64_t)sizeof(note_buf) ? (UINTN)(bytes - done) : sizeof(note_buf);
			for (UINTN i = 0; i < n; i++)
				note_buf[i] = (uint8_t)(((uint64_t)(done + (int64_t)i) * 7 + 3) & 0xFF);
			ok = f->Write(f, &n, note_buf) == EFI_SUCCESS;
			done += (int64_t)n;
		}
		ok = ok && f->Flush(f) == EFI_SUCCESS;
		ok = f->Close(f) == EFI_SUCCESS && ok;
	}
	root->Close(root);
	return ok ? 0 : -1;
}

/* Run GROW.TXT's commands on disk b (image: ours, for selfnote); 0, or finish()'s failure. */
static EFI_STATUS grow_run(EFI_BLOCK_IO *b, EFI_HANDLE image)
{
	UINT32 id = b->Media->MediaId;
	for (const char *p = grow_txt; *p; p += *p == '\n') {
		size_t l0 = 0, l1 = 0, l2 = 0;
		const char *cmd = word(&p, &l0);
		if (!cmd || cmd[0] == '#') {
			while (*p && *p != '\n')
				p++;
			continue;
		}
		const char *a1 = word(&p, &l1), *a2 = word(&p, &l2);
		if (same(cmd, l0, "w") || same(cmd, l0, "refuse")) {
			int64_t lba = number(a1, l1), count = number(a2, l2);
			if (lba < 0 || count <= 0 || count > GROW_MAX_COUNT)
				return finish(0, "GROW.TXT: bad LBA or count on a line ", lba);
			int refuse = cmd[0] == 'r';
			for (int64_t k = 0; k < count; k++)
				fill_written(gbuf + k * 512, (uint64_t)(lba + k));
			EFI_STATUS s = b->WriteBlocks(b, id, (EFI_LBA)lba, (UINTN)count * 512, gbuf);
			if (refuse && s != EFI_DEVICE_ERROR)
				return finish(0, "grow: a write that must be refused did not answer EFI_DEVICE_ERROR at LBA ", lba);
			if (!refuse && s != EFI_SUCCESS)
				return finish(0, "grow: WriteBlocks failed at LBA ", lba);
			if (!refuse) {
				say("PROBE w ", lba, 0);
				say(" ", count, 1);
			}
			memset(gbuf, 0xEE, sizeof(gbuf));
			if (b->ReadBlocks(b, id, (EFI_LBA)lba, (UINTN)count * 512, gbuf) != EFI_SUCCESS)
				return finish(0, "grow: read back failed at LBA ", lba);
			for (int64_t k = 0; k < count; k++) {
				const uint8_t *q = gbuf + k * 512;
				int zero = 1;
				for (int i = 0; i < 512; i++)
					zero &= q[i] == 0;
				if (refuse ? !zero : !sector_ok(q, (uint64_t)(lba + k), 1))
					return finish(0, refuse ? "grow: a refused write left data at LBA " : "grow: read back differs at LBA ",
						      lba + k);
			}
			say(refuse ? "PROBE grow refused lba=" : "PROBE grow write ok lba=", lba, 1);
		} else if (same(cmd, l0, "size")) {
			int64_t size = grow_size(a1, l1);
			if (size < 0)
				return finish(0, "grow: the host file's size is unreadable", -1);
			say("PROBE host size ", -1, 0);
			for (size_t i = 0; i < l1; i++) {
				char c[2] = { a1[i], 0 };
				say(c, -1, 0);
			}
			say("=", size, 1);
		} else if (same(cmd, l0, "note")) {
			if (grow_note(host_root(), a1, l1, number(a2, l2)))
				return finish(0, "grow: writing the note on the host volume failed", -1);
			say("PROBE host note written", -1, 1);
		} else if (same(cmd, l0, "selfnote")) {
			EFI_LOADED_IMAGE *li;
			if (bs->HandleProtocol(image, &guid_li, (void **)&li) != EFI_SUCCESS ||
			    grow_note(sfs_root(li->DeviceHandle), a1, l1, number(a2, l2)))
				return finish(0, "grow: writing the note on our own ESP failed", -1);
			say("PROBE self note written", -1, 1);
		} else {
			return finish(0, "GROW.TXT: unknown command", -1);
		}
	}
	say("PROBE grow ok", -1, 1);
	return EFI_SUCCESS;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	st = systab;
	bs = st->BootServices;
	int vendor = 0;
	say("PROBE start", -1, 1);
	EFI_BLOCK_IO *b = find_disk(image, &vendor);
	if (!b)
		return finish(0, "no whole-disk Block I/O above our partition", -1);
	EFI_BLOCK_IO_MEDIA *m = b->Media;
	UINT32 id = m->MediaId;
	say("PROBE disk vendor-path=", vendor, 1);
	say("PROBE media blocksize=", m->BlockSize, 0);
	say(" lastblock=", (int64_t)m->LastBlock, 0);
	say(" readonly=", m->ReadOnly, 0);
	say(" ioalign=", m->IoAlign, 1);
	if (m->BlockSize != 512 || !m->MediaPresent)
		return finish(0, "media: block size or presence wrong", m->BlockSize);
	/* GPT: header at LBA 1; the backup header's LBA is the disk's last block. */
	if (b->ReadBlocks(b, id, 1, 512, buf) != EFI_SUCCESS || memcmp(buf, "EFI PART", 8))
		return finish(0, "no GPT header at LBA 1", -1);
	if (rd64(buf + 32) != m->LastBlock)
		return finish(0, "LastBlock differs from the GPT's backup header LBA ", (int64_t)rd64(buf + 32));
	uint64_t ent = rd64(buf + 72);
	uint32_t esz = rd32(buf + 84);
	if (esz < 128 || esz > 512 || b->ReadBlocks(b, id, ent, 512, buf) != EFI_SUCCESS)
		return finish(0, "GPT entries unreadable", esz);
	uint64_t p2 = rd64(buf + esz + 32), p2end = rd64(buf + esz + 40);
	say("PROBE pattern first=", (int64_t)p2, 0);
	say(" last=", (int64_t)p2end, 1);
	if (p2 == 0 || p2end <= p2 + PROBE_MAX_COUNT || p2end > m->LastBlock)
		return finish(0, "partition 2 missing or too small", (int64_t)p2);
	/* Random reads, some into a buffer at an odd address (IoAlign 0: any buffer). */
	uint64_t sectors = 0;
	for (int r = 0; r < PROBE_READS; r++) {
		uint32_t count = 1 + rnd() % PROBE_MAX_COUNT;
		uint64_t lba = p2 + rnd() % (p2end + 1 - p2 - count);
		uint8_t *dst = buf + ((r & 3) == 3 && m->IoAlign <= 1 ? 1 : 0);
		if (lba >= p2 + PROBE_WRITE_OFF - PROBE_MAX_COUNT && lba <= p2 + PROBE_WRITE_OFF + PROBE_WRITE_COUNT)
			continue;         /* the written sectors may hold an earlier run's data */
		EFI_STATUS s = b->ReadBlocks(b, id, lba, (UINTN)count * 512, dst);
		if (s != EFI_SUCCESS)
			return finish(0, "ReadBlocks failed at LBA ", (int64_t)lba);
		for (uint32_t k = 0; k < count; k++)
			if (!sector_ok(dst + k * 512, lba + k, 0))
				return finish(0, "pattern mismatch at LBA ", (int64_t)(lba + k));
		sectors += count;
	}
	say("PROBE reads ok sectors=", (int64_t)sectors, 1);
	/* The specification's answers to bad requests. */
	if (b->ReadBlocks(b, id, m->LastBlock + 1, 512, buf) != EFI_INVALID_PARAMETER)
		return finish(0, "read past LastBlock: not EFI_INVALID_PARAMETER", -1);
	if (b->ReadBlocks(b, id, m->LastBlock, 1024, buf) != EFI_INVALID_PARAMETER)
		return finish(0, "read across LastBlock: not EFI_INVALID_PARAMETER", -1);
	if (b->ReadBlocks(b, id, 0, 100, buf) != EFI_BAD_BUFFER_SIZE)
		return finish(0, "BufferSize 100: not EFI_BAD_BUFFER_SIZE", -1);
	if (b->ReadBlocks(b, id + 1, 0, 512, buf) != EFI_MEDIA_CHANGED)
		return finish(0, "wrong MediaId: not EFI_MEDIA_CHANGED", -1);
	if (b->ReadBlocks(b, id, 0, 0, buf) != EFI_SUCCESS)
		return finish(0, "BufferSize 0: not EFI_SUCCESS", -1);
	if (b->ReadBlocks(b, id, 0, 512, NULL) != EFI_INVALID_PARAMETER)
		return finish(0, "NULL buffer: not EFI_INVALID_PARAMETER", -1);
	say("PROBE errors ok", -1, 1);
	/* The write: refused on read-only media, else durable and read back. */
	uint64_t w = p2 + PROBE_WRITE_OFF;
	for (uint32_t k = 0; k < PROBE_WRITE_COUNT; k++)
		fill_written(buf + k * 512, w + k);
	EFI_STATUS s = b->WriteBlocks(b, id, w, PROBE_WRITE_COUNT * 512, buf);
	if (m->ReadOnly) {
		if (s != EFI_WRITE_PROTECTED)
			return finish(0, "read-only media: WriteBlocks did not answer EFI_WRITE_PROTECTED ", (int64_t)s);
		say("PROBE write refused (read-only)", -1, 1);
		return finish(1, "", -1);
	}
	if (s != EFI_SUCCESS)
		return finish(0, "WriteBlocks failed ", (int64_t)s);
	if (b->WriteBlocks(b, id, m->LastBlock, 1024, buf) != EFI_INVALID_PARAMETER)
		return finish(0, "write across LastBlock: not EFI_INVALID_PARAMETER", -1);
	if (b->FlushBlocks(b) != EFI_SUCCESS)
		return finish(0, "FlushBlocks failed", -1);
	memset(buf, 0, sizeof(buf));
	if (b->ReadBlocks(b, id, w - 1, (PROBE_WRITE_COUNT + 2) * 512, buf) != EFI_SUCCESS)
		return finish(0, "read back failed", -1);
	if (!sector_ok(buf, w - 1, 0) || !sector_ok(buf + (PROBE_WRITE_COUNT + 1) * 512, w + PROBE_WRITE_COUNT, 0))
		return finish(0, "the write changed a neighbouring sector", -1);
	for (uint32_t k = 0; k < PROBE_WRITE_COUNT; k++)
		if (!sector_ok(buf + (k + 1) * 512, w + k, 1))
			return finish(0, "read back differs at LBA ", (int64_t)(w + k));
	say("PROBE write ok lba=", (int64_t)w, 0);
	say(" count=", PROBE_WRITE_COUNT, 1);
	/* Random writes and reads in the window, checked against what was written (the host checks the image after). */
	for (uint32_t k = 0; k < PROBE_WRITE_COUNT; k++)
		mark(w + k - p2);
	for (int r = 0; r < PROBE_RANDOM; r++) {
		uint32_t count = 1 + rnd() % (r & 1 ? PROBE_MAX_COUNT : PROBE_MAX_WRITE);
		uint64_t lba = p2 + rnd() % (PROBE_WIN - count + 1);
		if (!(r & 1)) {
			for (uint32_t k = 0; k < count; k++)
				fill_written(buf + k * 512, lba + k);
			if (b->WriteBlocks(b, id, lba, (UINTN)count * 512, buf) != EFI_SUCCESS)
				return finish(0, "random WriteBlocks failed at LBA ", (int64_t)lba);
			for (uint32_t k = 0; k < count; k++)
				mark(lba + k - p2);
			say("PROBE w ", (int64_t)lba, 0);
			say(" ", count, 1);
			continue;
		}
		memset(buf, 0, sizeof(buf));
		if (b->ReadBlocks(b, id, lba, (UINTN)count * 512, buf) != EFI_SUCCESS)
			return finish(0, "random ReadBlocks failed at LBA ", (int64_t)lba);
		for (uint32_t k = 0; k < count; k++)
			if (!sector_ok(buf + k * 512, lba + k, marked(lba + k - p2)))
				return finish(0, "random read: wrong data at LBA ", (int64_t)(lba + k));
	}
	say("PROBE random ok", -1, 1);
	if (grow_read(image)) {
		say("PROBE grow commands from GROW.TXT", -1, 1);
		if (grow_run(b, image) != EFI_SUCCESS)
			return EFI_DEVICE_ERROR;   /* finish() has ended the run */
	}
	return finish(1, "", -1);
}
