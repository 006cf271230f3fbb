/* test_efiserve.c: cmocka tests for efi/serve.c (the served image's EFI Block I/O) and efi/efsync.c (the host disk resynced after a growth) built hosted, over a RAM device and a model of the boot services they call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../efi/efi.h"
#include "ramdev.h"
#include "kstubs.h"               /* kstubs_log */

/* What efi/main.c defines in the firmware build (eblk.c, linked too, defines efi_guid_vhdboot). */
EFI_BOOT_SERVICES *efi_bs;
EFI_SYSTEM_TABLE *efi_st;
EFI_HANDLE efi_image;
EFI_GUID efi_guid_blockio = EFI_BLOCK_IO_PROTOCOL_GUID;
EFI_GUID efi_guid_devpath = EFI_DEVICE_PATH_PROTOCOL_GUID;
extern EFI_GUID efi_guid_vhdboot;

/* ------------------------------------------------------------ the model of the boot services */

static EFI_BOOT_SERVICES bs_model;
static EFI_TPL tpl = TPL_APPLICATION;
static int raises, installs, connects, uninstalls, refuse_uninstall;
static int handle_token;

static EFI_TPL EFIAPI m_raise(EFI_TPL t)
{
	EFI_TPL old = tpl;
	raises++;
	tpl = t;
	return old;
}

/* The one event efsync.c makes (CreateEvent), and whether it is signalled and waiting for the TPL to drop. */
static EFI_EVENT_NOTIFY ev_notify;
static EFI_TPL ev_tpl;
static int ev_token, ev_pending, ev_creates;

/* Run the event's notify function at its TPL, as the firmware does when the TPL drops below it. */
static void m_dispatch(void)
{
	if (!ev_pending || tpl >= ev_tpl)
		return;
	EFI_TPL old = tpl;
	ev_pending = 0;
	tpl = ev_tpl;
	ev_notify(&ev_token, NULL);
	tpl = old;
}

static VOID EFIAPI m_restore(EFI_TPL t)
{
	tpl = t;
	m_dispatch();
}

static EFI_STATUS EFIAPI m_create_event(UINT32 type, EFI_TPL t, EFI_EVENT_NOTIFY fn, VOID *ctx, EFI_EVENT *ev)
{
	(void)ctx;
	assert_int_equal(type, EVT_NOTIFY_SIGNAL);
	ev_creates++;
	ev_notify = fn;
	ev_tpl = t;
	*ev = &ev_token;
	return EFI_SUCCESS;
}

/* SignalEvent: pending; dispatched at once when the TPL is below the event's (UEFI 2.x, 7.1). */
static EFI_STATUS EFIAPI m_signal(EFI_EVENT ev)
{
	assert_ptr_equal(ev, &ev_token);
	ev_pending = 1;
	m_dispatch();
	return EFI_SUCCESS;
}

/* ReinstallProtocolInterface: recorded (handle, protocol, interfaces, the TPL and whether a device write was running). */
static int reinstalls, in_dev_write;
static EFI_HANDLE re_handle;
static VOID *re_old, *re_new;
static EFI_TPL re_tpl;
static int re_during_write;
static EFI_STATUS re_status;

static EFI_STATUS EFIAPI m_reinstall(EFI_HANDLE h, EFI_GUID *g, VOID *old, VOID *nw)
{
	assert_memory_equal(g, &efi_guid_blockio, sizeof(EFI_GUID));
	reinstalls++;
	re_handle = h;
	re_old = old;
	re_new = nw;
	re_tpl = tpl;
	re_during_write |= in_dev_write;
	return re_status;
}

/* InstallMultipleProtocolInterfaces: hand out a handle (the pairs are not read). */
static EFI_STATUS EFIAPI m_install(EFI_HANDLE *h, ...)
{
	installs++;
	*h = &handle_token;
	return EFI_SUCCESS;
}

static EFI_STATUS EFIAPI m_uninstall(EFI_HANDLE h, ...)
{
	(void)h;
	uninstalls++;
	return refuse_uninstall ? EFI_ACCESS_DENIED : EFI_SUCCESS;
}

