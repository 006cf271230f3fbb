"""test_vhdx_edit.py: the editing verbs on VHDX (resize, commit, rebase, set, compact, repair) and map --svg/--html.

Every verb runs on vhdtool-made and qemu-img-made images; each result is checked by
`qemu-img check`, `qemu-img compare` (or convert) against the content the verb must leave,
`vhdtool check`, and libvhdi's vhdiinfo where it reads the image. qemu-img 7.2 has no
differencing VHDX, so chains are read through vhdtool against a model. Kills at every write
point are in test_crash.py.
"""
import json
import os
import random
import xml.dom.minidom

import pytest

from conftest import read_file, run, sha256
import make_vhdx_corrupt as mc
import make_vhdx_log as ml

MIB = 1 << 20
SEC = 512


def pattern(n, seed):
    return random.Random(seed).randbytes(n)


def vx_raw(vhdtool, img, tmp):
    out = tmp / "v.raw"
    run([vhdtool, "convert", "-O", "raw", img, out])
    data = read_file(out)
    os.unlink(out)
    return data


def qemu_same(qemu_img, img, want, tmp):
    """qemu-img check passes and qemu-img compare finds img equal to the bytes want."""
    run([qemu_img, "check", "-f", "vhdx", img])
    ref = tmp / "want.raw"
    ref.write_bytes(want)
    run([qemu_img, "compare", "-f", "vhdx", "-F", "raw", img, ref])
    os.unlink(ref)


