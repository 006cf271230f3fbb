; qfuzz.asm: INT 13h fuzz guest: thousands of random calls (valid and invalid) from a seeded PRNG, each result on COM1 for the host's oracle (tests/qemu/qfuzz.py), then the checksum of vhdboot's resident code.
;
; Layout on disk (flat binary, LBA 0..GUEST_SECTORS-1):
;   LBA 0  boot sector (mbr.inc): loads LBA 1.. with AH=02h
;   LBA 1  parameter sector (P_*): written by tests/qemu/qfuzz.py
;   LBA 2  stage 2 (this file)
;
; Every random choice follows gen_call in tests/qemu/qfuzz.py step by step
; (same xorshift32 stream, same order of draws): change both together.
;
; Output (lower-case hex, fixed width):
;   QF v=1 seed= calls= stub= kbase= chs=C/H/S res= stubsum=   start: where
;        vhdboot's low stub and resident image are, and their checksums now
;   R idx AHDL cf eax ebx ecx edx esi edi ebp ds es dapw bda hash
;        one per call: registers after it, the DAP's first dword, BDA 40:74,
;        FNV of the buffer window (811c9dc5 when none)
;   M idx lo= hi= hma=   every P_BLOCK calls and after the last: FNV of the three arenas
;   END calls= res= stubsum=   the checksums again; then exit code 33
;
; Checksums (FNV-1a over dwords, as kernel/resident.c resident_checksum_log):
;   res     [kbase, kbase + P_ROLEN): vhdboot's code and read-only data
;   stubsum [stub + P_STUBOFF, + P_STUBLEN): the low stub's code
; The stub is at IVT 13h's segment (its tag checked); kbase is the base of
; descriptor 08h of the GDT the stub's GDTR copy points at. Memory above
; 1 MiB is read in unreal mode (FS with a 4 GiB limit; every INT 13h call
; reloads FS, so `unreal` runs again before each such access).

GUEST_SECTORS equ 24
%include "mbr.inc"

; ---- parameter sector (LBA 1, loaded at 0x7E00)
PARAM      equ 0x7E00
P_MAGIC    equ PARAM + 0x00          ; "QFZP"
P_SEED     equ PARAM + 0x04          ; dword
P_NCALLS   equ PARAM + 0x08          ; dword
P_BLOCK    equ PARAM + 0x0C          ; word: calls per M line (>= 1)
P_SECTORS  equ PARAM + 0x10          ; dword: sectors of drive 80h
P_SCRATCH  equ PARAM + 0x14          ; dword: first LBA writes may target
P_ROLEN    equ PARAM + 0x20          ; dword
P_STUBOFF  equ PARAM + 0x24          ; word
P_STUBLEN  equ PARAM + 0x26          ; word
P_GDTROFF  equ PARAM + 0x28          ; word: rm_gdtr in the stub
P_TAGOFF   equ PARAM + 0x2A          ; word: rm_tag ("VHDBOOT\0") in the stub
P_FNTAB    equ PARAM + 0x40          ; 64 bytes: AH per draw (FFh: random AH)

FNV_BASIS  equ 0x811C9DC5
FNV_PRIME  equ 0x01000193
ARENA_SALT equ 0x9E3779B9

LO         equ 0x10000               ; tracked arenas (the host models them)
LO_SIZE    equ 0x40000
HI         equ 0x200000
HI_SIZE    equ 0x40000
HMA        equ 0x100000              ; reached as FFFF:0010..FFFF:FFFF (A20 on); buffers run on past 10FFEFh
HMA_SIZE   equ 0x30000
JUNK       equ 0x50000               ; other drives' buffers (not tracked)
JUNK_SIZE  equ 0x20000
DAP_BASE   equ 0x0780                ; DAP area (DAP_AREA bytes, cleared before each DAP call)
DAP_AREA   equ 0x20
SECTOR     equ 512

