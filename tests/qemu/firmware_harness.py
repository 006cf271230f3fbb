"""firmware_harness.py: build guest test images, boot them in QEMU (SeaBIOS alone or through vhdboot), parse the serial log.

Stdlib only. Used by tests/qemu/test_firmware.py and the QEMU benchmarks in bench/.

The guest (tests/qemu/progs/int13test.asm, built to build/guest/int13test.bin)
sits at LBA 0..GUEST_SECTORS-1 of the disk it tests. LBA 1 is its parameter
sector, written here (Params.sector()), so one binary serves every case.
It prints one record per line on COM1 ("T 41 dl=80 ax=3080 ... cf=00",
"SUM 42 lba=... count=... fnv=...", ...; see the header of int13test.asm) and
ends QEMU through the isa-debug-exit device at port 0xF4:

    guest writes v to port 0xF4  ->  QEMU exits with status (v << 1) | 1
    v = 0x10 "DONE"   -> EXIT_DONE  = 33
    v = 0x11 "FATAL"  -> EXIT_FATAL = 35
    anything else (QEMU's own exit, -no-reboot on a reset/triple fault) is a failure.

Every number the guest prints is lower-case hex without a prefix.
"""
import hashlib
import os
import random
import re
import shutil
import struct
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/qemu/ -> repository
BUILD = os.path.join(ROOT, "build")
ISO = os.path.join(BUILD, "vhdboot.iso")
GUEST_BIN = os.path.join(BUILD, "guest", "int13test.bin")
VHDTOOL = os.environ.get("VHDTOOL", os.path.join(BUILD, "vhdtool"))
QEMU = os.environ.get("QEMU", "qemu-system-i386")
QEMU_IMG = os.environ.get("QEMU_IMG", "qemu-img")

SECTOR = 512
GUEST_SECTORS = 16
DEBUG_EXIT_PORT = 0xF4
EXIT_DONE = (0x10 << 1) | 1    # 33
EXIT_FATAL = (0x11 << 1) | 1   # 35
CHS_VALID_LIMIT = 15482880     # AH=48h sets "CHS valid" only up to this many sectors

FNV_BASIS = 0x811C9DC5
FNV_PRIME = 0x01000193

# Guest parameter flags (PARAM_FLAGS in int13test.asm).
F_BASIC, F_RANGES, F_XREADS, F_MEMORY, F_BENCH, F_HALT, F_BENCHAB = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40
MAX_RANGES, MAX_XREADS = 28, 4


# ------------------------------------------------------------------ hashing

def fnv_dwords(data, h=FNV_BASIS):
    """32-bit FNV-1a over the little-endian dwords of data (len a multiple of 4), as the guest does."""
    for (d,) in struct.iter_unpack("<I", data):
        h = ((h ^ d) * FNV_PRIME) & 0xFFFFFFFF
    return h


_chunk_cache = {}


def chunk_hash(data):
    """fnv_dwords(data), cached by content (most chunks of a test image are zeros)."""
    key = hashlib.blake2b(data, digest_size=16).digest()
    h = _chunk_cache.get(key)
    if h is None:
        h = _chunk_cache[key] = fnv_dwords(data)
    return h


def fold(hashes):
    """Hash of a SUM line: FNV-1a over the list of its chunk hashes."""
    h = FNV_BASIS
    for c in hashes:
        h = ((h ^ c) * FNV_PRIME) & 0xFFFFFFFF
    return h


def read_sectors(path, lba, count):
    """count sectors at lba of a file; zeros past its end."""
    with open(path, "rb") as fh:
        fh.seek(lba * SECTOR)
        data = fh.read(count * SECTOR)
    return data + bytes(count * SECTOR - len(data))


def expected_sums(path, ranges, chunk, group):
    """The SUM 42 records (lba, count, fnv) the guest prints for ranges [(lba, count)] of the disk image path."""
    out = []
    with open(path, "rb") as fh:
        for lba, count in ranges:
            cur, left = lba, count
            while left:
                start, n_line, hashes = cur, 0, []
                while left and len(hashes) < group:
                    n = min(chunk, left)
                    fh.seek(cur * SECTOR)
                    data = fh.read(n * SECTOR)
                    data += bytes(n * SECTOR - len(data))
                    hashes.append(chunk_hash(data))
                    cur, left, n_line = cur + n, left - n, n_line + n
                out.append((start, n_line, fold(hashes)))
    return out


# ------------------------------------------------------------------ parameter sector

