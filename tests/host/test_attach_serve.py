"""test_attach_serve.py: vhdboot-attach's NBD request loop (--serve-stdin) on the host, driven by a Python NBD
client over a socketpair and checked against a model of the disk (bytes in memory).

Covers the server's fast paths against the vhd/ library they stand beside: spliced reads of allocated runs,
spliced writes into them, gathered (write-back) allocating writes committed on FLUSH, on overlapping reads,
on non-adjacent writes and at disconnect, and the library path for everything else (unallocated blocks,
partly set bitmaps, a differencing chain). Afterwards the image checks clean and reads back as the model
(vhdtool convert); a differencing child's parent is unchanged.
"""
import hashlib
import os
import random
import re
import socket
import struct
import subprocess

import pytest

from conftest import BUILD

ATTACH = os.path.join(BUILD, "linux", "vhdboot-attach")
REQ, REP = 0x25609513, 0x67446698
READ, WRITE, DISC, FLUSH = 0, 1, 2, 3
FUA = 1 << 16
MIB = 1 << 20


class Client:
    def __init__(self, image, ro=False, extra=()):
        self.sock, theirs = socket.socketpair()
        args = [ATTACH, "--serve-stdin", image] + (["--ro"] if ro else []) + list(extra)
        self.p = subprocess.Popen(args, stdin=theirs, stderr=subprocess.PIPE)
        theirs.close()
        self.handle = 0

    def _recv(self, n):
        b = bytearray()
        while len(b) < n:
            c = self.sock.recv(n - len(b))
            assert c, "the server closed the connection"
            b += c
        return bytes(b)

    def req(self, cmd, off, length, data=b""):
        self.handle += 1
        self.sock.sendall(struct.pack(">IIQQI", REQ, cmd, self.handle, off, length) + data)
        magic, err, h = struct.unpack(">IIQ", self._recv(16))
        assert magic == REP and h == self.handle, (hex(magic), h, self.handle)
        body = self._recv(length) if cmd == READ and not err else b""
        return err, body

    def close(self):
        self.sock.sendall(struct.pack(">IIQQI", REQ, DISC, 0, 0, 0))
        self.sock.close()
        _, err = self.p.communicate(timeout=60)
        return self.p.returncode, err.decode()


@pytest.fixture
def attach():
    assert os.access(ATTACH, os.X_OK), "%s is missing: run `make linux`" % ATTACH
    return ATTACH


