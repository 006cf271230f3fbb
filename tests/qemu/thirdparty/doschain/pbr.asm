; pbr.asm: a DOS-style partition boot record (tests/qemu/thirdparty/doschain; tests/qemu/test_guests.py).
; Loaded by mbr.asm at 0:7C00. Like a DOS boot sector it takes the partition's
; start from the BPB's hidden-sectors field, asks the BIOS for the geometry
; (INT 13h AH=08h), converts LBAs to CHS with it and loads the second stage
; (S2_LBA relative to the partition, S2_COUNT sectors) to 1000:0000 with
; INT 13h AH=02h, one call per run of sectors that stays on one track: a read
; never crosses a head or cylinder boundary. Each call is logged at 0:0500
; (word count, then 6 bytes per call: word cylinder, byte head, byte sector,
; byte count, byte 0) for stage2 to report. Then jumps to 1000:0000, DL = drive.
bits 16
org 0x7C00

LOG	equ 0x0500
MAXLOG	equ 40
S2SEG	equ 0x1000

	jmp short start
	nop
oem:		db "VHDBTDOS"
bps:		dw 512                  ; 0x0B
spc:		db 1                    ; 0x0D
reserved:	dw 1                    ; 0x0E
nfats:		db 0                    ; 0x10
rootents:	dw 0                    ; 0x11
sectors16:	dw 0                    ; 0x13
media:		db 0xF8                 ; 0x15
spf:		dw 0                    ; 0x16
bpb_spt:	dw 63                   ; 0x18
bpb_heads:	dw 255                  ; 0x1A
hidden:		dd 0                    ; 0x1C: partition start LBA (patched)
sectors32:	dd 0                    ; 0x20
drvnum:		db 0x80                 ; 0x24
		db 0
bootsig:	db 0x29                 ; 0x26
volid:		dd 0x20240001           ; 0x27
label:		db "VHDBOOT DOS"        ; 0x2B
fstype:		db "DOSCHAIN"           ; 0x36
s2_lba:		dd 0                    ; 0x3E: stage2 start, relative to the partition (patched)
s2_count:	dw 0                    ; 0x42: stage2 sectors (patched, <= 127)

start:
	cli
	xor ax, ax
	mov ss, ax
	mov sp, 0x7C00
	mov ds, ax
	mov es, ax
	sti
	cld
	mov [drvnum], dl
	mov word [LOG], 0

	push es
	mov ah, 0x08
	int 0x13
	pop es
	mov si, msg_geom
	jc fail
	mov al, cl
	and ax, 0x3F
	jz fail
	mov [spt], ax
	movzx ax, dh
	inc ax
	mov [heads], ax

	mov eax, [hidden]
	add eax, [s2_lba]
	mov [cur], eax
	mov ax, [s2_count]
	mov [left], ax
	mov word [dest], S2SEG

next:
	cmp word [left], 0
	je loaded
	; CHS of cur: sector = cur % spt + 1, track = cur / spt, head = track % heads, cyl = track / heads
	mov eax, [cur]
	xor edx, edx
	movzx ebx, word [spt]
	div ebx
	mov [sec0], dl                  ; sector - 1
	xor edx, edx
	movzx ebx, word [heads]
	div ebx
	mov [cyl], ax
	mov [head], dl
	mov si, msg_cyl
	cmp eax, 1023
	ja fail
	; n = min(left, spt - sector0): to the end of this track, never across it
	mov ax, [spt]
	sub al, [sec0]
	cmp ax, [left]
	jbe .n
	mov ax, [left]
.n:
	mov [n], al
	; log it
	mov bx, [LOG]
	cmp bx, MAXLOG
	jae .nolog
	imul di, bx, 6
	add di, LOG + 2
	mov cx, [cyl]
	mov [di], cx
	mov cl, [head]
	mov [di + 2], cl
	mov cl, [sec0]
	inc cl
	mov [di + 3], cl
	mov [di + 4], al
	mov byte [di + 5], 0
	inc word [LOG]
.nolog:
	mov byte [tries], 5
.read:
	mov es, [dest]
	xor bx, bx
	mov ah, 0x02
	mov al, [n]
	mov cx, [cyl]
	xchg ch, cl                     ; CH = cyl 0-7, CL = cyl 8-9
	shl cl, 6
	mov dl, [sec0]
	inc dl
	or cl, dl
	mov dh, [head]
	mov dl, [drvnum]
	int 0x13
	jnc .ok
	xor ax, ax
	mov dl, [drvnum]
	int 0x13
	dec byte [tries]
	jnz .read
	mov si, msg_read
	jmp fail
.ok:
	xor ax, ax
	mov es, ax
	movzx eax, byte [n]
	add [cur], eax
	sub [left], ax
	shl ax, 5                       ; 512-byte sectors -> paragraphs
	add [dest], ax
	jmp next

loaded:
	mov dl, [drvnum]
	jmp S2SEG:0

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

msg_err:	db "DOSCHAIN-PBR-ERROR ", 0
msg_geom:	db "geometry", 13, 10, 0
msg_cyl:	db "cylinder > 1023", 13, 10, 0
msg_read:	db "read", 13, 10, 0

spt:	dw 0
heads:	dw 0
cur:	dd 0
left:	dw 0
dest:	dw 0
cyl:	dw 0
head:	db 0
sec0:	db 0
n:	db 0
tries:	db 0

	times 510 - ($ - $$) db 0
	dw 0xAA55
