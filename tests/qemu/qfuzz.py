"""qfuzz.py: host side of the INT 13h fuzz guest (tests/qemu/progs/qfuzz.asm): image, parameters, the call
generator (the same PRNG and rules as the guest), a reference model of vhdboot's INT 13h over the image, and the
check of every logged call; also a command for long campaigns:

    python3 tests/qemu/qfuzz.py --calls 100000 --seeds 4 [--first-seed 1] [--keep DIR]

The guest draws every call from a xorshift32 stream seeded from its parameter sector (LBA 1), runs it, and prints
one R line per call (registers, CF, the DAP's first dword, BDA 40:74, FNV of the buffer window), an M line with the
hashes of its two memory arenas every `block` calls, and at the end an END line with the checksums of vhdboot's
resident code (see kernel/resident.c resident_checksum_log, which prints the same before the jump). This module
regenerates the calls from the seed, runs them through the model (its own disk copy and guest memory) and compares
everything; the image file is compared with the model's disk after the run (qemu-img reads it back).

Drive 80h is checked exactly. Other drives go to the BIOS (SeaBIOS) through vhdboot's hook: their results are not
predicted, only that the hook kept DL (except 08h/15h), that reads of the shifted BIOS disk 81h that succeed return
that disk's bytes, and the model takes the BDA byte they leave behind. Writes are aimed at a scratch region at the
end of the disk (or are refused); they never reach drive 81h (the disk holding the VHD file).
"""
import argparse
import os
import random
import re
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import firmware_harness as fh  # noqa: E402
import writeguest as wg  # noqa: E402

GUEST_BIN = os.environ.get("QFUZZ_GUEST", os.path.join(fh.BUILD, "guest", "qfuzz.bin"))
ELF = os.path.join(fh.BUILD, "vhdboot.elf")
GUEST_SECTORS = 24
SECTOR = 512
M32 = 0xFFFFFFFF
M64 = (1 << 64) - 1

# Guest memory (qfuzz.asm): three tracked arenas (initialised from the seed), an untracked one for other drives' calls,
# and the DAP area.
LO, LO_SIZE = 0x10000, 0x40000
HI, HI_SIZE = 0x200000, 0x40000
HMA, HMA_SIZE = 0x100000, 0x30000      # reached as FFFF:0010..FFFF:FFFF (A20 on), buffers run on past 10FFEFh
JUNK, JUNK_SIZE = 0x50000, 0x20000
DAP_BASE, DAP_AREA = 0x780, 0x20

# Our functions (kernel/int13.c int13_fns): a random AH that hits one of them becomes 4Fh (unknown).
OURS = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x08, 0x09, 0x0C, 0x0D, 0x10, 0x11, 0x14, 0x15, 0x16,
        0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4E}
XFER = {0x02, 0x03, 0x04, 0x05, 0x42, 0x43, 0x44, 0x47}
RANDOM_FN = 0xFF
FN_TABLE = bytes([
    0x00, 0x01, 0x01, 0x02, 0x02, 0x02, 0x02, 0x02, 0x03, 0x03, 0x03, 0x03, 0x04, 0x04, 0x05, 0x08,
    0x08, 0x09, 0x0C, 0x0D, 0x10, 0x11, 0x14, 0x15, 0x15, 0x16, 0x41, 0x41, 0x42, 0x42, 0x42, 0x42,
    0x42, 0x42, 0x42, 0x42, 0x43, 0x43, 0x43, 0x43, 0x43, 0x43, 0x44, 0x44, 0x45, 0x46, 0x47, 0x47,
    0x48, 0x48, 0x48, 0x49, 0x4B, 0x4E, 0x4E, 0xFF, 0xFF, 0xFF, 0xFF, 0x42, 0x02, 0x43, 0x03, 0x08])
assert len(FN_TABLE) == 64

FNV_BASIS, FNV_PRIME = 0x811C9DC5, 0x01000193
ARENA_SALT = 0x9E3779B9


def fnv(data):
    return fh.fnv_dwords(bytes(data))


class Rng:
    """xorshift32 (13, 17, 5), as rnd in qfuzz.asm."""

    def __init__(self, seed):
        self.x = (seed & M32) or 1

    def next(self):
        x = self.x
        x ^= (x << 13) & M32
        x ^= x >> 17
        x ^= (x << 5) & M32
        self.x = x
        return x


def split(lin, v):
    """seg:off for linear lin (< 1 MiB) with an offset drawn from v, as split in qfuzz.asm."""
    off = min(v & 0xFFF0, lin & ~15) | (lin & 15)
    return (lin - off) >> 4, off


class Ctx:
    """What the generator needs to know: the disk and the geometry the guest saw (AH=08h), our low stub, kernel_base."""

    def __init__(self, sectors, scratch, cyls, heads, spt, stub, kbase):
        self.sectors, self.scratch = sectors, scratch
        self.cyls, self.heads, self.spt = cyls, heads, spt
        self.chs_total = cyls * heads * spt
        self.stub, self.kbase = stub, kbase


class Call:
    """One generated call: input registers, what the guest writes first (DAP / EDD size), the hash window."""

    def __init__(self):
        self.regs = {}
        self.dap = None        # (linear, 24 bytes) written by the guest before the call
        self.edd = None        # (linear, size word) written before an AH=48h call
        self.window = (0, 0)   # (linear, bytes) hashed after the call; (0, 0) = nothing
        self.dap_lin = 0       # where the R line's DAP dword is read (0 = none)