static EFI_STATUS EFIAPI m_connect(EFI_HANDLE h, EFI_HANDLE *d, EFI_DEVICE_PATH *rp, BOOLEAN rec)
{
	(void)h;
	(void)d;
	(void)rp;
	assert_true(rec);             /* partitions and file systems must bind too */
	connects++;
	return EFI_SUCCESS;
}

static EFI_STATUS EFIAPI m_disconnect(EFI_HANDLE h, EFI_HANDLE d, EFI_HANDLE c)
{
	(void)h;
	(void)d;
	(void)c;
	return EFI_SUCCESS;
}

/* A served disk of sectors sectors over a fresh RAM device (sector i filled with byte i * 3 + 1). */
static struct ramdev *dev;
static EFI_BLOCK_IO *bio;
static struct esrv *srv;

static void serve(uint64_t sectors, int ro)
{
	memset(&bs_model, 0, sizeof(bs_model));
	bs_model.RaiseTPL = m_raise;
	bs_model.RestoreTPL = m_restore;
	bs_model.InstallMultipleProtocolInterfaces = m_install;
	bs_model.UninstallMultipleProtocolInterfaces = m_uninstall;
	bs_model.ConnectController = m_connect;
	bs_model.DisconnectController = m_disconnect;
	bs_model.CreateEvent = m_create_event;
	bs_model.SignalEvent = m_signal;
	bs_model.ReinstallProtocolInterface = m_reinstall;
	efi_bs = &bs_model;
	reinstalls = re_during_write = 0;
	re_status = EFI_SUCCESS;
	ev_pending = 0;
	raises = installs = connects = uninstalls = refuse_uninstall = 0;
	dev = ramdev_new(sectors, sectors, 0);
	for (uint64_t i = 0; i < sectors; i++)
		memset(dev->data + i * 512, (int)(i * 3 + 1), 512);
	srv = esrv_install(0, &dev->blk, ro, 0, "vhd0");
	assert_non_null(srv);
	bio = esrv_blockio(srv);
}

static int teardown(void **state)
{
	(void)state;
	ramdev_free(dev);
	dev = NULL;
	return 0;
}

/* ------------------------------------------------------------ tests */

/* Install: the handle is made and connected recursively; Media says what the disk is; the device path is VenHw(GUID, 0)/End. */
static void test_install_media_and_path(void **state)
{
	(void)state;
	serve(1000, 0);
	assert_int_equal(installs, 1);
	assert_int_equal(connects, 1);
	assert_ptr_equal(esrv_handle(srv), &handle_token);
	EFI_BLOCK_IO_MEDIA *m = bio->Media;
	assert_int_equal(bio->Revision, EFI_BLOCK_IO_PROTOCOL_REVISION3);
	assert_int_equal(m->BlockSize, 512);
	assert_int_equal(m->LastBlock, 999);
	assert_true(m->MediaPresent);
	assert_false(m->RemovableMedia);
	assert_false(m->LogicalPartition);
	assert_false(m->ReadOnly);
	assert_false(m->WriteCaching);
	assert_true(m->IoAlign <= 1);
	assert_int_equal(m->LogicalBlocksPerPhysicalBlock, 1);
	const uint8_t *dp = (const uint8_t *)esrv_devpath(srv);
	assert_int_equal(dp[0], HARDWARE_DEVICE_PATH);
	assert_int_equal(dp[1], HW_VENDOR_DP);
	assert_int_equal(dp[2] | dp[3] << 8, 24);
	assert_memory_equal(dp + 4, &efi_guid_vhdboot, 16);
	assert_int_equal(dp[20], 0);
	assert_int_equal(dp[24], END_DEVICE_PATH_TYPE);
	assert_int_equal(dp[25], END_ENTIRE_DEVICE_PATH_SUBTYPE);
	assert_int_equal(eblk_dp_size((const EFI_DEVICE_PATH *)dp), 28);
	assert_true(eblk_is_ours((const EFI_DEVICE_PATH *)dp));
	assert_int_equal(esrv_uninstall(srv), 0);
	refuse_uninstall = 1;
	assert_int_equal(esrv_uninstall(srv), -1);
}

