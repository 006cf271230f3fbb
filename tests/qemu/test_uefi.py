"""test_uefi.py: vhdboot.efi under OVMF (TCG): the image found (vhdboot.cfg, the scan, a menu), served as EFI Block I/O,
its own loader (tests/qemu/progs/efiprobe.c) started from the image's ESP; the probe checks media fields, the pattern,
the specification's error codes and a write; the host checks the image afterwards (vhdtool)."""
import hashlib
import os
import re
import subprocess
import shutil

import pytest

import efi_harness as eh

pytestmark = pytest.mark.skipif(not (os.path.exists(eh.OVMF_CODE) and shutil.which(eh.QEMU)),
                                reason="needs ovmf and qemu-system-x86_64")

TIMEOUT = 420                     # seconds per QEMU run (TCG on a shared machine)


@pytest.fixture(scope="module")
def guest(tmp_path_factory):
    """The guest disk as raw (ESP with efiprobe + pattern partition), built once; (path, p2 start, p2 sectors)."""
    for f in (eh.VHDBOOT_EFI, eh.EFIPROBE, eh.VHDTOOL):
        assert os.path.exists(f), "%s missing: run make" % f
    d = tmp_path_factory.mktemp("uefi-guest")
    raw = str(d / "guest.raw")
    p2, n2 = eh.guest_raw(raw)
    return raw, p2, n2


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def make_host(tmp_path, guest_raw, images, cfg=None, extra_files=None, default_loader=True):
    """host.img with images {name: kind} converted from guest_raw (or {name: path} of a ready file) under /images
    and vhdboot.cfg (text, or None). Returns (host path, ESP start)."""
    files = {}
    for name, kind in images.items():
        if os.path.exists(kind):
            files["images/" + name] = kind
            continue
        out = str(tmp_path / name)
        eh.to_vhd(guest_raw, out, kind)
        files["images/" + name] = out
    if cfg is not None:
        c = str(tmp_path / "vhdboot.cfg")
        with open(c, "w") as f:
            f.write(cfg)
        files["EFI/BOOT/vhdboot.cfg"] = c
    files.update(extra_files or {})
    host = str(tmp_path / "host.img")
    return host, eh.host_disk(host, files, default_loader=default_loader)


def fetch(tmp_path, host, esp, name):
    out = str(tmp_path / ("after-" + name))
    eh.fetch_file(host, esp, "images/" + name, out)
    return out


def probe_writes(log):
    """Every sector efiprobe wrote: its first write plus the random ones it logged ("PROBE w LBA COUNT", hex)."""
    m = re.search(r"PROBE write ok lba=([0-9a-f]+) count=([0-9a-f]+)", log)
    assert m, "the probe's first write is not in the log"
    sectors = set(range(int(m.group(1), 16), int(m.group(1), 16) + int(m.group(2), 16)))
    for lba, count in re.findall(r"PROBE w ([0-9a-f]+) ([0-9a-f]+)", log):
        sectors.update(range(int(lba, 16), int(lba, 16) + int(count, 16)))
    assert "PROBE random ok" in log
    return sectors


