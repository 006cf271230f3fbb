"""test_grow.py: a dynamic VHD file on FAT32 and exFAT grown through fs/grow.c (build/growprobe: vhd/ over the growable
ext_blk, as the firmware does), judged by the host's tools.

After every growth: fsck.fat -n / fsck.exfat -n clean, the file read back through mtools / exfat-fuse has the size
growprobe reports, `vhdtool check` finds no defect and qemu-img reads exactly the sectors written (zeros elsewhere).
Also: growth around other files (fragments), exFAT NoFatChain files kept contiguous or converted to a FAT chain,
a full volume (refused before anything is written), grow off, and power cuts at chosen device writes of a growth
(every write after the N-th fails): the volume then checks clean or with lost clusters only, the image with leaks
only, and every acknowledged write is there. GROW_CUT_ALL=1 cuts at every write instead of a sample.
"""
import os
import re
import shutil

import pytest

from conftest import ROOT, BUILD, run, have, sha256
from growvol import SECTOR, pattern, make_volume, read_back, fsck, vhd_data

VSIZE = 16 << 20
# Writes (lba, count, seed) that need 6 new 64 KiB blocks (128 sectors each).
WRITES = [(0, 8, 1), (300, 16, 2), (5000, 300, 3), (20000, 40, 4)]
CHECK_LINE = re.compile(r"^\S+: ([a-z0-9-]+): ")
ACCEPTABLE = {"leaked-space", "trailing-bytes"}


@pytest.fixture(scope="session")
def growprobe():
    for tool in ("mkfs.fat", "fsck.fat", "mcopy", "mkfs.exfat", "fsck.exfat", "mount.exfat-fuse", "losetup"):
        assert have(tool), "%s missing: tools/install-deps.sh installs dosfstools, mtools, exfatprogs, exfat-fuse" % tool
    run(["make", "-s", "-C", ROOT, "build/growprobe", "build/fsprobe"], timeout=600)
    return os.path.join(BUILD, "growprobe")


def empty_vhd(vhdtool, tmp, block="64K"):
    p = os.path.join(str(tmp), "new.vhd")
    run([vhdtool, "create", "-t", "dynamic", "-b", block, "-s", str(VSIZE), "-f", p])
    with open(p, "rb") as fh:
        return fh.read()


def grow(gp, img, *args, rc=0):
    out = run([gp, img, 0, "/d.vhd"] + [str(a) for a in args], rc=rc, text=True).stdout
    summ = dict(kv.split("=", 1) for kv in out.splitlines()[-1].split()[1:])
    return out, summ


def spec(writes):
    return ["%d:%d:%d" % w for w in writes]


def expected_disk(writes):
    want = bytearray(VSIZE)
    for lba, n, seed in writes:
        for s in range(lba, lba + n):
            want[s * SECTOR:(s + 1) * SECTOR] = pattern(s, seed)
    return bytes(want)


def check_image(vhdtool, vhd, leaks_ok=False):
    p = run([vhdtool, "check", vhd], rc=None, text=True)
    names = {m.group(1) for m in (CHECK_LINE.match(ln) for ln in p.stdout.splitlines()) if m}
    if leaks_ok:
        assert p.returncode in (0, 3) and not names - ACCEPTABLE, p.stdout + p.stderr
    else:
        assert p.returncode == 0 and "no defects" in p.stdout, p.stdout + p.stderr
    return names


def check_all(kind, img, tmp, summ, vhdtool, qemu_img, writes):
    verdict, text = fsck(kind, img)
    assert verdict == "clean", text
    data = read_back(kind, img, "d.vhd", tmp)
    assert len(data) == int(summ["size"])
    vhd = os.path.join(str(tmp), "back.vhd")
    with open(vhd, "wb") as fh:
        fh.write(data)
    check_image(vhdtool, vhd)
    assert vhd_data(qemu_img, vhd, tmp) == expected_disk(writes)


@pytest.mark.parametrize("kind,cluster,mib", [("fat32", 1, 64), ("fat32", 8, 300), ("exfat", "4K", 64),
                                              ("exfat", "512", 64)])
