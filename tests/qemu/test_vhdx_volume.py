"""test_vhdx_volume.py: a differencing VHDX whose parent is named only by its locator's volume_path
(\\\\?\\Volume{GUID}\\path): the firmware finds the parent on the GPT partition whose unique partition GUID is that GUID,
on any disk, under the BIOS (vhdboot.iso) and under OVMF (vhdboot.efi) (QEMU TCG).

Child and parent are made by vhdtool (convert to a dynamic VHDX, create -p, write); the child's locator is then
rewritten by tests/host/vhdx_locator.py: parent_linkage kept, volume_path naming the parent's partition by GUID,
absolute_win32_path pointing nowhere, no relative_path. A decoy VHDX (another DataWriteGuid) sits at the same path on
the child's own volume, where the tries without the GUID (the path from the child's volume root) would meet it
first and stop with a linkage mismatch: the boot reading the right data shows the GUID decided.
"""
import os
import random
import re
import subprocess
import uuid

import pytest

import firmware_harness as fh
from firmware_harness import SECTOR
import test_select as ts
import vhdx_locator as vl

PARENT_GUID = "6F0C2A44-9B1E-4D7A-8C35-2E9F41B7D0A3"
CHILD_GUID = "1D5E8B20-3C47-4F96-A1B8-7E02C4D9F615"
FAT_SECTORS = 98304             # 48 MiB FAT32 volumes
ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BASIC = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"


