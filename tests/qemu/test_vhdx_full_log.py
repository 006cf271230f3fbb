"""test_vhdx_full_log.py: a dynamic VHDX whose whole log region is pending entries (tests/host/make_vhdx_full_log.py:
128 entries of 8 KiB filling the 1 MiB log) boots through vhdboot as a whole disk (QEMU TCG), in both replay modes:

  - mode=rw: the log is replayed into the image and flushed before anything is served; afterwards the image has no
    pending log (vhdtool check clean) and qemu-img reads the replayed disk;
  - mode=ro: replayed into memory only; the disk's bytes do not change.

Either way the guest's checksums of the whole virtual disk equal the raw image with the logged pages applied. The
firmware's time from kernel entry to the guest jump is logged (bench/vhdx_full_log.py measures it on 127 GiB).
"""
import re
import shutil

import pytest

import firmware_harness as fh
from firmware_harness import SECTOR
import make_vhdx_full_log as fl
import test_select as ts


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    fh.run_tool(["make", "-s", "-C", fh.ROOT, "build/guest/int13test.bin", "build/vhdtool", "kernel"])
    return tmp_path_factory.mktemp("vxlog")


@pytest.fixture(scope="module")
def logged(work):
    """(image with a full pending log, expected raw): 128 pages of block 0 (past the guest) rewritten by the log."""
    raw = ts.raw_image(work / "g.raw", 51)
    clean = str(work / "clean.vhdx")
    ts.vhdtool("convert", "-f", "raw", "-O", "vhdx-dynamic", "-b", "1M", raw, clean)
    img = bytearray(open(clean, "rb").read())
    descs = fl.fill_log(img, [16 * SECTOR + 4096 * j for j in range(200)])
    assert len(descs) == 128
    path = str(work / "full.vhdx")
    with open(path, "wb") as f:
        f.write(img)
    exp = bytearray(open(raw, "rb").read())
    for v, page in descs:
        exp[v:v + len(page)] = page
    out = str(work / "expected.raw")
    with open(out, "wb") as f:
        f.write(exp)
    return path, out


@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_full_log_boots(work, logged, mode):
    """The image with its log full boots in mode; the guest reads the replayed disk; rw leaves the log applied in the
    file, ro leaves the file as it was."""
    src, expected = logged
    disk = str(work / ("disk-%s.vhdx" % mode))
    shutil.copyfile(src, disk)
    before = fh.sha256(disk)
    run = ts.run_fw(work, [(0, disk)], "mode=%s" % mode, timeout=180)
    ts.check_sums(run, expected, "full log, mode=%s" % mode)
    where = "into the file and flushed" if mode == "rw" else "into memory only"
    assert re.search(r"vhdx: the image was not closed cleanly: 128 log entries replayed %s" % where, run.serial), \
        run.describe()
    assert re.search(r"^boot: \d+ ms from kernel entry to the guest jump", run.serial, re.M), run.describe()
    if mode == "ro":
        assert fh.sha256(disk) == before, "mode=ro changed the image"
        return
    ts.vhdtool("check", disk)       # exit 0: no pending log, no defect
    back = str(work / "back.raw")
    fh.run_tool([fh.QEMU_IMG, "convert", "-f", "vhdx", "-O", "raw", disk, back])
    assert fh.sha256(back) == fh.sha256(expected), "qemu-img reads another disk than the replay must give"
