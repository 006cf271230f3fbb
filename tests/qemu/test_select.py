"""test_select.py: end-to-end: vhdboot finds VHDs in partitions, on FAT file systems and in GRUB modules, follows parent chains, and chooses through vhd= or the menu (QEMU TCG).

Disks are built at test time with sfdisk, mkfs.fat and mtools (no loop mounts):
  gpt.img  GPT: 1 FAT32 "Basic data" (48 MiB), 2 a partition whose content is a fixed VHD
           FAT32: /vhd/fixed.vhd, /images/a-rather-long-file-name-dynamic.vhd, and a three-level
           differencing chain across two folders: /images/leaf.vhd -> /images/chain/middle.vhd
           (its W2ru locator broken, found through W2ku "C:\\vhd\\base-images\\base.vhd")
           -> /vhd/base-images/base.vhd
  mbr.img  MBR: 1 FAT16 with /images/fragmented-fixed.vhd (scattered over 40 holes), /vhd/orphan.vhd
           (its parent is missing), /vhd/mismatch.vhd (its parent was re-created: other unique id)
           and /vhd/mismatch-parent.vhd; 5 (logical) FAT16 with /grow.vhd (dynamic, must grow)
Every image holds tests/qemu/progs/int13test.asm at LBA 0 and pseudo-random data; the guest's
checksums of the whole virtual disk must match what the host computes.
"""
import json
import os
import random
import re
import shutil
import struct
import subprocess

import pytest

import firmware_harness as fh
from firmware_harness import SECTOR

MiB = 1 << 20
VSIZE = 4 * MiB                 # virtual size of the small images
VTOTAL = VSIZE // SECTOR
MT_ENV = dict(os.environ, LC_ALL="C.UTF-8", MTOOLS_SKIP_CHECK="1")
FAIL_STOP = r"No bootable device|Booting from 0000:7c00\s*\n(?:.*\n)*?.*handle_18"

GPT_FAT_START, GPT_FAT_SIZE = 2048, 98304
FIXED_PART_SECTORS = VTOTAL + 1
MBR_P1_START, MBR_P1_SIZE = 2048, 61440
LONG = "a-rather-long-file-name-dynamic.vhd"


# ------------------------------------------------------------------ helpers

def tool(args, input=None):
    p = subprocess.run([str(a) for a in args], input=input, capture_output=True, env=MT_ENV, timeout=300)
    assert p.returncode == 0, "$ %s -> %d\n%s%s" % (" ".join(map(str, args)), p.returncode,
                                                     p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))
    return p.stdout.decode(errors="replace")


def img(path, start):
    return "%s@@%d" % (path, start * SECTOR)


def vhdtool(*args, input=None):
    return tool([fh.VHDTOOL] + list(args), input=input)


def prm(total=VTOTAL, xreads=(), memory=False):
    flags = fh.F_BASIC | fh.F_RANGES | (fh.F_XREADS if xreads else 0) | (fh.F_MEMORY if memory else 0)
    return fh.Params(flags=flags, ranges=[(0, total)], xreads=xreads, chunk=64, group=16)


def raw_image(path, seed, xreads=(), memory=False):
    """A VTOTAL-sector raw disk: the guest at LBA 0, pseudo-random data in a few regions."""
    regions = [(16, 1000), (2000, 100), (VTOTAL - 64, 64)]
    return fh.build_raw(str(path), VSIZE, regions, prm(xreads=xreads, memory=memory), seed=seed)


def vhd_from_raw(raw, out, kind, block=None):
    return fh.vhdtool_vhd(str(raw), str(out), kind, block)


def patch(raw_bytes, lba, data):
    b = bytearray(raw_bytes)
    b[lba * SECTOR:lba * SECTOR + len(data)] = data
    return bytes(b)


def rewrite_locator(vhd, code, text):
    """Replace the data of the first parent locator with code (b"W2ru"/b"W2ku") by UTF-16LE text
    (no longer than the old data), fixing data length and header checksum."""
    with open(vhd, "r+b") as fh_:
        fh_.seek(-SECTOR, 2)
        footer = fh_.read(SECTOR)
        hdr_off = struct.unpack(">Q", footer[16:24])[0]
        fh_.seek(hdr_off)
        h = bytearray(fh_.read(1024))
        for i in range(8):
            e = 576 + 24 * i
            if h[e:e + 4] != code:
                continue
            _space, length = struct.unpack(">II", h[e + 4:e + 12])
            off = struct.unpack(">Q", h[e + 16:e + 24])[0]
            new = text.encode("utf-16-le")
            assert len(new) <= length, (text, length)
            fh_.seek(off)
            fh_.write(new + bytes(length - len(new)))
            h[e + 8:e + 12] = struct.pack(">I", len(new))
            h[36:40] = b"\0\0\0\0"
            h[36:40] = struct.pack(">I", (~sum(h)) & 0xFFFFFFFF)
            fh_.seek(hdr_off)
            fh_.write(h)
            return
        raise AssertionError("%s: no %s locator" % (vhd, code))


