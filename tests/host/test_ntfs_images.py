"""test_ntfs_images.py: fs/ntfs.c through fs/fs.h against real NTFS volumes made with mkntfs and filled through ntfs-3g.

Every image is built at test time (mkntfs -Q, files copied in through an ntfs-3g FUSE mount). build/fsprobe's fs-*
commands read them through fs/; the answers are compared with the host's view of the mounted volume. Compressed,
sparse-with-holes, uninitialized (ntfsfallocate) and encrypted files must be refused by name; ntfsfix -n must pass
after fsprobe wrote into a file.
"""
import os
import random
import re
import struct
import subprocess

import pytest

from conftest import run
from fsimg import (SECTOR, TREE_FILES, build_probe, check_fragmented_file, fsprobe, fuse_mounted, host_tree, populate,
                   probe_tree, runs_of, survives)


@pytest.fixture(scope="session")
def probe():
    return build_probe(("mkntfs", "ntfs-3g", "ntfsfix", "ntfsfallocate", "ntfsinfo", "setfattr"), "ntfs-3g and attr")


def mounted(path, mnt, opts="big_writes"):
    """The NTFS volume in file path mounted at mnt through ntfs-3g with opts."""
    return fuse_mounted(["ntfs-3g", "-o", opts, str(path)], mnt)


def mkntfs(path, mib, cluster=4096, label="NTVOL"):
    with open(path, "wb") as fh:
        fh.truncate(mib << 20)
    run(["mkntfs", "-F", "-Q", "-q", "-c", str(cluster), "-L", label, str(path)])


