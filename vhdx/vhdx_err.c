/* vhdx_err.c: the message tables for vhdx_err codes and vhdx_check defect codes. */
#include "vhdx.h"
#include "../include/errtab.h"   /* errtab_msg, errtab_text, errtab_name */

static const struct errtab_msg vhdx_err_table[VHDX_E_COUNT] = {
	[VHDX_OK] = { "ok", "success" },
	[VHDX_E_IO] = { "io", "the backing device could not be read or written" },
	[VHDX_E_TOO_SMALL] = { "too-small", "file is smaller than the 1 MiB VHDX header section" },
	[VHDX_E_SIGNATURE] = { "signature", "no VHDX file identifier: \"vhdxfile\" not found at offset 0" },
	[VHDX_E_HEADERS_BAD] = { "headers-bad", "neither VHDX header (64 KiB, 128 KiB) has a valid signature and CRC-32C" },
	[VHDX_E_HEADERS_SAME_SEQ] = { "headers-same-seq", "both VHDX headers are valid but differ and carry the same sequence number: neither is current" },
	[VHDX_E_HEADER_VERSION] = { "header-version", "unsupported VHDX header version (expected 1)" },
	[VHDX_E_LOG_VERSION] = { "log-version", "the log must be replayed but its version is not 0 (unknown log format)" },
	[VHDX_E_LOG_RANGE] = { "log-range", "log offset or length is zero, not a multiple of 1 MiB, in the header section or past the end of the file" },
	[VHDX_E_REGION_BAD] = { "region-bad", "neither region table (192 KiB, 256 KiB) has a valid signature and CRC-32C" },
	[VHDX_E_REGION_COUNT] = { "region-count", "region table lists more than 2047 entries" },
	[VHDX_E_REGION_RANGE] = { "region-range", "a region is empty, not 1 MiB aligned, in the header section or past the end of the file" },
	[VHDX_E_REGION_OVERLAP] = { "region-overlap", "two regions, or a region and the log, overlap" },
	[VHDX_E_REGION_UNKNOWN] = { "region-unknown", "a region unknown to this implementation is marked required: refusing to open" },
	[VHDX_E_REGION_MISSING] = { "region-missing", "the region table lacks the BAT or the metadata region" },
	[VHDX_E_REGION_DUP] = { "region-dup", "the region table lists the same region twice" },
	[VHDX_E_LOG_TRUNCATED] = { "log-truncated", "the file is shorter than the log's flushed file offset (truncated image)" },
	[VHDX_E_LOG_DESC] = { "log-desc", "a log entry writes into the file identifier or the headers (first 192 KiB), into the log itself, or past the format's limits" },
	[VHDX_E_LOG_OVERLAY] = { "log-overlay", "the log must be replayed and the image is open read-only: give an overlay buffer of log_need bytes" },
	[VHDX_E_META_SIGNATURE] = { "meta-signature", "no \"metadata\" signature at the start of the metadata region" },
	[VHDX_E_META_COUNT] = { "meta-count", "metadata table lists more than 2047 entries" },
	[VHDX_E_META_RANGE] = { "meta-range", "a metadata item lies outside the metadata region or inside its table, is over 1 MiB, or is empty with a non-zero offset" },
	[VHDX_E_META_DUP] = { "meta-dup", "the metadata table lists the same item twice" },
	[VHDX_E_META_UNKNOWN] = { "meta-unknown", "a metadata item unknown to this implementation is marked required: refusing to open" },
	[VHDX_E_META_MISSING] = { "meta-missing", "a required metadata item (file parameters, virtual disk size, logical or physical sector size) is missing" },
	[VHDX_E_META_LENGTH] = { "meta-length", "a system metadata item has the wrong length" },
	[VHDX_E_META_OVERLAP] = { "meta-overlap", "a metadata item overlaps one of the system items (file parameters, sizes, disk id, locator)" },
	[VHDX_E_BLOCK_SIZE] = { "block-size", "block size is not a power of two between 1 MiB and 256 MiB" },
	[VHDX_E_SIZE] = { "size", "virtual disk size is zero, not a multiple of the logical sector size, or above 64 TiB" },
	[VHDX_E_LOGICAL_4K] = { "logical-4k", "logical sector size is 4096 bytes: 4K-sector disks are not supported yet (BIOS INT 13h serves 512-byte sectors)" },
	[VHDX_E_LOGICAL_SECTOR] = { "logical-sector", "logical sector size is neither 512 nor 4096" },
	[VHDX_E_PHYSICAL_SECTOR] = { "physical-sector", "physical sector size is neither 512 nor 4096" },
	[VHDX_E_BAT_SMALL] = { "bat-small", "the BAT region is too small for the entries the disk size needs" },
	[VHDX_E_BAT_STATE] = { "bat-state", "a payload BAT entry has an undefined state (4 or 5)" },
	[VHDX_E_BAT_PARTIAL] = { "bat-partial", "a block is partially present in a disk that has no parent" },
	[VHDX_E_BAT_RANGE] = { "bat-range", "a block lies past the end of the file (truncated image?)" },
	[VHDX_E_BAT_OFFSET] = { "bat-offset", "a present block has file offset zero" },
	[VHDX_E_BAT_OVERLAP_META] = { "bat-overlap-meta", "a block overlaps the header section, the log, the BAT or the metadata region" },
	[VHDX_E_BAT_OVERLAP] = { "bat-overlap", "two blocks overlap each other" },
	[VHDX_E_SB_STATE] = { "sb-state", "a sector bitmap BAT entry has a state other than not present (0) or present (6)" },
	[VHDX_E_SB_MISSING] = { "sb-missing", "a partially present block's sector bitmap block is not present" },
	[VHDX_E_LOCATOR_MISSING] = { "locator-missing", "the disk has a parent but no parent locator" },
	[VHDX_E_LOCATOR_TYPE] = { "locator-type", "the parent locator is not of the VHDX type {b04aefb7-d19e-4a81-b789-25b8e9445913}" },
	[VHDX_E_LOCATOR_RANGE] = { "locator-range", "a parent locator entry lies outside the item, has an odd or zero length, or bad UTF-16" },
	[VHDX_E_LOCATOR_LINKAGE] = { "locator-linkage", "the parent locator lacks parent_linkage, or it is not a braced GUID" },
	[VHDX_E_LOCATOR_DUP] = { "locator-dup", "the parent locator lists the same key twice" },
	[VHDX_E_NOT_DIFF] = { "not-diff", "not a differencing image" },
	[VHDX_E_NO_PARENT] = { "no-parent", "differencing image has no parent attached" },
	[VHDX_E_PARENT_NOT_FOUND] = { "parent-not-found", "parent image not found through relative_path, volume_path or absolute_win32_path" },
	[VHDX_E_PARENT_LINKAGE] = { "parent-linkage", "parent's DataWriteGuid matches neither parent_linkage nor parent_linkage2 (parent modified or replaced?)" },
	[VHDX_E_PARENT_SIZE] = { "parent-size", "parent's virtual size or logical sector size differs from the child's" },
	[VHDX_E_CHAIN_LOOP] = { "chain-loop", "differencing chain loops: an image is its own ancestor" },
	[VHDX_E_CHAIN_DEPTH] = { "chain-depth", "differencing chain is deeper than 32 images" },
	[VHDX_E_NO_LOCATOR] = { "no-locator", "no more parent locator paths" },
	[VHDX_E_RANGE] = { "range", "request beyond the end of the virtual disk" },
	[VHDX_E_READ_ONLY] = { "read-only", "image is open read-only" },
	[VHDX_E_NOSPACE] = { "no-space", "no room to grow the image for a new block" },
	[VHDX_E_BAD_ARG] = { "bad-arg", "invalid argument (a writable open needs session GUIDs and a writable device)" },
	[VHDX_E_BAT_NOT_LOADED] = { "bat-not-loaded", "block allocation table not loaded" },
	[VHDX_E_LOG_FULL] = { "log-full", "a metadata update does not fit in the log" },
	[VHDX_E_META_FULL] = { "meta-full", "the edited metadata item does not fit in the metadata region" },
	[VHDX_E_EDIT_TOO_BIG] = { "edit-too-big", "the change touches more pages than one log entry carries (64)" },
};

