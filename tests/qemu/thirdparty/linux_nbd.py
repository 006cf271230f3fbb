#!/usr/bin/env python3
"""linux_nbd.py: the "Linux keeps the disk" guest (issue 12): a VHD whose Linux serves itself through vhdboot-attach.

Built at test time from Debian's packages (build_images.py's cached cloud kernel .deb):
  guest raw disk:  GRUB 2 in the MBR gap, partition 1 ext2 (the root): /boot/vmlinuz, /boot/initrd.img,
                   /boot/grub/grub.cfg. GRUB loads both through INT 13h (vhdboot).
  initramfs:       /init = nbdinit.c (static), /vhdboot-attach (build/linux/), and the modules the
                   cloud kernel has as modules (IDE: ata_piix, libata, scsi, sd_mod; nbd; vfat, fat, nls)
                   with their dependencies (from each .ko's .modinfo), listed in /modules.order.
  host disk:       a raw disk with one FAT32 partition holding /guest.vhd (the guest disk as a VHD:
                   dynamic by default), attached as the IDE master; vhdboot's scan finds the file.

After the boot the host checks the VHD: vhdtool check, the token and pattern files inside the ext2
(vhdtool convert to raw, then debugfs), and that the file grew.

Usage: tests/qemu/thirdparty/linux_nbd.py OUTDIR [fixed|dynamic]   (prints the host disk's path)
"""
import hashlib
import os
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import build_images as bi  # noqa: E402

ATTACH = os.environ.get("VHDBOOT_ATTACH", os.path.join(bi.BUILD, "linux", "vhdboot-attach"))
TOKEN = "linux-kept-the-disk-7f3a"
FILL_KIB = 3072                   # the pattern file: spreads over blocks the dynamic VHD has not allocated yet
GUEST_MIB = 64                    # the guest's virtual disk
HOST_FAT_MIB = 160                # the host disk's FAT32 partition
HOST_P1 = 2048
VHD_NAME = "guest.vhd"
VHDX_NAME = "guest.vhdx"
PARENT_NAME = "guest-parent.vhd"          # a differencing guest's parent, beside it on the FAT
# The modules the initramfs loads (each with its dependencies first).
MODULES = ["ata_piix", "sd_mod", "nbd", "dm_mod", "vfat", "exfat", "nls_cp437", "nls_ascii", "nls_utf8"]
ARGS = bi.LINUX_ARGS + " vhdboot.token=%s vhdboot.fill=%d" % (TOKEN, FILL_KIB)


def fill_pattern(kib=FILL_KIB):
    """The bytes nbdinit.c writes to /vhdboot-fill.bin (same LCG)."""
    out = bytearray(kib * 1024)
    x = 0x12345678
    for i in range(len(out)):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out[i] = (x >> 16) & 0xFF
    return bytes(out)


# ------------------------------------------------------------------ kernel modules from the .deb

def _modinfo_depends(ko):
    """The depends= list of a .ko's .modinfo section (ELF64 little-endian section table)."""
    with open(ko, "rb") as fh:
        data = fh.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise bi.BuildError("%s is not an ELF64 file" % ko)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    secs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    stroff = secs[shstrndx][4]
    for s in secs:
        name = data[stroff + s[0]:data.index(b"\0", stroff + s[0])]
        if name == b".modinfo":
            for item in data[s[4]:s[4] + s[5]].split(b"\0"):
                if item.startswith(b"depends="):
                    return [d for d in item[8:].decode().split(",") if d]
    return []


def kernel_tree():
    """The extracted .deb (CACHE/<deb>.tree): /lib/modules/<version>/... ; extracted once."""
    with bi._KERNEL_LOCK:
        deb = bi.kernel_deb()
        tree = deb[:-len(".deb")] + ".tree"
        if not os.path.isdir(tree):
            tmp = tree + ".tmp%d" % os.getpid()
            shutil.rmtree(tmp, ignore_errors=True)
            bi.run(["dpkg-deb", "-x", deb, tmp])
            os.replace(tmp, tree)
        return tree


