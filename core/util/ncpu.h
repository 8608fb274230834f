/* ncpu.h: the CPUs this process may run on (ncpu.c). */
#ifndef FERRY_UTIL_NCPU_H
#define FERRY_UTIL_NCPU_H

/* The number of CPUs in this process's affinity mask (at least 1). */
unsigned ferry_ncpu(void);

/* The number of the i-th CPU (modulo their count) in that mask, or -1. */
int ferry_cpu_nth(unsigned i);

#endif
