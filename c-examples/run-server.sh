#!/bin/sh
# run-server.sh: one chan_server serving, in one epoll_wait, 64 clients it
# forks (8 of them killed with SIGKILL at random moments) and 6 clients
# started separately by this script (2 of them killed with kill -9 while
# they are served), with a pipe in the same epoll set. Every request of a
# living client must be answered, and every killed client noticed. The
# Makefile's `run` and `check` call it, and so does `cargo test`.
#
# Usage: run-server.sh show|check BUILD_DIR
#   show   prints what the server says
#   check  prints one line; exits 1 if anything was not as it must be
set -u

mode=$1 build=$2
name="server-$$"
uid=$(id -u)
out=$(mktemp "${TMPDIR:-/tmp}/chan-server.XXXXXX")
trap 'rm -f "$out" "$out".*' EXIT
failed=0

say() { printf '%s\n' "$*"; }

# Waits (up to 20 s) until `test` succeeds.
wait_for() {
    i=0
    while ! eval "$1"; do
        i=$((i + 1))
        [ $i -gt 2000 ] && { say "gave up waiting for: $1"; return 1; }
        sleep 0.01
    done
}

listening() { grep -q "@rawipc/$uid/$1\$" /proc/net/unix; }
connected() { [ "$(grep -c ' connected$' "$out")" -ge "$1" ]; }

timeout 120 "$build/chan_server" -f 64 -k 8 -m 200 -n "$name" -c 6 > "$out" 2>&1 &
server=$!
wait_for "listening $name" || failed=1

clients=""
for i in 1 2 3 4; do
    "$build/chan_client" "$name" 200 > "$out.$i" 2>&1 &
    clients="$clients $!"
done
victims=""
for i in 5 6; do
    "$build/chan_client" "$name" 100000000 > /dev/null 2>&1 &
    victims="$victims $!"
done
# Killed once all six are being served.
wait_for "connected 6" || failed=1
sleep 0.05
kill -9 $victims
for p in $clients; do
    wait $p || { say "a client started separately failed: $(cat "$out".*)"; failed=1; }
done
for p in $victims; do wait $p 2>/dev/null; done
wait $server || failed=1

summary=$(grep '^served ' "$out")
noticed=$(grep -c '(started separately): gone after' "$out")
case $summary in
"served 70 clients (64 forked, 6 started separately) in one epoll_wait: "*"; 56 forked finished, 8 killed and noticed: ok") ;;
*) failed=1 ;;
esac
[ "$noticed" = 6 ] || failed=1

if [ "$mode" = show ]; then
    printf '\n=== chan_server: 64 forked clients and 6 started separately, in one epoll_wait ===\n'
    cat "$out"
    printf -- '--> %s\n' "$([ $failed = 0 ] && echo "every living client answered, every killed one noticed" || echo FAILED)"
else
    printf '%-20s %s\n' "chan_server" "$([ $failed = 0 ] && echo "70 clients served, 10 killed and noticed" || echo FAILED)"
    [ $failed = 0 ] || cat "$out"
fi
exit $failed
