"""test_linux_nbd.py: Linux keeps the disk (issue 12): a Linux booted from a VHD by vhdboot serves the VHD
to itself through vhdboot-attach and NBD, runs from its root on /dev/nbd0p1, writes into it, and the host
finds the data in the image.

Three boots (tests/qemu/thirdparty/linux_nbd.py builds the disks from the cached Debian cloud kernel .deb):
  - initramfs-tools: the guest's initrd is made by Debian's real mkinitramfs with tools/linux/initramfs-tools
    (the hook copies vhdboot-attach and the nbd/vfat/nls modules; local-top runs it); kernel command line
    root=/dev/nbd0p1 rw. The guest VHD is a dynamic image in a file on a FAT32 partition of the IDE disk,
    booted by GRUB inside it through vhdboot. initramfs-tools mounts the root from /dev/nbd0p1 and
    switch_roots; the root's /sbin/init (rootinit.c) checks the root device and that the '@' server
    survived, writes a token and a 3 MiB pattern, remounts read-only, disconnects (the server flushes,
    exits) and ends QEMU. The host then checks the VHD: vhdtool check clean, both files inside (vhdtool
    convert + debugfs), the file grew, the FAT holds nothing else.
  - the guest disk of the custom initramfs (nbdinit.c) under SeaBIOS alone: no table, vhdboot-attach
    exits 2 and nothing is attached (what the hook relies on to do nothing).
  - mode=snapshot: GRUB's save_env writes /boot/grub/grubenv into vhdboot's RAM overlay; vhdboot-attach
    carries the overlay over (read through /dev/mem), Linux sees the grubenv line and writes into a RAM
    layer; the image file is unchanged.
    The same over a dynamic VHDX.
  - exFAT host: a dynamic and a fixed VHD in a file on an exFAT partition (mkfs.exfat, filled through
    exfat-fuse); the table says exFAT (1.2), vhdboot-attach mounts it with the kernel's exfat driver and
    serves the dynamic file through NBD (it grows through the mounted exFAT), the fixed one through
    device-mapper; the host finds the token and the pattern, vhdtool check and fsck.exfat -n clean.
  - VHDX: a dynamic VHDX (1 MiB blocks) in a file on the FAT32 partition; the table's format says VHDX (1.2),
    vhdboot-attach serves it through vhdx/ over NBD, Linux's writes allocate blocks through the VHDX log;
    the host finds the token and the pattern, vhdtool check clean (log empty), the file grew.
  - NTFS host: a fixed VHD on an NTFS partition (mkntfs, ntfscp); the table says NTFS. The cloud kernel has
    no ntfs3 (CONFIG_NTFS3_FS is not set): vhdboot-attach names the missing driver and attaches nothing.
  - dracut: the same as the initramfs-tools boot with an initrd made by dracut (dracut-core's shell init,
    no systemd) with tools/linux/dracut/90vhdboot: its initqueue/settled hook attaches, dracut mounts the
    root from /dev/nbd0p1, switch_roots; rootinit.c writes, the host checks the VHD.
The matrix (fixed, dynamic with the custom init, differencing, mode=ro, mode=snapshot) and the
sequential-I/O ratio are in bench/linux_nbd.py.
"""
import os
import re
import shutil
import subprocess

import pytest

import firmware_harness as fh
from thirdparty import linux_nbd as ln

bi = ln.bi
QEMU = os.environ.get("GUEST_QEMU", "qemu-system-x86_64")
TIMEOUT = 300
FAIL = r"Kernel panic|NBDINIT-FAIL|ROOTINIT-FAIL|vhdboot: ERROR|Gave up waiting"
DM = " vhdboot.dev=/dev/mapper/vhdboot80"   # nbdinit's device: a fixed image's maps or a dynamic one's hybrid
# vhdboot-attach's line when a dynamic/differencing VHD's device-mapper hybrid is up.
HYBRID_UP = re.compile(r"serving the image as /dev/mapper/vhdboot80 through a device-mapper hybrid: (\d+) plain "
                       r"block\(s\) linear on the host partition \((\d+) run\(s\)\), the rest through 43:0 \(NBD\); "
                       r"(\d+) partition\(s\); read-write")
