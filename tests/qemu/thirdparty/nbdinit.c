/* nbdinit.c: PID 1 of the Linux-keeps-the-disk test initramfs (tests/qemu/thirdparty/linux_nbd.py): loads the modules, runs vhdboot-attach, writes into the image's root through /dev/nbd0p1, detaches, powers off.
 *
 * Serial protocol (console=ttyS0):
 *   NBDINIT attach rc=N                 vhdboot-attach's exit code (0 attached, 2 no table, ...)
 *   NBDINIT notable                     rc 2: no table, nothing done (the expected answer without vhdboot)
 *   NBDINIT wrote <file> <bytes>        after the root partition was mounted, written, fsync'ed, unmounted
 *   NBDINIT detached                    the server flushed and exited after vhdboot-attach -D
 *   NBDINIT-DONE                        then isa-debug-exit 0x10 (QEMU exit 33)
 *   NBDINIT-FAIL <why>                  then isa-debug-exit 0x11 (QEMU exit 35)
 *   NBDINIT grubenv LINE                the first variable of /boot/grub/grubenv on the root (or "empty")
 *   NBDINIT ro-refused                  vhdboot.expect=ro: the device is read-only (opening it for writing fails)
 *   NBDINIT refused                     vhdboot.expect=refuse: vhdboot-attach refused (exit 1) as expected
 *   NBDINIT bench dev=D mib=N write_ms=W rewrite_ms=V read_ms=R memcpy_ms=C   vhdboot.bench=N: O_DIRECT sequential write,
 *                                       the same again (blocks allocated by then), then read,
 *                                       of N MiB on partition 2 (/dev/nbd0p2, or /dev/sda2 without vhdboot)
 *   NBDINIT memcpy-WHEN ms=C ...        with vhdboot.bench: the guest CPU's copy rate at boot (before vhdboot-attach),
 *                                       before and after the I/O, with what else ran meanwhile (memcpy_probe)
 * The token and the pattern file's size come from the kernel command line:
 * vhdboot.dev=DEV: the device vhdboot-attach serves (default /dev/nbd0; /dev/mapper/vhdboot80 for
 * a fixed image's maps or a dynamic one's hybrid), its p1 the root, p2 the bench, -D DEV at the end.
 * vhdboot.nbd=1: vhdboot-attach --nbd (the pure NBD path).
 * vhdboot.verify=1 (with a dm hybrid as DEV): after the pattern is written and the root unmounted, wait
 * (bounded) until the hybrid's live table maps every block of the pattern file onto the host partition
 * ("NBDINIT linear K/N"), drop the caches, mount read-only, read it back and compare ("NBDINIT readback ok").
 * vhdboot.token=WORD, vhdboot.fill=KIB; vhdboot.expect=rw|ro|refuse (default rw); vhdboot.root=DEV: the
 * image's ext2 partition written in rw (default /dev/nbd0p1; the UEFI guest's is /dev/nbd0p2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <linux/dm-ioctl.h>
#include <linux/fs.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void say(const char *fmt, ...)
{
	char b[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (n > 0 && write(1, b, (size_t)(n < (int)sizeof(b) ? n : (int)sizeof(b) - 1)) < 0)
		return;
}

static void finish(int ok)
{
	sync();
	if (ioperm(0xF4, 4, 1) == 0)
		outb(ok ? 0x10 : 0x11, 0xF4);
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

static void fail(const char *why)
{
	say("NBDINIT-FAIL %s (errno %s)\n", why, strerror(errno));
	finish(0);
}

static void nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Load every module named in /modules.order (one path a line), in order. */
static void load_modules(void)
{
	FILE *f = fopen("/modules.order", "r");
	char line[512];
	if (!f)
		fail("no /modules.order");
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (!line[0])
			continue;
		int fd = open(line, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || syscall(SYS_finit_module, fd, "", 0) != 0) {
			if (errno != EEXIST) {
				say("NBDINIT module %s: %s\n", line, strerror(errno));
				fail("module load");
			}
		}
		if (fd >= 0)
			close(fd);
	}
	fclose(f);
}

