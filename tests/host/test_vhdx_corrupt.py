"""test_vhdx_corrupt.py: vhdx/ (through build/vhdxprobe) on make_vhdx_corrupt.py's malformed VHDX corpus.

Each case has one defect and must get its own name: an open error from info, check and cat
(exit 2), a parent chain error from cat, or exactly that one defect from check on an image
that still opens and reads (exit 1). No crash, no sanitizer report (the probe also runs with
ASan+UBSan), and every file of the case byte-for-byte unchanged.
"""
import json
import os
import sys

import pytest

from conftest import BUILD, ROOT, TESTS, run, sha256
import make_vhdx_corrupt as mc


@pytest.fixture(scope="session")
def probes():
    run(["make", "-s", "-C", ROOT, "build/vhdxprobe", "build/vhdxprobe-san"], timeout=600)
    return os.path.join(BUILD, "vhdxprobe"), os.path.join(BUILD, "vhdxprobe-san")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return mc.write_all(str(tmp_path_factory.mktemp("vhdx-corpus")))


def hashes(d):
    return {n: sha256(os.path.join(d, n)) for n in sorted(os.listdir(d))}


def test_corpus_size():
    errs = {c["err"] for c in mc.CASES.values()}
    assert len(mc.CASES) >= 25
    assert len(errs) >= 25, sorted(errs)
    negative = {c["err"] for c in mc.CASES.values() if not c["opens"]}
    assert len(negative) >= 25, sorted(negative)


def test_generator_cli(tmp_path):
    res = run([sys.executable, os.path.join(TESTS, "host", "make_vhdx_corrupt.py"), tmp_path], text=True)
    assert set(json.loads(res.stdout)) == set(mc.CASES)
    again = tmp_path / "again"
    run([sys.executable, os.path.join(TESTS, "host", "make_vhdx_corrupt.py"), again], text=True)
    for name in mc.CASES:
        assert hashes(tmp_path / name) == hashes(again / name), "generator not deterministic: " + name


def test_valid_base_and_log_version_without_log(probes, tmp_path):
    """The corpus' base image is clean; a log version other than 0 matters only with a log to replay
    (MS-VHDX 2.2.2), so without one the image opens clean."""
    for name, img in (("base", mc.build()), ("logver", mc.both_headers(mc.build(), log_version=1))):
        p = tmp_path / (name + ".vhdx")
        p.write_bytes(bytes(img))
        for probe in probes:
            assert run([probe, "check", p], text=True).stdout.strip() == "defects 0", name


@pytest.mark.parametrize("variant", ["plain", "san"])
@pytest.mark.parametrize("name", list(mc.CASES))
def test_case(corpus, probes, tmp_path, name, variant):
    probe = probes[0] if variant == "plain" else probes[1]
    c = corpus[name]
    d = os.path.dirname(c["path"])
    before = hashes(d)
    out = str(tmp_path / "out.raw")
    if c["opens"]:
        res = run([probe, "check", c["path"]], rc=1, text=True)
        found = {l.split()[1] for l in res.stdout.splitlines() if l.startswith("defect ")}
        assert found == {c["err"]}, "%s: check found %s" % (name, sorted(found))
        i = run([probe, "info", c["path"]], text=True).stdout
        if "has_parent=0" in i:          # (differencing cases have no parent file to read through)
            run([probe, "cat", c["path"], out], text=True)
    elif c["chain"]:
        run([probe, "info", c["path"]], text=True)
        res = run([probe, "cat", c["path"], out], rc=2, text=True)
        assert "error %s\n" % c["err"] in res.stdout, res.stdout
    else:
        for cmd in (["info", c["path"]], ["check", c["path"]], ["cat", c["path"], out]):
            res = run([probe] + cmd, rc=2, text=True)
            assert "error %s\n" % c["err"] in res.stdout, "%s %s: %s" % (name, cmd[0], res.stdout)
            assert res.stderr.strip(), "no message"
    assert hashes(d) == before, "%s: the case's files changed" % name
