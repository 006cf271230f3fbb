"""fsimg.py: what the exFAT and NTFS image tests share: building and calling fsprobe, a FUSE mount, the host's and
fsprobe's view of a tree, the tree of awkward names, a fragmenting fill, fsprobe's run list, writes across runs, and
the sanitizer-clean read of a damaged image."""
import contextlib
import os
import subprocess
import time

from conftest import ROOT, BUILD, run, have

SECTOR = 512


def build_probe(tools, install_hint):
    """The session's (fsprobe, fsprobe-san), built; fails naming install_hint when a host tool or /dev/fuse is missing."""
    for tool in tools:
        assert have(tool), "%s missing: tools/install-deps.sh installs %s" % (tool, install_hint)
    assert os.path.exists("/dev/fuse"), "%s needs /dev/fuse" % install_hint
    run(["make", "-s", "-C", ROOT, os.path.join("build", "fsprobe"), os.path.join("build", "fsprobe-san")],
        timeout=600)
    return os.path.join(BUILD, "fsprobe"), os.path.join(BUILD, "fsprobe-san")


def fsprobe(binary, *args, rc=0, text=True):
    """fsprobe's stdout; asserts its exit code is rc."""
    p = subprocess.run([binary] + [str(a) for a in args], capture_output=True, text=text, timeout=300)
    assert p.returncode == rc, "%s %s -> %d\n%s%s" % (binary, args, p.returncode, p.stdout, p.stderr)
    return p.stdout


@contextlib.contextmanager
def fuse_mounted(argv, mnt):
    """Mount with argv + [mnt] (a FUSE driver's command line), yield mnt as a string; sync and unmount after."""
    os.makedirs(mnt, exist_ok=True)
    run(list(argv) + [str(mnt)])
    try:
        yield str(mnt)
    finally:
        subprocess.run(["sync"], timeout=60)
        # a FUSE driver can still be busy right after the last close on a loaded machine ("target is busy"):
        # a few tries over about 10 s, then the last one asserts
        for _ in range(20):
            if subprocess.run(["umount", str(mnt)], capture_output=True, timeout=120).returncode == 0:
                break
            time.sleep(0.5)
        else:
            run(["umount", str(mnt)], timeout=120)


def host_tree(mnt):
    """{path: size or None for directories} as the host sees the mounted volume."""
    out = {}
    for top, dirs, files in os.walk(mnt):
        rel = "/" + os.path.relpath(top, mnt) if top != str(mnt) else ""
        for d in dirs:
            out[rel + "/" + d] = None
        for f in files:
            out[rel + "/" + f] = os.path.getsize(os.path.join(top, f))
    return out


def probe_tree(binary, path):
    """The same map as host_tree, from fsprobe fs-tree over the volume at sector 0 of path."""
    out = {}
    for line in fsprobe(binary, "fs-tree", path, 0).splitlines():
        kind, size, name = line.split(" ", 2)
        out[name] = None if kind == "D" else int(size)
    return out


TREE_DIRS = ["images", "images/Windows Images", "vhd", "deep", "deep/a folder with a rather long name indeed",
             "deep/a folder with a rather long name indeed/ünïcødé ДИСК 日本語", "big dir"]
TREE_FILES = ["win.vhd", "README.TXT", "Mixed Case Name.Vhd", "images/xp.vhd",
              "images/Windows Images/Windows 10 Enterprise (x64) with a name longer than sixty characters.vhd",
              "vhd/a.VHD", "deep/x", "deep/a folder with a rather long name indeed/ünïcødé ДИСК 日本語/café au lait.vhd",
              "emoji 🚀 name.vhd"]


def populate(mnt, rng, cluster):
    """TREE_DIRS and TREE_FILES (random bytes, sizes around sector and cluster edges) and a 300-entry "big dir" under
    mnt; {"/" + name: bytes} of TREE_FILES."""
    files = {}
    for d in TREE_DIRS:
        os.makedirs(os.path.join(mnt, d), exist_ok=True)
    sizes = [0, 1, 511, 512, 513, cluster - 1, cluster, cluster + 1, 3 * cluster + 100, 70000]
    for i, name in enumerate(TREE_FILES):
        data = rng.randbytes(sizes[i % len(sizes)])
        with open(os.path.join(mnt, name), "wb") as fh:
            fh.write(data)
        files["/" + name] = data
    # A directory of many entries (several clusters of entry sets or index blocks).
    for i in range(300):
        with open(os.path.join(mnt, "big dir", "file number %03d with a long name.txt" % i), "wb") as fh:
            fh.write(b"%d" % i)
    return files


def fill_and_free_every_other(mnt, drop_last=False):
    """Fill the mounted volume with 8 KiB files fillNNNN until a write fails, then delete every other one (and, with
    drop_last, the last, possibly short, one first), so that a file written next is fragmented."""
    n = 0
    try:
        while True:
            with open(os.path.join(mnt, "fill%04d" % n), "wb") as fh:
                fh.write(b"f" * 8192)
            n += 1
    except OSError:
        pass
    if drop_last and n:
        os.unlink(os.path.join(mnt, "fill%04d" % (n - 1)))
        n -= 1
    for i in range(0, n, 2):
        os.unlink(os.path.join(mnt, "fill%04d" % i))


def runs_of(out):
    """The "run FILE_SECTOR COUNT LBA" lines of fsprobe fs-extents as (file_sector, count, lba) tuples."""
    return [tuple(map(int, l.split()[1:])) for l in out.splitlines() if l.startswith("run ")]


def write_across_runs(binary, path, name, data, lba):
    """fs-write 3 sectors of 0x5A at file sector lba (across a run boundary) and one past the file's end (refused:
    nospace); returns data as it must now read."""
    assert fsprobe(binary, "fs-write", path, 0, name, lba, 3, 0x5A) == "ok\n"
    assert fsprobe(binary, "fs-write", path, 0, name, len(data) // SECTOR, 1, 0x44) == "nospace\n"
    return data[:lba * SECTOR] + b"\x5a" * 3 * SECTOR + data[(lba + 3) * SECTOR:]


def survives(binary, img, *args, what=""):
    """fsprobe-san ARGS[0] img 0 ARGS[1:] ends with 0 or 1, within a minute, with no signal or sanitizer report;
    what (the damage case) heads the failure message."""
    try:
        run([binary, args[0], img, "0"] + list(args[1:]), rc=(0, 1), timeout=60)
    except AssertionError as e:
        raise AssertionError("%s: %s" % (what, e)) from None
