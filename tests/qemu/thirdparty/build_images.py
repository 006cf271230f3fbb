#!/usr/bin/env python3
"""build_images.py: build the real-guest test disks (raw images) from Debian's packages at test time.

Nothing third-party is committed: the Linux kernel comes from Debian's
linux-image-*-cloud-amd64 package (downloaded once with `apt-get download` and
cached in build/cache/), GRUB from grub-pc-bin, SYSLINUX from syslinux, memtest86+
from memtest86+. File systems are made in image files (mkfs.fat + mtools,
mke2fs -d) and copied into place: no loop devices, no mounts, no root needed
(except for apt-get download when the .deb is not cached).

Guests (each a raw MBR-partitioned disk image; see GUESTS):
  grub      GRUB 2 i386-pc: boot.img + core.img in the MBR gap (written here, as
            grub-bios-setup would: Debian's grub-bios-setup cannot work on an image
            file, it insists on guessing the host's root device), FAT16 partition 1
            (kernel, grub.cfg), ext2 partition 2 (initramfs, a second kernel copy);
            Linux + our initramfs: kernel from FAT, initramfs from ext2.
  grub-ext2 the same disk with grub.cfg's default on the entry loading both from ext2.
  syslinux  SYSLINUX: its mbr.bin, FAT16 partition with `syslinux --install`;
            the same kernel and initramfs.
  memtest   GRUB 2 (as above, FAT only) starting memtest86+ (x64 .bin) with
            console=ttyS0,115200.
  doschain  our DOS-style MBR -> partition boot record -> second stage chain
            (tests/qemu/thirdparty/doschain/*.asm, nasm), CHS reads only.

Each guest also names `child_markers`: byte strings whose sectors hold the
guest's own configuration or marker (grub.cfg, syslinux.cfg, the init program,
the second stage). make_vhds() blanks those sectors in the differencing
parent and writes them into the child only, so a boot from the child works only
if the child's blocks are really read.

Usage: tests/qemu/thirdparty/build_images.py OUTDIR [GUEST...]     (prints the image paths)
"""
import glob
import os
import shutil
import tempfile
import threading
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))  # tests/qemu/thirdparty/ -> repository
BUILD = os.path.join(ROOT, "build")
CACHE = os.environ.get("GUEST_CACHE", os.path.join(BUILD, "cache"))
VHDTOOL = os.environ.get("VHDTOOL", os.path.join(BUILD, "vhdtool"))
GRUB_DIR = "/usr/lib/grub/i386-pc"
SYSLINUX_MBR = "/usr/lib/syslinux/mbr/mbr.bin"
MEMTEST_BIN = "/boot/memtest86+x64.bin"
SECTOR = 512
MiB = 1 << 20

LINUX_MARKER = "VHDBOOT-LINUX-OK"          # printed by init.c
GRUB_CFG_MARKER = "VHDBOOT-GRUB-CFG"       # echoed by grub.cfg
SYSLINUX_CFG_MARKER = "VHDBOOT-SYSLINUX-CFG"
DOS_MARKER = "DOSCHAIN-STAGE2-OK"

# Kernel command line common part: serial console; a panic reboots at once, which
# -no-reboot turns into QEMU exiting instead of a hang until the timeout.
LINUX_ARGS = "console=ttyS0,115200 panic=-1 no_timer_check rdinit=/init"

# doschain layout: partitions end on a cylinder boundary (QEMU, like old BIOSes, guesses the
# geometry from the partition table's end CHS); partition at LBA 63 (DOS style: C0/H1/S1 under any 63-sector geometry);
# the second stage (LBA 16030-16149) straddles LBA 16065 (a cylinder boundary with 255 heads x 63
# sectors) and 16128 (one with 16 heads, SeaBIOS's choice for this disk), so the boot record's CHS
# reads cross heads and a cylinder whichever geometry the BIOS reports.
DOS_DISK_SECTORS = 3 * 16065       # whole cylinders of 255 x 63, as DOS partitioned disks
DOS_PART_START = 63
DOS_S2_ABS = 16030
DOS_S2_COUNT = 120


class BuildError(RuntimeError):
    pass


def run(args, env=None, cwd=None, input=None, timeout=600):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([str(a) for a in args], capture_output=True, env=e, cwd=cwd, input=input, timeout=timeout)
    if p.returncode != 0:
        raise BuildError("$ %s\n-> exit %d\n%s%s" % (" ".join(map(str, args)), p.returncode,
                                                     p.stdout.decode("latin-1")[-3000:], p.stderr.decode("latin-1")[-3000:]))
    return p.stdout.decode("latin-1")


