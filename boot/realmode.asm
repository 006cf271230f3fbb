; realmode.asm: every CPU mode switch of vhdboot: multiboot entry, GDT loads, relocation, PM<->real transitions, A20, stacks, the 16-bit INT 13h/15h/18h/19h stubs, real-mode calls (also from the resident handler) and the final jump into the guest MBR.
;
; Memory model (kernel/phys.h): the kernel is linked at 0 and runs in 32-bit
; protected mode with flat 4 GiB segments whose BASE is the physical address
; of the image (kernel_base). Pointers are physical - kernel_base (mod 2^32).
; Relocating the running kernel = copy it and reload the bases; no fix-ups.
;
; GDT (one table, in the image; its linear address changes with the image):
;   0x08 code32  base kernel_base, 4 GiB       (C code)
;   0x10 data32  base kernel_base, 4 GiB       (C data, stack)
;   0x18 code16  base = resident stub, 64 KiB  (trip A's way back to real mode)
;   0x20 data16  base 0, 64 KiB                 (real-mode-compatible caches)
;   0x28 code16  base = the stub copy trip B uses, 64 KiB
;
; One piece of 16-bit code (section .rm16, rm_stub_start..rm_stub_end) runs
; in conventional memory, addressed CS:R(label) so it runs at any segment
; (it never writes its code, only its variables). Two copies of it are used:
;   the resident copy, placed below the lowered 40:13 by rm_place_stub and
;     kept for the guest's lifetime: the INT hooks (trip A) and the calls
;     the resident handler makes into the BIOS (trip B);
;   the boot copy at RM_BOOT_LINEAR (free memory after the BDA), rewritten
;     before every trip B until the resident copy exists, so real-mode calls
;     work before and without it.
; The stub's code comes first; its variables (everything the stub writes)
; start RM_DATA_OFF (4 KiB) after its start, so in every copy they are in
; another page than the code (see rm_stub_data for why). The low
; allocation of the resident copy (kernel/resident.c) is a code page
; (hand-over table, stub code, the BIOS backend's bounce buffer) and the
; variables' page (variables, the real-mode stack trip B uses from the
; resident handler, the BIOS call packet area); none is guest memory.
;
; Two kinds of trip:
;   A (guest -> us): INT 13h/15h/18h/19h in real mode -> rm_service saves the
;     guest's registers into rm_frame, switches to PM on rm_stack, calls
;     rm_dispatch(frame) (kernel/resident.c), returns to real mode, patches CF
;     in the caller's FLAGS image, IRET. Interrupts stay off in PM.
;   B (kernel -> BIOS): rm_trip from C (rm_call, rm_farcall, rm_boot,
;     rm_halt) drops to real mode, does one INT (by far call through the IVT,
;     so our own hooks are honoured) or one far call, comes back to PM on the
;     caller's stack. Its real-mode stack: 0:7C00 from the kernel's boot
;     sequence; the resident stack when trip A is active (the guest called
;     us); the stack trip A came in on when trip B runs inside trip B (the
;     kernel's INT 13h read of the MBR reaches our hook, whose disk is served
;     by the BIOS: B -> A -> B). At most RM_MAX_DEPTH trips B nest; a deeper
;     one is refused (rm_trip returns -1), never a hang.

%include "boot/regs.inc"

SEL_CODE32      equ 0x08
SEL_DATA32      equ 0x10
SEL_CODE16      equ 0x18
SEL_DATA16      equ 0x20
SEL_CODE16B     equ 0x28

RM_OP_INT       equ 0               ; rm_trip: INT arg (far call through the IVT) with rm_callframe
RM_OP_BOOT      equ 1               ; jump to 0:7C00 with DL = arg
RM_OP_HALT      equ 2               ; sti; hlt forever
RM_OP_FAR       equ 3               ; far call to arg (seg << 16 | off) with rm_callframe
RM_MAX_DEPTH    equ 2               ; trips B in flight at once (B -> A -> B)

RM_STACK_B      equ 0x7C00          ; trip B real-mode stack top from the boot sequence (below the MBR)
RM_BOOT_LINEAR  equ 0x0600          ; the boot copy of the stub (free memory after the BDA)
RM_DATA_OFF     equ 0x1000          ; the stub's variables, from its start (a page away from its code)
RM_STACK_SIZE   equ 8192            ; trip A protected-mode stack
RM_FAST_MAX     equ 4               ; rm_fast13 rows (drives 80h-83h); kernel/resident.h RESIDENT_FAST_MAX
RM_FT_DRIVE     equ 0               ; row: the BIOS drive number (0: not served in real mode)
RM_FT_BIT       equ 1               ; row: 1 << n for drive 80h+n (rm_fast_done)
RM_FT_FLAGS     equ 2               ; row: RM_FT_WRITABLE
RM_FT_WRITABLE  equ 1               ; AH=43h may be served too
RM_FT_START     equ 4               ; row: the drive's sector 0 on the BIOS disk (64-bit)
RM_FT_SECTORS   equ 12              ; row: the end of the sectors it serves (32-bit; the drive's size, or a window's end)
RM_FT_LO        equ 16              ; row: the first sector it serves (32-bit; 0 for a table row)
RM_FT_SHIFT     equ 3               ; row: log2 of a table row's block size in sectors
RM_FT_TABLE     equ 2               ; row flag: a dynamic image: sectors from the row's window table, not RM_FT_START
RM_FT_SIZE      equ 32
RM_WT_K         equ 8               ; window table: blocks per drive (direct-mapped by block & (K - 1)); kernel/resident.h RESIDENT_WT_K
RM_WT_TAG       equ 0               ; entry: block + 1 (32-bit; 0: empty)
RM_WT_START     equ 4               ; entry: the BIOS disk's sector of the block's virtual sector 0 (64-bit, mod 2^64)
RM_WT_ENTRY     equ 12
RM_WT_ROW       equ RM_WT_K * RM_WT_ENTRY
BOOT_STACK_SIZE equ 16384

%define R(x) ((x) - rm_stub_start)  ; offset of a label inside the stub
%define F(f) (R(rm_frame) + RM_REGS_ %+ f)
%define CF_(f) (R(rm_callframe) + RM_REGS_ %+ f)

; PM16_TO_REAL ptr: the drop from 16-bit protected mode to real mode shared by rm_ret16 and rm16_call:
; every data segment register gets SEL_DATA16 (64 KiB limits in the hidden caches, as real mode wants),
; CR0.PE is cleared, and a far jump through the 16:16 pointer at [cs:R(ptr)] reloads CS in real mode.
; Mode in: 16-bit PM, IF=0. Clobbers EAX.
%macro PM16_TO_REAL 1
	mov ax, SEL_DATA16
	mov ds, ax
	mov es, ax
	mov fs, ax
	mov gs, ax
	mov ss, ax
	mov eax, cr0
	and al, 0xFE
	mov cr0, eax
	jmp far [cs:R(%1)]
%endmacro

extern kmain, rm_dispatch
extern mb_load_phys, __bss_start, __bss_end

global _start, kernel_base, boot_tsc, rm_low
global rm_relocate, rm_place_stub, rm_trip, rm_boot, rm_halt, rm_trip_depth
global rm_stub_start, rm_stub_end, rm_stub_code_end, rm_stub_data
%ifdef VHDBOOT_PROFILE
global rm_prof_in, rm_prof_out
%endif
global rm_int13_entry, rm_int15_entry, rm_int18_entry, rm_int19_entry
global rm_int13_body
global rm_ndrives, rm_bios_hd, rm_orig13, rm_orig15, rm_orig18, rm_orig19
global rm_calls, rm_v86_count, rm_busy_count, rm_tag, rm_trips, rm_trips_refused
global rm_fast_tab, rm_fast_wt, rm_stub_boot_end, rm_fast_vec, rm_fast_lo, rm_fast_calls, rm_fast_fails, rm_fast_done

; ======================================================================
section .data
align 16
rm_gdt:
	dq 0
	dw 0xFFFF, 0
	db 0, 0x9A, 0xCF, 0             ; 0x08 code32, G=1 D=1, base patched
	dw 0xFFFF, 0
	db 0, 0x92, 0xCF, 0             ; 0x10 data32, G=1 B=1, base patched
	dw 0xFFFF, 0
	db 0, 0x9A, 0x00, 0             ; 0x18 code16 readable, base = stub
	dw 0xFFFF, 0
	db 0, 0x92, 0x00, 0             ; 0x20 data16, base 0
	dw 0xFFFF, 0
	db 0, 0x9A, 0x00, 0             ; 0x28 code16 readable, base = boot stub
rm_gdt_end:

align 4
rm_kgdtr:       dw rm_gdt_end - rm_gdt - 1
                dd 0                ; linear address of rm_gdt (kernel_base + rm_gdt)
kernel_base:    dd 0                ; physical address of link address 0
rm_low:         dd 0                ; kernel pointer to the resident stub copy (0: none)
rm_cur:         dd 0                ; kernel pointer to the copy the current trip B uses
rm_saved_esp:   dd 0                ; trip B: the C caller's ESP (the outer one's is on the stack)
rm_trip_depth:  dd 0                ; trips B in flight
rm_trips:       dd 0                ; trips B made (statistics)
rm_trips_refused: dd 0              ; trips B refused (nested too deep)
align 8
boot_tsc:       dq 0                ; TSC at multiboot entry

