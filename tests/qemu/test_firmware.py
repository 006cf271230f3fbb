"""test_firmware.py: end-to-end: the int13test guest under SeaBIOS alone (baseline) and booted from VHDs through vhdboot (QEMU TCG)."""
import os
import re
import subprocess

import pytest

import firmware_harness as fh
from firmware_harness import SECTOR

MiB, GiB = 1 << 20, 1 << 30

# Small image: everything hashed. Data in scattered regions, zeros elsewhere, so dynamic
# images get allocated, unallocated and partly used blocks for every block size.
SMALL_SIZE = 32 * MiB
SMALL_TOTAL = SMALL_SIZE // SECTOR
SMALL_REGIONS = [(16, 2032), (3000, 200), (8180, 30), (16383, 2), (20000, 4000), (40000, 1),
                 (SMALL_TOTAL - 300, 300)]
SMALL_RANGES = [(0, SMALL_TOTAL)]
SMALL_CHS = (2000, 64)          # crosses tracks and the end of a data region

# Big sparse image: selected ranges (start, 1 GiB, 4 GiB, block boundaries, unallocated, the end).
BIG_SIZE = 9 * GiB
BIG_TOTAL = BIG_SIZE // SECTOR
BIG_REGIONS = [(16, 2032), ((1 << 21) - 16, 32), ((1 << 23) - 64, 128), (5000000, 7), (12345678, 100),
               (BIG_TOTAL - 256, 256)]
BIG_RANGES = [(0, 4096), ((1 << 21) - 64, 128), ((1 << 23) - 128, 256), (5000000 - 64, 192),
              (12000000, 4096), (12345600, 256), (BIG_TOTAL - 512, 512)]
BIG_CHS = (1000, 64)

# Second, plain (non-VHD) disk.
RAW2_SIZE = 4 * MiB


def xreads(total):
    """Reads of drives 81h/82h: LBA 0 and LBA `total` (= a fixed VHD's footer on its physical disk)."""
    return [(0x81, 0, 1), (0x81, total, 1), (0x82, 100, 8), (0x82, total, 1)]


def params(ranges, chs, total):
    return fh.Params(ranges=ranges, chs=chs, xreads=xreads(total), chunk=64, group=16)


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def guest_bin():
    """build/guest/int13test.bin, (re)built through the Makefile rule."""
    fh.run_tool(["make", "-s", "-C", fh.ROOT, "build/guest/int13test.bin"])
    return fh.GUEST_BIN


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("fw")


@pytest.fixture(scope="module")
def small_raw(work, guest_bin):
    return fh.build_raw(str(work / "small.raw"), SMALL_SIZE, SMALL_REGIONS,
                        params(SMALL_RANGES, SMALL_CHS, SMALL_TOTAL), seed=11)


@pytest.fixture(scope="module")
def big_raw(work, guest_bin):
    return fh.build_raw(str(work / "big.raw"), BIG_SIZE, BIG_REGIONS,
                        params(BIG_RANGES, BIG_CHS, BIG_TOTAL), seed=12)


@pytest.fixture(scope="module")
def raw2(work):
    return fh.build_plain_disk(str(work / "raw2.img"), RAW2_SIZE, seed=13)


class Cache(dict):
    """One QEMU run per key per module, shared by the tests that look at it."""

    def get_or(self, key, fn):
        if key not in self:
            self[key] = fn()
        return self[key]


@pytest.fixture(scope="module")
def runs():
    return Cache()


# ------------------------------------------------------------------ checks

