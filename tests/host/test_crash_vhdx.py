"""test_crash_vhdx.py: a kill at any write point of a VHDX editing verb leaves an image that opens and reads old or new.

The same VHDTOOL_CRASH_AFTER hook and kill-point sampling as test_crash.py (its helpers are reused),
for commit, resize (dynamic grow, fixed grow, shrink), compact, rebase, set and repair on VHDX.
After each kill: `vhdtool check` finds nothing but a pending (or empty, ignored) log (it replays on the next
open: the point of the log), the virtual disk reads either the old or the new content, and
after `vhdtool repair` (which replays the log into the file) qemu-img check accepts the base
images and vhdtool check is clean.
"""
import os
import random
import shutil
import subprocess

import pytest

from conftest import run
from test_crash import check_names, count_writes, kill_points, run_killed, virtual
import make_vhdx_corrupt as mc

MIB = 1 << 20
SEC = 512
# A kill after the session started and before its first log entry leaves a LogGuid with no entry: ignored (MS-VHDX 2.3.3).
ALLOWED = {"log-pending", "log-ignored"}


def valid(vhdtool, img, what):
    rc, names, out = check_names(vhdtool, img)
    assert rc in (0, 1) and not names - ALLOWED, "%s: check -> %d\n%s" % (what, rc, out)


