"""test_exfat_images.py: fs/exfat.c through fs/fs.h against real exFAT volumes made with mkfs.exfat and filled through exfat-fuse.

Every image is built at test time (mkfs.exfat from exfatprogs, files copied in through mount.exfat-fuse on a loop
device). build/fsprobe's fs-* commands read them through fs/; the answers are compared with the host's view of the
mounted volume, and fsck.exfat -n must call every volume clean after fsprobe wrote into it.
"""
import contextlib
import os
import random
import re
import subprocess

import pytest

from conftest import run
from fsimg import (SECTOR, TREE_FILES, build_probe, check_fragmented_file, fsprobe, fuse_mounted, host_tree, populate,
                   probe_tree, runs_of, survives)


@pytest.fixture(scope="session")
def probe():
    return build_probe(("mkfs.exfat", "fsck.exfat", "mount.exfat-fuse", "losetup"), "exfatprogs and exfat-fuse")


@contextlib.contextmanager
def mounted(path, mnt):
    """The exFAT volume in file path mounted at mnt through a loop device and exfat-fuse."""
    loop = run(["losetup", "-f", "--show", str(path)], text=True).stdout.strip()
    try:
        with fuse_mounted(["mount.exfat-fuse", loop], mnt) as m:
            yield m
    finally:
        run(["losetup", "-d", loop])


def mkexfat(path, mib, cluster=None, label="EXVOL"):
    with open(path, "wb") as fh:
        fh.truncate(mib << 20)
    run(["mkfs.exfat", "-L", label] + (["-c", cluster] if cluster else []) + [str(path)])


