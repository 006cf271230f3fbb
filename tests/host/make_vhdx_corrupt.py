#!/usr/bin/env python3
"""make_vhdx_corrupt.py: a corpus of malformed VHDX images, one defect each, for test_vhdx_corrupt.py.

Images are built here from scratch (deterministic: fixed GUIDs), each from a valid small
image with one change, the CRC-32Cs fixed up where the defect is not the CRC itself. Each case
names what vhdx/ must say: an open error (vhdx_errname, `opens: False`), a defect that
vhdx_check reports on an image that opens (vhdx_check_name, `opens: True`), or an error only
met when the parent chain is opened (`chain: True`).

    python3 tests/host/make_vhdx_corrupt.py OUTDIR  ->  JSON manifest {name: {path, err, opens, chain}}
"""
import json
import os
import struct
import sys
import uuid

from make_vhdx_log import crc32c, entry

MIB = 1 << 20
PAGE = 4096
G_BAT = uuid.UUID("2dc27766-f623-4200-9d64-115e9bfd4a08").bytes_le
G_META = uuid.UUID("8b7ca206-4790-4b9a-b8fe-575f050f886e").bytes_le
G_FP = uuid.UUID("caa16737-fa36-4d43-b3b6-33f0aa44e76b").bytes_le
G_VSIZE = uuid.UUID("2fa54224-cd1b-4876-b211-5dbed83bf4b8").bytes_le
G_P83 = uuid.UUID("beca12ab-b2e6-4523-93ef-c309e000c746").bytes_le
G_LSS = uuid.UUID("8141bf1d-a96f-4709-ba47-f233a8faab5f").bytes_le
G_PSS = uuid.UUID("cda348c7-445d-4471-9cc9-e9885251c556").bytes_le
G_LOC = uuid.UUID("a8d35f2d-b30b-454d-abf7-d3d84834ab0c").bytes_le
G_LOCTYPE = uuid.UUID("b04aefb7-d19e-4a81-b789-25b8e9445913").bytes_le
G_UNKNOWN = uuid.UUID("12345678-1234-5678-9abc-def012345678").bytes_le
DWG = uuid.UUID("d0d0d0d0-0000-4000-8000-000000000001").bytes_le
PARENT_DWG = uuid.UUID("d0d0d0d0-0000-4000-8000-0000000000aa").bytes_le
LOG_GUID = uuid.UUID("10010010-0000-4000-8000-000000000001").bytes_le


def braced(g):
    return "{%s}" % uuid.UUID(bytes_le=g)


def locator(entries, loc_type=G_LOCTYPE):
    """The parent locator item: header, entries, UTF-16LE keys and values."""
    head = bytearray(loc_type + struct.pack("<HH", 0, len(entries)))
    table = bytearray()
    data = bytearray()
    base = 20 + 12 * len(entries)
    for k, v in entries:
        kb, vb = k.encode("utf-16-le"), v.encode("utf-16-le")
        table += struct.pack("<IIHH", base + len(data), base + len(data) + len(kb), len(kb), len(vb))
        data += kb + vb
    return bytes(head + table + data)


