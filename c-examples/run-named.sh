#!/bin/sh
# run-named.sh: runs the two pairs of separately started programs, the
# course's (a FIFO in a directory) and rawipc's (a name, a channel handed
# over), compares what they print, then kills each server with kill -9 and
# shows what it leaves behind. The Makefile's `run` and `check` call it.
#
# Usage: run-named.sh show|check BUILD_DIR
#   show   prints both outputs side by side and what each leaves behind
#   check  prints one line per finding; exits 1 if the outputs differ, if
#          the rawipc server leaves anything behind or cannot restart at
#          once, or if the course server does not leave its FIFO behind
set -u

mode=$1 build=$2
failed=0
dir=$(mktemp -d "${TMPDIR:-/tmp}/named-course.XXXXXX")
name="example-$$"
uid=$(id -u)
trap 'rm -rf "$dir"' EXIT

say() { printf '%s\n' "$*"; }

# Waits (up to 5 s) until `test` succeeds.
wait_for() {
    i=0
    while ! eval "$1"; do
        i=$((i + 1))
        [ $i -gt 500 ] && { say "gave up waiting for: $1"; return 1; }
        sleep 0.01
    done
}

# Whether a socket listens under rawipc's abstract name for NAME.
listening() { grep -q "@rawipc/$uid/$1\$" /proc/net/unix; }

# --- the two programs of each pair, started separately -------------------
"$build/named_course_server" "$dir" > "$dir.server.out" 2>&1 &
server=$!
wait_for "[ -p '$dir/demo.fifo' ]"
"$build/named_course_client" "$dir" > "$dir.client.out" 2>&1 || { say "named_course_client failed"; failed=1; }
wait $server || { say "named_course_server failed"; failed=1; }

"$build/named_rawipc_server" "$name" > "$dir.rserver.out" 2>&1 &
server=$!
wait_for "listening $name"
"$build/named_rawipc_client" "$name" > "$dir.rclient.out" 2>&1 || { say "named_rawipc_client failed"; failed=1; }
wait $server || { say "named_rawipc_server failed"; failed=1; }

same=yes
cmp -s "$dir.server.out" "$dir.rserver.out" || same=no
cmp -s "$dir.client.out" "$dir.rclient.out" || same=no
[ $same = yes ] || failed=1

# --- kill -9 each server while it waits for a client ---------------------
"$build/named_course_server" "$dir" > /dev/null 2>&1 &
server=$!
wait_for "[ -p '$dir/demo.fifo' ]"
kill -9 $server; wait $server 2>/dev/null
course_left=$(cd "$dir" && ls)
course_restart=$("$build/named_course_server" "$dir" 2>&1)

"$build/named_rawipc_server" "$name" > /dev/null 2>&1 &
server=$!
wait_for "listening $name"
kill -9 $server; wait $server 2>/dev/null
rawipc_left=$(grep "@rawipc/$uid/$name\$" /proc/net/unix)
"$build/named_rawipc_server" "$name" > /dev/null 2>&1 &
server=$!
if wait_for "listening $name"; then rawipc_restart="listens again at once"; else rawipc_restart="cannot listen again"; fi
kill -9 $server; wait $server 2>/dev/null

if [ "$mode" = show ]; then
    printf '\n=== two programs started separately: named_course_* (FIFO) | named_rawipc_* (name) ===\n'
    for who in server client; do
        r=$(echo $who | sed 's/^/r/')
        { echo "named_course_$who|named_rawipc_$who"; paste -d'|' "$dir.$who.out" "$dir.$r.out"; } |
            awk -F'|' '{ printf "%-62s | %s\n", $1, $2 }'
    done
    printf -- '--> %s\n' "$([ $same = yes ] && echo "same output" || echo "OUTPUTS DIFFER")"
    printf '\n=== after kill -9 of each server ===\n'
    say "course: left in $dir: ${course_left:-nothing}"
    say "course: a restarted server says: ${course_restart:-nothing}"
    say "rawipc: left in /proc/net/unix under @rawipc/$uid/$name: ${rawipc_left:-nothing}"
    say "rawipc: a restarted server $rawipc_restart"
else
    printf '%-20s %s\n' "named" "$([ $same = yes ] && echo "same output" || echo "OUTPUTS DIFFER")"
fi

[ "$course_left" = demo.fifo ] || { say "named: the course server was to leave demo.fifo, left: '$course_left'"; failed=1; }
[ -z "$rawipc_left" ] || { say "named: the rawipc server left its name behind"; failed=1; }
[ "$rawipc_restart" = "listens again at once" ] || { say "named: the rawipc server could not restart at once"; failed=1; }
[ "$mode" = check ] && printf '%-20s %s\n' "named (kill -9)" "$([ $failed = 0 ] && echo "course leaves its FIFO, rawipc nothing" || echo FAILED)"
rm -f "$dir".*.out
exit $failed
