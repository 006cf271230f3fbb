"""test_fs_images.py: fs/ (partitions, FAT, extents) against real images made with sfdisk, mkfs.fat and mtools.

Every image is built at test time. build/fsprobe (tests/host/fsprobe.c) reads them through fs/;
its answers are compared with sfdisk --json, mdir, mtype, mshowfat and the bytes that were copied in.
"""
import json
import os
import random
import re
import subprocess
import zlib

import pytest

from conftest import ROOT, BUILD, run, have

SECTOR = 512
MT_ENV = dict(os.environ, MTOOLS_SKIP_CHECK="1", LC_ALL="C.UTF-8", LANG="C.UTF-8")


@pytest.fixture(scope="session")
def probe():
    """(plain, sanitized) fsprobe binaries, built through the Makefile."""
    for tool in ("mkfs.fat", "sfdisk", "mcopy", "mdir", "mtype", "mshowfat", "mmd", "mdel"):
        assert have(tool), "%s missing: tools/install-deps.sh installs dosfstools, fdisk and mtools" % tool
    run(["make", "-s", "-C", ROOT, os.path.join("build", "fsprobe"), os.path.join("build", "fsprobe-san")],
        timeout=600)
    return os.path.join(BUILD, "fsprobe"), os.path.join(BUILD, "fsprobe-san")


def mt(args, rc=0):
    """Run an mtools command (UTF-8 locale so long names keep their characters)."""
    p = subprocess.run(args, capture_output=True, env=MT_ENV, timeout=120)
    assert p.returncode == rc, "%s -> %d\n%s" % (args, p.returncode, p.stderr.decode("utf-8", "replace"))
    return p.stdout


def make_disk(path, mib, script=None):
    with open(path, "wb") as fh:
        fh.truncate(mib << 20)
    if script:
        run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", str(path)], input=script.encode())


