/* kit.c - the driver kit (kit.h): fd table, deferred completions,
 * non-blocking system-call steps, the engine_flags parser, the wake eventfd
 * and the ordered timer batch. */
#include "kit.h"
#include "san.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "theap.h"

/* ------------------------------------------------------------------ */
/* counters and configuration line                                     */
/* ------------------------------------------------------------------ */

/* Truncation keeps the line NUL-terminated and stops further text. */
void ax__kit_printf(struct ax__kit *k, const char *fmt, ...)
{
	size_t n = sizeof k->info;
	va_list ap;
	if (k->info_len + 1 >= n)
		return;
	va_start(ap, fmt);
	int w = vsnprintf(k->info + k->info_len, n - k->info_len, fmt, ap);
	va_end(ap);
	if (w > 0)
		k->info_len = k->info_len + (size_t)w < n ? k->info_len + (size_t)w
							  : n - 1;
}

/* The state's first member is its struct ax__kit. Drivers let their
 * engine count system calls, so none is reported. */
void ax__kit_stats(void *state, struct ax_driver_stats *st)
{
	const struct ax__kit *k = state;
	st->polls = k->polls;
	st->events = k->events;
	st->syscalls = 0;
}

/* As ax__kit_stats. */
const char *ax__kit_info(void *state)
{
	const struct ax__kit *k = state;
	return k->info;
}

/* ------------------------------------------------------------------ */
/* fd table                                                            */
/* ------------------------------------------------------------------ */

/* An empty table: the first get allocates. */
void ax__fdtab_init(struct ax__fdtab *t, size_t elem)
{
	t->v = NULL;
	t->n = 0;
	t->elem = elem;
}

