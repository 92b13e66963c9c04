/* proc.c - the one launcher of child processes (fork+exec of /proc/self/exe
 * or of a program such as valgrind; own process group, PDEATHSIG, signal
 * mask reset, a result pipe on descriptor 3, captured output) and a
 * watchdog loop that waits for lines, exits, deadlines or Ctrl-C. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int intr_pipe[2] = { -1, -1 };
static volatile sig_atomic_t intr_sig;

static void on_interrupt(int sig)
{
	int saved = errno;
	if (!intr_sig)
		intr_sig = sig;
	if (intr_pipe[1] >= 0) {
		ssize_t w = write(intr_pipe[1], "x", 1);
		(void)w;
	}
	errno = saved;
}

int axb_proc_init(void)
{
	struct sigaction sa;
	if (pipe2(intr_pipe, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_interrupt;
	sigemptyset(&sa.sa_mask);
	/* every signal that ends a run by default: the run stops its
	 * children and writes its file, status "interrupted" */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int axb_proc_interrupted(void)
{
	return intr_sig;
}

void axb_child_none(struct axb_child *c)
{
	memset(c, 0, sizeof *c);
	c->pid = -1;
	c->pidfd = -1;
	c->res_fd = -1;
	c->err_fd = -1;
}

/* In the child, between fork and exec: only what is safe there. */
static _Noreturn void child_exec(const struct axb_spawn *sp, pid_t parent,
				 int res_w, int err_fd)
{
	/* own process group: a terminal's Ctrl-C reaches only the parent,
	 * which then stops its children itself */
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (res_w >= 0) {
		int r = fcntl(res_w, F_DUPFD_CLOEXEC, 10);
		if (r < 0 || dup2(r, 3) < 0)
			_exit(127);
	}
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul >= 0)
		dup2(nul, 0);
	switch (sp->out) {
	case AXB_SINK_INHERIT: break;
	case AXB_SINK_CAPTURE: dup2(err_fd, 1); break;
	case AXB_SINK_NULL: dup2(nul, 1); break;
	case AXB_SINK_STDERR: dup2(2, 1); break;
	case AXB_SINK_FD: dup2(sp->out_fd, 1); break;
	}
	switch (sp->err) {
	case AXB_SINK_CAPTURE: dup2(err_fd, 2); break;
	case AXB_SINK_NULL: dup2(nul, 2); break;
	default: break;
	}
	if (sp->prog)
		execvp(sp->prog, sp->argv);
	else
		execv("/proc/self/exe", sp->argv);
	_exit(127);
}

int axb_child_start(struct axb_child *c, const struct axb_spawn *sp)
{
	int res[2] = { -1, -1 }, err = 0;
	pid_t parent = getpid();

	axb_child_none(c);
	c->role = sp->role;
	if (sp->result_pipe && pipe2(res, O_CLOEXEC))
		return -errno;
	if (sp->out == AXB_SINK_CAPTURE || sp->err == AXB_SINK_CAPTURE) {
		c->err_fd = memfd_create("axbench-child-output", MFD_CLOEXEC);
		if (c->err_fd < 0) {
			err = -errno;
			goto close_pipe;
		}
	}
	fflush(NULL);
	c->pid = fork();
	if (c->pid < 0) {
		err = -errno;
		goto close_memfd;
	}
	if (c->pid == 0)
		child_exec(sp, parent, res[1], c->err_fd);
	/* also here: a kill of the group right after fork finds it */
	setpgid(c->pid, c->pid);
	if (sp->result_pipe) {
		close(res[1]);
		c->res_fd = res[0];
	}
	c->pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
	return 0;

close_memfd:
	if (c->err_fd >= 0)
		close(c->err_fd);
	c->err_fd = -1;
close_pipe:
	if (sp->result_pipe) {
		close(res[0]);
		close(res[1]);
	}
	return err;
}

