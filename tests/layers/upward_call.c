/*
 * upward_call.c: a fixture of the link check (tests/CMakeLists.txt), linked like a file
 * of the conf room: against conf and the rooms below it, with --no-undefined. It calls
 * worker_post(), a function of the worker room far above: the link must fail with an
 * undefined reference, as it would for a real conf file doing this.
 */
#include <stdbool.h>

struct worker;
int worker_post(struct worker *w, void (*fn)(void *arg, bool run), void *arg);
int layers_fixture_upward(struct worker *w);

int
layers_fixture_upward(struct worker *w)
{
    return worker_post(w, 0, 0);
}
