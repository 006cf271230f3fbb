; protect.asm: a guest that aims INT 13h reads at vhdboot's own resident memory; they must be refused and leave the handler intact.
;
; Flat binary at LBA 0..GUEST_SECTORS-1 of the test disk (the boot sector is
; tests/qemu/progs/mbr.inc; LBA 1 is an unused parameter sector). Real mode.
; Records on COM1 (parsed by tests/qemu/test_protect.py), each printed after its INT 13h call
; returns, so the firmware's own log lines never split a record:
;   T LOW kb=<40:13 KiB> seg=<stub segment>
;   T HIGH base=<linear> len=<bytes>        the reserved E820 entry that starts where the
;                                            highest usable range above 1 MiB ends (vhdboot's region)
;   T P42LOW ah= cf= cnt=                    AH=42h into the low stub (seg:off)
;   T P02LOW ah= cf= al=                     AH=02h (CHS) into the low stub
;   T P42HIGH ah= cf= cnt=                   AH=42h, 64-bit flat address = the high region
;   T P42EDGE ah= cf= cnt=                   AH=42h, 2 sectors ending 512 bytes inside the high region
;   T CTRL ah= cf= same=                     a normal read of LBA 0 afterwards; same=1 if it equals 0:7C00
;   DONE                                     then exit 33 through isa-debug-exit

%include "mbr.inc"

GUEST_SECTORS equ 16

v_lowseg  equ VAR_FREE + 0x00        ; word
v_hibase  equ VAR_FREE + 0x04        ; dword: linear base of the high region (0 = not found)
v_hilen   equ VAR_FREE + 0x08        ; dword
v_prevend equ VAR_FREE + 0x0C        ; dword: end of the last usable E820 entry above 1 MiB
v_e820    equ VAR_FREE + 0x20        ; 24-byte E820 buffer
DAP       equ VAR_FREE + 0x40        ; 24-byte disk address packet
SCRATCH   equ 0xA000                  ; free conventional memory past the guest (0x7C00-0x9BFF)

param_sector:
	times 512 - ($ - param_sector) db 0

stage2:
	; --- where the low stub is: 40:13 (KiB of base memory) -> segment
	push ds
	mov ax, 0x40
	mov ds, ax
	mov ax, [0x13]
	pop ds
	P `T LOW kb=`
	call hex16
	shl ax, 6
	mov [v_lowseg], ax
	P ` seg=`
	call hex16
	call crlf

	; --- the high region: a reserved E820 entry that starts where a usable one above 1 MiB ends
	mov dword [v_hibase], 0
	mov dword [v_prevend], 0
	xor ebx, ebx
.e820:
	mov eax, 0xE820
	mov edx, 0x534D4150
	mov ecx, 24
	mov di, v_e820
	int 0x15
	jc .e820done
	cmp eax, 0x534D4150
	jne .e820done
	cmp dword [v_e820 + 4], 0          ; base above 4 GiB: not ours
	jne .e820next
	mov eax, [v_e820]
	cmp dword [v_e820 + 16], 1
	jne .notram
	cmp eax, 0x100000
	jb .e820next
	add eax, [v_e820 + 8]
	mov [v_prevend], eax
	jmp .e820next
.notram:
	cmp dword [v_e820 + 16], 2
	jne .e820next
	cmp eax, [v_prevend]
	jne .e820next
	cmp dword [v_hibase], 0
	jne .e820next
	mov [v_hibase], eax
	mov eax, [v_e820 + 8]
	mov [v_hilen], eax
.e820next:
	test ebx, ebx
	jnz .e820
.e820done:
	P `T HIGH base=`
	mov eax, [v_hibase]
	call hex32
	P ` len=`
	mov eax, [v_hilen]
	call hex32
	call crlf

	; --- AH=42h into the low stub
	call dap_init
	mov ax, [v_lowseg]
	mov [DAP + 6], ax
	call read42
	P `T P42LOW`
	call pr_status

	; --- AH=02h (CHS cylinder 0, head 0, sector 1) into the low stub
	push es
	mov es, [v_lowseg]
	xor bx, bx
	mov ax, 0x0201
	mov cx, 0x0001
	xor dh, dh
	mov dl, [v_boot_drive]
	int 0x13
	pop es
	setc byte [r_cf]
	mov [r_eax], ax
	P `T P02LOW ah=`
	mov al, [r_eax + 1]
	call hex8
	P ` cf=`
	mov al, [r_cf]
	call hex8
	P ` al=`
	mov al, [r_eax]
	call hex8
	call crlf

	; --- AH=42h with a 64-bit flat buffer address = the high region
	call dap_flat
	mov eax, [v_hibase]
	mov [DAP + 0x10], eax
	call read42
	P `T P42HIGH`
	call pr_status

	; --- AH=42h, two sectors whose second one lands in the first 512 bytes of the region
	call dap_flat
	mov word [DAP + 2], 2
	mov eax, [v_hibase]
	sub eax, 512
	mov [DAP + 0x10], eax
	call read42
	P `T P42EDGE`
	call pr_status

	; --- the handler still works: LBA 0 into SCRATCH equals what the BIOS loaded at 0:7C00
	call dap_init
	mov word [DAP + 4], SCRATCH
	call read42
	mov si, 0x7C00
	mov di, SCRATCH
	mov cx, 256
	repe cmpsw
	sete al
	P `T CTRL same=`
	call hex8
	call pr_status

	P `DONE`
	call crlf
	mov al, EXIT_DONE
	jmp guest_exit

; dap_init: DAP = 16 bytes, 1 sector of LBA 0 to 0000:0000 (callers patch the buffer). Clobbers EAX, DI, CX.
dap_init:
	mov di, DAP
	xor eax, eax
	mov cx, 6
	rep stosd
	mov byte [DAP], 0x10
	mov word [DAP + 2], 1
	ret

; dap_flat: DAP = 24 bytes, 1 sector of LBA 0, seg:off FFFF:FFFF (use the flat address). Clobbers EAX, DI, CX.
dap_flat:
	call dap_init
	mov byte [DAP], 0x18
	mov dword [DAP + 4], 0xFFFFFFFF
	ret

; read42: INT 13h AH=42h on the boot drive with DS:SI = DAP; AH/CF into r_eax/r_cf. Preserves nothing.
read42:
	mov si, DAP
	mov ah, 0x42
	mov dl, [v_boot_drive]
	int 0x13
	setc byte [r_cf]
	mov [r_eax], ax
	ret

; pr_status: print " ah= cf= cnt=" (cnt = the DAP's count after the call) and end the line. Preserves all.
pr_status:
	push ax
	P ` ah=`
	mov al, [r_eax + 1]
	call hex8
	P ` cf=`
	mov al, [r_cf]
	call hex8
	P ` cnt=`
	mov ax, [DAP + 2]
	call hex16
	call crlf
	pop ax
	ret

; (assembly fails here, with a negative count, if the guest outgrows GUEST_SECTORS)
	times GUEST_SECTORS * 512 - ($ - $$) db 0
