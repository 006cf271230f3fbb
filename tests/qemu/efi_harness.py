"""efi_harness.py: images and QEMU runs for the UEFI front end (vhdboot.efi under OVMF); used by test_uefi.py and `make run-efi`.

Stdlib only. The guest image (a raw disk, then converted to VHD by vhdtool):
GPT, partition 1 an ESP (FAT16) holding tests/qemu/progs/efiprobe.c's build
as \\EFI\\BOOT\\BOOTX64.EFI, partition 2 a pattern that efiprobe checks
(sector s starts with b"VHDBPAT!" + s as u64 LE, byte i >= 16 is (s*7+i) & 0xFF).
The host disk: GPT with one FAT32 ESP holding vhdboot.efi as
\\EFI\\BOOT\\BOOTX64.EFI, an optional \\EFI\\BOOT\\vhdboot.cfg and the images.
QEMU: q35, OVMF in pflash (a copy of the VARS file per run), TCG, COM1 on stdio,
isa-debug-exit at 0xF4 (efiprobe writes 0x10 pass / 0x11 fail: exit 33 / 35).

Command: python3 tests/qemu/efi_harness.py demo OUTDIR  (the image for `make run-efi`).
"""
import os
import shutil
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
VHDBOOT_EFI = os.path.join(BUILD, "vhdboot.efi")
EFIPROBE = os.path.join(BUILD, "efi", "efiprobe.efi")
VHDTOOL = os.environ.get("VHDTOOL", os.path.join(BUILD, "vhdtool"))
OVMF_CODE = os.environ.get("OVMF_CODE", "/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = os.environ.get("OVMF_VARS", "/usr/share/OVMF/OVMF_VARS_4M.fd")
QEMU = os.environ.get("QEMU_X86_64", "qemu-system-x86_64")

SECTOR = 512
MIB = 1 << 20
EXIT_PASS = (0x10 << 1) | 1    # 33
EXIT_FAIL = (0x11 << 1) | 1    # 35
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
DATA_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
# efiprobe's write: PROBE_WRITE_COUNT sectors at partition 2's start + PROBE_WRITE_OFF (efiprobe.c).
PROBE_WRITE_OFF, PROBE_WRITE_COUNT = 5, 3
PROBE_WINDOW = 2048               # its random writes: partition 2's first PROBE_WIN sectors


def run(args, timeout=300, **kw):
    """Run a command; raise with its output when it fails."""
    p = subprocess.run([str(a) for a in args], capture_output=True, timeout=timeout, **kw)
    if p.returncode:
        raise RuntimeError("%s -> %d\n%s\n%s" % (" ".join(map(str, args)), p.returncode,
                                                 p.stdout.decode(errors="replace")[-2000:],
                                                 p.stderr.decode(errors="replace")[-2000:]))
    return p


def gpt(path, size, parts):
    """A raw file of size bytes with a GPT: parts = [(start_sector, sectors or None, type GUID, name)]."""
    with open(path, "wb") as f:
        f.truncate(size)
    lines = ["label: gpt", "unit: sectors", "first-lba: 2048"]
    for start, count, typ, name in parts:
        lines.append("start=%d, %stype=%s, name=%s" % (start, "size=%d, " % count if count else "", typ, name))
    run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", path], input="\n".join(lines).encode() + b"\n")
    out = run(["sfdisk", "-J", path]).stdout.decode()
    import json
    return [(p["start"], p["size"]) for p in json.loads(out)["partitiontable"]["partitions"]]


def fat_into(img, start, sectors, fat_bits, files, label="VHDBOOT"):
    """Make a FAT file system of sectors at sector start of img with files {dos_path: host_path}."""
    tmp = img + ".fat"
    if os.path.exists(tmp):
        os.unlink(tmp)
    run(["mkfs.fat", "-F", str(fat_bits), "-n", label, "-C", tmp, str(sectors * SECTOR // 1024)])
    dirs = set()
    for dst in files:
        parts = dst.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    for d in sorted(dirs, key=len):
        run(["mmd", "-i", tmp, "::/" + d])
    for dst, src in files.items():
        run(["mcopy", "-i", tmp, src, "::/" + dst.strip("/")])
    with open(tmp, "rb") as f, open(img, "r+b") as o:
        o.seek(start * SECTOR)
        shutil.copyfileobj(f, o, 4 * MIB)
    os.unlink(tmp)


def pattern_sector(s, templates={}):
    """The pattern of disk sector s (efiprobe.c's sector_ok)."""
    k = (s * 7) & 0xFF
    if k not in templates:
        templates[k] = bytes((k + i) & 0xFF for i in range(16, SECTOR))
    return b"VHDBPAT!" + struct.pack("<Q", s) + templates[k]


def written_sector(s):
    """What efiprobe writes into disk sector s."""
    return b"VHDBWRIT" + struct.pack("<Q", s) + bytes(((s * 13 + i) ^ 0x5A) & 0xFF for i in range(16, SECTOR))


def guest_raw(path, size=48 * MIB, probe=EFIPROBE, esp_files=None):
    """The guest disk as raw: GPT, ESP with efiprobe (or esp_files {dos_path: host_path}), the pattern partition.
    Returns (p2_start, p2_sectors)."""
    parts = gpt(path, size, [(2048, 16 * MIB // SECTOR, ESP_TYPE, "esp"), (2048 + 16 * MIB // SECTOR, None, DATA_TYPE, "pattern")])
    fat_into(path, parts[0][0], parts[0][1], 16, esp_files or {"EFI/BOOT/BOOTX64.EFI": probe}, label="GUESTESP")
    p2, n2 = parts[1]
    with open(path, "r+b") as f:
        f.seek(p2 * SECTOR)
        for s0 in range(p2, p2 + n2, 2048):
            f.write(b"".join(pattern_sector(s) for s in range(s0, min(s0 + 2048, p2 + n2))))
    return p2, n2


# GRUB-EFI as the image's loader (grub-mkstandalone, Debian's grub-efi-amd64-bin): it finds its own partition from
# $cmdpath, prints a file of the image, writes grubenv through Block I/O (save_env) and ends QEMU with 0x10.
GRUB_CFG = r"""set pager=0
echo "GRUBEFI cmdpath=$cmdpath"
regexp --set=dev '^\(([^)]*)\)' "$cmdpath"
set root=($dev)
echo "GRUBEFI root=$root"
cat /token.txt
load_env -f /grubenv
echo "GRUBEFI before=[$vhdboot_test]"
set vhdboot_test=written
save_env -f /grubenv vhdboot_test
echo "GRUBEFI saved"
outb 0xf4 0x10
"""
GRUB_TOKEN = "GRUBEFI-TOKEN-7f3a from the image's ESP"


def grub_esp_files(workdir):
    """The ESP files of a GRUB-EFI guest: BOOTX64.EFI (standalone, embedded grub.cfg), token.txt, an empty grubenv."""
    cfg = os.path.join(workdir, "grub.cfg")
    with open(cfg, "w") as f:
        f.write(GRUB_CFG)
    efi = os.path.join(workdir, "grubx64.efi")
    run(["grub-mkstandalone", "-O", "x86_64-efi", "-o", efi, "--locales=", "--fonts=", "--themes=",
         "--modules=part_gpt fat", "--install-modules=part_gpt fat regexp loadenv cat iorw echo normal",
         "boot/grub/grub.cfg=" + cfg])
    tok = os.path.join(workdir, "token.txt")
    with open(tok, "w") as f:
        f.write(GRUB_TOKEN + "\n")
    env = os.path.join(workdir, "grubenv")
    if os.path.exists(env):
        os.unlink(env)
    run(["grub-editenv", env, "create"])
    return {"EFI/BOOT/BOOTX64.EFI": efi, "token.txt": tok, "grubenv": env}


# Linux with the EFI stub, loaded by GRUB-EFI from the image's ESP (kernel: Debian's cloud kernel, initramfs: the
# static init of tests/qemu/thirdparty/init.c, both from build_images.py): init prints its command line, then
# VHDBOOT-LINUX-OK, and ends QEMU with 0x10.
LINUX_TOKEN = "vhdboot_efi_token=c0ffee"
GRUB_LINUX_CFG = r"""set pager=0
regexp --set=dev '^\(([^)]*)\)' "$cmdpath"
set root=($dev)
echo "GRUBEFI-LINUX root=$root"
linux /vmlinuz console=ttyS0 panic=-1 no_timer_check %s
initrd /initrd.img
echo "GRUBEFI-LINUX booting"
boot
""" % LINUX_TOKEN


def grub_linux_esp_files(workdir):
    """ESP files of the Linux guest: GRUB-EFI (standalone) as BOOTX64.EFI, /vmlinuz, /initrd.img."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "thirdparty"))
    import build_images as bi
    cfg = os.path.join(workdir, "grub-linux.cfg")
    with open(cfg, "w") as f:
        f.write(GRUB_LINUX_CFG)
    efi = os.path.join(workdir, "grubx64-linux.efi")
    run(["grub-mkstandalone", "-O", "x86_64-efi", "-o", efi, "--locales=", "--fonts=", "--themes=",
         "--modules=part_gpt fat", "--install-modules=part_gpt fat regexp echo linux normal",
         "boot/grub/grub.cfg=" + cfg])
    return {"EFI/BOOT/BOOTX64.EFI": efi, "vmlinuz": bi.kernel(), "initrd.img": bi.initramfs(workdir)}


def to_vhd(raw, out, kind):
    """raw -> VHD (kind fixed or dynamic) with vhdtool."""
    run([VHDTOOL, "convert", "-f", "raw", "-O", kind, raw, out])


def host_disk(path, files, size=160 * MIB, default_loader=True):
    """The host disk: GPT with one FAT32 ESP holding vhdboot.efi as the default loader (else no default loader:
    OVMF falls back to its shell, which runs startup.nsh) plus files {dos_path: host_path}.
    Returns the ESP's first sector (for mtools' @@offset)."""
    parts = gpt(path, size, [(2048, None, ESP_TYPE, "hostesp")])
    allf = {"EFI/BOOT/BOOTX64.EFI": VHDBOOT_EFI} if default_loader else {}
    allf.update(files)
    fat_into(path, parts[0][0], parts[0][1], 32, allf, label="HOSTESP")
    return parts[0][0]


def fetch_file(disk, esp_start, dos_path, out):
    """Copy dos_path from the FAT at esp_start of disk to out (mtools)."""
    run(["mcopy", "-o", "-i", "%s@@%d" % (disk, esp_start * SECTOR), "::/" + dos_path.strip("/"), out])


def qemu_cmd(workdir, disks, extra=(), vars_file=None):
    """The QEMU command line: q35 + OVMF, disks = [(path, device args)]. The VARS file is a fresh copy in workdir,
    or vars_file as it is (kept between runs, e.g. for a boot entry one run writes and the next uses)."""
    vars_copy = vars_file or os.path.join(workdir, "vars.fd")
    if not vars_file:
        shutil.copyfile(OVMF_VARS, vars_copy)
    cmd = [QEMU, "-machine", "q35", "-accel", "tcg", "-m", "512", "-display", "none", "-serial", "stdio",
           "-no-reboot", "-nic", "none",
           "-drive", "if=pflash,format=raw,readonly=on,file=" + OVMF_CODE,
           "-drive", "if=pflash,format=raw,file=" + vars_copy,
           "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"] + list(extra)   # controllers before their disks
    for i, (path, dev) in enumerate(disks):
        cmd += ["-drive", "file=%s,format=raw,if=none,id=d%d" % (path, i), "-device", dev % {"id": "d%d" % i}]
    return cmd


def boot(workdir, disks, timeout=240, extra=(), vars_file=None):
    """Boot under OVMF; returns (exit status, serial log as text, seconds). A run past timeout is killed (status None).
    vars_file: as qemu_cmd's."""
    cmd = qemu_cmd(workdir, disks, extra, vars_file)
    t0 = time.time()
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
        rc, out = p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        rc, out = None, e.stdout or b""
    log = out.decode("utf-8", "replace")
    with open(os.path.join(workdir, "serial.log"), "w") as f:
        f.write(log)
    return rc, strip_ansi(log), time.time() - t0


def strip_ansi(text):
    """The log without OVMF's VT100 escapes and carriage returns."""
    import re
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r", "", text)


def boot_until(workdir, disks, patterns, timeout=240, extra=(), keys=()):
    """Boot under OVMF until one of patterns (strings) shows in the log, or QEMU exits, or timeout; keys =
    [(pattern, bytes)]: send bytes to COM1 (OVMF's serial console) once pattern shows. Returns (exit status or
    None when stopped by us, log as text, seconds)."""
    import threading
    cmd = qemu_cmd(workdir, disks, extra)
    t0 = time.time()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunks = []
    todo = list(keys)

    def reader():
        for chunk in iter(lambda: p.stdout.read1(4096), b""):
            chunks.append(chunk)
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    rc = None
    while time.time() - t0 < timeout:
        if p.poll() is not None:
            rc = p.returncode
            break
        log = strip_ansi(b"".join(chunks).decode("utf-8", "replace"))
        if todo and todo[0][0] in log:
            p.stdin.write(todo.pop(0)[1])
            p.stdin.flush()
        if any(pat in log for pat in patterns):
            time.sleep(0.5)       # the rest of the line
            break
        time.sleep(0.2)
    if p.poll() is None:
        p.kill()
        p.wait()
    th.join(5)
    raw = b"".join(chunks).decode("utf-8", "replace")
    with open(os.path.join(workdir, "serial.log"), "w") as f:
        f.write(raw)
    return rc, strip_ansi(raw), time.time() - t0


# Host disk devices on q35 (OVMF drives all of them and offers each as Block I/O).
IDE = "ide-hd,drive=%(id)s,bus=ide.0"
NVME = "nvme,drive=%(id)s,serial=vhdbootnvme"
VIRTIO = "virtio-blk-pci,drive=%(id)s"
USB = "usb-storage,drive=%(id)s"
USB_EXTRA = ("-device", "qemu-xhci")


def demo(outdir):
    """make run-efi's disk: host.img with a fixed VHD of the guest image and vhdboot.cfg naming it."""
    os.makedirs(outdir, exist_ok=True)
    raw = os.path.join(outdir, "guest.raw")
    vhd = os.path.join(outdir, "demo.vhd")
    guest_raw(raw)
    to_vhd(raw, vhd, "dynamic")
    cfg = os.path.join(outdir, "vhdboot.cfg")
    with open(cfg, "w") as f:
        f.write("# vhdboot.cfg: the options of vhdboot.efi (the same words as the BIOS command line)\nvhd=/images/demo.vhd\n")
    host_disk(os.path.join(outdir, "host.img"), {"EFI/BOOT/vhdboot.cfg": cfg, "images/demo.vhd": vhd})
    print("efi_harness: %s/host.img ready (vhdboot.efi + images/demo.vhd)" % outdir)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "demo":
        demo(sys.argv[2])
    else:
        sys.exit("usage: efi_harness.py demo OUTDIR")