int axb_child_spawn(struct axb_child *c, const char *role, char *const argv[],
		    bool capture)
{
	struct axb_spawn sp = {
		.role = role, .argv = argv, .result_pipe = true,
		.out = capture ? AXB_SINK_CAPTURE : AXB_SINK_INHERIT,
		.err = capture ? AXB_SINK_CAPTURE : AXB_SINK_INHERIT,
	};
	return axb_child_start(c, &sp);
}

/* Read what the child wrote on its result pipe. */
static void child_read(struct axb_child *c)
{
	char tmp[65536];
	for (;;) {
		ssize_t n = read(c->res_fd, tmp, sizeof tmp);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 || errno != EAGAIN) {
				close(c->res_fd);
				c->res_fd = -1;
			}
			return;
		}
		if (c->len + (size_t)n + 1 > c->cap) {
			size_t cap = (c->len + (size_t)n + 1) * 2;
			char *b = realloc(c->buf, cap);
			if (!b)
				abort();
			c->buf = b;
			c->cap = cap;
		}
		memcpy(c->buf + c->len, tmp, (size_t)n);
		c->len += (size_t)n;
		c->buf[c->len] = 0;
		/* one read per wakeup: the pipe is blocking */
		return;
	}
}

static void child_try_reap(struct axb_child *c)
{
	if (c->exited || c->pid <= 0)
		return;
	int st;
	pid_t r = waitpid(c->pid, &st, WNOHANG);
	if (r == c->pid) {
		c->exited = true;
		c->wstatus = st;
	}
}

int axb_child_pump(struct axb_child *const *cs, size_t n, int64_t deadline,
		   bool (*until)(void *arg), void *arg)
{
	for (;;) {
		bool any_exited = false;
		for (size_t i = 0; i < n; i++) {
			child_try_reap(cs[i]);
			any_exited |= cs[i]->exited;
		}
		if (until ? until(arg) : any_exited)
			return 0;
		if (intr_sig)
			return -EINTR;
		int64_t now = axb_mono_ns();
		if (now >= deadline)
			return -ETIMEDOUT;

		struct pollfd p[2 * AXB_PUMP_MAX + 1];
		struct axb_child *who[2 * AXB_PUMP_MAX + 1];
		nfds_t k = 0;
		bool need_tick = false;
		p[k].fd = intr_pipe[0];
		p[k].events = POLLIN;
		who[k++] = NULL;
		for (size_t i = 0; i < n && i < AXB_PUMP_MAX; i++) {
			struct axb_child *c = cs[i];
			if (c->res_fd >= 0) {
				p[k].fd = c->res_fd;
				p[k].events = POLLIN;
				who[k++] = c;
			}
			if (!c->exited && c->pidfd >= 0) {
				p[k].fd = c->pidfd;
				p[k].events = POLLIN;
				who[k++] = c;
			} else if (!c->exited) {
				need_tick = true; /* no pidfd: poll waitpid */
			}
		}
		int64_t wait_ms = (deadline - now + 999999) / 1000000;
		if (need_tick && wait_ms > 20)
			wait_ms = 20;
		if (wait_ms > 1000)
			wait_ms = 1000;
		int r = poll(p, k, (int)wait_ms);
		if (r < 0 && errno != EINTR)
			return -errno;
		for (nfds_t i = 1; r > 0 && i < k; i++) {
			if (!p[i].revents)
				continue;
			if (p[i].fd == who[i]->res_fd)
				child_read(who[i]);
			else
				child_try_reap(who[i]);
		}
	}
}

void axb_child_kill(struct axb_child *c, const char *why)
{
	if (c->pid <= 0 || c->exited)
		return;
	if (!c->killed) {
		c->killed = true;
		c->kill_reason = why;
	}
	kill(c->pid, SIGKILL);
}

void axb_child_finish(struct axb_child *c)
{
	if (c->pid > 0 && !c->exited) {
		int st;
		while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
			;
		c->exited = true;
		c->wstatus = st;
	}
	while (c->res_fd >= 0)
		child_read(c);
}

