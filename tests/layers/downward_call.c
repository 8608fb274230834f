/*
 * downward_call.c: the link check's control fixture (tests/CMakeLists.txt): linked like
 * a file of the conf room, it calls down into util (the error list) and must link.
 */
#include "util/errlist.h"

int layers_fixture_downward(struct ferry_errlist *l);

int
layers_fixture_downward(struct ferry_errlist *l)
{
    ferry_errlist_add(l, "fixture.yaml", 1, 1, "%s", "a lower room is fine");
    return l->count;
}
