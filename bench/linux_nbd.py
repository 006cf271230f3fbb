#!/usr/bin/python3
"""linux_nbd.py: the "Linux keeps the disk" matrix and its sequential-I/O ratio (issue 12; docs/handover.md).

    bench/linux_nbd.py [--mib 256] [--repeat N] [--keep DIR]
        [--only fixed,dynamic,diff,exfat,vhdx,ntfs,ro,snapshot,perf,perf-nbd,perf-fixed,perf-exfat,perf-vhdx]

Each configuration boots tests/qemu/thirdparty/linux_nbd.py's guest (Debian cloud kernel, nbdinit.c,
build/linux/vhdboot-attach) with qemu-system-x86_64 TCG, 512 MiB, the host disk (FAT32 holding
/guest.vhd) as the IDE master, through an ISO made by tools/mkiso.sh with `vhd=/guest.vhd` and:
  fixed, dynamic   mode=rw: Linux writes a token and a 3 MiB file into /dev/mapper/vhdboot80p1 (a fixed
                   image's dm-linear maps, a dynamic one's dm hybrid over NBD); the host finds them,
                   vhdtool check is clean; dynamic: the file grew
  diff             mode=rw, /guest.vhd a differencing child of /guest-parent.vhd (both on the FAT): the
                   same, and the parent's sha256 is unchanged
  exfat            dynamic, the host partition exFAT: as dynamic, and fsck.exfat -n clean
  vhdx             /guest.vhdx, a dynamic VHDX (1 MiB blocks) on the FAT32: as dynamic (served through vhdx/)
  ntfs             a fixed VHD on an NTFS host partition: vhdboot-attach attaches only where the kernel has
                   ntfs3 (the cloud kernel has not: the refusal naming the module is the expected result)
  ro               mode=ro: the hybrid is read-only (a write fails), the root mounts ro;
                   the VHD's sha256 is unchanged
  snapshot         mode=snapshot: GRUB's save_env writes grubenv into vhdboot's RAM overlay; vhdboot-attach
                   carries it over, Linux sees it and writes into RAM; the VHD's sha256 is unchanged
  perf             --mib MiB O_DIRECT sequential write, rewrite, read on partition 2, inside the booted Linux:
                   on /dev/mapper/vhdboot80p2 (dynamic VHD through vhdboot-attach's device-mapper hybrid)
                   vs /dev/sda2 (the same guest disk,
                   raw, under SeaBIOS alone), same QEMU, same run; prints MiB/s and the ratios; --repeat N
                   interleaves N pairs of boots (each VHD boot from the pristine host disk) and reports
                   the medians; each boot also reports the guest's memcpy rate after the bench
  perf-nbd         perf through NBD alone (vhdboot.nbd=1: vhdboot-attach --nbd, /dev/nbd0p2): the hybrid's baseline
  perf-fixed       the same with a fixed VHD, served by vhdboot-attach's device-mapper path
                   (/dev/mapper/vhdboot80p2; "fixed" above takes that path too)
  perf-exfat       perf with the dynamic VHD on an exFAT host partition
  perf-vhdx        perf with a dynamic VHDX (1 MiB blocks) on the FAT32, served through vhdx/ (no fast paths)
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
DM_ARGS = " vhdboot.dev=/dev/mapper/vhdboot80"   # a fixed image's dm-linear maps, a dynamic one's dm hybrid
NBD_ARGS = " vhdboot.nbd=1"                      # vhdboot-attach --nbd: the pure NBD path (the hybrid's baseline)


def iso(work, cmdline):
    out = os.path.join(work, re.sub(r"[^a-z0-9]+", "-", cmdline) + ".iso")
    if not os.path.exists(out):
        subprocess.run(["sh", os.path.join(ROOT, "tools", "mkiso.sh"), cmdline, out], check=True,
                       capture_output=True, env=dict(os.environ, VHDBOOT_ELF=os.path.join(ROOT, "build", "vhdboot.elf")))
    return out


def boot(disk, iso_path, work, timeout=900):
    return fh.run_qemu([(0, disk)], iso=iso_path, boot="d" if iso_path else "c", timeout=timeout, workdir=work,
                       qemu=QEMU, mem=512, stop_on=FAIL)


def check_rw(name, run, host, vhd_before, parent, work, image=ln.VHD_NAME, host_fs="fat32"):
    """The token and pattern inside the image, check clean (exFAT: fsck.exfat -n too); returns a list of problems."""
    bad = []
    if "NBDINIT-DONE" not in run.serial or run.rc != fh.EXIT_DONE:
        return ["did not finish (rc %s)" % run.rc], 0
    d = os.path.join(work, name + ".after")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    if host_fs == "exfat":
        vol = ln.host_volume(host, os.path.join(d, "host.vol"))
        clean, out = ln.fsck_exfat(vol)
        os.unlink(vol)
        if not clean:
            bad.append("fsck.exfat: " + out.strip()[-300:])
    after = ln.extract_vhd(host, os.path.join(d, image), image, host_fs)
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
    for cfg, kind, host_fs in (("fixed", "fixed", "fat32"), ("dynamic", "dynamic", "fat32"), ("diff", "diff", "fat32"),
                               ("exfat", "dynamic", "exfat"), ("vhdx", "vhdx-dynamic", "fat32")):
        if cfg not in only:
            continue
        host, _raw, vhd, parent = ln.build(work, kind, tag="-" + cfg, extra_args=DM_ARGS if cfg != "vhdx" else "",
                                           host_fs=host_fs)
        image = ln.VHDX_NAME if kind.startswith("vhdx") else ln.VHD_NAME
        run = boot(host, iso(work, "vhd=/" + image), work)
        bad, grew = check_rw(cfg, run, host, os.path.getsize(vhd), parent, work, image, host_fs)
        if cfg != "fixed" and grew <= 0:
            bad.append("did not grow")
        t = [tm for tm, line in run.lines if "NBDINIT-DONE" in line]
        print("%-9s %s  grew %d bytes, done at %.1f s%s" % (cfg, "ok  " if not bad else "FAIL", grew,
              t[0] if t else -1, (": " + "; ".join(bad)) if bad else ""))
        if bad:
            failed += 1
            print(run.describe(6000), file=sys.stderr)
    if "ntfs" in only:
        host, _raw, vhd, _ = ln.build(work, "fixed", tag="-ntfs", host_fs="ntfs", extra_args=" vhdboot.expect=refuse")
        run = boot(host, iso(work, "vhd=/guest.vhd"), work)
        m = re.search(r"vhdboot-attach: (the image's file is on NTFS: [^\n]*)", run.serial)
        ok = m and "NBDINIT refused" in run.serial and run.rc == fh.EXIT_DONE
        print("%-9s %s%s" % ("ntfs", "ok  " if ok else "FAIL", (": refused: " + m.group(1)) if m else ": no refusal line"))
        if not ok:
            failed += 1
            print(run.describe(6000), file=sys.stderr)
    for cfg, expect in (("ro", "ro"), ("snapshot", "")):
        if cfg not in only:
            continue
        host, _raw, vhd, _ = ln.build(work, "dynamic", tag="-" + cfg, grubenv=cfg == "snapshot",
                                      extra_args=" vhdboot.expect=" + expect + DM_ARGS if expect else "")
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
    for cfg, kind, extra, host_fs in (("perf", "dynamic", DM_ARGS, "fat32"), ("perf-nbd", "dynamic", NBD_ARGS, "fat32"),
                                      ("perf-fixed", "fixed", DM_ARGS, "fat32"),
                                      ("perf-exfat", "dynamic", DM_ARGS, "exfat"), ("perf-vhdx", "vhdx-dynamic", "", "fat32")):
        if cfg not in only:
            continue
        raws, vhds = [], []
        host, raw, _vhd, _ = ln.build(work, kind, tag="-" + cfg, bench_mib=a.mib, extra_args=extra, host_fs=host_fs)
        image = ln.VHDX_NAME if kind.startswith("vhdx") else ln.VHD_NAME
        pristine = host + ".pristine"         # every VHD boot starts from it: the first write allocates each time
        shutil.copyfile(host, pristine)
        for rep in range(a.repeat):           # interleaved: raw, VHD, raw, VHD ...
            shutil.copyfile(pristine, host)
            for what, disk, isop, out in (("raw disk (SeaBIOS)", raw, None, raws),
                                          ("%s %s via %s" % (kind, host_fs, "nbd" if extra in ("", NBD_ARGS) else
                                                              "dm-linear" if kind == "fixed" else "dm hybrid"), host,
                                           iso(work, "vhd=/" + image), vhds)):
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
                hyb = re.search(r"hybrid: \d+ block\(s\) made linear.*", run.serial)
                tail = (("\n           server " + srv.group(0)) if srv else "") + \
                       (("\n           " + hyb.group(0)) if hyb else "")
                print("%-10s %-28s %s: write %.1f MiB/s, rewrite %.1f MiB/s, read %.1f MiB/s,%s (%d MiB, run %d)%s"
                      % ((cfg, what, m.group(1)) + tuple(out[-1][:3]) + (cp, mib, rep + 1, tail)))
                sys.stdout.flush()
        if raws and vhds:
            b = [statistics.median(x[i] for x in raws) for i in range(3)]
            v = [statistics.median(x[i] for x in vhds) for i in range(3)]
            print("%-10s medians of %d/%d runs: raw %.1f / %.1f / %.1f, VHD %.1f / %.1f / %.1f MiB/s"
                  % ((cfg, len(raws), len(vhds)) + tuple(b) + tuple(v)))
            print("%-10s ratio VHD/raw: write %.2fx (%s), rewrite %.2fx, read %.2fx (target >= 0.5x)"
                  % (cfg, v[0] / b[0], "fixed" if kind == "fixed" else "allocating new blocks", v[1] / b[1], v[2] / b[2]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
