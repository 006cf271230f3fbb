#!/usr/bin/python3
"""linux_nbd.py: the "Linux keeps the disk" matrix and its sequential-I/O ratio (issue 12; docs/handover.md).

    bench/linux_nbd.py [--mib 256] [--repeat N] [--only fixed,dynamic,diff,ro,snapshot,perf,perf-fixed] [--keep DIR]

Each configuration boots tests/qemu/thirdparty/linux_nbd.py's guest (Debian cloud kernel, nbdinit.c,
build/linux/vhdboot-attach) with qemu-system-x86_64 TCG, 512 MiB, the host disk (FAT32 holding
/guest.vhd) as the IDE master, through an ISO made by tools/mkiso.sh with `vhd=/guest.vhd` and:
  fixed, dynamic   mode=rw: Linux writes a token and a 3 MiB file into /dev/nbd0p1; the host finds them,
                   vhdtool check is clean; dynamic: the file grew
  diff             mode=rw, /guest.vhd a differencing child of /guest-parent.vhd (both on the FAT): the
                   same, and the parent's sha256 is unchanged
  ro               mode=ro: /dev/nbd0 is read-only (opening it for writing fails), the root mounts ro;
                   the VHD's sha256 is unchanged
  snapshot         mode=snapshot: GRUB's save_env writes grubenv into vhdboot's RAM overlay; vhdboot-attach
                   carries it over, Linux sees it and writes into RAM; the VHD's sha256 is unchanged
  perf             --mib MiB O_DIRECT sequential write, rewrite, read on partition 2, inside the booted Linux:
                   on /dev/nbd0p2 (dynamic VHD through vhdboot-attach) vs /dev/sda2 (the same guest disk,
                   raw, under SeaBIOS alone), same QEMU, same run; prints MiB/s and the ratios; --repeat N
                   interleaves N pairs of boots (each VHD boot from the pristine host disk) and reports
                   the medians; each boot also reports the guest's memcpy rate after the bench
  perf-fixed       the same with a fixed VHD, served by vhdboot-attach's device-mapper path
                   (/dev/mapper/vhdboot80p2; "fixed" above takes that path too)
Prints one line per configuration; exit 1 if a configuration failed its checks. No timing pass/fail.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "qemu"))
sys.path.insert(0, os.path.join(ROOT, "tests", "qemu", "thirdparty"))
import firmware_harness as fh  # noqa: E402
import linux_nbd as ln  # noqa: E402

QEMU = os.environ.get("GUEST_QEMU", "qemu-system-x86_64")
FAIL = r"Kernel panic|NBDINIT-FAIL|vhdboot: ERROR"
DM_ARGS = " vhdboot.dev=/dev/mapper/vhdboot80"   # a fixed image takes vhdboot-attach's device-mapper path


def iso(work, cmdline):
    out = os.path.join(work, re.sub(r"[^a-z0-9]+", "-", cmdline) + ".iso")
    if not os.path.exists(out):
        subprocess.run(["sh", os.path.join(ROOT, "tools", "mkiso.sh"), cmdline, out], check=True,
                       capture_output=True, env=dict(os.environ, VHDBOOT_ELF=os.path.join(ROOT, "build", "vhdboot.elf")))
    return out


def boot(disk, iso_path, work, timeout=900):
    return fh.run_qemu([(0, disk)], iso=iso_path, boot="d" if iso_path else "c", timeout=timeout, workdir=work,
                       qemu=QEMU, mem=512, stop_on=FAIL)


def check_rw(name, run, host, vhd_before, parent, work):
    """The token and pattern inside the VHD, check clean; returns a list of problems."""
    bad = []
    if "NBDINIT-DONE" not in run.serial or run.rc != fh.EXIT_DONE:
        return ["did not finish (rc %s)" % run.rc], 0
    d = os.path.join(work, name + ".after")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    after = ln.extract_vhd(host, os.path.join(d, ln.VHD_NAME))
    if parent:
        p_after = ln.extract_vhd(host, os.path.join(d, ln.PARENT_NAME), ln.PARENT_NAME)
        if fh.sha256(p_after) != fh.sha256(parent):
            bad.append("the parent changed")
    r = subprocess.run([fh.VHDTOOL, "check", after], capture_output=True, text=True)
    if r.returncode:
        bad.append("vhdtool check: " + r.stdout.strip())
    tok = ln.read_guest_file(after, "vhdboot-token.txt", d)
    if not tok or ln.TOKEN.encode() not in tok:
        bad.append("token missing")
    fill = ln.read_guest_file(after, "vhdboot-fill.bin", d)
    if fill is None or ln.sha(fill) != ln.sha(ln.fill_pattern()):
        bad.append("pattern file differs")
    grew = os.path.getsize(after) - vhd_before
    return bad, grew


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--only", default="fixed,dynamic,diff,ro,snapshot,perf")
    ap.add_argument("--keep")
    ap.add_argument("--repeat", type=int, default=1, help="perf: interleaved raw/VHD runs, medians reported")
    a = ap.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="linux-nbd-bench.")
    os.makedirs(work, exist_ok=True)
    try:
        return measure_all(a, work)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


def measure_all(a, work):
    """Every configuration, measured and printed in work; the exit status."""
    only = a.only.split(",")
    failed = 0
    for cfg in ("fixed", "dynamic", "diff"):
        if cfg not in only:
            continue
        host, _raw, vhd, parent = ln.build(work, cfg, extra_args=DM_ARGS if cfg == "fixed" else "")
        run = boot(host, iso(work, "vhd=/guest.vhd"), work)
        bad, grew = check_rw(cfg, run, host, os.path.getsize(vhd), parent, work)
        if cfg != "fixed" and grew <= 0:
            bad.append("did not grow")
        t = [tm for tm, line in run.lines if "NBDINIT-DONE" in line]
        print("%-9s %s  grew %d bytes, done at %.1f s%s" % (cfg, "ok  " if not bad else "FAIL", grew,
              t[0] if t else -1, (": " + "; ".join(bad)) if bad else ""))
        if bad:
            failed += 1
            print(run.describe(6000), file=sys.stderr)
    for cfg, expect in (("ro", "ro"), ("snapshot", "")):
        if cfg not in only:
            continue
        host, _raw, vhd, _ = ln.build(work, "dynamic", tag="-" + cfg, grubenv=cfg == "snapshot",
                                      extra_args=" vhdboot.expect=" + expect if expect else "")
        before = fh.sha256(ln.extract_vhd(host, os.path.join(work, cfg + ".before.vhd")))
        run = boot(host, iso(work, "vhd=/guest.vhd mode=" + cfg), work)
        after = fh.sha256(ln.extract_vhd(host, os.path.join(work, cfg + ".after.vhd")))
        marker = "NBDINIT ro-refused" if cfg == "ro" else "NBDINIT grubenv " + ln.GRUBENV_TOKEN
        bad = []
        if marker not in run.serial or "NBDINIT-DONE" not in run.serial or run.rc != fh.EXIT_DONE:
            bad.append("no %r (rc %s)" % (marker, run.rc))
        if before != after:
            bad.append("the VHD changed")
        print("%-9s %s%s" % (cfg, "ok  " if not bad else "FAIL", (": " + "; ".join(bad)) if bad else ""))
        if bad:
            failed += 1
            print(run.describe(6000), file=sys.stderr)
    for cfg, kind, extra in (("perf", "dynamic", ""), ("perf-fixed", "fixed", DM_ARGS)):
        if cfg not in only:
            continue
        raws, vhds = [], []
        host, raw, _vhd, _ = ln.build(work, kind, tag="-" + cfg, bench_mib=a.mib, extra_args=extra)
        pristine = host + ".pristine"         # every VHD boot starts from it: the first write allocates each time
        shutil.copyfile(host, pristine)
        for rep in range(a.repeat):           # interleaved: raw, VHD, raw, VHD ...
            shutil.copyfile(pristine, host)
            for what, disk, isop, out in (("raw disk (SeaBIOS)", raw, None, raws),
                                          ("%s VHD via %s" % (kind, "dm-linear" if extra else "nbd"), host,
                                           iso(work, "vhd=/guest.vhd"), vhds)):
                run = boot(disk, isop, work)
                m = re.search(r"NBDINIT bench dev=(\S+) mib=(\d+) write_ms=(\d+) rewrite_ms=(\d+) read_ms=(\d+)"
                              r"(?: memcpy_ms=(\d+))?", run.serial)
                if not m:
                    failed += 1
                    print("%s %s: no bench line (rc %s)\n%s" % (cfg, what, run.rc, run.describe(6000)), file=sys.stderr)
                    continue
                mib = int(m.group(2))
                out.append([mib * 1000.0 / max(int(m.group(k)), 1) for k in (3, 4, 5)] +
                           ([mib * 1000.0 / max(int(m.group(6)), 1)] if m.group(6) else []))
                cp = " memcpy in the guest %.1f MiB/s," % (mib * 1000.0 / max(int(m.group(6)), 1)) if m.group(6) else ""
                srv = re.search(r"requests: .*", run.serial)
                print("%-10s %-28s %s: write %.1f MiB/s, rewrite %.1f MiB/s, read %.1f MiB/s,%s (%d MiB, run %d)%s"
                      % ((cfg, what, m.group(1)) + tuple(out[-1][:3]) + (cp, mib, rep + 1,
                         ("\n           server " + srv.group(0)) if srv else "")))
                sys.stdout.flush()
        if raws and vhds:
            b = [statistics.median(x[i] for x in raws) for i in range(3)]
            v = [statistics.median(x[i] for x in vhds) for i in range(3)]
            print("%-10s medians of %d/%d runs: raw %.1f / %.1f / %.1f, VHD %.1f / %.1f / %.1f MiB/s"
                  % ((cfg, len(raws), len(vhds)) + tuple(b) + tuple(v)))
            print("%-10s ratio VHD/raw: write %.2fx (%s), rewrite %.2fx, read %.2fx (target >= 0.5x)"
                  % (cfg, v[0] / b[0], "allocating new blocks" if kind == "dynamic" else "fixed", v[1] / b[1], v[2] / b[2]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