def check_guest(run, disk, total, prm, drive_map, hd_count):
    """Everything the guest reports must match what the host computes from the images.
    disk: raw image behind 80h; drive_map: {drive: file} of the other drives; hd_count: hard disks."""
    log = run.log
    assert not run.timed_out, "QEMU timed out\n" + run.describe()
    assert run.rc == fh.EXIT_DONE, "guest did not finish (exit %s, want %d)\n%s" % (run.rc, fh.EXIT_DONE, run.describe())
    assert log.done and log.boot == {"dl": 0x80}, run.describe()
    assert log.guest and log.guest.get("params") == "ok", run.describe()
    ctx = "\n" + run.describe(3000)

    t41 = log.one("41", dl=0x80)
    assert t41["cf"] == 0 and t41["bx"] == 0xAA55 and t41["cx"] & 1, "AH=41h: %s%s" % (t41, ctx)

    t08 = log.one("08", dl=0x80)
    assert t08["cf"] == 0 and t08["ax"] >> 8 == 0, "AH=08h: %s%s" % (t08, ctx)
    cyls, heads, spt, ndisks = fh.decode_08(t08)
    assert 1 <= spt <= 63 and 1 <= heads <= 255 and 1 <= cyls <= 1024, "AH=08h geometry %s%s" % ((cyls, heads, spt), ctx)
    assert cyls * heads * spt <= total, "AH=08h geometry %s exceeds %d sectors%s" % ((cyls, heads, spt), total, ctx)
    assert ndisks == hd_count, "AH=08h DL=%d hard disks, want %d%s" % (ndisks, hd_count, ctx)

    for t in log.all("08"):
        if t["cf"] == 0:
            assert t["dx"] & 0xFF == hd_count, \
                "AH=08h on drive %02xh: DL=%d hard disks, want %d (as for every drive)%s" % (t["dl"], t["dx"] & 0xFF, hd_count, ctx)

    t15 = log.one("15", dl=0x80)
    cxdx = (t15["cx"] << 16) | t15["dx"]
    assert t15["cf"] == 0 and t15["ax"] >> 8 == 3 and 0 < cxdx <= total, "AH=15h: %s%s" % (t15, ctx)

    t48 = log.one("48", dl=0x80)
    assert t48["cf"] == 0 and t48["ax"] >> 8 == 0, "AH=48h: %s%s" % (t48, ctx)
    assert t48["sectors"] == total and t48["bps"] == 512, "AH=48h: %s, want %d sectors%s" % (t48, total, ctx)
    assert t48["size"] in (0x1A, 0x1E, 0x42), "AH=48h size %s%s" % (t48, ctx)
    chs_valid = bool(t48["flags"] & 2)
    assert chs_valid == (total <= fh.CHS_VALID_LIMIT), "AH=48h CHS-valid flag %s for %d sectors%s" % (t48, total, ctx)
    if chs_valid:
        assert t48["cyl"] * t48["heads"] * t48["spt"] <= total, "AH=48h geometry%s" % ctx
    t48s = log.one("48S")
    assert t48s["cf"] == 0 and t48s["size"] == 0x1A and t48s["over"] == 0, \
        "AH=48h with a 1Ah buffer must fill 1Ah bytes, no more: %s%s" % (t48s, ctx)

    bad = log.one("BADFN")
    assert bad["cf"] == 1 and bad["ax"] >> 8 == 0x01, "AH=50h: %s%s" % (bad, ctx)

    oor = log.all("OOR")
    want = [(total, 1), (total - 1, 2), (0xFFFF00000000, 1), (2 ** 64 - 1, 2)]
    assert [(o["lba"], o["n"]) for o in oor] == want, "OOR records %s%s" % (oor, ctx)
    for o in oor:
        assert o["cf"] == 1 and o["ax"] >> 8 != 0, "out-of-range read must fail: %s%s" % (o, ctx)
        if o["lba"] == total - 1:
            assert o["dapcnt"] <= 1 and o["dirty"] & ~((1 << o["dapcnt"]) - 1) == 0, \
                "straddling read: wrote sectors it did not report: %s%s" % (o, ctx)
        else:
            assert o["dirty"] == 0, "out-of-range read wrote to the buffer: %s%s" % (o, ctx)
    t01 = log.one("01")
    assert t01["ax"] >> 8 == oor[0]["ax"] >> 8 and t01["bda74"] in (oor[0]["ax"] >> 8, 0), \
        "AH=01h after a failure: %s (failure %s)%s" % (t01, oor[0], ctx)

    assert not log.errs, "read errors: %s%s" % (log.errs[:5], ctx)
    got = log.sum_records("42")
    exp = fh.expected_sums(disk, prm.ranges, prm.chunk, prm.group)
    if got != exp:
        diff = [(g, e) for g, e in zip(got, exp) if g != e][:5]
        raise AssertionError("SUM 42: %d records, %d expected; first differences (got, want): %s%s"
                             % (len(got), len(exp), [(_fmt(g), _fmt(e)) for g, e in diff], ctx))
    if prm.chs[1]:
        s02 = log.sums["02"]
        lba, n = prm.chs
        exp02 = fh.fold([fh.chunk_hash(fh.read_sectors(disk, lba, n))])
        assert len(s02) == 1 and (s02[0]["lba"], s02[0]["count"], s02[0]["fnv"]) == (lba, n, exp02), \
            "SUM 02 (AH=02h reads) %s, want fnv=%08x%s" % (s02, exp02, ctx)

    for drive, lba, n in prm.xreads:
        x = log.one("XREAD", dl=drive, lba=lba)
        path = drive_map.get(drive)
        if path and lba + n <= os.path.getsize(path) // SECTOR:
            h = fh.chunk_hash(fh.read_sectors(path, lba, n))
            assert x["cf"] == 0 and x["fnv"] == h, \
                "drive %02xh LBA %d should read %s: %s (want fnv=%08x)%s" % (drive, lba, path, x, h, ctx)
        else:
            assert x["cf"] == 1, "drive %02xh LBA %d does not exist (%s), but: %s%s" % (drive, lba, path, x, ctx)

    t12 = log.one("12")
    bda = log.one("BDA")
    assert t12["ax"] == bda["mem"] and 0 < bda["mem"] <= 640, "INT 12h %s vs 40:13 %s%s" % (t12, bda, ctx)
    assert bda["hd"] == hd_count, "40:75 = %d hard disks, want %d%s" % (bda["hd"], hd_count, ctx)
    end = log.one("E820END")
    assert end["cf"] == 0 and end["n"] >= 3 and log.e820(), "E820: %s%s" % (end, ctx)
    assert log.one("E801")["cf"] == 0 and log.one("88")["cf"] == 0, ctx
    return log


def _fmt(rec):
    return "lba=%d count=%d fnv=%08x" % rec


def usable(e820):
    return sum(length for base, length, typ in e820 if typ == 1)