HYBRID_END = re.compile(r"hybrid: (\d+) block\(s\) made linear, (\d+) table reload\(s\)")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    if not os.path.exists(fh.ISO):
        pytest.fail("%s is missing: run `make all`" % fh.ISO)
    out = str(tmp_path_factory.mktemp("linux-nbd"))
    host, _raw, vhd, _ = ln.build(out, "dynamic", tag="-it", initramfs_tools_run=True)
    _h, plain_raw, _v, _ = ln.build(out, "dynamic")
    return {"dir": out, "host": host, "raw": plain_raw, "vhd": vhd, "vhd_bytes": os.path.getsize(vhd)}


def boot(drives, iso, workdir):
    return fh.run_qemu(drives, iso=iso, boot="d" if iso else "c", timeout=TIMEOUT, workdir=workdir,
                       qemu=QEMU, mem=512, stop_on=FAIL)


def test_linux_root_on_dynamic_vhd_initramfs_tools(images, vhdtool):
    run = boot([(0, images["host"])], fh.ISO, images["dir"])
    ctx = "\n" + run.describe(12000)
    text = run.serial
    assert "ROOTINIT-DONE" in text and run.rc == fh.EXIT_DONE, "the guest did not finish%s" % ctx
    # The firmware placed the table in a reserved page of low memory.
    m = re.search(r"handover: table (\d+) bytes at ([0-9a-f]+) \(version 1\.2, 1 drive", text)
    assert m, "no handover line from vhdboot%s" % ctx
    at = int(m.group(2), 16)
    assert at % 4096 == 0 and 0x80000 <= at < 0xA0000, ctx
    assert re.search(r"e820 0*%x-[0-9a-f]+ type 2" % at, text), "the table's page is not E820-reserved%s" % ctx
    # initramfs-tools' local-top ran vhdboot-attach (it read the table through /dev/mem and found the disk by identity).
    assert re.search(r"serving sda partition sda1 as /dev/nbd0: %d sectors, dynamic, chain of 1, read-write"
                     % (ln.GUEST_MIB * 2048), text), ctx
    assert HYBRID_UP.search(text), ctx
    assert "Success: vhdboot: the image is /dev/mapper/vhdboot80" in text, ctx
    # The root came from the hybrid's partition 1 and the server survived switch_root.
    assert "ROOTINIT root=%s" % ln.IT_ROOT in text, ctx
    assert re.search(r"ROOTINIT server @\S*vhdboot-attach", text), ctx
    assert "ROOTINIT wrote vhdboot-fill.bin" in text and "ROOTINIT detached" in text, ctx
    assert "/dev/nbd0: disconnected, image flushed and closed" in text, ctx
    assert "unmounting the host file system" not in text, ctx

    # The host: the image checks clean, grew, and holds what Linux wrote.
    after = ln.extract_vhd(images["host"], os.path.join(images["dir"], "after.vhd"))
    fh.run_tool([vhdtool, "check", after])
    assert os.path.getsize(after) > images["vhd_bytes"], \
        "the dynamic VHD did not grow (%d bytes, was %d)" % (os.path.getsize(after), images["vhd_bytes"])
    token = ln.read_guest_file(after, "vhdboot-switched.txt", images["dir"])
    assert token == b"VHDBOOT-SWITCHED written by the root's /sbin/init after switch_root\n", token
    fill = ln.read_guest_file(after, "vhdboot-fill.bin", images["dir"])
    assert fill is not None and ln.sha(fill) == ln.sha(ln.fill_pattern()), "the pattern file differs"
    # Nothing outside the image changed on the host disk's FAT: the VHD is still the only file there.
    listing = fh.run_tool(["mdir", "-b", "-i", "%s@@%d" % (images["host"], ln.HOST_P1 * 512), "::/"]).stdout
    assert [x.strip().lower() for x in listing.strip().splitlines()] == ["::/%s" % ln.VHD_NAME], listing


