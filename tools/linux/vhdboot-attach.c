/* vhdboot-attach.c: Linux side of the hand-over: finds vhdboot's table, the backing disk and partition by identity, and serves the image as /dev/nbdN over a socketpair. */
/*
 * Runs in an initramfs (static, no dependencies): reads the hand-over table
 * (include/vhdboot_handover.h) from the EFI variable vhdboot.efi publishes
 * (efivarfs; mounted here when the firmware is UEFI and nobody did), else
 * from /dev/mem below 1 MiB (the BIOS front end), finds the disk
 * whose size and sector 0 match (and serial, where the kernel tells it),
 * the partition by start and size, mounts the host file system (vfat,
 * exfat or ntfs3 as the table says) on /run/vhdboot/hostNN, opens the
 * image with its whole chain through vhd/ (tools/chain.c) or, a VHDX,
 * vhdx/ (tools/vxchain.c), checks the file's extents against the
 * table (FIBMAP), and serves it through the kernel's NBD driver: NBD_SET_SOCK
 * on one end of a socketpair, the request loop on the other. Partitions are
 * scanned; the device name is printed on stdout. docs/handover.md.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/dm-ioctl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/hdreg.h>
#include <linux/nbd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../include/vhdboot_handover.h"
#include "../../fs/part.h"        /* part_crc32 */
#include "../chain.h"             /* chain_open: the image and its parents through vhd/ */
#include "../vxchain.h"           /* vxc_open: a VHDX and its parents through vhdx/ */
#include "../hostdev.h"           /* hostdev_pread_full, hostdev_pwrite_full */

#define EXIT_NO_TABLE 2           /* not booted by vhdboot: an init hook does nothing */
#define EXIT_BAD_TABLE 3          /* a table was found but is damaged */
#define EXIT_FAIL 1

#define MAX_IO (4u << 20)         /* largest NBD request served (the kernel sends at most max_sectors_kb, set to this) */

struct opts {
	const char *nbd;          /* /dev/nbd0 */
	const char *mem;          /* /dev/mem */
	const char *table_file;   /* --table: a dump of [HO_SCAN_LO, HO_SCAN_HI) instead of /dev/mem */
	const char *efivar;       /* --efivar: vhdboot.efi's variable as efivarfs shows it (attributes + table) */
	const char *mount_dir;    /* /run/vhdboot */
	unsigned drive;           /* 0x80 */
	int wait_s;               /* seconds to wait for the disk and /dev/nbdN to appear */
	int foreground;
	int info;                 /* print the table and exit */
	int read_only;            /* --ro: serve read-only whatever the mode */
	const char *disconnect;   /* -D /dev/nbdN */
	int force_nbd;            /* --nbd: never the device-mapper path */
	const char *serve_file;   /* --serve-stdin IMAGE: the request loop over fd 0, no table or device (tests) */
	const char *overlay;      /* --overlay PHYS:BYTES with --serve-stdin: a snapshot overlay in --mem (tests) */
	int no_grow;              /* --no-grow with --serve-stdin: writes needing a new block refused, as on NTFS (tests) */
};

static const char *prog = "vhdboot-attach";

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Sleep ms milliseconds. */
static void nap(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Read a whole small sysfs file into buf (NUL-terminated, trailing newline cut); 0 or -1. */
static int read_sys(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t r = read(fd, buf, n - 1);
	close(fd);
	if (r < 0)
		return -1;
	buf[r] = 0;
	while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == ' '))
		buf[--r] = 0;
	return 0;
}

static int read_sys_u64(const char *path, unsigned long long *v)
{
	char b[64];
	if (read_sys(path, b, sizeof(b)))
		return -1;
	char *end;
	*v = strtoull(b, &end, 10);
	return end == b ? -1 : 0;
}

/* ---------------------------------------------------------------- the table */

static uint8_t lowmem[HO_SCAN_HI - HO_SCAN_LO];

/*
 * Fill lowmem with [HO_SCAN_LO, HO_SCAN_HI): from a dump file, or /dev/mem
 * page by page (CONFIG_STRICT_DEVMEM: a RAM page below 1 MiB reads as zeros,
 * a page it refuses is left zero). 0, or -1 with a message.
 */
static int load_lowmem(const struct opts *o)
{
	const char *src = o->table_file ? o->table_file : o->mem;
	int fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		msg("cannot open %s: %s", src, strerror(errno));
		return -1;
	}
	memset(lowmem, 0, sizeof(lowmem));
	uint64_t base = o->table_file ? 0 : HO_SCAN_LO;
	int got = 0;
	for (uint32_t off = 0; off < sizeof(lowmem); off += 4096) {
		ssize_t r = pread(fd, lowmem + off, 4096, (off_t)(base + off));
		if (r > 0)
			got = 1;
	}
	close(fd);
	if (!got) {
		msg("%s: nothing readable in %05x-%05x", src, HO_SCAN_LO, HO_SCAN_HI - 1);
		return -1;
	}
	return 0;
}

#define EFIVARS_DIR "/sys/firmware/efi/efivars"
#define EFIVAR_DEFAULT EFIVARS_DIR "/" HO_EFI_VAR_NAME "-" HO_EFI_VAR_GUID
#define EFI_VARIABLE_NON_VOLATILE 0x1u

/*
 * vhdboot.efi's variable (o->efivar: 4 bytes of attributes, then the table)
 * into lowmem. Under UEFI with efivarfs not mounted (an initramfs), it is
 * mounted on EFIVARS_DIR for the read and unmounted again. 1 read (its
 * length in *len), 0 absent (fall back to /dev/mem), -1 refused (message).
 */
