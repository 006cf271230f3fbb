"""test_vhdx_images.py: the vhdx/ library (through build/vhdxprobe) against qemu-img, and log replay.

- qemu-img's VHDX images (fixed and dynamic, block sizes 1, 8, 32, 256 MiB, log sizes 1 and
  4 MiB) read back byte-exactly;
- our images (fixed, dynamic, every block size, after scattered writes) accepted by
  `qemu-img check` and read back by `qemu-img convert -O raw` byte-exactly;
- differencing children (qemu-img has no VHDX differencing) against a Python model;
- make_vhdx_log.py's pending logs replayed read-only (overlay, file untouched) and writable
  (into the file: qemu-img then opens it and reads what the replay must give);
- libvhdi (vhdiinfo, vhdimount) reads our fixed, dynamic and differencing images;
- qemu-io killed mid-write: its leftovers replayed by us and by qemu-img alike.
The probe runs plain and with ASan+UBSan.
"""
import json
import os
import random
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT, run, sha256
import make_vhdx_log

MIB = 1 << 20


@pytest.fixture(scope="session")
def probes():
    run(["make", "-s", "-C", ROOT, "build/vhdxprobe", "build/vhdxprobe-san"], timeout=600)
    return os.path.join(BUILD, "vhdxprobe"), os.path.join(BUILD, "vhdxprobe-san")


@pytest.fixture(params=["plain", "san"])
def probe(request, probes):
    return probes[0] if request.param == "plain" else probes[1]


@pytest.fixture(scope="session")
def qemu_img_bin():
    q = shutil.which("qemu-img")
    if not q:
        pytest.skip("qemu-img not installed (Debian qemu-utils)")
    return q