def test_linux_root_on_dynamic_vhd_dracut(tmp_path, vhdtool):
    """dracut's initrd with our module: the settled hook attaches the VHD, dracut mounts /dev/nbd0p1 as the
    root and switch_roots; the '@' server survives; the root's writes land in the image, which grows."""
    out = str(tmp_path)
    host, _raw, vhd, _ = ln.build(out, "dynamic", tag="-dracut", dracut_run=True)
    vhd_bytes = os.path.getsize(vhd)
    run = boot([(0, host)], fh.ISO, out)
    ctx = "\n" + run.describe(12000)
    text = run.serial
    assert "ROOTINIT-DONE" in text and run.rc == fh.EXIT_DONE, "the guest did not finish%s" % ctx
    assert "Signal caught" not in text and "Entering emergency mode" not in text, ctx
    assert re.search(r"serving sda partition sda1 as /dev/nbd0: %d sectors, dynamic, chain of 1, read-write"
                     % (ln.GUEST_MIB * 2048), text), ctx
    assert HYBRID_UP.search(text), ctx
    assert "vhdboot: the image is /dev/mapper/vhdboot80" in text, ctx
    assert "dracut: Mounted root filesystem %s" % ln.IT_ROOT in text, ctx
    assert "ROOTINIT root=%s" % ln.IT_ROOT in text, ctx
    assert re.search(r"ROOTINIT server @\S*vhdboot-attach", text), ctx
    assert "ROOTINIT wrote vhdboot-fill.bin" in text and "ROOTINIT detached" in text, ctx
    assert "/dev/nbd0: disconnected, image flushed and closed" in text, ctx
    after = ln.extract_vhd(host, os.path.join(out, "after.vhd"))
    fh.run_tool([vhdtool, "check", after])
    assert os.path.getsize(after) > vhd_bytes, "the dynamic VHD did not grow"
    token = ln.read_guest_file(after, "vhdboot-switched.txt", out)
    assert token == b"VHDBOOT-SWITCHED written by the root's /sbin/init after switch_root\n", token
    fill = ln.read_guest_file(after, "vhdboot-fill.bin", out)
    assert fill is not None and ln.sha(fill) == ln.sha(ln.fill_pattern()), "the pattern file differs"


def test_no_table_without_vhdboot(images):
    """The same guest disk booted by SeaBIOS alone: vhdboot-attach finds no table, exits 2, attaches nothing."""
    raw = os.path.join(images["dir"], "plain.raw")
    shutil.copyfile(images["raw"], raw)
    run = boot([(0, raw)], None, images["dir"])
    ctx = "\n" + run.describe(8000)
    text = run.serial
    assert "no vhdboot hand-over table in 80000-9ffff: this system was not booted by vhdboot" in text, ctx
    assert "NBDINIT attach rc=2" in text and "NBDINIT notable" in text, ctx
    assert run.rc == fh.EXIT_DONE, ctx