def test_grows_by_several_blocks(growprobe, vhdtool, qemu_img, tmp_path, kind, cluster, mib):
    """FAT32 needs 65525 clusters: 4 KiB clusters take a 300 MiB (sparse) volume."""
    img = tmp_path / "vol.img"
    make_volume(kind, img, mib, [("d.vhd", empty_vhd(vhdtool, tmp_path))], tmp_path, cluster)
    out, summ = grow(growprobe, img, *spec(WRITES))
    assert "grow-init ok" in out and out.count(" ok\n") == len(WRITES) + 1, out
    # the writes touch 4 new blocks, one write spanning two; a write allocating several blocks is one crash-safe
    # batch (vhd/vhd.c), so it grows the file once: at least 3 growths
    assert int(summ["grows"]) >= 3 and summ["err"] == "ok" and summ["broken"] == "0", out
    check_all(kind, img, tmp_path, summ, vhdtool, qemu_img, WRITES)
    # Once more on the grown file: the blocks it has are rewritten in place, new ones still grow it.
    more = [(1000, 8, 9), (30000, 16, 10)]
    out, summ2 = grow(growprobe, img, *spec(more))
    assert int(summ2["size"]) > int(summ["size"]), out
    check_all(kind, img, tmp_path, summ2, vhdtool, qemu_img, WRITES + more)


@pytest.mark.parametrize("kind", ["fat32", "exfat"])
def test_grows_around_other_files(growprobe, vhdtool, qemu_img, tmp_path, kind):
    """Another file right after the VHD: the new clusters go elsewhere (more runs), the chain is linked there."""
    img = tmp_path / "vol.img"
    after = os.urandom(200000)
    make_volume(kind, img, 64, [("d.vhd", empty_vhd(vhdtool, tmp_path)), ("after.bin", after)],
                tmp_path, 1 if kind == "fat32" else "4K")
    out, summ = grow(growprobe, img, *spec(WRITES))
    assert int(summ["runs"]) >= 2, out
    check_all(kind, img, tmp_path, summ, vhdtool, qemu_img, WRITES)
    assert read_back(kind, img, "after.bin", tmp_path) == after


def entry_set(raw, name):
    """Byte offset of the exFAT file entry set of name (first match)."""
    at = raw.find(name.encode("utf-16-le"))
    start = at - 2 - 64
    assert at > 0 and raw[start] == 0x85 and raw[start + 32] == 0xC0
    return start


def set_checksum(b):
    s = 0
    for k, x in enumerate(b):
        if k not in (2, 3):
            s = ((0x8000 if s & 1 else 0) + (s >> 1) + x) & 0xFFFF
    return s


def make_nofatchain(img, name):
    """Turn name's (contiguous) FAT chain into a NoFatChain file, as the Linux driver writes them."""
    raw = bytearray(open(img, "rb").read())
    off = entry_set(raw, name)
    sc = raw[off + 1]
    raw[off + 33] |= 0x02
    raw[off + 2:off + 4] = set_checksum(raw[off:off + 32 * (sc + 1)]).to_bytes(2, "little")
    fat = int.from_bytes(raw[80:84], "little") * SECTOR
    first = int.from_bytes(raw[off + 52:off + 56], "little")
    csize = SECTOR << raw[109]
    nclus = (int.from_bytes(raw[off + 56:off + 64], "little") + csize - 1) // csize
    raw[fat + first * 4:fat + (first + nclus) * 4] = bytes(4 * nclus)
    open(img, "wb").write(raw)
    return off


@pytest.mark.parametrize("blocked", [False, True], ids=["stays-contiguous", "converted"])
def test_exfat_nofatchain(growprobe, vhdtool, qemu_img, tmp_path, blocked):
    """A NoFatChain VHD grows contiguously while the clusters after it are free; with another file there its
    chain is written (existing clusters first) and NoFatChain cleared."""
    img = tmp_path / "vol.img"
    files = [("d.vhd", empty_vhd(vhdtool, tmp_path))] + ([("after.bin", os.urandom(100000))] if blocked else [])
    make_volume("exfat", img, 64, files, tmp_path, "4K")
    make_nofatchain(img, "d.vhd")
    assert fsck("exfat", img)[0] == "clean"
    out, summ = grow(growprobe, img, *spec(WRITES))
    raw = open(img, "rb").read()
    flags = raw[entry_set(raw, "d.vhd") + 33]
    assert bool(flags & 0x02) == (not blocked), (flags, out)
    assert (int(summ["runs"]) == 1) == (not blocked), out
    check_all("exfat", img, tmp_path, summ, vhdtool, qemu_img, WRITES)


