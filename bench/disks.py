#!/usr/bin/python3
"""disks.py: sequential INT 13h AH=42h read throughput per disk controller: vhdboot's backends vs SeaBIOS on the raw disk.

    bench/disks.py [--mib N] [--repeat N] [--only IDE,AHCI,NVMe,RAM] [--kind fixed|dynamic] [--build DIR] [--compare OLD_DIR] [--match WORDS] [--ab] [--keep]

For each controller QEMU emulates (IDE on PIIX3, AHCI on ICH9, NVMe), one run measures:
  SeaBIOS's own INT 13h reading the raw disk on that controller (the baseline), and
  vhdboot serving the same data as a fixed VHD (--kind dynamic: a dynamic one, 2 MiB blocks) on the same controller, through each backend
  that applies: IDE PIO (disk=pio), IDE bus-master DMA (default), AHCI native (default),
  AHCI via the BIOS (disk=bios), NVMe via the BIOS (default: SeaBIOS runs the controller, so the
  native driver leaves it alone), NVMe native (disk=native: the native driver takes it over).
The guest (tests/qemu/progs/int13test.asm, bench flag) reads N MiB (default 256) from LBA 2048
with 64 sectors per AH=42h call and prints TSC ticks for the loop with a PIT calibration
(as bench/int13_read.py). Prints MiB/s per configuration and the ratio to SeaBIOS on the same
controller (target >= 1.0), and to MEMDISK (syslinux's, loaded by GRUB with the raw image as its
initrd: the same data served from RAM; issue target with DMA: >= 1.0).
With --repeat N, N rounds run every configuration once each (baseline and candidates interleaved
in every round) and each ratio is the median of the per-round ratios with its min-max spread, so a
load change on a shared host moves both sides of a ratio together.
No pass/fail: numbers only (a read error makes the exit status 1).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "qemu"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import firmware_harness as fh  # noqa: E402
from int13_read import build_image  # noqa: E402

# controller -> QEMU arguments that put the file `path` on it as the only hard disk
CONTROLLERS = {
    "IDE": lambda path: ["-drive", "file=%s,if=none,id=d0,format=raw" % path, "-device", "ide-hd,drive=d0,bus=ide.0,unit=0"],
    "AHCI": lambda path: ["-drive", "file=%s,if=none,id=d0,format=raw" % path, "-device", "ahci,id=ahci",
                          "-device", "ide-hd,drive=d0,bus=ahci.0"],
    "NVMe": lambda path: ["-drive", "file=%s,if=none,id=d0,format=raw" % path, "-device", "nvme,drive=d0,serial=b0"],
}
# (label, controller, vhdboot command line or None for SeaBIOS on the raw disk, backend line the log must show)
CONFIGS = [
    ("IDE: SeaBIOS, raw disk", "IDE", None, None),
    ("IDE PIO (disk=pio)", "IDE", "disk=pio", "PIO only (disk=pio)"),
    ("IDE bus-master DMA", "IDE", "", "bus-master DMA"),
    ("AHCI: SeaBIOS, raw disk", "AHCI", None, None),
    ("AHCI native", "AHCI", "", "disk: hd0 = ahci p0"),
    ("AHCI via BIOS (disk=bios)", "AHCI", "disk=bios", "disk: hd0 = bios 80h"),
    ("NVMe: SeaBIOS, raw disk", "NVMe", None, None),
    ("NVMe via BIOS", "NVMe", "", "disk: hd0 = bios 80h"),
    ("NVMe native (disk=native)", "NVMe", "disk=native", "disk: hd0 = nvme n1"),
]


MEMDISK = "/usr/lib/syslinux/memdisk"   # Debian package syslinux


def memdisk_iso(raw, work):
    """A GRUB CD that boots MEMDISK with raw as its hard-disk image (GRUB reads it from the CD into RAM)."""
    root = os.path.join(work, "memdisk-root")
    os.makedirs(os.path.join(root, "boot", "grub"), exist_ok=True)
    shutil.copy(MEMDISK, os.path.join(root, "boot", "memdisk"))
    shutil.copy(raw, os.path.join(root, "boot", "disk.img"))
    with open(os.path.join(root, "boot", "grub", "grub.cfg"), "w") as f:
        f.write("serial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n"
                "set timeout=0\nmenuentry memdisk {\n\tlinux16 /boot/memdisk harddisk\n"
                "\tinitrd16 /boot/disk.img\n\tboot\n}\n")
    out = os.path.join(work, "memdisk.iso")
    fh.run_tool(["grub-mkrescue", "-o", out, root])
    shutil.rmtree(root)
    return out


def measure_memdisk(raw, mib, work):
    """The guest on MEMDISK's RAM disk: the same raw image, read from RAM."""
    iso = memdisk_iso(raw, work)
    run = fh.run_qemu([], iso=iso, boot="d", timeout=1800, workdir=work, mem=mib + 512)
    b = run.log.bench
    if run.rc != fh.EXIT_DONE or not {"CAL", "START", "END"} <= set(b):
        print("MEMDISK: the guest did not finish (rc=%s)\n%s" % (run.rc, run.describe()), file=sys.stderr)
        return None
    secs = b["END"]["tsc"] / (b["CAL"]["tsc50ms"] * 20)
    return {"label": "MEMDISK (RAM), raw image", "ctrl": "RAM", "base": True, "s": secs, "mibs": mib / secs,
            "errs": b["END"]["errs"], "tsc": b["END"]["tsc"], "cal": b["CAL"]["tsc50ms"]}