def build(vsize=8 * MIB, bs=MIB, lss=512, pss=4096, fp_flags=0, diff=False, loc=None, items=None,
          blocks=(0, 3), bat_len=MIB, regions=None, extra_bat=None):
    """A valid image (dynamic; diff=True: differencing with its blocks partially present)."""
    log_off, meta_off, bat_off = MIB, 2 * MIB, 3 * MIB
    data_off = bat_off + bat_len
    cr = (1 << 23) * 512 // bs
    nblk = -(-vsize // bs)
    entries = (-(-nblk // cr)) * (cr + 1) if diff else nblk + (nblk - 1) // cr
    img = bytearray(data_off)
    img[0:8] = b"vhdxfile"
    img[8:8 + 12] = "corpus".encode("utf-16-le")
    # Blocks (and for diff the chunk's sector bitmap block), each 1 MiB aligned after the BAT.
    bat = [0] * min(entries, bat_len // 8 + 1)
    end = data_off
    for b in blocks:
        idx = b + b // cr
        bat[idx] = (end >> 20) << 20 | (7 if diff else 6)
        img.extend(bytes([0x40 + b]) * bs)
        end += bs
    if diff:
        sbi = cr
        bat[sbi] = (end >> 20) << 20 | 6
        bm = bytearray(MIB)
        for b in blocks:
            s = (b % cr) * (bs // 512)
            bm[s // 8] = 0xFF      # first 8 sectors of each block present
        img.extend(bm)
        end += MIB
    for i, e in (extra_bat or {}).items():
        bat[i] = e
    for i, e in enumerate(bat[:bat_len // 8]):     # (bat-small: more entries than the region holds)
        if e:
            struct.pack_into("<Q", img, bat_off + 8 * i, e)
    # Metadata.
    if items is None:
        items = [(G_FP, struct.pack("<II", bs, fp_flags | (2 if diff else 0)), 4),
                 (G_VSIZE, struct.pack("<Q", vsize), 6),
                 (G_P83, uuid.UUID("83838383-0000-4000-8000-000000000083").bytes_le, 6),
                 (G_LSS, struct.pack("<I", lss), 6),
                 (G_PSS, struct.pack("<I", pss), 6)]
        if diff:
            items.append((G_LOC, locator(loc if loc is not None else
                                         [("parent_linkage", braced(PARENT_DWG)), ("relative_path", "parent.vhdx")]), 4))
    struct.pack_into("<8sHH", img, meta_off, b"metadata", 0, len(items))
    voff = 64 << 10
    for i, it in enumerate(items):
        g, val, fl = it[0], it[1], it[2]
        off = it[3] if len(it) > 3 else voff
        ln = it[4] if len(it) > 4 else len(val)
        struct.pack_into("<16sIII", img, meta_off + 32 + 32 * i, g, off, ln, fl)
        if len(it) <= 3:
            img[meta_off + voff:meta_off + voff + len(val)] = val
            voff += (len(val) + 7) // 8 * 8
    # Region tables.
    if regions is None:
        regions = [(G_BAT, bat_off, bat_len, 1), (G_META, meta_off, MIB, 1)]
    for rt in (192 << 10, 256 << 10):
        write_regions(img, rt, regions)
    # Headers: copy 1 current (seq 6), copy 0 older (seq 5).
    for off, seq in ((64 << 10, 5), (128 << 10, 6)):
        h = bytearray(PAGE)
        struct.pack_into("<IIQ", h, 0, 0x64616568, 0, seq)
        h[16:32] = uuid.UUID("f0f0f0f0-0000-4000-8000-000000000001").bytes_le
        h[32:48] = DWG
        struct.pack_into("<HHIQ", h, 64, 0, 1, MIB, log_off)
        struct.pack_into("<I", h, 4, crc32c(bytes(h)))
        img[off:off + PAGE] = h
    return img


def write_regions(img, rt, regions, count=None):
    t = bytearray(64 << 10)
    struct.pack_into("<IIII", t, 0, 0x69676572, 0, len(regions) if count is None else count, 0)
    for i, (g, off, ln, req) in enumerate(regions):
        struct.pack_into("<16sQII", t, 16 + 32 * i, g, off, ln, req)
    struct.pack_into("<I", t, 4, crc32c(bytes(t)))
    img[rt:rt + len(t)] = t


def header(img, copy, **kw):
    """Change fields of header copy (0/1) and fix its CRC: version, log_version, log_offset, log_length, log_guid."""
    off = (64 << 10) if copy == 0 else (128 << 10)
    h = bytearray(img[off:off + PAGE])
    if "version" in kw:
        struct.pack_into("<H", h, 66, kw["version"])
    if "log_version" in kw:
        struct.pack_into("<H", h, 64, kw["log_version"])
    if "log_offset" in kw:
        struct.pack_into("<Q", h, 72, kw["log_offset"])
    if "log_guid" in kw:
        h[48:64] = kw["log_guid"]
    if "reserved" in kw:
        h[200] = kw["reserved"]
    struct.pack_into("<I", h, 4, 0)
    struct.pack_into("<I", h, 4, crc32c(bytes(h)))
    img[off:off + PAGE] = h
    return img


def both_headers(img, **kw):
    return header(header(img, 0, **kw), 1, **kw)


def with_log(img, descs, flushed=None, last=None, tail_bad=False):
    size = len(img)
    blob = entry(LOG_GUID, 9, 0, descs, size if flushed is None else flushed, size if last is None else last)
    img[MIB:MIB + len(blob)] = blob
    return both_headers(img, log_guid=LOG_GUID)


def flip(img, off):
    img[off] ^= 0xFF
    return img


def cut(img, n):
    del img[n:]
    return img


def case_list():
    std = [(G_FP, struct.pack("<II", MIB, 0), 4), (G_VSIZE, struct.pack("<Q", 8 * MIB), 6),
           (G_P83, b"\x83" * 16, 6), (G_LSS, struct.pack("<I", 512), 6), (G_PSS, struct.pack("<I", 4096), 6)]
    bat0 = 3 * MIB
    C = {}

    def add(name, err, img, opens=False, chain=False, extra=None):
        C[name] = (err, bytes(img), opens, chain, extra or {})

    add("too-small", "too-small", cut(build(), 600 << 10))
    add("signature", "signature", flip(build(), 7))
    add("headers-bad", "headers-bad", flip(flip(build(), (64 << 10) + 300), (128 << 10) + 300))
    add("header-version", "header-version", both_headers(build(), version=2))
    add("log-version", "log-version", both_headers(build(), log_version=1, log_guid=LOG_GUID))
    img = build()
    header(img, 1, version=1)           # same fields,
    h0 = bytearray(img[64 << 10:(64 << 10) + PAGE])
    struct.pack_into("<Q", h0, 8, 6)   # copy 0 now has copy 1's sequence number,
    h0[20] ^= 1                        # and another FileWriteGuid
    struct.pack_into("<I", h0, 4, 0)
    struct.pack_into("<I", h0, 4, crc32c(bytes(h0)))
    img[64 << 10:(64 << 10) + PAGE] = h0
    add("headers-same-seq", "headers-same-seq", img)
    add("log-range", "log-range", both_headers(build(), log_offset=MIB + PAGE))
    add("region-bad", "region-bad", flip(flip(build(), (192 << 10) + 100), (256 << 10) + 100))
    img = build()
    for rt in (192 << 10, 256 << 10):
        write_regions(img, rt, [(G_BAT, bat0, MIB, 1), (G_META, 2 * MIB, MIB, 1)], count=3000)
    add("region-count", "region-count", img)
    add("region-range", "region-range", build(regions=[(G_BAT, 40 * MIB, MIB, 1), (G_META, 2 * MIB, MIB, 1)]))
    add("region-overlap", "region-overlap", build(regions=[(G_BAT, bat0, MIB, 1), (G_META, MIB, MIB, 1)]))
    add("region-unknown", "region-unknown", build(regions=[(G_BAT, bat0, MIB, 1), (G_META, 2 * MIB, MIB, 1),
                                                          (G_UNKNOWN, 5 * MIB, MIB, 1)]))
    add("region-missing", "region-missing", build(regions=[(G_BAT, bat0, MIB, 1)]))
    add("region-dup", "region-dup", build(regions=[(G_BAT, bat0, MIB, 1), (G_META, 2 * MIB, MIB, 1), (G_BAT, bat0, MIB, 1)]))
    img = build()
    add("log-truncated", "log-truncated", with_log(img, [("data", 4 * MIB, b"\x11" * PAGE)], flushed=len(img) + 64 * MIB))
    add("log-desc", "log-desc", with_log(build(), [("data", 64 << 10, b"\x22" * PAGE)]))
    img = build()
    img[2 * MIB] ^= 0x20
    add("meta-signature", "meta-signature", img)
    img = build()
    struct.pack_into("<H", img, 2 * MIB + 10, 3000)
    add("meta-count", "meta-count", img)
    add("meta-range", "meta-range", build(items=std[:1] + [(G_VSIZE, b"", 6, MIB - 4, 8)] + std[2:]))
    add("meta-dup", "meta-dup", build(items=std + [std[1]]))
    add("meta-overlap", "meta-overlap", build(items=std + [(G_UNKNOWN, b"", 0, 64 << 10, 12)]))
    add("meta-empty-offset", "meta-range", build(items=std[:2] + [(G_P83, b"", 6, 70000, 0)] + std[3:]))
    add("meta-unknown", "meta-unknown", build(items=std + [(G_UNKNOWN, b"\0" * 8, 4)]))
    add("meta-missing", "meta-missing", build(items=std[:3] + std[4:]))
    add("meta-length", "meta-length", build(items=std[:1] + [(G_VSIZE, b"\0\0\x80\0", 6)] + std[2:]))
    add("block-size", "block-size", build(items=[(G_FP, struct.pack("<II", 3 * MIB, 0), 4)] + std[1:]))
    add("size", "size", build(items=std[:1] + [(G_VSIZE, struct.pack("<Q", 0), 6)] + std[2:]))
    add("logical-4k", "logical-4k", build(lss=4096))
    add("logical-sector", "logical-sector", build(lss=1024))
    add("physical-sector", "physical-sector", build(pss=1000))
    add("bat-small", "bat-small", build(vsize=1 << 40))
    add("bat-state", "bat-state", build(extra_bat={1: 4}))
    add("bat-partial", "bat-partial", build(extra_bat={1: (4 << 20) | 7}))
    add("bat-range", "bat-range", build(extra_bat={1: (900 << 20) | 6}))
    add("bat-offset", "bat-offset", build(extra_bat={1: 6}))
    add("bat-overlap-meta", "bat-overlap-meta", build(extra_bat={1: (2 << 20) | 6}))
    add("bat-overlap", "bat-overlap", build(extra_bat={1: (4 << 20) | 6}))
    add("sb-state", "sb-state", build(diff=True, extra_bat={4096: (6 << 20) | 3}))
    add("sb-missing", "sb-missing", build(diff=True, extra_bat={4096: 0}))
    fp_diff = (G_FP, struct.pack("<II", MIB, 2), 4)
    add("locator-missing", "locator-missing", build(items=[fp_diff] + std[1:]))
    add("locator-type", "locator-type", build(diff=True, items=[fp_diff] + std[1:] + [
        (G_LOC, locator([("parent_linkage", braced(PARENT_DWG)), ("relative_path", "p.vhdx")], loc_type=G_UNKNOWN), 4)]))
    bad = bytearray(locator([("parent_linkage", braced(PARENT_DWG)), ("relative_path", "p.vhdx")]))
    struct.pack_into("<I", bad, 20, 5000)
    add("locator-range", "locator-range", build(diff=True, items=[fp_diff] + std[1:] + [(G_LOC, bytes(bad), 4)]))
    add("locator-dup", "locator-dup", build(diff=True, loc=[("parent_linkage", braced(PARENT_DWG)), ("relative_path", "p.vhdx"),
                                                           ("relative_path", "q.vhdx")]))
    add("locator-linkage", "locator-linkage", build(diff=True, loc=[("relative_path", "p.vhdx")]))
    add("locator-linkage-text", "locator-linkage", build(diff=True, loc=[("parent_linkage", "{not-a-guid}"),
                                                                          ("relative_path", "p.vhdx")]))
    # Chains: the parent is parent.vhdx next to the child (extra files of the case).
    parent = build()                      # its DataWriteGuid is DWG, not the PARENT_DWG the child names
    add("parent-linkage", "parent-linkage", build(diff=True), chain=True, extra={"parent.vhdx": bytes(parent)})
    add("chain-loop", "chain-loop", build(diff=True, loc=[("parent_linkage", braced(DWG)), ("relative_path", "image.vhdx")]),
        chain=True)
    add("no-parent", "no-parent", build(diff=True, loc=[("parent_linkage", braced(DWG)), ("relative_path", "gone.vhdx")]),
        chain=True)
    # Opens; check names the defect.
    add("header-copy-bad", "header-copy-bad", flip(build(), (64 << 10) + 300), opens=True)
    add("header-reserved", "header-reserved", both_headers(build(), reserved=1), opens=True)
    add("region-copy-bad", "region-copy-bad", flip(build(), (256 << 10) + 100), opens=True)
    img = build()
    write_regions(img, 256 << 10, [(G_BAT, bat0, MIB, 0), (G_META, 2 * MIB, MIB, 1)])
    add("region-copies-differ", "region-copies-differ", img, opens=True)
    add("log-pending", "log-pending", with_log(build(), [("data", 4 * MIB, b"\x33" * PAGE)]), opens=True)
    img = with_log(build(), [("data", 4 * MIB, b"\x33" * PAGE)])
    img[MIB + 70] ^= 1
    add("log-ignored", "log-ignored", img, opens=True)
    add("file-params-reserved", "file-params-reserved", build(fp_flags=0x10), opens=True)
    add("meta-unknown-optional", "meta-unknown-optional", build(items=std + [(G_UNKNOWN, b"\0" * 8, 0)]), opens=True)
    add("bat-reserved", "bat-reserved", build(extra_bat={1: 0x100}), opens=True)
    big = build(vsize=4097 * MIB, blocks=(0,), extra_bat={4096: (5 << 20) | 6})
    big.extend(b"\0" * MIB)
    add("sb-in-non-diff", "sb-in-non-diff", big, opens=True)
    add("bat-pad-used", "bat-pad-used", build(diff=True, extra_bat={100: 2}), opens=True)
    add("locator-no-path", "locator-no-path", build(diff=True, loc=[("parent_linkage", braced(PARENT_DWG))]), opens=True)
    add("locator-unknown-key", "locator-unknown-key", build(diff=True, loc=[
        ("parent_linkage", braced(PARENT_DWG)), ("relative_path", "p.vhdx"), ("colour", "blue")]), opens=True)
    add("fixed-not-allocated", "fixed-not-allocated", build(fp_flags=1, blocks=tuple(range(7))), opens=True)
    return C


CASES = {name: {"err": c[0], "opens": c[2], "chain": c[3]} for name, c in case_list().items()}


def write_all(outdir):
    manifest = {}
    for name, (err, img, opens, chain, extra) in case_list().items():
        d = os.path.join(outdir, name)
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, "image.vhdx")
        with open(p, "wb") as f:
            f.write(img)
        for fn, data in extra.items():
            with open(os.path.join(d, fn), "wb") as f:
                f.write(data)
        manifest[name] = {"path": p, "err": err, "opens": opens, "chain": chain}
    return manifest


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(json.dumps(write_all(sys.argv[1]), indent=1))