def ntfsfix_clean(path):
    p = subprocess.run(["ntfsfix", "-n", str(path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "processed successfully" in p.stdout, p.stdout + p.stderr


@pytest.mark.parametrize("cluster", [4096, 512, 65536])
def test_tree_names_and_bytes(probe, tmp_path, cluster):
    """Long and non-ASCII names, a 300-entry folder (INDX blocks), awkward sizes: the tree and bytes equal the host's;
    lookups ignore case through $UpCase."""
    rng = random.Random(cluster)
    path = tmp_path / "nt.img"
    mkntfs(path, 64, cluster)
    with mounted(path, tmp_path / "mnt") as mnt:
        files = populate(mnt, rng, cluster)
        want = host_tree(mnt)
    ntfsfix_clean(path)
    assert fsprobe(probe[0], "fs-info", path, 0).startswith("NTFS label 'NTVOL'")
    assert probe_tree(probe[0], path) == want
    assert fsprobe(probe[1], "fs-tree", path, 0) == fsprobe(probe[0], "fs-tree", path, 0)
    for name, data in files.items():
        if len(data) < 1024:
            continue                  # resident data (inside the MFT record): refused, see below
        assert fsprobe(probe[0], "fs-cat", path, 0, name, text=False) == data, name
    small = [n for n, d in files.items() if 0 < len(d) < 600][0]
    assert "error refused resident" in fsprobe(probe[0], "fs-extents", path, 0, small, rc=1)
    up = "/DEEP/A FOLDER WITH A RATHER LONG NAME INDEED/ÜNÏCØDÉ дИСК 日本語/CAFÉ AU LAIT.VHD"
    exact = "/" + TREE_FILES[7]
    rc = 1 if len(files[exact]) < 1024 else 0
    assert fsprobe(probe[0], "fs-extents", path, 0, up, rc=rc) == fsprobe(probe[0], "fs-extents", path, 0, exact, rc=rc)
    for i in (0, 150, 299):
        name = "/BIG DIR/FILE NUMBER %03d WITH A LONG NAME.TXT" % i
        assert "error refused resident" in fsprobe(probe[0], "fs-extents", path, 0, name, rc=1)
    assert "error not-found" in fsprobe(probe[0], "fs-extents", path, 0, "/big dir/file number 300 with a long name.txt",
                                         rc=1)
    found = sorted(fsprobe(probe[0], "fs-find", path, 0).splitlines())
    listed = [n for n in files if n.lower().endswith(".vhd") and
              (n.count("/") == 1 or n.startswith(("/vhd/", "/images/")) and n.count("/") == 2)]
    assert found == sorted("%s %d" % (n, len(files[n])) for n in listed)


def test_big_directory_lookup(probe, tmp_path):
    """3000 files in one folder (a two-level index tree): every 97th is found by a case-folded lookup and the
    listing has all of them."""
    path = tmp_path / "nt.img"
    mkntfs(path, 64)
    with mounted(path, tmp_path / "mnt") as mnt:
        os.makedirs(os.path.join(mnt, "many"))
        for i in range(3000):
            with open(os.path.join(mnt, "many", "Image file number %05d of many.vhd" % i), "wb") as fh:
                fh.write(b"x" * (2048 if i % 97 == 0 else 1))
    tree = probe_tree(probe[0], path)
    assert sum(1 for n in tree if n.startswith("/many/")) == 3000
    for i in range(0, 3000, 97):
        out = fsprobe(probe[0], "fs-extents", path, 0, "/MANY/image FILE number %05d OF MANY.VHD" % i)
        assert out.startswith("size 2048 "), out


def test_fragmented_file_and_writes(probe, tmp_path):
    """Fill, delete every other file, copy: many runs, exact bytes, writes across runs persisted (ntfsfix -n clean)."""
    rng = random.Random(5)
    path = tmp_path / "frag.img"
    mkntfs(path, 24)
    check_fragmented_file(probe, path, mounted, tmp_path / "mnt", ntfsfix_clean, rng.randbytes(3 << 20), 20, 5,
                          drop_last=True)


def test_refused_files(probe, tmp_path):
    """Compressed (a compressed folder), sparse with holes, sparse fully written (served), allocated but never
    written (ntfsfallocate) and EFS-flagged files: each refused by name, or served."""
    path = tmp_path / "nt.img"
    mkntfs(path, 64)
    rng = random.Random(9)
    full = rng.randbytes(1 << 20)
    with mounted(path, tmp_path / "mnt", "big_writes,compression") as mnt:
        os.makedirs(os.path.join(mnt, "zip"))
        run(["setfattr", "-h", "-v", "0x00000800", "-n", "system.ntfs_attrib_be", os.path.join(mnt, "zip")])
        with open(os.path.join(mnt, "zip", "packed.vhd"), "wb") as fh:
            fh.write(b"compressible " * 100000)
        with open(os.path.join(mnt, "holes.vhd"), "wb") as fh:
            fh.truncate(8 << 20)
            fh.seek(4 << 20)
            fh.write(b"middle")
        with open(os.path.join(mnt, "filled.vhd"), "wb") as fh:
            fh.truncate(1 << 20)                     # sparse first, then every byte written
            fh.seek(0)
            fh.write(full)
        open(os.path.join(mnt, "alloc.vhd"), "wb").close()
        with open(os.path.join(mnt, "efs.vhd"), "wb") as fh:
            fh.write(full)
    run(["ntfsfallocate", "-l", "2M", str(path), "alloc.vhd"])
    assert "error refused compressed" in fsprobe(probe[0], "fs-extents", path, 0, "/zip/packed.vhd", rc=1)
    assert "error refused sparse-holes" in fsprobe(probe[0], "fs-extents", path, 0, "/holes.vhd", rc=1)
    assert fsprobe(probe[0], "fs-cat", path, 0, "/filled.vhd", text=False) == full
    assert "error refused uninitialized" in fsprobe(probe[0], "fs-extents", path, 0, "/alloc.vhd", rc=1)
    # EFS: set the encrypted flag of efs.vhd's $DATA attribute in its MFT record (fix-ups untouched).
    info = run(["ntfsinfo", "-F", "/efs.vhd", str(path)], text=True).stdout
    inode = int(re.search(r"Dumping Inode (\d+)", info).group(1))
    raw = bytearray(open(path, "rb").read())
    spc = raw[13]
    mft = struct.unpack_from("<Q", raw, 0x30)[0] * spc * SECTOR
    rec = mft + inode * 1024
    assert raw[rec:rec + 4] == b"FILE"
    off = struct.unpack_from("<H", raw, rec + 0x14)[0]
    while struct.unpack_from("<I", raw, rec + off)[0] != 0x80:
        off += struct.unpack_from("<I", raw, rec + off + 4)[0]
    raw[rec + off + 13] |= 0x40                      # flags 0x4000: encrypted
    p2 = tmp_path / "efs.img"
    p2.write_bytes(raw)
    assert "error refused encrypted" in fsprobe(probe[0], "fs-extents", p2, 0, "/efs.vhd", rc=1)


def test_file_over_4gib(probe, tmp_path):
    """A 4100 MiB file written in full through ntfs-3g (host image made sparse again afterwards): its size,
    its listing and its last sectors through the runs."""
    path = tmp_path / "big.img"
    mkntfs(path, 4300, 65536)
    size = 4100 << 20
    with mounted(path, tmp_path / "mnt") as mnt:
        with open(os.path.join(mnt, "huge.vhd"), "wb") as fh:
            zero = bytes(4 << 20)
            for _ in range(size // len(zero) - 1):
                fh.write(zero)
            fh.write(zero[:-4096] + b"T" * 4096)
    run(["fallocate", "--dig-holes", str(path)])
    ntfsfix_clean(path)
    out = fsprobe(probe[0], "fs-extents", path, 0, "/huge.vhd")
    assert out.startswith("size %d sectors %d " % (size, size // SECTOR)), out
    runs = runs_of(out)
    assert sum(r[1] for r in runs) == size // SECTOR
    last = runs[-1]
    with open(path, "rb") as fh:
        fh.seek((last[2] + last[1] - 8) * SECTOR)
        assert fh.read(4096) == b"T" * 4096


def test_random_corruption_never_crashes(probe, tmp_path):
    """Random damage to the boot sector, the MFT and index blocks: fsprobe-san walks the tree and reads files
    without a sanitizer report or a hang."""
    rng = random.Random(13)
    path = tmp_path / "nt.img"
    mkntfs(path, 16)
    with mounted(path, tmp_path / "mnt") as mnt:
        files = populate(mnt, rng, 4096)
    base = open(path, "rb").read()
    mft = struct.unpack_from("<Q", base, 0x30)[0] * base[13] * SECTOR
    regions = [(0, SECTOR), (mft, mft + 64 * 1024)]
    # The INDX blocks of the big folder: wherever "INDX" appears.
    idx = [i for i in range(0, len(base), 4096) if base[i:i + 4] == b"INDX"]
    regions += [(i, i + 4096) for i in idx[:4]]
    for case in range(150):
        raw = bytearray(base)
        lo, hi = regions[case % len(regions)]
        for _ in range(rng.randint(1, 8)):
            raw[rng.randrange(lo, hi)] = rng.randrange(256)
        p = tmp_path / "c.img"
        p.write_bytes(raw)
        for args in (["fs-tree"], ["fs-cat", "/" + TREE_FILES[8]], ["fs-find"]):
            survives(probe[1], p, *args, what="case %d" % case)