def modules_in_order(tree, wanted=MODULES):
    """[(path inside the initramfs, host file)] of wanted and their dependencies, dependencies first."""
    index = {}
    for root, _dirs, files in os.walk(os.path.join(tree, "lib", "modules")):
        for f in files:
            if f.endswith(".ko"):
                index[f[:-3].replace("-", "_")] = os.path.join(root, f)
    order, seen = [], set()

    def visit(name):
        key = name.replace("-", "_")
        if key in seen:
            return
        seen.add(key)
        if key not in index:
            raise bi.BuildError("module %s is not in %s (built in, or another kernel?)" % (name, tree))
        for dep in _modinfo_depends(index[key]):
            visit(dep)
        order.append(("lib/modules/%s.ko" % key, index[key]))

    for m in wanted:
        visit(m)
    return order


def initramfs(workdir, modules=MODULES):
    """The initramfs: nbdinit (static), vhdboot-attach, the modules (and their dependencies) and /modules.order."""
    if not os.path.exists(ATTACH):
        raise bi.BuildError("%s is missing: run `make linux`" % ATTACH)
    init = os.path.join(workdir, "nbdinit")
    bi.run(["gcc", "-static", "-Os", "-s", "-Wall", "-Werror", "-o", init, os.path.join(HERE, "nbdinit.c")])
    mods = modules_in_order(kernel_tree(), modules)
    ents = [("dev", 0o40755, b"", (0, 0)), ("dev/console", 0o20600, b"", (5, 1)),
            ("proc", 0o40755, b"", (0, 0)), ("sys", 0o40755, b"", (0, 0)), ("run", 0o40755, b"", (0, 0)),
            ("lib", 0o40755, b"", (0, 0)), ("lib/modules", 0o40755, b"", (0, 0))]
    for inside, host in mods:
        with open(host, "rb") as fh:
            ents.append((inside, 0o100644, fh.read(), (0, 0)))
    ents.append(("modules.order", 0o100644, "".join("/%s\n" % i for i, _ in mods).encode(), (0, 0)))
    with open(init, "rb") as fh:
        ents.append(("init", 0o100755, fh.read(), (0, 0)))
    with open(ATTACH, "rb") as fh:
        ents.append(("vhdboot-attach", 0o100755, fh.read(), (0, 0)))
    out = os.path.join(workdir, "initrd.img")
    with open(out, "wb") as fh:
        fh.write(bi.newc_cpio(ents))
    return out


def initramfs_tools(workdir, modules=("ata_piix", "sd_mod")):
    """An initramfs made by Debian's real mkinitramfs with tools/linux/initramfs-tools (the hook and the
    local-top script) for the cloud kernel of the cached .deb: MODULES=list (ata_piix, sd_mod) plus what the
    hook adds. mkinitramfs reads /lib/modules/VERSION and /boot/config-VERSION: both are bind/tmpfs mounts in
    a private mount namespace (unshare -m), so the host's own trees are not touched (an absent /lib/modules
    is created as the mount point and removed again)."""
    if not shutil.which("mkinitramfs") or not shutil.which("depmod"):
        raise bi.BuildError("mkinitramfs/depmod missing: install initramfs-tools (tools/install-deps.sh)")
    tree = kernel_tree()
    mods = os.path.join(tree, "lib", "modules")
    version = os.listdir(mods)[0]
    if not os.path.exists(os.path.join(mods, version, "modules.dep")):
        bi.run(["depmod", "-b", tree, version])
    conf = os.path.join(workdir, "initramfs-tools")
    shutil.rmtree(conf, ignore_errors=True)
    src = os.path.join(bi.ROOT, "tools", "linux", "initramfs-tools")
    shutil.copytree(src, conf)
    os.makedirs(os.path.join(conf, "conf.d"), exist_ok=True)
    with open(os.path.join(conf, "initramfs.conf"), "w") as fh:
        fh.write("MODULES=list\nBUSYBOX=auto\nCOMPRESS=gzip\nRESUME=none\n")
    with open(os.path.join(conf, "modules"), "w") as fh:
        fh.write("".join(m + "\n" for m in modules))
    out = os.path.join(workdir, "initrd-it.img")
    script = ("set -e; mkdir -p /lib/modules; mount --bind '%s' /lib/modules; mount -t tmpfs tmpfs /boot; "
              "cp '%s' /boot/; VHDBOOT_ATTACH='%s' mkinitramfs -d '%s' -o '%s' '%s'"
              % (mods, os.path.join(tree, "boot", "config-" + version), ATTACH, conf, out, version))
    had_modules = os.path.isdir("/lib/modules")
    try:
        bi.run(["unshare", "-m", "sh", "-c", script])
    finally:
        if not had_modules:       # the mount point this created on the host: gone again (it is empty)
            try:
                os.rmdir("/lib/modules")
            except OSError:
                pass
    return out