def gen_call(g, c):
    """The next call from Rng g (the guest's gen routine, step by step)."""
    k = Call()
    r = g.next()
    ah = FN_TABLE[r & 63]
    rnd_fn = ah == RANDOM_FN
    if rnd_fn:
        ah = (r >> 8) & 0xFF
        if ah in OURS:
            ah = 0x4F
    eax, ebx, ecx, edx, esi, edi, ebp = (g.next() for _ in range(7))
    r = g.next()
    es, ds = r & 0xFFFF, r >> 16
    r = g.next()
    if (r & 15) < 12 or rnd_fn:
        dl = 0x80
    else:
        dl = (r >> 8) & 0xFF
        if ah in XFER:
            if ah in (0x02, 0x42) and (r >> 24) & 1:
                dl = 0x81
            else:
                dl = 0x82 + ((r >> 16) & 0xFF) % 0x5E
    ours = dl == 0x80
    eax = (eax & 0xFFFF00FF) | ah << 8
    edx = (edx & 0xFFFFFF00) | dl
    if ah in (0x02, 0x03, 0x04, 0x05):
        r = g.next()
        kk, v = (r >> 8) & 15, (r >> 16) & 0xFF
        al = 0 if kk == 0 else 0x81 + v % 0x7F if kk == 1 else 1 + v % 8 if kk < 8 else 1 + v % 128
        n = min(al, 128)
        r = g.next()
        kk, x = r & 15, r >> 8
        C, H, S = c.cyls, c.heads, c.spt
        cyl, head, sec = 0, 0, 1
        if kk >= 4 or not ours:
            lba = (c.scratch + x % (c.chs_total - c.scratch)) if ah in (0x03, 0x05) else x % c.chs_total
            cyl, head, sec = lba // (H * S), (lba // S) % H, lba % S + 1
        elif kk == 0:
            cyl, head, sec = x % C, (x >> 10) % H, 0
        elif kk == 1:
            cyl, head, sec = x % C, (x >> 10) % H, (S + 1 + x % (63 - S)) if S < 63 else 0
        elif kk == 2:
            cyl, head, sec = x % C, (H + x % (256 - H)) if H < 256 else 0, 1 if H < 256 else 0
        else:
            cyl, head, sec = (C + x % (1024 - C)) if C < 1024 else 0, 0, 1 if C < 1024 else 0
        ecx = (ecx & 0xFFFF0000) | (cyl & 0xFF) << 8 | (cyl >> 2) & 0xC0 | sec & 0x3F
        edx = (edx & 0xFFFF00FF) | head << 8
        eax = (eax & 0xFFFFFF00) | al
        r = g.next()
        if not ours:
            lin = JUNK + (r >> 4) % (JUNK_SIZE - 128 * SECTOR + 1)
            es, bx = lin >> 4, lin & 15
            k.window = (lin, n * SECTOR) if dl == 0x81 else (0, 0)
        elif r & 15 == 0:
            lin = c.stub + (r >> 4) % 0x100
            es, bx = lin >> 4, lin & 15
        elif r & 15 == 1:
            lin = HMA + (r >> 4) % 0xFFF0
            es, bx = 0xFFFF, lin - 0xFFFF0
            k.window = (lin, n * SECTOR)
        else:
            lin = LO + (r >> 4) % (LO_SIZE - n * SECTOR + 1)
            es, bx = split(lin, g.next())
            k.window = (lin, n * SECTOR)
        ebx = (ebx & 0xFFFF0000) | bx
    elif ah in (0x42, 0x43, 0x44, 0x47):
        dap_lin = DAP_BASE + (g.next() & 7)
        r = g.next()
        kk = r & 7
        flat = False
        if kk == 0:
            size = (r >> 8) & 0x0F
        elif kk <= 2:
            size, flat = 0x18, True
        elif kk == 3:
            size = 0x10 | ((r >> 8) & 0xFF)
        else:
            size = 0x10
        reserved = (r >> 16) & 0xFF if ((r >> 24) & 7) == 0 else 0
        if not ours:
            size, flat = 0x10, False
        r = g.next()
        kk, v = r & 15, r >> 16
        cnt = 0 if kk == 0 else 0x80 | v if kk == 1 else 127 if kk == 2 else 1 + v % 8 if kk < 10 else 1 + v % 127
        n = min(cnt, 127)
        r = g.next()
        kk, v = r & 15, r >> 8
        if kk == 0:
            lba = c.sectors - 1 - v % 4
        elif kk == 1:
            lba = c.sectors + v % 8
        elif kk == 2:
            hi = g.next()
            lba = hi << 32 | g.next()
        elif kk == 3:
            lba = M64 - v % 4
        elif ah == 0x43:
            lba = c.scratch + v % (c.sectors - c.scratch)
        else:
            lba = v % c.sectors
        r = g.next()
        kk = r & 15
        fl = 0
        if not ours:
            lin = JUNK + (r >> 4) % (JUNK_SIZE - 127 * SECTOR + 1)
            seg, off = lin >> 4, lin & 15
            k.window = (lin, n * SECTOR) if dl == 0x81 and ah == 0x42 else (0, 0)
        elif flat:
            seg = off = 0xFFFF
            if kk < 6:
                fl = LO + (r >> 4) % (LO_SIZE - n * SECTOR + 1)
                k.window = (fl, n * SECTOR)
            elif kk < 11:
                fl = HI + (r >> 4) % (HI_SIZE - n * SECTOR + 1)
                k.window = (fl, n * SECTOR)
            elif kk == 11:
                fl = c.stub + (r >> 4) % 0x100
            elif kk == 12:
                fl = c.kbase + (r >> 4) % 0x10000
            elif kk == 13:
                fl = (1 + (r >> 4) % 0xFFFF) << 32 | g.next()
            elif kk == 14:
                fl = 0x100000000 - 1 - (r >> 4) % 0x200
            else:
                hi = g.next() | 0x80000000
                fl = hi << 32 | g.next()
        elif kk == 0:
            lin = c.stub + (r >> 4) % 0x100
            seg, off = lin >> 4, lin & 15
        elif kk == 1:
            lin = HMA + (r >> 4) % 0xFFF0
            seg, off = 0xFFFF, lin - 0xFFFF0
            k.window = (lin, n * SECTOR)
        else:
            lin = LO + (r >> 4) % (LO_SIZE - n * SECTOR + 1)
            seg, off = split(lin, g.next())
            k.window = (lin, n * SECTOR)
        k.dap = (dap_lin, struct.pack("<BBHHHQQ", size, reserved, cnt, off, seg, lba, fl))
        r = g.next()
        if ours and r & 15 == 0:
            lin = c.stub + (r >> 4) % 0x100
            ds, si = lin >> 4, lin & 15
        else:
            ds, si = split(dap_lin, r >> 16)
        esi = (esi & 0xFFFF0000) | si
        k.dap_lin = dap_lin
    elif ah == 0x48:
        r = g.next()
        kk, v = r & 3, r >> 16
        size = v % 0x1A if kk == 0 else 0x1A + v % 4 if kk == 1 else 0x1E + v % 0x24 if kk == 2 else 0x42 + v % (0x10000 - 0x42)
        r = g.next()
        if not ours:
            lin = JUNK + (r >> 4) % 0x1000
            k.edd = (lin, size)
            ds, si = lin >> 4, lin & 15
        elif r & 15 == 0:
            lin = c.stub + (r >> 4) % 0x100
            ds, si = lin >> 4, lin & 15
        else:
            lin = LO + (r >> 4) % (LO_SIZE - 0x44 + 1)
            k.edd = (lin, size)
            k.window = (lin, 0x44)
            ds, si = split(lin, g.next())
        esi = (esi & 0xFFFF0000) | si
    elif ah == 0x4B:
        ds, esi = JUNK >> 4, esi & 0xFFFF0000
    elif ah == 0x41:
        if g.next() & 1:
            ebx = (ebx & 0xFFFF0000) | 0x55AA
    k.regs = dict(eax=eax, ebx=ebx, ecx=ecx, edx=edx, esi=esi, edi=edi, ebp=ebp, ds=ds, es=es)
    k.ah, k.dl, k.ours = ah, dl, ours
    return k