# ------------------------------------------------------------------ baseline: the guest under SeaBIOS alone

def baseline_small(runs, small_raw, raw2, work):
    return runs.get_or("base-small", lambda: fh.run_qemu([(0, small_raw), (1, raw2)], boot="c", timeout=120,
                                                        workdir=str(work)))


def test_baseline_small(runs, small_raw, raw2, work):
    """SeaBIOS's own INT 13h on the raw image: validates guest and harness; the reference for vhdboot."""
    run = baseline_small(runs, small_raw, raw2, work)
    check_guest(run, small_raw, SMALL_TOTAL, params(SMALL_RANGES, SMALL_CHS, SMALL_TOTAL), {0x81: raw2}, 2)


def test_baseline_big(runs, big_raw, work):
    run = runs.get_or("base-big", lambda: fh.run_qemu([(0, big_raw)], boot="c", timeout=120, workdir=str(work)))
    check_guest(run, big_raw, BIG_TOTAL, params(BIG_RANGES, BIG_CHS, BIG_TOTAL), {}, 1)


# ------------------------------------------------------------------ through vhdboot

def iso():
    """build/vhdboot.iso; a missing ISO is a failure (the firmware has landed: `make kernel` builds it)."""
    assert os.path.exists(fh.ISO), "%s is missing: build the firmware first (make kernel)" % fh.ISO
    return fh.ISO


def vhdtool_path():
    assert os.access(fh.VHDTOOL, os.X_OK), "%s is missing: run `make tool` first" % fh.VHDTOOL
    return fh.VHDTOOL


def _qemu(sub):
    return lambda raw, out: fh.qemu_img_vhd(raw, out, sub)


def _vt(kind, block=None):
    return lambda raw, out: fh.vhdtool_vhd(raw, out, kind, block, vhdtool=vhdtool_path())


def _qemu_vhdx(sub, block=None):
    """qemu-img convert to VHDX (subformat fixed/dynamic, block size)."""
    def conv(raw, out):
        opts = "subformat=%s" % sub + (",block_size=%s" % block if block else "")
        fh.run_tool(["qemu-img", "convert", "-f", "raw", "-O", "vhdx", "-o", opts, raw, out])
        return out
    return conv


def _bitmap_holes(raw, out):
    """vhdtool dynamic 2M, then zero-content sectors around LBA 40000 (block 9, allocated for that one
    data sector) marked absent in the sector bitmap, with garbage where their data would be."""
    _vt("dynamic", "2M")(raw, out)
    holes = list(range(39990, 40000)) + list(range(40001, 40011)) + [36864, 40959]
    assert not any(fh.read_sectors(raw, lba, 1).strip(b"\0") for lba in holes)
    fh.vhd_hide_sectors(out, holes)
    return out


# case -> (data image, converter, where the VHD disk sits: pm = index 0 (plain disk at 1),
#          ss = index 3 with the CD at index 2 (plain disk at 0))
VHD_CASES = {
    "qemu-img-fixed": ("small", _qemu("fixed"), "pm"),
    "qemu-img-dynamic": ("small", _qemu("dynamic"), "pm"),
    "vhdtool-fixed": ("small", _vt("fixed"), "pm"),
    "vhdtool-dynamic-512K": ("small", _vt("dynamic", "512K"), "pm"),
    "vhdtool-dynamic-2M": ("small", _vt("dynamic", "2M"), "pm"),
    "vhdtool-dynamic-4M": ("small", _vt("dynamic", "4M"), "pm"),
    "vhdtool-dynamic-2M-bitmap-holes": ("small", _bitmap_holes, "pm"),
    "vhdtool-dynamic-2M-secondary-slave": ("small", _vt("dynamic", "2M"), "ss"),
    "big-9G-vhdtool-dynamic-2M": ("big", _vt("dynamic", "2M"), "pm"),
    "big-9G-qemu-img-dynamic": ("big", _qemu("dynamic"), "pm"),
    # disks only the BIOS reads (drivers/biosdisk.c: rm_farcall into SeaBIOS's INT 13h, at boot and resident)
    "vhdtool-dynamic-2M-nvme-bios": ("small", _vt("dynamic", "2M"), "nvme"),
    "qemu-img-fixed-usb-bios": ("small", _qemu("fixed"), "usb"),
    # fixed VHDs on BIOS disks: AH=42h/43h go through the stub's real-mode fast path (rm_fast13)
    "vhdtool-fixed-nvme-bios": ("small", _vt("fixed"), "nvme"),
    "vhdtool-dynamic-2M-usb-ehci-bios": ("small", _vt("dynamic", "2M"), "usb-ehci"),
    "vhdtool-dynamic-2M-virtio-blk-bios": ("small", _vt("dynamic", "2M"), "virtio-blk"),
    "vhdtool-dynamic-2M-virtio-scsi-bios": ("small", _vt("dynamic", "2M"), "virtio-scsi"),
    "qemu-img-dynamic-lsi-scsi-bios": ("small", _qemu("dynamic"), "lsi-scsi"),
    # VHDX (image/vhdx_fmt.c over vhdx/): made by qemu-img
    "vhdx-qemu-img-fixed": ("small", _qemu_vhdx("fixed"), "pm"),
    "vhdx-qemu-img-dynamic-1M": ("small", _qemu_vhdx("dynamic", "1M"), "pm"),
    "vhdx-qemu-img-dynamic-32M-ss": ("small", _qemu_vhdx("dynamic"), "ss"),
    "big-9G-vhdx-qemu-img-dynamic-8M": ("big", _qemu_vhdx("dynamic", "8M"), "pm"),
    "vhdx-qemu-img-dynamic-1M-nvme-bios": ("small", _qemu_vhdx("dynamic", "1M"), "nvme"),
    # a SATA disk on an AHCI controller: the native driver (drivers/ahci.c), and the BIOS with disk=bios
    "vhdtool-dynamic-2M-ahci": ("small", _vt("dynamic", "2M"), "ahci"),
    "vhdtool-dynamic-2M-ahci-disk-bios": ("small", _vt("dynamic", "2M"), "ahci", "disk=bios"),
    "vhdtool-fixed-ahci-disk-bios": ("small", _vt("fixed"), "ahci", "disk=bios"),
}

