"""growvol.py: FAT32 and exFAT volumes holding a dynamic VHD file, for the growth tests (host, QEMU, power cut).

Volumes are made at test time: mkfs.fat -F 32 + mtools, or mkfs.exfat + exfat-fuse on a loop device (root).
The checks are the host's own tools: fsck.fat -n / fsck.exfat -n judge the file system, mtools / exfat-fuse
read the file back, `vhdtool check` and qemu-img judge the image.
"""
import contextlib
import os
import re
import subprocess

from conftest import run

SECTOR = 512


def pattern(lba, seed):
    """The sector tests/host/growprobe.c writes at virtual LBA lba with seed."""
    head = lba.to_bytes(8, "little") + (seed & 0xFFFFFFFF).to_bytes(4, "little")
    return head + bytes((seed + lba + i) & 0xFF for i in range(12, SECTOR))


@contextlib.contextmanager
def exfat_mounted(path, mnt, ro=False):
    """The exFAT volume in file path mounted at mnt through a loop device and exfat-fuse."""
    loop = run(["losetup", "-f", "--show", str(path)], text=True).stdout.strip()
    try:
        os.makedirs(mnt, exist_ok=True)
        run(["mount.exfat-fuse"] + (["-o", "ro"] if ro else []) + [loop, str(mnt)])
        try:
            yield str(mnt)
        finally:
            subprocess.run(["sync"], timeout=60)
            run(["umount", str(mnt)], timeout=120)
    finally:
        run(["losetup", "-d", loop])


def make_volume(kind, path, mib, files, tmp, cluster=None):
    """A volume image of mib MiB at path (kind "fat32" or "exfat") holding files: [(name, bytes)], in order."""
    with open(path, "wb") as fh:
        fh.truncate(mib << 20)
    if kind == "fat32":
        run(["mkfs.fat", "-F", "32", "-s", str(cluster or 1), "-n", "GROW", str(path)])
        for name, data in files:
            src = os.path.join(str(tmp), "in-" + name)
            with open(src, "wb") as fh:
                fh.write(data)
            run(["mcopy", "-i", str(path), src, "::/" + name])
    elif kind == "exfat":
        run(["mkfs.exfat", "-L", "GROW"] + (["-c", cluster] if cluster else []) + [str(path)])
        with exfat_mounted(path, os.path.join(str(tmp), "mnt")) as mnt:
            for name, data in files:
                with open(os.path.join(mnt, name), "wb") as fh:
                    fh.write(data)
    else:
        raise ValueError(kind)


def read_back(kind, path, name, tmp):
    """The file's bytes as the host's own driver reads them (mtools, exfat-fuse)."""
    out = os.path.join(str(tmp), "out-" + name)
    if kind == "fat32":
        run(["mcopy", "-n", "-o", "-i", str(path), "::/" + name, out])
    else:
        with exfat_mounted(path, os.path.join(str(tmp), "mnt"), ro=True) as mnt:
            with open(os.path.join(mnt, name), "rb") as fh, open(out, "wb") as o:
                o.write(fh.read())
    with open(out, "rb") as fh:
        return fh.read()


def fsck(kind, path):
    """(verdict, text) of fsck.fat -n / fsck.exfat -n: "clean", "lost" (lost clusters or an over-long chain,
    the space of an unfinished growth, and nothing else), or "damaged"."""
    tool = "fsck.fat" if kind == "fat32" else "fsck.exfat"
    p = subprocess.run([tool, "-n", str(path)], capture_output=True, text=True, timeout=300)
    text = (p.stdout + p.stderr).strip()
    if p.returncode == 0 and (kind == "fat32" or "clean" in p.stdout):
        return "clean", text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if kind == "fat32":
        # Accepted: lost chains ("Reclaimed N unused clusters" / "... lost clusters"), a file whose chain is
        # longer than its size (fsck truncates it: the same clusters freed), FAT copies differing only there.
        ok = re.compile(r"^\s*/|fsck\.fat|Leaving filesystem unchanged|^\S+: \d+ files|Free cluster summary|"
                        r"Reclaim|unused cluster|lost|cluster chain length is > |Truncating file|"
                        r"FATs differ|Using first FAT|Perform changes|^\s*$|Orphaned|Reclaimed", re.I)
    else:
        ok = re.compile(r"exfatprogs|ERROR: .*(bitmap|more clusters are allocated|cluster chain)|"
                        r"Truncate|truncat|unused|not clean|corrupted|Fix \(y/N\)\? n|directories \d+, files \d+|"
                        r"bitmap", re.I)
    bad = [ln for ln in lines if not ok.search(ln)]
    if bad:
        return "damaged", text
    return ("long-chain" if re.search(r"chain length is >|more clusters are allocated", text) else "lost"), text


def vhd_data(qemu_img, vhd, tmp, name="raw"):
    """The VHD's virtual disk as raw bytes, read by qemu-img (the vpc driver, current size)."""
    raw = os.path.join(str(tmp), name + ".raw")
    run([qemu_img, "convert", "--image-opts",
         "driver=vpc,force_size_calc=current_size,file.driver=file,file.filename=%s" % vhd, "-O", "raw", raw],
        timeout=300)
    with open(raw, "rb") as fh:
        return fh.read()
