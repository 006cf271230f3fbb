"""test_vhdtool.py: vhdtool against independent oracles (qemu-img's vpc driver, libvhdi, a Python reader).

What the oracles can be trusted with (checked by hand on qemu-img 7.2 and libvhdi 20210425):
- qemu-img (block/vpc.c) reads fixed and dynamic images. It sizes the disk from the CHS
  geometry unless the creator app is one it knows uses current size ("win ", "qem2", ...);
  for images vhdtool writes we pass force_size_calc=current_size. Its bitmap size is
  (block_size / 4096) rounded up to 512 *after* integer division, so it is 0 for block
  sizes below 4 KiB and qemu then misreads those images: we use qemu only for block sizes
  >= 4 KiB. It opens differencing images as if they were dynamic and never reads the
  parent, so for differencing images it only tells us what the child's blocks hold.
- libvhdi (vhdiinfo, vhdimount) reads fixed, dynamic and differencing images (it finds the
  parent by the header's parent name in the child's directory) with block sizes >= 4 KiB;
  it fails with an I/O error on 512-byte blocks. In a differencing child, libvhdi 20210425
  reads the clear sectors that follow a set bit in the same bitmap byte as zeros instead of
  from the parent (reproduced with images written by make_corrupt.py alone), so for
  children we compare vhdimount's view only on sectors whose bitmap byte is all set or all
  clear (see libvhdi_comparable()).
- tests/host/make_corrupt.py's read_virtual(), written from the spec, reads everything.
"""
import json
import os
import random
import re
import shutil

import pytest

from conftest import read_file, run, sha256
import make_corrupt as mc

MIB = 1 << 20
SEC = 512


# ------------------------------------------------------------------ helpers

def scattered(size, seed, chunks=24, max_len=300 * 1024):
    """size bytes, zero but for random chunks at random (often unaligned) places."""
    rnd = random.Random(seed)
    raw = bytearray(size)
    for _ in range(chunks):
        n = rnd.randrange(1, max_len)
        off = rnd.randrange(0, size - n)
        raw[off:off + n] = rnd.randbytes(n)
    raw[:SEC] = rnd.randbytes(SEC)          # first and last sectors always hold data
    raw[-SEC:] = rnd.randbytes(SEC)
    return raw


def qemu_raw(img, out, current_size=False):
    """qemu-img's view of img as raw bytes."""
    if current_size:
        src = ["--image-opts", "driver=vpc,force_size_calc=current_size,file.filename=%s" % img]
    else:
        src = ["-f", "vpc", str(img)]
    run(["qemu-img", "convert"] + src + ["-O", "raw", out])
    return read_file(out)


def tool_raw(vhdtool, img, out):
    run([vhdtool, "convert", "-O", "raw", img, out])
    return read_file(out)


def tool_read(vhdtool, img, lba, count):
    res = run([vhdtool, "read", img, lba, count])
    assert len(res.stdout) == count * SEC, "read %s %d %d gave %d bytes, expected %d" % (
        img, lba, count, len(res.stdout), count * SEC)
    return res.stdout


def tool_write(vhdtool, img, lba, data):
    run([vhdtool, "write", img, lba], input=bytes(data))