# where -> the QEMU device that carries the VHD when it is not on IDE
BIOS_ONLY_DEVICES = {
    "nvme": lambda vhd: ["-drive", "file=%s,if=none,id=vhd,format=raw" % vhd, "-device", "nvme,drive=vhd,serial=vhd0"],
    "usb": lambda vhd: ["-drive", "file=%s,if=none,id=vhd,format=raw" % vhd, "-device", "qemu-xhci",
                        "-device", "usb-storage,drive=vhd"],
    "usb-ehci": lambda vhd: ["-drive", "file=%s,if=none,id=vhd,format=raw" % vhd, "-device", "usb-ehci,id=ehci",
                             "-device", "usb-storage,bus=ehci.0,drive=vhd"],
    "virtio-blk": lambda vhd: ["-drive", "file=%s,if=none,id=vhd,format=raw" % vhd, "-device", "virtio-blk-pci,drive=vhd"],
    "virtio-scsi": lambda vhd: ["-drive", "file=%s,if=none,id=vhd,format=raw" % vhd, "-device", "virtio-scsi-pci,id=vs",
                                "-device", "scsi-hd,bus=vs.0,drive=vhd"],
    "lsi-scsi": lambda vhd: ["-drive", "file=%s,if=none,id=vhd,format=raw" % vhd, "-device", "lsi53c895a,id=lsi",
                             "-device", "scsi-hd,bus=lsi.0,drive=vhd"],
}
# where -> a device vhdboot drives natively (besides IDE)
NATIVE_DEVICES = {
    "ahci": lambda vhd: ["-drive", "file=%s,if=none,id=vhd,format=raw" % vhd, "-device", "ahci,id=ahci",
                         "-device", "ide-hd,drive=vhd,bus=ahci.0"],
}


def case_iso(work, cmdline):
    """build/vhdboot.iso, or one made by tools/mkiso.sh for cmdline (once per module work dir)."""
    if not cmdline:
        return iso()
    out = str(work / ("vhdboot-" + cmdline.replace(" ", "_").replace("=", "-") + ".iso"))
    if not os.path.exists(out):
        fh.run_tool(["sh", os.path.join(fh.ROOT, "tools", "mkiso.sh"), cmdline, out])
    return out


def vhd_run(case, runs, work, small_raw, big_raw, raw2):
    """(run, vhd path, data raw, total sectors, params, drive map) for a case; booted once per module."""
    data, convert, where, *cmdline = VHD_CASES[case]
    raw, total, prm = ((small_raw, SMALL_TOTAL, params(SMALL_RANGES, SMALL_CHS, SMALL_TOTAL)) if data == "small"
                       else (big_raw, BIG_TOTAL, params(BIG_RANGES, BIG_CHS, BIG_TOTAL)))
    vhd = str(work / (case + (".vhdx" if "vhdx" in case else ".vhd")))

    def boot():
        iso_path = case_iso(work, cmdline[0] if cmdline else "")
        convert(raw, vhd)
        before = fh.sha256(vhd)
        extra = []
        if where == "pm":
            drives = [(0, vhd), (1, raw2)]
        elif where == "ss":
            drives = [(0, raw2), (3, vhd)]
        else:
            drives, extra = [(0, raw2)], {**BIOS_ONLY_DEVICES, **NATIVE_DEVICES}[where](vhd)
        run = fh.run_qemu(drives, iso=iso_path, timeout=240, workdir=str(work), extra=extra)
        run.vhd_unchanged = fh.sha256(vhd) == before
        return run

    run = runs.get_or(case, boot)
    dmap = {0x81: vhd, 0x82: raw2} if where == "pm" else {0x81: raw2, 0x82: vhd}
    return run, vhd, raw, total, prm, dmap