FIRMWARE = {"iso": fh.ISO, "elf": os.path.join(ROOT, "build", "vhdboot.elf")}


def iso_for(cmdline, work, fw=None, cache={}):
    """The ISO of firmware fw (FIRMWARE by default) with cmdline (built once per firmware and command line)."""
    fw = fw or FIRMWARE
    if cmdline == "":
        return fw["iso"]
    key = (fw["elf"], cmdline)
    if key not in cache:
        out = os.path.join(work, "vhdboot-%d-%s.iso" % (len(cache), cmdline.replace("=", "-")))
        subprocess.run(["sh", os.path.join(ROOT, "tools", "mkiso.sh"), cmdline, out], check=True, capture_output=True,
                       env=dict(os.environ, VHDBOOT_ELF=fw["elf"]))
        cache[key] = out
    return cache[key]


def measure(label, ctrl, cmdline, must, raw, fixed, mib, work, fw=None):
    iso = None if cmdline is None else iso_for(cmdline, work, fw)
    run = fh.run_qemu([], iso=iso, boot="d" if iso else "c", timeout=900, workdir=work,
                      extra=CONTROLLERS[ctrl](fixed if iso else raw))
    b = run.log.bench
    if run.rc != fh.EXIT_DONE or not {"CAL", "START", "END"} <= set(b):
        print("%s: the guest did not finish (rc=%s)\n%s" % (label, run.rc, run.describe()), file=sys.stderr)
        return None
    if must and must not in run.serial:
        print("%s: the boot log lacks %r: not the backend meant\n%s" % (label, must, run.describe()), file=sys.stderr)
        return None
    secs = b["END"]["tsc"] / (b["CAL"]["tsc50ms"] * 20)
    prof = [line for _, line in run.lines if line.startswith("prof: ")]
    if prof:   # a PROFILE=1 firmware (--build): its last per-call breakdown
        print("%s: %s" % (label, prof[-1]), flush=True)
    return {"label": label, "ctrl": ctrl, "base": cmdline is None, "s": secs, "mibs": mib / secs, "errs": b["END"]["errs"],
            "tsc": b["END"]["tsc"], "cal": b["CAL"]["tsc50ms"]}


def measure_ab(label, ctrl, cmdline, must, fixed, work, fw=None):
    """--ab: one boot of vhdboot (cmdline) over the fixed VHD on ctrl whose guest reads the bench range in 128 KiB
    pieces from 80h (vhdboot's path) and 81h (the same sectors through the BIOS itself) by turns. Returns
    t81 / t80 (80h's speed relative to the BIOS's in the same minutes), or None."""
    run = fh.run_qemu([], iso=iso_for(cmdline, work, fw), boot="d", timeout=1800, workdir=work,
                      extra=CONTROLLERS[ctrl](fixed))
    b = run.log.bench.get("AB")
    if run.rc != fh.EXIT_DONE or not b or b["errs"] or not b["t80"]:
        print("%s: the A/B guest did not finish cleanly (rc=%s, %s)\n%s" % (label, run.rc, b, run.describe()),
              file=sys.stderr)
        return None
    if must and must not in run.serial:
        print("%s: the boot log lacks %r: not the backend meant\n%s" % (label, must, run.describe()), file=sys.stderr)
        return None
    return b["t81"] / b["t80"]


