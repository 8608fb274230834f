#!/bin/sh
# check-layers.sh: fail when a file of core includes a header of a higher room.
#
#   sh check-layers.sh CORE_DIR ROOMS STAMP FILE...
#
# ROOMS lists "folder=level=room" words, lowest level first, as core/CMakeLists.txt
# builds them from FERRY_ROOMS (the one place the order is written). Files directly in
# CORE_DIR (main.c) are the top room, `main`. Every `#include "folder/..."` must name a
# folder of the same or a lower level; a folder that is not in ROOMS is an error too, so
# a new room cannot skip the order. On success STAMP is touched (the build's proof).
# Prints, for each offence:
#   core/conf/conf.c:19: includes lua/lua-int.h, a higher room (conf < lua)
set -eu

core=$1
rooms=$2
stamp=$3
shift 3

awk -v core="$core" -v rooms="$rooms" '
BEGIN {
    n = split(rooms, words, " ")
    top = 0
    for (i = 1; i <= n; i++) {
        split(words[i], f, "=")
        level[f[1]] = f[2] + 0
        room[f[1]] = f[3]
        if (f[2] + 0 >= top)
            top = f[2] + 1
    }
    bad = 0
}
FNR == 1 {
    rel = substr(FILENAME, length(core) + 2)
    if (index(rel, "/") == 0) {
        mine = top
        myroom = "main"
    } else {
        dir = rel
        sub(/\/.*/, "", dir)
        if (dir in level) {
            mine = level[dir]
            myroom = room[dir]
        } else {
            printf "core/%s: folder %s/ is not a room of FERRY_ROOMS (core/CMakeLists.txt)\n", rel, dir
            bad = 1
            mine = -1
        }
    }
}
/^[ \t]*#[ \t]*include[ \t]*"/ {
    path = $0
    sub(/^[^"]*"/, "", path)
    sub(/".*$/, "", path)
    if (index(path, "/") == 0 || mine < 0)
        next
    dir = path
    sub(/\/.*/, "", dir)
    if (!(dir in level)) {
        printf "core/%s:%d: includes %s, which is in no room of FERRY_ROOMS\n", rel, FNR, path
        bad = 1
    } else if (level[dir] > mine) {
        printf "core/%s:%d: includes %s, a higher room (%s < %s)\n", rel, FNR, path, myroom, room[dir]
        bad = 1
    }
}
END { exit bad }
' "$@" || {
    echo "check-layers: a room may include only its own and lower rooms (core/README.md)" >&2
    exit 1
}
touch "$stamp"
