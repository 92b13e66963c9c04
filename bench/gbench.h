/*
 * gbench.h - a small C API over Google Benchmark (C++), so that benchmarks
 * of C code are written in C: register a function, loop over the
 * iterations the library asks for, record counters; the library picks the
 * iteration counts, repeats, and reports (console and --benchmark_out JSON).
 *
 * A benchmark function runs its untimed setup, then
 *
 *     while (gb_loop(st))
 *             for (uint64_t i = 0; i < gb_iterations(st); i++)
 *                     work();
 *
 * then its untimed teardown: the timer runs exactly while the loop body
 * does (one batch of gb_iterations(st) iterations, no per-iteration call
 * into the library). The function may be called several times per
 * benchmark, with growing iteration counts.
 */
#ifndef AXB_GBENCH_H
#define AXB_GBENCH_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gb_state gb_state;
typedef void (*gb_fn)(gb_state *st, void *arg);

/* Register benchmark `name` (copied) running fn(st, arg); arg is kept until
 * the process ends. Returns 0 or -ENOMEM. Call before gb_main. */
int gb_register(const char *name, gb_fn fn, void *arg);

/* Add a key/value pair to the "context" block of the reports (copied). */
void gb_context(const char *key, const char *value);

/* True exactly once per call of the benchmark function: the timed batch
 * starts now; the second call stops the timer and returns false. */
bool gb_loop(gb_state *st);

/* The iterations the library asked for in this call. */
uint64_t gb_iterations(const gb_state *st);

/* Stop and restart the timer inside the loop (costly: microseconds). */
void gb_pause(gb_state *st);
void gb_resume(gb_state *st);

/* Report `n` items processed in total (an items/s rate). */
void gb_items(gb_state *st, int64_t n);

/* A user counter: `value` in total, reported per iteration when
 * per_iteration (else as is). */
void gb_counter(gb_state *st, const char *name, double value, bool per_iteration);

/* A label shown beside the result (copied). */
void gb_label(gb_state *st, const char *label);

/* Give up this benchmark with a message; call before gb_loop, or after it
 * returned false. */
void gb_skip(gb_state *st, const char *msg);

/* Parse the library's --benchmark_* options, run the registered
 * benchmarks the filter selects, report. Returns 0, or 2 when an option
 * was not understood. */
int gb_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
