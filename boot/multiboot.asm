; multiboot.asm: the multiboot 1 header (a.out kludge: GRUB loads the image at MB_LOAD_PHYS whatever the ELF says).
;
; The kernel is linked at 0 and position-independent through segment bases
; (kernel/phys.h), so the physical addresses below are just "link address +
; MB_LOAD_PHYS". The entry code itself lives in boot/realmode.asm (_start),
; which owns every GDT load and mode switch.

MB_MAGIC        equ 0x1BADB002
MB_F_PAGEALIGN  equ 1 << 0          ; modules page-aligned (we take none)
MB_F_MEMINFO    equ 1 << 1          ; ask for mem_lower/upper and the memory map
MB_F_AOUT       equ 1 << 16         ; load/entry addresses come from this header
MB_FLAGS        equ MB_F_PAGEALIGN | MB_F_MEMINFO | MB_F_AOUT
MB_LOAD_PHYS    equ 0x100000        ; 1 MiB: always RAM, above every BIOS area

extern _start, __load_end, __bss_end

section .multiboot progbits alloc exec nowrite align=4
global mb_header
mb_header:
	dd MB_MAGIC
	dd MB_FLAGS
	dd -(MB_MAGIC + MB_FLAGS)
	dd MB_LOAD_PHYS + mb_header     ; header_addr
	dd MB_LOAD_PHYS                 ; load_addr: link address 0
	dd MB_LOAD_PHYS + __load_end    ; load_end_addr: end of .data
	dd MB_LOAD_PHYS + __bss_end     ; bss_end_addr: GRUB zeroes up to here
	dd MB_LOAD_PHYS + _start        ; entry_addr

; The load address, for the entry code in realmode.asm (absolute symbol).
global mb_load_phys
mb_load_phys equ MB_LOAD_PHYS

section .note.GNU-stack noalloc noexec nowrite progbits
