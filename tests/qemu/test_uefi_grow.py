"""test_uefi_grow.py: under OVMF (QEMU TCG), vhdboot.efi grows a dynamic VHD FILE when the guest writes into blocks
the image does not have yet (fs/grow.c through kernel/imgopen.c, as on the BIOS side), and the firmware's own FAT
driver, which has the host ESP mounted, is made to forget what it cached (efi/efsync.c).

The guest disk (80 MiB, GPT): partition 1 the ESP (FAT16) with efiprobe as \\EFI\\BOOT\\BOOTX64.EFI and a
\\EFI\\BOOT\\GROW.TXT of commands (tests/qemu/progs/efiprobe.c), partition 2 the pattern (30 MiB), then zeros up to
the backup GPT: as a dynamic VHD (2 MiB blocks) blocks 24-38 are not allocated. efiprobe does its usual checks, then
GROW.TXT's writes: 5 WriteBlocks into new blocks making 7 of them (two across a block boundary) and one in place,
each read back. Afterwards, on the host: fsck -n clean, the file exactly 7 blocks (and their bitmaps) longer, the BAT
7 entries more, `vhdtool check` clean, and `qemu-img compare` of the image against a raw oracle (the guest disk with
every logged write applied) identical. The host volume is the FAT32 ESP vhdboot.efi was loaded from (mounted by
OVMF's FAT driver: the guest reads the file's size through it before and after, and writes a file into the same
folder after the growth), or a fragmented exFAT partition beside the ESP (our fs/exfat over raw Block I/O).
Refused: grow=no (FAT32) and a file on NTFS answer EFI_DEVICE_ERROR with the log line naming why and the remedy;
the image file's bytes are unchanged.
"""
import hashlib
import os
import re
import shutil
import subprocess

import pytest

import efi_harness as eh
import firmware_harness as fh
import test_fs_volumes as fv
import test_uefi as tu
import test_uefi_fs as tf
from growvol import fsck

pytestmark = pytest.mark.skipif(not (os.path.exists(eh.OVMF_CODE) and shutil.which(eh.QEMU)),
                                reason="needs ovmf and qemu-system-x86_64")

S = eh.SECTOR
SPB = 4096                          # sectors per VHD block (vhdtool's default 2 MiB)
GUEST_SIZE = 80 * eh.MIB
P2_START, P2_SECTORS = 2048 + 16 * eh.MIB // S, 30 * eh.MIB // S
B = lambda n: n * SPB               # first LBA of block n
# 5 writes into new blocks (24; 25+26 across their boundary; 28; 29+30 across theirs; 33) = 7 blocks, one in place.
GROW_WRITES = [(B(24) + 5, 20), (B(26) - 60, 127), (B(28) + 100, 30), (B(30) - 8, 16), (B(33) + 1000, 8),
               (B(24) + 46, 3)]
NEW_BLOCKS = 7
GROWTH_BYTES = NEW_BLOCKS * (SPB + 1) * S   # each block: its sector bitmap (one sector) and its data
NOTE_BYTES = 300000