def restamp(vhd, delta):
    """Move the footer time stamp (end and copy at 0) of a VHD by delta seconds, checksums fixed."""
    size = os.path.getsize(vhd)
    with open(vhd, "r+b") as fh_:
        for off in (0, size - SECTOR):
            fh_.seek(off)
            f = bytearray(fh_.read(SECTOR))
            if f[0:8] != b"conectix":
                continue
            f[24:28] = struct.pack(">I", struct.unpack(">I", f[24:28])[0] + delta)
            f[64:68] = b"\0\0\0\0"
            f[64:68] = struct.pack(">I", (~sum(f)) & 0xFFFFFFFF)
            fh_.seek(off)
            fh_.write(f)


def mshowfat_runs(path, start, name):
    out = tool(["mshowfat", "-i", img(path, start), "::" + name])
    return [(int(a), int(b or a)) for a, b in re.findall(r"<(\d+)(?:-(\d+))?>", out)]


def run_fw(work, drives, cmdline="", send=None, timeout=150, iso=None, fail=False):
    """Boot the ISO with cmdline (an ISO per command line, cached) and the disks [(index, path)]."""
    if iso is None:
        iso = make_iso(work, cmdline)
    kw = dict(stop_on_bios=FAIL_STOP) if fail else {}
    return fh.run_qemu(drives, iso=iso, timeout=timeout, workdir=str(work), send=send, **kw)


_isos = {}


