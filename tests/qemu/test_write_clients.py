"""test_write_clients.py: real clients of vhdboot's INT 13h writes (QEMU TCG).

- GRUB 2's save_env: a dynamic VHD holding GRUB (i386-pc, built from grub-pc-bin as
  tests/qemu/thirdparty/build_images.py does) whose FAT16 partition has a 1024-byte grubenv made with
  grub-editenv; grub.cfg sets a random token, save_env's it and prints a marker. On the host
  the converted image's grubenv (mtype) holds the token and the VHD checks clean.
- Differencing writes in the firmware: /vhd/base.vhd <- /vhd/child.vhd on a FAT32 partition,
  the child's blocks the guest writes allocated beforehand on the host (a file on FAT cannot
  grow). tests/qemu/progs/writetest.asm writes into them (43h, 43h verify, 03h, across a block
  boundary) and reads back; one write into an unallocated child block gets CCh and a log line.
  Afterwards base.vhd is byte-identical, the child (read through the chain by vhdtool) shows the
  guest's data where written and the parent's elsewhere, and both check clean.
"""
import os
import re
import secrets
import shutil
import subprocess
import sys

import pytest

import firmware_harness as fh
import writeguest as wg
import test_select as ts

sys.path.insert(0, os.path.join(fh.ROOT, "tests", "qemu", "thirdparty"))
import build_images as bi  # noqa: E402

S = fh.SECTOR
MiB = 1 << 20
W, R = wg.WRITE, wg.READ


def _need(*tools):
    for t in tools:
        if not shutil.which(t):
            pytest.skip("%s missing: tools/install-deps.sh installs it" % t)
    for f in (fh.ISO, fh.VHDTOOL):
        assert os.path.exists(f), "%s missing: run make" % f


# ------------------------------------------------------------------ GRUB save_env

SAVEENV_MODULES = ["biosdisk", "part_msdos", "fat", "normal", "echo", "serial", "terminal", "loadenv",
                   "configfile", "test", "halt"]
GRUB_DONE = "VHDBOOT-SAVEENV-DONE"


def grub_core_loadenv(workdir):
    """core.img for (hd0,msdos1) with loadenv (build_images.GRUB_MODULES lacks it)."""
    early = os.path.join(workdir, "early.cfg")
    with open(early, "w") as f:
        f.write("set root=(hd0,msdos1)\nset prefix=(hd0,msdos1)/boot/grub\nconfigfile /boot/grub/grub.cfg\n")
    core = os.path.join(workdir, "core.img")
    bi.run(["grub-mkimage", "-O", "i386-pc", "-d", bi.GRUB_DIR, "-o", core, "-c", early,
            "-p", "(hd0,msdos1)/boot/grub"] + SAVEENV_MODULES)
    return core


