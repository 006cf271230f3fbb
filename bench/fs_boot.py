#!/usr/bin/python3
"""fs_boot.py: vhdboot's time from kernel entry to the guest jump with the VHD at the end of a 10,000-file NTFS folder and on a 32 GiB exFAT volume, against a small FAT32 volume.

    bench/fs_boot.py [--repeat N] [--files N] [--keep]

The same volumes as bench/fs_lookup.py, each as partition 1 of an MBR disk (sparse host files, made on a loop
device at the partition's offset):
  fat32   64 MiB FAT32 (mkfs.fat, mcopy) with /images/win.vhd: the baseline
  ntfs    256 MiB NTFS (mkntfs -Q, ntfs-3g) with --files small files in /images, then "zz-last image.vhd"
  exfat   32 GiB exFAT (mkfs.exfat default clusters, exfat-fuse) with /images/win.vhd among a few folders
The image is one small dynamic VHD (16 MiB, vhdtool) holding the probe guest (tests/qemu/progs/int13test.asm,
no checks: it ends QEMU through isa-debug-exit right after the jump). Each disk is booted as the IDE master
through an ISO made per command line (tools/mkiso.sh), QEMU TCG, in two ways:
  path    vhd=<the file's path> (path lookup + extent map)
  scan    no vhd= (the scan lists /, /vhd and /images of every volume by suffix)
--repeat rounds, each running every configuration once in the same order. Prints per configuration the
median (and every run) of the firmware's "boot: N ms from kernel entry to the guest jump", its ratio to the
FAT32 baseline of the same way (median of the per-round ratios), and the sectors the firmware read from the
disk before the jump ("boot: hd0: S sectors read ...") against the disk's size.
Needs root (loop devices) and /dev/fuse. No pass/fail: numbers only (a boot that does not reach the guest
makes the exit status 1).
"""
import argparse
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "qemu"))
import firmware_harness as fh  # noqa: E402
import benchlib as bl  # noqa: E402

SECTOR = 512
PART_START = 2048
VOLUMES = (  # name, partition MiB, MBR type, path on the volume
    ("fat32", 64, "0c", "/images/win.vhd"),
    ("ntfs", 256, "07", "/images/zz-last image.vhd"),
    ("exfat", 32 << 10, "07", "/images/win.vhd"),
)


def sh(args, **kw):
    p = subprocess.run([str(a) for a in args], capture_output=True, timeout=1800, **kw)
    if p.returncode:
        raise RuntimeError("%s failed (%d): %s%s" % (" ".join(map(str, args)), p.returncode, p.stdout, p.stderr))
    return p


def guest_vhd(path):
    """A 16 MiB dynamic VHD whose sector 0.. is the probe guest (no checks: it exits right after the jump)."""
    sh([fh.VHDTOOL, "create", "-t", "dynamic", "-s", "16M", "-f", path])
    sh([fh.VHDTOOL, "write", path, "0"], input=fh.guest_image(fh.Params(flags=0)))


def make_disk(work, name, mib, ptype, inner, vhd, files):
    """An MBR disk (sparse) whose partition 1 holds volume name with vhd at inner; returns its path."""
    disk = os.path.join(work, name + ".disk")
    psec = mib << 11
    with open(disk, "wb") as f:
        f.truncate((PART_START + psec + 2048) * SECTOR)
    sh(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", disk],
       input=("label: dos\nstart=%d, size=%d, type=%s\n" % (PART_START, psec, ptype)).encode())
    loop = sh(["losetup", "-f", "--show", "-o", PART_START * SECTOR, "--sizelimit", psec * SECTOR, disk],
              text=True).stdout.strip()
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt, exist_ok=True)
    try:
        if name == "fat32":   # mtools: no kernel FAT driver needed
            sh(["mkfs.fat", "-F", "32", loop])
            sh(["mmd", "-i", loop, "::/images"])
            sh(["mcopy", "-i", loop, vhd, "::" + inner])
            return disk
        if name == "ntfs":
            sh(["mkntfs", "-F", "-Q", "-q", "-p", PART_START, "-H", "16", "-S", "63", loop])
        else:
            sh(["mkfs.exfat", loop])
        sh((["ntfs-3g", "-o", "big_writes"] if name == "ntfs" else ["mount.exfat-fuse"]) + [loop, mnt])
        try:
            os.makedirs(os.path.join(mnt, "images"))
            if name == "ntfs":
                for i in range(files):
                    with open(os.path.join(mnt, "images", "file %05d of many.txt" % i), "wb") as f:
                        f.write(b"x")
            if name == "exfat":
                for d in ("vhd", "other/deeper"):
                    os.makedirs(os.path.join(mnt, d))
            shutil.copyfile(vhd, os.path.join(mnt, inner.lstrip("/")))
        finally:
            subprocess.run(["sync"], timeout=120)
            sh(["umount", mnt])
    finally:
        sh(["losetup", "-d", loop])
    return disk


