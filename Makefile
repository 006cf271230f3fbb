# Makefile: builds vhdtool (host) and vhdboot.elf/.iso (firmware); runs tests, fuzzing and benchmarks.
#   make          build everything into build/
#   make run      install missing Debian packages, build, boot the demo VHD in QEMU (VHD=path for another)
#   make run-efi  the same under UEFI (OVMF): vhdboot.efi serving a demo image (efi/efi.mk)
#   make test     install missing Debian packages, build, run every test
#   make bench    run the benchmarks in bench/ (ratios against a baseline measured in the same run)
#   make fuzz     run every libFuzzer target (tests/fuzz/fuzz_*.c) for FUZZ_SECONDS each (default 60)

BUILD    ?= build
CROSS    ?= i686-linux-gnu-
HOST_CC  ?= gcc
KCC      := $(CROSS)gcc
NASM     ?= nasm
PYTHON   ?= /usr/bin/python3
PYTEST   ?= $(PYTHON) -m pytest
# make test: two pytest workers (python3-pytest-xdist), each test file on one worker (module fixtures boot once).
PYTEST_JOBS ?= 2
PYTEST_PAR = $(shell $(PYTHON) -c 'import xdist' 2>/dev/null && printf -- '-n %s --dist loadfile' $(PYTEST_JOBS))
FUZZ_SECONDS ?= 60

WARN        := -Wall -Wextra -Werror
HOST_CFLAGS := -std=gnu11 -O2 -g $(WARN) -D_FILE_OFFSET_BITS=64 -D_GNU_SOURCE -MMD -MP
KCFLAGS     := -std=gnu11 -O2 -g $(WARN) -m32 -march=i686 -ffreestanding -nostdlib \
               -fno-pic -fno-pie -fno-stack-protector -fno-asynchronous-unwind-tables \
               -fno-builtin -mno-sse -mno-mmx -mno-80387 -mgeneral-regs-only -MMD -MP
SAN_FLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

