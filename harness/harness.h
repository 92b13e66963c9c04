/*
 * harness.h - what every folder of the axbench harness shares: the layers
 * below it (the runtime API, the measurement library, the scenario API for
 * hosts, the references), the version numbers, and common/'s helpers.
 *
 * Each folder has its own small header for the rest: common.h (errors,
 * clocks, implementations, profiles, the runtime-list parser), proc.h
 * (child processes, child options, pinning), results.h (the result file and
 * its environment block), loadgen.h (the load generator), ergo.h
 * (ergonomics) and commands.h (the command handlers main.c dispatches to).
 */
#ifndef AXB_HARNESS_H
#define AXB_HARNESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <jansson.h>

#include "ax.h"
#include "hist.h"
#include "reference.h"
#include "scenario_host.h"
#include "stats.h"

#define AXB_VERSION "0.1.0"
#define AXB_SCHEMA_VERSION 1

#include "common.h"

#endif
