"""test_attach.py: vhdboot-attach on the host, against hand-over tables written here by an independent Python
encoder of docs/handover.md's layout (so the C structs and the document are checked against each other).

`--table FILE` reads a dump of physical 80000h-9FFFFh instead of /dev/mem. Checked: a valid table is found
at its place and printed (--info); no table: exit 2 with the "not booted by vhdboot" message (what an init
hook relies on to do nothing); a damaged table (one flipped byte, an unknown major version, a copy away
from its self_phys): exit 3 with the reason, nothing attached.
"""
import os
import struct
import subprocess
import zlib

import pytest

from conftest import BUILD, run

ATTACH = os.path.join(BUILD, "linux", "vhdboot-attach")
SCAN_LO, SCAN_HI = 0x80000, 0xA0000


def encode_table(phys, major=1, minor=0, flags=0, iface=1, fs=3, cluster=512):
    """A one-drive table (a dynamic VHD file /images/x.vhd on FAT32, partition 1 of an ATA disk) at phys;
    flags = the header's (1: built by vhdboot.efi for its EFI variable), iface = the drive's (4: EFI Block I/O),
    fs = the host file system (1.2: 4 exFAT, 5 NTFS), cluster = its cluster size."""
    data = bytearray()
    base = 64 + 160

    def put(b, align=1):
        while (base + len(data)) % align:
            data.append(0)
        off = base + len(data)
        data.extend(b)
        return off

    fw = put(b"vhdboot (python encoder)\0")
    model = put(b"QEMU HARDDISK\0")
    serial = put(b"QM00001\0")
    where = put(b"hd0,1:/images/x.vhd\0")
    path = put(b"/images/x.vhd\0")
    chain = put(struct.pack("<H", path), 2)
    ext = put(struct.pack("<IIQ", 0, 4096, 777), 8)
    drive = struct.pack("<BBBBBBBBBBBBHH", 0x80, 1, 1, 3, 3, fs, 1, 1, 0, iface, 0, 0, 0x1F0, 0)
    drive += struct.pack("<QQII16s", 8192, 1000000, 0x48535431, 0xDEADBEEF, bytes(16))
    drive += struct.pack("<IBB2x", 1, 0x0C, 1)
    drive += struct.pack("<QQ16s", 2048, 900000, bytes(16))
    drive += struct.pack("<QQQQ", 4096 * 512, 0, 0, 0)
    drive += struct.pack("<HHHHHHII12x", model, serial, where, chain, ext, 1, 1, cluster)
    assert len(drive) == 160
    total = base + len(data)
    hdr = struct.pack("<8sHHII HHB3xIIIIIHHI8x".replace(" ", ""), b"$VHDBOOT", major, minor, total, 0, 64, 160, 1,
                      phys, 0x1FF00000, 0x30000, phys, 0x1000, fw, 0, flags)
    assert len(hdr) == 64
    t = bytearray(hdr + drive + data)
    struct.pack_into("<I", t, 16, zlib.crc32(bytes(t)) & 0xFFFFFFFF)
    return bytes(t)


def dump(tmp_path, table=None, at=0x1F000, name="low.bin"):
    mem = bytearray(SCAN_HI - SCAN_LO)
    if table:
        mem[at:at + len(table)] = table
    p = tmp_path / name
    p.write_bytes(bytes(mem))
    return str(p)


@pytest.fixture(scope="module")
def attach():
    assert os.access(ATTACH, os.X_OK), "%s is missing: run `make linux`" % ATTACH
    return ATTACH


def test_info_prints_the_table(attach, tmp_path):
    out = run([attach, "--table", dump(tmp_path, encode_table(0x9F000)), "--info"], text=True).stdout
    assert 'table: version 1.0, ' in out and 'at 9f000, 1 drive(s), by "vhdboot (python encoder)"' in out, out
    assert 'drive 80h: VHD, mode=rw, type 3, 8192 sectors, place file "hd0,1:/images/x.vhd"' in out, out
    assert 'disk: "QEMU HARDDISK" serial "QM00001", 1000000 sectors, lba0 crc deadbeef, mbr id 48535431' in out, out
    assert "partition 1: start 2048, 900000 sectors, type 0c" in out, out
    assert "chain[0]: /images/x.vhd" in out, out
    assert "file: 2097152 bytes, FAT32, cluster 512, 1 extent(s) (1 in the table)" in out, out


@pytest.mark.parametrize("fs,name,ok", [(4, "exFAT", True), (5, "NTFS", True), (6, None, False)])
def test_host_fs_codes(attach, tmp_path, fs, name, ok):
    """1.2's host file systems are printed by name; a code past NTFS is a damaged table (field), exit 3."""
    t = encode_table(0x9F000, minor=2, fs=fs, cluster=4096)
    if ok:
        out = run([attach, "--table", dump(tmp_path, t), "--info"], text=True).stdout
        assert "table: version 1.2, " in out, out
        assert "file: 2097152 bytes, %s, cluster 4096, 1 extent(s) (1 in the table)" % name in out, out
    else:
        r = run([attach, "--table", dump(tmp_path, t), "--info"], rc=3, text=True)
        assert "(field)" in r.stderr, r.stderr


