/*
 * commands.h - the command handlers main.c's table dispatches to, one file
 * of commands/ each. A handler gets argv with argv[0] the command's name
 * and returns the process's exit status (bad input exits with status 2
 * itself).
 */
#ifndef AXB_COMMANDS_H
#define AXB_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int axb_cmd_list(int argc, char **argv);       /* list.c */
int axb_cmd_run(int argc, char **argv);        /* run.c */
int axb_cmd_serve(int argc, char **argv);      /* serve.c: serve, __server */
int axb_cmd_local(int argc, char **argv);      /* serve.c: __local */
int axb_cmd_load(int argc, char **argv);       /* load/loadgen.c: load, __load */
int axb_cmd_instr(int argc, char **argv);      /* instr.c: run --measure instructions */
int axb_cmd_instr_child(int argc, char **argv); /* instr.c: __instr */
int axb_cmd_conform(int argc, char **argv);    /* conform.c */
int axb_cmd_case(int argc, char **argv);       /* conform.c: __case */
int axb_cmd_ergo(int argc, char **argv);       /* ergo.c */
int axb_cmd_reports(int argc, char **argv);    /* reports.c: compare, report, record */
/* The path of reports/axbench-reports (the Python commands) into path. */
void axb_reports_launcher(char *path, size_t n);
int axb_cmd_version(int argc, char **argv);    /* version.c */
int axb_cmd_targets(int argc, char **argv);    /* targets.c: targets [--build] */

/* target_serve.c: the server side of scenario sc on an external target
 * (im->kind == AXB_IMPL_EXT), for serve.c's server_main once the options
 * are validated. */
struct axb_child_opts;
struct axb_impl;
struct axs_scenario;
int axb_target_serve(const struct axb_child_opts *o, const struct axb_impl *im,
		     const struct axs_scenario *sc, const int64_t *values,
		     bool foreground);

#endif
