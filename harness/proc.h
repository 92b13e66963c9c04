/*
 * proc.h - child processes of `axbench run` and their watchdog.
 *
 * A child is /proc/self/exe run with a hidden subcommand (__server, __load,
 * __local). It writes JSON lines on descriptor 3 ({"event":"ready",...},
 * then {"event":"result",...} or {"event":"error",...}); its stdout and
 * stderr go to a memory file whose tail is kept for the result file. It
 * runs in its own process group and dies with the parent (PDEATHSIG).
 */
#ifndef AXB_PROC_H
#define AXB_PROC_H

#include "harness.h"

#define AXB_PUMP_MAX 4

struct axb_child {
	const char *role;       /* "server", "loadgen", "local" */
	pid_t pid;
	int pidfd;              /* -1 when pidfd_open is unavailable */
	int res_fd;             /* read end of the result pipe; -1 at EOF */
	int err_fd;             /* memfd with its stdout+stderr, or -1 */
	char *buf;              /* everything read from res_fd */
	size_t len, cap;
	bool exited;
	int wstatus;            /* valid when exited */
	bool killed;            /* the watchdog sent SIGKILL */
	const char *kill_reason;
};

/* Install the SIGINT/SIGTERM handlers of the parent. Returns 0 or -errno. */
int axb_proc_init(void);

/* The signal that interrupted the run (SIGINT, SIGTERM), or 0. */
int axb_proc_interrupted(void);

/* Start argv (argv[0] is only a name; /proc/self/exe is executed).
 * capture: collect its stdout+stderr instead of sharing the parent's.
 * Returns 0 or -errno. */
int axb_child_spawn(struct axb_child *c, const char *role, char *const argv[],
		    bool capture);

/* Wait, reading result lines and reaping exits, until until(arg) is true
 * (0), the monotonic deadline passes (-ETIMEDOUT) or the run is
 * interrupted (-EINTR). */
int axb_child_pump(struct axb_child *const *cs, size_t n, int64_t deadline,
		   bool (*until)(void *arg), void *arg);

/* SIGKILL the child (if running), remembering why. */
void axb_child_kill(struct axb_child *c, const char *why);

/* Wait for the child's exit and read its result pipe to the end. */
void axb_child_finish(struct axb_child *c);

void axb_child_free(struct axb_child *c);

/* The last complete JSON line whose "event" is `event` (any event when
 * NULL), as a new reference, or NULL. */
json_t *axb_child_event(const struct axb_child *c, const char *event);

/* When the child wrote something on its result pipe that is not a JSON
 * object with an "event" per line (or, once it exited, an unfinished last
 * line), a malloc'd description quoting the first such line; else NULL. */
char *axb_child_bad_output(const struct axb_child *c);

/* The last `max` bytes of its captured output (malloc'd), or NULL. */
char *axb_child_stderr(const struct axb_child *c, size_t max);

#endif