def make_raw(path, mib, rng):
    """A raw disk with data in some 2 MiB blocks, zeros in others, and a half-filled block."""
    data = bytearray(mib * MIB)
    for blk in range(0, mib // 2, 3):
        data[blk * 2 * MIB:blk * 2 * MIB + MIB + 4096] = rng.randbytes(MIB + 4096)
    with open(path, "wb") as f:
        f.write(data)
    return data


def raw_disk(tmp_path, mib, rng):
    """tmp_path/disk.raw made by make_raw: (its path, the model)."""
    raw = str(tmp_path / "disk.raw")
    return raw, make_raw(raw, mib, rng)


def convert(vhdtool, raw, out, fmt):
    """raw -> out with vhdtool convert -O fmt (VHDX formats with 1 MiB blocks); returns out."""
    extra = ["-b", "1M"] if fmt.startswith("vhdx") else []
    subprocess.run([vhdtool, "convert", "-f", "raw", "-O", fmt] + extra + [raw, out], check=True, capture_output=True)
    return out


def make_child(vhdtool, raw, parent, child, fmt):
    """A dynamic parent (fmt "dynamic" or "vhdx-dynamic") holding raw and an empty differencing child over it."""
    convert(vhdtool, raw, parent, fmt)
    subprocess.run([vhdtool, "create", "-p", parent, child], check=True, capture_output=True)


def make_image(vhdtool, raw, tmp_path, kind):
    """The image under test holding raw: kind is a vhdtool convert -O format, or "diff" / "vhdx-diff" (an empty
    child over a dynamic parent); returns (its path, the parent's path and sha256, or None, None)."""
    ext = ".vhdx" if kind.startswith("vhdx") else ".vhd"
    img = str(tmp_path / ("disk" + ext))
    if kind.endswith("diff"):
        parent = str(tmp_path / ("parent" + ext))
        make_child(vhdtool, raw, parent, img, kind.replace("diff", "dynamic"))
        return img, parent, sha256(parent)
    return convert(vhdtool, raw, img, kind), None, None


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def to_raw(vhdtool, vhd, out):
    subprocess.run([vhdtool, "convert", "-O", "raw", vhd, out], check=True, capture_output=True)
    with open(out, "rb") as f:
        return f.read()


def read_all(c, model, msg="read"):
    """The whole disk in 4 MiB reads, each compared with the model."""
    for off in range(0, len(model), 4 * MIB):
        err, body = c.req(READ, off, 4 * MIB)
        assert err == 0 and body == bytes(model[off:off + 4 * MIB]), "%s at %d differs" % (msg, off)


def check_holds(vhdtool, img, model, tmp_path):
    """vhdtool check is clean on img and img reads back as the model."""
    r = subprocess.run([vhdtool, "check", img], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert to_raw(vhdtool, img, str(tmp_path / "after.raw")) == bytes(model), "the image does not hold the model"


def exercise(c, model, rng, rounds=120):
    """Random and sequential reads/writes (some sequential runs into unallocated space), flushes; every read
    compared with the model."""
    size = len(model)
    for i in range(rounds):
        kind = rng.random()
        if kind < 0.35:
            n = rng.choice([1, 8, 64, 256, 2048, 8192]) * 512
            off = rng.randrange(0, size - n + 1, 512)
            err, body = c.req(READ, off, n)
            assert err == 0 and body == bytes(model[off:off + n]), "read %d+%d differs (round %d)" % (off, n, i)
        elif kind < 0.75:
            n = rng.choice([1, 8, 64, 2048, 2048, 4096]) * 512
            off = rng.randrange(0, size - n + 1, 512)
            data = rng.randbytes(n)
            flags = FUA if rng.random() < 0.1 else 0
            assert c.req(WRITE | flags, off, n, data)[0] == 0
            model[off:off + n] = data
        elif kind < 0.9:
            # a sequential stream of 1 MiB writes, then a read of its middle (the gathered writes are committed)
            start = rng.randrange(0, size - 6 * MIB, MIB)
            for k in range(rng.randrange(2, 6)):
                data = rng.randbytes(MIB)
                assert c.req(WRITE, start + k * MIB, MIB, data)[0] == 0
                model[start + k * MIB:start + (k + 1) * MIB] = data
            err, body = c.req(READ, start + MIB // 2, MIB)
            assert err == 0 and body == bytes(model[start + MIB // 2:start + MIB // 2 + MIB]), "round %d" % i
        else:
            assert c.req(FLUSH, 0, 0)[0] == 0
    # the whole disk once more
    read_all(c, model, "final read")


@pytest.mark.parametrize("kind", ["dynamic", "fixed", "diff"])
def test_serve_matches_model(attach, vhdtool, tmp_path, kind):
    rng = random.Random(1234 + len(kind))
    raw, model = raw_disk(tmp_path, 48, rng)
    vhd, parent, parent_sha = make_image(vhdtool, raw, tmp_path, kind)
    c = Client(vhd)
    exercise(c, model, rng)
    rc, err = c.close()
    assert rc == 0, err
    counts = dict((k, int(v)) for v, k in __import__("re").findall(r"(\d+) (spliced reads|spliced writes|gathered "
                                                                    r"allocating writes|through the library)", err))
    assert counts.get("spliced reads", 0) > 0, err          # the fast paths were taken at all
    if kind != "diff":
        assert counts.get("spliced writes", 0) > 0, err
    if kind == "dynamic":
        assert counts.get("gathered allocating writes", 0) > 0, err
    check_holds(vhdtool, vhd, model, tmp_path)
    if parent:
        assert sha256(parent) == parent_sha, "the parent changed"


def test_serve_read_only(attach, vhdtool, tmp_path):
    rng = random.Random(7)
    raw, model = raw_disk(tmp_path, 8, rng)
    vhd = convert(vhdtool, raw, str(tmp_path / "disk.vhd"), "dynamic")
    with open(vhd, "rb") as f:
        before = f.read()
    c = Client(vhd, ro=True)
    assert c.req(WRITE, 0, 512, b"x" * 512)[0] == 1          # EPERM
    err, body = c.req(READ, 0, MIB)
    assert err == 0 and body == bytes(model[:MIB])
    assert c.req(READ, len(model), 512)[0] == 22               # EINVAL: outside the disk
    rc, _ = c.close()
    assert rc == 0
    with open(vhd, "rb") as f:
        assert f.read() == before


@pytest.mark.parametrize("kind", ["dynamic", "diff"])
def test_serve_no_grow(attach, vhdtool, tmp_path, kind):
    """--no-grow (what an image on an NTFS host gets, which cannot grow there): a write into an allocated block
    works, through both the spliced and the library path; a write touching an unallocated block answers EIO
    (gathered writes never start), is logged once with the remedy, and leaves the image's file the same size;
    reads of everything still work and the image checks clean and holds exactly the accepted writes."""
    rng = random.Random(4321)
    raw, model = raw_disk(tmp_path, 16, rng)   # blocks 0, 3, 6 hold data (allocated), the others are zeros
    vhd = make_image(vhdtool, raw, tmp_path, kind)[0]
    if kind == "diff":
        # the child allocates block 0 through one write while it may grow (a normal server), then no more
        c = Client(vhd)
        data = rng.randbytes(4096)
        assert c.req(WRITE, 0, 4096, data)[0] == 0
        model[0:4096] = data
        assert c.close()[0] == 0
    size_before = os.path.getsize(vhd)
    c = Client(vhd, extra=["--no-grow"])
    # into allocated block 0: a whole-block-run write (spliced for the dynamic image) and a small one
    for off, n in ((0, MIB), (4096, 512)):
        data = rng.randbytes(n)
        assert c.req(WRITE, off, n, data)[0] == 0, (off, n)
        model[off:off + n] = data
    # into unallocated block 1 (and across blocks 0..1): EIO, several times, in streams as the kernel sends them
    for off, n in ((2 * MIB, 512), (2 * MIB - 4096, 8192), (2 * MIB, MIB), (3 * MIB, MIB)):
        assert c.req(WRITE, off, n, rng.randbytes(n))[0] == 5, (off, n)    # EIO; the model keeps the old bytes
    assert c.req(FLUSH, 0, 0)[0] == 0
    read_all(c, model)
    rc, err = c.close()
    assert rc == 0, err
    assert err.count("refused (EIO): it needs a new block") == 1, err
    assert "cannot grow on NTFS" in err and "vhdtool convert -O fixed" in err, err
    assert "4 refused (no growth)" in err and "0 gathered allocating writes" in err, err
    assert os.path.getsize(vhd) == size_before, "the file grew"
    check_holds(vhdtool, vhd, model, tmp_path)


@pytest.mark.parametrize("kind", ["vhdx-dynamic", "vhdx-fixed", "vhdx-diff"])
def test_serve_vhdx_matches_model(attach, vhdtool, tmp_path, kind):
    """A VHDX (1 MiB blocks, so the 48 MiB disk has many) is served through vhdx/ (no fast paths: every request
    through the library): random and sequential I/O against the model, new blocks allocated through the log;
    afterwards vhdtool check is clean (the log was marked empty at the end), the image reads back as the model,
    and a differencing child's parent is unchanged."""
    rng = random.Random(77 + len(kind))
    raw, model = raw_disk(tmp_path, 48, rng)
    vhdx, parent, parent_sha = make_image(vhdtool, raw, tmp_path, kind)
    c = Client(vhdx)
    exercise(c, model, rng, rounds=80)
    rc, err = c.close()
    assert rc == 0, err
    assert "0 spliced reads, 0 spliced writes, 0 gathered allocating writes" in err, err
    check_holds(vhdtool, vhdx, model, tmp_path)
    info = subprocess.run([vhdtool, "info", vhdx], capture_output=True, text=True).stdout
    assert re.search(r"pending:\s+no\b", info) and re.search(r"log guid:\s+\{0{8}-0{4}-0{4}-0{4}-0{12}\}", info), info
    if parent:
        assert sha256(parent) == parent_sha, "the parent changed"


def test_serve_vhdx_no_grow(attach, vhdtool, tmp_path):
    """--no-grow on a dynamic VHDX (an NTFS host): writes into present blocks work, a write touching an
    absent block answers EIO and the file keeps its size; the image checks clean and holds the accepted writes."""
    rng = random.Random(5)
    raw, model = raw_disk(tmp_path, 16, rng)   # 2 MiB blocks 0, 3, 6 hold data: 1 MiB VHDX blocks 0-1, 6-7, 12-13
    vhdx = convert(vhdtool, raw, str(tmp_path / "disk.vhdx"), "vhdx-dynamic")
    size_before = os.path.getsize(vhdx)
    c = Client(vhdx, extra=["--no-grow"])
    data = rng.randbytes(8192)
    assert c.req(WRITE, 4096, 8192, data)[0] == 0
    model[4096:4096 + 8192] = data
    assert c.req(WRITE, 2 * MIB, 4096, rng.randbytes(4096))[0] == 5         # block 2: absent
    assert c.req(WRITE, 2 * MIB - 4096, 8192, rng.randbytes(8192))[0] == 5  # across blocks 1 and 2
    assert c.req(FLUSH, 0, 0)[0] == 0
    read_all(c, model)
    rc, err = c.close()
    assert rc == 0, err
    assert err.count("refused (EIO): it needs a new block") == 1 and "2 refused (no growth)" in err, err
    assert os.path.getsize(vhdx) == size_before, "the file grew"
    check_holds(vhdtool, vhdx, model, tmp_path)


def overlay_image(capacity, sectors):
    """kernel/overlay.c's memory layout (docs/handover.md): keys (lba + 1), slots, then the pool; sectors:
    {lba: 512 bytes}, stored in hash order as the firmware does (linear probing, Knuth's multiplier)."""
    entries = 1
    while entries < 2 * capacity:
        entries <<= 1
    keys, slots, pool = [0] * entries, [0] * entries, bytearray(capacity * 512)
    for used, (lba, data) in enumerate(sectors.items()):
        i = (lba * 2654435761) & 0xFFFFFFFF & (entries - 1)
        while keys[i]:
            i = (i + 1) & (entries - 1)
        keys[i], slots[i] = lba + 1, used
        pool[used * 512:(used + 1) * 512] = data
    return struct.pack("<%dI" % entries, *keys) + struct.pack("<%dI" % entries, *slots) + bytes(pool)


@pytest.mark.parametrize("fmt", ["dynamic", "vhdx-dynamic"])
def test_serve_snapshot_overlay(attach, vhdtool, tmp_path, fmt):
    """--overlay: the boot loader's sectors (from a memory dump in the firmware's layout) are seen first, writes
    go to RAM and are read back, the image file is untouched (a VHDX too: its reads through vhdx/ under the
    layer); a damaged overlay is refused."""
    rng = random.Random(99)
    raw, model = raw_disk(tmp_path, 8, rng)
    vhd = convert(vhdtool, raw, str(tmp_path / ("disk.vhdx" if fmt.startswith("vhdx") else "disk.vhd")), fmt)
    with open(vhd, "rb") as f:
        before = f.read()
    boot = {5: b"\xA5" * 512, 4096: b"\x5A" * 512, 16383: b"\x11" * 512}   # in, between and at the end of blocks
    for lba, data in boot.items():
        model[lba * 512:(lba + 1) * 512] = data
    phys = 0x1000
    ov = overlay_image(64, boot)
    mem = str(tmp_path / "mem.bin")
    with open(mem, "wb") as f:
        f.write(bytes(phys) + ov)
    c = Client(vhd, extra=["--mem", mem, "--overlay", "%x:%d" % (phys, len(ov))])
    exercise(c, model, rng, rounds=60)
    rc, err = c.close()
    assert rc == 0, err
    assert "3 sector(s) the boot loader wrote carried over" in err, err
    with open(vhd, "rb") as f:
        assert f.read() == before, "the image changed under mode=snapshot"
    # a slot used twice: refused with the reason
    bad = bytearray(ov)
    n = len(ov) - 64 * 512
    keys = struct.unpack_from("<%dI" % (n // 8), bad)
    used = [i for i, k in enumerate(keys) if k]
    struct.pack_into("<I", bad, n // 2 + used[1] * 4, struct.unpack_from("<I", bad, n // 2 + used[0] * 4)[0])
    with open(mem, "wb") as f:
        f.write(bytes(phys) + bad)
    r = subprocess.run([ATTACH, "--serve-stdin", vhd, "--mem", mem, "--overlay", "%x:%d" % (phys, len(ov))],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "is inconsistent" in r.stderr, r.stderr
