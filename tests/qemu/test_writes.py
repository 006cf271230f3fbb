"""test_writes.py: guest writes through vhdboot's INT 13h (issue 5): fixed, dynamic (allocation, partial bitmaps), the image at the start of a bigger disk, no room, mode=ro/snapshot, a damaged end footer, power cuts."""
import os
import re
import subprocess

import pytest

import firmware_harness as fh
import writeguest as wg
import powercut

ELF = os.path.join(fh.BUILD, "vhdboot.elf")
S = wg.SECTOR
W, R = wg.WRITE, wg.READ


@pytest.fixture(scope="module")
def isos(tmp_path_factory):
    """ISOs with other kernel command lines: {cmdline: path} (the default one is build/vhdboot.iso)."""
    for f in (fh.ISO, ELF, wg.GUEST_BIN, fh.VHDTOOL):
        assert os.path.exists(f), "%s missing: run make" % f
    d = tmp_path_factory.mktemp("isos")
    out = {"": fh.ISO}
    for cmd in ("mode=ro", "mode=snapshot", "mode=snapshot snapshot=64K", "mode=rw trace", "disk=bios", "disk=pio", "disk=native",
                "mode=ro disk=bios", "mode=snapshot disk=bios", "disk=bios trace"):
        path = str(d / (cmd.replace(" ", "_").replace("=", "-") + ".iso"))
        subprocess.run(["sh", os.path.join(fh.ROOT, "tools", "mkiso.sh"), cmd, path], check=True,
                       env=dict(os.environ, VHDBOOT_ELF=ELF), capture_output=True, timeout=120)
        out[cmd] = path
    return out


def boot(disk, iso, work, timeout=120, on="ide"):
    """Boot disk on IDE pm (on="ide"), on an NVMe controller only the BIOS reads (on="nvme") or on
    port 0 of an AHCI controller (on="ahci")."""
    if on in ("nvme", "ahci"):
        extra = ["-drive", "file=%s,if=none,id=vhd,format=raw" % disk]
        extra += (["-device", "nvme,drive=vhd,serial=vhd0"] if on == "nvme" else
                  ["-device", "ahci,id=ahci", "-device", "ide-hd,drive=vhd,bus=ahci.0"])
        run = fh.run_qemu([], iso=iso, timeout=timeout, workdir=str(work), extra=extra)
    else:
        run = fh.run_qemu([(0, disk)], iso=iso, timeout=timeout, workdir=str(work))
    assert run.rc == fh.EXIT_DONE, run.describe()
    return run


def virtual(path, sectors):
    return bytearray(wg.vhd_read(path, 0, sectors))


def apply(model, ops, results):
    """Apply the ops whose W record says success to the model; returns the model."""
    for (kind, fn, lba, n, tag), (k, kv) in zip(ops, results):
        assert (k == "W") == (kind == W)
        if kind == W and kv["ah"] == 0:
            model[lba * S:(lba + n) * S] = wg.pattern(lba, tag, n)
    return model


def check_reads(ops, results, model, run):
    for (kind, fn, lba, n, tag), (k, kv) in zip(ops, results):
        if kind == R:
            assert kv["ah"] == 0 and kv["cf"] == 0, run.describe()
            assert kv["fnv"] == wg.fnv(bytes(model[lba * S:(lba + n) * S])), \
                "read-back of LBA %d+%d differs from the expected data\n%s" % (lba, n, run.describe())


def assert_clean(path):
    rc, out = wg.check(path)
    assert rc == 0, "vhdtool check %s -> %d\n%s" % (path, rc, out)


def qemu_img_check(path):
    """qemu-img check: the vpc driver has no check; accept exactly that answer, fail on any other error."""
    p = subprocess.run([fh.QEMU_IMG, "check", "-f", "vpc", path], capture_output=True, text=True)
    if p.returncode != 0:
        assert "does not support checks" in p.stdout + p.stderr, p.stdout + p.stderr
        return "unsupported"
    return "clean"


