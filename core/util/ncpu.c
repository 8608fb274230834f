/*
 * ncpu.c: how many CPUs "auto" means. The CPUs this process may run on (its affinity
 * mask: taskset, a cpuset, a container's --cpuset-cpus), not the machine's count: more
 * workers than usable CPUs only take turns on them.
 */
#include <sched.h>
#include <unistd.h>

#include "util/ncpu.h"

unsigned
ferry_ncpu(void)
{
    cpu_set_t set;
    long      n;

    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

int
ferry_cpu_nth(unsigned i)
{
    cpu_set_t set;
    int       count, seen = 0;

    if (sched_getaffinity(0, sizeof(set), &set) != 0 || (count = CPU_COUNT(&set)) <= 0)
        return -1;
    i %= (unsigned)count;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set))
            continue;
        if ((unsigned)seen++ == i)
            return cpu;
    }
    return -1;
}