# ------------------------------------------------------------------ the reference model

class Mem:
    """The guest memory the model knows: the two arenas (from the seed) and the DAP area."""

    def __init__(self, seed):
        g = Rng(seed ^ ARENA_SALT)
        self.regions = []
        for base, size in ((LO, LO_SIZE), (HI, HI_SIZE), (HMA, HMA_SIZE)):
            words = [g.next() for _ in range(size // 4)]
            self.regions.append((base, bytearray(struct.pack("<%dI" % len(words), *words))))
        self.regions.append((DAP_BASE, bytearray(DAP_AREA)))

    def _find(self, lin, n):
        for base, buf in self.regions:
            if base <= lin and lin + n <= base + len(buf):
                return buf, lin - base
        raise AssertionError("model: guest memory %x+%x is not tracked (generator bug)" % (lin, n))

    def read(self, lin, n):
        buf, o = self._find(lin, n)
        return bytes(buf[o:o + n])

    def write(self, lin, data):
        buf, o = self._find(lin, len(data))
        buf[o:o + len(data)] = data

    def arena_hashes(self):
        return tuple(fnv(self.regions[i][1]) for i in range(3))


class Model:
    """vhdboot's INT 13h for drive 80h, written from the status table in kernel/int13.c (as fuzz_int13.c's model)."""

    def __init__(self, disk, sectors, cyls, heads, spt, forbidden, disks_total, mem):
        self.disk, self.sectors = disk, sectors
        self.cyls, self.heads, self.spt = cyls, heads, spt
        self.forbidden = forbidden            # [(base, end)]
        self.disks_total = disks_total        # AH=08h DL
        self.mem = mem
        self.last = 0                          # the drive's stored status (01h)
        self.bda = None                        # 40:74 (None: unknown until a recorded call or an observation)

    def guestmem(self, lin, n):
        if lin + n > 1 << 32:
            return False
        return not any(n and lin < e and b < lin + n for b, e in self.forbidden)

    def transfer(self, op, lba, count, lin):
        """(status, moved) for count sectors at lba <-> guest memory at lin."""
        if count == 0:
            return 0, 0
        if lba >= self.sectors or count > self.sectors - lba:
            return 0x04, 0
        if op == "verify":
            return 0, count
        if not self.guestmem(lin, count * SECTOR):
            return 0x01, 0
        if op == "read":
            self.mem.write(lin, self.disk[lba * SECTOR:(lba + count) * SECTOR])
        else:
            self.disk[lba * SECTOR:(lba + count) * SECTOR] = self.mem.read(lin, count * SECTOR)
        return 0, count

    def chs(self, r, op):
        eax, ecx, edx = r["eax"], r["ecx"], r["edx"]
        count, cl = eax & 0xFF, ecx & 0xFF
        sector, cyl, head = cl & 0x3F, ((ecx >> 8) & 0xFF) | (cl & 0xC0) << 2, (edx >> 8) & 0xFF
        r["eax"] = eax & ~0xFF & M32
        if count == 0 or count > 128 or sector == 0:
            return 0x01
        if sector > self.spt or head >= self.heads or cyl >= self.cyls:
            return 0x04
        lba = (cyl * self.heads + head) * self.spt + sector - 1
        st, moved = self.transfer(op, lba, count, (r["es"] << 4) + (r["ebx"] & 0xFFFF))
        r["eax"] = (r["eax"] & ~0xFF & M32) | moved
        return st

    def dap(self, r, op):
        lin = (r["ds"] << 4) + (r["esi"] & 0xFFFF)
        if not self.guestmem(lin, 16):
            return 0x01
        size, _res, count, off, seg, lba = struct.unpack("<BBHHHQ", self.mem.read(lin, 16))

        def out(st, moved=0):
            self.mem.write(lin + 2, struct.pack("<H", moved))
            return st
        if size < 0x10 or count > 127:
            return out(0x01)
        buf = (seg << 4) + off
        if size >= 0x18 and seg == 0xFFFF and off == 0xFFFF:
            if not self.guestmem(lin, 24):
                return 0x01
            flat = struct.unpack("<Q", self.mem.read(lin + 16, 8))[0]
            if flat > M32 or count * SECTOR > (1 << 32) - flat:
                return out(0x01)
            buf = flat
        st, moved = self.transfer(op, lba, count, buf)
        return out(st, moved)

    def edd(self, r):
        lin = (r["ds"] << 4) + (r["esi"] & 0xFFFF)
        if not self.guestmem(lin, 2):
            return 0x01
        size = struct.unpack("<H", self.mem.read(lin, 2))[0]
        if size < 0x1A:
            return 0x01
        fill = 0x42 if size >= 0x42 else 0x1E if size >= 0x1E else 0x1A
        if not self.guestmem(lin, fill):
            return 0x01
        chs_ok = self.sectors <= fh.CHS_VALID_LIMIT
        e = bytearray(struct.pack("<HHIIIQHHHHBBH4s8sQQBB", fill, 1 | (2 if chs_ok else 0),
                                  self.cyls if chs_ok else 0x3FFF, self.heads, self.spt, self.sectors, 512,
                                  0xFFFF, 0xFFFF, 0xBEDD, 0x42 - 0x1E, 0, 0, b"ISA ", b"ATA     ", 0, 0, 0, 0))
        e[0x41] = -sum(e[0x1E:0x42]) & 0xFF
        self.mem.write(lin, bytes(e[:fill]))
        return 0

    def call(self, r):
        """Run one call on drive 80h: r (input registers, modified in place); returns CF."""
        ah = (r["eax"] >> 8) & 0xFF
        res, record = None, True

        def set16(name, v):
            r[name] = (r[name] & 0xFFFF0000) | (v & 0xFFFF)
        if ah in (0x00, 0x0D, 0x09, 0x0C, 0x10, 0x11, 0x14, 0x45, 0x49):
            st = 0
        elif ah == 0x01:
            r["eax"] = (r["eax"] & ~0xFF & M32) | self.last
            st, record = self.last, False
        elif ah in (0x02, 0x03, 0x04):
            st = self.chs(r, {0x02: "read", 0x03: "write", 0x04: "verify"}[ah])
        elif ah == 0x05:
            cyl = ((r["ecx"] >> 8) & 0xFF) | (r["ecx"] & 0xC0) << 2
            st = 0x04 if (r["edx"] >> 8) & 0xFF >= self.heads or cyl >= self.cyls else 0
        elif ah == 0x08:
            maxcyl = min(self.cyls, 1024) - 1
            set16("eax", 0)
            set16("ecx", (maxcyl & 0xFF) << 8 | (maxcyl >> 2) & 0xC0 | self.spt & 0x3F)
            set16("edx", (self.heads - 1) << 8 | min(self.disks_total, 0xFF))
            st = 0
        elif ah == 0x15:
            n = min(self.sectors, M32)
            set16("ecx", n >> 16)
            set16("edx", n & 0xFFFF)
            res = 0x03
        elif ah == 0x41:
            set16("ebx", 0xAA55)
            set16("ecx", 0x0005)
            res = 0x30
        elif ah in (0x42, 0x43, 0x44):
            st = self.dap(r, {0x42: "read", 0x43: "write", 0x44: "verify"}[ah])
        elif ah == 0x47:
            lin = (r["ds"] << 4) + (r["esi"] & 0xFFFF)
            if not self.guestmem(lin, 16) or self.mem.read(lin, 1)[0] < 0x10:
                st = 0x01
            else:
                st = 0 if struct.unpack("<Q", self.mem.read(lin + 8, 8))[0] < self.sectors else 0x04
        elif ah == 0x46:
            st = 0xB2
        elif ah == 0x48:
            st = self.edd(r)
        elif ah == 0x4E:
            st = 0 if r["eax"] & 0xFF in (1, 3, 4, 6) else 0x01
        else:
            st = 0x01
        if res is not None:              # the handler put data in AH: stored status 00h, CF clear
            r["eax"] = (r["eax"] & 0xFFFF00FF) | res << 8
            self.last = self.bda = 0
            return 0
        if record:
            self.last = self.bda = st
        r["eax"] = (r["eax"] & 0xFFFF00FF) | st << 8
        return 1 if st else 0


# ------------------------------------------------------------------ the guest's log

R_LINE = re.compile(r"^R ([0-9a-f]{8}) ([0-9a-f]{2})([0-9a-f]{2}) ([01]) " + " ".join([r"([0-9a-f]{8})"] * 7) +
                    r" ([0-9a-f]{4}) ([0-9a-f]{4}) ([0-9a-f]{8}) ([0-9a-f]{2}) ([0-9a-f]{8})$")
M_LINE = re.compile(r"^M ([0-9a-f]{8}) lo=([0-9a-f]{8}) hi=([0-9a-f]{8}) hma=([0-9a-f]{8})$")
QF_LINE = re.compile(r"^QF v=1 seed=([0-9a-f]{8}) calls=([0-9a-f]{8}) stub=([0-9a-f]{8}) kbase=([0-9a-f]{8}) "
                     r"chs=([0-9a-f]{4})/([0-9a-f]{4})/([0-9a-f]{4}) res=([0-9a-f]{8}) stubsum=([0-9a-f]{8})$")
END_LINE = re.compile(r"^END calls=([0-9a-f]{8}) res=([0-9a-f]{8}) stubsum=([0-9a-f]{8})$")
FW_SUM = re.compile(r"resident: checksum fnv=([0-9a-f]{8}) of code\+rodata \((\d+) bytes at ([0-9a-f]{8})\), "
                    r"stub code fnv=([0-9a-f]{8}) \((\d+) bytes at ([0-9a-f]{5})\)")
REG_NAMES = ("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp")


def parse(serial):
    """(qf header, [R records], [M records], END record or None) from the serial log (other lines ignored)."""
    head, recs, ms, end = None, [], [], None
    for line in serial.splitlines():
        line = line.strip("\0 \r")
        m = R_LINE.match(line)
        if m:
            v = [int(x, 16) for x in m.groups()]
            recs.append(dict(idx=v[0], ah=v[1], dl=v[2], cf=v[3], **dict(zip(REG_NAMES, v[4:11])),
                             ds=v[11], es=v[12], dapw=v[13], bda=v[14], hash=v[15]))
            continue
        m = M_LINE.match(line)
        if m:
            ms.append(tuple(int(x, 16) for x in m.groups()))
            continue
        m = QF_LINE.match(line)
        if m:
            v = [int(x, 16) for x in m.groups()]
            head = dict(seed=v[0], calls=v[1], stub=v[2], kbase=v[3], cyls=v[4], heads=v[5], spt=v[6],
                        res=v[7], stubsum=v[8])
            continue
        m = END_LINE.match(line)
        if m:
            end = dict(zip(("calls", "res", "stubsum"), (int(x, 16) for x in m.groups())))
    return head, recs, ms, end


# ------------------------------------------------------------------ image and parameters

def elf_facts(elf=ELF):
    """Offsets the guest needs to find and checksum our memory, from the firmware's symbols."""
    out = subprocess.run(["nm", elf], capture_output=True, text=True, check=True).stdout
    sym = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            sym[parts[2]] = int(parts[0], 16)
    base = sym["rm_stub_start"]
    return dict(ro_len=sym["__ro_end"], stub_off=sym["rm_int13_body"] - base,
                stub_len=(sym["rm_stub_code_end"] - sym["rm_int13_body"]) & ~3,
                gdtr_off=sym["rm_gdtr"] - base, tag_off=sym["rm_tag"] - base)


def param_sector(seed, calls, block, sectors, scratch, facts):
    s = bytearray(SECTOR)
    s[0:4] = b"QFZP"
    struct.pack_into("<IIH", s, 4, seed, calls, block)
    struct.pack_into("<II", s, 0x10, sectors, scratch)
    struct.pack_into("<IHHHH", s, 0x20, facts["ro_len"], facts["stub_off"], facts["stub_len"], facts["gdtr_off"],
                     facts["tag_off"])
    s[0x40:0x80] = FN_TABLE
    return bytes(s)


def build_disk(sectors, seed, params, guest_bin=GUEST_BIN):
    """The virtual disk's bytes: the guest at LBA 0, its parameters at LBA 1, pseudo-random data in a few regions,
    zeros elsewhere (unallocated blocks in a dynamic VHD, so writes there allocate)."""
    with open(guest_bin, "rb") as f:
        g = bytearray(f.read())
    assert len(g) == GUEST_SECTORS * SECTOR and g[510:512] == b"\x55\xaa", guest_bin
    g[SECTOR:2 * SECTOR] = params
    disk = bytearray(sectors * SECTOR)
    rnd = random.Random(seed)
    for lba, n in ((GUEST_SECTORS, 2000), (4096, 1500), (9000, 3000), (sectors - 700, 300)):
        disk[lba * SECTOR:(lba + n) * SECTOR] = rnd.randbytes(n * SECTOR)
    disk[0:len(g)] = g
    return disk


# ------------------------------------------------------------------ one run

class Result:
    def __init__(self, run, problems, calls, counts):
        self.run, self.problems, self.calls, self.counts = run, problems, calls, counts


def fw_forbidden(serial):
    facts = fh.firmware_facts(serial)
    low, high = facts["low"], facts["high"]
    return [(low["kb_after"] * 1024, low["kb_before"] * 1024), (high["base"], high["last"] + 1)], facts


def mutable_sectors(vhd_file, vhd_end, scratch, sectors):
    """[(first, end)] file sectors of a dynamic VHD (at the start of a disk) that writes to virtual sectors
    [scratch, sectors) may change: the BAT, the footer, the scratch blocks, everything past the file's end.
    A fixed VHD (no footer copy at its start): the scratch sectors themselves and its footer."""
    foot = vhd_file[:SECTOR]
    if foot[:8] != b"conectix":
        return [(scratch, sectors), (vhd_end - 1, 1 << 40)]
    hoff = struct.unpack(">Q", foot[16:24])[0]
    table, _v, entries, bsize = struct.unpack(">QIII", vhd_file[hoff + 16:hoff + 36])
    spb = bsize // SECTOR
    bitmap = (spb // 8 + SECTOR - 1) // SECTOR
    bat = struct.unpack(">%dI" % entries, vhd_file[table:table + 4 * entries])
    out = [(table // SECTOR, (table + 4 * entries + SECTOR - 1) // SECTOR)]
    for blk in range(scratch // spb, (sectors + spb - 1) // spb):
        if bat[blk] != 0xFFFFFFFF:
            out.append((bat[blk], bat[blk] + bitmap + spb))
    out.append((vhd_end - 1, 1 << 40))
    return out


def check_run(serial, disk, sectors, scratch, seed, calls, block, vhd_file_raw, facts, ro_bytes, stub_bytes):
    """Every problem found in a run's log (an empty list: the run is clean) and per-kind counts."""
    mutable = mutable_sectors(vhd_file_raw[0], vhd_file_raw[1], scratch, sectors)
    problems = []
    counts = {"ours": 0, "other": 0, "cf": 0, "refused": 0}
    head, recs, ms, end = parse(serial)
    if head is None:
        return ["no QF line from the guest"], counts, None
    forbidden, ff = fw_forbidden(serial)
    fw = FW_SUM.search(serial)
    if not fw:
        problems.append("no 'resident: checksum' line from the firmware")
    else:
        fres, fstub = int(fw.group(1), 16), int(fw.group(4), 16)
        if int(fw.group(3), 16) != head["kbase"]:
            problems.append("the guest found kernel_base %08x, the firmware says %s" % (head["kbase"], fw.group(3)))
        if int(fw.group(6), 16) != head["stub"] + facts["stub_off"]:
            problems.append("the guest found the stub at %05x, the firmware's stub code is at %s" % (
                head["stub"], fw.group(6)))
        if fres != fnv(ro_bytes):
            problems.append("firmware checksum of code+rodata %08x differs from the ELF's %08x" % (fres, fnv(ro_bytes)))
        if fstub != fnv(stub_bytes):
            problems.append("firmware checksum of the stub code %08x differs from the ELF's %08x" % (fstub, fnv(stub_bytes)))
        if (head["res"], head["stubsum"]) != (fres, fstub):
            problems.append("guest's checksums at its start %08x/%08x differ from the firmware's %08x/%08x" % (
                head["res"], head["stubsum"], fres, fstub))
        if end and (end["res"], end["stubsum"]) != (fres, fstub):
            problems.append("OUR MEMORY CHANGED: checksums after the calls %08x/%08x, before %08x/%08x" % (
                end["res"], end["stubsum"], fres, fstub))
    if end is None:
        problems.append("no END line: the guest did not finish (%d of %d calls logged)" % (len(recs), calls))
    elif end["calls"] != calls:
        problems.append("END says %d calls, expected %d" % (end["calls"], calls))
    cyls, heads, spt = ff["int13"]["cyls"], ff["int13"]["heads"], ff["int13"]["spt"]
    if ff["int13"]["sectors"] != sectors:
        problems.append("firmware serves %d sectors, the image has %d" % (ff["int13"]["sectors"], sectors))
    if (head["cyls"], head["heads"], head["spt"]) != (min(cyls, 1024), heads, spt):
        problems.append("guest geometry %s differs from the firmware's %d/%d/%d" % (
            (head["cyls"], head["heads"], head["spt"]), cyls, heads, spt))
    ctx = Ctx(sectors, scratch, head["cyls"], head["heads"], head["spt"], head["stub"], head["kbase"])
    mem = Mem(seed)
    model = Model(bytearray(disk), sectors, cyls, heads, spt, forbidden, 2, mem)
    g = Rng(seed)
    mi = 0
    for i in range(calls):
        c = gen_call(g, ctx)
        if i >= len(recs):
            break
        rec = recs[i]
        if rec["idx"] != i or rec["ah"] != c.ah or rec["dl"] != c.dl:
            problems.append("call %d: the guest ran %02x/%02x, the generator says %02x/%02x (generator drift)" % (
                i, rec["ah"], rec["dl"], c.ah, c.dl))
            break
        if c.dap:
            mem.write(DAP_BASE, bytes(DAP_AREA))
            mem.write(c.dap[0], c.dap[1])
        if c.edd and c.ours:
            mem.write(c.edd[0], struct.pack("<H", c.edd[1]))
        r = dict(c.regs)
        if c.ours:
            counts["ours"] += 1
            cf = model.call(r)
            exp = dict(r, cf=cf, bda=model.bda if model.bda is not None else rec["bda"],
                       dapw=struct.unpack("<I", mem.read(c.dap_lin, 4))[0] if c.dap_lin else 0,
                       hash=fnv(mem.read(*c.window)) if c.window[1] else FNV_BASIS)
            diffs = [k for k in ("cf",) + REG_NAMES + ("ds", "es", "dapw", "bda", "hash") if exp[k] != rec[k]]
            if diffs:
                problems.append("call %d AH=%02x DL=80: %s; in %s; got %s; expected %s" % (
                    i, c.ah, ",".join(diffs), _fmt(c.regs), _fmt(rec), _fmt(exp)))
            counts["cf"] += cf
            counts["refused"] += cf and (r["eax"] >> 8) & 0xFF == 1
        else:
            counts["other"] += 1
            model.bda = rec["bda"]
            if c.dap:     # the BIOS may have written the DAP's count
                mem.write(c.dap_lin, struct.pack("<I", rec["dapw"]))
            if c.ah not in (0x08, 0x15) and rec["edx"] & 0xFF != c.dl:
                problems.append("call %d AH=%02x DL=%02x: DL came back %02x (the hook must restore it)" % (
                    i, c.ah, c.dl, rec["edx"] & 0xFF))
            # (CHS reads of 81h use the BIOS's own geometry for that disk: not ours to predict, data not checked)
            if c.dl == 0x81 and c.ah == 0x42 and rec["cf"] == 0 and c.window[1]:
                lba = struct.unpack("<Q", c.dap[1][8:16])[0]
                n = c.window[1] // SECTOR
                a, b = lba * SECTOR, (lba + n) * SECTOR
                want = fnv(vhd_file_raw[0][a:b].ljust(n * SECTOR, b"\0"))
                # file sectors vhdboot may rewrite during the run (BAT, footer, scratch blocks, growth) are skipped
                if not any(lba < e and s0 < lba + n for s0, e in mutable) and rec["hash"] != want:
                    problems.append("call %d: 42h read of BIOS disk 81h LBA %d+%d returned data that is not "
                                    "the disk's" % (i, lba, n))
        if (i + 1) % block == 0 or i + 1 == calls:
            hs = mem.arena_hashes()
            if mi >= len(ms):
                problems.append("no M line after call %d" % i)
            elif ms[mi] != (i,) + hs:
                problems.append("arena hashes (low, high, HMA) after call %d: got %s expected %s%s" % (
                    i, "/".join("%08x" % h for h in ms[mi][1:]), "/".join("%08x" % h for h in hs),
                    "" if ms[mi][0] == i else " (M line for call %d)" % ms[mi][0]))
            mi += 1
        if len(problems) > 20:
            problems.append("(stopped after 20 problems)")
            break
    if len(recs) != calls:
        problems.append("%d R lines, expected %d" % (len(recs), calls))
    return problems, counts, model


def _fmt(d):
    return " ".join("%s=%x" % (k, d[k]) for k in ("cf",) + REG_NAMES + ("ds", "es", "dapw", "bda", "hash") if k in d)


def iso_with(cmdline, work):
    """vhdboot.iso with another command line (tools/mkiso.sh over ELF), made once per work directory."""
    out = os.path.join(work, "qf-%s.iso" % re.sub(r"[^A-Za-z0-9]+", "-", cmdline))
    if not os.path.exists(out):
        subprocess.run(["sh", os.path.join(fh.ROOT, "tools", "mkiso.sh"), cmdline, out], check=True,
                       capture_output=True, env=dict(os.environ, VHDBOOT_ELF=ELF))
    return out


def run_one(work, seed, calls, block=64, sectors=16168, scratch_sectors=1024, timeout=None, log=None,
            vhd_type="dynamic", cmdline=""):
    """Build a VHD (vhd_type dynamic: 512 KiB blocks at the start of a bigger disk; fixed: the whole disk) for seed,
    boot it through vhdboot (cmdline: e.g. "disk=bios", the IDE disk through SeaBIOS's INT 13h, where a fixed VHD's
    AH=42h reads take the stub's real-mode fast path), check the log and the image. Returns (problems, info)."""
    facts = elf_facts()
    with open(ELF, "rb") as f:
        elf = f.read()
    ro_bytes, stub_bytes = _elf_ranges(elf, facts)
    scratch = sectors - scratch_sectors
    disk = build_disk(sectors, seed, param_sector(seed, calls, block, sectors, scratch, facts))
    raw = os.path.join(work, "qf-%d.raw" % seed)
    vhd = os.path.join(work, "qf-%d.vhd" % seed)
    with open(raw, "wb") as f:
        f.write(disk)
    if os.path.exists(vhd):
        os.unlink(vhd)
    if vhd_type == "fixed":
        fh.vhdtool_vhd(raw, vhd, "fixed")
        vhd_end = os.path.getsize(vhd) // SECTOR
        hd = os.path.join(work, "qf-%d.disk" % seed)
        os.replace(vhd, hd)
    else:
        fh.vhdtool_vhd(raw, vhd, "dynamic", block="512K")
        # the VHD at the start of a bigger disk, so that writes to unallocated blocks have room to grow it
        # (on a disk exactly its size they answer CCh: correct, but then the model would have to know the BAT)
        vhd_end = os.path.getsize(vhd) // SECTOR
        hd = wg.on_bigger_disk(vhd, os.path.join(work, "qf-%d.disk" % seed), sectors * SECTOR)
    with open(hd, "rb") as f:
        vhd_file = f.read()
    iso = iso_with(cmdline, work) if cmdline else fh.ISO
    run = fh.run_qemu([(0, hd)], iso=iso, timeout=timeout or (120 + calls // 20), workdir=work)
    if log:
        with open(log, "w") as f:
            f.write(run.serial)
    problems = []
    if run.timed_out:
        problems.append("QEMU timed out (a hang?) after %.0f s" % run.elapsed)
    elif run.rc != fh.EXIT_DONE:
        problems.append("guest exit status %s, expected %d" % (run.rc, fh.EXIT_DONE))
    if "resident: high memory reserved" not in run.serial:
        return problems + ["firmware did not reach the guest"], dict(run=run)
    p, counts, model = check_run(run.serial, disk, sectors, scratch, seed, calls, block, (vhd_file, vhd_end), facts,
                                 ro_bytes, stub_bytes)
    problems += p
    # the image file, read back by qemu-img, must be the model's disk: writes landed where they should, nothing else
    back = os.path.join(work, "qf-%d.back" % seed)
    if vhd_type == "fixed":
        os.replace(hd, vhd)
        hd = vhd + ".gone"
        open(hd, "wb").close()
    else:
        wg.extract_prefix(hd, vhd)
    fh.run_tool([fh.QEMU_IMG, "convert", "-f", "vpc", "-O", "raw", vhd, back])
    with open(back, "rb") as f:
        img = f.read()[:sectors * SECTOR]
    if img != bytes(model.disk):
        bad = [i for i in range(sectors) if img[i * SECTOR:(i + 1) * SECTOR] != model.disk[i * SECTOR:(i + 1) * SECTOR]]
        problems.append("the image differs from the model in %d sectors (first %s)%s" % (
            len(bad), bad[:8], "" if all(b >= scratch for b in bad) else "; SOME OUTSIDE THE SCRATCH REGION"))
    changed = sum(1 for i in range(scratch, sectors)
                  if disk[i * SECTOR:(i + 1) * SECTOR] != model.disk[i * SECTOR:(i + 1) * SECTOR])
    for f in (raw, back, hd):
        os.unlink(f)

    def recheck(serial):
        """The log checks alone (no image comparison) over another serial log: to show the checker can fail."""
        return check_run(serial, disk, sectors, scratch, seed, calls, block, (vhd_file, vhd_end), facts,
                         ro_bytes, stub_bytes)[0]
    return problems, dict(run=run, counts=counts, written_sectors=changed, vhd=vhd, recheck=recheck)


def _elf_ranges(elf, facts):
    """Bytes of [0, ro_len) (link address 0) and of the stub's code, from the ELF's program bytes."""
    # the image is one PT_LOAD whose file offset maps link address 0 (linker.ld): find it from the program header
    e_phoff = struct.unpack_from("<I", elf, 28)[0]
    p_type, p_offset, p_vaddr = struct.unpack_from("<III", elf, e_phoff)
    assert p_type == 1 and p_vaddr == 0, "vhdboot.elf: unexpected first program header"
    ro = elf[p_offset:p_offset + facts["ro_len"]]
    syms = subprocess.run(["nm", ELF], capture_output=True, text=True, check=True).stdout
    start = int([ln.split()[0] for ln in syms.splitlines() if ln.endswith(" rm_int13_body")][0], 16)
    return ro, elf[p_offset + start:p_offset + start + facts["stub_len"]]


def main():
    ap = argparse.ArgumentParser(description="INT 13h fuzz campaign in QEMU (tests/qemu/progs/qfuzz.asm)")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--block", type=int, default=64)
    ap.add_argument("--type", default="dynamic", choices=("dynamic", "fixed"),
                    help="the VHD: dynamic (512 KiB blocks, default) or fixed")
    ap.add_argument("--cmdline", default="",
                    help="vhdboot's command line, e.g. disk=bios (the IDE disk through the BIOS backend; with "
                         "--type fixed the stub's real-mode AH=42h fast path serves the reads it can)")
    ap.add_argument("--keep", help="directory for images and logs (default: a temporary one)")
    a = ap.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="qfuzz-")
    os.makedirs(work, exist_ok=True)
    total = bad = 0
    for seed in range(a.first_seed, a.first_seed + a.seeds):
        log = os.path.join(work, "qf-%d.log" % seed)
        problems, info = run_one(work, seed, a.calls, a.block, log=log, vhd_type=a.type, cmdline=a.cmdline)
        total += a.calls
        c = info.get("counts", {})
        print("seed %d: %d calls (%s), %d scratch sectors written, %.0f s: %s" % (
            seed, a.calls, ", ".join("%s %d" % kv for kv in c.items()), info.get("written_sectors", 0),
            info["run"].elapsed, "ok" if not problems else "%d PROBLEM(S)" % len(problems)), flush=True)
        for p in problems:
            print("  " + p)
        bad += bool(problems)
    print("campaign: %d seeds, %d calls, %d seed(s) with problems; logs in %s" % (a.seeds, total, bad, work))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
