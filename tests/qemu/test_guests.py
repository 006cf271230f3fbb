"""test_guests.py: real boot loaders and operating systems boot from inside a VHD (issue 4).

Guests (tests/qemu/thirdparty/build_images.py, built at test time from Debian's packages):
GRUB 2 + Linux (kernel from FAT, initramfs from ext2; grub-ext2: both from ext2), SYSLINUX + Linux, GRUB 2 + memtest86+, a DOS-style CHS chain (ours).
Each boots
  - from its raw image under SeaBIOS alone (baseline: the guest and the image are right), and
  - through build/vhdboot.iso from a fixed, a dynamic and a differencing VHD (the child and its
    parent as files on a FAT32 disk, opened with vhd=/vhd/<child>; plus the chain merged by
    `vhdtool convert`; and a dynamic VHDX made by qemu-img), reaching its marker; GRUB+Linux also from the dynamic VHD on a USB stick
    (xHCI), a disk vhdboot reads through the BIOS (drivers/biosdisk.c).
The Linux and DOS runs are also repeated with vhdboot's `trace` option, and the
logged INT 13h calls are checked.

QEMU runs 2 at a time (GUEST_JOBS): every run this session selected is started at the first
test's request and each test waits for its own. A missing ISO fails the vhdboot tests.
"""
import concurrent.futures
import os
import re
import shutil
import subprocess
import threading

import pytest

import firmware_harness as fh
from thirdparty import guestboot as gb

bi = gb.bi

GUESTS = list(bi.GUESTS)
VHD_KINDS = ["fixed", "dynamic", "diff", "diff-merged", "vhdx"]
TRACE_GUESTS = ["grub", "syslinux", "doschain"]
# VHDX made by vhdtool: fixed (whole disk) and differencing (child + parent as files on FAT32). make test boots two
# of these (VHDX_DEFAULT); GUEST_VHDX_ALL=1 boots every guest from both kinds and every trace guest from a VHDX.
VHDX_KINDS = ["vhdx-fixed", "vhdx-diff"]
VHDX_DEFAULT = [("vhdboot", "grub", "vhdx-diff"), ("trace", "doschain", "vhdx-fixed")]
VHDX_ALL = os.environ.get("GUEST_VHDX_ALL") == "1"
JOBS = int(os.environ.get("GUEST_JOBS", "2"))
# kind suffix -> QEMU arguments carrying the image (drive id "img") on a controller vhdboot reaches through the BIOS
BIOS_DEVICES = {
    "usb": ["-device", "qemu-xhci", "-device", "usb-storage,drive=img"],
}

# Cases: (mode, guest, kind); mode seabios (raw image), vhdboot, trace (vhdboot with `trace`).
# grub-ext2 (GRUB's second entry: kernel and initramfs from ext2) only raw and dynamic: the other
# kinds add nothing over grub's.
CASES = ([("seabios", g, "raw") for g in GUESTS]
         + [("vhdboot", g, k) for g in GUESTS for k in VHD_KINDS if g != "grub-ext2" or k == "dynamic"]
         + [("trace", g, "dynamic") for g in TRACE_GUESTS]
         # the dynamic VHD on disks only the BIOS reads (drivers/biosdisk.c serves them)
         + [("vhdboot", "grub", "dynamic-" + dev) for dev in BIOS_DEVICES]
         + ([("vhdboot", g, k) for g in GUESTS for k in VHDX_KINDS if g not in ("grub-ext2", "memtest")]
            + [("trace", g, "vhdx-fixed") for g in TRACE_GUESTS] if VHDX_ALL else VHDX_DEFAULT))


def case_id(case):
    return "-".join(case)


# ------------------------------------------------------------------ images (built once per session)

