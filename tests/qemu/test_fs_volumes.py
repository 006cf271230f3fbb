"""test_fs_volumes.py: end-to-end: VHD files on exFAT and NTFS volumes found by the scan and by vhd=, booted, read exactly and written in place; differencing chains across volumes and disks (QEMU TCG).

The exFAT volume is made by mkfs.exfat and filled through exfat-fuse on a loop device (fragmented first: fill,
delete every other file, copy), then placed as partition 1 of an MBR disk. The probe guest
(tests/qemu/progs/int13test.asm) checksums the whole virtual disk; the write guest (writetest.asm) writes into an
existing block, and the host then reads the file back through exfat-fuse and runs fsck.exfat -n. Chains across
volumes: a child on exFAT whose parent is on a FAT32 partition of the same disk or on a GPT partition of another
disk, named by label, GUID or found by searching every volume.
"""
import os
import re
import shutil
import subprocess

import pytest

import firmware_harness as fh
from firmware_harness import SECTOR
import test_select as ts

MiB = 1 << 20
PART_START, PART_SECTORS = 2048, 96 * 2048


def tool(args, input=None):
    return ts.tool(args, input=input)


class Mounted:
    """An exFAT volume image mounted through a loop device and exfat-fuse (context manager)."""

    def __init__(self, path, mnt):
        self.path, self.mnt, self.loop = str(path), str(mnt), None

    def __enter__(self):
        self.loop = tool(["losetup", "-f", "--show", self.path]).strip()
        os.makedirs(self.mnt, exist_ok=True)
        tool(["mount.exfat-fuse", self.loop, self.mnt])
        return self.mnt

    def __exit__(self, *exc):
        subprocess.run(["sync"], timeout=60)
        tool(["umount", self.mnt])
        tool(["losetup", "-d", self.loop])


