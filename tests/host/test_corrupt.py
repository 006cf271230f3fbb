"""test_corrupt.py: vhdtool on a corpus of malformed images (tests/host/make_corrupt.py), one defect each.

Every case must: give its own error name (vhd_errname) from check, info and read; exit 1
(defects) or 2 (unusable) from check; never crash or trip a sanitizer (the commands also
run under an ASan+UBSan build); and leave every file of the case byte-for-byte unchanged.
"""
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import TESTS, run, sha256
import make_corrupt as mc

ALL_ERRS = sorted({c["err"] for c in mc.CASES.values() if c["err"]} | {"saved-state", "locator", "no-parent"})


def mentions(text, name):
    """name appears as a whole error name (not as part of a longer one like bat-overlap-meta)."""
    return re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(name), text) is not None


def hashes(d):
    return {n: sha256(os.path.join(d, n)) for n in sorted(os.listdir(d))}


def output(res, scrub):
    """stdout + stderr with the case's directory replaced, so a path can never match an error name."""
    out = res.stdout if isinstance(res.stdout, str) else res.stdout.decode("utf-8", "replace")
    return (out + res.stderr).replace(scrub, "<dir>")


def test_corpus_size():
    assert len(mc.CASES) >= 25, "corpus has only %d cases" % len(mc.CASES)
    negative = {c["err"] for c in mc.CASES.values() if c["err"] and not c["opens"]}
    assert len(negative) >= 25, "only %d distinct expected errors: %s" % (len(negative), sorted(negative))


def test_generator_cli(tmp_path):
    res = run([sys.executable, os.path.join(TESTS, "host", "make_corrupt.py"), tmp_path], text=True)
    manifest = json.loads(res.stdout)
    assert set(manifest) == set(mc.CASES)
    for name, m in manifest.items():
        assert os.path.getsize(m["path"]) > 0, name
    # deterministic: a second run writes the same bytes
    again = tmp_path / "again"
    run([sys.executable, os.path.join(TESTS, "host", "make_corrupt.py"), again], text=True)
    for name in mc.CASES:
        assert hashes(tmp_path / name) == hashes(again / name), "generator not deterministic: " + name


@pytest.fixture(params=["plain", "san"])
def tool(request, vhdtool, vhdtool_san):
    return vhdtool if request.param == "plain" else vhdtool_san


@pytest.mark.parametrize("name", list(mc.CASES))
def test_corrupt_case(tool, tmp_path, name):
    c = mc.CASES[name]
    d = str(tmp_path / "case")
    img = mc.build(name, d)
    before = hashes(d)
    why = "[%s: %s]" % (name, c["note"]) if c["note"] else "[%s]" % name

    chk = run([tool, "check", img], rc=c["check"], text=True)
    info = run([tool, "info", img], rc=None, text=True)
    rd = run([tool, "read", img, 0, 16], rc=None)

    if c["opens"]:
        assert info.returncode == 0, "%s must open\n%s" % (why, output(info, d))
        assert rd.returncode == 0, "%s must read\n%s" % (why, rd.stderr)
        want = mc.expected_read(name, img, 16)
        assert rd.stdout == want, "%s read 0 16 returned wrong data" % why
        if c["err"]:
            assert mentions(output(chk, d), c["check_err"]), "%s check does not name %s\n%s" % (
                why, c["check_err"], output(chk, d))
        if c["write_err"]:
            wr = run([tool, "write", img, 0], rc=None, input=b"\x77" * 512, text=True)
            assert wr.returncode != 0, "%s write must be refused" % why
            assert mentions(output(wr, d), c["write_err"]), "%s write does not name %s\n%s" % (
                why, c["write_err"], output(wr, d))
    else:
        for what, res in (("check", chk), ("info", info), ("read", rd)):
            assert res.returncode != 0, "%s %s succeeded on a malformed image" % (why, what)
            text = output(res, d)
            err = c["check_err"] if what == "check" else c["err"]
            assert mentions(text, err), "%s %s does not name %s\n%s" % (why, what, err, text)
            others = [e for e in ALL_ERRS if e != err and e not in c["allow"] and mentions(text, e)]
            assert not others, "%s %s names other errors %s too\n%s" % (why, what, others, text)
        assert info.returncode in (1, 2), "%s info exit %d" % (why, info.returncode)
    assert hashes(d) == before, "%s a read-only command changed the files" % why
