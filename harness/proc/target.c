/* target.c - starting and stopping an external target's server process:
 * fork, then in the child its own process group, death with the parent,
 * the CPU affinity of the server's CPUs (set before exec, so every thread
 * and child it creates inherits it), the environment, the target's folder
 * as working directory, stdout+stderr to the capture file; readiness by
 * TCP connect, bounded; stop with SIGTERM to the whole group, then SIGKILL
 * to the group after a grace period. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int axb_tproc_start(struct axb_tproc *p, char *const argv[], char *const envp[],
		    const char *cwd, const cpu_set_t *cpus, int out_fd)
{
	char path[4096];
	pid_t parent = getpid();
	memset(p, 0, sizeof *p);
	p->pid = -1;
	p->pidfd = -1;
	/* resolved here: the child only calls async-signal-safe functions */
	if (!axb_find_program(argv[0], path, sizeof path))
		return -ENOENT;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (cpus && sched_setaffinity(0, sizeof *cpus, cpus))
			_exit(126);
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (nul >= 0)
			dup2(nul, 0);
		if (out_fd >= 0) {
			dup2(out_fd, 1);
			dup2(out_fd, 2);
		}
		if (cwd && chdir(cwd))
			_exit(126);
		execve(path, argv, envp);
		_exit(127);
	}
	setpgid(pid, pid);
	p->pid = pid;
	p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	return 0;
}

/* Reap it if it exited. */
bool axb_tproc_exited(struct axb_tproc *p)
{
	if (p->pid <= 0 || p->exited)
		return true;
	int st;
	struct rusage ru;
	pid_t r = wait4(p->pid, &st, WNOHANG, &ru);
	if (r == p->pid) {
		p->exited = true;
		p->wstatus = st;
		p->ru = ru;
	}
	return p->exited;
}

int axb_tproc_wait_ready(struct axb_tproc *p, int port, int64_t timeout_ns)
{
	int64_t deadline = axb_mono_ns() + timeout_ns;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	for (;;) {
		if (axb_tproc_exited(p))
			return -ECHILD;
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		int r = connect(fd, (struct sockaddr *)&a, sizeof a);
		close(fd);
		/* ready when the connection was the target's: another program
		 * holding the port must not pass for it */
		int own = r == 0 ? axb_pid_listens(p->pid, port) : 0;
		if (r == 0 && own != 0)
			return 0;
		if (axb_mono_ns() >= deadline)
			return r == 0 ? -EADDRINUSE : -ETIMEDOUT;
		if (axb_proc_interrupted())
			return -EINTR;
		/* 10 ms between attempts; an exit ends the wait at once */
		struct pollfd pf = { .fd = p->pidfd, .events = POLLIN };
		poll(&pf, p->pidfd >= 0 ? 1 : 0, 10);
	}
}

const char *axb_tproc_stop(struct axb_tproc *p, int64_t grace_ns)
{
	if (axb_tproc_exited(p)) {
		/* its helpers may still run: the group goes too */
		if (p->pid > 0)
			kill(-p->pid, SIGKILL);
		return "exited";
	}
	kill(-p->pid, SIGTERM);
	int64_t deadline = axb_mono_ns() + grace_ns;
	while (!axb_tproc_exited(p) && axb_mono_ns() < deadline) {
		struct pollfd pf = { .fd = p->pidfd, .events = POLLIN };
		poll(&pf, p->pidfd >= 0 ? 1 : 0, 10);
	}
	bool term = p->exited;
	/* whatever is left of the group (threads die with their process;
	 * forked helpers that ignored SIGTERM do not) */
	kill(-p->pid, SIGKILL);
	if (!p->exited) {
		int st;
		struct rusage ru;
		while (wait4(p->pid, &st, 0, &ru) < 0 && errno == EINTR)
			;
		p->exited = true;
		p->wstatus = st;
		p->ru = ru;
	}
	return term ? "stopped by SIGTERM" : "killed with SIGKILL after the grace period";
}

void axb_tproc_free(struct axb_tproc *p)
{
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = -1;
}

int axb_cpu_list(const cpu_set_t *set, char *buf, size_t n)
{
	size_t off = 0;
	int count = 0;
	buf[0] = 0;
	for (int i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, set))
			continue;
		int j = i;
		while (j + 1 < CPU_SETSIZE && CPU_ISSET(j + 1, set))
			j++;
		int w = j > i ? snprintf(buf + off, n - off, "%s%d-%d", off ? "," : "", i, j)
			      : snprintf(buf + off, n - off, "%s%d", off ? "," : "", i);
		if (w < 0 || (size_t)w >= n - off)
			break;
		off += (size_t)w;
		count += j - i + 1;
		i = j;
	}
	return count;
}

/* Whether ss is an address of this host's loopback. */
static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

int axb_wait_connect(const struct sockaddr_storage *ss, socklen_t sl, int64_t timeout_ns)
{
	int64_t deadline = axb_mono_ns() + timeout_ns;
	if (is_loopback(ss)) {
		/* on this host the kernel's table says when someone listens,
		 * without a connection the server would have to accept (a
		 * server that serves one connection must get the real one) */
		int port = ntohs(ss->ss_family == AF_INET
				 ? ((const struct sockaddr_in *)ss)->sin_port
				 : ((const struct sockaddr_in6 *)ss)->sin6_port);
		while (!axb_port_listened(port)) {
			if (axb_mono_ns() >= deadline)
				return -ETIMEDOUT;
			usleep(20000);
		}
		return 0;
	}
	for (;;) {
		int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		/* a remote host that drops SYNs: one attempt waits at most 1 s */
		struct timeval tv = { .tv_sec = 1 };
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		int r = connect(fd, (const struct sockaddr *)ss, sl);
		close(fd);
		if (r == 0)
			return 0;
		if (axb_mono_ns() >= deadline)
			return -ETIMEDOUT;
		usleep(20000);
	}
}

int axb_first_line(char *const argv[], const char *cwd, int64_t timeout_ns,
		   char *buf, size_t n)
{
	int pfd[2];
	char path[4096];
	buf[0] = 0;
	if (!axb_find_program(argv[0], path, sizeof path))
		return -ENOENT;
	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return e;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (nul >= 0)
			dup2(nul, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		if (cwd && chdir(cwd))
			_exit(126);
		execv(path, argv);
		_exit(127);
	}
	close(pfd[1]);
	int64_t deadline = axb_mono_ns() + timeout_ns;
	size_t len = 0;
	for (;;) {
		int64_t left = deadline - axb_mono_ns();
		struct pollfd pf = { .fd = pfd[0], .events = POLLIN };
		if (left <= 0 || poll(&pf, 1, (int)(left / 1000000) + 1) <= 0)
			break;
		ssize_t r = read(pfd[0], buf + len, n - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len >= n - 1 || memchr(buf, '\n', len))
			break;
	}
	buf[len] = 0;
	buf[strcspn(buf, "\n")] = 0;
	close(pfd[0]);
	kill(pid, SIGKILL);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return 0;
}
