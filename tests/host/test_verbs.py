"""test_verbs.py: vhdtool's honest input, check statuses and the editing verbs against oracles.

Oracles: qemu-img (convert reads fixed/dynamic VHDs; resize and compare on raw files), libvhdi's
vhdiinfo (sizes and parent ids), make_corrupt.py's spec reader (read_virtual) and its corpus.
qemu-img has no VHD commit/rebase for differencing images (its vpc driver ignores parents), so
commit and rebase are checked against the flattened chain read before the change.
"""
import json
import os
import random
import re
import struct
import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import read_file, run, sha256
import make_corrupt as mc
from test_vhdtool import qemu_raw, scattered, vhdiinfo_field, vhdiinfo_size

SEC = 512
MIB = 1 << 20
VERBS = ["commit", "rebase", "resize", "compact", "repair", "set", "compare", "measure", "map", "check", "info",
         "convert", "read", "write"]


def vraw(vhdtool, img, tmp, name="v.raw"):
    out = tmp / name
    run([vhdtool, "convert", "-O", "raw", img, out])
    return read_file(out)


def check(vhdtool, img, rc=0):
    return run([vhdtool, "check", img], rc=rc, text=True)


# ------------------------------------------------------------------ help

@pytest.mark.parametrize("verb", VERBS)
def test_verb_help(vhdtool, verb):
    res = run([vhdtool, verb, "--help"], text=True)
    assert res.stdout.startswith("usage: vhdtool " + verb)
    assert verb in run([vhdtool, "--help"], text=True).stdout


# ------------------------------------------------------------------ honest input

def test_empty_vhd_refused(vhdtool, tmp_path):
    (tmp_path / "e.vhd").write_bytes(b"")
    res = run([vhdtool, "convert", "-O", "raw", tmp_path / "e.vhd", tmp_path / "o.raw"], rc=1, text=True)
    assert "empty" in res.stderr and "-f raw" in res.stderr
    assert not (tmp_path / "o.raw").exists()


def test_named_vhd_without_structures_refused(vhdtool, tmp_path):
    (tmp_path / "x.vhd").write_bytes(os.urandom(64 * 1024))
    res = run([vhdtool, "info", tmp_path / "x.vhd"], rc=1, text=True)
    assert "-f raw" in res.stderr
    # the same bytes under a raw name are raw; -f raw reads either
    (tmp_path / "x.img").write_bytes(read_file(tmp_path / "x.vhd"))
    info = json.loads(run([vhdtool, "info", "--json", tmp_path / "x.img"], text=True).stdout)
    assert info["format"] == "raw" and info["virtual_size"] == 64 * 1024
    run([vhdtool, "convert", "-f", "raw", "-O", "raw", tmp_path / "x.vhd", tmp_path / "o.raw"])
    assert read_file(tmp_path / "o.raw") == read_file(tmp_path / "x.vhd")


def test_damaged_footers_refused_not_copied(vhdtool, tmp_path):
    """Both footers damaged, header intact: refused with the reason and the remedy (issue 14)."""
    img = mc.build("both-footers-checksum", str(tmp_path / "c"))
    res = run([vhdtool, "convert", "-O", "raw", img, tmp_path / "o.raw"], rc=1, text=True)
    assert "footer-checksum" in res.stderr and "repair" in res.stderr and "-f raw" in res.stderr
    assert not (tmp_path / "o.raw").exists()
    # a footer whose cookie is damaged still counts as a VHD (6 of 8 cookie bytes)
    img = mc.build("footer-cookie", str(tmp_path / "d"))
    res = run([vhdtool, "read", img, 0, 1], rc=1, text=True)
    assert "footer-cookie" in res.stderr
    # -f raw copies the file byte for byte
    run([vhdtool, "convert", "-f", "raw", "-O", "raw", img, tmp_path / "o2.raw"])
    assert read_file(tmp_path / "o2.raw") == read_file(img)


