#!/usr/bin/python3
"""make_corrupt.py: writes VHD images byte by byte (struct, own checksums) and a corpus of malformed ones.

Independent of vhd/ and vhdtool on purpose: every structure is packed here from
the field layout in shared/spec/002 (see spec/README.md for the true order).

    make_corrupt.py OUTDIR     write every case into OUTDIR/<case>/ and print a manifest (JSON)

The tests import CASES and build(); tests/fuzz/make_seeds.py reuses the corpus as seeds.
"""
import json
import os
import random
import struct
import sys

SECTOR = 512
NO_OFFSET = 0xFFFFFFFFFFFFFFFF
BAT_FREE = 0xFFFFFFFF
MIB = 1 << 20
TS = 0x2A000000  # a fixed time stamp in 2022 (VHD seconds since 2000-01-01), never "in the future"

TYPE_FIXED, TYPE_DYNAMIC, TYPE_DIFF = 2, 3, 4
PLAT_W2RU = 0x57327275
PLAT_W2KU = 0x57326B75

# ------------------------------------------------------------------ structures

FOOTER_FMT = ">8sIIQI4sI4sQQHBBII16sB427s"
HEADER_FMT = ">8sQQIIII16sII512s192s256s"
assert struct.calcsize(FOOTER_FMT) == 512
assert struct.calcsize(HEADER_FMT) == 1024
FOOTER_FIELDS = ("cookie features version data_offset timestamp creator_app creator_ver creator_os "
                 "orig_size cur_size cylinders heads spt type checksum uuid saved_state reserved").split()
HEADER_FIELDS = ("cookie data_offset table_offset version max_entries block_size checksum "
                 "parent_uuid parent_timestamp reserved1 parent_name locators reserved2").split()
FOOTER_CSUM_OFF = 64
HEADER_CSUM_OFF = 36


def checksum(buf, csum_off):
    """One's complement of the byte sum, the 4-byte checksum field counted as zero."""
    s = sum(buf) - sum(buf[csum_off:csum_off + 4])
    return (~s) & 0xFFFFFFFF


def chs(sectors):
    """CHS geometry from a size in sectors, as the spec's appendix computes it."""
    if sectors > 65535 * 16 * 255:
        sectors = 65535 * 16 * 255
    if sectors >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = sectors // spt
    else:
        spt = 17
        cth = sectors // spt
        heads = (cth + 1023) // 1024
        if heads < 4:
            heads = 4
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = sectors // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = sectors // spt
    return cth // heads, heads, spt


def pack_footer(f, fix_checksum=True):
    vals = [f[k] for k in FOOTER_FIELDS]
    buf = bytearray(struct.pack(FOOTER_FMT, *vals))
    if fix_checksum:
        struct.pack_into(">I", buf, FOOTER_CSUM_OFF, checksum(buf, FOOTER_CSUM_OFF))
    return bytes(buf)


def parse_footer(buf):
    return dict(zip(FOOTER_FIELDS, struct.unpack(FOOTER_FMT, bytes(buf[:512]))))


def pack_header(h, fix_checksum=True):
    vals = [h[k] for k in HEADER_FIELDS]
    buf = bytearray(struct.pack(HEADER_FMT, *vals))
    if fix_checksum:
        struct.pack_into(">I", buf, HEADER_CSUM_OFF, checksum(buf, HEADER_CSUM_OFF))
    return bytes(buf)


def parse_header(buf):
    return dict(zip(HEADER_FIELDS, struct.unpack(HEADER_FMT, bytes(buf[:1024]))))


