/*
 * kit.h - the driver kit: the machinery every engine driver needs and none
 * should write again. It names no engine and includes no engine header
 * (the timer heap, theap.h, is its sibling).
 *
 *   fd table      a growable array of per-descriptor slots of any size;
 *   deferred      a FIFO of completions whose result is known inside submit
 *                 (which must not complete) and delivered by the next poll;
 *   op list       in-flight ops a driver must find again (O(1) removal);
 *   nb steps      the non-blocking system calls of a readiness engine:
 *                 accept, read, write-some-then-more, connect start/finish,
 *                 and the ops waiting on a descriptor's two sides;
 *   flags         the "key=value,..." parser of ax_rt_opts.engine_flags;
 *   wake          an eventfd that other threads write to end a blocking
 *                 poll, one write per wake the loop consumed;
 *   timer batch   timers collected in any order and fired in (deadline,
 *                 seq) order ([AX-TIME-2]), for engines whose own timers
 *                 do not keep that order;
 *   counters      the poll and event counts and the configuration line
 *                 every driver reports (the vtable's stats, engine_info);
 *   clock         drivers read time with ax_now() (CLOCK_MONOTONIC, never
 *                 cached) and keep no clock of their own.
 *
 * What stays in a driver: its engine's objects (events, handles, SQEs),
 * what a slot of its fd table holds, when it waits and how it is woken.
 * The "one read and one write per descriptor" rule of ax.h ([AX-TCP-9]) is
 * not a driver's job: the core (io.c) checks it before any driver sees the
 * operation, so a driver never receives a second read or write on a side
 * that is already pending.
 *
 * Public for drivers built out of tree: installed with ax.h, ax_driver.h
 * and theap.h, its functions exported by axbench to the drivers it loads
 * (runtimes/driver.exports; a new function goes there too, a changed one
 * bumps AX_DRIVER_ABI).
 */
#ifndef AX_KIT_H
#define AX_KIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ax_driver.h"

/* ------------------------------------------------------------------ */
/* counters and configuration line                                     */
/* ------------------------------------------------------------------ */

/* The kit's part of a driver's state, its FIRST member, so that
 * ax__kit_stats and ax__kit_info serve as the vtable's stats and
 * engine_info directly. */
struct ax__kit {
	uint64_t polls;   /* engine waits / loop iterations */
	uint64_t events;  /* completions and timer fires delivered */
	char info[640];   /* one line: the engine configuration in use */
	size_t info_len;
};