@pytest.mark.parametrize("kind", ["dynamic", "vhdx-dynamic"])
def test_snapshot_carries_boot_loader_writes(images, kind):
    """mode=snapshot: GRUB's save_env (a write in the BIOS phase) lands in vhdboot's RAM overlay; vhdboot-attach
    reads the overlay through /dev/mem and serves the image read-only under a RAM layer, so Linux sees GRUB's
    grubenv, its own writes work (token + pattern, read back by nothing but the guest), and the image file on
    the FAT is unchanged afterwards. A VHDX the same way (its reads through vhdx/ under the layer)."""
    name = ln.VHDX_NAME if kind.startswith("vhdx") else ln.VHD_NAME
    host, _raw, _vhd, _ = ln.build(images["dir"], kind, tag="-snap", grubenv=True)
    before = fh.sha256(ln.extract_vhd(host, os.path.join(images["dir"], "snap.before." + name), name))
    iso = os.path.join(images["dir"], "snapshot-%s.iso" % kind)
    subprocess.run(["sh", os.path.join(fh.ROOT, "tools", "mkiso.sh"), "vhd=/%s mode=snapshot" % name, iso],
                   check=True, capture_output=True, timeout=300,
                   env=dict(os.environ, VHDBOOT_ELF=os.path.join(fh.ROOT, "build", "vhdboot.elf")))
    run = boot([(0, host)], iso, images["dir"])
    ctx = "\n" + run.describe(12000)
    text = run.serial
    assert "NBDINIT-DONE" in text and run.rc == fh.EXIT_DONE, "the guest did not finish%s" % ctx
    m = re.search(r"mode=snapshot: (\d+) sector\(s\) the boot loader wrote carried over", text)
    assert m and int(m.group(1)) > 0, "vhdboot-attach did not carry the overlay over%s" % ctx
    assert "NBDINIT grubenv %s" % ln.GRUBENV_TOKEN in text, "Linux does not see GRUB's save_env%s" % ctx
    assert "NBDINIT wrote vhdboot-token.txt" in text and "NBDINIT detached" in text, ctx
    after = fh.sha256(ln.extract_vhd(host, os.path.join(images["dir"], "snap.after." + name), name))
    assert after == before, "the image file changed under mode=snapshot"


@pytest.mark.parametrize("kind", ["dynamic", "fixed"])
def test_vhd_on_exfat_host(images, vhdtool, kind):
    """A VHD in a file on an exFAT host partition: the firmware's table names exFAT and the file's extents.
    dynamic: vhdboot-attach mounts the volume with the kernel's exfat driver (module from the .deb) through a
    dm map of the partition, serves the file through its device-mapper hybrid (NBD under it), nbdinit writes
    its token and a 3 MiB pattern (new blocks: the file grows through the mounted exFAT, then they are made
    linear) and detaches. fixed: the extents checked through exfat's FIBMAP, the volume unmounted,
    the file mapped by device-mapper (/dev/mapper/vhdboot80p1). The host: token and pattern in the VHD,
    vhdtool check clean, the file grew (dynamic) or kept its size (fixed), fsck.exfat -n clean."""
    dm = kind == "fixed"
    host, _raw, vhd, _ = ln.build(images["dir"], kind, tag="-exfat", host_fs="exfat", extra_args=DM)
    run = boot([(0, host)], fh.ISO, images["dir"])
    ctx = "\n" + run.describe(12000)
    text = run.serial
    assert "NBDINIT-DONE" in text and run.rc == fh.EXIT_DONE, "the guest did not finish%s" % ctx
    assert re.search(r"handover: table \d+ bytes at [0-9a-f]+ \(version 1\.2, 1 drive", text), ctx
    assert re.search(r"file: \d+ bytes, exFAT, cluster 4096, \d+ extent", text), ctx   # vhdboot-attach --info
    if dm:
        assert re.search(r"serving /dev/sda1's file as /dev/mapper/vhdboot80 through device-mapper \(dm-linear, "
                         r"no daemon; 1 partition\(s\)\); read-write", text), ctx
    else:
        assert re.search(r"serving sda partition sda1 as /dev/nbd0: %d sectors, dynamic, chain of 1, read-write"
                         % (ln.GUEST_MIB * 2048), text), ctx
        assert HYBRID_UP.search(text), ctx          # the exFAT mounted through the partition's map, the file grows
        m = HYBRID_END.search(text)
        assert m and int(m.group(2)) > 0, ctx       # new blocks were made linear
        assert "/dev/nbd0: disconnected, image flushed and closed" in text, ctx
    assert "NBDINIT wrote vhdboot-token.txt" in text and "NBDINIT detached" in text, ctx
    assert "unmounting the host file system" not in text, ctx
    vol = ln.host_volume(host, os.path.join(images["dir"], "exfat-after.vol"))
    clean, out = ln.fsck_exfat(vol)
    os.unlink(vol)
    assert clean, "fsck.exfat -n after the boot: %s" % out
    after = ln.extract_vhd(host, os.path.join(images["dir"], "exfat-after.vhd"), host_fs="exfat")
    fh.run_tool([vhdtool, "check", after])
    if dm:
        assert os.path.getsize(after) == os.path.getsize(vhd), "the fixed VHD changed size"
    else:
        assert os.path.getsize(after) > os.path.getsize(vhd), \
            "the dynamic VHD did not grow (%d bytes, was %d)" % (os.path.getsize(after), os.path.getsize(vhd))
    tok = ln.read_guest_file(after, "vhdboot-token.txt", images["dir"])
    assert tok and ln.TOKEN.encode() in tok, tok
    fill = ln.read_guest_file(after, "vhdboot-fill.bin", images["dir"])
    assert fill is not None and ln.sha(fill) == ln.sha(ln.fill_pattern()), "the pattern file differs"