def fsck_clean(path):
    p = subprocess.run(["fsck.exfat", "-n", str(path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "clean" in p.stdout, p.stdout + p.stderr


@pytest.mark.parametrize("cluster,csize", [("4K", 4096), ("512", 512), ("64K", 65536)])
def test_tree_names_and_bytes(probe, tmp_path, cluster, csize):
    """Long and non-ASCII names, a 300-entry folder, awkward sizes: fsprobe's tree and bytes equal the host's."""
    rng = random.Random(csize)
    path = tmp_path / "ex.img"
    mkexfat(path, 64, cluster)
    with mounted(path, tmp_path / "mnt") as mnt:
        files = populate(mnt, rng, csize)
        want = host_tree(mnt)
    fsck_clean(path)
    info = fsprobe(probe[0], "fs-info", path, 0)
    assert info.startswith("exFAT label 'EXVOL'"), info
    assert probe_tree(probe[0], path) == want
    assert fsprobe(probe[1], "fs-tree", path, 0) == fsprobe(probe[0], "fs-tree", path, 0)
    for name, data in files.items():
        assert fsprobe(probe[0], "fs-cat", path, 0, name, text=False) == data, name
    # Case-insensitive lookup through the upcase table, non-ASCII letters included.
    up = "/DEEP/A FOLDER WITH A RATHER LONG NAME INDEED/ÜNÏCØDÉ дИСК 日本語/CAFÉ AU LAIT.VHD"
    assert fsprobe(probe[0], "fs-cat", path, 0, up, text=False) == files["/" + TREE_FILES[7]]
    assert "error not-found" in fsprobe(probe[0], "fs-extents", path, 0, "/no such.vhd", rc=1)
    assert "error not-dir" in fsprobe(probe[0], "fs-extents", path, 0, "/win.vhd/x", rc=1)
    # The scan's listing: *.vhd in /, /vhd, /images, suffixes case-insensitive.
    found = sorted(fsprobe(probe[0], "fs-find", path, 0).splitlines())
    listed = [n for n in files if n.lower().endswith(".vhd") and
              (n.count("/") == 1 or n.startswith(("/vhd/", "/images/")) and n.count("/") == 2)]
    assert found == sorted("%s %d" % (n, len(files[n])) for n in listed)


def test_fragmented_file_and_writes(probe, tmp_path):
    """Fill, delete every other file, copy: the file's runs, its bytes, and writes into it (fsck.exfat clean after)."""
    rng = random.Random(7)
    path = tmp_path / "frag.img"
    mkexfat(path, 16, "4K")
    check_fragmented_file(probe, path, mounted, tmp_path / "mnt", fsck_clean, rng.randbytes(2 << 20), 100, 3)


def test_file_over_4gib(probe, tmp_path):
    """A 4100 MiB file (sparse host image, 1 MiB clusters): one run, its tail read exactly."""
    path = tmp_path / "big.img"
    mkexfat(path, 4300, "1M")
    size = 4100 << 20
    with mounted(path, tmp_path / "mnt") as mnt:
        with open(os.path.join(mnt, "huge.vhd"), "wb") as fh:
            fh.truncate(size)
            fh.seek(size - 4096)
            fh.write(b"T" * 4096)
    run(["fallocate", "--dig-holes", str(path)])
    fsck_clean(path)
    out = fsprobe(probe[0], "fs-extents", path, 0, "/huge.vhd")
    assert out.startswith("size %d sectors %d " % (size, size // SECTOR)), out
    assert "huge.vhd %d" % size in fsprobe(probe[0], "fs-find", path, 0)
    # The file's last 8 sectors, found through its runs, hold what was written there.
    last = runs_of(out)[-1]
    end_lba = last[2] + (size // SECTOR - last[0]) - 8
    with open(path, "rb") as fh:
        fh.seek(end_lba * SECTOR)
        assert fh.read(4096) == b"T" * 4096


def entry_sets(img, name):
    """Byte offsets in img of the file entry set (file, stream, names) whose name is name (first match)."""
    raw = open(img, "rb").read()
    units = name.encode("utf-16-le")
    at = raw.find(units[:30])
    assert at > 0
    start = at - 2 - 32 - 32         # name entry's data starts 2 bytes in; stream and file entries before it
    assert raw[start] == 0x85 and raw[start + 32] == 0xC0, hex(raw[start])
    return start


def set_checksum(b):
    s = 0
    for k, x in enumerate(b):
        if k in (2, 3):
            continue
        s = ((0x8000 if s & 1 else 0) + (s >> 1) + x) & 0xFFFF
    return s


def test_nofatchain_and_damage(probe, tmp_path):
    """A file turned into a NoFatChain (contiguous) one stays readable and fsck-clean; a bad set checksum, a bad
    main boot region (backup used) and both regions bad are reported by name."""
    rng = random.Random(3)
    path = tmp_path / "ex.img"
    mkexfat(path, 32, "4K")
    data = rng.randbytes(300000)
    with mounted(path, tmp_path / "mnt") as mnt:
        with open(os.path.join(mnt, "contig.vhd"), "wb") as fh:
            fh.write(data)
    out = fsprobe(probe[0], "fs-extents", path, 0, "/contig.vhd")
    assert "runs 1" in out, out
    off = entry_sets(path, "contig.vhd")
    raw = bytearray(open(path, "rb").read())
    sc = raw[off + 1]
    raw[off + 32 + 1] |= 0x02                          # NoFatChain
    cs = set_checksum(raw[off:off + 32 * (sc + 1)])
    raw[off + 2:off + 4] = cs.to_bytes(2, "little")
    # The FAT entries of a NoFatChain file are not used: zero them, as a driver that wrote it contiguously would.
    fat_off = int.from_bytes(raw[80:84], "little") * SECTOR
    first = int.from_bytes(raw[off + 32 + 20:off + 32 + 24], "little")
    nclus = (len(data) + 4095) // 4096
    raw[fat_off + first * 4:fat_off + (first + nclus) * 4] = bytes(4 * nclus)
    open(path, "wb").write(raw)
    fsck_clean(path)
    assert fsprobe(probe[1], "fs-cat", path, 0, "/CONTIG.VHD", text=False) == data
    # A damaged set checksum.
    bad = bytearray(raw)
    bad[off + 2] ^= 0xFF
    p2 = tmp_path / "badset.img"
    p2.write_bytes(bad)
    assert "error set-checksum" in fsprobe(probe[0], "fs-extents", p2, 0, "/contig.vhd", rc=1)
    # Main boot region damaged: the backup serves.
    bad = bytearray(raw)
    bad[200] ^= 0x55                                   # boot code of sector 0: the checksum no longer matches
    p3 = tmp_path / "badboot.img"
    p3.write_bytes(bad)
    assert "backup-boot boot-checksum" in fsprobe(probe[0], "fs-info", p3, 0)
    assert fsprobe(probe[0], "fs-cat", p3, 0, "/contig.vhd", text=False) == data
    bad[12 * SECTOR + 200] ^= 0x55
    p3.write_bytes(bad)
    assert fsprobe(probe[0], "fs-info", p3, 0, rc=1) == "error exFAT boot-checksum\n"


def test_random_corruption_never_crashes(probe, tmp_path):
    """Random damage to the boot region, FAT, bitmap, upcase table and directories: fsprobe-san reads the tree
    and every file without a sanitizer report or a hang."""
    rng = random.Random(11)
    path = tmp_path / "ex.img"
    mkexfat(path, 8, "4K")
    with mounted(path, tmp_path / "mnt") as mnt:
        files = populate(mnt, rng, 4096)
    base = open(path, "rb").read()
    heap = int.from_bytes(base[88:92], "little") * SECTOR
    regions = [(0, 24 * SECTOR), (24 * SECTOR, heap), (heap, heap + 64 * 4096)]
    for case in range(120):
        raw = bytearray(base)
        lo, hi = regions[case % len(regions)]
        for _ in range(rng.randint(1, 8)):
            raw[rng.randrange(lo, hi)] = rng.randrange(256)
        p = tmp_path / "c.img"
        p.write_bytes(raw)
        survives(probe[1], p, "fs-tree", what="case %d" % case)
        for name in list(files)[:4]:
            survives(probe[1], p, "fs-cat", name, what="case %d" % case)
