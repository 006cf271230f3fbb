#!/usr/bin/python3
"""uefi_read.py: Block I/O read throughput of the image vhdboot.efi serves vs the same bytes as a raw disk read by OVMF.

    bench/uefi_read.py [--mib N] [--keep]

One QEMU run per image kind (fixed, dynamic VHD), each measuring both sides in turns:
  served: the VHD file on a FAT32 host disk (AHCI port 0), served by vhdboot.efi as Block I/O
  raw:    the same guest disk as a raw image on AHCI port 1, read by OVMF's own AHCI driver
The guest (tests/qemu/progs/efibench.c) is the image's \\EFI\\BOOT\\BOOTX64.EFI: it reads all of both disks
sequentially in 1 MiB ReadBlocks calls, one warm-up pass, then 5 rounds alternating which goes first, and
prints TSC cycles. Prints MiB/s (guest TSC, calibrated with a 100 ms Stall) and the ratio served/raw per
kind (the median of the 5 per-round ratios: each round's two reads are back to back, which cancels most of
the load of a shared machine; target >= 0.9), and vhdboot.efi's logged time from its start to StartImage.
No pass/fail: numbers only (a failed run makes the exit status 1).
"""
import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "qemu"))
import efi_harness as eh  # noqa: E402

EFIBENCH = os.path.join(eh.BUILD, "efi", "efibench.efi")


def one(work, raw, kind):
    """Boot the served kind + raw twin; returns (served MiB/s, raw MiB/s, boot ms) or None."""
    vhd = os.path.join(work, "b.vhd")
    eh.to_vhd(raw, vhd, kind)
    cfg = os.path.join(work, "vhdboot.cfg")
    with open(cfg, "w") as f:
        f.write("vhd=/images/b.vhd\n")
    host = os.path.join(work, "host.img")
    eh.host_disk(host, {"EFI/BOOT/vhdboot.cfg": cfg, "images/b.vhd": vhd}, size=os.path.getsize(raw) * 2 + 64 * eh.MIB)
    twin = os.path.join(work, "twin.raw")
    shutil.copyfile(raw, twin)
    rc, log, secs = eh.boot(work, [(host, eh.IDE), (twin, "ide-hd,drive=%(id)s,bus=ide.1")], timeout=1800)
    if rc != eh.EXIT_PASS or "BENCH DONE" not in log:
        print("%s: run failed (exit %s):\n%s" % (kind, rc, log[-3000:]))
        return None
    khz = int(re.search(r"BENCH tsc_khz=([0-9a-f]+)", log).group(1), 16)
    rounds = [(int(a, 16), int(b, 16)) for a, b in re.findall(r"BENCH round=\w+ served=([0-9a-f]+) raw=([0-9a-f]+)", log)]
    mib = os.path.getsize(raw) / eh.MIB
    served = statistics.median(mib / (a / (khz * 1000.0)) for a, _ in rounds)
    rawr = statistics.median(mib / (b / (khz * 1000.0)) for _, b in rounds)
    ratio = statistics.median(b / a for a, b in rounds)
    m = re.search(r"boot: (\d+) ms from vhdboot.efi's start to StartImage", log)
    return served, rawr, ratio, int(m.group(1)) if m else -1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=int, default=256, help="guest disk size in MiB (default 256)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="uefi-bench-", dir=os.path.join(eh.BUILD))
    try:
        return measure_all(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def measure_all(args, work):
    """Every configuration, measured and printed in work; the exit status."""
    raw = os.path.join(work, "guest.raw")
    eh.guest_raw(raw, size=args.mib * eh.MIB, probe=EFIBENCH)
    status = 0
    print("uefi_read: %d MiB guest disk, 1 MiB ReadBlocks, median of 5 rounds (QEMU TCG, OVMF)" % args.mib)
    for kind in ("fixed", "dynamic"):
        r = one(work, raw, kind)
        if not r:
            status = 1
            continue
        served, rawr, ratio, ms = r
        print("%-8s served %7.1f MiB/s   raw disk %7.1f MiB/s   ratio %.2f   vhdboot.efi start -> StartImage %d ms"
              % (kind, served, rawr, ratio, ms))
    return status


if __name__ == "__main__":
    sys.exit(main())