def clean(vhdtool, img):
    res = run([vhdtool, "check", img], rc=(0, 1), text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def info(vhdtool, img):
    return json.loads(run([vhdtool, "info", "--json", img], text=True).stdout)


def guids(vhdtool, img):
    h = info(vhdtool, img)["current_header"]
    return h["file_write_guid"], h["data_write_guid"]


def make(vhdtool, qemu_img, tmp, maker, kind, size, block, data):
    """A VHDX of size bytes holding data (bytes, shorter is zero-padded) made by maker ("ours"/"qemu")."""
    img = tmp / ("%s-%s.vhdx" % (maker, kind))
    raw = tmp / "src.raw"
    raw.write_bytes(data + bytes(size - len(data)))
    if maker == "ours":
        run([vhdtool, "convert", "-O", "vhdx-" + kind, "-b", block, raw, img])
    else:
        run([qemu_img, "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=%s,block_size=%s" % (kind, block),
             raw, img])
    os.unlink(raw)
    return img


# ------------------------------------------------------------------ resize

@pytest.mark.parametrize("maker", ["ours", "qemu"])
@pytest.mark.parametrize("kind", ["dynamic", "fixed"])
def test_resize(vhdtool, qemu_img, vhdiinfo, tmp_path, maker, kind):
    size = 20 * MIB
    data = pattern(5 * MIB + 3 * SEC, maker + kind)
    img = make(vhdtool, qemu_img, tmp_path, maker, kind, size, "1M", data)
    want = data + bytes(size - len(data))
    # grow by a non-block multiple, then again to a block multiple
    fw0, dw0 = guids(vhdtool, img)
    for new in (size + 3 * MIB + 7 * SEC, 40 * MIB):
        res = run([vhdtool, "resize", img, new], text=True)
        assert "resized" in res.stdout
        want = want + bytes(new - len(want))
        qemu_same(qemu_img, img, want, tmp_path)
        clean(vhdtool, img)
        assert ("%d bytes" % new) in run([vhdiinfo, img], text=True).stdout
    fw1, dw1 = guids(vhdtool, img)
    assert fw1 != fw0 and dw1 != dw0
    assert info(vhdtool, img)["type"] == kind
    # shrink: refused without --shrink, refused over data, done over an empty tail
    before = sha256(img)
    res = run([vhdtool, "resize", img, 8 * MIB], rc=1, text=True)
    assert "--shrink" in res.stderr
    res = run([vhdtool, "resize", "--shrink", img, 4 * MIB], rc=1, text=True)
    assert "hold data" in res.stderr or "is allocated" in res.stderr
    assert sha256(img) == before
    run([vhdtool, "resize", "--shrink", "--", img, "-%d" % (30 * MIB)])
    want = want[:10 * MIB]
    qemu_same(qemu_img, img, want, tmp_path)
    clean(vhdtool, img)
    # and back up: the dropped tail reads zeros
    run([vhdtool, "resize", img, "+2M"])
    qemu_same(qemu_img, img, want + bytes(2 * MIB), tmp_path)


def test_resize_refusals(vhdtool, tmp_path):
    p = tmp_path / "p.vhdx"
    run([vhdtool, "create", "-t", "vhdx-dynamic", "-s", "8M", "-b", "1M", p])
    run([vhdtool, "create", "-p", p, tmp_path / "c.vhdx"], cwd=tmp_path)
    before = sha256(tmp_path / "c.vhdx")
    res = run([vhdtool, "resize", tmp_path / "c.vhdx", "16M"], rc=1, text=True)
    assert "differencing" in res.stderr
    assert sha256(tmp_path / "c.vhdx") == before
    # BAT region full (1 MiB holds 131072 entries: 128 GiB of 1 MiB blocks): refused with the way out
    before = sha256(p)
    res = run([vhdtool, "resize", p, "200G"], rc=1, text=True)
    assert "BAT region" in res.stderr and "convert" in res.stderr
    assert sha256(p) == before
    run([vhdtool, "resize", p, "100G"])   # within the region: fine (sparse file)
    clean(vhdtool, p)


# ------------------------------------------------------------------ commit

def chain(vhdtool, qemu_img, tmp, maker, writes):
    """base (maker's, 16 MiB, 1 MiB blocks, patterned) + child c1 (ours) with writes, + sibling c2; returns paths and model."""
    size = 16 * MIB
    base_data = pattern(6 * MIB, "base" + maker) + bytes(2 * MIB) + pattern(MIB, "b2")
    base = make(vhdtool, qemu_img, tmp, maker, "dynamic", size, "1M", base_data)
    os.rename(base, tmp / "base.vhdx")
    base = tmp / "base.vhdx"
    run([vhdtool, "create", "-b", "1M", "-p", base, tmp / "c1.vhdx"], cwd=tmp)
    run([vhdtool, "create", "-p", base, tmp / "c2.vhdx"], cwd=tmp)
    model = bytearray(base_data + bytes(size - len(base_data)))
    rnd = random.Random(maker)
    for i in range(writes):
        n = rnd.choice([1, 9, 2048, 2500])
        lba = rnd.randrange(0, size // SEC - n)
        d = bytes(n * SEC) if i % 4 == 3 else pattern(n * SEC, i)
        run([vhdtool, "write", tmp / "c1.vhdx", lba], input=d)
        model[lba * SEC:(lba + n) * SEC] = d
    return base, tmp / "c1.vhdx", tmp / "c2.vhdx", bytes(model)


@pytest.mark.parametrize("maker", ["ours", "qemu"])
def test_commit(vhdtool, qemu_img, tmp_path, maker):
    base, c1, c2, model = chain(vhdtool, qemu_img, tmp_path, maker, 10)
    assert vx_raw(vhdtool, c1, tmp_path) == model
    _, dw_old = guids(vhdtool, base)
    res = run([vhdtool, "commit", c1], text=True)
    assert "committed" in res.stdout
    _, dw_new = guids(vhdtool, base)
    assert dw_new != dw_old
    assert dw_old in res.stdout and dw_new in res.stdout and "no longer attaches" in res.stdout
    qemu_same(qemu_img, base, model, tmp_path)
    clean(vhdtool, base)
    # the committed child still reads the same, linked to the new DataWriteGuid
    assert vx_raw(vhdtool, c1, tmp_path) == model
    clean(vhdtool, c1)
    loc = info(vhdtool, c1)["parent_locator"]
    assert loc["parent_linkage"] == dw_new and loc["parent_linkage2"] is None
    # the sibling no longer attaches: its view of the parent changed
    res = run([vhdtool, "check", c2], rc=1, text=True)
    assert "parent-linkage" in res.stdout + res.stderr


def test_commit_refusals(vhdtool, tmp_path):
    p = tmp_path / "p.vhdx"
    run([vhdtool, "create", "-t", "vhdx-dynamic", "-s", "8M", p])
    before = sha256(p)
    res = run([vhdtool, "commit", p], rc=1, text=True)
    assert "only a differencing image" in res.stderr
    assert sha256(p) == before
    # an empty child: nothing written, the parent keeps its DataWriteGuid and the child stays linked
    run([vhdtool, "create", "-p", p, tmp_path / "c.vhdx"], cwd=tmp_path)
    _, dw = guids(vhdtool, p)
    res = run([vhdtool, "commit", tmp_path / "c.vhdx"], text=True)
    assert "committed 0 sectors" in res.stdout and guids(vhdtool, p)[1] == dw
    clean(vhdtool, tmp_path / "c.vhdx")


# ------------------------------------------------------------------ rebase

@pytest.mark.parametrize("mode", ["safe", "unsafe"])
def test_rebase(vhdtool, qemu_img, tmp_path, mode):
    base, c1, c2, model = chain(vhdtool, qemu_img, tmp_path, "qemu", 6)
    other = pattern(16 * MIB, "other")
    if mode == "unsafe":
        other = vx_raw(vhdtool, base, tmp_path)   # a copy of the parent: -u is right
    nb = make(vhdtool, qemu_img, tmp_path, "ours", "dynamic", 16 * MIB, "2M", other)
    os.makedirs(tmp_path / "sub")
    os.rename(nb, tmp_path / "sub" / "np.vhdx")
    nb = tmp_path / "sub" / "np.vhdx"
    fw0, dw0 = guids(vhdtool, c1)
    res = run([vhdtool, "rebase"] + (["-u"] if mode == "unsafe" else []) + ["-b", nb, c1], text=True)
    assert "parent is now" in res.stdout
    fw1, dw1 = guids(vhdtool, c1)
    assert fw1 != fw0 and dw1 == dw0     # the chain's content is unchanged: grandchildren stay attached
    assert vx_raw(vhdtool, c1, tmp_path) == model
    clean(vhdtool, c1)
    i = info(vhdtool, c1)
    loc = i["parent_locator"]
    assert loc["parent_linkage"] == guids(vhdtool, nb)[1]
    assert loc["relative_path"] == ".\\sub\\np.vhdx"
    assert loc["absolute_win32_path"].endswith("\\sub\\np.vhdx")
    assert i["chain"][1]["path"].endswith("np.vhdx")


def test_rebase_refusals(vhdtool, tmp_path):
    p = tmp_path / "p.vhdx"
    run([vhdtool, "create", "-t", "vhdx-dynamic", "-s", "8M", p])
    run([vhdtool, "create", "-p", p, tmp_path / "c.vhdx"], cwd=tmp_path)
    run([vhdtool, "create", "-t", "vhdx-dynamic", "-s", "16M", tmp_path / "big.vhdx"])
    run([vhdtool, "create", "-t", "dynamic", "-s", "8M", tmp_path / "v.vhd"])
    before = sha256(tmp_path / "c.vhdx")
    res = run([vhdtool, "rebase", "-b", tmp_path / "big.vhdx", tmp_path / "c.vhdx"], rc=1, text=True)
    assert "child's size" in res.stderr
    res = run([vhdtool, "rebase", "-b", tmp_path / "v.vhd", tmp_path / "c.vhdx"], rc=1, text=True)
    assert "do not mix" in res.stderr
    res = run([vhdtool, "rebase", "-b", tmp_path / "c.vhdx", tmp_path / "c.vhdx"], rc=1, text=True)
    assert "loop" in res.stderr
    assert sha256(tmp_path / "c.vhdx") == before


# ------------------------------------------------------------------ set

def test_set(vhdtool, vhdiinfo, tmp_path):
    p = tmp_path / "p.vhdx"
    run([vhdtool, "create", "-t", "vhdx-dynamic", "-s", "8M", p])
    c = tmp_path / "c.vhdx"
    run([vhdtool, "create", "-p", p, c], cwd=tmp_path)
    run([vhdtool, "write", c, 5], input=pattern(4096, 1))
    view = vx_raw(vhdtool, c, tmp_path)
    fw0, dw0 = guids(vhdtool, c)
    long = "x" * 900
    run([vhdtool, "set", c, "volume_path=\\\\?\\Volume{0b9c8f64-1d1e-4a4d-9b3c-5a6e7f809a1b}\\" + long + ".vhdx",
         "page83=random", "absolute_win32_path=C:/images/p.vhdx"])
    i = info(vhdtool, c)
    loc = i["parent_locator"]
    assert loc["volume_path"].endswith(long + ".vhdx")
    assert loc["absolute_win32_path"] == "C:\\images\\p.vhdx"
    assert loc["relative_path"] == ".\\p.vhdx"
    fw1, dw1 = guids(vhdtool, c)
    assert fw1 != fw0 and dw1 == dw0
    assert vx_raw(vhdtool, c, tmp_path) == view      # still found through relative_path
    clean(vhdtool, c)
    assert "Differential" in run([vhdiinfo, c], text=True).stdout
    run([vhdtool, "set", c, "volume_path="])
    assert info(vhdtool, c)["parent_locator"]["volume_path"] is None
    # refusals: nothing changes
    before = sha256(c)
    for args, rc in ((["bogus=1"], 2), (["page83=nope"], 2), (["parent_linkage="], 2),
                     (["relative_path=", "absolute_win32_path="], 1)):
        run([vhdtool, "set", c] + args, rc=rc, text=True)
    assert sha256(c) == before
    res = run([vhdtool, "set", p, "relative_path=./x.vhdx"], rc=1, text=True)
    assert "not a differencing" in res.stderr
    # page83 on a base image; a wrong parent_linkage then refuses the chain, the right one mends it
    run([vhdtool, "set", p, "page83={11111111-2222-3333-4444-555555555555}"])
    assert info(vhdtool, p)["metadata"]["page83_id"] == "{11111111-2222-3333-4444-555555555555}"
    _, pdw = guids(vhdtool, p)
    run([vhdtool, "set", c, "parent_linkage=00000000-0000-0000-0000-000000000001"])
    run([vhdtool, "check", c], rc=1)
    run([vhdtool, "set", c, "parent_linkage=" + pdw])
    clean(vhdtool, c)


# ------------------------------------------------------------------ compact

@pytest.mark.parametrize("maker", ["ours", "qemu"])
def test_compact(vhdtool, qemu_img, tmp_path, maker):
    data = pattern(12 * MIB, "c" + maker)
    img = make(vhdtool, qemu_img, tmp_path, maker, "dynamic", 24 * MIB, "1M", data)
    # zeros written over some allocated blocks: they stay allocated until compact
    for b in (1, 4, 5, 9):
        run([vhdtool, "write", img, b * 2048], input=bytes(MIB))
    run([vhdtool, "write", img, 20 * 2048], input=pattern(MIB, "tail"))
    want = vx_raw(vhdtool, img, tmp_path)
    size = os.path.getsize(img)
    _, dw = guids(vhdtool, img)
    res = run([vhdtool, "compact", "--json", img], text=True)
    r = json.loads(res.stdout)
    assert r["dropped"] >= 4 and r["bytes_after"] <= size - 4 * MIB and os.path.getsize(img) == r["bytes_after"]
    assert guids(vhdtool, img)[1] == dw   # same content: children of it stay attached
    qemu_same(qemu_img, img, want, tmp_path)
    clean(vhdtool, img)
    r2 = json.loads(run([vhdtool, "compact", "--json", img], text=True).stdout)
    assert r2["dropped"] == 0 and r2["moved"] == 0 and r2["bytes_after"] == r["bytes_after"]


def test_compact_child_and_fixed(vhdtool, qemu_img, tmp_path):
    base, c1, c2, model = chain(vhdtool, qemu_img, tmp_path, "ours", 8)
    # zeros in a child hide the parent: they stay; the child reads the same
    run([vhdtool, "compact", c1])
    assert vx_raw(vhdtool, c1, tmp_path) == model
    clean(vhdtool, c1)
    f = tmp_path / "f.vhdx"
    run([vhdtool, "create", "-t", "vhdx-fixed", "-s", "4M", "-b", "1M", f])
    before = sha256(f)
    res = run([vhdtool, "compact", f], rc=1, text=True)
    assert "fixed" in res.stderr and sha256(f) == before


# ------------------------------------------------------------------ repair

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return mc.write_all(str(tmp_path_factory.mktemp("vhdx-corpus")))


@pytest.mark.parametrize("name", ["header-copy-bad", "region-copy-bad", "bat-range"])
def test_repair_corpus(vhdtool, qemu_img, corpus, tmp_path, name):
    src = corpus[name]["path"]
    img = tmp_path / "r.vhdx"
    img.write_bytes(read_file(src))
    before = sha256(img)
    res = run([vhdtool, "repair", "--dry-run", img], text=True)
    assert "would be" in res.stdout and sha256(img) == before
    res = run([vhdtool, "repair", img], text=True)
    assert "repaired" in res.stdout
    if name == "bat-range":
        assert "data is lost" in res.stdout
    clean(vhdtool, img)
    run([qemu_img, "check", "-f", "vhdx", img])
    assert "nothing to repair" in run([vhdtool, "repair", img], text=True).stdout


def test_repair_truncated_and_unrepairable(vhdtool, qemu_img, tmp_path):
    img = make(vhdtool, qemu_img, tmp_path, "ours", "dynamic", 8 * MIB, "1M", pattern(6 * MIB, "t"))
    want = bytearray(vx_raw(vhdtool, img, tmp_path))
    os.truncate(img, os.path.getsize(img) - MIB - 4096)   # the last block (5) and a piece of the one before (4)
    want[4 * MIB:6 * MIB] = bytes(2 * MIB)
    res = run([vhdtool, "repair", img], text=True)
    assert res.stdout.count("past the end of the file") == 2
    qemu_same(qemu_img, img, bytes(want), tmp_path)
    clean(vhdtool, img)
    # overlapping blocks: not something repair guesses at
    bad = tmp_path / "bad.vhdx"
    bad.write_bytes(b"vhdxfile" + bytes(MIB))
    before = sha256(bad)
    run([vhdtool, "repair", bad], rc=1)
    assert sha256(bad) == before


def test_repair_log(vhdtool, qemu_img, tmp_path):
    logs = ml.write_all(str(tmp_path / "logs"))
    for name, c in logs.items():
        expected = tmp_path / "e.raw"
        run([qemu_img, "convert", "-f", "vhdx", "-O", "raw", c["expected"], expected])
        before = sha256(c["path"])
        res = run([vhdtool, "repair", "--dry-run", c["path"]], text=True)
        assert sha256(c["path"]) == before
        res = run([vhdtool, "repair", c["path"]], text=True)
        if c["entries"]:
            assert "replayed into the file" in res.stdout, name
        clean(vhdtool, c["path"])
        run([qemu_img, "compare", "-f", "vhdx", "-F", "raw", c["path"], expected])


# ------------------------------------------------------------------ map pictures

def test_map_picture(vhdtool, tmp_path):
    p = tmp_path / "p.vhdx"
    run([vhdtool, "create", "-t", "vhdx-dynamic", "-b", "1M", "-s", "8M", p])
    run([vhdtool, "write", p, 2048], input=pattern(2 * MIB, 1))
    c = tmp_path / "c.vhdx"
    run([vhdtool, "create", "-b", "1M", "-p", p, c], cwd=tmp_path)
    run([vhdtool, "write", c, 10], input=pattern(100 * SEC, 2))           # partially present: 100 of 2048 sectors
    run([vhdtool, "write", c, 3 * 2048], input=pattern(MIB, 3))           # fully present
    for img, want in ((p, {"block-fully-present": 2, "virtual-block-fully-present": 2, "virtual-not-present": 6}),
                      (c, {"block-partially-present": 1, "block-fully-present": 1, "sector-bitmap": 1,
                           "virtual-block-partially-present": 1, "virtual-not-present": 6})):
        svg, html = tmp_path / "m.svg", tmp_path / "m.html"
        run([vhdtool, "map", "--svg", svg, "--html", html, img])
        doc = xml.dom.minidom.parse(str(svg))
        kinds = {}
        for r in doc.getElementsByTagName("rect"):
            k = r.getAttribute("data-kind")
            if k:
                kinds[k] = kinds.get(k, 0) + 1
        for k, n in want.items():
            assert kinds.get(k) == n, (img, kinds)
        for k in ("file-identifier", "header", "region-table", "log", "metadata", "bat"):
            assert kinds.get(k), (img, k, kinds)
        if img == c:
            part = [r for r in doc.getElementsByTagName("rect") if r.getAttribute("data-kind") == "block-partially-present"]
            assert part[0].getAttribute("data-bitmap-set") == "100" and part[0].getAttribute("data-bitmap-bits") == "2048"
        # the file band covers the whole file, in order, without gaps
        file_rects = [r for r in doc.getElementsByTagName("g")[0].getElementsByTagName("rect")]
        pos = 0
        for r in file_rects:
            assert int(r.getAttribute("data-offset")) == pos
            pos += int(r.getAttribute("data-bytes"))
        assert pos == os.path.getsize(img)
        page = read_file(html).decode()
        assert page.count("<tr data-kind=") == len(file_rects) and "<svg" in page


# ------------------------------------------------------------------ sanitizers

def test_edit_verbs_under_sanitizers(vhdtool, vhdtool_san, corpus, tmp_path):
    """Every VHDX editing verb's main path under the ASan+UBSan vhdtool (run() fails on any report)."""
    t = vhdtool_san
    p, np_, c = tmp_path / "p.vhdx", tmp_path / "np.vhdx", tmp_path / "c.vhdx"
    run([t, "create", "-t", "vhdx-dynamic", "-b", "1M", "-s", "8M", p])
    run([t, "write", p, 0], input=pattern(3 * MIB, 1))
    run([t, "create", "-t", "vhdx-dynamic", "-b", "1M", "-s", "8M", np_])
    run([t, "write", np_, 100], input=pattern(MIB, 2))
    run([t, "create", "-b", "1M", "-p", p, c], cwd=tmp_path)
    run([t, "write", c, 7], input=pattern(64 * SEC, 3))
    run([t, "write", c, 4096], input=bytes(MIB))
    want = vx_raw(vhdtool, c, tmp_path)
    run([t, "set", c, "page83=random", "volume_path=\\\\?\\Volume{0b9c8f64-1d1e-4a4d-9b3c-5a6e7f809a1b}\\x.vhdx"])
    run([t, "map", "--svg", tmp_path / "m.svg", "--html", tmp_path / "m.html", c])
    run([t, "rebase", "-b", np_, c])
    run([t, "compact", c])
    assert vx_raw(vhdtool, c, tmp_path) == want
    run([t, "commit", c])
    assert vx_raw(vhdtool, np_, tmp_path) == want
    run([t, "resize", np_, "+5M"])
    run([t, "resize", "--shrink", np_, "8M"])
    run([t, "compact", np_])
    f = tmp_path / "f.vhdx"
    run([t, "create", "-t", "vhdx-fixed", "-b", "1M", "-s", "3M", f])
    run([t, "resize", f, "6M"])
    for name in ("header-copy-bad", "region-copy-bad", "bat-range"):
        img = tmp_path / (name + ".vhdx")
        img.write_bytes(read_file(corpus[name]["path"]))
        run([t, "repair", "--dry-run", img])
        run([t, "repair", img])
    for img in (np_, f):
        clean(vhdtool, img)
    # c was committed into np, then np resized: its data changed under c, which no longer attaches
    assert "parent-linkage" in run([vhdtool, "check", c], rc=1, text=True).stdout