def info(probe, img):
    out = run([probe, "info", img], text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def patterned_raw(path, size, seed):
    """A sparse raw disk with random runs: at 0, in the middle, across a block boundary and at the end."""
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        f.truncate(size)
        for off in (0, size // 2 - 3 * 512, size - 8192, rnd.randrange(0, size - 65536) & ~511):
            f.seek(off)
            f.write(rnd.randbytes(min(65536, size - off)))


def same_file(a, b):
    return subprocess.run(["cmp", "-s", a, b]).returncode == 0


@pytest.mark.parametrize("sub", ["fixed", "dynamic"])
@pytest.mark.parametrize("bs", [1, 8, 32, 256])
def test_reads_qemu_images(tmp_path, probes, qemu_img_bin, sub, bs):
    size = 2 * bs * MIB + 3 * MIB + 512 * 7          # a partial last block
    raw, img, out = tmp_path / "d.raw", tmp_path / "d.vhdx", tmp_path / "out.raw"
    patterned_raw(raw, size, bs)
    run([qemu_img_bin, "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=%s,block_size=%dM" % (sub, bs), raw, img])
    plain, san = probes
    i = info(plain, img)
    assert int(i["block_size"]) == bs * MIB and int(i["virtual_size"]) == size
    assert i["leave_allocated"] == ("1" if sub == "fixed" else "0")
    for p in (plain, san) if bs <= 8 else (plain,):
        run([p, "cat", img, out])
        assert same_file(raw, out), "%s %d MiB: read differs from the raw disk" % (sub, bs)
    assert run([plain, "check", img], text=True).stdout.strip() == "defects 0"


@pytest.mark.parametrize("log", [1, 4])
def test_reads_qemu_log_sizes(tmp_path, probe, qemu_img_bin, log):
    raw, img, out = tmp_path / "d.raw", tmp_path / "d.vhdx", tmp_path / "out.raw"
    patterned_raw(raw, 9 * MIB, log)
    run([qemu_img_bin, "convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M,log_size=%dM" % log, raw, img])
    assert int(info(probe, img)["log_length"]) == log * MIB
    run([probe, "cat", img, out])
    assert same_file(raw, out)


def write_model(probe, img, model, size, seed, n=6):
    """Scattered writes of random data through the probe, mirrored into model (a bytearray of the disk)."""
    rnd = random.Random(seed)
    spots = [0, size - 4096, rnd.randrange(0, size // 512 - 300) * 512]
    spots += [rnd.randrange(0, size // 512 - 300) * 512 for _ in range(n - len(spots))]
    for k, off in enumerate(spots):
        data = rnd.randbytes(rnd.choice([512, 4096, 70000 // 512 * 512, 150000 // 512 * 512]))
        data = data[:size - off]
        src = os.path.join(os.path.dirname(img), "w%d.bin" % k)
        with open(src, "wb") as f:
            f.write(data)
        run([probe, "write", img, off // 512, src])
        model[off:off + len(data)] = data


@pytest.mark.parametrize("kind", ["fixed", "dynamic"])
@pytest.mark.parametrize("bs", [1, 8, 32, 256])
def test_ours_read_by_qemu(tmp_path, probes, qemu_img_bin, kind, bs):
    plain, san = probes
    size = 2 * bs * MIB + 5 * MIB if kind == "dynamic" else 2 * bs * MIB + MIB
    img, out = str(tmp_path / "ours.vhdx"), str(tmp_path / "q.raw")
    run([plain, "create", kind, size, bs * MIB, img])
    run([qemu_img_bin, "check", img])
    model = bytearray(size)
    write_model(san if bs <= 8 else plain, img, model, size, bs)
    res = run([qemu_img_bin, "check", img], text=True)
    assert "No errors" in res.stdout
    run([qemu_img_bin, "convert", "-O", "raw", img, out])
    with open(out, "rb") as f:
        assert f.read() == bytes(model), "qemu-img reads something else than what was written"
    run([plain, "cat", img, out])
    with open(out, "rb") as f:
        assert f.read() == bytes(model)
    assert run([plain, "check", img], text=True).stdout.strip() == "defects 0"
    i = info(plain, img)
    assert i["log_guid"] == "{%s}" % "-".join(["0" * 8, "0" * 4, "0" * 4, "0" * 4, "0" * 12]), "log left open"


def test_write_updates_data_write_guid(tmp_path, probe):
    img = str(tmp_path / "g.vhdx")
    run([probe, "create", "dynamic", 8 * MIB, MIB, img])
    before = info(probe, img)
    src = tmp_path / "x.bin"
    src.write_bytes(b"\x55" * 512)
    run([probe, "write", img, 3, src])
    after = info(probe, img)
    assert after["data_write"] != before["data_write"] and after["file_write"] != before["file_write"]
    assert int(after["seq"]) > int(before["seq"])
    assert int(after["blocks_full"]) == 1


def test_differencing_chain(tmp_path, probes):
    plain, san = probes
    size = 12 * MIB + 4096
    base, mid, top = (str(tmp_path / n) for n in ("base.vhdx", "mid.vhdx", "top.vhdx"))
    run([plain, "create", "dynamic", size, MIB, base])
    model = bytearray(size)
    write_model(plain, base, model, size, 1)
    run([plain, "create", "diff", base, "base.vhdx", mid])
    write_model(san, mid, model, size, 2)
    run([plain, "create", "diff", mid, "mid.vhdx", top])
    write_model(san, top, model, size, 3)
    i = info(plain, top)
    assert i["has_parent"] == "1" and i["candidate0"] == "relative_path mid.vhdx"
    assert int(i["blocks_partial"]) >= 1
    out = str(tmp_path / "out.raw")
    run([san, "cat", top, out])
    with open(out, "rb") as f:
        assert f.read() == bytes(model)
    assert run([plain, "check", top], text=True).stdout.strip() == "defects 0"
    # A write to the parent changes its DataWriteGuid: the child's linkage no longer matches.
    src = tmp_path / "y.bin"
    src.write_bytes(b"\x11" * 512)
    run([plain, "write", mid, 0, src])
    res = run([plain, "cat", top, out], rc=2, text=True)
    assert "error parent-linkage" in res.stdout


def test_log_replay(tmp_path, probes, qemu_img_bin):
    plain, san = probes
    manifest = make_vhdx_log.write_all(str(tmp_path / "logs"))
    assert len(manifest) >= 9
    for name, m in manifest.items():
        exp = str(tmp_path / (name + ".exp.raw"))
        run([qemu_img_bin, "convert", "-O", "raw", m["expected"], exp])
        # Read-only: replayed into the overlay, the file untouched.
        before = sha256(m["path"])
        i = info(san, m["path"])
        assert int(i["log_replayed"]) == m["entries"], name
        assert int(i["state"], 16) & (0x8 if m["entries"] else 0x10), name
        assert not int(i["state"], 16) & 0x2, "%s: a region table copy still bad after the replay" % name
        out = str(tmp_path / (name + ".out.raw"))
        run([san, "cat", m["path"], out])
        assert same_file(out, exp), "%s: read-only replay reads differently" % name
        assert sha256(m["path"]) == before, "%s: a read-only open changed the file" % name
        # Writable: replayed into the file; then qemu-img opens it clean and reads the same disk.
        w = str(tmp_path / (name + ".w.vhdx"))
        shutil.copy(m["path"], w)
        res = run([san, "replay", w], text=True)
        assert "log_replayed=%d" % m["entries"] in res.stdout
        assert info(plain, w)["state"] == "0x0", name
        run([qemu_img_bin, "check", w])
        run([qemu_img_bin, "convert", "-O", "raw", w, out])
        assert same_file(out, exp), "%s: writable replay left another disk" % name
        # qemu's own replay agrees, or (torn entries, which the specification says to ignore) refuses.
        q = str(tmp_path / (name + ".q.vhdx"))
        shutil.copy(m["path"], q)
        r = subprocess.run([qemu_img_bin, "check", "-r", "all", q], capture_output=True)
        if r.returncode == 0:
            run([qemu_img_bin, "convert", "-O", "raw", q, out])
            assert same_file(out, exp), "%s: qemu replays differently" % name
        else:
            assert name in ("torn-sector", "all-torn"), "qemu refused %s: %s" % (name, r.stderr)


def test_log_generator_cli(tmp_path):
    res = run(["python3", os.path.join(ROOT, "tests", "host", "make_vhdx_log.py"), tmp_path], text=True)
    assert set(json.loads(res.stdout)) == set(make_vhdx_log.scenarios(make_vhdx_log.base_image(str(tmp_path))))


def vhdi_fields(vhdiinfo, img):
    out = run([vhdiinfo, img], text=True).stdout
    return {k.strip(): v.strip() for k, v in (l.split(":", 1) for l in out.splitlines() if ":" in l)}


@pytest.mark.parametrize("kind", ["fixed", "dynamic", "diff"])
def test_libvhdi_reads_ours(tmp_path, probes, vhdiinfo, vhdimount, kind):
    """libvhdi (vhdiinfo, vhdimount) as a second independent reader of our images, chains included."""
    plain, san = probes
    size = 10 * MIB + 512 * 3
    base = str(tmp_path / "base.vhdx")
    run([plain, "create", "dynamic" if kind == "diff" else kind, size, 2 * MIB, base])
    model = bytearray(size)
    write_model(san, base, model, size, 21)
    img = base
    if kind == "diff":
        img = str(tmp_path / "child.vhdx")
        run([plain, "create", "diff", base, "base.vhdx", img])
        write_model(san, img, model, size, 22)
    f = vhdi_fields(vhdiinfo, img)
    assert f["Format"].startswith("VHDX")
    assert f["Disk type"] == {"fixed": "Fixed", "dynamic": "Dynamic", "diff": "Differential"}[kind]
    assert "(%d bytes)" % size in f["Media size"]
    ours = info(plain, img)
    assert "{%s}" % f["Identifier"] == ours["data_write"]
    if kind == "diff":
        assert "{%s}" % f["Parent identifier"] == ours["parent_linkage"]
    with vhdimount(img) as disk:
        with open(disk, "rb") as fh:
            assert fh.read() == bytes(model), "libvhdi reads something else than what was written"


def test_qemu_killed_mid_write(tmp_path, probes, qemu_img_bin):
    """qemu-io killed (SIGKILL) at random moments of a long write to a dynamic VHDX: whatever it left
    (a log to replay, a LogGuid with nothing valid, or a clean file) reads the same through our
    read-only replay, our writable replay (then read by qemu-img) and qemu's own `check -r all`.
    Stops at the first image with a pending log (or after 15 kills: the kill times are random, so
    finding none skips rather than fails)."""
    qemu_io = shutil.which("qemu-io")
    if not qemu_io:
        pytest.skip("qemu-io not installed (Debian qemu-utils)")
    plain, san = probes
    rnd = random.Random(11)
    img, ours, theirs = str(tmp_path / "k.vhdx"), str(tmp_path / "ours.raw"), str(tmp_path / "q.raw")
    pending = trials = 0
    while not pending and trials < 15:
        trials += 1
        run([qemu_img_bin, "create", "-q", "-f", "vhdx", "-o", "block_size=1M", img, "96M"])
        p = subprocess.Popen([qemu_io, "-c", "write -P 0x5a 0 80M", img],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            p.wait(timeout=rnd.uniform(0.03, 0.3))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        state = int(info(plain, img)["state"], 16)
        pending += bool(state & 0x8)
        run([san if pending else plain, "cat", img, ours])
        w = str(tmp_path / "w.vhdx")
        shutil.copy(img, w)
        run([san if pending else plain, "replay", w])
        run([qemu_img_bin, "check", "-q", w])
        run([qemu_img_bin, "convert", "-O", "raw", w, theirs])
        assert same_file(ours, theirs), "trial %d: our two replays disagree" % trials
        run([qemu_img_bin, "check", "-q", "-r", "all", img])
        run([qemu_img_bin, "convert", "-O", "raw", img, theirs])
        assert same_file(ours, theirs), "trial %d: qemu's replay reads differently" % trials
    print("%d trials, %d left a log to replay" % (trials, pending))
    if not pending:
        pytest.skip("no kill landed between qemu's log write and its clean-up in %d trials" % trials)