def main_ab(a, configs, work):
    """--ab: per round every vhdboot configuration once; per configuration the median (min-max) of t81/t80."""
    raw = os.path.join(work, "ab.raw")
    build_image(raw, a.mib, fh.F_BENCHAB)
    # --kind dynamic: 81h's sectors are the disk's (the VHD file's), not the image's: the same count read
    # sequentially from the same disk through the BIOS, which is what 80h is measured against
    fixed = fh.vhdtool_vhd(raw, os.path.join(work, "ab-%s.vhd" % a.kind), a.kind, *(["2M"] if a.kind == "dynamic" else []))
    configs = [c for c in configs if c[2] is not None]
    got = {c[0]: [] for c in configs}
    for rnd in range(a.repeat):
        for c in configs:
            r = measure_ab(c[0], c[1], c[2], c[3], fixed, work, *c[4:])
            if r is not None:
                got[c[0]].append(r)
        print("round %d/%d: %s" % (rnd + 1, a.repeat, "  ".join(
            "%s %.2f" % (k, v[-1]) for k, v in got.items() if v)), flush=True)
    print("disks --ab: %d MiB in 128 KiB pieces read from 80h (vhdboot) and 81h (the same sectors through the BIOS "
          "directly), alternately, 64 sectors per AH=42h call, %s VHD, QEMU TCG, %d round(s)" % (a.mib, a.kind, a.repeat))
    print("%-34s %22s %7s" % ("configuration", "80h speed / 81h speed", "rounds"))
    for c in configs:
        print("%-34s %22s %7d" % (c[0], fmt_ratio(got[c[0]]), len(got[c[0]])))
    return 0 if all(got.values()) else 1


def stats(xs):
    """(median, min, max) of a non-empty list."""
    xs = sorted(xs)
    n = len(xs)
    med = xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
    return med, xs[0], xs[-1]


