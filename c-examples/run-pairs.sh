#!/bin/sh
# run-pairs.sh: runs each pair of example programs (NAME_course, NAME_rawipc)
# and compares what they print; the Makefile's `run` and `check` call it.
#
# Usage: run-pairs.sh show|check BUILD_DIR NAME...
#   show   prints both outputs side by side and whether they match
#   check  prints one line per pair; exits 1 if a program fails, if a pair's
#          outputs differ, or if shm_counter does not print exactly "5"
set -u

mode=$1 build=$2
shift 2
failed=0

# side_by_side LEFT_TITLE LEFT_FILE RIGHT_TITLE RIGHT_FILE: two columns, the
# left one as wide as its longest line.
side_by_side() {
    awk -v ltitle="$1" -v rtitle="$3" -v rfile="$4" '
        { left[NR] = $0 }
        END {
            n = NR; left[0] = ltitle; right[0] = rtitle
            while ((getline line < rfile) > 0) right[++m] = line
            if (m > n) n = m
            for (i = 0; i <= n; i++) if (length(left[i]) > w) w = length(left[i])
            for (i = 0; i <= n; i++) printf "%-" w "s | %s\n", left[i], right[i]
        }' "$2"
}

for name in "$@"; do
    course=$build/${name}_course rawipc=$build/${name}_rawipc
    "$course" > "$course.out" 2>&1 || { echo "$name: ${name}_course exited with $?"; failed=1; }
    "$rawipc" > "$rawipc.out" 2>&1 || { echo "$name: ${name}_rawipc exited with $?"; failed=1; }

    if cmp -s "$course.out" "$rawipc.out"; then verdict="same output"; else verdict="OUTPUTS DIFFER"; failed=1; fi
    if [ "$name" = shm_counter ] && [ "$(cat "$rawipc.out")" != 5 ]; then
        verdict="$verdict; expected 5"; failed=1
    fi

    if [ "$mode" = show ]; then
        printf '\n=== %s ===\n' "$name"
        side_by_side "${name}_course" "$course.out" "${name}_rawipc" "$rawipc.out"
        printf -- '--> %s\n' "$verdict"
    else
        printf '%-20s %s\n' "$name" "$verdict"
    fi
done

exit $failed