/* Release the array; slots' contents are the owner's. */
void ax__fdtab_fini(struct ax__fdtab *t)
{
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

/* Grow by doubling (from 256 slots) so that a run of new descriptors costs
 * O(1) amortised, and zero the new slots. */
void *ax__fdtab_grow(struct ax__fdtab *t, int fd)
{
	if (fd < 0)
		return NULL;
	if ((size_t)fd >= t->n) {
		size_t n = t->n ? t->n : 256;
		while (n <= (size_t)fd)
			n *= 2;
		char *v = realloc(t->v, n * t->elem);
		if (!v)
			return NULL;
		memset(v + t->n * t->elem, 0, (n - t->n) * t->elem);
		t->v = v;
		t->n = n;
	}
	return t->v + (size_t)fd * t->elem;
}

/* Forget fd's state (its number may come back for a new descriptor). */
void ax__fdtab_clear(struct ax__fdtab *t, int fd)
{
	void *s = ax__fdtab_find(t, fd);
	if (s)
		memset(s, 0, t->elem);
}

/* ------------------------------------------------------------------ */
/* deferred completions                                                */
/* ------------------------------------------------------------------ */

/* Append op with its result; drv_prev pointing at op itself marks it
 * queued for ax__deferred. */
void ax__defer(struct ax__defq *q, struct ax_op *op, int64_t res)
{
	op->res = res;
	op->drv_next = NULL;
	op->drv_prev = op;
	if (q->tail)
		q->tail->drv_next = op;
	else
		q->head = op;
	q->tail = op;
}

/* Detach the queue first, so that completions queued by the hooks run at
 * the next flush and a flush always ends. */
int ax__defq_flush(struct ax__defq *q)
{
	struct ax_op *op = q->head;
	int n = 0;
	q->head = q->tail = NULL;
	while (op) {
		struct ax_op *next = op->drv_next;
		op->drv_next = op->drv_prev = NULL;
		ax_op_complete(op, op->res);
		op = next;
		n++;
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* op list                                                             */
/* ------------------------------------------------------------------ */

/* Newest first: removal is O(1) wherever op is. */
void ax__oplist_add(struct ax__oplist *l, struct ax_op *op)
{
	op->drv_prev = NULL;
	op->drv_next = l->head;
	if (l->head)
		l->head->drv_prev = op;
	l->head = op;
}

/* Unlinked ops have both links NULL. */
void ax__oplist_del(struct ax__oplist *l, struct ax_op *op)
{
	if (op->drv_prev)
		op->drv_prev->drv_next = op->drv_next;
	else
		l->head = op->drv_next;
	if (op->drv_next)
		op->drv_next->drv_prev = op->drv_prev;
	op->drv_next = op->drv_prev = NULL;
}

/* ------------------------------------------------------------------ */
/* non-blocking system-call steps                                      */
/* ------------------------------------------------------------------ */

/* The steps enter the kernel through syscall(2) rather than libc's
 * read/send/accept4 wrappers: those are pthread cancellation points, and
 * in a multi-threaded process each call switches asynchronous
 * cancellation on and off around the system call (about 30 user-space
 * instructions, a third of an echoed message's libc cost). These calls
 * never block, and no runtime thread is cancelled with pthread_cancel
 * (ax_cancel is the runtime's own), so the points served nothing. errno
 * is set as by the wrappers. */
static inline ssize_t kit_read(int fd, void *buf, size_t n)
{
	return syscall(SYS_read, fd, buf, n);
}

static inline ssize_t kit_write(int fd, const void *buf, size_t n)
{
	return syscall(SYS_write, fd, buf, n);
}

static inline ssize_t kit_send(int fd, const void *buf, size_t n, int flags)
{
	return syscall(SYS_sendto, fd, buf, n, flags, NULL, 0);
}

static inline int kit_accept4(int fd, int flags)
{
	return (int)syscall(SYS_accept4, fd, NULL, NULL, flags);
}

/* ECONNABORTED is a connection gone before we took it: nothing to report,
 * take the next one. */
int ax__nb_accept(struct ax_op *op)
{
	for (;;) {
		int fd = kit_accept4(op->fd, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			op->res = fd;
			return 1;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN)
			return 0;
		op->res = -errno;
		return 1;
	}
}

/* read(2) serves sockets, pipes and ttys alike. */
int ax__nb_read(struct ax_op *op)
{
	for (;;) {
		ssize_t n = kit_read(op->fd, op->buf, op->len);
		if (n >= 0) {
			op->res = n;
			return 1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return 0;
		op->res = -errno;
		return 1;
	}
}

/* send(2) for MSG_NOSIGNAL; a pipe answers ENOTSOCK and gets write(2)
 * (SIGPIPE is blocked on the runtime thread, [AX-TCP-7]). */
int ax__nb_write(struct ax_op *op)
{
	const char *p = op->buf;
	uint64_t *sent = &op->drv_u64[AX__OP_SENT];
	while (*sent < op->len) {
		ssize_t n = kit_send(op->fd, p + *sent, op->len - *sent, MSG_NOSIGNAL);
		if (n < 0 && errno == ENOTSOCK)
			n = kit_write(op->fd, p + *sent, op->len - *sent);
		if (n >= 0) {
			*sent += (uint64_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return 0;
		op->res = -errno;
		return 1;
	}
	op->res = (int64_t)op->len;
	return 1;
}

/* A refused loopback connect fails at once: that is a result, not a
 * failure to start. EINTR leaves the connect going on, as EINPROGRESS. */
int ax__nb_connect_start(struct ax_op *op)
{
	int fd = socket(op->addr.ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	op->fd = fd;
	if (connect(fd, (struct sockaddr *)&op->addr, op->addrlen) == 0) {
		op->res = fd;
		return 1;
	}
	if (errno == EINPROGRESS || errno == EINTR)
		return 0;
	op->res = -errno;
	close(fd);
	op->fd = -1;
	return 1;
}

/* SO_ERROR tells how the connect ended. */
int ax__nb_connect_finish(struct ax_op *op)
{
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return 0;
	if (err) {
		close(op->fd);
		op->res = -err;
	} else {
		op->res = op->fd;
	}
	return 1;
}

/* One switch for the readiness callbacks of every engine. */
int ax__nb_step(struct ax_op *op)
{
	switch (op->kind) {
	case AX_OP_ACCEPT: return ax__nb_accept(op);
	case AX_OP_READ: return ax__nb_read(op);
	case AX_OP_WRITE: return ax__nb_write(op);
	case AX_OP_CONNECT: return ax__nb_connect_finish(op);
	default: return 0;
	}
}

/* Both are taken off before either completes: a completion hook may
 * start the next op on the same descriptor. */
int ax__sides_fail(struct ax__sides *s, int64_t res)
{
	struct ax_op *rd = s->rd, *wr = s->wr;
	s->rd = s->wr = NULL;
	if (rd)
		ax_op_complete(rd, res);
	if (wr)
		ax_op_complete(wr, res);
	return (rd != NULL) + (wr != NULL);
}

/* ------------------------------------------------------------------ */
/* engine_flags                                                        */
/* ------------------------------------------------------------------ */

/* Items are copied into a local buffer so that fn gets NUL-terminated
 * strings; the runtime keeps at most 127 bytes of flags anyway. */
int ax__flags_each(const char *flags,
		   int (*fn)(void *ctx, const char *key, const char *val),
		   void *ctx)
{
	char buf[128];
	while (flags && *flags) {
		size_t len = strcspn(flags, ",");
		if (len >= sizeof buf)
			return -EINVAL;
		if (len > 0) {
			memcpy(buf, flags, len);
			buf[len] = '\0';
			char *eq = strchr(buf, '=');
			if (!eq)
				return -EINVAL;
			*eq = '\0';
			int r = fn(ctx, buf, eq + 1);
			if (r < 0)
				return r;
		}
		flags += len;
		if (*flags == ',')
			flags++;
	}
	return 0;
}

/* Exact, case-sensitive match, as the flags are documented. */
int ax__flag_pick(const char *val, const char *const *names)
{
	for (int i = 0; names[i]; i++)
		if (!strcmp(val, names[i]))
			return i;
	return -EINVAL;
}

/* ------------------------------------------------------------------ */
/* wake                                                                */
/* ------------------------------------------------------------------ */

/* Nothing pending at first: the first wake writes. */
int ax__wake_open(struct ax__wake *w, bool nonblock)
{
	atomic_init(&w->pending, 0);
	w->fd = eventfd(0, EFD_CLOEXEC | (nonblock ? EFD_NONBLOCK : 0));
	return w->fd < 0 ? -errno : 0;
}

/* The engine has stopped watching it. */
void ax__wake_close(struct ax__wake *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

/* Only EAGAIN (the counter at its maximum) can fail, and then a wake is
 * pending anyway. */
void ax__wake_signal(struct ax__wake *w)
{
	uint64_t one = 1;
	if (atomic_exchange(&w->pending, 1))
		return;
	while (write(w->fd, &one, sizeof one) < 0 && errno == EINTR)
		;
}

/* EAGAIN: already drained. */
void ax__wake_drain(struct ax__wake *w)
{
	uint64_t v;
	while (read(w->fd, &v, sizeof v) < 0 && errno == EINTR)
		;
	ax__wake_consumed(w);
}

/* ------------------------------------------------------------------ */
/* timer batch                                                         */
/* ------------------------------------------------------------------ */

/* Doubling from 4, to at least need. */
int ax__tbatch_reserve(struct ax__tbatch *b, size_t need)
{
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap * 2 : 4;
	while (cap < need)
		cap *= 2;
	struct ax_timer **v = realloc(b->v, cap * sizeof *v);
	if (!v)
		return -ENOMEM;
	b->v = v;
	b->cap = cap;
	return 0;
}

/* Drop b's holes and renumber; with sort, order by (deadline, seq)
 * (arrival order is usually that order already: then no sort). */
static void tbatch_compact(struct ax__tbatch *b, bool sort)
{
	size_t n = 0;
	bool sorted = true;
	for (size_t i = 0; i < b->n; i++) {
		struct ax_timer *t = b->v[i];
		if (!t)
			continue;
		if (n && ax__timer_before(t, b->v[n - 1]))
			sorted = false;
		b->v[n++] = t;
	}
	b->n = n;
	if (sort && !sorted)
		qsort(b->v, n, sizeof *b->v, ax__timer_cmp);
	for (size_t i = 0; i < n; i++)
		b->v[i]->drv_index = i;
}

/* Holes left by cancels are reused before the array grows. */
int ax__tbatch_push(struct ax__tbatch *b, struct ax_timer *t)
{
	if (b->n == b->cap) {
		if (b->n && b->live <= b->n / 2) {
			tbatch_compact(b, false);
		} else {
			int r = ax__tbatch_reserve(b, b->n + 1);
			if (r < 0)
				return r;
		}
	}
	t->drv_index = b->n;
	b->v[b->n++] = t;
	b->live++;
	return 0;
}

/* A hole keeps the other timers' slots valid. */
void ax__tbatch_remove(struct ax__tbatch *b, struct ax_timer *t)
{
	if (!ax__tbatch_holds(b, t))
		return;
	b->v[t->drv_index] = NULL;
	b->live--;
}

/* Each slot is emptied before its fire, so a fire that removes a timer
 * already fired (or itself) finds nothing. */
int ax__tbatch_fire(struct ax__tbatch *b)
{
	int fired = 0;
	tbatch_compact(b, true);
	for (size_t i = 0; i < b->n; i++) {
		struct ax_timer *t = b->v[i];
		if (!t)
			continue;
		b->v[i] = NULL;
		b->live--;
		t->fire(t);
		fired++;
	}
	b->n = 0;
	b->live = 0;
	return fired;
}

/* The timers are the core's. */
void ax__tbatch_fini(struct ax__tbatch *b)
{
	free(b->v);
	b->v = NULL;
	b->n = b->cap = b->live = 0;
}

bool ax__kit_under_valgrind(void)
{
	return ax__vg_running();
}
