"""writeguest.py: host side of tests/qemu/progs/writetest.asm: parameter sector, the sector pattern, images, log parsing, image read-back.

Used by tests/qemu/test_writes.py, tests/qemu/powercut.py and bench/int13_write.py. Stdlib only.
"""
import os
import re
import struct
import subprocess

import firmware_harness as fh

ROOT = fh.ROOT
GUEST_BIN = os.path.join(fh.BUILD, "guest", "writetest.bin")
GUEST_SECTORS = 8
SECTOR = 512
MODE_OPS, MODE_POWERCUT, MODE_BENCH = 0, 1, 2
WRITE, READ = 1, 2
FN_43, FN_43V, FN_03 = 0x43, 0x45, 0x03      # 43h AL=0, 43h AL=2 (verify), 03h CHS
MAX_OPS = 28
SCAN_SECTORS = 4096                           # VHD_LAYOUT_SCAN_SECTORS in vhd/vhd.h


def pattern(lba, tag, count=1):
    """count sectors of the guest's pattern for LBAs lba.. with tag (see writetest.asm)."""
    out = bytearray()
    for L in range(lba, lba + count):
        L32 = L & 0xFFFFFFFF
        x = ((L32 * 0x9E3779B1) & 0xFFFFFFFF) ^ tag
        d = [L32, tag]
        for _ in range(126):
            x = (x * 1664525 + 1013904223) & 0xFFFFFFFF
            d.append(x)
        out += struct.pack("<128I", *d)
    return bytes(out)


def sector_tag(data, lba):
    """The tag of a sector holding the pattern for lba, or None if it is not a whole pattern sector."""
    L, tag = struct.unpack_from("<II", data)
    if L != (lba & 0xFFFFFFFF):
        return None
    return tag if pattern(lba, tag) == data else None


def fnv(data):
    return fh.fnv_dwords(data)


class Params:
    """The parameter sector (WP_* in writetest.asm)."""

    def __init__(self, mode=MODE_OPS, ops=(), pc=(0, 0, 0, 1, 0), bench=(0, 0)):
        self.mode, self.ops, self.pc, self.bench = mode, list(ops), pc, bench
        assert len(self.ops) <= MAX_OPS

    def sector(self):
        s = bytearray(SECTOR)
        s[0:4] = b"WRTP"
        base, span, step, maxn, count = self.pc
        struct.pack_into("<HHIIIHxxIII", s, 4, self.mode, len(self.ops), base, span, step, maxn, count,
                         self.bench[0], self.bench[1])
        for i, (kind, fn, lba, n, tag) in enumerate(self.ops):
            assert 1 <= n <= (64 if fn == FN_03 else 127)
            struct.pack_into("<BBHII", s, 0x40 + 16 * i, kind, fn, n, lba, tag)
        return bytes(s)


def guest_image(params):
    with open(GUEST_BIN, "rb") as fh_:
        g = bytearray(fh_.read())
    assert len(g) == GUEST_SECTORS * SECTOR and g[510:512] == b"\x55\xaa"
    g[SECTOR:2 * SECTOR] = params.sector()
    return bytes(g)


def vhdtool(*args, input=None, check=True):
    p = subprocess.run([fh.VHDTOOL] + [str(a) for a in args], input=input, capture_output=True, timeout=600)
    if check:
        assert p.returncode == 0, "vhdtool %s -> %d\n%s" % (" ".join(map(str, args)), p.returncode,
                                                            p.stderr.decode(errors="replace"))
    return p


def make_vhd(path, kind, size, params, block=None):
    """A new empty VHD (vhdtool create) with the guest written at LBA 0."""
    args = ["create", "-t", kind, "-s", str(size)]
    if block:
        args += ["-b", block]
    vhdtool(*args, "-f", path)
    vhdtool("write", path, 0, input=guest_image(params))
    return path


def vhd_read(path, lba, count):
    """count virtual sectors at lba through vhdtool read."""
    return vhdtool("read", path, lba, count).stdout


def qemu_img_read(path, lba, count, work):
    """count virtual sectors at lba through qemu-img convert -f vpc -O raw (current size from the footer)."""
    out = os.path.join(work, "qemu-img-%d.raw" % os.getpid())
    subprocess.run([fh.QEMU_IMG, "convert", "--image-opts",
                    "driver=vpc,force_size_calc=current_size,file.driver=file,file.filename=%s" % path,
                    "-O", "raw", out], check=True, capture_output=True, timeout=600)
    try:
        return fh.read_sectors(out, lba, count)
    finally:
        os.unlink(out)


def check(path):
    """vhdtool check: (exit code, output)."""
    p = vhdtool("check", path, check=False)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


_REC = re.compile(r"^(W|H|C|E) (.*)$")


def records(serial):
    """[(kind, {field: int})] for the guest's W/H/C/E lines."""
    out = []
    for line in serial.splitlines():
        m = _REC.match(line.strip("\0 \r"))
        if m:
            out.append((m.group(1), {k: int(v, 16) for k, v in re.findall(r"(\w+)=([0-9a-f]+)", m.group(2))}))
    return out


def prefix_image_end(disk):
    """Sectors of the dynamic VHD at the start of the raw disk file `disk` (footer included), found as the
    firmware does: past the header, BAT and highest block, where a sector equal to the footer copy at 0 sits."""
    with open(disk, "rb") as f:
        foot = f.read(SECTOR)
        assert foot[0:8] == b"conectix"
        hoff, size = struct.unpack(">Q", foot[16:24])[0], struct.unpack(">Q", foot[48:56])[0]
        f.seek(hoff)
        h = f.read(1024)
        table, _v, entries, bsize = struct.unpack(">QIII", h[16:36])
        spb = bsize // SECTOR
        bitmap = (spb // 8 + SECTOR - 1) // SECTOR
        f.seek(table)
        bat = struct.unpack(">%dI" % entries, f.read(4 * entries))
        end = max((hoff + 1024 + SECTOR - 1) // SECTOR, (table + 4 * entries + SECTOR - 1) // SECTOR)
        for i, e in enumerate(bat[:(size + bsize - 1) // bsize]):
            if e != 0xFFFFFFFF:
                end = max(end, e + bitmap + spb)
        # After a cut between the footer's move and the BAT update the footer sits one block further
        # (the firmware scans the same way, up to VHD_LAYOUT_SCAN_SECTORS).
        for s in range(end, end + SCAN_SECTORS + 1):
            f.seek(s * SECTOR)
            if f.read(SECTOR) == foot:
                return s + 1
    raise AssertionError("%s: no end footer within %d sectors after sector %d" % (disk, SCAN_SECTORS, end))


def extract_prefix(disk, out):
    """Copy the VHD at the start of disk into out (its first prefix_image_end() sectors); returns out."""
    n = prefix_image_end(disk) * SECTOR
    with open(disk, "rb") as src, open(out, "wb") as dst:
        while n:
            b = src.read(min(n, 1 << 20))
            dst.write(b)
            n -= len(b)
    return out


def on_bigger_disk(vhd, disk, extra):
    """disk = the VHD file followed by `extra` zero bytes (a .vhd dd'd onto a larger disk)."""
    with open(vhd, "rb") as src, open(disk, "wb") as dst:
        while True:
            b = src.read(1 << 20)
            if not b:
                break
            dst.write(b)
        dst.truncate(dst.tell() + extra)
    return disk
