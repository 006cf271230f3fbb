/* init.c: the only program of the test initramfs (tests/qemu/thirdparty/build_images.py).
 *
 * Runs as PID 1 of a Debian cloud kernel booted by GRUB or SYSLINUX from inside
 * a VHD. Prints on /dev/console (= ttyS0 through console=ttyS0):
 *   VHDBOOT-INIT cmdline=<the kernel command line>
 *   VHDBOOT-IOMEM <line>          each /proc/iomem line mentioning "reserved"
 *   VHDBOOT-E820 <base> <last> <type>   the kernel's copy of the firmware map
 *                                   (/sys/firmware/memmap), if present
 *   VHDBOOT-LINUX-OK
 * then ends QEMU through isa-debug-exit (port 0xF4, value 0x10 -> exit 33),
 * and powers off if that port is absent.
 * Static glibc (gcc -static); no libc start-up assumptions beyond that.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

static void out(const char *s)
{
	size_t n = strlen(s);
	while (n) {
		ssize_t w = write(1, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static int slurp(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	size_t len = 0;
	ssize_t r;
	while (len + 1 < size && (r = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)r;
	buf[len] = 0;
	close(fd);
	return (int)len;
}

static void chomp(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = 0;
}

static char buf[65536];

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
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);

	char line[1024];
	if (slurp("/proc/cmdline", buf, sizeof(buf)) >= 0) {
		chomp(buf);
		snprintf(line, sizeof(line), "VHDBOOT-INIT cmdline=%s\n", buf);
		out(line);
	} else {
		out("VHDBOOT-INIT cmdline=?\n");
	}

	if (slurp("/proc/iomem", buf, sizeof(buf)) > 0) {
		for (char *p = buf, *nl; *p; p = nl + 1) {
			nl = strchr(p, '\n');
			if (!nl)
				nl = p + strlen(p);
			char save = *nl;
			*nl = 0;
			if (strcasestr(p, "reserved") || strstr(p, "System RAM")) {
				snprintf(line, sizeof(line), "VHDBOOT-IOMEM %s\n", p);
				out(line);
			}
			if (!save)
				break;
		}
	}

	/* /sys/firmware/memmap/N/{start,end,type}: the E820 map as the kernel got it. */
	for (int i = 0; i < 128; i++) {
		char path[96], start[32], end[32], type[64];
		snprintf(path, sizeof(path), "/sys/firmware/memmap/%d/start", i);
		if (slurp(path, start, sizeof(start)) <= 0)
			break;
		snprintf(path, sizeof(path), "/sys/firmware/memmap/%d/end", i);
		if (slurp(path, end, sizeof(end)) <= 0)
			break;
		snprintf(path, sizeof(path), "/sys/firmware/memmap/%d/type", i);
		if (slurp(path, type, sizeof(type)) <= 0)
			break;
		chomp(start);
		chomp(end);
		chomp(type);
		snprintf(line, sizeof(line), "VHDBOOT-E820 %s %s %s\n", start, end, type);
		out(line);
	}

	out("VHDBOOT-LINUX-OK\n");
	sync();
	if (ioperm(0xF4, 4, 1) == 0)
		outb(0x10, 0xF4);
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}
