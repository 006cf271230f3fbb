"""guestboot.py: boot the real-guest disks of build_images.py in QEMU and judge the serial log.

Shared by tests/qemu/test_guests.py and bench/guests_boot.py. QEMU is run through
tests/qemu/firmware_harness.py (run_qemu), as qemu-system-x86_64 (the Debian cloud
kernel is 64-bit; vhdboot is 32-bit and runs there too), TCG, 512 MiB,
-no-reboot, isa-debug-exit at 0xF4:

  seabios:  -drive file=<raw>,format=raw,if=ide,index=0 -boot c       (the baseline)
  vhdboot:  -cdrom <iso> -drive file=<vhd>,format=raw,if=ide,index=0 -boot d
            (extra disks, e.g. a differencing parent, at index 1)

Markers: Linux guests end with init.c's VHDBOOT-LINUX-OK and exit 33 through
isa-debug-exit; the DOS chain with DOSCHAIN-STAGE2-OK and exit 33; memtest86+
never ends, so the run stops (QEMU killed) once its banner is on the serial line.
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
QEMU_TESTS = os.path.dirname(HERE)     # tests/qemu/: firmware_harness.py
for p in (QEMU_TESTS, HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

import firmware_harness as fh  # noqa: E402
import build_images as bi  # noqa: E402

QEMU = os.environ.get("GUEST_QEMU", "qemu-system-x86_64")
MEM = 512
MEMTEST_BANNER = r"Memtest86\+ v\d+\.\d+"
LINUX_FAIL = r"Kernel panic|VHDBOOT-INIT-FAIL|vhdboot: ERROR"
TIMEOUTS = {"grub": 180, "grub-ext2": 180, "syslinux": 180, "memtest": 120, "doschain": 60}


# controller -> QEMU arguments that attach `disk` to it (on="ide": IDE index 0, the default)
CONTROLLERS = {
    "ahci": lambda disk: ["-drive", "file=%s,if=none,id=gd,format=raw" % disk, "-device", "ahci,id=ahci",
                          "-device", "ide-hd,drive=gd,bus=ahci.0"],
    "nvme": lambda disk: ["-drive", "file=%s,if=none,id=gd,format=raw" % disk, "-device", "nvme,drive=gd,serial=gd0"],
}


def boot(guest, disk, iso=None, extra_disks=(), timeout=None, workdir=None, on="ide", extra=()):
    """One QEMU run of guest's disk (raw image under SeaBIOS when iso is None, else a VHD through
    vhdboot's ISO), the disk on IDE or on a controller of CONTROLLERS; disk None: no IDE disk, the
    image comes on a device in extra (QEMU arguments). Returns firmware_harness.Run."""
    drives = ([(0, disk)] if disk else []) + [(i + 1, d) for i, d in enumerate(extra_disks)]
    kw = {"extra": list(extra)}
    if on != "ide":
        drives = [(i + 1, d) for i, d in enumerate(extra_disks)]
        kw["extra"] = CONTROLLERS[on](disk) + list(extra)
    if guest == "memtest":
        kw["stop_on_raw"] = MEMTEST_BANNER + "|" + LINUX_FAIL
    else:
        kw["stop_on"] = LINUX_FAIL
    return fh.run_qemu(drives, iso=iso, boot="d" if iso else "c", timeout=timeout or TIMEOUTS[guest],
                       workdir=workdir, qemu=QEMU, mem=MEM, **kw)


def marker_time(run, marker):
    """Seconds from QEMU's start to the first serial line containing marker (None if absent)."""
    for t, line in run.lines:
        if marker in line:
            return t
    return None


_TRACE = re.compile(r"int13 ax=([0-9a-f]{4}) bx=([0-9a-f]{4}) cx=([0-9a-f]{4}) dx=([0-9a-f]{4}) "
                    r"es=([0-9a-f]{4}) si=([0-9a-f]{4}) -> ax=([0-9a-f]{4}) cf=(\d)")


def trace_calls(text):
    """vhdboot's `trace` lines: [dict(ax, bx, cx, dx, es, si, out_ax, cf)] (ints)."""
    keys = ("ax", "bx", "cx", "dx", "es", "si", "out_ax", "cf")
    return [dict(zip(keys, (int(v, 16) for v in m.groups()))) for m in _TRACE.finditer(text)]