def test_grub_save_env(tmp_path):
    """GRUB's save_env writes grubenv through vhdboot's INT 13h into a dynamic VHD; the host finds the token."""
    _need("grub-mkimage", "grub-editenv", "mkfs.fat", "mcopy", "mtype")
    if not os.path.exists(os.path.join(bi.GRUB_DIR, "loadenv.mod")):
        pytest.skip("grub-pc-bin missing")
    w = str(tmp_path)
    token = "written-by-grub-" + secrets.token_hex(8)
    env = os.path.join(w, "grubenv")
    bi.run(["grub-editenv", env, "create"])
    assert os.path.getsize(env) == 1024
    with open(env, "rb") as f:
        env_before = f.read()
    assert token.encode() not in env_before
    cfg = bi.GRUB_SERIAL.replace("terminal_output serial console", "terminal_output serial") + """\
echo "VHDBOOT-SAVEENV-START"
set vhdboot_test=%s
save_env vhdboot_test
unset vhdboot_test
load_env vhdboot_test
echo "VHDBOOT-SAVEENV-RELOADED value=${vhdboot_test}"
echo "%s"
halt
""" % (token, GRUB_DONE)
    p1, n1 = 2048, 16 * MiB // S
    raw = os.path.join(w, "grub.raw")
    bi.new_disk(raw, p1 + n1)
    bi.write_at(raw, 0, bytes(0x1B8) + bi.partition_table([(p1, n1, 0x06, True)]))
    fat = bi.fat_image(os.path.join(w, "p1.fat"), n1, p1, "VHDGRUB",
                       {"boot/grub/grub.cfg": cfg, "boot/grub/grubenv": env})
    bi.copy_into(raw, p1, fat)
    bi.grub_install(raw, grub_core_loadenv(w), p1)
    vhd = fh.vhdtool_vhd(raw, os.path.join(w, "grub.vhd"), "dynamic", "512K")
    # the grubenv's clusters hold data, so their blocks exist in the dynamic image (GRUB can't grow files)
    fat_off = "%s@@%d" % (raw, p1 * S)
    assert bi.run(["mtype", "-i", fat_off, "::/boot/grub/grubenv"], env=bi.MTOOLS_ENV).encode("latin-1") == env_before
    size_before = os.path.getsize(vhd)

    run = fh.run_qemu([(0, vhd)], iso=fh.ISO, timeout=60, stop_on=re.escape(GRUB_DONE), workdir=w)
    ctx = run.describe()
    assert GRUB_DONE in run.serial, "GRUB did not reach the end of grub.cfg\n" + ctx
    assert "VHDBOOT-SAVEENV-START" in run.serial, ctx
    # GRUB prints "error: ..." if save_env fails (e.g. a write error from INT 13h)
    tail = run.serial[run.serial.find("VHDBOOT-SAVEENV-START"):]
    assert "error" not in tail.lower(), "GRUB reported an error\n" + ctx
    assert "VHDBOOT-SAVEENV-RELOADED value=%s" % token in run.serial, ctx
    assert not re.search(r"vhd: .*write LBA \d+ count \d+ (refused|failed)", run.serial), ctx

    # on the host: the VHD converted to raw, grubenv read out of the FAT partition
    assert os.path.getsize(vhd) == size_before, "the image grew: save_env should write in place"
    out = os.path.join(w, "after.raw")
    fh.run_tool([fh.VHDTOOL, "convert", "-O", "raw", vhd, out])
    got = subprocess.run(["mtype", "-i", "%s@@%d" % (out, p1 * S), "::/boot/grub/grubenv"], capture_output=True,
                         env=dict(os.environ, **bi.MTOOLS_ENV), timeout=60)
    assert got.returncode == 0, got.stderr
    assert len(got.stdout) == 1024 and got.stdout.startswith(b"# GRUB Environment Block\n"), got.stdout[:200]
    assert ("vhdboot_test=%s\n" % token).encode() in got.stdout, "token not in grubenv:\n%r\n%s" % (got.stdout[:300], ctx)
    # only the grubenv sectors changed in the virtual disk
    with open(raw, "rb") as a, open(out, "rb") as b:
        before, after = a.read(), b.read()
    assert len(before) == len(after)
    changed = [s for s in range(len(before) // S) if before[s * S:(s + 1) * S] != after[s * S:(s + 1) * S]]
    assert 1 <= len(changed) <= 2, "changed sectors: %s" % changed[:20]
    rc, msg = wg.check(vhd)
    assert rc == 0, "vhdtool check -> %d\n%s" % (rc, msg)


# ------------------------------------------------------------------ differencing chain on FAT32

VSIZE = 4 * MiB
VTOTAL = VSIZE // S
SPB = 1024                      # 512 KiB blocks
PART_START, PART_SIZE = 2048, 98304


def test_differencing_writes_on_fat(tmp_path):
    """Writes into a differencing child on FAT32 (pre-allocated blocks) land in the child only; a write
    needing a new child block gets CCh and a log line (grow=no); base.vhd unchanged; both check clean."""
    _need("sfdisk", "mkfs.fat", "mcopy", "mmd")
    fh.run_tool(["make", "-s", "-C", fh.ROOT, wg.GUEST_BIN])
    w = tmp_path
    st = w / "stage"
    st.mkdir()
    ops = [(W, wg.FN_43, 1500, 10, 0x11),             # block 1 (allocated in the child), bits clear over parent data
           (W, wg.FN_43V, 2040, 16, 0x12),            # across blocks 1 -> 2, both allocated, 43h verify
           (W, wg.FN_03, 2500, 4, 0x13),              # CHS into block 2
           (W, wg.FN_43, 3000, 2, 0x14),              # block 2, over sectors the host wrote in the child
           (W, wg.FN_43, 5 * SPB + 80, 4, 0x15)]      # block 5: not allocated in the child -> CCh
    ops += [(R, 0x42, lba, n, 0) for (_, _, lba, n, _) in ops]
    ops += [(R, 0x42, 1480, 60, 0), (R, 0x42, 2990, 20, 0)]
    base = wg.make_vhd(str(st / "base.vhd"), "dynamic", VSIZE, wg.Params(ops=ops), block="512K")
    for lba, n, tag in ((1490, 40, 0x51), (2030, 30, 0x52), (5 * SPB + 70, 20, 0x55)):
        wg.vhdtool("write", base, lba, input=wg.pattern(lba, tag, n))
    child = str(st / "child.vhd")
    wg.vhdtool("create", "-p", base, "-b", "512K", child)
    for lba, n, tag in ((SPB, 1, 0x61), (2998, 4, 0x62)):     # allocate child blocks 1 and 2
        wg.vhdtool("write", child, lba, input=wg.pattern(lba, tag, n))
    info = fh.vhd_info(child)
    assert info["allocated"] == 2 and info["type"] == 4, info
    model = bytearray(wg.vhd_read(child, 0, VTOTAL))
    base_sha = fh.sha256(base)

    disk = str(w / "fat32.img")
    with open(disk, "wb") as f:
        f.truncate(64 * MiB)
    ts.tool(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", disk],
            input=("label: dos\nstart=%d, size=%d, type=c\n" % (PART_START, PART_SIZE)).encode())
    ts.tool(["mkfs.fat", "-F", "32", "-s", "1", "-n", "DIFFFAT32", "--offset", str(PART_START), disk,
             str(PART_SIZE // 2)])
    i = ts.img(disk, PART_START)
    ts.tool(["mmd", "-i", i, "::/vhd"])
    for n in ("base.vhd", "child.vhd"):
        ts.tool(["mcopy", "-i", i, str(st / n), "::/vhd/" + n])

    iso = ts.make_iso(w, "vhd=hd0,1:/vhd/child.vhd grow=no")   # growth: tests/qemu/test_grow_guest.py
    run = fh.run_qemu([(0, disk)], iso=iso, timeout=60, workdir=str(w))
    ctx = run.describe()
    assert run.rc == fh.EXIT_DONE, ctx
    assert "GUEST writetest" in run.serial, ctx
    res = wg.records(run.serial)
    assert len(res) == len(ops), ctx
    writes = [kv for k, kv in res if k == "W"]
    assert [(kv["ah"], kv["cf"]) for kv in writes] == [(0, 0)] * 4 + [(0xCC, 1)], ctx
    assert re.search(r"vhd: \S*child\.vhd: no room to allocate block 5: the image cannot grow .*write LBA %d count 4 "
                     r"refused \(INT 13h CCh\)" % (5 * SPB + 80), run.serial, re.I), ctx
    # model: successful writes applied; reads in the guest match it
    for (kind, fn, lba, n, tag), (k, kv) in zip(ops, res):
        if kind == W and kv["ah"] == 0:
            model[lba * S:(lba + n) * S] = wg.pattern(lba, tag, n)
    for (kind, fn, lba, n, tag), (k, kv) in zip(ops, res):
        if kind == R:
            assert kv["ah"] == 0 and kv["cf"] == 0, ctx
            assert kv["fnv"] == wg.fnv(bytes(model[lba * S:(lba + n) * S])), \
                "guest read-back of LBA %d+%d differs from the model\n%s" % (lba, n, ctx)

    # on the host: extract both files, check the chain
    out = w / "out"
    out.mkdir()
    for n in ("base.vhd", "child.vhd"):
        ts.tool(["mcopy", "-i", i, "::/vhd/" + n, str(out / n)])
    shutil.rmtree(st)                 # the child must find its parent next to it, not in the stage
    ebase, echild = str(out / "base.vhd"), str(out / "child.vhd")
    assert fh.sha256(ebase) == base_sha, "base.vhd changed"
    for v in (ebase, echild):
        rc, msg = wg.check(v)
        assert rc == 0, "vhdtool check %s -> %d\n%s" % (v, rc, msg)
    assert fh.vhd_info(echild)["allocated"] == 2
    got = wg.vhd_read(echild, 0, VTOTAL)
    for lba, n, tag in ((1500, 10, 0x11), (2040, 16, 0x12), (2500, 4, 0x13), (3000, 2, 0x14)):
        assert got[lba * S:(lba + n) * S] == wg.pattern(lba, tag, n), "guest data missing at LBA %d" % lba
    for lba, n, tag in ((1490, 10, 0x51), (1510, 20, 0x51), (2030, 10, 0x52), (5 * SPB + 70, 20, 0x55)):
        assert got[lba * S:(lba + n) * S] == wg.pattern(lba, tag, n), "parent data not visible at LBA %d" % lba
    assert got[SPB * S:(SPB + 1) * S] == wg.pattern(SPB, 0x61) and got[2998 * S:3000 * S] == wg.pattern(2998, 0x62, 2)
    assert got == bytes(model), "the chain read on the host differs from the model"
    # the base alone does not hold the guest's data
    assert wg.vhd_read(ebase, 1500, 10) == wg.pattern(1490, 0x51, 40)[10 * S:20 * S]