/* Reads return the device's bytes, into any buffer, at TPL_CALLBACK and back. */
static void test_read(void **state)
{
	(void)state;
	serve(1000, 0);
	uint8_t *buf = malloc(10 * 512 + 1);
	assert_int_equal(bio->ReadBlocks(bio, 1, 990, 10 * 512, buf + 1), EFI_SUCCESS);
	assert_memory_equal(buf + 1, dev->data + 990 * 512, 10 * 512);
	assert_int_equal(tpl, TPL_APPLICATION);
	assert_true(raises >= 1);
	free(buf);
}

/* The specification's answers to bad requests, for reads and writes alike. */
static void test_bad_requests(void **state)
{
	(void)state;
	serve(1000, 0);
	uint8_t buf[1024];
	int before = dev->reads;
	assert_int_equal(bio->ReadBlocks(bio, 2, 0, 512, buf), EFI_MEDIA_CHANGED);
	assert_int_equal(bio->ReadBlocks(bio, 1, 0, 0, buf), EFI_SUCCESS);
	assert_int_equal(bio->ReadBlocks(bio, 1, 0, 512, NULL), EFI_INVALID_PARAMETER);
	assert_int_equal(bio->ReadBlocks(bio, 1, 0, 100, buf), EFI_BAD_BUFFER_SIZE);
	assert_int_equal(bio->ReadBlocks(bio, 1, 0, 513, buf), EFI_BAD_BUFFER_SIZE);
	assert_int_equal(bio->ReadBlocks(bio, 1, 1000, 512, buf), EFI_INVALID_PARAMETER);
	assert_int_equal(bio->ReadBlocks(bio, 1, 999, 1024, buf), EFI_INVALID_PARAMETER);
	assert_int_equal(bio->ReadBlocks(bio, 1, ~0ull, 1024, buf), EFI_INVALID_PARAMETER);   /* no wrap-around */
	assert_int_equal(bio->WriteBlocks(bio, 2, 0, 512, buf), EFI_MEDIA_CHANGED);
	assert_int_equal(bio->WriteBlocks(bio, 1, 0, 100, buf), EFI_BAD_BUFFER_SIZE);
	assert_int_equal(bio->WriteBlocks(bio, 1, 999, 1024, buf), EFI_INVALID_PARAMETER);
	assert_int_equal(bio->WriteBlocks(bio, 1, 0, 512, NULL), EFI_INVALID_PARAMETER);
	assert_int_equal(dev->reads, before);             /* none reached the device */
	assert_int_equal(dev->writes, 0);
	assert_int_equal(dev->bad, 0);
}

/* Writes reach the device; device failures and "no room" become EFI_DEVICE_ERROR; flush is FlushBlocks. */
static void test_write_and_failures(void **state)
{
	(void)state;
	serve(1000, 0);
	uint8_t buf[3 * 512];
	memset(buf, 0xEE, sizeof(buf));
	assert_int_equal(bio->WriteBlocks(bio, 1, 7, sizeof(buf), buf), EFI_SUCCESS);
	assert_memory_equal(dev->data + 7 * 512, buf, sizeof(buf));
	assert_int_equal(dev->data[6 * 512], (uint8_t)(6 * 3 + 1));
	assert_int_equal(dev->data[10 * 512], (uint8_t)(10 * 3 + 1));
	int f = dev->flushes;
	assert_int_equal(bio->FlushBlocks(bio), EFI_SUCCESS);
	assert_int_equal(dev->flushes, f + 1);
	dev->nospace = 1;
	assert_int_equal(bio->WriteBlocks(bio, 1, 7, 512, buf), EFI_DEVICE_ERROR);
	dev->nospace = 0;
	dev->fail_io = 1;
	assert_int_equal(bio->WriteBlocks(bio, 1, 7, 512, buf), EFI_DEVICE_ERROR);
	assert_int_equal(bio->ReadBlocks(bio, 1, 7, 512, buf), EFI_DEVICE_ERROR);
	assert_int_equal(bio->FlushBlocks(bio), EFI_DEVICE_ERROR);
	assert_int_equal(tpl, TPL_APPLICATION);
}

