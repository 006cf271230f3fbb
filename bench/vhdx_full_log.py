#!/usr/bin/python3
"""vhdx_full_log.py: vhdboot's time from kernel entry to the guest jump for a 127 GiB dynamic VHDX whose log is full.

    bench/vhdx_full_log.py [--reps N] [--size 127G] [--log-size 1M] [--keep]

Makes an empty dynamic VHDX (vhdtool create -t vhdx-dynamic, 32 MiB blocks, log of --log-size), puts the guest
(tests/qemu/progs/int13test.asm, no checks) at LBA 0 with vhdtool write, then fills the whole log region with
pending entries (tests/host/make_vhdx_full_log.py: 8 KiB entries of one data page each, one sequence, tail = the
first entry). Boots it as a whole IDE disk through vhdboot (ISO per mode, tools/mkiso.sh), QEMU TCG, one run at a
time, interleaved per repetition:
  clean    the same image with its log empty (the baseline)
  rw       mode=rw: the log is replayed into the file and flushed at open (a fresh copy of the logged image per run)
  ro       mode=ro: the log is replayed into memory only (the file is not written)
and prints the median (and every run's) firmware line "boot: N ms from kernel entry to the guest jump", plus how
many entries the firmware said it replayed. No pass/fail: numbers only (a run that does not finish or replays
another number of entries makes the exit status 1).
"""
import argparse
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "qemu"))
sys.path.insert(0, os.path.join(ROOT, "tests", "host"))
import firmware_harness as fh  # noqa: E402
import benchlib as bl  # noqa: E402
import make_vhdx_full_log as fl  # noqa: E402
import re  # noqa: E402

MIB = 1 << 20


def one(work, disk, cmdline, want):
    run = fh.run_qemu([(0, disk)], iso=fh.iso_for(cmdline, work), timeout=600, workdir=work)
    jump = fh.firmware_facts(run.serial).get("jump_ms")
    m = re.search(r"vhdx: the image was not closed cleanly: (\d+) log entries replayed", run.serial)
    got = int(m.group(1)) if m else 0
    if run.rc != fh.EXIT_DONE or not jump or got != want:
        print("%s: rc=%s, %d entries replayed (want %d)\n%s" % (cmdline or "clean", run.rc, got, want,
                                                                run.describe(3000)), file=sys.stderr)
        return None
    return int(jump["ms"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--size", default="127G")
    ap.add_argument("--log-size", default="1M")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    bl.require("vhdx_full_log.py", fh.ISO, fh.VHDTOOL)
    with bl.work_dir("vxlogbench-", a.keep) as work:
        clean = os.path.join(work, "clean.vhdx")
        subprocess.run([fh.VHDTOOL, "create", "-t", "vhdx-dynamic", "-s", a.size, "--log-size", a.log_size, "-f",
                        clean], check=True, capture_output=True)
        subprocess.run([fh.VHDTOOL, "write", clean, "0"], input=fh.guest_image(fh.Params(flags=0)), check=True,
                       capture_output=True)
        img = bytearray(open(clean, "rb").read())
        log_len = fl.ml.log_area(img)[1]
        # pages of block 0 (32 MiB) from 1 MiB on: past the guest
        descs = fl.fill_log(img, [MIB + 4096 * j for j in range(log_len // fl.ENTRY)])
        logged = os.path.join(work, "logged.vhdx")
        with open(logged, "wb") as f:
            f.write(img)
        n = len(descs)
        print("vhdx_full_log: %s dynamic VHDX, %s log holding %d pending entries (%d KiB of data pages); file %d KiB; "
              "QEMU TCG (%s)" % (a.size, a.log_size, n, n * 4, os.path.getsize(logged) >> 10, fh.QEMU))
        res = {"clean": [], "rw": [], "ro": []}
        ok = True
        for rep in range(a.reps):
            for name in res:
                disk = os.path.join(work, "run.vhdx")
                shutil.copyfile(clean if name == "clean" else logged, disk)
                ms = one(work, disk, "" if name == "clean" else "mode=" + name, 0 if name == "clean" else n)
                ok &= ms is not None
                if ms is not None:
                    res[name].append(ms)
        print("%-8s %10s   %s" % ("mode", "median ms", "runs (ms, kernel entry -> guest jump)"))
        for name, v in res.items():
            print("%-8s %10s   %s" % (name, "%d" % bl.median(v) if v else "-", " ".join(map(str, v))))
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