def mkfs(path, fat, spc, offset=0, sectors=None, extra=()):
    """mkfs.fat -F fat -s spc on sectors sectors at offset (default: the whole file)."""
    if sectors is None:
        sectors = os.path.getsize(path) // SECTOR - offset
    args = ["mkfs.fat", "-F", str(fat), "-s", str(spc), "-n", "VOL%d" % fat, "--offset", str(offset)]
    run(args + list(extra) + [str(path), str(sectors // 2)])


def img(path, offset=0):
    return "%s@@%d" % (path, offset * SECTOR)


def fsprobe(binary, *args, rc=0):
    return run([binary] + [str(a) for a in args], rc=rc, text=True).stdout


def rand_bytes(rng, n):
    return bytes(rng.getrandbits(8) for _ in range(n)) if n < 4096 else rng.randbytes(n)


def populate(path, offset, tmp, rng, cluster):
    """Nested folders with long names and files of awkward sizes; returns {path: bytes}."""
    files = {}
    dirs = ["/images", "/images/Windows Images", "/vhd", "/deep", "/deep/a folder with a long name",
            "/deep/a folder with a long name/ünïcødé folder", "/deep/a folder with a long name/ünïcødé folder/SHORT"]
    mt(["mmd", "-i", img(path, offset)] + ["::" + d for d in dirs])
    sizes = [0, 1, 511, 512, 513, cluster - 1, cluster, cluster + 1, 3 * cluster + 100, 70000]
    names = ["/win.vhd", "/README.TXT", "/lower.txt", "/Mixed Case Name.Vhd", "/images/xp.vhd",
             "/images/Windows Images/Windows 10 Enterprise (x64).vhd", "/vhd/a.VHD", "/deep/x",
             "/deep/a folder with a long name/ünïcødé folder/café au lait.vhd",
             "/deep/a folder with a long name/ünïcødé folder/SHORT/exactly13char"]
    for i, name in enumerate(names):
        data = rand_bytes(rng, sizes[i % len(sizes)])
        src = tmp / ("src%d" % i)
        src.write_bytes(data)
        mt(["mcopy", "-i", img(path, offset), str(src), "::" + name])
        files[name] = data
    return files, dirs


def mdir_paths(path, offset):
    """Every path on the volume per `mdir -/ -b` (directories with a trailing '/')."""
    out = mt(["mdir", "-i", img(path, offset), "-/", "-b", "::/"]).decode("utf-8")
    return {line[2:] for line in out.splitlines() if line.startswith("::/")}


def probe_tree(binary, path, part):
    """{path: size or None for directories} from fsprobe tree."""
    out = fsprobe(binary, "tree", path, part)
    tree = {}
    for line in out.splitlines():
        kind, size, name = line.split(" ", 2)
        assert kind in "DF", line
        tree[name] = None if kind == "D" else int(size)
    return tree


def check_volume(binary, path, part, offset, files, dirs):
    """fsprobe's tree, file bytes and extents agree with mtools and with what was copied in."""
    tree = probe_tree(binary, path, part)
    want = {d + "/" for d in dirs} | set(files)
    assert {k + "/" if v is None else k for k, v in tree.items()} == want
    assert mdir_paths(path, offset) == want
    for name, data in files.items():
        assert tree[name] == len(data), name
        got = run([binary, "cat", path, part, name]).stdout
        assert got == data, name
    # mtype agrees on a couple of files (read through mtools, not Python)
    for name in list(files)[:3]:
        assert mt(["mtype", "-i", img(path, offset), "::" + name]) == files[name]
    # case-insensitive lookup with backslashes
    name = "/images/Windows Images/Windows 10 Enterprise (x64).vhd"
    got = run([binary, "cat", path, part, name.upper().replace("/", "\\")]).stdout
    assert got == files[name]
    return tree


def extents(binary, path, part, name):
    out = fsprobe(binary, "extents", path, part, name)
    head, *runs = out.splitlines()
    m = re.match(r"size (\d+) sectors (\d+) alloc (\d+) runs (\d+) cluster (\d+)", head)
    assert m, out
    runs = [tuple(int(x) for x in r.split()[1:]) for r in runs]
    return {"size": int(m.group(1)), "sectors": int(m.group(2)), "alloc": int(m.group(3)),
            "spc": int(m.group(5)), "runs": runs}


def mshowfat_runs(path, offset, name):
    """Cluster ranges of a file per mshowfat: [(first, last), ...]."""
    out = mt(["mshowfat", "-i", img(path, offset), "::" + name]).decode("utf-8")
    return [(int(a), int(b or a)) for a, b in re.findall(r"<(\d+)(?:-(\d+))?>", out)]


VOLUMES = [  # (FAT type, sectors per cluster, MiB)
    (12, 1, 2), (12, 4, 6), (12, 16, 30),
    (16, 1, 20), (16, 4, 40), (16, 64, 300),
    (32, 1, 40), (32, 8, 300),
]


@pytest.mark.parametrize("fat,spc,mib", VOLUMES, ids=["fat%d-s%d" % (f, s) for f, s, _ in VOLUMES])
def test_whole_disk_volume(probe, tmp_path, fat, spc, mib):
    """A superfloppy (no partition table): partition 0 is the whole disk."""
    path = tmp_path / "v.img"
    make_disk(path, mib)
    mkfs(path, fat, spc)
    files, dirs = populate(path, 0, tmp_path, random.Random(fat * 100 + spc), spc * SECTOR)
    info = fsprobe(probe[0], "info", path, 0)
    assert info.startswith("fat%d " % fat), info
    assert " spc %d " % spc in info
    assert "label 'VOL%d'" % fat in info
    check_volume(probe[0], path, 0, 0, files, dirs)
    # extents of every file: contiguous here, sized to the file, matching mshowfat
    for name, data in files.items():
        e = extents(probe[0], path, 0, name)
        assert e["size"] == len(data)
        assert e["sectors"] == (len(data) + 511) // 512
        assert sum(r[1] for r in e["runs"]) == e["alloc"] == -(-len(data) // (spc * SECTOR)) * spc
        if data:
            assert len(e["runs"]) == len(mshowfat_runs(path, 0, name))
    found = fsprobe(probe[0], "find", path, 0).splitlines()
    assert sorted(found) == sorted(["/win.vhd %d" % len(files["/win.vhd"]),
                                    "/Mixed Case Name.Vhd %d" % len(files["/Mixed Case Name.Vhd"]),
                                    "/images/xp.vhd %d" % len(files["/images/xp.vhd"]),
                                    "/vhd/a.VHD %d" % len(files["/vhd/a.VHD"])])
    # the sanitizer build agrees
    assert fsprobe(probe[1], "tree", path, 0) == fsprobe(probe[0], "tree", path, 0)


def sfdisk_json(path):
    return json.loads(run(["sfdisk", "--json", str(path)], text=True).stdout)["partitiontable"]


def parse_parts(out):
    lines = out.splitlines()
    scheme = lines[0]
    parts = {}
    for line in lines[1:]:
        if line.startswith("  name "):
            parts[last]["name"] = line[7:]
            continue
        f = line.split()
        last = int(f[0])
        parts[last] = {"start": int(f[1]), "size": int(f[2]), "type": f[3], "kind": f[4], "rest": f[5:]}
    return scheme, parts


def test_mbr_logical_partitions(probe, tmp_path):
    """2 primaries + an extended partition with 3 logicals, each a different FAT, each read through its view."""
    path = tmp_path / "mbr.img"
    make_disk(path, 200, "label: dos\n"
              "2048,81920,c,*\n"
              ",90000,f\n"
              ",20480,e\n"
              ",30000,b\n"
              ",16384,1\n"
              ",8192,6\n"
              ",8192,6\n")
    table = sfdisk_json(path)
    scheme, parts = parse_parts(fsprobe(probe[0], "parts", path))
    assert scheme == "scheme mbr"
    want = {}
    for p in table["partitions"]:
        n = int(re.search(r"(\d+)$", p["node"]).group(1))
        if p["type"] in ("5", "f", "85"):
            continue
        want[n] = (p["start"], p["size"], int(p["type"], 16))
    assert {n: (p["start"], p["size"], int(p["type"], 16)) for n, p in parts.items()} == want
    assert sorted(parts) == [1, 3, 4, 5, 6, 7]
    assert [parts[n]["kind"] for n in (1, 3, 4, 5, 6, 7)] == ["-"] * 3 + ["logical"] * 3
    ext = [p for p in table["partitions"] if p["type"] == "f"][0]
    for n in (5, 6, 7):  # inside the extended partition, behind their EBRs
        assert ext["start"] < parts[n]["start"] and parts[n]["start"] + parts[n]["size"] <= ext["start"] + ext["size"]
    fats = {1: (32, 1), 3: (16, 2), 4: (12, 8), 5: (12, 4), 6: (16, 1), 7: (12, 4)}
    rng = random.Random(7)
    for n, (fat, spc) in fats.items():
        start, size, _ = want[n]
        mkfs(path, fat, spc, start, size)
        files = {}
        for i in range(3):
            data = rand_bytes(rng, rng.randrange(0, 50000))
            src = tmp_path / ("p%d_%d" % (n, i))
            src.write_bytes(data)
            name = "/part %d file %d.vhd" % (n, i)
            mt(["mcopy", "-i", img(path, start), str(src), "::" + name])
            files[name] = data
        check = probe_tree(probe[0], path, n)
        assert check == {k: len(v) for k, v in files.items()}
        for name, data in files.items():
            assert run([probe[0], "cat", path, n, name]).stdout == data
        assert fsprobe(probe[0], "info", path, n).startswith("fat%d " % fat)
    # partition 2 is the extended container: not a volume; 4 does not exist
    assert "error part not-found" in fsprobe(probe[0], "info", path, 2, rc=1)
    assert "error part not-found" in fsprobe(probe[0], "info", path, 8, rc=1)


def test_gpt_partitions(probe, tmp_path):
    """GPT with names, read from the primary header, then from the backup, then refused."""
    path = tmp_path / "gpt.img"
    make_disk(path, 100, "label: gpt\n"
              'start=2048, size=40960, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="Basic data"\n'
              'size=20480, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI system ünï"\n'
              'start=100000, size=40000, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="linux"\n')
    table = sfdisk_json(path)
    out = fsprobe(probe[0], "parts", path)
    scheme, parts = parse_parts(out)
    assert scheme == "scheme gpt"
    want = {int(re.search(r"(\d+)$", p["node"]).group(1)): p for p in table["partitions"]}
    assert sorted(parts) == sorted(want) == [1, 2, 3]
    for n, p in want.items():
        assert parts[n]["start"] == p["start"]
        assert parts[n]["size"] == p["size"]
        assert parts[n]["type"] == p["type"].upper()
        assert parts[n]["name"] == p["name"]
    mkfs(path, 16, 4, 2048, 40960)
    mt(["mmd", "-i", img(path, 2048), "::/images"])
    src = tmp_path / "g.vhd"
    data = rand_bytes(random.Random(3), 12345)
    src.write_bytes(data)
    mt(["mcopy", "-i", img(path, 2048), str(src), "::/images/Guest Disk.vhd"])
    assert fsprobe(probe[0], "find", path, 1) == "/images/Guest Disk.vhd 12345\n"
    assert run([probe[0], "cat", path, 1, "/images/guest disk.VHD"]).stdout == data
    # primary header damaged: the backup at the last LBA is used
    raw = bytearray(path.read_bytes())
    raw[SECTOR + 40] ^= 0xFF
    path.write_bytes(raw)
    scheme2, parts2 = parse_parts(fsprobe(probe[0], "parts", path))
    assert scheme2 == "scheme gpt backup"
    assert parts2 == parts
    assert run([probe[0], "cat", path, 1, "/images/guest disk.VHD"]).stdout == data
    # both damaged: refused with the primary's reason
    raw[-SECTOR + 40] ^= 0xFF
    path.write_bytes(raw)
    assert fsprobe(probe[0], "parts", path, rc=1) == "error gpt-header-crc\n"
    # entry array damaged (primary and backup)
    raw[SECTOR + 40] ^= 0xFF
    raw[-SECTOR + 40] ^= 0xFF
    raw[2 * SECTOR + 56] ^= 0xFF
    table_bytes = 128 * 128
    raw[-SECTOR - table_bytes + 56] ^= 0xFF
    path.write_bytes(raw)
    assert fsprobe(probe[0], "parts", path, rc=1) == "error gpt-entries-crc\n"


def test_partition_beyond_disk(probe, tmp_path):
    """A truncated disk: the partition that no longer fits is refused, the others are listed."""
    path = tmp_path / "trunc.img"
    make_disk(path, 64, "label: dos\n2048,20480,6\n,40960,c\n")
    with open(path, "r+b") as fh:
        fh.truncate(25 << 20)
    out = fsprobe(probe[0], "parts", path, rc=1)
    assert "1 2048 20480 0x06 -\n" in out
    assert re.search(r"^2 22528 40960 0x0c - error beyond-disk$", out, re.M), out
    assert "error part beyond-disk" in fsprobe(probe[0], "info", path, 2, rc=1)


def test_unsupported_volumes(probe, tmp_path):
    """4096-byte logical sectors and an undersized FAT32 get their own error."""
    path = tmp_path / "4k.img"
    make_disk(path, 64)
    run(["mkfs.fat", "-F", "32", "-S", "4096", str(path)])
    assert fsprobe(probe[0], "info", path, 0, rc=1) == "error fat sector-size-unsupported\n"
    path = tmp_path / "small32.img"
    make_disk(path, 40)
    run(["mkfs.fat", "-F", "32", "-s", "8", str(path)])  # warns: too few clusters for FAT32
    assert fsprobe(probe[0], "info", path, 0, rc=1) == "error fat type-mismatch\n"


def fragmented_volume(tmp_path, fat, spc, mib):
    """A volume whose /frag.vhd is scattered over the holes left by deleted files."""
    path = tmp_path / "frag.img"
    make_disk(path, mib)
    mkfs(path, fat, spc)
    cl = spc * SECTOR
    rng = random.Random(fat)
    # interleave two series of files (a: 1 cluster, b: 2 clusters), delete the a's, copy a third file
    a = tmp_path / "a"
    b = tmp_path / "b"
    a.write_bytes(b"a" * cl)
    b.write_bytes(b"b" * (2 * cl))
    keep = {}
    for i in range(40):
        mt(["mcopy", "-i", img(path), str(a), "::/a%02d" % i])
        mt(["mcopy", "-i", img(path), str(b), "::/b%02d" % i])
        keep["/b%02d" % i] = b.read_bytes()
    mt(["mdel", "-i", img(path)] + ["::/a%02d" % i for i in range(40)])
    if fat == 32:
        # mtools allocates after FSInfo's next-free hint: point it back at the start so the holes get used
        with open(path, "r+b") as fh:
            fh.seek(SECTOR + 492)
            fh.write((2).to_bytes(4, "little"))
    data = rand_bytes(rng, 30 * cl + 777)
    src = tmp_path / "frag.vhd"
    src.write_bytes(data)
    mt(["mcopy", "-i", img(path), str(src), "::/frag.vhd"])
    return path, data, keep


@pytest.mark.parametrize("fat,spc,mib", [(12, 1, 2), (16, 2, 32), (32, 1, 40)], ids=["fat12", "fat16", "fat32"])
def test_fragmented_file(probe, tmp_path, fat, spc, mib):
    path, data, keep = fragmented_volume(tmp_path, fat, spc, mib)
    chains = mshowfat_runs(path, 0, "/frag.vhd")
    assert len(chains) >= 20, "not fragmented: %s" % chains  # really scattered, per mtools
    e = extents(probe[0], path, 0, "/frag.vhd")
    assert len(e["runs"]) == len(chains)
    info = fsprobe(probe[0], "info", path, 0)
    data_start = int(re.search(r" data (\d+)", info).group(1))
    for (fs, n, lba), (c0, c1) in zip(e["runs"], chains):
        assert lba == data_start + (c0 - 2) * spc
        assert n == (c1 - c0 + 1) * spc
    assert run([probe[0], "cat", path, 0, "/frag.vhd"]).stdout == data
    assert run([probe[1], "cat", path, 0, "/frag.vhd"]).stdout == data
    # writes through ext_blk land in the right clusters: over a run boundary, then the last sector
    first_run_end = e["runs"][0][1]
    lba = first_run_end - 1
    out = fsprobe(probe[0], "write", path, 0, "/frag.vhd", lba, 3, 0x5A)
    assert out == "ok\n"
    expect = bytearray(data)
    expect[lba * SECTOR:(lba + 3) * SECTOR] = b"\x5a" * (3 * SECTOR)
    last = e["sectors"] - 1
    assert fsprobe(probe[0], "write", path, 0, "/frag.vhd", last, 1, 0x33) == "ok\n"
    expect[last * SECTOR:] = b"\x33" * (len(data) - last * SECTOR)
    # past the size (inside the last cluster, or beyond it): refused, nothing changes
    assert fsprobe(probe[0], "write", path, 0, "/frag.vhd", e["sectors"], 1, 0x44) == "nospace\n"
    assert fsprobe(probe[0], "write", path, 0, "/frag.vhd", e["alloc"] + 5, 1, 0x44) == "nospace\n"
    assert fsprobe(probe[0], "write", path, 0, "/frag.vhd", last, 2, 0x44) == "nospace\n"
    assert mt(["mtype", "-i", img(path), "::/frag.vhd"]) == bytes(expect)
    for name, content in keep.items():
        assert mt(["mtype", "-i", img(path), "::" + name]) == content, name
    # the file system itself is untouched: fsck finds nothing to fix
    res = subprocess.run(["fsck.fat", "-n", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_freestanding_objects():
    """fs/ builds with the kernel's flags and needs nothing from libgcc (no 64-bit division); block/ is its only dependency."""
    objs = [os.path.join("build", "k", "fs", f[:-2] + ".o")
            for f in sorted(os.listdir(os.path.join(ROOT, "fs"))) if f.endswith(".c")]
    run(["make", "-s", "-C", ROOT] + objs, timeout=300)
    undefined, defined = set(), set()
    for o in objs:
        out = run(["i686-linux-gnu-nm", "-u", os.path.join(ROOT, o)], text=True).stdout
        undefined |= {line.split()[-1] for line in out.splitlines() if line.strip()}
        out = run(["i686-linux-gnu-nm", "--defined-only", "-g", os.path.join(ROOT, o)], text=True).stdout
        defined |= {line.split()[-1] for line in out.splitlines() if line.strip()}
    undefined -= defined  # fs/ files calling each other (fs.c -> fat.c, exfat.c)
    ours = {"blk_read", "blk_write", "blk_write_zeroes", "blk_flush", "blk_window_init",  # block/blk.c
            "utf8_put"}  # block/utf8.c
    assert undefined <= ours | {"memcpy", "memset", "memcmp"}, undefined - ours


def corrupt_run(binary, path, rng, regions):
    """Damage 1-8 random bytes of path in regions, run `binary walk` on it, then put the bytes back."""
    with open(path, "r+b") as fh:
        saved = []
        for _ in range(rng.randrange(1, 9)):
            lo, hi = rng.choice(regions)
            pos = rng.randrange(lo, hi)
            fh.seek(pos)
            old = fh.read(1)[0]
            saved.append((pos, old))
            fh.seek(pos)
            fh.write(bytes([rng.choice([0, 0xFF, rng.randrange(256), old ^ (1 << rng.randrange(8))])]))
        fh.flush()
        run([binary, "walk", path], timeout=60)
        for pos, old in reversed(saved):
            fh.seek(pos)
            fh.write(bytes([old]))


def test_random_corruption_never_crashes(probe, tmp_path):
    """Random damage to partition tables, BPBs, FATs and directories: fsprobe-san walks everything
    (every partition, tree, *.vhd search, every file mapped and read) without a sanitizer report."""
    # MBR disk: FAT12 primary, FAT16 logical, FAT32 primary
    path = tmp_path / "base.img"
    make_disk(path, 72, "label: dos\n2048,6144,1\n,10240,5\n,69000,c\n,2048,83\n,8192,6\n")
    parts = {p["node"][len(str(path)):]: p for p in sfdisk_json(path)["partitions"]}
    assert sorted(parts) == ["1", "2", "3", "4", "5"]
    logical_start = parts["5"]["start"]
    mkfs(path, 12, 2, parts["1"]["start"], parts["1"]["size"])
    mkfs(path, 16, 1, logical_start, parts["5"]["size"])
    mkfs(path, 32, 1, parts["3"]["start"], parts["3"]["size"])
    rng = random.Random(1234)
    ebr = parts["2"]["start"] * SECTOR
    regions = [(0, SECTOR), (ebr, ebr + SECTOR)]
    for n in ("1", "5", "3"):
        start = parts[n]["start"]
        mt(["mmd", "-i", img(path, start), "::/images", "::/images/a long directory name"])
        for i in range(6):
            src = tmp_path / "f"
            src.write_bytes(rand_bytes(rng, rng.randrange(0, 20000)))
            mt(["mcopy", "-i", img(path, start), str(src), "::/images/a long directory name/file number %d.vhd" % i])
            mt(["mcopy", "-i", img(path, start), str(src), "::/F%d.VHD" % i])
        o = start * SECTOR
        # BPB, the first FAT sectors, root directory / first data sectors
        data = int(re.search(r" data (\d+)", fsprobe(probe[0], "info", path, n)).group(1))
        regions += [(o, o + 90), (o + 32 * SECTOR if n == "3" else o + SECTOR, o + 40 * SECTOR),
                    (o + data * SECTOR, o + (data + 64) * SECTOR)]
    base = run([probe[1], "walk", path], text=True).stdout
    assert base.count("volume part") == 3, base
    for i in range(300):
        corrupt_run(probe[1], path, rng, regions)
    assert run([probe[1], "walk", path], text=True).stdout == base  # every byte was put back
    # GPT disk, corrupt the header and entries too (CRCs usually reject it: also fix them up sometimes)
    gpath = tmp_path / "gbase.img"
    make_disk(gpath, 12, "label: gpt\n2048,16384\n")
    mkfs(gpath, 12, 4, 2048, 16384)
    with open(gpath, "r+b") as fh:
        head = fh.read(34 * SECTOR)
        for i in range(150):
            raw = bytearray(head)
            for _ in range(rng.randrange(1, 6)):
                pos = rng.choice([rng.randrange(SECTOR, SECTOR + 92), rng.randrange(2 * SECTOR, 2 * SECTOR + 256)])
                raw[pos] = rng.randrange(256)
            if rng.random() < 0.7:  # make the damage pass the CRC checks, to reach the entry parsing
                n, size = int.from_bytes(raw[SECTOR + 80:SECTOR + 84], "little"), \
                    int.from_bytes(raw[SECTOR + 84:SECTOR + 88], "little")
                if n * size <= 32 * SECTOR:
                    raw[SECTOR + 88:SECTOR + 92] = zlib.crc32(raw[2 * SECTOR:2 * SECTOR + n * size]).to_bytes(4, "little")
                hsize = min(max(int.from_bytes(raw[SECTOR + 12:SECTOR + 16], "little"), 92), SECTOR)
                raw[SECTOR + 16:SECTOR + 20] = bytes(4)
                raw[SECTOR + 16:SECTOR + 20] = zlib.crc32(raw[SECTOR:SECTOR + hsize]).to_bytes(4, "little")
            fh.seek(0)
            fh.write(raw)
            fh.flush()
            run([probe[1], "walk", gpath], timeout=60)
        fh.seek(0)
        fh.write(head)
    for i in range(50):
        corrupt_run(probe[1], gpath, rng, [(2048 * SECTOR, 2060 * SECTOR)])
