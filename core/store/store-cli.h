/*
 * store-cli.h: the `ferry store` command (import | export): destination files into etcd
 * and back, or Kubernetes Services for the destinations in etcd. main.c hands it the
 * command line; the command runs its own loop, blocks the process until it is done,
 * and prints names, never a property value.
 */
#ifndef FERRY_STORE_CLI_H
#define FERRY_STORE_CLI_H

#include <stdio.h>

/* argv[0] is "store", then the subcommand, options and operands in any order (as
 * getopt_long permutes them). Call after evthread_use_pthreads(). Returns the exit
 * code: 0 done; 1 etcd or file I/O failed, or some destination was skipped; 2 bad
 * usage, configuration or destinations (nothing written). */
int  ferry_store_cli_main(int argc, char **argv);
/* Its lines of `ferry --help` (also printed by `ferry store --help`). */
void ferry_store_cli_usage(FILE *fp);

#endif