class Images:
    """Raw images and VHDs, built on first use (thread-safe: boots run in worker threads)."""

    def __init__(self, outdir):
        self.outdir = outdir
        self.lock = threading.Lock()
        self.guest_locks = {g: threading.Lock() for g in GUESTS}
        self.raws, self.vhds, self.isos = {}, {}, {}

    def raw(self, guest):
        with self.guest_locks[guest]:
            if guest not in self.raws:
                self.raws[guest] = bi.build(guest, self.outdir)
            return self.raws[guest]

    def vhd(self, guest):
        """{fixed, dynamic, diff, parent, diff_runs, diff-merged: path}"""
        raw = self.raw(guest)
        with self.guest_locks[guest]:
            if guest not in self.vhds:
                assert os.access(bi.VHDTOOL, os.X_OK), "%s is missing: run `make tool` first" % bi.VHDTOOL
                v = bi.make_vhds(raw, bi.GUESTS[guest][2], self.outdir)
                merged = os.path.join(self.outdir, "%s-diff-merged.vhd" % guest)
                bi.run([bi.VHDTOOL, "convert", "-O", "dynamic", v["diff"], merged])
                v["diff-merged"] = merged
                vx = os.path.join(self.outdir, "%s.vhdx" % guest)     # qemu-img's dynamic VHDX, 1 MiB blocks
                bi.run([fh.QEMU_IMG, "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic,block_size=1M",
                        raw, vx])
                v["vhdx"] = vx
                v.update(bi.make_vhdxs(raw, bi.GUESTS[guest][2], self.outdir))
                self.vhds[guest] = v
            return self.vhds[guest]

    def fat_disk(self, guest, kind="diff"):
        """A FAT32 disk (no partition table) holding /vhd/<guest>-diff.vhd and its parent
        /vhd/<guest>-parent.vhd: the child's W2ru locator ("./<guest>-parent.vhd") leads the
        firmware to the parent in the same folder (kind vhdx-diff: the VHDX child and parent, found
        through its relative_path)."""
        v = self.vhd(guest)
        parent = "parent" if kind == "diff" else "vhdx-parent"
        with self.guest_locks[guest]:
            key = guest + "-fat-" + kind
            if key not in self.vhds:
                path = os.path.join(self.outdir, "%s-%s-fat.img" % (guest, kind))
                size = os.path.getsize(v[kind]) + os.path.getsize(v[parent]) + (64 << 20)
                with open(path, "wb") as fh_:
                    fh_.truncate(size)
                env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
                for cmd in (["mkfs.fat", "-F", "32", "-n", "VHDS", path],
                            ["mmd", "-i", path, "::/vhd"],
                            ["mcopy", "-i", path, v[parent], v[kind], "::/vhd/"]):
                    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
                    assert p.returncode == 0, "$ %s\n%s%s" % (" ".join(cmd), p.stdout, p.stderr)
                self.vhds[key] = path
            return self.vhds[key]

    def copy(self, path, name):
        """A copy of path named name in the output folder (made once)."""
        out = os.path.join(self.outdir, name)
        with self.lock:
            if not os.path.exists(out):
                shutil.copyfile(path, out)
        return out

    def iso(self, options=""):
        """build/vhdboot.iso, or (options) an ISO made with tools/mkiso.sh for that command line."""
        assert os.path.exists(fh.ISO), "%s is missing: build the firmware first (make kernel)" % fh.ISO
        if not options:
            return fh.ISO
        with self.lock:
            if options not in self.isos:
                out = os.path.join(self.outdir, "vhdboot-%s.iso" % re.sub(r"\W+", "_", options))
                p = subprocess.run(["sh", os.path.join(fh.ROOT, "tools", "mkiso.sh"), options, out],
                                   capture_output=True, text=True, timeout=300)
                assert p.returncode == 0, "tools/mkiso.sh %r failed:\n%s%s" % (options, p.stdout, p.stderr)
                self.isos[options] = out
            return self.isos[options]


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """The session's images; the disk images (about 1 GB in all) are deleted at the end unless
    GUEST_KEEP=1 (pytest keeps its last temporary directories)."""
    imgs = Images(str(tmp_path_factory.mktemp("guests")))
    yield imgs
    if os.environ.get("GUEST_KEEP") != "1":
        for name in os.listdir(imgs.outdir):
            if name.endswith((".raw", ".vhd", ".vhdx", ".img", ".iso")):
                os.unlink(os.path.join(imgs.outdir, name))


