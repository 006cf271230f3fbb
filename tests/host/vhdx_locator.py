"""vhdx_locator.py: read and rewrite the parent locator of a differencing VHDX in place (MS-VHDX 2.6.2.6), for tests.

vhdtool writes relative_path and absolute_win32_path only; the tests that need a volume_path (or a locator with
paths that are wrong) rewrite the item here. The metadata region has no checksum, so only the item's bytes and
its length in the metadata table change; the new item must fit before the next item (it is refused otherwise).

    locator(path)               -> [(key, value)] in stored order
    set_locator(path, entries)  rewrites the item with entries [(key, value)] (UTF-16LE)
"""
import struct

import make_vhdx_corrupt as mk   # locator(): the item's bytes, as the corpus builds them

G_META, G_LOC, G_LOCTYPE = mk.G_META, mk.G_LOC, mk.G_LOCTYPE
RT = 192 << 10                  # the first region table copy


def _meta(f):
    """(metadata region offset, [(item id, offset, length, table entry's file offset)])."""
    f.seek(RT)
    rt = f.read(64 << 10)
    assert rt[:4] == b"regi", "no region table: not a VHDX"
    n = struct.unpack_from("<I", rt, 8)[0]
    for i in range(n):
        e = 16 + 32 * i
        if rt[e:e + 16] == G_META:
            moff = struct.unpack_from("<Q", rt, e + 16)[0]
            break
    else:
        raise ValueError("no metadata region")
    f.seek(moff)
    tab = f.read(64 << 10)
    assert tab[:8] == b"metadata", "no metadata table"
    items = []
    for i in range(struct.unpack_from("<H", tab, 10)[0]):
        e = 32 + 32 * i
        off, length = struct.unpack_from("<II", tab, e + 16)
        items.append((tab[e:e + 16], off, length, moff + e))
    return moff, items


def locator(path):
    """The locator's [(key, value)] pairs."""
    with open(path, "rb") as f:
        moff, items = _meta(f)
        it = [x for x in items if x[0] == G_LOC]
        assert it, "%s has no parent locator (not a differencing VHDX)" % path
        f.seek(moff + it[0][1])
        b = f.read(it[0][2])
    assert b[:16] == G_LOCTYPE, "unknown locator type"
    out = []
    for i in range(struct.unpack_from("<H", b, 18)[0]):
        ko, vo, kl, vl = struct.unpack_from("<IIHH", b, 20 + 12 * i)
        out.append((b[ko:ko + kl].decode("utf-16-le"), b[vo:vo + vl].decode("utf-16-le")))
    return out


def set_locator(path, entries):
    """Rewrite path's locator item with entries (its length in the table too); the old bytes past it are zeroed."""
    new = mk.locator(entries)
    with open(path, "r+b") as f:
        moff, items = _meta(f)
        it = [x for x in items if x[0] == G_LOC]
        assert it, "%s has no parent locator" % path
        _, off, length, ent = it[0]
        later = [o for g, o, ln, _ in items if g != G_LOC and ln and o > off]
        room = (min(later) if later else 1 << 20) - off
        assert len(new) <= room, "the new locator (%d bytes) does not fit (%d)" % (len(new), room)
        f.seek(moff + off)
        f.write(new + bytes(max(0, length - len(new))))
        f.seek(ent + 20)
        f.write(struct.pack("<I", len(new)))


def volume_path(guid, path):
    r"""The volume_path value for a file at path ('/' separators) on the volume with GUID guid: \\?\Volume{GUID}\path."""
    return "\\\\?\\Volume{%s}%s" % (str(guid).lower(), path.replace("/", "\\"))