class Params:
    """The guest's parameter sector (LBA 1); layout as PARAM_* in int13test.asm."""

    def __init__(self, flags=F_BASIC | F_RANGES | F_XREADS | F_MEMORY, chunk=64, group=16,
                 ranges=(), xreads=(), chs=(0, 0), bench=(0, 0)):
        self.flags, self.chunk, self.group = flags, chunk, group
        self.ranges = [(int(a), int(b)) for a, b in ranges]   # (lba, sectors) read with AH=42h
        self.xreads = [tuple(x) for x in xreads]              # (drive, lba, sectors <= 64)
        self.chs = chs                                        # (lba, sectors <= 64) read with AH=02h
        self.bench = bench                                    # (lba, sectors)
        assert len(self.ranges) <= MAX_RANGES and len(self.xreads) <= MAX_XREADS
        assert 1 <= chunk <= 64 and group >= 1 and chs[1] <= 64

    def sector(self):
        s = bytearray(SECTOR)
        s[0:4] = b"I13P"
        struct.pack_into("<IHHHHIHHII", s, 4, self.flags, self.chunk, self.group, len(self.ranges),
                         len(self.xreads), self.chs[0], self.chs[1], 0, self.bench[0], self.bench[1])
        for i, (drive, lba, n) in enumerate(self.xreads):
            struct.pack_into("<BBHI", s, 0x20 + 8 * i, drive, 0, n, lba)
        for i, (lba, n) in enumerate(self.ranges):
            struct.pack_into("<QII", s, 0x40 + 16 * i, lba, n, 0)
        return bytes(s)


def guest_image(params, guest_bin=GUEST_BIN):
    """The guest's sectors with the parameter sector filled in."""
    with open(guest_bin, "rb") as fh:
        g = bytearray(fh.read())
    assert len(g) == GUEST_SECTORS * SECTOR, "%s: %d bytes, expected %d" % (guest_bin, len(g), GUEST_SECTORS * SECTOR)
    assert g[510:512] == b"\x55\xaa"
    g[SECTOR:2 * SECTOR] = params.sector()
    return bytes(g)


# ------------------------------------------------------------------ images

def build_raw(path, size, regions, params, seed=1, guest_bin=GUEST_BIN):
    """A sparse raw disk of size bytes: deterministic pseudo-random data in regions [(lba, sectors)],
    zeros elsewhere, the guest (with params) at LBA 0."""
    rnd = random.Random(seed)
    with open(path, "wb") as fh:
        fh.truncate(size)
        for lba, n in regions:
            assert (lba + n) * SECTOR <= size, (lba, n)
            fh.seek(lba * SECTOR)
            fh.write(rnd.randbytes(n * SECTOR))
        fh.seek(0)
        fh.write(guest_image(params, guest_bin))
    return path


def build_plain_disk(path, size, seed, bootable=False):
    """A non-VHD raw disk full of pseudo-random data (no 55AA at the end of LBA 0 unless bootable)."""
    data = bytearray(random.Random(seed).randbytes(size))
    data[510:512] = b"\x55\xaa" if bootable else b"\0\0"
    # never a VHD footer by accident
    data[-SECTOR:-SECTOR + 8] = b"notavhd!"
    data[0:8] = b"notavhd!"
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def run_tool(args, timeout=600):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, "$ %s\n-> exit %d\n%s%s" % (" ".join(map(str, args)), p.returncode, p.stdout, p.stderr)
    return p


