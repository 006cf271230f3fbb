; mbr.asm: a DOS-style master boot record (tests/qemu/thirdparty/doschain; tests/qemu/test_guests.py).
; Relocates itself to 0:0600, asks the BIOS for the drive geometry (INT 13h AH=08h),
; finds the active partition and loads its boot record to 0:7C00 with INT 13h AH=02h
; using the CHS address stored in the partition table (as the MS-DOS MBR does),
; then jumps to it with DL = drive and DS:SI -> the partition entry.
; Errors go to COM1 as "DOSCHAIN-MBR-ERROR <what>" (the UART is used as the BIOS left it).
bits 16
org 0x600

start:
	cli
	xor ax, ax
	mov ss, ax
	mov sp, 0x7C00
	mov ds, ax
	mov es, ax
	sti
	cld
	mov si, 0x7C00
	mov di, 0x0600
	mov cx, 256
	rep movsw
	jmp 0:relocated

relocated:
	mov [drive], dl
	push es
	mov ah, 0x08
	int 0x13
	pop es
	mov si, msg_geom
	jc fail
	and cl, 0x3F
	jz fail                         ; 0 sectors per track: no usable geometry

	mov si, 0x600 + 0x1BE
	mov cx, 4
.find:
	cmp byte [si], 0x80
	je found
	add si, 16
	loop .find
	mov si, msg_noactive
	jmp fail

found:
	mov di, 5                       ; tries, with a reset between them
.read:
	mov bx, 0x7C00
	mov ax, 0x0201
	mov dh, [si + 1]                ; head
	mov cx, [si + 2]                ; CL = sector | cyl 8-9 << 6, CH = cyl 0-7
	mov dl, [drive]
	push si
	push di
	int 0x13
	pop di
	pop si
	jnc .ok
	xor ax, ax
	mov dl, [drive]
	int 0x13
	dec di
	jnz .read
	mov si, msg_read
	jmp fail
.ok:
	cmp word [0x7DFE], 0xAA55
	je .go
	mov si, msg_sig
	jmp fail
.go:
	mov dl, [drive]
	jmp 0:0x7C00                    ; DS:SI = the partition entry

; si -> message; print "DOSCHAIN-MBR-ERROR " message on COM1, halt
fail:
	push si
	mov si, msg_err
	call puts
	pop si
	call puts
	mov al, 0x11                    ; isa-debug-exit: QEMU exits with 35 (FATAL)
	out 0xF4, al
.halt:
	hlt
	jmp .halt

puts:
	lodsb
	test al, al
	jz .done
	mov ah, al
	mov dx, 0x3FD
.wait:
	in al, dx
	test al, 0x20
	jz .wait
	mov al, ah
	mov dx, 0x3F8
	out dx, al
	jmp puts
.done:
	ret

drive:		db 0x80
msg_err:	db "DOSCHAIN-MBR-ERROR ", 0
msg_geom:	db "geometry", 13, 10, 0
msg_noactive:	db "no active partition", 13, 10, 0
msg_read:	db "read", 13, 10, 0
msg_sig:	db "no boot signature", 13, 10, 0

	times 0x1B8 - ($ - $$) db 0
	; disk signature, partition table: filled in by build_images.py
	times 510 - ($ - $$) db 0
	dw 0xAA55