def assert_reads_back(path, model, work, hidden=()):
    """vhdtool and qemu-img read the expected data. hidden: sectors with a clear bitmap bit over garbage
    (vhd_hide_sectors) that no write covered: qemu's vpc driver ignores dynamic bitmaps, so skip them there."""
    sectors = len(model) // S
    assert wg.vhd_read(path, 0, sectors) == bytes(model), "vhdtool read differs from the expected data"
    q = bytearray(wg.qemu_img_read(path, 0, sectors, str(work)))
    for s in hidden:
        q[s * S:(s + 1) * S] = model[s * S:(s + 1) * S]
    assert q == model, "qemu-img convert differs from the expected data"
    qemu_img_check(path)


# ------------------------------------------------------------------ writes that succeed

# backend -> (iso command line, where the disk sits, the backend the boot log must name)
BACKENDS = {"ata": ("", "ide", "ATA pm"), "bios-nvme": ("", "nvme", "bios 80h"),
            "bios-ide": ("disk=bios", "ide", "bios 80h"), "ata-pio": ("disk=pio", "ide", "ATA pm"),
            "ahci": ("", "ahci", "ahci p0"), "bios-ahci": ("disk=bios", "ahci", "bios 80h"),
            "nvme-native": ("disk=native", "nvme", "nvme n1")}
