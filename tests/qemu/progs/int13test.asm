; int13test.asm: INT 13h / INT 15h conformance guest; reports on COM1 in lines the harness parses, exits via isa-debug-exit.
;
; Layout on disk (flat binary, LBA 0..GUEST_SECTORS-1):
;   LBA 0  boot sector (mbr.inc): loads LBA 1.. with AH=02h
;   LBA 1  parameter sector (PARAM_*): written by tests/qemu/firmware_harness.py
;   LBA 2  stage 2 (this file)
;
; Output (one record per line, fields "key=value", every number lower-case
; hex without 0x; a 64-bit value is 16 digits):
;   BOOT dl=80                      from the boot sector
;   GUEST int13test v=1 params=ok flags=.. drive=80
;   T 41 dl=.. ax= bx= cx= dx= cf=  (raw registers after the call; the harness decodes)
;   T 08 dl=.. ax= bx= cx= dx= di= es= cf=
;   T 15 dl=.. ax= bx= cx= dx= cf=
;   T 48 dl=.. ax= cf= size= flags= cyl= heads= spt= sectors= bps= [dpte=]
;   T 48S ax= cf= size= over=       buffer size 1Ah: bytes written beyond it
;   T BADFN ax= cf=                 AH=50h (no such function)
;   T OOR lba= n= ax= cf= dapcnt= dirty=   out-of-range 42h read; dirty = bitmask
;                                          of buffer sectors changed (4 sectors)
;   T 01 ax= cf= bda74=             AH=01h right after the first OOR
;   SUM 42 lba= count= fnv=         data read with 42h (see fnv below)
;   ERR 42 lba= n= ax= cf= dapcnt=  a read that failed inside a SUM range
;   SUM 02 lba= count= fnv= calls=  data read with AH=02h (CHS from AH=08h)
;   ERR 02 lba= ax= cf=
;   T XREAD dl= lba= n= ax= cf= dapcnt= fnv=    a read of another drive
;   T 12 ax=  /  T BDA mem= hd= st=  /  T IVT 13= 15= 18= 19= 40=
;   T HOOK13 sig= ven= old= flags=  the safe-hook header at the INT 13h vector (raw bytes)
;   T E820 i= base= len= type= ext= size=  /  T E820END n= sig= cf=
;   T E801 ax= bx= cx= dx= cf=  /  T 88 ax= cf=
;   T 41 / T 08 on each XREAD drive as well (before its T XREAD)
;   BENCH CAL tsc50ms= timeout=   BENCH START lba= n=   BENCH END tsc= errs=
;   DONE                            then exit code 33 (EXIT_DONE)
;
; Hash (fnv): 32-bit FNV-1a over little-endian dwords:
;   h = 811c9dc5; for each dword d: h = (h ^ d) * 01000193 mod 2^32.
; A SUM line covers `count` sectors read in chunks of PARAM_CHUNK sectors
; (the last one shorter); its fnv is that hash taken over the list of the
; chunks' hashes (so zero chunks hash alike and the host can cache them).

GUEST_SECTORS equ 16
%include "mbr.inc"

; ---- parameter sector (LBA 1, loaded at 0x7E00)
PARAM         equ 0x7E00
PARAM_MAGIC   equ PARAM + 0x00   ; "I13P"
PARAM_FLAGS   equ PARAM + 0x04   ; dword, F_*
PARAM_CHUNK   equ PARAM + 0x08   ; word, sectors per 42h call (1..64)
PARAM_GROUP   equ PARAM + 0x0A   ; word, chunks per SUM line (>= 1)
PARAM_NRANGES equ PARAM + 0x0C   ; word, <= MAX_RANGES
PARAM_NXREADS equ PARAM + 0x0E   ; word, <= MAX_XREADS
PARAM_CHSLBA  equ PARAM + 0x10   ; dword, first LBA read with AH=02h
PARAM_CHSCNT  equ PARAM + 0x14   ; word, sectors (<= 64; 0 = skip)
PARAM_BLBA    equ PARAM + 0x18   ; dword, bench start LBA
PARAM_BCNT    equ PARAM + 0x1C   ; dword, bench sectors (multiple of 64)
PARAM_XREADS  equ PARAM + 0x20   ; 4 x {byte drive, byte 0, word count (<= 64), dword lba}
PARAM_RANGES  equ PARAM + 0x40   ; 28 x {qword lba, dword count, dword 0}
MAX_XREADS    equ 4
MAX_RANGES    equ 28