def test_header_only_counts_as_vhd(vhdtool, tmp_path):
    """No footer anywhere, but a "cxsparse" header at 512: not raw."""
    im = mc.good_dynamic("hdr-only")
    data = bytearray(im.data)
    data[:512] = bytes(512)
    data[-512:] = bytes(512)
    (tmp_path / "h.img").write_bytes(data)
    res = run([vhdtool, "convert", "-O", "raw", tmp_path / "h.img", tmp_path / "o.raw"], rc=1, text=True)
    assert "footer-cookie" in res.stderr and "repair" in res.stderr


@pytest.mark.parametrize("verb", ["info", "check", "read", "convert", "map", "compact", "commit"])
def test_vhdx_broken_or_refused(vhdtool, tmp_path, verb):
    p = tmp_path / "d.vhdx"
    p.write_bytes(b"vhdxfile" + bytes(1024 * 1024 - 8))
    args = {"read": [p, 0, 1], "convert": [p, tmp_path / "o.raw"]}.get(verb, [p])
    res = run([vhdtool, verb] + args, rc=(1, 2), text=True)
    # VHDX is read (and edited) by vhdx/ now: an identifier with no valid header gets the library's name for it.
    assert "headers-bad" in res.stderr or "headers-bad" in res.stdout
    if verb == "convert":
        run([vhdtool, "convert", "-f", "raw", p, tmp_path / "o.raw"])
        assert read_file(tmp_path / "o.raw") == read_file(p)


# ------------------------------------------------------------------ check statuses

