#!/usr/bin/python3
"""powercut.py: kill QEMU (SIGKILL) while the guest writes through vhdboot; the image must check clean and hold every acknowledged write.

    tests/qemu/powercut.py [--trials N] [--seed S] [--keep] [--on ide|ahci|nvme|usb] [--format vhd|vhdx]
                           [--host fat32|exfat]

Each trial: an empty 64 MiB dynamic VHD (512 KiB blocks, a few blocks pre-written)
at the start of a raw disk 64 MiB larger (so blocks can be allocated), booted
through build/vhdboot.iso with tests/qemu/progs/writetest.asm in power-cut mode: write
k = 1, 2, ... goes to LBA base + (k * step) mod span, 1 + k mod 16 sectors, each
sector self-describing (LBA, k, a PRNG fill); the guest prints "C k=.." only after
INT 13h AH=43h returned success. After the first C line the harness waits a random
0-2.5 s and SIGKILLs QEMU. Then:
  - the image (the VHD at the start of the disk, its end found as the firmware does)
    passes `vhdtool check`, except for the check names in ACCEPTABLE (space that a
    block allocation cut short leaves unused);
  - every sector of every acknowledged write holds that write or a later write
    aimed at it (acknowledged or in flight), whole; every sector no write aimed at
    is unchanged.
With --format vhdx the image is a 64 MiB dynamic VHDX (qemu-img, 1 MiB blocks) with
the same pre-written data, new blocks allocated through its log; the whole disk is the
image file afterwards, checked with build/vhdxprobe (which replays a pending log in
memory: "log-pending" / "log-ignored" are the expected state after a cut, as the
specification intends) and read back through it.
With --host fat32|exfat the VHD is a FILE (/pc.vhd) on partition 1 (96 MiB) of an MBR disk formatted FAT32
(512-byte clusters, mkfs.fat) or exFAT (4 KiB clusters, mkfs.exfat, filled through exfat-fuse), found by the
scan, and it GROWS with every new block (fs/grow.c). After the kill the partition must pass fsck.fat -n /
fsck.exfat -n: "clean", or only the traces of an unfinished growth ("lost" clusters, or the file's chain
"long-chain" past its size; tests/host/growvol.py fsck), then the file (mtools; exFAT: build/fsprobe fs-cat)
gets the image checks above.
This simulates a VM kill: QEMU's writes already made are in the host's page cache,
so what is tested is the order in which the firmware (and the VHD library) write
and flush, not the host's own durability. Exit status 0 if every trial passed.
"""
import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "host"))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import firmware_harness as fh  # noqa: E402
import writeguest as wg  # noqa: E402

S = wg.SECTOR
SPB = 1024                       # 512 KiB blocks
BASE, SPAN, STEP, MAXN = 2 * SPB, 48 * SPB, 7919, 16
PREWRITTEN = [(BASE + i * 5 * SPB, 40) for i in range(4)]   # existing blocks in the span
ACCEPTABLE = {"leaked-space", "trailing-bytes"}
CHECK_LINE = re.compile(r"^\S+: ([a-z0-9-]+): ")   # "IMAGE: name: message" (vhdtool check)
ACK = re.compile(r"^C k=([0-9a-f]{8}) lba=([0-9a-f]{8}) n=([0-9a-f]{4})$")


def target(k):
    """(lba, n) of the guest's write k (as writetest.asm computes it)."""
    off = (k * STEP) % SPAN
    return BASE + off, min(1 + k % MAXN, SPAN - off)


class Trial:
    def __init__(self, n):
        self.n, self.ok, self.completed, self.problems, self.delay, self.checks = n, False, 0, [], 0.0, ""
        self.fsck = None          # --host: the file system's verdict (growvol.fsck)

    def report(self):
        return "trial %d: %s, %d acknowledged writes, kill after %.2f s;%s check: %s%s" % (
            self.n, "ok" if self.ok else "FAILED", self.completed, self.delay,
            " fsck: %s;" % self.fsck if self.fsck else "", self.checks.strip() or "-",
            "".join("\n  " + p for p in self.problems[:20]))


