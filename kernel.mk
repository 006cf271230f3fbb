# kernel.mk: firmware build rules (vhdboot.elf, vhdboot.iso), guest programs and `make run`; included by Makefile.

# ---------------------------------------------------------------- firmware
# build/vhdboot.elf: vhd/*.c + vhdx/*.c (through VHD_SRCS) + image/*.c + drivers/*.c + fs/*.c + kernel/*.c + boot/*.asm, linked at 0
# (linker.ld; GRUB loads it at 1 MiB through the multiboot a.out kludge).
# build/vhdboot.map: symbol map. build/vhdboot.iso: GRUB (BIOS) CD, timeout 0,
# serial 115200, `multiboot /boot/vhdboot.elf` (no arguments);
# tools/mkiso.sh CMDLINE OUT.iso makes one with another command line.
KBUILD    := $(BUILD)/k
KLD       := $(CROSS)ld
KNM       := $(CROSS)nm
KASFLAGS  := -f elf32 -Wall -I./ -MD
# binutils >= 2.39 warns about our single RWX load segment (by design: one image); older ones lack the switch.
KLDFLAGS  := -m elf_i386 -nostdlib $(shell $(KLD) --help 2>/dev/null | grep -q -- --no-warn-rwx-segments && echo --no-warn-rwx-segments)
KSRCS     := $(VHD_SRCS) $(wildcard handover/*.c) $(wildcard image/*.c) $(wildcard drivers/*.c) $(wildcard fs/*.c) $(wildcard kernel/*.c)
KASMS     := $(wildcard boot/*.asm)
KOBJS     := $(KSRCS:%.c=$(KBUILD)/%.o) $(KASMS:%.asm=$(KBUILD)/%.o)
# The pieces without which there is no firmware (others' work may still be in flight).
KNEEDED   := block/blk.c boot/realmode.asm boot/multiboot.asm kernel/main.c kernel/int13.c kernel/console.c \
             kernel/string.c drivers/ata.c vhd/vhd.c
KMISSING  := $(filter-out $(wildcard $(KNEEDED)),$(KNEEDED))
# The real-mode stub's code: <= 1.5 KiB (1 KiB before the AH=42h fast path, rm_fast42); it shares its page with the hand-over table and the bounce buffer
# (kernel/resident.c), and its boot copy at 0:0600 must end below the boot copy's variables at 0:1600.
RM_STUB_MAX := 1536
# make BUILD=build/prof PROFILE=1 build/prof/vhdboot.iso: a firmware that logs, every 2048 guest INT 13h
# calls, the cycles each part of the round trip took (kernel/resident.c, docs/perf.md).
ifneq ($(PROFILE),)
KCFLAGS   += -DVHDBOOT_PROFILE
KASFLAGS  += -DVHDBOOT_PROFILE
endif

ifeq ($(KMISSING),)
kernel: $(BUILD)/vhdboot.elf $(BUILD)/vhdboot.iso
else
kernel: $(filter-out $(KMISSING:%.c=$(KBUILD)/%.o) $(KMISSING:%.asm=$(KBUILD)/%.o),$(KOBJS))
	@echo "kernel: not linking vhdboot.elf yet, missing: $(KMISSING)"
endif

$(KBUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(KCC) $(KCFLAGS) -c $< -o $@

$(KBUILD)/%.o: %.asm $(KBUILD)/regs.ok
	@mkdir -p $(dir $@)
	$(NASM) $(KASFLAGS) -MF $(@:.o=.d) -MT $@ -l $(@:.o=.lst) -o $@ $<

# boot/regs.inc must say what kernel/regs.h says (the C side static-asserts its own macros).
$(KBUILD)/regs.ok: kernel/regs.h boot/regs.inc
	@mkdir -p $(dir $@)
	@sed -n 's/^#define \(RM_REGS_[A-Z]*\) \([0-9]*\)$$/\1 \2/p' kernel/regs.h | sort > $@.h
	@sed -n 's/^\(RM_REGS_[A-Z]*\) *equ *\([0-9]*\).*/\1 \2/p' boot/regs.inc | sort > $@.inc
	@cmp -s $@.h $@.inc || { echo "boot/regs.inc does not match kernel/regs.h:"; diff $@.h $@.inc; exit 1; }
	@touch $@

# Link, then check the low stub's size (it costs conventional memory).
$(BUILD)/vhdboot.elf: $(KOBJS) linker.ld
	$(KLD) $(KLDFLAGS) -T linker.ld -Map $(BUILD)/vhdboot.map -o $@ $(KOBJS)
	@set -e; eval $$($(KNM) $@ | awk '$$3 ~ /^(rm_stub_start|rm_stub_code_end|rm_stub_data|rm_stub_end|__image_end)$$/ {print $$3 "=0x" $$1}'); \
	  n=$$((rm_stub_code_end - rm_stub_start)); v=$$((rm_stub_end - rm_stub_data)); \
	  echo "vhdboot.elf: real-mode stub $$n bytes of code + $$v bytes of variables (a page each in conventional memory: kernel/resident.c), image $$((__image_end / 1024)) KiB"; \
	  if [ $$n -gt $(RM_STUB_MAX) ]; then echo "real-mode stub code too big: $$n > $(RM_STUB_MAX)"; rm -f $@; exit 1; fi

$(BUILD)/vhdboot.iso: $(BUILD)/vhdboot.elf tools/mkiso.sh
	VHDBOOT_ELF=$(BUILD)/vhdboot.elf sh tools/mkiso.sh "" $@


# ---------------------------------------------------------------- guest programs, demo image, `make run`
# Guest programs (tests/qemu/progs/*.asm, real-mode flat binaries that boot from LBA 0 of a disk):
# int13test.bin for tests/qemu/test_firmware.py and bench/, demo.bin for `make run`.
GUEST_BINS := $(BUILD)/guest/int13test.bin $(BUILD)/guest/demo.bin $(BUILD)/guest/writetest.bin $(BUILD)/guest/protect.bin $(BUILD)/guest/v86.bin $(BUILD)/guest/qfuzz.bin
VHD ?= $(BUILD)/demo.vhd

guests: $(GUEST_BINS)
all: guests

$(BUILD)/guest/%.bin: tests/qemu/progs/%.asm
	@mkdir -p $(dir $@)
	$(NASM) -f bin -I tests/qemu/progs/ -MD $(@:.bin=.d) -MT $@ -l $(@:.bin=.lst) -o $@ $<

$(BUILD)/demo.vhd: $(BUILD)/guest/demo.bin $(BUILD)/vhdtool tests/qemu/progs/mkdemo.sh
	BUILD=$(BUILD) sh tests/qemu/progs/mkdemo.sh $@

# make run: boot $(VHD) (default: the demo) through vhdboot; quit QEMU with Ctrl-A X
# (mon:stdio = COM1 on the terminal, multiplexed with the monitor: plain stdio ignores Ctrl-A X).
run: deps
	$(MAKE) all $(BUILD)/demo.vhd
	qemu-system-i386 -accel tcg -m 256 -display none -serial mon:stdio -no-reboot \
		-cdrom $(BUILD)/vhdboot.iso -drive file=$(VHD),format=raw,if=ide,index=0 -boot d

.PHONY: guests
