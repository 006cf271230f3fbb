"""test_vhdtool_vhdx.py: vhdtool on VHDX, cross-checked by qemu-img and libvhdi.

Our VHDX (every kind, after random writes) read byte-exactly by `qemu-img convert -f vhdx` and
accepted by `qemu-img check` (qemu has no differencing VHDX: the child is checked by vhdtool's
own chain read against a model, and by vhdiinfo); qemu-img's VHDX (fixed, dynamic, block sizes
1/8/32/256 MiB) read byte-exactly by `vhdtool read` and `convert -O raw`; libvhdi (vhdiinfo,
vhdimount) reading ours; convert round trips in every direction; pending logs (make_vhdx_log.py)
shown by info, read without changing the file, replayed by write; the malformed corpus
(make_vhdx_corrupt.py) through check/info, plain and ASan+UBSan; the editing verbs' refusals (the verbs themselves: test_vhdx_edit.py).
"""
import json
import os
import random

import pytest

from conftest import read_file, run, sha256
import make_vhdx_corrupt as mc
import make_vhdx_log as ml

MIB = 1 << 20
SIZE = 48 * MIB


def pattern(n, seed):
    """n bytes of deterministic, incompressible-looking data."""
    return random.Random(seed).randbytes(n)


def random_writes(vhdtool, img, model, seed, count=12):
    """count writes of random length at random sectors through `vhdtool write`, mirrored in model."""
    rnd = random.Random(seed)
    sectors = len(model) // 512
    for i in range(count):
        n = rnd.choice([1, 7, 64, 2048, 4096 + 3])
        lba = rnd.randrange(0, sectors - n)
        data = pattern(n * 512, seed * 100 + i)
        run([vhdtool, "write", img, lba], input=data)
        model[lba * 512:(lba + n) * 512] = data


def qemu_raw(qemu_img, img, out):
    run([qemu_img, "convert", "-f", "vhdx", "-O", "raw", img, out], timeout=120)
    return read_file(out)


@pytest.mark.parametrize("kind,block", [("vhdx-dynamic", None), ("vhdx-dynamic", "1M"), ("vhdx-dynamic", "8M"),
                                        ("vhdx-fixed", None), ("vhdx-fixed", "1M")])
def test_ours_read_by_qemu(vhdtool, qemu_img, tmp_path, kind, block):
    img = tmp_path / "d.vhdx"
    run([vhdtool, "create", "-t", kind, "-s", SIZE, img] + (["-b", block] if block else []))
    model = bytearray(SIZE)
    random_writes(vhdtool, img, model, seed=len(kind) + (len(block) if block else 0))
    run([qemu_img, "check", "-f", "vhdx", img])
    assert qemu_raw(qemu_img, img, tmp_path / "q.raw") == bytes(model)
    run([vhdtool, "check", img], text=True)
    info = json.loads(run([vhdtool, "info", "--json", img], text=True).stdout)
    assert info["format"] == "vhdx" and info["virtual_size"] == SIZE
    assert info["type"] == ("fixed" if kind == "vhdx-fixed" else "dynamic")
    assert info["log"]["state"] == "empty" and not info["log"]["pending"]
    assert sum(h["current"] for h in info["headers"]) == 1
    cur = [h for h in info["headers"] if h["current"]][0]
    assert cur["sequence_number"] == info["current_header"]["sequence_number"]
    assert max(h["sequence_number"] for h in info["headers"]) == cur["sequence_number"]
    if block:
        assert info["metadata"]["block_size"] == 1 << (20 + {"1M": 0, "8M": 3}[block])


def test_create_log_size_and_bad_args(vhdtool, qemu_img, tmp_path):
    img = tmp_path / "l.vhdx"
    run([vhdtool, "create", "-t", "vhdx-dynamic", "--log-size", "4M", "-s", "16M", img])
    info = json.loads(run([vhdtool, "info", "--json", img], text=True).stdout)
    assert info["current_header"]["log_length"] == 4 * MIB
    run([qemu_img, "check", "-f", "vhdx", img])
    for bad in (["-b", "512K"], ["-b", "3M"], ["-b", "512M"], ["--log-size", "1000K"]):
        res = run([vhdtool, "create", "-t", "vhdx-dynamic", "-s", "16M", tmp_path / "x.vhdx"] + bad, rc=2, text=True)
        assert "must be" in res.stderr
        assert not os.path.exists(tmp_path / "x.vhdx")
    res = run([vhdtool, "create", "-t", "vhdx-dynamic", "-s", "16M", img], rc=1, text=True)
    assert "exists" in res.stderr


@pytest.mark.parametrize("subformat,block", [("fixed", None), ("dynamic", "1M"), ("dynamic", "8M"),
                                             ("dynamic", "32M"), ("dynamic", "256M")])
