"""test_trace.py: the `trace` option logs every guest INT 13h call decoded (CHS and LBA, DAP, buffer, status) and sums up."""
import os
import re
import subprocess

import pytest

import firmware_harness as fh

PROTECT_BIN = os.path.join(fh.BUILD, "guest", "protect.bin")
LINE = re.compile(r"^int13 ax=(?P<ax>[0-9a-f]{4}) bx=(?P<bx>[0-9a-f]{4}) cx=(?P<cx>[0-9a-f]{4}) dx=(?P<dx>[0-9a-f]{4}) "
                  r"es=(?P<es>[0-9a-f]{4}) si=(?P<si>[0-9a-f]{4}) -> ax=(?P<oax>[0-9a-f]{4}) cf=(?P<cf>\d) "
                  r"\| dl=(?P<dl>[0-9a-f]{2}) (?P<name>\S+) (?P<what>.*?)-> (?P<st>[0-9a-f]{2})h$")


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """The protect guest (CHS reads, refused and normal AH=42h reads) booted with `trace`."""
    d = tmp_path_factory.mktemp("trace")
    iso = str(d / "trace.iso")
    subprocess.run([os.path.join(fh.ROOT, "tools", "mkiso.sh"), "trace", iso], check=True, capture_output=True)
    raw = fh.build_raw(str(d / "t.raw"), 16 << 20, [], fh.Params(), guest_bin=PROTECT_BIN)
    vhd = fh.vhdtool_vhd(raw, str(d / "t.vhd"), "dynamic")
    run = fh.run_qemu([(0, vhd)], iso=iso, timeout=120)
    assert not run.timed_out and run.rc == fh.EXIT_DONE, run.describe()
    lines = [m.groupdict() for m in (LINE.match(l.strip()) for l in run.serial.splitlines()) if m]
    return run, lines


def test_every_call_has_a_decoded_line(traced):
    run, lines = traced
    raw = [l for l in run.serial.splitlines() if l.startswith("int13 ax=")]
    assert raw and len(lines) == len(raw), "undecodable trace lines:\n" + "\n".join(
        l for l in raw if not LINE.match(l.strip()))
    for l in lines:
        # status and CF agree with the raw registers
        assert int(l["st"], 16) == (int(l["oax"], 16) >> 8 if l["cf"] == "1" else 0), l
        assert l["dl"] == l["dx"][2:], l


def test_chs_reads_decode_to_lba(traced):
    run, lines = traced
    geo = fh.firmware_facts(run.serial)["int13"]
    reads = [l for l in lines if l["ax"][:2] == "02"]
    assert len(reads) >= 15, run.describe()          # the boot sector loads 15 sectors by CHS
    for l in reads:
        m = re.match(r"chs (\d+)/(\d+)/(\d+) lba (\d+) n=(\d+) buf ([0-9a-f]{4}):([0-9a-f]{4}) $", l["what"])
        assert m, l
        c, h, s, lba, n = (int(x) for x in m.groups()[:5])
        assert lba == (c * geo["heads"] + h) * geo["spt"] + s - 1, l
        assert n == int(l["ax"][2:], 16) and m.group(7) == l["bx"], l
    # the boot sector's loads are LBA 1..15, in order (the refused one into the low stub comes later)
    loads = [int(re.search(r"lba (\d+)", l["what"]).group(1)) for l in reads if l["cf"] == "0"]
    assert loads[:15] == list(range(1, 16)), loads


def test_dap_reads_and_refusals(traced):
    run, lines = traced
    ext = [l for l in lines if l["ax"][:2] == "42"]
    ok = [l for l in ext if l["cf"] == "0"]
    bad = [l for l in ext if l["cf"] == "1"]
    assert any(re.match(r"lba 0 n=1 buf 0000:7c00 $", l["what"]) for l in ok), ext   # vhdboot's own MBR read
    assert any(re.match(r"lba 0 n=1 buf 0000:a000 $", l["what"]) for l in ok), ext   # the guest's control read
    assert len(bad) == 3 and all(l["st"] == "01" for l in bad), bad                   # low stub, flat x2
    assert sum("buf flat " in l["what"] for l in bad) == 2, bad


def test_summary_at_the_guest_jump(traced):
    run, _ = traced
    m = re.search(r"trace: summary at the guest jump: (\d+) calls \((.*?)\), (\d+) sectors read, (\d+) written, "
                  r"(\d+) errors", run.serial)
    assert m, run.describe()
    assert m.groups() == ("1", "42h x1", "1", "0", "0"), m.group(0)
