#!/usr/bin/python3
"""int13_read.py: sequential INT 13h AH=42h read throughput: SeaBIOS on a raw disk vs vhdboot on fixed and dynamic VHDs.

    bench/int13_read.py [--mib N] [--repeat N] [--configs abcde] [--ram] [--icount] [--no-127g] [--keep]

One run measures, on the same machine and the same data:
  (a) the raw disk read through SeaBIOS's own INT 13h (raw image booted directly, no ISO)
  (b) the same data as a fixed VHD (vhdtool convert -O fixed) read through vhdboot
  (c) the same data as a dynamic VHD (vhdtool convert -O dynamic, 2 MiB blocks) through vhdboot
  (d) the same data as a dynamic VHDX (qemu-img convert, 2 MiB blocks) through vhdboot
  (e) the same data as a dynamic VHDX with qemu-img's default 32 MiB blocks
The guest (tests/qemu/progs/int13test.asm, bench flag) reads N MiB (default 256) from
LBA 2048 with 64 sectors per AH=42h call, hashing nothing, and prints TSC ticks
for the loop plus a TSC calibration against PIT channel 2 (50 ms); the host also
stamps the START/END serial lines as they arrive. Prints MiB/s per configuration
(guest TSC and host wall clock), the ratios b/a .. e/a (target >= 1.0) and
d/c, e/c (VHDX vs the same data as a dynamic VHD: target >= 0.95).
Then boots an empty 127 GiB dynamic VHD (vhdtool create + write of the guest)
and the same as a 127 GiB dynamic VHDX (qemu-img create + qemu-io write), and
reports the firmware's logged time from kernel entry to the guest jump.
With --icount QEMU runs with -icount shift=0,sleep=off: the guest's clock (TSC, PIT) advances one
nanosecond per guest instruction, so MiB/s become MiB per 10^9 instructions, which host load cannot
change (for --ram, where no emulated device sits in the loop, this is the firmware's own work per byte;
with a disk, device time is not modelled and the figure is the CPU work only).
With --repeat N the five configurations run N times interleaved (a b c d e, e d c b a, ...: odd rounds
reversed, since the first boot of a round ran faster here; --no-alternate keeps one order) and
every ratio is the median of the N per-round ratios, printed with its min-max spread.
No pass/fail: numbers only (a read error is reported, and makes the exit status 1).
"""
import argparse
import os
import random
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "qemu"))
import firmware_harness as fh  # noqa: E402
import benchlib as bl  # noqa: E402

SECTOR = fh.SECTOR
START_LBA = 2048


def build_image(path, mib, flags=fh.F_BENCH):
    """Guest at LBA 0 (bench parameters; flags F_BENCH, or F_BENCHAB for bench/disks.py --ab), pseudo-random data in
    every sector read (so every dynamic block is allocated)."""
    prm = fh.Params(flags=flags, bench=(START_LBA, mib * 2048))
    rnd = random.Random(42)
    with open(path, "wb") as out:
        out.write(fh.guest_image(prm))
        out.write(bytes(START_LBA * SECTOR - out.tell()))
        for _ in range(mib):
            out.write(rnd.randbytes(1 << 20))


ICOUNT = ("-icount", "shift=0,sleep=off")


def measure(name, drives, iso, mib, workdir, mem=256, extra=()):
    """One boot of configuration name: MiB/s by the guest's TSC and by the host's clock, the firmware's jump ms."""
    run = fh.run_qemu(drives, iso=iso, timeout=900, workdir=workdir, mem=mem, extra=extra)
    b = run.log.bench
    if run.rc != fh.EXIT_DONE or not {"CAL", "START", "END"} <= set(b):
        print("%s: the guest did not finish (rc=%s)\n%s" % (name, run.rc, run.describe()), file=sys.stderr)
        return None
    tsc_hz = b["CAL"]["tsc50ms"] * 20
    guest_s = b["END"]["tsc"] / tsc_hz
    stamps = {line.split()[1]: t for t, line in run.lines if line.startswith("BENCH ")}
    wall_s = stamps["END"] - stamps["START"]
    return {"name": name, "guest_s": guest_s, "wall_s": wall_s, "mibs": mib / guest_s, "wall_mibs": mib / wall_s,
            "errs": b["END"]["errs"], "jump_ms": fh.firmware_facts(run.serial).get("jump_ms", {}).get("ms"),
            "total_s": run.elapsed}