def qemu_img_vhd(raw, out, subformat):
    """raw -> VHD with qemu-img (vpc driver), exact size (force_size)."""
    run_tool([QEMU_IMG, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=%s,force_size=on" % subformat, raw, out])
    return out


def vhdtool_vhd(raw, out, kind, block=None, vhdtool=VHDTOOL):
    """raw -> VHD with build/vhdtool; kind fixed|dynamic, block e.g. '512K'."""
    args = [vhdtool, "convert", "-f", "raw", "-O", kind]
    if block:
        args += ["-b", block]
    run_tool(args + [raw, out])
    return out


def vhd_info(path):
    """Footer and (for dynamic) header/BAT facts of a VHD file, parsed independently of vhd/."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        fh.seek(size - SECTOR)
        f = fh.read(SECTOR)
        assert f[0:8] == b"conectix", "%s: no footer" % path
        info = {"file_size": size, "data_offset": struct.unpack(">Q", f[16:24])[0],
                "current_size": struct.unpack(">Q", f[48:56])[0], "type": struct.unpack(">I", f[60:64])[0]}
        if info["type"] in (3, 4):
            fh.seek(info["data_offset"])
            h = fh.read(1024)
            assert h[0:8] == b"cxsparse"
            table, _version, entries, block = struct.unpack(">QIII", h[16:36])
            fh.seek(table)
            bat = struct.unpack(">%dI" % entries, fh.read(4 * entries))
            info.update(block_size=block, bat_entries=entries,
                        allocated=sum(1 for e in bat if e != 0xFFFFFFFF))
    return info


def vhd_hide_sectors(path, lbas, seed=99):
    """In a dynamic VHD, clear the sector-bitmap bits of lbas (whose blocks must be allocated) and
    fill their on-disk data with garbage: a reader honouring the bitmap returns zeros for them."""
    info = vhd_info(path)
    spb = info["block_size"] // SECTOR
    bitmap_sectors = (spb // 8 + SECTOR - 1) // SECTOR
    rnd = random.Random(seed)
    with open(path, "r+b") as fh:
        fh.seek(info["data_offset"] + 16)
        table = struct.unpack(">Q", fh.read(8))[0]
        for lba in lbas:
            blk, s = divmod(lba, spb)
            fh.seek(table + 4 * blk)
            ent = struct.unpack(">I", fh.read(4))[0]
            assert ent != 0xFFFFFFFF, "LBA %d: block %d not allocated" % (lba, blk)
            fh.seek(ent * SECTOR + s // 8)
            b = fh.read(1)[0] & ~(0x80 >> (s % 8))
            fh.seek(ent * SECTOR + s // 8)
            fh.write(bytes([b]))
            fh.seek((ent + bitmap_sectors + s) * SECTOR)
            fh.write(rnd.randbytes(SECTOR))


def damage_footer_checksums(path):
    """Break the checksum of the footer at the end and of its copy at offset 0 (dynamic images)."""
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:
        for off in (0, size - SECTOR):
            fh.seek(off)
            f = bytearray(fh.read(SECTOR))
            if f[0:8] != b"conectix":
                continue
            f[64:68] = struct.pack(">I", struct.unpack(">I", f[64:68])[0] ^ 0x5A5A5A5A)
            fh.seek(off)
            fh.write(f)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------ QEMU

class Run:
    """One QEMU run: serial text, timestamped lines, exit status, SeaBIOS debug log."""

    def __init__(self, cmd, serial, lines, rc, timed_out, stopped, seabios, elapsed):
        self.cmd, self.serial, self.lines, self.rc = cmd, serial, lines, rc
        self.timed_out, self.stopped, self.seabios, self.elapsed = timed_out, stopped, seabios, elapsed
        self.log = GuestLog(serial)

    def describe(self, limit=6000):
        """Evidence for an assertion message: command, exit status, serial log (tail), SeaBIOS log (tail)."""
        s = self.serial if len(self.serial) <= limit else "[...]\n" + self.serial[-limit:]
        return ("$ %s\n-> rc=%s timed_out=%s stopped=%s (%.1fs)\n--- serial:\n%s\n--- SeaBIOS debug (tail):\n%s"
                % (" ".join(self.cmd), self.rc, self.timed_out, self.stopped, self.elapsed, s, self.seabios[-1500:]))


def qemu_cmd(drives, iso=None, boot=None, extra=(), seabios_log=None, debug_exit=True, mem=256, qemu=None):
    """qemu-system-i386 command line. drives: [(index, path)] raw IDE disks (0 pm, 1 ps, 2 sm, 3 ss).
    iso: CD image (secondary master, index 2). qemu: another binary (e.g. qemu-system-x86_64)."""
    cmd = [qemu or QEMU, "-accel", "tcg", "-m", str(mem), "-display", "none", "-serial", "stdio", "-no-reboot",
           "-monitor", "none", "-nic", "none"]
    if debug_exit:
        cmd += ["-device", "isa-debug-exit,iobase=0x%x,iosize=0x04" % DEBUG_EXIT_PORT]
    if seabios_log:
        cmd += ["-chardev", "file,id=seabios,path=%s" % seabios_log, "-device", "isa-debugcon,iobase=0x402,chardev=seabios"]
    if iso:
        cmd += ["-drive", "file=%s,media=cdrom,if=ide,index=2,readonly=on" % iso]
    for index, path in drives:
        cmd += ["-drive", "file=%s,format=raw,if=ide,index=%d" % (path, index)]
    cmd += ["-boot", boot or ("d" if iso else "c")]
    return cmd + list(extra)


def run_qemu(drives, iso=None, boot=None, timeout=120, stop_on=None, stop_on_bios=None, workdir=None,
             on_line=None, stop_on_raw=None, send=None, **kw):
    """Boot; collect serial lines (with arrival times) until QEMU exits, stop_on (regex) matches a
    serial line, stop_on_bios (regex) matches SeaBIOS's debug log (needs workdir), stop_on_raw
    (regex) matches the serial output so far even without a newline (full-screen guests such as
    memtest86+), or timeout seconds pass (then QEMU is killed and Run.timed_out is set).
    send: [(regex, bytes)]: when a serial line matches the next rule's regex, its bytes are
    written to QEMU's stdin, i.e. typed on COM1 (rules are used in order, each once); bytes may be
    a function of the re.Match."""
    seabios_log = os.path.join(workdir, "seabios-%d-%d.log" % (os.getpid(), time.monotonic_ns())) if workdir else None
    cmd = qemu_cmd(drives, iso, boot, seabios_log=seabios_log, **kw)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE if send else subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    pending_send = [(re.compile(rx), data) for rx, data in (send or [])]
    lines, buf = [], []
    stop = re.compile(stop_on) if stop_on else None
    stopped = threading.Event()

    raw_stop = re.compile(stop_on_raw.encode("latin-1")) if stop_on_raw else None

    def raw_reader():
        seen, pending = b"", b""
        for data in iter(lambda: p.stdout.read1(65536), b""):
            buf.append(data)
            seen = (seen + data)[-65536:]
            *done, pending = (pending + data).split(b"\n")
            for raw in done:
                lines.append((time.monotonic() - t0, raw.decode("latin-1").rstrip("\r")))
            if raw_stop.search(seen) and not stopped.is_set():
                stopped.set()
                p.kill()
        if pending:
            lines.append((time.monotonic() - t0, pending.decode("latin-1").rstrip("\r")))

    def reader():
        if raw_stop:
            return raw_reader()
        for raw in iter(p.stdout.readline, b""):
            buf.append(raw)
            line = raw.decode("latin-1").rstrip("\r\n")
            lines.append((time.monotonic() - t0, line))
            if on_line:
                on_line(line)
            m = pending_send[0][0].search(line) if pending_send else None
            if m:
                data = pending_send.pop(0)[1]
                try:
                    p.stdin.write(data(m) if callable(data) else data)
                    p.stdin.flush()
                except OSError:
                    pass
            if stop and stop.search(line) and not stopped.is_set():
                stopped.set()
                p.kill()

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    timed_out = False
    bios_stop = re.compile(stop_on_bios) if stop_on_bios and seabios_log else None
    deadline = t0 + timeout
    while True:
        try:
            p.wait(timeout=0.25 if bios_stop else max(0.0, deadline - time.monotonic()))
            break
        except subprocess.TimeoutExpired:
            pass
        if bios_stop and os.path.exists(seabios_log):
            with open(seabios_log, "rb") as fh:
                if bios_stop.search(fh.read().decode("latin-1")):
                    stopped.set()
                    p.kill()
                    p.wait()
                    break
        if time.monotonic() >= deadline:
            timed_out = True
            p.kill()
            p.wait()
            break
    th.join(5)
    elapsed = time.monotonic() - t0
    seabios = ""
    if seabios_log and os.path.exists(seabios_log):
        with open(seabios_log, "rb") as fh:
            seabios = fh.read().decode("latin-1")
        os.unlink(seabios_log)
    serial = b"".join(buf).decode("latin-1").replace("\r\n", "\n")
    return Run(cmd, serial, lines, p.returncode, timed_out, stopped.is_set(), seabios, elapsed)


# ------------------------------------------------------------------ serial log

_KV = re.compile(r"(\S+?)=(\S+)")


class GuestLog:
    """Parsed serial output: guest records (T / SUM / ERR / BENCH) and everything else (firmware lines)."""

    def __init__(self, text):
        self.text = text
        self.tests = []       # (name, {key: int or str})
        self.sums = {"42": [], "02": []}
        self.errs = []
        self.bench = {}
        self.other = []       # lines that are not the guest's: firmware, BIOS
        self.boot = None
        self.guest = None
        self.done = False
        for line in text.splitlines():
            line = line.strip("\0 ")
            words = line.split()
            if not words:
                continue
            kv = {k: _num(v) for k, v in _KV.findall(line)}
            if words[0] == "T" and len(words) > 1:
                self.tests.append((words[1], kv))
            elif words[0] == "SUM" and len(words) > 1:
                self.sums.setdefault(words[1], []).append(kv)
            elif words[0] == "ERR":
                self.errs.append(line)
            elif words[0] == "BENCH" and len(words) > 1:
                self.bench[words[1]] = kv
            elif words[0] == "BOOT":
                self.boot = kv
            elif words[0] == "GUEST":
                self.guest = kv
            elif line == "DONE":
                self.done = True
            else:
                self.other.append(line)

    def all(self, name):
        return [kv for n, kv in self.tests if n == name]

    def one(self, name, **match):
        """The first T record called name whose fields equal match (e.g. dl=0x81)."""
        for kv in self.all(name):
            if all(kv.get(k) == v for k, v in match.items()):
                return kv
        raise AssertionError("no 'T %s' record matching %s in the serial log" % (name, match))

    def sum_records(self, kind="42"):
        return [(kv["lba"], kv["count"], kv["fnv"]) for kv in self.sums.get(kind, [])]

    def e820(self):
        return [(kv["base"], kv["len"], kv["type"]) for kv in self.all("E820")]


def _num(v):
    try:
        return int(v, 16)
    except ValueError:
        if ":" in v:
            seg, off = v.split(":", 1)
            try:
                return (int(seg, 16) << 4) + int(off, 16)
            except ValueError:
                pass
        return v


# ------------------------------------------------------------------ decoding helpers

def decode_08(kv):
    """(cylinders, heads, sectors per track, drive count) from raw AH=08h registers."""
    cx, dx = kv["cx"], kv["dx"]
    spt = cx & 0x3F
    cyls = (((cx & 0xC0) << 2) | (cx >> 8)) + 1
    heads = (dx >> 8) + 1
    return cyls, heads, spt, dx & 0xFF


# Firmware log lines (kernel/main.c) the tests read; each regex names its fields.
FW_PATTERNS = {
    "low": r"resident: low stub (?P<stub_bytes>\d+) bytes at (?P<stub_seg>[0-9a-fA-F]{4}):0000, "
           r"conventional memory (?P<kb_before>\d+) -> (?P<kb_after>\d+) KiB",
    "high": r"resident: high memory reserved (?P<kib>\d+) KiB at (?P<base>[0-9a-fA-F]{8})-(?P<last>[0-9a-fA-F]{8})",
    "ext": r"extended memory now (?P<ext_kb>\d+) KiB",
    "jump_ms": r"boot: (?P<ms>\d+) ms from kernel entry to the guest jump",
    "jump": r"boot: jumping to the guest MBR",
    "int13": r"int13: drive (?P<drive>[0-9a-fA-F]{2})h = VHD.*?(?P<sectors>\d+) sectors, BIOS geometry "
             r"(?P<cyls>\d+)/(?P<heads>\d+)/(?P<spt>\d+)",
    "error": r"vhdboot: ERROR: (?P<msg>.*)",
    "int18": r"handing back to the BIOS \(INT 18h",
    "returned18": r"the BIOS returned from INT 18h",
}


def firmware_facts(text):
    """{name: {field: value}} for each FW_PATTERNS line found in the serial log (first match;
    decimal fields as int, hex-looking base/last/stub_seg/drive as int)."""
    out = {}
    for name, rx in FW_PATTERNS.items():
        m = re.search(rx, text)
        if not m:
            continue
        d = {}
        for k, v in m.groupdict().items():
            if k in ("base", "last", "stub_seg", "drive"):
                d[k] = int(v, 16)
            elif v is not None and v.isdigit():
                d[k] = int(v)
            else:
                d[k] = v
        out[name] = d
    return out


_READS = re.compile(r"boot: (\S+): (\d+) sectors read in (\d+) requests before the guest jump \(disk (\d+) sectors\)")


def disk_reads(text):
    """{label: (sectors read, requests, the disk's sectors)} from the firmware's per-disk read counts at the jump."""
    return {m.group(1): (int(m.group(2)), int(m.group(3)), int(m.group(4))) for m in _READS.finditer(text)}


def iso_for(cmdline, workdir):
    """An ISO (tools/mkiso.sh, build/vhdboot.elf) booting vhdboot with cmdline; made once per workdir and cmdline."""
    tag = re.sub(r"\W+", "_", cmdline or "default")[:40] + "-" + hashlib.sha256(cmdline.encode()).hexdigest()[:8]
    out = os.path.join(workdir, "vhdboot-%s.iso" % tag)
    if not os.path.exists(out):
        env = dict(os.environ, VHDBOOT_ELF=os.path.join(BUILD, "vhdboot.elf"))
        p = subprocess.run(["sh", os.path.join(ROOT, "tools", "mkiso.sh"), cmdline, out], env=env,
                           capture_output=True, text=True, timeout=300)
        if p.returncode:
            raise RuntimeError("tools/mkiso.sh %r failed: %s%s" % (cmdline, p.stdout, p.stderr))
    return out


def have_tool(name):
    return shutil.which(name) is not None