/* Run argv, wait for it; its exit code (or -1). */
static int run(char *const argv[])
{
	pid_t p = fork();
	if (p == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	if (p < 0 || waitpid(p, &st, 0) != p)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The value of key= on the kernel command line into out ("" if absent). */
static void cmdline_arg(const char *key, char *out, size_t n)
{
	char buf[2048];
	out[0] = 0;
	int fd = open("/proc/cmdline", O_RDONLY);
	if (fd < 0)
		return;
	ssize_t r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r <= 0)
		return;
	buf[r] = 0;
	size_t kl = strlen(key);
	for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n"))
		if (!strncmp(t, key, kl) && t[kl] == '=')
			snprintf(out, n, "%s", t + kl + 1);
}

static int exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

/* Write len bytes of data to path, fsync. */
static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		fail(path);
	const char *p = data;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w <= 0)
			fail("write");
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) || close(fd))
		fail("fsync");
}

/*
 * vhdboot.verify=1 (the dm hybrid): where the pattern file's sectors are in the virtual disk, and whether
 * the live table of the hybrid (DEV) maps them onto the host partition rather than onto the NBD device.
 * The file's blocks by FIBMAP on the ext2 (device sectors of the root partition), the partition's offset
 * from its own table (linear over DEV), DEV's targets from DM_TABLE_STATUS with the table's parameters.
 */
#define VFY_MAX 8192
static uint64_t vfy_sec[VFY_MAX];          /* virtual disk sector of each file block */
static int vfy_n, vfy_per;

/* DM_TABLE_STATUS (table parameters) of dm device name into buf; the targets, or -1. */
static int dm_status(const char *name, uint64_t *buf, size_t bytes)
{
	int ctl = open("/dev/mapper/control", O_RDWR);
	if (ctl < 0)
		return -1;
	struct dm_ioctl *io = (void *)buf;
	memset(buf, 0, bytes);
	io->version[0] = DM_VERSION_MAJOR;
	io->data_size = (uint32_t)bytes;
	io->data_start = sizeof(*io);
	io->flags = DM_STATUS_TABLE_FLAG;
	snprintf(io->name, sizeof(io->name), "%s", name);
	int r = ioctl(ctl, DM_TABLE_STATUS, io);
	close(ctl);
	return r || (io->flags & DM_BUFFER_FULL_FLAG) ? -1 : (int)io->target_count;
}

/* The file's blocks as virtual-disk sectors (the root partition rootdev is dev's p1, linear over dev). */
static void verify_map(const char *path, const char *rootdev)
{
	static uint64_t buf[4096];
	const char *pn = strrchr(rootdev, '/') + 1;
	if (dm_status(pn, buf, sizeof(buf)) != 1)
		fail("DM_TABLE_STATUS of the root partition's map");
	struct dm_ioctl *io = (void *)buf;
	struct dm_target_spec *sp = (void *)((char *)io + io->data_start);
	unsigned ma, mi;
	unsigned long long start;
	if (sscanf((char *)(sp + 1), "%u:%u %llu", &ma, &mi, &start) != 3)
		fail("the root partition's map is not linear");
	int fd = open(path, O_RDONLY);
	int bs;
	struct stat st;
	if (fd < 0 || ioctl(fd, FIGETBSZ, &bs) || fstat(fd, &st))
		fail("FIGETBSZ");
	vfy_per = bs / 512;
	for (off_t o = 0; o < st.st_size && vfy_n < VFY_MAX; o += bs) {
		int b = (int)(o / bs);
		if (ioctl(fd, FIBMAP, &b) || b <= 0)
			fail("FIBMAP");
		vfy_sec[vfy_n++] = start + (uint64_t)b * (unsigned)vfy_per;
	}
	close(fd);
}

