#!/bin/sh
# run-pairs.sh: runs each example three ways and compares what they print:
# NAME_course (the course code with libc), NAME_swap (the same source built
# with -include rawipc_swap.h, its calls on rawipc's mirrors) and NAME_rawipc
# (the hand-written twin). The Makefile's `run` and `check` call it.
#
# Usage: run-pairs.sh show|check BUILD_DIR NAME...
#   show   prints the three outputs side by side and whether they match
#   check  prints one line per example; exits 1 if a program fails, if the
#          outputs differ, or if shm_counter does not print exactly "5"
set -u

mode=$1 build=$2
shift 2
failed=0

# side_by_side TITLE FILE TITLE FILE TITLE FILE: three columns, each as wide
# as its longest line.
side_by_side() {
    awk -v t1="$1" -v t2="$3" -v t3="$5" -v f2="$4" -v f3="$6" '
        { c1[NR] = $0 }
        END {
            n = NR; c1[0] = t1; c2[0] = t2; c3[0] = t3
            while ((getline line < f2) > 0) c2[++m2] = line
            while ((getline line < f3) > 0) c3[++m3] = line
            if (m2 > n) n = m2
            if (m3 > n) n = m3
            for (i = 0; i <= n; i++) {
                if (length(c1[i]) > w1) w1 = length(c1[i])
                if (length(c2[i]) > w2) w2 = length(c2[i])
            }
            for (i = 0; i <= n; i++) printf "%-" w1 "s | %-" w2 "s | %s\n", c1[i], c2[i], c3[i]
        }' "$2"
}

for name in "$@"; do
    course=$build/${name}_course swap=$build/${name}_swap rawipc=$build/${name}_rawipc
    "$course" > "$course.out" 2>&1 || { echo "$name: ${name}_course exited with $?"; failed=1; }
    "$swap" > "$swap.out" 2>&1 || { echo "$name: ${name}_swap exited with $?"; failed=1; }
    "$rawipc" > "$rawipc.out" 2>&1 || { echo "$name: ${name}_rawipc exited with $?"; failed=1; }

    if cmp -s "$course.out" "$swap.out" && cmp -s "$course.out" "$rawipc.out"; then
        verdict="same output"
    else
        verdict="OUTPUTS DIFFER"; failed=1
    fi
    if [ "$name" = shm_counter ] && [ "$(cat "$rawipc.out")" != 5 ]; then
        verdict="$verdict; expected 5"; failed=1
    fi

    if [ "$mode" = show ]; then
        printf '\n=== %s ===\n' "$name"
        side_by_side "${name}_course (libc)" "$course.out" "${name}_course (rawipc_swap.h)" "$swap.out" \
            "${name}_rawipc" "$rawipc.out"
        printf -- '--> %s\n' "$verdict"
    else
        printf '%-20s %s\n' "$name" "$verdict"
    fi
done

exit $failed