def gpt_disk(path, vols):
    """A GPT disk of FAT32 volume images: vols = [(volume image, partition GUID, type GUID)], 2048-sector gaps."""
    start, lines = 2048, ["label: gpt", "unit: sectors"]
    starts = []
    for vol, guid, typ in vols:
        n = os.path.getsize(vol) // SECTOR
        lines.append("start=%d, size=%d, type=%s, uuid=%s" % (start, n, typ, guid))
        starts.append(start)
        start += n + 2048
    with open(path, "wb") as f:
        f.truncate((start + 2048) * SECTOR)
    ts.tool(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", str(path)], input=("\n".join(lines) + "\n").encode())
    for (vol, _, _), s in zip(vols, starts):
        with open(vol, "rb") as src, open(path, "r+b") as dst:
            dst.seek(s * SECTOR)
            dst.write(src.read())
    return str(path)


def fat32(path, label, files, sectors=FAT_SECTORS):
    """A FAT32 volume image holding files {path on the volume: host file} (mtools)."""
    with open(path, "wb") as f:
        f.truncate(sectors * SECTOR)
    ts.tool(["mkfs.fat", "-F", "32", "-s", "1", "-n", label, str(path)])
    for name, src in files.items():
        parts = name.strip("/").split("/")
        for i in range(1, len(parts)):
            subprocess.run(["mmd", "-D", "s", "-i", str(path), "::/" + "/".join(parts[:i])], env=ts.MT_ENV,
                           capture_output=True, timeout=60)
        ts.tool(["mcopy", "-i", str(path), str(src), "::" + name])
    return str(path)


def vhdx_chain(d, raw, child_runs, seed):
    """base.vhdx (dynamic VHDX of raw with child_runs zeroed, 1 MiB blocks) and child.vhdx (vhdtool create -p) holding
    raw's data in child_runs [(lba, count)]; the child's locator rewritten to volume_path only (+ a wrong absolute
    path). Also decoy.vhdx: a VHDX of the same size with another DataWriteGuid. Returns (base, child, decoy)."""
    data = open(raw, "rb").read()
    holed = bytearray(data)
    for lba, n in child_runs:
        holed[lba * SECTOR:(lba + n) * SECTOR] = bytes(n * SECTOR)
    braw = os.path.join(d, "base.raw")
    with open(braw, "wb") as f:
        f.write(holed)
    base, child, decoy = (os.path.join(d, n) for n in ("base.vhdx", "child.vhdx", "decoy.vhdx"))
    ts.vhdtool("convert", "-f", "raw", "-O", "vhdx-dynamic", "-b", "1M", braw, base)
    os.unlink(braw)
    ts.vhdtool("create", "-p", base, child)
    for lba, n in child_runs:
        ts.vhdtool("write", child, str(lba), input=data[lba * SECTOR:(lba + n) * SECTOR])
    ts.vhdtool("create", "-t", "vhdx-dynamic", "-b", "1M", "-s", str(len(data)), decoy)
    loc = dict(vl.locator(child))
    assert "parent_linkage" in loc and "relative_path" in loc, loc
    vl.set_locator(child, [("parent_linkage", loc["parent_linkage"]),
                           ("volume_path", vl.volume_path(PARENT_GUID, "/bases/base.vhdx")),
                           ("absolute_win32_path", "C:\\nowhere\\gone.vhdx")])
    assert [k for k, _ in vl.locator(child)] == ["parent_linkage", "volume_path", "absolute_win32_path"]
    return base, child, decoy


# ------------------------------------------------------------------ BIOS


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    fh.run_tool(["make", "-s", "-C", fh.ROOT, "build/guest/int13test.bin", "build/vhdtool", "kernel"])
    return tmp_path_factory.mktemp("vxvol")


def test_bios_parent_by_volume_guid(work):
    """vhd=hd0,1:/vhd/child.vhdx mode=ro: the child on GPT partition 1 of disk 0 (with the decoy at /bases/base.vhdx),
    its parent at /bases/base.vhdx on the GPT partition of disk 1 whose GUID the volume_path names. The chain boots,
    the guest's checksums of the whole virtual disk equal the raw image's, the log names the volume found by GUID,
    and neither disk changes."""
    raw = ts.raw_image(work / "g.raw", 41)
    base, child, decoy = vhdx_chain(str(work), raw, [(16, 200), (2000, 100)], 41)
    v0 = fat32(work / "c.vol", "CHILDVOL", {"/vhd/child.vhdx": child, "/bases/base.vhdx": decoy})
    v1 = fat32(work / "p.vol", "PARENTS", {"/bases/base.vhdx": base})
    disk0 = gpt_disk(work / "disk0.img", [(v0, CHILD_GUID, BASIC)])
    disk1 = gpt_disk(work / "disk1.img", [(v1, PARENT_GUID, BASIC)])
    before = [fh.sha256(disk0), fh.sha256(disk1)]
    run = ts.run_fw(work, [(0, disk0), (1, disk1)], "vhd=hd0,1:/vhd/child.vhdx mode=ro", timeout=180)
    ts.check_sums(run, raw, "parent by volume GUID")
    assert "vhd: hd0,1:/vhd/child.vhdx: its volume_path names volume {%s}: hd1,1 (the GPT partition with that " \
        "unique partition GUID)" % PARENT_GUID in run.serial, run.describe()
    assert re.search(r"vhd: 80h: parent /bases/base\.vhdx on hd1,1 \(found through its child's volume_path\)",
                     run.serial), run.describe()
    assert "linkage" not in run.serial, "the decoy was looked at" + run.describe()
    assert [fh.sha256(disk0), fh.sha256(disk1)] == before, "a read-only boot changed a disk"


# ------------------------------------------------------------------ UEFI

def test_uefi_parent_by_volume_guid(tmp_path):
    """Under OVMF: vhdboot.cfg names /images/child.vhdx on the host ESP (GPT partition 1, the decoy at
    /bases/base.vhdx beside it), the parent is on GPT partition 2 of the same host disk, named by its GUID in the
    volume_path. efiprobe (the image's loader) reads the pattern through the chain (the pattern sectors that the
    parent lacks come from the child) and passes; the images do not change (mode=ro)."""
    import efi_harness as eh
    if not (os.path.exists(eh.OVMF_CODE) and subprocess.run(["which", eh.QEMU], capture_output=True).returncode == 0):
        pytest.skip("needs ovmf and qemu-system-x86_64")
    for f in (eh.VHDBOOT_EFI, eh.EFIPROBE, eh.VHDTOOL):
        assert os.path.exists(f), "%s missing: run make" % f
    raw = str(tmp_path / "guest.raw")
    p2, n2 = eh.guest_raw(raw)
    rnd = random.Random(5)
    runs = sorted({(p2 + rnd.randrange(0, n2 - 64) // 8 * 8, 64) for _ in range(6)} | {(p2, 128)})
    base, child, decoy = vhdx_chain(str(tmp_path), raw, runs, 5)
    cfg = str(tmp_path / "vhdboot.cfg")
    with open(cfg, "w") as f:
        f.write("vhd=/images/child.vhdx mode=ro\n")
    esp = fat32(tmp_path / "esp.vol", "HOSTESP", {"/EFI/BOOT/BOOTX64.EFI": eh.VHDBOOT_EFI,
                                                  "/EFI/BOOT/vhdboot.cfg": cfg, "/images/child.vhdx": child,
                                                  "/bases/base.vhdx": decoy}, sectors=160 * 2048)
    pvol = fat32(tmp_path / "p.vol", "PARENTS", {"/bases/base.vhdx": base}, sectors=160 * 2048)
    host = gpt_disk(tmp_path / "host.img", [(esp, CHILD_GUID, ESP), (pvol, PARENT_GUID, BASIC)])
    before = fh.sha256(host)
    rc, log, secs = eh.boot(str(tmp_path), [(host, eh.IDE)], timeout=420)
    ctx = "exit %s after %.0f s\n%s" % (rc, secs, log[-6000:])
    assert "PROBE PASS" in log and rc == eh.EXIT_PASS, ctx
    assert "its volume_path names volume {%s}: hd0,2 (the GPT partition with that unique partition GUID)" \
        % PARENT_GUID in log, ctx
    assert "linkage" not in log, "the decoy was looked at\n" + ctx
    assert "PROBE disk vendor-path=1" in log, ctx
    assert fh.sha256(host) == before, "a read-only boot changed the host disk"