@pytest.mark.parametrize("case", list(VHD_CASES))
def test_vhd_boot(case, runs, work, small_raw, big_raw, raw2):
    """The guest inside a VHD sees, through vhdboot, exactly the data of the raw image it was made from;
    physical disks are shifted to 81h/82h and still readable."""
    run, vhd, raw, total, prm, dmap = vhd_run(case, runs, work, small_raw, big_raw, raw2)
    if "vhdx" in case:
        info = {"type": "vhdx"}
        kind = "fixed" if "fixed" in case else "dynamic"
        assert re.search(r"^vhdx: 80h: .*: %s VHDX, %d MiB" % (kind, total >> 11), run.serial, re.M), run.describe()
    else:
        info = fh.vhd_info(vhd)
        assert info["current_size"] == total * SECTOR, info
    if info["type"] == 3:
        # the case must exercise unallocated blocks as well as allocated ones
        assert 0 < info["allocated"] < info["bat_entries"], info
        want_block = {"512K": 512 << 10, "4M": 4 << 20}.get(case.split("-")[-1], 2 << 20)
        if case.startswith(("vhdtool", "big-9G-vhdtool")):
            assert info["block_size"] == want_block, info
    fw = fh.firmware_facts(run.serial)
    assert "jump" in fw and "error" not in fw, "firmware did not jump to the guest\n" + run.describe()
    if VHD_CASES[case][2] in BIOS_ONLY_DEVICES:
        # the VHD's disk is served by the BIOS backend, the IDE one natively (not twice)
        assert re.search(r"^disk: hd1 = bios 81h,", run.serial, re.M), run.describe()
        assert re.search(r"^biosdisk: 80h = hd0 \(ata pm\): served by the native driver", run.serial, re.M), run.describe()
        assert "resident: BIOS calls from the handler" in run.serial, run.describe()
    if VHD_CASES[case][2] == "ahci":
        if VHD_CASES[case][3:] == ("disk=bios",):
            # nothing native: both disks through the BIOS, the AHCI controller left alone
            assert re.search(r"^ahci: disk=bios: AHCI controllers are left to the BIOS", run.serial, re.M), run.describe()
            assert re.search(r"^disk: hd1 = bios 81h,", run.serial, re.M), run.describe()
            assert "vhd: using bios 81h " in run.serial, run.describe()
        else:
            # IDE and AHCI both native; the BIOS backend skips both twins and serves nothing
            assert re.search(r"^disk: hd1 = ahci p0, ", run.serial, re.M), run.describe()
            assert "vhd: using ahci p0 (hd1, QEMU HARDDISK)" in run.serial, run.describe()
            assert re.search(r"^biosdisk: 8[01]h = hd1 \(ahci p0\): served by the native driver", run.serial, re.M), run.describe()
            assert "resident: BIOS calls from the handler" not in run.serial, run.describe()
            assert not re.search(r": port reset$", run.serial, re.M), run.describe()
    check_guest(run, raw, total, prm, dmap, hd_count=3)
    # the real-mode AH=42h/43h fast path: on for a fixed VHD on a BIOS disk, and for a dynamic VHD's fully
    # written blocks there (the window the C path set; used: the guest's checks passed through it), never for
    # a VHDX or a natively served disk (their data is not a plain copy of a BIOS disk's sectors)
    bios_served = VHD_CASES[case][2] in BIOS_ONLY_DEVICES or VHD_CASES[case][3:] == ("disk=bios",)
    fast = [int(n) for n in re.findall(r"^resident: fast path: (\d+) AH=42h/43h request", run.serial, re.M)]
    if bios_served and "vhdx" not in case and info["type"] == 2:
        assert re.search(r"^resident: 80h: AH=42h (?:and 43h )?with buffers below [0-9a-f]+ go straight to the BIOS in real mode",
                         run.serial, re.M), run.describe()
        assert fast and max(fast) >= 16, (fast, run.describe())
    elif bios_served and "vhdx" not in case:
        assert re.search(r"^resident: 80h: AH=42h/43h inside a fully written block the handler served last go straight",
                         run.serial, re.M), run.describe()
        assert fast and max(fast) >= 16, (fast, run.describe())
    else:
        assert "go straight to the BIOS" not in run.serial and not fast, run.describe()
    assert fw["int13"]["drive"] == 0x80 and fw["int13"]["sectors"] == total, fw
    assert run.vhd_unchanged, "the VHD file changed during a read-only boot"


