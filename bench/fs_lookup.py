#!/usr/bin/python3
"""fs_lookup.py: how much of a volume fs/ reads to find a VHD: the last of 10,000 files in one NTFS folder, and a file on a 32 GiB exFAT volume.

    bench/fs_lookup.py [--files N] [--keep DIR]

Builds (at run time, sparse host files) an NTFS volume (mkntfs -Q, filled through ntfs-3g) with N small files
plus "zz-last image.vhd" (1 MiB) in /images, and a 32 GiB exFAT volume (mkfs.exfat, filled through exfat-fuse on
a loop device) with /images/win.vhd (1 MiB) among a few folders. Runs build/fsprobe with FSPROBE_COUNT=1 for
  lookup:  fs-extents of the image by path (what vhd=/images/... does: path lookup + extent map)
  listing: fs-find (what the scan without vhd= does: list /, /vhd and /images by suffix)
and prints the sectors read against the volume's size. Needs root (loop device) and /dev/fuse.
No pass/fail: numbers only. This is fs/'s part of a boot; it is not the firmware's kernel-entry-to-jump time.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FSPROBE = os.path.join(ROOT, "build", "fsprobe")


def sh(args, **kw):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, timeout=1800, **kw)


def count(cmd, img, *args):
    p = subprocess.run([FSPROBE, cmd, img, "0"] + list(args), capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, FSPROBE_COUNT="1"))
    if p.returncode:
        sys.exit("fsprobe %s failed: %s%s" % (cmd, p.stdout, p.stderr))
    m = re.search(r"reads (\d+) sectors (\d+)", p.stderr)
    return int(m.group(1)), int(m.group(2))


def report(what, img, size):
    total = size // 512
    for label, cmd, args in (("lookup", "fs-extents", [what]), ("listing", "fs-find", [])):
        reads, secs = count(cmd, img, *args)
        print("  %-8s %7d reads, %8d sectors (%.5f%% of the volume's %d sectors)" %
              (label, reads, secs, 100.0 * secs / total, total))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--keep", help="keep the images in this folder")
    a = ap.parse_args()
    sh(["make", "-s", "-C", ROOT, "build/fsprobe"])
    work = a.keep or tempfile.mkdtemp(prefix="fs_lookup-")
    os.makedirs(work, exist_ok=True)
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt, exist_ok=True)
    blob = os.urandom(1 << 20)
    try:
        nt = os.path.join(work, "ntfs.img")
        size = 256 << 20
        with open(nt, "wb") as f:
            f.truncate(size)
        sh(["mkntfs", "-F", "-Q", "-q", nt])
        sh(["ntfs-3g", "-o", "big_writes", nt, mnt])
        try:
            os.makedirs(os.path.join(mnt, "images"))
            for i in range(a.files):
                with open(os.path.join(mnt, "images", "file %05d of many.txt" % i), "wb") as f:
                    f.write(b"x")
            with open(os.path.join(mnt, "images", "zz-last image.vhd"), "wb") as f:
                f.write(blob)
        finally:
            sh(["umount", mnt])
        print("NTFS, %d MiB, %d files + the image in /images:" % (size >> 20, a.files))
        report("/IMAGES/ZZ-LAST IMAGE.VHD", nt, size)

        ex = os.path.join(work, "exfat.img")
        size = 32 << 30
        with open(ex, "wb") as f:
            f.truncate(size)
        sh(["mkfs.exfat", ex])
        loop = sh(["losetup", "-f", "--show", ex], text=True).stdout.strip()
        try:
            sh(["mount.exfat-fuse", loop, mnt])
            try:
                for d in ("images", "vhd", "other/deeper"):
                    os.makedirs(os.path.join(mnt, d))
                with open(os.path.join(mnt, "images", "win.vhd"), "wb") as f:
                    f.write(blob)
            finally:
                sh(["umount", mnt])
        finally:
            sh(["losetup", "-d", loop])
        print("exFAT, 32 GiB (default clusters), /images/win.vhd:")
        report("/images/win.vhd", ex, size)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
