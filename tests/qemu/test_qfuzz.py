"""test_qfuzz.py: issue 15 item 4: a short sample of the INT 13h fuzz guest (tests/qemu/progs/qfuzz.asm) on a
dynamic VHD, every call checked against qfuzz.py's reference model, the image compared with the model's disk, and
vhdboot's resident code checksummed before the jump and after the calls. Long campaigns: python3 tests/qemu/qfuzz.py
--calls 100000 --seeds N."""
import os

import pytest

import firmware_harness as fh
import qfuzz

CALLS = int(os.environ.get("QFUZZ_CALLS", "2000"))


@pytest.mark.parametrize("seed", [1])
def test_qfuzz_sample(seed, tmp_path):
    for f in (fh.ISO, qfuzz.ELF, qfuzz.GUEST_BIN, fh.VHDTOOL):
        assert os.path.exists(f), "%s missing: run make" % f
    problems, info = qfuzz.run_one(str(tmp_path), seed, CALLS, timeout=600)
    run = info["run"]
    assert not problems, "\n".join(problems) + "\n" + run.describe(3000)
    c = info["counts"]
    # the sample must reach every kind of call: our drive, the BIOS's drives, failures, refused buffers, writes
    assert c["ours"] > CALLS // 2 and c["other"] > CALLS // 10, c
    assert c["cf"] > CALLS // 10 and c["refused"] > CALLS // 50, c
    assert info["written_sectors"] > 0, "no write reached the scratch region"

    # the checker is not blind: a changed data hash, a changed register, a resident checksum that moved
    lines = run.serial.split("\n")
    rs = [i for i, ln in enumerate(lines) if ln.startswith("R ") and ln.split()[2].endswith("80")]
    r = rs[len(rs) // 2]                  # a call on drive 80h (the others are not predicted)
    idx = int(lines[r].split()[1], 16)
    for tamper, what in ((lambda w: w[:-1] + ["%08x" % (int(w[-1], 16) ^ 1)], "hash"),
                         (lambda w: w[:4] + ["%08x" % (int(w[4], 16) ^ 0x10000)] + w[5:], "eax")):
        bad = list(lines)
        bad[r] = " ".join(tamper(lines[r].split()))
        assert any("call %d " % idx in p and what in p for p in info["recheck"]("\n".join(bad))), what
    end = [i for i, ln in enumerate(lines) if ln.startswith("END ")][0]
    bad = list(lines)
    bad[end] = bad[end][:-1] + ("0" if bad[end][-1] != "0" else "1")
    assert any("OUR MEMORY CHANGED" in p for p in info["recheck"]("\n".join(bad)))