def make_iso(work, cmdline, modules=()):
    key = (cmdline, tuple(modules))
    if key not in _isos:
        out = os.path.join(str(work), "vhdboot-%d.iso" % len(_isos))
        env = dict(os.environ, VHDBOOT_ELF=os.path.join(fh.BUILD, "vhdboot.elf"),
                   VHDBOOT_MODULES=" ".join("%s=%s" % m for m in modules))
        p = subprocess.run(["sh", os.path.join(fh.ROOT, "tools", "mkiso.sh"), cmdline, out], env=env,
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        _isos[key] = out
    return _isos[key]


def check_sums(run, expected_raw, what):
    """The guest booted from 80h and its checksums of the whole disk equal those of expected_raw."""
    ctx = "\n" + run.describe(5000)
    assert not run.timed_out and run.rc == fh.EXIT_DONE, "%s: guest did not finish%s" % (what, ctx)
    log = run.log
    assert log.boot == {"dl": 0x80} and log.guest and log.guest.get("params") == "ok", what + ctx
    assert not log.errs, "%s: read errors %s%s" % (what, log.errs[:3], ctx)
    got = log.sum_records("42")
    exp = fh.expected_sums(expected_raw, [(0, VTOTAL)], 64, 16)
    assert got == exp, "%s: SUM 42 differs from the image's contents%s" % (what, ctx)


def check_refused(run, words):
    """vhdboot printed an error naming words, went back to the BIOS by INT 18h, and started no guest."""
    ctx = "\n" + run.describe()
    fw = fh.firmware_facts(run.serial)
    assert "error" in fw and "int18" in fw, "no vhdboot error / INT 18h" + ctx
    for w in words:
        assert w in fw["error"]["msg"], "the message does not say %r: %r%s" % (w, fw["error"]["msg"], ctx)
    assert "jump" not in fw and "GUEST int13test" not in run.serial, "a guest was started" + ctx
    assert "enter handle_18" in run.seabios[run.seabios.find("Booting from DVD/CD"):], "no INT 18h" + ctx


# ------------------------------------------------------------------ the disks

@pytest.fixture(scope="module")
def work(tmp_path_factory):
    for t in ("sfdisk", "mkfs.fat", "mcopy", "mmd", "mshowfat", "mdel", "fsck.fat", "grub-mkrescue"):
        assert shutil.which(t), "%s missing: tools/install-deps.sh installs it" % t
    fh.run_tool(["make", "-s", "-C", fh.ROOT, "build/guest/int13test.bin", "build/vhdtool", "kernel"])
    return tmp_path_factory.mktemp("select")


@pytest.fixture(scope="module")
def gpt(work):
    """The GPT disk; returns {name: expected raw contents file} plus the disk path."""
    w = work
    stage = w / "stage"
    (stage / "vhd" / "base-images").mkdir(parents=True)
    (stage / "images" / "chain").mkdir(parents=True)
    exp = {}
    # plain images
    r1 = raw_image(w / "fixed.raw", 1)
    vhd_from_raw(r1, stage / "vhd" / "fixed.vhd", "fixed")
    exp["/vhd/fixed.vhd"] = r1
    r2 = raw_image(w / "long.raw", 2)
    vhd_from_raw(r2, stage / "images" / LONG, "dynamic", "512K")
    exp["/images/" + LONG] = r2
    # the chain: base (dynamic) <- middle <- leaf, each with its own writes
    r0 = raw_image(w / "base.raw", 3)
    base = stage / "vhd" / "base-images" / "base.vhd"
    mid = stage / "images" / "chain" / "middle.vhd"
    leaf = stage / "images" / "leaf.vhd"
    vhd_from_raw(r0, base, "dynamic", "512K")
    vhdtool("create", "-p", base, mid)
    vhdtool("create", "-p", mid, leaf)
    data = open(r0, "rb").read()
    rnd = random.Random(4)
    for v, writes in ((mid, [(100, 8), (5000, 16)]), (leaf, [(104, 8), (7000, 4)])):
        for lba, n in writes:
            d = rnd.randbytes(n * SECTOR)
            vhdtool("write", v, str(lba), input=d)
            data = patch(data, lba, d)
    rl = w / "leaf.raw"
    rl.write_bytes(data)
    exp["/images/leaf.vhd"] = str(rl)
    # middle finds base only through W2ku (drive letter, backslashes), not through W2ru
    rewrite_locator(mid, b"W2ru", ".\\nowhere\\base.vhd")
    rewrite_locator(mid, b"W2ku", "C:\\vhd\\base-images\\base.vhd")
    # the partition that is itself a fixed VHD
    r3 = raw_image(w / "part.raw", 5)
    pvhd = vhd_from_raw(r3, w / "part.vhd", "fixed")
    assert os.path.getsize(pvhd) == FIXED_PART_SECTORS * SECTOR

    path = str(w / "gpt.img")
    with open(path, "wb") as f:
        f.truncate(64 * MiB)
    tool(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", path], input=(
        "label: gpt\n"
        "start=%d, size=%d, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name=\"Basic data\"\n"
        "size=%d, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"vhd\"\n"
        % (GPT_FAT_START, GPT_FAT_SIZE, FIXED_PART_SECTORS)).encode())
    p2 = json.loads(tool(["sfdisk", "--json", path]))["partitiontable"]["partitions"][1]
    assert p2["size"] == FIXED_PART_SECTORS
    with open(path, "r+b") as f:
        f.seek(p2["start"] * SECTOR)
        f.write(open(pvhd, "rb").read())
    exp["hd0,2"] = r3
    tool(["mkfs.fat", "-F", "32", "-s", "1", "-n", "GPTFAT32", "--offset", str(GPT_FAT_START), path,
          str(GPT_FAT_SIZE // 2)])
    i = img(path, GPT_FAT_START)
    tool(["mmd", "-i", i, "::/vhd", "::/vhd/base-images", "::/images", "::/images/chain"])
    for rel in ("vhd/fixed.vhd", "images/" + LONG, "vhd/base-images/base.vhd", "images/chain/middle.vhd",
                "images/leaf.vhd"):
        tool(["mcopy", "-i", i, str(stage / rel), "::/" + rel])
    return path, exp


@pytest.fixture(scope="module")
def mbr(work):
    """The MBR disk: FAT16 primary (fragmented image, broken chains), FAT16 logical (an image that must grow)."""
    w = work
    exp = {}
    path = str(w / "mbr.img")
    st = w / "stage2"
    st.mkdir()
    with open(path, "wb") as f:
        f.truncate(64 * MiB)
    tool(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", path], input=(
        "label: dos\nstart=%d, size=%d, type=6\nstart=65536, type=5\nstart=67584, size=40960, type=6\n"
        % (MBR_P1_START, MBR_P1_SIZE)).encode())
    tool(["mkfs.fat", "-F", "16", "-s", "4", "-n", "MBRFAT16", "--offset", str(MBR_P1_START), path,
          str(MBR_P1_SIZE // 2)])
    tool(["mkfs.fat", "-F", "16", "-s", "4", "-n", "LOGICAL", "--offset", "67584", path, str(40960 // 2)])
    i = img(path, MBR_P1_START)
    tool(["mmd", "-i", i, "::/images", "::/vhd"])
    # fragment: interleave 1- and 2-cluster files, delete the 1-cluster ones, copy the image into the holes
    cl = 4 * SECTOR
    a, b = w / "one", w / "two"
    a.write_bytes(b"a" * cl)
    b.write_bytes(b"b" * 2 * cl)
    for k in range(40):
        tool(["mcopy", "-i", i, str(a), "::/images/a%02d" % k])
        tool(["mcopy", "-i", i, str(b), "::/images/b%02d" % k])
    tool(["mdel", "-i", i] + ["::/images/a%02d" % k for k in range(40)])
    r = raw_image(w / "frag.raw", 6)
    vhd_from_raw(r, w / "frag.vhd", "fixed")
    tool(["mcopy", "-i", i, str(w / "frag.vhd"), "::/images/fragmented-fixed.vhd"])
    exp["/images/fragmented-fixed.vhd"] = r
    # broken chains
    ro = raw_image(w / "orph.raw", 7)
    vhd_from_raw(ro, st / "gone.vhd", "dynamic", "512K")
    vhdtool("create", "-p", st / "gone.vhd", st / "orphan.vhd")
    vhd_from_raw(ro, st / "mismatch-parent.vhd", "dynamic", "512K")
    vhdtool("create", "-p", st / "mismatch-parent.vhd", st / "mismatch.vhd")
    vhd_from_raw(ro, st / "mismatch-parent.vhd", "dynamic", "512K")     # again: a new unique id
    exp["/vhd/mismatch-parent.vhd"] = ro
    # a parent whose time stamp changed (as if touched by another tool): same id, other stamp
    rt = raw_image(w / "ts.raw", 9)
    vhd_from_raw(rt, st / "stamp-parent.vhd", "dynamic", "512K")
    vhdtool("create", "-p", st / "stamp-parent.vhd", st / "stamp.vhd")
    restamp(st / "stamp-parent.vhd", -3600)
    exp["/vhd/stamp.vhd"] = rt
    for n in ("orphan.vhd", "mismatch.vhd", "mismatch-parent.vhd", "stamp.vhd", "stamp-parent.vhd"):
        tool(["mcopy", "-i", i, str(st / n), "::/vhd/" + n])
    return path, exp


# ------------------------------------------------------------------ tests

def test_fragmented_image_is_fragmented(mbr):
    path, _ = mbr
    runs = mshowfat_runs(path, MBR_P1_START, "/images/fragmented-fixed.vhd")
    assert len(runs) >= 20, "the test image should be scattered, mshowfat says %s" % runs


FILE_CASES = [
    ("gpt", "hd0,1:/vhd/fixed.vhd", "/vhd/fixed.vhd"),
    ("gpt", "hd0,1:/images/" + LONG, "/images/" + LONG),
    ("gpt", "hd0,2", "hd0,2"),
    ("gpt", "/IMAGES/LEAF.VHD", "/images/leaf.vhd"),
    ("mbr", "hd0,1:/images/fragmented-fixed.vhd", "/images/fragmented-fixed.vhd"),
]


@pytest.mark.parametrize("disk,spec,key", FILE_CASES, ids=[c[1] for c in FILE_CASES])
def test_boot_by_vhd_option(work, gpt, mbr, disk, spec, key):
    """vhd=hdN,P:/path, vhd=hdN,P (a partition that is a VHD) and a bare /path (searched on every FAT
    volume, case-insensitive) boot the right image; the guest reads exactly its contents."""
    path, exp = gpt if disk == "gpt" else mbr
    before = fh.sha256(path)
    run = run_fw(work, [(0, path)], "vhd=" + spec)
    check_sums(run, exp[key], spec)
    assert re.search(r"select: drive 80h = \S+ \(vhd= on the command line\)", run.serial), run.describe()
    if key == "/images/leaf.vhd":
        # three members, the middle one found through W2ku with its drive letter stripped
        assert re.search(r"parent /images/chain/middle.vhd \(found through its child's W2ru locator\)", run.serial, re.I) \
            and "parent /vhd/base-images/base.vhd (found through its child's W2ku locator)" in run.serial, run.describe()
    if "fragmented" in key:
        m = re.search(r"vhd: /images/fragmented-fixed.vhd: (\d+) extent\(s\)", run.serial)
        assert m and int(m.group(1)) >= 20, run.describe()
    if spec.startswith("hd0,1:") or spec.startswith("/"):
        # reads only: the disk holding the file system is unchanged
        assert fh.sha256(path) == before, "the disk changed during a read-only boot"


def test_chain_on_usb_stick(work, gpt):
    """The images are files on a FAT partition of a USB stick (XHCI) that only the BIOS can read: found,
    the three-member chain resolved across folders, served through the BIOS backend; the guest reads exactly
    the leaf's contents and the stick is unchanged."""
    path, exp = gpt
    before = fh.sha256(path)
    extra = ["-drive", "file=%s,if=none,id=stick,format=raw" % path, "-device", "qemu-xhci",
             "-device", "usb-storage,drive=stick"]
    run = fh.run_qemu([], iso=make_iso(work, "vhd=/IMAGES/LEAF.VHD"), timeout=150, workdir=str(work), extra=extra)
    check_sums(run, exp["/images/leaf.vhd"], "leaf.vhd on a USB stick")
    assert re.search(r"^disk: hd0 = bios 80h,", run.serial, re.M), run.describe()
    assert "parent /vhd/base-images/base.vhd (found through its child's W2ku locator)" in run.serial, run.describe()
    assert fh.sha256(path) == before, "the stick changed during a read-only boot"


FAST_CASES = [("hd0,2", "hd0,2"), ("hd0,1:/vhd/fixed.vhd", "/vhd/fixed.vhd"),
              ("hd0,1:/images/fragmented-fixed.vhd", "/images/fragmented-fixed.vhd")]


@pytest.mark.parametrize("spec,key", FAST_CASES, ids=[c[0] for c in FAST_CASES])
def test_fixed_through_bios_fast_path(work, gpt, mbr, spec, key):
    """disk=bios: a fixed VHD that is a GPT partition, and one that is a file in one run on FAT32, are served by
    the stub's real-mode AH=42h/43h fast path from their own first sector on the disk (the partition's, the
    file's first cluster), not from sector 0; a fixed VHD scattered over 40 extents is not (its data is no
    plain copy of one range): the guest reads exactly each image's contents either way."""
    path, exp = mbr if "fragmented" in key else gpt
    before = fh.sha256(path)
    run = run_fw(work, [(0, path)], "disk=bios vhd=" + spec)
    check_sums(run, exp[key], spec)
    assert re.search(r"^disk: hd0 = bios 80h,", run.serial, re.M), run.describe()
    m = re.search(r"^resident: 80h: AH=42h and 43h with buffers below [0-9a-f]+ go straight to the BIOS in real "
                  r"mode \(hd0 = BIOS 80h, from its sector (\d+)\)", run.serial, re.M)
    served = re.findall(r"^resident: fast path: (\d+) AH=42h/43h request", run.serial, re.M)
    if "fragmented" in key:
        assert not m and not served, run.describe()
    else:
        assert m and int(m.group(1)) > 0 and served, run.describe()
    if spec.startswith("hd0,1:"):
        assert fh.sha256(path) == before, "the disk changed during a read-only boot"


@pytest.mark.parametrize("mode", ["native", "bios"])
def test_file_on_ahci(work, gpt, mode):
    """A dynamic VHD that is a file on the FAT32 partition of a SATA disk on an AHCI controller: read by the
    native AHCI driver (disk=native) or through the BIOS (disk=bios); the guest reads exactly its contents
    and the disk is unchanged."""
    path, exp = gpt
    before = fh.sha256(path)
    extra = ["-drive", "file=%s,if=none,id=sata,format=raw" % path, "-device", "ahci,id=ahci",
             "-device", "ide-hd,drive=sata,bus=ahci.0"]
    iso = make_iso(work, "disk=%s vhd=/images/%s" % (mode, LONG))
    run = fh.run_qemu([], iso=iso, timeout=150, workdir=str(work), extra=extra)
    check_sums(run, exp["/images/" + LONG], "%s on AHCI (disk=%s)" % (LONG, mode))
    want = r"^disk: hd0 = ahci p0, " if mode == "native" else r"^disk: hd0 = bios 80h,"
    assert re.search(want, run.serial, re.M), run.describe()
    assert len(re.findall(r"^disk: hd\d+ = ", run.serial, re.M)) == 1, "the disk is served once\n" + run.describe()
    assert fh.sha256(path) == before, "the disk changed during a read-only boot"


def test_file_on_nvme_native(work, gpt):
    """The same file on an NVMe disk read by the native NVMe driver (disk=native takes the controller over from
    SeaBIOS): the guest reads exactly its contents and the disk is unchanged."""
    path, exp = gpt
    before = fh.sha256(path)
    extra = ["-drive", "file=%s,if=none,id=ssd,format=raw" % path, "-device", "nvme,drive=ssd,serial=ssd0"]
    run = fh.run_qemu([], iso=make_iso(work, "disk=native vhd=/images/%s" % LONG), timeout=150, workdir=str(work),
                      extra=extra)
    check_sums(run, exp["/images/" + LONG], "%s on NVMe (native)" % LONG)
    assert re.search(r"^disk: hd0 = nvme n1, ", run.serial, re.M), run.describe()
    assert fh.sha256(path) == before, "the disk changed during a read-only boot"


def test_menu_digit_over_serial(work, gpt):
    """No vhd=: every image of the GPT disk is listed (kind, size, chain); typing its number on COM1
    boots the chosen one."""
    path, exp = gpt
    target = "hd0,1:/images/" + LONG
    send = [(r"^menu: (\d+)  " + re.escape(target) + " ", lambda m: m.group(1).encode())]
    run = run_fw(work, [(0, path)], "", send=send)
    check_sums(run, exp["/images/" + LONG], "menu digit")
    menu = {n: rest for _i, n, rest in re.findall(r"^menu: (\d+)  (\S+)  (.*)$", run.serial, re.M)}
    assert set(menu) == {"hd0,1:/vhd/fixed.vhd", target, "hd0,1:/images/leaf.vhd", "hd0,2"}, run.describe()
    assert "child of middle.vhd (chain of 3)" in menu["hd0,1:/images/leaf.vhd"], menu
    assert menu["hd0,2"].startswith("partition, fixed, 4 MiB"), menu
    assert menu["hd0,1:/vhd/fixed.vhd"].startswith("file, fixed, 4 MiB"), menu
    assert re.search(r"menu: chose \d+: " + re.escape(target), run.serial) and \
        "select: drive 80h = %s (chosen in the menu)" % target in run.serial, run.describe()


def test_menu_arrows_over_serial(work, gpt):
    """ESC [ B (down) twice and Enter boot the third line."""
    path, exp = gpt
    send = [(r"^menu: booting 1 in", b"\x1b[B\x1b[B\x1b[A\x1b[B\r")]
    run = run_fw(work, [(0, path)], "timeout=30", send=send)
    lines = dict(re.findall(r"^menu: (\d+)  (\S+)  ", run.serial, re.M))
    m = re.search(r"menu: chose (\d+): (\S+)", run.serial)
    assert m and m.group(1) == "3" and lines["3"] == m.group(2), run.describe()
    name = m.group(2)
    key = name if name == "hd0,2" else name.split(":", 1)[1]
    check_sums(run, exp[key], "menu arrows")


def test_menu_keyboard(work, gpt):
    """The PS/2 keyboard drives the menu too (keys typed through QEMU's QMP send-key): Down, Down, Enter."""
    path, exp = gpt
    sock = os.path.join(str(work), "qmp-%d.sock" % os.getpid())

    def keys(_m):
        import json as j
        import socket
        import time
        c = socket.socket(socket.AF_UNIX)
        c.connect(sock)
        f = c.makefile("rw")
        f.readline()
        for cmd in [{"execute": "qmp_capabilities"}] + [
                {"execute": "send-key", "arguments": {"keys": [{"type": "qcode", "data": k}]}}
                for k in ("down", "down", "ret")]:
            f.write(j.dumps(cmd) + "\n")
            f.flush()
            f.readline()
            time.sleep(0.2)
        c.close()
        return b""

    iso = make_iso(work, "timeout=30")
    run = fh.run_qemu([(0, path)], iso=iso, timeout=150, workdir=str(work),
                      send=[(r"^menu: booting 1 in", keys)], extra=["-qmp", "unix:%s,server=on,wait=off" % sock])
    lines = dict(re.findall(r"^menu: (\d+)  (\S+)  ", run.serial, re.M))
    m = re.search(r"menu: chose (\d+): (\S+)", run.serial)
    assert m and m.group(1) == "3" and lines["3"] == m.group(2), run.describe()
    assert "select: drive 80h = %s (chosen in the menu)" % m.group(2) in run.serial
    name = m.group(2)
    check_sums(run, exp[name if name == "hd0,2" else name.split(":", 1)[1]], "menu keyboard")


def test_menu_timeout_and_reasons(work, mbr):
    """No key: after timeout= seconds the first image boots; broken chains are listed as skipped,
    each with the check that failed."""
    path, exp = mbr
    run = run_fw(work, [(0, path)], "timeout=1")
    assert "menu: timeout after 1 s: booting 1" in run.serial, run.describe()
    assert "menu: 1  hd0,1:/vhd/mismatch-parent.vhd  file, dynamic, 4 MiB" in run.serial, run.describe()
    check_sums(run, exp["/vhd/mismatch-parent.vhd"], "menu timeout")
    assert re.search(r"select: skipped hd0,1:/vhd/orphan.vhd: the parent of /vhd/orphan.vhd was not found "
                     r"\(parent-not-found\): tried /vhd/gone.vhd", run.serial), run.describe()
    assert re.search(r"select: skipped hd0,1:/vhd/mismatch.vhd: parent unique id mismatch", run.serial), run.describe()


@pytest.mark.parametrize("name,words", [
    ("orphan", ["was not found", "parent-not-found", "/vhd/gone.vhd"]),
    ("mismatch", ["parent unique id mismatch", "parent-uuid", "/vhd/mismatch-parent.vhd"]),
])
def test_broken_chain_boots_nothing(work, mbr, name, words):
    """A child whose parent is missing, or whose parent has another unique id: the message names the
    check, INT 18h, no guest, nothing written."""
    path, _ = mbr
    before = fh.sha256(path)
    run = run_fw(work, [(0, path)], "vhd=hd0,1:/vhd/%s.vhd" % name, fail=True, timeout=90)
    check_refused(run, words)
    assert fh.sha256(path) == before


def test_parent_timestamp(work, mbr):
    """A parent whose time stamp differs from the child's record: refused naming the check;
    vhd_ignore_timestamp accepts it and the chain reads right."""
    path, exp = mbr
    run = run_fw(work, [(0, path)], "vhd=hd0,1:/vhd/stamp.vhd", fail=True, timeout=90)
    check_refused(run, ["parent time stamp mismatch", "parent-timestamp", "vhd_ignore_timestamp"])
    run = run_fw(work, [(0, path)], "vhd=hd0,1:/vhd/stamp.vhd vhd_ignore_timestamp")
    check_sums(run, exp["/vhd/stamp.vhd"], "vhd_ignore_timestamp")


def test_two_images_at_once(work, gpt):
    """vhd=A+B: A is 80h, B is 81h, the physical disk 82h; each reads its own contents."""
    path, exp = gpt
    a_raw = exp["/vhd/fixed.vhd"]
    # the guest in image A reads B through 81h and the GPT disk through 82h
    xr = [(0x81, 0, 16), (0x81, 2000, 64), (0x82, 0, 1), (0x82, GPT_FAT_START, 1)]
    w = work / "two-images"
    w.mkdir(exist_ok=True)
    ra = raw_image(w / "a.raw", 1, xreads=xr)
    assert open(ra, "rb").read()[2 * SECTOR:] == open(a_raw, "rb").read()[2 * SECTOR:]
    va = vhd_from_raw(ra, w / "a.vhd", "fixed")
    disk = str(w / "gpt2.img")
    shutil.copyfile(path, disk)
    tool(["mcopy", "-o", "-i", img(disk, GPT_FAT_START), va, "::/vhd/fixed.vhd"])
    run = run_fw(work, [(0, disk)], "vhd=hd0,1:/vhd/fixed.vhd+hd0,1:/images/" + LONG)
    check_sums(run, ra, "two images: 80h")
    b_raw = exp["/images/" + LONG]
    for drive, lba, n in xr:
        x = run.log.one("XREAD", dl=drive, lba=lba)
        want = fh.chunk_hash(fh.read_sectors(b_raw if drive == 0x81 else disk, lba, n))
        assert x["cf"] == 0 and x["fnv"] == want, "drive %02xh LBA %d: %s%s" % (drive, lba, x, run.describe())
    assert "select: drive 81h = hd0,1:/images/%s" % LONG in run.serial
    assert "int13: drive 81h = VHD" in run.serial, run.describe()


def test_superfloppy_single_image(work, tmp_path):
    """An unpartitioned FAT disk with one VHD in /images: found without vhd= and booted at once."""
    r = raw_image(tmp_path / "sf.raw", 10)
    v = vhd_from_raw(r, tmp_path / "sf.vhd", "dynamic", "512K")
    disk = str(tmp_path / "superfloppy.img")
    with open(disk, "wb") as f:
        f.truncate(16 * MiB)
    tool(["mkfs.fat", "-F", "16", "-s", "4", "-n", "FLOPPYISH", disk])
    tool(["mmd", "-i", disk, "::/images"])
    tool(["mcopy", "-i", disk, v, "::/images/Only One.vhd"])
    run = run_fw(work, [(0, disk)], "")
    check_sums(run, r, "superfloppy")
    assert 'select: hd0: FAT16 "FLOPPYISH": 1 *.vhd, *.vhdx file(s)' in run.serial, run.describe()
    assert "select: drive 80h = hd0:/images/Only One.vhd (the only image found)" in run.serial, run.describe()


@pytest.mark.parametrize("cmdline", ["", "vhd=module0"], ids=["auto", "vhd=module0"])
def test_module(work, cmdline):
    """A VHD loaded by GRUB (`module`) boots from RAM with no disk at all; its memory is reserved in E820."""
    w = work / ("mod-" + (cmdline.replace("=", "-") or "auto"))
    w.mkdir()
    r = raw_image(w / "m.raw", 8, memory=True)
    v = vhd_from_raw(r, w / "m.vhd", "fixed")
    iso = make_iso(work, cmdline, modules=[(v, "/images/m.vhd")])
    run = fh.run_qemu([], iso=iso, timeout=150, workdir=str(work))
    check_sums(run, r, "module")
    m = re.search(r"select: module0 \"[^\"]*\" at ([0-9a-f]{8})-([0-9a-f]{8})", run.serial)
    assert m, run.describe()
    lo, hi = int(m.group(1), 16), int(m.group(2), 16) + 1
    assert "guest writes stay in RAM and are LOST at reset" in run.serial
    assert any(t != 1 and b <= lo and hi <= b + n for b, n, t in run.log.e820()), \
        "no reserved E820 entry covers the module %x-%x: %s" % (lo, hi, run.log.e820())
    assert not any(t == 1 and b < hi and lo < b + n for b, n, t in run.log.e820()), run.log.e820()


def test_grow_refused_fat_untouched(work, mbr):
    """A dynamic VHD file on FAT that must grow, with grow=no: the guest's write into an existing block works, the
    one needing a new block gets status CCh with a log line naming the file (growth: tests/qemu/test_grow_guest.py); the FAT and everything
    outside the file's clusters stay byte-identical, fsck.fat -n is clean."""
    import writeguest as wg
    fh.run_tool(["make", "-s", "-C", fh.ROOT, wg.GUEST_BIN])
    src, _ = mbr
    w = work / "grow"
    w.mkdir()
    disk = str(w / "mbr.img")
    shutil.copyfile(src, disk)
    ops = [(wg.WRITE, wg.FN_43, 100, 4, 0x11), (wg.WRITE, wg.FN_43, 6000, 2, 0x22), (wg.READ, 0, 100, 4, 0)]
    v = wg.make_vhd(str(w / "grow.vhd"), "dynamic", VSIZE, wg.Params(ops=ops), block="512K")
    start = 67584
    tool(["mcopy", "-i", img(disk, start), v, "::/grow.vhd"])
    runs = mshowfat_runs(disk, start, "/grow.vhd")
    before = open(disk, "rb").read()
    run = run_fw(work, [(0, disk)], "vhd=hd0,5:/grow.vhd grow=no", timeout=120)
    ctx = run.describe()
    recs = wg.records(run.serial)
    writes = [r for k, r in recs if k == "W"]
    assert len(writes) == 2, ctx
    assert writes[0]["cf"] == 0 and writes[0]["ah"] == 0, ctx
    assert writes[1]["cf"] == 1 and writes[1]["ah"] == 0xCC, ctx
    assert re.search(r"vhd: hd0,5:/grow.vhd: no room to allocate block \d+: the image cannot grow \(a file grows "
                     r"only on FAT16/32 or exFAT, never on NTFS or with grow=no", run.serial), ctx
    assert "the file can't grow (grow=no, or opened read-only)" in run.serial, ctx
    after = open(disk, "rb").read()
    # sectors outside the file's clusters are identical (the FAT and directories included)
    bs = before[start * SECTOR:start * SECTOR + SECTOR]
    spc, reserved, nfats, rootents, fatsz = bs[13], struct.unpack("<H", bs[14:16])[0], bs[16], \
        struct.unpack("<H", bs[17:19])[0], struct.unpack("<H", bs[22:24])[0]
    data_start = start + reserved + nfats * fatsz + rootents * 32 // SECTOR
    inside = bytearray(len(before) // SECTOR)
    for a, b in runs:
        for c in range(a, b + 1):
            for s in range(spc):
                inside[data_start + (c - 2) * spc + s] = 1
    changed = [s for s in range(len(inside)) if before[s * SECTOR:(s + 1) * SECTOR] != after[s * SECTOR:(s + 1) * SECTOR]]
    assert changed and all(inside[s] for s in changed), "sectors outside the file changed: %s" % \
        [s for s in changed if not inside[s]][:10]
    part = w / "logical.img"
    with open(part, "wb") as f:
        f.write(after[start * SECTOR:(start + 40960) * SECTOR])
    p = subprocess.run(["fsck.fat", "-n", str(part)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    # mode=snapshot: the same writes go to RAM, both succeed, the disk does not change at all
    before = fh.sha256(disk)
    run = run_fw(work, [(0, disk)], "vhd=hd0,5:/grow.vhd mode=snapshot", timeout=120)
    writes = [r for k, r in wg.records(run.serial) if k == "W"]
    assert len(writes) == 2 and all(w_["cf"] == 0 and w_["ah"] == 0 for w_ in writes), run.describe()
    assert fh.sha256(disk) == before, "mode=snapshot wrote to the disk"


def test_grubcfg(work, tmp_path):
    """vhdtool grubcfg DIR: one entry per VHD under DIR (recursively, sorted), paths relative to DIR
    with a leading '/', --prefix, names vhd= cannot carry skipped; --help."""
    d = tmp_path / "tree"
    (d / "images" / "sub").mkdir(parents=True)
    raw = tmp_path / "x.raw"
    raw.write_bytes(bytes(MiB))
    vhd_from_raw(raw, d / "images" / "sub" / "b.vhd", "fixed")
    vhd_from_raw(raw, d / "A.VHD", "dynamic")
    shutil.copyfile(d / "A.VHD", d / "images" / "with space.vhd")
    (d / "images" / "notavhd.vhd").write_bytes(bytes(4096))
    p = subprocess.run([fh.VHDTOOL, "grubcfg", str(d)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert re.findall(r"multiboot (\S+) vhd=(\S+)", p.stdout) == [
        ("/boot/vhdboot.elf", "/A.VHD"), ("/boot/vhdboot.elf", "/images/sub/b.vhd")], p.stdout
    assert "with space.vhd" in p.stderr and "notavhd.vhd" in p.stderr
    p = subprocess.run([fh.VHDTOOL, "grubcfg", "--prefix", "/data/", "--args", "timeout=0", str(d / "images")],
                       capture_output=True, text=True)
    assert 'menuentry "vhdboot: /data/sub/b.vhd" {\n\tmultiboot /boot/vhdboot.elf vhd=/data/sub/b.vhd timeout=0\n}' \
        in p.stdout, p.stdout
    p = subprocess.run([fh.VHDTOOL, "grubcfg", "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "usage: vhdtool grubcfg" in p.stdout
    p = subprocess.run([fh.VHDTOOL, "grubcfg", str(tmp_path / "empty-none")], capture_output=True, text=True)
    assert p.returncode == 2


def vhdx_from_raw(raw, out, sub="dynamic", block="1M"):
    tool(["qemu-img", "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=%s,block_size=%s" % (sub, block),
          str(raw), str(out)])
    return str(out)


def test_vhdx_module(work):
    """A dynamic VHDX loaded by GRUB (`module /images/m.vhdx`) boots from RAM: found by its identifier."""
    w = work / "mod-vhdx"
    w.mkdir()
    r = raw_image(w / "m.raw", 21, memory=True)
    v = vhdx_from_raw(r, w / "m.vhdx")
    run = fh.run_qemu([], iso=make_iso(work, "", modules=[(v, "/images/m.vhdx")]), timeout=150, workdir=str(work))
    check_sums(run, r, "VHDX module")
    assert re.search(r"^vhdx: 80h: .*: dynamic VHDX", run.serial, re.M), run.describe()


def test_vhdx_partition_and_file(work):
    """An MBR disk: partition 1 holds a fixed VHDX (the partition's content is the file), partition 2 is FAT32
    with /images/d.vhdx (dynamic): the scan lists both; vhd=hd0,1 and vhd=/images/d.vhdx boot each, the guest
    reads exactly its raw image, the disk is unchanged (mode=ro)."""
    w = work / "vhdx-parts"
    w.mkdir()
    r1, r2 = raw_image(w / "p1.raw", 22), raw_image(w / "p2.raw", 23)
    v1 = vhdx_from_raw(r1, w / "p1.vhdx", "fixed", "8M")
    v2 = vhdx_from_raw(r2, w / "d.vhdx")
    p1_sectors = (os.path.getsize(v1) + SECTOR - 1) // SECTOR
    p2_start, p2_sectors = 2048 + p1_sectors + 2048, 131072
    disk = str(w / "disk.img")
    with open(disk, "wb") as f:
        f.truncate((p2_start + p2_sectors + 2048) * SECTOR)
    tool(["sfdisk", "-q", disk], input=("label: dos\n2048,%d,83\n%d,%d,c\n" % (p1_sectors, p2_start, p2_sectors)).encode())
    with open(v1, "rb") as src, open(disk, "r+b") as dst:
        dst.seek(2048 * SECTOR)
        dst.write(src.read())
    fat = str(w / "fat.img")
    with open(fat, "wb") as f:
        f.truncate(p2_sectors * SECTOR)
    tool(["mkfs.fat", "-F", "32", "-n", "VX", fat])
    tool(["mmd", "-i", fat, "::/images"])
    tool(["mcopy", "-i", fat, v2, "::/images/d.vhdx"])
    with open(fat, "rb") as src, open(disk, "r+b") as dst:
        dst.seek(p2_start * SECTOR)
        dst.write(src.read())
    before = fh.sha256(disk)
    for cmdline, raw, what in (("vhd=hd0,1 mode=ro", r1, "partition"), ("vhd=/images/d.vhdx mode=ro", r2, "file")):
        run = run_fw(work, [(0, disk)], cmdline)
        check_sums(run, raw, "VHDX " + what)
        assert re.search(r"^vhdx: 80h: .*: %s VHDX" % ("fixed" if what == "partition" else "dynamic"),
                         run.serial, re.M), run.describe()
    assert fh.sha256(disk) == before
