; writetest.asm: INT 13h write guest: writes self-describing sector patterns (op list, power-cut loop or bench), reads back and hashes, reports on COM1, exits via isa-debug-exit.
;
; Layout on disk (flat binary, LBA 0..GUEST_SECTORS-1):
;   LBA 0  boot sector (mbr.inc): loads LBA 1.. with AH=02h
;   LBA 1  parameter sector (WP_*): written by tests/qemu/test_writes.py / powercut.py / bench
;   LBA 2  stage 2 (this file)
;
; Sector pattern (lba L, tag T), 128 little-endian dwords:
;   d[0] = L, d[1] = T, x = (L * 9E3779B1h) xor T, then for d[2..127]:
;   x = x * 1664525 + 1013904223 (mod 2^32), d[i] = x.
; A sector is thus self-describing: the host checks it was written whole
; and by which write (T), wherever it ends up.
;
; Modes (WP_MODE):
;   0 ops: each op of the list, in order:
;     kind 1 write: fill `count` sectors with the pattern (T = tag), write with
;       func 43h (AL=0), 42h+1 = 43h AL=2 (verify, func byte 0x45), or 03h (CHS)
;       -> "W i= lba= n= fn= ah= cf= dapcnt="
;     kind 2 read: AH=42h `count` sectors -> "H i= lba= n= ah= cf= fnv="
;       (fnv: 32-bit FNV-1a over all the dwords read, as int13test's fnv_buf)
;   1 power cut: for k = 1, 2, ... (forever, or WP_PCCOUNT writes):
;       lba = base + (k * step) mod span, n = 1 + k mod maxn (clipped to the span),
;       pattern with T = k, AH=43h; AFTER INT 13h returns CF=0: "C k= lba= n="
;       (a failure: "E k= lba= n= ah=" and FATAL exit)
;   2 bench: WP_BCNT sectors from WP_BLBA, 64 per AH=43h call (same buffer,
;       patterned once), TSC-timed as int13test: BENCH CAL / START / END lines.
; Then "DONE" and exit code 33.

GUEST_SECTORS equ 8
%include "mbr.inc"

WP          equ 0x7E00
WP_MAGIC    equ WP + 0x00    ; "WRTP"
WP_MODE     equ WP + 0x04    ; word: 0 ops, 1 power cut, 2 bench
WP_NOPS     equ WP + 0x06    ; word: ops in the list (<= 28)
WP_PCBASE   equ WP + 0x08    ; dword: power cut: first LBA of the span
WP_PCSPAN   equ WP + 0x0C    ; dword: sectors in the span
WP_PCSTEP   equ WP + 0x10    ; dword: LBA step per write (mod span)
WP_PCMAXN   equ WP + 0x14    ; word: largest sectors per write (<= 64)
WP_PCCOUNT  equ WP + 0x18    ; dword: writes, 0 = until killed
WP_BLBA     equ WP + 0x1C    ; dword: bench start LBA
WP_BCNT     equ WP + 0x20    ; dword: bench sectors (multiple of 64)
WP_OPS      equ WP + 0x40    ; 28 x {byte kind, byte func, word count, dword lba, dword tag, dword 0}
MAX_OPS     equ 28

BUF_SEG     equ 0x1000       ; 64 KiB buffer at linear 0x10000 (127 sectors max)
LCG_A       equ 1664525
LCG_C       equ 1013904223
GOLDEN      equ 0x9E3779B1
FNV_BASIS   equ 0x811C9DC5
FNV_PRIME   equ 0x01000193

v_i     equ VAR_FREE + 0x00  ; word: op index
v_lba   equ VAR_FREE + 0x04  ; dword
v_n     equ VAR_FREE + 0x08  ; word
v_tag   equ VAR_FREE + 0x0C  ; dword
v_k     equ VAR_FREE + 0x10  ; dword: power-cut sequence
v_t0    equ VAR_FREE + 0x14  ; qword
v_left  equ VAR_FREE + 0x1C  ; dword
v_errs  equ VAR_FREE + 0x20  ; dword
v_fn    equ VAR_FREE + 0x24  ; byte
DAP     equ VAR_FREE + 0x30  ; 16 bytes
DAP_COUNT equ DAP + 2

; Default parameter sector: no ops (the harness always writes its own).
	db "WRTP"
	times 508 db 0

;===========================================================================
stage2:
	P `GUEST writetest v=1 params=`
	cmp dword [WP_MAGIC], "WRTP"
	je .ok
	P `bad`
	call crlf
	mov al, EXIT_FATAL
	jmp guest_exit
.ok:
	P `ok mode=`
	mov ax, [WP_MODE]
	call hex16
	call crlf
	mov ax, [WP_MODE]
	cmp ax, 1
	je powercut
	cmp ax, 2
	je bench
	call run_ops
finish:
	P `DONE`
	call crlf
	mov al, EXIT_DONE
	jmp guest_exit

;---------------------------------------------------------------------------
; fill: pattern into [v_n] sectors at BUF_SEG:0 for LBAs [v_lba]..., tag [v_tag]. Clobbers EAX, EBX, ECX, EDX, DI, ES.
fill:
	push BUF_SEG
	pop es
	xor di, di
	mov ebx, [v_lba]
	mov cx, [v_n]
.sec:
	push cx
	mov eax, ebx
	stosd                         ; d[0] = L
	mov eax, [v_tag]
	stosd                         ; d[1] = T
	mov eax, ebx
	imul eax, eax, GOLDEN
	xor eax, [v_tag]
	mov cx, 126
.d:
	imul eax, eax, LCG_A
	add eax, LCG_C
	stosd
	loop .d
	inc ebx
	pop cx
	loop .sec
	push 0
	pop es
	ret

; dap_io: AH = 42h/43h (AL = verify flag) on [v_n] sectors at [v_lba] <-> BUF_SEG:0, drive [v_boot_drive]. CF/AH as returned.
dap_io:
	mov word [DAP], 0x10
	mov cx, [v_n]
	mov [DAP_COUNT], cx
	mov word [DAP + 4], 0
	mov word [DAP + 6], BUF_SEG
	mov ecx, [v_lba]
	mov [DAP + 8], ecx
	mov dword [DAP + 12], 0
	mov dl, [v_boot_drive]
	mov si, DAP
	int 0x13
	ret

; chs_write: AH=03h of [v_n] sectors at [v_lba] from BUF_SEG:0 (geometry from AH=08h). CF/AH as returned.
chs_write:
	mov eax, [v_lba]
	call lba_to_chs
	jc .far
	mov dl, [v_boot_drive]
	mov al, [v_n]
	mov ah, 0x03
	push BUF_SEG
	pop es
	xor bx, bx
	int 0x13
	push 0
	pop es
	ret
.far:
	mov ah, 0xFF
	stc
	ret

; pr_res: " ah=.. cf=..\r\n"-less tail: prints ah= and cf= from AX/flags saved in BX (BH=ah, BL=cf).
pr_res:
	PH8 ` ah=`, bh
	PH8 ` cf=`, bl
	ret

;---------------------------------------------------------------------------
; run_ops: the op list.
run_ops:
	mov word [v_i], 0
.next:
	mov ax, [v_i]
	cmp ax, [WP_NOPS]
	jae .end
	cmp ax, MAX_OPS
	jae .end
	shl ax, 4
	mov si, ax
	add si, WP_OPS
	mov al, [si + 1]
	mov [v_fn], al
	mov ax, [si + 2]
	mov [v_n], ax
	mov eax, [si + 4]
	mov [v_lba], eax
	mov eax, [si + 8]
	mov [v_tag], eax
	cmp byte [si], 1
	je .write
	cmp byte [si], 2
	je .read
	jmp .step
.write:
	call fill
	cmp byte [v_fn], 0x03
	je .chs
	mov ax, 0x4300
	cmp byte [v_fn], 0x45
	jne .w43
	mov al, 2                     ; 43h AL=2: write with verify
.w43:
	call dap_io
	jmp .wdone
.chs:
	call chs_write
.wdone:
	setc bl
	mov bh, ah
	PH16 `W i=`, [v_i]
	call pr_lba_n
	PH8 ` fn=`, [v_fn]
	call pr_res
	PH16 ` dapcnt=`, [DAP_COUNT]
	call crlf
	jmp .step
.read:
	; poison the buffer so a read that moves nothing shows
	push BUF_SEG
	pop es
	xor di, di
	mov cx, [v_n]
	shl cx, 7
	mov eax, 0xDEADBEEF
	rep stosd
	push 0
	pop es
	mov ax, 0x4200
	call dap_io
	setc bl
	mov bh, ah
	PH16 `H i=`, [v_i]
	call pr_lba_n
	call pr_res
	P ` fnv=`
	mov cx, [v_n]
	call fnv_buf
	call hex32
	call crlf
.step:
	inc word [v_i]
	jmp .next
.end:
	ret

; pr_lba_n: " lba=.. n=.." from v_lba, v_n.
pr_lba_n:
	PH32 ` lba=`, [v_lba]
	PH16 ` n=`, [v_n]
	ret

;---------------------------------------------------------------------------
; powercut: sequence-numbered writes until killed (or WP_PCCOUNT); "C" only after success.
powercut:
	mov dword [v_k], 0
.next:
	inc dword [v_k]
	mov eax, [WP_PCCOUNT]
	test eax, eax
	jz .go
	cmp [v_k], eax
	ja finish
.go:
	mov eax, [v_k]
	mul dword [WP_PCSTEP]         ; EDX:EAX = k * step
	div dword [WP_PCSPAN]         ; EDX = (k * step) mod span  (k*step < span * 2^32 always here)
	mov ebx, edx                  ; offset in the span
	mov eax, [v_k]
	xor edx, edx
	movzx ecx, word [WP_PCMAXN]
	div ecx
	inc edx                       ; n = 1 + k mod maxn
	mov ecx, [WP_PCSPAN]
	sub ecx, ebx                  ; room left in the span
	cmp edx, ecx
	jbe .n
	mov edx, ecx
.n:
	mov [v_n], dx
	add ebx, [WP_PCBASE]
	mov [v_lba], ebx
	mov eax, [v_k]
	mov [v_tag], eax
	call fill
	mov ax, 0x4300
	call dap_io
	jc .err
	PH32 `C k=`, [v_k]
	call pr_lba_n
	call crlf
	jmp .next
.err:
	mov bh, ah
	PH32 `E k=`, [v_k]
	call pr_lba_n
	PH8 ` ah=`, bh
	call crlf
	mov al, EXIT_FATAL
	jmp guest_exit

;---------------------------------------------------------------------------
; bench: WP_BCNT sectors from WP_BLBA with AH=43h, 64 a call; TSC-timed.
bench:
	call tsc_calibrate
	mov eax, [WP_BLBA]
	mov [v_lba], eax
	mov [v_tag], eax
	mov word [v_n], 64
	call fill
	mov eax, [WP_BCNT]
	mov [v_left], eax
	mov dword [v_errs], 0
	PH32 `BENCH START lba=`, [v_lba]
	PH32 ` n=`, [v_left]
	call crlf
	call tsc_start
.wr:
	cmp dword [v_left], 64
	jb .end
	mov ax, 0x4300
	call dap_io
	jnc .ok
	inc dword [v_errs]
.ok:
	add dword [v_lba], 64
	sub dword [v_left], 64
	jmp .wr
.end:
	call bench_end
	jmp finish

%include "tsccal.inc"
%include "fnv.inc"

; (assembly fails here, with a negative count, if the guest outgrows GUEST_SECTORS)
	times GUEST_SECTORS * 512 - ($ - $$) db 0