; ======================================================================
section .bss
align 16
boot_stack:     resb BOOT_STACK_SIZE
boot_stack_top:
rm_stack:       resb RM_STACK_SIZE
rm_stack_top:

; ======================================================================
section .text
bits 32

; ----------------------------------------------------------------------
; _start: multiboot entry.
; Mode in:  32-bit PM from GRUB, flat segments (base 0), IF=0, ESP undefined,
;           EAX = 0x2BADB002, EBX = physical address of the multiboot info.
; Mode out: 32-bit PM, our GDT, segment bases = load address; calls
;           kmain(magic, mbi_phys) on boot_stack. Never returns.
; ----------------------------------------------------------------------
_start:
	cli
	cld
	mov esi, eax                    ; magic
	rdtsc                           ; first thing: the boot-time origin
	mov ebp, mb_load_phys           ; where the a.out kludge put link address 0
	mov [ebp + boot_tsc], eax
	mov [ebp + boot_tsc + 4], edx
	; .bss is zeroed by GRUB (bss_end_addr), but cheap to be sure.
	lea edi, [ebp + __bss_start]
	mov ecx, __bss_end
	sub ecx, __bss_start
	shr ecx, 2
	xor eax, eax
	rep stosd
	lea esp, [ebp + boot_stack_top] ; flat view of our stack, until the GDT load
	mov [ebp + kernel_base], ebp
	mov eax, ebp
	mov edx, ebp
	call rm_gdt_rebase
	jmp SEL_CODE32:.based
.based:
	mov ax, SEL_DATA32              ; a stack in the new segments first
	mov ss, ax
	mov esp, boot_stack_top
	call rm_load_data_segs
	push ebx                        ; mbi (physical)
	push esi                        ; magic
	call kmain
.dead:
	cli
	hlt
	jmp .dead

; ----------------------------------------------------------------------
; rm_set_desc_base: write a segment base into a GDT descriptor.
; Mode: 32-bit PM (any bases). In: EDI = descriptor, EAX = base.
; Out: none. Clobbers: nothing (EAX restored).
; ----------------------------------------------------------------------
rm_set_desc_base:
	mov [edi + 2], ax
	ror eax, 16
	mov [edi + 4], al
	mov [edi + 7], ah
	ror eax, 16
	ret

; ----------------------------------------------------------------------
; rm_gdt_rebase: point the 32-bit descriptors and the GDTR of an image's
; GDT at a new base and load that GDT (the caller then far-jumps to
; SEL_CODE32 and reloads the data segments: rm_load_data_segs).
; Mode: 32-bit PM (any bases). In: EAX = new base (physical address of link
; address 0), EDX = the image (as the current DS sees it). Out: GDTR loaded.
; Clobbers: EDI.
; ----------------------------------------------------------------------
rm_gdt_rebase:
	lea edi, [edx + rm_gdt + SEL_CODE32]
	call rm_set_desc_base
	lea edi, [edx + rm_gdt + SEL_DATA32]
	call rm_set_desc_base
	lea edi, [eax + rm_gdt]
	mov [edx + rm_kgdtr + 2], edi
	lgdt [edx + rm_kgdtr]
	ret