/* How many of the file's blocks the live table of dev maps onto a device other than nbd (major 43). */
static int verify_linear(const char *dev)
{
	static uint64_t buf[1 << 17];
	int n = dm_status(strrchr(dev, '/') + 1, buf, sizeof(buf));
	if (n <= 0)
		return -1;
	int lin = 0;
	for (int i = 0; i < vfy_n; i++) {
		struct dm_ioctl *io = (void *)buf;
		char *p = (char *)io + io->data_start;
		for (int t = 0; t < n; t++) {
			struct dm_target_spec *sp = (void *)p;
			unsigned ma;
			if (vfy_sec[i] >= sp->sector_start && vfy_sec[i] + (unsigned)vfy_per <= sp->sector_start + sp->length) {
				if (sscanf((char *)(sp + 1), "%u:", &ma) == 1 && ma != 43)
					lin++;
				break;
			}
			p = (char *)io + io->data_start + sp->next;   /* in a status reply, next is from the data's start */
		}
	}
	return lin;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000L + (t.tv_nsec - t0->tv_nsec) / 1000000L;
}

/* /proc/stat's totals: context switches, interrupts, and the cpu line's user/system/idle/irq+softirq ticks. */
struct pstat {
	unsigned long long ctxt, intr, user, sys, idle, irq;
};

/* Read /proc/stat into *p (zeros where a line is missing). */
static void pstat_read(struct pstat *p)
{
	char b[8192];
	memset(p, 0, sizeof(*p));
	int fd = open("/proc/stat", O_RDONLY);
	if (fd < 0)
		return;
	ssize_t n = read(fd, b, sizeof(b) - 1);
	close(fd);
	if (n <= 0)
		return;
	b[n] = 0;
	unsigned long long nice = 0, iow = 0, sirq = 0;
	sscanf(b, "cpu %llu %llu %llu %llu %llu %llu %llu", &p->user, &nice, &p->sys, &p->idle, &iow, &p->irq, &sirq);
	p->user += nice;
	p->idle += iow;
	p->irq += sirq;
	char *c = strstr(b, "\nctxt ");
	if (c)
		sscanf(c + 6, "%llu", &p->ctxt);
	c = strstr(b, "\nintr ");
	if (c)
		sscanf(c + 6, "%llu", &p->intr);
}

