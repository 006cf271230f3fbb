#!/usr/bin/env python3
"""make_vhdx_log.py: VHDX images with pending log entries (MS-VHDX 2.3), for the replay tests.

Each scenario starts from a dynamic VHDX that qemu-img made from a patterned raw disk, adds
log entries (data and zero descriptors, several entries in one sequence, torn or stale
entries, an entry that wraps around the end of the log, an entry that allocates a block past
the end of the file) and names the current header's LogGuid so that the log must be replayed.
The image the replay must produce is written too: the same descriptors applied to a copy of
the file in Python, with the LogGuid cleared (`expected`), so a reader of it without a log
(qemu-img) gives the disk that the replayed image must read as.

    python3 tests/host/make_vhdx_log.py OUTDIR   ->  JSON manifest {name: {path, expected, entries}}
"""
import json
import os
import struct
import subprocess
import sys
import uuid

MIB = 1 << 20
PAGE = 4096

_T = []
for n in range(256):
    c = n
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    _T.append(c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _T[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def headers(img):
    """[(offset, seq, raw 4 KiB)] of both header copies."""
    out = []
    for off in (64 << 10, 128 << 10):
        raw = bytearray(img[off:off + PAGE])
        out.append((off, struct.unpack_from("<Q", raw, 8)[0], raw))
    return out


def set_log_guid(img, guid):
    """Give both headers (CRC-32C recomputed) LogGuid guid, as a writer with a log in use would."""
    for off, _seq, raw in headers(img):
        raw[48:64] = guid
        raw[4:8] = b"\0\0\0\0"
        struct.pack_into("<I", raw, 4, crc32c(bytes(raw)))
        img[off:off + PAGE] = raw


def log_area(img):
    off, _seq, raw = max(headers(img), key=lambda h: h[1])
    length, offset = struct.unpack_from("<IQ", raw, 68)
    return offset, length


def bat_offset(img):
    rt = 192 << 10
    n = struct.unpack_from("<I", img, rt + 8)[0]
    for i in range(n):
        e = rt + 16 + 32 * i
        if uuid.UUID(bytes_le=bytes(img[e:e + 16])) == uuid.UUID("2dc27766-f623-4200-9d64-115e9bfd4a08"):
            return struct.unpack_from("<Q", img, e + 16)[0]
    raise ValueError("no BAT region")


def entry(guid, seq, tail, descs, flushed, last):
    """One log entry: descs = [("data", file_off, page) | ("zero", file_off, length)]."""
    n = len(descs)
    dpages = (64 + 32 * n + PAGE - 1) // PAGE
    data = [d for d in descs if d[0] == "data"]
    length = (dpages + len(data)) * PAGE
    head = bytearray(dpages * PAGE)
    struct.pack_into("<IIIIQII", head, 0, 0x65676F6C, 0, length, tail, seq, n, 0)
    head[32:48] = guid
    struct.pack_into("<QQ", head, 48, flushed, last)
    sectors = []
    for i, d in enumerate(descs):
        at = 64 + 32 * i
        if d[0] == "zero":
            struct.pack_into("<IIQQQ", head, at, 0x6F72657A, 0, d[2], d[1], seq)
        else:
            page = d[2]
            assert len(page) == PAGE
            head[at:at + 4] = b"desc"
            head[at + 4:at + 8] = page[4092:4096]
            head[at + 8:at + 16] = page[0:8]
            struct.pack_into("<QQ", head, at + 16, d[1], seq)
            s = bytearray(page)
            struct.pack_into("<II", s, 0, 0x61746164, seq >> 32)
            struct.pack_into("<I", s, 4092, seq & 0xFFFFFFFF)
            sectors.append(bytes(s))
    blob = bytes(head) + b"".join(sectors)
    crc = crc32c(blob)
    blob = bytearray(blob)
    struct.pack_into("<I", blob, 4, crc)
    return bytes(blob)


def put_log(img, pos, blob):
    """Write blob into the log at position pos, wrapping around its end."""
    off, length = log_area(img)
    for k in range(0, len(blob), PAGE):
        p = off + (pos + k) % length
        img[p:p + PAGE] = blob[k:k + PAGE]


def apply(img, descs, last=None):
    """What a replay does to the file: the pages and zeros written, the file extended to last."""
    for d in descs:
        end = d[1] + (PAGE if d[0] == "data" else d[2])
        if end > len(img):
            img.extend(b"\0" * (end - len(img)))
        img[d[1]:end] = d[2] if d[0] == "data" else b"\0" * d[2]
    if last and last > len(img):
        img.extend(b"\0" * (last - len(img)))


def page_of(tag, n=PAGE):
    """A recognisable page: tag repeated."""
    return (tag * (n // len(tag) + 1))[:n]


def base_image(d):
    """A 16 MiB dynamic VHDX (1 MiB blocks) with blocks 0..3 of patterned data, made by qemu-img."""
    raw = os.path.join(d, "base.raw")
    vhdx = os.path.join(d, "base.vhdx")
    if not os.path.exists(vhdx):
        with open(raw, "wb") as f:
            for i in range(4 * MIB // 16):
                f.write(struct.pack("<QQ", i, 0x5AA5 ^ i))
            f.truncate(16 * MIB)
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic,block_size=1M",
                        raw, vhdx], check=True)
    with open(vhdx, "rb") as f:
        return bytearray(f.read())


GUID = uuid.UUID("6c6f6765-7465-7374-0000-000000000001").bytes_le
OLD_GUID = uuid.UUID("6c6f6765-7465-7374-0000-0000000000ff").bytes_le


def block_off(img, blk):
    e = struct.unpack_from("<Q", img, bat_offset(img) + 8 * blk)[0]
    assert e & 7 == 6, "block %d not present in the base image" % blk
    return (e >> 20) << 20


def scenarios(base):
    """{name: (image bytes, expected bytes, entries replayed)}."""
    out = {}
    size = len(base)

    # One entry rewriting two pages of block 1 and zeroing a page of block 2.
    img, exp = bytearray(base), bytearray(base)
    b1, b2 = block_off(img, 1), block_off(img, 2)
    descs = [("data", b1 + 3 * PAGE, page_of(b"one-entry!")), ("data", b1 + 200 * PAGE, page_of(b"\x01\x02\x03")),
             ("zero", b2 + 8 * PAGE, 2 * PAGE)]
    put_log(img, 0, entry(GUID, 10, 0, descs, size, size))
    set_log_guid(img, GUID)
    apply(exp, descs)
    out["data"] = (img, exp, 1)

    # A sequence of three entries (tail = the first); later entries override earlier pages.
    img, exp = bytearray(base), bytearray(base)
    b0 = block_off(img, 0)
    e1 = [("data", b0, page_of(b"first"))]
    e2 = [("data", b0, page_of(b"second")), ("data", b0 + PAGE, page_of(b"2nd"))]
    e3 = [("zero", b0 + PAGE, PAGE), ("data", b0 + 2 * PAGE, page_of(b"third"))]
    pos = 0
    for seq, d in ((100, e1), (101, e2), (102, e3)):
        blob = entry(GUID, seq, 0, d, size, size)
        put_log(img, pos, blob)
        pos += len(blob)
        apply(exp, d)
    set_log_guid(img, GUID)
    out["sequence"] = (img, exp, 3)

    # The same, but the third entry is torn (CRC wrong): only the first two are replayed.
    img, exp = bytearray(base), bytearray(base)
    pos = 0
    for seq, d in ((100, e1), (101, e2), (102, e3)):
        blob = bytearray(entry(GUID, seq, 0, d, size, size))
        if seq == 102:
            blob[PAGE + 100] ^= 0xFF         # a data sector byte: the CRC no longer matches
        else:
            apply(exp, d)
        put_log(img, pos, bytes(blob))
        pos += len(blob)
    set_log_guid(img, GUID)
    out["torn-last"] = (img, exp, 2)

    # A data sector of the newest entry carries the wrong sequence number (torn mid-entry).
    img, exp = bytearray(base), bytearray(base)
    blob = bytearray(entry(GUID, 100, 0, e1, size, size))
    put_log(img, 0, bytes(blob))
    apply(exp, e1)
    d2 = [("data", b0 + 5 * PAGE, page_of(b"never"))]
    blob2 = bytearray(entry(GUID, 101, 0, d2, size, size))
    struct.pack_into("<I", blob2, 2 * PAGE - 4, 0xDEAD)  # sequence low of its data sector
    blob2[4:8] = b"\0\0\0\0"
    struct.pack_into("<I", blob2, 4, crc32c(bytes(blob2)))
    put_log(img, len(blob), bytes(blob2))
    set_log_guid(img, GUID)
    out["torn-sector"] = (img, exp, 1)

    # Entries of an older log (another LogGuid) are ignored; the current one is replayed.
    img, exp = bytearray(base), bytearray(base)
    put_log(img, 0, entry(OLD_GUID, 500, 0, [("data", b0, page_of(b"stale"))], size, size))
    d = [("data", b0 + 7 * PAGE, page_of(b"current"))]
    put_log(img, 2 * PAGE, entry(GUID, 7, 2 * PAGE, d, size, size))
    apply(exp, d)
    set_log_guid(img, GUID)
    out["stale-guid"] = (img, exp, 1)

    # An entry that wraps around the end of the log.
    img, exp = bytearray(base), bytearray(base)
    _off, length = log_area(img)
    d = [("data", b1 + 9 * PAGE, page_of(b"wrapped")), ("data", b1 + 10 * PAGE, page_of(b"around"))]
    put_log(img, length - PAGE, entry(GUID, 33, length - PAGE, d, size, size))
    apply(exp, d)
    set_log_guid(img, GUID)
    out["wrap"] = (img, exp, 1)

    # Block allocation through the log: block 9 at the end of the file (past it: the file grows),
    # its data pages and the BAT page, LastFileOffset = the new end.
    img, exp = bytearray(base), bytearray(base)
    new = (size + MIB - 1) // MIB * MIB
    bat = bat_offset(img)
    bpage = bytearray(img[bat:bat + PAGE])
    struct.pack_into("<Q", bpage, 8 * 9, (new >> 20) << 20 | 6)
    d = [("data", new + k * PAGE, page_of(b"new block %d " % k)) for k in range(4)]
    d.append(("zero", new + 4 * PAGE, MIB - 4 * PAGE))
    d.append(("data", bat, bytes(bpage)))
    put_log(img, 0, entry(GUID, 1, 0, d, size, new + MIB))
    apply(exp, d, new + MIB)
    set_log_guid(img, GUID)
    out["allocate"] = (img, exp, 1)

    # A region table repaired through the log (the specification updates region tables that way):
    # copy 0 is damaged in the file, the entry holds its good first page. Replayed before the
    # region tables are read, copy 0 is valid again.
    img, exp = bytearray(base), bytearray(base)
    rt = 192 << 10
    d = [("data", rt, bytes(img[rt:rt + PAGE]))]
    img[rt + 40] ^= 0xFF
    put_log(img, 0, entry(GUID, 77, 0, d, size, size))
    set_log_guid(img, GUID)
    out["region"] = (img, exp, 1)

    # LogGuid set but nothing valid in the log: nothing to replay (torn entries are ignored).
    img, exp = bytearray(base), bytearray(base)
    blob = bytearray(entry(GUID, 4, 0, e1, size, size))
    blob[64] ^= 1
    put_log(img, 0, bytes(blob))
    set_log_guid(img, GUID)
    out["all-torn"] = (img, exp, 0)

    for name, (img, exp, n) in out.items():
        set_log_guid(exp, b"\0" * 16)
    return out


def write_all(outdir):
    os.makedirs(outdir, exist_ok=True)
    base = base_image(outdir)
    manifest = {}
    for name, (img, exp, n) in scenarios(base).items():
        p, e = os.path.join(outdir, name + ".vhdx"), os.path.join(outdir, name + ".expected.vhdx")
        with open(p, "wb") as f:
            f.write(img)
        with open(e, "wb") as f:
            f.write(exp)
        manifest[name] = {"path": p, "expected": e, "entries": n}
    return manifest


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(json.dumps(write_all(sys.argv[1]), indent=1))