@pytest.mark.parametrize("kind", ["fat32", "exfat"])
def test_full_volume_refused_before_writing(growprobe, vhdtool, tmp_path, kind):
    img = tmp_path / "vol.img"
    mib = 40 if kind == "fat32" else 8
    # Fill most of the volume (host tools refuse a filler bigger than the free space: then a smaller one).
    filler = (mib << 20) - (3 << 20)
    while True:
        try:
            make_volume(kind, img, mib, [("d.vhd", empty_vhd(vhdtool, tmp_path)), ("fill.bin", bytes(filler))],
                        tmp_path, 1 if kind == "fat32" else "4K")
            break
        except AssertionError:
            filler -= 256 << 10
            assert filler > 0
    # The writes need more blocks than the space left holds.
    before = sha256(img)
    big = [(0, 8, 1)] + [(lba, 128, 5) for lba in range(128, 32768, 128)]
    out, summ = grow(growprobe, img, *spec(big), rc=3)
    assert "no-space" in out and summ["err"] == "volume-full" and summ["broken"] == "0", out
    assert fsck(kind, img)[0] == "clean"
    data = read_back(kind, img, "d.vhd", tmp_path)
    vhd = tmp_path / "back.vhd"
    vhd.write_bytes(data)
    check_image(vhdtool, str(vhd))
    assert sha256(img) != before   # the blocks that fitted were written ...
    ok = [ln for ln in out.splitlines() if ln.startswith("write") and ln.endswith(" ok")]
    assert ok and len(ok) < len(big)


def test_grow_off_changes_nothing(growprobe, vhdtool, tmp_path):
    img = tmp_path / "vol.img"
    make_volume("fat32", img, 40, [("d.vhd", empty_vhd(vhdtool, tmp_path))], tmp_path, 1)
    before = sha256(img)
    out, summ = grow(growprobe, img, "nogrow", "0:8:1", rc=3)
    assert "write 0 8 no-space" in out, out
    assert sha256(img) == before


def cut_points(total):
    if os.environ.get("GROW_CUT_ALL"):
        return list(range(0, total + 1))
    step = max(1, total // 10)
    return sorted(set(list(range(0, total + 1, step)) + [1, 2, 3, total - 1]))


@pytest.mark.parametrize("kind", ["fat32", "exfat"])
def test_power_cut_during_growth(growprobe, vhdtool, qemu_img, tmp_path, kind):
    """Cut the power after the N-th device write of a run that grows the file by 3 blocks (around another file, so
    chains are linked across fragments): fsck clean or lost clusters only, or the chain longer than the size at
    no more cut points than there were growths (the one between a growth's link and its size), the image valid
    (leaks only), every acknowledged write present."""
    img = tmp_path / "vol.img"
    make_volume(kind, img, 40 if kind == "fat32" else 16, [("d.vhd", empty_vhd(vhdtool, tmp_path)),
                                                             ("after.bin", os.urandom(30000))],
                tmp_path, 1 if kind == "fat32" else "4K")
    writes = [(0, 8, 1), (300, 16, 2), (700, 8, 3)]
    pristine = tmp_path / "pristine.img"
    shutil.copy(img, pristine)
    out, summ = grow(growprobe, img, *spec(writes))
    total, grows = int(summ["writes"]), int(summ["grows"])
    verdicts, examples = {}, {}
    for n in cut_points(total):
        trial = tmp_path / "cut.img"
        shutil.copy(pristine, trial)
        out, summ = grow(growprobe, trial, "cut=%d" % n, *spec(writes), rc=(0, 3))
        acked = [w for w, ln in zip(writes, [ln for ln in out.splitlines() if ln.startswith("write ")])
                 if ln.endswith(" ok")]
        verdict, text = fsck(kind, trial)
        assert verdict in ("clean", "lost", "long-chain"), "cut after %d writes: %s\n%s" % (n, text, out)
        verdicts.setdefault(verdict, []).append(n)
        examples.setdefault(verdict, text)
        fsprobe = os.path.join(BUILD, "fsprobe")
        data = run([fsprobe, "fs-cat", trial, 0, "/d.vhd"]).stdout
        vhd = tmp_path / "cut.vhd"
        vhd.write_bytes(data)
        check_image(vhdtool, str(vhd), leaks_ok=True)
        disk = vhd_data(qemu_img, str(vhd), tmp_path, "cut")
        for lba, cnt, seed in acked:
            for s in range(lba, lba + cnt):
                assert disk[s * SECTOR:(s + 1) * SECTOR] == pattern(s, seed), "cut %d: LBA %d lost" % (n, s)
    print("%s: %d device writes; cut after N writes: %s" % (kind, total, {k: len(v) for k, v in verdicts.items()}))
    # The chain is longer than the size only between a growth's link and its size write: one cut point per growth.
    assert len(verdicts.get("long-chain", [])) <= grows, "cuts %s left the chain longer than the size (%d growths)" % (
        verdicts["long-chain"], grows)
    for k, text in examples.items():
        print("  %s, e.g. after %d writes:\n    %s" % (k, verdicts[k][0], text.replace("\n", "\n    ")))
