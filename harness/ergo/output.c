/* output.c - the terminal table of `axbench ergo`: the static metrics and
 * allocations per row, then the cost of the abstraction. */
#include "ergo.h"

#include <stdio.h>

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static void fmt_allocs(json_t *v, char *buf, size_t n)
{
	if (json_is_number(v)) {
		snprintf(buf, n, "%.2f", json_number_value(v));
	} else if (json_is_object(v)) {
		size_t off = 0;
		for (size_t k = 0; k < axb_ergo_nengines && off < n; k++) {
			json_t *x = json_object_get(v, axb_ergo_engines[k].name);
			off += (size_t)snprintf(buf + off, n - off, "%s", k ? "/" : "");
			if (json_is_number(x))
				off += (size_t)snprintf(buf + off, n - off, "%.2f",
							json_number_value(x));
			else
				off += (size_t)snprintf(buf + off, n - off, "-");
		}
	} else {
		snprintf(buf, n, "-");
	}
}

static int ji(json_t *row, const char *k)
{
	return (int)json_integer_value(json_object_get(row, k));
}

void axb_ergo_print_table(json_t *rows, json_t *cost, json_t *run)
{
	size_t i;
	json_t *row;
	printf("%-11s %-16s %5s %5s %8s %4s %6s %5s %4s %5s %4s %5s  %s\n", "scenario",
	       "implementation", "LOC", "funcs", "CCN s/m", "cbs", "states", "loops",
	       "IoC", "tasks", "API", "frees", "allocs/op");
	json_array_foreach(rows, i, row) {
		char ccn[32], al[96];
		if (json_object_get(row, "error")) {
			printf("%-11s %-16s  %s\n",
			       json_string_value(json_object_get(row, "scenario")),
			       json_string_value(json_object_get(row, "implementation")),
			       json_string_value(json_object_get(row, "error")));
			continue;
		}
		snprintf(ccn, sizeof ccn, "%d/%d", ji(row, "ccn_total"), ji(row, "ccn_max"));
		fmt_allocs(json_object_get(row, "allocs_per_op"), al, sizeof al);
		printf("%-11s %-16s %5d %5d %8s %4zu %6zu %5d %4d %5zu %4d %5d  %s\n",
		       json_string_value(json_object_get(row, "scenario")),
		       json_string_value(json_object_get(row, "implementation")),
		       ji(row, "loc"), ji(row, "functions"), ccn,
		       json_array_size(json_object_get(row, "callbacks")),
		       json_array_size(json_object_get(row, "states")),
		       ji(row, "dispatch_loops"), ji(row, "ioc"),
		       json_array_size(json_object_get(row, "tasks")), ji(row, "api_count"),
		       ji(row, "frees"), al);
	}
	printf("allocs/op of the ax version: on epoll/libuv/libevent/io_uring; per echoed\n"
	       "message, timer, or front request; '-' not measured (see the JSON notes)\n");
	if (!json_is_array(cost))
		return;
	printf("\ncost of the abstraction: tcp_echo, %d connections, one interleaved run "
	       "(%s profile, %d reps)\n",
	       (int)json_integer_value(json_object_get(run, "connections")),
	       json_string_value(json_object_get(run, "profile")),
	       (int)json_integer_value(json_object_get(run, "reps")));
	printf("%-9s %11s %11s %7s %7s %9s %9s %7s %7s %7s  %s\n", "engine", "ax msg/s",
	       "native", "ratio", "paired", "ax p99", "native", "ratio", "paired",
	       "cpu", ">=90%");
	json_array_foreach(cost, i, row) {
		printf("%-9s %11.0f %11.0f %7.3f %7.3f %8.0fus %8.0fus %7.3f %7.3f %7.3f  %s\n",
		       json_string_value(json_object_get(row, "engine")),
		       json_number_value(json_object_get(row, "ax_throughput")),
		       json_number_value(json_object_get(row, "native_throughput")),
		       json_number_value(json_object_get(row, "throughput_ratio")),
		       json_number_value(json_object_get(row, "throughput_ratio_paired")),
		       json_number_value(json_object_get(row, "ax_p99_ns")) / 1e3,
		       json_number_value(json_object_get(row, "native_p99_ns")) / 1e3,
		       json_number_value(json_object_get(row, "p99_ratio")),
		       json_number_value(json_object_get(row, "p99_ratio_paired")),
		       json_number_value(json_object_get(row, "cpu_ratio")),
		       json_is_true(json_object_get(row, "meets_90pct")) ? "yes" : "NO");
	}
	printf("ratios are ax / native: throughput (median of medians, and median of the\n"
	       "per-repetition pairs), p99 latency, server CPU per message\n");
}