# backend -> a boot-log line that shows how the disk was driven (DMA or not)
BACKEND_LOG = {"ata": "ata pm: QEMU HARDDISK .*, bus-master DMA$", "ata-pio": "ata pm: QEMU HARDDISK .*, PIO only \\(disk=pio\\)$",
               "ahci": "ahci p0: QEMU HARDDISK .* sectors per command$",
               "nvme-native": "nvme .*taken over from the BIOS \\(disk=native\\)",
               "bios-nvme": "nvme .*: enabled by the BIOS: left to the BIOS backend"}


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_dynamic_on_bigger_disk(tmp_path, isos, backend):
    """A dynamic VHD dd'd onto a larger disk: writes across block boundaries, into new blocks, into
    partially filled blocks (CHS 03h, 43h, 43h verify); the grown image checks clean and reads back.
    Over the native ATA driver and over the BIOS backend (an NVMe disk, and IDE with disk=bios)."""
    cmd, on, named = BACKENDS[backend]
    size, spb = 64 << 20, 1024
    ops = [(W, wg.FN_43, spb - 4, 10, 0x11),            # block 0 (allocated) into block 1 (new)
           (W, wg.FN_43V, 10 * spb + 100, 20, 0x22),    # a new block, 43h AL=2
           (W, wg.FN_03, 2 * spb + 30, 6, 0x33),        # CHS into a partially filled block
           (W, wg.FN_43, 20 * spb - 60, 127, 0x44),     # 127 sectors over two new blocks
           (W, wg.FN_43, 2 * spb + 40, 3, 0x55)]        # in place, bits already set
    ops += [(R, 0x42, lba, n, 0) for (_, _, lba, n, _) in ops] + [(R, 0x42, 2 * spb, 64, 0)]
    vhd = wg.make_vhd(str(tmp_path / "d.vhd"), "dynamic", size, wg.Params(ops=ops), block="512K")
    # block 2: data in sectors 0..63, then hide 30..35 and 40..41 (bitmap clear): a partially filled block
    wg.vhdtool("write", vhd, 2 * spb, input=wg.pattern(2 * spb, 0x99, 64))
    fh.vhd_hide_sectors(vhd, list(range(2 * spb + 30, 2 * spb + 36)) + [2 * spb + 40, 2 * spb + 41])
    model = virtual(vhd, size // S)
    before_blocks = fh.vhd_info(vhd)["allocated"]
    disk = wg.on_bigger_disk(vhd, str(tmp_path / "disk.raw"), 16 << 20)
    run = boot(disk, isos[cmd], tmp_path, on=on)
    assert "vhd: using %s " % named in run.serial, run.describe()
    if backend in BACKEND_LOG:
        assert re.search(BACKEND_LOG[backend], run.serial, re.M), run.describe()
    assert not re.search(r"DMA command failed|: port reset$|controller reset", run.serial, re.M), run.describe()
    assert "the VHD is the first %d of" % (os.path.getsize(vhd) // S) in run.serial, run.describe()
    res = wg.records(run.serial)
    assert all(kv["ah"] == 0 and kv["cf"] == 0 for k, kv in res if k == "W"), run.describe()
    apply(model, ops, res)
    check_reads(ops, res, model, run)
    img = wg.extract_prefix(disk, str(tmp_path / "grown.vhd"))
    assert fh.vhd_info(img)["allocated"] == before_blocks + 4
    assert_clean(img)
    assert_reads_back(img, model, tmp_path)


# fixed-VHD backends: (ISO command line, where the disk sits, what the stub's AH=42h/43h fast path must say)
FIXED_BACKENDS = {"ata": ("", "ide", None), "bios-nvme": ("", "nvme", "42h and 43h"),
                  "bios-ide": ("disk=bios", "ide", "42h and 43h"), "bios-ide-trace": ("disk=bios trace", "ide", "off"),
                  "bios-ide-ro": ("mode=ro disk=bios", "ide", "42h"), "bios-ide-snapshot": ("mode=snapshot disk=bios", "ide", None)}


@pytest.mark.parametrize("backend", list(FIXED_BACKENDS))
def test_fixed_whole_disk(tmp_path, isos, backend):
    """Fixed VHD: writes in place with 43h, 43h verify and 03h; checks clean, reads back. On a BIOS disk the
    stub's real-mode fast path (rm_fast13) serves the 42h reads and the 43h writes without verify (never with
    trace, whose lines need every call in C); mode=ro: every write answers 03h, the image unchanged;
    mode=snapshot: the guest reads its writes back from RAM, the image unchanged, no fast path (not a plain copy)."""
    cmdline, on, fast = FIXED_BACKENDS[backend]
    size = 16 << 20
    ops = [(W, wg.FN_43, 100, 127, 0x1), (W, wg.FN_43V, 5000, 64, 0x2), (W, wg.FN_03, 20000, 33, 0x3),
           (W, wg.FN_43, 32768 - 5, 5, 0x4)]
    ops += [(R, 0x42, lba, n, 0) for (_, _, lba, n, _) in ops]
    vhd = wg.make_vhd(str(tmp_path / "f.vhd"), "fixed", size, wg.Params(ops=ops))
    model, before = virtual(vhd, size // S), fh.sha256(vhd)
    run = boot(vhd, isos[cmdline], tmp_path, on=on)
    res = wg.records(run.serial)
    served = [int(n) for n in re.findall(r"^resident: fast path: (\d+) AH=42h/43h request", run.serial, re.M)]
    if fast in (None, "off"):
        assert "go straight to the BIOS" not in run.serial and not served, run.describe()
        if fast == "off":
            assert "resident: 80h: AH=42h/43h through the handler (trace logs every call)" in run.serial, run.describe()
    else:
        assert re.search(r"^resident: 80h: AH=%s with buffers below [0-9a-f]+ go straight to the BIOS" % fast,
                         run.serial, re.M), run.describe()
        assert served, run.describe()
    if "mode=ro" in cmdline:
        assert all(kv["ah"] == 3 for k, kv in res if k == "W") and len([k for k, _ in res if k == "W"]) == 4, \
            run.describe()
        check_reads(ops, res, virtual(vhd, size // S), run)
        assert fh.sha256(vhd) == before, "mode=ro changed the image"
        return
    assert all(kv["ah"] == 0 for k, kv in res if k == "W"), run.describe()
    apply(model, ops, res)
    check_reads(ops, res, model, run)
    if "mode=snapshot" in cmdline:
        assert fh.sha256(vhd) == before, "mode=snapshot changed the image"
        return
    assert_clean(vhd)
    assert_reads_back(vhd, model, tmp_path)


def test_dynamic_allocated_in_place(tmp_path, isos):
    """A dynamic image whose blocks are all allocated (converted from data), some sectors hidden by
    clear bitmap bits: writes in place set them; whole disk, no growth needed."""
    raw = str(tmp_path / "src.raw")
    fh.build_raw(raw, 8 << 20, [(wg.GUEST_SECTORS, (8 << 20) // S - wg.GUEST_SECTORS)], fh.Params(flags=0), seed=5,
                 guest_bin=fh.GUEST_BIN)
    ops = [(W, wg.FN_43, 1500, 40, 0x7), (W, wg.FN_03, 3000, 8, 0x8), (W, wg.FN_43V, 4090, 12, 0x9)]
    ops += [(R, 0x42, lba, n, 0) for (_, _, lba, n, _) in ops] + [(R, 0x42, 1480, 100, 0)]
    with open(raw, "r+b") as f:
        f.write(wg.guest_image(wg.Params(ops=ops)))
    vhd = fh.vhdtool_vhd(raw, str(tmp_path / "a.vhd"), "dynamic", "512K")
    fh.vhd_hide_sectors(vhd, [1490, 1500, 1501, 3003, 4095])
    model = virtual(vhd, (8 << 20) // S)
    run = boot(vhd, isos[""], tmp_path)
    res = wg.records(run.serial)
    assert all(kv["ah"] == 0 for k, kv in res if k == "W"), run.describe()
    apply(model, ops, res)
    check_reads(ops, res, model, run)
    assert_clean(vhd)
    assert_reads_back(vhd, model, tmp_path, hidden=[1490])


# backend -> (iso command line, where the disk sits): a dynamic VHD the stub's window table serves
WINDOW_BACKENDS = {"bios-nvme": ("", "nvme"), "bios-ide": ("disk=bios", "ide")}


@pytest.mark.parametrize("backend", list(WINDOW_BACKENDS))
def test_dynamic_window_table(tmp_path, isos, backend):
    """A dynamic VHD on a BIOS disk, 8 KiB blocks (16 sectors: one read per block): a sequential read over 10
    blocks runs through the stub's window table (kernel/resident.c: a sequential C miss puts the next 8
    fully written blocks in), then writes: in place into a block in the table (the stub's AH=43h), over the
    clear bits of a partly written block (C: its bits set, so it joins the table), into an unallocated block
    (C allocates it) and across two blocks; each read back at once and the whole range again at the end:
    every read sees the writes, the grown image checks clean and reads back. (Reads are checked against the
    data after all writes: no read comes before a write to its sectors.)"""
    cmd, on = WINDOW_BACKENDS[backend]
    spb, blocks = 16, 128
    size = blocks * spb * S
    raw = str(tmp_path / "src.raw")
    # data everywhere but block 25 (left unallocated by convert)
    fh.build_raw(raw, size, [(wg.GUEST_SECTORS, 25 * spb - wg.GUEST_SECTORS), (26 * spb, (blocks - 26) * spb)],
                 fh.Params(flags=0), seed=7, guest_bin=fh.GUEST_BIN)
    # blocks 10..19: the misses at 10, 11 and 19 leave blocks 19..26 in the table (those fully written)
    ops = [(R, 0x42, lba, spb, 0) for lba in range(10 * spb, 20 * spb, spb)]
    ops += [(W, wg.FN_43, 20 * spb + 2, 10, 0x1), (R, 0x42, 20 * spb, spb, 0),      # in the table: in place
            (W, wg.FN_43, 21 * spb + 1, 12, 0x2), (R, 0x42, 21 * spb, spb, 0),      # the partly written block
            (W, wg.FN_43, 25 * spb + 3, 10, 0x3), (R, 0x42, 25 * spb, spb, 0),      # a new block
            (W, wg.FN_43, 23 * spb - 5, 10, 0x4), (R, 0x42, 23 * spb - 8, spb, 0)]  # across blocks 22 and 23
    ops += [(R, 0x42, lba, spb, 0) for lba in range(19 * spb, 29 * spb, spb)]
    with open(raw, "r+b") as f:
        f.write(wg.guest_image(wg.Params(ops=ops)))
    vhd = fh.vhdtool_vhd(raw, str(tmp_path / "w.vhd"), "dynamic", "8K")
    fh.vhd_hide_sectors(vhd, list(range(21 * spb + 4, 21 * spb + 10)))   # block 21 not fully written
    assert fh.vhd_info(vhd)["allocated"] == blocks - 1
    model = virtual(vhd, size // S)
    disk = wg.on_bigger_disk(vhd, str(tmp_path / "disk.raw"), 1 << 20)   # room after it for the new block
    run = boot(disk, isos[cmd], tmp_path, on=on)
    assert "vhd: using bios 80h " in run.serial, run.describe()
    assert re.search(r"^resident: 80h: AH=42h/43h inside a fully written block the handler served last go straight",
                     run.serial, re.M), run.describe()
    served = [int(n) for n in re.findall(r"^resident: fast path: (\d+) AH=42h/43h request", run.serial, re.M)]
    # of the 28 calls the C path sees about one in 8 blocks of the sequential ones and the four writes' misses
    # (the count is logged at C entries when it reaches 1, 2, 4, 8, 16: the last C entry comes after most)
    assert served and max(served) >= 8, (served, run.describe())
    res = wg.records(run.serial)
    assert all(kv["ah"] == 0 and kv["cf"] == 0 for k, kv in res if k == "W"), run.describe()
    apply(model, ops, res)
    check_reads(ops, res, model, run)
    img = wg.extract_prefix(disk, str(tmp_path / "grown.vhd"))
    assert fh.vhd_info(img)["allocated"] == blocks
    assert_clean(img)
    assert_reads_back(img, model, tmp_path)


# ------------------------------------------------------------------ writes that must not reach the image

def test_no_room_whole_disk(tmp_path, isos):
    """Whole-disk empty dynamic VHD: a write into an unallocated block fails with CCh and one log line; nothing changes."""
    ops = [(W, wg.FN_43, 5000, 8, 0x5), (R, 0x42, 5000, 8, 0), (W, wg.FN_43, 1020, 10, 0x6), (R, 0x42, 1016, 16, 0)]
    vhd = wg.make_vhd(str(tmp_path / "n.vhd"), "dynamic", 64 << 20, wg.Params(ops=ops), block="512K")
    model, before = virtual(vhd, 2048 * 4), fh.sha256(vhd)
    run = boot(vhd, isos[""], tmp_path)
    res = wg.records(run.serial)
    assert [kv["ah"] for k, kv in res if k == "W"] == [0xCC, 0xCC], run.describe()
    assert [kv["dapcnt"] for k, kv in res if k == "W"] == [0, 0]
    assert "vhd: no room to allocate block 4: the disk ends at the image's footer; write LBA 5000 count 8" in run.serial
    assert "vhd: no room to allocate block 1: the disk ends at the image's footer; write LBA 1020 count 10" in run.serial
    check_reads(ops, res, model, run)
    assert fh.sha256(vhd) == before
    assert_clean(vhd)


def test_mode_ro(tmp_path, isos):
    """mode=ro: writes answer 03h, the image is byte-identical afterwards."""
    ops = [(W, wg.FN_43, 100, 8, 0x1), (W, wg.FN_03, 200, 2, 0x2), (R, 0x42, 100, 8, 0)]
    vhd = wg.make_vhd(str(tmp_path / "r.vhd"), "dynamic", 16 << 20, wg.Params(ops=ops), block="512K")
    disk = wg.on_bigger_disk(vhd, str(tmp_path / "disk.raw"), 4 << 20)
    model, before = virtual(vhd, 256), fh.sha256(disk)
    run = boot(disk, isos["mode=ro"], tmp_path)
    assert "vhd: mode=ro:" in run.serial and "drive 80h = VHD, read-only" in run.serial, run.describe()
    res = wg.records(run.serial)
    assert [kv["ah"] for k, kv in res if k == "W"] == [3, 3], run.describe()
    check_reads(ops, res, model, run)
    assert fh.sha256(disk) == before


def test_mode_snapshot(tmp_path, isos):
    """mode=snapshot: the guest reads its own writes back; the disk is byte-identical afterwards."""
    ops = [(W, wg.FN_43, 1000, 100, 0x1), (W, wg.FN_43V, 1050, 10, 0x2), (W, wg.FN_03, 3000, 9, 0x3),
           (R, 0x42, 990, 127, 0), (R, 0x42, 3000, 9, 0)]
    vhd = wg.make_vhd(str(tmp_path / "s.vhd"), "dynamic", 16 << 20, wg.Params(ops=ops), block="512K")
    model, before = virtual(vhd, 8192), fh.sha256(vhd)
    run = boot(vhd, isos["mode=snapshot"], tmp_path)
    assert "vhd: mode=snapshot:" in run.serial and "writes to RAM" in run.serial, run.describe()
    res = wg.records(run.serial)
    assert all(kv["ah"] == 0 for k, kv in res if k == "W"), run.describe()
    apply(model, ops, res)
    check_reads(ops, res, model, run)
    assert fh.sha256(vhd) == before


def test_snapshot_full(tmp_path, isos):
    """snapshot=64K: once the overlay is full a write fails with CCh and a log line; earlier writes still read back."""
    ops = [(W, wg.FN_43, 1000, 100, 0x1), (W, wg.FN_43, 2000, 100, 0x2), (W, wg.FN_43, 1000, 100, 0x3),
           (R, 0x42, 1000, 100, 0), (R, 0x42, 2000, 100, 0)]
    vhd = wg.make_vhd(str(tmp_path / "sf.vhd"), "dynamic", 16 << 20, wg.Params(ops=ops), block="512K")
    model, before = virtual(vhd, 4096), fh.sha256(vhd)
    run = boot(vhd, isos["mode=snapshot snapshot=64K"], tmp_path)
    res = wg.records(run.serial)
    assert [kv["ah"] for k, kv in res if k == "W"] == [0, 0xCC, 0], run.describe()
    assert "snapshot: overlay full" in run.serial and "write LBA 2000 count 100 refused with status CCh" in run.serial
    apply(model, ops, res)
    check_reads(ops, res, model, run)
    assert fh.sha256(vhd) == before


def test_damaged_end_footer_is_read_only(tmp_path, isos):
    """End footer damaged: the library opens from the copy at 0, read-only; the log says so, writes get 03h."""
    ops = [(W, wg.FN_43, 100, 8, 0x1), (R, 0x42, 100, 8, 0)]
    vhd = wg.make_vhd(str(tmp_path / "b.vhd"), "dynamic", 16 << 20, wg.Params(ops=ops), block="512K")
    with open(vhd, "r+b") as f:
        f.seek(os.path.getsize(vhd) - S + 64)
        f.write(b"\x12\x34\x56\x78")
    model, before = virtual(vhd, 256), fh.sha256(vhd)
    run = boot(vhd, isos[""], tmp_path)
    assert "mode=rw, but the image is read-only" in run.serial and "drive 80h = VHD, read-only" in run.serial, run.describe()
    res = wg.records(run.serial)
    assert [kv["ah"] for k, kv in res if k == "W"] == [3]
    check_reads(ops, res, model, run)
    assert fh.sha256(vhd) == before


def test_differencing_writes_on_host(tmp_path):
    """Differencing images are not in the firmware yet (issue 6): the library's child-only writes, through
    vhdtool: the parent is byte-identical, the child checks clean and reads back the merged data."""
    parent = wg.make_vhd(str(tmp_path / "p.vhd"), "dynamic", 8 << 20, wg.Params(), block="512K")
    wg.vhdtool("write", parent, 3000, input=wg.pattern(3000, 7, 40))
    child = str(tmp_path / "c.vhd")
    wg.vhdtool("create", "-p", parent, child)
    before = fh.sha256(parent)
    model = virtual(parent, 16384)
    for lba, n, tag in ((3010, 5, 1), (1020, 10, 2), (9000, 1, 3)):
        wg.vhdtool("write", child, lba, input=wg.pattern(lba, tag, n))
        model[lba * S:(lba + n) * S] = wg.pattern(lba, tag, n)
    assert fh.sha256(parent) == before
    assert_clean(child)
    assert wg.vhd_read(child, 0, 16384) == bytes(model)
    # (qemu-img's vpc driver does not follow differencing parents: it reads their sectors as zeros)


# ------------------------------------------------------------------ power cut

@pytest.mark.parametrize("on", ["ide", "ahci", "nvme"])
def test_power_cut(tmp_path, on):
    """A few trials of tests/qemu/powercut.py: SIGKILL mid-write; the image checks clean and every acknowledged write is there.
    The disk on IDE (native ATA with DMA), on AHCI (native) and on NVMe (the BIOS backend)."""
    results = powercut.run_trials(4 if on == "ide" else 3, str(tmp_path), seed=1, on=on)
    bad = [r for r in results if not r.ok]
    assert not bad, "\n\n".join(r.report() for r in bad)
    assert sum(r.completed for r in results) > 0


# ------------------------------------------------------------------ VHDX

def test_power_cut_vhdx(tmp_path):
    """Power cuts while the guest writes a dynamic VHDX (new blocks through its log): every image opens (its
    log replayed), checks clean but for the pending log, and holds every acknowledged write."""
    fh.run_tool(["make", "-s", "-C", fh.ROOT, "build/vhdxprobe"])
    results = powercut.run_trials(3, str(tmp_path), seed=4, fmt="vhdx")
    bad = [r for r in results if not r.ok]
    assert not bad, "\n\n".join(r.report() for r in bad)
    assert sum(r.completed for r in results) > 0


def vhdx_raw(path, work):
    """The virtual disk of a VHDX as bytes, through qemu-img: a copy gets its log replayed first
    (`qemu-img check -r all` opens it read-write), as qemu refuses a read-only open with a pending log."""
    copy = os.path.join(str(work), "replayed.vhdx")
    out = os.path.join(str(work), "vhdx-content.raw")
    with open(path, "rb") as src, open(copy, "wb") as dst:
        dst.write(src.read())
    p = subprocess.run([fh.QEMU_IMG, "check", "-r", "all", "-f", "vhdx", copy], capture_output=True, text=True)
    assert p.returncode == 0, "qemu-img check -r all: %s%s" % (p.stdout, p.stderr)
    p = subprocess.run([fh.QEMU_IMG, "check", "-f", "vhdx", copy], capture_output=True, text=True)
    assert p.returncode == 0 and "No errors" in p.stdout, "qemu-img check: %s%s" % (p.stdout, p.stderr)
    subprocess.run([fh.QEMU_IMG, "convert", "-f", "vhdx", "-O", "raw", copy, out], check=True, capture_output=True)
    with open(out, "rb") as f:
        return bytearray(f.read())


def test_vhdx_dynamic_on_bigger_disk(tmp_path, isos):
    """A dynamic VHDX (qemu-img, 1 MiB blocks) dd'd onto a larger disk: writes in place, across block
    boundaries and into new blocks (allocated through the VHDX log, flushed before the answer); qemu-img
    replays the log, checks the image clean and reads exactly what the guest wrote."""
    size, spb = 64 << 20, 2048
    ops = [(W, wg.FN_43, spb - 4, 10, 0x11),            # block 0 (allocated) into block 1 (new)
           (W, wg.FN_43V, 10 * spb + 100, 20, 0x22),    # a new block, 43h AL=2
           (W, wg.FN_03, 3 * spb + 30, 6, 0x33),        # CHS, in place in an allocated block
           (W, wg.FN_43, 20 * spb - 60, 127, 0x44)]     # 127 sectors over two new blocks
    ops += [(R, 0x42, lba, n, 0) for (_, _, lba, n, _) in ops]
    raw = str(tmp_path / "src.raw")
    with open(raw, "wb") as f:
        f.truncate(size)
        f.write(wg.guest_image(wg.Params(ops=ops)))
        f.seek(3 * spb * S)
        f.write(wg.pattern(3 * spb, 0x99, 64))
    vhdx = str(tmp_path / "d.vhdx")
    fh.run_tool([fh.QEMU_IMG, "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic,block_size=1M", raw, vhdx])
    with open(raw, "rb") as f:
        model = bytearray(f.read())
    disk = wg.on_bigger_disk(vhdx, str(tmp_path / "disk.raw"), 16 << 20)
    run = boot(disk, isos[""], tmp_path)
    assert re.search(r"^vhdx: 80h: .*: dynamic VHDX, 64 MiB", run.serial, re.M), run.describe()
    assert "new blocks go into the space after them" in run.serial, run.describe()
    res = wg.records(run.serial)
    assert all(kv["ah"] == 0 and kv["cf"] == 0 for k, kv in res if k == "W"), run.describe()
    apply(model, ops, res)
    check_reads(ops, res, model, run)
    assert vhdx_raw(disk, tmp_path) == model, "qemu-img reads other data than the guest wrote"


def test_vhdx_fixed_and_ro(tmp_path, isos):
    """A fixed VHDX (qemu-img, every block present: block_state_zero=off) as the whole disk: writes in place
    persist (qemu-img reads them); with mode=ro the same writes answer 03h and the image is byte-identical."""
    size = 16 << 20
    ops = [(W, wg.FN_43, 100, 127, 0x1), (W, wg.FN_03, 20000, 33, 0x3), (W, wg.FN_43V, 32768 - 5, 5, 0x4)]
    ops += [(R, 0x42, lba, n, 0) for (_, _, lba, n, _) in ops]
    raw = str(tmp_path / "f.raw")
    with open(raw, "wb") as f:
        f.truncate(size)
        f.write(wg.guest_image(wg.Params(ops=ops)))
    with open(raw, "rb") as f:
        model = bytearray(f.read())
    vhdx = str(tmp_path / "f.vhdx")
    fh.run_tool([fh.QEMU_IMG, "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=fixed,block_state_zero=off", raw, vhdx])
    before = fh.sha256(vhdx)
    run = boot(vhdx, isos["mode=ro"], tmp_path)
    res = wg.records(run.serial)
    assert [kv["ah"] for k, kv in res if k == "W"] == [3, 3, 3], run.describe()
    check_reads(ops, res, model, run)
    assert fh.sha256(vhdx) == before, "mode=ro changed the VHDX"
    run = boot(vhdx, isos[""], tmp_path)
    res = wg.records(run.serial)
    assert all(kv["ah"] == 0 for k, kv in res if k == "W"), run.describe()
    apply(model, ops, res)
    check_reads(ops, res, model, run)
    assert vhdx_raw(vhdx, tmp_path) == model


def test_vhdx_pending_log_ro_and_snapshot(tmp_path, isos):
    """A dynamic VHDX the firmware wrote new blocks into is left with a pending log (the session is never
    closed: the guest just stops). Booted again with mode=snapshot and mode=ro, that log is replayed into
    memory only (logged), the guest reads what the first boot wrote (snapshot: its own RAM writes on top),
    and the file stays byte-identical; qemu-img replays the same log and reads the first boot's data."""
    size, spb = 32 << 20, 2048
    ops = [(W, wg.FN_43, 5 * spb + 10, 40, 0x21), (W, wg.FN_43, 9 * spb - 8, 16, 0x22),
           (R, 0x42, 5 * spb, 64, 0), (R, 0x42, 9 * spb - 16, 32, 0)]
    raw = str(tmp_path / "src.raw")
    with open(raw, "wb") as f:
        f.truncate(size)
        f.write(wg.guest_image(wg.Params(ops=ops)))
    with open(raw, "rb") as f:
        model = bytearray(f.read())
    vhdx = str(tmp_path / "p.vhdx")
    fh.run_tool([fh.QEMU_IMG, "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic,block_size=1M", raw, vhdx])
    disk = wg.on_bigger_disk(vhdx, str(tmp_path / "disk.raw"), 16 << 20)
    run = boot(disk, isos[""], tmp_path)
    res = wg.records(run.serial)
    assert all(kv["ah"] == 0 for k, kv in res if k == "W"), run.describe()
    apply(model, ops, res)
    check_reads(ops, res, model, run)
    fh.run_tool(["make", "-s", "-C", fh.ROOT, "build/vhdxprobe"])
    rc, out, names = powercut.vhdx_check(disk)
    assert "log-pending" in names, "the first boot left no pending log: %s" % out
    before = fh.sha256(disk)
    for mode in ("mode=snapshot", "mode=ro"):
        run = boot(disk, isos[mode], tmp_path)
        assert "replayed into memory only" in run.serial, run.describe()
        res = wg.records(run.serial)
        want = [0, 0] if mode == "mode=snapshot" else [3, 3]
        assert [kv["ah"] for k, kv in res if k == "W"] == want, run.describe()
        check_reads(ops, res, model, run)
        assert fh.sha256(disk) == before, "%s changed a VHDX with a pending log" % mode
    assert vhdx_raw(disk, tmp_path) == model
