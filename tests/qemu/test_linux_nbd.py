"""test_linux_nbd.py: Linux keeps the disk (issue 12): a Linux booted from a VHD by vhdboot serves the VHD
to itself through vhdboot-attach and NBD, writes into its root file system, and the host finds the data in
the image.

The guest (tests/qemu/thirdparty/linux_nbd.py): GRUB + the Debian cloud kernel + an initramfs whose
init (nbdinit.c) loads the IDE/NBD/FAT modules from the same .deb, runs build/linux/vhdboot-attach
(table from /dev/mem, backing disk and partition by identity, the FAT mounted, the VHD served as
/dev/nbd0), mounts /dev/nbd0p1 (ext2), writes a token and a 3 MiB pattern file, unmounts, detaches
(vhdboot-attach -D: the server flushes and exits) and ends QEMU. The VHD is a dynamic image in a file
on a FAT32 partition of the IDE disk. Two boots:
  - through vhdboot: the host then checks the VHD (vhdtool check clean, the files inside through
    vhdtool convert + debugfs, the file grew by new blocks);
  - the same guest disk under SeaBIOS alone: no table, vhdboot-attach exits 2 and nothing is attached.
"""
import os
import re
import shutil

import pytest

import firmware_harness as fh
from thirdparty import linux_nbd as ln

bi = ln.bi
QEMU = os.environ.get("GUEST_QEMU", "qemu-system-x86_64")
TIMEOUT = 300
FAIL = r"Kernel panic|NBDINIT-FAIL|vhdboot: ERROR"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    if not os.path.exists(fh.ISO):
        pytest.fail("%s is missing: run `make all`" % fh.ISO)
    out = str(tmp_path_factory.mktemp("linux-nbd"))
    host, raw, vhd, _ = ln.build(out, "dynamic")
    return {"dir": out, "host": host, "raw": raw, "vhd": vhd, "vhd_bytes": os.path.getsize(vhd)}


def boot(drives, iso, workdir):
    return fh.run_qemu(drives, iso=iso, boot="d" if iso else "c", timeout=TIMEOUT, workdir=workdir,
                       qemu=QEMU, mem=512, stop_on=FAIL)


def test_linux_root_on_dynamic_vhd(images, vhdtool):
    run = boot([(0, images["host"])], fh.ISO, images["dir"])
    ctx = "\n" + run.describe(12000)
    text = run.serial
    assert "NBDINIT-DONE" in text and run.rc == fh.EXIT_DONE, "the guest did not finish%s" % ctx
    # The firmware placed the table in reserved low memory, and Linux read it back through /dev/mem.
    m = re.search(r"handover: table (\d+) bytes at ([0-9a-f]+) \(version 1\.0, 1 drive", text)
    assert m, "no handover line from vhdboot%s" % ctx
    at = int(m.group(2), 16)
    assert at % 4096 == 0 and 0x80000 <= at < 0xA0000, ctx
    assert re.search(r"e820 0*%x-[0-9a-f]+ type 2" % at, text), "the table's page is not E820-reserved%s" % ctx
    assert "table: version 1.0, %s bytes at %x, 1 drive(s)" % (m.group(1), at) in text, ctx
    assert 'disk: "QEMU HARDDISK" serial "QM00001", %d sectors' % (os.path.getsize(images["host"]) // 512) in text, ctx
    assert "partition 1: start %d" % ln.HOST_P1 in text, ctx
    assert "chain[0]: /%s" % ln.VHD_NAME in text, ctx
    assert "file: %d bytes, FAT32" % images["vhd_bytes"] in text, ctx
    assert re.search(r"serving sda partition sda1 as /dev/nbd0: %d sectors, dynamic, chain of 1, read-write"
                     % (ln.GUEST_MIB * 2048), text), ctx
    assert "NBDINIT attach rc=0" in text and "NBDINIT detached" in text, ctx
    assert "/dev/nbd0: disconnected, image flushed and closed" in text, ctx

    # The host: the image checks clean, grew, and holds what Linux wrote.
    after = ln.extract_vhd(images["host"], os.path.join(images["dir"], "after.vhd"))
    fh.run_tool([vhdtool, "check", after])
    assert os.path.getsize(after) > images["vhd_bytes"], \
        "the dynamic VHD did not grow (%d bytes, was %d)" % (os.path.getsize(after), images["vhd_bytes"])
    token = ln.read_guest_file(after, "vhdboot-token.txt", images["dir"])
    assert token == ("VHDBOOT-TOKEN %s written by Linux through /dev/nbd0p1\n" % ln.TOKEN).encode(), token
    fill = ln.read_guest_file(after, "vhdboot-fill.bin", images["dir"])
    assert fill is not None and ln.sha(fill) == ln.sha(ln.fill_pattern()), "the pattern file differs"
    # Nothing outside the image changed on the host disk's FAT: the VHD is still the only file there.
    listing = fh.run_tool(["mdir", "-b", "-i", "%s@@%d" % (images["host"], ln.HOST_P1 * 512), "::/"]).stdout
    assert [x.strip().lower() for x in listing.strip().splitlines()] == ["::/%s" % ln.VHD_NAME], listing


def test_no_table_without_vhdboot(images):
    """The same guest disk booted by SeaBIOS alone: vhdboot-attach finds no table, exits 2, attaches nothing."""
    raw = os.path.join(images["dir"], "plain.raw")
    shutil.copyfile(images["raw"], raw)
    run = boot([(0, raw)], None, images["dir"])
    ctx = "\n" + run.describe(8000)
    text = run.serial
    assert "no vhdboot hand-over table in 80000-9ffff: this system was not booted by vhdboot" in text, ctx
    assert "NBDINIT attach rc=2" in text and "NBDINIT notable" in text, ctx
    assert run.rc == fh.EXIT_DONE, ctx
