"""test_fuzz.py: short libFuzzer runs of build/fuzz_vhd (over generated seeds) and build/fuzz_vhdx (built by `make test`)."""
import os
import sys

from conftest import BUILD, TESTS, run

FUZZER = os.path.join(BUILD, "fuzz_vhd")
SECONDS = int(os.environ.get("FUZZ_TEST_SECONDS", "20"))


def test_fuzz_short_run(tmp_path):
    assert os.access(FUZZER, os.X_OK), "%s is missing: run `make %s`" % (FUZZER, os.path.relpath(FUZZER))
    seeds = tmp_path / "seeds"
    corpus = tmp_path / "corpus"
    artifacts = tmp_path / "artifacts"
    corpus.mkdir()
    artifacts.mkdir()
    run([sys.executable, os.path.join(TESTS, "fuzz", "make_seeds.py"), seeds], text=True)
    assert len(os.listdir(seeds)) >= 20, "make_seeds.py wrote too few seeds"
    res = run([FUZZER, "-max_total_time=%d" % SECONDS, "-max_len=65536", "-timeout=10",
               "-rss_limit_mb=2048", "-print_final_stats=1", "-artifact_prefix=%s/" % artifacts,
               corpus, seeds], rc=None, timeout=SECONDS + 120, text=True)
    crashes = os.listdir(artifacts)
    assert res.returncode == 0 and not crashes, (
        "fuzzer found a problem (exit %d), artifacts %s in %s\n%s" % (
            res.returncode, crashes, artifacts, res.stderr[-6000:]))
    assert "Done " in res.stderr or "stat::number_of_executed_units" in res.stderr, (
        "fuzzer did not run to completion\n" + res.stderr[-3000:])


VHDX_FUZZER = os.path.join(BUILD, "fuzz_vhdx")
VHDX_SECONDS = int(os.environ.get("FUZZ_VHDX_TEST_SECONDS", "20"))


def test_fuzz_vhdx_short_run(tmp_path):
    """build/fuzz_vhdx (tests/fuzz/fuzz_vhdx.c): patches to valid VHDX images; seeds reach each base image,
    the CRC fix-ups and the writable session."""
    assert os.access(VHDX_FUZZER, os.X_OK), "%s is missing: run `make %s`" % (VHDX_FUZZER, os.path.relpath(VHDX_FUZZER))
    seeds = tmp_path / "seeds"
    corpus = tmp_path / "corpus"
    artifacts = tmp_path / "artifacts"
    for d in (seeds, corpus, artifacts):
        d.mkdir()
    # base, fix-up mask, then patches (target, offset lo, offset hi, length, bytes).
    seed_list = [bytes([b, fix]) for b in range(3) for fix in (0, 0x40, 0x43, 0x4C)]
    seed_list += [bytes([0, 0x42, 2, 66, 0, 2, 2, 0]),            # header 1: version 2, CRC fixed
                  bytes([1, 0x40, 5, 9, 0, 4, 0xFF, 0xFF, 0xFF, 0xFF]),  # the pending log's first entry, torn
                  bytes([2, 0x40, 8, 0, 0, 8, 7, 0, 0x50, 0, 0, 0, 0, 0]),  # a BAT entry of the child
                  bytes([0, 0x00, 7, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0])]    # the block size item
    for i, s in enumerate(seed_list):
        (seeds / ("s%02d" % i)).write_bytes(s)
    res = run([VHDX_FUZZER, "-max_total_time=%d" % VHDX_SECONDS, "-max_len=4096", "-timeout=10",
               "-rss_limit_mb=2048", "-print_final_stats=1", "-artifact_prefix=%s/" % artifacts,
               corpus, seeds], rc=None, timeout=VHDX_SECONDS + 120, text=True)
    crashes = os.listdir(artifacts)
    assert res.returncode == 0 and not crashes, (
        "fuzzer found a problem (exit %d), artifacts %s in %s\n%s" % (
            res.returncode, crashes, artifacts, res.stderr[-6000:]))
    assert "stat::number_of_executed_units" in res.stderr, "fuzzer did not run to completion\n" + res.stderr[-3000:]