def spread(rounds, i, j, key):
    """'median (min-max)' of configuration i's key over configuration j's, per round; '-' if none."""
    return bl.median_range([rr[i][key] / rr[j][key] for rr in rounds if rr[i] and rr[j]])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=256, help="MiB read per configuration (default 256)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds of all configurations (a b c d e, a b c d e, ...); ratios are per-round medians")
    ap.add_argument("--configs", default="abcde",
                    help="configurations to run, by letter, in this order within each round (default abcde)")
    ap.add_argument("--ram", action="store_true",
                    help="serve b..e from RAM (each image a GRUB module, drivers/ramdisk.c) instead of an IDE disk: "
                         "no emulated disk I/O, so the format's own cost is what differs")
    ap.add_argument("--no-alternate", dest="alternate", action="store_false",
                    help="run every round in the same order (default: odd rounds reversed)")
    ap.add_argument("--icount", action="store_true",
                    help="count guest instructions (-icount shift=0,sleep=off): guest-clock figures host load cannot change")
    ap.add_argument("--no-127g", action="store_true", help="skip the 127 GiB time-to-jump run")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    bl.require("int13_read.py", fh.ISO, fh.VHDTOOL, fh.GUEST_BIN)

    with bl.work_dir("int13bench-", a.keep) as work:
        raw = os.path.join(work, "data.raw")
        build_image(raw, a.mib)
        fixed = fh.vhdtool_vhd(raw, os.path.join(work, "fixed.vhd"), "fixed")
        dyn = fh.vhdtool_vhd(raw, os.path.join(work, "dynamic.vhd"), "dynamic", "2M")
        images = [("a raw, SeaBIOS INT 13h", [(0, raw)], None),
                  ("b fixed VHD, vhdboot", [(0, fixed)], fh.ISO),
                  ("c dynamic VHD 2M, vhdboot", [(0, dyn)], fh.ISO)]
        for tag, block in (("d", "2M"), ("e", "32M")):
            vx = os.path.join(work, "dynamic-%s.vhdx" % block)
            fh.run_tool([fh.QEMU_IMG, "convert", "-f", "raw", "-O", "vhdx", "-o",
                         "subformat=dynamic,block_size=%s" % block, raw, vx])
            images.append(("%s dynamic VHDX %s, vhdboot" % (tag, block), [(0, vx)], fh.ISO))
        # In the order --configs gives (each round runs them in that order: "dc" puts d first).
        images = sorted((im for im in images if im[0][0] in a.configs), key=lambda im: a.configs.index(im[0][0]))
        mem = 256
        if a.ram:
            # The image as a GRUB module on the CD, no hard disk: vhdboot serves it from RAM (module0).
            mem = 2 * a.mib + 320
            served = []
            for name, drives, iso in images:
                if iso is None:
                    served.append((name, drives, iso))
                    continue
                out = os.path.join(work, "ram-%s.iso" % name[0])
                env = dict(os.environ, VHDBOOT_MODULES="%s=/images/disk%s" % (drives[0][1], os.path.splitext(drives[0][1])[1]))
                subprocess.run(["sh", os.path.join(ROOT, "tools", "mkiso.sh"), "", out], env=env, check=True,
                               capture_output=True)
                served.append((name.replace("vhdboot", "vhdboot RAM"), [], out))
            images = served
        # Rounds: every configuration once per round, so each round's ratios compare runs made minutes
        # apart under the same host load.
        rounds = []
        # Odd rounds run the configurations in reverse (c d e, e d c, ...): on this machine the first boot of
        # a round ran faster (c first: VHDX/VHD 0.85; e d c: 1.01), so the position's effect cancels out.
        for rnd in range(a.repeat):
            order = list(range(len(images)))
            if a.alternate and rnd % 2:
                order.reverse()
            got = [None] * len(images)
            for i in order:
                name, drives, iso = images[i]
                got[i] = measure(name, drives, iso, a.mib, work, mem, ICOUNT if a.icount else ())
            rounds.append(got)
            if a.repeat > 1:
                print("round %d/%d: %s" % (rnd + 1, a.repeat, "  ".join(
                    "%s %.1f" % (r["name"][0], r["mibs"]) for r in rounds[-1] if r)), flush=True)
        res = [r for rr in rounds for r in rr]

        print("int13_read: %d MiB sequential, AH=42h x 64 sectors, QEMU TCG (%s), -m %d, %d round(s)%s%s"
              % (a.mib, fh.QEMU, mem, a.repeat, ", images in RAM (GRUB modules)" if a.ram else "",
                 ", -icount shift=0 (guest s = 10^9 guest instructions)" if a.icount else ""))
        print("%-28s %10s %10s %12s %10s %5s" % ("configuration", "guest s", "MiB/s", "wall MiB/s", "jump ms", "errs"))
        for i, (name, _, _) in enumerate(images):
            got = [rr[i] for rr in rounds if rr[i]]
            if not got:
                print("%-28s %10s" % (name, "failed"))
                continue
            jumps = [g["jump_ms"] for g in got if g["jump_ms"] is not None]
            print("%-28s %10.2f %10.1f %12.1f %10s %5d" % (
                name, bl.median([g["guest_s"] for g in got]), bl.median([g["mibs"] for g in got]),
                bl.median([g["wall_mibs"] for g in got]), bl.median(jumps) if jumps else "-", sum(g["errs"] for g in got)))
        note = "median (min-max) of %d per-round ratios" % a.repeat if a.repeat > 1 else "one round"
        at = {name[0]: i for i, (name, _, _) in enumerate(images)}
        for tag in "bcde":
            if tag in at and "a" in at:
                print("ratio %s / a: %s (guest TSC), %s (wall)   [target >= 1.0; %s]"
                      % (tag, spread(rounds, at[tag], at["a"], "mibs"), spread(rounds, at[tag], at["a"], "wall_mibs"), note))
        for tag in "de":
            if tag in at and "c" in at:
                print("ratio %s / c (VHDX vs dynamic VHD): %s (guest TSC), %s (wall)   [target >= 0.95; %s]"
                      % (tag, spread(rounds, at[tag], at["c"], "mibs"), spread(rounds, at[tag], at["c"], "wall_mibs"), note))

        if not a.no_127g:
            big = os.path.join(work, "big127g.vhd")
            fh.run_tool([fh.VHDTOOL, "create", "-t", "dynamic", "-s", "127G", "-f", big])
            img = fh.guest_image(fh.Params(flags=0))
            subprocess.run([fh.VHDTOOL, "write", big, "0"], input=img, check=True)
            run = fh.run_qemu([(0, big)], iso=fh.ISO, timeout=300, workdir=work)
            jump = fh.firmware_facts(run.serial).get("jump_ms")
            boot_t = next((t for t, line in run.lines if line.startswith("BOOT dl=")), None)
            print("127 GiB dynamic VHD (%d KiB file): firmware time to jump %s ms; QEMU start -> guest's first line %s s; rc=%s"
                  % (os.path.getsize(big) >> 10, jump["ms"] if jump else "not logged",
                     "%.2f" % boot_t if boot_t is not None else "-", run.rc))
            if run.rc != fh.EXIT_DONE:
                print(run.describe(), file=sys.stderr)
            bigx = os.path.join(work, "big127g.vhdx")
            fh.run_tool([fh.QEMU_IMG, "create", "-f", "vhdx", "-o", "subformat=dynamic", bigx, "127G"])
            gpath = os.path.join(work, "guest.bin")
            with open(gpath, "wb") as f:
                f.write(img)
            # the guest at LBA 0: qemu-io writes it from a file through the VHDX driver
            subprocess.run(["qemu-io", "-f", "vhdx", "-c", "write -s %s 0 %d" % (gpath, len(img)), bigx],
                           check=True, capture_output=True)
            run = fh.run_qemu([(0, bigx)], iso=fh.ISO, timeout=300, workdir=work)
            jump = fh.firmware_facts(run.serial).get("jump_ms")
            print("127 GiB dynamic VHDX (%d KiB file): firmware time to jump %s ms; rc=%s"
                  % (os.path.getsize(bigx) >> 10, jump["ms"] if jump else "not logged", run.rc))
            if run.rc != fh.EXIT_DONE:
                print(run.describe(), file=sys.stderr)
        return 0 if all(res) and not any(r["errs"] for r in res) else 1


if __name__ == "__main__":
    sys.exit(main())
