#!/usr/bin/python3
"""int13_write.py: sequential INT 13h AH=43h write throughput: SeaBIOS on a raw disk vs vhdboot into a new dynamic VHD (and a fixed one).

    bench/int13_write.py [--mib N] [--keep]

One run, same guest (tests/qemu/progs/writetest.asm, bench mode: N MiB, default 64, from
LBA 2048, 64 sectors per AH=43h call, TSC-timed against PIT channel 2), same QEMU
drive options (-drive format=raw,if=ide: QEMU's default cache=writeback, so each
ATA FLUSH CACHE is an fdatasync of the image file on the host):
  (a) a raw disk through SeaBIOS's own INT 13h (SeaBIOS issues no FLUSH)
  (b) a new, empty dynamic VHD (2 MiB blocks) at the start of a larger raw disk, through
      vhdboot mode=rw: every block is allocated (footer, flush, bitmap + zero-filled block,
      flush, BAT sector, flush) and every call ends with a FLUSH CACHE
  (c) a fixed VHD (whole disk) through vhdboot: in place, one FLUSH CACHE per call
Prints MiB/s (guest TSC) and the ratios b/a and c/a (target >= 0.8). Numbers only:
exit status 1 only if a write failed.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "qemu"))
import firmware_harness as fh  # noqa: E402
import benchlib as bl  # noqa: E402
import writeguest as wg  # noqa: E402

START_LBA = 2048


def measure(name, disk, iso, mib, work):
    run = fh.run_qemu([(0, disk)], iso=iso, timeout=1200, workdir=work)
    b = run.log.bench
    if run.rc != fh.EXIT_DONE or not {"CAL", "START", "END"} <= set(b):
        print("%s: the guest did not finish (rc=%s)\n%s" % (name, run.rc, run.describe()), file=sys.stderr)
        return None
    tsc_hz = b["CAL"]["tsc50ms"] * 20
    s = b["END"]["tsc"] / tsc_hz
    return {"name": name, "s": s, "mibs": mib / s, "errs": b["END"]["errs"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    bl.require("int13_write.py", fh.ISO, fh.VHDTOOL, wg.GUEST_BIN)
    with bl.work_dir("int13write-", a.keep) as work:
        size = (a.mib + 2) << 20
        prm = wg.Params(mode=wg.MODE_BENCH, bench=(START_LBA, a.mib * 2048))
        raw = os.path.join(work, "raw.img")
        with open(raw, "wb") as f:
            f.write(wg.guest_image(prm))
            f.truncate(size)
        dyn = wg.make_vhd(os.path.join(work, "dyn.vhd"), "dynamic", size, prm, block="2M")
        dyn_disk = wg.on_bigger_disk(dyn, os.path.join(work, "dyn-disk.raw"), size + (8 << 20))
        fixed = wg.make_vhd(os.path.join(work, "fixed.vhd"), "fixed", size, prm)
        res = [measure("a raw, SeaBIOS", raw, None, a.mib, work),
               measure("b new dynamic VHD, vhdboot", dyn_disk, fh.ISO, a.mib, work),
               measure("c fixed VHD, vhdboot", fixed, fh.ISO, a.mib, work)]
        print("int13_write: %d MiB sequential, AH=43h x 64 sectors, QEMU TCG (%s), -m 256, cache=writeback (default)"
              % (a.mib, fh.QEMU))
        print("%-30s %10s %10s %5s" % ("configuration", "guest s", "MiB/s", "errs"))
        for r in res:
            if r:
                print("%-30s %10.2f %10.1f %5d" % (r["name"], r["s"], r["mibs"], r["errs"]))
        if all(res):
            for r in res[1:]:
                print("ratio %s / a: %.2f   [target >= 0.8]" % (r["name"][0], r["mibs"] / res[0]["mibs"]))
            img = wg.extract_prefix(dyn_disk, os.path.join(work, "dyn-after.vhd"))
            rc, out = wg.check(img)
            print("dynamic image after the run: %d blocks allocated; vhdtool check: %s"
                  % (fh.vhd_info(img)["allocated"], out.strip().splitlines()[-1]))
        return 0 if all(res) and not any(r["errs"] for r in res) else 1


if __name__ == "__main__":
    sys.exit(main())
