"""benchlib.py: what the QEMU benchmarks in bench/ share: the build check, a work folder under build/ (deleted, or kept with --keep), median and min-max helpers.

Stdlib only. The benchmarks import it as `import benchlib as bl` (bench/ is the script's own folder).
"""
import contextlib
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")


def require(script, *paths):
    """Exit with '<script>: <path> is missing (run make first)' unless every path exists."""
    for p in paths:
        if not os.path.exists(p):
            sys.exit("%s: %s is missing (run make first)" % (script, p))


@contextlib.contextmanager
def work_dir(prefix, keep):
    """A new folder build/<prefix>XXXX for one run: deleted afterwards, or kept (its path printed) when keep."""
    work = tempfile.mkdtemp(prefix=prefix, dir=BUILD)
    try:
        yield work
    finally:
        if keep:
            print("work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def median(xs):
    """Median of a non-empty sequence (the mean of the middle two for an even count)."""
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def median_range(rs):
    """'median (min-max)' of ratios rs to 2 places; one ratio alone as '%.2f'; '-' for none."""
    if not rs:
        return "-"
    return "%.2f (%.2f-%.2f)" % (median(rs), min(rs), max(rs)) if len(rs) > 1 else "%.2f" % rs[0]