F_BASIC   equ 0x01               ; 41/08/15/48/BADFN/OOR/01
F_RANGES  equ 0x02               ; SUM 42 ranges and SUM 02
F_XREADS  equ 0x04
F_MEMORY  equ 0x08               ; 12, BDA, IVT, E820, E801, 88
F_BENCH   equ 0x10
F_HALT    equ 0x20               ; halt at the end instead of exiting
F_BENCHAB equ 0x40               ; bench A/B: the bench range read in 128 KiB pieces from 80h and 81h by turns
AB_PIECE  equ 256                ; sectors per A/B piece (4 calls): finer than a loaded host's scheduling bursts

FNV_BASIS equ 0x811C9DC5
FNV_PRIME equ 0x01000193

BUF_SEG   equ 0x1000             ; 64 KiB data buffer at linear 0x10000
OOR_SEG   equ 0x2000             ; 4-sector buffer at linear 0x20000
OOR_FILL  equ 0xA5A5A5A5
EDD_BUF   equ 0x0500             ; 0x42-byte AH=48h buffer (+ guard) at 0:0500
E820_BUF  equ 0x05C0             ; 24-byte E820 entry

; ---- variables (after mbr.inc's)
v_drive   equ VAR_FREE + 0x00    ; byte: drive under test
v_flags   equ VAR_FREE + 0x04    ; dword
v_total   equ VAR_FREE + 0x08    ; qword: sectors (AH=48h, else CHS)
v_cur     equ VAR_FREE + 0x10    ; qword: current LBA in a range
v_left    equ VAR_FREE + 0x18    ; dword: sectors left in a range
v_gstart  equ VAR_FREE + 0x20    ; qword: first LBA of the SUM line
v_gcount  equ VAR_FREE + 0x28    ; dword
v_ghash   equ VAR_FREE + 0x2C    ; dword
v_chunk   equ VAR_FREE + 0x30    ; word
v_group   equ VAR_FREE + 0x32    ; word
v_n       equ VAR_FREE + 0x34    ; word: sectors in this read
v_k       equ VAR_FREE + 0x36    ; word: chunks in this SUM line
v_idx     equ VAR_FREE + 0x38    ; word: loop index
v_calls   equ VAR_FREE + 0x3A    ; word
v_t0      equ VAR_FREE + 0x40    ; qword: TSC
v_errs    equ VAR_FREE + 0x48    ; dword
v_e820i   equ VAR_FREE + 0x4C    ; word
v_oorlba  equ VAR_FREE + 0x50    ; qword
v_oorn    equ VAR_FREE + 0x58    ; word
DAP       equ VAR_FREE + 0x60    ; 16-byte disk address packet
v_ab_lba  equ VAR_FREE + 0x70    ; dword: t_bench_ab: the piece's first LBA
v_ab_left equ VAR_FREE + 0x74    ; dword: sectors left
v_ab_t    equ VAR_FREE + 0x78    ; 2 qwords: TSC ticks spent on 80h, on 81h
v_ab_k    equ VAR_FREE + 0x88    ; dword: pieces done
v_ab_n    equ VAR_FREE + 0x8C    ; dword: sectors in this piece
DAP_SIZE  equ DAP + 0
DAP_COUNT equ DAP + 2
DAP_OFF   equ DAP + 4
DAP_SEG   equ DAP + 6
DAP_LBA   equ DAP + 8

; Default parameter sector: basic tests, the guest's own sectors, memory.
param_sector:
	db "I13P"
	dd F_BASIC | F_RANGES | F_MEMORY
	dw 64, 1, 1, 0
	dd 0
	dw 0, 0
	dd 0, 0
	times 0x40 - ($ - param_sector) db 0
	dq 0
	dd GUEST_SECTORS, 0
	times 512 - ($ - param_sector) db 0

;===========================================================================
stage2:
	mov al, [v_boot_drive]
	mov [v_drive], al
	P `GUEST int13test v=1 params=`
	cmp dword [PARAM_MAGIC], "I13P"
	je .pok
	P `bad`
	call crlf
	mov al, EXIT_FATAL
	jmp guest_exit
.pok:
	P `ok flags=`
	mov eax, [PARAM_FLAGS]
	mov [v_flags], eax
	call hex32
	P ` drive=`
	mov al, [v_drive]
	call hex8
	call crlf

	; chunk in 1..64, group >= 1
	mov ax, [PARAM_CHUNK]
	cmp ax, 64
	jbe .c1
	mov ax, 64
.c1:
	test ax, ax
	jnz .c2
	mov ax, 64
.c2:
	mov [v_chunk], ax
	mov ax, [PARAM_GROUP]
	test ax, ax
	jnz .g1
	inc ax
.g1:
	mov [v_group], ax

	test byte [v_flags], F_BASIC
	jz .nobasic
	call t_basic
.nobasic:
	test byte [v_flags], F_RANGES
	jz .noranges
	call t_ranges
	call t_chs
.noranges:
	test byte [v_flags], F_XREADS
	jz .noxr
	call t_xreads
.noxr:
	test byte [v_flags], F_MEMORY
	jz .nomem
	call t_memory
.nomem:
	test byte [v_flags], F_BENCH
	jz .nobench
	call t_bench
.nobench:
	test byte [v_flags], F_BENCHAB
	jz .noab
	call t_bench_ab
.noab:
	P `DONE`
	call crlf
	test byte [v_flags], F_HALT
	jz .exit
.halt:
	sti
	hlt
	jmp .halt
.exit:
	mov al, EXIT_DONE
	jmp guest_exit

;---------------------------------------------------------------------------
; do13: INT 13h with the registers as set; saves them to r_* and CF to r_cf.
; DS must be 0 (DAPs live in segment 0). Returns with the BIOS's registers.
do13:
	int 0x13
savregs:
	setc byte [r_cf]
	mov [r_eax], eax
	mov [r_ebx], ebx
	mov [r_ecx], ecx
	mov [r_edx], edx
	mov [r_esi], esi
	mov [r_edi], edi
	mov [r_es], es
	ret

; do15: the same for INT 15h.
do15:
	int 0x15
	jmp savregs

; pr_dl: print " dl=" and the drive under test (AL). Preserves all.
pr_dl:
	P ` dl=`
	call hex8
	ret

; pr_abcd: print " ax= bx= cx= dx=" from r_*. Preserves all.
pr_abcd:
	call pr_ax
	push ax
	PH16 ` bx=`, [r_ebx]
	PH16 ` cx=`, [r_ecx]
	PH16 ` dx=`, [r_edx]
	pop ax
	ret

; pr_cf: print " cf=N" and end the line. Preserves all.
pr_cf:
	push ax
	PH8 ` cf=`, [r_cf]
	call crlf
	pop ax
	ret

; pr_q: print the qword at [SI] as 16 hex digits. Preserves all.
pr_q:
	push eax
	mov eax, [si + 4]
	call hex32
	mov eax, [si]
	call hex32
	pop eax
	ret

; pr_ax: print " ax=" and the AX the last call returned (r_eax). Preserves all.
pr_ax:
	push ax
	PH16 ` ax=`, [r_eax]
	pop ax
	ret

; pr_lnad: print "lba=<qword [SI]> n=<AX> ax=<r_eax> dapcnt=<DAP count>" after a 42h read. Preserves all.
pr_lnad:
	push ax
	P `lba=`
	call pr_q
	PH16 ` n=`, ax
	call pr_ax
	PH16 ` dapcnt=`, [DAP_COUNT]
	pop ax
	ret

;---------------------------------------------------------------------------
; t41 / t08 / t15: one call each on drive AL, raw registers printed.
t41:
	push ax
	P `T 41`
	call pr_dl
	mov dl, al
	mov ah, 0x41
	mov bx, 0x55AA
	call do13
	call pr_abcd
	call pr_cf
	pop ax
	ret

t08:
	push ax
	P `T 08`
	call pr_dl
	mov dl, al
	mov ah, 0x08
	xor di, di
	push di
	pop es
	call do13
	push 0
	pop es
	call pr_abcd
	PH16 ` di=`, [r_edi]
	PH16 ` es=`, [r_es]
	call pr_cf
	pop ax
	ret

t15:
	push ax
	P `T 15`
	call pr_dl
	mov dl, al
	mov ah, 0x15
	mov al, 0xFF                  ; some BIOSes want AL preserved; give it a marker
	call do13
	call pr_abcd
	call pr_cf
	pop ax
	ret

;---------------------------------------------------------------------------
; t_basic: 41, 08, 15, 48 (two buffer sizes), an unknown function, out-of-range reads, 01.
t_basic:
	mov al, [v_drive]
	call t41
	call t08
	; CHS total as fallback for v_total
	movzx eax, word [v_cyls]
	movzx ecx, word [v_heads]
	mul ecx
	movzx ecx, word [v_spt]
	mul ecx
	mov [v_total], eax
	mov dword [v_total + 4], 0
	mov al, [v_drive]
	call t15

	; AH=48h with a 42h buffer
	mov di, EDD_BUF
	mov cx, 0x60
	mov al, 0xCC
	rep stosb
	mov word [EDD_BUF], 0x42
	P `T 48`
	mov al, [v_drive]
	call pr_dl
	mov dl, al
	mov ah, 0x48
	mov si, EDD_BUF
	call do13
	call pr_ax
	PH16 ` size=`, [EDD_BUF + 0x00]
	PH16 ` flags=`, [EDD_BUF + 0x02]
	PH32 ` cyl=`, [EDD_BUF + 0x04]
	PH32 ` heads=`, [EDD_BUF + 0x08]
	PH32 ` spt=`, [EDD_BUF + 0x0C]
	P ` sectors=`
	mov si, EDD_BUF + 0x10
	call pr_q
	PH16 ` bps=`, [EDD_BUF + 0x18]
	cmp word [EDD_BUF], 0x1E
	jb .nodpte
	PH32 ` dpte=`, [EDD_BUF + 0x1A]
.nodpte:
	call pr_cf
	cmp byte [r_cf], 0
	jne .no48
	mov eax, [EDD_BUF + 0x10]
	mov [v_total], eax
	mov eax, [EDD_BUF + 0x14]
	mov [v_total + 4], eax
.no48:
	; AH=48h with a 1Ah buffer: nothing may be written beyond it
	mov di, EDD_BUF
	mov cx, 0x60
	mov al, 0xCC
	rep stosb
	mov word [EDD_BUF], 0x1A
	P `T 48S`
	mov dl, [v_drive]
	mov ah, 0x48
	mov si, EDD_BUF
	call do13
	call pr_ax
	PH16 ` size=`, [EDD_BUF]
	P ` over=`
	mov si, EDD_BUF + 0x1A
	xor ax, ax
	mov cx, 0x60 - 0x1A
.ov:
	cmp byte [si], 0xCC
	je .ov1
	inc ax
.ov1:
	inc si
	loop .ov
	call hex16
	call pr_cf

	; no such function
	P `T BADFN`
	mov dl, [v_drive]
	mov ah, 0x50
	call do13
	call pr_ax
	call pr_cf

	; out of range: at the end, straddling it, far beyond, wrapping 2^64
	mov eax, [v_total]
	mov edx, [v_total + 4]
	mov cx, 1
	call t_oor
	; AH=01h and 40:74 right after the first failure
	P `T 01`
	mov dl, [v_drive]
	mov ah, 0x01
	call do13
	call pr_ax
	PH8 ` bda74=`, [0x474]
	call pr_cf
	mov eax, [v_total]
	mov edx, [v_total + 4]
	sub eax, 1
	sbb edx, 0
	mov cx, 2
	call t_oor
	xor eax, eax
	mov edx, 0x0000FFFF
	mov cx, 1
	call t_oor
	mov eax, 0xFFFFFFFF
	mov edx, eax
	mov cx, 2
	call t_oor
	ret

; t_oor: AH=42h read of CX sectors at EDX:EAX into a 4-sector buffer filled with A5h; print T OOR.
t_oor:
	mov [v_oorlba], eax
	mov [v_oorlba + 4], edx
	mov [v_oorn], cx
	push OOR_SEG
	pop es
	xor di, di
	mov eax, OOR_FILL
	mov cx, 4 * 128
	rep stosd
	push 0
	pop es
	mov cx, [v_oorn]
	mov si, v_oorlba
	mov bx, OOR_SEG
	call read42_to
	P `T OOR `
	mov si, v_oorlba
	mov ax, [v_oorn]
	call pr_lnad
	P ` dirty=`
	; bit i set if sector i of the buffer no longer holds the fill
	push OOR_SEG
	pop es
	xor di, di
	xor bx, bx
	mov dx, 1
.sec:
	mov cx, 128
	mov eax, OOR_FILL
	repe scasd
	je .clean
	or bx, dx
	add di, cx                    ; skip the rest of this sector
	add di, cx
	add di, cx
	add di, cx
.clean:
	shl dx, 1
	cmp dx, 0x10
	jb .sec
	push 0
	pop es
	mov al, bl
	call hex8
	call pr_cf
	ret

;---------------------------------------------------------------------------
; fill_buf: fill CX sectors at BUF_SEG:0 with DEADBEEFh so a read that moves nothing shows. Preserves regs.
fill_buf:
	push es
	push di
	push cx
	push eax
	push BUF_SEG
	pop es
	xor di, di
	shl cx, 7
	mov eax, 0xDEADBEEF
	rep stosd
	pop eax
	pop cx
	pop di
	pop es
	ret

; read42: AH=42h read of CX sectors at qword [SI] from drive [v_drive] into BUF_SEG:0. CF as returned. Clobbers BX.
read42:
	mov bx, BUF_SEG
; read42_to: the same into BX:0.
read42_to:
	mov [DAP_COUNT], cx
	mov word [DAP_SIZE], 0x10
	mov word [DAP_OFF], 0
	mov [DAP_SEG], bx
	mov eax, [si]
	mov [DAP_LBA], eax
	mov eax, [si + 4]
	mov [DAP_LBA + 4], eax
	mov dl, [v_drive]
	mov ah, 0x42
	mov si, DAP
	call do13
	mov al, [r_cf]
	shr al, 1                     ; CF = r_cf
	ret

;---------------------------------------------------------------------------
; t_ranges: every range of the parameter sector read with 42h, SUM 42 lines.
t_ranges:
	mov word [v_idx], 0
.range:
	mov bx, [v_idx]
	cmp bx, [PARAM_NRANGES]
	jae .done
	cmp bx, MAX_RANGES
	jae .done
	shl bx, 4
	mov eax, [PARAM_RANGES + bx]
	mov [v_cur], eax
	mov eax, [PARAM_RANGES + bx + 4]
	mov [v_cur + 4], eax
	mov eax, [PARAM_RANGES + bx + 8]
	mov [v_left], eax
.line:
	cmp dword [v_left], 0
	je .nextrange
	mov eax, [v_cur]
	mov [v_gstart], eax
	mov eax, [v_cur + 4]
	mov [v_gstart + 4], eax
	mov dword [v_gcount], 0
	mov dword [v_ghash], FNV_BASIS
	mov word [v_k], 0
.chunk:
	movzx ecx, word [v_chunk]
	cmp ecx, [v_left]
	jbe .n1
	mov ecx, [v_left]
.n1:
	mov [v_n], cx
	call fill_buf
	mov si, v_cur
	call read42
	jnc .rok
	P `ERR 42 `
	mov si, v_cur
	mov ax, [v_n]
	call pr_lnad
	call pr_cf
.rok:
	mov cx, [v_n]
	call fnv_buf
	xor eax, [v_ghash]
	imul eax, eax, FNV_PRIME
	mov [v_ghash], eax
	movzx eax, word [v_n]
	add [v_cur], eax
	adc dword [v_cur + 4], 0
	sub [v_left], eax
	add [v_gcount], eax
	inc word [v_k]
	cmp dword [v_left], 0
	je .pr
	mov ax, [v_k]
	cmp ax, [v_group]
	jb .chunk
.pr:
	P `SUM 42 lba=`
	mov si, v_gstart
	call pr_q
	PH32 ` count=`, [v_gcount]
	PH32 ` fnv=`, [v_ghash]
	call crlf
	jmp .line
.nextrange:
	inc word [v_idx]
	jmp .range
.done:
	ret

;---------------------------------------------------------------------------
; t_chs: PARAM_CHSCNT sectors from PARAM_CHSLBA with AH=02h, never crossing a track per call.
t_chs:
	mov cx, [PARAM_CHSCNT]
	test cx, cx
	jz .ret
	cmp cx, 64
	jbe .c
	mov cx, 64
.c:
	mov [v_n], cx
	call fill_buf
	mov word [v_k], 0                 ; sectors done
	mov word [v_calls], 0
.next:
	mov ax, [v_k]
	cmp ax, [v_n]
	jae .sum
	movzx eax, word [v_k]
	add eax, [PARAM_CHSLBA]
	push eax
	call lba_to_chs
	pop eax
	jc .err
	; sectors to the end of this track: spt - (sector - 1)
	mov bl, cl
	and bx, 0x3F
	mov ax, [v_spt]
	inc ax
	sub ax, bx
	mov bx, [v_n]
	sub bx, [v_k]
	cmp ax, bx
	jbe .n
	mov ax, bx
.n:
	push ax
	mov bx, [v_k]
	shl bx, 9
	push BUF_SEG
	pop es
	mov ah, 0x02
	mov dl, [v_drive]
	call do13
	push 0
	pop es
	pop ax
	inc word [v_calls]
	cmp byte [r_cf], 0
	jne .err
	add [v_k], ax
	jmp .next
.err:
	P `ERR 02 lba=`
	movzx eax, word [v_k]
	add eax, [PARAM_CHSLBA]
	call hex32
	call pr_ax
	call pr_cf
.sum:
	mov cx, [v_n]
	call fnv_buf
	mov edx, eax
	mov eax, FNV_BASIS
	xor eax, edx
	imul eax, eax, FNV_PRIME
	push eax
	P `SUM 02 lba=`
	mov eax, [PARAM_CHSLBA]
	mov [v_gstart], eax
	mov dword [v_gstart + 4], 0
	mov si, v_gstart
	call pr_q
	P ` count=`
	movzx eax, word [v_n]
	call hex32
	P ` fnv=`
	pop eax
	call hex32
	PH16 ` calls=`, [v_calls]
	call crlf
.ret:
	ret

;---------------------------------------------------------------------------
; t_xreads: 41h, 08h and a 42h read on each other drive of the parameter sector.
t_xreads:
	mov word [v_idx], 0
.next:
	mov bx, [v_idx]
	cmp bx, [PARAM_NXREADS]
	jae .done
	cmp bx, MAX_XREADS
	jae .done
	shl bx, 3
	mov al, [PARAM_XREADS + bx]
	call t41
	call t08
	mov bx, [v_idx]
	shl bx, 3
	mov al, [PARAM_XREADS + bx]
	mov [v_drive], al
	mov eax, [PARAM_XREADS + bx + 4]
	mov [v_cur], eax
	mov dword [v_cur + 4], 0
	mov cx, [PARAM_XREADS + bx + 2]
	cmp cx, 64
	jbe .c
	mov cx, 64
.c:
	mov [v_n], cx
	call fill_buf
	mov si, v_cur
	call read42
	PH8 `T XREAD dl=`, [v_drive]
	P ` `
	mov si, v_cur
	mov ax, [v_n]
	call pr_lnad
	P ` fnv=`
	mov cx, [v_n]
	call fnv_buf
	call hex32
	call pr_cf
	inc word [v_idx]
	jmp .next
.done:
	mov al, [v_boot_drive]
	mov [v_drive], al
	ret

;---------------------------------------------------------------------------
; t_memory: what the guest sees of memory: INT 12h, BDA, vectors, E820, E801, 88h.
t_memory:
	int 0x12
	P `T 12 ax=`
	call hex16
	call crlf
	PH16 `T BDA mem=`, [0x413]
	PH8 ` hd=`, [0x475]
	PH8 ` st=`, [0x474]
	call crlf
	P `T IVT`
	mov al, 0x13
	call pr_vec
	mov al, 0x15
	call pr_vec
	mov al, 0x18
	call pr_vec
	mov al, 0x19
	call pr_vec
	mov al, 0x40
	call pr_vec
	call crlf
	call pr_hook13

	xor ebx, ebx
	mov word [v_e820i], 0
.e820:
	mov di, E820_BUF
	mov cx, 12
	xor ax, ax
	rep stosw
	mov dword [E820_BUF + 20], 1  ; ACPI 3.0 extended attributes: "valid" unless changed
	mov eax, 0xE820
	mov edx, 0x534D4150           ; "SMAP"
	mov ecx, 24
	mov di, E820_BUF
	call do15
	cmp byte [r_cf], 0
	jne .e820end
	cmp dword [r_eax], 0x534D4150
	jne .e820end
	PH16 `T E820 i=`, [v_e820i]
	P ` base=`
	mov si, E820_BUF
	call pr_q
	P ` len=`
	mov si, E820_BUF + 8
	call pr_q
	PH32 ` type=`, [E820_BUF + 16]
	PH32 ` ext=`, [E820_BUF + 20]
	PH32 ` size=`, [r_ecx]
	call crlf
	inc word [v_e820i]
	mov ebx, [r_ebx]
	test ebx, ebx
	jz .e820end
	cmp word [v_e820i], 64
	jb .e820
.e820end:
	PH16 `T E820END n=`, [v_e820i]
	PH32 ` sig=`, [r_eax]
	call pr_cf

	P `T E801`
	mov ax, 0xE801
	xor bx, bx
	xor cx, cx
	xor dx, dx
	call do15
	call pr_abcd
	call pr_cf

	P `T 88`
	mov ah, 0x88
	call do15
	call pr_ax
	call pr_cf
	ret

; pr_hook13: "T HOOK13 sig= ven= old= flags=": a safe-hook header at the INT 13h vector, if it is one
; ($INT13SF at +3, vendor at +11, previous vector at +19, flags at +23; bytes in memory order).
pr_hook13:
	push es
	push bx
	push si
	push cx
	les bx, [0x13 * 4]
	P `T HOOK13 sig=`
	lea si, [bx + 3]
	mov cx, 8
	call pr_esbytes
	P ` ven=`
	lea si, [bx + 11]
	mov cx, 8
	call pr_esbytes
	PH16 ` old=`, [es:bx + 21]
	PH16 `:`, [es:bx + 19]
	PH32 ` flags=`, [es:bx + 23]
	call crlf
	pop cx
	pop si
	pop bx
	pop es
	ret

; pr_esbytes: CX bytes at ES:SI as hex, in order. Clobbers SI, CX.
pr_esbytes:
	mov al, [es:si]
	call hex8
	inc si
	loop pr_esbytes
	ret

; pr_vec: print " NN=ssss:oooo" for interrupt vector AL. Preserves all.
pr_vec:
	push ax
	push bx
	P ` `
	call hex8
	movzx bx, al
	shl bx, 2
	PH16 `=`, [bx + 2]
	PH16 `:`, [bx]
	pop bx
	pop ax
	ret

;---------------------------------------------------------------------------
; t_bench: PARAM_BCNT sectors from PARAM_BLBA, 64 per 42h call, nothing hashed; TSC-timed.
t_bench:
	call tsc_calibrate

	mov eax, [PARAM_BLBA]
	mov [v_cur], eax
	mov dword [v_cur + 4], 0
	mov eax, [PARAM_BCNT]
	mov [v_left], eax
	mov dword [v_errs], 0
	P `BENCH START lba=`
	mov si, v_cur
	call pr_q
	PH32 ` n=`, [v_left]
	call crlf
	call tsc_start
	call read_span
	call bench_end
	ret

; read_span: [v_left] sectors from qword [v_cur] of drive [v_drive], 64 per 42h call into BUF_SEG:0, nothing
; hashed; each failed call counted in v_errs. Leaves v_cur after the span, v_left 0. Clobbers EAX-EDX, SI.
read_span:
	cmp dword [v_left], 0
	je .end
	mov ecx, 64
	cmp ecx, [v_left]
	jbe .n
	mov ecx, [v_left]
.n:
	mov [v_n], cx
	mov si, v_cur
	call read42
	jnc .ok
	inc dword [v_errs]
.ok:
	movzx eax, word [v_n]
	add [v_cur], eax
	adc dword [v_cur + 4], 0
	sub [v_left], eax
	jmp read_span
.end:
	ret

;---------------------------------------------------------------------------
; t_bench_ab: the bench range in pieces of up to AB_PIECE sectors (128 KiB), each piece read (64 sectors per 42h
; call) from drive 80h and from drive 81h, the order swapped every piece, TSC ticks summed per drive:
; BENCH AB t80=<ticks> t81=<ticks> pieces=<n> errs=<n>. Under vhdboot with a fixed VHD as the whole of the
; only disk, 80h is the image (vhdboot's path) and 81h the same sectors through the BIOS directly (the
; stub only shifts DL), so one run compares both paths minute by minute on a loaded host.
t_bench_ab:
	mov eax, [PARAM_BLBA]
	mov [v_ab_lba], eax
	mov eax, [PARAM_BCNT]
	mov [v_ab_left], eax
	xor eax, eax
	mov [v_ab_t], eax
	mov [v_ab_t + 4], eax
	mov [v_ab_t + 8], eax
	mov [v_ab_t + 12], eax
	mov [v_ab_k], eax
	mov [v_errs], eax
.piece:
	mov eax, [v_ab_left]
	test eax, eax
	jz .end
	cmp eax, AB_PIECE
	jbe .n
	mov eax, AB_PIECE
.n:
	mov [v_ab_n], eax
	mov al, [v_ab_k]
	and al, 1                     ; even pieces: 80h first; odd: 81h first
	call ab_read
	xor al, 1
	call ab_read
	mov eax, [v_ab_n]
	add [v_ab_lba], eax
	sub [v_ab_left], eax
	inc dword [v_ab_k]
	jmp .piece
.end:
	mov byte [v_drive], 0x80
	P `BENCH AB t80=`
	mov eax, [v_ab_t + 4]
	call hex32
	mov eax, [v_ab_t]
	call hex32
	P ` t81=`
	mov eax, [v_ab_t + 12]
	call hex32
	mov eax, [v_ab_t + 8]
	call hex32
	PH32 ` pieces=`, [v_ab_k]
	PH32 ` errs=`, [v_errs]
	call crlf
	ret

; ab_read: the current piece from drive 80h + AL (AL = 0 or 1), its TSC ticks added to v_ab_t[AL]. Keeps AL.
ab_read:
	push ax
	add al, 0x80
	mov [v_drive], al
	mov eax, [v_ab_lba]
	mov [v_cur], eax
	mov dword [v_cur + 4], 0
	mov eax, [v_ab_n]
	mov [v_left], eax
	call tsc_start
	call read_span
	rdtsc
	sub eax, [v_t0]
	sbb edx, [v_t0 + 4]
	pop bx
	push bx
	movzx bx, bl
	shl bx, 3
	add [v_ab_t + bx], eax
	adc [v_ab_t + bx + 4], edx
	pop ax
	ret

%include "tsccal.inc"
%include "fnv.inc"

; (assembly fails here, with a negative count, if the guest outgrows GUEST_SECTORS)
	times GUEST_SECTORS * 512 - ($ - $$) db 0