# ------------------------------------------------------------------ boots (2 QEMUs at a time)

def do_boot(images, case, workdir):
    mode, guest, kind = case
    if mode == "seabios":
        # the image conversions of this guest first: a QEMU booting the raw image holds its write lock,
        # and qemu-img convert (the VHDX) run by another boot's thread then fails to open it
        images.vhd(guest)
        return gb.boot(guest, images.raw(guest), workdir=workdir)
    v = images.vhd(guest)
    iso = images.iso("trace" if mode == "trace" else "")
    base, _, dev = kind.partition("-")
    disk = v[base if dev in BIOS_DEVICES else kind]
    if kind in ("diff", "vhdx-diff"):
        # the chain as files on FAT: the firmware opens the child by path and finds its parent
        disk = images.fat_disk(guest, kind)
        iso = images.iso(("trace " if mode == "trace" else "") + "vhd=/vhd/%s" % os.path.basename(v[kind]))
    extra = []
    if dev in BIOS_DEVICES:
        # a copy of its own: QEMU locks the file, and the IDE run of the same image may run alongside
        disk = images.copy(disk, "%s-%s.vhd" % (guest, kind))
        extra = ["-drive", "file=%s,if=none,id=img,format=raw" % disk] + BIOS_DEVICES[dev]
    before = {disk: fh.sha256(disk)}
    run = gb.boot(guest, None if extra else disk, iso=iso, workdir=workdir, extra=extra,
                  timeout=gb.TIMEOUTS[guest] * (2 if mode == "trace" else 1))
    run.unchanged = all(fh.sha256(p) == h for p, h in before.items())
    return run


class Boots:
    def __init__(self, images, workdir, wanted):
        self.images, self.workdir = images, workdir
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=JOBS)
        self.futures = {}
        # memtest and Linux first: the long runs overlap the short ones
        for case in sorted(wanted, key=lambda c: (c[1] == "doschain", c[0] == "trace")):
            self.submit(case)

    def submit(self, case):
        if case not in self.futures:
            self.futures[case] = self.pool.submit(do_boot, self.images, case, self.workdir)
        return self.futures[case]

    def get(self, case):
        return self.submit(case).result()


@pytest.fixture(scope="session")
def boots(request, images, tmp_path_factory):
    wanted = [item.callspec.params["case"] for item in request.session.items
              if item.module.__name__ == __name__ and hasattr(item, "callspec") and "case" in item.callspec.params]
    b = Boots(images, str(tmp_path_factory.mktemp("guestlogs")), wanted)
    yield b
    b.pool.shutdown(wait=True, cancel_futures=True)


def _cases(mode):
    return [pytest.param(c, id=case_id(c)) for c in CASES if c[0] == mode]


# ------------------------------------------------------------------ checks

_E820 = re.compile(r"VHDBOOT-E820 (0x[0-9a-f]+) (0x[0-9a-f]+) (.+)")


def check_linux_memory(run, ctx):
    """Linux's firmware memory map (from /sys/firmware/memmap, as E820 gave it) has vhdboot's
    resident high region as non-RAM, and no System RAM overlapping it."""
    fw = fh.firmware_facts(run.serial)
    assert "high" in fw, "vhdboot's 'resident: high memory reserved' line is missing" + ctx
    lo, hi = fw["high"]["base"], fw["high"]["last"]
    e820 = [(int(a, 16), int(b, 16), t.strip()) for a, b, t in _E820.findall(run.serial)]
    assert e820, "init printed no memory map" + ctx
    for a, b, t in e820:
        if t == "System RAM":
            assert b < lo or a > hi, "Linux uses %x-%x as RAM: vhdboot's resident %x-%x is inside%s" % (a, b, lo, hi, ctx)
    assert any(t != "System RAM" and a <= lo and hi <= b for a, b, t in e820), \
        "no reserved entry covers vhdboot's resident %x-%x in Linux's map%s" % (lo, hi, ctx)


