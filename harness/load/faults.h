/*
 * faults.h - the load generator's side of the fault scenarios
 * (tcp_echo_faults, http_plaintext_faults; docs/harness.md, "Fault
 * scenarios"). Before the well-behaved clients connect, lgf_start joins
 * the server's private network namespace and impairs it (network faults)
 * or starts the bad clients (client faults), in a companion process of
 * its own so that its CPU is not the load generator's; lgf_stop ends it
 * after the measured phase and lgf_check says whether the fault really
 * acted. The engine calls nothing else.
 */
#ifndef AXB_LOAD_FAULTS_H
#define AXB_LOAD_FAULTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "harness.h"

struct lgf {
	enum axb_fault fault;
	enum axb_netfault_mech mech;
	char spec[256];           /* what exactly is impaired, in words */
	int64_t delay_ns, jitter_ns;
	int64_t duration_ns;      /* the measured phase */
	int bad_clients;
	pid_t pid;                /* the companion, 0 when none (or reaped) */
	int rfd;                  /* its report pipe */
	long long retrans0, retrans1; /* namespace's TCP RetransSegs */
	json_t *report;           /* the companion's report, after lgf_stop */
	struct rusage ru;         /* the companion's CPU */
	char died[160];           /* how the companion ended, when badly */
};

/* Set f up for the cell (scenario sc, parameter values) and start the
 * fault: a network fault needs server_pid (its namespace). Returns 0
 * (also when the cell has no fault) or -errno with the reason in err. */
int lgf_start(struct lgf *f, const struct axs_scenario *sc, const int64_t *values,
	      pid_t server_pid, const struct sockaddr_storage *target,
	      socklen_t tlen, char *err, size_t n);

/* End the companion and collect its report; idempotent. */
void lgf_stop(struct lgf *f);

/* After lgf_stop: whether the fault acted as asked. rtt: the latency
 * histogram, each value at least the request's round trip (closed loop:
 * the round trip; open loop: from the intended send time, censored ones
 * at least the drain). false with the reason in why. */
bool lgf_check(const struct lgf *f, const struct axm_hist *rtt, char *why, size_t n);

/* The result's "fault" block (NULL when the cell has no fault), and the
 * fault's metrics added to metrics. */
json_t *lgf_json(const struct lgf *f, json_t *metrics);

/* Free what lgf_start and lgf_stop kept (kills a companion still running). */
void lgf_free(struct lgf *f);

#endif