# ------------------------------------------------------------------ Linux kernel (Debian package)

def _cached_debs():
    return sorted(d for d in glob.glob(os.path.join(CACHE, "linux-image-*-cloud-amd64_*_amd64.deb"))
                  if "-dbg" not in os.path.basename(d) and "unsigned" not in os.path.basename(d))


def kernel_deb():
    """The cached linux-image-*-cloud-amd64 .deb; downloads it (apt-get download) the first time."""
    debs = _cached_debs()
    if debs:
        return debs[-1]
    os.makedirs(CACHE, exist_ok=True)

    def resolve():
        out = run(["apt-cache", "depends", "linux-image-cloud-amd64"])
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("Depends:") and "linux-image-" in line:
                return line.split(":", 1)[1].strip()
        raise BuildError("apt-cache depends linux-image-cloud-amd64 names no linux-image package:\n" + out)

    try:
        pkg = resolve()
        run(["apt-get", "download", pkg], cwd=CACHE)
    except BuildError:
        # a machine without package lists: update once (as root) and try again
        if os.geteuid() != 0:
            raise
        run(["apt-get", "update", "-qq"])
        pkg = resolve()
        run(["apt-get", "download", pkg], cwd=CACHE)
    debs = _cached_debs()
    if not debs:
        raise BuildError("apt-get download %s left no .deb in %s" % (pkg, CACHE))
    return debs[-1]


_KERNEL_LOCK = threading.Lock()


def kernel():
    """Path of the cloud kernel's vmlinuz (downloaded and extracted once, next to the cached .deb).

    Image builders run in a thread pool: one lock covers the download and the
    extraction, and the extraction uses a private directory, so a cold cache is
    filled exactly once."""
    with _KERNEL_LOCK:
        return _kernel_locked()


def _kernel_locked():
    deb = kernel_deb()
    base = os.path.basename(deb)[:-len(".deb")]
    out = os.path.join(CACHE, base + ".vmlinuz")
    if not os.path.exists(out):
        tmp = tempfile.mkdtemp(prefix=base + ".x.", dir=CACHE)
        run(["dpkg-deb", "-x", deb, tmp])
        found = glob.glob(os.path.join(tmp, "boot", "vmlinuz-*"))
        if not found:
            raise BuildError("%s holds no /boot/vmlinuz-*" % deb)
        shutil.copyfile(found[0], out + ".tmp")
        os.replace(out + ".tmp", out)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# ------------------------------------------------------------------ initramfs (newc cpio)

def _cpio_entry(name, mode, data=b"", rdev=(0, 0), ino=1):
    nb = name.encode() + b"\0"
    hdr = "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X" % (
        ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0)
    out = hdr.encode() + nb
    out += b"\0" * (-len(out) % 4)
    out += data
    out += b"\0" * (-len(out) % 4)
    return out


def newc_cpio(entries):
    """entries: [(name, mode, data, (major, minor))] -> an uncompressed newc archive."""
    out = b""
    for i, (name, mode, data, rdev) in enumerate(entries, 1):
        out += _cpio_entry(name, mode, data, rdev, ino=i)
    out += _cpio_entry("TRAILER!!!", 0, ino=0)
    return out + b"\0" * (-len(out) % 512)


def initramfs(workdir):
    """The test initramfs: a static init (tests/qemu/thirdparty/init.c) and /dev/console."""
    out = os.path.join(workdir, "initrd.img")
    init = os.path.join(workdir, "init")
    run(["gcc", "-static", "-Os", "-s", "-Wall", "-o", init, os.path.join(HERE, "init.c")])
    with open(init, "rb") as fh:
        code = fh.read()
    ents = [("dev", 0o40755, b"", (0, 0)), ("dev/console", 0o20600, b"", (5, 1)),
            ("proc", 0o40755, b"", (0, 0)), ("sys", 0o40755, b"", (0, 0)),
            ("init", 0o100755, code, (0, 0))]
    with open(out, "wb") as fh:
        fh.write(newc_cpio(ents))
    return out


# ------------------------------------------------------------------ disks, partitions, file systems

GEOM_HEADS, GEOM_SPT = 255, 63