def test_qemu_vhdx_read_by_vhdtool(vhdtool, qemu_img, tmp_path, subformat, block):
    raw = tmp_path / "src.raw"
    data = bytearray(SIZE)
    for i, off in enumerate((0, 5 * MIB + 512, 17 * MIB - 4096, 40 * MIB)):
        data[off:off + 3 * MIB // 2] = pattern(3 * MIB // 2, i)
    raw.write_bytes(bytes(data))
    img = tmp_path / "q.vhdx"
    opts = "subformat=%s" % subformat + (",block_size=%s" % block if block else "")
    run([qemu_img, "convert", "-f", "raw", "-O", "vhdx", "-o", opts, raw, img], timeout=120)
    run([vhdtool, "convert", "-O", "raw", img, tmp_path / "o.raw"])
    assert read_file(tmp_path / "o.raw") == bytes(data)
    out = run([vhdtool, "read", img, 0, SIZE // 512]).stdout
    assert out == bytes(data)
    # An odd range across a block boundary.
    lba, n = (17 * MIB - 4096) // 512 - 3, 4099
    assert run([vhdtool, "read", img, lba, n]).stdout == bytes(data[lba * 512:(lba + n) * 512])
    run([vhdtool, "check", img], text=True)
    run([vhdtool, "compare", raw, img], text=True)


def test_libvhdi_reads_ours(vhdtool, vhdiinfo, vhdimount, tmp_path):
    for kind in ("vhdx-dynamic", "vhdx-fixed"):
        img = tmp_path / (kind + ".vhdx")
        run([vhdtool, "create", "-t", kind, "-s", SIZE, img])
        model = bytearray(SIZE)
        random_writes(vhdtool, img, model, seed=7, count=6)
        res = run([vhdiinfo, img], text=True)
        assert "VHDX" in res.stdout and ("%d bytes" % SIZE) in res.stdout
        assert ("Fixed" if kind == "vhdx-fixed" else "Dynamic") in res.stdout
        with vhdimount(img) as disk:
            assert read_file(disk) == bytes(model), kind


def test_round_trips(vhdtool, qemu_img, tmp_path):
    raw = tmp_path / "a.raw"
    data = bytearray(SIZE)
    for i in range(9):
        off = random.Random(i).randrange(0, SIZE - MIB) & ~511
        data[off:off + 300 * 1024] = pattern(300 * 1024, 50 + i)
    raw.write_bytes(bytes(data))
    p = tmp_path
    run([vhdtool, "convert", "-O", "vhdx-dynamic", raw, p / "b.vhdx"])
    run([vhdtool, "convert", "-O", "dynamic", p / "b.vhdx", p / "c.vhd"])
    run([vhdtool, "convert", "-O", "vhdx-fixed", p / "c.vhd", p / "d.vhdx"])
    run([vhdtool, "convert", "-O", "fixed", p / "d.vhdx", p / "e.vhd"])
    run([vhdtool, "convert", "-O", "vhdx-dynamic", "-b", "1M", p / "e.vhd", p / "f.vhdx"])
    run([vhdtool, "convert", "-O", "raw", p / "f.vhdx", p / "g.raw"])
    assert read_file(p / "g.raw") == bytes(data)
    for f in ("b.vhdx", "d.vhdx", "f.vhdx"):
        run([qemu_img, "check", "-f", "vhdx", p / f])
        assert qemu_raw(qemu_img, p / f, p / "q.raw") == bytes(data), f
    # Default output format by name; all-zero blocks stay unallocated.
    run([vhdtool, "convert", raw, p / "h.vhdx"])
    info = json.loads(run([vhdtool, "info", "--json", p / "h.vhdx"], text=True).stdout)
    bs = info["metadata"]["block_size"]
    used = sum(1 for b in range(0, SIZE, bs) if any(data[b:b + bs]))
    assert info["type"] == "dynamic" and info["allocated_bytes"] == used * bs
    res = run([vhdtool, "convert", "-O", "vhdx-dynamic", p / "h.vhdx", p / "h.vhdx"], rc=2, text=True)
    assert "output is the input" in res.stderr


def test_differencing_child(vhdtool, vhdiinfo, tmp_path):
    base = tmp_path / "base.vhdx"
    run([vhdtool, "create", "-t", "vhdx-dynamic", "-s", SIZE, base])
    model = bytearray(SIZE)
    random_writes(vhdtool, base, model, seed=3, count=5)
    os.mkdir(tmp_path / "kids")
    child = tmp_path / "kids" / "child.vhdx"
    run([vhdtool, "create", "-p", base, child])
    info = json.loads(run([vhdtool, "info", "--json", child], text=True).stdout)
    loc = info["parent_locator"]
    assert info["type"] == "differencing" and loc["relative_path"] == "..\\base.vhdx"
    assert loc["absolute_win32_path"] == str(base.resolve()).replace("/", "\\")
    assert loc["parent_linkage"] == [m for m in info["chain"] if m["level"] == 1][0]["data_write_guid"]
    assert [m["type"] for m in info["chain"]] == ["differencing", "dynamic"]
    random_writes(vhdtool, child, model, seed=4, count=10)
    assert run([vhdtool, "read", child, 0, SIZE // 512]).stdout == bytes(model)
    run([vhdtool, "check", child], text=True)
    # Flattened by convert; the parent is unchanged by the child's writes.
    run([vhdtool, "convert", "-O", "raw", child, tmp_path / "flat.raw"])
    assert read_file(tmp_path / "flat.raw") == bytes(model)
    run([vhdtool, "convert", "-O", "vhdx-dynamic", child, tmp_path / "flat.vhdx"])
    run([vhdtool, "compare", tmp_path / "flat.raw", tmp_path / "flat.vhdx"], text=True)
    res = run([vhdiinfo, child], text=True)
    assert "Differential" in res.stdout
    # Parent written after the child was made: the linkage no longer matches, named as such.
    run([vhdtool, "write", base, 0], input=bytes(512))
    res = run([vhdtool, "read", child, 0, 1], rc=1, text=True)
    assert "parent-linkage" in res.stderr
    res = run([vhdtool, "check", child], rc=1, text=True)
    assert "parent-linkage" in res.stdout


def test_map_text(vhdtool, tmp_path):
    img = tmp_path / "m.vhdx"
    run([vhdtool, "create", "-t", "vhdx-dynamic", "-b", "1M", "-s", "8M", img])
    run([vhdtool, "write", img, 2048], input=pattern(3 * MIB, 1))
    out = run([vhdtool, "map", img], text=True).stdout
    for word in ("file-identifier", "header (current)", "region-table", "log", "metadata", "bat",
                 "fully-present blocks 1-3"):
        assert word in out, out
    # the pictures: tests/host/test_vhdx_edit.py::test_map_picture


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    return ml.write_all(str(tmp_path_factory.mktemp("vhdx-logs")))


def test_pending_log(vhdtool, qemu_img, logs, tmp_path):
    for name, c in logs.items():
        before = sha256(c["path"])
        expected = qemu_raw(qemu_img, c["expected"], tmp_path / "e.raw")
        info = json.loads(run([vhdtool, "info", "--json", c["path"]], text=True).stdout)
        if c["entries"]:
            assert info["log"]["pending"] and info["log"]["entries_replayed"] == c["entries"], name
            assert info["log"]["replayed_in_memory_only"], name
        else:
            assert info["log"]["torn_entries_ignored"] and not info["log"]["pending"], name
        res = run([vhdtool, "convert", "-O", "raw", c["path"], tmp_path / "o.raw"], text=True)
        if c["entries"]:
            assert "replayed in memory only; the file is unchanged" in res.stderr, name
        assert read_file(tmp_path / "o.raw") == expected, name
        assert run([vhdtool, "read", c["path"], 0, len(expected) // 512]).stdout == expected, name
        assert sha256(c["path"]) == before, name + ": a read-only command changed the file"
        # write replays into the file first, says so, and leaves a clean image.
        w = tmp_path / "w.vhdx"
        w.write_bytes(read_file(c["path"]))
        res = run([vhdtool, "write", w, 1], input=pattern(512, 9), text=True)
        if c["entries"]:
            assert "replayed into the file first" in res.stderr, name
        after = json.loads(run([vhdtool, "info", "--json", w], text=True).stdout)
        assert after["log"]["state"] == "empty", name
        run([qemu_img, "check", "-f", "vhdx", w])
        exp = bytearray(expected)
        exp[512:1024] = pattern(512, 9)
        assert qemu_raw(qemu_img, w, tmp_path / "w.raw") == bytes(exp), name


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return mc.write_all(str(tmp_path_factory.mktemp("vhdx-corpus")))


def hashes(d):
    return {n: sha256(os.path.join(d, n)) for n in sorted(os.listdir(d))}


@pytest.mark.parametrize("variant", ["plain", "san"])
def test_corpus(request, corpus, variant):
    tool = request.getfixturevalue("vhdtool" if variant == "plain" else "vhdtool_san")
    assert len(corpus) >= 25
    for name, c in corpus.items():
        d = os.path.dirname(c["path"])
        before = hashes(d)
        img = ["-f", "vhdx", c["path"]]   # the library's verdict even where the identifier itself is the defect
        # A missing parent is found missing by the resolver (image/resolve.c), which names it parent-not-found.
        err = {"no-parent": "parent-not-found"}.get(c["err"], c["err"])
        chk = run([tool, "check"] + img, rc=(1, 2), text=True, timeout=60)
        # (the corpus' folders are named like the errors: match the finding's field, not any text)
        assert ": %s: " % err in chk.stdout, name + "\n" + chk.stdout + chk.stderr
        if c["opens"] or c["chain"] or c["err"] == "bat-overlap":
            assert chk.returncode == 1, name           # opens: a named defect
        else:
            assert chk.returncode == 2, name           # does not open: unusable
        js = json.loads(run([tool, "check", "--json"] + img, rc=(1, 2), text=True, timeout=60).stdout)
        assert js["status"] == chk.returncode and err in {f["check"] for f in js["findings"]}, name
        inf = run([tool, "info"] + img, rc=(0, 1), text=True, timeout=60)
        if not c["opens"]:
            assert inf.returncode == 1 and "(%s)" % err in inf.stderr, name + inf.stderr
        run([tool, "info", "--json"] + img, rc=(0, 1), text=True, timeout=60)
        run([tool, "read", "-f", "vhdx", c["path"], 0, 1], rc=(0, 1, 2), timeout=60)
        # By content: the same verdict, or (no identifier) the detection's refusal.
        auto = run([tool, "check", c["path"]], rc=(1, 2), text=True, timeout=60)
        assert auto.returncode == chk.returncode, name
        if name == "signature":
            assert "no VHDX identifier" in auto.stderr
        assert hashes(d) == before, name + ": file changed"


@pytest.mark.parametrize("verb,before_args,after_args,why", [
    ("resize", [], ["64M"], "differencing"), ("compact", [], [], "fixed VHDX"),
    ("commit", [], [], "only a differencing image"), ("rebase", ["-u", "-b", "x.vhd"], [], "do not mix"),
    ("set", [], ["uuid=new"], "unknown VHDX field")])
def test_vhdx_edit_verbs_refuse(vhdtool, tmp_path, verb, before_args, after_args, why):
    """The VHDX editing verbs (tests/host/test_vhdx_edit.py) refuse what does not apply, with the reason, file untouched."""
    run([vhdtool, "create", "-t", "vhdx-fixed", "-s", "8M", "-b", "1M", tmp_path / "f.vhdx"])
    run([vhdtool, "create", "-p", tmp_path / "f.vhdx", tmp_path / "c.vhdx"], cwd=tmp_path)
    run([vhdtool, "create", "-t", "dynamic", "-s", "8M", tmp_path / "x.vhd"])
    img = tmp_path / ("c.vhdx" if verb in ("resize", "rebase") else "f.vhdx")
    before = sha256(img)
    res = run([vhdtool, verb] + before_args + [img] + after_args, rc=(1, 2), text=True, cwd=tmp_path)
    assert why in res.stderr, res.stderr
    assert sha256(img) == before


def test_info_torn_header(vhdtool, corpus):
    """A torn header copy: info names it invalid with the library's error and shows the other as current."""
    c = corpus["header-copy-bad"]
    info = json.loads(run([vhdtool, "info", "--json", c["path"]], text=True).stdout)
    bad = [h for h in info["headers"] if not h["valid"]]
    good = [h for h in info["headers"] if h["valid"]]
    assert len(bad) == 1 and len(good) == 1 and bad[0]["error"]
    assert good[0]["current"] and not bad[0]["current"]
    assert info["current_header"]["copy"] == good[0]["copy"]
    assert info["current_header"]["sequence_number"] == good[0]["sequence_number"]


def test_flows_under_sanitizers(vhdtool_san, qemu_img, logs, tmp_path):
    """The VHDX verbs' main paths under ASan+UBSan (run() fails on any sanitizer report)."""
    t, p = vhdtool_san, tmp_path
    run([t, "create", "-t", "vhdx-dynamic", "-b", "1M", "-s", "20M", p / "a.vhdx"])
    run([t, "write", p / "a.vhdx", 100], input=pattern(5 * MIB, 1))
    run([t, "create", "-p", p / "a.vhdx", p / "b.vhdx"])
    run([t, "write", p / "b.vhdx", 7], input=pattern(MIB, 2))
    for verb in (["info", "--json"], ["info"], ["map"], ["check", "--json"], ["check"], ["measure"]):
        run([t] + verb + [p / "b.vhdx"])
    run([t, "convert", p / "b.vhdx", p / "c.vhdx"])
    run([t, "convert", "-O", "vhdx-fixed", p / "c.vhdx", p / "d.vhdx"])
    run([t, "convert", "-O", "dynamic", p / "d.vhdx", p / "e.vhd"])
    run([t, "compare", p / "b.vhdx", p / "e.vhd"], text=True)
    run([qemu_img, "check", "-f", "vhdx", p / "d.vhdx"])
    for name in ("sequence", "wrap", "allocate"):
        run([t, "convert", "-O", "raw", logs[name]["path"], p / "o.raw"])
        (p / "w.vhdx").write_bytes(read_file(logs[name]["path"]))
        run([t, "write", p / "w.vhdx", 0], input=b"")
