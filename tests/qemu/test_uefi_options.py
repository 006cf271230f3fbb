"""test_uefi_options.py: vhdboot.efi's options from GRUB-EFI's `chainloader` line and from a UEFI boot entry's optional
data (OVMF, QEMU TCG). Two images are on the host ESP (/images/a.vhd, /images/b.vhd; without options vhdboot would
show a menu and boot the first): the options name the second, in mode=ro, and efiprobe (the image's loader) runs
from it and finds its disk read-only.

- GRUB-EFI (grub-mkstandalone, Debian's grub-efi-amd64-bin) is the host's \\EFI\\BOOT\\BOOTX64.EFI; its grub.cfg runs
  `chainloader /EFI/vhdboot/vhdboot.efi vhd=/images/b.vhd mode=ro` and `boot`.
- The boot entry: the first run starts tests/qemu/progs/efibootent.c (the default loader), which writes Boot0100
  (\\EFI\\vhdboot\\vhdboot.efi on its volume, optional data "vhd=/images/b.vhd mode=ro" in UTF-16) first in BootOrder
  into OVMF's variable store and resets; the second run, with the same VARS file, is booted by OVMF's boot
  manager from that entry.
"""
import os
import re
import shutil

import pytest

import efi_harness as eh

pytestmark = pytest.mark.skipif(not (os.path.exists(eh.OVMF_CODE) and shutil.which(eh.QEMU)),
                                reason="needs ovmf and qemu-system-x86_64")

TIMEOUT = 420
BOOTENT = os.path.join(eh.BUILD, "efi", "efibootent.efi")
CHAIN_CFG = r"""set pager=0
regexp --set=dev '^\(([^)]*)\)' "$cmdpath"
set root=($dev)
echo "GRUBCHAIN root=$root"
chainloader /EFI/vhdboot/vhdboot.efi vhd=/images/b.vhd mode=ro
boot
echo "GRUBCHAIN chainloader failed"
"""


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """a.vhd (fixed) and b.vhd (dynamic) of the efiprobe guest disk."""
    for f in (eh.VHDBOOT_EFI, eh.EFIPROBE, eh.VHDTOOL, BOOTENT):
        assert os.path.exists(f), "%s missing: run make" % f
    d = tmp_path_factory.mktemp("uefi-opts")
    raw = str(d / "guest.raw")
    eh.guest_raw(raw)
    a, b = str(d / "a.vhd"), str(d / "b.vhd")
    eh.to_vhd(raw, a, "fixed")
    eh.to_vhd(raw, b, "dynamic")
    return a, b


def check_picked_b(log, source, ctx):
    assert "options: from the load options:" in log and "vhd=/images/b.vhd mode=ro" in log, \
        "the %s's options did not reach vhdboot.efi\n%s" % (source, ctx)
    assert re.search(r"select: drive 80h = hd0,1:/images/b\.vhd \(vhd= on the command line\)", log), ctx
    assert "menu:" not in log, "a menu was shown: the options were not used\n" + ctx
    assert "PROBE PASS" in log and "PROBE write refused (read-only)" in log, ctx


def test_grub_efi_chainloader_options(tmp_path, images):
    """GRUB-EFI's `chainloader /EFI/vhdboot/vhdboot.efi vhd=/images/b.vhd mode=ro`: the words after the file reach
    vhdboot.efi as its load options and pick the second image, read-only; both images unchanged."""
    cfg = str(tmp_path / "grub.cfg")
    with open(cfg, "w") as f:
        f.write(CHAIN_CFG)
    grub = str(tmp_path / "grubx64.efi")
    eh.run(["grub-mkstandalone", "-O", "x86_64-efi", "-o", grub, "--locales=", "--fonts=", "--themes=",
            "--modules=part_gpt fat", "--install-modules=part_gpt fat regexp echo chain normal",
            "boot/grub/grub.cfg=" + cfg])
    a, b = images
    host = str(tmp_path / "host.img")
    esp = eh.host_disk(host, {"EFI/BOOT/BOOTX64.EFI": grub, "EFI/vhdboot/vhdboot.efi": eh.VHDBOOT_EFI,
                              "images/a.vhd": a, "images/b.vhd": b}, default_loader=False)
    rc, log, secs = eh.boot(str(tmp_path), [(host, eh.IDE)], timeout=TIMEOUT)
    ctx = "exit %s after %.0f s\n%s" % (rc, secs, log[-6000:])
    assert "GRUBCHAIN root=hd0,gpt1" in log, ctx
    assert rc == eh.EXIT_PASS, ctx
    check_picked_b(log, "chainloader line", ctx)
    for name, src in (("a.vhd", a), ("b.vhd", b)):
        out = str(tmp_path / ("after-" + name))
        eh.fetch_file(host, esp, "images/" + name, out)
        assert eh.run(["cmp", out, src]).returncode == 0


def test_boot_entry_optional_data(tmp_path, images):
    """A UEFI boot entry (Boot0100, made by efibootent.efi in the first run and kept in the VARS file) whose optional
    data is "vhd=/images/b.vhd mode=ro": OVMF's boot manager starts vhdboot.efi with that data as its load options,
    which pick the second image, read-only."""
    a, b = images
    host = str(tmp_path / "host.img")
    eh.host_disk(host, {"EFI/BOOT/BOOTX64.EFI": BOOTENT, "EFI/vhdboot/vhdboot.efi": eh.VHDBOOT_EFI,
                        "images/a.vhd": a, "images/b.vhd": b}, default_loader=False)
    vars_copy = str(tmp_path / "vars-kept.fd")
    shutil.copyfile(eh.OVMF_VARS, vars_copy)
    rc, log, secs = eh.boot(str(tmp_path), [(host, eh.IDE)], TIMEOUT, vars_file=vars_copy)
    ctx = "first run: exit %s after %.0f s\n%s" % (rc, secs, log[-5000:])
    assert "BOOTENT set Boot0100" in log and "BOOTENT FAIL" not in log, ctx
    rc, log, secs = eh.boot(str(tmp_path), [(host, eh.IDE)], TIMEOUT, vars_file=vars_copy)
    with open(os.path.join(str(tmp_path), "serial2.log"), "w") as f:
        f.write(log)
    ctx = "second run: exit %s after %.0f s\n%s" % (rc, secs, log[-6000:])
    assert "BOOTENT" not in log, "the firmware started the default loader, not the entry\n" + ctx
    assert rc == eh.EXIT_PASS, ctx
    check_picked_b(log, "boot entry", ctx)