def check_vhdboot(guest, kind, run, images):
    ctx = "\n" + run.describe(8000)
    fw = fh.firmware_facts(run.serial)
    assert "error" not in fw, "vhdboot refused the %s VHD: %s%s" % (kind, fw["error"]["msg"], ctx)
    assert "jump" in fw, "vhdboot did not jump to the guest MBR%s" % ctx
    assert fw["int13"]["drive"] == 0x80, ctx
    raw_sectors = os.path.getsize(images.raw(guest)) // fh.SECTOR
    assert fw["int13"]["sectors"] == raw_sectors, "VHD serves %d sectors, the image has %d%s" % (
        fw["int13"]["sectors"], raw_sectors, ctx)
    gb.check(guest, run)
    if guest in ("grub", "grub-ext2", "syslinux"):
        check_linux_memory(run, ctx)
    assert run.unchanged, "a VHD file changed during a boot" + ctx


def check_vhdx_kind(guest, kind, run, images):
    """A vhdtool VHDX boot: the firmware served it as that VHDX kind; a differencing one found its parent."""
    if not kind.startswith("vhdx-"):
        return
    want = {"vhdx-fixed": "fixed", "vhdx-diff": "differencing"}[kind]
    assert re.search(r"^vhdx: 80h: .*: %s VHDX, " % want, run.serial, re.M), \
        "not served as a %s VHDX\n%s" % (want, run.describe(8000))
    if kind == "vhdx-diff":
        parent = os.path.basename(images.vhd(guest)["vhdx-parent"])
        assert re.search(r"vhd: 80h: parent \S*/vhd/%s \(found through its child's relative_path\)" % re.escape(parent),
                         run.serial), "the parent was not found through relative_path\n" + run.describe(8000)


# ------------------------------------------------------------------ tests

@pytest.mark.parametrize("case", _cases("seabios"))
def test_seabios_raw(case, boots):
    """Baseline: the guest boots from its raw image under SeaBIOS alone (validates the builders)."""
    gb.check(case[1], boots.get(case))


@pytest.mark.parametrize("case", _cases("vhdboot"))
def test_vhdboot(case, boots, images):
    """The guest boots from inside a VHD through vhdboot (ISO) and reaches its marker; the
    differencing case is a child and its parent as files on a FAT32 disk (vhd=/vhd/<child>)."""
    _, guest, kind = case
    run = boots.get(case)
    check_vhdboot(guest, kind, run, images)
    if kind.partition("-")[2] in BIOS_DEVICES:
        assert re.search(r"^disk: hd0 = bios 80h,", run.serial, re.M), \
            "the image's disk was not served by the BIOS backend\n" + run.describe(8000)
    if kind == "diff":
        parent = os.path.basename(images.vhd(guest)["parent"])
        assert re.search(r"vhd: 80h: parent \S*/vhd/%s \(found through its child's W2ru locator\)" % re.escape(parent),
                         run.serial), "the parent was not found through W2ru\n" + run.describe(8000)
    check_vhdx_kind(guest, kind, run, images)


@pytest.mark.parametrize("guest", GUESTS)
def test_differencing_child_holds_the_boot_data(guest, images):
    """The child of the differencing case really carries data the boot needs: the parent alone
    lacks the config / marker sectors, the chain (and the merged image) equal the raw image."""
    v = images.vhd(guest)
    raw = images.raw(guest)
    runs = v["diff_runs"]
    assert sum(n for _, n in runs) >= 1
    info = fh.vhd_info(v["diff"])
    assert info["type"] == 4 and info["allocated"] >= 1, info
    outdir = os.path.dirname(v["diff"])
    for src, name in ((v["diff"], "chain"), (v["diff-merged"], "merged"), (v["parent"], "parent")):
        out = os.path.join(outdir, "%s-%s.check.raw" % (guest, name))
        bi.run([bi.VHDTOOL, "convert", "-O", "raw", src, out])
        same = fh.sha256(out) == fh.sha256(raw)
        os.unlink(out)
        assert same == (name != "parent"), "%s of %s: equal to the raw image: %s" % (name, guest, same)