/* Read-only media: EFI_WRITE_PROTECTED before anything else is looked at (but the MediaId); reads still work. */
static void test_read_only(void **state)
{
	(void)state;
	serve(100, 1);
	uint8_t buf[512] = { 0 };
	assert_true(bio->Media->ReadOnly);
	assert_int_equal(bio->WriteBlocks(bio, 1, 0, 512, buf), EFI_WRITE_PROTECTED);
	assert_int_equal(bio->WriteBlocks(bio, 1, 5000, 100, buf), EFI_WRITE_PROTECTED);
	assert_int_equal(bio->WriteBlocks(bio, 9, 0, 512, buf), EFI_MEDIA_CHANGED);
	assert_int_equal(dev->writes, 0);
	assert_int_equal(bio->ReadBlocks(bio, 1, 99, 512, buf), EFI_SUCCESS);
	assert_int_equal(buf[0], (uint8_t)(99 * 3 + 1));
}

/* A request larger than one blk call takes (0x8000 sectors) is split, and every byte arrives. */
static void test_large_request_split(void **state)
{
	(void)state;
	uint64_t n = 0x8000 + 77;
	serve(n + 10, 0);
	dev->blk.max_count = 0;
	uint8_t *buf = malloc(n * 512);
	assert_int_equal(bio->ReadBlocks(bio, 1, 3, n * 512, buf), EFI_SUCCESS);
	assert_memory_equal(buf, dev->data + 3 * 512, n * 512);
	assert_true(dev->max_seen <= 0x8000);
	memset(buf, 0x42, n * 512);
	assert_int_equal(bio->WriteBlocks(bio, 1, 5, n * 512, buf), EFI_SUCCESS);
	assert_memory_equal(dev->data + 5 * 512, buf, n * 512);
	free(buf);
}


/* ------------------------------------------------------------ efsync.c: the host disk after a growth */

/* What kernel/imgopen.c counts: writes that made an image file longer (here: the growing device below). */
static uint32_t fake_growths;
uint32_t iop_growths(void)
{
	return fake_growths;
}

/* A device over dev whose writes at or past grow_from "grow the file" (iop_growths moves), like imgopen's file device. */
static struct blk_dev growdev;
static uint64_t grow_from;

static int g_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	(void)d;
	return blk_read(&dev->blk, lba, count, buf);
}

static int g_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	(void)d;
	in_dev_write = 1;
	int rc = blk_write(&dev->blk, lba, count, buf);
	if (lba + count > grow_from)
		fake_growths++;
	in_dev_write = 0;
	return rc;
}

static int g_flush(struct blk_dev *d)
{
	(void)d;
	return blk_flush(&dev->blk);
}

static int host_token;
static EFI_BLOCK_IO host_bio;

/* Serve the growing device (1000 sectors, growth from sector 900) and watch it with the host disk host_token. */
static void serve_growing(void)
{
	memset(&bs_model, 0, sizeof(bs_model));
	serve(1000, 0);
	growdev = dev->blk;
	growdev.read = g_read;
	growdev.write = g_write;
	growdev.flush = g_flush;
	growdev.priv = NULL;
	grow_from = 900;
	srv = esrv_install(0, &growdev, 0, 0, "vhd0");
	assert_non_null(srv);
	bio = esrv_blockio(srv);
	assert_int_equal(efs_watch_disk(srv, &host_token, &host_bio, "vhd0"), 0);
	kstubs_log_reset();
}

/* The decision: only a moved counter with a known host disk resyncs. */
static void test_sync_decision(void **state)
{
	(void)state;
	assert_false(efs_should_sync(5, 5, 1));
	assert_true(efs_should_sync(5, 6, 1));
	assert_true(efs_should_sync(0xFFFFFFFFu, 0, 1));   /* wrapped: still moved */
	assert_false(efs_should_sync(5, 6, 0));
}

/* A write that grows the file: the host disk's Block I/O is reinstalled once, with the same interface, after the
 * device write and at TPL_CALLBACK (the event), before WriteBlocks returns to a TPL_APPLICATION caller; writes that
 * do not grow reinstall nothing; the first resync is logged. */
