# efi/efi.mk: the UEFI front end: build/vhdboot.efi (x86_64 PE32+ application) from efi/*.c over the shared
# block/, image/, vhd/, fs/ sources and the kernel's selection (scan, imgopen, select, cmdline), plus the
# EFI guest program of the tests and `make run-efi`; included by the Makefile.
#
# Toolchain: Debian's gcc (x86_64) + gnu-efi (headers, crt0-efi-x86_64.o, libgnuefi.a's _relocate). The link
# script is gnu-efi's elf_x86_64_efi.lds with two lines added at build time (the image-format table and
# __image_end), so no third-party file is committed; objcopy turns the ELF shared object into PE32+.
EBUILD     := $(BUILD)/efi
EFI_CC     ?= gcc
EFI_OBJCOPY ?= objcopy
EFI_INC    ?= /usr/include/efi
EFI_LIB    ?= /usr/lib
EFI_CFLAGS := -std=gnu11 -O2 -g $(WARN) -ffreestanding -fno-builtin -fpic -fshort-wchar -mno-red-zone \
              -maccumulate-outgoing-args -fno-stack-protector -fno-strict-aliasing -fvisibility=hidden \
              -fno-asynchronous-unwind-tables -mgeneral-regs-only -DGNU_EFI_USE_MS_ABI \
              -isystem $(EFI_INC) -isystem $(EFI_INC)/x86_64 -MMD -MP
