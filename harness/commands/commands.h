/*
 * commands.h - the command handlers main.c's table dispatches to, one file
 * of commands/ each. A handler gets argv with argv[0] the command's name
 * and returns the process's exit status (bad input exits with status 2
 * itself).
 */
#ifndef AXB_COMMANDS_H
#define AXB_COMMANDS_H

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
int axb_cmd_version(int argc, char **argv);    /* version.c */

#endif