static void test_growth_resyncs_host(void **state)
{
	(void)state;
	serve_growing();
	uint8_t buf[4 * 512];
	memset(buf, 0x5A, sizeof(buf));
	assert_int_equal(bio->WriteBlocks(bio, 1, 10, sizeof(buf), buf), EFI_SUCCESS);
	assert_int_equal(reinstalls, 0);
	assert_int_equal(bio->WriteBlocks(bio, 1, 950, sizeof(buf), buf), EFI_SUCCESS);
	assert_int_equal(reinstalls, 1);
	assert_ptr_equal(re_handle, &host_token);
	assert_ptr_equal(re_old, &host_bio);
	assert_ptr_equal(re_new, &host_bio);
	assert_int_equal(re_tpl, TPL_CALLBACK);
	assert_false(re_during_write);
	assert_int_equal(tpl, TPL_APPLICATION);
	assert_non_null(strstr(kstubs_log, "efsync: vhd0: the image file grew: the host disk's Block I/O reinstalled"));
	assert_memory_equal(dev->data + 950 * 512, buf, sizeof(buf));
	assert_int_equal(bio->WriteBlocks(bio, 1, 20, 512, buf), EFI_SUCCESS);
	assert_int_equal(reinstalls, 1);                   /* no growth since */
	assert_int_equal(bio->ReadBlocks(bio, 1, 950, 512, buf), EFI_SUCCESS);
	assert_int_equal(reinstalls, 1);
	assert_int_equal(bio->WriteBlocks(bio, 1, 960, 512, buf), EFI_SUCCESS);
	assert_int_equal(reinstalls, 2);                   /* every growth */
}

/* Called at TPL_CALLBACK (the firmware's FAT driver on the image's own ESP, holding its lock): nothing is reinstalled
 * inside; two growths become one reinstall once the caller drops to TPL_APPLICATION. */
static void test_nested_growth_waits(void **state)
{
	(void)state;
	serve_growing();
	uint8_t buf[512] = { 1 };
	EFI_TPL old = bs_model.RaiseTPL(TPL_CALLBACK);
	assert_int_equal(bio->WriteBlocks(bio, 1, 901, 512, buf), EFI_SUCCESS);
	assert_int_equal(bio->WriteBlocks(bio, 1, 902, 512, buf), EFI_SUCCESS);
	assert_int_equal(reinstalls, 0);
	bs_model.RestoreTPL(old);
	assert_int_equal(reinstalls, 1);
	assert_false(re_during_write);
	assert_int_equal(ev_creates, 1);                   /* one event for every watch */
}

/* A failed write that still grew the file (the growth came first) resyncs too; a refused reinstall is logged with
 * the remedy and the write's answer stays the device's. */
static void test_failed_write_and_refused_reinstall(void **state)
{
	(void)state;
	serve_growing();
	uint8_t buf[512] = { 2 };
	dev->fail_io = 1;
	assert_int_equal(bio->WriteBlocks(bio, 1, 990, 512, buf), EFI_DEVICE_ERROR);
	assert_int_equal(reinstalls, 1);
	dev->fail_io = 0;
	re_status = EFI_ACCESS_DENIED;
	kstubs_log_reset();
	assert_int_equal(bio->WriteBlocks(bio, 1, 991, 512, buf), EFI_SUCCESS);
	assert_int_equal(reinstalls, 2);
	assert_non_null(strstr(kstubs_log, "reinstalling the host disk's Block I/O failed"));
	assert_non_null(strstr(kstubs_log, "remedy:"));
	assert_int_equal(efs_after_growth(&host_token, &host_bio, "vhd0"), EFI_ACCESS_DENIED);
}

/* No hook: a served disk nobody watches never reinstalls anything, growth or not. */
static void test_unwatched_disk(void **state)
{
	(void)state;
	serve_growing();
	esrv_set_after_write(srv, NULL, NULL);
	uint8_t buf[512] = { 3 };
	assert_int_equal(bio->WriteBlocks(bio, 1, 999, 512, buf), EFI_SUCCESS);
	assert_int_equal(reinstalls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_install_media_and_path, teardown),
		cmocka_unit_test_teardown(test_read, teardown),
		cmocka_unit_test_teardown(test_bad_requests, teardown),
		cmocka_unit_test_teardown(test_write_and_failures, teardown),
		cmocka_unit_test_teardown(test_read_only, teardown),
		cmocka_unit_test_teardown(test_large_request_split, teardown),
		cmocka_unit_test(test_sync_decision),
		cmocka_unit_test_teardown(test_growth_resyncs_host, teardown),
		cmocka_unit_test_teardown(test_nested_growth_waits, teardown),
		cmocka_unit_test_teardown(test_failed_write_and_refused_reinstall, teardown),
		cmocka_unit_test_teardown(test_unwatched_disk, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