def test_memory_hidden(runs, work, small_raw, big_raw, raw2):
    """The resident parts are hidden: 40:13/INT 12h lowered over the low stub, E820 reserves the high region,
    E801/88h stop below it; nothing else is taken away (compared with the same guest under SeaBIOS)."""
    base = baseline_small(runs, small_raw, raw2, work)
    assert base.rc == fh.EXIT_DONE, base.describe()
    run = vhd_run("qemu-img-fixed", runs, work, small_raw, big_raw, raw2)[0]
    assert run.rc == fh.EXIT_DONE, run.describe()
    fw = fh.firmware_facts(run.serial)
    assert "low" in fw and "high" in fw, "firmware log lacks the resident lines\n" + run.describe()
    low, high = fw["low"], fw["high"]
    g, b = run.log, base.log
    ctx = "\n" + run.describe(4000)

    # conventional memory: 40:13 and INT 12h lowered by what the stub took, over the stub
    base_kb = b.one("12")["ax"]
    assert low["kb_before"] == base_kb, "firmware saw %d KiB, SeaBIOS reports %d%s" % (low["kb_before"], base_kb, ctx)
    assert g.one("12")["ax"] == g.one("BDA")["mem"] == low["kb_after"] < base_kb, ctx
    stub = low["stub_seg"] << 4
    assert low["kb_after"] * 1024 <= stub and stub + low["stub_bytes"] <= base_kb * 1024, (low, ctx)
    ivt = g.one("IVT")
    for vec in ("13", "15"):
        assert stub <= ivt[vec] < stub + low["stub_bytes"], "INT %sh vector %x not in the stub%s" % (vec, ivt[vec], ctx)

    # E820: both resident regions reserved, no usable entry overlapping them, nothing else lost
    e820, e820b = g.e820(), b.e820()
    hbase, hend = high["base"], high["last"] + 1
    assert high["kib"] * 1024 == hend - hbase
    for lo, hi in ((hbase, hend), (low["kb_after"] * 1024, base_kb * 1024)):
        assert any(t != 1 and base_ <= lo and hi <= base_ + ln for base_, ln, t in e820), \
            "no reserved E820 entry covers %x-%x%s" % (lo, hi, ctx)
        assert not any(t == 1 and base_ < hi and lo < base_ + ln for base_, ln, t in e820), \
            "a usable E820 entry overlaps resident %x-%x%s" % (lo, hi, ctx)
    hidden = (hend - hbase) + (base_kb - low["kb_after"]) * 1024
    assert fh_usable(e820) == fh_usable(e820b) - hidden, \
        "usable E820 memory %x, SeaBIOS %x, hidden %x%s" % (fh_usable(e820), fh_usable(e820b), hidden, ctx)

    # E801 / 88h: contiguous extended memory must stop at the resident region
    e801 = g.one("E801")
    top801 = 16 * MiB + e801["bx"] * 65536 if e801["bx"] else 1 * MiB + e801["ax"] * 1024
    assert top801 <= hbase and e801["ax"] == e801["cx"] and e801["bx"] == e801["dx"], (e801, ctx)
    assert 1 * MiB + g.one("88")["ax"] * 1024 <= hbase, ctx
    assert e801["bx"] <= b.one("E801")["bx"], ctx

    # one more hard disk than the BIOS had
    assert g.one("BDA")["hd"] == b.one("BDA")["hd"] + 1, ctx

    # the INT 13h vector points at a "$INT13SF" safe hook whose previous vector is the BIOS's own
    hook = g.one("HOOK13")
    assert hook["sig"].to_bytes(8, "big") == b"$INT13SF" and hook["ven"].to_bytes(8, "big") == b"VHDBOOT ", (hook, ctx)
    assert hook["old"] == b.one("IVT")["13"] and hook["flags"] == 0, (hook, b.one("IVT"), ctx)


def fh_usable(e820):
    return usable(e820)


def _fail_run(work, disk, name):
    run = fh.run_qemu([(0, disk)], iso=iso(), timeout=90, workdir=str(work),
                      stop_on_bios=r"No bootable device|Booting from 0000:7c00\s*\n(?:.*\n)*?.*handle_18")
    return run


def check_handed_back(run, ctx):
    """vhdboot printed an error, did INT 18h, and SeaBIOS went on with its boot list; no guest ran."""
    fw = fh.firmware_facts(run.serial)
    assert "error" in fw and "int18" in fw, "no vhdboot error / INT 18h message" + ctx
    assert "returned18" not in fw, "the BIOS returned from INT 18h" + ctx
    assert "jump" not in fw and "GUEST int13test" not in run.serial, "a guest was started" + ctx
    tail = run.seabios[run.seabios.find("Booting from DVD/CD"):]
    assert "Booting from DVD/CD" in run.seabios and "enter handle_18" in tail, \
        "SeaBIOS did not get control back through INT 18h" + ctx
    return fw


def test_damaged_vhd(work, small_raw):
    """Bad footer checksum in both copies: clear message, INT 18h back to the BIOS, image untouched."""
    vhd = fh.vhdtool_vhd(small_raw, str(work / "damaged.vhd"), "dynamic", "2M", vhdtool=vhdtool_path())
    fh.damage_footer_checksums(vhd)
    before = fh.sha256(vhd)
    run = _fail_run(work, vhd, "damaged")
    ctx = "\n" + run.describe()
    fw = check_handed_back(run, ctx)
    assert "checksum" in fw["error"]["msg"].lower(), "the message does not name the defect: %r%s" % (fw["error"]["msg"], ctx)
    assert fh.sha256(vhd) == before, "the damaged image was modified"


def test_no_vhd(work):
    """Only a plain (non-VHD) disk: clear message, INT 18h back to the BIOS, disk untouched."""
    disk = fh.build_plain_disk(str(work / "plain.img"), 2 * MiB, seed=21)
    before = fh.sha256(disk)
    run = _fail_run(work, disk, "novhd")
    ctx = "\n" + run.describe()
    fw = check_handed_back(run, ctx)
    assert "no vhd" in fw["error"]["msg"].lower(), "unclear message %r%s" % (fw["error"]["msg"], ctx)
    assert fh.sha256(disk) == before


