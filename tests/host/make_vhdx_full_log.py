#!/usr/bin/env python3
"""make_vhdx_full_log.py: fill the log of a clean VHDX with one pending sequence of entries, as many as the log holds.

A writer killed just before it marks its log empty leaves every entry it wrote still pending; the worst case is a
log region full of them. This generator writes entries of one data descriptor each (a header page and a data page:
8 KiB) one after another from the log's start, all with the same tail (the first entry) and consecutive sequence
numbers, until the log region is full (the last entry ends exactly at the log's end), names the LogGuid in both
headers, and returns the descriptors so the caller can apply them to its model. Targets are 4 KiB pages of
allocated payload blocks, given by virtual disk offset (the block's file offset comes from the BAT).

    fill_log(img: bytearray, virt_pages: [virtual byte offset]) -> [(virtual offset, 4 KiB page)]
    python3 tests/host/make_vhdx_full_log.py IMAGE.vhdx     (fills IMAGE's log in place; prints the entry count)
"""
import struct
import sys
import uuid

import make_vhdx_log as ml

PAGE = ml.PAGE
GUID = uuid.UUID("6c6f6765-6675-6c6c-0000-000000000001").bytes_le
ENTRY = 2 * PAGE                  # one header page + one data page


def block_size(img):
    """The file parameters' block size (metadata item caa16737-...)."""
    g_meta = uuid.UUID("8b7ca206-4790-4b9a-b8fe-575f050f886e").bytes_le
    g_fp = uuid.UUID("caa16737-fa36-4d43-b3b6-33f0aa44e76b").bytes_le
    rt = 192 << 10
    for i in range(struct.unpack_from("<I", img, rt + 8)[0]):
        e = rt + 16 + 32 * i
        if bytes(img[e:e + 16]) == g_meta:
            moff = struct.unpack_from("<Q", img, e + 16)[0]
    for i in range(struct.unpack_from("<H", img, moff + 10)[0]):
        e = moff + 32 + 32 * i
        if bytes(img[e:e + 16]) == g_fp:
            return struct.unpack_from("<I", img, moff + struct.unpack_from("<I", img, e + 16)[0])[0]
    raise ValueError("no file parameters")


def file_offset(img, virt, bs):
    """File offset of virtual byte virt (its block must be fully present; blocks below the first chunk only)."""
    blk = virt // bs
    assert blk < (1 << 23) * 512 // bs, "only the first chunk's blocks"
    return ml.block_off(img, blk) + virt % bs


def fill_log(img, virt_pages, seq0=0x1000):
    """Fill img's log with pending entries writing a tagged page at each of virt_pages in turn (cycled); returns
    [(virtual offset, page)] in replay order (a later page at the same place wins)."""
    log_off, log_len = ml.log_area(img)
    bs = block_size(img)
    n = log_len // ENTRY
    size = len(img)
    out = []
    for i in range(n):
        v = virt_pages[i % len(virt_pages)]
        page = ml.page_of(b"FULL-LOG entry %06d at %012x " % (i, v))
        blob = ml.entry(GUID, seq0 + i, 0, [("data", file_offset(img, v, bs), page)], size, size)
        assert len(blob) == ENTRY
        ml.put_log(img, i * ENTRY, blob)
        out.append((v, page))
    ml.set_log_guid(img, GUID)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], "rb") as f:
        im = bytearray(f.read())
    bsz = block_size(im)
    d = fill_log(im, [8 * PAGE * k for k in range(1, 1 + ml.log_area(im)[1] // ENTRY) if 8 * PAGE * k < bsz])
    with open(sys.argv[1], "wb") as f:
        f.write(im)
    print("%d entries" % len(d))
