/* vhd_err.c: the message tables for vhd_err codes and vhd_check defect codes. */
#include "vhd.h"
#include "../include/errtab.h"   /* errtab_msg, errtab_text, errtab_name */

static const struct errtab_msg vhd_err_table[VHD_E_COUNT] = {
	[VHD_OK] = { "ok", "success" },
	[VHD_E_IO] = { "io", "the backing device could not be read or written" },
	[VHD_E_TOO_SMALL] = { "too-small", "file is smaller than a VHD footer (511 bytes)" },
	[VHD_E_FOOTER_COOKIE] = { "footer-cookie", "no VHD footer: cookie \"conectix\" not found at the end or at offset 0" },
	[VHD_E_FOOTER_CHECKSUM] = { "footer-checksum", "footer checksum mismatch" },
	[VHD_E_FOOTER_VERSION] = { "footer-version", "unsupported footer format version (expected 1.x)" },
	[VHD_E_FOOTER_FEATURES] = { "footer-features", "footer features field lacks the always-set reserved bit 0x2" },
	[VHD_E_FOOTER_TYPE] = { "footer-type", "unsupported disk type (expected 2 fixed, 3 dynamic or 4 differencing)" },
	[VHD_E_SAVED_STATE] = { "saved-state", "image is in a saved state: writing it could destroy that state (open read-only)" },
	[VHD_E_FIXED_DATA_OFFSET] = { "fixed-data-offset", "fixed disk whose footer data offset is not all ones" },
	[VHD_E_FIXED_SIZE] = { "fixed-size", "fixed disk file is shorter than its current size plus the footer (truncated?)" },
	[VHD_E_SIZE_ZERO] = { "size-zero", "current size is zero" },
	[VHD_E_SIZE_UNALIGNED] = { "size-unaligned", "current size is not a multiple of 512 bytes" },
	[VHD_E_SIZE_TOO_BIG] = { "size-too-big", "current size is larger than the format allows (2040 GiB for dynamic disks)" },
	[VHD_E_HEADER_OFFSET] = { "header-offset", "dynamic header offset is unaligned or outside the file" },
	[VHD_E_HEADER_COOKIE] = { "header-cookie", "dynamic header cookie \"cxsparse\" not found" },
	[VHD_E_HEADER_CHECKSUM] = { "header-checksum", "dynamic header checksum mismatch" },
	[VHD_E_HEADER_VERSION] = { "header-version", "unsupported dynamic header version (expected 1.x)" },
	[VHD_E_HEADER_DATA_OFFSET] = { "header-data-offset", "dynamic header's data offset is not all ones" },
	[VHD_E_BLOCK_SIZE] = { "block-size", "block size is not a power of two between 512 bytes and 1 GiB" },
	[VHD_E_TABLE_OFFSET] = { "table-offset", "block allocation table is unaligned or extends outside the file" },
	[VHD_E_TABLE_SMALL] = { "table-small", "block allocation table has fewer entries than the disk size needs" },
	[VHD_E_TABLE_OVERLAP] = { "table-overlap", "block allocation table overlaps the dynamic header" },
	[VHD_E_BAT_RANGE] = { "bat-range", "a block allocation table entry points outside the file (truncated image?)" },
	[VHD_E_BAT_OVERLAP_META] = { "bat-overlap-meta", "a block overlaps the dynamic header or the block allocation table" },
	[VHD_E_BAT_OVERLAP] = { "bat-overlap", "two blocks overlap each other" },
	[VHD_E_NOT_DIFF] = { "not-diff", "not a differencing image" },
	[VHD_E_NO_PARENT] = { "no-parent", "differencing image has no parent attached" },
	[VHD_E_PARENT_NOT_FOUND] = { "parent-not-found", "parent image not found through any locator or the parent name" },
	[VHD_E_PARENT_UUID] = { "parent-uuid", "parent's unique id does not match the id recorded in the child" },
	[VHD_E_PARENT_TIMESTAMP] = { "parent-timestamp", "parent's time stamp does not match the one recorded in the child (parent modified or replaced?)" },
	[VHD_E_PARENT_SIZE] = { "parent-size", "parent's size does not match the child's" },
	[VHD_E_CHAIN_LOOP] = { "chain-loop", "differencing chain loops: an image is its own ancestor" },
	[VHD_E_CHAIN_DEPTH] = { "chain-depth", "differencing chain is deeper than 32 images" },
	[VHD_E_LOCATOR] = { "locator", "parent locator is malformed or points outside the file" },
	[VHD_E_NO_LOCATOR] = { "no-locator", "no more parent locators" },
	[VHD_E_RANGE] = { "range", "request beyond the end of the virtual disk" },
	[VHD_E_READ_ONLY] = { "read-only", "image is open read-only" },
	[VHD_E_NOSPACE] = { "no-space", "no room to grow the image for a new block" },
	[VHD_E_BAD_ARG] = { "bad-arg", "invalid argument" },
	[VHD_E_BAT_NOT_LOADED] = { "bat-not-loaded", "block allocation table not loaded" },
};

