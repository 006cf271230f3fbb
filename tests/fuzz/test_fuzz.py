"""test_fuzz.py: every libFuzzer target (tests/fuzz/fuzz_*.c, built by `make test` as build/fuzz_*) replays its
regression inputs (tests/fuzz/regress/<target>/) and runs briefly over its generated seeds."""
import glob
import os
import sys

import pytest

from conftest import BUILD, TESTS, run

HERE = os.path.join(TESTS, "fuzz")
TARGETS = sorted(os.path.basename(p)[5:-2] for p in glob.glob(os.path.join(HERE, "fuzz_*.c")))
SECONDS = int(os.environ.get("FUZZ_TEST_SECONDS", "5"))
MAX_LEN = {"fat": 1048576, "scan": 1048576}


def fuzzer(target):
    path = os.path.join(BUILD, "fuzz_" + target)
    assert os.access(path, os.X_OK), "%s is missing: run `make %s`" % (path, os.path.relpath(path))
    return path


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_regressions(target):
    inputs = sorted(glob.glob(os.path.join(HERE, "regress", target, "*")))
    if not inputs:
        pytest.skip("no regression inputs for %s" % target)
    res = run([fuzzer(target), "-runs=1"] + inputs, rc=None, timeout=120, text=True)
    assert res.returncode == 0, "a regression input of %s fails again\n%s" % (target, res.stderr[-4000:])
    assert res.stderr.count("Executed ") == len(inputs), res.stderr[-2000:]


# fuzz_vhdx and fuzz_fs make their own inputs: test_fuzz_vhdx_short_run below and test_fuzz_fs.py
SHORT_TARGETS = [t for t in TARGETS if t not in ("vhdx", "fs")]


@pytest.mark.parametrize("target", SHORT_TARGETS)
def test_fuzz_short_run(target, tmp_path):
    seeds, corpus, artifacts = tmp_path / "seeds", tmp_path / "corpus", tmp_path / "artifacts"
    corpus.mkdir()
    artifacts.mkdir()
    run([sys.executable, os.path.join(HERE, "seeds.py"), target, seeds], text=True)
    if target in ("vhd", "part", "fat", "int13", "cmdline", "int15", "mbinfo", "scan", "handover"):
        assert len(os.listdir(seeds)) >= 3, "seeds.py wrote too few seeds for %s" % target
    d = os.path.join(HERE, target + ".dict")
    dict_arg = ["-dict=" + d] if os.path.exists(d) else []
    res = run([fuzzer(target)] + dict_arg + ["-max_total_time=%d" % SECONDS, "-max_len=%d" % MAX_LEN.get(target, 65536),
               "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1", "-artifact_prefix=%s/" % artifacts,
               str(corpus), str(seeds)], rc=None, timeout=SECONDS + 120, text=True)
    crashes = os.listdir(artifacts)
    assert res.returncode == 0 and not crashes, (
        "fuzz_%s found a problem (exit %d), artifacts %s in %s\n%s" % (
            target, res.returncode, crashes, artifacts, res.stderr[-6000:]))
    assert "stat::number_of_executed_units" in res.stderr, "fuzzer did not run to completion\n" + res.stderr[-3000:]


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