def fsck_exfat(path):
    p = subprocess.run(["fsck.exfat", "-n", str(path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "clean" in p.stdout, p.stdout + p.stderr


def exfat_volume(path, label, files, fragment=True):
    """An exFAT volume image of PART_SECTORS (4 KiB clusters) holding files {path on the volume: host file}."""
    with open(path, "wb") as f:
        f.truncate(PART_SECTORS * SECTOR)
    tool(["mkfs.exfat", "-L", label, "-c", "4K", str(path)])
    with Mounted(path, str(path) + ".mnt") as mnt:
        if fragment:
            os.makedirs(os.path.join(mnt, "fill"))
            for i in range(600):
                with open(os.path.join(mnt, "fill", "f%03d" % i), "wb") as fh_:
                    fh_.write(b"x" * 12288)
            for i in range(0, 600, 2):
                os.unlink(os.path.join(mnt, "fill", "f%03d" % i))
        for name, src in files.items():
            os.makedirs(os.path.dirname(os.path.join(mnt, name.lstrip("/"))), exist_ok=True)
            shutil.copyfile(src, os.path.join(mnt, name.lstrip("/")))
    fsck_exfat(path)


def disk_with(volume, out, ptype="07"):
    """An MBR disk with volume as partition 1 (type ptype)."""
    with open(out, "wb") as f:
        f.truncate((PART_START + PART_SECTORS + 2048) * SECTOR)
    tool(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", str(out)],
         input=("label: dos\nstart=%d, size=%d, type=%s\n" % (PART_START, PART_SECTORS, ptype)).encode())
    with open(volume, "rb") as src, open(out, "r+b") as dst:
        dst.seek(PART_START * SECTOR)
        shutil.copyfileobj(src, dst)
    return str(out)


def extract(disk, out):
    with open(disk, "rb") as src, open(out, "wb") as dst:
        src.seek(PART_START * SECTOR)
        dst.write(src.read(PART_SECTORS * SECTOR))
    return str(out)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    for t in ("mkfs.exfat", "fsck.exfat", "mount.exfat-fuse", "losetup", "sfdisk"):
        assert shutil.which(t), "%s missing: tools/install-deps.sh installs exfatprogs, exfat-fuse, fdisk" % t
    assert os.path.exists("/dev/fuse"), "exfat-fuse needs /dev/fuse"
    fh.run_tool(["make", "-s", "-C", fh.ROOT, "build/guest/int13test.bin", "build/guest/writetest.bin",
                 "build/vhdtool", "build/fsprobe", "kernel"])
    return tmp_path_factory.mktemp("fsvol")


@pytest.fixture(scope="module")
def exdisk(work):
    """An MBR disk, partition 1 exFAT "EXQEMU": a dynamic VHD with a non-ASCII name in /images (fragmented)
    and a fixed one in /vhd; returns (disk, {volume path: expected raw})."""
    r1 = ts.raw_image(work / "dyn.raw", 21)
    v1 = ts.vhd_from_raw(r1, work / "dyn.vhd", "dynamic", "512K")
    r2 = ts.raw_image(work / "fixed.raw", 22)
    v2 = ts.vhd_from_raw(r2, work / "fixed.vhd", "fixed")
    files = {"/images/Ünïcødé dynamic image.vhd": v1, "/vhd/fixed.vhd": v2}
    exfat_volume(work / "ex.vol", "EXQEMU", files)
    out = fh.run_tool([os.path.join(fh.BUILD, "fsprobe"), "fs-extents", str(work / "ex.vol"), "0",
                       "/images/Ünïcødé dynamic image.vhd"]).stdout
    out = out.decode() if isinstance(out, bytes) else out
    assert int(re.search(r"runs (\d+)", out).group(1)) > 10, "the image is not fragmented: " + out[:300]
    disk = disk_with(work / "ex.vol", work / "ex.img")
    return disk, {"/images/Ünïcødé dynamic image.vhd": r1, "/vhd/fixed.vhd": r2}


def assert_few_reads(run, disk):
    """Finding and opening the file read under 1% of the disk before the jump (the firmware's "boot: hdN: S sectors
    read" line for this disk): the volume is not read whole."""
    size = os.path.getsize(disk) // SECTOR
    got = [r for r in fh.disk_reads(run.serial).values() if r[2] == size]
    assert got, "no read count logged for the %d-sector disk\n%s" % (size, run.describe())
    assert got[0][0] < size // 100, "%d of %d sectors read before the jump\n%s" % (got[0][0], size, run.describe())


def test_exfat_vhd_named(work, exdisk):
    """vhd="hd0,1:/IMAGES/<non-ASCII name with spaces, in another case>" (quoted in grub.cfg) and
    vhd=/VHD/FIXED.VHD (searched on every volume): each boots, and the guest's checksums of the whole virtual
    disk match the image; the first read under 1% of the disk before the jump."""
    disk, exp = exdisk
    run = ts.run_fw(work, [(0, disk)], 'vhd="hd0,1:/IMAGES/ÜNÏCØDÉ DYNAMIC image.VHD"', timeout=150)
    ts.check_sums(run, exp["/images/Ünïcødé dynamic image.vhd"], "exFAT vhd= non-ASCII")
    assert_few_reads(run, disk)
    run = ts.run_fw(work, [(0, disk)], "vhd=/VHD/FIXED.VHD", timeout=150)
    ts.check_sums(run, exp["/vhd/fixed.vhd"], "exFAT vhd= searched")
    assert "select: drive 80h = hd0,1:/VHD/FIXED.VHD" in run.serial, run.describe()


def test_exfat_scan(work, exdisk):
    """No vhd=: the scan lists both images on the exFAT partition (log line with type and label) and the menu's
    default (the first) boots."""
    disk, exp = exdisk
    run = ts.run_fw(work, [(0, disk)], "timeout=0", timeout=150)
    assert 'select: hd0,1: exFAT "EXQEMU": 2 *.vhd, *.vhdx file(s) in /, /vhd, /images' in run.serial, run.describe()
    m = re.search(r"select: drive 80h = hd0,1:(\S.*?\.vhd)", run.serial)
    assert m, run.describe()
    ts.check_sums(run, exp[m.group(1)], "exFAT scan")


def test_exfat_write_in_place(work):
    """The write guest on a fixed VHD in an exFAT file: its writes land in the file (read back through
    exfat-fuse), a dynamic VHD's write needing a new block gets CCh with grow=no (growth: tests/qemu/test_grow_guest.py),
    and fsck.exfat -n is clean after."""
    import writeguest as wg
    w = work / "write"
    w.mkdir()
    ops = [(wg.WRITE, wg.FN_43, 100, 4, 0x11), (wg.WRITE, wg.FN_43, 6000, 2, 0x22), (wg.READ, 0, 100, 4, 0)]
    vf = wg.make_vhd(str(w / "f.vhd"), "fixed", ts.VSIZE, wg.Params(ops=ops))
    vol = w / "w.vol"
    exfat_volume(vol, "EXWRITE", {"/vhd/w.vhd": vf}, fragment=True)
    disk = disk_with(vol, w / "w.img")
    run = ts.run_fw(work, [(0, disk)], "vhd=hd0,1:/vhd/w.vhd", timeout=150)
    writes = [r for k, r in wg.records(run.serial) if k == "W"]
    assert len(writes) == 2 and all(x["cf"] == 0 and x["ah"] == 0 for x in writes), run.describe()
    part = extract(disk, w / "after.vol")
    fsck_exfat(part)
    with Mounted(part, str(part) + ".mnt") as mnt:
        data = open(os.path.join(mnt, "vhd", "w.vhd"), "rb").read()
    assert data[100 * SECTOR:104 * SECTOR] == wg.pattern(100, 0x11, 4)
    assert data[6000 * SECTOR:6002 * SECTOR] == wg.pattern(6000, 0x22, 2)
    # A dynamic image whose second write needs a new block: refused with CCh, the volume untouched outside the file.
    vd = wg.make_vhd(str(w / "d.vhd"), "dynamic", ts.VSIZE, wg.Params(ops=ops), block="512K")
    vol2 = w / "d.vol"
    exfat_volume(vol2, "EXGROW", {"/grow.vhd": vd}, fragment=False)
    disk2 = disk_with(vol2, w / "d.img")
    run = ts.run_fw(work, [(0, disk2)], "vhd=hd0,1:/grow.vhd grow=no", timeout=150)
    writes = [r for k, r in wg.records(run.serial) if k == "W"]
    assert len(writes) == 2 and writes[0]["cf"] == 0 and writes[1]["cf"] == 1 and writes[1]["ah"] == 0xCC, \
        run.describe()
    fsck_exfat(extract(disk2, w / "d-after.vol"))


# ------------------------------------------------------------------ chains across volumes

FAT_SECTORS = 98304             # 48 MiB: FAT32 with 1-sector clusters


def fat32_volume(path, label, files):
    """A FAT32 volume image of FAT_SECTORS holding files {path: host file} (mtools)."""
    with open(path, "wb") as f:
        f.truncate(FAT_SECTORS * SECTOR)
    tool(["mkfs.fat", "-F", "32", "-s", "1", "-n", label, str(path)])
    for name, src in files.items():
        parts = name.strip("/").split("/")
        for i in range(1, len(parts)):
            subprocess.run(["mmd", "-D", "s", "-i", str(path), "::/" + "/".join(parts[:i])], env=ts.MT_ENV,
                           capture_output=True, timeout=60)
        tool(["mcopy", "-i", str(path), str(src), "::" + name])


def two_volume_disk(out, first, second):
    """An MBR disk at out: the volume image first (exFAT/NTFS, type 07) at PART_START, the FAT32 volume image
    second (type 0c, FAT_SECTORS) right after it; returns out."""
    p2 = PART_START + PART_SECTORS
    with open(out, "wb") as f:
        f.truncate((p2 + FAT_SECTORS + 2048) * SECTOR)
    tool(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", out],
         input=("label: dos\nstart=%d, size=%d, type=07\nstart=%d, size=%d, type=0c\n"
                % (PART_START, PART_SECTORS, p2, FAT_SECTORS)).encode())
    for vol, start in ((first, PART_START), (second, p2)):
        with open(vol, "rb") as src, open(out, "r+b") as dst:
            dst.seek(start * SECTOR)
            shutil.copyfileobj(src, dst)
    return out


def chain(work, seed):
    """base.vhd (dynamic) and child.vhd (differencing, its own writes) made side by side; returns
    (base, child, expected raw of the child)."""
    d = work / ("chain%d" % seed)
    d.mkdir()
    r0 = ts.raw_image(d / "base.raw", seed)
    base = d / "base.vhd"
    ts.vhd_from_raw(r0, base, "dynamic", "512K")
    child = d / "child.vhd"
    ts.vhdtool("create", "-p", base, child)
    data = open(r0, "rb").read()
    rnd = __import__("random").Random(seed)
    for lba, n in ((100, 8), (5000, 16)):
        b = rnd.randbytes(n * SECTOR)
        ts.vhdtool("write", child, str(lba), input=b)
        data = ts.patch(data, lba, b)
    exp = d / "child.raw"
    exp.write_bytes(data)
    return base, child, str(exp)


def test_parent_on_other_partition(work):
    """vhd=label=EXCHILD:/vhd/child.vhd: the child is on an exFAT partition, its parent on the FAT32 partition
    of the same disk; no parents= given, so every volume is searched after the child's own. The chain boots and
    reads exactly; with parents=hd0,1 (the child's volume only) the parent is not found and the error says where
    vhdboot looked."""
    base, child, exp = chain(work, 31)
    w = work / "xvol"
    w.mkdir()
    exfat_volume(w / "c.vol", "EXCHILD", {"/vhd/child.vhd": child}, fragment=False)
    fat32_volume(w / "b.vol", "BASES", {"/vhd/base.vhd": base})
    disk = two_volume_disk(str(w / "disk.img"), w / "c.vol", w / "b.vol")
    run = ts.run_fw(work, [(0, disk)], "vhd=label=excHILD:/vhd/child.vhd", timeout=150)
    ts.check_sums(run, exp, "parent on another partition")
    assert "vhd: hd0,1:/vhd/child.vhd: parent /vhd/base.vhd found on hd0,2 (not on its child's volume)" \
        in run.serial, run.describe()
    assert re.search(r"vhd: 80h: parent /vhd/base.vhd on hd0,2 \(found through its child's W2ru locator\)",
                     run.serial), run.describe()
    run = ts.run_fw(work, [(0, disk)], "vhd=hd0,1:/vhd/child.vhd parents=hd0,1", timeout=120, fail=True)
    ts.check_refused(run, ["/vhd/base.vhd"])


def test_parent_on_other_disk_by_guid(work):
    """The child on an exFAT partition of disk 0, its parent on GPT partition 1 of disk 1 named by its unique
    partition GUID (parents=guid=...); a decoy base.vhd with another unique id on disk 0's second volume is never
    looked at. The child itself is named by guid= of a GPT disk too in a second boot."""
    base, child, exp = chain(work, 32)
    _, decoy_child, _ = chain(work, 33)
    decoy = os.path.join(os.path.dirname(decoy_child), "base.vhd")
    w = work / "xdisk"
    w.mkdir()
    exfat_volume(w / "c.vol", "EXCHILD2", {"/vhd/child.vhd": child}, fragment=False)
    fat32_volume(w / "d.vol", "DECOY", {"/vhd/base.vhd": decoy})
    disk0 = two_volume_disk(str(w / "disk0.img"), w / "c.vol", w / "d.vol")
    fat32_volume(w / "b.vol", "BASES2", {"/vhd/base.vhd": base})
    guid = "3B2C6E0A-1D4F-4E8B-9A6C-5F1E2D3C4B5A"
    disk1 = str(w / "disk1.img")
    with open(disk1, "wb") as f:
        f.truncate((2048 + FAT_SECTORS + 2048) * SECTOR)
    tool(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", disk1],
         input=("label: gpt\nstart=2048, size=%d, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, uuid=%s\n"
                % (FAT_SECTORS, guid)).encode())
    with open(w / "b.vol", "rb") as src, open(disk1, "r+b") as dst:
        dst.seek(2048 * SECTOR)
        shutil.copyfileobj(src, dst)
    run = ts.run_fw(work, [(0, disk0), (1, disk1)], "vhd=hd0,1:/vhd/child.vhd parents=guid=%s" % guid.lower(),
                    timeout=150)
    ts.check_sums(run, exp, "parent on another disk by GUID")
    assert "parent /vhd/base.vhd found on hd1,1 (not on its child's volume)" in run.serial, run.describe()
    # Without parents=, the decoy (same path, other unique id) on hd0,2 is met first and refused by name.
    run = ts.run_fw(work, [(0, disk0), (1, disk1)], "vhd=hd0,1:/vhd/child.vhd", timeout=120, fail=True)
    ts.check_refused(run, ["unique id"])


# ------------------------------------------------------------------ NTFS

def ntfs_volume(path, label, files, fragment=True):
    """An NTFS volume image of PART_SECTORS (mkntfs -Q, 4 KiB clusters) holding files, copied through ntfs-3g."""
    with open(path, "wb") as f:
        f.truncate(PART_SECTORS * SECTOR)
    tool(["mkntfs", "-F", "-Q", "-q", "-c", "4096", "-L", label, "-p", str(PART_START), "-H", "16", "-S", "63",
          str(path)])
    mnt = str(path) + ".mnt"
    os.makedirs(mnt, exist_ok=True)
    tool(["ntfs-3g", "-o", "big_writes", str(path), mnt])
    try:
        if fragment:
            os.makedirs(os.path.join(mnt, "fill"))
            for i in range(400):
                with open(os.path.join(mnt, "fill", "f%03d" % i), "wb") as fh_:
                    fh_.write(b"x" * 65536)
            for i in range(0, 400, 2):
                os.unlink(os.path.join(mnt, "fill", "f%03d" % i))
        for name, src in files.items():
            os.makedirs(os.path.dirname(os.path.join(mnt, name.lstrip("/"))), exist_ok=True)
            shutil.copyfile(src, os.path.join(mnt, name.lstrip("/")))
    finally:
        subprocess.run(["sync"], timeout=60)
        tool(["umount", mnt])


def ntfsfix_clean(path):
    p = subprocess.run(["ntfsfix", "-n", str(path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "processed successfully" in p.stdout, p.stdout + p.stderr


def test_ntfs_scan_named_and_write(work):
    """An NTFS partition (fragmented first) with a dynamic VHD in /images and a fixed one (the write guest) in
    /vhd: the scan lists both (type and label in the log), vhd= with a quoted non-ASCII name boots the first and
    reads it exactly (under 1% of the disk read before the jump), and the write guest's writes land in the file (read back through ntfs-3g, ntfsfix -n
    clean). Compressed, sparse and encrypted files are refused in tests/host/test_ntfs_images.py."""
    import writeguest as wg
    w = work / "ntfs"
    w.mkdir()
    r1 = ts.raw_image(w / "dyn.raw", 41)
    v1 = ts.vhd_from_raw(r1, w / "dyn.vhd", "dynamic", "512K")
    ops = [(wg.WRITE, wg.FN_43, 100, 4, 0x11), (wg.WRITE, wg.FN_43, 6000, 2, 0x22), (wg.READ, 0, 100, 4, 0)]
    vf = wg.make_vhd(str(w / "f.vhd"), "fixed", ts.VSIZE, wg.Params(ops=ops))
    vol = w / "nt.vol"
    ntfs_volume(vol, "NTQEMU", {"/images/Données système.vhd": v1, "/vhd/w.vhd": vf})
    ntfsfix_clean(vol)
    disk = disk_with(vol, w / "nt.img")
    run = ts.run_fw(work, [(0, disk)], 'vhd="hd0,1:/IMAGES/DONNÉES SYSTÈME.VHD"', timeout=150)
    ts.check_sums(run, r1, "NTFS vhd= non-ASCII")
    assert_few_reads(run, disk)
    run = ts.run_fw(work, [(0, disk)], "timeout=0", timeout=150)
    assert 'select: hd0,1: NTFS "NTQEMU": 2 *.vhd, *.vhdx file(s) in /, /vhd, /images' in run.serial, run.describe()
    run = ts.run_fw(work, [(0, disk)], "vhd=/vhd/w.vhd", timeout=150)
    writes = [r for k, r in wg.records(run.serial) if k == "W"]
    assert len(writes) == 2 and all(x["cf"] == 0 and x["ah"] == 0 for x in writes), run.describe()
    part = extract(disk, w / "after.vol")
    ntfsfix_clean(part)
    mnt = str(part) + ".mnt"
    os.makedirs(mnt, exist_ok=True)
    tool(["ntfs-3g", "-o", "ro", part, mnt])
    try:
        data = open(os.path.join(mnt, "vhd", "w.vhd"), "rb").read()
    finally:
        tool(["umount", mnt])
    assert data[100 * SECTOR:104 * SECTOR] == wg.pattern(100, 0x11, 4)
    assert data[6000 * SECTOR:6002 * SECTOR] == wg.pattern(6000, 0x22, 2)