def aligned_dynamic(raw, bs=64 * 1024, align=4096):
    """A dynamic image (written here, not by vhdtool) whose blocks start on `align` boundaries,
    with unused sectors after the BAT and between blocks, as other writers leave."""
    size = len(raw)
    nb = size // bs
    bmb = mc.bitmap_bytes_for(bs)
    pos = -(-(3 * SEC + 4 * nb) // align) * align
    bat, body = [], bytearray()
    for b in range(nb):
        chunk = raw[b * bs:(b + 1) * bs]
        if not any(chunk):
            bat.append(mc.BAT_FREE)
            continue
        pad = (-(pos + len(body) + bmb)) % align     # the data (after the bitmap) starts aligned
        body += bytes(pad)
        bat.append((pos + len(body)) // SEC)
        body += b"\xff" * (bs // SEC // 8) + bytes(bmb - bs // SEC // 8) + chunk
    f = mc.new_footer(size, mc.TYPE_DYNAMIC, SEC, mc.uuid_for("aligned"))
    h = mc.new_header(3 * SEC, nb, bs)
    batb = b"".join(struct.pack(">I", e) for e in bat)
    head = mc.pack_footer(f) + mc.pack_header(h) + batb
    return head + bytes(pos - len(head)) + bytes(body) + mc.pack_footer(f)


def test_aligned_blocks_are_clean(vhdtool, qemu_img, tmp_path):
    raw = scattered(4 * MIB, "aligned", chunks=6, max_len=100 * 1024)
    img = tmp_path / "a.vhd"
    img.write_bytes(aligned_dynamic(bytes(raw)))
    assert mc.read_virtual(img) == bytes(raw)
    res = check(vhdtool, img, rc=0)
    assert "alignment-gap" in res.stdout and "(note)" in res.stdout
    js = json.loads(run([vhdtool, "check", "--json", img], text=True).stdout)
    assert js["status"] == "clean" and js["defects"] == 0 and js["leaks"] == 0 and js["notes"] > 0
    assert qemu_raw(img, tmp_path / "q.raw", current_size=True) == bytes(raw)


def test_leak_only_exit_3(vhdtool, tmp_path):
    """An allocation killed after the footer moved: a block's room of unused space before the footer."""
    img = tmp_path / "l.vhd"
    run([vhdtool, "create", "-t", "dynamic", "-b", 64 * 1024, "-s", 4 * MIB, img])
    run([vhdtool, "write", img, 5], input=os.urandom(4096))
    data = read_file(img)
    leaked = data[:-512] + os.urandom(64 * 1024 + 512) + data[-512:]
    img.write_bytes(leaked)
    res = check(vhdtool, img, rc=3)
    assert "trailing-bytes" in res.stdout and "(leak)" in res.stdout
    assert json.loads(run([vhdtool, "check", "--json", img], rc=3, text=True).stdout)["status"] == "leaks"
    run([vhdtool, "repair", img])
    check(vhdtool, img, rc=0)
    assert os.path.getsize(img) == len(data)


def test_check_unusable_exit_2(vhdtool, tmp_path):
    img = mc.build("header-cookie", str(tmp_path / "c"))
    res = check(vhdtool, img, rc=2)
    assert "header-cookie" in res.stdout


# ------------------------------------------------------------------ commit

def make_chain(vhdtool, tmp_path, seed, subformat="dynamic"):
    size = 24 * MIB
    braw = scattered(size, seed)
    (tmp_path / "b.raw").write_bytes(braw)
    base = tmp_path / "base.vhd"
    run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=%s,force_size=on" % subformat,
         tmp_path / "b.raw", base])
    child = tmp_path / "child.vhd"
    run([vhdtool, "create", "-p", base, child])
    model = bytearray(braw)
    rnd = random.Random(seed)
    for _ in range(10):
        lba = rnd.randrange(0, size // SEC - 3000)
        data = rnd.randbytes(rnd.randrange(1, 3000) * SEC) if rnd.randrange(3) else bytes(rnd.randrange(1, 50) * SEC)
        run([vhdtool, "write", child, lba], input=data)
        model[lba * SEC:lba * SEC + len(data)] = data
    return base, child, bytes(braw), bytes(model)


@pytest.mark.parametrize("subformat", ["dynamic", "fixed"])
def test_commit_matches_flattened_chain(vhdtool, qemu_img, vhdiinfo, tmp_path, subformat):
    base, child, braw, model = make_chain(vhdtool, tmp_path, "commit-" + subformat, subformat)
    flat = vraw(vhdtool, child, tmp_path, "flat.raw")
    assert flat == model == mc.read_virtual(child, braw)
    chash = sha256(child)
    res = run([vhdtool, "commit", child], text=True)
    assert "committed" in res.stdout
    assert sha256(child) == chash, "commit changed the child"
    assert qemu_raw(base, tmp_path / "q.raw") == flat, "qemu-img reads the committed parent differently"
    check(vhdtool, base, rc=0)
    assert vhdiinfo_size(base)[0] == len(flat)
    assert vraw(vhdtool, child, tmp_path) == flat, "the chain reads differently after commit"
    run([vhdtool, "commit", base], rc=1)       # not a differencing image


# ------------------------------------------------------------------ rebase

@pytest.mark.parametrize("unsafe", [False, True])
def test_rebase(vhdtool, qemu_img, vhdiinfo, tmp_path, unsafe):
    base, child, braw, model = make_chain(vhdtool, tmp_path, "rebase")
    other = bytearray(braw)
    rnd = random.Random("other")
    for _ in range(20):
        off = rnd.randrange(0, len(other) - 8192)
        other[off:off + 8192] = rnd.randbytes(8192)
    (tmp_path / "o.raw").write_bytes(other)
    (tmp_path / "sub").mkdir()
    newp = tmp_path / "sub" / "new.vhd"
    run([vhdtool, "convert", "-O", "dynamic", tmp_path / "o.raw", newp])
    args = [vhdtool, "rebase", "-b", newp] + (["-u"] if unsafe else []) + [child]
    run(args)
    check(vhdtool, child, rc=0)
    want = mc.read_virtual(child, bytes(other))
    assert vraw(vhdtool, child, tmp_path) == want
    if not unsafe:
        assert want == model, "safe rebase changed what the child reads"
    else:
        assert want != model
    _, ntext = vhdiinfo_size(newp)
    _, ctext = vhdiinfo_size(child)
    assert vhdiinfo_field(ctext, "Parent identifier") == vhdiinfo_field(ntext, "Identifier"), ctext
    info = json.loads(run([vhdtool, "info", "--json", child], text=True).stdout)
    assert info["chain"][1]["path"].endswith("sub/new.vhd")
    assert info["header"]["parent_name"] == "new.vhd"
    paths = [l["path"] for l in info["header"]["locators"]]
    assert "./sub/new.vhd" in paths and str(newp.resolve()) in paths


def test_rebase_size_mismatch_refused(vhdtool, tmp_path):
    run([vhdtool, "create", "-t", "dynamic", "-s", 8 * MIB, tmp_path / "p.vhd"])
    run([vhdtool, "create", "-t", "dynamic", "-s", 4 * MIB, tmp_path / "q.vhd"])
    run([vhdtool, "create", "-p", tmp_path / "p.vhd", tmp_path / "c.vhd"])
    before = sha256(tmp_path / "c.vhd")
    res = run([vhdtool, "rebase", "-b", tmp_path / "q.vhd", tmp_path / "c.vhd"], rc=1, text=True)
    assert "size" in res.stderr
    assert sha256(tmp_path / "c.vhd") == before


# ------------------------------------------------------------------ resize

@pytest.mark.parametrize("kind,bs", [("fixed", None), ("dynamic", 4096), ("dynamic", 2 * MIB)])
@pytest.mark.parametrize("new", ["grow", "grow-big", "shrink"])
def test_resize_matches_qemu_img(vhdtool, qemu_img, vhdiinfo, tmp_path, kind, bs, new):
    size = 10 * MIB
    raw = bytearray(scattered(size, "resize-%s-%s" % (kind, bs)))
    if new == "shrink":
        raw[6 * MIB:] = bytes(size - 6 * MIB)
    (tmp_path / "r.raw").write_bytes(raw)
    img = tmp_path / "i.vhd"
    run([vhdtool, "convert", "-O", kind] + (["-b", bs] if bs else []) + [tmp_path / "r.raw", img])
    target = {"grow": size + 3 * MIB + 5 * SEC, "grow-big": 64 * MIB, "shrink": 6 * MIB}[new]
    res = run([vhdtool, "resize"] + (["--shrink"] if target < size else []) + [img, target], text=True)
    run(["qemu-img", "resize", "-f", "raw"] + (["--shrink"] if target < size else []) + [tmp_path / "r.raw", target])
    want = read_file(tmp_path / "r.raw")
    assert qemu_raw(img, tmp_path / "q.raw", current_size=True) == want, "qemu-img resize of the raw disk differs"
    assert vraw(vhdtool, img, tmp_path) == want
    assert vhdiinfo_size(img)[0] == target
    check(vhdtool, img, rc=0)


def test_resize_refusals(vhdtool, tmp_path):
    img = tmp_path / "i.vhd"
    run([vhdtool, "create", "-t", "dynamic", "-b", 64 * 1024, "-s", 8 * MIB, img])
    run([vhdtool, "write", img, 7 * MIB // SEC], input=b"\x01" * SEC)
    before = sha256(img)
    run([vhdtool, "resize", img, 4 * MIB], rc=1)                 # no --shrink
    res = run([vhdtool, "resize", "--shrink", img, 4 * MIB], rc=1, text=True)
    assert "allocated" in res.stderr
    run([vhdtool, "create", "-p", img, tmp_path / "c.vhd"])
    run([vhdtool, "resize", tmp_path / "c.vhd", 16 * MIB], rc=1)
    assert sha256(img) == before


# ------------------------------------------------------------------ compact

@pytest.mark.parametrize("bs", [4096, 512 * 1024])
def test_compact_keeps_content_and_shrinks(vhdtool, qemu_img, tmp_path, bs):
    size = 16 * MIB
    raw = bytearray(scattered(size, "compact%d" % bs, chunks=10, max_len=64 * 1024))
    img = tmp_path / "c.vhd"
    run([vhdtool, "create", "-t", "dynamic", "-b", bs, "-s", size, img])
    for off in range(0, size, 1 * MIB):
        run([vhdtool, "write", img, off // SEC], input=bytes(raw[off:off + MIB]) if any(raw[off:off + MIB]) else b"\x01" * SEC)
        if not any(raw[off:off + MIB]):
            run([vhdtool, "write", img, off // SEC], input=bytes(SEC))    # allocated, now all zero
    before = os.path.getsize(img)
    js = json.loads(run([vhdtool, "compact", "--json", img], text=True).stdout)
    assert js["dropped_blocks"] > 0 and js["file_size_after"] < before == js["file_size_before"]
    assert os.path.getsize(img) == js["file_size_after"]
    assert qemu_raw(img, tmp_path / "q.raw", current_size=True) == bytes(raw)
    check(vhdtool, img, rc=0)
    # measure agrees with what compact left: only non-zero blocks stay
    m = json.loads(run([vhdtool, "measure", "--json", "-b", bs, img], text=True).stdout)
    assert m["required"] == os.path.getsize(img)


def test_compact_differencing_keeps_zeros_over_parent(vhdtool, tmp_path):
    base, child, braw, model = make_chain(vhdtool, tmp_path, "compact-diff")
    run([vhdtool, "compact", child])
    assert vraw(vhdtool, child, tmp_path) == model
    check(vhdtool, child, rc=0)


# ------------------------------------------------------------------ repair over the corpus

REPAIRED = {"end-footer-checksum-backup-ok": "c1", "both-footers-checksum": "c2", "header-checksum": "c15",
            "short-footer-511": "c36"}
NOTHING = {"saved-state", "fixed-conectix-at-0", "bitmap-clear-diff-ok", "parent-not-found", "parent-uuid",
           "parent-timestamp", "parent-size", "chain-loop", "chain-depth"}


def hashes(d):
    return {n: sha256(os.path.join(d, n)) for n in sorted(os.listdir(d))}


@pytest.mark.parametrize("name", list(mc.CASES))
def test_repair_corpus(vhdtool, tmp_path, name):
    d = str(tmp_path / "case")
    img = mc.build(name, d)
    before = hashes(d)
    dry = run([vhdtool, "repair", "--dry-run", img], rc=None, text=True)
    assert hashes(d) == before, "--dry-run wrote"
    res = run([vhdtool, "repair", img], rc=None, text=True)
    assert dry.returncode == res.returncode
    if name in REPAIRED:
        assert res.returncode == 0 and "repaired" in res.stdout, res.stdout + res.stderr
        assert "would " in dry.stdout
        check(vhdtool, img, rc=0)
        assert run([vhdtool, "read", img, 0, 16]).stdout == bytes(mc.good_raw(REPAIRED[name])[:16 * SEC])
    elif name in NOTHING:
        assert res.returncode == 0 and "nothing to repair" in res.stdout, res.stdout + res.stderr
        assert hashes(d) == before
    else:
        assert res.returncode == 1 and "not repairable" in res.stderr, res.stdout + res.stderr
        assert hashes(d) == before, "a refused repair changed the files"


# ------------------------------------------------------------------ set

def test_set_fields(vhdtool, vhdiinfo, tmp_path):
    img = tmp_path / "s.vhd"
    run([vhdtool, "create", "-t", "dynamic", "-s", 8 * MIB, img])
    run([vhdtool, "write", img, 3], input=b"\x42" * SEC)
    u = "0123abcd-4567-89ef-0123-456789abcdef"
    run([vhdtool, "set", img, "uuid=" + u, "timestamp=12345", "creator-app=tst", "creator-version=6.1",
         "creator-os=Mac ", "geometry=16/16/63", "saved-state=1"])
    f = json.loads(run([vhdtool, "info", "--json", img], text=True).stdout)["footer"]
    assert f["uuid"] == u and f["timestamp"] == 12345 and f["creator_app"] == "tst "
    assert f["creator_version"] == 0x00060001 and f["creator_os"] == "Mac "
    assert f["geometry"] == {"cylinders": 16, "heads": 16, "sectors_per_track": 63}
    assert f["saved_state"] == 1 and f["checksum_valid"]
    _, text = vhdiinfo_size(img)
    assert vhdiinfo_field(text, "Identifier") == u, text
    run([vhdtool, "write", img, 0], rc=1, input=bytes(SEC))     # saved state refuses writes
    run([vhdtool, "set", img, "saved-state=0"])
    check(vhdtool, img, rc=0)
    data, ft, h, bat = mc.load(img)
    assert data[:512] == data[-512:], "footer copy at 0 not updated"
    for bad in (["uuid=xyz"], ["nosuch=1"], ["geometry=1/2"], ["parent-name=x"], ["creator-app=toolong"]):
        before = sha256(img)
        run([vhdtool, "set", img] + bad, rc=(1, 2))
        assert sha256(img) == before, bad


def test_set_parent_links(vhdtool, tmp_path):
    run([vhdtool, "create", "-t", "dynamic", "-s", 8 * MIB, tmp_path / "p.vhd"])
    run([vhdtool, "create", "-p", tmp_path / "p.vhd", tmp_path / "c.vhd"])
    (tmp_path / "far").mkdir()
    os.rename(tmp_path / "p.vhd", tmp_path / "far" / "renamed.vhd")
    run([vhdtool, "info", tmp_path / "c.vhd"], rc=1)
    run([vhdtool, "set", tmp_path / "c.vhd", "w2ru=far/renamed.vhd", "parent-name=renamed.vhd"])
    info = json.loads(run([vhdtool, "info", "--json", tmp_path / "c.vhd"], text=True).stdout)
    assert info["chain"][1]["path"].endswith("far/renamed.vhd")
    check(vhdtool, tmp_path / "c.vhd", rc=0)


# ------------------------------------------------------------------ compare and measure

def test_compare_matches_qemu_img(vhdtool, qemu_img, tmp_path):
    raw = scattered(8 * MIB, "cmp")
    (tmp_path / "a.raw").write_bytes(raw)
    run([vhdtool, "convert", "-O", "dynamic", tmp_path / "a.raw", tmp_path / "a.vhd"])
    run([vhdtool, "compare", tmp_path / "a.vhd", tmp_path / "a.raw"])
    b = bytearray(raw)
    b[5 * MIB + 1234] ^= 1
    (tmp_path / "b.raw").write_bytes(b)
    res = run([vhdtool, "compare", tmp_path / "a.vhd", tmp_path / "b.raw"], rc=1, text=True)
    q = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", tmp_path / "a.raw", tmp_path / "b.raw"],
                       capture_output=True, text=True)
    assert q.returncode == 1
    off = int(re.search(r"offset (\d+)", q.stdout).group(1))
    assert "sector %d " % (off // SEC) in res.stdout, (res.stdout, q.stdout)
    js = json.loads(run([vhdtool, "compare", "--json", tmp_path / "b.raw", tmp_path / "a.vhd"], rc=1, text=True).stdout)
    assert js["first_difference_sector"] == off // SEC and not js["identical"]
    # a longer disk whose tail is zeros matches, unless -s
    (tmp_path / "c.raw").write_bytes(bytes(raw) + bytes(MIB))
    run([vhdtool, "compare", tmp_path / "a.vhd", tmp_path / "c.raw"])
    run([vhdtool, "compare", "-s", tmp_path / "a.vhd", tmp_path / "c.raw"], rc=1)
    q = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", tmp_path / "a.raw", tmp_path / "c.raw"],
                       capture_output=True)
    assert q.returncode == 0
    run([vhdtool, "compare", tmp_path / "a.vhd", tmp_path / "missing.vhd"], rc=2)


@pytest.mark.parametrize("out", ["dynamic", "fixed", "raw"])
def test_measure_is_the_converted_size(vhdtool, qemu_img, tmp_path, out):
    raw = bytearray(24 * MIB)
    raw[3 * MIB:3 * MIB + 100] = b"\x01" * 100
    raw[20 * MIB - 5:20 * MIB + 5] = b"\x02" * 10
    (tmp_path / "r.raw").write_bytes(raw)
    m = json.loads(run([vhdtool, "measure", "--json", "-O", out, tmp_path / "r.raw"], text=True).stdout)
    run([vhdtool, "convert", "-O", out, tmp_path / "r.raw", tmp_path / "o"])
    assert m["required"] == os.path.getsize(tmp_path / "o")
    if out == "raw":
        q = run(["qemu-img", "measure", "-O", "raw", "-f", "raw", tmp_path / "r.raw"], text=True).stdout
        assert "required size: %d" % m["required"] in q
    e = json.loads(run([vhdtool, "measure", "--json", "-O", out, "--size", 24 * MIB], text=True).stdout)
    assert e["fully-allocated"] == m["fully-allocated"]
    if out == "dynamic":
        assert e["required"] < m["required"] < m["fully-allocated"]


# ------------------------------------------------------------------ map

def test_map_svg_and_html(vhdtool, tmp_path):
    base, child, braw, model = make_chain(vhdtool, tmp_path, "map")
    svg, html = tmp_path / "m.svg", tmp_path / "m.html"
    run([vhdtool, "map", "--svg", svg, "--html", html, child])
    root = ET.parse(svg).getroot()
    kinds = [e.get("data-kind") for e in root.iter() if e.get("data-kind")]
    for k in ("footer-copy", "header", "bat", "locator", "block", "footer", "virtual-allocated", "virtual-unallocated"):
        assert k in kinds, "the SVG shows no %s region" % k
    data, f, h, bat = mc.load(child)
    used = {i for i, e in enumerate(bat) if e != mc.BAT_FREE}
    blocks = {int(e.get("data-block")) for e in root.iter() if e.get("data-kind") == "block"}
    assert blocks == used
    for e in root.iter():
        if e.get("data-kind") == "block":
            b = int(e.get("data-block"))
            assert int(e.get("data-start-sector")) == bat[b]
            assert int(e.get("data-virtual-sector")) == b * (h["block_size"] // SEC)
    text = read_file(html).decode()
    assert "<svg" in text and text.count("<tr data-kind=\"block\"") == len(used)
    t = run([vhdtool, "map", child], text=True).stdout
    assert re.search(r"virtual disk .*: \[[#.]+\]", t) and "dynamic header" in t and "footer copy" in t


@pytest.mark.parametrize("name", list(mc.CASES))
def test_verbs_on_corpus_under_sanitizers(vhdtool_san, tmp_path, name):
    """The new verbs on every malformed image, ASan+UBSan build: a clear status, never a crash (run() checks)."""
    d = str(tmp_path / "case")
    img = mc.build(name, d)
    before = hashes(d)
    for args in (["repair", "--dry-run", img], ["map", img], ["map", "--svg", tmp_path / "m.svg", img],
                 ["measure", img], ["compare", img, img], ["check", "--json", img]):
        res = run([vhdtool_san] + args, rc=None, text=True)
        assert res.returncode in (0, 1, 2, 3), res.stderr
    assert hashes(d) == before, "a read-only verb changed the files"
    wd = str(tmp_path / "w")
    img = mc.build(name, wd)
    for args in (["repair", img], ["compact", img], ["resize", img, "+1M"], ["set", img, "creator-app=abcd"],
                 ["commit", img]):
        res = run([vhdtool_san] + args, rc=None, text=True)
        assert res.returncode in (0, 1, 2), res.stderr
