/* rootinit.c: /sbin/init of the VHD's root in the initramfs-tools run (linux_nbd.py): proves the root came from /dev/nbd0 and the server survived switch_root, writes a token, detaches, ends QEMU.
 *
 * Serial protocol:
 *   ROOTINIT root=<device of />          from /proc/mounts
 *   ROOTINIT server <cmdline>            a process whose argv[0] starts with '@' (vhdboot-attach after switch_root)
 *   ROOTINIT wrote vhdboot-switched.txt, ROOTINIT wrote vhdboot-fill.bin (3 MiB pattern)
 *   ROOTINIT detached                    the server exited after NBD_DISCONNECT (what vhdboot-attach -D sends)
 *   ROOTINIT-DONE / ROOTINIT-FAIL <why>  then isa-debug-exit 0x10 / 0x11
 * Everything runs from memory (mlockall) so that nothing pages in from the root once it is detached.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/nbd.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
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
	if (ioperm(0xF4, 4, 1) == 0)
		outb(ok ? 0x10 : 0x11, 0xF4);
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

static void fail(const char *why)
{
	say("ROOTINIT-FAIL %s (%s)\n", why, strerror(errno));
	finish(0);
}

static int slurp(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t r = read(fd, buf, n - 1);
	close(fd);
	if (r < 0)
		return -1;
	buf[r] = 0;
	return (int)r;
}

int main(void)
{
	static char buf[65536];
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		say("ROOTINIT mlockall: %s\n", strerror(errno));
	mount("proc", "/proc", "proc", 0, NULL);
	if (slurp("/proc/mounts", buf, sizeof(buf)) > 0) {
		for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n")) {
			char dev[256], mnt[256];
			if (sscanf(l, "%255s %255s", dev, mnt) == 2 && !strcmp(mnt, "/"))
				say("ROOTINIT root=%s\n", dev);
		}
	}
	int found = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char path[300];
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		int n = slurp(path, buf, 512);
		if (n > 0 && buf[0] == '@') {
			for (int i = 0; i < n - 1; i++)
				if (!buf[i])
					buf[i] = ' ';
			say("ROOTINIT server %s\n", buf);
			found = 1;
		}
	}
	if (d)
		closedir(d);
	if (!found)
		fail("no '@' server process after switch_root");
	const char text[] = "VHDBOOT-SWITCHED written by the root's /sbin/init after switch_root\n";
	int fd = open("/vhdboot-switched.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, text, sizeof(text) - 1) != (ssize_t)(sizeof(text) - 1) || fsync(fd) || close(fd))
		fail("write /vhdboot-switched.txt");
	say("ROOTINIT wrote vhdboot-switched.txt\n");
	/* The same 3 MiB pattern as nbdinit.c (linux_nbd.fill_pattern): new blocks of a dynamic VHD. */
	size_t len = 3072 * 1024;
	unsigned char *pat = malloc(len);
	if (!pat)
		fail("malloc");
	uint32_t x = 0x12345678u;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		pat[i] = (unsigned char)(x >> 16);
	}
	fd = open("/vhdboot-fill.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	for (size_t off = 0; fd >= 0 && off < len;) {
		ssize_t w = write(fd, pat + off, len - off);
		if (w <= 0)
			fail("write /vhdboot-fill.bin");
		off += (size_t)w;
	}
	if (fd < 0 || fsync(fd) || close(fd))
		fail("fsync /vhdboot-fill.bin");
	free(pat);
	say("ROOTINIT wrote vhdboot-fill.bin\n");
	sync();
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL))
		fail("remount / read-only");
	sync();
	int nbd = open("/dev/nbd0", O_RDWR);    /* what `vhdboot-attach -D /dev/nbd0` does */
	if (nbd < 0 || ioctl(nbd, NBD_DISCONNECT))
		fail("NBD_DISCONNECT");
	close(nbd);
	int st;
	for (int i = 0; i < 300; i++) {     /* the server is our child now (reparented): wait for it */
		pid_t w = waitpid(-1, &st, WNOHANG);
		if (w < 0 && errno == ECHILD) {
			say("ROOTINIT detached\nROOTINIT-DONE\n");
			finish(1);
		}
		if (w <= 0) {
			struct timespec ts = {0, 100000000L};
			nanosleep(&ts, NULL);
		}
	}
	fail("the server did not exit");
	return 1;
}