def test_vhd_on_ntfs_host(images, vhdtool):
    """A fixed VHD in a file on an NTFS host partition: the table names NTFS. With ntfs3 in the kernel the
    image is served (device-mapper path) and the host finds the token; without it (the cloud kernel:
    CONFIG_NTFS3_FS is not set) vhdboot-attach names the missing driver and attaches nothing (exit 1), and
    the image file is unchanged."""
    has_ntfs3 = any(f == "ntfs3.ko" for _r, _d, files in os.walk(os.path.join(ln.kernel_tree(), "lib", "modules"))
                    for f in files)
    extra = " vhdboot.dev=/dev/mapper/vhdboot80" if has_ntfs3 else " vhdboot.expect=refuse"
    host, _raw, vhd, _ = ln.build(images["dir"], "fixed", tag="-ntfs", host_fs="ntfs", extra_args=extra)
    before = fh.sha256(vhd)
    run = boot([(0, host)], fh.ISO, images["dir"])
    ctx = "\n" + run.describe(12000)
    text = run.serial
    assert "NBDINIT-DONE" in text and run.rc == fh.EXIT_DONE, "the guest did not finish%s" % ctx
    assert re.search(r"handover: table \d+ bytes at [0-9a-f]+ \(version 1\.2, 1 drive", text), ctx
    assert re.search(r"file: \d+ bytes, NTFS, cluster 4096, \d+ extent", text), ctx
    after = ln.extract_vhd(host, os.path.join(images["dir"], "ntfs-after.vhd"), host_fs="ntfs")
    fh.run_tool([vhdtool, "check", after])
    if has_ntfs3:
        assert "NBDINIT wrote vhdboot-token.txt" in text and "NBDINIT detached" in text, ctx
        tok = ln.read_guest_file(after, "vhdboot-token.txt", images["dir"])
        assert tok and ln.TOKEN.encode() in tok, tok
        assert os.path.getsize(after) == os.path.getsize(vhd), "a fixed VHD changed size"
    else:
        assert ("the image's file is on NTFS: this kernel has no ntfs3 driver (module ntfs3, CONFIG_NTFS3_FS; "
                "not in /proc/filesystems): not attached") in text, ctx
        assert "NBDINIT attach rc=1" in text and "NBDINIT refused" in text, ctx
        assert "as /dev/nbd0:" not in text and "through device-mapper" not in text, ctx   # nothing served
        assert fh.sha256(after) == before, "the image changed although nothing was attached"


