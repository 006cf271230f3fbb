"""conftest.py: shared pytest fixtures: repository paths, the vhdtool binary, a run() helper, oracles."""
import contextlib
import hashlib
import os
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
VHDTOOL = os.environ.get("VHDTOOL", os.path.join(BUILD, "vhdtool"))
TESTS = os.path.join(ROOT, "tests")
# conftest.py itself, then the helper modules of host/ (make_corrupt.py) and qemu/ (firmware_harness.py,
# writeguest.py, powercut.py), importable from any folder (see README.md for the layout).
for _d in (os.path.join(TESTS, "qemu"), os.path.join(TESTS, "host"), TESTS):
    if _d not in sys.path:
        sys.path.insert(0, _d)

SANITIZER_MARKS = ("AddressSanitizer", "UndefinedBehaviorSanitizer", "LeakSanitizer",
                   "runtime error:", "MemorySanitizer")


def describe(res):
    """The command and its output, for assertion messages."""
    err = res.stderr if isinstance(res.stderr, str) else res.stderr.decode("utf-8", "replace")
    out = res.stdout if isinstance(res.stdout, str) else res.stdout[:2000].decode("utf-8", "replace")
    return "$ %s\n-> exit %s\n--- stderr:\n%s\n--- stdout (start):\n%s" % (
        " ".join(shlex.quote(str(a)) for a in res.args), res.returncode, err[-4000:], out[:2000])


def run(args, rc=0, input=None, timeout=300, text=False, cwd=None):
    """Run a command; assert its exit code (rc: int, tuple of ints, or None = any) and that it was
    not killed by a signal and printed no sanitizer report. stdout is bytes unless text=True;
    stderr is always text."""
    args = [str(a) for a in args]
    try:
        p = subprocess.run(args, input=input, capture_output=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("timed out after %ss: %s" % (timeout, " ".join(args))) from e
    res = subprocess.CompletedProcess(args, p.returncode,
                                      p.stdout.decode("utf-8", "replace") if text else p.stdout,
                                      p.stderr.decode("utf-8", "replace"))
    assert res.returncode >= 0, "killed by signal %d\n%s" % (-res.returncode, describe(res))
    for mark in SANITIZER_MARKS:
        assert mark not in res.stderr, "sanitizer report\n%s" % describe(res)
    if rc is not None:
        ok = res.returncode in rc if isinstance(rc, (tuple, list, set)) else res.returncode == rc
        assert ok, "expected exit %s\n%s" % (rc, describe(res))
    return res


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_file(path):
    with open(path, "rb") as fh:
        return fh.read()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (rep_setup, rep_call, rep_teardown) for _tmp_cleanup."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(autouse=True)
def _tmp_cleanup(request, tmp_path):
    """Delete a test's tmp_path once it passed (images of many GiB add up over 800 tests and filled the
    disk of a CI machine); a failed test's files stay for the post-mortem."""
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.passed:
        shutil.rmtree(str(tmp_path), ignore_errors=True)


@pytest.fixture(scope="session")
def vhdtool():
    """Path of build/vhdtool (or $VHDTOOL); `make` builds it."""
    assert os.access(VHDTOOL, os.X_OK), "%s is missing: run `make tool` first" % VHDTOOL
    return VHDTOOL


@pytest.fixture(scope="session")
def vhdtool_san(tmp_path_factory):
    """vhdtool built with ASan+UBSan (same sources and flags as the Makefile's san objects)."""
    srcs = []
    for d in ("block", "vhd", "vhdx", "image", "tools"):   # the Makefile's VHD_SRCS, IMAGE_SRCS and TOOL_SRCS
        if os.path.isdir(os.path.join(ROOT, d)):
            srcs += sorted(os.path.join(d, f) for f in os.listdir(os.path.join(ROOT, d)) if f.endswith(".c")
                           and not (d == "image" and f != "resolve.c"))   # image.c, *_fmt.c: firmware only
    assert srcs, "no block/, vhd/, image/ or tools/ sources"
    out = tmp_path_factory.mktemp("san") / "vhdtool-san"
    run(["gcc", "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-D_FILE_OFFSET_BITS=64", "-D_GNU_SOURCE",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
         "-o", out] + srcs, cwd=ROOT)
    return str(out)


def have(tool):
    return shutil.which(tool) is not None


@pytest.fixture(scope="session")
def qemu_img():
    assert have("qemu-img"), "qemu-img not installed (tools/install-deps.sh installs qemu-utils)"
    return "qemu-img"


@pytest.fixture(scope="session")
def vhdiinfo():
    assert have("vhdiinfo"), "vhdiinfo not installed (tools/install-deps.sh installs libvhdi-utils)"
    return "vhdiinfo"


@contextlib.contextmanager
def _vhdimount(image, mnt):
    """Mount image with libvhdi's FUSE tool; yields the leaf's virtual disk path (the last vhdiN)."""
    os.makedirs(mnt, exist_ok=True)
    p = subprocess.run(["vhdimount", str(image), str(mnt)], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        pytest.skip("vhdimount cannot mount here (FUSE?): %s" % p.stderr.strip())
    try:
        names = sorted((n for n in os.listdir(mnt) if n.startswith("vhdi")), key=lambda n: int(n[4:]))
        assert names, "vhdimount exposed nothing for %s" % image
        yield os.path.join(mnt, names[-1])
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


@pytest.fixture
def vhdimount(tmp_path):
    """vhdimount(image) -> context manager yielding the path of the mounted leaf disk."""
    if not have("vhdimount"):
        pytest.fail("vhdimount not installed (libvhdi-utils)")
    count = [0]

    def mount(image):
        count[0] += 1
        return _vhdimount(image, tmp_path / ("mnt%d" % count[0]))
    return mount