def test_differencing_vhd(work, small_raw):
    """A differencing VHD on a bare disk cannot reach its parent: clear message, INT 18h, nothing written."""
    parent = fh.vhdtool_vhd(small_raw, str(work / "parent.vhd"), "dynamic", "2M", vhdtool=vhdtool_path())
    child = str(work / "child.vhd")
    fh.run_tool([vhdtool_path(), "create", "-p", parent, "-f", child])
    before = fh.sha256(child)
    run = _fail_run(work, child, "diff")
    ctx = "\n" + run.describe()
    fw = check_handed_back(run, ctx)
    assert "differencing" in fw["error"]["msg"].lower(), "unclear message %r%s" % (fw["error"]["msg"], ctx)
    assert fh.sha256(child) == before


def test_failing_bios_disk(work, small_raw, raw2):
    """A disk that fails reads (QEMU blkdebug: EIO at LBA 3100 of an NVMe disk, which only the BIOS reads):
    the guest's AH=42h read over that sector gets the BIOS's status with CF set, every other sector still reads right,
    the guest runs to its end (no hang), and the firmware logs the BIOS's status, its retries and the give-up."""
    vhd = str(work / "failing-fixed.vhd")
    _vt("fixed")(small_raw, vhd)
    bad = 3100                       # inside the data region (3000, 200); a fixed VHD's sector n is file sector n
    cfg = work / "blkdebug.cfg"
    cfg.write_text('[inject-error]\nevent = "read_aio"\nerrno = "5"\nsector = "%d"\nonce = "off"\n' % bad)
    extra = ["-drive", "if=none,id=vhd,format=raw,file.driver=blkdebug,file.config=%s,file.image.filename=%s"
             % (cfg, vhd), "-device", "nvme,drive=vhd,serial=vhd0"]
    run = fh.run_qemu([(0, raw2)], iso=iso(), timeout=240, workdir=str(work), extra=extra)
    ctx = "\n" + run.describe(6000)
    assert not run.timed_out and run.rc == fh.EXIT_DONE, "the guest did not finish" + ctx
    assert re.search(r"^disk: hd1 = bios 81h,", run.serial, re.M), ctx
    # the chunk of 64 sectors holding LBA 3100 fails; the harness' other SUM chunks are unaffected
    errs = [e for e in run.log.errs if e.startswith("ERR 42")]
    assert errs, "no AH=42h read failed" + ctx
    for e in errs:
        kv = dict(re.findall(r"(\w+)=([0-9a-f]+)", e))
        lba, n, ax, cf = (int(kv[k], 16) for k in ("lba", "n", "ax", "cf"))
        assert lba <= bad < lba + n, "a read away from the bad sector failed: %s%s" % (e, ctx)
        # SeaBIOS's NVMe driver fails with 0Ch; vhdboot passes the BIOS's own status on
        assert cf == 1 and ax >> 8 == 0x0C, "status %02xh (want the BIOS's 0Ch): %s%s" % (ax >> 8, e, ctx)
    assert re.search(r"^biosdisk: 81h: read LBA \d+ count \d+: BIOS status [0-9a-f]{2}h, resetting the disk and retrying",
                     run.serial, re.M), ctx
    assert re.search(r"^biosdisk: 81h: read LBA \d+ count \d+: BIOS status [0-9a-f]{2}h, giving up", run.serial, re.M), ctx
    # the fixed VHD's reads take the stub's real-mode fast path; the failing one was handed to the handler
    assert re.search(r"^resident: fast path: \d+ AH=42h/43h request\(s\) failed in the BIOS; handed to the handler",
                     run.serial, re.M), ctx
# ------------------------------------------------------------------ a failing disk (QEMU blkdebug)

BAD_LBA = 20100                 # inside a data region of the small image, read by the guest's 42h pass

# controller -> (QEMU device for the drive "vhd", the firmware line that reports the failure, command line)
FAILING = {
    "ahci": (["-device", "ahci,id=ahci", "-device", "ide-hd,drive=vhd,bus=ahci.0"],
             r"^ahci p0: READ DMA EXT lba (\d+) count (\d+): device error .*; port reset$", ""),
    "ide-dma": (["-device", "ide-hd,drive=vhd,bus=ide.0,unit=0"],
                r"^ata pm: READ DMA(?: EXT)? lba (\d+) count (\d+): device error", ""),
    "nvme-native": (["-device", "nvme,drive=vhd,serial=bad0"],
                    r"^nvme n1: READ lba (\d+) count (\d+): error \(status", "disk=native"),
}


