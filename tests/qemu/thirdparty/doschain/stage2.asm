; stage2.asm: the second stage of the DOS-style chain (tests/qemu/thirdparty/doschain; tests/qemu/test_guests.py).
; Loaded by pbr.asm at 1000:0000 (DL = drive). Initialises COM1 itself
; (115200 8N1), reports what the boot record did and checks what it loaded:
;   DOSCHAIN-STAGE2 drive=80 count=0064 spt=003f heads=00ff
;   DOSCHAIN-READ c=0000 h=fe s=21 n=1f            one line per INT 13h AH=02h call (log at 0:0500)
;   DOSCHAIN-STAGE2-OK                              every sector 2..count-1 carries "DCS2" + its index
;   DOSCHAIN-STAGE2-BAD sector=xxxx                 (or this, for the first sector that does not)
; then ends QEMU through isa-debug-exit: 0x10 (exit 33) when OK, 0x11 (exit 35) when not.
; Sectors 0-1 are this code; build_images.py fills sector i >= 2 with "DCS2", word i, and text.
bits 16
org 0

LOG	equ 0x0500
PBR	equ 0x7C00
COM1	equ 0x3F8

start:
	mov ax, cs
	mov ds, ax
	cli
	xor ax, ax
	mov ss, ax
	mov sp, 0x7000
	sti
	cld
	mov [drive], dl

	; UART: 115200 baud (divisor 1), 8N1, FIFO on, no interrupts
	mov dx, COM1 + 1
	xor al, al
	out dx, al
	mov dx, COM1 + 3
	mov al, 0x80
	out dx, al
	mov dx, COM1
	mov al, 1
	out dx, al
	mov dx, COM1 + 1
	xor al, al
	out dx, al
	mov dx, COM1 + 3
	mov al, 0x03
	out dx, al
	mov dx, COM1 + 2
	mov al, 0xC7
	out dx, al
	mov dx, COM1 + 4
	mov al, 0x03
	out dx, al

	; geometry as the BIOS reports it now
	push es
	mov ah, 0x08
	mov dl, [drive]
	int 0x13
	pop es
	and cx, 0x3F
	mov [spt], cx
	movzx ax, dh
	inc ax
	mov [heads], ax

	; sector count from the boot record still at 0:7C00 (s2_count at offset 0x42)
	xor ax, ax
	mov es, ax
	mov ax, [es:PBR + 0x42]
	mov [count], ax

	mov si, msg_hello
	call puts
	mov al, [drive]
	call hex8
	mov si, msg_count
	call puts
	mov ax, [count]
	call hex16
	mov si, msg_spt
	call puts
	mov ax, [spt]
	call hex16
	mov si, msg_heads
	call puts
	mov ax, [heads]
	call hex16
	call crlf

	; the boot record's read log
	xor ax, ax
	mov es, ax
	mov cx, [es:LOG]
	mov di, LOG + 2
.log:
	jcxz .logdone
	mov si, msg_read
	call puts
	mov ax, [es:di]
	call hex16
	mov si, msg_h
	call puts
	mov al, [es:di + 2]
	call hex8
	mov si, msg_s
	call puts
	mov al, [es:di + 3]
	call hex8
	mov si, msg_n
	call puts
	mov al, [es:di + 4]
	call hex8
	call crlf
	add di, 6
	dec cx
	jmp .log
.logdone:

	; check sectors 2..count-1
	mov bx, 2
.check:
	cmp bx, [count]
	jae .good
	mov ax, bx
	shl ax, 5
	add ax, 0x1000
	mov es, ax
	cmp dword [es:0], "DCS2"
	jne .bad
	cmp [es:4], bx
	jne .bad
	inc bx
	jmp .check
.bad:
	mov si, msg_bad
	call puts
	mov ax, bx
	call hex16
	call crlf
	mov al, 0x11
	out 0xF4, al
	jmp halt
.good:
	mov si, msg_ok
	call puts
	mov al, 0x10
	out 0xF4, al
halt:
	cli
	hlt
	jmp halt

; ---- COM1 output
putc:
	push dx
	push ax
	mov dx, COM1 + 5
.wait:
	in al, dx
	test al, 0x20
	jz .wait
	pop ax
	mov dx, COM1
	out dx, al
	pop dx
	ret

puts:
	push ax
.next:
	lodsb
	test al, al
	jz .done
	call putc
	jmp .next
.done:
	pop ax
	ret

crlf:
	push ax
	mov al, 13
	call putc
	mov al, 10
	call putc
	pop ax
	ret

hex16:
	push ax
	mov al, ah
	call hex8
	pop ax
hex8:
	push ax
	shr al, 4
	call hex4
	pop ax
hex4:
	push ax
	and al, 0x0F
	add al, '0'
	cmp al, '9'
	jbe .d
	add al, 'a' - '0' - 10
.d:
	call putc
	pop ax
	ret

msg_hello:	db "DOSCHAIN-STAGE2 drive=", 0
msg_count:	db " count=", 0
msg_spt:	db " spt=", 0
msg_heads:	db " heads=", 0
msg_read:	db "DOSCHAIN-READ c=", 0
msg_h:		db " h=", 0
msg_s:		db " s=", 0
msg_n:		db " n=", 0
msg_bad:	db "DOSCHAIN-STAGE2-BAD sector=", 0
msg_ok:		db "DOSCHAIN-STAGE2-OK", 13, 10, 0

drive:	db 0
spt:	dw 0
heads:	dw 0
count:	dw 0

	times 1024 - 32 - ($ - $$) db 0
	db "DOSCHAIN-STAGE2 code sector 1", 0, 0, 0     ; tags this sector for the differencing child