def test_dynamic_vhdx_on_fat32_host(images, vhdtool):
    """A dynamic VHDX in a file on the FAT32 host partition, served to Linux through vhdx/: the token and the
    3 MiB pattern land in new blocks (allocated through the VHDX log, the file grows on the FAT), the log is
    marked empty at the disconnect, and the host reads both back (vhdtool convert + debugfs)."""
    host, _raw, vhdx, _ = ln.build(images["dir"], "vhdx-dynamic", tag="-vhdx")
    run = boot([(0, host)], fh.ISO, images["dir"])
    ctx = "\n" + run.describe(12000)
    text = run.serial
    assert "NBDINIT-DONE" in text and run.rc == fh.EXIT_DONE, "the guest did not finish%s" % ctx
    assert re.search(r"handover: table \d+ bytes at [0-9a-f]+ \(version 1\.2, 1 drive", text), ctx
    assert re.search(r"drive 80h: VHDX, mode=rw, type 3, %d sectors, place file" % (ln.GUEST_MIB * 2048), text), ctx
    assert re.search(r"serving sda partition sda1 as /dev/nbd0: %d sectors, dynamic VHDX, chain of 1, read-write"
                     % (ln.GUEST_MIB * 2048), text), ctx
    assert "NBDINIT wrote vhdboot-token.txt" in text and "NBDINIT detached" in text, ctx
    assert "/dev/nbd0: disconnected, image flushed and closed" in text, ctx
    after = ln.extract_vhd(host, os.path.join(images["dir"], "after.vhdx"), ln.VHDX_NAME)
    fh.run_tool([vhdtool, "check", after])
    info = fh.run_tool([vhdtool, "info", after]).stdout
    assert re.search(r"pending:\s+no\b", info), info
    assert os.path.getsize(after) > os.path.getsize(vhdx), \
        "the dynamic VHDX did not grow (%d bytes, was %d)" % (os.path.getsize(after), os.path.getsize(vhdx))
    tok = ln.read_guest_file(after, "vhdboot-token.txt", images["dir"])
    assert tok and ln.TOKEN.encode() in tok, tok
    fill = ln.read_guest_file(after, "vhdboot-fill.bin", images["dir"])
    assert fill is not None and ln.sha(fill) == ln.sha(ln.fill_pattern()), "the pattern file differs"


@pytest.mark.parametrize("kind", ["dynamic", "diff"])
def test_hybrid_new_blocks_linear_read_back(images, vhdtool, kind):
    """The device-mapper hybrid of a dynamic VHD (and of a differencing child over a dynamic parent, both on
    the FAT32): nbdinit writes the 3 MiB pattern into blocks the image has not allocated (through NBD: the
    daemon allocates them), unmounts; the reloader then maps them linearly onto the host partition. nbdinit
    finds every block of the pattern file (FIBMAP on the ext2) inside a target of the hybrid's live table
    that is not the NBD device (DM_TABLE_STATUS), drops the caches, mounts read-only and reads the pattern
    back through those linear runs: equal. A differencing child: only blocks written whole become plain, so
    the pattern's partly written blocks stay on NBD; read back right all the same. The host: vhdtool check
    clean, the image grew, token and pattern inside (convert + debugfs), the FAT clean (fsck.vfat -n), a
    parent unchanged."""
    host, _raw, vhd, parent = ln.build(images["dir"], kind, tag="-hyb", extra_args=DM + " vhdboot.verify=1")
    parent_sha = fh.sha256(parent) if parent else None
    run = boot([(0, host)], fh.ISO, images["dir"])
    ctx = "\n" + run.describe(12000)
    text = run.serial
    assert "NBDINIT-DONE" in text and run.rc == fh.EXIT_DONE, "the guest did not finish%s" % ctx
    assert re.search(r"serving sda partition sda1 as /dev/nbd0: %d sectors, %s, chain of %d, read-write"
                     % (ln.GUEST_MIB * 2048, "differencing" if parent else "dynamic", 2 if parent else 1), text), ctx
    assert HYBRID_UP.search(text), ctx
    m = re.search(r"NBDINIT linear (-?\d+)/(\d+)", text)
    assert m and int(m.group(2)) == ln.FILL_KIB, ctx
    end = HYBRID_END.search(text)
    if parent:
        # A differencing child's block becomes plain only when the guest writes all of it (its other sectors
        # are the parent's); the pattern's partly written blocks stay on NBD, and are still read back right.
        assert int(m.group(1)) >= 0 and end, ctx
    else:
        assert m.group(1) == m.group(2), "the pattern's blocks are not all in linear runs%s" % ctx
        assert end and int(end.group(2)) > 0, "no table reload%s" % ctx
    assert "NBDINIT readback ok %d bytes" % (ln.FILL_KIB * 1024) in text, ctx
    assert "removing vhdboot80host" not in text, ctx   # the host map went away after the unmount
    assert "NBDINIT detached" in text and "/dev/nbd0: disconnected, image flushed and closed" in text, ctx
    assert "device-mapper hybrid not set up" not in text, ctx
    listing = fh.run_tool(["fsck.vfat", "-n", "%s" % ln.host_volume(host, os.path.join(images["dir"], "hyb.vol"))])
    assert listing.returncode == 0, listing.stdout
    os.unlink(os.path.join(images["dir"], "hyb.vol"))
    d = os.path.join(images["dir"], "hyb-after-" + kind)    # the child beside its parent, by their names
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    if parent:
        p_after = ln.extract_vhd(host, os.path.join(d, ln.PARENT_NAME), ln.PARENT_NAME)
        assert fh.sha256(p_after) == parent_sha, "the parent changed"
    after = ln.extract_vhd(host, os.path.join(d, ln.VHD_NAME))
    fh.run_tool([vhdtool, "check", after])
    assert os.path.getsize(after) > os.path.getsize(vhd), "the VHD did not grow"
    tok = ln.read_guest_file(after, "vhdboot-token.txt", images["dir"])
    assert tok and ln.TOKEN.encode() in tok, tok
    fill = ln.read_guest_file(after, "vhdboot-fill.bin", images["dir"])
    assert fill is not None and ln.sha(fill) == ln.sha(ln.fill_pattern()), "the pattern file differs"
    shutil.rmtree(d, ignore_errors=True)


