; v86.asm: a guest that calls vhdboot's INT 13h from V86 mode (as under EMM386); the stub must refuse with AH=01h CF=1 and survive.
;
; Flat binary at LBA 0..GUEST_SECTORS-1 of the test disk (the boot sector is
; tests/qemu/progs/mbr.inc; LBA 1 is an unused parameter sector).
;
; 1. Real mode: AH=42h of LBA 0 into SCRATCH (must succeed, equal 0:7C00).
; 2. PIC masked, CLI; protected mode with a flat GDT, an IDT of 32-bit
;    interrupt gates and a 32-bit TSS whose I/O permission bitmap allows
;    ports 0..3FFh (COM1, isa-debug-exit); IRETD into V86 mode (VM=1, IOPL=3,
;    IF=0), 16-bit code at 0:v86_entry.
; 3. V86 mode: `int 0x13` (AH=42h, LBA 0) goes through the IDT to a minimal
;    V86 monitor (vector 13h gate, DPL 3) that reflects it the way EMM386
;    does: FLAGS/CS/IP of the caller onto the V86 stack, IF/TF cleared, CS:IP
;    = IVT[13h], IRETD. vhdboot's real-mode stub thus runs in V86 mode; its
;    IRET comes straight back to the caller.
; 4. V86 mode: `int 0x30` asks the monitor to return to real mode (16-bit PM,
;    PE off, the BIOS's IDTR, PIC masks back, STI).
; 5. Real mode: a second AH=42h of LBA 0; this call reaches vhdboot's C side,
;    which logs the refusal counted in step 3 on COM1
;    ("resident: 1 INT 13h call(s) refused with AH=01h: CPU in V86 mode ...").
; Any other interrupt or exception in PM/V86 (#GP included) prints a FAULT
; line with the faulting CS:EIP and exits through isa-debug-exit 0x11.
;
; Records on COM1 (parsed by tests/qemu/test_v86.py), each printed after its call returns:
;   T RM42 ah= cf= cnt= same=          step 1
;   T V86 ah= cf= pe= cnt=             step 3, printed in V86 mode (pe = SMSW bit 0)
;   T BACK pe=                          step 4, printed in real mode
;   T RM42B ah= cf= cnt= same=         step 5
;   DONE                                then exit 33 through isa-debug-exit
;   FAULT GP err= cs= eip=  /  FAULT UNEXPECTED cs= eip=   (exit 35)

%include "mbr.inc"

GUEST_SECTORS equ 16

v_picm1   equ VAR_FREE + 0x00        ; byte: PIC masks at entry
v_picm2   equ VAR_FREE + 0x01
v_pe      equ VAR_FREE + 0x02        ; word: SMSW in V86 mode
v_rmidt   equ VAR_FREE + 0x08        ; 6 bytes: the BIOS's IDTR
DAP       equ VAR_FREE + 0x40        ; 16-byte disk address packet

TSS_BASE  equ 0x1000                  ; 104-byte TSS + 128-byte I/O bitmap + FFh
TSS_IOMAP equ 104
TSS_LIMIT equ TSS_IOMAP + 128         ; the FFh terminator byte is the last one
IDT_BASE  equ 0x2000                  ; 256 gates
PM_STACK  equ 0x5000                  ; ring-0 stack (ESP0)
V86_STACK equ 0x6000                  ; V86 SS:SP = 0:6000
SCRATCH   equ 0xA000                  ; read buffer past the guest (0x7C00-0x9BFF)

SEL_CODE32 equ 0x08
SEL_DATA32 equ 0x10
SEL_CODE16 equ 0x18
SEL_DATA16 equ 0x20
SEL_TSS    equ 0x28

param_sector:
	times 512 - ($ - param_sector) db 0

stage2:
	; --- 1. a normal read from real mode
	call read_lba0
	P `T RM42`
	call pr_status

	; --- 2. protected mode, then V86 mode
	cli
	in al, 0x21
	mov [v_picm1], al
	in al, 0xA1
	mov [v_picm2], al
	mov al, 0xFF
	out 0x21, al
	out 0xA1, al
	o32 sidt [v_rmidt]

	; TSS: zero, SS0:ESP0, I/O map (128 zero bytes = ports 0..3FFh allowed, then FFh)
	mov di, TSS_BASE
	xor ax, ax
	mov cx, (TSS_LIMIT + 1 + 1) / 2
	rep stosw
	mov dword [TSS_BASE + 4], PM_STACK
	mov word [TSS_BASE + 8], SEL_DATA32
	mov word [TSS_BASE + 0x66], TSS_IOMAP
	mov byte [TSS_BASE + TSS_LIMIT], 0xFF

	; IDT: every vector -> unexpected; 0Dh -> gp; 13h, 30h -> monitor (DPL 3)
	mov di, IDT_BASE
	mov cx, 256
.idt:
	mov word [di], pm_unexpected
	mov word [di + 2], SEL_CODE32
	mov word [di + 4], 0x8E00          ; present, DPL 0, 32-bit interrupt gate
	mov word [di + 6], 0
	add di, 8
	loop .idt
	mov word [IDT_BASE + 0x0D * 8], pm_gp
	mov word [IDT_BASE + 0x13 * 8], pm_reflect13
	mov word [IDT_BASE + 0x13 * 8 + 4], 0xEE00   ; DPL 3: INT n from V86 (IOPL=3)
	mov word [IDT_BASE + 0x30 * 8], pm_to_real
	mov word [IDT_BASE + 0x30 * 8 + 4], 0xEE00

	o32 lgdt [gdtr]
	o32 lidt [pm_idtr]
	mov eax, cr0
	or al, 1
	mov cr0, eax
	jmp dword SEL_CODE32:pm32

	; --- 3. V86 mode (entered from pm32)
v86_entry:
	call read_lba0                     ; the monitor reflects it to IVT[13h] = vhdboot
	smsw ax
	mov [v_pe], ax
	P `T V86`
	call pr_flags
	P ` pe=`
	mov al, [v_pe]
	and al, 1
	call hex8
	P ` cnt=`
	mov ax, [DAP + 2]
	call hex16
	call crlf
	int 0x30                            ; monitor: back to real mode

	; --- 4./5. real mode again (from pm_to_real)
real_again:
	smsw ax
	P `T BACK pe=`
	and al, 1
	call hex8
	call crlf
	call read_lba0                     ; reaches C: the refusal count is logged first
	P `T RM42B`
	call pr_status
	P `DONE`
	call crlf
	mov al, EXIT_DONE
	jmp guest_exit

; read_lba0: INT 13h AH=42h, 1 sector of LBA 0 into 0:SCRATCH (cleared first); AH/CF into r_eax/r_cf. Preserves nothing.
read_lba0:
	mov di, SCRATCH
	xor ax, ax
	mov cx, 256
	rep stosw
	mov di, DAP
	mov cx, 8
	rep stosw
	mov byte [DAP], 0x10
	mov word [DAP + 2], 1
	mov word [DAP + 4], SCRATCH
	mov si, DAP
	mov ah, 0x42
	mov dl, [v_boot_drive]
	int 0x13
	setc byte [r_cf]
	mov [r_eax], ax
	ret

; pr_flags: print " ah= cf=" of the last call. Preserves all.
pr_flags:
	push ax
	P ` ah=`
	mov al, [r_eax + 1]
	call hex8
	P ` cf=`
	mov al, [r_cf]
	call hex8
	pop ax
	ret

; pr_status: print " ah= cf= cnt= same=" (same=1 if SCRATCH equals 0:7C00) and end the line. Preserves nothing.
pr_status:
	call pr_flags
	P ` cnt=`
	mov ax, [DAP + 2]
	call hex16
	mov si, 0x7C00
	mov di, SCRATCH
	mov cx, 256
	repe cmpsw
	sete al
	P ` same=`
	call hex8
	call crlf
	ret

align 8
gdt:
	dq 0
	dq 0x00CF9A000000FFFF              ; 08: code32 flat
	dq 0x00CF92000000FFFF              ; 10: data32 flat
	dq 0x00009A000000FFFF              ; 18: code16, base 0, 64 KiB
	dq 0x000092000000FFFF              ; 20: data16, base 0, 64 KiB
	dw TSS_LIMIT, TSS_BASE             ; 28: 32-bit TSS (available)
	db 0, 0x89, 0, 0
gdt_end:
gdtr:
	dw gdt_end - gdt - 1
	dd gdt
pm_idtr:
	dw 256 * 8 - 1
	dd IDT_BASE

;---------------------------------------------------------------------------
; 32-bit protected mode, ring 0.
bits 32

pm32:
	mov ax, SEL_DATA32
	mov ds, ax
	mov es, ax
	mov fs, ax
	mov gs, ax
	mov ss, ax
	mov esp, PM_STACK
	mov ax, SEL_TSS
	ltr ax
	push dword 0                        ; GS
	push dword 0                        ; FS
	push dword 0                        ; DS
	push dword 0                        ; ES
	push dword 0                        ; SS
	push dword V86_STACK                ; ESP
	push dword 0x00023002               ; EFLAGS: VM, IOPL=3, IF=0
	push dword 0                        ; CS
	push dword v86_entry                ; EIP
	iretd

; pm_reflect13: INT 13h from V86 mode -> the real-mode vector, as EMM386 reflects it.
; Frame: EIP, CS, EFLAGS, ESP, SS, ES, DS, FS, GS (V86 caller).
pm_reflect13:
	push eax
	push ebx
	push ecx
	push ds
	mov ax, SEL_DATA32
	mov ds, ax
	; 16 bytes pushed: [esp+16] EIP, +20 CS, +24 EFLAGS, +28 ESP, +32 SS
	movzx ebx, word [esp + 32]
	shl ebx, 4
	movzx ecx, word [esp + 28]
	sub cx, 6
	mov [esp + 28], cx
	add ebx, ecx
	mov ax, [esp + 16]
	mov [ebx], ax                       ; IP
	mov ax, [esp + 20]
	mov [ebx + 2], ax                   ; CS
	mov ax, [esp + 24]
	mov [ebx + 4], ax                   ; FLAGS
	and dword [esp + 24], ~0x300        ; IF = TF = 0 in the handler
	movzx eax, word [0x13 * 4]
	mov [esp + 16], eax
	movzx eax, word [0x13 * 4 + 2]
	mov [esp + 20], eax
	pop ds
	pop ecx
	pop ebx
	pop eax
	iretd

; pm_to_real: INT 30h from V86 mode -> real mode at real_again (SS:SP = 0:7C00).
pm_to_real:
	jmp SEL_CODE16:.pm16
bits 16
.pm16:
	mov ax, SEL_DATA16
	mov ds, ax
	mov es, ax
	mov fs, ax
	mov gs, ax
	mov ss, ax
	mov eax, cr0
	and al, 0xFE
	mov cr0, eax
	jmp 0:.rm
.rm:
	xor ax, ax
	mov ds, ax
	mov es, ax
	mov fs, ax
	mov gs, ax
	mov ss, ax
	mov esp, 0x7C00
	o32 lidt [v_rmidt]
	mov al, [v_picm1]
	out 0x21, al
	mov al, [v_picm2]
	out 0xA1, al
	sti
	cld
	jmp real_again
bits 32

; pm_gp: #GP. Frame: error code, EIP, CS, ...
pm_gp:
	mov ax, SEL_DATA32
	mov ds, ax
	mov esi, s_gp
	call pstr32
	mov eax, [esp]
	call hex32_32
	add esp, 4
	jmp pm_fault_tail

; pm_unexpected: any other vector. Frame: EIP, CS, ... (error code, if any, not told apart)
pm_unexpected:
	mov ax, SEL_DATA32
	mov ds, ax
	mov esi, s_unexp
	call pstr32
pm_fault_tail:
	mov esi, s_cs
	call pstr32
	mov eax, [esp + 4]
	call hex32_32
	mov esi, s_eip
	call pstr32
	mov eax, [esp]
	call hex32_32
	mov al, 13
	call putc32
	mov al, 10
	call putc32
	mov al, EXIT_FATAL
	out DEBUG_EXIT, al
.h:
	cli
	hlt
	jmp .h

; putc32: AL to COM1. Preserves all.
putc32:
	push edx
	push ecx
	push eax
	mov dx, COM1 + 5
	mov ecx, 0x100000
.w:
	in al, dx
	test al, 0x20
	jnz .tx
	loop .w
.tx:
	pop eax
	push eax
	mov dx, COM1
	out dx, al
	pop eax
	pop ecx
	pop edx
	ret

; pstr32: print the NUL-terminated string at ESI. Clobbers ESI, AL.
pstr32:
	lodsb
	test al, al
	jz .e
	call putc32
	jmp pstr32
.e:
	ret

; hex32_32: EAX as 8 hex digits. Preserves all.
hex32_32:
	push eax
	push ecx
	mov ecx, 8
.l:
	rol eax, 4
	push eax
	and al, 0x0F
	add al, '0'
	cmp al, '9'
	jbe .d
	add al, 'a' - '0' - 10
.d:
	call putc32
	pop eax
	loop .l
	pop ecx
	pop eax
	ret

s_gp:    db 13, 10, "FAULT GP err=", 0
s_unexp: db 13, 10, "FAULT UNEXPECTED", 0
s_cs:    db " cs=", 0
s_eip:   db " eip=", 0

; (assembly fails here, with a negative count, if the guest outgrows GUEST_SECTORS)
	times GUEST_SECTORS * 512 - ($ - $$) db 0
