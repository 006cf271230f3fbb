"""test_trampoline.py: end-to-end checks of the firmware's real-mode side: guest state kept across INT 13h, GRUB 2 booted from a VHD, INT 18h hook, refusals, command line."""
import os
import shutil
import struct
import subprocess
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/qemu/ -> repository
BUILD = os.path.join(ROOT, "build")
ISO = os.path.join(BUILD, "vhdboot.iso")
ELF = os.path.join(BUILD, "vhdboot.elf")
VHDTOOL = os.environ.get("VHDTOOL", os.path.join(BUILD, "vhdtool"))
EXIT_DONE = (0x10 << 1) | 1

# A guest MBR that disables A20, loads FS, GS, EBP, EDI, the high half of ESP and DF=1
# with marker values, reads LBA 1 through INT 13h AH=42h and reports on COM1 every
# piece of state that did not survive: "RMCHECK failures=[...]" (empty = all kept).
RMCHECK_ASM = r"""
bits 16
org 0x7c00
	cli
	xor ax, ax
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov esp, 0x12347c00
	in al, 0x92
	and al, 0xFC
	out 0x92, al
	mov ax, 0x1234
	mov fs, ax
	mov ax, 0x5678
	mov gs, ax
	mov ebp, 0xCAFEBABE
	mov edi, 0x8BADF00D
	std
	sti
	mov si, dap
	mov ah, 0x42
	mov dl, 0x80
	int 0x13
	pushf
	pop cx
	cld
	mov bx, res
	mov al, 'C'
	test cx, 1
	jz .c
	call bad
.c:	mov al, 'D'
	test cx, 0x400
	jnz .d
	call bad
.d:	mov al, 'I'
	test cx, 0x200
	jnz .i
	call bad
.i:	mov al, 'F'
	mov dx, fs
	cmp dx, 0x1234
	je .f
	call bad
.f:	mov al, 'G'
	mov dx, gs
	cmp dx, 0x5678
	je .g
	call bad
.g:	mov al, 'P'
	cmp ebp, 0xCAFEBABE
	je .p
	call bad
.p:	mov al, 'S'
	mov edx, esp
	shr edx, 16
	cmp dx, 0x1234
	je .s
	call bad
.s:	mov al, 'E'
	cmp edi, 0x8BADF00D
	je .e
	call bad
.e:	mov al, 'A'
	push ax
	in al, 0x92
	test al, 2
	pop ax
	jz .a
	call bad
.a:	mov al, 'R'
	cmp dword [0x8000], 'LBA1'
	je .r
	call bad
.r:	mov byte [bx], 0
	mov si, msg
	call puts
	mov si, res
	call puts
	mov si, nl
	call puts
	mov al, 0x10
	out 0xf4, al
	hlt
bad:	mov [bx], al
	inc bx
	ret
puts:	lodsb
	test al, al
	jz .x
	mov dx, 0x3fd
.w:	push ax
	in al, dx
	test al, 0x20
	pop ax
	jz .w
	mov dx, 0x3f8
	out dx, al
	jmp puts
.x:	ret
dap:	db 0x10, 0
	dw 1
	dw 0x8000, 0
	dq 1
msg:	db "RMCHECK failures=[", 0
nl:	db "]", 13, 10, 0
res:	times 16 db 0
times 510-($-$$) db 0
dw 0xAA55
	db "LBA1"
	times 1024-($-$$) db 0
"""

# A guest MBR that gives up: INT 18h.
INT18_ASM = """
bits 16
org 0x7c00
	int 0x18
	jmp $
times 510-($-$$) db 0
dw 0xAA55
"""


def sh(args, **kw):
    p = subprocess.run([str(a) for a in args], capture_output=True, timeout=600, **kw)
    assert p.returncode == 0, "%s -> %d\n%s" % (args, p.returncode, p.stderr.decode("latin-1")[-3000:])
    return p


@pytest.fixture(scope="module")
def firmware():
    sh(["make", "-s", "-C", ROOT, "kernel", "tool"])
    return ISO


def nasm(tmp, name, src):
    asm = os.path.join(tmp, name + ".asm")
    out = os.path.join(tmp, name + ".bin")
    with open(asm, "w") as f:
        f.write(src)
    sh(["nasm", "-f", "bin", "-o", out, asm])
    with open(out, "rb") as f:
        return f.read()


def fixed_vhd(tmp, name, boot, size=8 << 20):
    """A fixed VHD made by qemu-img with boot written at LBA 0."""
    path = os.path.join(tmp, name + ".vhd")
    sh(["qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=fixed", path, str(size)])
    with open(path, "r+b") as f:
        f.write(boot)
    return path


def boot(iso, drives, timeout=60):
    """Run QEMU; returns (exit status, serial text). drives: [(index, path)]."""
    cmd = ["qemu-system-i386", "-accel", "tcg", "-m", "256", "-display", "none", "-serial", "stdio",
           "-no-reboot", "-monitor", "none", "-nic", "none",
           "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
           "-drive", "file=%s,media=cdrom,if=ide,index=2,readonly=on" % iso]
    for index, path in drives:
        cmd += ["-drive", "file=%s,format=raw,if=ide,index=%d" % (path, index)]
    cmd += ["-boot", "d"]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        return p.returncode, p.stdout.decode("latin-1")
    except subprocess.TimeoutExpired as e:
        return None, (e.stdout or b"").decode("latin-1")


