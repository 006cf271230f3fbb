"""test_fuzz.py: a short libFuzzer run of build/fuzz_vhd (built by `make test`) over generated seeds."""
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
