"""test_v86.py: INT 13h from V86 mode (as under EMM386) is refused with AH=01h CF=1, counted, logged later; no crash.

The guest (tests/qemu/progs/v86.asm) reads LBA 0 in real mode, enters V86 mode
under a minimal monitor that reflects INT 13h to the real-mode vector (so
vhdboot's stub runs in V86 mode), then returns to real mode and reads again;
that call reaches the C side, which logs the refusal count on COM1.
"""
import os

import pytest

import firmware_harness as fh

V86_BIN = os.path.join(fh.BUILD, "guest", "v86.bin")
REFUSAL_LINE = "resident: 1 INT 13h call(s) refused with AH=01h: CPU in V86 mode"


@pytest.fixture(scope="module")
def boot(tmp_path_factory):
    """Boot v86.bin from a dynamic VHD through the ISO; return the run."""
    assert os.path.exists(fh.ISO), "build/vhdboot.iso is missing: run make"
    assert os.path.exists(V86_BIN), "build/guest/v86.bin is missing: run make"
    d = tmp_path_factory.mktemp("v86")
    raw = fh.build_raw(str(d / "v.raw"), 16 << 20, [(100, 64)], fh.Params(), guest_bin=V86_BIN)
    vhd = fh.vhdtool_vhd(raw, str(d / "v.vhd"), "dynamic")
    run = fh.run_qemu([(0, vhd)], iso=fh.ISO, timeout=60)
    return run


def test_exits_cleanly(boot):
    """Exit 33 through isa-debug-exit: no #GP or other fault in PM/V86 (35), no triple fault (-no-reboot)."""
    run = boot
    assert not run.timed_out and run.rc == fh.EXIT_DONE, run.describe()
    assert not [l for l in run.log.other if l.startswith("FAULT")], run.describe()
    assert run.log.done, run.describe()


def test_real_mode_read_before(boot):
    """The plain AH=42h read from real mode works and returns the boot sector."""
    r = boot.log.one("RM42")
    assert r["ah"] == 0 and r["cf"] == 0 and r["cnt"] == 1 and r["same"] == 1, boot.describe()


def test_v86_call_refused(boot):
    """The reflected INT 13h ran the stub in V86 mode (PE set) and came back with AH=01h CF=1, nothing moved."""
    r = boot.log.one("V86")
    assert r["pe"] == 1, boot.describe()
    assert r["ah"] == 0x01 and r["cf"] == 1, boot.describe()
    assert r["cnt"] == 1, boot.describe()     # the stub leaves the DAP alone


def test_refusal_logged_at_next_call_and_handler_intact(boot):
    """Back in real mode, the next call reaches C: the refusal is logged once, and the read works."""
    run = boot
    assert run.log.one("BACK")["pe"] == 0, run.describe()
    r = run.log.one("RM42B")
    assert r["ah"] == 0 and r["cf"] == 0 and r["cnt"] == 1 and r["same"] == 1, run.describe()
    logged = [l for l in run.log.other if l.startswith("resident: ") and "refused" in l]
    assert logged == [l for l in logged if l.startswith(REFUSAL_LINE)] and len(logged) == 1, run.describe()
    # Logged after the V86 record (at the real-mode call), not before.
    text = run.serial
    assert text.index("T V86") < text.index(REFUSAL_LINE) < text.index("T RM42B"), run.describe()


def test_no_refused_buffer_or_panic(boot):
    run = boot
    bad = [l for l in run.log.other if l.startswith("int13: refused a guest buffer") or "panic" in l.lower()]
    assert not bad, run.describe()