#define PT_MAX 64
/* utime+stime (ticks) of up to PT_MAX processes: pids[i], comm, ticks; returns how many. */
static int proc_times(int *pids, char comms[][20], unsigned long long *ticks)
{
	int n = 0;
	for (int pid = 2; pid < 4096 && n < PT_MAX; pid++) {
		char path[64], b[512];
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, b, sizeof(b) - 1);
		close(fd);
		if (r <= 0)
			continue;
		b[r] = 0;
		char *l = strchr(b, '('), *e = strrchr(b, ')');
		if (!l || !e)
			continue;
		unsigned long long ut = 0, st = 0;
		/* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
		if (sscanf(e + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
			continue;
		pids[n] = pid;
		snprintf(comms[n], 20, "%.*s", (int)(e - l - 1), l + 1);
		ticks[n] = ut + st;
		n++;
	}
	return n;
}

/*
 * The bench's buffers: 1 MiB of I/O data and a 1 MiB copy destination in
 * one mapping, the destination 273 pages (an odd number) after the data.
 * QEMU's TCG TLB is direct-mapped by virtual page number, so a source and
 * destination a multiple of 256 pages apart (what malloc gave once the
 * token's malloc/free had moved its mmap threshold: two heap blocks 1 MiB
 * + a page apart) evict each other on every access and the copy ran 10x
 * slower; that made the NBD boots' copy rate look 5-10x lower than the raw
 * boots'. Fixed placement keeps the probe about the CPU, not the allocator.
 */
#define BENCH_DST_PAGES 273
static unsigned char *bench_src, *bench_dst;

/* Map the bench's buffers once (fail() if it can't). */
static void bench_buffers(void)
{
	if (bench_src)
		return;
	size_t len = ((size_t)BENCH_DST_PAGES << 12) + (1u << 20);
	unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (m == MAP_FAILED)
		fail("mmap");
	bench_src = m;
	bench_dst = m + ((size_t)BENCH_DST_PAGES << 12);
}

/*
 * ms for mib copies of bench_src's 1 MiB to bench_dst, and what else the
 * guest did meanwhile: context switches, interrupts, CPU ticks by kind,
 * every other process that ran ("NBDINIT memcpy-WHEN ms=.. ctxt=.. intr=..
 * ticks=user/sys/idle/irq", then "... busy pid N (comm) T ticks").
 */
static long memcpy_probe(const char *when, int mib)
{
	static int pa[PT_MAX], pz[PT_MAX];
	static char ca[PT_MAX][20], cz[PT_MAX][20];
	static unsigned long long ta[PT_MAX], tz[PT_MAX];
	unsigned char *src = bench_src, *dst = bench_dst;
	struct pstat a, z;
	struct timespec t0;
	int na = proc_times(pa, ca, ta);
	pstat_read(&a);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < mib; i++) {
		src[i & 0xFFFFF] = (unsigned char)i;
		memcpy(dst, src, 1 << 20);
	}
	long c = ms_since(&t0) + (dst[mib & 0xFFFFF] & 0);
	pstat_read(&z);
	int nz = proc_times(pz, cz, tz);
	for (int i = 0; i < nz; i++)
		for (int j = 0; j < na; j++)
			if (pz[i] == pa[j] && tz[i] > ta[j])
				say("NBDINIT memcpy-%s busy pid %d (%s) %llu ticks\n", when, pz[i], cz[i], tz[i] - ta[j]);
	say("NBDINIT memcpy-%s ms=%ld ctxt=%llu intr=%llu ticks=%llu/%llu/%llu/%llu\n", when, c, z.ctxt - a.ctxt,
	    z.intr - a.intr, z.user - a.user, z.sys - a.sys, z.idle - a.idle, z.irq - a.irq);
	return c;
}

/* Sequential O_DIRECT write then read of mib MiB on dev (1 MiB requests, a pattern checked on read). */
static void bench(const char *dev, int mib)
{
	for (int i = 0; i < 100 && !exists(dev); i++)
		nap_ms(100);
	int fd = open(dev, O_RDWR | O_DIRECT);
	if (fd < 0)
		fail(dev);
	bench_buffers();
	unsigned char *buf = bench_src;
	memcpy_probe("before", mib);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < mib; i++) {
		memset(buf, (unsigned char)(i * 37 + 1), 1 << 20);
		if (pwrite(fd, buf, 1 << 20, (off_t)i << 20) != 1 << 20)
			fail("bench write");
	}
	if (fsync(fd))
		fail("bench fsync");
	long w = ms_since(&t0);
	clock_gettime(CLOCK_MONOTONIC, &t0);        /* again: the blocks exist now (no allocation) */
	for (int i = 0; i < mib; i++) {
		memset(buf, (unsigned char)(i * 37 + 1), 1 << 20);
		if (pwrite(fd, buf, 1 << 20, (off_t)i << 20) != 1 << 20)
			fail("bench rewrite");
	}
	if (fsync(fd))
		fail("bench fsync");
	long rw = ms_since(&t0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < mib; i++) {
		if (pread(fd, buf, 1 << 20, (off_t)i << 20) != 1 << 20)
			fail("bench read");
		if (buf[0] != (unsigned char)(i * 37 + 1) || buf[(1 << 20) - 1] != buf[0])
			fail("bench read back differs");
	}
	long r = ms_since(&t0);
	close(fd);
	/* What one copy of every byte costs this CPU (TCG emulates it): the ceiling of any path that copies. */
	long c = memcpy_probe("after", mib);
	say("NBDINIT bench dev=%s mib=%d write_ms=%ld rewrite_ms=%ld read_ms=%ld memcpy_ms=%ld\n", dev, mib, w, rw, r, c);
}

