# kernel.mk: firmware build rules (vhdboot.elf, vhdboot.iso), guest programs and `make run`; included by Makefile.

kernel:
	@true