void axb_child_free(struct axb_child *c)
{
	if (c->res_fd >= 0)
		close(c->res_fd);
	if (c->pidfd >= 0)
		close(c->pidfd);
	if (c->err_fd >= 0)
		close(c->err_fd);
	free(c->buf);
	memset(c, 0, sizeof *c);
	c->res_fd = c->pidfd = c->err_fd = -1;
}

json_t *axb_child_event(const struct axb_child *c, const char *event)
{
	json_t *found = NULL;
	const char *p = c->buf;
	while (p && *p) {
		const char *nl = strchr(p, '\n');
		if (!nl)
			break; /* an incomplete last line is ignored */
		json_error_t je;
		json_t *j = json_loadb(p, (size_t)(nl - p), 0, &je);
		if (j) {
			const char *ev = json_string_value(json_object_get(j, "event"));
			if (ev && (!event || !strcmp(ev, event))) {
				json_decref(found);
				found = j;
			} else {
				json_decref(j);
			}
		}
		p = nl + 1;
	}
	return found;
}

char *axb_child_bad_output(const struct axb_child *c)
{
	const char *p = c->buf;
	char *out = NULL;
	for (int line = 1; p && *p && !out; line++) {
		const char *nl = strchr(p, '\n');
		if (!nl && !c->exited)
			break; /* still being written */
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		json_error_t je;
		json_t *j = json_loadb(p, len, 0, &je);
		bool parsed = j != NULL;
		bool ok = json_is_string(json_object_get(j, "event"));
		json_decref(j);
		if (!ok && asprintf(&out, "%s line %d of its result pipe: '%.*s'",
				    !nl ? "an unfinished" : parsed ? "no event in" :
				    "invalid JSON in", line, (int)(len < 80 ? len : 80),
				    p) < 0)
			out = NULL;
		p = nl ? nl + 1 : NULL;
	}
	return out;
}

char *axb_child_stderr(const struct axb_child *c, size_t max)
{
	if (c->err_fd < 0)
		return NULL;
	off_t end = lseek(c->err_fd, 0, SEEK_END);
	if (end <= 0)
		return NULL;
	off_t from = end > (off_t)max ? end - (off_t)max : 0;
	size_t len = (size_t)(end - from);
	char *s = malloc(len + 1);
	if (!s)
		return NULL;
	ssize_t n = pread(c->err_fd, s, len, from);
	if (n < 0)
		n = 0;
	s[n] = 0;
	/* drop a partial first line when the tail was cut */
	if (from > 0) {
		char *nl = strchr(s, '\n');
		if (nl)
			memmove(s, nl + 1, strlen(nl + 1) + 1);
	}
	return s;
}

bool axb_child_exited(void *arg)
{
	return ((const struct axb_child *)arg)->exited;
}

bool axb_child_ready_or_exited(void *arg)
{
	struct axb_child *c = arg;
	if (c->exited)
		return true;
	json_t *j = axb_child_event(c, "ready");
	json_decref(j);
	return j != NULL;
}

bool axb_child_passed(const struct axb_child *c, char *why, size_t n)
{
	json_t *res = axb_child_event(c, "result");
	bool ok = false;
	if (!res) {
		json_t *e = axb_child_event(c, "error");
		snprintf(why, n, "%s: %s", c->role,
			 e ? json_string_value(json_object_get(e, "error"))
			   : c->killed ? c->kill_reason : "no result");
		json_decref(e);
		return false;
	}
	json_t *chk = json_object_get(res, "check");
	if (json_is_true(json_object_get(chk, "passed"))) {
		ok = true;
	} else {
		const char *m = json_string_value(json_object_get(chk, "message"));
		snprintf(why, n, "%s check failed: %s", c->role, m ? m : "?");
	}
	json_decref(res);
	return ok;
}