def new_footer(size, dtype, data_offset, uuid, timestamp=TS, creator_app=b"vhdb"):
    c, h, s = chs(size // SECTOR)
    return dict(cookie=b"conectix", features=2, version=0x00010000, data_offset=data_offset,
                timestamp=timestamp, creator_app=creator_app, creator_ver=0x00010000,
                creator_os=b"Wi2k", orig_size=size, cur_size=size, cylinders=c, heads=h, spt=s,
                type=dtype, checksum=0, uuid=uuid, saved_state=0, reserved=bytes(427))


def pack_locators(locs):
    out = b""
    for code, space, length, off in locs:
        out += struct.pack(">IIIIQ", code, space, length, 0, off)
    return out.ljust(192, b"\0")


def new_header(table_offset, max_entries, block_size, parent_uuid=bytes(16), parent_ts=0,
               parent_name="", locators=()):
    name = parent_name.encode("utf-16-be").ljust(512, b"\0")
    return dict(cookie=b"cxsparse", data_offset=NO_OFFSET, table_offset=table_offset,
                version=0x00010000, max_entries=max_entries, block_size=block_size, checksum=0,
                parent_uuid=parent_uuid, parent_timestamp=parent_ts, reserved1=0,
                parent_name=name, locators=pack_locators(locators), reserved2=bytes(256))


def uuid_for(tag):
    """A deterministic unique id per image name (reproducible corpus)."""
    return random.Random("uuid:" + tag).randbytes(16)


# ------------------------------------------------------------------ image builders

class Image:
    """A built image: its bytes plus where its structures are, for patching."""

    def __init__(self, data, footer_pos, header_pos=None, bat_pos=None, block_pos=None, bitmap_bytes=0):
        self.data = bytearray(data)
        self.footer_pos = footer_pos
        self.header_pos = header_pos
        self.bat_pos = bat_pos
        self.block_pos = block_pos or {}
        self.bitmap_bytes = bitmap_bytes

    # footers: the end one, and the copy at 0 when the image is dynamic/differencing
    def footer(self):
        return parse_footer(self.data[self.footer_pos:self.footer_pos + 512])

    def patch_footer(self, end=True, copy=True, fix_checksum=True, **kw):
        for pos, on in ((self.footer_pos, end), (0, copy and self.header_pos is not None)):
            if not on:
                continue
            f = parse_footer(self.data[pos:pos + 512])
            f.update(kw)
            self.data[pos:pos + 512] = pack_footer(f, fix_checksum)

    def header(self):
        return parse_header(self.data[self.header_pos:self.header_pos + 1024])

    def patch_header(self, fix_checksum=True, **kw):
        h = self.header()
        h.update(kw)
        self.data[self.header_pos:self.header_pos + 1024] = pack_header(h, fix_checksum)

    def set_bat(self, idx, value):
        struct.pack_into(">I", self.data, self.bat_pos + 4 * idx, value)

    def bat(self, idx):
        return struct.unpack_from(">I", self.data, self.bat_pos + 4 * idx)[0]

    def write(self, path):
        with open(path, "wb") as fh:
            fh.write(self.data)
        return path


def fixed(raw, tag="fixed", creator_app=b"vhdb"):
    """A fixed image: raw data then the footer."""
    assert len(raw) % SECTOR == 0
    f = new_footer(len(raw), TYPE_FIXED, NO_OFFSET, uuid_for(tag), creator_app=creator_app)
    return Image(bytes(raw) + pack_footer(f), len(raw))


def dynamic(size, block_size=2 * MIB, raw=None, tag="dyn", dtype=TYPE_DYNAMIC, parent=None,
            w2ru=None, w2ku=None, parent_name="", bitmap_mode="data", extra_entries=0,
            creator_app=b"vhdb"):
    """A dynamic (or differencing, with parent=(uuid, timestamp)) image.

    Layout: footer copy, header, BAT, locator data, blocks in index order, end footer.
    raw (bytes of size, or None) fills the blocks: a block is allocated if it has any
    non-zero sector; bitmap_mode "data" sets the bit of non-zero sectors only, "all"
    sets every bit of an allocated block (what a differencing child written in full has).
    For differencing images pass raw as a dict {lba: 512 bytes} of written sectors.
    """
    blocks = -(-size // block_size)
    entries = blocks + extra_entries
    spb = block_size // SECTOR
    bitmap_bytes = -(-(spb // 8) // SECTOR) * SECTOR if spb >= 8 else SECTOR
    bat_off = 3 * SECTOR
    bat_bytes = -(-(4 * entries) // SECTOR) * SECTOR
    pos = bat_off + bat_bytes
    locs = []
    loc_data = b""
    for code, path in ((PLAT_W2RU, w2ru), (PLAT_W2KU, w2ku)):
        if path is None:
            continue
        enc = path.replace("/", "\\").encode("utf-16-le")
        space = -(-len(enc) // SECTOR) * SECTOR
        locs.append((code, space, len(enc), pos + len(loc_data)))
        loc_data += enc.ljust(space, b"\0")
    pos += len(loc_data)
    # sectors written, per block
    written = {}
    if isinstance(raw, dict):
        for lba, sec in raw.items():
            written.setdefault(lba // spb, {})[lba % spb] = bytes(sec)
    elif raw is not None:
        assert len(raw) == size
        zero = bytes(SECTOR)
        for lba in range(size // SECTOR):
            sec = raw[lba * SECTOR:(lba + 1) * SECTOR]
            if sec != zero:
                written.setdefault(lba // spb, {})[lba % spb] = bytes(sec)
    bat = [BAT_FREE] * entries
    body = bytearray()
    block_pos = {}
    for b in sorted(written):
        bitmap = bytearray(bitmap_bytes)
        data = bytearray(block_size)
        for i, sec in written[b].items():
            data[i * SECTOR:(i + 1) * SECTOR] = sec
            bitmap[i // 8] |= 0x80 >> (i % 8)
        if bitmap_mode == "all":
            for i in range(spb):
                bitmap[i // 8] |= 0x80 >> (i % 8)
        block_pos[b] = pos + len(body)
        bat[b] = (pos + len(body)) // SECTOR
        body += bitmap + data
    end = pos + len(body)
    puuid, pts = parent if parent else (bytes(16), 0)
    f = new_footer(size, dtype, SECTOR, uuid_for(tag), creator_app=creator_app)
    h = new_header(bat_off, entries, block_size, puuid, pts, parent_name, locs)
    ft = pack_footer(f)
    batb = b"".join(struct.pack(">I", e) for e in bat).ljust(bat_bytes, b"\xff")
    data = ft + pack_header(h) + batb + loc_data + bytes(body) + ft
    assert len(data) == end + SECTOR
    return Image(data, end, SECTOR, bat_off, block_pos, bitmap_bytes)


def pattern(size, seed, chunks=8, chunk=4096):
    """size bytes, zero except a few random chunks at random sector-aligned places."""
    rnd = random.Random(seed)
    raw = bytearray(size)
    for _ in range(chunks):
        n = min(chunk, size)
        off = rnd.randrange(0, (size - n) // SECTOR + 1) * SECTOR
        raw[off:off + n] = rnd.randbytes(n)
    return raw



# ------------------------------------------------------------------ a reference reader

def load(path):
    """Parse an image file: (data, footer, header or None, bat list or None)."""
    with open(path, "rb") as fh:
        data = fh.read()
    tail = data[-512:] if len(data) % SECTOR != 511 else data[-511:] + b"\0"
    f = parse_footer(tail)
    if f["type"] == TYPE_FIXED:
        return data, f, None, None
    h = parse_header(data[f["data_offset"]:f["data_offset"] + 1024])
    t = h["table_offset"]
    bat = list(struct.unpack(">%dI" % h["max_entries"], data[t:t + 4 * h["max_entries"]]))
    return data, f, h, bat


def bitmap_bytes_for(block_size):
    return -(-(block_size // SECTOR // 8) // SECTOR) * SECTOR if block_size >= 8 * SECTOR else SECTOR


def read_virtual(path, parent=None):
    """The virtual disk's bytes, honouring sector bitmaps; parent: bytes under a differencing image."""
    data, f, h, bat = load(path)
    size = f["cur_size"]
    if h is None:
        return data[:size]
    out = bytearray(parent if parent is not None else bytes(size))
    assert len(out) == size
    bs = h["block_size"]
    spb = bs // SECTOR
    bmb = bitmap_bytes_for(bs)
    for b in range(-(-size // bs)):
        if bat[b] == BAT_FREE:
            continue
        pos = bat[b] * SECTOR
        bitmap = data[pos:pos + bmb]
        for i in range(min(spb, size // SECTOR - b * spb)):
            if bitmap[i // 8] & (0x80 >> (i % 8)):
                src = pos + bmb + i * SECTOR
                dst = (b * spb + i) * SECTOR
                out[dst:dst + SECTOR] = data[src:src + SECTOR]
    return bytes(out)

# ------------------------------------------------------------------ the corpus
#
# Each case: name -> (builder, expectation). A builder takes a directory and
# returns the path of the image to test (it may write other files beside it).
# Expectation keys:
#   err      error name (vhd_errname) that check, info and read must print
#   check    allowed exit codes of `vhdtool check` (1 defects; 2 unusable: the contract lets a tool
#            call an image it cannot open either, vhdtool says 1 and keeps 2 for I/O errors)
#   opens    True when the image must open (info exit 0, read gives `expect`)
#   expect   bytes expected from `read IMAGE 0 N` when opens
#   write_err  error `vhdtool write` must print (saved state)
#   check_err  the name `check` prints instead of err, when check reports it as a defect
#   allow    other error names the output may mention besides err (e.g. why a fallback happened)

CASES = {}


def case(name, err=None, check=(1, 2), opens=False, write_err=None, note="", allow=(), check_err=None):
    def reg(fn):
        CASES[name] = dict(build=fn, err=err, check=tuple(check), opens=opens,
                           write_err=write_err, note=note, allow=tuple(allow),
                           check_err=check_err or err)
        return fn
    return reg


SMALL = 4 * MIB            # virtual size of most corpus images
BS = 2 * MIB


def good_raw(tag):
    raw = bytearray(SMALL)
    rnd = random.Random(tag)
    raw[0:SECTOR] = rnd.randbytes(SECTOR)              # block 0
    raw[BS + 7 * SECTOR:BS + 9 * SECTOR] = rnd.randbytes(2 * SECTOR)  # block 1
    return raw


def good_dynamic(tag, **kw):
    return dynamic(SMALL, BS, good_raw(tag), tag=tag, **kw)


@case("end-footer-checksum-backup-ok", err="footer-checksum", check=(1,), opens=True,
      note="end footer bad, copy at 0 good: opens from the copy, check reports it")
def _c(d):
    im = good_dynamic("c1")
    im.patch_footer(copy=False, fix_checksum=False, checksum=0x12345678)
    return im.write(os.path.join(d, "img.vhd"))


@case("both-footers-checksum", err="footer-checksum")
def _c(d):
    im = good_dynamic("c2")
    im.patch_footer(fix_checksum=False, checksum=0x12345678)
    return im.write(os.path.join(d, "img.vhd"))


@case("footer-cookie", err="footer-cookie")
def _c(d):
    im = fixed(good_raw("c3"), "c3")
    im.patch_footer(cookie=b"conectiX")
    return im.write(os.path.join(d, "img.vhd"))


@case("footer-version", err="footer-version")
def _c(d):
    im = fixed(good_raw("c4"), "c4")
    im.patch_footer(version=0x00020000)
    return im.write(os.path.join(d, "img.vhd"))


@case("footer-features", err="footer-features", note="reserved feature bit 1 clear")
def _c(d):
    im = fixed(good_raw("c5"), "c5")
    im.patch_footer(features=0)
    return im.write(os.path.join(d, "img.vhd"))


@case("footer-type", err="footer-type")
def _c(d):
    im = fixed(good_raw("c6"), "c6")
    im.patch_footer(type=5)
    return im.write(os.path.join(d, "img.vhd"))


@case("fixed-data-offset", err="fixed-data-offset")
def _c(d):
    im = fixed(good_raw("c7"), "c7")
    im.patch_footer(data_offset=512)
    return im.write(os.path.join(d, "img.vhd"))


@case("fixed-size", err="fixed-size", note="footer says 8 MiB, file holds 4 MiB of data")
def _c(d):
    im = fixed(good_raw("c8"), "c8")
    im.patch_footer(cur_size=2 * SMALL, orig_size=2 * SMALL)
    return im.write(os.path.join(d, "img.vhd"))


@case("size-zero", err="size-zero")
def _c(d):
    im = dynamic(BS, BS, None, tag="c9")
    im.patch_footer(cur_size=0, orig_size=0, cylinders=0, heads=0, spt=0)
    return im.write(os.path.join(d, "img.vhd"))


@case("size-unaligned", err="size-unaligned")
def _c(d):
    im = good_dynamic("c10")
    im.patch_footer(cur_size=SMALL - 100)
    return im.write(os.path.join(d, "img.vhd"))


@case("size-too-big", err="size-too-big", note="2041 GiB > the format's 2040 GiB")
def _c(d):
    im = good_dynamic("c11")
    im.patch_footer(cur_size=2041 << 30)
    im.patch_header(max_entries=(2041 << 30) // BS)
    return im.write(os.path.join(d, "img.vhd"))


@case("header-offset-past-eof", err="header-offset")
def _c(d):
    im = good_dynamic("c12")
    im.patch_footer(data_offset=len(im.data) + 100 * SECTOR)
    return im.write(os.path.join(d, "img.vhd"))


@case("header-offset-unaligned", err="header-offset",
      note="same code as past-EOF: the enum has one code for both")
def _c(d):
    im = good_dynamic("c13")
    im.patch_footer(data_offset=SECTOR + 1)
    return im.write(os.path.join(d, "img.vhd"))


@case("header-cookie", err="header-cookie")
def _c(d):
    im = good_dynamic("c14")
    im.patch_header(cookie=b"cxsparsE")
    return im.write(os.path.join(d, "img.vhd"))


@case("header-checksum", err="header-checksum")
def _c(d):
    im = good_dynamic("c15")
    im.patch_header(fix_checksum=False, checksum=0xDEADBEEF)
    return im.write(os.path.join(d, "img.vhd"))


@case("header-version", err="header-version")
def _c(d):
    im = good_dynamic("c16")
    im.patch_header(version=0x00020000)
    return im.write(os.path.join(d, "img.vhd"))


@case("header-data-offset", err="header-data-offset")
def _c(d):
    im = good_dynamic("c17")
    im.patch_header(data_offset=0)
    return im.write(os.path.join(d, "img.vhd"))


@case("block-size-not-pow2", err="block-size")
def _c(d):
    im = good_dynamic("c18")
    im.patch_header(block_size=3 * MIB)
    return im.write(os.path.join(d, "img.vhd"))


@case("block-size-too-small", err="block-size", note="256-byte blocks")
def _c(d):
    im = good_dynamic("c19")
    im.patch_header(block_size=256, max_entries=SMALL // 256)
    return im.write(os.path.join(d, "img.vhd"))


@case("table-offset-unaligned", err="table-offset")
def _c(d):
    im = good_dynamic("c20")
    im.patch_header(table_offset=im.bat_pos + 4)
    return im.write(os.path.join(d, "img.vhd"))


@case("table-offset-past-eof", err="table-offset")
def _c(d):
    im = good_dynamic("c21")
    im.patch_header(table_offset=len(im.data) + 64 * SECTOR)
    return im.write(os.path.join(d, "img.vhd"))


@case("table-small", err="table-small", note="one entry for a two-block disk")
def _c(d):
    im = good_dynamic("c22")
    im.patch_header(max_entries=1)
    return im.write(os.path.join(d, "img.vhd"))


@case("table-overlap", err="table-overlap", note="BAT placed over the dynamic header")
def _c(d):
    im = good_dynamic("c23")
    im.patch_header(table_offset=2 * SECTOR)
    return im.write(os.path.join(d, "img.vhd"))


@case("bat-range", err="bat-range", note="entry 1 points far past the end of the file")
def _c(d):
    im = good_dynamic("c24")
    im.set_bat(1, (len(im.data) // SECTOR) + 100000)
    return im.write(os.path.join(d, "img.vhd"))


@case("bat-overlap-meta", err="bat-overlap-meta", note="block 1 placed over the header")
def _c(d):
    im = good_dynamic("c25")
    im.set_bat(1, 1)
    return im.write(os.path.join(d, "img.vhd"))


@case("bat-overlap", err="bat-overlap", check_err="block-overlap", allow=("block-overlap", "bat-overlap"),
      note="blocks 0 and 1 share space")
def _c(d):
    im = good_dynamic("c26")
    im.set_bat(1, im.bat(0) + 1)
    return im.write(os.path.join(d, "img.vhd"))


@case("truncated", err="bat-range", allow=("footer-cookie", "footer-checksum"), note="dynamic image with its last block and end footer cut off")
def _c(d):
    im = good_dynamic("c27")
    cut = im.block_pos[1] + im.bitmap_bytes + 4096
    return Image(im.data[:cut], 0).write(os.path.join(d, "img.vhd"))


def parent_and_child(d, tag, w2ru="parent.vhd", child_parent=None, psize=SMALL):
    """A dynamic parent (parent.vhd) and a differencing child (img.vhd) in d."""
    parent = dynamic(psize, BS, good_raw(tag + "p")[:psize], tag=tag + "p")
    parent.write(os.path.join(d, "parent.vhd"))
    pf = parent.footer()
    link = child_parent or (pf["uuid"], pf["timestamp"])
    child = dynamic(SMALL, BS, {3: b"\x5a" * SECTOR}, tag=tag + "c", dtype=TYPE_DIFF,
                    parent=link, w2ru=w2ru, parent_name="parent.vhd")
    return parent, child


@case("parent-not-found", err="parent-not-found")
def _c(d):
    parent, child = parent_and_child(d, "c28", w2ru=".\\missing.vhd")
    # the header's parent name must not resolve either
    child.patch_header(parent_name="missing.vhd".encode("utf-16-be").ljust(512, b"\0"))
    os.unlink(os.path.join(d, "parent.vhd"))
    return child.write(os.path.join(d, "img.vhd"))


@case("parent-uuid", err="parent-uuid")
def _c(d):
    parent, child = parent_and_child(d, "c29", child_parent=(b"\x11" * 16, TS))
    return child.write(os.path.join(d, "img.vhd"))


@case("parent-timestamp", err="parent-timestamp")
def _c(d):
    parent, child = parent_and_child(d, "c30")
    child.patch_header(parent_timestamp=TS + 1)
    return child.write(os.path.join(d, "img.vhd"))


@case("parent-size", err="parent-size", note="parent 2 MiB, child 4 MiB")
def _c(d):
    parent, child = parent_and_child(d, "c31", psize=2 * MIB)
    return child.write(os.path.join(d, "img.vhd"))


@case("chain-loop", err="chain-loop", note="a.vhd -> b.vhd -> a.vhd")
def _c(d):
    ua, ub = uuid_for("c32a"), uuid_for("c32b")
    a = dynamic(SMALL, BS, {1: b"a" * SECTOR}, tag="c32a", dtype=TYPE_DIFF, parent=(ub, TS),
                w2ru=".\\b.vhd", parent_name="b.vhd")
    b = dynamic(SMALL, BS, {2: b"b" * SECTOR}, tag="c32b", dtype=TYPE_DIFF, parent=(ua, TS),
                w2ru=".\\img.vhd", parent_name="img.vhd")
    b.write(os.path.join(d, "b.vhd"))
    return a.write(os.path.join(d, "img.vhd"))


CHAIN_TOO_DEEP = 40  # differencing links below the leaf; VHD_MAX_CHAIN is 32


def chain(d, links, tag):
    """base.vhd <- l1.vhd <- ... <- l<links>.vhd; returns the leaf's path."""
    prev = dynamic(SMALL, BS, good_raw(tag), tag=tag + "0")
    prev.write(os.path.join(d, "l0.vhd"))
    for i in range(1, links + 1):
        pf = prev.footer()
        cur = dynamic(SMALL, BS, {i: bytes([i]) * SECTOR}, tag="%s%d" % (tag, i), dtype=TYPE_DIFF,
                      parent=(pf["uuid"], pf["timestamp"]), w2ru=".\\l%d.vhd" % (i - 1),
                      parent_name="l%d.vhd" % (i - 1))
        cur.write(os.path.join(d, "l%d.vhd" % i))
        prev = cur
    return os.path.join(d, "l%d.vhd" % links)


@case("chain-depth", err="chain-depth")
def _c(d):
    return chain(d, CHAIN_TOO_DEEP, "c33")


@case("locator-bad", err="parent-not-found", allow=("locator",), note="W2ru locator data offset past EOF and no usable name")
def _c(d):
    parent, child = parent_and_child(d, "c34")
    h = child.header()
    locs = bytearray(h["locators"])
    struct.pack_into(">Q", locs, 16, 1 << 40)
    child.patch_header(locators=bytes(locs),
                       parent_name="nothere.vhd".encode("utf-16-be").ljust(512, b"\0"))
    return child.write(os.path.join(d, "img.vhd"))


@case("too-small", err="too-small", note="a 100-byte file")
def _c(d):
    with open(os.path.join(d, "img.vhd"), "wb") as fh:
        fh.write(b"conectix" + bytes(92))
    return os.path.join(d, "img.vhd")


@case("saved-state", err=None, check=(0, 1), opens=True, write_err="saved-state",
      note="read-only use is fine; writing must be refused")
def _c(d):
    im = good_dynamic("c35")
    im.patch_footer(saved_state=1)
    return im.write(os.path.join(d, "img.vhd"))


@case("short-footer-511", err=None, check=(0, 1), opens=True,
      note="old Virtual PC 511-byte end footer: must open and read")
def _c(d):
    im = fixed(good_raw("c36"), "c36")
    return Image(im.data[:-1], im.footer_pos).write(os.path.join(d, "img.vhd"))


@case("fixed-conectix-at-0", err=None, check=(0,), opens=True,
      note="fixed disk whose first sector starts with 'conectix' (QEMU's trap)")
def _c(d):
    raw = good_raw("c37")
    fake = new_footer(SMALL, TYPE_DYNAMIC, SECTOR, uuid_for("fake"))
    raw[0:SECTOR] = pack_footer(fake)
    return fixed(raw, "c37").write(os.path.join(d, "img.vhd"))


@case("bitmap-clear-diff-ok", err=None, check=(0,), opens=True,
      note="differencing child: unwritten sectors come from the parent")
def _c(d):
    parent, child = parent_and_child(d, "c38")
    return child.write(os.path.join(d, "img.vhd"))


def expected_read(name, path, sectors=16):
    """For the cases that open: the bytes `read IMAGE 0 sectors` must give."""
    d = os.path.dirname(path)
    if name == "saved-state":
        return bytes(good_raw("c35")[:sectors * SECTOR])
    if name == "short-footer-511":
        return bytes(good_raw("c36")[:sectors * SECTOR])
    if name == "fixed-conectix-at-0":
        with open(path, "rb") as fh:
            return fh.read(sectors * SECTOR)
    if name == "bitmap-clear-diff-ok":
        raw = good_raw("c38p")[:sectors * SECTOR]
        raw[3 * SECTOR:4 * SECTOR] = b"\x5a" * SECTOR
        return bytes(raw)
    if name == "end-footer-checksum-backup-ok":
        return bytes(good_raw("c1")[:sectors * SECTOR])
    raise KeyError(name)


def build(name, outdir):
    os.makedirs(outdir, exist_ok=True)
    return CASES[name]["build"](outdir)


def main(argv):
    if len(argv) != 2 or argv[1].startswith("-"):
        print("usage: make_corrupt.py OUTDIR", file=sys.stderr)
        return 2
    out = argv[1]
    manifest = {}
    for name, c in CASES.items():
        path = build(name, os.path.join(out, name))
        manifest[name] = dict(path=path, err=c["err"], check=list(c["check"]), opens=c["opens"],
                              note=c["note"])
    print(json.dumps(manifest, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