static int load_efivar(const struct opts *o, uint32_t *len)
{
	int mounted = 0;
	int fd = open(o->efivar, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && !strcmp(o->efivar, EFIVAR_DEFAULT) && access("/sys/firmware/efi", F_OK) == 0 &&
	    mount("efivarfs", EFIVARS_DIR, "efivarfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "") == 0) {
		mounted = 1;              /* EBUSY etc.: already mounted (so the variable is truly absent) */
		fd = open(o->efivar, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		int e = errno;
		if (mounted)
			umount(EFIVARS_DIR);
		if (e == ENOENT)
			return 0;
		msg("cannot open %s: %s", o->efivar, strerror(e));
		return -1;
	}
	static uint8_t var[4 + HO_MAX_BYTES + 1];
	ssize_t r = read(fd, var, sizeof(var));   /* efivarfs hands the whole variable to one read */
	close(fd);
	if (mounted)
		umount(EFIVARS_DIR);
	if (r < 4 + (ssize_t)sizeof(struct ho_header) || r > 4 + (ssize_t)HO_MAX_BYTES) {
		msg("%s: %zd bytes, not attributes + a hand-over table", o->efivar, r);
		return -1;
	}
	uint32_t attrs = (uint32_t)var[0] | (uint32_t)var[1] << 8 | (uint32_t)var[2] << 16 | (uint32_t)var[3] << 24;
	if (attrs & EFI_VARIABLE_NON_VOLATILE) {
		msg("%s is non-volatile (attributes %x): vhdboot.efi publishes a volatile one, so this is a stale copy", o->efivar,
		    attrs);
		return -1;
	}
	memset(lowmem, 0, sizeof(lowmem));
	memcpy(lowmem, var + 4, (size_t)r - 4);
	*len = (uint32_t)r - 4;
	return 1;
}

/* The table (in lowmem) or NULL with the exit code in *rc and a message. */
static const uint8_t *find_table(const struct opts *o, int *rc)
{
	uint32_t vlen = 0;
	int v = o->table_file ? 0 : load_efivar(o, &vlen);
	if (v < 0) {
		*rc = EXIT_BAD_TABLE;
		return NULL;
	}
	if (v > 0) {
		int e = ho_check(lowmem, vlen);
		const struct ho_header *h = (const void *)lowmem;
		if (!e && (!(h->flags & HO_F_EFI_VAR) || h->self_phys))
			e = HO_E_MOVED;   /* a low-memory table copied into a variable: not what vhdboot.efi wrote */
		if (e) {
			msg("the hand-over table in %s is refused: %s (%s); nothing attached", o->efivar, ho_strerror(e),
			    ho_errname(e));
			*rc = EXIT_BAD_TABLE;
			return NULL;
		}
		return lowmem;
	}
	if (load_lowmem(o)) {
		*rc = EXIT_FAIL;
		return NULL;
	}
	uint32_t off;
	int e = ho_find(lowmem, sizeof(lowmem), HO_SCAN_LO, &off);
	if (e == HO_E_NOT_FOUND) {
		msg("no vhdboot hand-over table in %05x-%05x: this system was not booted by vhdboot", HO_SCAN_LO,
		    HO_SCAN_HI - 1);
		*rc = EXIT_NO_TABLE;
		return NULL;
	}
	if (e) {
		msg("a vhdboot hand-over table was found but is refused: %s (%s); nothing attached", ho_strerror(e),
		    ho_errname(e));
		*rc = EXIT_BAD_TABLE;
		return NULL;
	}
	return lowmem + off;
}

static const char *mode_name(int m)
{
	return m == HO_MODE_RW ? "rw" : m == HO_MODE_RO ? "ro" : m == HO_MODE_SNAPSHOT ? "snapshot" : "?";
}

static const char *place_name(int p)
{
	return p == HO_PLACE_DISK ? "disk" : p == HO_PLACE_PART ? "partition" : p == HO_PLACE_FILE ? "file" : "ram";
}

/* A host file system as Linux knows it: the mount type, the module and config symbol that provide it, its name. */
struct host_fs {
	const char *type, *module, *config, *name;
};

/* The host file system of a file record (HO_FS_*; ho_check allows nothing else for a file). */
static const struct host_fs *host_fs_of(const struct ho_drive *d)
{
	static const struct host_fs fat12 = {"vfat", "vfat", "CONFIG_VFAT_FS", "FAT12"},
				    fat16 = {"vfat", "vfat", "CONFIG_VFAT_FS", "FAT16"},
				    fat32 = {"vfat", "vfat", "CONFIG_VFAT_FS", "FAT32"},
				    exfat = {"exfat", "exfat", "CONFIG_EXFAT_FS", "exFAT"},
				    ntfs = {"ntfs3", "ntfs3", "CONFIG_NTFS3_FS", "NTFS"};
	return d->fs == HO_FS_FAT12 ? &fat12 : d->fs == HO_FS_FAT16 ? &fat16 : d->fs == HO_FS_EXFAT ? &exfat :
	       d->fs == HO_FS_NTFS ? &ntfs : &fat32;
}

/* --info: the table in readable form. */
static void print_table(const uint8_t *t)
{
	const struct ho_header *h = (const void *)t;
	if (h->flags & HO_F_EFI_VAR)
		printf("table: version %u.%u, %u bytes in the EFI variable %s-%s, %u drive(s), by \"%s\"\n", h->version_major,
		       h->version_minor, h->total_bytes, HO_EFI_VAR_NAME, HO_EFI_VAR_GUID, h->ndrives, ho_str(t, h->firmware_off));
	else
		printf("table: version %u.%u, %u bytes at %05x, %u drive(s), by \"%s\"\n", h->version_major, h->version_minor,
		       h->total_bytes, h->self_phys, h->ndrives, ho_str(t, h->firmware_off));
	if (!(h->flags & HO_F_EFI_VAR))
		printf("vhdboot memory: low %05x-%05x, resident %08x-%08x\n", h->low_phys, h->low_phys + h->low_bytes - 1,
	       h->resident_phys, h->resident_phys + h->resident_bytes - 1);
	for (unsigned i = 0; i < h->ndrives; i++) {
		const struct ho_drive *d = ho_drive_get(t, i);
		printf("drive %02xh: %s, mode=%s%s, type %u, %llu sectors, place %s \"%s\"\n", d->bios_drive,
		       d->format == HO_FMT_VHDX ? "VHDX" : "VHD",
		       mode_name(d->mode), (d->flags & HO_DF_READ_ONLY) ? " (read-only)" : "", d->image_type,
		       (unsigned long long)d->virt_sectors, place_name(d->place), ho_str(t, d->where_off));
		printf("  disk: \"%s\" serial \"%s\", %llu sectors, lba0 crc %08x, mbr id %08x, iface %u ch %u dev %u\n",
		       ho_str(t, d->model_off), ho_str(t, d->serial_off), (unsigned long long)d->disk_sectors,
		       d->disk_lba0_crc, d->disk_mbr_id, d->iface, d->ata_channel, d->ata_device);
		if (d->part_number)
			printf("  partition %u: start %llu, %llu sectors, type %02x\n", d->part_number,
			       (unsigned long long)d->part_start, (unsigned long long)d->part_sectors, d->part_type);
		for (unsigned k = 0; k < d->chain_len && d->chain_off; k++)
			printf("  chain[%u]: %s\n", k, ho_chain_path(t, d, k));
		if (d->place == HO_PLACE_FILE)
			printf("  file: %llu bytes, %s, cluster %u, %u extent(s) (%u in the table)\n",
			       (unsigned long long)d->file_bytes, host_fs_of(d)->name, d->cluster_bytes, d->extents_total,
			       d->extents_count);
		if (d->overlay_bytes)
			printf("  snapshot overlay: %llu bytes at %llx\n", (unsigned long long)d->overlay_bytes,
			       (unsigned long long)d->overlay_phys);
	}
}

/* ---------------------------------------------------------------- the backing disk and partition */

/* Block devices that are never a backing disk. */
static int skip_dev(const char *n)
{
	static const char *const pre[] = {"nbd", "loop", "ram", "dm-", "zram", "sr", "md", "fd", NULL};
	for (int i = 0; pre[i]; i++)
		if (!strncmp(n, pre[i], strlen(pre[i])))
			return 1;
	return n[0] == '.';
}

/* Copy a string field of HDIO_GET_IDENTITY's struct hd_driveid (the kernel hands it in text order), spaces trimmed. */
static void ata_str(char *out, const uint8_t *id, int word, int words)
{
	int n = 0;
	for (int i = 0; i < words * 2; i++)
		out[n++] = (char)id[word * 2 + i];
	out[n] = 0;
	while (n > 0 && out[n - 1] == ' ')
		out[--n] = 0;
	char *s = out;
	while (*s == ' ')
		s++;
	memmove(out, s, strlen(s) + 1);
}

/*
 * Does /dev/name match drive d? size, CRC of sector 0, and the serial
 * when the kernel answers HDIO_GET_IDENTITY (libata does). why: the first
 * mismatch, for the message when nothing matches.
 */
static int disk_matches(const char *name, const uint8_t *t, const struct ho_drive *d, char *why, size_t wn)
{
	char path[300];
	unsigned long long sectors = 0;
	snprintf(path, sizeof(path), "/sys/block/%s/size", name);
	if (read_sys_u64(path, &sectors) || sectors != d->disk_sectors) {
		snprintf(why, wn, "%s: %llu sectors, not %llu", name, sectors, (unsigned long long)d->disk_sectors);
		return 0;
	}
	snprintf(path, sizeof(path), "/dev/%s", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, wn, "%s: %s", path, strerror(errno));
		return 0;
	}
	uint8_t s0[512];
	int ok = pread(fd, s0, sizeof(s0), 0) == (ssize_t)sizeof(s0);
	if (!ok || part_crc32(0, s0, sizeof(s0)) != d->disk_lba0_crc) {
		snprintf(why, wn, "%s: sector 0 differs from the one vhdboot read", name);
		close(fd);
		return 0;
	}
	uint8_t id[512];
	const char *serial = ho_str(t, d->serial_off);
	if (serial[0] && ioctl(fd, HDIO_GET_IDENTITY, id) == 0) {
		char s[24];
		ata_str(s, id, 10, 10);
		if (strcmp(s, serial)) {
			snprintf(why, wn, "%s: serial \"%s\", not \"%s\"", name, s, serial);
			close(fd);
			return 0;
		}
	}
	close(fd);
	return 1;
}

/* The backing disk's name ("sda") into out; waits up to wait_s for it. 0, or -1 with a message. */
static int find_disk(const uint8_t *t, const struct ho_drive *d, int wait_s, char *out, size_t on)
{
	char why[400] = "no block devices";
	for (int tries = 0; tries <= wait_s * 5; tries++) {
		DIR *dir = opendir("/sys/block");
		int found = 0;
		char first[300] = "";
		if (dir) {
			struct dirent *e;
			while ((e = readdir(dir))) {
				if (skip_dev(e->d_name))
					continue;
				if (disk_matches(e->d_name, t, d, why, sizeof(why))) {
					if (!found++)
						snprintf(first, sizeof(first), "%s", e->d_name);
					else
						msg("both %s and %s match drive %02xh's disk", first, e->d_name, d->bios_drive);
				}
			}
			closedir(dir);
		}
		if (found == 1) {
			snprintf(out, on, "%s", first);
			return 0;
		}
		if (found > 1) {
			msg("the backing disk is ambiguous (identical disks): nothing attached");
			return -1;
		}
		nap(200);
	}
	msg("no disk matches drive %02xh's backing disk (\"%s\", %llu sectors) after %d s; last: %s", d->bios_drive,
	    ho_str(t, d->model_off), (unsigned long long)d->disk_sectors, wait_s, why);
	return -1;
}

/* The partition of disk starting at d->part_start with d->part_sectors: its name into out. 0 or -1. */
static int find_part(const char *disk, const struct ho_drive *d, int wait_s, char *out, size_t on)
{
	char path[600];
	for (int tries = 0; tries <= wait_s * 5; tries++) {
		snprintf(path, sizeof(path), "/sys/block/%s", disk);
		DIR *dir = opendir(path);
		struct dirent *e;
		while (dir && (e = readdir(dir))) {
			unsigned long long start, size;
			if (strncmp(e->d_name, disk, strlen(disk)))
				continue;
			snprintf(path, sizeof(path), "/sys/block/%s/%s/start", disk, e->d_name);
			if (read_sys_u64(path, &start))
				continue;
			snprintf(path, sizeof(path), "/sys/block/%s/%s/size", disk, e->d_name);
			if (read_sys_u64(path, &size))
				continue;
			if (start == d->part_start && size == d->part_sectors) {
				snprintf(out, on, "%s", e->d_name);
				closedir(dir);
				return 0;
			}
		}
		if (dir)
			closedir(dir);
		nap(200);
	}
	msg("%s has no partition starting at %llu with %llu sectors (partition %u at boot)", disk,
	    (unsigned long long)d->part_start, (unsigned long long)d->part_sectors, d->part_number);
	return -1;
}

/* ---------------------------------------------------------------- the image */

/* Does the running kernel have file system type (a line of /proc/filesystems)? 1 yes, 0 no, -1 unknown (no /proc). */
static int kernel_has_fs(const char *type)
{
	FILE *f = fopen("/proc/filesystems", "re");
	if (!f)
		return -1;
	char line[128];
	int found = 0;
	while (!found && fgets(line, sizeof(line), f)) {
		char *name = strrchr(line, '\t') ? strrchr(line, '\t') + 1 : line;
		name[strcspn(name, "\n")] = 0;
		found = !strcmp(name, type);
	}
	fclose(f);
	return found;
}

/*
 * Mount the host partition path (file system hf) on mnt: read-only with
 * img_ro. 0, or -1 with a message. The mount is tried first (the kernel
 * loads a missing module itself where it can); a kernel that then still
 * lacks the driver is named with the module and config symbol it lacks.
 */
static int mount_host(const char *path, const char *mnt, const struct host_fs *hf, int img_ro)
{
	if (mount(path, mnt, hf->type, (img_ro ? MS_RDONLY : 0) | MS_NOATIME | MS_NODEV | MS_NOSUID | MS_NOEXEC, "") == 0)
		return 0;
	int e = errno;
	if (e == ENODEV && kernel_has_fs(hf->type) != 1)
		msg("the image's file is on %s: this kernel has no %s driver (module %s, %s; not in /proc/filesystems): not attached",
		    hf->name, hf->type, hf->module, hf->config);
	else
		msg("mounting %s (%s) on %s as %s: %s (is the %s module loaded?)", path, hf->name, mnt, hf->type, strerror(e),
		    hf->module);
	return -1;
}

/* The file's extents against the table's (FIBMAP: fs blocks relative to the partition). 0, or -1 with a message. */
static int check_extents(int fd, const uint8_t *t, const struct ho_drive *d, const char *path)
{
	int bs;
	if (ioctl(fd, FIGETBSZ, &bs) || bs < 512 || bs % 512) {
		msg("%s: no block size (FIGETBSZ): extents not checked", path);
		return 0;
	}
	unsigned per = (unsigned)bs / 512u;
	/*
	 * Probes stay inside the file's size: an extent ends at a cluster
	 * boundary, and past the end of the data exfat's FIBMAP answers 0
	 * (vfat maps the whole last cluster).
	 */
	struct stat st;
	if (fstat(fd, &st)) {
		msg("%s: fstat: %s: extents not checked", path, strerror(errno));
		return 0;
	}
	uint64_t file_secs = ((uint64_t)st.st_size + 511) / 512;
	for (unsigned k = 0; k < d->extents_count; k++) {
		struct ho_extent e;
		ho_extent_get(t, d, k, &e);
		if (!e.sectors || e.file_sector >= file_secs)
			continue;
		uint64_t last = (uint64_t)e.file_sector + e.sectors - 1;
		uint32_t probe[2] = {e.file_sector, (uint32_t)(last < file_secs ? last : file_secs - 1)};
		for (int j = 0; j < 2; j++) {
			int blk = (int)(probe[j] / per);
			if (ioctl(fd, FIBMAP, &blk)) {
				msg("%s: FIBMAP: %s: extents not checked", path, strerror(errno));
				return 0;
			}
			uint64_t lba = (uint64_t)(unsigned)blk * per + probe[j] % per;
			if (lba != e.lba + (probe[j] - e.file_sector)) {
				msg("%s: file sector %u is at partition sector %llu, vhdboot served it from %llu: not the same file; nothing attached",
				    path, probe[j], (unsigned long long)lba, (unsigned long long)(e.lba + probe[j] - e.file_sector));
				return -1;
			}
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- NBD */

static volatile sig_atomic_t stop_req;

static void on_term(int sig)
{
	(void)sig;
	stop_req = 1;
}

static int read_full(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* ---------------------------------------------------------------- mode=snapshot: the boot loader's writes carried over */

/*
 * Under mode=snapshot the BIOS phase's writes are in vhdboot's RAM overlay
 * (kernel/overlay.c), inside its E820-reserved resident region; the table
 * gives its address and size. Its layout: `entries` uint32 keys (lba + 1,
 * 0 empty; entries the smallest power of two >= 2 * capacity), `entries`
 * uint32 pool slots, then capacity 512-byte sectors. vhdboot-attach reads
 * it through /dev/mem (CONFIG_STRICT_DEVMEM lets a non-RAM, non-busy page
 * be read; Linux does not mark E820-reserved ranges above 1 MiB busy) and
 * serves the image read-only under a writable RAM layer: a sparse memfd
 * holding every sector written since boot (the overlay's first, then
 * Linux's), with one bit per sector in chunks allocated on first write.
 * Nothing reaches the image file; everything is gone at poweroff, as the
 * BIOS phase's writes would be.
 */
#define SNAP_CHUNK 4096u           /* sectors per bit chunk (512 bytes of bits) */

struct snap {
	int fd;                    /* memfd: sector lba at byte lba * 512 */
	uint8_t **bits;            /* per chunk, NULL = nothing written there */
	uint64_t chunks, sectors;
	uint64_t stored;           /* sectors in the layer */
};

static int snap_has(const struct snap *sn, uint64_t lba)
{
	const uint8_t *b = sn->bits[lba / SNAP_CHUNK];
	uint32_t i = (uint32_t)(lba % SNAP_CHUNK);
	return b && (b[i >> 3] >> (i & 7) & 1);
}

/* Mark [lba, lba+n) present; 0 or -1 (no memory). */
static int snap_mark(struct snap *sn, uint64_t lba, uint32_t n)
{
	for (uint64_t s = lba; s < lba + n; s++) {
		uint8_t **b = &sn->bits[s / SNAP_CHUNK];
		if (!*b && !(*b = calloc(SNAP_CHUNK / 8, 1)))
			return -1;
		uint32_t i = (uint32_t)(s % SNAP_CHUNK);
		if (!((*b)[i >> 3] >> (i & 7) & 1))
			sn->stored++;
		(*b)[i >> 3] |= (uint8_t)(1u << (i & 7));
	}
	return 0;
}

/* A write into the layer: 0, or an errno value (ENOSPC when the memory is gone). */
static int snap_write(struct snap *sn, uint64_t lba, uint32_t n, const void *buf)
{
	if (hostdev_pwrite_full(sn->fd, buf, (size_t)n * 512, lba * 512))
		return errno == ENOSPC || errno == ENOMEM ? ENOSPC : EIO;
	return snap_mark(sn, lba, n) ? ENOSPC : 0;
}

/* The image being served: a VHD chain (v) or a VHDX chain (vx); exactly one is set. */
struct img {
	struct vhd *v;
	struct vxchain *vx;
};

/* count sectors at lba of the virtual disk into buf. 0 or the library's error. */
static int img_read(const struct img *im, uint64_t lba, uint32_t n, void *buf)
{
	return im->vx ? vxc_read(im->vx, lba * 512, n * 512, buf) : vhd_read(im->v, lba, n, buf);
}

/* count sectors from buf at lba (new blocks allocated by the library, crash-safe). 0 or the library's error. */
static int img_write(const struct img *im, uint64_t lba, uint32_t n, const void *buf)
{
	return im->vx ? vhdx_write(vxc_leaf(im->vx), lba, n, buf) : vhd_write(im->v, lba, n, buf);
}

/* Flush the leaf's file. 0 or the library's error. */
static int img_flush(const struct img *im)
{
	return im->vx ? vhdx_flush(vxc_leaf(im->vx)) : vhd_flush(im->v);
}

/* The message for an error of img_*. */
static const char *img_strerror(const struct img *im, int e)
{
	return im->vx ? vhdx_strerror(e) : vhd_strerror(e);
}

/* The errno a failed write answers: ENOSPC when the host has no room for a new block, else EIO. */
static int img_write_errno(const struct img *im, int e)
{
	return (im->vx ? e == VHDX_E_NOSPACE : e == VHD_E_NOSPACE) ? ENOSPC : EIO;
}

/* A read: layer sectors from the memfd, each run of the others through the image. 0 or an image error (-1: the layer). */
static int snap_read(struct snap *sn, const struct img *im, uint64_t lba, uint32_t n, uint8_t *buf)
{
	uint32_t i = 0;
	while (i < n) {
		int in = snap_has(sn, lba + i);
		uint32_t j = i + 1;
		while (j < n && snap_has(sn, lba + j) == in)
			j++;
		if (in) {
			if (hostdev_pread_full(sn->fd, buf + (size_t)i * 512, (size_t)(j - i) * 512, (lba + i) * 512) !=
			    (ssize_t)(j - i) * 512)
				return -1;
		} else {
			int e = img_read(im, lba + i, j - i, buf + (size_t)i * 512);
			if (e)
				return e;
		}
		i = j;
	}
	return 0;
}

/* kernel/overlay.c's table size for capacity sectors. */
static uint64_t snap_entries(uint64_t capacity)
{
	uint64_t n = 1;
	while (n < 2 * capacity)
		n <<= 1;
	return n;
}

/*
 * Load drive d's overlay from physical memory (mem: /dev/mem) into a new
 * layer. 0, or -1 with a message (refused: nothing attached).
 */
static int snap_load(struct snap *sn, const char *mem, const struct ho_drive *d, uint64_t sectors)
{
	uint64_t bytes = d->overlay_bytes, e = 0, cap = 0;
	if (!bytes || !d->overlay_phys) {
		msg("drive %02xh: mode=snapshot without an overlay in the table (a vhdboot.efi before this one kept it in boot-services memory, which Linux reclaims): the boot loader's writes cannot be carried over; refused",
		    d->bios_drive);
		return -1;
	}
	for (uint64_t t = 2; t * 8 < bytes; t <<= 1)
		if ((bytes - t * 8) % 512 == 0 && snap_entries((bytes - t * 8) / 512) == t)
			e = t, cap = (bytes - t * 8) / 512;
	if (!e) {
		msg("the snapshot overlay's size %llu fits no pool + table layout: refused", (unsigned long long)bytes);
		return -1;
	}
	/* The table (keys, slots) first, in pieces; then only the pool sectors it uses, one by one. */
	size_t tbytes = (size_t)e * 8;
	uint8_t *m = malloc(tbytes);
	uint8_t *slot_seen = NULL;
	int fd = open(mem, O_RDONLY | O_CLOEXEC);
	if (!m || fd < 0) {
		msg("reading the snapshot overlay: %s", !m ? "no memory" : strerror(errno));
		free(m);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/*
	 * mmap first: read() of /dev/mem goes through memremap, which Debian's
	 * 6.1 refused for vhdboot's reserved region in the test guest (EFAULT);
	 * mmap maps the pages uncached with no such step. read() if mmap fails.
	 */
	long pg = sysconf(_SC_PAGESIZE);
	uint64_t mbase = d->overlay_phys & ~(uint64_t)(pg - 1), mlen = d->overlay_phys + bytes - mbase;
	const uint8_t *map = mmap(NULL, (size_t)mlen, PROT_READ, MAP_SHARED, fd, (off_t)mbase);
	if (map == MAP_FAILED)
		map = NULL;
	const uint8_t *ov = map ? map + (d->overlay_phys - mbase) : NULL;
	for (size_t at = 0; at < tbytes; at += 1u << 20) {
		size_t k = tbytes - at < (1u << 20) ? tbytes - at : (1u << 20);
		if (ov) {
			memcpy(m + at, ov + at, k);
			continue;
		}
		if (hostdev_pread_full(fd, m + at, k, d->overlay_phys + at) != (ssize_t)k) {
			msg("cannot read the snapshot overlay's table at %llx from %s: %s; refused (the boot loader's writes would be lost)",
			    (unsigned long long)(d->overlay_phys + at), mem, strerror(errno));
			close(fd);           /* (no map here: the loop reads only without one) */
			free(m);
			return -1;
		}
	}
	memset(sn, 0, sizeof(*sn));
	sn->fd = -1;
	sn->sectors = sectors;
	sn->chunks = (sectors + SNAP_CHUNK - 1) / SNAP_CHUNK;
	sn->bits = calloc(sn->chunks ? sn->chunks : 1, sizeof(*sn->bits));
	sn->fd = memfd_create("vhdboot-snapshot", MFD_CLOEXEC);
	slot_seen = calloc((size_t)(cap + 7) / 8, 1);
	if (!sn->bits || sn->fd < 0 || ftruncate(sn->fd, (off_t)(sectors * 512)) || !slot_seen) {
		msg("the snapshot layer: %s", strerror(errno ? errno : ENOMEM));
		goto bad;
	}
	const uint32_t *keys = (const void *)m, *slots = keys + e;
	uint64_t pool = d->overlay_phys + tbytes;
	uint8_t sec[512];
	for (uint64_t i = 0; i < e; i++) {
		if (!keys[i])
			continue;
		uint64_t lba = (uint64_t)keys[i] - 1;
		uint32_t s = slots[i];
		if (lba >= sectors || s >= cap || (slot_seen[s / 8] >> (s % 8) & 1) || snap_has(sn, lba)) {
			msg("the snapshot overlay at %llx is inconsistent (entry %llu: sector %llu, slot %u): refused",
			    (unsigned long long)d->overlay_phys, (unsigned long long)i, (unsigned long long)lba, s);
			goto bad;
		}
		slot_seen[s / 8] |= (uint8_t)(1u << (s % 8));
		if (ov)
			memcpy(sec, ov + tbytes + (size_t)s * 512, 512);
		else if (hostdev_pread_full(fd, sec, 512, pool + (uint64_t)s * 512) != 512) {
			msg("cannot read the snapshot overlay's sector at %llx from %s: %s; refused",
			    (unsigned long long)(pool + (uint64_t)s * 512), mem, strerror(errno));
			goto bad;
		}
		if (snap_write(sn, lba, 1, sec)) {
			msg("the snapshot layer: no memory for the overlay's sectors");
			goto bad;
		}
	}
	if (map)
		munmap((void *)map, (size_t)mlen);
	close(fd);
	free(slot_seen);
	free(m);
	return 0;
bad:
	if (map)
		munmap((void *)map, (size_t)mlen);
	close(fd);
	free(slot_seen);
	free(m);
	if (sn->bits)
		for (uint64_t c = 0; c < sn->chunks; c++)
			free(sn->bits[c]);
	free(sn->bits);
	if (sn->fd >= 0)
		close(sn->fd);
	sn->bits = NULL;
	return -1;
}

/* Reply to handle with error (errno value, 0 = ok), then len bytes of data, in one sendmsg. 0 or -1. */
static int reply(int s, const uint8_t *handle, uint32_t error, const void *data, uint32_t len)
{
	uint8_t r[16];
	put_be32(r, NBD_REPLY_MAGIC);
	put_be32(r + 4, error);
	memcpy(r + 8, handle, 8);
	struct iovec iov[2] = { { r, sizeof(r) }, { (void *)(uintptr_t)data, len } };
	struct msghdr mh;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = len ? 2 : 1;
	size_t left = sizeof(r) + len;
	while (left) {
		ssize_t w = sendmsg(s, &mh, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		left -= (size_t)w;
		while (mh.msg_iovlen && (size_t)w >= mh.msg_iov[0].iov_len) {   /* drop what went, keep the rest */
			w -= (ssize_t)mh.msg_iov[0].iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen) {
			mh.msg_iov[0].iov_base = (uint8_t *)mh.msg_iov[0].iov_base + w;
			mh.msg_iov[0].iov_len -= (size_t)w;
		}
	}
	return 0;
}

/*
 * The server's state. Fast paths (docs/handover.md "Performance"), each
 * falling back to the library when it does not apply:
 *  - reads of sectors that sit in the leaf file as one run (a fixed image;
 *    an allocated block whose bitmap is all set) are spliced from the file's
 *    page cache into the socket (no copy by the server);
 *  - writes into such runs are spliced from the socket into the file (no
 *    copy by the server either; not O_DIRECT: the reply would wait for
 *    the disk, and the page cache then serves the reads that follow);
 *  - writes into unallocated blocks of a dynamic or differencing image are
 *    gathered (write-back, up to PEND_MAX, sequential) and handed to
 *    vhd_write at once, which allocates them with three flushes in all
 *    instead of three per block. They are committed before any FLUSH, FUA
 *    write, overlapping read, non-adjacent write, after a second without
 *    requests, and at disconnect; a commit failure is logged and answered on
 *    the next FLUSH (EIO), as a disk's volatile write cache would.
 */
#define PEND_MAX (32u << 20)

/*
 * The device-mapper hybrid of a dynamic or differencing VHD (see "hybrid"
 * below): runs of plain blocks mapped linearly onto the host partition,
 * every other range onto the NBD device at the same offset. The request
 * loop and the reloader thread share the image under mu.
 */
struct hseg { uint64_t v, n, p; };   /* virtual sectors [v, v+n) are partition sectors [p, p+n) */
struct hyb {
	int on;                   /* the dm devices exist and route to nbd */
	int broken;               /* a reload failed: the live table stays, no more reloads */
	int ro;
	char name[32];            /* vhdboot80 */
	dev_t part, nbd, dev;     /* host partition, nbd device, the hybrid device itself */
	struct hseg *seg;         /* linear runs, unordered */
	size_t nseg, cap;
	uint8_t *lin;             /* per block: 1 its runs are in seg[] (mapped linearly from the next load on) */
	uint32_t per, csec;       /* file system block and cluster, in sectors */
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int want, stop;           /* a reload asked for; the server is ending */
	unsigned long reloads, blocks;
};

struct srv {
	int s, nbd, ro;
	struct img im;            /* what is served */
	struct vhd *v;            /* a VHD: im.v (the fast paths below); a VHDX: NULL, everything through the library */
	uint64_t sectors;
	int fd;                   /* the leaf file (buffered, the library's) */
	int pipe[2];              /* for splice, or -1 */
	uint8_t *buf;             /* MAX_IO, 4 KiB aligned */
	uint8_t *pend;            /* PEND_MAX gathered allocating writes, or NULL */
	uint64_t pend_lba;
	uint32_t pend_n;          /* sectors gathered */
	int pend_err;             /* a commit failed since the last FLUSH: answered there */
	uint8_t *full;            /* per block: 0 unknown, 1 allocated with every bitmap bit set, 2 not */
	uint8_t *bm;              /* one block's bitmap, read by block_full */
	struct snap *snap;        /* mode=snapshot: every write goes to this RAM layer, the image is read-only */
	int no_grow;              /* the file cannot grow (NTFS host): writes needing a new block answer EIO */
	unsigned long spliced, spliced_in, gathered, library;   /* requests by path, logged at the end */
	unsigned long refused;    /* writes refused under no_grow */
	struct hyb *hy;           /* the dm hybrid over this server's nbd device, or NULL */
};

/* Ask the reloader for a new table (blocks may have become plain). Caller holds hy->mu. */
static void hyb_kick(struct srv *S)
{
	if (S->hy && S->hy->on && !S->hy->broken && !S->hy->ro) {
		S->hy->want = 1;
		pthread_cond_signal(&S->hy->cv);
	}
}

/* Commit the gathered writes through vhd_write (allocating their blocks together). */
static void pend_commit(struct srv *S)
{
	if (!S->pend_n)
		return;
	int e = img_write(&S->im, S->pend_lba, S->pend_n, S->pend);
	if (e) {
		msg("write-back of %u sectors at %llu failed: %s (answered on the next flush)", S->pend_n,
		    (unsigned long long)S->pend_lba, img_strerror(&S->im, e));
		S->pend_err = img_write_errno(&S->im, e);
	}
	S->pend_n = 0;
	hyb_kick(S);
}

/* Is block blk allocated in the leaf with all its sectors' bitmap bits set (so its data are one run in the file)? */
static int block_full(struct srv *S, uint32_t blk)
{
	struct vhd *v = S->v;
	if (v->bat[blk] == VHD_BAT_FREE)
		return 0;
	if (!S->full[blk]) {
		uint32_t nb = v->bitmap_sectors * 512, need = v->spb;
		uint8_t *bm = S->bm;      /* never S->buf: a write's data may be waiting there */
		int ok = hostdev_pread_full(S->fd, bm, nb, (uint64_t)v->bat[blk] * 512) == (ssize_t)nb;
		for (uint32_t i = 0; ok && i < need / 8; i++)
			ok = bm[i] == 0xFF;
		S->full[blk] = ok ? 1 : 2;
	}
	return S->full[blk] == 1;
}

/*
 * Do all of [lba, lba+n) lie in the leaf file (a fixed image; allocated
 * blocks with every bitmap bit set)? Then *first gets the sectors of the
 * first run (to the end of its block: consecutive blocks are never one run,
 * each block's bitmap sits between) and *off its byte offset; else 0.
 */
static int map_run(struct srv *S, uint64_t lba, uint32_t n, uint64_t *off, uint32_t *first)
{
	struct vhd *v = S->v;
	if (S->snap || !v)
		return 0;                 /* the layer may hold any sector; a VHDX goes through its library */
	if (v->footer.type == VHD_TYPE_FIXED) {
		*off = lba * 512;
		*first = n;
		return 1;
	}
	if (!S->full || !n)
		return 0;
	uint32_t blk = (uint32_t)(lba >> v->spb_shift), last = (uint32_t)((lba + n - 1) >> v->spb_shift);
	for (uint32_t b = blk; b <= last; b++)
		if (!block_full(S, b))
			return 0;
	uint32_t in = (uint32_t)(lba & (v->spb - 1));
	*off = ((uint64_t)v->bat[blk] + v->bitmap_sectors + in) * 512;
	*first = v->spb - in < n ? v->spb - in : n;
	return 1;
}

/* Does every block [lba, lba+n) touches lack an allocation in the leaf (a write there allocates)? */
static int all_unallocated(const struct vhd *v, uint64_t lba, uint32_t n)
{
	if (v->footer.type == VHD_TYPE_FIXED || !n)
		return 0;
	for (uint64_t b = lba >> v->spb_shift; b <= (lba + n - 1) >> v->spb_shift; b++)
		if (v->bat[b] != VHD_BAT_FREE)
			return 0;
	return 1;
}

/* Does a write of [lba, lba+n) need a block the leaf has not allocated (so its file would grow)? */
static int needs_new_block(const struct srv *S, uint64_t lba, uint32_t n)
{
	const struct vhd *v = S->v;
	if (!n)
		return 0;
	if (S->im.vx) {               /* VHDX: a payload block not (fully or partly) present is allocated by a write */
		const struct vhdx *x = vxc_leaf(S->im.vx);
		for (uint64_t b = lba / x->spb; b <= (lba + n - 1) / x->spb; b++) {
			int st = vhdx_block_state(x, b * x->spb);
			if (st != VHDX_PB_FULLY_PRESENT && st != VHDX_PB_PARTIALLY_PRESENT)
				return 1;
		}
		return 0;
	}
	if (v->footer.type == VHD_TYPE_FIXED)
		return 0;
	for (uint64_t b = lba >> v->spb_shift; b <= (lba + n - 1) >> v->spb_shift; b++)
		if (v->bat[b] == VHD_BAT_FREE)
			return 1;
	return 0;
}

/* Splice len bytes of the file at off into the socket; more: data follow. 0, or -1 (connection lost). */
static int splice_out(struct srv *S, uint64_t off, uint32_t len, int more)
{
	/* This read in large reads, and the next stretch started in the background (sequential readers). */
	posix_fadvise(S->fd, (off_t)off, (off_t)len + (4 << 20), POSIX_FADV_WILLNEED);
	loff_t o = (loff_t)off;
	while (len) {
		ssize_t got = splice(S->fd, &o, S->pipe[1], NULL, len, SPLICE_F_MOVE | SPLICE_F_MORE);
		if (got <= 0) {
			/* Splice gave up (EOF, an error): the rest by pread, so the reply is still whole and right. */
			ssize_t n = hostdev_pread_full(S->fd, S->buf, len, (uint64_t)o);
			if (n != (ssize_t)len) {
				msg("read at file offset %llu: %s: dropping the connection", (unsigned long long)o,
				    n < 0 ? strerror(errno) : "short file");
				return -1;
			}
			return write_full(S->s, S->buf, len);
		}
		len -= (uint32_t)got;
		while (got) {
			ssize_t w = splice(S->pipe[0], NULL, S->s, NULL, (size_t)got,
					   SPLICE_F_MOVE | (len || more ? SPLICE_F_MORE : 0));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return -1;
			got -= w;
		}
	}
	return 0;
}

/* A read of [lba, lba+n) (map_run said it is in the file) spliced to the socket after the reply header. 0 or -1. */
static int reply_spliced(struct srv *S, const uint8_t *handle, uint64_t lba, uint32_t n)
{
	uint8_t r[16];
	put_be32(r, NBD_REPLY_MAGIC);
	put_be32(r + 4, 0);
	memcpy(r + 8, handle, 8);
	if (send(S->s, r, sizeof(r), MSG_MORE | MSG_NOSIGNAL) != (ssize_t)sizeof(r))
		return -1;
	while (n) {
		uint64_t off;
		uint32_t run;
		map_run(S, lba, n, &off, &run);
		if (splice_out(S, off, run * 512, run < n))
			return -1;
		lba += run;
		n -= run;
	}
	return 0;
}

/*
 * A write's len bytes spliced from the socket into the file at off (socket
 * -> pipe -> page cache). 0 written; EIO the file refused (the rest of the
 * data drained from the socket, so the stream stays in step); -1 the
 * connection is lost.
 */
static int splice_in_run(struct srv *S, uint64_t off, uint32_t len)
{
	loff_t o = (loff_t)off;
	int err = 0;
	while (len) {
		ssize_t got = splice(S->s, NULL, S->pipe[1], NULL, len, SPLICE_F_MOVE | SPLICE_F_MORE);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		len -= (uint32_t)got;
		while (got) {
			ssize_t w = err ? -1 : splice(S->pipe[0], NULL, S->fd, &o, (size_t)got, SPLICE_F_MOVE);
			if (w < 0 && errno == EINTR && !err)
				continue;
			if (w <= 0) {             /* drain what the pipe holds; later data are drained the same way */
				if (!err)
					msg("write at file offset %llu: %s", (unsigned long long)o, w < 0 ? strerror(errno) : "no progress");
				err = EIO;
				ssize_t r = read(S->pipe[0], S->buf, (size_t)got < MAX_IO ? (size_t)got : MAX_IO);
				if (r <= 0)
					return -1;
				w = r;
			}
			got -= w;
		}
	}
	return err;
}

/* A write of [lba, lba+n) (map_run said it is in the file) spliced run by run; as splice_in_run. */
static int splice_in(struct srv *S, uint64_t lba, uint32_t n)
{
	int err = 0;
	while (n) {
		uint64_t off;
		uint32_t run;
		map_run(S, lba, n, &off, &run);
		int e = splice_in_run(S, off, run * 512);
		if (e < 0)
			return -1;
		if (e)
			err = e;          /* the rest is still taken off the socket (and written: the reply says EIO) */
		lba += run;
		n -= run;
	}
	return err;
}

/*
 * The request loop: every request checked against the virtual disk's size
 * (sector multiples, inside [0, sectors)); writes with FUA and FLUSH
 * flushed through vhd_flush (fsync of every member written). Returns when
 * the kernel disconnects or the socket closes; 0 clean, -1 on errors.
 */
static int serve(struct srv *S)
{
	struct vhd *v = S->v;
	int rc = 0, asked = 0, locked = 0;
	for (;;) {
		if (locked)
			pthread_mutex_unlock(&S->hy->mu), locked = 0;
		if (stop_req && !asked) {     /* SIGTERM: flush, then ask the kernel to disconnect */
			if (S->hy)
				pthread_mutex_lock(&S->hy->mu);
			pend_commit(S);
			img_flush(&S->im);
			if (S->hy)
				pthread_mutex_unlock(&S->hy->mu);
			ioctl(S->nbd, NBD_DISCONNECT);
			asked = 1;
		}
		struct pollfd p = { S->s, POLLIN, 0 };
		int pr = poll(&p, 1, 1000);
		if (S->hy)                /* one request at a time against the reloader (never held while waiting) */
			pthread_mutex_lock(&S->hy->mu), locked = 1;
		if (pr <= 0) {
			pend_commit(S);           /* idle: nothing stays gathered for long */
			continue;
		}
		uint8_t q[28];
		if (read_full(S->s, q, sizeof(q)))
			break;                    /* socket closed: the kernel let go */
		if (be32(q) != NBD_REQUEST_MAGIC) {
			msg("bad request magic %08x: stopping", be32(q));
			rc = -1;
			break;
		}
		uint32_t type = be32(q + 4);
		const uint8_t *handle = q + 8;
		uint64_t from = be64(q + 16);
		uint32_t len = be32(q + 24);
		uint32_t cmd = type & 0xFFFF;
		if (cmd == NBD_CMD_DISC) {
			pend_commit(S);
			img_flush(&S->im);
			break;
		}
		if (cmd == NBD_CMD_FLUSH) {
			pend_commit(S);
			int e = img_flush(&S->im);
			if (e)
				msg("flush failed: %s", img_strerror(&S->im, e));
			int err = S->pend_err ? S->pend_err : e ? EIO : 0;
			S->pend_err = 0;
			if (reply(S->s, handle, (uint32_t)err, NULL, 0))
				break;
			continue;
		}
		int bad = from % 512 || len % 512 || len > MAX_IO || from / 512 > S->sectors ||
			  len / 512 > S->sectors - from / 512;
		uint64_t lba = from / 512;
		uint32_t n = len / 512;
		if (cmd == NBD_CMD_READ) {
			if (S->pend_n && !bad && lba < S->pend_lba + S->pend_n && S->pend_lba < lba + n)
				pend_commit(S);
			uint64_t off;
			uint32_t run;
			if (!bad && S->pipe[0] >= 0 && map_run(S, lba, n, &off, &run)) {
				S->spliced++;
				if (reply_spliced(S, handle, lba, n))
					break;
				continue;
			}
			S->library++;
			int e = bad ? EINVAL : (S->snap ? snap_read(S->snap, &S->im, lba, n, S->buf) : img_read(&S->im, lba, n, S->buf)) ? EIO : 0;
			if (e)
				msg("read %llu+%u refused: %s", (unsigned long long)from, len, bad ? "outside the image" : "I/O error");
			if (reply(S->s, handle, (uint32_t)e, S->buf, e ? 0 : len))
				break;
		} else if (cmd == NBD_CMD_WRITE) {
			if (len > MAX_IO) {       /* cannot even drain it: give up the connection */
				msg("write of %u bytes: larger than %u, stopping", len, MAX_IO);
				rc = -1;
				break;
			}
			if (!bad && !S->ro && !S->snap && S->no_grow && needs_new_block(S, lba, n)) {
				if (read_full(S->s, S->buf, len))
					break;
				if (!S->refused++)
					msg("write %llu+%u refused (EIO): it needs a new block of the image, and its file cannot grow on "
					    "NTFS (the firmware refuses it too); writes into allocated blocks work. Remedy: vhdtool convert "
					    "-O fixed, or a FAT32/exFAT host", (unsigned long long)from, len);
				if (reply(S->s, handle, EIO, NULL, 0))
					break;
				continue;
			}
			int fua = (type & NBD_CMD_FLAG_FUA) != 0;
			int gather = !bad && !S->ro && S->pend && !fua && all_unallocated(v, lba, n) &&
				     (!S->pend_n || lba == S->pend_lba + S->pend_n) && (uint64_t)S->pend_n * 512 + len <= PEND_MAX;
			if (gather) {
				if (!S->pend_n)
					S->pend_lba = lba;
				if (read_full(S->s, S->pend + (size_t)S->pend_n * 512, len))
					break;
				S->pend_n += n;
				S->gathered++;
				if (reply(S->s, handle, 0, NULL, 0))
					break;
				continue;
			}
			uint64_t off;
			uint32_t run;
			if (!bad && !S->ro && !S->snap && S->pipe[0] >= 0 && map_run(S, lba, n, &off, &run)) {
				pend_commit(S);       /* writes reach the file in order */
				int e = splice_in(S, lba, n);
				if (e < 0)
					break;
				if (!e && fua)
					e = img_flush(&S->im) ? EIO : 0;
				S->spliced_in++;
				if (reply(S->s, handle, (uint32_t)e, NULL, 0))
					break;
				continue;
			}
			if (read_full(S->s, S->buf, len))
				break;
			int e = 0;
			if (bad || S->ro) {
				e = bad ? EINVAL : EPERM;
			} else if (S->snap) {
				e = snap_write(S->snap, lba, n, S->buf);
				if (e)
					msg("write %llu+%u into the snapshot layer failed: %s", (unsigned long long)from, len, strerror(e));
			} else {
				pend_commit(S);       /* writes reach the library in order */
				S->library++;
				int ve = img_write(&S->im, lba, n, S->buf);
				if (S->full && v->footer.type != VHD_TYPE_FIXED)   /* bitmaps may have changed */
					for (uint64_t b = lba >> v->spb_shift; n && b <= (lba + n - 1) >> v->spb_shift; b++)
						if (S->full[b] == 2)
							S->full[b] = 0;
				hyb_kick(S);          /* a block may have become plain (a differencing bitmap filled) */
				if (!ve && fua)
					ve = img_flush(&S->im);
				if (ve) {
					msg("write %llu+%u failed: %s", (unsigned long long)from, len, img_strerror(&S->im, ve));
					e = img_write_errno(&S->im, ve);
				}
			}
			if (reply(S->s, handle, (uint32_t)e, NULL, 0))
				break;
		} else {
			if (reply(S->s, handle, EINVAL, NULL, 0))
				break;
		}
	}
	if (!locked && S->hy)
		pthread_mutex_lock(&S->hy->mu), locked = 1;
	pend_commit(S);
	if (locked)
		pthread_mutex_unlock(&S->hy->mu);
	return rc;
}

/*
 * Unmount the host file system mounted on mnt. After switch_root the path
 * is gone from this process's view (/run was moved into the new root): then
 * through the directory fd kept at mount time, detached (MNT_DETACH) since
 * the fd's cwd holds it until chdir("/").
 */
static void unmount_host(const char *mnt, int mnt_fd)
{
	if (umount(mnt) == 0)
		return;
	if (mnt_fd >= 0 && fchdir(mnt_fd) == 0) {
		int rc = umount2(".", MNT_DETACH);
		int e = errno;
		if (chdir("/"))
			e = errno;
		if (rc == 0)
			return;
		errno = e;
	}
	msg("unmounting the host file system %s: %s (its data were flushed)", mnt, strerror(errno));
}

/* ---------------------------------------------------------------- device-mapper fast path (fixed images) */

/*
 * A fixed VHD's virtual disk is the first virt_sectors of its file, so
 * where the file's extents are known and complete it can be served with no
 * daemon at all: dm-linear maps over the host partition, one for the whole
 * disk ("vhdboot80") and one per partition inside it ("vhdboot80p1"...:
 * device-mapper devices get no partition scan). Safety: the host file
 * system is unmounted before the maps are made, and device-mapper claims
 * the host partition exclusively while they exist, so nothing can mount it
 * and move the file's clusters (FAT never moves a file by itself). The
 * table's extents are checked against the kernel's own FIEMAP first
 * (FIBMAP per cluster where the file system has no FIEMAP, as vfat in 6.1).
 * Built with the DM ioctls directly (no dmsetup in an initramfs).
 */
#define DM_BUF 65536
#define DM_NAME_FMT "vhdboot%02x"

/* One DM ioctl on name with the request in buf (struct dm_ioctl + data of data_size); 0 or -1 (errno). */
static int dm_call(int ctl, unsigned long req, struct dm_ioctl *io, const char *name, uint32_t flags)
{
	io->version[0] = DM_VERSION_MAJOR, io->version[1] = 0, io->version[2] = 0;
	if (!io->data_size)
		io->data_size = sizeof(*io);
	io->data_start = sizeof(*io);
	io->flags = flags;
	snprintf(io->name, sizeof(io->name), "%s", name);
	return ioctl(ctl, req, io);
}

/*
 * Without FIEMAP (vfat in 6.1): FIBMAP at the first and last sector of
 * every cluster (a cluster is contiguous) against the table. 0 or -1.
 */
static int dm_check_fibmap(int fd, const uint8_t *t, const struct ho_drive *d, uint64_t bytes)
{
	int bs;
	if (ioctl(fd, FIGETBSZ, &bs) || bs < 512 || bs % 512)
		return msg("FIGETBSZ: %s", strerror(errno)), -1;
	uint32_t per = (uint32_t)bs / 512, step = d->cluster_bytes >= 512 ? d->cluster_bytes / 512 : per;
	uint64_t total = bytes / 512;
	struct ho_extent e;
	unsigned k = 0;
	for (uint64_t c = 0; c < total; c += step) {
		uint64_t probe[2] = {c, (c + step < total ? c + step : total) - 1};
		for (int j = 0; j < 2; j++) {
			uint64_t fsec = probe[j];
			while (k < d->extents_count && ho_extent_get(t, d, k, &e) == 0 && (uint64_t)e.file_sector + e.sectors <= fsec)
				k++;
			if (k >= d->extents_count || e.file_sector > fsec)
				return msg("the table has no extent for file sector %llu", (unsigned long long)fsec), -1;
			int blk = (int)(fsec / per);
			if (ioctl(fd, FIBMAP, &blk) || blk <= 0)
				return msg("FIBMAP of file sector %llu: %s", (unsigned long long)fsec, blk ? strerror(errno) : "a hole"), -1;
			uint64_t lba = (uint64_t)(unsigned)blk * per + fsec % per, want = e.lba + (fsec - e.file_sector);
			if (lba != want)
				return msg("file sector %llu is at partition sector %llu, the table says %llu", (unsigned long long)fsec,
					   (unsigned long long)lba, (unsigned long long)want), -1;
		}
	}
	return 0;
}

/*
 * Check the table's extents of the leaf file against FIEMAP (every byte of
 * [0, bytes) where the table says). 0 same, -1 not (message).
 */
static int dm_check_fiemap(int fd, const uint8_t *t, const struct ho_drive *d, uint64_t bytes)
{
	enum { N = 256 };
	static uint8_t fbuf[sizeof(struct fiemap) + N * sizeof(struct fiemap_extent)];
	struct fiemap *fm = (void *)fbuf;
	uint64_t pos = 0;           /* file byte checked up to */
	unsigned k = 0;             /* table extent */
	struct ho_extent e;
	if (fsync(fd))
		return msg("fsync before FIEMAP: %s", strerror(errno)), -1;
	while (pos < bytes) {
		memset(fbuf, 0, sizeof(fbuf));
		fm->fm_start = pos, fm->fm_length = bytes - pos, fm->fm_flags = FIEMAP_FLAG_SYNC, fm->fm_extent_count = N;
		if (ioctl(fd, FS_IOC_FIEMAP, fm))
			return errno == EOPNOTSUPP || errno == ENOTTY ? dm_check_fibmap(fd, t, d, bytes)
								      : (msg("FIEMAP: %s", strerror(errno)), -1);
		if (!fm->fm_mapped_extents)
			return msg("FIEMAP: no extent at file byte %llu", (unsigned long long)pos), -1;
		for (unsigned i = 0; i < fm->fm_mapped_extents && pos < bytes; i++) {
			struct fiemap_extent *x = &fm->fm_extents[i];
			if (x->fe_logical > pos || (x->fe_flags & (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_ENCODED |
								   FIEMAP_EXTENT_NOT_ALIGNED | FIEMAP_EXTENT_UNWRITTEN)))
				return msg("FIEMAP: file byte %llu has no plain extent", (unsigned long long)pos), -1;
			uint64_t xend = x->fe_logical + x->fe_length;
			while (pos < xend && pos < bytes) {
				while (k < d->extents_count && ho_extent_get(t, d, k, &e) == 0 &&
				       ((uint64_t)e.file_sector + e.sectors) * 512 <= pos)
					k++;
				if (k >= d->extents_count || (uint64_t)e.file_sector * 512 > pos)
					return msg("the table has no extent for file byte %llu", (unsigned long long)pos), -1;
				uint64_t tend = ((uint64_t)e.file_sector + e.sectors) * 512, end = tend < xend ? tend : xend;
				uint64_t want = e.lba * 512 + (pos - (uint64_t)e.file_sector * 512);
				if (x->fe_physical + (pos - x->fe_logical) != want)
					return msg("file byte %llu is at partition byte %llu, the table says %llu",
						   (unsigned long long)pos, (unsigned long long)(x->fe_physical + pos - x->fe_logical),
						   (unsigned long long)want), -1;
				pos = end;
			}
		}
	}
	return 0;
}

/* Load the dm-linear table for virtual sectors [vs, vs+len) of the image into io (targets over host dev_t). */
static int dm_table(struct dm_ioctl *io, const uint8_t *t, const struct ho_drive *d, dev_t host, uint64_t vs, uint64_t len)
{
	uint8_t *p = (uint8_t *)io + sizeof(*io), *end = (uint8_t *)io + DM_BUF;
	uint32_t n = 0;
	struct ho_extent e;
	for (unsigned k = 0; k < d->extents_count && ho_extent_get(t, d, k, &e) == 0; k++) {
		uint64_t fs = e.file_sector, fe = fs + e.sectors, a = fs > vs ? fs : vs, b = fe < vs + len ? fe : vs + len;
		if (a >= b)
			continue;
		struct dm_target_spec *sp = (void *)p;
		char *params = (char *)(sp + 1);
		if ((uint8_t *)params + 64 > end)
			return -1;
		memset(sp, 0, sizeof(*sp));
		sp->sector_start = a - vs, sp->length = b - a;
		snprintf(sp->target_type, sizeof(sp->target_type), "linear");
		int m = snprintf(params, 64, "%u:%u %llu", major(host), minor(host), (unsigned long long)(e.lba + (a - fs)));
		uint32_t sz = (uint32_t)((sizeof(*sp) + (size_t)m + 1 + 7) & ~(size_t)7);
		sp->next = sz;
		p += sz;
		n++;
	}
	io->target_count = n;
	io->data_size = (uint32_t)(p - (uint8_t *)io);
	return n ? 0 : -1;
}

/* Load the table prepared in io (a buffer of size bytes) into dm device name (dev), resume it and make its
 * /dev/mapper node; 0, or -1 (message) with the device removed. */
static int dm_go_live(int ctl, struct dm_ioctl *io, size_t size, const char *name, dev_t dev, int ro)
{
	if (dm_call(ctl, DM_TABLE_LOAD, io, name, ro ? DM_READONLY_FLAG : 0)) {
		msg("DM_TABLE_LOAD %s: %s", name, strerror(errno));
		goto undo;
	}
	memset(io, 0, size);
	if (dm_call(ctl, DM_DEV_SUSPEND, io, name, 0)) {   /* no DM_SUSPEND_FLAG: resume, the table goes live */
		msg("DM resume %s: %s", name, strerror(errno));
		goto undo;
	}
	char node[160];
	mkdir("/dev/mapper", 0755);
	snprintf(node, sizeof(node), "/dev/mapper/%s", name);
	if (mknod(node, S_IFBLK | 0600, makedev(major(dev), minor(dev))) && errno != EEXIST)
		msg("%s: %s (the device is /dev/dm-%u)", node, strerror(errno), minor(dev));
	return 0;
undo:
	memset(io, 0, size);
	dm_call(ctl, DM_DEV_REMOVE, io, name, 0);
	return -1;
}

/* Create dm device name over [vs, vs+len) and its /dev/mapper node; 0 or -1 (message). */
static int dm_make(int ctl, const char *name, const uint8_t *t, const struct ho_drive *d, dev_t host, uint64_t vs,
		   uint64_t len, int ro)
{
	static uint64_t buf[DM_BUF / 8];
	struct dm_ioctl *io = (void *)buf;
	memset(buf, 0, sizeof(buf));
	if (dm_call(ctl, DM_DEV_CREATE, io, name, 0))
		return msg("DM_DEV_CREATE %s: %s", name, strerror(errno)), -1;
	dev_t dev = (dev_t)io->dev;
	memset(buf, 0, sizeof(buf));
	if (dm_table(io, t, d, host, vs, len)) {
		msg("device-mapper table for %s not built (no extent, or more than fit in %d bytes)", name, DM_BUF);
		memset(buf, 0, sizeof(buf));
		dm_call(ctl, DM_DEV_REMOVE, io, name, 0);
		return -1;
	}
	return dm_go_live(ctl, io, sizeof(buf), name, dev, ro);
}

/* Remove dm device name (and its node); 0 or -1 with errno. */
static int dm_remove(int ctl, const char *name)
{
	static uint64_t buf[sizeof(struct dm_ioctl) / 8 + 1];
	struct dm_ioctl *io = (void *)buf;
	memset(buf, 0, sizeof(buf));
	int r = dm_call(ctl, DM_DEV_REMOVE, io, name, 0);
	int e = errno;
	char node[160];
	snprintf(node, sizeof(node), "/dev/mapper/%s", name);
	if (!r)
		unlink(node);
	errno = e;
	return r;
}

/* Open /dev/mapper/control (made from sysfs's misc dev when devtmpfs lacks it); fd or -1. */
static int dm_control(void)
{
	int fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	char b[32];
	unsigned ma, mi;
	if (read_sys("/sys/class/misc/device-mapper/dev", b, sizeof(b)) || sscanf(b, "%u:%u", &ma, &mi) != 2)
		return -1;
	mkdir("/dev/mapper", 0755);
	if (mknod("/dev/mapper/control", S_IFCHR | 0600, makedev(ma, mi)) && errno != EEXIST)
		return -1;
	return open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
}

/*
 * Can drive d take the dm-linear path? A fixed leaf with no parent in a
 * file whose extents the table holds completely, covering the virtual disk
 * from file sector 0 in order. NULL yes, else the reason.
 */
static const char *dm_unsuitable(const uint8_t *t, const struct ho_drive *d)
{
	if (d->image_type != HO_TYPE_FIXED || d->chain_len != 1)
		return "not a fixed image";
	if (d->place != HO_PLACE_FILE)
		return "not a file on a file system";
	if ((d->flags & HO_DF_EXT_PARTIAL) || !d->extents_count)
		return "the table holds only part of the file's extents";
	uint64_t next = 0;
	struct ho_extent e;
	for (unsigned k = 0; k < d->extents_count; k++) {
		if (ho_extent_get(t, d, k, &e) || e.file_sector != next || !e.sectors)
			return "the table's extents are not in file order";
		next += e.sectors;
	}
	if (next < d->virt_sectors)
		return "the table's extents end before the virtual disk does";
	return NULL;
}

/*
 * Serve drive d through dm-linear: check the extents (FIEMAP on fd, the
 * leaf on the mounted host fs), unmount the host fs, map the whole disk and
 * each partition of its MBR/GPT. 0 done (the device name printed), 1 not
 * possible here (message; the caller serves through NBD), -1 failed after
 * the host fs went away (message).
 */
static int dm_attach(const uint8_t *t, const struct ho_drive *d, struct chain *ch, const char *host_part, const char *mnt,
		     int *mnt_fd, int ro)
{
	int fd = ch->m[0]->hd.fd;
	if (dm_check_fiemap(fd, t, d, d->virt_sectors * 512)) {
		msg("device-mapper path not taken: the file's extents could not be confirmed");
		return 1;
	}
	int ctl = dm_control();
	if (ctl < 0) {
		msg("device-mapper path not taken: no /dev/mapper/control (is dm_mod loaded?)");
		return 1;
	}
	struct stat st;
	if (stat(host_part, &st) || !S_ISBLK(st.st_mode)) {
		msg("%s: not a block device", host_part);
		close(ctl);
		return 1;
	}
	/* The partitions inside the virtual disk, read through vhd/ while the file is open. */
	struct { uint32_t index; uint64_t start, sectors; } parts[16];
	int np = 0;
	static struct part_iter it;
	struct blk_dev vd = ch->m[0]->hd.dev;
	vd.sectors = vd.max_sectors = d->virt_sectors, vd.size_bytes = d->virt_sectors * 512, vd.write = NULL;
	if (part_open(&it, &vd) == PART_OK) {
		struct part_info pi;
		int r;
		while (np < 16 && ((r = part_next(&it, &pi)) == PART_OK))
			if (pi.start + pi.sectors <= d->virt_sectors && pi.sectors)
				parts[np].index = pi.index, parts[np].start = pi.start, parts[np++].sectors = pi.sectors;
	}
	chain_close(ch);            /* nothing of the host fs stays open */
	unmount_host(mnt, *mnt_fd);
	if (*mnt_fd >= 0)
		close(*mnt_fd), *mnt_fd = -1;
	char name[64], pname[80];
	snprintf(name, sizeof(name), DM_NAME_FMT, d->bios_drive);
	if (dm_make(ctl, name, t, d, st.st_rdev, 0, d->virt_sectors, ro)) {
		close(ctl);
		return -1;
	}
	for (int i = 0; i < np; i++) {
		snprintf(pname, sizeof(pname), "%sp%u", name, parts[i].index);
		if (dm_make(ctl, pname, t, d, st.st_rdev, parts[i].start, parts[i].sectors, ro))
			msg("partition %u is not mapped", parts[i].index);
	}
	close(ctl);
	msg("serving %s's file as /dev/mapper/%s through device-mapper (dm-linear, no daemon; %d partition(s)); %s",
	    host_part, name, np, ro ? "read-only" : "read-write");
	printf("/dev/mapper/%s\n", name);
	fflush(stdout);
	return 0;
}

static int do_disconnect(const char *dev);

/* -D for a dm device this program made (a fixed image's maps, or a hybrid: then its NBD server disconnected too): remove its partitions' maps, then its own. */
static int dm_detach(const char *dev)
{
	const char *name = strrchr(dev, '/') ? strrchr(dev, '/') + 1 : dev;
	int ctl = dm_control();
	if (ctl < 0) {
		msg("%s: no /dev/mapper/control", dev);
		return EXIT_FAIL;
	}
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);                /* the host disk's cache flushed through the map */
		close(fd);
	}
	/* A hybrid's table also maps onto an NBD device: after the maps, its server is disconnected too. */
	static uint64_t dbuf[512];
	struct dm_ioctl *io = (void *)dbuf;
	memset(dbuf, 0, sizeof(dbuf));
	io->data_size = sizeof(dbuf);
	char nbdpath[320] = "";
	if (dm_call(ctl, DM_TABLE_DEPS, io, name, 0) == 0) {
		struct dm_target_deps *dp = (void *)((uint8_t *)io + io->data_start);
		for (uint32_t i = 0; i < dp->count && (uint8_t *)&dp->dev[i + 1] <= (uint8_t *)dbuf + sizeof(dbuf); i++) {
			char sl[64], tgt[300];
			snprintf(sl, sizeof(sl), "/sys/dev/block/%u:%u", major((dev_t)dp->dev[i]), minor((dev_t)dp->dev[i]));
			ssize_t l = readlink(sl, tgt, sizeof(tgt) - 1);
			if (l <= 0)
				continue;
			tgt[l] = 0;
			const char *base = strrchr(tgt, '/') ? strrchr(tgt, '/') + 1 : tgt;
			if (!strncmp(base, "nbd", 3))
				snprintf(nbdpath, sizeof(nbdpath), "/dev/%s", base);
		}
	}
	char pname[300];
	for (unsigned i = 1; i <= 128; i++) {
		snprintf(pname, sizeof(pname), "%sp%u", name, i);
		if (dm_remove(ctl, pname) && errno != ENXIO)
			msg("removing %s: %s", pname, strerror(errno));
	}
	int rc = dm_remove(ctl, name);
	if (rc)
		msg("removing %s: %s", name, strerror(errno));
	close(ctl);
	if (nbdpath[0])
		return do_disconnect(nbdpath) || rc ? EXIT_FAIL : 0;   /* the server flushes, unmounts the host, exits */
	return rc ? EXIT_FAIL : 0;
}

/* ---------------------------------------------------------------- device-mapper hybrid (dynamic and differencing VHDs) */

/*
 * A dynamic or differencing VHD through NBD costs the guest a round trip
 * and copies per request. Its plain blocks (allocated, every bitmap bit
 * set: the file's bytes are the virtual disk's bytes) need no daemon, so
 * the device the guest uses is a dm table: each plain block's data run
 * linear onto the host partition at the file's sectors (FIBMAP per
 * cluster), every other range (unallocated, partly written, a parent's)
 * linear onto the NBD device at the same offset, where the daemon still
 * serves the whole virtual disk correctly. The host file system stays
 * mounted read-write (the file grows) through a dm device over the whole
 * partition ("vhdboot80host"): a mount claims its device exclusively, but
 * every dm table shares one claim, so the image's table may map onto the
 * partition too. After the daemon allocates blocks, the reloader thread
 * suspends the hybrid device (in-flight requests to nbd finish: the daemon
 * is another thread), fsyncs the file, maps the new plain blocks, drops
 * their page cache (the guest now writes behind it) and loads the new
 * table. Only ever plain blocks are linear: a block never stops being
 * plain while served (no discard, bitmaps only gain bits).
 */
#define HYB_HOST_FMT "vhdboot%02xhost"

/* Create dm device name: one linear target over under from sector off, len sectors; its node in /dev/mapper. 0 or -1 (message). */
static int dm_linear_dev(int ctl, const char *name, dev_t under, uint64_t off, uint64_t len, int ro, dev_t *out)
{
	static uint64_t buf[1024];
	struct dm_ioctl *io = (void *)buf;
	memset(buf, 0, sizeof(buf));
	if (dm_call(ctl, DM_DEV_CREATE, io, name, 0))
		return msg("DM_DEV_CREATE %s: %s", name, strerror(errno)), -1;
	dev_t dev = (dev_t)io->dev;
	memset(buf, 0, sizeof(buf));
	struct dm_target_spec *sp = (void *)(io + 1);
	char *params = (char *)(sp + 1);
	sp->sector_start = 0, sp->length = len;
	snprintf(sp->target_type, sizeof(sp->target_type), "linear");
	int m = snprintf(params, 64, "%u:%u %llu", major(under), minor(under), (unsigned long long)off);
	sp->next = (uint32_t)((sizeof(*sp) + (size_t)m + 1 + 7) & ~(size_t)7);
	io->target_count = 1;
	io->data_size = (uint32_t)(sizeof(*io) + sp->next);
	if (dm_go_live(ctl, io, sizeof(buf), name, dev, ro))
		return -1;
	if (out)
		*out = dev;
	return 0;
}

/* Append partition run [v, v+n) -> p to hy's segments (merged with the last one when contiguous). 0 or -1 (no memory). */
static int hyb_add(struct hyb *hy, uint64_t v, uint64_t n, uint64_t p)
{
	if (hy->nseg && hy->seg[hy->nseg - 1].v + hy->seg[hy->nseg - 1].n == v && hy->seg[hy->nseg - 1].p + hy->seg[hy->nseg - 1].n == p) {
		hy->seg[hy->nseg - 1].n += n;
		return 0;
	}
	if (hy->nseg == hy->cap) {
		size_t c = hy->cap ? hy->cap * 2 : 256;
		struct hseg *g = realloc(hy->seg, c * sizeof(*g));
		if (!g)
			return -1;
		hy->seg = g, hy->cap = c;
	}
	hy->seg[hy->nseg++] = (struct hseg){v, n, p};
	return 0;
}

/*
 * Map plain block b (block_full said so) into hy's segments: its data run,
 * cluster by cluster through FIBMAP on the leaf file. 0 mapped; -1 not (a
 * hole or an error: the block stays on nbd, nothing added). Caller holds mu.
 */
static int hyb_map_block(struct srv *S, struct hyb *hy, uint32_t b)
{
	struct vhd *v = S->v;
	uint64_t f0 = (uint64_t)v->bat[b] + v->bitmap_sectors, vb = (uint64_t)b << v->spb_shift, n = v->spb;
	if (vb >= S->sectors)
		return -1;
	if (vb + n > S->sectors)
		n = S->sectors - vb;
	size_t keep = hy->nseg;
	uint64_t at = 0;
	while (at < n) {
		uint64_t fs = f0 + at, cstart = fs - fs % hy->csec, cn = cstart + hy->csec - fs;
		if (cn > n - at)
			cn = n - at;
		int blk = (int)(cstart / hy->per);
		if (ioctl(S->fd, FIBMAP, &blk) || blk <= 0) {
			hy->nseg = keep;
			return -1;
		}
		uint64_t p = (uint64_t)(unsigned)blk * hy->per + (fs - cstart);
		if (hyb_add(hy, vb + at, cn, p)) {
			hy->nseg = keep;
			return -1;
		}
		at += cn;
	}
	return 0;
}

/* Sort segments by virtual sector. */
static int hyb_cmp(const void *a, const void *b)
{
	const struct hseg *x = a, *y = b;
	return x->v < y->v ? -1 : x->v > y->v;
}

/*
 * Build hy's table (segments linear onto the partition, the gaps onto nbd
 * at the same offset) as a DM_TABLE_LOAD request; NULL (no memory). Caller
 * holds mu; the load itself runs without it (opening nbd may read from it).
 */
static struct dm_ioctl *hyb_table(struct hyb *hy, uint64_t sectors)
{
	qsort(hy->seg, hy->nseg, sizeof(*hy->seg), hyb_cmp);
	size_t bytes = sizeof(struct dm_ioctl) + (2 * hy->nseg + 1) * (sizeof(struct dm_target_spec) + 48);
	uint64_t *buf = calloc(1, bytes + 8);
	if (!buf)
		return NULL;
	struct dm_ioctl *io = (void *)buf;
	uint8_t *p = (uint8_t *)(io + 1);
	uint32_t n = 0;
	uint64_t pos = 0;
	for (size_t i = 0; i <= hy->nseg && pos < sectors; i++) {
		uint64_t lo = i < hy->nseg ? hy->seg[i].v : sectors;
		for (int part = 0; part < 2; part++) {
			uint64_t start = part ? lo : pos, len = part ? (i < hy->nseg ? hy->seg[i].n : 0) : lo - pos;
			if (!len)
				continue;
			dev_t to = part ? hy->part : hy->nbd;
			uint64_t off = part ? hy->seg[i].p : start;
			struct dm_target_spec *sp = (void *)p;
			char *params = (char *)(sp + 1);
			sp->sector_start = start, sp->length = len;
			snprintf(sp->target_type, sizeof(sp->target_type), "linear");
			int m = snprintf(params, 48, "%u:%u %llu", major(to), minor(to), (unsigned long long)off);
			sp->next = (uint32_t)((sizeof(*sp) + (size_t)m + 1 + 7) & ~(size_t)7);
			p += sp->next;
			n++;
		}
		if (i < hy->nseg)
			pos = hy->seg[i].v + hy->seg[i].n;
	}
	io->target_count = n;
	io->data_size = (uint32_t)(p - (uint8_t *)io);
	return io;
}

/* Load a table hyb_table built into name's inactive slot and free it. 0 or -1 (errno). */
static int hyb_load(int ctl, struct hyb *hy, struct dm_ioctl *io)
{
	if (!io)
		return errno = ENOMEM, -1;
	int r = dm_call(ctl, DM_TABLE_LOAD, io, hy->name, hy->ro ? DM_READONLY_FLAG : 0);
	int e = errno;
	free(io);
	errno = e;
	return r;
}

/* Suspend (suspend=1, in-flight requests finished first) or resume name. 0 or -1 (errno). */
static int hyb_suspend(int ctl, const char *name, int suspend)
{
	uint64_t buf[sizeof(struct dm_ioctl) / 8 + 1];
	struct dm_ioctl *io = (void *)buf;
	memset(buf, 0, sizeof(buf));
	return dm_call(ctl, DM_DEV_SUSPEND, io, name, suspend ? DM_SUSPEND_FLAG | DM_SKIP_LOCKFS_FLAG : 0);
}

/* Map every plain block not mapped yet (after an fsync, their page cache dropped). The number mapped. Caller holds mu. */
static uint32_t hyb_collect(struct srv *S, struct hyb *hy)
{
	struct vhd *v = S->v;
	uint32_t got = 0;
	int synced = 0;
	for (uint32_t b = 0; b < v->blocks; b++) {
		if (hy->lin[b] || v->bat[b] == VHD_BAT_FREE || !block_full(S, b))
			continue;
		if (!synced) {
			if (fsync(S->fd)) {       /* the data and the FAT on disk before anything reads them past the file system */
				msg("hybrid: fsync: %s; no new linear blocks", strerror(errno));
				return 0;
			}
			synced = 1;
		}
		if (hyb_map_block(S, hy, b))
			continue;
		hy->lin[b] = 1;
		got++;
		/* The guest now reads and writes these sectors past the page cache: drop it (clean after the fsync). */
		posix_fadvise(S->fd, (off_t)((uint64_t)v->bat[b] + v->bitmap_sectors) * 512, (off_t)v->spb * 512, POSIX_FADV_DONTNEED);
	}
	hy->blocks += got;
	return got;
}

/* The reloader: waits for hyb_kick, then suspend, map the new plain blocks, load, resume. Runs until hy->stop. */
static void *hyb_thread(void *arg)
{
	struct srv *S = arg;
	struct hyb *hy = S->hy;
	int ctl = dm_control();
	if (ctl < 0) {
		msg("hybrid: no /dev/mapper/control: no more reloads");
		return NULL;
	}
	pthread_mutex_lock(&hy->mu);
	for (;;) {
		while (!hy->want && !hy->stop)
			pthread_cond_wait(&hy->cv, &hy->mu);
		if (hy->stop || hy->broken)
			break;
		hy->want = 0;
		/* Anything to map? (Checked first: a suspend per commit of a partly written block would be wasted.) */
		int any = 0;
		for (uint32_t b = 0; b < S->v->blocks && !any; b++)
			any = !hy->lin[b] && S->v->bat[b] != VHD_BAT_FREE && block_full(S, b);
		if (!any)
			continue;
		pthread_mutex_unlock(&hy->mu);
		/* Never holding mu here: the suspend waits for requests only the request loop can answer. */
		if (hyb_suspend(ctl, hy->name, 1)) {
			msg("hybrid: suspending %s: %s; no more reloads", hy->name, strerror(errno));
			pthread_mutex_lock(&hy->mu);
			hy->broken = 1;
			break;
		}
		pthread_mutex_lock(&hy->mu);
		uint32_t got = hy->stop ? 0 : hyb_collect(S, hy);
		struct dm_ioctl *tab = got ? hyb_table(hy, S->sectors) : NULL;
		pthread_mutex_unlock(&hy->mu);
		int r = got ? hyb_load(ctl, hy, tab) : 0;
		if (r) {
			msg("hybrid: loading %s's table: %s; its live table stays, no more reloads", hy->name, strerror(errno));
			pthread_mutex_lock(&hy->mu);
			hy->broken = 1;
			pthread_mutex_unlock(&hy->mu);
		}
		if (hyb_suspend(ctl, hy->name, 0))
			msg("hybrid: resuming %s: %s", hy->name, strerror(errno));
		pthread_mutex_lock(&hy->mu);
		if (got && !r)
			hy->reloads++;
	}
	pthread_mutex_unlock(&hy->mu);
	close(ctl);
	return NULL;
}

/* Read count sectors of the virtual disk for part_open (the image behind hyb_part_dev). */
static struct vhd *hyb_part_vhd;
static int hyb_part_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	(void)d;
	return vhd_read(hyb_part_vhd, lba, count, buf);
}

/* Remove the hybrid's maps: partitions, then the whole disk. */
static void hyb_remove(int ctl, const char *name)
{
	char pname[80];
	for (unsigned i = 1; i <= 128; i++) {
		snprintf(pname, sizeof(pname), "%sp%u", name, i);
		dm_remove(ctl, pname);
	}
	dm_remove(ctl, name);
}

/*
 * Make the hybrid over the running NBD device: the first table from the
 * plain blocks there are now, the whole disk as hy->name and each
 * partition of its MBR/GPT as <name>pN (linear over the whole disk's map,
 * so a reload of that one table serves them all), then start the
 * reloader. 0 up; -1 not (message; whatever was made is removed, NBD serves
 * alone).
 */
static int hyb_setup(struct srv *S, struct hyb *hy)
{
	int ctl = dm_control();
	if (ctl < 0)
		return msg("device-mapper hybrid not set up: no /dev/mapper/control"), -1;
	pthread_mutex_lock(&hy->mu);
	hy->lin = calloc(S->v->blocks ? S->v->blocks : 1, 1);
	int fbs = 0;
	if (!hy->lin || ioctl(S->fd, FIGETBSZ, &fbs) || fbs < 512 || fbs % 512) {
		pthread_mutex_unlock(&hy->mu);
		close(ctl);
		return msg("device-mapper hybrid not set up: %s", hy->lin ? "FIGETBSZ failed" : "no memory"), -1;
	}
	hy->per = (uint32_t)fbs / 512;
	if (hy->csec < hy->per || hy->csec % hy->per)
		hy->csec = hy->per;
	hyb_collect(S, hy);
	struct { uint32_t index; uint64_t start, sectors; } parts[16];
	int np = 0;
	static struct part_iter it;
	struct blk_dev vd;
	memset(&vd, 0, sizeof(vd));
	hyb_part_vhd = S->v;
	vd.name = "image", vd.sectors = vd.max_sectors = S->sectors, vd.size_bytes = S->sectors * 512, vd.read = hyb_part_read;
	if (part_open(&it, &vd) == PART_OK) {
		struct part_info pi;
		while (np < 16 && part_next(&it, &pi) == PART_OK)
			if (pi.start + pi.sectors <= S->sectors && pi.sectors)
				parts[np].index = pi.index, parts[np].start = pi.start, parts[np++].sectors = pi.sectors;
	}
	static uint64_t buf[sizeof(struct dm_ioctl) / 8 + 1];
	struct dm_ioctl *io = (void *)buf;
	memset(buf, 0, sizeof(buf));
	int ok = dm_call(ctl, DM_DEV_CREATE, io, hy->name, 0) == 0, made = ok;
	if (!ok)
		msg("device-mapper hybrid not set up: DM_DEV_CREATE %s: %s", hy->name, strerror(errno));
	hy->dev = (dev_t)io->dev;
	struct dm_ioctl *tab = ok ? hyb_table(hy, S->sectors) : NULL;
	pthread_mutex_unlock(&hy->mu);
	if (ok && hyb_load(ctl, hy, tab))
		ok = 0, msg("device-mapper hybrid not set up: DM_TABLE_LOAD %s: %s", hy->name, strerror(errno));
	if (ok && hyb_suspend(ctl, hy->name, 0))
		ok = 0, msg("device-mapper hybrid not set up: resuming %s: %s", hy->name, strerror(errno));
	char node[160], pname[80];
	if (ok) {
		mkdir("/dev/mapper", 0755);
		snprintf(node, sizeof(node), "/dev/mapper/%s", hy->name);
		if (mknod(node, S_IFBLK | 0600, hy->dev) && errno != EEXIST)
			msg("%s: %s (the device is /dev/dm-%u)", node, strerror(errno), minor(hy->dev));
	}
	for (int i = 0; ok && i < np; i++) {
		snprintf(pname, sizeof(pname), "%sp%u", hy->name, parts[i].index);
		if (dm_linear_dev(ctl, pname, hy->dev, parts[i].start, parts[i].sectors, hy->ro, NULL))
			ok = 0;
	}
	if (ok && pthread_create(&hy->th, NULL, hyb_thread, S))
		ok = 0, msg("device-mapper hybrid not set up: no reloader thread");
	if (!ok) {
		if (made)                 /* never a device of that name someone else made */
			hyb_remove(ctl, hy->name);
		close(ctl);
		free(hy->lin);
		hy->lin = NULL;
		return -1;
	}
	pthread_mutex_lock(&hy->mu);
	hy->on = 1;
	pthread_mutex_unlock(&hy->mu);
	close(ctl);
	msg("serving the image as /dev/mapper/%s through a device-mapper hybrid: %lu plain block(s) linear on the host partition (%zu run(s)), the rest through %u:%u (NBD); %d partition(s); %s",
	    hy->name, hy->blocks, hy->nseg, major(hy->nbd), minor(hy->nbd), np, hy->ro ? "read-only" : "read-write");
	return 0;
}

/* The server is ending: stop the reloader (the caller closed the socket first, so a pending suspend completes). */
static void hyb_stop(struct hyb *hy)
{
	if (!hy->on)
		return;
	pthread_mutex_lock(&hy->mu);
	hy->stop = 1;
	pthread_cond_signal(&hy->cv);
	pthread_mutex_unlock(&hy->mu);
	pthread_join(hy->th, NULL);
	msg("hybrid: %lu block(s) made linear, %lu table reload(s)%s", hy->blocks, hy->reloads,
	    hy->broken ? " (reloads stopped by an error)" : "");
}

/* What the hybrid's setup thread needs: the server, the helper's pipe, the parent's. */
struct hyb_start {
	struct srv *S;
	int up, ready;
};

/* Thread: wait for the helper (NBD up), set the hybrid up over it, tell the parent which device to name ('h' or 'y'). */
static void *hyb_start(void *arg)
{
	struct hyb_start *hs = arg;
	char ok = 'n';
	if (read(hs->up, &ok, 1) != 1)
		ok = 'n';
	close(hs->up);
	if (ok == 'y') {
		if (hyb_setup(hs->S, hs->S->hy) == 0)
			ok = 'h';
		else
			msg("serving through NBD only");
	}
	if (write(hs->ready, &ok, 1) != 1)
		msg("the parent went away");
	close(hs->ready);
	return NULL;
}

/* Remove the map the host file system was mounted from (after its unmount), if there is one. */
static void hyb_drop_host(const char *hostdm)
{
	if (!hostdm[0])
		return;
	int ctl = dm_control();
	if (ctl < 0)
		return;
	int r = -1;
	for (int tries = 0; tries < 20 && (r = dm_remove(ctl, hostdm)) && errno == EBUSY; tries++)
		nap(100);                 /* a probe (udev's blkid) may hold it a moment */
	if (r && errno != ENXIO)
		msg("removing %s: %s", hostdm, strerror(errno));
	close(ctl);
}

/* -D: disconnect a device this program serves (the daemon flushes and exits). */
static int do_disconnect(const char *dev)
{
	int fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		msg("%s: %s", dev, strerror(errno));
		return EXIT_FAIL;
	}
	int rc = ioctl(fd, NBD_DISCONNECT);
	close(fd);
	if (rc) {
		msg("%s: NBD_DISCONNECT: %s", dev, strerror(errno));
		return EXIT_FAIL;
	}
	return 0;
}

/* The server's state for image im on its leaf file fd (buffers; a VHD's fast paths: pipe, block caches); 0 or -1 (no memory). */
static int srv_init(struct srv *S, const struct img *im, int fd, int img_ro)
{
	struct vhd *v = im->v;
	S->im = *im;
	S->v = v, S->sectors = v ? v->sectors : vxc_leaf(im->vx)->sectors, S->fd = fd;
	S->pipe[0] = S->pipe[1] = -1;
	if (!v) {                     /* a VHDX: no fast paths, every request through vhdx/ */
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		return posix_memalign((void **)&S->buf, 4096, MAX_IO) ? -1 : 0;
	}
	if (pipe2(S->pipe, O_CLOEXEC) == 0)
		fcntl(S->pipe[1], F_SETPIPE_SZ, (int)MAX_IO);   /* fewer splice rounds; a smaller pipe only costs more */
	else
		S->pipe[0] = S->pipe[1] = -1;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (posix_memalign((void **)&S->buf, 4096, MAX_IO))
		return -1;
	if (v->footer.type != VHD_TYPE_FIXED) {
		S->full = calloc(v->blocks ? v->blocks : 1, 1);
		S->bm = malloc((size_t)v->bitmap_sectors * 512);
		if (!S->bm) {
			free(S->full);
			S->full = NULL;        /* no fast paths for this image: the library serves everything */
		}
		if (!img_ro && posix_memalign((void **)&S->pend, 4096, PEND_MAX))
			S->pend = NULL;    /* no write-back gathering: every write goes straight to the library */
	}
	return 0;
}

static void srv_free(struct srv *S)
{
	free(S->buf);
	free(S->pend);
	free(S->full);
	free(S->bm);
	if (S->pipe[0] >= 0)
		close(S->pipe[0]), close(S->pipe[1]);
}

/* Does the file at path start with the VHDX file identifier? */
static int is_vhdx_file(const char *path)
{
	char sig[8];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int yes = fd >= 0 && read(fd, sig, sizeof(sig)) == (ssize_t)sizeof(sig) && !memcmp(sig, "vhdxfile", 8);
	if (fd >= 0)
		close(fd);
	return yes;
}

/* Chains behind struct img: one of each (static: large, and one image is served per process). */
static struct chain img_ch;
static struct vxchain img_vx;

/*
 * Open path (a VHDX when vhdx, else a VHD) with its parents, the leaf
 * read-only with rdonly (a VHDX's pending log then replayed in memory only).
 * Fills *im; 0, or -1 with a message (call img_close in every case).
 */
static int img_open(struct img *im, const char *path, int vhdx, int rdonly)
{
	memset(im, 0, sizeof(*im));
	memset(&img_ch, 0, sizeof(img_ch));
	memset(&img_vx, 0, sizeof(img_vx));
	if (vhdx) {
		int e = vxc_open(&img_vx, path, rdonly ? VXC_RDONLY : 0);
		im->vx = &img_vx;
		if (e)
			return msg("%s: %s", path, img_vx.err_msg[0] ? img_vx.err_msg : vhdx_strerror(e)), -1;
		return 0;
	}
	int e = chain_open(&img_ch, path, rdonly ? CHAIN_RDONLY : 0);
	if (e)
		return msg("%s: %s", path, img_ch.err[0] ? img_ch.err : vhd_strerror(e)), -1;
	im->v = chain_leaf(&img_ch);
	return 0;
}

/* The leaf's descriptor, size, chain length, and member k's file (for fsync). */
static int img_fd(const struct img *im)
{
	return im->vx ? im->vx->m[0]->hd.fd : img_ch.m[0]->hd.fd;
}

static uint64_t img_sectors(const struct img *im)
{
	return im->vx ? vxc_leaf(im->vx)->sectors : im->v->sectors;
}

static int img_chain_len(const struct img *im)
{
	return im->vx ? im->vx->n : img_ch.n;
}

/*
 * Flush, end a VHDX's session (its log marked empty: vhdx_close) unless
 * read-only, fsync every member and close the chain. 0, or the flush's /
 * close's error (logged).
 */
static int img_close(struct img *im, int rdonly)
{
	int e = 0;
	if (im->vx) {
		if (im->vx->n && !rdonly && (e = vhdx_close(vxc_leaf(im->vx))))
			msg("closing the VHDX: %s", vhdx_strerror(e));
		for (int i = 0; i < im->vx->n; i++)
			if (hostdev_sync(&im->vx->m[i]->hd) && !rdonly)
				msg("%s: fsync: %s", im->vx->m[i]->path, strerror(errno));
		vxc_close(im->vx);
	} else {
		if (im->v && !rdonly && (e = vhd_flush(im->v)))
			msg("final flush failed: %s", vhd_strerror(e));
		for (int i = 0; i < img_ch.n; i++)
			if (hostdev_sync(&img_ch.m[i]->hd) && !rdonly)
				msg("%s: fsync: %s", img_ch.m[i]->path, strerror(errno));
		chain_close(&img_ch);
	}
	memset(im, 0, sizeof(*im));
	return e;
}

/* --serve-stdin IMAGE: the request loop on fd 0 (a socket) over IMAGE and its chain; no table, no NBD device. */
static int serve_stdin(const struct opts *o)
{
	static struct snap sn;
	const char *path = o->serve_file;
	int ro = o->read_only, snap = o->overlay != NULL;
	struct img im;
	if (img_open(&im, path, is_vhdx_file(path), ro || snap)) {
		img_close(&im, 1);
		return EXIT_FAIL;
	}
	struct srv S;
	memset(&S, 0, sizeof(S));
	S.s = 0, S.nbd = -1, S.ro = ro, S.no_grow = o->no_grow;
	if (snap) {               /* the overlay as the table would give it: PHYS:BYTES in --mem */
		struct ho_drive d;
		memset(&d, 0, sizeof(d));
		d.bios_drive = 0x80;
		unsigned long long phys = 0, bytes = 0;
		if (sscanf(o->overlay, "%llx:%llu", &phys, &bytes) != 2) {
			msg("--overlay %s: not PHYS:BYTES (hex address, decimal size)", o->overlay);
			img_close(&im, 1);
			return EXIT_FAIL;
		}
		d.overlay_phys = phys, d.overlay_bytes = bytes;
		if (snap_load(&sn, o->mem, &d, img_sectors(&im))) {
			img_close(&im, 1);
			return EXIT_FAIL;
		}
		msg("mode=snapshot: %llu sector(s) the boot loader wrote carried over", (unsigned long long)sn.stored);
		S.snap = &sn;
	}
	signal(SIGPIPE, SIG_IGN);
	int rc = srv_init(&S, &im, img_fd(&im), ro || snap) ? -1 : serve(&S);
	msg("requests: %lu spliced reads, %lu spliced writes, %lu gathered allocating writes, %lu through the library, "
	    "%lu refused (no growth)", S.spliced, S.spliced_in, S.gathered, S.library, S.refused);
	srv_free(&S);
	int e = img_close(&im, ro || snap);
	return rc || e ? EXIT_FAIL : 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: vhdboot-attach [options]        serve the VHD vhdboot booted as /dev/nbd0\n"
		"       vhdboot-attach --info           print vhdboot's hand-over table\n"
		"       vhdboot-attach -D /dev/nbdN     disconnect (the server flushes and exits)\n"
		"  -d, --device DEV     NBD device (default /dev/nbd0)\n"
		"  -r, --drive NN       BIOS drive in hex (default 80)\n"
		"  -w, --wait S         seconds to wait for the disk and the NBD device (default 10)\n"
		"  -m, --mount DIR      where host file systems are mounted (default /run/vhdboot)\n"
		"  -f, --foreground     do not detach\n"
		"      --ro             serve read-only\n"
		"      --nbd            a fixed image through NBD too (default: device-mapper when its extents are known)\n"
		"      --mem FILE       physical memory (default /dev/mem)\n"
		"      --table FILE     a dump of %05x-%05x instead of /dev/mem (tests)\n"
		"      --efivar FILE    vhdboot.efi's variable (default " EFIVAR_DEFAULT ")\n"
		"      --serve-stdin IMG  serve IMG's requests on fd 0, a socket (tests: no table, no device)\n"
		"      --overlay PHYS:BYTES  with --serve-stdin: a mode=snapshot overlay at PHYS in --mem\n"
		"      --no-grow        with --serve-stdin: writes needing a new block fail (EIO), as on an NTFS host\n"
		"exit: 0 attached; 2 no table (not booted by vhdboot); 3 damaged table; 1 other failure\n",
		HO_SCAN_LO, HO_SCAN_HI - 1);
}

/* mkdir -p for a short path. */
static void mkdirs(const char *path)
{
	char p[512];
	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = 0;
			mkdir(p, 0755);
			*s = '/';
		}
	mkdir(p, 0755);
}

int main(int argc, char **argv)
{
	struct opts o = { "/dev/nbd0", "/dev/mem", NULL, EFIVAR_DEFAULT, "/run/vhdboot", 0x80, 10, 0, 0, 0, NULL, 0, NULL, NULL, 0 };
	static const struct option lo[] = {
		{"device", 1, 0, 'd'}, {"drive", 1, 0, 'r'}, {"wait", 1, 0, 'w'}, {"mount", 1, 0, 'm'},
		{"foreground", 0, 0, 'f'}, {"info", 0, 0, 'i'}, {"ro", 0, 0, 'R'}, {"mem", 1, 0, 'M'},
		{"table", 1, 0, 'T'}, {"efivar", 1, 0, 'E'}, {"disconnect", 1, 0, 'D'}, {"nbd", 0, 0, 'N'}, {"serve-stdin", 1, 0, 'S'}, {"overlay", 1, 0, 'O'}, {"no-grow", 0, 0, 'G'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "d:r:w:m:fiD:h", lo, NULL)) != -1) {
		switch (c) {
		case 'd': o.nbd = optarg; break;
		case 'r': o.drive = (unsigned)strtoul(optarg, NULL, 16); break;
		case 'w': o.wait_s = atoi(optarg); break;
		case 'm': o.mount_dir = optarg; break;
		case 'f': o.foreground = 1; break;
		case 'i': o.info = 1; break;
		case 'R': o.read_only = 1; break;
		case 'M': o.mem = optarg; break;
		case 'T': o.table_file = optarg; break;
		case 'E': o.efivar = optarg; break;
		case 'D': o.disconnect = optarg; break;
		case 'N': o.force_nbd = 1; break;
		case 'S': o.serve_file = optarg; break;
		case 'O': o.overlay = optarg; break;
		case 'G': o.no_grow = 1; break;
		case 'h': usage(); return 0;
		default: usage(); return EXIT_FAIL;
		}
	}
	if (o.serve_file)
		return serve_stdin(&o);
	if (o.disconnect)
		return strncmp(o.disconnect, "/dev/mapper/", 12) ? do_disconnect(o.disconnect) : dm_detach(o.disconnect);
	int rc;
	const uint8_t *t = find_table(&o, &rc);
	if (!t)
		return rc;
	if (o.info) {
		print_table(t);
		return 0;
	}
	const struct ho_drive *d = NULL;
	for (unsigned i = 0; i < ((const struct ho_header *)(const void *)t)->ndrives; i++)
		if (ho_drive_get(t, i)->bios_drive == o.drive)
			d = ho_drive_get(t, i);
	if (!d) {
		msg("vhdboot served no drive %02xh", o.drive);
		return EXIT_FAIL;
	}
	/* What this version can serve; the rest is refused with the reason. */
	int snap = d->mode == HO_MODE_SNAPSHOT;   /* the image read-only under a RAM layer that starts with the overlay */
	if (d->place == HO_PLACE_RAM) {
		msg("drive %02xh is a GRUB module in RAM: nothing on a disk to serve; refused", d->bios_drive);
		return EXIT_FAIL;
	}
	if (d->place == HO_PLACE_DISK && d->file_bytes != d->disk_sectors * 512) {
		msg("drive %02xh is a VHD at the start of a larger disk: not served by this version; refused", d->bios_drive);
		return EXIT_FAIL;
	}
	int ro = o.read_only || d->mode == HO_MODE_RO || (d->flags & HO_DF_READ_ONLY);
	int img_ro = ro || snap;                  /* the image file and its host fs */

	char disk[300], part[300], path[4096];
	if (find_disk(t, d, o.wait_s, disk, sizeof(disk)))
		return EXIT_FAIL;
	snprintf(path, sizeof(path), "/dev/%s", disk);
	if (d->part_number) {
		if (find_part(disk, d, o.wait_s, part, sizeof(part)))
			return EXIT_FAIL;
		snprintf(path, sizeof(path), "/dev/%s", part);
	}
	char path_part[4096];
	snprintf(path_part, sizeof(path_part), "%s", path);
	char mnt[600] = "";
	int mnt_fd = -1;
	/*
	 * A dynamic or differencing VHD in a file: the host file system mounted
	 * through a dm map of the whole partition, so the image's hybrid table
	 * (after NBD is up) may map onto the partition as well.
	 */
	static struct hyb hy;
	char hostdm[64] = "";
	const char *why_nohyb = o.force_nbd ? "--nbd" : snap ? "mode=snapshot" : d->format == HO_FMT_VHDX ? "a VHDX" :
				d->place != HO_PLACE_FILE ? "not a file on a file system" : d->fs == HO_FS_NTFS ? "an NTFS host" : NULL;
	if (!why_nohyb && d->image_type != HO_TYPE_FIXED) {
		int ctl = dm_control();
		struct stat pst;
		if (ctl < 0) {
			msg("device-mapper hybrid not set up: no /dev/mapper/control (is dm_mod loaded?); serving through NBD only");
		} else if (stat(path, &pst) || !S_ISBLK(pst.st_mode)) {
			msg("device-mapper hybrid not set up: %s is not a block device; serving through NBD only", path);
		} else {
			snprintf(hostdm, sizeof(hostdm), HYB_HOST_FMT, d->bios_drive);
			if (dm_linear_dev(ctl, hostdm, pst.st_rdev, 0, d->part_sectors, img_ro, NULL)) {
				msg("device-mapper hybrid not set up: no map of the host partition; serving through NBD only");
				hostdm[0] = 0;
			} else {
				hy.part = pst.st_rdev, hy.ro = ro, hy.csec = d->cluster_bytes / 512;
				snprintf(hy.name, sizeof(hy.name), DM_NAME_FMT, d->bios_drive);
				snprintf(path, sizeof(path), "/dev/mapper/%s", hostdm);
			}
		}
		if (ctl >= 0)
			close(ctl);
	}
	if (d->place == HO_PLACE_FILE) {
		snprintf(mnt, sizeof(mnt), "%s/host%02x", o.mount_dir, d->bios_drive);
		mkdirs(mnt);
		if (mount_host(path, mnt, host_fs_of(d), img_ro)) {
			hyb_drop_host(hostdm);
			return EXIT_FAIL;
		}
		mnt_fd = open(mnt, O_PATH | O_DIRECTORY | O_CLOEXEC);   /* switch_root moves /run: unmount through this */
		snprintf(path, sizeof(path), "%s%s", mnt, ho_chain_path(t, d, 0));
	}
	struct img im;
	int vhdx = d->format == HO_FMT_VHDX;
	if (img_open(&im, path, vhdx, img_ro)) {
		img_close(&im, 1);
		if (mnt[0])
			umount(mnt);
		hyb_drop_host(hostdm);
		return EXIT_FAIL;
	}
	uint64_t sectors = img_sectors(&im);
	if (sectors != d->virt_sectors || img_chain_len(&im) != d->chain_len) {
		msg("%s: %llu sectors in a chain of %d, vhdboot served %llu in a chain of %u: not the same image; nothing attached",
		    path, (unsigned long long)sectors, img_chain_len(&im), (unsigned long long)d->virt_sectors, d->chain_len);
		goto fail;
	}
	if (d->place == HO_PLACE_FILE && check_extents(img_fd(&im), t, d, path))
		goto fail;

	/* A fixed image whose extents are all known: device-mapper, no daemon (else, or with --nbd, NBD). */
	static struct snap sn;
	if (snap && snap_load(&sn, o.mem, d, sectors))
		goto fail;
	if (snap)
		msg("mode=snapshot: %llu sector(s) the boot loader wrote carried over from vhdboot's overlay; Linux's writes stay in RAM too, the image is not written",
		    (unsigned long long)sn.stored);
	if (!o.force_nbd && !snap && !vhdx && d->image_type == HO_TYPE_FIXED) {
		const char *why = dm_unsuitable(t, d);
		if (why) {
			msg("device-mapper path not taken: %s; serving through NBD", why);
		} else {
			int r = dm_attach(t, d, &img_ch, path_part, mnt, &mnt_fd, ro);
			if (r <= 0)
				return r ? EXIT_FAIL : 0;
		}
	}

	/* The NBD device (its module may still be loading). */
	int nbd = -1;
	for (int tries = 0; tries <= o.wait_s * 5 && nbd < 0; tries++) {
		nbd = open(o.nbd, O_RDWR | O_CLOEXEC);
		if (nbd < 0)
			nap(200);
	}
	if (nbd < 0) {
		msg("%s: %s (is the nbd module loaded?)", o.nbd, strerror(errno));
		goto fail;
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
		msg("socketpair: %s", strerror(errno));
		goto fail;
	}
	ioctl(nbd, NBD_CLEAR_SOCK);
	if (ioctl(nbd, NBD_SET_BLKSIZE, 512UL) || ioctl(nbd, NBD_SET_SIZE_BLOCKS, (unsigned long)sectors) ||
	    ioctl(nbd, NBD_SET_FLAGS, (unsigned long)(NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
						      (ro ? NBD_FLAG_READ_ONLY : 0))) ||
	    ioctl(nbd, NBD_SET_SOCK, (unsigned long)sv[0])) {
		msg("%s: configuring NBD: %s (busy? another server attached?)", o.nbd, strerror(errno));
		goto fail;
	}

	/* Detach: the parent waits for the device (and its partitions) to be up, prints it, and exits. */
	int ready[2];
	if (pipe(ready)) {
		msg("pipe: %s", strerror(errno));
		goto fail;
	}
	if (!o.foreground) {
		pid_t p = fork();
		if (p < 0) {
			msg("fork: %s", strerror(errno));
			goto fail;
		}
		if (p > 0) {
			close(ready[1]);
			char ok = 0;
			if (read(ready[0], &ok, 1) != 1 || (ok != 'y' && ok != 'h')) {
				msg("the server did not come up");
				return EXIT_FAIL;
			}
			if (ok == 'h')
				printf("/dev/mapper/%s\n", hy.name);
			else
				printf("%s\n", o.nbd);
			fflush(stdout);
			return 0;
		}
		setsid();
	}
	close(ready[0]);
	/* The daemon: a root-storage daemon (systemd leaves argv[0] '@' processes alone at switch_root). */
	argv[0][0] = '@';
	if (chdir("/"))
		msg("chdir /: %s", strerror(errno));
	mlockall(MCL_CURRENT | MCL_FUTURE);       /* never page in through the device it serves */
	int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (oom >= 0) {
		if (write(oom, "-1000", 5) < 0)
			msg("oom_score_adj: %s", strerror(errno));
		close(oom);
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	pid_t k = fork();                         /* the kernel's side: NBD_DO_IT blocks until disconnect */
	if (k < 0) {
		msg("fork: %s", strerror(errno));
		goto fail;
	}
	if (k == 0) {
		close(sv[1]);
		close(ready[1]);
		signal(SIGTERM, SIG_IGN);
		int r = ioctl(nbd, NBD_DO_IT);
		ioctl(nbd, NBD_CLEAR_QUE);
		ioctl(nbd, NBD_CLEAR_SOCK);
		_exit(r ? 1 : 0);
	}
	close(sv[0]);
	/*
	 * Up when the kernel has the device: its pid in sysfs and then its size
	 * (6.1's nbd_start_device creates the pid file before it sets the
	 * capacity, so a partition scan right after the pid appears sees an
	 * empty disk). Then re-read the partition table until a partition shows
	 * (a few tries: a disk may have none).
	 */
	int up[2] = {-1, -1};                     /* helper -> hybrid setup thread, when there is a host map */
	if (hostdm[0] && pipe(up))
		up[0] = up[1] = -1;
	int tell = up[1] >= 0 ? up[1] : ready[1];
	pid_t helper = fork();
	if (helper == 0) {
		const char *base = strrchr(o.nbd, '/') ? strrchr(o.nbd, '/') + 1 : o.nbd;
		char pidf[128], sizef[128], p1[300], b[32];
		unsigned long long size = 0;
		snprintf(pidf, sizeof(pidf), "/sys/block/%s/pid", base);
		snprintf(sizef, sizeof(sizef), "/sys/block/%s/size", base);
		snprintf(p1, sizeof(p1), "/sys/block/%s/%sp1", base, base);
		int is_up = 0;
		for (int tries = 0; tries < 100 && !is_up; tries++) {
			if (read_sys(pidf, b, sizeof(b)) == 0 && read_sys_u64(sizef, &size) == 0 && size == sectors)
				is_up = 1;
			else
				nap(100);
		}
		/* Requests up to MAX_IO (the default 128 KiB-ish cap costs a round trip per 128 KiB). */
		char qf[160];
		snprintf(qf, sizeof(qf), "/sys/block/%s/queue/max_sectors_kb", base);
		int q = open(qf, O_WRONLY | O_CLOEXEC);
		if (q >= 0) {
			char v[16];
			int n = snprintf(v, sizeof(v), "%u", MAX_IO / 1024);
			if (write(q, v, (size_t)n) != n)
				msg("%s: %s (requests stay smaller)", qf, strerror(errno));
			close(q);
		}
		/* Read-ahead of buffered readers (the root file system) in requests as large (blockdev --setra). */
		snprintf(qf, sizeof(qf), "/sys/block/%s/queue/read_ahead_kb", base);
		q = open(qf, O_WRONLY | O_CLOEXEC);
		if (q >= 0) {
			if (write(q, "1024", 4) != 4)
				msg("%s: %s", qf, strerror(errno));
			close(q);
		}
		struct stat st;
		for (int tries = 0; is_up && tries < 10 && stat(p1, &st) != 0; tries++) {
			int fd = open(o.nbd, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				ioctl(fd, BLKRRPART);
				close(fd);
			}
			nap(100);
		}
		char ok = is_up ? 'y' : 'n';
		if (write(tell, &ok, 1) != 1)
			_exit(1);
		_exit(0);
	}
	if (up[1] >= 0)
		close(up[1]);
	msg("serving %s%s%s as %s: %llu sectors, %s%s, chain of %d, %s", disk, d->part_number ? " partition " : "",
	    d->part_number ? part : "", o.nbd, (unsigned long long)sectors,
	    d->image_type == HO_TYPE_FIXED ? "fixed" : d->image_type == HO_TYPE_DYNAMIC ? "dynamic" : "differencing",
	    vhdx ? " VHDX" : "", img_chain_len(&im), ro ? "read-only" : snap ? "read-write into RAM (mode=snapshot)" : "read-write");
	struct srv S;
	memset(&S, 0, sizeof(S));
	S.s = sv[1], S.nbd = nbd, S.ro = ro;
	S.snap = snap ? &sn : NULL;
	S.no_grow = d->fs == HO_FS_NTFS && d->image_type != HO_TYPE_FIXED && !img_ro;
	if (S.no_grow)
		msg("%s host: the image's file cannot grow (as under vhdboot): writes that need a new block fail with EIO, "
		    "writes into allocated blocks work", host_fs_of(d)->name);
	if (srv_init(&S, &im, img_fd(&im), img_ro)) {
		msg("no memory for the request buffer");
		goto fail;
	}
	static struct hyb_start hs;
	pthread_t hst;
	int hst_on = 0;
	if (hostdm[0] && up[0] >= 0 && S.full) {
		struct stat nst;
		pthread_mutex_init(&hy.mu, NULL);
		pthread_cond_init(&hy.cv, NULL);
		if (fstat(nbd, &nst) == 0) {
			hy.nbd = nst.st_rdev;
			S.hy = &hy;
			hs.S = &S, hs.up = up[0], hs.ready = ready[1];
			hst_on = pthread_create(&hst, NULL, hyb_start, &hs) == 0;
			if (!hst_on)
				S.hy = NULL;
		}
	}
	pid_t fwd = -1;
	if (!hst_on) {                            /* no hybrid: the helper's word goes to the parent as it is */
		if (up[0] >= 0) {
			/* Never waited for here: the helper's partition scan needs this process serving. */
			msg("device-mapper hybrid not set up; serving through NBD only (%s)", o.nbd);
			fwd = fork();
			if (fwd == 0) {
				char ok = 'n';
				if (read(up[0], &ok, 1) != 1)
					ok = 'n';
				_exit(write(ready[1], &ok, 1) == 1 ? 0 : 1);
			}
			if (fwd < 0)
				msg("fork: %s (the parent will not hear the server is up)", strerror(errno));
		}
		close(ready[1]);
	}
	if (up[0] >= 0 && !hst_on)
		close(up[0]);
	rc = serve(&S);
	msg("%s: requests: %lu spliced reads, %lu spliced writes, %lu gathered allocating writes, %lu through the library%s",
	    o.nbd, S.spliced, S.spliced_in, S.gathered, S.library, S.refused ? ", some refused (no growth)" : "");
	if (S.refused)
		msg("%s: %lu write(s) refused: they needed new blocks on a host that cannot grow the file", o.nbd, S.refused);
	close(sv[1]);                             /* requests still in flight fail: a reloader's suspend completes */
	if (hst_on)
		pthread_join(hst, NULL);
	if (S.hy)
		hyb_stop(S.hy);
	srv_free(&S);
	waitpid(k, NULL, 0);
	if (helper > 0)
		waitpid(helper, NULL, 0);
	if (fwd > 0)
		waitpid(fwd, NULL, 0);
	int e = img_close(&im, img_ro);           /* flushed, a VHDX's log marked empty, every member fsynced */
	if (mnt[0])
		unmount_host(mnt, mnt_fd);
	if (mnt_fd >= 0)
		close(mnt_fd), mnt_fd = -1;       /* a detached mount is gone only with its last reference */
	hyb_drop_host(hostdm);
	close(nbd);
	msg("%s: disconnected, image flushed and closed", o.nbd);
	return rc || e ? EXIT_FAIL : 0;

fail:
	img_close(&im, 1);
	if (mnt[0])
		umount(mnt);
	hyb_drop_host(hostdm);
	return EXIT_FAIL;
}