@pytest.mark.parametrize("ctrl", list(FAILING))
def test_failing_disk(ctrl, work, small_raw):
    """Reads that touch one sector of the disk fail (blkdebug injects EIO): the guest gets an error status
    for exactly those reads and goes on, the firmware logs the failed command (AHCI: and resets the port;
    IDE: falls back to PIO once, and the PIO read fails too; NVMe: the completion's status); every other read is right and nothing hangs."""
    vhd = str(work / ("failing-%s.vhd" % ctrl))
    fh.qemu_img_vhd(small_raw, vhd, "fixed")
    conf = str(work / ("blkdebug-%s.conf" % ctrl))
    with open(conf, "w") as f:
        f.write('[inject-error]\nevent = "read_aio"\nerrno = "5"\nsector = "%d"\nonce = "off"\n' % BAD_LBA)
    dev, failed_rx, cmdline = FAILING[ctrl]
    extra = ["-drive", "if=none,id=vhd,format=raw,file.driver=blkdebug,file.config=%s,file.image.filename=%s"
             % (conf, vhd)] + dev
    run = fh.run_qemu([], iso=case_iso(work, cmdline), timeout=240, workdir=str(work), extra=extra)
    ctx = "\n" + run.describe(4000)
    assert not run.timed_out, "QEMU timed out: a failing disk must not hang" + ctx
    assert run.rc == fh.EXIT_DONE, "the guest did not finish" + ctx
    m = re.search(failed_rx, run.serial, re.M)
    assert m and int(m.group(1)) <= BAD_LBA < int(m.group(1)) + int(m.group(2)), "no log line for the failed command" + ctx
    if ctrl == "ide-dma":
        assert run.serial.count("DMA command failed; this disk uses PIO from now on") == 1, ctx
        assert re.search(r"^ata pm: READ (?:SECTORS|MULTIPLE)(?: EXT)? lba \d+ count \d+: device error", run.serial, re.M), ctx
    # the guest: its failed reads are the ones over BAD_LBA, with a status; all other sums are right
    errs = [dict((k, fh._num(v)) for k, v in fh._KV.findall(e)) for e in run.log.errs]
    assert errs, "the guest saw no error" + ctx
    for e in errs:
        assert e["cf"] == 1 and e["ax"] >> 8 != 0, "a failed read must return CF and a status: %s%s" % (e, ctx)
        assert e["lba"] <= BAD_LBA < e["lba"] + max(e.get("n", 1), 64), "error away from the bad sector: %s%s" % (e, ctx)
    prm = params(SMALL_RANGES, SMALL_CHS, SMALL_TOTAL)
    got = run.log.sum_records("42")
    exp = fh.expected_sums(small_raw, prm.ranges, prm.chunk, prm.group)
    bad = [i for i, (g, x) in enumerate(zip(got, exp)) if g != x]
    assert len(got) == len(exp) and len(bad) <= 1, "sums differ away from the bad sector: %s%s" % (bad, ctx)


# ------------------------------------------------------------------ VHDX files and chains on FAT

def test_vhdx_chain_on_fat(work, small_raw, raw2):
    """A differencing VHDX and its dynamic VHDX parent as files on a FAT32 disk, booted with
    vhd=/vhd/child.vhdx: the parent is found through the child's relative_path, its DataWriteGuid matches
    the linkage; the sectors the child holds come from the child (the parent's copy of them is garbage),
    every other sector from the parent: the guest reads exactly the raw image; both files unchanged."""
    probe = os.path.join(fh.BUILD, "vhdxprobe")
    fh.run_tool(["make", "-s", "-C", fh.ROOT, "build/vhdxprobe"])
    lo, n = 3000, 200                         # a data region of the small image
    with open(small_raw, "rb") as f:
        data = bytearray(f.read())
    good = bytes(data[lo * SECTOR:(lo + n) * SECTOR])
    bad_raw = str(work / "vx-parent.raw")
    data[lo * SECTOR:(lo + n) * SECTOR] = b"\xa5" * (n * SECTOR)
    with open(bad_raw, "wb") as f:
        f.write(data)
    parent = str(work / "base.vhdx")
    fh.run_tool(["qemu-img", "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic,block_size=1M",
                 bad_raw, parent])
    child = str(work / "child.vhdx")
    fh.run_tool([probe, "create", "diff", parent, "base.vhdx", child])
    part = str(work / "vx-good.bin")
    with open(part, "wb") as f:
        f.write(good)
    fh.run_tool([probe, "write", child, str(lo), part])
    disk = str(work / "vx-fat.img")
    with open(disk, "wb") as f:
        f.truncate(64 << 20)
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    for cmd in (["mkfs.fat", "-F", "32", "-n", "VHDX", disk], ["mmd", "-i", disk, "::/vhd"],
                ["mcopy", "-i", disk, parent, child, "::/vhd/"]):
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert p.returncode == 0, "$ %s\n%s%s" % (" ".join(cmd), p.stdout, p.stderr)
    before = fh.sha256(disk)
    out = str(work / "vhdboot-vx-chain.iso")
    fh.run_tool(["sh", os.path.join(fh.ROOT, "tools", "mkiso.sh"), "vhd=/vhd/child.vhdx mode=ro", out])
    run = fh.run_qemu([(0, disk), (1, raw2)], iso=out, timeout=240, workdir=str(work))
    ctx = "\n" + run.describe(6000)
    assert re.search(r"parent \S*/vhd/base\.vhdx \(found through its child's relative_path", run.serial), ctx
    assert re.search(r"^vhdx: 80h: .*: differencing VHDX, %d MiB" % (SMALL_TOTAL >> 11), run.serial, re.M), ctx
    prm = params(SMALL_RANGES, SMALL_CHS, SMALL_TOTAL)
    check_guest(run, small_raw, SMALL_TOTAL, prm, {0x81: disk, 0x82: raw2}, hd_count=3)
    assert fh.sha256(disk) == before, "a read-only boot changed the FAT disk"