def chs(lba, heads=GEOM_HEADS, spt=GEOM_SPT):
    """Partition-table CHS bytes (head, sector|cyl hi, cyl lo) for lba; 1023/254/63 past the limit."""
    c, rem = divmod(lba, heads * spt)
    h, s = divmod(rem, spt)
    if c > 1023:
        c, h, s = 1023, heads - 1, spt - 1
    return bytes([h, ((s + 1) & 0x3F) | ((c >> 2) & 0xC0), c & 0xFF])


def partition_table(parts, signature=0x56484442):
    """parts: [(start, sectors, type, active)] -> bytes 0x1B8..0x200 of an MBR."""
    t = bytearray(struct.pack("<IH", signature, 0))
    for start, n, ptype, active in parts:
        t += bytes([0x80 if active else 0]) + chs(start) + bytes([ptype]) + chs(start + n - 1) + struct.pack("<II", start, n)
    t += bytes(16 * (4 - len(parts)))
    t += b"\x55\xaa"
    assert len(t) == 72
    return bytes(t)


def write_at(path, lba, data):
    with open(path, "r+b") as fh:
        fh.seek(lba * SECTOR)
        fh.write(data)


def copy_into(path, lba, src):
    with open(src, "rb") as s, open(path, "r+b") as d:
        d.seek(lba * SECTOR)
        shutil.copyfileobj(s, d, 4 * MiB)


def new_disk(path, sectors):
    with open(path, "wb") as fh:
        fh.truncate(sectors * SECTOR)


MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": "0"}