; ---- variables (after mbr.inc's)
v_x        equ VAR_FREE + 0x00       ; dword: PRNG state
v_i        equ VAR_FREE + 0x04       ; dword: call index
v_stub     equ VAR_FREE + 0x08       ; dword: linear address of the low stub
v_kbase    equ VAR_FREE + 0x0C       ; dword
v_chs      equ VAR_FREE + 0x10       ; dword: cyls * heads * spt
i_eax      equ VAR_FREE + 0x14       ; input registers: eax ebx ecx edx esi edi ebp (dwords), ds es (words)
i_ebx      equ i_eax + 4
i_ecx      equ i_eax + 8
i_edx      equ i_eax + 12
i_esi      equ i_eax + 16
i_edi      equ i_eax + 20
i_ebp      equ i_eax + 24
i_ds       equ i_eax + 28
i_es       equ i_eax + 30
w_lin      equ VAR_FREE + 0x34       ; dword: hash window (0 bytes: none)
w_len      equ VAR_FREE + 0x38
v_daplin   equ VAR_FREE + 0x3C       ; dword: DAP address for the R line (0: none)
v_ah       equ VAR_FREE + 0x40       ; byte
v_dl       equ VAR_FREE + 0x41       ; byte
v_ours     equ VAR_FREE + 0x42       ; byte: DL = 80h
v_rndfn    equ VAR_FREE + 0x43       ; byte
v_n        equ VAR_FREE + 0x44       ; dword: sectors the buffer is sized for
v_tmp      equ VAR_FREE + 0x48       ; dword
v_flat     equ VAR_FREE + 0x4C       ; byte
v_edd      equ VAR_FREE + 0x50       ; dword: EDD size word's address (0: none)
v_eddsz    equ VAR_FREE + 0x54       ; word
o_ebp      equ VAR_FREE + 0x58       ; outputs beyond mbr.inc's r_*
o_ds       equ VAR_FREE + 0x5C
v_blk      equ VAR_FREE + 0x60       ; word: calls left in this block
d_size     equ VAR_FREE + 0x64       ; DAP being built (24 bytes): size res count off seg lba flat
d_res      equ d_size + 1
d_cnt      equ d_size + 2
d_off      equ d_size + 4
d_seg      equ d_size + 6
d_lba      equ d_size + 8
d_flat     equ d_size + 16
v_sp       equ VAR_FREE + 0x80       ; word: SP around the call

; R(n): EAX = rnd mod n (n an immediate or register other than EDX/EAX). Clobbers EDX.
%macro RMOD 1
	call rnd
	mov ecx, %1
	xor edx, edx
	div ecx
	mov eax, edx
%endmacro

;---- the parameter sector's place (LBA 1): the host writes the real one; this default is refused
param_sector:
	db "none"
	times 512 - ($ - param_sector) db 0

;===========================================================================
stage2:
	P `QF v=1 seed=`
	cmp dword [P_MAGIC], "QFZP"
	je .pok
	P `bad params`
	call crlf
	mov al, EXIT_FATAL
	jmp guest_exit
.pok:
	in al, 0x92                       ; A20 on (fast gate, never bit 0 = reset): the HMA arena is real memory
	or al, 2
	and al, 0xFE
	out 0x92, al
	mov eax, [P_SEED]
	call hex32
	test eax, eax
	jnz .s1
	inc eax
.s1:
	mov [v_x], eax
	P ` calls=`
	mov eax, [P_NCALLS]
	call hex32
	cmp word [P_BLOCK], 0
	jne .b1
	mov word [P_BLOCK], 1
.b1:
	; the low stub: IVT 13h's segment, tag checked
	movzx eax, word [0x13 * 4 + 2]
	shl eax, 4
	mov [v_stub], eax
	P ` stub=`
	call hex32
	call unreal
	mov esi, [v_stub]
	movzx eax, word [P_TAGOFF]
	add esi, eax
	cmp dword [fs:esi], "VHDB"
	jne .notours
	cmp dword [fs:esi + 4], `OOT\0`
	jne .notours
	; kbase: descriptor 08h of the GDT at the stub's GDTR copy
	mov esi, [v_stub]
	movzx eax, word [P_GDTROFF]
	add esi, eax
	mov esi, [fs:esi + 2]
	add esi, 8
	mov eax, [fs:esi + 2]             ; base 15..0 and 23..16 (+ access byte)
	and eax, 0x00FFFFFF
	mov bl, [fs:esi + 7]
	mov [v_kbase], eax
	mov [v_kbase + 3], bl
	P ` kbase=`
	mov eax, [v_kbase]
	call hex32
	P ` chs=`
	mov ax, [v_cyls]
	call hex16
	P `/`
	mov ax, [v_heads]
	call hex16
	P `/`
	mov ax, [v_spt]
	call hex16
	movzx eax, word [v_cyls]
	movzx ecx, word [v_heads]
	mul ecx
	movzx ecx, word [v_spt]
	mul ecx
	mov [v_chs], eax
	call pr_sums
	call crlf

	call init_arenas
	mov dword [v_i], 0
	mov ax, [P_BLOCK]
	mov [v_blk], ax
.loop:
	mov eax, [v_i]
	cmp eax, [P_NCALLS]
	jae .end
	call gen_call
	call do_call
	call pr_record
	dec word [v_blk]
	jz .m
	mov eax, [v_i]
	inc eax
	cmp eax, [P_NCALLS]
	jne .next
.m:
	call pr_arenas
	mov ax, [P_BLOCK]
	mov [v_blk], ax
.next:
	inc dword [v_i]
	jmp .loop
.end:
	P `END calls=`
	mov eax, [v_i]
	call hex32
	call pr_sums
	call crlf
	mov al, EXIT_DONE
	jmp guest_exit
.notours:
	call crlf
	P `FATAL no vhdboot stub at IVT 13h`
	call crlf
	mov al, EXIT_FATAL
	jmp guest_exit

;---------------------------------------------------------------------------
; unreal: FS = 0 with a 4 GiB limit (flat data descriptor, then back to real mode). Preserves all but flags.
unreal:
	push eax
	push bx
	pushf
	cli
	o32 lgdt [cs:qf_gdtr]
	mov eax, cr0
	or al, 1
	mov cr0, eax
	jmp $ + 2
	mov bx, 8
	mov fs, bx
	and al, 0xFE
	mov cr0, eax
	jmp $ + 2
	xor bx, bx
	mov fs, bx
	popf
	pop bx
	pop eax
	ret

align 8
qf_gdt:
	dq 0
	dw 0xFFFF, 0
	db 0, 0x92, 0xCF, 0               ; 08h: data, base 0, 4 GiB
qf_gdtr:
	dw 15
	dd qf_gdt

; fnv32: EAX = FNV-1a of the ECX / 4 dwords at linear ESI (any address). Clobbers ECX, ESI.
fnv32:
	call unreal
	mov eax, FNV_BASIS
	shr ecx, 2
	jz .done
.l:
	xor eax, [fs:esi]
	imul eax, eax, FNV_PRIME
	add esi, 4
	dec ecx
	jnz .l
.done:
	ret

; pr_sums: print " res=… stubsum=…" (the checksums of vhdboot's resident code now). Clobbers EAX, ECX, ESI.
pr_sums:
	P ` res=`
	mov esi, [v_kbase]
	mov ecx, [P_ROLEN]
	call fnv32
	call hex32
	P ` stubsum=`
	mov esi, [v_stub]
	movzx eax, word [P_STUBOFF]
	add esi, eax
	movzx ecx, word [P_STUBLEN]
	call fnv32
	call hex32
	ret

; pr_arenas: "M idx lo= hi=".
pr_arenas:
	P `M `
	mov eax, [v_i]
	call hex32
	P ` lo=`
	mov esi, LO
	mov ecx, LO_SIZE
	call fnv32
	call hex32
	P ` hi=`
	mov esi, HI
	mov ecx, HI_SIZE
	call fnv32
	call hex32
	P ` hma=`
	mov esi, HMA
	mov ecx, HMA_SIZE
	call fnv32
	call hex32
	call crlf
	ret

; init_arenas: the three arenas (low, high, HMA) from xorshift32 seeded with seed ^ ARENA_SALT (qfuzz.py Mem).
init_arenas:
	push dword [v_x]
	mov eax, [v_x]
	xor eax, ARENA_SALT
	jnz .s
	inc eax
.s:
	mov [v_x], eax
	call unreal
	mov edi, LO
	mov ecx, LO_SIZE / 4
	call .fill
	mov edi, HI
	mov ecx, HI_SIZE / 4
	call .fill
	mov edi, HMA
	mov ecx, HMA_SIZE / 4
	call .fill
	pop dword [v_x]
	ret
.fill:
	call rnd
	mov [fs:edi], eax
	add edi, 4
	dec ecx
	jnz .fill
	ret

;---------------------------------------------------------------------------
; rnd: EAX = next xorshift32 (13, 17, 5). Preserves all else.
rnd:
	push edx
	mov eax, [v_x]
	mov edx, eax
	shl edx, 13
	xor eax, edx
	mov edx, eax
	shr edx, 17
	xor eax, edx
	mov edx, eax
	shl edx, 5
	xor eax, edx
	mov [v_x], eax
	pop edx
	ret

; split: EAX = linear (< 1 MiB), EBX = v -> CX = seg, DX = off, off = min(v & FFF0h, lin & ~15) | (lin & 15).
split:
	mov edx, ebx
	and edx, 0xFFF0
	mov ecx, eax
	and ecx, ~15
	cmp edx, ecx
	jbe .a
	mov edx, ecx
.a:
	mov ecx, eax
	and ecx, 15
	or edx, ecx
	mov ecx, eax
	sub ecx, edx
	shr ecx, 4
	ret

; in_fn: ZF=1 if AL is in the list at SI (CX bytes). Clobbers SI, CX.
in_fn:
	cmp al, [si]
	je .y
	inc si
	loop in_fn
	or sp, sp                       ; ZF=0 (SP is never 0)
.y:
	ret

ours_list: db 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x08, 0x09, 0x0C, 0x0D, 0x10, 0x11, 0x14, 0x15, 0x16
           db 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4E
OURS_N     equ $ - ours_list
xfer_list: db 0x02, 0x03, 0x04, 0x05, 0x42, 0x43, 0x44, 0x47
XFER_N     equ $ - xfer_list

;---------------------------------------------------------------------------
; gen_call: draw the next call into i_*, w_*, v_daplin, v_edd (qfuzz.py gen_call). Clobbers all.
gen_call:
	xor eax, eax
	mov [w_lin], eax
	mov [w_len], eax
	mov [v_daplin], eax
	mov [v_edd], eax
	mov byte [v_rndfn], 0
	call rnd
	mov ebx, eax
	and ebx, 63
	mov bl, [P_FNTAB + bx]
	cmp bl, 0xFF
	jne .fn
	mov byte [v_rndfn], 1
	mov bl, ah                        ; (r >> 8) & FFh
	mov al, bl
	mov si, ours_list
	mov cx, OURS_N
	call in_fn
	jne .fn
	mov bl, 0x4F
.fn:
	mov [v_ah], bl
	mov di, i_eax
	mov cx, 7
.regs:
	call rnd
	mov [di], eax
	add di, 4
	loop .regs
	call rnd
	mov [i_es], ax
	shr eax, 16
	mov [i_ds], ax
	; drive
	call rnd
	mov byte [v_dl], 0x80
	mov ebx, eax
	and bl, 15
	cmp bl, 12
	jb .dl
	cmp byte [v_rndfn], 0
	jne .dl
	mov [v_dl], ah                    ; (r >> 8) & FFh
	push eax
	mov al, [v_ah]
	mov si, xfer_list
	mov cx, XFER_N
	call in_fn
	pop eax
	jne .dl
	mov bl, [v_ah]
	cmp bl, 0x02
	je .rd
	cmp bl, 0x42
	jne .none
.rd:
	test eax, 1 << 24
	jz .none
	mov byte [v_dl], 0x81
	jmp .dl
.none:
	shr eax, 16
	and eax, 0xFF
	mov ecx, 0x5E
	xor edx, edx
	div ecx
	add dl, 0x82
	mov [v_dl], dl
.dl:
	mov al, [v_dl]
	cmp al, 0x80
	sete [v_ours]
	mov al, [v_ah]
	mov [i_eax + 1], al
	mov al, [v_dl]
	mov [i_edx], al
	mov al, [v_ah]
	cmp al, 0x05
	ja .notchs
	cmp al, 0x02
	jae g_chs
.notchs:
	cmp al, 0x42
	jb .other
	cmp al, 0x44
	jbe g_dap
	cmp al, 0x47
	je g_dap
	cmp al, 0x48
	je g_edd
.other:
	cmp al, 0x4B
	jne .n4b
	mov word [i_ds], JUNK >> 4
	mov word [i_esi], 0
	ret
.n4b:
	cmp al, 0x41
	jne .ret
	call rnd
	test al, 1
	jz .ret
	mov word [i_ebx], 0x55AA
.ret:
	ret

; g_chs: AH=02h-05h: AL, CX, DH, ES:BX.
g_chs:
	call rnd
	mov ebx, eax
	shr ebx, 8
	and ebx, 15                       ; kk
	shr eax, 16
	and eax, 0xFF                     ; v
	test ebx, ebx
	jnz .k1
	xor eax, eax
	jmp .al
.k1:
	cmp ebx, 1
	jne .k2
	mov ecx, 0x7F
	xor edx, edx
	div ecx
	lea eax, [edx + 0x81]
	jmp .al
.k2:
	mov ecx, 8
	cmp ebx, 8
	jb .k3
	mov ecx, 128
.k3:
	xor edx, edx
	div ecx
	lea eax, [edx + 1]
.al:
	mov [i_eax], al
	cmp eax, 128
	jbe .n
	mov eax, 128
.n:
	mov [v_n], eax
	; the CHS address
	call rnd
	mov ebx, eax
	and ebx, 15                       ; kk
	shr eax, 8
	mov [v_tmp], eax                  ; x
	cmp byte [v_ours], 0
	je .valid
	cmp ebx, 4
	jb .bad
.valid:
	mov eax, [v_tmp]
	xor edx, edx
	mov ecx, [v_chs]
	mov bl, [v_ah]
	cmp bl, 0x03
	je .w
	cmp bl, 0x05
	jne .r
.w:
	sub ecx, [P_SCRATCH]
	div ecx
	mov eax, edx
	add eax, [P_SCRATCH]
	jmp .lba
.r:
	div ecx
	mov eax, edx
.lba:
	; cyl = lba / (H*S), head = (lba / S) % H, sec = lba % S + 1
	movzx ecx, word [v_spt]
	xor edx, edx
	div ecx
	inc edx
	mov [v_tmp], edx                  ; sector
	movzx ecx, word [v_heads]
	xor edx, edx
	div ecx                           ; EAX = cyl, EDX = head
	mov ebx, eax
	mov ecx, [v_tmp]
	jmp .put                          ; EBX cyl, EDX head, ECX sector
.bad:
	; EBX = kk 0..3, [v_tmp] = x
	mov eax, [v_tmp]
	movzx ecx, word [v_cyls]
	xor edx, edx
	div ecx
	push edx                          ; x % C
	mov eax, [v_tmp]
	shr eax, 10
	movzx ecx, word [v_heads]
	xor edx, edx
	div ecx
	push edx                          ; (x >> 10) % H
	cmp ebx, 0
	jne .b1
	pop edx
	pop ebx
	xor ecx, ecx
	jmp .put
.b1:
	cmp ebx, 1
	jne .b2
	pop edx
	pop ebx
	movzx esi, word [v_spt]
	xor ecx, ecx
	cmp esi, 63
	jae .put
	push edx
	mov eax, [v_tmp]
	mov ecx, 63
	sub ecx, esi
	xor edx, edx
	div ecx
	lea ecx, [esi + edx + 1]
	pop edx
	jmp .put
.b2:
	cmp ebx, 2
	jne .b3
	pop edx
	pop ebx                           ; cyl = x % C
	movzx esi, word [v_heads]
	xor ecx, ecx
	xor edx, edx
	cmp esi, 256
	jae .put
	mov eax, [v_tmp]
	mov ecx, 256
	sub ecx, esi
	div ecx
	add edx, esi                      ; head
	mov ecx, 1
	jmp .put
.b3:
	pop edx
	pop edx
	movzx esi, word [v_cyls]
	xor ebx, ebx
	xor edx, edx
	xor ecx, ecx
	cmp esi, 1024
	jae .put
	mov eax, [v_tmp]
	mov ecx, 1024
	sub ecx, esi
	xor edx, edx
	div ecx
	lea ebx, [esi + edx]
	xor edx, edx
	mov ecx, 1
.put:
	; EBX cyl, EDX head, ECX sector -> CH, CL, DH
	mov [i_edx + 1], dl
	and cl, 0x3F
	mov al, bh
	shl al, 6
	or cl, al
	mov [i_ecx], cl
	mov [i_ecx + 1], bl
	; the buffer
	call rnd
	cmp byte [v_ours], 0
	jne .ob
	mov ebx, eax                      ; junk
	shr eax, 4
	mov ecx, JUNK_SIZE - 128 * SECTOR + 1
	xor edx, edx
	div ecx
	lea eax, [edx + JUNK]
	mov ecx, eax
	shr ecx, 4
	mov [i_es], cx
	and ax, 15
	mov [i_ebx], ax
	cmp byte [v_dl], 0x81
	jne .ret
	lea eax, [edx + JUNK]
	mov [w_lin], eax
	mov eax, [v_n]
	shl eax, 9
	mov [w_len], eax
.ret:
	ret
.ob:
	test al, 15
	jz .stub
	mov ebx, eax
	and ebx, 15
	cmp ebx, 1
	jne .arena
	shr eax, 4
	call hma_pos
	mov word [i_es], 0xFFFF
	mov [i_ebx], dx
	mov [w_lin], eax
	mov ecx, [v_n]
	shl ecx, 9
	mov [w_len], ecx
	ret
.stub:
	shr eax, 4
	mov ecx, 0x100
	xor edx, edx
	div ecx
	mov eax, edx
	add eax, [v_stub]
	mov ecx, eax
	shr ecx, 4
	mov [i_es], cx
	and ax, 15
	mov [i_ebx], ax
	ret
.arena:
	shr eax, 4
	mov ecx, [v_n]
	shl ecx, 9
	neg ecx
	add ecx, LO_SIZE + 1
	xor edx, edx
	div ecx
	lea eax, [edx + LO]
	mov [w_lin], eax
	mov ecx, [v_n]
	shl ecx, 9
	mov [w_len], ecx
	push eax
	call rnd
	mov ebx, eax
	pop eax
	call split
	mov [i_es], cx
	mov [i_ebx], dx
	ret

; g_dap: AH=42h-44h, 47h: the DAP (built in d_*, written at v_daplin by do_call) and DS:SI.
g_dap:
	call rnd
	and eax, 7
	add eax, DAP_BASE
	mov [v_daplin], eax
	mov byte [v_flat], 0
	call rnd
	mov [v_tmp], eax
	mov ebx, eax
	and ebx, 7
	jnz .s1
	mov al, [v_tmp + 1]
	and al, 0x0F
	jmp .sz
.s1:
	cmp ebx, 2
	ja .s3
	mov byte [v_flat], 1
	mov al, 0x18
	jmp .sz
.s3:
	cmp ebx, 3
	jne .s5
	mov al, [v_tmp + 1]
	or al, 0x10
	jmp .sz
.s5:
	mov al, 0x10
.sz:
	mov [d_size], al
	mov byte [d_res], 0
	test byte [v_tmp + 3], 7
	jnz .r0
	mov al, [v_tmp + 2]
	mov [d_res], al
.r0:
	cmp byte [v_ours], 0
	jne .count
	mov byte [d_size], 0x10
	mov byte [v_flat], 0
.count:
	call rnd
	mov ebx, eax
	and ebx, 15
	shr eax, 16                       ; v
	test ebx, ebx
	jnz .c1
	xor eax, eax
	jmp .cnt
.c1:
	cmp ebx, 1
	jne .c2
	or eax, 0x80
	jmp .cnt
.c2:
	cmp ebx, 2
	jne .c3
	mov eax, 127
	jmp .cnt
.c3:
	mov ecx, 8
	cmp ebx, 10
	jb .c4
	mov ecx, 127
.c4:
	xor edx, edx
	div ecx
	lea eax, [edx + 1]
.cnt:
	mov [d_cnt], ax
	cmp eax, 127
	jbe .cn
	mov eax, 127
.cn:
	mov [v_n], eax
	; the LBA
	call rnd
	mov ebx, eax
	and ebx, 15
	shr eax, 8                        ; v
	mov dword [d_lba + 4], 0
	test ebx, ebx
	jnz .l1
	mov ecx, 4
	xor edx, edx
	div ecx
	mov eax, [P_SECTORS]
	dec eax
	sub eax, edx
	jmp .lba
.l1:
	cmp ebx, 1
	jne .l2
	mov ecx, 8
	xor edx, edx
	div ecx
	mov eax, [P_SECTORS]
	add eax, edx
	jmp .lba
.l2:
	cmp ebx, 2
	jne .l3
	call rnd
	mov [d_lba + 4], eax
	call rnd
	jmp .lba
.l3:
	cmp ebx, 3
	jne .l4
	mov ecx, 4
	xor edx, edx
	div ecx
	mov dword [d_lba + 4], 0xFFFFFFFF
	mov eax, 0xFFFFFFFF
	sub eax, edx
	jmp .lba
.l4:
	cmp byte [v_ah], 0x43
	jne .l5
	mov ecx, [P_SECTORS]
	sub ecx, [P_SCRATCH]
	xor edx, edx
	div ecx
	mov eax, edx
	add eax, [P_SCRATCH]
	jmp .lba
.l5:
	mov ecx, [P_SECTORS]
	xor edx, edx
	div ecx
	mov eax, edx
.lba:
	mov [d_lba], eax
	; the buffer
	mov dword [d_flat], 0
	mov dword [d_flat + 4], 0
	call rnd
	mov [v_tmp], eax
	mov ebx, eax
	and ebx, 15                       ; kk
	shr eax, 4                        ; r >> 4
	cmp byte [v_ours], 0
	jne .bo
	mov ecx, JUNK_SIZE - 127 * SECTOR + 1
	xor edx, edx
	div ecx
	lea eax, [edx + JUNK]
	mov ecx, eax
	shr ecx, 4
	mov [d_seg], cx
	mov ecx, eax
	and cx, 15
	mov [d_off], cx
	cmp byte [v_dl], 0x81
	jne .ds
	cmp byte [v_ah], 0x42
	jne .ds
	call set_window
	jmp .ds
.bo:
	cmp byte [v_flat], 0
	je .seg
	mov word [d_seg], 0xFFFF
	mov word [d_off], 0xFFFF
	cmp ebx, 6
	jae .f1
	call arena_pos
	add eax, LO
	mov [d_flat], eax
	call set_window
	jmp .ds
.f1:
	cmp ebx, 11
	jae .f2
	call arena_pos
	add eax, HI
	mov [d_flat], eax
	call set_window
	jmp .ds
.f2:
	jne .f3
	call stub_pos
	mov [d_flat], eax
	jmp .ds
.f3:
	cmp ebx, 12
	jne .f4
	mov ecx, 0x10000
	xor edx, edx
	div ecx
	mov eax, edx
	add eax, [v_kbase]
	mov [d_flat], eax
	jmp .ds
.f4:
	cmp ebx, 13
	jne .f5
	mov ecx, 0xFFFF
	xor edx, edx
	div ecx
	inc edx
	mov [d_flat + 4], edx
	call rnd
	mov [d_flat], eax
	jmp .ds
.f5:
	cmp ebx, 14
	jne .f6
	mov ecx, 0x200
	xor edx, edx
	div ecx
	mov eax, 0xFFFFFFFF
	sub eax, edx
	mov [d_flat], eax
	jmp .ds
.f6:
	call rnd
	or eax, 0x80000000
	mov [d_flat + 4], eax
	call rnd
	mov [d_flat], eax
	jmp .ds
.seg:
	test ebx, ebx
	jnz .sa
	call stub_pos
	mov ecx, eax
	shr ecx, 4
	mov [d_seg], cx
	and ax, 15
	mov [d_off], ax
	jmp .ds
.sa:
	cmp ebx, 1
	jne .sb
	call hma_pos
	mov word [d_seg], 0xFFFF
	mov [d_off], dx
	call set_window
	jmp .ds
.sb:
	call arena_pos
	add eax, LO
	call set_window
	push eax
	call rnd
	mov ebx, eax
	pop eax
	call split
	mov [d_seg], cx
	mov [d_off], dx
.ds:
	; DS:SI
	call rnd
	cmp byte [v_ours], 0
	je .dsa
	test al, 15
	jnz .dsa
	shr eax, 4
	call stub_pos
	mov ecx, eax
	shr ecx, 4
	mov [i_ds], cx
	and ax, 15
	mov [i_esi], ax
	ret
.dsa:
	mov ebx, eax
	shr ebx, 16
	mov eax, [v_daplin]
	call split
	mov [i_ds], cx
	mov [i_esi], dx
	ret

; arena_pos: EAX = EAX mod (arena size - v_n sectors + 1) (LO_SIZE = HI_SIZE). Clobbers ECX, EDX.
arena_pos:
	mov ecx, [v_n]
	shl ecx, 9
	neg ecx
	add ecx, LO_SIZE + 1
	xor edx, edx
	div ecx
	mov eax, edx
	ret

; hma_pos: EAX = HMA + EAX mod FFF0h, DX = its offset from FFFF:0000. Clobbers ECX.
hma_pos:
	mov ecx, 0xFFF0
	xor edx, edx
	div ecx
	lea eax, [edx + HMA]
	lea edx, [eax - 0xFFFF0]
	ret

; stub_pos: EAX = stub + EAX mod 100h (a buffer on vhdboot's low stub: must be refused). Clobbers ECX, EDX.
stub_pos:
	mov ecx, 0x100
	xor edx, edx
	div ecx
	mov eax, edx
	add eax, [v_stub]
	ret

; set_window: hash window = EAX, v_n sectors. Preserves all.
set_window:
	push ecx
	mov [w_lin], eax
	mov ecx, [v_n]
	shl ecx, 9
	mov [w_len], ecx
	pop ecx
	ret

; g_edd: AH=48h: the buffer size word and DS:SI.
g_edd:
	call rnd
	mov ebx, eax
	and ebx, 3
	shr eax, 16
	mov ecx, 0x1A
	mov esi, 0
	test ebx, ebx
	jz .d
	mov ecx, 4
	mov esi, 0x1A
	cmp ebx, 1
	je .d
	mov ecx, 0x24
	mov esi, 0x1E
	cmp ebx, 2
	je .d
	mov ecx, 0x10000 - 0x42
	mov esi, 0x42
.d:
	xor edx, edx
	div ecx
	add edx, esi
	mov [v_eddsz], dx
	call rnd
	mov ebx, eax
	shr eax, 4
	cmp byte [v_ours], 0
	jne .o
	mov ecx, 0x1000
	xor edx, edx
	div ecx
	lea eax, [edx + JUNK]
	mov [v_edd], eax
	jmp .seg
.o:
	test bl, 15
	jnz .a
	call stub_pos
.seg:
	mov ecx, eax
	shr ecx, 4
	mov [i_ds], cx
	and ax, 15
	mov [i_esi], ax
	ret
.a:
	mov ecx, LO_SIZE - 0x44 + 1
	xor edx, edx
	div ecx
	lea eax, [edx + LO]
	mov [v_edd], eax
	mov [w_lin], eax
	mov dword [w_len], 0x44
	push eax
	call rnd
	mov ebx, eax
	pop eax
	call split
	mov [i_ds], cx
	mov [i_esi], dx
	ret

;---------------------------------------------------------------------------
; do_call: write the DAP / EDD size, load i_*, INT 13h, store the results (r_*, o_*). DS = ES = 0 after.
do_call:
	mov eax, [v_daplin]
	test eax, eax
	jz .nodap
	mov di, DAP_BASE
	mov cx, DAP_AREA
	xor al, al
	rep stosb
	mov di, [v_daplin]
	mov si, d_size
	mov cx, 24
	rep movsb
.nodap:
	mov eax, [v_edd]
	test eax, eax
	jz .noedd
	call unreal
	mov bx, [v_eddsz]
	mov [fs:eax], bx
.noedd:
	mov [v_sp], sp
	mov eax, [i_eax]
	mov ebx, [i_ebx]
	mov ecx, [i_ecx]
	mov edx, [i_edx]
	mov esi, [i_esi]
	mov edi, [i_edi]
	mov ebp, [i_ebp]
	mov es, [i_es]
	mov ds, [i_ds]
	int 0x13
	setc byte [cs:r_cf]
	mov [cs:r_eax], eax
	mov [cs:r_ebx], ebx
	mov [cs:r_ecx], ecx
	mov [cs:r_edx], edx
	mov [cs:r_esi], esi
	mov [cs:r_edi], edi
	mov [cs:o_ebp], ebp
	mov [cs:o_ds], ds
	mov [cs:r_es], es
	xor ax, ax
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov sp, [v_sp]
	cld
	ret

; pr_record: the R line of the call just made.
pr_record:
	P `R `
	mov eax, [v_i]
	call hex32
	P ` `
	mov al, [v_ah]
	call hex8
	mov al, [v_dl]
	call hex8
	P ` `
	mov al, [r_cf]
	add al, '0'
	call putc
	mov si, r_eax
	mov cx, 6
.r:
	P ` `
	mov eax, [si]
	call hex32
	add si, 4
	loop .r
	P ` `
	mov eax, [o_ebp]
	call hex32
	P ` `
	mov ax, [o_ds]
	call hex16
	P ` `
	mov ax, [r_es]
	call hex16
	P ` `
	xor eax, eax
	mov bx, [v_daplin]
	test bx, bx
	jz .nd
	mov eax, [bx]
.nd:
	call hex32
	P ` `
	mov al, [0x474]
	call hex8
	P ` `
	mov eax, FNV_BASIS
	mov ecx, [w_len]
	jecxz .nh
	mov esi, [w_lin]
	call fnv32
.nh:
	call hex32
	call crlf
	ret


; (assembly fails here, with a negative count, if the guest outgrows GUEST_SECTORS)
	times GUEST_SECTORS * 512 - ($ - $$) db 0
