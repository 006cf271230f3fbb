#!/usr/bin/python3
"""make_seeds.py: write small fuzz seeds (valid and malformed VHDs, each <= 64 KiB) into a directory.

    make_seeds.py OUTDIR

Built with tests/host/make_corrupt.py's structure writers, so nothing binary is committed.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "host"))  # make_corrupt.py
import make_corrupt as mc  # noqa: E402

MAX_LEN = 65536
K = 1024


def small_raw(size, tag):
    return bytes(mc.pattern(size, tag, chunks=4, chunk=1024))


def base_images():
    """name -> mc.Image, all small enough for -max_len=65536."""
    out = {}
    out["fixed"] = mc.fixed(small_raw(32 * K, "f"), "sf")
    for bs in (512, 4 * K, 16 * K):
        out["dyn-%d" % bs] = mc.dynamic(48 * K, bs, small_raw(48 * K, "d%d" % bs), tag="sd%d" % bs)
    out["dyn-empty"] = mc.dynamic(1 << 30, 2 << 20, None, tag="se")          # 1 GiB, nothing allocated
    out["dyn-partial-last"] = mc.dynamic(40 * K + 1536, 8 * K, small_raw(40 * K + 1536, "p"), tag="sp")
    out["dyn-extra-entries"] = mc.dynamic(32 * K, 4 * K, small_raw(32 * K, "x"), tag="sx", extra_entries=3)
    pf = out["dyn-4096"].footer()
    out["diff"] = mc.dynamic(48 * K, 4 * K, {3: b"\x5a" * 512, 20: b"\xa5" * 512}, tag="sdiff",
                             dtype=mc.TYPE_DIFF, parent=(pf["uuid"], pf["timestamp"]),
                             w2ru=".\\parent.vhd", w2ku="C:\\vm\\parent.vhd", parent_name="parent.vhd")
    out["diff-allbits"] = mc.dynamic(48 * K, 4 * K, {7: b"\x11" * 512}, tag="sdiff2", dtype=mc.TYPE_DIFF,
                                     parent=(pf["uuid"], pf["timestamp"]), w2ru="p.vhd", bitmap_mode="all")
    return out


def variants(name, im):
    """The image and a few one-field corruptions of it (checksums fixed so parsing goes deep)."""
    yield name, bytes(im.data)
    yield name + "-511", bytes(im.data[:-1])
    if im.header_pos is None:
        yield name + "-size", _patched(im, lambda i: i.patch_footer(cur_size=64 * K))
        return
    yield name + "-noend", bytes(im.data[:-512])
    yield name + "-endbad", _patched(im, lambda i: i.patch_footer(copy=False, fix_checksum=False, checksum=1))
    yield name + "-bs3k", _patched(im, lambda i: i.patch_header(block_size=3 * K))
    yield name + "-tsmall", _patched(im, lambda i: i.patch_header(max_entries=1))
    yield name + "-tpast", _patched(im, lambda i: i.patch_header(table_offset=1 << 40))
    yield name + "-huge", _patched(im, lambda i: i.patch_footer(cur_size=2040 << 30))
    allocated = [b for b in sorted(im.block_pos)]
    if len(allocated) >= 2:
        a, b = allocated[:2]
        yield name + "-overlap", _patched(im, lambda i: i.set_bat(b, i.bat(a)))
        yield name + "-meta", _patched(im, lambda i: i.set_bat(a, 1))
        yield name + "-past", _patched(im, lambda i: i.set_bat(a, 0x7FFFFFFF))


def _patched(im, fn):
    cp = mc.Image(im.data, im.footer_pos, im.header_pos, im.bat_pos, im.block_pos, im.bitmap_bytes)
    fn(cp)
    return bytes(cp.data)


def bat_at_end(im):
    """Same image with the BAT moved after the blocks (any layout is legal)."""
    data = bytearray(im.data[:-512])
    h = im.header()
    n = h["max_entries"]
    bat = bytes(im.data[im.bat_pos:im.bat_pos + 4 * n])
    new = len(data)
    data += bat.ljust(-(-len(bat) // 512) * 512, b"\xff")
    cp = mc.Image(data + im.data[-512:], len(data), im.header_pos, new, {}, im.bitmap_bytes)
    cp.patch_header(table_offset=new)
    data = bytearray(cp.data)
    data[im.bat_pos:im.bat_pos + 4 * n] = b"\0" * (4 * n)   # old table becomes leaked space
    return bytes(data)


def main(argv):
    if len(argv) != 2:
        print("usage: make_seeds.py OUTDIR", file=sys.stderr)
        return 2
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    count = 0
    seeds = []
    for name, im in base_images().items():
        seeds.extend(variants(name, im))
    seeds.append(("dyn-4096-batend", bat_at_end(base_images()["dyn-4096"])))
    seeds.append(("tiny", b"conectix" + bytes(100)))
    for name, data in seeds:
        assert len(data) <= MAX_LEN, "%s is %d bytes" % (name, len(data))
        with open(os.path.join(out, name + ".vhd"), "wb") as fh:
            fh.write(data)
        count += 1
    print("make_seeds: %d seeds in %s" % (count, out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