_DOSREAD = re.compile(r"DOSCHAIN-READ c=([0-9a-f]{4}) h=([0-9a-f]{2}) s=([0-9a-f]{2}) n=([0-9a-f]{2})")
_DOSHDR = re.compile(r"DOSCHAIN-STAGE2 drive=([0-9a-f]{2}) count=([0-9a-f]{4}) spt=([0-9a-f]{4}) heads=([0-9a-f]{4})")


def doschain_report(text):
    """(header dict, [(cyl, head, sector, count)]) from the second stage's lines."""
    m = _DOSHDR.search(text)
    hdr = None
    if m:
        hdr = dict(zip(("drive", "count", "spt", "heads"), (int(v, 16) for v in m.groups())))
    reads = [tuple(int(v, 16) for v in r.groups()) for r in _DOSREAD.finditer(text)]
    return hdr, reads


def check(guest, run, raw_name=None):
    """Assert that run reached guest's marker; returns the context string for further messages."""
    ctx = "\n" + run.describe(8000)
    text = run.serial
    if guest in ("grub", "grub-ext2", "syslinux"):
        assert bi.LINUX_MARKER in text, "no %s on the serial line%s" % (bi.LINUX_MARKER, ctx)
        assert run.rc == fh.EXIT_DONE, "QEMU exit %s, want %d (init's isa-debug-exit)%s" % (run.rc, fh.EXIT_DONE, ctx)
        if guest.startswith("grub"):
            assert bi.GRUB_CFG_MARKER in text, "GRUB's grub.cfg marker %s is missing%s" % (bi.GRUB_CFG_MARKER, ctx)
        else:
            assert re.search(r"SYSLINUX \d+\.\d+", text) and "Loading /initrd.img" in text, \
                "no SYSLINUX banner / loading lines on the serial line%s" % ctx
        m = re.search(r"VHDBOOT-INIT cmdline=(.*)", text)
        # the kernel's own console messages may land in the middle of init's line: cut at a printk time stamp
        words = re.split(r"\[\s*\d+\.\d+\]", m.group(1))[0].split() if m else []
        assert ("vhdboot.guest=%s" % guest) in words, \
            "the kernel command line did not come from the %s config%s" % (guest, ctx)
    elif guest == "memtest":
        assert re.search(MEMTEST_BANNER, text), "no memtest86+ banner on the serial line%s" % ctx
        assert run.stopped and not run.timed_out, ctx
        assert bi.GRUB_CFG_MARKER in text, "GRUB's config marker is missing%s" % ctx
    elif guest == "doschain":
        assert bi.DOS_MARKER in text, "no %s%s" % (bi.DOS_MARKER, ctx)
        assert run.rc == fh.EXIT_DONE, "QEMU exit %s, want %d%s" % (run.rc, fh.EXIT_DONE, ctx)
        hdr, reads = doschain_report(text)
        assert hdr and hdr["drive"] == 0x80 and hdr["count"] == bi.DOS_S2_COUNT, "stage2 header %s%s" % (hdr, ctx)
        spt, heads = hdr["spt"], hdr["heads"]
        assert 1 <= spt <= 63 and 1 <= heads <= 255, ctx
        lba = bi.DOS_S2_ABS
        for c, h, s, n in reads:
            assert (c * heads + h) * spt + s - 1 == lba, "read %s is not at LBA %d%s" % ((c, h, s, n), lba, ctx)
            assert 1 <= s and s - 1 + n <= spt, "read %s crosses a track%s" % ((c, h, s, n), ctx)
            lba += n
        assert lba == bi.DOS_S2_ABS + bi.DOS_S2_COUNT, "reads cover LBA %d..%d%s" % (bi.DOS_S2_ABS, lba, ctx)
        assert len(reads) >= 2 and any(h == 0 and s == 1 for c, h, s, n in reads[1:]), \
            "the second stage should span a cylinder boundary (reads %s)%s" % (reads, ctx)
    else:
        raise ValueError(guest)
    return ctx