def settle(vhdtool, qemu_img, img, what, qemu=True):
    """repair replays a pending log into the file; then both checkers accept the image."""
    run([vhdtool, "repair", img])
    rc, names, out = check_names(vhdtool, img)
    assert rc == 0, "%s, then repaired: %s" % (what, out)
    if qemu:
        p = subprocess.run([qemu_img, "check", "-f", "vhdx", str(img)], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, "%s: qemu-img check: %s" % (what, p.stdout + p.stderr)


def pattern(size, seed, bs):
    rnd = random.Random(seed)
    raw = bytearray(size)
    for b in range(size // bs):
        if rnd.randrange(3):
            off = b * bs + rnd.randrange(0, bs // 2 // SEC) * SEC
            n = rnd.randrange(1, bs // 2 // SEC) * SEC
            raw[off:off + n] = rnd.randbytes(n)
    return raw


def kill_all(vhdtool, tmp_path, setup, args, seed, check):
    total = count_writes(vhdtool, setup, args, tmp_path)
    print("kill points: %d" % total)
    assert total > 3, "only %d writes" % total
    points, kills = kill_points(total, seed), 0
    for n in points:
        d = setup(tmp_path / ("k%d" % n))
        killed, p = run_killed(vhdtool, args(d), n, d)
        # A zeroing write skips its crash point where the copy already has a hole there, so a copy may make
        # a few writes fewer than the counted one: a run that finishes is checked as the completed state.
        kills += killed
        check(d, "%s %s after %d of %d writes" % (seed, "killed" if killed else "(finished)", n, total))
        shutil.rmtree(d)
    assert kills >= len(points) * 3 // 4, "%s: only %d of %d runs were killed" % (seed, kills, len(points))
    return total


def test_crash_vhdx_commit(vhdtool, qemu_img, tmp_path):
    size, bs = 8 * MIB, MIB
    src = tmp_path / "src"
    src.mkdir()
    base_raw = bytes(pattern(size, "base", bs))
    (src / "b.raw").write_bytes(base_raw)
    run([vhdtool, "convert", "-O", "vhdx-dynamic", "-b", "1M", src / "b.raw", src / "base.vhdx"])
    os.unlink(src / "b.raw")
    run([vhdtool, "create", "-b", "1M", "-p", src / "base.vhdx", src / "child.vhdx"], cwd=src)
    model = bytearray(base_raw)
    rnd = random.Random("child")
    for i in range(10):
        n = rnd.choice([1, 8, 300, 2048])
        lba = rnd.randrange(0, size // SEC - n)
        data = bytes(n * SEC) if i % 4 == 0 else rnd.randbytes(n * SEC)
        run([vhdtool, "write", src / "child.vhdx", lba], input=data)
        model[lba * SEC:(lba + n) * SEC] = data
    model = bytes(model)

    def setup(d):
        shutil.copytree(src, d)
        return d

    def check(d, what):
        valid(vhdtool, d / "base.vhdx", what + " (parent)")
        valid(vhdtool, d / "child.vhdx", what + " (child)")
        assert virtual(vhdtool, d / "child.vhdx", tmp_path) == model, what + ": the chain reads differently"
        got = virtual(vhdtool, d / "base.vhdx", tmp_path)
        for s in range(0, size, SEC):
            assert got[s:s + SEC] in (base_raw[s:s + SEC], model[s:s + SEC]), "%s: parent sector %d" % (what, s // SEC)
        # commit again finishes the job
        run([vhdtool, "commit", d / "child.vhdx"])
        assert virtual(vhdtool, d / "base.vhdx", tmp_path) == model, what + ": commit rerun"
        settle(vhdtool, qemu_img, d / "base.vhdx", what)
        settle(vhdtool, qemu_img, d / "child.vhdx", what, qemu=False)

    kill_all(vhdtool, tmp_path, setup, lambda d: ["commit", d / "child.vhdx"], "vhdx-commit", check)


@pytest.mark.parametrize("case", ["grow-dynamic", "grow-fixed", "shrink"])
def test_crash_vhdx_resize(vhdtool, qemu_img, tmp_path, case):
    size, bs = 8 * MIB, MIB
    raw = pattern(size, case, bs)
    if case == "shrink":
        raw[size // 2:] = bytes(size - size // 2)
    src = tmp_path / "src"
    src.mkdir()
    (src / "r.raw").write_bytes(raw)
    kind = "vhdx-fixed" if case == "grow-fixed" else "vhdx-dynamic"
    run([vhdtool, "convert", "-O", kind, "-b", "1M", src / "r.raw", src / "img.vhdx"])
    os.unlink(src / "r.raw")
    new = size // 2 + 3 * SEC if case == "shrink" else size + 5 * MIB + 7 * SEC
    old_view, new_view = bytes(raw), (bytes(raw) + bytes(max(0, new - size)))[:new]

    def setup(d):
        shutil.copytree(src, d)
        return d

    def args(d):
        return ["resize"] + (["--shrink"] if new < size else []) + [d / "img.vhdx", new]

    def check(d, what):
        valid(vhdtool, d / "img.vhdx", what)
        assert virtual(vhdtool, d / "img.vhdx", tmp_path) in (old_view, new_view), what + ": content"
        settle(vhdtool, qemu_img, d / "img.vhdx", what)

    kill_all(vhdtool, tmp_path, setup, args, "vhdx-resize-" + case, check)
    d = setup(tmp_path / "full")
    run([vhdtool] + args(d))
    assert virtual(vhdtool, d / "img.vhdx", tmp_path) == new_view


def test_crash_vhdx_compact(vhdtool, qemu_img, tmp_path):
    bs = MIB
    size = 12 * bs
    raw = pattern(size, "compact", bs)
    src = tmp_path / "src"
    src.mkdir()
    img = src / "img.vhdx"
    run([vhdtool, "create", "-t", "vhdx-dynamic", "-b", "1M", "-s", size, img])
    for b in range(12):
        run([vhdtool, "write", img, b * 2048], input=bytes(raw[b * bs:(b + 1) * bs]))
    for b in random.Random("zero").sample(range(12), 5):
        run([vhdtool, "write", img, b * 2048], input=bytes(bs))
        raw[b * bs:(b + 1) * bs] = bytes(bs)
    view = bytes(raw)
    before = os.path.getsize(img)

    def setup(d):
        shutil.copytree(src, d)
        return d

    def check(d, what):
        valid(vhdtool, d / "img.vhdx", what)
        assert virtual(vhdtool, d / "img.vhdx", tmp_path) == view, what + ": content"
        settle(vhdtool, qemu_img, d / "img.vhdx", what)

    kill_all(vhdtool, tmp_path, setup, lambda d: ["compact", d / "img.vhdx"], "vhdx-compact", check)
    d = setup(tmp_path / "full")
    run([vhdtool, "compact", d / "img.vhdx"])
    assert virtual(vhdtool, d / "img.vhdx", tmp_path) == view and os.path.getsize(d / "img.vhdx") < before


def test_crash_vhdx_rebase_and_set(vhdtool, qemu_img, tmp_path):
    size, bs = 8 * MIB, MIB
    src = tmp_path / "src"
    src.mkdir()
    old = pattern(size, "old", bs)
    new = bytearray(old)
    rnd = random.Random("new")
    for _ in range(6):
        off = rnd.randrange(0, size - 8192) & ~511
        new[off:off + 8192] = rnd.randbytes(8192)
    for name, data in (("old", old), ("new", new)):
        (src / (name + ".raw")).write_bytes(data)
        run([vhdtool, "convert", "-O", "vhdx-dynamic", "-b", "1M", src / (name + ".raw"), src / (name + ".vhdx")])
        os.unlink(src / (name + ".raw"))
    run([vhdtool, "create", "-b", "1M", "-p", src / "old.vhdx", src / "c.vhdx"], cwd=src)
    run([vhdtool, "write", src / "c.vhdx", 77], input=b"\x33" * 4096)
    view = virtual(vhdtool, src / "c.vhdx", tmp_path)

    def setup(d):
        shutil.copytree(src, d)
        return d

    def check(d, what):
        valid(vhdtool, d / "c.vhdx", what)
        assert virtual(vhdtool, d / "c.vhdx", tmp_path) == view, what + ": the child reads differently"
        settle(vhdtool, qemu_img, d / "c.vhdx", what, qemu=False)

    kill_all(vhdtool, tmp_path, setup, lambda d: ["rebase", "-b", d / "new.vhdx", d / "c.vhdx"], "vhdx-rebase", check)
    kill_all(vhdtool, tmp_path, setup,
             lambda d: ["set", d / "c.vhdx", "volume_path=\\\\?\\Volume{0b9c8f64-1d1e-4a4d-9b3c-5a6e7f809a1b}\\" + "y" * 3000,
                        "page83=random", "absolute_win32_path=" + str(d / "old.vhdx")], "vhdx-set", check)


@pytest.mark.parametrize("name", ["header-copy-bad", "region-copy-bad", "bat-range"])
def test_crash_vhdx_repair(vhdtool, qemu_img, tmp_path, name):
    corpus = mc.write_all(str(tmp_path / "corpus"))
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(corpus[name]["path"], src / "img.vhdx")
    done = tmp_path / "done"
    shutil.copytree(src, done)
    run([vhdtool, "repair", done / "img.vhdx"])
    want = virtual(vhdtool, done / "img.vhdx", tmp_path)

    def setup(d):
        shutil.copytree(src, d)
        return d

    def check(d, what):
        # whatever a kill leaves, repair finishes the job
        settle(vhdtool, qemu_img, d / "img.vhdx", what)
        assert virtual(vhdtool, d / "img.vhdx", tmp_path) == want, what

    kill_all(vhdtool, tmp_path, setup, lambda d: ["repair", d / "img.vhdx"], "vhdx-repair-" + name, check)
