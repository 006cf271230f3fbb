# kernel.mk: firmware build rules (vhdboot.elf, vhdboot.iso), guest programs and `make run`; included by Makefile.

kernel:
	@true

# ---------------------------------------------------------------- guest programs, demo image, `make run`
# Guest programs (tests/guest/*.asm, real-mode flat binaries that boot from LBA 0 of a disk):
# int13test.bin for tests/test_firmware.py and bench/, demo.bin for `make run`.
GUEST_BINS := $(BUILD)/guest/int13test.bin $(BUILD)/guest/demo.bin
VHD ?= $(BUILD)/demo.vhd

guests: $(GUEST_BINS)
all: guests

$(BUILD)/guest/%.bin: tests/guest/%.asm
	@mkdir -p $(dir $@)
	$(NASM) -f bin -I tests/guest/ -MD $(@:.bin=.d) -MT $@ -l $(@:.bin=.lst) -o $@ $<

$(BUILD)/demo.vhd: $(BUILD)/guest/demo.bin $(BUILD)/vhdtool tests/mkdemo.sh
	BUILD=$(BUILD) sh tests/mkdemo.sh $@

# make run: boot $(VHD) (default: the demo) through vhdboot; quit QEMU with Ctrl-A X.
run: deps
	$(MAKE) all $(BUILD)/demo.vhd
	qemu-system-i386 -accel tcg -m 256 -display none -serial stdio -no-reboot \
		-cdrom $(BUILD)/vhdboot.iso -drive file=$(VHD),format=raw,if=ide,index=0 -boot d

.PHONY: guests