def test_no_table_exits_2(attach, tmp_path):
    r = run([attach, "--table", dump(tmp_path), "--info"], rc=2, text=True)
    assert "not booted by vhdboot" in r.stderr, r.stderr


@pytest.mark.parametrize("damage", ["crc", "major", "moved"])
def test_damaged_table_refused(attach, tmp_path, damage):
    t = bytearray(encode_table(0x9F000 if damage != "moved" else 0x9E000, major=2 if damage == "major" else 1))
    if damage == "crc":
        t[100] ^= 0x20
    r = run([attach, "--table", dump(tmp_path, bytes(t)), "--info"], rc=3, text=True)
    want = {"crc": "(crc)", "major": "(version)", "moved": "(moved)"}[damage]
    assert "hand-over table was found but is refused" in r.stderr and want in r.stderr, r.stderr
    assert "nothing attached" in r.stderr


def test_install_staging(attach, tmp_path):
    """tools/linux/install.sh into a DESTDIR: the program, the initramfs-tools hook and local-top script, the
    dracut module and its config, all in place and executable; the scripts parse (sh -n / bash -n)."""
    here = os.path.join(os.path.dirname(BUILD), "tools", "linux")
    env = dict(os.environ, DESTDIR=str(tmp_path))
    p = subprocess.run(["sh", os.path.join(here, "install.sh"), "--no-update"], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    for rel in ("usr/local/sbin/vhdboot-attach", "etc/initramfs-tools/hooks/vhdboot",
                "etc/initramfs-tools/scripts/local-top/vhdboot", "usr/lib/dracut/modules.d/90vhdboot/module-setup.sh",
                "usr/lib/dracut/modules.d/90vhdboot/vhdboot-attach.sh"):
        f = tmp_path / rel
        assert f.exists() and os.access(str(f), os.X_OK), rel
        shell = "bash" if rel.endswith("module-setup.sh") else "sh"
        if not rel.endswith("vhdboot-attach"):
            run([shell, "-n", str(f)])
    assert 'add_dracutmodules+=" vhdboot "' in (tmp_path / "etc/dracut.conf.d/vhdboot.conf").read_text()


# ---------------------------------------------------------------- under UEFI: vhdboot.efi's variable (efivarfs)

def efivar(tmp_path, table, attrs=6, name="VhdbootHandover-var"):
    """The variable as efivarfs shows it: 4 bytes of attributes (6: boot-service + runtime access, volatile), the table."""
    p = tmp_path / name
    p.write_bytes(struct.pack("<I", attrs) + table)
    return str(p)


def test_efivar_table_read(attach, tmp_path):
    """--efivar (default /sys/firmware/efi/efivars/VhdbootHandover-<guid>) is read before /dev/mem."""
    t = encode_table(0, minor=1, flags=1, iface=4)
    var = efivar(tmp_path, t)
    out = run([attach, "--efivar", var, "--mem", "/nonexistent", "--info"], text=True).stdout
    assert ("table: version 1.1, %d bytes in the EFI variable VhdbootHandover-bb45c8af-ef6d-4f0e-843d-8e342883d875, "
            "1 drive(s)" % len(t)) in out, out
    assert "vhdboot memory" not in out and "iface 4 " in out, out


@pytest.mark.parametrize("damage", ["non-volatile", "crc", "low-memory-copy", "short"])
def test_efivar_refused(attach, tmp_path, damage):
    """A variable that is not what vhdboot.efi publishes: exit 3 with the reason, /dev/mem not tried."""
    t = bytearray(encode_table(0x9F000 if damage == "low-memory-copy" else 0, minor=1,
                               flags=0 if damage == "low-memory-copy" else 1, iface=4))
    if damage == "crc":
        t[100] ^= 0x20
    if damage == "short":
        t = t[:40]
    var = efivar(tmp_path, bytes(t), attrs=7 if damage == "non-volatile" else 6)
    r = run([attach, "--efivar", var, "--mem", "/nonexistent", "--info"], rc=3, text=True)
    want = {"non-volatile": "is non-volatile (attributes 7)", "crc": "(crc); nothing attached",
            "low-memory-copy": "(moved); nothing attached", "short": "44 bytes, not attributes + a hand-over table"}
    assert want[damage] in r.stderr, r.stderr


def test_efivar_absent_falls_back_to_low_memory(attach, tmp_path):
    """No variable (a BIOS boot): the table is looked for in 80000h-9FFFFh of --mem, as before."""
    mem = bytearray(SCAN_HI)
    t = encode_table(0x9F000)
    mem[0x9F000:0x9F000 + len(t)] = t
    m = tmp_path / "mem.bin"
    m.write_bytes(bytes(mem))
    out = run([attach, "--efivar", str(tmp_path / "absent"), "--mem", str(m), "--info"], text=True).stdout
    assert "table: version 1.0, " in out and "at 9f000, 1 drive(s)" in out, out