def assert_written(tmp_path, guest, vhd, log):
    """The image's virtual disk = the guest raw, but for the sectors efiprobe wrote (its log says which), which hold
    its write pattern; vhdtool check clean."""
    raw = guest[0]
    eh.run([eh.VHDTOOL, "check", vhd])
    back = str(tmp_path / "back.raw")
    eh.run([eh.VHDTOOL, "convert", "-O", "raw", vhd, back])
    with open(raw, "rb") as a, open(back, "rb") as b:
        expect, now = bytearray(a.read()), b.read()
    assert len(expect) == len(now)
    written = probe_writes(log)
    assert len(written) > eh.PROBE_WRITE_COUNT
    for s in written:
        expect[s * eh.SECTOR:(s + 1) * eh.SECTOR] = eh.written_sector(s)
    if bytes(expect) != now:
        bad = next(i for i in range(0, len(now), eh.SECTOR) if expect[i:i + eh.SECTOR] != now[i:i + eh.SECTOR])
        raise AssertionError("sector %d differs from the oracle (%s)" % (bad // eh.SECTOR,
                             "written by the probe" if bad // eh.SECTOR in written else "not written"))


def boot_probe(tmp_path, host, dev=eh.IDE, extra=()):
    rc, log, secs = eh.boot(str(tmp_path), [(host, dev)], timeout=TIMEOUT, extra=extra)
    assert "PROBE PASS" in log and rc == eh.EXIT_PASS, "exit %s after %.0f s\n%s" % (rc, secs, log[-6000:])
    assert "serve: ConnectController (recursive): drivers bound" in log
    assert "boot: starting \\EFI\\BOOT\\BOOTX64.EFI from the image's volume" in log
    assert "PROBE disk vendor-path=1" in log       # the disk the probe came from is ours
    return log


@pytest.mark.parametrize("kind", ["fixed", "dynamic"])
def test_rw_from_config(tmp_path, guest, kind):
    """vhd= in vhdboot.cfg; mode=rw: the probe's write is in the image on the host disk afterwards."""
    host, esp = make_host(tmp_path, guest[0], {"t.vhd": kind}, cfg="# test\nvhd=/images/t.vhd\n")
    log = boot_probe(tmp_path, host)
    assert 'options: from the config file: " vhd=/images/t.vhd "' in log
    assert "vhd: mode=rw" in log and "PROBE write ok" in log
    assert_written(tmp_path, guest, fetch(tmp_path, host, esp, "t.vhd"), log)


def test_vhdx_rw_from_config(tmp_path, guest):
    """A dynamic VHDX (vhdtool convert) served under UEFI: the probe's reads, error codes and writes; the writes are
    in the image afterwards (its log replayed by vhdtool, then checked clean)."""
    vx = str(tmp_path / "t.vhdx")
    eh.run([eh.VHDTOOL, "convert", "-f", "raw", "-O", "vhdx-dynamic", guest[0], vx])
    host, esp = make_host(tmp_path, guest[0], {"t.vhdx": vx}, cfg="vhd=/images/t.vhdx\n")
    log = boot_probe(tmp_path, host)
    assert re.search(r"vhdx: .*dynamic VHDX", log), log[-4000:]
    after = fetch(tmp_path, host, esp, "t.vhdx")
    subprocess.run([eh.VHDTOOL, "write", after, "0"], input=b"", check=True, capture_output=True)   # replay the log
    assert_written(tmp_path, guest, after, log)


def test_load_options_from_shell(tmp_path, guest):
    """The UEFI shell's startup.nsh runs `vhdboot.efi vhd=... mode=ro` (no default loader on the host ESP):
    the load options are the options, and a config file is not read."""
    nsh = str(tmp_path / "startup.nsh")
    with open(nsh, "w") as f:
        f.write("fs0:\\vhdboot.efi vhd=/images/s.vhd mode=ro\r\n")
    src = str(tmp_path / "s.vhd")
    eh.to_vhd(guest[0], src, "fixed")
    before = sha(src)
    host, esp = make_host(tmp_path, guest[0], {"s.vhd": src}, extra_files={"vhdboot.efi": eh.VHDBOOT_EFI, "startup.nsh": nsh},
                          default_loader=False)
    log = boot_probe(tmp_path, host)
    assert "options: from the load options:" in log and "vhd=/images/s.vhd mode=ro" in log, log[-4000:]
    assert "PROBE write refused (read-only)" in log
    assert sha(fetch(tmp_path, host, esp, "s.vhd")) == before


def test_two_images(tmp_path, guest):
    """vhd=A+B: both served, each on its own vendor node (index 0 and 1); the loader is started from the first only,
    whose disk takes the probe's writes; the second is untouched."""
    src_b = str(tmp_path / "b.vhd")
    eh.to_vhd(guest[0], src_b, "fixed")
    before = sha(src_b)
    host, esp = make_host(tmp_path, guest[0], {"a.vhd": "dynamic", "b.vhd": src_b},
                          cfg="vhd=/images/a.vhd+/images/b.vhd\n")
    log = boot_probe(tmp_path, host)
    assert "serve: vhd0 = VenHw(bb45c8af-...,00)" in log and "serve: vhd1 = VenHw(bb45c8af-...,01)" in log
    assert_written(tmp_path, guest, fetch(tmp_path, host, esp, "a.vhd"), log)
    assert sha(fetch(tmp_path, host, esp, "b.vhd")) == before


def test_scan_without_options(tmp_path, guest):
    """No options, no vhdboot.cfg: the scan of /, /vhd, /images finds the one image and serves it."""
    host, esp = make_host(tmp_path, guest[0], {"only.vhd": "dynamic"})
    log = boot_probe(tmp_path, host)
    assert "options: no \\EFI\\BOOT\\vhdboot.cfg beside vhdboot.efi" in log
    assert "select: drive 80h = hd0,1:/images/only.vhd (the only image found)" in log
    assert_written(tmp_path, guest, fetch(tmp_path, host, esp, "only.vhd"), log)


def test_menu_timeout(tmp_path, guest):
    """Two images and timeout=1: the menu lists both and boots the first at the timeout."""
    host, esp = make_host(tmp_path, guest[0], {"a.vhd": "fixed", "b.vhd": "dynamic"}, cfg="timeout=1\n")
    log = boot_probe(tmp_path, host)
    assert "menu: 2 images found" in log and "menu: timeout after 1 s: booting 1" in log
    assert "menu: chose 1: hd0,1:/images/a.vhd" in log
    assert_written(tmp_path, guest, fetch(tmp_path, host, esp, "a.vhd"), log)


def test_menu_key_over_serial(tmp_path, guest):
    """Two images, timeout=60: the key "2" typed on COM1 (OVMF's terminal, read through ConIn) boots the second."""
    host, esp = make_host(tmp_path, guest[0], {"a.vhd": "fixed", "b.vhd": "dynamic"}, cfg="timeout=60\n")
    rc, log, secs = eh.boot_until(str(tmp_path), [(host, eh.IDE)], [], timeout=TIMEOUT,
                                  keys=[("menu: booting 1 in 60 s", b"2")])
    assert rc == eh.EXIT_PASS and "PROBE PASS" in log, "exit %s after %.0f s\n%s" % (rc, secs, log[-6000:])
    assert "menu: > 2  hd0,1:/images/b.vhd" in log and "menu: chose 2: hd0,1:/images/b.vhd" in log
    assert "select: drive 80h = hd0,1:/images/b.vhd (chosen in the menu)" in log
    assert_written(tmp_path, guest, fetch(tmp_path, host, esp, "b.vhd"), log)


@pytest.mark.parametrize("mode", ["ro", "snapshot"])
def test_modes_leave_image_alone(tmp_path, guest, mode):
    """mode=ro: Media.ReadOnly and EFI_WRITE_PROTECTED; mode=snapshot: the write reads back from RAM. The image never changes."""
    src = str(tmp_path / "m.vhd")
    eh.to_vhd(guest[0], src, "dynamic")
    before = sha(src)
    host, esp = make_host(tmp_path, guest[0], {"m.vhd": src}, cfg="vhd=/images/m.vhd mode=%s\n" % mode)
    log = boot_probe(tmp_path, host)
    if mode == "ro":
        assert "readonly=1" in log and "PROBE write refused (read-only)" in log
    else:
        assert "readonly=0" in log and "PROBE random ok" in log and "MiB of RAM" in log
    assert sha(fetch(tmp_path, host, esp, "m.vhd")) == before


@pytest.mark.parametrize("dev", ["nvme", "virtio", "usb"])
def test_host_disk_kinds(tmp_path, guest, dev):
    """The host disk on NVMe, virtio-blk and USB (xHCI) as well as AHCI: all through the firmware's Block I/O."""
    host, esp = make_host(tmp_path, guest[0], {"k.vhd": "dynamic"}, cfg="vhd=/images/k.vhd\n")
    devs = {"nvme": (eh.NVME, ()), "virtio": (eh.VIRTIO, ()), "usb": (eh.USB, eh.USB_EXTRA)}
    log = boot_probe(tmp_path, host, devs[dev][0], devs[dev][1])
    assert "disk: hd0 = efi %s" % {"nvme": "nvme", "virtio": "pci", "usb": "usb"}[dev] in log
    assert_written(tmp_path, guest, fetch(tmp_path, host, esp, "k.vhd"), log)


def test_no_efi_loader(tmp_path, guest):
    """An image whose ESP has no \\EFI\\BOOT\\BOOTX64.EFI: a clear message, the disk taken back, back to the firmware."""
    raw = str(tmp_path / "noloader.raw")
    shutil.copyfile(guest[0], raw)
    parts = eh.gpt(raw, os.path.getsize(raw), [(2048, 16 * eh.MIB // eh.SECTOR, eh.ESP_TYPE, "esp"),
                                              (2048 + 16 * eh.MIB // eh.SECTOR, None, eh.DATA_TYPE, "pattern")])
    eh.fat_into(raw, parts[0][0], parts[0][1], 16, {"README.TXT": eh.EFIPROBE})   # some file, not a loader
    src = str(tmp_path / "n.vhd")
    eh.to_vhd(raw, src, "fixed")
    before = sha(src)
    host, esp = make_host(tmp_path, guest[0], {"n.vhd": src}, cfg="vhd=/images/n.vhd\n")
    rc, log, secs = eh.boot_until(str(tmp_path), [(host, eh.IDE)], ["returning to the firmware"], timeout=TIMEOUT)
    assert "boot: the image has no EFI loader: none of its 1 FAT volume(s) has \\EFI\\BOOT\\BOOTX64.EFI" in log, log[-4000:]
    assert "serve: vhd0: Block I/O removed" in log
    # The hand-over variable published before the loader was looked for is deleted again: no OS looks for the disk.
    assert log.index("in the volatile runtime variable VhdbootHandover") < log.index(
        "handover: variable VhdbootHandover deleted (vhdboot took the disk back)"), log[-4000:]
    assert "returning to the firmware" in log
    assert sha(fetch(tmp_path, host, esp, "n.vhd")) == before


@pytest.mark.parametrize("where", ["header", "footer", "both-footers"])
def test_damaged_image(tmp_path, guest, where):
    """Damaged dynamic VHDs, bytes never changed: a wrong header checksum (named in vhdboot.cfg) is refused with the
    library's message; a damaged end footer is served read-only from the copy at offset 0, with a warning; both
    footers damaged (found by the scan) is skipped and nothing is served."""
    src = str(tmp_path / "bad.vhd")
    eh.to_vhd(guest[0], src, "dynamic")
    offs = {"header": [512 + 64], "footer": [os.path.getsize(src) - 512 + 16],
            "both-footers": [16, os.path.getsize(src) - 512 + 16]}[where]   # header version / footer features
    with open(src, "r+b") as f:
        for off in offs:
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ 0xFF]))
    before = sha(src)
    host, esp = make_host(tmp_path, guest[0], {"bad.vhd": src}, cfg="vhd=/images/bad.vhd\n" if where == "header" else None)
    if where == "footer":
        log = boot_probe(tmp_path, host)
        assert "vhd: WARNING: end footer damaged (footer checksum mismatch); using the copy at offset 0" in log
        assert "readonly=1" in log and "PROBE write refused (read-only)" in log
    else:
        rc, log, secs = eh.boot_until(str(tmp_path), [(host, eh.IDE)], ["returning to the firmware"], timeout=TIMEOUT)
        assert "vhdboot: ERROR: " in log and "checksum" in log, log[-4000:]
        if where == "header":
            assert "vhdboot: ERROR: the VHD hd0,1:/images/bad.vhd cannot be opened" in log
        else:
            assert "select: skipped hd0,1:/images/bad.vhd:" in log
        assert "serve:" not in log and "PROBE" not in log
    assert sha(fetch(tmp_path, host, esp, "bad.vhd")) == before


@pytest.mark.skipif(not shutil.which("grub-mkstandalone") or not os.path.isdir("/usr/lib/grub/x86_64-efi"),
                    reason="needs grub-efi-amd64-bin")
def test_grub_efi_guest(tmp_path):
    """GRUB-EFI inside a dynamic VHD: it reads its own files from the image (LoadedImage's device is the image's ESP)
    and save_env writes grubenv through our WriteBlocks; the host finds the variable in the image afterwards."""
    raw = str(tmp_path / "grub.raw")
    eh.guest_raw(raw, esp_files=eh.grub_esp_files(str(tmp_path)))
    host, esp = make_host(tmp_path, raw, {"g.vhd": "dynamic"}, cfg="vhd=/images/g.vhd\n")
    rc, log, secs = eh.boot(str(tmp_path), [(host, eh.IDE)], timeout=TIMEOUT)
    assert rc == eh.EXIT_PASS and "GRUBEFI saved" in log, "exit %s after %.0f s\n%s" % (rc, secs, log[-6000:])
    assert eh.GRUB_TOKEN in log and "GRUBEFI before=[]" in log
    assert re.search(r"GRUBEFI root=hd[0-9]+,gpt1", log)   # GRUB found its ESP on a disk (ours), not on memdisk
    vhd = fetch(tmp_path, host, esp, "g.vhd")
    eh.run([eh.VHDTOOL, "check", vhd])
    back = str(tmp_path / "g-back.raw")
    eh.run([eh.VHDTOOL, "convert", "-O", "raw", vhd, back])
    env = str(tmp_path / "grubenv-after")
    eh.fetch_file(back, 2048, "grubenv", env)
    with open(env) as f:
        assert "vhdboot_test=written" in f.read()


def test_differencing_chain(tmp_path, guest):
    """A differencing VHD whose parent lies beside it on the host FAT: read through the chain, the write lands in the
    child (its block was allocated on the host first, so the write needs no growth; growth: test_uefi_grow.py), the
    parent never changes."""
    raw, p2, _ = guest
    d = tmp_path / "chain"
    d.mkdir()
    parent, child = str(d / "base.vhd"), str(d / "child.vhd")
    eh.to_vhd(raw, parent, "dynamic")
    eh.run([eh.VHDTOOL, "create", "-p", parent, child])
    w = p2 + eh.PROBE_WRITE_OFF
    block = 4096                  # sectors per 2 MiB block: the probe's writes all fall into w's block
    assert w // block == (p2 + eh.PROBE_WINDOW - 1) // block == p2 // block
    eh.run([eh.VHDTOOL, "write", child, str(w)], input=eh.pattern_sector(w))   # allocate the block, same bytes
    before = sha(parent)
    host, esp = make_host(tmp_path, raw, {"base.vhd": parent, "child.vhd": child}, cfg="vhd=/images/child.vhd\n")
    log = boot_probe(tmp_path, host)
    assert "parent /images/base.vhd" in log and "PROBE write ok" in log
    out = tmp_path / "after"
    out.mkdir()
    eh.fetch_file(host, esp, "images/base.vhd", str(out / "base.vhd"))
    eh.fetch_file(host, esp, "images/child.vhd", str(out / "child.vhd"))
    assert sha(str(out / "base.vhd")) == before
    assert_written(tmp_path, guest, str(out / "child.vhd"), log)


@pytest.mark.parametrize("kind", ["fixed", "dynamic"])
def test_whole_disk_image(tmp_path, guest, kind):
    """The second disk's content is the .vhd file itself: the scan offers the whole disk (hd1) and serves it; the
    write lands in the file the disk is made of."""
    host, esp = make_host(tmp_path, guest[0], {}, cfg="timeout=0\n")
    disk = str(tmp_path / "whole.vhd")
    eh.to_vhd(guest[0], disk, kind)
    rc, log, secs = eh.boot(str(tmp_path), [(host, eh.IDE), (disk, "ide-hd,drive=%(id)s,bus=ide.1")], timeout=TIMEOUT)
    assert "PROBE PASS" in log and rc == eh.EXIT_PASS, "exit %s after %.0f s\n%s" % (rc, secs, log[-6000:])
    assert "select: drive 80h = hd1 (" in log and "PROBE disk vendor-path=1" in log
    assert_written(tmp_path, guest, disk, log)


def test_trace(tmp_path, guest):
    """trace: every Block I/O request of the image is logged."""
    host, esp = make_host(tmp_path, guest[0], {"tr.vhd": "fixed"}, cfg="vhd=/images/tr.vhd trace\n")
    log = boot_probe(tmp_path, host)
    assert re.search(r"serve: vhd0 read LBA 1 count 1: ok", log)
    assert re.search(r"serve: vhd0 write LBA %d count 3: ok" % (guest[1] + eh.PROBE_WRITE_OFF), log)
    assert "serve: vhd0 flush LBA 0 count 0: ok" in log


@pytest.mark.skipif(not shutil.which("grub-mkstandalone") or not os.path.isdir("/usr/lib/grub/x86_64-efi"),
                    reason="needs grub-efi-amd64-bin")
def test_linux_via_grub_efi(tmp_path):
    """GRUB-EFI inside a dynamic VHD loads Linux (EFI stub) and its initramfs from the image's ESP through our
    Block I/O; the kernel starts (ExitBootServices) and init prints the command line GRUB gave it."""
    raw = str(tmp_path / "linux.raw")
    eh.guest_raw(raw, esp_files=eh.grub_linux_esp_files(str(tmp_path)))
    host, esp = make_host(tmp_path, raw, {"l.vhd": "dynamic"}, cfg="vhd=/images/l.vhd\n")
    rc, log, secs = eh.boot(str(tmp_path), [(host, eh.IDE)], timeout=TIMEOUT)
    assert rc == eh.EXIT_PASS and "VHDBOOT-LINUX-OK" in log, "exit %s after %.0f s\n%s" % (rc, secs, log[-6000:])
    assert re.search(r"GRUBEFI-LINUX root=hd[0-9]+,gpt1", log)
    assert re.search(r"VHDBOOT-INIT cmdline=.*" + eh.LINUX_TOKEN, log)


def test_linux_snapshot_from_efi_variable(tmp_path):
    """mode=snapshot under UEFI: GRUB-EFI's save_env (a write before ExitBootServices) lands in vhdboot.efi's
    overlay, which lives in EfiReservedMemoryType pages the table names; after ExitBootServices vhdboot-attach
    reads the overlay through /dev/mem and serves the image under a RAM layer: Linux sees GRUB's grubenv,
    its own writes work, and the image file on the host ESP is unchanged."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "thirdparty"))
    import linux_nbd as ln
    raw = ln.build_efi_guest_raw(str(tmp_path / "snap.raw"), str(tmp_path), grubenv=True)
    vhd = str(tmp_path / "s.vhd")
    eh.to_vhd(raw, vhd, "dynamic")
    with open(vhd, "rb") as fh:
        before = hashlib.sha256(fh.read()).hexdigest()
    host, esp = make_host(tmp_path, raw, {"s.vhd": vhd}, cfg="vhd=/images/s.vhd mode=snapshot\n")
    rc, log, secs = eh.boot(str(tmp_path), [(host, eh.NVME)], timeout=TIMEOUT)
    ctx = "exit %s after %.0f s\n%s" % (rc, secs, log[-8000:])
    assert rc == eh.EXIT_PASS and "NBDINIT-DONE" in log, ctx
    assert re.search(r"snapshot: \d+ MiB of RAM \(\d+ sectors\) for writes, reserved memory at [0-9a-f]{8}", log), ctx
    assert "GRUBEFI-SAVED-ENV" in log, ctx
    m = re.search(r"mode=snapshot: (\d+) sector\(s\) the boot loader wrote carried over", log)
    assert m and int(m.group(1)) > 0, "vhdboot-attach did not carry the overlay over\n" + ctx
    assert "NBDINIT grubenv %s" % ln.GRUBENV_TOKEN in log, "Linux does not see GRUB-EFI's save_env\n" + ctx
    assert "NBDINIT wrote vhdboot-token.txt" in log and "NBDINIT detached" in log, ctx
    after = fetch(tmp_path, host, esp, "s.vhd")
    with open(after, "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == before, "the image file changed under mode=snapshot"


def test_linux_attach_from_efi_variable(tmp_path):
    """Issue 17 item 5, the hand-over under UEFI (initramfs-only Linux, no switch_root): GRUB-EFI + Debian's cloud
    kernel (EFI stub) inside a dynamic VHD on the NVMe host disk's ESP; vhdboot.efi publishes the hand-over table
    as the volatile runtime variable VhdbootHandover before StartImage; after ExitBootServices the initramfs
    (tests/qemu/thirdparty/nbdinit.c) runs vhdboot-attach, which reads the variable through efivarfs, finds the
    NVMe disk by identity, mounts its ESP and serves the VHD as /dev/nbd0; init writes a token and a 3 MiB
    pattern into the image's ext2 (/dev/nbd0p2), detaches and powers off. The host finds both files in the VHD,
    which grew, and vhdtool check is clean."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "thirdparty"))
    import linux_nbd as ln
    raw = ln.build_efi_guest_raw(str(tmp_path / "attach.raw"), str(tmp_path))
    vhd = str(tmp_path / "a.vhd")
    eh.to_vhd(raw, vhd, "dynamic")
    before = os.path.getsize(vhd)
    host, esp = make_host(tmp_path, raw, {"a.vhd": vhd}, cfg="vhd=/images/a.vhd\n")
    rc, log, secs = eh.boot(str(tmp_path), [(host, eh.NVME)], timeout=TIMEOUT)
    ctx = "exit %s after %.0f s\n%s" % (rc, secs, log[-8000:])
    assert rc == eh.EXIT_PASS and "NBDINIT-DONE" in log, ctx
    m = re.search(r"handover: table (\d+) bytes \(version 1\.2, 1 drive\(s\)\) in the volatile runtime variable "
                  r"VhdbootHandover-bb45c8af-ef6d-4f0e-843d-8e342883d875", log)
    assert m, ctx
    # vhdboot-attach --info: the table came from the variable (not low memory), the disk is the firmware's.
    assert re.search(r"table: version 1\.2, %s bytes in the EFI variable VhdbootHandover-" % m.group(1), log), ctx
    assert re.search(r'place file "hd0,1:/images/a\.vhd"', log), ctx
    assert re.search(r"iface 4 ", log), ctx
    assert "NBDINIT attach rc=0" in log, ctx
    assert re.search(r"serving nvme0n1 partition nvme0n1p1 as /dev/nbd0: %d sectors, dynamic, chain of 1, read-write"
                     % (ln.GUEST_MIB * 2048), log), ctx
    assert "NBDINIT wrote vhdboot-token.txt" in log and "NBDINIT detached" in log, ctx
    assert "/dev/nbd0: disconnected, image flushed and closed" in log, ctx

    after = fetch(tmp_path, host, esp, "a.vhd")
    eh.run([eh.VHDTOOL, "check", after])
    assert os.path.getsize(after) > before, "the dynamic VHD did not grow (%d, was %d)" % (os.path.getsize(after), before)
    token = ln.read_guest_file(after, "vhdboot-token.txt", str(tmp_path), start=ln.EFI_ROOT_START)
    assert token == ("VHDBOOT-TOKEN %s written by Linux through /dev/nbd0p2\n" % ln.TOKEN).encode(), token
    fill = ln.read_guest_file(after, "vhdboot-fill.bin", str(tmp_path), start=ln.EFI_ROOT_START)
    assert fill is not None and ln.sha(fill) == ln.sha(ln.fill_pattern()), "the pattern file differs"


def test_linux_root_on_vhd_from_efi_variable(tmp_path):
    """The full root switch under UEFI: the same kind of guest, but its initrd is made by Debian's real mkinitramfs
    with tools/linux/initramfs-tools (local-top runs vhdboot-attach, which reads vhdboot.efi's variable);
    root=/dev/nbd0p2 rw; the root's /sbin/init (rootinit.c) sees /dev/nbd0p2 as / and the '@' server alive,
    writes a token and a 3 MiB pattern, remounts read-only and disconnects. The host finds both files in the VHD
    (which grew) and vhdtool check is clean."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "thirdparty"))
    import linux_nbd as ln
    raw = ln.build_efi_guest_raw(str(tmp_path / "root.raw"), str(tmp_path), full_root=True)
    vhd = str(tmp_path / "r.vhd")
    eh.to_vhd(raw, vhd, "dynamic")
    before = os.path.getsize(vhd)
    host, esp = make_host(tmp_path, raw, {"r.vhd": vhd}, cfg="vhd=/images/r.vhd\n")
    rc, log, secs = eh.boot(str(tmp_path), [(host, eh.NVME)], timeout=TIMEOUT)
    ctx = "exit %s after %.0f s\n%s" % (rc, secs, log[-8000:])
    assert rc == eh.EXIT_PASS and "ROOTINIT-DONE" in log, ctx
    assert "in the volatile runtime variable VhdbootHandover-bb45c8af-ef6d-4f0e-843d-8e342883d875" in log, ctx
    assert re.search(r"serving nvme0n1 partition nvme0n1p1 as /dev/nbd0: %d sectors, dynamic, chain of 1, read-write"
                     % (ln.GUEST_MIB * 2048), log), ctx
    assert "Success: vhdboot: the image is /dev/nbd0" in log, ctx
    assert "ROOTINIT root=/dev/nbd0p2" in log, ctx
    assert re.search(r"ROOTINIT server @\S*vhdboot-attach", log), ctx
    assert "ROOTINIT wrote vhdboot-fill.bin" in log and "ROOTINIT detached" in log, ctx
    assert "/dev/nbd0: disconnected, image flushed and closed" in log, ctx

    after = fetch(tmp_path, host, esp, "r.vhd")
    eh.run([eh.VHDTOOL, "check", after])
    assert os.path.getsize(after) > before, "the dynamic VHD did not grow (%d, was %d)" % (os.path.getsize(after), before)
    token = ln.read_guest_file(after, "vhdboot-switched.txt", str(tmp_path), start=ln.EFI_IT_ROOT_START)
    assert token == b"VHDBOOT-SWITCHED written by the root's /sbin/init after switch_root\n", token
    fill = ln.read_guest_file(after, "vhdboot-fill.bin", str(tmp_path), start=ln.EFI_IT_ROOT_START)
    assert fill is not None and ln.sha(fill) == ln.sha(ln.fill_pattern()), "the pattern file differs"