def boot(work, disk, cmdline):
    """(ms to the jump, sectors read from the disk, the disk's sectors), or None when the guest was not reached."""
    run = fh.run_qemu([(0, disk)], iso=fh.iso_for(cmdline, work), timeout=600, workdir=work)
    jump = fh.firmware_facts(run.serial).get("jump_ms")
    size = os.path.getsize(disk) // SECTOR
    reads = [r for r in fh.disk_reads(run.serial).values() if r[2] == size]
    if run.rc != fh.EXIT_DONE or not jump or not reads:
        print("%s %r: the guest was not reached (rc=%s)\n%s" % (os.path.basename(disk), cmdline, run.rc,
                                                                run.describe(3000)), file=sys.stderr)
        return None
    return int(jump["ms"]), reads[0][0], reads[0][1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="rounds of every configuration (default 3)")
    ap.add_argument("--files", type=int, default=10000, help="small files before the image in NTFS /images")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    bl.require("fs_boot.py", fh.ISO, fh.VHDTOOL, fh.GUEST_BIN)
    with bl.work_dir("fsboot-", a.keep) as work:
        vhd = os.path.join(work, "guest.vhd")
        guest_vhd(vhd)
        disks = {name: make_disk(work, name, mib, ptype, inner, vhd, a.files) for name, mib, ptype, inner in VOLUMES}
        configs = []
        for name, mib, _, inner in VOLUMES:
            configs.append((name, "path", disks[name], 'vhd="%s"' % inner if " " in inner else "vhd=" + inner))
            configs.append((name, "scan", disks[name], ""))
        res = {(n, w): [] for n, w, _, _ in configs}
        ok = True
        for rnd in range(a.repeat):
            got = []
            for n, w, disk, cmdline in configs:
                r = boot(work, disk, cmdline)
                ok &= r is not None
                if r:
                    res[(n, w)].append(r)
                got.append("%s/%s %s" % (n, w, r[0] if r else "-"))
            print("round %d/%d (ms): %s" % (rnd + 1, a.repeat, "  ".join(got)), flush=True)
        print("fs_boot: kernel entry -> guest jump, QEMU TCG (%s), IDE master, %d round(s); NTFS /images holds %d "
              "files + the image" % (fh.QEMU, a.repeat, a.files))
        print("%-6s %-5s %9s %8s  %10s %9s %12s   %s" % ("volume", "way", "median ms", "ratio", "sectors", "requests",
                                                       "% of disk", "runs (ms)"))
        for n, w, disk, cmdline in configs:
            v = res[(n, w)]
            if not v:
                print("%-6s %-5s %9s" % (n, w, "failed"))
                continue
            base = res[("fat32", w)]
            per_round = [x[0] / b[0] for x, b in zip(v, base) if b[0]] if len(v) == len(base) else []
            ratio = "%.2f" % bl.median(per_round) if per_round else "-"
            secs = bl.median(x[1] for x in v)
            reqs = bl.median(x[2] for x in v)
            size = os.path.getsize(disk) // SECTOR
            print("%-6s %-5s %9d %8s  %10d %9d %11.5f%%   %s" % (n, w, bl.median(x[0] for x in v), ratio,
                                                               secs, reqs, 100.0 * secs / size,
                                                               " ".join(str(x[0]) for x in v)))
        print("ratio: this volume's time over the FAT32 baseline's, same way, median of the per-round ratios")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