PART_START, PART_SECTORS = 2048, 96 * 2048
FSPROBE = os.path.join(fh.BUILD, "fsprobe")


def _tool(args, input=None):
    p = subprocess.run([str(a) for a in args], input=input, capture_output=True, timeout=300,
                       env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    assert p.returncode == 0, "$ %s -> %d\n%s" % (" ".join(map(str, args)), p.returncode, p.stderr.decode(errors="replace"))
    return p.stdout


def host_disk(vhd, out, host, work):
    """An MBR disk whose partition 1 is a fresh FAT32 or exFAT volume holding vhd as /pc.vhd."""
    import growvol
    with open(out, "wb") as f:
        f.truncate((PART_START + PART_SECTORS + 2048) * S)
    _tool(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", out],
          input=("label: dos\nstart=%d, size=%d, type=%s\n" % (PART_START, PART_SECTORS,
                                                                 "c" if host == "fat32" else "7")).encode())
    vol = os.path.join(work, "host.vol")
    with open(vhd, "rb") as f:
        data = f.read()
    growvol.make_volume(host, vol, PART_SECTORS * S >> 20, [("pc.vhd", data)], work, 1 if host == "fat32" else "4K")
    with open(vol, "rb") as src, open(out, "r+b") as dst:
        dst.seek(PART_START * S)
        shutil.copyfileobj(src, dst)
    os.unlink(vol)
    return out


def host_extract(disk, host, work, n, t):
    """The partition's fsck verdict into t.fsck (a problem unless clean/lost/long-chain); the file as img<n>.vhd."""
    import growvol
    part = os.path.join(work, "part%d.vol" % n)
    with open(disk, "rb") as src, open(part, "wb") as dst:
        src.seek(PART_START * S)
        dst.write(src.read(PART_SECTORS * S))
    verdict, text = growvol.fsck(host, part)
    t.fsck = verdict
    if verdict not in ("clean", "lost", "long-chain"):
        t.problems.append("fsck: %s" % text)
    img = os.path.join(work, "img%d.vhd" % n)
    if host == "fat32":
        _tool(["mcopy", "-n", "-o", "-i", part, "::/pc.vhd", img])
    else:
        with open(img, "wb") as f:
            f.write(_tool([FSPROBE, "fs-cat", part, 0, "/pc.vhd"]))
    os.unlink(part)
    return img


VHDXPROBE = os.path.join(fh.BUILD, "vhdxprobe")
ACCEPTABLE_VHDX = {"log-pending", "log-ignored"}


def build(work, fmt="vhd"):
    """The image every trial starts from: a VHD (vhdtool) or VHDX (qemu-img), with the guest and PREWRITTEN."""
    params = wg.Params(mode=wg.MODE_POWERCUT, pc=(BASE, SPAN, STEP, MAXN, 0))
    if fmt == "vhd":
        vhd = wg.make_vhd(os.path.join(work, "pc.vhd"), "dynamic", 64 << 20, params, block="512K")
        for lba, n in PREWRITTEN:
            wg.vhdtool("write", vhd, lba, input=wg.pattern(lba, 0, n))
        return vhd
    raw = os.path.join(work, "pc.raw")
    with open(raw, "wb") as f:
        f.truncate(64 << 20)
        f.write(wg.guest_image(params))
        for lba, n in PREWRITTEN:
            f.seek(lba * S)
            f.write(wg.pattern(lba, 0, n))
    vhdx = os.path.join(work, "pc.vhdx")
    fh.run_tool([fh.QEMU_IMG, "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic,block_size=1M", raw, vhdx])
    os.unlink(raw)
    return vhdx


def image_read(img, sectors, work, fmt):
    """The first sectors of img's virtual disk (fmt vhd: vhdtool; vhdx: vhdxprobe cat, a pending log replayed in memory)."""
    if fmt == "vhd":
        return wg.vhd_read(img, 0, sectors)
    out = os.path.join(work, "cat-%d.raw" % os.getpid())
    subprocess.run([VHDXPROBE, "cat", img, out], check=True, capture_output=True, timeout=300)
    try:
        with open(out, "rb") as f:
            return f.read(sectors * S)
    finally:
        os.unlink(out)


def vhdx_check(img):
    """vhdxprobe check: (exit code, output, the defect names)."""
    p = subprocess.run([VHDXPROBE, "check", img], capture_output=True, text=True, timeout=300)
    names = {ln.split()[1] for ln in p.stdout.splitlines() if ln.startswith("defect ")}
    return p.returncode, p.stdout + p.stderr, names


# where the disk sits -> QEMU arguments for it (the ISO stays on IDE)
CONTROLLERS = {
    "ide": lambda disk: ([(0, disk)], []),
    "ahci": lambda disk: ([], ["-drive", "file=%s,if=none,id=pc,format=raw" % disk, "-device", "ahci,id=ahci",
                               "-device", "ide-hd,drive=pc,bus=ahci.0"]),
    "nvme": lambda disk: ([], ["-drive", "file=%s,if=none,id=pc,format=raw" % disk, "-device", "nvme,drive=pc,serial=pc0"]),
    "usb": lambda disk: ([], ["-drive", "file=%s,if=none,id=pc,format=raw" % disk, "-device", "qemu-xhci",
                              "-device", "usb-storage,drive=pc"]),
}


def run_trial(n, work, vhd, rnd, iso=fh.ISO, on="ide", fmt="vhd", host_pristine=None, host=None):
    """One trial with the disk on controller `on` (CONTROLLERS): ide (native ATA, DMA), ahci (native AHCI),
    nvme and usb (through the BIOS backend under disk=auto). host: the VHD is a file on host_pristine's volume."""
    t = Trial(n)
    if host:
        disk = os.path.join(work, "disk%d.raw" % n)
        shutil.copyfile(host_pristine, disk)
    else:
        disk = wg.on_bigger_disk(vhd, os.path.join(work, "disk%d.raw" % n), 64 << 20)
    before = image_read(vhd, (64 << 20) // S, work, fmt)
    drives, extra = CONTROLLERS[on](disk)
    cmd = fh.qemu_cmd(drives, iso=iso, extra=extra)
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines, first = [], threading.Event()

    def reader():
        for raw in iter(p.stdout.readline, b""):
            line = raw.decode("latin-1").rstrip("\r\n")
            lines.append(line)
            if line.startswith("C k="):
                first.set()
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    if not first.wait(90):
        p.kill()
        p.wait()
        t.problems.append("the guest never acknowledged a write:\n" + "\n".join(lines[-30:]))
        return t
    t.delay = rnd.uniform(0, 2.5)
    time.sleep(t.delay)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    th.join(5)
    serial = "\n".join(lines)
    recs = wg.records(serial)
    errors = [kv for k, kv in recs if k == "E"]
    if errors:
        t.problems.append("the guest saw write errors: %s" % errors[:3])
    # The line being printed at the kill may be cut short: only whole "C" lines count.
    acked = [{"k": int(m.group(1), 16), "lba": int(m.group(2), 16), "n": int(m.group(3), 16)}
             for m in (ACK.match(line.strip("\0 ")) for line in lines) if m]
    t.completed = len(acked)
    for i, kv in enumerate(acked):
        if kv["k"] != i + 1 or (kv["lba"], kv["n"]) != target(kv["k"]):
            t.problems.append("acknowledgement %d out of sequence: %s" % (i, kv))
            return t
    kmax = len(acked)
    if fmt == "vhdx":
        img = disk                      # the whole disk is the VHDX file (its tail: where new blocks went)
        rc, out, names = vhdx_check(img)
        t.checks = out if names else "no defects"
        if rc not in (0, 1) or names - ACCEPTABLE_VHDX:
            t.problems.append("vhdxprobe check -> %d: %s" % (rc, out.strip()))
            return t
    else:
        if host:
            img = host_extract(disk, host, work, n, t)
        else:
            img = wg.extract_prefix(disk, os.path.join(work, "img%d.vhd" % n))
        rc, out = wg.check(img)
        names = {m.group(1) for m in (CHECK_LINE.match(ln) for ln in out.splitlines() if not ln.startswith("vhdtool:"))
                 if m}
        t.checks = out
        if rc not in (0, 1, 3) or names - ACCEPTABLE:
            t.problems.append("vhdtool check -> %d: %s" % (rc, out.strip()))
            return t
    data = image_read(img, (64 << 20) // S, work, fmt)
    # Which writes aimed at each sector: acknowledged ones (1..kmax) and the one in flight (kmax+1).
    aimed = {}
    for k in range(1, kmax + 2):
        lba, cnt = target(k)
        for s in range(lba, lba + cnt):
            aimed.setdefault(s, []).append(k)
    for s, ks in aimed.items():
        sec = data[s * S:(s + 1) * S]
        last = max([k for k in ks if k <= kmax], default=0)
        tag = wg.sector_tag(sec, s)
        if tag is None:
            if last or sec != before[s * S:(s + 1) * S]:
                t.problems.append("LBA %d: neither a whole write nor the old data (last acknowledged k=%d)" % (s, last))
        elif tag != 0 and (tag < last or tag not in ks):
            t.problems.append("LBA %d holds write k=%d, but k=%d was acknowledged last" % (s, tag, last))
        elif tag == 0 and last:
            t.problems.append("LBA %d lost acknowledged write k=%d (holds the pre-written data)" % (s, last))
    for s in range(BASE, BASE + SPAN):
        if s not in aimed and data[s * S:(s + 1) * S] != before[s * S:(s + 1) * S]:
            t.problems.append("LBA %d changed though no write aimed at it" % s)
            break
    t.ok = not t.problems
    for f in {disk, img}:
        os.unlink(f)
    return t


def run_trials(trials, work, seed=None, log=None, on="ide", fmt="vhd", host=None):
    rnd = random.Random(seed)
    vhd = build(work, fmt)
    pristine = host_disk(vhd, os.path.join(work, "host.raw"), host, work) if host else None
    out = []
    for n in range(trials):
        t = run_trial(n, work, vhd, rnd, on=on, fmt=fmt, host_pristine=pristine, host=host)
        out.append(t)
        if log:
            log(t.report())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--on", choices=sorted(CONTROLLERS), default="ide", help="controller of the disk (default ide)")
    ap.add_argument("--format", choices=("vhd", "vhdx"), default="vhd", help="image format (default vhd)")
    ap.add_argument("--host", choices=("fat32", "exfat"), default=None,
                    help="the VHD is a growing file on a FAT32 or exFAT partition (VHD only)")
    a = ap.parse_args()
    if a.host and a.format != "vhd":
        sys.exit("powercut.py: --host takes --format vhd")
    for f in (fh.ISO, fh.VHDTOOL, wg.GUEST_BIN):
        if not os.path.exists(f):
            sys.exit("powercut.py: %s is missing (run make first)" % f)
    work = tempfile.mkdtemp(prefix="powercut-", dir=fh.BUILD)
    try:
        if a.format == "vhdx" and not os.path.exists(VHDXPROBE):
            sys.exit("powercut.py: %s is missing (make vhdxprobe)" % VHDXPROBE)
        if a.host and not os.path.exists(FSPROBE):
            sys.exit("powercut.py: %s is missing (make fsprobe)" % FSPROBE)
        res = run_trials(a.trials, work, a.seed, log=print, on=a.on, fmt=a.format, host=a.host)
        ok = sum(r.ok for r in res)
        leaks = sum(1 for r in res if r.ok and "no defects" not in r.checks)
        accepted = ACCEPTABLE_VHDX if a.format == "vhdx" else ACCEPTABLE
        print("powercut: %d/%d trials passed; %d acknowledged writes checked; %d images with accepted findings (%s)"
              % (ok, len(res), sum(r.completed for r in res), leaks, ", ".join(sorted(accepted))))
        if a.host:
            verdicts = {}
            for r in res:
                verdicts[r.fsck] = verdicts.get(r.fsck, 0) + 1
            print("powercut: --host %s: fsck -n verdicts: %s" % (a.host, ", ".join(
                "%s %d" % (k, v) for k, v in sorted(verdicts.items(), key=lambda kv: str(kv[0])))))
        return 0 if ok == len(res) else 1
    finally:
        if a.keep:
            print("work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