/* Append printf-style text to k->info; text past its end is dropped. */
void ax__kit_printf(struct ax__kit *k, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The vtable's stats and engine_info for a state that starts with a
 * struct ax__kit. */
void ax__kit_stats(void *state, struct ax_driver_stats *st);

/* Whether the process runs under valgrind, for the rare engine that must
 * behave differently there (io_uring: see its URING_VALGRIND_WAIT_NS). */
bool ax__kit_under_valgrind(void);
const char *ax__kit_info(void *state);

/* ------------------------------------------------------------------ */
/* fd table                                                            */
/* ------------------------------------------------------------------ */

/* Slots of `elem` bytes indexed by descriptor. Slots appear zeroed; the
 * array may move when it grows, so a driver whose engine keeps pointers to
 * its per-fd state stores pointers in the slots (elem = sizeof(void *)). */
struct ax__fdtab {
	char *v;
	size_t n;     /* slots allocated */
	size_t elem;  /* bytes per slot */
};

/* Initialise an empty table of elem-byte slots. Never fails. */
void ax__fdtab_init(struct ax__fdtab *t, size_t elem);

/* Free the array (not what slots point to). */
void ax__fdtab_fini(struct ax__fdtab *t);

/* fd's slot, or NULL when fd < 0 or fd has no slot yet. O(1), never
 * allocates: the lookup for hot paths. */
static inline void *ax__fdtab_find(const struct ax__fdtab *t, int fd)
{
	return fd >= 0 && (size_t)fd < t->n ? t->v + (size_t)fd * t->elem : NULL;
}

/* Grow t so that fd has a slot (doubling, new slots zeroed) and return
 * it; NULL when fd < 0 or on ENOMEM. The slow path of ax__fdtab_get. */
void *ax__fdtab_grow(struct ax__fdtab *t, int fd);

/* fd's slot, growing the table when needed. Returns NULL when fd < 0 or
 * on ENOMEM. Inline: a submit looks its descriptor up on every wait. */
static inline void *ax__fdtab_get(struct ax__fdtab *t, int fd)
{
	return fd >= 0 && (size_t)fd < t->n ? t->v + (size_t)fd * t->elem
					     : ax__fdtab_grow(t, fd);
}

/* Zero fd's slot if it has one. */
void ax__fdtab_clear(struct ax__fdtab *t, int fd);

/* ------------------------------------------------------------------ */
/* deferred completions                                                */
/* ------------------------------------------------------------------ */

/* Completions known at submit time, delivered in submission order by the
 * driver's next poll (the contract forbids completing inside submit). While
 * an op is queued the kit owns its drv_next and drv_prev. */
struct ax__defq {
	struct ax_op *head, *tail;
};

/* Queue op to complete with res at the next ax__defq_flush. */
void ax__defer(struct ax__defq *q, struct ax_op *op, int64_t res);

/* True when op is queued (its real result is known: a cancel must leave it
 * alone, [AX-CANCEL-3]). O(1). */
static inline bool ax__deferred(const struct ax_op *op)
{
	return op->drv_prev == op;
}

/* True when something waits for the next flush (the poll must not block). */
static inline bool ax__defq_pending(const struct ax__defq *q)
{
	return q->head != NULL;
}

/* Complete the ops queued now, in order; ops a completion queues wait for
 * the next flush. Returns the number completed. */
int ax__defq_flush(struct ax__defq *q);

/* ------------------------------------------------------------------ */
/* op list                                                             */
/* ------------------------------------------------------------------ */

/* Ops linked through drv_next and drv_prev (an op is on one list, or on
 * the deferred queue, at a time), newest first. */
struct ax__oplist {
	struct ax_op *head;
};

/* Add op at the head. */
void ax__oplist_add(struct ax__oplist *l, struct ax_op *op);

/* Take op (which is on l) off l. O(1). */
void ax__oplist_del(struct ax__oplist *l, struct ax_op *op);

/* ------------------------------------------------------------------ */
/* non-blocking system-call steps                                      */
/* ------------------------------------------------------------------ */

/* Each step makes the op's system call once more (EINTR retried) and
 * returns 1 when the op is finished, with op->res set to its result, or 0
 * when it must wait for readiness (EAGAIN / EINPROGRESS). They never
 * complete the op: the caller does, or the core on the fast path. */

/* Scratch word holding the bytes of a WRITE already sent (the core zeroes
 * drv_u64 before every op), shared by ax__nb_write and drivers that send
 * their own way. */
#define AX__OP_SENT 0

/* accept4 a connection on op->fd (non-blocking, close-on-exec). A
 * connection reset while queued (ECONNABORTED) is skipped. Any other
 * error, -EMFILE included, finishes the op and leaves the queue alone
 * ([AX-TCP-8]). */
int ax__nb_accept(struct ax_op *op);

/* read(2) up to op->len bytes: a count, 0 at EOF, or -errno. */
int ax__nb_read(struct ax_op *op);

/* Send the rest of op->buf (from drv_u64[AX__OP_SENT]) until all of it is
 * out (res = len) or an error (res = -errno); on a full socket keep the
 * progress and return 0. send(2) with MSG_NOSIGNAL, write(2) for a
 * descriptor that is not a socket ([AX-TCP-4], [AX-TCP-5]). */
int ax__nb_write(struct ax_op *op);

/* Create op's socket (non-blocking, close-on-exec) and start connecting to
 * op->addr. Returns -errno when no socket could be made (the op is not
 * started), 1 when the connect finished at once (res = the socket, or
 * -errno with the socket closed and op->fd = -1), or 0 when it is in
 * progress: op->fd is the socket, to wait on for writability. */
int ax__nb_connect_start(struct ax_op *op);

/* The connecting socket op->fd became writable or failed: 1 with res = the
 * socket, or -errno with the socket closed; 0 while still in progress. */
int ax__nb_connect_finish(struct ax_op *op);

/* The step that moves op on once its descriptor is ready: accept, read,
 * write, or connect finish. */
int ax__nb_step(struct ax_op *op);

/* The ops waiting for readiness on one descriptor: READ or ACCEPT on the
 * read side, WRITE or CONNECT on the write side. */
struct ax__sides {
	struct ax_op *rd, *wr;
};

/* The side op waits on. */
static inline struct ax_op **ax__side(struct ax__sides *s,
				      const struct ax_op *op)
{
	return op->kind == AX_OP_READ || op->kind == AX_OP_ACCEPT ? &s->rd
								   : &s->wr;
}

/* Take op off its side: true when it was waiting there. */
static inline bool ax__side_take(struct ax__sides *s, const struct ax_op *op)
{
	struct ax_op **p = ax__side(s, op);
	if (*p != op)
		return false;
	*p = NULL;
	return true;
}

/* Empty both sides, completing what waited with res (ax_close: -EBADF).
 * Returns the number completed. */
int ax__sides_fail(struct ax__sides *s, int64_t res);

/* ------------------------------------------------------------------ */
/* engine_flags                                                        */
/* ------------------------------------------------------------------ */

/* Call fn(ctx, key, value) for every "key=value" of the comma-separated
 * flags (NULL or "" for none; empty items are skipped). Stops at the first
 * error. Returns 0, -EINVAL for an item without '=' or longer than the
 * runtime keeps (127 bytes), or fn's negative result. */
int ax__flags_each(const char *flags,
		   int (*fn)(void *ctx, const char *key, const char *val),
		   void *ctx);

/* The index of val in the NULL-terminated list names, or -EINVAL. */
int ax__flag_pick(const char *val, const char *const *names);

/* ------------------------------------------------------------------ */
/* wake                                                                */
/* ------------------------------------------------------------------ */

/* An eventfd the engine watches (an fd event, a ring read). Concurrent
 * wakes cost one write(2) until the loop consumes the counter: `pending`
 * stays set from the first write until ax__wake_consumed. */
struct ax__wake {
	int fd;
	atomic_int pending;
};

/* Create the eventfd (close-on-exec; non-blocking unless the engine reads
 * it itself, as a ring does). Returns 0 or -errno. */
int ax__wake_open(struct ax__wake *w, bool nonblock);

/* Close the eventfd. */
void ax__wake_close(struct ax__wake *w);

/* Make the engine's next (or current) wait return. Thread-safe. */
void ax__wake_signal(struct ax__wake *w);

/* The loop consumed the counter (the engine read it): later wakes write
 * again. A wake that still found `pending` set needs no write: the core
 * looks at its inbox after the poll returns. */
static inline void ax__wake_consumed(struct ax__wake *w)
{
	atomic_store(&w->pending, 0);
}

/* Read the counter of a non-blocking eventfd, then ax__wake_consumed
 * (in that order: clearing first would let a racing wake's write be
 * drained with the flag left set, suppressing every later wake). */
void ax__wake_drain(struct ax__wake *w);

/* ------------------------------------------------------------------ */
/* timer batch                                                         */
/* ------------------------------------------------------------------ */

/* Timers in arrival order, fired in (deadline, seq) order. A timer in a
 * batch has t->drv_index = its slot; removing it leaves a hole. */
struct ax__tbatch {
	struct ax_timer **v;
	size_t n, cap;
	size_t live;  /* timers in the batch (n minus holes) */
};

/* Make room for `need` timers in all, so that as many pushes cannot fail.
 * Returns 0 or -ENOMEM. */
int ax__tbatch_reserve(struct ax__tbatch *b, size_t need);

/* Add t (reusing holes when they are half the batch). Returns 0 or
 * -ENOMEM. */
int ax__tbatch_push(struct ax__tbatch *b, struct ax_timer *t);

/* True when t is in b. O(1). */
static inline bool ax__tbatch_holds(const struct ax__tbatch *b,
				    const struct ax_timer *t)
{
	return t->drv_index < b->n && b->v[t->drv_index] == t;
}

/* Take t out of b if it is there. */
void ax__tbatch_remove(struct ax__tbatch *b, struct ax_timer *t);

/* Forget every timer of b (none fires); the array is kept. */
static inline void ax__tbatch_clear(struct ax__tbatch *b)
{
	b->n = b->live = 0;
}

/* Fire every timer of b in (deadline, seq) order and leave b empty. A
 * fire may remove timers still waiting in b (they do not fire) but must
 * not push into b. Returns the number fired. */
int ax__tbatch_fire(struct ax__tbatch *b);

/* Free the array. */
void ax__tbatch_fini(struct ax__tbatch *b);

#endif
