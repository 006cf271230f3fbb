"""test_fuzz_fs.py: a short libFuzzer run of build/fuzz_fs (fs/fs.h: FAT, exFAT, NTFS) over small volumes made at test time."""
import os
import shutil
import subprocess

from conftest import ROOT, BUILD, run

FUZZER = os.path.join(BUILD, "fuzz_fs")
SECONDS = int(os.environ.get("FUZZ_TEST_SECONDS", "20"))
MT_ENV = dict(os.environ, MTOOLS_SKIP_CHECK="1")


def seeds(d, tmp):
    """A FAT12 volume (256 KiB), an exFAT volume (2 MiB, cut after its last nonzero byte) and an NTFS volume
    (2 MiB), each with /images/a.vhd and a long-named file in /vhd."""
    os.makedirs(d)
    fat = os.path.join(d, "fat12")
    with open(fat, "wb") as f:
        f.truncate(256 << 10)
    run(["mkfs.fat", "-F", "12", fat])
    src = os.path.join(tmp, "a")
    with open(src, "wb") as f:
        f.write(os.urandom(3000))
    for args in (["mmd", "-i", fat, "::/images", "::/vhd"], ["mcopy", "-i", fat, src, "::/images/a.vhd"],
                 ["mcopy", "-i", fat, src, "::/vhd/Some Long Name.VHD"]):
        subprocess.run(args, env=MT_ENV, check=True, capture_output=True, timeout=60)
    mnt = os.path.join(tmp, "mnt")
    os.makedirs(mnt)
    ex = os.path.join(tmp, "ex.img")
    with open(ex, "wb") as f:
        f.truncate(2 << 20)
    run(["mkfs.exfat", "-b", "4K", "-c", "512", ex])
    loop = run(["losetup", "-f", "--show", ex], text=True).stdout.strip()
    try:
        run(["mount.exfat-fuse", loop, mnt])
        try:
            os.makedirs(os.path.join(mnt, "images"))
            os.makedirs(os.path.join(mnt, "vhd"))
            shutil.copyfile(src, os.path.join(mnt, "images", "a.vhd"))
            shutil.copyfile(src, os.path.join(mnt, "vhd", "Some Long Name.VHD"))
        finally:
            run(["umount", mnt])
    finally:
        run(["losetup", "-d", loop])
    data = open(ex, "rb").read()
    open(os.path.join(d, "exfat"), "wb").write(data[:len(data.rstrip(b"\0"))])
    nt = os.path.join(d, "ntfs")
    with open(nt, "wb") as f:
        f.truncate(2 << 20)
    run(["mkntfs", "-F", "-Q", "-q", "-c", "512", nt])
    run(["ntfs-3g", nt, mnt])
    try:
        os.makedirs(os.path.join(mnt, "images"))
        shutil.copyfile(src, os.path.join(mnt, "images", "a.vhd"))
    finally:
        run(["umount", mnt])


def test_fuzz_fs_short_run(tmp_path):
    run(["make", "-s", "-C", ROOT, os.path.relpath(FUZZER, ROOT)], timeout=600)
    seeds(str(tmp_path / "seeds"), str(tmp_path))
    corpus = tmp_path / "corpus"
    artifacts = tmp_path / "artifacts"
    corpus.mkdir()
    artifacts.mkdir()
    res = run([FUZZER, "-max_total_time=%d" % SECONDS, "-max_len=2097152", "-timeout=10", "-rss_limit_mb=2048",
               "-print_final_stats=1", "-artifact_prefix=%s/" % artifacts, corpus, tmp_path / "seeds"],
              rc=None, timeout=SECONDS + 120, text=True)
    crashes = os.listdir(artifacts)
    assert res.returncode == 0 and not crashes, (
        "fuzzer found a problem (exit %d), artifacts %s in %s\n%s" % (
            res.returncode, crashes, artifacts, res.stderr[-6000:]))
    assert "stat::number_of_executed_units" in res.stderr, "fuzzer did not run to completion\n" + res.stderr[-3000:]
