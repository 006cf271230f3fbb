"""test_protect.py: a guest aiming INT 13h reads at vhdboot's own memory is refused, logged, and the handler survives."""
import os

import pytest

import firmware_harness as fh

PROTECT_BIN = os.path.join(fh.BUILD, "guest", "protect.bin")


@pytest.fixture(scope="module")
def boot(tmp_path_factory):
    """Boot protect.bin from a dynamic VHD through the ISO; return (serial log, firmware facts, image path, sha before)."""
    assert os.path.exists(fh.ISO), "build/vhdboot.iso is missing: run make"
    assert os.path.exists(PROTECT_BIN), "build/guest/protect.bin is missing: run make"
    d = tmp_path_factory.mktemp("protect")
    raw = fh.build_raw(str(d / "p.raw"), 16 << 20, [(100, 64)], fh.Params(), guest_bin=PROTECT_BIN)
    vhd = fh.vhdtool_vhd(raw, str(d / "p.vhd"), "dynamic")
    before = fh.sha256(vhd)
    run = fh.run_qemu([(0, vhd)], iso=fh.ISO, timeout=120)
    assert not run.timed_out and run.rc == fh.EXIT_DONE, run.describe()
    return run, fh.firmware_facts(run.serial), vhd, before


def test_guest_finds_our_regions(boot):
    """The guest's view (40:13, E820) names exactly the memory the firmware says it reserved."""
    run, facts, _, _ = boot
    low, high = run.log.one("LOW"), run.log.one("HIGH")
    # 40:13 starts vhdboot's low memory: the hand-over table's page (docs/handover.md), then the stub
    assert low["seg"] == facts["low"]["kb_after"] * 64 <= facts["low"]["stub_seg"], run.describe()
    assert high["base"] == facts["high"]["base"], run.describe()
    assert high["len"] == facts["high"]["kib"] * 1024, run.describe()


@pytest.mark.parametrize("rec", ["P42LOW", "P02LOW", "P42HIGH", "P42EDGE"])
def test_buffer_on_resident_memory_refused(boot, rec):
    """Reads into the low stub or the high region (seg:off, CHS, 64-bit flat, straddling) fail with 01h, move nothing."""
    run, _, _, _ = boot
    r = run.log.one(rec)
    assert r["cf"] == 1 and r["ah"] == 0x01, "%s: %s\n%s" % (rec, r, run.describe())
    if "cnt" in r:
        assert r["cnt"] == 0, "%s: sectors reported moved: %s" % (rec, r)
    else:
        assert r["al"] == 0, "%s: sectors reported moved: %s" % (rec, r)


def test_refusals_logged_and_handler_intact(boot):
    """Each refusal has a COM1 line; a normal read afterwards still works and returns the right data."""
    run, _, vhd, before = boot
    refusals = [l for l in run.log.other if l.startswith("int13: refused a guest buffer")]
    assert len(refusals) >= 4, run.describe()
    assert any("low stub" in l for l in refusals) and any("resident region" in l for l in refusals), refusals
    ctrl = run.log.one("CTRL")
    assert ctrl["cf"] == 0 and ctrl["ah"] == 0 and ctrl["same"] == 1, run.describe()
    assert run.log.done
    assert fh.sha256(vhd) == before
