"""test_grow_guest.py: end to end (QEMU TCG): the write guest (progs/writetest.asm) writes into a dynamic VHD FILE on a FAT32
and on an exFAT partition so that the file grows by several blocks (fs/grow.c through kernel/imgopen.c); afterwards
the host's tools judge it: fsck.fat -n / fsck.exfat -n clean, the file read back through mtools / exfat-fuse, its
size and content, `vhdtool check` clean and qemu-img reading the same data. A full volume answers CCh with the log
line and its remedy; power cuts while a file grows are tests/qemu/powercut.py --host fat32|exfat (a short run here).
"""
import os
import re
import shutil
import subprocess

import pytest

import firmware_harness as fh
import writeguest as wg
import test_select as ts
import test_fs_volumes as fv
import powercut
from growvol import fsck

S = wg.SECTOR
W, R = wg.WRITE, wg.READ
SPB = 1024                          # 512 KiB blocks
VSIZE = 16 << 20
OPS = [(W, wg.FN_43, 3 * SPB + 5, 20, 0x11),         # new block 3
       (W, wg.FN_43V, 10 * SPB + 100, 30, 0x22),     # new block 10, 43h AL=2 (verify)
       (W, wg.FN_03, 15 * SPB + 30, 6, 0x33),        # new block 15 through CHS
       (W, wg.FN_43, 20 * SPB - 60, 127, 0x44),      # 127 sectors over blocks 19 and 20 (both new)
       (W, wg.FN_43, 3 * SPB + 40, 3, 0x55)]         # in place
OPS += [(R, 0x42, lba, n, 0) for (_, _, lba, n, _) in OPS] + [(R, 0x42, 0, 64, 0)]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    for t in ("mkfs.fat", "fsck.fat", "mcopy", "mkfs.exfat", "fsck.exfat", "mount.exfat-fuse", "losetup", "sfdisk"):
        assert shutil.which(t), "%s missing: tools/install-deps.sh installs dosfstools, mtools, exfatprogs, exfat-fuse" % t
    fh.run_tool(["make", "-s", "-C", fh.ROOT, wg.GUEST_BIN, "build/vhdtool", "kernel"])
    return tmp_path_factory.mktemp("grow")