def fat_image(path, sectors, hidden, label, files):
    """A FAT16 file system image of sectors sectors (hidden = its partition's start LBA).
    files: {path inside: host file or bytes}."""
    if os.path.exists(path):
        os.unlink(path)
    run(["mkfs.fat", "-F", "16", "-n", label, "-h", str(hidden), "-S", "512", "-C", path, str(sectors // 2)])
    dirs = set()
    for inside in files:
        parts = inside.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    for d in sorted(dirs):
        run(["mmd", "-i", path, "::/" + d], env=MTOOLS_ENV)
    for inside, src in files.items():
        if isinstance(src, (bytes, str)) and not (isinstance(src, str) and os.path.exists(src)):
            tmp = path + ".file"
            with open(tmp, "wb") as fh:
                fh.write(src.encode() if isinstance(src, str) else src)
            src = tmp
        run(["mcopy", "-i", path, "-o", src, "::/" + inside.strip("/")], env=MTOOLS_ENV)
    if os.path.exists(path + ".file"):
        os.unlink(path + ".file")
    return path


def ext2_image(path, sectors, files, workdir):
    """An ext2 image populated from files ({path inside: host file}) with mke2fs -d."""
    src = os.path.join(workdir, os.path.basename(path) + ".d")
    shutil.rmtree(src, ignore_errors=True)
    for inside, host in files.items():
        dst = os.path.join(src, inside.strip("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(host, dst)
    if os.path.exists(path):
        os.unlink(path)
    run(["mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", "-L", "vhdext2", "-E", "root_owner=0:0",
         "-d", src, path, str(sectors // 2)])
    shutil.rmtree(src, ignore_errors=True)
    return path


# ------------------------------------------------------------------ GRUB 2 (i386-pc)

GRUB_MODULES = ["biosdisk", "part_msdos", "fat", "ext2", "normal", "linux", "serial", "terminal",
                "echo", "configfile", "boot", "test"]


def grub_core(workdir, root_part=1, extra_modules=()):
    """core.img for (hd0,msdos<root_part>) with an embedded early config and every module it needs
    (plus extra_modules)."""
    early = os.path.join(workdir, "early.cfg")
    with open(early, "w") as fh:
        fh.write("set root=(hd0,msdos%d)\nset prefix=(hd0,msdos%d)/boot/grub\n" % (root_part, root_part))
    core = os.path.join(workdir, "core.img")
    run(["grub-mkimage", "-O", "i386-pc", "-d", GRUB_DIR, "-o", core, "-c", early,
         "-p", "(hd0,msdos%d)/boot/grub" % root_part] + GRUB_MODULES + list(extra_modules))
    return core


def grub_install(disk, core, first_part_lba):
    """What grub-bios-setup does for an MBR-gap install, on an image file: boot.img's code
    (kernel sector field = 1, where core.img starts; drive check disabled as without
    --allow-floppy) with the disk's partition table kept; core.img at LBA 1. diskboot.img's
    default blocklist (start 2, length set by grub-mkimage) already matches that place."""
    with open(os.path.join(GRUB_DIR, "boot.img"), "rb") as fh:
        boot = bytearray(fh.read())
    with open(core, "rb") as fh:
        core_img = fh.read()
    nsec = (len(core_img) + SECTOR - 1) // SECTOR
    if 1 + nsec > first_part_lba:
        raise BuildError("core.img (%d sectors) does not fit before LBA %d" % (nsec, first_part_lba))
    # diskboot.img: blocklist at the end of its sector: start (u64) = 2, len (u16) = nsec - 1, segment 0x820
    start, length, seg = struct.unpack_from("<QHH", core_img, SECTOR - 12)
    if (start, length, seg) != (2, nsec - 1, 0x820):
        raise BuildError("unexpected diskboot blocklist %r (want start 2, %d sectors, 0820)" % ((start, length, seg), nsec - 1))
    struct.pack_into("<Q", boot, 0x5C, 1)            # GRUB_BOOT_MACHINE_KERNEL_SECTOR
    boot[0x66:0x68] = b"\x90\x90"                    # GRUB_BOOT_MACHINE_DRIVE_CHECK
    with open(disk, "r+b") as fh:
        mbr = bytearray(fh.read(SECTOR))
        mbr[0:0x1B8] = boot[0:0x1B8]
        fh.seek(0)
        fh.write(mbr)
        fh.seek(SECTOR)
        fh.write(core_img)


def grub_disk(out, workdir, grub_cfg, fat_files, ext2_files=None, fat_mib=32, ext2_mib=24):
    """An MBR disk: GRUB in the gap, FAT16 partition 1 (active) with /boot/grub/grub.cfg and fat_files,
    optional ext2 partition 2 with ext2_files."""
    p1, n1 = 2048, fat_mib * MiB // SECTOR
    parts = [(p1, n1, 0x06, True)]
    total = p1 + n1
    if ext2_files:
        p2, n2 = p1 + n1, ext2_mib * MiB // SECTOR
        parts.append((p2, n2, 0x83, False))
        total = p2 + n2
    new_disk(out, total)
    write_at(out, 0, bytes(0x1B8) + partition_table(parts))
    files = dict(fat_files)
    files["boot/grub/grub.cfg"] = grub_cfg
    fat = fat_image(os.path.join(workdir, "p1.fat"), n1, p1, "VHDGRUB", files)
    copy_into(out, p1, fat)
    os.unlink(fat)
    if ext2_files:
        e2 = ext2_image(os.path.join(workdir, "p2.ext2"), n2, ext2_files, workdir)
        copy_into(out, p2, e2)
        os.unlink(e2)
    grub_install(out, grub_core(workdir), p1)
    return out


GRUB_SERIAL = """serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1
terminal_input serial console
terminal_output serial console
set timeout=0
set default=0
"""


def build_grub(out, workdir, default=0):
    """default 0: kernel from FAT, initramfs from ext2; 1: both from ext2 (guest grub-ext2)."""
    vmlinuz, initrd = kernel(), initramfs(workdir)
    cfg = GRUB_SERIAL.replace("set default=0", "set default=%d" % default) + """echo "%(m)s from (hd0,msdos1)/boot/grub/grub.cfg"
menuentry "linux: kernel from FAT, initramfs from ext2" {
	echo "VHDBOOT-GRUB loading (hd0,msdos1)/vmlinuz and (hd0,msdos2)/boot/initrd.img"
	linux (hd0,msdos1)/vmlinuz %(args)s vhdboot.guest=grub
	initrd (hd0,msdos2)/boot/initrd.img
}
menuentry "linux: kernel and initramfs from ext2" {
	linux (hd0,msdos2)/boot/vmlinuz %(args)s vhdboot.guest=grub-ext2
	initrd (hd0,msdos2)/boot/initrd.img
}
""" % {"m": GRUB_CFG_MARKER, "args": LINUX_ARGS}
    return grub_disk(out, workdir, cfg, {"vmlinuz": vmlinuz},
                     {"boot/initrd.img": initrd, "boot/vmlinuz": vmlinuz})


def build_memtest(out, workdir):
    if not os.path.exists(MEMTEST_BIN):
        raise BuildError("%s missing (Debian package memtest86+; tools/install-deps.sh)" % MEMTEST_BIN)
    cfg = GRUB_SERIAL + """echo "%s from (hd0,msdos1)/boot/grub/grub.cfg"
menuentry "memtest86+" {
	linux /boot/memtest86+x64.bin console=ttyS0,115200
}
""" % GRUB_CFG_MARKER
    return grub_disk(out, workdir, cfg, {"boot/memtest86+x64.bin": MEMTEST_BIN}, fat_mib=16)


# ------------------------------------------------------------------ SYSLINUX

def build_syslinux(out, workdir):
    vmlinuz, initrd = kernel(), initramfs(workdir)
    p1, n1 = 2048, 32 * MiB // SECTOR
    new_disk(out, p1 + n1)
    with open(SYSLINUX_MBR, "rb") as fh:
        mbr = fh.read()[:440]
    write_at(out, 0, mbr + bytes(0x1B8 - len(mbr)) + partition_table([(p1, n1, 0x06, True)]))
    # (the marker is a comment: it tags the file's sector for the differencing child; SAY output
    # does not reach the serial line before the boot)
    cfg = """SERIAL 0 115200
# %s: /syslinux.cfg
PROMPT 0
TIMEOUT 0
DEFAULT linux
LABEL linux
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND %s vhdboot.guest=syslinux
""" % (SYSLINUX_CFG_MARKER, LINUX_ARGS)
    fat = fat_image(os.path.join(workdir, "sys.fat"), n1, p1, "VHDSYSLNX",
                    {"vmlinuz": vmlinuz, "initrd.img": initrd, "syslinux.cfg": cfg})
    run(["syslinux", "--install", fat])
    copy_into(out, p1, fat)
    os.unlink(fat)
    return out


# ------------------------------------------------------------------ DOS-style chain (our nasm code)

def nasm(src, out):
    run(["nasm", "-f", "bin", "-o", out, src])
    with open(out, "rb") as fh:
        return fh.read()


def build_doschain(out, workdir):
    d = os.path.join(HERE, "doschain")
    mbr = nasm(os.path.join(d, "mbr.asm"), os.path.join(workdir, "mbr.bin"))
    pbr = bytearray(nasm(os.path.join(d, "pbr.asm"), os.path.join(workdir, "pbr.bin")))
    s2 = nasm(os.path.join(d, "stage2.asm"), os.path.join(workdir, "stage2.bin"))
    n = DOS_DISK_SECTORS - DOS_PART_START
    new_disk(out, DOS_DISK_SECTORS)
    write_at(out, 0, mbr[:0x1B8] + partition_table([(DOS_PART_START, n, 0x06, True)]))
    struct.pack_into("<I", pbr, 0x1C, DOS_PART_START)                 # hidden sectors
    struct.pack_into("<I", pbr, 0x20, n)                              # total sectors
    struct.pack_into("<IH", pbr, 0x3E, DOS_S2_ABS - DOS_PART_START, DOS_S2_COUNT)
    write_at(out, DOS_PART_START, bytes(pbr))
    body = bytearray(s2)
    for i in range(len(s2) // SECTOR, DOS_S2_COUNT):
        sec = bytearray(SECTOR)
        sec[0:6] = b"DCS2" + struct.pack("<H", i)
        text = ("DOSCHAIN-STAGE2 sector %d of %d at LBA %d" % (i, DOS_S2_COUNT, DOS_S2_ABS + i)).encode()
        sec[8:8 + len(text)] = text
        body += sec
    write_at(out, DOS_S2_ABS, bytes(body))
    return out


# ------------------------------------------------------------------ catalogue

GUESTS = {
    # name: (builder, marker on serial, child markers: strings whose sectors live in the differencing child)
    "grub": (build_grub, LINUX_MARKER, [GRUB_CFG_MARKER.encode(), LINUX_MARKER.encode()]),
    "grub-ext2": (lambda out, work: build_grub(out, work, default=1), LINUX_MARKER,
                  [GRUB_CFG_MARKER.encode(), LINUX_MARKER.encode()]),
    "syslinux": (build_syslinux, LINUX_MARKER, [SYSLINUX_CFG_MARKER.encode(), LINUX_MARKER.encode()]),
    "memtest": (build_memtest, "Memtest86+", [GRUB_CFG_MARKER.encode()]),
    "doschain": (build_doschain, DOS_MARKER, [b"DOSCHAIN-STAGE2"]),
}


def build(name, outdir):
    """Build guest name's raw disk in outdir; returns its path."""
    builder = GUESTS[name][0]
    work = os.path.join(outdir, name + ".work")
    os.makedirs(work, exist_ok=True)
    out = os.path.join(outdir, name + ".raw")
    builder(out + ".tmp", work)
    os.replace(out + ".tmp", out)
    shutil.rmtree(work, ignore_errors=True)
    return out


# ------------------------------------------------------------------ VHDs

def marker_runs(raw, markers):
    """Sorted, merged [(lba, sectors)] of every sector of raw holding one of markers."""
    lbas = set()
    with open(raw, "rb") as fh:
        data = fh.read()
    for m in markers:
        pos = data.find(m)
        while pos >= 0:
            for lba in range(pos // SECTOR, (pos + len(m) - 1) // SECTOR + 1):
                lbas.add(lba)
            pos = data.find(m, pos + 1)
    runs = []
    for lba in sorted(lbas):
        if runs and runs[-1][0] + runs[-1][1] == lba:
            runs[-1][1] += 1
        else:
            runs.append([lba, 1])
    return [tuple(r) for r in runs]


def make_vhds(raw, markers, outdir, vhdtool=VHDTOOL, kinds=("fixed", "dynamic", "diff")):
    """raw -> {kind: path}: fixed, dynamic (2 MiB blocks), diff (a differencing child over a dynamic
    parent "<name>-parent.vhd" in which the sectors holding markers are zeroed; the child holds them)."""
    name = os.path.splitext(os.path.basename(raw))[0]
    out = {}
    for kind in kinds:
        path = os.path.join(outdir, "%s-%s.vhd" % (name, kind))
        if os.path.exists(path):
            os.unlink(path)
        if kind in ("fixed", "dynamic"):
            run([vhdtool, "convert", "-f", "raw", "-O", kind, raw, path])
        elif kind == "diff":
            runs = marker_runs(raw, markers)
            if not runs:
                raise BuildError("%s: none of %r found: nothing to put in the child" % (raw, markers))
            base = os.path.join(outdir, "%s-base.raw" % name)
            shutil.copyfile(raw, base)
            with open(base, "r+b") as fh:
                for lba, n in runs:
                    fh.seek(lba * SECTOR)
                    fh.write(bytes(n * SECTOR))
            parent = os.path.join(outdir, "%s-parent.vhd" % name)
            if os.path.exists(parent):
                os.unlink(parent)
            run([vhdtool, "convert", "-f", "raw", "-O", "dynamic", base, parent])
            os.unlink(base)
            run([vhdtool, "create", "-p", parent, path])
            with open(raw, "rb") as fh:
                for lba, n in runs:
                    fh.seek(lba * SECTOR)
                    run([vhdtool, "write", path, lba], input=fh.read(n * SECTOR))
            out["diff_runs"] = runs
            out["parent"] = parent
        else:
            raise ValueError(kind)
        out[kind] = path
    return out


def make_vhdxs(raw, markers, outdir, vhdtool=VHDTOOL):
    """raw -> {vhdx-fixed, vhdx-diff, vhdx-parent: path} made by vhdtool: a fixed VHDX, and a differencing VHDX
    child (vhdtool create -p, 2 MiB blocks) over a dynamic VHDX parent (1 MiB blocks) in which the sectors holding
    markers are zeroed (the child holds them, written with vhdtool write)."""
    name = os.path.splitext(os.path.basename(raw))[0]
    out = {k: os.path.join(outdir, "%s-%s.vhdx" % (name, k)) for k in ("vhdx-fixed", "vhdx-diff", "vhdx-parent")}
    for path in out.values():
        if os.path.exists(path):
            os.unlink(path)
    run([vhdtool, "convert", "-f", "raw", "-O", "vhdx-fixed", raw, out["vhdx-fixed"]])
    runs = marker_runs(raw, markers)
    if not runs:
        raise BuildError("%s: none of %r found: nothing to put in the child" % (raw, markers))
    base = os.path.join(outdir, "%s-vxbase.raw" % name)
    shutil.copyfile(raw, base)
    with open(base, "r+b") as fh:
        for lba, n in runs:
            fh.seek(lba * SECTOR)
            fh.write(bytes(n * SECTOR))
    run([vhdtool, "convert", "-f", "raw", "-O", "vhdx-dynamic", "-b", "1M", base, out["vhdx-parent"]])
    os.unlink(base)
    run([vhdtool, "create", "-p", out["vhdx-parent"], out["vhdx-diff"]])
    with open(raw, "rb") as fh:
        for lba, n in runs:
            fh.seek(lba * SECTOR)
            run([vhdtool, "write", out["vhdx-diff"], lba], input=fh.read(n * SECTOR))
    return out


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)
    for name in argv[2:] or list(GUESTS):
        print(build(name, outdir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