/* Print the first variable line of /root/boot/grub/grubenv (what GRUB's save_env wrote), if there is one. */
static void grubenv_line(void)
{
	char env[1025];
	int fd = open("/root/boot/grub/grubenv", O_RDONLY);
	if (fd < 0)
		return;
	ssize_t n = read(fd, env, sizeof(env) - 1);
	close(fd);
	env[n > 0 ? n : 0] = 0;
	for (char *l = env; *l; ) {
		char *nl = strchr(l, '\n');
		if (nl)
			*nl = 0;
		if (*l && *l != '#') {
			say("NBDINIT grubenv %s\n", l);
			return;
		}
		if (!nl)
			break;
		l = nl + 1;
	}
	say("NBDINIT grubenv empty\n");
}

int main(void)
{
	int fd = open("/dev/console", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	mkdir("/proc", 0555);
	mkdir("/sys", 0555);
	mkdir("/dev", 0755);
	mkdir("/run", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("tmpfs", "/run", "tmpfs", 0, "mode=0755");
	load_modules();

	char token[128], fill[32], expect[16], benchs[16], rootdev[96];
	cmdline_arg("vhdboot.token", token, sizeof(token));
	cmdline_arg("vhdboot.fill", fill, sizeof(fill));
	cmdline_arg("vhdboot.expect", expect, sizeof(expect));
	cmdline_arg("vhdboot.bench", benchs, sizeof(benchs));
	char verify[8];
	cmdline_arg("vhdboot.verify", verify, sizeof(verify));   /* 1: prove the pattern lies in the hybrid's linear runs */
	char dev[64], part2[80];
	cmdline_arg("vhdboot.root", rootdev, sizeof(rootdev));
	cmdline_arg("vhdboot.dev", dev, sizeof(dev));     /* what attach serves: /dev/nbd0, or /dev/mapper/vhdboot80 (fixed) */
	if (!dev[0])
		snprintf(dev, sizeof(dev), "/dev/nbd0");
	if (!rootdev[0])
		snprintf(rootdev, sizeof(rootdev), "%sp1", dev);
	snprintf(part2, sizeof(part2), "%sp2", dev);
	int bench_mib = atoi(benchs);
	if (bench_mib) {                       /* the CPU's copy rate before vhdboot-attach runs */
		bench_buffers();
		memcpy_probe("boot", bench_mib);
	}
	char *info[] = {"/vhdboot-attach", "--info", NULL};
	run(info);
	char nbdflag[8];
	cmdline_arg("vhdboot.nbd", nbdflag, sizeof(nbdflag));   /* vhdboot.nbd=1: attach --nbd (no device-mapper) */
	char *attach[] = {"/vhdboot-attach", "--wait", "20", nbdflag[0] ? "--nbd" : NULL, NULL};
	int rc = run(attach);
	say("NBDINIT attach rc=%d\n", rc);
	if (rc == 2) {
		say("NBDINIT notable\n");
		if (bench_mib)
			bench("/dev/sda2", bench_mib);
		say("NBDINIT-DONE\n");
		finish(1);
	}
	if (!strcmp(expect, "refuse")) {
		if (rc != 1)
			fail("vhdboot-attach did not refuse");
		say("NBDINIT refused\n");
		say("NBDINIT-DONE\n");
		finish(1);
	}
	if (rc != 0)
		fail("vhdboot-attach");
	if (!strcmp(expect, "ro")) {
		char p1[80];
		snprintf(p1, sizeof(p1), "%sp1", dev);
		for (int i = 0; i < 100 && !exists(p1); i++)
			nap_ms(100);
		int w = open(dev, O_WRONLY);          /* Linux opens a read-only disk for writing; the write fails */
		char sec[512];
		memset(sec, 0x5A, sizeof(sec));
		if (w >= 0 && pwrite(w, sec, sizeof(sec), 4096 * 512) == (ssize_t)sizeof(sec) && fsync(w) == 0)
			fail("a write to the read-only device succeeded");
		say("NBDINIT ro-refused (%s)\n", strerror(errno));
		if (w >= 0)
			close(w);
		mkdir("/root", 0755);
		if (mount(p1, "/root", "ext2", MS_RDONLY, NULL))
			fail("mount -o ro the root partition");
		if (!exists("/root/boot/vmlinuz"))
			fail("no /boot/vmlinuz on the read-only root");
		umount("/root");
	} else {
		for (int i = 0; i < 100 && !exists(rootdev); i++)
			nap_ms(100);
		if (!exists(rootdev))
			fail("no root partition device after attach");
		mkdir("/root", 0755);
		if (mount(rootdev, "/root", "ext2", 0, NULL))
			fail("mount the root partition");
		grubenv_line();
		char text[256];
		int n = snprintf(text, sizeof(text), "VHDBOOT-TOKEN %s written by Linux through %s\n", token, rootdev);
		write_file("/root/vhdboot-token.txt", text, (size_t)n);
		size_t kib = (size_t)atoi(fill);
		if (kib) {                    /* a deterministic pattern the host recomputes */
			size_t len = kib * 1024;
			unsigned char *p = malloc(len);
			if (!p)
				fail("malloc");
			uint32_t x = 0x12345678u;
			for (size_t i = 0; i < len; i++) {
				x = x * 1103515245u + 12345u;
				p[i] = (unsigned char)(x >> 16);
			}
			write_file("/root/vhdboot-fill.bin", p, len);
			if (verify[0])
				verify_map("/root/vhdboot-fill.bin", rootdev);
			free(p);
		}
		if (umount("/root"))
			fail("umount /root");
		sync();
		say("NBDINIT wrote vhdboot-token.txt %d\n", n);
		if (verify[0] && kib) {       /* the hybrid: the pattern's sectors linear, then read back through them */
			int lin = -1;
			for (int i = 0; i < 300 && (lin = verify_linear(dev)) < vfy_n; i++)
				nap_ms(100);       /* the reloader maps new blocks after the flush; bounded */
			say("NBDINIT linear %d/%d\n", lin, vfy_n);
			int dc = open("/proc/sys/vm/drop_caches", O_WRONLY);
			if (dc >= 0) {
				if (write(dc, "3", 1) != 1)
					say("NBDINIT drop_caches failed\n");
				close(dc);
			}
			if (mount(rootdev, "/root", "ext2", MS_RDONLY, NULL))
				fail("remount the root partition");
			size_t len = kib * 1024;
			unsigned char *p = malloc(len), *q = malloc(len);
			if (!p || !q)
				fail("malloc");
			int fd = open("/root/vhdboot-fill.bin", O_RDONLY);
			size_t got = 0;
			while (fd >= 0 && got < len) {
				ssize_t r = read(fd, q + got, len - got);
				if (r <= 0)
					break;
				got += (size_t)r;
			}
			uint32_t x = 0x12345678u;
			for (size_t i = 0; i < len; i++) {
				x = x * 1103515245u + 12345u;
				p[i] = (unsigned char)(x >> 16);
			}
			if (fd < 0 || got != len || memcmp(p, q, len))
				fail("the pattern read back differs");
			close(fd);
			free(p);
			free(q);
			umount("/root");
			say("NBDINIT readback ok %zu bytes\n", len);
		}
		if (bench_mib)
			bench(part2, bench_mib);
	}
	char *detach[] = {"/vhdboot-attach", "-D", dev, NULL};
	if (run(detach) != 0)
		fail("vhdboot-attach -D");
	/* The server (reparented to us) flushes, unmounts the host FAT and exits: wait for every child. */
	for (int i = 0; i < 300; i++) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);
		if (p < 0 && errno == ECHILD) {
			say("NBDINIT detached\n");
			say("NBDINIT-DONE\n");
			finish(1);
		}
		if (p <= 0)
			nap_ms(100);
	}
	fail("the server did not exit after the disconnect");
	return 1;
}