def serial_until(iso, drives, marker, timeout=60):
    """Boot until marker shows on COM1 (or timeout); returns the serial text. QEMU itself is the
    child (no `timeout` wrapper, whose death would orphan it) and is always killed."""
    cmd = ["qemu-system-i386", "-accel", "tcg", "-m", "256", "-display", "none",
           "-serial", "stdio", "-no-reboot", "-monitor", "none", "-nic", "none",
           "-drive", "file=%s,media=cdrom,if=ide,index=2,readonly=on" % iso]
    for index, path in drives:
        cmd += ["-drive", "file=%s,format=raw,if=ide,index=%d" % (path, index)]
    cmd += ["-boot", "d"]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    watchdog = threading.Timer(timeout, p.kill)
    watchdog.start()
    out = b""
    try:
        for line in iter(p.stdout.readline, b""):
            out += line
            if marker.encode() in line:
                break
    finally:
        watchdog.cancel()
        p.kill()
        p.wait()
    return out.decode("latin-1")


def test_guest_state_survives_int13(firmware, tmp_path):
    """A20 off, FS, GS, EBP, EDI, ESP's high half, DF and IF are the guest's after our INT 13h."""
    img = fixed_vhd(str(tmp_path), "rmcheck", nasm(str(tmp_path), "rmcheck", RMCHECK_ASM))
    rc, log = boot(firmware, [(0, img)])
    assert rc == EXIT_DONE, log[-3000:]
    assert "RMCHECK failures=[]" in log, log[-3000:]


@pytest.mark.skipif(not shutil.which("grub-mkimage") or not os.path.exists("/usr/lib/grub/i386-pc/boot.img"),
                    reason="grub-pc-bin not installed")
def test_grub2_boots_from_dynamic_vhd(firmware, tmp_path):
    """GRUB 2 (i386-pc boot.img + core.img, built here) boots from a dynamic VHD: it reads its
    242-sector core through INT 13h, lists the drives and sees our memory reserved in E820."""
    tmp = str(tmp_path)
    cfg = os.path.join(tmp, "embed.cfg")
    with open(cfg, "w") as f:
        f.write("serial --unit=0 --speed=115200\nterminal_input serial\nterminal_output serial\n"
                "echo GRUB-IN-VHD start\nls\nlsmmap\necho GRUB-IN-VHD done\n")
    core = os.path.join(tmp, "core.img")
    sh(["grub-mkimage", "-O", "i386-pc", "-o", core, "-p", "(hd0)/boot/grub", "-c", cfg,
        "biosdisk", "serial", "echo", "ls", "lsmmap", "terminal"])
    with open("/usr/lib/grub/i386-pc/boot.img", "rb") as f:
        mbr = bytearray(f.read())
    struct.pack_into("<Q", mbr, 0x5C, 1)          # core.img at LBA 1
    with open(core, "rb") as f:
        data = bytes(mbr) + f.read()
    raw = os.path.join(tmp, "grub.raw")
    with open(raw, "wb") as f:
        f.write(data.ljust(16 << 20, b"\0"))
    vhd = os.path.join(tmp, "grub.vhd")
    sh([VHDTOOL, "convert", "-f", "raw", "-O", "dynamic", raw, vhd])
    plain = os.path.join(tmp, "plain.img")
    with open(plain, "wb") as f:
        f.truncate(4 << 20)
    log = serial_until(firmware, [(0, vhd), (1, plain)], "GRUB-IN-VHD done")
    assert "GRUB-IN-VHD done" in log, log[-3000:]
    assert "(hd0) (hd1)" in log, log[-3000:]
    m = __import__("re").search(r"high memory reserved (\d+) KiB at ([0-9a-f]{8})", log)
    kib, base = int(m.group(1)), int(m.group(2), 16)
    assert "base_addr = 0x%x, length = 0x%x, reserved RAM" % (base, kib * 1024) in log, log[-3000:]


def test_guest_int18_is_reported(firmware, tmp_path):
    img = fixed_vhd(str(tmp_path), "int18", nasm(str(tmp_path), "int18", INT18_ASM))
    log = serial_until(firmware, [(0, img)], "system halted", timeout=30)
    assert "the guest gave up booting (INT 18h" in log, log[-3000:]


def test_differencing_refused_and_vhd_option(firmware, tmp_path):
    """vhd=ss picks the secondary slave; a differencing VHD there is refused with a remedy."""
    tmp = str(tmp_path)
    base, diff = os.path.join(tmp, "base.vhd"), os.path.join(tmp, "diff.vhd")
    sh([VHDTOOL, "create", "-t", "dynamic", "-s", "16M", base])
    sh([VHDTOOL, "create", "-p", base, diff])
    iso = os.path.join(tmp, "ss.iso")
    sh(["sh", os.path.join(ROOT, "tools", "mkiso.sh"), "vhd=ss bogus", iso], env=dict(os.environ, VHDBOOT_ELF=ELF))
    plain = os.path.join(tmp, "plain.img")
    with open(plain, "wb") as f:
        f.truncate(4 << 20)
    log = serial_until(iso, [(0, plain), (3, diff)], "handing back to the BIOS", timeout=30)
    assert 'cmdline: "vhd=ss bogus"' in log, log[-3000:]
    assert 'first "bogus"' in log, log[-3000:]
    assert "vhd: using ATA ss" in log, log[-3000:]
    assert "ERROR: the VHD is a differencing image" in log, log[-3000:]
    assert "remedy:" in log, log[-3000:]
