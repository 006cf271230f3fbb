# Makefile: builds vhdtool (host) and vhdboot.elf/.iso (firmware); runs tests, fuzzing and benchmarks.
#   make          build everything into build/
#   make run      install missing Debian packages, build, boot the demo VHD in QEMU (VHD=path for another)
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
FUZZ_SECONDS ?= 60

WARN        := -Wall -Wextra -Werror
HOST_CFLAGS := -std=gnu11 -O2 -g $(WARN) -D_FILE_OFFSET_BITS=64 -D_GNU_SOURCE -MMD -MP
KCFLAGS     := -std=gnu11 -O2 -g $(WARN) -m32 -march=i686 -ffreestanding -nostdlib \
               -fno-pic -fno-pie -fno-stack-protector -fno-asynchronous-unwind-tables \
               -fno-builtin -mno-sse -mno-mmx -mno-80387 -mgeneral-regs-only -MMD -MP
SAN_FLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

BLOCK_SRCS  := $(wildcard block/*.c)
# The pure libraries every build links: block/ (blk_read/blk_write, windows) and vhd/.
VHD_SRCS    := $(BLOCK_SRCS) $(wildcard vhd/*.c)
# image/resolve.c: the pure parent resolver over vhd/; linked wherever vhd/ is (vhdtool, unit tests, fuzzing).
IMAGE_SRCS  := image/resolve.c
# The image-format interface (image/image.c) and its adapters (image/*_fmt.c) log on the firmware's console:
# linked into the firmware (kernel.mk takes image/*.c) and test_select (console stubbed), deliberately not into vhdtool.
IMAGE_FMT_SRCS := image/image.c $(wildcard image/*_fmt.c)
TOOL_SRCS   := $(wildcard tools/*.c)
FS_SRCS     := $(wildcard fs/*.c)
# tests/unit/*.c: one cmocka program each, but ramdev.c, the RAM block device they all link.
UNIT_LIB_SRCS := tests/unit/ramdev.c tests/unit/kstubs.c
UNIT_SRCS   := $(filter-out $(UNIT_LIB_SRCS),$(wildcard tests/unit/*.c))

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
TOOL_LIB_OBJS := $(filter-out $(BUILD)/host/tools/vhdtool.o,$(HOST_TOOL_OBJS))

$(BUILD)/vhdtool: $(HOST_VHD_OBJS) $(HOST_TOOL_OBJS)
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $^

# Unit tests: each tests/unit/*.c is one cmocka program, built plain and with ASan+UBSan.
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%) $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%-san)

$(BUILD)/unit/%: $(BUILD)/host/tests/unit/%.o $(UNIT_LIB_SRCS:%.c=$(BUILD)/host/%.o) $(HOST_VHD_OBJS) $(TOOL_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $^ -lcmocka

$(BUILD)/unit/%-san: $(BUILD)/san/tests/unit/%.o $(UNIT_LIB_SRCS:%.c=$(BUILD)/san/%.o) $(VHD_SRCS:%.c=$(BUILD)/san/%.o) $(IMAGE_SRCS:%.c=$(BUILD)/san/%.o) $(filter-out $(BUILD)/san/tools/vhdtool.o,$(TOOL_SRCS:%.c=$(BUILD)/san/%.o))
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) $(SAN_FLAGS) -o $@ $^ -lcmocka

# test_int13 also links the INT 13h layer (hosted build of kernel/int13*.c: dispatch, transfers, info, geometry).
INT13_KSRCS := kernel/int13.c kernel/int13_rw.c kernel/int13_info.c kernel/int13_geom.c
$(BUILD)/unit/test_int13: $(INT13_KSRCS:%.c=$(BUILD)/host/%.o)
$(BUILD)/unit/test_int13-san: $(INT13_KSRCS:%.c=$(BUILD)/san/%.o)
# test_overlay links the snapshot overlay (hosted build of kernel/overlay.c).
$(BUILD)/unit/test_overlay: $(BUILD)/host/kernel/overlay.o
$(BUILD)/unit/test_overlay-san: $(BUILD)/san/kernel/overlay.o

# test_select links the firmware's scan/open/select logic (hosted) over fs/, with the kernel services stubbed in the test.
SELECT_KSRCS := kernel/scan.c kernel/imgopen.c kernel/select.c kernel/cmdline.c $(IMAGE_FMT_SRCS)
$(BUILD)/unit/test_select: $(SELECT_KSRCS:%.c=$(BUILD)/host/%.o) $(FS_SRCS:%.c=$(BUILD)/host/%.o)
$(BUILD)/unit/test_select-san: $(SELECT_KSRCS:%.c=$(BUILD)/san/%.o) $(FS_SRCS:%.c=$(BUILD)/san/%.o)

# test_fs links the fs/ library (partitions, FAT, extents).
$(BUILD)/unit/test_fs: $(FS_SRCS:%.c=$(BUILD)/host/%.o)
$(BUILD)/unit/test_fs-san: $(FS_SRCS:%.c=$(BUILD)/san/%.o)

# fsprobe: host driver over fs/ for tests/host/test_fs_images.py (plain and ASan+UBSan).
fsprobe: $(BUILD)/fsprobe $(BUILD)/fsprobe-san
$(BUILD)/fsprobe: $(BUILD)/host/tests/host/fsprobe.o $(FS_SRCS:%.c=$(BUILD)/host/%.o) $(BLOCK_SRCS:%.c=$(BUILD)/host/%.o) $(BUILD)/host/tools/hostdev.o
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $^
$(BUILD)/fsprobe-san: $(BUILD)/san/tests/host/fsprobe.o $(FS_SRCS:%.c=$(BUILD)/san/%.o) $(BLOCK_SRCS:%.c=$(BUILD)/san/%.o) $(BUILD)/san/tools/hostdev.o
	$(HOST_CC) $(HOST_CFLAGS) $(SAN_FLAGS) -o $@ $^

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
$(BUILD)/fuzz_scan: kernel/scan.c kernel/imgopen.c kernel/select.c kernel/cmdline.c $(IMAGE_FMT_SRCS) tests/unit/kstubs.c
fuzz-build: $(FUZZ_BINS)

# make fuzz: every target for FUZZ_SECONDS each over its generated seeds (bench/fuzz.sh: the long campaign).
fuzz: $(FUZZ_BINS)
	FUZZ_SECONDS=$(FUZZ_SECONDS) BUILD=$(BUILD) sh bench/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_NAMES)

# ---------------------------------------------------------------- firmware
include kernel.mk

# ---------------------------------------------------------------- set-up, tests, run
deps:
	@sh tools/install-deps.sh

test: deps
	$(MAKE) all unit fuzz-build
	$(PYTEST) -q tests

# Benchmarks print ratios against a baseline measured in the same run; they never fail on time.
bench: deps
	$(MAKE) all
	bash bench/convert.sh 5
	$(PYTHON) bench/int13_read.py
	$(PYTHON) bench/int13_write.py
	$(PYTHON) bench/guests_boot.py --reps 5

.PHONY: all tool kernel unit fuzz fuzz-build deps test run bench clean fsprobe
clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