@pytest.mark.parametrize("case", _cases("trace"))
def test_vhdboot_trace(case, boots, images):
    """With `trace`, vhdboot logs one line per INT 13h call; the calls are the ones the guest needs."""
    _, guest, kind = case
    run = boots.get(case)
    check_vhdboot(guest, kind, run, images)
    if kind.partition("-")[2] in BIOS_DEVICES:
        assert re.search(r"^disk: hd0 = bios 80h,", run.serial, re.M), \
            "the image's disk was not served by the BIOS backend\n" + run.describe(8000)
    check_vhdx_kind(guest, kind, run, images)
    ctx = "\n" + run.describe(4000)
    calls = gb.trace_calls(run.serial)
    assert calls, "no 'int13 ax=...' trace lines" + ctx
    on80 = [c for c in calls if c["dx"] & 0xFF == 0x80]
    reads = [c for c in on80 if c["ax"] >> 8 in (0x02, 0x42)]
    assert reads, "no reads of drive 80h traced" + ctx
    bad = [c for c in reads if c["cf"] or c["out_ax"] >> 8]
    assert not bad, "failed reads of drive 80h: %s%s" % (bad[:5], ctx)
    if guest == "doschain":
        _, dos = gb.doschain_report(run.serial)
        traced = [(((c["cx"] & 0xC0) << 2) | (c["cx"] >> 8), c["dx"] >> 8, c["cx"] & 0x3F, c["ax"] & 0xFF)
                  for c in on80 if c["ax"] >> 8 == 0x02]
        # MBR: one read of the boot record (C0/H1/S1); then the boot record's reads, as it logged them
        assert traced[0] == (0, 1, 1, 1), "MBR read %s, want C0/H1/S1 x1%s" % (traced[0], ctx)
        assert traced[1:] == dos, "traced AH=02h calls %s, the boot record logged %s%s" % (traced[1:], dos, ctx)
        assert any(c["ax"] >> 8 == 0x08 for c in on80), "AH=08h not traced" + ctx
    else:
        assert any(c["ax"] >> 8 == 0x41 and c["bx"] == 0x55AA and not c["cf"] for c in on80), \
            "no successful AH=41h (EDD check) traced" + ctx
        assert any(c["ax"] >> 8 == 0x42 for c in reads), "no AH=42h reads traced" + ctx


@pytest.mark.parametrize("on,backend,kind", [("ahci", "ahci p0", "dynamic"), ("nvme", "bios 80h", "dynamic"),
                                             ("nvme", "bios 80h", "fixed")])
def test_vhdboot_linux_on_controller(on, backend, kind, images, tmp_path):
    """GRUB + Linux from a dynamic VHD on a SATA disk behind AHCI (native driver) and on NVMe (the BIOS
    backend), and from a fixed VHD on NVMe, whose AH=42h/43h the stub's real-mode fast path answers: the
    guest reaches its marker, with the VHD read through the named backend."""
    v = images.vhd("grub")
    before = fh.sha256(v[kind])
    run = gb.boot("grub", v[kind], iso=images.iso(""), workdir=str(tmp_path), on=on)
    run.unchanged = fh.sha256(v[kind]) == before
    assert "vhd: using %s " % backend in run.serial, run.describe(8000)
    if kind == "fixed":
        assert re.search(r"^resident: 80h: AH=42h and 43h with buffers below [0-9a-f]+ go straight to the BIOS",
                         run.serial, re.M), run.describe(8000)
        assert re.search(r"^resident: fast path: \d+ AH=42h/43h request", run.serial, re.M), run.describe(8000)
    check_vhdboot("grub", kind, run, images)