def guest_vhd(tmp_path, commands):
    """The dynamic VHD of the guest disk whose ESP holds GROW.TXT = commands; (vhd path, raw path)."""
    raw = str(tmp_path / "guest.raw")
    grow = str(tmp_path / "GROW.TXT")
    with open(grow, "w") as f:
        f.write(commands)
    parts = eh.gpt(raw, GUEST_SIZE, [(2048, 16 * eh.MIB // S, eh.ESP_TYPE, "esp"),
                                     (P2_START, P2_SECTORS, eh.DATA_TYPE, "pattern")])
    assert parts[1] == (P2_START, P2_SECTORS)
    eh.fat_into(raw, parts[0][0], parts[0][1], 16, {"EFI/BOOT/BOOTX64.EFI": eh.EFIPROBE, "EFI/BOOT/GROW.TXT": grow},
                label="GUESTESP")
    with open(raw, "r+b") as f:
        f.seek(P2_START * S)
        for s0 in range(P2_START, P2_START + P2_SECTORS, 2048):
            f.write(b"".join(eh.pattern_sector(s) for s in range(s0, min(s0 + 2048, P2_START + P2_SECTORS))))
    vhd = str(tmp_path / "g.vhd")
    eh.to_vhd(raw, vhd, "dynamic")
    info = fh.vhd_info(vhd)
    assert info["block_size"] == SPB * S
    bat = bat_of(vhd)
    assert all(bat[n] == 0xFFFFFFFF for n in range(24, 39)), "blocks 24-38 must start unallocated"
    return vhd, raw


def bat_of(vhd):
    import struct
    info = fh.vhd_info(vhd)
    with open(vhd, "rb") as f:
        f.seek(info["data_offset"] + 16)
        table = struct.unpack(">Q", f.read(8))[0]
        f.seek(table)
        return struct.unpack(">%dI" % info["bat_entries"], f.read(4 * info["bat_entries"]))


def writes_text(writes):
    return "".join("w %d %d\n" % w for w in writes)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def oracle(tmp_path, raw, log):
    """The guest raw with every write efiprobe logged applied (its first write, the random ones, GROW.TXT's)."""
    with open(raw, "rb") as f:
        data = bytearray(f.read())
    for s in tu.probe_writes(log):
        data[s * S:(s + 1) * S] = eh.written_sector(s)
    out = str(tmp_path / "oracle.raw")
    with open(out, "wb") as f:
        f.write(data)
    return out


def assert_grown(tmp_path, vhd_before, vhd_after, raw, log):
    """The file grew by exactly NEW_BLOCKS blocks, its BAT has them, vhdtool check is clean, and qemu-img finds its
    virtual disk identical to the oracle."""
    before, after = fh.vhd_info(vhd_before), fh.vhd_info(vhd_after)
    assert after["file_size"] == before["file_size"] + GROWTH_BYTES, (before, after)
    assert after["allocated"] == before["allocated"] + NEW_BLOCKS, (before, after)
    bat = bat_of(vhd_after)
    assert [n for n in range(24, 39) if bat[n] != 0xFFFFFFFF] == [24, 25, 26, 28, 29, 30, 33]
    p = subprocess.run([eh.VHDTOOL, "check", vhd_after], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    orc = oracle(tmp_path, raw, log)
    p = subprocess.run(["qemu-img", "compare", "--image-opts",
                        "driver=vpc,force_size_calc=current_size,file.driver=file,file.filename=%s" % vhd_after,
                        "driver=raw,file.driver=file,file.filename=%s" % orc],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Images are identical" in p.stdout


def boot_probe(tmp_path, disk):
    log = tu.boot_probe(tmp_path, disk)
    assert "PROBE grow commands from GROW.TXT" in log and "PROBE grow ok" in log, log[-6000:]
    return log


def fat32_host(tmp_path, vhd, cfg):
    """The FAT32 host ESP (vhdboot.efi, vhdboot.cfg = cfg, /images/g.vhd); (disk, ESP start)."""
    return tu.make_host(tmp_path, None, {"g.vhd": vhd}, cfg=cfg)


def fetch(tmp_path, disk, esp, name, out):
    dst = str(tmp_path / out)
    eh.fetch_file(disk, esp, name, dst)
    return dst


def esp_fsck(tmp_path, disk, esp):
    """fsck.fat -n of the host ESP: must be clean."""
    vol = str(tmp_path / "esp.vol")
    with open(disk, "rb") as src, open(vol, "wb") as dst:
        src.seek(esp * S)
        dst.write(src.read())
    verdict, text = fsck("fat32", vol)
    assert verdict == "clean", text
    return text


def grown_line(log, name):
    return re.search(r"vhd: %s: the file grew from (\d+) to (\d+) sectors" % re.escape(name), log)


def test_fat32_host_esp_grows(tmp_path):
    """The image file on the FAT32 ESP vhdboot.efi came from: 5 WriteBlocks make 7 new blocks; the file grows, the
    log says so and that the host disk's drivers were reconnected; the firmware's FAT driver then reports the new
    size; fsck clean, exact size, check clean, qemu-img identical to the oracle."""
    vhd, raw = guest_vhd(tmp_path, "size /images/g.vhd\n" + writes_text(GROW_WRITES) + "size /images/g.vhd\n")
    disk, esp = fat32_host(tmp_path, vhd, "vhd=/images/g.vhd\n")
    log = boot_probe(tmp_path, disk)
    size0 = os.path.getsize(vhd)
    assert grown_line(log, "hd0,1:/images/g.vhd"), log[-6000:]
    assert "efsync: vhd0: the image file grew: the host disk's Block I/O reinstalled" in log, log[-6000:]
    sizes = [int(v, 16) for v in re.findall(r"PROBE host size /images/g.vhd=([0-9a-f]+)", log)]
    assert sizes == [size0, size0 + GROWTH_BYTES], sizes     # the firmware's FAT driver sees the growth
    esp_fsck(tmp_path, disk, esp)
    assert_grown(tmp_path, vhd, fetch(tmp_path, disk, esp, "images/g.vhd", "after.vhd"), raw, log)


def test_host_esp_written_after_growth(tmp_path):
    """After the growth the guest writes a 300,000-byte file into the same folder of the host ESP through the
    firmware's FAT driver: it takes free clusters only (fsck clean: nothing cross-linked, the image's size and
    chain as grown) and reads back right; the image is still exactly as grown."""
    cmds = "size /images/g.vhd\n" + writes_text(GROW_WRITES) + "note /images/NOTE.TXT %d\n" % NOTE_BYTES
    vhd, raw = guest_vhd(tmp_path, cmds)
    disk, esp = fat32_host(tmp_path, vhd, "vhd=/images/g.vhd\n")
    log = boot_probe(tmp_path, disk)
    assert "PROBE host note written" in log
    text = esp_fsck(tmp_path, disk, esp)
    note = open(fetch(tmp_path, disk, esp, "images/NOTE.TXT", "note.txt"), "rb").read()
    assert note == bytes((i * 7 + 3) & 0xFF for i in range(NOTE_BYTES)), text
    assert_grown(tmp_path, vhd, fetch(tmp_path, disk, esp, "images/g.vhd", "after.vhd"), raw, log)


def test_exfat_host_grows(tmp_path):
    """The image file on a fragmented exFAT partition of the host disk (fs/exfat over raw Block I/O; OVMF has no
    exFAT driver): the same writes grow it by 7 blocks; fsck.exfat clean, the file read back through exfat-fuse
    exactly that much longer, check clean, qemu-img identical to the oracle; the ESP beside it fsck clean."""
    vhd, raw = guest_vhd(tmp_path, writes_text(GROW_WRITES))
    vol = str(tmp_path / "ex.vol")
    fv.exfat_volume(vol, "GROWEX", {"/images/g.vhd": vhd}, fragment=True)
    disk, starts = tf.host_disk(tmp_path, "vhd=hd0,2:/images/g.vhd\n", [(vol, tf.BASIC)])
    log = boot_probe(tmp_path, disk)
    assert grown_line(log, "hd0,2:/images/g.vhd"), log[-6000:]
    after = tf.extract(disk, starts[1], tmp_path / "ex-after.vol")
    verdict, text = fsck("exfat", after)
    assert verdict == "clean", text
    back = str(tmp_path / "after.vhd")
    with fv.Mounted(after, str(tmp_path / "mnt")) as mnt:
        shutil.copyfile(os.path.join(mnt, "images", "g.vhd"), back)
    assert_grown(tmp_path, vhd, back, raw, log)
    esp_fsck(tmp_path, disk, starts[0])


REFUSE = "refuse %d 20\nw %d 4\n" % (B(24) + 5, P2_START + 100)   # a new block refused; an in-place write works


def assert_refused(log, why, remedy):
    """The boot log's extent line names the cause, the answer (EFI_DEVICE_ERROR) and the remedy; the write into the
    new block got EFI_DEVICE_ERROR with the adapter's "no room" line; nothing was resynced; no BIOS wording."""
    assert "PROBE grow refused lba=%x" % (B(24) + 5) in log, log[-6000:]
    m = re.search(r"vhd: /images/g.vhd: \d+ extent\(s\) on disk, \d+ sectors; the file can't grow \((.*)\): writes "
                  r"beyond its clusters fail \(EFI_DEVICE_ERROR\); remedy: (.*)", log)
    assert m, log[-6000:]
    assert why in m.group(1) and remedy in m.group(2), m.group(0)
    assert re.search(r"vhd: \S+: no room to allocate block 24: .* write LBA %d count 20 refused \(EFI_DEVICE_ERROR\), "
                     r"nothing written" % (B(24) + 5), log), log[-6000:]
    assert "serve: vhd0 write LBA %d count 20: EFI_DEVICE_ERROR" % (B(24) + 5) in log, log[-6000:]
    assert "INT 13h" not in log, "BIOS wording under UEFI"
    assert "efsync:" not in log


def test_grow_no_refused(tmp_path):
    """grow=no on the FAT32 ESP: the write into a new block answers EFI_DEVICE_ERROR and reads back as zeros, the log
    says grow=no and the remedy, an in-place write still works; the file keeps its size, its blocks and every byte
    but the in-place sectors (qemu-img: identical to the oracle); fsck clean."""
    vhd, raw = guest_vhd(tmp_path, REFUSE)
    disk, esp = fat32_host(tmp_path, vhd, "vhd=/images/g.vhd grow=no\n")
    log = boot_probe(tmp_path, disk)
    assert_refused(log, "grow=no", "boot without grow=no")
    esp_fsck(tmp_path, disk, esp)
    after = fetch(tmp_path, disk, esp, "images/g.vhd", "after.vhd")
    assert fh.vhd_info(after)["file_size"] == os.path.getsize(vhd)
    assert bat_of(after) == bat_of(vhd)
    orc = oracle(tmp_path, raw, log)
    p = subprocess.run(["qemu-img", "compare", "--image-opts",
                        "driver=vpc,force_size_calc=current_size,file.driver=file,file.filename=%s" % after,
                        "driver=raw,file.driver=file,file.filename=%s" % orc], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_ntfs_refused(tmp_path):
    """The image file on NTFS (files there never grow): EFI_DEVICE_ERROR, the log names NTFS and the remedy; the file
    read back through ntfs-3g has its old size and BAT; ntfsfix -n clean."""
    vhd, raw = guest_vhd(tmp_path, REFUSE)
    vol = str(tmp_path / "nt.vol")
    fv.ntfs_volume(vol, "NTGROW", {"/images/g.vhd": vhd}, fragment=False)
    disk, starts = tf.host_disk(tmp_path, "vhd=hd0,2:/images/g.vhd\n", [(vol, tf.BASIC)])
    log = boot_probe(tmp_path, disk)
    assert_refused(log, "files on NTFS never grow", "a FAT32 or exFAT volume, or mode=snapshot")
    after = tf.extract(disk, starts[1], tmp_path / "nt-after.vol")
    fv.ntfsfix_clean(after)
    mnt = str(tmp_path / "ntmnt")
    os.makedirs(mnt, exist_ok=True)
    fv.tool(["ntfs-3g", "-o", "ro", after, mnt])
    back = str(tmp_path / "after.vhd")
    try:
        shutil.copyfile(os.path.join(mnt, "images", "g.vhd"), back)
    finally:
        fv.tool(["umount", mnt])
    assert os.path.getsize(back) == os.path.getsize(vhd)
    assert bat_of(back) == bat_of(vhd)


def test_guest_fat_write_grows(tmp_path):
    """The firmware's FAT driver on the image's own ESP writes a 3,000,000-byte file there (efiprobe's selfnote):
    its WriteBlocks reach us from inside a FAT call (the lock every FAT volume shares held) and grow the image file;
    the host disk's resync waits until that call is over (no hang, no error). Afterwards the host ESP is fsck clean
    and the firmware's size of the image file was the grown one; the image checks clean, its ESP is fsck clean and
    holds the file, and outside its ESP the virtual disk equals the oracle."""
    cmds = "selfnote /EFI/NOTE.BIN 3000000\nsize /images/g.vhd\n"
    vhd, raw = guest_vhd(tmp_path, cmds)
    disk, esp = fat32_host(tmp_path, vhd, "vhd=/images/g.vhd\n")
    log = boot_probe(tmp_path, disk)
    assert "PROBE self note written" in log
    m = grown_line(log, "hd0,1:/images/g.vhd")
    assert m, log[-6000:]
    assert "efsync: vhd0: the image file grew: the host disk's Block I/O reinstalled" in log, log[-6000:]
    esp_fsck(tmp_path, disk, esp)
    after = fetch(tmp_path, disk, esp, "images/g.vhd", "after.vhd")
    size = int(re.search(r"PROBE host size /images/g.vhd=([0-9a-f]+)", log).group(1), 16)
    assert size == os.path.getsize(after) > os.path.getsize(vhd)
    p = subprocess.run([eh.VHDTOOL, "check", after], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    back = str(tmp_path / "back.raw")
    eh.run([eh.VHDTOOL, "convert", "-O", "raw", after, back])
    gesp = str(tmp_path / "guest-esp.vol")
    with open(back, "rb") as src, open(gesp, "wb") as dst:
        src.seek(2048 * S)
        dst.write(src.read(16 * eh.MIB))
    verdict, text = fsck("fat32", gesp)            # fsck.fat -n (FAT16 here): clean
    assert verdict == "clean", text
    note = str(tmp_path / "note.bin")
    eh.run(["mcopy", "-n", "-o", "-i", gesp, "::/EFI/NOTE.BIN", note])
    assert open(note, "rb").read() == bytes((i * 7 + 3) & 0xFF for i in range(3000000))
    with open(oracle(tmp_path, raw, log), "rb") as a, open(back, "rb") as b:
        want, got = a.read(), b.read()
    lo, hi = 2048 * S, 2048 * S + 16 * eh.MIB
    assert want[:lo] == got[:lo] and want[hi:] == got[hi:]


def test_vhdx_grows_on_fat32(tmp_path):
    """A dynamic VHDX (1 MiB blocks) on the FAT32 ESP: the same writes need 7 new 1 MiB blocks (48, 51-52, 56,
    59-60, 66); the file grows by exactly 7 MiB, the firmware's FAT driver sees the new size, fsck clean, vhdtool
    check finds only the pending log entry (and nothing once qemu-img replayed it), qemu-img identical to the
    oracle."""
    _vhd, raw = guest_vhd(tmp_path, "size /images/g.vhdx\n" + writes_text(GROW_WRITES) + "size /images/g.vhdx\n")
    vx = str(tmp_path / "g.vhdx")
    eh.run([eh.VHDTOOL, "convert", "-f", "raw", "-O", "vhdx-dynamic", "-b", "1M", raw, vx])
    disk, esp = tu.make_host(tmp_path, None, {"g.vhdx": vx}, cfg="vhd=/images/g.vhdx\n")
    log = boot_probe(tmp_path, disk)
    assert grown_line(log, "hd0,1:/images/g.vhdx"), log[-6000:]
    assert "efsync: vhd0: the image file grew: the host disk's Block I/O reinstalled" in log, log[-6000:]
    size0 = os.path.getsize(vx)
    sizes = [int(v, 16) for v in re.findall(r"PROBE host size /images/g.vhdx=([0-9a-f]+)", log)]
    assert sizes == [size0, size0 + NEW_BLOCKS * eh.MIB], sizes
    esp_fsck(tmp_path, disk, esp)
    after = fetch(tmp_path, disk, esp, "images/g.vhdx", "after.vhdx")
    assert os.path.getsize(after) == size0 + NEW_BLOCKS * eh.MIB
    # The last block's log entry is still in the log (vhdboot never closes the image; the next open replays it):
    # that is the one finding; after qemu-img replays it the image checks clean.
    import json
    p = subprocess.run([eh.VHDTOOL, "check", "--json", after], capture_output=True, text=True, timeout=120)
    assert [f["check"] for f in json.loads(p.stdout)["findings"]] == ["log-pending"], p.stdout
    eh.run(["qemu-img", "check", "-r", "all", "-f", "vhdx", after])
    p = subprocess.run([eh.VHDTOOL, "check", after], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert os.path.getsize(after) == size0 + NEW_BLOCKS * eh.MIB
    p = subprocess.run(["qemu-img", "compare", "-f", "vhdx", "-F", "raw", after, oracle(tmp_path, raw, log)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "Images are identical" in p.stdout, p.stdout + p.stderr
