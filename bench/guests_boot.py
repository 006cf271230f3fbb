#!/usr/bin/python3
"""guests_boot.py: time for a real OS to boot from inside a VHD through vhdboot vs from the raw disk under SeaBIOS.

    bench/guests_boot.py [--reps N] [--kinds fixed,dynamic] [--guests grub,syslinux] [--keep DIR]

Builds the GRUB 2 + Linux and SYSLINUX + Linux test disks of tests/qemu/thirdparty/build_images.py
(Debian's cloud kernel, our static init), converts each to VHDs with build/vhdtool, and
boots, in one run and interleaved (one repetition of every configuration, then the next):
  (a) the raw image under SeaBIOS directly  (-drive file=X.raw,format=raw -boot c)
  (b) each VHD kind through build/vhdboot.iso (-cdrom ... -drive file=X.vhd,format=raw -boot d)
all with qemu-system-x86_64 TCG, 512 MiB, one at a time. For every run the host stamps
the serial line VHDBOOT-LINUX-OK (init's marker) on arrival, from QEMU's start.
Prints per configuration the median seconds to the marker and the ratio b/a
(target <= 1.10), plus the median "guest phase" of vhdboot runs: marker time minus the
arrival of vhdboot's "boot: jumping to the guest MBR" line, i.e. without the CD's GRUB
and vhdboot's own start-up, over the same SeaBIOS total (which includes SeaBIOS's POST).
No pass/fail: numbers only (a run that misses its marker makes the exit status 1).
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "qemu"))
from thirdparty import guestboot as gb  # noqa: E402

fh, bi = gb.fh, gb.bi
JUMP = "boot: jumping to the guest MBR"


def one(guest, disk, iso, workdir):
    run = gb.boot(guest, disk, iso=iso, workdir=workdir)
    t = gb.marker_time(run, bi.LINUX_MARKER)
    if t is None or run.rc != fh.EXIT_DONE:
        print("%s %s: no marker (rc=%s)\n%s" % (guest, os.path.basename(disk), run.rc, run.describe(3000)),
              file=sys.stderr)
        return None, None
    j = gb.marker_time(run, JUMP) if iso else None
    return t, (t - j if j is not None else None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--kinds", default="fixed,dynamic")
    ap.add_argument("--guests", default="grub,syslinux")
    ap.add_argument("--keep", help="build the images in this directory and keep them")
    a = ap.parse_args()
    if not os.path.exists(fh.ISO):
        sys.exit("%s missing: run make first" % fh.ISO)
    work = a.keep or tempfile.mkdtemp(prefix="guests-bench-")
    os.makedirs(work, exist_ok=True)
    try:
        return measure_all(a, work)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


def measure_all(a, work):
    """Every configuration, measured and printed in work; the exit status."""
    kinds = [k for k in a.kinds.split(",") if k]
    guests = [g for g in a.guests.split(",") if g]
    configs = []  # (guest, label, disk, iso)
    for g in guests:
        raw = bi.build(g, work)
        vhds = bi.make_vhds(raw, bi.GUESTS[g][2], work, kinds=tuple(kinds))
        configs.append((g, "seabios-raw", raw, None))
        configs += [(g, "vhdboot-" + k, vhds[k], fh.ISO) for k in kinds]
    times = {(g, l): [] for g, l, _, _ in configs}
    phases = {(g, l): [] for g, l, _, _ in configs}
    failed = False
    # one untimed warm-up of each (page cache, QEMU start-up), then interleaved repetitions
    for g, l, disk, iso in configs:
        one(g, disk, iso, work)
    for rep in range(a.reps):
        for g, l, disk, iso in configs:
            t, ph = one(g, disk, iso, work)
            if t is None:
                failed = True
                continue
            times[(g, l)].append(t)
            if ph is not None:
                phases[(g, l)].append(ph)
        print("rep %d/%d done" % (rep + 1, a.reps), file=sys.stderr)

    print("guests_boot: seconds from QEMU start to %s (median of %d; TCG, 512 MiB)" % (bi.LINUX_MARKER, a.reps))
    print("%-9s %-16s %8s %13s %8s %11s %8s" % ("guest", "config", "median", "min-max", "ratio", "guest-phase", "ratio"))
    for g in guests:
        base = times[(g, "seabios-raw")]
        b = statistics.median(base) if base else None
        for _, l, _, _ in [c for c in configs if c[0] == g]:
            ts = times[(g, l)]
            if not ts:
                print("%-9s %-16s %8s" % (g, l, "FAILED"))
                continue
            m = statistics.median(ts)
            ph = statistics.median(phases[(g, l)]) if phases[(g, l)] else None
            print("%-9s %-16s %8.2f %13s %8s %11s %8s" % (
                g, l, m, "%.2f-%.2f" % (min(ts), max(ts)), "%.3f" % (m / b) if b and l != "seabios-raw" else "-",
                "%.2f" % ph if ph is not None else "-",
                "%.3f" % (ph / b) if b and ph is not None else "-"))
    print("target: ratio <= 1.10 (vhdboot total / SeaBIOS raw total)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
