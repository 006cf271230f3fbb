; demo.asm: the `make run` guest: shows on screen and COM1 that it booted from inside the VHD, then waits.
;
; Layout: LBA 0 boot sector (mbr.inc, loads the rest with AH=02h), LBA 1
; demo parameters (DEMO_*: written by tests/qemu/progs/mkdemo.sh), LBA 2.. this code.
; tests/qemu/progs/mkdemo.sh also puts a marker sector (text, NUL-terminated) at
; DEMO_MARKER_LBA; the demo reads it back through INT 13h AH=42h.

GUEST_SECTORS equ 8
%include "mbr.inc"

DEMO         equ 0x7E00
DEMO_MAGIC   equ DEMO + 0          ; "DEMO"
DEMO_MARKER  equ DEMO + 4          ; dword: LBA of the marker sector
BUF          equ 0x1000            ; segment of a 1-sector buffer (linear 0x10000)
EDD_BUF      equ 0x0500

v_drive      equ VAR_FREE + 0
DAP          equ VAR_FREE + 0x10

param_sector:
	db "DEMO"
	dd 2048                       ; default marker LBA (tests/qemu/progs/mkdemo.sh writes its own)
	times 512 - ($ - param_sector) db 0

stage2:
	mov al, [v_boot_drive]
	mov [v_drive], al
	mov ax, 0x0003                ; 80x25 text, clears the screen
	int 0x10
	mov byte [v_echo_vga], 1      ; from here on: COM1 and the screen
	call crlf
	P `  vhdboot demo: this program was booted from INSIDE a VHD image.`
	call crlf
	call crlf
	P `  boot drive (DL)       : `
	mov al, [v_drive]
	call hex8
	P `h`
	call crlf

	P `  EDD (INT 13h AH=41h)  : `
	mov ah, 0x41
	mov bx, 0x55AA
	mov dl, [v_drive]
	int 0x13
	jc .no41
	cmp bx, 0xAA55
	jne .no41
	P `version `
	mov al, ah
	call hex8
	P `h, features `
	mov ax, cx
	call hex16
	P `h`
	jmp .e41
.no41:
	P `not supported`
.e41:
	call crlf

	P `  sectors (AH=48h)      : `
	mov word [EDD_BUF], 0x1A
	mov ah, 0x48
	mov dl, [v_drive]
	mov si, EDD_BUF
	int 0x13
	jc .no48
	mov eax, [EDD_BUF + 0x14]
	call hex32
	mov eax, [EDD_BUF + 0x10]
	call hex32
	P `h (`
	mov eax, [EDD_BUF + 0x10]
	shr eax, 11                   ; sectors -> MiB (fine below 2 TiB)
	mov edx, [EDD_BUF + 0x14]
	shl edx, 21
	or eax, edx
	call dec32
	P ` MiB)`
	jmp .e48
.no48:
	P `AH=48h failed`
.e48:
	call crlf

	; our own LBA 0 through AH=42h: must be this boot sector
	P `  LBA 0 via AH=42h      : `
	xor eax, eax
	call read1
	jc .bad0
	push es
	push BUF
	pop es
	cmp word [es:510], 0xAA55
	jne .bad0s
	mov si, 0x7C00
	xor di, di
	mov cx, 256
	repe cmpsw                    ; DS:SI (our boot sector in memory) vs ES:DI (read back)
	pop es
	jne .diff0
	P `55AAh signature, identical to the sector booted`
	jmp .e0
.bad0s:
	pop es
.bad0:
	P `read failed or no 55AAh`
	jmp .e0
.diff0:
	P `55AAh ok but differs from the boot sector!`
.e0:
	call crlf

	P `  marker sector         : LBA `
	cmp dword [DEMO_MAGIC], "DEMO"
	jne .nomark
	mov eax, [DEMO_MARKER]
	call dec32
	P ` says "`
	call read1
	jc .nomark
	push ds
	push BUF
	pop ds
	xor si, si
	mov cx, 72
.m:
	lodsb
	test al, al
	jz .me
	call putc
	loop .m
.me:
	pop ds
	P `"`
	jmp .em
.nomark:
	P `unreadable`
.em:
	call crlf
	call crlf
	P `  INT 13h handler       : `
	mov ax, [0x13 * 4 + 2]
	call hex16
	P `:`
	mov ax, [0x13 * 4]
	call hex16
	P ` (a BIOS's own is in segment F000h)`
	call crlf
	call crlf
	P `  Quit QEMU with Ctrl-A X.`
	call crlf
	P `DEMO DONE`
	call crlf
.halt:
	sti
	hlt
	jmp .halt

;---------------------------------------------------------------------------
; read1: one sector at LBA EAX of the boot drive into BUF:0 with AH=42h; CF on failure.
read1:
	mov word [DAP], 0x10
	mov word [DAP + 2], 1
	mov word [DAP + 4], 0
	mov word [DAP + 6], BUF
	mov [DAP + 8], eax
	mov dword [DAP + 12], 0
	mov ah, 0x42
	mov dl, [v_drive]
	mov si, DAP
	int 0x13
	ret

; dec32: print EAX in decimal. Preserves all.
dec32:
	pushad
	mov ebx, 10
	xor cx, cx
.d:
	xor edx, edx
	div ebx
	push dx
	inc cx
	test eax, eax
	jnz .d
.p:
	pop ax
	add al, '0'
	call putc
	loop .p
	popad
	ret

	times GUEST_SECTORS * 512 - ($ - $$) db 0