def initramfs_dracut(workdir, modules=("ata_piix", "sd_mod")):
    """An initramfs made by dracut (Debian's dracut-core, which installs beside initramfs-tools) with
    tools/linux/dracut/90vhdboot for the cloud kernel of the cached .deb: dracut's shell init (no systemd),
    the modules base, rootfs-block, kernel-modules, udev-rules and vhdboot, plus the drivers named. dracut
    runs from a copy of /usr/lib/dracut with our module added (dracutbasedir), with the kernel tree
    bind-mounted on /lib/modules in a private mount namespace (the host's own trees are not touched), and
    finds build/linux/vhdboot-attach through VHDBOOT_ATTACH (the module's override of its search path)."""
    if not shutil.which("dracut") or not os.path.isdir("/usr/lib/dracut/modules.d"):
        raise bi.BuildError("dracut missing: install dracut-core (tools/install-deps.sh)")
    tree = kernel_tree()
    mods = os.path.join(tree, "lib", "modules")
    version = os.listdir(mods)[0]
    if not os.path.exists(os.path.join(mods, version, "modules.dep")):
        bi.run(["depmod", "-b", tree, version])
    base = os.path.join(workdir, "dracut")
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree("/usr/lib/dracut", base, symlinks=True)
    shutil.copytree(os.path.join(bi.ROOT, "tools", "linux", "dracut", "90vhdboot"),
                    os.path.join(base, "modules.d", "90vhdboot"))
    out = os.path.join(workdir, "initrd-dracut.img")
    script = ("set -e; mkdir -p /lib/modules; mount --bind '%s' /lib/modules; "
              "VHDBOOT_ATTACH='%s' dracutbasedir='%s' dracut --kver '%s' --kmoddir '%s' --no-hostonly "
              "--no-hostonly-cmdline --no-early-microcode --modules 'base rootfs-block kernel-modules udev-rules vhdboot' "
              "--add-drivers '%s' --force '%s'"
              % (mods, ATTACH, base, version, os.path.join(mods, version), " ".join(modules), out))
    had_modules = os.path.isdir("/lib/modules")
    try:
        bi.run(["unshare", "-m", "sh", "-c", script])
    finally:
        if not had_modules:       # the mount point this created on the host: gone again (it is empty)
            try:
                os.rmdir("/lib/modules")
            except OSError:
                pass
        shutil.rmtree(base, ignore_errors=True)
    return out


# The root of the initramfs-tools and dracut runs: partition 1 of vhdboot-attach's device-mapper hybrid.
IT_ROOT = "/dev/mapper/vhdboot80p1"