; ----------------------------------------------------------------------
; rm_load_data_segs: DS ES FS GS SS = SEL_DATA32 (after a GDT load or a
; return from real mode). Mode: 32-bit PM, CS = SEL_CODE32, SS already
; SEL_DATA32 (the call's return address must be where RET finds it).
; Clobbers: AX.
; ----------------------------------------------------------------------
rm_load_data_segs:
	mov ax, SEL_DATA32
	mov ds, ax
	mov es, ax
	mov fs, ax
	mov gs, ax
	mov ss, ax
	ret

; ----------------------------------------------------------------------
; void rm_relocate(uint32_t new_base)
; Copy the whole running image (code, data, bss, this stack) to physical
; new_base and continue there: new GDT bases, new GDTR, reloaded segments.
; Mode: 32-bit PM in and out (IF=0). cdecl; clobbers EAX, ECX, EDX.
; Kernel pointers stay valid; physical addresses turned into pointers
; before the call do not (phys_ptr depends on kernel_base).
; Caller guarantees [new_base, new_base + __bss_end) is free RAM that does
; not overlap the current image.
; ----------------------------------------------------------------------
rm_relocate:
	push esi
	push edi
	push ebx
	mov ebx, [esp + 16]             ; new base
	mov edi, ebx
	sub edi, [kernel_base]          ; the new image, seen from here
	mov edx, edi
	xor esi, esi
	mov ecx, __bss_end
	shr ecx, 2
	cli
	rep movsd                       ; the stack above is copied as it is now
	mov eax, ebx
	call rm_gdt_rebase
	jmp SEL_CODE32:.moved           ; same offset, new base: now in the copy
.moved:
	mov ax, SEL_DATA32              ; the stack moved with the image: same ESP, new base
	mov ss, ax
	call rm_load_data_segs
	mov [kernel_base], ebx
	pop ebx
	pop edi
	pop esi
	ret

; ----------------------------------------------------------------------
; void rm_place_stub(uint32_t linear, uint32_t stack_top)
; Copy the stub to linear (16-byte aligned, < 1 MiB - 64 KiB) and make it
; the resident copy: its segment, GDTR copy, far pointers, the code16
; descriptor base, rm_low, and the real-mode stack trip B uses from the
; resident handler (linear:stack_top, stack_top <= 64 KiB, 0 = none). C
; fills rm_ndrives/rm_orig* in the image first. Call after the last
; rm_relocate (the GDTR copy holds the GDT's address).
; Mode: 32-bit PM in and out. cdecl; clobbers EAX, ECX, EDX.
; ----------------------------------------------------------------------
rm_place_stub:
	push esi
	push edi
	mov eax, [esp + 12]
	mov edx, eax
	shr edx, 4
	mov [rm_stub_seg], dx
	mov [rm_ret_ptr + 2], dx
	mov [rm_callrm_ptr + 2], dx
	mov [rm_b_ss], dx
	mov ecx, [esp + 16]
	mov [rm_b_sp], cx
	mov ecx, [kernel_base]
	add ecx, rm_gdt
	mov [rm_gdtr + 2], ecx
	lea edi, [rm_gdt + SEL_CODE16]
	call rm_set_desc_base
	sub eax, [kernel_base]
	mov [rm_low], eax
	mov edi, eax
	call rm_copy_stub
	pop edi
	pop esi
	ret

; ----------------------------------------------------------------------
; rm_copy_stub: copy the stub's code and its variables (RM_DATA_OFF further
; on) to EDI; the bytes between them are not written (kernel/resident.c
; puts the hand-over table's neighbours and the bounce buffer there).
; Mode: 32-bit PM. In: EDI = the copy (kernel pointer). Clobbers ECX, ESI.
; ----------------------------------------------------------------------
rm_copy_stub:
	push edi
	mov esi, rm_stub_start
	mov ecx, (rm_stub_code_end - rm_stub_start + 3) / 4
	rep movsd
	mov edi, [esp]
	add edi, RM_DATA_OFF
	mov esi, rm_stub_data
	mov ecx, (rm_stub_boot_end - rm_stub_data + 3) / 4   ; the window tables after them: resident copy only (C zeroes them)
	rep movsd
	pop edi
	ret

; ----------------------------------------------------------------------
; int rm_trip(uint32_t op, uint32_t arg, struct rm_regs *r)
; Trip B. op RM_OP_INT: INT arg in real mode (PUSHF + far call through the
; IVT with IF=1 in the pushed image, so hooked vectors, ours included, are
; taken); RM_OP_FAR: far call to arg (seg << 16 | off) the same way;
; registers from *r (EAX..EBP, DS, ES; FLAGS and vector ignored), results
; with FLAGS stored back. RM_OP_BOOT (arg = drive) and RM_OP_HALT do not
; return (r may be 0). Returns 0, or -1 without leaving PM when
; RM_MAX_DEPTH trips are already in flight (*r untouched).
; Mode: 32-bit PM in and out (IF=0 on return); real mode with IF=1 during
; the call. cdecl; clobbers EAX, ECX, EDX.
; ----------------------------------------------------------------------
rm_trip:
	push ebp
	push ebx
	push esi
	push edi
	cmp dword [rm_trip_depth], RM_MAX_DEPTH
	jae .refuse
	call rm_b_prepare               ; EBX = the stub copy
	mov eax, [esp + 20]
	mov [ebx + R(rm_call_op)], al
	mov eax, [esp + 24]
	mov [ebx + R(rm_call_ptr)], eax
	mov esi, [esp + 28]
	test esi, esi
	jz .go
	lea edi, [ebx + R(rm_callframe)]
	mov ecx, RM_REGS_SIZE / 4
	rep movsd
.go:
	push ebx
	call rm_go_real
	pop esi
	add esi, R(rm_callframe)
	mov edi, [esp + 28]
	mov ecx, RM_REGS_SIZE / 4
	rep movsd
	inc dword [rm_trips]
	xor eax, eax
.out:
	pop edi
	pop esi
	pop ebx
	pop ebp
	ret
.refuse:
	inc dword [rm_trips_refused]
	mov eax, -1
	jmp .out

; ----------------------------------------------------------------------
; void rm_boot(uint32_t drive)  -- noreturn
; Trip B without return: real mode, DS=ES=FS=GS=SS=0, SP=7C00h, DL=drive,
; all other general registers 0, IF=1, far jump to 0:7C00.
; ----------------------------------------------------------------------
rm_boot:
	push dword 0
	push dword [esp + 8]
	push dword RM_OP_BOOT
	call rm_trip                    ; returns only if refused: cannot happen at depth 0
	jmp rm_halt

; ----------------------------------------------------------------------
; void rm_halt(void)  -- noreturn
; Trip B without return: real mode, IF=1, HLT forever (timer and keyboard
; interrupts keep being served, the machine stays responsive). From inside
; a trip (depth limit reached) it halts in PM with interrupts off instead.
; ----------------------------------------------------------------------
rm_halt:
	push dword 0
	push dword 0
	push dword RM_OP_HALT
	call rm_trip
.pm:
	cli
	hlt
	jmp .pm

; ----------------------------------------------------------------------
; rm_b_prepare: internal to trip B. Choose the stub copy: the resident one
; if placed, else a fresh boot copy at RM_BOOT_LINEAR (pointed at the
; current GDT: the kernel may have moved since); set the code16 descriptor
; for it and rm_cur.
; Mode: 32-bit PM. Out: EBX = kernel pointer to the copy.
; Clobbers EAX, ECX, EDX (ESI, EDI preserved).
; ----------------------------------------------------------------------
rm_b_prepare:
	push esi
	push edi
	mov ebx, [rm_low]
	test ebx, ebx
	jnz .have
	mov ebx, RM_BOOT_LINEAR
	sub ebx, [kernel_base]
	mov edi, ebx
	call rm_copy_stub
	mov word [ebx + R(rm_callrm_ptr) + 2], RM_BOOT_LINEAR >> 4
	mov ecx, [kernel_base]
	add ecx, rm_gdt
	mov [ebx + R(rm_gdtr) + 2], ecx
.have:
	mov eax, ebx
	add eax, [kernel_base]
	lea edi, [rm_gdt + SEL_CODE16B]
	call rm_set_desc_base
	mov [rm_cur], ebx
	pop edi
	pop esi
	ret

; ----------------------------------------------------------------------
; rm_go_real: internal to trip B. Choose the real-mode stack (see the
; header: 0:7C00, the resident stack, or below trip A's entry stack when
; nested), count the trip, save ESP (the outer trip's saved ESP on the
; stack), leave for rm16_call; the way back lands in rm_call_back, which
; restores both and returns to rm_go_real's caller.
; Mode: 32-bit PM in/out. In: EBX = the stub copy. Clobbers all but ESP.
; ----------------------------------------------------------------------
rm_go_real:
	xor eax, eax
	mov edx, RM_STACK_B             ; the kernel's own trip: 0:7C00
	cmp dword [rm_trip_depth], 0
	jne .nested
	mov ecx, [rm_low]
	test ecx, ecx
	jz .stack
	cmp byte [ecx + R(rm_busy)], 0
	je .stack
	mov ax, [ecx + R(rm_b_ss)]      ; from the resident handler: its own stack,
	movzx edx, word [ecx + R(rm_b_sp)]
	test edx, edx
	jnz .stack
	jmp .entry                      ; or, where none was reserved, the one INT came in on
.nested:                                ; B -> A -> B: trip A came in on the outer trip's stack
	mov ecx, [rm_low]
.entry:
	mov ax, [ecx + R(rm_save_ss)]
	movzx edx, word [ecx + R(rm_save_esp)]
.stack:
	mov [ebx + R(rm_go_ss)], ax
	mov [ebx + R(rm_go_sp)], dx
	inc dword [rm_trip_depth]
	push dword [rm_saved_esp]
	mov [rm_saved_esp], esp
	cli
	jmp SEL_CODE16B:R(rm16_call)

rm_call_back:                           ; from rm_call_real, 32-bit PM, IF=0
	mov ax, SEL_DATA32              ; a stack first (SS:ESP are still the real-mode ones)
	mov ds, ax
	mov ss, ax
	mov esp, [rm_saved_esp]
	call rm_load_data_segs
	pop dword [rm_saved_esp]
	dec dword [rm_trip_depth]
	cld
	ret


; ----------------------------------------------------------------------
; rm_pm_service: trip A, 32-bit half.
; Mode in:  32-bit PM from rm_service, CS = SEL_CODE32, other segments
;           stale, IF=0. The guest's registers are in the low stub's rm_frame.
; Mode out: jumps to rm_ret16 (16-bit PM). Calls rm_dispatch(frame) on
;           rm_stack. Clobbers everything (the frame is the guest's state).
; ----------------------------------------------------------------------
rm_pm_service:
	mov ax, SEL_DATA32
	mov ss, ax
	mov esp, rm_stack_top
	call rm_load_data_segs
	cld
	mov eax, [rm_low]
	add eax, R(rm_frame)
	push eax
	call rm_dispatch
	add esp, 4
	cli
	jmp SEL_CODE16:R(rm_ret16)

; ======================================================================
; The low stub. 16-bit code, position-independent by segment: every
; memory reference is CS:R(label).
section .rm16 progbits alloc exec write align=16
bits 16
rm_stub_start:
	jmp rm_int13_entry                  ; (nothing jumps here; keeps offset 0 harmless)
	align 4
rm_tag:         db "VHDBOOT", 0         ; lets tests and OS tools find the stub

; ----------------------------------------------------------------------
; rm_int13_entry: INT 13h hook.
; Mode: real mode, IF=0 (INT), guest stack holds IP, CS, FLAGS.
; In: guest registers. Out: as the INT 13h function defines, CF in the
; caller's FLAGS image.
;  DL < 80h                       -> floppy: original vector, untouched
;  80h <= DL < 80h+n              -> emulated: rm_service (C: int13_handle)
;  80h+n <= DL < 80h+n+bios_hd    -> BIOS hard disk, shifted: DL -= n, call
;                                    the original, restore DL (except 08h:
;                                    DL = 40:75 = count + n; 15h: DX is output)
;  anything else (CD-ROM E0h...)  -> original vector, untouched
; Clobbers: nothing the function does not define.
;
; The vector points at a "safe hook" header (the MEMDISK/GRUB4DOS
; convention; docs/handover.md): a 3-byte jump over it, "$INT13SF" at +3,
; the vendor "VHDBOOT " at +11, the previous vector at +19 (rm_orig13, the
; one this hook chains to), flags at +23 (0: none defined by vhdboot).
; Windows drivers of that family (WinVBlock, FiraDisk) and FreeBSD's loader
; walk the INT 13h chain through it; no mBFT (it describes a RAM disk).
; 27 bytes in the stub's code page.
; ----------------------------------------------------------------------
rm_int13_entry:
	jmp short rm_int13_body
	nop                                 ; jump[3]
	db "$INT13SF"                       ; +3
	db "VHDBOOT "                       ; +11 vendor
rm_orig13:      dd 0                    ; +19 previous INT 13h vector (seg:off)
rm_safehook_flags: dd 0                 ; +23
	times (rm_orig13 - rm_int13_entry) - 19 db 0   ; assembly fails unless the previous vector is at +19
	times 19 - (rm_orig13 - rm_int13_entry) db 0
rm_int13_body:
	cmp dl, 0x80
	jb .chain
	push ax
	mov al, dl
	sub al, 0x80
	cmp al, [cs:R(rm_ndrives)]
	jb .ours
	sub al, [cs:R(rm_ndrives)]
	cmp al, [cs:R(rm_bios_hd)]
	pop ax
	jb .shift
.chain:
	jmp far [cs:R(rm_orig13)]
.ours:
	pop ax
	cmp ah, 0x42
	je rm_fast13
	cmp ah, 0x43
	je rm_fast13
..@rm_int13_slow:                          ; (also where rm_fast13 gives a request back)
	mov [cs:F(EAX)], eax
	mov ax, 0x13
	jmp rm_service
.shift:
	push bp
	mov bp, sp                      ; [bp+2] IP, [bp+4] CS, [bp+6] FLAGS
	push dx                         ; [bp-2] guest DX
	push ax                         ; [bp-4] guest AX, [bp-3] = function
	sub dl, [cs:R(rm_ndrives)]
	pushf
	call far [cs:R(rm_orig13)]
	push ax                         ; the BIOS's AX
	lahf                            ; AH = its SF ZF AF PF CF
	mov [bp + 6], ah                ; caller's FLAGS low byte = the BIOS's
	mov al, [bp - 3]
	cmp al, 0x15                    ; DX = sector count (output)
	je .out
	cmp al, 0x08                    ; DL = hard disk count (output)
	jne .restore_dl
	test ah, 1
	jnz .out
	; DL = 40:75, which install raised by n. Not "BIOS's DL + n": SeaBIOS
	; answers from 40:75 itself and would count our drives twice.
	push ds
	push word 0x40
	pop ds
	mov dl, [0x75]
	pop ds
	jmp .out
.restore_dl:
	mov dl, [bp - 2]
.out:
	pop ax
	mov sp, bp
	pop bp
	iret

; ----------------------------------------------------------------------
; rm_int15_entry: INT 15h hook.
; Mode: real mode, IF=0. E820h, E801h, E881h and 88h go to rm_service (C:
; int15_handle hides the resident memory); everything else chains.
; ----------------------------------------------------------------------
rm_int15_entry:
	cmp ax, 0xE820
	je .ours
	cmp ax, 0xE801
	je .ours
	cmp ax, 0xE881
	je .ours
	cmp ah, 0x88
	je .ours
	jmp far [cs:R(rm_orig15)]
.ours:
	mov [cs:F(EAX)], eax
	mov ax, 0x15
	jmp rm_service

; ----------------------------------------------------------------------
; rm_service: trip A, 16-bit real-mode half (entry).
; Mode in: real mode, IF=0, frame.EAX saved, AX = vector. Out: jumps to
; rm_pm_service in 32-bit PM (CS = SEL_CODE32), A20 on, GDTR ours.
; Refuses (INT 13h: AH=01h CF=1; INT 15h: chains to the BIOS; INT 18h/19h:
; halts) when the
; CPU is in V86 mode (CR0 cannot be written: EMM386, Windows 9x) or when
; we are already inside (recursion); each refusal is counted.
; ----------------------------------------------------------------------
rm_service:
	mov [cs:F(VECTOR)], ax
	smsw ax
	test al, 1
	jnz .v86
	cmp byte [cs:R(rm_busy)], 0
	jne .busy
	mov byte [cs:R(rm_busy)], 1
	inc dword [cs:R(rm_calls)]
	mov [cs:F(EBX)], ebx
	mov [cs:F(ECX)], ecx
	mov [cs:F(EDX)], edx
	mov [cs:F(ESI)], esi
	mov [cs:F(EDI)], edi
	mov [cs:F(EBP)], ebp
%ifdef VHDBOOT_PROFILE
	rdtsc                           ; profile build: trip A starts (EAX, EDX saved above)
	mov [cs:R(rm_prof_in)], eax
	mov [cs:R(rm_prof_in) + 4], edx
%endif
	mov [cs:F(DS)], ds
	mov [cs:F(ES)], es
	mov [cs:R(rm_save_fs)], fs
	mov [cs:R(rm_save_gs)], gs
	mov [cs:R(rm_save_ss)], ss
	mov [cs:R(rm_save_esp)], esp
	mov bp, sp
	mov ax, [bp + 4]                ; the caller's FLAGS image
	mov [cs:F(FLAGS)], ax
	o32 sidt [cs:R(rm_save_idtr)]
	; A20 through the fast gate (port 92h bit 1; never touch bit 0 =
	; reset). The guest's state is put back on the way out: DOS with
	; HIMEM toggles A20 and must find it as it left it.
	in al, 0x92
	mov [cs:R(rm_a20_saved)], al
	test al, 2
	jnz .a20_on
	or al, 2
	and al, 0xFE
	out 0x92, al
.a20_on:
	o32 lgdt [cs:R(rm_gdtr)]
	mov eax, cr0
	or al, 1
	mov cr0, eax
	jmp dword SEL_CODE32:rm_pm_service

.v86:
	inc word [cs:R(rm_v86_count)]
	jmp .refuse
.busy:
	inc word [cs:R(rm_busy_count)]
.refuse:
	mov eax, [cs:F(EAX)]
	cmp word [cs:F(VECTOR)], 0x15
	je .chain15
	ja rm_hlt_forever               ; 18h/19h: nothing to return to
	mov ah, 0x01                    ; "invalid function": the caller may retry via another path
	push bp
	mov bp, sp
	or word [bp + 6], 1             ; CF=1 in the caller's FLAGS image
	pop bp
	iret
.chain15:
	jmp far [cs:R(rm_orig15)]

; ----------------------------------------------------------------------
; rm_ret16 / rm_ret_real: trip A, way back.
; Mode in: 16-bit PM (CS = SEL_CODE16, base = stub), IF=0, from
; rm_pm_service. Mode out: real mode, back to the guest via IRET with the
; frame's registers, its CF in the caller's FLAGS, the guest's SS:ESP, FS,
; GS, IDTR and A20 state. Interrupt flag: the caller's (from its FLAGS).
; ----------------------------------------------------------------------
rm_ret16:
	PM16_TO_REAL rm_ret_ptr
rm_ret_real:
	o32 lidt [cs:R(rm_save_idtr)]
	mov al, [cs:R(rm_a20_saved)]
	test al, 2
	jnz .a20_kept
	in al, 0x92
	and al, 0xFC
	out 0x92, al
.a20_kept:
%ifdef VHDBOOT_PROFILE
	rdtsc                           ; profile build: trip A is back in real mode (EAX, EDX restored below)
	mov [cs:R(rm_prof_out)], eax
	mov [cs:R(rm_prof_out) + 4], edx
%endif
	mov ss, [cs:R(rm_save_ss)]
	mov esp, [cs:R(rm_save_esp)]
	mov bp, sp
	mov ax, [cs:F(FLAGS)]
	and ax, 1
	and word [bp + 4], 0xFFFE
	or [bp + 4], ax
	mov fs, [cs:R(rm_save_fs)]
	mov gs, [cs:R(rm_save_gs)]
	mov ebx, [cs:F(EBX)]
	mov ecx, [cs:F(ECX)]
	mov edx, [cs:F(EDX)]
	mov esi, [cs:F(ESI)]
	mov edi, [cs:F(EDI)]
	mov ebp, [cs:F(EBP)]
	mov es, [cs:F(ES)]
	mov ds, [cs:F(DS)]
	mov eax, [cs:F(EAX)]
	mov byte [cs:R(rm_busy)], 0
	iret

; FAST_RESTORE: the guest's registers as rm_fast13 saved them (flags untouched).
%macro FAST_RESTORE 0
	mov eax, [cs:R(rm_fast_regs) + 0]
	mov ebx, [cs:R(rm_fast_regs) + 4]
	mov ecx, [cs:R(rm_fast_regs) + 8]
	mov edx, [cs:R(rm_fast_regs) + 12]
	mov esi, [cs:R(rm_fast_regs) + 16]
	mov edi, [cs:R(rm_fast_regs) + 20]
	mov ebp, [cs:R(rm_fast_regs) + 24]
	mov ds, [cs:R(rm_fast_regs) + 28]
%endmacro

; ----------------------------------------------------------------------
; rm_fast13: AH=42h/43h on one of our drives, served in real mode when it
; can be: the drive's data is a plain copy of sectors on a BIOS disk
; (rm_fast_tab, filled by kernel/resident.c: a fixed VHD that is a whole
; disk or a partition on a disk the BIOS backend serves; or, for a dynamic
; image (RM_FT_TABLE), a block found in the row's window table rm_fast_wt:
; RM_WT_K fully written blocks, direct-mapped by block number, each with
; the disk's sector of its virtual sector 0, which resident_fast_moved
; fills from the C path's misses; a request must then lie in one block), the packet is an
; ordinary one (size >= 10h, no flat address, 1-127 sectors, inside the
; drive) and it and the buffer lie in conventional memory below ours
; (rm_fast_lo; the buffer from 500h); a write (43h) also needs a writable
; drive (RM_FT_WRITABLE: not mode=ro, not a read-only image) and AL != 2
; (write with verify reads back in C). Then the BIOS's INT 13h moves the
; sectors straight between the disk and the guest's buffer in one call
; (a write is as durable as the C path makes it: INT 13h has no flush, a
; BIOS disk's write is done when the BIOS returns), on trip B's resident
; real-mode stack (rm_b_ss:rm_b_sp), with our own packet (LBA moved
; by the drive's start, the buffer's address normalised so that it never
; wraps a segment): no trip A, no trip B, and nothing of ours or the
; BIOS's on the guest's stack but its INT frame. The result is what the C path
; gives for a success (AH=00h, CF clear, AL and every other register
; kept, the packet's count written back, 40:74 = 0; the drive's stored status for AH=01h is cleared by
; rm_dispatch through rm_fast_done). Anything else, and every BIOS error,
; goes to rm_int13_slow untouched (registers as they came), so the C path
; decides, retries, logs and answers as it always did.
; Mode: real mode, IF as the INT left it (0), guest stack holds IP, CS,
; FLAGS. In: guest registers, AH=42h or 43h, DL = one of our drives.
; Out: IRET to the guest, or rm_int13_slow. Clobbers: AH (00h), CF.
; ----------------------------------------------------------------------
rm_fast13:
	cmp byte [cs:R(rm_busy)], 0     ; re-entered: the C path's refusal decides
	jne ..@rm_int13_slow
	mov [cs:R(rm_fast_regs) + 0], eax   ; saved in our variables' page, not on the guest's stack:
	mov [cs:R(rm_fast_regs) + 4], ebx   ; a boot sector's stack shares a page with its code, and
	mov [cs:R(rm_fast_regs) + 8], ecx   ; every write there takes QEMU TCG's slow path (docs/perf.md)
	mov [cs:R(rm_fast_regs) + 12], edx
	mov [cs:R(rm_fast_regs) + 16], esi
	mov [cs:R(rm_fast_regs) + 20], edi
	mov [cs:R(rm_fast_regs) + 24], ebp
	mov [cs:R(rm_fast_regs) + 28], ds
	smsw ax
	test al, 1                      ; V86: the C path refuses, so must we
	jnz .back
	movzx bx, dl
	sub bl, 0x80
	cmp bl, RM_FAST_MAX
	jae .back
	shl bx, 5                       ; RM_FT_SIZE
	add bx, R(rm_fast_tab)          ; CS:BX = the drive's row
	cmp byte [cs:bx + RM_FT_DRIVE], 0
	je .back
	mov ax, [cs:R(rm_fast_regs)]    ; the guest's AX
	cmp ah, 0x42
	je .function_ok
	cmp al, 2                       ; 43h AL=2: write and verify (the C path reads back)
	je .back
	test byte [cs:bx + RM_FT_FLAGS], RM_FT_WRITABLE
	jz .back
.function_ok:
	cmp si, 0x10000 - 0x10          ; the packet must not wrap its segment
	ja .back
	mov ax, ds
	movzx eax, ax
	shl eax, 4
	movzx ecx, si
	add eax, ecx
	add eax, 0x10                   ; end of the packet (linear)
	cmp eax, [cs:R(rm_fast_lo)]
	ja .back
	mov al, [si]                    ; size
	cmp al, 0x10
	jb .back
	cmp dword [si + 4], 0xFFFFFFFF  ; FFFF:FFFF with size >= 18h: a flat address
	jne .seg_buffer
	cmp al, 0x18
	jae .back
.seg_buffer:
	movzx eax, word [si + 2]        ; count
	test ax, ax
	jz .back
	cmp ax, 127
	ja .back
	cmp dword [si + 12], 0          ; LBA above 2^32: past any drive we serve this way
	jne .back
	mov edi, [si + 8]               ; LBA
	mov ecx, edi
	add ecx, eax
	jc .back
	cmp ecx, [cs:bx + RM_FT_SECTORS]
	ja .back
	cmp edi, [cs:bx + RM_FT_LO]
	jb .back
	mov ecx, [cs:bx + RM_FT_START]  ; the disk's sector of the drive's sector 0: a fixed image's start
	mov edx, [cs:bx + RM_FT_START + 4]
	test byte [cs:bx + RM_FT_FLAGS], RM_FT_TABLE
	jz .have_start
	mov cl, [cs:bx + RM_FT_SHIFT]   ; a dynamic image: the block's entry in the row's window table
	mov edx, edi
	shr edx, cl                     ; the first sector's block
	lea ebp, [edi + eax - 1]
	shr ebp, cl                     ; the last sector's block: one block per request, else C
	cmp ebp, edx
	jne .back
	and ebp, RM_WT_K - 1
	imul bp, bp, RM_WT_ENTRY        ; the entry in its row of the table
	movzx ecx, bx
	sub cx, R(rm_fast_tab)
	shr cx, 5                       ; RM_FT_SIZE: the row's index
	imul cx, cx, RM_WT_ROW
	add bp, cx
	add bp, R(rm_fast_wt)           ; CS:BP = the entry
	inc edx                         ; its tag: block + 1
	cmp [cs:bp + RM_WT_TAG], edx
	jne .back                       ; not a fully written block C has seen: C serves it (and fills the table)
	mov ecx, [cs:bp + RM_WT_START]
	mov edx, [cs:bp + RM_WT_START + 4]
.have_start:
	add ecx, edi                    ; the LBA on the BIOS disk
	adc edx, 0
	mov [cs:R(rm_fast_dap) + 8], ecx
	mov [cs:R(rm_fast_dap) + 12], edx
	movzx ecx, word [si + 6]        ; buffer segment
	shl ecx, 4
	movzx edx, word [si + 4]
	add ecx, edx                    ; ECX = buffer (linear)
	cmp ecx, 0x500
	jb .back
	mov edx, eax
	shl edx, 9
	add edx, ecx                    ; its end
	cmp edx, [cs:R(rm_fast_lo)]
	ja .back
	mov byte [cs:R(rm_fast_dap)], 0x10
	mov byte [cs:R(rm_fast_dap) + 1], 0
	mov [cs:R(rm_fast_dap) + 2], ax
	mov dx, cx
	and dx, 15
	mov [cs:R(rm_fast_dap) + 4], dx
	shr ecx, 4
	mov [cs:R(rm_fast_dap) + 6], cx
	mov [cs:R(rm_fast_row)], bx
	mov dl, [cs:bx + RM_FT_DRIVE]
	mov ah, [cs:R(rm_fast_regs) + 1] ; 42h or 43h
	mov al, 0                       ; (43h: write without verify)
	mov si, cs
	mov ds, si
	mov si, R(rm_fast_dap)
	mov byte [cs:R(rm_busy)], 1     ; an INT 13h on our drives from inside the BIOS is refused, as in trip B
	mov [cs:R(rm_fast_ss)], ss      ; the BIOS runs on trip B's resident stack (variables' page), not on the
	mov [cs:R(rm_fast_sp)], sp      ; guest's: the BIOS's register frame would land in a boot sector's code page
	mov ss, [cs:R(rm_b_ss)]         ; (MOV SS holds interrupts off for the next instruction)
	mov sp, [cs:R(rm_b_sp)]
	pushf
	call far [cs:R(rm_fast_vec)]
	mov ss, [cs:R(rm_fast_ss)]      ; (MOV and IF=0 from the BIOS's IRET keep the BIOS's CF and no IRQ here)
	mov sp, [cs:R(rm_fast_sp)]
	mov byte [cs:R(rm_busy)], 0
	jc .failed
	mov bx, [cs:R(rm_fast_row)]
	mov al, [cs:bx + RM_FT_BIT]
	or [cs:R(rm_fast_done)], al
	inc dword [cs:R(rm_fast_calls)]
	mov ax, 0x40
	mov ds, ax
	mov byte [0x74], 0              ; 40:74: the last hard disk status
	mov bp, sp                      ; [bp] IP, [bp+2] CS, [bp+4] FLAGS
	and byte [bp + 4], 0xFE         ; CF=0 in the caller's FLAGS image
	mov ax, [cs:R(rm_fast_dap) + 2] ; the count moved, into the guest's packet as the C path (and SeaBIOS) write it
	mov ds, [cs:R(rm_fast_regs) + 28]
	mov si, [cs:R(rm_fast_regs) + 16]
	mov [si + 2], ax
	FAST_RESTORE
	mov ah, 0
	iret
.failed:
	inc dword [cs:R(rm_fast_fails)]
.back:
	FAST_RESTORE
	jmp ..@rm_int13_slow

;----------------------------------------------------------------------
; rm_int18_entry / rm_int19_entry: the guest gave up booting (INT 18h) or
; asked for a bootstrap (INT 19h): rm_service -> C (kernel/resident.c says
; so on COM1 and the screen, then halts with interrupts on).
; Mode: real mode; never returns.
; ----------------------------------------------------------------------
rm_int18_entry:
	mov [cs:F(EAX)], eax
	mov ax, 0x18
	jmp rm_service
rm_int19_entry:
	mov [cs:F(EAX)], eax
	mov ax, 0x19
	jmp rm_service

; ----------------------------------------------------------------------
; rm16_call / rm_call_real: trip B, real-mode half.
; Mode in: 16-bit PM (CS = SEL_CODE16B, base = this copy), IF=0, from
; rm_go_real. Real mode on SS:SP = rm_go_ss:rm_go_sp, IDTR = IVT. Then per
; rm_call_op: INT or FAR call (and back to PM at rm_call_back), BOOT (jump
; to the MBR on 0:7C00) or HALT.
; ----------------------------------------------------------------------
rm16_call:
	PM16_TO_REAL rm_callrm_ptr
rm_call_real:
	mov ss, [cs:R(rm_go_ss)]
	movzx esp, word [cs:R(rm_go_sp)]
	o32 lidt [cs:R(rm_ivt_idtr)]
	mov al, [cs:R(rm_call_op)]
	cmp al, RM_OP_BOOT
	je .boot
	cmp al, RM_OP_HALT
	je rm_hlt_forever
	cmp al, RM_OP_FAR
	je .far
	xor ax, ax                      ; RM_OP_INT: the vector's far pointer from the IVT
	mov fs, ax
	movzx bx, byte [cs:R(rm_call_ptr)]
	shl bx, 2
	mov eax, [fs:bx]
	mov [cs:R(rm_call_ptr)], eax
.far:
	mov eax, [cs:CF_(EAX)]
	mov ebx, [cs:CF_(EBX)]
	mov ecx, [cs:CF_(ECX)]
	mov edx, [cs:CF_(EDX)]
	mov esi, [cs:CF_(ESI)]
	mov edi, [cs:CF_(EDI)]
	mov ebp, [cs:CF_(EBP)]
	mov es, [cs:CF_(ES)]
	mov ds, [cs:CF_(DS)]
	sti
	pushf                           ; IF=1 in the image: the handler IRETs to IF=1
	cli                             ; and, like INT, starts with IF=0
	call far [cs:R(rm_call_ptr)]
	pushf
	cli
	mov [cs:CF_(EAX)], eax
	mov [cs:CF_(EBX)], ebx
	mov [cs:CF_(ECX)], ecx
	mov [cs:CF_(EDX)], edx
	mov [cs:CF_(ESI)], esi
	mov [cs:CF_(EDI)], edi
	mov [cs:CF_(EBP)], ebp
	mov [cs:CF_(DS)], ds
	mov [cs:CF_(ES)], es
	pop word [cs:CF_(FLAGS)]
	o32 lgdt [cs:R(rm_gdtr)]
	mov eax, cr0
	or al, 1
	mov cr0, eax
	jmp dword SEL_CODE32:rm_call_back
.boot:
	xor ax, ax
	mov ds, ax
	mov es, ax
	mov fs, ax
	mov gs, ax
	mov ss, ax
	mov esp, RM_STACK_B
	movzx edx, byte [cs:R(rm_call_ptr)]
	xor eax, eax
	xor ebx, ebx
	xor ecx, ecx
	xor esi, esi
	xor edi, edi
	xor ebp, ebp
	cld
	sti
	jmp 0x0000:0x7C00
rm_hlt_forever:
	sti
.h:
	hlt
	jmp .h

rm_stub_code_end:

; The stub's variables: RM_DATA_OFF bytes after its start, so that in every
; copy they lie in another 4 KiB page than its code (the allocation in
; kernel/resident.c keeps the code's page free of anything written per call).
; Why: an emulator that translates code (QEMU TCG) tracks writes to pages
; holding translated code and takes a slow path on every one; the variables
; below are written dozens of times per INT 13h call (measured in
; docs/perf.md: 20 us of a trip A at 2 GHz).
	times RM_DATA_OFF - ($ - rm_stub_start) db 0
rm_stub_data:
rm_gdtr:        dw rm_gdt_end - rm_gdt - 1
                dd 0                    ; linear address of the kernel's GDT
rm_stub_seg:    dw 0                    ; our own real-mode segment
rm_ret_ptr:     dw R(rm_ret_real), 0    ; far pointer: trip A back in real mode
rm_callrm_ptr:  dw R(rm_call_real), 0   ; far pointer: trip B arriving in real mode
rm_ivt_idtr:    dw 0x3FF
                dd 0                    ; the real-mode IVT
rm_b_ss:        dw 0                    ; trip B's stack from the resident handler
rm_b_sp:        dw 0
rm_go_ss:       dw 0                    ; trip B: the stack of this trip
rm_go_sp:       dw 0
align 4
rm_call_ptr:    dd 0                    ; trip B: the vector number, then the far pointer called
rm_call_op:     db 0                    ; trip B: RM_OP_*
align 4
                                        ; previous vectors (seg:off as in the IVT); INT 13h's is
                                        ; in the safe hook at rm_int13_entry (code page: written once)
rm_orig15:      dd 0
rm_orig18:      dd 0
rm_orig19:      dd 0
rm_save_esp:    dd 0                    ; trip A: the guest's stack
rm_calls:       dd 0                    ; trip A count (statistics)
rm_save_ss:     dw 0
rm_save_fs:     dw 0
rm_save_gs:     dw 0
rm_v86_count:   dw 0                    ; calls refused because the CPU was in V86 mode
rm_busy_count:  dw 0                    ; calls refused because we were already inside
rm_save_idtr:   dw 0
                dd 0
rm_ndrives:     db 0                    ; emulated hard disks (0x80 ..)
rm_bios_hd:     db 0                    ; hard disks the BIOS had (now shifted up)
rm_busy:        db 0
rm_a20_saved:   db 0                    ; port 92h as the guest had it
align 4
rm_frame:       times RM_REGS_SIZE db 0 ; trip A: struct rm_regs
rm_callframe:   times RM_REGS_SIZE db 0 ; trip B: struct rm_regs in/out
rm_fast_tab:    times RM_FAST_MAX * RM_FT_SIZE db 0   ; rm_fast13: a row per drive (kernel/resident.c fills it)
rm_fast_vec:    dd 0                    ; rm_fast13: the BIOS's INT 13h (seg:off)
rm_fast_lo:     dd 0                    ; rm_fast13: packets and buffers must end at or below this linear address
rm_fast_calls:  dd 0                    ; rm_fast13: requests served (statistics)
rm_fast_fails:  dd 0                    ; rm_fast13: BIOS errors handed to the C path
rm_fast_dap:    times 16 db 0           ; rm_fast13: the packet given to the BIOS
rm_fast_done:   db 0                    ; rm_fast13: bit n: drive 80h+n succeeded since rm_dispatch last looked
align 4
rm_fast_regs:   times 32 db 0           ; rm_fast13: the guest's EAX EBX ECX EDX ESI EDI EBP DS while it works
rm_fast_row:    dw 0                    ; rm_fast13: its row (CS:offset) across the BIOS call
rm_fast_ss:     dw 0                    ; rm_fast13: the guest's stack across the BIOS call
rm_fast_sp:     dw 0
%ifdef VHDBOOT_PROFILE
rm_prof_in:     dq 0                    ; TSC when trip A had saved the guest's registers
rm_prof_out:    dq 0                    ; TSC when trip A was back in real mode
%endif
	align 4
rm_stub_boot_end:                       ; the boot copy ends here: what follows is resident-only
rm_fast_wt:     times RM_FAST_MAX * RM_WT_ROW db 0   ; rm_fast13: a window table row per drive (resident_fast_moved fills it)
	align 4
rm_stub_end:

; The boot copy's variables end below RESIDENT_BOOT_SCRATCH (kernel/resident.h, 1780h):
; this fails to assemble when they outgrow RM_BOOT_VARS_MAX.
RM_BOOT_VARS_MAX equ 0x1780 - RM_BOOT_LINEAR - RM_DATA_OFF
section .note.vhdboot.asserts noalloc noexec nowrite progbits
	times RM_BOOT_VARS_MAX - (rm_stub_boot_end - rm_stub_data) db 0

section .note.GNU-stack noalloc noexec nowrite progbits