def test_hybrid_fallback_without_dm(images, vhdtool):
    """No device-mapper in the initramfs (dm_mod left out): vhdboot-attach says why the hybrid is not set up
    and serves the dynamic VHD through NBD alone as before (/dev/nbd0); nbdinit writes through /dev/nbd0p1,
    the host finds the token and the pattern, vhdtool check clean, the image grew."""
    mods = [m for m in ln.MODULES if m != "dm_mod"]
    host, _raw, vhd, _ = ln.build(images["dir"], "dynamic", tag="-nodm", modules=mods)
    run = boot([(0, host)], fh.ISO, images["dir"])
    ctx = "\n" + run.describe(12000)
    text = run.serial
    assert "NBDINIT-DONE" in text and run.rc == fh.EXIT_DONE, "the guest did not finish%s" % ctx
    assert ("device-mapper hybrid not set up: no /dev/mapper/control (is dm_mod loaded?); serving through NBD "
            "only") in text, ctx
    assert not HYBRID_UP.search(text), ctx
    assert re.search(r"serving sda partition sda1 as /dev/nbd0: %d sectors, dynamic, chain of 1, read-write"
                     % (ln.GUEST_MIB * 2048), text), ctx
    assert "NBDINIT wrote vhdboot-token.txt" in text and "NBDINIT detached" in text, ctx
    after = ln.extract_vhd(host, os.path.join(images["dir"], "nodm-after.vhd"))
    fh.run_tool([vhdtool, "check", after])
    assert os.path.getsize(after) > os.path.getsize(vhd), "the VHD did not grow"
    tok = ln.read_guest_file(after, "vhdboot-token.txt", images["dir"])
    assert tok and ln.TOKEN.encode() in tok, tok
    fill = ln.read_guest_file(after, "vhdboot-fill.bin", images["dir"])
    assert fill is not None and ln.sha(fill) == ln.sha(ln.fill_pattern()), "the pattern file differs"
