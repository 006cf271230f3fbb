#!/usr/bin/python3
"""edit_verbs.py: time `vhdtool commit` and `vhdtool compact` against qemu-img doing the same work, same run.

    bench/edit_verbs.py [--size-mib 1024] [--reps 3] [--dir DIR]

commit: a dynamic base with 30% of its 2 MiB blocks holding data, a child with 10% written;
vhdtool commit of the VHD chain vs qemu-img commit of the same chain as qcow2 (qemu-img's vpc
driver cannot read VHD parents, so qcow2 is its nearest equivalent). compact: a dynamic VHD
whose blocks are 30% data and 20% all-zero; vhdtool compact in place vs qemu-img convert -O vpc
(how qemu-img drops zero blocks). Prints the median times and the ratio vhdtool / qemu-img.
Never fails on time.
"""
import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VHDTOOL = os.path.join(ROOT, "build", "vhdtool")
MIB = 1 << 20


def sh(*args, **kw):
    subprocess.run([str(a) for a in args], check=True, stdout=subprocess.DEVNULL, **kw)


def timed(fn):
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def sparse_raw(path, size, frac, seed):
    """A sparse raw file with frac of its 2 MiB blocks filled with random data; returns the block list."""
    rnd = random.Random(seed)
    blocks = sorted(rnd.sample(range(size // (2 * MIB)), int(size // (2 * MIB) * frac)))
    with open(path, "wb") as fh:
        fh.truncate(size)
        for b in blocks:
            fh.seek(b * 2 * MIB)
            fh.write(rnd.randbytes(2 * MIB))
    return blocks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    size = a.size_mib * MIB
    work = tempfile.mkdtemp(prefix="edit-bench-", dir=a.dir)
    try:
        base_raw = os.path.join(work, "base.raw")
        sparse_raw(base_raw, size, 0.30, "base")
        child_blocks = random.Random("child").sample(range(size // (2 * MIB)), size // (2 * MIB) // 10)
        payload = os.urandom(2 * MIB)
        # the VHD chain and the qcow2 chain, with the same blocks written in the child
        sh(VHDTOOL, "convert", "-O", "dynamic", base_raw, os.path.join(work, "base.vhd"))
        sh(VHDTOOL, "create", "-p", os.path.join(work, "base.vhd"), os.path.join(work, "child.vhd"))
        for b in child_blocks:
            sh(VHDTOOL, "write", os.path.join(work, "child.vhd"), b * 4096, input=payload)
        sh("qemu-img", "convert", "-f", "raw", "-O", "qcow2", base_raw, os.path.join(work, "base.qcow2"))
        sh("qemu-img", "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", os.path.join(work, "child.qcow2"),
           cwd=work)
        cmds = " ".join("-c 'write -P 0x5a %d 2M'" % (b * 2 * MIB) for b in child_blocks)
        sh("sh", "-c", "qemu-io -f qcow2 %s %s" % (cmds, os.path.join(work, "child.qcow2")))
        # compact input: 30% data, 20% zero-filled but allocated blocks
        sparse_raw(os.path.join(work, "c.raw"), size, 0.30, "compact")
        sh(VHDTOOL, "convert", "-O", "dynamic", os.path.join(work, "c.raw"), os.path.join(work, "c.vhd"))
        for b in random.Random("zero").sample(range(size // (2 * MIB)), size // (2 * MIB) // 5):
            sh(VHDTOOL, "write", os.path.join(work, "c.vhd"), b * 4096, input=bytes(2 * MIB))
        res = {"commit": ([], []), "compact": ([], [])}
        for _ in range(a.reps):
            for ext in ("vhd", "qcow2"):
                for n in ("base", "child"):
                    shutil.copy(os.path.join(work, "%s.%s" % (n, ext)), os.path.join(work, "r%s.%s" % (n, ext)))
            sh(VHDTOOL, "set", os.path.join(work, "rchild.vhd"), "w2ru=./rbase.vhd", "parent-name=rbase.vhd")
            sh("qemu-img", "rebase", "-u", "-f", "qcow2", "-b", "rbase.qcow2", "-F", "qcow2",
               os.path.join(work, "rchild.qcow2"), cwd=work)
            sh("sync")
            res["commit"][0].append(timed(lambda: sh(VHDTOOL, "commit", os.path.join(work, "rchild.vhd"))))
            sh("sync")
            res["commit"][1].append(timed(lambda: sh("qemu-img", "commit", "-f", "qcow2", os.path.join(work, "rchild.qcow2"))))
            shutil.copy(os.path.join(work, "c.vhd"), os.path.join(work, "rc.vhd"))
            sh("sync")
            res["compact"][0].append(timed(lambda: sh(VHDTOOL, "compact", os.path.join(work, "rc.vhd"))))
            sh("sync")
            res["compact"][1].append(timed(lambda: sh("qemu-img", "convert", "-f", "vpc", "-O", "vpc",
                                                       os.path.join(work, "c.vhd"), os.path.join(work, "q.vhd"))))
        for verb, (ours, theirs) in res.items():
            o, t = statistics.median(ours), statistics.median(theirs)
            base = "qemu-img commit (qcow2 chain)" if verb == "commit" else "qemu-img convert -O vpc"
            print("%s %d MiB: vhdtool %.2f s, %s %.2f s, ratio %.2fx" % (verb, a.size_mib, o, base, t, o / t))
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