def fmt_ratio(xs):
    """'median (min-max)' of per-round ratios, or '-'."""
    if not xs:
        return "-"
    med, lo, hi = stats(xs)
    return "%.2f (%.2f-%.2f)" % (med, lo, hi) if len(xs) > 1 else "%.2f" % med


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=256, help="MiB read per configuration (default 256)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds; each round runs every configuration once, baselines interleaved (default 1)")
    ap.add_argument("--only", default="",
                    help="comma-separated controllers to measure (IDE, AHCI, NVMe, RAM for MEMDISK; default all)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"),
                    help="the firmware's build directory (vhdboot.iso, vhdboot.elf); e.g. build/prof for the profile "
                         "build of `make BUILD=build/prof PROFILE=1 build/prof/vhdboot.iso`, whose per-call cycle "
                         "breakdown is printed")
    ap.add_argument("--match", default="",
                    help="comma-separated words: only the vhdboot configurations whose label holds one of them "
                         "(e.g. \"via BIOS\"); the SeaBIOS baselines always run")
    ap.add_argument("--compare", default="",
                    help="a second firmware's build directory (e.g. a copy of build/ before a change): every vhdboot "
                         "configuration also runs with it, right after the first, as \"... [old]\" (an A/B in one run)")
    ap.add_argument("--ab", action="store_true",
                    help="instead of separate boots: each vhdboot configuration boots once per round and its guest "
                         "reads the range in 128 KiB pieces from 80h (vhdboot) and from 81h (the same disk through the "
                         "BIOS itself, the stub only shifting DL) by turns; prints 80h's speed relative to 81h's, "
                         "which a loaded host cannot skew between two boots")
    ap.add_argument("--kind", choices=("fixed", "dynamic"), default="fixed",
                    help="the VHD vhdboot serves: fixed (default) or dynamic (2 MiB blocks, every block allocated)")
    ap.add_argument("--no-alternate", dest="alternate", action="store_false",
                    help="run every round in table order (default: odd rounds reversed)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    FIRMWARE["iso"] = os.path.join(a.build, "vhdboot.iso")
    FIRMWARE["elf"] = os.path.join(a.build, "vhdboot.elf")
    old_fw = {"iso": os.path.join(a.compare, "vhdboot.iso"), "elf": os.path.join(a.compare, "vhdboot.elf")} \
        if a.compare else None
    for f in [FIRMWARE["iso"], FIRMWARE["elf"], fh.VHDTOOL, fh.GUEST_BIN] + (list(old_fw.values()) if old_fw else []):
        if not os.path.exists(f):
            sys.exit("disks.py: %s is missing (run make first)" % f)
    only = {c.strip().lower() for c in a.only.split(",") if c.strip()}
    configs = [c for c in CONFIGS if not only or c[1].lower() in only]
    words = [w.strip().lower() for w in a.match.split(",") if w.strip()]
    configs = [c for c in configs if c[2] is None or not words or any(w in c[0].lower() for w in words)]
    if old_fw:   # each vhdboot row twice: the firmware under test, then the --compare one (label "... [old]")
        configs = [r for c in configs for r in ([c] if c[2] is None else [c, (c[0] + " [old]",) + c[1:] + (old_fw,)])]
    want_md = (not only or "ram" in only) and os.path.exists(MEMDISK)
    if (not only or "ram" in only) and not os.path.exists(MEMDISK):
        print("disks.py: %s missing (Debian package syslinux): no MEMDISK row" % MEMDISK, file=sys.stderr)
    work = tempfile.mkdtemp(prefix="disksbench-", dir=os.path.join(ROOT, "build"))
    try:
        if a.ab:
            return main_ab(a, configs, work)
        raw = os.path.join(work, "data.raw")
        build_image(raw, a.mib)
        if a.kind == "dynamic":
            fixed = fh.vhdtool_vhd(raw, os.path.join(work, "dynamic.vhd"), "dynamic", "2M")
        else:
            fixed = fh.vhdtool_vhd(raw, os.path.join(work, "fixed.vhd"), "fixed")
        rounds, failed = [], False
        for rnd in range(a.repeat):
            # One round: every configuration once, in table order (a controller's SeaBIOS baseline right
            # before its vhdboot runs), so baseline and candidates share the load of the same minutes; odd
            # rounds in reverse order (bench/int13_read.py found the first boot of a round faster, which
            # favoured whatever always ran first: here the baselines).
            order = list(reversed(configs)) if a.alternate and rnd % 2 else configs
            md_first = want_md and a.alternate and rnd % 2   # MEMDISK too: last in even rounds, first in odd ones
            md = measure_memdisk(raw, a.mib, work) if md_first else None
            res = {c[0]: measure(*c[:4], raw, fixed, a.mib, work, *c[4:]) for c in order}
            res = {c[0]: res[c[0]] for c in configs}
            if want_md:
                res["MEMDISK"] = md if md_first else measure_memdisk(raw, a.mib, work)
            failed |= any(r is None or r["errs"] for r in res.values())
            rounds.append(res)
            if a.repeat > 1:
                print("round %d/%d: %s" % (rnd + 1, a.repeat, "  ".join(
                    "%s %.1f" % (k.split(" (")[0] + (" [old]" if k.endswith("[old]") else ""), r["mibs"])
                    for k, r in res.items() if r)), flush=True)
        # One TSC rate for the whole invocation: the median of every run's 50 ms PIT calibration. A guest
        # descheduled by a loaded host during its own calibration can miss a PIT wrap and calibrate 2x too
        # high (seen: a 256 MiB read "at" 1222 MiB/s); the TSC itself is the host's, the same for every run.
        cals = sorted(r["cal"] for res in rounds for r in res.values() if r)
        if cals:
            cal = stats(cals)[0]
            for res in rounds:
                for r in res.values():
                    if r:
                        r["s"] = r["tsc"] / (cal * 20)
                        r["mibs"] = a.mib / r["s"]
            print("TSC: %.0f ticks per 50 ms (median of %d calibrations, %.0f-%.0f)" % (cal, len(cals), cals[0], cals[-1]))
        print("disks: %d MiB sequential, AH=42h x 64 sectors, %s VHD, QEMU TCG (%s), -m 256, %d round(s)%s"
              % (a.mib, a.kind, fh.QEMU, a.repeat, "; ratios: median of the per-round ratios (min-max)" if a.repeat > 1 else ""))
        print("%-34s %9s %9s %22s %22s %5s" % ("configuration", "guest s", "MiB/s", "vs SeaBIOS same ctl",
                                               "vs MEMDISK", "errs"))
        base_label = {c[1]: c[0] for c in configs if c[2] is None}
        for label, ctrl, cmdline, *_ in configs + ([("MEMDISK", "RAM", None, None)] if want_md else []):
            got = [r[label] for r in rounds if r.get(label)]
            if not got:
                print("%-34s %9s" % (label, "failed"))
                continue
            secs = stats([g["s"] for g in got])[0]
            mibs = stats([g["mibs"] for g in got])[0]
            errs = sum(g["errs"] for g in got)
            if label == "MEMDISK":
                print("%-34s %9.2f %9.1f %22s %22s %5d" % (got[0]["label"], secs, mibs, "-", "(baseline)", errs))
                continue
            vs_sea = "(baseline)" if cmdline is None else fmt_ratio(
                [r[label]["mibs"] / r[base_label[ctrl]]["mibs"] for r in rounds
                 if r.get(label) and ctrl in base_label and r.get(base_label[ctrl])])
            vs_md = "-" if cmdline is None else fmt_ratio(
                [r[label]["mibs"] / r["MEMDISK"]["mibs"] for r in rounds if r.get(label) and r.get("MEMDISK")])
            print("%-34s %9.2f %9.1f %22s %22s %5d" % (label, secs, mibs, vs_sea, vs_md, errs))
        return 1 if failed else 0
    finally:
        if a.keep:
            print("work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