EFI_LDFLAGS := -nostdlib -shared -Bsymbolic -znocombreloc --no-undefined
# The shared sources: the pure libraries, the format adapters, the selection of kernel/ and its printf/string/overlay.
EFI_SHARED := $(BLOCK_SRCS) $(wildcard vhd/*.c) $(VHDX_SRCS) $(wildcard image/*.c) $(FS_SRCS) \
              kernel/scan.c kernel/imgopen.c kernel/select.c kernel/cmdline.c kernel/fmt.c kernel/string.c \
              kernel/overlay.c kernel/handover.c handover/ho.c kernel/menukey.c
EFI_SRCS   := $(wildcard efi/*.c)
EFI_OBJS   := $(EFI_SHARED:%.c=$(EBUILD)/%.o) $(EFI_SRCS:%.c=$(EBUILD)/%.o)
# The sections of the PE image (gnu-efi's list).
EFI_SECTIONS := -j .text -j .sdata -j .data -j .dynamic -j .dynsym -j .rel -j .rela -j .rel.* -j .rela.* -j .reloc

efi: $(BUILD)/vhdboot.efi $(BUILD)/efi/efiprobe.efi $(BUILD)/efi/efibench.efi $(BUILD)/efi/efibootent.efi
all: efi

$(EBUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(EFI_CC) $(EFI_CFLAGS) -c $< -o $@

# gnu-efi's script, plus the format table (image/image.h IMG_FORMAT) inside .data, its relocation inside .rela
# (else objcopy would leave it out of the PE image while _relocate still reads it), and __image_end.
$(EBUILD)/vhdboot.lds: $(EFI_LIB)/elf_x86_64_efi.lds efi/efi.mk
	@mkdir -p $(dir $@)
	sed -e 's|^\( *\)\*(\.data\*)|&\n\1. = ALIGN(8); __start_img_formats = .; KEEP(*(img_formats)) __stop_img_formats = .;|' \
	    -e 's|^\( *\)\*(\.rela\.data\*)|&\n\1*(.relaimg_formats)|' \
	    -e 's|^\( *\)_edata = \.;|&\n\1__image_end = .;|' $< > $@
	@grep -q __start_img_formats $@ && grep -q __image_end $@ || { echo "efi: could not extend $<"; rm -f $@; exit 1; }

# Link as an ELF shared object (self-relocated by gnu-efi's _relocate), check nothing is left undefined, make PE32+.
$(EBUILD)/vhdboot.so: $(EFI_OBJS) $(EBUILD)/vhdboot.lds
	ld $(EFI_LDFLAGS) -T $(EBUILD)/vhdboot.lds -Map $(EBUILD)/vhdboot.map -o $@ $(EFI_LIB)/crt0-efi-x86_64.o \
		$(EFI_OBJS) $(EFI_LIB)/libgnuefi.a
$(BUILD)/vhdboot.efi: $(EBUILD)/vhdboot.so
	$(EFI_OBJCOPY) $(EFI_SECTIONS) --target efi-app-x86_64 --subsystem=10 $< $@
	@echo "vhdboot.efi: $$(stat -c %s $@) bytes, $$(nm $< | grep -c ' r img_row_\| d img_row_') image format(s)"

# The EFI guest programs (tests/qemu/progs/efi*.c), booted from inside a served image: efiprobe for
# tests/qemu/test_uefi.py, efibench for bench/uefi_read.py; efibootent (a boot entry with options) for
# tests/qemu/test_uefi_options.py.
$(EBUILD)/%.so: $(EBUILD)/tests/qemu/progs/%.o $(EBUILD)/vhdboot.lds
	ld $(EFI_LDFLAGS) -T $(EBUILD)/vhdboot.lds -o $@ $(EFI_LIB)/crt0-efi-x86_64.o $< $(EFI_LIB)/libgnuefi.a
$(EBUILD)/efiprobe.efi $(EBUILD)/efibench.efi $(EBUILD)/efibootent.efi: $(EBUILD)/%.efi: $(EBUILD)/%.so
	$(EFI_OBJCOPY) $(EFI_SECTIONS) --target efi-app-x86_64 --subsystem=10 $< $@

# tests/unit/test_efi*.c: efi/ files built hosted with gnu-efi's headers, over models of the firmware's services:
# test_efiserve (serve.c, its after-write hook and efsync.c, eblk.c's device-path helpers), test_efiopts (eopts.c with kernel/cmdline.c), test_efihandover.
EFI_HOST_FLAGS := -isystem $(EFI_INC) -isystem $(EFI_INC)/x86_64 -DGNU_EFI_USE_MS_ABI
$(BUILD)/host/efi/%.o $(BUILD)/san/efi/%.o $(BUILD)/host/tests/unit/test_efi%.o $(BUILD)/san/tests/unit/test_efi%.o: \
	HOST_CFLAGS += $(EFI_HOST_FLAGS)
$(BUILD)/unit/test_efiserve: $(BUILD)/host/efi/serve.o $(BUILD)/host/efi/eblk.o $(BUILD)/host/efi/efsync.o
$(BUILD)/unit/test_efiserve-san: $(BUILD)/san/efi/serve.o $(BUILD)/san/efi/eblk.o $(BUILD)/san/efi/efsync.o
$(BUILD)/unit/test_efiopts: $(BUILD)/host/efi/eopts.o $(BUILD)/host/kernel/cmdline.o
$(BUILD)/unit/test_efiopts-san: $(BUILD)/san/efi/eopts.o $(BUILD)/san/kernel/cmdline.o
# test_efihandover: ehandover.c over kernel/handover.c, handover/ho.c and the hosted selection (test_select's objects).
EHO_HOST_SRCS := efi/ehandover.c kernel/handover.c handover/ho.c $(filter-out kernel/cmdline.c,$(SELECT_KSRCS)) $(FS_SRCS)
$(BUILD)/unit/test_efihandover: $(EHO_HOST_SRCS:%.c=$(BUILD)/host/%.o) $(BUILD)/host/kernel/cmdline.o
$(BUILD)/unit/test_efihandover-san: $(EHO_HOST_SRCS:%.c=$(BUILD)/san/%.o) $(BUILD)/san/kernel/cmdline.o

# make run-efi: boot the demo ESP (vhdboot.efi as \EFI\BOOT\BOOTX64.EFI + the demo image) under OVMF.
OVMF_CODE ?= /usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS ?= /usr/share/OVMF/OVMF_VARS_4M.fd
run-efi: deps
	$(MAKE) all
	$(PYTHON) tests/qemu/efi_harness.py demo $(BUILD)/efi-demo
	cp $(OVMF_VARS) $(BUILD)/efi-demo/vars.fd
	qemu-system-x86_64 -machine q35 -accel tcg -m 512 -display none -serial mon:stdio -no-reboot \
		-drive if=pflash,format=raw,readonly=on,file=$(OVMF_CODE) -drive if=pflash,format=raw,file=$(BUILD)/efi-demo/vars.fd \
		-drive file=$(BUILD)/efi-demo/host.img,format=raw,if=none,id=host -device ide-hd,drive=host,bus=ide.0

.PHONY: efi run-efi