BLOCK_SRCS  := $(wildcard block/*.c)
# The pure libraries every build links: block/ (blk_read/blk_write, windows), vhd/ and vhdx/ (kernel.mk's KSRCS takes them from here).
VHDX_SRCS   := $(wildcard vhdx/*.c)
VHD_SRCS    := $(BLOCK_SRCS) $(wildcard vhd/*.c) $(VHDX_SRCS)
# image/resolve.c: the pure parent resolver over vhd/; linked wherever vhd/ is (vhdtool, unit tests, fuzzing).
IMAGE_SRCS  := image/resolve.c
# The image-format interface (image/image.c) and its adapters (image/*_fmt.c) log on the firmware's console:
# linked into the firmware (kernel.mk takes image/*.c) and test_select (console stubbed), deliberately not into vhdtool.
IMAGE_FMT_SRCS := image/image.c $(wildcard image/*_fmt.c)
TOOL_SRCS   := $(wildcard tools/*.c)
FS_SRCS     := $(wildcard fs/*.c)
# tests/unit/*.c: one cmocka program each, but ramdev.c, the RAM block device they all link.
UNIT_LIB_SRCS := tests/unit/ramdev.c tests/unit/kstubs.c
# kheap.c: the kernel's memory globals and bump heap, linked only where kernel/scan.c and select.c are (below).
UNIT_SRCS   := $(filter-out $(UNIT_LIB_SRCS) tests/unit/kheap.c,$(wildcard tests/unit/*.c))

all: tool kernel

# ---------------------------------------------------------------- host side
tool: $(BUILD)/vhdtool

$(BUILD)/host/%.o: %.c
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) -c $< -o $@

$(BUILD)/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) $(SAN_FLAGS) -c $< -o $@

HOST_VHD_OBJS := $(VHD_SRCS:%.c=$(BUILD)/host/%.o) $(IMAGE_SRCS:%.c=$(BUILD)/host/%.o)
HOST_TOOL_OBJS := $(TOOL_SRCS:%.c=$(BUILD)/host/%.o)
# vhdtool's frame and verbs (tools/vhdtool.c, imgfmt.c, vtout.c, vhdedit.c, vxmap.c, cmd_*.c) stay out of the unit tests' link.
TOOL_MAIN_SRCS := tools/vhdtool.c tools/imgfmt.c tools/vtout.c tools/vhdedit.c tools/vxmap.c $(wildcard tools/cmd_*.c)
TOOL_LIB_OBJS := $(filter-out $(TOOL_MAIN_SRCS:%.c=$(BUILD)/host/%.o),$(HOST_TOOL_OBJS))

$(BUILD)/vhdtool: $(HOST_VHD_OBJS) $(HOST_TOOL_OBJS)
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $^

# Unit tests: each tests/unit/*.c is one cmocka program, built plain and with ASan+UBSan.
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%) $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%-san)

$(BUILD)/unit/%: $(BUILD)/host/tests/unit/%.o $(UNIT_LIB_SRCS:%.c=$(BUILD)/host/%.o) $(HOST_VHD_OBJS) $(TOOL_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $^ -lcmocka

$(BUILD)/unit/%-san: $(BUILD)/san/tests/unit/%.o $(UNIT_LIB_SRCS:%.c=$(BUILD)/san/%.o) $(VHD_SRCS:%.c=$(BUILD)/san/%.o) $(IMAGE_SRCS:%.c=$(BUILD)/san/%.o) $(filter-out $(TOOL_MAIN_SRCS:%.c=$(BUILD)/san/%.o),$(TOOL_SRCS:%.c=$(BUILD)/san/%.o))
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) $(SAN_FLAGS) -o $@ $^ -lcmocka

# test_int13 also links the INT 13h layer (hosted build of kernel/int13*.c: dispatch, transfers, info, geometry).
INT13_KSRCS := kernel/int13.c kernel/int13_rw.c kernel/int13_info.c kernel/int13_geom.c
$(BUILD)/unit/test_int13: $(INT13_KSRCS:%.c=$(BUILD)/host/%.o)
$(BUILD)/unit/test_int13-san: $(INT13_KSRCS:%.c=$(BUILD)/san/%.o)
# test_overlay links the snapshot overlay (hosted build of kernel/overlay.c).
$(BUILD)/unit/test_overlay: $(BUILD)/host/kernel/overlay.o
$(BUILD)/unit/test_overlay-san: $(BUILD)/san/kernel/overlay.o

# test_select links the firmware's scan/open/select logic (hosted) over fs/, with the kernel's memory from
# tests/unit/kheap.c (in SELECT_KSRCS, so test_efihandover and fuzz_scan get it too) and the rest stubbed in the test.
SELECT_KSRCS := kernel/scan.c kernel/imgopen.c kernel/select.c kernel/cmdline.c $(IMAGE_FMT_SRCS)
SELECT_KSRCS += tests/unit/kheap.c
$(BUILD)/unit/test_select: $(SELECT_KSRCS:%.c=$(BUILD)/host/%.o) $(FS_SRCS:%.c=$(BUILD)/host/%.o)
$(BUILD)/unit/test_select-san: $(SELECT_KSRCS:%.c=$(BUILD)/san/%.o) $(FS_SRCS:%.c=$(BUILD)/san/%.o)

# test_dma links the pure helpers of drivers/: PRD tables (dma.c) and IDENTIFY parsing (ata_id.c).
DMA_KSRCS := drivers/dma.c drivers/ata_id.c
$(BUILD)/unit/test_dma: $(DMA_KSRCS:%.c=$(BUILD)/host/%.o)
$(BUILD)/unit/test_dma-san: $(DMA_KSRCS:%.c=$(BUILD)/san/%.o)
# test_handover links the hand-over table library (handover/ho.c) and fs/ (its CRC-32).
HO_SRCS     := $(wildcard handover/*.c)
$(BUILD)/unit/test_handover: $(HO_SRCS:%.c=$(BUILD)/host/%.o) $(FS_SRCS:%.c=$(BUILD)/host/%.o)
$(BUILD)/unit/test_handover-san: $(HO_SRCS:%.c=$(BUILD)/san/%.o) $(FS_SRCS:%.c=$(BUILD)/san/%.o)

# test_fs links the fs/ library (partitions, FAT, extents).
$(BUILD)/unit/test_fs: $(FS_SRCS:%.c=$(BUILD)/host/%.o)
$(BUILD)/unit/test_fs-san: $(FS_SRCS:%.c=$(BUILD)/san/%.o)

# fsprobe: host driver over fs/ for tests/host/test_fs_images.py (plain and ASan+UBSan).
fsprobe: $(BUILD)/fsprobe $(BUILD)/fsprobe-san
$(BUILD)/fsprobe: $(BUILD)/host/tests/host/fsprobe.o $(FS_SRCS:%.c=$(BUILD)/host/%.o) $(BLOCK_SRCS:%.c=$(BUILD)/host/%.o) $(BUILD)/host/tools/hostdev.o
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $^
$(BUILD)/fsprobe-san: $(BUILD)/san/tests/host/fsprobe.o $(FS_SRCS:%.c=$(BUILD)/san/%.o) $(BLOCK_SRCS:%.c=$(BUILD)/san/%.o) $(BUILD)/san/tools/hostdev.o
	$(HOST_CC) $(HOST_CFLAGS) $(SAN_FLAGS) -o $@ $^

# test_grow links fs/ (file growth on in-memory FAT and exFAT volumes).
$(BUILD)/unit/test_grow: $(FS_SRCS:%.c=$(BUILD)/host/%.o)
$(BUILD)/unit/test_grow-san: $(FS_SRCS:%.c=$(BUILD)/san/%.o)

# growprobe: a dynamic VHD file on FAT/exFAT grown through fs/grow.c and vhd/ (tests/host/test_grow.py).
$(BUILD)/growprobe: $(BUILD)/host/tests/host/growprobe.o $(FS_SRCS:%.c=$(BUILD)/host/%.o) $(VHD_SRCS:%.c=$(BUILD)/host/%.o) $(BUILD)/host/tools/hostdev.o
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $^

# vhdxprobe: host driver over vhdx/ for tests/host/test_vhdx_images.py (plain and ASan+UBSan).
vhdxprobe: $(BUILD)/vhdxprobe $(BUILD)/vhdxprobe-san
$(BUILD)/vhdxprobe: $(BUILD)/host/tests/host/vhdxprobe.o $(VHD_SRCS:%.c=$(BUILD)/host/%.o) $(BUILD)/host/tools/hostdev.o
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $^
$(BUILD)/vhdxprobe-san: $(BUILD)/san/tests/host/vhdxprobe.o $(VHD_SRCS:%.c=$(BUILD)/san/%.o) $(BUILD)/san/tools/hostdev.o
	$(HOST_CC) $(HOST_CFLAGS) $(SAN_FLAGS) -o $@ $^
# build/linux/vhdboot-attach: the Linux side of the hand-over (docs/handover.md), a static program for an
# initramfs over the same vhd/, block/, fs/ and handover/ libraries plus vhdtool's host chain opener.
ATTACH_SRCS := tools/linux/vhdboot-attach.c tools/chain.c tools/vxchain.c tools/hostdev.c $(VHD_SRCS) $(IMAGE_SRCS) $(HO_SRCS) $(FS_SRCS)
linux: $(BUILD)/linux/vhdboot-attach
$(BUILD)/linux/vhdboot-attach: $(ATTACH_SRCS:%.c=$(BUILD)/host/%.o)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) -static -pthread -o $@ $^
all: linux

unit: $(UNIT_BINS) $(BUILD)/vhdtool
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# libFuzzer targets (clang, ASan+UBSan): each tests/fuzz/fuzz_<name>.c is one program over the pure libraries;
# a target that also needs kernel/ sources adds them as prerequisites below (only the .c files are compiled).
FUZZ_NAMES    := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS     := $(FUZZ_NAMES:%=$(BUILD)/fuzz_%)
FUZZ_LIB_SRCS := $(VHD_SRCS) $(IMAGE_SRCS) $(FS_SRCS) $(wildcard vhdx/*.c)
FUZZ_CFLAGS   := -std=gnu11 -g -O1 $(WARN) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_LIB_SRCS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)
$(BUILD)/fuzz_int13: $(INT13_KSRCS)
$(BUILD)/fuzz_int15: kernel/int15.c kernel/mem.c tests/unit/kstubs.c
$(BUILD)/fuzz_mbinfo: kernel/mbinfo.c kernel/mem.c tests/unit/kstubs.c
$(BUILD)/fuzz_cmdline: kernel/cmdline.c tests/unit/kstubs.c
$(BUILD)/fuzz_scan: $(SELECT_KSRCS) tests/unit/kstubs.c
$(BUILD)/fuzz_handover: $(HO_SRCS)
fuzz-build: $(FUZZ_BINS)

# fuzz_vhdx: its own rule (the CRC loop left uninstrumented); patches to valid base images built at start-up (tests/fuzz/fuzz_vhdx.c).
$(BUILD)/fuzz_vhdx: tests/fuzz/fuzz_vhdx.c $(BLOCK_SRCS) $(VHDX_SRCS) tests/fuzz/fuzz_vhdx.ignore
	@mkdir -p $(dir $@)
	clang -std=gnu11 -g -O1 $(WARN) -fsanitize=fuzzer,address,undefined \
		-fsanitize-coverage-ignorelist=tests/fuzz/fuzz_vhdx.ignore -o $@ $(filter %.c,$^)

# make fuzz: every target for FUZZ_SECONDS each over its generated seeds (bench/fuzz.sh: the long campaign).
fuzz: $(FUZZ_BINS)
	FUZZ_SECONDS=$(FUZZ_SECONDS) BUILD=$(BUILD) sh bench/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_NAMES)

# ---------------------------------------------------------------- firmware
include kernel.mk
# the UEFI front end: build/vhdboot.efi, its test guest, make run-efi
include efi/efi.mk

# ---------------------------------------------------------------- set-up, tests, run
deps:
	@sh tools/install-deps.sh

# Test files go to build/pytest (emptied by pytest at each start, removed after a passing run), never
# piling up in /tmp; tools/diskcheck.sh stops early with a clear message when the disk is nearly full.
PYTEST_TMP ?= $(BUILD)/pytest
test: deps
	@sh tools/diskcheck.sh $(dir $(abspath $(PYTEST_TMP))) 12
	$(MAKE) all unit fuzz-build
	$(PYTEST) -q $(PYTEST_PAR) --basetemp=$(PYTEST_TMP) tests && rm -rf $(PYTEST_TMP)

# Benchmarks print ratios against a baseline measured in the same run; they never fail on time.
bench: deps
	$(MAKE) all
	bash bench/convert.sh 5
	$(PYTHON) bench/edit_verbs.py --reps 3
	$(PYTHON) bench/int13_read.py
	$(PYTHON) bench/disks.py
	$(PYTHON) bench/int13_write.py
	$(PYTHON) bench/guests_boot.py --reps 5
	$(PYTHON) bench/uefi_read.py

.PHONY: all tool kernel unit fuzz fuzz-build deps test run bench clean fsprobe vhdxprobe linux
clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -path $(BUILD)/pytest -prune -o -type f -name '*.d' -print 2>/dev/null)