const char *vhd_strerror(int err)
{
	return errtab_text(vhd_err_table, VHD_E_COUNT, errtab_abs(err), "unknown error");
}

const char *vhd_errname(int err)
{
	return errtab_name(vhd_err_table, VHD_E_COUNT, errtab_abs(err), "unknown");
}

static const struct errtab_msg vhd_check_table[VHD_C_COUNT] = {
	[VHD_C_BACKUP_FOOTER_MISSING] = { "backup-footer-missing", "no valid footer copy at offset 0" },
	[VHD_C_BACKUP_FOOTER_DIFFERS] = { "backup-footer-differs", "footer copy at offset 0 differs from the end footer" },
	[VHD_C_END_FOOTER_BAD] = { "end-footer-bad", "end footer damaged; image was opened from the copy at offset 0" },
	[VHD_C_FOOTER_RESERVED] = { "footer-reserved", "reserved footer bytes are not zero" },
	[VHD_C_HEADER_RESERVED] = { "header-reserved", "reserved dynamic header bytes are not zero" },
	[VHD_C_TIMESTAMP_FUTURE] = { "timestamp-future", "time stamp lies in the future" },
	[VHD_C_FEATURES_UNKNOWN] = { "features-unknown", "unknown feature bits set" },
	[VHD_C_SIZE_MISMATCH_CHS] = { "size-mismatch-chs", "geometry (CHS) describes more sectors than the disk has" },
	[VHD_C_MAX_ENTRIES_EXCESS] = { "max-entries-excess", "block allocation table has more entries than the disk size needs" },
	[VHD_C_BAT_ENTRY_PAST_USE] = { "bat-entry-past-use", "block allocated beyond the end of the virtual disk" },
	[VHD_C_BLOCK_OVERLAP] = { "block-overlap", "two blocks overlap" },
	[VHD_C_LOCATOR_BAD] = { "locator-bad", "parent locator is malformed or outside the file" },
	[VHD_C_LOCATOR_DUP] = { "locator-dup", "two parent locators have the same platform code" },
	[VHD_C_LOCATOR_OVERLAP] = { "locator-overlap", "parent locator data overlaps metadata or a block" },
	[VHD_C_LOCATORS_ON_DYNAMIC] = { "locators-on-dynamic", "dynamic (non-differencing) disk has a parent locator" },
	[VHD_C_TRAILING_BYTES] = { "trailing-bytes", "unused bytes between the last block and the footer" },
	[VHD_C_LEAKED_SPACE] = { "leaked-space", "space inside the file used by nothing (leaked blocks)" },
	[VHD_C_ALIGN_GAP] = { "alignment-gap", "unused space shorter than a block (alignment padding)" },
	[VHD_C_FOOTER_SHORT] = { "footer-short", "old 511-byte footer" },
	[VHD_C_DATA_BITMAP_CLEAR] = { "data-bitmap-clear", "sectors hold data but their bitmap bits are clear" },
};

const char *vhd_check_msg(int code)
{
	return errtab_text(vhd_check_table, VHD_C_COUNT, code, "unknown defect");
}

int vhd_check_severity(int code)
{
	switch (code) {
	case VHD_C_ALIGN_GAP:
	case VHD_C_SIZE_MISMATCH_CHS:
	case VHD_C_MAX_ENTRIES_EXCESS:
		return VHD_SEV_NOTE;
	case VHD_C_LEAKED_SPACE:
	case VHD_C_TRAILING_BYTES:
		return VHD_SEV_LEAK;
	default:
		return VHD_SEV_DEFECT;
	}
}

const char *vhd_check_name(int code)
{
	return errtab_name(vhd_check_table, VHD_C_COUNT, code, "unknown-check");
}
