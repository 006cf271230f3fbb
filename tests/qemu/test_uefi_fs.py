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
import re
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


def gpt_4k(path, start, count, typ):
    """A GPT in 4096-byte logical blocks on path (Debian 12's sfdisk has no --sector-size): protective MBR, primary
    and backup headers and 128-entry arrays, one partition of count blocks at block start."""
    import struct
    import uuid
    import zlib
    bs = 4096
    blocks = os.path.getsize(path) // bs
    ent = bytearray(128 * 128)
    ent[0:16] = uuid.UUID(typ).bytes_le
    ent[16:32] = uuid.uuid4().bytes_le
    struct.pack_into("<QQQ", ent, 32, start, start + count - 1, 0)
    ent[56:56 + 8] = "data".encode("utf-16-le")
    ecrc = zlib.crc32(bytes(ent))
    disk_guid = uuid.uuid4().bytes_le

    def header(my, alt, entries):
        h = bytearray(92)
        struct.pack_into("<8sIII4xQQQQ16sQIII", h, 0, b"EFI PART", 0x10000, 92, 0, my, alt, 6, blocks - 6, disk_guid,
                         entries, 128, 128, ecrc)
        struct.pack_into("<I", h, 16, zlib.crc32(bytes(h)))
        return bytes(h)
    mbr = bytearray(512)
    struct.pack_into("<B3sB3sII", mbr, 446, 0, b"\0\x02\0", 0xEE, b"\xff\xff\xff", 1, min(blocks - 1, 0xFFFFFFFF))
    mbr[510:512] = b"\x55\xaa"
    with open(path, "r+b") as f:
        for off, data in ((0, mbr), (bs, header(1, blocks - 1, 2)), (2 * bs, ent),
                          ((blocks - 5) * bs, ent), ((blocks - 1) * bs, header(blocks - 1, 1, blocks - 5))):
            f.seek(off)
            f.write(data)


def test_4kn_host_disk_refused(tmp_path, guest):
    """A 4Kn host disk (virtio-blk, logical_block_size=4096: GPT and FAT16 in 4 KiB sectors) holding /images/t.vhd:
    vhdboot.efi (started from an ordinary 512-byte ESP) skips the disk with a message that says why and what to do,
    finds no image, stops with an error naming vhd=, and starts nothing; the 4Kn disk is unchanged."""
    vhd = str(tmp_path / "t.vhd")
    eh.to_vhd(guest[0], vhd, "fixed")
    big = str(tmp_path / "4kn.img")
    with open(big, "wb") as f:
        f.truncate(128 * eh.MIB)
    gpt_4k(big, 256, (128 * eh.MIB - 2 * eh.MIB) // 4096, BASIC)
    vol = str(tmp_path / "4kn.vol")
    if os.path.exists(vol):
        os.unlink(vol)
    eh.run(["mkfs.fat", "-F", "16", "-S", "4096", "-n", "FOURKN", "-C", vol, str((128 * eh.MIB - 2 * eh.MIB) // 1024)])
    eh.run(["mmd", "-i", vol, "::/images"])
    eh.run(["mcopy", "-i", vol, vhd, "::/images/t.vhd"])
    with open(vol, "rb") as src, open(big, "r+b") as dst:
        dst.seek(256 * 4096)
        dst.write(src.read())
    before = tu.sha(big)
    c = str(tmp_path / "vhdboot.cfg")
    with open(c, "w") as f:
        f.write("vhd=/images/t.vhd\n")
    host = str(tmp_path / "host.img")
    eh.host_disk(host, {"EFI/BOOT/vhdboot.cfg": c}, size=64 * eh.MIB)
    dev4k = "virtio-blk-pci,drive=%(id)s,logical_block_size=4096,physical_block_size=4096"
    rc, log, secs = eh.boot_until(str(tmp_path), [(host, eh.IDE), (big, dev4k)], ["vhdboot: remedy:"],
                                  timeout=tu.TIMEOUT)
    ctx = "exit %s after %.0f s\n%s" % (rc, secs, log[-5000:])
    assert re.search(r"disk: pci with 4096-byte logical blocks: skipped: vhdboot's partition, file system and image "
                     r"code count 512-byte sectors \(4Kn host disks are not supported", log), ctx
    assert "vhdboot: ERROR:" in log and "/images/t.vhd" in log[log.find("vhdboot: ERROR:"):], ctx
    assert "PROBE" not in log and "StartImage" not in log, "something was started\n" + ctx
    assert tu.sha(big) == before