def build_it_guest_raw(out, workdir, maker="initramfs-tools"):
    """The guest disk for the initramfs-tools run (maker="dracut": the dracut run): GRUB, ext2 root
    (partition 1) holding /boot (kernel, the initrd that maker made, grub.cfg with root=IT_ROOT),
    /sbin/init = rootinit.c and the mount points."""
    p1, n1 = 2048, GUEST_MIB * bi.MiB // bi.SECTOR - 2048
    bi.new_disk(out, p1 + n1)
    bi.write_at(out, 0, bytes(0x1B8) + bi.partition_table([(p1, n1, 0x83, True)]))
    root = os.path.join(workdir, "root.d")
    shutil.rmtree(root, ignore_errors=True)
    for d in ("boot/grub", "sbin", "dev", "proc", "sys", "run", "tmp"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    bi.run(["gcc", "-static", "-Os", "-s", "-Wall", "-Werror", "-o", os.path.join(root, "sbin", "init"),
            os.path.join(HERE, "rootinit.c")])
    shutil.copyfile(bi.kernel(), os.path.join(root, "boot", "vmlinuz"))
    initrd = initramfs_dracut(workdir) if maker == "dracut" else initramfs_tools(workdir)
    shutil.copyfile(initrd, os.path.join(root, "boot", "initrd.img"))
    # dracut: rd.retry bounds its wait for the root (the settled hook attaches on the first pass).
    extra = " rd.retry=20 rd.timeout=120" if maker == "dracut" else ""
    with open(os.path.join(root, "boot", "grub", "grub.cfg"), "w") as fh:
        fh.write(bi.GRUB_SERIAL + """menuentry "linux: %s, root=%s" {
	linux (hd0,msdos1)/boot/vmlinuz console=ttyS0,115200 panic=-1 no_timer_check root=%s rw rootfstype=ext2%s
	initrd (hd0,msdos1)/boot/initrd.img
}
""" % (maker, IT_ROOT, IT_ROOT, extra))
    e2 = os.path.join(workdir, "root.ext2")
    if os.path.exists(e2):
        os.unlink(e2)
    bi.run(["mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", "-L", "vhdroot", "-E", "root_owner=0:0", "-d", root,
            e2, str(n1 // 2)])
    shutil.rmtree(root, ignore_errors=True)
    bi.copy_into(out, p1, e2)
    os.unlink(e2)
    bi.grub_install(out, bi.grub_core(workdir, root_part=1), p1)
    return out


# ------------------------------------------------------------------ disks

# mode=snapshot: GRUB writes this into /boot/grub/grubenv (save_env) before Linux starts: a boot-loader-phase
# write that only vhdboot's RAM overlay holds; nbdinit prints the grubenv line it finds.
GRUBENV_TOKEN = "vhdphase=written-by-grub-4c1d"


def grubenv_block():
    """An empty GRUB environment block (1024 bytes, as grub-editenv makes it)."""
    head = b"# GRUB Environment Block\n"
    return head + b"#" * (1024 - len(head))


def build_guest_raw(out, workdir, extra_args="", bench_mib=0, grubenv=False, modules=MODULES):
    """The guest disk: GRUB in the gap, ext2 partition 1 (root and /boot) of GUEST_MIB; with bench_mib a
    raw partition 2 of bench_mib MiB (nbdinit's sequential benchmark). extra_args: more kernel arguments.
    grubenv: GRUB saves GRUBENV_TOKEN into /boot/grub/grubenv before booting Linux. modules: the initramfs's
    (without dm_mod vhdboot-attach cannot make device-mapper maps and serves through NBD alone)."""
    p1, n1 = 2048, GUEST_MIB * bi.MiB // bi.SECTOR - 2048
    parts = [(p1, n1, 0x83, True)]
    if bench_mib:
        parts.append((p1 + n1, bench_mib * bi.MiB // bi.SECTOR, 0xDA, False))
        extra_args += " vhdboot.bench=%d" % bench_mib
    bi.new_disk(out, sum(n for _, n, _, _ in parts) + p1)
    bi.write_at(out, 0, bytes(0x1B8) + bi.partition_table(parts))
    env = ""
    if grubenv:
        key, value = GRUBENV_TOKEN.split("=")
        env = "set %s=%s\nsave_env %s\n" % (key, value, key)
    cfg = bi.GRUB_SERIAL + env + """menuentry "linux: root on the VHD through vhdboot-attach" {
	linux (hd0,msdos1)/boot/vmlinuz %s
	initrd (hd0,msdos1)/boot/initrd.img
}
""" % (ARGS + extra_args)
    cfgp = os.path.join(workdir, "grub.cfg")
    with open(cfgp, "w") as fh:
        fh.write(cfg)
    files = {"boot/vmlinuz": bi.kernel(), "boot/initrd.img": initramfs(workdir, modules), "boot/grub/grub.cfg": cfgp}
    if grubenv:
        envp = os.path.join(workdir, "grubenv")
        with open(envp, "wb") as fh:
            fh.write(grubenv_block())
        files["boot/grub/grubenv"] = envp
    e2 = bi.ext2_image(os.path.join(workdir, "root.ext2"), n1, files, workdir)
    bi.copy_into(out, p1, e2)
    os.unlink(e2)
    bi.grub_install(out, bi.grub_core(workdir, root_part=1, extra_modules=("loadenv",) if grubenv else ()), p1)
    return out


class ExfatMounted:
    """An exFAT volume image mounted through a loop device and exfat-fuse (context manager; root, /dev/fuse)."""

    def __init__(self, path, mnt, ro=False):
        self.path, self.mnt, self.ro, self.loop = path, mnt, ro, None

    def __enter__(self):
        self.loop = bi.run(["losetup", "-f", "--show", self.path]).strip()
        os.makedirs(self.mnt, exist_ok=True)
        try:
            bi.run(["mount.exfat-fuse"] + (["-o", "ro"] if self.ro else []) + [self.loop, self.mnt])
        except Exception:
            bi.run(["losetup", "-d", self.loop])
            raise
        return self.mnt

    def __exit__(self, *exc):
        subprocess.run(["sync"], timeout=60)
        bi.run(["umount", self.mnt])
        bi.run(["losetup", "-d", self.loop])


HOST_FS = ("fat32", "exfat", "ntfs")      # the host partition's file system (build_host_disk)


def fsck_exfat(vol):
    """fsck.exfat -n on an exFAT volume image: (clean?, its output)."""
    p = subprocess.run(["fsck.exfat", "-n", vol], capture_output=True, text=True, timeout=120)
    return p.returncode == 0 and "clean" in p.stdout, p.stdout + p.stderr


def build_host_disk(out, vhd, workdir, parent=None, fat_mib=HOST_FAT_MIB, host_fs="fat32", name=VHD_NAME):
    """A raw disk: MBR, partition 1 at HOST_P1 holding /guest.vhd (and its parent, by its own name): FAT32
    (mkfs.fat + mtools), exFAT (mkfs.exfat, 4 KiB clusters, files copied in through exfat-fuse; fsck.exfat -n
    clean) or NTFS (mkntfs -Q, 4 KiB clusters, ntfscp)."""
    assert host_fs in HOST_FS, host_fs
    n1 = fat_mib * bi.MiB // bi.SECTOR
    bi.new_disk(out, HOST_P1 + n1)
    ptype = 0x0C if host_fs == "fat32" else 0x07
    bi.write_at(out, 0, bytes(0x1B8) + bi.partition_table([(HOST_P1, n1, ptype, True)], signature=0x48535431))
    vol = os.path.join(workdir, "host.vol")
    if os.path.exists(vol):
        os.unlink(vol)
    files = [(vhd, name)] + ([(parent, os.path.basename(parent))] if parent else [])
    if host_fs == "fat32":
        bi.run(["mkfs.fat", "-F", "32", "-n", "VHDHOST", "-h", str(HOST_P1), "-S", "512", "-C", vol, str(n1 // 2)])
        for src, name in files:
            bi.run(["mcopy", "-i", vol, src, "::/" + name], env=bi.MTOOLS_ENV)
    elif host_fs == "exfat":
        with open(vol, "wb") as fh:
            fh.truncate(n1 * bi.SECTOR)
        bi.run(["mkfs.exfat", "-L", "VHDHOST", "-c", "4K", vol])
        with ExfatMounted(vol, vol + ".mnt") as mnt:
            for src, name in files:
                shutil.copyfile(src, os.path.join(mnt, name))
        os.rmdir(vol + ".mnt")
        ok, text = fsck_exfat(vol)
        if not ok:
            raise bi.BuildError("the new exFAT host volume does not check clean: %s" % text)
    else:
        with open(vol, "wb") as fh:
            fh.truncate(n1 * bi.SECTOR)
        bi.run(["mkntfs", "-F", "-Q", "-q", "-c", "4096", "-L", "VHDHOST", "-p", str(HOST_P1), "-H", "16", "-S", "63",
                vol])
        for src, name in files:
            bi.run(["ntfscp", "-q", vol, src, "/" + name])
    bi.copy_into(out, HOST_P1, vol)
    os.unlink(vol)
    return out


def host_volume(host, out):
    """The host disk's partition 1 (HOST_P1 to the end) copied to out: the volume image."""
    with open(host, "rb") as src, open(out, "wb") as dst:
        src.seek(HOST_P1 * bi.SECTOR)
        shutil.copyfileobj(src, dst, 4 * bi.MiB)
    return out


def build(outdir, kind="dynamic", tag="", extra_args="", bench_mib=0, initramfs_tools_run=False, grubenv=False,
          host_fs="fat32", dracut_run=False, modules=MODULES):
    """Host disk (raw) with /guest.vhd of kind (fixed, dynamic, diff: a child over /guest-parent.vhd, a
    dynamic image of the same disk; vhdx-dynamic, vhdx-fixed: /guest.vhdx with 1 MiB blocks) on a host_fs
    partition (HOST_FS). Returns (host disk, guest raw, the image as copied in, parent or None)."""
    os.makedirs(outdir, exist_ok=True)
    name = "linux-nbd-%s%s" % (kind, tag)
    work = os.path.join(outdir, name + ".work")
    os.makedirs(work, exist_ok=True)
    if initramfs_tools_run or dracut_run:
        raw = build_it_guest_raw(os.path.join(outdir, name + "-guest.raw"), work,
                                 "dracut" if dracut_run else "initramfs-tools")
    else:
        raw = build_guest_raw(os.path.join(outdir, name + "-guest.raw"), work, extra_args, bench_mib, grubenv, modules)
    vhdx = kind.startswith("vhdx")
    vhd = os.path.join(outdir, name + (".vhdx" if vhdx else ".vhd"))
    parent = None
    for p in (vhd,):
        if os.path.exists(p):
            os.unlink(p)
    if kind == "diff":
        parent = os.path.join(work, PARENT_NAME)
        bi.run([bi.VHDTOOL, "convert", "-f", "raw", "-O", "dynamic", raw, parent])
        bi.run([bi.VHDTOOL, "create", "-p", parent, vhd])
    else:
        bi.run([bi.VHDTOOL, "convert", "-f", "raw", "-O", kind] + (["-b", "1M"] if vhdx else []) + [raw, vhd])
    fat_mib = HOST_FAT_MIB + 2 * GUEST_MIB + 2 * bench_mib
    host = build_host_disk(os.path.join(outdir, name + "-host.raw"), vhd, work, parent, fat_mib, host_fs,
                           VHDX_NAME if vhdx else VHD_NAME)
    if parent:
        kept = os.path.join(outdir, name + "-parent.vhd")
        os.replace(parent, kept)
        parent = kept
    shutil.rmtree(work, ignore_errors=True)
    return host, raw, vhd, parent


# ------------------------------------------------------------------ the UEFI guest (issue 17 item 5)

# The cloud kernel has no AHCI driver: under OVMF the host disk is NVMe (built in). efivarfs: vhdboot-attach
# reads vhdboot.efi's variable through it.
EFI_MODULES = ["nbd", "vfat", "nls_cp437", "nls_ascii", "nls_utf8", "efivarfs"]
EFI_ESP_MIB = 24                  # the guest's ESP (GRUB-EFI, vmlinuz, the initrd)
EFI_ROOT_START = 2048 + EFI_ESP_MIB * bi.MiB // bi.SECTOR
EFI_ARGS = bi.LINUX_ARGS + " vhdboot.token=%s vhdboot.fill=%d vhdboot.root=/dev/nbd0p2" % (TOKEN, FILL_KIB)
# The full root switch: Debian's mkinitramfs with our hook, root=/dev/nbd0p2, the root's /sbin/init = rootinit.c.
EFI_IT_ESP_MIB = 40
EFI_IT_ROOT_START = 2048 + EFI_IT_ESP_MIB * bi.MiB // bi.SECTOR
EFI_IT_ARGS = "console=ttyS0,115200 panic=-1 no_timer_check root=/dev/nbd0p2 rw rootfstype=ext2"
EFI_GRUB_CFG = r"""set pager=0
regexp --set=dev '^\(([^)]*)\)' "$cmdpath"
set root=($dev)
echo "GRUBEFI-ATTACH root=$root"
linux /vmlinuz %s
initrd /initrd.img
boot
"""


# mode=snapshot under UEFI: GRUB-EFI saves GRUBENV_TOKEN into the ext2's /boot/grub/grubenv (partition 2 of
# the disk GRUB was started from) before booting Linux.
EFI_GRUB_ENV = r"""insmod ext2
insmod loadenv
regexp --set=disk '^\(([^,]*),' "$cmdpath"
set %s=%s
save_env -f ($disk,gpt2)/boot/grub/grubenv %s
echo "GRUBEFI-SAVED-ENV ($disk,gpt2)"
"""


def build_efi_guest_raw(out, workdir, full_root=False, grubenv=False):
    """The UEFI guest disk: GPT, partition 1 an ESP (FAT16) with GRUB-EFI (standalone) as \\EFI\\BOOT\\BOOTX64.EFI,
    /vmlinuz (EFI stub) and /initrd.img; partition 2 an ext2. Initramfs-only (default): the initrd is nbdinit +
    vhdboot-attach + EFI_MODULES, the ext2 is empty and nbdinit writes into it through /dev/nbd0p2 after
    vhdboot-attach served the image from vhdboot.efi's variable. full_root: the initrd is Debian's mkinitramfs
    with tools/linux/initramfs-tools, root=/dev/nbd0p2, the ext2 holds /sbin/init = rootinit.c. grubenv
    (initramfs-only): the ext2 holds an empty /boot/grub/grubenv and GRUB-EFI saves GRUBENV_TOKEN into it."""
    sys.path.insert(0, os.path.dirname(HERE))
    import efi_harness as eh
    esp_mib, start = (EFI_IT_ESP_MIB, EFI_IT_ROOT_START) if full_root else (EFI_ESP_MIB, EFI_ROOT_START)
    parts = eh.gpt(out, GUEST_MIB * bi.MiB, [(2048, esp_mib * bi.MiB // bi.SECTOR, eh.ESP_TYPE, "esp"),
                                             (start, None, eh.DATA_TYPE, "root")])
    cfg = os.path.join(workdir, "grub-attach.cfg")
    env = EFI_GRUB_ENV % (tuple(GRUBENV_TOKEN.split("=")) + (GRUBENV_TOKEN.split("=")[0],)) if grubenv else ""
    with open(cfg, "w") as fh:
        fh.write(env + EFI_GRUB_CFG % (EFI_IT_ARGS if full_root else EFI_ARGS))
    efi = os.path.join(workdir, "grubx64-attach.efi")
    eh.run(["grub-mkstandalone", "-O", "x86_64-efi", "-o", efi, "--locales=", "--fonts=", "--themes=",
            "--modules=part_gpt fat", "--install-modules=part_gpt fat regexp echo linux normal" +
            (" ext2 loadenv" if grubenv else ""), "boot/grub/grub.cfg=" + cfg])
    initrd = initramfs_tools(workdir, modules=("sd_mod",)) if full_root else initramfs(workdir, EFI_MODULES)
    eh.fat_into(out, parts[0][0], parts[0][1], 16, {"EFI/BOOT/BOOTX64.EFI": efi, "vmlinuz": bi.kernel(),
                                                  "initrd.img": initrd}, label="GUESTESP")
    e2 = os.path.join(workdir, "root.ext2")
    if os.path.exists(e2):
        os.unlink(e2)
    populate = []
    if full_root:
        root = os.path.join(workdir, "efiroot.d")
        shutil.rmtree(root, ignore_errors=True)
        for d in ("sbin", "dev", "proc", "sys", "run", "tmp"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        bi.run(["gcc", "-static", "-Os", "-s", "-Wall", "-Werror", "-o", os.path.join(root, "sbin", "init"),
                os.path.join(HERE, "rootinit.c")])
        populate = ["-E", "root_owner=0:0", "-d", root]
    if grubenv:                  # the environment block GRUB overwrites in place (save_env never allocates)
        root = os.path.join(workdir, "efienv.d")
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(os.path.join(root, "boot", "grub"))
        with open(os.path.join(root, "boot", "grub", "grubenv"), "wb") as fh:
            fh.write(grubenv_block())
        populate = ["-E", "root_owner=0:0", "-d", root]
    bi.run(["mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", "-L", "vhdroot"] + populate + [e2, str(parts[1][1] // 2)])
    bi.copy_into(out, parts[1][0], e2)
    os.unlink(e2)
    return out


# ------------------------------------------------------------------ after the boot

def extract_vhd(host, out, name=VHD_NAME, host_fs="fat32"):
    """Copy /name (default /guest.vhd) out of the host disk's partition at HOST_P1: FAT (mtools), exFAT
    (exfat-fuse, read-only, over a copy of the volume) or NTFS (ntfscat over a copy)."""
    if os.path.exists(out):
        os.unlink(out)
    if host_fs == "fat32":
        bi.run(["mcopy", "-i", "%s@@%d" % (host, HOST_P1 * bi.SECTOR), "::/" + name, out], env=bi.MTOOLS_ENV)
        return out
    vol = host_volume(host, out + ".vol")
    try:
        if host_fs == "exfat":
            with ExfatMounted(vol, vol + ".mnt", ro=True) as mnt:
                shutil.copyfile(os.path.join(mnt, name), out)
            os.rmdir(vol + ".mnt")
        else:
            with open(out, "wb") as fh:
                subprocess.run(["ntfscat", vol, "/" + name], stdout=fh, check=True, timeout=300)
    finally:
        os.unlink(vol)
    return out


def read_guest_file(vhd, name, workdir, start=2048):
    """The bytes of /name in the VHD's ext2 root (vhdtool convert to raw, the partition at sector start, debugfs dump)."""
    raw = os.path.join(workdir, "after.raw")
    bi.run([bi.VHDTOOL, "convert", "-O", "raw", vhd, raw])
    part = os.path.join(workdir, "after.p1")
    with open(raw, "rb") as src, open(part, "wb") as dst:
        src.seek(start * bi.SECTOR)
        shutil.copyfileobj(src, dst, 4 * bi.MiB)
    os.unlink(raw)
    dump = os.path.join(workdir, "dump.bin")
    if os.path.exists(dump):
        os.unlink(dump)
    p = subprocess.run(["debugfs", "-R", "dump /%s %s" % (name, dump), part], capture_output=True, timeout=120)
    os.unlink(part)
    if not os.path.exists(dump):
        return None
    with open(dump, "rb") as fh:
        data = fh.read()
    os.unlink(dump)
    del p
    return data


def sha(data):
    return hashlib.sha256(data).hexdigest()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    print(build(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "dynamic")[0])