def fat32_disk(out, files):
    """An MBR disk whose partition 1 (fv.PART_START, fv.PART_SECTORS) is FAT32 with 512-byte clusters holding files."""
    with open(out, "wb") as f:
        f.truncate((fv.PART_START + fv.PART_SECTORS + 2048) * S)
    ts.tool(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", str(out)],
            input=("label: dos\nstart=%d, size=%d, type=c\n" % (fv.PART_START, fv.PART_SECTORS)).encode())
    ts.tool(["mkfs.fat", "-F", "32", "-s", "1", "-n", "GROWFAT", "--offset", str(fv.PART_START), str(out),
             str(fv.PART_SECTORS // 2)])
    for name, src in files.items():
        ts.tool(["mcopy", "-i", ts.img(str(out), fv.PART_START), src, "::" + name])
    return str(out)


def make_disk(kind, w, files):
    if kind == "fat32":
        return fat32_disk(w / "disk.img", files)
    fv.exfat_volume(w / "ex.vol", "GROWEX", files, fragment=True)
    return fv.disk_with(w / "ex.vol", w / "disk.img")


def read_file(kind, part, name, w):
    if kind == "fat32":
        out = str(w / "back.vhd")
        ts.tool(["mcopy", "-n", "-o", "-i", part, "::" + name, out])
        return open(out, "rb").read()
    with fv.Mounted(part, str(part) + ".mnt") as mnt:
        return open(os.path.join(mnt, name.lstrip("/")), "rb").read()


@pytest.mark.parametrize("kind", ["fat32", "exfat"])
def test_guest_grows_file(work, kind):
    w = work / kind
    w.mkdir()
    vhd = wg.make_vhd(str(w / "d.vhd"), "dynamic", VSIZE, wg.Params(ops=OPS), block="512K")
    model = bytearray(wg.vhd_read(vhd, 0, VSIZE // S))
    before = os.path.getsize(vhd)
    blocks_before = fh.vhd_info(vhd)["allocated"]
    disk = make_disk(kind, w, {"/d.vhd": vhd})
    run = ts.run_fw(work, [(0, disk)], "vhd=hd0,1:/d.vhd", timeout=150)
    ctx = run.describe()
    assert run.rc == fh.EXIT_DONE, ctx
    assert re.search(r"vhd: /d.vhd: \d+ extent\(s\) on disk, %d sectors; the file grows when the image needs room"
                     % (before // S), run.serial), ctx
    assert re.search(r"vhd: hd0,1:/d.vhd: the file grew from %d to \d+ sectors" % (before // S), run.serial), ctx
    res = wg.records(run.serial)
    assert len(res) == len(OPS), ctx
    assert all(kv["ah"] == 0 and kv["cf"] == 0 for k, kv in res if k == "W"), ctx
    for (kind_, fn, lba, n, tag), (k, kv) in zip(OPS, res):
        if kind_ == W:
            model[lba * S:(lba + n) * S] = wg.pattern(lba, tag, n)
    for (kind_, fn, lba, n, tag), (k, kv) in zip(OPS, res):
        if kind_ == R:
            assert kv["fnv"] == wg.fnv(bytes(model[lba * S:(lba + n) * S])), "read-back of LBA %d+%d\n%s" % (lba, n, ctx)
    # The host's view.
    part = fv.extract(disk, w / "part.vol")
    verdict, text = fsck(kind, part)
    assert verdict == "clean", text
    data = read_file(kind, part, "/d.vhd", w)
    img = w / "grown.vhd"
    img.write_bytes(data)
    info = fh.vhd_info(str(img))
    assert info["allocated"] == blocks_before + 5, info
    assert len(data) == before + 5 * (SPB + 1) * S, (len(data), before)   # 5 blocks and their bitmaps
    rc, out = wg.check(str(img))
    assert rc == 0, out
    assert wg.vhd_read(str(img), 0, VSIZE // S) == bytes(model)
    assert wg.qemu_img_read(str(img), 0, VSIZE // S, str(w)) == bytes(model)


def test_full_volume_answers_cch(work):
    """A FAT32 volume with too little room left: the write needing a new block gets CCh and the log line names the
    full volume and the remedy; the volume stays fsck-clean and the image valid."""
    w = work / "full"
    w.mkdir()
    ops = [(W, wg.FN_43, 3 * SPB + 5, 20, 0x11), (W, wg.FN_43, 4, 2, 0x12)]
    vhd = wg.make_vhd(str(w / "d.vhd"), "dynamic", VSIZE, wg.Params(ops=ops), block="512K")
    filler = w / "fill.bin"
    disk = fat32_disk(w / "disk.img", {"/d.vhd": vhd})
    # Fill the rest of the volume but a few KiB (mtools refuses a file larger than the free space).
    listing = ts.tool(["mdir", "-i", ts.img(disk, fv.PART_START), "::/"])
    free = int(re.search(r"([\d ]+) bytes free", listing).group(1).replace(" ", ""))
    with open(filler, "wb") as f:
        f.truncate(free - 64 * 1024)
    ts.tool(["mcopy", "-i", ts.img(disk, fv.PART_START), str(filler), "::/fill.bin"])
    run = ts.run_fw(work, [(0, disk)], "vhd=hd0,1:/d.vhd", timeout=150)
    ctx = run.describe()
    writes = [kv for k, kv in wg.records(run.serial) if k == "W"]
    assert [(kv["ah"], kv["cf"]) for kv in writes] == [(0xCC, 1), (0, 0)], ctx
    assert re.search(r"write refused \(INT 13h CCh\): the image file would have to grow .*: the volume has too "
                     r"few free clusters left .*; remedy: free space on that volume", run.serial), ctx
    part = fv.extract(disk, w / "part.vol")
    verdict, text = fsck("fat32", part)
    assert verdict == "clean", text
    img = w / "back.vhd"
    img.write_bytes(read_file("fat32", part, "/d.vhd", w))
    assert wg.check(str(img))[0] == 0
    assert wg.vhd_read(str(img), 4, 2) == wg.pattern(4, 0x12, 2)


@pytest.mark.parametrize("host", ["fat32", "exfat"])
def test_power_cut_while_growing(tmp_path, host):
    """One power-cut trial per host file system (tests/qemu/powercut.py --host; 30 per kind in docs/grow.md)."""
    res = powercut.run_trials(1, str(tmp_path), seed=13, log=print, host=host)
    assert all(t.ok for t in res), "\n".join(t.report() for t in res)