/* (Contracts in vhdx.h.) */
const char *vhdx_strerror(int err)
{
	return errtab_text(vhdx_err_table, VHDX_E_COUNT, errtab_abs(err), "unknown error");
}

const char *vhdx_errname(int err)
{
	return errtab_name(vhdx_err_table, VHDX_E_COUNT, errtab_abs(err), "unknown");
}

static const struct errtab_msg vhdx_check_table[VHDX_C_COUNT] = {
	[VHDX_C_HEADER_COPY_BAD] = { "header-copy-bad", "one header copy is invalid (torn write?); the other one is current" },
	[VHDX_C_HEADER_RESERVED] = { "header-reserved", "reserved bytes of a header are not zero" },
	[VHDX_C_REGION_COPY_BAD] = { "region-copy-bad", "one region table copy is invalid; the other one is used" },
	[VHDX_C_REGION_COPIES_DIFFER] = { "region-copies-differ", "the two region tables are valid but not the same" },
	[VHDX_C_LOG_PENDING] = { "log-pending", "the log had entries to replay: the image was not closed cleanly" },
	[VHDX_C_LOG_IGNORED] = { "log-ignored", "the header names a log but no valid entry sequence was found (torn entries ignored)" },
	[VHDX_C_FILE_PARAMS_RESERVED] = { "file-params-reserved", "reserved file parameter flag bits are set" },
	[VHDX_C_META_UNKNOWN] = { "meta-unknown-optional", "metadata items unknown to this implementation (not required: ignored)" },
	[VHDX_C_BAT_RESERVED] = { "bat-reserved", "reserved bits of a BAT entry are set" },
	[VHDX_C_SB_IN_NON_DIFF] = { "sb-in-non-diff", "a sector bitmap block is present in a disk without parent" },
	[VHDX_C_BAT_PAD_USED] = { "bat-pad-used", "a BAT entry past the disk's last block is not zero" },
	[VHDX_C_LOCATOR_NO_PATH] = { "locator-no-path", "the parent locator has no relative_path, volume_path or absolute_win32_path" },
	[VHDX_C_LOCATOR_UNKNOWN_KEY] = { "locator-unknown-key", "the parent locator has keys unknown to this implementation" },
	[VHDX_C_FIXED_NOT_ALLOCATED] = { "fixed-not-allocated", "a block of a leave-allocated (fixed) disk is neither present nor zero" },
};

const char *vhdx_check_msg(int code)
{
	return errtab_text(vhdx_check_table, VHDX_C_COUNT, code, "unknown defect");
}

const char *vhdx_check_name(int code)
{
	return errtab_name(vhdx_check_table, VHDX_C_COUNT, code, "unknown");
}