def first_diff(a, b):
    if len(a) != len(b):
        return "lengths differ: %d vs %d" % (len(a), len(b))
    for i in range(0, len(a), SEC):
        if a[i:i + SEC] != b[i:i + SEC]:
            return "first differing sector: %d (byte %d)" % (i // SEC, i)
    return "identical"


def assert_same(got, want, what):
    assert got == want, "%s: %s" % (what, first_diff(got, want))


def vhdiinfo_size(img):
    res = run(["vhdiinfo", img], text=True)
    m = re.search(r"Media size\s*:.*\((\d+) bytes\)", res.stdout)
    assert m, "vhdiinfo printed no media size\n" + res.stdout
    return int(m.group(1)), res.stdout


def vhdiinfo_field(text, name):
    m = re.search(r"^\s*%s\s*:\s*(.+)$" % re.escape(name), text, re.M)
    return m.group(1).strip() if m else None


def verify_structure(path, written_lbas=()):
    """Spec-level checks of a fixed/dynamic/differencing image, independent of vhdtool."""
    data, f, h, bat = mc.load(path)
    end = data[-512:]
    assert end[:8] == b"conectix", "end footer cookie"
    assert mc.checksum(end, mc.FOOTER_CSUM_OFF) == f["checksum"], "end footer checksum"
    assert f["features"] & 2 and f["version"] == 0x00010000
    assert f["cur_size"] % SEC == 0
    if h is None:
        assert f["type"] == mc.TYPE_FIXED and f["data_offset"] == mc.NO_OFFSET
        assert len(data) == f["cur_size"] + 512, "fixed: file size != size + footer"
        return f, h, bat
    assert f["type"] in (mc.TYPE_DYNAMIC, mc.TYPE_DIFF)
    assert data[:512] == end, "footer copy at 0 differs from the end footer"
    hb = data[f["data_offset"]:f["data_offset"] + 1024]
    assert hb[:8] == b"cxsparse", "header cookie"
    assert mc.checksum(hb, mc.HEADER_CSUM_OFF) == h["checksum"], "header checksum"
    assert h["data_offset"] == mc.NO_OFFSET and h["version"] == 0x00010000
    bs = h["block_size"]
    assert bs >= 512 and bs & (bs - 1) == 0, "block size %d" % bs
    assert h["max_entries"] * bs >= f["cur_size"], "table too small"
    assert h["table_offset"] % SEC == 0
    bmb = mc.bitmap_bytes_for(bs)
    meta = [(0, 512), (f["data_offset"], f["data_offset"] + 1024),
            (h["table_offset"], h["table_offset"] + 4 * h["max_entries"])]
    spans = []
    for i, e in enumerate(bat):
        if e == mc.BAT_FREE:
            continue
        s, t = e * SEC, e * SEC + bmb + bs
        assert t <= len(data) - 512, "block %d ends past the end footer" % i
        for ms, mt in meta:
            assert t <= ms or s >= mt, "block %d overlaps metadata at %d" % (i, ms)
        spans.append((s, t, i))
    spans.sort()
    for (s1, t1, i1), (s2, t2, i2) in zip(spans, spans[1:]):
        assert t1 <= s2, "blocks %d and %d overlap" % (i1, i2)
    spb = bs // SEC
    for lba in written_lbas:
        e = bat[lba // spb]
        assert e != mc.BAT_FREE, "written sector %d lies in an unallocated block" % lba
        i = lba % spb
        assert data[e * SEC + i // 8] & (0x80 >> (i % 8)), "bitmap bit of written sector %d clear" % lba
    return f, h, bat


def libvhdi_comparable(child):
    """Sectors of a differencing child that libvhdi reads correctly: those whose bitmap byte
    is all set or all clear (see the module comment)."""
    data, f, h, bat = mc.load(child)
    n = f["cur_size"] // SEC
    spb = h["block_size"] // SEC
    bad = set()
    for b, e in enumerate(bat[:-(-n // spb)]):
        if e == mc.BAT_FREE:
            continue
        for j in range(spb // 8):
            byte = data[e * SEC + j]
            if byte not in (0, 0xFF):
                bad.update(range(b * spb + 8 * j, b * spb + 8 * j + 8))
    return [i for i in range(n) if i not in bad], bad


def assert_same_sectors(got, want, sectors, what):
    assert len(got) == len(want), "%s: lengths differ: %d vs %d" % (what, len(got), len(want))
    for i in sectors:
        assert got[i * SEC:(i + 1) * SEC] == want[i * SEC:(i + 1) * SEC], "%s: sector %d differs" % (what, i)


def json_values(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from json_values(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from json_values(v)
    else:
        yield obj


# ------------------------------------------------------------------ images made by qemu-img

QEMU_SIZE = 37 * MIB + 5 * SEC


@pytest.mark.parametrize("subformat", ["fixed", "dynamic"])
@pytest.mark.parametrize("force", ["off", "on"])
def test_qemu_created_empty(vhdtool, qemu_img, tmp_path, subformat, force):
    img = tmp_path / "e.vhd"
    run(["qemu-img", "create", "-f", "vpc", "-o", "subformat=%s,force_size=%s" % (subformat, force),
         img, QEMU_SIZE])
    want = qemu_raw(img, tmp_path / "q.raw")
    if force == "on":
        assert len(want) == QEMU_SIZE
    else:
        assert len(want) >= QEMU_SIZE, "qemu rounds up to the CHS geometry"
    assert_same(tool_raw(vhdtool, img, tmp_path / "t.raw"), want, "vhdtool convert -O raw vs qemu-img")
    n = len(want) // SEC
    assert tool_read(vhdtool, img, n - 3, 3) == bytes(3 * SEC)
    run([vhdtool, "check", img])


@pytest.mark.parametrize("subformat", ["fixed", "dynamic"])
@pytest.mark.parametrize("force", ["off", "on"])
def test_qemu_converted_data(vhdtool, qemu_img, tmp_path, subformat, force):
    raw = scattered(QEMU_SIZE, "qemu-%s-%s" % (subformat, force))
    (tmp_path / "src.raw").write_bytes(raw)
    img = tmp_path / "d.vhd"
    run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o",
         "subformat=%s,force_size=%s" % (subformat, force), tmp_path / "src.raw", img])
    want = qemu_raw(img, tmp_path / "q.raw")
    assert want[:QEMU_SIZE] == bytes(raw), "qemu-img round trip itself lost data"
    assert_same(tool_raw(vhdtool, img, tmp_path / "t.raw"), want, "vhdtool convert -O raw vs qemu-img")
    n = len(want) // SEC
    rnd = random.Random(1)
    ranges = [(0, 1), (4095, 2), (4096 - 1, 4096 + 2), (n - 1, 1), (n - 17, 17)]
    ranges += [(rnd.randrange(0, n - 300), rnd.randrange(1, 300)) for _ in range(6)]
    for lba, cnt in ranges:
        assert_same(tool_read(vhdtool, img, lba, cnt), want[lba * SEC:(lba + cnt) * SEC],
                    "vhdtool read %d %d" % (lba, cnt))
    run([vhdtool, "check", img])
    # vhdtool and qemu agree on the size vhdiinfo reports
    size, _ = vhdiinfo_size(img)
    assert size == len(want)
    # vhdtool writes into qemu's layout (allocating new blocks after qemu's); qemu reads them back
    model = bytearray(want)
    for lba, data in write_plan(len(want), 4096, "into-qemu-" + subformat + force):
        tool_write(vhdtool, img, lba, data)
        model[lba * SEC:lba * SEC + len(data)] = data
    assert_same(qemu_raw(img, tmp_path / "q2.raw"), bytes(model), "qemu-img after vhdtool writes")
    run([vhdtool, "check", "--deep", img])


# ------------------------------------------------------------------ images written by vhdtool

# (type, block size): 4K and 64K are odd powers of two that qemu and libvhdi still read.
KINDS = [("fixed", None), ("dynamic", 4096), ("dynamic", 64 * 1024), ("dynamic", 512 * 1024),
         ("dynamic", 2 * MIB), ("dynamic", 4 * MIB)]


def write_plan(size, spb, seed):
    """Writes (lba, bytes): block boundaries, partial blocks, the first and last sectors."""
    n = size // SEC
    rnd = random.Random(seed)
    plan = [(0, 1), (spb - 2, 4), (2 * spb + 5, 3), (n - 1, 1), (n - 9, 9), (3 * spb - 1, spb + 2),
            (spb - 1, 2), (rnd.randrange(0, n - 16), 16), (rnd.randrange(0, n - 1), 1)]
    return [(lba, rnd.randbytes(cnt * SEC)) for lba, cnt in plan]


@pytest.mark.parametrize("kind,bs", KINDS, ids=["%s-%s" % (k, b) for k, b in KINDS])
def test_vhdtool_written(vhdtool, qemu_img, vhdiinfo, vhdimount, tmp_path, kind, bs):
    spb = (bs or 2 * MIB) // SEC
    size = 5 * spb * SEC + 7 * SEC          # the last block is partial
    img = tmp_path / "w.vhd"
    args = [vhdtool, "create", "-t", kind]
    if bs:
        args += ["-b", bs]
    run(args + ["-s", size, img])
    model = bytearray(size)
    written = set()
    for lba, data in write_plan(size, spb, "%s%s" % (kind, bs)):
        tool_write(vhdtool, img, lba, data)
        model[lba * SEC:lba * SEC + len(data)] = data
        written.update(range(lba, lba + len(data) // SEC))
    # zeros into a block nobody wrote: reads stay zero either way
    tool_write(vhdtool, img, 4 * spb + 1, bytes(2 * SEC))
    model = bytes(model)

    f, h, bat = verify_structure(img, sorted(written))
    assert f["cur_size"] == size, "footer current size %d != %d" % (f["cur_size"], size)
    if h is not None:
        assert h["block_size"] == bs
    assert_same(mc.read_virtual(img), model, "spec reader")
    assert_same(tool_raw(vhdtool, img, tmp_path / "t.raw"), model, "vhdtool convert -O raw")
    assert_same(tool_read(vhdtool, img, spb - 3, 6), model[(spb - 3) * SEC:(spb + 3) * SEC], "read")
    # qemu-img: every block size here is >= 4 KiB, which its vpc driver supports
    assert_same(qemu_raw(img, tmp_path / "q.raw", current_size=True), model, "qemu-img convert")
    vsize, text = vhdiinfo_size(img)
    assert vsize == size, "vhdiinfo media size %d != %d\n%s" % (vsize, size, text)
    run([vhdtool, "check", img])
    run([vhdtool, "check", "--deep", img])
    with vhdimount(img) as disk:
        assert_same(read_file(disk), model, "vhdimount")


def test_create_size_suffix_default_block(vhdtool, tmp_path):
    img = tmp_path / "s.vhd"
    run([vhdtool, "create", "-t", "dynamic", "-s", "8M", img])
    f, h, bat = verify_structure(img)
    assert f["cur_size"] == 8 * MIB
    assert h["block_size"] == 2 * MIB, "default block size"


# ------------------------------------------------------------------ differencing images

DIFF_SIZE = 24 * MIB


def make_qemu_parent(tmp_path, name, subformat, seed):
    raw = scattered(DIFF_SIZE, seed)
    src = tmp_path / (name + ".raw")
    src.write_bytes(raw)
    img = tmp_path / name
    run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o",
         "subformat=%s,force_size=on" % subformat, src, img])
    return img, bytes(raw)


@pytest.mark.parametrize("subformat", ["dynamic", "fixed"])
def test_differencing_over_qemu_parent(vhdtool, qemu_img, vhdiinfo, vhdimount, tmp_path, subformat):
    parent, praw = make_qemu_parent(tmp_path, "parent.vhd", subformat, "par-" + subformat)
    phash = sha256(parent)
    child = tmp_path / "child.vhd"
    run([vhdtool, "create", "-p", parent, child])
    # an empty child reads as its parent
    assert_same(tool_raw(vhdtool, child, tmp_path / "c0.raw"), praw, "fresh child")
    spb = 2 * MIB // SEC
    model = bytearray(praw)
    plan = write_plan(DIFF_SIZE, spb, "child-" + subformat)
    for lba, data in plan:
        tool_write(vhdtool, child, lba, data)
        model[lba * SEC:lba * SEC + len(data)] = data
    # zeros over parent data must hide it
    zlba = 7 * spb + 3
    tool_write(vhdtool, child, zlba, bytes(4 * SEC))
    model[zlba * SEC:(zlba + 4) * SEC] = bytes(4 * SEC)
    model = bytes(model)
    assert sha256(parent) == phash, "writing the child changed the parent"

    written = sorted({l for lba, d in plan for l in range(lba, lba + len(d) // SEC)} | set(range(zlba, zlba + 4)))
    f, h, bat = verify_structure(child, written)
    assert f["type"] == mc.TYPE_DIFF
    pf = mc.parse_footer(read_file(parent)[-512:])
    assert h["parent_uuid"] == pf["uuid"], "child's parent id != parent's unique id"
    assert h["parent_timestamp"] == pf["timestamp"], "child's parent time stamp != parent's"
    assert f["cur_size"] == DIFF_SIZE

    assert_same(tool_raw(vhdtool, child, tmp_path / "c.raw"), model, "vhdtool convert of the child")
    assert_same(tool_read(vhdtool, child, spb - 4, 8), model[(spb - 4) * SEC:(spb + 4) * SEC], "read")
    assert_same(mc.read_virtual(child, praw), model, "spec reader over the parent")
    run([vhdtool, "check", child])
    # qemu-img ignores the parent of a vpc differencing image (reads it as dynamic): it can
    # only confirm that each written sector sits where the child's BAT says.
    q = qemu_raw(child, tmp_path / "q.raw", current_size=True)
    for l in written:
        assert q[l * SEC:(l + 1) * SEC] == model[l * SEC:(l + 1) * SEC], "child sector %d per qemu" % l
    _, ptext = vhdiinfo_size(parent)
    csize, ctext = vhdiinfo_size(child)
    assert csize == DIFF_SIZE
    assert vhdiinfo_field(ctext, "Disk type") == "Differential", ctext
    assert vhdiinfo_field(ctext, "Parent identifier") == vhdiinfo_field(ptext, "Identifier"), ctext
    ok, mixed = libvhdi_comparable(child)
    assert len(ok) > len(mixed), "too few sectors left to compare with libvhdi"
    with vhdimount(child) as disk:
        assert_same_sectors(read_file(disk), model, ok, "vhdimount of the child")
    assert sha256(parent) == phash, "reading the child changed the parent"


def test_differencing_chain_and_subdir(vhdtool, qemu_img, tmp_path):
    """base (qemu, in base/) <- mid <- leaf (in top/): relative locators across directories."""
    (tmp_path / "base").mkdir()
    (tmp_path / "top").mkdir()
    base, braw = make_qemu_parent(tmp_path / "base", "base.vhd", "dynamic", "chain")
    bhash = sha256(base)
    mid = tmp_path / "top" / "mid.vhd"
    leaf = tmp_path / "top" / "leaf.vhd"
    run([vhdtool, "create", "-p", base, mid])
    model = bytearray(braw)
    for lba, data in write_plan(DIFF_SIZE, 4096, "mid"):
        tool_write(vhdtool, mid, lba, data)
        model[lba * SEC:lba * SEC + len(data)] = data
    mhash = sha256(mid)
    run([vhdtool, "create", "-p", mid, leaf])
    for lba, data in write_plan(DIFF_SIZE, 4096, "leaf")[:5]:
        tool_write(vhdtool, leaf, lba, data)
        model[lba * SEC:lba * SEC + len(data)] = data
    assert sha256(base) == bhash and sha256(mid) == mhash, "writes to the leaf touched an ancestor"
    # move the whole tree: relative locators must still resolve
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "base", moved / "base")
    shutil.copytree(tmp_path / "top", moved / "top")
    shutil.rmtree(tmp_path / "base")
    shutil.rmtree(tmp_path / "top")
    assert_same(tool_raw(vhdtool, moved / "top" / "leaf.vhd", tmp_path / "l.raw"), bytes(model),
                "leaf of a moved 3-level chain")
    run([vhdtool, "check", moved / "top" / "leaf.vhd"])


@pytest.mark.parametrize("child,parent", [
    ("c.vhd", "p.vhd"),                  # the parent in the child's own directory (from fully shared)
    ("ab/c.vhd", "abc/p.vhd"),           # a common prefix that is not a whole component
    ("abc/x/c.vhd", "abc/p.vhd"),
    ("c.vhd", "abc/p.vhd"),
    ("y/z/c.vhd", "p.vhd"),
])
def test_relative_locator(vhdtool, tmp_path, child, parent):
    """W2ru is the parent's path from the child's directory ('./' before a path that does not climb), whatever
    the two paths share; W2ku is the parent's absolute path."""
    p, c = tmp_path / parent, tmp_path / child
    p.parent.mkdir(parents=True, exist_ok=True)
    c.parent.mkdir(parents=True, exist_ok=True)
    run([vhdtool, "create", "-t", "dynamic", "-s", MIB, p])
    run([vhdtool, "create", "-p", p, c])
    info = json.loads(run([vhdtool, "info", "--json", c], text=True).stdout)
    locs = {loc["code"]: loc["path"] for loc in info["header"]["locators"]}
    rel = os.path.relpath(p.resolve(), c.parent.resolve())
    assert locs["W2ru"] == (rel if rel.startswith("..") else "./" + rel), locs
    assert locs["W2ku"] == str(p.resolve()), locs


# ------------------------------------------------------------------ convert

def test_convert_round_trip(vhdtool, tmp_path):
    size = 20 * MIB + 3 * SEC
    raw = scattered(size, "round")
    src = tmp_path / "a.raw"
    src.write_bytes(raw)
    run([vhdtool, "convert", "-O", "fixed", src, tmp_path / "b.vhd"])
    verify_structure(tmp_path / "b.vhd")
    run([vhdtool, "convert", "-O", "dynamic", tmp_path / "b.vhd", tmp_path / "c.vhd"])
    verify_structure(tmp_path / "c.vhd")
    run([vhdtool, "convert", "-O", "dynamic", "-b", 64 * 1024, tmp_path / "c.vhd", tmp_path / "d.vhd"])
    f, h, bat = verify_structure(tmp_path / "d.vhd")
    assert h["block_size"] == 64 * 1024
    run([vhdtool, "convert", "-O", "raw", tmp_path / "d.vhd", tmp_path / "e.raw"])
    assert_same(read_file(tmp_path / "e.raw"), bytes(raw), "raw->fixed->dynamic->dynamic(64K)->raw")
    for name in ("b.vhd", "c.vhd", "d.vhd"):
        run([vhdtool, "check", tmp_path / name])
        assert_same(mc.read_virtual(tmp_path / name), bytes(raw), "spec reader of " + name)


@pytest.mark.parametrize("bs", [512 * 1024, 2 * MIB])
def test_convert_sparse_allocates_only_nonzero(vhdtool, tmp_path, bs):
    size = 64 * MIB
    raw = bytearray(size)
    rnd = random.Random(bs)
    nonzero = {1, 5, 6, 17}
    for b in nonzero:
        off = b * 2 * MIB + rnd.randrange(0, 2 * MIB - 4096)
        raw[off:off + 4096] = rnd.randbytes(4096)
    src = tmp_path / "s.raw"
    src.write_bytes(raw)
    out = tmp_path / "s.vhd"
    run([vhdtool, "convert", "-O", "dynamic", "-b", bs, src, out])
    f, h, bat = verify_structure(out)
    want = {i for i in range(size // bs) if any(raw[i * bs:(i + 1) * bs])}
    got = {i for i, e in enumerate(bat) if e != mc.BAT_FREE}
    assert got == want, "allocated blocks %s, non-zero blocks %s" % (sorted(got), sorted(want))
    bmb = mc.bitmap_bytes_for(bs)
    meta = 3 * SEC + len(bat) * 4 + 2 * SEC + 64 * 1024   # footers, header, BAT, slack for alignment
    assert os.path.getsize(out) <= meta + len(want) * (bs + bmb + 4096), "file larger than its data"
    res = run([vhdtool, "info", "--json", out], text=True)
    info = json.loads(res.stdout)
    vals = list(json_values(info))
    assert size in vals, "info --json does not show the virtual size %d: %s" % (size, res.stdout)
    assert len(want) in vals, "info --json does not show %d allocated blocks: %s" % (len(want), res.stdout)
    assert_same(tool_raw(vhdtool, out, tmp_path / "back.raw"), bytes(raw), "sparse round trip")


def test_convert_to_qemu_readable(vhdtool, qemu_img, tmp_path):
    raw = scattered(10 * MIB, "toqemu")
    (tmp_path / "r.raw").write_bytes(raw)
    for fmt in ("fixed", "dynamic"):
        out = tmp_path / (fmt + ".vhd")
        run([vhdtool, "convert", "-O", fmt, tmp_path / "r.raw", out])
        assert_same(qemu_raw(out, tmp_path / (fmt + ".q"), current_size=True), bytes(raw), "qemu reads " + fmt)


# ------------------------------------------------------------------ CLI

SUBCOMMANDS = ["create", "info", "check", "convert", "read", "write"]


def test_help(vhdtool):
    res = run([vhdtool, "--help"], text=True)
    for sub in SUBCOMMANDS:
        assert sub in res.stdout, "`vhdtool --help` does not mention %s" % sub


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_subcommand_help(vhdtool, sub):
    res = run([vhdtool, sub, "--help"], text=True)
    assert re.search(r"usage", res.stdout, re.I), "no usage line\n" + res.stdout
    assert sub in res.stdout


BAD_ARGS = [
    [],
    ["frobnicate"],
    ["create"],
    ["create", "-t", "weird", "-s", "1M", "{tmp}/x.vhd"],
    ["create", "-t", "fixed", "{tmp}/x.vhd"],
    ["create", "-t", "dynamic", "-s", "lots", "{tmp}/x.vhd"],
    ["create", "-t", "dynamic", "-b", "3000", "-s", "8M", "{tmp}/x.vhd"],
    ["create", "-p", "{tmp}/nonexistent.vhd", "{tmp}/x.vhd"],
    ["info"],
    ["info", "{tmp}/nonexistent.vhd"],
    ["check", "{tmp}/nonexistent.vhd"],
    ["convert", "-O", "qcow2", "{tmp}/in.raw", "{tmp}/o"],
    ["convert", "{tmp}/in.raw"],
    ["read", "{tmp}/good.vhd"],
    ["read", "{tmp}/good.vhd", "zero", "1"],
    ["read", "{tmp}/good.vhd", "-1", "1"],
    ["read", "{tmp}/good.vhd", "16384", "1"],
    ["read", "{tmp}/good.vhd", "16383", "2"],
    ["write", "{tmp}/good.vhd"],
    ["write", "{tmp}/good.vhd", "16384"],
    ["info", "--bogus-option", "{tmp}/good.vhd"],
]


@pytest.fixture(scope="module")
def bad_arg_dir(tmp_path_factory, vhdtool):
    d = tmp_path_factory.mktemp("badargs")
    (d / "in.raw").write_bytes(bytes(MIB))
    run([vhdtool, "create", "-t", "dynamic", "-s", 8 * MIB, d / "good.vhd"])
    return d


@pytest.mark.parametrize("args", BAD_ARGS, ids=[" ".join(a) or "(none)" for a in BAD_ARGS])
def test_bad_arguments(vhdtool, bad_arg_dir, args):
    d = bad_arg_dir
    before = sha256(d / "good.vhd")
    argv = [vhdtool] + [a.format(tmp=d) for a in args]
    res = run(argv, rc=None, input=b"\x01" * SEC, text=True)
    assert res.returncode != 0, "bad arguments accepted\n$ %s" % " ".join(argv)
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, "expected a one-line message on stderr, got %d lines:\n%s" % (len(lines), res.stderr)
    assert sha256(d / "good.vhd") == before, "a failed command changed the image"
