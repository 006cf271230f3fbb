#!/usr/bin/python3
"""seeds.py: write seed inputs for one libFuzzer target into a directory, made at run time by Debian's tools.

    seeds.py TARGET OUTDIR

vhd: make_seeds.py's VHDs; part: sfdisk MBR/EBR/GPT disks; fat: mkfs.fat volumes with long names (mtools);
int13: call sequences over a few MBRs; cmdline: the documented options; int15: multiboot memory maps;
mbinfo: module lists; scan: small disks with FAT partitions holding VHDs.
A target without a writer here gets an empty directory (libFuzzer starts from nothing).
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def sh(cmd, **kw):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


def disk(path, sectors, script):
    with open(path, "wb") as f:
        f.truncate(sectors * 512)
    sh(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", path], input=script.encode())


def seeds_part(out):
    tmp = tempfile.mkdtemp()
    try:
        layouts = {
            "mbr4": ("label: dos\n", ["start=1, size=8, type=83", "start=9, size=8, type=7, bootable",
                                      "start=17, size=8, type=c", "start=25, size=7, type=83"]),
            "ebr": ("label: dos\n", ["start=1, size=4, type=83", "start=5, size=58, type=5",
                                     "start=6, size=8, type=83", "start=15, size=8, type=7", "start=24, size=8"]),
            "gpt": ("label: gpt\nfirst-lba: 34\n", ["start=34, size=8, name=\"boot\"", "start=42, size=8",
                                                     "start=50, size=6, name=\"Ümlaut\""]),
        }
        for name, (head, parts) in layouts.items():
            p = os.path.join(tmp, name)
            try:
                disk(p, 64 if name != "gpt" else 96, head + "\n".join(parts) + "\n")
            except (subprocess.CalledProcessError, FileNotFoundError):
                continue
            shutil.copy(p, os.path.join(out, name))
        # A hand-made EBR loop and a GPT protective MBR without a header.
        mbr = bytearray(512)
        mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 5, b"\0\0\0", 1, 30)
        mbr[510:512] = b"\x55\xaa"
        ebr = bytearray(512)
        ebr[446:462] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 1, 2)
        ebr[462:478] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 5, b"\0\0\0", 0, 30)
        ebr[510:512] = b"\x55\xaa"
        with open(os.path.join(out, "ebr-loop"), "wb") as f:
            f.write(bytes(mbr) + bytes(ebr) + bytes(512 * 30))
        pm = bytearray(512)
        pm[446:462] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0xEE, b"\0\0\0", 1, 63)
        pm[510:512] = b"\x55\xaa"
        with open(os.path.join(out, "gpt-nohdr"), "wb") as f:
            f.write(bytes(pm) + bytes(512 * 63))
    finally:
        shutil.rmtree(tmp)


def seeds_fat(out):
    tmp = tempfile.mkdtemp()
    try:
        for bits, kib in ((12, 360), (16, 4200), (32, 33 * 1024)):
            img = os.path.join(tmp, "fat%d" % bits)
            try:
                sh(["mkfs.fat", "-C", "-F", str(bits), "-n", "SEED%d" % bits, "-s", "1", img, str(kib)])
                env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
                sh(["mmd", "-i", img, "::/boot", "::/images", "::/A very long directory name"], env=env)
                src = os.path.join(tmp, "f")
                with open(src, "wb") as f:
                    f.write(os.urandom(3000))
                for dst in ("::/boot/disk.vhd", "::/images/Windows 10 Pro.vhdx", "::/A very long directory name/x.VHD",
                            "::/readme.txt"):
                    sh(["mcopy", "-i", img, src, dst], env=env)
            except (subprocess.CalledProcessError, FileNotFoundError):
                continue
            # Only the metadata matters: keep the reserved sectors, FATs, root and the first data clusters (64 KiB).
            with open(img, "rb") as f:
                data = f.read()
            boot = data[:512]
            rsvd, nfat = struct.unpack_from("<H", boot, 14)[0], boot[16]
            spf = struct.unpack_from("<H", boot, 22)[0] or struct.unpack_from("<I", boot, 36)[0]
            meta = (rsvd + nfat * spf) * 512 + 32 * 512 + 64 * 1024
            with open(os.path.join(out, "fat%d" % bits), "wb") as f:
                f.write(b"/images/Windows 10 Pro.vhdx\0" + data[:meta])
    finally:
        shutil.rmtree(tmp)


def rec(ah, al=0, bx=0, cx=0, dx=0x80, si=0, ds=0, es=0, steer=0, dap=b""):
    """One fuzz_int13 call record (struct call_rec)."""
    dap = dap.ljust(24, b"\0")[:24]
    return struct.pack("<IIIIIIHHB", ah << 8 | al, bx, cx, dx, si, 0, ds, es, steer) + dap


def dap(count, off, seg, lba, flat=0, size=0x10):
    return struct.pack("<BBHHHQQ", size, 0, count, off, seg, lba, flat)


def seeds_int13(out):
    mbr = bytearray(512)
    mbr[446:462] = struct.pack("<B3sB3sII", 0x80, b"\x01\x01\x00", 0x83, b"\x3f\xfe\xff", 63, 1000)
    mbr[510:512] = b"\x55\xaa"
    calls = [
        rec(0x41, bx=0x55AA), rec(0x08), rec(0x15), rec(0x02, al=4, cx=0x0001, bx=0x7C00),
        rec(0x42, si=0x500, steer=1, dap=dap(8, 0x1000, 0, 2)),
        rec(0x43, si=0x500, steer=1, dap=dap(2, 0x1000, 0, 5)),
        rec(0x43, al=2, si=0x500, steer=1, dap=dap(1, 0x1000, 0, 9)),
        rec(0x42, si=0x600, steer=1 | 0x20, dap=dap(4, 0xFFFF, 0xFFFF, 1, 0x120000, 0x18)),
        rec(0x48, si=0x700, steer=1, dap=struct.pack("<H", 0x42)), rec(0x01), rec(0x47, si=0x500, steer=1,
                                                                              dap=dap(0, 0, 0, 10**6)),
        rec(0x03, al=1, cx=0x0002, dx=0x0180, bx=0x2000), rec(0x00), rec(0x4E, al=6), rec(0x46),
        rec(0x42, si=0x500, ds=0x9E00, steer=1, dap=dap(1, 0, 0x9E00, 0)), rec(0x02, al=1, cx=1, dx=0x81),
    ]
    for opts, sectors in ((0, 1000), (1, 2047), (2, 0), (2, 1), (0x24, 63 * 16)):
        hdr = struct.pack("<BH", opts, sectors)
        with open(os.path.join(out, "seq-%02x-%d" % (opts, sectors)), "wb") as f:
            f.write(hdr + bytes(mbr) + b"".join(calls))
    for lba, note in ((5, 0), (9, 0x0C), (1, 0x80)):      # a bad sector (fault injection in sector 0's first bytes)
        bad = bytearray(mbr)
        bad[0:4] = struct.pack("<HBB", lba, 0xBD, note)
        with open(os.path.join(out, "fault-%d-%02x" % (lba, note)), "wb") as f:
            f.write(struct.pack("<BH", 0x60, 1000) + bytes(bad) + b"".join(calls))
    with open(os.path.join(out, "blank-mbr"), "wb") as f:
        f.write(struct.pack("<BH", 0, 500) + bytes(512) + b"".join(calls[:6]))


def seeds_cmdline(out):
    lines = [
        "vhd=auto", "/boot/vhdboot.elf vhd=hd0 trace", "vhd=hd1,2:/images/win.vhd timeout=0 mode=ro",
        "vhd=ps vhd_ignore_timestamp disk=bios", "vhd=module1+hd0,5+/x.vhd mode=snapshot snapshot=64M",
        "vhd=/dir/x.vhd timeout=12 disk=pio mode=rw", "vhd=hd15,128 snapshot=2G bogus=1 trace",
        "vhd=hd0:/a.vhd+hd1:/b.vhd+hd2:/c.vhd+hd3:/d.vhd+hd4:/e.vhd",
    ]
    for i, line in enumerate(lines):
        with open(os.path.join(out, "cmd%d" % i), "wb") as f:
            f.write(line.encode())


def seeds_int15(out):
    def mb(flags, lower, upper, res, low, calls, entries):
        body = b"".join(struct.pack("<IQQI", 20, b, l, t) for b, l, t in entries)
        return struct.pack("<IIIIBBBBB", flags, lower, upper, res, low, 0, 0, 0, calls) + body
    std = [(0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0xF0000, 0x10000, 2), (0x100000, 0x7EF0000, 1),
           (0x7FF0000, 0x10000, 3), (0xFFFC0000, 0x40000, 2)]
    big = std[:-1] + [(0x100000000, 0x80000000, 1), (0xFEC00000, 0x1000, 2)]
    for name, data in (("qemu-128m", mb(0x41, 639, 130048, 3, 4, 4, std)),
                       ("above-4g", mb(0x41, 639, 130048, 20, 40, 8, big)),
                       ("mem-only", mb(0x01, 639, 64512, 1, 0, 0, [])),
                       ("overlap", mb(0x40, 0, 0, 5, 8, 3, std + [(0x200000, 0x1000000, 2), (0x500000, 0x10, 1)]))):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


def seeds_mbinfo(out):
    def mods(flags, entries):
        body = b"".join(struct.pack("<IIII", a, b, s, 0) for a, b, s in entries)
        return struct.pack("<II", flags, len(entries)) + body
    strings = 0x800
    for name, data in (("one", mods(0x8, [(0x200000, 0x400000, strings)])),
                       ("three", mods(0x4f, [(0x200000, 0x300000, strings), (0x300000, 0x300000, 0),
                                             (0x7000000, 0x7ffffff, strings + 20)])),
                       ("nine", mods(0x8, [(0x100000 * i, 0x100000 * i + 4096, strings) for i in range(1, 10)])),
                       ("none", mods(0x1, []))):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data + b"\0" * 16 + b"/images/disk.vhd\0 second module\0")


def seeds_scan(out):
    """Small whole disks: a FAT12 partition holding VHDs (vhdtool), a VHD partition, a bare VHD, a bare FAT volume."""
    tool = os.path.join(os.path.dirname(os.path.dirname(HERE)), os.environ.get("BUILD", "build"), "vhdtool")
    tmp = tempfile.mkdtemp()
    try:
        env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
        fixed, dyn = os.path.join(tmp, "a.vhd"), os.path.join(tmp, "b.vhd")
        sh([tool, "create", "-t", "fixed", "-s", "64K", fixed])
        sh([tool, "create", "-t", "dynamic", "-s", "1M", dyn])
        img = os.path.join(tmp, "disk")
        disk(img, 2048, "label: dos\nstart=64, size=1600, type=1\nstart=1664, size=384, type=83\n")
        sh(["mkfs.fat", "-F", "12", "--offset", "64", "-n", "SCAN", img, "800"])
        sh(["mmd", "-i", img + "@@32K", "::/images", "::/vhd"], env=env)
        sh(["mcopy", "-i", img + "@@32K", fixed, "::/vhd/a.vhd"], env=env)
        sh(["mcopy", "-i", img + "@@32K", dyn, "::/images/Long name.vhd"], env=env)
        with open(img, "r+b") as f, open(fixed, "rb") as v:
            f.seek(1664 * 512)
            f.write(v.read())
        shutil.copy(img, os.path.join(out, "mbr-fat-vhdpart"))
        shutil.copy(dyn, os.path.join(out, "bare-dynamic"))
        vol = os.path.join(tmp, "vol")
        sh(["mkfs.fat", "-C", "-F", "12", "-n", "BARE", vol, "400"])
        sh(["mcopy", "-i", vol, fixed, "::/x.vhd"], env=env)
        shutil.copy(vol, os.path.join(out, "bare-fat"))
    except (subprocess.CalledProcessError, FileNotFoundError):
        pass
    finally:
        shutil.rmtree(tmp)


def seeds_handover(out):
    """Real tables made by handover/ho.c's builder: the target writes them itself (HANDOVER_SEED_DIR)."""
    fuzzer = os.path.join(os.path.dirname(os.path.dirname(HERE)), os.environ.get("BUILD", "build"), "fuzz_handover")
    subprocess.run([fuzzer, "-runs=0"], env=dict(os.environ, HANDOVER_SEED_DIR=os.path.abspath(out)),
                   check=True, capture_output=True, timeout=120)


def seeds_fs(out):
    """FAT12, exFAT and NTFS volumes with /images/a.vhd and a long name: the same ones test_fuzz_fs.py makes."""
    sys.path.insert(0, os.path.dirname(HERE))      # tests/: conftest's helpers
    sys.path.insert(0, HERE)
    import test_fuzz_fs
    tmp = tempfile.mkdtemp()
    try:
        test_fuzz_fs.seeds(os.path.join(tmp, "seeds"), tmp)
        for name in os.listdir(os.path.join(tmp, "seeds")):
            shutil.copyfile(os.path.join(tmp, "seeds", name), os.path.join(out, name))
    finally:
        shutil.rmtree(tmp)


def main():
    target, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    if target == "vhd":
        subprocess.run([sys.executable, os.path.join(HERE, "make_seeds.py"), out], check=True)
        return
    writer = globals().get("seeds_" + target)
    if writer:
        writer(out)


if __name__ == "__main__":
    main()
