"""test_uefi_fs.py: under OVMF (QEMU TCG), images as files on exFAT and NTFS partitions of the host disk, which the
firmware has no driver for: vhdboot.efi reads them with its own fs/ parsers over the firmware's raw Block I/O.

The host disk (GPT): partition 1 the ESP (FAT32: vhdboot.efi as \\EFI\\BOOT\\BOOTX64.EFI and vhdboot.cfg),
partition 2 exFAT (mkfs.exfat, filled through exfat-fuse, fragmented first) with a fixed VHD of the efiprobe guest,
partition 3 NTFS (mkntfs, filled through ntfs-3g) with a dynamic one. vhdboot.cfg names one of them (mode=rw);
efiprobe (the image's loader) checks the media, the pattern, the error codes and writes; afterwards the host reads
the image file back through exfat-fuse / ntfs-3g and compares its whole virtual disk with the probe's writes applied
(test_uefi.assert_written), and fsck.exfat -n / ntfsfix -n find the file system clean: the writes went into the
file's clusters and nowhere else.
"""
import os
import shutil

import pytest

import efi_harness as eh
import test_fs_volumes as fv
import test_uefi as tu

pytestmark = pytest.mark.skipif(not (os.path.exists(eh.OVMF_CODE) and shutil.which(eh.QEMU)),
                                reason="needs ovmf and qemu-system-x86_64")

SECTOR = eh.SECTOR
ESP_SECTORS = 64 * 2048
VOL_SECTORS = fv.PART_SECTORS       # 96 MiB, the size fv's exFAT/NTFS builders make


@pytest.fixture(scope="module")
def guest(tmp_path_factory):
    for t in ("mkfs.exfat", "fsck.exfat", "mount.exfat-fuse", "losetup", "mkntfs", "ntfs-3g", "ntfsfix"):
        assert shutil.which(t), "%s missing (tools/install-deps.sh: exfatprogs, exfat-fuse, ntfs-3g)" % t
    assert os.path.exists("/dev/fuse"), "exfat-fuse and ntfs-3g need /dev/fuse"
    for f in (eh.VHDBOOT_EFI, eh.EFIPROBE, eh.VHDTOOL):
        assert os.path.exists(f), "%s missing: run make" % f
    d = tmp_path_factory.mktemp("uefi-fs")
    raw = str(d / "guest.raw")
    p2, n2 = eh.guest_raw(raw)
    return raw, p2, n2


def host_disk(tmp_path, cfg, vols):
    """GPT host disk: the ESP (vhdboot.efi, vhdboot.cfg with cfg) then the volume images vols [(path, type GUID)].
    Returns (disk, [first sector of each partition])."""
    c = str(tmp_path / "vhdboot.cfg")
    with open(c, "w") as f:
        f.write(cfg)
    parts = [(2048, ESP_SECTORS, eh.ESP_TYPE, "hostesp")]
    s = 2048 + ESP_SECTORS
    for _path, typ in vols:
        parts.append((s, VOL_SECTORS, typ, "data"))
        s += VOL_SECTORS
    disk = str(tmp_path / "host.img")
    got = eh.gpt(disk, (s + 2048) * SECTOR, parts)
    eh.fat_into(disk, got[0][0], got[0][1], 32, {"EFI/BOOT/BOOTX64.EFI": eh.VHDBOOT_EFI, "EFI/BOOT/vhdboot.cfg": c},
                label="HOSTESP")
    for (path, _), (start, n) in zip(vols, got[1:]):
        assert n == VOL_SECTORS
        with open(path, "rb") as src, open(disk, "r+b") as dst:
            dst.seek(start * SECTOR)
            shutil.copyfileobj(src, dst)
    return disk, [p[0] for p in got]


def extract(disk, start, out):
    with open(disk, "rb") as src, open(out, "wb") as dst:
        src.seek(start * SECTOR)
        dst.write(src.read(VOL_SECTORS * SECTOR))
    return str(out)


BASIC = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"


def test_exfat_volume(tmp_path, guest):
    """vhd=hd0,2:/images/t.vhd: a fixed VHD on the exFAT partition (fragmented): found through fs/exfat over Block
    I/O, served, efiprobe passes, its writes are in the file afterwards (read back through exfat-fuse), fsck clean."""
    vhd = str(tmp_path / "t.vhd")
    eh.to_vhd(guest[0], vhd, "fixed")
    vol = str(tmp_path / "ex.vol")
    fv.exfat_volume(vol, "EXEFI", {"/images/t.vhd": vhd})
    disk, starts = host_disk(tmp_path, "vhd=hd0,2:/images/t.vhd\n", [(vol, BASIC)])
    log = tu.boot_probe(tmp_path, disk)
    assert 'select: drive 80h = hd0,2:/images/t.vhd (vhd= on the command line)' in log, log[-4000:]
    assert "PROBE write ok" in log and "vhd: mode=rw" in log
    after = extract(disk, starts[1], tmp_path / "ex-after.vol")
    fv.fsck_exfat(after)
    back = str(tmp_path / "t-after.vhd")
    with fv.Mounted(after, str(tmp_path / "mnt")) as mnt:
        shutil.copyfile(os.path.join(mnt, "images", "t.vhd"), back)
    tu.assert_written(tmp_path, guest, back, log)


def test_ntfs_volume(tmp_path, guest):
    """vhd=hd0,2:/images/n.vhd: a dynamic VHD on the NTFS partition: found through fs/ntfs over Block I/O, served,
    efiprobe passes, its writes (into existing blocks) are in the file afterwards (read back through ntfs-3g),
    ntfsfix -n clean."""
    vhd = str(tmp_path / "n.vhd")
    eh.to_vhd(guest[0], vhd, "dynamic")
    vol = str(tmp_path / "nt.vol")
    fv.ntfs_volume(vol, "NTEFI", {"/images/n.vhd": vhd}, fragment=False)
    fv.ntfsfix_clean(vol)
    disk, starts = host_disk(tmp_path, "vhd=hd0,2:/images/n.vhd\n", [(vol, BASIC)])
    log = tu.boot_probe(tmp_path, disk)
    assert 'select: drive 80h = hd0,2:/images/n.vhd (vhd= on the command line)' in log, log[-4000:]
    assert "PROBE write ok" in log
    after = extract(disk, starts[1], tmp_path / "nt-after.vol")
    fv.ntfsfix_clean(after)
    mnt = str(tmp_path / "ntmnt")
    os.makedirs(mnt, exist_ok=True)
    fv.tool(["ntfs-3g", "-o", "ro", after, mnt])
    back = str(tmp_path / "n-after.vhd")
    try:
        shutil.copyfile(os.path.join(mnt, "images", "n.vhd"), back)
    finally:
        fv.tool(["umount", mnt])
    tu.assert_written(tmp_path, guest, back, log)
